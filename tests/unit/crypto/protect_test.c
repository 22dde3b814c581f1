/* Packet protection: both sides of the handshake, transport, replay,
 * rekeying, expiry and tampering. Set WN_BENCH=1 to print seal+open
 * throughput (ChaCha20-Poly1305 vs AES-256-GCM); nothing is asserted on
 * it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/protect.h"
#include "util/err.h"
#include "util/rw.h"

#define T0 1000000            /* monotonic ms at the start of each test */
#define WALL 1700000000000ull /* unix ms */

/* The engine's index table, as small as it can be. */
struct idxmap {
	uint32_t idx[16];
	struct wn_protect_peer *peer[16];
	int n;
	int rng_calls;
};

static void rng(void *ctx, void *buf, size_t len)
{
	struct idxmap *m = ctx;
	m->rng_calls++;
	randombytes_buf(buf, len);
}

static int idx_add(void *ctx, uint32_t index, struct wn_protect_peer *peer)
{
	struct idxmap *m = ctx;
	for (int i = 0; i < m->n; i++)
		if (m->idx[i] == index)
			return WN_EEXIST;
	assert_true(m->n < 16);
	m->idx[m->n] = index;
	m->peer[m->n++] = peer;
	return 0;
}

static void idx_del(void *ctx, uint32_t index)
{
	struct idxmap *m = ctx;
	for (int i = 0; i < m->n; i++) {
		if (m->idx[i] == index) {
			m->idx[i] = m->idx[--m->n];
			m->peer[i] = m->peer[m->n];
			return;
		}
	}
	fail_msg("index %08x released twice or never taken", index);
}

static struct wn_protect_peer *idx_find(struct idxmap *m, uint32_t index)
{
	for (int i = 0; i < m->n; i++)
		if (m->idx[i] == index)
			return m->peer[i];
	return NULL;
}

struct key {
	uint8_t sk[32], pk[32];
};

static void key_new(struct key *k)
{
	randombytes_buf(k->sk, 32);
	assert_int_equal(crypto_scalarmult_base(k->pk, k->sk), 0);
}

/* A client, a server, and the server's peer for that client. */
struct rig {
	struct key ck, sk;
	struct idxmap cmap, smap;
	struct wn_protect_env cenv, senv;
	struct wn_protect_peer client, speer;
	struct wn_protect_responder server;
	uint8_t last_ts[WN_PROTECT_TIMESTAMP_LEN]; /* kept by the engine */
};

static void rig_init(struct rig *r)
{
	memset(r, 0, sizeof(*r));
	key_new(&r->ck);
	key_new(&r->sk);
	r->cenv = (struct wn_protect_env){rng, idx_add, idx_del, &r->cmap};
	r->senv = (struct wn_protect_env){rng, idx_add, idx_del, &r->smap};
	assert_int_equal(wn_protect_peer_init(&r->client, true, r->ck.sk,
	                                      r->ck.pk, r->sk.pk, &r->cenv),
	                 0);
	assert_int_equal(
	    wn_protect_responder_init(&r->server, r->sk.sk, r->sk.pk, &r->senv),
	    0);
	assert_int_equal(wn_protect_peer_init(&r->speer, false, r->sk.sk,
	                                      r->sk.pk, r->ck.pk, &r->senv),
	                 0);
}

static void rig_wipe(struct rig *r)
{
	wn_protect_peer_wipe(&r->client);
	wn_protect_peer_wipe(&r->speer);
	wn_protect_responder_wipe(&r->server);
	/* Every index taken was given back. */
	assert_int_equal(r->cmap.n, 0);
	assert_int_equal(r->smap.n, 0);
	static const struct wn_protect_peer zero;
	assert_memory_equal(&r->client, &zero, sizeof(zero));
}

/* The server's side of an initiation, as the engine would do it. Returns
 * the wn_protect_respond result, or the reason the engine refused. */
static int server_answer(struct rig *r, const uint8_t *pkt, size_t len,
                         uint64_t now, uint8_t *resp, size_t *rlen)
{
	struct wn_protect_initiation in;
	int rc = wn_protect_responder_consume(&r->server, pkt, len, &in);
	if (rc)
		return rc;
	if (memcmp(in.static_pk, r->ck.pk, 32) != 0 ||
	    !wn_protect_timestamp_after(in.timestamp, r->last_ts)) {
		wn_protect_initiation_wipe(&in);
		return WN_EDENIED;
	}
	memcpy(r->last_ts, in.timestamp, sizeof(r->last_ts));
	return wn_protect_respond(&r->speer, &in, now, resp, 128, rlen);
}

/* A whole handshake at time now; the client does not send anything. */
static void handshake(struct rig *r, uint64_t now)
{
	uint8_t pkt[WN_PROTECT_INITIATION_MAX], resp[128];
	size_t len, rlen;
	assert_int_equal(wn_protect_initiate(&r->client, NULL, 0, WALL + now,
	                                     now, pkt, sizeof(pkt), &len),
	                 0);
	assert_int_equal(server_answer(r, pkt, len, now, resp, &rlen), 0);
	assert_int_equal(
	    wn_protect_consume_response(&r->client, resp, rlen, now), 0);
}

