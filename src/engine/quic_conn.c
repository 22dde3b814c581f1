/* One QUIC connection and its streams: the ngtcp2 callbacks, the stream
 * operations behind the tunnel API, and the write loop that turns ready
 * streams into GSO-shaped packet batches for the carrier. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quic_int.h"
#include "util/err.h"

#define MS NGTCP2_MILLISECONDS

ngtcp2_tstamp qnow(void)
{
	return wn_mono_ns();
}

static void hex8(const uint8_t *k, char out[17])
{
	static const char d[] = "0123456789abcdef";
	for (int i = 0; i < 8; i++) {
		out[2 * i] = d[k[i] >> 4];
		out[2 * i + 1] = d[k[i] & 15];
	}
	out[16] = '\0';
}

/* ---- streams: the transport under the stream base ------------------- */

static struct qstream *QS(struct wn_stream *s)
{
	return (struct qstream *)s;
}

void qstream_fail(struct qstream *qs, int err)
{
	wn_sb_finish(&qs->base, err);
}

static int stream_has_output(const struct qstream *qs)
{
	return wn_bufq_len(&qs->sendq) > qs->sent ||
	       (qs->fin_wanted && !qs->fin_sent);
}

static void stream_mark_ready(struct qstream *qs)
{
	if (!qs->qc || qs->sid < 0)
		return;
	if (!qlist_linked(&qs->rlink) && stream_has_output(qs))
		qlist_add_tail(&qs->qc->ready, &qs->rlink);
	qconn_schedule(qs->qc);
}

static ssize_t qt_write(struct wn_stream *s, const uint8_t *data, size_t len)
{
	struct qstream *qs = QS(s);
	ssize_t n = wn_bufq_write(&qs->sendq, data, len);
	if (n == WN_EAGAIN)
		n = 0;
	if (n > 0)
		stream_mark_ready(qs);
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
		stream_mark_ready(qs);
	return rc;
}

static void qt_credit(struct wn_stream *s, size_t n)
{
	struct qstream *qs = QS(s);
	if (!qs->qc || qs->sid < 0)
		return;
	ngtcp2_conn_extend_max_stream_offset(qs->qc->conn, qs->sid, n);
	ngtcp2_conn_extend_max_offset(qs->qc->conn, n);
	qconn_schedule(qs->qc);
}

static void qt_fin(struct wn_stream *s)
{
	struct qstream *qs = QS(s);
	/* wn_sb_fin_done comes with stream_close, once the FIN is acked. */
	qs->fin_wanted = 1;
	stream_mark_ready(qs);
}

static void qt_reset(struct wn_stream *s, int err)
{
	struct qstream *qs = QS(s);
	if (!qs->qc || qs->sid < 0)
		return;
	/* RESET_STREAM and STOP_SENDING; ngtcp2 closes the stream once
	 * they are through, without us (detached). */
	ngtcp2_conn_shutdown_stream(qs->qc->conn, qs->sid, (uint64_t)err);
	qconn_schedule(qs->qc);
}

static void stop_reading(struct qstream *qs, int err)
{
	ngtcp2_conn_shutdown_stream_read(qs->qc->conn, qs->sid, (uint64_t)err);
	qconn_schedule(qs->qc);
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
	if (qlist_linked(&qs->rlink))
		qlist_del(&qs->rlink);
	if (qlist_linked(&qs->link))
		qlist_del(&qs->link);
	if (qs->qc && qs->sid >= 0 && qs->qc->conn)
		ngtcp2_conn_set_stream_user_data(qs->qc->conn, qs->sid, NULL);
	qs->qc = NULL;
	qs->ep->stats.streams_closed++;
}

static void qt_free(struct wn_stream *s)
{
	struct qstream *qs = QS(s);
	wn_bufq_free(&qs->sendq);
	free(qs);
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
};

struct qstream *qstream_new(struct qep *ep, const struct wn_endpoint *target,
                            unsigned flags, const struct wn_stream_handler *h)
{
	struct qstream *qs = calloc(1, sizeof(*qs));
	if (!qs)
		return NULL;
	/* Set up with the first stream, so that the endpoints' constructors
	 * need not know about the base. */
	if (!ep->senv.tp)
		wn_sb_env_init(&ep->senv, &qstream_transport, ep->o.loop,
		               ep->o.log, ep->is_server ? &ep->ah : NULL);
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
	qs->opened_ms = wn_loop_now_ms(ep->o.loop);
	ep->stats.streams_opened++;
	return qs;
}

int qstream_attach(struct qconn *qc, struct qstream *qs)
{
	int64_t sid;
	int rv = ngtcp2_conn_open_bidi_stream(qc->conn, &sid, qs);
	if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
		return WN_EAGAIN;
	if (rv != 0)
		return WN_EINTERNAL;
	qs->sid = sid;
	qs->qc = qc;
	if (qlist_linked(&qs->link))
		qlist_del(&qs->link);
	qlist_add_tail(&qc->streams, &qs->link);
	stream_mark_ready(qs);
	return 0;
}

