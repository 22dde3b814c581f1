/* The tcp carrier, server side (stream.h): a listener whose connections
 * bind to sessions by their preamble, with virtual peer addresses. A
 * session keeps every connection bound to it (a client may run several in
 * parallel) and answers over them, under one address while any lives. */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carrier/tcp_server_int.h"
#include "carrier/tls.h"
#include "crypto/preamble.h"
#include "util/cidmap.h"
#include "util/err.h"

#define REAP_MS 500
#define MAX_SESSIONS 4096

static struct tsrv *to_srv(struct wn_carrier *c)
{
	return (struct tsrv *)c;
}

/* Drops one reference (a libuv handle); the last frees the carrier. */
static void release(struct tsrv *t)
{
	if (--t->handles > 0)
		return;
	if (t->cred)
		gnutls_certificate_free_credentials(t->cred);
	free(t->fallback);
	free(t);
}

static void sess_free(struct tsrv *t, struct tsess *ss)
{
	wn_cidmap_del(&t->by_tag, ss->tag, sizeof(ss->tag));
	wn_cidmap_del(&t->by_sid, ss->sid, sizeof(ss->sid));
	wn_list_del(&ss->link);
	t->nsessions--;
	sodium_memzero(ss, sizeof(*ss));
	free(ss);
}

static void conn_freed(struct sconn *s)
{
	struct tconn *tc = (struct tconn *)s;
	struct tsrv *t = tc->srv;

	free(tc->decbuf);
	free(tc);
	release(t);
}

/* A writer that was refused may have been waiting on a connection that
 * is gone or replaced: let it try again (its packets now go to the new
 * connection, or are dropped as lost). */
static void owe_writable(struct tsrv *t)
{
	if (t->want_writable && !t->closed) {
		t->want_writable = false;
		if (t->base.h.writable)
			t->base.h.writable(t->base.h.ctx, &t->base);
	}
}

/* Closes a connection; reports its address down if it was bound. */
void tsrv_conn_end(struct tconn *tc, int err, const char *why)
{
	struct tsrv *t = tc->srv;
	struct tsess *ss = tc->sess;

	if (tc->s.closed)
		return;
	sconn_close(&tc->s);
	wn_list_del(&tc->link);
	t->nconns--;
	if (tc->bound) {
		tc->bound = false;
		t->nbound--;
		WN_LOG(t->log, WN_LOG_DEBUG, LOG_COMP,
		       "%s: conn %llu from %s: closed: %s (in %llu, out %llu "
		       "bytes)",
		       t->base.name, (unsigned long long)tc->num, tc->peer, why,
		       (unsigned long long)tc->s.bytes_in,
		       (unsigned long long)tc->s.bytes_out);
	}
	if (ss) {
		for (size_t i = 0; i < ss->nconns; i++)
			if (ss->conns[i] == tc) {
				ss->conns[i] = ss->conns[--ss->nconns];
				break;
			}
		if (ss->pref == tc)
			ss->pref = NULL;
		ss->last_ms = now_ms(t);
		if (ss->nconns == 0 && !t->closed && t->base.h.state)
			t->base.h.state(t->base.h.ctx, &t->base,
			                (struct sockaddr *)&ss->vaddr, 0, err);
		owe_writable(t);
	}
	tc->sess = NULL;
}

/* The table is full: forgets the session idle longest, if one has no
 * connection. Anyone who knows the server's public key can make sessions
 * (the engine inside rejects them), so a full table must not lock out new
 * clients while such sessions age. Returns true if one was forgotten. */
static bool evict_one(struct tsrv *t)
{
	struct tsess *oldest = NULL;

	for (struct wn_list *l = t->sessions.next; l != &t->sessions;
	     l = l->next) {
		struct tsess *ss = wn_list_entry(l, struct tsess, link);
		if (!ss->nconns && (!oldest || ss->last_ms < oldest->last_ms))
			oldest = ss;
	}
	if (!oldest)
		return false;
	sess_free(t, oldest);
	return true;
}

static struct tsess *sess_new(struct tsrv *t, const struct wn_preamble *p)
{
	struct tsess *ss;

