/* Both engines (QUIC and KCP) end to end in one process: a client and a
 * server engine joined by an in-memory carrier (tests/support/memcarrier.h,
 * optionally lossy), no sockets. Every test runs once per engine (cmocka prestate). */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "engine/kcp_engine.h"
#include "engine/quic.h"
#include "support/memcarrier.h"
#include "util/bufq.h"
#include "util/err.h"

/* ---- a server that echoes every stream, and a client that checks it --- */

struct echo {
	struct wn_stream *s;
	int closed;
};

struct world {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_identity sid, cid;
	int kcp; /* which engine */
	struct wn_quic_server *srv;
	struct wn_quic_client *cli;
	struct wn_kcp_server *ksrv;
	struct wn_kcp_client *kcli;
	struct wn_memcarrier sc, cc;
	/* server side */
	struct wn_endpoint last_target;
	int streams_accepted;
	int deny;
	/* client side */
	uint8_t *payload;
	size_t payload_len, sent, got;
	uint8_t *echoed;
	int eof, closed, close_err, up, downs;
	char down_why[200];
	struct wn_stream *cs;
	uv_timer_t guard;
	int timed_out;
};

/* The echo keeps what the stream would not take yet and credits the peer
 * only for bytes it has written back: backpressure as a front end does it. */
struct echo_state {
	struct wn_bufq pending;
	int eof;
};

static void echo_drain(struct wn_stream *s, struct echo_state *e)
{
	while (wn_bufq_len(&e->pending) > 0) {
		struct iovec iov;
		wn_bufq_peek_iov(&e->pending, &iov, 1);
		ssize_t n = wn_stream_write(s, iov.iov_base, iov.iov_len);
		assert_true(n >= 0);
		if (n == 0)
			return; /* on_writable comes back here */
		wn_bufq_consume(&e->pending, (size_t)n);
		wn_stream_consumed(s, (size_t)n);
	}
	if (e->eof)
		wn_stream_shutdown(s);
}

static void echo_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                      size_t len)
{
	struct echo_state *e = ctx;
	assert_int_equal(wn_bufq_write(&e->pending, d, len), (ssize_t)len);
	echo_drain(s, e);
}

static void echo_writable(void *ctx, struct wn_stream *s)
{
	echo_drain(s, ctx);
}

static void echo_eof(void *ctx, struct wn_stream *s)
{
	struct echo_state *e = ctx;
	e->eof = 1;
	echo_drain(s, e);
}

static void echo_closed(void *ctx, struct wn_stream *s, int err)
{
	(void)s;
	(void)err;
	struct echo_state *e = ctx;
	wn_bufq_free(&e->pending);
	free(e);
}

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct world *w = ctx;
	(void)t;
	w->streams_accepted++;
	if (target)
		w->last_target = *target;
	if (w->deny) {
		wn_stream_reset(s, WN_STREAM_DENIED);
		return;
	}
	struct echo_state *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	assert_int_equal(wn_bufq_init(&e->pending, 16384, SIZE_MAX / 2), 0);
	struct wn_stream_handler h = {
	    .ctx = e,
	    .on_data = echo_data,
	    .on_eof = echo_eof,
	    .on_writable = echo_writable,
	    .on_closed = echo_closed,
	};
	wn_stream_set_handler(s, &h);
}

static void pump_send(struct world *w)
{
	while (w->sent < w->payload_len) {
		ssize_t n = wn_stream_write(w->cs, w->payload + w->sent,
		                            w->payload_len - w->sent);
		assert_true(n >= 0);
		if (n == 0)
			return; /* on_writable will call again */
		w->sent += (size_t)n;
	}
	wn_stream_shutdown(w->cs);
}

static void cli_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                     size_t len)
{
	struct world *w = ctx;
	assert_true(w->got + len <= w->payload_len);
	memcpy(w->echoed + w->got, d, len);
	w->got += len;
	wn_stream_consumed(s, len);
}

static void cli_eof(void *ctx, struct wn_stream *s)
{
	(void)s;
	((struct world *)ctx)->eof = 1;
}

static void cli_writable(void *ctx, struct wn_stream *s)
{
	(void)s;
	pump_send(ctx);
}

