/* FEC for datagram flows: see dgfec.h. */
#include "core/dgfec.h"

#include <stdlib.h>
#include <string.h>

#include "core/rs.h"
#include "util/err.h"
#include "util/rw.h"

#define SHARD WN_DGRAM_FEC_SHARD_MAX
#define TOTAL_MAX (WN_DGRAM_FEC_DATA_MAX + WN_DGRAM_FEC_PARITY_MAX)

static int counts_ok(unsigned data, unsigned parity)
{
	return data >= 1 && data <= WN_DGRAM_FEC_DATA_MAX && parity >= 1 &&
	       parity <= WN_DGRAM_FEC_PARITY_MAX;
}

/* ---- encoder ------------------------------------------------------------ */

size_t wn_dgfec_enc_size(unsigned data, unsigned parity)
{
	(void)data;
	return (size_t)parity * SHARD;
}

int wn_dgfec_enc_init(struct wn_dgfec_enc *e, unsigned data, unsigned parity,
                      unsigned delay_ms)
{
	memset(e, 0, sizeof(*e));
	if (!counts_ok(data, parity) || delay_ms < 1 ||
	    delay_ms > WN_DGRAM_FEC_DELAY_MAX)
		return WN_EINVAL;
	int rc = wn_rs_new(data, parity, &e->rs);
	if (rc != 0)
		return rc;
	e->par = calloc(parity, SHARD);
	if (!e->par) {
		wn_rs_free(e->rs);
		e->rs = NULL;
		return WN_ENOMEM;
	}
	e->data = data;
	e->parity = parity;
	e->delay_ms = delay_ms;
	for (unsigned j = 0; j < parity; j++)
		e->pp[j] = e->par + (size_t)j * SHARD;
	return 0;
}

void wn_dgfec_enc_free(struct wn_dgfec_enc *e)
{
	wn_rs_free(e->rs);
	free(e->par);
	memset(e, 0, sizeof(*e));
}

void wn_dgfec_enc_peek(const struct wn_dgfec_enc *e, uint16_t *group,
                       uint8_t *index)
{
	*group = e->group;
	*index = (uint8_t)e->n;
}

int wn_dgfec_enc_add(struct wn_dgfec_enc *e, uint64_t now, const uint8_t *msg,
                     size_t len)
{
	uint8_t hdr[2];
	uint8_t *body[WN_DGRAM_FEC_PARITY_MAX];

	if (len < 1 || len + 2 > SHARD || e->n >= e->data)
		return WN_EINVAL;
	if (e->n == 0) {
		e->start_ms = now;
		e->longest = 0;
	}
	/* The shard is the length then the message; the parity takes the
	 * two parts at their offsets. */
	wn_put_u16be(hdr, (uint16_t)len);
	wn_rs_encode_add(e->rs, e->n, hdr, e->pp, e->parity, sizeof(hdr));
	for (unsigned j = 0; j < e->parity; j++)
		body[j] = e->pp[j] + 2;
	wn_rs_encode_add(e->rs, e->n, msg, body, e->parity, len);
	if (len + 2 > e->longest)
		e->longest = len + 2;
	e->n++;
	return e->n == e->data;
}

uint64_t wn_dgfec_enc_deadline(const struct wn_dgfec_enc *e)
{
	return e->n ? e->start_ms + e->delay_ms : UINT64_MAX;
}

unsigned wn_dgfec_enc_count(const struct wn_dgfec_enc *e)
{
	return e->n;
}

unsigned wn_dgfec_enc_nparity(const struct wn_dgfec_enc *e)
{
	/* ceil(parity * n / data): a short group keeps the parity share. */
	return e->n ? (e->parity * e->n + e->data - 1) / e->data : 0;
}

const uint8_t *wn_dgfec_enc_parity(const struct wn_dgfec_enc *e, unsigned j,
                                   size_t *len)
{
	*len = e->longest;
	return e->pp[j];
}

void wn_dgfec_enc_close(struct wn_dgfec_enc *e)
{
	for (unsigned j = 0; j < e->parity; j++)
		memset(e->pp[j], 0, e->longest);
	e->n = 0;
	e->longest = 0;
	e->group++;
}

/* ---- decoder ------------------------------------------------------------ */

