/* warren-cutproxy: a TCP proxy that cuts every connection after a set time.
 *
 * Each accepted connection is relayed to one target. A per-connection timer,
 * started at accept, cuts the connection after --cut-after plus a uniformly
 * drawn --cut-jitter. This is how Turbo Tunnel designs are judged: a session
 * must carry a bulk transfer intact across many such cuts.
 *
 * At the cut the proxy stops relaying and, in rst mode, closes each cut
 * socket with SO_LINGER 0, so its peer gets a RST and whatever was still
 * queued is lost. In fin mode it flushes what it had already read for that
 * peer, sends FIN, then reads and discards until the peer's FIN; a side not
 * finished --fin-grace after the cut is closed anyway (if the peer is still
 * sending, its kernel then sees a reset, as it would from any closing
 * server). A side that --cut-side does not name is left open and silent.
 *
 * The relay is built for loopback gigabit rates with bounded memory. Reads go
 * into fixed-size chunks taken from a free list (no allocation per read in
 * the steady state); each chunk is written to the other side at once with
 * uv_try_write and only queued with uv_write for what the kernel did not
 * take. When QUEUE_HIGH chunks are queued towards one side the proxy stops
 * reading the other side, and resumes at QUEUE_LOW, so each direction holds
 * at most QUEUE_HIGH + 1 chunks.
 *
 * Lifetimes: a conn owns three handles (client socket, target socket, timer).
 * Nothing is freed in a callback of its own handle: a conn is freed in the
 * close callback of the last of its handles. This is a test tool that lives
 * entirely at the I/O boundary, so it reports libuv's own error strings and
 * does not link warren_core. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "options.h"

/* One read's worth of data; also the unit of queued memory. */
#define CHUNK_SIZE (64 * 1024)
/* Chunks queued towards one side before the other side stops being read. */
#define QUEUE_HIGH 16
/* ... and the level at which reading resumes. */
#define QUEUE_LOW 8
/* Free chunks kept for reuse; more are returned to malloc. */
#define POOL_KEEP 64
/* How often --blackhole-file is checked. */
#define FILE_POLL_MS 50
#define LISTEN_BACKLOG 1024

/* Every accepted connection ends in exactly one of refused, connect_failed,
 * cut, closed_by_peer, failed or closed_at_exit, or is still active. */
struct stats {
	uint64_t accepted;
	uint64_t refused;
	uint64_t connect_failed;
	uint64_t cut;
	uint64_t closed_by_peer;
	uint64_t failed;
	uint64_t closed_at_exit;
	uint64_t bytes_c2t; /* bytes written to targets */
	uint64_t bytes_t2c; /* bytes written to clients */
};

struct side;

/* A read buffer; while queued for writing it also carries the write. */
struct chunk {
	uv_write_t req;
	struct chunk *next; /* free list */
	struct side *dst;
	size_t len; /* bytes handed to uv_write */
	char data[CHUNK_SIZE];
};

struct proxy {
	uv_loop_t *loop;
	struct opts o;
	uv_tcp_t listener;
	uv_signal_t sig_term;
	uv_signal_t sig_int;
	uv_signal_t sig_usr1;
	uv_timer_t poll_timer;
	bool signals_used;
	bool poll_timer_used;
	struct chunk *pool;
	unsigned npool;
	struct conn *conns; /* doubly linked, newest first */
	unsigned nconns;    /* conns not yet freed */
	unsigned nactive;   /* conns with a socket not yet closed */
	uint64_t next_id;
	uint64_t rng;
	uint64_t start_ns;
	bool blackholed;
	bool stopping;
	struct stats st;
};

/* A connection's life: CONNECTING -> RELAY -> CUT -> CLOSING, where any state
 * may go straight to CLOSING. In CUT nothing is forwarded any more: cut sides
 * are closing (rst) or finishing their FIN handshake (fin), uncut sides are
 * read and discarded until their peer closes them. */
enum conn_state { CONN_CONNECTING, CONN_RELAY, CONN_CUT, CONN_CLOSING };

static const char *conn_state_name(enum conn_state st)
{
	switch (st) {
	case CONN_CONNECTING:
		return "connecting";
	case CONN_RELAY:
		return "relay";
	case CONN_CUT:
		return "cut";
	case CONN_CLOSING:
		return "closing";
	}
	return "?";
}

