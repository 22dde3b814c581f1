/* A UDP socket with recvmmsg/sendmmsg batching on the loop. See dgram.h. */
#include "io/dgram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "util/container.h"
#include "util/err.h"

#define LOG_COMP "dgram"
/* recvmmsg rounds per readiness event, so one busy socket cannot starve
 * the rest of the loop. */
#define RECV_ROUNDS 8

struct wn_dgram_rx {
	struct mmsghdr msg[WN_DGRAM_BATCH];
	struct iovec iov[WN_DGRAM_BATCH];
	struct sockaddr_storage name[WN_DGRAM_BATCH];
	uint8_t buf[WN_DGRAM_BATCH][WN_DGRAM_SLOT];
};

/* The send batch of a batch_send socket. */
struct dgram_tx {
	struct mmsghdr msg[WN_DGRAM_BATCH];
	struct iovec iov[WN_DGRAM_BATCH];
	struct sockaddr_storage name[WN_DGRAM_BATCH];
	uint8_t buf[WN_DGRAM_BATCH][WN_DGRAM_SLOT];
	unsigned n;
};

struct wn_dgram_sock {
	struct wn_loop *loop;
	struct wn_log *log;
	const char *name;
	int fd;
	bool connected;
	bool closing;
	uv_poll_t poll;
	struct wn_dgram_rx *rx;
	struct dgram_tx *tx; /* NULL without batch_send */
	struct wn_deferred flush_dn, free_dn;
	wn_dgram_recv_fn on_recv;
	void *ctx;
	struct sockaddr_storage local;
	struct wn_dgram_stats stats;
	struct wn_ratelimit rl;
};

int wn_dgram_rx_new(struct wn_dgram_rx **out)
{
	struct wn_dgram_rx *rx = calloc(1, sizeof(*rx));
	unsigned i;

	if (!rx)
		return WN_ENOMEM;
	for (i = 0; i < WN_DGRAM_BATCH; i++) {
		rx->iov[i].iov_base = rx->buf[i];
		rx->iov[i].iov_len = WN_DGRAM_SLOT;
		rx->msg[i].msg_hdr.msg_iov = &rx->iov[i];
		rx->msg[i].msg_hdr.msg_iovlen = 1;
		rx->msg[i].msg_hdr.msg_name = &rx->name[i];
	}
	*out = rx;
	return 0;
}

void wn_dgram_rx_free(struct wn_dgram_rx *rx)
{
	free(rx);
}

static bool soft_error(int e)
{
	/* ICMP errors of earlier sends, and transient path errors: the
	 * socket stays usable. */
	return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH ||
	       e == EHOSTDOWN || e == ENETDOWN || e == EPERM || e == EMSGSIZE;
}

static void do_recv(struct wn_dgram_sock *s)
{
	struct wn_dgram_rx *rx = s->rx;
	unsigned round, i;
	int n;

	for (round = 0; round < RECV_ROUNDS && !s->closing; round++) {
		for (i = 0; i < WN_DGRAM_BATCH; i++) {
			rx->msg[i].msg_hdr.msg_namelen = sizeof(rx->name[i]);
			rx->msg[i].msg_hdr.msg_flags = 0;
			rx->msg[i].msg_len = 0;
		}
		s->stats.recv_calls++;
		n = recvmmsg(s->fd, rx->msg, WN_DGRAM_BATCH, 0, NULL);
		if (n < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			if (e == EAGAIN || e == EWOULDBLOCK)
				break;
			WN_LOG_RL(s->log, &s->rl, wn_loop_now_ms(s->loop),
			          WN_LOG_DEBUG, LOG_COMP, "%s: recv: %s",
			          s->name, strerror(e));
			if (soft_error(e))
				continue;
			break;
		}
		for (i = 0; i < (unsigned)n && !s->closing; i++) {
			struct msghdr *m = &rx->msg[i].msg_hdr;
			bool trunc = (m->msg_flags & MSG_TRUNC) != 0;
			size_t len = rx->msg[i].msg_len;

			s->stats.recv++;
			s->stats.recv_bytes += len;
			s->on_recv(s->ctx, rx->buf[i],
			           len > WN_DGRAM_SLOT ? WN_DGRAM_SLOT : len,
			           trunc, &rx->name[i], m->msg_namelen);
		}
		if ((unsigned)n < WN_DGRAM_BATCH)
			break; /* drained: save the EAGAIN round trip */
	}
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct wn_dgram_sock *s = p->data;

	if (s->closing)
		return;
	if (status < 0) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		/* libuv stops the handle on POLLERR (a pending socket
		 * error, such as a port unreachable): clear it, read on. */
		(void)getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		(void)uv_poll_start(&s->poll, UV_READABLE, on_poll);
		return;
	}
	if (events & UV_READABLE)
		do_recv(s);
}

static void flush(struct wn_dgram_sock *s)
{
	struct dgram_tx *tx = s->tx;
	unsigned done = 0, i;
	int n;

	while (done < tx->n) {
		s->stats.send_calls++;
		n = sendmmsg(s->fd, tx->msg + done, tx->n - done, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				WN_LOG_RL(s->log, &s->rl,
				          wn_loop_now_ms(s->loop), WN_LOG_DEBUG,
				          LOG_COMP, "%s: send: %s", s->name,
				          strerror(errno));
			/* This one is lost; the rest still go. */
			s->stats.send_dropped++;
			done++;
			continue;
		}
		for (i = done; i < done + (unsigned)n; i++) {
			s->stats.sent++;
			s->stats.sent_bytes += tx->iov[i].iov_len;
		}
		done += (unsigned)n;
	}
	tx->n = 0;
}

