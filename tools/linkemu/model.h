/* The impairment model of warren-linkemu: pure, deterministic, no I/O.
 *
 * One struct le_dir models one direction of an emulated link. The driver
 * hands it every packet that enters that direction together with the
 * packet's arrival time; the model answers whether the packet is dropped
 * (and why) or at which time it leaves the far end, and whether a second
 * copy leaves too. The model never reads a clock, never allocates and keeps
 * no global state, so a test can drive it through millions of packets in
 * virtual time with a fixed seed and get the same answers every time.
 *
 * What happens to a packet of `len` bytes arriving at `now` (in this order):
 *
 *  1. Queue (only with a rate limit). The link is a serializing link of
 *     `rate_bps` bits per second with a FIFO in front of it. The backlog is
 *     the number of bytes accepted but not yet fully serialized (the packet
 *     on the wire counts with its remaining part). The packet is accepted
 *     iff backlog + len <= queue_bytes; otherwise it is tail-dropped
 *     (LE_DROP_QUEUE). An accepted packet starts serializing when the
 *     previous one finishes (or at `now` if the link is idle) and occupies
 *     the link for exactly len * 8 / rate_bps seconds; the model keeps the
 *     sub-nanosecond remainder, so N back-to-back packets of L bytes finish
 *     at exactly floor(N * L * 8e9 / rate_bps) ns after the first started.
 *     Without a rate limit the packet leaves the queue at `now`.
 *  2. Loss on the wire, after serialization (a lost packet has used its
 *     share of the link, as on a real lossy link). First the Gilbert-Elliott
 *     chain (if configured) decides with the loss probability of its
 *     current state and then makes its state transition (LE_DROP_BURST);
 *     if it did not drop, random loss drops with probability `loss`
 *     (LE_DROP_LOSS). The chain advances for every packet that reaches this
 *     stage.
 *  3. Delay and jitter. The nominal delivery time is
 *     sent + delay + U, with U uniform over the integers in
 *     [-jitter, +jitter] ns, but never earlier than `sent` (the end of
 *     serialization). By default jitter preserves order: the delivery time
 *     is raised to the delivery time of the previous non-reordered packet
 *     of this direction if it would be earlier (so jitter varies the gaps,
 *     like a real link, and the bounds above still hold exactly). With
 *     `jitter_reorder` each packet keeps its own draw and jitter may reorder
 *     packets, as netem's jitter does.
 *  4. Reorder. With probability `reorder` the packet is held back an extra
 *     `reorder_hold_ns` after its delivery time from step 3; packets that
 *     arrive after it and are due earlier overtake it. A held packet does
 *     not hold back the packets behind it (it does not update the
 *     order-preserving bound).
 *  5. Duplicate. With probability `dup` the delivered packet is delivered
 *     twice: the copy leaves at the same time, right after the original. The
 *     copy does not use link capacity and is not subject to loss.
 *
 * Each impairment draws from its own random stream (all derived from the
 * seed), so enabling, say, duplication does not change which packets a
 * given seed loses. */
#ifndef WN_LINKEMU_MODEL_H
#define WN_LINKEMU_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* xoshiro256** seeded through splitmix64. */
struct le_rng {
	uint64_t s[4];
};

/* Seeds `rng` from a 64-bit seed; every seed (including 0) is valid. */
void le_rng_seed(struct le_rng *rng, uint64_t seed);

/* Returns the next 64 random bits. */
uint64_t le_rng_next(struct le_rng *rng);

/* Returns a uniform integer in [0, bound] (inclusive; any bound). */
uint64_t le_rng_upto(struct le_rng *rng, uint64_t bound);

/* A probability in fixed point: LE_PROB_ONE means certainty. An event of
 * probability p happens iff (next() >> 11) < p, so draws are exact and
 * reproducible. */
#define LE_PROB_BITS 53
#define LE_PROB_ONE (UINT64_C(1) << LE_PROB_BITS)
typedef uint64_t le_prob;

/* Converts a probability in [0, 1] (clamped) to fixed point. */
le_prob le_prob_from_double(double p);

/* Returns true with probability p, drawing exactly one number. */
bool le_rng_chance(struct le_rng *rng, le_prob p);

