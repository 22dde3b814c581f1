/* smux core: the frame codec on known bytes, what a single core puts on the
 * wire, two cores talking (open, data both ways, half-close, reset, v1 and
 * v2, native and compat), protocol errors and callback re-entrancy. Flow
 * control, fairness and limits are in smux_flow_test.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/smux.h"
#include "support/smuxpair.h"
#include "util/err.h"

static struct wn_smux_cfg cfg_of(int version, int client, int compat)
{
	struct wn_smux_cfg c;

	wn_smux_cfg_default(&c);
	c.version = version;
	c.client = client;
	c.compat = compat;
	return c;
}

/* Appends a frame to buf at *off. */
static void frame(uint8_t *buf, size_t *off, uint8_t ver, uint8_t cmd,
                  uint32_t sid, const uint8_t *data, uint16_t len)
{
	uint8_t *p = buf + *off;

	p[0] = ver;
	p[1] = cmd;
	p[2] = (uint8_t)len;
	p[3] = (uint8_t)(len >> 8);
	p[4] = (uint8_t)sid;
	p[5] = (uint8_t)(sid >> 8);
	p[6] = (uint8_t)(sid >> 16);
	p[7] = (uint8_t)(sid >> 24);
	if (len)
		memcpy(p + 8, data, len);
	*off += 8u + len;
}

static void test_header_codec(void **state)
{
	(void)state;
	const uint8_t wire[] = {2, 2, 0x34, 0x12, 0x78, 0x56, 0x34, 0x12};
	struct wn_smux_hdr h;
	uint8_t out[8];
	struct wn_wr wr;

	wn_smux_hdr_decode(wire, &h);
	assert_int_equal(h.ver, 2);
	assert_int_equal(h.cmd, WN_SMUX_PSH);
	assert_int_equal(h.len, 0x1234);
	assert_int_equal(h.sid, 0x12345678);
	wn_wr_init(&wr, out, sizeof(out));
	assert_int_equal(wn_smux_hdr_encode(&wr, &h), 0);
	assert_memory_equal(out, wire, sizeof(wire));
	wn_wr_init(&wr, out, 7);
	assert_int_equal(wn_smux_hdr_encode(&wr, &h), WN_ENOSPC);

	struct {
		struct wn_smux_hdr h;
		int version, native, rc;
	} cases[] = {
	    {{2, WN_SMUX_PSH, 100, 3}, 2, 0, 0},
	    {{1, WN_SMUX_PSH, 100, 3}, 2, 0, WN_EPROTO}, /* version */
	    {{3, WN_SMUX_NOP, 0, 0}, 3, 1, WN_EPROTO},   /* no v3 */
	    {{2, WN_SMUX_SYN, 0, 3}, 2, 0, 0},
	    {{2, WN_SMUX_SYN, 1, 3}, 2, 0, WN_EPROTO},
	    {{2, WN_SMUX_FIN, 2, 3}, 2, 0, WN_EPROTO},
	    {{2, WN_SMUX_NOP, 0, 0}, 2, 0, 0},
	    {{2, WN_SMUX_NOP, 4, 0}, 2, 0, WN_EPROTO},
	    {{2, WN_SMUX_UPD, 8, 3}, 2, 0, 0},
	    {{2, WN_SMUX_UPD, 4, 3}, 2, 0, WN_EPROTO},
	    {{1, WN_SMUX_UPD, 8, 3}, 1, 0, WN_EPROTO}, /* UPD is v2 only */
	    {{2, WN_SMUX_RST, 4, 3}, 2, 1, 0},
	    {{2, WN_SMUX_RST, 4, 3}, 2, 0, WN_EPROTO}, /* compat: no RST */
	    {{2, WN_SMUX_RST, 8, 3}, 2, 1, WN_EPROTO},
	    {{2, 6, 0, 3}, 2, 1, WN_EPROTO},
	    {{2, 255, 0, 3}, 2, 1, WN_EPROTO},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = NULL;
		assert_int_equal(wn_smux_hdr_check(&cases[i].h,
		                                   cases[i].version,
		                                   cases[i].native, &why),
		                 cases[i].rc);
		/* Every refusal says why. */
		assert_true((cases[i].rc == 0) == (why == NULL));
	}
}

