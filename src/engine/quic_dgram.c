/* A QUIC connection's datagrams (RFC 9221): the bounded queue of flow
 * messages that the write pass (quic_write.c) turns into DATAGRAM frames,
 * the largest message one frame carries on the current path, and the
 * frames received, which go to the flow base (flow_base.h). One flow
 * message is one DATAGRAM frame; the flow base splits what is larger.
 *
 * The queue is a ring of preallocated slots: sending a datagram copies it
 * into the next slot and costs no allocation. Datagrams are unreliable,
 * so a full queue (the path is congested, or the front end sends faster
 * than the path carries) drops its oldest message to take the newest:
 * fresh datagrams matter more to the protocols carried (games, VoIP,
 * WireGuard) than stale ones, and nothing waits. */
#include <stdlib.h>
#include <string.h>

#include "engine/quic_int.h"
#include "util/err.h"

/* The short header's fixed part: the first byte, then the packet number
 * at its longest (ngtcp2 picks 1..4 bytes), then the AEAD tag. */
#define SHORT_HDR_FIXED (1 + 4)
#define AEAD_TAG 16

/* Bytes of the DATAGRAM frame (type 0x31, with a length) around a
 * message of len bytes. */
static size_t frame_overhead(size_t len)
{
	return 1 + (len < 64 ? 1 : len < 16384 ? 2 : 4);
}

/* The largest message m with m + frame_overhead(m) <= room. */
static size_t fit(size_t room)
{
	size_t m = 0;
	for (size_t hdr = 2; hdr <= 5; hdr++) {
		if (room <= hdr)
			break;
		size_t cand = room - hdr;
		if (cand + frame_overhead(cand) <= room && cand > m)
			m = cand;
	}
	return m;
}

size_t wn__qdgram_max(struct qconn *qc)
{
	if (qc->state != QC_UP || !qc->conn)
		return 0;
	const ngtcp2_transport_params *rp =
	    ngtcp2_conn_get_remote_transport_params(qc->conn);
	if (!rp || rp->max_datagram_frame_size == 0)
		return 0;
	/* The write pass sends no packet larger than this (quic_write.c). */
	size_t pkt = ngtcp2_conn_get_path_max_tx_udp_payload_size(qc->conn);
	if (pkt > wn_carrier_max_packet(qc->carrier))
		pkt = wn_carrier_max_packet(qc->carrier);
	size_t over = SHORT_HDR_FIXED +
	              ngtcp2_conn_get_dcid(qc->conn)->datalen + AEAD_TAG;
	if (pkt <= over)
		return 0;
	size_t m = fit(pkt - over);
	uint64_t peer = rp->max_datagram_frame_size;
	size_t pm = peer >= (uint64_t)SIZE_MAX ? SIZE_MAX : fit((size_t)peer);
	if (pm < m)
		m = pm;
	return m < QUIC_DGRAM_SLOT ? m : QUIC_DGRAM_SLOT;
}

int wn__qdgram_queue(struct qconn *qc, const uint8_t *msg, size_t len)
{
	if (qc->state != QC_UP)
		return WN_EAGAIN;
	size_t max = wn__qdgram_max(qc);
	if (max == 0)
		return WN_EAGAIN;
	if (len > max)
		return WN_EMSGSIZE;
	if (!qc->dg_buf) {
		qc->dg_buf = malloc((size_t)QUIC_DGRAM_SLOTS * QUIC_DGRAM_SLOT);
		if (!qc->dg_buf)
			return WN_EAGAIN;
	}
	if (qc->dg_count == QUIC_DGRAM_SLOTS) {
		wn__qdgram_pop(qc);
		qc->ep->stats.dgrams_drop_queue++;
	}
	unsigned i = (qc->dg_head + qc->dg_count) % QUIC_DGRAM_SLOTS;
	memcpy(qc->dg_buf + (size_t)i * QUIC_DGRAM_SLOT, msg, len);
	qc->dg_len[i] = (uint16_t)len;
	qc->dg_count++;
	wn__qconn_schedule(qc);
	return 0;
}

const uint8_t *wn__qdgram_head(const struct qconn *qc, size_t *len)
{
	if (qc->dg_count == 0)
		return NULL;
	*len = qc->dg_len[qc->dg_head];
	return qc->dg_buf + (size_t)qc->dg_head * QUIC_DGRAM_SLOT;
}

void wn__qdgram_pop(struct qconn *qc)
{
	if (qc->dg_count == 0)
		return;
	qc->dg_head = (qc->dg_head + 1) % QUIC_DGRAM_SLOTS;
	qc->dg_count--;
}

void wn__qdgram_free(struct qconn *qc)
{
	free(qc->dg_buf);
	qc->dg_buf = NULL;
	qc->dg_count = 0;
}

void wn__qdgram_recv(struct qconn *qc, const uint8_t *data, size_t len)
{
	qc->ep->stats.dgrams_recv++;
	/* Frames before the session is up (0-RTT is not used) or after its
	 * flows ended have nowhere to go. */
	if (qc->state == QC_UP && qc->flows)
		wn_fb_recv(qc->flows, data, len);
}

/* ---- the flow base's transport for a server connection ---------------- */

static int server_send(struct wn_flows *fl, const uint8_t *msg, size_t len)
{
	return wn__qdgram_queue(wn_fb_ctx(fl), msg, len);
}

static size_t server_max_msg(const struct wn_flows *fl)
{
	return wn__qdgram_max(wn_fb_ctx(fl));
}

static uint64_t server_now_ms(const struct wn_flows *fl)
{
	const struct qconn *qc = wn_fb_ctx(fl);
	return wn__quic_now_ms(qc->ep);
}

const struct wn_fb_transport wn__quic_server_fb = {
    .send = server_send,
    .max_msg = server_max_msg,
    .now_ms = server_now_ms,
};