/* Seals msg from one peer, returns the packet in pkt. */
static size_t seal(struct wn_protect_peer *p, const char *msg, uint64_t now,
                   uint8_t *pkt)
{
	size_t n = strlen(msg), len;
	memcpy(pkt + WN_PROTECT_HEADROOM, msg, n);
	assert_int_equal(wn_protect_seal(p, pkt, n, 256, now, &len), 0);
	assert_int_equal(len, n + WN_PROTECT_OVERHEAD);
	return len;
}

/* Opens a copy of pkt and checks it carries msg. */
static void open_ok(struct wn_protect_peer *p, const uint8_t *pkt, size_t len,
                    uint64_t now, const char *msg)
{
	uint8_t buf[256];
	size_t plen;
	memcpy(buf, pkt, len);
	assert_int_equal(wn_protect_open(p, buf, len, now, &plen), 0);
	assert_int_equal(plen, strlen(msg));
	assert_memory_equal(buf + WN_PROTECT_HEADROOM, msg, plen);
}

static int open_rc(struct wn_protect_peer *p, const uint8_t *pkt, size_t len,
                   uint64_t now)
{
	uint8_t buf[256];
	size_t plen;
	memcpy(buf, pkt, len);
	return wn_protect_open(p, buf, len, now, &plen);
}

static void test_full_handshake_and_transport(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	uint8_t init[WN_PROTECT_INITIATION_MAX], resp[128], pkt[256];
	size_t len, rlen, n;
	uint8_t type;
	uint32_t ridx;

	assert_true(wn_protect_needs_rekey(&r.client, T0));
	assert_false(wn_protect_needs_rekey(&r.speer, T0));
	assert_int_equal(
	    wn_protect_seal(&r.client, pkt, 4, sizeof(pkt), T0, &n), WN_EAGAIN);

	const char *hello = "client hello, 32 bytes at most!";
	assert_int_equal(wn_protect_initiate(&r.client, (const uint8_t *)hello,
	                                     strlen(hello), WALL, T0, init,
	                                     sizeof(init), &len),
	                 0);
	assert_int_equal(len, WN_PROTECT_INITIATION_MIN + strlen(hello));
	assert_int_equal(wn_protect_classify(init, len, &type, &ridx), 0);
	assert_int_equal(type, WN_PROTECT_MSG_INITIATION);
	assert_int_equal(init[1] | init[2] | init[3], 0);
	assert_int_equal(r.cmap.n, 1); /* the handshake's index */

	struct wn_protect_initiation in;
	assert_int_equal(
	    wn_protect_responder_consume(&r.server, init, len, &in), 0);
	assert_memory_equal(in.static_pk, r.ck.pk, 32);
	assert_int_equal(in.payload_len, strlen(hello));
	assert_memory_equal(in.payload, hello, in.payload_len);
	uint8_t ts[12];
	wn_protect_tai64n(ts, WALL);
	assert_memory_equal(in.timestamp, ts, 12);
	assert_int_equal(in.sender_index, r.cmap.idx[0]);
	assert_int_equal(
	    wn_protect_respond(&r.speer, &in, T0, resp, sizeof(resp), &rlen),
	    0);
	assert_int_equal(rlen, WN_PROTECT_RESPONSE_LEN);
	assert_int_equal(in.hs.step, 0); /* wiped */
	assert_int_equal(wn_protect_classify(resp, rlen, &type, &ridx), 0);
	assert_int_equal(type, WN_PROTECT_MSG_RESPONSE);
	assert_int_equal(ridx, r.cmap.idx[0]);
	assert_int_equal(r.smap.n, 1);

	/* The server cannot send before the client confirms. */
	assert_int_equal(wn_protect_seal(&r.speer, pkt, 4, sizeof(pkt), T0, &n),
	                 WN_EAGAIN);
	assert_int_equal(
	    wn_protect_consume_response(&r.client, resp, rlen, T0 + 30), 0);
	assert_false(wn_protect_needs_rekey(&r.client, T0 + 30));
	assert_int_equal(
	    wn_protect_consume_response(&r.client, resp, rlen, T0 + 30),
	    WN_EPROTO); /* nothing pending any more */

	len = seal(&r.client, "ping", T0 + 31, pkt);
	assert_int_equal(wn_protect_classify(pkt, len, &type, &ridx), 0);
	assert_int_equal(type, WN_PROTECT_MSG_TRANSPORT);
	/* The engine finds the server's peer by the receiver index. */
	assert_ptr_equal(idx_find(&r.smap, ridx), &r.speer);
	open_ok(&r.speer, pkt, len, T0 + 40, "ping");
	len = seal(&r.speer, "pong", T0 + 41, pkt);
	open_ok(&r.client, pkt, len, T0 + 50, "pong");

	/* Keepalives (empty) and many packets both ways. */
	len = seal(&r.client, "", T0 + 51, pkt);
	assert_int_equal(len, WN_PROTECT_OVERHEAD);
	open_ok(&r.speer, pkt, len, T0 + 52, "");
	for (int i = 0; i < 3000; i++) {
		char msg[32];
		snprintf(msg, sizeof(msg), "message %d", i);
		len = seal(i % 2 ? &r.client : &r.speer, msg, T0 + 60, pkt);
		open_ok(i % 2 ? &r.speer : &r.client, pkt, len, T0 + 60, msg);
	}
	rig_wipe(&r);
}

/* A client with the wrong server key is dropped at mac1, before the server
 * does any public-key work (it has not even drawn an ephemeral). */
