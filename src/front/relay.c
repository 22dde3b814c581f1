/* The relay between a libuv stream socket and a tunnel stream. See relay.h
 * for the data paths and lifetimes; this file adds the state machine.
 *
 * States (one enum, changed only by set_state, which checks the transition
 * against the table below and logs it at trace level):
 *
 *   NEW          socket initialised (maybe accepted), no stream yet
 *   PENDING      server side: stream adopted, socket not connected yet;
 *                stream data queues (and its EOF is remembered)
 *   CONNECTING   server side: connect in flight (one address at a time)
 *   OPEN         relaying both ways
 *   UP_CLOSED    socket sent EOF, stream FIN sent; stream -> socket open
 *   DOWN_CLOSED  stream sent EOF; queued data drains, then the socket is
 *                shut down; socket -> stream open
 *   BOTH_CLOSED  both EOFs seen; waiting for the socket shutdown to finish
 *   CLOSED       finished: stream released, socket (and timer) closing;
 *                the last handle's close callback frees the relay
 *
 *   NEW -> PENDING -> CONNECTING -> OPEN          (server)
 *   NEW -> OPEN                                   (client)
 *   OPEN -> UP_CLOSED | DOWN_CLOSED -> BOTH_CLOSED -> CLOSED
 *   any state but CLOSED -> CLOSED                (errors, resets, close)
 *
 * Everything that ends the relay goes through finish(), which is idempotent
 * and never frees: after it, callbacks that libuv still delivers (cancelled
 * writes, shutdowns) see CLOSED and return.
 *
 * The socket itself (accepting, connecting across addresses, closing with a
 * reset, handshake reads and writes) is src/io/sock.h's; this file owns what
 * passes between socket and stream. */
#include "front/relay.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bufq.h"
#include "util/container.h"
#include "util/err.h"

#define LOG_COMP "conn"
#define WRITE_IOV_MAX 16

enum relay_state {
	RS_NEW,
	RS_PENDING,
	RS_CONNECTING,
	RS_OPEN,
	RS_UP_CLOSED,
	RS_DOWN_CLOSED,
	RS_BOTH_CLOSED,
	RS_CLOSED,
};

static const char *const state_names[] = {
    [RS_NEW] = "NEW",
    [RS_PENDING] = "PENDING",
    [RS_CONNECTING] = "CONNECTING",
    [RS_OPEN] = "OPEN",
    [RS_UP_CLOSED] = "UP_CLOSED",
    [RS_DOWN_CLOSED] = "DOWN_CLOSED",
    [RS_BOTH_CLOSED] = "BOTH_CLOSED",
    [RS_CLOSED] = "CLOSED",
};

#define TO(s) (1u << (s))

/* Allowed transitions: allowed[from] has bit `to` set. */
static const unsigned allowed[] = {
    [RS_NEW] = TO(RS_PENDING) | TO(RS_OPEN) | TO(RS_CLOSED),
    [RS_PENDING] = TO(RS_CONNECTING) | TO(RS_CLOSED),
    [RS_CONNECTING] = TO(RS_OPEN) | TO(RS_CLOSED),
    [RS_OPEN] = TO(RS_UP_CLOSED) | TO(RS_DOWN_CLOSED) | TO(RS_CLOSED),
    [RS_UP_CLOSED] = TO(RS_BOTH_CLOSED) | TO(RS_CLOSED),
    [RS_DOWN_CLOSED] = TO(RS_BOTH_CLOSED) | TO(RS_CLOSED),
    [RS_BOTH_CLOSED] = TO(RS_CLOSED),
    [RS_CLOSED] = 0,
};

struct wn_relay {
	enum relay_state state;
	enum wn_relay_side side;
	enum wn_relay_sock kind;
	struct wn_loop *loop;
	struct wn_log *log;
	struct wn_relay_set *set; /* NULL once finished */
	struct wn_relay *prev, *next;
	wn_relay_finish_fn on_finish;
	void *ctx;

	/* The stream while the relay may call it: NULL before it has one,
	 * after it released it and after the engine's on_closed. */
	struct wn_stream *stream;
	struct wn_stream_handler h;

