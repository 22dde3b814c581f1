#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/key.h"
#include "util/err.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* RFC 8032 section 7.1, TEST 1. */
static void test_rfc8032_public_key(void **state)
{
	(void)state;
	uint8_t seed[32], pk[32];
	hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	    seed, 32);
	hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	    pk, 32);
	struct wn_identity id;
	assert_int_equal(wn_identity_from_seed(&id, seed), 0);
	assert_memory_equal(id.ed_pk, pk, 32);
}

static void test_x25519_form_agrees_both_ways(void **state)
{
	(void)state;
	struct wn_identity a, b;
	assert_int_equal(wn_identity_generate(&a), 0);
	assert_int_equal(wn_identity_generate(&b), 0);
	assert_memory_not_equal(a.seed, b.seed, 32);
	/* The X25519 public key is the scalar base multiple of its secret. */
	uint8_t base[32];
	assert_int_equal(crypto_scalarmult_base(base, a.x_sk), 0);
	assert_memory_equal(base, a.x_pk, 32);
	/* Converting the Ed25519 identity gives the same X25519 key, so a
	 * peer that knows only the identity can run Noise with it. */
	uint8_t conv[32];
	assert_int_equal(wn_pubkey_to_x25519(b.ed_pk, conv), 0);
	assert_memory_equal(conv, b.x_pk, 32);
	uint8_t s1[32], s2[32];
	assert_int_equal(crypto_scalarmult(s1, a.x_sk, b.x_pk), 0);
	assert_int_equal(crypto_scalarmult(s2, b.x_sk, a.x_pk), 0);
	assert_memory_equal(s1, s2, 32);
	wn_identity_wipe(&a);
	uint8_t zero[sizeof(a)] = {0};
	assert_memory_equal(&a, zero, sizeof(a));
}

static void test_base64_round_trip_and_strictness(void **state)
{
	(void)state;
	uint8_t k[32], back[32];
	for (int i = 0; i < 32; i++)
		k[i] = (uint8_t)(i * 7 + 1);
	char b64[WN_KEY_B64_LEN + 1];
	wn_key_encode(k, b64);
	assert_int_equal(strlen(b64), 44);
	assert_int_equal(b64[43], '=');
	assert_int_equal(wn_key_decode(b64, 44, back), 0);
	assert_memory_equal(k, back, 32);

	assert_int_equal(wn_key_decode(b64, 43, back), WN_EINVAL);
	char bad[45];
	memcpy(bad, b64, 45);
	bad[10] = '*';
	assert_int_equal(wn_key_decode(bad, 44, back), WN_EINVAL);
	memcpy(bad, b64, 45);
	bad[43] = 'A'; /* no padding */
	assert_int_equal(wn_key_decode(bad, 44, back), WN_EINVAL);
	/* Non-canonical: the unused low bits of the last character set. */
	memcpy(bad, b64, 45);
	const char *alphabet =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t pos = (size_t)(strchr(alphabet, bad[42]) - alphabet);
	bad[42] = alphabet[pos ^ 1];
	assert_int_equal(wn_key_decode(bad, 44, back), WN_EINVAL);
}

static void test_pubkey_parse_rejects_invalid_points(void **state)
{
	(void)state;
	struct wn_identity id;
	assert_int_equal(wn_identity_generate(&id), 0);
	char b64[WN_KEY_B64_LEN + 1];
	wn_key_encode(id.ed_pk, b64);
	uint8_t pk[32];
	assert_int_equal(wn_pubkey_parse(b64, 44, pk), 0);
	assert_memory_equal(pk, id.ed_pk, 32);
	/* The identity point (small order) is not a usable key. */
	uint8_t small[32] = {1};
	wn_key_encode(small, b64);
	assert_int_equal(wn_pubkey_parse(b64, 44, pk), WN_EINVAL);
	assert_int_equal(wn_pubkey_parse("hello", 5, pk), WN_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc8032_public_key),
	    cmocka_unit_test(test_x25519_form_agrees_both_ways),
	    cmocka_unit_test(test_base64_round_trip_and_strictness),
	    cmocka_unit_test(test_pubkey_parse_rejects_invalid_points),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
