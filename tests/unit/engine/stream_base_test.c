/* The stream base's rules, against a transport that only records what it
 * is asked to do: which wire action each call and each event leads to,
 * when on_closed comes, and what the base refuses. The contract suite
 * (stream_contract_test.c) checks the same rules end to end per engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/engine.h"
#include "util/err.h"

struct rec {
	struct wn_stream s; /* first */
	int writes, fins, resets, reset_err, stops, stop_err, detaches, frees;
	size_t credited;
	int misuses;
	size_t room; /* bytes write takes */
	size_t q;    /* bytes "in the engine's send buffer" (the budget) */
	/* handler calls */
	int data, eofs, writables, closed, close_err;
	int fin_done_in_fin; /* report the FIN delivered from inside fin */
};

static struct rec *R(struct wn_stream *s)
{
	return (struct rec *)s;
}

static ssize_t t_write(struct wn_stream *s, const uint8_t *d, size_t len)
{
	(void)d;
	R(s)->writes++;
	size_t n = len < R(s)->room ? len : R(s)->room;
	R(s)->room -= n;
	R(s)->q += n;
	return (ssize_t)n;
}

static ssize_t t_reserve(struct wn_stream *s, uint8_t **ptr)
{
	static uint8_t buf[64];
	*ptr = buf;
	return R(s)->room < sizeof(buf) ? (ssize_t)R(s)->room
	                                : (ssize_t)sizeof(buf);
}

static size_t t_queued(const struct wn_stream *s)
{
	return ((const struct rec *)s)->q;
}

static int t_commit(struct wn_stream *s, size_t n)
{
	R(s)->room -= n;
	R(s)->q += n;
	return 0;
}

static void t_credit(struct wn_stream *s, size_t n)
{
	R(s)->credited += n;
}

static void t_fin(struct wn_stream *s)
{
	R(s)->fins++;
	if (R(s)->fin_done_in_fin)
		wn_sb_fin_done(s);
}

static void t_reset(struct wn_stream *s, int err)
{
	R(s)->resets++;
	R(s)->reset_err = err;
	R(s)->q = 0; /* a reset drops what was queued */
}

static void t_stop(struct wn_stream *s, int err)
{
	R(s)->stops++;
	R(s)->stop_err = err;
}

static void t_detach(struct wn_stream *s)
{
	R(s)->detaches++;
}

static void t_free(struct wn_stream *s)
{
	R(s)->frees++; /* the test owns the memory */
}

static void t_misuse(struct wn_stream *s, const char *what)
{
	(void)what;
	R(s)->misuses++;
}

static const struct wn_sb_transport tp = {
    .write = t_write,
    .reserve = t_reserve,
    .commit = t_commit,
    .credit = t_credit,
    .fin = t_fin,
    .reset = t_reset,
    .stop = t_stop,
    .detach = t_detach,
    .free = t_free,
    .misuse = t_misuse,
    .queued = t_queued,
};

static void h_data(void *ctx, struct wn_stream *s, const uint8_t *d, size_t len)
{
	(void)ctx;
	(void)d;
	R(s)->data += (int)len;
}

static void h_eof(void *ctx, struct wn_stream *s)
{
	(void)ctx;
	R(s)->eofs++;
}

static void h_writable(void *ctx, struct wn_stream *s)
{
	(void)ctx;
	R(s)->writables++;
}

static void h_closed(void *ctx, struct wn_stream *s, int err)
{
	(void)ctx;
	R(s)->closed++;
	R(s)->close_err = err;
}

static const struct wn_stream_handler H = {
    .on_data = h_data,
    .on_eof = h_eof,
    .on_writable = h_writable,
    .on_closed = h_closed,
};

struct t {
	struct wn_loop loop;
	struct wn_stream_env env;
	struct rec r;
};

static void start(struct t *t)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(wn_loop_init(&t->loop), 0);
	wn_sb_env_init(&t->env, &tp, &t->loop, NULL, NULL);
	wn_sb_init(&t->r.s, &t->env, NULL, &H);
	t->r.room = 1000;
}

