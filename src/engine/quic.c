/* The QUIC endpoints: a client that keeps one verified connection to its
 * server up (reconnecting with backoff, holding new streams while down), and
 * a server that routes packets to connections by connection ID and accepts
 * new ones; each implements the engine operations (engine_ops.h), and the
 * engine's row, wn_quic_engine, is at the end. One connection's machinery
 * is in quic_conn.c. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/failover.h"
#include "engine/quic_int.h"
#include "util/err.h"

#define HEALTH_MS 250
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define SERVER_MAX_CONNS 4096
/* Address validation (docs/wire-format.md, "Initial token"). A handshake
 * admitted on the client's proof alone may come from a spoofed address (a
 * replayed Initial): at most SERVER_MAX_UNVALIDATED of those at once, and
 * SERVER_PREFIX_UNVALIDATED per source prefix; past either, a proven
 * Initial gets a Retry instead, and only an address that answers it
 * starts a handshake. Handshakes of any kind are capped in all and per
 * prefix; past those caps Initials are dropped. */
#define SERVER_MAX_HALFOPEN 1024
#define SERVER_MAX_UNVALIDATED 64
#define SERVER_PREFIX_HALFOPEN 32
#define SERVER_PREFIX_UNVALIDATED 4
#define SERVER_PREFIX_SLOTS 2048 /* > SERVER_MAX_HALFOPEN: never full */
/* A Retry token is good this long after the Retry; its secret is replaced
 * this often (the previous one still verifies, so no token in flight is
 * lost to a rotation). */
#define RETRY_TOKEN_TIMEOUT_MS 10000
#define RETRY_SECRET_MS (10 * 60 * 1000)
#define QC_ADMIT_HALFOPEN 1u
#define QC_ADMIT_UNVALIDATED 2u

void wn_quic_opts_default(struct wn_quic_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->idle_timeout_ms = 15000;
	o->keepalive_ms = 5000;
	o->handshake_timeout_ms = 10000;
	/* One stream must keep a long, lossy path full: with loss every
	 * round trip has holes, and until a hole is repaired (one more round
	 * trip, or two when the repair is lost too) the receiver cannot
	 * extend the window and the sender keeps everything after it.
	 * ngtcp2's autotuning grows a window only while it is being used up
	 * within 2 RTT, which a stalled stream is not. Only credit: nothing
	 * is allocated until data arrives. The size: docs/performance.md,
	 * "Stream windows 8 MiB". */
	o->stream_send_limit = 8u << 20;
	o->stream_window = 8u << 20;
	o->stream_window_max = 16u << 20;
	o->conn_window_max = 64u << 20;
	o->max_streams = 1024;
	o->sessions_per_key = WN_KEY_SESSIONS_DEFAULT;
	o->streams_per_key = WN_KEY_STREAMS_DEFAULT;
	o->session_buffer = WN_SB_SESSION_LIMIT_DEFAULT;
	o->total_buffer = WN_SB_TOTAL_LIMIT_DEFAULT;
	o->failover_ms = 3000;
	o->probe_ms = 10000;
}

/* The engine's options: its defaults, then what the configuration set. */
static void opts_from(const struct wn_engine_conf *c, int server,
                      struct wn_quic_opts *o)
{
	wn_quic_opts_default(o);
	o->loop = c->loop;
	o->log = c->log;
	o->id = c->id;
	if (c->max_streams)
		o->max_streams = c->max_streams;
	if (c->sessions_per_key)
		o->sessions_per_key = c->sessions_per_key;
	if (c->streams_per_key)
		o->streams_per_key = c->streams_per_key;
	if (c->idle_timeout_ms)
		o->idle_timeout_ms = c->idle_timeout_ms;
	o->keepalive_ms = server            ? 0
	                  : c->keepalive_ms ? c->keepalive_ms
	                                    : o->keepalive_ms;
	if (c->handshake_timeout_ms)
		o->handshake_timeout_ms = c->handshake_timeout_ms;
	if (c->failover_ms)
		o->failover_ms = c->failover_ms;
	if (c->probe_ms)
		o->probe_ms = c->probe_ms;
	if (c->stream_send_limit)
		o->stream_send_limit = c->stream_send_limit;
	if (c->session_buffer)
		o->session_buffer = c->session_buffer;
	if (c->total_buffer)
		o->total_buffer = c->total_buffer;
	/* The most a stream delivers unconsumed is the autotuning limit; the
	 * initial window stays below it. */
	if (c->stream_window) {
		o->stream_window_max = c->stream_window;
		if (o->stream_window > o->stream_window_max)
			o->stream_window = o->stream_window_max;
	}
}

static void no_description(const struct wn_engine *e, char *buf, size_t cap)
{
	(void)e;
	if (cap)
		buf[0] = '\0';
}

static int ep_init(struct qep *ep, const struct wn_quic_opts *o, int server)
{
	memset(ep, 0, sizeof(*ep));
	ep->o = *o;
	ep->is_server = server;
	wn_list_init(&ep->conns);
	ep->rl_drop = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 5);
	ep->rl_err = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 10);
	if (sodium_init() < 0)
		return WN_EINTERNAL;
	randombytes_buf(ep->reset_secret, sizeof(ep->reset_secret));
	ep->txcap = QUIC_GSO_MAX * 1500;
	ep->txbuf = malloc(ep->txcap);
	if (!ep->txbuf)
		return WN_ENOMEM;
	if (wn_tls_creds_init(&ep->creds, o->id, wn_quic_verify_peer) != 0) {
		free(ep->txbuf);
		return WN_EINTERNAL;
	}
	if (server && wn_cidmap_init(&ep->cids) != 0) {
		wn_tls_creds_free(&ep->creds);
		free(ep->txbuf);
		return WN_ENOMEM;
	}
	return 0;
}

