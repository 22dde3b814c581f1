/* The flow base: see flow_base.h. The wire is src/core/dgram.h; how a
 * datagram is cut to fit is documented in docs/wire-format.md ("Datagram
 * flows"). */
#include "engine/flow_base.h"

#include <stdlib.h>
#include <string.h>

#include "core/dgfec.h"
#include "core/dgfrag.h"
#include "core/dgram.h"
#include "util/cidmap.h"
#include "util/err.h"
#include "util/rw.h"

#define LOG_COMP "flow"

/* Live flows per session when the engine does not say. */
#define FB_DEFAULT_MAX_FLOWS 1024
/* A server answers target-bearing DATA on a flow it already took (its ACK
 * was lost) with another ACK at most this often per flow. */
#define FB_REACK_MS 100
/* Replies to messages for flows we do not know (UNKNOWN, CLOSE): at most
 * FB_REPLY_BURST per FB_REPLY_WINDOW_MS per session, so a flood of such
 * messages costs a bounded number of replies. */
#define FB_REPLY_WINDOW_MS 1000
#define FB_REPLY_BURST 256
/* An established flow (see establish) silent for less than this is in
 * use: a new flow does not take its place when the table is full. */
#define FB_PROTECT_MS 2000
/* The largest datagram a flow carries (a UDP payload's limit). */
#define FB_DGRAM_MAX 65535
/* A client flow with FEC that has sent this many datagrams without an
 * answer is probably talking to a server older than FEC, which drops its
 * messages: said once per session, so the user knows. */
#define FB_FEC_SILENT_WARN 64
/* What the FEC coders of one session's flows may hold in all: past it a
 * flow's datagrams travel without parity (its peer's parity is ignored),
 * so a peer opening many FEC flows costs bounded memory. */
#define FB_FEC_MEM_MAX (32u << 20)

struct wn_flow {
	struct wn_flows *fl;
	uint64_t id;
	struct wn_flow_handler h;
	struct wn_list lru; /* on fl->lru while live; most recent at the tail */
	struct wn_list fresh; /* on fl->fresh while live and not established */
	struct wn_deferred dnode;
	struct wn_flow_stats st;
	uint64_t last_ack_ms; /* server: when we last sent ACK */
	uint64_t last_ms;     /* the last datagram either way */
	int err;              /* why it ended */
	uint8_t ended;        /* out of the table; on_flow_closed pending */
	uint8_t released;     /* the front end is done: no handler calls */
	uint8_t has_handler;
	uint8_t acked;     /* client: the server took it; targets stop */
	uint8_t accepting; /* server: inside on_flow */
	uint8_t refused;   /* server: wn_flow_refuse inside on_flow */
	uint8_t seen_in, seen_out; /* a datagram came, went */
	uint8_t established;       /* see establish() */
	uint16_t tgt_len;          /* client: what we send; server: what came */
	uint8_t tgt[WN_DGRAM_TARGET_MAX];
	/* FEC (wn_flow_set_fec, or on the server as the client's messages
	 * say): the counts, 0 without; the encoder (NULL: plain, also when
	 * the memory budget said no); the decoder, made with the first FEC
	 * message from the peer. */
	uint8_t fec_data, fec_parity, fec_delay;
	uint8_t fec_open;  /* on fl->fec_open: a group's parity is due */
	uint8_t fec_nomem; /* the budget refused a coder (counted once) */
	struct wn_list fec_node;
	struct wn_dgfec_enc *enc;
	struct wn_dgfec_dec *dec;
};

struct wn_flows {
	struct wn_fb_transport tp;
	void *ctx;
	struct wn_loop *loop;
	struct wn_log *log;
	struct wn_tunnel *t;
	struct wn_accept_handler ah;
	int server;
	unsigned max_flows;
	size_t live;
	struct wn_cidmap map; /* flow id (8 bytes) -> struct wn_flow */
	struct wn_list lru;
	struct wn_list fresh; /* the live flows not established, LRU first */
	uint64_t next_id;     /* client: the next flow id */
	uint64_t id_hi;       /* the highest flow id seen or given */
	uint16_t next_dgram;
	uint8_t finished;
	uint8_t freeing;
	size_t pending;           /* ended flows whose deferred has not run */
	struct wn_deferred dnode; /* the deferred free of the whole */
	struct wn_dgfrag *frag;   /* allocated with the first fragment */
	uint8_t *buf;             /* the message being built */
	size_t buf_cap;
	uint64_t reply_win_ms;
	uint32_t reply_used;
	struct wn_ratelimit rl;
	/* Flows opening and closing: one line each while they come slowly;
	 * a flood of new flows (one per datagram) costs a few lines. */
	struct wn_ratelimit rl_life;
	struct wn_flows_stats st;
	/* FEC: flows with an open group, and the one timer that sends their
	 * parity when the grouping time has passed (armed for fec_timer_at,
	 * on the engine's clock; 0: not armed). */
	struct wn_list fec_open;
	struct wn_timer fec_timer;
	uint8_t fec_timer_ok;
	uint64_t fec_timer_at;
	size_t fec_mem;     /* what the coders hold */
	uint8_t fec_warned; /* the FB_FEC_SILENT_WARN warning was given */
	/* A reassembled datagram: index 0's body (target, payload), then
	 * index 1's payload. */
	uint8_t rbuf[2 * WN_DGFRAG_PART_MAX];
};

/* Counts on the flow and on its session. */
#define CNT(f, field, n)                  \
	do {                              \
		(f)->st.field += (n);     \
		(f)->fl->st.field += (n); \
	} while (0)

static void id_key(uint64_t id, uint8_t key[8])
{
	wn_put_u64be(key, id);
}

static struct wn_flow *lookup(const struct wn_flows *fl, uint64_t id)
{
	uint8_t key[8];
	id_key(id, key);
	return wn_cidmap_get(&fl->map, key, sizeof(key));
}

