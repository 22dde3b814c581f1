/* Reed-Solomon erasure coding over GF(2^8), compatible with
 * klauspost/reedsolomon's default code (the one kcp-go uses for kcptun's
 * FEC), so that warren's parity shards rebuild kcptun's data and the
 * other way round.
 *
 * The field is GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1 (0x11D) and
 * generator 2. The encoding matrix, (data+parity) x data, is the
 * Vandermonde matrix V[r][c] = r^c (0^0 = 1) multiplied by the inverse of
 * its top data x data square: the top becomes the identity (data shards
 * go out unchanged) and any `data` rows stay invertible. Parity shard j
 * is sum over i of M[data + j][i] * data_i, byte by byte.
 *
 * Pure: no I/O. A codec is read-only after wn_rs_new, so sessions may
 * share one. */
#ifndef WN_CORE_RS_H
#define WN_CORE_RS_H

#include <stddef.h>
#include <stdint.h>

#define WN_RS_SHARDS_MAX 255 /* data + parity */

struct wn_rs;

/* Creates a codec for `data` data and `parity` parity shards (data >= 1,
 * parity >= 1, data + parity <= 255). Returns 0, WN_EINVAL or
 * WN_ENOMEM. */
int wn_rs_new(unsigned data, unsigned parity, struct wn_rs **out);

void wn_rs_free(struct wn_rs *rs);

/* The encoding matrix's entry at row r (0 .. data+parity-1), column c. */
uint8_t wn_rs_coef(const struct wn_rs *rs, unsigned r, unsigned c);

/* Computes the parity shards from the data shards, each len bytes:
 * data[0 .. data-1] in, parity[0 .. parity-1] out (overwritten). */
void wn_rs_encode(const struct wn_rs *rs, const uint8_t *const *data,
                  uint8_t *const *parity, size_t len);

/* Adds data shard i's part to the first nparity parity shards, for an
 * encoder that sees a group's shards one at a time: parity[j][0 .. len-1]
 * ^= M[data + j][i] * in[0 .. len-1]. Parity shards that start zeroed
 * and get every data shard so equal wn_rs_encode's; a shard never added
 * counts as zeros (a shorter shard as zero-padded). i < data, nparity <=
 * parity. */
void wn_rs_encode_add(const struct wn_rs *rs, unsigned i, const uint8_t *in,
                      uint8_t *const *parity, unsigned nparity, size_t len);

/* Inverted decoding matrices for the last few erasure patterns (which
 * shards a group's rebuild used), so that groups losing the same shards
 * skip the O(data^3) inversion. One cache serves one codec: it is created
 * for rs's data count and must not be used with another codec. Owned by
 * the caller (a decoder keeps one; codecs stay shareable). */
#define WN_RS_CACHE_SLOTS 4

struct wn_rs_cache;

/* Creates a cache for a codec with `data` data shards. Returns 0,
 * WN_EINVAL or WN_ENOMEM. */
int wn_rs_cache_new(unsigned data, struct wn_rs_cache **out);

void wn_rs_cache_free(struct wn_rs_cache *c);

/* How many matrices rebuilds through c have inverted (cache misses). */
uint64_t wn_rs_cache_inversions(const struct wn_rs_cache *c);

/* Rebuilds missing data shards. shards[0 .. data+parity-1] each point to
 * len bytes; present[i] says whether shard i was received. The missing
 * data shards' buffers are overwritten with their contents (parity
 * shards are not rebuilt). cache (may be NULL: nothing kept) supplies and
 * keeps the inverted matrix of this erasure pattern. Returns 0,
 * WN_EAGAIN when fewer than `data` shards are present, or WN_ENOMEM. */
int wn_rs_reconstruct(const struct wn_rs *rs, struct wn_rs_cache *cache,
                      uint8_t *const *shards, const uint8_t *present,
                      size_t len);

/* GF(2^8) product, for tests. */
uint8_t wn_rs_mul(const struct wn_rs *rs, uint8_t a, uint8_t b);

#endif
