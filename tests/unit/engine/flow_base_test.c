/* The flow base, two-ended: a client and a server struct wn_flows joined
 * by an in-memory message link the test controls (loss by message kind,
 * reordering, duplication, the largest message), on a real wn_loop (for
 * the deferred closes) with the clock injected through the transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/dgfrag.h"
#include "core/dgram.h"
#include "engine/engine.h"
#include "engine/flow_base.h"
#include "util/err.h"

#define QMAX 512
#define MSGMAX 4096

struct env;

struct link {
	struct env *e;
	int to_server;
	size_t n;
	size_t len[QMAX];
	uint8_t q[QMAX][MSGMAX];
	/* What is lost: messages whose type (1 << type) is in drop_types,
	 * DATA fragments of index 1 when drop_frag1, everything when cut. */
	unsigned drop_types;
	int drop_frag1;
	int cut;
	unsigned loss_ppm; /* each message lost with this chance */
	uint64_t rng;      /* for loss_ppm (seeded by the test) */
	unsigned drop_fec; /* lose the drop_fec'th FEC message (from 1) */
	unsigned fec_seen;
	int reorder;           /* deliver each batch backwards */
	int dup;               /* deliver each message twice */
	unsigned sent_type[8]; /* messages taken, by type */
	unsigned with_target;  /* DATA/OPEN messages that carried a target */
	unsigned frags;        /* DATA fragments taken */
	size_t largest;
};

struct rec {
	struct wn_flow *f;
	int closed, err, ndg;
	int in_call; /* set while an API call of ours runs */
	size_t last_len;
	uint8_t last[MSGMAX];
	int close_in_datagram;
	int echo;
};

#define NREC 256

struct env {
	struct wn_loop loop;
	uint64_t now;
	size_t max_msg;
	int up;
	struct wn_flows *cli, *srv;
	struct wn_tunnel tc, ts;
	struct link c2s, s2c;
	struct wn_accept_handler ah;
	/* The server's accept behaviour. */
	int refuse;     /* refuse with this reason (0: accept) */
	int no_handler; /* return from on_flow without a handler */
	int echo;
	unsigned accepted;
	struct wn_endpoint last_target;
	int last_default;
	struct rec srec[NREC];
	unsigned nsrec;
	int api_depth; /* inside one of our API calls: no handler allowed */
};

static struct env *E;

/* ---- the transport -------------------------------------------------------- */

static int tp_send(struct wn_flows *fl, const uint8_t *msg, size_t len)
{
	struct link *l = wn_fb_ctx(fl);
	struct env *e = l->e;
	struct wn_dgram_msg m;

	if (!e->up)
		return WN_EAGAIN;
	if (len > e->max_msg)
		return WN_EMSGSIZE;
	if (l->n == QMAX)
		return WN_EAGAIN;
	assert_true(len <= MSGMAX);
	/* The base only ever sends what decodes. */
	assert_int_equal(wn_dgram_decode(msg, len, &m), 0);
	l->sent_type[m.type]++;
	if (m.flags & WN_DGRAM_F_TARGET)
		l->with_target++;
	if (m.flags & WN_DGRAM_F_FRAG)
		l->frags++;
	if (len > l->largest)
		l->largest = len;
	memcpy(l->q[l->n], msg, len);
	l->len[l->n++] = len;
	return 0;
}

static size_t tp_max_msg(const struct wn_flows *fl)
{
	const struct link *l = wn_fb_ctx(fl);
	return l->e->up ? l->e->max_msg : 0;
}

static uint64_t tp_now(const struct wn_flows *fl)
{
	const struct link *l = wn_fb_ctx(fl);
	return l->e->now;
}

static const struct wn_fb_transport TP = {
    .send = tp_send, .max_msg = tp_max_msg, .now_ms = tp_now};

static int lost(struct link *l, const uint8_t *msg, size_t len)
{
	struct wn_dgram_msg m;
	if (l->cut)
		return 1;
	if (l->loss_ppm) {
		l->rng ^= l->rng << 13;
		l->rng ^= l->rng >> 7;
		l->rng ^= l->rng << 17;
		if (l->rng % 1000000 < l->loss_ppm)
			return 1;
	}
	if (wn_dgram_decode(msg, len, &m) < 0)
		return 0;
	if (m.type == WN_DGRAM_FEC && ++l->fec_seen == l->drop_fec)
		return 1;
	if (l->drop_types & (1u << m.type))
		return 1;
	return l->drop_frag1 && (m.flags & WN_DGRAM_F_FRAG) && m.frag_index;
}

static void spin(struct env *e)
{
	for (int i = 0; i < 3; i++)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT);
}

/* Delivers one direction's queue (the batch taken now). */
static int deliver_link(struct link *l)
{
	static uint8_t q[QMAX][MSGMAX];
	static size_t len[QMAX];
	size_t n = l->n;

	memcpy(len, l->len, n * sizeof(len[0]));
	for (size_t i = 0; i < n; i++)
		memcpy(q[i], l->q[i], l->len[i]);
	l->n = 0;
	for (size_t k = 0; k < n; k++) {
		size_t i = l->reorder ? n - 1 - k : k;
		struct wn_flows *dst = l->to_server ? l->e->srv : l->e->cli;
		if (lost(l, q[i], len[i]) || !dst)
			continue;
		wn_fb_recv(dst, q[i], len[i]);
		if (l->dup)
			wn_fb_recv(dst, q[i], len[i]);
	}
	return (int)n;
}

static void pump(struct env *e)
{
	for (int round = 0; round < 20; round++) {
		int moved = deliver_link(&e->c2s) + deliver_link(&e->s2c);
		spin(e);
		if (!moved && !e->c2s.n && !e->s2c.n)
			return;
	}
}

/* ---- handlers ------------------------------------------------------------- */

static void h_datagram(void *ctx, struct wn_flow *f, const uint8_t *p,
                       size_t len)
{
	struct rec *r = ctx;
	assert_int_equal(E->api_depth, 0);
	assert_ptr_equal(r->f, f);
	assert_false(r->closed);
	r->ndg++;
	r->last_len = len;
	memcpy(r->last, p, len);
	if (r->echo)
		(void)wn_flow_send(f, p, len);
	if (r->close_in_datagram) {
		wn_flow_close(f);
		r->closed = -1; /* released: no call may follow */
	}
}

