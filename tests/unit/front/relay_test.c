/* Tests for the relay, with real loopback sockets on one side and the
 * pipetunnel (a strict in-memory engine) on the other. The far end of the
 * stream is a scripted peer, so every state can be driven on purpose:
 * backpressure both ways, half-close in either order, resets from either
 * side in each state, closes from inside callbacks, and the server side's
 * queueing before connect, connect failures and timeouts. Under ASan a
 * leak or a use after free fails the test; wn_loop_close returning 0 says
 * every handle was closed by its owner. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "front/relay.h"
#include "support/netpeer.h"
#include "support/pipetunnel.h"
#include "util/err.h"

#define WINDOW (32 * 1024)
#define SENDBUF (16 * 1024)

struct fx {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_pipetunnel *pt;
	struct wn_relay_set set;
	enum wn_relay_side side;
	/* client side: the listener the application connects to */
	uv_tcp_t listener;
	bool listening;
	uint16_t port;
	struct wn_np_client cl;
	/* server side: the target */
	struct wn_np_server srv;
	bool srv_on;
	/* The far end of the stream: the server's application in
	 * client-side tests, the client's in server-side tests. */
	struct wn_np_stream peer;
	struct wn_relay *relay; /* until it finishes */
	int finished;
	int finish_err;
	bool close_all_on_finish;
	/* server side: what the accept handler does */
	struct sockaddr_storage addrs[4];
	size_t naddrs;
	const char *path;
	bool connect_later;
	uint32_t connect_timeout_ms;
};

/* A peer hook: end the relay from inside a stream callback. */
static void close_relay_hook(struct wn_np_stream *p, void *arg)
{
	struct wn_relay **rp = arg;

	if (*rp && p->got > 1000)
		wn_relay_close(*rp, WN_STREAM_INTERNAL);
}

/* ---- fixture ---------------------------------------------------------- */

static void on_finish(void *ctx, struct wn_relay *r, int err)
{
	struct fx *f = ctx;
	struct wn_relay_stats st;

	wn_relay_get_stats(r, &st);
	assert_string_equal(st.state, "CLOSED");
	f->finished++;
	f->finish_err = err;
	if (f->relay == r)
		f->relay = NULL;
	if (f->close_all_on_finish)
		wn_relay_set_close_all(&f->set, WN_STREAM_INTERNAL);
}

static struct wn_relay *new_relay(struct fx *f, enum wn_relay_sock sock)
{
	struct wn_relay_opts o = {
	    .loop = &f->loop,
	    .log = &f->log,
	    .set = &f->set,
	    .side = f->side,
	    .sock = sock,
	    .label = f->side == WN_RELAY_CLIENT ? "test" : "c11e0001",
	    .out_limit = 4 * WINDOW,
	    .connect_timeout_ms = f->connect_timeout_ms,
	    .on_finish = on_finish,
	    .ctx = f,
	};
	struct wn_relay *r;

	assert_int_equal(wn_relay_new(&o, &r), 0);
	f->relay = r;
	return r;
}

/* Client side: each accepted connection gets a relay and a stream. */
static void on_app_connection(uv_stream_t *l, int status)
{
	struct fx *f = l->data;
	struct wn_endpoint target;
	const char *why;
	struct wn_relay *r;

	assert_int_equal(status, 0);
	assert_int_equal(wn_endpoint_parse("127.0.0.1:9", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &target, &why),
	                 0);
	r = new_relay(f, WN_RELAY_TCP);
	assert_int_equal(wn_relay_accept(r, l), 0);
	if (wn_relay_open(r, wn_pipetunnel_client(f->pt), &target) != 0)
		wn_relay_close(r, WN_STREAM_INTERNAL);
}

/* The server end of the pipetunnel in client-side tests: the peer. */
static void peer_on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                           const struct wn_endpoint *target)
{
	struct fx *f = ctx;
	struct wn_stream_handler h = wn_np_stream_handler(&f->peer);

	assert_non_null(target);
	assert_int_equal(target->port, 9);
	f->peer.streams++;
	f->peer.s = s;
	wn_stream_set_handler(s, &h);
	wn_np_stream_push(&f->peer);
}

static void connect_now(struct fx *f, struct wn_relay *r)
{
	if (f->path)
		assert_int_equal(wn_relay_connect(r, NULL, 0, f->path), 0);
	else
		assert_int_equal(wn_relay_connect(r, f->addrs, f->naddrs, NULL),
		                 0);
}

