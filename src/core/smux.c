/* The smux session: configuration, the stream table and the calls the
 * engine makes on streams. The frame parser is in smux_in.c, the frame
 * scheduler in smux_out.c. */
#include "core/smux.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/smux_int.h"
#include "util/err.h"

#define TAB_MIN 16

void wn_smux_cfg_default(struct wn_smux_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->version = 2;
	cfg->max_frame = WN_SMUX_MAX_FRAME_DEFAULT;
	cfg->stream_window = WN_SMUX_INITIAL_WINDOW;
	cfg->stream_send_limit = 1024 * 1024;
	cfg->max_streams = 1024;
}

static int cfg_valid(const struct wn_smux_cfg *cfg)
{
	if (cfg->version != 1 && cfg->version != 2)
		return 0;
	if (cfg->max_frame == 0 || cfg->max_frame > WN_SMUX_MAX_FRAME_LIMIT)
		return 0;
	/* UPDs go out every half window: a window of 1 would never send
	 * one. smux takes the window as an int32: above, it never sends. */
	if (cfg->version == 2 &&
	    (cfg->stream_window < 2 || cfg->stream_window > INT32_MAX))
		return 0;
	if (cfg->stream_send_limit == 0 ||
	    cfg->stream_send_limit > SIZE_MAX / 2)
		return 0;
	return cfg->max_streams > 0;
}

int wn_smux_new(const struct wn_smux_cfg *cfg, const struct wn_smux_cb *cb,
                struct wn_smux **out)
{
	struct wn_smux *m;

	if (!cfg_valid(cfg))
		return WN_EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return WN_ENOMEM;
	m->cfg = *cfg;
	if (cb)
		m->cb = *cb;
	wn_smuxi_list_init(&m->ctrl);
	wn_smuxi_list_init(&m->ready);
	wn_smuxi_list_init(&m->writable);
	wn_smuxi_list_init(&m->drained);
	/* smux: the client's counter starts at 1 and the server's at 0, and
	 * each open adds 2 before use, so the first ids are 3 and 2. */
	m->next_id = cfg->client ? 1 : 0;
	m->in_state = WN_SMUX_IN_HDR;
	*out = m;
	return 0;
}

void wn_smux_free(struct wn_smux *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->nstreams; i++) {
		wn_bufq_free(&m->tab[i].s->sendq);
		free(m->tab[i].s);
	}
	if (m->cfg.pool)
		m->cfg.pool->granted -= m->granted;
	free(m->tab);
	free(m->refused);
	free(m);
}

/* ---- The stream table ---- */

