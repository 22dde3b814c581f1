/* The stream carrier preamble (preamble.h). */
#include "crypto/preamble.h"

#include <sodium.h>
#include <string.h>

#include "util/rw.h"

/* The sealed box nonce: BLAKE2b-192 of the ephemeral and the recipient's
 * public keys, as libsodium's crypto_box_seal derives it. */
static int seal_nonce(uint8_t nonce[crypto_box_NONCEBYTES],
                      const uint8_t epk[32], const uint8_t rpk[32])
{
	crypto_generichash_state st;

	if (crypto_generichash_init(&st, NULL, 0, crypto_box_NONCEBYTES) != 0)
		return -1;
	crypto_generichash_update(&st, epk, 32);
	crypto_generichash_update(&st, rpk, 32);
	return crypto_generichash_final(&st, nonce, crypto_box_NONCEBYTES);
}

static void encode_body(const struct wn_preamble *p,
                        uint8_t body[WN_PREAMBLE_BODY])
{
	struct wn_wr wr;

	wn_wr_init(&wr, body, WN_PREAMBLE_BODY);
	wn_wr_u8(&wr, WN_PREAMBLE_VERSION);
	wn_wr_bytes(&wr, p->sid, sizeof(p->sid));
	wn_wr_bytes(&wr, p->secret, sizeof(p->secret));
	wn_wr_u64be(&wr, p->counter);
	wn_wr_u64be(&wr, p->timestamp_ms);
	wn_wr_u16be(&wr, p->pad_len);
}

int wn_preamble_seal(const struct wn_preamble *p, const uint8_t server_xpk[32],
                     const uint8_t eph_seed[32], const uint8_t *pad,
                     uint8_t *out, size_t cap)
{
	uint8_t body[WN_PREAMBLE_BODY], epk[32], esk[32];
	uint8_t nonce[crypto_box_NONCEBYTES];
	int rc = WN_ECRYPTO;

	if (p->pad_len > WN_PREAMBLE_PAD_MAX || (p->pad_len > 0 && !pad))
		return WN_EINVAL;
	if (cap < (size_t)WN_PREAMBLE_SEALED + p->pad_len)
		return WN_ENOSPC;
	encode_body(p, body);
	if (crypto_box_seed_keypair(epk, esk, eph_seed) != 0 ||
	    seal_nonce(nonce, epk, server_xpk) != 0)
		goto out;
	memcpy(out, epk, 32);
	if (crypto_box_easy(out + 32, body, sizeof(body), nonce, server_xpk,
	                    esk) != 0)
		goto out;
	if (p->pad_len > 0)
		memcpy(out + WN_PREAMBLE_SEALED, pad, p->pad_len);
	rc = WN_PREAMBLE_SEALED + p->pad_len;
out:
	sodium_memzero(esk, sizeof(esk));
	sodium_memzero(body, sizeof(body));
	return rc;
}

int wn_preamble_open(const uint8_t *in, size_t len,
                     const uint8_t server_xsk[32], const uint8_t server_xpk[32],
                     struct wn_preamble *p)
{
	uint8_t body[WN_PREAMBLE_BODY];
	struct wn_rd rd;
	uint8_t ver;
	int rc;

	if (len < WN_PREAMBLE_SEALED)
		return WN_EAGAIN;
	if (crypto_box_seal_open(body, in, WN_PREAMBLE_SEALED, server_xpk,
	                         server_xsk) != 0)
		return WN_ECRYPTO;
	wn_rd_init(&rd, body, sizeof(body));
	ver = wn_rd_u8(&rd);
	wn_rd_bytes(&rd, p->sid, sizeof(p->sid));
	wn_rd_bytes(&rd, p->secret, sizeof(p->secret));
	p->counter = wn_rd_u64be(&rd);
	p->timestamp_ms = wn_rd_u64be(&rd);
	p->pad_len = wn_rd_u16be(&rd);
	sodium_memzero(body, sizeof(body));
	if (rd.err || ver != WN_PREAMBLE_VERSION ||
	    p->pad_len > WN_PREAMBLE_PAD_MAX) {
		sodium_memzero(p, sizeof(*p));
		return WN_EPROTO;
	}
	rc = WN_PREAMBLE_SEALED + p->pad_len;
	return rc;
}

int wn_preamble_check_window(uint64_t ts_ms, uint64_t now_ms)
{
	uint64_t d = ts_ms > now_ms ? ts_ms - now_ms : now_ms - ts_ms;

	return d <= WN_PREAMBLE_WINDOW_MS;
}
