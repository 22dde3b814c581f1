/* The KCP ARQ core: queues, acknowledgement, retransmission, windows.
 *
 * It follows the reference algorithm (skywind3000/kcp ikcp.c, with kcp-go's
 * timestamp-guarded duplicate-ack counting) wherever the peer can observe
 * it, and departs from it where the brief asks:
 *   - no update() polling: flush() sends what is due now and deadline()
 *     says exactly when the next thing falls due;
 *   - a segment's backed-off RTO is capped at WN_KCP_RTO_MAX;
 *   - cwnd starts at 1 (the reference's 0 wastes the first flush);
 *   - bounded memory: send_limit bytes queued, rcv_wnd segments in each of
 *     rcv_buf and rcv_queue, a bounded ack list, segments recycled through
 *     a free list. */
#include <stdlib.h>
#include <string.h>

#include "core/kcp_int.h"
#include "util/err.h"

/* Ack datagrams sent at once after a gap opens (cfg.ack_every): as many
 * as fast resend needs in every kcptun preset (resend 2). */
#define ACK_RUSH 2

/* ---- construction ---- */

int wn_kcp_new(const struct wn_kcp_cfg *cfg, wn_kcp_output_fn out, void *ctx,
               uint32_t now, struct wn_kcp **out_kcp)
{
	struct wn_kcp *k;

	*out_kcp = NULL;
	if (!cfg || !out || cfg->mtu < WN_KCP_MTU_MIN ||
	    cfg->mtu > WN_KCP_MTU_MAX || cfg->snd_wnd == 0 ||
	    cfg->snd_wnd > WN_KCP_WND_MAX || cfg->rcv_wnd == 0 ||
	    cfg->rcv_wnd > WN_KCP_WND_MAX || cfg->dead_link == 0 ||
	    cfg->send_limit < cfg->mtu - WN_KCP_OVERHEAD ||
	    cfg->headroom > WN_KCP_ROOM_MAX || cfg->tailroom > WN_KCP_ROOM_MAX)
		return WN_EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return WN_ENOMEM;
	k->cfg = *cfg;
	if (k->cfg.interval < WN_KCP_INTERVAL_MIN)
		k->cfg.interval = WN_KCP_INTERVAL_MIN;
	if (k->cfg.interval > WN_KCP_INTERVAL_MAX)
		k->cfg.interval = WN_KCP_INTERVAL_MAX;
	k->ack_cap = umax(4 * cfg->rcv_wnd, 1024);
	k->acks = calloc(k->ack_cap, sizeof(*k->acks));
	if (!k->acks)
		goto fail_acks;
	k->buf = malloc(cfg->headroom + cfg->mtu + cfg->tailroom);
	if (!k->buf)
		goto fail_buf;
	k->mss = cfg->mtu - WN_KCP_OVERHEAD;
	k->out = out;
	k->ctx = ctx;
	k->ssthresh = WN_KCP_SSTHRESH_INIT;
	k->cwnd = 1;
	k->incr = k->mss;
	k->rmt_wnd = WN_KCP_RCV_WND_DEFAULT;
	k->rx_rto = WN_KCP_RTO_DEFAULT;
	k->rx_minrto = cfg->nodelay ? WN_KCP_RTO_NODELAY_MIN : WN_KCP_RTO_MIN;
	if (cfg->pacing)
		wn_kcp_pace_init(k, now);
	k->current = now;
	k->rcv_hi = (uint32_t)-1; /* rcv_nxt - 1 */
	k->free_max = (size_t)cfg->snd_wnd + 2 * (size_t)cfg->rcv_wnd + 64;
	q_init(&k->snd_queue);
	q_init(&k->snd_buf);
	q_init(&k->rcv_buf);
	q_init(&k->rcv_queue);
	*out_kcp = k;
	return 0;

fail_buf:
	free(k->acks);
fail_acks:
	free(k);
	return WN_ENOMEM;
}

