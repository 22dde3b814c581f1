/* One TCP connection of a stream carrier (sconn.h). */
#include "carrier/sconn.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

int sconn_init(struct sconn *s, struct wn_loop *loop, size_t limit,
               uint8_t *rbuf, size_t rcap)
{
	int rc;

	s->loop = loop;
	s->rbuf = rbuf;
	s->rcap = rcap;
	s->born_ms = s->last_rx_ms = wn_loop_now_ms(loop);
	if (wn_bufq_init(&s->out, WN_BUFQ_CHUNK_DEFAULT, limit) != 0)
		return WN_ENOMEM;
	rc = uv_tcp_init(wn_loop_uv(loop), &s->tcp);
	if (rc < 0) {
		wn_bufq_free(&s->out);
		return wn_err_from_uv(rc);
	}
	s->tcp.data = s;
	return 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct sconn *s = h->data;

	(void)hint;
	buf->base = (char *)s->rbuf;
	buf->len = s->rcap;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct sconn *s = st->data;

	(void)buf;
	if (s->closed)
		return;
	if (n > 0) {
		s->bytes_in += (size_t)n;
		s->last_rx_ms = wn_loop_now_ms(s->loop);
		s->tx_wait_ms = 0;
		s->on_data(s, s->rbuf, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	s->on_end(s, n == UV_EOF ? WN_ECLOSED : wn_err_from_uv((int)n));
}

int sconn_start(struct sconn *s)
{
	int rc;

	uv_tcp_nodelay(&s->tcp, 1);
	rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
	if (rc < 0)
		return wn_err_from_uv(rc);
	s->reading = true;
	return 0;
}

size_t sconn_space(const struct sconn *s)
{
	return s->closed ? 0 : wn_bufq_space(&s->out);
}

static void kick(struct sconn *s);

static void on_written(uv_write_t *req, int status)
{
	struct sconn *s = req->data;

	s->writing = false;
	if (s->closed)
		return;
	if (status < 0) {
		s->on_end(s, wn_err_from_uv(status));
		return;
	}
	wn_bufq_consume(&s->out, s->wlen);
	s->bytes_out += s->wlen;
	s->wlen = 0;
	kick(s);
	if (s->closed)
		return;
	if (s->want_drain && wn_bufq_space(&s->out) >= s->out.limit / 2) {
		s->want_drain = false;
		if (s->on_drain)
			s->on_drain(s);
	}
}

static void kick(struct sconn *s)
{
	struct iovec iov[SCONN_IOV];
	int n, i, rc;

	if (s->writing || s->closed || wn_bufq_len(&s->out) == 0)
		return;
	n = wn_bufq_peek_iov(&s->out, iov, SCONN_IOV);
	s->wlen = 0;
	for (i = 0; i < n; i++) {
		s->wbufs[i] = uv_buf_init(iov[i].iov_base, iov[i].iov_len);
		s->wlen += iov[i].iov_len;
	}
	s->wreq.data = s;
	rc = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, s->wbufs, (unsigned)n,
	              on_written);
	if (rc < 0) {
		s->on_end(s, wn_err_from_uv(rc));
		return;
	}
	s->writing = true;
}

void sconn_put(struct sconn *s, const void *p, size_t n)
{
	if (n == 0)
		return;
	wn_bufq_write(&s->out, p, n);
	if (s->tx_wait_ms == 0)
		s->tx_wait_ms = wn_loop_now_ms(s->loop);
}

void sconn_flush(struct sconn *s)
{
	kick(s);
}

int sconn_write(struct sconn *s, const void *p, size_t n)
{
	if (s->closed)
		return WN_ECLOSED;
	if (wn_bufq_space(&s->out) < n) {
		s->want_drain = true;
		return WN_EAGAIN;
	}
	sconn_put(s, p, n);
	kick(s);
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	struct sconn *s = h->data;

	wn_bufq_free(&s->out);
	if (s->on_free)
		s->on_free(s);
}

void sconn_close(struct sconn *s)
{
	if (s->closed)
		return;
	s->closed = true;
	/* A write still in flight is cancelled by uv_close; its callback
	 * runs before the close callback and sees `closed`. */
	uv_close((uv_handle_t *)&s->tcp, on_closed);
}
