/* Fuzz target: the stream header, the first bytes a client controls on the
 * server. Decoding must never crash; what decodes must encode back to the
 * same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/streamhdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wn_endpoint t;
	int dflt;
	int n = wn_streamhdr_decode(data, size, &t, &dflt);
	if (n <= 0)
		return 0;
	uint8_t buf[WN_STREAMHDR_MAX];
	int m = wn_streamhdr_encode(dflt ? NULL : &t, buf, sizeof(buf));
	if (m != n || memcmp(buf, data, (size_t)n) != 0)
		abort();
	return 0;
}
