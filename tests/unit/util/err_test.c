#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <uv.h>

#include <cmocka.h>

#include "util/err.h"

static void test_every_code_has_a_distinct_string(void **state)
{
	(void)state;
	const int codes[] = {
#define C_(name, value, msg) name,
	    WN_ERRORS(C_)
#undef C_
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);
	for (size_t i = 0; i < n; i++) {
		assert_true(codes[i] <= 0);
		assert_string_not_equal(wn_strerror(codes[i]), "unknown error");
		assert_string_not_equal(wn_errname(codes[i]), "WN_E?");
		for (size_t j = 0; j < i; j++) {
			assert_int_not_equal(codes[i], codes[j]);
			assert_string_not_equal(wn_strerror(codes[i]),
			                        wn_strerror(codes[j]));
		}
	}
	assert_string_equal(wn_strerror(12345), "unknown error");
	assert_string_equal(wn_errname(WN_EINVAL), "WN_EINVAL");
}

static void test_errno_translation(void **state)
{
	(void)state;
	assert_int_equal(wn_err_from_errno(0), WN_OK);
	assert_int_equal(wn_err_from_errno(ENOMEM), WN_ENOMEM);
	assert_int_equal(wn_err_from_errno(ECONNREFUSED), WN_ECONNREFUSED);
	assert_int_equal(wn_err_from_errno(EPIPE), WN_ECONNRESET);
	assert_int_equal(wn_err_from_errno(EACCES), WN_EPERM);
	assert_int_equal(wn_err_from_errno(EXDEV), WN_EIO); /* unmapped */
}

static void test_uv_translation(void **state)
{
	(void)state;
	assert_int_equal(wn_err_from_uv(0), WN_OK);
	assert_int_equal(wn_err_from_uv(7), WN_OK);
	assert_int_equal(wn_err_from_uv(UV_EOF), WN_ECLOSED);
	assert_int_equal(wn_err_from_uv(UV_ECONNRESET), WN_ECONNRESET);
	assert_int_equal(wn_err_from_uv(UV_EADDRINUSE), WN_EADDRINUSE);
	assert_int_equal(wn_err_from_uv(UV_ETIMEDOUT), WN_ETIMEDOUT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_code_has_a_distinct_string),
	    cmocka_unit_test(test_errno_translation),
	    cmocka_unit_test(test_uv_translation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