/* Server side: the accept handler adopts into a relay and connects. */
static void relay_on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                            const struct wn_endpoint *target)
{
	struct fx *f = ctx;
	struct wn_relay *r =
	    new_relay(f, f->path ? WN_RELAY_PIPE : WN_RELAY_TCP);

	wn_relay_adopt(r, s);
	if (!f->connect_later)
		connect_now(f, r);
}

static struct fx *fx_new(enum wn_relay_side side,
                         const struct wn_pipetunnel_opts *po)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct wn_pipetunnel_opts o = {
	    .send_limit = SENDBUF, .recv_window = WINDOW, .chunk = 4096};
	struct wn_accept_handler ah = {.ctx = f,
	                               .on_stream = side == WN_RELAY_CLIENT
	                                                ? peer_on_stream
	                                                : relay_on_stream};
	const char *lvl = getenv("WN_TEST_LOG");

	assert_non_null(f);
	assert_int_equal(wn_loop_init(&f->loop), 0);
	wn_log_init(&f->log, lvl ? wn_log_level_parse(lvl) : WN_LOG_WARN, 2);
	wn_relay_set_init(&f->set);
	f->side = side;
	assert_int_equal(wn_pipetunnel_new(&f->loop, po ? po : &o, &ah, &f->pt),
	                 0);
	f->peer.seed = 0x5eed0001;
	f->cl.seed = 0xc1c1;
	f->peer.expect_seed = f->cl.seed;
	return f;
}

static void fx_listen(struct fx *f)
{
	struct sockaddr_in sin;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	uv_tcp_init(wn_loop_uv(&f->loop), &f->listener);
	f->listener.data = f;
	uv_ip4_addr("127.0.0.1", 0, &sin);
	assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&sin, 0),
	                 0);
	assert_int_equal(
	    uv_listen((uv_stream_t *)&f->listener, 16, on_app_connection), 0);
	uv_tcp_getsockname(&f->listener, (struct sockaddr *)&ss, &len);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	f->listening = true;
}

static void fx_connect_app(struct fx *f)
{
	struct sockaddr_in sin;

	uv_ip4_addr("127.0.0.1", f->port, &sin);
	f->cl.seed = f->peer.expect_seed;
	assert_int_equal(
	    wn_np_client_tcp(&f->cl, &f->loop, (struct sockaddr *)&sin), 0);
}

static bool nothing_left(void *arg)
{
	struct fx *f = arg;

	return f->set.live == 0 && wn_pipetunnel_stats(f->pt)->live == 0;
}

static void fx_free(struct fx *f)
{
	/* Whatever a test left running ends now, as in a shutdown. */
	wn_relay_set_close_all(&f->set, WN_STREAM_ABORTED);
	wn_np_run_until(&f->loop, nothing_left, f, 2000);
	wn_pipetunnel_close(f->pt);
	if (f->listening)
		uv_close((uv_handle_t *)&f->listener, NULL);
	if (f->srv_on)
		wn_np_server_close(&f->srv);
	if (f->cl.loop && !f->cl.closing)
		wn_np_client_close(&f->cl);
	assert_int_equal(wn_loop_close(&f->loop), 0);
	free(f);
}

static bool client_closed(void *arg)
{
	struct fx *f = arg;

	return f->cl.closed;
}

static bool relay_finished(void *arg)
{
	struct fx *f = arg;

	return f->finished > 0 && f->cl.closed && f->peer.closed;
}

/* ---- pure ------------------------------------------------------------- */

static void t_stream_err_mapping(void **state)
{
	assert_int_equal(
	    wn_relay_stream_err(WN_RELAY_CLIENT, false, WN_ECONNRESET),
	    WN_STREAM_ABORTED);
	assert_int_equal(wn_relay_stream_err(WN_RELAY_CLIENT, false, WN_ENOMEM),
	                 WN_STREAM_INTERNAL);
	assert_int_equal(
	    wn_relay_stream_err(WN_RELAY_SERVER, false, WN_ECONNRESET),
	    WN_STREAM_TARGET_RESET);
	assert_int_equal(
	    wn_relay_stream_err(WN_RELAY_SERVER, true, WN_ECONNREFUSED),
	    WN_STREAM_REFUSED);
	assert_int_equal(wn_relay_stream_err(WN_RELAY_SERVER, true, WN_ENOENT),
	                 WN_STREAM_UNREACHABLE);
	assert_int_equal(
	    wn_relay_stream_err(WN_RELAY_SERVER, true, WN_EUNREACH),
	    WN_STREAM_UNREACHABLE);
	assert_int_equal(
	    wn_relay_stream_err(WN_RELAY_SERVER, true, WN_ETIMEDOUT),
	    WN_STREAM_TIMEOUT);
}

