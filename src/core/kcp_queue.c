/* The application's side of the KCP core: send and receive queues and the
 * segment memory behind them. */
#include <stdlib.h>
#include <string.h>

#include "core/kcp_int.h"
#include "util/err.h"

/* ---- segments ---- */

struct seg *wn_kcp_seg_get(struct wn_kcp *k, uint32_t len)
{
	struct seg *s;
	/* Data segments get a whole mss so they can be reused from the free
	 * list; an empty one (a zero-length message) needs only its header,
	 * so a peer's empty segments cost it what they cost us. */
	uint32_t cap = len ? umax(len, k->mss) : 0;

	if (len <= k->mss && k->free) {
		cap = k->mss;
		s = (struct seg *)k->free;
		k->free = s->link.next;
		k->nfree--;
	} else {
		s = malloc(sizeof(*s) + cap);
		if (!s)
			return NULL;
		k->st.seg_allocs++;
		k->st.seg_mem += sizeof(*s) + cap;
	}
	memset(s, 0, sizeof(*s));
	s->cap = cap;
	return s;
}

void wn_kcp_seg_put(struct wn_kcp *k, struct seg *s)
{
	if (s->cap == k->mss && k->nfree < k->free_max) {
		s->link.next = k->free;
		k->free = &s->link;
		k->nfree++;
	} else {
		k->st.seg_mem -= sizeof(*s) + s->cap;
		free(s);
	}
}

void wn_kcp_shrink(struct wn_kcp *k)
{
	while (k->free) {
		struct link *l = k->free;
		k->free = l->next;
		k->st.seg_mem -= sizeof(struct seg) + k->mss;
		free(l);
	}
	k->nfree = 0;
}

void wn_kcp_q_free(struct queue *q)
{
	while (q->n) {
		struct seg *s = q_first(q);
		q_remove(q, s);
		free(s);
	}
}

/* ---- send side ---- */

size_t wn_kcp_send_space(const struct wn_kcp *k)
{
	return k->snd_bytes < k->cfg.send_limit
	           ? k->cfg.send_limit - k->snd_bytes
	           : 0;
}

size_t wn_kcp_inflight(const struct wn_kcp *k)
{
	return k->snd_buf.n;
}

size_t wn_kcp_queued(const struct wn_kcp *k)
{
	return k->snd_queue.n;
}

static ssize_t send_stream(struct wn_kcp *k, const uint8_t *data, size_t len)
{
	size_t done = 0;
	struct seg *s = q_last(&k->snd_queue);

	len = len < wn_kcp_send_space(k) ? len : wn_kcp_send_space(k);
	/* Fill the last queued segment up to mss first (kcp-go's stream
	 * mode), so segments go out full. */
	if (s && s->len < k->mss) {
		size_t n = k->mss - s->len;
		if (n > len)
			n = len;
		memcpy(s->data + s->len, data, n);
		s->len += (uint32_t)n;
		done = n;
	}
	while (done < len) {
		size_t n = len - done < k->mss ? len - done : k->mss;
		s = wn_kcp_seg_get(k, k->mss);
		if (!s)
			break;
		memcpy(s->data, data + done, n);
		s->len = (uint32_t)n;
		q_push(&k->snd_queue, s);
		done += n;
	}
	k->snd_bytes += done;
	if (done == 0 && len > 0)
		return WN_ENOMEM;
	return (ssize_t)done;
}

static ssize_t send_message(struct wn_kcp *k, const uint8_t *data, size_t len)
{
	size_t count = (len + k->mss - 1) / k->mss; /* len > 0 */
	struct queue tmp;

	if (count > WN_KCP_MSG_FRAGS_MAX || count > k->cfg.rcv_wnd)
		return WN_EINVAL;
	if (len > wn_kcp_send_space(k))
		return 0;
	q_init(&tmp);
	for (size_t i = 0; i < count; i++) {
		size_t off = i * k->mss;
		size_t n = len - off < k->mss ? len - off : k->mss;
		struct seg *s = wn_kcp_seg_get(k, k->mss);
		if (!s) {
			while (tmp.n) {
				struct seg *f = q_first(&tmp);
				q_remove(&tmp, f);
				wn_kcp_seg_put(k, f);
			}
			return WN_ENOMEM;
		}
		if (n)
			memcpy(s->data, data + off, n);
		s->len = (uint32_t)n;
		s->frg = (uint8_t)(count - i - 1);
		q_push(&tmp, s);
	}
	while (tmp.n) {
		struct seg *s = q_first(&tmp);
		q_remove(&tmp, s);
		q_push(&k->snd_queue, s);
	}
	k->snd_bytes += len;
	return (ssize_t)len;
}

