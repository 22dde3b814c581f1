/* The tunnel-stream contract (src/engine/tunnel.h), checked against every
 * engine: the same scenarios run on the pipetunnel test double, on the KCP
 * engine (native and in the kcptun profile) and on the QUIC engine, the
 * engines built through the engine table over the in-memory carrier
 * (tests/support/enginepair.h). Every scenario runs once per engine
 * (cmocka prestate).
 *
 * What every scenario also checks, through the recording handlers: no
 * handler is called from inside a wn_stream_* call (each call the test
 * makes is wrapped), on_closed comes at most once and is the last call,
 * no handler is called after release, data arrives intact and in order,
 * nothing arrives after on_eof.
 *
 * kcptun's smux has no RST: a reset reaches the peer as a FIN, with no
 * reason, and a release after shutdown ends our side as smux's Close()
 * does. The scenarios say where they expect that instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/enginepair.h"
#include "support/pipetunnel.h"
#include "util/err.h"

enum kind { PIPE, KCP, KCPTUN, QUIC };

#define WINDOW (256 * 1024)  /* per-stream receive window, every engine */
#define SENDBUF (128 * 1024) /* per-stream send buffer */
#define CHUNK 16384

struct fx;

/* What one end of the stream saw, and what it sends. */
struct end {
	struct fx *fx;
	int dir; /* 0: the client's end, 1: the server's */
	struct wn_stream *s;
	/* receiving */
	uint64_t got;
	int bad, eof, data_after_eof;
	int consume; /* consume data as it arrives */
	size_t unconsumed, max_unconsumed;
	uint64_t reset_at; /* reset (reset_err) once got reaches it; 0: no */
	int reset_err;
	int release_on_eof;
	/* sending: tx_total pattern bytes, then a FIN if tx_fin */
	uint64_t tx_total, tx_off;
	int tx_fin, shut, blocked, refused, writable;
	/* the end */
	int closed, close_err, eof_before_close, after_close;
	int released, after_release;
};

struct fx {
	enum kind kind;
	struct wn_enginepair p; /* the engines, or (PIPE) the loop only */
	struct wn_pipetunnel *pt;
	struct wn_tunnel *tunnel;
	struct end cli, srv;
	int in_call;   /* inside a wn_stream_* call the test made */
	int reentered; /* handler calls from inside one */
	int accepted;
	int accept_mode; /* ACCEPT_* */
	int refuse_err;
	int have_target;
	struct wn_endpoint target;
};

enum { ACCEPT_OK, ACCEPT_RESET, ACCEPT_NO_HANDLER };

/* Wraps a wn_stream_* call the test makes. */
#define CALL(fx, expr)                             \
	({                                         \
		(fx)->in_call++;                   \
		__typeof__(expr) call_r_ = (expr); \
		(fx)->in_call--;                   \
		call_r_;                           \
	})
#define CALLV(fx, expr)          \
	do {                     \
		(fx)->in_call++; \
		expr;            \
		(fx)->in_call--; \
	} while (0)

/* Byte off of the data end dir sends: a mix of the offset, which snappy
 * (kcptun's compression) cannot shrink, so windows fill as they would. */
static uint8_t pat(int dir, uint64_t off)
{
	uint64_t z = (off + (uint64_t)dir * 0x5851f42d4c957f2dull) *
	             0x9e3779b97f4a7c15ull;
	z ^= z >> 29;
	z *= 0xbf58476d1ce4e5b9ull;
	return (uint8_t)(z >> 56);
}

/* Every handler starts here. */
static void enter(struct end *e)
{
	if (e->fx->in_call)
		e->fx->reentered++;
	if (e->closed)
		e->after_close++;
	if (e->released)
		e->after_release++;
}