/* ---- ngtcp2 callbacks -------------------------------------------------- */

static void cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
	(void)ctx;
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
	struct qstream *qs = qstream_new(qc->ep, NULL, 0, NULL);
	if (!qs) {
		ngtcp2_conn_shutdown_stream(conn, sid, WN_STREAM_INTERNAL);
		return 0;
	}
	qs->sid = sid;
	qs->qc = qc;
	qs->base.tunnel = &qc->tunnel; /* handed to the accept handler */
	qlist_add_tail(&qc->streams, &qs->link);
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
	if (qc->ep->is_server && !ngtcp2_conn_is_local_stream(conn, sid))
		ngtcp2_conn_extend_max_streams_bidi(conn, 1);
	if (!qs)
		return 0;
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

static int cb_stream_stop_sending(ngtcp2_conn *conn, int64_t sid,
                                  uint64_t app_error_code, void *user_data,
                                  void *stream_user_data)
{
	(void)conn;
	(void)sid;
	(void)user_data;
	struct qstream *qs = stream_user_data;
	if (!qs || qs->base.ended)
		return 0;
	/* ngtcp2 answers with RESET_STREAM on its own; we keep reading. What
	 * we had queued will never be sent. */
	wn_bufq_free(&qs->sendq);
	qs->sent = 0;
	qs->fin_wanted = 0;
	if (qlist_linked(&qs->rlink))
		qlist_del(&qs->rlink);
	wn_sb_recv_stop(&qs->base, wire_err(app_error_code));
	return 0;
}

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
		stream_mark_ready(qs);
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
	/* Negotiated for the datagram front ends, which do not exist yet. */
	(void)conn;
	(void)flags;
	(void)data;
	(void)len;
	(void)user_data;
	return 0;
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
	return ((struct qconn *)ref->user_data)->conn;
}

/* GnuTLS verify function shared by every session of the credentials: the
 * session pointer leads back to the connection (via ngtcp2's conn_ref). */
int wn_quic_verify_peer(gnutls_session_t s)
{
	ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(s);
	struct qconn *qc = ref->user_data;
	struct qep *ep = qc->ep;
	uint8_t key[WN_KEY_LEN];
	char got[WN_KEY_B64_LEN + 1], want[WN_KEY_B64_LEN + 1];
	if (wn_tls_peer_key(s, key) != 0) {
		snprintf(qc->why, sizeof(qc->why),
		         "peer presented no Ed25519 raw public key");
		ep->stats.auth_failures++;
		return GNUTLS_E_CERTIFICATE_ERROR;
	}
	wn_key_encode(key, got);
	if (ep->is_server) {
		for (size_t i = 0; i < ep->nclients; i++)
			if (sodium_memcmp(ep->clients[i], key, WN_KEY_LEN) ==
			    0) {
				memcpy(qc->peer_key, key, WN_KEY_LEN);
				qc->peer_ok = 1;
				return 0;
			}
		snprintf(qc->why, sizeof(qc->why),
		         "client key %s is not in allow-client", got);
	} else {
		if (sodium_memcmp(ep->server_key, key, WN_KEY_LEN) == 0) {
			memcpy(qc->peer_key, key, WN_KEY_LEN);
			qc->peer_ok = 1;
			return 0;
		}
		wn_key_encode(ep->server_key, want);
		snprintf(qc->why, sizeof(qc->why),
		         "server key mismatch: expected %s, got %s", want, got);
	}
	ep->stats.auth_failures++;
	return GNUTLS_E_CERTIFICATE_ERROR;
}

static int cb_path_validation(ngtcp2_conn *conn, uint32_t flags,
                              const ngtcp2_path *path,
                              ngtcp2_path_validation_result res,
                              void *user_data);

static void fill_callbacks(ngtcp2_callbacks *cb, int server)
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
	cb->stream_stop_sending = cb_stream_stop_sending;
	cb->extend_max_stream_data = cb_extend_max_stream_data;
	cb->recv_datagram = cb_recv_datagram;
	cb->path_validation = cb_path_validation;
}