static void test_bad_config(void **state)
{
	(void)state;
	struct wn_smux_cfg c = cfg_of(2, 1, 0);
	struct wn_smux *m = NULL;

	c.version = 3;
	assert_int_equal(wn_smux_new(&c, NULL, &m), WN_EINVAL);
	c = cfg_of(2, 1, 0);
	c.max_frame = 65536;
	assert_int_equal(wn_smux_new(&c, NULL, &m), WN_EINVAL);
	c = cfg_of(2, 1, 0);
	c.stream_window = 1;
	assert_int_equal(wn_smux_new(&c, NULL, &m), WN_EINVAL);
	c = cfg_of(2, 1, 0);
	c.stream_window = 0x80000000u;
	assert_int_equal(wn_smux_new(&c, NULL, &m), WN_EINVAL);
	c = cfg_of(2, 1, 0);
	c.stream_send_limit = 0;
	assert_int_equal(wn_smux_new(&c, NULL, &m), WN_EINVAL);
	c = cfg_of(2, 1, 0);
	c.max_streams = 0;
	assert_int_equal(wn_smux_new(&c, NULL, &m), WN_EINVAL);
	assert_null(m);
}

/* What a client core writes: ids 3, 5; SYN before data; UPD at open with a
 * window above the initial guess; NOP; FIN after the data. */
