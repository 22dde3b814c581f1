/* The QUIC engine's tunnel streams: the transport under the stream base
 * (stream_base.h owns their semantics: half-close, the release and reset
 * rules, the deferred close and, on the server, the stream header), a
 * stream's send queue and its readiness for the write pass. */
#include <stdlib.h>

#include "engine/quic_int.h"
#include "util/err.h"

/* ---- streams: the transport under the stream base ------------------- */

static struct qstream *QS(struct wn_stream *s)
{
	return (struct qstream *)s;
}

void wn__qstream_fail(struct qstream *qs, int err)
{
	wn_sb_finish(&qs->base, err);
}

int wn__qstream_has_output(const struct qstream *qs)
{
	return wn_bufq_len(&qs->sendq) > qs->sent ||
	       (qs->fin_wanted && !qs->fin_sent);
}

void wn__qstream_mark_ready(struct qstream *qs)
{
	if (!qs->qc || qs->sid < 0)
		return;
	if (!wn_list_linked(&qs->rlink) && wn__qstream_has_output(qs))
		wn_list_add_tail(&qs->qc->ready, &qs->rlink);
	wn__qconn_schedule(qs->qc);
}

static ssize_t qt_write(struct wn_stream *s, const uint8_t *data, size_t len)
{
	struct qstream *qs = QS(s);
	ssize_t n = wn_bufq_write(&qs->sendq, data, len);
	if (n == WN_EAGAIN)
		n = 0;
	if (n > 0)
		wn__qstream_mark_ready(qs);
	return n;
}

static ssize_t qt_reserve(struct wn_stream *s, uint8_t **ptr)
{
	ssize_t n = wn_bufq_reserve(&QS(s)->sendq, ptr);
	return n == WN_EAGAIN ? 0 : n;
}

static int qt_commit(struct wn_stream *s, size_t n)
{
	struct qstream *qs = QS(s);
	int rc = wn_bufq_commit(&qs->sendq, n);
	if (rc == 0 && n > 0)
		wn__qstream_mark_ready(qs);
	return rc;
}

static void qt_credit(struct wn_stream *s, size_t n)
{
	struct qstream *qs = QS(s);
	if (!qs->qc || qs->sid < 0)
		return;
	ngtcp2_conn_extend_max_stream_offset(qs->qc->conn, qs->sid, n);
	ngtcp2_conn_extend_max_offset(qs->qc->conn, n);
	wn__qconn_schedule(qs->qc);
}

static void qt_fin(struct wn_stream *s)
{
	struct qstream *qs = QS(s);
	/* wn_sb_fin_done comes with stream_close, once the FIN is acked. */
	qs->fin_wanted = 1;
	wn__qstream_mark_ready(qs);
}

static void qt_reset(struct wn_stream *s, int err)
{
	struct qstream *qs = QS(s);
	if (!qs->qc || qs->sid < 0)
		return;
	/* RESET_STREAM and STOP_SENDING; ngtcp2 closes the stream once
	 * they are through, without us (detached). */
	ngtcp2_conn_shutdown_stream(qs->qc->conn, qs->sid, (uint64_t)err);
	wn__qconn_schedule(qs->qc);
}

static void stop_reading(struct qstream *qs, int err)
{
	ngtcp2_conn_shutdown_stream_read(qs->qc->conn, qs->sid, (uint64_t)err);
	wn__qconn_schedule(qs->qc);
}

static void qt_stop(struct wn_stream *s, int err)
{
	struct qstream *qs = QS(s);
	(void)err;
	/* STOP_SENDING once our FIN has left (after_write), as KCP sends
	 * its RST after the FIN: sent earlier, on a stream the peer has not
	 * seen yet, it cost the stream its data. */
	qs->stop_owed = 1;
	if (qs->qc && qs->sid >= 0 && qs->fin_sent) {
		qs->stop_owed = 0;
		stop_reading(qs, WN_STREAM_ABORTED);
	}
}

static void qt_detach(struct wn_stream *s)
{
	struct qstream *qs = QS(s);
	struct qconn *qc = qs->qc;
	if (wn_list_linked(&qs->rlink))
		wn_list_del(&qs->rlink);
	if (wn_list_linked(&qs->link))
		wn_list_del(&qs->link);
	if (qc && qs->sid >= 0 && qc->conn && qc->state != QC_DEAD &&
	    qs->sent > 0) {
		/* ngtcp2 may still resend what it has of sendq (it keeps
		 * pointers, not copies): keep it until the stream closes. The
		 * user data stays so that cb_stream_close finds it; the base
		 * has ended, so every other callback ignores it. */
		qs->lingering = 1;
		wn_list_add_tail(&qc->lingering, &qs->link);
	} else if (qc && qs->sid >= 0 && qc->conn) {
		ngtcp2_conn_set_stream_user_data(qc->conn, qs->sid, NULL);
	}
	qs->qc = NULL;
	qs->ep->stats.streams_closed++;
}

void wn__qstream_unlinger(struct qstream *qs)
{
	wn_list_del(&qs->link);
	qs->lingering = 0;
	wn_bufq_free(&qs->sendq);
	if (qs->free_owed) {
		free(qs);
		return;
	}
	/* The base may hold it for the bytes it still counted (qt_queued):
	 * they are gone now, and so is the stream if its close has run. */
	wn_sb_data_gone(&qs->base);
}

static void qt_free(struct wn_stream *s)
{
	struct qstream *qs = QS(s);
	if (qs->lingering) {
		qs->free_owed = 1; /* wn__qstream_unlinger frees it */
		return;
	}
	wn_bufq_free(&qs->sendq);
	free(qs);
}

/* Asked by the base as a stream ends (it never syncs QUIC streams): a
 * lingering stream's send buffer stays counted in the send budget until
 * ngtcp2 lets go of it (wn__qstream_unlinger), as it is still memory the
 * peer holds us to; any other ended stream's is freed with it. */
static size_t qt_queued(const struct wn_stream *s)
{
	const struct qstream *qs = (const struct qstream *)s;
	return qs->lingering ? wn_bufq_len(&qs->sendq) : 0;
}

static uint64_t qt_now_ms(const struct wn_stream *s)
{
	return wn__quic_now_ms(((const struct qstream *)s)->ep);
}

static const struct wn_sb_transport qstream_transport = {
    .write = qt_write,
    .reserve = qt_reserve,
    .commit = qt_commit,
    .credit = qt_credit,
    .fin = qt_fin,
    .reset = qt_reset,
    .stop = qt_stop,
    .detach = qt_detach,
    .free = qt_free,
    .now_ms = qt_now_ms,
    .queued = qt_queued,
};

struct qstream *wn__qstream_new(struct qep *ep,
                                const struct wn_endpoint *target,
                                unsigned flags,
                                const struct wn_stream_handler *h)
{
	struct qstream *qs = calloc(1, sizeof(*qs));
	if (!qs)
		return NULL;
	/* Set up with the first stream, so that the endpoints' constructors
	 * need not know about the base. */
	if (!ep->senv.tp) {
		wn_sb_env_init(&ep->senv, &qstream_transport, ep->o.loop,
		               ep->o.log, ep->is_server ? &ep->ah : NULL);
		wn_sb_env_budget(&ep->senv, ep->o.session_buffer,
		                 ep->o.total_buffer);
		if (ep->is_server)
			wn_sb_env_keys(&ep->senv, ep->key_streams, ep->nclients,
			               ep->o.streams_per_key);
	}
	qs->ep = ep;
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
	/* Only server-side streams (h NULL) parse a header. */
	wn_sb_init(&qs->base, &ep->senv, NULL, h);
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
