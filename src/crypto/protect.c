#include "crypto/protect.h"

#include <string.h>

#include <sodium.h>

#include "util/err.h"
#include "util/rw.h"

#define INDEX_TRIES 16
#define TAI64_LABEL UINT64_C(0x400000000000000a) /* 2^62 + 10 */

static const uint8_t prologue[] = WN_PROTECT_PROLOGUE;
#define PROLOGUE_LEN (sizeof(prologue) - 1)

void wn_protect_random_sodium(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	randombytes_buf(buf, len);
}

/* ---- mac1 ---- */

static void mac1_key(uint8_t key[32], const uint8_t pk[WN_NOISE_DHLEN])
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, 32);
	crypto_generichash_blake2b_update(&st, (const uint8_t *)"mac1----", 8);
	crypto_generichash_blake2b_update(&st, pk, WN_NOISE_DHLEN);
	crypto_generichash_blake2b_final(&st, key, 32);
}

/* The mac1 over msg[0, len) goes into msg[len, len + 16). */
static void mac1_write(const uint8_t key[32], uint8_t *msg, size_t len)
{
	crypto_generichash_blake2b(msg + len, WN_PROTECT_MAC_LEN, msg, len, key,
	                           32);
}

/* Checks the mac1 at the end of pkt[0, len) (len > 16). */
static bool mac1_ok(const uint8_t key[32], const uint8_t *pkt, size_t len)
{
	uint8_t mac[WN_PROTECT_MAC_LEN];
	size_t body = len - WN_PROTECT_MAC_LEN;

	crypto_generichash_blake2b(mac, sizeof(mac), pkt, body, key, 32);
	return sodium_memcmp(mac, pkt + body, sizeof(mac)) == 0;
}

/* ---- Cookies and mac2 ---- */

static void cookie_key(uint8_t key[WN_NOISE_KEYLEN],
                       const uint8_t pk[WN_NOISE_DHLEN])
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, WN_NOISE_KEYLEN);
	crypto_generichash_blake2b_update(&st, (const uint8_t *)"cookie--", 8);
	crypto_generichash_blake2b_update(&st, pk, WN_NOISE_DHLEN);
	crypto_generichash_blake2b_final(&st, key, WN_NOISE_KEYLEN);
}

/* The cookie of an address under a secret. */
static void cookie_make(uint8_t cookie[WN_PROTECT_COOKIE_LEN],
                        const uint8_t secret[32], const uint8_t *addr,
                        size_t alen)
{
	crypto_generichash_blake2b(cookie, WN_PROTECT_COOKIE_LEN, addr, alen,
	                           secret, 32);
}

/* mac2 of an initiation body[0, len), everything before mac2. */
static void mac2_make(uint8_t mac[WN_PROTECT_MAC_LEN],
                      const uint8_t cookie[WN_PROTECT_COOKIE_LEN],
                      const uint8_t *body, size_t len)
{
	crypto_generichash_blake2b(mac, WN_PROTECT_MAC_LEN, body, len, cookie,
	                           WN_PROTECT_COOKIE_LEN);
}

/* Draws a new secret when the current one is due, keeping the previous
 * one for a second period so that every cookie lives a full period. */
static void secret_rotate(struct wn_protect_responder *r, uint64_t now)
{
	if (r->has_secret && now >= r->secret_ms &&
	    now - r->secret_ms < WN_PROTECT_COOKIE_SECRET_MS)
		return;
	bool recent = r->has_secret && now >= r->secret_ms &&
	              now - r->secret_ms < 2 * WN_PROTECT_COOKIE_SECRET_MS;
	if (recent)
		memcpy(r->prev_secret, r->secret, sizeof(r->secret));
	else
		sodium_memzero(r->prev_secret, sizeof(r->prev_secret));
	r->has_prev = recent;
	r->env.random(r->env.ctx, r->secret, sizeof(r->secret));
	r->secret_ms = now;
	r->has_secret = true;
}

/* ---- Timestamps ---- */

void wn_protect_tai64n(uint8_t out[WN_PROTECT_TIMESTAMP_LEN], uint64_t unix_ms)
{
	wn_put_u64be(out, TAI64_LABEL + unix_ms / 1000);
	wn_put_u32be(out + 8, (uint32_t)(unix_ms % 1000) * 1000000u);
}