static void cli_closed(void *ctx, struct wn_stream *s, int err)
{
	(void)s;
	struct world *w = ctx;
	w->closed = 1;
	w->close_err = err;
	w->cs = NULL;
}

static void on_up(void *ctx)
{
	((struct world *)ctx)->up++;
}

static void on_down(void *ctx, const char *why)
{
	struct world *w = ctx;
	w->downs++;
	snprintf(w->down_why, sizeof(w->down_why), "%s", why);
}

static void guard_fired(uv_timer_t *t)
{
	struct world *w = t->data;
	w->timed_out = 1;
	wn_loop_stop(&w->loop);
}

static void world_init(struct world *w, void **state, int known_client,
                       int right_key, uint32_t loss)
{
	memset(w, 0, sizeof(*w));
	w->kcp = *state != NULL && *(const int *)*state;
	assert_int_equal(wn_loop_init(&w->loop), 0);
	wn_log_init(&w->log, WN_LOG_WARN, STDERR_FILENO);
	assert_int_equal(wn_identity_generate(&w->sid), 0);
	assert_int_equal(wn_identity_generate(&w->cid), 0);
	struct wn_quic_opts o;
	wn_quic_opts_default(&o);
	o.loop = &w->loop;
	o.log = &w->log;
	o.idle_timeout_ms = 3000;
	o.keepalive_ms = 1000;
	o.handshake_timeout_ms = 3000;
	o.id = &w->sid;
	struct wn_kcp_engine_opts ko;
	wn_kcp_engine_opts_default(&ko);
	ko.loop = &w->loop;
	ko.log = &w->log;
	ko.idle_timeout_ms = 3000;
	ko.keepalive_ms = 1000;
	ko.id = &w->sid;
	struct wn_accept_handler ah = {.ctx = w, .on_stream = on_stream};
	struct wn_identity other;
	assert_int_equal(wn_identity_generate(&other), 0);
	const uint8_t(*allowed)[WN_KEY_LEN] =
	    known_client ? &w->cid.ed_pk : &other.ed_pk;
	const uint8_t *skey = right_key ? w->sid.ed_pk : other.ed_pk;
	struct wn_carrier_handler sh, ch;
	if (w->kcp) {
		assert_int_equal(
		    wn_kcp_server_new(&ko, allowed, 1, &ah, &w->ksrv), 0);
		ko.id = &w->cid;
		struct wn_kcp_client_events ev = {
		    .ctx = w, .on_up = on_up, .on_down = on_down};
		assert_int_equal(wn_kcp_client_new(&ko, skey, &ev, &w->kcli),
		                 0);
		sh = wn_kcp_server_handler(w->ksrv);
		ch = wn_kcp_client_handler(w->kcli);
	} else {
		assert_int_equal(
		    wn_quic_server_new(&o, allowed, 1, &ah, &w->srv), 0);
		o.id = &w->cid;
		struct wn_quic_client_events ev = {
		    .ctx = w, .on_up = on_up, .on_down = on_down};
		assert_int_equal(wn_quic_client_new(&o, skey, &ev, &w->cli), 0);
		sh = wn_quic_server_handler(w->srv);
		ch = wn_quic_client_handler(w->cli);
	}
	wn_memcarrier_init(&w->sc, &w->loop, "10.0.0.2", 4433, sh);
	wn_memcarrier_init(&w->cc, &w->loop, "10.0.0.1", 50000, ch);
	wn_memcarrier_pair(&w->sc, &w->cc);
	w->sc.loss_per_mille = w->cc.loss_per_mille = loss;
	struct sockaddr *sa = (struct sockaddr *)&w->sc.addr;
	if (w->kcp)
		assert_int_equal(wn_kcp_client_start(w->kcli, &w->cc.base, sa,
		                                     sizeof(w->sc.addr)),
		                 0);
	else
		assert_int_equal(wn_quic_client_start(w->cli, &w->cc.base, sa,
		                                      sizeof(w->sc.addr)),
		                 0);
	uv_timer_init(wn_loop_uv(&w->loop), &w->guard);
	w->guard.data = w;
	uv_timer_start(&w->guard, guard_fired, 60000, 0);
}

static struct wn_tunnel *tunnel_of(struct world *w)
{
	return w->kcp ? wn_kcp_client_tunnel(w->kcli)
	              : wn_quic_client_tunnel(w->cli);
}

