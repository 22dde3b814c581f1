/* simcarrier: a carrier over simulated links. See simcarrier.h. */
#include "support/simcarrier.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

#define NS_PER_MS 1000000ull

static uint32_t now_ms(const struct wn_simcarrier *c)
{
	return (uint32_t)(*c->now_ns / NS_PER_MS);
}

static int sc_send(struct wn_carrier *c, const struct sockaddr *to,
                   socklen_t tolen, const uint8_t *buf, size_t len, size_t seg)
{
	struct wn_simcarrier *s = (struct wn_simcarrier *)c;
	(void)to;
	(void)tolen;
	if (s->closed || seg == 0)
		return WN_EINVAL;
	for (size_t off = 0; off < len; off += seg) {
		size_t n = len - off < seg ? len - off : seg;
		if (n > s->max_packet)
			return WN_ERANGE;
		wn_simlink_send(s->out, buf + off, n, now_ms(s));
		c->stats.pkts_out++;
		c->stats.bytes_out += n;
	}
	c->stats.send_calls++;
	return 0;
}

static size_t sc_max_packet(const struct wn_carrier *c)
{
	return ((const struct wn_simcarrier *)c)->max_packet;
}

static int sc_local_addr(const struct wn_carrier *c,
                         struct sockaddr_storage *ss, socklen_t *len)
{
	const struct wn_simcarrier *s = (const struct wn_simcarrier *)c;
	memcpy(ss, &s->addr, sizeof(s->addr));
	*len = sizeof(s->addr);
	return 0;
}

static void sc_close(struct wn_carrier *c)
{
	((struct wn_simcarrier *)c)->closed = 1;
}

static const struct wn_carrier_ops sc_ops = {
    .send = sc_send,
    .max_packet = sc_max_packet,
    .local_addr = sc_local_addr,
    .close = sc_close,
};

static void set_addr(struct sockaddr_in *sa, const char *ip, uint16_t port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	inet_pton(AF_INET, ip, &sa->sin_addr);
}

void wn_simcarrier_init(struct wn_simcarrier *c, const char *ip, uint16_t port,
                        const char *peer_ip, uint16_t peer_port,
                        struct wn_simlink *out, struct wn_simlink *in,
                        const uint64_t *now_ns, struct wn_carrier_handler h)
{
	memset(c, 0, sizeof(*c));
	c->base.ops = &sc_ops;
	c->base.scheme = "sim";
	c->base.caps = WN_CARRIER_DATAGRAM;
	c->base.h = h;
	snprintf(c->base.name, sizeof(c->base.name), "sim#%u", port);
	set_addr(&c->addr, ip, port);
	set_addr(&c->peer, peer_ip, peer_port);
	c->out = out;
	c->in = in;
	c->now_ns = now_ns;
	c->max_packet = WN_SIMCARRIER_MAX_PACKET;
}

unsigned wn_simcarrier_deliver(struct wn_simcarrier *c)
{
	unsigned n = 0;
	size_t len;
	while (!c->closed && (len = wn_simlink_recv(c->in, now_ms(c), c->rx,
	                                            sizeof(c->rx))) > 0) {
		n++;
		c->base.stats.pkts_in++;
		c->base.stats.bytes_in += len;
		c->base.stats.recv_calls++;
		c->base.h.recv(c->base.h.ctx, &c->base,
		               (const struct sockaddr *)&c->peer,
		               sizeof(c->peer), c->rx, len);
	}
	return n;
}

bool wn_simcarrier_next(const struct wn_simcarrier *c, uint64_t *when_ns)
{
	uint32_t when;
	if (c->closed || !wn_simlink_next(c->in, &when))
		return false;
	int32_t ahead = (int32_t)(when - now_ms(c));
	uint64_t t = (uint64_t)(now_ms(c)) * NS_PER_MS;
	if (ahead > 0)
		t += (uint64_t)ahead * NS_PER_MS;
	*when_ns = t > *c->now_ns ? t : *c->now_ns;
	return true;
}

const struct sockaddr *wn_simcarrier_addr(const struct wn_simcarrier *c)
{
	return (const struct sockaddr *)&c->addr;
}
