/* memcarrier: the in-memory carrier pair for tests. See memcarrier.h. */
#include "support/memcarrier.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

struct wn_mempkt {
	struct wn_mempkt *next;
	size_t len;
	uint8_t data[];
};

static uint32_t rnd(struct wn_memcarrier *m)
{
	m->rng = m->rng * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(m->rng >> 33);
}

static void enqueue(struct wn_memcarrier *m, struct wn_mempkt *p)
{
	p->next = NULL;
	*m->tail = p;
	m->tail = &p->next;
}

static void deliver(uv_idle_t *h)
{
	struct wn_memcarrier *m = h->data;
	struct wn_mempkt *p = m->head;

	m->head = NULL;
	m->tail = &m->head;
	/* A packet held back with nothing after it goes now, late. */
	if (!p && m->held) {
		p = m->held;
		m->held = NULL;
		p->next = NULL;
	}
	while (p) {
		struct wn_mempkt *next = p->next;
		m->delivered++;
		m->base.h.recv(m->base.h.ctx, &m->base,
		               (const struct sockaddr *)&m->peer->addr,
		               sizeof(m->peer->addr), p->data, p->len);
		free(p);
		p = next;
	}
	if (!m->head && !m->held)
		uv_idle_stop(&m->idle);
}

static int mc_send(struct wn_carrier *c, const struct sockaddr *to,
                   socklen_t tolen, const uint8_t *buf, size_t len, size_t seg)
{
	struct wn_memcarrier *m = (struct wn_memcarrier *)c, *dst = m->peer;
	(void)to;
	(void)tolen;
	if (!dst || seg == 0)
		return WN_EINVAL;
	for (size_t off = 0; off < len; off += seg) {
		size_t n = len - off < seg ? len - off : seg;
		m->sent++;
		if (n > m->largest)
			m->largest = n;
		if (n > m->max_packet)
			m->oversized++;
		if (m->loss_per_mille && rnd(m) % 1000 < m->loss_per_mille) {
			m->dropped++;
			continue;
		}
		struct wn_mempkt *p = malloc(sizeof(*p) + n);
		if (!p)
			return WN_ENOMEM;
		p->len = n;
		memcpy(p->data, buf + off, n);
		if (!dst->held && m->reorder_per_mille &&
		    rnd(m) % 1000 < m->reorder_per_mille) {
			dst->held = p; /* goes after the next one */
			m->reordered++;
			continue;
		}
		enqueue(dst, p);
		if (dst->held) {
			enqueue(dst, dst->held);
			dst->held = NULL;
		}
	}
	uv_idle_start(&dst->idle, deliver);
	return 0;
}

static size_t mc_max_packet(const struct wn_carrier *c)
{
	return ((const struct wn_memcarrier *)c)->max_packet;
}

static int mc_local_addr(const struct wn_carrier *c,
                         struct sockaddr_storage *ss, socklen_t *len)
{
	const struct wn_memcarrier *m = (const struct wn_memcarrier *)c;
	memcpy(ss, &m->addr, sizeof(m->addr));
	*len = sizeof(m->addr);
	return 0;
}

static void mc_close(struct wn_carrier *c)
{
	wn_memcarrier_close((struct wn_memcarrier *)c);
}

static const struct wn_carrier_ops mc_ops = {
    .send = mc_send,
    .max_packet = mc_max_packet,
    .local_addr = mc_local_addr,
    .close = mc_close,
};

void wn_memcarrier_init(struct wn_memcarrier *m, struct wn_loop *loop,
                        const char *ip, uint16_t port,
                        struct wn_carrier_handler h)
{
	memset(m, 0, sizeof(*m));
	m->base.ops = &mc_ops;
	m->base.scheme = "mem";
	m->base.caps = WN_CARRIER_DATAGRAM;
	m->base.h = h;
	snprintf(m->base.name, sizeof(m->base.name), "mem#%u", port);
	m->addr.sin_family = AF_INET;
	m->addr.sin_port = htons(port);
	inet_pton(AF_INET, ip, &m->addr.sin_addr);
	m->tail = &m->head;
	m->rng = port;
	m->max_packet = 1452;
	uv_idle_init(wn_loop_uv(loop), &m->idle);
	m->idle.data = m;
}

void wn_memcarrier_pair(struct wn_memcarrier *a, struct wn_memcarrier *b)
{
	a->peer = b;
	b->peer = a;
}

const struct sockaddr *wn_memcarrier_addr(const struct wn_memcarrier *m)
{
	return (const struct sockaddr *)&m->addr;
}

void wn_memcarrier_close(struct wn_memcarrier *m)
{
	if (uv_is_closing((uv_handle_t *)&m->idle))
		return;
	uv_idle_stop(&m->idle);
	uv_close((uv_handle_t *)&m->idle, NULL);
	while (m->head) {
		struct wn_mempkt *p = m->head;
		m->head = p->next;
		free(p);
	}
	m->tail = &m->head;
	free(m->held);
	m->held = NULL;
}