static void spin(struct t *t)
{
	for (int i = 0; i < 3; i++)
		uv_run(wn_loop_uv(&t->loop), UV_RUN_NOWAIT);
}

static void stop(struct t *t)
{
	spin(t);
	assert_int_equal(wn_loop_close(&t->loop), 0);
}

static void test_clean_close_after_both_fins(void **state)
{
	(void)state;
	struct t t;
	start(&t);
	assert_int_equal(wn_stream_shutdown(&t.r.s), 0);
	assert_int_equal(t.r.fins, 1);
	assert_int_equal(wn_stream_shutdown(&t.r.s), 0); /* idempotent */
	assert_int_equal(t.r.fins, 1);
	assert_int_equal(wn_stream_write(&t.r.s, (const uint8_t *)"x", 1),
	                 WN_ECLOSED);
	wn_sb_recv_fin(&t.r.s);
	assert_int_equal(t.r.eofs, 1);
	assert_int_equal(t.r.detaches, 0); /* our FIN is not out yet */
	wn_sb_fin_done(&t.r.s);
	assert_int_equal(t.r.detaches, 1);
	assert_int_equal(t.r.closed, 0); /* deferred */
	spin(&t);
	assert_int_equal(t.r.closed, 1);
	assert_int_equal(t.r.close_err, WN_STREAM_OK);
	assert_int_equal(t.r.frees, 1);
	stop(&t);
}

static void test_reset_is_deferred_and_once(void **state)
{
	(void)state;
	struct t t;
	start(&t);
	wn_stream_reset(&t.r.s, WN_STREAM_REFUSED);
	assert_int_equal(t.r.resets, 1);
	assert_int_equal(t.r.reset_err, WN_STREAM_REFUSED);
	assert_int_equal(t.r.closed, 0);
	wn_stream_reset(&t.r.s, WN_STREAM_DENIED); /* ended: nothing */
	wn_sb_recv_reset(&t.r.s, WN_STREAM_DENIED);
	wn_sb_finish(&t.r.s, WN_STREAM_SESSION_LOST);
	assert_int_equal(t.r.resets, 1);
	spin(&t);
	assert_int_equal(t.r.closed, 1);
	assert_int_equal(t.r.close_err, WN_STREAM_REFUSED);
	assert_int_equal(t.r.detaches, 1);
	assert_int_equal(t.r.frees, 1);
	stop(&t);
}

static void test_release_open_resets(void **state)
{
	(void)state;
	struct t t;
	start(&t);
	wn_stream_release(&t.r.s);
	assert_int_equal(t.r.resets, 1);
	assert_int_equal(t.r.reset_err, WN_STREAM_ABORTED);
	assert_int_equal(t.r.stops, 0);
	spin(&t);
	assert_int_equal(t.r.closed, 0); /* released: never */
	assert_int_equal(t.r.frees, 1);
	stop(&t);
}

static void test_release_after_fin_stops(void **state)
{
	(void)state;
	struct t t;
	start(&t);
	assert_int_equal(wn_stream_shutdown(&t.r.s), 0);
	wn_stream_release(&t.r.s);
	assert_int_equal(t.r.resets, 0);
	assert_int_equal(t.r.stops, 1);
	assert_int_equal(t.r.stop_err, WN_STREAM_ABORTED);
	assert_int_equal(t.r.s.in, WN_SB_IN_DRAIN);
	/* What arrives is discarded and credited, the handler is gone. */
	wn_sb_recv(&t.r.s, (const uint8_t *)"abc", 3);
	assert_int_equal(t.r.data, 0);
	assert_int_equal(t.r.credited, 3);
	/* The peer's answer ends its direction, not ours. */
	wn_sb_recv_reset(&t.r.s, WN_STREAM_ABORTED);
	assert_int_equal(t.r.resets, 0);
	assert_int_equal(t.r.detaches, 0);
	wn_sb_fin_done(&t.r.s);
	assert_int_equal(t.r.detaches, 1);
	spin(&t);
	assert_int_equal(t.r.closed, 0);
	stop(&t);
}

