/* The KCP engine's session core, two-ended, in request/response use over a
 * simulated link in virtual time (tests/support/simlink.h): the client
 * opens a stream, writes one byte and waits for the server's echo, then
 * closes and opens the next, as bench/run.py's connect + first byte
 * workload does through the real engine. Each exchange needs one round
 * trip; the test asserts that none waits for a timer that should not
 * exist (an ack batch, the pacer, a resend timeout): in virtual time that
 * is behaviour, not a timing bound. Fixed seeds: each run is the same. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/kcp_sess.h"
#include "support/simlink.h"
#include "util/err.h"

#define ROOM 16
#define LIMIT_MS (600 * 1000)
#define DELAY_MS 25
#define ROUNDS 200

struct rr;

struct side {
	struct wn_kcp_sess *s;
	struct wn_simlink *out;
	struct rr *rr;
};

struct rr {
	struct side c, s;
	uint32_t now;
	uint32_t sid;     /* the client's current stream */
	uint32_t started; /* when it was opened */
	int answered;     /* its echo arrived */
	unsigned done;    /* exchanges completed */
	uint32_t lat[ROUNDS];
	uint32_t srv_sid; /* the server's side of the current stream */
	int srv_pending;  /* bytes the server still has to echo */
	unsigned srv_fins;
};

static void out_fn(void *ctx, uint8_t *pkt, size_t len)
{
	struct side *sd = ctx;
	wn_simlink_send(sd->out, pkt, len, sd->rr->now);
}

static uint32_t srv_open(void *ctx, uint32_t sid)
{
	struct rr *m = ctx;
	m->srv_sid = sid;
	return 0;
}

static void srv_data(void *ctx, uint32_t sid, const uint8_t *d, size_t len)
{
	struct rr *m = ctx;
	(void)d;
	assert_int_equal(sid, m->srv_sid);
	m->srv_pending += (int)len;
	wn_smux_consumed(wn_kcp_sess_smux(m->s.s), sid, len);
}

static void srv_fin(void *ctx, uint32_t sid)
{
	struct rr *m = ctx;
	m->srv_fins++;
	assert_int_equal(wn_smux_shutdown(wn_kcp_sess_smux(m->s.s), sid), 0);
}

static void any_reset(void *ctx, uint32_t sid, uint32_t reason)
{
	(void)ctx;
	(void)sid;
	fail_msg("stream reset with reason %u", reason);
}

static uint32_t cli_open(void *ctx, uint32_t sid)
{
	(void)ctx;
	(void)sid;
	return 1;
}

static void cli_data(void *ctx, uint32_t sid, const uint8_t *d, size_t len)
{
	struct rr *m = ctx;
	assert_int_equal(sid, m->sid);
	assert_int_equal(len, 1);
	assert_int_equal(d[0], (uint8_t)m->done);
	wn_smux_consumed(wn_kcp_sess_smux(m->c.s), sid, len);
	m->answered = 1;
}

static void cli_fin(void *ctx, uint32_t sid)
{
	(void)ctx;
	(void)sid;
}

static void rr_init(struct rr *m, double loss, int batch_acks)
{
	memset(m, 0, sizeof(*m));
	struct wn_simlink_cfg l = {.delay_ms = DELAY_MS,
	                           .loss = loss,
	                           .rate_Bps = 100000000 / 8,
	                           .queue_bytes = 100000000 / 80,
	                           .seed = 5};
	m->c.out = wn_simlink_new(&l);
	l.seed = 11;
	m->s.out = wn_simlink_new(&l);
	m->c.rr = m->s.rr = m;

	struct wn_kcp_sess_cfg cfg;
	wn_kcp_sess_cfg_default(&cfg);
	/* As the engine runs it (src/engine/kcp_engine.c). */
	cfg.kcp.conv = 7;
	cfg.kcp.mtu = 1350;
	cfg.kcp.snd_wnd = cfg.kcp.rcv_wnd = 1024;
	cfg.kcp.pacing = 1;
	cfg.kcp.rto_srtt_pct = 200;
	cfg.kcp.headroom = cfg.kcp.tailroom = ROOM;
	cfg.batch_acks = batch_acks;

	struct wn_smux_cb ccb = {.ctx = m,
	                         .on_open = cli_open,
	                         .on_data = cli_data,
	                         .on_fin = cli_fin,
	                         .on_reset = any_reset};
	cfg.smux.client = 1;
	assert_int_equal(wn_kcp_sess_new(&cfg, out_fn, &m->c, &ccb, 0, &m->c.s),
	                 0);
	struct wn_smux_cb scb = {.ctx = m,
	                         .on_open = srv_open,
	                         .on_data = srv_data,
	                         .on_fin = srv_fin,
	                         .on_reset = any_reset};
	cfg.smux.client = 0;
	assert_int_equal(wn_kcp_sess_new(&cfg, out_fn, &m->s, &scb, 0, &m->s.s),
	                 0);
}