static void test_wrong_server_key_silent(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	struct key other;
	key_new(&other);
	struct wn_protect_peer wrong;
	assert_int_equal(wn_protect_peer_init(&wrong, true, r.ck.sk, r.ck.pk,
	                                      other.pk, &r.cenv),
	                 0);
	uint8_t init[WN_PROTECT_INITIATION_MAX];
	size_t len;
	assert_int_equal(wn_protect_initiate(&wrong, NULL, 0, WALL, T0, init,
	                                     sizeof(init), &len),
	                 0);
	struct wn_protect_initiation in;
	int calls = r.smap.rng_calls;
	assert_int_equal(
	    wn_protect_responder_consume(&r.server, init, len, &in),
	    WN_ECRYPTO);
	assert_int_equal(r.smap.rng_calls, calls);
	/* A correct mac1 over a message for another key fails later, in
	 * the Noise layer, and is dropped the same way. */
	struct wn_protect_peer fake = wrong;
	memcpy(fake.mac1_send, r.server.mac1_recv, 32);
	fake.env.index_add = NULL;
	fake.env.index_del = NULL;
	fake.hs_pending = false;
	assert_int_equal(wn_protect_initiate(&fake, NULL, 0, WALL + 1, T0, init,
	                                     sizeof(init), &len),
	                 0);
	assert_int_equal(
	    wn_protect_responder_consume(&r.server, init, len, &in),
	    WN_ECRYPTO);
	assert_int_equal(r.smap.rng_calls, calls + 1);
	static const struct wn_protect_initiation zero;
	assert_memory_equal(&in, &zero, sizeof(in)); /* wiped */
	wn_protect_peer_wipe(&fake);
	wn_protect_peer_wipe(&wrong);
	rig_wipe(&r);
}

/* A stranger with the server's public key gets through the handshake
 * checks; the caller sees its key and refuses it. */
static void test_unknown_client_refused_by_caller(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	struct key stranger;
	key_new(&stranger);
	struct wn_protect_peer s;
	assert_int_equal(wn_protect_peer_init(&s, true, stranger.sk,
	                                      stranger.pk, r.sk.pk, &r.cenv),
	                 0);
	uint8_t init[WN_PROTECT_INITIATION_MAX], resp[128];
	size_t len, rlen;
	assert_int_equal(wn_protect_initiate(&s, NULL, 0, WALL, T0, init,
	                                     sizeof(init), &len),
	                 0);
	assert_int_equal(server_answer(&r, init, len, T0, resp, &rlen),
	                 WN_EDENIED);
	/* Answering it on another client's peer is refused too. */
	struct wn_protect_initiation in;
	assert_int_equal(
	    wn_protect_responder_consume(&r.server, init, len, &in), 0);
	assert_memory_equal(in.static_pk, stranger.pk, 32);
	assert_int_equal(
	    wn_protect_respond(&r.speer, &in, T0, resp, sizeof(resp), &rlen),
	    WN_EINVAL);
	assert_int_equal(r.smap.n, 0);
	/* The initiation was wiped: it cannot be answered twice. */
	assert_int_equal(
	    wn_protect_respond(&r.speer, &in, T0, resp, sizeof(resp), &rlen),
	    WN_EINVAL);
	wn_protect_peer_wipe(&s);
	rig_wipe(&r);
}

static void test_replayed_initiation_detected(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	uint8_t init[WN_PROTECT_INITIATION_MAX], init2[sizeof(init)];
	uint8_t resp[128];
	size_t len, len2, rlen;
	assert_int_equal(wn_protect_initiate(&r.client, NULL, 0, WALL, T0, init,
	                                     sizeof(init), &len),
	                 0);
	assert_int_equal(server_answer(&r, init, len, T0, resp, &rlen), 0);
	/* The same bytes again: authentic, but not newer. */
	assert_int_equal(server_answer(&r, init, len, T0 + 1, resp, &rlen),
	                 WN_EDENIED);
	/* A fresh initiation in the same millisecond still gets a later
	 * timestamp, and one after a clock step back too. */
	assert_int_equal(wn_protect_initiate(&r.client, NULL, 0, WALL, T0,
	                                     init2, sizeof(init2), &len2),
	                 0);
	assert_int_equal(server_answer(&r, init2, len2, T0, resp, &rlen), 0);
	assert_int_equal(wn_protect_initiate(&r.client, NULL, 0, WALL - 5000,
	                                     T0, init2, sizeof(init2), &len2),
	                 0);
	assert_int_equal(server_answer(&r, init2, len2, T0, resp, &rlen), 0);
	assert_int_equal(wn_protect_consume_response(&r.client, resp, rlen, T0),
	                 0);
	assert_int_equal(server_answer(&r, init, len, T0 + 1, resp, &rlen),
	                 WN_EDENIED);
	rig_wipe(&r);
}

