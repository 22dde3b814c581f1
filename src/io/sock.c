/* A connected byte-stream socket: accept, connect across addresses, close
 * with a reset, handshake I/O. See sock.h. */
#include "io/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/container.h"
#include "util/err.h"

#define LOG_COMP "conn"

static void on_closed(uv_handle_t *h);

static int init_handle(struct wn_sock *s)
{
	int rc;

	if (s->kind == WN_SOCK_TCP)
		rc = uv_tcp_init(wn_loop_uv(s->loop), &s->h.tcp);
	else
		rc = uv_pipe_init(wn_loop_uv(s->loop), &s->h.pipe, 0);
	if (rc < 0)
		return wn_err_from_uv(rc);
	s->h.handle.data = s->ctx;
	s->live = true;
	return 0;
}

int wn_sock_init(struct wn_sock *s, struct wn_loop *loop,
                 enum wn_sock_kind kind, struct wn_log *log, const char *id,
                 wn_sock_close_fn on_close, void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->loop = loop;
	s->log = log;
	s->id = id ? id : "sock";
	s->on_close = on_close;
	s->ctx = ctx;
	s->connect_err = WN_EUNREACH;
	return init_handle(s);
}

int wn_sock_accept(struct wn_sock *s, uv_stream_t *listener)
{
	int rc;

	if (!s->live || s->connected || s->connecting)
		return WN_EINVAL;
	rc = uv_accept(listener, &s->h.stream);
	if (rc < 0)
		return wn_err_from_uv(rc);
	s->connected = true;
	if (s->kind == WN_SOCK_TCP)
		uv_tcp_nodelay(&s->h.tcp, 1);
	return 0;
}

union refused {
	uv_handle_t handle;
	uv_stream_t stream;
	uv_tcp_t tcp;
	uv_pipe_t pipe;
};

static void refused_closed(uv_handle_t *h)
{
	free(h);
}

int wn_sock_refuse(uv_stream_t *listener)
{
	union refused *r = malloc(sizeof(*r));
	int rc;

	if (!r)
		return WN_ENOMEM;
	if (listener->type == UV_NAMED_PIPE)
		rc = uv_pipe_init(listener->loop, &r->pipe, 0);
	else
		rc = uv_tcp_init(listener->loop, &r->tcp);
	if (rc < 0) {
		free(r);
		return wn_err_from_uv(rc);
	}
	rc = uv_accept(listener, &r->stream);
	uv_close(&r->handle, refused_closed);
	return rc < 0 ? wn_err_from_uv(rc) : 0;
}

int wn_sock_keepalive(uv_tcp_t *h, unsigned idle_s, unsigned intvl_s,
                      unsigned cnt)
{
	uv_os_fd_t fd;
	int v, rc = uv_tcp_keepalive(h, 1, idle_s);

	if (rc < 0)
		return wn_err_from_uv(rc);
	rc = uv_fileno((uv_handle_t *)h, &fd);
	if (rc < 0)
		return wn_err_from_uv(rc);
	v = (int)intvl_s;
	if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v)) != 0)
		return wn_err_from_errno(errno);
	v = (int)cnt;
	if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v)) != 0)
		return wn_err_from_errno(errno);
	return 0;
}

/* ---- connecting ------------------------------------------------------- */

static void connect_next(struct wn_sock *s);

static void connect_failed(struct wn_sock *s, int uverr)
{
	int werr = wn_err_from_uv(uverr);

	/* A refusal says the most (something is there and says no), so it
	 * wins over failures of other addresses of the same target. */
	if (s->connect_err != WN_ECONNREFUSED)
		s->connect_err = werr;
	WN_LOG(s->log, WN_LOG_DEBUG, LOG_COMP, "%s: connect failed: %s", s->id,
	       wn_strerror(werr));
	if (s->kind == WN_SOCK_TCP && s->next_addr < s->naddrs) {
		/* The next address gets a fresh socket (on_closed). */
		s->live = false;
		s->retrying = true;
		uv_close(&s->h.handle, on_closed);
		return;
	}
	s->connecting = false;
	s->on_connect(s->ctx, s->connect_err);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct wn_sock *s = wn_container_of(req, struct wn_sock, creq);

	/* A close cancels the connect: its callback is ours alone. */
	if (!s->live || !s->connecting)
		return;
	if (status < 0) {
		connect_failed(s, status);
		return;
	}
	s->connecting = false;
	s->connected = true;
	if (s->kind == WN_SOCK_TCP)
		uv_tcp_nodelay(&s->h.tcp, 1);
	s->on_connect(s->ctx, 0);
}

static void connect_next(struct wn_sock *s)
{
	const struct sockaddr *sa;
	int rc;

	if (s->kind == WN_SOCK_PIPE) {
		uv_pipe_connect(&s->creq, &s->h.pipe, s->path, on_connect);
		return;
	}
	sa = (const struct sockaddr *)&s->addrs[s->next_addr++];
	rc = uv_tcp_connect(&s->creq, &s->h.tcp, sa, on_connect);
	if (rc < 0)
		connect_failed(s, rc);
}

int wn_sock_connect(struct wn_sock *s, const struct sockaddr_storage *addrs,
                    size_t n, const char *path, wn_sock_connect_fn cb)
{
	size_t i;

	if (!s->live || s->connected || s->connecting || !cb)
		return WN_EINVAL;
	if (s->kind == WN_SOCK_TCP) {
		if (!addrs || n == 0)
			return WN_EINVAL;
		if (n > WN_SOCK_MAX_ADDRS)
			n = WN_SOCK_MAX_ADDRS;
		for (i = 0; i < n; i++)
			s->addrs[i] = addrs[i];
		s->naddrs = n;
		s->next_addr = 0;
	} else {
		if (!path || !path[0] || strlen(path) >= sizeof(s->path))
			return WN_EINVAL;
		memcpy(s->path, path, strlen(path) + 1);
	}
	s->on_connect = cb;
	s->connecting = true;
	connect_next(s);
	return 0;
}

