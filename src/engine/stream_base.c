/* The stream base: see stream_base.h. */
#include "engine/stream_base.h"

#include <string.h>

#include "engine/engine.h"
#include "util/err.h"

#define LOG_COMP "strm"

const char *wn_sb_in_name(int in)
{
	switch (in) {
	case WN_SB_IN_OPEN:
		return "open";
	case WN_SB_IN_DRAIN:
		return "drain";
	case WN_SB_IN_EOF:
		return "eof";
	case WN_SB_IN_ABORTED:
		return "aborted";
	default:
		return "?";
	}
}

const char *wn_sb_out_name(int out)
{
	switch (out) {
	case WN_SB_OUT_OPEN:
		return "open";
	case WN_SB_OUT_FIN:
		return "fin";
	case WN_SB_OUT_DONE:
		return "done";
	case WN_SB_OUT_ABORTED:
		return "aborted";
	default:
		return "?";
	}
}

/* ---- the two state machines ------------------------------------------ */

/* Allowed changes, [from] -> bit set of "to". Anything else is a bug in
 * the base or an engine: logged and refused, so the stream keeps a state
 * the rules know. */
static const uint8_t in_next[] = {
    [WN_SB_IN_OPEN] =
        1u << WN_SB_IN_DRAIN | 1u << WN_SB_IN_EOF | 1u << WN_SB_IN_ABORTED,
    [WN_SB_IN_DRAIN] = 1u << WN_SB_IN_EOF | 1u << WN_SB_IN_ABORTED,
    [WN_SB_IN_EOF] = 1u << WN_SB_IN_ABORTED,
    [WN_SB_IN_ABORTED] = 0,
};

static const uint8_t out_next[] = {
    [WN_SB_OUT_OPEN] = 1u << WN_SB_OUT_FIN | 1u << WN_SB_OUT_ABORTED,
    [WN_SB_OUT_FIN] = 1u << WN_SB_OUT_DONE | 1u << WN_SB_OUT_ABORTED,
    [WN_SB_OUT_DONE] = 1u << WN_SB_OUT_ABORTED,
    [WN_SB_OUT_ABORTED] = 0,
};

/* The one place a direction changes state. dir: 0 in, 1 out. Returns 0,
 * or -1 (logged, nothing changed) for a change the rules do not allow. */
static int set_state(struct wn_stream *s, int dir, int to)
{
	uint8_t *st = dir ? &s->out : &s->in;
	const uint8_t *next = dir ? out_next : in_next;
	const char *(*name)(int) = dir ? wn_sb_out_name : wn_sb_in_name;

	if (!(next[*st] & (1u << to))) {
		WN_LOG(s->env->log, WN_LOG_WARN, LOG_COMP,
		       "stream %llu: bad %s change %s -> %s (ignored)",
		       (unsigned long long)s->id, dir ? "out" : "in", name(*st),
		       name(to));
		return -1;
	}
	WN_LOG(s->env->log, WN_LOG_TRACE, LOG_COMP, "stream %llu: %s %s -> %s",
	       (unsigned long long)s->id, dir ? "out" : "in", name(*st),
	       name(to));
	*st = (uint8_t)to;
	return 0;
}

static void set_in(struct wn_stream *s, int to)
{
	(void)set_state(s, 0, to);
}

static void set_out(struct wn_stream *s, int to)
{
	(void)set_state(s, 1, to);
}

/* ---- ending ------------------------------------------------------------ */

static void closed_deferred(struct wn_deferred *node)
{
	struct wn_stream *s =
	    (struct wn_stream *)((char *)node -
	                         offsetof(struct wn_stream, dnode));

	if (!s->released && s->h.on_closed)
		s->h.on_closed(s->h.ctx, s, s->err);
	s->reported = 1;
	s->env->tp->free(s);
}

void wn_sb_finish(struct wn_stream *s, int err)
{
	if (s->ended)
		return;
	s->ended = 1;
	s->err = err;
	if (s->in != WN_SB_IN_EOF && s->in != WN_SB_IN_ABORTED)
		set_in(s, WN_SB_IN_ABORTED);
	if (s->out != WN_SB_OUT_DONE && s->out != WN_SB_OUT_ABORTED)
		set_out(s, WN_SB_OUT_ABORTED);
	s->want_writable = 0;
	s->env->tp->detach(s);
	wn_loop_defer(s->env->loop, &s->dnode, closed_deferred);
}

/* Both directions over: the stream ends, cleanly unless one was
 * aborted. */
static void maybe_done(struct wn_stream *s)
{
	if (s->ended)
		return;
	if ((s->in == WN_SB_IN_EOF || s->in == WN_SB_IN_ABORTED) &&
	    (s->out == WN_SB_OUT_DONE || s->out == WN_SB_OUT_ABORTED))
		wn_sb_finish(s, s->err);
}

