/* The tcp and tls carriers, client side (tcp.h): a group of conns connections to
 * the server, each bound to the session by a fresh preamble, redialled
 * when it dies, rotated one at a time. The engine sees one virtual local
 * address while any connection of the group is up. */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carrier/tcp_int.h"
#include "carrier/tls.h"
#include "crypto/preamble.h"
#include "util/err.h"

#define LOG_COMP "carrier"
#define TICK_MS 100
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 10000
#define PAD_MAX 256 /* preamble padding: 0..PAD_MAX-1 random bytes */

struct wn_tcli;

struct wn_tcli_conn {
	struct wn_tcp_link l; /* first */
	struct wn_tcli *cl;
	uv_connect_t creq;
	bool up;
	bool retiring;     /* being rotated out: replaced when another is up */
	bool draining;     /* replaced: no more sends, closes once flushed */
	uint64_t drain_ms; /* when it started draining */
};

struct wn_tcli {
	struct wn_tcp_base b; /* first */
	struct sockaddr_storage server;
	socklen_t server_len;
	uint8_t server_xpk[32];
	uint8_t sid[WN_PREAMBLE_SID_LEN];
	uint8_t secret[WN_PREAMBLE_SECRET_LEN];
	uint64_t counter;
	struct wn_tcli_conn
	    *conns[WN_SGROUP_MAX + 1]; /* dialling, up, retiring */
	size_t nconns;
	struct wn_tcli_conn *pref; /* sends go here while it is not loaded */
	bool group_up;             /* announced up: some connection is */
	bool rotating;             /* a connection is retiring */
	bool rotated_once;
	uint64_t rotated_ms; /* when the last rotation started */
	struct wn_timer tick;
	uint64_t redial_at; /* loop time of the next dial for a free slot */
	uint32_t backoff_ms;
	uint8_t vtag[WN_VADDR_TAG_LEN];
	struct sockaddr_in6 vaddr; /* the current virtual local address */
	char sni[256];
	char sname[80];
};

static struct wn_tcli *to_cli(struct wn_carrier *c)
{
	return (struct wn_tcli *)c;
}

static uint64_t now_ms(const struct wn_tcli *t)
{
	return wn_loop_now_ms(t->b.loop);
}

static void destroy(struct wn_tcp_base *b)
{
	struct wn_tcli *t = (struct wn_tcli *)b;

	sodium_memzero(t->secret, sizeof(t->secret));
}

static void fill(struct wn_tcli *t);

/* Jittered: between 3/4 and 5/4 of d. */
static uint32_t jitter(uint32_t d)
{
	return d - d / 4 + randombytes_uniform(d / 2 + 1);
}

static size_t nup(const struct wn_tcli *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nconns; i++)
		n += t->conns[i]->up;
	return n;
}

/* Connections that hold a slot of the group: dialling or up, not being
 * rotated out. */
static size_t nactive(const struct wn_tcli *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nconns; i++)
		n += !t->conns[i]->retiring;
	return n;
}

static void unlink_conn(struct wn_tcli *t, struct wn_tcli_conn *cc)
{
	for (size_t i = 0; i < t->nconns; i++)
		if (t->conns[i] == cc) {
			t->conns[i] = t->conns[--t->nconns];
			t->conns[t->nconns] = NULL;
			break;
		}
	if (t->pref == cc)
		t->pref = NULL;
}

/* A connection ended: plan the next dial for its slot, and report the
 * group down when it was the last one up. A connection that carried data
 * is redialled at once (a cut is not a failure); dials that keep failing
 * back off. */