static uint64_t now_ms(const struct wn_flows *fl)
{
	return fl->tp.now_ms(fl);
}

/* A datagram went (out) or came (in) on f at now. A flow is established
 * once a datagram moves after both directions have carried one (a
 * request, its answer, and more: as conntrack's "assured"); a request
 * answered once (DNS) is not. Established flows in use keep their place
 * when the table is full (make_room). */
static void touch(struct wn_flow *f, int out, uint64_t now)
{
	struct wn_flows *fl = f->fl;

	f->last_ms = now;
	wn_list_del(&f->lru);
	wn_list_add_tail(&fl->lru, &f->lru);
	if (f->established)
		return;
	if (f->seen_in && f->seen_out) {
		f->established = 1;
		wn_list_del(&f->fresh);
		return;
	}
	if (out)
		f->seen_out = 1;
	else
		f->seen_in = 1;
	wn_list_del(&f->fresh);
	wn_list_add_tail(&fl->fresh, &f->fresh);
}

static void free_all(struct wn_flows *fl)
{
	wn_cidmap_free(&fl->map);
	free(fl->frag);
	free(fl->buf);
	free(fl);
}

static void fec_timer_closed(struct wn_timer *t)
{
	free_all(wn_container_of(t, struct wn_flows, fec_timer));
}

static void free_deferred(struct wn_deferred *node)
{
	struct wn_flows *fl = wn_container_of(node, struct wn_flows, dnode);

	if (fl->fec_timer_ok)
		wn_timer_close(&fl->fec_timer, fec_timer_closed);
	else
		free_all(fl);
}

/* The memory a flow's FEC coders hold, for the session's budget. */
static size_t enc_mem(unsigned data, unsigned parity)
{
	return sizeof(struct wn_dgfec_enc) + wn_dgfec_enc_size(data, parity);
}

static void fec_free(struct wn_flow *f)
{
	struct wn_flows *fl = f->fl;

	if (f->enc) {
		fl->fec_mem -= enc_mem(f->fec_data, f->fec_parity);
		wn_dgfec_enc_free(f->enc);
		free(f->enc);
		f->enc = NULL;
	}
	if (f->dec) {
		fl->fec_mem -= wn_dgfec_dec_size(f->fec_data, f->fec_parity);
		wn_dgfec_dec_free(f->dec);
		f->dec = NULL;
	}
}

/* Runs a decoder call and counts what it recovered, lost for good and
 * found contradictory on the flow and its session. */
static void fec_count(struct wn_flow *f, const struct wn_dgfec_stats *was)
{
	struct wn_dgfec_stats now;

	wn_dgfec_dec_stats(f->dec, &now);
	CNT(f, fec_recovered, now.recovered - was->recovered);
	CNT(f, fec_unrecoverable, now.unrecoverable - was->unrecoverable);
	f->fl->st.bad_msgs += now.bad - was->bad;
}

/* The kept groups' missing shards count as lost (the flow ends, or the
 * peer's counter starts over). */
static void fec_dec_reset(struct wn_flow *f)
{
	struct wn_dgfec_stats was;

	if (!f->dec)
		return;
	wn_dgfec_dec_stats(f->dec, &was);
	wn_dgfec_dec_reset(f->dec);
	fec_count(f, &was);
}

static void closed_deferred(struct wn_deferred *node)
{
	struct wn_flow *f = wn_container_of(node, struct wn_flow, dnode);
	struct wn_flows *fl = f->fl;

	if (!f->released && f->has_handler && f->h.on_flow_closed)
		f->h.on_flow_closed(f->h.ctx, f, f->err);
	fec_free(f);
	free(f);
	fl->pending--;
	if (fl->freeing && fl->pending == 0)
		wn_loop_defer(fl->loop, &fl->dnode, free_deferred);
}

/* Takes f out of the table; on_flow_closed(err) follows from the loop
 * unless the front end has released it. */
static void end_flow(struct wn_flow *f, int err)
{
	struct wn_flows *fl = f->fl;
	uint8_t key[8];

	if (f->ended)
		return;
	f->ended = 1;
	f->err = err;
	id_key(f->id, key);
	wn_cidmap_del(&fl->map, key, sizeof(key));
	wn_list_del(&f->lru);
	if (!f->established)
		wn_list_del(&f->fresh);
	fl->live--;
	fl->st.flows_closed++;
	if (fl->frag)
		wn_dgfrag_drop_flow(fl->frag, f->id);
	if (f->fec_open) {
		wn_list_del(&f->fec_node);
		f->fec_open = 0;
	}
	fec_dec_reset(f);
	WN_LOG_RL(fl->log, &fl->rl_life, now_ms(fl), WN_LOG_DEBUG, LOG_COMP,
	          "flow %llu: closed: %s", (unsigned long long)f->id,
	          wn_stream_err_str(err));
	fl->pending++;
	wn_loop_defer(fl->loop, &f->dnode, closed_deferred);
}

/* ---- sending ----------------------------------------------------------- */

/* A control message (ACK, CLOSE, UNKNOWN); best effort. */
static void send_ctrl(struct wn_flows *fl, uint64_t id, unsigned type,
                      int reason)
{
	struct wn_dgram_msg m = {.flow = id, .type = type};
	uint8_t b[16];

	if (fl->finished)
		return;
	m.reason = (uint8_t)reason;
	int n = wn_dgram_encode_hdr(&m, b, sizeof(b));
	if (n > 0)
		(void)fl->tp.send(fl, b, (size_t)n);
}

/* Whether we may answer one more message for an unknown flow now. */
static int reply_allowed(struct wn_flows *fl, uint64_t now)
{
	if (now - fl->reply_win_ms >= FB_REPLY_WINDOW_MS ||
	    now < fl->reply_win_ms) {
		fl->reply_win_ms = now;
		fl->reply_used = 0;
	}
	if (fl->reply_used >= FB_REPLY_BURST)
		return 0;
	fl->reply_used++;
	return 1;
}