struct grp {
	uint16_t id;
	uint8_t used;
	uint8_t done;   /* every data shard is here, or rebuilt, or given up */
	unsigned count; /* data shards (from a parity shard); 0: not known */
	size_t plen;    /* the parity shards' length; 0: not known */
	unsigned ndata, npar;
	int maxidx; /* the highest data index received; -1: none */
	uint8_t present[TOTAL_MAX];
	uint16_t len[TOTAL_MAX]; /* each kept shard's length */
	uint8_t *buf;            /* TOTAL x SHARD */
};

struct wn_dgfec_dec {
	struct wn_rs *rs;
	struct wn_rs_cache *cache;
	unsigned data, parity, total;
	struct grp g[WN_DGFEC_GROUPS];
	struct wn_dgfec_stats st;
	uint8_t *mem;
};

size_t wn_dgfec_dec_size(unsigned data, unsigned parity)
{
	return (size_t)WN_DGFEC_GROUPS * (data + parity) * SHARD;
}

int wn_dgfec_dec_new(unsigned data, unsigned parity, struct wn_dgfec_dec **out)
{
	if (!counts_ok(data, parity))
		return WN_EINVAL;
	struct wn_dgfec_dec *d = calloc(1, sizeof(*d));
	if (!d)
		return WN_ENOMEM;
	d->data = data;
	d->parity = parity;
	d->total = data + parity;
	int rc = wn_rs_new(data, parity, &d->rs);
	if (rc == 0)
		rc = wn_rs_cache_new(data, &d->cache);
	if (rc == 0 && !(d->mem = malloc(wn_dgfec_dec_size(data, parity))))
		rc = WN_ENOMEM;
	if (rc != 0) {
		wn_rs_cache_free(d->cache);
		wn_rs_free(d->rs);
		free(d);
		return rc;
	}
	for (unsigned i = 0; i < WN_DGFEC_GROUPS; i++)
		d->g[i].buf = d->mem + (size_t)i * d->total * SHARD;
	*out = d;
	return 0;
}

/* Forgets g, counting the data shards it lost for good: as many as its
 * count says (or, with no parity seen, up to its highest data index)
 * less those that came. */
static void forget(struct wn_dgfec_dec *d, struct grp *g)
{
	if (g->used && !g->done) {
		unsigned want = g->count ? g->count : (unsigned)(g->maxidx + 1);
		if (want > g->ndata)
			d->st.unrecoverable += want - g->ndata;
	}
	g->used = 0;
}

static void take(struct grp *g, uint16_t id)
{
	g->id = id;
	g->used = 1;
	g->done = 0;
	g->count = 0;
	g->plen = 0;
	g->ndata = g->npar = 0;
	g->maxidx = -1;
	memset(g->present, 0, sizeof(g->present));
}

/* The kept group `id`, or (create) a slot for it: a free one, or the
 * older one's when id is newer than it. NULL for a late shard. */
static struct grp *slot(struct wn_dgfec_dec *d, uint16_t id, int create)
{
	struct grp *fr = NULL, *oldest = NULL, *newest = NULL;

	for (unsigned i = 0; i < WN_DGFEC_GROUPS; i++) {
		struct grp *g = &d->g[i];
		if (!g->used) {
			fr = g;
			continue;
		}
		if (g->id == id)
			return g;
		if (!oldest || (int16_t)(g->id - oldest->id) < 0)
			oldest = g;
		if (!newest || (int16_t)(g->id - newest->id) > 0)
			newest = g;
	}
	if (!create)
		return NULL;
	if (newest && (int16_t)(id - newest->id) <= -WN_DGFEC_RESTART_GAP) {
		/* The sender started over. */
		wn_dgfec_dec_reset(d);
		take(&d->g[0], id);
		return &d->g[0];
	}
	if (fr) {
		take(fr, id);
		return fr;
	}
	if ((int16_t)(id - oldest->id) > 0) {
		forget(d, oldest);
		take(oldest, id);
		return oldest;
	}
	return NULL;
}

static uint8_t *shard_at(const struct wn_dgfec_dec *d, const struct grp *g,
                         unsigned i)
{
	(void)d;
	return g->buf + (size_t)i * SHARD;
}