/* ---- client side ------------------------------------------------------ */

enum when { AT_OPEN, AFTER_APP_EOF, AFTER_PEER_EOF };

static bool peer_got_eof(void *arg)
{
	return ((struct fx *)arg)->peer.eof;
}

static bool app_got_eof(void *arg)
{
	return ((struct fx *)arg)->cl.eof;
}

static bool peer_streams(void *arg)
{
	return ((struct fx *)arg)->peer.streams > 0 &&
	       ((struct fx *)arg)->peer.got > 0;
}

/* Megabytes both ways at once through small buffers; both ends verify. */
static void t_bulk_both_ways(void **state)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);
	const struct wn_pipetunnel_stats *ps = wn_pipetunnel_stats(f->pt);

	f->peer.send_len = 3 * 1024 * 1024 + 17;
	f->peer.shut_when_sent = true;
	f->cl.send_len = 4 * 1024 * 1024 + 5;
	f->cl.shut_after_send = true;
	f->cl.expect = WN_NP_EXPECT_STREAM;
	f->cl.expect_seed = f->peer.seed;
	f->cl.expect_len = f->peer.send_len;
	fx_listen(f);
	fx_connect_app(f);
	assert_true(wn_np_run_until(&f->loop, relay_finished, f, 20000));
	assert_true(wn_np_client_ok(&f->cl));
	assert_false(f->peer.mismatch);
	assert_int_equal(f->peer.got, f->cl.send_len);
	assert_true(f->peer.eof);
	assert_int_equal(f->peer.closed_err, WN_STREAM_OK);
	assert_int_equal(f->finish_err, WN_STREAM_OK);
	assert_int_equal(f->set.totals.up_bytes, f->cl.send_len);
	assert_int_equal(f->set.totals.down_bytes, f->peer.send_len);
	assert_int_equal(f->set.totals.errs[WN_STREAM_OK], 1);
	assert_true(ps->max_unconsumed <= WINDOW);
	assert_true(ps->max_sendq <= SENDBUF);
	assert_true(f->set.totals.out_max <= WINDOW);
	/* The relay released its end once both directions were done, so
	 * only the peer hears on_closed. */
	assert_int_equal(ps->closed_ok, 1);
	fx_free(f);
}

/* The application does not read: the relay must not consume, so the peer
 * is stopped by flow control and the relay's queue stays within the
 * window. Then it reads and everything arrives. */
static void t_slow_socket_reader(void **state)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);
	const struct wn_pipetunnel_stats *ps = wn_pipetunnel_stats(f->pt);

	f->peer.send_len = 24 * 1024 * 1024;
	f->peer.shut_when_sent = true;
	f->cl.send_len = 4;
	f->cl.shut_after_send = true;
	f->cl.stalled = true;
	f->cl.expect = WN_NP_EXPECT_STREAM;
	f->cl.expect_seed = f->peer.seed;
	f->cl.expect_len = f->peer.send_len;
	fx_listen(f);
	fx_connect_app(f);
	wn_np_run_for(&f->loop, 500);
	/* Kernel buffers take a few MB; the rest waits at the peer. */
	assert_true(f->peer.sent < f->peer.send_len);
	assert_true(ps->max_unconsumed <= WINDOW);
	assert_true(f->set.totals.out_max <= WINDOW);
	assert_non_null(f->relay);
	wn_np_client_resume(&f->cl);
	assert_true(wn_np_run_until(&f->loop, relay_finished, f, 30000));
	assert_true(wn_np_client_ok(&f->cl));
	assert_int_equal(f->finish_err, WN_STREAM_OK);
	assert_true(f->set.totals.out_max <= WINDOW);
	fx_free(f);
}

/* The peer does not consume: the stream's send buffer fills, the relay
 * stops reading its socket and the application's writes stall. */
