/* Per-source-prefix counts with a cap (prefixcount.h): an open-addressing
 * table with linear probing and backward-shift deletion, so it needs no
 * tombstones and never degrades after churn. */
#include "core/prefixcount.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

struct wn_prefixcount_slot {
	struct wn_prefix p;
	uint32_t n; /* 0: empty */
};

void wn_prefix_of(const struct sockaddr *sa, socklen_t len,
                  struct wn_prefix *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		out->b[0] = 4;
		memcpy(out->b + 1, &a->sin_addr, 3);
	} else if (sa->sa_family == AF_INET6 &&
	           len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
			out->b[0] = 4;
			memcpy(out->b + 1, a->sin6_addr.s6_addr + 12, 3);
		} else {
			out->b[0] = 6;
			memcpy(out->b + 1, a->sin6_addr.s6_addr, 8);
		}
	}
}

int wn_prefixcount_init(struct wn_prefixcount *t, size_t slots,
                        uint32_t max_per, uint64_t seed)
{
	memset(t, 0, sizeof(*t));
	if (slots == 0 || max_per == 0 || slots > ((size_t)1 << 30))
		return WN_EINVAL;
	size_t n = 1;
	while (n < slots)
		n <<= 1;
	t->slot = calloc(n, sizeof(*t->slot));
	if (!t->slot)
		return WN_ENOMEM;
	t->mask = n - 1;
	t->max_per = max_per;
	t->seed = seed;
	return 0;
}

void wn_prefixcount_free(struct wn_prefixcount *t)
{
	free(t->slot);
	t->slot = NULL;
}

/* FNV-1a over the seed and the prefix, then a 64-bit finaliser so that
 * every bit of the prefix reaches the low bits the mask keeps. */
static size_t hash(const struct wn_prefixcount *t, const struct wn_prefix *p)
{
	uint64_t h = 0xcbf29ce484222325ull ^ t->seed;
	for (size_t i = 0; i < WN_PREFIX_LEN; i++)
		h = (h ^ p->b[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (size_t)h & t->mask;
}

/* The slot holding p, or the empty slot where it would go. */
static size_t find(const struct wn_prefixcount *t, const struct wn_prefix *p)
{
	size_t i = hash(t, p);
	while (t->slot[i].n && memcmp(&t->slot[i].p, p, sizeof(*p)) != 0)
		i = (i + 1) & t->mask;
	return i;
}

int wn_prefixcount_take(struct wn_prefixcount *t, const struct wn_prefix *p)
{
	/* One slot always stays empty, which ends every probe. */
	size_t i = find(t, p);
	struct wn_prefixcount_slot *s = &t->slot[i];
	if (s->n) {
		if (s->n >= t->max_per)
			return WN_EAGAIN;
		s->n++;
		return 0;
	}
	if (t->used + 1 > t->mask)
		return WN_EAGAIN;
	s->p = *p;
	s->n = 1;
	t->used++;
	return 0;
}

void wn_prefixcount_release(struct wn_prefixcount *t, const struct wn_prefix *p)
{
	size_t i = find(t, p);
	if (!t->slot[i].n || --t->slot[i].n)
		return;
	t->used--;
	/* Backward shift: move later entries of the probe run into the
	 * hole when their home slot is not between the hole and them. */
	size_t hole = i, j = i;
	for (;;) {
		j = (j + 1) & t->mask;
		if (!t->slot[j].n)
			break;
		size_t home = hash(t, &t->slot[j].p);
		if (((j - home) & t->mask) >= ((j - hole) & t->mask)) {
			t->slot[hole] = t->slot[j];
			t->slot[j].n = 0;
			hole = j;
		}
	}
}

uint32_t wn_prefixcount_count(const struct wn_prefixcount *t,
                              const struct wn_prefix *p)
{
	return t->slot[find(t, p)].n;
}