bool wn_protect_timestamp_after(const uint8_t a[WN_PROTECT_TIMESTAMP_LEN],
                                const uint8_t b[WN_PROTECT_TIMESTAMP_LEN])
{
	/* Both fields are big-endian, so byte order is numeric order. */
	return memcmp(a, b, WN_PROTECT_TIMESTAMP_LEN) > 0;
}

/* ts + 1 as one 96-bit big-endian number. */
static void timestamp_bump(uint8_t ts[WN_PROTECT_TIMESTAMP_LEN])
{
	for (int i = WN_PROTECT_TIMESTAMP_LEN - 1; i >= 0; i--)
		if (++ts[i] != 0)
			break;
}

/* ---- Keypairs and indices ---- */

static void index_del(struct wn_protect_peer *p, uint32_t index)
{
	if (p->env.index_del)
		p->env.index_del(p->env.ctx, index);
}

/* Draws a local index the engine has not given out. */
static int index_new(struct wn_protect_peer *p, uint32_t *index)
{
	int rc = 0;

	for (int i = 0; i < INDEX_TRIES; i++) {
		p->env.random(p->env.ctx, index, sizeof(*index));
		if (!p->env.index_add)
			return 0;
		rc = p->env.index_add(p->env.ctx, *index, p);
		if (rc != WN_EEXIST)
			return rc;
	}
	return rc;
}

static void keypair_drop(struct wn_protect_peer *p,
                         struct wn_protect_keypair *kp)
{
	if (kp->valid)
		index_del(p, kp->local_index);
	sodium_memzero(kp, sizeof(*kp));
}

/* Moves src into dst (dst already dropped) and leaves src empty. */
static void keypair_move(struct wn_protect_keypair *dst,
                         struct wn_protect_keypair *src)
{
	memcpy(dst, src, sizeof(*dst));
	sodium_memzero(src, sizeof(*src));
}

static bool keypair_expired(const struct wn_protect_keypair *kp, uint64_t now)
{
	return now >= kp->created_ms &&
	       now - kp->created_ms >= WN_PROTECT_REJECT_AFTER_MS;
}

static bool keypair_usable(const struct wn_protect_keypair *kp, uint64_t now)
{
	return kp->valid && !keypair_expired(kp, now);
}

static void hs_drop(struct wn_protect_peer *p)
{
	if (p->hs_pending)
		index_del(p, p->hs_index);
	wn_noise_hs_wipe(&p->hs);
	p->hs_pending = false;
	p->hs_index = 0;
	p->hs_started_ms = 0;
}

/* Finishes a handshake into kp. */
static int keypair_from_hs(struct wn_protect_keypair *kp,
                           struct wn_noise_hs *hs, uint32_t local_index,
                           uint32_t remote_index, uint64_t now)
{
	memset(kp, 0, sizeof(*kp));
	if (wn_noise_ik_split(hs, kp->send_key, kp->recv_key, NULL) != 0)
		return WN_EINTERNAL;
	wn_replay_init(&kp->replay);
	kp->created_ms = now;
	kp->local_index = local_index;
	kp->remote_index = remote_index;
	kp->valid = true;
	return 0;
}

/* ---- Peers ---- */

int wn_protect_peer_init(struct wn_protect_peer *p, bool initiator,
                         const uint8_t local_sk[WN_NOISE_DHLEN],
                         const uint8_t local_pk[WN_NOISE_DHLEN],
                         const uint8_t remote_pk[WN_NOISE_DHLEN],
                         const struct wn_protect_env *env)
{
	memset(p, 0, sizeof(*p));
	if (!env || !env->random)
		return WN_EINVAL;
	if (sodium_init() < 0)
		return WN_EINTERNAL;
	p->env = *env;
	p->initiator = initiator;
	memcpy(p->local_sk, local_sk, WN_NOISE_DHLEN);
	memcpy(p->local_pk, local_pk, WN_NOISE_DHLEN);
	memcpy(p->remote_pk, remote_pk, WN_NOISE_DHLEN);
	mac1_key(p->mac1_send, remote_pk);
	mac1_key(p->mac1_recv, local_pk);
	cookie_key(p->cookie_key, remote_pk);
	return 0;
}

void wn_protect_peer_wipe(struct wn_protect_peer *p)
{
	keypair_drop(p, &p->current);
	keypair_drop(p, &p->previous);
	keypair_drop(p, &p->next);
	hs_drop(p);
	sodium_memzero(p, sizeof(*p));
}