static void test_replayed_transport_rejected(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	handshake(&r, T0);
	uint8_t a[256], b[256];
	size_t la = seal(&r.client, "first", T0, a);
	size_t lb = seal(&r.client, "second", T0, b);
	open_ok(&r.speer, b, lb, T0, "second");
	open_ok(&r.speer, a, la, T0, "first"); /* reordered: fine */
	assert_int_equal(open_rc(&r.speer, a, la, T0), WN_EPROTO);
	assert_int_equal(open_rc(&r.speer, b, lb, T0), WN_EPROTO);
	/* Far behind the window. */
	uint8_t old[256];
	size_t lo = seal(&r.client, "old", T0, old);
	for (int i = 0; i < WN_REPLAY_WINDOW + 10; i++) {
		uint8_t p[256];
		size_t l = seal(&r.client, "x", T0, p);
		open_ok(&r.speer, p, l, T0, "x");
	}
	assert_int_equal(open_rc(&r.speer, old, lo, T0), WN_EPROTO);
	rig_wipe(&r);
}

/* After REKEY_AFTER_MS the client rekeys; packets sealed under the old
 * keys and still in flight decrypt on both sides. */
static void test_rekey_keeps_old_keypair_for_in_flight(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	handshake(&r, T0);
	uint8_t p[256], c_old[256], s_old[256], gen1[256];
	size_t l = seal(&r.client, "confirm", T0, p);
	open_ok(&r.speer, p, l, T0, "confirm");
	size_t lg1 = seal(&r.client, "gen1 never delivered", T0, gen1);

	uint64_t t = T0 + WN_PROTECT_REKEY_AFTER_MS - 1;
	assert_false(wn_protect_needs_rekey(&r.client, t));
	t++;
	assert_true(wn_protect_needs_rekey(&r.client, t));
	assert_false(wn_protect_needs_rekey(&r.speer, t));
	size_t lc = seal(&r.client, "client old", t, c_old);
	size_t ls = seal(&r.speer, "server old", t, s_old);

	handshake(&r, t);
	assert_false(wn_protect_needs_rekey(&r.client, t));
	/* The server has the new keypair as "next": it still sends with
	 * the old one, which the client keeps as previous. */
	l = seal(&r.speer, "server still old", t, p);
	open_ok(&r.client, p, l, t, "server still old");
	/* The client's first packet under the new keys confirms them. */
	l = seal(&r.client, "client new", t, p);
	open_ok(&r.speer, p, l, t, "client new");
	l = seal(&r.speer, "server new", t, p);
	open_ok(&r.client, p, l, t, "server new");
	/* And what was in flight under the old keys still arrives. */
	open_ok(&r.speer, c_old, lc, t + 10, "client old");
	open_ok(&r.client, s_old, ls, t + 10, "server old");
	assert_int_equal(r.cmap.n, 2); /* current and previous */
	assert_int_equal(r.smap.n, 2);

	/* A third handshake retires the first keypair for good. */
	t += WN_PROTECT_REKEY_AFTER_MS;
	uint8_t c_old2[256];
	size_t lc2 = seal(&r.client, "gen2", t, c_old2);
	handshake(&r, t);
	l = seal(&r.client, "gen3", t, p);
	open_ok(&r.speer, p, l, t, "gen3");
	open_ok(&r.speer, c_old2, lc2, t, "gen2");
	/* A packet for the dropped first keypair: its index is gone. */
	assert_int_equal(open_rc(&r.speer, gen1, lg1, t), WN_EPROTO);
	assert_int_equal(r.cmap.n, 2);
	assert_int_equal(r.smap.n, 2);
	rig_wipe(&r);
}

/* An unconfirmed "next" is replaced by a newer handshake; a lost response
 * is recovered by initiating again. */
static void test_lost_response_and_retry(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	uint8_t init[WN_PROTECT_INITIATION_MAX], resp[128], p[256];
	size_t len, rlen, l;
	assert_int_equal(wn_protect_initiate(&r.client, NULL, 0, WALL, T0, init,
	                                     sizeof(init), &len),
	                 0);
	assert_int_equal(server_answer(&r, init, len, T0, resp, &rlen), 0);
	/* The response is lost; the client retries after REKEY_TIMEOUT. */
	uint64_t t = T0 + WN_PROTECT_REKEY_TIMEOUT_MS;
	uint8_t old_resp[128];
	memcpy(old_resp, resp, rlen);
	assert_int_equal(wn_protect_initiate(&r.client, NULL, 0, WALL + 5000, t,
	                                     init, sizeof(init), &len),
	                 0);
	assert_int_equal(r.cmap.n, 1); /* the old handshake index is gone */
	assert_int_equal(server_answer(&r, init, len, t, resp, &rlen), 0);
	assert_int_equal(r.smap.n, 1); /* the old next was replaced */
	/* The stale response arrives late: wrong index, ignored. */
	assert_int_equal(
	    wn_protect_consume_response(&r.client, old_resp, rlen, t),
	    WN_EPROTO);
	assert_int_equal(wn_protect_consume_response(&r.client, resp, rlen, t),
	                 0);
	l = seal(&r.client, "hi", t, p);
	open_ok(&r.speer, p, l, t, "hi");
	rig_wipe(&r);
}

