/* Admission control of the tcp carrier's server over loopback: every
 * connection state has a deadline (padding included), a session must carry
 * a packet the engine authenticated (carrier.h's hint) or its connections
 * go, connections not yet proved are limited per source prefix, a full
 * session table never forgets a client's session early, a failed
 * allocation while accepting does not stop the listener, and carrier
 * connections have TCP keepalive. Timeouts are set short in the carrier's
 * options so the tests take well under a second each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/tcp.h>

#include "tcpenv.h"

/* A preamble for session sid/secret/counter announcing pad_len bytes of
 * padding, without the padding. Returns its length. */
static size_t make_preamble(struct env *e, uint8_t *out, uint8_t sid_byte,
                            uint8_t secret_byte, uint64_t counter,
                            uint16_t pad_len)
{
	static uint8_t pad[WN_PREAMBLE_PAD_MAX];
	struct wn_preamble p;
	uint8_t seed[32];
	int n;

	memset(&p, 0, sizeof(p));
	memset(p.sid, sid_byte, sizeof(p.sid));
	memset(p.secret, secret_byte, sizeof(p.secret));
	p.counter = counter;
	p.timestamp_ms = wall_ms();
	p.pad_len = pad_len;
	randombytes_buf(seed, sizeof(seed));
	n = wn_preamble_seal(&p, e->id.x_pk, seed, pad, out, 2048);
	assert_true(n > 0);
	return (size_t)n - pad_len;
}

/* A raw connection from local address `from` (127.x.y.z: all of 127/8 is
 * this host's). */
static int connect_from(struct env *e, const char *from)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(e->port)};
	struct sockaddr_in l = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(inet_pton(AF_INET, from, &l.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&l, sizeof(l)), 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static bool closed_soon(struct env *e, int fd, unsigned ms)
{
	struct eof_wait w = {fd, false};
	return run_until(e, saw_eof, &w, ms);
}

static bool sessions_are(struct env *e, void *arg)
{
	return wn_tcp_server_sessions(e->srv.c) == *(size_t *)arg;
}

/* H1: a valid preamble that announces padding, and then nothing: the
 * connection is closed by the preamble deadline, although it is bound. */
static void test_padding_has_a_deadline(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.preamble_timeout_ms = 200,
	                        .auth_timeout_ms = 60000};
	uint8_t pre[2048];
	uint64_t t0;
	int fd;

	assert_int_equal(server_open(e, &o), 0);
	fd = raw_connect(e);
	send_all(fd, pre, make_preamble(e, pre, 1, 1, 1, 1024));
	assert_true(wait_n(e, &e->srv.ups, 1, 2000));
	t0 = wn_mono_ns();
	assert_true(closed_soon(e, fd, 2000));
	assert_true(wn_mono_ns() - t0 < 1000000000ull);
	assert_true(wait_n(e, &e->srv.downs, 1, 1000));
	assert_int_equal(wn_tcp_server_conns(e->srv.c), 0);
	close(fd);
}

/* H1: a bound connection whose packets the engine never authenticates is
 * closed after auth_timeout; one whose packets it does stays. */
static void test_unauthenticated_session_closed(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.preamble_timeout_ms = 200,
	                        .auth_timeout_ms = 200};
	uint8_t hello[400];
	int bad, good;

	assert_int_equal(server_open(e, &o), 0);
	e->srv.no_auth = true;
	bad = raw_connect(e);
	send_all(bad, hello, make_hello(e, hello, 2, 2, 1));
	assert_true(wait_n(e, &e->srv.npkts, 1, 2000));
	e->srv.no_auth = false;
	good = raw_connect(e);
	send_all(good, hello, make_hello(e, hello, 3, 3, 1));
	assert_true(wait_n(e, &e->srv.npkts, 2, 2000));
	assert_true(closed_soon(e, bad, 1500));
	run_for(e, 600); /* three times the deadline */
	struct eof_wait w = {good, false};
	assert_false(saw_eof(e, &w));
	assert_int_equal(wn_tcp_server_conns(e->srv.c), 1);
	assert_int_equal(e->srv.downs, 1);
	assert_true(log_count(e, "no authenticated packet") >= 1);
	close(bad);
	close(good);
}

/* H2: half-open connections from one /24 take no more than their share:
 * another network still gets in, though the attacker asked for more
 * connections than the whole limit. */
static void test_source_limit(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {
	    .max_conns = 10, .source_conns = 4, .auth_timeout_ms = 60000};
	uint8_t hello[400];
	int fds[12], good;
	size_t refused = 0;

	assert_int_equal(server_open(e, &o), 0);
	for (int i = 0; i < 12; i++) {
		fds[i] = connect_from(e, "127.0.0.1");
		run_for(e, 10);
	}
	run_for(e, 100);
	for (int i = 0; i < 12; i++) {
		struct eof_wait w = {fds[i], false};
		refused += saw_eof(e, &w);
	}
	assert_int_equal(refused, 8);
	assert_true(log_count(e, "too many unproved connections") >= 1);
	good = connect_from(e, "127.0.1.1");
	send_all(good, hello, make_hello(e, hello, 4, 4, 1));
	assert_true(wait_n(e, &e->srv.npkts, 1, 2000));
	/* Proved connections no longer count against their source: the
	 * good network's count went back to 0, so it may open 4 more. */
	int more[4];
	for (int i = 0; i < 4; i++)
		more[i] = connect_from(e, "127.0.1.2");
	run_for(e, 100);
	for (int i = 0; i < 4; i++) {
		struct eof_wait w = {more[i], false};
		assert_false(saw_eof(e, &w));
		close(more[i]);
	}
	for (int i = 0; i < 12; i++)
		close(fds[i]);
	close(good);
}