int wn_protect_classify(const uint8_t *pkt, size_t len, uint8_t *type,
                        uint32_t *receiver_index)
{
	struct wn_rd rd;
	uint32_t t;

	wn_rd_init(&rd, pkt, len);
	t = wn_rd_u32le(&rd);
	if (rd.err)
		return WN_EPROTO;
	switch (t) {
	case WN_PROTECT_MSG_INITIATION:
		if (len < WN_PROTECT_INITIATION_MIN ||
		    len > WN_PROTECT_INITIATION_MAX)
			return WN_EPROTO;
		*receiver_index = 0;
		break;
	case WN_PROTECT_MSG_RESPONSE:
		if (len != WN_PROTECT_RESPONSE_LEN)
			return WN_EPROTO;
		wn_rd_u32le(&rd); /* sender index */
		*receiver_index = wn_rd_u32le(&rd);
		break;
	case WN_PROTECT_MSG_COOKIE:
		if (len != WN_PROTECT_COOKIE_REPLY_LEN)
			return WN_EPROTO;
		*receiver_index = wn_rd_u32le(&rd);
		break;
	case WN_PROTECT_MSG_TRANSPORT:
		if (len < WN_PROTECT_OVERHEAD)
			return WN_EPROTO;
		*receiver_index = wn_rd_u32le(&rd);
		break;
	default:
		/* Includes any nonzero reserved byte. */
		return WN_EPROTO;
	}
	*type = (uint8_t)t;
	return 0;
}

/* ---- Transport ---- */

bool wn_protect_can_send(const struct wn_protect_peer *p, uint64_t now)
{
	return keypair_usable(&p->current, now) &&
	       p->current.send_ctr < WN_PROTECT_REJECT_AFTER_MESSAGES;
}

int wn_protect_seal(struct wn_protect_peer *p, uint8_t *buf, size_t plen,
                    size_t cap, uint64_t now, size_t *pkt_len)
{
	struct wn_protect_keypair *kp = &p->current;
	struct wn_wr wr;

	if (!wn_protect_can_send(p, now))
		return WN_EAGAIN;
	if (cap < WN_PROTECT_OVERHEAD || plen > cap - WN_PROTECT_OVERHEAD)
		return WN_ENOSPC;
	wn_wr_init(&wr, buf, WN_PROTECT_HEADROOM);
	wn_wr_u32le(&wr, WN_PROTECT_MSG_TRANSPORT);
	wn_wr_u32le(&wr, kp->remote_index);
	wn_wr_u64le(&wr, kp->send_ctr);
	if (wn_noise_aead_seal(kp->send_key, kp->send_ctr, NULL, 0,
	                       buf + WN_PROTECT_HEADROOM, plen,
	                       buf + WN_PROTECT_HEADROOM) != 0)
		return WN_EINTERNAL;
	kp->send_ctr++;
	*pkt_len = plen + WN_PROTECT_OVERHEAD;
	return 0;
}

static struct wn_protect_keypair *keypair_by_index(struct wn_protect_peer *p,
                                                   uint32_t index)
{
	if (p->current.valid && p->current.local_index == index)
		return &p->current;
	if (p->previous.valid && p->previous.local_index == index)
		return &p->previous;
	if (p->next.valid && p->next.local_index == index)
		return &p->next;
	return NULL;
}

int wn_protect_open(struct wn_protect_peer *p, uint8_t *buf, size_t len,
                    uint64_t now, size_t *plen)
{
	struct wn_protect_keypair *kp;
	struct wn_rd rd;
	uint32_t index;
	uint64_t ctr;
	int rc;

	if (len < WN_PROTECT_OVERHEAD)
		return WN_ETRUNC;
	wn_rd_init(&rd, buf, WN_PROTECT_HEADROOM);
	if (wn_rd_u32le(&rd) != WN_PROTECT_MSG_TRANSPORT)
		return WN_EPROTO;
	index = wn_rd_u32le(&rd);
	ctr = wn_rd_u64le(&rd);
	kp = keypair_by_index(p, index);
	if (!kp)
		return WN_EPROTO;
	if (keypair_expired(kp, now))
		return WN_ETIMEDOUT;
	if (ctr >= WN_PROTECT_REJECT_AFTER_MESSAGES ||
	    wn_replay_peek(&kp->replay, ctr) != 0)
		return WN_EPROTO;
	rc = wn_noise_aead_open(
	    kp->recv_key, ctr, NULL, 0, buf + WN_PROTECT_HEADROOM,
	    len - WN_PROTECT_HEADROOM, buf + WN_PROTECT_HEADROOM);
	if (rc)
		return rc;
	if (wn_replay_commit(&kp->replay, ctr) != 0)
		return WN_EPROTO;
	if (kp == &p->next) {
		/* WireGuard's confirmation rule. The responder derived this
		 * keypair when it answered the initiation, but cannot know
		 * that its response arrived: if it had started sending with
		 * it, a lost response would leave the client unable to read
		 * anything. The first authentic packet under the new keys
		 * proves the client has them, so only now does it become
		 * current; until then the responder keeps sending with the
		 * old current. */
		keypair_drop(p, &p->previous);
		keypair_move(&p->previous, &p->current);
		keypair_move(&p->current, &p->next);
	}
	*plen = len - WN_PROTECT_OVERHEAD;
	return 0;
}

