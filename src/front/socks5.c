/* The SOCKS5 front end: the handshake on accepted connections, then the
 * relay. See socks5.h for the modes and src/core/socks5.h for the parser.
 *
 * A connection (struct socks_conn) goes through phases:
 *
 *   HANDSHAKE  reading the greeting, credentials and request (timer: the
 *              handshake timeout)
 *   CONFIRM    standard mode: the stream is open with our handler; waiting
 *              for the server's status byte (timer: the confirm timeout)
 *   RELAY      the relay has socket and stream
 *   DONE       the relay finished; the timer is closing, then the
 *              connection is freed from the timer's close callback
 *
 *   ASSOC      UDP ASSOCIATE: the relay socket is open and answered; the
 *              TCP connection is only watched for its end, which ends
 *              the association
 *
 * The relay owns the socket throughout (it was accepted into one by the
 * forward front end, which also closes every relay when the proxy closes);
 * its on_finish is ours, and is the one way to DONE. A connection is freed
 * once its timer and, for an association, its UDP socket have closed.
 *
 * A UDP association (struct socks_udp, RFC 1928 section 7): a UDP socket
 * bound on the address the client reached the proxy at (port chosen by
 * the kernel), named in the reply. It takes datagrams only from the
 * client: the address the request named, or the control connection's
 * peer address when the request said 0.0.0.0; the port the request named,
 * or the first datagram's when it said 0. Each datagram's header names a
 * destination; each destination is a flow on the tunnel (the server
 * checks it against its udp:// rules and refuses the flow otherwise), at
 * most WN_SOCKS5_UDP_FLOWS at once, the least recently used closed to
 * make room. Replies get the destination's header back. Nothing is
 * allocated or copied per datagram: the header of a reply is written
 * into a scratch and sent with the data as a second buffer. */
#include "front/socks5.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/socks5.h"
#include "front/forward.h"
#include "util/container.h"
#include "util/err.h"

#define LOG_COMP "socks"
/* The confirm status byte that means "connected" (streamhdr.h). */
#define STATUS_OK 0
/* A credential as compared: u8 len, 255 bytes padded with zeros, twice. */
#define CRED_BLOB (2 * (1 + WN_SOCKS5_CRED_MAX))

enum phase { P_HANDSHAKE, P_CONFIRM, P_RELAY, P_ASSOC, P_DONE };

/* The largest datagram (header included) an association receives whole:
 * above any wn_tunnel_max_datagram plus the longest header. */
#define UDP_RBUF (4096 + WN_SOCKS5_UDP_HDR_MAX)

struct socks_udp;

struct udp_flow {
	struct socks_udp *u;
	struct wn_flow *f; /* NULL: free, or refused (denied) */
	struct wn_flow_handler h;
	struct wn_endpoint target;
	uint64_t last_use; /* u->uses when last used: exact LRU order */
	bool used;         /* the slot names a target */
	bool denied;       /* the server refused it: drop its datagrams here */
};

struct socks_udp {
	struct socks_conn *c;
	uv_udp_t udp;
	struct sockaddr_storage client; /* the one source admitted */
	bool port_known;                /* client's port: named or seen */
	uint64_t uses;                  /* datagrams through any flow */
	char peer_text[64];
	struct udp_flow flows[WN_SOCKS5_UDP_FLOWS];
	uint8_t rbuf[UDP_RBUF];
	uint8_t hdr[WN_SOCKS5_UDP_HDR_MAX];
};

struct socks_conn {
	struct wn_socks5_front *sf;
	struct wn_relay *r;  /* NULL once the relay finished */
	struct wn_stream *s; /* ours while in CONFIRM */
	struct wn_stream_handler h;
	struct wn_timer timer;
	enum phase phase;
	struct wn_socks5 p;
	struct socks_udp *u; /* UDP ASSOCIATE only */
	int closing;         /* handles still to close before the free */
	uint8_t rbuf[WN_SOCKS5_MSG_MAX];
	char target[WN_HOSTNAME_MAX + 16];
};

