/* Per-prefix token buckets in a fixed table (see prefixlimit.h). */
#include "core/prefixlimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Slots one prefix may sit in: its hash's slot and the next ones. */
#define PROBE 8

/* Tokens are kept in thousandths, so that slow rates refill smoothly. */
#define MILLI 1000u

#define KEY_LEN 17 /* family byte + 16 address bytes, masked */

struct wn_prefixlimit_slot {
	uint8_t key[KEY_LEN];
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

/* Keeps the first `bits` bits of a[0, len), zeroing the rest. */
static void mask_bits(uint8_t *a, size_t len, unsigned bits)
{
	for (size_t i = 0; i < len; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		a[i] &= (uint8_t)(0xFF << (8 - bits));
		bits = 0;
	}
}

/* sa's prefix as a table key. Returns its family (AF_INET for mapped
 * IPv6). */
static int prefix_key(const struct wn_prefixlimit *pl,
                      const struct sockaddr *sa, uint8_t key[KEY_LEN])
{
	memset(key, 0, KEY_LEN);
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			key[0] = AF_INET;
			memcpy(key + 1, a->sin6_addr.s6_addr + 12, 4);
			mask_bits(key + 1, 4, pl->cfg.v4_bits);
			return AF_INET;
		}
		key[0] = AF_INET6;
		memcpy(key + 1, a->sin6_addr.s6_addr, 16);
		mask_bits(key + 1, 16, pl->cfg.v6_bits);
		return AF_INET6;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		key[0] = AF_INET;
		memcpy(key + 1, &a->sin_addr, 4);
		mask_bits(key + 1, 4, pl->cfg.v4_bits);
		return AF_INET;
	}
	key[0] = 0xFF;
	return 0;
}

/* A keyed mix of the key (FNV-1a over seeded bytes, then a 64-bit
 * finaliser): strangers without the seed cannot aim at one probe run. */
static uint64_t key_hash(uint64_t seed, const uint8_t key[KEY_LEN])
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	for (size_t i = 0; i < KEY_LEN; i++) {
		h ^= key[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
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
                         uint64_t now)
{
	uint8_t key[KEY_LEN];
	prefix_key(pl, sa, key);
	const uint32_t full = pl->cfg.burst * MILLI;
	size_t at = (size_t)key_hash(pl->cfg.seed, key) & pl->mask;
	struct wn_prefixlimit_slot *s = NULL, *spare = NULL;
	for (size_t i = 0; i < PROBE; i++) {
		struct wn_prefixlimit_slot *c = &pl->slot[(at + i) & pl->mask];
		if (c->used && memcmp(c->key, key, KEY_LEN) == 0) {
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
		memcpy(s->key, key, KEY_LEN);
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
                            const struct sockaddr *sa, char *out, size_t cap)
{
	uint8_t key[KEY_LEN];
	int fam = prefix_key(pl, sa, key);
	char a[INET6_ADDRSTRLEN];
	if (fam == AF_INET && inet_ntop(AF_INET, key + 1, a, sizeof(a)))
		snprintf(out, cap, "%s/%u", a, pl->cfg.v4_bits);
	else if (fam == AF_INET6 && inet_ntop(AF_INET6, key + 1, a, sizeof(a)))
		snprintf(out, cap, "%s/%u", a, pl->cfg.v6_bits);
	else
		snprintf(out, cap, "(other)");
	return out;
}
