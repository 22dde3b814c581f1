/* pipetunnel: the in-memory engine for tests. See pipetunnel.h.
 *
 * A stream is a pair of ends (0: client, 1: server). Each end has a send
 * queue; a per-pair pump (a deferred function) moves bytes from one end's
 * queue to the other end's handler within the receiver's credit, delivers
 * FINs, writable notices and closes, one step per loop iteration while
 * there is progress. */
#include "support/pipetunnel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/streamhdr.h"
#include "engine/flow_base.h"
#include "util/bufq.h"
#include "util/err.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))

#define ERRS 16

struct pt_pair;

struct pt_end {
	struct wn_stream s; /* first: the stream base */
	struct pt_pair *pair;
	int idx;
	struct wn_bufq sendq;
	size_t unconsumed;  /* delivered to this end, not yet credited */
	ssize_t reserved;   /* size of the last reserve; -1: none */
	bool fin;           /* the base queued our FIN */
	bool fin_delivered; /* ... and the pump delivered it */
	int reset_in;       /* the peer reset: deliver it (0: none) */
	int stop_in;        /* the peer stopped reading: deliver it */
	bool ended;         /* detached by the base */
	bool gone;          /* freed by the base */
};

struct pt_pair {
	struct wn_pipetunnel *pt;
	struct pt_end end[2];
	struct wn_deferred dn;
	struct pt_pair *prev, *next;
};

struct pt_tunnel {
	struct wn_tunnel t;
	struct wn_pipetunnel *pt;
};

/* One direction of the datagram link: a ring of messages. */
struct pt_dir {
	struct wn_pipetunnel *pt;
	int to_server;
	size_t head, n;
	size_t *len;
	uint8_t *q; /* dgram_queue slots of dgram_max_msg bytes */
	uint64_t count;
};

struct wn_pipetunnel {
	struct wn_loop *loop;
	struct wn_pipetunnel_opts o;
	struct wn_accept_handler server;
	struct wn_accept_handler accept; /* counts, checks, then server */
	struct wn_stream_env env[2];     /* client ends, server ends */
	struct pt_tunnel client_t, server_t;
	struct pt_pair *pairs;
	bool up;
	bool closing;
	struct wn_deferred free_dn;
	struct wn_pipetunnel_stats st;
	uint8_t *tmp;              /* one on_data chunk; pumps never nest */
	struct wn_flows *flows[2]; /* client, server; NULL: no_flows */
	struct pt_dir dir[2];      /* [0] to the server, [1] to the client */
	size_t dgram_cap;          /* slot size */
	struct wn_deferred dgram_dn;
	bool free_after_pump;
	uint8_t *dgram_tmp;
};