static void ep_free(struct qep *ep)
{
	wn_tls_creds_free(&ep->creds);
	if (ep->is_server)
		wn_cidmap_free(&ep->cids);
	free(ep->clients);
	free(ep->key_sessions); /* key_streams is in the same block */
	free(ep->txbuf);
}

static void ep_kill_all(struct qep *ep, const char *why)
{
	while (!wn_list_empty(&ep->conns)) {
		struct qconn *qc =
		    wn_list_entry(ep->conns.next, struct qconn, link);
		wn__qconn_close(qc, why);
	}
}

/* ---- client ---------------------------------------------------------- */

/* One way to the server: a carrier and the server's address on it. */
struct qpath {
	struct wn_carrier *carrier;
	struct sockaddr_storage server;
	socklen_t server_len;
};

struct wn_quic_client {
	struct qep ep; /* first */
	struct wn_tunnel tunnel;
	struct wn_engine_events ev;
	/* The carrier and server address connections start on (the active
	 * path's). */
	struct wn_carrier *carrier;
	struct sockaddr_storage server;
	socklen_t server_len;
	struct qpath paths[WN_QUIC_MAX_PATHS];
	size_t npaths, active;
	struct wn_timer health; /* failover and probing, with several paths */
	struct wn_failover fo;  /* the policy; the paths' up states */
	struct qconn *qc;       /* current connection, NULL between tries */
	struct wn_list pending; /* streams waiting for a connection */
	struct wn_timer retry;
	uint32_t backoff_ms;
	int closing;
	int up;
	struct wn_deferred free_node;
};

static struct wn_quic_client *CL(struct qep *ep)
{
	return (struct wn_quic_client *)ep;
}

static struct wn_quic_client *client_of(struct wn_engine *e)
{
	return CL(wn__quic_ep(e));
}

static const struct wn_quic_client *cclient_of(const struct wn_engine *e)
{
	return (const struct wn_quic_client *)wn__quic_cep(e);
}

/* Moves pending streams onto the connection while it has stream credit;
 * fails those that waited longer than the idle timeout. */
static void client_attach_pending(struct wn_quic_client *c)
{
	uint64_t now = wn__quic_now_ms(&c->ep);
	struct wn_list *l = c->pending.next;
	while (l != &c->pending) {
		struct qstream *qs = wn_list_entry(l, struct qstream, link);
		l = l->next;
		if (c->qc && c->qc->state == QC_UP) {
			int rc = wn__qstream_attach(c->qc, qs);
			if (rc == 0)
				continue;
			if (rc != WN_EAGAIN) {
				wn__qstream_fail(qs, WN_STREAM_INTERNAL);
				continue;
			}
		}
		if (now - qs->opened_ms > c->ep.o.idle_timeout_ms)
			wn__qstream_fail(qs, WN_STREAM_SESSION_LOST);
	}
}

static void client_connect(struct wn_quic_client *c)
{
	if (c->closing || c->qc)
		return;
	c->qc = wn__qconn_new_client(
	    &c->ep, c->carrier, (struct sockaddr *)&c->server, c->server_len);
	if (!c->qc) {
		wn_timer_start(&c->retry, c->backoff_ms, 0);
		return;
	}
	WN_LOG(c->ep.o.log, WN_LOG_DEBUG, "sess", "connecting (attempt %llu)",
	       (unsigned long long)c->qc->id);
}

static void on_retry(struct wn_timer *t)
{
	struct wn_quic_client *c =
	    wn_container_of(t, struct wn_quic_client, retry);
	client_attach_pending(c); /* time out streams waiting too long */
	client_connect(c);
}

static void client_conn_up(struct qep *ep, struct qconn *qc)
{
	struct wn_quic_client *c = CL(ep);
	(void)qc;
	c->up = 1;
	c->backoff_ms = BACKOFF_MIN_MS;
	/* A new connection is a new server session: it knows none of our
	 * flows, whose targets travel again. */
	qc->flows = c->tunnel.flows;
	if (c->tunnel.flows)
		wn_fb_session_changed(c->tunnel.flows);
	char key[WN_KEY_B64_LEN + 1];
	wn_key_encode(qc->peer_key, key);
	wn_log_event(ep->o.log, WN_LOG_INFO, "sess", '+', qc->tunnel.peer_id, 1,
	             "connected to server");
	client_attach_pending(c);
	if (c->ev.on_up)
		c->ev.on_up(c->ev.ctx);
}

static void client_streams_available(struct qep *ep, struct qconn *qc)
{
	(void)qc;
	client_attach_pending(CL(ep));
}

static void client_conn_dead(struct qep *ep, struct qconn *qc)
{
	struct wn_quic_client *c = CL(ep);
	if (c->qc != qc)
		return;
	c->qc = NULL;
	const char *why = qc->why[0] ? qc->why : "connection lost";
	if (c->up) {
		wn_log_event(
		    ep->o.log, c->closing ? WN_LOG_INFO : WN_LOG_WARN, "sess",
		    '-', qc->tunnel.peer_id[0] ? qc->tunnel.peer_id : "server",
		    0, why);
	} else if (!c->closing) {
		WN_LOG_RL(ep->o.log, &ep->rl_err, wn__quic_now_ms(ep),
		          WN_LOG_WARN, "sess", "cannot connect: %s", why);
	}
	c->up = 0;
	if (c->ev.on_down && !c->closing)
		c->ev.on_down(c->ev.ctx, why);
	if (c->closing)
		return;
	wn_timer_start(&c->retry, c->backoff_ms, 0);
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
	                                                   : c->backoff_ms * 2;
}