/* What one message holds for a flow whose id takes idl bytes. */
static size_t cap_single(size_t max_msg, size_t idl, size_t tgt)
{
	size_t h = idl + 1 + tgt;
	return max_msg > h ? max_msg - h : 0;
}

static size_t cap_part(size_t max_msg, size_t idl)
{
	size_t h = idl + 1 + WN_DGRAM_FRAG_HDR;
	size_t p = max_msg > h ? max_msg - h : 0;
	return p < WN_DGFRAG_PART_MAX ? p : WN_DGFRAG_PART_MAX;
}

static size_t cap_dgram(size_t max_msg, size_t idl)
{
	size_t one = cap_single(max_msg, idl, 0);
	size_t two = 2 * cap_part(max_msg, idl);
	size_t c = one > two ? one : two;
	return c < FB_DGRAM_MAX ? c : FB_DGRAM_MAX;
}

size_t wn_fb_max_datagram(const struct wn_flows *fl)
{
	if (fl->finished)
		return 0;
	size_t m = fl->tp.max_msg(fl);
	uint64_t hi = fl->next_id > fl->id_hi ? fl->next_id : fl->id_hi;
	size_t idl = wn_varint_len(hi);
	/* Once every id is used (next_id past the varint range) no flow
	 * opens again; the longest id is 8 bytes. */
	return m ? cap_dgram(m, idl ? idl : 8) : 0;
}

/* Counts a failed message send against f and returns the API's code. */
static int send_failed(struct wn_flow *f, int r)
{
	if (r == WN_EMSGSIZE) {
		CNT(f, drop_size, 1);
		return WN_EMSGSIZE;
	}
	CNT(f, drop_queue, 1);
	WN_LOG_RL(f->fl->log, &f->fl->rl, now_ms(f->fl), WN_LOG_DEBUG, LOG_COMP,
	          "flow %llu: datagram dropped: %s", (unsigned long long)f->id,
	          wn_strerror(r));
	return WN_EAGAIN;
}

/* ---- FEC: sending ---------------------------------------------------- */

/* The largest message a flow with FEC builds, for max_msg and an id of
 * idl bytes: room for the FEC header, and for the parity shards, which
 * are as long as the longest shard and its length (dgram.h). */
static size_t fec_max_msg(size_t max_msg, size_t idl)
{
	if (max_msg <= WN_DGRAM_FEC_OVERHEAD)
		return 0;
	size_t m = max_msg - WN_DGRAM_FEC_OVERHEAD;
	size_t s = WN_DGRAM_FEC_SHARD_MAX - 2 + idl;
	return m < s ? m : s;
}

static void fec_arm(struct wn_flows *fl, uint64_t at, uint64_t now);

/* Sends the open group's parity shards (best effort: parity the engine
 * will not take now is simply not sent) and closes the group. */
static void fec_flush(struct wn_flow *f)
{
	struct wn_flows *fl = f->fl;
	struct wn_dgfec_enc *e = f->enc;
	struct wn_dgram_msg p = {.flow = f->id,
	                         .type = WN_DGRAM_FEC,
	                         .fec_data = f->fec_data,
	                         .fec_parity = f->fec_parity,
	                         .fec_delay = f->fec_delay};

	if (f->fec_open) {
		wn_list_del(&f->fec_node);
		f->fec_open = 0;
	}
	if (!e || wn_dgfec_enc_count(e) == 0)
		return;
	unsigned np = wn_dgfec_enc_nparity(e);
	p.fec_count = (uint8_t)wn_dgfec_enc_count(e);
	p.fec_group = e->group;
	for (unsigned j = 0; j < np && !fl->finished; j++) {
		size_t plen;
		const uint8_t *par = wn_dgfec_enc_parity(e, j, &plen);
		p.fec_index = (uint8_t)(f->fec_data + j);
		int h = wn_dgram_encode_hdr(&p, fl->buf, fl->buf_cap);
		if (h < 0 || (size_t)h + plen > fl->buf_cap)
			break;
		memcpy(fl->buf + h, par, plen);
		(void)fl->tp.send(fl, fl->buf, (size_t)h + plen);
	}
	wn_dgfec_enc_close(e);
}

/* Sends the parity of every group whose grouping time has passed, and
 * arms the timer for the next. */
void wn_fb_poll(struct wn_flows *fl)
{
	uint64_t now = now_ms(fl), next = UINT64_MAX;

	if (fl->finished)
		return;
	for (struct wn_list *n = fl->fec_open.next, *nx; n != &fl->fec_open;
	     n = nx) {
		nx = n->next;
		struct wn_flow *f = wn_list_entry(n, struct wn_flow, fec_node);
		uint64_t at = wn_dgfec_enc_deadline(f->enc);
		if (at <= now)
			fec_flush(f);
		else if (at < next)
			next = at;
	}
	if (next != UINT64_MAX)
		fec_arm(fl, next, now);
}

static void on_fec_timer(struct wn_timer *t)
{
	struct wn_flows *fl = wn_container_of(t, struct wn_flows, fec_timer);

	fl->fec_timer_at = 0;
	wn_fb_poll(fl);
}

/* Makes sure the timer fires by `at` (the engine's clock). */
static void fec_arm(struct wn_flows *fl, uint64_t at, uint64_t now)
{
	if (fl->fec_timer_at && fl->fec_timer_at <= at)
		return;
	if (!fl->fec_timer_ok) {
		if (wn_timer_init(fl->loop, &fl->fec_timer, on_fec_timer) < 0) {
			/* Groups then close only when full or at close. */
			WN_LOG_RL(fl->log, &fl->rl, now, WN_LOG_WARN, LOG_COMP,
			          "no FEC timer: parity waits for full groups");
			return;
		}
		fl->fec_timer_ok = 1;
	}
	if (wn_timer_start(&fl->fec_timer, at > now ? at - now : 0, 0) == 0)
		fl->fec_timer_at = at;
}

