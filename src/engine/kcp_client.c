/* The KCP engine's client: one session at a time, its handshakes and
 * rekeys, failover between paths (see kcp_engine_int.h); the client's
 * engine operations (engine_ops.h). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/failover.h"
#include "engine/flow_base.h"
#include "engine/kcp_engine_int.h"
#include "util/err.h"
#include "util/rw.h"

#define HS_RETRY_FIRST_MS 1000 /* first handshake retry */
#define HS_RETRY_MAX_MS 8000   /* handshake retry backoff cap */

/* ---- client ------------------------------------------------------------ */

struct wn_kcp_client {
	struct kep ep;           /* first: sessions reach it through ks->ep */
	struct wn_tunnel tunnel; /* stable: opens streams on the session */
	/* The tunnel's datagram flows, across sessions (NULL: kcptun). */
	struct wn_flows *flows;
	struct wn_engine_events ev;
	uint8_t server_key[WN_KEY_LEN];
	uint8_t server_x[WN_KEY_LEN]; /* its X25519 form */
	struct ksession *cur;         /* the session being set up, or up */
	struct kpath {
		struct wn_carrier *carrier;
		struct sockaddr_storage addr;
		socklen_t len;
	} paths[WN_KCP_MAX_PATHS];
	unsigned npaths, cur_path;
	uint64_t last_rx_ms;   /* an authenticated packet */
	struct wn_failover fo; /* the policy (core/failover.h) */
	int started, closing;
	struct wn_deferred dnode; /* free */
};

static struct wn_kcp_client *client_of(struct kep *ep)
{
	return (struct wn_kcp_client *)ep;
}

static struct wn_kcp_client *engine_client(struct wn_engine *e)
{
	return client_of(wn__kep_of(e));
}

static const struct wn_kcp_client *cengine_client(const struct wn_engine *e)
{
	return (const struct wn_kcp_client *)wn__kep_cof(e);
}

/* Sends an initiation for ks: the first, a retry, or a rekey. Its payload
 * names the session, so the server tells a rekey from a new session. */
static void client_send_initiation(struct ksession *ks, uint64_t now)
{
	uint8_t payload[HS_PAYLOAD_LEN];
	payload[0] = (uint8_t)(ks->ep->o.hs_version ? ks->ep->o.hs_version
	                                            : HS_PAYLOAD_VERSION);
	memcpy(payload + 1, ks->sess_id, 8);
	wn_put_u32le(payload + 9, ks->conv);
	uint8_t pkt[WN_PROTECT_INITIATION_MAX];
	size_t len;
	int rc = wn_protect_initiate(&ks->peer, payload, sizeof(payload),
	                             wn_wall_ms(), now, pkt, sizeof(pkt), &len);
	if (rc != 0) {
		WN_LOG_RL(ks->ep->o.log, &ks->ep->rl_err, now, WN_LOG_WARN,
		          "sess", "session %llu: cannot start a handshake: %s",
		          (unsigned long long)ks->id, wn_strerror(rc));
		return;
	}
	ks->ep->stats.handshakes++;
	wn__ksession_send_now(ks, pkt, len);
}

static int client_has_streams(const struct ksession *ks)
{
	return !wn_list_empty(&ks->all);
}

/* Sends on path i from now on. The session's packets in flight go again
 * at once on the new path: their timers grew while the old one was dead. */
static void client_use_path(struct wn_kcp_client *c, unsigned i, uint64_t now,
                            const char *why)
{
	if (i == c->cur_path)
		return;
	char addr[64];
	wn_sockaddr_format((struct sockaddr *)&c->paths[i].addr, addr,
	                   sizeof(addr));
	if (i < c->cur_path)
		WN_LOG(c->ep.o.log, WN_LOG_INFO, "sess",
		       "session moved back to %s (%s): %s",
		       c->paths[i].carrier->name, addr, why);
	else
		WN_LOG(c->ep.o.log, WN_LOG_WARN, "sess",
		       "moving the session from %s to %s (%s): %s",
		       c->paths[c->cur_path].carrier->name,
		       c->paths[i].carrier->name, addr, why);
	c->cur_path = i;
	wn_failover_moved(&c->fo, i, now);
	struct ksession *ks = c->cur;
	if (!ks)
		return;
	ks->carrier = c->paths[i].carrier;
	memcpy(&ks->remote, &c->paths[i].addr, c->paths[i].len);
	ks->rlen = c->paths[i].len;
	if (ks->state == KS_UP)
		wn_kcp_sess_kick(ks->core, now);
	wn__ksession_schedule(ks);
}

