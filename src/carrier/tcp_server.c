/* The tcp and tls carriers, server side (tcp.h): a listener whose connections
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
#include "io/sock.h"
#include "util/cidmap.h"
#include "util/err.h"

#define REAP_MS 500

static struct wn_tsrv *to_srv(struct wn_carrier *c)
{
	return (struct wn_tsrv *)c;
}

static void destroy(struct wn_tcp_base *b)
{
	free(((struct wn_tsrv *)b)->fallback);
}

/* The connection has proved itself (or is gone): its source's count drops. */
static void src_release(struct wn_tsrv_conn *tc)
{
	if (tc->src_counted) {
		tc->src_counted = false;
		wn_prefixcount_release(&tc->srv->srcs, &tc->src);
	}
}

static void sess_free(struct wn_tsrv *t, struct wn_tsrv_sess *ss)
{
	wn_cidmap_del(&t->by_tag, ss->tag, sizeof(ss->tag));
	wn_cidmap_del(&t->by_sid, ss->sid, sizeof(ss->sid));
	wn_list_del(&ss->link);
	t->nsessions--;
	sodium_memzero(ss, sizeof(*ss));
	free(ss);
}

/* Closes a connection; reports its address down if it was bound. */
void wn_tsrv_conn_end(struct wn_tsrv_conn *tc, int err, const char *why)
{
	struct wn_tsrv *t = tc->srv;
	struct wn_tsrv_sess *ss = tc->sess;

	if (tc->l.s.closed)
		return;
	wn_tcpconn_close(&tc->l.s);
	wn_list_del(&tc->link);
	t->nconns--;
	src_release(tc);
	if (tc->bound) {
		tc->bound = false;
		t->nbound--;
		WN_LOG(t->b.log, WN_LOG_DEBUG, LOG_COMP,
		       "%s: conn %llu from %s: closed: %s (in %llu, out %llu "
		       "bytes)",
		       t->b.base.name, (unsigned long long)tc->l.num, tc->peer,
		       why, (unsigned long long)tc->l.s.bytes_in,
		       (unsigned long long)tc->l.s.bytes_out);
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
		if (ss->nconns == 0 && !t->b.closed && t->b.base.h.state)
			t->b.base.h.state(t->b.base.h.ctx, &t->b.base,
			                  (struct sockaddr *)&ss->vaddr,
			                  WN_CARRIER_DOWN, err);
		wn_tcp_owe_writable(&t->b);
	}
	tc->sess = NULL;
}

/* The table is full: forgets the session idle longest among those that
 * have no connection and never carried an authenticated packet. Anyone who
 * knows the server's public key can make sessions (the engine inside
 * rejects them), so a full table must not lock out new clients while such
 * sessions age. A client's session is never forgotten early: it must stay
 * for as long as its preambles could be replayed (the reaper forgets it
 * after twice the clock window), or a recorded preamble replayed after the
 * eviction would make a fresh session with the client's id and secret,
 * which the client's next connection would then join. With only such
 * sessions in the table a new one is refused instead. Returns true if one
 * was forgotten. */
static bool evict_one(struct wn_tsrv *t)
{
	struct wn_tsrv_sess *oldest = NULL;

	for (struct wn_list *l = t->sessions.next; l != &t->sessions;
	     l = l->next) {
		struct wn_tsrv_sess *ss =
		    wn_list_entry(l, struct wn_tsrv_sess, link);
		if (!ss->nconns && !ss->authed &&
		    (!oldest || ss->last_ms < oldest->last_ms))
			oldest = ss;
	}
	if (!oldest)
		return false;
	sess_free(t, oldest);
	return true;
}

