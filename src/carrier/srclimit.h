/* Per-source admission counts for the tcp and tls servers (private to
 * src/carrier/): how many connections each source prefix holds that have not
 * proved themselves yet, so one host, or one network, cannot take every
 * slot. A source is its address's /24 for IPv4 (and IPv4-mapped IPv6) and
 * its /64 for IPv6: one attacker usually holds a whole such prefix, while
 * unrelated clients rarely share one.
 *
 * The table is bounded: it holds at most `cap` prefixes, fixed at init
 * (each counted connection holds one entry, so a cap above the number of
 * connections that can be counted never fills). Keys are hashed with
 * SipHash under a random key, so a peer cannot aim its prefixes at one
 * probe sequence. Pure: no I/O, no clock. */
#ifndef WN_CARRIER_SRCLIMIT_H
#define WN_CARRIER_SRCLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct wn_srclimit_slot;

struct wn_srclimit {
	struct wn_srclimit_slot *slots;
	size_t nslots; /* a power of two, at least twice cap */
	size_t cap, used;
	uint32_t per_source; /* the most one prefix may hold */
	uint8_t key[16];     /* SipHash key */
};

/* A source prefix as a key (0 is never a key). */
typedef uint64_t wn_srckey;

/* Sets up a table for at most cap prefixes, each holding at most
 * per_source. Returns 0 or WN_ENOMEM. */
int wn_srclimit_init(struct wn_srclimit *t, size_t cap, uint32_t per_source);

/* Frees the table. */
void wn_srclimit_free(struct wn_srclimit *t);

/* The key of sa's source prefix (/24 or /64), or 0 for another family. */
wn_srckey wn_srclimit_key(const struct sockaddr *sa);

/* Counts one more connection for key k. Returns true when it is admitted
 * (the caller then owes one wn_srclimit_put), false when k already holds
 * per_source or the table is full (nothing was counted). Key 0 is always
 * admitted and never counted. */
bool wn_srclimit_take(struct wn_srclimit *t, wn_srckey k);

/* Gives back one connection counted for k. */
void wn_srclimit_put(struct wn_srclimit *t, wn_srckey k);

/* How many connections k holds now. */
uint32_t wn_srclimit_count(const struct wn_srclimit *t, wn_srckey k);

#endif