void wn_kcp_free(struct wn_kcp *k)
{
	if (!k)
		return;
	wn_kcp_q_free(&k->snd_queue);
	wn_kcp_q_free(&k->snd_buf);
	wn_kcp_q_free(&k->rcv_buf);
	wn_kcp_q_free(&k->rcv_queue);
	wn_kcp_shrink(k);
	free(k->buf);
	free(k->acks);
	free(k);
}

/* Arms, advances or disarms the window probe. While the peer advertises a
 * zero window a WASK goes out after 7 s, then at intervals growing x1.5 to
 * 120 s; the WINS it draws (or any segment) carries the window again. */
static void probe_update(struct wn_kcp *k, uint32_t now)
{
	if (k->rmt_wnd != 0) {
		k->probe_armed = false;
		k->probe_wait = 0;
		return;
	}
	if (!k->probe_armed) {
		k->probe_armed = true;
		k->probe_wait = WN_KCP_PROBE_INIT;
		k->ts_probe = now + k->probe_wait;
	} else if (reached(now, k->ts_probe)) {
		if (k->probe_wait < WN_KCP_PROBE_INIT)
			k->probe_wait = WN_KCP_PROBE_INIT;
		k->probe_wait += k->probe_wait / 2;
		if (k->probe_wait > WN_KCP_PROBE_LIMIT)
			k->probe_wait = WN_KCP_PROBE_LIMIT;
		k->ts_probe = now + k->probe_wait;
		k->probe |= ASK_SEND;
	}
}

/* ---- input ---- */

static void update_rtt(struct wn_kcp *k, int32_t rtt)
{
	int64_t rto;

	if (k->rx_srtt == 0) {
		k->rx_srtt = rtt;
		k->rx_rttval = rtt / 2;
	} else {
		int64_t delta = (int64_t)rtt - k->rx_srtt;
		if (delta < 0)
			delta = -delta;
		k->rx_rttval =
		    (int32_t)((3 * (int64_t)k->rx_rttval + delta) / 4);
		k->rx_srtt = (int32_t)((7 * (int64_t)k->rx_srtt + rtt) / 8);
		if (k->rx_srtt < 1)
			k->rx_srtt = 1;
	}
	rto = 4 * (int64_t)k->rx_rttval;
	if (rto < k->cfg.interval)
		rto = k->cfg.interval;
	rto += k->rx_srtt;
	if (rto < k->rx_minrto)
		rto = k->rx_minrto;
	/* A floor relative to the smoothed RTT (0: the reference's rule,
	 * which lets the RTO sit a few ms above a steady RTT, so any
	 * queueing fires spurious retransmissions). */
	if (k->cfg.rto_srtt_pct &&
	    rto < (int64_t)k->rx_srtt * k->cfg.rto_srtt_pct / 100)
		rto = (int64_t)k->rx_srtt * k->cfg.rto_srtt_pct / 100;
	if (rto > WN_KCP_RTO_MAX)
		rto = WN_KCP_RTO_MAX;
	k->rx_rto = (uint32_t)rto;
}

static void shrink_buf(struct wn_kcp *k)
{
	struct seg *s = q_first(&k->snd_buf);

	k->snd_una = s ? s->sn : k->snd_nxt;
}

static void snd_release(struct wn_kcp *k, struct seg *s)
{
	/* Only a confused peer acknowledges what was never sent; the
	 * unsent suffix must stay right all the same. */
	if (s == k->snd_unsent)
		k->snd_unsent = q_next(&k->snd_buf, s);
	q_remove(&k->snd_buf, s);
	if (k->snd_buf.n == 0) {
		k->resend_lb_set = false;
		k->fast_pending = false;
	}
	k->snd_bytes -= s->len;
	wn_kcp_pace_acked(k, s->len);
	wn_kcp_seg_put(k, s);
}

/* The peer acknowledged every sn below una. */
static void parse_una(struct wn_kcp *k, uint32_t una)
{
	struct seg *s;

	while ((s = q_first(&k->snd_buf)) && diff(una, s->sn) > 0)
		snd_release(k, s);
	shrink_buf(k);
}

