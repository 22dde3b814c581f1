/* Tests for one port on several addresses (io/tcplisten.c): the addresses
 * Debian's default /etc/hosts gives "localhost" (127.0.0.1 and ::1) are
 * built here directly, so the test does not depend on this host's hosts
 * file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/tcplisten.h"
#include "util/err.h"

static struct sockaddr_storage addr(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

static socklen_t len_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                : sizeof(struct sockaddr_in6);
}

/* Whether a TCP connection to ip:port is accepted (a listener is there). */
static bool connects(const char *ip, unsigned port)
{
	struct sockaddr_storage ss = addr(ip, port);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	assert_true(fd >= 0);
	ok = connect(fd, (struct sockaddr *)&ss, len_of(&ss)) == 0;
	close(fd);
	return ok;
}

static bool have_ipv6_loopback(void)
{
	struct sockaddr_storage ss = addr("::1", 0);
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = bind(fd, (struct sockaddr *)&ss, len_of(&ss)) == 0;
	close(fd);
	return ok;
}

/* Port 0 on 127.0.0.1 and ::1: one port, the system's choice, on both. */
static void t_port0_one_port_on_both(void **state)
{
	struct sockaddr_storage a[2] = {addr("127.0.0.1", 0), addr("::1", 0)};
	int fds[2], round;
	unsigned port;

	if (!have_ipv6_loopback())
		skip();
	/* Again and again, so that a port differing by chance would show. */
	for (round = 0; round < 20; round++) {
		assert_int_equal(wn_tcplisten_open(a, 2, 16, fds), 2);
		port = wn_tcplisten_port(fds[0]);
		assert_true(port > 0);
		assert_int_equal(wn_tcplisten_port(fds[1]), port);
		assert_true(connects("127.0.0.1", port));
		assert_true(connects("::1", port));
		close(fds[0]);
		close(fds[1]);
	}
	/* The other order (the one glibc sorts ::1 first in) too. */
	a[0] = addr("::1", 0);
	a[1] = addr("127.0.0.1", 0);
	assert_int_equal(wn_tcplisten_open(a, 2, 16, fds), 2);
	port = wn_tcplisten_port(fds[0]);
	assert_int_equal(wn_tcplisten_port(fds[1]), port);
	assert_true(connects("127.0.0.1", port));
	assert_true(connects("::1", port));
	close(fds[0]);
	close(fds[1]);
}

/* A fixed port taken on one of the addresses: nothing is left listening. */
static void t_fixed_port_taken(void **state)
{
	struct sockaddr_storage one = addr("::1", 0), a[2];
	int taken, fds[2];
	unsigned port;

	if (!have_ipv6_loopback())
		skip();
	assert_int_equal(wn_tcplisten_open(&one, 1, 16, &taken), 1);
	port = wn_tcplisten_port(taken);
	a[0] = addr("127.0.0.1", port);
	a[1] = addr("::1", port);
	assert_int_equal(wn_tcplisten_open(a, 2, 16, fds), WN_EADDRINUSE);
	assert_int_equal(fds[0], -1);
	assert_int_equal(fds[1], -1);
	/* 127.0.0.1 was bound, then let go. */
	assert_false(connects("127.0.0.1", port));
	close(taken);
}

/* The IPv6 socket is IPv6-only: the name's IPv4 addresses are its own. */
static void t_ipv6_only(void **state)
{
	struct sockaddr_storage any6 = addr("::", 0), lo4;
	int fd6, fd4, on = 0;
	socklen_t len = sizeof(on);

	if (!have_ipv6_loopback())
		skip();
	assert_int_equal(wn_tcplisten_open(&any6, 1, 16, &fd6), 1);
	assert_int_equal(getsockopt(fd6, IPPROTO_IPV6, IPV6_V6ONLY, &on, &len),
	                 0);
	assert_int_equal(on, 1);
	lo4 = addr("127.0.0.1", wn_tcplisten_port(fd6));
	assert_int_equal(wn_tcplisten_open(&lo4, 1, 16, &fd4), 1);
	close(fd4);
	close(fd6);
}

/* An address this host does not have is skipped while another binds; with
 * none usable the skip reason comes back and nothing is open. */
static void t_absent_address_skipped(void **state)
{
	/* 192.0.2.1 is TEST-NET-1: never an address of this host. */
	struct sockaddr_storage a[2] = {addr("192.0.2.1", 0),
	                                addr("127.0.0.1", 0)};
	int fds[2];

	assert_int_equal(wn_tcplisten_open(a, 2, 16, fds), 1);
	assert_int_equal(fds[0], -1);
	assert_true(fds[1] >= 0);
	assert_true(connects("127.0.0.1", wn_tcplisten_port(fds[1])));
	close(fds[1]);
	assert_int_equal(wn_tcplisten_open(a, 1, 16, fds), WN_EUNREACH);
	assert_int_equal(fds[0], -1);
}

static void t_rejects_other_families(void **state)
{
	struct sockaddr_storage a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.ss_family = AF_UNIX;
	assert_int_equal(wn_tcplisten_open(&a, 1, 16, &fd), WN_EINVAL);
	assert_int_equal(wn_tcplisten_open(&a, 0, 16, &fd), WN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_port0_one_port_on_both),
	    cmocka_unit_test(t_fixed_port_taken),
	    cmocka_unit_test(t_ipv6_only),
	    cmocka_unit_test(t_absent_address_skipped),
	    cmocka_unit_test(t_rejects_other_families),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