/* Builds one message (header from m, then payload) in fl->buf and hands
 * it to the transport; on a flow with FEC, wrapped as the next data
 * shard of its group, whose parity follows when the group is full. */
static int send_msg(struct wn_flow *f, const struct wn_dgram_msg *m,
                    const uint8_t *payload, size_t len)
{
	struct wn_flows *fl = f->fl;
	/* With FEC the message is built after room for the FEC header,
	 * which then overwrites the message's flow id. */
	size_t pre = f->enc ? 1 + WN_DGRAM_FEC_HDR : 0;
	if (pre >= fl->buf_cap)
		return WN_EMSGSIZE;
	int h = wn_dgram_encode_hdr(m, fl->buf + pre, fl->buf_cap - pre);
	if (h < 0 || pre + (size_t)h + len > fl->buf_cap)
		return WN_EMSGSIZE;
	if (len)
		memcpy(fl->buf + pre + h, payload, len);
	if (!f->enc)
		return fl->tp.send(fl, fl->buf, (size_t)h + len);
	size_t idl = wn_varint_len(f->id);
	struct wn_dgram_msg o = {.flow = f->id,
	                         .type = WN_DGRAM_FEC,
	                         .fec_data = f->fec_data,
	                         .fec_parity = f->fec_parity,
	                         .fec_delay = f->fec_delay};
	wn_dgfec_enc_peek(f->enc, &o.fec_group, &o.fec_index);
	if (wn_dgram_encode_hdr(&o, fl->buf, pre + idl) != (int)(pre + idl))
		return WN_EMSGSIZE;
	uint64_t now = now_ms(fl);
	int full = wn_dgfec_enc_add(f->enc, now, fl->buf + pre + idl,
	                            (size_t)h + len - idl);
	if (full < 0)
		return WN_EMSGSIZE;
	int r = fl->tp.send(fl, fl->buf, pre + (size_t)h + len);
	if (full) {
		fec_flush(f);
	} else if (!f->fec_open) {
		wn_list_add_tail(&fl->fec_open, &f->fec_node);
		f->fec_open = 1;
		fec_arm(fl, wn_dgfec_enc_deadline(f->enc), now);
	}
	return r;
}

int wn_flow_send(struct wn_flow *f, const uint8_t *data, size_t len)
{
	struct wn_flows *fl;

	if (!f || f->released || f->ended)
		return WN_ECLOSED;
	fl = f->fl;
	if (fl->finished)
		return WN_ECLOSED;
	size_t raw = fl->tp.max_msg(fl);
	if (raw == 0) {
		CNT(f, drop_queue, 1);
		return WN_EAGAIN;
	}
	size_t idl = wn_varint_len(f->id);
	size_t mm = f->enc ? fec_max_msg(raw, idl) : raw;
	size_t tgt = f->acked ? 0 : f->tgt_len;
	size_t part = cap_part(mm, idl);
	if (len > cap_dgram(mm, idl)) {
		CNT(f, drop_size, 1);
		WN_LOG_RL(
		    fl->log, &fl->rl, now_ms(fl), WN_LOG_DEBUG, LOG_COMP,
		    "flow %llu: datagram of %zu bytes too large (max %zu)",
		    (unsigned long long)f->id, len, cap_dgram(mm, idl));
		return WN_EMSGSIZE;
	}
	if (fl->buf_cap < raw) {
		uint8_t *nb = realloc(fl->buf, raw);
		if (!nb) {
			CNT(f, drop_queue, 1);
			return WN_EAGAIN;
		}
		fl->buf = nb;
		fl->buf_cap = raw;
	}
	struct wn_dgram_msg m = {.flow = f->id, .type = WN_DGRAM_DATA};
	if (tgt) {
		m.flags = WN_DGRAM_F_TARGET;
		m.target = f->tgt;
		m.target_len = tgt;
	}
	int r;
	if (len <= cap_single(mm, idl, tgt)) {
		r = send_msg(f, &m, data, len);
		if (r < 0)
			return send_failed(f, r);
		goto sent;
	}
	if (tgt && (tgt > part || len + tgt > 2 * part)) {
		/* Too large to carry the target too: the target goes alone,
		 * just before the datagram. */
		struct wn_dgram_msg o = m;
		o.type = WN_DGRAM_OPEN;
		r = send_msg(f, &o, NULL, 0);
		if (r < 0)
			return send_failed(f, r);
		m.flags = 0;
		m.target = NULL;
		m.target_len = 0;
		tgt = 0;
		if (len <= cap_single(mm, idl, 0)) {
			r = send_msg(f, &m, data, len);
			if (r < 0)
				return send_failed(f, r);
			goto sent;
		}
	}
	/* Two halves of about equal size (neither above part, since
	 * tgt + len <= 2 * part): index 0's body is the target and the
	 * first part of the datagram. */
	size_t b0 = (tgt + len + 1) / 2;
	if (b0 < tgt)
		b0 = tgt;
	size_t p0 = b0 - tgt;
	m.flags |= WN_DGRAM_F_FRAG;
	m.dgram_id = fl->next_dgram++;
	m.frag_index = 0;
	r = send_msg(f, &m, data, p0);
	if (r < 0)
		return send_failed(f, r);
	m.flags = WN_DGRAM_F_FRAG;
	m.target = NULL;
	m.target_len = 0;
	m.frag_index = 1;
	r = send_msg(f, &m, data + p0, len - p0);
	if (r < 0)
		return send_failed(f, r);
sent:
	CNT(f, dgrams_out, 1);
	CNT(f, bytes_out, len);
	if (f->enc && !f->acked && !fl->fec_warned &&
	    f->st.dgrams_out >= FB_FEC_SILENT_WARN && !fl->server) {
		fl->fec_warned = 1;
		WN_LOG(fl->log, WN_LOG_WARN, LOG_COMP,
		       "flow %llu: %llu datagrams with FEC and no answer from "
		       "the server: a server older than FEC drops them "
		       "(upgrade it, or set fec = off)",
		       (unsigned long long)f->id,
		       (unsigned long long)f->st.dgrams_out);
	}
	touch(f, 1, now_ms(fl));
	return 0;
}