static void parse_ack(struct wn_kcp *k, uint32_t sn)
{
	if (diff(sn, k->snd_una) < 0 || diff(sn, k->snd_nxt) >= 0)
		return;
	Q_FOREACH (s, &k->snd_buf) {
		if (s->sn == sn) {
			snd_release(k, s);
			break;
		}
		if (diff(sn, s->sn) < 0)
			break;
	}
	shrink_buf(k);
}

/* Counts a duplicate ack against every segment sent before sn and not
 * after ts (kcp-go's guard: a segment resent after the acked one was sent
 * is not presumed lost again). */
static void parse_fastack(struct wn_kcp *k, uint32_t sn, uint32_t ts)
{
	if (diff(sn, k->snd_una) < 0 || diff(sn, k->snd_nxt) >= 0)
		return;
	Q_FOREACH (s, &k->snd_buf) {
		if (diff(sn, s->sn) <= 0)
			break;
		if (diff(s->ts, ts) <= 0) {
			s->fastack++;
			if (fast_due(k, s)) {
				if (!k->fast_pending ||
				    diff(s->sn, k->fast_hi) > 0)
					k->fast_hi = s->sn;
				k->fast_pending = true;
			}
		}
	}
}

static void ack_push(struct wn_kcp *k, uint32_t sn, uint32_t ts)
{
	if (k->nack == k->ack_cap) {
		k->st.ack_overflow++;
		return;
	}
	if (k->nack == 0)
		k->ack_since = k->current;
	k->acks[k->nack].sn = sn;
	k->acks[k->nack].ts = ts;
	k->nack++;
}

/* Stores a PUSH whose sn is in [rcv_nxt, rcv_nxt + rcv_wnd). Returns 0 if
 * it is stored or was already there, WN_ENOMEM if it could not be. */
static int parse_data(struct wn_kcp *k, const struct wn_kcp_hdr *h,
                      const uint8_t *data)
{
	struct link *at = k->rcv_buf.head.prev;
	struct seg *s, *first = q_first(&k->rcv_buf);

	/* New segments arrive in order and go at the tail; retransmissions
	 * fill holes, which sit near the head behind up to a window of
	 * segments: search from the nearer end. */
	if (first &&
	    diff(h->sn, first->sn) < diff(q_last(&k->rcv_buf)->sn, h->sn)) {
		for (at = &k->rcv_buf.head; at->next != &k->rcv_buf.head;
		     at = at->next) {
			struct seg *p = (struct seg *)at->next;
			if (p->sn == h->sn) {
				k->st.drop_dup++;
				return 0;
			}
			if (diff(p->sn, h->sn) > 0)
				break;
		}
	} else {
		for (; at != &k->rcv_buf.head; at = at->prev) {
			struct seg *p = (struct seg *)at;
			if (p->sn == h->sn) {
				k->st.drop_dup++;
				return 0;
			}
			if (diff(h->sn, p->sn) > 0)
				break;
		}
	}
	s = wn_kcp_seg_get(k, h->len);
	if (!s)
		return WN_ENOMEM;
	s->sn = h->sn;
	s->frg = k->cfg.stream ? 0 : h->frg;
	s->len = h->len;
	if (h->len)
		memcpy(s->data, data, h->len);
	q_insert_after(&k->rcv_buf, at, s);
	k->st.in_bytes += h->len;
	wn_kcp_rcv_advance(k);
	return 0;
}