static void test_client_wire_bytes(void **state)
{
	(void)state;
	struct wn_smux_cfg c = cfg_of(2, 1, 0);
	struct wn_smux *m;
	uint8_t out[256];
	uint32_t sid;

	c.stream_window = 1 << 20;
	assert_int_equal(wn_smux_new(&c, NULL, &m), 0);
	assert_false(wn_smux_want_pull(m));
	assert_int_equal(wn_smux_pull(m, out, sizeof(out)), 0);
	assert_int_equal(wn_smux_open(m, &sid), 0);
	assert_int_equal(sid, 3);
	assert_int_equal(wn_smux_write(m, sid, (const uint8_t *)"hi", 2), 2);
	assert_int_equal(wn_smux_shutdown(m, sid), 0);
	wn_smux_ping(m);
	wn_smux_ping(m);
	assert_true(wn_smux_want_pull(m));
	const uint8_t want[] = {
	    2,    3, 0, 0, 0, 0, 0, 0, /* NOP sid 0 */
	    2,    0, 0, 0, 3, 0, 0, 0, /* SYN 3 */
	    2,    4, 8, 0, 3, 0, 0, 0, 0,   0,
	    0,    0, 0, 0,                       /* UPD 3: consumed 0 */
	    0x10, 0,                             /* window 1 MiB */
	    2,    2, 2, 0, 3, 0, 0, 0, 'h', 'i', /* PSH 3 "hi" */
	    2,    1, 0, 0, 3, 0, 0, 0,           /* FIN 3 */
	};
	assert_int_equal(wn_smux_pull(m, out, sizeof(out)), sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_false(wn_smux_want_pull(m));
	assert_int_equal(wn_smux_open(m, &sid), 0);
	assert_int_equal(sid, 5);
	wn_smux_free(m);

	/* Server ids are even from 2; a v1 frame carries version 1. */
	c = cfg_of(1, 0, 1);
	assert_int_equal(wn_smux_new(&c, NULL, &m), 0);
	assert_int_equal(wn_smux_open(m, &sid), 0);
	assert_int_equal(sid, 2);
	const uint8_t syn2[] = {1, 0, 0, 0, 2, 0, 0, 0};
	assert_int_equal(wn_smux_pull(m, out, sizeof(out)), sizeof(syn2));
	assert_memory_equal(out, syn2, sizeof(syn2));
	wn_smux_free(m);
}

/* A PSH larger than max_frame is split; a pull never splits a frame and
 * shortens a PSH to the room it has, and the stream's turn goes on in the
 * next pull. */
static void test_frame_split(void **state)
{
	(void)state;
	struct wn_smux_cfg c = cfg_of(2, 1, 0);
	struct wn_smux *m;
	uint8_t data[1000], out[2048];
	uint32_t sid;

	c.max_frame = 300;
	memset(data, 0xab, sizeof(data));
	assert_int_equal(wn_smux_new(&c, NULL, &m), 0);
	assert_int_equal(wn_smux_open(m, &sid), 0);
	assert_int_equal(wn_smux_write(m, sid, data, sizeof(data)), 1000);
	/* Too small for the SYN: nothing. */
	assert_int_equal(wn_smux_pull(m, out, 7), 0);
	/* SYN, then a PSH cut to the room left (20 - 8 - 8 = 4 bytes). */
	assert_int_equal(wn_smux_pull(m, out, 20), 20);
	assert_int_equal(out[1], WN_SMUX_SYN);
	assert_int_equal(out[8 + 1], WN_SMUX_PSH);
	assert_int_equal(out[8 + 2], 4);
	/* The rest of that turn, then whole frames. */
	assert_int_equal(wn_smux_pull(m, out, sizeof(out)),
	                 8 + 296 + 2 * (8 + 300) + 8 + 100);
	assert_int_equal(out[2] | out[3] << 8, 296);
	assert_int_equal(out[304 + 2] | out[304 + 3] << 8, 300);
	assert_int_equal(out[304 + 2 * 308 + 2], 100);
	wn_smux_free(m);
}

static void run_basic(int version, int compat)
{
	struct wn_smux_cfg ca = cfg_of(version, 1, compat);
	struct wn_smux_cfg cb = cfg_of(version, 0, compat);
	struct wn_sp p;
	uint32_t s1, s2, s3;

	assert_int_equal(wn_sp_init(&p, &ca, &cb, 42 + version + compat), 0);
	p.a.forget_done = 1;
	p.b.forget_done = 1;
	s1 = wn_sp_open(&p.a, 300000, 1);
	s2 = wn_sp_open(&p.a, 0, 1);
	s3 = wn_sp_open(&p.a, 70001, 1);
	assert_int_equal(s1, 3);
	assert_int_equal(s3, 7);
	wn_sp_send(&p.b, s1, 123457, 1);
	wn_sp_send(&p.b, s3, 500000, 1);
	/* The server opens one too. */
	uint32_t s4 = wn_sp_open(&p.b, 99999, 1);
	assert_int_equal(s4, 2);
	wn_sp_send(&p.a, s4, 4242, 1);
	assert_int_equal(wn_sp_pump(&p), 0);

	struct {
		struct wn_sp_side *d;
		uint32_t sid;
		uint64_t want;
	} checks[] = {
	    {&p.b, s1, 300000}, {&p.b, s2, 0},      {&p.b, s3, 70001},
	    {&p.a, s1, 123457}, {&p.a, s3, 500000}, {&p.a, s4, 99999},
	    {&p.b, s4, 4242},
	};
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		struct wn_sp_rx *r = wn_sp_rx(checks[i].d, checks[i].sid);
		assert_int_equal(r->got, checks[i].want);
		assert_int_equal(r->bad, 0);
		assert_int_equal(r->fin, 1);
		assert_int_equal(r->reset, 0);
		assert_int_equal(r->after_end, 0);
	}
	assert_int_equal(wn_sp_rx(&p.b, s1)->open, 1);
	assert_int_equal(wn_sp_rx(&p.a, s4)->open, 1);
	/* Both directions ended and both sides forgot: nothing is left. */
	assert_int_equal(wn_smux_nstreams(p.a.m), 0);
	assert_int_equal(wn_smux_nstreams(p.b.m), 0);
	assert_int_equal(wn_smux_recv_pending(p.a.m), 0);
	assert_int_equal(wn_smux_recv_pending(p.b.m), 0);
	wn_sp_free(&p);
}

