/* The stream base: see stream_base.h. */
#include "engine/stream_base.h"

#include <stdint.h>
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

/* ---- the send budget (stream_base.h) ------------------------------------ */

/* A session's lists are set up on first use: engines zero their sessions
 * and need not know about the budget. */
static struct wn_sb_budget *sess_budget(struct wn_tunnel *t)
{
	if (!t)
		return NULL;
	if (!t->budget.wait.next) {
		wn_list_init(&t->budget.wait);
		wn_list_init(&t->budget.busy);
	}
	return &t->budget;
}

static void count(struct wn_stream *s, size_t n)
{
	struct wn_sb_budget *b = sess_budget(s->tunnel);

	s->acct += n;
	s->env->total.used += n;
	if (b) {
		b->used += n;
		if (!wn_list_linked(&s->alink))
			wn_list_add_tail(&b->busy, &s->alink);
	}
}

/* Takes n (at most what is counted) off the stream's count. Calls no
 * handler. Returns nonzero if the stream waits and has fallen below the
 * floor: the caller wakes it. */
static int uncount(struct wn_stream *s, size_t n)
{
	struct wn_sb_budget *b = s->tunnel ? &s->tunnel->budget : NULL;

	if (n > s->acct)
		n = s->acct;
	if (n == 0)
		return 0;
	s->acct -= n;
	s->env->total.used -= n;
	if (b && wn_list_linked(&s->alink)) {
		b->used -= n;
		if (s->acct == 0)
			wn_list_del(&s->alink);
	}
	return s->acct < WN_SB_FLOOR && wn_list_linked(&s->blink);
}

/* Waits on budget b (if not already waiting): refused. */
static size_t wait_on(struct wn_stream *s, struct wn_sb_budget *b)
{
	if (!wn_list_linked(&s->blink))
		wn_list_add_tail(&b->wait, &s->blink);
	return 0;
}

/* How many bytes the stream may write now (SIZE_MAX: the budget does not
 * limit it); 0 means refused, and the stream then waits on the budget
 * that is full. */
static size_t allowance(struct wn_stream *s)
{
	struct wn_stream_env *env = s->env;
	struct wn_sb_budget *b = sess_budget(s->tunnel);
	int over;

	/* Twice the total is a hard cap, floor or not: the floors of every
	 * stream of every session would have no bound otherwise. */
	if (env->total_limit && env->total.used >= 2 * env->total_limit)
		return wait_on(s, &env->total);
	over = (env->session_limit && b && b->used >= env->session_limit) ||
	       (env->total_limit && env->total.used >= env->total_limit);
	if (!over)
		return SIZE_MAX;
	if (s->acct < WN_SB_FLOOR)
		return WN_SB_FLOOR - s->acct;
	if (env->session_limit && b && b->used >= env->session_limit)
		return wait_on(s, b);
	return wait_on(s, &env->total);
}

/* Wakes (on_writable) the streams on list, in order. Handlers may write
 * and wait again, or end streams: the list is taken first. */
static void wake_list(struct wn_list *list)
{
	struct wn_list todo;

	if (wn_list_empty(list))
		return;
	wn_list_init(&todo);
	todo.next = list->next;
	todo.prev = list->prev;
	todo.next->prev = &todo;
	todo.prev->next = &todo;
	wn_list_init(list);
	while (!wn_list_empty(&todo)) {
		struct wn_stream *s =
		    wn_list_entry(todo.next, struct wn_stream, blink);
		wn_list_del(&s->blink);
		wn_sb_writable(s);
	}
}

/* Below the limit by an eighth of it (or no limit). */
static int has_room(size_t used, size_t limit)
{
	return !limit || used <= limit - limit / 8;
}

/* After budget came back: wakes the session's and the total's waiters
 * once there is room. */
static void wake_budget(struct wn_stream_env *env, struct wn_tunnel *t)
{
	if (t && t->budget.wait.next && !wn_list_empty(&t->budget.wait) &&
	    has_room(t->budget.used, env->session_limit))
		wake_list(&t->budget.wait);
	if (!wn_list_empty(&env->total.wait) &&
	    has_room(env->total.used, env->total_limit))
		wake_list(&env->total.wait);
}

/* The stream's count goes back without waking anyone (the stream ended,
 * maybe inside a wn_stream_* call, where no handler may run): the
 * streams still waiting hold at least the floor each, and wake on their
 * own drains. */
static void budget_forget(struct wn_stream *s)
{
	(void)uncount(s, s->acct);
	if (wn_list_linked(&s->blink))
		wn_list_del(&s->blink);
}

/* The stream has ended (and is detached). What its engine still holds of
 * its data stays counted ("Ended streams" in stream_base.h): an engine
 * that reports its buffers through transport->queued says how much that
 * is; the rest goes back now, without waking anyone. */
static void budget_end(struct wn_stream *s)
{
	size_t q = s->env->tp->queued ? s->env->tp->queued(s) : 0;

	if (wn_list_linked(&s->blink))
		wn_list_del(&s->blink);
	if (q < s->acct)
		(void)uncount(s, s->acct - q);
}

/* Frees an ended stream once its deferred close has run and nothing of
 * it is counted any more: from the deferred close, or later, as its
 * engine's buffers drain (wn_sb_sync) or its session goes. */
static void free_if_done(struct wn_stream *s)
{
	if (s->ended && s->reported && s->acct == 0)
		s->env->tp->free(s);
}

