/* Tests for the KCP core on its own: the segment header, configuration,
 * segmentation in stream and message mode, malformed input, deadlines,
 * RTO backoff, fast resend and window probing. Two cores over a simulated
 * lossy link are tested in kcp_sim_test.c. Everything runs in virtual
 * time; datagrams are captured and decoded by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/kcp.h"
#include "util/err.h"

#define ROOM 16
#define MAXPKT 64

/* Every datagram a core outputs, copied. */
struct capture {
	uint8_t pkt[MAXPKT][WN_KCP_MTU_DEFAULT];
	size_t len[MAXPKT];
	int n;
};

/* Stores the datagram and scribbles over the promised head- and tailroom,
 * as an in-place cipher would (ASan sees any overrun). */
static void capture_out(void *ctx, uint8_t *pkt, size_t len)
{
	struct capture *c = ctx;

	memset(pkt - ROOM, 0xAA, ROOM);
	memset(pkt + len, 0xBB, ROOM);
	assert_true(c->n < MAXPKT);
	assert_true(len <= sizeof(c->pkt[0]));
	memcpy(c->pkt[c->n], pkt, len);
	c->len[c->n++] = len;
}

static struct wn_kcp_cfg cfg_base(void)
{
	struct wn_kcp_cfg cfg;

	wn_kcp_cfg_default(&cfg);
	cfg.conv = 0x1234;
	cfg.headroom = ROOM;
	cfg.tailroom = ROOM;
	return cfg;
}

static struct wn_kcp *mk(const struct wn_kcp_cfg *cfg, struct capture *c,
                         uint32_t now)
{
	struct wn_kcp *k;

	memset(c, 0, sizeof(*c));
	assert_int_equal(wn_kcp_new(cfg, capture_out, c, now, &k), 0);
	return k;
}

/* Decodes segment i (0-based) of a datagram; fails if absent. */
static struct wn_kcp_hdr seg_at(const uint8_t *p, size_t len, int i,
                                const uint8_t **data)
{
	struct wn_kcp_hdr h;
	size_t off = 0;

	for (;;) {
		assert_int_equal(wn_kcp_hdr_decode(p + off, len - off, &h), 0);
		assert_true(off + WN_KCP_OVERHEAD + h.len <= len);
		if (i-- == 0)
			break;
		off += WN_KCP_OVERHEAD + h.len;
	}
	if (data)
		*data = p + off + WN_KCP_OVERHEAD;
	return h;
}

static int seg_count(const uint8_t *p, size_t len)
{
	struct wn_kcp_hdr h;
	size_t off = 0;
	int n = 0;

	while (off < len) {
		assert_int_equal(wn_kcp_hdr_decode(p + off, len - off, &h), 0);
		off += WN_KCP_OVERHEAD + h.len;
		n++;
	}
	assert_int_equal(off, len);
	return n;
}

/* Builds a datagram of one segment. Returns its length. */
static size_t build(uint8_t *out, uint32_t conv, uint8_t cmd, uint32_t sn,
                    uint32_t una, uint32_t ts, const void *data, uint32_t len)
{
	struct wn_kcp_hdr h = {.conv = conv,
	                       .cmd = cmd,
	                       .wnd = 128,
	                       .ts = ts,
	                       .sn = sn,
	                       .una = una,
	                       .len = len};

	wn_kcp_hdr_encode(&h, out);
	if (len)
		memcpy(out + WN_KCP_OVERHEAD, data, len);
	return WN_KCP_OVERHEAD + len;
}

static void hdr_known_bytes(void **state)
{
	(void)state;
	const struct wn_kcp_hdr h = {.conv = 0x11223344,
	                             .cmd = 81,
	                             .frg = 2,
	                             .wnd = 0x0102,
	                             .ts = 0xA0B0C0D0,
	                             .sn = 5,
	                             .una = 3,
	                             .len = 4};
	/* By hand from the table: every field little-endian. */
	const uint8_t want[24] = {0x44, 0x33, 0x22, 0x11, 0x51, 0x02,
	                          0x02, 0x01, 0xD0, 0xC0, 0xB0, 0xA0,
	                          0x05, 0x00, 0x00, 0x00, 0x03, 0x00,
	                          0x00, 0x00, 0x04, 0x00, 0x00, 0x00};
	uint8_t buf[24];
	struct wn_kcp_hdr back;
	uint32_t conv;

	wn_kcp_hdr_encode(&h, buf);
	assert_memory_equal(buf, want, 24);
	assert_int_equal(wn_kcp_hdr_decode(buf, 24, &back), 0);
	assert_memory_equal(&back, &h, sizeof(h));
	assert_int_equal(wn_kcp_hdr_decode(buf, 23, &back), WN_ETRUNC);
	assert_int_equal(wn_kcp_peek_conv(buf, 24, &conv), 0);
	assert_int_equal(conv, 0x11223344);
	assert_int_equal(wn_kcp_peek_conv(buf, 23, &conv), WN_EPROTO);
}

