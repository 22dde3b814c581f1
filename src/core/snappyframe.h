/* Snappy's framing format (google/snappy framing_format.txt), the
 * compression kcptun puts between KCP and smux unless -nocomp: a stream of
 * chunks, each a type byte, a 24-bit little-endian length and the body.
 *
 *   0xFF stream identifier, body "sNaPpY" (must come first)
 *   0x00 compressed data:   u32 LE masked CRC-32C of the uncompressed
 *                           bytes, then a snappy block (libsnappy)
 *   0x01 uncompressed data: u32 LE masked CRC-32C, then the bytes
 *   0xFE padding, 0x80-0xFD reserved: skipped; 0x02-0x7F: an error
 *
 * A data chunk holds at most 65536 uncompressed bytes. The masked CRC is
 * ((crc >> 15) | (crc << 17)) + 0xA282EAD8. Like Go's snappy writer, the
 * encoder sends a chunk compressed only when that saves at least 1/8.
 *
 * Pure: no I/O, no clock. Mirrored in docs/wire-format.md ("kcptun profile
 * (kcp-go framing)"). */
#ifndef WN_CORE_SNAPPYFRAME_H
#define WN_CORE_SNAPPYFRAME_H

#include <stddef.h>
#include <stdint.h>

#define WN_SNAPPY_BLOCK 65536 /* uncompressed bytes per data chunk */
#define WN_SNAPPY_ID_LEN 10   /* the stream identifier chunk */

/* ---- encoder --------------------------------------------------------- */

/* The most wn_snappy_encode writes for n bytes of input (n <= 65536),
 * stream identifier included. */
size_t wn_snappy_encode_bound(size_t n);

/* Writes in[0, n) (n <= 65536) as one data chunk at out (cap at least
 * wn_snappy_encode_bound(n)), preceded by the stream identifier if
 * *started is 0 (then set). Returns the bytes written, or 0 if cap is too
 * small or n too large. */
size_t wn_snappy_encode(int *started, const uint8_t *in, size_t n, uint8_t *out,
                        size_t cap);

/* ---- decoder --------------------------------------------------------- */

/* Called with each chunk's uncompressed bytes (valid during the call).
 * A negative return stops decoding and is passed on. */
typedef int (*wn_snappy_out_fn)(void *ctx, const uint8_t *data, size_t len);

struct wn_snappy_dec;

/* Creates a decoder. It starts small and grows with the stream, to about
 * 140 KiB at most: its chunk buffer to the longest chunk body received
 * (as the bytes arrive), a 64 KiB block with the first compressed chunk.
 * Returns 0 or WN_ENOMEM. */
int wn_snappy_dec_new(struct wn_snappy_dec **d);

void wn_snappy_dec_free(struct wn_snappy_dec *d);

/* The bytes d holds now, itself included. */
size_t wn_snappy_dec_footprint(const struct wn_snappy_dec *d);

/* Feeds stream bytes (split anywhere; borrowed). Calls out for every data
 * chunk completed. Returns 0, WN_EPROTO for a corrupt stream (no
 * identifier first, an unskippable reserved chunk, a data chunk too long,
 * a bad block, a CRC mismatch: sticky), WN_ENOMEM when its buffers
 * cannot grow, or out's negative return. */
int wn_snappy_dec_input(struct wn_snappy_dec *d, const uint8_t *p, size_t n,
                        wn_snappy_out_fn out, void *ctx);

/* CRC-32C (Castagnoli) of p[0, len). */
uint32_t wn_crc32c(const uint8_t *p, size_t len);

#endif