static void t_slow_stream_reader(void **state)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);
	const struct wn_pipetunnel_stats *ps = wn_pipetunnel_stats(f->pt);
	uint64_t sent;

	f->peer.hold = true;
	f->peer.shut_when_sent = true;
	f->cl.send_len = 32 * 1024 * 1024;
	f->cl.shut_after_send = true;
	f->cl.expect = WN_NP_EXPECT_NOTHING;
	fx_listen(f);
	fx_connect_app(f);
	wn_np_run_for(&f->loop, 500);
	sent = f->cl.sent;
	assert_true(sent < f->cl.send_len);
	assert_true(f->peer.got <= WINDOW);
	assert_true(ps->max_sendq <= SENDBUF);
	wn_np_run_for(&f->loop, 100);
	assert_int_equal(f->cl.sent, sent); /* really stalled */
	wn_np_stream_unhold(&f->peer);
	assert_true(wn_np_run_until(&f->loop, relay_finished, f, 30000));
	assert_true(wn_np_client_ok(&f->cl));
	assert_int_equal(f->peer.got, f->cl.send_len);
	assert_false(f->peer.mismatch);
	fx_free(f);
}

/* The application shuts its side first and still gets the whole reply. */
static void t_half_close_app_first(void **state)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);

	f->cl.send_len = 100 * 1000;
	f->cl.shut_after_send = true;
	f->cl.expect = WN_NP_EXPECT_STREAM;
	f->cl.expect_seed = f->peer.seed;
	f->cl.expect_len = 300 * 1000;
	fx_listen(f);
	fx_connect_app(f);
	/* The peer answers only once the EOF has reached it. */
	assert_true(wn_np_run_until(&f->loop, peer_got_eof, f, 5000));
	assert_int_equal(f->peer.got, f->cl.send_len);
	assert_false(f->cl.closed);
	f->peer.send_len = f->cl.expect_len;
	f->peer.shut_when_sent = true;
	wn_np_stream_push(&f->peer);
	assert_true(wn_np_run_until(&f->loop, relay_finished, f, 10000));
	assert_true(wn_np_client_ok(&f->cl));
	assert_int_equal(f->finish_err, WN_STREAM_OK);
	fx_free(f);
}

/* The peer ends first; the application keeps sending after the EOF. */
static void t_half_close_peer_first(void **state)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);

	f->peer.send_len = 100 * 1000;
	f->peer.shut_when_sent = true;
	f->cl.send_len = 2 * 1024 * 1024;
	f->cl.shut_after_send = true;
	f->cl.expect = WN_NP_EXPECT_STREAM;
	f->cl.expect_seed = f->peer.seed;
	f->cl.expect_len = f->peer.send_len;
	fx_listen(f);
	fx_connect_app(f);
	assert_true(wn_np_run_until(&f->loop, relay_finished, f, 10000));
	assert_true(wn_np_client_ok(&f->cl));
	assert_int_equal(f->peer.got, f->cl.send_len);
	assert_int_equal(f->finish_err, WN_STREAM_OK);
	fx_free(f);
}

/* The engine may report a clean close while the relay still has bytes for
 * its slow socket; they must still arrive, and the relay must not touch
 * the stream after on_closed (the pipetunnel would abort). */
static void t_closed_ok_while_draining(void **state)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);

	f->peer.send_len = 8 * 1024 * 1024;
	f->peer.shut_when_sent = true;
	f->cl.send_len = 10;
	f->cl.shut_after_send = true;
	f->cl.stalled = true;
	f->cl.expect = WN_NP_EXPECT_STREAM;
	f->cl.expect_seed = f->peer.seed;
	f->cl.expect_len = f->peer.send_len;
	fx_listen(f);
	fx_connect_app(f);
	wn_np_run_for(&f->loop, 300);
	wn_np_client_resume(&f->cl);
	assert_true(wn_np_run_until(&f->loop, relay_finished, f, 30000));
	assert_true(wn_np_client_ok(&f->cl));
	assert_int_equal(f->finish_err, WN_STREAM_OK);
	fx_free(f);
}

/* The peer resets the stream: the application sees a reset (not an EOF)
 * in every state. */