static void pump_tx(struct end *e)
{
	struct fx *fx = e->fx;
	uint8_t buf[CHUNK];

	while (e->s && !e->released && !e->closed && e->tx_off < e->tx_total) {
		size_t n = e->tx_total - e->tx_off;
		if (n > sizeof(buf))
			n = sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(e->dir, e->tx_off + i);
		ssize_t r = CALL(fx, wn_stream_write(e->s, buf, n));
		if (r < 0) {
			e->refused++;
			return;
		}
		e->tx_off += (uint64_t)r;
		if ((size_t)r < n) {
			e->blocked = 1;
			return; /* on_writable comes back here */
		}
	}
	if (e->s && !e->released && !e->closed && e->tx_fin && !e->shut &&
	    e->tx_off == e->tx_total) {
		e->shut = 1;
		assert_int_equal(CALL(fx, wn_stream_shutdown(e->s)), 0);
	}
}

static void release(struct end *e)
{
	e->released = 1;
	CALLV(e->fx, wn_stream_release(e->s));
}

static void h_data(void *ctx, struct wn_stream *s, const uint8_t *d, size_t len)
{
	struct end *e = ctx;
	enter(e);
	assert_ptr_equal(s, e->s);
	if (e->eof)
		e->data_after_eof++;
	for (size_t i = 0; i < len; i++)
		if (d[i] != pat(!e->dir, e->got + i))
			e->bad++;
	e->got += len;
	if (e->consume) {
		CALLV(e->fx, wn_stream_consumed(s, len));
	} else {
		e->unconsumed += len;
		if (e->unconsumed > e->max_unconsumed)
			e->max_unconsumed = e->unconsumed;
	}
	if (e->reset_at && e->got >= e->reset_at) {
		e->reset_at = 0;
		CALLV(e->fx, wn_stream_reset(s, e->reset_err));
	}
}

static void h_eof(void *ctx, struct wn_stream *s)
{
	struct end *e = ctx;
	enter(e);
	assert_ptr_equal(s, e->s);
	e->eof++;
	if (e->release_on_eof)
		release(e);
}

static void h_writable(void *ctx, struct wn_stream *s)
{
	struct end *e = ctx;
	enter(e);
	assert_ptr_equal(s, e->s);
	e->writable++;
	e->blocked = 0;
	pump_tx(e);
}

static void h_closed(void *ctx, struct wn_stream *s, int err)
{
	struct end *e = ctx;
	enter(e);
	assert_ptr_equal(s, e->s);
	e->closed++;
	e->close_err = err;
	e->eof_before_close = e->eof;
}

static struct wn_stream_handler handler_of(struct end *e)
{
	struct wn_stream_handler h = {
	    .ctx = e,
	    .on_data = h_data,
	    .on_eof = h_eof,
	    .on_writable = h_writable,
	    .on_closed = h_closed,
	};
	return h;
}

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct fx *fx = ctx;
	(void)t;
	if (fx->in_call)
		fx->reentered++;
	fx->accepted++;
	fx->have_target = target != NULL;
	if (target)
		fx->target = *target;
	if (fx->accept_mode == ACCEPT_RESET) {
		CALLV(fx, wn_stream_reset(s, fx->refuse_err));
		return;
	}
	if (fx->accept_mode == ACCEPT_NO_HANDLER)
		return;
	fx->srv.s = s;
	struct wn_stream_handler h = handler_of(&fx->srv);
	wn_stream_set_handler(s, &h);
	pump_tx(&fx->srv);
}

/* ---- the engines -------------------------------------------------------- */

static const char *const engine_names[] = {
    [PIPE] = NULL, [KCP] = "kcp", [KCPTUN] = "kcptun", [QUIC] = "quic"};