static void h_closed(void *ctx, struct wn_flow *f, int err)
{
	struct rec *r = ctx;
	assert_int_equal(E->api_depth, 0);
	assert_ptr_equal(r->f, f);
	assert_int_equal(r->closed, 0);
	r->closed = 1;
	r->err = err;
}

static const struct wn_flow_handler H = {.on_datagram = h_datagram,
                                         .on_flow_closed = h_closed};

static void on_flow(void *ctx, struct wn_tunnel *t, struct wn_flow *f,
                    const struct wn_endpoint *target)
{
	struct env *e = ctx;
	assert_ptr_equal(t, &e->ts);
	e->accepted++;
	e->last_default = target == NULL;
	if (target)
		e->last_target = *target;
	if (e->refuse) {
		wn_flow_refuse(f, e->refuse);
		return;
	}
	if (e->no_handler)
		return;
	assert_true(e->nsrec < NREC);
	struct rec *r = &e->srec[e->nsrec++];
	memset(r, 0, sizeof(*r));
	r->f = f;
	r->echo = e->echo;
	struct wn_flow_handler h = H;
	h.ctx = r;
	wn_flow_set_handler(f, &h);
}

/* ---- set-up ----------------------------------------------------------------- */

static struct wn_flows *new_server(struct env *e, unsigned cap)
{
	e->ah = (struct wn_accept_handler){.ctx = e, .on_flow = on_flow};
	struct wn_flows *s =
	    wn_fb_new(&TP, &e->s2c, &e->loop, NULL, &e->ts, &e->ah, cap);
	assert_non_null(s);
	e->ts.flows = s;
	return s;
}

/* The client's logger for start() (NULL: none). */
static struct wn_log *cli_log;

static struct env *start(unsigned cli_cap, unsigned srv_cap)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	E = e;
	assert_int_equal(wn_loop_init(&e->loop), 0);
	e->now = 1000000;
	e->max_msg = 1150;
	e->up = 1;
	e->c2s.e = e->s2c.e = e;
	e->c2s.to_server = 1;
	e->cli =
	    wn_fb_new(&TP, &e->c2s, &e->loop, cli_log, &e->tc, NULL, cli_cap);
	assert_non_null(e->cli);
	e->tc.flows = e->cli;
	e->srv = new_server(e, srv_cap);
	return e;
}

static void stop(struct env *e)
{
	wn_fb_finish(e->cli, WN_STREAM_SESSION_LOST);
	wn_fb_finish(e->srv, WN_STREAM_SESSION_LOST);
	wn_fb_free(e->cli);
	wn_fb_free(e->srv);
	spin(e);
	assert_int_equal(wn_loop_close(&e->loop), 0);
	free(e);
	E = NULL;
}

static struct wn_endpoint udp(const char *s)
{
	struct wn_endpoint ep;
	const char *why;
	assert_int_equal(
	    wn_endpoint_parse(s, WN_SCHEME_UDP, WN_SCHEME_UDP, 0, &ep, &why),
	    0);
	return ep;
}

static struct wn_flow *open_flow(struct env *e, struct rec *r, const char *t)
{
	struct wn_endpoint ep;
	struct wn_flow_handler h = H;
	memset(r, 0, sizeof(*r));
	h.ctx = r;
	if (t)
		ep = udp(t);
	e->api_depth++;
	r->f = wn_tunnel_open_flow(&e->tc, t ? &ep : NULL, &h);
	e->api_depth--;
	return r->f;
}