static void test_release_when_done_finishes_alone(void **state)
{
	(void)state;
	struct t t;
	start(&t);
	wn_sb_recv_fin(&t.r.s);
	assert_int_equal(wn_stream_shutdown(&t.r.s), 0);
	wn_stream_release(&t.r.s);
	assert_int_equal(t.r.resets + t.r.stops, 0);
	wn_sb_fin_done(&t.r.s);
	assert_int_equal(t.r.detaches, 1);
	spin(&t);
	assert_int_equal(t.r.closed, 0);
	assert_int_equal(t.r.frees, 1);
	stop(&t);
}

static void test_peer_stop_aborts_ours_only(void **state)
{
	(void)state;
	struct t t;
	start(&t);
	t.r.fin_done_in_fin = 1;
	wn_sb_recv_stop(&t.r.s, WN_STREAM_ABORTED);
	assert_int_equal(wn_stream_write(&t.r.s, (const uint8_t *)"x", 1),
	                 WN_ECLOSED);
	assert_int_equal(wn_stream_shutdown(&t.r.s), WN_ECLOSED);
	wn_sb_recv(&t.r.s, (const uint8_t *)"ab", 2);
	assert_int_equal(t.r.data, 2); /* still reading */
	assert_int_equal(t.r.detaches, 0);
	wn_sb_recv_fin(&t.r.s);
	assert_int_equal(t.r.eofs, 1);
	assert_int_equal(t.r.detaches, 1);
	spin(&t);
	assert_int_equal(t.r.closed, 1);
	assert_int_equal(t.r.close_err, WN_STREAM_ABORTED);
	stop(&t);
}

static void test_writable_after_short_write(void **state)
{
	(void)state;
	struct t t;
	uint8_t buf[10] = {0}, *p;
	start(&t);
	t.r.room = 4;
	wn_sb_writable(&t.r.s); /* nobody waits: no call */
	assert_int_equal(t.r.writables, 0);
	assert_int_equal(wn_stream_write(&t.r.s, buf, 10), 4);
	assert_int_equal(wn_stream_reserve(&t.r.s, &p), 0);
	t.r.room = 100;
	wn_sb_writable(&t.r.s);
	assert_int_equal(t.r.writables, 1);
	wn_sb_writable(&t.r.s); /* once per short write */
	assert_int_equal(t.r.writables, 1);
	wn_stream_reset(&t.r.s, WN_STREAM_INTERNAL);
	stop(&t);
}

static void test_calls_after_release_are_refused(void **state)
{
	(void)state;
	struct t t;
	uint8_t *p;
	start(&t);
	wn_stream_release(&t.r.s);
	assert_int_equal(wn_stream_write(&t.r.s, (const uint8_t *)"x", 1),
	                 WN_ECLOSED);
	assert_int_equal(wn_stream_reserve(&t.r.s, &p), WN_ECLOSED);
	wn_stream_consumed(&t.r.s, 1);
	wn_stream_release(&t.r.s);
	assert_int_equal(t.r.misuses, 4);
	assert_int_equal(t.r.writes, 0);
	assert_int_equal(t.r.credited, 0);
	stop(&t);
}

/* Server side: the header is taken off, credited, and the stream goes to
 * the accept handler, which must set a handler or reset. */
struct acc {
	int calls, mode;
	struct wn_endpoint target;
};

static void on_stream(void *ctx, struct wn_tunnel *tn, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct acc *a = ctx;
	(void)tn;
	a->calls++;
	a->target = *target;
	if (a->mode == 1)
		wn_stream_reset(s, WN_STREAM_DENIED);
	else if (a->mode == 0)
		wn_stream_set_handler(s, &H);
}