static struct wn_stream *client_open_stream(struct wn_tunnel *t,
                                            const struct wn_endpoint *target,
                                            unsigned flags,
                                            const struct wn_stream_handler *h)
{
	struct wn_quic_client *c =
	    wn_container_of(t, struct wn_quic_client, tunnel);
	if (c->closing)
		return NULL;
	struct qstream *qs = wn__qstream_new(&c->ep, target, flags, h);
	if (!qs)
		return NULL;
	/* The client's one session, kept across connections: its streams
	 * share its send budget (stream_base.h). */
	qs->base.tunnel = t;
	if (c->qc && c->qc->state == QC_UP && wn_list_empty(&c->pending) &&
	    wn__qstream_attach(c->qc, qs) == 0)
		return &qs->base;
	wn_list_add_tail(&c->pending, &qs->link);
	return &qs->base;
}

/* ---- the flow base's transport for the client's flows ---------------- */

static struct wn_quic_client *flows_client(const struct wn_flows *fl)
{
	return wn_fb_ctx(fl);
}

static int client_fb_send(struct wn_flows *fl, const uint8_t *msg, size_t len)
{
	struct wn_quic_client *c = flows_client(fl);
	if (!c->qc || c->closing)
		return WN_EAGAIN;
	return wn__qdgram_queue(c->qc, msg, len);
}

static size_t client_fb_max_msg(const struct wn_flows *fl)
{
	struct wn_quic_client *c = flows_client(fl);
	return c->qc && !c->closing ? wn__qdgram_max(c->qc) : 0;
}

static uint64_t client_fb_now_ms(const struct wn_flows *fl)
{
	return wn__quic_now_ms(&flows_client(fl)->ep);
}

static const struct wn_fb_transport client_fb = {
    .send = client_fb_send,
    .max_msg = client_fb_max_msg,
    .now_ms = client_fb_now_ms,
};

static const struct wn_tunnel_ops client_tunnel_ops = {
    .open_stream = client_open_stream,
};

static void client_recv(void *ctx, struct wn_carrier *carrier,
                        const struct sockaddr *from, socklen_t fromlen,
                        uint8_t *pkt, size_t len)
{
	struct wn_quic_client *c = ctx;
	(void)carrier;
	if (!c->qc) {
		c->ep.stats.pkts_dropped++;
		return;
	}
	wn__qconn_read(c->qc, carrier, from, fromlen, pkt, len);
}

static void client_writable(void *ctx, struct wn_carrier *carrier)
{
	struct wn_quic_client *c = ctx;
	(void)carrier;
	if (c->qc) {
		c->qc->carrier_blocked = 0;
		wn__qconn_schedule(c->qc);
	}
}

/* A stream carrier reports a new connection: an established QUIC
 * connection migrates to its new path at once (resuming in milliseconds
 * instead of waiting out retransmission backoff); a handshake in progress,
 * whose packets went to the old connection, starts over on the new one. A
 * connection going down needs nothing: its packets are lost until the next
 * one comes up, and the idle timeout bounds the wait. */
static void client_carrier_state(void *ctx, struct wn_carrier *carrier,
                                 const struct sockaddr *peer,
                                 enum wn_carrier_state st, int err)
{
	struct wn_quic_client *c = ctx;
	int up = st == WN_CARRIER_UP;
	(void)peer;
	(void)err;
	for (size_t i = 0; i < c->npaths; i++)
		if (c->paths[i].carrier == carrier)
			wn_failover_path_state(&c->fo, (unsigned)i, up,
			                       wn__quic_now_ms(&c->ep));
	if (!up || c->closing || carrier != c->carrier)
		return;
	if (c->qc && c->qc->state == QC_UP) {
		/* If it cannot migrate (no spare connection ID yet), it stays
		 * on its old path, which the carrier's new connection carries
		 * just as well: only the fresh RTT and congestion state are
		 * missed. */
		wn__qconn_migrate(c->qc);
		return;
	}
	struct qconn *hs = c->qc;
	c->qc = NULL; /* a restart, not a failure: client_conn_dead is quiet */
	if (hs)
		wn__qconn_kill(hs, "carrier reconnected during the handshake");
	wn_timer_stop(&c->retry);
	c->backoff_ms = BACKOFF_MIN_MS;
	client_connect(c);
}

static void noop_carrier_state(void *ctx, struct wn_carrier *carrier,
                               const struct sockaddr *peer,
                               enum wn_carrier_state st, int err)
{
	(void)ctx;
	(void)carrier;
	(void)peer;
	(void)st;
	(void)err;
}

static void on_health(struct wn_timer *t);
static void client_retry_closed(struct wn_timer *t);
static void client_health_closed(struct wn_timer *t);
static void client_path_moved(struct qep *ep, struct qconn *qc,
                              struct wn_carrier *carrier);
static const struct wn_engine_ops client_ops;