static int send_(struct env *e, struct wn_flow *f, const void *p, size_t len)
{
	e->api_depth++;
	int r = wn_flow_send(f, p, len);
	e->api_depth--;
	return r;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_tunnel_without_flows(void **state)
{
	(void)state;
	struct wn_tunnel t = {0};
	struct wn_endpoint ep = udp("10.0.0.9:53");
	assert_int_equal(wn_tunnel_has_datagrams(&t), 0);
	assert_int_equal(wn_tunnel_max_datagram(&t), 0);
	assert_null(wn_tunnel_open_flow(&t, &ep, &H));
	assert_string_equal(wn_stream_err_str(WN_STREAM_EVICTED),
	                    "evicted: too many flows");
}

static void test_open_target_until_ack(void **state)
{
	(void)state;
	struct env *e = start(0, 0);
	struct rec c;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	assert_non_null(f);
	assert_int_equal(wn_tunnel_has_datagrams(&e->tc), 1);
	/* Opening costs no message: the target rides with the data. */
	assert_int_equal(e->c2s.n, 0);
	assert_int_equal(send_(e, f, "q1", 2), 0);
	assert_int_equal(send_(e, f, "q2", 2), 0);
	assert_int_equal(e->c2s.with_target, 2);
	pump(e);
	assert_int_equal(e->accepted, 1);
	assert_int_equal(e->last_default, 0);
	assert_int_equal(e->last_target.port, 53);
	assert_int_equal(e->last_target.scheme, WN_SCHEME_UDP);
	assert_string_equal(e->last_target.host, "10.0.0.9");
	struct rec *s = &e->srec[0];
	assert_int_equal(s->ndg, 2);
	assert_int_equal(s->last_len, 2);
	assert_memory_equal(s->last, "q2", 2);
	assert_int_equal(e->s2c.sent_type[WN_DGRAM_ACK], 1);
	/* Acknowledged: the target stops. */
	assert_int_equal(send_(e, f, "q3", 2), 0);
	assert_int_equal(e->c2s.with_target, 2);
	pump(e);
	assert_int_equal(s->ndg, 3);
	/* And back. */
	assert_int_equal(send_(e, s->f, "answer", 6), 0);
	pump(e);
	assert_int_equal(c.ndg, 1);
	assert_memory_equal(c.last, "answer", 6);
	assert_true(wn_flow_id(f) == wn_flow_id(s->f));
	struct wn_flow_stats fs;
	wn_flow_stats(f, &fs);
	assert_true(fs.dgrams_out == 3 && fs.bytes_out == 6);
	assert_true(fs.dgrams_in == 1 && fs.bytes_in == 6);
	struct wn_flows_stats ss;
	wn_fb_stats(e->srv, &ss);
	assert_true(ss.flows_opened == 1 && ss.dgrams_in == 3);
	assert_true(ss.dgrams_out == 1 && ss.bad_msgs == 0);
	/* The default target is a NULL target on the server. */
	struct rec d;
	assert_non_null(open_flow(e, &d, NULL));
	assert_int_equal(send_(e, d.f, "x", 1), 0);
	pump(e);
	assert_int_equal(e->accepted, 2);
	assert_int_equal(e->last_default, 1);
	stop(e);
}

static void test_ack_lost_is_repeated(void **state)
{
	(void)state;
	struct env *e = start(0, 0);
	struct rec c;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	e->s2c.drop_types = 1u << WN_DGRAM_ACK;
	for (int i = 0; i < 5; i++) {
		assert_int_equal(send_(e, f, "d", 1), 0);
		pump(e);
	}
	/* One flow, every datagram delivered, and ACKs no more often than
	 * the re-ACK interval (the clock has not moved). */
	assert_int_equal(e->accepted, 1);
	assert_int_equal(e->srec[0].ndg, 5);
	assert_int_equal(e->s2c.sent_type[WN_DGRAM_ACK], 1);
	assert_int_equal(e->c2s.with_target, 5);
	e->s2c.drop_types = 0;
	e->now += 100;
	assert_int_equal(send_(e, f, "d", 1), 0);
	pump(e);
	assert_int_equal(e->s2c.sent_type[WN_DGRAM_ACK], 2);
	assert_int_equal(send_(e, f, "d", 1), 0);
	assert_int_equal(e->c2s.with_target, 6);
	pump(e);
	assert_int_equal(e->srec[0].ndg, 7);
	/* Data from the server acknowledges too: a new session forgets
	 * the ACK, the server's answer (its ACK lost) brings it back. */
	wn_fb_session_changed(e->cli);
	e->s2c.drop_types = 1u << WN_DGRAM_ACK;
	assert_int_equal(send_(e, f, "d", 1), 0);
	assert_int_equal(e->c2s.with_target, 7);
	pump(e);
	assert_int_equal(send_(e, e->srec[0].f, "r", 1), 0);
	pump(e);
	assert_int_equal(send_(e, f, "d", 1), 0);
	assert_int_equal(e->c2s.with_target, 7);
	stop(e);
}

static void test_refusal_reaches_the_client(void **state)
{
	(void)state;
	struct env *e = start(0, 0);
	struct rec c;
	e->refuse = WN_STREAM_DENIED;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(send_(e, f, "d", 1), 0);
	pump(e);
	assert_int_equal(c.closed, 1);
	assert_int_equal(c.err, WN_STREAM_DENIED);
	assert_int_equal(c.ndg, 0);
	struct wn_flows_stats ss, cs;
	wn_fb_stats(e->srv, &ss);
	wn_fb_stats(e->cli, &cs);
	assert_true(ss.drop_policy == 1 && ss.dgrams_in == 0);
	assert_true(cs.drop_policy == 1 && cs.flows_closed == 1);
	/* A server that takes no flows refuses them all. */
	e->ah.on_flow = NULL;
	wn_fb_free(e->srv);
	e->ah = (struct wn_accept_handler){.ctx = e};
	e->srv = wn_fb_new(&TP, &e->s2c, &e->loop, NULL, &e->ts, &e->ah, 0);
	e->refuse = 0;
	f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(send_(e, f, "d", 1), 0);
	pump(e);
	assert_int_equal(c.closed, 1);
	assert_int_equal(c.err, WN_STREAM_DENIED);
	/* An accept handler that neither sets a handler nor refuses: the
	 * flow is refused as an internal error. */
	wn_fb_free(e->srv);
	e->srv = new_server(e, 0);
	e->no_handler = 1;
	f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(send_(e, f, "d", 1), 0);
	pump(e);
	assert_int_equal(c.closed, 1);
	assert_int_equal(c.err, WN_STREAM_INTERNAL);
	stop(e);
}

static void test_server_restart_resends_target(void **state)
{
	(void)state;
	struct env *e = start(0, 0);
	struct rec c;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(send_(e, f, "a", 1), 0);
	pump(e);
	struct rec *old = &e->srec[0];
	assert_int_equal(old->ndg, 1);
	/* The server's session ends; a new one knows no flows. */
	wn_fb_finish(e->srv, WN_STREAM_SESSION_LOST);
	wn_fb_free(e->srv);
	e->srv = new_server(e, 0);
	spin(e);
	assert_int_equal(old->closed, 1);
	assert_int_equal(old->err, WN_STREAM_SESSION_LOST);
	assert_int_equal(send_(e, f, "lost", 4), 0);
	assert_int_equal(e->c2s.with_target, 1);
	pump(e);
	struct wn_flows_stats ss;
	wn_fb_stats(e->srv, &ss);
	assert_true(ss.unknown_flow == 1 && ss.dgrams_in == 0);
	assert_int_equal(e->s2c.sent_type[WN_DGRAM_UNKNOWN], 1);
	/* Told, the client sends the target again and the flow works. */
	assert_int_equal(send_(e, f, "again", 5), 0);
	assert_int_equal(e->c2s.with_target, 2);
	pump(e);
	assert_int_equal(e->accepted, 2);
	struct rec *s = &e->srec[1];
	assert_int_equal(s->ndg, 1);
	assert_memory_equal(s->last, "again", 5);
	assert_int_equal(send_(e, f, "more", 4), 0);
	assert_int_equal(e->c2s.with_target, 2);
	pump(e);
	assert_int_equal(s->ndg, 2);
	assert_int_equal(c.closed, 0);
	stop(e);
}

static void sizes_at(size_t max_msg, const char *target)
{
	static const size_t sizes[] = {1, 1200, 1472, 1500};
	static uint8_t buf[1500];
	struct env *e = start(0, 0);
	e->max_msg = max_msg;
	e->echo = 1;
	assert_true(wn_tunnel_max_datagram(&e->tc) >= 1500);
	assert_true(wn_tunnel_max_datagram(&e->ts) >= 1500);
	for (int pass = 0; pass < 2; pass++) {
		struct rec c;
		struct wn_flow *f = open_flow(e, &c, target);
		/* Pass 1 reorders and duplicates every message. */
		e->c2s.reorder = e->s2c.reorder = pass;
		e->c2s.dup = e->s2c.dup = pass;
		for (size_t i = 0; i < 4; i++) {
			/* The first datagram goes before any ACK: the target
			 * travels with it; the rest after the ACK. */
			fill(buf, sizes[3 - i], (unsigned)i);
			int ndg = c.ndg;
			assert_int_equal(send_(e, f, buf, sizes[3 - i]), 0);
			pump(e);
			if (c.ndg == ndg && pass && i == 0) {
				/* The target went alone (OPEN) and the
				 * fragments overtook it: that one datagram is
				 * lost (the server cannot know where it goes);
				 * the flow is open now. */
				assert_true(e->c2s.sent_type[WN_DGRAM_OPEN] >
				            0);
				assert_int_equal(send_(e, f, buf, sizes[3 - i]),
				                 0);
				pump(e);
			}
			/* Duplicated, a whole message may come twice. */
			if (c.ndg <= ndg)
				fail_msg(
				    "max_msg %zu target %s pass %d size %zu",
				    max_msg, target, pass, sizes[3 - i]);
			assert_int_equal(c.last_len, sizes[3 - i]);
			assert_memory_equal(c.last, buf, sizes[3 - i]);
		}
		wn_flow_close(f);
		pump(e);
	}
	/* The target went alone only when it could not ride beside the
	 * first datagram: a long name on a small message. */
	assert_int_equal(e->c2s.sent_type[WN_DGRAM_OPEN] > 0,
	                 max_msg == 800 && strlen(target) > 200);
	assert_true(e->c2s.largest <= max_msg);
	assert_true(e->s2c.largest <= max_msg);
	struct wn_flows_stats ss;
	wn_fb_stats(e->srv, &ss);
	assert_true(ss.bad_msgs == 0 && ss.drop_size == 0);
	stop(e);
}

static void test_sizes_intact(void **state)
{
	(void)state;
	/* 253 characters: the longest name, so the first 1500-byte datagram
	 * at 800 bytes a message needs its target sent alone. */
	char name[300];
	memset(name, 'a', 253);
	for (int i = 63; i < 253; i += 64)
		name[i] = '.';
	strcpy(name + 253, ":53");
	sizes_at(1150, "10.0.0.9:53");
	sizes_at(800, "10.0.0.9:53");
	sizes_at(1150, "[2001:db8::9]:53");
	sizes_at(800, name);
	sizes_at(1150, name);
}

static void test_too_large_and_down(void **state)
{
	(void)state;
	static uint8_t buf[4000];
	struct env *e = start(0, 0);
	struct rec c;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	size_t max = wn_tunnel_max_datagram(&e->tc);
	/* 1150 bytes a message: two fragments of 1145 (id, type, fragment
	 * header), the largest single message 1148. */
	assert_int_equal(max, 2290);
	assert_int_equal(send_(e, f, buf, max + 1), WN_EMSGSIZE);
	assert_int_equal(send_(e, f, buf, max), 0);
	pump(e);
	assert_int_equal(e->srec[0].last_len, max);
	struct wn_flow_stats fs;
	wn_flow_stats(f, &fs);
	assert_true(fs.drop_size == 1 && fs.dgrams_out == 1);
	/* Down: nothing fits, and sending is dropped now. */
	e->up = 0;
	assert_int_equal(wn_tunnel_max_datagram(&e->tc), 0);
	assert_int_equal(send_(e, f, buf, 10), WN_EAGAIN);
	wn_flow_stats(f, &fs);
	assert_true(fs.drop_queue == 1);
	/* A full engine queue is the same drop. */
	e->up = 1;
	e->c2s.n = QMAX;
	assert_int_equal(send_(e, f, buf, 10), WN_EAGAIN);
	e->c2s.n = 0;
	struct wn_flows_stats cs;
	wn_fb_stats(e->cli, &cs);
	assert_true(cs.drop_queue == 2 && cs.drop_size == 1);
	/* A message too small for any payload: nothing fits. */
	e->max_msg = 2;
	assert_int_equal(wn_tunnel_max_datagram(&e->tc), 0);
	assert_int_equal(send_(e, f, buf, 1), WN_EMSGSIZE);
	stop(e);
}

static void test_fragment_timeout_and_flood(void **state)
{
	(void)state;
	static uint8_t buf[2000];
	struct env *e = start(0, 0);
	struct rec c;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(send_(e, f, "a", 1), 0);
	pump(e);
	struct rec *s = &e->srec[0];
	e->c2s.drop_frag1 = 1;
	fill(buf, sizeof(buf), 1);
	assert_int_equal(send_(e, f, buf, sizeof(buf)), 0);
	pump(e);
	assert_int_equal(s->ndg, 1);
	/* Not yet: the half waits for its timeout. */
	e->now += WN_DGFRAG_TIMEOUT_MS - 1;
	assert_int_equal(send_(e, f, "b", 1), 0);
	pump(e);
	struct wn_flow_stats fs;
	wn_flow_stats(s->f, &fs);
	assert_true(fs.frag_lost == 0);
	e->now += 1;
	assert_int_equal(send_(e, f, "c", 1), 0);
	pump(e);
	wn_flow_stats(s->f, &fs);
	assert_true(fs.frag_lost == 1);
	assert_int_equal(s->ndg, 3);
	/* A flood of first halves: held in a fixed number of slots, the
	 * oldest evicted and counted, nothing delivered. */
	for (unsigned i = 0; i < 1000; i++)
		assert_int_equal(send_(e, f, buf, sizeof(buf)), 0),
		    (i % 100 == 99 ? pump(e) : (void)0);
	pump(e);
	wn_flow_stats(s->f, &fs);
	assert_true(fs.frag_lost == 1 + 1000 - WN_DGFRAG_SLOTS);
	assert_int_equal(s->ndg, 3);
	/* The flow still works, fragments too. */
	e->c2s.drop_frag1 = 0;
	assert_int_equal(send_(e, f, buf, sizeof(buf)), 0);
	pump(e);
	assert_int_equal(s->ndg, 4);
	assert_memory_equal(s->last, buf, sizeof(buf));
	stop(e);
}

static void test_eviction_at_cap(void **state)
{
	(void)state;
	struct env *e = start(3, 4);
	struct rec c[8];
	/* The server's cap: 6 flows from the client, the two least recently
	 * used go, on both ends. */
	e->tc.flows = NULL; /* the client's own cap below is tested next */
	wn_fb_free(e->cli);
	e->cli = wn_fb_new(&TP, &e->c2s, &e->loop, NULL, &e->tc, NULL, 0);
	e->tc.flows = e->cli;
	for (int i = 0; i < 6; i++) {
		assert_non_null(open_flow(e, &c[i], "10.0.0.9:53"));
		assert_int_equal(send_(e, c[i].f, "x", 1), 0);
		pump(e);
	}
	assert_int_equal(e->accepted, 6);
	struct wn_flows_stats ss;
	wn_fb_stats(e->srv, &ss);
	assert_true(ss.flows_evicted == 2);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(e->srec[i].closed, i < 2);
		assert_int_equal(c[i].closed, i < 2);
		if (i < 2) {
			assert_int_equal(e->srec[i].err, WN_STREAM_EVICTED);
			assert_int_equal(c[i].err, WN_STREAM_EVICTED);
		}
	}
	/* Use refreshes: flow 2 is used, so flow 3 is the next to go. */
	assert_int_equal(send_(e, c[2].f, "y", 1), 0);
	pump(e);
	assert_non_null(open_flow(e, &c[6], "10.0.0.9:53"));
	assert_int_equal(send_(e, c[6].f, "z", 1), 0);
	pump(e);
	assert_int_equal(c[2].closed, 0);
	assert_int_equal(c[3].closed, 1);
	/* The client's cap (3): opening a fourth ends the oldest at once
	 * (deferred), and the server is told. */
	wn_fb_finish(e->cli, WN_STREAM_SESSION_LOST);
	wn_fb_free(e->cli);
	spin(e);
	e->cli = wn_fb_new(&TP, &e->c2s, &e->loop, NULL, &e->tc, NULL, 3);
	e->tc.flows = e->cli;
	wn_fb_finish(e->srv, WN_STREAM_SESSION_LOST);
	wn_fb_free(e->srv);
	e->nsrec = 0;
	e->accepted = 0;
	e->srv = new_server(e, 0);
	spin(e);
	for (int i = 0; i < 4; i++) {
		assert_non_null(open_flow(e, &c[i], "10.0.0.9:53"));
		assert_int_equal(c[0].closed, 0); /* never from inside */
		assert_int_equal(send_(e, c[i].f, "x", 1), 0);
		pump(e);
	}
	assert_int_equal(c[0].closed, 1);
	assert_int_equal(c[0].err, WN_STREAM_EVICTED);
	assert_int_equal(e->srec[0].closed, 1);
	assert_int_equal(e->srec[0].err, WN_STREAM_EVICTED);
	assert_int_equal(c[1].closed, 0);
	stop(e);
}