static void rr_free(struct rr *m)
{
	wn_kcp_sess_free(m->c.s);
	wn_kcp_sess_free(m->s.s);
	wn_simlink_free(m->c.out);
	wn_simlink_free(m->s.out);
}

/* The applications: the client's opens the next stream once the last
 * echo arrived (closing the old one), the server's echoes. The engine runs
 * a pass after each event (a connection accepted, its bytes read, its
 * EOF), so each goes out in its own segment: so here. */
static void apps(struct rr *m)
{
	struct wn_smux *cm = wn_kcp_sess_smux(m->c.s);
	if (m->sid && m->answered) {
		m->lat[m->done++] = m->now - m->started;
		assert_int_equal(wn_smux_shutdown(cm, m->sid), 0);
		wn_kcp_sess_run(m->c.s, m->now);
		m->sid = 0;
	}
	if (!m->sid && m->done < ROUNDS) {
		uint8_t b = (uint8_t)m->done;
		assert_int_equal(wn_smux_open(cm, &m->sid), 0);
		wn_kcp_sess_run(m->c.s, m->now);
		assert_int_equal(wn_smux_write(cm, m->sid, &b, 1), 1);
		m->started = m->now;
		m->answered = 0;
	}
	struct wn_smux *sm = wn_kcp_sess_smux(m->s.s);
	while (m->srv_pending > 0) {
		uint8_t b = (uint8_t)m->done;
		assert_int_equal(wn_smux_write(sm, m->srv_sid, &b, 1), 1);
		m->srv_pending--;
	}
}

static void deliver(struct rr *m, struct wn_simlink *l, struct side *to)
{
	uint8_t pkt[2048];
	size_t n;
	while ((n = wn_simlink_recv(l, m->now, pkt, sizeof(pkt))) > 0)
		assert_int_equal(wn_kcp_sess_input(to->s, pkt, n, m->now), 0);
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0 ? a : b;
}

/* Each side runs only when its deadline or a packet says so, as the
 * engine's timer and input callbacks drive it. */
static void rr_run(struct rr *m)
{
	while (m->done < ROUNDS) {
		assert_true(m->now < LIMIT_MS);
		deliver(m, m->c.out, &m->s);
		deliver(m, m->s.out, &m->c);
		apps(m);
		wn_kcp_sess_run(m->c.s, m->now);
		wn_kcp_sess_run(m->s.s, m->now);
		assert_int_equal(wn_kcp_sess_error(m->c.s), 0);
		assert_int_equal(wn_kcp_sess_error(m->s.s), 0);
		if (m->sid && m->answered)
			continue; /* the client acts at once */
		uint32_t next = (uint32_t)wn_kcp_sess_deadline(m->c.s, m->now);
		next = min_u32(next,
		               (uint32_t)wn_kcp_sess_deadline(m->s.s, m->now));
		uint32_t t;
		if (wn_simlink_next(m->c.out, &t))
			next = min_u32(next, t);
		if (wn_simlink_next(m->s.out, &t))
			next = min_u32(next, t);
		m->now = (int32_t)(next - m->now) > 0 ? next : m->now + 1;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void exchanges(int batch_acks)
{
	struct rr m;
	rr_init(&m, 0, batch_acks);
	rr_run(&m);
	qsort(m.lat, ROUNDS, sizeof(m.lat[0]), cmp_u32);
	printf("# batch_acks %d: %u exchanges, ms min %u median %u max %u\n",
	       batch_acks, ROUNDS, m.lat[0], m.lat[ROUNDS / 2],
	       m.lat[ROUNDS - 1]);
	/* One round trip each on a lossless link, plus at most an ack
	 * batch's wait (interval) for whatever rides behind. */
	assert_true(m.lat[ROUNDS - 1] <= 2 * DELAY_MS + 12);
	rr_free(&m);
}

static void test_exchanges_flush_every_pass(void **state)
{
	(void)state;
	exchanges(0);
}

static void test_exchanges_batched_acks(void **state)
{
	(void)state;
	exchanges(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exchanges_flush_every_pass),
	    cmocka_unit_test(test_exchanges_batched_acks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