static int input_push(struct wn_kcp *k, const struct wn_kcp_hdr *h,
                      const uint8_t *data)
{
	if (h->len > k->mss) {
		/* No sender of ours writes one, and storing it would cost its
		 * whole length for as long as it waits in rcv_buf. Dropped
		 * unacknowledged, like a segment that never arrived. */
		k->st.drop_large++;
		return 0;
	}
	if (diff(h->sn, k->rcv_nxt + k->cfg.rcv_wnd) >= 0) {
		k->st.drop_window++;
		return 0;
	}
	if (diff(h->sn, k->rcv_nxt) < 0) {
		/* Already delivered: our ack was lost, send it again. */
		k->st.drop_dup++;
		ack_push(k, h->sn, h->ts);
		return 0;
	}
	if (parse_data(k, h, data) < 0)
		return WN_ENOMEM;
	ack_push(k, h->sn, h->ts);
	if (diff(h->sn, k->rcv_hi) > 0) {
		/* Segments went missing before this one: the next two ack
		 * datagrams go at once (fast resend needs two), not after
		 * a whole batch each. */
		if (k->cfg.ack_every && diff(h->sn, k->rcv_hi) > 1)
			k->ack_rush = ACK_RUSH;
		k->rcv_hi = h->sn;
	}
	return 0;
}

/* Slow start and congestion avoidance, as the reference grows cwnd when
 * una advances. */
static void cwnd_grow(struct wn_kcp *k)
{
	uint64_t mss = k->mss;

	if (k->cwnd >= k->rmt_wnd)
		return;
	if (k->cwnd < k->ssthresh) {
		k->cwnd++;
		k->incr += mss;
	} else {
		if (k->incr < mss)
			k->incr = mss;
		k->incr += (mss * mss) / k->incr + mss / 16;
		if ((k->cwnd + 1) * mss <= k->incr)
			k->cwnd = (uint32_t)((k->incr + mss - 1) / mss);
	}
	if (k->cwnd > k->rmt_wnd) {
		k->cwnd = k->rmt_wnd;
		k->incr = k->rmt_wnd * mss;
	}
}

static bool segment_ok(const struct wn_kcp *k, const struct wn_kcp_hdr *h)
{
	if (h->cmd < WN_KCP_CMD_PUSH || h->cmd > WN_KCP_CMD_WINS)
		return false;
	if (h->cmd != WN_KCP_CMD_PUSH)
		return true;
	/* A message the receive window could never hold would wedge the
	 * reader's queue forever. */
	return k->cfg.stream || h->frg < k->cfg.rcv_wnd;
}

int wn_kcp_input(struct wn_kcp *k, const uint8_t *pkt, size_t len, uint32_t now)
{
	uint32_t prev_una = k->snd_una, maxack = 0, latest_ts = 0;
	bool have_ack = false;
	int err = 0;
	size_t off = 0;

	k->current = now;
	if (!pkt || len < WN_KCP_OVERHEAD) {
		k->st.drop_bad++;
		return WN_EPROTO;
	}
	k->st.in_pkts++;
	while (len - off >= WN_KCP_OVERHEAD) {
		struct wn_kcp_hdr h;
		const uint8_t *data;

		wn_kcp_hdr_decode(pkt + off, len - off, &h);
		if (h.conv != k->cfg.conv) {
			k->st.drop_conv++;
			err = WN_EPROTO;
			break;
		}
		off += WN_KCP_OVERHEAD;
		if (h.len > len - off || !segment_ok(k, &h)) {
			k->st.drop_bad++;
			err = WN_EPROTO;
			break;
		}
		data = pkt + off;
		off += h.len;
		k->st.in_segs++;
		k->rmt_wnd = h.wnd;
		parse_una(k, h.una);
		switch (h.cmd) {
		case WN_KCP_CMD_ACK:
			if (diff(now, h.ts) >= 0) {
				update_rtt(k, diff(now, h.ts));
				wn_kcp_pace_rtt(k, (uint32_t)diff(now, h.ts),
				                now);
			}
			parse_ack(k, h.sn);
			if (!have_ack || diff(h.sn, maxack) > 0) {
				maxack = h.sn;
				latest_ts = h.ts;
			}
			have_ack = true;
			break;
		case WN_KCP_CMD_PUSH:
			if (input_push(k, &h, data) < 0)
				err = WN_ENOMEM;
			break;
		case WN_KCP_CMD_WASK:
			k->probe |= ASK_TELL;
			break;
		default: /* WINS: the window was taken above */
			break;
		}
	}
	if (!err && off < len) {
		k->st.drop_bad++; /* a trailing partial header */
		err = WN_EPROTO;
	}
	if (have_ack)
		parse_fastack(k, maxack, latest_ts);
	if (diff(k->snd_una, prev_una) > 0)
		cwnd_grow(k);
	probe_update(k, now);
	return err;
}

