/* Tests for io/sock: connecting across addresses (each attempt on a fresh
 * socket, the most telling failure reported), closing during a connect,
 * closing with a reset, and the handshake reads that never take more than
 * they were asked for. Real loopback sockets; wn_loop_close returning 0
 * says every handle was closed by its owner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/loop.h"
#include "io/sock.h"
#include "util/err.h"

struct fx {
	struct wn_loop loop;
	struct wn_sock sock;
	int connects, connect_status;
	int closes;
	int reads;
	ssize_t read_n;
	uint8_t rbuf[64];
	/* the server: a listener and the one connection it accepts */
	uv_tcp_t listener, peer;
	bool listening, peer_open;
	uint16_t port;
	int accepted;
	int peer_status; /* last read status of the peer: 0, UV_EOF, ... */
	bool peer_reset;
	int refuse; /* connections to refuse (wn_sock_refuse) before one */
};

static void on_connect(void *ctx, int status)
{
	struct fx *f = ctx;

	f->connects++;
	f->connect_status = status;
}

static void on_close(void *ctx)
{
	struct fx *f = ctx;

	f->closes++;
}

static void on_read(void *ctx, ssize_t n)
{
	struct fx *f = ctx;

	f->reads++;
	f->read_n = n;
}

static void run_until(struct fx *f, const int *counter, int want)
{
	for (int i = 0; i < 2000 && *counter < want; i++)
		uv_run(wn_loop_uv(&f->loop), UV_RUN_ONCE);
	assert_int_equal(*counter, want);
}

static void peer_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	static char buf[256];

	*b = uv_buf_init(buf, sizeof(buf));
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct fx *f = s->data;

	if (n < 0) {
		f->peer_status = (int)n;
		f->peer_reset = n == UV_ECONNRESET;
		uv_read_stop(s);
	}
}

static void on_peer(uv_stream_t *l, int status)
{
	struct fx *f = l->data;

	assert_int_equal(status, 0);
	if (f->refuse > 0) {
		f->refuse--;
		assert_int_equal(wn_sock_refuse(l), 0);
		return;
	}
	assert_false(f->peer_open);
	uv_tcp_init(wn_loop_uv(&f->loop), &f->peer);
	f->peer.data = f;
	assert_int_equal(uv_accept(l, (uv_stream_t *)&f->peer), 0);
	f->peer_open = true;
	f->accepted++;
	uv_read_start((uv_stream_t *)&f->peer, peer_alloc, peer_read);
}

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(wn_loop_init(&f->loop), 0);
	return f;
}

static void fx_listen(struct fx *f)
{
	struct sockaddr_in sin;
	int len = sizeof(sin);

	uv_tcp_init(wn_loop_uv(&f->loop), &f->listener);
	f->listener.data = f;
	uv_ip4_addr("127.0.0.1", 0, &sin);
	assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&sin, 0),
	                 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 8, on_peer), 0);
	uv_tcp_getsockname(&f->listener, (struct sockaddr *)&sin, &len);
	f->port = ntohs(sin.sin_port);
	f->listening = true;
}

static void fx_free(struct fx *f)
{
	if (f->listening)
		uv_close((uv_handle_t *)&f->listener, NULL);
	if (f->peer_open)
		uv_close((uv_handle_t *)&f->peer, NULL);
	uv_run(wn_loop_uv(&f->loop), UV_RUN_NOWAIT);
	assert_int_equal(wn_loop_close(&f->loop), 0);
	free(f);
}

static void addr(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':'))
		uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss);
	else
		uv_ip4_addr(ip, port, (struct sockaddr_in *)ss);
}

/* A TCP port nothing listens on (bound, then closed). */
static uint16_t closed_port(struct fx *f)
{
	uv_tcp_t t;
	struct sockaddr_in sin;
	int len = sizeof(sin);

	uv_tcp_init(wn_loop_uv(&f->loop), &t);
	uv_ip4_addr("127.0.0.1", 0, &sin);
	assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&sin, 0), 0);
	uv_tcp_getsockname(&t, (struct sockaddr *)&sin, &len);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(wn_loop_uv(&f->loop), UV_RUN_NOWAIT);
	return ntohs(sin.sin_port);
}

static void sock_init(struct fx *f, enum wn_sock_kind kind)
{
	assert_int_equal(
	    wn_sock_init(&f->sock, &f->loop, kind, NULL, "t", on_close, f), 0);
}

static void sock_close(struct fx *f, bool rst)
{
	wn_sock_close(&f->sock, rst);
	run_until(f, &f->closes, 1);
}

