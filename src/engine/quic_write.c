/* A QUIC connection's write pass: ready streams, round robin, and queued
 * datagrams (quic_dgram.c) become packets, batched for GSO (one size a
 * batch, one path a batch) and handed to the carrier, with ngtcp2's pacer
 * told about them.
 *
 * Datagrams and streams share the packets and the congestion window, and
 * neither waits behind the other: while both have something to send,
 * packets alternate between one that starts with a datagram (stream data
 * fills what room it leaves) and one of stream data alone; a datagram
 * that does not fit the rest of a packet waits for the next. Datagrams
 * that the streams leave room for go as they come. */
#include <string.h>

#include "engine/quic_int.h"
#include "util/err.h"

#define MS NGTCP2_MILLISECONDS

/* Sends a batch to the path ngtcp2 chose for it: ngtcp2 validates a peer's
 * new address before using it, so replies never follow a spoofed or
 * replayed packet's source. */
int wn__qconn_send_batch(struct qconn *qc, const ngtcp2_path *path,
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

/* The next stream with output that has not been blocked in this pass. */
static struct qstream *next_ready(struct qconn *qc)
{
	struct wn_list *l = qc->ready.next;
	while (l != &qc->ready) {
		struct qstream *qs = wn_list_entry(l, struct qstream, rlink);
		l = l->next;
		if (!wn__qstream_has_output(qs)) {
			wn_list_del(&qs->rlink);
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
		/* Not here: the packet being built may still be open
		 * (NGTCP2_ERR_WRITE_MORE), and ngtcp2 0.12 files a frame
		 * queued meanwhile under that packet, so the STOP_SENDING
		 * would count as sent and never leave. The pass sends it
		 * once its packets are done (send_owed_stops). */
		if (qs->stop_owed)
			qs->qc->stops_owed = 1;
	}
	/* Round robin: a stream that wrote goes to the back. */
	if (wn_list_linked(&qs->rlink)) {
		wn_list_del(&qs->rlink);
		if (wn__qstream_has_output(qs))
			wn_list_add_tail(&qs->qc->ready, &qs->rlink);
	}
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

/* Streams released after our FIN whose FIN has now left: ask the peer to
 * stop (quic_stream.c, qt_stop) and make another pass carry it. Only
 * between packets, and only in a pass that sent such a FIN. */
static void send_owed_stops(struct qconn *qc)
{
	qc->stops_owed = 0;
	for (struct wn_list *l = qc->streams.next; l != &qc->streams;
	     l = l->next) {
		struct qstream *qs = wn_list_entry(l, struct qstream, link);
		if (qs->stop_owed && qs->fin_sent && !qs->base.ended) {
			qs->stop_owed = 0;
			ngtcp2_conn_shutdown_stream_read(qc->conn, qs->sid,
			                                 WN_STREAM_ABORTED);
			wn__qconn_schedule(qc);
		}
	}
}

void wn__qconn_flush(struct qconn *qc)
{
	if (qc->state == QC_DEAD || qc->carrier_blocked)
		return;
	wn__qconn_flush_at(qc, wn__quic_now(qc->ep));
}

void wn__qconn_flush_at(struct qconn *qc, ngtcp2_tstamp ts)
{
	struct qep *ep = qc->ep;
	if (qc->state == QC_DEAD || qc->carrier_blocked)
		return;
	size_t maxpkt = ngtcp2_conn_get_path_max_tx_udp_payload_size(qc->conn);
	if (maxpkt > wn_carrier_max_packet(qc->carrier))
		maxpkt = wn_carrier_max_packet(qc->carrier);
	/* ngtcp2 writes packets of the path's current size (maxpkt) except
	 * PMTUD's probes, which are larger and which it writes only into a
	 * buffer that can take them: each write gets room for the largest
	 * packet the carrier carries, or the path stays at 1200 bytes. */
	size_t room = wn_carrier_max_packet(qc->carrier);
	if (ep->max_pkt && ep->max_pkt < room)
		room = ep->max_pkt;
	if (room < maxpkt)
		room = maxpkt;
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

	int pkt_open = 0, pkt_dgram = 0; /* the packet being built */
	int dg_held = 0; /* ngtcp2 took no datagram now: streams may */
	for (;;) {
		struct qstream *qs = next_ready(qc);
		ngtcp2_pkt_info pi;
		ngtcp2_ssize nw;
		size_t dlen = 0;
		const uint8_t *dg = wn__qdgram_head(qc, &dlen);
		if (dg && !dg_held && (qs ? !pkt_open && qc->dg_turn : 1)) {
			/* The path may have shrunk under a queued message (a
			 * move to a smaller carrier): one that cannot fit even
			 * an empty packet goes, never to be tried again. */
			if (dlen > wn__qdgram_max(qc)) {
				wn__qdgram_pop(qc);
				ep->stats.dgrams_drop_size++;
				continue;
			}
			ngtcp2_vec dv = {(uint8_t *)dg, dlen};
			int accepted = 0;
			nw = ngtcp2_conn_writev_datagram(
			    qc->conn, &ps.path, &pi, buf + off, room, &accepted,
			    NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, &dv, 1, ts);
			if (accepted) {
				wn__qdgram_pop(qc);
				ep->stats.dgrams_sent++;
				pkt_dgram = 1;
			}
			if (nw == NGTCP2_ERR_WRITE_MORE) {
				pkt_open = 1;
				continue;
			}
			if (nw == NGTCP2_ERR_INVALID_STATE ||
			    nw == NGTCP2_ERR_INVALID_ARGUMENT) {
				/* The peer takes no datagrams, or none this
				 * large: not fatal, and never sendable. */
				wn__qdgram_pop(qc);
				ep->stats.dgrams_drop_size++;
				continue;
			}
			if (nw < 0) {
				wn__qconn_fail(qc, (int)nw);
				return;
			}
			/* Not accepted with nw > 0: it did not fit the rest
			 * of this packet, which is complete; the next packet
			 * starts with it. Nothing written: congestion or
			 * pacing, and then the stream path below finds out;
			 * a datagram never holds the streams up. */
			if (nw == 0 && !accepted) {
				dg_held = 1;
				continue;
			}
		} else {
			ngtcp2_vec vec[QUIC_SEND_IOV];
			size_t nvec = 0;
			int64_t sid = -1;
			uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
			int fin = 0;
			if (qs) {
				/* A packet takes ~1.4 kB and chunks are 16 kB:
				 * a few iovecs always fill one, even from a
				 * chunk's tail. */
				struct iovec iov[QUIC_SEND_IOV];
				int n = wn_bufq_peek_iov_at(
				    &qs->sendq, qs->sent, iov, QUIC_SEND_IOV);
				size_t avail = 0;
				for (int i = 0; i < n; i++) {
					vec[i].base = iov[i].iov_base;
					vec[i].len = iov[i].iov_len;
					avail += iov[i].iov_len;
				}
				nvec = (size_t)n;
				sid = qs->sid;
				if (qs->fin_wanted &&
				    qs->sent + avail ==
				        wn_bufq_len(&qs->sendq)) {
					flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
					fin = 1;
				}
			}
			ngtcp2_ssize ndatalen = -1;
			nw = ngtcp2_conn_writev_stream(
			    qc->conn, &ps.path, &pi, buf + off, room, &ndatalen,
			    flags, sid, vec, nvec, ts);
			if (nw < 0) {
				if (nw == NGTCP2_ERR_WRITE_MORE) {
					after_write(qs, ndatalen, fin);
					pkt_open = 1;
					continue;
				}
				if (qs &&
				    (nw == NGTCP2_ERR_STREAM_DATA_BLOCKED ||
				     nw == NGTCP2_ERR_STREAM_SHUT_WR ||
				     nw == NGTCP2_ERR_STREAM_NOT_FOUND)) {
					qs->blocked_epoch = qc->write_epoch;
					continue;
				}
				wn__qconn_fail(qc, (int)nw);
				return;
			}
			if (qs) {
				if (ndatalen >= 0)
					after_write(qs, ndatalen, fin);
				else
					qs->blocked_epoch = qc->write_epoch;
			}
		}
		/* A packet is complete (or none was written): the next one
		 * starts with a datagram if this one carried none. */
		qc->dg_turn = !pkt_dgram && qc->dg_count > 0;
		pkt_open = 0;
		pkt_dgram = 0;
		if (nw == 0)
			break;
		if (npkts > 0 &&
		    (!same_remote(&bpath, &ps.path) || (size_t)nw > seg)) {
			/* ngtcp2 switched paths (a probe or a migration), or
			 * this packet is larger than the batch's segments (a
			 * small datagram's packet started the batch): what
			 * was batched so far goes out alone first. */
			wn__qconn_send_batch(qc, &bpath, buf, off, seg);
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
		    off + room > ep->txcap || off >= budget) {
			int rc =
			    wn__qconn_send_batch(qc, &bpath, buf, off, seg);
			written += off;
			budget = budget > off ? budget - off : 0;
			off = 0;
			npkts = 0;
			if (rc == WN_EAGAIN || budget == 0)
				break;
		}
	}
	if (off > 0)
		wn__qconn_send_batch(qc, &bpath, buf, off, seg);
	written += off;
	/* ngtcp2 0.12 paces from a 333 ms initial RTT guess, which would hold
	 * the client's Finished back ~22 ms: pace only after the handshake. */
	if (ngtcp2_conn_get_handshake_completed(qc->conn))
		pace(qc, written, ts);
	if (qc->stops_owed)
		send_owed_stops(qc);
	wn__qconn_arm_timer(qc, ts);
}
