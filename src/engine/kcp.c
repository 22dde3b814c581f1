/* The KCP engine: client and server endpoints, sessions, handshakes and the
 * packet path between carriers and session cores (see kcp.h). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kcp_int.h"
#include "util/err.h"
#include "util/rw.h"

#define HS_RETRY_FIRST_MS 1000 /* first handshake retry */
#define HS_RETRY_MAX_MS 8000   /* handshake retry backoff cap */
#define HS_PAYLOAD_VERSION 1
#define HS_PAYLOAD_LEN 13 /* version u8, session id 8, conv u32 LE */

void wn_kcp_engine_opts_default(struct wn_kcp_engine_opts *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->mode, sizeof(o->mode), "fast3");
	o->snd_wnd = 2048;
	o->rcv_wnd = 2048;
	o->pacing = 1;
	o->rto_srtt_pct = 200;
	o->idle_timeout_ms = 15000;
	o->keepalive_ms = 5000;
	o->stream_send_limit = 1024 * 1024;
	o->stream_window = 4 * 1024 * 1024;
	o->max_streams = 1024;
	o->max_sessions = 4096;
	o->failover_ms = 3000;
	o->probe_ms = 10000;
}

/* A key's short name for logs: its first four bytes in hex. */
static void key_name(const uint8_t *k, char out[16])
{
	snprintf(out, 16, "%02x%02x%02x%02x", k[0], k[1], k[2], k[3]);
}

static uint64_t now_ms(const struct kep *ep)
{
	return wn_loop_now_ms(ep->o.loop);
}

/* Hands the batch of sealed packets to its session's carrier in one send
 * (one sendmsg with UDP GSO on the udp carrier). A full carrier drops it:
 * KCP retransmits, as after a loss. */
static void tx_flush(struct kep *ep)
{
	struct ksession *ks = ep->tx_ks;
	if (ep->tx_n == 0)
		return;
	int rc = WN_EUNREACH;
	if (ks->carrier)
		rc =
		    wn_carrier_send(ks->carrier, (struct sockaddr *)&ks->remote,
		                    ks->rlen, ep->tx, ep->tx_len, ep->tx_seg);
	if (rc != 0)
		WN_LOG_RL(ep->o.log, &ep->rl_err, now_ms(ep), WN_LOG_DEBUG,
		          "sess", "session %llu: %u packets dropped: %s",
		          (unsigned long long)ks->id, ep->tx_n,
		          wn_strerror(rc));
	ep->tx_n = 0;
	ep->tx_len = 0;
	ep->tx_ks = NULL;
}

/* Adds a finished packet for ks to the batch. A batch holds packets of one
 * session and one size, except that its last may be shorter (the shape
 * UDP GSO takes); anything else sends the batch first. */
static void tx_add(struct ksession *ks, const uint8_t *pkt, size_t len)
{
	struct kep *ep = ks->ep;
	if (ep->tx_n &&
	    (ep->tx_ks != ks || len > ep->tx_seg ||
	     ep->tx_len % ep->tx_seg != 0 || ep->tx_n == KCP_TX_SEGS))
		tx_flush(ep);
	if (len > KCP_PKT_MAX)
		return;
	if (ep->tx_n == 0) {
		ep->tx_ks = ks;
		ep->tx_seg = len;
	}
	memcpy(ep->tx + ep->tx_len, pkt, len);
	ep->tx_len += len;
	ep->tx_n++;
}

/* Sends one packet at once (handshakes, keepalives), after the batch. */
static void send_pkt(struct ksession *ks, const uint8_t *pkt, size_t len)
{
	tx_add(ks, pkt, len);
	tx_flush(ks->ep);
}

void ksession_send(struct ksession *ks, const uint8_t *pkt, size_t len)
{
	tx_add(ks, pkt, len);
}

/* KCP's output: seal in place (the core leaves room around the datagram)
 * and add to the batch, which the run pass sends when it ends. */
static void sess_output(void *ctx, uint8_t *pkt, size_t len)
{
	struct ksession *ks = ctx;
	if (ks->ep->kt) {
		ktprof_output(ks, pkt, len);
		return;
	}
	size_t plen;
	uint8_t *buf = pkt - WN_PROTECT_HEADROOM;
	if (wn_protect_seal(&ks->peer, buf, len, len + WN_PROTECT_OVERHEAD,
	                    now_ms(ks->ep), &plen) != 0)
		return; /* no usable keys: the handshake will follow */
	tx_add(ks, buf, plen);
}