static size_t server_sessions(struct world *w)
{
	return w->kcp ? wn_kcp_server_sessions(w->ksrv)
	              : wn_quic_server_sessions(w->srv);
}

static uint64_t server_auth_failures(struct world *w)
{
	return w->kcp ? wn_kcp_server_stats(w->ksrv)->auth_failures
	              : wn_quic_server_stats(w->srv)->auth_failures;
}

static uint64_t server_pkts_dropped(struct world *w)
{
	return w->kcp ? wn_kcp_server_stats(w->ksrv)->pkts_dropped
	              : wn_quic_server_stats(w->srv)->pkts_dropped;
}

static void world_free(struct world *w)
{
	if (w->kcp) {
		wn_kcp_client_close(w->kcli);
		wn_kcp_server_close(w->ksrv);
	} else {
		wn_quic_client_close(w->cli);
		wn_quic_server_close(w->srv);
	}
	/* Let the engines send their CONNECTION_CLOSE and free themselves. */
	uv_close((uv_handle_t *)&w->guard, NULL);
	for (int i = 0; i < 3; i++)
		uv_run(wn_loop_uv(&w->loop), UV_RUN_NOWAIT);
	wn_memcarrier_close(&w->sc);
	wn_memcarrier_close(&w->cc);
	assert_int_equal(wn_loop_close(&w->loop), 0);
	free(w->payload);
	free(w->echoed);
}

/* Runs the loop until cond(w) or the guard timer. */
static void run_until(struct world *w, int (*cond)(struct world *))
{
	while (!cond(w) && !w->timed_out)
		uv_run(wn_loop_uv(&w->loop), UV_RUN_ONCE);
	assert_false(w->timed_out);
}

static int is_closed(struct world *w)
{
	return w->closed;
}

static void echo_transfer(void **state, size_t len, uint32_t loss,
                          uint32_t reorder)
{
	struct world w;
	world_init(&w, state, 1, 1, loss);
	w.sc.reorder_per_mille = w.cc.reorder_per_mille = reorder;
	w.payload_len = len;
	w.payload = malloc(len);
	w.echoed = malloc(len);
	randombytes_buf(w.payload, len);
	struct wn_endpoint target;
	const char *why;
	assert_int_equal(wn_endpoint_parse("10.9.9.9:7", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &target, &why),
	                 0);
	struct wn_stream_handler h = {
	    .ctx = &w,
	    .on_data = cli_data,
	    .on_eof = cli_eof,
	    .on_writable = cli_writable,
	    .on_closed = cli_closed,
	};
	/* Opened before the handshake: it waits, then goes. */
	w.cs = wn_tunnel_open_stream(tunnel_of(&w), &target, &h);
	assert_non_null(w.cs);
	pump_send(&w);
	run_until(&w, is_closed);
	assert_int_equal(w.close_err, WN_STREAM_OK);
	assert_true(w.eof);
	assert_int_equal(w.got, len);
	assert_memory_equal(w.echoed, w.payload, len);
	assert_int_equal(w.streams_accepted, 1);
	assert_string_equal(w.last_target.host, "10.9.9.9");
	assert_int_equal(w.last_target.port, 7);
	assert_int_equal(w.up, 1);
	if (loss)
		assert_true(w.sc.dropped + w.cc.dropped > 0);
	if (reorder)
		assert_true(w.sc.reordered + w.cc.reordered > 0);
	world_free(&w);
}

static void test_echo_small(void **state)
{
	echo_transfer(state, 1000, 0, 0);
}

static void test_echo_8mb(void **state)
{
	echo_transfer(state, 8u << 20, 0, 0);
}

static void test_echo_2mb_with_3pct_loss(void **state)
{
	echo_transfer(state, 2u << 20, 30, 0);
}

static void test_echo_1mb_reordered(void **state)
{
	echo_transfer(state, 1u << 20, 0, 50);
}

static int is_down(struct world *w)
{
	return w->downs > 0;
}

/* Runs the loop for ms of real time. */
static void run_for(struct world *w, uint64_t ms)
{
	uv_timer_start(&w->guard, guard_fired, ms, 0);
	while (!w->timed_out)
		uv_run(wn_loop_uv(&w->loop), UV_RUN_ONCE);
}