	struct wn_sock sock; /* its handle's data is the relay */
	uv_write_t wreq;
	uv_shutdown_t sreq;
	struct wn_timer timer;
	int handles;     /* initialised handles whose close cb is pending */
	bool timer_live; /* timer initialised and not closing */
	bool up_blocked; /* reading stopped: the stream's buffer was full */
	bool down_eof;   /* the stream's EOF arrived */
	bool shut_sent, shut_done;
	bool logged_open;
	bool confirm; /* write the status byte once connected (server) */

	/* A handshake read in progress (client, before a stream). */
	wn_relay_hs_fn hs_cb;
	void *hs_ctx;

	/* stream -> socket: bytes not yet taken by the socket. The uv_write
	 * in flight points into its chunks; that is safe because appending
	 * never moves queued data and only on_write consumes. */
	struct wn_bufq outq;
	size_t inflight; /* bytes of the uv_write in flight, 0 if none */
	size_t out_max;
	uint64_t up_bytes, down_bytes;
	uint32_t connect_timeout_ms;

	char id[64];
	char desc[256];
};

static void finish(struct wn_relay *r, int err, const char *why);

static bool set_state(struct wn_relay *r, enum relay_state to, const char *why)
{
	if (!(allowed[r->state] & TO(to))) {
		WN_LOG(r->log, WN_LOG_ERROR, LOG_COMP,
		       "%s: bug: no transition %s -> %s (%s)", r->id,
		       state_names[r->state], state_names[to], why);
		assert(!"relay: invalid state transition");
		return false;
	}
	WN_LOG(r->log, WN_LOG_TRACE, LOG_COMP, "%s: %s -> %s (%s)", r->id,
	       state_names[r->state], state_names[to], why);
	r->state = to;
	return true;
}

/* Transitions that cannot fail in a correct relay; a bug ends it. */
static bool move(struct wn_relay *r, enum relay_state to, const char *why)
{
	if (set_state(r, to, why))
		return true;
	finish(r, WN_STREAM_INTERNAL, "internal state error");
	return false;
}

int wn_relay_stream_err(enum wn_relay_side side, bool connecting, int werr)
{
	if (werr == WN_ENOMEM)
		return WN_STREAM_INTERNAL;
	/* The local application's socket failing means, to the peer, that
	 * the application went away. */
	if (side == WN_RELAY_CLIENT)
		return WN_STREAM_ABORTED;
	if (!connecting)
		return WN_STREAM_TARGET_RESET;
	switch (werr) {
	case WN_ECONNREFUSED:
	case WN_ECONNRESET:
	case WN_EPERM: /* a unix socket we may not connect to */
		return WN_STREAM_REFUSED;
	case WN_ETIMEDOUT:
		return WN_STREAM_TIMEOUT;
	default: /* WN_EUNREACH, WN_ENOENT (no such unix socket), ... */
		return WN_STREAM_UNREACHABLE;
	}
}

/* ---- freeing ---------------------------------------------------------- */

static void maybe_free(struct wn_relay *r)
{
	if (r->state != RS_CLOSED || r->handles > 0)
		return;
	wn_bufq_free(&r->outq);
	free(r);
}

static void on_sock_closed(void *ctx)
{
	struct wn_relay *r = ctx;

	r->handles--;
	maybe_free(r);
}

static void on_timer_closed(struct wn_timer *t)
{
	struct wn_relay *r = wn_container_of(t, struct wn_relay, timer);

	r->handles--;
	maybe_free(r);
}

/* The one way out. err is the reason (WN_STREAM_OK: both directions ended
 * cleanly); a stream still held is reset with it (unless OK) and released,
 * so the engine calls nothing of ours afterwards. Never frees. */
