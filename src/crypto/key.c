#include "crypto/key.h"

#include <sodium.h>
#include <string.h>

#include "util/err.h"

static int sodium_ready(void)
{
	/* sodium_init is idempotent and thread-safe; it returns 1 when
	 * already initialised. */
	return sodium_init() < 0 ? WN_EINTERNAL : 0;
}

int wn_identity_from_seed(struct wn_identity *id,
                          const uint8_t seed[WN_KEY_LEN])
{
	if (sodium_ready() != 0)
		return WN_EINTERNAL;
	memcpy(id->seed, seed, WN_KEY_LEN);
	if (crypto_sign_seed_keypair(id->ed_pk, id->ed_sk, id->seed) != 0)
		return WN_EINTERNAL;
	if (crypto_sign_ed25519_sk_to_curve25519(id->x_sk, id->ed_sk) != 0)
		return WN_EINTERNAL;
	if (crypto_sign_ed25519_pk_to_curve25519(id->x_pk, id->ed_pk) != 0)
		return WN_EINTERNAL;
	return 0;
}

int wn_identity_generate(struct wn_identity *id)
{
	uint8_t seed[WN_KEY_LEN];
	if (sodium_ready() != 0)
		return WN_EINTERNAL;
	randombytes_buf(seed, sizeof(seed));
	int rc = wn_identity_from_seed(id, seed);
	sodium_memzero(seed, sizeof(seed));
	return rc;
}

void wn_identity_wipe(struct wn_identity *id)
{
	sodium_memzero(id, sizeof(*id));
}

void wn_key_encode(const uint8_t key[WN_KEY_LEN], char out[WN_KEY_B64_LEN + 1])
{
	sodium_bin2base64(out, WN_KEY_B64_LEN + 1, key, WN_KEY_LEN,
	                  sodium_base64_VARIANT_ORIGINAL);
}

int wn_key_decode(const char *s, size_t len, uint8_t out[WN_KEY_LEN])
{
	if (len != WN_KEY_B64_LEN)
		return WN_EINVAL;
	uint8_t tmp[WN_KEY_LEN + 2];
	size_t got = 0;
	const char *end = NULL;
	if (sodium_base642bin(tmp, sizeof(tmp), s, len, NULL, &got, &end,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    got != WN_KEY_LEN || end != s + len) {
		sodium_memzero(tmp, sizeof(tmp));
		return WN_EINVAL;
	}
	/* base64 of 32 bytes leaves 2 unused bits in the last character;
	 * insist they are zero so each key has exactly one spelling. */
	char canon[WN_KEY_B64_LEN + 1];
	wn_key_encode(tmp, canon);
	if (memcmp(canon, s, WN_KEY_B64_LEN) != 0) {
		sodium_memzero(tmp, sizeof(tmp));
		return WN_EINVAL;
	}
	memcpy(out, tmp, WN_KEY_LEN);
	sodium_memzero(tmp, sizeof(tmp));
	return 0;
}

int wn_pubkey_to_x25519(const uint8_t ed_pk[WN_KEY_LEN],
                        uint8_t x_pk[WN_KEY_LEN])
{
	if (sodium_ready() != 0)
		return WN_EINTERNAL;
	if (crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) != 0)
		return WN_EINVAL;
	return 0;
}

int wn_pubkey_parse(const char *s, size_t len, uint8_t out[WN_KEY_LEN])
{
	uint8_t pk[WN_KEY_LEN], x[WN_KEY_LEN];
	if (wn_key_decode(s, len, pk) != 0)
		return WN_EINVAL;
	if (wn_pubkey_to_x25519(pk, x) != 0)
		return WN_EINVAL;
	memcpy(out, pk, WN_KEY_LEN);
	return 0;
}