/* At the server's cap, new flows push out only flows not established
 * (one-shot exchanges, one-way senders); established flows in use keep
 * their place, and when every flow is one, a new flow is refused (its
 * client told) until one has been silent a while. */
static void test_established_flows_keep_their_place(void **state)
{
	(void)state;
	struct env *e = start(0, 4);
	struct rec c[12];
	struct wn_flows_stats ss;
	e->echo = 1;
	/* Flows 0 and 1: request, answer, request again: established. */
	for (int i = 0; i < 2; i++) {
		assert_non_null(open_flow(e, &c[i], "10.0.0.9:53"));
		for (int k = 0; k < 2; k++) {
			assert_int_equal(send_(e, c[i].f, "q", 1), 0);
			pump(e);
		}
		assert_int_equal(c[i].ndg, 2);
	}
	/* A flood of one-shot flows, each answered once. */
	for (int i = 2; i < 10; i++) {
		assert_non_null(open_flow(e, &c[i], "10.0.0.9:53"));
		assert_int_equal(send_(e, c[i].f, "x", 1), 0);
		pump(e);
		assert_int_equal(c[i].ndg, 1);
		e->now += 10;
	}
	wn_fb_stats(e->srv, &ss);
	assert_true(ss.flows_evicted == 6);
	assert_int_equal(c[0].closed, 0);
	assert_int_equal(c[1].closed, 0);
	for (int i = 2; i < 8; i++)
		assert_int_equal(c[i].err, WN_STREAM_EVICTED);
	/* Both established flows still carry datagrams. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(send_(e, c[i].f, "q", 1), 0);
		pump(e);
		assert_int_equal(c[i].ndg, 3);
	}
	/* Now all four established and in use: a new flow is refused. */
	for (int i = 8; i < 10; i++) {
		assert_int_equal(send_(e, c[i].f, "y", 1), 0);
		pump(e);
	}
	unsigned acc = e->accepted;
	assert_non_null(open_flow(e, &c[10], "10.0.0.9:53"));
	assert_int_equal(send_(e, c[10].f, "z", 1), 0);
	pump(e);
	wn_fb_stats(e->srv, &ss);
	assert_true(ss.flows_refused == 1);
	assert_int_equal(e->accepted, acc);
	assert_int_equal(c[10].closed, 1);
	assert_int_equal(c[10].err, WN_STREAM_EVICTED);
	for (int i = 0; i < 2; i++)
		assert_int_equal(c[i].closed, 0);
	/* Silent long enough, the one idle longest makes room. */
	e->now += 2000;
	assert_non_null(open_flow(e, &c[11], "10.0.0.9:53"));
	assert_int_equal(send_(e, c[11].f, "z", 1), 0);
	pump(e);
	assert_int_equal(e->accepted, acc + 1);
	assert_int_equal(c[11].ndg, 1);
	assert_int_equal(c[0].closed, 1);
	assert_int_equal(c[0].err, WN_STREAM_EVICTED);
	stop(e);
}

