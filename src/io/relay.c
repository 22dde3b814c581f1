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
 * writes, shutdowns, connects) see CLOSED and return. */
#include "io/relay.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "engine/engine.h"
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

	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} sock;
	uv_connect_t creq;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	struct wn_timer timer;
	int handles;     /* initialised handles whose close cb is pending */
	bool sock_live;  /* sock initialised and not closing */
	bool timer_live; /* timer initialised and not closing */
	bool connected;  /* accepted, or connect succeeded */
	bool reading;
	bool up_blocked; /* reading stopped: the stream's buffer was full */
	bool down_eof;   /* the stream's EOF arrived */
	bool shut_sent, shut_done;
	bool logged_open;
	bool confirm; /* write the status byte once connected (server) */

	/* A handshake read in progress (client, before a stream). */
	uint8_t *hs_buf;
	size_t hs_len;
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

	struct sockaddr_storage addrs[WN_RELAY_MAX_ADDRS];
	size_t naddrs, next_addr;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int connect_err; /* most telling WN_E* connect failure so far */

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

static void connect_next(struct wn_relay *r);

static void on_sock_closed(uv_handle_t *h)
{
	struct wn_relay *r = h->data;

	r->handles--;
	/* Closed to retry the connect on a fresh socket (a failed connect
	 * leaves the old one unusable, and the next address may be of
	 * another family). */
	if (r->state == RS_CONNECTING) {
		/* Cannot fail: without a family libuv creates no socket
		 * until connect. */
		uv_tcp_init(wn_loop_uv(r->loop), &r->sock.tcp);
		r->sock.handle.data = r;
		r->sock_live = true;
		r->handles++;
		connect_next(r);
		return;
	}
	maybe_free(r);
}

static void on_timer_closed(struct wn_timer *t)
{
	struct wn_relay *r = wn_container_of(t, struct wn_relay, timer);

	r->handles--;
	maybe_free(r);
}