struct wn_socks5_front {
	struct wn_loop *loop;
	struct wn_log *log;
	struct wn_tunnel *tunnel;
	struct wn_forward *fwd;
	char name[WN_FRONT_NAME_MAX + 1];
	bool eager;
	uint8_t (*creds)[CRED_BLOB]; /* the users, as compared */
	size_t n_users;
	uint32_t hs_ms, confirm_ms;
	struct wn_socks5_front_stats stats;
	struct wn_ratelimit rl;
	long conns; /* connections not yet freed */
	bool closing;
};

uint8_t wn_socks5_rep_for(int stream_err)
{
	switch (stream_err) {
	case WN_STREAM_DENIED:
		return WN_SOCKS5_REP_NOT_ALLOWED;
	case WN_STREAM_UNREACHABLE:
		return WN_SOCKS5_REP_HOST_UNREACHABLE;
	case WN_STREAM_REFUSED:
		return WN_SOCKS5_REP_REFUSED;
	case WN_STREAM_TIMEOUT:
		return WN_SOCKS5_REP_TTL_EXPIRED;
	default:
		/* Includes BAD_HEADER: a server too old for the confirm
		 * flag resets such streams as malformed. */
		return WN_SOCKS5_REP_GENERAL;
	}
}

static void front_free(struct wn_socks5_front *sf)
{
	if (sf->creds)
		sodium_memzero(sf->creds, sf->n_users * sizeof(*sf->creds));
	free(sf->creds);
	free(sf);
}

/* ---- credentials ------------------------------------------------------ */

static void cred_blob(uint8_t out[CRED_BLOB], const char *user, size_t ulen,
                      const char *pass, size_t plen)
{
	memset(out, 0, CRED_BLOB);
	out[0] = (uint8_t)ulen;
	memcpy(out + 1, user, ulen);
	out[1 + WN_SOCKS5_CRED_MAX] = (uint8_t)plen;
	memcpy(out + 2 + WN_SOCKS5_CRED_MAX, pass, plen);
}

/* Compares against every user, always all of them, in constant time per
 * user, so timing tells neither which user nor how much matched. */
static bool check_user(const struct wn_socks5_front *sf,
                       const struct wn_socks5 *p)
{
	uint8_t blob[CRED_BLOB];
	int ok = 0;
	size_t i;

	cred_blob(blob, p->user, p->user_len, p->pass, p->pass_len);
	for (i = 0; i < sf->n_users; i++)
		ok |= sodium_memcmp(blob, sf->creds[i], CRED_BLOB) == 0;
	sodium_memzero(blob, sizeof(blob));
	return ok != 0;
}

/* ---- ending ----------------------------------------------------------- */

static void conn_closed_one(struct socks_conn *c)
{
	struct wn_socks5_front *sf = c->sf;

	if (--c->closing > 0)
		return;
	sodium_memzero(&c->p, sizeof(c->p));
	free(c->u);
	free(c);
	if (--sf->conns == 0 && sf->closing)
		front_free(sf);
}

static void on_timer_closed(struct wn_timer *t)
{
	conn_closed_one(wn_container_of(t, struct socks_conn, timer));
}

static void udp_end(struct socks_udp *u);

/* The relay finished: closed by us, by the application, by the stream or
 * by the proxy closing. The one way to DONE. */
static void on_relay_finish(void *ctx, struct wn_relay *r, int err)
{
	struct socks_conn *c = ctx;
	struct wn_stream *s = c->s;

	(void)r;
	(void)err;
	c->r = NULL;
	c->phase = P_DONE;
	if (s) {
		/* Released with both directions open: the engine resets it. */
		c->s = NULL;
		wn_stream_release(s);
	}
	if (c->u)
		udp_end(c->u); /* the association ends with its connection */
	wn_timer_close(&c->timer, on_timer_closed);
}

