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
#include "util/bufq.h"
#include "util/err.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))

#define ERRS 16

struct pt_pair;

struct pt_end {
	struct wn_stream s; /* first: the engine's stream */
	struct pt_pair *pair;
	int idx;
	struct wn_bufq sendq;
	size_t unconsumed;  /* delivered to this end, not yet consumed */
	ssize_t reserved;   /* size of the last reserve; -1: none */
	bool fin;           /* this end called shutdown */
	bool eof_delivered; /* on_eof was delivered to this end */
	bool want_writable; /* a short write or empty reserve happened */
	bool released;
	bool closed; /* on_closed delivered (or reset before accept) */
};

struct pt_pair {
	struct wn_pipetunnel *pt;
	struct pt_end end[2];
	uint8_t hdr[WN_STREAMHDR_MAX];
	int hdrlen;
	bool accepted;
	bool reset;
	int reset_err;
	struct wn_deferred dn;
	struct pt_pair *prev, *next;
};

struct pt_tunnel {
	struct wn_tunnel t;
	struct wn_pipetunnel *pt;
};

struct wn_pipetunnel {
	struct wn_loop *loop;
	struct wn_pipetunnel_opts o;
	struct wn_accept_handler server;
	struct pt_tunnel client_t, server_t;
	struct pt_pair *pairs;
	uint64_t next_id;
	bool up;
	bool closing;
	struct wn_deferred free_dn;
	struct wn_pipetunnel_stats st;
	uint8_t *tmp; /* one on_data chunk; pumps never nest */
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

static void usable(struct pt_end *e, const char *op)
{
	if (e->released)
		violation("%s on stream %llu (end %d) after release", op,
		          (unsigned long long)e->s.id, e->idx);
	if (e->closed)
		violation("%s on stream %llu (end %d) after on_closed", op,
		          (unsigned long long)e->s.id, e->idx);
}

static void do_reset(struct pt_pair *p, int err)
{
	int i;

	if (p->reset)
		return;
	p->reset = true;
	p->reset_err = err;
	for (i = 0; i < 2; i++) {
		wn_bufq_free(&p->end[i].sendq);
		p->end[i].want_writable = false;
	}
	schedule(p);
}

/* ---- stream operations ------------------------------------------------ */

static void note_sendq(struct pt_end *e)
{
	size_t n = wn_bufq_len(&e->sendq);

	if (n > e->pair->pt->st.max_sendq)
		e->pair->pt->st.max_sendq = n;
}

static ssize_t op_write(struct wn_stream *s, const uint8_t *data, size_t len)
{
	struct pt_end *e = end_of(s);
	ssize_t n;

	usable(e, "write");
	if (e->fin || e->pair->reset)
		return WN_ECLOSED;
	e->reserved = -1;
	if (len == 0)
		return 0;
	n = wn_bufq_write(&e->sendq, data, len);
	if (n < 0)
		n = 0;
	if ((size_t)n < len)
		e->want_writable = true;
	note_sendq(e);
	schedule(e->pair);
	return n;
}

static ssize_t op_reserve(struct wn_stream *s, uint8_t **ptr)
{
	struct pt_end *e = end_of(s);
	ssize_t n;

	usable(e, "reserve");
	if (e->fin || e->pair->reset)
		return WN_ECLOSED;
	n = wn_bufq_reserve(&e->sendq, ptr);
	if (n < 0) {
		e->reserved = -1;
		e->want_writable = true;
		return 0;
	}
	e->reserved = n;
	return n;
}

static int op_commit(struct wn_stream *s, size_t n)
{
	struct pt_end *e = end_of(s);

	usable(e, "commit");
	if (e->pair->reset)
		return WN_ECLOSED;
	if (e->fin)
		violation("commit after shutdown on stream %llu",
		          (unsigned long long)s->id);
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

static void op_consumed(struct wn_stream *s, size_t n)
{
	struct pt_end *e = end_of(s);

	usable(e, "consumed");
	if (n > e->unconsumed)
		violation("consumed %zu bytes on stream %llu end %d, only %zu "
		          "delivered unconsumed",
		          n, (unsigned long long)s->id, e->idx, e->unconsumed);
	e->unconsumed -= n;
	schedule(e->pair);
}

static int op_shutdown(struct wn_stream *s)
{
	struct pt_end *e = end_of(s);

	usable(e, "shutdown");
	if (e->fin || e->pair->reset)
		return WN_ECLOSED;
	e->fin = true;
	e->reserved = -1;
	schedule(e->pair);
	return 0;
}

static void op_reset(struct wn_stream *s, int err)
{
	struct pt_end *e = end_of(s);

	usable(e, "reset");
	if (err >= 0 && err < ERRS)
		e->pair->pt->st.resets[err]++;
	do_reset(e->pair, err);
}

static void op_release(struct wn_stream *s)
{
	struct pt_end *e = end_of(s);

	usable(e, "release");
	e->released = true;
	memset(&e->s.h, 0, sizeof(e->s.h));
	/* Both directions done: the engine finishes on its own (queued data
	 * and the FIN still go out). Otherwise it must reset. */
	if (!e->pair->reset && !(e->fin && e->eof_delivered)) {
		e->pair->pt->st.released_open++;
		do_reset(e->pair, WN_STREAM_ABORTED);
	}
	schedule(e->pair);
}

static const struct wn_stream_ops pt_stream_ops = {
    .write = op_write,
    .reserve = op_reserve,
    .commit = op_commit,
    .consumed = op_consumed,
    .shutdown = op_shutdown,
    .reset = op_reset,
    .release = op_release,
};

/* ---- the pump --------------------------------------------------------- */

static bool gone(const struct pt_end *e)
{
	return e->released || e->closed;
}

/* May e's handler be called? */
static bool callable(const struct pt_end *e)
{
	if (gone(e))
		return false;
	return e->idx == 0 || e->pair->accepted;
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
	if (pt->closing && !pt->pairs) {
		free(pt->tmp);
		free(pt);
	}
}

static void accept_stream(struct pt_pair *p)
{
	struct wn_pipetunnel *pt = p->pt;
	struct pt_end *se = &p->end[1];
	struct wn_endpoint target;
	int is_default = 0, rc;
	unsigned flags = 0;

	p->accepted = true;
	pt->st.accepted++;
	if (!pt->server.on_stream)
		violation("no accept handler for stream %llu",
		          (unsigned long long)se->s.id);
	rc = wn_streamhdr_decode_flags(p->hdr, (size_t)p->hdrlen, &target,
	                               &is_default, &flags);
	if (rc != p->hdrlen)
		violation("stream header did not round-trip (%d)", rc);
	se->s.hdr_flags = flags;
	pt->server.on_stream(pt->server.ctx, &pt->server_t.t, &se->s,
	                     is_default ? NULL : &target);
	if (!p->reset && !se->released && !se->s.h.on_closed)
		violation("accept handler returned without a handler or a "
		          "reset on stream %llu",
		          (unsigned long long)se->s.id);
}

/* Move what the receiver's credit allows from src to dst. */
static bool move_data(struct pt_pair *p, struct pt_end *src, struct pt_end *dst)
{
	struct wn_pipetunnel *pt = p->pt;
	size_t credit, n;
	bool progress = false;

	while (!p->reset && callable(dst) && wn_bufq_len(&src->sendq) > 0) {
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
		dst->s.h.on_data(dst->s.h.ctx, &dst->s, pt->tmp, n);
		progress = true;
	}
	if (!p->reset && callable(src) && src->want_writable &&
	    wn_bufq_space(&src->sendq) > 0 && !src->fin) {
		src->want_writable = false;
		if (src->s.h.on_writable)
			src->s.h.on_writable(src->s.h.ctx, &src->s);
		progress = true;
	}
	if (!p->reset && callable(dst) && src->fin &&
	    wn_bufq_len(&src->sendq) == 0 && !dst->eof_delivered) {
		dst->eof_delivered = true;
		if (dst->s.h.on_eof)
			dst->s.h.on_eof(dst->s.h.ctx, &dst->s);
		progress = true;
	}
	return progress;
}

static void close_end(struct pt_end *e, int err)
{
	struct wn_pipetunnel *pt = e->pair->pt;

	e->closed = true;
	if (err == WN_STREAM_OK)
		pt->st.closed_ok++;
	else if (err >= 0 && err < ERRS)
		pt->st.closed_err[err]++;
	if (e->s.h.on_closed)
		e->s.h.on_closed(e->s.h.ctx, &e->s, err);
}

static void pump(struct wn_deferred *dn)
{
	struct pt_pair *p = container_of(dn, struct pt_pair, dn);
	struct wn_pipetunnel *pt = p->pt;
	bool progress = false;
	int i;

	if (pt->up && !p->accepted && !p->reset) {
		accept_stream(p);
		progress = true;
	}
	if (pt->up && !p->reset) {
		progress |= move_data(p, &p->end[0], &p->end[1]);
		progress |= move_data(p, &p->end[1], &p->end[0]);
	}
	for (i = 0; i < 2; i++) {
		struct pt_end *e = &p->end[i], *q = peer_of(e);

		if (gone(e))
			continue;
		if (p->reset) {
			/* A stream reset before the server saw it never
			 * reaches the server. */
			if (!callable(e)) {
				e->closed = true;
				continue;
			}
			close_end(e, p->reset_err);
			progress = true;
		} else if (callable(e) && e->fin &&
		           wn_bufq_len(&e->sendq) == 0 && q->eof_delivered &&
		           e->eof_delivered) {
			close_end(e, WN_STREAM_OK);
			progress = true;
		}
	}
	if (gone(&p->end[0]) && gone(&p->end[1])) {
		/* If a callback deferred the pump again, free on that run. */
		if (!wn_deferred_pending(&p->dn))
			free_pair(p);
		return;
	}
	if (progress)
		schedule(p);
}

/* ---- tunnels ---------------------------------------------------------- */

static struct wn_stream *open_stream(struct wn_tunnel *t,
                                     const struct wn_endpoint *target,
                                     unsigned flags,
                                     const struct wn_stream_handler *h)
{
	struct wn_pipetunnel *pt = container_of(t, struct pt_tunnel, t)->pt;
	struct pt_pair *p;
	int i, hdrlen;
	size_t chunk;

	if (pt->closing ||
	    (pt->o.max_streams && pt->st.live >= pt->o.max_streams)) {
		pt->st.refused++;
		return NULL;
	}
	if (!h || !h->on_data || !h->on_closed)
		violation("open_stream without a full handler");
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	hdrlen =
	    wn_streamhdr_encode_flags(target, flags, p->hdr, sizeof(p->hdr));
	if (hdrlen < 0) {
		free(p);
		pt->st.refused++;
		return NULL;
	}
	p->hdrlen = hdrlen;
	p->pt = pt;
	chunk = pt->o.send_limit < 4096 ? pt->o.send_limit : 4096;
	for (i = 0; i < 2; i++) {
		struct pt_end *e = &p->end[i];

		e->s.ops = &pt_stream_ops;
		e->s.id = pt->next_id;
		e->pair = p;
		e->idx = i;
		e->reserved = -1;
		wn_bufq_init(&e->sendq, chunk, pt->o.send_limit);
	}
	pt->next_id += 4;
	p->end[0].s.h = *h;
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
	pt->server_t.t.ops = &server_ops;
	pt->server_t.pt = pt;
	snprintf(pt->server_t.t.peer_id, sizeof(pt->server_t.t.peer_id),
	         "c11e0001");
	pt->up = !pt->o.down;
	wn_deferred_init(&pt->free_dn);
	*out = pt;
	return 0;
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
	if (up)
		for (p = pt->pairs; p; p = p->next)
			schedule(p);
}

void wn_pipetunnel_lose(struct wn_pipetunnel *pt)
{
	struct pt_pair *p;

	for (p = pt->pairs; p; p = p->next)
		do_reset(p, WN_STREAM_SESSION_LOST);
}

const struct wn_pipetunnel_stats *
wn_pipetunnel_stats(const struct wn_pipetunnel *pt)
{
	return &pt->st;
}

static void free_pt(struct wn_deferred *dn)
{
	struct wn_pipetunnel *pt =
	    container_of(dn, struct wn_pipetunnel, free_dn);

	free(pt->tmp);
	free(pt);
}

void wn_pipetunnel_close(struct wn_pipetunnel *pt)
{
	pt->closing = true;
	wn_pipetunnel_lose(pt);
	if (!pt->pairs)
		wn_loop_defer(pt->loop, &pt->free_dn, free_pt);
}
