#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/replay.h"
#include "util/err.h"

static void test_in_order(void **state)
{
	(void)state;
	struct wn_replay r;
	wn_replay_init(&r);
	for (uint64_t c = 0; c < 10000; c++) {
		assert_int_equal(wn_replay_check(&r, c), 0);
		assert_int_equal(wn_replay_check(&r, c), WN_EPROTO);
	}
	/* Everything within the window behind is remembered. */
	for (uint64_t c = 10000 - WN_REPLAY_WINDOW; c < 10000; c++)
		assert_int_equal(wn_replay_peek(&r, c), WN_EPROTO);
}

static void test_out_of_order_within_window(void **state)
{
	(void)state;
	struct wn_replay r;
	wn_replay_init(&r);
	/* Even counters first, then the odd ones behind them (all within the
	 * window of the highest). */
	for (uint64_t c = 0; c < 2 * 2000; c += 2)
		assert_int_equal(wn_replay_check(&r, c), 0);
	for (uint64_t c = 1; c < 2 * 2000; c += 2)
		assert_int_equal(wn_replay_check(&r, c), 0);
	for (uint64_t c = 0; c < 2 * 2000; c++)
		assert_int_equal(wn_replay_check(&r, c), WN_EPROTO);
	/* Descending order inside the window. */
	wn_replay_init(&r);
	assert_int_equal(wn_replay_check(&r, 3000), 0);
	for (uint64_t c = 2999; c > 3000 - 2048; c--)
		assert_int_equal(wn_replay_check(&r, c), 0);
}

static void test_duplicate_and_peek(void **state)
{
	(void)state;
	struct wn_replay r;
	wn_replay_init(&r);
	assert_int_equal(wn_replay_peek(&r, 0), 0);
	assert_int_equal(wn_replay_peek(&r, 0), 0); /* peek marks nothing */
	assert_int_equal(wn_replay_commit(&r, 0), 0);
	assert_int_equal(wn_replay_peek(&r, 0), WN_EPROTO);
	assert_int_equal(wn_replay_commit(&r, 0), WN_EPROTO);
	/* A counter peeked twice (two packets in flight) commits once. */
	assert_int_equal(wn_replay_peek(&r, 5), 0);
	assert_int_equal(wn_replay_peek(&r, 5), 0);
	assert_int_equal(wn_replay_commit(&r, 5), 0);
	assert_int_equal(wn_replay_commit(&r, 5), WN_EPROTO);
	/* A peeked future counter does not move the window. */
	assert_int_equal(wn_replay_peek(&r, 1000000), 0);
	assert_int_equal(wn_replay_check(&r, 1), 0);
	assert_int_equal(wn_replay_peek(&r, UINT64_MAX), WN_EPROTO);
	assert_int_equal(wn_replay_check(&r, UINT64_MAX), WN_EPROTO);
}

static void test_too_old(void **state)
{
	(void)state;
	struct wn_replay r;
	wn_replay_init(&r);
	uint64_t top = 100000;
	assert_int_equal(wn_replay_check(&r, top), 0);
	/* The window holds at least 2048 counters below the highest. */
	assert_true(WN_REPLAY_WINDOW >= 2048);
	assert_int_equal(wn_replay_check(&r, top - WN_REPLAY_WINDOW + 1), 0);
	assert_int_equal(wn_replay_check(&r, top - WN_REPLAY_WINDOW),
	                 WN_EPROTO);
	assert_int_equal(wn_replay_check(&r, 0), WN_EPROTO);
	assert_int_equal(wn_replay_check(&r, top - 2048), 0);
}

static void test_huge_jump(void **state)
{
	(void)state;
	struct wn_replay r;
	wn_replay_init(&r);
	for (uint64_t c = 0; c < 5000; c++)
		assert_int_equal(wn_replay_check(&r, c), 0);
	uint64_t far = UINT64_C(1) << 62;
	assert_int_equal(wn_replay_check(&r, far), 0);
	/* Nothing from before the jump survives as "seen" inside the new
	 * window: all of it is fresh, and the old counters are too old. */
	for (uint64_t c = far - WN_REPLAY_WINDOW + 1; c < far; c++)
		assert_int_equal(wn_replay_peek(&r, c), 0);
	assert_int_equal(wn_replay_check(&r, 4999), WN_EPROTO);
	assert_int_equal(wn_replay_check(&r, far), WN_EPROTO);
	assert_int_equal(wn_replay_check(&r, far - 1), 0);
	/* And the largest usable counter. */
	assert_int_equal(wn_replay_check(&r, UINT64_MAX - 1), 0);
	assert_int_equal(wn_replay_check(&r, UINT64_MAX - 1), WN_EPROTO);
	assert_int_equal(wn_replay_check(&r, UINT64_MAX - 2), 0);
}

/* Jumps that land at every offset of a word and across word boundaries
 * (the ring wraps many times), checked against a plain model. */
static void test_word_wrap_against_model(void **state)
{
	(void)state;
	struct wn_replay r;
	wn_replay_init(&r);
	enum { N = 40000 };
	uint8_t *seen = calloc(N, 1);
	assert_non_null(seen);
	uint64_t hi = 0;
	int any = 0;
	uint32_t x = 12345;
	for (int i = 0; i < 200000; i++) {
		x = x * 1103515245u + 12345u;
		uint64_t c;
		if (!any || (x >> 16) % 4 == 0)
			c = hi + (x >> 8) % 130; /* forward, up to 2 words */
		else
			c = hi - ((x >> 8) % (WN_REPLAY_WINDOW + 200) < hi
			              ? (x >> 8) % (WN_REPLAY_WINDOW + 200)
			              : hi);
		if (c >= N)
			break;
		int expect_ok =
		    !seen[c] && (!any || c > hi || hi - c < WN_REPLAY_WINDOW);
		assert_int_equal(wn_replay_check(&r, c),
		                 expect_ok ? 0 : WN_EPROTO);
		if (expect_ok) {
			seen[c] = 1;
			if (!any || c > hi)
				hi = c;
			any = 1;
		}
	}
	assert_true(hi > 10 * 64 * WN_REPLAY_WORDS / 2);
	free(seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_in_order),
	    cmocka_unit_test(test_out_of_order_within_window),
	    cmocka_unit_test(test_duplicate_and_peek),
	    cmocka_unit_test(test_too_old),
	    cmocka_unit_test(test_huge_jump),
	    cmocka_unit_test(test_word_wrap_against_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