static void peer_reset_in(enum when when)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);

	f->cl.send_len = when == AFTER_APP_EOF ? 1000 : 8 * 1024 * 1024;
	f->cl.shut_after_send = true;
	f->cl.expect = WN_NP_EXPECT_STREAM;
	f->cl.expect_seed = f->peer.seed;
	f->cl.expect_len = 1000;
	if (when == AFTER_PEER_EOF) {
		f->peer.send_len = 1000;
		f->peer.shut_when_sent = true;
	}
	fx_listen(f);
	fx_connect_app(f);
	switch (when) {
	case AT_OPEN:
		assert_true(wn_np_run_until(&f->loop, peer_streams, f, 5000));
		break;
	case AFTER_APP_EOF:
		assert_true(wn_np_run_until(&f->loop, peer_got_eof, f, 5000));
		break;
	case AFTER_PEER_EOF:
		assert_true(wn_np_run_until(&f->loop, app_got_eof, f, 5000));
		break;
	}
	assert_non_null(f->peer.s);
	wn_stream_reset(f->peer.s, WN_STREAM_TARGET_RESET);
	assert_true(wn_np_run_until(&f->loop, relay_finished, f, 5000));
	/* Seen by a read, or by a write (after its EOF the application
	 * only writes). */
	assert_true(wn_np_client_was_reset(&f->cl));
	assert_int_equal(f->finish_err, WN_STREAM_TARGET_RESET);
	assert_int_equal(f->peer.closed_err, WN_STREAM_TARGET_RESET);
	assert_int_equal(f->set.totals.errs[WN_STREAM_TARGET_RESET], 1);
	fx_free(f);
}

static void t_peer_reset_open(void **state)
{
	peer_reset_in(AT_OPEN);
}

static void t_peer_reset_after_app_eof(void **state)
{
	peer_reset_in(AFTER_APP_EOF);
}

static void t_peer_reset_after_peer_eof(void **state)
{
	peer_reset_in(AFTER_PEER_EOF);
}

/* The application resets its connection mid-transfer: the peer hears
 * that the application aborted. */
static void t_app_reset(void **state)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);

	f->cl.send_len = 64 * 1024 * 1024;
	f->cl.expect = WN_NP_EXPECT_NOTHING;
	f->peer.hold = true; /* keep data in flight */
	fx_listen(f);
	fx_connect_app(f);
	assert_true(wn_np_run_until(&f->loop, peer_streams, f, 5000));
	wn_np_client_reset(&f->cl);
	/* A relay that stopped reading (stream full) notices the reset when
	 * it reads again. */
	wn_np_run_for(&f->loop, 100);
	wn_np_stream_unhold(&f->peer);
	assert_true(wn_np_run_until(&f->loop, relay_finished, f, 5000));
	assert_int_equal(f->peer.closed_err, WN_STREAM_ABORTED);
	assert_int_equal(f->finish_err, WN_STREAM_ABORTED);
	assert_int_equal(f->set.totals.socket_errors, 1);
	fx_free(f);
}

/* The owner ends the relay (a forward closing): RST to the application,
 * reset to the peer. Also from inside a stream callback. */
static void t_owner_close(void **state)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);

	f->cl.send_len = 8 * 1024 * 1024;
	f->cl.expect = WN_NP_EXPECT_NOTHING;
	fx_listen(f);
	fx_connect_app(f);
	assert_true(wn_np_run_until(&f->loop, peer_streams, f, 5000));
	wn_relay_set_close_all(&f->set, WN_STREAM_ABORTED);
	assert_int_equal(f->set.live, 0);
	assert_null(f->relay);
	assert_true(wn_np_run_until(&f->loop, relay_finished, f, 5000));
	assert_true(wn_np_client_was_reset(&f->cl));
	assert_int_equal(f->peer.closed_err, WN_STREAM_ABORTED);
	fx_free(f);
}

static void t_close_inside_peer_callback(void **state)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);

	f->cl.send_len = 8 * 1024 * 1024;
	f->cl.expect = WN_NP_EXPECT_NOTHING;
	f->peer.on_data_hook = close_relay_hook;
	f->peer.hook_arg = &f->relay;
	fx_listen(f);
	fx_connect_app(f);
	assert_true(wn_np_run_until(&f->loop, relay_finished, f, 5000));
	assert_int_equal(f->finish_err, WN_STREAM_INTERNAL);
	assert_int_equal(f->peer.closed_err, WN_STREAM_INTERNAL);
	assert_true(wn_np_client_was_reset(&f->cl));
	fx_free(f);
}