static void count_reply(struct wn_socks5_front *sf, const uint8_t *reply)
{
	if (reply[1] < sizeof(sf->stats.replies) / sizeof(sf->stats.replies[0]))
		sf->stats.replies[reply[1]]++;
}

/* Sends out (if anything) and closes the connection with a FIN, so the
 * application reads the reply rather than a reset. */
static void end_with(struct socks_conn *c, const struct wn_socks5_out *out)
{
	if (out->len)
		(void)wn_relay_hs_write(c->r, out->buf, out->len);
	wn_relay_end(c->r);
}

static void reply_fail(struct socks_conn *c, uint8_t rep)
{
	struct wn_socks5_out out;

	wn_socks5_reply(rep, &out);
	count_reply(c->sf, out.buf);
	end_with(c, &out);
}

/* ---- standard mode: waiting for the server's answer ------------------- */

static void on_s_data(void *ctx, struct wn_stream *s, const uint8_t *data,
                      size_t len)
{
	struct socks_conn *c = ctx;
	struct wn_socks5_out out;

	if (c->phase != P_CONFIRM || len == 0)
		return;
	c->s = NULL;
	if (data[0] != STATUS_OK) {
		WN_LOG_RL(c->sf->log, &c->sf->rl, wn_loop_now_ms(c->sf->loop),
		          WN_LOG_WARN, LOG_COMP,
		          "socks5 %s: %s: unknown status %u from the server",
		          c->sf->name, c->target, data[0]);
		wn_stream_release(s);
		reply_fail(c, WN_SOCKS5_REP_GENERAL);
		return;
	}
	wn_stream_consumed(s, 1);
	wn_socks5_reply(WN_SOCKS5_REP_SUCCEEDED, &out);
	count_reply(c->sf, out.buf);
	if (wn_relay_hs_write(c->r, out.buf, out.len) < 0) {
		wn_stream_release(s);
		wn_relay_close(c->r, WN_STREAM_ABORTED);
		return;
	}
	c->phase = P_RELAY;
	wn_timer_stop(&c->timer);
	/* The target's first data may have come with the status byte. */
	if (wn_relay_attach(c->r, s, &c->p.target, data + 1, len - 1) < 0) {
		wn_stream_release(s);
		wn_relay_close(c->r, WN_STREAM_INTERNAL);
	}
}

static void on_s_eof(void *ctx, struct wn_stream *s)
{
	struct socks_conn *c = ctx;

	/* A FIN before the status byte: no answer is an answer. */
	c->s = NULL;
	wn_stream_release(s);
	reply_fail(c, WN_SOCKS5_REP_GENERAL);
}

static void on_s_writable(void *ctx, struct wn_stream *s)
{
	(void)ctx;
	(void)s;
}

static void on_s_closed(void *ctx, struct wn_stream *s, int err)
{
	struct socks_conn *c = ctx;
	uint8_t rep = wn_socks5_rep_for(err == WN_STREAM_OK ? -1 : err);

	(void)s;
	c->s = NULL;
	c->sf->stats.failed_replies++;
	WN_LOG_RL(c->sf->log, &c->sf->rl, wn_loop_now_ms(c->sf->loop),
	          WN_LOG_INFO, LOG_COMP, "socks5 %s: %s: %s (reply %u)",
	          c->sf->name, c->target, wn_stream_err_str(err), rep);
	reply_fail(c, rep);
}

/* ---- UDP ASSOCIATE ------------------------------------------------------ */

static bool same_addr(const struct sockaddr_storage *a,
                      const struct sockaddr_storage *b, bool port)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr &&
		       (!port || a4->sin_port == b4->sin_port);
	if (a->ss_family == AF_INET6)
		return memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0 &&
		       (!port || a6->sin6_port == b6->sin6_port);
	return false;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port_be)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = port_be;
	else
		((struct sockaddr_in6 *)ss)->sin6_port = port_be;
}

static uint16_t get_port(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET
	           ? ((const struct sockaddr_in *)ss)->sin_port
	           : ((const struct sockaddr_in6 *)ss)->sin6_port;
}