	if (t->nsessions >= MAX_SESSIONS && !evict_one(t))
		return NULL;
	ss = calloc(1, sizeof(*ss));
	if (!ss)
		return NULL;
	memcpy(ss->sid, p->sid, sizeof(ss->sid));
	memcpy(ss->secret, p->secret, sizeof(ss->secret));
	ss->counter = p->counter;
	do
		randombytes_buf(ss->tag, sizeof(ss->tag));
	while (wn_cidmap_get(&t->by_tag, ss->tag, sizeof(ss->tag)));
	if (wn_cidmap_add(&t->by_tag, ss->tag, sizeof(ss->tag), ss) != 0 ||
	    wn_cidmap_add(&t->by_sid, ss->sid, sizeof(ss->sid), ss) != 0) {
		wn_cidmap_del(&t->by_tag, ss->tag, sizeof(ss->tag));
		free(ss);
		return NULL;
	}
	wn_list_add_tail(&t->sessions, &ss->link);
	t->nsessions++;
	return ss;
}

/* The preamble opened: bind the connection to its session, or hold it. */
static void bind_conn(struct tconn *tc, const struct wn_preamble *p)
{
	struct tsrv *t = tc->srv;
	struct tsess *ss;
	struct tconn *old = NULL;
	bool first;

	if (!wn_preamble_check_window(p->timestamp_ms, wall_ms())) {
		tsrv_stranger(tc, "preamble outside the clock window");
		return;
	}
	ss = wn_cidmap_get(&t->by_sid, p->sid, sizeof(p->sid));
	if (ss) {
		if (sodium_memcmp(ss->secret, p->secret, sizeof(ss->secret)) !=
		        0 ||
		    p->counter <= ss->counter) {
			t->replays++;
			tsrv_stranger(tc, "replayed or forged preamble");
			return;
		}
		ss->counter = p->counter;
	} else {
		ss = sess_new(t, p);
		if (!ss) {
			tsrv_stranger(tc, "session limit reached");
			return;
		}
	}
	/* The connection joins its session's group; a full group loses
	 * the member heard from longest ago. */
	if (ss->nconns == WN_SGROUP_SERVER_MAX) {
		old = ss->conns[0];
		for (size_t i = 1; i < ss->nconns; i++)
			if (ss->conns[i]->s.last_rx_ms < old->s.last_rx_ms)
				old = ss->conns[i];
		tsrv_conn_end(old, WN_ECLOSED, "replaced (group full)");
	}
	first = ss->nconns == 0;
	if (first)
		stream_vaddr(&ss->vaddr, ss->tag, tc->num, t->port);
	tc->vaddr = ss->vaddr;
	tc->sess = ss;
	tc->state = TC_BOUND;
	tc->bound = true;
	t->nbound++;
	ss->conns[ss->nconns++] = tc;
	ss->last_ms = now_ms(t);
	WN_LOG(t->log, WN_LOG_DEBUG, LOG_COMP,
	       "%s: conn %llu from %s: bound (counter %llu, %zu in session)%s",
	       t->base.name, (unsigned long long)tc->num, tc->peer,
	       (unsigned long long)p->counter, ss->nconns,
	       old ? ", replacing the oldest" : "");
	if (first && t->base.h.state)
		t->base.h.state(t->base.h.ctx, &t->base,
		                (struct sockaddr *)&ss->vaddr, 1, 0);
	owe_writable(t);
}

/* Framed packets: deliver each one from the connection's address. */
static void deliver(struct tconn *tc, const uint8_t *p, size_t n)
{
	struct tsrv *t = tc->srv;
	size_t off = 0, used, plen;
	const uint8_t *pkt;
	int rc;

	while (off < n && !tc->s.closed && !t->closed) {
		rc = wn_frame_dec_feed(&tc->dec, p + off, n - off, &used, &pkt,
		                       &plen);
		off += used;
		if (rc < 0) {
			t->base.stats.drops_in++;
			WN_LOG_RL(t->log, &t->rl, now_ms(t), WN_LOG_INFO,
			          LOG_COMP, "%s: conn %llu: malformed record",
			          t->base.name, (unsigned long long)tc->num);
			tsrv_conn_end(tc, WN_EPROTO, "malformed record");
			return;
		}
		if (rc == 0)
			break;
		t->base.stats.pkts_in++;
		t->base.stats.bytes_in += plen;
		/* Replies follow the client to a connection it uses when
		 * the preferred one has gone quiet (dead, or dropped). */
		if (tc->sess && (!tc->sess->pref ||
		                 now_ms(t) - tc->sess->pref->s.last_rx_ms >
		                     t->o.stall_ms / STREAM_ACK_DIV))
			tc->sess->pref = tc;
		t->base.h.recv(t->base.h.ctx, &t->base,
		               (struct sockaddr *)&tc->vaddr, sizeof(tc->vaddr),
		               (uint8_t *)pkt, plen);
	}
}