/* Aborts both directions on the wire and ends the stream. */
static void do_reset(struct wn_stream *s, int err)
{
	s->env->tp->reset(s, err);
	wn_sb_finish(s, err);
}

/* ---- the tunnel API's stream calls --------------------------------------- */

/* Refuses a call the contract forbids (after release or on_closed); test
 * doubles hear about it. Returns nonzero if the call must not go on. */
static int misused(struct wn_stream *s, const char *what)
{
	if (!s->released && !s->reported)
		return 0;
	if (s->env->tp->misuse)
		s->env->tp->misuse(s, what);
	return 1;
}

static ssize_t sb_write(struct wn_stream *s, const uint8_t *data, size_t len)
{
	if (misused(s, "write"))
		return WN_ECLOSED;
	if (s->ended || s->out != WN_SB_OUT_OPEN)
		return WN_ECLOSED;
	ssize_t n = s->env->tp->write(s, data, len);
	if (n >= 0 && (size_t)n < len)
		s->want_writable = 1;
	return n;
}

static ssize_t sb_reserve(struct wn_stream *s, uint8_t **ptr)
{
	if (misused(s, "reserve"))
		return WN_ECLOSED;
	if (s->ended || s->out != WN_SB_OUT_OPEN)
		return WN_ECLOSED;
	ssize_t n = s->env->tp->reserve(s, ptr);
	if (n == 0)
		s->want_writable = 1;
	return n;
}

static int sb_commit(struct wn_stream *s, size_t n)
{
	if (misused(s, "commit"))
		return WN_ECLOSED;
	if (s->ended || s->out != WN_SB_OUT_OPEN)
		return WN_ECLOSED;
	return s->env->tp->commit(s, n);
}

static void sb_consumed(struct wn_stream *s, size_t n)
{
	if (misused(s, "consumed"))
		return;
	if (s->ended || n == 0)
		return;
	s->env->tp->credit(s, n);
}

static int sb_shutdown(struct wn_stream *s)
{
	if (misused(s, "shutdown"))
		return WN_ECLOSED;
	if (s->ended || s->out == WN_SB_OUT_ABORTED)
		return WN_ECLOSED;
	if (s->out != WN_SB_OUT_OPEN)
		return 0; /* already shut down */
	set_out(s, WN_SB_OUT_FIN);
	s->want_writable = 0; /* no more writes, so no more on_writable */
	s->env->tp->fin(s);
	maybe_done(s);
	return 0;
}

static void sb_reset(struct wn_stream *s, int err)
{
	if (misused(s, "reset"))
		return;
	if (s->ended)
		return;
	do_reset(s, err);
}

/* The one meaning of releasing a stream (tunnel.h, "Lifetime"). */
static void sb_release(struct wn_stream *s)
{
	if (misused(s, "release"))
		return;
	s->released = 1;
	memset(&s->h, 0, sizeof(s->h));
	if (s->ended)
		return;
	if (s->out == WN_SB_OUT_OPEN) {
		/* Our direction was not finished: what was queued is not
		 * what the front end meant to send. */
		do_reset(s, WN_STREAM_ABORTED);
		return;
	}
	if (s->in == WN_SB_IN_OPEN) {
		/* Our direction is finished; nobody reads the peer's. */
		set_in(s, WN_SB_IN_DRAIN);
		s->env->tp->stop(s, WN_STREAM_ABORTED);
	}
	maybe_done(s);
}

const struct wn_stream_ops wn_sb_stream_ops = {
    .write = sb_write,
    .reserve = sb_reserve,
    .commit = sb_commit,
    .consumed = sb_consumed,
    .shutdown = sb_shutdown,
    .reset = sb_reset,
    .release = sb_release,
};

/* ---- set-up ------------------------------------------------------------ */

void wn_sb_env_init(struct wn_stream_env *env, const struct wn_sb_transport *tp,
                    struct wn_loop *loop, struct wn_log *log,
                    const struct wn_accept_handler *ah)
{
	memset(env, 0, sizeof(*env));
	env->tp = tp;
	env->loop = loop;
	env->log = log;
	env->ah = ah;
	env->rl = (struct wn_ratelimit)WN_RATELIMIT_INIT(1000, 5);
}

void wn_sb_init(struct wn_stream *s, struct wn_stream_env *env,
                struct wn_tunnel *t, const struct wn_stream_handler *h)
{
	s->ops = &wn_sb_stream_ops;
	s->env = env;
	s->tunnel = t;
	s->id = ++env->seq;
	s->in = WN_SB_IN_OPEN;
	s->out = WN_SB_OUT_OPEN;
	if (h)
		s->h = *h;
	else
		s->hdr_pending = 1;
}