static void finish(struct wn_relay *r, int err, const char *why)
{
	struct wn_relay_set *set = r->set;
	struct wn_stream *s = r->stream;
	wn_relay_finish_fn cb = r->on_finish;
	char reason[256];

	if (r->state == RS_CLOSED)
		return;
	/* Every state but CLOSED may end, so this always succeeds. */
	set_state(r, RS_CLOSED, why);
	r->stream = NULL;
	if (s) {
		if (err != WN_STREAM_OK)
			wn_stream_reset(s, err);
		wn_stream_release(s);
	}
	if (r->timer_live) {
		r->timer_live = false;
		wn_timer_close(&r->timer, on_timer_closed);
	}
	wn_sock_close(&r->sock, err != WN_STREAM_OK);

	set->live--;
	if (r->prev)
		r->prev->next = r->next;
	else
		set->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	set->totals.closed++;
	if (err >= 0 && (size_t)err < sizeof(set->totals.errs) /
	                                  sizeof(set->totals.errs[0]))
		set->totals.errs[err]++;
	if (r->logged_open && wn_log_enabled(r->log, WN_LOG_INFO)) {
		snprintf(reason, sizeof(reason), "%s (up %llu down %llu)", why,
		         (unsigned long long)r->up_bytes,
		         (unsigned long long)r->down_bytes);
		wn_log_event(r->log, WN_LOG_INFO, LOG_COMP, '-', r->id,
		             set->live, reason);
	}
	r->set = NULL;
	r->on_finish = NULL;
	if (cb)
		cb(r->ctx, r, err);
}

static void fail_sock(struct wn_relay *r, int uverr, const char *what)
{
	int werr = wn_err_from_uv(uverr);
	int err = wn_relay_stream_err(r->side, false, werr);
	char why[128];

	r->set->totals.socket_errors++;
	snprintf(why, sizeof(why), "socket %s: %s", what, wn_strerror(werr));
	finish(r, err, why);
}

/* ---- socket -> stream ------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct wn_relay *r = h->data;
	uint8_t *p = NULL;
	ssize_t n = r->stream ? wn_stream_reserve(r->stream, &p) : 0;

	/* A zero-length buffer makes libuv report UV_ENOBUFS: the stream is
	 * full (or closing), so reading stops until on_writable. */
	if (n <= 0) {
		buf->base = NULL;
		buf->len = 0;
		return;
	}
	buf->base = (char *)p;
	buf->len = (size_t)n;
}

static void stop_reading(struct wn_relay *r)
{
	wn_sock_read_stop(&r->sock);
}

static void check_done(struct wn_relay *r)
{
	if (r->state == RS_BOTH_CLOSED && r->shut_done)
		finish(r, WN_STREAM_OK, "closed");
}

static void on_sock_eof(struct wn_relay *r)
{
	stop_reading(r);
	/* An error here means the stream is being reset; on_closed
	 * follows and ends the relay. */
	(void)wn_stream_shutdown(r->stream);
	if (r->state == RS_OPEN) {
		move(r, RS_UP_CLOSED, "socket eof");
	} else if (move(r, RS_BOTH_CLOSED, "socket eof")) {
		check_done(r);
	}
}

static void on_read(uv_stream_t *sk, ssize_t nread, const uv_buf_t *buf)
{
	struct wn_relay *r = sk->data;
	int rc;

	if (r->state == RS_CLOSED)
		return;
	if (nread > 0) {
		rc = wn_stream_commit(r->stream, (size_t)nread);
		if (rc < 0) {
			finish(r, WN_STREAM_INTERNAL, "stream commit failed");
			return;
		}
		r->up_bytes += (uint64_t)nread;
		r->set->totals.up_bytes += (uint64_t)nread;
		return;
	}
	if (nread == 0)
		return;
	if (nread == UV_ENOBUFS) {
		stop_reading(r);
		r->up_blocked = true;
		return;
	}
	if (nread == UV_EOF) {
		/* libuv reports EOF without a read when poll says HUP after
		 * a partial read, which is also what a reset after data looks
		 * like: a reset is never taken for a clean half-close. */
		rc = wn_sock_pending_error(&r->sock);
		if (rc < 0)
			fail_sock(r, rc, "read");
		else
			on_sock_eof(r);
		return;
	}
	fail_sock(r, (int)nread, "read");
}

static void start_reading(struct wn_relay *r)
{
	int rc;

	if (r->sock.reading ||
	    (r->state != RS_OPEN && r->state != RS_DOWN_CLOSED))
		return;
	rc = wn_sock_read_start(&r->sock, on_alloc, on_read);
	if (rc < 0) {
		fail_sock(r, rc, "read");
		return;
	}
	r->up_blocked = false;
}