static void cfg_presets_and_limits(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg;
	struct capture c;
	struct wn_kcp *k;

	wn_kcp_cfg_default(&cfg);
	assert_int_equal(cfg.mtu, 1400);
	assert_int_equal(cfg.snd_wnd, 32);
	assert_int_equal(cfg.rcv_wnd, 128);
	assert_int_equal(cfg.interval, 100);
	assert_int_equal(cfg.dead_link, 20);
	assert_int_equal(cfg.stream, 1);
	assert_int_equal(cfg.send_limit, 4 << 20);
	const struct {
		const char *name;
		int nodelay, interval, resend, nc;
	} want[] = {{"normal", 0, 40, 2, 1},
	            {"fast", 0, 30, 2, 1},
	            {"fast2", 1, 20, 2, 1},
	            {"fast3", 1, 10, 2, 1}};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(wn_kcp_preset(&cfg, want[i].name), 0);
		assert_int_equal(cfg.nodelay, want[i].nodelay);
		assert_int_equal(cfg.interval, want[i].interval);
		assert_int_equal(cfg.resend, want[i].resend);
		assert_int_equal(cfg.nc, want[i].nc);
	}
	assert_int_equal(wn_kcp_preset(&cfg, "turbo"), WN_EINVAL);
	assert_int_equal(wn_kcp_preset(&cfg, NULL), WN_EINVAL);

	struct wn_kcp_cfg bad;
#define REJECT(field, value)                                               \
	do {                                                               \
		bad = cfg_base();                                          \
		bad.field = value;                                         \
		assert_int_equal(wn_kcp_new(&bad, capture_out, &c, 0, &k), \
		                 WN_EINVAL);                               \
		assert_null(k);                                            \
	} while (0)
	REJECT(mtu, 49);
	REJECT(mtu, 65536);
	REJECT(snd_wnd, 0);
	REJECT(rcv_wnd, 0);
	REJECT(rcv_wnd, 65536);
	REJECT(dead_link, 0);
	REJECT(send_limit, 100);
	REJECT(headroom, 4097);
	REJECT(tailroom, 4097);
#undef REJECT
	bad = cfg_base();
	assert_int_equal(wn_kcp_new(&bad, NULL, &c, 0, &k), WN_EINVAL);
	bad.mtu = 50;
	assert_int_equal(wn_kcp_new(&bad, capture_out, &c, 0, &k), 0);
	wn_kcp_free(k);
	wn_kcp_free(NULL);
}

/* Stream mode fills segments up to mss (kcp-go), frg stays 0, and each
 * datagram carries whole segments within mtu. */
static void stream_fills_segments(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture c;
	uint8_t data[3010];
	struct wn_kcp *k;

	cfg.nc = 1;
	k = mk(&cfg, &c, 1000);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	assert_int_equal(wn_kcp_send(k, data, 10), 10);
	assert_int_equal(wn_kcp_send(k, data + 10, 3000), 3000);
	assert_int_equal(wn_kcp_queued(k), 3);
	assert_int_equal(wn_kcp_send_space(k), (4 << 20) - 3010);
	wn_kcp_flush(k, 1000);
	assert_int_equal(wn_kcp_queued(k), 0);
	assert_int_equal(wn_kcp_inflight(k), 3);
	assert_int_equal(c.n, 3);
	const uint32_t lens[3] = {1376, 1376, 258};
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		const uint8_t *d;
		struct wn_kcp_hdr h = seg_at(c.pkt[i], c.len[i], 0, &d);
		assert_int_equal(c.len[i], WN_KCP_OVERHEAD + lens[i]);
		assert_int_equal(h.conv, 0x1234);
		assert_int_equal(h.cmd, WN_KCP_CMD_PUSH);
		assert_int_equal(h.frg, 0);
		assert_int_equal(h.wnd, 128);
		assert_int_equal(h.ts, 1000);
		assert_int_equal(h.sn, (uint32_t)i);
		assert_int_equal(h.una, 0);
		assert_int_equal(h.len, lens[i]);
		assert_memory_equal(d, data + off, lens[i]);
		off += lens[i];
	}
	wn_kcp_free(k);

	/* With congestion control the first flush sends one segment (slow
	 * start from cwnd 1). */
	cfg.nc = 0;
	k = mk(&cfg, &c, 0);
	assert_int_equal(wn_kcp_send(k, data, sizeof(data)), sizeof(data));
	wn_kcp_flush(k, 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(wn_kcp_inflight(k), 1);
	wn_kcp_free(k);
}

static void stream_send_limit(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture c;
	static uint8_t data[5000];
	struct wn_kcp *k;

	cfg.send_limit = 4000;
	k = mk(&cfg, &c, 0);
	assert_int_equal(wn_kcp_send(k, data, 5000), 4000);
	assert_int_equal(wn_kcp_send_space(k), 0);
	assert_int_equal(wn_kcp_send(k, data, 10), 0);
	assert_int_equal(wn_kcp_send(k, data, 0), 0);
	wn_kcp_free(k);
}

/* Message mode: frg counts down to 0; the receiver hands out whole
 * messages only, in order, whatever order the fragments arrive in. */