bool wn_protect_needs_rekey(const struct wn_protect_peer *p, uint64_t now)
{
	if (!p->initiator)
		return false;
	if (!wn_protect_can_send(p, now))
		return true;
	return (now >= p->current.created_ms &&
	        now - p->current.created_ms >= WN_PROTECT_REKEY_AFTER_MS) ||
	       p->current.send_ctr >= WN_PROTECT_REKEY_AFTER_MESSAGES;
}

void wn_protect_tick(struct wn_protect_peer *p, uint64_t now)
{
	struct wn_protect_keypair *kps[] = {&p->current, &p->previous,
	                                    &p->next};

	for (size_t i = 0; i < sizeof(kps) / sizeof(kps[0]); i++)
		if (kps[i]->valid && keypair_expired(kps[i], now))
			keypair_drop(p, kps[i]);
	if (p->hs_pending && now >= p->hs_started_ms &&
	    now - p->hs_started_ms >= WN_PROTECT_REJECT_AFTER_MS)
		hs_drop(p);
}

uint64_t wn_protect_next_expiry(const struct wn_protect_peer *p)
{
	const struct wn_protect_keypair *kps[] = {&p->current, &p->previous,
	                                          &p->next};
	uint64_t t = UINT64_MAX;

	for (size_t i = 0; i < sizeof(kps) / sizeof(kps[0]); i++)
		if (kps[i]->valid &&
		    kps[i]->created_ms + WN_PROTECT_REJECT_AFTER_MS < t)
			t = kps[i]->created_ms + WN_PROTECT_REJECT_AFTER_MS;
	if (p->hs_pending && p->hs_started_ms + WN_PROTECT_REJECT_AFTER_MS < t)
		t = p->hs_started_ms + WN_PROTECT_REJECT_AFTER_MS;
	return t;
}

/* ---- Initiator ---- */

int wn_protect_initiate(struct wn_protect_peer *p, const uint8_t *payload,
                        size_t plen, uint64_t unix_ms, uint64_t now,
                        uint8_t *out, size_t cap, size_t *len)
{
	uint8_t e_sk[WN_NOISE_DHLEN];
	uint8_t inner[WN_PROTECT_TIMESTAMP_LEN + WN_PROTECT_PAYLOAD_MAX];
	uint8_t ts[WN_PROTECT_TIMESTAMP_LEN];
	size_t need = WN_PROTECT_INITIATION_MIN + plen, n;
	uint32_t index;
	int rc;

	if (!p->initiator || plen > WN_PROTECT_PAYLOAD_MAX)
		return WN_EINVAL;
	if (cap < need)
		return WN_ENOSPC;
	hs_drop(p);

	wn_protect_tai64n(ts, unix_ms);
	if (!wn_protect_timestamp_after(ts, p->last_ts)) {
		memcpy(ts, p->last_ts, sizeof(ts));
		timestamp_bump(ts);
	}
	memcpy(inner, ts, sizeof(ts));
	if (plen)
		memcpy(inner + sizeof(ts), payload, plen);

	p->env.random(p->env.ctx, e_sk, sizeof(e_sk));
	rc = wn_noise_ik_init(&p->hs, true, prologue, PROLOGUE_LEN, p->local_sk,
	                      p->local_pk, e_sk, p->remote_pk);
	sodium_memzero(e_sk, sizeof(e_sk));
	if (rc)
		goto fail;
	if ((rc = index_new(p, &index)) != 0)
		goto fail;
	p->hs_pending = true;
	p->hs_index = index;
	p->hs_started_ms = now;

	wn_put_u32le(out, WN_PROTECT_MSG_INITIATION);
	wn_put_u32le(out + 4, index);
	rc = wn_noise_ik_write(&p->hs, inner, sizeof(ts) + plen, out + 8,
	                       cap - 8 - 2 * WN_PROTECT_MAC_LEN, &n);
	if (rc)
		goto fail;
	n += 8;
	mac1_write(p->mac1_send, out, n);
	memcpy(p->hs_mac1, out + n, WN_PROTECT_MAC_LEN);
	n += WN_PROTECT_MAC_LEN;
	p->hs_mac2 = p->has_cookie && now >= p->cookie_ms &&
	             now - p->cookie_ms < WN_PROTECT_COOKIE_USE_MS;
	if (p->hs_mac2)
		mac2_make(out + n, p->cookie, out, n);
	else
		memset(out + n, 0, WN_PROTECT_MAC_LEN);
	p->cookie_retried = false;
	memcpy(p->last_ts, ts, sizeof(ts));
	*len = n + WN_PROTECT_MAC_LEN;
	sodium_memzero(inner, sizeof(inner));
	return 0;
fail:
	hs_drop(p);
	sodium_memzero(inner, sizeof(inner));
	return rc;
}