int wn__quic_client_new(const struct wn_quic_opts *o,
                        const struct wn_engine_conf *conf,
                        struct wn_engine **out)
{
	const uint8_t *server_key = conf->server_key;
	const struct wn_engine_events *ev = conf->events;
	if (!server_key)
		return WN_EINVAL;
	struct wn_quic_client *c = calloc(1, sizeof(*c));
	if (!c)
		return WN_ENOMEM;
	int rc = ep_init(&c->ep, o, 0);
	if (rc != 0) {
		free(c);
		return rc;
	}
	memcpy(c->ep.server_key, server_key, WN_KEY_LEN);
	c->ep.base.ops = &client_ops;
	wn_qproof_key(c->ep.proof_key, server_key);
	c->ep.conn_up = client_conn_up;
	c->ep.conn_dead = client_conn_dead;
	c->ep.streams_available = client_streams_available;
	c->ep.path_moved = client_path_moved;
	c->tunnel.ops = &client_tunnel_ops;
	wn_failover_init(&c->fo, o->failover_ms, o->probe_ms,
	                 wn__quic_now_ms(&c->ep));
	c->tunnel.recv_window = o->stream_window_max;
	snprintf(c->tunnel.peer_id, sizeof(c->tunnel.peer_id), "server");
	if (ev)
		c->ev = *ev;
	wn_list_init(&c->pending);
	c->backoff_ms = BACKOFF_MIN_MS;
	rc = wn_timer_init(o->loop, &c->retry, on_retry);
	if (rc != 0) {
		ep_free(&c->ep);
		free(c);
		return rc;
	}
	rc = wn_timer_init(o->loop, &c->health, on_health);
	if (rc != 0) {
		wn_timer_close(&c->retry, client_retry_closed);
		return rc;
	}
	/* One set of flows for the client's tunnel, kept across its
	 * connections (reconnects), as its pending streams are. */
	c->tunnel.flows =
	    wn_fb_new(&client_fb, c, o->loop, o->log, &c->tunnel, NULL, 0);
	if (!c->tunnel.flows) {
		wn_timer_close(&c->health, client_health_closed);
		return WN_ENOMEM;
	}
	*out = &c->ep.base;
	return 0;
}

static int client_new(const struct wn_engine_type *t,
                      const struct wn_engine_conf *conf, struct wn_engine **out)
{
	(void)t;
	struct wn_quic_opts o;
	opts_from(conf, 0, &o);
	return wn__quic_client_new(&o, conf, out);
}

static struct wn_carrier_handler client_handler(struct wn_engine *e)
{
	struct wn_quic_client *c = client_of(e);
	struct wn_carrier_handler h = {
	    .ctx = c,
	    .recv = client_recv,
	    .writable = client_writable,
	    .state = client_carrier_state,
	};
	return h;
}

static int client_add_path(struct wn_engine *e, struct wn_carrier *carrier,
                           const struct sockaddr *server, socklen_t len)
{
	struct wn_quic_client *c = client_of(e);
	if (c->ep.conn_seq > 0)
		return WN_EINVAL; /* only before the first connection */
	if (len > sizeof(c->server) || c->npaths == WN_QUIC_MAX_PATHS)
		return WN_EINVAL;
	struct qpath *p = &c->paths[c->npaths++];
	p->carrier = carrier;
	memcpy(&p->server, server, len);
	p->server_len = len;
	/* A connected carrier is down until it reports UP (carrier.h). */
	wn_failover_add_path(&c->fo, wn_carrier_starts_up(carrier),
	                     wn__quic_now_ms(&c->ep));
	return 0;
}

/* Moves the connection to path j at once, keeping every stream. */
static void failover(struct wn_quic_client *c, unsigned j, uint64_t now,
                     const char *why)
{
	struct qpath *p = &c->paths[j];
	if (wn__qconn_move(c->qc, p->carrier, (struct sockaddr *)&p->server,
	                   p->server_len, 1) != 0)
		return; /* no spare connection ID yet: next round */
	WN_LOG(c->ep.o.log, WN_LOG_WARN, "sess",
	       "moving the session from %s to %s: %s",
	       c->paths[c->active].carrier->name, p->carrier->name, why);
	c->active = j;
	c->carrier = p->carrier;
	memcpy(&c->server, &p->server, p->server_len);
	c->server_len = p->server_len;
	wn_failover_moved(&c->fo, j, now);
}

/* With several paths, the failover policy (core/failover.h) decides;
 * making progress is having nothing in flight or hearing the server.
 * Probing the first path is an ngtcp2 path validation: the connection
 * moves back to it when the server answers there. */
static void on_health(struct wn_timer *t)
{
	struct wn_quic_client *c =
	    wn_container_of(t, struct wn_quic_client, health);
	struct qconn *qc = c->qc;
	uint64_t now = wn__quic_now_ms(&c->ep);
	if (!qc || qc->state != QC_UP || c->closing)
		return;
	unsigned j;
	switch (wn_failover_check(&c->fo, now, qc->last_rx_ms,
	                          wn__qconn_in_flight(qc) > 0, &j)) {
	case WN_FAILOVER_MOVE:
		failover(c, j, now,
		         c->fo.up[c->active] ? "no answer on this path"
		                             : "carrier down");
		break;
	case WN_FAILOVER_PROBE:
		wn__qconn_move(qc, c->paths[j].carrier,
		               (struct sockaddr *)&c->paths[j].server,
		               c->paths[j].server_len, 0);
		break;
	case WN_FAILOVER_STAY:
		break;
	}
}

/* A probe succeeded: ngtcp2 moved the connection to that path. */
static void client_path_moved(struct qep *ep, struct qconn *qc,
                              struct wn_carrier *carrier)
{
	struct wn_quic_client *c = CL(ep);
	(void)qc;
	for (size_t i = 0; i < c->npaths; i++)
		if (c->paths[i].carrier == carrier) {
			WN_LOG(ep->o.log, WN_LOG_INFO, "sess",
			       "session moved back to %s", carrier->name);
			c->active = i;
			c->carrier = carrier;
			memcpy(&c->server, &c->paths[i].server,
			       c->paths[i].server_len);
			c->server_len = c->paths[i].server_len;
			wn_failover_moved(&c->fo, (unsigned)i,
			                  wn__quic_now_ms(ep));
		}
}

