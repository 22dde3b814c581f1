/* Per-source admission counts (srclimit.h): open addressing with linear
 * probing, and backward-shift deletion so no tombstones pile up. */
#include "carrier/srclimit.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

struct wn_srclimit_slot {
	wn_srckey key; /* 0: empty */
	uint32_t count;
};

int wn_srclimit_init(struct wn_srclimit *t, size_t cap, uint32_t per_source)
{
	size_t n = 16;

	memset(t, 0, sizeof(*t));
	if (cap == 0)
		cap = 1;
	while (n < 2 * cap)
		n *= 2;
	t->slots = calloc(n, sizeof(*t->slots));
	if (!t->slots)
		return WN_ENOMEM;
	t->nslots = n;
	t->cap = cap;
	t->per_source = per_source ? per_source : 1;
	randombytes_buf(t->key, sizeof(t->key));
	return 0;
}

void wn_srclimit_free(struct wn_srclimit *t)
{
	free(t->slots);
	t->slots = NULL;
	t->nslots = t->used = 0;
}

wn_srckey wn_srclimit_key(const struct sockaddr *sa)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
	                                   0, 0, 0, 0, 0xff, 0xff};
	const uint8_t *a;
	wn_srckey k = 0;

	if (sa->sa_family == AF_INET) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)
		        ->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, mapped, sizeof(mapped)) != 0) {
			/* The /64, its top bit set to mark IPv6 keys:
			 * that merges only prefixes that differ in their
			 * first bit, and all of 8000::/1 is unassigned. */
			for (int i = 0; i < 8; i++)
				k = k << 8 | a[i];
			return k | 1ull << 63;
		}
		a += 12;
	} else {
		return 0;
	}
	/* The /24, with a marker bit so 0.0.0.x is not key 0. */
	return (wn_srckey)1 << 32 | (wn_srckey)a[0] << 16 |
	       (wn_srckey)a[1] << 8 | a[2];
}

static size_t home(const struct wn_srclimit *t, wn_srckey k)
{
	uint8_t in[8], out[crypto_shorthash_BYTES];
	uint64_t h = 0;

	for (int i = 0; i < 8; i++)
		in[i] = (uint8_t)(k >> (8 * i));
	crypto_shorthash(out, in, sizeof(in), t->key);
	for (int i = 0; i < 8; i++)
		h = h << 8 | out[i];
	return (size_t)h & (t->nslots - 1);
}

/* The slot holding k, or the empty slot where it would go. */
static size_t find(const struct wn_srclimit *t, wn_srckey k)
{
	size_t i = home(t, k);

	while (t->slots[i].key != 0 && t->slots[i].key != k)
		i = (i + 1) & (t->nslots - 1);
	return i;
}

bool wn_srclimit_take(struct wn_srclimit *t, wn_srckey k)
{
	size_t i;

	if (k == 0)
		return true;
	i = find(t, k);
	if (t->slots[i].key == 0) {
		if (t->used >= t->cap)
			return false;
		t->slots[i].key = k;
		t->slots[i].count = 0;
		t->used++;
	}
	if (t->slots[i].count >= t->per_source)
		return false;
	t->slots[i].count++;
	return true;
}

void wn_srclimit_put(struct wn_srclimit *t, wn_srckey k)
{
	size_t mask = t->nslots - 1, i, j;

	if (k == 0)
		return;
	i = find(t, k);
	if (t->slots[i].key == 0 || --t->slots[i].count > 0)
		return;
	/* Backward-shift deletion: later members of the probe run move
	 * into the hole unless their home lies cyclically in (i, j]. */
	t->slots[i].key = 0;
	t->used--;
	for (j = (i + 1) & mask; t->slots[j].key != 0; j = (j + 1) & mask) {
		size_t h = home(t, t->slots[j].key);
		bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (stays)
			continue;
		t->slots[i] = t->slots[j];
		t->slots[j].key = 0;
		i = j;
	}
}

uint32_t wn_srclimit_count(const struct wn_srclimit *t, wn_srckey k)
{
	size_t i;

	if (k == 0)
		return 0;
	i = find(t, k);
	return t->slots[i].key == k ? t->slots[i].count : 0;
}