int wn_dgfec_dec_data(struct wn_dgfec_dec *d, uint16_t group, unsigned index,
                      const uint8_t *msg, size_t len)
{
	if (index >= d->data || len < 1 || len + 2 > SHARD)
		return 1;
	struct grp *g = slot(d, group, 1);
	if (!g)
		return 1;
	if (g->present[index]) {
		d->st.dups++;
		return 0;
	}
	if ((g->count && index >= g->count) || (g->plen && len + 2 > g->plen)) {
		/* Not of this group as its parity describes it: deliver what
		 * is a message, and rebuild nothing from this group. */
		d->st.bad++;
		g->done = 1;
		return 1;
	}
	uint8_t *s = shard_at(d, g, index);
	wn_put_u16be(s, (uint16_t)len);
	memcpy(s + 2, msg, len);
	g->len[index] = (uint16_t)(len + 2);
	g->present[index] = 1;
	g->ndata++;
	if ((int)index > g->maxidx)
		g->maxidx = (int)index;
	if (g->count && g->ndata == g->count)
		g->done = 1;
	return 1;
}

void wn_dgfec_dec_parity(struct wn_dgfec_dec *d, uint16_t group, unsigned index,
                         unsigned count, const uint8_t *par, size_t len)
{
	if (index < d->data || index >= d->total || count < 1 ||
	    count > d->data || len < 3 || len > SHARD) {
		d->st.bad++;
		return;
	}
	struct grp *g = slot(d, group, 1);
	if (!g || g->done || g->present[index])
		return;
	if ((g->count && g->count != count) || (g->plen && g->plen != len) ||
	    (int)count <= g->maxidx) {
		d->st.bad++;
		return;
	}
	for (unsigned i = 0; i < d->data; i++)
		if (g->present[i] && g->len[i] > len) {
			d->st.bad++;
			return;
		}
	memcpy(shard_at(d, g, index), par, len);
	g->len[index] = (uint16_t)len;
	g->present[index] = 1;
	g->count = count;
	g->plen = len;
	g->npar++;
	if (g->ndata == count)
		g->done = 1;
}

unsigned wn_dgfec_dec_recover(struct wn_dgfec_dec *d, uint16_t group,
                              wn_dgfec_deliver_fn deliver, void *ctx)
{
	struct grp *g = slot(d, group, 0);
	uint8_t *sh[TOTAL_MAX];
	uint8_t pr[TOTAL_MAX];
	unsigned n = 0;

	if (!g || g->done || !g->count || g->ndata + g->npar < g->count)
		return 0;
	size_t plen = g->plen;
	for (unsigned i = 0; i < d->total; i++) {
		sh[i] = shard_at(d, g, i);
		pr[i] = g->present[i];
		if (i < g->count) {
			if (pr[i])
				memset(sh[i] + g->len[i], 0, plen - g->len[i]);
		} else if (i < d->data) {
			/* Past a short group's count: zero-length shards. */
			memset(sh[i], 0, plen);
			pr[i] = 1;
		}
	}
	g->done = 1;
	if (wn_rs_reconstruct(d->rs, d->cache, sh, pr, plen) != 0) {
		d->st.unrecoverable += g->count - g->ndata;
		return 0;
	}
	for (unsigned i = 0; i < g->count; i++) {
		if (g->present[i])
			continue;
		g->present[i] = 1;
		size_t l = wn_get_u16be(sh[i]);
		if (l < 1 || l + 2 > plen) {
			d->st.bad++;
			d->st.unrecoverable++;
			continue;
		}
		d->st.recovered++;
		n++;
		deliver(ctx, sh[i] + 2, l);
	}
	return n;
}

void wn_dgfec_dec_reset(struct wn_dgfec_dec *d)
{
	for (unsigned i = 0; i < WN_DGFEC_GROUPS; i++)
		forget(d, &d->g[i]);
}

void wn_dgfec_dec_stats(const struct wn_dgfec_dec *d,
                        struct wn_dgfec_stats *out)
{
	*out = d->st;
}

void wn_dgfec_dec_free(struct wn_dgfec_dec *d)
{
	if (!d)
		return;
	wn_rs_cache_free(d->cache);
	wn_rs_free(d->rs);
	free(d->mem);
	free(d);
}