/* ---- closing ---------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
	struct wn_sock *s = wn_container_of(h, struct wn_sock, h.handle);

	if (s->retrying) {
		s->retrying = false;
		if (s->connecting) {
			/* Cannot fail for TCP: without a family libuv creates
			 * no socket until connect. */
			(void)init_handle(s);
			connect_next(s);
			return;
		}
	}
	s->on_close(s->ctx);
}

void wn_sock_close(struct wn_sock *s, bool rst)
{
	uv_os_fd_t fd;
	struct linger lg = {1, 0};

	/* connecting false also tells a retry's on_closed to stop there. */
	s->connecting = false;
	s->rd_cb = NULL;
	s->rd_buf = NULL;
	if (!s->live)
		return;
	s->live = false;
	s->reading = false;
	if (rst && s->kind == WN_SOCK_TCP && s->connected) {
		if (uv_tcp_close_reset(&s->h.tcp, on_closed) == 0)
			return;
		/* libuv refuses while a shutdown is pending; a reset is still
		 * what the peer must see. */
		if (uv_fileno(&s->h.handle, &fd) == 0)
			(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg,
			                 sizeof(lg));
	}
	uv_close(&s->h.handle, on_closed);
}

/* ---- reading and writing ---------------------------------------------- */

int wn_sock_read_start(struct wn_sock *s, uv_alloc_cb alloc, uv_read_cb cb)
{
	int rc;

	if (s->reading)
		return 0;
	rc = uv_read_start(&s->h.stream, alloc, cb);
	if (rc < 0)
		return rc;
	s->reading = true;
	return 0;
}

void wn_sock_read_stop(struct wn_sock *s)
{
	s->rd_cb = NULL;
	s->rd_buf = NULL;
	if (s->reading) {
		uv_read_stop(&s->h.stream);
		s->reading = false;
	}
}

static void rd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct wn_sock *s = wn_container_of(h, struct wn_sock, h.handle);

	/* Without a pending read, a zero-length buffer: libuv then reports
	 * UV_ENOBUFS, which rd_on_read ignores. */
	buf->base = (char *)s->rd_buf;
	buf->len = s->rd_buf ? s->rd_len : 0;
}

static void rd_on_read(uv_stream_t *sk, ssize_t nread, const uv_buf_t *buf)
{
	struct wn_sock *s = wn_container_of(sk, struct wn_sock, h.stream);
	wn_sock_read_fn cb = s->rd_cb;

	if (!s->live || !cb || nread == 0 || nread == UV_ENOBUFS)
		return;
	wn_sock_read_stop(s);
	if (nread > 0)
		cb(s->ctx, nread);
	else
		cb(s->ctx,
		   nread == UV_EOF ? WN_ECLOSED : wn_err_from_uv((int)nread));
}

int wn_sock_read_some(struct wn_sock *s, uint8_t *buf, size_t len,
                      wn_sock_read_fn cb)
{
	int rc;

	if (!s->live || !s->connected || s->rd_cb || !len || !cb)
		return WN_EINVAL;
	s->rd_buf = buf;
	s->rd_len = len;
	s->rd_cb = cb;
	if (s->reading)
		return 0;
	rc = uv_read_start(&s->h.stream, rd_alloc, rd_on_read);
	if (rc < 0) {
		s->rd_cb = NULL;
		s->rd_buf = NULL;
		return wn_err_from_uv(rc);
	}
	s->reading = true;
	return 0;
}

int wn_sock_write_now(struct wn_sock *s, const uint8_t *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int rc;

	if (!s->live || !s->connected)
		return WN_EINVAL;
	rc = uv_try_write(&s->h.stream, &b, 1);
	if (rc == UV_EAGAIN || (rc >= 0 && (size_t)rc < len))
		return WN_EAGAIN;
	return rc < 0 ? wn_err_from_uv(rc) : 0;
}

/* ---- inspecting ------------------------------------------------------- */

int wn_sock_pending_error(struct wn_sock *s)
{
	uv_os_fd_t fd;
	int err = 0;
	socklen_t len = sizeof(err);

	if (s->kind != WN_SOCK_TCP || uv_fileno(&s->h.handle, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return 0;
	return err ? -err : 0;
}

int wn_sock_addrs(struct wn_sock *s, struct sockaddr_storage *local,
                  struct sockaddr_storage *peer)
{
	int len;

	if (s->kind != WN_SOCK_TCP || !s->live)
		return WN_EINVAL;
	len = sizeof(*local);
	if (local &&
	    uv_tcp_getsockname(&s->h.tcp, (struct sockaddr *)local, &len) != 0)
		return WN_EINVAL;
	len = sizeof(*peer);
	if (peer &&
	    uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)peer, &len) != 0)
		return WN_EINVAL;
	return 0;
}

void wn_sock_peer_text(struct wn_sock *s, char *buf, size_t cap)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	const void *addr;
	uint16_t port;

	snprintf(buf, cap, "%s", s->kind == WN_SOCK_TCP ? "tcp" : "unix");
	if (s->kind != WN_SOCK_TCP ||
	    uv_tcp_getpeername(&s->h.tcp, (struct sockaddr *)&ss, &len) != 0)
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
