/* Sliding-window replay filter for 64-bit packet counters (the bitmap
 * scheme of RFC 6479).
 *
 * The filter remembers the highest counter seen and, for the
 * WN_REPLAY_WINDOW counters below it, which ones have been seen. A counter
 * is fresh if it is above the highest, or inside the window and not yet
 * seen; anything older than the window is refused, because the filter can
 * no longer tell. The bitmap is a ring of 64-bit words: moving the window
 * forward clears whole words instead of shifting bits, so a jump costs at
 * most one pass over the ring and an in-window packet costs one bit test.
 *
 * Check and commit are separate so that a packet is marked only after it
 * authenticates: a forged packet with a future counter must not move the
 * window. wn_replay_check does both for callers that need no such care.
 *
 * Pure: no I/O, no allocation. The struct may be embedded and copied. */
#ifndef WN_CORE_REPLAY_H
#define WN_CORE_REPLAY_H

#include <stdint.h>

#define WN_REPLAY_WORDS 64 /* a power of two */
/* Counters accepted below the highest one seen. One word of the ring holds
 * the bits just above the highest, so the window is one word short of the
 * ring. */
#define WN_REPLAY_WINDOW ((WN_REPLAY_WORDS - 1) * 64) /* 4032 */

struct wn_replay {
	/* Highest counter seen plus one; 0 before the first. Bit k of the
	 * ring stands for counter k - 1. */
	uint64_t top;
	uint64_t ring[WN_REPLAY_WORDS];
};

/* Starts an empty filter: every counter but UINT64_MAX is fresh. */
void wn_replay_init(struct wn_replay *r);

/* Tells, without marking, whether ctr would be accepted. Returns 0 if fresh,
 * WN_EPROTO if already seen, older than the window, or UINT64_MAX (which the
 * filter cannot represent). */
int wn_replay_peek(const struct wn_replay *r, uint64_t ctr);

/* Marks ctr as seen, moving the window forward if it is the new highest.
 * Returns 0, or WN_EPROTO (and changes nothing) if wn_replay_peek would have
 * refused it, so that two packets with one counter racing through
 * peek-decrypt-commit are still caught. */
int wn_replay_commit(struct wn_replay *r, uint64_t ctr);

/* Peek and commit in one step: returns 0 if ctr was fresh and is now
 * marked, WN_EPROTO if it was replayed or too old. */
int wn_replay_check(struct wn_replay *r, uint64_t ctr);

#endif
