/* kcp-go's FEC framing (see kcpgo.h). */
#include "core/kcpgo.h"

#include <stdlib.h>
#include <string.h>

#include "core/kcp.h"
#include "core/rs.h"
#include "util/err.h"
#include "util/rw.h"

int wn_kcpgo_parse(const uint8_t *p, size_t len, struct wn_kcpgo_pkt *out)
{
	uint16_t type = len >= WN_KCPGO_FEC_HDR ? wn_get_u16le(p + 4) : 0;
	if (type == WN_KCPGO_FEC_PARITY) {
		out->kind = WN_KCPGO_PARITY;
		out->seqid = wn_get_u32le(p);
		out->kcp = NULL;
		out->kcp_len = 0;
		out->shard = p + WN_KCPGO_FEC_HDR;
		out->shard_len = len - WN_KCPGO_FEC_HDR;
		return 0;
	}
	if (type == WN_KCPGO_FEC_DATA) {
		if (len < WN_KCPGO_FEC_DATA_HDR)
			return WN_ETRUNC;
		size_t size = wn_get_u16le(p + WN_KCPGO_FEC_HDR);
		if (size < 2 || size > len - WN_KCPGO_FEC_HDR)
			return WN_ETRUNC;
		out->kind = WN_KCPGO_DATA;
		out->seqid = wn_get_u32le(p);
		out->shard = p + WN_KCPGO_FEC_HDR;
		out->shard_len = size;
		out->kcp = p + WN_KCPGO_FEC_DATA_HDR;
		out->kcp_len = size - 2;
		return 0;
	}
	if (len < WN_KCP_OVERHEAD)
		return WN_ETRUNC;
	out->kind = WN_KCPGO_RAW;
	out->seqid = 0;
	out->kcp = p;
	out->kcp_len = len;
	out->shard = NULL;
	out->shard_len = 0;
	return 0;
}

void wn_kcpgo_put_data_hdr(uint8_t hdr[WN_KCPGO_FEC_DATA_HDR], uint32_t seqid,
                           size_t kcp_len)
{
	wn_put_u32le(hdr, seqid);
	wn_put_u16le(hdr + 4, WN_KCPGO_FEC_DATA);
	wn_put_u16le(hdr + 6, (uint16_t)(kcp_len + 2));
}

void wn_kcpgo_put_parity_hdr(uint8_t hdr[WN_KCPGO_FEC_HDR], uint32_t seqid)
{
	wn_put_u32le(hdr, seqid);
	wn_put_u16le(hdr + 4, WN_KCPGO_FEC_PARITY);
}

uint32_t wn_kcpgo_next_seqid(uint32_t seqid, unsigned shards)
{
	if (shards == 0)
		shards = 1;
	uint32_t paws = 0xFFFFFFFFu / shards * shards;
	return (seqid + 1) % paws;
}

/* ---- FEC groups ------------------------------------------------------- */

struct wn_kcpgo_enc {
	const struct wn_rs *rs;
	unsigned ds, ps, shards;
	size_t max_shard, headroom, stride;
	uint32_t next;   /* seqid of the next shard */
	unsigned count;  /* data shards in the current group */
	size_t longest;  /* the current group's longest shard */
	size_t *len;     /* [ds] each data shard's length */
	uint8_t *data;   /* [ds][max_shard] copies */
	uint8_t *parity; /* [ps][stride]: headroom, FEC header, shard */
	const uint8_t **din;
	uint8_t **pout;
};

int wn_kcpgo_enc_new(const struct wn_rs *rs, unsigned datashard,
                     unsigned parityshard, size_t max_shard, size_t headroom,
                     struct wn_kcpgo_enc **out)
{
	if (!datashard || !parityshard ||
	    datashard + parityshard > WN_KCPGO_SHARDS_MAX || max_shard < 2)
		return WN_EINVAL;
	struct wn_kcpgo_enc *e = calloc(1, sizeof(*e));
	if (!e)
		return WN_ENOMEM;
	e->rs = rs;
	e->ds = datashard;
	e->ps = parityshard;
	e->shards = datashard + parityshard;
	e->max_shard = max_shard;
	e->headroom = headroom;
	e->stride = headroom + WN_KCPGO_FEC_HDR + max_shard;
	e->len = calloc(datashard, sizeof(*e->len));
	e->data = malloc(datashard * max_shard);
	e->parity = malloc(parityshard * e->stride);
	e->din = calloc(datashard, sizeof(*e->din));
	e->pout = calloc(parityshard, sizeof(*e->pout));
	if (!e->len || !e->data || !e->parity || !e->din || !e->pout) {
		wn_kcpgo_enc_free(e);
		return WN_ENOMEM;
	}
	for (unsigned i = 0; i < datashard; i++)
		e->din[i] = e->data + i * max_shard;
	for (unsigned j = 0; j < parityshard; j++)
		e->pout[j] =
		    e->parity + j * e->stride + headroom + WN_KCPGO_FEC_HDR;
	*out = e;
	return 0;
}