static int client_go(struct wn_engine *e)
{
	struct wn_quic_client *c = client_of(e);
	if (c->npaths == 0)
		return WN_EINVAL;
	/* Every path must carry every packet: the smallest carrier sets the
	 * packet size, and a fixed-MTU carrier anywhere turns PMTUD off. */
	for (size_t i = 0; i < c->npaths; i++) {
		size_t m = wn_carrier_max_packet(c->paths[i].carrier);
		if (!c->ep.max_pkt || m < c->ep.max_pkt)
			c->ep.max_pkt = m;
		if (c->paths[i].carrier->caps & WN_CARRIER_FIXED_MTU)
			c->ep.stream_paths = 1;
	}
	c->active = 0;
	wn_failover_start(&c->fo, wn__quic_now_ms(&c->ep));
	c->carrier = c->paths[0].carrier;
	memcpy(&c->server, &c->paths[0].server, c->paths[0].server_len);
	c->server_len = c->paths[0].server_len;
	if (c->npaths > 1 &&
	    wn_timer_start(&c->health, HEALTH_MS, HEALTH_MS) != 0)
		return WN_EINTERNAL;
	client_connect(c);
	return 0;
}

static struct wn_tunnel *client_tunnel(struct wn_engine *e)
{
	return &client_of(e)->tunnel;
}

static int client_is_up(const struct wn_engine *e)
{
	return cclient_of(e)->up;
}

/* The engine's counters as the table reports them. */
static void stats_out(const struct wn_quic_stats *s, uint64_t live,
                      struct wn_engine_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->sessions = live;
	out->sessions_opened = s->conns_opened;
	out->sessions_closed = s->conns_closed;
	out->streams_opened = s->streams_opened;
	out->streams_closed = s->streams_closed;
	out->pkts_dropped = s->pkts_dropped;
	out->auth_failures = s->auth_failures;
	out->dgrams_drop_queue = s->dgrams_drop_queue;
	out->dgrams_drop_size = s->dgrams_drop_size;
}

static void client_stats(const struct wn_engine *e, struct wn_engine_stats *out)
{
	const struct wn_quic_client *c = cclient_of(e);
	stats_out(&c->ep.stats, (uint64_t)c->up, out);
}

static void client_retry_closed(struct wn_timer *t)
{
	struct wn_quic_client *c =
	    wn_container_of(t, struct wn_quic_client, retry);
	if (c->tunnel.flows)
		wn_fb_free(c->tunnel.flows);
	ep_free(&c->ep);
	free(c);
}

static void client_health_closed(struct wn_timer *t)
{
	struct wn_quic_client *c =
	    wn_container_of(t, struct wn_quic_client, health);
	wn_timer_close(&c->retry, client_retry_closed);
}

/* Connections free themselves (and their TLS sessions, which need the
 * endpoint's credentials) from their timers' close callbacks, whose
 * uv_close happens in their deferred work. This deferred function runs after
 * those, so the endpoint's own timer closes, and frees it, last. */
static void client_free(struct wn_deferred *node)
{
	struct wn_quic_client *c =
	    wn_container_of(node, struct wn_quic_client, free_node);
	wn_timer_close(&c->health, client_health_closed);
}

static void client_close(struct wn_engine *e)
{
	struct wn_quic_client *c = client_of(e);
	if (c->closing)
		return;
	c->closing = 1;
	while (!wn_list_empty(&c->pending)) {
		struct qstream *qs =
		    wn_list_entry(c->pending.next, struct qstream, link);
		wn__qstream_fail(qs, WN_STREAM_SESSION_LOST);
	}
	if (c->tunnel.flows)
		wn_fb_finish(c->tunnel.flows, WN_STREAM_SESSION_LOST);
	ep_kill_all(&c->ep, "client shutting down");
	wn_loop_defer(c->ep.o.loop, &c->free_node, client_free);
}

static const struct wn_engine_ops client_ops = {
    .handler = client_handler,
    .add_path = client_add_path,
    .go = client_go,
    .tunnel = client_tunnel,
    .is_up = client_is_up,
    .stats = client_stats,
    .describe = no_description,
    .close = client_close,
};

/* ---- server ---------------------------------------------------------- */

struct wn_quic_server {
	struct qep ep; /* first */
	size_t live;
	/* Admission: handshaking connections, in all and per prefix, and
	 * those of them whose address is not validated. */
	size_t halfopen, unvalidated;
	struct wn_prefixcount pfx_halfopen, pfx_unvalidated;
	/* Retry token secrets: the current one and the one before it. */
	uint8_t retry_secret[2][32];
	uint64_t retry_rotated_ms;
	struct wn_deferred free_node;
	struct wn_timer closer; /* orders the final free after connections' */
	int closing;
};

static struct wn_quic_server *SV(struct qep *ep)
{
	return (struct wn_quic_server *)ep;
}

static struct wn_quic_server *server_of(struct wn_engine *e)
{
	return SV(wn__quic_ep(e));
}

static const struct wn_quic_server *cserver_of(const struct wn_engine *e)
{
	return (const struct wn_quic_server *)wn__quic_cep(e);
}

/* The handshake ended (done or dead): the connection no longer counts
 * against the admission caps. */
static void admit_release(struct wn_quic_server *s, struct qconn *qc)
{
	if (qc->admit & QC_ADMIT_HALFOPEN) {
		s->halfopen--;
		wn_prefixcount_release(&s->pfx_halfopen, &qc->prefix);
	}
	if (qc->admit & QC_ADMIT_UNVALIDATED) {
		s->unvalidated--;
		wn_prefixcount_release(&s->pfx_unvalidated, &qc->prefix);
	}
	qc->admit = 0;
}