int wn_protect_consume_cookie(struct wn_protect_peer *p, const uint8_t *pkt,
                              size_t len, uint64_t now, bool *retry)
{
	uint8_t cookie[WN_PROTECT_COOKIE_LEN];
	uint32_t receiver;
	uint8_t type;

	*retry = false;
	if (!p->initiator || !p->hs_pending)
		return WN_EPROTO;
	if (wn_protect_classify(pkt, len, &type, &receiver) != 0 ||
	    type != WN_PROTECT_MSG_COOKIE || receiver != p->hs_index)
		return WN_EPROTO;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
	        cookie, NULL, NULL, pkt + 8 + WN_PROTECT_COOKIE_NONCE_LEN,
	        WN_PROTECT_COOKIE_LEN + WN_PROTECT_MAC_LEN, p->hs_mac1,
	        WN_PROTECT_MAC_LEN, pkt + 8, p->cookie_key) != 0)
		return WN_ECRYPTO;
	bool same = p->has_cookie &&
	            sodium_memcmp(cookie, p->cookie, sizeof(cookie)) == 0;
	memcpy(p->cookie, cookie, sizeof(cookie));
	sodium_memzero(cookie, sizeof(cookie));
	p->cookie_ms = now;
	p->has_cookie = true;
	/* A reply to an initiation that already carried this cookie's mac2
	 * would only repeat itself. */
	if ((p->hs_mac2 && same) || p->cookie_retried)
		return 0;
	if (p->cookie_retry_ms && now >= p->cookie_retry_ms &&
	    now - p->cookie_retry_ms < WN_PROTECT_COOKIE_RETRY_MS)
		return 0;
	p->cookie_retried = true;
	p->cookie_retry_ms = now;
	*retry = true;
	return 0;
}

int wn_protect_consume_response(struct wn_protect_peer *p, const uint8_t *pkt,
                                size_t len, uint64_t now)
{
	struct wn_protect_keypair kp;
	struct wn_noise_hs hs;
	uint8_t type, empty[1];
	uint32_t receiver, sender;
	size_t n;
	int rc;

	if (!p->initiator || !p->hs_pending)
		return WN_EPROTO;
	if (wn_protect_classify(pkt, len, &type, &receiver) != 0 ||
	    type != WN_PROTECT_MSG_RESPONSE || receiver != p->hs_index)
		return WN_EPROTO;
	if (now < p->hs_started_ms ||
	    now - p->hs_started_ms >= WN_PROTECT_REJECT_AFTER_MS)
		return WN_EPROTO;
	if (!mac1_ok(p->mac1_recv, pkt, len))
		return WN_ECRYPTO;
	sender = wn_get_u32le(pkt + 4);

	/* Work on a copy so that a forged response leaves the pending
	 * handshake able to accept the real one. */
	hs = p->hs;
	rc = wn_noise_ik_read(&hs, pkt + 12, len - 12 - WN_PROTECT_MAC_LEN,
	                      empty, sizeof(empty), &n);
	if (rc == 0 && n != 0)
		rc = WN_EPROTO;
	if (rc == 0)
		rc = keypair_from_hs(&kp, &hs, p->hs_index, sender, now);
	wn_noise_hs_wipe(&hs);
	if (rc) {
		sodium_memzero(&kp, sizeof(kp));
		return rc == WN_ETRUNC || rc == WN_ENOSPC ? WN_EPROTO : rc;
	}

	/* The index now belongs to the keypair: forget the handshake
	 * without releasing it. */
	p->hs_pending = false;
	wn_noise_hs_wipe(&p->hs);
	keypair_drop(p, &p->previous);
	keypair_move(&p->previous, &p->current);
	keypair_move(&p->current, &kp);
	return 0;
}

