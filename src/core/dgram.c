/* The datagram flow message codec: see dgram.h. */
#include "core/dgram.h"

#include <string.h>

#include "util/err.h"
#include "util/rw.h"

int wn_dgram_target_encode(const struct wn_endpoint *target, uint8_t *buf,
                           size_t cap)
{
	uint8_t tmp[WN_STREAMHDR_MAX];

	if (target && target->kind == WN_HOST_UNIX)
		return WN_EINVAL;
	/* The stream header's encoding, without its version byte. */
	int n = wn_streamhdr_encode(target, tmp, sizeof(tmp));
	if (n < 0)
		return n;
	if ((size_t)n - 1 > cap)
		return WN_ENOSPC;
	memcpy(buf, tmp + 1, (size_t)n - 1);
	return n - 1;
}

int wn_dgram_target_decode(const uint8_t *buf, size_t len,
                           struct wn_endpoint *target, int *is_default)
{
	uint8_t tmp[WN_STREAMHDR_MAX];
	size_t n = len < WN_DGRAM_TARGET_MAX ? len : WN_DGRAM_TARGET_MAX;

	if (n == 0)
		return WN_EPROTO;
	/* The stream header decoder reads the version byte first; give it
	 * one so both share one definition of the address encoding. */
	tmp[0] = WN_STREAMHDR_VERSION;
	memcpy(tmp + 1, buf, n);
	int r = wn_streamhdr_decode(tmp, n + 1, target, is_default);
	if (r < 0 || target->kind == WN_HOST_UNIX)
		return WN_EPROTO;
	target->scheme = WN_SCHEME_UDP;
	return r - 1;
}

/* What each type takes: allowed flags, required flags, whether a payload
 * or a reason follows. */
static int type_ok(unsigned type, unsigned flags)
{
	switch (type) {
	case WN_DGRAM_DATA:
		return 1;
	case WN_DGRAM_OPEN:
		return flags == WN_DGRAM_F_TARGET;
	case WN_DGRAM_ACK:
	case WN_DGRAM_CLOSE:
	case WN_DGRAM_UNKNOWN:
	case WN_DGRAM_FEC:
		return flags == 0;
	default:
		return 0;
	}
}

size_t wn_dgram_hdr_len(const struct wn_dgram_msg *m)
{
	size_t n = wn_varint_len(m->flow) + 1;

	if (m->flags & WN_DGRAM_F_TARGET)
		n += m->target_len;
	if (m->flags & WN_DGRAM_F_FRAG)
		n += WN_DGRAM_FRAG_HDR;
	if (m->type == WN_DGRAM_CLOSE)
		n += 1;
	if (m->type == WN_DGRAM_FEC)
		n += WN_DGRAM_FEC_HDR + (m->fec_index >= m->fec_data);
	return n;
}

/* Whether an FEC header's fields are what a decoder takes. */
static int fec_ok(const struct wn_dgram_msg *m)
{
	if (m->fec_data < 1 || m->fec_data > WN_DGRAM_FEC_DATA_MAX ||
	    m->fec_parity < 1 || m->fec_parity > WN_DGRAM_FEC_PARITY_MAX ||
	    m->fec_delay < 1 ||
	    m->fec_index >= (unsigned)m->fec_data + m->fec_parity)
		return 0;
	if (m->fec_index >= m->fec_data &&
	    (m->fec_count < 1 || m->fec_count > m->fec_data))
		return 0;
	return 1;
}

int wn_dgram_encode_hdr(const struct wn_dgram_msg *m, uint8_t *buf, size_t cap)
{
	struct wn_wr wr;

	if (m->flow > WN_DGRAM_FLOW_MAX || m->type > WN_DGRAM_TYPE_MASK ||
	    (m->flags & ~(WN_DGRAM_F_TARGET | WN_DGRAM_F_FRAG)) ||
	    !type_ok(m->type, m->flags))
		return WN_EINVAL;
	if ((m->flags & WN_DGRAM_F_TARGET) &&
	    (m->target_len == 0 || m->target_len > WN_DGRAM_TARGET_MAX))
		return WN_EINVAL;
	if ((m->flags & WN_DGRAM_F_FRAG) &&
	    (m->frag_index > 1 ||
	     (m->frag_index == 1 && (m->flags & WN_DGRAM_F_TARGET))))
		return WN_EINVAL;
	wn_wr_init(&wr, buf, cap);
	wn_wr_varint(&wr, m->flow);
	wn_wr_u8(&wr, (uint8_t)(m->type | m->flags));
	if (m->flags & WN_DGRAM_F_FRAG) {
		wn_wr_u16be(&wr, m->dgram_id);
		wn_wr_u8(&wr, m->frag_index);
	}
	if (m->flags & WN_DGRAM_F_TARGET)
		wn_wr_bytes(&wr, m->target, m->target_len);
	if (m->type == WN_DGRAM_CLOSE)
		wn_wr_u8(&wr, m->reason);
	if (m->type == WN_DGRAM_FEC) {
		if (!fec_ok(m))
			return WN_EINVAL;
		wn_wr_u16be(&wr, m->fec_group);
		wn_wr_u8(&wr, m->fec_index);
		wn_wr_u8(&wr, m->fec_data);
		wn_wr_u8(&wr, m->fec_parity);
		wn_wr_u8(&wr, m->fec_delay);
		if (m->fec_index >= m->fec_data)
			wn_wr_u8(&wr, m->fec_count);
	}
	if (wr.err)
		return WN_ENOSPC;
	return (int)wn_wr_len(&wr);
}

