#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/prefixcount.h"
#include "util/err.h"

static struct wn_prefix v4(const char *ip)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
	struct wn_prefix p;
	wn_prefix_of((struct sockaddr *)&a, sizeof(a), WN_PREFIX_V4_NET,
	             WN_PREFIX_V6_NET, &p);
	return p;
}

static struct wn_prefix v6(const char *ip)
{
	struct sockaddr_in6 a;
	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
	struct wn_prefix p;
	wn_prefix_of((struct sockaddr *)&a, sizeof(a), WN_PREFIX_V4_NET,
	             WN_PREFIX_V6_NET, &p);
	return p;
}

/* A hash key made from n, for tables whose layout the test repeats. */
static const uint8_t *key(uint8_t n)
{
	static uint8_t k[16];
	memset(k, n, sizeof(k));
	return k;
}

static int same(struct wn_prefix a, struct wn_prefix b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

static void test_prefixes(void **state)
{
	(void)state;
	assert_true(same(v4("192.0.2.1"), v4("192.0.2.254")));
	assert_false(same(v4("192.0.2.1"), v4("192.0.3.1")));
	assert_true(same(v4("192.0.2.1"), v6("::ffff:192.0.2.77")));
	assert_true(same(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff::9")));
	assert_false(same(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1")));
	/* 0.0.0.0/24 and ::/64 stay apart. */
	assert_false(same(v4("0.0.0.1"), v6("::1")));
}

static void test_cap_per_prefix(void **state)
{
	(void)state;
	struct wn_prefixcount t;
	assert_int_equal(wn_prefixcount_init(&t, 16, 3, key(42)), 0);
	struct wn_prefix a = v4("10.0.0.1"), b = v4("10.0.1.1");
	for (int i = 0; i < 3; i++)
		assert_int_equal(wn_prefixcount_take(&t, &a), 0);
	assert_int_equal(wn_prefixcount_take(&t, &a), WN_EAGAIN);
	assert_int_equal(wn_prefixcount_count(&t, &a), 3);
	assert_int_equal(wn_prefixcount_take(&t, &b), 0);
	wn_prefixcount_release(&t, &a);
	assert_int_equal(wn_prefixcount_take(&t, &a), 0);
	for (int i = 0; i < 3; i++)
		wn_prefixcount_release(&t, &a);
	assert_int_equal(wn_prefixcount_count(&t, &a), 0);
	wn_prefixcount_release(&t, &a); /* holding none: no effect */
	assert_int_equal(wn_prefixcount_count(&t, &a), 0);
	assert_int_equal(wn_prefixcount_count(&t, &b), 1);
	assert_int_equal(t.used, 1);
	wn_prefixcount_free(&t);
}

/* The table is bounded: a full one refuses new prefixes, and churn (many
 * prefixes coming and going, in any order) leaves every count right. */
static void test_bounded_and_churn(void **state)
{
	(void)state;
	struct wn_prefixcount t;
	assert_int_equal(wn_prefixcount_init(&t, 64, 2, key(7)), 0);
	struct wn_prefix p[200];
	char ip[32];
	for (int i = 0; i < 200; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 100, i % 100);
		p[i] = v4(ip);
	}
	int taken = 0;
	for (int i = 0; i < 200; i++)
		taken += wn_prefixcount_take(&t, &p[i]) == 0;
	assert_int_equal(taken, 63); /* one slot stays empty */
	assert_int_equal(wn_prefixcount_take(&t, &p[199]), WN_EAGAIN);
	/* Release every other one, then the table takes new ones again and
	 * still finds all the old. */
	for (int i = 0; i < 63; i += 2)
		wn_prefixcount_release(&t, &p[i]);
	for (int i = 0; i < 63; i++)
		assert_int_equal(wn_prefixcount_count(&t, &p[i]), i % 2);
	for (int i = 100; i < 132; i++)
		assert_int_equal(wn_prefixcount_take(&t, &p[i]), 0);
	for (int i = 1; i < 63; i += 2)
		assert_int_equal(wn_prefixcount_count(&t, &p[i]), 1);
	for (int i = 100; i < 132; i++)
		assert_int_equal(wn_prefixcount_count(&t, &p[i]), 1);
	for (int i = 1; i < 63; i += 2)
		wn_prefixcount_release(&t, &p[i]);
	for (int i = 100; i < 132; i++)
		wn_prefixcount_release(&t, &p[i]);
	assert_int_equal(t.used, 0);
	for (size_t i = 0; i <= t.mask; i++)
		assert_int_equal(wn_prefixcount_count(&t, &p[i % 200]), 0);
	wn_prefixcount_free(&t);
}

/* Many prefixes in a small table, taken and released at random: the counts
 * always match a model, so backward-shift deletion loses nothing. */
static void test_model(void **state)
{
	enum { KEYS = 40, STEPS = 20000, SLOTS = 32, PER = 5 };
	uint32_t model[KEYS] = {0};
	struct wn_prefix p[KEYS];
	struct wn_prefixcount t;
	uint32_t rnd = 12345;
	size_t used = 0;
	char ip[32];
	(void)state;
	for (int i = 0; i < KEYS; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.1", i);
		p[i] = v4(ip);
	}
	assert_int_equal(wn_prefixcount_init(&t, SLOTS, PER, key(3)), 0);
	for (int i = 0; i < STEPS; i++) {
		rnd = rnd * 1103515245u + 12345u;
		int k = (int)((rnd >> 8) % KEYS);
		if ((rnd >> 20) & 1) {
			int ok = model[k] < PER &&
			         (model[k] > 0 || used < SLOTS - 1);
			assert_int_equal(wn_prefixcount_take(&t, &p[k]) == 0,
			                 ok);
			if (ok && model[k]++ == 0)
				used++;
		} else if (model[k] > 0) {
			wn_prefixcount_release(&t, &p[k]);
			if (--model[k] == 0)
				used--;
		}
		for (int j = 0; j < KEYS; j++)
			assert_int_equal(wn_prefixcount_count(&t, &p[j]),
			                 model[j]);
	}
	assert_int_equal(t.used, used);
	wn_prefixcount_free(&t);
}

static void test_bad_args(void **state)
{
	(void)state;
	struct wn_prefixcount t;
	assert_int_equal(wn_prefixcount_init(&t, 0, 1, key(0)), WN_EINVAL);
	assert_int_equal(wn_prefixcount_init(&t, 8, 0, key(0)), WN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefixes),
	    cmocka_unit_test(test_cap_per_prefix),
	    cmocka_unit_test(test_bounded_and_churn),
	    cmocka_unit_test(test_model),
	    cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
