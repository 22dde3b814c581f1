/* Per-source-prefix counts with a cap (prefixcount.h): an open-addressing
 * table with linear probing and backward-shift deletion, so it needs no
 * tombstones and never degrades after churn. */
#include "core/prefixcount.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

struct wn_prefixcount_slot {
	struct wn_prefix p;
	uint32_t n; /* 0: empty */
};

int wn_prefixcount_init(struct wn_prefixcount *t, size_t slots,
                        uint32_t max_per, const uint8_t key[16])
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
	memcpy(t->key, key, sizeof(t->key));
	return 0;
}

void wn_prefixcount_free(struct wn_prefixcount *t)
{
	free(t->slot);
	t->slot = NULL;
}

static size_t hash(const struct wn_prefixcount *t, const struct wn_prefix *p)
{
	return (size_t)wn_prefix_hash(p, t->key) & t->mask;
}

/* The slot holding p, or the empty slot where it would go. */
static size_t find(const struct wn_prefixcount *t, const struct wn_prefix *p)
{
	size_t i = hash(t, p);
	while (t->slot[i].n && !wn_prefix_eq(&t->slot[i].p, p))
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