static bool addr_unspecified(const struct sockaddr_storage *ss)
{
	static const uint8_t zero[16];

	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == 0;
	return memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, zero,
	              16) == 0;
}

/* Whether two destinations are one flow: the same address and port, or
 * the same name (case-insensitively, as DNS compares) and port. */
static bool same_target(const struct wn_endpoint *a,
                        const struct wn_endpoint *b)
{
	if (a->kind != b->kind || a->port != b->port)
		return false;
	if (a->kind == WN_HOST_IP)
		return same_addr(&a->sa, &b->sa, true);
	return strcasecmp(a->host, b->host) == 0;
}

static void udp_log(struct socks_udp *u, enum wn_log_level lvl,
                    const char *what, const char *why)
{
	struct wn_socks5_front *sf = u->c->sf;

	WN_LOG_RL(sf->log, &sf->rl, wn_loop_now_ms(sf->loop), lvl, LOG_COMP,
	          "socks5 %s: udp %s: %s%s%s", sf->name, u->peer_text, what,
	          why ? ": " : "", why ? why : "");
}

static void uf_on_datagram(void *ctx, struct wn_flow *f, const uint8_t *data,
                           size_t len)
{
	struct udp_flow *fl = ctx;
	struct socks_udp *u = fl->u;
	struct wn_socks5_front *sf = u->c->sf;
	uv_buf_t bufs[2];
	int n, rc;

	(void)f;
	fl->last_use = ++u->uses;
	if (!u->port_known) {
		/* Nowhere to send it yet (the client has not spoken). */
		sf->stats.udp_drop_reply++;
		return;
	}
	n = wn_socks5_udp_header(&fl->target, u->hdr, sizeof(u->hdr));
	if (n < 0) {
		sf->stats.udp_drop_reply++;
		return;
	}
	bufs[0] = uv_buf_init((char *)u->hdr, (unsigned)n);
	bufs[1] = uv_buf_init((char *)data, (unsigned)len);
	rc = uv_udp_try_send(&u->udp, bufs, 2,
	                     (const struct sockaddr *)&u->client);
	if (rc < 0) {
		/* Socket buffer full or an ICMP error pending: UDP drops. */
		sf->stats.udp_drop_reply++;
		return;
	}
	sf->stats.udp_dgrams_down++;
}

static void uf_on_closed(void *ctx, struct wn_flow *f, int err)
{
	struct udp_flow *fl = ctx;
	struct socks_udp *u = fl->u;
	char text[WN_HOSTNAME_MAX + 16];

	(void)f;
	fl->f = NULL;
	if (err == WN_STREAM_DENIED) {
		/* Remembered, so its next datagrams are dropped here rather
		 * than each asking the server again. */
		fl->denied = true;
		u->c->sf->stats.udp_flows_denied++;
		udp_log(u, WN_LOG_INFO,
		        wn_endpoint_format(&fl->target, text, sizeof(text)),
		        "not allowed by the server");
		return;
	}
	fl->used = false;
}

/* The flow for target: an existing one, or a new one in a free slot or
 * in the least recently used one's. NULL when the tunnel has no flow for
 * it (counted by the caller). */
