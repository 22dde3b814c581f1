#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/key.h"
#include "crypto/preamble.h"
#include "util/err.h"

static struct wn_identity srv;

static int setup(void **state)
{
	(void)state;
	uint8_t seed[32];
	memset(seed, 7, sizeof(seed));
	return wn_identity_from_seed(&srv, seed);
}

static struct wn_preamble sample(void)
{
	struct wn_preamble p;
	memset(&p, 0, sizeof(p));
	memset(p.sid, 0x11, sizeof(p.sid));
	memset(p.secret, 0x22, sizeof(p.secret));
	p.counter = 3;
	p.timestamp_ms = 1700000000000ull;
	p.pad_len = 40;
	return p;
}

static void test_round_trip(void **state)
{
	(void)state;
	struct wn_preamble p = sample(), q;
	uint8_t seed[32], pad[40], out[WN_PREAMBLE_MAX];
	memset(seed, 5, sizeof(seed));
	memset(pad, 0xEE, sizeof(pad));
	int n = wn_preamble_seal(&p, srv.x_pk, seed, pad, out, sizeof(out));
	assert_int_equal(n, WN_PREAMBLE_SEALED + 40);
	assert_int_equal(WN_PREAMBLE_SEALED, 115);
	assert_memory_equal(out + WN_PREAMBLE_SEALED, pad, 40);
	/* Every prefix of the sealed part is "more, please". */
	for (size_t i = 0; i < WN_PREAMBLE_SEALED; i++)
		assert_int_equal(
		    wn_preamble_open(out, i, srv.x_sk, srv.x_pk, &q),
		    WN_EAGAIN);
	assert_int_equal(
	    wn_preamble_open(out, WN_PREAMBLE_SEALED, srv.x_sk, srv.x_pk, &q),
	    n);
	assert_memory_equal(q.sid, p.sid, sizeof(p.sid));
	assert_memory_equal(q.secret, p.secret, sizeof(p.secret));
	assert_int_equal(q.counter, 3);
	assert_int_equal(q.timestamp_ms, p.timestamp_ms);
	assert_int_equal(q.pad_len, 40);
	/* Deterministic in its inputs: the same seed seals the same bytes;
	 * libsodium's own sealed-box opener agrees on the format. */
	uint8_t again[WN_PREAMBLE_MAX], body[WN_PREAMBLE_BODY];
	assert_int_equal(
	    wn_preamble_seal(&p, srv.x_pk, seed, pad, again, sizeof(again)), n);
	assert_memory_equal(out, again, (size_t)n);
	assert_int_equal(crypto_box_seal_open(body, out, WN_PREAMBLE_SEALED,
	                                      srv.x_pk, srv.x_sk),
	                 0);
	assert_int_equal(body[0], WN_PREAMBLE_VERSION);
}

static void test_tamper_and_wrong_key(void **state)
{
	(void)state;
	struct wn_preamble p = sample(), q;
	uint8_t seed[32] = {1}, pad[40] = {0}, out[WN_PREAMBLE_MAX];
	int n = wn_preamble_seal(&p, srv.x_pk, seed, pad, out, sizeof(out));
	assert_true(n > 0);
	for (size_t i = 0; i < WN_PREAMBLE_SEALED; i += 13) {
		out[i] ^= 0x01;
		assert_int_equal(
		    wn_preamble_open(out, (size_t)n, srv.x_sk, srv.x_pk, &q),
		    WN_ECRYPTO);
		out[i] ^= 0x01;
	}
	struct wn_identity other;
	uint8_t oseed[32];
	memset(oseed, 9, sizeof(oseed));
	assert_int_equal(wn_identity_from_seed(&other, oseed), 0);
	assert_int_equal(
	    wn_preamble_open(out, (size_t)n, other.x_sk, other.x_pk, &q),
	    WN_ECRYPTO);
	/* An HTTP request is not a preamble. */
	uint8_t http[200];
	memset(http, 'A', sizeof(http));
	memcpy(http, "GET / HTTP/1.1\r\n", 16);
	assert_int_equal(
	    wn_preamble_open(http, sizeof(http), srv.x_sk, srv.x_pk, &q),
	    WN_ECRYPTO);
}

static void test_limits(void **state)
{
	(void)state;
	struct wn_preamble p = sample();
	uint8_t seed[32] = {0}, out[WN_PREAMBLE_MAX + 1];
	static uint8_t pad[WN_PREAMBLE_PAD_MAX + 1];
	p.pad_len = WN_PREAMBLE_PAD_MAX + 1;
	assert_int_equal(
	    wn_preamble_seal(&p, srv.x_pk, seed, pad, out, sizeof(out)),
	    WN_EINVAL);
	p.pad_len = 10;
	assert_int_equal(wn_preamble_seal(&p, srv.x_pk, seed, pad, out,
	                                  WN_PREAMBLE_SEALED + 9),
	                 WN_ENOSPC);
	assert_true(wn_preamble_check_window(1000000, 1000000));
	assert_true(
	    wn_preamble_check_window(1000000 + WN_PREAMBLE_WINDOW_MS, 1000000));
	assert_false(wn_preamble_check_window(
	    1000000 + WN_PREAMBLE_WINDOW_MS + 1, 1000000));
	assert_false(wn_preamble_check_window(0, WN_PREAMBLE_WINDOW_MS + 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_tamper_and_wrong_key),
	    cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