static int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	fx->kind = *(const enum kind *)*state;
	wn_enginepair_init(&fx->p, engine_names[fx->kind], 20000);
	fx->cli.fx = fx->srv.fx = fx;
	fx->cli.dir = 0;
	fx->srv.dir = 1;
	fx->cli.consume = fx->srv.consume = 1;
	struct wn_accept_handler ah = {.ctx = fx, .on_stream = on_stream};
	if (fx->kind == PIPE) {
		struct wn_pipetunnel_opts po = {.send_limit = SENDBUF,
		                                .recv_window = WINDOW};
		assert_int_equal(
		    wn_pipetunnel_new(&fx->p.loop, &po, &ah, &fx->pt), 0);
		fx->tunnel = wn_pipetunnel_client(fx->pt);
	} else {
		fx->p.accept = ah;
		struct wn_engine_conf *cs[] = {&fx->p.sconf, &fx->p.cconf};
		for (size_t i = 0; i < 2; i++) {
			cs[i]->idle_timeout_ms = 5000;
			cs[i]->handshake_timeout_ms = 5000;
			cs[i]->stream_send_limit = SENDBUF;
			cs[i]->stream_window = WINDOW;
		}
		wn_enginepair_start(&fx->p);
		fx->tunnel = fx->p.tunnel;
	}
	*state = fx;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *fx = *state;
	if (fx->pt)
		wn_pipetunnel_close(fx->pt);
	wn_enginepair_finish(&fx->p);
	free(fx);
	return 0;
}

/* Runs the loop until cond holds; fails the test at the guard timer. */
#define RUN_UNTIL(fx, cond) WN_ENGINEPAIR_RUN_UNTIL(&(fx)->p, cond)

/* Runs the loop for ms of real time. */
static void run_for(struct fx *fx, uint64_t ms)
{
	wn_enginepair_run_for(&fx->p, ms);
}

/* Opens the client's stream to 10.9.9.9:7 and starts its sender. */
static void open_client(struct fx *fx)
{
	struct wn_endpoint target;
	const char *why;
	assert_int_equal(wn_endpoint_parse("10.9.9.9:7", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &target, &why),
	                 0);
	struct wn_stream_handler h = handler_of(&fx->cli);
	fx->cli.s = CALL(fx, wn_tunnel_open_stream(fx->tunnel, &target, &h));
	assert_non_null(fx->cli.s);
	pump_tx(&fx->cli);
}

/* Sets what each end sends (bytes, then a FIN if fin) and opens the
 * client's stream. */
static void start(struct fx *fx, uint64_t cli_bytes, int cli_fin,
                  uint64_t srv_bytes, int srv_fin)
{
	fx->cli.tx_total = cli_bytes;
	fx->cli.tx_fin = cli_fin;
	fx->srv.tx_total = srv_bytes;
	fx->srv.tx_fin = srv_fin;
	open_client(fx);
}

/* Runs until both ends are closed, and both cleanly. */
static void both_close_ok(struct fx *fx)
{
	RUN_UNTIL(fx, fx->cli.closed && fx->srv.closed);
	assert_int_equal(fx->cli.close_err, WN_STREAM_OK);
	assert_int_equal(fx->srv.close_err, WN_STREAM_OK);
}

/* The server's end ends with what it sends after our end is gone: kcptun's
 * smux has no RST, so its stream ends only when it finishes. */
static void srv_finishes_ok(struct fx *fx)
{
	fx->srv.tx_fin = 1;
	pump_tx(&fx->srv);
	RUN_UNTIL(fx, fx->srv.closed);
	assert_int_equal(fx->srv.close_err, WN_STREAM_OK);
}

/* What holds after every scenario. */
static void check_end(const struct end *e)
{
	assert_int_equal(e->bad, 0);
	assert_int_equal(e->data_after_eof, 0);
	assert_true(e->eof <= 1);
	assert_true(e->closed <= 1);
	assert_int_equal(e->after_close, 0);
	assert_int_equal(e->after_release, 0);
	if (e->released)
		assert_int_equal(e->closed, 0);
}

static void check_all(struct fx *fx)
{
	/* Let late events show up. */
	run_for(fx, 50);
	assert_int_equal(fx->reentered, 0);
	check_end(&fx->cli);
	check_end(&fx->srv);
}

static int is_kcptun(const struct fx *fx)
{
	return fx->kind == KCPTUN;
}

