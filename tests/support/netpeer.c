/* netpeer: test clients and target servers. See netpeer.h. */
#include "support/netpeer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define CLIENT_INFLIGHT (256 * 1024)

/* ---- streams ---------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint8_t wn_np_byte(uint32_t seed, uint64_t off)
{
	if (off < 4)
		return (uint8_t)(seed >> (8 * off));
	return (uint8_t)(mix(((uint64_t)seed << 40) ^ (off / 8)) >>
	                 (8 * (off % 8)));
}

void wn_np_fill(uint32_t seed, uint64_t off, uint8_t *buf, size_t n)
{
	size_t i = 0;
	uint64_t w;

	while (i < n && (off + i < 4 || (off + i) % 8))
		buf[i] = wn_np_byte(seed, off + i), i++;
	for (; i + 8 <= n; i += 8) {
		w = mix(((uint64_t)seed << 40) ^ ((off + i) / 8));
		memcpy(buf + i, &w, 8); /* little-endian, as wn_np_byte */
	}
	for (; i < n; i++)
		buf[i] = wn_np_byte(seed, off + i);
}

bool wn_np_check(uint32_t seed, uint64_t off, const uint8_t *buf, size_t n)
{
	uint8_t tmp[4096];
	size_t k;

	while (n) {
		k = n < sizeof(tmp) ? n : sizeof(tmp);
		wn_np_fill(seed, off, tmp, k);
		if (memcmp(tmp, buf, k) != 0)
			return false;
		off += k;
		buf += k;
		n -= k;
	}
	return true;
}

/* ---- running ---------------------------------------------------------- */

static void tick(uv_timer_t *t)
{
}

bool wn_np_run_until(struct wn_loop *loop, bool (*cond)(void *), void *arg,
                     uint64_t timeout_ms)
{
	uv_loop_t *uv = wn_loop_uv(loop);
	uv_timer_t t;
	uint64_t start;
	bool ok;

	uv_update_time(uv);
	start = uv_now(uv);
	/* Keeps UV_RUN_ONCE from blocking long, so the clock is checked. */
	uv_timer_init(uv, &t);
	uv_timer_start(&t, tick, 5, 5);
	while (!(ok = cond(arg)) && uv_now(uv) - start < timeout_ms)
		uv_run(uv, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(uv, UV_RUN_NOWAIT);
	return ok;
}

static bool never(void *arg)
{
	return false;
}

void wn_np_run_for(struct wn_loop *loop, uint64_t ms)
{
	wn_np_run_until(loop, never, NULL, ms);
}

/* ---- servers ---------------------------------------------------------- */

struct np_wbuf {
	uv_write_t req;
	size_t len;
	uint8_t data[];
};

struct np_sconn {
	struct wn_np_server *s;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_shutdown_t sreq;
	struct np_sconn *prev, *next;
	uint64_t in, greet_off;
	uint32_t seed;
	uint8_t seedbuf[4];
	size_t queued; /* echo bytes in writes not yet done */
	bool reading, eof, shut, closing, read_blocked;
};

static void sconn_closed(uv_handle_t *h)
{
	struct np_sconn *c = h->data;
	struct wn_np_server *s = c->s;

	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->finished++;
	free(c);
}

static void sconn_close(struct np_sconn *c, bool rst)
{
	if (c->closing)
		return;
	c->closing = true;
	if (rst && !c->s->is_pipe &&
	    uv_tcp_close_reset(&c->h.tcp, sconn_closed) == 0)
		return;
	uv_close(&c->h.handle, sconn_closed);
}

/* Read buffers are allocated per read and freed by the read callback. */
static void np_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
	buf->base = malloc(CHUNK);
	buf->len = buf->base ? CHUNK : 0;
}

static void sconn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void sconn_start(struct np_sconn *c)
{
	if (!c->reading && !c->eof && !c->closing) {
		uv_read_start(&c->h.stream, np_alloc, sconn_read);
		c->reading = true;
	}
}

static void sconn_stop(struct np_sconn *c)
{
	if (c->reading) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	}
}

static void sconn_shut_done(uv_shutdown_t *req, int status)
{
	struct np_sconn *c = req->data;

	if (c->closing)
		return;
	/* Echo and sink close once both directions are done. */
	if (c->eof)
		sconn_close(c, false);
}

