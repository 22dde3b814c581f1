/* The KCP engine's server: sessions by client key (or, for kcptun, by
 * client address), handshakes, roaming (see kcp_engine_int.h); the
 * server's engine operations (engine_ops.h). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/prefixlimit.h"
#include "crypto/hsadmit.h"
#include "engine/flow_base.h"
#include "engine/kcp_engine_int.h"
#include "util/err.h"
#include "util/rw.h"

/* ---- server ------------------------------------------------------------ */

struct kclient {
	uint8_t key[WN_KEY_LEN]; /* Ed25519 identity */
	uint8_t x[WN_KEY_LEN];   /* its X25519 form, as handshakes show it */
	uint8_t last_ts[WN_PROTECT_TIMESTAMP_LEN]; /* newest initiation */
	struct ksession *sess;   /* its live session, if any */
	uint64_t swaps_since_ms; /* when the counting of swaps began */
	unsigned swaps;          /* sessions replaced since then */
};

/* A key is one client: two clients that share one replace each other's
 * session in turn, and each sees its connections fail. A restart
 * replaces the session once; this many within the window says why. */
#define SWAPS_WARN 3
#define SWAPS_WINDOW_MS 60000

/* kcptun: new sessions per source prefix (/24, /64). A kcptun client opens
 * one session (or --conn of them) and a new one when it restarts, so this
 * is far above what clients behind one prefix need, and it stops one
 * source (or one spoofing a neighbourhood) from filling the table. */
#define KT_NEW_PER_S 8
#define KT_NEW_BURST 32
#define KT_LIMIT_SLOTS 4096

struct wn_kcp_server {
	struct kep ep;                /* first */
	struct wn_hsadmit adm;        /* which initiations cost us DH work */
	struct wn_prefixlimit kt_new; /* kcptun: new sessions per prefix */
	struct wn_protect_responder resp;
	struct kclient *clients;
	size_t nclients;
	struct wn_cidmap by_index; /* our local index -> ksession */
	struct wn_cidmap by_addr;  /* kcptun: client address -> ksession */
	struct wn_list sessions;
	size_t nsessions;
	int closing;
	struct wn_deferred dnode;
};

static struct wn_kcp_server *server_of(struct kep *ep)
{
	return (struct wn_kcp_server *)ep;
}

static struct wn_kcp_server *engine_server(struct wn_engine *e)
{
	return server_of(wn__kep_of(e));
}

static const struct wn_kcp_server *cengine_server(const struct wn_engine *e)
{
	return (const struct wn_kcp_server *)wn__kep_cof(e);
}

static int srv_index_add(void *ctx, uint32_t index, struct wn_protect_peer *p)
{
	struct wn_kcp_server *s = ctx;
	struct ksession *ks = wn_list_entry(p, struct ksession, peer);
	uint8_t key[4];
	wn_put_u32le(key, index);
	if (wn_cidmap_get(&s->by_index, key, 4))
		return WN_EEXIST;
	return wn_cidmap_add(&s->by_index, key, 4, ks);
}

static void srv_index_del(void *ctx, uint32_t index)
{
	struct wn_kcp_server *s = ctx;
	uint8_t key[4];
	wn_put_u32le(key, index);
	wn_cidmap_del(&s->by_index, key, 4);
}

/* A client address as a map key: family, port, address (19 bytes at
 * most). Returns the key's length. */
static size_t addr_key(const struct sockaddr *sa, uint8_t key[WN_CID_MAX])
{
	key[0] = (uint8_t)sa->sa_family;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		memcpy(key + 1, &a->sin6_port, 2);
		memcpy(key + 3, &a->sin6_addr, 16);
		return 19;
	}
	const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
	memcpy(key + 1, &a->sin_port, 2);
	memcpy(key + 3, &a->sin_addr, 4);
	return 7;
}

static void server_sess_dead(struct kep *ep, struct ksession *ks)
{
	struct wn_kcp_server *s = server_of(ep);
	wn_log_event(ep->o.log, WN_LOG_INFO, "sess", '-', ks->tunnel.peer_id,
	             (long)s->nsessions - 1, ks->why);
	if (ks->client_index >= 0 && s->clients[ks->client_index].sess == ks)
		s->clients[ks->client_index].sess = NULL;
	if (ep->kt) {
		uint8_t key[WN_CID_MAX];
		size_t klen = addr_key((struct sockaddr *)&ks->remote, key);
		if (wn_cidmap_get(&s->by_addr, key, klen) == ks)
			wn_cidmap_del(&s->by_addr, key, klen);
	}
	if (wn_list_linked(&ks->link)) {
		wn_list_del(&ks->link);
		s->nsessions--;
	}
	/* Its indices go now, so no packet reaches a dead session. */
	if (ks->peer_live)
		wn_protect_peer_wipe(&ks->peer);
	ks->peer_live = 0;
}