/* ---- sessions ---------------------------------------------------------- */

static void sess_timer_cb(struct wn_timer *t);

static void sess_free_timer(struct wn_timer *t)
{
	struct ksession *ks = wn_list_entry(t, struct ksession, timer);
	free(ks);
}

static void sess_free(struct ksession *ks)
{
	wn_kcp_sess_free(ks->core);
	ks->core = NULL;
	ktprof_sess_free(ks);
	if (ks->peer_live)
		wn_protect_peer_wipe(&ks->peer);
	ks->peer_live = 0;
	wn_cidmap_free(&ks->streams);
	if (ks->timer_live)
		wn_timer_close(&ks->timer, sess_free_timer);
	else
		free(ks);
}

static struct wn_stream *sess_open_stream(struct wn_tunnel *t,
                                          const struct wn_endpoint *target,
                                          unsigned flags,
                                          const struct wn_stream_handler *h)
{
	struct ksession *ks = (struct ksession *)t;
	struct kstream *st = kstream_open(ks, target, flags, h);
	return st ? &st->base : NULL;
}

static const struct wn_tunnel_ops sess_tunnel_ops = {
    .open_stream = sess_open_stream,
};

/* Creates a session (state KS_HANDSHAKE) for peer_key with the given KCP
 * conversation id. NULL on failure. */
static struct ksession *sess_new(struct kep *ep, const uint8_t *peer_key,
                                 uint32_t conv)
{
	struct ksession *ks = calloc(1, sizeof(*ks));
	if (!ks)
		return NULL;
	ks->ep = ep;
	ks->tunnel.ops = &sess_tunnel_ops;
	ks->id = ++ep->sess_seq;
	ks->conv = conv;
	ks->client_index = -1;
	memcpy(ks->peer_key, peer_key, WN_KEY_LEN);
	key_name(peer_key, ks->tunnel.peer_id);
	wn_list_init(&ks->all);
	wn_list_init(&ks->blocked);
	wn_deferred_init(&ks->dnode);
	if (wn_cidmap_init(&ks->streams) != 0) {
		free(ks);
		return NULL;
	}
	struct wn_kcp_sess_cfg cfg;
	wn_kcp_sess_cfg_default(&cfg);
	if (wn_kcp_preset(&cfg.kcp, ep->o.mode) != 0)
		wn_kcp_preset(&cfg.kcp, "fast3");
	cfg.kcp.conv = conv;
	cfg.kcp.stream = 1;
	if (ep->o.mtu)
		cfg.kcp.mtu = ep->o.mtu - WN_PROTECT_OVERHEAD;
	if (ep->o.snd_wnd)
		cfg.kcp.snd_wnd = ep->o.snd_wnd;
	if (ep->o.rcv_wnd)
		cfg.kcp.rcv_wnd = ep->o.rcv_wnd;
	cfg.kcp.rto_srtt_pct = ep->o.rto_srtt_pct;
	cfg.kcp.pacing = ep->o.pacing;
	cfg.kcp.headroom = WN_PROTECT_HEADROOM;
	cfg.kcp.tailroom = WN_PROTECT_TAILROOM;
	cfg.smux.client = !ep->is_server;
	cfg.smux.stream_window = ep->o.stream_window;
	cfg.smux.stream_send_limit = ep->o.stream_send_limit;
	cfg.smux.max_streams = ep->o.max_streams;
	cfg.keepalive_ms = ep->o.keepalive_ms;
	cfg.idle_timeout_ms = ep->o.idle_timeout_ms;
	if (ep->kt)
		ktprof_sess_cfg(ep, &cfg);
	struct wn_smux_cb cb = kstream_smux_cb(ks);
	int rc =
	    wn_kcp_sess_new(&cfg, sess_output, ks, &cb, now_ms(ep), &ks->core);
	if (rc == 0 && ep->kt)
		rc = ktprof_sess_init(ks);
	if (rc == 0)
		rc = wn_timer_init(ep->o.loop, &ks->timer, sess_timer_cb);
	if (rc != 0) {
		ktprof_sess_free(ks);
		wn_kcp_sess_free(ks->core);
		wn_cidmap_free(&ks->streams);
		free(ks);
		return NULL;
	}
	ks->timer_live = 1;
	ep->stats.sessions_opened++;
	return ks;
}

static void sess_deferred(struct wn_deferred *node);