/* ---- scenarios ------------------------------------------------------------ */

/* Data both ways, both FINs: both ends close cleanly with everything. */
static void t_transfer_both_ways(void **state)
{
	struct fx *fx = *state;
	start(fx, 300000, 1, 200000, 1);
	both_close_ok(fx);
	assert_int_equal(fx->srv.got, 300000);
	assert_int_equal(fx->cli.got, 200000);
	assert_int_equal(fx->cli.eof, 1);
	assert_int_equal(fx->srv.eof, 1);
	assert_int_equal(fx->accepted, 1);
	if (is_kcptun(fx)) {
		assert_false(fx->have_target); /* the server's fixed one */
	} else {
		assert_true(fx->have_target);
		assert_string_equal(fx->target.host, "10.9.9.9");
		assert_int_equal(fx->target.port, 7);
	}
	check_all(fx);
}

/* The client finishes first; the server still sends after its EOF. */
static void t_half_close_client_first(void **state)
{
	struct fx *fx = *state;
	start(fx, 50000, 1, 0, 0);
	RUN_UNTIL(fx, fx->srv.eof);
	assert_int_equal(fx->srv.got, 50000);
	run_for(fx, 20);
	assert_int_equal(fx->srv.closed, 0);
	assert_int_equal(fx->cli.closed, 0);
	fx->srv.tx_total = 100000;
	fx->srv.tx_fin = 1;
	pump_tx(&fx->srv);
	both_close_ok(fx);
	assert_int_equal(fx->cli.got, 100000);
	check_all(fx);
}

/* The server finishes first; the client still sends after its EOF. */
static void t_half_close_server_first(void **state)
{
	struct fx *fx = *state;
	start(fx, 1000, 0, 50000, 1);
	RUN_UNTIL(fx, fx->cli.eof);
	assert_int_equal(fx->cli.got, 50000);
	run_for(fx, 20);
	assert_int_equal(fx->cli.closed, 0);
	fx->cli.tx_total += 50000;
	fx->cli.tx_fin = 1;
	pump_tx(&fx->cli);
	both_close_ok(fx);
	assert_int_equal(fx->srv.got, 51000);
	check_all(fx);
}

/* Both ends shut down at once, with no data. */
static void t_both_fins(void **state)
{
	struct fx *fx = *state;
	start(fx, 0, 1, 0, 1);
	both_close_ok(fx);
	assert_int_equal(fx->cli.eof, 1);
	assert_int_equal(fx->srv.eof, 1);
	check_all(fx);
}

/* Released with our direction open: the stream is reset (ABORTED). */
static void t_release_open(void **state)
{
	struct fx *fx = *state;
	start(fx, 10000, 0, 0, 0);
	RUN_UNTIL(fx, fx->srv.got == 10000);
	release(&fx->cli);
	if (is_kcptun(fx)) {
		/* The reset arrives as a FIN. */
		RUN_UNTIL(fx, fx->srv.eof);
		srv_finishes_ok(fx);
	} else {
		RUN_UNTIL(fx, fx->srv.closed);
		assert_int_equal(fx->srv.close_err, WN_STREAM_ABORTED);
	}
	check_all(fx);
}

/* Released after our shutdown while the peer's direction is open (the
 * meaning tunnel.h gives it): our data and FIN all arrive, then the peer
 * is stopped and its stream ends with ABORTED. */
static void t_release_after_fin(void **state)
{
	struct fx *fx = *state;
	start(fx, 20000, 1, 0, 0);
	assert_int_equal(fx->cli.shut, 1);
	release(&fx->cli);
	RUN_UNTIL(fx, fx->srv.eof);
	assert_int_equal(fx->srv.got, 20000);
	if (is_kcptun(fx)) {
		/* No RST in smux v1: the server ends when it finishes. */
		srv_finishes_ok(fx);
	} else {
		RUN_UNTIL(fx, fx->srv.closed);
		assert_int_equal(fx->srv.close_err, WN_STREAM_ABORTED);
		assert_int_equal(fx->srv.eof_before_close, 1);
	}
	check_all(fx);
}

