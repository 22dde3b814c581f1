#include "crypto/hsadmit.h"

#include <string.h>

#include <sodium.h>

void wn_hsadmit_init(struct wn_hsadmit *a, const uint8_t hkey[16], uint64_t now)
{
	memset(a, 0, sizeof(*a));
	memcpy(a->hkey, hkey, sizeof(a->hkey));
	a->tokens = WN_HSADMIT_BURST;
	a->refill_ms = now;
}

static uint64_t hash(const struct wn_hsadmit *a, const uint8_t *d, size_t n)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, d, n, a->hkey);
	memcpy(&v, h, sizeof(v));
	return v;
}

static void refill(double *tokens, uint64_t *last, uint64_t now, double rate,
                   double burst)
{
	if (now > *last) {
		*tokens += (double)(now - *last) * rate / 1000;
		*last = now;
	}
	if (*tokens > burst)
		*tokens = burst;
}

bool wn_hsadmit_under_load(struct wn_hsadmit *a, uint64_t now)
{
	refill(&a->tokens, &a->refill_ms, now, WN_HSADMIT_RATE_PER_S,
	       WN_HSADMIT_BURST);
	return a->tokens < WN_HSADMIT_LOAD_MARK;
}

/* The bucket of a source: found, or a free or the least recently used
 * one of its set, started full. */
static struct wn_hsadmit_src *source(struct wn_hsadmit *a,
                                     const struct wn_prefix *src, uint64_t now)
{
	struct wn_hsadmit_src *set =
	    &a->src[(wn_prefix_hash(src, a->hkey) % WN_HSADMIT_SETS) *
	            WN_HSADMIT_WAYS];
	struct wn_hsadmit_src *victim = &set[0];

	for (int i = 0; i < WN_HSADMIT_WAYS; i++) {
		struct wn_hsadmit_src *e = &set[i];
		if (e->used && wn_prefix_eq(&e->key, src))
			return e;
		if (victim->used && (!e->used || e->last_ms < victim->last_ms))
			victim = e;
	}
	memset(victim, 0, sizeof(*victim));
	victim->key = *src;
	victim->used = 1;
	victim->tokens = WN_HSADMIT_SRC_BURST;
	victim->last_ms = now;
	return victim;
}

enum wn_hsadmit_verdict wn_hsadmit_check(struct wn_hsadmit *a,
                                         const uint8_t *mac1,
                                         const struct sockaddr *from,
                                         socklen_t fromlen, bool mac2_ok,
                                         uint64_t now)
{
	uint8_t *seen =
	    a->seen[hash(a, mac1, WN_PROTECT_MAC_LEN) % WN_HSADMIT_SEEN];

	/* The same bytes again: the timestamp inside was already used (or
	 * refused), so the answer could only be a refusal. */
	if (memcmp(seen, mac1, WN_PROTECT_MAC_LEN) == 0) {
		a->seen_hits++;
		return WN_HSADMIT_REPLAY;
	}
	if (mac2_ok) {
		struct wn_prefix src;
		if (wn_prefix_of(from, fromlen, WN_HSADMIT_SRC_V4_BITS,
		                 WN_HSADMIT_SRC_V6_BITS,
		                 &src) == WN_PREFIX_FAMILY_OTHER)
			return WN_HSADMIT_LIMIT;
		struct wn_hsadmit_src *e = source(a, &src, now);
		refill(&e->tokens, &e->last_ms, now, WN_HSADMIT_SRC_RATE_PER_S,
		       WN_HSADMIT_SRC_BURST);
		if (e->tokens < 1)
			return WN_HSADMIT_LIMIT;
		e->tokens -= 1;
	} else {
		if (wn_hsadmit_under_load(a, now))
			return WN_HSADMIT_COOKIE;
		a->tokens -= 1;
	}
	memcpy(seen, mac1, WN_PROTECT_MAC_LEN);
	return WN_HSADMIT_GO;
}