static void conn_end(struct wn_tcli_conn *cc, int err, const char *why)
{
	struct wn_tcli *t = cc->cl;
	bool worked = cc->l.s.bytes_in > 0;

	if (cc->l.s.closed)
		return;
	wn_tcpconn_close(&cc->l.s);
	unlink_conn(t, cc);
	if (cc->retiring)
		t->rotating = false;
	if (t->b.closed)
		return;
	WN_LOG_RL(t->b.log, &t->b.rl, now_ms(t),
	          worked || cc->draining ? WN_LOG_INFO : WN_LOG_WARN, LOG_COMP,
	          "%s: conn %llu to %s: %s (in %llu, out %llu bytes; %zu up)",
	          t->b.base.name, (unsigned long long)cc->l.num, t->sname, why,
	          (unsigned long long)cc->l.s.bytes_in,
	          (unsigned long long)cc->l.s.bytes_out, nup(t));
	if (!cc->retiring) {
		if (worked) {
			t->backoff_ms = BACKOFF_MIN_MS;
			t->redial_at = now_ms(t);
		} else {
			t->redial_at = now_ms(t) + jitter(t->backoff_ms);
			t->backoff_ms = t->backoff_ms * 2 > BACKOFF_MAX_MS
			                    ? BACKOFF_MAX_MS
			                    : t->backoff_ms * 2;
		}
	}
	if (t->group_up && nup(t) == 0) {
		t->group_up = false;
		if (t->b.base.h.state)
			t->b.base.h.state(t->b.base.h.ctx, &t->b.base, NULL,
			                  WN_CARRIER_DOWN, err);
	}
	wn_tcp_owe_writable(&t->b);
	fill(t);
}

static void on_data(struct wn_tcpconn *s, const uint8_t *p, size_t n)
{
	struct wn_tcli_conn *cc = (struct wn_tcli_conn *)s;
	struct wn_tcli *t = cc->cl;

	t->b.base.stats.recv_calls++;
	if (wn_tcp_deliver(&cc->l, p, n, (struct sockaddr *)&t->server,
	                   t->server_len) != 0)
		conn_end(cc, WN_EPROTO, "malformed record");
}

static void on_end(struct wn_tcpconn *s, int err)
{
	struct wn_tcli_conn *cc = (struct wn_tcli_conn *)s;

	conn_end(cc, err, cc->draining ? "rotated" : wn_strerror(err));
}

/* A replacement is up: the retiring connection takes no more packets and
 * closes once what it holds is written. */
static void retire_done(struct wn_tcli *t)
{
	for (size_t i = 0; i < t->nconns; i++) {
		struct wn_tcli_conn *cc = t->conns[i];
		if (!cc->retiring || cc->draining)
			continue;
		cc->draining = true;
		cc->drain_ms = now_ms(t);
		if (t->pref == cc)
			t->pref = NULL;
		if (wn_tcpconn_queued(&cc->l.s) == 0)
			conn_end(cc, WN_ECLOSED, "rotated");
		else
			cc->l.s.end_when_flushed = true;
		return;
	}
}

/* The connection is ready for the session (TCP connected, or the TLS
 * handshake done): send the preamble. The first connection up gives the
 * group a fresh virtual address and tells the engine; later ones join
 * quietly (the engine's path is unchanged). */
static void conn_ready(struct wn_tcli_conn *cc)
{
	struct wn_tcli *t = cc->cl;
	struct wn_preamble p;
	uint8_t seed[32], pad[PAD_MAX], out[WN_PREAMBLE_SEALED + PAD_MAX];
	int n;

	memset(&p, 0, sizeof(p));
	memcpy(p.sid, t->sid, sizeof(p.sid));
	memcpy(p.secret, t->secret, sizeof(p.secret));
	p.counter = ++t->counter;
	p.timestamp_ms = wn_wall_ms();
	p.pad_len = (uint16_t)randombytes_uniform(PAD_MAX);
	randombytes_buf(seed, sizeof(seed));
	randombytes_buf(pad, p.pad_len);
	n = wn_preamble_seal(&p, t->server_xpk, seed, pad, out, sizeof(out));
	sodium_memzero(&p, sizeof(p));
	sodium_memzero(seed, sizeof(seed));
	if (n < 0 || wn_tcpconn_write(&cc->l.s, out, (size_t)n) != 0) {
		conn_end(cc, WN_EINTERNAL, "cannot send the preamble");
		return;
	}
	cc->up = true;
	WN_LOG(t->b.log, WN_LOG_DEBUG, LOG_COMP,
	       "%s: conn %llu to %s: up (%zu up)", t->b.base.name,
	       (unsigned long long)cc->l.num, t->sname, nup(t));
	if (!cc->retiring)
		retire_done(t);
	if (!t->group_up) {
		t->group_up = true;
		wn_vaddr_make(&t->vaddr, t->vtag, cc->l.num, 1);
		if (t->b.base.h.state)
			t->b.base.h.state(t->b.base.h.ctx, &t->b.base, NULL,
			                  WN_CARRIER_UP, 0);
	}
	wn_tcp_owe_writable(&t->b);
}

