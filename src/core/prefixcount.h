/* Per-source-prefix counts with a cap: how many of something (half-open
 * handshakes, say) each network holds at once, in a table of fixed size.
 * (How often a prefix may do something is core/prefixlimit.h's token
 * buckets; this counts what is held, taken and given back.)
 *
 * A prefix is an IPv4 /24 or an IPv6 /64 (an IPv4-mapped IPv6 address
 * counts as IPv4): one host, or one small network behind one NAT, can
 * hold at most max_per of the items at a time, however many source
 * addresses it uses inside its prefix.
 *
 * The table has `slots` entries, allocated once; an entry exists while its
 * count is above 0. When the table is full, a new prefix is refused (the
 * caller sizes it above its global cap on the items, so that a full table
 * means the global cap is reached anyway). Probing is linear from a seeded
 * hash, so a chosen set of colliding prefixes costs at most one pass over
 * the table.
 *
 * Pure: no I/O, no clock; memory only at init. */
#ifndef WN_CORE_PREFIXCOUNT_H
#define WN_CORE_PREFIXCOUNT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define WN_PREFIX_LEN 9 /* family tag, then up to 8 bytes of prefix */

struct wn_prefix {
	uint8_t b[WN_PREFIX_LEN];
};

/* The prefix of sa (len bytes): /24 for IPv4, /64 for IPv6. Any other
 * family maps to one all-zero prefix. */
void wn_prefix_of(const struct sockaddr *sa, socklen_t len,
                  struct wn_prefix *out);

struct wn_prefixcount_slot;

struct wn_prefixcount {
	struct wn_prefixcount_slot *slot;
	size_t mask; /* slots - 1 */
	size_t used;
	uint32_t max_per;
	uint64_t seed;
};

/* Makes a table of `slots` entries (rounded up to a power of two) letting
 * each prefix hold max_per items. seed randomises the hash. Returns 0 or
 * WN_ENOMEM / WN_EINVAL (slots or max_per 0). */
int wn_prefixcount_init(struct wn_prefixcount *t, size_t slots,
                        uint32_t max_per, uint64_t seed);

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