static void sconn_maybe_shut(struct np_sconn *c)
{
	struct wn_np_server *s = c->s;
	bool greet_done =
	    s->mode != WN_NP_GREET || c->greet_off >= s->greet_len;

	if (c->shut || c->closing || c->queued || !greet_done)
		return;
	if (s->mode != WN_NP_GREET && !c->eof)
		return;
	c->shut = true;
	c->sreq.data = c;
	if (uv_shutdown(&c->sreq, &c->h.stream, sconn_shut_done) != 0)
		sconn_close(c, false);
}

static void sconn_written(uv_write_t *req, int status)
{
	struct np_wbuf *w = (struct np_wbuf *)req;
	struct np_sconn *c = req->data;

	c->queued -= w->len;
	free(w);
	if (c->closing)
		return;
	if (status < 0) {
		c->s->errors++;
		sconn_close(c, true);
		return;
	}
	if (c->read_blocked &&
	    c->queued <
	        (c->s->echo_queue_max ? c->s->echo_queue_max : 1024 * 1024)) {
		c->read_blocked = false;
		sconn_start(c);
	}
	sconn_maybe_shut(c);
}

static int sconn_write(struct np_sconn *c, const void *data, size_t n)
{
	struct np_wbuf *w = malloc(sizeof(*w) + n);
	uv_buf_t b;

	if (!w)
		abort();
	memcpy(w->data, data, n);
	w->len = n;
	w->req.data = c;
	b = uv_buf_init((char *)w->data, (unsigned)n);
	c->queued += n;
	c->s->bytes_out += n;
	if (uv_write(&w->req, &c->h.stream, &b, 1, sconn_written) != 0) {
		c->queued -= n;
		free(w);
		return -1;
	}
	return 0;
}

static void sconn_greet(struct np_sconn *c)
{
	struct wn_np_server *s = c->s;
	uint8_t buf[CHUNK];
	size_t n;

	while (c->greet_off < s->greet_len) {
		n = s->greet_len - c->greet_off < CHUNK
		        ? (size_t)(s->greet_len - c->greet_off)
		        : CHUNK;
		wn_np_fill(s->greet_seed, c->greet_off, buf, n);
		if (sconn_write(c, buf, n) != 0) {
			sconn_close(c, true);
			return;
		}
		c->greet_off += n;
	}
	sconn_maybe_shut(c);
}

/* Verify sink data: the first 4 bytes give the seed. */
static void sconn_verify(struct np_sconn *c, const uint8_t *p, size_t n)
{
	uint64_t off = c->in;

	while (n && off < 4) {
		c->seedbuf[off] = *p;
		c->seed |= (uint32_t)*p << (8 * off);
		p++, n--, off++;
	}
	if (n && !wn_np_check(c->seed, off, p, n))
		c->s->mismatches++;
}

static void sconn_read_buf(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct np_sconn *c = st->data;
	struct wn_np_server *s = c->s;

	if (c->closing)
		return;
	if (n > 0) {
		s->bytes_in += (uint64_t)n;
		if (s->mode == WN_NP_ECHO) {
			if (sconn_write(c, buf->base, (size_t)n) != 0) {
				sconn_close(c, true);
				return;
			}
			if (c->queued >= (s->echo_queue_max ? s->echo_queue_max
			                                    : 1024 * 1024)) {
				sconn_stop(c);
				c->read_blocked = true;
			}
		} else {
			sconn_verify(c, (const uint8_t *)buf->base, (size_t)n);
		}
		c->in += (uint64_t)n;
		if (s->mode == WN_NP_RESET && c->in >= s->reset_after)
			sconn_close(c, true);
		return;
	}
	if (n == 0)
		return;
	sconn_stop(c);
	if (n == UV_EOF) {
		c->eof = true;
		s->eofs++;
		if (s->mode == WN_NP_RESET) {
			sconn_close(c, true);
			return;
		}
		if (c->shut && s->mode == WN_NP_GREET) {
			sconn_close(c, false);
			return;
		}
		sconn_maybe_shut(c);
		return;
	}
	if (n == UV_ECONNRESET)
		s->resets++;
	else
		s->errors++;
	sconn_close(c, true);
}