static void run_incoming(int mode, int *resets, int *reset_err, int *data,
                         size_t *credited)
{
	struct t t;
	struct acc a = {.mode = mode};
	struct wn_accept_handler ah = {.ctx = &a, .on_stream = on_stream};
	struct wn_endpoint ep;
	const char *why;
	uint8_t buf[WN_STREAMHDR_MAX + 5];

	memset(&t, 0, sizeof(t));
	assert_int_equal(wn_loop_init(&t.loop), 0);
	wn_sb_env_init(&t.env, &tp, &t.loop, NULL, &ah);
	wn_sb_init(&t.r.s, &t.env, NULL, NULL);
	assert_int_equal(wn_endpoint_parse("10.1.1.1:99", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &ep, &why),
	                 0);
	int hl = wn_streamhdr_encode_flags(&ep, 0, buf, sizeof(buf));
	assert_true(hl > 2);
	memcpy(buf + hl, "hello", 5);
	/* In two pieces: the header split. */
	wn_sb_recv(&t.r.s, buf, 2);
	assert_int_equal(a.calls, 0);
	wn_sb_recv(&t.r.s, buf + 2, (size_t)hl - 2 + 5);
	assert_int_equal(a.calls, 1);
	assert_string_equal(a.target.host, "10.1.1.1");
	assert_int_equal(a.target.port, 99);
	*resets = t.r.resets;
	*reset_err = t.r.reset_err;
	*data = t.r.data;
	*credited = t.r.credited;
	assert_int_equal((int)t.r.credited, hl);
	if (!t.r.s.ended)
		wn_stream_reset(&t.r.s, WN_STREAM_INTERNAL);
	stop(&t);
}

static void test_header_acceptance(void **state)
{
	(void)state;
	int resets, err, data;
	size_t cr;
	run_incoming(0, &resets, &err, &data, &cr);
	assert_int_equal(resets, 0);
	assert_int_equal(data, 5);
	run_incoming(1, &resets, &err, &data, &cr);
	assert_int_equal(resets, 1);
	assert_int_equal(err, WN_STREAM_DENIED);
	assert_int_equal(data, 0);
	run_incoming(2, &resets, &err, &data, &cr);
	assert_int_equal(resets, 1);
	assert_int_equal(err, WN_STREAM_INTERNAL);
	assert_int_equal(data, 0);
}

static void test_bad_header_and_early_fin(void **state)
{
	(void)state;
	struct t t;
	struct acc a = {0};
	struct wn_accept_handler ah = {.ctx = &a, .on_stream = on_stream};
	static const uint8_t junk[4] = {0xff, 0xff, 0xff, 0xff};

	memset(&t, 0, sizeof(t));
	assert_int_equal(wn_loop_init(&t.loop), 0);
	wn_sb_env_init(&t.env, &tp, &t.loop, NULL, &ah);
	wn_sb_init(&t.r.s, &t.env, NULL, NULL);
	wn_sb_recv(&t.r.s, junk, sizeof(junk));
	assert_int_equal(t.r.resets, 1);
	assert_int_equal(t.r.reset_err, WN_STREAM_BAD_HEADER);
	assert_int_equal(a.calls, 0);
	spin(&t);

	memset(&t.r, 0, sizeof(t.r));
	wn_sb_init(&t.r.s, &t.env, NULL, NULL);
	wn_sb_recv_fin(&t.r.s);
	assert_int_equal(t.r.resets, 1);
	assert_int_equal(t.r.reset_err, WN_STREAM_BAD_HEADER);
	stop(&t);
}

/* The engine's clock, as the transport reports it. */
static uint64_t engine_ms;

static uint64_t t_now(const struct wn_stream *s)
{
	(void)s;
	return engine_ms;
}

static size_t count_lines(int fd)
{
	char buf[4096];
	size_t n = 0;
	ssize_t got;
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < got; i++)
			n += buf[i] == '\n';
	return n;
}

/* The malformed-header log is rate-limited on the engine's clock (the
 * transport's now_ms), not the loop's: the loop's time stands still here
 * while the engine's moves past the window, and only the engine's opens
 * it again. */