static void test_close_both_ways(void **state)
{
	(void)state;
	struct env *e = start(0, 0);
	struct rec c, d;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(send_(e, f, "a", 1), 0);
	pump(e);
	/* The client closes: the server hears OK; the client, nothing. */
	e->api_depth++;
	wn_flow_close(f);
	e->api_depth--;
	pump(e);
	assert_int_equal(e->srec[0].closed, 1);
	assert_int_equal(e->srec[0].err, WN_STREAM_OK);
	assert_int_equal(c.closed, 0);
	/* The server closes: the client hears OK. */
	f = open_flow(e, &d, "10.0.0.9:53");
	assert_int_equal(send_(e, f, "a", 1), 0);
	pump(e);
	e->api_depth++;
	wn_flow_close(e->srec[1].f);
	e->api_depth--;
	assert_int_equal(d.closed, 0);
	pump(e);
	assert_int_equal(d.closed, 1);
	assert_int_equal(d.err, WN_STREAM_OK);
	assert_int_equal(e->srec[1].closed, 0);
	/* The client's CLOSE is lost: the server's next datagram is
	 * answered with another. */
	f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(send_(e, f, "a", 1), 0);
	pump(e);
	e->c2s.drop_types = 1u << WN_DGRAM_CLOSE;
	wn_flow_close(f);
	pump(e);
	assert_int_equal(e->srec[2].closed, 0);
	e->c2s.drop_types = 0;
	assert_int_equal(send_(e, e->srec[2].f, "late", 4), 0);
	pump(e);
	assert_int_equal(e->srec[2].closed, 1);
	assert_int_equal(e->srec[2].err, WN_STREAM_OK);
	/* Closing from inside on_datagram, with more queued behind. */
	f = open_flow(e, &c, "10.0.0.9:53");
	c.close_in_datagram = 1;
	assert_int_equal(send_(e, f, "a", 1), 0);
	pump(e);
	assert_int_equal(send_(e, e->srec[3].f, "1", 1), 0);
	assert_int_equal(send_(e, e->srec[3].f, "2", 1), 0);
	pump(e);
	assert_int_equal(c.ndg, 1);
	assert_int_equal(e->srec[3].closed, 1);
	stop(e);
}