/* ---- Responder ---- */

int wn_protect_responder_init(struct wn_protect_responder *r,
                              const uint8_t local_sk[WN_NOISE_DHLEN],
                              const uint8_t local_pk[WN_NOISE_DHLEN],
                              const struct wn_protect_env *env)
{
	memset(r, 0, sizeof(*r));
	if (!env || !env->random)
		return WN_EINVAL;
	if (sodium_init() < 0)
		return WN_EINTERNAL;
	r->env = *env;
	memcpy(r->local_sk, local_sk, WN_NOISE_DHLEN);
	memcpy(r->local_pk, local_pk, WN_NOISE_DHLEN);
	mac1_key(r->mac1_recv, local_pk);
	cookie_key(r->cookie_key, local_pk);
	return 0;
}

void wn_protect_responder_wipe(struct wn_protect_responder *r)
{
	sodium_memzero(r, sizeof(*r));
}

int wn_protect_responder_check(struct wn_protect_responder *r,
                               const uint8_t *pkt, size_t len,
                               const uint8_t *addr, size_t alen, uint64_t now,
                               bool *mac2_ok)
{
	uint8_t cookie[WN_PROTECT_COOKIE_LEN], mac[WN_PROTECT_MAC_LEN];
	static const uint8_t zero[WN_PROTECT_MAC_LEN];
	size_t body = len - WN_PROTECT_MAC_LEN;
	uint32_t unused;
	uint8_t type;

	*mac2_ok = false;
	if (wn_protect_classify(pkt, len, &type, &unused) != 0 ||
	    type != WN_PROTECT_MSG_INITIATION)
		return WN_EPROTO;
	if (!mac1_ok(r->mac1_recv, pkt, body))
		return WN_ECRYPTO;
	secret_rotate(r, now);
	/* No cookie: nothing to compute. */
	if (sodium_memcmp(pkt + body, zero, sizeof(zero)) == 0)
		return 0;
	for (int i = 0; i < 2 && !*mac2_ok; i++) {
		if (i == 1 && !r->has_prev)
			break;
		cookie_make(cookie, i ? r->prev_secret : r->secret, addr, alen);
		mac2_make(mac, cookie, pkt, body);
		*mac2_ok = sodium_memcmp(mac, pkt + body, sizeof(mac)) == 0;
	}
	sodium_memzero(cookie, sizeof(cookie));
	return 0;
}

int wn_protect_cookie_reply(struct wn_protect_responder *r, const uint8_t *pkt,
                            size_t len, const uint8_t *addr, size_t alen,
                            uint64_t now, uint8_t *out, size_t cap,
                            size_t *olen)
{
	uint8_t cookie[WN_PROTECT_COOKIE_LEN];
	uint32_t unused;
	uint8_t type;

	if (wn_protect_classify(pkt, len, &type, &unused) != 0 ||
	    type != WN_PROTECT_MSG_INITIATION)
		return WN_EPROTO;
	if (cap < WN_PROTECT_COOKIE_REPLY_LEN)
		return WN_ENOSPC;
	secret_rotate(r, now);
	cookie_make(cookie, r->secret, addr, alen);
	wn_put_u32le(out, WN_PROTECT_MSG_COOKIE);
	memcpy(out + 4, pkt + 4, 4); /* their sender index */
	r->env.random(r->env.ctx, out + 8, WN_PROTECT_COOKIE_NONCE_LEN);
	/* Bound to the initiation's mac1, so that only its sender, who
	 * knows that mac1, can use the cookie. */
	crypto_aead_xchacha20poly1305_ietf_encrypt(
	    out + 8 + WN_PROTECT_COOKIE_NONCE_LEN, NULL, cookie, sizeof(cookie),
	    pkt + len - 2 * WN_PROTECT_MAC_LEN, WN_PROTECT_MAC_LEN, NULL,
	    out + 8, r->cookie_key);
	sodium_memzero(cookie, sizeof(cookie));
	*olen = WN_PROTECT_COOKIE_REPLY_LEN;
	return 0;
}

