/* Tests for io/fdlimit: the soft fd limit is raised to the hard one, and
 * the stream listeners' share of it leaves the reserve and half the rest
 * to everything else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <sys/resource.h>

#include "io/fdlimit.h"

static void test_share(void **state)
{
	(void)state;
	assert_int_equal(wn_fdlimit_share(1024, 1), (1024 - 64) / 2);
	assert_int_equal(wn_fdlimit_share(1024, 2), (1024 - 64) / 4);
	assert_int_equal(wn_fdlimit_share(1024, 0), (1024 - 64) / 2);
	assert_int_equal(wn_fdlimit_share(10, 1), 1);
	assert_int_equal(wn_fdlimit_share(UINT64_MAX, 1), UINT32_MAX);
}

static void test_raise(void **state)
{
	struct rlimit rl;
	struct wn_log log;
	FILE *f = tmpfile();
	(void)state;
	assert_non_null(f);
	wn_log_init(&log, WN_LOG_INFO, fileno(f));
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max > 256 && rl.rlim_max != RLIM_INFINITY) {
		rl.rlim_cur = 256;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	assert_int_equal(wn_fdlimit_raise(&log), (uint64_t)rl.rlim_max);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_true(rl.rlim_cur == rl.rlim_max);
	assert_int_equal(wn_fdlimit_get(), (uint64_t)rl.rlim_max);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_raise),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