/* The session is over: every stream fails with SESSION_LOST, the endpoint
 * hears of it, and the memory goes at the end of the iteration. */
static void sess_kill(struct ksession *ks, const char *why)
{
	if (ks->state == KS_DEAD)
		return;
	if (ks->ep->tx_ks == ks)
		tx_flush(ks->ep);
	ks->state = KS_DEAD;
	snprintf(ks->why, sizeof(ks->why), "%s", why);
	struct wn_kcp_stats ks_st;
	wn_kcp_get_stats(wn_kcp_sess_kcp(ks->core), &ks_st);
	WN_LOG(ks->ep->o.log, WN_LOG_INFO, "sess",
	       "session %llu: kcp out %llu segments (%llu resent: %llu fast, "
	       "%llu on timeout), in %llu (%llu duplicate, %llu beyond the "
	       "window), srtt %u ms, rto %u ms",
	       (unsigned long long)ks->id, (unsigned long long)ks_st.out_segs,
	       (unsigned long long)ks_st.retrans_segs,
	       (unsigned long long)ks_st.fast_retrans,
	       (unsigned long long)ks_st.lost_segs,
	       (unsigned long long)ks_st.in_segs,
	       (unsigned long long)ks_st.drop_dup,
	       (unsigned long long)ks_st.drop_window, ks_st.srtt_ms,
	       ks_st.rto_ms);
	if (ks->ep->kt) {
		const struct wn_kcp_engine_stats *es = &ks->ep->stats;
		unsigned ds = 0, ps = 0;
		if (ks->fec_dec)
			wn_kcpgo_dec_shards(ks->fec_dec, &ds, &ps, NULL);
		WN_LOG(ks->ep->o.log, WN_LOG_INFO, "sess",
		       "session %llu: kcptun endpoint: %llu packets failed "
		       "the checksum, %llu parity shards in, %llu data "
		       "shards rebuilt, %llu FEC shards dropped; the peer's "
		       "FEC %u+%u",
		       (unsigned long long)ks->id,
		       (unsigned long long)es->csum_errors,
		       (unsigned long long)es->fec_parity,
		       (unsigned long long)es->fec_recovered,
		       (unsigned long long)es->fec_dropped, ds, ps);
	}
	while (!wn_list_empty(&ks->all)) {
		struct kstream *st =
		    wn_list_entry(ks->all.next, struct kstream, link);
		kstream_fail(st, WN_STREAM_SESSION_LOST);
	}
	wn_timer_stop(&ks->timer);
	ks->ep->stats.sessions_closed++;
	ks->ep->sess_dead(ks->ep, ks);
	/* A run pass may be pending on dnode already: either way the
	 * deferred function frees a dead session. */
	wn_loop_defer(ks->ep->o.loop, &ks->dnode, sess_deferred);
}

static void arm_timer(struct ksession *ks, uint64_t now)
{
	uint64_t t = ks->state == KS_UP ? wn_kcp_sess_deadline(ks->core, now)
	                                : now + 60000;
	if (ks->hs_next_ms && ks->hs_next_ms < t)
		t = ks->hs_next_ms;
	if (ks->tick_ms && ks->tick_ms < t)
		t = ks->tick_ms;
	uint64_t x = wn_protect_next_expiry(&ks->peer);
	if (x < t)
		t = x;
	wn_timer_start(&ks->timer, t > now ? t - now : 0, 0);
}

/* One pass: handshake timers (client), smux -> KCP -> carrier, then wake
 * blocked writers and arm the timer for the next deadline. */
static void sess_run(struct ksession *ks)
{
	if (ks->state == KS_DEAD)
		return;
	uint64_t now = now_ms(ks->ep);
	wn_protect_tick(&ks->peer, now);
	if (ks->ep->sess_tick)
		ks->ep->sess_tick(ks->ep, ks, now);
	if (ks->state == KS_DEAD)
		return;
	if (ks->state == KS_UP) {
		wn_kcp_sess_run(ks->core, now);
		tx_flush(ks->ep);
		int err = wn_kcp_sess_error(ks->core);
		if (err) {
			sess_kill(ks, err == WN_ETIMEDOUT
			                  ? "no answer from the peer"
			                  : "protocol error");
			return;
		}
		kstream_wake_writers(ks);
	}
	if (ks->state != KS_DEAD)
		arm_timer(ks, now);
}

