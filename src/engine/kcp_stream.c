/* The KCP engine's streams: the tunnel API's stream operations on smux
 * streams, and the smux callbacks that deliver stream events. */
#include <stdlib.h>
#include <string.h>

#include "engine/kcp_engine_int.h"
#include "util/err.h"

static struct kstream *KS(struct wn_stream *s)
{
	return (struct kstream *)s;
}

static struct wn_smux *mux_of(const struct kstream *st)
{
	return wn_kcp_sess_smux(st->ks->core);
}

static struct kstream *lookup(struct ksession *ks, uint32_t sid)
{
	uint8_t key[4];
	memcpy(key, &sid, 4);
	return wn_cidmap_get(&ks->streams, key, 4);
}

/* ---- bookkeeping ------------------------------------------------------ */

static void stream_deferred(struct wn_deferred *node)
{
	struct kstream *st = wn_list_entry(node, struct kstream, dnode);
	if (!st->released && st->base.h.on_closed)
		st->base.h.on_closed(st->base.h.ctx, &st->base, st->close_err);
	free(st);
}

/* Ends a stream for good: detaches it from its session (smux forgets it
 * once its FIN or RST is out) and reports on_closed(err) from the loop. */
static void stream_finish(struct kstream *st, int err)
{
	if (st->closed)
		return;
	st->closed = 1;
	st->close_err = err;
	struct ksession *ks = st->ks;
	if (ks) {
		uint8_t key[4];
		memcpy(key, &st->sid, 4);
		wn_cidmap_del(&ks->streams, key, 4);
		if (ks->core)
			wn_smux_forget(mux_of(st), st->sid);
		if (ks->scratch_owner == st)
			ks->scratch_owner = NULL;
		ksession_schedule(ks);
	}
	if (wn_list_linked(&st->link))
		wn_list_del(&st->link);
	if (wn_list_linked(&st->wlink))
		wn_list_del(&st->wlink);
	st->ks = NULL;
	st->ep->stats.streams_closed++;
	wn_loop_defer(st->ep->o.loop, &st->dnode, stream_deferred);
}

void kstream_fail(struct kstream *st, int err)
{
	stream_finish(st, err);
}

/* Both directions are done: the stream closes cleanly. */
static void maybe_done(struct kstream *st)
{
	if (!st->closed && st->fin_wanted && st->eof)
		stream_finish(st, WN_STREAM_OK);
}

static void want_writable(struct kstream *st)
{
	st->want_writable = 1;
	if (!wn_list_linked(&st->wlink))
		wn_list_add_tail(&st->ks->blocked, &st->wlink);
}

void kstream_wake_writers(struct ksession *ks)
{
	/* Handlers may write (and block again) or close streams: take the
	 * list first. */
	struct wn_list todo;
	wn_list_init(&todo);
	while (!wn_list_empty(&ks->blocked)) {
		struct wn_list *n = ks->blocked.next;
		wn_list_del(n);
		wn_list_add_tail(&todo, n);
	}
	while (!wn_list_empty(&todo)) {
		struct kstream *st =
		    wn_list_entry(todo.next, struct kstream, wlink);
		wn_list_del(&st->wlink);
		if (st->closed || !st->ks)
			continue;
		if (wn_smux_send_space(mux_of(st), st->sid) == 0) {
			wn_list_add_tail(&ks->blocked, &st->wlink);
			continue;
		}
		st->want_writable = 0;
		if (!st->released && st->base.h.on_writable)
			st->base.h.on_writable(st->base.h.ctx, &st->base);
	}
}

/* ---- the tunnel API --------------------------------------------------- */

static ssize_t ks_write(struct wn_stream *s, const uint8_t *data, size_t len)
{
	struct kstream *st = KS(s);
	if (st->closed || st->fin_wanted || !st->ks)
		return WN_ECLOSED;
	ssize_t n = wn_smux_write(mux_of(st), st->sid, data, len);
	if (n < 0)
		return n == WN_EAGAIN ? 0 : WN_ECLOSED;
	if ((size_t)n < len)
		want_writable(st);
	if (n > 0)
		ksession_schedule(st->ks);
	return n;
}

static ssize_t ks_reserve(struct wn_stream *s, uint8_t **ptr)
{
	struct kstream *st = KS(s);
	if (st->closed || st->fin_wanted || !st->ks)
		return WN_ECLOSED;
	size_t space = wn_smux_send_space(mux_of(st), st->sid);
	if (space == 0) {
		want_writable(st);
		return 0;
	}
	/* smux copies written bytes into its queue anyway: lend the
	 * session's scratch space and copy on commit. */
	st->ks->scratch_owner = st;
	*ptr = st->ks->scratch;
	return (ssize_t)(space < KCP_SCRATCH ? space : KCP_SCRATCH);
}

