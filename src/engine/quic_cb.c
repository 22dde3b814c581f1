/* The ngtcp2 callbacks of a QUIC connection: connection IDs, the
 * handshake, stream events (handed to the stream base, with the send
 * queues of quic_stream.c) and path validation. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "engine/quic_int.h"
#include "util/err.h"

static void hex8(const uint8_t *k, char out[17])
{
	static const char d[] = "0123456789abcdef";
	for (int i = 0; i < 8; i++) {
		out[2 * i] = d[k[i] >> 4];
		out[2 * i + 1] = d[k[i] & 15];
	}
	out[16] = '\0';
}

static void cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
	const struct qep *ep = ctx->native_handle;
	if (ep->o.rand)
		ep->o.rand(ep->o.rand_ctx, dest, len);
	else
		randombytes_buf(dest, len);
}

static int cb_get_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
                          size_t cidlen, void *user_data)
{
	(void)conn;
	struct qconn *qc = user_data;
	randombytes_buf(cid->data, cidlen);
	cid->datalen = cidlen;
	if (ngtcp2_crypto_generate_stateless_reset_token(
	        token, qc->ep->reset_secret, sizeof(qc->ep->reset_secret),
	        cid) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	if (qc->ep->is_server &&
	    wn_cidmap_add(&qc->ep->cids, cid->data, cid->datalen, qc) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int cb_remove_cid(ngtcp2_conn *conn, const ngtcp2_cid *cid,
                         void *user_data)
{
	(void)conn;
	struct qconn *qc = user_data;
	if (qc->ep->is_server &&
	    wn_cidmap_get(&qc->ep->cids, cid->data, cid->datalen) == qc)
		wn_cidmap_del(&qc->ep->cids, cid->data, cid->datalen);
	return 0;
}

static int cb_handshake_completed(ngtcp2_conn *conn, void *user_data)
{
	(void)conn;
	struct qconn *qc = user_data;
	if (!qc->peer_ok)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	qc->state = QC_UP;
	/* The client proved its key: tell the carrier (carrier.h). */
	if (qc->ep->is_server)
		wn_carrier_authenticated(
		    qc->carrier, (struct sockaddr *)&qc->remote, qc->rlen);
	char k[17];
	hex8(qc->peer_key, k);
	snprintf(qc->tunnel.peer_id, sizeof(qc->tunnel.peer_id), "%.8s", k);
	qc->ep->conn_up(qc->ep, qc);
	return 0;
}

static int cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t sid,
                               uint64_t offset, const uint8_t *data, size_t len,
                               void *user_data, void *stream_user_data)
{
	(void)conn;
	(void)offset;
	(void)sid;
	(void)user_data;
	struct qstream *qs = stream_user_data;
	if (!qs)
		return 0;
	/* The base takes the header off, delivers or discards the rest; the
	 * stream stays in memory until the loop frees it, even if a handler
	 * ended it. */
	wn_sb_recv(&qs->base, data, len);
	if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
		wn_sb_recv_fin(&qs->base);
	return 0;
}

static int cb_acked_stream_data_offset(ngtcp2_conn *conn, int64_t sid,
                                       uint64_t offset, uint64_t len,
                                       void *user_data, void *stream_user_data)
{
	(void)conn;
	(void)sid;
	(void)offset;
	(void)user_data;
	struct qstream *qs = stream_user_data;
	/* After the peer's stop our queued data was dropped. */
	if (!qs || qs->base.ended || qs->base.out == WN_SB_OUT_ABORTED)
		return 0;
	/* ngtcp2 reports acknowledged data contiguously from the start. */
	wn_bufq_consume(&qs->sendq, (size_t)len);
	qs->sent -= (size_t)len;
	wn_sb_sent(&qs->base, (size_t)len);
	if (wn_bufq_space(&qs->sendq) > 0)
		wn_sb_writable(&qs->base);
	return 0;
}

static int cb_stream_open(ngtcp2_conn *conn, int64_t sid, void *user_data)
{
	struct qconn *qc = user_data;
	if (!qc->ep->is_server || !ngtcp2_is_bidi_stream(sid)) {
		/* Clients take no streams; nobody uses uni streams yet. */
		ngtcp2_conn_shutdown_stream(conn, sid, WN_STREAM_DENIED);
		return 0;
	}
	struct qstream *qs = wn__qstream_new(qc->ep, NULL, 0, NULL);
	if (!qs) {
		ngtcp2_conn_shutdown_stream(conn, sid, WN_STREAM_INTERNAL);
		return 0;
	}
	qs->sid = sid;
	qs->qc = qc;
	qs->base.tunnel = &qc->tunnel; /* handed to the accept handler */
	wn_list_add_tail(&qc->streams, &qs->link);
	ngtcp2_conn_set_stream_user_data(conn, sid, qs);
	return 0;
}

/* An application error code from the wire as a stream error. */
static int wire_err(uint64_t code)
{
	return code > 0 && code <= 255 ? (int)code : WN_STREAM_ABORTED;
}

static int cb_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t sid,
                           uint64_t app_error_code, void *user_data,
                           void *stream_user_data)
{
	struct qconn *qc = user_data;
	struct qstream *qs = stream_user_data;
	qc->ep->stats.stream_pkts_lost +=
	    ngtcp2_conn_get_stream_loss_count(conn, sid);
	if (qc->ep->is_server && !ngtcp2_conn_is_local_stream(conn, sid))
		ngtcp2_conn_extend_max_streams_bidi(conn, 1);
	if (!qs)
		return 0;
	if (qs->lingering) {
		wn__qstream_unlinger(qs); /* ngtcp2 is done with its data */
		return 0;
	}
	if (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) {
		wn_sb_finish(&qs->base, qs->base.err
		                            ? qs->base.err
		                            : wire_err(app_error_code));
		return 0;
	}
	/* Both directions are through: our FIN is acknowledged. */
	wn_sb_fin_done(&qs->base);
	wn_sb_finish(&qs->base, qs->base.err);
	return 0;
}

