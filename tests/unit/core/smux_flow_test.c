/* smux core: v2 flow control (a stalled stream stops at its window while
 * others finish), UPD timing, v1's lack of per-stream control, round-robin
 * fairness, on_writable, max_streams, counter wrap-around and the memory an
 * idle stream costs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/smux.h"
#include "core/smux_int.h"
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

/* 64 streams; the server never consumes one of them. The others finish;
 * the stalled one receives exactly its window and the client keeps no more
 * than its send limit for it. Consuming then lets it finish. */
static void run_stall(uint32_t window, int compat)
{
	struct wn_smux_cfg ca = cfg_of(2, 1, compat), cb = cfg_of(2, 0, compat);
	/* Until its first UPD the peer assumes the initial window. */
	const uint64_t eff =
	    window > WN_SMUX_INITIAL_WINDOW ? window : WN_SMUX_INITIAL_WINDOW;
	const uint64_t total = eff + eff / 2;
	uint32_t sids[64], stall;
	struct wn_sp p;

	ca.stream_send_limit = 256 * 1024;
	cb.stream_window = window;
	assert_int_equal(wn_sp_init(&p, &ca, &cb, window + compat), 0);
	for (int i = 0; i < 64; i++)
		sids[i] = wn_sp_open(&p.a, total, 1);
	stall = sids[17];
	p.b.stall = stall;
	assert_int_equal(wn_sp_pump(&p), 0);

	for (int i = 0; i < 64; i++) {
		struct wn_sp_rx *r = wn_sp_rx(&p.b, sids[i]);
		assert_int_equal(r->bad, 0);
		if (sids[i] == stall)
			continue;
		assert_int_equal(r->got, total);
		assert_int_equal(r->fin, 1);
		/* The send limit forced short writes, each answered (or the
		 * sender would have waited forever). */
		if (total > ca.stream_send_limit)
			assert_true(wn_sp_rx(&p.a, sids[i])->writable >= 1);
	}
	struct wn_sp_rx *st = wn_sp_rx(&p.b, stall);
	assert_int_equal(st->got, eff);
	assert_int_equal(st->fin, 0);
	assert_int_equal(wn_smux_recv_pending(p.b.m), eff);
	assert_int_equal(wn_smux_send_queued(p.a.m, stall),
	                 total - eff < ca.stream_send_limit
	                     ? total - eff
	                     : ca.stream_send_limit);
	assert_false(wn_smux_want_pull(p.a.m));

	/* The reader catches up: the rest flows. */
	p.b.stall = 0;
	wn_smux_consumed(p.b.m, stall, (size_t)st->got);
	st->consumed = st->got;
	assert_int_equal(wn_sp_pump(&p), 0);
	st = wn_sp_rx(&p.b, stall);
	assert_int_equal(st->got, total);
	assert_int_equal(st->fin, 1);
	assert_int_equal(st->bad, 0);
	assert_int_equal(wn_smux_recv_pending(p.b.m), 0);
	wn_sp_free(&p);
}

static void test_stalled_stream_v2(void **state)
{
	(void)state;
	run_stall(WN_SMUX_INITIAL_WINDOW, 1); /* smux's default */
	run_stall(1 << 20, 0);   /* larger: announced by an UPD at accept */
	run_stall(64 * 1024, 0); /* smaller: the first 256 KiB still fit */
}

static void noop_data(void *ctx, uint32_t sid, const uint8_t *d, size_t n)
{
	(void)ctx;
	(void)sid;
	(void)d;
	(void)n;
}

