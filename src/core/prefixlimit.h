/* Rate limits per source prefix: a token bucket for each IPv4 /24 and each
 * IPv6 /64 (prefix lengths configurable) that something costly is done
 * for, such as a new session or connection, in a table of fixed size.
 *
 * The table holds `slots` prefixes. A prefix is looked up in a short probe
 * run from a seeded hash of it; a prefix not there takes a slot in the run
 * that holds nothing (or whose bucket has refilled, which forgets
 * nothing), else the slot with the most tokens, whose prefix then starts
 * afresh. So memory is fixed, a lookup costs at most the probe run, and a
 * stranger cycling through prefixes can at worst give some prefix a fresh
 * burst, never take tokens from one it does not send from.
 *
 * Prefixes are core/prefix.h's (so IPv4-mapped IPv6 addresses count as
 * the IPv4 address); other families share one bucket.
 *
 * Pure: no I/O, no clock (times are passed in, in ms), no randomness (the
 * seed is passed in: give it random bytes, so that strangers cannot aim
 * prefixes at one probe run). */
#ifndef WN_CORE_PREFIXLIMIT_H
#define WN_CORE_PREFIXLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/prefix.h"

struct wn_prefixlimit_cfg {
	uint32_t rate_per_s; /* tokens a prefix earns per second (>= 1) */
	uint32_t burst;      /* tokens a prefix holds at most (>= 1) */
	size_t slots;        /* prefixes tracked at once (rounded up to a
	                        power of two, at least 16) */
	unsigned v4_bits;    /* IPv4 prefix length, 1..32 (24) */
	unsigned v6_bits;    /* IPv6 prefix length, 1..128 (64) */
	uint8_t seed[16];    /* random: the probe hash's key */
};

/* Fills in rate, burst and slots as given, /24 and /64, seed 0 (give it
 * random bytes before init). */
void wn_prefixlimit_cfg_default(struct wn_prefixlimit_cfg *cfg,
                                uint32_t rate_per_s, uint32_t burst,
                                size_t slots);

struct wn_prefixlimit_slot;

struct wn_prefixlimit {
	struct wn_prefixlimit_cfg cfg;
	struct wn_prefixlimit_slot *slot; /* [mask + 1] */
	size_t mask;
	uint64_t denied, evicted; /* counters, for logs and tests */
};

/* Sets up pl (the caller's memory) from cfg (copied). Returns 0, WN_EINVAL
 * for a rate, burst or prefix length out of range, or WN_ENOMEM. */
int wn_prefixlimit_init(struct wn_prefixlimit *pl,
                        const struct wn_prefixlimit_cfg *cfg);

/* Frees pl's table (pl itself is the caller's). */
void wn_prefixlimit_free(struct wn_prefixlimit *pl);

/* Takes a token from the bucket of sa's prefix (sa is len bytes) at time
 * now (ms, never going back). Returns true if there was one (go ahead),
 * false if the prefix is over its rate (refuse; counted in pl->denied). */
bool wn_prefixlimit_take(struct wn_prefixlimit *pl, const struct sockaddr *sa,
                         socklen_t len, uint64_t now);

/* Writes sa's prefix as text ("10.1.2.0/24", "2001:db8::/64") for logs;
 * returns out. */
char *wn_prefixlimit_format(const struct wn_prefixlimit *pl,
                            const struct sockaddr *sa, socklen_t len, char *out,
                            size_t cap);

#endif