void wn_kcpgo_enc_free(struct wn_kcpgo_enc *e)
{
	if (!e)
		return;
	free(e->len);
	free(e->data);
	free(e->parity);
	free(e->din);
	free(e->pout);
	free(e);
}

int wn_kcpgo_enc_data(struct wn_kcpgo_enc *e, uint8_t *kcp, size_t kcp_len)
{
	wn_kcpgo_put_data_hdr(kcp - WN_KCPGO_FEC_DATA_HDR, e->next, kcp_len);
	e->next = wn_kcpgo_next_seqid(e->next, e->shards);
	size_t n = kcp_len + 2;
	if (n > e->max_shard)
		return WN_EINVAL; /* the caller sized max_shard: never */
	memcpy(e->data + e->count * e->max_shard, kcp - 2, n);
	e->len[e->count] = n;
	if (n > e->longest)
		e->longest = n;
	if (++e->count < e->ds)
		return 0;
	/* The group is complete: pad, encode, stamp the parity shards. */
	size_t L = e->longest;
	for (unsigned i = 0; i < e->ds; i++)
		memset(e->data + i * e->max_shard + e->len[i], 0,
		       L - e->len[i]);
	wn_rs_encode(e->rs, e->din, e->pout, L);
	for (unsigned j = 0; j < e->ps; j++) {
		wn_kcpgo_put_parity_hdr(e->pout[j] - WN_KCPGO_FEC_HDR, e->next);
		e->next = wn_kcpgo_next_seqid(e->next, e->shards);
	}
	e->count = 0;
	e->longest = L; /* kept for wn_kcpgo_enc_parity */
	return (int)e->ps;
}

uint8_t *wn_kcpgo_enc_parity(struct wn_kcpgo_enc *e, unsigned i, size_t *len)
{
	*len = WN_KCPGO_FEC_HDR + e->longest;
	if (i + 1 == e->ps)
		e->longest = 0; /* the next group starts afresh */
	return e->pout[i] - WN_KCPGO_FEC_HDR;
}

#define DEC_GROUPS 3 /* as kcp-go keeps 3 groups' worth of shards */

struct dec_group {
	uint32_t group;
	int live, done;
	unsigned have;
	size_t parity_len; /* 0 until a parity shard came */
	uint8_t *present;  /* [shards] */
	size_t *len;       /* [shards] */
	uint8_t *buf;      /* [shards][max_shard] */
};

/* Shard kinds remembered for detecting the peer's shard counts. */
#define DEC_OBS 64

/* A retune is tried at most once per this many shards, and after one
 * succeeded the next waits this many times more: a peer that keeps
 * changing its counts (or a stranger with the key steering them) costs
 * a detection pass and a new codec now and then, not per packet. */
#define DEC_TRY_EVERY 8
#define DEC_RETUNE_GAP (16 * DEC_OBS)

/* Observations needed before the first retune: fewer can fit a group size
 * the peer does not use, and a wrong switch would stick for a gap. */
#define DEC_OBS_MIN (DEC_OBS / 2)

struct wn_kcpgo_dec {
	const struct wn_rs *rs;    /* the configured codec, or own */
	struct wn_rs *own;         /* after a retune: ours */
	struct wn_rs_cache *cache; /* rs's inverted matrices, made lazily */
	unsigned ds, ps, shards;
	unsigned lim_ds, lim_ps; /* the largest counts a retune accepts */
	size_t max_shard;
	struct dec_group g[DEC_GROUPS];
	uint8_t **ptrs; /* [shards] scratch for wn_rs_reconstruct */
	uint32_t obs_seq[DEC_OBS];
	uint8_t obs_parity[DEC_OBS];
	uint64_t obs_n;    /* observations so far (the ring keeps DEC_OBS) */
	uint64_t next_try; /* obs_n before which no retune is tried */
	uint64_t retunes;
	uint64_t inversions; /* by caches a retune dropped */
};

static void groups_free(struct wn_kcpgo_dec *d)
{
	for (int i = 0; i < DEC_GROUPS; i++) {
		free(d->g[i].present);
		free(d->g[i].len);
		free(d->g[i].buf);
		memset(&d->g[i], 0, sizeof(d->g[i]));
	}
	free(d->ptrs);
	d->ptrs = NULL;
}

