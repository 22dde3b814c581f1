/* The smux frame parser: bytes from the pipe, split anywhere, into stream
 * events. Headers and the short UPD/RST payloads are collected in a small
 * buffer; PSH payloads pass straight through to on_data without a copy.
 *
 * Callbacks may forget (and so free) any stream, the one being reported
 * included, so no stream pointer is used after a callback returns: the
 * stream is looked up again by id. */
#include <string.h>

#include "core/smux.h"
#include "core/smux_int.h"
#include "util/err.h"

static void enter_cb(struct wn_smux *m)
{
	m->in_cb = 1;
}

static void leave_cb(struct wn_smux *m)
{
	m->in_cb = 0;
}

/* Records why the session fails; returns err. */
static int fail(struct wn_smux *m, int err, const char *why)
{
	m->why = why;
	return err;
}

/* Can the engine still be given data for s? */
static int takes_data(const struct wn_smux_stream *s)
{
	return s && !(s->flags & (WN_SMUX_SF_RESET | WN_SMUX_SF_FORGOTTEN |
	                          WN_SMUX_SF_FIN_RECV));
}

static int refuse(struct wn_smux *m, uint32_t sid, uint32_t reason)
{
	if (wn_smuxi_refuse(m, sid, reason))
		return fail(m, WN_ENOMEM,
		            "too many refused streams unanswered");
	return 0;
}

static int on_syn(struct wn_smux *m, uint32_t sid)
{
	struct wn_smux_stream *s;
	uint32_t rc = 0;

	/* Each side opens ids of its own parity (client odd, server even),
	 * and 0 is nobody's. smux does not check; a peer that breaks this
	 * could collide with our own streams. */
	if (sid == 0 || (sid & 1) == (m->cfg.client ? 1u : 0u))
		return fail(m, WN_EPROTO, "SYN with id 0 or of our parity");
	/* smux never reuses an id, so a SYN for a live one is a broken peer
	 * (smux itself would ignore it). */
	if (wn_smuxi_find(m, sid))
		return fail(m, WN_EPROTO, "SYN for a live stream");
	if (m->nstreams >= m->cfg.max_streams)
		return refuse(m, sid, WN_SMUX_REASON_LIMIT);
	s = wn_smuxi_add(m, sid);
	if (!s)
		return fail(m, WN_ENOMEM, "out of memory");
	/* In the table before on_open, so that the engine may already act on
	 * it from inside the callback. */
	if (m->cb.on_open) {
		enter_cb(m);
		rc = m->cb.on_open(m->cb.ctx, sid);
		leave_cb(m);
	}
	s = wn_smuxi_find(m, sid);
	if (rc != 0) {
		if (s)
			wn_smuxi_destroy(m, s);
		return refuse(m, sid, rc);
	}
	if (s && !(s->flags & (WN_SMUX_SF_RESET | WN_SMUX_SF_FORGOTTEN))) {
		wn_smuxi_open_window(m, s);
		wn_smuxi_sched(m, s);
	}
	return 0;
}

static void on_fin(struct wn_smux *m, uint32_t sid)
{
	struct wn_smux_stream *s = wn_smuxi_find(m, sid);

	/* FIN for an unknown stream: smux ignores it too. */
	if (!s || (s->flags & (WN_SMUX_SF_FIN_RECV | WN_SMUX_SF_RESET)))
		return;
	s->flags |= WN_SMUX_SF_FIN_RECV;
	s->flags &= ~(uint32_t)WN_SMUX_SF_UPD; /* nothing more will come */
	wn_smuxi_sched(m, s);
	if ((s->flags & WN_SMUX_SF_FORGOTTEN) || !m->cb.on_fin)
		return;
	enter_cb(m);
	m->cb.on_fin(m->cb.ctx, sid);
	leave_cb(m);
}

static int on_upd(struct wn_smux *m, uint32_t sid, uint32_t consumed,
                  uint32_t window)
{
	struct wn_smux_stream *s = wn_smuxi_find(m, sid);

	if (!s || (s->flags & WN_SMUX_SF_RESET))
		return 0;
	/* The peer cannot have consumed more than we sent (smux fails the
	 * stream's next write with ErrConsumed). */
	if ((int32_t)(s->sent - consumed) < 0)
		return fail(m, WN_EPROTO, "UPD acknowledges bytes never sent");
	s->peer_consumed = consumed;
	s->peer_window = window;
	wn_smuxi_sched(m, s);
	return 0;
}

static void on_rst(struct wn_smux *m, uint32_t sid, uint32_t reason)
{
	struct wn_smux_stream *s = wn_smuxi_find(m, sid);

	/* Unknown, or already reset (resets may cross): nothing to do. */
	if (!s || (s->flags & WN_SMUX_SF_RESET))
		return;
	wn_smuxi_do_reset(m, s, 0, reason);
	if (s->flags & WN_SMUX_SF_FORGOTTEN) {
		wn_smuxi_reap(m, s);
		return;
	}
	if (!m->cb.on_reset)
		return;
	enter_cb(m);
	m->cb.on_reset(m->cb.ctx, sid, reason);
	leave_cb(m);
}