static void test_expiry_at_reject_after_time(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	handshake(&r, T0);
	uint8_t p[256], late[256];
	size_t l = seal(&r.client, "confirm", T0, p);
	open_ok(&r.speer, p, l, T0, "confirm");
	assert_int_equal(wn_protect_next_expiry(&r.client),
	                 T0 + WN_PROTECT_REJECT_AFTER_MS);

	uint64_t t = T0 + WN_PROTECT_REJECT_AFTER_MS - 1;
	size_t ll = seal(&r.client, "late", t, late);
	assert_true(wn_protect_can_send(&r.speer, t));
	t++;
	size_t n;
	assert_int_equal(wn_protect_seal(&r.client, p, 1, sizeof(p), t, &n),
	                 WN_EAGAIN);
	assert_int_equal(wn_protect_seal(&r.speer, p, 1, sizeof(p), t, &n),
	                 WN_EAGAIN);
	assert_false(wn_protect_can_send(&r.client, t));
	assert_true(wn_protect_needs_rekey(&r.client, t));
	assert_int_equal(open_rc(&r.speer, late, ll, t), WN_ETIMEDOUT);

	/* tick frees the expired keys and their indices. */
	assert_int_equal(r.smap.n, 1);
	wn_protect_tick(&r.speer, t - 1);
	assert_int_equal(r.smap.n, 1);
	wn_protect_tick(&r.speer, t);
	wn_protect_tick(&r.client, t);
	assert_int_equal(r.smap.n, 0);
	assert_int_equal(r.cmap.n, 0);
	assert_int_equal(wn_protect_next_expiry(&r.client), UINT64_MAX);
	assert_int_equal(open_rc(&r.speer, late, ll, t), WN_EPROTO);

	/* A handshake nobody answers is dropped after as long. */
	uint8_t init[WN_PROTECT_INITIATION_MAX];
	assert_int_equal(wn_protect_initiate(&r.client, NULL, 0, WALL + t, t,
	                                     init, sizeof(init), &n),
	                 0);
	assert_int_equal(wn_protect_next_expiry(&r.client),
	                 t + WN_PROTECT_REJECT_AFTER_MS);
	wn_protect_tick(&r.client, t + WN_PROTECT_REJECT_AFTER_MS);
	assert_int_equal(r.cmap.n, 0);
	rig_wipe(&r);
}

/* Recomputes the mac1 of a handshake message for the receiver's key pk,
 * so that a tampered message reaches the Noise layer. */
/* Rewrites the mac1 that ends pkt[0, len) (an initiation's: pass the
 * length without its mac2). */
static void remac(uint8_t *pkt, size_t len, const uint8_t pk[32])
{
	uint8_t key[32], in[40];
	memcpy(in, "mac1----", 8);
	memcpy(in + 8, pk, 32);
	crypto_generichash_blake2b(key, 32, in, 40, NULL, 0);
	crypto_generichash_blake2b(pkt + len - 16, 16, pkt, len - 16, key, 32);
}

/* Every single-bit flip of every message is refused, and refusing it
 * changes nothing: the original is accepted afterwards. */
static void test_bit_flips_rejected(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	uint8_t init[WN_PROTECT_INITIATION_MAX], resp[128], bad[256];
	size_t len, rlen, l;
	struct wn_protect_initiation in;
	assert_int_equal(wn_protect_initiate(&r.client, (const uint8_t *)"pl",
	                                     2, WALL, T0, init, sizeof(init),
	                                     &len),
	                 0);
	/* Everything up to mac2, which is the admission's business
	 * (test_cookie_*). */
	for (size_t i = 0; i < (len - 16) * 8; i++) {
		memcpy(bad, init, len);
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_not_equal(
		    wn_protect_responder_consume(&r.server, bad, len, &in), 0);
	}
	/* With a valid mac1, the Noise layer refuses the same flips. */
	for (size_t i = 8 * 8; i < (len - 32) * 8; i++) {
		memcpy(bad, init, len);
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		remac(bad, len - 16, r.sk.pk);
		assert_int_equal(
		    wn_protect_responder_consume(&r.server, bad, len, &in),
		    WN_ECRYPTO);
	}
	assert_int_equal(server_answer(&r, init, len, T0, resp, &rlen), 0);
	for (size_t i = 0; i < rlen * 8; i++) {
		memcpy(bad, resp, rlen);
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_not_equal(
		    wn_protect_consume_response(&r.client, bad, rlen, T0), 0);
		/* Past the indices, a valid mac1 does not help. */
		if (i >= 12 * 8 && i < (rlen - 16) * 8) {
			remac(bad, rlen, r.ck.pk);
			assert_int_equal(wn_protect_consume_response(
			                     &r.client, bad, rlen, T0),
			                 WN_ECRYPTO);
		}
	}
	assert_int_equal(wn_protect_consume_response(&r.client, resp, rlen, T0),
	                 0);
	uint8_t p[256];
	for (int dir = 0; dir < 2; dir++) {
		struct wn_protect_peer *tx = dir ? &r.speer : &r.client;
		struct wn_protect_peer *rx = dir ? &r.client : &r.speer;
		l = seal(tx, "some transport payload", T0, p);
		for (size_t i = 0; i < l * 8; i++) {
			memcpy(bad, p, l);
			bad[i / 8] ^= (uint8_t)(1u << (i % 8));
			assert_int_not_equal(open_rc(rx, bad, l, T0), 0);
		}
		open_ok(rx, p, l, T0, "some transport payload");
	}
	/* Truncation and extension. */
	l = seal(&r.client, "abc", T0, p);
	for (size_t n = 0; n < l; n++)
		assert_int_not_equal(open_rc(&r.speer, p, n, T0), 0);
	p[l] = 0;
	assert_int_equal(open_rc(&r.speer, p, l + 1, T0), WN_ECRYPTO);
	assert_int_not_equal(
	    wn_protect_responder_consume(&r.server, init, len - 1, &in), 0);
	memcpy(bad, init, len);
	bad[len] = 0;
	assert_int_not_equal(
	    wn_protect_responder_consume(&r.server, bad, len + 1, &in), 0);
	rig_wipe(&r);
}

