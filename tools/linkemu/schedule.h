/* The packet pool and delivery schedule of warren-linkemu.
 *
 * All memory is allocated once by le_sched_init: a pool of fixed-size
 * packet slots per direction (so a flood one way cannot starve the other)
 * and a binary min-heap of scheduled packets keyed by delivery time, ties
 * broken by scheduling order so packets due at the same time leave in the
 * order they were scheduled. No syscalls, no clock: the caller passes
 * times in. Slot buffers are reserved address space (malloc of a large
 * block); pages are only touched when slots are used, and the free lists
 * are stacks, so a light load keeps reusing the same few slots. */
#ifndef WN_LINKEMU_SCHEDULE_H
#define WN_LINKEMU_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Bounds of the default pool size per direction. */
#define LE_POOL_MIN 4096
#define LE_POOL_MAX (UINT32_C(1) << 20)

struct le_entry {
	uint64_t at;
	uint64_t seq;
	uint32_t slot;
};

struct le_sched {
	uint8_t *arena;
	size_t slot_size;
	uint32_t nslots[2]; /* slots [0, nslots[0]) are direction 0's */
	uint32_t *slot_len;
	uint8_t *slot_dup;
	uint32_t *freelist[2];
	uint32_t nfree[2];
	struct le_entry *heap;
	uint32_t heap_len;
	uint64_t seq;
	uint64_t pending[2]; /* scheduled, not yet released */
	uint64_t max_pending[2];
};

/* Returns the default number of slots for a direction: enough for the
 * bytes that can be in flight (the queue limit plus delay, jitter and
 * reorder hold at the rate, 10 Gbit/s assumed when unlimited, plus 10 ms)
 * in packets of 512 bytes on average, clamped to [LE_POOL_MIN,
 * LE_POOL_MAX]. */
uint32_t le_sched_default_slots(const struct le_dir *dir);

/* Allocates the pool (slot_size bytes per slot) and the heap. Returns 0 or
 * WN_ENOMEM (after freeing what it got). */
int le_sched_init(struct le_sched *s, size_t slot_size, uint32_t slots_a2b,
                  uint32_t slots_b2a);

/* Frees everything; s may be zeroed or half-initialized. */
void le_sched_free(struct le_sched *s);

/* Returns the buffer of a free slot of direction d and its index in
 * *slot, or NULL if the pool of d is exhausted. The slot stays free (the
 * next call returns it again) until le_sched_push takes it. */
uint8_t *le_sched_peek(struct le_sched *s, int d, uint32_t *slot);

/* Schedules the peeked slot (holding len bytes) for delivery at `at`,
 * twice if dup. */
void le_sched_push(struct le_sched *s, uint32_t slot, uint32_t len, bool dup,
                   uint64_t at);

/* Returns the earliest delivery time, or UINT64_MAX if nothing is
 * scheduled. */
uint64_t le_sched_next(const struct le_sched *s);

/* Removes the earliest entry and returns its slot; the caller reads it
 * (le_sched_data, slot_len, slot_dup) and then gives it back with
 * le_sched_release. Only call when le_sched_next() != UINT64_MAX. */
uint32_t le_sched_pop(struct le_sched *s);

/* Returns a popped slot to its direction's free list. */
void le_sched_release(struct le_sched *s, uint32_t slot);

/* Returns the direction (0 or 1) that slot belongs to. */
static inline int le_sched_dir(const struct le_sched *s, uint32_t slot)
{
	return slot >= s->nslots[0];
}

/* Returns the buffer of slot. */
static inline uint8_t *le_sched_data(const struct le_sched *s, uint32_t slot)
{
	return s->arena + (size_t)slot * s->slot_size;
}

#endif