/* ---- output ---- */

static void out_flush(struct wn_kcp *k)
{
	if (!k->pos)
		return;
	k->st.out_pkts++;
	k->st.out_bytes += k->pos;
	k->out(k->ctx, k->buf + k->cfg.headroom, k->pos);
	k->pos = 0;
}

/* Appends one segment, first sending the datagram being built if the
 * segment would not fit in mtu. */
static void out_seg(struct wn_kcp *k, const struct wn_kcp_hdr *h,
                    const uint8_t *data)
{
	uint8_t *p;

	if (k->pos + WN_KCP_OVERHEAD + h->len > k->cfg.mtu)
		out_flush(k);
	p = k->buf + k->cfg.headroom + k->pos;
	wn_kcp_hdr_encode(h, p);
	if (data && h->len)
		memcpy(p + WN_KCP_OVERHEAD, data, h->len);
	k->pos += WN_KCP_OVERHEAD + h->len;
}

/* Decides whether s goes out now and updates its timers; returns true if
 * it does. */
static bool seg_due(struct wn_kcp *k, struct seg *s, uint32_t now, bool *lost,
                    bool *fast)
{
	if (s->xmit == 0) {
		/* Without nodelay the first timeout gets an eighth of the
		 * RTO on top, as the reference does. */
		s->rto = k->rx_rto;
		s->resendts =
		    now + s->rto + (k->cfg.nodelay ? 0 : k->rx_rto >> 3);
		return true;
	}
	if (reached(now, s->resendts)) {
		/* Backoff: x2 without nodelay, x1.5 with it. */
		if (k->cfg.nodelay == 0)
			s->rto += umax(s->rto, k->rx_rto);
		else if (k->cfg.nodelay < 2)
			s->rto += s->rto / 2;
		else
			s->rto += k->rx_rto / 2;
		if (s->rto > WN_KCP_RTO_MAX)
			s->rto = WN_KCP_RTO_MAX;
		s->resendts = now + s->rto;
		*lost = true;
		k->st.lost_segs++;
		k->st.retrans_segs++;
		return true;
	}
	if (fast_due(k, s)) {
		s->fastack = 0;
		s->resendts = now + s->rto;
		*fast = true;
		k->st.fast_retrans++;
		k->st.retrans_segs++;
		return true;
	}
	return false;
}

/* Sends s if it is due and the pacer lets it go; returns false if the
 * pacer held it back (the rest of snd_buf waits too). */
static bool send_seg(struct wn_kcp *k, struct wn_kcp_hdr *h, struct seg *p,
                     uint32_t now, bool *lost, bool *fast)
{
	if (k->cfg.pacing &&
	    (p->xmit == 0 || reached(now, p->resendts) || fast_due(k, p)) &&
	    !wn_kcp_pace_take(k, WN_KCP_OVERHEAD + p->len))
		return false; /* the rest when the pacer allows */
	if (!seg_due(k, p, now, lost, fast))
		return true;
	p->xmit++;
	p->ts = now;
	h->frg = p->frg;
	h->ts = p->ts;
	h->sn = p->sn;
	h->len = p->len;
	out_seg(k, h, p->data);
	k->st.out_segs++;
	if (p->xmit >= k->cfg.dead_link)
		k->dead = true;
	return true;
}

/* Notes the resend time of a segment just sent in resend_lb. */
static void lb_note(struct wn_kcp *k, const struct seg *p)
{
	if (!k->resend_lb_set || diff(p->resendts, k->resend_lb) < 0)
		k->resend_lb = p->resendts;
	k->resend_lb_set = true;
}