static void test_finish(void **state)
{
	(void)state;
	struct env *e = start(0, 0);
	struct rec a, b;
	open_flow(e, &a, "10.0.0.9:53");
	open_flow(e, &b, "10.0.0.9:54");
	assert_int_equal(send_(e, a.f, "x", 1), 0);
	pump(e);
	e->api_depth++;
	wn_fb_finish(e->cli, WN_STREAM_SESSION_LOST);
	e->api_depth--;
	assert_int_equal(a.closed, 0);
	/* b is closed by its front end before the deferred call: it hears
	 * nothing. Sends fail, nothing opens, nothing fits. */
	wn_flow_close(b.f);
	assert_int_equal(wn_flow_send(a.f, (const uint8_t *)"y", 1),
	                 WN_ECLOSED);
	struct wn_endpoint ep = udp("10.0.0.9:53");
	assert_null(wn_tunnel_open_flow(&e->tc, &ep, &H));
	assert_int_equal(wn_tunnel_max_datagram(&e->tc), 0);
	size_t queued = e->c2s.n;
	spin(e);
	assert_int_equal(a.closed, 1);
	assert_int_equal(a.err, WN_STREAM_SESSION_LOST);
	assert_int_equal(b.closed, 0);
	/* After finish the transport is not called (the engine may have
	 * freed its session). */
	assert_int_equal(e->c2s.n, queued);
	/* A message arriving after finish is ignored. */
	const uint8_t ack[] = {0, WN_DGRAM_ACK};
	wn_fb_recv(e->cli, ack, sizeof(ack));
	stop(e);
}

static void test_malformed_is_counted_and_harmless(void **state)
{
	(void)state;
	struct env *e = start(0, 0);
	struct rec c;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(send_(e, f, "a", 1), 0);
	pump(e);
	uint8_t junk[64];
	unsigned seed = 7;
	unsigned bad_srv = 0;
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(junk));
		for (size_t k = 0; k < n; k++)
			junk[k] = (uint8_t)rand_r(&seed);
		struct wn_dgram_msg m;
		/* Only junk that is malformed; well-formed random messages
		 * are other tests' business. */
		if (wn_dgram_decode(junk, n, &m) == 0)
			continue;
		wn_fb_recv(e->srv, junk, n);
		wn_fb_recv(e->cli, junk, n);
		bad_srv++;
	}
	/* Well-formed but wrong for the side: a target from the server, an
	 * ACK to the server, a changed target on a live flow. */
	const uint8_t to_cli[] = {0, 0x10, 0, 'x'};
	const uint8_t to_srv[] = {0, WN_DGRAM_ACK};
	const uint8_t moved[] = {0, 0x10, 2, 10, 0, 0, 10, 0, 53, 'x'};
	wn_fb_recv(e->cli, to_cli, sizeof(to_cli));
	wn_fb_recv(e->srv, to_srv, sizeof(to_srv));
	wn_fb_recv(e->srv, moved, sizeof(moved));
	struct wn_flows_stats ss, cs;
	wn_fb_stats(e->srv, &ss);
	wn_fb_stats(e->cli, &cs);
	assert_true(ss.bad_msgs == bad_srv + 2);
	assert_true(cs.bad_msgs == bad_srv + 1);
	assert_int_equal(e->srec[0].ndg, 1);
	/* The flow still works both ways. */
	assert_int_equal(send_(e, f, "b", 1), 0);
	pump(e);
	assert_int_equal(e->srec[0].ndg, 2);
	assert_int_equal(send_(e, e->srec[0].f, "r", 1), 0);
	pump(e);
	assert_int_equal(c.ndg, 1);
	/* Messages for unknown flows without a target: one UNKNOWN each,
	 * at most the reply budget per second, and no flow is made. */
	unsigned before = e->s2c.sent_type[WN_DGRAM_UNKNOWN];
	for (unsigned i = 0; i < 1000; i++) {
		uint8_t m[4] = {(uint8_t)(0x40 | (1 + i / 256)), (uint8_t)i,
		                WN_DGRAM_DATA, 'x'};
		wn_fb_recv(e->srv, m, sizeof(m));
		if (e->s2c.n == QMAX)
			e->s2c.n = 0;
	}
	unsigned replies = e->s2c.sent_type[WN_DGRAM_UNKNOWN] - before;
	assert_true(replies >= 1 && replies <= 256);
	assert_int_equal(e->accepted, 1);
	e->s2c.n = 0;
	stop(e);
}

/* ---- FEC ---------------------------------------------------------------------- */

/* n datagrams (every fourth one two fragments) echoed by the server over a
 * link losing loss_ppm per million of the messages each way, with FEC
 * 10/3 or without. Returns what the server and the client got. */
