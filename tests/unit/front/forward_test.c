/* Tests for the forward front end, end to end in one process:
 *
 *   test clients -> forward -> pipetunnel -> dialer -> target servers
 *
 * over real loopback TCP and unix sockets. Every byte is verified (each
 * connection has its own seeded stream); memory bounds are checked against
 * the pipetunnel's limits while a target refuses to read; resets, closes
 * and a lost session must end every connection promptly, and ASan must
 * find nothing (wn_rig_finish returning 0: no handle left open). */
#include <netdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/rig.h"
#include "util/err.h"

#define WINDOW (64 * 1024)
#define SENDBUF (32 * 1024)

static const struct wn_pipetunnel_opts small = {
    .send_limit = SENDBUF, .recv_window = WINDOW, .chunk = 8192};

struct many {
	struct wn_np_client *c;
	int n;
};

static bool all_closed(void *arg)
{
	struct many *m = arg;
	int i;

	for (i = 0; i < m->n; i++)
		if (!m->c[i].closed)
			return false;
	return true;
}

static bool one_closed(void *arg)
{
	return ((struct wn_np_client *)arg)->closed;
}

static bool server_done(void *arg)
{
	struct wn_np_server *s = arg;

	return s->accepted > 0 && s->finished == s->accepted;
}

static void echo_client(struct wn_np_client *c, uint32_t seed, uint64_t len)
{
	memset(c, 0, sizeof(*c));
	c->seed = seed;
	c->send_len = len;
	c->shut_after_send = true;
	c->expect = WN_NP_EXPECT_ECHO;
}

static char *tcp_target(char *buf, size_t cap, const char *ip, uint16_t port)
{
	snprintf(buf, cap, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, port);
	return buf;
}

/* One connection, megabytes each way, through everything. */
static void t_bulk_echo(void **state)
{
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client c;
	struct wn_forward *f;
	struct sockaddr_storage ss;
	char tgt[64];

	wn_rig_init(&r, &small, -1);
	assert_int_equal(
	    wn_np_server_tcp(&srv, &r.loop, "127.0.0.1", WN_NP_ECHO), 0);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "127.0.0.1:0",
	                   tcp_target(tgt, sizeof(tgt), "127.0.0.1", srv.port),
	                   NULL);
	wn_rig_forward_addr(f, &ss);
	echo_client(&c, 0xb01c, 8 * 1024 * 1024 + 3);
	assert_int_equal(wn_np_client_tcp(&c, &r.loop, (struct sockaddr *)&ss),
	                 0);
	assert_true(wn_np_run_until(&r.loop, one_closed, &c, 60000));
	assert_true(wn_np_client_ok(&c));
	assert_int_equal(wn_forward_relays(f)->totals.up_bytes, c.send_len);
	assert_int_equal(wn_forward_relays(f)->totals.down_bytes, c.send_len);
	assert_int_equal(wn_forward_relays(f)->totals.errs[WN_STREAM_OK], 1);
	assert_int_equal(wn_dialer_relays(r.dialer)->totals.errs[WN_STREAM_OK],
	                 1);
	assert_true(wn_pipetunnel_stats(r.pt)->max_unconsumed <= WINDOW);
	assert_true(wn_pipetunnel_stats(r.pt)->max_sendq <= SENDBUF);
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* IPv6 at both ends. */
static void t_ipv6(void **state)
{
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client c;
	struct wn_forward *f;
	struct sockaddr_storage ss;
	char tgt[64];

	wn_rig_init(&r, &small, -1);
	if (wn_np_server_tcp(&srv, &r.loop, "::1", WN_NP_ECHO) != 0) {
		wn_np_server_close(&srv);
		assert_int_equal(wn_rig_finish(&r), 0);
		skip(); /* no IPv6 loopback here */
	}
	wn_rig_allow(&r, "[::1/128]:*");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "[::1]:0",
	                   tcp_target(tgt, sizeof(tgt), "::1", srv.port), NULL);
	wn_rig_forward_addr(f, &ss);
	assert_int_equal(ss.ss_family, AF_INET6);
	echo_client(&c, 0x6, 1024 * 1024);
	assert_int_equal(wn_np_client_tcp(&c, &r.loop, (struct sockaddr *)&ss),
	                 0);
	assert_true(wn_np_run_until(&r.loop, one_closed, &c, 20000));
	assert_true(wn_np_client_ok(&c));
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* A hundred connections at once, each its own stream, each verified. */
static void t_hundred_concurrent(void **state)
{
	enum { N = 100 };
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client *c = calloc(N, sizeof(*c));
	struct many m = {c, N};
	struct wn_forward *f;
	struct sockaddr_storage ss;
	char tgt[64];
	int i;

	assert_non_null(c);
	wn_rig_init(&r, &small, -1);
	assert_int_equal(
	    wn_np_server_tcp(&srv, &r.loop, "127.0.0.1", WN_NP_ECHO), 0);
	wn_rig_allow(&r, "127.0.0.0/8:1-65535");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "127.0.0.1:0",
	                   tcp_target(tgt, sizeof(tgt), "127.0.0.1", srv.port),
	                   NULL);
	wn_rig_forward_addr(f, &ss);
	for (i = 0; i < N; i++) {
		echo_client(&c[i], 1000 + (uint32_t)i,
		            100 * 1000 + (uint64_t)i * 1111);
		assert_int_equal(
		    wn_np_client_tcp(&c[i], &r.loop, (struct sockaddr *)&ss),
		    0);
	}
	assert_true(wn_np_run_until(&r.loop, all_closed, &m, 60000));
	for (i = 0; i < N; i++)
		assert_true(wn_np_client_ok(&c[i]));
	assert_int_equal(wn_forward_relays(f)->totals.opened, N);
	assert_int_equal(wn_forward_relays(f)->totals.errs[WN_STREAM_OK], N);
	assert_int_equal(wn_forward_relays(f)->live, 0);
	assert_int_equal(srv.accepted, N);
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
	free(c);
}