static void message_fragments(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture ca, cb;
	uint8_t data[4 * 76], out[400];
	struct wn_kcp *a, *b;

	cfg.stream = 0;
	cfg.nc = 1;
	cfg.mtu = 100; /* mss 76 */
	cfg.send_limit = 300;
	a = mk(&cfg, &ca, 0);
	b = mk(&cfg, &cb, 0);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ 0x5a);
	assert_int_equal(wn_kcp_send(a, data, 238), 238);
	assert_int_equal(wn_kcp_send(a, data, 100), 0); /* whole or nothing */
	assert_int_equal(wn_kcp_queued(a), 4);
	static uint8_t big[128 * 76];
	assert_int_equal(wn_kcp_send(a, big, sizeof(big)), WN_EINVAL);
	wn_kcp_flush(a, 0);
	assert_int_equal(ca.n, 4);
	for (int i = 0; i < 4; i++) {
		struct wn_kcp_hdr h = seg_at(ca.pkt[i], ca.len[i], 0, NULL);
		assert_int_equal(h.frg, 3 - i);
		assert_int_equal(h.len, i < 3 ? 76 : 10);
	}
	for (int i = 3; i >= 1; i--) {
		assert_int_equal(wn_kcp_input(b, ca.pkt[i], ca.len[i], 5), 0);
		assert_int_equal(wn_kcp_readable(b), 0);
		assert_int_equal(wn_kcp_recv(b, out, sizeof(out)), WN_EAGAIN);
	}
	assert_int_equal(wn_kcp_input(b, ca.pkt[0], ca.len[0], 5), 0);
	assert_int_equal(wn_kcp_readable(b), 238);
	assert_int_equal(wn_kcp_recv(b, out, 237), WN_ENOSPC);
	assert_int_equal(wn_kcp_recv(b, out, sizeof(out)), 238);
	assert_memory_equal(out, data, 238);
	assert_int_equal(wn_kcp_recv(b, out, sizeof(out)), WN_EAGAIN);
	wn_kcp_free(a);
	wn_kcp_free(b);
}

/* Stream reads may split and join segments freely. */
static void stream_partial_reads(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture c;
	uint8_t pkt[256], out[64];
	struct wn_kcp *k = mk(&cfg, &c, 0);

	assert_int_equal(wn_kcp_input(k, pkt,
	                              build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0, 0,
	                                    0, "hello ", 6),
	                              1),
	                 0);
	assert_int_equal(wn_kcp_input(k, pkt,
	                              build(pkt, 0x1234, WN_KCP_CMD_PUSH, 1, 0,
	                                    0, "world", 5),
	                              1),
	                 0);
	/* An empty PUSH carries nothing in stream mode and takes no room. */
	assert_int_equal(
	    wn_kcp_input(k, pkt,
	                 build(pkt, 0x1234, WN_KCP_CMD_PUSH, 2, 0, 0, NULL, 0),
	                 1),
	    0);
	assert_int_equal(wn_kcp_readable(k), 11);
	assert_int_equal(wn_kcp_recv(k, out, 4), 4);
	assert_memory_equal(out, "hell", 4);
	assert_int_equal(wn_kcp_readable(k), 7);
	assert_int_equal(wn_kcp_recv(k, out, sizeof(out)), 7);
	assert_memory_equal(out, "o world", 7);
	assert_int_equal(wn_kcp_recv(k, out, sizeof(out)), WN_EAGAIN);
	/* One ack: una 3 covers sn 0 and 1, the ack of the last (sn 2)
	 * carries the RTT sample; the full window. */
	wn_kcp_flush(k, 2);
	assert_int_equal(c.n, 1);
	assert_int_equal(seg_count(c.pkt[0], c.len[0]), 1);
	struct wn_kcp_hdr h = seg_at(c.pkt[0], c.len[0], 0, NULL);
	assert_int_equal(h.cmd, WN_KCP_CMD_ACK);
	assert_int_equal(h.sn, 2);
	assert_int_equal(h.una, 3);
	assert_int_equal(h.wnd, 128);
	wn_kcp_free(k);
}