static void fill_settings(struct qep *ep, struct qconn *qc, ngtcp2_settings *s,
                          ngtcp2_transport_params *p)
{
	const struct wn_quic_opts *o = &ep->o;
	ngtcp2_settings_default(s);
	s->initial_ts = qnow();
	s->cc_algo = NGTCP2_CC_ALGO_BBR;
	s->max_window = o->conn_window_max;
	s->max_stream_window = o->stream_window_max;
	s->handshake_timeout = (uint64_t)o->handshake_timeout_ms * MS;
	/* ngtcp2's default ACKs every 2nd packet: at 100 Mbit/s that is
	 * ~4,000 ACKs a second for the sender to wake up for, and BBR's
	 * bandwidth estimate from them came out several times the link
	 * rate (see docs/ARCHITECTURE.md, section 5). max_ack_delay still bounds
	 * the wait when fewer packets come. */
	s->ack_thresh = QUIC_ACK_THRESH;
	size_t maxpkt = wn_carrier_max_packet(qc->carrier);
	if (ep->max_pkt && ep->max_pkt < maxpkt)
		maxpkt = ep->max_pkt;
	s->max_tx_udp_payload_size = maxpkt;
	if ((qc->carrier->caps & WN_CARRIER_FIXED_MTU) || ep->stream_paths) {
		/* Fixed-MTU carriers have no path MTU to discover. */
		s->no_pmtud = 1;
		s->no_tx_udp_payload_size_shaping = 1;
	}
	ngtcp2_transport_params_default(p);
	p->initial_max_stream_data_bidi_local = o->stream_window;
	p->initial_max_stream_data_bidi_remote = o->stream_window;
	p->initial_max_stream_data_uni = 0;
	p->initial_max_data = o->stream_window * 4;
	p->initial_max_streams_bidi = ep->is_server ? o->max_streams : 0;
	p->initial_max_streams_uni = 0;
	p->max_idle_timeout = (uint64_t)o->idle_timeout_ms * MS;
	/* Spare connection IDs: a client on a stream carrier migrates on
	 * every new connection, and each migration uses one. */
	p->active_connection_id_limit = 8;
	p->max_datagram_frame_size = 65535;
	/* A client with several carriers never receives more than the
	 * smallest of them carries. */
	if (ep->max_pkt)
		p->max_udp_payload_size = maxpkt;
}

static void on_timer(struct wn_timer *t);

static int conn_setup_tls(struct qconn *qc)
{
	struct qep *ep = qc->ep;
	unsigned flags = (ep->is_server ? GNUTLS_SERVER : GNUTLS_CLIENT) |
	                 GNUTLS_ENABLE_RAWPK | GNUTLS_NO_END_OF_EARLY_DATA;
	if (gnutls_init(&qc->tls, flags) < 0)
		return WN_EINTERNAL;
	if (gnutls_priority_set_direct(qc->tls, WN_TLS_PRIORITY, NULL) < 0)
		return WN_EINTERNAL;
	int rv = ep->is_server
	             ? ngtcp2_crypto_gnutls_configure_server_session(qc->tls)
	             : ngtcp2_crypto_gnutls_configure_client_session(qc->tls);
	if (rv != 0)
		return WN_EINTERNAL;
	qc->ref.get_conn = get_conn;
	qc->ref.user_data = qc;
	gnutls_session_set_ptr(qc->tls, &qc->ref);
	if (gnutls_credentials_set(qc->tls, GNUTLS_CRD_CERTIFICATE,
	                           ep->creds.cred) < 0)
		return WN_EINTERNAL;
	if (ep->is_server)
		gnutls_certificate_server_set_request(qc->tls,
		                                      GNUTLS_CERT_REQUIRE);
	gnutls_datum_t alpn = {(unsigned char *)QUIC_ALPN,
	                       sizeof(QUIC_ALPN) - 1};
	if (gnutls_alpn_set_protocols(qc->tls, &alpn, 1,
	                              GNUTLS_ALPN_MANDATORY) < 0)
		return WN_EINTERNAL;
	ngtcp2_conn_set_tls_native_handle(qc->conn, qc->tls);
	return 0;
}

/* A server session is a tunnel too, but the server opens no streams. */
static struct wn_stream *no_open_stream(struct wn_tunnel *t,
                                        const struct wn_endpoint *target,
                                        unsigned flags,
                                        const struct wn_stream_handler *h)
{
	(void)t;
	(void)target;
	(void)flags;
	(void)h;
	return NULL;
}

static const struct wn_tunnel_ops session_tunnel_ops = {
    .open_stream = no_open_stream,
};

static struct qconn *conn_alloc(struct qep *ep, struct wn_carrier *carrier,
                                const struct sockaddr *remote, socklen_t rlen)
{
	struct qconn *qc = calloc(1, sizeof(*qc));
	if (!qc)
		return NULL;
	qc->ep = ep;
	qc->tunnel.ops = &session_tunnel_ops;
	qc->tunnel.recv_window = ep->o.stream_window_max;
	qc->carrier = carrier;
	qc->id = ++ep->conn_seq;
	qc->last_rx_ms = wn_loop_now_ms(ep->o.loop);
	qlist_init(&qc->streams);
	qlist_init(&qc->ready);
	memcpy(&qc->remote, remote, rlen);
	qc->rlen = rlen;
	qc->llen = sizeof(qc->local);
	if (carrier->ops->local_addr(carrier, &qc->local, &qc->llen) != 0) {
		free(qc);
		return NULL;
	}
	if (wn_timer_init(ep->o.loop, &qc->timer, on_timer) != 0) {
		free(qc);
		return NULL;
	}
	qlist_add_tail(&ep->conns, &qc->link);
	ep->stats.conns_opened++;
	return qc;
}

