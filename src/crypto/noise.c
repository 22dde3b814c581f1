#include "crypto/noise.h"

#include <string.h>

#include <sodium.h>

#include "util/err.h"
#include "util/rw.h"

#define HMAC_BLOCK 128

/* ---- Primitives ---- */

static void noise_nonce(uint8_t nonce[12], uint64_t n)
{
	memset(nonce, 0, 4);
	wn_put_u64le(nonce + 4, n);
}

int wn_noise_aead_seal(const uint8_t k[WN_NOISE_KEYLEN], uint64_t n,
                       const uint8_t *ad, size_t adlen, const uint8_t *in,
                       size_t len, uint8_t *out)
{
	uint8_t nonce[12];

	noise_nonce(nonce, n);
	if (crypto_aead_chacha20poly1305_ietf_encrypt_detached(
	        out, out + len, NULL, in, len, ad, adlen, NULL, nonce, k) != 0)
		return WN_EINTERNAL;
	return 0;
}

int wn_noise_aead_open(const uint8_t k[WN_NOISE_KEYLEN], uint64_t n,
                       const uint8_t *ad, size_t adlen, const uint8_t *in,
                       size_t len, uint8_t *out)
{
	uint8_t nonce[12];

	if (len < WN_NOISE_TAGLEN)
		return WN_ETRUNC;
	len -= WN_NOISE_TAGLEN;
	noise_nonce(nonce, n);
	/* libsodium verifies the tag before it decrypts anything. */
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
	        out, NULL, in, len, in + len, ad, adlen, nonce, k) != 0) {
		if (len)
			sodium_memzero(out, len);
		return WN_ECRYPTO;
	}
	return 0;
}

void wn_noise_hmac(const uint8_t *key, size_t klen, const uint8_t *d1,
                   size_t l1, const uint8_t *d2, size_t l2,
                   uint8_t out[WN_NOISE_HASHLEN])
{
	crypto_generichash_blake2b_state st;
	uint8_t pad[HMAC_BLOCK], inner[WN_NOISE_HASHLEN];

	/* Every key here is a chaining key or an HKDF temporary key, both 64
	 * bytes at most, so the long-key hashing step of RFC 2104 never
	 * applies. */
	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < klen && i < HMAC_BLOCK; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, WN_NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, pad, sizeof(pad));
	if (l1)
		crypto_generichash_blake2b_update(&st, d1, l1);
	if (l2)
		crypto_generichash_blake2b_update(&st, d2, l2);
	crypto_generichash_blake2b_final(&st, inner, sizeof(inner));

	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < klen && i < HMAC_BLOCK; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, WN_NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, pad, sizeof(pad));
	crypto_generichash_blake2b_update(&st, inner, sizeof(inner));
	crypto_generichash_blake2b_final(&st, out, WN_NOISE_HASHLEN);

	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
	sodium_memzero(&st, sizeof(st));
}

/* HKDF(chaining_key, ikm) with two outputs, as Noise defines it (section
 * 4.3): a temporary key from HMAC(ck, ikm), then out1 = HMAC(temp, 0x01),
 * out2 = HMAC(temp, out1 || 0x02). */
static void hkdf2(const uint8_t ck[WN_NOISE_HASHLEN], const uint8_t *ikm,
                  size_t ilen, uint8_t out1[WN_NOISE_HASHLEN],
                  uint8_t out2[WN_NOISE_HASHLEN])
{
	uint8_t temp[WN_NOISE_HASHLEN];
	const uint8_t one = 1, two = 2;

	wn_noise_hmac(ck, WN_NOISE_HASHLEN, ikm, ilen, NULL, 0, temp);
	wn_noise_hmac(temp, sizeof(temp), &one, 1, NULL, 0, out1);
	wn_noise_hmac(temp, sizeof(temp), out1, WN_NOISE_HASHLEN, &two, 1,
	              out2);
	sodium_memzero(temp, sizeof(temp));
}

/* ---- CipherState ---- */

int wn_noise_cipher_encrypt(struct wn_noise_cipher *cs, const uint8_t *ad,
                            size_t adlen, const uint8_t *in, size_t len,
                            uint8_t *out)
{
	int rc;

	if (!cs->has_key) {
		if (len && out != in)
			memmove(out, in, len);
		return 0;
	}
	if (cs->n == UINT64_MAX)
		return WN_ERANGE;
	rc = wn_noise_aead_seal(cs->k, cs->n, ad, adlen, in, len, out);
	if (rc == 0)
		cs->n++;
	return rc;
}

int wn_noise_cipher_decrypt(struct wn_noise_cipher *cs, const uint8_t *ad,
                            size_t adlen, const uint8_t *in, size_t len,
                            uint8_t *out)
{
	int rc;

	if (!cs->has_key) {
		if (len && out != in)
			memmove(out, in, len);
		return 0;
	}
	if (cs->n == UINT64_MAX)
		return WN_ERANGE;
	rc = wn_noise_aead_open(cs->k, cs->n, ad, adlen, in, len, out);
	if (rc == 0)
		cs->n++;
	return rc;
}

