/* One QUIC connection: its life (creation, the transport settings,
 * closing and dying), the read path, migration between paths and carriers,
 * and the timer that drives ngtcp2's expiry. The streams are in
 * quic_stream.c, the ngtcp2 callbacks in quic_cb.c, TLS in quic_tls.c and
 * the write pass in quic_write.c. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quic_int.h"
#include "util/err.h"

#define MS NGTCP2_MILLISECONDS

static void fill_settings(struct qep *ep, struct qconn *qc, ngtcp2_settings *s,
                          ngtcp2_transport_params *p)
{
	const struct wn_quic_opts *o = &ep->o;
	ngtcp2_settings_default(s);
	s->initial_ts = wn__quic_now(ep);
	s->rand_ctx.native_handle = ep; /* cb_rand reads the endpoint's */
	s->cc_algo = NGTCP2_CC_ALGO_BBR;
	/* What the peer may send that our readers have not taken is bounded
	 * by the session's send budget too (session-buffer): the connection
	 * window never grows past it. */
	uint64_t conn_max = o->conn_window_max;
	if (o->session_buffer && o->session_buffer < conn_max)
		conn_max = o->session_buffer;
	s->max_window = conn_max;
	s->max_stream_window = o->stream_window_max;
	s->handshake_timeout = (uint64_t)o->handshake_timeout_ms * MS;
	/* ngtcp2's default ACKs every 2nd packet, which wakes the sender
	 * that often and inflated BBR's bandwidth estimate well above the
	 * link rate (docs/performance.md, "ACK threshold 8"). max_ack_delay
	 * still bounds the wait when fewer packets come. */
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
	p->initial_max_data =
	    o->stream_window * 4 < conn_max ? o->stream_window * 4 : conn_max;
	p->initial_max_streams_bidi = ep->is_server ? o->max_streams : 0;
	p->initial_max_streams_uni = 0;
	p->max_idle_timeout = (uint64_t)o->idle_timeout_ms * MS;
	/* Spare connection IDs: a client on a stream carrier migrates on
	 * every new connection, and each migration uses one. */
	p->active_connection_id_limit = 8;
	/* DATAGRAM frames (RFC 9221) carry the flow base's messages; any
	 * frame that a packet can hold is taken. */
	p->max_datagram_frame_size = QUIC_DGRAM_FRAME_MAX;
	/* A client with several carriers never receives more than the
	 * smallest of them carries. */
	if (ep->max_pkt)
		p->max_udp_payload_size = maxpkt;
}

static void on_timer(struct wn_timer *t);

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
	qc->last_rx_ms = wn__quic_now_ms(ep);
	wn_list_init(&qc->streams);
	wn_list_init(&qc->lingering);
	wn_list_init(&qc->ready);
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
	wn_list_add_tail(&ep->conns, &qc->link);
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

struct qconn *wn__qconn_new_client(struct qep *ep, struct wn_carrier *carrier,
                                   const struct sockaddr *remote,
                                   socklen_t rlen)
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
	wn__qconn_fill_callbacks(&cb, 0);
	fill_settings(ep, qc, &s, &p);
	/* The proof that this client knows the server's key, without which
	 * the server does not answer (crypto/quicproof.h). ngtcp2 copies it
	 * into every Initial until a Retry replaces it with the server's
	 * token. */
	uint8_t proof[WN_QPROOF_LEN];
	wn_qproof_make(proof, ep->proof_key, NGTCP2_PROTO_VER_V1, dcid.data,
	               dcid.datalen, wn_wall_ms() / 1000);
	s.token.base = proof;
	s.token.len = sizeof(proof);
	ngtcp2_path path;
	path_of(qc, &path);
	if (ngtcp2_conn_client_new(&qc->conn, &dcid, &scid, &path,
	                           NGTCP2_PROTO_VER_V1, &cb, &s, &p, NULL,
	                           qc) != 0 ||
	    wn__qconn_setup_tls(qc) != 0) {
		wn__qconn_kill(qc, "cannot set up the connection");
		return NULL;
	}
	if (ep->o.keepalive_ms)
		ngtcp2_conn_set_keep_alive_timeout(
		    qc->conn, (uint64_t)ep->o.keepalive_ms * MS);
	wn__qconn_schedule(qc);
	return qc;
}