/* ---- the flow base's transport (flow_base.h): one session's ----------- */

static int srv_fb_send(struct wn_flows *fl, const uint8_t *msg, size_t len)
{
	return wn__ksession_dgram_send(wn_fb_ctx(fl), msg, len);
}

static size_t srv_fb_max_msg(const struct wn_flows *fl)
{
	return wn__ksession_dgram_max(wn_fb_ctx(fl));
}

static uint64_t srv_fb_now(const struct wn_flows *fl)
{
	const struct ksession *ks = wn_fb_ctx(fl);
	return wn__kep_now(ks->ep);
}

static const struct wn_fb_transport srv_fb = {
    .send = srv_fb_send,
    .max_msg = srv_fb_max_msg,
    .now_ms = srv_fb_now,
};

/* A new session for client i, whose initiation named sess_id and conv. */
static struct ksession *server_new_session(struct wn_kcp_server *s,
                                           struct wn_carrier *car, size_t i,
                                           const uint8_t *sess_id,
                                           uint32_t conv)
{
	struct kclient *kc = &s->clients[i];
	/* Sized for the carrier its first packet came on, as QUIC's. */
	struct ksession *ks =
	    wn__ksession_new(&s->ep, kc->key, conv, wn_carrier_max_packet(car));
	if (!ks)
		return NULL;
	memcpy(ks->sess_id, sess_id, 8);
	ks->client_index = (int)i;
	struct wn_protect_env env = {
	    .random = wn_protect_random_sodium,
	    .index_add = srv_index_add,
	    .index_del = srv_index_del,
	    .ctx = s,
	};
	const struct wn_identity *id = s->ep.o.id;
	if (wn_protect_peer_init(&ks->peer, false, id->x_sk, id->x_pk, kc->x,
	                         &env) != 0) {
		wn__ksession_free(ks);
		return NULL;
	}
	ks->peer_live = 1;
	/* Its flows live as long as the session: rekeys keep both. */
	ks->flows = wn_fb_new(&srv_fb, ks, s->ep.o.loop, s->ep.o.log,
	                      &ks->tunnel, &s->ep.ah, 0);
	if (!ks->flows) {
		wn__ksession_free(ks);
		return NULL;
	}
	ks->flows_own = 1;
	ks->tunnel.flows = ks->flows;
	ks->state = KS_UP;
	ks->was_up = 1;
	ks->created_ms = wn__kep_now(&s->ep);
	wn_list_add_tail(&s->sessions, &ks->link);
	s->nsessions++;
	kc->sess = ks;
	return ks;
}

/* The source of a packet for per-source budgets: the address without
 * the port, IPv6 by its /64 (one host's usual share). */
static size_t source_key(const uint8_t *akey, size_t alen,
                         uint8_t out[WN_HSADMIT_SRC_KEY_MAX])
{
	size_t n = alen == 19 ? 8 : alen - 3;
	out[0] = akey[0];
	memcpy(out + 1, akey + 3, n);
	return 1 + n;
}

/* Whether an initiation that passed mac1 may cost us the DH work (see
 * crypto/hsadmit.h); answers it with a cookie reply under load. */
