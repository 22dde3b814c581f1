#include "support/smuxpair.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

uint8_t wn_sp_pat(uint32_t sid, uint64_t off)
{
	return (uint8_t)(off * 131 + (off >> 9) + sid * 17);
}

uint64_t wn_sp_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * UINT64_C(2685821657736338717);
}

struct wn_sp_rx *wn_sp_rx(struct wn_sp_side *d, uint32_t sid)
{
	for (size_t i = 0; i < d->nrx; i++)
		if (d->rx[i].sid == sid)
			return &d->rx[i];
	d->rx = realloc(d->rx, (d->nrx + 1) * sizeof(*d->rx));
	if (!d->rx)
		abort();
	memset(&d->rx[d->nrx], 0, sizeof(d->rx[0]));
	d->rx[d->nrx].sid = sid;
	return &d->rx[d->nrx++];
}

static uint32_t cb_open(void *ctx, uint32_t sid)
{
	struct wn_sp_side *d = ctx;

	wn_sp_rx(d, sid)->open++;
	return d->refuse;
}

static void maybe_forget(struct wn_sp_side *d, struct wn_sp_rx *r)
{
	if (!d->forget_done)
		return;
	for (size_t i = 0; i < d->ntx; i++)
		if (d->tx[i].sid == r->sid && !d->tx[i].done)
			return;
	if (r->fin || r->reset)
		wn_smux_forget(d->m, r->sid);
}

static void cb_data(void *ctx, uint32_t sid, const uint8_t *data, size_t len)
{
	struct wn_sp_side *d = ctx;
	struct wn_sp_rx *r = wn_sp_rx(d, sid);

	if (r->fin || r->reset)
		r->after_end++;
	for (size_t i = 0; i < len; i++)
		if (data[i] != wn_sp_pat(sid, r->got + i))
			r->bad++;
	r->got += len;
	if (d->consume && sid != d->stall) {
		r->consumed += len;
		wn_smux_consumed(d->m, sid, len);
	}
}

static void cb_fin(void *ctx, uint32_t sid)
{
	struct wn_sp_side *d = ctx;
	struct wn_sp_rx *r = wn_sp_rx(d, sid);

	if (r->fin || r->reset)
		r->after_end++;
	r->fin++;
	maybe_forget(d, r);
}

static void cb_reset(void *ctx, uint32_t sid, uint32_t reason)
{
	struct wn_sp_side *d = ctx;
	struct wn_sp_rx *r = wn_sp_rx(d, sid);

	if (r->fin || r->reset)
		r->after_end++;
	r->reset++;
	r->reason = reason;
	for (size_t i = 0; i < d->ntx; i++)
		if (d->tx[i].sid == sid)
			d->tx[i].done = 1;
	maybe_forget(d, r);
}

static void cb_writable(void *ctx, uint32_t sid)
{
	struct wn_sp_side *d = ctx;

	wn_sp_rx(d, sid)->writable++;
	for (size_t i = 0; i < d->ntx; i++)
		if (d->tx[i].sid == sid)
			d->tx[i].blocked = 0;
}

static int side_init(struct wn_sp_side *d, const struct wn_smux_cfg *cfg)
{
	struct wn_smux_cb cb = {
	    .ctx = d,
	    .on_open = cb_open,
	    .on_data = cb_data,
	    .on_fin = cb_fin,
	    .on_reset = cb_reset,
	    .on_writable = cb_writable,
	};

	memset(d, 0, sizeof(*d));
	d->consume = 1;
	return wn_smux_new(cfg, &cb, &d->m);
}

int wn_sp_init(struct wn_sp *p, const struct wn_smux_cfg *ca,
               const struct wn_smux_cfg *cb, uint64_t seed)
{
	int rc;

	memset(p, 0, sizeof(*p));
	p->rng = seed ? seed : 1;
	p->max_pull = 70000;
	p->buf = malloc(WN_SP_BUF);
	if (!p->buf)
		return -1;
	rc = side_init(&p->a, ca);
	if (rc)
		return rc;
	return side_init(&p->b, cb);
}