static void test_data_both_ways(void **state)
{
	(void)state;
	run_basic(2, 0);
	run_basic(2, 1);
	run_basic(1, 0);
	run_basic(1, 1);
}

/* Each direction ends on its own: after the client's FIN the server still
 * sends, and the client still receives. */
static void test_half_close(void **state)
{
	(void)state;
	struct wn_smux_cfg ca = cfg_of(2, 1, 1), cb = cfg_of(2, 0, 1);
	struct wn_sp p;
	uint32_t sid;

	assert_int_equal(wn_sp_init(&p, &ca, &cb, 7), 0);
	sid = wn_sp_open(&p.a, 1000, 1);
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_sp_rx(&p.b, sid)->fin, 1);
	assert_int_equal(wn_sp_rx(&p.a, sid)->fin, 0);
	/* The client's direction is over: writing fails, reading goes on. */
	assert_int_equal(wn_smux_write(p.a.m, sid, (const uint8_t *)"x", 1),
	                 WN_ECLOSED);
	assert_int_equal(wn_smux_send_space(p.a.m, sid), 0);
	wn_sp_send(&p.b, sid, 200000, 0);
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_sp_rx(&p.a, sid)->got, 200000);
	assert_int_equal(wn_sp_rx(&p.a, sid)->fin, 0);
	assert_int_equal(wn_smux_shutdown(p.b.m, sid), 0);
	assert_int_equal(wn_smux_shutdown(p.b.m, sid), 0); /* idempotent */
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_sp_rx(&p.a, sid)->fin, 1);
	assert_int_equal(wn_sp_rx(&p.a, sid)->bad, 0);
	/* Streams stay until forgotten. */
	assert_int_equal(wn_smux_nstreams(p.a.m), 1);
	wn_smux_forget(p.a.m, sid);
	wn_smux_forget(p.b.m, sid);
	assert_int_equal(wn_smux_nstreams(p.a.m), 0);
	assert_int_equal(wn_smux_nstreams(p.b.m), 0);
	assert_false(wn_smux_want_pull(p.a.m));
	assert_false(wn_smux_want_pull(p.b.m));
	wn_sp_free(&p);
}

/* Native: the reason arrives with on_reset and queued data is dropped.
 * Compat: the peer sees a FIN instead and the reason is lost. */
static void run_reset(int compat)
{
	struct wn_smux_cfg ca = cfg_of(2, 1, compat), cb = cfg_of(2, 0, compat);
	struct wn_sp p;
	uint8_t junk[50000];
	uint32_t sid;

	memset(junk, 0, sizeof(junk));
	assert_int_equal(wn_sp_init(&p, &ca, &cb, 9), 0);
	sid = wn_sp_open(&p.a, 100, 0);
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_sp_rx(&p.b, sid)->got, 100);
	/* Queued but never sent: dropped by the reset. */
	assert_int_equal(wn_smux_write(p.a.m, sid, junk, sizeof(junk)),
	                 (ssize_t)sizeof(junk));
	assert_int_equal(wn_smux_reset(p.a.m, sid, 7), 0);
	assert_int_equal(wn_smux_send_queued(p.a.m, sid), 0);
	assert_int_equal(wn_smux_reset(p.a.m, sid, 8), 0); /* no-op */
	assert_int_equal(wn_smux_write(p.a.m, sid, junk, 1), WN_ECLOSED);
	assert_int_equal(wn_smux_shutdown(p.a.m, sid), WN_ECLOSED);
	assert_int_equal(wn_sp_pump(&p), 0);
	struct wn_sp_rx *r = wn_sp_rx(&p.b, sid);
	assert_int_equal(r->got, 100);
	assert_int_equal(r->bad, 0);
	if (compat) {
		assert_int_equal(r->fin, 1);
		assert_int_equal(r->reset, 0);
	} else {
		assert_int_equal(r->fin, 0);
		assert_int_equal(r->reset, 1);
		assert_int_equal(r->reason, 7);
		/* The peer's stream is dead: it may not write any more. */
		assert_int_equal(wn_smux_write(p.b.m, sid, junk, 1),
		                 WN_ECLOSED);
	}
	/* Data the server sends now is dropped by the client. */
	if (compat) {
		wn_sp_send(&p.b, sid, 5000, 1);
		assert_int_equal(wn_sp_pump(&p), 0);
		assert_int_equal(wn_sp_rx(&p.a, sid)->got, 0);
		assert_int_equal(wn_sp_rx(&p.a, sid)->fin, 0);
	}
	wn_smux_forget(p.a.m, sid);
	wn_smux_forget(p.b.m, sid);
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_smux_nstreams(p.a.m), 0);
	assert_int_equal(wn_smux_nstreams(p.b.m), 0);
	wn_sp_free(&p);
}