static int server_admit(struct wn_kcp_server *s, struct wn_carrier *car,
                        const struct sockaddr *from, socklen_t fromlen,
                        const uint8_t *pkt, size_t len, uint64_t now)
{
	uint8_t akey[WN_CID_MAX], skey[WN_HSADMIT_SRC_KEY_MAX];
	size_t alen = addr_key(from, akey);
	bool mac2;
	if (wn_protect_responder_check(&s->resp, pkt, len, akey, alen, now,
	                               &mac2) != 0)
		return -1; /* a stranger: not a word */
	size_t slen = source_key(akey, alen, skey);
	switch (wn_hsadmit_check(&s->adm, pkt + len - 2 * WN_PROTECT_MAC_LEN,
	                         skey, slen, mac2, now)) {
	case WN_HSADMIT_GO:
		return 0;
	case WN_HSADMIT_COOKIE: {
		uint8_t out[WN_PROTECT_COOKIE_REPLY_LEN];
		size_t olen;
		if (wn_protect_cookie_reply(&s->resp, pkt, len, akey, alen, now,
		                            out, sizeof(out), &olen) == 0 &&
		    wn_carrier_send(car, from, fromlen, out, olen, olen) == 0)
			s->ep.stats.cookies++;
		WN_LOG_RL(s->ep.o.log, &s->ep.rl_drop, now, WN_LOG_WARN, "sess",
		          "many handshakes: answering with cookies");
		return -1;
	}
	case WN_HSADMIT_LIMIT:
		WN_LOG_RL(s->ep.o.log, &s->ep.rl_drop, now, WN_LOG_WARN, "sess",
		          "too many handshakes from one source: dropping some");
		return -1;
	case WN_HSADMIT_REPLAY:
		break;
	}
	return -1;
}

/* A handshake initiation: answered only for a listed client, with a
 * timestamp newer than its last, that proved it knows our key and that
 * server_admit let through. Anything else is dropped without a word. */
static void server_initiation(struct wn_kcp_server *s, struct wn_carrier *car,
                              const struct sockaddr *from, socklen_t fromlen,
                              const uint8_t *pkt, size_t len)
{
	uint64_t now = wn__kep_now(&s->ep);
	if (server_admit(s, car, from, fromlen, pkt, len, now) != 0) {
		s->ep.stats.pkts_dropped++;
		return;
	}
	struct wn_protect_initiation in;
	if (wn_protect_responder_consume(&s->resp, pkt, len, &in) != 0) {
		s->ep.stats.pkts_dropped++;
		return;
	}
	size_t i;
	for (i = 0; i < s->nclients; i++)
		if (sodium_memcmp(s->clients[i].x, in.static_pk, WN_KEY_LEN) ==
		    0)
			break;
	const char *why = NULL;
	char vwhy[128];
	unsigned ver =
	    s->ep.o.hs_version ? s->ep.o.hs_version : HS_PAYLOAD_VERSION;
	if (i == s->nclients)
		why = "unknown client key";
	else if (!wn_protect_timestamp_after(in.timestamp,
	                                     s->clients[i].last_ts))
		why = "replayed handshake";
	else if (in.payload_len >= 1 && in.payload[0] != ver) {
		/* Another release's client: its packets would not parse as
		 * ours (docs/wire-format.md, "KCP engine session"), so it
		 * gets no session, and the log says why. */
		s->ep.stats.version_refused++;
		char kname[16];
		wn__kep_key_name(s->clients[i].key, kname);
		snprintf(vwhy, sizeof(vwhy),
		         "client %s speaks KCP session version %u, this "
		         "server %u: run the same warren release on both ends",
		         kname, in.payload[0], ver);
		why = vwhy;
	} else if (in.payload_len != HS_PAYLOAD_LEN)
		why = "malformed handshake payload";
	if (why) {
		s->ep.stats.auth_failures++;
		char addr[64];
		wn_sockaddr_format(from, addr, sizeof(addr));
		WN_LOG_RL(s->ep.o.log, &s->ep.rl_drop, now, WN_LOG_WARN, "sess",
		          "refused %s: %s", addr, why);
		wn_protect_initiation_wipe(&in);
		return;
	}
	struct kclient *kc = &s->clients[i];
	const uint8_t *sess_id = in.payload + 1;
	uint32_t conv = wn_get_u32le(in.payload + 9);
	struct ksession *ks = kc->sess;
	if (ks && (memcmp(ks->sess_id, sess_id, 8) != 0 || ks->conv != conv)) {
		/* The client started over (a restart, or it gave up on
		 * us): its old session is gone for good. */
		wn__ksession_kill(ks, "replaced by a new session");
		ks = NULL;
		if (now - kc->swaps_since_ms > SWAPS_WINDOW_MS) {
			kc->swaps_since_ms = now;
			kc->swaps = 0;
		}
		if (++kc->swaps >= SWAPS_WARN) {
			char kname[16];
			wn__kep_key_name(kc->key, kname);
			WN_LOG_RL(s->ep.o.log, &s->ep.rl_drop, now, WN_LOG_WARN,
			          "sess",
			          "client %s: %u new sessions within a minute: "
			          "is its key used by more than one client? A "
			          "key is one client, one session at a time",
			          kname, kc->swaps);
		}
	}
	if (!ks) {
		if (s->nsessions >= s->ep.o.max_sessions || s->closing) {
			WN_LOG_RL(s->ep.o.log, &s->ep.rl_drop, now, WN_LOG_WARN,
			          "sess",
			          "handshake refused: %zu sessions live",
			          s->nsessions);
			wn_protect_initiation_wipe(&in);
			return;
		}
		ks = server_new_session(s, car, i, sess_id, conv);
		if (!ks) {
			wn_protect_initiation_wipe(&in);
			return;
		}
		wn_log_event(s->ep.o.log, WN_LOG_INFO, "sess", '+',
		             ks->tunnel.peer_id, (long)s->nsessions,
		             "client connected");
	} else {
		s->ep.stats.rekeys++;
	}
	memcpy(kc->last_ts, in.timestamp, sizeof(kc->last_ts));
	uint8_t out[WN_PROTECT_RESPONSE_LEN];
	size_t olen;
	if (wn_protect_respond(&ks->peer, &in, now, out, sizeof(out), &olen) !=
	    0)
		return;
	s->ep.stats.handshakes++;
	/* A listed client's fresh initiation: tell the carrier (carrier.h). */
	wn_carrier_authenticated(car, from, fromlen);
	ks->carrier = car;
	memcpy(&ks->remote, from, fromlen);
	ks->rlen = fromlen;
	wn_kcp_sess_touch(ks->core, now);
	wn__ksession_send_now(ks, out, olen);
}

