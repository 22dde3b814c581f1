/* kcp-go's FEC framing (see kcpgo.h). */
#include "core/kcpgo.h"

#include "core/kcp.h"
#include "util/err.h"
#include "util/rw.h"

int wn_kcpgo_parse(const uint8_t *p, size_t len, struct wn_kcpgo_pkt *out)
{
	uint16_t type = len >= WN_KCPGO_FEC_HDR ? wn_get_u16le(p + 4) : 0;
	if (type == WN_KCPGO_FEC_PARITY) {
		out->kind = WN_KCPGO_PARITY;
		out->seqid = wn_get_u32le(p);
		out->kcp = NULL;
		out->kcp_len = 0;
		out->shard = p + WN_KCPGO_FEC_HDR;
		out->shard_len = len - WN_KCPGO_FEC_HDR;
		return 0;
	}
	if (type == WN_KCPGO_FEC_DATA) {
		if (len < WN_KCPGO_FEC_DATA_HDR)
			return WN_ETRUNC;
		size_t size = wn_get_u16le(p + WN_KCPGO_FEC_HDR);
		if (size < 2 || size > len - WN_KCPGO_FEC_HDR)
			return WN_ETRUNC;
		out->kind = WN_KCPGO_DATA;
		out->seqid = wn_get_u32le(p);
		out->shard = p + WN_KCPGO_FEC_HDR;
		out->shard_len = size;
		out->kcp = p + WN_KCPGO_FEC_DATA_HDR;
		out->kcp_len = size - 2;
		return 0;
	}
	if (len < WN_KCP_OVERHEAD)
		return WN_ETRUNC;
	out->kind = WN_KCPGO_RAW;
	out->seqid = 0;
	out->kcp = p;
	out->kcp_len = len;
	out->shard = NULL;
	out->shard_len = 0;
	return 0;
}

void wn_kcpgo_put_data_hdr(uint8_t hdr[WN_KCPGO_FEC_DATA_HDR], uint32_t seqid,
                           size_t kcp_len)
{
	wn_put_u32le(hdr, seqid);
	wn_put_u16le(hdr + 4, WN_KCPGO_FEC_DATA);
	wn_put_u16le(hdr + 6, (uint16_t)(kcp_len + 2));
}

void wn_kcpgo_put_parity_hdr(uint8_t hdr[WN_KCPGO_FEC_HDR], uint32_t seqid)
{
	wn_put_u32le(hdr, seqid);
	wn_put_u16le(hdr + 4, WN_KCPGO_FEC_PARITY);
}

uint32_t wn_kcpgo_next_seqid(uint32_t seqid, unsigned shards)
{
	if (shards == 0)
		shards = 1;
	uint32_t paws = 0xFFFFFFFFu / shards * shards;
	return (seqid + 1) % paws;
}
