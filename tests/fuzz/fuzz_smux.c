/* Fuzz target: the smux core as a server sees a client's bytes.
 *
 * Byte 0 picks the configuration (version, compat, window, limits). The rest
 * is a script of operations:
 *   0x00..0x7f  feed the next op+1 bytes to wn_smux_input
 *   0x80..0x9f  pull with a buffer of (op & 0x1f) * 512 + 1 bytes
 *   0xa0..0xbf  consume (op & 0x1f) * 2048 bytes of the last stream seen
 *   0xc0..0xff  an engine call (op & 7) on the last stream seen: open,
 *               write (op >> 3 & 7) * 1000 bytes, shutdown, reset,
 *               forget, reserve and commit half, trim, ping
 * The callbacks act too (refuse some opens, forget on FIN, write from
 * on_writable). Checks: no crash or leak; everything pulled is a sequence
 * of well-formed frames; in v2 the data delivered and not consumed stays
 * within the windows we advertised. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/smux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	struct wn_smux *m;
	struct wn_smux_cfg cfg;
	uint32_t last;
	uint8_t junk[8192];
};

static uint32_t fz_open(void *ctx, uint32_t sid)
{
	struct fz *f = ctx;

	f->last = sid;
	return sid % 7 == 0 ? 2 : 0;
}

static void fz_data(void *ctx, uint32_t sid, const uint8_t *d, size_t n)
{
	struct fz *f = ctx;

	(void)d;
	f->last = sid;
	if (sid % 3 == 0)
		wn_smux_consumed(f->m, sid, n);
}

static void fz_fin(void *ctx, uint32_t sid)
{
	struct fz *f = ctx;

	if (sid % 5 == 0)
		wn_smux_forget(f->m, sid);
}

static void fz_reset(void *ctx, uint32_t sid, uint32_t reason)
{
	struct fz *f = ctx;

	(void)reason;
	wn_smux_forget(f->m, sid);
}

static void fz_writable(void *ctx, uint32_t sid)
{
	struct fz *f = ctx;

	wn_smux_write(f->m, sid, f->junk, sizeof(f->junk));
}

/* Every pulled byte must belong to a well-formed frame. */
static void check_frames(const struct fz *f, const uint8_t *p, size_t n)
{
	size_t off = 0;

	while (off < n) {
		struct wn_smux_hdr h;
		if (n - off < WN_SMUX_HDR_LEN)
			abort();
		wn_smux_hdr_decode(p + off, &h);
		if (wn_smux_hdr_check(&h, f->cfg.version, !f->cfg.compat, NULL))
			abort();
		if (h.cmd == WN_SMUX_PSH && h.len > f->cfg.max_frame)
			abort();
		off += WN_SMUX_HDR_LEN + h.len;
	}
	if (off != n)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t windows[4] = {2, 65536, 262144, 1 << 20};
	struct wn_smux_cb cb = {
	    .on_open = fz_open,
	    .on_data = fz_data,
	    .on_fin = fz_fin,
	    .on_reset = fz_reset,
	    .on_writable = fz_writable,
	};
	uint8_t *out;
	struct fz f;
	size_t i = 1;

	if (size < 1)
		return 0;
	memset(&f, 0, sizeof(f));
	wn_smux_cfg_default(&f.cfg);
	f.cfg.version = data[0] & 1 ? 1 : 2;
	f.cfg.compat = (data[0] >> 1) & 1;
	f.cfg.stream_window = windows[(data[0] >> 2) & 3];
	f.cfg.max_streams = data[0] & 0x10 ? 3 : 64;
	f.cfg.max_frame = data[0] & 0x20 ? 100 : 32768;
	f.cfg.stream_send_limit = data[0] & 0x40 ? 5000 : 1 << 20;
	cb.ctx = &f;
	if (wn_smux_new(&f.cfg, &cb, &f.m))
		abort();
	out = malloc(16 * 1024);
	if (!out)
		abort();

	while (i < size) {
		uint8_t op = data[i++];
		if (op < 0x80) {
			size_t n = (size_t)op + 1;
			if (n > size - i)
				n = size - i;
			wn_smux_input(f.m, data + i, n);
			i += n;
		} else if (op < 0xa0) {
			size_t cap = (size_t)(op & 0x1f) * 512 + 1;
			size_t got = wn_smux_pull(f.m, out, cap);
			if (got > cap)
				abort();
			check_frames(&f, out, got);
		} else if (op < 0xc0) {
			wn_smux_consumed(f.m, f.last,
			                 (size_t)(op & 0x1f) * 2048);
		} else {
			uint32_t sid;
			switch (op & 7) {
			case 0:
				if (wn_smux_open(f.m, &sid) == 0)
					f.last = sid;
				break;
			case 1:
				wn_smux_write(f.m, f.last, f.junk,
				              (size_t)(op >> 3 & 7) * 1000);
				break;
			case 2:
				wn_smux_shutdown(f.m, f.last);
				break;
			case 3:
				wn_smux_reset(f.m, f.last, op);
				break;
			case 4:
				wn_smux_forget(f.m, f.last);
				break;
			case 5: {
				uint8_t *p;
				ssize_t n = wn_smux_reserve(f.m, f.last, &p);
				if (n > 0) {
					memset(p, op, (size_t)n / 2);
					wn_smux_commit(f.m, f.last,
					               (size_t)n / 2);
				}
				break;
			}
			case 6:
				wn_smux_trim(f.m);
				break;
			default:
				wn_smux_ping(f.m);
				break;
			}
		}
		if (f.cfg.version == 2) {
			uint64_t w = f.cfg.stream_window > 262144
			                 ? f.cfg.stream_window
			                 : 262144;
			if (wn_smux_recv_pending(f.m) >
			    (uint64_t)wn_smux_nstreams(f.m) * w)
				abort();
		}
	}
	/* Drain what is owed, then free with whatever is left. */
	for (int k = 0; k < 64 && wn_smux_want_pull(f.m); k++)
		check_frames(&f, out, wn_smux_pull(f.m, out, 16 * 1024));
	wn_smux_free(f.m);
	free(out);
	return 0;
}
