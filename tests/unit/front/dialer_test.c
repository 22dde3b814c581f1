/* Tests for the dialer: the target policy (fixed target, default deny, IP,
 * unix and name rules, names allowed by name or only by the addresses they
 * resolve to), connect failures and timeouts, the log line of a denial,
 * and closing with lookups in flight.
 *
 * The client's application is a scripted stream (struct wn_np_stream)
 * opened straight on the pipetunnel, so each test chooses the exact target
 * the server receives, including none (the default target). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/rig.h"
#include "util/err.h"

struct app {
	struct wn_rig r;
	struct wn_np_server srv;
	bool srv_on;
	struct wn_np_stream st;
	int log_fd;
};

static void app_init(struct app *a, const char *const *rules, bool capture_log)
{
	memset(a, 0, sizeof(*a));
	a->log_fd = -1;
	if (capture_log) {
		FILE *fp = tmpfile();

		assert_non_null(fp);
		a->log_fd = dup(fileno(fp));
		fclose(fp);
	}
	wn_rig_init(&a->r, NULL, a->log_fd);
	if (capture_log)
		a->r.log.level = WN_LOG_INFO;
	for (; rules && *rules; rules++)
		wn_rig_allow(&a->r, *rules);
}

static void app_target(struct app *a, enum wn_np_mode mode)
{
	assert_int_equal(
	    wn_np_server_tcp(&a->srv, &a->r.loop, "127.0.0.1", mode), 0);
	a->srv_on = true;
}

/* Open a stream to target (NULL: the default target) that sends len bytes
 * and a FIN, expecting them back (against an echo target). */
static void app_open(struct app *a, const char *target, uint64_t len)
{
	struct wn_endpoint ep;
	const char *why;
	struct wn_stream_handler h;

	if (target)
		assert_int_equal(
		    wn_endpoint_parse(target, WN_SCHEME_TCP | WN_SCHEME_UNIX,
		                      WN_SCHEME_TCP, 0, &ep, &why),
		    0);
	a->st.seed = a->st.expect_seed = 0xd1a1;
	a->st.send_len = len;
	a->st.shut_when_sent = true;
	h = wn_np_stream_handler(&a->st);
	a->st.s = wn_tunnel_open_stream(wn_pipetunnel_client(a->r.pt),
	                                target ? &ep : NULL, &h);
	assert_non_null(a->st.s);
	wn_np_stream_push(&a->st);
}

static bool stream_closed(void *arg)
{
	return ((struct app *)arg)->st.closed;
}

/* Run to the end of the stream; returns its reason. */
static int app_run(struct app *a, uint64_t timeout_ms)
{
	assert_true(wn_np_run_until(&a->r.loop, stream_closed, a, timeout_ms));
	return a->st.closed_err;
}

static void app_finish(struct app *a)
{
	if (a->srv_on)
		wn_np_server_close(&a->srv);
	assert_int_equal(wn_rig_finish(&a->r), 0);
	if (a->log_fd >= 0)
		close(a->log_fd);
}

/* Echo through the dialer and check every byte came back. */
static void expect_echo(struct app *a, const char *target)
{
	app_open(a, target, 300 * 1000);
	assert_int_equal(app_run(a, 10000), WN_STREAM_OK);
	assert_int_equal(a->st.got, a->st.send_len);
	assert_false(a->st.mismatch);
	assert_true(a->st.eof);
}

static const char *port_rule(char *buf, size_t cap, const char *host,
                             uint16_t port)
{
	snprintf(buf, cap, "%s:%u", host, port);
	return buf;
}

/* ---- fixed target ----------------------------------------------------- */

static void t_fixed_target_wins(void **state)
{
	struct app a;
	char tgt[64];

	app_init(&a, NULL, false);
	app_target(&a, WN_NP_ECHO);
	wn_rig_fixed_target(
	    &a.r, port_rule(tgt, sizeof(tgt), "127.0.0.1", a.srv.port));
	wn_rig_dialer(&a.r, NULL);
	/* Whatever the client asks for, no rule needed. */
	expect_echo(&a, "10.9.9.9:1");
	memset(&a.st, 0, sizeof(a.st));
	expect_echo(&a, NULL);
	assert_int_equal(a.srv.accepted, 2);
	app_finish(&a);
}