struct side {
	uv_tcp_t tcp;
	uv_shutdown_t shutdown_req;
	struct conn *conn;
	struct side *peer;
	const char *name;   /* "client" or "target" */
	unsigned queued;    /* chunks being written to this side */
	uint64_t bytes_out; /* bytes written to this side */
	bool open;          /* initialised and uv_close not yet called */
	bool connected;
	bool reading;   /* uv_read_start in effect */
	bool paused;    /* the peer's write queue is full */
	bool eof;       /* this side sent FIN */
	bool shut;      /* uv_shutdown requested */
	bool shut_done; /* ... and completed */
	bool cut;       /* in CUT: this side is being cut (else left silent) */
};

struct conn {
	struct proxy *px;
	struct conn *prev;
	struct conn *next;
	uint64_t id;
	struct side client;
	struct side target;
	uv_timer_t timer;
	bool timer_open;
	uv_connect_t connect_req;
	enum conn_state state;
	unsigned handles; /* handles whose close callback is still due */
	uint64_t opened_ns;
	char reason[128]; /* why it ended; set once */
};

static void on_side_read(uv_stream_t *stream, ssize_t nread,
                         const uv_buf_t *buf);
static void side_update_reading(struct side *s);

/* ---- logging ---- */

static double elapsed_s(uint64_t since_ns)
{
	return (double)(uv_hrtime() - since_ns) / 1e9;
}

static void plog(const struct proxy *px, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One line to stderr, prefixed with seconds since start; built in one buffer
 * so that it reaches stderr in one write. */
static void plog(const struct proxy *px, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n = snprintf(line, sizeof(line), PROG ": %.3f ",
	                 elapsed_s(px->start_ns));

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	fputs(line, stderr);
}

static void addr_str(const struct sockaddr *sa, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		uv_ip6_name(a, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, len, "[%s]:%u", host, port);
		return;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		uv_ip4_name(a, host, sizeof(host));
		port = ntohs(a->sin_port);
	}
	snprintf(out, len, "%s:%u", host, port);
}

/* ---- chunks ---- */

static struct chunk *chunk_get(struct proxy *px)
{
	struct chunk *ch = px->pool;

	if (ch == NULL)
		return malloc(sizeof(*ch));
	px->pool = ch->next;
	px->npool--;
	return ch;
}

static void chunk_put(struct proxy *px, struct chunk *ch)
{
	if (px->npool >= POOL_KEEP) {
		free(ch);
		return;
	}
	ch->next = px->pool;
	px->pool = ch;
	px->npool++;
}

static struct chunk *chunk_of_buf(const uv_buf_t *buf)
{
	return (struct chunk *)(void *)(buf->base -
	                                offsetof(struct chunk, data));
}

static void pool_drain(struct proxy *px)
{
	while (px->pool != NULL) {
		struct chunk *ch = px->pool;
		px->pool = ch->next;
		free(ch);
	}
	px->npool = 0;
}

/* ---- files ---- */

static bool file_exists(const char *path)
{
	struct stat st;

	return path != NULL && stat(path, &st) == 0;
}

/* Writes text to path through a temporary file and rename, so that readers
 * never see a partial file. Returns 0 or -errno. */
static int write_file_atomic(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;
	int ok;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -errno;
	ok = fputs(text, f) >= 0;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		int err = errno ? errno : EIO;
		unlink(tmp);
		return -err;
	}
	return 0;
}

static int write_stats(struct proxy *px)
{
	const struct stats *s = &px->st;
	char text[1024];
	int r;

	if (px->o.stats_file == NULL)
		return 0;
	snprintf(text, sizeof(text),
	         "{\"accepted\": %" PRIu64 ", \"refused\": %" PRIu64
	         ", \"connect_failed\": %" PRIu64 ", \"cut\": %" PRIu64
	         ", \"closed_by_peer\": %" PRIu64 ", \"failed\": %" PRIu64
	         ", \"closed_at_exit\": %" PRIu64 ", \"active\": %u"
	         ", \"bytes_client_to_target\": %" PRIu64
	         ", \"bytes_target_to_client\": %" PRIu64 "}\n",
	         s->accepted, s->refused, s->connect_failed, s->cut,
	         s->closed_by_peer, s->failed, s->closed_at_exit, px->nactive,
	         s->bytes_c2t, s->bytes_t2c);
	r = write_file_atomic(px->o.stats_file, text);
	if (r < 0)
		plog(px, "cannot write stats file %s: %s", px->o.stats_file,
		     strerror(-r));
	return r;
}