void wn_sb_sent(struct wn_stream *s, size_t n)
{
	struct wn_tunnel *t = s->tunnel;

	if (s->ended || n == 0 || s->acct == 0)
		return;
	if (uncount(s, n)) {
		wn_list_del(&s->blink);
		wn_sb_writable(s);
	}
	wake_budget(s->env, t);
}

void wn_sb_sync(struct wn_tunnel *t)
{
	struct wn_stream_env *env = NULL;
	struct wn_list *n, *next, todo;

	if (!t || !t->budget.busy.next || wn_list_empty(&t->budget.busy))
		return;
	wn_list_init(&todo);
	/* No handler runs in this loop, so the list stays as it is but for
	 * the stream at hand. */
	for (n = t->budget.busy.next; n != &t->budget.busy; n = next) {
		struct wn_stream *s = wn_list_entry(n, struct wn_stream, alink);
		size_t q = s->env->tp->queued ? s->env->tp->queued(s) : 0;

		next = n->next;
		env = s->env;
		if (q < s->acct && uncount(s, s->acct - q)) {
			wn_list_del(&s->blink);
			wn_list_add_tail(&todo, &s->blink);
		}
		/* An ended stream has no blink: nothing above refers to it. */
		free_if_done(s);
	}
	while (!wn_list_empty(&todo)) {
		struct wn_stream *s =
		    wn_list_entry(todo.next, struct wn_stream, blink);
		wn_list_del(&s->blink);
		wn_sb_writable(s);
	}
	if (env)
		wake_budget(env, t);
}

void wn_sb_session_gone(struct wn_tunnel *t)
{
	struct wn_list *n, *next;

	if (!t || !t->budget.busy.next)
		return;
	for (n = t->budget.busy.next; n != &t->budget.busy; n = next) {
		struct wn_stream *s = wn_list_entry(n, struct wn_stream, alink);

		next = n->next;
		budget_forget(s);
		free_if_done(s);
	}
}

void wn_sb_data_gone(struct wn_stream *s)
{
	if (!s->ended)
		return;
	budget_forget(s);
	free_if_done(s);
}

size_t wn_sb_session_buffered(const struct wn_tunnel *t)
{
	return t ? t->budget.used : 0;
}

size_t wn_sb_total_buffered(const struct wn_stream_env *env)
{
	return env->total.used;
}

/* ---- streams per client key -------------------------------------------- */

/* The count of s's client key, or NULL when its streams are not capped. */
static uint32_t *key_count(const struct wn_stream *s)
{
	const struct wn_stream_env *env = s->env;
	uint32_t slot = s->tunnel ? s->tunnel->key_slot : 0;

	if (!env->key_streams || env->key_cap == 0 || slot == 0 ||
	    slot > env->nkeys)
		return NULL;
	return &env->key_streams[slot - 1];
}

/* Counts an accepted stream against its key. Returns 0, or -1 when the
 * key already holds its cap (nothing counted). */
static int key_take(struct wn_stream *s)
{
	uint32_t *n = key_count(s);

	if (!n)
		return 0;
	if (*n >= s->env->key_cap)
		return -1;
	(*n)++;
	s->key_counted = 1;
	return 0;
}

static void key_put(struct wn_stream *s)
{
	uint32_t *n = key_count(s);

	if (s->key_counted && n && *n > 0)
		(*n)--;
	s->key_counted = 0;
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
	/* A stream whose data its engine still holds stays counted, and is
	 * freed once that is through (wn_sb_sync, wn_sb_session_gone). */
	free_if_done(s);
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
	key_put(s);
	s->env->tp->detach(s);
	budget_end(s);
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
	size_t room = len > 0 ? allowance(s) : SIZE_MAX;
	if (room == 0) {
		s->want_writable = 1;
		return 0;
	}
	ssize_t n = s->env->tp->write(s, data, len < room ? len : room);
	if (n > 0)
		count(s, (size_t)n);
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
	size_t room = allowance(s);
	if (room == 0) {
		s->want_writable = 1;
		return 0;
	}
	ssize_t n = s->env->tp->reserve(s, ptr);
	if (n > 0 && (size_t)n > room)
		n = (ssize_t)room;
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
	int rc = s->env->tp->commit(s, n);
	if (rc == 0 && n > 0)
		count(s, n);
	return rc;
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
	wn_list_init(&env->total.wait);
	wn_list_init(&env->total.busy);
}

void wn_sb_env_budget(struct wn_stream_env *env, size_t session_limit,
                      size_t total_limit)
{
	env->session_limit = session_limit;
	env->total_limit = total_limit;
}

void wn_sb_env_keys(struct wn_stream_env *env, uint32_t *counts, size_t n,
                    uint32_t cap)
{
	env->key_streams = counts;
	env->nkeys = n;
	env->key_cap = cap;
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

/* The engine's time, for rate limits. */
static uint64_t now_ms(const struct wn_stream *s)
{
	return s->env->tp->now_ms ? s->env->tp->now_ms(s)
	                          : wn_loop_now_ms(s->env->loop);
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
	if (key_take(s) != 0) {
		WN_LOG_RL(s->env->log, &s->env->rl, now_ms(s), WN_LOG_WARN,
		          "sock",
		          "stream %llu from %s refused: its key holds %u "
		          "streams (streams-per-key)",
		          (unsigned long long)s->id, s->tunnel->peer_id,
		          s->env->key_cap);
		do_reset(s, WN_STREAM_LIMIT);
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
	/* The engine dropped our queued data: the budget gets it back. */
	budget_forget(s);
	wake_budget(s->env, s->tunnel);
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
