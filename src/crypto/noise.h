/* Noise_IK_25519_ChaChaPoly_BLAKE2b (The Noise Protocol Framework, rev 34).
 *
 * The three layers of the specification, in its own names: a CipherState
 * (ChaCha20-Poly1305 IETF with the Noise nonce: 4 zero bytes then a 64-bit
 * little-endian counter), a SymmetricState (BLAKE2b-512 as HASH, HKDF over
 * HMAC-BLAKE2b with a 128-byte block), and a HandshakeState for the IK
 * pattern only:
 *
 *     IK:
 *       <- s
 *       ...
 *       -> e, es, s, ss
 *       <- e, ee, se
 *
 * The initiator knows the responder's static key beforehand; the responder
 * learns the initiator's static key from the first message. After the
 * second message both sides split into two transport keys.
 *
 * Pure: no I/O, no clock, no randomness. The ephemeral private key is
 * passed in by the caller (src/crypto/protect.c draws it from its injected
 * RNG; the test vectors pass the fixed one). Every struct here holds
 * secrets: wipe it with the matching *_wipe function when done. */
#ifndef WN_CRYPTO_NOISE_H
#define WN_CRYPTO_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WN_NOISE_DHLEN 32   /* X25519 keys and shared secrets */
#define WN_NOISE_HASHLEN 64 /* BLAKE2b-512 */
#define WN_NOISE_KEYLEN 32  /* ChaCha20-Poly1305 key */
#define WN_NOISE_TAGLEN 16  /* Poly1305 tag */
#define WN_NOISE_PROTOCOL_NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"

/* IK message sizes for a payload of n bytes. */
#define WN_NOISE_IK_MSG1_LEN(n)                                    \
	(WN_NOISE_DHLEN + WN_NOISE_DHLEN + WN_NOISE_TAGLEN + (n) + \
	 WN_NOISE_TAGLEN)
#define WN_NOISE_IK_MSG2_LEN(n) (WN_NOISE_DHLEN + (n) + WN_NOISE_TAGLEN)

/* ---- AEAD with an explicit counter (the Noise nonce layout) ---- */

/* Encrypts in[0, len) into out[0, len + 16) under key k and counter n with
 * associated data ad[0, adlen). out may equal in (in place); otherwise the
 * two must not overlap. Returns 0 or WN_EINTERNAL. */
int wn_noise_aead_seal(const uint8_t k[WN_NOISE_KEYLEN], uint64_t n,
                       const uint8_t *ad, size_t adlen, const uint8_t *in,
                       size_t len, uint8_t *out);

/* Checks and decrypts in[0, len) (ciphertext with its 16-byte tag, len >=
 * 16) into out[0, len - 16). out may equal in. Returns 0, or WN_ECRYPTO if
 * the tag does not verify (out is then zeroed, never left with unverified
 * plaintext), WN_ETRUNC if len < 16. */
int wn_noise_aead_open(const uint8_t k[WN_NOISE_KEYLEN], uint64_t n,
                       const uint8_t *ad, size_t adlen, const uint8_t *in,
                       size_t len, uint8_t *out);

/* ---- CipherState ---- */

struct wn_noise_cipher {
	uint8_t k[WN_NOISE_KEYLEN];
	uint64_t n;   /* next nonce; 2^64-1 is reserved and never used */
	bool has_key; /* without a key, encryption is the identity */
};

/* EncryptWithAd: writes len + 16 bytes to out (len bytes if the cipher has
 * no key yet) and advances the nonce. out may equal in. Returns 0,
 * WN_ERANGE once the nonces are exhausted, or WN_EINTERNAL. */
int wn_noise_cipher_encrypt(struct wn_noise_cipher *cs, const uint8_t *ad,
                            size_t adlen, const uint8_t *in, size_t len,
                            uint8_t *out);

/* DecryptWithAd: writes len - 16 bytes to out (len if no key). The nonce
 * advances only on success. Returns 0, WN_ECRYPTO, WN_ETRUNC or WN_ERANGE. */
int wn_noise_cipher_decrypt(struct wn_noise_cipher *cs, const uint8_t *ad,
                            size_t adlen, const uint8_t *in, size_t len,
                            uint8_t *out);