/* The cookie exchange: an initiation without mac2 under load gets a
 * cookie reply; the client takes it, retries at once, and its next
 * initiation carries a mac2 the server accepts for that address only,
 * under the current and the previous secret. */
static void test_cookie_exchange(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	static const uint8_t addr[] = {2, 0x1f, 0x90, 10, 0, 0, 1};
	static const uint8_t other[] = {2, 0x1f, 0x91, 10, 0, 0, 1};
	uint8_t init[WN_PROTECT_INITIATION_MAX], reply[128], resp[128];
	size_t len, olen, rlen;
	bool mac2, retry;

	assert_int_equal(wn_protect_initiate(&r.client, NULL, 0, WALL, T0, init,
	                                     sizeof(init), &len),
	                 0);
	assert_int_equal(wn_protect_responder_check(&r.server, init, len, addr,
	                                            sizeof(addr), T0, &mac2),
	                 0);
	assert_false(mac2);
	/* mac1 is checked first: one flipped bit and nothing else counts. */
	init[20] ^= 1;
	assert_int_equal(wn_protect_responder_check(&r.server, init, len, addr,
	                                            sizeof(addr), T0, &mac2),
	                 WN_ECRYPTO);
	init[20] ^= 1;
	assert_int_equal(wn_protect_cookie_reply(&r.server, init, len, addr,
	                                         sizeof(addr), T0, reply,
	                                         sizeof(reply), &olen),
	                 0);
	assert_int_equal(olen, WN_PROTECT_COOKIE_REPLY_LEN);
	assert_true(olen < len); /* no amplification */
	/* Tampered replies are refused and change nothing. */
	for (size_t i = 0; i < olen * 8; i++) {
		uint8_t bad[128];
		memcpy(bad, reply, olen);
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_not_equal(
		    wn_protect_consume_cookie(&r.client, bad, olen, T0, &retry),
		    0);
		assert_false(retry);
	}
	assert_int_equal(
	    wn_protect_consume_cookie(&r.client, reply, olen, T0, &retry), 0);
	assert_true(retry);
	/* The same reply again does not make the client send again. */
	assert_int_equal(
	    wn_protect_consume_cookie(&r.client, reply, olen, T0, &retry), 0);
	assert_false(retry);

	assert_int_equal(wn_protect_initiate(&r.client, NULL, 0, WALL + 1,
	                                     T0 + 1, init, sizeof(init), &len),
	                 0);
	/* The old reply names the old initiation, and is bound to its
	 * mac1 even with the new one's index written in. */
	assert_int_equal(
	    wn_protect_consume_cookie(&r.client, reply, olen, T0 + 1, &retry),
	    WN_EPROTO);
	memcpy(reply + 4, init + 4, 4);
	assert_int_equal(
	    wn_protect_consume_cookie(&r.client, reply, olen, T0 + 1, &retry),
	    WN_ECRYPTO);
	assert_int_equal(wn_protect_responder_check(&r.server, init, len, addr,
	                                            sizeof(addr), T0 + 1,
	                                            &mac2),
	                 0);
	assert_true(mac2);
	assert_int_equal(wn_protect_responder_check(&r.server, init, len, other,
	                                            sizeof(other), T0 + 1,
	                                            &mac2),
	                 0);
	assert_false(mac2); /* another address (here: port) */
	/* mac2 changed: still no valid mac2, and mac1 still holds. */
	init[len - 1] ^= 1;
	assert_int_equal(wn_protect_responder_check(&r.server, init, len, addr,
	                                            sizeof(addr), T0 + 1,
	                                            &mac2),
	                 0);
	assert_false(mac2);
	init[len - 1] ^= 1;
	/* One rotation later the previous secret still takes it; two, no. */
	uint64_t t1 = T0 + WN_PROTECT_COOKIE_SECRET_MS + 10;
	assert_int_equal(wn_protect_responder_check(&r.server, init, len, addr,
	                                            sizeof(addr), t1, &mac2),
	                 0);
	assert_true(mac2);
	assert_int_equal(wn_protect_responder_check(
	                     &r.server, init, len, addr, sizeof(addr),
	                     t1 + WN_PROTECT_COOKIE_SECRET_MS + 10, &mac2),
	                 0);
	assert_false(mac2);
	/* The handshake itself goes on as ever. */
	assert_int_equal(server_answer(&r, init, len, T0 + 1, resp, &rlen), 0);
	assert_int_equal(
	    wn_protect_consume_response(&r.client, resp, rlen, T0 + 1), 0);

	/* The client stops using a cookie before the server forgets it. */
	assert_int_equal(wn_protect_initiate(&r.client, NULL, 0, WALL + 2,
	                                     T0 + WN_PROTECT_COOKIE_USE_MS,
	                                     init, sizeof(init), &len),
	                 0);
	static const uint8_t zero[WN_PROTECT_MAC_LEN];
	assert_memory_equal(init + len - WN_PROTECT_MAC_LEN, zero,
	                    sizeof(zero));
	rig_wipe(&r);
}