/* ---- the flow table ------------------------------------------------------ */

/* Makes room for one more flow at the cap: the least recently used of
 * the flows not established goes, else an established one silent for
 * FB_PROTECT_MS. Returns 0, or WN_EAGAIN when every flow is established
 * and in use: a flood of new flows never pushes out flows in use. */
static int make_room(struct wn_flows *fl)
{
	uint64_t now = now_ms(fl);

	while (fl->live >= fl->max_flows && !wn_list_empty(&fl->lru)) {
		struct wn_flow *v;
		if (!wn_list_empty(&fl->fresh)) {
			v = wn_list_entry(fl->fresh.next, struct wn_flow,
			                  fresh);
		} else {
			v = wn_list_entry(fl->lru.next, struct wn_flow, lru);
			if (now - v->last_ms < FB_PROTECT_MS &&
			    now >= v->last_ms) {
				fl->st.flows_refused++;
				WN_LOG_RL(fl->log, &fl->rl, now, WN_LOG_INFO,
				          LOG_COMP,
				          "%zu flows (the cap), all in use: a "
				          "new flow refused",
				          fl->live);
				return WN_EAGAIN;
			}
		}
		WN_LOG_RL(fl->log, &fl->rl, now, WN_LOG_INFO, LOG_COMP,
		          "flow %llu: evicted (%zu flows, the cap)",
		          (unsigned long long)v->id, fl->live);
		send_ctrl(fl, v->id, WN_DGRAM_CLOSE, WN_STREAM_EVICTED);
		fl->st.flows_evicted++;
		end_flow(v, WN_STREAM_EVICTED);
	}
	return 0;
}

static struct wn_flow *flow_new(struct wn_flows *fl, uint64_t id)
{
	uint8_t key[8];
	struct wn_flow *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->fl = fl;
	f->id = id;
	wn_deferred_init(&f->dnode);
	id_key(id, key);
	if (wn_cidmap_add(&fl->map, key, sizeof(key), f) < 0) {
		free(f);
		return NULL;
	}
	f->last_ms = now_ms(fl);
	wn_list_add_tail(&fl->lru, &f->lru);
	wn_list_add_tail(&fl->fresh, &f->fresh);
	fl->live++;
	fl->st.flows_opened++;
	if (id > fl->id_hi)
		fl->id_hi = id;
	return f;
}

struct wn_flow *wn_fb_open_flow(struct wn_flows *fl,
                                const struct wn_endpoint *target,
                                const struct wn_flow_handler *h)
{
	uint8_t tgt[WN_DGRAM_TARGET_MAX];

	if (fl->server || fl->finished || fl->next_id > WN_DGRAM_FLOW_MAX)
		return NULL;
	int n = wn_dgram_target_encode(target, tgt, sizeof(tgt));
	if (n <= 0)
		return NULL;
	if (make_room(fl) < 0)
		return NULL;
	struct wn_flow *f = flow_new(fl, fl->next_id);
	if (!f)
		return NULL;
	fl->next_id++;
	memcpy(f->tgt, tgt, (size_t)n);
	f->tgt_len = (uint16_t)n;
	f->h = *h;
	f->has_handler = 1;
	WN_LOG_RL(fl->log, &fl->rl_life, now_ms(fl), WN_LOG_DEBUG, LOG_COMP,
	          "flow %llu: opened", (unsigned long long)f->id);
	return f;
}

void wn_flow_close(struct wn_flow *f)
{
	if (!f || f->released)
		return;
	f->released = 1;
	if (!f->ended) {
		/* The last group's parity still protects its datagrams. */
		if (f->fec_open && !f->fl->finished)
			fec_flush(f);
		send_ctrl(f->fl, f->id, WN_DGRAM_CLOSE, WN_STREAM_OK);
		end_flow(f, WN_STREAM_OK);
	}
}

void wn_flow_refuse(struct wn_flow *f, int err)
{
	if (!f || f->released)
		return;
	if (f->accepting)
		f->refused = 1;
	f->released = 1;
	if (!f->ended) {
		send_ctrl(f->fl, f->id, WN_DGRAM_CLOSE, err);
		end_flow(f, err);
	}
}

void wn_flow_set_handler(struct wn_flow *f, const struct wn_flow_handler *h)
{
	f->h = *h;
	f->has_handler = 1;
}

/* Makes f's encoder for these counts, within the session's budget. */
static int fec_enc_make(struct wn_flow *f, unsigned data, unsigned parity,
                        unsigned delay_ms)
{
	struct wn_flows *fl = f->fl;
	size_t need = enc_mem(data, parity);

	if (fl->fec_mem + need > FB_FEC_MEM_MAX)
		return WN_ENOMEM;
	struct wn_dgfec_enc *e = malloc(sizeof(*e));
	if (!e)
		return WN_ENOMEM;
	int rc = wn_dgfec_enc_init(e, data, parity, delay_ms);
	if (rc < 0) {
		free(e);
		return rc;
	}
	f->enc = e;
	fl->fec_mem += need;
	return 0;
}

