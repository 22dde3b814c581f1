/* Reed-Solomon as klauspost/reedsolomon builds it: the matrix for 2+1
 * worked by hand, the systematic top, and every erasure pattern within
 * reach rebuilt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rs.h"
#include "util/err.h"

static void test_field(void **state)
{
	(void)state;
	struct wn_rs *rs;
	assert_int_equal(wn_rs_new(2, 1, &rs), 0);
	/* 0x11D: 2 * 0x80 = 0x100 ^ 0x11D = 0x1D. */
	assert_int_equal(wn_rs_mul(rs, 2, 0x80), 0x1D);
	assert_int_equal(wn_rs_mul(rs, 3, 7), 9);
	assert_int_equal(wn_rs_mul(rs, 0, 7), 0);
	/* Vandermonde rows [1 0] [1 1] [1 2]; the top's inverse is itself
	 * (over GF(2^8), 1 + 1 = 0), so the parity row is [1 2] x
	 * [[1 0] [1 1]] = [3 2]. */
	assert_int_equal(wn_rs_coef(rs, 0, 0), 1);
	assert_int_equal(wn_rs_coef(rs, 0, 1), 0);
	assert_int_equal(wn_rs_coef(rs, 1, 0), 0);
	assert_int_equal(wn_rs_coef(rs, 1, 1), 1);
	assert_int_equal(wn_rs_coef(rs, 2, 0), 3);
	assert_int_equal(wn_rs_coef(rs, 2, 1), 2);
	const uint8_t d0[2] = {1, 0x80}, d1[2] = {1, 2};
	const uint8_t *data[2] = {d0, d1};
	uint8_t p0[2];
	uint8_t *par[1] = {p0};
	wn_rs_encode(rs, data, par, 2);
	assert_int_equal(p0[0], 3 ^ 2);
	assert_int_equal(p0[1], wn_rs_mul(rs, 3, 0x80) ^ wn_rs_mul(rs, 2, 2));
	wn_rs_free(rs);
	assert_int_equal(wn_rs_new(0, 1, &rs), WN_EINVAL);
	assert_int_equal(wn_rs_new(200, 56, &rs), WN_EINVAL);
}

/* kcptun's default 10+3: every pattern of up to three lost shards is
 * rebuilt; four lost is refused. */
static void test_10_3_erasures(void **state)
{
	(void)state;
	enum { D = 10, P = 3, T = D + P, L = 97 };
	struct wn_rs *rs;
	assert_int_equal(wn_rs_new(D, P, &rs), 0);
	for (unsigned r = 0; r < D; r++)
		for (unsigned c = 0; c < D; c++)
			assert_int_equal(wn_rs_coef(rs, r, c), r == c);
	static uint8_t orig[T][L], work[T][L];
	uint32_t x = 7;
	for (int i = 0; i < D; i++)
		for (int k = 0; k < L; k++) {
			x = x * 1103515245u + 12345u;
			orig[i][k] = (uint8_t)(x >> 16);
		}
	const uint8_t *data[D];
	uint8_t *par[P];
	for (int i = 0; i < D; i++)
		data[i] = orig[i];
	for (int j = 0; j < P; j++)
		par[j] = orig[D + j];
	wn_rs_encode(rs, data, par, L);
	unsigned patterns = 0;
	for (unsigned mask = 0; mask < (1u << T); mask++) {
		int lost = __builtin_popcount(mask);
		if (lost == 0 || lost > P + 1)
			continue;
		uint8_t present[T];
		uint8_t *sh[T];
		for (int i = 0; i < T; i++) {
			present[i] = !(mask & (1u << i));
			if (present[i])
				memcpy(work[i], orig[i], L);
			else
				memset(work[i], 0xEE, L);
			sh[i] = work[i];
		}
		int rc = wn_rs_reconstruct(rs, NULL, sh, present, L);
		if (lost > P) {
			assert_int_equal(rc, WN_EAGAIN);
			continue;
		}
		assert_int_equal(rc, 0);
		for (int i = 0; i < D; i++)
			assert_memory_equal(work[i], orig[i], L);
		patterns++;
	}
	assert_int_equal(patterns, 13 + 78 + 286);
	wn_rs_free(rs);
}

/* Parity built one shard at a time (and shorter shards zero-padded by
 * leaving them short) equals wn_rs_encode over the padded shards. */
static void test_encode_add(void **state)
{
	(void)state;
	enum { D = 5, P = 2, L = 40 };
	struct wn_rs *rs;
	assert_int_equal(wn_rs_new(D, P, &rs), 0);
	static uint8_t d[D][L], whole[P][L], inc[P][L];
	size_t len[D] = {40, 3, 17, 0, 39};
	for (int i = 0; i < D; i++)
		for (size_t k = 0; k < len[i]; k++)
			d[i][k] = (uint8_t)(i * 37 + k * 11 + 1);
	const uint8_t *data[D];
	uint8_t *pw[P], *pi[P];
	for (int i = 0; i < D; i++)
		data[i] = d[i];
	for (int j = 0; j < P; j++) {
		pw[j] = whole[j];
		pi[j] = inc[j];
	}
	wn_rs_encode(rs, data, pw, L);
	memset(inc, 0, sizeof(inc));
	for (unsigned i = 0; i < D; i++)
		wn_rs_encode_add(rs, i, d[i], pi, P, len[i]);
	assert_memory_equal(inc, whole, sizeof(whole));
	/* nparity limits the shards touched. */
	memset(inc, 0, sizeof(inc));
	wn_rs_encode_add(rs, 0, d[0], pi, 1, L);
	for (int k = 0; k < L; k++)
		assert_int_equal(inc[1][k], 0);
	wn_rs_free(rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_field),
	    cmocka_unit_test(test_10_3_erasures),
	    cmocka_unit_test(test_encode_add),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