/* A relay's end closing the whole set from its on_finish. */
static void t_close_all_from_finish(void **state)
{
	struct fx *f = fx_new(WN_RELAY_CLIENT, NULL);
	struct wn_np_client second;

	memset(&second, 0, sizeof(second));
	f->close_all_on_finish = true;
	f->cl.send_len = 8 * 1024 * 1024;
	f->cl.expect = WN_NP_EXPECT_NOTHING;
	second.seed = f->cl.seed;
	second.send_len = 8 * 1024 * 1024;
	second.expect = WN_NP_EXPECT_NOTHING;
	fx_listen(f);
	fx_connect_app(f);
	assert_true(wn_np_run_until(&f->loop, peer_streams, f, 5000));
	{
		struct sockaddr_in sin;

		uv_ip4_addr("127.0.0.1", f->port, &sin);
		assert_int_equal(wn_np_client_tcp(&second, &f->loop,
		                                  (struct sockaddr *)&sin),
		                 0);
	}
	while (f->set.live < 2)
		wn_np_run_for(&f->loop, 5);
	wn_np_client_reset(&f->cl);
	while (!second.closed)
		wn_np_run_for(&f->loop, 5);
	assert_int_equal(f->finished, 2);
	assert_true(wn_np_client_was_reset(&second));
	fx_free(f);
}

/* The tunnel takes no new stream: the connection is reset at once. */
static void t_open_refused(void **state)
{
	struct wn_pipetunnel_opts po = {.max_streams = 1};
	struct fx *f = fx_new(WN_RELAY_CLIENT, &po);
	struct wn_np_stream other = {0};
	struct wn_stream_handler h = wn_np_stream_handler(&other);
	struct wn_endpoint ep;
	const char *why;
	struct wn_stream *s;

	assert_int_equal(wn_endpoint_parse("127.0.0.1:9", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &ep, &why),
	                 0);
	s = wn_tunnel_open_stream(wn_pipetunnel_client(f->pt), &ep, &h);
	assert_non_null(s);
	other.s = s;
	f->cl.send_len = 100;
	f->cl.expect = WN_NP_EXPECT_NOTHING;
	fx_listen(f);
	fx_connect_app(f);
	assert_true(wn_np_run_until(&f->loop, client_closed, f, 5000));
	assert_true(wn_np_client_was_reset(&f->cl));
	assert_int_equal(f->set.totals.open_failures, 1);
	assert_int_equal(f->set.totals.opened, 0);
	assert_int_equal(f->finished, 1);
	wn_stream_reset(s, WN_STREAM_ABORTED);
	fx_free(f);
}

/* ---- server side ------------------------------------------------------ */

/* Our stream end as the client's application. */
static struct wn_stream *app_open(struct fx *f, const char *target)
{
	struct wn_endpoint ep;
	const char *why;
	struct wn_stream_handler h = wn_np_stream_handler(&f->peer);

	assert_int_equal(wn_endpoint_parse(target,
	                                   WN_SCHEME_TCP | WN_SCHEME_UNIX,
	                                   WN_SCHEME_TCP, 0, &ep, &why),
	                 0);
	f->peer.s = wn_tunnel_open_stream(wn_pipetunnel_client(f->pt), &ep, &h);
	assert_non_null(f->peer.s);
	wn_np_stream_push(&f->peer);
	return f->peer.s;
}

static void set_addr(struct fx *f, const char *ip, uint16_t port)
{
	struct sockaddr_storage *ss = &f->addrs[f->naddrs++];

	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':'))
		uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss);
	else
		uv_ip4_addr(ip, port, (struct sockaddr_in *)ss);
}

static bool stream_closed(void *arg)
{
	struct fx *f = arg;

	return f->peer.closed && f->finished > 0;
}

/* A port nothing listens on. */
static uint16_t closed_port(struct fx *f)
{
	struct wn_np_server s;
	uint16_t port;

	memset(&s, 0, sizeof(s));
	assert_int_equal(
	    wn_np_server_tcp(&s, &f->loop, "127.0.0.1", WN_NP_SINK), 0);
	port = s.port;
	wn_np_server_close(&s);
	wn_np_run_for(&f->loop, 10);
	return port;
}

/* Data and EOF sent before the target is even connected arrive, in
 * order, once it is. */