static void malformed_input(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct wn_kcp_stats st;
	struct capture c;
	uint8_t pkt[64 * 1024];
	size_t n;
	struct wn_kcp *k = mk(&cfg, &c, 0);

	/* Shorter than a header. */
	assert_int_equal(wn_kcp_input(k, pkt, 0, 1), WN_EPROTO);
	assert_int_equal(wn_kcp_input(k, NULL, 0, 1), WN_EPROTO);
	memset(pkt, 0, 23);
	assert_int_equal(wn_kcp_input(k, pkt, 23, 1), WN_EPROTO);
	/* len beyond the datagram. */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0, 0, 0, "abcdef", 6);
	assert_int_equal(wn_kcp_input(k, pkt, n - 1, 1), WN_EPROTO);
	wn_kcp_hdr_encode(
	    &(struct wn_kcp_hdr){.conv = 0x1234, .cmd = 81, .len = 0xFFFFFFFF},
	    pkt);
	assert_int_equal(wn_kcp_input(k, pkt, 64, 1), WN_EPROTO);
	/* Unknown commands. */
	n = build(pkt, 0x1234, 85, 0, 0, 0, NULL, 0);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1), WN_EPROTO);
	n = build(pkt, 0x1234, 0, 0, 0, 0, NULL, 0);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1), WN_EPROTO);
	wn_kcp_get_stats(k, &st);
	assert_int_equal(st.drop_bad, 7);
	/* Another conversation: ignored entirely, nothing acknowledged. */
	n = build(pkt, 0x1235, WN_KCP_CMD_PUSH, 0, 0, 0, "x", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1), WN_EPROTO);
	wn_kcp_get_stats(k, &st);
	assert_int_equal(st.drop_conv, 1);
	assert_int_equal(wn_kcp_readable(k), 0);
	wn_kcp_flush(k, 1);
	assert_int_equal(c.n, 0);
	/* A good segment followed by junk: the segment counts, the junk is
	 * reported. */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0, 0, 0, "ok", 2);
	memset(pkt + n, 0x55, 10);
	assert_int_equal(wn_kcp_input(k, pkt, n + 10, 2), WN_EPROTO);
	assert_int_equal(wn_kcp_readable(k), 2);
	/* Beyond the receive window: dropped, not acknowledged, no error. */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 1 + 128, 0, 0, "far", 3);
	assert_int_equal(wn_kcp_input(k, pkt, n, 3), 0);
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0x80000000u, 0, 0, "far", 3);
	assert_int_equal(wn_kcp_input(k, pkt, n, 3), 0);
	/* Already delivered: dropped, but acknowledged again. */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0, 0, 0, "ok", 2);
	assert_int_equal(wn_kcp_input(k, pkt, n, 4), 0);
	wn_kcp_get_stats(k, &st);
	assert_int_equal(st.drop_window, 2);
	assert_int_equal(st.drop_dup, 1);
	assert_int_equal(wn_kcp_readable(k), 2);
	wn_kcp_flush(k, 5);
	assert_int_equal(c.n, 1);
	/* sn 0 twice: una says it, one ack repeats it */
	assert_int_equal(seg_count(c.pkt[0], c.len[0]), 1);
	/* Acks and una for data never sent change nothing. */
	n = build(pkt, 0x1234, WN_KCP_CMD_ACK, 77, 0xFFFF0000u, 1, NULL, 0);
	assert_int_equal(wn_kcp_input(k, pkt, n, 6), 0);
	assert_int_equal(wn_kcp_inflight(k), 0);
	/* A huge datagram of valid segments is fine. */
	n = 0;
	while (n + 24 <= sizeof(pkt))
		n += build(pkt + n, 0x1234, WN_KCP_CMD_WINS, 0, 0, 0, NULL, 0);
	assert_int_equal(wn_kcp_input(k, pkt, n, 7), 0);
	wn_kcp_free(k);

	/* Message mode: a message longer than the receive window could
	 * never be reassembled. */
	cfg.stream = 0;
	k = mk(&cfg, &c, 0);
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0, 0, 0, "x", 1);
	pkt[5] = 200; /* frg */
	assert_int_equal(wn_kcp_input(k, pkt, n, 1), WN_EPROTO);
	pkt[5] = 127;
	assert_int_equal(wn_kcp_input(k, pkt, n, 1), 0);
	wn_kcp_free(k);
}

/* Segment memory follows what a peer sends, not what it claims: a PUSH
 * longer than mss is dropped unacknowledged (it would cost its whole
 * length while it waits in the receive buffer), and an empty PUSH costs a
 * header, not mss bytes. */
static void segment_size_bounds(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct wn_kcp_stats st;
	struct capture c;
	static uint8_t pkt[64 * 1024], big[64 * 1024];
	size_t n, mss = cfg.mtu - WN_KCP_OVERHEAD;
	struct wn_kcp *k = mk(&cfg, &c, 0);

	/* sn 0 stays missing, so everything below waits in rcv_buf. */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 1, 0, 0, big, mss + 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1), 0);
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 2, 0, 0, big,
	          sizeof(big) - WN_KCP_OVERHEAD);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1), 0);
	wn_kcp_get_stats(k, &st);
	assert_int_equal(st.drop_large, 2);
	assert_int_equal(st.seg_mem, 0);
	wn_kcp_flush(k, 200);
	assert_int_equal(c.n, 0); /* not acknowledged */

	/* A full-size one is fine and costs one mss. */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 3, 0, 0, big, mss);
	assert_int_equal(wn_kcp_input(k, pkt, n, 2), 0);
	wn_kcp_get_stats(k, &st);
	assert_int_equal(st.drop_large, 2);
	uint64_t one = st.seg_mem;
	assert_true(one >= mss && one < mss + 128);

	/* A hundred empty ones cost a header each. */
	for (uint32_t sn = 4; sn < 104; sn++) {
		n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, sn, 0, 0, NULL, 0);
		assert_int_equal(wn_kcp_input(k, pkt, n, 3), 0);
	}
	wn_kcp_get_stats(k, &st);
	assert_true(st.seg_mem - one <= 100 * 128);

	/* Once sn 0 arrives, everything is delivered in order. */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0, 0, 0, "a", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 4), 0);
	assert_int_equal(wn_kcp_readable(k), 1);
	wn_kcp_free(k);
}

/* Acks below rcv_nxt are left to una, except the last (the RTT sample);
 * those above it name the holes' neighbours and all go. */