static int ks_commit(struct wn_stream *s, size_t n)
{
	struct kstream *st = KS(s);
	if (st->closed || !st->ks)
		return WN_ECLOSED;
	if (n == 0)
		return 0;
	if (st->ks->scratch_owner != st || n > KCP_SCRATCH)
		return WN_EINVAL;
	st->ks->scratch_owner = NULL;
	ssize_t w = ks_write(s, st->ks->scratch, n);
	return w == (ssize_t)n ? 0 : WN_EINTERNAL;
}

static void ks_consumed(struct wn_stream *s, size_t n)
{
	struct kstream *st = KS(s);
	if (st->closed || !st->ks || n == 0)
		return;
	wn_smux_consumed(mux_of(st), st->sid, n);
	ksession_schedule(st->ks);
}

static int ks_shutdown(struct wn_stream *s)
{
	struct kstream *st = KS(s);
	if (st->closed || !st->ks)
		return WN_ECLOSED;
	if (st->fin_wanted)
		return 0;
	st->fin_wanted = 1;
	int rc = wn_smux_shutdown(mux_of(st), st->sid);
	ksession_schedule(st->ks);
	maybe_done(st);
	return rc < 0 ? rc : 0;
}

static void ks_reset(struct wn_stream *s, int err)
{
	struct kstream *st = KS(s);
	if (st->closed)
		return;
	if (st->ks)
		wn_smux_reset(mux_of(st), st->sid, (uint32_t)err);
	stream_finish(st, err);
}

static void ks_release(struct wn_stream *s)
{
	struct kstream *st = KS(s);
	st->released = 1;
	memset(&st->base.h, 0, sizeof(st->base.h));
	if (st->closed)
		return;
	if (!st->fin_wanted)
		ks_reset(s, WN_STREAM_ABORTED);
	/* Else our FIN is queued; the peer's data is discarded as it comes
	 * and its FIN ends the stream. */
}

static const struct wn_stream_ops kstream_ops = {
    .write = ks_write,
    .reserve = ks_reserve,
    .commit = ks_commit,
    .consumed = ks_consumed,
    .shutdown = ks_shutdown,
    .reset = ks_reset,
    .release = ks_release,
};

static struct kstream *stream_alloc(struct ksession *ks, uint32_t sid,
                                    const struct wn_stream_handler *h)
{
	struct kstream *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	uint8_t key[4];
	memcpy(key, &sid, 4);
	if (wn_cidmap_add(&ks->streams, key, 4, st) != 0) {
		free(st);
		return NULL;
	}
	st->ep = ks->ep;
	st->ks = ks;
	st->sid = sid;
	st->base.ops = &kstream_ops;
	if (h)
		st->base.h = *h;
	st->base.id = ++ks->ep->stream_seq;
	st->hdr_done = 1;
	wn_list_add_tail(&ks->all, &st->link);
	ks->ep->stats.streams_opened++;
	return st;
}

struct kstream *kstream_open(struct ksession *ks,
                             const struct wn_endpoint *target, unsigned flags,
                             const struct wn_stream_handler *h)
{
	if (ks->state == KS_DEAD)
		return NULL;
	struct wn_smux *mux = wn_kcp_sess_smux(ks->core);
	uint8_t hdr
	    [WN_STREAMHDR_MAX]; /* kcptun streams carry no header: its server has one target. */
	int hl = ks->ep->kt ? 0
	                    : wn_streamhdr_encode_flags(target, flags, hdr,
	                                                sizeof(hdr));
	if (hl < 0)
		return NULL;
	uint32_t sid;
	if (wn_smux_open(mux, &sid) != 0)
		return NULL;
	struct kstream *st = stream_alloc(ks, sid, h);
	if (!st) {
		wn_smux_reset(mux, sid, WN_STREAM_INTERNAL);
		wn_smux_forget(mux, sid);
		return NULL;
	}
	if (ks->ep->kt) {
		ksession_schedule(ks);
		return st;
	}
	/* The header goes first, in the same flight as the SYN: no round
	 * trip. A fresh stream's queue always has room for it. */
	if (wn_smux_write(mux, sid, hdr, (size_t)hl) != hl) {
		wn_smux_reset(mux, sid, WN_STREAM_INTERNAL);
		st->released = 1;
		stream_finish(st, WN_STREAM_INTERNAL);
		return NULL;
	}
	ksession_schedule(ks);
	return st;
}

