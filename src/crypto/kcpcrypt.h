/* kcp-go's packet protection, as kcptun uses it: a 16-byte random nonce and
 * a CRC32 in front of each packet, the whole packet then encrypted with a
 * block cipher in CFB mode under a fixed IV (the encrypted nonce acts as
 * the per-packet IV), or with salsa20 keyed by the first 8 bytes.
 *
 *   [nonce 16][crc32 u32 LE][payload ...]
 *
 * The CRC (IEEE 802.3, as zlib's crc32) covers the payload only. "none"
 * keeps the header but encrypts nothing. There is no authentication: the
 * CRC only tells noise and a wrong key from a packet.
 *
 * The key is what kcptun derives from its passphrase: PBKDF2-HMAC-SHA1
 * (pass, salt "kcp-go", 4096 iterations, 32 bytes); aes uses all 32 bytes
 * (AES-256), aes-192 the first 24, aes-128 the first 16, salsa20 all 32.
 *
 * Pure: no I/O, no clock; the caller passes the nonce (random bytes).
 * Mirrored in docs/wire-format.md ("kcptun profile (kcp-go framing)"). */
#ifndef WN_CRYPTO_KCPCRYPT_H
#define WN_CRYPTO_KCPCRYPT_H

#include <nettle/aes.h>
#include <nettle/salsa20.h>
#include <stddef.h>
#include <stdint.h>

#define WN_KCPCRYPT_NONCE 16
#define WN_KCPCRYPT_CRC 4
#define WN_KCPCRYPT_HEADER 20 /* nonce + crc */
#define WN_KCPCRYPT_KEY 32
#define WN_KCPCRYPT_SALT "kcp-go"
#define WN_KCPCRYPT_ITER 4096

enum wn_kcpcrypt_alg {
	WN_KCPCRYPT_NONE,    /* header, no encryption */
	WN_KCPCRYPT_AES,     /* AES-256-CFB (kcptun's default "aes") */
	WN_KCPCRYPT_AES128,  /* AES-128-CFB */
	WN_KCPCRYPT_AES192,  /* AES-192-CFB */
	WN_KCPCRYPT_SALSA20, /* salsa20/20, nonce = the packet's first 8 */
};

/* An initialized cipher: the expanded key. Plain data, no allocation;
 * wipe with wn_kcpcrypt_wipe. */
struct wn_kcpcrypt {
	enum wn_kcpcrypt_alg alg;
	union {
		struct aes128_ctx aes128;
		struct aes192_ctx aes192;
		struct aes256_ctx aes256;
		struct salsa20_ctx salsa20; /* key set; nonce per packet */
	} ctx;
};

/* Maps kcptun's -crypt name ("none", "aes", "aes-128", "aes-192",
 * "salsa20") to *alg. Returns 0, or WN_ENOTSUP for another cipher kcptun
 * knows (blowfish, twofish, cast5, 3des, tea, xtea, xor, sm4, null,
 * aes-128-gcm), WN_EINVAL for a name it does not. */
int wn_kcpcrypt_parse(const char *name, enum wn_kcpcrypt_alg *alg);

/* The name wn_kcpcrypt_parse takes for alg. */
const char *wn_kcpcrypt_name(enum wn_kcpcrypt_alg alg);

/* kcptun's key derivation: PBKDF2-HMAC-SHA1(pass, "kcp-go", 4096) into
 * 32 bytes. Costs ~4096 HMACs: call once per configuration. */
void wn_kcpcrypt_derive(const char *pass, uint8_t key[WN_KCPCRYPT_KEY]);

/* Sets up c for alg with the derived 32-byte key (copied). Returns 0 or
 * WN_EINVAL for an unknown alg. */
int wn_kcpcrypt_init(struct wn_kcpcrypt *c, enum wn_kcpcrypt_alg alg,
                     const uint8_t key[WN_KCPCRYPT_KEY]);

/* Clears the key material. */
void wn_kcpcrypt_wipe(struct wn_kcpcrypt *c);

/* Seals pkt[0, len) in place. The payload is pkt[20, len) and must already
 * be there; the nonce (16 bytes, copied) and the CRC are written in front,
 * then the whole packet is encrypted. len must be at least 20. */
void wn_kcpcrypt_seal(const struct wn_kcpcrypt *c, uint8_t *pkt, size_t len,
                      const uint8_t nonce[WN_KCPCRYPT_NONCE]);

/* Opens pkt[0, len) in place: decrypts and checks the CRC. Returns 0 (the
 * payload is pkt[20, len)), WN_ETRUNC if len < 20, or WN_ECRYPTO if the
 * CRC does not match (kcp-go's InCsumErrors: noise, or another key). The
 * packet is garbage after a failure. */
int wn_kcpcrypt_open(const struct wn_kcpcrypt *c, uint8_t *pkt, size_t len);

/* CRC32 (IEEE, reflected 0xEDB88820, init and final xor 0xFFFFFFFF) of
 * p[0, len), as zlib's crc32(0, p, len). */
uint32_t wn_crc32(const uint8_t *p, size_t len);

#endif