/* Cookie replies that keep coming (forged by someone who knows the
 * server's public key, or repeated) make the client send at most one
 * extra initiation per pending handshake and per
 * WN_PROTECT_COOKIE_RETRY_MS. */
static void test_cookie_retry_bounded(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	uint8_t init[WN_PROTECT_INITIATION_MAX], reply[128];
	size_t len, olen;
	bool retry;
	int retries = 0;
	uint64_t now = T0;
	for (int i = 0; i < 100; i++, now += 10) {
		assert_int_equal(wn_protect_initiate(&r.client, NULL, 0,
		                                     WALL + now, now, init,
		                                     sizeof(init), &len),
		                 0);
		/* A different address each time gives a different cookie. */
		uint8_t addr[7] = {2, 0, 0, 10, 0, 0, (uint8_t)i};
		assert_int_equal(wn_protect_cookie_reply(
		                     &r.server, init, len, addr, sizeof(addr),
		                     now, reply, sizeof(reply), &olen),
		                 0);
		assert_int_equal(wn_protect_consume_cookie(&r.client, reply,
		                                           olen, now, &retry),
		                 0);
		retries += retry;
	}
	/* 100 replies over one second: the first, and one after 1000 ms. */
	assert_true(retries <= 2);
	assert_true(retries >= 1);
	/* Not an initiator, or nothing pending: refused. */
	assert_int_equal(
	    wn_protect_consume_cookie(&r.speer, reply, olen, now, &retry),
	    WN_EPROTO);
	rig_wipe(&r);
}

static void test_lengths_and_types(void **state)
{
	(void)state;
	uint8_t pkt[256] = {0};
	uint8_t type;
	uint32_t idx;
	assert_int_equal(wn_protect_classify(pkt, 0, &type, &idx), WN_EPROTO);
	assert_int_equal(wn_protect_classify(NULL, 0, &type, &idx), WN_EPROTO);
	pkt[0] = WN_PROTECT_MSG_COOKIE;
	pkt[4] = 9;
	assert_int_equal(wn_protect_classify(pkt, 63, &type, &idx), WN_EPROTO);
	assert_int_equal(wn_protect_classify(pkt, 65, &type, &idx), WN_EPROTO);
	assert_int_equal(wn_protect_classify(pkt, 64, &type, &idx), 0);
	assert_int_equal(idx, 9);
	assert_int_equal(WN_PROTECT_COOKIE_REPLY_LEN, 64);
	pkt[0] = WN_PROTECT_MSG_TRANSPORT;
	pkt[4] = 7;
	assert_int_equal(wn_protect_classify(pkt, 31, &type, &idx), WN_EPROTO);
	assert_int_equal(wn_protect_classify(pkt, 32, &type, &idx), 0);
	assert_int_equal(idx, 7);
	pkt[3] = 1; /* reserved byte */
	assert_int_equal(wn_protect_classify(pkt, 32, &type, &idx), WN_EPROTO);
	pkt[3] = 0;
	pkt[0] = WN_PROTECT_MSG_RESPONSE;
	assert_int_equal(
	    wn_protect_classify(pkt, WN_PROTECT_RESPONSE_LEN - 1, &type, &idx),
	    WN_EPROTO);
	pkt[0] = WN_PROTECT_MSG_INITIATION;
	assert_int_equal(wn_protect_classify(pkt, WN_PROTECT_INITIATION_MAX + 1,
	                                     &type, &idx),
	                 WN_EPROTO);
	assert_int_equal(WN_PROTECT_INITIATION_MIN, 148);
	assert_int_equal(WN_PROTECT_RESPONSE_LEN, 76);

	struct rig r;
	rig_init(&r);
	handshake(&r, T0);
	size_t n;
	assert_int_equal(wn_protect_seal(&r.client, pkt, 10, 41, T0, &n),
	                 WN_ENOSPC);
	assert_int_equal(wn_protect_seal(&r.client, pkt, 10, 42, T0, &n), 0);
	assert_int_equal(wn_protect_seal(&r.client, pkt, 0, 31, T0, &n),
	                 WN_ENOSPC);
	uint8_t init[WN_PROTECT_INITIATION_MAX];
	assert_int_equal(wn_protect_initiate(&r.client, pkt, 33, WALL, T0, init,
	                                     sizeof(init), &n),
	                 WN_EINVAL);
	assert_int_equal(wn_protect_initiate(&r.client, pkt, 32, WALL, T0, init,
	                                     WN_PROTECT_INITIATION_MAX - 1, &n),
	                 WN_ENOSPC);
	assert_int_equal(wn_protect_initiate(&r.speer, pkt, 0, WALL, T0, init,
	                                     sizeof(init), &n),
	                 WN_EINVAL);
	struct wn_protect_env none = {0};
	struct wn_protect_peer p;
	assert_int_equal(
	    wn_protect_peer_init(&p, true, r.ck.sk, r.ck.pk, r.sk.pk, &none),
	    WN_EINVAL);
	rig_wipe(&r);
}

