/* Snappy's framing format over libsnappy's block codec (see the header). */
#include "core/snappyframe.h"

#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/rw.h"

#define T_COMPRESSED 0x00
#define T_UNCOMPRESSED 0x01
#define T_PADDING 0xFE
#define T_ID 0xFF
#define CRC_MASK_DELTA 0xA282EAD8u

static const uint8_t stream_id[WN_SNAPPY_ID_LEN] = {T_ID, 6,   0,   0,   's',
                                                    'N',  'a', 'P', 'p', 'Y'};

/* The compiler computes the CRC-32C table (no run-time global state). */
#define CRC_POLY 0x82F63B78u
#define C1(c) (((c)&1) ? ((c) >> 1) ^ CRC_POLY : (c) >> 1)
#define C8(c) C1(C1(C1(C1(C1(C1(C1(C1(c))))))))
#define R4(n) C8(n), C8(n + 1), C8(n + 2), C8(n + 3)
#define R16(n) R4(n), R4(n + 4), R4(n + 8), R4(n + 12)
#define R64(n) R16(n), R16(n + 16), R16(n + 32), R16(n + 48)
static const uint32_t crc_table[256] = {R64(0u), R64(64u), R64(128u),
                                        R64(192u)};

static uint32_t crc32c_table(uint32_t c, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
	return c;
}

#if defined(__x86_64__)
/* SSE4.2's crc32 instruction is CRC-32C: 8 bytes a step instead of one
 * table lookup per byte (the table loop was most of snappy's share of the
 * profile). */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_sse42(uint32_t c, const uint8_t *p, size_t len)
{
	uint64_t c64 = c;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c64 = __builtin_ia32_crc32di(c64, v);
	}
	c = (uint32_t)c64;
	for (; len > 0; p++, len--)
		c = __builtin_ia32_crc32qi(c, *p);
	return c;
}
#endif

uint32_t wn_crc32c(const uint8_t *p, size_t len)
{
	uint32_t c = 0xFFFFFFFFu;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return crc32c_sse42(c, p, len) ^ 0xFFFFFFFFu;
#endif
	return crc32c_table(c, p, len) ^ 0xFFFFFFFFu;
}

static uint32_t masked_crc(const uint8_t *p, size_t len)
{
	uint32_t c = wn_crc32c(p, len);
	return ((c >> 15) | (c << 17)) + CRC_MASK_DELTA;
}

size_t wn_snappy_encode_bound(size_t n)
{
	return WN_SNAPPY_ID_LEN + 8 + snappy_max_compressed_length(n);
}

size_t wn_snappy_encode(int *started, const uint8_t *in, size_t n, uint8_t *out,
                        size_t cap)
{
	if (n > WN_SNAPPY_BLOCK || cap < wn_snappy_encode_bound(n))
		return 0;
	size_t off = 0;
	if (!*started) {
		memcpy(out, stream_id, sizeof(stream_id));
		off = sizeof(stream_id);
		*started = 1;
	}
	uint8_t *hdr = out + off;
	size_t clen = cap - off - 8;
	uint8_t type = T_COMPRESSED;
	if (snappy_compress((const char *)in, n, (char *)hdr + 8, &clen) !=
	        SNAPPY_OK ||
	    clen >= n - n / 8) {
		/* Not worth it (Go's writer keeps a chunk compressed only
		 * when that saves an eighth): send the bytes as they are. */
		type = T_UNCOMPRESSED;
		memcpy(hdr + 8, in, n);
		clen = n;
	}
	size_t body = 4 + clen;
	hdr[0] = type;
	hdr[1] = (uint8_t)body;
	hdr[2] = (uint8_t)(body >> 8);
	hdr[3] = (uint8_t)(body >> 16);
	wn_put_u32le(hdr + 4, masked_crc(in, n));
	return off + 8 + clen;
}

/* The largest data chunk body: CRC + a block of 65536 bytes at worst. */
#define CHUNK_MAX (4 + 76490)

struct wn_snappy_dec {
	uint8_t hdr[4];
	size_t hdr_have;
	size_t len, have; /* the current chunk's body */
	uint8_t type;
	int seen_id;
	int err;
	/* Both grow as the peer's stream needs them, so a session that has
	 * carried little costs little: the chunk buffer to the longest chunk
	 * body received so far (as its bytes arrive, not as its header
	 * claims), the block on the first compressed chunk. */
	uint8_t *chunk;
	size_t chunk_cap;
	uint8_t *block; /* [WN_SNAPPY_BLOCK] */
};

/* The chunk buffer's first size: a stream identifier, smux headers. */
#define CHUNK_INIT 256