static void on_writable(void *ctx, struct wn_stream *s)
{
	struct wn_relay *r = ctx;

	if (r->up_blocked)
		start_reading(r);
}

/* ---- stream -> socket ------------------------------------------------- */

/* n bytes left for the socket: only now may the peer send more. */
static void delivered(struct wn_relay *r, size_t n)
{
	r->down_bytes += n;
	r->set->totals.down_bytes += n;
	if (r->stream)
		wn_stream_consumed(r->stream, n);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct wn_relay *r = wn_container_of(req, struct wn_relay, sreq);

	if (r->state == RS_CLOSED)
		return;
	if (status < 0) {
		fail_sock(r, status, "shutdown");
		return;
	}
	r->shut_done = true;
	check_done(r);
}

static void on_write(uv_write_t *req, int status);

/* Write the queue (one uv_write at a time), then the shutdown the stream's
 * EOF asked for. */
static void kick_write(struct wn_relay *r)
{
	struct iovec iov[WRITE_IOV_MAX];
	uv_buf_t bufs[WRITE_IOV_MAX];
	size_t sum = 0;
	int n, i, rc;

	if (!r->sock.connected || r->inflight || r->state == RS_CLOSED)
		return;
	if (wn_bufq_len(&r->outq) == 0) {
		if (!r->down_eof || r->shut_sent)
			return;
		rc = uv_shutdown(&r->sreq, wn_sock_stream(&r->sock),
		                 on_shutdown);
		if (rc < 0) {
			fail_sock(r, rc, "shutdown");
			return;
		}
		r->shut_sent = true;
		return;
	}
	n = wn_bufq_peek_iov(&r->outq, iov, WRITE_IOV_MAX);
	for (i = 0; i < n; i++) {
		bufs[i] =
		    uv_buf_init(iov[i].iov_base, (unsigned)iov[i].iov_len);
		sum += iov[i].iov_len;
	}
	rc = uv_write(&r->wreq, wn_sock_stream(&r->sock), bufs, (unsigned)n,
	              on_write);
	if (rc < 0) {
		fail_sock(r, rc, "write");
		return;
	}
	r->inflight = sum;
}

static void on_write(uv_write_t *req, int status)
{
	struct wn_relay *r = wn_container_of(req, struct wn_relay, wreq);
	size_t n = r->inflight;

	r->inflight = 0;
	if (r->state == RS_CLOSED)
		return;
	if (status < 0) {
		fail_sock(r, status, "write");
		return;
	}
	wn_bufq_consume(&r->outq, n);
	/* Idle relays keep no chunks: memory per connection stays small. */
	if (wn_bufq_len(&r->outq) == 0)
		wn_bufq_shrink(&r->outq);
	delivered(r, n);
	kick_write(r);
}

static void on_data(void *ctx, struct wn_stream *s, const uint8_t *data,
                    size_t len)
{
	struct wn_relay *r = ctx;
	uv_buf_t b;
	ssize_t n;
	int rc;

	switch (r->state) {
	case RS_PENDING:
	case RS_CONNECTING:
	case RS_OPEN:
	case RS_UP_CLOSED:
		break;
	case RS_CLOSED:
		return;
	default:
		finish(r, WN_STREAM_INTERNAL, "stream data after its eof");
		return;
	}
	if (len == 0)
		return;
	/* Fast path: nothing queued, so the socket may take the data
	 * directly without a copy into the queue. */
	if (r->sock.connected && !r->inflight && wn_bufq_len(&r->outq) == 0) {
		b = uv_buf_init((char *)data, (unsigned)len);
		rc = uv_try_write(wn_sock_stream(&r->sock), &b, 1);
		if (rc < 0 && rc != UV_EAGAIN) {
			fail_sock(r, rc, "write");
			return;
		}
		if (rc > 0) {
			delivered(r, (size_t)rc);
			data += rc;
			len -= (size_t)rc;
		}
		if (len == 0 || r->state == RS_CLOSED)
			return;
	}
	n = wn_bufq_write(&r->outq, data, len);
	if (n < 0 || (size_t)n < len) {
		WN_LOG(r->log, WN_LOG_ERROR, LOG_COMP,
		       "%s: %s (%zu queued, limit reached or no memory)", r->id,
		       n == WN_ENOMEM ? "out of memory"
		                      : "stream delivered beyond its window",
		       wn_bufq_len(&r->outq));
		finish(r, WN_STREAM_INTERNAL, "queue overrun");
		return;
	}
	if (wn_bufq_len(&r->outq) > r->out_max) {
		r->out_max = wn_bufq_len(&r->outq);
		if (r->out_max > r->set->totals.out_max)
			r->set->totals.out_max = r->out_max;
	}
	kick_write(r);
}