/* ---- HandshakeState (IK) ---- */

struct wn_noise_hs {
	/* SymmetricState */
	struct wn_noise_cipher cs;
	uint8_t ck[WN_NOISE_HASHLEN];
	uint8_t h[WN_NOISE_HASHLEN];
	/* Keys: s, e ours; rs, re the peer's. */
	uint8_t s_sk[WN_NOISE_DHLEN], s_pk[WN_NOISE_DHLEN];
	uint8_t e_sk[WN_NOISE_DHLEN], e_pk[WN_NOISE_DHLEN];
	uint8_t rs[WN_NOISE_DHLEN], re[WN_NOISE_DHLEN];
	bool initiator;
	int step; /* messages processed so far: 0, 1, 2 (then split) */
};

/* Starts an IK handshake. s_sk/s_pk are our static X25519 pair; e_sk is the
 * ephemeral private key this side will use (32 fresh random bytes; its
 * public key is derived here). rs is the responder's static public key: the
 * initiator must give it, the responder passes NULL (it uses s_pk). The
 * prologue (may be NULL when plen is 0) must be the same on both sides.
 * Copies every key; the caller may wipe its own copies. Returns 0,
 * WN_EINVAL (missing rs on the initiator) or WN_EINTERNAL. */
int wn_noise_ik_init(struct wn_noise_hs *hs, bool initiator,
                     const uint8_t *prologue, size_t plen,
                     const uint8_t s_sk[WN_NOISE_DHLEN],
                     const uint8_t s_pk[WN_NOISE_DHLEN],
                     const uint8_t e_sk[WN_NOISE_DHLEN], const uint8_t *rs);

/* Writes the next handshake message of this side (message 1 on the
 * initiator, message 2 on the responder) with payload[0, plen) into out
 * (cap bytes; WN_NOISE_IK_MSG1_LEN/MSG2_LEN(plen) needed); *outlen gets its
 * length. payload and out must not overlap. Returns 0, WN_ENOSPC,
 * WN_EPROTO (not this side's turn) or WN_ECRYPTO (a DH gave the all-zero
 * result: the peer's key has small order). On any failure the handshake is
 * dead and must be wiped. */
int wn_noise_ik_write(struct wn_noise_hs *hs, const uint8_t *payload,
                      size_t plen, uint8_t *out, size_t cap, size_t *outlen);

/* Reads the peer's handshake message msg[0, len) and writes its payload
 * into payload (cap bytes; len minus the message's fixed size needed);
 * *plen gets its length. msg and payload must not overlap. Returns 0,
 * WN_ETRUNC (too short), WN_ENOSPC, WN_EPROTO (not the peer's turn) or
 * WN_ECRYPTO (authentication failed). On any failure the handshake is dead
 * and must be wiped. On the responder, hs->rs holds the initiator's static
 * public key after a successful read of message 1. */
int wn_noise_ik_read(struct wn_noise_hs *hs, const uint8_t *msg, size_t len,
                     uint8_t *payload, size_t cap, size_t *plen);

/* After both messages: derives the two transport keys (Split) into
 * send_k (this side's sending direction) and recv_k, and copies the
 * handshake hash into h_out if not NULL. Wipes the handshake state.
 * Returns 0 or WN_EPROTO if the handshake is not complete. */
int wn_noise_ik_split(struct wn_noise_hs *hs, uint8_t send_k[WN_NOISE_KEYLEN],
                      uint8_t recv_k[WN_NOISE_KEYLEN],
                      uint8_t h_out[WN_NOISE_HASHLEN]);

/* Wipes every secret in hs. */
void wn_noise_hs_wipe(struct wn_noise_hs *hs);

/* ---- Primitives shared with protect.c ---- */

/* HMAC-BLAKE2b-512 (RFC 2104, 128-byte block) of the concatenation of
 * d1[0, l1) and d2[0, l2) (d2 may be NULL when l2 is 0) under key[0, klen),
 * klen <= 64. */
void wn_noise_hmac(const uint8_t *key, size_t klen, const uint8_t *d1,
                   size_t l1, const uint8_t *d2, size_t l2,
                   uint8_t out[WN_NOISE_HASHLEN]);

#endif
