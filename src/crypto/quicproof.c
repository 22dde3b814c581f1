/* The client's proof of the server key in a QUIC Initial's token
 * (quicproof.h). */
#include "crypto/quicproof.h"

#include <sodium.h>
#include <string.h>

#include "util/err.h"

#define LABEL_KEY "warren quic proof 1"
#define LABEL_MAC "warren/1 Initial"
#define MAC_LEN 16

void wn_qproof_key(uint8_t key[WN_QPROOF_KEY_LEN],
                   const uint8_t server_pk[WN_KEY_LEN])
{
	crypto_generichash_blake2b_state st;
	crypto_generichash_blake2b_init(&st, NULL, 0, WN_QPROOF_KEY_LEN);
	crypto_generichash_blake2b_update(&st, (const uint8_t *)LABEL_KEY,
	                                  sizeof(LABEL_KEY) - 1);
	crypto_generichash_blake2b_update(&st, server_pk, WN_KEY_LEN);
	crypto_generichash_blake2b_final(&st, key, WN_QPROOF_KEY_LEN);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void mac(uint8_t out[MAC_LEN], const uint8_t key[WN_QPROOF_KEY_LEN],
                uint32_t version, const uint8_t *dcid, size_t dcidlen,
                const uint8_t ts[4])
{
	uint8_t v[5];
	put_be32(v, version);
	v[4] = (uint8_t)dcidlen;
	crypto_generichash_blake2b_state st;
	crypto_generichash_blake2b_init(&st, key, WN_QPROOF_KEY_LEN, MAC_LEN);
	crypto_generichash_blake2b_update(&st, (const uint8_t *)LABEL_MAC,
	                                  sizeof(LABEL_MAC) - 1);
	crypto_generichash_blake2b_update(&st, v, sizeof(v));
	crypto_generichash_blake2b_update(&st, dcid, dcidlen);
	crypto_generichash_blake2b_update(&st, ts, 4);
	crypto_generichash_blake2b_final(&st, out, MAC_LEN);
}

void wn_qproof_make(uint8_t out[WN_QPROOF_LEN],
                    const uint8_t key[WN_QPROOF_KEY_LEN], uint32_t version,
                    const uint8_t *dcid, size_t dcidlen, uint64_t now_s)
{
	put_be32(out, (uint32_t)now_s);
	mac(out + 4, key, version, dcid, dcidlen, out);
}

int wn_qproof_check(const uint8_t key[WN_QPROOF_KEY_LEN], const uint8_t *tok,
                    size_t len, uint32_t version, const uint8_t *dcid,
                    size_t dcidlen, uint64_t now_s)
{
	if (len != WN_QPROOF_LEN || dcidlen > 255)
		return WN_ECRYPTO;
	uint8_t want[MAC_LEN];
	mac(want, key, version, dcid, dcidlen, tok);
	if (sodium_memcmp(want, tok + 4, MAC_LEN) != 0)
		return WN_ECRYPTO;
	/* The stamp is the low 32 bits of the client's seconds: compare it
	 * with the server's modulo 2^32, so the window works across the
	 * wrap in 2106 too. */
	uint32_t ts = (uint32_t)tok[0] << 24 | (uint32_t)tok[1] << 16 |
	              (uint32_t)tok[2] << 8 | tok[3];
	uint32_t d = (uint32_t)now_s - ts;
	if (d > WN_QPROOF_WINDOW_S && (uint32_t)-d > WN_QPROOF_WINDOW_S)
		return WN_ETIMEDOUT;
	return 0;
}
