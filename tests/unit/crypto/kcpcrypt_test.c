/* kcp-go packet protection: kcptun's key derivation, the CFB layout with
 * kcp-go's fixed IV (vectors computed independently with Python's hashlib
 * and the cryptography package), salsa20 round trips and CRC failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/kcpcrypt.h"
#include "util/err.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* kcptun's default key "it's a secrect" (sic). */
static const char *default_key_hex =
    "25d7d7bd51050742d8d791f2b653c6c8b2366b7e25a124cf7a2e12eaf4ffa444";

static void test_derive(void **state)
{
	(void)state;
	uint8_t key[32], want[32];
	wn_kcpcrypt_derive("it's a secrect", key);
	unhex(default_key_hex, want, 32);
	assert_memory_equal(key, want, 32);
}

static void test_crc32(void **state)
{
	(void)state;
	assert_int_equal(wn_crc32((const uint8_t *)"123456789", 9),
	                 0xcbf43926u);
	assert_int_equal(wn_crc32(NULL, 0), 0);
}

static void test_parse(void **state)
{
	(void)state;
	enum wn_kcpcrypt_alg a;
	assert_int_equal(wn_kcpcrypt_parse("aes", &a), 0);
	assert_int_equal(a, WN_KCPCRYPT_AES);
	assert_int_equal(wn_kcpcrypt_parse("aes-192", &a), 0);
	assert_int_equal(a, WN_KCPCRYPT_AES192);
	assert_int_equal(wn_kcpcrypt_parse("salsa20", &a), 0);
	assert_int_equal(a, WN_KCPCRYPT_SALSA20);
	assert_int_equal(wn_kcpcrypt_parse("none", &a), 0);
	assert_int_equal(a, WN_KCPCRYPT_NONE);
	assert_int_equal(wn_kcpcrypt_parse("twofish", &a), WN_ENOTSUP);
	assert_int_equal(wn_kcpcrypt_parse("rot13", &a), WN_EINVAL);
	assert_string_equal(wn_kcpcrypt_name(WN_KCPCRYPT_AES128), "aes-128");
}

/* nonce 100..115, payload 0..24: [nonce][crc32(payload) LE][payload],
 * all of it AES-CFB with kcp-go's IV. */
static void kat(enum wn_kcpcrypt_alg alg, const char *sealed_hex)
{
	uint8_t key[32], pkt[45], want[45], nonce[16];
	unhex(default_key_hex, key, 32);
	unhex(sealed_hex, want, sizeof(want));
	for (int i = 0; i < 16; i++)
		nonce[i] = (uint8_t)(100 + i);
	for (int i = 0; i < 25; i++)
		pkt[20 + i] = (uint8_t)i;
	struct wn_kcpcrypt c;
	assert_int_equal(wn_kcpcrypt_init(&c, alg, key), 0);
	wn_kcpcrypt_seal(&c, pkt, sizeof(pkt), nonce);
	assert_memory_equal(pkt, want, sizeof(pkt));
	assert_int_equal(wn_kcpcrypt_open(&c, pkt, sizeof(pkt)), 0);
	for (int i = 0; i < 25; i++)
		assert_int_equal(pkt[20 + i], i);
	wn_kcpcrypt_wipe(&c);
}

static void test_aes_vectors(void **state)
{
	(void)state;
	kat(WN_KCPCRYPT_AES,
	    "e2e727275f377ae0cd75db3c367985ecf890cadbd7f38452bc769be24c38f7c2"
	    "8566689e675815420b87c7021a");
	kat(WN_KCPCRYPT_AES128,
	    "b9b384c3f477cf8ec392b17b565a1f6407f056d74b0d224736983a9bf78cbf21"
	    "1ec7133f4a103aceb789a07f6d");
}

/* Every cipher round-trips, rejects a flipped bit and a wrong key, and
 * (but none) hides the payload. */
static void test_round_trips(void **state)
{
	(void)state;
	const enum wn_kcpcrypt_alg algs[] = {
	    WN_KCPCRYPT_NONE, WN_KCPCRYPT_AES, WN_KCPCRYPT_AES128,
	    WN_KCPCRYPT_AES192, WN_KCPCRYPT_SALSA20};
	uint8_t key[32], other[32], nonce[16];
	wn_kcpcrypt_derive("k1", key);
	wn_kcpcrypt_derive("k2", other);
	memset(nonce, 7, sizeof(nonce));
	for (size_t a = 0; a < sizeof(algs) / sizeof(algs[0]); a++) {
		struct wn_kcpcrypt c, w;
		assert_int_equal(wn_kcpcrypt_init(&c, algs[a], key), 0);
		assert_int_equal(wn_kcpcrypt_init(&w, algs[a], other), 0);
		for (size_t len = 20; len < 200; len += 13) {
			uint8_t pkt[200], orig[200];
			for (size_t i = 20; i < len; i++)
				pkt[i] = (uint8_t)(i * 7);
			memcpy(orig, pkt, len);
			wn_kcpcrypt_seal(&c, pkt, len, nonce);
			if (algs[a] != WN_KCPCRYPT_NONE && len > 40)
				assert_memory_not_equal(pkt + 20, orig + 20,
				                        len - 20);
			uint8_t copy[200];
			memcpy(copy, pkt, len);
			assert_int_equal(wn_kcpcrypt_open(&c, pkt, len), 0);
			assert_memory_equal(pkt + 20, orig + 20, len - 20);
			/* A flipped payload bit fails the CRC. */
			memcpy(pkt, copy, len);
			pkt[len - 1] ^= 0x10;
			if (len > 20)
				assert_int_equal(wn_kcpcrypt_open(&c, pkt, len),
				                 WN_ECRYPTO);
			if (algs[a] != WN_KCPCRYPT_NONE && len > 20) {
				memcpy(pkt, copy, len);
				assert_int_equal(wn_kcpcrypt_open(&w, pkt, len),
				                 WN_ECRYPTO);
			}
		}
		uint8_t tiny[19] = {0};
		assert_int_equal(wn_kcpcrypt_open(&c, tiny, sizeof(tiny)),
		                 WN_ETRUNC);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_derive),
	    cmocka_unit_test(test_crc32),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_aes_vectors),
	    cmocka_unit_test(test_round_trips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