struct qconn *wn__qconn_new_server(struct qep *ep, struct wn_carrier *carrier,
                                   const struct sockaddr *remote,
                                   socklen_t rlen, const ngtcp2_pkt_hd *hd,
                                   const ngtcp2_cid *odcid)
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
	wn__qconn_fill_callbacks(&cb, 1);
	fill_settings(ep, qc, &s, &p);
	p.original_dcid = hd->dcid;
	if (odcid) {
		/* After a Retry: the transport parameters name both IDs (RFC
		 * 9000, 7.3), and the token, which ngtcp2 then requires in
		 * every Initial of this connection, lifts the
		 * anti-amplification limit: the address is validated. */
		p.original_dcid = *odcid;
		p.retry_scid = hd->dcid;
		p.retry_scid_present = 1;
		s.token = hd->token;
	}
	p.stateless_reset_token_present = 1;
	if (ngtcp2_crypto_generate_stateless_reset_token(
	        p.stateless_reset_token, ep->reset_secret,
	        sizeof(ep->reset_secret), &scid) != 0) {
		wn__qconn_kill(qc, "cannot set up the connection");
		return NULL;
	}
	ngtcp2_path path;
	path_of(qc, &path);
	if (ngtcp2_conn_server_new(&qc->conn, &hd->scid, &scid, &path,
	                           hd->version, &cb, &s, &p, NULL, qc) != 0 ||
	    wn__qconn_setup_tls(qc) != 0 ||
	    wn_cidmap_add(&ep->cids, scid.data, scid.datalen, qc) != 0 ||
	    wn_cidmap_add(&ep->cids, hd->dcid.data, hd->dcid.datalen, qc) !=
	        0) {
		wn__qconn_kill(qc, "cannot set up the connection");
		return NULL;
	}
	return qc;
}

/* ---- life and death ---------------------------------------------------- */

static void timer_closed(struct wn_timer *t)
{
	struct qconn *qc = wn_container_of(t, struct qconn, timer);
	/* A server connection's flows (only a server's connection has them
	 * in its tunnel) go with it: wn_fb_finish ran when it died. Not
	 * qc->ep: the endpoint may be gone by now. */
	if (qc->tunnel.flows)
		wn_fb_free(qc->tunnel.flows);
	wn__qdgram_free(qc);
	if (qc->conn)
		ngtcp2_conn_del(qc->conn);
	if (qc->tls)
		gnutls_deinit(qc->tls);
	free(qc);
}

static void conn_deferred(struct wn_deferred *node)
{
	struct qconn *qc = wn_container_of(node, struct qconn, dnode);
	if (qc->state == QC_DEAD) {
		/* libuv still owns the timer until its close callback, which
		 * frees the connection. */
		wn_timer_close(&qc->timer, timer_closed);
		return;
	}
	wn__qconn_flush(qc);
}

void wn__qconn_schedule(struct qconn *qc)
{
	if (qc->state != QC_DEAD)
		wn_loop_defer(qc->ep->o.loop, &qc->dnode, conn_deferred);
}