/* The session's deferred work: a run pass, or freeing it once dead. */
static void sess_deferred(struct wn_deferred *node)
{
	struct ksession *ks = wn_list_entry(node, struct ksession, dnode);
	if (ks->state == KS_DEAD)
		sess_free(ks);
	else
		sess_run(ks);
}

void ksession_schedule(struct ksession *ks)
{
	if (ks->state != KS_DEAD)
		wn_loop_defer(ks->ep->o.loop, &ks->dnode, sess_deferred);
}

static void sess_timer_cb(struct wn_timer *t)
{
	sess_run(wn_list_entry(t, struct ksession, timer));
}

/* An authenticated transport packet for ks arrived from `from` over c. */
void ksession_input(struct ksession *ks, struct wn_carrier *c,
                    const struct sockaddr *from, socklen_t fromlen,
                    const uint8_t *pt, size_t ptlen)
{
	/* Sessions follow their packets: answer where the last
	 * authenticated one came from (roaming, failover). */
	if (ks->ep->is_server && (ks->carrier != c || ks->rlen != fromlen ||
	                          memcmp(&ks->remote, from, fromlen) != 0)) {
		ks->carrier = c;
		memcpy(&ks->remote, from, fromlen);
		ks->rlen = fromlen;
	}
	uint64_t now = now_ms(ks->ep);
	if (!ks->ep->kt)
		wn_kcp_sess_touch(ks->core, now);
	if (ptlen == 0)
		return; /* a keepalive */
	wn_kcp_sess_input(ks->core, pt, ptlen, now);
	ksession_schedule(ks);
}

/* Seals and sends an empty transport packet: a keepalive, and the
 * client's confirmation of fresh keys (the server sends with them only
 * after one arrives). */
static void send_empty(struct ksession *ks, uint64_t now)
{
	uint8_t buf[WN_PROTECT_OVERHEAD];
	size_t len;
	if (wn_protect_seal(&ks->peer, buf, 0, sizeof(buf), now, &len) == 0)
		send_pkt(ks, buf, len);
}

/* ---- client ------------------------------------------------------------ */

struct wn_kcp_client {
	struct kep ep;           /* first: sessions reach it through ks->ep */
	struct wn_tunnel tunnel; /* stable: opens streams on the session */
	struct wn_kcp_client_events ev;
	uint8_t server_key[WN_KEY_LEN];
	uint8_t server_x[WN_KEY_LEN]; /* its X25519 form */
	struct ksession *cur;         /* the session being set up, or up */
	struct kpath {
		struct wn_carrier *carrier;
		struct sockaddr_storage addr;
		socklen_t len;
	} paths[WN_KCP_MAX_PATHS];
	unsigned npaths, cur_path;
	uint64_t last_rx_ms, moved_ms, probed_ms;
	int started, closing;
	struct wn_deferred dnode; /* free */
};

static struct wn_kcp_client *client_of(struct kep *ep)
{
	return (struct wn_kcp_client *)ep;
}

/* Sends an initiation for ks: the first, a retry, or a rekey. Its payload
 * names the session, so the server tells a rekey from a new session. */
static void client_send_initiation(struct ksession *ks, uint64_t now)
{
	uint8_t payload[HS_PAYLOAD_LEN];
	payload[0] = HS_PAYLOAD_VERSION;
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
	send_pkt(ks, pkt, len);
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
	c->moved_ms = now;
	struct ksession *ks = c->cur;
	if (!ks)
		return;
	ks->carrier = c->paths[i].carrier;
	memcpy(&ks->remote, &c->paths[i].addr, c->paths[i].len);
	ks->rlen = c->paths[i].len;
	if (ks->state == KS_UP)
		wn_kcp_sess_kick(ks->core, now);
	ksession_schedule(ks);
}

/* Failover for an established session: the next path after failover_ms
 * of silence, and a keepalive on the first path every probe_ms while away
 * from it (its answer, if it comes, brings the client back). */
