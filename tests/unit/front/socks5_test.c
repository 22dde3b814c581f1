/* Tests for the SOCKS5 front end over the in-memory engine double and the
 * real dialer: eager and standard replies, target data right after the
 * status byte, the reply code of each failure, authentication, the
 * handshake timeout, and closing with handshakes and confirms in flight.
 *
 *   test socket -> socks5 front -> pipetunnel -> dialer -> netpeer target
 *
 * The test's SOCKS client is a plain blocking socket; the loop runs while
 * the test waits for the proxy's answers. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/socks5.h"
#include "front/socks5.h"
#include "support/rig.h"
#include "util/err.h"

struct fx {
	struct wn_rig r;
	struct wn_np_server srv;
	struct wn_socks5_front *sf;
	uint16_t port;
};

static void fx_init(struct fx *f, bool eager, const char *user, uint32_t hs_ms,
                    enum wn_np_mode mode)
{
	struct wn_socks5_front_opts o = {.name = "t",
	                                 .handshake_timeout_ms = hs_ms};
	struct sockaddr_storage ss;
	const char *why;

	memset(f, 0, sizeof(*f));
	wn_rig_init(&f->r, NULL, -1);
	wn_rig_allow(&f->r, "127.0.0.1:*");
	wn_rig_dialer(&f->r, NULL);
	f->srv.greet_seed = 77;
	f->srv.greet_len = 3000;
	assert_int_equal(
	    wn_np_server_tcp(&f->srv, &f->r.loop, "127.0.0.1", mode), 0);
	assert_int_equal(wn_endpoint_parse("127.0.0.1:0", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, WN_EP_PORT_ZERO_OK,
	                                   &o.listen, &why),
	                 0);
	o.eager = eager;
	struct wn_socks5_user u = {"alice", "pw"};
	if (user) {
		o.users = &u;
		o.n_users = 1;
	}
	assert_int_equal(wn_socks5_front_open(&f->r.loop, &f->r.log,
	                                      wn_pipetunnel_client(f->r.pt), &o,
	                                      &f->sf),
	                 0);
	assert_int_equal(wn_socks5_front_sockname(f->sf, &ss), 0);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void fx_finish(struct fx *f)
{
	if (f->sf)
		wn_socks5_front_close(f->sf);
	wn_np_server_close(&f->srv);
	assert_int_equal(wn_rig_finish(&f->r), 0);
}

static int sk_connect(struct fx *f)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(f->port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	/* The kernel completes the connect from the listen backlog. */
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void sk_send(int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static bool readable(void *arg)
{
	struct pollfd p = {.fd = *(int *)arg, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/* Reads up to n bytes, running the loop while none are there. Returns how
 * many came before n, the end (*end: 0 open, 1 EOF, 2 reset) or 3 s. */
static size_t sk_recv(struct fx *f, int fd, uint8_t *buf, size_t n, int *end)
{
	size_t got = 0;
	ssize_t k;

	*end = 0;
	while (got < n) {
		if (!wn_np_run_until(&f->r.loop, readable, &fd, 3000))
			break;
		k = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (k == 0) {
			*end = 1;
			break;
		}
		if (k < 0) {
			if (errno == EAGAIN)
				continue;
			*end = 2;
			break;
		}
		got += (size_t)k;
	}
	return got;
}

static void expect(struct fx *f, int fd, const uint8_t *want, size_t n)
{
	uint8_t buf[64];
	int end;

	assert_true(n <= sizeof(buf));
	assert_int_equal(sk_recv(f, fd, buf, n, &end), n);
	assert_memory_equal(buf, want, n);
}

static void expect_end(struct fx *f, int fd)
{
	uint8_t b;
	int end;

	assert_int_equal(sk_recv(f, fd, &b, 1, &end), 0);
	assert_true(end != 0);
}

static const uint8_t greet_none[] = {5, 1, 0};
static const uint8_t sel_none[] = {5, 0};

static void reply(uint8_t rep, uint8_t out[10])
{
	memset(out, 0, 10);
	out[0] = 5;
	out[1] = rep;
	out[3] = 1;
}

static void request_ip(int fd, uint32_t ip, uint16_t port)
{
	uint8_t req[10] = {5, 1, 0, 1};

	req[4] = (uint8_t)(ip >> 24);
	req[5] = (uint8_t)(ip >> 16);
	req[6] = (uint8_t)(ip >> 8);
	req[7] = (uint8_t)ip;
	req[8] = (uint8_t)(port >> 8);
	req[9] = (uint8_t)port;
	sk_send(fd, req, sizeof(req));
}

static void echo_check(struct fx *f, int fd, size_t len)
{
	uint8_t out[4096], in[4096];
	size_t off = 0, n;
	int end;

	while (off < len) {
		n = len - off < sizeof(out) ? len - off : sizeof(out);
		wn_np_fill(5, off, out, n);
		sk_send(fd, out, n);
		assert_int_equal(sk_recv(f, fd, in, n, &end), n);
		assert_true(wn_np_check(5, off, in, n));
		off += n;
	}
}

static void eager_replies_at_once_and_relays(void **state)
{
	struct fx f;
	uint8_t ok[10];
	int fd;

	(void)state;
	fx_init(&f, true, NULL, 0, WN_NP_ECHO);
	fd = sk_connect(&f);
	sk_send(fd, greet_none, sizeof(greet_none));
	expect(&f, fd, sel_none, 2);
	request_ip(fd, 0x7f000001, f.srv.port);
	reply(WN_SOCKS5_REP_SUCCEEDED, ok);
	expect(&f, fd, ok, 10);
	echo_check(&f, fd, 100000);
	close(fd);
	assert_int_equal(wn_socks5_front_get_stats(f.sf)->connects, 1);
	assert_int_equal(wn_socks5_front_get_stats(f.sf)->replies[0], 1);
	fx_finish(&f);
}

/* Standard mode: the reply waits for the status byte; a target that
 * speaks first has its bytes follow the reply, none lost or reordered
 * (they may share one delivery with the status byte). */
static void standard_confirms_then_relays(void **state)
{
	struct fx f;
	uint8_t ok[10], buf[4096];
	int fd, end;

	(void)state;
	fx_init(&f, false, NULL, 0, WN_NP_GREET);
	fd = sk_connect(&f);
	sk_send(fd, greet_none, sizeof(greet_none));
	expect(&f, fd, sel_none, 2);
	request_ip(fd, 0x7f000001, f.srv.port);
	reply(WN_SOCKS5_REP_SUCCEEDED, ok);
	expect(&f, fd, ok, 10);
	assert_int_equal(sk_recv(&f, fd, buf, 3000, &end), 3000);
	assert_true(wn_np_check(77, 0, buf, 3000));
	close(fd);
	fx_finish(&f);
}

static void standard_failure_codes(void **state)
{
	struct fx f;
	uint8_t want[10];
	uint16_t closed_port;
	int fd, lfd;
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);

	(void)state;
	/* A port nobody listens on: bound, then closed. */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	closed_port = ntohs(a.sin_port);
	close(lfd);

	fx_init(&f, false, NULL, 0, WN_NP_ECHO);
	/* No rule allows 10.9.9.9. */
	fd = sk_connect(&f);
	sk_send(fd, greet_none, sizeof(greet_none));
	expect(&f, fd, sel_none, 2);
	request_ip(fd, 0x0a090909, 80);
	reply(WN_SOCKS5_REP_NOT_ALLOWED, want);
	expect(&f, fd, want, 10);
	expect_end(&f, fd);
	close(fd);
	/* Allowed, refused. */
	fd = sk_connect(&f);
	sk_send(fd, greet_none, sizeof(greet_none));
	expect(&f, fd, sel_none, 2);
	request_ip(fd, 0x7f000001, closed_port);
	reply(WN_SOCKS5_REP_REFUSED, want);
	expect(&f, fd, want, 10);
	expect_end(&f, fd);
	close(fd);
	assert_int_equal(wn_socks5_front_get_stats(f.sf)->failed_replies, 2);
	fx_finish(&f);
}

/* Eager mode cannot take its "succeeded" back: the connection ends
 * without a byte of data. */
static void eager_failure_closes(void **state)
{
	struct fx f;
	uint8_t ok[10];
	int fd;

	(void)state;
	fx_init(&f, true, NULL, 0, WN_NP_ECHO);
	fd = sk_connect(&f);
	sk_send(fd, greet_none, sizeof(greet_none));
	expect(&f, fd, sel_none, 2);
	request_ip(fd, 0x0a090909, 80);
	reply(WN_SOCKS5_REP_SUCCEEDED, ok);
	expect(&f, fd, ok, 10);
	/* The reset may have come already: the send may fail. */
	(void)send(fd, "GET", 3, MSG_NOSIGNAL);
	expect_end(&f, fd);
	close(fd);
	fx_finish(&f);
}

static void authentication(void **state)
{
	struct fx f;
	const uint8_t greet[] = {5, 2, 0, 2};
	const uint8_t sel[] = {5, 2};
	const uint8_t good[] = {1, 5, 'a', 'l', 'i', 'c', 'e', 2, 'p', 'w'};
	const uint8_t bad[] = {1, 5, 'a', 'l', 'i', 'c', 'e', 2, 'p', 'x'};
	const uint8_t ok[] = {1, 0}, no[] = {1, 1}, none[] = {5, 0xff};
	uint8_t rep[10];
	int fd;

	(void)state;
	fx_init(&f, true, "alice", 0, WN_NP_ECHO);
	fd = sk_connect(&f);
	sk_send(fd, greet, sizeof(greet));
	expect(&f, fd, sel, 2);
	sk_send(fd, bad, sizeof(bad));
	expect(&f, fd, no, 2);
	expect_end(&f, fd);
	close(fd);
	/* Offering only "no authentication" gets nothing. */
	fd = sk_connect(&f);
	sk_send(fd, greet_none, sizeof(greet_none));
	expect(&f, fd, none, 2);
	expect_end(&f, fd);
	close(fd);
	fd = sk_connect(&f);
	sk_send(fd, greet, sizeof(greet));
	expect(&f, fd, sel, 2);
	sk_send(fd, good, sizeof(good));
	expect(&f, fd, ok, 2);
	request_ip(fd, 0x7f000001, f.srv.port);
	reply(0, rep);
	expect(&f, fd, rep, 10);
	echo_check(&f, fd, 5000);
	close(fd);
	assert_int_equal(wn_socks5_front_get_stats(f.sf)->auth_failures, 1);
	assert_int_equal(wn_socks5_front_get_stats(f.sf)->bad_handshakes, 1);
	fx_finish(&f);
}

static void handshake_timeout(void **state)
{
	struct fx f;
	int fd, fd2;

	(void)state;
	fx_init(&f, true, NULL, 200, WN_NP_ECHO);
	fd = sk_connect(&f);
	sk_send(fd, greet_none, 1); /* then nothing */
	fd2 = sk_connect(&f);       /* nothing at all */
	expect_end(&f, fd);
	expect_end(&f, fd2);
	close(fd);
	close(fd2);
	assert_int_equal(wn_socks5_front_get_stats(f.sf)->timeouts, 2);
	assert_int_equal(wn_socks5_front_relays(f.sf)->live, 0);
	fx_finish(&f);
}

/* Closing the proxy ends handshakes and confirms in flight; every object
 * is freed and every handle closed (wn_rig_finish checks; ASan too). */
static void close_with_work_in_flight(void **state)
{
	struct fx f;
	int fd1, fd2, fd3;

	(void)state;
	fx_init(&f, false, NULL, 0, WN_NP_ECHO);
	wn_pipetunnel_set_up(f.r.pt, false); /* confirms cannot come */
	fd1 = sk_connect(&f);
	sk_send(fd1, greet_none, sizeof(greet_none));
	expect(&f, fd1, sel_none, 2);
	request_ip(fd1, 0x7f000001, f.srv.port);
	fd2 = sk_connect(&f);
	sk_send(fd2, greet_none, 1);
	fd3 = sk_connect(&f);
	wn_np_run_for(&f.r.loop, 50);
	assert_int_equal(wn_socks5_front_relays(f.sf)->live, 3);
	wn_socks5_front_close(f.sf);
	f.sf = NULL;
	expect_end(&f, fd1);
	expect_end(&f, fd2);
	expect_end(&f, fd3);
	close(fd1);
	close(fd2);
	close(fd3);
	fx_finish(&f);
}

static void reply_codes(void **state)
{
	(void)state;
	assert_int_equal(wn_socks5_rep_for(WN_STREAM_DENIED), 2);
	assert_int_equal(wn_socks5_rep_for(WN_STREAM_UNREACHABLE), 4);
	assert_int_equal(wn_socks5_rep_for(WN_STREAM_REFUSED), 5);
	assert_int_equal(wn_socks5_rep_for(WN_STREAM_TIMEOUT), 6);
	assert_int_equal(wn_socks5_rep_for(WN_STREAM_BAD_HEADER), 1);
	assert_int_equal(wn_socks5_rep_for(WN_STREAM_SESSION_LOST), 1);
}

/* Opens a SOCKS5 front on listen (no users unless user is set); returns
 * its result, closing the front again if it opened. */
static int try_open(struct wn_rig *r, const char *listen, bool user,
                    bool unauthenticated, unsigned unix_mode)
{
	struct wn_socks5_front_opts o = {.name = "t",
	                                 .unauthenticated = unauthenticated,
	                                 .unix_mode = unix_mode};
	struct wn_socks5_user u = {"alice", "pw"};
	struct wn_socks5_front *sf;
	const char *why;
	int rc;

	assert_int_equal(wn_endpoint_parse(listen,
	                                   WN_SCHEME_TCP | WN_SCHEME_UNIX,
	                                   WN_SCHEME_TCP, WN_EP_PORT_ZERO_OK,
	                                   &o.listen, &why),
	                 0);
	if (user) {
		o.users = &u;
		o.n_users = 1;
	}
	rc = wn_socks5_front_open(&r->loop, &r->log,
	                          wn_pipetunnel_client(r->pt), &o, &sf);
	if (rc == 0)
		wn_socks5_front_close(sf);
	return rc;
}

/* Without users the proxy is anyone's way into the tunnel: it listens on
 * loopback only, unless told otherwise or given users. */
static void no_users_loopback_only(void **state)
{
	struct wn_rig r;
	(void)state;

	wn_rig_init(&r, NULL, -1);
	assert_int_equal(try_open(&r, "0.0.0.0:0", false, false, 0), WN_EPERM);
	assert_int_equal(try_open(&r, "[::]:0", false, false, 0), WN_EPERM);
	assert_int_equal(try_open(&r, "127.0.0.1:0", false, false, 0), 0);
	assert_int_equal(try_open(&r, "localhost:0", false, false, 0), 0);
	assert_int_equal(try_open(&r, "0.0.0.0:0", true, false, 0), 0);
	assert_int_equal(try_open(&r, "0.0.0.0:0", false, true, 0), 0);
	assert_int_equal(wn_rig_finish(&r), 0);
}

/* A unix listener's socket file is the owner's alone (or the configured
 * mode), whatever the umask. */
static void unix_socket_mode(void **state)
{
	struct wn_rig r;
	char path[128], listen[160];
	struct wn_socks5_front_opts o = {.name = "t"};
	struct wn_socks5_front *sf;
	struct stat st;
	const char *why;
	mode_t old = umask(0);
	(void)state;

	wn_rig_init(&r, NULL, -1);
	wn_rig_path(&r, "s.sock", path, sizeof(path));
	snprintf(listen, sizeof(listen), "unix:%s", path);
	assert_int_equal(wn_endpoint_parse(listen, WN_SCHEME_UNIX,
	                                   WN_SCHEME_TCP, 0, &o.listen, &why),
	                 0);
	assert_int_equal(wn_socks5_front_open(&r.loop, &r.log,
	                                      wn_pipetunnel_client(r.pt), &o,
	                                      &sf),
	                 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	wn_socks5_front_close(sf);
	wn_np_run_for(&r.loop, 50);
	o.unix_mode = 0660;
	assert_int_equal(wn_socks5_front_open(&r.loop, &r.log,
	                                      wn_pipetunnel_client(r.pt), &o,
	                                      &sf),
	                 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
	wn_socks5_front_close(sf);
	umask(old);
	assert_int_equal(wn_rig_finish(&r), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(eager_replies_at_once_and_relays),
	    cmocka_unit_test(standard_confirms_then_relays),
	    cmocka_unit_test(standard_failure_codes),
	    cmocka_unit_test(eager_failure_closes),
	    cmocka_unit_test(authentication),
	    cmocka_unit_test(handshake_timeout),
	    cmocka_unit_test(close_with_work_in_flight),
	    cmocka_unit_test(reply_codes),
	    cmocka_unit_test(no_users_loopback_only),
	    cmocka_unit_test(unix_socket_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