static void sconn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	sconn_read_buf(st, n, buf);
	free(buf->base);
}

static void server_conn(uv_stream_t *l, int status)
{
	struct wn_np_server *s = l->data;
	struct np_sconn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->s = s;
	if (s->is_pipe)
		uv_pipe_init(wn_loop_uv(s->loop), &c->h.pipe, 0);
	else
		uv_tcp_init(wn_loop_uv(s->loop), &c->h.tcp);
	c->h.handle.data = c;
	c->next = s->conns;
	if (c->next)
		c->next->prev = c;
	s->conns = c;
	if (uv_accept(l, &c->h.stream) != 0) {
		sconn_close(c, false);
		return;
	}
	s->accepted++;
	if (s->mode == WN_NP_GREET)
		sconn_greet(c);
	if (!s->stalled)
		sconn_start(c);
}

static void server_init(struct wn_np_server *s, struct wn_loop *loop,
                        enum wn_np_mode mode)
{
	struct wn_np_server keep = *s;

	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->mode = mode;
	/* Settings made before start survive. */
	s->greet_seed = keep.greet_seed;
	s->greet_len = keep.greet_len;
	s->reset_after = keep.reset_after;
	s->stalled = keep.stalled;
	s->echo_queue_max = keep.echo_queue_max;
}