static void side_free(struct wn_sp_side *d)
{
	wn_smux_free(d->m);
	free(d->rx);
	free(d->tx);
}

void wn_sp_free(struct wn_sp *p)
{
	side_free(&p->a);
	side_free(&p->b);
	free(p->buf);
}

void wn_sp_send(struct wn_sp_side *d, uint32_t sid, uint64_t total, int fin)
{
	d->tx = realloc(d->tx, (d->ntx + 1) * sizeof(*d->tx));
	if (!d->tx)
		abort();
	memset(&d->tx[d->ntx], 0, sizeof(d->tx[0]));
	d->tx[d->ntx].sid = sid;
	d->tx[d->ntx].total = total;
	d->tx[d->ntx].fin = fin;
	d->ntx++;
}

uint32_t wn_sp_open(struct wn_sp_side *d, uint64_t total, int fin)
{
	uint32_t sid;

	if (wn_smux_open(d->m, &sid))
		return 0;
	wn_sp_send(d, sid, total, fin);
	return sid;
}

size_t wn_sp_feed(struct wn_sp_side *d)
{
	uint8_t buf[16384];
	size_t took = 0;

	for (size_t i = 0; i < d->ntx; i++) {
		struct wn_sp_tx *t = &d->tx[i];
		while (!t->done && !t->blocked && t->off < t->total) {
			size_t n = sizeof(buf);
			if (n > t->total - t->off)
				n = (size_t)(t->total - t->off);
			for (size_t j = 0; j < n; j++)
				buf[j] = wn_sp_pat(t->sid, t->off + j);
			ssize_t w = wn_smux_write(d->m, t->sid, buf, n);
			/* WN_EINVAL: the peer's SYN has not arrived yet. */
			if (w < 0 && w != WN_EINVAL)
				t->done = 1;
			if (w == 0)
				t->blocked = 1;
			if (w <= 0)
				break;
			t->off += (size_t)w;
			took += (size_t)w;
			if ((size_t)w < n)
				t->blocked = 1;
		}
		if (!t->done && t->off == t->total) {
			t->done = 1;
			if (t->fin)
				wn_smux_shutdown(d->m, t->sid);
			maybe_forget(d, wn_sp_rx(d, t->sid));
		}
	}
	return took;
}

size_t wn_sp_xfer(struct wn_sp *p, struct wn_sp_side *from,
                  struct wn_sp_side *to, size_t cap, int *rc)
{
	uint8_t *buf = p->buf;
	size_t n, off = 0;

	*rc = 0;
	if (cap > WN_SP_BUF)
		cap = WN_SP_BUF;
	n = wn_smux_pull(from->m, buf, cap);
	while (off < n) {
		size_t k = 1 + wn_sp_rand(&p->rng) % 3000;
		if (wn_sp_rand(&p->rng) % 4 == 0)
			k = 1 + k % 9; /* cut inside headers often */
		if (k > n - off)
			k = n - off;
		int r = wn_smux_input(to->m, buf + off, k);
		if (r && !*rc)
			*rc = r;
		off += k;
	}
	return n;
}

int wn_sp_pump(struct wn_sp *p)
{
	for (int iter = 0; iter < 1000000; iter++) {
		int rc;
		size_t moved = wn_sp_feed(&p->a) + wn_sp_feed(&p->b);
		size_t cap =
		    WN_SMUX_CTRL_MAX + wn_sp_rand(&p->rng) % (p->max_pull - 15);
		moved += wn_sp_xfer(p, &p->a, &p->b, cap, &rc);
		if (rc)
			return rc;
		moved += wn_sp_xfer(p, &p->b, &p->a, cap, &rc);
		if (rc)
			return rc;
		if (!moved && !wn_smux_want_pull(p->a.m) &&
		    !wn_smux_want_pull(p->b.m))
			return 0;
	}
	return -1;
}
