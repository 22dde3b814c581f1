#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/addr.h"
#include "util/err.h"

#define ALL (WN_SCHEME_UDP | WN_SCHEME_TCP | WN_SCHEME_TLS | WN_SCHEME_UNIX)

static struct wn_endpoint ok(const char *s, unsigned allowed,
                             enum wn_scheme dflt)
{
	struct wn_endpoint ep;
	const char *why = NULL;
	int rc = wn_endpoint_parse(s, allowed, dflt, 0, &ep, &why);
	if (rc != 0)
		fail_msg("%s rejected: %s", s, why);
	return ep;
}

static const char *bad(const char *s, unsigned allowed, enum wn_scheme dflt)
{
	struct wn_endpoint ep;
	const char *why = NULL;
	assert_int_equal(wn_endpoint_parse(s, allowed, dflt, 0, &ep, &why),
	                 WN_EINVAL);
	assert_non_null(why);
	return why;
}

static void test_ipv4_ipv6_names_and_unix(void **state)
{
	(void)state;
	char buf[128];
	struct wn_endpoint ep = ok("udp://127.0.0.1:4433", ALL, 0);
	assert_int_equal(ep.scheme, WN_SCHEME_UDP);
	assert_int_equal(ep.kind, WN_HOST_IP);
	assert_int_equal(ep.sa.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ep.sa)->sin_port), 4433);
	assert_string_equal(wn_endpoint_format(&ep, buf, sizeof(buf)),
	                    "udp://127.0.0.1:4433");

	ep = ok("tcp://[2001:db8::1]:443", ALL, 0);
	assert_int_equal(ep.sa.ss_family, AF_INET6);
	assert_int_equal(ep.salen, sizeof(struct sockaddr_in6));
	assert_string_equal(wn_endpoint_format(&ep, buf, sizeof(buf)),
	                    "tcp://[2001:db8::1]:443");

	ep = ok("[::1]:22", ALL, WN_SCHEME_TCP);
	assert_int_equal(ep.scheme, WN_SCHEME_TCP);
	assert_int_equal(ep.port, 22);

	ep = ok("vpn.example.org:4433", ALL, WN_SCHEME_UDP);
	assert_int_equal(ep.kind, WN_HOST_NAME);
	assert_string_equal(ep.host, "vpn.example.org");

	ep = ok("unix:/run/app.sock", ALL, WN_SCHEME_TCP);
	assert_int_equal(ep.kind, WN_HOST_UNIX);
	assert_string_equal(ep.path, "/run/app.sock");
	assert_string_equal(wn_endpoint_format(&ep, buf, sizeof(buf)),
	                    "unix:/run/app.sock");
}

static void test_rejections_say_why(void **state)
{
	(void)state;
	assert_string_equal(bad("::1:22", ALL, WN_SCHEME_TCP),
	                    "IPv6 addresses need brackets: [ADDR]:PORT");
	bad("[::1]", ALL, WN_SCHEME_TCP);
	bad("[::1]22", ALL, WN_SCHEME_TCP);
	bad("[zz::1]:22", ALL, WN_SCHEME_TCP);
	bad("1.2.3.4", ALL, WN_SCHEME_TCP);
	bad("1.2.3.4:0", ALL, WN_SCHEME_TCP);
	bad("1.2.3.4:65536", ALL, WN_SCHEME_TCP);
	bad("1.2.3.4:-1", ALL, WN_SCHEME_TCP);
	bad("1.2.3.4:+80", ALL, WN_SCHEME_TCP);
	assert_string_equal(bad("1.2.3.256:80", ALL, WN_SCHEME_TCP),
	                    "invalid IPv4 address");
	bad("bad_host:80", ALL, WN_SCHEME_TCP);
	bad("-bad.example:80", ALL, WN_SCHEME_TCP);
	bad(":80", ALL, WN_SCHEME_TCP);
	bad("quic://1.2.3.4:80", ALL, WN_SCHEME_TCP);
	bad("1.2.3.4:80", ALL, WN_SCHEME_NONE); /* scheme required */
	bad("tcp://1.2.3.4:80", WN_SCHEME_UDP, WN_SCHEME_NONE);
	bad("unix:", ALL, WN_SCHEME_TCP);
	bad("unix:/x", WN_SCHEME_TCP, WN_SCHEME_TCP);
	char longpath[200] = "unix:/";
	memset(longpath + 6, 'a', 150);
	longpath[156] = '\0';
	bad(longpath, ALL, WN_SCHEME_TCP);
}

static void test_port_zero_only_when_asked(void **state)
{
	(void)state;
	struct wn_endpoint ep;
	const char *why;
	assert_int_equal(wn_endpoint_parse("127.0.0.1:0", ALL, WN_SCHEME_UDP,
	                                   WN_EP_PORT_ZERO_OK, &ep, &why),
	                 0);
	assert_int_equal(ep.port, 0);
}

static void test_hostname_rules(void **state)
{
	(void)state;
	assert_true(wn_hostname_valid("a", 1));
	assert_true(wn_hostname_valid("xn--bcher-kva.example", 21));
	assert_false(wn_hostname_valid("a..b", 4));
	assert_false(wn_hostname_valid("a-.b", 4));
	assert_false(wn_hostname_valid(".a", 2));
	char label[70];
	memset(label, 'a', 64);
	assert_false(wn_hostname_valid(label, 64));
	assert_true(wn_hostname_valid(label, 63));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ipv4_ipv6_names_and_unix),
	    cmocka_unit_test(test_rejections_say_why),
	    cmocka_unit_test(test_port_zero_only_when_asked),
	    cmocka_unit_test(test_hostname_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