/* (Re)allocates the group buffers for ds + ps shards; shards kept so far
 * are dropped. Returns 0 or WN_ENOMEM. */
static int groups_setup(struct wn_kcpgo_dec *d, unsigned ds, unsigned ps)
{
	groups_free(d);
	d->ds = ds;
	d->ps = ps;
	d->shards = ds + ps;
	int ok = (d->ptrs = calloc(d->shards, sizeof(*d->ptrs))) != NULL;
	for (int i = 0; ok && i < DEC_GROUPS; i++) {
		struct dec_group *g = &d->g[i];
		g->present = calloc(d->shards, 1);
		g->len = calloc(d->shards, sizeof(*g->len));
		g->buf = malloc(d->shards * d->max_shard);
		ok = g->present && g->len && g->buf;
	}
	return ok ? 0 : WN_ENOMEM;
}

int wn_kcpgo_dec_new(const struct wn_rs *rs, unsigned datashard,
                     unsigned parityshard, size_t max_shard,
                     struct wn_kcpgo_dec **out)
{
	if (!datashard || !parityshard ||
	    datashard + parityshard > WN_KCPGO_SHARDS_MAX || max_shard < 2)
		return WN_EINVAL;
	struct wn_kcpgo_dec *d = calloc(1, sizeof(*d));
	if (!d)
		return WN_ENOMEM;
	d->rs = rs;
	d->max_shard = max_shard;
	d->lim_ds =
	    datashard > WN_KCPGO_DETECT_MAX ? datashard : WN_KCPGO_DETECT_MAX;
	d->lim_ps = parityshard > WN_KCPGO_DETECT_MAX ? parityshard
	                                              : WN_KCPGO_DETECT_MAX;
	if (groups_setup(d, datashard, parityshard) != 0) {
		wn_kcpgo_dec_free(d);
		return WN_ENOMEM;
	}
	*out = d;
	return 0;
}

void wn_kcpgo_dec_free(struct wn_kcpgo_dec *d)
{
	if (!d)
		return;
	groups_free(d);
	wn_rs_cache_free(d->cache);
	wn_rs_free(d->own);
	free(d);
}

void wn_kcpgo_dec_shards(const struct wn_kcpgo_dec *d, unsigned *datashard,
                         unsigned *parityshard, uint64_t *retunes)
{
	*datashard = d->ds;
	*parityshard = d->ps;
	if (retunes)
		*retunes = d->retunes;
}

uint64_t wn_kcpgo_dec_inversions(const struct wn_kcpgo_dec *d)
{
	return d->inversions +
	       (d->cache ? wn_rs_cache_inversions(d->cache) : 0);
}

/* Finds the smallest group size T (2 .. lim_ds + lim_ps) and data count
 * consistent with the remembered shards: every data shard's seqid % T
 * below every parity shard's, the observations spanning at least two
 * groups. Returns 0 with *ds / *ps, or WN_EAGAIN (also when the counts
 * found exceed lim_ds / lim_ps). */
static int detect(const struct wn_kcpgo_dec *d, unsigned *ds, unsigned *ps)
{
	unsigned n = d->obs_n < DEC_OBS ? d->obs_n : DEC_OBS;
	uint32_t lo = UINT32_MAX, hi = 0;
	for (unsigned i = 0; i < n; i++) {
		if (d->obs_seq[i] < lo)
			lo = d->obs_seq[i];
		if (d->obs_seq[i] > hi)
			hi = d->obs_seq[i];
	}
	for (unsigned t = 2; t <= d->lim_ds + d->lim_ps; t++) {
		if (n == 0 || hi - lo < 2 * t)
			break;
		unsigned min_par = t, max_data = 0;
		int seen_data = 0;
		for (unsigned i = 0; i < n; i++) {
			unsigned r = d->obs_seq[i] % t;
			if (d->obs_parity[i]) {
				if (r < min_par)
					min_par = r;
			} else {
				seen_data = 1;
				if (r > max_data)
					max_data = r;
			}
		}
		if (seen_data && min_par < t && max_data < min_par) {
			if (min_par > d->lim_ds || t - min_par > d->lim_ps)
				return WN_EAGAIN;
			*ds = min_par;
			*ps = t - min_par;
			return 0;
		}
	}
	return WN_EAGAIN;
}

/* A shard sits in the other kind's slot: the peer's counts differ from
 * ours (kcp-go adapts to its peer the same way). Switches to what the
 * remembered shards show, if they show it. */