/* Some timeout may have expired: walks all of snd_buf in order, sending
 * what is due, and recomputes the summaries (snd_unsent, resend_lb,
 * fast_pending) exactly. */
static void send_all(struct wn_kcp *k, struct wn_kcp_hdr *h, uint32_t now,
                     bool *lost, bool *fast)
{
	bool blocked = false;

	k->resend_lb_set = false;
	k->fast_pending = false;
	k->snd_unsent = NULL;
	Q_FOREACH (p, &k->snd_buf) {
		if (!blocked && !send_seg(k, h, p, now, lost, fast))
			blocked = true;
		if (p->xmit == 0) {
			if (!k->snd_unsent)
				k->snd_unsent = p;
			continue;
		}
		lb_note(k, p);
		if (fast_due(k, p)) {
			k->fast_pending = true;
			k->fast_hi = p->sn;
		}
	}
}

/* No timeout has expired (resend_lb is ahead): only segments marked for
 * fast resend (at most up to fast_hi) and the unsent suffix can be due,
 * so only they are visited, in the same order as send_all would. */
static void send_some(struct wn_kcp *k, struct wn_kcp_hdr *h, uint32_t now,
                      bool *lost, bool *fast)
{
	struct seg *p;

	if (k->fast_pending) {
		for (p = q_first(&k->snd_buf);
		     p && p != k->snd_unsent && diff(p->sn, k->fast_hi) <= 0;
		     p = q_next(&k->snd_buf, p)) {
			if (!send_seg(k, h, p, now, lost, fast))
				return;
			lb_note(k, p);
		}
		k->fast_pending = false;
	}
	for (p = k->snd_unsent; p; p = q_next(&k->snd_buf, p)) {
		if (!send_seg(k, h, p, now, lost, fast))
			break;
		lb_note(k, p);
	}
	k->snd_unsent = p;
}

void wn_kcp_flush(struct wn_kcp *k, uint32_t now)
{
	struct wn_kcp_hdr h = {
	    .conv = k->cfg.conv, .wnd = wnd_unused(k), .una = k->rcv_nxt};
	bool lost = false, fast = false;
	uint32_t limit;
	struct seg *s;

	k->current = now;
	if (k->cfg.pacing) {
		bool app_limited =
		    k->snd_queue.n == 0 &&
		    diff(k->snd_nxt, k->snd_una + cwnd_eff(k)) < 0;
		wn_kcp_pace_tick(k, now, app_limited);
		k->pace.blocked = false;
	}
	h.cmd = WN_KCP_CMD_ACK;
	for (size_t i = 0; i < k->nack; i++) {
		/* Every segment's una already acknowledges what is below
		 * rcv_nxt: only acks above it tell the sender something new
		 * (which holes to fill), and the last carries a fresh RTT
		 * sample. kcp-go does the same; on an in-order stream this
		 * turns one ack per segment into one per flush. */
		if (diff(k->acks[i].sn, k->rcv_nxt) < 0 && i + 1 < k->nack)
			continue;
		h.sn = k->acks[i].sn;
		h.ts = k->acks[i].ts;
		out_seg(k, &h, NULL);
	}
	if (k->nack && k->ack_rush)
		k->ack_rush--;
	k->nack = 0;
	h.sn = h.ts = 0;

	probe_update(k, now);
	if (k->probe & ASK_SEND) {
		h.cmd = WN_KCP_CMD_WASK;
		out_seg(k, &h, NULL);
		k->st.probes_sent++;
	}
	if (k->probe & ASK_TELL) {
		h.cmd = WN_KCP_CMD_WINS;
		out_seg(k, &h, NULL);
	}
	k->probe = 0;

	limit = k->snd_una + cwnd_eff(k);
	while (diff(k->snd_nxt, limit) < 0 && pace_room(k) &&
	       (s = q_first(&k->snd_queue))) {
		q_remove(&k->snd_queue, s);
		s->sn = k->snd_nxt++;
		s->xmit = 0;
		s->fastack = 0;
		q_push(&k->snd_buf, s);
		if (!k->snd_unsent)
			k->snd_unsent = s;
	}

	h.cmd = WN_KCP_CMD_PUSH;
	if (k->resend_lb_set && reached(now, k->resend_lb))
		send_all(k, &h, now, &lost, &fast);
	else
		send_some(k, &h, now, &lost, &fast);
	out_flush(k);

	if (fast) {
		uint32_t inflight = k->snd_nxt - k->snd_una;
		k->ssthresh = umax(inflight / 2, WN_KCP_SSTHRESH_MIN);
		k->cwnd = k->ssthresh + k->cfg.resend;
		k->incr = (uint64_t)k->cwnd * k->mss;
	}
	if (lost) {
		k->ssthresh = umax(k->cwnd / 2, WN_KCP_SSTHRESH_MIN);
		k->cwnd = 1;
		k->incr = k->mss;
	}
	if (k->cwnd < 1) {
		k->cwnd = 1;
		k->incr = k->mss;
	}
}