/* Refused addresses (of both families) are passed over; the one that
 * answers connects. Each attempt after a failure is on a fresh socket. */
static void t_next_address(void **state)
{
	struct fx *f = fx_new();
	struct sockaddr_storage a[3];

	fx_listen(f);
	addr(&a[0], "127.0.0.1", closed_port(f));
	addr(&a[1], "::1", closed_port(f));
	addr(&a[2], "127.0.0.1", f->port);
	sock_init(f, WN_SOCK_TCP);
	assert_int_equal(wn_sock_connect(&f->sock, a, 3, NULL, on_connect), 0);
	run_until(f, &f->connects, 1);
	assert_int_equal(f->connect_status, 0);
	assert_true(f->sock.connected);
	run_until(f, &f->accepted, 1);
	/* A second connect on a connected socket is refused. */
	assert_int_equal(wn_sock_connect(&f->sock, a, 3, NULL, on_connect),
	                 WN_EINVAL);
	sock_close(f, false);
	assert_int_equal(f->connects, 1);
	fx_free(f);
}

/* Every address failing reports the refusal, once. */
static void t_all_refused(void **state)
{
	struct fx *f = fx_new();
	struct sockaddr_storage a[2];

	addr(&a[0], "127.0.0.1", closed_port(f));
	addr(&a[1], "127.0.0.1", closed_port(f));
	sock_init(f, WN_SOCK_TCP);
	assert_int_equal(wn_sock_connect(&f->sock, a, 2, NULL, on_connect), 0);
	run_until(f, &f->connects, 1);
	assert_int_equal(f->connect_status, WN_ECONNREFUSED);
	assert_false(f->sock.connected);
	sock_close(f, true);
	fx_free(f);
}

/* No usable target: refused without a callback. */
static void t_connect_einval(void **state)
{
	struct fx *f = fx_new();
	char longpath[200];

	sock_init(f, WN_SOCK_TCP);
	assert_int_equal(wn_sock_connect(&f->sock, NULL, 0, NULL, on_connect),
	                 WN_EINVAL);
	sock_close(f, false);
	f->closes = 0;
	sock_init(f, WN_SOCK_PIPE);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(
	    wn_sock_connect(&f->sock, NULL, 0, longpath, on_connect),
	    WN_EINVAL);
	assert_int_equal(wn_sock_connect(&f->sock, NULL, 0, "", on_connect),
	                 WN_EINVAL);
	sock_close(f, false);
	assert_int_equal(f->connects, 0);
	fx_free(f);
}

/* A unix socket that does not exist is a failed connect, not a crash. */
static void t_pipe_missing(void **state)
{
	struct fx *f = fx_new();

	sock_init(f, WN_SOCK_PIPE);
	assert_int_equal(wn_sock_connect(&f->sock, NULL, 0,
	                                 "/nonexistent/wn-sock-test",
	                                 on_connect),
	                 0);
	run_until(f, &f->connects, 1);
	assert_int_equal(f->connect_status, WN_ENOENT);
	sock_close(f, false);
	fx_free(f);
}

/* Closing while addresses are still being tried ends it: no connect
 * callback, one close callback, whether the close comes while a connect
 * is in flight or while the socket is being renewed for the next one. */
static void t_close_while_connecting(void **state)
{
	for (int when = 0; when < 3; when++) {
		struct fx *f = fx_new();
		struct sockaddr_storage a[3];

		fx_listen(f);
		addr(&a[0], "127.0.0.1", closed_port(f));
		addr(&a[1], "127.0.0.1", closed_port(f));
		addr(&a[2], "127.0.0.1", f->port);
		sock_init(f, WN_SOCK_TCP);
		assert_int_equal(
		    wn_sock_connect(&f->sock, a, 3, NULL, on_connect), 0);
		for (int i = 0; i < when; i++)
			uv_run(wn_loop_uv(&f->loop), UV_RUN_ONCE);
		wn_sock_close(&f->sock, true);
		for (int i = 0; i < 20; i++)
			uv_run(wn_loop_uv(&f->loop), UV_RUN_NOWAIT);
		assert_int_equal(f->closes, 1);
		assert_int_equal(f->connects, 0);
		/* Closing again does nothing. */
		wn_sock_close(&f->sock, true);
		uv_run(wn_loop_uv(&f->loop), UV_RUN_NOWAIT);
		assert_int_equal(f->closes, 1);
		fx_free(f);
	}
}