static void client_failover(struct wn_kcp_client *c, struct ksession *ks,
                            uint64_t now)
{
	const struct wn_kcp_engine_opts *o = &c->ep.o;
	if (c->npaths < 2 || ks->state != KS_UP)
		return;
	if (now - c->last_rx_ms >= o->failover_ms &&
	    now - c->moved_ms >= o->failover_ms)
		client_use_path(c, (c->cur_path + 1) % c->npaths, now,
		                "no answer");
	if (c->cur_path != 0 && now - c->probed_ms >= o->probe_ms) {
		c->probed_ms = now;
		uint8_t buf[WN_PROTECT_OVERHEAD];
		size_t len;
		const struct kpath *p = &c->paths[0];
		if (wn_protect_seal(&ks->peer, buf, 0, sizeof(buf), now,
		                    &len) == 0)
			wn_carrier_send(p->carrier, (struct sockaddr *)&p->addr,
			                p->len, buf, len, len);
	}
	uint64_t t = c->last_rx_ms + o->failover_ms;
	if (t < c->moved_ms + o->failover_ms)
		t = c->moved_ms + o->failover_ms;
	if (c->cur_path != 0 && c->probed_ms + o->probe_ms < t)
		t = c->probed_ms + o->probe_ms;
	ks->tick_ms = t;
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
		sess_kill(ks, "the server does not answer");
		return;
	}
	if (ks->state == KS_UP && !ks->hs_next_ms &&
	    wn_protect_needs_rekey(&ks->peer, now))
		ks->hs_next_ms = now;
	if (!ks->hs_next_ms || now < ks->hs_next_ms)
		return;
	/* Unanswered handshakes try the next path too. */
	if (ks->state == KS_HANDSHAKE && c->npaths > 1 &&
	    now - c->moved_ms >= ep->o.failover_ms &&
	    now - c->last_rx_ms >= ep->o.failover_ms)
		client_use_path(c, (c->cur_path + 1) % c->npaths, now,
		                "no answer to the handshake");
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

static struct ksession *client_new_session(struct wn_kcp_client *c)
{
	uint8_t conv_b[4];
	randombytes_buf(conv_b, sizeof(conv_b));
	struct ksession *ks =
	    sess_new(&c->ep, c->server_key, wn_get_u32le(conv_b));
	if (!ks)
		return NULL;
	randombytes_buf(ks->sess_id, sizeof(ks->sess_id));
	ks->created_ms = now_ms(&c->ep);
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
		ksession_schedule(ks);
		return ks;
	}
	struct wn_protect_env env = {.random = wn_protect_random_sodium};
	const struct wn_identity *id = c->ep.o.id;
	if (wn_protect_peer_init(&ks->peer, true, id->x_sk, id->x_pk,
	                         c->server_x, &env) != 0) {
		sess_free(ks);
		return NULL;
	}
	ks->peer_live = 1;
	ks->state = KS_HANDSHAKE;
	ks->hs_backoff_ms = HS_RETRY_FIRST_MS;
	ks->hs_next_ms = ks->created_ms; /* at the first run pass */
	ksession_schedule(ks);
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
		ks->created_ms = now_ms(&c->ep);
		ks->hs_next_ms = ks->created_ms;
		ks->hs_backoff_ms = HS_RETRY_FIRST_MS;
		ksession_schedule(ks);
	}
	struct kstream *st = kstream_open(ks, target, flags, h);
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
		WN_LOG_RL(ep->o.log, &ep->rl_err, now_ms(ep), WN_LOG_WARN,
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
		if (ktprof_open(&c->ep, from, pkt, len, &fp) != 0)
			return;
		client_heard(c, car, now_ms(&c->ep));
		ktprof_input(ks, car, from, fromlen, &fp);
		return;
	}
	if (!ks || c->closing ||
	    wn_protect_classify(pkt, len, &type, &idx) != 0) {
		c->ep.stats.pkts_dropped++;
		return;
	}
	uint64_t now = now_ms(&c->ep);
	if (type == WN_PROTECT_MSG_RESPONSE) {
		if (wn_protect_consume_response(&ks->peer, pkt, len, now) !=
		    0) {
			c->ep.stats.pkts_dropped++;
			return;
		}
		client_heard(c, car, now);
		ks->hs_next_ms = 0;
		send_empty(ks, now); /* confirms the keys to the server */
		if (ks->state == KS_HANDSHAKE) {
			ks->state = KS_UP;
			ks->was_up = 1;
			wn_kcp_sess_touch(ks->core, now);
			wn_log_event(c->ep.o.log, WN_LOG_INFO, "sess", '+',
			             ks->tunnel.peer_id, 1,
			             "connected to server");
			if (c->ev.on_up)
				c->ev.on_up(c->ev.ctx);
		}
		ksession_schedule(ks);
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
		ksession_input(ks, car, from, fromlen,
		               pkt + WN_PROTECT_HEADROOM, plen);
}

static void client_recv_done(void *ctx, struct wn_carrier *c)
{
	(void)ctx;
	(void)c;
	/* Each input schedules its session's run pass, which flushes the
	 * acks of the whole batch at the end of the loop iteration. */
}