/* Failover for an established session, by the failover policy: silence
 * is no progress (keepalives keep something in flight), the next path is
 * sent on, and a probe is a keepalive on the first path (its answer, if it
 * comes, brings the client back: client_heard). */
static void client_failover(struct wn_kcp_client *c, struct ksession *ks,
                            uint64_t now)
{
	if (c->npaths < 2 || ks->state != KS_UP)
		return;
	unsigned j;
	switch (wn_failover_check(&c->fo, now, c->last_rx_ms, 1, &j)) {
	case WN_FAILOVER_MOVE:
		client_use_path(c, j, now, "no answer");
		break;
	case WN_FAILOVER_PROBE: {
		uint8_t buf[WN_PROTECT_OVERHEAD];
		size_t len;
		const struct kpath *p = &c->paths[j];
		if (wn_protect_seal(&ks->peer, buf, 0, sizeof(buf), now,
		                    &len) == 0)
			wn_carrier_send(p->carrier, (struct sockaddr *)&p->addr,
			                p->len, buf, len, len);
		break;
	}
	case WN_FAILOVER_STAY:
		break;
	}
	ks->tick_ms = wn_failover_next(&c->fo, c->last_rx_ms);
}

/* The client's part of a run pass: handshake retries with backoff, giving
 * up on a server that does not answer while streams wait, and rekeys. */
static void client_tick(struct kep *ep, struct ksession *ks, uint64_t now)
{
	struct wn_kcp_client *c = client_of(ep);
	if (!c->started)
		return;
	client_failover(c, ks, now);
	if (ep->kt)
		return; /* kcptun: no handshakes */
	if (ks->state == KS_HANDSHAKE && client_has_streams(ks) &&
	    now - ks->created_ms >= ep->o.idle_timeout_ms) {
		/* A server of another handshake version refuses us
		 * silently, as it does a wrong key. */
		wn__ksession_kill(ks, "the server does not answer (is its "
		                      "key right, and does it run the same "
		                      "warren release?)");
		return;
	}
	if (ks->state == KS_UP && !ks->hs_next_ms &&
	    wn_protect_needs_rekey(&ks->peer, now))
		ks->hs_next_ms = now;
	if (!ks->hs_next_ms || now < ks->hs_next_ms)
		return;
	/* Unanswered handshakes try the next path too (no probes: without
	 * keys there is nothing to probe with). */
	unsigned j;
	if (ks->state == KS_HANDSHAKE && c->npaths > 1 &&
	    wn_failover_check(&c->fo, now, c->last_rx_ms, 1, &j) ==
	        WN_FAILOVER_MOVE)
		client_use_path(c, j, now, "no answer to the handshake");
	client_send_initiation(ks, now);
	if (ks->state == KS_HANDSHAKE) {
		ks->hs_next_ms = now + ks->hs_backoff_ms;
		if (ks->hs_backoff_ms < HS_RETRY_MAX_MS)
			ks->hs_backoff_ms *= 2;
	} else {
		/* A rekey: the old keys carry data until the response. */
		ks->hs_next_ms = now + WN_PROTECT_REKEY_TIMEOUT_MS;
		ep->stats.rekeys++;
	}
}

/* The largest packet every path takes: a session may move to any. */
static size_t client_max_pkt(const struct wn_kcp_client *c)
{
	size_t m = 0;
	for (unsigned i = 0; i < c->npaths; i++) {
		size_t p = wn_carrier_max_packet(c->paths[i].carrier);
		if (!m || p < m)
			m = p;
	}
	return m;
}

