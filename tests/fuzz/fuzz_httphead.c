/* Fuzz target: the request head a stranger sends to the tls carrier. Never
 * a crash; read whole or in two pieces (split where the first byte says),
 * the same verdict at the same byte; nothing read past the verdict. */
#include <stdint.h>
#include <stdlib.h>

#include "core/httphead.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t limit = 64u + data[0] * 4u;
	const uint8_t *p = data + 1;
	size_t n = size - 1, used, u1, u2 = 0;
	struct wn_httphead a, b;

	wn_httphead_init(&a, limit);
	enum wn_httphead_result ra = wn_httphead_feed(&a, p, n, &used);
	if (used > n || (ra == WN_HTTPHEAD_MORE && used != n))
		abort();

	size_t cut = n ? (size_t)data[0] % (n + 1) : 0;
	wn_httphead_init(&b, limit);
	enum wn_httphead_result rb = wn_httphead_feed(&b, p, cut, &u1);
	if (rb == WN_HTTPHEAD_MORE)
		rb = wn_httphead_feed(&b, p + cut, n - cut, &u2);
	if (rb != ra || u1 + u2 != used)
		abort();
	/* A verdict stays, and reads nothing more. */
	if (ra != WN_HTTPHEAD_MORE &&
	    (wn_httphead_feed(&a, p, n, &used) != ra || used != 0))
		abort();
	return 0;
}