void wn_protect_initiation_wipe(struct wn_protect_initiation *in)
{
	sodium_memzero(in, sizeof(*in));
}

int wn_protect_responder_consume(const struct wn_protect_responder *r,
                                 const uint8_t *pkt, size_t len,
                                 struct wn_protect_initiation *in)
{
	uint8_t inner[WN_PROTECT_TIMESTAMP_LEN + WN_PROTECT_PAYLOAD_MAX];
	uint8_t e_sk[WN_NOISE_DHLEN];
	uint32_t unused;
	uint8_t type;
	size_t n;
	int rc;

	memset(in, 0, sizeof(*in));
	if (wn_protect_classify(pkt, len, &type, &unused) != 0 ||
	    type != WN_PROTECT_MSG_INITIATION)
		return WN_EPROTO;
	/* mac1 before anything costly: a sender who does not know our
	 * public key is dropped here. */
	if (!mac1_ok(r->mac1_recv, pkt, len - WN_PROTECT_MAC_LEN))
		return WN_ECRYPTO;

	r->env.random(r->env.ctx, e_sk, sizeof(e_sk));
	rc = wn_noise_ik_init(&in->hs, false, prologue, PROLOGUE_LEN,
	                      r->local_sk, r->local_pk, e_sk, NULL);
	sodium_memzero(e_sk, sizeof(e_sk));
	if (rc == 0)
		rc = wn_noise_ik_read(&in->hs, pkt + 8,
		                      len - 8 - 2 * WN_PROTECT_MAC_LEN, inner,
		                      sizeof(inner), &n);
	if (rc == 0 && n < WN_PROTECT_TIMESTAMP_LEN)
		rc = WN_EPROTO; /* the length check makes this impossible */
	if (rc) {
		wn_protect_initiation_wipe(in);
		sodium_memzero(inner, sizeof(inner));
		return rc == WN_ETRUNC || rc == WN_ENOSPC ? WN_EPROTO : rc;
	}
	in->sender_index = wn_get_u32le(pkt + 4);
	memcpy(in->static_pk, in->hs.rs, WN_NOISE_DHLEN);
	memcpy(in->timestamp, inner, WN_PROTECT_TIMESTAMP_LEN);
	in->payload_len = n - WN_PROTECT_TIMESTAMP_LEN;
	memcpy(in->payload, inner + WN_PROTECT_TIMESTAMP_LEN, in->payload_len);
	sodium_memzero(inner, sizeof(inner));
	return 0;
}

int wn_protect_respond(struct wn_protect_peer *p,
                       struct wn_protect_initiation *in, uint64_t now,
                       uint8_t *out, size_t cap, size_t *len)
{
	struct wn_protect_keypair kp;
	uint32_t index;
	size_t n;
	int rc;

	if (p->initiator || in->hs.step != 1 ||
	    sodium_memcmp(p->remote_pk, in->static_pk, WN_NOISE_DHLEN) != 0) {
		rc = WN_EINVAL;
		goto out;
	}
	if (cap < WN_PROTECT_RESPONSE_LEN) {
		rc = WN_ENOSPC;
		goto out;
	}
	if ((rc = index_new(p, &index)) != 0)
		goto out;
	wn_put_u32le(out, WN_PROTECT_MSG_RESPONSE);
	wn_put_u32le(out + 4, index);
	wn_put_u32le(out + 8, in->sender_index);
	rc = wn_noise_ik_write(&in->hs, NULL, 0, out + 12,
	                       cap - 12 - WN_PROTECT_MAC_LEN, &n);
	if (rc == 0)
		rc =
		    keypair_from_hs(&kp, &in->hs, index, in->sender_index, now);
	if (rc) {
		index_del(p, index);
		goto out;
	}
	mac1_write(p->mac1_send, out, 12 + n);
	*len = 12 + n + WN_PROTECT_MAC_LEN;
	/* A newer handshake replaces one the client never confirmed. */
	keypair_drop(p, &p->next);
	keypair_move(&p->next, &kp);
out:
	wn_protect_initiation_wipe(in);
	return rc;
}