static void test_bad_header_log_on_engine_clock(void **state)
{
	(void)state;
	struct wn_loop loop;
	struct wn_stream_env env;
	struct wn_log log;
	struct acc a = {0};
	struct wn_accept_handler ah = {.ctx = &a, .on_stream = on_stream};
	static const uint8_t junk[4] = {0xff, 0xff, 0xff, 0xff};
	struct wn_sb_transport ctp = tp;
	struct rec r[8];
	int fds[2];

	ctp.now_ms = t_now;
	memset(r, 0, sizeof(r));
	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	assert_int_equal(wn_loop_init(&loop), 0);
	wn_log_init(&log, WN_LOG_INFO, fds[1]);
	wn_sb_env_init(&env, &ctp, &loop, &log, &ah);
	engine_ms = 100000;
	for (int i = 0; i < 7; i++) {
		wn_sb_init(&r[i].s, &env, NULL, NULL);
		wn_sb_recv(&r[i].s, junk, sizeof(junk));
		assert_int_equal(r[i].reset_err, WN_STREAM_BAD_HEADER);
	}
	size_t burst = count_lines(fds[0]);
	assert_true(burst > 0 && burst < 7); /* limited */
	engine_ms += 60000;
	wn_sb_init(&r[7].s, &env, NULL, NULL);
	wn_sb_recv(&r[7].s, junk, sizeof(junk));
	assert_true(count_lines(fds[0]) > 0); /* a new window */
	for (int i = 0; i < 3; i++)
		uv_run(wn_loop_uv(&loop), UV_RUN_NOWAIT);
	assert_int_equal(wn_loop_close(&loop), 0);
	close(fds[0]);
	close(fds[1]);
}

/* ---- the send budget --------------------------------------------------- */

struct bfx {
	struct wn_loop loop;
	struct wn_stream_env env;
	struct wn_tunnel tn;
	struct rec a, b, c;
};

static void bstart(struct bfx *f, size_t session, size_t total)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(wn_loop_init(&f->loop), 0);
	wn_sb_env_init(&f->env, &tp, &f->loop, NULL, NULL);
	wn_sb_env_budget(&f->env, session, total);
	struct rec *r[] = {&f->a, &f->b, &f->c};
	for (int i = 0; i < 3; i++) {
		wn_sb_init(&r[i]->s, &f->env, &f->tn, &H);
		r[i]->room = 1u << 20;
	}
}

static void bstop(struct bfx *f)
{
	struct rec *r[] = {&f->a, &f->b, &f->c};
	for (int i = 0; i < 3; i++)
		if (!r[i]->s.ended)
			wn_stream_reset(&r[i]->s, WN_STREAM_ABORTED);
	for (int i = 0; i < 3; i++)
		uv_run(wn_loop_uv(&f->loop), UV_RUN_NOWAIT);
	assert_int_equal(wn_sb_session_buffered(&f->tn), 0);
	assert_int_equal(wn_sb_total_buffered(&f->env), 0);
	assert_int_equal(wn_loop_close(&f->loop), 0);
}

static size_t put(struct rec *r, size_t n)
{
	static uint8_t buf[1u << 20];
	ssize_t w = wn_stream_write(&r->s, buf, n);
	assert_true(w >= 0);
	return (size_t)w;
}

/* The peer acknowledged n of r's bytes. */
static void acked(struct rec *r, size_t n)
{
	r->q -= n;
	wn_sb_sent(&r->s, n);
}

/* Writes are refused once the session's budget is reached, except for a
 * stream below the floor; the waiters wake once an eighth is free. */
