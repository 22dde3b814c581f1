/* The packet pool and delivery schedule of warren-linkemu; see schedule.h. */
#include "schedule.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define ASSUMED_BPS UINT64_C(10000000000)
#define AVG_PACKET 512
#define SLACK_NS (10 * UINT64_C(1000000))

uint32_t le_sched_default_slots(const struct le_dir *dir)
{
	const struct le_cfg *c = &dir->cfg;
	uint64_t hold = c->delay_ns + c->jitter_ns + SLACK_NS;
	uint64_t rate = c->rate_bps ? c->rate_bps : ASSUMED_BPS;
	uint64_t slots;

	if (c->reorder)
		hold += dir->hold_ns;
	slots =
	    (dir->queue_bytes + (uint64_t)((double)rate * (double)hold / 8e9)) /
	    AVG_PACKET;
	if (slots < LE_POOL_MIN)
		slots = LE_POOL_MIN;
	if (slots > LE_POOL_MAX)
		slots = LE_POOL_MAX;
	return (uint32_t)slots;
}

int le_sched_init(struct le_sched *s, size_t slot_size, uint32_t slots_a2b,
                  uint32_t slots_b2a)
{
	uint32_t total = slots_a2b + slots_b2a;

	memset(s, 0, sizeof(*s));
	s->slot_size = slot_size;
	s->nslots[0] = slots_a2b;
	s->nslots[1] = slots_b2a;
	/* A large malloc is an untouched mapping until slots are used. */
	s->arena = malloc(slot_size * total);
	s->slot_len = calloc(total, sizeof(*s->slot_len));
	s->slot_dup = calloc(total, sizeof(*s->slot_dup));
	s->heap = calloc(total, sizeof(*s->heap));
	s->freelist[0] = calloc(slots_a2b, sizeof(uint32_t));
	s->freelist[1] = calloc(slots_b2a, sizeof(uint32_t));
	if (!s->arena || !s->slot_len || !s->slot_dup || !s->heap ||
	    !s->freelist[0] || !s->freelist[1]) {
		le_sched_free(s);
		return WN_ENOMEM;
	}
	for (int d = 0; d < 2; d++) {
		uint32_t base = d ? slots_a2b : 0, n = s->nslots[d];

		/* A stack with the lowest slot on top. */
		for (uint32_t i = 0; i < n; i++)
			s->freelist[d][i] = base + n - 1 - i;
		s->nfree[d] = n;
	}
	return WN_OK;
}

void le_sched_free(struct le_sched *s)
{
	free(s->arena);
	free(s->slot_len);
	free(s->slot_dup);
	free(s->heap);
	free(s->freelist[0]);
	free(s->freelist[1]);
	memset(s, 0, sizeof(*s));
}

uint8_t *le_sched_peek(struct le_sched *s, int d, uint32_t *slot)
{
	if (s->nfree[d] == 0)
		return NULL;
	*slot = s->freelist[d][s->nfree[d] - 1];
	return le_sched_data(s, *slot);
}

static bool before(const struct le_entry *x, const struct le_entry *y)
{
	return x->at < y->at || (x->at == y->at && x->seq < y->seq);
}

void le_sched_push(struct le_sched *s, uint32_t slot, uint32_t len, bool dup,
                   uint64_t at)
{
	struct le_entry ent = {.at = at, .seq = s->seq++, .slot = slot};
	int d = le_sched_dir(s, slot);
	uint32_t i = s->heap_len++;

	/* The peeked slot is the top of its free stack. */
	s->nfree[d]--;
	s->slot_len[slot] = len;
	s->slot_dup[slot] = dup;
	if (++s->pending[d] > s->max_pending[d])
		s->max_pending[d] = s->pending[d];
	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!before(&ent, &s->heap[parent]))
			break;
		s->heap[i] = s->heap[parent];
		i = parent;
	}
	s->heap[i] = ent;
}

uint64_t le_sched_next(const struct le_sched *s)
{
	return s->heap_len ? s->heap[0].at : UINT64_MAX;
}

uint32_t le_sched_pop(struct le_sched *s)
{
	uint32_t slot = s->heap[0].slot;
	struct le_entry last = s->heap[--s->heap_len];
	uint32_t i = 0, n = s->heap_len;

	for (;;) {
		uint32_t child = 2 * i + 1;

		if (child >= n)
			break;
		if (child + 1 < n &&
		    before(&s->heap[child + 1], &s->heap[child]))
			child++;
		if (!before(&s->heap[child], &last))
			break;
		s->heap[i] = s->heap[child];
		i = child;
	}
	if (n > 0)
		s->heap[i] = last;
	return slot;
}

void le_sched_release(struct le_sched *s, uint32_t slot)
{
	int d = le_sched_dir(s, slot);

	s->freelist[d][s->nfree[d]++] = slot;
	s->pending[d]--;
}