static struct udp_flow *flow_for(struct socks_udp *u,
                                 const struct wn_endpoint *target)
{
	struct wn_socks5_front *sf = u->c->sf;
	struct udp_flow *fl, *victim = NULL;
	size_t i;

	for (i = 0; i < WN_SOCKS5_UDP_FLOWS; i++) {
		fl = &u->flows[i];
		if (fl->used && same_target(&fl->target, target))
			return fl;
		if (!fl->used) {
			if (!victim || victim->used)
				victim = fl;
		} else if (!victim ||
		           (victim->used && fl->last_use < victim->last_use)) {
			victim = fl;
		}
	}
	fl = victim;
	if (fl->used) {
		sf->stats.udp_flows_evicted++;
		if (fl->f)
			wn_flow_close(fl->f);
	}
	memset(fl, 0, sizeof(*fl));
	fl->u = u;
	fl->target = *target;
	fl->h = (struct wn_flow_handler){fl, uf_on_datagram, uf_on_closed};
	fl->f = wn_tunnel_open_flow(sf->tunnel, target, &fl->h);
	if (!fl->f)
		return NULL;
	fl->used = true;
	sf->stats.udp_flows_opened++;
	return fl;
}

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct socks_udp *u = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)u->rbuf, sizeof(u->rbuf));
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                     const struct sockaddr *from, unsigned flags)
{
	struct socks_udp *u = h->data;
	struct wn_socks5_front *sf = u->c->sf;
	struct sockaddr_storage src;
	struct wn_endpoint dst;
	struct udp_flow *fl;
	const char *why;
	int hl, rc;

	(void)buf;
	if (n <= 0 || !from || u->c->phase != P_ASSOC)
		return; /* nothing read, or a receive error UDP ignores */
	memset(&src, 0, sizeof(src));
	memcpy(&src, from,
	       from->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	                                  : sizeof(struct sockaddr_in6));
	if (!same_addr(&src, &u->client, u->port_known)) {
		/* Only the client may use its association. */
		sf->stats.udp_drop_source++;
		return;
	}
	if (!u->port_known) {
		set_port(&u->client, get_port(&src));
		u->port_known = true;
	}
	if (flags & UV_UDP_PARTIAL) {
		sf->stats.udp_drop_size++;
		return;
	}
	hl = wn_socks5_udp_parse(u->rbuf, (size_t)n, &dst, &why);
	if (hl < 0) {
		if (hl == WN_ENOTSUP && u->rbuf[2] != 0)
			sf->stats.udp_drop_frag++;
		else
			sf->stats.udp_drop_header++;
		udp_log(u, WN_LOG_DEBUG, "datagram dropped", why);
		return;
	}
	fl = flow_for(u, &dst);
	if (!fl) {
		sf->stats.udp_drop_tunnel++;
		return;
	}
	if (fl->denied) {
		sf->stats.udp_drop_denied++;
		return;
	}
	fl->last_use = ++u->uses;
	rc = wn_flow_send(fl->f, u->rbuf + hl, (size_t)n - (size_t)hl);
	if (rc == WN_EMSGSIZE)
		sf->stats.udp_drop_size++;
	else if (rc < 0)
		sf->stats.udp_drop_tunnel++;
	else
		sf->stats.udp_dgrams_up++;
}

static void on_udp_closed(uv_handle_t *h)
{
	struct socks_udp *u = h->data;

	conn_closed_one(u->c);
}

/* Ends the association: its flows are closed (the server is told) and its
 * socket closed; the connection is freed after it. */
static void udp_end(struct socks_udp *u)
{
	size_t i;

	for (i = 0; i < WN_SOCKS5_UDP_FLOWS; i++)
		if (u->flows[i].f) {
			wn_flow_close(u->flows[i].f);
			u->flows[i].f = NULL;
		}
	uv_udp_recv_stop(&u->udp);
	uv_close((uv_handle_t *)&u->udp, on_udp_closed);
}

/* The control connection: anything the client sends on it is ignored; its
 * end (or an error) ends the association. */
static void on_ctl_read(void *ctx, struct wn_relay *r, ssize_t n)
{
	struct socks_conn *c = ctx;

	if (n < 0) {
		wn_relay_end(r);
		return;
	}
	if (wn_relay_hs_read(r, c->rbuf, sizeof(c->rbuf), on_ctl_read, c) < 0)
		wn_relay_close(r, WN_STREAM_INTERNAL);
}