int wn_snappy_dec_new(struct wn_snappy_dec **d)
{
	*d = calloc(1, sizeof(**d));
	return *d ? 0 : WN_ENOMEM;
}

void wn_snappy_dec_free(struct wn_snappy_dec *d)
{
	if (!d)
		return;
	free(d->chunk);
	free(d->block);
	free(d);
}

size_t wn_snappy_dec_footprint(const struct wn_snappy_dec *d)
{
	return sizeof(*d) + d->chunk_cap + (d->block ? WN_SNAPPY_BLOCK : 0);
}

/* Makes room for n body bytes in the chunk buffer (n <= CHUNK_MAX),
 * doubling. Returns 0 or WN_ENOMEM. */
static int chunk_room(struct wn_snappy_dec *d, size_t n)
{
	if (n <= d->chunk_cap)
		return 0;
	size_t cap = d->chunk_cap ? d->chunk_cap : CHUNK_INIT;
	while (cap < n)
		cap *= 2;
	if (cap > CHUNK_MAX)
		cap = CHUNK_MAX;
	uint8_t *p = realloc(d->chunk, cap);
	if (!p)
		return WN_ENOMEM;
	d->chunk = p;
	d->chunk_cap = cap;
	return 0;
}

static int skippable(uint8_t type)
{
	return type == T_PADDING || (type >= 0x80 && type <= 0xFD);
}

/* The chunk's body is complete in d->chunk (or was skipped): check it and
 * hand its bytes out. */
static int finish_chunk(struct wn_snappy_dec *d, wn_snappy_out_fn out,
                        void *ctx)
{
	if (d->type == T_ID) {
		if (memcmp(d->chunk, stream_id + 4, 6) != 0)
			return WN_EPROTO;
		d->seen_id = 1;
		return 0;
	}
	if (skippable(d->type))
		return 0;
	const uint8_t *data = d->chunk + 4;
	size_t n = d->len - 4;
	if (d->type == T_COMPRESSED) {
		size_t ulen;
		if (!d->block && !(d->block = malloc(WN_SNAPPY_BLOCK)))
			return WN_ENOMEM;
		if (snappy_uncompressed_length((const char *)data, n, &ulen) !=
		        SNAPPY_OK ||
		    ulen > WN_SNAPPY_BLOCK ||
		    snappy_uncompress((const char *)data, n, (char *)d->block,
		                      &ulen) != SNAPPY_OK)
			return WN_EPROTO;
		data = d->block;
		n = ulen;
	}
	if (masked_crc(data, n) != wn_get_u32le(d->chunk))
		return WN_EPROTO;
	return n ? out(ctx, data, n) : 0;
}

/* The chunk header is complete: check the type and length. */
static int start_chunk(struct wn_snappy_dec *d)
{
	d->type = d->hdr[0];
	d->len = (size_t)d->hdr[1] | (size_t)d->hdr[2] << 8 |
	         (size_t)d->hdr[3] << 16;
	d->have = 0;
	if (!d->seen_id && d->type != T_ID)
		return WN_EPROTO;
	switch (d->type) {
	case T_ID:
		return d->len == 6 ? 0 : WN_EPROTO;
	case T_COMPRESSED:
		return d->len >= 4 && d->len <= CHUNK_MAX ? 0 : WN_EPROTO;
	case T_UNCOMPRESSED:
		return d->len >= 4 && d->len <= 4 + WN_SNAPPY_BLOCK ? 0
		                                                    : WN_EPROTO;
	default:
		return skippable(d->type) ? 0 : WN_EPROTO;
	}
}

int wn_snappy_dec_input(struct wn_snappy_dec *d, const uint8_t *p, size_t n,
                        wn_snappy_out_fn out, void *ctx)
{
	while (n > 0 && !d->err) {
		if (d->hdr_have < 4) {
			d->hdr[d->hdr_have++] = *p++;
			n--;
			if (d->hdr_have == 4)
				d->err = start_chunk(d);
			if (d->err || d->hdr_have < 4 || d->len > 0)
				continue;
		} else {
			size_t take = d->len - d->have;
			if (take > n)
				take = n;
			/* Skipped chunks are counted, not kept. */
			if (!skippable(d->type)) {
				if (chunk_room(d, d->have + take) != 0)
					return WN_ENOMEM;
				memcpy(d->chunk + d->have, p, take);
			}
			d->have += take;
			p += take;
			n -= take;
			if (d->have < d->len)
				continue;
		}
		d->hdr_have = 0;
		int rc = finish_chunk(d, out, ctx);
		if (rc == WN_EPROTO)
			d->err = rc;
		else if (rc < 0)
			return rc;
	}
	return d->err;
}
