#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/cidmap.h"
#include "util/err.h"

static void test_add_get_del(void **state)
{
	(void)state;
	struct wn_cidmap m;
	assert_int_equal(wn_cidmap_init(&m), 0);
	int a, b;
	const uint8_t c1[] = {1, 2, 3, 4, 5, 6, 7, 8};
	const uint8_t c2[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	assert_int_equal(wn_cidmap_add(&m, c1, sizeof(c1), &a), 0);
	assert_int_equal(wn_cidmap_add(&m, c2, sizeof(c2), &b), 0);
	assert_int_equal(wn_cidmap_add(&m, c1, sizeof(c1), &b), WN_EEXIST);
	assert_ptr_equal(wn_cidmap_get(&m, c1, sizeof(c1)), &a);
	assert_ptr_equal(wn_cidmap_get(&m, c2, sizeof(c2)), &b);
	/* A prefix is a different key. */
	assert_null(wn_cidmap_get(&m, c2, 7));
	assert_int_equal(wn_cidmap_add(&m, c1, 0, &a), WN_EINVAL);
	assert_int_equal(wn_cidmap_add(&m, c1, 21, &a), WN_EINVAL);
	assert_ptr_equal(wn_cidmap_del(&m, c1, sizeof(c1)), &a);
	assert_null(wn_cidmap_get(&m, c1, sizeof(c1)));
	assert_null(wn_cidmap_del(&m, c1, sizeof(c1)));
	assert_int_equal(m.count, 1);
	wn_cidmap_free(&m);
}

static void test_many_keys_grow_and_del_value(void **state)
{
	(void)state;
	struct wn_cidmap m;
	assert_int_equal(wn_cidmap_init(&m), 0);
	int vals[4];
	for (uint32_t i = 0; i < 5000; i++) {
		uint8_t cid[18] = {0};
		memcpy(cid, &i, sizeof(i));
		assert_int_equal(wn_cidmap_add(&m, cid, 18, &vals[i % 4]), 0);
	}
	assert_int_equal(m.count, 5000);
	assert_true(m.nbuckets >= 4096);
	for (uint32_t i = 0; i < 5000; i++) {
		uint8_t cid[18] = {0};
		memcpy(cid, &i, sizeof(i));
		assert_ptr_equal(wn_cidmap_get(&m, cid, 18), &vals[i % 4]);
	}
	assert_int_equal(wn_cidmap_del_value(&m, &vals[1]), 1250);
	assert_int_equal(m.count, 3750);
	uint32_t one = 1, two = 2;
	uint8_t cid[18] = {0};
	memcpy(cid, &one, 4);
	assert_null(wn_cidmap_get(&m, cid, 18));
	memcpy(cid, &two, 4);
	assert_ptr_equal(wn_cidmap_get(&m, cid, 18), &vals[2]);
	wn_cidmap_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_get_del),
	    cmocka_unit_test(test_many_keys_grow_and_del_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