int wn_flow_set_fec(struct wn_flow *f, unsigned data, unsigned parity,
                    unsigned delay_ms)
{
	if (!f || f->released || f->ended || f->fl->server || f->fec_data ||
	    f->st.dgrams_out)
		return WN_EINVAL;
	int rc = fec_enc_make(f, data, parity, delay_ms);
	if (rc < 0)
		return rc;
	f->fec_data = (uint8_t)data;
	f->fec_parity = (uint8_t)parity;
	f->fec_delay = (uint8_t)delay_ms;
	return 0;
}

uint64_t wn_flow_id(const struct wn_flow *f)
{
	return f->id;
}

void wn_flow_stats(const struct wn_flow *f, struct wn_flow_stats *out)
{
	*out = f->st;
}

/* ---- receiving ------------------------------------------------------------ */

static void bad_msg(struct wn_flows *fl, uint64_t now, const char *why)
{
	fl->st.bad_msgs++;
	WN_LOG_RL(fl->log, &fl->rl, now, WN_LOG_WARN, LOG_COMP,
	          "malformed flow message dropped: %s", why);
}

static void deliver(struct wn_flow *f, const uint8_t *p, size_t len)
{
	if (f->ended || f->released)
		return;
	CNT(f, dgrams_in, 1);
	CNT(f, bytes_in, len);
	touch(f, 0, now_ms(f->fl));
	if (f->has_handler && f->h.on_datagram)
		f->h.on_datagram(f->h.ctx, f, p, len);
}

/* Server: a target-bearing message for a flow id we do not know: a new
 * flow, handed to the accept handler. */
static void accept_flow(struct wn_flows *fl, uint64_t id, const uint8_t *tgt,
                        size_t tlen, const uint8_t *p, size_t len,
                        int has_dgram, uint64_t now)
{
	struct wn_endpoint ep;
	int dflt;

	if (wn_dgram_target_decode(tgt, tlen, &ep, &dflt) != (int)tlen) {
		bad_msg(fl, now, "bad target");
		return;
	}
	if (make_room(fl) < 0) {
		/* Told, so its client stops sending on it; it may try again
		 * (its next datagram carries the target again). */
		send_ctrl(fl, id, WN_DGRAM_CLOSE, WN_STREAM_EVICTED);
		return;
	}
	struct wn_flow *f = flow_new(fl, id);
	if (!f) {
		fl->st.drop_queue++;
		return;
	}
	memcpy(f->tgt, tgt, tlen);
	f->tgt_len = (uint16_t)tlen;
	f->acked = 1; /* the server's own messages carry no target */
	if (!fl->ah.on_flow) {
		if (has_dgram)
			CNT(f, drop_policy, 1);
		wn_flow_refuse(f, WN_STREAM_DENIED);
		return;
	}
	f->accepting = 1;
	fl->ah.on_flow(fl->ah.ctx, fl->t, f, dflt ? NULL : &ep);
	f->accepting = 0;
	if (f->refused) {
		if (has_dgram)
			CNT(f, drop_policy, 1);
		WN_LOG_RL(fl->log, &fl->rl, now, WN_LOG_DEBUG, LOG_COMP,
		          "flow %llu: refused: %s", (unsigned long long)id,
		          wn_stream_err_str(f->err));
		return;
	}
	if (f->ended || f->released)
		return;
	if (!f->has_handler) {
		WN_LOG_RL(fl->log, &fl->rl, now, WN_LOG_WARN, LOG_COMP,
		          "flow %llu: accept handler set no handler (refused)",
		          (unsigned long long)id);
		wn_flow_refuse(f, WN_STREAM_INTERNAL);
		return;
	}
	WN_LOG_RL(fl->log, &fl->rl_life, now, WN_LOG_DEBUG, LOG_COMP,
	          "flow %llu: accepted", (unsigned long long)id);
	send_ctrl(fl, id, WN_DGRAM_ACK, 0);
	f->last_ack_ms = now;
	if (has_dgram)
		deliver(f, p, len);
}

/* A whole datagram (or OPEN, has_dgram 0) for flow id; tgt is its target
 * encoding when it carried one. */
static void on_data(struct wn_flows *fl, uint64_t id, const uint8_t *tgt,
                    size_t tlen, const uint8_t *p, size_t len, int has_dgram,
                    uint64_t now)
{
	struct wn_flow *f = lookup(fl, id);

	if (!fl->server) {
		if (tlen) {
			bad_msg(fl, now, "target from the server");
			return;
		}
		if (!f) {
			/* We closed it and our CLOSE was lost: say so again. */
			fl->st.unknown_flow++;
			if (reply_allowed(fl, now))
				send_ctrl(fl, id, WN_DGRAM_CLOSE, WN_STREAM_OK);
			return;
		}
		/* The server sends only on flows it took. */
		f->acked = 1;
		deliver(f, p, len);
		return;
	}
	if (f) {
		if (tlen) {
			/* A flow's target never changes: the server checked
			 * this one, not another. */
			if (tlen != f->tgt_len || memcmp(tgt, f->tgt, tlen)) {
				bad_msg(fl, now, "target changed");
				return;
			}
			/* Our ACK may have been lost. */
			if (now - f->last_ack_ms >= FB_REACK_MS ||
			    now < f->last_ack_ms) {
				send_ctrl(fl, id, WN_DGRAM_ACK, 0);
				f->last_ack_ms = now;
			}
		}
		if (has_dgram)
			deliver(f, p, len);
		return;
	}
	if (!tlen) {
		/* We lost the flow (a new session, or evicted): the client
		 * sends its target again once told. */
		fl->st.unknown_flow++;
		if (reply_allowed(fl, now))
			send_ctrl(fl, id, WN_DGRAM_UNKNOWN, 0);
		return;
	}
	if (id > WN_DGRAM_FLOW_MAX) {
		bad_msg(fl, now, "flow id");
		return;
	}
	accept_flow(fl, id, tgt, tlen, p, len, has_dgram, now);
}