/* UPD on the wire: after the first consumption, then each half window. */
static void test_upd_bytes(void **state)
{
	(void)state;
	struct wn_smux_cfg c = cfg_of(2, 0, 1);
	struct wn_smux_cb cb = {.on_data = noop_data};
	struct wn_smux *m;
	static uint8_t in[8 + 7 * (8 + 32768)];
	uint8_t out[64];
	size_t n;

	memset(in, 0, sizeof(in));
	memcpy(in, (const uint8_t[]){2, 0, 0, 0, 3, 0, 0, 0}, 8);
	n = 8;
	for (int i = 0; i < 7; i++) {
		memcpy(in + n, (const uint8_t[]){2, 2, 0, 0x80, 3, 0, 0, 0}, 8);
		n += 8 + 32768;
	}
	assert_int_equal(wn_smux_new(&c, &cb, &m), 0);
	assert_int_equal(wn_smux_input(m, in, n), 0);
	/* Window 256 KiB, nothing consumed: no UPD yet. */
	assert_false(wn_smux_want_pull(m));
	wn_smux_consumed(m, 3, 1);
	const uint8_t upd1[] = {2, 4, 8, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 0};
	assert_int_equal(wn_smux_pull(m, out, sizeof(out)), sizeof(upd1));
	assert_memory_equal(out, upd1, sizeof(upd1));
	/* Less than half a window since: nothing. */
	wn_smux_consumed(m, 3, 100000);
	assert_false(wn_smux_want_pull(m));
	wn_smux_consumed(m, 3, 31072); /* 131072 since the last UPD */
	const uint8_t upd2[] = {2,    4,    8,    0, 3, 0, 0, 0,
	                        0x01, 0x00, 0x02, 0, 0, 0, 4, 0};
	assert_int_equal(wn_smux_pull(m, out, sizeof(out)), sizeof(upd2));
	assert_memory_equal(out, upd2, sizeof(upd2));
	/* Consuming more than was delivered is clamped: the 98303 bytes left
	 * are less than half a window, so no UPD. */
	wn_smux_consumed(m, 3, 1 << 30);
	assert_int_equal(wn_smux_recv_pending(m), 0);
	assert_false(wn_smux_want_pull(m));
	/* After the peer's FIN no UPD is worth sending. */
	const uint8_t fin[] = {2, 1, 0, 0, 3, 0, 0, 0};
	assert_int_equal(wn_smux_input(m, fin, sizeof(fin)), 0);
	wn_smux_free(m);
}

/* v1: no per-stream window; a reader that never consumes gets everything,
 * and recv_pending tells the engine to stop feeding input. */
static void test_v1_no_window(void **state)
{
	(void)state;
	struct wn_smux_cfg ca = cfg_of(1, 1, 1), cb = cfg_of(1, 0, 1);
	struct wn_sp p;
	uint32_t sid;

	assert_int_equal(wn_sp_init(&p, &ca, &cb, 5), 0);
	p.b.consume = 0;
	sid = wn_sp_open(&p.a, 3 << 20, 1);
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_sp_rx(&p.b, sid)->got, 3 << 20);
	assert_int_equal(wn_sp_rx(&p.b, sid)->fin, 1);
	assert_int_equal(wn_smux_recv_pending(p.b.m), 3 << 20);
	wn_smux_consumed(p.b.m, sid, 1 << 20);
	assert_int_equal(wn_smux_recv_pending(p.b.m), 2 << 20);
	/* No UPD in v1. */
	assert_false(wn_smux_want_pull(p.b.m));
	wn_sp_free(&p);
}

/* Two busy streams share the pipe: after every pull their totals differ by
 * at most one frame. */
static void test_fairness(void **state)
{
	(void)state;
	struct wn_smux_cfg ca = cfg_of(2, 1, 0), cb = cfg_of(2, 0, 0);
	struct wn_sp p;
	uint32_t s1, s2;
	int rc;

	cb.stream_window = 4 << 20;
	assert_int_equal(wn_sp_init(&p, &ca, &cb, 77), 0);
	s1 = wn_sp_open(&p.a, 4 << 20, 1);
	s2 = wn_sp_open(&p.a, 4 << 20, 1);
	for (int i = 0; i < 400; i++) {
		wn_sp_feed(&p.a);
		size_t cap = i % 2 ? 9000 : 70000;
		wn_sp_xfer(&p, &p.a, &p.b, cap, &rc);
		assert_int_equal(rc, 0);
		wn_sp_xfer(&p, &p.b, &p.a, 70000, &rc);
		assert_int_equal(rc, 0);
		int64_t d = (int64_t)wn_sp_rx(&p.b, s1)->got -
		            (int64_t)wn_sp_rx(&p.b, s2)->got;
		assert_true(d <= 32768 && d >= -32768);
	}
	assert_true(wn_sp_rx(&p.b, s1)->got > (1 << 20));
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_sp_rx(&p.b, s1)->got, 4 << 20);
	assert_int_equal(wn_sp_rx(&p.b, s2)->got, 4 << 20);
	wn_sp_free(&p);
}

