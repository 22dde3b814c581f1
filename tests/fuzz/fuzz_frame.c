/* Fuzz target: the stream carrier framing decoder, the first thing that
 * reads what a carrier connection's peer sends after the preamble. The
 * input is decoded twice, whole and split at a point taken from its first
 * byte; both must give the same packets, each of which re-encodes to a
 * valid record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns a hash of the packets and their count; stops at an error. */
static uint64_t run(const uint8_t *data, size_t size, size_t split, int *rc)
{
	static uint8_t buf[2048];
	struct wn_frame_dec d;
	uint64_t h = 1469598103934665603ull;
	size_t bounds[2] = {split, size};
	size_t off = 0;
	wn_frame_dec_init(&d, buf, sizeof(buf));
	*rc = 0;
	for (int part = 0; part < 2; part++) {
		while (off < bounds[part]) {
			const uint8_t *pkt;
			size_t plen, used;
			int r = wn_frame_dec_feed(&d, data + off,
			                          bounds[part] - off, &used,
			                          &pkt, &plen);
			off += used;
			if (r < 0) {
				*rc = r;
				return h;
			}
			if (r == 1) {
				if (plen == 0 || plen > sizeof(buf))
					abort();
				uint8_t rec[2 + 2048];
				struct wn_wr wr;
				wn_wr_init(&wr, rec, sizeof(rec));
				if (wn_frame_put_data(&wr, pkt, plen) != 0)
					abort();
				for (size_t i = 0; i < plen; i++)
					h = (h ^ pkt[i]) * 1099511628211ull;
				h = (h ^ plen) * 1099511628211ull;
			} else if (used != bounds[part] - (off - used)) {
				abort();
			}
		}
	}
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc1, rc2;
	size_t split = size ? data[0] % (size + 1) : 0;
	uint64_t a = run(data, size, size, &rc1);
	uint64_t b = run(data, size, split, &rc2);
	if (rc1 != rc2 || a != b)
		abort();
	return 0;
}
