/* The KCP engine's sessions: what the client (kcp_client.c) and the server
 * (kcp_server.c) share. A session's run pass, its timer, the send batch and
 * sealing, and its end (see kcp_engine_int.h); the engine's options from
 * the engine-neutral configuration, and its two rows of the engine table
 * (engine_ops.h), at the end. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/flow_base.h"
#include "engine/kcp_engine_int.h"
#include "util/err.h"
#include "util/rw.h"

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
	o->session_buffer = WN_SB_SESSION_LIMIT_DEFAULT;
	o->total_buffer = WN_SB_TOTAL_LIMIT_DEFAULT;
	o->max_sessions = 4096;
	o->streams_per_key = WN_KEY_STREAMS_DEFAULT;
	o->failover_ms = 3000;
	o->probe_ms = 10000;
}

int wn__kep_opts_from(const struct wn_engine_type *t,
                      const struct wn_engine_conf *c, int server,
                      struct wn_kcp_engine_opts *o, struct wn_kcptun_cfg *kt)
{
	int kcptun = t == &wn_kcptun_engine;
	if (kcptun)
		wn_kcptun_opts_default(o, server);
	else
		wn_kcp_engine_opts_default(o);
	o->loop = c->loop;
	o->log = c->log;
	o->id = c->id;
	if (c->mode)
		snprintf(o->mode, sizeof(o->mode), "%s", c->mode);
	if (c->snd_wnd)
		o->snd_wnd = c->snd_wnd;
	if (c->rcv_wnd)
		o->rcv_wnd = c->rcv_wnd;
	if (c->mtu)
		o->mtu = c->mtu;
	if (c->max_streams)
		o->max_streams = c->max_streams;
	if (c->streams_per_key)
		o->streams_per_key = c->streams_per_key;
	if (c->idle_timeout_ms)
		o->idle_timeout_ms = c->idle_timeout_ms;
	o->keepalive_ms = server            ? 0
	                  : c->keepalive_ms ? c->keepalive_ms
	                                    : o->keepalive_ms;
	if (c->failover_ms)
		o->failover_ms = c->failover_ms;
	if (c->probe_ms)
		o->probe_ms = c->probe_ms;
	if (c->stream_send_limit)
		o->stream_send_limit = c->stream_send_limit;
	if (c->stream_window)
		o->stream_window = c->stream_window;
	if (c->session_buffer)
		o->session_buffer = c->session_buffer;
	if (c->total_buffer)
		o->total_buffer = c->total_buffer;
	if (!kcptun)
		return 0;
	wn_kcptun_cfg_default(kt);
	if (c->crypt && wn_kcpcrypt_parse(c->crypt, &kt->crypt) != 0)
		return WN_EINVAL;
	if (c->passphrase)
		wn_kcpcrypt_derive(c->passphrase, kt->key);
	if (c->has_fec) {
		kt->datashard = c->datashard;
		kt->parityshard = c->parityshard;
	}
	kt->nocomp = c->nocomp;
	if (c->smuxver)
		kt->smuxver = (int)c->smuxver;
	o->kcptun = kt;
	return 0;
}

void wn__kep_describe_init(struct kep *ep, const struct wn_kcp_engine_opts *o)
{
	const struct wn_kcptun_cfg *kt = o->kcptun;
	ep->desc[0] = '\0';
	if (!kt)
		return;
	char fec[32] = "no FEC";
	if (kt->datashard)
		snprintf(fec, sizeof(fec), "FEC %u+%u", kt->datashard,
		         kt->parityshard);
	snprintf(ep->desc, sizeof(ep->desc),
	         "crypt %s, mode %s, %s, %s, smux v%d",
	         wn_kcpcrypt_name(kt->crypt), o->mode, fec,
	         kt->nocomp ? "no compression" : "snappy", kt->smuxver);
}

void wn__kep_describe(const struct wn_engine *e, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", wn__kep_cof(e)->desc);
}

void wn__kep_stats(const struct kep *ep, uint64_t live,
                   struct wn_engine_stats *out)
{
	const struct wn_kcp_engine_stats *s = &ep->stats;
	memset(out, 0, sizeof(*out));
	out->sessions = live;
	out->sessions_opened = s->sessions_opened;
	out->sessions_closed = s->sessions_closed;
	out->streams_opened = s->streams_opened;
	out->streams_closed = s->streams_closed;
	out->pkts_dropped = s->pkts_dropped;
	out->auth_failures = s->auth_failures;
}

/* Hands the batch of sealed packets to its session's carrier in one send
 * (one sendmsg with UDP GSO on the udp carrier). A full carrier drops it:
 * KCP retransmits, as after a loss. */
