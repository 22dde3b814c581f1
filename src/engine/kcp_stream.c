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

/* ---- the transport under the stream base ------------------------------ */

/* Space opened up: wn__kstream_wake_writers checks after each run pass. */
static void want_writable(struct kstream *st)
{
	if (!wn_list_linked(&st->wlink))
		wn_list_add_tail(&st->ks->blocked, &st->wlink);
}

void wn__kstream_fail(struct kstream *st, int err)
{
	wn_sb_finish(&st->base, err);
}

void wn__kstream_wake_writers(struct ksession *ks)
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
		if (!st->ks)
			continue;
		if (wn_smux_send_space(mux_of(st), st->sid) == 0) {
			wn_list_add_tail(&ks->blocked, &st->wlink);
			continue;
		}
		wn_sb_writable(&st->base);
	}
}

static ssize_t kt_write(struct wn_stream *s, const uint8_t *data, size_t len)
{
	struct kstream *st = KS(s);
	if (!st->ks)
		return WN_ECLOSED;
	ssize_t n = wn_smux_write(mux_of(st), st->sid, data, len);
	if (n < 0)
		return n == WN_EAGAIN ? 0 : WN_ECLOSED;
	if ((size_t)n < len)
		want_writable(st);
	if (n > 0)
		wn__ksession_schedule(st->ks);
	return n;
}