/* The key's connection, other than qc, whose client the server heard from
 * least recently, or NULL. */
static struct qconn *stalest_of_key(struct qep *ep, const struct qconn *qc)
{
	struct qconn *best = NULL;

	for (struct wn_list *n = ep->conns.next; n != &ep->conns; n = n->next) {
		struct qconn *c = wn_list_entry(n, struct qconn, link);
		if (c == qc || !c->key_counted ||
		    c->tunnel.key_slot != qc->tunnel.key_slot)
			continue;
		if (!best || c->last_rx_ms < best->last_rx_ms)
			best = c;
	}
	return best;
}

/* A key holds at most sessions-per-key sessions: past that, the new one
 * replaces the key's session the server heard from least recently. That
 * is the one a client left behind when it was killed or lost its address,
 * so a client that restarts is never locked out by its own dead sessions,
 * and one key still cannot hold more than its share of the server. Only a
 * completed handshake (the peer proved it holds the key) counts or
 * replaces anything. */
static void key_admit(struct qep *ep, struct qconn *qc)
{
	uint32_t cap = ep->o.sessions_per_key, slot = qc->tunnel.key_slot;

	if (qc->key_counted || slot == 0 || slot > ep->nclients)
		return;
	while (cap && ep->key_sessions[slot - 1] >= cap) {
		struct qconn *old = stalest_of_key(ep, qc);
		if (!old)
			break;
		WN_LOG_RL(ep->o.log, &ep->rl_err, wn__quic_now_ms(ep),
		          WN_LOG_INFO, "sess",
		          "client %s: %u sessions (sessions-per-key): the "
		          "one heard from least recently goes",
		          qc->tunnel.peer_id, cap);
		/* Its conn_dead gives its count back. */
		wn__qconn_close(old, "replaced by a newer session of its key "
		                     "(sessions-per-key)");
	}
	ep->key_sessions[slot - 1]++;
	qc->key_counted = 1;
}

static void server_conn_up(struct qep *ep, struct qconn *qc)
{
	struct wn_quic_server *s = SV(ep);
	admit_release(s, qc);
	key_admit(ep, qc);
	s->live++;
	/* The session's datagram flows, once the client is known (a
	 * stranger's handshake costs none). Without them the session still
	 * carries streams; the client's datagrams are dropped, counted. */
	qc->tunnel.flows = wn_fb_new(&wn__quic_server_fb, qc, ep->o.loop,
	                             ep->o.log, &qc->tunnel, &ep->ah, 0);
	qc->flows = qc->tunnel.flows;
	wn_log_event(ep->o.log, WN_LOG_INFO, "sess", '+', qc->tunnel.peer_id,
	             (long)s->live, "client connected");
}

static void server_conn_dead(struct qep *ep, struct qconn *qc)
{
	struct wn_quic_server *s = SV(ep);
	admit_release(s, qc);
	if (qc->key_counted) {
		qc->key_counted = 0;
		ep->key_sessions[qc->tunnel.key_slot - 1]--;
	}
	if (qc->peer_ok && qc->tunnel.peer_id[0]) {
		s->live--;
		wn_log_event(ep->o.log, WN_LOG_INFO, "sess", '-',
		             qc->tunnel.peer_id, (long)s->live,
		             qc->why[0] ? qc->why : "closed");
	} else if (qc->why[0] && !s->closing) {
		char addr[64];
		wn_sockaddr_format((struct sockaddr *)&qc->remote, addr,
		                   sizeof(addr));
		WN_LOG_RL(ep->o.log, &ep->rl_err, wn__quic_now_ms(ep),
		          WN_LOG_WARN, "sess", "refused %s: %s", addr, qc->why);
	}
}

/* Replaces the Retry token secret every RETRY_SECRET_MS, keeping the
 * previous one for tokens issued just before. */
static void retry_rotate(struct wn_quic_server *s, uint64_t now_ms)
{
	if (now_ms - s->retry_rotated_ms < RETRY_SECRET_MS)
		return;
	memcpy(s->retry_secret[1], s->retry_secret[0], 32);
	randombytes_buf(s->retry_secret[0], 32);
	s->retry_rotated_ms = now_ms;
}

/* Answers a proven Initial with a Retry: a fresh server connection ID
 * and a token that binds the client's address and its first DCID. */
static void send_retry(struct wn_quic_server *s, struct wn_carrier *carrier,
                       const struct sockaddr *from, socklen_t fromlen,
                       const ngtcp2_pkt_hd *hd, ngtcp2_tstamp now)
{
	struct qep *ep = &s->ep;
	ngtcp2_cid scid;
	scid.datalen = QUIC_SCID_LEN;
	randombytes_buf(scid.data, scid.datalen);
	uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
	ngtcp2_ssize tl = ngtcp2_crypto_generate_retry_token(
	    token, s->retry_secret[0], sizeof(s->retry_secret[0]), hd->version,
	    (const ngtcp2_sockaddr *)from, fromlen, &scid, &hd->dcid, now);
	if (tl < 0)
		return;
	ngtcp2_ssize n = ngtcp2_crypto_write_retry(
	    ep->txbuf, ep->txcap, hd->version, &hd->scid, &scid, &hd->dcid,
	    token, (size_t)tl);
	if (n <= 0)
		return;
	if (wn_carrier_send(carrier, from, fromlen, ep->txbuf, (size_t)n,
	                    (size_t)n) == 0)
		ep->stats.retries_sent++;
}