static void on_data(struct sconn *s, const uint8_t *p, size_t n)
{
	struct tconn *tc = (struct tconn *)s;
	struct tsrv *t = tc->srv;
	struct wn_preamble pre;
	size_t k;
	int rc;

	t->base.stats.recv_calls++;
	if (tc->state == TC_PREAMBLE) {
		k = sizeof(tc->pre) - tc->prelen;
		if (k > n)
			k = n;
		memcpy(tc->pre + tc->prelen, p, k);
		tc->prelen += k;
		p += k;
		n -= k;
		/* Under TLS an HTTP request is told apart from a preamble
		 * (random bytes) by its first 8 bytes. */
		if (t->o.tls && tc->prelen >= 8 && tc->prelen - k < 8 &&
		    wn_http_looks_like_request(tc->pre, 8)) {
			tc->state = TC_HTTP;
			tsrv_http_feed(tc, tc->pre, tc->prelen);
			if (tc->state == TC_HTTP)
				tsrv_http_feed(tc, p, n);
			return;
		}
		if (tc->prelen < sizeof(tc->pre))
			return;
		rc = wn_preamble_open(tc->pre, tc->prelen, t->id->x_sk,
		                      t->id->x_pk, &pre);
		if (rc < 0) {
			tsrv_stranger(tc, "no valid preamble");
			return;
		}
		tc->skip = pre.pad_len;
		tc->state = TC_PADDING;
		bind_conn(tc, &pre);
		sodium_memzero(&pre, sizeof(pre));
		if (tc->state != TC_BOUND)
			return;
		tc->state = TC_PADDING;
	}
	if (tc->state == TC_PADDING) {
		k = tc->skip < n ? tc->skip : n;
		tc->skip -= k;
		p += k;
		n -= k;
		if (tc->skip > 0)
			return;
		tc->state = TC_BOUND;
	}
	if (tc->state == TC_BOUND) {
		deliver(tc, p, n);
		if (!t->closed && t->base.h.recv_done)
			t->base.h.recv_done(t->base.h.ctx, &t->base);
	}
	if (tc->state == TC_HTTP)
		tsrv_http_feed(tc, p, n);
	/* TC_STRANGER, TC_ANSWERED: input is read and dropped. */
}

static void on_end(struct sconn *s, int err)
{
	struct tconn *tc = (struct tconn *)s;

	tsrv_conn_end(tc, err, wn_strerror(err));
}

static void on_drain(struct sconn *s)
{
	owe_writable(((struct tconn *)s)->srv);
}

static void peer_name(struct tconn *tc)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";

	if (uv_tcp_getpeername(&tc->s.tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET,
			          &((struct sockaddr_in *)&ss)->sin_addr, host,
			          sizeof(host));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			          &((struct sockaddr_in6 *)&ss)->sin6_addr,
			          host, sizeof(host));
	}
	snprintf(tc->peer, sizeof(tc->peer), "%s", host);
}