static void on_eof(void *ctx, struct wn_stream *s)
{
	struct wn_relay *r = ctx;

	switch (r->state) {
	case RS_PENDING:
	case RS_CONNECTING:
		/* Remembered; acted on once the socket is connected. */
		r->down_eof = true;
		return;
	case RS_OPEN:
		r->down_eof = true;
		if (!move(r, RS_DOWN_CLOSED, "stream eof"))
			return;
		break;
	case RS_UP_CLOSED:
		r->down_eof = true;
		if (!move(r, RS_BOTH_CLOSED, "stream eof"))
			return;
		break;
	case RS_CLOSED:
		return;
	default:
		finish(r, WN_STREAM_INTERNAL, "stream eof twice");
		return;
	}
	kick_write(r);
}

static void on_closed(void *ctx, struct wn_stream *s, int err)
{
	struct wn_relay *r = ctx;

	/* The stream is gone: nothing may call it any more. */
	r->stream = NULL;
	if (r->state == RS_CLOSED)
		return;
	if (err == WN_STREAM_OK) {
		/* The engine may finish a stream cleanly while our socket is
		 * still taking its last bytes: let the shutdown complete. */
		if (r->state == RS_BOTH_CLOSED)
			return;
		finish(r, WN_STREAM_INTERNAL,
		       "stream closed with a direction "
		       "still open");
		return;
	}
	finish(r, err, wn_stream_err_str(err));
}

/* ---- connecting (server side) ----------------------------------------- */

static void on_connected(struct wn_relay *r)
{
	if (r->timer_live)
		wn_timer_stop(&r->timer);
	if (!move(r, RS_OPEN, "connected"))
		return;
	if (r->confirm && r->stream) {
		/* The stream's send buffer is still empty here: the status
		 * byte (0, connected) is the first thing the client gets. */
		static const uint8_t status = 0;

		if (wn_stream_write(r->stream, &status, 1) != 1) {
			finish(r, WN_STREAM_INTERNAL, "cannot confirm");
			return;
		}
	}
	start_reading(r);
	if (r->state == RS_OPEN && r->down_eof &&
	    !move(r, RS_DOWN_CLOSED, "stream eof before connect"))
		return;
	kick_write(r);
}

/* The socket tried every address: status is 0 or the most telling
 * failure. */
static void on_connect(void *ctx, int status)
{
	struct wn_relay *r = ctx;
	char why[128];

	if (r->state == RS_CLOSED)
		return;
	if (status == 0) {
		on_connected(r);
		return;
	}
	r->set->totals.socket_errors++;
	snprintf(why, sizeof(why), "connect: %s", wn_strerror(status));
	finish(r, wn_relay_stream_err(r->side, true, status), why);
}

static void on_timer(struct wn_timer *t)
{
	struct wn_relay *r = wn_container_of(t, struct wn_relay, timer);

	if (r->state == RS_PENDING || r->state == RS_CONNECTING)
		finish(r, WN_STREAM_TIMEOUT, "connect timed out");
}

/* ---- public ----------------------------------------------------------- */

void wn_relay_set_init(struct wn_relay_set *set)
{
	memset(set, 0, sizeof(*set));
}

void wn_relay_set_close_all(struct wn_relay_set *set, int err)
{
	/* Each close unlinks the head (and an on_finish may close others). */
	while (set->head)
		wn_relay_close(set->head, err);
}