static void on_tls_up(struct wn_tcpconn *s)
{
	conn_ready((struct wn_tcli_conn *)s);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct wn_tcli_conn *cc = req->data;
	struct wn_tcli *t = cc->cl;
	gnutls_session_t sess;

	if (cc->l.s.closed)
		return;
	if (status < 0) {
		conn_end(cc, wn_err_from_uv(status), uv_strerror(status));
		return;
	}
	if (t->b.tls) {
		if (wn_tls_session(&sess, 0, t->b.cred, t->sni) != 0 ||
		    wn_tcpconn_tls(&cc->l.s, sess, t->b.pbuf,
		                   sizeof(t->b.pbuf)) != 0) {
			conn_end(cc, WN_ECRYPTO, "no TLS session");
			return;
		}
		cc->l.s.on_tls_up = on_tls_up;
	}
	if (wn_tcpconn_start(&cc->l.s) != 0) {
		conn_end(cc, WN_EIO, "cannot read");
		return;
	}
	if (t->b.tls)
		wn_tcpconn_tls_begin(&cc->l.s);
	else
		conn_ready(cc);
}

/* Dials one connection into a free slot. Returns false when it could not
 * start (the next try waits). */
static bool dial(struct wn_tcli *t)
{
	struct wn_tcli_conn *cc;
	int rc;

	cc = wn_tcp_link_new(&t->b, sizeof(*cc), on_data, on_end);
	if (!cc)
		goto later;
	cc->cl = t;
	cc->creq.data = cc;
	t->conns[t->nconns++] = cc;
	rc = uv_tcp_connect(&cc->creq, &cc->l.s.tcp,
	                    (struct sockaddr *)&t->server, on_connect);
	if (rc < 0)
		conn_end(cc, wn_err_from_uv(rc), uv_strerror(rc));
	return true;
later:
	t->redial_at = now_ms(t) + BACKOFF_MAX_MS;
	return false;
}

/* Dials until the group has its conns connections (dialling or up), as
 * far as the backoff allows. */
static void fill(struct wn_tcli *t)
{
	while (!t->b.closed && nactive(t) < t->b.o.conns &&
	       t->nconns < WN_SGROUP_MAX + 1 && t->redial_at <= now_ms(t))
		if (!dial(t))
			break;
}

/* Rotation: the oldest connection that is due (age or bytes) retires;
 * fill() dials its replacement, and it closes once that is up, so
 * rotation never leaves the group empty. One at a time, staggered. */
static void rotate(struct wn_tcli *t, uint64_t now)
{
	struct wn_tcli_conn *due = NULL;

	if (!t->b.o.rotate_after_ms && !t->b.o.rotate_bytes)
		return;
	if (!wn_sgroup_rotate_may_start(now, t->rotating, t->rotated_once,
	                                t->rotated_ms, t->b.o.rotate_after_ms,
	                                t->b.o.conns))
		return;
	for (size_t i = 0; i < t->nconns; i++) {
		struct wn_tcli_conn *cc = t->conns[i];
		if (cc->up && !cc->retiring &&
		    wn_sgroup_rotate_due(now - cc->l.s.born_ms,
		                         cc->l.s.bytes_in + cc->l.s.bytes_out,
		                         t->b.o.rotate_after_ms,
		                         t->b.o.rotate_bytes) &&
		    (!due || cc->l.num < due->l.num))
			due = cc;
	}
	if (!due)
		return;
	due->retiring = true;
	t->rotating = true;
	t->rotated_once = true;
	t->rotated_ms = now;
	WN_LOG(t->b.log, WN_LOG_DEBUG, LOG_COMP, "%s: conn %llu: rotating (%s)",
	       t->b.base.name, (unsigned long long)due->l.num,
	       t->b.o.rotate_after_ms &&
	               now - due->l.s.born_ms >= t->b.o.rotate_after_ms
	           ? "age"
	           : "bytes");
}