/* Unix sockets at both ends: forward listens on one, target on another
 * (allowed by a directory rule). */
static void t_unix_both_ends(void **state)
{
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client c;
	char lpath[128], tpath[128], listen[160], tgt[160], rule[160];
	struct stat st;

	wn_rig_init(&r, &small, -1);
	wn_rig_path(&r, "target.sock", tpath, sizeof(tpath));
	wn_rig_path(&r, "listen.sock", lpath, sizeof(lpath));
	assert_int_equal(wn_np_server_unix(&srv, &r.loop, tpath, WN_NP_ECHO),
	                 0);
	snprintf(rule, sizeof(rule), "unix:%s/*", r.dir);
	wn_rig_allow(&r, rule);
	wn_rig_dialer(&r, NULL);
	snprintf(listen, sizeof(listen), "unix:%s", lpath);
	snprintf(tgt, sizeof(tgt), "unix:%s", tpath);
	wn_rig_forward(&r, listen, tgt, NULL);
	echo_client(&c, 0x0415, 3 * 1024 * 1024 + 1);
	assert_int_equal(wn_np_client_unix(&c, &r.loop, lpath), 0);
	assert_true(wn_np_run_until(&r.loop, one_closed, &c, 30000));
	assert_true(wn_np_client_ok(&c));
	wn_np_server_close(&srv);
	assert_int_equal(lstat(lpath, &st), 0);
	assert_int_equal(wn_rig_finish(&r), 0);
	/* The forward removed its socket file. */
	assert_int_equal(lstat(lpath, &st), -1);
}

/* Half-close both ways: the target speaks first and ends its side while
 * the client is still sending; the client ends its side later and the
 * target still reads everything. */