static struct ksession *client_new_session(struct wn_kcp_client *c)
{
	uint8_t conv_b[4];
	randombytes_buf(conv_b, sizeof(conv_b));
	struct ksession *ks = wn__ksession_new(
	    &c->ep, c->server_key, wn_get_u32le(conv_b), client_max_pkt(c));
	if (!ks)
		return NULL;
	ks->flows = c->flows; /* the client's: not the session's own */
	randombytes_buf(ks->sess_id, sizeof(ks->sess_id));
	ks->created_ms = wn__kep_now(&c->ep);
	const struct kpath *p = &c->paths[c->cur_path];
	ks->carrier = p->carrier;
	memcpy(&ks->remote, &p->addr, p->len);
	ks->rlen = p->len;
	if (c->ep.kt) {
		/* kcptun has no handshake: the session is up as soon as it
		 * exists, and the server learns of it from its packets. */
		snprintf(ks->tunnel.peer_id, sizeof(ks->tunnel.peer_id), "%08x",
		         (unsigned)ks->conv);
		ks->state = KS_UP;
		ks->was_up = 1;
		wn_log_event(c->ep.o.log, WN_LOG_INFO, "sess", '+',
		             ks->tunnel.peer_id, 1, "kcptun session");
		if (c->ev.on_up)
			c->ev.on_up(c->ev.ctx);
		wn__ksession_schedule(ks);
		return ks;
	}
	struct wn_protect_env env = {.random = wn_protect_random_sodium};
	const struct wn_identity *id = c->ep.o.id;
	if (wn_protect_peer_init(&ks->peer, true, id->x_sk, id->x_pk,
	                         c->server_x, &env) != 0) {
		wn__ksession_free(ks);
		return NULL;
	}
	ks->peer_live = 1;
	ks->state = KS_HANDSHAKE;
	ks->hs_backoff_ms = HS_RETRY_FIRST_MS;
	ks->hs_next_ms = ks->created_ms; /* at the first run pass */
	wn__ksession_schedule(ks);
	return ks;
}

static struct wn_stream *client_open_stream(struct wn_tunnel *t,
                                            const struct wn_endpoint *target,
                                            unsigned flags,
                                            const struct wn_stream_handler *h)
{
	struct wn_kcp_client *c =
	    wn_list_entry(t, struct wn_kcp_client, tunnel);
	if (c->closing)
		return NULL;
	if (!c->cur)
		c->cur = client_new_session(c);
	if (!c->cur)
		return NULL;
	struct ksession *ks = c->cur;
	if (ks->state == KS_HANDSHAKE && wn_list_empty(&ks->all) &&
	    c->started) {
		/* The first stream to wait: it waits idle_timeout_ms from
		 * now, and the handshake is tried again at once. */
		ks->created_ms = wn__kep_now(&c->ep);
		ks->hs_next_ms = ks->created_ms;
		ks->hs_backoff_ms = HS_RETRY_FIRST_MS;
		wn__ksession_schedule(ks);
	}
	struct kstream *st = wn__kstream_open(ks, target, flags, h);
	return st ? &st->base : NULL;
}

static const struct wn_tunnel_ops client_tunnel_ops = {
    .open_stream = client_open_stream,
};

static void client_sess_dead(struct kep *ep, struct ksession *ks)
{
	struct wn_kcp_client *c = client_of(ep);
	if (ks->was_up)
		wn_log_event(ep->o.log, c->closing ? WN_LOG_INFO : WN_LOG_WARN,
		             "sess", '-', ks->tunnel.peer_id, 0, ks->why);
	else if (!c->closing)
		WN_LOG_RL(ep->o.log, &ep->rl_err, wn__kep_now(ep), WN_LOG_WARN,
		          "sess", "cannot connect: %s", ks->why);
	if (c->cur == ks)
		c->cur = NULL;
	if (c->closing)
		return;
	if (ks->was_up && c->ev.on_down)
		c->ev.on_down(c->ev.ctx, ks->why);
	/* Start over at once; the handshake retries with backoff. */
	if (c->started)
		c->cur = client_new_session(c);
}

/* An authenticated packet came over carrier car. The server answers on
 * the path of our last packet it authenticated; answers on a preferred
 * path (after a probe) mean it works again. */
