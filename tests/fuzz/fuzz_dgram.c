/* Fuzz target: the datagram flow message, which an authenticated peer
 * controls. Decoding must never crash; what decodes must encode back to
 * the same header and decode to the same fields; every fragment fed to
 * the reassembly buffer keeps it within its bounds; and every FEC shard
 * fed to a decoder (of the shard's counts) rebuilds only messages within
 * the shard size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dgfec.h"
#include "core/dgfrag.h"
#include "core/dgram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct wn_dgram_msg *a, const struct wn_dgram_msg *b)
{
	if (a->flow != b->flow || a->type != b->type || a->flags != b->flags ||
	    a->target_len != b->target_len || a->dgram_id != b->dgram_id ||
	    a->frag_index != b->frag_index || a->reason != b->reason ||
	    a->payload_len != b->payload_len || a->fec_group != b->fec_group ||
	    a->fec_index != b->fec_index || a->fec_data != b->fec_data ||
	    a->fec_parity != b->fec_parity || a->fec_delay != b->fec_delay ||
	    a->fec_count != b->fec_count ||
	    (a->target_len && memcmp(a->target, b->target, a->target_len)) ||
	    (a->payload_len && memcmp(a->payload, b->payload, a->payload_len)))
		abort();
}

static void rebuilt(void *ctx, const uint8_t *msg, size_t len)
{
	struct wn_dgram_msg in;
	(void)ctx;
	if (len < 1 || len + 2 > WN_DGRAM_FEC_SHARD_MAX)
		abort();
	(void)wn_dgram_decode_inner(1, msg, len, &in);
}

/* Feeds an FEC shard to a decoder of its counts (kept across inputs, so
 * groups build up over a corpus run). */
static void fec(const struct wn_dgram_msg *m)
{
	static struct wn_dgfec_dec *d;
	static unsigned dk, dm;
	struct wn_dgram_msg in;

	if (!d || dk != m->fec_data || dm != m->fec_parity) {
		wn_dgfec_dec_free(d);
		d = NULL;
		if (wn_dgfec_dec_new(m->fec_data, m->fec_parity, &d) < 0)
			abort();
		dk = m->fec_data;
		dm = m->fec_parity;
	}
	if (m->fec_index < m->fec_data) {
		(void)wn_dgram_decode_inner(m->flow, m->body, m->body_len, &in);
		(void)wn_dgfec_dec_data(d, m->fec_group, m->fec_index, m->body,
		                        m->body_len);
	} else {
		wn_dgfec_dec_parity(d, m->fec_group, m->fec_index, m->fec_count,
		                    m->body, m->body_len);
	}
	(void)wn_dgfec_dec_recover(d, m->fec_group, rebuilt, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wn_dgfrag frag;
	static uint8_t out[2 * WN_DGFRAG_PART_MAX];
	static uint8_t buf[WN_DGRAM_HDR_MAX + 70000];
	struct wn_dgram_msg m, m2;

	if (wn_dgram_decode(data, size, &m) < 0)
		return 0;
	int h = wn_dgram_encode_hdr(&m, buf, sizeof(buf));
	if (h < 0 || (size_t)h != wn_dgram_hdr_len(&m) ||
	    (size_t)h + m.payload_len > sizeof(buf))
		abort();
	if (m.payload_len)
		memcpy(buf + h, m.payload, m.payload_len);
	if (wn_dgram_decode(buf, (size_t)h + m.payload_len, &m2) < 0)
		abort();
	same(&m, &m2);
	if (m.type == WN_DGRAM_FEC)
		fec(&m);
	if (m.target_len) {
		struct wn_endpoint ep;
		int dflt;
		uint8_t t[WN_DGRAM_TARGET_MAX];
		if (wn_dgram_target_decode(m.target, m.target_len, &ep,
		                           &dflt) != (int)m.target_len)
			abort();
		int n = wn_dgram_target_encode(dflt ? NULL : &ep, t, sizeof(t));
		if (n != (int)m.target_len || memcmp(t, m.target, m.target_len))
			abort();
	}
	if (m.flags & WN_DGRAM_F_FRAG) {
		uint8_t meta;
		if (frag.timeout_ms == 0)
			wn_dgfrag_init(&frag, 0, NULL, NULL);
		int n = wn_dgfrag_add(&frag, m.flow, m.flow & 7, m.dgram_id,
		                      m.frag_index, (uint8_t)m.flags, m.body,
		                      m.body_len, out, sizeof(out), &meta);
		if (n > (int)sizeof(out) ||
		    wn_dgfrag_held(&frag) > WN_DGFRAG_SLOTS)
			abort();
	}
	return 0;
}
