/* What the tcp and tls carriers' client and server share (tcp_int.h). */
#include <stdio.h>
#include <stdlib.h>

#include "carrier/tcp_int.h"
#include "util/err.h"

static void opts_fill(struct wn_tcp_opts *o, const struct wn_tcp_opts *in)
{
	if (in)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
	if (o->max_packet == 0 || o->max_packet > WN_FRAME_MAX)
		o->max_packet = WN_TCP_MAX_PACKET;
	if (o->queue_limit == 0)
		o->queue_limit = WN_TCP_QUEUE_LIMIT;
	if (o->preamble_timeout_ms == 0)
		o->preamble_timeout_ms = WN_TCP_PREAMBLE_TIMEOUT_MS;
	if (o->stall_ms == 0)
		o->stall_ms = WN_TCP_STALL_MS;
	if (o->auth_timeout_ms == 0)
		o->auth_timeout_ms = WN_TCP_AUTH_TIMEOUT_MS;
	if (o->max_conns == 0)
		o->max_conns = WN_TCP_MAX_CONNS;
	if (o->max_sessions == 0)
		o->max_sessions = WN_TCP_MAX_SESSIONS;
	if (o->source_conns == 0)
		o->source_conns = WN_TCP_SOURCE_CONNS;
	if (o->conns == 0)
		o->conns = 1;
	if (o->conns > WN_SGROUP_MAX)
		o->conns = WN_SGROUP_MAX;
	if (o->pad_max > WN_FRAME_MAX)
		o->pad_max = WN_FRAME_MAX;
}

void wn_tcp_base_init(struct wn_tcp_base *b, const struct wn_carrier_ops *ops,
                      bool tls, unsigned id, struct wn_loop *loop,
                      struct wn_log *log, const struct wn_tcp_opts *opts,
                      const struct wn_carrier_handler *h)
{
	opts_fill(&b->o, opts);
	b->tls = tls;
	b->base.ops = ops;
	b->base.scheme = tls ? "tls" : "tcp";
	b->base.caps =
	    WN_CARRIER_RELIABLE | WN_CARRIER_CONNECTED | WN_CARRIER_FIXED_MTU;
	b->base.h = *h;
	snprintf(b->base.name, sizeof(b->base.name), "%s#%u", b->base.scheme,
	         id);
	b->loop = loop;
	b->log = log;
	b->rl = (struct wn_ratelimit)WN_RATELIMIT_INIT(1000, 5);
	b->handles = 1;
}

void wn_tcp_release(struct wn_tcp_base *b)
{
	if (--b->handles > 0)
		return;
	if (b->destroy)
		b->destroy(b);
	if (b->cred)
		gnutls_certificate_free_credentials(b->cred);
	free(b);
}

void wn_tcp_owe_writable(struct wn_tcp_base *b)
{
	if (b->want_writable && !b->closed) {
		b->want_writable = false;
		if (b->base.h.writable)
			b->base.h.writable(b->base.h.ctx, &b->base);
	}
}

static void link_freed(struct wn_tcpconn *s)
{
	struct wn_tcp_link *l = (struct wn_tcp_link *)s;
	struct wn_tcp_base *b = l->tb;

	free(l->decbuf);
	free(l);
	wn_tcp_release(b);
}

static void link_drained(struct wn_tcpconn *s)
{
	wn_tcp_owe_writable(((struct wn_tcp_link *)s)->tb);
}

void *wn_tcp_link_new(struct wn_tcp_base *b, size_t size,
                      void (*on_data)(struct wn_tcpconn *s, const uint8_t *p,
                                      size_t n),
                      void (*on_end)(struct wn_tcpconn *s, int err))
{
	struct wn_tcp_link *l = calloc(1, size);

	if (!l)
		return NULL;
	l->decbuf = malloc(b->o.max_packet);
	if (!l->decbuf || wn_tcpconn_init(&l->s, b->loop, b->o.queue_limit,
	                                  b->rbuf, sizeof(b->rbuf)) != 0) {
		free(l->decbuf);
		free(l);
		return NULL;
	}
	l->tb = b;
	l->s.owner = l;
	l->s.on_data = on_data;
	l->s.on_end = on_end;
	l->s.on_drain = link_drained;
	l->s.on_free = link_freed;
	l->num = ++b->conn_seq;
	wn_frame_dec_init(&l->dec, l->decbuf, b->o.max_packet);
	b->handles++;
	return l;
}

int wn_tcp_deliver(struct wn_tcp_link *l, const uint8_t *p, size_t n,
                   const struct sockaddr *from, socklen_t fromlen)
{
	struct wn_tcp_base *b = l->tb;
	size_t off = 0, used, plen;
	const uint8_t *pkt;
	int rc;

	while (off < n && !l->s.closed && !b->closed) {
		rc = wn_frame_dec_feed(&l->dec, p + off, n - off, &used, &pkt,
		                       &plen);
		off += used;
		if (rc < 0) {
			b->base.stats.drops_in++;
			return WN_EPROTO;
		}
		if (rc == 0)
			break;
		b->base.stats.pkts_in++;
		b->base.stats.bytes_in += plen;
		b->base.h.recv(b->base.h.ctx, &b->base, from, fromlen,
		               (uint8_t *)pkt, plen);
	}
	return 0;
}

int wn_tcp_send_check(const struct wn_tcp_base *b, const uint8_t *buf,
                      size_t len, size_t *seg)
{
	if (b->closed)
		return WN_ECLOSED;
	if (len == 0 || !buf)
		return WN_EINVAL;
	if (*seg == 0 || *seg > len)
		*seg = len;
	if (*seg > b->o.max_packet)
		return WN_ERANGE;
	return 0;
}

int wn_tcp_send_on(struct wn_tcp_base *b, struct wn_tcp_link *l,
                   const uint8_t *buf, size_t len, size_t seg)
{
	if (!l) {
		b->base.stats.drops_out += (len + seg - 1) / seg;
		return WN_EUNREACH;
	}
	if (wn_tcpconn_send_batch(&l->s, buf, len, seg, b->o.pad_max, b->pad,
	                          &b->base.stats) != 0) {
		b->want_writable = true;
		return WN_EAGAIN;
	}
	return 0;
}

size_t wn_tcp_max_packet(const struct wn_carrier *c)
{
	return ((const struct wn_tcp_base *)c)->o.max_packet;
}
