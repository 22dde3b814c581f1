/* Stream carrier framing: packets as records on a byte stream.
 *
 * A tcp or tls carrier connection carries, after its preamble
 * (crypto/preamble.h), a sequence of records. Each record is a 2-byte
 * big-endian header followed by its body:
 *
 *   bit 15     P: 0 = data (one packet), 1 = padding (ignored)
 *   bits 0-14  body length in bytes
 *
 * A data record carries exactly one packet of 1..WN_FRAME_MAX bytes; a
 * padding record carries 0..WN_FRAME_MAX bytes that the receiver skips. A
 * data record with an empty body, or a body longer than the decoder's limit,
 * is a protocol error: the connection is closed.
 *
 * Pure: no I/O, no clock, no allocation. Padding bytes are supplied by the
 * caller (random bytes, for a plain tcp carrier where framing is visible). */
#ifndef WN_CORE_FRAME_H
#define WN_CORE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "util/rw.h"

#define WN_FRAME_HDR 2
#define WN_FRAME_PAD_BIT 0x8000u
#define WN_FRAME_MAX 0x7fffu /* largest body of either type */

/* Appends one data record holding pkt[0, len) (1 <= len <= WN_FRAME_MAX).
 * Returns 0, WN_EINVAL for a bad length, or WN_ENOSPC (wr's sticky error)
 * when it does not fit. */
int wn_frame_put_data(struct wn_wr *wr, const uint8_t *pkt, size_t len);

/* Appends one padding record whose body is the caller's pad[0, len)
 * (len <= WN_FRAME_MAX). Returns 0, WN_EINVAL or WN_ENOSPC. */
int wn_frame_put_padding(struct wn_wr *wr, const uint8_t *pad, size_t len);

/* Streaming decoder. It accepts input split anywhere; a packet that arrives
 * whole in one input buffer is handed out in place, one that is split is
 * gathered into buf. The caller owns buf (cap bytes, at least the largest
 * packet it accepts) and keeps it alive as long as the decoder. */
struct wn_frame_dec {
	uint8_t *buf;
	size_t cap; /* largest data body accepted */
	uint8_t hdr[WN_FRAME_HDR];
	size_t hdrlen; /* header bytes gathered */
	size_t body;   /* body length of the current record */
	size_t have;   /* body bytes seen of the current record */
	int pad;       /* the current record is padding */
	int err;       /* sticky: once set, every call returns it */
};

/* Initialises d with the caller's gather buffer (cap >= 1, at most
 * WN_FRAME_MAX is used). */
void wn_frame_dec_init(struct wn_frame_dec *d, uint8_t *buf, size_t cap);

/* Consumes input from in[0, len) until one packet is complete or the input
 * is used up. *used is the number of input bytes consumed. Returns 1 with
 * *pkt and *pktlen set to the packet (pointing into `in` or into the decoder's
 * buffer, valid until the next call), 0 when all input was consumed without
 * completing a packet, or WN_EPROTO (sticky) for a malformed record. Call
 * again with the rest of the input after a 1. */
int wn_frame_dec_feed(struct wn_frame_dec *d, const uint8_t *in, size_t len,
                      size_t *used, const uint8_t **pkt, size_t *pktlen);

#endif