/* ---- SymmetricState ---- */

/* out = HASH(h || data); out may equal h. */
static void hash_after(uint8_t out[WN_NOISE_HASHLEN],
                       const uint8_t h[WN_NOISE_HASHLEN], const uint8_t *data,
                       size_t len)
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, WN_NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, h, WN_NOISE_HASHLEN);
	if (len)
		crypto_generichash_blake2b_update(&st, data, len);
	crypto_generichash_blake2b_final(&st, out, WN_NOISE_HASHLEN);
}

static void mix_hash(struct wn_noise_hs *hs, const uint8_t *data, size_t len)
{
	hash_after(hs->h, hs->h, data, len);
}

static void mix_key(struct wn_noise_hs *hs, const uint8_t *ikm, size_t len)
{
	uint8_t temp_k[WN_NOISE_HASHLEN];

	hkdf2(hs->ck, ikm, len, hs->ck, temp_k);
	/* HASHLEN is 64: the cipher key is the first 32 bytes. */
	memcpy(hs->cs.k, temp_k, WN_NOISE_KEYLEN);
	hs->cs.n = 0;
	hs->cs.has_key = true;
	sodium_memzero(temp_k, sizeof(temp_k));
}

/* Mixes DH(sk, pk) into the chaining key. Fails on the all-zero result
 * (libsodium reports it), which a peer's small-order point would give. */
static int mix_dh(struct wn_noise_hs *hs, const uint8_t sk[WN_NOISE_DHLEN],
                  const uint8_t pk[WN_NOISE_DHLEN])
{
	uint8_t shared[WN_NOISE_DHLEN];
	int rc = 0;

	if (crypto_scalarmult(shared, sk, pk) != 0)
		rc = WN_ECRYPTO;
	else
		mix_key(hs, shared, sizeof(shared));
	sodium_memzero(shared, sizeof(shared));
	return rc;
}

static int encrypt_and_hash(struct wn_noise_hs *hs, const uint8_t *in,
                            size_t len, uint8_t *out)
{
	int rc = wn_noise_cipher_encrypt(&hs->cs, hs->h, sizeof(hs->h), in, len,
	                                 out);

	if (rc)
		return rc;
	mix_hash(hs, out, len + (hs->cs.has_key ? WN_NOISE_TAGLEN : 0));
	return 0;
}

static int decrypt_and_hash(struct wn_noise_hs *hs, const uint8_t *in,
                            size_t len, uint8_t *out)
{
	uint8_t h_next[WN_NOISE_HASHLEN];
	int rc;

	/* The hash covers the ciphertext, and the ciphertext is authenticated
	 * against the hash before it: compute the next hash first so that a
	 * caller decrypting in place still hashes the ciphertext. */
	hash_after(h_next, hs->h, in, len);
	rc = wn_noise_cipher_decrypt(&hs->cs, hs->h, sizeof(hs->h), in, len,
	                             out);
	if (rc == 0)
		memcpy(hs->h, h_next, sizeof(hs->h));
	return rc;
}

/* ---- HandshakeState ---- */

int wn_noise_ik_init(struct wn_noise_hs *hs, bool initiator,
                     const uint8_t *prologue, size_t plen,
                     const uint8_t s_sk[WN_NOISE_DHLEN],
                     const uint8_t s_pk[WN_NOISE_DHLEN],
                     const uint8_t e_sk[WN_NOISE_DHLEN], const uint8_t *rs)
{
	static const char name[] = WN_NOISE_PROTOCOL_NAME;

	memset(hs, 0, sizeof(*hs));
	if (initiator && !rs)
		return WN_EINVAL;
	if (sodium_init() < 0)
		return WN_EINTERNAL;
	hs->initiator = initiator;
	memcpy(hs->s_sk, s_sk, WN_NOISE_DHLEN);
	memcpy(hs->s_pk, s_pk, WN_NOISE_DHLEN);
	memcpy(hs->e_sk, e_sk, WN_NOISE_DHLEN);
	if (crypto_scalarmult_base(hs->e_pk, hs->e_sk) != 0) {
		wn_noise_hs_wipe(hs);
		return WN_EINTERNAL;
	}
	/* The name (33 bytes) is shorter than HASHLEN: h is the name padded
	 * with zeros, and the chaining key starts equal to it. */
	memcpy(hs->h, name, sizeof(name) - 1);
	memcpy(hs->ck, hs->h, sizeof(hs->ck));
	mix_hash(hs, prologue, plen);
	/* Pre-message pattern "<- s": both sides hash the responder's
	 * static public key. */
	if (initiator) {
		memcpy(hs->rs, rs, WN_NOISE_DHLEN);
		mix_hash(hs, hs->rs, WN_NOISE_DHLEN);
	} else {
		mix_hash(hs, hs->s_pk, WN_NOISE_DHLEN);
	}
	return 0;
}

