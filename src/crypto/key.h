/* Node identity keys.
 *
 * A node has one Ed25519 key pair. Its 32-byte seed is the private key file
 * (one line of standard base64, 44 characters, like `wg genkey`); its 32-byte
 * Ed25519 public key is its identity (also 44 base64 characters). The QUIC
 * engine uses the Ed25519 pair as a TLS raw public key; the KCP engine's
 * Noise handshake uses the birationally equivalent X25519 pair, derived
 * here, so one key serves both engines.
 *
 * Pure: no I/O. Key files are read by src/app/keyfile.c. */
#ifndef WN_CRYPTO_KEY_H
#define WN_CRYPTO_KEY_H

#include <stddef.h>
#include <stdint.h>

#define WN_KEY_LEN 32
#define WN_KEY_B64_LEN 44 /* base64 of 32 bytes, with one '=' of padding */

struct wn_identity {
	uint8_t seed[WN_KEY_LEN];  /* the private key as stored */
	uint8_t ed_pk[WN_KEY_LEN]; /* Ed25519 public key: the identity */
	uint8_t ed_sk[64];         /* Ed25519 secret key (seed || pk) */
	uint8_t x_sk[WN_KEY_LEN];  /* X25519 private key for Noise */
	uint8_t x_pk[WN_KEY_LEN];  /* X25519 public key for Noise */
};

/* Makes an identity from fresh randomness. Returns 0 or WN_EINTERNAL. */
int wn_identity_generate(struct wn_identity *id);

/* Derives every key of an identity from its seed. Returns 0 or
 * WN_EINTERNAL. */
int wn_identity_from_seed(struct wn_identity *id,
                          const uint8_t seed[WN_KEY_LEN]);

/* Wipes an identity's secrets. */
void wn_identity_wipe(struct wn_identity *id);

/* Encodes 32 bytes as base64 into out (WN_KEY_B64_LEN + 1 bytes,
 * NUL-terminated). */
void wn_key_encode(const uint8_t key[WN_KEY_LEN], char out[WN_KEY_B64_LEN + 1]);

/* Decodes exactly one base64 key of 44 characters (standard alphabet,
 * padded; no whitespace inside; the string must end after it). Returns 0 or
 * WN_EINVAL. */
int wn_key_decode(const char *s, size_t len, uint8_t out[WN_KEY_LEN]);

/* Decodes a public key and checks it is a valid Ed25519 point usable for
 * both engines (its X25519 form exists and is not of small order). Returns 0
 * or WN_EINVAL. */
int wn_pubkey_parse(const char *s, size_t len, uint8_t out[WN_KEY_LEN]);

/* Converts an Ed25519 public key to its X25519 form. Returns 0 or WN_EINVAL
 * for keys that are not valid points. */
int wn_pubkey_to_x25519(const uint8_t ed_pk[WN_KEY_LEN],
                        uint8_t x_pk[WN_KEY_LEN]);

#endif