int wn_relay_new(const struct wn_relay_opts *o, struct wn_relay **out)
{
	struct wn_relay *r;
	int rc;

	if (!o->loop || !o->set)
		return WN_EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return WN_ENOMEM;
	rc = wn_bufq_init(&r->outq, WN_BUFQ_CHUNK_DEFAULT,
	                  o->out_limit ? o->out_limit
	                               : WN_RELAY_OUT_LIMIT_DEFAULT);
	if (rc < 0)
		goto fail;
	rc = wn_sock_init(&r->sock, o->loop,
	                  o->sock == WN_RELAY_TCP ? WN_SOCK_TCP : WN_SOCK_PIPE,
	                  o->log, r->id, on_sock_closed, r);
	if (rc < 0)
		goto fail;
	r->handles = 1;
	r->state = RS_NEW;
	r->side = o->side;
	r->kind = o->sock;
	r->loop = o->loop;
	r->log = o->log;
	r->set = o->set;
	r->on_finish = o->on_finish;
	r->ctx = o->ctx;
	r->connect_timeout_ms = o->connect_timeout_ms;
	r->confirm = o->confirm;
	r->h = (struct wn_stream_handler){r, on_data, on_eof, on_writable,
	                                  on_closed};
	snprintf(r->id, sizeof(r->id), "%s", o->label ? o->label : "relay");
	snprintf(r->desc, sizeof(r->desc), "%s", o->desc ? o->desc : "");

	r->next = o->set->head;
	if (r->next)
		r->next->prev = r;
	o->set->head = r;
	o->set->live++;
	*out = r;
	return 0;
fail:
	free(r);
	return rc;
}

int wn_relay_accept(struct wn_relay *r, uv_stream_t *listener)
{
	if (r->state != RS_NEW)
		return WN_EINVAL;
	return wn_sock_accept(&r->sock, listener);
}

/* The stream is known: name the relay after it and log the '+' line. */
static void attached(struct wn_relay *r, struct wn_stream *s)
{
	size_t n = strlen(r->id);

	r->stream = s;
	snprintf(r->id + n, sizeof(r->id) - n, "/%llu",
	         (unsigned long long)wn_stream_id(s));
	r->set->totals.opened++;
	r->logged_open = true;
	wn_log_event(r->log, WN_LOG_INFO, LOG_COMP, '+', r->id, r->set->live,
	             r->desc);
}

/* Ends a handshake read the owner left pending: the relay reads now. */
static void hs_stop(struct wn_relay *r)
{
	if (!r->hs_cb)
		return;
	r->hs_cb = NULL;
	wn_sock_read_stop(&r->sock);
}

static void describe(struct wn_relay *r, const struct wn_endpoint *target)
{
	char peer[INET6_ADDRSTRLEN + 16], tgt[WN_UNIX_PATH_MAX + 32];

	if (r->desc[0])
		return;
	wn_sock_peer_text(&r->sock, peer, sizeof(peer));
	if (target)
		wn_endpoint_format(target, tgt, sizeof(tgt));
	else
		snprintf(tgt, sizeof(tgt), "default target");
	snprintf(r->desc, sizeof(r->desc), "%s -> %s", peer, tgt);
}

int wn_relay_open(struct wn_relay *r, struct wn_tunnel *t,
                  const struct wn_endpoint *target)
{
	struct wn_stream *s;

	if (r->state != RS_NEW || !r->sock.connected)
		return WN_EINVAL;
	s = wn_tunnel_open_stream(t, target, &r->h);
	if (!s) {
		r->set->totals.open_failures++;
		return WN_EAGAIN;
	}
	hs_stop(r);
	describe(r, target);
	attached(r, s);
	if (!move(r, RS_OPEN, "stream opened"))
		return 0;
	start_reading(r);
	return 0;
}

int wn_relay_attach(struct wn_relay *r, struct wn_stream *s,
                    const struct wn_endpoint *target, const uint8_t *pending,
                    size_t len)
{
	if (r->state != RS_NEW || !r->sock.connected)
		return WN_EINVAL;
	hs_stop(r);
	wn_stream_set_handler(s, &r->h);
	describe(r, target);
	attached(r, s);
	if (!move(r, RS_OPEN, "stream attached"))
		return 0;
	start_reading(r);
	if (len > 0 && r->state != RS_CLOSED)
		on_data(r, s, pending, len);
	return 0;
}