static void fec_run(unsigned loss_ppm, int fec, unsigned n, unsigned *srv_got,
                    unsigned *cli_got, struct wn_flow_stats *cs,
                    struct wn_flow_stats *ss)
{
	static uint8_t buf[1500];
	struct env *e = start(0, 0);
	struct rec c;
	e->echo = 1;
	e->c2s.loss_ppm = e->s2c.loss_ppm = loss_ppm;
	e->c2s.rng = 0x9E3779B97F4A7C15ull;
	e->s2c.rng = 0xD1B54A32D192ED03ull;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	if (fec)
		assert_int_equal(wn_flow_set_fec(f, 10, 3, 5), 0);
	for (unsigned i = 0; i < n; i++) {
		size_t len = i % 4 == 3 ? 1500 : 1000;
		fill(buf, len, i);
		assert_int_equal(send_(e, f, buf, len), 0);
		if (i % 16 == 15) {
			pump(e);
			e->now += 1;
			wn_fb_poll(e->cli);
			wn_fb_poll(e->srv);
		}
	}
	/* The last groups' parity, after their grouping time. */
	e->now += 10;
	wn_fb_poll(e->cli);
	pump(e);
	e->now += 10;
	wn_fb_poll(e->srv);
	pump(e);
	assert_int_equal(e->nsrec, 1);
	*srv_got = (unsigned)e->srec[0].ndg;
	*cli_got = (unsigned)c.ndg;
	wn_flow_stats(f, cs);
	wn_flow_stats(e->srec[0].f, ss);
	print_message("%s at %.1f%% loss: the server got %u of %u, the client "
	              "%u back; rebuilt %llu at the server, %llu at the "
	              "client\n",
	              fec ? "fec 10/3" : "no fec", loss_ppm / 10000.0, *srv_got,
	              n, *cli_got, (unsigned long long)ss->fec_recovered,
	              (unsigned long long)cs->fec_recovered);
	stop(e);
}

/* At 1% loss each way, FEC 10/3 gives back nearly every datagram both
 * ways (the server mirrors the client's FEC for its replies); without it
 * the loss is the path's. */
static void test_fec_random_loss(void **state)
{
	(void)state;
	enum { N = 4000 };
	unsigned sg, cg, psg, pcg;
	struct wn_flow_stats cs, ss;
	fec_run(10000, 0, N, &psg, &pcg, &cs, &ss);
	assert_true(psg <= N - 20 && pcg <= N - 40);
	assert_true(cs.fec_recovered == 0 && ss.fec_recovered == 0);
	fec_run(10000, 1, N, &sg, &cg, &cs, &ss);
	assert_true(sg >= N - 4);
	assert_true(cg >= N - 8);
	assert_true(ss.fec_recovered >= 20 && cs.fec_recovered >= 20);
	assert_true(ss.fec_unrecoverable <= 4);
	/* Nothing came twice. */
	assert_true(sg <= N && cg <= N);
}

/* A group not full is closed by its grouping time, through the base's own
 * timer: its parity (its share: one shard for three messages of a 10/3
 * group) goes out then and rebuilds the lost message. Datagrams never
 * wait. */
static void test_fec_grouping_time(void **state)
{
	(void)state;
	struct env *e = start(0, 0);
	struct rec c;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(wn_flow_set_fec(f, 10, 3, 5), 0);
	assert_int_equal(send_(e, f, "a", 1), 0);
	assert_int_equal(send_(e, f, "b", 1), 0);
	assert_int_equal(send_(e, f, "c", 1), 0);
	assert_int_equal(e->c2s.sent_type[WN_DGRAM_FEC], 3);
	e->now += 4;
	wn_fb_poll(e->cli);
	assert_int_equal(e->c2s.sent_type[WN_DGRAM_FEC], 3);
	e->c2s.drop_fec = 2; /* "b" is lost */
	e->now += 1;
	for (int i = 0; i < 200 && e->c2s.sent_type[WN_DGRAM_FEC] < 4; i++)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_ONCE);
	assert_int_equal(e->c2s.sent_type[WN_DGRAM_FEC], 4);
	pump(e);
	assert_int_equal(e->srec[0].ndg, 3);
	struct wn_flow_stats ss;
	wn_flow_stats(e->srec[0].f, &ss);
	assert_int_equal(ss.fec_recovered, 1);
	assert_int_equal(ss.fec_unrecoverable, 0);
	/* Closing sends the open group's parity first. */
	assert_int_equal(send_(e, f, "d", 1), 0);
	e->api_depth++;
	wn_flow_close(f);
	e->api_depth--;
	assert_int_equal(e->c2s.sent_type[WN_DGRAM_FEC], 6);
	stop(e);
}

/* What wn_flow_set_fec refuses, and FEC messages that do not fit their
 * flow: counted, dropped, the flow unharmed. */
