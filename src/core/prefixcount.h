/* Per-source-prefix counts with a cap: how many of something (half-open
 * handshakes, say) each network holds at once, in a table of fixed size.
 * (How often a prefix may do something is core/prefixlimit.h's token
 * buckets; this counts what is held, taken and given back.)
 *
 * Prefixes are core/prefix.h's, of whatever length the caller takes
 * (usually an IPv4 /24 and an IPv6 /64): one host, or one small network
 * behind one NAT, can hold at most max_per of the items at a time, however
 * many source addresses it uses inside its prefix.
 *
 * The table has `slots` entries, allocated once; an entry exists while its
 * count is above 0. When the table is full, a new prefix is refused (the
 * caller sizes it above its global cap on the items, so that a full table
 * means the global cap is reached anyway). Probing is linear from a keyed
 * hash (SipHash under a random key), so a stranger cannot choose prefixes
 * that collide, and deletion shifts entries back, so churn leaves no
 * tombstones.
 *
 * Pure: no I/O, no clock; memory only at init. */
#ifndef WN_CORE_PREFIXCOUNT_H
#define WN_CORE_PREFIXCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "core/prefix.h"

struct wn_prefixcount_slot;

struct wn_prefixcount {
	struct wn_prefixcount_slot *slot;
	size_t mask; /* slots - 1 */
	size_t used;
	uint32_t max_per;
	uint8_t key[16]; /* the hash key */
};

/* Makes a table of `slots` entries (rounded up to a power of two; at most
 * slots - 1 prefixes fit) letting each prefix hold max_per items. key: 16
 * random bytes for the hash (copied). Returns 0 or WN_ENOMEM / WN_EINVAL
 * (slots or max_per 0). */
int wn_prefixcount_init(struct wn_prefixcount *t, size_t slots,
                        uint32_t max_per, const uint8_t key[16]);

void wn_prefixcount_free(struct wn_prefixcount *t);

/* Takes one item for p. Returns 0, or WN_EAGAIN (and changes nothing) when
 * p already holds max_per or the table has no room for a new prefix. */
int wn_prefixcount_take(struct wn_prefixcount *t, const struct wn_prefix *p);

/* Gives back one item p took (a prefix holding none is left alone). */
void wn_prefixcount_release(struct wn_prefixcount *t,
                            const struct wn_prefix *p);

/* Items p holds now. */
uint32_t wn_prefixcount_count(const struct wn_prefixcount *t,
                              const struct wn_prefix *p);

#endif
