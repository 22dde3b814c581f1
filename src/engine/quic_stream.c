/* The QUIC engine's tunnel streams: the wn_stream operations, a stream's
 * bookkeeping (its send queue, readiness for the write pass, the deferred
 * close) and, on the server, the stream header as it arrives. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quic_int.h"
#include "util/err.h"

/* ---- streams: bookkeeping -------------------------------------------- */

static void stream_deferred(struct wn_deferred *node)
{
	struct qstream *qs = wn_container_of(node, struct qstream, dnode);
	if (!qs->released && qs->base.h.on_closed)
		qs->base.h.on_closed(qs->base.h.ctx, &qs->base, qs->close_err);
	wn_bufq_free(&qs->sendq);
	free(qs);
}

/* Ends a stream for good: unlinks it and reports on_closed(err) from the
 * loop, never from inside the caller. After this the stream touches no
 * connection. */
static void stream_finish(struct qstream *qs, int err)
{
	if (qs->closed)
		return;
	qs->closed = 1;
	qs->close_err = err;
	if (wn_list_linked(&qs->rlink))
		wn_list_del(&qs->rlink);
	if (wn_list_linked(&qs->link))
		wn_list_del(&qs->link);
	if (qs->qc && qs->sid >= 0 && qs->qc->conn)
		ngtcp2_conn_set_stream_user_data(qs->qc->conn, qs->sid, NULL);
	qs->qc = NULL;
	qs->ep->stats.streams_closed++;
	wn_loop_defer(qs->ep->o.loop, &qs->dnode, stream_deferred);
}

void wn__qstream_fail(struct qstream *qs, int err)
{
	stream_finish(qs, err);
}

int wn__qstream_has_output(const struct qstream *qs)
{
	return wn_bufq_len(&qs->sendq) > qs->sent ||
	       (qs->fin_wanted && !qs->fin_sent);
}

void wn__qstream_mark_ready(struct qstream *qs)
{
	if (qs->closed || !qs->qc || qs->sid < 0)
		return;
	if (!wn_list_linked(&qs->rlink) && wn__qstream_has_output(qs))
		wn_list_add_tail(&qs->qc->ready, &qs->rlink);
	wn__qconn_schedule(qs->qc);
}

/* ---- streams: the tunnel API ------------------------------------------ */

static struct qstream *QS(struct wn_stream *s)
{
	return (struct qstream *)s;
}

static ssize_t qs_write(struct wn_stream *s, const uint8_t *data, size_t len)
{
	struct qstream *qs = QS(s);
	if (qs->closed || qs->fin_wanted)
		return WN_ECLOSED;
	ssize_t n = wn_bufq_write(&qs->sendq, data, len);
	if (n == WN_EAGAIN)
		n = 0;
	if (n < 0)
		return n;
	if ((size_t)n < len)
		qs->want_writable = 1;
	if (n > 0)
		wn__qstream_mark_ready(qs);
	return n;
}

static ssize_t qs_reserve(struct wn_stream *s, uint8_t **ptr)
{
	struct qstream *qs = QS(s);
	if (qs->closed || qs->fin_wanted)
		return WN_ECLOSED;
	ssize_t n = wn_bufq_reserve(&qs->sendq, ptr);
	if (n == WN_EAGAIN || n == 0) {
		qs->want_writable = 1;
		return 0;
	}
	return n;
}

static int qs_commit(struct wn_stream *s, size_t n)
{
	struct qstream *qs = QS(s);
	if (qs->closed)
		return WN_ECLOSED;
	int rc = wn_bufq_commit(&qs->sendq, n);
	if (rc == 0 && n > 0)
		wn__qstream_mark_ready(qs);
	return rc;
}

void wn__qstream_consumed(struct wn_stream *s, size_t n)
{
	struct qstream *qs = QS(s);
	if (qs->closed || !qs->qc || qs->sid < 0 || n == 0)
		return;
	ngtcp2_conn_extend_max_stream_offset(qs->qc->conn, qs->sid, n);
	ngtcp2_conn_extend_max_offset(qs->qc->conn, n);
	wn__qconn_schedule(qs->qc);
}

static int qs_shutdown(struct wn_stream *s)
{
	struct qstream *qs = QS(s);
	if (qs->closed)
		return WN_ECLOSED;
	qs->fin_wanted = 1;
	wn__qstream_mark_ready(qs);
	return 0;
}

static void qs_reset(struct wn_stream *s, int err)
{
	struct qstream *qs = QS(s);
	if (qs->closed)
		return;
	if (!qs->qc || qs->sid < 0) {
		stream_finish(qs, err);
		return;
	}
	/* stream_close follows once ngtcp2 has sent RESET_STREAM and
	 * STOP_SENDING; it reports err. */
	qs->close_err = err;
	ngtcp2_conn_shutdown_stream(qs->qc->conn, qs->sid, (uint64_t)err);
	wn__qconn_schedule(qs->qc);
}