/* L1: a stranger is closed at its connection's preamble deadline, whether
 * it sent less than a preamble's 115 bytes or more: the close does not
 * show where the preamble ends. */
static void test_strangers_closed_alike(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.preamble_timeout_ms = 300};
	static uint8_t junk[200];
	int shorter, longer;
	uint64_t t0 = wn_mono_ns();

	assert_int_equal(server_open(e, &o), 0);
	memset(junk, 'x', sizeof(junk));
	shorter = raw_connect(e);
	send_all(shorter, junk, 114);
	longer = raw_connect(e);
	send_all(longer, junk, sizeof(junk));
	assert_true(closed_soon(e, shorter, 2000));
	assert_true(closed_soon(e, longer, 2000));
	/* The deadline's random part is at most a quarter: both by 300 ms
	 * and the reaper's tick. */
	assert_true(wn_mono_ns() - t0 < 900000000ull);
	assert_true(log_count(e, "held in silence") >= 1);
	close(shorter);
	close(longer);
}

/* One session: a hello on a fresh connection, its packet delivered, the
 * connection closed again. Returns the hello's bytes in out. */
static size_t one_session(struct env *e, uint8_t *out, uint8_t id)
{
	size_t zero = 0, n = make_hello(e, out, id, id, 1);
	size_t want = e->srv.npkts + 1;
	int fd = raw_connect(e);

	send_all(fd, out, n);
	assert_true(wait_n(e, &e->srv.npkts, want, 2000));
	close(fd);
	assert_true(run_until(e, conns_are, &zero, 2000));
	return n;
}

/* L2: with the session table full, a session that never authenticated is
 * forgotten for a new one, but a client's session is not: the new one is
 * refused, and a replay of the client's preamble still binds nothing. */
static void test_eviction_respects_age(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.max_sessions = 2, .auth_timeout_ms = 60000};
	uint8_t a[400], b[400], c[400];
	size_t na, two = 2;
	int fd;

	assert_int_equal(server_open(e, &o), 0);
	na = one_session(e, a, 0xa0); /* a client's: authenticated */
	e->srv.no_auth = true;
	one_session(e, b, 0xb0); /* a stranger's */
	assert_true(run_until(e, sessions_are, &two, 1000));
	/* The table is full: the stranger's session makes room. */
	one_session(e, c, 0xc0);
	assert_int_equal(wn_tcp_server_sessions(e->srv.c), 2);
	/* The client's and the last stranger's are left: the stranger's
	 * makes room once more, for a session that authenticates. Then
	 * only young client sessions are left, and a new one is refused. */
	e->srv.no_auth = false;
	one_session(e, b, 0xb1); /* evicts 0xc0, and authenticates */
	size_t before = e->srv.npkts;
	fd = raw_connect(e);
	send_all(fd, c, make_hello(e, c, 0xd0, 0xd0, 1));
	run_for(e, 200);
	assert_int_equal(e->srv.npkts, before);
	assert_true(log_count(e, "session limit reached") >= 1);
	close(fd);
	/* The client's recorded preamble, replayed: still a replay. */
	fd = raw_connect(e);
	send_all(fd, a, na);
	run_for(e, 200);
	assert_int_equal(e->srv.npkts, before);
	assert_int_equal(wn_tcp_server_sessions(e->srv.c), 2);
	close(fd);
}

/* L4: accepted connections that find no memory are refused, and the
 * listener goes on accepting. */
static void test_accept_survives_alloc_failure(void **state)
{
	struct env *e = *state;
	uint8_t hello[400];
	int fds[3], fd;

	assert_int_equal(server_open(e, NULL), 0);
	wn_tcp_server_fail_allocs(e->srv.c, 3);
	for (int i = 0; i < 3; i++)
		fds[i] = raw_connect(e);
	for (int i = 0; i < 3; i++) {
		assert_true(closed_soon(e, fds[i], 2000));
		close(fds[i]);
	}
	fd = raw_connect(e);
	send_all(fd, hello, make_hello(e, hello, 5, 5, 1));
	assert_true(wait_n(e, &e->srv.npkts, 1, 2000));
	close(fd);
}

static int sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);
	assert_int_equal(getsockopt(fd, level, name, &v, &l), 0);
	return v;
}

/* H1: carrier connections have TCP keepalive on both ends, so a peer that
 * vanished silently is found even when nothing is sent. */
static void test_keepalive(void **state)
{
	struct env *e = *state;
	int fds[2], n = 0;

	assert_int_equal(server_open(e, NULL), 0);
	client_open(e, NULL);
	assert_true(wait_n(e, &e->cli.ups, 1, 2000));
	assert_int_equal(client_fds(e, fds, 2), 1);
	assert_int_equal(sockopt(fds[0], SOL_SOCKET, SO_KEEPALIVE), 1);
	/* The server's end: the socket whose local port is the server's
	 * and which has a peer. */
	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_in a, p;
		socklen_t l = sizeof(a), pl = sizeof(p);
		if (getsockname(fd, (struct sockaddr *)&a, &l) != 0 ||
		    a.sin_family != AF_INET || ntohs(a.sin_port) != e->port ||
		    getpeername(fd, (struct sockaddr *)&p, &pl) != 0)
			continue;
		assert_int_equal(sockopt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
		assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 60);
		assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_KEEPCNT), 6);
		n++;
	}
	assert_int_equal(n, 1);
}

int main(void)
{
	(void)pkt; /* tcpenv.h's, unused here */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_padding_has_a_deadline, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_unauthenticated_session_closed,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_source_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_eviction_respects_age, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_strangers_closed_alike, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_accept_survives_alloc_failure,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