static void do_associate(struct socks_conn *c)
{
	struct wn_socks5_front *sf = c->sf;
	struct sockaddr_storage local, peer, bound;
	struct wn_socks5_out out;
	struct socks_udp *u;
	int len = sizeof(bound);

	sf->stats.udp_associates++;
	if (wn_relay_sock_addrs(c->r, &local, &peer) < 0) {
		/* A unix socket listener has no address to bind UDP to. */
		reply_fail(c, WN_SOCKS5_REP_CMD_UNSUPPORTED);
		return;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		reply_fail(c, WN_SOCKS5_REP_GENERAL);
		return;
	}
	u->c = c;
	u->udp.data = u;
	/* The address the client reached us at is one it can send to. */
	set_port(&local, 0);
	if (uv_udp_init(wn_loop_uv(sf->loop), &u->udp) < 0) {
		free(u);
		reply_fail(c, WN_SOCKS5_REP_GENERAL);
		return;
	}
	c->u = u;
	c->closing++; /* the UDP handle, closed by udp_end */
	if (uv_udp_bind(&u->udp, (const struct sockaddr *)&local, 0) < 0 ||
	    uv_udp_getsockname(&u->udp, (struct sockaddr *)&bound, &len) < 0 ||
	    uv_udp_recv_start(&u->udp, udp_alloc, udp_recv) < 0) {
		reply_fail(c, WN_SOCKS5_REP_GENERAL);
		return;
	}
	/* The client: the address its request named, else the control
	 * connection's; the port it named, else its first datagram's. */
	u->client = peer;
	if (c->p.target.kind == WN_HOST_IP &&
	    c->p.target.sa.ss_family == peer.ss_family &&
	    !addr_unspecified(&c->p.target.sa))
		u->client = c->p.target.sa;
	set_port(&u->client, htons(c->p.target.port));
	u->port_known = c->p.target.port != 0;
	wn_sockaddr_format((struct sockaddr *)&u->client, u->peer_text,
	                   sizeof(u->peer_text));
	wn_socks5_reply_addr(WN_SOCKS5_REP_SUCCEEDED,
	                     (const struct sockaddr *)&bound, &out);
	count_reply(sf, out.buf);
	if (wn_relay_hs_write(c->r, out.buf, out.len) < 0) {
		wn_relay_close(c->r, WN_STREAM_ABORTED);
		return;
	}
	c->phase = P_ASSOC;
	wn_timer_stop(&c->timer);
	if (wn_relay_hs_read(c->r, c->rbuf, sizeof(c->rbuf), on_ctl_read, c) <
	    0)
		wn_relay_close(c->r, WN_STREAM_INTERNAL);
}

/* ---- the handshake ---------------------------------------------------- */

static void do_connect(struct socks_conn *c)
{
	struct wn_socks5_front *sf = c->sf;
	struct wn_socks5_out out;

	wn_endpoint_format(&c->p.target, c->target, sizeof(c->target));
	sf->stats.connects++;
	if (sf->eager) {
		if (wn_relay_open(c->r, sf->tunnel, &c->p.target) < 0) {
			reply_fail(c, WN_SOCKS5_REP_GENERAL);
			return;
		}
		c->phase = P_RELAY;
		wn_timer_stop(&c->timer);
		/* Before any stream data can reach the socket: handlers
		 * never run inside wn_relay_open. */
		wn_socks5_reply(WN_SOCKS5_REP_SUCCEEDED, &out);
		count_reply(sf, out.buf);
		if (wn_relay_hs_write(c->r, out.buf, out.len) < 0)
			wn_relay_close(c->r, WN_STREAM_ABORTED);
		return;
	}
	c->h = (struct wn_stream_handler){c, on_s_data, on_s_eof, on_s_writable,
	                                  on_s_closed};
	c->s = wn_tunnel_open_stream_flags(sf->tunnel, &c->p.target,
	                                   WN_OPEN_CONFIRM, &c->h);
	if (!c->s) {
		reply_fail(c, WN_SOCKS5_REP_GENERAL);
		return;
	}
	c->phase = P_CONFIRM;
	wn_timer_start(&c->timer, sf->confirm_ms, 0);
}

static void on_hs_read(void *ctx, struct wn_relay *r, ssize_t n);

