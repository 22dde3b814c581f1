/* FEC for datagram flows: Reed-Solomon parity (src/core/rs.h) over a
 * flow's messages, so that random loss on the path is repaired without
 * retransmission (docs/wire-format.md, "Datagram flows", FEC). Pure: no
 * I/O, time passed in, memory allocated only when a coder is made.
 *
 * A shard is one flow message without its flow id, as the code sees it:
 * a u16 length (big-endian) and the message's bytes, zero-padded to the
 * group's longest shard. A group has `data` data shards when full; one
 * closed early (its grouping time passed) has `count` of them, and the
 * code treats the missing ones as present zero-length shards, so one
 * codec serves every group of a flow. Parity shards are as long as the
 * group's longest shard.
 *
 * Sending: data shards go out at once (the encoder keeps no copy: it adds
 * each to its parity as it passes); the parity follows when the group is
 * full or its grouping time has passed, so no datagram waits. A group
 * closed early sends ceil(parity * count / data) parity shards, so the
 * share of parity stays the configured one.
 *
 * Receiving: a data shard is delivered at once and kept; as soon as a
 * group has as many shards as its count, its missing data shards are
 * rebuilt and delivered. The decoder keeps the two newest groups; a
 * newer group pushes out the older, whose missing shards count as
 * unrecoverable. Nothing waits for a timer. */
#ifndef WN_CORE_DGFEC_H
#define WN_CORE_DGFEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/dgram.h"

/* The groups a decoder keeps. */
#define WN_DGFEC_GROUPS 2
/* A group this far behind the newest one kept is taken as the sender's
 * counter starting over (a new session, a flow the peer made again), not
 * as a late shard. */
#define WN_DGFEC_RESTART_GAP 64

struct wn_rs;
struct wn_rs_cache;

/* ---- encoder ------------------------------------------------------------ */

struct wn_dgfec_enc {
	struct wn_rs *rs;
	unsigned data, parity, delay_ms;
	uint16_t group;    /* the open group (or the next one) */
	unsigned n;        /* data shards in the open group; 0: none open */
	size_t longest;    /* the open group's longest shard */
	uint64_t start_ms; /* when the open group's first shard went */
	uint8_t *par;      /* parity x WN_DGRAM_FEC_SHARD_MAX */
	uint8_t *pp[WN_DGRAM_FEC_PARITY_MAX];
};

/* Makes an encoder for data/parity shards per group (within the
 * WN_DGRAM_FEC_* maxima) and a grouping time of delay_ms (1 ..
 * WN_DGRAM_FEC_DELAY_MAX). Returns 0, WN_EINVAL or WN_ENOMEM. */
int wn_dgfec_enc_init(struct wn_dgfec_enc *e, unsigned data, unsigned parity,
                      unsigned delay_ms);

void wn_dgfec_enc_free(struct wn_dgfec_enc *e);

/* The memory an encoder of these counts holds, in bytes. */
size_t wn_dgfec_enc_size(unsigned data, unsigned parity);

/* The group and index the next data shard goes out with. */
void wn_dgfec_enc_peek(const struct wn_dgfec_enc *e, uint16_t *group,
                       uint8_t *index);

/* Adds the next data shard, a message without its flow id (len >= 1,
 * len + 2 <= WN_DGRAM_FEC_SHARD_MAX, else WN_EINVAL), sent at now.
 * Returns 1 when the group is now full (send its parity, then
 * wn_dgfec_enc_close), 0 otherwise. */
int wn_dgfec_enc_add(struct wn_dgfec_enc *e, uint64_t now, const uint8_t *msg,
                     size_t len);

/* When the open group's parity is due (its first shard's time plus the
 * grouping time); UINT64_MAX when no group is open. */
uint64_t wn_dgfec_enc_deadline(const struct wn_dgfec_enc *e);

/* The open group's data shard count (the parity shards' count byte) and
 * how many parity shards it sends (0 when none is open). */
unsigned wn_dgfec_enc_count(const struct wn_dgfec_enc *e);
unsigned wn_dgfec_enc_nparity(const struct wn_dgfec_enc *e);

/* Parity shard j (< wn_dgfec_enc_nparity) of the open group: *len bytes,
 * valid until wn_dgfec_enc_close. */
const uint8_t *wn_dgfec_enc_parity(const struct wn_dgfec_enc *e, unsigned j,
                                   size_t *len);

/* Closes the open group; the next shard starts the next one. */
void wn_dgfec_enc_close(struct wn_dgfec_enc *e);

/* ---- decoder ------------------------------------------------------------ */

struct wn_dgfec_stats {
	uint64_t recovered;     /* data shards rebuilt from parity */
	uint64_t unrecoverable; /* data shards lost that could not be */
	uint64_t dups;          /* data shards received or rebuilt before */
	uint64_t bad;           /* shards that contradict their group */
};

struct wn_dgfec_dec;

/* Called with each rebuilt message (without its flow id), valid during
 * the call. */
typedef void (*wn_dgfec_deliver_fn)(void *ctx, const uint8_t *msg, size_t len);

/* Makes a decoder for data/parity shards per group. Returns 0, WN_EINVAL
 * or WN_ENOMEM. */
int wn_dgfec_dec_new(unsigned data, unsigned parity, struct wn_dgfec_dec **out);

/* Frees d (NULL: nothing). To count the kept groups' missing shards
 * first, wn_dgfec_dec_reset. */
void wn_dgfec_dec_free(struct wn_dgfec_dec *d);

/* The memory a decoder of these counts holds, in bytes. */
size_t wn_dgfec_dec_size(unsigned data, unsigned parity);

/* A data shard (index < data) of group arrived. Returns 1 when it is new:
 * the caller delivers it, then calls wn_dgfec_dec_recover; 0 for a
 * duplicate (drop it). A shard of a group older than those kept is new
 * and not kept. len as for wn_dgfec_enc_add. */
int wn_dgfec_dec_data(struct wn_dgfec_dec *d, uint16_t group, unsigned index,
                      const uint8_t *msg, size_t len);

/* A parity shard (index data .. data+parity-1, with the group's count)
 * arrived; then call wn_dgfec_dec_recover. Shards that contradict their
 * group (another length, another count) are dropped and counted bad. */
void wn_dgfec_dec_parity(struct wn_dgfec_dec *d, uint16_t group, unsigned index,
                         unsigned count, const uint8_t *par, size_t len);

/* Rebuilds group's missing data shards if it now has enough shards, and
 * delivers each (deliver may not call into d). Returns how many. */
unsigned wn_dgfec_dec_recover(struct wn_dgfec_dec *d, uint16_t group,
                              wn_dgfec_deliver_fn deliver, void *ctx);

/* Counts the kept groups' missing shards and forgets them (the sender
 * starts over: a new session). */
void wn_dgfec_dec_reset(struct wn_dgfec_dec *d);

void wn_dgfec_dec_stats(const struct wn_dgfec_dec *d,
                        struct wn_dgfec_stats *out);

#endif
