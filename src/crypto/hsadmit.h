/* Handshake admission for the KCP engine's server: which initiations that
 * passed mac1 may cost the server its DH work, which get a cookie reply
 * instead, and which are dropped (docs/wire-format.md, "Cookies and load").
 *
 * Every initiation that passes mac1 is a candidate for two DH operations
 * (and three more if it is answered), and anyone who knows the server's
 * public key, or who replays a captured initiation, can send them from any
 * source address. So:
 *
 *   - An initiation seen before (same mac1, so the same bytes) is dropped
 *     without cost: a replay of one recent initiation spends no budget.
 *   - One with a valid mac2 comes from an address that receives our
 *     packets (it echoed a cookie made for it): it spends a token of that
 *     source's own bucket (address without port; IPv6 by /64), never the
 *     global one, so spoofed floods cannot use up a real client's budget.
 *   - One without: while the global bucket is above WN_HSADMIT_LOAD_MARK
 *     (no load) it spends a global token, as before cookies existed; below
 *     it (under load) it is answered with a cookie reply, which costs no
 *     DH and is smaller than the initiation.
 *
 * Pure: time is passed in, the hash key is given at init; no allocation,
 * bounded memory (WN_HSADMIT_SOURCES buckets, WN_HSADMIT_SEEN initiations
 * remembered; a new source takes the least recently used bucket of its
 * set). */
#ifndef WN_CRYPTO_HSADMIT_H
#define WN_CRYPTO_HSADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "core/prefix.h"
#include "crypto/protect.h"

/* Initiations without mac2 that pass mac1 cost the server two DH
 * operations each; without load the global bucket caps them. */
#define WN_HSADMIT_RATE_PER_S 200
#define WN_HSADMIT_BURST 400
/* Below this many global tokens the server is under load: cookies. */
#define WN_HSADMIT_LOAD_MARK (WN_HSADMIT_BURST / 2)
/* Per proven source: enough for many clients behind one NAT, each of
 * which handshakes every two minutes. */
#define WN_HSADMIT_SRC_RATE_PER_S 10
#define WN_HSADMIT_SRC_BURST 20
/* A proven source: one IPv4 host (or NAT), or one IPv6 /64. */
#define WN_HSADMIT_SRC_V4_BITS WN_PREFIX_V4_HOST
#define WN_HSADMIT_SRC_V6_BITS WN_PREFIX_V6_NET
#define WN_HSADMIT_WAYS 4
#define WN_HSADMIT_SETS 256
#define WN_HSADMIT_SOURCES (WN_HSADMIT_WAYS * WN_HSADMIT_SETS)
#define WN_HSADMIT_SEEN 1024

enum wn_hsadmit_verdict {
	WN_HSADMIT_GO,     /* a token was spent: do the DH work */
	WN_HSADMIT_COOKIE, /* under load, no mac2: send a cookie reply */
	WN_HSADMIT_REPLAY, /* seen before: drop */
	WN_HSADMIT_LIMIT,  /* its source's bucket is empty: drop */
};

/* Private. */
struct wn_hsadmit_src {
	struct wn_prefix key;
	uint8_t used; /* 0: free */
	double tokens;
	uint64_t last_ms;
};

struct wn_hsadmit {
	double tokens;
	uint64_t refill_ms;
	uint8_t hkey[16]; /* keys the set and slot choice (SipHash) */
	struct wn_hsadmit_src src[WN_HSADMIT_SOURCES];
	uint8_t seen[WN_HSADMIT_SEEN][WN_PROTECT_MAC_LEN];
	uint64_t seen_hits; /* replays dropped, for tests and stats */
};

/* Starts with a full global bucket at time now. hkey: 16 random bytes, so
 * that a sender cannot aim at one set or slot. */
void wn_hsadmit_init(struct wn_hsadmit *a, const uint8_t hkey[16],
                     uint64_t now);

/* True when the global bucket is below WN_HSADMIT_LOAD_MARK. */
bool wn_hsadmit_under_load(struct wn_hsadmit *a, uint64_t now);

/* Decides about an initiation that passed mac1. mac1 is its mac1 field;
 * from (fromlen bytes) the address it came from; mac2_ok from
 * wn_protect_responder_check. On WN_HSADMIT_GO the initiation is
 * remembered, so the same bytes are a replay from then on. A proven
 * initiation from an address that is not IP has no budget: LIMIT. */
enum wn_hsadmit_verdict wn_hsadmit_check(struct wn_hsadmit *a,
                                         const uint8_t *mac1,
                                         const struct sockaddr *from,
                                         socklen_t fromlen, bool mac2_ok,
                                         uint64_t now);

#endif