static void test_reset_native_vs_compat(void **state)
{
	(void)state;
	run_reset(0);
	run_reset(1);
}

/* A stream reset before its SYN left costs nothing on the wire. */
static void test_reset_before_syn(void **state)
{
	(void)state;
	struct wn_smux_cfg c = cfg_of(2, 1, 0);
	struct wn_smux *m;
	uint8_t out[64];
	uint32_t sid;

	assert_int_equal(wn_smux_new(&c, NULL, &m), 0);
	assert_int_equal(wn_smux_open(m, &sid), 0);
	assert_int_equal(wn_smux_write(m, sid, (const uint8_t *)"abc", 3), 3);
	assert_int_equal(wn_smux_reset(m, sid, 4), 0);
	assert_false(wn_smux_want_pull(m));
	assert_int_equal(wn_smux_pull(m, out, sizeof(out)), 0);
	assert_int_equal(wn_smux_nstreams(m), 1);
	wn_smux_forget(m, sid);
	assert_int_equal(wn_smux_nstreams(m), 0);
	/* A second RST for a stream already sent one: RST frame bytes. */
	assert_int_equal(wn_smux_open(m, &sid), 0);
	assert_int_equal(wn_smux_pull(m, out, sizeof(out)), 8);
	assert_int_equal(wn_smux_reset(m, sid, 0x01020304), 0);
	const uint8_t rst[] = {2, 5, 4, 0, 5, 0, 0, 0, 4, 3, 2, 1};
	assert_int_equal(wn_smux_pull(m, out, sizeof(out)), sizeof(rst));
	assert_memory_equal(out, rst, sizeof(rst));
	wn_smux_free(m);
}

/* on_open refusing: the opener gets the reason (native) or a FIN. */
static void run_refuse(int compat)
{
	struct wn_smux_cfg ca = cfg_of(2, 1, compat), cb = cfg_of(2, 0, compat);
	struct wn_sp p;
	uint32_t sid;

	assert_int_equal(wn_sp_init(&p, &ca, &cb, 11), 0);
	p.b.refuse = 2; /* the engine's reason code */
	sid = wn_sp_open(&p.a, 5000, 1);
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_sp_rx(&p.b, sid)->open, 1);
	assert_int_equal(wn_sp_rx(&p.b, sid)->got, 0);
	assert_int_equal(wn_smux_nstreams(p.b.m), 0);
	struct wn_sp_rx *r = wn_sp_rx(&p.a, sid);
	if (compat) {
		assert_int_equal(r->fin, 1);
		assert_int_equal(r->reset, 0);
	} else {
		assert_int_equal(r->reset, 1);
		assert_int_equal(r->reason, 2);
	}
	wn_sp_free(&p);
}

/* wn_smux_stop: the peer gets all of our data and our FIN, then (native)
 * an RST with the reason; in compat mode only the FIN. */
