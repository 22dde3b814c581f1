/* kcp-go's packet protection (see kcpcrypt.h). */
#include "crypto/kcpcrypt.h"

#include <nettle/cfb.h>
#include <nettle/pbkdf2.h>
#include <sodium.h>
#include <string.h>
#include <zlib.h>

#include "util/err.h"
#include "util/rw.h"

/* kcp-go's fixed CFB initial vector. It only has to be fixed: the random
 * nonce that starts every packet makes each packet's keystream differ. */
static const uint8_t kcpgo_iv[16] = {167, 115, 79,  156, 18,  172, 27,  1,
                                     164, 21,  242, 193, 252, 120, 230, 107};

static const struct {
	const char *name;
	int alg; /* enum wn_kcpcrypt_alg, or -1: kcptun has it, we do not */
} names[] = {
    {"none", WN_KCPCRYPT_NONE},
    {"aes", WN_KCPCRYPT_AES},
    {"aes-128", WN_KCPCRYPT_AES128},
    {"aes-192", WN_KCPCRYPT_AES192},
    {"salsa20", WN_KCPCRYPT_SALSA20},
    {"blowfish", -1},
    {"twofish", -1},
    {"cast5", -1},
    {"3des", -1},
    {"tea", -1},
    {"xtea", -1},
    {"xor", -1},
    {"sm4", -1},
    {"null", -1},
    {"aes-128-gcm", -1},
};

int wn_kcpcrypt_parse(const char *name, enum wn_kcpcrypt_alg *alg)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].name) != 0)
			continue;
		if (names[i].alg < 0)
			return WN_ENOTSUP;
		*alg = (enum wn_kcpcrypt_alg)names[i].alg;
		return 0;
	}
	return WN_EINVAL;
}

const char *wn_kcpcrypt_name(enum wn_kcpcrypt_alg alg)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].alg == (int)alg)
			return names[i].name;
	return "?";
}

void wn_kcpcrypt_derive(const char *pass, uint8_t key[WN_KCPCRYPT_KEY])
{
	pbkdf2_hmac_sha1(strlen(pass), (const uint8_t *)pass, WN_KCPCRYPT_ITER,
	                 strlen(WN_KCPCRYPT_SALT),
	                 (const uint8_t *)WN_KCPCRYPT_SALT, WN_KCPCRYPT_KEY,
	                 key);
}

int wn_kcpcrypt_init(struct wn_kcpcrypt *c, enum wn_kcpcrypt_alg alg,
                     const uint8_t key[WN_KCPCRYPT_KEY])
{
	memset(c, 0, sizeof(*c));
	c->alg = alg;
	switch (alg) {
	case WN_KCPCRYPT_NONE:
		return 0;
	case WN_KCPCRYPT_AES:
		aes256_set_encrypt_key(&c->ctx.aes256, key);
		return 0;
	case WN_KCPCRYPT_AES128:
		aes128_set_encrypt_key(&c->ctx.aes128, key);
		return 0;
	case WN_KCPCRYPT_AES192:
		aes192_set_encrypt_key(&c->ctx.aes192, key);
		return 0;
	case WN_KCPCRYPT_SALSA20:
		salsa20_256_set_key(&c->ctx.salsa20, key);
		return 0;
	}
	return WN_EINVAL;
}

void wn_kcpcrypt_wipe(struct wn_kcpcrypt *c)
{
	sodium_memzero(c, sizeof(*c));
}

/* The block function and context of an AES variant (CFB only ever runs
 * the cipher forward). */
static nettle_cipher_func *aes_fn(const struct wn_kcpcrypt *c)
{
	switch (c->alg) {
	case WN_KCPCRYPT_AES:
		return (nettle_cipher_func *)aes256_encrypt;
	case WN_KCPCRYPT_AES128:
		return (nettle_cipher_func *)aes128_encrypt;
	case WN_KCPCRYPT_AES192:
		return (nettle_cipher_func *)aes192_encrypt;
	default:
		return NULL;
	}
}

/* salsa20 keyed by the packet's first 8 bytes, over the rest. The key
 * schedule is copied so c stays const (and shareable). */
static void salsa(const struct wn_kcpcrypt *c, uint8_t *pkt, size_t len)
{
	struct salsa20_ctx x = c->ctx.salsa20;
	salsa20_set_nonce(&x, pkt);
	salsa20_crypt(&x, len - 8, pkt + 8, pkt + 8);
}

static void crypt_pkt(const struct wn_kcpcrypt *c, uint8_t *pkt, size_t len,
                      int enc)
{
	if (c->alg == WN_KCPCRYPT_NONE)
		return;
	if (c->alg == WN_KCPCRYPT_SALSA20) {
		salsa(c, pkt, len);
		return;
	}
	uint8_t iv[16];
	memcpy(iv, kcpgo_iv, sizeof(iv));
	if (enc)
		cfb_encrypt(&c->ctx, aes_fn(c), 16, iv, len, pkt, pkt);
	else
		cfb_decrypt(&c->ctx, aes_fn(c), 16, iv, len, pkt, pkt);
}

void wn_kcpcrypt_seal(const struct wn_kcpcrypt *c, uint8_t *pkt, size_t len,
                      const uint8_t nonce[WN_KCPCRYPT_NONCE])
{
	memcpy(pkt, nonce, WN_KCPCRYPT_NONCE);
	wn_put_u32le(
	    pkt + WN_KCPCRYPT_NONCE,
	    wn_crc32(pkt + WN_KCPCRYPT_HEADER, len - WN_KCPCRYPT_HEADER));
	crypt_pkt(c, pkt, len, 1);
}

int wn_kcpcrypt_open(const struct wn_kcpcrypt *c, uint8_t *pkt, size_t len)
{
	if (len < WN_KCPCRYPT_HEADER)
		return WN_ETRUNC;
	crypt_pkt(c, pkt, len, 0);
	uint32_t want = wn_get_u32le(pkt + WN_KCPCRYPT_NONCE);
	if (wn_crc32(pkt + WN_KCPCRYPT_HEADER, len - WN_KCPCRYPT_HEADER) !=
	    want)
		return WN_ECRYPTO;
	return 0;
}

/* zlib's CRC-32 is the same function, several bytes per cycle where a
 * table loop does one (the CRC was a fifth of the profile). */
uint32_t wn_crc32(const uint8_t *p, size_t len)
{
	uint32_t c = 0;
	while (len > 0) {
		uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
		c = (uint32_t)crc32(c, p, n);
		p += n;
		len -= n;
	}
	return c;
}