static void path_of(struct qconn *qc, ngtcp2_path *path)
{
	path->local.addr = (ngtcp2_sockaddr *)&qc->local;
	path->local.addrlen = qc->llen;
	path->remote.addr = (ngtcp2_sockaddr *)&qc->remote;
	path->remote.addrlen = qc->rlen;
	path->user_data = qc->carrier;
}

struct qconn *qconn_new_client(struct qep *ep, struct wn_carrier *carrier,
                               const struct sockaddr *remote, socklen_t rlen)
{
	struct qconn *qc = conn_alloc(ep, carrier, remote, rlen);
	if (!qc)
		return NULL;
	ngtcp2_cid dcid, scid;
	dcid.datalen = QUIC_DCID_LEN;
	randombytes_buf(dcid.data, dcid.datalen);
	scid.datalen = QUIC_SCID_LEN;
	randombytes_buf(scid.data, scid.datalen);
	ngtcp2_callbacks cb;
	ngtcp2_settings s;
	ngtcp2_transport_params p;
	fill_callbacks(&cb, 0);
	fill_settings(ep, qc, &s, &p);
	ngtcp2_path path;
	path_of(qc, &path);
	if (ngtcp2_conn_client_new(&qc->conn, &dcid, &scid, &path,
	                           NGTCP2_PROTO_VER_V1, &cb, &s, &p, NULL,
	                           qc) != 0 ||
	    conn_setup_tls(qc) != 0) {
		qconn_kill(qc, "cannot set up the connection");
		return NULL;
	}
	if (ep->o.keepalive_ms)
		ngtcp2_conn_set_keep_alive_timeout(
		    qc->conn, (uint64_t)ep->o.keepalive_ms * MS);
	qconn_schedule(qc);
	return qc;
}

struct qconn *qconn_new_server(struct qep *ep, struct wn_carrier *carrier,
                               const struct sockaddr *remote, socklen_t rlen,
                               const ngtcp2_pkt_hd *hd)
{
	struct qconn *qc = conn_alloc(ep, carrier, remote, rlen);
	if (!qc)
		return NULL;
	ngtcp2_cid scid;
	scid.datalen = QUIC_SCID_LEN;
	randombytes_buf(scid.data, scid.datalen);
	ngtcp2_callbacks cb;
	ngtcp2_settings s;
	ngtcp2_transport_params p;
	fill_callbacks(&cb, 1);
	fill_settings(ep, qc, &s, &p);
	p.original_dcid = hd->dcid;
	p.stateless_reset_token_present = 1;
	if (ngtcp2_crypto_generate_stateless_reset_token(
	        p.stateless_reset_token, ep->reset_secret,
	        sizeof(ep->reset_secret), &scid) != 0) {
		qconn_kill(qc, "cannot set up the connection");
		return NULL;
	}
	ngtcp2_path path;
	path_of(qc, &path);
	if (ngtcp2_conn_server_new(&qc->conn, &hd->scid, &scid, &path,
	                           hd->version, &cb, &s, &p, NULL, qc) != 0 ||
	    conn_setup_tls(qc) != 0 ||
	    wn_cidmap_add(&ep->cids, scid.data, scid.datalen, qc) != 0 ||
	    wn_cidmap_add(&ep->cids, hd->dcid.data, hd->dcid.datalen, qc) !=
	        0) {
		qconn_kill(qc, "cannot set up the connection");
		return NULL;
	}
	return qc;
}

/* ---- life and death ---------------------------------------------------- */

static void timer_closed(struct wn_timer *t)
{
	struct qconn *qc =
	    (struct qconn *)((char *)t - offsetof(struct qconn, timer));
	if (qc->conn)
		ngtcp2_conn_del(qc->conn);
	if (qc->tls)
		gnutls_deinit(qc->tls);
	free(qc);
}

static void flush(struct qconn *qc);

static void conn_deferred(struct wn_deferred *node)
{
	struct qconn *qc =
	    (struct qconn *)((char *)node - offsetof(struct qconn, dnode));
	if (qc->state == QC_DEAD) {
		/* libuv still owns the timer until its close callback, which
		 * frees the connection. */
		wn_timer_close(&qc->timer, timer_closed);
		return;
	}
	flush(qc);
}

