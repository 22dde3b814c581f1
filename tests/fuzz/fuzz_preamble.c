/* Fuzz target: the preamble opener, which reads a stranger's first bytes
 * on a tcp or tls carrier. Arbitrary input must never crash it; the fuzzer
 * input also seals a preamble built from its bytes, which must open to the
 * same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/key.h"
#include "crypto/preamble.h"
#include "util/rw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wn_identity id;
	static int ready;
	if (!ready) {
		uint8_t seed[32];
		memset(seed, 0x5a, sizeof(seed));
		if (wn_identity_from_seed(&id, seed) != 0)
			abort();
		ready = 1;
	}
	struct wn_preamble p, q;
	int n = wn_preamble_open(data, size, id.x_sk, id.x_pk, &p);
	if (n > 0 && (n < WN_PREAMBLE_SEALED || n > WN_PREAMBLE_MAX))
		abort();

	/* Round trip of fields taken from the input. */
	uint8_t fields[16 + 32 + 8 + 8 + 2 + 32] = {0};
	memcpy(fields, data, size < sizeof(fields) ? size : sizeof(fields));
	struct wn_rd rd;
	wn_rd_init(&rd, fields, sizeof(fields));
	wn_rd_bytes(&rd, p.sid, sizeof(p.sid));
	wn_rd_bytes(&rd, p.secret, sizeof(p.secret));
	p.counter = wn_rd_u64be(&rd);
	p.timestamp_ms = wn_rd_u64be(&rd);
	p.pad_len = wn_rd_u16be(&rd) % (WN_PREAMBLE_PAD_MAX + 1);
	const uint8_t *seed = wn_rd_ptr(&rd, 32);
	static uint8_t pad[WN_PREAMBLE_PAD_MAX], out[WN_PREAMBLE_MAX];
	int m = wn_preamble_seal(&p, id.x_pk, seed, pad, out, sizeof(out));
	if (m != WN_PREAMBLE_SEALED + p.pad_len)
		abort();
	if (wn_preamble_open(out, (size_t)m, id.x_sk, id.x_pk, &q) != m ||
	    memcmp(q.sid, p.sid, sizeof(p.sid)) != 0 ||
	    memcmp(q.secret, p.secret, sizeof(p.secret)) != 0 ||
	    q.counter != p.counter || q.timestamp_ms != p.timestamp_ms ||
	    q.pad_len != p.pad_len)
		abort();
	return 0;
}