/* on_writable fires once, when the queue has drained to half the limit. */
static void test_writable(void **state)
{
	(void)state;
	struct wn_smux_cfg ca = cfg_of(2, 1, 0), cb = cfg_of(2, 0, 0);
	struct wn_sp p;
	uint8_t data[1500], out[1024];
	uint32_t sid;

	memset(data, 0, sizeof(data));
	ca.stream_send_limit = 1000;
	assert_int_equal(wn_sp_init(&p, &ca, &cb, 3), 0);
	assert_int_equal(wn_smux_open(p.a.m, &sid), 0);
	assert_int_equal(wn_smux_send_space(p.a.m, sid), 1000);
	assert_int_equal(wn_smux_write(p.a.m, sid, data, sizeof(data)), 1000);
	assert_int_equal(wn_smux_write(p.a.m, sid, data, 1), 0);
	assert_int_equal(wn_smux_send_space(p.a.m, sid), 0);
	/* SYN and 400 bytes: 600 left, more than half. */
	assert_int_equal(wn_smux_pull(p.a.m, out, 8 + 8 + 400), 416);
	assert_int_equal(wn_sp_rx(&p.a, sid)->writable, 0);
	assert_int_equal(wn_smux_pull(p.a.m, out, 8 + 100), 108);
	assert_int_equal(wn_sp_rx(&p.a, sid)->writable, 1);
	assert_int_equal(wn_smux_send_space(p.a.m, sid), 500);
	assert_int_equal(wn_smux_pull(p.a.m, out, sizeof(out)), 508);
	assert_int_equal(wn_sp_rx(&p.a, sid)->writable, 1);
	wn_sp_free(&p);
}

/* Zero-copy writes: reserve, fill, commit; a full queue gives 0 and then
 * on_writable. */
static void test_reserve_commit(void **state)
{
	(void)state;
	struct wn_smux_cfg ca = cfg_of(2, 1, 0), cb = cfg_of(2, 0, 0);
	struct wn_sp p;
	uint8_t *ptr, out[4096];
	uint32_t sid;
	ssize_t n;

	ca.stream_send_limit = 3000;
	assert_int_equal(wn_sp_init(&p, &ca, &cb, 4), 0);
	assert_int_equal(wn_smux_open(p.a.m, &sid), 0);
	/* A reserve with nothing committed keeps its chunk until a trim. */
	assert_true(wn_smux_reserve(p.a.m, sid, &ptr) > 0);
	assert_int_equal(wn_smux_commit(p.a.m, sid, 0), 0);
	assert_int_equal(wn_bufq_chunks(&wn_smuxi_find(p.a.m, sid)->sendq), 1);
	wn_smux_trim(p.a.m);
	assert_int_equal(wn_bufq_chunks(&wn_smuxi_find(p.a.m, sid)->sendq), 0);
	uint64_t off = 0;
	while ((n = wn_smux_reserve(p.a.m, sid, &ptr)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			ptr[i] = wn_sp_pat(sid, off + (uint64_t)i);
		assert_int_equal(wn_smux_commit(p.a.m, sid, (size_t)n + 1),
		                 WN_EINVAL);
		assert_int_equal(wn_smux_commit(p.a.m, sid, (size_t)n), 0);
		off += (uint64_t)n;
	}
	assert_int_equal(n, 0);
	assert_int_equal(off, 3000);
	assert_int_equal(wn_smux_pull(p.a.m, out, sizeof(out)), 8 + 8 + 3000);
	assert_int_equal(wn_sp_rx(&p.a, sid)->writable, 1);
	assert_int_equal(wn_smux_input(p.b.m, out, 3016), 0);
	assert_int_equal(wn_sp_rx(&p.b, sid)->got, 3000);
	assert_int_equal(wn_sp_rx(&p.b, sid)->bad, 0);
	assert_int_equal(wn_smux_shutdown(p.a.m, sid), 0);
	assert_int_equal(wn_smux_reserve(p.a.m, sid, &ptr), WN_ECLOSED);
	assert_int_equal(wn_smux_commit(p.a.m, sid, 0), WN_ECLOSED);
	assert_int_equal(wn_smux_reserve(p.a.m, 99, &ptr), WN_EINVAL);
	wn_sp_free(&p);
}

static void run_max_streams(int compat)
{
	struct wn_smux_cfg ca = cfg_of(2, 1, compat), cb = cfg_of(2, 0, compat);
	struct wn_sp p;
	uint32_t sids[6];

	cb.max_streams = 4;
	assert_int_equal(wn_sp_init(&p, &ca, &cb, 13), 0);
	for (int i = 0; i < 6; i++)
		sids[i] = wn_sp_open(&p.a, 1000, 0);
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_smux_nstreams(p.b.m), 4);
	for (int i = 0; i < 6; i++) {
		struct wn_sp_rx *r = wn_sp_rx(&p.a, sids[i]);
		int refused = i >= 4;
		assert_int_equal(wn_sp_rx(&p.b, sids[i])->open, !refused);
		assert_int_equal(wn_sp_rx(&p.b, sids[i])->got,
		                 refused ? 0 : 1000);
		if (compat) {
			assert_int_equal(r->fin, refused);
		} else {
			assert_int_equal(r->reset, refused);
			if (refused)
				assert_int_equal(r->reason,
				                 WN_SMUX_REASON_LIMIT);
		}
	}
	/* A slot freed on the server takes a new stream (once the RST that
	 * frees it is out). */
	wn_smux_reset(p.b.m, sids[0], 8);
	wn_smux_forget(p.b.m, sids[0]);
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_smux_nstreams(p.b.m), 3);
	uint32_t more = wn_sp_open(&p.a, 10, 0);
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_sp_rx(&p.b, more)->got, 10);
	wn_sp_free(&p);
}

