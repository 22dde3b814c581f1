/* The SOCKS5 front end's UDP ASSOCIATE (see socks5.c for the connection
 * phases; socks5_int.h is what the two files share).
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
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/socks5.h"
#include "front/socks5_int.h"
#include "util/err.h"

/* The largest datagram (header included) an association receives whole:
 * above any wn_tunnel_max_datagram plus the longest header. */
#define UDP_RBUF (4096 + WN_SOCKS5_UDP_HDR_MAX)

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

	wn_s5_conn_closed_one(u->c);
}

/* Ends the association: its flows are closed (the server is told) and its
 * socket closed; the connection is freed after it. */
void wn_s5_udp_end(struct socks_udp *u)
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

void wn_s5_associate(struct socks_conn *c)
{
	struct wn_socks5_front *sf = c->sf;
	struct sockaddr_storage local, peer, bound;
	struct wn_socks5_out out;
	struct socks_udp *u;
	int len = sizeof(bound);

	sf->stats.udp_associates++;
	if (wn_relay_sock_addrs(c->r, &local, &peer) < 0) {
		/* A unix socket listener has no address to bind UDP to. */
		wn_s5_reply_fail(c, WN_SOCKS5_REP_CMD_UNSUPPORTED);
		return;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		wn_s5_reply_fail(c, WN_SOCKS5_REP_GENERAL);
		return;
	}
	u->c = c;
	u->udp.data = u;
	/* The address the client reached us at is one it can send to. */
	set_port(&local, 0);
	if (uv_udp_init(wn_loop_uv(sf->loop), &u->udp) < 0) {
		free(u);
		wn_s5_reply_fail(c, WN_SOCKS5_REP_GENERAL);
		return;
	}
	c->u = u;
	c->closing++; /* the UDP handle, closed by udp_end */
	if (uv_udp_bind(&u->udp, (const struct sockaddr *)&local, 0) < 0 ||
	    uv_udp_getsockname(&u->udp, (struct sockaddr *)&bound, &len) < 0 ||
	    uv_udp_recv_start(&u->udp, udp_alloc, udp_recv) < 0) {
		wn_s5_reply_fail(c, WN_SOCKS5_REP_GENERAL);
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
	wn_s5_count_reply(sf, out.buf);
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