static struct wn_tsrv_sess *sess_new(struct wn_tsrv *t,
                                     const struct wn_preamble *p)
{
	struct wn_tsrv_sess *ss;

	if (t->nsessions >= t->b.o.max_sessions && !evict_one(t))
		return NULL;
	ss = calloc(1, sizeof(*ss));
	if (!ss)
		return NULL;
	memcpy(ss->sid, p->sid, sizeof(ss->sid));
	memcpy(ss->secret, p->secret, sizeof(ss->secret));
	ss->counter = p->counter;
	ss->born_ms = now_ms(t);
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
static void bind_conn(struct wn_tsrv_conn *tc, const struct wn_preamble *p)
{
	struct wn_tsrv *t = tc->srv;
	struct wn_tsrv_sess *ss;
	struct wn_tsrv_conn *old = NULL;
	bool first;

	if (!wn_preamble_check_window(p->timestamp_ms, wn_wall_ms())) {
		wn_tsrv_stranger(tc, "preamble outside the clock window");
		return;
	}
	ss = wn_cidmap_get(&t->by_sid, p->sid, sizeof(p->sid));
	if (ss) {
		if (sodium_memcmp(ss->secret, p->secret, sizeof(ss->secret)) !=
		        0 ||
		    p->counter <= ss->counter) {
			t->replays++;
			wn_tsrv_stranger(tc, "replayed or forged preamble");
			return;
		}
		ss->counter = p->counter;
	} else {
		ss = sess_new(t, p);
		if (!ss) {
			wn_tsrv_stranger(tc, "session limit reached");
			return;
		}
	}
	/* The connection joins its session's group; a full group loses
	 * the member heard from longest ago. */
	if (ss->nconns == WN_SGROUP_SERVER_MAX) {
		old = ss->conns[0];
		for (size_t i = 1; i < ss->nconns; i++)
			if (ss->conns[i]->l.s.last_rx_ms < old->l.s.last_rx_ms)
				old = ss->conns[i];
		wn_tsrv_conn_end(old, WN_ECLOSED, "replaced (group full)");
	}
	first = ss->nconns == 0;
	if (first)
		wn_vaddr_make(&ss->vaddr, ss->tag, tc->l.num, t->port);
	tc->vaddr = ss->vaddr;
	tc->sess = ss;
	tc->state = TC_BOUND;
	tc->bound = true;
	t->nbound++;
	ss->conns[ss->nconns++] = tc;
	ss->last_ms = now_ms(t);
	/* Knowing the secret of a session a client proved is proof enough. */
	if (ss->authed)
		src_release(tc);
	WN_LOG(t->b.log, WN_LOG_DEBUG, LOG_COMP,
	       "%s: conn %llu from %s: bound (counter %llu, %zu in session)%s",
	       t->b.base.name, (unsigned long long)tc->l.num, tc->peer,
	       (unsigned long long)p->counter, ss->nconns,
	       old ? ", replacing the oldest" : "");
	if (first && t->b.base.h.state)
		t->b.base.h.state(t->b.base.h.ctx, &t->b.base,
		                  (struct sockaddr *)&ss->vaddr, WN_CARRIER_UP,
		                  0);
	wn_tcp_owe_writable(&t->b);
}

/* Framed packets: deliver each one from the connection's address. */
static void deliver(struct wn_tsrv_conn *tc, const uint8_t *p, size_t n)
{
	struct wn_tsrv *t = tc->srv;

	/* Replies follow the client to a connection it uses when the
	 * preferred one has gone quiet (dead, or dropped). */
	if (n > 0 && tc->sess &&
	    (!tc->sess->pref || now_ms(t) - tc->sess->pref->l.s.last_rx_ms >
	                            t->b.o.stall_ms / WN_TCP_ACK_DIV))
		tc->sess->pref = tc;
	if (wn_tcp_deliver(&tc->l, p, n, (struct sockaddr *)&tc->vaddr,
	                   sizeof(tc->vaddr)) != 0) {
		WN_LOG_RL(t->b.log, &t->b.rl, now_ms(t), WN_LOG_INFO, LOG_COMP,
		          "%s: conn %llu: malformed record", t->b.base.name,
		          (unsigned long long)tc->l.num);
		wn_tsrv_conn_end(tc, WN_EPROTO, "malformed record");
	}
}

static void on_data(struct wn_tcpconn *s, const uint8_t *p, size_t n)
{
	struct wn_tsrv_conn *tc = (struct wn_tsrv_conn *)s;
	struct wn_tsrv *t = tc->srv;
	struct wn_preamble pre;
	size_t k;
	int rc;

	t->b.base.stats.recv_calls++;
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
		if (t->b.tls && tc->prelen >= 8 && tc->prelen - k < 8 &&
		    wn_http_looks_like_request(tc->pre, 8)) {
			tc->state = TC_HTTP;
			wn_tsrv_http_feed(tc, tc->pre, tc->prelen);
			if (tc->state == TC_HTTP)
				wn_tsrv_http_feed(tc, p, n);
			return;
		}
		if (tc->prelen < sizeof(tc->pre))
			return;
		rc = wn_preamble_open(tc->pre, tc->prelen, t->id->x_sk,
		                      t->id->x_pk, &pre);
		if (rc < 0) {
			wn_tsrv_stranger(tc, "no valid preamble");
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
	}
	if (tc->state == TC_HTTP)
		wn_tsrv_http_feed(tc, p, n);
	/* TC_STRANGER, TC_ANSWERED: input is read and dropped. */
}

static void on_end(struct wn_tcpconn *s, int err)
{
	struct wn_tsrv_conn *tc = (struct wn_tsrv_conn *)s;

	wn_tsrv_conn_end(tc, err, wn_strerror(err));
}

/* Names the peer for logs and finds its source prefix. */
static void peer_name(struct wn_tsrv_conn *tc)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";

	if (uv_tcp_getpeername(&tc->l.s.tcp, (struct sockaddr *)&ss, &len) ==
	    0) {
		wn_prefix_of((struct sockaddr *)&ss, (socklen_t)len,
		             WN_PREFIX_V4_NET, WN_PREFIX_V6_NET, &tc->src);
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
	struct wn_tsrv *t = l->data;
	struct wn_tsrv_conn *tc = NULL;
	uint32_t pt = t->b.o.preamble_timeout_ms;

	if (status < 0 || t->b.closed)
		return;
	if (t->fail_allocs > 0)
		t->fail_allocs--;
	else
		tc = wn_tcp_link_new(&t->b, sizeof(*tc), on_data, on_end);
	if (!tc) {
		/* libuv stops polling a listener whose connection is left
		 * pending: take it and close it. If even that finds no
		 * memory, the reaper tries again. */
		WN_LOG_RL(t->b.log, &t->b.rl, now_ms(t), WN_LOG_WARN, LOG_COMP,
		          "%s: out of memory: connection refused",
		          t->b.base.name);
		if (wn_sock_refuse(l) != 0)
			t->accept_stalled = true;
		return;
	}
	tc->srv = t;
	tc->state = TC_PREAMBLE;
	/* A real client sends its preamble in its first flight (under TLS
	 * right after the handshake); the random part keeps the deadline
	 * from being a fingerprint. */
	tc->deadline_ms = now_ms(t) + pt - randombytes_uniform(pt / 4 + 1);
	wn_list_add_tail(&t->conns, &tc->link);
	t->nconns++;
	if (uv_accept(l, (uv_stream_t *)&tc->l.s.tcp) != 0) {
		wn_tsrv_conn_end(tc, WN_EIO, "accept failed");
		return;
	}
	peer_name(tc);
	if (t->nconns > t->b.o.max_conns) {
		WN_LOG_RL(t->b.log, &t->b.rl, now_ms(t), WN_LOG_WARN, LOG_COMP,
		          "%s: connection limit (%u) reached", t->b.base.name,
		          t->b.o.max_conns);
		wn_tsrv_conn_end(tc, WN_EDENIED, "connection limit");
		return;
	}
	/* Until it proves itself a connection counts against its source,
	 * so one host or network cannot hold every slot. */
	if (wn_prefixcount_take(&t->srcs, &tc->src) != 0) {
		t->source_limited++;
		WN_LOG_RL(t->b.log, &t->b.rl, now_ms(t), WN_LOG_WARN, LOG_COMP,
		          "%s: conn from %s: too many unproved connections "
		          "from its network (%u)",
		          t->b.base.name, tc->peer, t->b.o.source_conns);
		wn_tsrv_conn_end(tc, WN_EDENIED, "source limit");
		return;
	}
	tc->src_counted = true;
	if (t->b.tls) {
		gnutls_session_t sess;
		if (wn_tls_session(&sess, 1, t->b.cred, NULL) != 0 ||
		    wn_tcpconn_tls(&tc->l.s, sess, t->b.pbuf,
		                   sizeof(t->b.pbuf)) != 0) {
			wn_tsrv_conn_end(tc, WN_ECRYPTO, "no TLS session");
			return;
		}
		tc->l.s.on_not_tls = wn_tsrv_on_not_tls;
	}
	if (wn_tcpconn_start(&tc->l.s) != 0)
		wn_tsrv_conn_end(tc, WN_EIO, "cannot read");
}

static void on_reap(struct wn_timer *tm)
{
	struct wn_tsrv *t =
	    (struct wn_tsrv *)((char *)tm - offsetof(struct wn_tsrv, reaper));
	uint64_t now = now_ms(t);
	struct wn_list *l, *next;

	if (t->accept_stalled && !t->b.closed) {
		t->accept_stalled = false;
		on_accept((uv_stream_t *)&t->listener, 0);
	}
	/* Every state has a deadline: the preamble's (its padding
	 * included), a stranger's hold, an answer's flush; and a bound
	 * connection's session must carry an authenticated packet soon. */
	for (l = t->conns.next; l != &t->conns; l = next) {
		struct wn_tsrv_conn *tc =
		    wn_list_entry(l, struct wn_tsrv_conn, link);
		next = l->next;
		if (tc->state != TC_BOUND && now >= tc->deadline_ms)
			wn_tsrv_conn_end(
			    tc, WN_ETIMEDOUT,
			    tc->state == TC_PREAMBLE  ? "no preamble"
			    : tc->state == TC_PADDING ? "no padding"
			                              : "stranger");
		else if (tc->sess && !tc->sess->authed &&
		         now - tc->sess->born_ms >= t->b.o.auth_timeout_ms) {
			t->unauthed++;
			WN_LOG_RL(
			    t->b.log, &t->b.rl, now, WN_LOG_INFO, LOG_COMP,
			    "%s: conn from %s: no authenticated packet "
			    "within %u ms",
			    t->b.base.name, tc->peer, t->b.o.auth_timeout_ms);
			wn_tsrv_conn_end(tc, WN_ETIMEDOUT, "not authenticated");
		} else if (tc->state == TC_BOUND && t->b.o.idle_close_ms &&
		           now - tc->l.s.last_rx_ms > t->b.o.idle_close_ms)
			wn_tsrv_conn_end(tc, WN_ETIMEDOUT, "idle");
		else if (tc->state == TC_BOUND && tc->sess &&
		         wn_sgroup_silent(now, tc->l.s.last_rx_ms,
		                          t->b.o.stall_ms, tc->sess->nconns))
			wn_tsrv_conn_end(tc, WN_ETIMEDOUT,
			                 "silent (a sibling lives)");
		else if (tc->state == TC_BOUND &&
		         wn_sgroup_ack_due(now, tc->l.s.last_rx_ms,
		                           tc->l.s.last_tx_ms,
		                           t->b.o.stall_ms / WN_TCP_ACK_DIV))
			(void)wn_tcpconn_ping(&tc->l.s);
	}
	/* A session without a connection is remembered as long as its
	 * preambles could be replayed (the clock window), so a replay never
	 * makes a fresh session out of a dead one. */
	for (l = t->sessions.next; l != &t->sessions; l = next) {
		struct wn_tsrv_sess *ss =
		    wn_list_entry(l, struct wn_tsrv_sess, link);
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
static struct wn_tsrv_conn *route(struct wn_tsrv *t, const struct sockaddr *to,
                                  socklen_t tolen)
{
	const uint8_t *tag = wn_vaddr_tag(to, tolen);
	size_t queued[WN_SGROUP_SERVER_MAX], cur, i;
	struct wn_tsrv_sess *ss;

	if (!tag)
		return NULL;
	ss = wn_cidmap_get(&t->by_tag, tag, WN_VADDR_TAG_LEN);
	if (!ss || ss->nconns == 0)
		return NULL;
	cur = ss->nconns;
	for (i = 0; i < ss->nconns; i++) {
		queued[i] = wn_tcpconn_queued(&ss->conns[i]->l.s);
		if (ss->conns[i] == ss->pref)
			cur = i;
	}
	i = wn_sgroup_pick(queued, ss->nconns, cur,
	                   t->b.o.queue_limit / WN_SGROUP_LOW_DIV);
	if (i == ss->nconns)
		return NULL;
	ss->pref = ss->conns[i];
	return ss->pref;
}

static int srv_send(struct wn_carrier *c, const struct sockaddr *to,
                    socklen_t tolen, const uint8_t *buf, size_t len, size_t seg)
{
	struct wn_tsrv *t = to_srv(c);
	struct wn_tsrv_conn *tc;
	int rc = wn_tcp_send_check(&t->b, buf, len, &seg);

	if (rc != 0)
		return rc;
	tc = route(t, to, tolen);
	return wn_tcp_send_on(&t->b, tc ? &tc->l : NULL, buf, len, seg);
}

static void srv_authenticated(struct wn_carrier *c, const struct sockaddr *peer,
                              socklen_t len)
{
	struct wn_tsrv *t = to_srv(c);
	const uint8_t *tag = wn_vaddr_tag(peer, len);
	struct wn_tsrv_sess *ss;

	if (!tag || t->b.closed)
		return;
	ss = wn_cidmap_get(&t->by_tag, tag, WN_VADDR_TAG_LEN);
	if (!ss || ss->authed)
		return;
	ss->authed = true;
	for (size_t i = 0; i < ss->nconns; i++)
		src_release(ss->conns[i]);
}

static int srv_local_addr(const struct wn_carrier *c,
                          struct sockaddr_storage *ss, socklen_t *len)
{
	const struct wn_tsrv *t = (const struct wn_tsrv *)c;

	memcpy(ss, &t->local, sizeof(t->local));
	*len = sizeof(t->local);
	return 0;
}

static void handle_closed(uv_handle_t *h)
{
	wn_tcp_release(h->data);
}

static void reaper_closed(struct wn_timer *tm)
{
	wn_tcp_release(
	    (struct wn_tcp_base *)((char *)tm -
	                           offsetof(struct wn_tsrv, reaper)));
}

static void srv_close(struct wn_carrier *c)
{
	struct wn_tsrv *t = to_srv(c);

	if (t->b.closed)
		return;
	WN_LOG(t->b.log, WN_LOG_INFO, LOG_COMP,
	       "%s: closed (%zu sessions, %llu strangers, %llu replays, %llu "
	       "never authenticated, %llu over their source's limit)",
	       t->b.base.name, t->nsessions, (unsigned long long)t->strangers,
	       (unsigned long long)t->replays, (unsigned long long)t->unauthed,
	       (unsigned long long)t->source_limited);
	t->b.closed = true;
	memset(&t->b.base.h, 0, sizeof(t->b.base.h));
	/* The handle count keeps the carrier's memory until every
	 * connection, the listener and the timer have closed (their close
	 * callbacks come later in this iteration); sessions go now. */
	while (t->conns.next != &t->conns)
		wn_tsrv_conn_end(
		    wn_list_entry(t->conns.next, struct wn_tsrv_conn, link),
		    WN_ECLOSED, "carrier closed");
	while (t->sessions.next != &t->sessions)
		sess_free(t, wn_list_entry(t->sessions.next,
		                           struct wn_tsrv_sess, link));
	wn_cidmap_free(&t->by_tag);
	wn_cidmap_free(&t->by_sid);
	wn_prefixcount_free(&t->srcs);
	uv_close((uv_handle_t *)&t->listener, handle_closed);
	if (t->reaper_live)
		wn_timer_close(&t->reaper, reaper_closed);
}

static const struct wn_carrier_ops srv_ops = {
    .send = srv_send,
    .max_packet = wn_tcp_max_packet,
    .local_addr = srv_local_addr,
    .close = srv_close,
    .authenticated = srv_authenticated,
};

size_t wn_tcp_server_conns(const struct wn_carrier *c)
{
	return ((const struct wn_tsrv *)c)->nbound;
}

size_t wn_tcp_server_sessions(const struct wn_carrier *c)
{
	return ((const struct wn_tsrv *)c)->nsessions;
}

void wn_tcp_server_fail_allocs(struct wn_carrier *c, unsigned n)
{
	to_srv(c)->fail_allocs = n;
}

static int server_open(struct wn_loop *loop, struct wn_log *log, bool tls,
                       unsigned id, const struct sockaddr *bind_addr,
                       socklen_t len, const struct wn_identity *ident,
                       const struct wn_tcp_opts *opts,
                       const struct wn_carrier_handler *h,
                       struct wn_carrier **out)
{
	static const uint8_t local_tag[WN_VADDR_TAG_LEN] = {0};
	struct sockaddr_storage ss;
	struct wn_tsrv *t;
	int rc, slen = sizeof(ss);

	(void)len;
	if (!loop || !bind_addr || !ident || !h || !h->recv || !out ||
	    (bind_addr->sa_family != AF_INET &&
	     bind_addr->sa_family != AF_INET6))
		return WN_EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return WN_ENOMEM;
	wn_tcp_base_init(&t->b, &srv_ops, tls, id, loop, log, opts, h);
	t->b.destroy = destroy;
	t->id = ident;
	if (t->b.tls) {
		rc = wn_tls_server_creds(log, t->b.o.tls_cert, t->b.o.tls_key,
		                         t->b.o.sni, &t->b.cred);
		if (rc == 0 && t->b.o.fallback == WN_FALLBACK_FILE)
			rc = wn_tls_load_answer(log, t->b.o.fallback_file,
			                        &t->fallback, &t->fallback_len);
		if (rc != 0) {
			if (t->b.cred)
				gnutls_certificate_free_credentials(t->b.cred);
			free(t);
			return rc;
		}
	}
	wn_list_init(&t->conns);
	wn_list_init(&t->sessions);
	rc = WN_ENOMEM;
	if (wn_cidmap_init(&t->by_tag) != 0)
		goto fail_free;
	if (wn_cidmap_init(&t->by_sid) != 0)
		goto fail_tag;
	/* Each counted connection holds at most one prefix, so with twice
	 * max_conns slots the table never fills and probes stay short. */
	uint8_t hkey[16];
	randombytes_buf(hkey, sizeof(hkey));
	if (wn_prefixcount_init(&t->srcs, 2 * (size_t)t->b.o.max_conns + 1,
	                        t->b.o.source_conns, hkey) != 0)
		goto fail_sid;
	rc = uv_tcp_init(wn_loop_uv(loop), &t->listener);
	if (rc < 0) {
		rc = wn_err_from_uv(rc);
		goto fail_sid;
	}
	t->listener.data = t;
	t->b.handles = 1;
	/* The reaper runs often enough for the shortest deadline. */
	t->reap_ms = REAP_MS;
	if (t->reap_ms > t->b.o.preamble_timeout_ms / 4)
		t->reap_ms = t->b.o.preamble_timeout_ms / 4;
	if (t->reap_ms > t->b.o.auth_timeout_ms / 4)
		t->reap_ms = t->b.o.auth_timeout_ms / 4;
	if (t->reap_ms < 10)
		t->reap_ms = 10;
	rc = wn_timer_init(loop, &t->reaper, on_reap);
	if (rc == 0) {
		t->b.handles++;
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
		rc = wn_timer_start(&t->reaper, t->reap_ms, t->reap_ms);
	if (rc != 0) {
		WN_LOG(log, WN_LOG_ERROR, LOG_COMP, "%s: listen: %s",
		       t->b.base.name, wn_strerror(rc));
		srv_close(&t->b.base);
		return rc;
	}
	t->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	wn_vaddr_make(&t->local, local_tag, 1, t->port);
	WN_LOG(log, WN_LOG_INFO, LOG_COMP, "%s: listening on port %u",
	       t->b.base.name, t->port);
	*out = &t->b.base;
	return 0;

fail_sid:
	wn_prefixcount_free(&t->srcs);
	wn_cidmap_free(&t->by_sid);
fail_tag:
	wn_cidmap_free(&t->by_tag);
fail_free:
	if (t->b.cred)
		gnutls_certificate_free_credentials(t->b.cred);
	free(t->fallback);
	free(t);
	return rc;
}

int wn_tcp_server_open(struct wn_loop *loop, struct wn_log *log, unsigned id,
                       const struct sockaddr *bind_addr, socklen_t len,
                       const struct wn_identity *ident,
                       const struct wn_tcp_opts *opts,
                       const struct wn_carrier_handler *h,
                       struct wn_carrier **out)
{
	return server_open(loop, log, false, id, bind_addr, len, ident, opts, h,
	                   out);
}

int wn_tls_server_open(struct wn_loop *loop, struct wn_log *log, unsigned id,
                       const struct sockaddr *bind_addr, socklen_t len,
                       const struct wn_identity *ident,
                       const struct wn_tcp_opts *opts,
                       const struct wn_carrier_handler *h,
                       struct wn_carrier **out)
{
	return server_open(loop, log, true, id, bind_addr, len, ident, opts, h,
	                   out);
}