/* As above while the peer is busy sending: the stop ends its stream and
 * what it sent meanwhile is discarded on our side. */
static void t_release_after_fin_peer_sending(void **state)
{
	struct fx *fx = *state;
	if (is_kcptun(fx))
		skip(); /* the server would send into the void for ever */
	start(fx, 20000, 1, 64u << 20, 0);
	RUN_UNTIL(fx, fx->cli.got > 0);
	release(&fx->cli);
	RUN_UNTIL(fx, fx->srv.closed);
	assert_int_equal(fx->srv.close_err, WN_STREAM_ABORTED);
	assert_int_equal(fx->srv.got, 20000);
	assert_int_equal(fx->srv.eof, 1);
	assert_true(fx->srv.tx_off < fx->srv.tx_total);
	check_all(fx);
}

/* Released once both directions are over, before on_closed: the peer
 * still ends cleanly with everything, and the released end hears
 * nothing more. */
static void t_release_when_done(void **state)
{
	struct fx *fx = *state;
	fx->cli.release_on_eof = 1;
	start(fx, 5000, 1, 5000, 1);
	RUN_UNTIL(fx, fx->srv.closed && fx->cli.released);
	assert_int_equal(fx->cli.got, 5000);
	assert_int_equal(fx->srv.got, 5000);
	assert_int_equal(fx->srv.close_err, WN_STREAM_OK);
	check_all(fx);
}

/* Released right after a reset: on_closed never comes. */
static void t_release_after_reset(void **state)
{
	struct fx *fx = *state;
	start(fx, 1000, 0, 0, 0);
	RUN_UNTIL(fx, fx->srv.got == 1000);
	CALLV(fx, wn_stream_reset(fx->cli.s, WN_STREAM_REFUSED));
	release(&fx->cli);
	if (is_kcptun(fx)) {
		RUN_UNTIL(fx, fx->srv.eof);
	} else {
		RUN_UNTIL(fx, fx->srv.closed);
		assert_int_equal(fx->srv.close_err, WN_STREAM_REFUSED);
	}
	check_all(fx);
}

/* A reset from either end carries its reason to both; on_closed is
 * deferred, never from inside wn_stream_reset. */
static void t_reset_client(void **state)
{
	struct fx *fx = *state;
	if (is_kcptun(fx))
		skip(); /* no RST, no reason */
	start(fx, 1000, 0, 1000, 0);
	RUN_UNTIL(fx, fx->srv.got == 1000 && fx->cli.got == 1000);
	CALLV(fx, wn_stream_reset(fx->cli.s, WN_STREAM_REFUSED));
	assert_int_equal(fx->cli.closed, 0); /* deferred */
	/* Calls on a reset stream are refused, not crashes. */
	assert_int_equal(
	    CALL(fx, wn_stream_write(fx->cli.s, (const uint8_t *)"x", 1)),
	    WN_ECLOSED);
	RUN_UNTIL(fx, fx->cli.closed && fx->srv.closed);
	assert_int_equal(fx->cli.close_err, WN_STREAM_REFUSED);
	assert_int_equal(fx->srv.close_err, WN_STREAM_REFUSED);
	check_all(fx);
}

static void t_reset_server(void **state)
{
	struct fx *fx = *state;
	if (is_kcptun(fx))
		skip();
	fx->srv.reset_at = 1000;
	fx->srv.reset_err = WN_STREAM_TARGET_RESET;
	start(fx, 100000, 0, 0, 0);
	RUN_UNTIL(fx, fx->cli.closed && fx->srv.closed);
	assert_int_equal(fx->cli.close_err, WN_STREAM_TARGET_RESET);
	assert_int_equal(fx->srv.close_err, WN_STREAM_TARGET_RESET);
	check_all(fx);
}

