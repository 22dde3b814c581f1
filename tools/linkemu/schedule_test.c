/* Tests of the link emulator's packet pool and delivery schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"
#include "schedule.h"
#include "util/err.h"

static void test_order_and_ties(void **state)
{
	struct le_sched s;
	struct le_rng rng;
	const uint32_t n = 5000;
	uint64_t prev_at = 0;
	uint32_t prev_id = 0;

	assert_int_equal(le_sched_init(&s, 64, n, 16), WN_OK);
	le_rng_seed(&rng, 1);
	assert_int_equal(le_sched_next(&s), UINT64_MAX);
	/* Random times from a small range, so many ties; each packet's
	 * buffer holds its scheduling index. */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot;
		uint8_t *buf = le_sched_peek(&s, 0, &slot);

		assert_non_null(buf);
		memcpy(buf, &i, sizeof(i));
		le_sched_push(&s, slot, sizeof(i), false,
		              1000 + le_rng_upto(&rng, 50));
	}
	assert_null(le_sched_peek(&s, 0, &(uint32_t){0}));
	assert_int_equal(s.pending[0], n);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t at = le_sched_next(&s);
		uint32_t slot = le_sched_pop(&s), id;

		memcpy(&id, le_sched_data(&s, slot), sizeof(id));
		assert_true(at >= prev_at);
		/* Equal times leave in scheduling order. */
		if (i > 0 && at == prev_at)
			assert_true(id > prev_id);
		assert_int_equal(s.slot_len[slot], sizeof(id));
		prev_at = at;
		prev_id = id;
		le_sched_release(&s, slot);
	}
	assert_int_equal(le_sched_next(&s), UINT64_MAX);
	assert_int_equal(s.pending[0], 0);
	assert_int_equal(s.max_pending[0], n);
	le_sched_free(&s);
}

static void test_directions_have_own_pools(void **state)
{
	struct le_sched s;
	uint32_t slot, a[4], b;

	assert_int_equal(le_sched_init(&s, 128, 4, 2), WN_OK);
	/* Peeking does not take a slot. */
	assert_non_null(le_sched_peek(&s, 0, &a[0]));
	assert_non_null(le_sched_peek(&s, 0, &slot));
	assert_int_equal(slot, a[0]);
	for (int i = 0; i < 4; i++) {
		assert_non_null(le_sched_peek(&s, 0, &a[i]));
		assert_int_equal(le_sched_dir(&s, a[i]), 0);
		le_sched_push(&s, a[i], 10, i == 2, 100 - (uint64_t)i);
	}
	/* a2b is exhausted, b2a is not. */
	assert_null(le_sched_peek(&s, 0, &slot));
	assert_non_null(le_sched_peek(&s, 1, &b));
	assert_int_equal(le_sched_dir(&s, b), 1);
	le_sched_push(&s, b, 20, false, 50);
	assert_int_equal(le_sched_next(&s), 50);
	assert_int_equal(le_sched_pop(&s), b);
	le_sched_release(&s, b);
	assert_int_equal(le_sched_pop(&s), a[3]);
	assert_int_equal(le_sched_pop(&s), a[2]);
	assert_true(s.slot_dup[a[2]]);
	le_sched_release(&s, a[2]);
	/* Released slots are reused first. */
	assert_non_null(le_sched_peek(&s, 0, &slot));
	assert_int_equal(slot, a[2]);
	le_sched_release(&s, a[3]);
	le_sched_free(&s);
	le_sched_free(&s); /* idempotent on a freed scheduler */
}

static void test_default_slots(void **state)
{
	struct le_cfg cfg;
	struct le_dir dir;
	char err[128];

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(le_dir_init(&dir, &cfg, 1), WN_OK);
	/* Unlimited, no delay: 10 ms at 10 Gbit/s / 512 B. */
	assert_int_equal(le_sched_default_slots(&dir), 24414);
	assert_int_equal(le_cfg_parse(&cfg, "rate=20mbit", err, sizeof(err)),
	                 WN_OK);
	assert_int_equal(le_dir_init(&dir, &cfg, 1), WN_OK);
	assert_int_equal(le_sched_default_slots(&dir), LE_POOL_MIN);
	assert_int_equal(
	    le_cfg_parse(&cfg, "rate=0,delay=1s", err, sizeof(err)), WN_OK);
	assert_int_equal(le_dir_init(&dir, &cfg, 1), WN_OK);
	assert_int_equal(le_sched_default_slots(&dir), LE_POOL_MAX);
	/* 1 Gbit/s, 25 ms + 10 ms slack, default queue 12.5 MB:
	 * (12500000 + 4375000) / 512. */
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(
	    le_cfg_parse(&cfg, "rate=1gbit,delay=25ms", err, sizeof(err)),
	    WN_OK);
	assert_int_equal(le_dir_init(&dir, &cfg, 1), WN_OK);
	assert_int_equal(le_sched_default_slots(&dir), 32958);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_ties),
	    cmocka_unit_test(test_directions_have_own_pools),
	    cmocka_unit_test(test_default_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