static void run_stop(int compat)
{
	struct wn_smux_cfg ca = cfg_of(2, 1, compat), cb = cfg_of(2, 0, compat);
	struct wn_sp p;
	uint32_t sid;

	assert_int_equal(wn_sp_init(&p, &ca, &cb, 12), 0);
	sid = wn_sp_open(&p.a, 5000, 0);
	assert_int_equal(wn_sp_feed(&p.a), 5000);
	assert_int_equal(wn_smux_stop(p.a.m, sid, 8), 0);
	assert_int_equal(wn_smux_write(p.a.m, sid, (const uint8_t *)"x", 1),
	                 WN_ECLOSED);
	wn_smux_forget(p.a.m, sid);
	assert_int_equal(wn_sp_pump(&p), 0);
	struct wn_sp_rx *r = wn_sp_rx(&p.b, sid);
	assert_int_equal(r->got, 5000);
	assert_int_equal(r->bad, 0);
	assert_int_equal(r->fin, 1);
	assert_int_equal(r->reset, compat ? 0 : 1);
	if (!compat)
		assert_int_equal(r->reason, 8);
	assert_int_equal(wn_smux_nstreams(p.a.m), 0);
	wn_sp_free(&p);
}

static void test_stop(void **state)
{
	(void)state;
	run_stop(0);
	run_stop(1);
}

static void test_refuse(void **state)
{
	(void)state;
	run_refuse(0);
	run_refuse(1);
}

/* Feeds bytes to a fresh core; returns the input result. */
static int feed(const struct wn_smux_cfg *c, const uint8_t *b, size_t n)
{
	struct wn_smux *m;
	int rc;

	assert_int_equal(wn_smux_new(c, NULL, &m), 0);
	assert_null(wn_smux_why(m));
	rc = wn_smux_input(m, b, n);
	/* Errors are sticky, and say why. */
	if (rc) {
		assert_int_equal(wn_smux_input(m, b, 0), rc);
		assert_non_null(wn_smux_why(m));
	} else {
		assert_null(wn_smux_why(m));
	}
	wn_smux_free(m);
	return rc;
}

static void test_protocol_errors(void **state)
{
	(void)state;
	struct wn_smux_cfg srv = cfg_of(2, 0, 0), cmp = cfg_of(2, 0, 1);
	struct wn_smux_cfg v1 = cfg_of(1, 0, 0), cli = cfg_of(2, 1, 0);
	const uint8_t upd[8] = {1, 0, 0, 0, 0, 0, 4, 0};
	const uint8_t rst[4] = {2, 0, 0, 0};
	uint8_t b[2048], big[600];
	size_t n;

	memset(big, 0, sizeof(big));
#define FEED_RC(cfg) feed(&(cfg), b, n)
	n = 0, frame(b, &n, 1, WN_SMUX_NOP, 0, NULL, 0);
	assert_int_equal(FEED_RC(srv), WN_EPROTO); /* wrong version */
	n = 0, frame(b, &n, 2, 6, 3, NULL, 0);
	assert_int_equal(FEED_RC(srv), WN_EPROTO); /* unknown command */
	n = 0, frame(b, &n, 2, WN_SMUX_SYN, 3, NULL, 0);
	frame(b, &n, 2, WN_SMUX_RST, 3, rst, 4);
	assert_int_equal(FEED_RC(srv), 0);         /* native: RST is fine */
	assert_int_equal(FEED_RC(cmp), WN_EPROTO); /* compat: it is not */
	n = 0, frame(b, &n, 2, WN_SMUX_RST, 3, upd, 8);
	assert_int_equal(FEED_RC(srv), WN_EPROTO); /* RST length */
	n = 0, frame(b, &n, 2, WN_SMUX_SYN, 3, big, 1);
	assert_int_equal(FEED_RC(srv), WN_EPROTO); /* SYN with data */
	n = 0, frame(b, &n, 2, WN_SMUX_NOP, 0, big, 2);
	assert_int_equal(FEED_RC(srv), WN_EPROTO);
	n = 0, frame(b, &n, 2, WN_SMUX_FIN, 3, big, 1);
	assert_int_equal(FEED_RC(srv), WN_EPROTO);
	n = 0, frame(b, &n, 1, WN_SMUX_UPD, 3, upd, 8);
	assert_int_equal(FEED_RC(v1), WN_EPROTO); /* UPD in v1 */
	n = 0, frame(b, &n, 2, WN_SMUX_UPD, 3, upd, 4);
	assert_int_equal(FEED_RC(srv), WN_EPROTO); /* UPD length */
	n = 0, frame(b, &n, 2, WN_SMUX_SYN, 4, NULL, 0);
	assert_int_equal(FEED_RC(srv), WN_EPROTO); /* our parity */
	assert_int_equal(FEED_RC(cli), 0);         /* the server's: fine */
	n = 0, frame(b, &n, 2, WN_SMUX_SYN, 3, NULL, 0);
	assert_int_equal(FEED_RC(cli), WN_EPROTO);
	n = 0, frame(b, &n, 2, WN_SMUX_SYN, 0, NULL, 0);
	assert_int_equal(FEED_RC(srv), WN_EPROTO); /* id 0 */
	assert_int_equal(FEED_RC(cli), WN_EPROTO);
	n = 0, frame(b, &n, 2, WN_SMUX_SYN, 3, NULL, 0);
	frame(b, &n, 2, WN_SMUX_SYN, 3, NULL, 0);
	assert_int_equal(FEED_RC(srv), WN_EPROTO); /* SYN of a live id */
	/* The peer acknowledges bytes we never sent. */
	n = 0, frame(b, &n, 2, WN_SMUX_SYN, 3, NULL, 0);
	frame(b, &n, 2, WN_SMUX_UPD, 3, upd, 8);
	assert_int_equal(FEED_RC(srv), WN_EPROTO);

	/* Not errors, as in smux: frames for unknown streams are dropped, an
	 * empty PSH is nothing, NOPs are for any id. */
	n = 0, frame(b, &n, 2, WN_SMUX_PSH, 99, big, 500);
	frame(b, &n, 2, WN_SMUX_FIN, 99, NULL, 0);
	frame(b, &n, 2, WN_SMUX_UPD, 99, upd, 8);
	frame(b, &n, 2, WN_SMUX_RST, 99, rst, 4);
	frame(b, &n, 2, WN_SMUX_PSH, 3, NULL, 0);
	frame(b, &n, 2, WN_SMUX_NOP, 12345, NULL, 0);
	assert_int_equal(FEED_RC(srv), 0);
#undef FEED_RC
}