static void test_fec_refusals(void **state)
{
	(void)state;
	struct env *e = start(0, 0);
	struct rec c, p;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(wn_flow_set_fec(f, 0, 3, 5), WN_EINVAL);
	assert_int_equal(wn_flow_set_fec(f, 33, 3, 5), WN_EINVAL);
	assert_int_equal(wn_flow_set_fec(f, 10, 17, 5), WN_EINVAL);
	assert_int_equal(wn_flow_set_fec(f, 10, 3, 0), WN_EINVAL);
	assert_int_equal(wn_flow_set_fec(f, 10, 3, 256), WN_EINVAL);
	assert_int_equal(wn_flow_set_fec(f, 10, 3, 5), 0);
	assert_int_equal(wn_flow_set_fec(f, 10, 3, 5), WN_EINVAL);
	struct wn_flow *g = open_flow(e, &p, "10.0.0.9:54");
	assert_int_equal(send_(e, g, "x", 1), 0);
	assert_int_equal(wn_flow_set_fec(g, 10, 3, 5), WN_EINVAL);
	assert_int_equal(send_(e, f, "a", 1), 0);
	pump(e);
	assert_int_equal(e->nsrec, 2);
	struct wn_flow *sf = e->srec[1].f;
	assert_int_equal(wn_flow_set_fec(sf, 10, 3, 5), WN_EINVAL);
	/* The largest datagram of a flow with FEC is 20 bytes smaller
	 * (10 bytes a fragment). */
	static uint8_t big[2300];
	size_t max = wn_tunnel_max_datagram(&e->tc);
	assert_int_equal(send_(e, f, big, max - 20), 0);
	assert_int_equal(send_(e, f, big, max - 19), WN_EMSGSIZE);
	assert_int_equal(send_(e, g, big, max), 0);
	pump(e);
	assert_int_equal(e->srec[1].last_len, max - 20);
	struct wn_flows_stats ss0, ss1, cs0, cs1;
	wn_fb_stats(e->srv, &ss0);
	wn_fb_stats(e->cli, &cs0);
	/* Other counts on f's flow; parity for an unknown flow; FEC to a
	 * client flow without FEC. */
	uint8_t b[64];
	struct wn_dgram_msg m = {.flow = wn_flow_id(f),
	                         .type = WN_DGRAM_FEC,
	                         .fec_index = 0,
	                         .fec_data = 8,
	                         .fec_parity = 3,
	                         .fec_delay = 5};
	int h = wn_dgram_encode_hdr(&m, b, sizeof(b));
	b[h] = WN_DGRAM_DATA;
	b[h + 1] = 'z';
	wn_fb_recv(e->srv, b, (size_t)h + 2);
	m.flow = 77;
	m.fec_data = 10;
	m.fec_index = 11;
	m.fec_count = 2;
	h = wn_dgram_encode_hdr(&m, b, sizeof(b));
	memset(b + h, 0, 4);
	wn_fb_recv(e->srv, b, (size_t)h + 4);
	m.flow = wn_flow_id(g);
	m.fec_index = 0;
	h = wn_dgram_encode_hdr(&m, b, sizeof(b));
	b[h] = WN_DGRAM_DATA;
	b[h + 1] = 'z';
	wn_fb_recv(e->cli, b, (size_t)h + 2);
	/* A shard holding what shards may not (an ACK). */
	m.flow = wn_flow_id(f);
	h = wn_dgram_encode_hdr(&m, b, sizeof(b));
	b[h] = WN_DGRAM_ACK;
	wn_fb_recv(e->srv, b, (size_t)h + 1);
	wn_fb_stats(e->srv, &ss1);
	wn_fb_stats(e->cli, &cs1);
	assert_true(ss1.bad_msgs == ss0.bad_msgs + 2);
	assert_true(ss1.unknown_flow == ss0.unknown_flow + 1);
	assert_true(cs1.bad_msgs == cs0.bad_msgs + 1);
	assert_int_equal(e->srec[0].ndg, 2); /* g's: "x" and max */
	assert_int_equal(e->srec[1].ndg, 2); /* f's: "a" and max - 20 */
	assert_int_equal(p.ndg, 0);
	/* Both flows still work. */
	assert_int_equal(send_(e, f, "b", 1), 0);
	assert_int_equal(send_(e, e->srec[1].f, "r", 1), 0);
	pump(e);
	assert_int_equal(e->srec[1].ndg, 3);
	assert_int_equal(c.ndg, 1);
	stop(e);
}

/* A server older than FEC drops every FEC message: the client says so,
 * once, after 64 datagrams without an answer. */
static void test_fec_old_server_is_named(void **state)
{
	(void)state;
	FILE *tmp = tmpfile();
	struct wn_log log;
	char text[4096];
	assert_non_null(tmp);
	wn_log_init(&log, WN_LOG_WARN, fileno(tmp));
	cli_log = &log;
	struct env *e = start(0, 0);
	cli_log = NULL;
	struct rec c;
	struct wn_flow *f = open_flow(e, &c, "10.0.0.9:53");
	assert_int_equal(wn_flow_set_fec(f, 10, 3, 5), 0);
	e->c2s.drop_types = 1u << WN_DGRAM_FEC;
	for (unsigned i = 0; i < 100; i++) {
		assert_int_equal(send_(e, f, "a", 1), 0);
		pump(e);
	}
	assert_int_equal(e->accepted, 0);
	rewind(tmp);
	size_t n = fread(text, 1, sizeof(text) - 1, tmp);
	text[n] = 0;
	const char *w = strstr(text, "no answer from the server");
	assert_non_null(w);
	assert_non_null(strstr(text, "64 datagrams with FEC"));
	assert_null(strstr(w + 1, "no answer from the server"));
	stop(e);
	fclose(tmp);
}

/* The session's FEC memory is bounded: flows past the budget travel
 * without repair (counted), and still carry every datagram. */
static void test_fec_memory_budget(void **state)
{
	(void)state;
	struct env *e = start(0, 0);
	static struct rec c[NREC];
	for (unsigned i = 0; i < NREC; i++) {
		struct wn_flow *f = open_flow(e, &c[i], "10.0.0.9:53");
		assert_non_null(f);
		assert_int_equal(wn_flow_set_fec(f, 32, 16, 5), 0);
		assert_int_equal(send_(e, f, "a", 1), 0);
		if (i % 8 == 7)
			pump(e);
	}
	pump(e);
	struct wn_flows_stats ss;
	wn_fb_stats(e->srv, &ss);
	assert_int_equal(e->nsrec, NREC);
	for (unsigned i = 0; i < NREC; i++)
		assert_int_equal(e->srec[i].ndg, 1);
	assert_true(ss.fec_nomem >= 1 && ss.fec_nomem < NREC);
	/* Replies reach the client from flows with and without repair. */
	for (unsigned i = 0; i < NREC; i++)
		assert_int_equal(send_(e, e->srec[i].f, "r", 1), 0);
	pump(e);
	for (unsigned i = 0; i < NREC; i++)
		assert_int_equal(c[i].ndg, 1);
	stop(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tunnel_without_flows),
	    cmocka_unit_test(test_open_target_until_ack),
	    cmocka_unit_test(test_ack_lost_is_repeated),
	    cmocka_unit_test(test_refusal_reaches_the_client),
	    cmocka_unit_test(test_server_restart_resends_target),
	    cmocka_unit_test(test_sizes_intact),
	    cmocka_unit_test(test_too_large_and_down),
	    cmocka_unit_test(test_fragment_timeout_and_flood),
	    cmocka_unit_test(test_eviction_at_cap),
	    cmocka_unit_test(test_established_flows_keep_their_place),
	    cmocka_unit_test(test_close_both_ways),
	    cmocka_unit_test(test_finish),
	    cmocka_unit_test(test_malformed_is_counted_and_harmless),
	    cmocka_unit_test(test_fec_random_loss),
	    cmocka_unit_test(test_fec_grouping_time),
	    cmocka_unit_test(test_fec_refusals),
	    cmocka_unit_test(test_fec_old_server_is_named),
	    cmocka_unit_test(test_fec_memory_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