/* Index of the first slot whose sid is >= sid. */
static unsigned lower_bound(const struct wn_smux *m, uint32_t sid)
{
	unsigned lo = 0, hi = m->nstreams;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (m->tab[mid].sid < sid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct wn_smux_stream *wn_smuxi_find(const struct wn_smux *m, uint32_t sid)
{
	unsigned i;

	/* Most frames belong to the newest stream: check the end first. */
	if (m->nstreams && m->tab[m->nstreams - 1].sid == sid)
		return m->tab[m->nstreams - 1].s;
	i = lower_bound(m, sid);
	if (i < m->nstreams && m->tab[i].sid == sid)
		return m->tab[i].s;
	return NULL;
}

static int tab_resize(struct wn_smux *m, unsigned cap)
{
	struct wn_smux_slot *t = realloc(m->tab, (size_t)cap * sizeof(*t));

	if (!t)
		return WN_ENOMEM;
	m->tab = t;
	m->tabcap = cap;
	return 0;
}

struct wn_smux_stream *wn_smuxi_add(struct wn_smux *m, uint32_t sid)
{
	struct wn_smux_stream *s;
	unsigned i;

	if (m->nstreams == m->tabcap &&
	    tab_resize(m, m->tabcap ? m->tabcap * 2 : TAB_MIN))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (wn_bufq_init(&s->sendq, WN_SMUX_CHUNK, m->cfg.stream_send_limit)) {
		free(s);
		return NULL;
	}
	s->sid = sid;
	s->peer_window = WN_SMUX_INITIAL_WINDOW;
	/* The peer may send this much before our first UPD. */
	if (wn_smuxi_budgeted(m))
		wn_smuxi_grant(m, s, WN_SMUX_INITIAL_WINDOW);
	i = lower_bound(m, sid);
	memmove(&m->tab[i + 1], &m->tab[i],
	        (size_t)(m->nstreams - i) * sizeof(m->tab[0]));
	m->tab[i].sid = sid;
	m->tab[i].s = s;
	m->nstreams++;
	return s;
}

void wn_smuxi_destroy(struct wn_smux *m, struct wn_smux_stream *s)
{
	unsigned i = lower_bound(m, s->sid);

	if (i < m->nstreams && m->tab[i].s == s) {
		m->nstreams--;
		memmove(&m->tab[i], &m->tab[i + 1],
		        (size_t)(m->nstreams - i) * sizeof(m->tab[0]));
	}
	/* Give memory back after a burst of streams; failing to shrink is
	 * harmless. */
	if (m->tabcap > TAB_MIN && m->nstreams < m->tabcap / 4)
		tab_resize(m, m->tabcap / 2);
	wn_smuxi_unlink(&s->ctrl);
	wn_smuxi_unlink(&s->ready);
	wn_smuxi_unlink(&s->wr);
	if (wn_smuxi_linked(&s->drained)) {
		wn_smuxi_unlink(&s->drained);
		m->ndrained--;
	}
	m->recv_pending -= (size_t)(s->recv - s->consumed);
	wn_smuxi_grant(m, s, 0);
	wn_bufq_free(&s->sendq);
	free(s);
}

/* ---- The receive budget (smux.h, Flow control) ---- */

int wn_smuxi_budgeted(const struct wn_smux *m)
{
	return m->cfg.version == 2 &&
	       (m->cfg.recv_budget || (m->cfg.pool && m->cfg.pool->limit));
}

void wn_smuxi_grant(struct wn_smux *m, struct wn_smux_stream *s, uint32_t w)
{
	m->granted = m->granted - s->granted + w;
	if (m->cfg.pool)
		m->cfg.pool->granted = m->cfg.pool->granted - s->granted + w;
	s->granted = w;
}

/* What a budget of limit has left beside `used`, of which s holds its
 * own window. */
static size_t room_beside(size_t limit, size_t used,
                          const struct wn_smux_stream *s)
{
	size_t others = used - s->granted;

	return limit > others ? limit - others : 0;
}

uint32_t wn_smuxi_upd_window(struct wn_smux *m, struct wn_smux_stream *s)
{
	uint32_t full = m->cfg.stream_window;
	uint32_t floor = full < WN_SMUX_RECV_FLOOR ? full : WN_SMUX_RECV_FLOOR;
	uint64_t cur, w;

	if (!wn_smuxi_budgeted(m))
		return full;
	cur = s->granted ? s->granted : WN_SMUX_INITIAL_WINDOW;
	/* Growth only for a stream whose reader takes data. */
	w = s->consumed ? 2 * cur : cur;
	if (w > full)
		w = full;
	if (m->cfg.recv_budget) {
		size_t room = room_beside(m->cfg.recv_budget, m->granted, s);
		if (w > room)
			w = room;
	}
	if (m->cfg.pool && m->cfg.pool->limit) {
		size_t room =
		    room_beside(m->cfg.pool->limit, m->cfg.pool->granted, s);
		if (w > room)
			w = room;
	}
	if (w < floor)
		w = floor;
	wn_smuxi_grant(m, s, (uint32_t)w);
	return (uint32_t)w;
}

/* Under a budget, a new stream that the budget has no room for is told
 * the floor at once, instead of the window the peer assumes. */
static void budget_open(struct wn_smux *m, struct wn_smux_stream *s)
{
	size_t room = SIZE_MAX;

	if (m->cfg.recv_budget)
		room = room_beside(m->cfg.recv_budget, m->granted, s);
	if (m->cfg.pool && m->cfg.pool->limit) {
		size_t p =
		    room_beside(m->cfg.pool->limit, m->cfg.pool->granted, s);
		if (p < room)
			room = p;
	}
	if (room < s->granted)
		s->flags |= WN_SMUX_SF_UPD;
}

void wn_smuxi_open_window(struct wn_smux *m, struct wn_smux_stream *s)
{
	if (m->cfg.version != 2)
		return;
	if (wn_smuxi_budgeted(m)) {
		budget_open(m, s);
		return;
	}
	/* The peer assumes a 256 KiB window until our first UPD: say at once
	 * if ours is larger, so a fresh stream is not held back. */
	if (m->cfg.stream_window > WN_SMUX_INITIAL_WINDOW)
		s->flags |= WN_SMUX_SF_UPD;
}

void wn_smuxi_drained(struct wn_smux *m, struct wn_smux_stream *s)
{
	if (wn_smuxi_linked(&s->drained))
		wn_smuxi_unlink(&s->drained);
	else
		m->ndrained++;
	wn_smuxi_push_tail(&m->drained, &s->drained);
}

void wn_smuxi_trim(struct wn_smux *m, unsigned keep)
{
	while (m->ndrained > keep) {
		struct wn_smux_stream *s = WN_SMUX_OF(m->drained.next, drained);
		wn_smuxi_unlink(&s->drained);
		m->ndrained--;
		/* Written to since it drained: it drains again later. */
		if (wn_bufq_len(&s->sendq) == 0)
			wn_bufq_shrink(&s->sendq);
	}
}

int wn_smuxi_reap(struct wn_smux *m, struct wn_smux_stream *s)
{
	uint32_t f = s->flags;

	if (!(f & WN_SMUX_SF_FORGOTTEN))
		return 0;
	if (f & (WN_SMUX_SF_SYN | WN_SMUX_SF_RST))
		return 0; /* a control frame is still owed */
	if (!(f & (WN_SMUX_SF_RESET | WN_SMUX_SF_FIN_SENT)))
		return 0; /* data or our FIN still to go */
	wn_smuxi_destroy(m, s);
	return 1;
}

/* ---- Scheduling state ---- */

size_t wn_smuxi_window(const struct wn_smux *m, const struct wn_smux_stream *s)
{
	uint32_t inflight;

	if (m->cfg.version == 1)
		return SIZE_MAX;
	/* As smux: modular arithmetic, so the counters may wrap at 4 GiB.
	 * Input guarantees the peer never acknowledged more than we sent. */
	inflight = s->sent - s->peer_consumed;
	return inflight < s->peer_window ? s->peer_window - inflight : 0;
}

void wn_smuxi_sched(struct wn_smux *m, struct wn_smux_stream *s)
{
	uint32_t f = s->flags;
	size_t queued = wn_bufq_len(&s->sendq);
	int ctrl, ready = 0;

	/* The peer's direction is over: its window goes back. */
	if (s->granted && (f & (WN_SMUX_SF_RESET | WN_SMUX_SF_FIN_RECV |
	                        WN_SMUX_SF_FORGOTTEN)))
		wn_smuxi_grant(m, s, 0);

	ctrl = (f & (WN_SMUX_SF_SYN | WN_SMUX_SF_UPD | WN_SMUX_SF_RST)) != 0;
	if (!(f & (WN_SMUX_SF_RESET | WN_SMUX_SF_FIN_SENT))) {
		if (queued)
			ready = wn_smuxi_window(m, s) > 0;
		else
			ready = (f & WN_SMUX_SF_FIN_QUEUED) != 0;
	}
	if (ctrl && !wn_smuxi_linked(&s->ctrl))
		wn_smuxi_push_tail(&m->ctrl, &s->ctrl);
	else if (!ctrl)
		wn_smuxi_unlink(&s->ctrl);
	/* A stream already waiting keeps its place in the round robin. */
	if (ready && !wn_smuxi_linked(&s->ready)) {
		wn_smuxi_push_tail(&m->ready, &s->ready);
	} else if (!ready) {
		wn_smuxi_unlink(&s->ready);
		s->turn = 0;
	}
}

void wn_smuxi_do_reset(struct wn_smux *m, struct wn_smux_stream *s, int send,
                       uint32_t reason)
{
	uint32_t f = s->flags;

	if (f & WN_SMUX_SF_RESET)
		return;
	wn_bufq_free(&s->sendq);
	f |= WN_SMUX_SF_RESET;
	f &= ~(uint32_t)(WN_SMUX_SF_UPD | WN_SMUX_SF_WANT_WR);
	wn_smuxi_unlink(&s->wr);
	if (!send || (f & WN_SMUX_SF_SYN)) {
		/* The peer reset it, or never heard of it: nothing to say. */
		f &= ~(uint32_t)(WN_SMUX_SF_SYN | WN_SMUX_SF_RST);
	} else if (!m->cfg.compat || !(f & WN_SMUX_SF_FIN_SENT)) {
		f |= WN_SMUX_SF_RST;
		s->reason = reason;
	}
	s->flags = f;
	wn_smuxi_sched(m, s);
}

int wn_smuxi_refuse(struct wn_smux *m, uint32_t sid, uint32_t reason)
{
	if (m->nrefused - m->refused_head >= WN_SMUX_REFUSED_MAX)
		return WN_ENOMEM;
	if (m->nrefused == m->refused_cap) {
		if (m->refused_head) {
			m->nrefused -= m->refused_head;
			memmove(m->refused, m->refused + m->refused_head,
			        m->nrefused * sizeof(*m->refused));
			m->refused_head = 0;
		} else {
			size_t cap = m->refused_cap ? m->refused_cap * 2 : 16;
			struct wn_smux_refusal *r =
			    realloc(m->refused, cap * sizeof(*r));
			if (!r)
				return WN_ENOMEM;
			m->refused = r;
			m->refused_cap = cap;
		}
	}
	m->refused[m->nrefused].sid = sid;
	m->refused[m->nrefused].reason = reason;
	m->nrefused++;
	return 0;
}

/* ---- Stream calls ---- */

/* The stream the engine may still act on, or NULL. */
static struct wn_smux_stream *live(const struct wn_smux *m, uint32_t sid)
{
	struct wn_smux_stream *s = wn_smuxi_find(m, sid);

	return s && !(s->flags & WN_SMUX_SF_FORGOTTEN) ? s : NULL;
}

int wn_smux_open(struct wn_smux *m, uint32_t *sid)
{
	struct wn_smux_stream *s;
	uint32_t id;

	if (m->err)
		return WN_ECLOSED;
	if (m->nstreams >= m->cfg.max_streams)
		return WN_ENOSPC;
	if (m->goaway || m->next_id > UINT32_MAX - 2) {
		m->goaway = 1;
		return WN_ERANGE;
	}
	id = m->next_id + 2;
	s = wn_smuxi_add(m, id);
	if (!s)
		return WN_ENOMEM;
	m->next_id = id;
	s->flags = WN_SMUX_SF_SYN;
	wn_smuxi_open_window(m, s);
	wn_smuxi_sched(m, s);
	*sid = id;
	return 0;
}

ssize_t wn_smux_write(struct wn_smux *m, uint32_t sid, const uint8_t *data,
                      size_t len)
{
	struct wn_smux_stream *s = live(m, sid);
	ssize_t n;

	if (!s)
		return WN_EINVAL;
	if (s->flags & (WN_SMUX_SF_RESET | WN_SMUX_SF_FIN_QUEUED))
		return WN_ECLOSED;
	if (len == 0)
		return 0;
	n = wn_bufq_write(&s->sendq, data, len);
	if (n == WN_EAGAIN)
		n = 0;
	if (n < 0)
		return n;
	if ((size_t)n < len)
		s->flags |= WN_SMUX_SF_WANT_WR;
	wn_smuxi_sched(m, s);
	return n;
}

ssize_t wn_smux_reserve(struct wn_smux *m, uint32_t sid, uint8_t **ptr)
{
	struct wn_smux_stream *s = live(m, sid);
	ssize_t n;

	if (!s)
		return WN_EINVAL;
	if (s->flags & (WN_SMUX_SF_RESET | WN_SMUX_SF_FIN_QUEUED))
		return WN_ECLOSED;
	n = wn_bufq_reserve(&s->sendq, ptr);
	if (n == WN_EAGAIN) {
		s->flags |= WN_SMUX_SF_WANT_WR;
		return 0;
	}
	return n;
}

int wn_smux_commit(struct wn_smux *m, uint32_t sid, size_t n)
{
	struct wn_smux_stream *s = live(m, sid);
	int rc;

	if (!s)
		return WN_EINVAL;
	if (s->flags & (WN_SMUX_SF_RESET | WN_SMUX_SF_FIN_QUEUED))
		return WN_ECLOSED;
	rc = wn_bufq_commit(&s->sendq, n);
	if (rc)
		return rc;
	/* A read that brought nothing leaves the chunk it reserved. */
	if (wn_bufq_len(&s->sendq) == 0)
		wn_smuxi_drained(m, s);
	wn_smuxi_sched(m, s);
	return 0;
}

int wn_smux_shutdown(struct wn_smux *m, uint32_t sid)
{
	struct wn_smux_stream *s = live(m, sid);

	if (!s)
		return WN_EINVAL;
	if (s->flags & WN_SMUX_SF_RESET)
		return WN_ECLOSED;
	s->flags |= WN_SMUX_SF_FIN_QUEUED;
	/* No more writes, so no more on_writable. */
	s->flags &= ~(uint32_t)WN_SMUX_SF_WANT_WR;
	wn_smuxi_unlink(&s->wr);
	wn_smuxi_sched(m, s);
	return 0;
}

int wn_smux_reset(struct wn_smux *m, uint32_t sid, uint32_t reason)
{
	struct wn_smux_stream *s = live(m, sid);

	if (!s)
		return WN_EINVAL;
	wn_smuxi_do_reset(m, s, 1, reason);
	return 0;
}

int wn_smux_stop(struct wn_smux *m, uint32_t sid, uint32_t reason)
{
	struct wn_smux_stream *s = live(m, sid);

	if (!s)
		return WN_EINVAL;
	if (s->flags & WN_SMUX_SF_RESET)
		return WN_ECLOSED;
	s->flags |= WN_SMUX_SF_FIN_QUEUED;
	s->flags &= ~(uint32_t)WN_SMUX_SF_WANT_WR;
	wn_smuxi_unlink(&s->wr);
	if (!m->cfg.compat) {
		s->reason = reason;
		if (s->flags & WN_SMUX_SF_FIN_SENT)
			s->flags |= WN_SMUX_SF_RST;
		else
			s->flags |= WN_SMUX_SF_STOP;
	}
	wn_smuxi_sched(m, s);
	return 0;
}

void wn_smux_consumed(struct wn_smux *m, uint32_t sid, size_t n)
{
	struct wn_smux_stream *s = live(m, sid);
	uint64_t before;
	uint32_t half;

	if (!s)
		return;
	before = s->consumed;
	if (n > s->recv - s->consumed)
		n = (size_t)(s->recv - s->consumed);
	if (n == 0)
		return;
	s->consumed += n;
	m->recv_pending -= n;
	/* v1 has no per-stream flow control; after the peer's FIN or a reset
	 * it has nothing more to send. */
	if (m->cfg.version != 2 ||
	    (s->flags & (WN_SMUX_SF_RESET | WN_SMUX_SF_FIN_RECV)))
		return;
	/* Under a budget the window is the stream's own, and so is half. */
	half = wn_smuxi_budgeted(m) && s->granted ? s->granted / 2
	                                          : m->cfg.stream_window / 2;
	s->upd_incr =
	    n >= half - s->upd_incr ? half : s->upd_incr + (uint32_t)n;
	/* As smux: report the first consumption, then every half window. */
	if (s->upd_incr >= half || before == 0) {
		s->upd_incr = 0;
		s->flags |= WN_SMUX_SF_UPD;
		wn_smuxi_sched(m, s);
	}
}

void wn_smux_forget(struct wn_smux *m, uint32_t sid)
{
	struct wn_smux_stream *s = live(m, sid);

	if (!s)
		return;
	s->flags |= WN_SMUX_SF_FORGOTTEN;
	s->flags &= ~(uint32_t)(WN_SMUX_SF_UPD | WN_SMUX_SF_WANT_WR);
	wn_smuxi_unlink(&s->wr);
	/* Like smux's Close(): the data still goes out, then a FIN. */
	if (!(s->flags & WN_SMUX_SF_RESET))
		s->flags |= WN_SMUX_SF_FIN_QUEUED;
	/* Nobody will consume what was delivered. */
	m->recv_pending -= (size_t)(s->recv - s->consumed);
	s->consumed = s->recv;
	wn_smuxi_sched(m, s);
	wn_smuxi_reap(m, s);
}

void wn_smux_trim(struct wn_smux *m)
{
	wn_smuxi_trim(m, 0);
}

void wn_smux_ping(struct wn_smux *m)
{
	m->nop = 1;
}

int wn_smux_want_pull(const struct wn_smux *m)
{
	return m->nrefused > m->refused_head || m->nop ||
	       !wn_smuxi_list_empty(&m->ctrl) ||
	       !wn_smuxi_list_empty(&m->ready);
}

size_t wn_smux_send_space(const struct wn_smux *m, uint32_t sid)
{
	const struct wn_smux_stream *s = live(m, sid);

	if (!s || (s->flags & (WN_SMUX_SF_RESET | WN_SMUX_SF_FIN_QUEUED)))
		return 0;
	return wn_bufq_space(&s->sendq);
}

size_t wn_smux_send_queued(const struct wn_smux *m, uint32_t sid)
{
	const struct wn_smux_stream *s = wn_smuxi_find(m, sid);

	return s ? wn_bufq_len(&s->sendq) : 0;
}

unsigned wn_smux_nstreams(const struct wn_smux *m)
{
	return m->nstreams;
}

const char *wn_smux_why(const struct wn_smux *m)
{
	return m->why;
}

size_t wn_smux_recv_pending(const struct wn_smux *m)
{
	return m->recv_pending;
}