/* ---- smux callbacks ---------------------------------------------------- */

static uint32_t cb_open(void *ctx, uint32_t sid)
{
	struct ksession *ks = ctx;
	if (!ks->ep->is_server || ks->state != KS_UP)
		return WN_STREAM_DENIED; /* clients take no streams */
	struct kstream *st = stream_alloc(ks, sid, NULL);
	if (!st)
		return WN_STREAM_INTERNAL;
	if (ks->ep->kt) {
		/* kcptun: no header; the dialer's fixed target at once (the
		 * stream is in smux's table already, so the dialer may act
		 * on it from here). */
		ks->ep->ah.on_stream(ks->ep->ah.ctx, &ks->tunnel, &st->base,
		                     NULL);
		if (!st->closed && !st->base.h.on_data)
			ks_reset(&st->base, WN_STREAM_INTERNAL);
		return 0;
	}
	st->hdr_done = 0;
	return 0;
}

/* Server side: the first bytes of a client stream are its header. Returns
 * how many of data's bytes were header, or -1 once the stream is gone. */
static ssize_t take_header(struct ksession *ks, struct kstream *st,
                           const uint8_t *data, size_t len)
{
	struct wn_endpoint target;
	int dflt = 0;
	unsigned flags = 0;
	size_t used = 0;
	int hl = wn_streamhdr_take(&st->hdr, data, len, &used, &target, &dflt,
	                           &flags);
	if (hl < 0 && hl != WN_EAGAIN) {
		WN_LOG_RL(ks->ep->o.log, &ks->ep->rl_err,
		          wn_loop_now_ms(ks->ep->o.loop), WN_LOG_INFO, "sock",
		          "stream %llu from %s: malformed header",
		          (unsigned long long)st->base.id, ks->tunnel.peer_id);
		ks_reset(&st->base, WN_STREAM_BAD_HEADER);
		return -1;
	}
	/* Header bytes never reach the front end: credit them now. */
	wn_smux_consumed(wn_kcp_sess_smux(ks->core), st->sid, used);
	if (hl == WN_EAGAIN)
		return (ssize_t)len;
	st->hdr_done = 1;
	st->base.hdr_flags = flags;
	ks->ep->ah.on_stream(ks->ep->ah.ctx, &ks->tunnel, &st->base,
	                     dflt ? NULL : &target);
	if (st->closed)
		return -1;
	if (!st->base.h.on_data) {
		ks_reset(&st->base, WN_STREAM_INTERNAL);
		return -1;
	}
	return (ssize_t)used;
}

static void cb_data(void *ctx, uint32_t sid, const uint8_t *data, size_t len)
{
	struct ksession *ks = ctx;
	struct kstream *st = lookup(ks, sid);
	if (!st || st->closed)
		return;
	if (!st->hdr_done) {
		ssize_t used = take_header(ks, st, data, len);
		if (used < 0 || !st->hdr_done)
			return;
		data += used;
		len -= (size_t)used;
	}
	if (len == 0)
		return;
	if (!st->released && st->base.h.on_data)
		st->base.h.on_data(st->base.h.ctx, &st->base, data, len);
	else
		ks_consumed(&st->base, len); /* nobody reads: discard */
}

static void cb_fin(void *ctx, uint32_t sid)
{
	struct ksession *ks = ctx;
	struct kstream *st = lookup(ks, sid);
	if (!st || st->closed || st->eof)
		return;
	if (!st->hdr_done) {
		/* A stream that ended before its header was complete. */
		ks_reset(&st->base, WN_STREAM_BAD_HEADER);
		return;
	}
	st->eof = 1;
	if (!st->released && st->base.h.on_eof)
		st->base.h.on_eof(st->base.h.ctx, &st->base);
	maybe_done(st);
}

static void cb_reset(void *ctx, uint32_t sid, uint32_t reason)
{
	struct ksession *ks = ctx;
	struct kstream *st = lookup(ks, sid);
	if (!st || st->closed)
		return;
	stream_finish(st, reason > 0 && reason <= 255 ? (int)reason
	                                              : WN_STREAM_ABORTED);
}

struct wn_smux_cb kstream_smux_cb(struct ksession *ks)
{
	struct wn_smux_cb cb = {
	    .ctx = ks,
	    .on_open = cb_open,
	    .on_data = cb_data,
	    .on_fin = cb_fin,
	    .on_reset = cb_reset,
	    .on_writable = NULL, /* kstream_wake_writers polls instead */
	};
	return cb;
}