void qconn_schedule(struct qconn *qc)
{
	if (qc->state != QC_DEAD)
		wn_loop_defer(qc->ep->o.loop, &qc->dnode, conn_deferred);
}

void qconn_kill(struct qconn *qc, const char *why)
{
	if (qc->state == QC_DEAD)
		return;
	qc->state = QC_DEAD;
	if (why && !qc->why[0])
		snprintf(qc->why, sizeof(qc->why), "%s", why);
	wn_timer_stop(&qc->timer);
	while (!qlist_empty(&qc->streams)) {
		struct qstream *qs =
		    qlist_entry(qc->streams.next, struct qstream, link);
		wn_sb_finish(&qs->base, WN_STREAM_SESSION_LOST);
	}
	qlist_del(&qc->link);
	if (qc->ep->is_server)
		wn_cidmap_del_value(&qc->ep->cids, qc);
	qc->ep->stats.conns_closed++;
	qc->ep->conn_dead(qc->ep, qc);
	wn_loop_defer(qc->ep->o.loop, &qc->dnode, conn_deferred);
}

int qconn_migrate(struct qconn *qc)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (qc->state != QC_UP)
		return WN_EINVAL;
	if (qc->carrier->ops->local_addr(qc->carrier, &ss, &len) != 0)
		return WN_EINVAL;
	if (len == qc->llen && memcmp(&ss, &qc->local, len) == 0)
		return 0;
	ngtcp2_path path;
	path.local.addr = (ngtcp2_sockaddr *)&ss;
	path.local.addrlen = len;
	path.remote.addr = (ngtcp2_sockaddr *)&qc->remote;
	path.remote.addrlen = qc->rlen;
	path.user_data = NULL;
	int rv =
	    ngtcp2_conn_initiate_immediate_migration(qc->conn, &path, qnow());
	if (rv != 0) {
		WN_LOG_RL(qc->ep->o.log, &qc->ep->rl_err,
		          wn_loop_now_ms(qc->ep->o.loop), WN_LOG_WARN, "sess",
		          "cannot migrate to the carrier's new path: %s; "
		          "staying on the old one",
		          ngtcp2_strerror(rv));
		return WN_EINTERNAL;
	}
	memcpy(&qc->local, &ss, len);
	qc->llen = len;
	qc->carrier_blocked = 0;
	qconn_schedule(qc);
	return 0;
}

int qconn_move(struct qconn *qc, struct wn_carrier *carrier,
               const struct sockaddr *remote, socklen_t rlen, int immediate)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (qc->state != QC_UP || rlen > sizeof(qc->remote))
		return WN_EINVAL;
	if (carrier->ops->local_addr(carrier, &ss, &len) != 0)
		return WN_EINVAL;
	ngtcp2_path path;
	path.local.addr = (ngtcp2_sockaddr *)&ss;
	path.local.addrlen = len;
	path.remote.addr = (ngtcp2_sockaddr *)remote;
	path.remote.addrlen = rlen;
	path.user_data = carrier;
	int rv = immediate
	             ? ngtcp2_conn_initiate_immediate_migration(qc->conn, &path,
	                                                        qnow())
	             : ngtcp2_conn_initiate_migration(qc->conn, &path, qnow());
	if (rv != 0) {
		WN_LOG_RL(qc->ep->o.log, &qc->ep->rl_err,
		          wn_loop_now_ms(qc->ep->o.loop), WN_LOG_INFO, "sess",
		          "cannot move to %s: %s", carrier->name,
		          ngtcp2_strerror(rv));
		return rv == NGTCP2_ERR_CONN_ID_BLOCKED ? WN_EAGAIN
		                                        : WN_EINTERNAL;
	}
	if (immediate) {
		qc->carrier = carrier;
		memcpy(&qc->local, &ss, len);
		qc->llen = len;
		memcpy(&qc->remote, remote, rlen);
		qc->rlen = rlen;
		qc->last_rx_ms = wn_loop_now_ms(qc->ep->o.loop);
	}
	qc->carrier_blocked = 0;
	qconn_schedule(qc);
	return 0;
}