static void t_server_queue_before_connect(void **state)
{
	struct fx *f = fx_new(WN_RELAY_SERVER, NULL);

	f->srv_on = true;
	assert_int_equal(
	    wn_np_server_tcp(&f->srv, &f->loop, "127.0.0.1", WN_NP_SINK), 0);
	set_addr(f, "127.0.0.1", f->srv.port);
	f->connect_later = true;
	f->peer.send_len = WINDOW; /* all of it fits before the connect */
	f->peer.shut_when_sent = true;
	app_open(f, "127.0.0.1:9");
	wn_np_run_for(&f->loop, 100);
	assert_non_null(f->relay);
	assert_int_equal(f->peer.sent, WINDOW);
	assert_true(f->peer.shut);
	assert_int_equal(f->srv.accepted, 0);
	connect_now(f, f->relay);
	assert_true(wn_np_run_until(&f->loop, stream_closed, f, 5000));
	assert_int_equal(f->peer.closed_err, WN_STREAM_OK);
	assert_int_equal(f->srv.bytes_in, WINDOW);
	assert_int_equal(f->srv.mismatches, 0);
	assert_int_equal(f->srv.eofs, 1);
	assert_int_equal(f->finish_err, WN_STREAM_OK);
	fx_free(f);
}

static void t_server_refused(void **state)
{
	struct fx *f = fx_new(WN_RELAY_SERVER, NULL);

	set_addr(f, "127.0.0.1", closed_port(f));
	f->peer.send_len = 1000;
	app_open(f, "127.0.0.1:9");
	assert_true(wn_np_run_until(&f->loop, stream_closed, f, 5000));
	assert_int_equal(f->peer.closed_err, WN_STREAM_REFUSED);
	assert_int_equal(f->set.totals.errs[WN_STREAM_REFUSED], 1);
	fx_free(f);
}

/* Addresses are tried in order; a refusal moves on to the next. */
static void t_server_next_address(void **state)
{
	struct fx *f = fx_new(WN_RELAY_SERVER, NULL);

	f->srv_on = true;
	assert_int_equal(
	    wn_np_server_tcp(&f->srv, &f->loop, "127.0.0.1", WN_NP_ECHO), 0);
	set_addr(f, "127.0.0.1", closed_port(f));
	set_addr(f, "::1", closed_port(f));
	set_addr(f, "127.0.0.1", f->srv.port);
	f->peer.seed = f->peer.expect_seed = 0xec40;
	f->peer.send_len = 200 * 1000;
	f->peer.shut_when_sent = true;
	app_open(f, "127.0.0.1:9");
	assert_true(wn_np_run_until(&f->loop, stream_closed, f, 5000));
	assert_int_equal(f->peer.closed_err, WN_STREAM_OK);
	assert_int_equal(f->peer.got, f->peer.send_len);
	assert_false(f->peer.mismatch);
	fx_free(f);
}