static void client_heard(struct wn_kcp_client *c, struct wn_carrier *car,
                         uint64_t now)
{
	c->last_rx_ms = now;
	for (unsigned i = 0; i < c->cur_path; i++)
		if (c->paths[i].carrier == car) {
			client_use_path(c, i, now, "it answers again");
			break;
		}
}

/* A packet for the client. */
static void client_recv(void *ctx, struct wn_carrier *car,
                        const struct sockaddr *from, socklen_t fromlen,
                        uint8_t *pkt, size_t len)
{
	struct wn_kcp_client *c = ctx;
	struct ksession *ks = c->cur;
	uint8_t type;
	uint32_t idx;
	if (c->ep.kt && ks && !c->closing) {
		struct wn_kcpgo_pkt fp;
		if (wn__ktprof_open(&c->ep, from, pkt, len, &fp) != 0)
			return;
		client_heard(c, car, wn__kep_now(&c->ep));
		wn__ktprof_input(ks, car, from, fromlen, &fp);
		return;
	}
	if (!ks || c->closing ||
	    wn_protect_classify(pkt, len, &type, &idx) != 0) {
		c->ep.stats.pkts_dropped++;
		return;
	}
	uint64_t now = wn__kep_now(&c->ep);
	if (type == WN_PROTECT_MSG_RESPONSE) {
		if (wn_protect_consume_response(&ks->peer, pkt, len, now) !=
		    0) {
			c->ep.stats.pkts_dropped++;
			return;
		}
		client_heard(c, car, now);
		ks->hs_next_ms = 0;
		wn__ksession_send_empty(
		    ks, now); /* confirms the keys to the server */
		if (ks->state == KS_HANDSHAKE) {
			ks->state = KS_UP;
			ks->was_up = 1;
			wn_kcp_sess_touch(ks->core, now);
			wn_log_event(c->ep.o.log, WN_LOG_INFO, "sess", '+',
			             ks->tunnel.peer_id, 1,
			             "connected to server");
			if (c->ev.on_up)
				c->ev.on_up(c->ev.ctx);
			/* A new session, not a rekey: the server knows
			 * none of our flows (a rekey keeps the server's
			 * session, and with it its flows). */
			if (c->flows && c->cur == ks && ks->state == KS_UP)
				wn_fb_session_changed(c->flows);
		}
		wn__ksession_schedule(ks);
		return;
	}
	if (type == WN_PROTECT_MSG_COOKIE) {
		/* The server is under load and wants proof of our address:
		 * the next initiations carry the cookie's mac2. */
		bool retry;
		if (wn_protect_consume_cookie(&ks->peer, pkt, len, now,
		                              &retry) != 0) {
			c->ep.stats.pkts_dropped++;
			return;
		}
		c->ep.stats.cookies++;
		if (retry)
			client_send_initiation(ks, now);
		return;
	}
	if (type != WN_PROTECT_MSG_TRANSPORT) {
		c->ep.stats.pkts_dropped++;
		return;
	}
	size_t plen;
	if (wn_protect_open(&ks->peer, pkt, len, now, &plen) != 0) {
		c->ep.stats.pkts_dropped++;
		return;
	}
	client_heard(c, car, now);
	if (ks->state == KS_UP)
		wn__ksession_input(ks, car, from, fromlen,
		                   pkt + WN_PROTECT_HEADROOM, plen);
}

/* A stream carrier's new connection is up: what is in flight goes again
 * on it at once (the old connection took it down with it), and so does an
 * unanswered initiation: the first one of a session usually went before
 * the carrier's first connection was up and was dropped, and waiting for
 * the retry timer would make every connect over tcp or tls a second late. */
static void client_state(void *ctx, struct wn_carrier *car,
                         const struct sockaddr *peer, enum wn_carrier_state st,
                         int err)
{
	(void)peer;
	(void)err;
	struct wn_kcp_client *c = ctx;
	struct ksession *ks = c->cur;
	if (st != WN_CARRIER_UP || !ks || ks->carrier != car)
		return;
	uint64_t now = wn__kep_now(&c->ep);
	if (ks->state == KS_HANDSHAKE && !c->ep.kt) {
		ks->hs_next_ms = now;
		wn__ksession_schedule(ks);
		return;
	}
	if (ks->state != KS_UP)
		return;
	wn_kcp_sess_kick(ks->core, now);
	wn__ksession_schedule(ks);
}