static void t_fixed_target_by_name(void **state)
{
	struct app a;
	char tgt[64];

	app_init(&a, NULL, false);
	app_target(&a, WN_NP_ECHO);
	wn_rig_fixed_target(
	    &a.r, port_rule(tgt, sizeof(tgt), "localhost", a.srv.port));
	wn_rig_dialer(&a.r, NULL);
	expect_echo(&a, "example.org:443");
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->resolved, 1);
	app_finish(&a);
}

static void t_no_default_target(void **state)
{
	const char *rules[] = {"*:*", NULL};
	struct app a;

	app_init(&a, rules, false);
	wn_rig_dialer(&a.r, NULL);
	app_open(&a, NULL, 100);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_DENIED);
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->denied, 1);
	app_finish(&a);
}

/* ---- addresses -------------------------------------------------------- */

static void t_ip_rules(void **state)
{
	struct app a;
	char rule[64], tgt[64];

	app_init(&a, NULL, false);
	app_target(&a, WN_NP_ECHO);
	wn_rig_allow(&a.r,
	             port_rule(rule, sizeof(rule), "127.0.0.0/8", a.srv.port));
	wn_rig_dialer(&a.r, NULL);
	expect_echo(&a, port_rule(tgt, sizeof(tgt), "127.0.0.1", a.srv.port));
	/* Another port of an allowed address, another address. */
	memset(&a.st, 0, sizeof(a.st));
	app_open(&a,
	         port_rule(tgt, sizeof(tgt), "127.0.0.1",
	                   (uint16_t)(a.srv.port + 1)),
	         100);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_DENIED);
	memset(&a.st, 0, sizeof(a.st));
	app_open(&a, port_rule(tgt, sizeof(tgt), "10.0.0.1", a.srv.port), 100);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_DENIED);
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->denied, 2);
	assert_int_equal(a.srv.accepted, 1);
	app_finish(&a);
}

/* ::ffff:a.b.c.d is the IPv4 address: an IPv6 rule does not let it
 * through, an IPv4 rule does (and it reaches the IPv4 target). */
static void t_v4_mapped(void **state)
{
	const char *rules[] = {"[::]/0:*", NULL};
	struct app a;
	char tgt[64], rule[64];

	app_init(&a, rules, false);
	app_target(&a, WN_NP_ECHO);
	wn_rig_dialer(&a.r, NULL);
	snprintf(tgt, sizeof(tgt), "[::ffff:127.0.0.1]:%u", a.srv.port);
	app_open(&a, tgt, 100);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_DENIED);
	app_finish(&a);

	app_init(&a, NULL, false);
	app_target(&a, WN_NP_ECHO);
	wn_rig_allow(&a.r,
	             port_rule(rule, sizeof(rule), "127.0.0.1", a.srv.port));
	wn_rig_dialer(&a.r, NULL);
	snprintf(tgt, sizeof(tgt), "[::ffff:127.0.0.1]:%u", a.srv.port);
	expect_echo(&a, tgt);
	app_finish(&a);
}

/* 0.0.0.0 and :: reach this host: no rule allows them. */
static void t_unspecified_denied(void **state)
{
	const char *rules[] = {"*:*", "0.0.0.0/0:*", "[::]/0:*", NULL};
	struct app a;

	app_init(&a, rules, false);
	wn_rig_dialer(&a.r, NULL);
	app_open(&a, "0.0.0.0:22", 100);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_DENIED);
	memset(&a.st, 0, sizeof(a.st));
	app_open(&a, "[::]:22", 100);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_DENIED);
	app_finish(&a);
}

/* ---- names ------------------------------------------------------------ */

/* Allowed by name: resolved and connected, whatever the address, unless
 * it is guarded (loopback here: it takes a rule naming 127.0.0.1). */
static void t_name_allowed_by_name(void **state)
{
	struct app a;
	char rule[64], tgt[64];

	app_init(&a, NULL, false);
	app_target(&a, WN_NP_ECHO);
	wn_rig_allow(&a.r,
	             port_rule(rule, sizeof(rule), "LocalHost", a.srv.port));
	wn_rig_allow(&a.r, "10.0.0.0/8:*"); /* irrelevant to a name match */
	wn_rig_allow(&a.r, "127.0.0.1:*");  /* opens the guarded address */
	wn_rig_dialer(&a.r, NULL);
	expect_echo(&a, port_rule(tgt, sizeof(tgt), "localhost", a.srv.port));
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->resolved, 1);
	app_finish(&a);
}