/* The socket's handshake read finished: hand it to the owner. */
static void hs_done(void *ctx, ssize_t n)
{
	struct wn_relay *r = ctx;
	wn_relay_hs_fn cb = r->hs_cb;

	r->hs_cb = NULL;
	if (r->state == RS_CLOSED || !cb)
		return;
	cb(r->hs_ctx, r, n);
}

int wn_relay_hs_read(struct wn_relay *r, uint8_t *buf, size_t len,
                     wn_relay_hs_fn cb, void *ctx)
{
	int rc;

	if (r->state != RS_NEW || !r->sock.connected || r->hs_cb || !len || !cb)
		return WN_EINVAL;
	r->hs_cb = cb;
	r->hs_ctx = ctx;
	rc = wn_sock_read_some(&r->sock, buf, len, hs_done);
	if (rc < 0)
		r->hs_cb = NULL;
	return rc;
}

int wn_relay_hs_write(struct wn_relay *r, const uint8_t *data, size_t len)
{
	if (r->state == RS_CLOSED || !r->sock.connected || r->inflight ||
	    wn_bufq_len(&r->outq) > 0 || r->down_bytes > 0)
		return WN_EINVAL;
	return wn_sock_write_now(&r->sock, data, len);
}

void wn_relay_set_finish(struct wn_relay *r, wn_relay_finish_fn fn, void *ctx)
{
	r->on_finish = fn;
	r->ctx = ctx;
}

void wn_relay_end(struct wn_relay *r)
{
	if (r->state == RS_CLOSED)
		return;
	if (r->stream) {
		wn_relay_close(r, WN_STREAM_ABORTED);
		return;
	}
	finish(r, WN_STREAM_OK, "handshake ended");
}

void wn_relay_adopt(struct wn_relay *r, struct wn_stream *s)
{
	/* The handler is set before anything else so the engine, which
	 * holds the stream's data until a handler exists, delivers it only
	 * to us, in order. */
	wn_stream_set_handler(s, &r->h);
	attached(r, s);
	if (!move(r, RS_PENDING, "stream adopted"))
		return;
	if (!r->connect_timeout_ms)
		return;
	if (wn_timer_init(r->loop, &r->timer, on_timer) != 0) {
		finish(r, WN_STREAM_INTERNAL, "no timer");
		return;
	}
	r->timer_live = true;
	r->handles++;
	wn_timer_start(&r->timer, r->connect_timeout_ms, 0);
}

int wn_relay_connect(struct wn_relay *r, const struct sockaddr_storage *addrs,
                     size_t n, const char *path)
{
	bool usable =
	    r->kind == WN_RELAY_TCP
	        ? addrs && n > 0
	        : path && path[0] && strlen(path) < sizeof(r->sock.path);

	/* Checked before the move, so a refusal leaves the relay unchanged;
	 * wn_sock_connect then accepts what it is given. */
	if (r->state != RS_PENDING || !usable)
		return WN_EINVAL;
	if (!move(r, RS_CONNECTING, "connecting"))
		return 0;
	if (wn_sock_connect(&r->sock, addrs, n, path, on_connect) < 0)
		finish(r, WN_STREAM_INTERNAL, "cannot connect");
	return 0;
}

void wn_relay_close(struct wn_relay *r, int err)
{
	char why[96];

	if (r->state == RS_CLOSED)
		return;
	if (err == WN_STREAM_OK)
		err = WN_STREAM_INTERNAL;
	snprintf(why, sizeof(why), "closed here, peer told: %s",
	         wn_stream_err_str(err));
	finish(r, err, why);
}

int wn_relay_sock_addrs(struct wn_relay *r, struct sockaddr_storage *local,
                        struct sockaddr_storage *peer)
{
	return wn_sock_addrs(&r->sock, local, peer);
}

void wn_relay_get_stats(const struct wn_relay *r, struct wn_relay_stats *st)
{
	st->up_bytes = r->up_bytes;
	st->down_bytes = r->down_bytes;
	st->out_queued = wn_bufq_len(&r->outq);
	st->out_max = r->out_max;
	st->state = state_names[r->state];
}