/* Lowers *best to t if t is earlier; returns true if t has been reached. */
static bool earlier(uint32_t now, uint32_t t, uint32_t *best)
{
	if (reached(now, t))
		return true;
	if (diff(t, *best) < 0)
		*best = t;
	return false;
}

/* How long acks may wait after the first of them was queued. The
 * reference waits `interval`. With ack_every the wait is bounded by a
 * quarter of the RTT as well: on a path much shorter than `interval` (a
 * stream carrier on a LAN) acks held for the whole interval would stall
 * the peer between batches. */
static uint32_t ack_wait(const struct wn_kcp *k)
{
	uint32_t w = k->cfg.interval;

	if (k->cfg.ack_every && k->rx_srtt > 0)
		w = umin(w, umax((uint32_t)k->rx_srtt / 4, 1));
	return w;
}

uint32_t wn_kcp_deadline(const struct wn_kcp *k, uint32_t now)
{
	uint32_t best = now + WN_KCP_IDLE_MS;

	/* New data the windows allow, a fast resend, a probe or a window
	 * update go at once (kcp-go flushes on write too); acks wait for the
	 * end of their interval batch unless they pile up. */
	if (k->probe || k->nack >= k->ack_cap / 2 ||
	    (k->cfg.ack_every &&
	     (k->nack >= k->cfg.ack_every || (k->nack && k->ack_rush))))
		return now;
	bool push = k->resend_lb_set && earlier(now, k->resend_lb, &best);
	push = push || can_send_new(k) || k->snd_unsent || k->fast_pending;
	if (push) {
		/* A paced sender waits for its tokens, not for nothing. */
		if (!k->cfg.pacing || !k->pace.blocked)
			return now;
		if (earlier(now, wn_kcp_pace_next(k, now), &best))
			return now;
	}
	if (k->nack && earlier(now, k->ack_since + ack_wait(k), &best))
		return now;
	if (k->probe_armed && k->rmt_wnd == 0 &&
	    earlier(now, k->ts_probe, &best))
		return now;
	return best;
}

void wn_kcp_kick(struct wn_kcp *k, uint32_t now)
{
	Q_FOREACH (s, &k->snd_buf) {
		if (s->xmit == 0)
			continue;
		s->rto = k->rx_rto;
		s->resendts = now;
		k->resend_lb = now;
		k->resend_lb_set = true;
	}
}

int wn_kcp_is_dead(const struct wn_kcp *k)
{
	return k->dead;
}

void wn_kcp_get_stats(const struct wn_kcp *k, struct wn_kcp_stats *st)
{
	*st = k->st;
	st->srtt_ms = (uint32_t)k->rx_srtt;
	st->rto_ms = k->rx_rto;
	st->cwnd = k->cwnd;
	st->rmt_wnd = k->rmt_wnd;
	st->seg_spare = (uint32_t)k->nfree;
}