/* Allowed only because it resolves into an allowed block. */
static void t_name_allowed_by_address(void **state)
{
	struct app a;
	char rule[64], tgt[64];

	app_init(&a, NULL, false);
	app_target(&a, WN_NP_SINK);
	wn_rig_allow(&a.r,
	             port_rule(rule, sizeof(rule), "127.0.0.0/8", a.srv.port));
	wn_rig_dialer(&a.r, NULL);
	/* Data and FIN go out before the lookup is done: none is lost. */
	app_open(&a, port_rule(tgt, sizeof(tgt), "localhost", a.srv.port),
	         64 * 1024);
	assert_int_equal(app_run(&a, 10000), WN_STREAM_OK);
	assert_int_equal(a.srv.bytes_in, 64 * 1024);
	assert_int_equal(a.srv.mismatches, 0);
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->resolved, 1);
	app_finish(&a);
}

/* The name resolves only outside the allowed blocks: denied, after the
 * lookup, without connecting. */
static void t_name_resolves_outside(void **state)
{
	const char *rules[] = {"10.0.0.0/8:*", "[::1]:*", NULL};
	struct app a;
	char tgt[64];

	app_init(&a, rules, false);
	app_target(&a, WN_NP_ECHO);
	wn_rig_dialer(&a.r, NULL);
	app_open(&a, port_rule(tgt, sizeof(tgt), "localhost", a.srv.port), 100);
	/* localhost may resolve to ::1 here too, which is allowed; then the
	 * IPv4-only target refuses it. Either way 127.0.0.1 is not used. */
	assert_int_not_equal(app_run(&a, 5000), WN_STREAM_OK);
	assert_true(a.st.closed_err == WN_STREAM_DENIED ||
	            a.st.closed_err == WN_STREAM_REFUSED);
	assert_int_equal(a.srv.accepted, 0);
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->resolved, 1);
	app_finish(&a);
}

/* A name no rule can allow (no name rule, no address rule for the port)
 * is denied without a lookup. */
static void t_name_denied_without_lookup(void **state)
{
	const char *rules[] = {"example.org:443", "10.0.0.0/8:22", NULL};
	struct app a;

	app_init(&a, rules, false);
	wn_rig_dialer(&a.r, NULL);
	app_open(&a, "localhost:443", 100);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_DENIED);
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->resolved, 0);
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->resolve_failures, 0);
	app_finish(&a);
}

/* A name that does not resolve ends as one that resolves only to refused
 * addresses: DENIED both (the reset is no DNS oracle). */
static void t_name_does_not_resolve(void **state)
{
	const char *rules[] = {"*.invalid:*", NULL};
	struct app a;

	app_init(&a, rules, false);
	wn_rig_dialer(&a.r, NULL);
	app_open(&a, "no-such-host.invalid:80", 100);
	assert_int_equal(app_run(&a, 15000), WN_STREAM_DENIED);
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->resolve_failures, 1);
	app_finish(&a);
}

/* Allowed only by an address rule: a name that does not resolve and a
 * name that resolves outside the rules get the same reset. */
static void t_lookup_no_oracle(void **state)
{
	const char *rules[] = {"10.0.0.0/8:*", NULL};
	struct app a;
	int missing, outside;

	app_init(&a, rules, false);
	wn_rig_dialer(&a.r, NULL);
	app_open(&a, "no-such-host.invalid:80", 100);
	missing = app_run(&a, 15000);
	memset(&a.st, 0, sizeof(a.st));
	app_open(&a, "localhost:80", 100);
	outside = app_run(&a, 15000);
	assert_int_equal(missing, WN_STREAM_DENIED);
	assert_int_equal(outside, WN_STREAM_DENIED);
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->resolve_failures, 1);
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->resolved, 1);
	app_finish(&a);
}

/* Loopback through broad rules: a name rule, `*`, *:PORT and /0 reach
 * neither 127.0.0.1 as a literal nor a name resolving to it (localhost);
 * nothing connects. A rule naming the address opens it. */
