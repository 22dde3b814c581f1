/* Tests for util/bitset.h: bits past the first word (the config key sets
 * outgrow 64 keys) land in their own word and leave every other bit
 * alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/bitset.h"

#define NBITS 200

static void test_words(void **state)
{
	(void)state;
	assert_int_equal(WN_BITSET_WORDS(1), 1);
	assert_int_equal(WN_BITSET_WORDS(64), 1);
	assert_int_equal(WN_BITSET_WORDS(65), 2);
	assert_int_equal(WN_BITSET_WORDS(NBITS), 4);
}

static void test_set_test_clear_beyond_64(void **state)
{
	static const size_t bits[] = {0, 1, 63, 64, 65, 127, 128, 199};
	uint64_t w[WN_BITSET_WORDS(NBITS)];
	size_t i, b;
	(void)state;

	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		memset(w, 0, sizeof(w));
		wn_bitset_set(w, bits[i]);
		/* Exactly that bit is set, in its own word. */
		for (b = 0; b < NBITS; b++)
			if (wn_bitset_test(w, b) != (b == bits[i]))
				fail_msg("set %zu: bit %zu is %d", bits[i], b,
				         wn_bitset_test(w, b));
		assert_int_equal(w[bits[i] / 64], UINT64_C(1)
		                                      << (bits[i] % 64));
		wn_bitset_clear(w, bits[i]);
		for (b = 0; b < WN_BITSET_WORDS(NBITS); b++)
			assert_int_equal(w[b], 0);
	}
}

static void test_all_bits(void **state)
{
	uint64_t w[WN_BITSET_WORDS(NBITS)];
	size_t b;
	(void)state;

	memset(w, 0, sizeof(w));
	for (b = 0; b < NBITS; b += 3)
		wn_bitset_set(w, b);
	for (b = 0; b < NBITS; b++)
		assert_int_equal(wn_bitset_test(w, b), b % 3 == 0);
	/* Clearing one bit leaves its neighbours. */
	wn_bitset_clear(w, 99);
	assert_false(wn_bitset_test(w, 99));
	assert_true(wn_bitset_test(w, 96));
	assert_true(wn_bitset_test(w, 102));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_words),
	    cmocka_unit_test(test_set_test_clear_beyond_64),
	    cmocka_unit_test(test_all_bits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