static void on_tick(struct wn_timer *tm)
{
	struct wn_tcli *t =
	    (struct wn_tcli *)((char *)tm - offsetof(struct wn_tcli, tick));
	uint64_t now = now_ms(t);
	struct wn_tcli_conn *list[WN_SGROUP_MAX + 1];
	size_t n = t->nconns;

	memcpy(list, t->conns, n * sizeof(list[0]));
	for (size_t i = 0; i < n && !t->b.closed; i++) {
		struct wn_tcli_conn *cc = list[i];
		if (cc->l.s.closed)
			continue;
		if (!cc->up) {
			if (now - cc->l.s.born_ms > CONNECT_TIMEOUT_MS)
				conn_end(cc, WN_ETIMEDOUT, "connect timed out");
		} else if (cc->l.s.tx_wait_ms &&
		           now - cc->l.s.tx_wait_ms > t->b.o.stall_ms) {
			conn_end(cc, WN_ETIMEDOUT, "stalled: nothing heard");
		} else if (cc->draining &&
		           now - cc->drain_ms > t->b.o.stall_ms) {
			conn_end(cc, WN_ETIMEDOUT, "rotated (unflushed)");
		} else if (!cc->draining &&
		           wn_sgroup_ping_due(now, cc->l.s.last_tx_ms,
		                              t->b.o.stall_ms /
		                                  WN_TCP_PING_DIV)) {
			(void)wn_tcpconn_ping(&cc->l.s);
		}
	}
	if (t->b.closed)
		return;
	rotate(t, now);
	fill(t);
}

/* ---- operations ------------------------------------------------------ */

static int cli_send(struct wn_carrier *c, const struct sockaddr *to,
                    socklen_t tolen, const uint8_t *buf, size_t len, size_t seg)
{
	struct wn_tcli *t = to_cli(c);
	size_t queued[WN_SGROUP_MAX + 1], cur, i;
	struct wn_tcli_conn *cc;
	int rc;
	(void)to;
	(void)tolen;
	rc = wn_tcp_send_check(&t->b, buf, len, &seg);
	if (rc != 0)
		return rc;
	cur = t->nconns;
	for (i = 0; i < t->nconns; i++) {
		cc = t->conns[i];
		queued[i] = cc->up && !cc->draining
		                ? wn_tcpconn_queued(&cc->l.s)
		                : WN_SGROUP_NONE;
		if (cc == t->pref)
			cur = i;
	}
	i = wn_sgroup_pick(queued, t->nconns, cur,
	                   t->b.o.queue_limit / WN_SGROUP_LOW_DIV);
	if (i == t->nconns)
		return wn_tcp_send_on(&t->b, NULL, buf, len, seg);
	t->pref = t->conns[i];
	return wn_tcp_send_on(&t->b, &t->pref->l, buf, len, seg);
}

static int cli_local_addr(const struct wn_carrier *c,
                          struct sockaddr_storage *ss, socklen_t *len)
{
	const struct wn_tcli *t = (const struct wn_tcli *)c;

	memcpy(ss, &t->vaddr, sizeof(t->vaddr));
	*len = sizeof(t->vaddr);
	return 0;
}

static void tick_closed(struct wn_timer *tm)
{
	wn_tcp_release((struct wn_tcp_base *)((char *)tm -
	                                      offsetof(struct wn_tcli, tick)));
}

static void cli_close(struct wn_carrier *c)
{
	struct wn_tcli *t = to_cli(c);

	if (t->b.closed)
		return;
	WN_LOG(t->b.log, WN_LOG_INFO, LOG_COMP,
	       "%s: closed (%llu connections, in %llu pkts, out %llu pkts, "
	       "dropped out %llu)",
	       t->b.base.name, (unsigned long long)t->b.conn_seq,
	       (unsigned long long)t->b.base.stats.pkts_in,
	       (unsigned long long)t->b.base.stats.pkts_out,
	       (unsigned long long)t->b.base.stats.drops_out);
	t->b.closed = true;
	memset(&t->b.base.h, 0, sizeof(t->b.base.h));
	while (t->nconns > 0)
		conn_end(t->conns[0], WN_ECLOSED, "carrier closed");
	wn_timer_close(&t->tick, tick_closed);
}