static void t_broad_rules_never_reach_loopback(void **state)
{
	struct app a;
	char rule[64], tgt[64];

	app_init(&a, NULL, false);
	app_target(&a, WN_NP_ECHO);
	wn_rig_allow(&a.r,
	             port_rule(rule, sizeof(rule), "localhost", a.srv.port));
	wn_rig_allow(&a.r, port_rule(rule, sizeof(rule), "*", a.srv.port));
	wn_rig_allow(&a.r, "*:*");
	wn_rig_allow(&a.r, "0.0.0.0/0:*");
	wn_rig_allow(&a.r, "[::]/0:*");
	wn_rig_dialer(&a.r, NULL);
	app_open(&a, port_rule(tgt, sizeof(tgt), "localhost", a.srv.port), 100);
	assert_int_equal(app_run(&a, 5000), WN_STREAM_DENIED);
	memset(&a.st, 0, sizeof(a.st));
	app_open(&a, port_rule(tgt, sizeof(tgt), "127.0.0.1", a.srv.port), 100);
	assert_int_equal(app_run(&a, 5000), WN_STREAM_DENIED);
	memset(&a.st, 0, sizeof(a.st));
	app_open(&a, port_rule(tgt, sizeof(tgt), "[::1]", a.srv.port), 100);
	assert_int_equal(app_run(&a, 5000), WN_STREAM_DENIED);
	memset(&a.st, 0, sizeof(a.st));
	app_open(&a, "169.254.169.254:80", 100);
	assert_int_equal(app_run(&a, 5000), WN_STREAM_DENIED);
	assert_int_equal(a.srv.accepted, 0);
	assert_int_equal(wn_dialer_get_stats(a.r.dialer)->denied, 4);
	app_finish(&a);

	app_init(&a, NULL, false);
	app_target(&a, WN_NP_ECHO);
	wn_rig_allow(&a.r, "*:*");
	wn_rig_allow(&a.r,
	             port_rule(rule, sizeof(rule), "127.0.0.1", a.srv.port));
	wn_rig_dialer(&a.r, NULL);
	expect_echo(&a, port_rule(tgt, sizeof(tgt), "localhost", a.srv.port));
	assert_int_equal(a.srv.accepted, 1);
	app_finish(&a);
}

/* ---- unix ------------------------------------------------------------- */

static void t_unix_rules(void **state)
{
	struct app a;
	char path[128], rule[160], tgt[160];

	app_init(&a, NULL, false);
	wn_rig_path(&a.r, "t.sock", path, sizeof(path));
	assert_int_equal(wn_np_server_unix(&a.srv, &a.r.loop, path, WN_NP_ECHO),
	                 0);
	a.srv_on = true;
	snprintf(rule, sizeof(rule), "unix:%s/*", a.r.dir);
	wn_rig_allow(&a.r, rule);
	wn_rig_dialer(&a.r, NULL);
	snprintf(tgt, sizeof(tgt), "unix:%s", path);
	expect_echo(&a, tgt);
	/* Deeper, or outside the directory: denied. */
	memset(&a.st, 0, sizeof(a.st));
	snprintf(tgt, sizeof(tgt), "unix:%s/sub/t.sock", a.r.dir);
	app_open(&a, tgt, 10);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_DENIED);
	memset(&a.st, 0, sizeof(a.st));
	app_open(&a, "unix:/tmp/other.sock", 10);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_DENIED);
	/* Allowed but absent. */
	memset(&a.st, 0, sizeof(a.st));
	snprintf(tgt, sizeof(tgt), "unix:%s/absent.sock", a.r.dir);
	app_open(&a, tgt, 10);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_UNREACHABLE);
	app_finish(&a);
}

/* ---- connecting ------------------------------------------------------- */

static void t_refused(void **state)
{
	const char *rules[] = {"127.0.0.1:*", NULL};
	struct app a;
	uint16_t port;
	char tgt[64];

	app_init(&a, rules, false);
	app_target(&a, WN_NP_SINK);
	port = a.srv.port;
	wn_np_server_close(&a.srv);
	a.srv_on = false;
	wn_rig_dialer(&a.r, NULL);
	app_open(&a, port_rule(tgt, sizeof(tgt), "127.0.0.1", port), 100);
	assert_int_equal(app_run(&a, 5000), WN_STREAM_REFUSED);
	app_finish(&a);
}