/* A stream carrier's new connection is up: what is in flight goes again
 * on it at once (the old connection took it down with it). */
static void client_state(void *ctx, struct wn_carrier *car,
                         const struct sockaddr *peer, int up, int err)
{
	(void)peer;
	(void)err;
	struct wn_kcp_client *c = ctx;
	struct ksession *ks = c->cur;
	if (!up || !ks || ks->state != KS_UP || ks->carrier != car)
		return;
	wn_kcp_sess_kick(ks->core, now_ms(&c->ep));
	ksession_schedule(ks);
}

static void client_writable(void *ctx, struct wn_carrier *c)
{
	(void)c;
	struct wn_kcp_client *cl = ctx;
	if (cl->cur)
		ksession_schedule(cl->cur);
}

int wn_kcp_client_new(const struct wn_kcp_engine_opts *o,
                      const uint8_t server_key[WN_KEY_LEN],
                      const struct wn_kcp_client_events *ev,
                      struct wn_kcp_client **out)
{
	if (!o->loop || !o->log || (!o->id && !o->kcptun))
		return WN_EINVAL;
	struct wn_kcp_client *c = calloc(1, sizeof(*c));
	if (!c)
		return WN_ENOMEM;
	c->ep.o = *o;
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
	int rc;
	if (o->kcptun) {
		/* kcptun: no keys, the passphrase is in the profile. */
		rc = ktprof_new(&c->ep, o->kcptun);
		snprintf(c->tunnel.peer_id, sizeof(c->tunnel.peer_id),
		         "kcptun");
	} else {
		key_name(server_key, c->tunnel.peer_id);
		memcpy(c->server_key, server_key, WN_KEY_LEN);
		rc = wn_pubkey_to_x25519(server_key, c->server_x);
	}
	if (rc != 0) {
		free(c->ep.tx);
		free(c);
		return rc;
	}
	if (ev)
		c->ev = *ev;
	wn_deferred_init(&c->dnode);
	*out = c;
	return 0;
}

struct wn_carrier_handler wn_kcp_client_handler(struct wn_kcp_client *c)
{
	struct wn_carrier_handler h = {
	    .ctx = c,
	    .recv = client_recv,
	    .recv_done = client_recv_done,
	    .writable = client_writable,
	    .state = client_state,
	};
	return h;
}

int wn_kcp_client_add_path(struct wn_kcp_client *c, struct wn_carrier *carrier,
                           const struct sockaddr *server, socklen_t len)
{
	if (c->npaths == WN_KCP_MAX_PATHS || len > sizeof(c->paths[0].addr))
		return WN_EINVAL;
	struct kpath *p = &c->paths[c->npaths++];
	p->carrier = carrier;
	memcpy(&p->addr, server, len);
	p->len = len;
	return 0;
}

int wn_kcp_client_go(struct wn_kcp_client *c)
{
	if (c->npaths == 0)
		return WN_EINVAL;
	c->started = 1;
	c->last_rx_ms = c->moved_ms = c->probed_ms = now_ms(&c->ep);
	if (!c->cur)
		c->cur = client_new_session(c);
	else
		ksession_schedule(c->cur);
	return c->cur ? 0 : WN_ENOMEM;
}

int wn_kcp_client_start(struct wn_kcp_client *c, struct wn_carrier *carrier,
                        const struct sockaddr *server, socklen_t len)
{
	int rc = wn_kcp_client_add_path(c, carrier, server, len);
	return rc != 0 ? rc : wn_kcp_client_go(c);
}

struct wn_tunnel *wn_kcp_client_tunnel(struct wn_kcp_client *c)
{
	return &c->tunnel;
}

int wn_kcp_client_is_up(const struct wn_kcp_client *c)
{
	return c->cur && c->cur->state == KS_UP;
}

const struct wn_kcp_engine_stats *
wn_kcp_client_stats(const struct wn_kcp_client *c)
{
	return &c->ep.stats;
}

static void client_deferred_free(struct wn_deferred *node)
{
	struct wn_kcp_client *c =
	    wn_list_entry(node, struct wn_kcp_client, dnode);
	ktprof_free(&c->ep);
	free(c->ep.tx);
	free(c);
}