uint64_t qconn_in_flight(struct qconn *qc)
{
	ngtcp2_conn_stat st;
	ngtcp2_conn_get_conn_stat(qc->conn, &st);
	return st.bytes_in_flight;
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

/* Sends a batch to the path ngtcp2 chose for it: ngtcp2 validates a peer's
 * new address before using it, so replies never follow a spoofed or
 * replayed packet's source. */
static int send_batch(struct qconn *qc, const ngtcp2_path *path,
                      const uint8_t *buf, size_t len, size_t seg)
{
	const struct sockaddr *to = (const struct sockaddr *)&qc->remote;
	socklen_t tolen = qc->rlen;
	if (path->remote.addrlen > 0) {
		to = (const struct sockaddr *)path->remote.addr;
		tolen = (socklen_t)path->remote.addrlen;
	}
	struct wn_carrier *c = path->user_data
	                           ? (struct wn_carrier *)path->user_data
	                           : qc->carrier;
	int rc = wn_carrier_send(c, to, tolen, buf, len, seg);
	if (rc == WN_EAGAIN)
		qc->carrier_blocked = 1;
	return rc;
}

/* Sends one CONNECTION_CLOSE carrying ccerr, best effort. */
static void send_close(struct qconn *qc,
                       const ngtcp2_connection_close_error *ccerr)
{
	ngtcp2_path_storage ps;
	ngtcp2_path_storage_zero(&ps);
	ngtcp2_pkt_info pi;
	ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
	    qc->conn, &ps.path, &pi, qc->ep->txbuf, qc->ep->txcap, ccerr,
	    qnow());
	if (n > 0)
		send_batch(qc, &ps.path, qc->ep->txbuf, (size_t)n, (size_t)n);
}

void qconn_close(struct qconn *qc, const char *why)
{
	if (qc->state == QC_DEAD)
		return;
	ngtcp2_connection_close_error ccerr;
	ngtcp2_connection_close_error_default(&ccerr);
	send_close(qc, &ccerr);
	qconn_kill(qc, why);
}

/* A fatal ngtcp2 error: tell the peer why (TLS alert or transport error),
 * then die. */
static void conn_fail(struct qconn *qc, int liberr)
{
	if (qc->state == QC_DEAD)
		return;
	char why[160];
	if (qc->why[0])
		snprintf(why, sizeof(why), "%s", qc->why);
	else
		snprintf(why, sizeof(why), "%s", ngtcp2_strerror(liberr));
	if (liberr == NGTCP2_ERR_IDLE_CLOSE || liberr == NGTCP2_ERR_DRAINING ||
	    liberr == NGTCP2_ERR_CLOSING || liberr == NGTCP2_ERR_DROP_CONN) {
		qconn_kill(qc, why);
		return;
	}
	ngtcp2_connection_close_error ccerr;
	ngtcp2_connection_close_error_default(&ccerr);
	if (liberr == NGTCP2_ERR_CRYPTO)
		ngtcp2_connection_close_error_set_transport_error_tls_alert(
		    &ccerr, ngtcp2_conn_get_tls_alert(qc->conn), NULL, 0);
	else
		ngtcp2_connection_close_error_set_transport_error_liberr(
		    &ccerr, liberr, NULL, 0);
	send_close(qc, &ccerr);
	qconn_kill(qc, why);
}

/* Explains a connection the peer closed, from its CONNECTION_CLOSE. */
static void explain_remote_close(struct qconn *qc)
{
	if (qc->why[0])
		return;
	ngtcp2_connection_close_error ccerr;
	ngtcp2_conn_get_connection_close_error(qc->conn, &ccerr);
	if (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
	    (ccerr.error_code & 0xff00) == NGTCP2_CRYPTO_ERROR) {
		unsigned alert = (unsigned)(ccerr.error_code & 0xff);
		snprintf(qc->why, sizeof(qc->why),
		         "peer closed the connection: TLS alert %u%s", alert,
		         alert == 42 && !qc->ep->is_server
		             ? " (is this client's key in the server's "
		               "allow-client list?)"
		             : "");
	} else if (ccerr.error_code == 0) {
		snprintf(qc->why, sizeof(qc->why),
		         "peer closed the connection");
	} else {
		snprintf(qc->why, sizeof(qc->why),
		         "peer closed the connection (error 0x%llx)",
		         (unsigned long long)ccerr.error_code);
	}
}

void qconn_read(struct qconn *qc, struct wn_carrier *carrier,
                const struct sockaddr *from, socklen_t fromlen,
                const uint8_t *pkt, size_t len)
{
	if (qc->state == QC_DEAD)
		return;
	/* The current path's local address is the one ngtcp2 knows (a
	 * stream carrier's may have moved on, see qconn_migrate); other
	 * carriers' packets arrive on their own paths. */
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ngtcp2_path path;
	if (carrier == qc->carrier) {
		path.local.addr = (ngtcp2_sockaddr *)&qc->local;
		path.local.addrlen = qc->llen;
	} else {
		if (carrier->ops->local_addr(carrier, &ss, &sl) != 0)
			return;
		path.local.addr = (ngtcp2_sockaddr *)&ss;
		path.local.addrlen = sl;
	}
	path.remote.addr = (ngtcp2_sockaddr *)from;
	path.remote.addrlen = fromlen;
	path.user_data = carrier;
	ngtcp2_pkt_info pi = {0};
	int rv = ngtcp2_conn_read_pkt(qc->conn, &path, &pi, pkt, len, qnow());
	if (rv == 0) {
		qc->last_rx_ms = wn_loop_now_ms(qc->ep->o.loop);
		qconn_schedule(qc);
		return;
	}
	if (rv == NGTCP2_ERR_DRAINING) {
		explain_remote_close(qc);
		qconn_kill(qc, NULL);
		return;
	}
	if (rv == NGTCP2_ERR_DROP_CONN || rv == NGTCP2_ERR_RETRY) {
		qconn_kill(qc, "dropped");
		return;
	}
	conn_fail(qc, rv);
}