static void acks_above_una_only(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture c;
	uint8_t pkt[64];
	struct wn_kcp *k = mk(&cfg, &c, 0);
	const uint32_t sns[] = {0, 2, 3, 1, 5};

	for (size_t i = 0; i < 4; i++)
		assert_int_equal(
		    wn_kcp_input(k, pkt,
		                 build(pkt, 0x1234, WN_KCP_CMD_PUSH, sns[i], 0,
		                       0, "x", 1),
		                 1),
		    0);
	/* sn 1 filled the hole: rcv_nxt 4, every ack but the last is
	 * under it. */
	wn_kcp_flush(k, 1);
	assert_int_equal(c.n, 1);
	assert_int_equal(seg_count(c.pkt[0], c.len[0]), 1);
	assert_int_equal(seg_at(c.pkt[0], c.len[0], 0, NULL).sn, 1);
	assert_int_equal(seg_at(c.pkt[0], c.len[0], 0, NULL).una, 4);
	/* sn 0 again (below una), then sn 5 (a hole at 4): sn 5's ack goes,
	 * the duplicate's does not. */
	assert_int_equal(
	    wn_kcp_input(k, pkt,
	                 build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0, 0, 0, "x", 1),
	                 2),
	    0);
	assert_int_equal(
	    wn_kcp_input(k, pkt,
	                 build(pkt, 0x1234, WN_KCP_CMD_PUSH, 5, 0, 0, "x", 1),
	                 2),
	    0);
	wn_kcp_flush(k, 2);
	assert_int_equal(c.n, 2);
	assert_int_equal(seg_count(c.pkt[1], c.len[1]), 1);
	assert_int_equal(seg_at(c.pkt[1], c.len[1], 0, NULL).sn, 5);
	assert_int_equal(seg_at(c.pkt[1], c.len[1], 0, NULL).una, 4);
	wn_kcp_free(k);
}

/* The ack list is bounded; near its limit the core asks to be flushed at
 * once rather than at the end of the batch. */
static void ack_list_bounded(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct wn_kcp_stats st;
	struct capture c;
	static uint8_t pkt[2000 * 24];
	size_t n = 0;
	struct wn_kcp *k = mk(&cfg, &c, 100);

	/* Segments "already delivered" each queue an ack again. */
	for (int i = 0; i < 2000; i++)
		n += build(pkt + n, 0x1234, WN_KCP_CMD_PUSH, 0xFFFFFFFFu, 0, 0,
		           NULL, 0);
	assert_int_equal(wn_kcp_input(k, pkt, n, 100), 0);
	wn_kcp_get_stats(k, &st);
	assert_int_equal(st.ack_overflow, 2000 - 1024);
	assert_int_equal(wn_kcp_deadline(k, 100), 100);
	wn_kcp_flush(k, 100);
	/* All below una, which says so: only the last is repeated. */
	assert_int_equal(c.n, 1);
	assert_int_equal(seg_count(c.pkt[0], c.len[0]), 1);
	wn_kcp_free(k);
}

static void deadline_exact(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture c;
	uint8_t pkt[128];
	size_t n;
	struct wn_kcp *k = mk(&cfg, &c, 1000);

	/* Nothing to do: far away. */
	assert_int_equal(wn_kcp_deadline(k, 1000), 1000 + WN_KCP_IDLE_MS);
	/* An ack waits for the end of its interval batch, a fixed time. */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0, 0, 990, "a", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1000), 0);
	assert_int_equal(wn_kcp_deadline(k, 1000), 1100);
	assert_int_equal(wn_kcp_deadline(k, 1060), 1100);
	assert_int_equal(wn_kcp_deadline(k, 1200), 1200); /* late: now */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 1, 0, 1040, "b", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1050), 0);
	assert_int_equal(wn_kcp_deadline(k, 1050), 1100);
	wn_kcp_flush(k, 1100);
	assert_int_equal(c.n, 1);
	assert_int_equal(wn_kcp_deadline(k, 1100), 1100 + WN_KCP_IDLE_MS);

	/* Sending: new data goes at once, then waits for its RTO. Without
	 * nodelay the first RTO is rto + rto/8 = 225 ms. */
	assert_int_equal(wn_kcp_send(k, (const uint8_t *)"x", 1), 1);
	assert_int_equal(wn_kcp_deadline(k, 1130), 1130);
	wn_kcp_flush(k, 1130);
	assert_int_equal(c.n, 2);
	assert_int_equal(wn_kcp_deadline(k, 1130), 1130 + 225);
	/* Acked: idle again. RTT 40 ms, so rto = 40 + max(100, 80). */
	n = build(pkt, 0x1234, WN_KCP_CMD_ACK, 0, 1, 1130, NULL, 0);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1170), 0);
	assert_int_equal(wn_kcp_inflight(k), 0);
	assert_int_equal(wn_kcp_deadline(k, 1170), 1170 + WN_KCP_IDLE_MS);
	struct wn_kcp_stats st;
	wn_kcp_get_stats(k, &st);
	assert_int_equal(st.srtt_ms, 40);
	assert_int_equal(st.rto_ms, 140);
	wn_kcp_free(k);

	/* Time wraps: deadlines are still exact. */
	k = mk(&cfg, &c, 0xFFFFFFF0u);
	assert_int_equal(wn_kcp_send(k, (const uint8_t *)"x", 1), 1);
	wn_kcp_flush(k, 0xFFFFFFF0u);
	assert_int_equal(wn_kcp_deadline(k, 0xFFFFFFF0u), 225 - 16);
	assert_int_equal(wn_kcp_deadline(k, 5), 225 - 16);
	wn_kcp_free(k);
}