/* Checks a Retry token with the current secret, then the previous one;
 * fills odcid (the client's first DCID) on success. */
static int retry_verify(struct wn_quic_server *s, const ngtcp2_pkt_hd *hd,
                        const struct sockaddr *from, socklen_t fromlen,
                        ngtcp2_tstamp now, ngtcp2_cid *odcid)
{
	for (int i = 0; i < 2; i++)
		if (ngtcp2_crypto_verify_retry_token(
		        odcid, hd->token.base, hd->token.len,
		        s->retry_secret[i], sizeof(s->retry_secret[i]),
		        hd->version, (const ngtcp2_sockaddr *)from, fromlen,
		        &hd->dcid,
		        (ngtcp2_duration)RETRY_TOKEN_TIMEOUT_MS *
		            NGTCP2_MILLISECONDS,
		        now) == 0)
			return 0;
	return WN_ECRYPTO;
}

/* A packet for no connection: starts one if it is a client Initial that
 * passes admission. In order, cheapest first: the Initial must carry
 * either the client's proof of the server key (a MAC, checked in constant
 * time) or a Retry token this server issued to that address; anything
 * else is dropped without a word, before any TLS or connection state.
 * Then the caps: past the unvalidated ones a proof earns a Retry, past
 * the others the Initial is dropped. Returns the new connection, or NULL
 * for a packet that was dropped (or answered with a Retry). */