void wn__kep_tx_flush(struct kep *ep)
{
	struct ksession *ks = ep->tx_ks;
	if (ep->tx_n == 0)
		return;
	int rc = WN_EUNREACH;
	if (ks->carrier)
		rc =
		    wn_carrier_send(ks->carrier, (struct sockaddr *)&ks->remote,
		                    ks->rlen, ep->tx, ep->tx_len, ep->tx_seg);
	if (rc != 0) {
		ep->stats.dgram_drops += ep->tx_dg;
		WN_LOG_RL(ep->o.log, &ep->rl_err, wn__kep_now(ep), WN_LOG_DEBUG,
		          "sess", "session %llu: %u packets dropped: %s",
		          (unsigned long long)ks->id, ep->tx_n,
		          wn_strerror(rc));
	}
	ep->tx_n = 0;
	ep->tx_dg = 0;
	ep->tx_len = 0;
	ep->tx_ks = NULL;
}

/* Room for the next packet of ks, len bytes, in the batch (NULL above
 * KCP_PKT_MAX); tx_commit adds it. A batch holds packets of one session
 * and one size, except that its last may be shorter (the shape UDP GSO
 * takes); anything else sends the batch first. */
static uint8_t *tx_reserve(struct ksession *ks, size_t len)
{
	struct kep *ep = ks->ep;
	if (ep->tx_n &&
	    (ep->tx_ks != ks || len > ep->tx_seg ||
	     ep->tx_len % ep->tx_seg != 0 || ep->tx_n == KCP_TX_SEGS))
		wn__kep_tx_flush(ep);
	if (len > KCP_PKT_MAX)
		return NULL;
	if (ep->tx_n == 0) {
		ep->tx_ks = ks;
		ep->tx_seg = len;
	}
	return ep->tx + ep->tx_len;
}

/* Adds the packet written at tx_reserve's room: exactly the len
 * reserved. */
static void tx_commit(struct kep *ep, size_t len)
{
	ep->tx_len += len;
	ep->tx_n++;
}

/* Adds a finished packet for ks to the batch. */
static void tx_add(struct ksession *ks, const uint8_t *pkt, size_t len)
{
	uint8_t *room = tx_reserve(ks, len);
	if (!room)
		return;
	memcpy(room, pkt, len);
	tx_commit(ks->ep, len);
}

/* Sends one packet at once (handshakes, keepalives), after the batch. */
void wn__ksession_send_now(struct ksession *ks, const uint8_t *pkt, size_t len)
{
	tx_add(ks, pkt, len);
	wn__kep_tx_flush(ks->ep);
}

void wn__ksession_send(struct ksession *ks, const uint8_t *pkt, size_t len)
{
	tx_add(ks, pkt, len);
}

/* KCP's output: type byte and seal in place (the core leaves room around
 * the datagram) and add to the batch, which the run pass sends when it
 * ends. */
static void sess_output(void *ctx, uint8_t *pkt, size_t len)
{
	struct ksession *ks = ctx;
	if (ks->ep->kt) {
		wn__ktprof_output(ks, pkt, len);
		return;
	}
	size_t plen;
	pkt[-KPT_LEN] = KPT_KCP;
	uint8_t *buf = pkt - KPT_LEN - WN_PROTECT_HEADROOM;
	if (wn_protect_seal(&ks->peer, buf, KPT_LEN + len,
	                    KPT_LEN + len + WN_PROTECT_OVERHEAD,
	                    wn__kep_now(ks->ep), &plen) != 0)
		return; /* no usable keys: the handshake will follow */
	tx_add(ks, buf, plen);
}

/* The largest packet the session may send now: what it was sized to, and
 * what its current carrier takes (a session may have moved to another). */
static size_t sess_pkt_max(const struct ksession *ks)
{
	size_t m = ks->pkt_max;
	if (ks->carrier) {
		size_t c = wn_carrier_max_packet(ks->carrier);
		if (c && c < m)
			m = c;
	}
	return m;
}

size_t wn__ksession_dgram_max(const struct ksession *ks)
{
	size_t m = sess_pkt_max(ks);
	if (ks->state != KS_UP || ks->ep->kt ||
	    m <= WN_PROTECT_OVERHEAD + KPT_LEN)
		return 0;
	return m - WN_PROTECT_OVERHEAD - KPT_LEN;
}

/* A flow message goes into the send batch, sealed in its place there: no
 * copy but the one into the batch, and out with this loop iteration's
 * batch (the run pass scheduled here flushes it). */
