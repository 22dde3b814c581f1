/* Stream carrier framing (frame.h). */
#include "core/frame.h"

#include <string.h>

static int put_record(struct wn_wr *wr, uint16_t hdr, const uint8_t *body,
                      size_t len)
{
	if (wn_wr_space(wr) < WN_FRAME_HDR + len) {
		wn_wr_u16be(wr, hdr); /* sets the sticky error */
		wn_wr_bytes(wr, body, len);
		return wr->err ? wr->err : WN_ENOSPC;
	}
	wn_wr_u16be(wr, hdr);
	wn_wr_bytes(wr, body, len);
	return wr->err;
}

int wn_frame_put_data(struct wn_wr *wr, const uint8_t *pkt, size_t len)
{
	if (len == 0 || len > WN_FRAME_MAX || !pkt)
		return WN_EINVAL;
	return put_record(wr, (uint16_t)len, pkt, len);
}

int wn_frame_put_padding(struct wn_wr *wr, const uint8_t *pad, size_t len)
{
	if (len > WN_FRAME_MAX || (len > 0 && !pad))
		return WN_EINVAL;
	return put_record(wr, (uint16_t)(WN_FRAME_PAD_BIT | len), pad, len);
}

void wn_frame_dec_init(struct wn_frame_dec *d, uint8_t *buf, size_t cap)
{
	memset(d, 0, sizeof(*d));
	d->buf = buf;
	d->cap = cap > WN_FRAME_MAX ? WN_FRAME_MAX : cap;
}

/* Takes a complete header: sets up the record or fails. */
static int start_record(struct wn_frame_dec *d)
{
	uint16_t h = wn_get_u16be(d->hdr);

	d->pad = (h & WN_FRAME_PAD_BIT) != 0;
	d->body = h & WN_FRAME_MAX;
	d->have = 0;
	if (!d->pad && (d->body == 0 || d->body > d->cap))
		return d->err = WN_EPROTO;
	return 0;
}

int wn_frame_dec_feed(struct wn_frame_dec *d, const uint8_t *in, size_t len,
                      size_t *used, const uint8_t **pkt, size_t *pktlen)
{
	size_t off = 0, n;

	*used = 0;
	if (d->err)
		return d->err;
	while (off < len) {
		if (d->hdrlen < WN_FRAME_HDR) {
			d->hdr[d->hdrlen++] = in[off++];
			if (d->hdrlen < WN_FRAME_HDR)
				continue;
			if (start_record(d) < 0) {
				*used = off;
				return d->err;
			}
			if (d->body > 0)
				continue;
			d->hdrlen = 0; /* an empty padding record */
			continue;
		}
		n = d->body - d->have;
		if (n > len - off)
			n = len - off;
		if (d->pad) {
			d->have += n;
			off += n;
		} else if (d->have == 0 && n == d->body) {
			/* Whole in this input: hand it out in place. */
			*pkt = in + off;
			*pktlen = n;
			off += n;
			d->hdrlen = 0;
			*used = off;
			return 1;
		} else {
			memcpy(d->buf + d->have, in + off, n);
			d->have += n;
			off += n;
		}
		if (d->have < d->body)
			continue;
		d->hdrlen = 0;
		if (!d->pad) {
			*pkt = d->buf;
			*pktlen = d->body;
			*used = off;
			return 1;
		}
	}
	*used = off;
	return 0;
}