/* Calls the accept handler; the stream lives on only with a handler. */
static int accept_now(struct wn_stream *s, const struct wn_endpoint *target)
{
	const struct wn_accept_handler *ah = s->env->ah;

	s->hdr_pending = 0;
	if (!ah || !ah->on_stream) {
		do_reset(s, WN_STREAM_DENIED);
		return -1;
	}
	ah->on_stream(ah->ctx, s->tunnel, s, target);
	if (s->ended)
		return -1;
	if (!s->h.on_data) {
		do_reset(s, WN_STREAM_INTERNAL);
		return -1;
	}
	return 0;
}

int wn_sb_accept(struct wn_stream *s, const struct wn_endpoint *target)
{
	if (s->ended)
		return -1;
	return accept_now(s, target);
}

/* The engine's time, for rate limits. */
static uint64_t now_ms(const struct wn_stream *s)
{
	return s->env->tp->now_ms ? s->env->tp->now_ms(s)
	                          : wn_loop_now_ms(s->env->loop);
}

/* Server side: the first bytes of a client stream are its header. Returns
 * how many of data's bytes were header, or -1 once the stream has ended. */
static ssize_t take_header(struct wn_stream *s, const uint8_t *data, size_t len)
{
	struct wn_endpoint target;
	int dflt = 0;
	unsigned flags = 0;
	size_t used = 0;
	int hl = wn_streamhdr_take(&s->hdr, data, len, &used, &target, &dflt,
	                           &flags);

	if (hl < 0 && hl != WN_EAGAIN) {
		WN_LOG_RL(s->env->log, &s->env->rl, now_ms(s), WN_LOG_INFO,
		          "sock", "stream %llu from %s: malformed header",
		          (unsigned long long)s->id,
		          s->tunnel ? s->tunnel->peer_id : "?");
		do_reset(s, WN_STREAM_BAD_HEADER);
		return -1;
	}
	/* Header bytes never reach the front end: credit them now. */
	if (used > 0)
		s->env->tp->credit(s, used);
	if (hl == WN_EAGAIN)
		return (ssize_t)len;
	s->hdr_flags = flags;
	if (accept_now(s, dflt ? NULL : &target) != 0)
		return -1;
	return (ssize_t)used;
}

/* ---- events from the wire ------------------------------------------------ */

void wn_sb_recv(struct wn_stream *s, const uint8_t *data, size_t len)
{
	if (s->ended)
		return;
	if (s->hdr_pending) {
		ssize_t used = take_header(s, data, len);
		if (used < 0 || s->hdr_pending)
			return;
		data += used;
		len -= (size_t)used;
	}
	if (len == 0)
		return;
	/* A released stream is never IN_OPEN (release resets or drains). */
	if (s->in == WN_SB_IN_OPEN && s->h.on_data)
		s->h.on_data(s->h.ctx, s, data, len);
	else
		s->env->tp->credit(s, len); /* nobody reads: discard */
}

void wn_sb_recv_fin(struct wn_stream *s)
{
	if (s->ended || (s->in != WN_SB_IN_OPEN && s->in != WN_SB_IN_DRAIN))
		return;
	if (s->hdr_pending) {
		/* A stream that ended before its header was complete. */
		do_reset(s, WN_STREAM_BAD_HEADER);
		return;
	}
	int reading = s->in == WN_SB_IN_OPEN;
	set_in(s, WN_SB_IN_EOF);
	if (reading && !s->released && s->h.on_eof)
		s->h.on_eof(s->h.ctx, s);
	maybe_done(s);
}

void wn_sb_recv_reset(struct wn_stream *s, int err)
{
	if (s->ended)
		return;
	if (err <= 0 || err > 255)
		err = WN_STREAM_ABORTED;
	if (s->in == WN_SB_IN_DRAIN) {
		/* The answer to our stop: our own direction still finishes. */
		set_in(s, WN_SB_IN_ABORTED);
		maybe_done(s);
		return;
	}
	/* The peer aborted: abort ours too, so the stream ends now and the
	 * front end hears why. */
	do_reset(s, err);
}

void wn_sb_recv_stop(struct wn_stream *s, int err)
{
	if (s->ended || s->out == WN_SB_OUT_ABORTED)
		return;
	if (err <= 0 || err > 255)
		err = WN_STREAM_ABORTED;
	set_out(s, WN_SB_OUT_ABORTED);
	s->want_writable = 0;
	if (!s->err)
		s->err = err;
	maybe_done(s);
}

void wn_sb_fin_done(struct wn_stream *s)
{
	if (s->ended || s->out != WN_SB_OUT_FIN)
		return;
	set_out(s, WN_SB_OUT_DONE);
	maybe_done(s);
}

void wn_sb_writable(struct wn_stream *s)
{
	if (!s->want_writable || s->ended || s->out != WN_SB_OUT_OPEN)
		return;
	s->want_writable = 0;
	if (!s->released && s->h.on_writable)
		s->h.on_writable(s->h.ctx, s);
}