static void test_budget_refuses_and_wakes(void **state)
{
	(void)state;
	struct bfx f;
	bstart(&f, 256u << 10, 0);

	assert_int_equal(put(&f.a, 200u << 10), 200u << 10);
	assert_int_equal(put(&f.b, 100u << 10), 100u << 10);
	assert_int_equal(wn_sb_session_buffered(&f.tn), 300u << 10);
	/* Over the budget: streams holding the floor wait... */
	assert_int_equal(put(&f.a, 1), 0);
	assert_int_equal(put(&f.b, 1), 0);
	uint8_t *p;
	assert_int_equal(wn_stream_reserve(&f.b.s, &p), 0);
	/* ...one below it does not. */
	assert_int_equal(put(&f.c, 64u << 10), 64u << 10);
	assert_int_equal(put(&f.c, 1), 0);

	/* Freed, but not an eighth below the limit: only b, whose own bytes
	 * went below the floor, wakes. */
	acked(&f.b, 100u << 10);
	assert_int_equal(f.b.writables, 1);
	assert_int_equal(f.a.writables + f.c.writables, 0);
	assert_int_equal(put(&f.b, 1), 1);
	/* An eighth below: every waiter wakes, once. */
	acked(&f.a, 100u << 10);
	assert_int_equal(f.a.writables, 1);
	assert_int_equal(f.c.writables, 1);
	assert_int_equal(put(&f.a, 10), 10);
	bstop(&f);
}

/* A waiter whose own bytes drain below the floor wakes at once, however
 * full the budget stays (streams the peer does not read keep theirs). */
static void test_budget_waiter_below_floor_wakes(void **state)
{
	(void)state;
	struct bfx f;
	bstart(&f, 0, 256u << 10);

	assert_int_equal(put(&f.a, 300u << 10), 300u << 10); /* stalled */
	/* Over the budget, a stream below the floor gets up to the floor. */
	assert_int_equal(put(&f.b, 100u << 10), 64u << 10);
	assert_int_equal(put(&f.b, 1), 0);
	acked(&f.b, 40u << 10);
	assert_int_equal(f.b.writables, 1);
	assert_int_equal(f.a.writables, 0);
	assert_int_equal(put(&f.b, 1), 1);
	assert_int_equal(wn_sb_total_buffered(&f.env), (324u << 10) + 1);
	assert_int_equal(put(&f.c, 150u << 10), 64u << 10);
	assert_int_equal(put(&f.c, 1), 0);
	bstop(&f);

	/* Twice the total is a hard cap, even below the floor. */
	bstart(&f, 0, 128u << 10);
	assert_int_equal(put(&f.a, 300u << 10), 300u << 10);
	assert_int_equal(put(&f.b, 1), 0);
	acked(&f.a, 100u << 10);
	assert_int_equal(f.b.writables, 0);
	acked(&f.a, 100u << 10); /* an eighth below the total */
	assert_int_equal(f.b.writables, 1);
	assert_int_equal(put(&f.b, 1), 1);
	bstop(&f);
}

/* An engine that drains on its own (wn_sb_sync) gives the budget back
 * and wakes; so do the peer's stop and the stream's end. */
static void test_budget_sync_stop_and_end(void **state)
{
	(void)state;
	struct bfx f;
	bstart(&f, 256u << 10, 0);

	assert_int_equal(put(&f.a, 200u << 10), 200u << 10);
	assert_int_equal(put(&f.b, 200u << 10), 200u << 10);
	assert_int_equal(put(&f.a, 1), 0);
	f.b.q = 0; /* the engine's core took it all */
	wn_sb_sync(&f.tn);
	assert_int_equal(wn_sb_session_buffered(&f.tn), 200u << 10);
	assert_int_equal(f.a.writables, 1);

	assert_int_equal(put(&f.b, 200u << 10), 200u << 10);
	assert_int_equal(put(&f.a, 1), 0);
	wn_sb_recv_stop(&f.b.s, WN_STREAM_ABORTED);
	assert_int_equal(wn_sb_session_buffered(&f.tn), 200u << 10);
	assert_int_equal(f.a.writables, 2);

	wn_stream_reset(&f.a.s, WN_STREAM_ABORTED);
	assert_int_equal(wn_sb_session_buffered(&f.tn), 0);
	bstop(&f);
}

/* A stream that ends while its engine still holds its data (the KCP
 * engine's smux sends it after the stream is forgotten) stays counted
 * until the engine's buffer drains, and the stream object lives until
 * then: on_closed comes at once, the free only once the count is back. */