static const struct wn_carrier_ops cli_ops = {
    .send = cli_send,
    .max_packet = wn_tcp_max_packet,
    .local_addr = cli_local_addr,
    .close = cli_close,
};

static void name_server(struct wn_tcli *t)
{
	char host[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr *sa = (const struct sockaddr *)&t->server;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(t->sname, sizeof(t->sname), "%s:%u", host,
		         ntohs(a->sin_port));
	} else {
		const struct sockaddr_in6 *a = (const void *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(t->sname, sizeof(t->sname), "[%s]:%u", host,
		         ntohs(a->sin6_port));
	}
}

static int client_open(struct wn_loop *loop, struct wn_log *log, bool tls,
                       unsigned id, const struct sockaddr *server,
                       socklen_t len, const uint8_t server_pk[WN_KEY_LEN],
                       const struct wn_tcp_opts *opts,
                       const struct wn_carrier_handler *h,
                       struct wn_carrier **out)
{
	struct wn_tcli *t;
	int rc;

	if (!loop || !server || !h || !h->recv || !out || !server_pk ||
	    (server->sa_family != AF_INET && server->sa_family != AF_INET6) ||
	    len > sizeof(struct sockaddr_storage) ||
	    len < (server->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	                                        : sizeof(struct sockaddr_in6)))
		return WN_EINVAL;
	if (sodium_init() < 0)
		return WN_EINTERNAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return WN_ENOMEM;
	if (wn_pubkey_to_x25519(server_pk, t->server_xpk) != 0) {
		free(t);
		return WN_EINVAL;
	}
	wn_tcp_base_init(&t->b, &cli_ops, tls, id, loop, log, opts, h);
	t->b.destroy = destroy;
	if (tls) {
		if (t->b.o.sni)
			snprintf(t->sni, sizeof(t->sni), "%s", t->b.o.sni);
		t->b.o.sni = NULL; /* borrowed: the copy is used */
		if (wn_tls_client_creds(&t->b.cred) != 0) {
			free(t);
			return WN_ECRYPTO;
		}
	}
	memcpy(&t->server, server, len);
	t->server_len = len;
	name_server(t);
	randombytes_buf(t->sid, sizeof(t->sid));
	randombytes_buf(t->secret, sizeof(t->secret));
	randombytes_buf(t->vtag, sizeof(t->vtag));
	wn_vaddr_make(&t->vaddr, t->vtag, 0, 1);
	t->backoff_ms = BACKOFF_MIN_MS;
	rc = wn_timer_init(loop, &t->tick, on_tick);
	if (rc != 0) {
		if (t->b.cred)
			gnutls_certificate_free_credentials(t->b.cred);
		free(t);
		return rc;
	}
	rc = wn_timer_start(&t->tick, TICK_MS, TICK_MS);
	if (rc != 0) {
		wn_timer_close(&t->tick, tick_closed); /* frees t */
		return rc;
	}
	fill(t);
	*out = &t->b.base;
	return 0;
}

int wn_tcp_client_open(struct wn_loop *loop, struct wn_log *log, unsigned id,
                       const struct sockaddr *server, socklen_t len,
                       const uint8_t server_pk[WN_KEY_LEN],
                       const struct wn_tcp_opts *opts,
                       const struct wn_carrier_handler *h,
                       struct wn_carrier **out)
{
	return client_open(loop, log, false, id, server, len, server_pk, opts,
	                   h, out);
}

int wn_tls_client_open(struct wn_loop *loop, struct wn_log *log, unsigned id,
                       const struct sockaddr *server, socklen_t len,
                       const uint8_t server_pk[WN_KEY_LEN],
                       const struct wn_tcp_opts *opts,
                       const struct wn_carrier_handler *h,
                       struct wn_carrier **out)
{
	return client_open(loop, log, true, id, server, len, server_pk, opts, h,
	                   out);
}