static void client_writable(void *ctx, struct wn_carrier *c)
{
	(void)c;
	struct wn_kcp_client *cl = ctx;
	if (cl->cur)
		wn__ksession_schedule(cl->cur);
}

/* ---- the flow base's transport (flow_base.h): the current session ------ */

static struct wn_kcp_client *flows_client(const struct wn_flows *fl)
{
	return wn_fb_ctx(fl);
}

static int client_fb_send(struct wn_flows *fl, const uint8_t *msg, size_t len)
{
	struct wn_kcp_client *c = flows_client(fl);
	if (!c->cur || c->closing) {
		c->ep.stats.dgram_drops++;
		return WN_EAGAIN;
	}
	return wn__ksession_dgram_send(c->cur, msg, len);
}

static size_t client_fb_max_msg(const struct wn_flows *fl)
{
	const struct wn_kcp_client *c = flows_client(fl);
	return c->cur && !c->closing ? wn__ksession_dgram_max(c->cur) : 0;
}

static uint64_t client_fb_now(const struct wn_flows *fl)
{
	return wn__kep_now(&flows_client(fl)->ep);
}

static const struct wn_fb_transport client_fb = {
    .send = client_fb_send,
    .max_msg = client_fb_max_msg,
    .now_ms = client_fb_now,
};

int wn__kep_client_rekey(struct wn_engine *e)
{
	struct wn_kcp_client *c = engine_client(e);
	struct ksession *ks = c->cur;
	if (!ks || ks->state != KS_UP || c->ep.kt)
		return WN_EAGAIN;
	ks->hs_next_ms = wn__kep_now(&c->ep);
	wn__ksession_schedule(ks);
	return 0;
}

static const struct wn_engine_ops client_ops;

int wn__kep_client_create(const struct wn_kcp_engine_opts *o,
                          const struct wn_engine_conf *conf,
                          struct wn_engine **out)
{
	const uint8_t *server_key = conf->server_key;
	const struct wn_engine_events *ev = conf->events;
	if (!o->loop || !o->log || (!o->id && !o->kcptun) ||
	    (!server_key && !o->kcptun))
		return WN_EINVAL;
	struct wn_kcp_client *c = calloc(1, sizeof(*c));
	if (!c)
		return WN_ENOMEM;
	c->ep.o = *o;
	c->ep.base.ops = &client_ops;
	wn__kep_describe_init(&c->ep, o);
	wn_failover_init(&c->fo, o->failover_ms, o->probe_ms,
	                 wn__kep_now(&c->ep));
	c->ep.o.kcptun = NULL; /* copied into ep.kt */
	c->ep.tx = malloc((size_t)KCP_TX_SEGS * KCP_PKT_MAX);
	if (!c->ep.tx) {
		free(c);
		return WN_ENOMEM;
	}
	c->ep.rl_drop = (struct wn_ratelimit)WN_RATELIMIT_INIT(5000, 5);
	c->ep.rl_err = (struct wn_ratelimit)WN_RATELIMIT_INIT(5000, 5);
	c->ep.sess_dead = client_sess_dead;
	c->ep.sess_tick = client_tick;
	c->tunnel.ops = &client_tunnel_ops;
	c->tunnel.recv_window = o->stream_window;
	int rc;
	if (o->kcptun) {
		/* kcptun: no keys, the passphrase is in the profile. */
		rc = wn__ktprof_new(&c->ep, o->kcptun);
		snprintf(c->tunnel.peer_id, sizeof(c->tunnel.peer_id),
		         "kcptun");
	} else {
		wn__kep_key_name(server_key, c->tunnel.peer_id);
		memcpy(c->server_key, server_key, WN_KEY_LEN);
		rc = wn_pubkey_to_x25519(server_key, c->server_x);
		if (rc == 0) {
			c->flows = wn_fb_new(&client_fb, c, o->loop, o->log,
			                     &c->tunnel, NULL, 0);
			if (!c->flows)
				rc = WN_ENOMEM;
			c->tunnel.flows = c->flows;
		}
	}
	if (rc != 0) {
		free(c->ep.tx);
		free(c);
		return rc;
	}
	if (ev)
		c->ev = *ev;
	wn_deferred_init(&c->dnode);
	*out = &c->ep.base;
	return 0;
}

