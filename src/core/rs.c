/* Reed-Solomon over GF(2^8), klauspost/reedsolomon's default code (see
 * rs.h). Written from the construction, not from its code. */
#include "core/rs.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define GF_POLY 0x11D

struct wn_rs {
	unsigned data, parity, total;
	uint8_t exp[510]; /* exp[i] = 2^i, doubled so log sums need no mod */
	uint8_t log[256];
	uint8_t *m; /* total x data, row-major */
};

uint8_t wn_rs_mul(const struct wn_rs *rs, uint8_t a, uint8_t b)
{
	if (a == 0 || b == 0)
		return 0;
	return rs->exp[rs->log[a] + rs->log[b]];
}

static uint8_t gf_inv(const struct wn_rs *rs, uint8_t a)
{
	return rs->exp[255 - rs->log[a]]; /* a != 0 */
}

/* a^n, with 0^0 = 1 as the Vandermonde construction needs. */
static uint8_t gf_pow(const struct wn_rs *rs, uint8_t a, unsigned n)
{
	if (n == 0)
		return 1;
	if (a == 0)
		return 0;
	return rs->exp[(rs->log[a] * n) % 255];
}

/* Inverts the n x n matrix a in place (Gauss-Jordan; a is destroyed, the
 * inverse lands in inv). Returns 0, or WN_EINVAL if a is singular. */
static int invert(const struct wn_rs *rs, uint8_t *a, uint8_t *inv, unsigned n)
{
	memset(inv, 0, (size_t)n * n);
	for (unsigned i = 0; i < n; i++)
		inv[i * n + i] = 1;
	for (unsigned c = 0; c < n; c++) {
		unsigned p = c;
		while (p < n && a[p * n + c] == 0)
			p++;
		if (p == n)
			return WN_EINVAL;
		if (p != c) {
			for (unsigned k = 0; k < n; k++) {
				uint8_t t = a[c * n + k];
				a[c * n + k] = a[p * n + k];
				a[p * n + k] = t;
				t = inv[c * n + k];
				inv[c * n + k] = inv[p * n + k];
				inv[p * n + k] = t;
			}
		}
		uint8_t s = gf_inv(rs, a[c * n + c]);
		for (unsigned k = 0; k < n; k++) {
			a[c * n + k] = wn_rs_mul(rs, a[c * n + k], s);
			inv[c * n + k] = wn_rs_mul(rs, inv[c * n + k], s);
		}
		for (unsigned r = 0; r < n; r++) {
			uint8_t f = a[r * n + c];
			if (r == c || f == 0)
				continue;
			for (unsigned k = 0; k < n; k++) {
				a[r * n + k] ^= wn_rs_mul(rs, f, a[c * n + k]);
				inv[r * n + k] ^=
				    wn_rs_mul(rs, f, inv[c * n + k]);
			}
		}
	}
	return 0;
}

int wn_rs_new(unsigned data, unsigned parity, struct wn_rs **out)
{
	if (data < 1 || parity < 1 || data + parity > WN_RS_SHARDS_MAX)
		return WN_EINVAL;
	struct wn_rs *rs = calloc(1, sizeof(*rs));
	if (!rs)
		return WN_ENOMEM;
	rs->data = data;
	rs->parity = parity;
	rs->total = data + parity;
	unsigned x = 1;
	for (unsigned i = 0; i < 255; i++) {
		rs->exp[i] = rs->exp[i + 255] = (uint8_t)x;
		rs->log[x] = (uint8_t)i;
		x <<= 1;
		if (x & 0x100)
			x ^= GF_POLY;
	}
	size_t dd = (size_t)data * data;
	uint8_t *vm = malloc((size_t)rs->total * data);
	uint8_t *top = malloc(dd), *inv = malloc(dd);
	rs->m = malloc((size_t)rs->total * data);
	int rc = WN_ENOMEM;
	if (!vm || !top || !inv || !rs->m)
		goto out;
	for (unsigned r = 0; r < rs->total; r++)
		for (unsigned c = 0; c < data; c++)
			vm[r * data + c] = gf_pow(rs, (uint8_t)r, c);
	memcpy(top, vm, dd);
	rc = invert(rs, top, inv, data);
	if (rc != 0)
		goto out;
	for (unsigned r = 0; r < rs->total; r++)
		for (unsigned c = 0; c < data; c++) {
			uint8_t v = 0;
			for (unsigned k = 0; k < data; k++)
				v ^= wn_rs_mul(rs, vm[r * data + k],
				               inv[k * data + c]);
			rs->m[r * data + c] = v;
		}
out:
	free(vm);
	free(top);
	free(inv);
	if (rc != 0) {
		wn_rs_free(rs);
		return rc;
	}
	*out = rs;
	return 0;
}

void wn_rs_free(struct wn_rs *rs)
{
	if (!rs)
		return;
	free(rs->m);
	free(rs);
}

uint8_t wn_rs_coef(const struct wn_rs *rs, unsigned r, unsigned c)
{
	return rs->m[r * rs->data + c];
}