/* ack_every: pending acks are due once that many wait, or after
 * min(interval, srtt / 4, >= 1 ms), or after interval while no RTT is
 * known; a flush sends them all in one datagram. */
static void ack_batches(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture c;
	uint8_t pkt[128];
	size_t n;
	struct wn_kcp *k;

	cfg.nodelay = 1;
	cfg.interval = 20;
	cfg.ack_every = 4;
	k = mk(&cfg, &c, 1000);
	/* No RTT yet: three acks wait for the interval; the fourth is due. */
	for (uint32_t sn = 0; sn < 3; sn++) {
		n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, sn, 0, 990, "a", 1);
		assert_int_equal(wn_kcp_input(k, pkt, n, 1000 + sn), 0);
		assert_int_equal(wn_kcp_deadline(k, 1000 + sn), 1020);
	}
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 3, 0, 990, "a", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1005), 0);
	assert_int_equal(wn_kcp_deadline(k, 1005), 1005);
	wn_kcp_flush(k, 1005);
	assert_int_equal(c.n, 1);
	/* una 4 acknowledges sn 0-2; the ack of sn 3 carries the RTT. */
	assert_int_equal(seg_count(c.pkt[0], c.len[0]), 1);
	assert_int_equal(seg_at(c.pkt[0], c.len[0], 0, NULL).sn, 3);
	assert_int_equal(wn_kcp_deadline(k, 1005), 1005 + WN_KCP_IDLE_MS);

	/* An RTT of 12 ms: one ack waits 3 ms. */
	assert_int_equal(wn_kcp_send(k, (const uint8_t *)"x", 1), 1);
	wn_kcp_flush(k, 1010);
	n = build(pkt, 0x1234, WN_KCP_CMD_ACK, 0, 1, 1010, NULL, 0);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1022), 0);
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 4, 0, 1015, "b", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1030), 0);
	assert_int_equal(wn_kcp_deadline(k, 1030), 1033);
	assert_int_equal(wn_kcp_deadline(k, 1033), 1033);
	/* A short RTT never makes the wait 0; a long one is capped by the
	 * interval (here 20 ms against srtt / 4 = 25). */
	wn_kcp_flush(k, 1033);
	assert_int_equal(wn_kcp_send(k, (const uint8_t *)"y", 1), 1);
	wn_kcp_flush(k, 1040);
	for (uint32_t i = 0; i < 30; i++) {
		n = build(pkt, 0x1234, WN_KCP_CMD_ACK, 1, 2, 1040, NULL, 0);
		assert_int_equal(wn_kcp_input(k, pkt, n, 1140), 0);
	}
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 5, 0, 1100, "c", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1200), 0);
	assert_int_equal(wn_kcp_deadline(k, 1200), 1220);
	wn_kcp_free(k);

	/* ack_every 1: any pending ack is due at once. */
	cfg.ack_every = 1;
	k = mk(&cfg, &c, 0);
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0, 0, 0, "a", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 0), 0);
	assert_int_equal(wn_kcp_deadline(k, 0), 0);
	wn_kcp_free(k);
}

/* ack_every: a segment beyond a gap makes the next two ack datagrams go
 * at once (the sender's fast resend counts two), then batching resumes. */
static void ack_at_once_after_gap(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture c;
	uint8_t pkt[128];
	size_t n;
	struct wn_kcp *k;

	cfg.nodelay = 1;
	cfg.interval = 20;
	cfg.ack_every = 8;
	k = mk(&cfg, &c, 0);
	/* In order: batched. */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 0, 0, 0, "a", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 0), 0);
	assert_int_equal(wn_kcp_deadline(k, 0), 20);
	/* sn 1 is missing: 2 and 3 are acked at once, one flush each. */
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 2, 0, 0, "c", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 1), 0);
	assert_int_equal(wn_kcp_deadline(k, 1), 1);
	wn_kcp_flush(k, 1);
	assert_int_equal(c.n, 1);
	/* sn 0 is under una: only sn 2's ack, beyond the hole. */
	assert_int_equal(seg_count(c.pkt[0], c.len[0]), 1);
	assert_int_equal(seg_at(c.pkt[0], c.len[0], 0, NULL).sn, 2);
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 3, 0, 0, "d", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 2), 0);
	assert_int_equal(wn_kcp_deadline(k, 2), 2);
	wn_kcp_flush(k, 2);
	assert_int_equal(c.n, 2);
	/* The hole filled, more in order: batched again. */
	for (uint32_t sn = 1; sn < 6; sn += sn == 1 ? 3 : 1) {
		n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, sn, 0, 0, "e", 1);
		assert_int_equal(wn_kcp_input(k, pkt, n, 3), 0);
		assert_int_equal(wn_kcp_deadline(k, 3), 23);
	}
	assert_int_equal(c.n, 2);
	wn_kcp_free(k);

	/* Without ack_every (the reference's rule) a gap changes nothing. */
	cfg.ack_every = 0;
	k = mk(&cfg, &c, 0);
	n = build(pkt, 0x1234, WN_KCP_CMD_PUSH, 5, 0, 0, "f", 1);
	assert_int_equal(wn_kcp_input(k, pkt, n, 0), 0);
	assert_int_equal(wn_kcp_deadline(k, 0), 20);
	wn_kcp_free(k);
}