void wn__qconn_kill(struct qconn *qc, const char *why)
{
	if (qc->state == QC_DEAD)
		return;
	qc->state = QC_DEAD;
	if (why && !qc->why[0])
		snprintf(qc->why, sizeof(qc->why), "%s", why);
	wn_timer_stop(&qc->timer);
	while (!wn_list_empty(&qc->streams)) {
		struct qstream *qs =
		    wn_list_entry(qc->streams.next, struct qstream, link);
		wn_sb_finish(&qs->base, WN_STREAM_SESSION_LOST);
	}
	/* A dead connection writes nothing more: its lingering streams'
	 * data can go (ngtcp2_conn_del, later, calls no stream callback;
	 * the user data is cleared all the same). */
	while (!wn_list_empty(&qc->lingering)) {
		struct qstream *qs =
		    wn_list_entry(qc->lingering.next, struct qstream, link);
		ngtcp2_conn_set_stream_user_data(qc->conn, qs->sid, NULL);
		wn__qstream_unlinger(qs);
	}
	/* Queued datagrams are dropped with the connection; the server's
	 * flows end with their session, the client's wait for the next. */
	qc->dg_count = 0;
	if (qc->tunnel.flows)
		wn_fb_finish(qc->tunnel.flows, WN_STREAM_SESSION_LOST);
	qc->flows = NULL;
	wn_list_del(&qc->link);
	if (qc->ep->is_server)
		wn_cidmap_del_value(&qc->ep->cids, qc);
	qc->ep->stats.conns_closed++;
	qc->ep->conn_dead(qc->ep, qc);
	wn_loop_defer(qc->ep->o.loop, &qc->dnode, conn_deferred);
}

int wn__qconn_migrate(struct qconn *qc)
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
	int rv = ngtcp2_conn_initiate_immediate_migration(qc->conn, &path,
	                                                  wn__quic_now(qc->ep));
	if (rv != 0) {
		WN_LOG_RL(qc->ep->o.log, &qc->ep->rl_err,
		          wn__quic_now_ms(qc->ep), WN_LOG_WARN, "sess",
		          "cannot migrate to the carrier's new path: %s; "
		          "staying on the old one",
		          ngtcp2_strerror(rv));
		return WN_EINTERNAL;
	}
	memcpy(&qc->local, &ss, len);
	qc->llen = len;
	qc->carrier_blocked = 0;
	wn__qconn_schedule(qc);
	return 0;
}

int wn__qconn_move(struct qconn *qc, struct wn_carrier *carrier,
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
	int rv = immediate ? ngtcp2_conn_initiate_immediate_migration(
	                         qc->conn, &path, wn__quic_now(qc->ep))
	                   : ngtcp2_conn_initiate_migration(
	                         qc->conn, &path, wn__quic_now(qc->ep));
	if (rv != 0) {
		WN_LOG_RL(qc->ep->o.log, &qc->ep->rl_err,
		          wn__quic_now_ms(qc->ep), WN_LOG_INFO, "sess",
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
		qc->last_rx_ms = wn__quic_now_ms(qc->ep);
	}
	qc->carrier_blocked = 0;
	wn__qconn_schedule(qc);
	return 0;
}

uint64_t wn__qconn_in_flight(struct qconn *qc)
{
	ngtcp2_conn_stat st;
	ngtcp2_conn_get_conn_stat(qc->conn, &st);
	return st.bytes_in_flight;
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
	    wn__quic_now(qc->ep));
	if (n > 0)
		wn__qconn_send_batch(qc, &ps.path, qc->ep->txbuf, (size_t)n,
		                     (size_t)n);
}

void wn__qconn_close(struct qconn *qc, const char *why)
{
	if (qc->state == QC_DEAD)
		return;
	ngtcp2_connection_close_error ccerr;
	ngtcp2_connection_close_error_default(&ccerr);
	send_close(qc, &ccerr);
	wn__qconn_kill(qc, why);
}

/* A fatal ngtcp2 error: tell the peer why (TLS alert or transport error),
 * then die. */
void wn__qconn_fail(struct qconn *qc, int liberr)
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
		wn__qconn_kill(qc, why);
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
	wn__qconn_kill(qc, why);
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