static void on_flush(struct wn_deferred *dn)
{
	struct wn_dgram_sock *s =
	    wn_container_of(dn, struct wn_dgram_sock, flush_dn);

	if (!s->closing)
		flush(s);
}

int wn_dgram_send(struct wn_dgram_sock *s, const uint8_t *data, size_t len,
                  const struct sockaddr *to, socklen_t tolen)
{
	struct dgram_tx *tx = s->tx;
	ssize_t r;
	unsigned i;

	if (len > WN_DGRAM_SLOT)
		return WN_EMSGSIZE;
	if (s->closing)
		return WN_ECLOSED;
	if (!tx) {
		r = to ? sendto(s->fd, data, len, 0, to, tolen)
		       : send(s->fd, data, len, 0);
		s->stats.send_calls++;
		if (r < 0) {
			s->stats.send_dropped++;
			return WN_EAGAIN;
		}
		s->stats.sent++;
		s->stats.sent_bytes += len;
		return 0;
	}
	i = tx->n++;
	memcpy(tx->buf[i], data, len);
	tx->iov[i].iov_len = len;
	if (to && tolen <= sizeof(tx->name[i])) {
		memcpy(&tx->name[i], to, tolen);
		tx->msg[i].msg_hdr.msg_name = &tx->name[i];
		tx->msg[i].msg_hdr.msg_namelen = tolen;
	} else {
		tx->msg[i].msg_hdr.msg_name = NULL;
		tx->msg[i].msg_hdr.msg_namelen = 0;
	}
	if (tx->n == WN_DGRAM_BATCH)
		flush(s);
	else
		wn_loop_defer(s->loop, &s->flush_dn, on_flush);
	return 0;
}

static void free_sock(struct wn_deferred *dn)
{
	struct wn_dgram_sock *s =
	    wn_container_of(dn, struct wn_dgram_sock, free_dn);

	free(s->tx);
	free(s);
}

static void on_closed(uv_handle_t *h)
{
	struct wn_dgram_sock *s = h->data;

	close(s->fd);
	/* Deferred (in order after a pending flush, which sees closing and
	 * does nothing), so no deferred node of ours outlives the memory. */
	wn_loop_defer(s->loop, &s->free_dn, free_sock);
}

void wn_dgram_close(struct wn_dgram_sock *s)
{
	if (s->closing)
		return;
	s->closing = true;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, on_closed);
}

int wn_dgram_open(struct wn_loop *loop, struct wn_log *log,
                  const struct wn_dgram_opts *o, struct wn_dgram_sock **out)
{
	struct wn_dgram_sock *s = calloc(1, sizeof(*s));
	socklen_t sl;
	unsigned i;
	int rc;

	if (!s)
		return WN_ENOMEM;
	s->loop = loop;
	s->log = log;
	s->name = o->name ? o->name : "udp";
	s->rx = o->rx;
	s->on_recv = o->on_recv;
	s->ctx = o->ctx;
	s->rl = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 5);
	wn_deferred_init(&s->flush_dn);
	wn_deferred_init(&s->free_dn);
	if (o->batch_send) {
		s->tx = calloc(1, sizeof(*s->tx));
		if (!s->tx) {
			free(s);
			return WN_ENOMEM;
		}
		for (i = 0; i < WN_DGRAM_BATCH; i++) {
			s->tx->iov[i].iov_base = s->tx->buf[i];
			s->tx->msg[i].msg_hdr.msg_iov = &s->tx->iov[i];
			s->tx->msg[i].msg_hdr.msg_iovlen = 1;
		}
	}
	s->fd = socket(o->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = wn_err_from_errno(errno);
		goto fail;
	}
	if (o->bind && bind(s->fd, o->bind, o->bind_len) < 0) {
		rc = wn_err_from_errno(errno);
		goto fail_fd;
	}
	if (o->peer && connect(s->fd, o->peer, o->peer_len) < 0) {
		rc = wn_err_from_errno(errno);
		goto fail_fd;
	}
	s->connected = o->peer != NULL;
	sl = sizeof(s->local);
	(void)getsockname(s->fd, (struct sockaddr *)&s->local, &sl);
	rc = uv_poll_init_socket(wn_loop_uv(loop), &s->poll, s->fd);
	if (rc < 0) {
		rc = wn_err_from_uv(rc);
		goto fail_fd;
	}
	s->poll.data = s;
	rc = uv_poll_start(&s->poll, UV_READABLE, on_poll);
	if (rc < 0) {
		/* The handle is live: closing it frees the socket. */
		wn_dgram_close(s);
		return wn_err_from_uv(rc);
	}
	*out = s;
	return 0;

fail_fd:
	close(s->fd);
fail:
	free(s->tx);
	free(s);
	return rc;
}

int wn_dgram_sockname(const struct wn_dgram_sock *s,
                      struct sockaddr_storage *ss)
{
	*ss = s->local;
	return 0;
}

const struct wn_dgram_stats *wn_dgram_get_stats(const struct wn_dgram_sock *s)
{
	return &s->stats;
}