/* The configuration of one direction. All-zero means a perfect link. */
struct le_cfg {
	uint64_t delay_ns;
	uint64_t jitter_ns;
	bool jitter_reorder;  /* let jitter reorder packets (netem style) */
	le_prob loss;         /* random loss */
	bool burst;           /* Gilbert-Elliott enabled */
	le_prob ge_p;         /* good -> bad per packet */
	le_prob ge_r;         /* bad -> good per packet */
	le_prob ge_loss_bad;  /* loss probability in bad state (netem 1-h) */
	le_prob ge_loss_good; /* loss probability in good state (netem 1-k) */
	uint64_t rate_bps;    /* 0: unlimited */
	uint64_t queue_bytes; /* 0: default (see le_cfg_queue_bytes) */
	le_prob reorder;
	uint64_t reorder_hold_ns; /* 0: default LE_REORDER_HOLD_NS */
	le_prob dup;
};

#define LE_REORDER_HOLD_NS (10 * UINT64_C(1000000))
/* Default queue: LE_QUEUE_DEFAULT_NS worth of bytes at the rate, but at
 * least LE_QUEUE_MIN_BYTES. */
#define LE_QUEUE_DEFAULT_NS (100 * UINT64_C(1000000))
#define LE_QUEUE_MIN_BYTES (16 * UINT64_C(1024))

/* Returns the effective queue limit in bytes of `cfg` (0 without a rate). */
uint64_t le_cfg_queue_bytes(const struct le_cfg *cfg);

/* Returns the effective reorder hold time of `cfg`. */
uint64_t le_cfg_reorder_hold(const struct le_cfg *cfg);

/* Parses a SPEC (see tools/linkemu/linkemu.c's usage text and
 * docs) into `cfg`, on top of what `cfg` already holds, so that "--both"
 * and then "--a2b" can be layered. The empty string and "none" are valid
 * and change nothing. Returns 0, or WN_EINVAL with a human message in
 * `err` (NUL-terminated, truncated to `errlen`). */
int le_cfg_parse(struct le_cfg *cfg, const char *spec, char *err,
                 size_t errlen);

/* Writes a one-line canonical description of `cfg` into buf (like
 * snprintf; returns what snprintf returns). */
int le_cfg_format(const struct le_cfg *cfg, char *buf, size_t len);

enum le_verdict {
	LE_DELIVER = 0,
	LE_DROP_QUEUE,
	LE_DROP_BURST,
	LE_DROP_LOSS,
};

struct le_decision {
	enum le_verdict verdict;
	uint64_t sent_ns;   /* end of serialization (all but queue drops) */
	uint64_t at_ns;     /* delivery time (LE_DELIVER) */
	bool reordered;     /* held back by the reorder stage */
	bool dup;           /* deliver a second copy ... */
	uint64_t dup_at_ns; /* ... at this time (== at_ns) */
};

/* Decision counters of one direction. */
struct le_counters {
	uint64_t packets;   /* packets offered */
	uint64_t bytes;     /* bytes offered */
	uint64_t delivered; /* packets with verdict LE_DELIVER */
	uint64_t dropped_queue;
	uint64_t dropped_burst;
	uint64_t dropped_loss;
	uint64_t reordered;
	uint64_t duplicated;
};

/* The state of one direction. Plain data: copyable, no resources. */
struct le_dir {
	struct le_cfg cfg;
	uint64_t queue_bytes; /* effective limit */
	uint64_t hold_ns;     /* effective reorder hold */
	/* The serializing link: it is busy until free_ns + free_frac /
	 * rate_bps nanoseconds; free_frac < rate_bps. */
	uint64_t free_ns;
	uint64_t free_frac;
	uint64_t last_now;
	uint64_t last_at; /* order-preserving jitter bound */
	bool ge_bad;
	struct le_rng rng_loss, rng_burst, rng_jitter, rng_reorder, rng_dup;
	struct le_counters cnt;
};

/* Initializes `dir` with a copy of `cfg` and random streams derived from
 * `seed`. Returns 0, or WN_EINVAL if cfg is inconsistent (a probability
 * above one, a burst model without a way back to the good state). */
int le_dir_init(struct le_dir *dir, const struct le_cfg *cfg, uint64_t seed);

/* Decides the fate of one packet of `len` bytes arriving at `now_ns`.
 * Arrival times must not decrease (an earlier time is taken as the
 * latest seen). Fills `out` and updates the counters. */
void le_dir_decide(struct le_dir *dir, uint64_t now_ns, uint32_t len,
                   struct le_decision *out);

/* Returns the backlog in bytes (rounded up) waiting for or on the link at
 * `now_ns`. */
uint64_t le_dir_backlog(const struct le_dir *dir, uint64_t now_ns);

#endif