/* A listener whose accept queue is full: SYNs are dropped, connects hang. */
static int full_listener(uint16_t *port, int *held)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 0), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	*port = ntohs(sin.sin_port);
	for (int i = 0; i < 2; i++) {
		held[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(held[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	usleep(50 * 1000);
	return fd;
}

static void t_server_connect_timeout(void **state)
{
	struct fx *f = fx_new(WN_RELAY_SERVER, NULL);
	uint16_t port;
	int held[2], fd = full_listener(&port, held);
	uint64_t t0;

	f->connect_timeout_ms = 300;
	set_addr(f, "127.0.0.1", port);
	app_open(f, "127.0.0.1:9");
	t0 = wn_loop_now_ms(&f->loop);
	assert_true(wn_np_run_until(&f->loop, stream_closed, f, 5000));
	assert_int_equal(f->peer.closed_err, WN_STREAM_TIMEOUT);
	assert_true(wn_loop_now_ms(&f->loop) - t0 >= 250);
	fx_free(f);
	close(held[0]);
	close(held[1]);
	close(fd);
}

/* The client gives up while the connect hangs. */
static void t_server_reset_while_connecting(void **state)
{
	struct fx *f = fx_new(WN_RELAY_SERVER, NULL);
	uint16_t port;
	int held[2], fd = full_listener(&port, held);
	struct wn_relay_stats st;

	set_addr(f, "127.0.0.1", port);
	app_open(f, "127.0.0.1:9");
	wn_np_run_for(&f->loop, 50);
	assert_non_null(f->relay);
	wn_relay_get_stats(f->relay, &st);
	assert_string_equal(st.state, "CONNECTING");
	wn_stream_reset(f->peer.s, WN_STREAM_ABORTED);
	assert_true(wn_np_run_until(&f->loop, stream_closed, f, 5000));
	assert_int_equal(f->finish_err, WN_STREAM_ABORTED);
	fx_free(f);
	close(held[0]);
	close(held[1]);
	close(fd);
}

/* Adopted but never connected (a lookup that never ends): the connect
 * timeout still ends it. */
static void t_server_pending_timeout(void **state)
{
	struct fx *f = fx_new(WN_RELAY_SERVER, NULL);

	f->connect_timeout_ms = 100;
	f->connect_later = true;
	f->peer.send_len = 5000;
	f->peer.shut_when_sent = true;
	app_open(f, "127.0.0.1:9");
	assert_true(wn_np_run_until(&f->loop, stream_closed, f, 5000));
	assert_int_equal(f->peer.closed_err, WN_STREAM_TIMEOUT);
	fx_free(f);
}

static void t_server_unix(void **state)
{
	struct fx *f = fx_new(WN_RELAY_SERVER, NULL);
	char path[64];

	snprintf(path, sizeof(path), "/tmp/wn-relay-%d.sock", (int)getpid());
	f->srv_on = true;
	assert_int_equal(wn_np_server_unix(&f->srv, &f->loop, path, WN_NP_ECHO),
	                 0);
	f->path = path;
	f->peer.seed = f->peer.expect_seed = 0xec41;
	f->peer.send_len = 3 * 1024 * 1024;
	f->peer.shut_when_sent = true;
	app_open(f, "unix:/tmp/x");
	assert_true(wn_np_run_until(&f->loop, stream_closed, f, 10000));
	assert_int_equal(f->peer.closed_err, WN_STREAM_OK);
	assert_int_equal(f->peer.got, f->peer.send_len);
	assert_false(f->peer.mismatch);
	fx_free(f);
}

static void t_server_unix_missing(void **state)
{
	struct fx *f = fx_new(WN_RELAY_SERVER, NULL);

	f->path = "/tmp/wn-relay-no-such.sock";
	unlink(f->path);
	app_open(f, "unix:/tmp/x");
	assert_true(wn_np_run_until(&f->loop, stream_closed, f, 5000));
	assert_int_equal(f->peer.closed_err, WN_STREAM_UNREACHABLE);
	fx_free(f);
}

/* The target resets mid-stream: the client hears TARGET_RESET. */
static void t_server_target_reset(void **state)
{
	struct fx *f = fx_new(WN_RELAY_SERVER, NULL);

	f->srv_on = true;
	f->srv.reset_after = 100 * 1000;
	assert_int_equal(
	    wn_np_server_tcp(&f->srv, &f->loop, "127.0.0.1", WN_NP_RESET), 0);
	set_addr(f, "127.0.0.1", f->srv.port);
	f->peer.send_len = 8 * 1024 * 1024;
	app_open(f, "127.0.0.1:9");
	assert_true(wn_np_run_until(&f->loop, stream_closed, f, 5000));
	assert_int_equal(f->peer.closed_err, WN_STREAM_TARGET_RESET);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_stream_err_mapping),
	    cmocka_unit_test(t_bulk_both_ways),
	    cmocka_unit_test(t_slow_socket_reader),
	    cmocka_unit_test(t_slow_stream_reader),
	    cmocka_unit_test(t_half_close_app_first),
	    cmocka_unit_test(t_half_close_peer_first),
	    cmocka_unit_test(t_closed_ok_while_draining),
	    cmocka_unit_test(t_peer_reset_open),
	    cmocka_unit_test(t_peer_reset_after_app_eof),
	    cmocka_unit_test(t_peer_reset_after_peer_eof),
	    cmocka_unit_test(t_app_reset),
	    cmocka_unit_test(t_owner_close),
	    cmocka_unit_test(t_close_inside_peer_callback),
	    cmocka_unit_test(t_close_all_from_finish),
	    cmocka_unit_test(t_open_refused),
	    cmocka_unit_test(t_server_queue_before_connect),
	    cmocka_unit_test(t_server_refused),
	    cmocka_unit_test(t_server_next_address),
	    cmocka_unit_test(t_server_connect_timeout),
	    cmocka_unit_test(t_server_reset_while_connecting),
	    cmocka_unit_test(t_server_pending_timeout),
	    cmocka_unit_test(t_server_unix),
	    cmocka_unit_test(t_server_unix_missing),
	    cmocka_unit_test(t_server_target_reset),
	};

	/* Writes to a reset socket must fail with EPIPE, not kill us (the
	 * daemon ignores SIGPIPE the same way). */
	signal(SIGPIPE, SIG_IGN);
	if (getenv("WN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("WN_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
