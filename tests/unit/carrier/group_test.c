/* Tests for the pure decisions of a stream carrier's connection group:
 * which connection a batch goes on, when connections rotate, and the
 * keepalive and silence rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "carrier/group.h"

#define NONE WN_SGROUP_NONE
#define LOW 1000

static void test_pick_keeps_the_preferred(void **state)
{
	size_t q[4] = {500, 0, 0, 0};
	(void)state;
	/* Below the low mark the preferred keeps the batches, even when
	 * others are emptier: packets stay in order. */
	assert_int_equal(wn_sgroup_pick(q, 4, 0, LOW), 0);
	q[0] = LOW;
	assert_int_equal(wn_sgroup_pick(q, 4, 0, LOW), 0);
}

static void test_pick_spills_to_the_least_queued(void **state)
{
	size_t q[4] = {LOW + 1, 700, 300, 900};
	(void)state;
	assert_int_equal(wn_sgroup_pick(q, 4, 0, LOW), 2);
	/* The preferred wins a tie. */
	q[0] = 5000;
	q[2] = 5000;
	q[1] = 5000;
	q[3] = 5000;
	assert_int_equal(wn_sgroup_pick(q, 4, 3, LOW), 3);
	/* Without a preference: the lowest index among the least queued. */
	assert_int_equal(wn_sgroup_pick(q, 4, 4, LOW), 0);
	q[1] = 4999;
	assert_int_equal(wn_sgroup_pick(q, 4, 4, LOW), 1);
}

static void test_pick_skips_those_that_cannot_send(void **state)
{
	size_t q[3] = {NONE, NONE, 7000};
	(void)state;
	/* The preferred is down: another takes it. */
	assert_int_equal(wn_sgroup_pick(q, 3, 0, LOW), 2);
	assert_int_equal(wn_sgroup_pick(q, 3, 3, LOW), 2);
	q[2] = NONE;
	assert_int_equal(wn_sgroup_pick(q, 3, 2, LOW), 3);
	assert_int_equal(wn_sgroup_pick(q, 0, 0, LOW), 0);
}

static void test_rotation_due(void **state)
{
	(void)state;
	assert_false(wn_sgroup_rotate_due(1u << 30, 1u << 30, 0, 0));
	assert_false(wn_sgroup_rotate_due(999, 0, 1000, 0));
	assert_true(wn_sgroup_rotate_due(1000, 0, 1000, 0));
	assert_false(wn_sgroup_rotate_due(5, 499, 0, 500));
	assert_true(wn_sgroup_rotate_due(5, 500, 0, 500));
	assert_true(wn_sgroup_rotate_due(5, 500, 1000, 500));
}

/* Four connections born together with rotate-after 4 s: one rotation at
 * a time, at least 1 s apart, so they do not all go at once. */
static void test_rotation_staggered(void **state)
{
	(void)state;
	assert_true(wn_sgroup_rotate_may_start(4000, false, false, 0, 4000, 4));
	assert_false(wn_sgroup_rotate_may_start(4000, true, false, 0, 4000, 4));
	assert_false(
	    wn_sgroup_rotate_may_start(4999, false, true, 4000, 4000, 4));
	assert_true(
	    wn_sgroup_rotate_may_start(5000, false, true, 4000, 4000, 4));
	assert_false(
	    wn_sgroup_rotate_may_start(9999, true, true, 4000, 4000, 4));
	/* One connection, or rotation by bytes only: no gap needed. */
	assert_true(
	    wn_sgroup_rotate_may_start(4001, false, true, 4000, 4000, 1));
	assert_true(wn_sgroup_rotate_may_start(4001, false, true, 4000, 0, 4));
	/* A clock that has not moved past the last start waits. */
	assert_false(
	    wn_sgroup_rotate_may_start(3000, false, true, 4000, 4000, 4));
}

static void test_keepalive_rules(void **state)
{
	(void)state;
	/* The client pings what sent nothing for ping_ms. */
	assert_false(wn_sgroup_ping_due(2999, 1000, 2000));
	assert_true(wn_sgroup_ping_due(3000, 1000, 2000));
	/* The server answers what it heard and has not replied to. */
	assert_false(wn_sgroup_ack_due(5000, 1000, 1000, 1000)); /* quiet */
	assert_false(wn_sgroup_ack_due(5000, 1000, 2000, 1000)); /* replied */
	assert_false(wn_sgroup_ack_due(2500, 2400, 2000, 1000)); /* soon */
	assert_true(wn_sgroup_ack_due(3000, 2400, 2000, 1000));
	/* Silence kills a member only when a sibling lives. */
	assert_false(wn_sgroup_silent(9000, 1000, 8000, 2));
	assert_true(wn_sgroup_silent(9001, 1000, 8000, 2));
	assert_false(wn_sgroup_silent(90000, 1000, 8000, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pick_keeps_the_preferred),
	    cmocka_unit_test(test_pick_spills_to_the_least_queued),
	    cmocka_unit_test(test_pick_skips_those_that_cannot_send),
	    cmocka_unit_test(test_rotation_due),
	    cmocka_unit_test(test_rotation_staggered),
	    cmocka_unit_test(test_keepalive_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