static void test_max_streams(void **state)
{
	(void)state;
	run_max_streams(0);
	run_max_streams(1);

	/* Our own opens stop at the limit too, and resume after a forget. */
	struct wn_smux_cfg c = cfg_of(2, 1, 0);
	struct wn_smux *m;
	uint32_t a, b, x;
	c.max_streams = 2;
	assert_int_equal(wn_smux_new(&c, NULL, &m), 0);
	assert_int_equal(wn_smux_open(m, &a), 0);
	assert_int_equal(wn_smux_open(m, &b), 0);
	assert_int_equal(wn_smux_open(m, &x), WN_ENOSPC);
	wn_smux_reset(m, a, 1); /* its SYN never left: nothing owed */
	wn_smux_forget(m, a);
	assert_int_equal(wn_smux_open(m, &x), 0);
	assert_int_equal(x, 7);
	wn_smux_free(m);
}

/* Ids run out at 2^32 - 1 (smux's "go away": open a new session). */
static void test_id_exhaustion(void **state)
{
	(void)state;
	struct wn_smux_cfg c = cfg_of(2, 1, 0);
	struct wn_smux *m;
	uint32_t sid;

	assert_int_equal(wn_smux_new(&c, NULL, &m), 0);
	m->next_id = UINT32_MAX - 2;
	assert_int_equal(wn_smux_open(m, &sid), 0);
	assert_int_equal(sid, UINT32_MAX);
	assert_int_equal(wn_smux_open(m, &sid), WN_ERANGE);
	assert_int_equal(wn_smux_open(m, &sid), WN_ERANGE);
	assert_int_equal(wn_smux_nstreams(m), 1);
	wn_smux_free(m);
}

/* The v2 counters wrap at 4 GiB exactly as smux's do. */
static void test_counter_wrap(void **state)
{
	(void)state;
	struct wn_smux_cfg ca = cfg_of(2, 1, 1), cb = cfg_of(2, 0, 1);
	struct wn_sp p;
	uint32_t sid;

	assert_int_equal(wn_sp_init(&p, &ca, &cb, 21), 0);
	sid = wn_sp_open(&p.a, 0, 0);
	assert_int_equal(wn_sp_pump(&p), 0);
	/* Pretend 4 GiB - 256 bytes already went through, both sides. */
	struct wn_smux_stream *sa = wn_smuxi_find(p.a.m, sid);
	struct wn_smux_stream *sb = wn_smuxi_find(p.b.m, sid);
	sa->sent = sa->peer_consumed = 0xffffff00u;
	sb->recv = sb->consumed = 0xffffff00u;
	p.a.tx[0].total = 700000;
	p.a.tx[0].done = 0;
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_sp_rx(&p.b, sid)->got, 700000);
	assert_int_equal(sa->sent, (uint32_t)(0xffffff00u + 700000u));
	wn_sp_free(&p);
}

/* Thousands of idle streams: each costs its struct and a table slot, and
 * after a trim no buffer chunk. */