static struct qconn *server_admit(struct wn_quic_server *s,
                                  struct wn_carrier *carrier,
                                  const struct sockaddr *from,
                                  socklen_t fromlen, const uint8_t *pkt,
                                  size_t len)
{
	struct qep *ep = &s->ep;
	ngtcp2_pkt_hd hd;
	/* ngtcp2_accept only parses the long header (no keys, no state). */
	if (!(pkt[0] & 0x80) || ngtcp2_accept(&hd, pkt, len) != 0 ||
	    hd.type != NGTCP2_PKT_INITIAL || hd.token.len == 0)
		return NULL;
	ngtcp2_tstamp now = wn__quic_now(ep);
	uint64_t now_ms = wn__quic_now_ms(ep);
	ngtcp2_cid odcid;
	int validated;
	if (hd.token.len == WN_QPROOF_LEN) {
		if (wn_qproof_check(ep->proof_key, hd.token.base, hd.token.len,
		                    hd.version, hd.dcid.data, hd.dcid.datalen,
		                    wn_wall_ms() / 1000) != 0)
			return NULL;
		validated = 0;
	} else {
		retry_rotate(s, now_ms);
		if (hd.token.base[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY ||
		    retry_verify(s, &hd, from, fromlen, now, &odcid) != 0)
			return NULL;
		validated = 1;
	}
	struct wn_prefix pfx;
	wn_prefix_of(from, fromlen, WN_PREFIX_V4_NET, WN_PREFIX_V6_NET, &pfx);
	if (ep->stats.conns_opened - ep->stats.conns_closed >=
	        SERVER_MAX_CONNS ||
	    s->halfopen >= SERVER_MAX_HALFOPEN ||
	    wn_prefixcount_count(&s->pfx_halfopen, &pfx) >=
	        SERVER_PREFIX_HALFOPEN) {
		WN_LOG_RL(ep->o.log, &ep->rl_drop, now_ms, WN_LOG_WARN, "sess",
		          "connection limit reached");
		return NULL;
	}
	if (!validated && (s->unvalidated >= SERVER_MAX_UNVALIDATED ||
	                   wn_prefixcount_count(&s->pfx_unvalidated, &pfx) >=
	                       SERVER_PREFIX_UNVALIDATED)) {
		retry_rotate(s, now_ms);
		send_retry(s, carrier, from, fromlen, &hd, now);
		return NULL;
	}
	if (wn_prefixcount_take(&s->pfx_halfopen, &pfx) != 0)
		return NULL;
	if (!validated && wn_prefixcount_take(&s->pfx_unvalidated, &pfx) != 0) {
		wn_prefixcount_release(&s->pfx_halfopen, &pfx);
		return NULL;
	}
	struct qconn *qc = wn__qconn_new_server(ep, carrier, from, fromlen, &hd,
	                                        validated ? &odcid : NULL);
	if (!qc) {
		wn_prefixcount_release(&s->pfx_halfopen, &pfx);
		if (!validated)
			wn_prefixcount_release(&s->pfx_unvalidated, &pfx);
		return NULL;
	}
	qc->prefix = pfx;
	qc->admit = QC_ADMIT_HALFOPEN | (validated ? 0 : QC_ADMIT_UNVALIDATED);
	s->halfopen++;
	s->unvalidated += !validated;
	return qc;
}

static void server_recv(void *ctx, struct wn_carrier *carrier,
                        const struct sockaddr *from, socklen_t fromlen,
                        uint8_t *pkt, size_t len)
{
	struct wn_quic_server *s = ctx;
	struct qep *ep = &s->ep;
	if (s->closing)
		return;
	ngtcp2_version_cid vc;
	int rv = ngtcp2_pkt_decode_version_cid(&vc, pkt, len, QUIC_SCID_LEN);
	if (rv != 0) {
		/* Not QUIC, or a version we do not speak: no answer at all
		 * (no version negotiation), so a probe learns nothing. */
		ep->stats.pkts_dropped++;
		return;
	}
	struct qconn *qc = wn_cidmap_get(&ep->cids, vc.dcid, vc.dcidlen);
	if (!qc) {
		qc = server_admit(s, carrier, from, fromlen, pkt, len);
		if (!qc) {
			ep->stats.pkts_dropped++;
			return;
		}
	}
	wn__qconn_read(qc, carrier, from, fromlen, pkt, len);
}

static void server_writable(void *ctx, struct wn_carrier *carrier)
{
	struct wn_quic_server *s = ctx;
	for (struct wn_list *l = s->ep.conns.next; l != &s->ep.conns;
	     l = l->next) {
		struct qconn *qc = wn_list_entry(l, struct qconn, link);
		if (qc->carrier == carrier && qc->carrier_blocked) {
			qc->carrier_blocked = 0;
			wn__qconn_schedule(qc);
		}
	}
}

static struct wn_carrier_handler server_handler(struct wn_engine *e)
{
	struct wn_quic_server *s = server_of(e);
	struct wn_carrier_handler h = {
	    .ctx = s,
	    .recv = server_recv,
	    .writable = server_writable,
	    .state = noop_carrier_state,
	};
	return h;
}

static const struct wn_engine_ops server_ops;

int wn__quic_server_new(const struct wn_quic_opts *o,
                        const struct wn_engine_conf *conf,
                        struct wn_engine **out)
{
	const uint8_t(*clients)[WN_KEY_LEN] = conf->clients;
	size_t n = conf->n_clients;
	const struct wn_accept_handler *ah = conf->accept;
	if (!ah || !ah->on_stream)
		return WN_EINVAL;
	struct wn_quic_server *s = calloc(1, sizeof(*s));
	if (!s)
		return WN_ENOMEM;
	int rc = ep_init(&s->ep, o, 1);
	if (rc != 0) {
		free(s);
		return rc;
	}
	s->ep.clients = malloc(n ? n * WN_KEY_LEN : 1);
	s->ep.key_sessions = calloc(2 * n + 1, sizeof(uint32_t));
	if (!s->ep.clients || !s->ep.key_sessions) {
		ep_free(&s->ep);
		free(s);
		return WN_ENOMEM;
	}
	memcpy(s->ep.clients, clients, n * WN_KEY_LEN);
	s->ep.key_streams = s->ep.key_sessions + n;
	s->ep.nclients = n;
	s->ep.ah = *ah;
	s->ep.base.ops = &server_ops;
	s->ep.conn_up = server_conn_up;
	s->ep.conn_dead = server_conn_dead;
	wn_qproof_key(s->ep.proof_key, o->id->ed_pk);
	randombytes_buf(s->retry_secret, sizeof(s->retry_secret));
	s->retry_rotated_ms = wn__quic_now_ms(&s->ep);
	uint8_t hkey[16];
	randombytes_buf(hkey, sizeof(hkey));
	rc = wn_prefixcount_init(&s->pfx_halfopen, SERVER_PREFIX_SLOTS,
	                         SERVER_PREFIX_HALFOPEN, hkey);
	if (rc == 0) {
		rc = wn_prefixcount_init(&s->pfx_unvalidated,
		                         SERVER_PREFIX_SLOTS,
		                         SERVER_PREFIX_UNVALIDATED, hkey);
		if (rc != 0)
			wn_prefixcount_free(&s->pfx_halfopen);
	}
	if (rc == 0) {
		rc = wn_timer_init(o->loop, &s->closer, NULL);
		if (rc != 0) {
			wn_prefixcount_free(&s->pfx_halfopen);
			wn_prefixcount_free(&s->pfx_unvalidated);
		}
	}
	if (rc != 0) {
		ep_free(&s->ep);
		free(s);
		return rc;
	}
	*out = &s->ep.base;
	return 0;
}

static int server_new(const struct wn_engine_type *t,
                      const struct wn_engine_conf *conf, struct wn_engine **out)
{
	(void)t;
	struct wn_quic_opts o;
	opts_from(conf, 1, &o);
	return wn__quic_server_new(&o, conf, out);
}

static int server_is_up(const struct wn_engine *e)
{
	return cserver_of(e)->live > 0;
}

static void server_stats(const struct wn_engine *e, struct wn_engine_stats *out)
{
	const struct wn_quic_server *s = cserver_of(e);
	stats_out(&s->ep.stats, s->live, out);
}

static void server_closed(struct wn_timer *t)
{
	struct wn_quic_server *s =
	    wn_container_of(t, struct wn_quic_server, closer);
	wn_prefixcount_free(&s->pfx_halfopen);
	wn_prefixcount_free(&s->pfx_unvalidated);
	ep_free(&s->ep);
	free(s);
}

/* As for the client: the connections' timers close (and free their TLS
 * sessions) before this timer's close callback frees the credentials. */
static void server_free(struct wn_deferred *node)
{
	struct wn_quic_server *s =
	    wn_container_of(node, struct wn_quic_server, free_node);
	wn_timer_close(&s->closer, server_closed);
}

static void server_close(struct wn_engine *e)
{
	struct wn_quic_server *s = server_of(e);
	if (s->closing)
		return;
	s->closing = 1;
	ep_kill_all(&s->ep, "server shutting down");
	wn_loop_defer(s->ep.o.loop, &s->free_node, server_free);
}

static const struct wn_engine_ops server_ops = {
    .handler = server_handler,
    .is_up = server_is_up,
    .stats = server_stats,
    .describe = no_description,
    .close = server_close,
};

/* ---- the engine's row ------------------------------------------------ */

const struct wn_engine_type wn_quic_engine = {
    .name = "quic",
    .caps = WN_ENGINE_CAP_DATAGRAM | WN_ENGINE_CAP_KEYS | WN_ENGINE_CAP_TARGETS,
    .client_new = client_new,
    .server_new = server_new,
};