static int cb_stream_reset(ngtcp2_conn *conn, int64_t sid, uint64_t final,
                           uint64_t app_error_code, void *user_data,
                           void *stream_user_data)
{
	(void)conn;
	(void)sid;
	(void) final;
	(void)user_data;
	struct qstream *qs = stream_user_data;
	if (qs)
		wn_sb_recv_reset(&qs->base, wire_err(app_error_code));
	return 0;
}

/* No stream_stop_sending callback: ngtcp2 0.12 calls it when our own
 * STOP_SENDING goes out (after ngtcp2_conn_shutdown_stream_read), not when
 * the peer's arrives. Treated as the peer's, it aborted our direction and
 * freed data still unacknowledged. The peer's STOP_SENDING has no callback
 * in 0.12: ngtcp2 answers it with RESET_STREAM itself, and the stream ends
 * in stream_close with the peer's code once both directions are done. */

static int cb_extend_max_stream_data(ngtcp2_conn *conn, int64_t sid,
                                     uint64_t max_data, void *user_data,
                                     void *stream_user_data)
{
	(void)conn;
	(void)sid;
	(void)max_data;
	(void)user_data;
	struct qstream *qs = stream_user_data;
	if (qs && !qs->base.ended) {
		qs->blocked_epoch = 0;
		wn__qstream_mark_ready(qs);
	}
	return 0;
}

static int cb_extend_max_local_streams_bidi(ngtcp2_conn *conn,
                                            uint64_t max_streams,
                                            void *user_data)
{
	(void)conn;
	(void)max_streams;
	struct qconn *qc = user_data;
	if (qc->state == QC_UP && qc->ep->streams_available)
		qc->ep->streams_available(qc->ep, qc);
	return 0;
}

static int cb_recv_datagram(ngtcp2_conn *conn, uint32_t flags,
                            const uint8_t *data, size_t len, void *user_data)
{
	/* No 0-RTT here (NGTCP2_DATAGRAM_FLAG_EARLY never comes); the flow
	 * base checks every message and drops what is malformed. */
	(void)conn;
	(void)flags;
	wn__qdgram_recv(user_data, data, len);
	return 0;
}
/* A validated path: when ngtcp2 moved the connection to another
 * carrier's path (a client's probe succeeded, or, on the server, the
 * client moved), that carrier is the connection's now. */
static int cb_path_validation(ngtcp2_conn *conn, uint32_t flags,
                              const ngtcp2_path *path,
                              ngtcp2_path_validation_result res,
                              void *user_data)
{
	struct qconn *qc = user_data;
	(void)flags;
	if (res != NGTCP2_PATH_VALIDATION_RESULT_SUCCESS || !path->user_data)
		return 0;
	/* The answer came under the connection's keys: the peer on that
	 * path is the client (carrier.h's authentication hint). */
	if (qc->ep->is_server)
		wn_carrier_authenticated(
		    path->user_data, (const struct sockaddr *)path->remote.addr,
		    (socklen_t)path->remote.addrlen);
	const ngtcp2_path *cur = ngtcp2_conn_get_path(conn);
	if (cur->user_data != path->user_data ||
	    path->user_data == qc->carrier ||
	    path->local.addrlen > sizeof(qc->local) ||
	    path->remote.addrlen > sizeof(qc->remote))
		return 0;
	qc->carrier = path->user_data;
	memcpy(&qc->local, path->local.addr, path->local.addrlen);
	qc->llen = (socklen_t)path->local.addrlen;
	memcpy(&qc->remote, path->remote.addr, path->remote.addrlen);
	qc->rlen = (socklen_t)path->remote.addrlen;
	if (qc->ep->path_moved)
		qc->ep->path_moved(qc->ep, qc, qc->carrier);
	return 0;
}

void wn__qconn_fill_callbacks(ngtcp2_callbacks *cb, int server)
{
	memset(cb, 0, sizeof(*cb));
	if (server) {
		cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
	} else {
		cb->client_initial = ngtcp2_crypto_client_initial_cb;
		cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
		cb->extend_max_local_streams_bidi =
		    cb_extend_max_local_streams_bidi;
	}
	cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
	cb->encrypt = ngtcp2_crypto_encrypt_cb;
	cb->decrypt = ngtcp2_crypto_decrypt_cb;
	cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
	cb->update_key = ngtcp2_crypto_update_key_cb;
	cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
	cb->delete_crypto_cipher_ctx =
	    ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
	cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
	cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
	cb->rand = cb_rand;
	cb->get_new_connection_id = cb_get_new_cid;
	cb->remove_connection_id = cb_remove_cid;
	cb->handshake_completed = cb_handshake_completed;
	cb->recv_stream_data = cb_recv_stream_data;
	cb->acked_stream_data_offset = cb_acked_stream_data_offset;
	cb->stream_open = cb_stream_open;
	cb->stream_close = cb_stream_close;
	cb->stream_reset = cb_stream_reset;
	cb->extend_max_stream_data = cb_extend_max_stream_data;
	cb->recv_datagram = cb_recv_datagram;
	cb->path_validation = cb_path_validation;
}