int wn_np_server_tcp(struct wn_np_server *s, struct wn_loop *loop,
                     const char *ip, enum wn_np_mode mode)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	server_init(s, loop, mode);
	if (strchr(ip, ':'))
		uv_ip6_addr(ip, 0, (struct sockaddr_in6 *)&ss);
	else
		uv_ip4_addr(ip, 0, (struct sockaddr_in *)&ss);
	uv_tcp_init(wn_loop_uv(loop), &s->l.tcp);
	s->l.handle.data = s;
	s->listening = true;
	if (uv_tcp_bind(&s->l.tcp, (struct sockaddr *)&ss, 0) != 0 ||
	    uv_listen(&s->l.stream, 512, server_conn) != 0)
		return -1;
	uv_tcp_getsockname(&s->l.tcp, (struct sockaddr *)&ss, &len);
	s->port = ntohs(ss.ss_family == AF_INET
	                    ? ((struct sockaddr_in *)&ss)->sin_port
	                    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

int wn_np_server_unix(struct wn_np_server *s, struct wn_loop *loop,
                      const char *path, enum wn_np_mode mode)
{
	server_init(s, loop, mode);
	s->is_pipe = true;
	snprintf(s->path, sizeof(s->path), "%s", path);
	unlink(path);
	uv_pipe_init(wn_loop_uv(loop), &s->l.pipe, 0);
	s->l.handle.data = s;
	s->listening = true;
	if (uv_pipe_bind(&s->l.pipe, path) != 0 ||
	    uv_listen(&s->l.stream, 512, server_conn) != 0)
		return -1;
	return 0;
}

void wn_np_server_resume(struct wn_np_server *s)
{
	struct np_sconn *c;

	s->stalled = false;
	for (c = s->conns; c; c = c->next)
		sconn_start(c);
}

void wn_np_server_close(struct wn_np_server *s)
{
	struct np_sconn *c, *next;

	if (s->listening) {
		s->listening = false;
		uv_close(&s->l.handle, NULL);
		if (s->is_pipe)
			unlink(s->path);
	}
	for (c = s->conns; c; c = next) {
		next = c->next;
		sconn_close(c, true);
	}
}

/* ---- clients ---------------------------------------------------------- */

static void client_closed(uv_handle_t *h)
{
	struct wn_np_client *c = h->data;

	c->closed = true;
	c->end_ms = uv_now(wn_loop_uv(c->loop));
}

static void client_close(struct wn_np_client *c, bool rst)
{
	if (c->closing)
		return;
	c->closing = true;
	if (rst && !c->is_pipe && c->connected &&
	    uv_tcp_close_reset(&c->h.tcp, client_closed) == 0)
		return;
	uv_close(&c->h.handle, client_closed);
}

static void client_maybe_done(struct wn_np_client *c)
{
	bool sent_all =
	    c->sent == c->send_len && (!c->shut_after_send || c->shut_done);

	if (c->read_err || c->write_err)
		client_close(c, true);
	else if (c->eof && sent_all)
		client_close(c, false);
}

static void client_pump(struct wn_np_client *c);

static void client_written(uv_write_t *req, int status)
{
	struct np_wbuf *w = (struct np_wbuf *)req;
	struct wn_np_client *c = req->data;

	if (status == 0)
		c->sent += w->len;
	free(w);
	if (c->closing)
		return;
	if (status < 0) {
		c->write_err = status;
		client_maybe_done(c);
		return;
	}
	client_pump(c);
}

static void client_shut(uv_shutdown_t *req, int status)
{
	struct wn_np_client *c = req->data;

	if (c->closing)
		return;
	if (status < 0)
		c->write_err = status;
	else
		c->shut_done = true;
	client_maybe_done(c);
}

static void client_pump(struct wn_np_client *c)
{
	struct np_wbuf *w;
	uv_buf_t b;
	size_t n;

	while (c->queued < c->send_len &&
	       c->queued - c->sent < CLIENT_INFLIGHT) {
		n = c->send_len - c->queued < CHUNK
		        ? (size_t)(c->send_len - c->queued)
		        : CHUNK;
		w = malloc(sizeof(*w) + n);
		if (!w)
			abort();
		w->len = n;
		w->req.data = c;
		wn_np_fill(c->seed, c->queued, w->data, n);
		b = uv_buf_init((char *)w->data, (unsigned)n);
		if (uv_write(&w->req, &c->h.stream, &b, 1, client_written) !=
		    0) {
			free(w);
			c->write_err = UV_EIO;
			client_maybe_done(c);
			return;
		}
		c->queued += n;
	}
	if (c->sent == c->send_len && c->shut_after_send && !c->sreq.data) {
		c->sreq.data = c;
		if (uv_shutdown(&c->sreq, &c->h.stream, client_shut) != 0) {
			c->write_err = UV_EIO;
			client_maybe_done(c);
			return;
		}
	}
	client_maybe_done(c);
}

static void client_read_buf(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct wn_np_client *c = st->data;
	const uint8_t *p = (const uint8_t *)buf->base;

	if (c->closing)
		return;
	if (n > 0) {
		switch (c->expect) {
		case WN_NP_EXPECT_ECHO:
			if (c->recvd + (uint64_t)n > c->queued ||
			    !wn_np_check(c->seed, c->recvd, p, (size_t)n))
				c->mismatch = true;
			break;
		case WN_NP_EXPECT_STREAM:
			if (c->recvd + (uint64_t)n > c->expect_len ||
			    !wn_np_check(c->expect_seed, c->recvd, p,
			                 (size_t)n))
				c->mismatch = true;
			break;
		case WN_NP_EXPECT_NOTHING:
			c->mismatch = true;
			break;
		}
		c->recvd += (uint64_t)n;
		return;
	}
	if (n == 0)
		return;
	uv_read_stop(st);
	if (n == UV_EOF)
		c->eof = true;
	else
		c->read_err = (int)n;
	client_maybe_done(c);
}

static void client_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	client_read_buf(st, n, buf);
	free(buf->base);
}

static void client_on_connect(uv_connect_t *req, int status)
{
	struct wn_np_client *c = req->data;

	c->connect_status = status;
	if (status < 0 || c->closing) {
		c->read_err = status ? status : UV_ECANCELED;
		client_close(c, false);
		return;
	}
	c->connected = true;
	if (!c->stalled) {
		uv_read_start(&c->h.stream, np_alloc, client_read);
		c->reading = true;
	}
	client_pump(c);
}

static void client_init(struct wn_np_client *c, struct wn_loop *loop)
{
	struct wn_np_client keep = *c;

	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->seed = keep.seed;
	c->send_len = keep.send_len < 4 ? 4 : keep.send_len;
	c->shut_after_send = keep.shut_after_send;
	c->expect = keep.expect;
	c->expect_seed = keep.expect_seed;
	c->expect_len = keep.expect_len;
	c->stalled = keep.stalled;
	c->creq.data = c;
	c->start_ms = uv_now(wn_loop_uv(loop));
}