/* kcptun: sessions are found by the client's address, as kcp-go's listener
 * does. A packet from a new address starts a session with its conv; one
 * with another conv and sn 0 replaces the session there (a restarted
 * client); anything else that does not match is dropped. */
static void kt_server_recv(struct wn_kcp_server *s, struct wn_carrier *car,
                           const struct sockaddr *from, socklen_t fromlen,
                           uint8_t *pkt, size_t len)
{
	struct wn_kcpgo_pkt fp;
	if (wn__ktprof_open(&s->ep, from, pkt, len, &fp) != 0)
		return;
	uint8_t key[WN_CID_MAX];
	size_t keylen = addr_key(from, key);
	struct ksession *ks = wn_cidmap_get(&s->by_addr, key, keylen);
	struct wn_kcp_hdr h;
	if (fp.kind == WN_KCPGO_PARITY) {
		/* No conv inside: only for a session we have. */
		if (ks)
			wn__ktprof_input(ks, car, from, fromlen, &fp);
		else
			s->ep.stats.pkts_dropped++;
		return;
	}
	if (wn_kcp_hdr_decode(fp.kcp, fp.kcp_len, &h) != 0) {
		s->ep.stats.pkts_dropped++;
		return;
	}
	if (ks && ks->conv != h.conv) {
		if (h.sn != 0) {
			s->ep.stats.pkts_dropped++;
			return;
		}
		wn__ksession_kill(ks, "replaced by a new session");
		ks = NULL;
	}
	uint64_t now = wn__kep_now(&s->ep);
	if (!ks) {
		/* A client's first packet starts its KCP stream (sn 0); acks,
		 * probes and later segments from an unknown address belong
		 * to no session here. */
		if (h.cmd != WN_KCP_CMD_PUSH || h.sn != 0) {
			s->ep.stats.pkts_dropped++;
			return;
		}
		if (!wn_prefixlimit_take(&s->kt_new, from, now)) {
			s->ep.stats.pkts_dropped++;
			char pfx[64];
			WN_LOG_RL(s->ep.o.log, &s->ep.rl_drop, now, WN_LOG_WARN,
			          "sess",
			          "new sessions from %s come too fast: "
			          "dropping some (%llu so far)",
			          wn_prefixlimit_format(&s->kt_new, from, pfx,
			                                sizeof(pfx)),
			          (unsigned long long)s->kt_new.denied);
			return;
		}
		if (s->nsessions >= s->ep.o.max_sessions) {
			WN_LOG_RL(s->ep.o.log, &s->ep.rl_drop, now, WN_LOG_WARN,
			          "sess", "session refused: %zu sessions live",
			          s->nsessions);
			return;
		}
		static const uint8_t nokey[WN_KEY_LEN];
		ks = wn__ksession_new(&s->ep, nokey, h.conv,
		                      wn_carrier_max_packet(car));
		if (!ks)
			return;
		if (wn_cidmap_add(&s->by_addr, key, keylen, ks) != 0) {
			wn__ksession_free(ks);
			return;
		}
		char addr[64];
		wn_sockaddr_format(from, addr, sizeof(addr));
		snprintf(ks->tunnel.peer_id, sizeof(ks->tunnel.peer_id), "%08x",
		         (unsigned)h.conv);
		ks->state = KS_UP;
		ks->was_up = 1;
		ks->created_ms = now;
		ks->carrier = car;
		memcpy(&ks->remote, from, fromlen);
		ks->rlen = fromlen;
		wn_list_add_tail(&s->sessions, &ks->link);
		s->nsessions++;
		wn_log_event(s->ep.o.log, WN_LOG_INFO, "sess", '+',
		             ks->tunnel.peer_id, (long)s->nsessions, addr);
	}
	wn__ktprof_input(ks, car, from, fromlen, &fp);
}

