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

/* The pacer (kcp_pace.c): a delivery-rate estimate, a token bucket that
 * spaces PUSH segments at a multiple of it, and an in-flight cap of two
 * estimated bandwidth-delay products. Off unless cfg.pacing. */
#define PACE_SAMPLES 10

struct pacer {
	uint64_t delivered;    /* data bytes acknowledged, ever */
	uint64_t sample_bytes; /* delivered at the sample's start */
	uint32_t sample_start; /* ms */
	bool sample_app_limited;
	uint64_t bw[PACE_SAMPLES]; /* recent rate samples, bytes/s */
	unsigned nbw, ibw;
	uint64_t btl_bw;       /* max of the samples */
	uint64_t startup_bw;   /* startup: the best seen 3 samples ago */
	unsigned startup_flat; /* samples without 25% growth */
	bool startup;
	uint32_t min_rtt, min_rtt_at;
	double tokens;      /* bytes we may send now */
	uint32_t tokens_at; /* ms */
	bool blocked;       /* a PUSH waited for tokens ... */
	uint32_t want;      /* ... and needed this many */
};

struct wn_kcp {
	struct wn_kcp_cfg cfg;
	struct pacer pace;
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
	/* With cfg.ack_every: the highest sn received, and how many more
	 * flushes send their acks at once because a gap just opened (the
	 * sender needs `resend` ack datagrams beyond it to resend early). */
	uint32_t rcv_hi;
	unsigned ack_rush;
	bool dead;

	/* What flush and deadline need without walking snd_buf, which holds
	 * a whole window (thousands of segments on a long fat path):
	 *   snd_unsent: the first segment of snd_buf never sent, or NULL
	 *     (unsent segments are always a suffix of snd_buf);
	 *   resend_lb: no sent segment's resendts is earlier than this (a
	 *     lower bound: acks remove segments without raising it; the
	 *     walk that reaches it recomputes it exactly); only while
	 *     resend_lb_set;
	 *   fast_pending: some segment may be due for fast resend, none of
	 *     them beyond sn fast_hi. */
	struct seg *snd_unsent;
	uint32_t resend_lb;
	bool resend_lb_set;
	bool fast_pending;
	uint32_t fast_hi;

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

static inline void q_init(struct queue *q)
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

/* The segment after s in q, or NULL at the end. */
static inline struct seg *q_next(const struct queue *q, const struct seg *s)
{
	return s->link.next != &q->head ? (struct seg *)s->link.next : NULL;
}

static inline void q_insert_after(struct queue *q, struct link *at,
                                  struct seg *s)
{
	s->link.prev = at;
	s->link.next = at->next;
	at->next->prev = &s->link;
	at->next = &s->link;
	q->n++;
}

static inline void q_push(struct queue *q, struct seg *s)
{
	q_insert_after(q, q->head.prev, s);
}

static inline void q_remove(struct queue *q, struct seg *s)
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
uint32_t wn_kcp_pace_cap(const struct wn_kcp *k);

static inline uint32_t cwnd_eff(const struct wn_kcp *k)
{
	uint32_t w = umin(k->cfg.snd_wnd, k->rmt_wnd);

	return k->cfg.nc ? w : umin(w, k->cwnd);
}

/* The pacer's in-flight cap counts segments not yet acknowledged (a
 * selectively acked segment no longer counts), unlike the windows, which
 * count from the oldest unacknowledged one. */
static inline bool pace_room(const struct wn_kcp *k)
{
	return !k->cfg.pacing || k->snd_buf.n < wn_kcp_pace_cap(k);
}

static inline bool can_send_new(const struct wn_kcp *k)
{
	return k->snd_queue.n &&
	       diff(k->snd_nxt, k->snd_una + cwnd_eff(k)) < 0 && pace_room(k);
}

static inline bool fast_due(const struct wn_kcp *k, const struct seg *s)
{
	return k->cfg.resend && s->xmit > 0 && s->fastack >= k->cfg.resend &&
	       s->xmit <= WN_KCP_FASTACK_LIMIT;
}

/* ---- kcp_pace.c ---- */

void wn_kcp_pace_init(struct wn_kcp *k, uint32_t now);
/* bytes of data were acknowledged. */
void wn_kcp_pace_acked(struct wn_kcp *k, uint32_t bytes);
/* An RTT sample. */
void wn_kcp_pace_rtt(struct wn_kcp *k, uint32_t rtt, uint32_t now);
/* Start of a flush: refills tokens, closes a rate sample when due. */
void wn_kcp_pace_tick(struct wn_kcp *k, uint32_t now, bool app_limited);
/* May a PUSH of `bytes` go now? Takes its tokens if so. */
bool wn_kcp_pace_take(struct wn_kcp *k, uint32_t bytes);
/* When the pacer lets the next PUSH go (only while blocked). */
uint32_t wn_kcp_pace_next(const struct wn_kcp *k, uint32_t now);

/* ---- kcp_queue.c ---- */

/* Returns a segment able to hold len bytes (zeroed header, cap set), or
 * NULL. Segments of up to mss bytes come from the free list if it has one;
 * otherwise a data segment gets max(len, mss) bytes and an empty one none.
 * Every malloc is counted in seg_allocs, its bytes in seg_mem. */
struct seg *wn_kcp_seg_get(struct wn_kcp *k, uint32_t len);

/* Returns a segment to the free list (bounded), or frees it. */
void wn_kcp_seg_put(struct wn_kcp *k, struct seg *s);

/* Frees every segment of q (teardown). */
void wn_kcp_q_free(struct queue *q);

/* Moves in-order segments from rcv_buf to rcv_queue while the reader's
 * queue has room. */
void wn_kcp_rcv_advance(struct wn_kcp *k);

#endif