void wn__qconn_read(struct qconn *qc, struct wn_carrier *carrier,
                    const struct sockaddr *from, socklen_t fromlen,
                    const uint8_t *pkt, size_t len)
{
	if (qc->state == QC_DEAD)
		return;
	/* The current path's local address is the one ngtcp2 knows (a
	 * stream carrier's may have moved on, see wn__qconn_migrate); other
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
	int rv = ngtcp2_conn_read_pkt(qc->conn, &path, &pi, pkt, len,
	                              wn__quic_now(qc->ep));
	if (rv == 0) {
		qc->last_rx_ms = wn__quic_now_ms(qc->ep);
		wn__qconn_schedule(qc);
		return;
	}
	if (rv == NGTCP2_ERR_DRAINING) {
		explain_remote_close(qc);
		wn__qconn_kill(qc, NULL);
		return;
	}
	if (rv == NGTCP2_ERR_DROP_CONN || rv == NGTCP2_ERR_RETRY) {
		wn__qconn_kill(qc, "dropped");
		return;
	}
	wn__qconn_fail(qc, rv);
}

void wn__qconn_arm_timer(struct qconn *qc, ngtcp2_tstamp now)
{
	/* An injected clock is not the loop's: a loop timer would fire at a
	 * moment unrelated to it. Its owner reads the deadline and calls
	 * wn__quic_ep_expire instead. */
	if (qc->ep->o.clock_ns)
		return;
	ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(qc->conn);
	if (exp == UINT64_MAX) {
		wn_timer_stop(&qc->timer);
		return;
	}
	uint64_t ms = exp <= now ? 0 : (exp - now + MS - 1) / MS;
	wn_timer_start(&qc->timer, ms, 0);
}

/* A server answers only clients that prove they know its key, so a client
 * with the wrong key hears nothing: say so where the silence is logged. */
static const char *hint(const struct qconn *qc)
{
	return qc->ep->is_server || qc->state == QC_UP
	           ? ""
	           : " (is the server key right? the server answers only "
	             "clients that know it)";
}

/* ngtcp2's expiry at now: retransmission, ACK, pacing, idle and
 * handshake timeouts, keepalive; then a write pass. */
static void expire(struct qconn *qc, ngtcp2_tstamp now)
{
	int rv = ngtcp2_conn_handle_expiry(qc->conn, now);
	if (rv != 0) {
		if (rv == NGTCP2_ERR_IDLE_CLOSE && !qc->why[0])
			snprintf(qc->why, sizeof(qc->why),
			         qc->state == QC_UP
			             ? "no answer for %u ms (idle timeout)"
			             : "no answer to the handshake within "
			               "%u ms%s",
			         qc->ep->o.idle_timeout_ms, hint(qc));
		else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT && !qc->why[0])
			snprintf(qc->why, sizeof(qc->why),
			         "no answer to the handshake within %u ms%s",
			         qc->ep->o.handshake_timeout_ms, hint(qc));
		wn__qconn_fail(qc, rv);
		return;
	}
	wn__qconn_flush_at(qc, now);
}

static void on_timer(struct wn_timer *t)
{
	struct qconn *qc = wn_container_of(t, struct qconn, timer);
	if (qc->state == QC_DEAD)
		return;
	expire(qc, wn__quic_now(qc->ep));
}

uint64_t wn__quic_ep_next_expiry(const struct qep *ep)
{
	uint64_t next = UINT64_MAX;
	for (const struct wn_list *l = ep->conns.next; l != &ep->conns;
	     l = l->next) {
		const struct qconn *qc =
		    wn_list_entry(l, const struct qconn, link);
		uint64_t exp = ngtcp2_conn_get_expiry(qc->conn);
		if (exp < next)
			next = exp;
	}
	return next;
}

void wn__quic_ep_expire(struct qep *ep)
{
	ngtcp2_tstamp now = wn__quic_now(ep);
	struct wn_list *l = ep->conns.next;
	while (l != &ep->conns) {
		struct qconn *qc = wn_list_entry(l, struct qconn, link);
		/* A connection that dies leaves the list: step past it
		 * first. Only this one can die here. */
		l = l->next;
		if (ngtcp2_conn_get_expiry(qc->conn) <= now)
			expire(qc, now);
	}
}
