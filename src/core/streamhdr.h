/* The stream header: the first bytes of every tunnelled stream name its
 * target, so opening a stream costs no round trip (the server answers
 * nothing on success; it resets the stream on refusal).
 *
 *   u8  version      1
 *   u8  type         0 default target (the server's fixed one)
 *                    1 DNS name   u8 len (1..253), name, u16 port
 *                    2 IPv4       4 bytes, u16 port
 *                    3 IPv6       16 bytes, u16 port
 *                    4 unix path  u8 len (1..107), path
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

#endif