static void test_timestamps(void **state)
{
	(void)state;
	uint8_t a[12], b[12];
	wn_protect_tai64n(a, 0);
	static const uint8_t epoch[12] = {0x40, 0, 0, 0, 0, 0, 0, 0x0a};
	assert_memory_equal(a, epoch, 12);
	wn_protect_tai64n(a, 1999);
	assert_int_equal(a[7], 0x0b);
	assert_int_equal(wn_get_u32be(a + 8), 999000000u);
	wn_protect_tai64n(b, 2000);
	assert_true(wn_protect_timestamp_after(b, a));
	assert_false(wn_protect_timestamp_after(a, b));
	assert_false(wn_protect_timestamp_after(a, a));
}

static double secs(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Throughput of seal+open for 1400-byte packets; printed, not asserted. */
static void test_bench(void **state)
{
	(void)state;
	if (!getenv("WN_BENCH"))
		skip();
	enum { PLEN = 1400, N = 200000 };
	struct rig r;
	rig_init(&r);
	handshake(&r, T0);
	static uint8_t buf[PLEN + WN_PROTECT_OVERHEAD];
	size_t n, pl;
	randombytes_buf(buf, sizeof(buf));
	double t = secs();
	for (int i = 0; i < N; i++) {
		assert_int_equal(
		    wn_protect_seal(&r.client, buf, PLEN, sizeof(buf), T0, &n),
		    0);
		assert_int_equal(wn_protect_open(&r.speer, buf, n, T0, &pl), 0);
	}
	t = secs() - t;
	printf("protect chacha20-poly1305 seal+open %d B: %.0f MB/s "
	       "(%.0f kpkt/s)\n",
	       PLEN, (double)N * PLEN / t / 1e6, N / t / 1e3);

	/* The server's cost per accepted initiation (consume + respond),
	 * and per initiation refused at mac1. */
	enum { H = 2000 };
	uint8_t init[WN_PROTECT_INITIATION_MAX], resp[128];
	size_t ilen, rlen;
	struct wn_protect_initiation in;
	assert_int_equal(wn_protect_initiate(&r.client, NULL, 0, WALL, T0, init,
	                                     sizeof(init), &ilen),
	                 0);
	t = secs();
	for (int i = 0; i < H; i++) {
		assert_int_equal(
		    wn_protect_responder_consume(&r.server, init, ilen, &in),
		    0);
		assert_int_equal(wn_protect_respond(&r.speer, &in, T0, resp,
		                                    sizeof(resp), &rlen),
		                 0);
	}
	t = secs() - t;
	printf("server handshake (consume + respond): %.1f us each\n",
	       t / H * 1e6);
	init[ilen - 1] ^= 1;
	t = secs();
	for (int i = 0; i < H * 50; i++)
		assert_int_equal(
		    wn_protect_responder_consume(&r.server, init, ilen, &in),
		    WN_ECRYPTO);
	t = secs() - t;
	printf("server initiation refused at mac1: %.2f us each\n",
	       t / (H * 50) * 1e6);

	uint8_t key[32], nonce[12] = {0}, mac[16];
	randombytes_buf(key, sizeof(key));
	t = secs();
	for (int i = 0; i < N; i++) {
		nonce[4] = (uint8_t)i;
		crypto_aead_chacha20poly1305_ietf_encrypt_detached(
		    buf, mac, NULL, buf, PLEN, NULL, 0, NULL, nonce, key);
		assert_int_equal(
		    crypto_aead_chacha20poly1305_ietf_decrypt_detached(
		        buf, NULL, buf, PLEN, mac, NULL, 0, nonce, key),
		    0);
	}
	t = secs() - t;
	printf("raw    chacha20-poly1305 seal+open %d B: %.0f MB/s\n", PLEN,
	       (double)N * PLEN / t / 1e6);
	if (!crypto_aead_aes256gcm_is_available()) {
		printf("aes256gcm: not available on this CPU\n");
	} else {
		crypto_aead_aes256gcm_state st;
		crypto_aead_aes256gcm_beforenm(&st, key);
		t = secs();
		for (int i = 0; i < N; i++) {
			nonce[4] = (uint8_t)i;
			crypto_aead_aes256gcm_encrypt_detached_afternm(
			    buf, mac, NULL, buf, PLEN, NULL, 0, NULL, nonce,
			    &st);
			assert_int_equal(
			    crypto_aead_aes256gcm_decrypt_detached_afternm(
			        buf, NULL, buf, PLEN, mac, NULL, 0, nonce, &st),
			    0);
		}
		t = secs() - t;
		printf("raw    aes-256-gcm       seal+open %d B: %.0f MB/s\n",
		       PLEN, (double)N * PLEN / t / 1e6);
	}
	rig_wipe(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_handshake_and_transport),
	    cmocka_unit_test(test_wrong_server_key_silent),
	    cmocka_unit_test(test_unknown_client_refused_by_caller),
	    cmocka_unit_test(test_replayed_initiation_detected),
	    cmocka_unit_test(test_replayed_transport_rejected),
	    cmocka_unit_test(test_rekey_keeps_old_keypair_for_in_flight),
	    cmocka_unit_test(test_lost_response_and_retry),
	    cmocka_unit_test(test_expiry_at_reject_after_time),
	    cmocka_unit_test(test_bit_flips_rejected),
	    cmocka_unit_test(test_cookie_exchange),
	    cmocka_unit_test(test_cookie_retry_bounded),
	    cmocka_unit_test(test_lengths_and_types),
	    cmocka_unit_test(test_timestamps),
	    cmocka_unit_test(test_bench),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