int wn_np_client_tcp(struct wn_np_client *c, struct wn_loop *loop,
                     const struct sockaddr *sa)
{
	client_init(c, loop);
	uv_tcp_init(wn_loop_uv(loop), &c->h.tcp);
	c->h.handle.data = c;
	if (uv_tcp_connect(&c->creq, &c->h.tcp, sa, client_on_connect) != 0) {
		client_close(c, false);
		return -1;
	}
	return 0;
}

int wn_np_client_unix(struct wn_np_client *c, struct wn_loop *loop,
                      const char *path)
{
	client_init(c, loop);
	c->is_pipe = true;
	uv_pipe_init(wn_loop_uv(loop), &c->h.pipe, 0);
	c->h.handle.data = c;
	uv_pipe_connect(&c->creq, &c->h.pipe, path, client_on_connect);
	return 0;
}

void wn_np_client_resume(struct wn_np_client *c)
{
	c->stalled = false;
	if (c->connected && !c->reading && !c->closing && !c->eof &&
	    !c->read_err) {
		uv_read_start(&c->h.stream, np_alloc, client_read);
		c->reading = true;
	}
}

void wn_np_client_reset(struct wn_np_client *c)
{
	client_close(c, true);
}

void wn_np_client_close(struct wn_np_client *c)
{
	client_close(c, false);
}

bool wn_np_client_was_reset(const struct wn_np_client *c)
{
	return c->read_err == UV_ECONNRESET || c->write_err == UV_ECONNRESET ||
	       c->write_err == UV_EPIPE;
}

bool wn_np_client_ok(const struct wn_np_client *c)
{
	uint64_t want = c->expect == WN_NP_EXPECT_ECHO     ? c->send_len
	                : c->expect == WN_NP_EXPECT_STREAM ? c->expect_len
	                                                   : 0;

	return c->closed && c->eof && !c->mismatch && !c->read_err &&
	       !c->write_err && c->sent == c->send_len && c->recvd == want;
}

/* ---- scripted stream applications ------------------------------------- */

void wn_np_stream_push(struct wn_np_stream *p)
{
	uint8_t buf[16 * 1024];
	size_t n;
	ssize_t w;

	while (p->s && !p->shut && p->sent < p->send_len) {
		n = p->send_len - p->sent < sizeof(buf)
		        ? (size_t)(p->send_len - p->sent)
		        : sizeof(buf);
		wn_np_fill(p->seed, p->sent, buf, n);
		w = wn_stream_write(p->s, buf, n);
		if (w <= 0)
			return;
		p->sent += (uint64_t)w;
		if ((size_t)w < n)
			return;
	}
	if (p->s && p->shut_when_sent && !p->shut && p->sent == p->send_len) {
		p->shut = true;
		if (wn_stream_shutdown(p->s) != 0)
			abort();
	}
}

static void nps_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                     size_t len)
{
	struct wn_np_stream *p = ctx;

	if (!wn_np_check(p->expect_seed, p->got, d, len))
		p->mismatch = true;
	p->got += len;
	if (p->hold)
		p->unconsumed += len;
	else
		wn_stream_consumed(s, len);
	if (p->on_data_hook)
		p->on_data_hook(p, p->hook_arg);
	if (p->reset_after_got && p->got >= p->reset_after_got && p->s) {
		p->reset_after_got = 0;
		wn_stream_reset(p->s, p->reset_err);
	}
}

static void nps_eof(void *ctx, struct wn_stream *s)
{
	struct wn_np_stream *p = ctx;

	p->eof = true;
}

static void nps_writable(void *ctx, struct wn_stream *s)
{
	struct wn_np_stream *p = ctx;

	p->writable_calls++;
	wn_np_stream_push(p);
}

static void nps_closed(void *ctx, struct wn_stream *s, int err)
{
	struct wn_np_stream *p = ctx;

	p->closed = true;
	p->closed_err = err;
	p->s = NULL;
}

struct wn_stream_handler wn_np_stream_handler(struct wn_np_stream *p)
{
	struct wn_stream_handler h = {p, nps_data, nps_eof, nps_writable,
	                              nps_closed};

	return h;
}

void wn_np_stream_unhold(struct wn_np_stream *p)
{
	p->hold = false;
	if (p->s && p->unconsumed)
		wn_stream_consumed(p->s, p->unconsumed);
	p->unconsumed = 0;
}
