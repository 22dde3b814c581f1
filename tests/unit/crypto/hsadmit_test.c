/* Handshake admission: the global budget and its load mark, replays
 * recognised for free, per-source budgets for proven addresses, and a
 * bounded source table. Virtual time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/hsadmit.h"

#define T0 1000000

static struct wn_hsadmit *mk(void)
{
	static const uint8_t hkey[16] = {1, 2, 3};
	struct wn_hsadmit *a = malloc(sizeof(*a));
	assert_non_null(a);
	wn_hsadmit_init(a, hkey, T0);
	return a;
}

/* A distinct mac1 for each n. */
static const uint8_t *mac(uint32_t n)
{
	static uint8_t m[WN_PROTECT_MAC_LEN];
	memset(m, 0x5a, sizeof(m));
	memcpy(m, &n, sizeof(n));
	return m;
}

static const uint8_t src_a[5] = {2, 10, 0, 0, 1};
static const uint8_t src_b[5] = {2, 10, 0, 0, 2};

/* Without load, initiations without mac2 spend the global budget down to
 * the load mark; below it they get cookies, and the rate refills it. */
static void test_global_budget_and_load(void **state)
{
	(void)state;
	struct wn_hsadmit *a = mk();
	uint32_t n = 0;
	assert_false(wn_hsadmit_under_load(a, T0));
	for (int i = 0; i <= WN_HSADMIT_BURST - WN_HSADMIT_LOAD_MARK; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(n++), src_a, 5, false, T0),
		    WN_HSADMIT_GO);
	assert_true(wn_hsadmit_under_load(a, T0));
	assert_int_equal(wn_hsadmit_check(a, mac(n++), src_a, 5, false, T0),
	                 WN_HSADMIT_COOKIE);
	/* Cookies are free: a thousand of them change nothing. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(n++), src_b, 5, false, T0),
		    WN_HSADMIT_COOKIE);
	/* Ten tokens later (50 ms at 200/s) the load is over. */
	assert_int_equal(
	    wn_hsadmit_check(a, mac(n++), src_a, 5, false, T0 + 50),
	    WN_HSADMIT_GO);
	free(a);
}

/* The same bytes twice cost nothing the second time, whatever path they
 * came by: a replay spends neither the global budget nor a source's. */
static void test_replays_are_free(void **state)
{
	(void)state;
	struct wn_hsadmit *a = mk();
	assert_int_equal(wn_hsadmit_check(a, mac(1), src_a, 5, false, T0),
	                 WN_HSADMIT_GO);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(1), src_b, 5, false, T0),
		    WN_HSADMIT_REPLAY);
	assert_false(wn_hsadmit_under_load(a, T0));
	/* A captured initiation with a valid mac2, replayed from its
	 * sender's (spoofed) address: the sender's budget stays whole. */
	assert_int_equal(wn_hsadmit_check(a, mac(2), src_a, 5, true, T0),
	                 WN_HSADMIT_GO);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(2), src_a, 5, true, T0),
		    WN_HSADMIT_REPLAY);
	for (uint32_t i = 0; i < WN_HSADMIT_SRC_BURST - 1; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(100 + i), src_a, 5, true, T0),
		    WN_HSADMIT_GO);
	assert_int_equal(wn_hsadmit_check(a, mac(99), src_a, 5, true, T0),
	                 WN_HSADMIT_LIMIT);
	assert_int_equal(a->seen_hits, 20000);
	free(a);
}

/* Proven sources have budgets of their own: one that floods runs out,
 * another does not notice, and neither touches the global budget, even
 * under load. */
static void test_per_source_budgets(void **state)
{
	(void)state;
	struct wn_hsadmit *a = mk();
	uint32_t n = 0;
	/* Put the server under load. */
	while (!wn_hsadmit_under_load(a, T0))
		wn_hsadmit_check(a, mac(n++), src_a, 5, false, T0);
	for (int i = 0; i < WN_HSADMIT_SRC_BURST; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(n++), src_a, 5, true, T0),
		    WN_HSADMIT_GO);
	assert_int_equal(wn_hsadmit_check(a, mac(n++), src_a, 5, true, T0),
	                 WN_HSADMIT_LIMIT);
	assert_int_equal(wn_hsadmit_check(a, mac(n++), src_b, 5, true, T0),
	                 WN_HSADMIT_GO);
	/* The flooding source refills at its own rate: one per 100 ms. */
	assert_int_equal(wn_hsadmit_check(a, mac(n++), src_a, 5, true, T0 + 50),
	                 WN_HSADMIT_LIMIT);
	assert_int_equal(
	    wn_hsadmit_check(a, mac(n++), src_a, 5, true, T0 + 100),
	    WN_HSADMIT_GO);
	/* Ports are not part of the key (the engine leaves them out); a
	 * key that is too long is refused. */
	uint8_t big[WN_HSADMIT_SRC_KEY_MAX + 1] = {0};
	assert_int_equal(
	    wn_hsadmit_check(a, mac(n++), big, sizeof(big), true, T0),
	    WN_HSADMIT_LIMIT);
	free(a);
}

/* Any number of sources fit in the fixed table: old ones make room, and
 * a source seen again recently keeps its (spent) bucket. */
static void test_source_table_bounded(void **state)
{
	(void)state;
	struct wn_hsadmit *a = mk();
	uint32_t n = 0;
	uint8_t s[5] = {2};
	for (uint32_t i = 0; i < 20 * WN_HSADMIT_SOURCES; i++) {
		memcpy(s + 1, &i, 4);
		assert_int_equal(
		    wn_hsadmit_check(a, mac(n++), s, 5, true, T0 + i),
		    WN_HSADMIT_GO);
	}
	uint64_t t = T0 + 20 * WN_HSADMIT_SOURCES;
	for (int i = 0; i < WN_HSADMIT_SRC_BURST; i++)
		wn_hsadmit_check(a, mac(n++), src_a, 5, true, t);
	assert_int_equal(wn_hsadmit_check(a, mac(n++), src_a, 5, true, t),
	                 WN_HSADMIT_LIMIT);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_global_budget_and_load),
	    cmocka_unit_test(test_replays_are_free),
	    cmocka_unit_test(test_per_source_budgets),
	    cmocka_unit_test(test_source_table_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