static ssize_t kt_reserve(struct wn_stream *s, uint8_t **ptr)
{
	struct kstream *st = KS(s);
	if (!st->ks)
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

static int kt_commit(struct wn_stream *s, size_t n)
{
	struct kstream *st = KS(s);
	if (!st->ks)
		return WN_ECLOSED;
	if (n == 0)
		return 0;
	if (st->ks->scratch_owner != st || n > KCP_SCRATCH)
		return WN_EINVAL;
	st->ks->scratch_owner = NULL;
	ssize_t w = kt_write(s, st->ks->scratch, n);
	return w == (ssize_t)n ? 0 : WN_EINTERNAL;
}

static void kt_credit(struct wn_stream *s, size_t n)
{
	struct kstream *st = KS(s);
	if (!st->ks)
		return;
	wn_smux_consumed(mux_of(st), st->sid, n);
	wn__ksession_schedule(st->ks);
}

static void kt_fin(struct wn_stream *s)
{
	struct kstream *st = KS(s);
	if (st->ks) {
		(void)wn_smux_shutdown(mux_of(st), st->sid);
		wn__ksession_schedule(st->ks);
	}
	/* smux sends the FIN after the queued data on its own, even once
	 * the stream is forgotten. */
	wn_sb_fin_done(s);
}

static void kt_reset(struct wn_stream *s, int err)
{
	struct kstream *st = KS(s);
	if (st->ks)
		wn_smux_reset(mux_of(st), st->sid, (uint32_t)err);
}

static void kt_stop(struct wn_stream *s, int err)
{
	struct kstream *st = KS(s);
	/* Native: smux sends an RST after our FIN, which the peer takes for
	 * the end of its direction after it has received all of ours.
	 * kcptun's smux has no RST: the stream ends here as smux's Close()
	 * ends it, and what the peer still sends is discarded. Either way
	 * the core finishes alone once it is forgotten. */
	if (st->ks && !st->ep->kt)
		wn_smux_stop(mux_of(st), st->sid, (uint32_t)err);
	wn_sb_finish(s, err);
}

static void kt_detach(struct wn_stream *s)
{
	struct kstream *st = KS(s);
	struct ksession *ks = st->ks;
	if (ks) {
		uint8_t key[4];
		memcpy(key, &st->sid, 4);
		wn_cidmap_del(&ks->streams, key, 4);
		/* smux forgets it once its FIN or RST is out. */
		if (ks->core)
			wn_smux_forget(mux_of(st), st->sid);
		if (ks->scratch_owner == st)
			ks->scratch_owner = NULL;
		wn__ksession_schedule(ks);
	}
	if (wn_list_linked(&st->link))
		wn_list_del(&st->link);
	if (wn_list_linked(&st->wlink))
		wn_list_del(&st->wlink);
	st->ks = NULL;
	st->ep->stats.streams_closed++;
}

static void kt_free(struct wn_stream *s)
{
	free(KS(s));
}

/* What smux still holds of the stream's data (the budget's count). An
 * ended stream's data is still sent (smux forgets it only once it is
 * out), so it is asked for too, until its session goes. */
static size_t kt_queued(const struct wn_stream *s)
{
	const struct kstream *st = (const struct kstream *)s;
	const struct ksession *ks = st->home;
	return ks && ks->core
	           ? wn_smux_send_queued(wn_kcp_sess_smux(ks->core), st->sid)
	           : 0;
}

static const struct wn_sb_transport wn__kstream_transport = {
    .write = kt_write,
    .reserve = kt_reserve,
    .commit = kt_commit,
    .credit = kt_credit,
    .fin = kt_fin,
    .reset = kt_reset,
    .stop = kt_stop,
    .detach = kt_detach,
    .free = kt_free,
    .queued = kt_queued,
};

static struct kstream *stream_alloc(struct ksession *ks, uint32_t sid,
                                    const struct wn_stream_handler *h)
{
	struct kep *ep = ks->ep;
	struct kstream *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	uint8_t key[4];
	memcpy(key, &sid, 4);
	if (wn_cidmap_add(&ks->streams, key, 4, st) != 0) {
		free(st);
		return NULL;
	}
	/* Set up with the first stream, so that the endpoints' constructors
	 * need not know about the base. */
	if (!ep->senv.tp) {
		wn_sb_env_init(&ep->senv, &wn__kstream_transport, ep->o.loop,
		               ep->o.log, ep->is_server ? &ep->ah : NULL);
		wn_sb_env_budget(&ep->senv, ep->o.session_buffer,
		                 ep->o.total_buffer);
		wn_sb_env_keys(&ep->senv, ep->key_streams, ep->nkeys,
		               ep->o.streams_per_key);
	}
	st->ep = ep;
	st->ks = ks;
	st->home = ks;
	st->sid = sid;
	wn_sb_init(&st->base, &ep->senv, &ks->tunnel, h);
	wn_list_add_tail(&ks->all, &st->link);
	ep->stats.streams_opened++;
	return st;
}

struct kstream *wn__kstream_open(struct ksession *ks,
                                 const struct wn_endpoint *target,
                                 unsigned flags,
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
		wn__ksession_schedule(ks);
		return st;
	}
	/* The header goes first, in the same flight as the SYN: no round
	 * trip. A fresh stream's queue always has room for it. */
	if (wn_smux_write(mux, sid, hdr, (size_t)hl) != hl) {
		wn_smux_reset(mux, sid, WN_STREAM_INTERNAL);
		st->base.released = 1;
		wn_sb_finish(&st->base, WN_STREAM_INTERNAL);
		return NULL;
	}
	wn__ksession_schedule(ks);
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
	/* kcptun: no header; the dialer's fixed target at once (the stream
	 * is in smux's table already, so the dialer may act on it from
	 * here). A refusal resets the stream, which smux sends. */
	if (ks->ep->kt)
		(void)wn_sb_accept(&st->base, NULL);
	return 0;
}

static void cb_data(void *ctx, uint32_t sid, const uint8_t *data, size_t len)
{
	struct kstream *st = lookup(ctx, sid);
	if (st)
		wn_sb_recv(&st->base, data, len);
}

static void cb_fin(void *ctx, uint32_t sid)
{
	struct kstream *st = lookup(ctx, sid);
	if (st)
		wn_sb_recv_fin(&st->base);
}

static void cb_reset(void *ctx, uint32_t sid, uint32_t reason)
{
	struct kstream *st = lookup(ctx, sid);
	if (st)
		wn_sb_recv_reset(&st->base, reason <= 255 ? (int)reason : 0);
}

struct wn_smux_cb wn__kstream_smux_cb(struct ksession *ks)
{
	struct wn_smux_cb cb = {
	    .ctx = ks,
	    .on_open = cb_open,
	    .on_data = cb_data,
	    .on_fin = cb_fin,
	    .on_reset = cb_reset,
	    .on_writable = NULL, /* wn__kstream_wake_writers polls instead */
	};
	return cb;
}