static void frag_lost(void *ctx, uint64_t id)
{
	struct wn_flows *fl = ctx;
	struct wn_flow *f = lookup(fl, id);

	if (f)
		CNT(f, frag_lost, 1);
	else
		fl->st.frag_lost++;
}

static void on_frag(struct wn_flows *fl, const struct wn_dgram_msg *m,
                    uint64_t now)
{
	if (!fl->frag) {
		fl->frag = malloc(sizeof(*fl->frag));
		if (!fl->frag) {
			fl->st.drop_queue++;
			return;
		}
		wn_dgfrag_init(fl->frag, 0, frag_lost, fl);
	}
	uint8_t meta;
	int n = wn_dgfrag_add(fl->frag, now, m->flow, m->dgram_id,
	                      m->frag_index, (uint8_t)m->flags, m->body,
	                      m->body_len, fl->rbuf, sizeof(fl->rbuf), &meta);
	if (n == 0)
		return;
	if (n < 0) {
		struct wn_flow *f = lookup(fl, m->flow);
		if (f)
			CNT(f, drop_size, 1);
		else
			fl->st.drop_size++;
		return;
	}
	size_t tlen = 0;
	if (meta & WN_DGRAM_F_TARGET) {
		struct wn_endpoint ep;
		int dflt;
		int t = wn_dgram_target_decode(fl->rbuf, (size_t)n, &ep, &dflt);
		if (t < 0) {
			bad_msg(fl, now, "bad target");
			return;
		}
		tlen = (size_t)t;
	}
	on_data(fl, m->flow, tlen ? fl->rbuf : NULL, tlen, fl->rbuf + tlen,
	        (size_t)n - tlen, 1, now);
}

/* A DATA or OPEN message, on its own or out of an FEC shard. */
static void dispatch(struct wn_flows *fl, const struct wn_dgram_msg *m,
                     uint64_t now)
{
	if (m->type == WN_DGRAM_OPEN) {
		on_data(fl, m->flow, m->target, m->target_len, NULL, 0, 0, now);
		return;
	}
	if (m->flags & WN_DGRAM_F_FRAG) {
		if (!fl->server && (m->flags & WN_DGRAM_F_TARGET)) {
			bad_msg(fl, now, "target from the server");
			return;
		}
		on_frag(fl, m, now);
		return;
	}
	on_data(fl, m->flow, m->target, m->target_len, m->payload,
	        m->payload_len, 1, now);
}

/* ---- FEC: receiving ------------------------------------------------------- */

struct fec_rx {
	struct wn_flows *fl;
	uint64_t id, now;
};

/* A message rebuilt from parity. */
static void fec_deliver(void *ctx, const uint8_t *msg, size_t len)
{
	struct fec_rx *x = ctx;
	struct wn_dgram_msg in;

	if (wn_dgram_decode_inner(x->id, msg, len, &in) < 0) {
		bad_msg(x->fl, x->now, "bad rebuilt FEC shard");
		return;
	}
	dispatch(x->fl, &in, x->now);
}

/* f's decoder, made now if need be; on the server, whose flows take FEC
 * as their client's messages say, the encoder for the replies too. NULL
 * when the budget (or memory) says no: the peer's data shards are then
 * delivered and its parity ignored. */
static struct wn_dgfec_dec *fec_dec(struct wn_flow *f,
                                    const struct wn_dgram_msg *m, uint64_t now)
{
	struct wn_flows *fl = f->fl;

	if (f->dec || f->ended || f->fec_nomem)
		return f->dec;
	if (!f->fec_data) {
		f->fec_data = m->fec_data;
		f->fec_parity = m->fec_parity;
		f->fec_delay = m->fec_delay;
		if (fec_enc_make(f, m->fec_data, m->fec_parity, m->fec_delay) <
		    0)
			f->fec_nomem = 1;
	}
	size_t need = wn_dgfec_dec_size(f->fec_data, f->fec_parity);
	if (!f->fec_nomem &&
	    (fl->fec_mem + need > FB_FEC_MEM_MAX ||
	     wn_dgfec_dec_new(f->fec_data, f->fec_parity, &f->dec) < 0))
		f->fec_nomem = 1;
	if (f->fec_nomem) {
		fl->st.fec_nomem++;
		WN_LOG_RL(fl->log, &fl->rl, now, WN_LOG_WARN, LOG_COMP,
		          "flow %llu: no memory for FEC (%zu bytes held): "
		          "datagrams travel without repair",
		          (unsigned long long)f->id, fl->fec_mem);
		return f->dec;
	}
	fl->fec_mem += need;
	return f->dec;
}

/* Rebuilds what group now allows and counts it. */
static void fec_recover(struct wn_flow *f, uint16_t group, struct fec_rx *x)
{
	struct wn_dgfec_stats was;

	if (f->ended)
		return;
	wn_dgfec_dec_stats(f->dec, &was);
	wn_dgfec_dec_recover(f->dec, group, fec_deliver, x);
	fec_count(f, &was);
}