void wn_kcp_client_close(struct wn_kcp_client *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (c->cur) {
		/* Flush what is queued (FINs, resets) before going. */
		struct ksession *ks = c->cur;
		if (ks->state == KS_UP)
			wn_kcp_sess_run(ks->core, now_ms(&c->ep));
		tx_flush(&c->ep);
		sess_kill(ks, "client closed");
	}
	/* Deferred after the session's own free. */
	wn_loop_defer(c->ep.o.loop, &c->dnode, client_deferred_free);
}

/* ---- server ------------------------------------------------------------ */

struct kclient {
	uint8_t key[WN_KEY_LEN]; /* Ed25519 identity */
	uint8_t x[WN_KEY_LEN];   /* its X25519 form, as handshakes show it */
	uint8_t last_ts[WN_PROTECT_TIMESTAMP_LEN]; /* newest initiation */
	struct ksession *sess; /* its live session, if any */
};

/* Handshakes that pass mac1 cost the server two DH operations each (about
 * half a millisecond): without WireGuard's cookie reply, a token bucket
 * caps them. */
#define HS_RATE_PER_S 200
#define HS_BURST 400

struct wn_kcp_server {
	struct kep ep; /* first */
	double hs_tokens;
	uint64_t hs_refill_ms;
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

/* A new session for client i, whose initiation named sess_id and conv. */
static struct ksession *server_new_session(struct wn_kcp_server *s, size_t i,
                                           const uint8_t *sess_id,
                                           uint32_t conv)
{
	struct kclient *kc = &s->clients[i];
	struct ksession *ks = sess_new(&s->ep, kc->key, conv);
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
		sess_free(ks);
		return NULL;
	}
	ks->peer_live = 1;
	ks->state = KS_UP;
	ks->was_up = 1;
	ks->created_ms = now_ms(&s->ep);
	wn_list_add_tail(&s->sessions, &ks->link);
	s->nsessions++;
	kc->sess = ks;
	return ks;
}

/* A handshake initiation: answered only for a listed client, with a
 * timestamp newer than its last, that proved it knows our key. Anything
 * else is dropped without a word. */