/* Runs a lone sender whose every datagram is lost: returns the times of
 * its first `count` transmissions of one segment. */
static void lone_sender(struct wn_kcp_cfg *cfg, uint32_t *at, int count,
                        int *dead_after)
{
	struct capture c;
	uint32_t now = 5000;
	struct wn_kcp *k = mk(cfg, &c, now);

	*dead_after = -1;
	assert_int_equal(wn_kcp_send(k, (const uint8_t *)"x", 1), 1);
	for (int i = 0; i < count; i++) {
		if (i > 0)
			now = wn_kcp_deadline(k, now);
		c.n = 0;
		wn_kcp_flush(k, now);
		assert_int_equal(c.n, 1);
		at[i] = now;
		if (*dead_after < 0 && wn_kcp_is_dead(k))
			*dead_after = i + 1;
	}
	wn_kcp_free(k);
}

static void rto_backoff(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	uint32_t at[40];
	int dead;

	/* Without nodelay: the first timeout 200 + 25, then doubling. */
	cfg.dead_link = 8;
	lone_sender(&cfg, at, 9, &dead);
	const uint32_t gap0[] = {225, 400, 800, 1600, 3200, 6400, 12800, 25600};
	for (int i = 0; i < 8; i++)
		assert_int_equal(at[i + 1] - at[i], gap0[i]);
	assert_int_equal(dead, 8); /* sent dead_link times */

	/* With nodelay: x1.5 each time. */
	cfg.nodelay = 1;
	cfg.dead_link = 20;
	lone_sender(&cfg, at, 6, &dead);
	const uint32_t gap1[] = {200, 300, 450, 675, 1012};
	for (int i = 0; i < 5; i++)
		assert_int_equal(at[i + 1] - at[i], gap1[i]);
	assert_int_equal(dead, -1);

	/* The backoff stops at 60 s. */
	cfg.nodelay = 0;
	cfg.dead_link = 100;
	lone_sender(&cfg, at, 40, &dead);
	for (int i = 1; i < 39; i++)
		assert_true(at[i + 1] - at[i] <= WN_KCP_RTO_MAX);
	assert_int_equal(at[39] - at[38], WN_KCP_RTO_MAX);
}

/* `resend` duplicate acks resend a segment before its RTO. */
static void fast_resend(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture ca, cb;
	struct wn_kcp_stats st;
	static uint8_t data[4 * 1376];
	struct wn_kcp *a, *b;

	cfg.nc = 1;
	cfg.nodelay = 1;
	cfg.resend = 2;
	a = mk(&cfg, &ca, 0);
	b = mk(&cfg, &cb, 0);
	assert_int_equal(wn_kcp_send(a, data, sizeof(data)), sizeof(data));
	wn_kcp_flush(a, 0);
	assert_int_equal(ca.n, 4);
	/* sn 0 is lost; 1..3 arrive and are acked one datagram each. */
	for (int i = 1; i < 4; i++) {
		assert_int_equal(wn_kcp_input(b, ca.pkt[i], ca.len[i], 10), 0);
		wn_kcp_flush(b, 10);
	}
	assert_int_equal(cb.n, 3);
	ca.n = 0;
	assert_int_equal(wn_kcp_input(a, cb.pkt[0], cb.len[0], 20), 0);
	assert_int_equal(wn_kcp_deadline(a, 20), 200); /* one dup: RTO */
	assert_int_equal(wn_kcp_input(a, cb.pkt[1], cb.len[1], 21), 0);
	assert_int_equal(wn_kcp_deadline(a, 21), 21); /* at once */
	wn_kcp_flush(a, 25);
	assert_int_equal(ca.n, 1);
	struct wn_kcp_hdr h = seg_at(ca.pkt[0], ca.len[0], 0, NULL);
	assert_int_equal(h.cmd, WN_KCP_CMD_PUSH);
	assert_int_equal(h.sn, 0);
	wn_kcp_get_stats(a, &st);
	assert_int_equal(st.fast_retrans, 1);
	assert_int_equal(st.lost_segs, 0);
	assert_int_equal(st.retrans_segs, 1);
	assert_int_equal(st.out_segs, 5);
	wn_kcp_free(a);
	wn_kcp_free(b);
}

/* A zero window from the peer stops new data and starts probing: WASK
 * after 7 s, then 10.5 s later; a WASK is answered with WINS. */
