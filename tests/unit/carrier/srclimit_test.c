/* Tests for the per-source admission counts (srclimit.c): the prefixes
 * keys are made of, the per-source and table bounds, and that deletion
 * keeps every other entry findable (checked against a model under random
 * operations). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "carrier/srclimit.h"

static wn_srckey key4(const char *a)
{
	struct sockaddr_in s = {.sin_family = AF_INET};
	assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
	return wn_srclimit_key((struct sockaddr *)&s);
}

static wn_srckey key6(const char *a)
{
	struct sockaddr_in6 s = {.sin6_family = AF_INET6};
	assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
	return wn_srclimit_key((struct sockaddr *)&s);
}

static void test_prefixes(void **state)
{
	struct sockaddr_un_like {
		sa_family_t f;
	} other = {AF_UNIX};
	(void)state;
	assert_true(key4("10.1.2.3") == key4("10.1.2.250"));
	assert_true(key4("10.1.2.3") != key4("10.1.3.3"));
	assert_true(key4("0.0.0.1") != 0);
	assert_true(key6("2001:db8:1:2::1") == key6("2001:db8:1:2:ffff::9"));
	assert_true(key6("2001:db8:1:2::1") != key6("2001:db8:1:3::1"));
	/* An IPv4-mapped address is its IPv4 /24. */
	assert_true(key6("::ffff:10.1.2.77") == key4("10.1.2.3"));
	assert_true(key6("::1") != key4("0.0.0.1"));
	assert_true(wn_srclimit_key((struct sockaddr *)&other) == 0);
}

static void test_bounds(void **state)
{
	struct wn_srclimit t;
	(void)state;
	assert_int_equal(wn_srclimit_init(&t, 3, 2), 0);
	assert_true(wn_srclimit_take(&t, 1));
	assert_true(wn_srclimit_take(&t, 1));
	assert_false(wn_srclimit_take(&t, 1)); /* per source */
	assert_int_equal(wn_srclimit_count(&t, 1), 2);
	assert_true(wn_srclimit_take(&t, 2));
	assert_true(wn_srclimit_take(&t, 3));
	assert_false(wn_srclimit_take(&t, 4)); /* the table is full */
	assert_true(wn_srclimit_take(&t, 0));  /* key 0 is not counted */
	wn_srclimit_put(&t, 0);
	wn_srclimit_put(&t, 2);
	assert_true(wn_srclimit_take(&t, 4)); /* 2's entry went */
	wn_srclimit_put(&t, 1);
	assert_true(wn_srclimit_take(&t, 1));
	assert_int_equal(wn_srclimit_count(&t, 2), 0);
	wn_srclimit_free(&t);
}

/* Many keys in a small table, taken and put at random: the counts always
 * match a model, so backward-shift deletion loses nothing. */
static void test_model(void **state)
{
	enum { KEYS = 40, STEPS = 20000 };
	uint32_t model[KEYS] = {0};
	struct wn_srclimit t;
	uint32_t rnd = 12345;
	size_t used = 0;
	(void)state;
	assert_int_equal(wn_srclimit_init(&t, 24, 5), 0);
	for (int i = 0; i < STEPS; i++) {
		rnd = rnd * 1103515245u + 12345u;
		int k = (int)((rnd >> 8) % KEYS);
		bool take = (rnd >> 20) & 1;
		if (take) {
			bool ok = model[k] < 5 && (model[k] > 0 || used < 24);
			assert_int_equal(wn_srclimit_take(&t, (wn_srckey)k + 1),
			                 ok);
			if (ok && model[k]++ == 0)
				used++;
		} else if (model[k] > 0) {
			wn_srclimit_put(&t, (wn_srckey)k + 1);
			if (--model[k] == 0)
				used--;
		}
		for (int j = 0; j < KEYS; j++)
			assert_int_equal(
			    wn_srclimit_count(&t, (wn_srckey)j + 1), model[j]);
	}
	wn_srclimit_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefixes),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
