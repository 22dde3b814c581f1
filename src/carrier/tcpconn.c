/* One TCP connection of a tcp or tls carrier (tcpconn.h). */
#include "carrier/tcpconn.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "carrier/carrier.h"
#include "carrier/tcp_int.h"
#include "io/sock.h"
#include "util/err.h"

static void close_handle(struct wn_tcpconn *s);

/* Reports a failure found inside a wn_tcpconn_* call from the loop. */
static void fail_later(struct wn_deferred *d)
{
	struct wn_tcpconn *s =
	    (struct wn_tcpconn *)((char *)d -
	                          offsetof(struct wn_tcpconn, fail_node));

	if (s->closed)
		close_handle(s); /* the close waited for this node */
	else
		s->on_end(s, s->fail_err);
}

static void fail(struct wn_tcpconn *s, int err)
{
	if (s->closed || wn_deferred_pending(&s->fail_node))
		return;
	s->fail_err = err;
	wn_loop_defer(s->loop, &s->fail_node, fail_later);
}

int wn_tcpconn_init(struct wn_tcpconn *s, struct wn_loop *loop, size_t limit,
                    uint8_t *rbuf, size_t rcap)
{
	int rc;

	s->loop = loop;
	wn_deferred_init(&s->fail_node);
	s->rbuf = rbuf;
	s->rcap = rcap;
	s->born_ms = s->last_rx_ms = s->last_tx_ms = wn_loop_now_ms(loop);
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
	struct wn_tcpconn *s = h->data;

	(void)hint;
	buf->base = (char *)s->rbuf;
	buf->len = s->rcap;
}

static void tls_input(struct wn_tcpconn *s, const uint8_t *p, size_t n);

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct wn_tcpconn *s = st->data;

	(void)buf;
	if (s->closed)
		return;
	if (n > 0) {
		s->bytes_in += (size_t)n;
		s->last_rx_ms = wn_loop_now_ms(s->loop);
		s->tx_wait_ms = 0;
		if (s->tls)
			tls_input(s, s->rbuf, (size_t)n);
		else
			s->on_data(s, s->rbuf, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	s->on_end(s, n == UV_EOF ? WN_ECLOSED : wn_err_from_uv((int)n));
}

int wn_tcpconn_start(struct wn_tcpconn *s)
{
	int rc;

	uv_tcp_nodelay(&s->tcp, 1);
	/* Without keepalive a peer that vanished silently holds the
	 * connection (and its fd) for ever when nothing is sent on it. */
	(void)wn_sock_keepalive(&s->tcp, WN_TCP_KEEPALIVE_IDLE_S,
	                        WN_TCP_KEEPALIVE_INTVL_S, WN_TCP_KEEPALIVE_CNT);
	rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
	if (rc < 0)
		return wn_err_from_uv(rc);
	s->reading = true;
	return 0;
}

/* Room for plaintext under TLS leaves space for record overhead (at most
 * 22 bytes per record of up to 16 KiB in TLS 1.3 with AES-GCM). */
#define TLS_SLACK(n) ((n) / 256 + 256)

size_t wn_tcpconn_space(const struct wn_tcpconn *s)
{
	size_t sp, staged;

	if (s->closed)
		return 0;
	sp = wn_bufq_space(&s->out);
	if (!s->tls)
		return sp;
	if (s->out.limit - sp > s->limit_nominal)
		return 0;
	sp = s->limit_nominal - (s->out.limit - sp);
	staged = wn_bufq_len(&s->plain) + TLS_SLACK(sp);
	return sp > staged ? sp - staged : 0;
}

static void kick(struct wn_tcpconn *s);

static void on_written(uv_write_t *req, int status)
{
	struct wn_tcpconn *s = req->data;

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
	if (s->end_when_flushed && wn_bufq_len(&s->out) == 0) {
		s->on_end(s, WN_ECLOSED);
		return;
	}
	if (s->want_drain && wn_bufq_space(&s->out) >= s->out.limit / 2) {
		s->want_drain = false;
		if (s->on_drain)
			s->on_drain(s);
	}
}

static void kick(struct wn_tcpconn *s)
{
	struct iovec iov[WN_TCPCONN_IOV];
	int n, i, rc;

	if (s->writing || s->closed || wn_bufq_len(&s->out) == 0)
		return;
	n = wn_bufq_peek_iov(&s->out, iov, WN_TCPCONN_IOV);
	s->wlen = 0;
	for (i = 0; i < n; i++) {
		s->wbufs[i] = uv_buf_init(iov[i].iov_base, iov[i].iov_len);
		s->wlen += iov[i].iov_len;
	}
	s->wreq.data = s;
	rc = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, s->wbufs, (unsigned)n,
	              on_written);
	if (rc < 0) {
		fail(s, wn_err_from_uv(rc));
		return;
	}
	s->writing = true;
}

