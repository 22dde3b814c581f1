/* The failover policy's decisions (core/failover.h), in virtual time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/failover.h"

#define AFTER 3000
#define PROBE 10000

/* Two paths (udp, tcp), both up, started at t=1000. */
static void two_paths(struct wn_failover *f)
{
	wn_failover_init(f, AFTER, PROBE, 0);
	assert_int_equal(wn_failover_add_path(f, 1, 0), 0);
	assert_int_equal(wn_failover_add_path(f, 1, 0), 1);
	wn_failover_start(f, 1000);
}

static void test_one_path_never_moves(void **state)
{
	(void)state;
	struct wn_failover f;
	wn_failover_init(&f, AFTER, PROBE, 0);
	wn_failover_add_path(&f, 1, 0);
	wn_failover_start(&f, 0);
	unsigned j = 99;
	assert_int_equal(wn_failover_check(&f, 100000, 0, 1, &j),
	                 WN_FAILOVER_STAY);
	assert_int_equal(j, 99);
}

static void test_silence_with_data_in_flight_moves(void **state)
{
	(void)state;
	struct wn_failover f;
	two_paths(&f);
	unsigned j = 99;
	/* Heard at 1000: just short of failover_ms of silence, stay. */
	assert_int_equal(wn_failover_check(&f, 3999, 1000, 1, &j),
	                 WN_FAILOVER_STAY);
	/* Silent, but nothing in flight: no evidence against the path. */
	assert_int_equal(wn_failover_check(&f, 9000, 1000, 0, &j),
	                 WN_FAILOVER_STAY);
	assert_int_equal(wn_failover_next(&f, 1000), 4000);
	assert_int_equal(wn_failover_check(&f, 4000, 1000, 1, &j),
	                 WN_FAILOVER_MOVE);
	assert_int_equal(j, 1);
	/* Nothing moved until the engine says so. */
	assert_int_equal(f.active, 0);
	wn_failover_moved(&f, 1, 4000);
	assert_int_equal(f.active, 1);
}

static void test_no_second_move_within_failover_after(void **state)
{
	(void)state;
	struct wn_failover f;
	two_paths(&f);
	wn_failover_moved(&f, 1, 4000);
	unsigned j = 99;
	/* The new path has not answered yet, but gets failover_ms. */
	assert_int_equal(wn_failover_check(&f, 6999, 1000, 1, &j),
	                 WN_FAILOVER_STAY);
	assert_int_equal(wn_failover_next(&f, 1000), 7000);
	/* Still silent: round to the first again. */
	assert_int_equal(wn_failover_check(&f, 7000, 1000, 1, &j),
	                 WN_FAILOVER_MOVE);
	assert_int_equal(j, 0);
}

static void test_down_path_moves_and_down_paths_are_skipped(void **state)
{
	(void)state;
	struct wn_failover f;
	wn_failover_init(&f, AFTER, PROBE, 0);
	wn_failover_add_path(&f, 1, 0);
	wn_failover_add_path(&f, 0, 0); /* a tcp carrier not connected */
	wn_failover_add_path(&f, 1, 0);
	wn_failover_start(&f, 1000);
	unsigned j = 99;
	/* Path 0's carrier goes down at 5000 while the server was heard at
	 * 5000: down for failover_ms is enough, silence or not. */
	wn_failover_path_state(&f, 0, 0, 5000);
	assert_int_equal(wn_failover_check(&f, 7999, 7999, 0, &j),
	                 WN_FAILOVER_STAY);
	assert_int_equal(wn_failover_next(&f, 7999), 8000);
	assert_int_equal(wn_failover_check(&f, 8000, 8000, 0, &j),
	                 WN_FAILOVER_MOVE);
	assert_int_equal(j, 2); /* path 1 is down */
	/* Every other path down: nowhere to go. */
	wn_failover_path_state(&f, 2, 0, 8000);
	assert_int_equal(wn_failover_check(&f, 20000, 0, 1, &j),
	                 WN_FAILOVER_STAY);
}

static void test_probes_the_first_path_while_away(void **state)
{
	(void)state;
	struct wn_failover f;
	two_paths(&f);
	wn_failover_moved(&f, 1, 4000);
	unsigned j = 99;
	/* Heard on path 1 all along: no move; the first probe comes
	 * probe_ms after leaving path 0. */
	assert_int_equal(wn_failover_next(&f, 13999), 14000);
	assert_int_equal(wn_failover_check(&f, 13999, 13999, 1, &j),
	                 WN_FAILOVER_STAY);
	assert_int_equal(wn_failover_check(&f, 14000, 14000, 1, &j),
	                 WN_FAILOVER_PROBE);
	assert_int_equal(j, 0);
	/* The probe counts as sent: the next one probe_ms later. */
	assert_int_equal(wn_failover_check(&f, 14001, 14001, 1, &j),
	                 WN_FAILOVER_STAY);
	assert_int_equal(wn_failover_check(&f, 24000, 24000, 1, &j),
	                 WN_FAILOVER_PROBE);
	/* Path 0 down: no probes there. */
	wn_failover_path_state(&f, 0, 0, 25000);
	assert_int_equal(wn_failover_check(&f, 40000, 40000, 1, &j),
	                 WN_FAILOVER_STAY);
	/* Up again, and the probe worked: back on path 0, no more probes. */
	wn_failover_path_state(&f, 0, 1, 41000);
	wn_failover_moved(&f, 0, 41000);
	assert_int_equal(f.active, 0);
	assert_int_equal(wn_failover_check(&f, 90000, 90000, 1, &j),
	                 WN_FAILOVER_STAY);
}

static void test_on_the_first_path_never_probes(void **state)
{
	(void)state;
	struct wn_failover f;
	two_paths(&f);
	unsigned j = 99;
	for (uint64_t t = 1000; t < 100000; t += 1000)
		assert_int_equal(wn_failover_check(&f, t, t, 1, &j),
		                 WN_FAILOVER_STAY);
}

static void test_paths_are_bounded(void **state)
{
	(void)state;
	struct wn_failover f;
	wn_failover_init(&f, AFTER, PROBE, 0);
	for (int i = 0; i < WN_FAILOVER_MAX_PATHS; i++)
		assert_int_equal(wn_failover_add_path(&f, 1, 0), i);
	assert_int_equal(wn_failover_add_path(&f, 1, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_path_never_moves),
	    cmocka_unit_test(test_silence_with_data_in_flight_moves),
	    cmocka_unit_test(test_no_second_move_within_failover_after),
	    cmocka_unit_test(test_down_path_moves_and_down_paths_are_skipped),
	    cmocka_unit_test(test_probes_the_first_path_while_away),
	    cmocka_unit_test(test_on_the_first_path_never_probes),
	    cmocka_unit_test(test_paths_are_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