/* Close the socket; with rst, make a TCP peer see a reset, not an EOF. */
static void close_sock(struct wn_relay *r, bool rst)
{
	uv_os_fd_t fd;
	struct linger lg = {1, 0};

	if (!r->sock_live)
		return;
	r->sock_live = false;
	if (rst && r->kind == WN_RELAY_TCP && r->connected) {
		if (uv_tcp_close_reset(&r->sock.tcp, on_sock_closed) == 0)
			return;
		/* libuv refuses while a shutdown is pending; a reset is still
		 * what the peer must see. */
		if (uv_fileno(&r->sock.handle, &fd) == 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
			                 sizeof(lg));
	}
	uv_close(&r->sock.handle, on_sock_closed);
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
	close_sock(r, err != WN_STREAM_OK);

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
	if (r->reading) {
		uv_read_stop(&r->sock.stream);
		r->reading = false;
	}
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

/* libuv reports EOF without a read when poll says HUP after a partial
 * read, which is also what a reset after data looks like; the socket's
 * pending error tells them apart, so a reset is never taken for a clean
 * half-close. Returns a negative libuv code, or 0. */
static int pending_error(struct wn_relay *r)
{
	uv_os_fd_t fd;
	int err = 0;
	socklen_t len = sizeof(err);

	if (r->kind != WN_RELAY_TCP || uv_fileno(&r->sock.handle, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return 0;
	return err ? -err : 0;
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
		rc = pending_error(r);
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

	if (r->reading || (r->state != RS_OPEN && r->state != RS_DOWN_CLOSED))
		return;
	rc = uv_read_start(&r->sock.stream, on_alloc, on_read);
	if (rc < 0) {
		fail_sock(r, rc, "read");
		return;
	}
	r->reading = true;
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

	if (!r->connected || r->inflight || r->state == RS_CLOSED)
		return;
	if (wn_bufq_len(&r->outq) == 0) {
		if (!r->down_eof || r->shut_sent)
			return;
		rc = uv_shutdown(&r->sreq, &r->sock.stream, on_shutdown);
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
	rc = uv_write(&r->wreq, &r->sock.stream, bufs, (unsigned)n, on_write);
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
	if (r->connected && !r->inflight && wn_bufq_len(&r->outq) == 0) {
		b = uv_buf_init((char *)data, (unsigned)len);
		rc = uv_try_write(&r->sock.stream, &b, 1);
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
	r->connected = true;
	if (r->timer_live)
		wn_timer_stop(&r->timer);
	if (r->kind == WN_RELAY_TCP)
		uv_tcp_nodelay(&r->sock.tcp, 1);
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

static void connect_failed(struct wn_relay *r, int uverr)
{
	int werr = wn_err_from_uv(uverr);
	char why[128];

	/* A refusal says the most (something is there and says no), so it
	 * wins over failures of other addresses of the same target. */
	if (r->connect_err != WN_ECONNREFUSED)
		r->connect_err = werr;
	WN_LOG(r->log, WN_LOG_DEBUG, LOG_COMP, "%s: connect failed: %s", r->id,
	       wn_strerror(werr));
	if (r->kind == WN_RELAY_TCP && r->next_addr < r->naddrs) {
		r->sock_live = false;
		uv_close(&r->sock.handle, on_sock_closed);
		return;
	}
	r->set->totals.socket_errors++;
	snprintf(why, sizeof(why), "connect: %s", wn_strerror(r->connect_err));
	finish(r, wn_relay_stream_err(r->side, true, r->connect_err), why);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct wn_relay *r = wn_container_of(req, struct wn_relay, creq);

	if (r->state == RS_CLOSED)
		return;
	if (status < 0) {
		connect_failed(r, status);
		return;
	}
	on_connected(r);
}

static void connect_next(struct wn_relay *r)
{
	const struct sockaddr *sa;
	int rc;

	if (r->kind == WN_RELAY_PIPE) {
		uv_pipe_connect(&r->creq, &r->sock.pipe, r->path, on_connect);
		return;
	}
	sa = (const struct sockaddr *)&r->addrs[r->next_addr++];
	rc = uv_tcp_connect(&r->creq, &r->sock.tcp, sa, on_connect);
	if (rc < 0)
		connect_failed(r, rc);
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
	if (o->sock == WN_RELAY_TCP)
		rc = uv_tcp_init(wn_loop_uv(o->loop), &r->sock.tcp);
	else
		rc = uv_pipe_init(wn_loop_uv(o->loop), &r->sock.pipe, 0);
	if (rc < 0) {
		rc = wn_err_from_uv(rc);
		goto fail;
	}
	r->sock.handle.data = r;
	r->sock_live = true;
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
	r->connect_err = WN_EUNREACH;
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
	int rc;

	if (r->state != RS_NEW || r->connected)
		return WN_EINVAL;
	rc = uv_accept(listener, &r->sock.stream);
	if (rc < 0)
		return wn_err_from_uv(rc);
	r->connected = true;
	if (r->kind == WN_RELAY_TCP)
		uv_tcp_nodelay(&r->sock.tcp, 1);
	return 0;
}

/* "ADDR:PORT" of a peer, "[V6]:PORT", or the socket kind. */
static void peer_text(struct wn_relay *r, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	const void *addr;
	uint16_t port;

	snprintf(buf, cap, "%s", r->kind == WN_RELAY_TCP ? "tcp" : "unix");
	if (r->kind != WN_RELAY_TCP ||
	    uv_tcp_getpeername(&r->sock.tcp, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		addr = &((struct sockaddr_in *)&ss)->sin_addr;
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	} else {
		addr = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	if (!inet_ntop(ss.ss_family, addr, host, sizeof(host)))
		return;
	snprintf(buf, cap, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
	         port);
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
	r->hs_buf = NULL;
	stop_reading(r);
}

static void describe(struct wn_relay *r, const struct wn_endpoint *target)
{
	char peer[INET6_ADDRSTRLEN + 16], tgt[WN_UNIX_PATH_MAX + 32];

	if (r->desc[0])
		return;
	peer_text(r, peer, sizeof(peer));
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

	if (r->state != RS_NEW || !r->connected)
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
	if (r->state != RS_NEW || !r->connected)
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

static void hs_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct wn_relay *r = h->data;

	/* Without a pending read, a zero-length buffer: libuv then reports
	 * UV_ENOBUFS, which hs_on_read ignores. */
	buf->base = (char *)r->hs_buf;
	buf->len = r->hs_buf ? r->hs_len : 0;
}

static void hs_on_read(uv_stream_t *sk, ssize_t nread, const uv_buf_t *buf)
{
	struct wn_relay *r = sk->data;
	wn_relay_hs_fn cb = r->hs_cb;

	if (r->state == RS_CLOSED || !cb || nread == 0 || nread == UV_ENOBUFS)
		return;
	hs_stop(r);
	if (nread > 0)
		cb(r->hs_ctx, r, nread);
	else
		cb(r->hs_ctx, r,
		   nread == UV_EOF ? WN_ECLOSED : wn_err_from_uv((int)nread));
}

int wn_relay_hs_read(struct wn_relay *r, uint8_t *buf, size_t len,
                     wn_relay_hs_fn cb, void *ctx)
{
	int rc;

	if (r->state != RS_NEW || !r->connected || r->hs_cb || !len || !cb)
		return WN_EINVAL;
	r->hs_buf = buf;
	r->hs_len = len;
	r->hs_cb = cb;
	r->hs_ctx = ctx;
	if (r->reading)
		return 0;
	rc = uv_read_start(&r->sock.stream, hs_alloc, hs_on_read);
	if (rc < 0) {
		r->hs_cb = NULL;
		r->hs_buf = NULL;
		return wn_err_from_uv(rc);
	}
	r->reading = true;
	return 0;
}

int wn_relay_hs_write(struct wn_relay *r, const uint8_t *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int rc;

	if (r->state == RS_CLOSED || !r->connected || r->inflight ||
	    wn_bufq_len(&r->outq) > 0 || r->down_bytes > 0)
		return WN_EINVAL;
	rc = uv_try_write(&r->sock.stream, &b, 1);
	if (rc == UV_EAGAIN || (rc >= 0 && (size_t)rc < len))
		return WN_EAGAIN;
	return rc < 0 ? wn_err_from_uv(rc) : 0;
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
	size_t i;

	if (r->state != RS_PENDING)
		return WN_EINVAL;
	if (r->kind == WN_RELAY_TCP) {
		if (!addrs || n == 0)
			return WN_EINVAL;
		if (n > WN_RELAY_MAX_ADDRS)
			n = WN_RELAY_MAX_ADDRS;
		for (i = 0; i < n; i++)
			r->addrs[i] = addrs[i];
		r->naddrs = n;
		r->next_addr = 0;
	} else {
		if (!path || !path[0] || strlen(path) >= sizeof(r->path))
			return WN_EINVAL;
		memcpy(r->path, path, strlen(path) + 1);
	}
	if (!move(r, RS_CONNECTING, "connecting"))
		return 0;
	connect_next(r);
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

void wn_relay_get_stats(const struct wn_relay *r, struct wn_relay_stats *st)
{
	st->up_bytes = r->up_bytes;
	st->down_bytes = r->down_bytes;
	st->out_queued = wn_bufq_len(&r->outq);
	st->out_max = r->out_max;
	st->state = state_names[r->state];
}