/* Handshake reads take at most what they ask for and stop after each. */
static void t_read_some(void **state)
{
	struct fx *f = fx_new();
	struct sockaddr_storage a;
	uv_buf_t b = uv_buf_init("abcdef", 6);

	fx_listen(f);
	addr(&a, "127.0.0.1", f->port);
	sock_init(f, WN_SOCK_TCP);
	/* Not connected: no reading yet. */
	assert_int_equal(wn_sock_read_some(&f->sock, f->rbuf, 2, on_read),
	                 WN_EINVAL);
	assert_int_equal(wn_sock_connect(&f->sock, &a, 1, NULL, on_connect), 0);
	run_until(f, &f->connects, 1);
	run_until(f, &f->accepted, 1);
	assert_int_equal(uv_try_write((uv_stream_t *)&f->peer, &b, 1), 6);
	assert_int_equal(wn_sock_read_some(&f->sock, f->rbuf, 2, on_read), 0);
	/* One read at a time. */
	assert_int_equal(wn_sock_read_some(&f->sock, f->rbuf, 2, on_read),
	                 WN_EINVAL);
	run_until(f, &f->reads, 1);
	assert_int_equal(f->read_n, 2);
	assert_memory_equal(f->rbuf, "ab", 2);
	assert_false(f->sock.reading);
	/* The rest waited in the socket. */
	assert_int_equal(wn_sock_read_some(&f->sock, f->rbuf, 4, on_read), 0);
	run_until(f, &f->reads, 2);
	assert_int_equal(f->read_n, 4);
	assert_memory_equal(f->rbuf, "cdef", 4);
	/* The reply goes out whole. */
	assert_int_equal(wn_sock_write_now(&f->sock, (const uint8_t *)"ok", 2),
	                 0);
	/* The peer's EOF is WN_ECLOSED; no pending error behind it. */
	uv_shutdown_t sreq;
	uv_shutdown(&sreq, (uv_stream_t *)&f->peer, NULL);
	assert_int_equal(wn_sock_read_some(&f->sock, f->rbuf, 4, on_read), 0);
	run_until(f, &f->reads, 3);
	assert_int_equal(f->read_n, WN_ECLOSED);
	assert_int_equal(wn_sock_pending_error(&f->sock), 0);
	sock_close(f, false);
	fx_free(f);
}

/* Closing with rst makes the peer see a reset, without it an EOF. */
static void t_close_rst(void **state)
{
	for (int rst = 0; rst < 2; rst++) {
		struct fx *f = fx_new();
		struct sockaddr_storage a;
		char text[64];

		fx_listen(f);
		addr(&a, "127.0.0.1", f->port);
		sock_init(f, WN_SOCK_TCP);
		assert_int_equal(
		    wn_sock_connect(&f->sock, &a, 1, NULL, on_connect), 0);
		run_until(f, &f->connects, 1);
		run_until(f, &f->accepted, 1);
		wn_sock_peer_text(&f->sock, text, sizeof(text));
		assert_int_equal(strncmp(text, "127.0.0.1:", 10), 0);
		sock_close(f, rst);
		for (int i = 0; i < 200 && !f->peer_status; i++)
			uv_run(wn_loop_uv(&f->loop), UV_RUN_ONCE);
		assert_int_equal(f->peer_status, rst ? UV_ECONNRESET : UV_EOF);
		fx_free(f);
	}
}

/* An accept callback that cannot serve a connection refuses it: the
 * client sees it closed, and the listener goes on accepting (libuv stops
 * polling a listener whose callback left a connection pending). */
static void t_refuse_keeps_listening(void **state)
{
	struct fx *f = fx_new();
	struct sockaddr_in sin;
	int fds[3];
	char b[8];

	(void)state;
	fx_listen(f);
	f->refuse = 2;
	uv_ip4_addr("127.0.0.1", f->port, &sin);
	for (int i = 0; i < 3; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(
		    connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	/* Polled, not run once: a listener that stopped would block. */
	for (int i = 0; i < 2000 && f->accepted < 1; i++) {
		uv_run(wn_loop_uv(&f->loop), UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(f->accepted, 1);
	assert_int_equal(f->refuse, 0);
	for (int i = 0; i < 2; i++) {
		assert_true(recv(fds[i], b, sizeof(b), 0) <= 0);
		close(fds[i]);
	}
	close(fds[2]);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_next_address),
	    cmocka_unit_test(t_all_refused),
	    cmocka_unit_test(t_connect_einval),
	    cmocka_unit_test(t_pipe_missing),
	    cmocka_unit_test(t_close_while_connecting),
	    cmocka_unit_test(t_read_some),
	    cmocka_unit_test(t_close_rst),
	    cmocka_unit_test(t_refuse_keeps_listening),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
