#include "util/rw.h"

uint64_t wn_rd_varint(struct wn_rd *rd)
{
	const uint8_t *q;
	uint64_t v;
	size_t n, i;

	if (rd->err || rd->off == rd->len) {
		wn_rd_fail(rd, WN_ETRUNC);
		return 0;
	}
	/* The two high bits of the first byte give the length (1 << prefix),
	 * so the whole varint is bounds-checked before any of it is taken. */
	n = (size_t)1 << (rd->p[rd->off] >> 6);
	q = wn_rd_ptr(rd, n);
	if (!q)
		return 0;
	v = q[0] & 0x3f;
	for (i = 1; i < n; i++)
		v = v << 8 | q[i];
	return v;
}

int wn_wr_varint(struct wn_wr *wr, uint64_t v)
{
	size_t n = wn_varint_len(v);
	uint8_t *q;

	if (n == 0) {
		if (!wr->err)
			wr->err = WN_ERANGE;
		return wr->err;
	}
	q = wn_wr_ptr(wr, n);
	if (!q)
		return wr->err;
	switch (n) {
	case 1:
		q[0] = (uint8_t)v;
		break;
	case 2:
		wn_put_u16be(q, (uint16_t)(v | UINT64_C(0x4000)));
		break;
	case 4:
		wn_put_u32be(q, (uint32_t)(v | UINT64_C(0x80000000)));
		break;
	default:
		wn_put_u64be(q, v | UINT64_C(0xc000000000000000));
		break;
	}
	return 0;
}