static void hs_next(struct socks_conn *c)
{
	int rc = wn_relay_hs_read(c->r, c->rbuf, wn_socks5_want(&c->p),
	                          on_hs_read, c);

	if (rc < 0)
		wn_relay_close(c->r, WN_STREAM_INTERNAL);
}

static void handle(struct socks_conn *c, const uint8_t *data, size_t len)
{
	struct wn_socks5_front *sf = c->sf;
	struct wn_socks5_out out;
	enum wn_socks5_event ev;
	size_t used;
	bool auth_failed = false;

	for (;;) {
		ev = wn_socks5_feed(&c->p, data, len, &used, &out);
		data += used;
		len -= used;
		if (ev == WN_SOCKS5_CHECK_AUTH) {
			auth_failed = !check_user(sf, &c->p);
			ev = wn_socks5_auth_done(&c->p, !auth_failed, &out);
		}
		switch (ev) {
		case WN_SOCKS5_MORE:
			hs_next(c);
			return;
		case WN_SOCKS5_SEND:
			if (wn_relay_hs_write(c->r, out.buf, out.len) < 0) {
				wn_relay_close(c->r, WN_STREAM_ABORTED);
				return;
			}
			if (len == 0) {
				hs_next(c);
				return;
			}
			continue;
		case WN_SOCKS5_CONNECT:
			do_connect(c);
			return;
		case WN_SOCKS5_UDP_ASSOCIATE:
			do_associate(c);
			return;
		default:
			if (auth_failed)
				sf->stats.auth_failures++;
			else
				sf->stats.bad_handshakes++;
			WN_LOG_RL(sf->log, &sf->rl, wn_loop_now_ms(sf->loop),
			          WN_LOG_INFO, LOG_COMP,
			          "socks5 %s: refused: %s", sf->name,
			          c->p.error ? c->p.error : "?");
			if (out.len >= 10)
				count_reply(sf, out.buf);
			end_with(c, &out);
			return;
		}
	}
}

static void on_hs_read(void *ctx, struct wn_relay *r, ssize_t n)
{
	struct socks_conn *c = ctx;

	if (n < 0) {
		/* The application left mid-handshake. */
		wn_relay_close(r, WN_STREAM_ABORTED);
		return;
	}
	handle(c, c->rbuf, (size_t)n);
}

static void on_timer(struct wn_timer *t)
{
	struct socks_conn *c = wn_container_of(t, struct socks_conn, timer);
	struct wn_socks5_front *sf = c->sf;
	struct wn_stream *s = c->s;

	if (c->phase == P_HANDSHAKE) {
		sf->stats.timeouts++;
		WN_LOG_RL(sf->log, &sf->rl, wn_loop_now_ms(sf->loop),
		          WN_LOG_INFO, LOG_COMP,
		          "socks5 %s: handshake timed out", sf->name);
		wn_relay_close(c->r, WN_STREAM_ABORTED);
	} else if (c->phase == P_CONFIRM && s) {
		sf->stats.timeouts++;
		c->s = NULL;
		wn_stream_reset(s, WN_STREAM_TIMEOUT);
		wn_stream_release(s);
		reply_fail(c, WN_SOCKS5_REP_TTL_EXPIRED);
	}
}

static void on_accept(void *ctx, struct wn_relay *r)
{
	struct wn_socks5_front *sf = ctx;
	struct socks_conn *c;

	if (sf->closing) {
		wn_relay_close(r, WN_STREAM_ABORTED);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || wn_timer_init(sf->loop, &c->timer, on_timer) < 0) {
		free(c);
		wn_relay_close(r, WN_STREAM_INTERNAL);
		return;
	}
	c->sf = sf;
	c->r = r;
	c->phase = P_HANDSHAKE;
	c->closing = 1; /* the timer */
	sf->conns++;
	sf->stats.accepted++;
	wn_socks5_init(&c->p, sf->n_users > 0);
	/* UDP ASSOCIATE needs a tunnel that carries datagrams; without, the
	 * client hears "command not supported". */
	if (wn_tunnel_has_datagrams(sf->tunnel))
		wn_socks5_enable_udp(&c->p);
	wn_relay_set_finish(r, on_relay_finish, c);
	wn_timer_start(&c->timer, sf->hs_ms, 0);
	hs_next(c);
}

