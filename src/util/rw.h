/* Bounded reader and writer with explicit byte order.
 *
 * Every wire codec (KCP segments, smux frames, Noise packets, SOCKS5, carrier
 * framing) decodes and encodes through these two cursors, so that no codec
 * does its own bounds arithmetic and no untrusted byte is ever cast to a
 * struct. Byte order is part of every accessor's name.
 *
 * Errors are sticky: the first access that does not fit sets err (WN_ETRUNC
 * for the reader, WN_ENOSPC for the writer) and leaves the cursor where it
 * was; from then on every access is refused the same way, reads return 0 and
 * writes store nothing. A codec can therefore read or write a whole message
 * and check err once at the end.
 *
 * Neither cursor owns its buffer: the caller keeps it alive, and pointers
 * handed out by wn_rd_ptr / wn_wr_ptr point into it. */
#ifndef WN_UTIL_RW_H
#define WN_UTIL_RW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/err.h"

/* Largest value a QUIC variable-length integer can carry (RFC 9000 §16). */
#define WN_VARINT_MAX ((UINT64_C(1) << 62) - 1)

/* Read cursor over p[0, len). off is the next byte to read. */
struct wn_rd {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;
};

/* Write cursor over p[0, cap). off is the number of bytes written so far. */
struct wn_wr {
	uint8_t *p;
	size_t cap;
	size_t off;
	int err;
};

/* ---- Raw loads and stores (caller has checked the bounds). ---- */

static inline uint16_t wn_get_u16be(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint16_t wn_get_u16le(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[1] << 8 | p[0]);
}

static inline uint32_t wn_get_u32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline uint32_t wn_get_u32le(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[1] << 8 | p[0];
}

static inline uint64_t wn_get_u64be(const uint8_t *p)
{
	return (uint64_t)wn_get_u32be(p) << 32 | wn_get_u32be(p + 4);
}

static inline uint64_t wn_get_u64le(const uint8_t *p)
{
	return (uint64_t)wn_get_u32le(p + 4) << 32 | wn_get_u32le(p);
}