static void on_fec(struct wn_flows *fl, const struct wn_dgram_msg *m,
                   uint64_t now)
{
	struct wn_flow *f = lookup(fl, m->flow);
	struct fec_rx x = {.fl = fl, .id = m->flow, .now = now};
	struct wn_dgfec_stats was;
	struct wn_dgram_msg in;
	int data = m->fec_index < m->fec_data;

	if (data &&
	    wn_dgram_decode_inner(m->flow, m->body, m->body_len, &in) < 0) {
		bad_msg(fl, now, "bad FEC shard");
		return;
	}
	if (f && f->fec_data &&
	    (m->fec_data != f->fec_data || m->fec_parity != f->fec_parity)) {
		bad_msg(fl, now, "FEC counts changed");
		return;
	}
	if (f && !f->fec_data && !fl->server) {
		bad_msg(fl, now, "FEC on a flow without");
		return;
	}
	if (!data) {
		if (!f) {
			fl->st.unknown_flow++;
			return;
		}
		struct wn_dgfec_dec *d = fec_dec(f, m, now);
		if (!d)
			return;
		wn_dgfec_dec_stats(d, &was);
		wn_dgfec_dec_parity(d, m->fec_group, m->fec_index, m->fec_count,
		                    m->body, m->body_len);
		fec_count(f, &was);
		fec_recover(f, m->fec_group, &x);
		return;
	}
	struct wn_dgfec_dec *d = f ? fec_dec(f, m, now) : NULL;
	if (d && !wn_dgfec_dec_data(d, m->fec_group, m->fec_index, m->body,
	                            m->body_len))
		return; /* a duplicate */
	dispatch(fl, &in, now);
	if (!d) {
		/* The server may have just taken the flow. */
		f = lookup(fl, m->flow);
		if (!f || !fl->server || !(d = fec_dec(f, m, now)))
			return;
		(void)wn_dgfec_dec_data(d, m->fec_group, m->fec_index, m->body,
		                        m->body_len);
	}
	fec_recover(f, m->fec_group, &x);
}

void wn_fb_recv(struct wn_flows *fl, const uint8_t *msg, size_t len)
{
	struct wn_dgram_msg m;

	if (fl->finished)
		return;
	uint64_t now = now_ms(fl);
	if (wn_dgram_decode(msg, len, &m) < 0) {
		bad_msg(fl, now, "undecodable");
		return;
	}
	if (fl->frag)
		wn_dgfrag_expire(fl->frag, now);
	struct wn_flow *f;
	switch (m.type) {
	case WN_DGRAM_DATA:
	case WN_DGRAM_OPEN:
		dispatch(fl, &m, now);
		return;
	case WN_DGRAM_FEC:
		on_fec(fl, &m, now);
		return;
	case WN_DGRAM_ACK:
	case WN_DGRAM_UNKNOWN:
		if (fl->server) {
			bad_msg(fl, now, "client-bound message");
			return;
		}
		f = lookup(fl, m.flow);
		if (!f) {
			fl->st.unknown_flow++;
			if (m.type == WN_DGRAM_ACK && reply_allowed(fl, now))
				send_ctrl(fl, m.flow, WN_DGRAM_CLOSE,
				          WN_STREAM_OK);
			return;
		}
		/* ACK: the targets stop; UNKNOWN: they travel again. */
		f->acked = m.type == WN_DGRAM_ACK;
		/* The server makes the flow again, and its FEC counter
		 * starts over. */
		if (m.type == WN_DGRAM_UNKNOWN)
			fec_dec_reset(f);
		return;
	case WN_DGRAM_CLOSE:
		f = lookup(fl, m.flow);
		if (!f) {
			fl->st.unknown_flow++;
			return;
		}
		if (!fl->server && m.reason == WN_STREAM_DENIED)
			CNT(f, drop_policy, 1);
		end_flow(f, m.reason);
		return;
	default:
		bad_msg(fl, now, "type");
		return;
	}
}

/* ---- the session ---------------------------------------------------------- */

struct wn_flows *wn_fb_new(const struct wn_fb_transport *tp, void *ctx,
                           struct wn_loop *loop, struct wn_log *log,
                           struct wn_tunnel *t,
                           const struct wn_accept_handler *ah,
                           unsigned max_flows)
{
	struct wn_flows *fl = calloc(1, sizeof(*fl));

	if (!fl)
		return NULL;
	if (wn_cidmap_init(&fl->map) < 0) {
		free(fl);
		return NULL;
	}
	fl->tp = *tp;
	fl->ctx = ctx;
	fl->loop = loop;
	fl->log = log;
	fl->t = t;
	if (ah) {
		fl->ah = *ah;
		fl->server = 1;
	}
	fl->max_flows = max_flows ? max_flows : FB_DEFAULT_MAX_FLOWS;
	wn_list_init(&fl->lru);
	wn_list_init(&fl->fresh);
	wn_list_init(&fl->fec_open);
	wn_deferred_init(&fl->dnode);
	fl->rl = (struct wn_ratelimit)WN_RATELIMIT_INIT(1000, 5);
	fl->rl_life = (struct wn_ratelimit)WN_RATELIMIT_INIT(1000, 20);
	return fl;
}

void *wn_fb_ctx(const struct wn_flows *fl)
{
	return fl->ctx;
}

void wn_fb_session_changed(struct wn_flows *fl)
{
	for (struct wn_list *n = fl->lru.next; n != &fl->lru; n = n->next) {
		struct wn_flow *f = wn_list_entry(n, struct wn_flow, lru);
		f->acked = 0;
		/* The new session's server flows count groups from 0. */
		fec_dec_reset(f);
	}
	if (fl->frag)
		wn_dgfrag_clear(fl->frag);
}

void wn_fb_finish(struct wn_flows *fl, int err)
{
	if (fl->finished)
		return;
	fl->finished = 1;
	while (!wn_list_empty(&fl->lru))
		end_flow(wn_list_entry(fl->lru.next, struct wn_flow, lru), err);
	if (fl->frag)
		wn_dgfrag_clear(fl->frag);
	if (fl->fec_timer_ok)
		wn_timer_stop(&fl->fec_timer);
	fl->fec_timer_at = 0;
}

void wn_fb_free(struct wn_flows *fl)
{
	if (!fl || fl->freeing)
		return;
	wn_fb_finish(fl, WN_STREAM_SESSION_LOST);
	fl->freeing = 1;
	if (fl->pending == 0)
		wn_loop_defer(fl->loop, &fl->dnode, free_deferred);
}

void wn_fb_stats(const struct wn_flows *fl, struct wn_flows_stats *out)
{
	*out = fl->st;
}