static void server_initiation(struct wn_kcp_server *s, struct wn_carrier *car,
                              const struct sockaddr *from, socklen_t fromlen,
                              const uint8_t *pkt, size_t len)
{
	uint64_t now = now_ms(&s->ep);
	s->hs_tokens += (double)(now - s->hs_refill_ms) * HS_RATE_PER_S / 1000;
	s->hs_refill_ms = now;
	if (s->hs_tokens > HS_BURST)
		s->hs_tokens = HS_BURST;
	if (s->hs_tokens < 1) {
		s->ep.stats.pkts_dropped++;
		WN_LOG_RL(s->ep.o.log, &s->ep.rl_drop, now, WN_LOG_WARN, "sess",
		          "too many handshakes: dropping some");
		return;
	}
	struct wn_protect_initiation in;
	if (wn_protect_responder_consume(&s->resp, pkt, len, &in) != 0) {
		s->ep.stats.pkts_dropped++;
		return;
	}
	s->hs_tokens -= 1; /* it passed mac1: it cost us the DH work */
	size_t i;
	for (i = 0; i < s->nclients; i++)
		if (sodium_memcmp(s->clients[i].x, in.static_pk, WN_KEY_LEN) ==
		    0)
			break;
	const char *why = NULL;
	if (i == s->nclients)
		why = "unknown client key";
	else if (!wn_protect_timestamp_after(in.timestamp,
	                                     s->clients[i].last_ts))
		why = "replayed handshake";
	else if (in.payload_len != HS_PAYLOAD_LEN ||
	         in.payload[0] != HS_PAYLOAD_VERSION)
		why = "unsupported handshake version";
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
		sess_kill(ks, "replaced by a new session");
		ks = NULL;
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
		ks = server_new_session(s, i, sess_id, conv);
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
	ks->carrier = car;
	memcpy(&ks->remote, from, fromlen);
	ks->rlen = fromlen;
	wn_kcp_sess_touch(ks->core, now);
	send_pkt(ks, out, olen);
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
	if (ktprof_open(&s->ep, from, pkt, len, &fp) != 0)
		return;
	uint8_t key[WN_CID_MAX];
	size_t keylen = addr_key(from, key);
	struct ksession *ks = wn_cidmap_get(&s->by_addr, key, keylen);
	struct wn_kcp_hdr h;
	if (fp.kind == WN_KCPGO_PARITY) {
		/* No conv inside: only for a session we have. */
		if (ks)
			ktprof_input(ks, car, from, fromlen, &fp);
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
		sess_kill(ks, "replaced by a new session");
		ks = NULL;
	}
	uint64_t now = now_ms(&s->ep);
	if (!ks) {
		if (s->nsessions >= s->ep.o.max_sessions) {
			WN_LOG_RL(s->ep.o.log, &s->ep.rl_drop, now, WN_LOG_WARN,
			          "sess", "session refused: %zu sessions live",
			          s->nsessions);
			return;
		}
		static const uint8_t nokey[WN_KEY_LEN];
		ks = sess_new(&s->ep, nokey, h.conv);
		if (!ks)
			return;
		if (wn_cidmap_add(&s->by_addr, key, keylen, ks) != 0) {
			sess_free(ks);
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
	ktprof_input(ks, car, from, fromlen, &fp);
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
	    wn_protect_open(&ks->peer, pkt, len, now_ms(&s->ep), &plen) != 0) {
		s->ep.stats.pkts_dropped++;
		return;
	}
	ksession_input(ks, car, from, fromlen, pkt + WN_PROTECT_HEADROOM, plen);
}

static void server_writable(void *ctx, struct wn_carrier *c)
{
	struct wn_kcp_server *s = ctx;
	for (struct wn_list *n = s->sessions.next; n != &s->sessions;
	     n = n->next) {
		struct ksession *ks = wn_list_entry(n, struct ksession, link);
		if (ks->carrier == c)
			ksession_schedule(ks);
	}
}

int wn_kcp_server_new(const struct wn_kcp_engine_opts *o,
                      const uint8_t (*clients)[WN_KEY_LEN], size_t n,
                      const struct wn_accept_handler *ah,
                      struct wn_kcp_server **out)
{
	if (!o->loop || !o->log || (!o->id && !o->kcptun) || !ah ||
	    !ah->on_stream)
		return WN_EINVAL;
	struct wn_kcp_server *s = calloc(1, sizeof(*s));
	if (!s)
		return WN_ENOMEM;
	s->ep.o = *o;
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
	s->hs_tokens = HS_BURST;
	s->hs_refill_ms = wn_loop_now_ms(o->loop);
	wn_list_init(&s->sessions);
	wn_deferred_init(&s->dnode);
	int rc = WN_ENOMEM;
	s->clients = calloc(n ? n : 1, sizeof(*s->clients));
	if (!s->clients || wn_cidmap_init(&s->by_index) != 0)
		goto fail;
	if (wn_cidmap_init(&s->by_addr) != 0)
		goto fail_map;
	if (o->kcptun) {
		rc = ktprof_new(&s->ep, o->kcptun);
		if (rc != 0)
			goto fail_addr;
		s->ep.o.kcptun = NULL; /* copied into ep.kt */
		*out = s;
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
	*out = s;
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

struct wn_carrier_handler wn_kcp_server_handler(struct wn_kcp_server *s)
{
	struct wn_carrier_handler h = {
	    .ctx = s,
	    .recv = server_recv,
	    .recv_done = client_recv_done,
	    .writable = server_writable,
	};
	return h;
}

size_t wn_kcp_server_sessions(const struct wn_kcp_server *s)
{
	return s->nsessions;
}

const struct wn_kcp_engine_stats *
wn_kcp_server_stats(const struct wn_kcp_server *s)
{
	return &s->ep.stats;
}

static void server_deferred_free(struct wn_deferred *node)
{
	struct wn_kcp_server *s =
	    wn_list_entry(node, struct wn_kcp_server, dnode);
	wn_protect_responder_wipe(&s->resp);
	wn_cidmap_free(&s->by_index);
	wn_cidmap_free(&s->by_addr);
	ktprof_free(&s->ep);
	sodium_memzero(s->clients, s->nclients * sizeof(*s->clients));
	free(s->clients);
	free(s->ep.tx);
	free(s);
}

void wn_kcp_server_close(struct wn_kcp_server *s)
{
	if (s->closing)
		return;
	s->closing = 1;
	while (!wn_list_empty(&s->sessions)) {
		struct ksession *ks =
		    wn_list_entry(s->sessions.next, struct ksession, link);
		if (ks->state == KS_UP)
			wn_kcp_sess_run(ks->core, now_ms(&s->ep));
		tx_flush(&s->ep);
		sess_kill(ks, "server closed");
	}
	wn_loop_defer(s->ep.o.loop, &s->dnode, server_deferred_free);
}