static void on_accept(uv_stream_t *l, int status)
{
	struct tsrv *t = l->data;
	struct tconn *tc;

	if (status < 0 || t->closed)
		return;
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return;
	tc->decbuf = malloc(t->o.max_packet);
	if (!tc->decbuf || sconn_init(&tc->s, t->loop, t->o.queue_limit,
	                              t->rbuf, sizeof(t->rbuf)) != 0) {
		free(tc->decbuf);
		free(tc);
		return;
	}
	tc->srv = t;
	tc->s.owner = tc;
	tc->s.on_data = on_data;
	tc->s.on_end = on_end;
	tc->s.on_drain = on_drain;
	tc->s.on_free = conn_freed;
	tc->num = ++t->conn_seq;
	tc->state = TC_PREAMBLE;
	tc->deadline_ms = now_ms(t) + t->o.preamble_timeout_ms;
	wn_frame_dec_init(&tc->dec, tc->decbuf, t->o.max_packet);
	wn_list_add_tail(&t->conns, &tc->link);
	t->nconns++;
	t->handles++;
	if (uv_accept(l, (uv_stream_t *)&tc->s.tcp) != 0) {
		tsrv_conn_end(tc, WN_EIO, "accept failed");
		return;
	}
	peer_name(tc);
	if (t->o.tls) {
		gnutls_session_t sess;
		if (wn_tls_session(&sess, 1, t->cred, NULL) != 0 ||
		    sconn_tls(&tc->s, sess, t->pbuf, sizeof(t->pbuf)) != 0) {
			tsrv_conn_end(tc, WN_ECRYPTO, "no TLS session");
			return;
		}
		tc->s.on_not_tls = tsrv_on_not_tls;
	}
	if (t->nconns > t->o.max_conns) {
		WN_LOG_RL(t->log, &t->rl, now_ms(t), WN_LOG_WARN, LOG_COMP,
		          "%s: connection limit (%u) reached", t->base.name,
		          t->o.max_conns);
		tsrv_conn_end(tc, WN_EDENIED, "connection limit");
		return;
	}
	if (sconn_start(&tc->s) != 0)
		tsrv_conn_end(tc, WN_EIO, "cannot read");
}

static void on_reap(struct wn_timer *tm)
{
	struct tsrv *t =
	    (struct tsrv *)((char *)tm - offsetof(struct tsrv, reaper));
	uint64_t now = now_ms(t);
	struct wn_list *l, *next;

	for (l = t->conns.next; l != &t->conns; l = next) {
		struct tconn *tc = wn_list_entry(l, struct tconn, link);
		next = l->next;
		if (tc->state != TC_BOUND && tc->state != TC_PADDING &&
		    now >= tc->deadline_ms)
			tsrv_conn_end(tc, WN_ETIMEDOUT,
			              tc->state == TC_PREAMBLE ? "no preamble"
			                                       : "stranger");
		else if (tc->state == TC_BOUND && t->o.idle_close_ms &&
		         now - tc->s.last_rx_ms > t->o.idle_close_ms)
			tsrv_conn_end(tc, WN_ETIMEDOUT, "idle");
		else if (tc->state == TC_BOUND && tc->sess &&
		         wn_sgroup_silent(now, tc->s.last_rx_ms, t->o.stall_ms,
		                          tc->sess->nconns))
			tsrv_conn_end(tc, WN_ETIMEDOUT,
			              "silent (a sibling lives)");
		else if (tc->state == TC_BOUND &&
		         wn_sgroup_ack_due(now, tc->s.last_rx_ms,
		                           tc->s.last_tx_ms,
		                           t->o.stall_ms / STREAM_ACK_DIV))
			(void)sconn_ping(&tc->s);
	}
	/* A session without a connection is remembered as long as its
	 * preambles could be replayed (the clock window), so a replay never
	 * makes a fresh session out of a dead one. */
	for (l = t->sessions.next; l != &t->sessions; l = next) {
		struct tsess *ss = wn_list_entry(l, struct tsess, link);
		next = l->next;
		if (!ss->nconns &&
		    now - ss->last_ms > 2 * WN_PREAMBLE_WINDOW_MS)
			sess_free(t, ss);
	}
}

/* ---- operations ------------------------------------------------------ */

/* The connection a batch to `to` goes on: its session's by tag (any of
 * the session's addresses, old ones too), then the preferred one unless
 * it is loaded (wn_sgroup_pick); the choice becomes the preferred. */
