/* The smux frame scheduler behind wn_smux_pull.
 *
 * Control frames go first, in the order they were asked for: refusals, the
 * keepalive NOP, then per stream its SYN, UPD and reset. Data goes only once
 * every control frame is out, so a stream's SYN always precedes its data.
 * Data is scheduled round robin over the streams on m->ready: the stream at
 * the head sends one frame (up to max_frame bytes, within its window and the
 * room left), then goes to the tail if it has more. A stream's FIN follows
 * its last byte. */
#include "core/smux.h"
#include "core/smux_int.h"
#include "util/err.h"
#include "util/rw.h"

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

static void put_hdr(struct wn_smux *m, struct wn_wr *wr, uint8_t cmd,
                    uint32_t sid, uint16_t len)
{
	struct wn_smux_hdr h = {
	    .ver = (uint8_t)m->cfg.version, .cmd = cmd, .len = len, .sid = sid};

	wn_smux_hdr_encode(wr, &h);
}

/* Writes our reset of sid: an RST with its reason, or in compat mode a FIN.
 * Returns 0, or WN_ENOSPC (nothing written) if it does not fit. */
static int put_reset(struct wn_smux *m, struct wn_wr *wr, uint32_t sid,
                     uint32_t reason)
{
	if (m->cfg.compat) {
		if (wn_wr_space(wr) < WN_SMUX_HDR_LEN)
			return WN_ENOSPC;
		put_hdr(m, wr, WN_SMUX_FIN, sid, 0);
		return 0;
	}
	if (wn_wr_space(wr) < WN_SMUX_HDR_LEN + WN_SMUX_RST_LEN)
		return WN_ENOSPC;
	put_hdr(m, wr, WN_SMUX_RST, sid, WN_SMUX_RST_LEN);
	wn_wr_u32le(wr, reason);
	return 0;
}

/* The control frames one stream owes. Returns 0 when all are written, or
 * WN_ENOSPC with the rest still flagged. */
static int put_stream_ctrl(struct wn_smux *m, struct wn_wr *wr,
                           struct wn_smux_stream *s)
{
	const uint32_t gone =
	    WN_SMUX_SF_RESET | WN_SMUX_SF_FIN_RECV | WN_SMUX_SF_FORGOTTEN;

	if (s->flags & WN_SMUX_SF_SYN) {
		if (wn_wr_space(wr) < WN_SMUX_HDR_LEN)
			return WN_ENOSPC;
		put_hdr(m, wr, WN_SMUX_SYN, s->sid, 0);
		s->flags &= ~(uint32_t)WN_SMUX_SF_SYN;
	}
	if ((s->flags & WN_SMUX_SF_UPD) && !(s->flags & gone)) {
		if (wn_wr_space(wr) < WN_SMUX_HDR_LEN + WN_SMUX_UPD_LEN)
			return WN_ENOSPC;
		/* consumed is reported mod 2^32, as smux counts it. */
		put_hdr(m, wr, WN_SMUX_UPD, s->sid, WN_SMUX_UPD_LEN);
		wn_wr_u32le(wr, (uint32_t)s->consumed);
		wn_wr_u32le(wr, wn_smuxi_upd_window(m, s));
	}
	s->flags &= ~(uint32_t)WN_SMUX_SF_UPD;
	if (s->flags & WN_SMUX_SF_RST) {
		if (put_reset(m, wr, s->sid, s->reason))
			return WN_ENOSPC;
		s->flags &= ~(uint32_t)WN_SMUX_SF_RST;
		if (m->cfg.compat)
			s->flags |= WN_SMUX_SF_FIN_SENT;
	}
	return 0;
}

/* Returns 1 when no control frame is left, 0 if one did not fit. */
static int put_ctrl(struct wn_smux *m, struct wn_wr *wr)
{
	while (m->refused_head < m->nrefused) {
		const struct wn_smux_refusal *r = &m->refused[m->refused_head];
		if (put_reset(m, wr, r->sid, r->reason))
			return 0;
		m->refused_head++;
	}
	m->refused_head = 0;
	m->nrefused = 0;
	if (m->nop) {
		if (wn_wr_space(wr) < WN_SMUX_HDR_LEN)
			return 0;
		put_hdr(m, wr, WN_SMUX_NOP, 0, 0);
		m->nop = 0;
	}
	while (!wn_smuxi_list_empty(&m->ctrl)) {
		struct wn_smux_stream *s = WN_SMUX_OF(m->ctrl.next, ctrl);
		if (put_stream_ctrl(m, wr, s))
			return 0;
		wn_smuxi_unlink(&s->ctrl);
		/* A compat reset is our FIN: the stream may be done. */
		wn_smuxi_sched(m, s);
		wn_smuxi_reap(m, s);
	}
	return 1;
}