/* Data beyond what the v2 window allowed is a protocol error; up to it is
 * fine. */
static void ignore_data(void *ctx, uint32_t sid, const uint8_t *d, size_t n)
{
	(void)ctx;
	(void)sid;
	(void)d;
	(void)n;
}

static void test_window_overrun(void **state)
{
	(void)state;
	struct wn_smux_cfg c = cfg_of(2, 0, 1);
	struct wn_smux_cb cb = {.on_data = ignore_data};
	struct wn_smux *m;
	static uint8_t b[8 + 8 * (8 + 32768) + 8 + 1];
	uint8_t chunk[32768];
	size_t n = 0;

	memset(chunk, 0x55, sizeof(chunk));
	frame(b, &n, 2, WN_SMUX_SYN, 3, NULL, 0);
	for (int i = 0; i < 8; i++) /* exactly 256 KiB */
		frame(b, &n, 2, WN_SMUX_PSH, 3, chunk, 32768);
	assert_int_equal(wn_smux_new(&c, &cb, &m), 0);
	assert_int_equal(wn_smux_input(m, b, n), 0);
	assert_int_equal(wn_smux_recv_pending(m), 262144);
	n = 0;
	frame(b, &n, 2, WN_SMUX_PSH, 3, chunk, 1);
	assert_int_equal(wn_smux_input(m, b, n), WN_EPROTO);
	wn_smux_free(m);
}

/* Re-entrancy: a callback may forget or reset the stream it is told about
 * (also in the middle of a frame), and may not re-enter input or pull. */
struct reent {
	struct wn_smux *m;
	int mode; /* 0 forget in on_data, 1 reset in on_data */
	int data_calls;
	int nested_input, nested_pull;
};