static struct tconn *route(struct tsrv *t, const struct sockaddr *to,
                           socklen_t tolen)
{
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)to;
	size_t queued[WN_SGROUP_SERVER_MAX], cur, i;
	struct tsess *ss;

	if (!to || to->sa_family != AF_INET6 || tolen < sizeof(*a) ||
	    a->sin6_addr.s6_addr[0] != 0xfd)
		return NULL;
	ss =
	    wn_cidmap_get(&t->by_tag, &a->sin6_addr.s6_addr[1], STREAM_TAG_LEN);
	if (!ss || ss->nconns == 0)
		return NULL;
	cur = ss->nconns;
	for (i = 0; i < ss->nconns; i++) {
		queued[i] = sconn_queued(&ss->conns[i]->s);
		if (ss->conns[i] == ss->pref)
			cur = i;
	}
	i = wn_sgroup_pick(queued, ss->nconns, cur,
	                   t->o.queue_limit / WN_SGROUP_LOW_DIV);
	if (i == ss->nconns)
		return NULL;
	ss->pref = ss->conns[i];
	return ss->pref;
}

static int srv_send(struct wn_carrier *c, const struct sockaddr *to,
                    socklen_t tolen, const uint8_t *buf, size_t len, size_t seg)
{
	struct tsrv *t = to_srv(c);
	struct tconn *tc;

	if (t->closed)
		return WN_ECLOSED;
	if (len == 0 || !buf)
		return WN_EINVAL;
	if (seg == 0 || seg > len)
		seg = len;
	if (seg > t->o.max_packet)
		return WN_ERANGE;
	tc = route(t, to, tolen);
	if (!tc) {
		t->base.stats.drops_out += (len + seg - 1) / seg;
		return WN_EUNREACH;
	}
	if (sconn_send_batch(&tc->s, buf, len, seg, t->o.pad_max, t->pad,
	                     &t->base.stats) != 0) {
		t->want_writable = true;
		return WN_EAGAIN;
	}
	return 0;
}

static size_t srv_max_packet(const struct wn_carrier *c)
{
	return ((const struct tsrv *)c)->o.max_packet;
}

static int srv_local_addr(const struct wn_carrier *c,
                          struct sockaddr_storage *ss, socklen_t *len)
{
	const struct tsrv *t = (const struct tsrv *)c;

	memcpy(ss, &t->local, sizeof(t->local));
	*len = sizeof(t->local);
	return 0;
}

static void handle_closed(uv_handle_t *h)
{
	release(h->data);
}

static void reaper_closed(struct wn_timer *tm)
{
	release((struct tsrv *)((char *)tm - offsetof(struct tsrv, reaper)));
}

static void srv_close(struct wn_carrier *c)
{
	struct tsrv *t = to_srv(c);

	if (t->closed)
		return;
	WN_LOG(t->log, WN_LOG_INFO, LOG_COMP,
	       "%s: closed (%zu sessions, %llu strangers, %llu replays)",
	       t->base.name, t->nsessions, (unsigned long long)t->strangers,
	       (unsigned long long)t->replays);
	t->closed = true;
	memset(&t->base.h, 0, sizeof(t->base.h));
	/* The handle count keeps the carrier's memory until every
	 * connection, the listener and the timer have closed (their close
	 * callbacks come later in this iteration); sessions go now. */
	while (t->conns.next != &t->conns)
		tsrv_conn_end(wn_list_entry(t->conns.next, struct tconn, link),
		              WN_ECLOSED, "carrier closed");
	while (t->sessions.next != &t->sessions)
		sess_free(t,
		          wn_list_entry(t->sessions.next, struct tsess, link));
	wn_cidmap_free(&t->by_tag);
	wn_cidmap_free(&t->by_sid);
	uv_close((uv_handle_t *)&t->listener, handle_closed);
	if (t->reaper_live)
		wn_timer_close(&t->reaper, reaper_closed);
}

static const struct wn_carrier_ops srv_ops = {
    .name = "tcp",
    .send = srv_send,
    .max_packet = srv_max_packet,
    .local_addr = srv_local_addr,
    .close = srv_close,
};

static const struct wn_carrier_ops srv_tls_ops = {
    .name = "tls",
    .send = srv_send,
    .max_packet = srv_max_packet,
    .local_addr = srv_local_addr,
    .close = srv_close,
};