static void test_idle_streams(void **state)
{
	(void)state;
	struct wn_smux_cfg ca = cfg_of(2, 1, 0), cb = cfg_of(2, 0, 0);
	struct wn_sp p;
	const unsigned n = 4000;

	ca.max_streams = cb.max_streams = n;
	assert_int_equal(wn_sp_init(&p, &ca, &cb, 99), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_not_equal(wn_sp_open(&p.a, 1000, 0), 0);
	assert_int_equal(wn_sp_pump(&p), 0);
	assert_int_equal(wn_smux_nstreams(p.a.m), n);
	assert_int_equal(wn_smux_nstreams(p.b.m), n);
	/* Only the most recently drained keep a chunk; a trim frees those. */
	unsigned holding = 0;
	for (unsigned i = 0; i < n; i++) {
		uint32_t sid = 3 + 2 * i;
		assert_int_equal(wn_sp_rx(&p.b, sid)->got, 1000);
		holding +=
		    wn_bufq_chunks(&wn_smuxi_find(p.a.m, sid)->sendq) != 0;
		assert_int_equal(
		    wn_bufq_chunks(&wn_smuxi_find(p.b.m, sid)->sendq), 0);
	}
	assert_true(holding > 0 && holding <= WN_SMUX_DRAINED_MAX);
	wn_smux_trim(p.a.m);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(
		    wn_bufq_chunks(&wn_smuxi_find(p.a.m, 3 + 2 * i)->sendq), 0);
	print_message("idle stream: %zu bytes + %zu-byte table slot\n",
	              sizeof(struct wn_smux_stream),
	              sizeof(struct wn_smux_slot));
	wn_sp_free(&p);
}

/* ---- the receive budget (smux.h, Flow control) ------------------------- */

#define RB_STREAMS 16
#define RB_BYTES (1u << 20)
#define RB_WINDOW (4u << 20)

/* The server's streams are opened (SYNs exchanged, so its first UPDs
 * arrive before any data), then each is sent RB_BYTES that the server does
 * not read. Returns what the server's streams got, in sids[] order. */
static void rb_run(struct wn_sp *p, const struct wn_smux_cfg *cb, uint64_t seed,
                   uint32_t *sids, uint64_t *got)
{
	struct wn_smux_cfg ca = cfg_of(2, 1, 0);

	ca.stream_send_limit = RB_BYTES;
	assert_int_equal(wn_sp_init(p, &ca, cb, seed), 0);
	p->b.consume = 0;
	for (int i = 0; i < RB_STREAMS; i++)
		assert_int_equal(wn_smux_open(p->a.m, &sids[i]), 0);
	assert_int_equal(wn_sp_pump(p), 0);
	for (int i = 0; i < RB_STREAMS; i++)
		wn_sp_send(&p->a, sids[i], RB_BYTES, 1);
	assert_int_equal(wn_sp_pump(p), 0);
	for (int i = 0; i < RB_STREAMS; i++) {
		struct wn_sp_rx *r = wn_sp_rx(&p->b, sids[i]);
		assert_int_equal(r->bad, 0);
		got[i] = r->got;
	}
}

/* Without a budget every stream takes a whole window the reader does not
 * take; with one, the first streams fill the budget at the window the
 * peer assumes and the rest are held to the floor, so the session holds
 * the budget plus a floor per stream. The reader catching up then lets
 * every stream finish, the ones at the floor too. */
static void test_recv_budget(void **state)
{
	(void)state;
	struct wn_smux_cfg cb = cfg_of(2, 0, 0);
	uint32_t sids[RB_STREAMS];
	uint64_t got[RB_STREAMS];
	struct wn_sp p;

	cb.stream_window = RB_WINDOW;
	rb_run(&p, &cb, 5, sids, got);
	for (int i = 0; i < RB_STREAMS; i++)
		assert_int_equal(got[i], RB_BYTES);
	wn_sp_free(&p);

	cb.recv_budget = 4 * WN_SMUX_INITIAL_WINDOW;
	rb_run(&p, &cb, 5, sids, got);
	for (int i = 0; i < RB_STREAMS; i++)
		assert_int_equal(got[i], i < 4 ? WN_SMUX_INITIAL_WINDOW
		                               : WN_SMUX_RECV_FLOOR);
	assert_int_equal(wn_smux_recv_pending(p.b.m),
	                 cb.recv_budget +
	                     (RB_STREAMS - 4) * WN_SMUX_RECV_FLOOR);
	p.b.consume = 1;
	for (int i = 0; i < RB_STREAMS; i++) {
		struct wn_sp_rx *r = wn_sp_rx(&p.b, sids[i]);
		wn_smux_consumed(p.b.m, sids[i], (size_t)r->got);
		r->consumed = r->got;
	}
	assert_int_equal(wn_sp_pump(&p), 0);
	for (int i = 0; i < RB_STREAMS; i++) {
		struct wn_sp_rx *r = wn_sp_rx(&p.b, sids[i]);
		assert_int_equal(r->got, RB_BYTES);
		assert_int_equal(r->fin, 1);
		assert_int_equal(r->bad, 0);
	}
	wn_sp_free(&p);
}

/* A stream whose reader keeps up grows its window past the one the peer
 * assumes, up to stream_window: stalled after that, it has received more
 * than the initial window. */
static void test_recv_budget_grows(void **state)
{
	(void)state;
	struct wn_smux_cfg ca = cfg_of(2, 1, 0), cb = cfg_of(2, 0, 0);
	struct wn_sp p;

	ca.stream_send_limit = 16u << 20;
	cb.stream_window = RB_WINDOW;
	cb.recv_budget = 32u << 20;
	assert_int_equal(wn_sp_init(&p, &ca, &cb, 9), 0);
	uint32_t sid = wn_sp_open(&p.a, 12u << 20, 1);
	assert_int_equal(wn_sp_pump(&p), 0);
	struct wn_sp_rx *r = wn_sp_rx(&p.b, sid);
	assert_int_equal(r->got, 12u << 20);
	assert_int_equal(r->fin, 1);
	wn_sp_free(&p);

	/* Read 6 MiB, then stall: what arrives beyond is the grown window. */
	assert_int_equal(wn_sp_init(&p, &ca, &cb, 9), 0);
	sid = wn_sp_open(&p.a, 12u << 20, 1);
	p.b.consume = 0;
	uint64_t read = 0;
	while (read < (6u << 20)) {
		assert_int_equal(wn_sp_pump(&p), 0);
		r = wn_sp_rx(&p.b, sid);
		size_t n = (size_t)(r->got - r->consumed);
		if (n == 0)
			break;
		wn_smux_consumed(p.b.m, sid, n);
		r->consumed += n;
		read += n;
	}
	assert_int_equal(wn_sp_pump(&p), 0);
	r = wn_sp_rx(&p.b, sid);
	assert_true(r->consumed >= (6u << 20));
	assert_int_equal(r->got - r->consumed, RB_WINDOW);
	wn_sp_free(&p);
}

/* The pool bounds several sessions together: a second session whose
 * streams open once the first has taken the pool gets the floor, and the
 * first one's windows leave the pool when it is freed. */
static void test_recv_pool(void **state)
{
	(void)state;
	struct wn_smux_pool pool = {.limit = 4 * WN_SMUX_INITIAL_WINDOW};
	struct wn_smux_cfg cb = cfg_of(2, 0, 0);
	uint32_t sids[RB_STREAMS], sids2[RB_STREAMS];
	uint64_t got[RB_STREAMS];
	struct wn_sp p, q;

	cb.stream_window = RB_WINDOW;
	cb.pool = &pool;
	rb_run(&p, &cb, 3, sids, got);
	for (int i = 0; i < RB_STREAMS; i++)
		assert_int_equal(got[i], i < 4 ? WN_SMUX_INITIAL_WINDOW
		                               : WN_SMUX_RECV_FLOOR);
	rb_run(&q, &cb, 4, sids2, got);
	for (int i = 0; i < RB_STREAMS; i++)
		assert_int_equal(got[i], WN_SMUX_RECV_FLOOR);
	assert_int_equal(pool.granted, pool.limit + (2 * RB_STREAMS - 4) *
	                                                WN_SMUX_RECV_FLOOR);
	wn_sp_free(&p);
	assert_int_equal(pool.granted, RB_STREAMS * WN_SMUX_RECV_FLOOR);
	wn_sp_free(&q);
	assert_int_equal(pool.granted, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stalled_stream_v2),
	    cmocka_unit_test(test_upd_bytes),
	    cmocka_unit_test(test_v1_no_window),
	    cmocka_unit_test(test_fairness),
	    cmocka_unit_test(test_writable),
	    cmocka_unit_test(test_reserve_commit),
	    cmocka_unit_test(test_max_streams),
	    cmocka_unit_test(test_counter_wrap),
	    cmocka_unit_test(test_id_exhaustion),
	    cmocka_unit_test(test_idle_streams),
	    cmocka_unit_test(test_recv_budget),
	    cmocka_unit_test(test_recv_budget_grows),
	    cmocka_unit_test(test_recv_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
