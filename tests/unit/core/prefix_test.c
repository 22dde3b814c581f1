/* Source prefixes: the lengths each caller asks for, IPv4-mapped IPv6 as
 * IPv4 at any length, other families and short addresses as the one
 * "other" prefix, the text form, and a hash that depends on its key. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "core/prefix.h"

static struct wn_prefix pfx(const char *ip, unsigned v4, unsigned v6)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &a->sin_addr) == 1) {
		a->sin_family = AF_INET;
		a->sin_port = htons(1234);
		len = sizeof(*a);
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(4321);
		len = sizeof(*a6);
	}
	struct wn_prefix p;
	wn_prefix_of((struct sockaddr *)&ss, len, v4, v6, &p);
	return p;
}

static struct wn_prefix net(const char *ip)
{
	return pfx(ip, WN_PREFIX_V4_NET, WN_PREFIX_V6_NET);
}

static struct wn_prefix host(const char *ip)
{
	return pfx(ip, WN_PREFIX_V4_HOST, WN_PREFIX_V6_NET);
}

static int same(struct wn_prefix a, struct wn_prefix b)
{
	return wn_prefix_eq(&a, &b);
}

static void test_networks(void **state)
{
	(void)state;
	assert_true(same(net("10.1.2.3"), net("10.1.2.250")));
	assert_false(same(net("10.1.2.3"), net("10.1.3.3")));
	assert_true(same(net("2001:db8:1:2::1"), net("2001:db8:1:2:ffff::9")));
	assert_false(same(net("2001:db8:1:2::1"), net("2001:db8:1:3::1")));
	/* Prefixes that differ only in their first bit stay apart. */
	assert_false(same(net("2001:db8::1"), net("a001:db8::1")));
	/* 0.0.0.0/24 and ::/64 are different families. */
	assert_false(same(net("0.0.0.1"), net("::1")));
}

static void test_hosts(void **state)
{
	(void)state;
	assert_false(same(host("10.1.2.3"), host("10.1.2.4")));
	assert_true(same(host("10.1.2.3"), host("10.1.2.3")));
	/* The port is never part of a prefix (the helper gives each family
	 * its own); IPv6 is still the /64. */
	assert_true(same(host("2001:db8::1"), host("2001:db8::2")));
	/* A length is part of the prefix: a /24 is not the /32 of its
	 * network address. */
	assert_false(same(net("10.1.2.0"), host("10.1.2.0")));
	/* Lengths past the family's are the whole address; short ones
	 * keep only their bits. */
	assert_true(same(pfx("10.1.2.3", 99, 999), host("10.1.2.3")));
	assert_false(
	    same(pfx("2001:db8::1", 32, 999), pfx("2001:db8::2", 32, 999)));
	assert_true(same(pfx("10.1.2.3", 12, 64), pfx("10.15.0.0", 12, 64)));
	assert_false(same(pfx("10.1.2.3", 12, 64), pfx("10.16.0.0", 12, 64)));
}

/* A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d: that is the
 * IPv4 address, at the IPv4 length, not one of the IPv6 /64 ::ffff:0:0
 * that every IPv4 peer would share. */
static void test_mapped_is_ipv4(void **state)
{
	(void)state;
	assert_true(same(net("::ffff:10.1.2.77"), net("10.1.2.3")));
	assert_true(same(host("::ffff:10.1.2.77"), host("10.1.2.77")));
	assert_false(same(host("::ffff:10.1.2.77"), host("::ffff:10.1.2.78")));
	assert_false(same(net("::ffff:10.1.2.77"), net("::ffff:10.9.2.77")));
	/* ::ffff:0:0/96 as IPv6 with a plain IPv6 neighbour: not mapped. */
	assert_false(same(net("::fffe:10.1.2.77"), net("10.1.2.77")));
}

static void test_other_families(void **state)
{
	(void)state;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
	struct wn_prefix p, q, zero;
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(
	    wn_prefix_of((struct sockaddr *)&un, sizeof(un), 24, 64, &p),
	    WN_PREFIX_FAMILY_OTHER);
	assert_true(wn_prefix_eq(&p, &zero));
	/* An address too short for its family is not read past its end. */
	assert_int_equal(wn_prefix_of((struct sockaddr *)&a6,
	                              sizeof(struct sockaddr_in), 24, 64, &q),
	                 WN_PREFIX_FAMILY_OTHER);
	assert_true(wn_prefix_eq(&q, &zero));
	assert_int_equal(
	    wn_prefix_of((struct sockaddr *)&a6, sizeof(a6), 24, 64, &q),
	    WN_PREFIX_FAMILY_V6);
}

static void test_format(void **state)
{
	(void)state;
	char s[WN_PREFIX_STRLEN];
	struct wn_prefix p = net("10.1.2.3");
	assert_string_equal(wn_prefix_format(&p, s, sizeof(s)), "10.1.2.0/24");
	p = net("::ffff:192.0.2.9");
	assert_string_equal(wn_prefix_format(&p, s, sizeof(s)), "192.0.2.0/24");
	p = host("192.0.2.9");
	assert_string_equal(wn_prefix_format(&p, s, sizeof(s)), "192.0.2.9/32");
	p = net("2001:db8:1:2:3:4:5:6");
	assert_string_equal(wn_prefix_format(&p, s, sizeof(s)),
	                    "2001:db8:1:2::/64");
	p = pfx("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 32, 128);
	assert_string_equal(wn_prefix_format(&p, s, sizeof(s)),
	                    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	memset(&p, 0, sizeof(p));
	assert_string_equal(wn_prefix_format(&p, s, sizeof(s)), "(other)");
}

static void test_hash_is_keyed(void **state)
{
	(void)state;
	uint8_t k1[16] = {1}, k2[16] = {2};
	struct wn_prefix a = net("10.1.2.3"), b = net("10.1.2.200");
	assert_true(wn_prefix_hash(&a, k1) == wn_prefix_hash(&b, k1));
	assert_true(wn_prefix_hash(&a, k1) != wn_prefix_hash(&a, k2));
	struct wn_prefix c = net("10.1.3.3");
	assert_true(wn_prefix_hash(&a, k1) != wn_prefix_hash(&c, k1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_networks),
	    cmocka_unit_test(test_hosts),
	    cmocka_unit_test(test_mapped_is_ipv4),
	    cmocka_unit_test(test_other_families),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_hash_is_keyed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