/* The server refuses the target with a reason: the client hears it. */
static void t_header_refused(void **state)
{
	struct fx *fx = *state;
	fx->accept_mode = ACCEPT_RESET;
	fx->refuse_err = WN_STREAM_DENIED;
	start(fx, 100, 0, 0, 0);
	if (is_kcptun(fx)) {
		RUN_UNTIL(fx, fx->cli.eof); /* a FIN, no reason */
	} else {
		RUN_UNTIL(fx, fx->cli.closed);
		assert_int_equal(fx->cli.close_err, WN_STREAM_DENIED);
	}
	assert_int_equal(fx->accepted, 1);
	check_all(fx);
}

/* An accept handler that sets no handler: the stream is reset
 * (INTERNAL). The pipetunnel treats that as a contract violation. */
static void t_accept_without_handler(void **state)
{
	struct fx *fx = *state;
	if (fx->kind == PIPE || is_kcptun(fx))
		skip();
	fx->accept_mode = ACCEPT_NO_HANDLER;
	start(fx, 100, 0, 0, 0);
	RUN_UNTIL(fx, fx->cli.closed);
	assert_int_equal(fx->cli.close_err, WN_STREAM_INTERNAL);
	check_all(fx);
}

/* A reader that does not consume stops the writer: short writes, at most
 * the receive window delivered unconsumed; consuming resumes it, with an
 * on_writable, and everything arrives. */
static void t_backpressure(void **state)
{
	struct fx *fx = *state;
	/* kcptun's session takes more before it stalls (no stream window:
	 * KCP's queues and windows fill first, as in kcp-go). */
	const uint64_t total = is_kcptun(fx) ? 16u << 20 : 4u << 20;
	fx->srv.consume = 0;
	start(fx, total, 1, 0, 0);
	run_for(fx, 300);
	assert_true(fx->cli.blocked);
	assert_true(fx->cli.tx_off < total);
	assert_true(fx->srv.got < total);
	/* smux v1 (kcptun) has no per-stream window: only the session's. */
	if (!is_kcptun(fx))
		assert_true(fx->srv.max_unconsumed <= WINDOW);
	fx->srv.consume = 1;
	size_t n = fx->srv.unconsumed;
	fx->srv.unconsumed = 0;
	CALLV(fx, wn_stream_consumed(fx->srv.s, n));
	RUN_UNTIL(fx, fx->srv.eof);
	assert_int_equal(fx->srv.got, total);
	assert_true(fx->cli.writable >= 1);
	fx->srv.tx_fin = 1;
	pump_tx(&fx->srv);
	both_close_ok(fx);
	check_all(fx);
}

static const enum kind k_pipe = PIPE, k_kcp = KCP, k_kcptun = KCPTUN,
                       k_quic = QUIC;

#define EVERY(t)                                                               \
	cmocka_unit_test_prestate_setup_teardown(t, fx_setup, fx_teardown,     \
	                                         (void *)&k_pipe),             \
	    cmocka_unit_test_prestate_setup_teardown(t, fx_setup, fx_teardown, \
	                                             (void *)&k_kcp),          \
	    cmocka_unit_test_prestate_setup_teardown(t, fx_setup, fx_teardown, \
	                                             (void *)&k_kcptun),       \
	    cmocka_unit_test_prestate_setup_teardown(t, fx_setup, fx_teardown, \
	                                             (void *)&k_quic)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    EVERY(t_transfer_both_ways),
	    EVERY(t_half_close_client_first),
	    EVERY(t_half_close_server_first),
	    EVERY(t_both_fins),
	    EVERY(t_release_open),
	    EVERY(t_release_after_fin),
	    EVERY(t_release_after_fin_peer_sending),
	    EVERY(t_release_when_done),
	    EVERY(t_release_after_reset),
	    EVERY(t_reset_client),
	    EVERY(t_reset_server),
	    EVERY(t_header_refused),
	    EVERY(t_accept_without_handler),
	    EVERY(t_backpressure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
