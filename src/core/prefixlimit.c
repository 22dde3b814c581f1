/* Per-prefix token buckets in a fixed table (see prefixlimit.h). */
#include "core/prefixlimit.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Slots one prefix may sit in: its hash's slot and the next ones. */
#define PROBE 8

/* Tokens are kept in thousandths, so that slow rates refill smoothly. */
#define MILLI 1000u

struct wn_prefixlimit_slot {
	struct wn_prefix key;
	uint8_t used;
	uint32_t tokens; /* milli-tokens at `at` */
	uint64_t at;     /* ms of the last refill */
};

void wn_prefixlimit_cfg_default(struct wn_prefixlimit_cfg *cfg,
                                uint32_t rate_per_s, uint32_t burst,
                                size_t slots)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->rate_per_s = rate_per_s;
	cfg->burst = burst;
	cfg->slots = slots;
	cfg->v4_bits = 24;
	cfg->v6_bits = 64;
}

int wn_prefixlimit_init(struct wn_prefixlimit *pl,
                        const struct wn_prefixlimit_cfg *cfg)
{
	memset(pl, 0, sizeof(*pl));
	if (cfg->rate_per_s < 1 || cfg->burst < 1 ||
	    cfg->burst > UINT32_MAX / MILLI ||
	    cfg->rate_per_s > UINT32_MAX / MILLI || cfg->v4_bits < 1 ||
	    cfg->v4_bits > 32 || cfg->v6_bits < 1 || cfg->v6_bits > 128 ||
	    cfg->slots > ((size_t)1 << 24))
		return WN_EINVAL;
	size_t n = 16;
	while (n < cfg->slots)
		n *= 2;
	pl->slot = calloc(n, sizeof(*pl->slot));
	if (!pl->slot)
		return WN_ENOMEM;
	pl->cfg = *cfg;
	pl->mask = n - 1;
	return 0;
}

void wn_prefixlimit_free(struct wn_prefixlimit *pl)
{
	free(pl->slot);
	pl->slot = NULL;
}

/* Brings s's bucket up to now. */
static void refill(const struct wn_prefixlimit *pl,
                   struct wn_prefixlimit_slot *s, uint64_t now)
{
	uint64_t full = (uint64_t)pl->cfg.burst * MILLI;
	if (now > s->at) {
		uint64_t add = (now - s->at) * pl->cfg.rate_per_s;
		uint64_t t = s->tokens + add;
		s->tokens = (uint32_t)(t > full ? full : t);
	}
	s->at = now;
}

bool wn_prefixlimit_take(struct wn_prefixlimit *pl, const struct sockaddr *sa,
                         socklen_t len, uint64_t now)
{
	struct wn_prefix key;
	wn_prefix_of(sa, len, pl->cfg.v4_bits, pl->cfg.v6_bits, &key);
	const uint32_t full = pl->cfg.burst * MILLI;
	size_t at = (size_t)wn_prefix_hash(&key, pl->cfg.seed) & pl->mask;
	struct wn_prefixlimit_slot *s = NULL, *spare = NULL;
	for (size_t i = 0; i < PROBE; i++) {
		struct wn_prefixlimit_slot *c = &pl->slot[(at + i) & pl->mask];
		if (c->used && wn_prefix_eq(&c->key, &key)) {
			s = c;
			break;
		}
		if (c->used)
			refill(pl, c, now);
		/* An empty slot, or a full bucket (it forgets nothing), or
		 * failing those the fullest one. */
		if (!spare || !c->used ||
		    (spare->used && c->tokens > spare->tokens))
			spare = c;
	}
	if (!s) {
		s = spare;
		if (s->used && s->tokens < full)
			pl->evicted++;
		s->key = key;
		s->used = 1;
		s->tokens = full;
		s->at = now;
	}
	refill(pl, s, now);
	if (s->tokens < MILLI) {
		pl->denied++;
		return false;
	}
	s->tokens -= MILLI;
	return true;
}

char *wn_prefixlimit_format(const struct wn_prefixlimit *pl,
                            const struct sockaddr *sa, socklen_t len, char *out,
                            size_t cap)
{
	struct wn_prefix p;
	wn_prefix_of(sa, len, pl->cfg.v4_bits, pl->cfg.v6_bits, &p);
	return wn_prefix_format(&p, out, cap);
}