int wn__ksession_dgram_send(struct ksession *ks, const uint8_t *msg, size_t len)
{
	struct kep *ep = ks->ep;
	if (ks->state != KS_UP || ep->kt) {
		ep->stats.dgram_drops++;
		return WN_EAGAIN;
	}
	if (len > wn__ksession_dgram_max(ks))
		return WN_EMSGSIZE;
	size_t plen = KPT_LEN + len + WN_PROTECT_OVERHEAD;
	uint8_t *buf = tx_reserve(ks, plen);
	if (!buf) {
		ep->stats.dgram_drops++;
		return WN_EMSGSIZE;
	}
	buf[WN_PROTECT_HEADROOM] = KPT_FLOW;
	memcpy(buf + WN_PROTECT_HEADROOM + KPT_LEN, msg, len);
	size_t out;
	if (wn_protect_seal(&ks->peer, buf, KPT_LEN + len, plen,
	                    wn__kep_now(ep), &out) != 0) {
		/* No usable keys (the server before the client confirmed
		 * fresh ones, or expired ones): a loss, as datagrams are. */
		ep->stats.dgram_drops++;
		return WN_EAGAIN;
	}
	tx_commit(ep, out);
	ep->tx_dg++;
	ep->stats.dgrams_out++;
	wn__ksession_schedule(ks);
	return 0;
}

/* ---- sessions ---------------------------------------------------------- */

static void sess_timer_cb(struct wn_timer *t);

static void sess_free_timer(struct wn_timer *t)
{
	struct ksession *ks = wn_list_entry(t, struct ksession, timer);
	free(ks);
}

void wn__ksession_free(struct ksession *ks)
{
	/* Ended streams' data goes with smux: the budget gets it back, and
	 * those streams are freed now if their close has run. */
	wn_sb_session_gone(&ks->tunnel);
	if (ks->flows_own)
		wn_fb_free(ks->flows);
	ks->flows = NULL;
	ks->flows_own = 0;
	wn_kcp_sess_free(ks->core);
	ks->core = NULL;
	wn__ktprof_sess_free(ks);
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
	struct kstream *st = wn__kstream_open(ks, target, flags, h);
	return st ? &st->base : NULL;
}

static const struct wn_tunnel_ops sess_tunnel_ops = {
    .open_stream = sess_open_stream,
};

/* Creates a session (state KS_HANDSHAKE) for peer_key with the given KCP
 * conversation id. NULL on failure. */