void wn_tcpconn_put(struct wn_tcpconn *s, const void *p, size_t n)
{
	if (n == 0)
		return;
	wn_bufq_write(s->tls ? &s->plain : &s->out, p, n);
	s->last_tx_ms = wn_loop_now_ms(s->loop);
	if (s->tx_wait_ms == 0)
		s->tx_wait_ms = s->last_tx_ms;
}

/* Encrypts the staged plaintext into records (GnuTLS pushes them into the
 * write queue). */
static void tls_seal(struct wn_tcpconn *s)
{
	struct iovec iov;
	ssize_t r;

	while (!s->closed && s->hs_done && wn_bufq_len(&s->plain) > 0) {
		if (wn_bufq_peek_iov(&s->plain, &iov, 1) != 1)
			break;
		r = gnutls_record_send(s->tls, iov.iov_base,
		                       iov.iov_len > 16384 ? 16384
		                                           : iov.iov_len);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r < 0) {
			fail(s, WN_ECRYPTO);
			return;
		}
		wn_bufq_consume(&s->plain, (size_t)r);
	}
}

void wn_tcpconn_flush(struct wn_tcpconn *s)
{
	if (s->tls)
		tls_seal(s);
	kick(s);
}

size_t wn_tcpconn_queued(const struct wn_tcpconn *s)
{
	return wn_bufq_len(&s->out) + (s->tls ? wn_bufq_len(&s->plain) : 0);
}

int wn_tcpconn_ping(struct wn_tcpconn *s)
{
	uint8_t hdr[WN_FRAME_HDR];

	if (s->closed)
		return WN_ECLOSED;
	if (wn_tcpconn_space(s) < sizeof(hdr))
		return WN_EAGAIN;
	wn_put_u16be(hdr, WN_FRAME_PAD_BIT);
	wn_tcpconn_put(s, hdr, sizeof(hdr));
	wn_tcpconn_flush(s);
	return 0;
}

int wn_tcpconn_write(struct wn_tcpconn *s, const void *p, size_t n)
{
	if (s->closed)
		return WN_ECLOSED;
	if (wn_tcpconn_space(s) < n) {
		s->want_drain = true;
		return WN_EAGAIN;
	}
	wn_tcpconn_put(s, p, n);
	wn_tcpconn_flush(s);
	return 0;
}

/* ---- TLS ----------------------------------------------------------------
 * GnuTLS reads through pull (the bytes of the current socket read, then
 * EAGAIN: it keeps partial records itself) and writes through push (into
 * the write queue, which was sized with room for record overhead). */

static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *buf, size_t n)
{
	struct wn_tcpconn *s = ptr;

	if (s->pull_n == 0) {
		gnutls_transport_set_errno(s->tls, EAGAIN);
		return -1;
	}
	if (n > s->pull_n)
		n = s->pull_n;
	memcpy(buf, s->pull_p, n);
	s->pull_p += n;
	s->pull_n -= n;
	return (ssize_t)n;
}

static ssize_t tls_push(gnutls_transport_ptr_t ptr, const void *buf, size_t n)
{
	struct wn_tcpconn *s = ptr;

	if (wn_bufq_write(&s->out, buf, n) != (ssize_t)n) {
		gnutls_transport_set_errno(s->tls, ENOBUFS);
		return -1;
	}
	return (ssize_t)n;
}

int wn_tcpconn_tls(struct wn_tcpconn *s, gnutls_session_t tls, uint8_t *pbuf,
                   size_t pcap)
{
	/* The write queue takes ciphertext: its hard limit leaves room for
	 * record overhead beyond the nominal limit wn_tcpconn_space reports. */
	s->limit_nominal = s->out.limit;
	s->out.limit += TLS_SLACK(s->out.limit) + 16384 + 512;
	if (wn_bufq_init(&s->plain, WN_BUFQ_CHUNK_DEFAULT, s->limit_nominal) !=
	    0) {
		gnutls_deinit(tls);
		return WN_ENOMEM;
	}
	s->tls = tls;
	s->pbuf = pbuf;
	s->pcap = pcap;
	gnutls_transport_set_ptr(tls, s);
	gnutls_transport_set_pull_function(tls, tls_pull);
	gnutls_transport_set_push_function(tls, tls_push);
	return 0;
}