size_t wn_stream_server_conns(const struct wn_carrier *c)
{
	return ((const struct tsrv *)c)->nbound;
}

size_t wn_stream_server_sessions(const struct wn_carrier *c)
{
	return ((const struct tsrv *)c)->nsessions;
}

int wn_stream_server_open(struct wn_loop *loop, struct wn_log *log,
                          const struct sockaddr *bind_addr, socklen_t len,
                          const struct wn_identity *id,
                          const struct wn_stream_opts *opts,
                          const struct wn_carrier_handler *h,
                          struct wn_carrier **out)
{
	static const uint8_t local_tag[STREAM_TAG_LEN] = {0};
	struct sockaddr_storage ss;
	struct tsrv *t;
	int rc, slen = sizeof(ss);

	if (!loop || !bind_addr || !id || !h || !h->recv || !out ||
	    (bind_addr->sa_family != AF_INET &&
	     bind_addr->sa_family != AF_INET6))
		return WN_EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return WN_ENOMEM;
	stream_opts_fill(&t->o, opts);
	t->base.caps = WN_CARRIER_RELIABLE;
	t->base.h = *h;
	snprintf(t->base.name, sizeof(t->base.name), "%s#%u",
	         t->o.tls ? "tls" : "tcp", t->o.id);
	t->base.ops = t->o.tls ? &srv_tls_ops : &srv_ops;
	t->loop = loop;
	t->log = log;
	t->id = id;
	if (t->o.tls) {
		rc = wn_tls_server_creds(log, t->o.tls_cert, t->o.tls_key,
		                         t->o.sni, &t->cred);
		if (rc == 0 && t->o.fallback == WN_FALLBACK_FILE)
			rc = wn_tls_load_answer(log, t->o.fallback_file,
			                        &t->fallback, &t->fallback_len);
		if (rc != 0) {
			if (t->cred)
				gnutls_certificate_free_credentials(t->cred);
			free(t);
			return rc;
		}
	}
	t->rl = (struct wn_ratelimit)WN_RATELIMIT_INIT(1000, 5);
	wn_list_init(&t->conns);
	wn_list_init(&t->sessions);
	rc = WN_ENOMEM;
	if (wn_cidmap_init(&t->by_tag) != 0)
		goto fail_free;
	if (wn_cidmap_init(&t->by_sid) != 0)
		goto fail_tag;
	rc = uv_tcp_init(wn_loop_uv(loop), &t->listener);
	if (rc < 0) {
		rc = wn_err_from_uv(rc);
		goto fail_sid;
	}
	t->listener.data = t;
	t->handles = 1;
	rc = wn_timer_init(loop, &t->reaper, on_reap);
	if (rc == 0) {
		t->handles++;
		t->reaper_live = true;
	}
	if (rc == 0)
		rc = wn_err_from_uv(uv_tcp_bind(
		    &t->listener, bind_addr,
		    bind_addr->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0));
	if (rc == 0)
		rc = wn_err_from_uv(
		    uv_listen((uv_stream_t *)&t->listener, 128, on_accept));
	if (rc == 0)
		rc = wn_err_from_uv(uv_tcp_getsockname(
		    &t->listener, (struct sockaddr *)&ss, &slen));
	if (rc == 0)
		rc = wn_timer_start(&t->reaper, REAP_MS, REAP_MS);
	if (rc != 0) {
		WN_LOG(log, WN_LOG_ERROR, LOG_COMP, "%s: listen: %s",
		       t->base.name, wn_strerror(rc));
		srv_close(&t->base);
		return rc;
	}
	t->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	stream_vaddr(&t->local, local_tag, 1, t->port);
	WN_LOG(log, WN_LOG_INFO, LOG_COMP, "%s: listening on port %u",
	       t->base.name, t->port);
	*out = &t->base;
	return 0;

fail_sid:
	wn_cidmap_free(&t->by_sid);
fail_tag:
	wn_cidmap_free(&t->by_tag);
fail_free:
	if (t->cred)
		gnutls_certificate_free_credentials(t->cred);
	free(t->fallback);
	free(t);
	return rc;
}