struct ksession *wn__ksession_new(struct kep *ep, const uint8_t *peer_key,
                                  uint32_t conv, size_t max_pkt)
{
	struct ksession *ks = calloc(1, sizeof(*ks));
	if (!ks)
		return NULL;
	ks->ep = ep;
	ks->tunnel.ops = &sess_tunnel_ops;
	ks->tunnel.recv_window = ep->o.stream_window;
	ks->id = ++ep->sess_seq;
	ks->conv = conv;
	ks->client_index = -1;
	memcpy(ks->peer_key, peer_key, WN_KEY_LEN);
	wn__kep_key_name(peer_key, ks->tunnel.peer_id);
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
	/* A whole datagram (KCP's plus the protection around it) stays
	 * within the configured mtu (default: KCP's plus that) and within
	 * what the carrier takes (carrier.h). */
	size_t mtu = ep->o.mtu ? ep->o.mtu : cfg.kcp.mtu + WN_PROTECT_OVERHEAD;
	if (max_pkt && max_pkt < mtu)
		mtu = max_pkt;
	if (mtu > KCP_PKT_MAX)
		mtu = KCP_PKT_MAX;
	ks->pkt_max = mtu;
	/* The payload type byte (KPT_KCP) goes before KCP's datagram. */
	cfg.kcp.mtu = (uint32_t)(mtu - WN_PROTECT_OVERHEAD - KPT_LEN);
	if (ep->o.snd_wnd)
		cfg.kcp.snd_wnd = ep->o.snd_wnd;
	if (ep->o.rcv_wnd)
		cfg.kcp.rcv_wnd = ep->o.rcv_wnd;
	cfg.kcp.rto_srtt_pct = ep->o.rto_srtt_pct;
	cfg.kcp.pacing = ep->o.pacing;
	cfg.kcp.headroom = WN_PROTECT_HEADROOM + KPT_LEN;
	cfg.kcp.tailroom = WN_PROTECT_TAILROOM;
	cfg.smux.client = !ep->is_server;
	cfg.smux.stream_window = ep->o.stream_window;
	cfg.smux.stream_send_limit = ep->o.stream_send_limit;
	cfg.smux.max_streams = ep->o.max_streams;
	/* What the peer may send that our readers have not taken is bounded
	 * by the same budgets as what we send (session-buffer and
	 * total-buffer): the smux windows we advertise add up to no more. */
	cfg.smux.recv_budget = ep->o.session_buffer;
	ep->rpool.limit = ep->o.total_buffer;
	cfg.smux.pool = &ep->rpool;
	cfg.keepalive_ms = ep->o.keepalive_ms;
	cfg.idle_timeout_ms = ep->o.idle_timeout_ms;
	if (ep->kt)
		wn__ktprof_sess_cfg(ep, &cfg, max_pkt);
	struct wn_smux_cb cb = wn__kstream_smux_cb(ks);
	int rc = wn_kcp_sess_new(&cfg, sess_output, ks, &cb, wn__kep_now(ep),
	                         &ks->core);
	if (rc == 0)
		rc = wn_timer_init(ep->o.loop, &ks->timer, sess_timer_cb);
	if (rc != 0) {
		wn__ktprof_sess_free(ks);
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
void wn__ksession_kill(struct ksession *ks, const char *why)
{
	if (ks->state == KS_DEAD)
		return;
	if (ks->ep->tx_ks == ks)
		wn__kep_tx_flush(ks->ep);
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
		wn__kstream_fail(st, WN_STREAM_SESSION_LOST);
	}
	/* The server's flows die with the session (the client's live on in
	 * the client, for its next session). */
	if (ks->flows_own)
		wn_fb_finish(ks->flows, WN_STREAM_SESSION_LOST);
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
	uint64_t now = wn__kep_now(ks->ep);
	wn_protect_tick(&ks->peer, now);
	if (ks->ep->sess_tick)
		ks->ep->sess_tick(ks->ep, ks, now);
	if (ks->state == KS_DEAD)
		return;
	if (ks->state == KS_UP) {
		wn_kcp_sess_run(ks->core, now);
		wn__kep_tx_flush(ks->ep);
		int err = wn_kcp_sess_error(ks->core);
		if (err) {
			wn__ksession_kill(ks, err == WN_ETIMEDOUT
			                          ? "no answer from the peer"
			                          : "protocol error");
			return;
		}
		wn__kstream_wake_writers(ks);
		/* What smux handed to KCP leaves the send budget. */
		wn_sb_sync(&ks->tunnel);
	}
	if (ks->state != KS_DEAD)
		arm_timer(ks, now);
}

/* The session's deferred work: a run pass, or freeing it once dead. */
static void sess_deferred(struct wn_deferred *node)
{
	struct ksession *ks = wn_list_entry(node, struct ksession, dnode);
	if (ks->state == KS_DEAD)
		wn__ksession_free(ks);
	else
		sess_run(ks);
}

void wn__ksession_schedule(struct ksession *ks)
{
	if (ks->state != KS_DEAD)
		wn_loop_defer(ks->ep->o.loop, &ks->dnode, sess_deferred);
}

static void sess_timer_cb(struct wn_timer *t)
{
	sess_run(wn_list_entry(t, struct ksession, timer));
}

/* An authenticated transport packet for ks arrived from `from` over c. */
void wn__ksession_input(struct ksession *ks, struct wn_carrier *c,
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
		wn_carrier_authenticated(c, from, fromlen); /* carrier.h */
	}
	uint64_t now = wn__kep_now(ks->ep);
	if (ks->ep->kt) {
		if (ptlen) {
			wn_kcp_sess_input(ks->core, pt, ptlen, now);
			wn__ksession_schedule(ks);
		}
		return;
	}
	wn_kcp_sess_touch(ks->core, now);
	if (ptlen == 0)
		return; /* a keepalive */
	switch (pt[0]) {
	case KPT_KCP:
		wn_kcp_sess_input(ks->core, pt + KPT_LEN, ptlen - KPT_LEN, now);
		wn__ksession_schedule(ks);
		return;
	case KPT_FLOW:
		if (!ks->flows)
			break;
		ks->ep->stats.dgrams_in++;
		wn_fb_recv(ks->flows, pt + KPT_LEN, ptlen - KPT_LEN);
		return;
	}
	/* Authenticated, so from our peer: a newer release's type. */
	ks->ep->stats.bad_payload++;
}

/* Seals and sends an empty transport packet: a keepalive, and the
 * client's confirmation of fresh keys (the server sends with them only
 * after one arrives). */
void wn__ksession_send_empty(struct ksession *ks, uint64_t now)
{
	uint8_t buf[WN_PROTECT_OVERHEAD];
	size_t len;
	if (wn_protect_seal(&ks->peer, buf, 0, sizeof(buf), now, &len) == 0)
		wn__ksession_send_now(ks, buf, len);
}

/* ---- the engine's rows ----------------------------------------------- */

const struct wn_engine_type wn_kcp_engine = {
    .name = "kcp",
    .caps = WN_ENGINE_CAP_DATAGRAM | WN_ENGINE_CAP_KEYS | WN_ENGINE_CAP_TARGETS,
    .client_new = wn__kep_client_new,
    .server_new = wn__kep_server_new,
};

/* kcptun: no identities (the passphrase is the secret) and no target in
 * the streams (the server has one). Datagrams: never (kcptun has none). */
const struct wn_engine_type wn_kcptun_engine = {
    .name = "kcptun",
    .caps = 0,
    .client_new = wn__kep_client_new,
    .server_new = wn__kep_server_new,
};