static void t_half_close_both_ways(void **state)
{
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client c;
	struct wn_forward *f;
	struct sockaddr_storage ss;
	char tgt[64];

	wn_rig_init(&r, &small, -1);
	srv.greet_seed = 0x93ee7;
	srv.greet_len = 1024 * 1024 + 9;
	assert_int_equal(
	    wn_np_server_tcp(&srv, &r.loop, "127.0.0.1", WN_NP_GREET), 0);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "127.0.0.1:0",
	                   tcp_target(tgt, sizeof(tgt), "127.0.0.1", srv.port),
	                   NULL);
	wn_rig_forward_addr(f, &ss);
	memset(&c, 0, sizeof(c));
	c.seed = 0xabc;
	c.send_len = 4 * 1024 * 1024;
	c.shut_after_send = true;
	c.expect = WN_NP_EXPECT_STREAM;
	c.expect_seed = srv.greet_seed;
	c.expect_len = srv.greet_len;
	assert_int_equal(wn_np_client_tcp(&c, &r.loop, (struct sockaddr *)&ss),
	                 0);
	assert_true(wn_np_run_until(&r.loop, one_closed, &c, 30000));
	assert_true(wn_np_client_ok(&c));
	/* The client is done once its FIN is out; the target reads on. */
	assert_true(wn_np_run_until(&r.loop, server_done, &srv, 30000));
	assert_int_equal(srv.bytes_in, c.send_len);
	assert_int_equal(srv.mismatches, 0);
	assert_int_equal(srv.eofs, 1);
	assert_int_equal(wn_forward_relays(f)->totals.errs[WN_STREAM_OK], 1);
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* A target that does not read: buffers stay within their limits and the
 * client's writes stall, then everything arrives once it reads. */
static void t_slow_target_bounded(void **state)
{
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client c;
	struct wn_forward *f;
	struct sockaddr_storage ss;
	const struct wn_relay_set *ds, *fs;
	const struct wn_pipetunnel_stats *ps;
	char tgt[64];
	uint64_t sent;

	wn_rig_init(&r, &small, -1);
	srv.stalled = true;
	assert_int_equal(
	    wn_np_server_tcp(&srv, &r.loop, "127.0.0.1", WN_NP_SINK), 0);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "127.0.0.1:0",
	                   tcp_target(tgt, sizeof(tgt), "127.0.0.1", srv.port),
	                   NULL);
	wn_rig_forward_addr(f, &ss);
	memset(&c, 0, sizeof(c));
	c.seed = 0x510;
	c.send_len = 64 * 1024 * 1024;
	c.shut_after_send = true;
	c.expect = WN_NP_EXPECT_NOTHING;
	assert_int_equal(wn_np_client_tcp(&c, &r.loop, (struct sockaddr *)&ss),
	                 0);
	wn_np_run_for(&r.loop, 800);
	sent = c.sent;
	wn_np_run_for(&r.loop, 200);
	ds = wn_dialer_relays(r.dialer);
	fs = wn_forward_relays(f);
	ps = wn_pipetunnel_stats(r.pt);
	/* Stalled: kernel buffers hold a few MB, nothing else grows. */
	assert_int_equal(c.sent, sent);
	assert_true(c.sent < c.send_len);
	assert_true(ds->totals.out_max <= WINDOW);
	assert_true(fs->totals.out_max == 0); /* nothing comes back */
	assert_true(ps->max_unconsumed <= WINDOW);
	assert_true(ps->max_sendq <= SENDBUF);
	wn_np_server_resume(&srv);
	assert_true(wn_np_run_until(&r.loop, one_closed, &c, 60000));
	assert_true(wn_np_client_ok(&c));
	assert_int_equal(srv.bytes_in, c.send_len);
	assert_int_equal(srv.mismatches, 0);
	assert_true(ds->totals.out_max <= WINDOW);
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* A forward to a target the server does not allow: its connection is
 * reset promptly; connections of another forward carry on untouched. */
