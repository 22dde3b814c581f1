#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/dgfrag.h"
#include "util/err.h"

struct lost {
	unsigned n;
	uint64_t last;
};

static void on_lost(void *ctx, uint64_t flow)
{
	struct lost *l = ctx;
	l->n++;
	l->last = flow;
}

static struct wn_dgfrag F;

static void test_two_halves_in_either_order(void **state)
{
	(void)state;
	struct lost l = {0};
	uint8_t out[2 * WN_DGFRAG_PART_MAX], meta = 0;
	wn_dgfrag_init(&F, 0, on_lost, &l);
	assert_int_equal(wn_dgfrag_add(&F, 0, 5, 1, 0, 0x10,
	                               (const uint8_t *)"ab", 2, out,
	                               sizeof(out), &meta),
	                 0);
	assert_int_equal(wn_dgfrag_held(&F), 1);
	/* A duplicate of a held half changes nothing. */
	assert_int_equal(wn_dgfrag_add(&F, 1, 5, 1, 0, 0x10,
	                               (const uint8_t *)"zz", 2, out,
	                               sizeof(out), &meta),
	                 0);
	/* Another flow's datagram of the same id is another datagram. */
	assert_int_equal(wn_dgfrag_add(&F, 1, 6, 1, 1, 0, (const uint8_t *)"q",
	                               1, out, sizeof(out), &meta),
	                 0);
	assert_int_equal(wn_dgfrag_add(&F, 2, 5, 1, 1, 0,
	                               (const uint8_t *)"cde", 3, out,
	                               sizeof(out), &meta),
	                 5);
	assert_memory_equal(out, "abcde", 5);
	assert_int_equal(meta, 0x10);
	/* Index 1 first: index 0's bytes still come first, with its meta. */
	assert_int_equal(wn_dgfrag_add(&F, 3, 6, 1, 0, 0x20,
	                               (const uint8_t *)"p", 1, out,
	                               sizeof(out), &meta),
	                 2);
	assert_memory_equal(out, "pq", 2);
	assert_int_equal(meta, 0x20);
	assert_int_equal(wn_dgfrag_held(&F), 0);
	assert_int_equal(l.n, 0);
}

static void test_timeout_drops_when_next_used(void **state)
{
	(void)state;
	struct lost l = {0};
	uint8_t out[2 * WN_DGFRAG_PART_MAX], meta;
	wn_dgfrag_init(&F, 100, on_lost, &l);
	assert_int_equal(wn_dgfrag_add(&F, 1000, 9, 4, 0, 0,
	                               (const uint8_t *)"a", 1, out,
	                               sizeof(out), &meta),
	                 0);
	wn_dgfrag_expire(&F, 1099);
	assert_int_equal(wn_dgfrag_held(&F), 1);
	/* The other half, too late: the first was dropped (lost), this one
	 * waits alone. */
	assert_int_equal(wn_dgfrag_add(&F, 1100, 9, 4, 1, 0,
	                               (const uint8_t *)"b", 1, out,
	                               sizeof(out), &meta),
	                 0);
	assert_int_equal(l.n, 1);
	assert_true(l.last == 9);
	assert_int_equal(wn_dgfrag_held(&F), 1);
	wn_dgfrag_expire(&F, 1200);
	assert_int_equal(l.n, 2);
	assert_int_equal(wn_dgfrag_held(&F), 0);
	assert_true(F.lost_count == 2);
}

static void test_flood_of_first_halves_is_bounded(void **state)
{
	(void)state;
	struct lost l = {0};
	uint8_t out[2 * WN_DGFRAG_PART_MAX], meta;
	uint8_t big[WN_DGFRAG_PART_MAX];
	memset(big, 7, sizeof(big));
	wn_dgfrag_init(&F, 0, on_lost, &l);
	for (unsigned i = 0; i < 10000; i++)
		assert_int_equal(wn_dgfrag_add(&F, i / 10, 1, (uint16_t)i, 0, 0,
		                               big, sizeof(big), out,
		                               sizeof(out), &meta),
		                 0);
	assert_int_equal(wn_dgfrag_held(&F), WN_DGFRAG_SLOTS);
	assert_int_equal(l.n, 10000 - WN_DGFRAG_SLOTS);
	/* The newest survive: the last one's other half completes it. */
	assert_int_equal(wn_dgfrag_add(&F, 1000, 1, 9999, 1, 0, big, 10, out,
	                               sizeof(out), &meta),
	                 (int)sizeof(big) + 10);
	/* The oldest went first. */
	assert_int_equal(wn_dgfrag_add(&F, 1000, 1, 0, 1, 0, big, 10, out,
	                               sizeof(out), &meta),
	                 0);
}

static void test_bounds(void **state)
{
	(void)state;
	uint8_t out[8], meta;
	uint8_t big[WN_DGFRAG_PART_MAX + 1] = {0};
	wn_dgfrag_init(&F, 0, NULL, NULL);
	assert_int_equal(wn_dgfrag_add(&F, 0, 1, 1, 0, 0, big, sizeof(big), out,
	                               sizeof(out), &meta),
	                 WN_EMSGSIZE);
	assert_int_equal(
	    wn_dgfrag_add(&F, 0, 1, 1, 2, 0, big, 1, out, sizeof(out), &meta),
	    WN_EINVAL);
	/* A whole too large for out is dropped, not written. */
	assert_int_equal(
	    wn_dgfrag_add(&F, 0, 1, 1, 0, 0, big, 5, out, sizeof(out), &meta),
	    0);
	assert_int_equal(
	    wn_dgfrag_add(&F, 0, 1, 1, 1, 0, big, 5, out, sizeof(out), &meta),
	    WN_EMSGSIZE);
	assert_int_equal(wn_dgfrag_held(&F), 0);
	/* Dropping a flow forgets its halves without reporting them. */
	assert_int_equal(
	    wn_dgfrag_add(&F, 0, 3, 1, 0, 0, big, 1, out, sizeof(out), &meta),
	    0);
	assert_int_equal(
	    wn_dgfrag_add(&F, 0, 4, 1, 0, 0, big, 1, out, sizeof(out), &meta),
	    0);
	wn_dgfrag_drop_flow(&F, 3);
	assert_int_equal(wn_dgfrag_held(&F), 1);
	wn_dgfrag_clear(&F);
	assert_int_equal(wn_dgfrag_held(&F), 0);
	assert_true(F.lost_count == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_two_halves_in_either_order),
	    cmocka_unit_test(test_timeout_drops_when_next_used),
	    cmocka_unit_test(test_flood_of_first_halves_is_bounded),
	    cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