int wn__kep_client_new(const struct wn_engine_type *t,
                       const struct wn_engine_conf *conf,
                       struct wn_engine **out)
{
	struct wn_kcp_engine_opts o;
	struct wn_kcptun_cfg kt;
	int rc = wn__kep_opts_from(t, conf, 0, &o, &kt);
	if (rc == 0)
		rc = wn__kep_client_create(&o, conf, out);
	/* The engine keeps its own copy of the profile's key. */
	sodium_memzero(&kt, sizeof(kt));
	return rc;
}

static struct wn_carrier_handler client_handler(struct wn_engine *e)
{
	struct wn_kcp_client *c = engine_client(e);
	struct wn_carrier_handler h = {
	    .ctx = c,
	    .recv = client_recv,
	    .writable = client_writable,
	    .state = client_state,
	};
	return h;
}

static int client_add_path(struct wn_engine *e, struct wn_carrier *carrier,
                           const struct sockaddr *server, socklen_t len)
{
	struct wn_kcp_client *c = engine_client(e);
	if (c->npaths == WN_KCP_MAX_PATHS || len > sizeof(c->paths[0].addr))
		return WN_EINVAL;
	if (wn_failover_add_path(&c->fo, 1, wn__kep_now(&c->ep)) < 0)
		return WN_EINVAL;
	struct kpath *p = &c->paths[c->npaths++];
	p->carrier = carrier;
	memcpy(&p->addr, server, len);
	p->len = len;
	return 0;
}

static int client_go(struct wn_engine *e)
{
	struct wn_kcp_client *c = engine_client(e);
	if (c->npaths == 0)
		return WN_EINVAL;
	c->started = 1;
	c->last_rx_ms = wn__kep_now(&c->ep);
	wn_failover_start(&c->fo, c->last_rx_ms);
	if (!c->cur)
		c->cur = client_new_session(c);
	else
		wn__ksession_schedule(c->cur);
	return c->cur ? 0 : WN_ENOMEM;
}

static struct wn_tunnel *client_tunnel(struct wn_engine *e)
{
	return &engine_client(e)->tunnel;
}

static int client_is_up(const struct wn_engine *e)
{
	const struct wn_kcp_client *c = cengine_client(e);
	return c->cur && c->cur->state == KS_UP;
}

static void client_stats(const struct wn_engine *e, struct wn_engine_stats *out)
{
	wn__kep_stats(&cengine_client(e)->ep, (uint64_t)client_is_up(e), out);
}

static void client_deferred_free(struct wn_deferred *node)
{
	struct wn_kcp_client *c =
	    wn_list_entry(node, struct wn_kcp_client, dnode);
	wn__ktprof_free(&c->ep);
	if (c->flows)
		wn_fb_free(c->flows);
	free(c->ep.tx);
	free(c);
}

static void client_close(struct wn_engine *e)
{
	struct wn_kcp_client *c = engine_client(e);
	if (c->closing)
		return;
	c->closing = 1;
	if (c->cur) {
		/* Flush what is queued (FINs, resets) before going. */
		struct ksession *ks = c->cur;
		if (ks->state == KS_UP)
			wn_kcp_sess_run(ks->core, wn__kep_now(&c->ep));
		wn__kep_tx_flush(&c->ep);
		wn__ksession_kill(ks, "client closed");
	}
	if (c->flows)
		wn_fb_finish(c->flows, WN_STREAM_SESSION_LOST);
	/* Deferred after the session's own free (and the flows'
	 * on_flow_closed). */
	wn_loop_defer(c->ep.o.loop, &c->dnode, client_deferred_free);
}

static const struct wn_engine_ops client_ops = {
    .handler = client_handler,
    .add_path = client_add_path,
    .go = client_go,
    .tunnel = client_tunnel,
    .is_up = client_is_up,
    .stats = client_stats,
    .describe = wn__kep_describe,
    .close = client_close,
};