static void t_denied_target_others_unaffected(void **state)
{
	enum { N = 5 };
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client c[N], bad;
	struct many m = {c, N};
	struct wn_forward *ok, *no;
	struct sockaddr_storage ss_ok, ss_no;
	char tgt[64];
	int i;

	wn_rig_init(&r, &small, -1);
	assert_int_equal(
	    wn_np_server_tcp(&srv, &r.loop, "127.0.0.1", WN_NP_ECHO), 0);
	snprintf(tgt, sizeof(tgt), "127.0.0.1:%u", srv.port);
	wn_rig_allow(&r, tgt);
	wn_rig_dialer(&r, NULL);
	ok = wn_rig_forward(&r, "127.0.0.1:0", tgt, NULL);
	no = wn_rig_forward(&r, "127.0.0.1:0", "10.1.2.3:80", NULL);
	wn_rig_forward_addr(ok, &ss_ok);
	wn_rig_forward_addr(no, &ss_no);
	for (i = 0; i < N; i++) {
		echo_client(&c[i], 77 + (uint32_t)i, 2 * 1024 * 1024);
		assert_int_equal(
		    wn_np_client_tcp(&c[i], &r.loop, (struct sockaddr *)&ss_ok),
		    0);
	}
	wn_np_run_for(&r.loop, 20);
	echo_client(&bad, 99, 1024 * 1024);
	assert_int_equal(
	    wn_np_client_tcp(&bad, &r.loop, (struct sockaddr *)&ss_no), 0);
	assert_true(wn_np_run_until(&r.loop, one_closed, &bad, 2000));
	assert_true(wn_np_client_was_reset(&bad));
	assert_true(bad.end_ms - bad.start_ms < 1000);
	assert_true(wn_np_run_until(&r.loop, all_closed, &m, 60000));
	for (i = 0; i < N; i++)
		assert_true(wn_np_client_ok(&c[i]));
	assert_int_equal(wn_dialer_get_stats(r.dialer)->denied, 1);
	assert_int_equal(wn_forward_relays(no)->totals.errs[WN_STREAM_DENIED],
	                 1);
	assert_int_equal(wn_forward_relays(ok)->totals.errs[WN_STREAM_OK], N);
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* A target port nobody listens on: the connection is reset and the reason
 * reaches the client side. */
static void t_refused_port(void **state)
{
	struct wn_rig r;
	struct wn_np_server gone = {0};
	struct wn_np_client c;
	struct wn_forward *f;
	struct sockaddr_storage ss;
	char tgt[64];

	wn_rig_init(&r, &small, -1);
	assert_int_equal(
	    wn_np_server_tcp(&gone, &r.loop, "127.0.0.1", WN_NP_SINK), 0);
	tcp_target(tgt, sizeof(tgt), "127.0.0.1", gone.port);
	wn_np_server_close(&gone);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "127.0.0.1:0", tgt, NULL);
	wn_rig_forward_addr(f, &ss);
	echo_client(&c, 5, 1000);
	assert_int_equal(wn_np_client_tcp(&c, &r.loop, (struct sockaddr *)&ss),
	                 0);
	assert_true(wn_np_run_until(&r.loop, one_closed, &c, 5000));
	assert_true(wn_np_client_was_reset(&c));
	assert_int_equal(wn_forward_relays(f)->totals.errs[WN_STREAM_REFUSED],
	                 1);
	assert_int_equal(
	    wn_dialer_relays(r.dialer)->totals.errs[WN_STREAM_REFUSED], 1);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* The tunnel takes no more streams: the extra connection is reset, the
 * others carry on. */
static void t_no_stream_for_connection(void **state)
{
	struct wn_pipetunnel_opts po = small;
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client first, extra;
	struct wn_forward *f;
	struct sockaddr_storage ss;
	char tgt[64];

	po.max_streams = 1;
	wn_rig_init(&r, &po, -1);
	srv.stalled = true;
	assert_int_equal(
	    wn_np_server_tcp(&srv, &r.loop, "127.0.0.1", WN_NP_ECHO), 0);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "127.0.0.1:0",
	                   tcp_target(tgt, sizeof(tgt), "127.0.0.1", srv.port),
	                   NULL);
	wn_rig_forward_addr(f, &ss);
	echo_client(&first, 1, 100 * 1000);
	assert_int_equal(
	    wn_np_client_tcp(&first, &r.loop, (struct sockaddr *)&ss), 0);
	wn_np_run_for(&r.loop, 100);
	echo_client(&extra, 2, 100 * 1000);
	assert_int_equal(
	    wn_np_client_tcp(&extra, &r.loop, (struct sockaddr *)&ss), 0);
	assert_true(wn_np_run_until(&r.loop, one_closed, &extra, 2000));
	assert_true(wn_np_client_was_reset(&extra));
	assert_int_equal(wn_forward_relays(f)->totals.open_failures, 1);
	assert_false(first.closed);
	wn_np_server_resume(&srv);
	assert_true(wn_np_run_until(&r.loop, one_closed, &first, 10000));
	assert_true(wn_np_client_ok(&first));
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* Closing a forward resets its live connections (and their targets). */
static void t_close_with_live_connections(void **state)
{
	enum { N = 3 };
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client c[N];
	struct many m = {c, N};
	struct wn_forward *f;
	struct sockaddr_storage ss;
	char tgt[64];
	int i;

	wn_rig_init(&r, &small, -1);
	srv.stalled = true;
	assert_int_equal(
	    wn_np_server_tcp(&srv, &r.loop, "127.0.0.1", WN_NP_ECHO), 0);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "127.0.0.1:0",
	                   tcp_target(tgt, sizeof(tgt), "127.0.0.1", srv.port),
	                   NULL);
	wn_rig_forward_addr(f, &ss);
	for (i = 0; i < N; i++) {
		echo_client(&c[i], 10 + (uint32_t)i, 16 * 1024 * 1024);
		assert_int_equal(
		    wn_np_client_tcp(&c[i], &r.loop, (struct sockaddr *)&ss),
		    0);
	}
	wn_np_run_for(&r.loop, 200);
	assert_int_equal(wn_forward_relays(f)->live, N);
	assert_int_equal(srv.accepted, N);
	wn_forward_close(f);
	r.nfwd = 0;
	assert_true(wn_np_run_until(&r.loop, all_closed, &m, 2000));
	for (i = 0; i < N; i++)
		assert_true(wn_np_client_was_reset(&c[i]));
	/* The target side heard of it too. */
	wn_np_server_resume(&srv);
	wn_np_run_for(&r.loop, 100);
	assert_int_equal(
	    wn_dialer_relays(r.dialer)->totals.errs[WN_STREAM_ABORTED], N);
	assert_int_equal(srv.finished, N);
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* The session is lost: every connection on both sides is reset. */
static void t_session_lost(void **state)
{
	enum { N = 4 };
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client c[N];
	struct many m = {c, N};
	struct wn_forward *f;
	struct sockaddr_storage ss;
	char tgt[64];
	int i;

	wn_rig_init(&r, &small, -1);
	assert_int_equal(
	    wn_np_server_tcp(&srv, &r.loop, "127.0.0.1", WN_NP_ECHO), 0);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "127.0.0.1:0",
	                   tcp_target(tgt, sizeof(tgt), "127.0.0.1", srv.port),
	                   NULL);
	wn_rig_forward_addr(f, &ss);
	for (i = 0; i < N; i++) {
		echo_client(&c[i], 20 + (uint32_t)i, 64 * 1024 * 1024);
		assert_int_equal(
		    wn_np_client_tcp(&c[i], &r.loop, (struct sockaddr *)&ss),
		    0);
	}
	wn_np_run_for(&r.loop, 200);
	wn_pipetunnel_lose(r.pt);
	assert_true(wn_np_run_until(&r.loop, all_closed, &m, 2000));
	for (i = 0; i < N; i++)
		assert_true(wn_np_client_was_reset(&c[i]));
	wn_np_run_for(&r.loop, 100);
	assert_int_equal(srv.finished, N);
	assert_int_equal(
	    wn_forward_relays(f)->totals.errs[WN_STREAM_SESSION_LOST], N);
	assert_int_equal(
	    wn_dialer_relays(r.dialer)->totals.errs[WN_STREAM_SESSION_LOST], N);
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* Streams opened while the tunnel is down wait, data and all. */
static void t_tunnel_down_then_up(void **state)
{
	struct wn_pipetunnel_opts po = small;
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client c;
	struct wn_forward *f;
	struct sockaddr_storage ss;
	char tgt[64];

	po.down = true;
	wn_rig_init(&r, &po, -1);
	assert_int_equal(
	    wn_np_server_tcp(&srv, &r.loop, "127.0.0.1", WN_NP_ECHO), 0);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "127.0.0.1:0",
	                   tcp_target(tgt, sizeof(tgt), "127.0.0.1", srv.port),
	                   NULL);
	wn_rig_forward_addr(f, &ss);
	echo_client(&c, 0xd0, 1024 * 1024);
	assert_int_equal(wn_np_client_tcp(&c, &r.loop, (struct sockaddr *)&ss),
	                 0);
	wn_np_run_for(&r.loop, 200);
	assert_int_equal(srv.accepted, 0);
	assert_true(c.sent > 0);
	wn_pipetunnel_set_up(r.pt, true);
	assert_true(wn_np_run_until(&r.loop, one_closed, &c, 20000));
	assert_true(wn_np_client_ok(&c));
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* Resets from either application reach the other. */
static void t_resets_propagate(void **state)
{
	struct wn_rig r;
	struct wn_np_server sink = {0}, rst = {0};
	struct wn_np_client a, b;
	struct wn_forward *fa, *fb;
	struct sockaddr_storage sa, sb;
	char tgt[64];

	wn_rig_init(&r, &small, -1);
	assert_int_equal(
	    wn_np_server_tcp(&sink, &r.loop, "127.0.0.1", WN_NP_SINK), 0);
	rst.reset_after = 300 * 1000;
	assert_int_equal(
	    wn_np_server_tcp(&rst, &r.loop, "127.0.0.1", WN_NP_RESET), 0);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	fa = wn_rig_forward(
	    &r, "127.0.0.1:0",
	    tcp_target(tgt, sizeof(tgt), "127.0.0.1", sink.port), NULL);
	fb = wn_rig_forward(&r, "127.0.0.1:0",
	                    tcp_target(tgt, sizeof(tgt), "127.0.0.1", rst.port),
	                    NULL);
	wn_rig_forward_addr(fa, &sa);
	wn_rig_forward_addr(fb, &sb);
	/* a: the client application resets mid-transfer. */
	memset(&a, 0, sizeof(a));
	a.seed = 1;
	a.send_len = 64 * 1024 * 1024;
	a.expect = WN_NP_EXPECT_NOTHING;
	assert_int_equal(wn_np_client_tcp(&a, &r.loop, (struct sockaddr *)&sa),
	                 0);
	/* b: the target resets mid-transfer. */
	memset(&b, 0, sizeof(b));
	b.seed = 2;
	b.send_len = 64 * 1024 * 1024;
	b.expect = WN_NP_EXPECT_NOTHING;
	assert_int_equal(wn_np_client_tcp(&b, &r.loop, (struct sockaddr *)&sb),
	                 0);
	wn_np_run_for(&r.loop, 200);
	wn_np_client_reset(&a);
	assert_true(wn_np_run_until(&r.loop, one_closed, &b, 5000));
	assert_true(wn_np_client_was_reset(&b));
	wn_np_run_for(&r.loop, 200);
	assert_int_equal(sink.resets, 1);
	assert_int_equal(sink.mismatches, 0);
	assert_int_equal(wn_forward_relays(fa)->totals.errs[WN_STREAM_ABORTED],
	                 1);
	assert_int_equal(
	    wn_forward_relays(fb)->totals.errs[WN_STREAM_TARGET_RESET], 1);
	wn_np_server_close(&sink);
	wn_np_server_close(&rst);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* Unix listen paths: a stale socket file is replaced, a live socket or a
 * regular file is not. */
static void t_unix_listen_path(void **state)
{
	struct wn_rig r;
	struct wn_np_server live = {0};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	char stale[128], file[128], busy[128], l[160];
	int fd, err;
	FILE *fp;

	wn_rig_init(&r, &small, -1);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	/* A socket file nobody listens on. */
	wn_rig_path(&r, "stale.sock", stale, sizeof(stale));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(sun.sun_path, stale, strlen(stale) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	snprintf(l, sizeof(l), "unix:%s", stale);
	assert_non_null(wn_rig_forward(&r, l, "127.0.0.1:9", &err));
	/* A regular file. */
	wn_rig_path(&r, "file", file, sizeof(file));
	fp = fopen(file, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(l, sizeof(l), "unix:%s", file);
	assert_null(wn_rig_forward(&r, l, "127.0.0.1:9", &err));
	assert_int_equal(err, WN_EEXIST);
	/* A live socket. */
	wn_rig_path(&r, "busy.sock", busy, sizeof(busy));
	assert_int_equal(wn_np_server_unix(&live, &r.loop, busy, WN_NP_SINK),
	                 0);
	snprintf(l, sizeof(l), "unix:%s", busy);
	assert_null(wn_rig_forward(&r, l, "127.0.0.1:9", &err));
	assert_int_equal(err, WN_EADDRINUSE);
	wn_np_server_close(&live);
	assert_int_equal(wn_rig_finish(&r), 0);
	assert_int_equal(access(file, F_OK), -1); /* the rig's dir is gone */
}

/* A name is resolved and every address it has is served, on one port: on
 * Debian's default /etc/hosts "localhost" is 127.0.0.1 and ::1, and a
 * forward on localhost:0 once bound a different ephemeral port on each.
 * What this host's resolver says localhost is, the test asks it too, so it
 * holds with either hosts file (scripts/fresh-check.sh runs it on Debian's
 * default one). */
static void t_listen_by_name(void **state)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	struct wn_rig r;
	struct wn_np_server srv = {0};
	struct wn_np_client c;
	struct wn_forward *f;
	struct sockaddr_storage ss;
	char tgt[64], ip[INET6_ADDRSTRLEN], l[80];
	int err, port, n = 0;

	wn_rig_init(&r, &small, -1);
	assert_int_equal(
	    wn_np_server_tcp(&srv, &r.loop, "127.0.0.1", WN_NP_ECHO), 0);
	wn_rig_allow(&r, "127.0.0.1:*");
	wn_rig_dialer(&r, NULL);
	f = wn_rig_forward(&r, "localhost:0",
	                   tcp_target(tgt, sizeof(tgt), "127.0.0.1", srv.port),
	                   &err);
	assert_non_null(f);
	wn_rig_forward_addr(f, &ss);
	port = ntohs(ss.ss_family == AF_INET
	                 ? ((struct sockaddr_in *)&ss)->sin_port
	                 : ((struct sockaddr_in6 *)&ss)->sin6_port);
	assert_int_equal(getaddrinfo("localhost", NULL, &hints, &res), 0);
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)ai->ai_addr)->sin_port =
			    htons(port);
		else if (ai->ai_family == AF_INET6)
			((struct sockaddr_in6 *)ai->ai_addr)->sin6_port =
			    htons(port);
		else
			continue;
		/* That address, on the one port, reaches the target... */
		echo_client(&c, 3 + n++, 100 * 1000);
		assert_int_equal(wn_np_client_tcp(&c, &r.loop, ai->ai_addr), 0);
		assert_true(wn_np_run_until(&r.loop, one_closed, &c, 5000));
		assert_true(wn_np_client_ok(&c));
		/* ...and is taken: a second forward there fails. */
		getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof(ip), NULL,
		            0, NI_NUMERICHOST);
		snprintf(l, sizeof(l), strchr(ip, ':') ? "[%s]:%d" : "%s:%d",
		         ip, port);
		assert_null(wn_rig_forward(&r, l, tgt, &err));
		assert_int_equal(err, WN_EADDRINUSE);
	}
	freeaddrinfo(res);
	assert_true(n > 0);
	wn_np_server_close(&srv);
	assert_int_equal(wn_rig_finish(&r), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_bulk_echo),
	    cmocka_unit_test(t_ipv6),
	    cmocka_unit_test(t_hundred_concurrent),
	    cmocka_unit_test(t_unix_both_ends),
	    cmocka_unit_test(t_half_close_both_ways),
	    cmocka_unit_test(t_slow_target_bounded),
	    cmocka_unit_test(t_denied_target_others_unaffected),
	    cmocka_unit_test(t_refused_port),
	    cmocka_unit_test(t_no_stream_for_connection),
	    cmocka_unit_test(t_close_with_live_connections),
	    cmocka_unit_test(t_session_lost),
	    cmocka_unit_test(t_tunnel_down_then_up),
	    cmocka_unit_test(t_resets_propagate),
	    cmocka_unit_test(t_unix_listen_path),
	    cmocka_unit_test(t_listen_by_name),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("WN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("WN_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
