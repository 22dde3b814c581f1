/* The stream header: the first bytes of every tunnelled stream name its
 * target, so opening a stream costs no round trip (the server answers
 * nothing on success; it resets the stream on refusal).
 *
 *   u8  version      1
 *   u8  type         low 7 bits: the target's type; bit 0x80: confirm
 *                    0 default target (the server's fixed one)
 *                    1 DNS name   u8 len (1..253), name, u16 port
 *                    2 IPv4       4 bytes, u16 port
 *                    3 IPv6       16 bytes, u16 port
 *                    4 unix path  u8 len (1..107), path
 *
 * Confirm (0x80 in the type byte): the client asks the server to write one
 * status byte, 0 (WN_STREAMHDR_STATUS_OK), as the first byte of the reverse
 * direction once the target is connected; failures still reset the stream.
 * Without it the server writes nothing of its own (the original format).
 *
 * All integers big-endian. Mirrored in docs/wire-format.md. Pure. */
#ifndef WN_CORE_STREAMHDR_H
#define WN_CORE_STREAMHDR_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"

#define WN_STREAMHDR_VERSION 1
#define WN_STREAMHDR_DEFAULT 0
#define WN_STREAMHDR_NAME 1
#define WN_STREAMHDR_IPV4 2
#define WN_STREAMHDR_IPV6 3
#define WN_STREAMHDR_UNIX 4
#define WN_STREAMHDR_MAX (2 + 1 + 253 + 2) /* the longest header */

#define WN_STREAMHDR_F_CONFIRM 0x80u /* flag bit of the type byte */
#define WN_STREAMHDR_TYPE_MASK 0x7fu
#define WN_STREAMHDR_STATUS_OK 0 /* the confirm status byte: connected */

/* Encodes the header for target (NULL: the server's default target) into
 * buf. Returns the length written, or WN_ENOSPC / WN_EINVAL. */
int wn_streamhdr_encode(const struct wn_endpoint *target, uint8_t *buf,
                        size_t cap);

/* Decodes a header from the start of buf. Returns the header length and
 * fills *target (kind/host/port/path/sa as wn_endpoint_parse would, with
 * scheme WN_SCHEME_TCP or WN_SCHEME_UNIX), *is_default for type 0;
 * WN_EAGAIN if buf holds only part of a header; WN_EPROTO if malformed. */
int wn_streamhdr_decode(const uint8_t *buf, size_t len,
                        struct wn_endpoint *target, int *is_default);

/* As wn_streamhdr_encode, with flags (WN_STREAMHDR_F_*) in the type byte.
 * Unknown flag bits give WN_EINVAL. */
int wn_streamhdr_encode_flags(const struct wn_endpoint *target, unsigned flags,
                              uint8_t *buf, size_t cap);

/* As wn_streamhdr_decode, and *flags receives the flag bits of the type
 * byte (WN_STREAMHDR_F_*). wn_streamhdr_decode itself rejects any flag
 * (WN_EPROTO), so an engine that cannot honour a flag resets the stream
 * rather than leave its client waiting for a status byte. */
int wn_streamhdr_decode_flags(const uint8_t *buf, size_t len,
                              struct wn_endpoint *target, int *is_default,
                              unsigned *flags);

/* Collects a stream's header from its first bytes as they arrive, in any
 * pieces (engines receive stream data in chunks). Zero it to start. */
struct wn_streamhdr_acc {
	uint8_t buf[WN_STREAMHDR_MAX];
	size_t len;
};

/* Feeds the next len bytes of the stream. *used receives how many of them
 * belong to the header. Returns WN_EAGAIN while the header is incomplete
 * (all of data was header), the header's total length once it is complete
 * (target, is_default and flags filled as by wn_streamhdr_decode_flags;
 * data beyond *used is the stream's payload), or WN_EPROTO. */
int wn_streamhdr_take(struct wn_streamhdr_acc *a, const uint8_t *data,
                      size_t len, size_t *used, struct wn_endpoint *target,
                      int *is_default, unsigned *flags);

#endif