static void server_recv(void *ctx, struct wn_carrier *car,
                        const struct sockaddr *from, socklen_t fromlen,
                        uint8_t *pkt, size_t len)
{
	struct wn_kcp_server *s = ctx;
	uint8_t type;
	uint32_t idx;
	if (s->ep.kt && !s->closing &&
	    fromlen <= sizeof(struct sockaddr_storage)) {
		kt_server_recv(s, car, from, fromlen, pkt, len);
		return;
	}
	if (s->closing || fromlen > sizeof(struct sockaddr_storage) ||
	    wn_protect_classify(pkt, len, &type, &idx) != 0) {
		s->ep.stats.pkts_dropped++;
		return;
	}
	if (type == WN_PROTECT_MSG_INITIATION) {
		server_initiation(s, car, from, fromlen, pkt, len);
		return;
	}
	uint8_t key[4];
	wn_put_u32le(key, idx);
	struct ksession *ks = type == WN_PROTECT_MSG_TRANSPORT
	                          ? wn_cidmap_get(&s->by_index, key, 4)
	                          : NULL;
	size_t plen;
	if (!ks || ks->state == KS_DEAD ||
	    wn_protect_open(&ks->peer, pkt, len, wn__kep_now(&s->ep), &plen) !=
	        0) {
		s->ep.stats.pkts_dropped++;
		return;
	}
	wn__ksession_input(ks, car, from, fromlen, pkt + WN_PROTECT_HEADROOM,
	                   plen);
}

static void server_writable(void *ctx, struct wn_carrier *c)
{
	struct wn_kcp_server *s = ctx;
	for (struct wn_list *n = s->sessions.next; n != &s->sessions;
	     n = n->next) {
		struct ksession *ks = wn_list_entry(n, struct ksession, link);
		if (ks->carrier == c)
			wn__ksession_schedule(ks);
	}
}

static const struct wn_engine_ops server_ops;

