#include "support/simlink.h"

#include <stdlib.h>
#include <string.h>

struct pkt {
	uint32_t when;
	uint64_t order; /* ties deliver in sending order */
	size_t len;
	uint8_t *data;
};

struct wn_simlink {
	struct wn_simlink_cfg cfg;
	uint64_t rng;
	bool down;
	/* Time unwrapped to 64-bit microseconds for the bottleneck. */
	bool started;
	uint32_t last_now;
	uint64_t now_us;
	uint64_t free_us; /* when the bottleneck finishes its backlog */
	struct pkt *heap;
	size_t n, cap;
	uint64_t order;
	uint32_t last_when; /* latest in-order delivery time */
	struct wn_simlink_stats st;
};

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		abort();
	return p;
}

/* splitmix64: small, fast and good enough for a link model. */
uint64_t wn_simlink_rand(struct wn_simlink *l)
{
	uint64_t z = (l->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double uniform(struct wn_simlink *l)
{
	return (double)(wn_simlink_rand(l) >> 11) * 0x1.0p-53;
}

static bool before(const struct pkt *a, const struct pkt *b)
{
	int32_t d = (int32_t)(a->when - b->when);

	return d < 0 || (d == 0 && a->order < b->order);
}

static void heap_push(struct wn_simlink *l, struct pkt p)
{
	size_t i;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->heap = xrealloc(l->heap, l->cap * sizeof(*l->heap));
	}
	i = l->n++;
	while (i > 0 && before(&p, &l->heap[(i - 1) / 2])) {
		l->heap[i] = l->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	l->heap[i] = p;
}

static struct pkt heap_pop(struct wn_simlink *l)
{
	struct pkt top = l->heap[0], last = l->heap[--l->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->n)
			break;
		if (c + 1 < l->n && before(&l->heap[c + 1], &l->heap[c]))
			c++;
		if (!before(&l->heap[c], &last))
			break;
		l->heap[i] = l->heap[c];
		i = c;
	}
	if (l->n)
		l->heap[i] = last;
	return top;
}

struct wn_simlink *wn_simlink_new(const struct wn_simlink_cfg *cfg)
{
	struct wn_simlink *l = calloc(1, sizeof(*l));

	if (!l)
		abort();
	l->cfg = *cfg;
	l->rng = cfg->seed;
	return l;
}

void wn_simlink_free(struct wn_simlink *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->heap[i].data);
	free(l->heap);
	free(l);
}

void wn_simlink_set_down(struct wn_simlink *l, bool down)
{
	l->down = down;
}

void wn_simlink_set_loss(struct wn_simlink *l, double loss)
{
	l->cfg.loss = loss;
}

static void advance(struct wn_simlink *l, uint32_t now)
{
	if (!l->started) {
		l->started = true;
		l->last_now = now;
		l->now_us = 0;
		l->free_us = 0;
		return;
	}
	l->now_us += (uint64_t)(now - l->last_now) * 1000;
	l->last_now = now;
}

static void enqueue(struct wn_simlink *l, const uint8_t *data, size_t len,
                    uint32_t when)
{
	struct pkt p = {.when = when, .order = l->order++, .len = len};

	p.data = xrealloc(NULL, len ? len : 1);
	memcpy(p.data, data, len);
	heap_push(l, p);
}

void wn_simlink_send(struct wn_simlink *l, const uint8_t *pkt, size_t len,
                     uint32_t now)
{
	uint32_t extra = 0, when;

	advance(l, now);
	l->st.sent++;
	if (l->down || uniform(l) < l->cfg.loss) {
		l->st.lost++;
		return;
	}
	if (l->cfg.rate_Bps) {
		uint64_t start =
		    l->free_us > l->now_us ? l->free_us : l->now_us;
		uint64_t backlog =
		    (start - l->now_us) * l->cfg.rate_Bps / 1000000;
		if (l->cfg.queue_bytes && backlog + len > l->cfg.queue_bytes) {
			l->st.queue_drops++;
			return;
		}
		l->free_us = start + (uint64_t)len * 1000000 / l->cfg.rate_Bps;
		extra = (uint32_t)((l->free_us - l->now_us) / 1000);
	}
	if (l->cfg.jitter_ms)
		extra +=
		    (uint32_t)(wn_simlink_rand(l) % (l->cfg.jitter_ms + 1));
	when = now + l->cfg.delay_ms + extra;
	/* Jitter alone keeps packets in order, as a queue would. */
	if (l->st.sent > 1 && (int32_t)(when - l->last_when) < 0)
		when = l->last_when;
	l->last_when = when;
	if (l->cfg.reorder > 0 && uniform(l) < l->cfg.reorder)
		when += l->cfg.reorder_ms;
	enqueue(l, pkt, len, when);
	if (l->cfg.dup > 0 && uniform(l) < l->cfg.dup) {
		l->st.duplicated++;
		enqueue(l, pkt, len, when + 1);
	}
}

bool wn_simlink_next(const struct wn_simlink *l, uint32_t *when)
{
	if (!l->n)
		return false;
	*when = l->heap[0].when;
	return true;
}

size_t wn_simlink_recv(struct wn_simlink *l, uint32_t now, uint8_t *buf,
                       size_t cap)
{
	struct pkt p;

	if (!l->n || (int32_t)(l->heap[0].when - now) > 0)
		return 0;
	p = heap_pop(l);
	memcpy(buf, p.data, p.len < cap ? p.len : cap);
	free(p.data);
	l->st.delivered++;
	l->st.delivered_bytes += p.len;
	return p.len;
}

void wn_simlink_get_stats(const struct wn_simlink *l,
                          struct wn_simlink_stats *st)
{
	*st = l->st;
}