/* A PSH header: check the payload against the stream's v2 window before any
 * of it is delivered. */
static int on_psh(struct wn_smux *m, const struct wn_smux_hdr *h)
{
	const struct wn_smux_stream *s = wn_smuxi_find(m, h->sid);
	uint64_t limit;

	if (m->cfg.version != 2 || !takes_data(s))
		return 0;
	/* What we allowed: the initial guess, or the latest consumption plus
	 * our window, whichever is larger (the peer may still act on the
	 * guess until our first UPD reaches it). */
	limit = s->consumed + m->cfg.stream_window;
	if (limit < WN_SMUX_INITIAL_WINDOW)
		limit = WN_SMUX_INITIAL_WINDOW;
	if (s->recv + h->len > limit)
		return fail(m, WN_EPROTO, "data beyond the stream's window");
	return 0;
}

static void deliver(struct wn_smux *m, uint32_t sid, const uint8_t *p, size_t n)
{
	struct wn_smux_stream *s = wn_smuxi_find(m, sid);

	/* Data for a stream that is gone, reset or forgotten is dropped, as
	 * smux drops data for a closed stream. */
	if (!takes_data(s))
		return;
	s->recv += n;
	if (!m->cb.on_data) {
		s->consumed += n;
		return;
	}
	m->recv_pending += n;
	enter_cb(m);
	m->cb.on_data(m->cb.ctx, sid, p, n);
	leave_cb(m);
}

/* A whole header is in in_buf. */
static int on_header(struct wn_smux *m)
{
	struct wn_smux_hdr *h = &m->in_hdr;

	wn_smux_hdr_decode(m->in_buf, h);
	if (wn_smux_hdr_check(h, m->cfg.version, !m->cfg.compat, &m->why))
		return WN_EPROTO;
	switch (h->cmd) {
	case WN_SMUX_SYN:
		return on_syn(m, h->sid);
	case WN_SMUX_FIN:
		on_fin(m, h->sid);
		return 0;
	case WN_SMUX_PSH:
		if (h->len == 0)
			return 0;
		m->in_left = h->len;
		m->in_state = WN_SMUX_IN_DATA;
		return on_psh(m, h);
	case WN_SMUX_UPD:
	case WN_SMUX_RST:
		m->in_state = WN_SMUX_IN_CTRL;
		return 0;
	default: /* NOP */
		return 0;
	}
}

/* A whole UPD or RST payload is in in_buf. */
static int on_ctrl_payload(struct wn_smux *m)
{
	const struct wn_smux_hdr *h = &m->in_hdr;

	m->in_state = WN_SMUX_IN_HDR;
	if (h->cmd == WN_SMUX_UPD)
		return on_upd(m, h->sid, wn_get_u32le(m->in_buf),
		              wn_get_u32le(m->in_buf + 4));
	on_rst(m, h->sid, wn_get_u32le(m->in_buf));
	return 0;
}

/* Collects up to `want` bytes into in_buf; returns how many it took. */
static size_t collect(struct wn_smux *m, size_t want, const uint8_t *p,
                      size_t len)
{
	size_t k = want - m->in_have;

	if (k > len)
		k = len;
	memcpy(m->in_buf + m->in_have, p, k);
	m->in_have += k;
	return k;
}

int wn_smux_input(struct wn_smux *m, const uint8_t *data, size_t len)
{
	size_t off = 0, k;
	int rc = 0;

	if (m->in_cb)
		return WN_EINVAL;
	if (m->err)
		return m->err;
	while (off < len && rc == 0) {
		switch (m->in_state) {
		case WN_SMUX_IN_HDR:
			off +=
			    collect(m, WN_SMUX_HDR_LEN, data + off, len - off);
			if (m->in_have < WN_SMUX_HDR_LEN)
				break;
			m->in_have = 0;
			rc = on_header(m);
			break;
		case WN_SMUX_IN_CTRL:
			off += collect(m, m->in_hdr.len, data + off, len - off);
			if (m->in_have < m->in_hdr.len)
				break;
			m->in_have = 0;
			rc = on_ctrl_payload(m);
			break;
		case WN_SMUX_IN_DATA:
			k = len - off < m->in_left ? len - off : m->in_left;
			m->in_left -= k;
			if (m->in_left == 0)
				m->in_state = WN_SMUX_IN_HDR;
			deliver(m, m->in_hdr.sid, data + off, k);
			off += k;
			break;
		}
	}
	if (rc)
		m->err = rc;
	return rc;
}