/* ---- writing ----------------------------------------------------------- */

/* The next stream with output that has not been blocked in this pass. */
static struct qstream *next_ready(struct qconn *qc)
{
	struct qlist *l = qc->ready.next;
	while (l != &qc->ready) {
		struct qstream *qs = qlist_entry(l, struct qstream, rlink);
		l = l->next;
		if (!stream_has_output(qs)) {
			qlist_del(&qs->rlink);
			continue;
		}
		if (qs->blocked_epoch != qc->write_epoch)
			return qs;
	}
	return NULL;
}

static void after_write(struct qstream *qs, ngtcp2_ssize ndatalen, int fin)
{
	if (ndatalen < 0)
		return;
	qs->sent += (size_t)ndatalen;
	if (fin && qs->sent == wn_bufq_len(&qs->sendq)) {
		qs->fin_sent = 1;
		/* Inside the write pass: the next packets of this pass
		 * carry the STOP_SENDING, no new pass is needed. */
		if (qs->stop_owed && !qs->base.ended) {
			qs->stop_owed = 0;
			ngtcp2_conn_shutdown_stream_read(qs->qc->conn, qs->sid,
			                                 WN_STREAM_ABORTED);
		}
	}
	/* Round robin: a stream that wrote goes to the back. */
	if (qlist_linked(&qs->rlink)) {
		qlist_del(&qs->rlink);
		if (stream_has_output(qs))
			qlist_add_tail(&qs->qc->ready, &qs->rlink);
	}
}

static void arm_timer(struct qconn *qc)
{
	ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(qc->conn);
	if (exp == UINT64_MAX) {
		wn_timer_stop(&qc->timer);
		return;
	}
	ngtcp2_tstamp now = qnow();
	uint64_t ms = exp <= now ? 0 : (exp - now + MS - 1) / MS;
	wn_timer_start(&qc->timer, ms, 0);
}

static int same_remote(const ngtcp2_path *a, const ngtcp2_path *b)
{
	return a->user_data == b->user_data &&
	       a->remote.addrlen == b->remote.addrlen &&
	       memcmp(a->remote.addr, b->remote.addr, a->remote.addrlen) == 0;
}

/* Copies the remote address of `from` into storage that outlives the next
 * ngtcp2 write, which overwrites the path storage. */
static void batch_path(ngtcp2_path *p, struct sockaddr_storage *ss,
                       const ngtcp2_path *from)
{
	size_t n =
	    from->remote.addrlen <= sizeof(*ss) ? from->remote.addrlen : 0;
	memcpy(ss, from->remote.addr, n);
	p->remote.addr = (ngtcp2_sockaddr *)ss;
	p->remote.addrlen = (ngtcp2_socklen)n;
	p->user_data = from->user_data;
}

/* Tells ngtcp2's pacer about the bytes written, once they are worth a
 * pause. ngtcp2 spaces the next send by (bytes since the last update) /
 * pacing rate and lets a packet go up to 1 ms early anyway (its allowance
 * for event loops), so a pause under 1 ms only costs a timer wakeup: a
 * receiver would wake once more per ACK it sends, for nothing. ngtcp2
 * keeps counting the bytes until the update, so deferring it loses none:
 * they are paced together later. */
static void pace(struct qconn *qc, size_t written, ngtcp2_tstamp ts)
{
	ngtcp2_conn_stat st;
	qc->unpaced += written;
	if (qc->unpaced == 0)
		return;
	ngtcp2_conn_get_conn_stat(qc->conn, &st);
	if (st.pacing_rate > 0 &&
	    (double)qc->unpaced < st.pacing_rate * (double)MS)
		return;
	ngtcp2_conn_update_pkt_tx_time(qc->conn, ts);
	qc->unpaced = 0;
}