int wn__kep_server_create(const struct wn_kcp_engine_opts *o,
                          const struct wn_engine_conf *conf,
                          struct wn_engine **out)
{
	const uint8_t(*clients)[WN_KEY_LEN] = conf->clients;
	size_t n = conf->n_clients;
	const struct wn_accept_handler *ah = conf->accept;
	if (!o->loop || !o->log || (!o->id && !o->kcptun) || !ah ||
	    !ah->on_stream)
		return WN_EINVAL;
	struct wn_kcp_server *s = calloc(1, sizeof(*s));
	if (!s)
		return WN_ENOMEM;
	s->ep.o = *o;
	s->ep.base.ops = &server_ops;
	wn__kep_describe_init(&s->ep, o);
	s->ep.tx = malloc((size_t)KCP_TX_SEGS * KCP_PKT_MAX);
	if (!s->ep.tx) {
		free(s);
		return WN_ENOMEM;
	}
	s->ep.is_server = 1;
	s->ep.ah = *ah;
	s->ep.rl_drop = (struct wn_ratelimit)WN_RATELIMIT_INIT(5000, 5);
	s->ep.rl_err = (struct wn_ratelimit)WN_RATELIMIT_INIT(5000, 5);
	s->ep.sess_dead = server_sess_dead;
	uint8_t hkey[16];
	randombytes_buf(hkey, sizeof(hkey));
	wn_hsadmit_init(&s->adm, hkey, wn_loop_now_ms(o->loop));
	wn_list_init(&s->sessions);
	wn_deferred_init(&s->dnode);
	int rc = WN_ENOMEM;
	s->clients = calloc(n ? n : 1, sizeof(*s->clients));
	if (!s->clients || wn_cidmap_init(&s->by_index) != 0)
		goto fail;
	if (wn_cidmap_init(&s->by_addr) != 0)
		goto fail_map;
	if (o->kcptun) {
		struct wn_prefixlimit_cfg lc;
		wn_prefixlimit_cfg_default(&lc, KT_NEW_PER_S, KT_NEW_BURST,
		                           KT_LIMIT_SLOTS);
		randombytes_buf(&lc.seed, sizeof(lc.seed));
		rc = wn_prefixlimit_init(&s->kt_new, &lc);
		if (rc != 0)
			goto fail_addr;
		rc = wn__ktprof_new(&s->ep, o->kcptun);
		if (rc != 0) {
			wn_prefixlimit_free(&s->kt_new);
			goto fail_addr;
		}
		s->ep.o.kcptun = NULL; /* copied into ep.kt */
		*out = &s->ep.base;
		return 0;
	}
	s->nclients = n;
	for (size_t i = 0; i < n; i++) {
		memcpy(s->clients[i].key, clients[i], WN_KEY_LEN);
		rc = wn_pubkey_to_x25519(clients[i], s->clients[i].x);
		if (rc != 0)
			goto fail_addr;
	}
	struct wn_protect_env env = {.random = wn_protect_random_sodium};
	rc =
	    wn_protect_responder_init(&s->resp, o->id->x_sk, o->id->x_pk, &env);
	if (rc != 0)
		goto fail_addr;
	*out = &s->ep.base;
	return 0;
fail_addr:
	wn_cidmap_free(&s->by_addr);
fail_map:
	wn_cidmap_free(&s->by_index);
fail:
	free(s->clients);
	free(s->ep.tx);
	free(s);
	return rc;
}

int wn__kep_server_new(const struct wn_engine_type *t,
                       const struct wn_engine_conf *conf,
                       struct wn_engine **out)
{
	struct wn_kcp_engine_opts o;
	struct wn_kcptun_cfg kt;
	int rc = wn__kep_opts_from(t, conf, 1, &o, &kt);
	if (rc == 0)
		rc = wn__kep_server_create(&o, conf, out);
	/* The engine keeps its own copy of the profile's key. */
	sodium_memzero(&kt, sizeof(kt));
	return rc;
}

static struct wn_carrier_handler server_handler(struct wn_engine *e)
{
	struct wn_kcp_server *s = engine_server(e);
	struct wn_carrier_handler h = {
	    .ctx = s,
	    .recv = server_recv,
	    .writable = server_writable,
	};
	return h;
}

static int server_is_up(const struct wn_engine *e)
{
	return cengine_server(e)->nsessions > 0;
}

static void server_stats(const struct wn_engine *e, struct wn_engine_stats *out)
{
	const struct wn_kcp_server *s = cengine_server(e);
	wn__kep_stats(&s->ep, s->nsessions, out);
}

static void server_deferred_free(struct wn_deferred *node)
{
	struct wn_kcp_server *s =
	    wn_list_entry(node, struct wn_kcp_server, dnode);
	wn_protect_responder_wipe(&s->resp);
	wn_cidmap_free(&s->by_index);
	wn_cidmap_free(&s->by_addr);
	wn_prefixlimit_free(&s->kt_new);
	wn__ktprof_free(&s->ep);
	sodium_memzero(s->clients, s->nclients * sizeof(*s->clients));
	free(s->clients);
	free(s->ep.tx);
	free(s);
}

static void server_close(struct wn_engine *e)
{
	struct wn_kcp_server *s = engine_server(e);
	if (s->closing)
		return;
	s->closing = 1;
	while (!wn_list_empty(&s->sessions)) {
		struct ksession *ks =
		    wn_list_entry(s->sessions.next, struct ksession, link);
		if (ks->state == KS_UP)
			wn_kcp_sess_run(ks->core, wn__kep_now(&s->ep));
		wn__kep_tx_flush(&s->ep);
		wn__ksession_kill(ks, "server closed");
	}
	wn_loop_defer(s->ep.o.loop, &s->dnode, server_deferred_free);
}

static const struct wn_engine_ops server_ops = {
    .handler = server_handler,
    .is_up = server_is_up,
    .stats = server_stats,
    .describe = wn__kep_describe,
    .close = server_close,
};