/* A turn of the stream at the head of the round robin: up to max_frame
 * bytes, as one frame, or as several when pulls with little room cut it
 * short; the stream keeps the head until its turn is complete, so that
 * streams get equal bytes, not equal frames, whatever the pulls' sizes.
 * Returns 0 when the turn is over, or WN_ENOSPC when the room is. */
static int put_data_turn(struct wn_smux *m, struct wn_wr *wr,
                         struct wn_smux_stream *s)
{
	size_t queued = wn_bufq_len(&s->sendq), n, want;
	size_t room = wn_wr_space(wr);
	size_t win = wn_smuxi_window(m, s);
	uint8_t *p;

	if (queued && win == 0)
		return 0; /* not ready after all: sched takes it off */
	if (queued) {
		want = min_sz(min_sz(queued, m->cfg.max_frame - s->turn), win);
		if (want == 0)
			return 0; /* the turn is used up */
		if (room <= WN_SMUX_HDR_LEN)
			return WN_ENOSPC;
		n = min_sz(want, room - WN_SMUX_HDR_LEN);
		put_hdr(m, wr, WN_SMUX_PSH, s->sid, (uint16_t)n);
		p = wn_wr_ptr(wr, n);
		wn_bufq_read(&s->sendq, p, n);
		s->sent += (uint32_t)n;
		s->turn += (uint32_t)n;
		queued -= n;
		if ((s->flags & WN_SMUX_SF_WANT_WR) &&
		    queued <= m->cfg.stream_send_limit / 2) {
			s->flags &= ~(uint32_t)WN_SMUX_SF_WANT_WR;
			wn_smuxi_push_tail(&m->writable, &s->wr);
		}
		if (!queued)
			wn_smuxi_drained(m, s);
		if (n < want)
			return WN_ENOSPC;
	}
	if (!queued && (s->flags & WN_SMUX_SF_FIN_QUEUED) &&
	    !(s->flags & WN_SMUX_SF_FIN_SENT)) {
		if (wn_wr_space(wr) < WN_SMUX_HDR_LEN)
			return WN_ENOSPC;
		put_hdr(m, wr, WN_SMUX_FIN, s->sid, 0);
		s->flags |= WN_SMUX_SF_FIN_SENT;
		/* wn_smux_stop: the RST goes with the next control frames,
		 * so the peer has all of our direction before it. */
		if ((s->flags & WN_SMUX_SF_STOP) &&
		    !(s->flags & WN_SMUX_SF_RESET)) {
			s->flags &= ~(uint32_t)WN_SMUX_SF_STOP;
			s->flags |= WN_SMUX_SF_RST;
		}
	}
	return 0;
}

static void put_data(struct wn_smux *m, struct wn_wr *wr)
{
	while (!wn_smuxi_list_empty(&m->ready)) {
		struct wn_smux_stream *s = WN_SMUX_OF(m->ready.next, ready);
		if (put_data_turn(m, wr, s))
			return;
		/* Turn over: to the tail if it has more to send. */
		wn_smuxi_unlink(&s->ready);
		s->turn = 0;
		wn_smuxi_sched(m, s);
		wn_smuxi_reap(m, s);
	}
}

static void fire_writable(struct wn_smux *m)
{
	m->in_cb = 1;
	while (!wn_smuxi_list_empty(&m->writable)) {
		struct wn_smux_stream *s = WN_SMUX_OF(m->writable.next, wr);
		uint32_t sid = s->sid;
		/* Unlinked first: the callback may free any stream. */
		wn_smuxi_unlink(&s->wr);
		if (m->cb.on_writable)
			m->cb.on_writable(m->cb.ctx, sid);
	}
	m->in_cb = 0;
}

size_t wn_smux_pull(struct wn_smux *m, uint8_t *buf, size_t cap)
{
	struct wn_wr wr;

	if (m->in_cb || !buf || cap == 0)
		return 0;
	wn_wr_init(&wr, buf, cap);
	if (put_ctrl(m, &wr))
		put_data(m, &wr);
	wn_smuxi_trim(m, WN_SMUX_DRAINED_MAX);
	fire_writable(m);
	return wn_wr_len(&wr);
}