static void flush(struct qconn *qc)
{
	struct qep *ep = qc->ep;
	if (qc->state == QC_DEAD || qc->carrier_blocked)
		return;
	ngtcp2_tstamp ts = qnow();
	size_t maxpkt = ngtcp2_conn_get_path_max_tx_udp_payload_size(qc->conn);
	if (maxpkt > wn_carrier_max_packet(qc->carrier))
		maxpkt = wn_carrier_max_packet(qc->carrier);
	size_t quantum = ngtcp2_conn_get_send_quantum(qc->conn);
	if (quantum < maxpkt)
		quantum = maxpkt;
	size_t budget = quantum, off = 0, seg = 0, npkts = 0, written = 0;
	uint8_t *buf = ep->txbuf;
	qc->write_epoch++;
	ngtcp2_path_storage ps;
	ngtcp2_path_storage_zero(&ps);
	ngtcp2_path bpath; /* where the batch being built goes */
	struct sockaddr_storage bto;
	memset(&bpath, 0, sizeof(bpath));

	for (;;) {
		struct qstream *qs = next_ready(qc);
		ngtcp2_vec vec[QUIC_SEND_IOV];
		size_t nvec = 0;
		int64_t sid = -1;
		uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
		int fin = 0;
		if (qs) {
			/* A packet takes ~1.4 kB and chunks are 16 kB: a few
			 * iovecs always fill one, even from a chunk's tail. */
			struct iovec iov[QUIC_SEND_IOV];
			int n = wn_bufq_peek_iov_at(&qs->sendq, qs->sent, iov,
			                            QUIC_SEND_IOV);
			size_t avail = 0;
			for (int i = 0; i < n; i++) {
				vec[i].base = iov[i].iov_base;
				vec[i].len = iov[i].iov_len;
				avail += iov[i].iov_len;
			}
			nvec = (size_t)n;
			sid = qs->sid;
			if (qs->fin_wanted &&
			    qs->sent + avail == wn_bufq_len(&qs->sendq)) {
				flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
				fin = 1;
			}
		}
		ngtcp2_pkt_info pi;
		ngtcp2_ssize ndatalen = -1;
		ngtcp2_ssize nw = ngtcp2_conn_writev_stream(
		    qc->conn, &ps.path, &pi, buf + off, maxpkt, &ndatalen,
		    flags, sid, vec, nvec, ts);
		if (nw < 0) {
			if (nw == NGTCP2_ERR_WRITE_MORE) {
				after_write(qs, ndatalen, fin);
				continue;
			}
			if (qs && (nw == NGTCP2_ERR_STREAM_DATA_BLOCKED ||
			           nw == NGTCP2_ERR_STREAM_SHUT_WR ||
			           nw == NGTCP2_ERR_STREAM_NOT_FOUND)) {
				qs->blocked_epoch = qc->write_epoch;
				continue;
			}
			conn_fail(qc, (int)nw);
			return;
		}
		if (qs) {
			if (ndatalen >= 0)
				after_write(qs, ndatalen, fin);
			else
				qs->blocked_epoch = qc->write_epoch;
		}
		if (nw == 0)
			break;
		if (npkts > 0 && !same_remote(&bpath, &ps.path)) {
			/* ngtcp2 switched paths (a probe or a migration):
			 * what was batched so far goes out alone first. */
			send_batch(qc, &bpath, buf, off, seg);
			written += off;
			memmove(buf, buf + off, (size_t)nw);
			budget = budget > off ? budget - off : 0;
			off = 0;
			npkts = 0;
		}
		if (npkts == 0) {
			seg = (size_t)nw;
			batch_path(&bpath, &bto, &ps.path);
		}
		off += (size_t)nw;
		npkts++;
		/* A batch is packets of one size, the last may be shorter. */
		int short_pkt = (size_t)nw < seg;
		if (short_pkt || npkts == QUIC_GSO_MAX ||
		    off + maxpkt > ep->txcap || off >= budget) {
			int rc = send_batch(qc, &bpath, buf, off, seg);
			written += off;
			budget = budget > off ? budget - off : 0;
			off = 0;
			npkts = 0;
			if (rc == WN_EAGAIN || budget == 0)
				break;
		}
	}
	if (off > 0)
		send_batch(qc, &bpath, buf, off, seg);
	written += off;
	/* ngtcp2 0.12 paces from a 333 ms initial RTT guess, which would hold
	 * the client's Finished back ~22 ms: pace only after the handshake. */
	if (ngtcp2_conn_get_handshake_completed(qc->conn))
		pace(qc, written, ts);
	arm_timer(qc);
}

static void on_timer(struct wn_timer *t)
{
	struct qconn *qc =
	    (struct qconn *)((char *)t - offsetof(struct qconn, timer));
	if (qc->state == QC_DEAD)
		return;
	int rv = ngtcp2_conn_handle_expiry(qc->conn, qnow());
	if (rv != 0) {
		if (rv == NGTCP2_ERR_IDLE_CLOSE && !qc->why[0])
			snprintf(qc->why, sizeof(qc->why),
			         qc->state == QC_UP
			             ? "no answer for %u ms (idle timeout)"
			             : "no answer to the handshake within "
			               "%u ms",
			         qc->ep->o.idle_timeout_ms);
		conn_fail(qc, rv);
		return;
	}
	flush(qc);
}