/* out ^= c * in, over len bytes, through c's row of products. */
static void mul_add(const struct wn_rs *rs, uint8_t c, const uint8_t *in,
                    uint8_t *out, size_t len)
{
	if (c == 0)
		return;
	if (c == 1) {
		for (size_t i = 0; i < len; i++)
			out[i] ^= in[i];
		return;
	}
	uint8_t row[256];
	unsigned lc = rs->log[c];
	row[0] = 0;
	for (unsigned v = 1; v < 256; v++)
		row[v] = rs->exp[lc + rs->log[v]];
	for (size_t i = 0; i < len; i++)
		out[i] ^= row[in[i]];
}

void wn_rs_encode(const struct wn_rs *rs, const uint8_t *const *data,
                  uint8_t *const *parity, size_t len)
{
	for (unsigned j = 0; j < rs->parity; j++) {
		memset(parity[j], 0, len);
		for (unsigned i = 0; i < rs->data; i++)
			mul_add(rs, wn_rs_coef(rs, rs->data + j, i), data[i],
			        parity[j], len);
	}
}

void wn_rs_encode_add(const struct wn_rs *rs, unsigned i, const uint8_t *in,
                      uint8_t *const *parity, unsigned nparity, size_t len)
{
	for (unsigned j = 0; j < nparity && j < rs->parity; j++)
		mul_add(rs, wn_rs_coef(rs, rs->data + j, i), in, parity[j],
		        len);
}

struct rs_slot {
	uint64_t used; /* when last used (the cache's clock); 0: empty */
	uint8_t *rows; /* [data] the present shards the rebuild used */
	uint8_t *inv;  /* [data][data] their sub-matrix's inverse */
};

struct wn_rs_cache {
	unsigned data;
	uint64_t clock, inversions;
	struct rs_slot slot[WN_RS_CACHE_SLOTS];
	uint8_t *work; /* [data][data]: the sub-matrix, destroyed by invert */
	uint8_t *mem;
};

int wn_rs_cache_new(unsigned data, struct wn_rs_cache **out)
{
	if (data < 1 || data >= WN_RS_SHARDS_MAX)
		return WN_EINVAL;
	struct wn_rs_cache *c = calloc(1, sizeof(*c));
	size_t dd = (size_t)data * data;
	size_t per = data + dd;
	if (!c || !(c->mem = malloc(dd + WN_RS_CACHE_SLOTS * per))) {
		free(c);
		return WN_ENOMEM;
	}
	c->data = data;
	c->work = c->mem;
	for (unsigned i = 0; i < WN_RS_CACHE_SLOTS; i++) {
		c->slot[i].rows = c->mem + dd + i * per;
		c->slot[i].inv = c->slot[i].rows + data;
	}
	*out = c;
	return 0;
}

void wn_rs_cache_free(struct wn_rs_cache *c)
{
	if (!c)
		return;
	free(c->mem);
	free(c);
}

uint64_t wn_rs_cache_inversions(const struct wn_rs_cache *c)
{
	return c->inversions;
}

/* The inverse of the sub-matrix of rs's rows `rows` (n of them): from the
 * cache if this pattern is there, else inverted into the least recently
 * used slot. NULL if the rows are singular (never, for an MDS code). */
static const uint8_t *cache_inverse(const struct wn_rs *rs,
                                    struct wn_rs_cache *c, const uint8_t *rows)
{
	unsigned n = rs->data;
	struct rs_slot *lru = &c->slot[0];
	c->clock++;
	for (unsigned i = 0; i < WN_RS_CACHE_SLOTS; i++) {
		struct rs_slot *s = &c->slot[i];
		if (s->used && memcmp(s->rows, rows, n) == 0) {
			s->used = c->clock;
			return s->inv;
		}
		if (s->used < lru->used)
			lru = s;
	}
	for (unsigned r = 0; r < n; r++)
		memcpy(c->work + (size_t)r * n, rs->m + (size_t)rows[r] * n, n);
	c->inversions++;
	lru->used = 0;
	if (invert(rs, c->work, lru->inv, n) != 0)
		return NULL;
	memcpy(lru->rows, rows, n);
	lru->used = c->clock;
	return lru->inv;
}

int wn_rs_reconstruct(const struct wn_rs *rs, struct wn_rs_cache *cache,
                      uint8_t *const *shards, const uint8_t *present,
                      size_t len)
{
	unsigned n = rs->data;
	uint8_t rows[WN_RS_SHARDS_MAX];
	unsigned have = 0, missing = 0;
	for (unsigned i = 0; i < rs->total && have < n; i++)
		if (present[i])
			rows[have++] = (uint8_t)i;
	for (unsigned i = 0; i < n; i++)
		missing += !present[i];
	if (missing == 0)
		return 0;
	if (have < n)
		return WN_EAGAIN;
	/* The received shards are sub * data, sub being their rows of the
	 * encoding matrix: data = sub^-1 * received. */
	struct wn_rs_cache *own = NULL;
	if (!cache || cache->data != n) {
		int rc = wn_rs_cache_new(n, &own);
		if (rc != 0)
			return rc;
		cache = own;
	}
	const uint8_t *inv = cache_inverse(rs, cache, rows);
	if (inv) {
		for (unsigned i = 0; i < n; i++) {
			if (present[i])
				continue;
			memset(shards[i], 0, len);
			for (unsigned k = 0; k < n; k++)
				mul_add(rs, inv[(size_t)i * n + k],
				        shards[rows[k]], shards[i], len);
		}
	}
	wn_rs_cache_free(own);
	return inv ? 0 : WN_EINVAL;
}