static inline void wn_put_u16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wn_put_u16le(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void wn_put_u32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void wn_put_u32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void wn_put_u64be(uint8_t *p, uint64_t v)
{
	wn_put_u32be(p, (uint32_t)(v >> 32));
	wn_put_u32be(p + 4, (uint32_t)v);
}

static inline void wn_put_u64le(uint8_t *p, uint64_t v)
{
	wn_put_u32le(p, (uint32_t)v);
	wn_put_u32le(p + 4, (uint32_t)(v >> 32));
}

/* Encoded size of v as a QUIC varint: 1, 2, 4 or 8; 0 if v > WN_VARINT_MAX. */
static inline size_t wn_varint_len(uint64_t v)
{
	if (v < (UINT64_C(1) << 6))
		return 1;
	if (v < (UINT64_C(1) << 14))
		return 2;
	if (v < (UINT64_C(1) << 30))
		return 4;
	if (v <= WN_VARINT_MAX)
		return 8;
	return 0;
}

/* ---- Reader ---- */

/* Start reading p[0, len). p may be NULL only when len is 0. The reader
 * borrows p. */
static inline void wn_rd_init(struct wn_rd *rd, const void *p, size_t len)
{
	/* An empty input may come as NULL; pointing at a literal instead keeps
	 * wn_rd_ptr(rd, 0) non-NULL and avoids arithmetic on NULL. */
	rd->p = p ? (const uint8_t *)p : (const uint8_t *)"";
	rd->len = p ? len : 0;
	rd->off = 0;
	rd->err = 0;
}

/* Bytes left to read; 0 once the reader has failed. */
static inline size_t wn_rd_remaining(const struct wn_rd *rd)
{
	return rd->err ? 0 : rd->len - rd->off;
}

/* Record a decoding error found by the caller (for example WN_EPROTO for a
 * bad version byte) so it is reported like a truncation. The first error
 * wins; err must be negative. */
static inline void wn_rd_fail(struct wn_rd *rd, int err)
{
	if (!rd->err)
		rd->err = err;
}

/* Take n bytes without copying. Returns a pointer into the input valid for n
 * bytes (and as long as the input), or NULL if fewer than n bytes remain or
 * the reader has already failed; then err is set and the cursor stays. */
static inline const uint8_t *wn_rd_ptr(struct wn_rd *rd, size_t n)
{
	const uint8_t *q;

	if (rd->err || n > rd->len - rd->off) {
		wn_rd_fail(rd, WN_ETRUNC);
		return NULL;
	}
	q = rd->p + rd->off;
	rd->off += n;
	return q;
}

/* Copy n bytes into dst. Returns 0, or the sticky error (dst untouched). */
static inline int wn_rd_bytes(struct wn_rd *rd, void *dst, size_t n)
{
	const uint8_t *q = wn_rd_ptr(rd, n);

	if (!q)
		return rd->err;
	if (n)
		memcpy(dst, q, n);
	return 0;
}

/* Skip n bytes. Returns 0 or the sticky error. */
static inline int wn_rd_skip(struct wn_rd *rd, size_t n)
{
	return wn_rd_ptr(rd, n) ? 0 : rd->err;
}

/* Split off the next n bytes as their own reader (a length-prefixed field),
 * advancing rd past them. If they are not there, rd fails and sub is an
 * empty reader carrying the same error, so parsing sub fails too. */
static inline void wn_rd_sub(struct wn_rd *rd, size_t n, struct wn_rd *sub)
{
	const uint8_t *q = wn_rd_ptr(rd, n);

	wn_rd_init(sub, q, q ? n : 0);
	sub->err = rd->err;
}

/* Fixed-width reads: return the value, or 0 after setting the sticky error. */
static inline uint8_t wn_rd_u8(struct wn_rd *rd)
{
	const uint8_t *q = wn_rd_ptr(rd, 1);

	return q ? q[0] : 0;
}

static inline uint16_t wn_rd_u16be(struct wn_rd *rd)
{
	const uint8_t *q = wn_rd_ptr(rd, 2);

	return q ? wn_get_u16be(q) : 0;
}

static inline uint16_t wn_rd_u16le(struct wn_rd *rd)
{
	const uint8_t *q = wn_rd_ptr(rd, 2);

	return q ? wn_get_u16le(q) : 0;
}

static inline uint32_t wn_rd_u32be(struct wn_rd *rd)
{
	const uint8_t *q = wn_rd_ptr(rd, 4);

	return q ? wn_get_u32be(q) : 0;
}

static inline uint32_t wn_rd_u32le(struct wn_rd *rd)
{
	const uint8_t *q = wn_rd_ptr(rd, 4);

	return q ? wn_get_u32le(q) : 0;
}

static inline uint64_t wn_rd_u64be(struct wn_rd *rd)
{
	const uint8_t *q = wn_rd_ptr(rd, 8);

	return q ? wn_get_u64be(q) : 0;
}

static inline uint64_t wn_rd_u64le(struct wn_rd *rd)
{
	const uint8_t *q = wn_rd_ptr(rd, 8);

	return q ? wn_get_u64le(q) : 0;
}

/* Read a QUIC varint (RFC 9000 §16; non-minimal encodings are accepted, as
 * the RFC allows). Returns the value, or 0 after setting the sticky error;
 * a varint cut short consumes nothing. */
uint64_t wn_rd_varint(struct wn_rd *rd);

/* ---- Writer ---- */

/* Start writing into p[0, cap). p must not be NULL. The writer borrows p. */
static inline void wn_wr_init(struct wn_wr *wr, void *p, size_t cap)
{
	wr->p = p;
	wr->cap = cap;
	wr->off = 0;
	wr->err = 0;
}

/* Bytes written so far (the encoded length). */
static inline size_t wn_wr_len(const struct wn_wr *wr)
{
	return wr->off;
}

/* Bytes still free; 0 once the writer has failed. */
static inline size_t wn_wr_space(const struct wn_wr *wr)
{
	return wr->err ? 0 : wr->cap - wr->off;
}

/* Claim the next n bytes for the caller to fill in place (for example to
 * encrypt into). Returns a pointer valid for n bytes, or NULL if they do not
 * fit or the writer has already failed; then err is set (WN_ENOSPC unless it
 * already held an error) and the cursor stays. */
static inline uint8_t *wn_wr_ptr(struct wn_wr *wr, size_t n)
{
	uint8_t *q;

	if (wr->err || n > wr->cap - wr->off) {
		if (!wr->err)
			wr->err = WN_ENOSPC;
		return NULL;
	}
	q = wr->p + wr->off;
	wr->off += n;
	return q;
}

/* Append n bytes from src. Returns 0 or the sticky error. */
static inline int wn_wr_bytes(struct wn_wr *wr, const void *src, size_t n)
{
	uint8_t *q = wn_wr_ptr(wr, n);

	if (!q)
		return wr->err;
	if (n)
		memcpy(q, src, n);
	return 0;
}

/* Append n zero bytes (padding). Returns 0 or the sticky error. */
static inline int wn_wr_zero(struct wn_wr *wr, size_t n)
{
	uint8_t *q = wn_wr_ptr(wr, n);

	if (!q)
		return wr->err;
	if (n)
		memset(q, 0, n);
	return 0;
}

/* Fixed-width writes: return 0 or the sticky error. */
static inline int wn_wr_u8(struct wn_wr *wr, uint8_t v)
{
	uint8_t *q = wn_wr_ptr(wr, 1);

	if (!q)
		return wr->err;
	q[0] = v;
	return 0;
}

static inline int wn_wr_u16be(struct wn_wr *wr, uint16_t v)
{
	uint8_t *q = wn_wr_ptr(wr, 2);

	if (!q)
		return wr->err;
	wn_put_u16be(q, v);
	return 0;
}

static inline int wn_wr_u16le(struct wn_wr *wr, uint16_t v)
{
	uint8_t *q = wn_wr_ptr(wr, 2);

	if (!q)
		return wr->err;
	wn_put_u16le(q, v);
	return 0;
}

static inline int wn_wr_u32be(struct wn_wr *wr, uint32_t v)
{
	uint8_t *q = wn_wr_ptr(wr, 4);

	if (!q)
		return wr->err;
	wn_put_u32be(q, v);
	return 0;
}

static inline int wn_wr_u32le(struct wn_wr *wr, uint32_t v)
{
	uint8_t *q = wn_wr_ptr(wr, 4);

	if (!q)
		return wr->err;
	wn_put_u32le(q, v);
	return 0;
}

static inline int wn_wr_u64be(struct wn_wr *wr, uint64_t v)
{
	uint8_t *q = wn_wr_ptr(wr, 8);

	if (!q)
		return wr->err;
	wn_put_u64be(q, v);
	return 0;
}

static inline int wn_wr_u64le(struct wn_wr *wr, uint64_t v)
{
	uint8_t *q = wn_wr_ptr(wr, 8);

	if (!q)
		return wr->err;
	wn_put_u64le(q, v);
	return 0;
}

/* Append v as a minimal QUIC varint. Returns 0 or the sticky error:
 * WN_ERANGE if v > WN_VARINT_MAX (nothing is written, and the writer fails so
 * that a caller checking err only at the end still sees it), WN_ENOSPC if it
 * does not fit. */
int wn_wr_varint(struct wn_wr *wr, uint64_t v);

#endif