static void retune(struct wn_kcpgo_dec *d)
{
	unsigned ds, ps;
	if (d->obs_n < DEC_OBS_MIN || d->obs_n < d->next_try)
		return;
	d->next_try = d->obs_n + DEC_TRY_EVERY;
	if (detect(d, &ds, &ps) != 0 || (ds == d->ds && ps == d->ps))
		return;
	struct wn_rs *rs;
	if (wn_rs_new(ds, ps, &rs) != 0)
		return;
	unsigned old_ds = d->ds, old_ps = d->ps;
	if (groups_setup(d, ds, ps) != 0) {
		wn_rs_free(rs);
		if (groups_setup(d, old_ds, old_ps) != 0)
			groups_free(d); /* no memory: FEC off (ptrs NULL) */
		return;
	}
	wn_rs_free(d->own);
	if (d->cache)
		d->inversions += wn_rs_cache_inversions(d->cache);
	wn_rs_cache_free(d->cache);
	d->cache = NULL; /* its matrices were the old codec's */
	d->own = rs;
	d->rs = rs;
	d->retunes++;
	d->next_try = d->obs_n + DEC_RETUNE_GAP;
}

/* Rebuilds g's missing data shards; returns how many, or WN_EPROTO. */
static int dec_rebuild(struct wn_kcpgo_dec *d, struct dec_group *g,
                       wn_kcpgo_kcp_fn out, void *ctx)
{
	size_t L = g->parity_len;
	g->done = 1;
	for (unsigned i = 0; i < d->shards; i++) {
		d->ptrs[i] = g->buf + i * d->max_shard;
		if (g->present[i] && i < d->ds)
			memset(d->ptrs[i] + g->len[i], 0, L - g->len[i]);
	}
	if (!d->cache && wn_rs_cache_new(d->ds, &d->cache) != 0)
		return WN_EPROTO; /* no memory: this group is not rebuilt */
	if (wn_rs_reconstruct(d->rs, d->cache, d->ptrs, g->present, L) != 0)
		return WN_EPROTO;
	int n = 0, bad = 0;
	for (unsigned i = 0; i < d->ds; i++) {
		if (g->present[i])
			continue;
		size_t size = wn_get_u16le(d->ptrs[i]);
		if (size < 2 || size > L) {
			bad = 1;
			continue;
		}
		out(ctx, d->ptrs[i] + 2, size - 2);
		n++;
	}
	return bad && n == 0 ? WN_EPROTO : n;
}

int wn_kcpgo_dec_input(struct wn_kcpgo_dec *d, const struct wn_kcpgo_pkt *p,
                       wn_kcpgo_kcp_fn out, void *ctx)
{
	if (p->kind == WN_KCPGO_RAW)
		return 0;
	if (p->shard_len > d->max_shard)
		return WN_EPROTO;
	unsigned o = d->obs_n++ % DEC_OBS;
	d->obs_seq[o] = p->seqid;
	d->obs_parity[o] = p->kind == WN_KCPGO_PARITY;
	if (d->ptrs &&
	    (p->seqid % d->shards >= d->ds) != (p->kind == WN_KCPGO_PARITY))
		retune(d);
	if (!d->ptrs)
		return 0; /* out of memory after a retune: no recovery */
	uint32_t gid = p->seqid / d->shards;
	unsigned idx = p->seqid % d->shards;
	int parity = idx >= d->ds;
	if (parity != (p->kind == WN_KCPGO_PARITY))
		return WN_EPROTO; /* a shard in the other kind's place */
	struct dec_group *g = &d->g[gid % DEC_GROUPS];
	if (!g->live || g->group != gid) {
		if (g->live && (int32_t)(gid - g->group) < 0)
			return 0; /* older than what we keep */
		g->live = 1;
		g->done = 0;
		g->group = gid;
		g->have = 0;
		g->parity_len = 0;
		memset(g->present, 0, d->shards);
	}
	if (g->done || g->present[idx])
		return 0;
	if (parity) {
		if (g->parity_len && p->shard_len != g->parity_len)
			return WN_EPROTO;
		for (unsigned i = 0; i < d->ds; i++)
			if (g->present[i] && g->len[i] > p->shard_len)
				return WN_EPROTO;
		g->parity_len = p->shard_len;
	} else if (g->parity_len && p->shard_len > g->parity_len) {
		return WN_EPROTO;
	}
	memcpy(g->buf + idx * d->max_shard, p->shard, p->shard_len);
	g->len[idx] = p->shard_len;
	g->present[idx] = 1;
	g->have++;
	unsigned data_have = 0;
	for (unsigned i = 0; i < d->ds; i++)
		data_have += g->present[i];
	if (data_have == d->ds) {
		g->done = 1; /* nothing lost */
		return 0;
	}
	if (g->have < d->ds || !g->parity_len)
		return 0;
	return dec_rebuild(d, g, out, ctx);
}