static void window_probe(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture c;
	struct wn_kcp_stats st;
	uint8_t pkt[64];
	size_t n;
	struct wn_kcp *k = mk(&cfg, &c, 0);

	n = build(pkt, 0x1234, WN_KCP_CMD_WINS, 0, 0, 0, NULL, 0);
	pkt[6] = pkt[7] = 0; /* wnd 0 */
	assert_int_equal(wn_kcp_input(k, pkt, n, 100), 0);
	assert_int_equal(wn_kcp_send(k, (const uint8_t *)"data", 4), 4);
	assert_int_equal(wn_kcp_deadline(k, 100), 7100);
	wn_kcp_flush(k, 7100);
	assert_int_equal(c.n, 1);
	struct wn_kcp_hdr h = seg_at(c.pkt[0], c.len[0], 0, NULL);
	assert_int_equal(h.cmd, WN_KCP_CMD_WASK);
	assert_int_equal(seg_count(c.pkt[0], c.len[0]), 1); /* no data */
	assert_int_equal(wn_kcp_deadline(k, 7100), 7100 + 10500);
	wn_kcp_get_stats(k, &st);
	assert_int_equal(st.probes_sent, 1);
	/* The peer's window opens: the data goes. */
	n = build(pkt, 0x1234, WN_KCP_CMD_WINS, 0, 0, 0, NULL, 0);
	assert_int_equal(wn_kcp_input(k, pkt, n, 8000), 0);
	assert_int_equal(wn_kcp_deadline(k, 8000), 8000);
	c.n = 0;
	wn_kcp_flush(k, 8000);
	assert_int_equal(c.n, 1);
	assert_int_equal(seg_at(c.pkt[0], c.len[0], 0, NULL).cmd,
	                 WN_KCP_CMD_PUSH);
	/* Asked for our window, we tell it. */
	n = build(pkt, 0x1234, WN_KCP_CMD_WASK, 0, 0, 0, NULL, 0);
	assert_int_equal(wn_kcp_input(k, pkt, n, 8200), 0);
	assert_int_equal(wn_kcp_deadline(k, 8200), 8200);
	c.n = 0;
	wn_kcp_flush(k, 8200);
	assert_int_equal(c.n, 1);
	h = seg_at(c.pkt[0], c.len[0], 0, NULL);
	assert_int_equal(h.cmd, WN_KCP_CMD_WINS);
	assert_int_equal(h.wnd, 128);
	wn_kcp_free(k);
}

/* The advertised window counts unread segments: it shrinks as data waits
 * for the reader and reopens as the reader drains it. */
static void window_tracks_reader(void **state)
{
	(void)state;
	struct wn_kcp_cfg cfg = cfg_base();
	struct capture c;
	uint8_t pkt[64], out[16];
	struct wn_kcp *k;

	cfg.rcv_wnd = 4;
	k = mk(&cfg, &c, 0);
	for (uint32_t sn = 0; sn < 3; sn++)
		assert_int_equal(
		    wn_kcp_input(k, pkt,
		                 build(pkt, 0x1234, WN_KCP_CMD_PUSH, sn, 0, 0,
		                       "abcd", 4),
		                 1),
		    0);
	wn_kcp_flush(k, 1);
	assert_int_equal(c.n, 1);
	assert_int_equal(seg_count(c.pkt[0], c.len[0]), 1); /* una 3 */
	assert_int_equal(seg_at(c.pkt[0], c.len[0], 0, NULL).wnd, 1);
	/* Fill the window: it closes; a fifth segment is out of window. */
	for (uint32_t sn = 3; sn < 5; sn++)
		assert_int_equal(
		    wn_kcp_input(k, pkt,
		                 build(pkt, 0x1234, WN_KCP_CMD_PUSH, sn, 0, 0,
		                       "efgh", 4),
		                 2),
		    0);
	assert_int_equal(wn_kcp_readable(k), 16);
	wn_kcp_flush(k, 2);
	assert_int_equal(c.n, 2);
	/* sn 4, held beyond rcv_nxt; sn 3 is under una */
	assert_int_equal(seg_count(c.pkt[1], c.len[1]), 1);
	assert_int_equal(seg_at(c.pkt[1], c.len[1], 0, NULL).sn, 4);
	assert_int_equal(seg_at(c.pkt[1], c.len[1], 0, NULL).wnd, 0);
	/* Reading one segment lets the one held beyond the queue move up:
	 * the window stays closed and nothing needs saying. */
	assert_int_equal(wn_kcp_recv(k, out, 4), 4);
	assert_int_equal(wn_kcp_readable(k), 16);
	assert_int_equal(wn_kcp_deadline(k, 3), 3 + WN_KCP_IDLE_MS);
	/* Draining it reopens the window, and the peer is told at once. */
	assert_int_equal(wn_kcp_recv(k, out, sizeof(out)), 16);
	assert_int_equal(wn_kcp_deadline(k, 3), 3);
	wn_kcp_flush(k, 3);
	assert_int_equal(c.n, 3);
	struct wn_kcp_hdr h = seg_at(c.pkt[2], c.len[2], 0, NULL);
	assert_int_equal(h.cmd, WN_KCP_CMD_WINS);
	assert_int_equal(h.wnd, 4);
	assert_int_equal(h.una, 5);
	wn_kcp_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(hdr_known_bytes),
	    cmocka_unit_test(cfg_presets_and_limits),
	    cmocka_unit_test(stream_fills_segments),
	    cmocka_unit_test(stream_send_limit),
	    cmocka_unit_test(message_fragments),
	    cmocka_unit_test(stream_partial_reads),
	    cmocka_unit_test(malformed_input),
	    cmocka_unit_test(segment_size_bounds),
	    cmocka_unit_test(ack_list_bounded),
	    cmocka_unit_test(deadline_exact),
	    cmocka_unit_test(ack_batches),
	    cmocka_unit_test(ack_at_once_after_gap),
	    cmocka_unit_test(rto_backoff),
	    cmocka_unit_test(fast_resend),
	    cmocka_unit_test(window_probe),
	    cmocka_unit_test(window_tracks_reader),
	    cmocka_unit_test(acks_above_una_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
