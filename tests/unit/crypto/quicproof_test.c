#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/key.h"
#include "crypto/quicproof.h"
#include "util/err.h"

#define NOW 1700000000u
#define V1 0x00000001u

static const uint8_t dcid[18] = {1,  2,  3,  4,  5,  6,  7,  8,  9,
                                 10, 11, 12, 13, 14, 15, 16, 17, 18};

static void keys(uint8_t k[WN_QPROOF_KEY_LEN], uint8_t other[WN_QPROOF_KEY_LEN])
{
	uint8_t pk[WN_KEY_LEN];
	memset(pk, 7, sizeof(pk));
	wn_qproof_key(k, pk);
	pk[0] ^= 1;
	wn_qproof_key(other, pk);
}

static void test_round_trip(void **state)
{
	(void)state;
	uint8_t k[32], o[32], t[WN_QPROOF_LEN];
	keys(k, o);
	wn_qproof_make(t, k, V1, dcid, sizeof(dcid), NOW);
	assert_int_equal(
	    wn_qproof_check(k, t, sizeof(t), V1, dcid, sizeof(dcid), NOW), 0);
	/* The stamp is the first four bytes, big-endian. */
	assert_int_equal(t[0], (NOW >> 24) & 0xff);
	assert_int_equal(t[3], NOW & 0xff);
}

/* Another server's key, another DCID, another version, a flipped bit
 * anywhere, a wrong length: not a proof. */
static void test_binds_everything(void **state)
{
	(void)state;
	uint8_t k[32], o[32], t[WN_QPROOF_LEN];
	keys(k, o);
	wn_qproof_make(t, k, V1, dcid, sizeof(dcid), NOW);
	assert_int_equal(
	    wn_qproof_check(o, t, sizeof(t), V1, dcid, sizeof(dcid), NOW),
	    WN_ECRYPTO);
	uint8_t d2[18];
	memcpy(d2, dcid, sizeof(d2));
	d2[17] ^= 0x80;
	assert_int_equal(wn_qproof_check(k, t, sizeof(t), V1, d2, 18, NOW),
	                 WN_ECRYPTO);
	assert_int_equal(wn_qproof_check(k, t, sizeof(t), V1, dcid, 17, NOW),
	                 WN_ECRYPTO);
	assert_int_equal(
	    wn_qproof_check(k, t, sizeof(t), 2, dcid, sizeof(dcid), NOW),
	    WN_ECRYPTO);
	for (size_t i = 0; i < sizeof(t) * 8; i++) {
		t[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(wn_qproof_check(k, t, sizeof(t), V1, dcid,
		                                 sizeof(dcid), NOW),
		                 WN_ECRYPTO);
		t[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	assert_int_equal(
	    wn_qproof_check(k, t, sizeof(t) - 1, V1, dcid, sizeof(dcid), NOW),
	    WN_ECRYPTO);
	assert_int_equal(wn_qproof_check(k, NULL, 0, V1, dcid, 18, NOW),
	                 WN_ECRYPTO);
}

static void test_window(void **state)
{
	(void)state;
	uint8_t k[32], o[32], t[WN_QPROOF_LEN];
	keys(k, o);
	wn_qproof_make(t, k, V1, dcid, sizeof(dcid), NOW);
	uint64_t w = WN_QPROOF_WINDOW_S;
	assert_int_equal(
	    wn_qproof_check(k, t, sizeof(t), V1, dcid, 18, NOW + w), 0);
	assert_int_equal(
	    wn_qproof_check(k, t, sizeof(t), V1, dcid, 18, NOW - w), 0);
	assert_int_equal(
	    wn_qproof_check(k, t, sizeof(t), V1, dcid, 18, NOW + w + 1),
	    WN_ETIMEDOUT);
	assert_int_equal(
	    wn_qproof_check(k, t, sizeof(t), V1, dcid, 18, NOW - w - 1),
	    WN_ETIMEDOUT);
	/* Across the 32-bit wrap of the stamp. */
	wn_qproof_make(t, k, V1, dcid, 18, 0xffffff00ull);
	assert_int_equal(
	    wn_qproof_check(k, t, sizeof(t), V1, dcid, 18, 0x100000010ull), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_binds_everything),
	    cmocka_unit_test(test_window),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