static void qs_release(struct wn_stream *s)
{
	struct qstream *qs = QS(s);
	qs->released = 1;
	memset(&qs->base.h, 0, sizeof(qs->base.h));
	if (qs->closed)
		return;
	if (!qs->fin_wanted) {
		qs_reset(s, WN_STREAM_ABORTED);
	} else if (!qs->eof && qs->qc && qs->sid >= 0) {
		/* Our side finishes with its FIN; nobody reads theirs. */
		ngtcp2_conn_shutdown_stream_read(qs->qc->conn, qs->sid,
		                                 WN_STREAM_ABORTED);
		wn__qconn_schedule(qs->qc);
	}
}

static const struct wn_stream_ops qstream_ops = {
    .write = qs_write,
    .reserve = qs_reserve,
    .commit = qs_commit,
    .consumed = wn__qstream_consumed,
    .shutdown = qs_shutdown,
    .reset = qs_reset,
    .release = qs_release,
};

struct qstream *wn__qstream_new(struct qep *ep,
                                const struct wn_endpoint *target,
                                unsigned flags,
                                const struct wn_stream_handler *h)
{
	struct qstream *qs = calloc(1, sizeof(*qs));
	if (!qs)
		return NULL;
	qs->ep = ep;
	qs->base.ops = &qstream_ops;
	if (h)
		qs->base.h = *h;
	qs->base.id = ++ep->stream_seq;
	qs->sid = -1;
	if (wn_bufq_init(&qs->sendq, WN_BUFQ_CHUNK_DEFAULT,
	                 ep->o.stream_send_limit) != 0) {
		free(qs);
		return NULL;
	}
	if (target) {
		uint8_t hdr[WN_STREAMHDR_MAX];
		int n =
		    wn_streamhdr_encode_flags(target, flags, hdr, sizeof(hdr));
		if (n < 0 || wn_bufq_write(&qs->sendq, hdr, (size_t)n) != n) {
			wn_bufq_free(&qs->sendq);
			free(qs);
			return NULL;
		}
	}
	qs->hdr_done = 1; /* only server-side streams parse a header */
	qs->opened_ms = wn__quic_now_ms(ep);
	ep->stats.streams_opened++;
	return qs;
}

int wn__qstream_attach(struct qconn *qc, struct qstream *qs)
{
	int64_t sid;
	int rv = ngtcp2_conn_open_bidi_stream(qc->conn, &sid, qs);
	if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
		return WN_EAGAIN;
	if (rv != 0)
		return WN_EINTERNAL;
	qs->sid = sid;
	qs->qc = qc;
	if (wn_list_linked(&qs->link))
		wn_list_del(&qs->link);
	wn_list_add_tail(&qc->streams, &qs->link);
	wn__qstream_mark_ready(qs);
	return 0;
}

/* Server side: the first bytes of a client stream are its header. Returns
 * how many of data's bytes were header, or -1 after resetting the stream. */
ssize_t wn__qstream_take_header(struct qconn *qc, struct qstream *qs,
                                const uint8_t *data, size_t len)
{
	struct wn_endpoint target;
	int dflt = 0;
	unsigned flags = 0;
	size_t used = 0;
	int hl = wn_streamhdr_take(&qs->hdr, data, len, &used, &target, &dflt,
	                           &flags);
	if (hl == WN_EAGAIN)
		return (ssize_t)len;
	if (hl < 0) {
		WN_LOG_RL(qc->ep->o.log, &qc->ep->rl_err,
		          wn__quic_now_ms(qc->ep), WN_LOG_INFO, "sock",
		          "stream %llu from %s: malformed header",
		          (unsigned long long)qs->base.id, qc->tunnel.peer_id);
		qs_reset(&qs->base, WN_STREAM_BAD_HEADER);
		return -1;
	}
	qs->hdr_done = 1;
	/* Header bytes never reach the front end: credit them now. */
	ngtcp2_conn_extend_max_stream_offset(qc->conn, qs->sid, (uint64_t)hl);
	ngtcp2_conn_extend_max_offset(qc->conn, (uint64_t)hl);
	qs->base.hdr_flags = flags;
	qc->ep->ah.on_stream(qc->ep->ah.ctx, &qc->tunnel, &qs->base,
	                     dflt ? NULL : &target);
	if (qs->closed || qs->close_err)
		return -1;
	if (!qs->base.h.on_data) {
		qs_reset(&qs->base, WN_STREAM_INTERNAL);
		return -1;
	}
	return (ssize_t)used;
}