/* ---- public ----------------------------------------------------------- */

int wn_socks5_front_open(struct wn_loop *loop, struct wn_log *log,
                         struct wn_tunnel *t,
                         const struct wn_socks5_front_opts *opts,
                         struct wn_socks5_front **out)
{
	struct wn_forward_opts fo = {0};
	struct wn_socks5_front *sf;
	char text[WN_UNIX_PATH_MAX + 32];
	size_t i;
	int rc;

	if (sodium_init() < 0)
		return WN_EINTERNAL;
	sf = calloc(1, sizeof(*sf));
	if (!sf)
		return WN_ENOMEM;
	if (opts->n_users) {
		sf->creds = calloc(opts->n_users, sizeof(*sf->creds));
		if (!sf->creds) {
			free(sf);
			return WN_ENOMEM;
		}
	}
	for (i = 0; i < opts->n_users; i++)
		cred_blob(sf->creds[i], opts->users[i].name,
		          strlen(opts->users[i].name), opts->users[i].pass,
		          strlen(opts->users[i].pass));
	sf->n_users = opts->n_users;
	sf->loop = loop;
	sf->log = log;
	sf->tunnel = t;
	sf->eager = opts->eager;
	snprintf(sf->name, sizeof(sf->name), "%s",
	         opts->name && opts->name[0] ? opts->name : "socks5");
	sf->hs_ms = opts->handshake_timeout_ms ? opts->handshake_timeout_ms
	                                       : WN_SOCKS5_HANDSHAKE_TIMEOUT_MS;
	sf->confirm_ms = opts->confirm_timeout_ms
	                     ? opts->confirm_timeout_ms
	                     : WN_SOCKS5_CONFIRM_TIMEOUT_MS;
	sf->rl = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 5);

	fo.name = sf->name;
	fo.listen = opts->listen;
	fo.out_limit = opts->out_limit;
	fo.backlog = opts->backlog;
	fo.on_accept = on_accept;
	fo.ctx = sf;
	fo.unix_mode = opts->unix_mode;
	fo.loopback_only = opts->n_users == 0 && !opts->unauthenticated;
	rc = wn_forward_open(loop, log, t, &fo, &sf->fwd);
	if (rc < 0) {
		front_free(sf);
		return rc;
	}
	WN_LOG(log, WN_LOG_INFO, LOG_COMP, "socks5 %s: on %s, %s, %s%s",
	       sf->name, wn_endpoint_format(&opts->listen, text, sizeof(text)),
	       sf->eager ? "eager" : "standard",
	       sf->n_users ? "username/password" : "no authentication",
	       wn_tunnel_has_datagrams(t) ? ", UDP ASSOCIATE" : "");
	*out = sf;
	return 0;
}

void wn_socks5_front_close(struct wn_socks5_front *sf)
{
	if (sf->closing)
		return;
	sf->closing = true;
	/* Closes every relay: each socks_conn ends through on_relay_finish. */
	wn_forward_close(sf->fwd);
	sf->fwd = NULL;
	if (sf->conns == 0)
		front_free(sf);
}

int wn_socks5_front_sockname(const struct wn_socks5_front *sf,
                             struct sockaddr_storage *ss)
{
	return sf->fwd ? wn_forward_sockname(sf->fwd, ss) : WN_EINVAL;
}

const struct wn_relay_set *
wn_socks5_front_relays(const struct wn_socks5_front *sf)
{
	return wn_forward_relays(sf->fwd);
}

const struct wn_socks5_front_stats *
wn_socks5_front_get_stats(const struct wn_socks5_front *sf)
{
	return &sf->stats;
}
