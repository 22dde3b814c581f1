/* Per-prefix token buckets: a prefix's burst and rate, prefixes kept
 * apart at /24 and /64, IPv4-mapped IPv6 as IPv4, and a fixed table that
 * strangers cycling through prefixes cannot use to free a limited one. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/prefixlimit.h"
#include "util/err.h"

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss)), sizeof(ss)

static void test_burst_then_rate(void **state)
{
	(void)state;
	struct wn_prefixlimit_cfg cfg;
	wn_prefixlimit_cfg_default(&cfg, 10, 5, 64);
	cfg.seed[0] = 42;
	struct wn_prefixlimit pl;
	assert_int_equal(wn_prefixlimit_init(&pl, &cfg), 0);
	struct sockaddr_storage a = v4("10.1.2.3", 1000);
	for (int i = 0; i < 5; i++)
		assert_true(wn_prefixlimit_take(&pl, SA(a), 1000));
	assert_false(wn_prefixlimit_take(&pl, SA(a), 1000));
	/* Another host and port of the /24 shares the bucket... */
	struct sockaddr_storage b = v4("10.1.2.200", 5);
	assert_false(wn_prefixlimit_take(&pl, SA(b), 1000));
	/* ...another /24 does not. */
	struct sockaddr_storage c = v4("10.1.3.1", 5);
	assert_true(wn_prefixlimit_take(&pl, SA(c), 1000));
	/* 10 per second: one more after 100 ms, not before. */
	assert_false(wn_prefixlimit_take(&pl, SA(a), 1099));
	assert_true(wn_prefixlimit_take(&pl, SA(a), 1100));
	assert_false(wn_prefixlimit_take(&pl, SA(a), 1100));
	/* A long pause refills to the burst, no further. */
	int n = 0;
	while (wn_prefixlimit_take(&pl, SA(a), 100000))
		n++;
	assert_int_equal(n, 5);
	assert_int_equal(pl.denied, 5);
	char text[64];
	assert_string_equal(
	    wn_prefixlimit_format(&pl, SA(b), text, sizeof(text)),
	    "10.1.2.0/24");
	wn_prefixlimit_free(&pl);
}

static void test_ipv6_and_mapped(void **state)
{
	(void)state;
	struct wn_prefixlimit_cfg cfg;
	wn_prefixlimit_cfg_default(&cfg, 1, 2, 64);
	struct wn_prefixlimit pl;
	assert_int_equal(wn_prefixlimit_init(&pl, &cfg), 0);
	struct sockaddr_storage a = v6("2001:db8:1:2::1", 1);
	struct sockaddr_storage b = v6("2001:db8:1:2:ffff::9", 2);
	struct sockaddr_storage c = v6("2001:db8:1:3::1", 1);
	assert_true(wn_prefixlimit_take(&pl, SA(a), 0));
	assert_true(wn_prefixlimit_take(&pl, SA(b), 0));
	assert_false(wn_prefixlimit_take(&pl, SA(a), 0)); /* one /64 */
	assert_true(wn_prefixlimit_take(&pl, SA(c), 0));
	/* ::ffff:10.0.0.1 is 10.0.0.1. */
	struct sockaddr_storage m = v6("::ffff:10.0.0.1", 1);
	struct sockaddr_storage p = v4("10.0.0.77", 1);
	assert_true(wn_prefixlimit_take(&pl, SA(m), 0));
	assert_true(wn_prefixlimit_take(&pl, SA(p), 0));
	assert_false(wn_prefixlimit_take(&pl, SA(m), 0));
	char text[64];
	assert_string_equal(
	    wn_prefixlimit_format(&pl, SA(b), text, sizeof(text)),
	    "2001:db8:1:2::/64");
	assert_string_equal(
	    wn_prefixlimit_format(&pl, SA(m), text, sizeof(text)),
	    "10.0.0.0/24");
	wn_prefixlimit_free(&pl);
}

/* 100,000 other prefixes through a 64-slot table do not give a limited
 * prefix its tokens back: the fuller buckets go first. */
static void test_table_is_bounded(void **state)
{
	(void)state;
	struct wn_prefixlimit_cfg cfg;
	wn_prefixlimit_cfg_default(&cfg, 1, 4, 64);
	cfg.seed[0] = 7;
	struct wn_prefixlimit pl;
	assert_int_equal(wn_prefixlimit_init(&pl, &cfg), 0);
	assert_int_equal(pl.mask, 63);
	struct sockaddr_storage hot = v4("192.0.2.1", 1);
	while (wn_prefixlimit_take(&pl, SA(hot), 0))
		;
	for (uint32_t i = 0; i < 100000; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "%u.%u.%u.1", 1 + (i >> 16) % 200,
		         (i >> 8) & 0xFF, i & 0xFF);
		struct sockaddr_storage o = v4(ip, 1);
		assert_true(wn_prefixlimit_take(&pl, SA(o), 0));
	}
	assert_false(wn_prefixlimit_take(&pl, SA(hot), 0));
	wn_prefixlimit_free(&pl);
}

static void test_bad_config(void **state)
{
	(void)state;
	struct wn_prefixlimit_cfg cfg;
	struct wn_prefixlimit pl;
	wn_prefixlimit_cfg_default(&cfg, 0, 4, 64);
	assert_int_equal(wn_prefixlimit_init(&pl, &cfg), WN_EINVAL);
	wn_prefixlimit_cfg_default(&cfg, 1, 0, 64);
	assert_int_equal(wn_prefixlimit_init(&pl, &cfg), WN_EINVAL);
	wn_prefixlimit_cfg_default(&cfg, 1, 1, 64);
	cfg.v6_bits = 129;
	assert_int_equal(wn_prefixlimit_init(&pl, &cfg), WN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_rate),
	    cmocka_unit_test(test_ipv6_and_mapped),
	    cmocka_unit_test(test_table_is_bounded),
	    cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