/* Drives the handshake. Returns 1 when done, 0 when it needs more input,
 * -1 after ending the connection. */
static int tls_handshake(struct wn_tcpconn *s)
{
	int rc;

	do
		rc = gnutls_handshake(s->tls);
	while (rc == GNUTLS_E_INTERRUPTED ||
	       (rc < 0 && rc != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(rc)));
	kick(s);
	if (s->closed)
		return -1;
	if (rc == GNUTLS_E_AGAIN)
		return 0;
	if (rc < 0) {
		s->on_end(s, WN_ECRYPTO);
		return -1;
	}
	s->hs_done = true;
	if (s->on_tls_up)
		s->on_tls_up(s);
	return s->closed ? -1 : 1;
}

void wn_tcpconn_tls_begin(struct wn_tcpconn *s)
{
	s->pull_n = 0;
	tls_handshake(s);
}

static void tls_input(struct wn_tcpconn *s, const uint8_t *p, size_t n)
{
	ssize_t r;

	if (!s->first_read_done) {
		s->first_read_done = true;
		/* A TLS connection starts with a handshake record (22). */
		if (p[0] != 0x16 && s->on_not_tls) {
			s->on_not_tls(s, p, n);
			return;
		}
	}
	s->pull_p = p;
	s->pull_n = n;
	if (!s->hs_done && tls_handshake(s) <= 0)
		return;
	for (;;) {
		r = gnutls_record_recv(s->tls, s->pbuf, s->pcap);
		if (r > 0) {
			s->on_data(s, s->pbuf, (size_t)r);
			if (s->closed)
				return;
			continue;
		}
		if (r == GNUTLS_E_AGAIN)
			break;
		if (r == GNUTLS_E_INTERRUPTED ||
		    (r < 0 && !gnutls_error_is_fatal((int)r)))
			continue;
		s->on_end(s, r == 0 ? WN_ECLOSED : WN_ECRYPTO);
		return;
	}
	/* Post-handshake messages (tickets, key updates) may have queued
	 * output. */
	kick(s);
}

int wn_tcpconn_write_raw(struct wn_tcpconn *s, const void *p, size_t n)
{
	if (s->closed)
		return WN_ECLOSED;
	if (wn_bufq_space(&s->out) < n)
		return WN_EAGAIN;
	wn_bufq_write(&s->out, p, n);
	kick(s);
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	struct wn_tcpconn *s = h->data;

	if (s->tls) {
		gnutls_deinit(s->tls);
		wn_bufq_free(&s->plain);
	}
	wn_bufq_free(&s->out);
	if (s->on_free)
		s->on_free(s);
}

static void close_handle(struct wn_tcpconn *s)
{
	/* A write still in flight is cancelled by uv_close; its callback
	 * runs before the close callback and sees `closed`. */
	uv_close((uv_handle_t *)&s->tcp, on_closed);
}

void wn_tcpconn_close(struct wn_tcpconn *s)
{
	if (s->closed)
		return;
	s->closed = true;
	/* A pending failure report holds the memory: it closes the handle
	 * when it runs (the deferred list runs before close callbacks, but
	 * a node deferred from a deferred function waits an iteration). */
	if (!wn_deferred_pending(&s->fail_node))
		close_handle(s);
}

int wn_tcpconn_send_batch(struct wn_tcpconn *s, const uint8_t *buf, size_t len,
                          size_t seg, uint32_t pad_max, uint8_t *pad,
                          struct wn_carrier_stats *st)
{
	uint8_t hdr[WN_FRAME_HDR];
	size_t off, n;

	if (wn_tcpconn_space(s) <
	    wn_tcp_framed_len(len, seg) + WN_TCP_PAD_SLACK(pad_max)) {
		s->want_drain = true;
		return WN_EAGAIN;
	}
	for (off = 0; off < len; off += n) {
		n = len - off < seg ? len - off : seg;
		wn_put_u16be(hdr, (uint16_t)n);
		wn_tcpconn_put(s, hdr, sizeof(hdr));
		wn_tcpconn_put(s, buf + off, n);
		st->pkts_out++;
	}
	st->bytes_out += len;
	st->send_calls++;
	if (pad_max) {
		uint32_t np = randombytes_uniform(pad_max + 1);
		wn_put_u16be(hdr, (uint16_t)(WN_FRAME_PAD_BIT | np));
		randombytes_buf(pad, np);
		wn_tcpconn_put(s, hdr, sizeof(hdr));
		wn_tcpconn_put(s, pad, np);
	}
	wn_tcpconn_flush(s);
	return 0;
}