static void violation(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void violation(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "pipetunnel: tunnel.h contract violated: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static struct pt_end *end_of(struct wn_stream *s)
{
	return (struct pt_end *)s;
}

static struct pt_end *peer_of(struct pt_end *e)
{
	return &e->pair->end[1 - e->idx];
}

static void pump(struct wn_deferred *dn);

static void schedule(struct pt_pair *p)
{
	wn_loop_defer(p->pt->loop, &p->dn, pump);
}

/* ---- the transport under the stream base ------------------------------ */

static void note_sendq(struct pt_end *e)
{
	size_t n = wn_bufq_len(&e->sendq);

	if (n > e->pair->pt->st.max_sendq)
		e->pair->pt->st.max_sendq = n;
}

static ssize_t tp_write(struct wn_stream *s, const uint8_t *data, size_t len)
{
	struct pt_end *e = end_of(s);
	ssize_t n;

	e->reserved = -1;
	if (len == 0)
		return 0;
	n = wn_bufq_write(&e->sendq, data, len);
	if (n < 0)
		n = 0;
	note_sendq(e);
	schedule(e->pair);
	return n;
}

static ssize_t tp_reserve(struct wn_stream *s, uint8_t **ptr)
{
	struct pt_end *e = end_of(s);
	ssize_t n = wn_bufq_reserve(&e->sendq, ptr);

	if (n < 0) {
		e->reserved = -1;
		return 0;
	}
	e->reserved = n;
	return n;
}

static int tp_commit(struct wn_stream *s, size_t n)
{
	struct pt_end *e = end_of(s);

	if (e->reserved < 0 || n > (size_t)e->reserved)
		violation("commit of %zu bytes on stream %llu, reserve gave "
		          "%zd",
		          n, (unsigned long long)s->id, e->reserved);
	if (wn_bufq_commit(&e->sendq, n) != 0)
		violation("commit of %zu bytes refused by the buffer", n);
	e->reserved = -1;
	note_sendq(e);
	schedule(e->pair);
	return 0;
}

static void tp_credit(struct wn_stream *s, size_t n)
{
	struct pt_end *e = end_of(s);

	if (n > e->unconsumed)
		violation("consumed %zu bytes on stream %llu end %d, only %zu "
		          "delivered unconsumed",
		          n, (unsigned long long)s->id, e->idx, e->unconsumed);
	e->unconsumed -= n;
	schedule(e->pair);
}

static void tp_fin(struct wn_stream *s)
{
	struct pt_end *e = end_of(s);

	e->fin = true;
	e->reserved = -1;
	schedule(e->pair); /* the pump delivers it, then fin_done */
}

static void tp_reset(struct wn_stream *s, int err)
{
	struct pt_end *e = end_of(s), *q = peer_of(e);
	struct wn_pipetunnel *pt = e->pair->pt;

	if (err >= 0 && err < ERRS)
		pt->st.resets[err]++;
	if (s->released)
		pt->st.released_open++;
	/* Undelivered data is dropped both ways (the peer's when the reset
	 * reaches it). */
	wn_bufq_free(&e->sendq);
	if (!q->ended && !q->reset_in)
		q->reset_in = err;
	schedule(e->pair);
}

static void tp_stop(struct wn_stream *s, int err)
{
	struct pt_end *e = end_of(s), *q = peer_of(e);

	/* Our data and FIN still go; the peer learns at once (as with
	 * QUIC's STOP_SENDING) and drops what it has queued for us. */
	if (!q->ended && !q->stop_in)
		q->stop_in = err;
	schedule(e->pair);
}

static void tp_detach(struct wn_stream *s)
{
	struct pt_end *e = end_of(s);

	e->ended = true;
	schedule(e->pair);
}

static void free_pair(struct pt_pair *p);

static void tp_free(struct wn_stream *s)
{
	struct pt_end *e = end_of(s);
	struct pt_pair *p = e->pair;
	struct wn_pipetunnel *pt = p->pt;

	/* The base has just told the front end on_closed (unless it let go,
	 * or never had a handler: a server end refused before accept). */
	if (!s->released && s->h.on_closed) {
		if (s->err == WN_STREAM_OK)
			pt->st.closed_ok++;
		else if (s->err >= 0 && s->err < ERRS)
			pt->st.closed_err[s->err]++;
	}
	e->gone = true;
	if (p->end[0].gone && p->end[1].gone && !wn_deferred_pending(&p->dn))
		free_pair(p);
}

static void tp_misuse(struct wn_stream *s, const char *what)
{
	struct pt_end *e = end_of(s);

	violation("%s on stream %llu (end %d) after %s", what,
	          (unsigned long long)s->id, e->idx,
	          s->reported ? "on_closed" : "release");
}

static const struct wn_sb_transport pt_transport = {
    .write = tp_write,
    .reserve = tp_reserve,
    .commit = tp_commit,
    .credit = tp_credit,
    .fin = tp_fin,
    .reset = tp_reset,
    .stop = tp_stop,
    .detach = tp_detach,
    .free = tp_free,
    .misuse = tp_misuse,
};

/* ---- the pump --------------------------------------------------------- */

static void dgram_free(struct wn_pipetunnel *pt)
{
	for (int i = 0; i < 2; i++) {
		free(pt->dir[i].q);
		free(pt->dir[i].len);
	}
	free(pt->dgram_tmp);
}

/* Frees pt, or lets the datagram pump do it if it is still due to run. */
static void pt_free_now(struct wn_pipetunnel *pt)
{
	if (wn_deferred_pending(&pt->dgram_dn)) {
		pt->free_after_pump = true;
		return;
	}
	dgram_free(pt);
	free(pt->tmp);
	free(pt);
}

static void free_pair(struct pt_pair *p)
{
	struct wn_pipetunnel *pt = p->pt;

	if (p->prev)
		p->prev->next = p->next;
	else
		pt->pairs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	wn_bufq_free(&p->end[0].sendq);
	wn_bufq_free(&p->end[1].sendq);
	free(p);
	pt->st.live--;
	if (pt->closing && !pt->pairs)
		pt_free_now(pt);
}

/* The server side's accept handler, around the test's. */
static void on_accept(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct wn_pipetunnel *pt = ctx;

	pt->st.accepted++;
	if (!pt->server.on_stream)
		violation("no accept handler for stream %llu",
		          (unsigned long long)s->id);
	pt->server.on_stream(pt->server.ctx, t, s, target);
	if (!end_of(s)->ended && !s->released && !s->h.on_closed)
		violation("accept handler returned without a handler or a "
		          "reset on stream %llu",
		          (unsigned long long)s->id);
}

/* Moves what dst's credit allows from src to dst, then src's FIN. */
static bool move_data(struct pt_pair *p, struct pt_end *src, struct pt_end *dst)
{
	struct wn_pipetunnel *pt = p->pt;
	size_t credit, n;
	bool progress = false;

	while (!dst->ended && wn_bufq_len(&src->sendq) > 0) {
		credit = pt->o.recv_window - dst->unconsumed;
		if (credit == 0)
			break;
		n = wn_bufq_len(&src->sendq);
		if (n > credit)
			n = credit;
		if (n > pt->o.chunk)
			n = pt->o.chunk;
		wn_bufq_read(&src->sendq, pt->tmp, n);
		dst->unconsumed += n;
		if (dst->unconsumed > pt->st.max_unconsumed)
			pt->st.max_unconsumed = dst->unconsumed;
		wn_sb_recv(&dst->s, pt->tmp, n);
		progress = true;
	}
	if (!src->ended && src->s.want_writable &&
	    wn_bufq_space(&src->sendq) > 0) {
		wn_sb_writable(&src->s);
		progress = true;
	}
	if (src->fin && !src->fin_delivered && wn_bufq_len(&src->sendq) == 0 &&
	    !dst->ended) {
		src->fin_delivered = true;
		wn_sb_recv_fin(&dst->s);
		wn_sb_fin_done(&src->s);
		progress = true;
	}
	return progress;
}

/* Delivers the peer's reset or stop to e. */
static bool deliver_aborts(struct pt_end *e)
{
	struct pt_end *q = peer_of(e);
	int err;

	if (e->reset_in && !e->ended) {
		err = e->reset_in;
		e->reset_in = 0;
		wn_bufq_free(&e->sendq);
		wn_sb_recv_reset(&e->s, err);
		return true;
	}
	if (e->stop_in && !e->ended) {
		err = e->stop_in;
		e->stop_in = 0;
		wn_bufq_free(&e->sendq);
		wn_sb_recv_stop(&e->s, err);
		/* The answer to the stop, as QUIC's RESET_STREAM: the
		 * stopping end's reading is over. */
		if (!q->ended)
			wn_sb_recv_reset(&q->s, err);
		return true;
	}
	return false;
}

static void pump(struct wn_deferred *dn)
{
	struct pt_pair *p = container_of(dn, struct pt_pair, dn);
	struct wn_pipetunnel *pt = p->pt;
	bool progress = false;
	int i;

	if (pt->up) {
		progress |= move_data(p, &p->end[0], &p->end[1]);
		progress |= move_data(p, &p->end[1], &p->end[0]);
		for (i = 0; i < 2; i++)
			progress |= deliver_aborts(&p->end[i]);
	}
	if (p->end[0].gone && p->end[1].gone) {
		/* If a callback deferred the pump again, free on that run. */
		if (!wn_deferred_pending(&p->dn))
			free_pair(p);
		return;
	}
	if (progress)
		schedule(p);
}

/* ---- datagrams: the flow base over an in-memory link -------------------- */

static void dgram_pump(struct wn_deferred *dn)
{
	struct wn_pipetunnel *pt =
	    container_of(dn, struct wn_pipetunnel, dgram_dn);

	if (pt->free_after_pump) {
		pt->free_after_pump = false;
		pt_free_now(pt);
		return;
	}
	if (!pt->up)
		return;
	/* What is queued now goes now, one direction after the other; what
	 * handlers send meanwhile goes on the next run. */
	size_t batch[2] = {pt->dir[0].n, pt->dir[1].n};
	for (int i = 0; i < 2; i++) {
		struct pt_dir *d = &pt->dir[i];
		for (size_t k = 0; k < batch[i] && d->n; k++) {
			size_t slot = d->head;
			size_t len = d->len[slot];
			memcpy(pt->dgram_tmp, d->q + slot * pt->dgram_cap, len);
			d->head = (d->head + 1) % pt->o.dgram_queue;
			d->n--;
			d->count++;
			if (pt->o.dgram_drop_every &&
			    d->count % pt->o.dgram_drop_every == 0) {
				pt->st.dgram_lost++;
				continue;
			}
			pt->st.dgram_msgs[i]++;
			struct wn_flows *dst = pt->flows[i ? 0 : 1];
			if (dst)
				wn_fb_recv(dst, pt->dgram_tmp, len);
			if (pt->free_after_pump || !pt->up)
				break;
		}
	}
	if (pt->free_after_pump) {
		pt->free_after_pump = false;
		pt_free_now(pt);
		return;
	}
	if (pt->up && (pt->dir[0].n || pt->dir[1].n))
		wn_loop_defer(pt->loop, &pt->dgram_dn, dgram_pump);
}

static int dg_send(struct wn_flows *fl, const uint8_t *msg, size_t len)
{
	struct pt_dir *d = wn_fb_ctx(fl);
	struct wn_pipetunnel *pt = d->pt;

	if (!pt->up)
		return WN_EAGAIN;
	if (len > pt->dgram_cap || len > pt->o.dgram_max_msg)
		return WN_EMSGSIZE;
	if (d->n == pt->o.dgram_queue) {
		pt->st.dgram_full++;
		return WN_EAGAIN;
	}
	size_t slot = (d->head + d->n) % pt->o.dgram_queue;
	memcpy(d->q + slot * pt->dgram_cap, msg, len);
	d->len[slot] = len;
	d->n++;
	wn_loop_defer(pt->loop, &pt->dgram_dn, dgram_pump);
	return 0;
}

static size_t dg_max_msg(const struct wn_flows *fl)
{
	const struct pt_dir *d = wn_fb_ctx(fl);
	return d->pt->up ? d->pt->o.dgram_max_msg : 0;
}

static uint64_t dg_now(const struct wn_flows *fl)
{
	const struct pt_dir *d = wn_fb_ctx(fl);
	return wn_loop_now_ms(d->pt->loop);
}

static const struct wn_fb_transport dg_transport = {
    .send = dg_send, .max_msg = dg_max_msg, .now_ms = dg_now};

/* The server side's flow accept handler, around the test's. */
static void on_accept_flow(void *ctx, struct wn_tunnel *t, struct wn_flow *f,
                           const struct wn_endpoint *target)
{
	struct wn_pipetunnel *pt = ctx;

	pt->st.flows_accepted++;
	if (!pt->server.on_flow) {
		wn_flow_refuse(f, WN_STREAM_DENIED);
		return;
	}
	pt->server.on_flow(pt->server.ctx, t, f, target);
}

static int dgram_new_server(struct wn_pipetunnel *pt)
{
	pt->flows[1] = wn_fb_new(&dg_transport, &pt->dir[1], pt->loop, NULL,
	                         &pt->server_t.t, &pt->accept, pt->o.max_flows);
	if (!pt->flows[1])
		return WN_ENOMEM;
	pt->server_t.t.flows = pt->flows[1];
	return 0;
}

static int dgram_init(struct wn_pipetunnel *pt)
{
	if (!pt->o.dgram_max_msg)
		pt->o.dgram_max_msg = 1150;
	if (!pt->o.dgram_queue)
		pt->o.dgram_queue = 64;
	pt->dgram_cap = pt->o.dgram_max_msg;
	wn_deferred_init(&pt->dgram_dn);
	for (int i = 0; i < 2; i++) {
		struct pt_dir *d = &pt->dir[i];
		d->pt = pt;
		d->to_server = i == 0;
		d->q = malloc(pt->o.dgram_queue * pt->dgram_cap);
		d->len = calloc(pt->o.dgram_queue, sizeof(*d->len));
		if (!d->q || !d->len)
			return WN_ENOMEM;
	}
	pt->dgram_tmp = malloc(pt->dgram_cap);
	if (!pt->dgram_tmp)
		return WN_ENOMEM;
	if (pt->o.no_flows)
		return 0;
	pt->flows[0] = wn_fb_new(&dg_transport, &pt->dir[0], pt->loop, NULL,
	                         &pt->client_t.t, NULL, pt->o.max_flows);
	if (!pt->flows[0])
		return WN_ENOMEM;
	pt->client_t.t.flows = pt->flows[0];
	return dgram_new_server(pt);
}

/* ---- tunnels ---------------------------------------------------------- */

static struct wn_stream *open_stream(struct wn_tunnel *t,
                                     const struct wn_endpoint *target,
                                     unsigned flags,
                                     const struct wn_stream_handler *h)
{
	struct wn_pipetunnel *pt = container_of(t, struct pt_tunnel, t)->pt;
	struct pt_pair *p;
	uint8_t hdr[WN_STREAMHDR_MAX];
	int i, hdrlen;
	size_t chunk;

	if (pt->closing ||
	    (pt->o.max_streams && pt->st.live >= pt->o.max_streams)) {
		pt->st.refused++;
		return NULL;
	}
	if (!h || !h->on_data || !h->on_closed)
		violation("open_stream without a full handler");
	hdrlen = wn_streamhdr_encode_flags(target, flags, hdr, sizeof(hdr));
	if (hdrlen < 0) {
		pt->st.refused++;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pt = pt;
	chunk = pt->o.send_limit < 4096 ? pt->o.send_limit : 4096;
	for (i = 0; i < 2; i++) {
		struct pt_end *e = &p->end[i];

		e->pair = p;
		e->idx = i;
		e->reserved = -1;
		wn_bufq_init(&e->sendq, chunk, pt->o.send_limit);
	}
	/* The client end's first bytes are the header, as on the wire; the
	 * server end's base takes it off and calls the accept handler. */
	wn_sb_init(&p->end[0].s, &pt->env[0], &pt->client_t.t, h);
	wn_sb_init(&p->end[1].s, &pt->env[1], &pt->server_t.t, NULL);
	if (wn_bufq_write(&p->end[0].sendq, hdr, (size_t)hdrlen) != hdrlen)
		violation("send_limit below the stream header's size");
	wn_deferred_init(&p->dn);
	p->next = pt->pairs;
	if (p->next)
		p->next->prev = p;
	pt->pairs = p;
	pt->st.live++;
	pt->st.opened++;
	schedule(p);
	return &p->end[0].s;
}

static struct wn_stream *server_open_stream(struct wn_tunnel *t,
                                            const struct wn_endpoint *target,
                                            unsigned flags,
                                            const struct wn_stream_handler *h)
{
	return NULL; /* the server opens no streams */
}

static const struct wn_tunnel_ops client_ops = {.open_stream = open_stream};
static const struct wn_tunnel_ops server_ops = {.open_stream =
                                                    server_open_stream};

int wn_pipetunnel_new(struct wn_loop *loop,
                      const struct wn_pipetunnel_opts *opts,
                      const struct wn_accept_handler *server,
                      struct wn_pipetunnel **out)
{
	struct wn_pipetunnel *pt = calloc(1, sizeof(*pt));

	if (!pt)
		return WN_ENOMEM;
	pt->loop = loop;
	if (opts)
		pt->o = *opts;
	if (!pt->o.send_limit)
		pt->o.send_limit = 64 * 1024;
	if (!pt->o.recv_window)
		pt->o.recv_window = 64 * 1024;
	if (!pt->o.chunk)
		pt->o.chunk = 16 * 1024;
	pt->tmp = malloc(pt->o.chunk);
	if (!pt->tmp) {
		free(pt);
		return WN_ENOMEM;
	}
	if (server)
		pt->server = *server;
	pt->client_t.t.ops = &client_ops;
	pt->client_t.pt = pt;
	snprintf(pt->client_t.t.peer_id, sizeof(pt->client_t.t.peer_id),
	         "5e7e0001");
	pt->accept.ctx = pt;
	pt->accept.on_stream = on_accept;
	wn_sb_env_init(&pt->env[0], &pt_transport, loop, NULL, NULL);
	wn_sb_env_init(&pt->env[1], &pt_transport, loop, NULL, &pt->accept);
	pt->server_t.t.ops = &server_ops;
	pt->server_t.pt = pt;
	snprintf(pt->server_t.t.peer_id, sizeof(pt->server_t.t.peer_id),
	         "c11e0001");
	pt->accept.on_flow = on_accept_flow;
	pt->up = !pt->o.down;
	wn_deferred_init(&pt->free_dn);
	if (dgram_init(pt) < 0) {
		for (int i = 0; i < 2; i++)
			if (pt->flows[i]) {
				wn_fb_finish(pt->flows[i], WN_STREAM_INTERNAL);
				wn_fb_free(pt->flows[i]);
			}
		/* The flow states' frees are deferred; pt's memory is not
		 * theirs. */
		dgram_free(pt);
		free(pt->tmp);
		free(pt);
		return WN_ENOMEM;
	}
	*out = pt;
	return 0;
}

struct wn_tunnel *wn_pipetunnel_server(struct wn_pipetunnel *pt)
{
	return &pt->server_t.t;
}

void wn_pipetunnel_set_max_msg(struct wn_pipetunnel *pt, size_t max_msg)
{
	if (max_msg > pt->dgram_cap)
		violation("max_msg %zu above the link's %zu", max_msg,
		          pt->dgram_cap);
	pt->o.dgram_max_msg = max_msg;
}

void wn_pipetunnel_set_server(struct wn_pipetunnel *pt,
                              const struct wn_accept_handler *server)
{
	pt->server = *server;
}

struct wn_tunnel *wn_pipetunnel_client(struct wn_pipetunnel *pt)
{
	return &pt->client_t.t;
}

void wn_pipetunnel_set_up(struct wn_pipetunnel *pt, bool up)
{
	struct pt_pair *p;

	pt->up = up;
	if (up) {
		for (p = pt->pairs; p; p = p->next)
			schedule(p);
		if (pt->dir[0].n || pt->dir[1].n)
			wn_loop_defer(pt->loop, &pt->dgram_dn, dgram_pump);
	}
}

void wn_pipetunnel_lose(struct wn_pipetunnel *pt)
{
	struct pt_pair *p;
	int i;

	for (p = pt->pairs; p; p = p->next)
		for (i = 0; i < 2; i++)
			wn_sb_finish(&p->end[i].s, WN_STREAM_SESSION_LOST);
	if (pt->flows[1] && !pt->closing) {
		/* A new session: the server's flow state is new, what was in
		 * flight is gone, and the client's targets travel again. */
		wn_fb_finish(pt->flows[1], WN_STREAM_SESSION_LOST);
		wn_fb_free(pt->flows[1]);
		pt->flows[1] = pt->server_t.t.flows = NULL;
		pt->dir[0].n = pt->dir[1].n = 0;
		if (dgram_new_server(pt) < 0)
			violation("out of memory for the server's flows");
		wn_fb_session_changed(pt->flows[0]);
	}
}

const struct wn_pipetunnel_stats *
wn_pipetunnel_stats(const struct wn_pipetunnel *pt)
{
	return &pt->st;
}

static void free_pt(struct wn_deferred *dn)
{
	pt_free_now(container_of(dn, struct wn_pipetunnel, free_dn));
}

void wn_pipetunnel_close(struct wn_pipetunnel *pt)
{
	pt->closing = true;
	wn_pipetunnel_lose(pt);
	for (int i = 0; i < 2; i++) {
		if (pt->flows[i]) {
			wn_fb_finish(pt->flows[i], WN_STREAM_SESSION_LOST);
			wn_fb_free(pt->flows[i]);
			pt->flows[i] = NULL;
		}
		pt->dir[i].n = 0;
	}
	pt->client_t.t.flows = pt->server_t.t.flows = NULL;
	if (!pt->pairs)
		wn_loop_defer(pt->loop, &pt->free_dn, free_pt);
}