static void test_wrong_server_key_refused(void **state)
{
	struct world w;
	world_init(&w, state, 1, 0, 0);
	/* The server cannot tell a prober from a client with the wrong key:
	 * it stays silent (KCP: mac1; QUIC: the proof of the server key in
	 * the Initial's token), so the client never comes up and never sees
	 * the server's key. */
	run_for(&w, 2500);
	assert_int_equal(w.up, 0);
	assert_true(server_pkts_dropped(&w) >= 2);
	assert_int_equal(w.sc.sent, 0);
	assert_int_equal(server_sessions(&w), 0);
	world_free(&w);
}

static void test_unknown_client_refused(void **state)
{
	struct world w;
	world_init(&w, state, 0, 1, 0);
	if (w.kcp) {
		run_for(&w, 1500);
		assert_int_equal(w.up, 0); /* no answer at all */
	} else {
		run_until(&w, is_down);
	}
	assert_int_equal(server_sessions(&w), 0);
	assert_true(server_auth_failures(&w) >= 1);
	world_free(&w);
}

static void test_denied_stream_reset_with_reason(void **state)
{
	struct world w;
	world_init(&w, state, 1, 1, 0);
	w.deny = 1;
	struct wn_endpoint target;
	const char *why;
	assert_int_equal(wn_endpoint_parse("unix:/run/x.sock", WN_SCHEME_UNIX,
	                                   WN_SCHEME_TCP, 0, &target, &why),
	                 0);
	struct wn_stream_handler h = {
	    .ctx = &w,
	    .on_data = cli_data,
	    .on_eof = cli_eof,
	    .on_writable = cli_writable,
	    .on_closed = cli_closed,
	};
	w.payload_len = 10;
	w.payload = calloc(1, 10);
	w.echoed = calloc(1, 10);
	w.cs = wn_tunnel_open_stream(tunnel_of(&w), &target, &h);
	pump_send(&w);
	run_until(&w, is_closed);
	assert_int_equal(w.close_err, WN_STREAM_DENIED);
	assert_string_equal(w.last_target.path, "/run/x.sock");
	world_free(&w);
}

static void test_garbage_is_ignored(void **state)
{
	struct world w;
	world_init(&w, state, 1, 1, 0);
	uint8_t junk[1300];
	for (int i = 0; i < 200; i++) {
		randombytes_buf(junk, sizeof(junk));
		size_t n = 1 + (size_t)(randombytes_uniform(sizeof(junk)));
		wn_carrier_send(&w.cc.base, NULL, 0, junk, n, n);
	}
	/* Then a real transfer still works. */
	w.payload_len = 100000;
	w.payload = malloc(w.payload_len);
	w.echoed = malloc(w.payload_len);
	randombytes_buf(w.payload, w.payload_len);
	struct wn_endpoint target;
	const char *why;
	wn_endpoint_parse("example.org:80", WN_SCHEME_TCP, WN_SCHEME_TCP, 0,
	                  &target, &why);
	struct wn_stream_handler h = {
	    .ctx = &w,
	    .on_data = cli_data,
	    .on_eof = cli_eof,
	    .on_writable = cli_writable,
	    .on_closed = cli_closed,
	};
	w.cs = wn_tunnel_open_stream(tunnel_of(&w), &target, &h);
	pump_send(&w);
	run_until(&w, is_closed);
	assert_int_equal(w.close_err, WN_STREAM_OK);
	assert_memory_equal(w.echoed, w.payload, w.payload_len);
	assert_true(server_pkts_dropped(&w) >= 150);
	world_free(&w);
}

static const int quic = 0, kcp = 1;

#define BOTH(t)                                      \
	cmocka_unit_test_prestate(t, (void *)&quic), \
	    cmocka_unit_test_prestate(t, (void *)&kcp)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_echo_small),
	    BOTH(test_echo_8mb),
	    BOTH(test_echo_2mb_with_3pct_loss),
	    BOTH(test_echo_1mb_reordered),
	    BOTH(test_wrong_server_key_refused),
	    BOTH(test_unknown_client_refused),
	    BOTH(test_denied_stream_reset_with_reason),
	    BOTH(test_garbage_is_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