/* ---- connections ---- */

static uint64_t rng_next(uint64_t *state)
{
	/* splitmix64 */
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void conn_set_state(struct conn *c, enum conn_state next)
{
	bool ok;

	switch (c->state) {
	case CONN_CONNECTING:
		ok = next != CONN_CONNECTING;
		break;
	case CONN_RELAY:
		ok = next == CONN_CUT || next == CONN_CLOSING;
		break;
	case CONN_CUT:
		ok = next == CONN_CLOSING;
		break;
	default:
		ok = false;
		break;
	}
	if (!ok) {
		plog(c->px, "conn %" PRIu64 " bad transition %s -> %s", c->id,
		     conn_state_name(c->state), conn_state_name(next));
		abort();
	}
	c->state = next;
}

static void conn_set_reason(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void conn_set_reason(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->reason[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

static void conn_unlink(struct conn *c)
{
	struct proxy *px = c->px;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	px->nconns--;
}

static void conn_handle_closed(struct conn *c)
{
	if (--c->handles > 0)
		return;
	plog(c->px,
	     "conn %" PRIu64 " close (%s) after %.3fs c2t %" PRIu64
	     " t2c %" PRIu64,
	     c->id, c->reason, elapsed_s(c->opened_ns), c->target.bytes_out,
	     c->client.bytes_out);
	conn_unlink(c);
	free(c);
}

static void on_side_close(uv_handle_t *h)
{
	struct side *s = h->data;

	conn_handle_closed(s->conn);
}

static void on_timer_close(uv_handle_t *h)
{
	conn_handle_closed(h->data);
}

/* Closes one side, with a reset (SO_LINGER 0) if asked; once both sides are
 * closed the conn's timer is closed too, and the last close callback frees
 * the conn. */
static void side_close(struct side *s, bool reset)
{
	struct conn *c = s->conn;

	if (!s->open)
		return;
	s->open = false;
	s->reading = false;
	if (reset) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		uv_os_fd_t fd;

		/* Not uv_tcp_close_reset: it refuses a socket that was shut
		 * down, and a half-closed connection is cut like any other. */
		if (uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0)
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	uv_close((uv_handle_t *)&s->tcp, on_side_close);
	if (!c->client.open && !c->target.open) {
		c->px->nactive--;
		if (c->timer_open) {
			c->timer_open = false;
			uv_close((uv_handle_t *)&c->timer, on_timer_close);
		}
	}
}

/* Ends the conn at once: both sides closed (each reset if asked). */
static void conn_close(struct conn *c, bool reset_client, bool reset_target)
{
	if (c->state == CONN_CLOSING)
		return;
	conn_set_state(c, CONN_CLOSING);
	side_close(&c->client, reset_client);
	side_close(&c->target, reset_target);
}

/* An I/O error on side s. While relaying, the error is passed on to the
 * other side as a reset, as the peer's own reset would be; after a cut only
 * that side is closed. */
static void side_failed(struct side *s, const char *what, int err)
{
	struct conn *c = s->conn;

	switch (c->state) {
	case CONN_CONNECTING:
	case CONN_RELAY:
		conn_set_reason(c, "%s %s: %s", s->name, what,
		                uv_strerror(err));
		c->px->st.closed_by_peer++;
		side_close(s, false);
		conn_close(c, true, true);
		break;
	case CONN_CUT:
		side_close(s, false);
		break;
	case CONN_CLOSING:
		break;
	}
}

/* A local failure (out of memory, a libuv call refused): reset both. */
static void conn_fail(struct conn *c, const char *what, int err)
{
	if (c->state == CONN_CLOSING)
		return;
	conn_set_reason(c, "%s: %s", what, uv_strerror(err));
	c->px->st.failed++;
	conn_close(c, true, true);
}

static void count_written(struct side *dst, size_t n)
{
	struct conn *c = dst->conn;

	dst->bytes_out += n;
	if (dst == &c->target)
		c->px->st.bytes_c2t += n;
	else
		c->px->st.bytes_t2c += n;
}

/* While relaying, a conn whose both directions have ended with FIN is done. */
static void relay_check_done(struct conn *c)
{
	if (c->state != CONN_RELAY)
		return;
	if (c->client.eof && c->target.eof && c->client.shut_done &&
	    c->target.shut_done) {
		conn_set_reason(c, "eof from both");
		c->px->st.closed_by_peer++;
		conn_close(c, false, false);
	}
}

/* After a cut, a side is finished when its peer has sent FIN and (for a cut
 * side in fin mode) our own FIN has gone out. */
static void cut_check_side(struct side *s)
{
	if (s->conn->state != CONN_CUT || !s->open || !s->eof)
		return;
	if (s->cut && !s->shut_done)
		return;
	side_close(s, false);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct side *s = req->data;
	struct conn *c = s->conn;

	if (status == UV_ECANCELED)
		return;
	s->shut_done = true;
	if (status < 0) {
		side_failed(s, "shutdown", status);
		return;
	}
	if (c->state == CONN_RELAY)
		relay_check_done(c);
	else
		cut_check_side(s);
}

/* Sends FIN to s once everything queued to it is written. Returns 0 or a
 * libuv error. */
static int side_shutdown(struct side *s)
{
	int r;

	if (s->shut)
		return 0;
	s->shut = true;
	s->shutdown_req.data = s;
	r = uv_shutdown(&s->shutdown_req, (uv_stream_t *)&s->tcp, on_shutdown);
	if (r < 0)
		s->shut = false;
	return r;
}

static void on_write(uv_write_t *req, int status)
{
	struct chunk *ch = (struct chunk *)(void *)req;
	struct side *dst = ch->dst;
	struct side *src = dst->peer;
	struct conn *c = dst->conn;

	dst->queued--;
	if (status == 0)
		count_written(dst, ch->len);
	chunk_put(c->px, ch);
	if (status < 0) {
		if (status != UV_ECANCELED)
			side_failed(dst, "write", status);
		return;
	}
	if (src->paused && dst->queued <= QUEUE_LOW) {
		src->paused = false;
		side_update_reading(src);
	}
}

/* Passes n bytes read from src (in ch, which this takes) to the other side:
 * as much as the kernel takes now, the rest queued. */
static void forward(struct side *src, struct chunk *ch, size_t n)
{
	struct side *dst = src->peer;
	struct conn *c = src->conn;
	uv_buf_t b = uv_buf_init(ch->data, (unsigned)n);
	int w, r;

	w = uv_try_write((uv_stream_t *)&dst->tcp, &b, 1);
	if (w == UV_EAGAIN)
		w = 0;
	if (w < 0) {
		chunk_put(c->px, ch);
		side_failed(dst, "write", w);
		return;
	}
	count_written(dst, (size_t)w);
	if ((size_t)w == n) {
		chunk_put(c->px, ch);
		return;
	}
	b = uv_buf_init(ch->data + w, (unsigned)(n - (size_t)w));
	ch->dst = dst;
	ch->len = b.len;
	r = uv_write(&ch->req, (uv_stream_t *)&dst->tcp, &b, 1, on_write);
	if (r < 0) {
		chunk_put(c->px, ch);
		side_failed(dst, "write", r);
		return;
	}
	if (++dst->queued >= QUEUE_HIGH) {
		src->paused = true;
		side_update_reading(src);
	}
}

static void on_side_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct side *s = h->data;
	struct chunk *ch = chunk_get(s->conn->px);

	if (ch == NULL) {
		*buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
		return;
	}
	*buf = uv_buf_init(ch->data, CHUNK_SIZE);
}

static void on_side_read(uv_stream_t *stream, ssize_t nread,
                         const uv_buf_t *buf)
{
	struct side *s = stream->data;
	struct conn *c = s->conn;
	struct chunk *ch = buf->base != NULL ? chunk_of_buf(buf) : NULL;

	if (nread > 0 && c->state == CONN_RELAY) {
		forward(s, ch, (size_t)nread);
		return;
	}
	if (ch != NULL)
		chunk_put(c->px, ch);
	if (nread >= 0)
		return; /* nothing read, or discarded after a cut */
	if (nread == UV_ENOBUFS) {
		conn_fail(c, "read buffer", (int)nread);
		return;
	}
	if (nread != UV_EOF) {
		side_failed(s, "read", (int)nread);
		return;
	}
	s->eof = true;
	side_update_reading(s);
	if (c->state == CONN_RELAY) {
		int r = side_shutdown(s->peer);
		if (r < 0)
			side_failed(s->peer, "shutdown", r);
	} else {
		cut_check_side(s);
	}
}

static bool side_wants_read(const struct side *s)
{
	const struct conn *c = s->conn;

	if (!s->open || !s->connected || s->eof)
		return false;
	if (c->state == CONN_RELAY)
		return !s->paused && !c->px->blackholed;
	return c->state == CONN_CUT;
}

/* Starts or stops reading s to match what its state asks for. */
static void side_update_reading(struct side *s)
{
	bool want = side_wants_read(s);
	int r;

	if (want == s->reading)
		return;
	if (!want) {
		uv_read_stop((uv_stream_t *)&s->tcp);
		s->reading = false;
		return;
	}
	r = uv_read_start((uv_stream_t *)&s->tcp, on_side_alloc, on_side_read);
	if (r < 0) {
		conn_fail(s->conn, "read start", r);
		return;
	}
	s->reading = true;
}

static void on_timer(uv_timer_t *t);

/* The cut: stop forwarding, and close each side that --cut-side names, the
 * way --mode says. Sides not named are left open and silent. */
static void conn_cut(struct conn *c)
{
	struct proxy *px = c->px;
	struct side *sides[2] = {&c->client, &c->target};
	const unsigned flags[2] = {CUT_CLIENT, CUT_TARGET};
	bool grace = false;

	px->st.cut++;
	conn_set_reason(c, "cut");
	plog(px,
	     "conn %" PRIu64 " cut %s after %.3fs c2t %" PRIu64 " t2c %" PRIu64,
	     c->id, px->o.mode == CUT_RST ? "rst" : "fin",
	     elapsed_s(c->opened_ns), c->target.bytes_out, c->client.bytes_out);
	conn_set_state(c, CONN_CUT);
	for (int i = 0; i < 2; i++) {
		struct side *s = sides[i];

		s->paused = false;
		s->cut = (px->o.cut_sides & flags[i]) != 0;
		if (!s->cut) {
			side_update_reading(s);
			cut_check_side(s);
			continue;
		}
		if (px->o.mode == CUT_RST || !s->connected) {
			side_close(s, s->connected);
			continue;
		}
		if (side_shutdown(s) < 0) {
			side_close(s, false);
			continue;
		}
		side_update_reading(s);
		cut_check_side(s);
		grace = grace || s->open;
	}
	if (grace && c->timer_open)
		uv_timer_start(&c->timer, on_timer, px->o.fin_grace_ms, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->state == CONN_CONNECTING || c->state == CONN_RELAY) {
		conn_cut(c);
		return;
	}
	if (c->state != CONN_CUT)
		return;
	/* fin mode: the grace period for the close handshake is over. */
	if (c->client.cut && c->client.open)
		plog(c->px, "conn %" PRIu64 " client fin grace expired", c->id);
	if (c->target.cut && c->target.open)
		plog(c->px, "conn %" PRIu64 " target fin grace expired", c->id);
	if (c->client.cut)
		side_close(&c->client, false);
	if (c->target.cut)
		side_close(&c->target, false);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;

	if (status == UV_ECANCELED)
		return;
	if (status < 0) {
		if (c->state == CONN_CONNECTING) {
			conn_set_reason(c, "connect failed: %s",
			                uv_strerror(status));
			c->px->st.connect_failed++;
			conn_close(c, true, false);
		} else {
			side_close(&c->target, false);
		}
		return;
	}
	c->target.connected = true;
	uv_tcp_nodelay(&c->target.tcp, 1);
	if (c->state == CONN_CONNECTING)
		conn_set_state(c, CONN_RELAY);
	side_update_reading(&c->client);
	side_update_reading(&c->target);
}

static void side_init(struct conn *c, struct side *s, struct side *peer,
                      const char *name)
{
	s->conn = c;
	s->peer = peer;
	s->name = name;
	s->tcp.data = s;
	uv_tcp_init(c->px->loop, &s->tcp);
	s->open = true;
	c->handles++;
}

static void update_blackhole(struct proxy *px)
{
	bool now = file_exists(px->o.blackhole_file);

	if (now == px->blackholed)
		return;
	px->blackholed = now;
	plog(px, "blackhole %s", now ? "on" : "off");
	for (struct conn *c = px->conns; c != NULL; c = c->next) {
		side_update_reading(&c->client);
		side_update_reading(&c->target);
	}
}

static void on_poll_timer(uv_timer_t *t)
{
	update_blackhole(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct proxy *px = server->data;
	const char *refused = NULL;
	char peer[64] = "?";
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	uint64_t cut_in = 0;
	struct conn *c;
	int r;

	if (status < 0) {
		plog(px, "accept: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		/* libuv pauses the listener until this connection is taken,
		 * so there is no carrying on without memory. */
		plog(px, "accept: out of memory, stopping");
		uv_stop(px->loop);
		return;
	}
	c->px = px;
	c->id = ++px->next_id;
	c->opened_ns = uv_hrtime();
	c->next = px->conns;
	if (px->conns != NULL)
		px->conns->prev = c;
	px->conns = c;
	px->nconns++;
	px->nactive++;
	px->st.accepted++;
	side_init(c, &c->client, &c->target, "client");
	side_init(c, &c->target, &c->client, "target");
	c->timer.data = c;
	uv_timer_init(px->loop, &c->timer);
	c->timer_open = true;
	c->handles++;

	r = uv_accept(server, (uv_stream_t *)&c->client.tcp);
	if (r < 0) {
		plog(px, "conn %" PRIu64 " accept: %s", c->id, uv_strerror(r));
		conn_fail(c, "accept", r);
		return;
	}
	c->client.connected = true;
	uv_tcp_nodelay(&c->client.tcp, 1);
	if (uv_tcp_getpeername(&c->client.tcp, (struct sockaddr *)&ss,
	                       &sslen) == 0)
		addr_str((struct sockaddr *)&ss, peer, sizeof(peer));

	if (px->o.max_conns != 0 && px->nactive > px->o.max_conns)
		refused = "max-conns";
	else if (file_exists(px->o.refuse_file))
		refused = "refuse-file";
	if (refused != NULL) {
		plog(px, "conn %" PRIu64 " open from %s refused (%s)", c->id,
		     peer, refused);
		conn_set_reason(c, "refused");
		px->st.refused++;
		conn_close(c, true, false);
		return;
	}

	if (px->o.cut_ms != 0) {
		cut_in = px->o.cut_ms;
		if (px->o.jitter_ms != 0)
			cut_in += rng_next(&px->rng) % (px->o.jitter_ms + 1);
		/* The loop's clock was read before this iteration's I/O, and
		 * is truncated to the millisecond: the extra 1 ms makes sure
		 * the cut never comes early. */
		uv_update_time(px->loop);
		uv_timer_start(&c->timer, on_timer, cut_in + 1, 0);
	}
	if (px->o.cut_ms != 0)
		plog(px, "conn %" PRIu64 " open from %s cut in %.3fs", c->id,
		     peer, (double)cut_in / 1e3);
	else
		plog(px, "conn %" PRIu64 " open from %s", c->id, peer);

	if (px->o.blackhole_file != NULL)
		update_blackhole(px);
	c->connect_req.data = c;
	r = uv_tcp_connect(&c->connect_req, &c->target.tcp,
	                   (const struct sockaddr *)&px->o.target, on_connect);
	if (r < 0) {
		conn_set_reason(c, "connect failed: %s", uv_strerror(r));
		px->st.connect_failed++;
		conn_close(c, true, false);
	}
}

/* ---- start and stop ---- */

static void proxy_stop(struct proxy *px)
{
	if (px->stopping)
		return;
	px->stopping = true;
	plog(px, "stopping: %u connections open", px->nactive);
	if (!uv_is_closing((uv_handle_t *)&px->listener))
		uv_close((uv_handle_t *)&px->listener, NULL);
	if (px->signals_used) {
		uv_close((uv_handle_t *)&px->sig_term, NULL);
		uv_close((uv_handle_t *)&px->sig_int, NULL);
		uv_close((uv_handle_t *)&px->sig_usr1, NULL);
	}
	if (px->poll_timer_used)
		uv_close((uv_handle_t *)&px->poll_timer, NULL);
	for (struct conn *c = px->conns; c != NULL; c = c->next) {
		switch (c->state) {
		case CONN_CONNECTING:
		case CONN_RELAY:
			conn_set_reason(c, "exit");
			px->st.closed_at_exit++;
			conn_close(c, false, false);
			break;
		case CONN_CUT:
			/* Already counted as cut; close what is left. */
			conn_close(c, false, false);
			break;
		case CONN_CLOSING:
			break;
		}
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct proxy *px = h->data;

	if (signum == SIGUSR1) {
		write_stats(px);
		return;
	}
	plog(px, "signal %d", signum);
	proxy_stop(px);
}

/* Binds, listens and writes the ready file. Returns 0 or a libuv error. */
static int proxy_start(struct proxy *px)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	char name[80], target[80], text[96];
	int r;

	uv_tcp_init(px->loop, &px->listener);
	px->listener.data = px;
	r = uv_tcp_bind(&px->listener, (struct sockaddr *)&px->o.listen, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&px->listener, LISTEN_BACKLOG,
		              on_connection);
	if (r == 0)
		r = uv_tcp_getsockname(&px->listener, (struct sockaddr *)&ss,
		                       &sslen);
	if (r < 0) {
		addr_str((struct sockaddr *)&px->o.listen, name, sizeof(name));
		fprintf(stderr, PROG ": listen on %s: %s\n", name,
		        uv_strerror(r));
		uv_close((uv_handle_t *)&px->listener, NULL);
		return r;
	}
	addr_str((struct sockaddr *)&ss, name, sizeof(name));
	addr_str((struct sockaddr *)&px->o.target, target, sizeof(target));

	uv_signal_init(px->loop, &px->sig_term);
	uv_signal_init(px->loop, &px->sig_int);
	uv_signal_init(px->loop, &px->sig_usr1);
	px->sig_term.data = px->sig_int.data = px->sig_usr1.data = px;
	uv_signal_start(&px->sig_term, on_signal, SIGTERM);
	uv_signal_start(&px->sig_int, on_signal, SIGINT);
	uv_signal_start(&px->sig_usr1, on_signal, SIGUSR1);
	px->signals_used = true;
	if (px->o.blackhole_file != NULL) {
		uv_timer_init(px->loop, &px->poll_timer);
		px->poll_timer.data = px;
		px->poll_timer_used = true;
		uv_timer_start(&px->poll_timer, on_poll_timer, 0, FILE_POLL_MS);
	}

	plog(px,
	     "listening on %s, target %s, cut-after %" PRIu64
	     "ms jitter %" PRIu64 "ms mode %s seed %" PRIu64,
	     name, target, px->o.cut_ms, px->o.jitter_ms,
	     px->o.mode == CUT_RST ? "rst" : "fin", px->o.seed);
	if (px->o.ready_file != NULL) {
		snprintf(text, sizeof(text), "%s\n", name);
		r = write_file_atomic(px->o.ready_file, text);
		if (r < 0) {
			fprintf(stderr,
			        PROG ": cannot write ready file %s: %s\n",
			        px->o.ready_file, strerror(-r));
			return UV_EIO;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct proxy px;
	uv_loop_t loop;
	int rc = 0, r;

	memset(&px, 0, sizeof(px));
	cp_parse_args(argc, argv, &px.o);
	px.start_ns = uv_hrtime();
	if (!px.o.seed_set)
		px.o.seed = px.start_ns ^ ((uint64_t)uv_os_getpid() << 32);
	px.rng = px.o.seed;
	/* A write to a reset socket must fail with EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);

	r = uv_loop_init(&loop);
	if (r < 0) {
		fprintf(stderr, PROG ": loop: %s\n", uv_strerror(r));
		return 1;
	}
	px.loop = &loop;
	if (proxy_start(&px) < 0) {
		/* Close whatever was opened; the stats are not written. */
		rc = 1;
		proxy_stop(&px);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	if (!px.stopping) {
		/* uv_stop after an allocation failure: close what is left. */
		rc = 1;
		proxy_stop(&px);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (rc == 0) {
		plog(&px,
		     "exit: accepted %" PRIu64 " cut %" PRIu64
		     " closed_by_peer %" PRIu64 " c2t %" PRIu64 " t2c %" PRIu64,
		     px.st.accepted, px.st.cut, px.st.closed_by_peer,
		     px.st.bytes_c2t, px.st.bytes_t2c);
		if (write_stats(&px) < 0)
			rc = 1;
	}
	pool_drain(&px);
	r = uv_loop_close(&loop);
	if (r < 0) {
		fprintf(stderr, PROG ": loop close: %s\n", uv_strerror(r));
		rc = 1;
	}
	return rc;
}