ssize_t wn_kcp_send(struct wn_kcp *k, const uint8_t *data, size_t len)
{
	ssize_t r;

	if (len == 0)
		return 0;
	r = k->cfg.stream ? send_stream(k, data, len)
	                  : send_message(k, data, len);
	return r;
}

/* ---- receive side ---- */

/* Moves in-order segments from rcv_buf to rcv_queue while the reader's
 * queue has room. Stream mode drops empty segments on the way: they carry
 * nothing and would only narrow the window. */
void wn_kcp_rcv_advance(struct wn_kcp *k)
{
	struct seg *s;

	while ((s = q_first(&k->rcv_buf)) && s->sn == k->rcv_nxt &&
	       k->rcv_queue.n < k->cfg.rcv_wnd) {
		q_remove(&k->rcv_buf, s);
		k->rcv_nxt++;
		if (k->cfg.stream && s->len == 0) {
			wn_kcp_seg_put(k, s);
			continue;
		}
		k->rcv_bytes += s->len;
		q_push(&k->rcv_queue, s);
	}
}

/* Message mode: length of the first complete message in rcv_queue, or -1
 * if it has not all arrived. */
static ssize_t peek_message(const struct wn_kcp *k)
{
	const struct seg *s = q_first(&k->rcv_queue);
	size_t total = 0;

	if (!s)
		return -1;
	if (s->frg == 0)
		return s->len;
	if (k->rcv_queue.n < (size_t)s->frg + 1)
		return -1;
	Q_FOREACH (p, &k->rcv_queue) {
		total += p->len;
		if (p->frg == 0)
			return (ssize_t)total;
	}
	return -1;
}

size_t wn_kcp_readable(const struct wn_kcp *k)
{
	ssize_t n;

	if (k->cfg.stream)
		return k->rcv_bytes;
	n = peek_message(k);
	return n < 0 ? 0 : (size_t)n;
}

ssize_t wn_kcp_recv(struct wn_kcp *k, uint8_t *buf, size_t cap)
{
	bool was_full = k->rcv_queue.n >= k->cfg.rcv_wnd;
	size_t done = 0;
	struct seg *s;

	if (k->cfg.stream) {
		if (k->rcv_bytes == 0)
			return WN_EAGAIN;
		while (done < cap && (s = q_first(&k->rcv_queue))) {
			size_t n = s->len - k->rcv_off;
			if (n > cap - done)
				n = cap - done;
			memcpy(buf + done, s->data + k->rcv_off, n);
			done += n;
			k->rcv_off += n;
			if (k->rcv_off == s->len) {
				q_remove(&k->rcv_queue, s);
				wn_kcp_seg_put(k, s);
				k->rcv_off = 0;
			}
		}
		k->rcv_bytes -= done;
	} else {
		ssize_t size = peek_message(k);
		if (size < 0)
			return WN_EAGAIN;
		if ((size_t)size > cap)
			return WN_ENOSPC;
		for (;;) {
			uint8_t frg;
			s = q_first(&k->rcv_queue);
			if (s->len)
				memcpy(buf + done, s->data, s->len);
			done += s->len;
			frg = s->frg;
			q_remove(&k->rcv_queue, s);
			wn_kcp_seg_put(k, s);
			if (frg == 0)
				break;
		}
		k->rcv_bytes -= done;
	}
	wn_kcp_rcv_advance(k);
	/* The peer saw a zero window and waits for a probe answer: tell it
	 * at once that the window is open again. */
	if (was_full && k->rcv_queue.n < k->cfg.rcv_wnd)
		k->probe |= ASK_TELL;
	return (ssize_t)done;
}
