/* Reassembly of datagrams that travel as two fragments (src/core/dgram.h:
 * FRAG, index 0 and 1), for one session. Pure: time is passed in, no I/O,
 * no allocation (the caller allocates the struct).
 *
 * Memory is bounded: a fixed number of slots, each holding the first half
 * to arrive (either index) of one datagram, keyed by (flow id, datagram
 * id). When every slot is taken, a new half evicts the oldest; a half
 * older than the timeout is dropped when the buffer is next used (no
 * timers). Each half dropped so, whose other half never came, is reported
 * through the `lost` callback, so the owner counts it against its flow. */
#ifndef WN_CORE_DGFRAG_H
#define WN_CORE_DGFRAG_H

#include <stddef.h>
#include <stdint.h>

#define WN_DGFRAG_SLOTS 16
/* The most bytes one half may carry (a fragment's body after its
 * header). Senders keep their fragments within it. */
#define WN_DGFRAG_PART_MAX 1800
/* A half waits this long for the other by default. */
#define WN_DGFRAG_TIMEOUT_MS 2000

struct wn_dgfrag_slot {
	uint64_t flow;
	uint64_t t_ms; /* when it arrived */
	uint16_t dgram_id;
	uint16_t len;
	uint8_t index;
	uint8_t used;
	uint8_t meta; /* the caller's byte for index 0 (its flags) */
	uint8_t data[WN_DGFRAG_PART_MAX];
};

struct wn_dgfrag {
	uint32_t timeout_ms;
	/* Called for each half dropped without its other half. */
	void (*lost)(void *ctx, uint64_t flow);
	void *ctx;
	uint64_t lost_count;
	struct wn_dgfrag_slot slot[WN_DGFRAG_SLOTS];
};

/* Initialises f (empty). timeout_ms 0: WN_DGFRAG_TIMEOUT_MS. lost may be
 * NULL. */
void wn_dgfrag_init(struct wn_dgfrag *f, uint32_t timeout_ms,
                    void (*lost)(void *ctx, uint64_t flow), void *ctx);

/* Feeds one half: part (len bytes) is index `index` (0 or 1) of datagram
 * dgram_id of flow; meta is kept with index 0 and handed back on
 * completion. When this completes a datagram, it is written to out (index
 * 0's bytes, then index 1's) and its length returned, with *meta_out set.
 * Returns 0 when the half is held (or was a duplicate of a held half),
 * WN_EMSGSIZE when len exceeds WN_DGFRAG_PART_MAX or the whole would not
 * fit in cap, WN_EINVAL for an index above 1. */
int wn_dgfrag_add(struct wn_dgfrag *f, uint64_t now_ms, uint64_t flow,
                  uint16_t dgram_id, unsigned index, uint8_t meta,
                  const uint8_t *part, size_t len, uint8_t *out, size_t cap,
                  uint8_t *meta_out);

/* Drops the held halves of one flow (it ended), without reporting them. */
void wn_dgfrag_drop_flow(struct wn_dgfrag *f, uint64_t flow);

/* Drops every held half (a new session), without reporting them. */
void wn_dgfrag_clear(struct wn_dgfrag *f);

/* Drops halves older than the timeout (reported as lost). */
void wn_dgfrag_expire(struct wn_dgfrag *f, uint64_t now_ms);

/* The number of halves held. */
size_t wn_dgfrag_held(const struct wn_dgfrag *f);

#endif