static void t_connect_timeout(void **state)
{
	const char *rules[] = {"127.0.0.1:*", NULL};
	struct wn_dialer_opts o = {.connect_timeout_ms = 300};
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	struct app a;
	int fd, held[2], i;
	char tgt[64];

	/* A listener with a full accept queue: connects hang. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 0), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	for (i = 0; i < 2; i++) {
		held[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(held[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	usleep(50 * 1000);
	app_init(&a, rules, false);
	wn_rig_dialer(&a.r, &o);
	app_open(&a,
	         port_rule(tgt, sizeof(tgt), "127.0.0.1", ntohs(sin.sin_port)),
	         100);
	assert_int_equal(app_run(&a, 5000), WN_STREAM_TIMEOUT);
	app_finish(&a);
	close(held[0]);
	close(held[1]);
	close(fd);
}

/* ---- logs and lifetimes ----------------------------------------------- */

static void t_denial_logged(void **state)
{
	const char *rules[] = {"127.0.0.1:80", NULL};
	struct app a;
	char buf[4096];
	ssize_t n;

	app_init(&a, rules, true);
	wn_rig_dialer(&a.r, NULL);
	app_open(&a, "10.1.2.3:8080", 100);
	assert_int_equal(app_run(&a, 2000), WN_STREAM_DENIED);
	n = pread(a.log_fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "[info] [dial] client c11e0001 stream 1: "
	                            "target tcp://10.1.2.3:8080 denied: no "
	                            "allow rule matches"));
	app_finish(&a);
}

/* Client resets and dialer closes while lookups and connects are in
 * flight: nothing leaks, nothing is touched after it is gone. */
static void t_close_while_busy(void **state)
{
	enum { N = 8 };
	const char *rules[] = {"127.0.0.0/8:*", NULL};
	struct app a;
	struct wn_np_stream more[N];
	struct wn_stream_handler h;
	struct wn_endpoint ep;
	const char *why;
	char tgt[64];
	int i;

	app_init(&a, rules, false);
	app_target(&a, WN_NP_ECHO);
	wn_rig_dialer(&a.r, NULL);
	port_rule(tgt, sizeof(tgt), "localhost", a.srv.port);
	assert_int_equal(
	    wn_endpoint_parse(tgt, WN_SCHEME_TCP, WN_SCHEME_TCP, 0, &ep, &why),
	    0);
	memset(more, 0, sizeof(more));
	for (i = 0; i < N; i++) {
		more[i].seed = more[i].expect_seed = (uint32_t)i;
		more[i].send_len = 1024 * 1024;
		h = wn_np_stream_handler(&more[i]);
		more[i].s = wn_tunnel_open_stream(wn_pipetunnel_client(a.r.pt),
		                                  &ep, &h);
		assert_non_null(more[i].s);
		wn_np_stream_push(&more[i]);
	}
	/* One pump: the dialer has the streams, lookups are in flight. */
	while (wn_dialer_get_stats(a.r.dialer)->streams < N)
		uv_run(wn_loop_uv(&a.r.loop), UV_RUN_ONCE);
	wn_stream_reset(more[0].s, WN_STREAM_ABORTED);
	wn_stream_reset(more[1].s, WN_STREAM_ABORTED);
	uv_run(wn_loop_uv(&a.r.loop), UV_RUN_NOWAIT);
	wn_dialer_close(a.r.dialer);
	a.r.dialer = NULL;
	wn_np_run_for(&a.r.loop, 200);
	for (i = 0; i < N; i++) {
		assert_true(more[i].closed);
		assert_int_equal(more[i].closed_err, WN_STREAM_ABORTED);
	}
	app_finish(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_fixed_target_wins),
	    cmocka_unit_test(t_fixed_target_by_name),
	    cmocka_unit_test(t_no_default_target),
	    cmocka_unit_test(t_ip_rules),
	    cmocka_unit_test(t_v4_mapped),
	    cmocka_unit_test(t_unspecified_denied),
	    cmocka_unit_test(t_name_allowed_by_name),
	    cmocka_unit_test(t_name_allowed_by_address),
	    cmocka_unit_test(t_name_resolves_outside),
	    cmocka_unit_test(t_name_denied_without_lookup),
	    cmocka_unit_test(t_lookup_no_oracle),
	    cmocka_unit_test(t_broad_rules_never_reach_loopback),
	    cmocka_unit_test(t_name_does_not_resolve),
	    cmocka_unit_test(t_unix_rules),
	    cmocka_unit_test(t_refused),
	    cmocka_unit_test(t_connect_timeout),
	    cmocka_unit_test(t_denial_logged),
	    cmocka_unit_test(t_close_while_busy),
	};

	signal(SIGPIPE, SIG_IGN);
	if (getenv("WN_TEST_FILTER"))
		cmocka_set_test_filter(getenv("WN_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