static void reent_data(void *ctx, uint32_t sid, const uint8_t *d, size_t n)
{
	struct reent *r = ctx;
	uint8_t buf[64] = {0};

	(void)d;
	(void)n;
	r->data_calls++;
	r->nested_input = wn_smux_input(r->m, buf, 1);
	r->nested_pull = (int)wn_smux_pull(r->m, buf, sizeof(buf));
	if (r->mode == 0)
		wn_smux_forget(r->m, sid);
	else
		wn_smux_reset(r->m, sid, 3);
	/* Calls on a stream that is gone are refused, not crashes. */
	wn_smux_consumed(r->m, sid, 100);
	wn_smux_forget(r->m, sid);
}

static void test_reentrancy(void **state)
{
	(void)state;
	struct wn_smux_cfg c = cfg_of(2, 0, 0);
	struct wn_smux_cb cb = {.on_data = reent_data};
	uint8_t b[4096], data[1000], out[256];
	size_t n = 0;

	memset(data, 1, sizeof(data));
	frame(b, &n, 2, WN_SMUX_SYN, 3, NULL, 0);
	frame(b, &n, 2, WN_SMUX_PSH, 3, data, 1000);
	frame(b, &n, 2, WN_SMUX_PSH, 3, data, 1000);
	frame(b, &n, 2, WN_SMUX_FIN, 3, NULL, 0);
	for (int mode = 0; mode < 2; mode++) {
		struct reent r = {.mode = mode};
		cb.ctx = &r;
		assert_int_equal(wn_smux_new(&c, &cb, &r.m), 0);
		/* Cut inside the first PSH: the rest of it is not delivered. */
		assert_int_equal(wn_smux_input(r.m, b, 300), 0);
		assert_int_equal(wn_smux_input(r.m, b + 300, n - 300), 0);
		assert_int_equal(r.data_calls, 1);
		assert_int_equal(r.nested_input, WN_EINVAL);
		assert_int_equal(r.nested_pull, 0);
		/* forget: our FIN is owed; reset: our RST. Then it is gone. */
		assert_int_equal(wn_smux_nstreams(r.m), 1);
		size_t got = wn_smux_pull(r.m, out, sizeof(out));
		assert_int_equal(got, mode == 0 ? 8 : 12);
		assert_int_equal(out[1], mode == 0 ? WN_SMUX_FIN : WN_SMUX_RST);
		assert_int_equal(wn_smux_nstreams(r.m), 0);
		assert_int_equal(wn_smux_recv_pending(r.m), 0);
		wn_smux_free(r.m);
	}
}

/* Calls on unknown ids are refused or ignored. */
static void test_unknown_ids(void **state)
{
	(void)state;
	struct wn_smux_cfg c = cfg_of(2, 0, 0);
	struct wn_smux *m;

	assert_int_equal(wn_smux_new(&c, NULL, &m), 0);
	assert_int_equal(wn_smux_write(m, 9, (const uint8_t *)"x", 1),
	                 WN_EINVAL);
	assert_int_equal(wn_smux_shutdown(m, 9), WN_EINVAL);
	assert_int_equal(wn_smux_reset(m, 9, 1), WN_EINVAL);
	assert_int_equal(wn_smux_send_space(m, 9), 0);
	wn_smux_consumed(m, 9, 10);
	wn_smux_forget(m, 9);
	assert_false(wn_smux_want_pull(m));
	wn_smux_free(m);
	wn_smux_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_codec),
	    cmocka_unit_test(test_bad_config),
	    cmocka_unit_test(test_client_wire_bytes),
	    cmocka_unit_test(test_frame_split),
	    cmocka_unit_test(test_data_both_ways),
	    cmocka_unit_test(test_half_close),
	    cmocka_unit_test(test_reset_native_vs_compat),
	    cmocka_unit_test(test_reset_before_syn),
	    cmocka_unit_test(test_refuse),
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_protocol_errors),
	    cmocka_unit_test(test_window_overrun),
	    cmocka_unit_test(test_reentrancy),
	    cmocka_unit_test(test_unknown_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