/* Decodes what follows the flow id (already in m->flow): rd reads msg
 * from the type byte on. */
static int decode_rest(const uint8_t *msg, size_t len, struct wn_rd *rd,
                       struct wn_dgram_msg *m)
{
	uint8_t tf = wn_rd_u8(rd);
	if (rd->err || (tf & WN_DGRAM_F_RESERVED))
		return WN_EPROTO;
	m->type = tf & WN_DGRAM_TYPE_MASK;
	m->flags = tf & (WN_DGRAM_F_TARGET | WN_DGRAM_F_FRAG);
	if (!type_ok(m->type, m->flags))
		return WN_EPROTO;
	if (m->type == WN_DGRAM_FEC) {
		m->fec_group = wn_rd_u16be(rd);
		m->fec_index = wn_rd_u8(rd);
		m->fec_data = wn_rd_u8(rd);
		m->fec_parity = wn_rd_u8(rd);
		m->fec_delay = wn_rd_u8(rd);
		int parity = !rd->err && m->fec_index >= m->fec_data;
		if (parity)
			m->fec_count = wn_rd_u8(rd);
		if (rd->err || !fec_ok(m))
			return WN_EPROTO;
		size_t rest = wn_rd_remaining(rd);
		/* A data shard is a message (a type byte at least) and its
		 * length; a parity shard is a length and a message too. */
		if (parity ? rest < 3 || rest > WN_DGRAM_FEC_SHARD_MAX
		           : rest < 1 || rest + 2 > WN_DGRAM_FEC_SHARD_MAX)
			return WN_EPROTO;
		m->body = m->payload = msg + (len - rest);
		m->body_len = m->payload_len = rest;
		return 0;
	}
	if (m->flags & WN_DGRAM_F_FRAG) {
		m->dgram_id = wn_rd_u16be(rd);
		m->frag_index = wn_rd_u8(rd);
		if (rd->err || m->frag_index > 1 ||
		    (m->frag_index == 1 && (m->flags & WN_DGRAM_F_TARGET)))
			return WN_EPROTO;
	}
	m->body = msg + (len - wn_rd_remaining(rd));
	m->body_len = wn_rd_remaining(rd);
	if (m->flags & WN_DGRAM_F_TARGET) {
		struct wn_endpoint ep;
		int dflt;
		size_t off = len - wn_rd_remaining(rd);
		int n =
		    wn_dgram_target_decode(msg + off, len - off, &ep, &dflt);
		if (n < 0)
			return WN_EPROTO;
		m->target = msg + off;
		m->target_len = (size_t)n;
		wn_rd_skip(rd, (size_t)n);
	}
	if (m->type == WN_DGRAM_CLOSE) {
		m->reason = wn_rd_u8(rd);
		if (rd->err)
			return WN_EPROTO;
	}
	size_t rest = wn_rd_remaining(rd);
	if (m->type == WN_DGRAM_DATA) {
		m->payload = msg + (len - rest);
		m->payload_len = rest;
	} else if (rest != 0) {
		return WN_EPROTO;
	}
	return 0;
}

int wn_dgram_decode(const uint8_t *msg, size_t len, struct wn_dgram_msg *m)
{
	struct wn_rd rd;

	memset(m, 0, sizeof(*m));
	wn_rd_init(&rd, msg, len);
	m->flow = wn_rd_varint(&rd);
	if (rd.err)
		return WN_EPROTO;
	return decode_rest(msg, len, &rd, m);
}

int wn_dgram_decode_inner(uint64_t flow, const uint8_t *msg, size_t len,
                          struct wn_dgram_msg *m)
{
	struct wn_rd rd;

	memset(m, 0, sizeof(*m));
	m->flow = flow;
	wn_rd_init(&rd, msg, len);
	int r = decode_rest(msg, len, &rd, m);
	if (r < 0)
		return r;
	if (m->type != WN_DGRAM_DATA && m->type != WN_DGRAM_OPEN)
		return WN_EPROTO;
	return 0;
}
