/* Internals of the KCP core shared by kcp.c (input, flush, timers) and
 * kcp_queue.c (the application's side: send, recv, segment memory). Not
 * for use outside these two files. */
#ifndef WN_CORE_KCP_INT_H
#define WN_CORE_KCP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/kcp.h"

#define ASK_SEND 1u /* a WASK is due */
#define ASK_TELL 2u /* a WINS is due */

struct link {
	struct link *next, *prev;
};

struct seg {
	struct link link; /* first: a struct link * is a struct seg * */
	uint32_t sn, ts, resendts, rto, fastack, xmit;
	uint32_t len, cap;
	uint8_t frg;
	uint8_t data[];
};

struct queue {
	struct link head;
	size_t n;
};

struct ack {
	uint32_t sn, ts;
};

struct wn_kcp {
	struct wn_kcp_cfg cfg;
	uint32_t mss;
	wn_kcp_output_fn out;
	void *ctx;

	uint32_t snd_una, snd_nxt, rcv_nxt;
	uint32_t ssthresh, cwnd, rmt_wnd;
	uint64_t incr; /* cwnd in bytes, for congestion avoidance */
	int32_t rx_srtt, rx_rttval;
	uint32_t rx_rto, rx_minrto;
	uint32_t current; /* the latest now seen */

	unsigned probe; /* ASK_* */
	bool probe_armed;
	uint32_t ts_probe, probe_wait;

	/* Acks wait for the end of an interval batch that began when the
	 * first of them was queued. */
	uint32_t ack_since;
	bool dead;

	struct queue snd_queue, snd_buf, rcv_buf, rcv_queue;
	size_t snd_bytes; /* data bytes in snd_queue and snd_buf */
	size_t rcv_bytes; /* unread bytes in rcv_queue */
	size_t rcv_off;   /* stream mode: bytes read of rcv_queue's head */

	struct ack *acks;
	size_t nack, ack_cap;

	struct link *free; /* spare segments of cap mss, through link.next */
	size_t nfree, free_max;

	uint8_t *buf; /* headroom + mtu + tailroom */
	size_t pos;   /* bytes of the datagram being built */

	struct wn_kcp_stats st;
};

/* ---- time and sequence arithmetic (both wrap) ---- */

static inline int32_t diff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

/* No timer is ever set further ahead than this (the longest is a window
 * probe, 120 s); a time that seems further ahead is one so far in the past
 * that the difference wrapped, and has long been reached. */
#define WN_KCP_AHEAD_MAX (2 * WN_KCP_PROBE_LIMIT)

/* Returns true once now has reached t. */
static inline bool reached(uint32_t now, uint32_t t)
{
	int32_t d = diff(t, now);

	return d <= 0 || d > WN_KCP_AHEAD_MAX;
}

static inline uint32_t umin(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static inline uint32_t umax(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* ---- queues ---- */

static void q_init(struct queue *q)
{
	q->head.next = q->head.prev = &q->head;
	q->n = 0;
}

static inline struct seg *q_first(const struct queue *q)
{
	return q->n ? (struct seg *)q->head.next : NULL;
}

static inline struct seg *q_last(const struct queue *q)
{
	return q->n ? (struct seg *)q->head.prev : NULL;
}

static void q_insert_after(struct queue *q, struct link *at, struct seg *s)
{
	s->link.prev = at;
	s->link.next = at->next;
	at->next->prev = &s->link;
	at->next = &s->link;
	q->n++;
}

static void q_push(struct queue *q, struct seg *s)
{
	q_insert_after(q, q->head.prev, s);
}

static void q_remove(struct queue *q, struct seg *s)
{
	s->link.prev->next = s->link.next;
	s->link.next->prev = s->link.prev;
	q->n--;
}

#define Q_FOREACH(s, q)                                    \
	for (struct seg *s = (struct seg *)(q)->head.next; \
	     &s->link != &(q)->head; s = (struct seg *)s->link.next)

/* ---- windows ---- */

/* Free receive window advertised to the peer: it shrinks as unread
 * segments pile up in rcv_queue, so a slow reader stalls the sender. */
static inline uint16_t wnd_unused(const struct wn_kcp *k)
{
	if (k->rcv_queue.n >= k->cfg.rcv_wnd)
		return 0;
	return (uint16_t)(k->cfg.rcv_wnd - k->rcv_queue.n);
}

/* Segments that may be in flight: the send window, the peer's window and,
 * unless nc, the congestion window. */
static inline uint32_t cwnd_eff(const struct wn_kcp *k)
{
	uint32_t w = umin(k->cfg.snd_wnd, k->rmt_wnd);

	return k->cfg.nc ? w : umin(w, k->cwnd);
}

static inline bool can_send_new(const struct wn_kcp *k)
{
	return k->snd_queue.n && diff(k->snd_nxt, k->snd_una + cwnd_eff(k)) < 0;
}

static inline bool fast_due(const struct wn_kcp *k, const struct seg *s)
{
	return k->cfg.resend && s->xmit > 0 && s->fastack >= k->cfg.resend &&
	       s->xmit <= WN_KCP_FASTACK_LIMIT;
}

/* ---- kcp_queue.c ---- */

/* Returns a segment able to hold len bytes (zeroed header, cap set), or
 * NULL. Segments of up to mss bytes come from the free list if it has one;
 * every malloc is counted in seg_allocs. */
struct seg *wn_kcp_seg_get(struct wn_kcp *k, uint32_t len);

/* Returns a segment to the free list (bounded), or frees it. */
void wn_kcp_seg_put(struct wn_kcp *k, struct seg *s);

/* Frees every segment of q (teardown). */
void wn_kcp_q_free(struct queue *q);

/* Moves in-order segments from rcv_buf to rcv_queue while the reader's
 * queue has room. */
void wn_kcp_rcv_advance(struct wn_kcp *k);

#endif