int wn_noise_ik_write(struct wn_noise_hs *hs, const uint8_t *payload,
                      size_t plen, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t need;
	int rc;

	if (hs->initiator ? hs->step != 0 : hs->step != 1)
		return WN_EPROTO;
	need = hs->initiator ? WN_NOISE_IK_MSG1_LEN(plen)
	                     : WN_NOISE_IK_MSG2_LEN(plen);
	if (need > cap)
		return WN_ENOSPC;

	/* e */
	memcpy(out, hs->e_pk, WN_NOISE_DHLEN);
	mix_hash(hs, hs->e_pk, WN_NOISE_DHLEN);
	out += WN_NOISE_DHLEN;
	if (hs->initiator) {
		/* es, s, ss */
		if ((rc = mix_dh(hs, hs->e_sk, hs->rs)) != 0)
			return rc;
		if ((rc = encrypt_and_hash(hs, hs->s_pk, WN_NOISE_DHLEN, out)))
			return rc;
		out += WN_NOISE_DHLEN + WN_NOISE_TAGLEN;
		if ((rc = mix_dh(hs, hs->s_sk, hs->rs)) != 0)
			return rc;
	} else {
		/* ee, se */
		if ((rc = mix_dh(hs, hs->e_sk, hs->re)) != 0)
			return rc;
		if ((rc = mix_dh(hs, hs->e_sk, hs->rs)) != 0)
			return rc;
	}
	if ((rc = encrypt_and_hash(hs, payload, plen, out)) != 0)
		return rc;
	hs->step++;
	*outlen = need;
	return 0;
}

int wn_noise_ik_read(struct wn_noise_hs *hs, const uint8_t *msg, size_t len,
                     uint8_t *payload, size_t cap, size_t *plen)
{
	size_t fixed, n;
	int rc;

	if (hs->initiator ? hs->step != 1 : hs->step != 0)
		return WN_EPROTO;
	fixed =
	    hs->initiator ? WN_NOISE_IK_MSG2_LEN(0) : WN_NOISE_IK_MSG1_LEN(0);
	if (len < fixed)
		return WN_ETRUNC;
	n = len - fixed;
	if (n > cap)
		return WN_ENOSPC;

	/* e */
	memcpy(hs->re, msg, WN_NOISE_DHLEN);
	mix_hash(hs, hs->re, WN_NOISE_DHLEN);
	msg += WN_NOISE_DHLEN;
	len -= WN_NOISE_DHLEN;
	if (!hs->initiator) {
		/* es, s, ss */
		if ((rc = mix_dh(hs, hs->s_sk, hs->re)) != 0)
			return rc;
		rc = decrypt_and_hash(hs, msg, WN_NOISE_DHLEN + WN_NOISE_TAGLEN,
		                      hs->rs);
		if (rc)
			return rc;
		msg += WN_NOISE_DHLEN + WN_NOISE_TAGLEN;
		len -= WN_NOISE_DHLEN + WN_NOISE_TAGLEN;
		if ((rc = mix_dh(hs, hs->s_sk, hs->rs)) != 0)
			return rc;
	} else {
		/* ee, se */
		if ((rc = mix_dh(hs, hs->e_sk, hs->re)) != 0)
			return rc;
		if ((rc = mix_dh(hs, hs->s_sk, hs->re)) != 0)
			return rc;
	}
	if ((rc = decrypt_and_hash(hs, msg, len, payload)) != 0)
		return rc;
	hs->step++;
	*plen = n;
	return 0;
}

int wn_noise_ik_split(struct wn_noise_hs *hs, uint8_t send_k[WN_NOISE_KEYLEN],
                      uint8_t recv_k[WN_NOISE_KEYLEN],
                      uint8_t h_out[WN_NOISE_HASHLEN])
{
	uint8_t k1[WN_NOISE_HASHLEN], k2[WN_NOISE_HASHLEN];

	if (hs->step != 2)
		return WN_EPROTO;
	hkdf2(hs->ck, NULL, 0, k1, k2);
	/* k1 protects initiator -> responder, k2 the other way. */
	memcpy(send_k, hs->initiator ? k1 : k2, WN_NOISE_KEYLEN);
	memcpy(recv_k, hs->initiator ? k2 : k1, WN_NOISE_KEYLEN);
	if (h_out)
		memcpy(h_out, hs->h, WN_NOISE_HASHLEN);
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	wn_noise_hs_wipe(hs);
	return 0;
}

void wn_noise_hs_wipe(struct wn_noise_hs *hs)
{
	sodium_memzero(hs, sizeof(*hs));
}