static void test_budget_counts_ended_streams(void **state)
{
	(void)state;
	struct bfx f;
	bstart(&f, 256u << 10, 0);

	f.a.fin_done_in_fin = 1;
	assert_int_equal(put(&f.a, 200u << 10), 200u << 10);
	assert_int_equal(wn_stream_shutdown(&f.a.s), 0);
	wn_sb_recv_fin(&f.a.s); /* both directions over: a ends */
	assert_true(f.a.s.ended);
	assert_int_equal(f.a.detaches, 1);
	uv_run(wn_loop_uv(&f.loop), UV_RUN_NOWAIT);
	assert_int_equal(f.a.closed, 1);
	assert_int_equal(f.a.close_err, WN_STREAM_OK);
	/* Still held for the peer: counted, and not freed. */
	assert_int_equal(f.a.frees, 0);
	assert_int_equal(wn_sb_session_buffered(&f.tn), 200u << 10);
	assert_int_equal(put(&f.b, 100u << 10), 100u << 10);
	assert_int_equal(put(&f.b, 1), 0); /* over the budget, with a's */

	/* Part of it leaves the engine: the count follows. */
	f.a.q = 50u << 10;
	wn_sb_sync(&f.tn);
	assert_int_equal(f.a.frees, 0);
	assert_int_equal(wn_sb_session_buffered(&f.tn), 150u << 10);
	assert_int_equal(f.b.writables, 1); /* an eighth below the limit */
	/* All of it: the count is back and the stream is freed. */
	f.a.q = 0;
	wn_sb_sync(&f.tn);
	assert_int_equal(f.a.frees, 1);
	assert_int_equal(wn_sb_session_buffered(&f.tn), 100u << 10);

	/* An ended stream that still holds data when its session goes is
	 * freed with it; one whose close has not run yet is freed there. */
	f.c.fin_done_in_fin = 1;
	assert_int_equal(put(&f.c, 10u << 10), 10u << 10);
	assert_int_equal(wn_stream_shutdown(&f.c.s), 0);
	wn_sb_recv_fin(&f.c.s);
	uv_run(wn_loop_uv(&f.loop), UV_RUN_NOWAIT);
	assert_int_equal(f.c.closed, 1);
	assert_int_equal(f.c.frees, 0);
	f.b.fin_done_in_fin = 1;
	assert_int_equal(wn_stream_shutdown(&f.b.s), 0);
	wn_sb_recv_fin(&f.b.s);
	assert_int_equal(f.b.closed, 0); /* its close is still deferred */
	wn_sb_session_gone(&f.tn);
	assert_int_equal(f.c.frees, 1);
	assert_int_equal(f.b.frees, 0);
	assert_int_equal(wn_sb_session_buffered(&f.tn), 0);
	assert_int_equal(wn_sb_total_buffered(&f.env), 0);
	uv_run(wn_loop_uv(&f.loop), UV_RUN_NOWAIT);
	assert_int_equal(f.b.closed, 1);
	assert_int_equal(f.b.frees, 1);

	/* Each freed once. */
	assert_int_equal(f.a.frees + f.b.frees + f.c.frees, 3);
	bstop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clean_close_after_both_fins),
	    cmocka_unit_test(test_budget_refuses_and_wakes),
	    cmocka_unit_test(test_budget_waiter_below_floor_wakes),
	    cmocka_unit_test(test_budget_sync_stop_and_end),
	    cmocka_unit_test(test_budget_counts_ended_streams),
	    cmocka_unit_test(test_reset_is_deferred_and_once),
	    cmocka_unit_test(test_release_open_resets),
	    cmocka_unit_test(test_release_after_fin_stops),
	    cmocka_unit_test(test_release_when_done_finishes_alone),
	    cmocka_unit_test(test_peer_stop_aborts_ours_only),
	    cmocka_unit_test(test_writable_after_short_write),
	    cmocka_unit_test(test_calls_after_release_are_refused),
	    cmocka_unit_test(test_header_acceptance),
	    cmocka_unit_test(test_bad_header_and_early_fin),
	    cmocka_unit_test(test_bad_header_log_on_engine_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
