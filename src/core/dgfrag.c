/* Two-fragment datagram reassembly: see dgfrag.h. */
#include "core/dgfrag.h"

#include <string.h>

#include "util/err.h"

void wn_dgfrag_init(struct wn_dgfrag *f, uint32_t timeout_ms,
                    void (*lost)(void *ctx, uint64_t flow), void *ctx)
{
	f->timeout_ms = timeout_ms ? timeout_ms : WN_DGFRAG_TIMEOUT_MS;
	f->lost = lost;
	f->ctx = ctx;
	f->lost_count = 0;
	for (size_t i = 0; i < WN_DGFRAG_SLOTS; i++)
		f->slot[i].used = 0;
}

static void drop_lost(struct wn_dgfrag *f, struct wn_dgfrag_slot *s)
{
	s->used = 0;
	f->lost_count++;
	if (f->lost)
		f->lost(f->ctx, s->flow);
}

void wn_dgfrag_expire(struct wn_dgfrag *f, uint64_t now_ms)
{
	for (size_t i = 0; i < WN_DGFRAG_SLOTS; i++) {
		struct wn_dgfrag_slot *s = &f->slot[i];
		/* A clock that went back (a test, a restored engine) must not
		 * keep a half for ever: its age is then taken as 0 and it
		 * waits one timeout from now. */
		if (s->used && now_ms < s->t_ms)
			s->t_ms = now_ms;
		if (s->used && now_ms - s->t_ms >= f->timeout_ms)
			drop_lost(f, s);
	}
}

int wn_dgfrag_add(struct wn_dgfrag *f, uint64_t now_ms, uint64_t flow,
                  uint16_t dgram_id, unsigned index, uint8_t meta,
                  const uint8_t *part, size_t len, uint8_t *out, size_t cap,
                  uint8_t *meta_out)
{
	struct wn_dgfrag_slot *free_slot = NULL, *oldest = NULL;

	if (index > 1)
		return WN_EINVAL;
	if (len > WN_DGFRAG_PART_MAX)
		return WN_EMSGSIZE;
	wn_dgfrag_expire(f, now_ms);
	for (size_t i = 0; i < WN_DGFRAG_SLOTS; i++) {
		struct wn_dgfrag_slot *s = &f->slot[i];
		if (!s->used) {
			if (!free_slot)
				free_slot = s;
			continue;
		}
		if (s->flow == flow && s->dgram_id == dgram_id) {
			if (s->index == index)
				return 0; /* a duplicate: keep the first */
			const uint8_t *p0 = index ? s->data : part;
			size_t l0 = index ? s->len : len;
			const uint8_t *p1 = index ? part : s->data;
			size_t l1 = index ? len : s->len;
			if (l0 + l1 > cap) {
				s->used = 0;
				return WN_EMSGSIZE;
			}
			*meta_out = index ? s->meta : meta;
			/* out may not alias the slot; copy index 0 first. */
			memcpy(out, p0, l0);
			memcpy(out + l0, p1, l1);
			s->used = 0;
			return (int)(l0 + l1);
		}
		if (!oldest || s->t_ms < oldest->t_ms)
			oldest = s;
	}
	struct wn_dgfrag_slot *s = free_slot;
	if (!s) {
		s = oldest;
		drop_lost(f, s);
	}
	s->used = 1;
	s->flow = flow;
	s->dgram_id = dgram_id;
	s->index = (uint8_t)index;
	s->meta = meta;
	s->t_ms = now_ms;
	s->len = (uint16_t)len;
	memcpy(s->data, part, len);
	return 0;
}

void wn_dgfrag_drop_flow(struct wn_dgfrag *f, uint64_t flow)
{
	for (size_t i = 0; i < WN_DGFRAG_SLOTS; i++)
		if (f->slot[i].used && f->slot[i].flow == flow)
			f->slot[i].used = 0;
}

void wn_dgfrag_clear(struct wn_dgfrag *f)
{
	for (size_t i = 0; i < WN_DGFRAG_SLOTS; i++)
		f->slot[i].used = 0;
}

size_t wn_dgfrag_held(const struct wn_dgfrag *f)
{
	size_t n = 0;
	for (size_t i = 0; i < WN_DGFRAG_SLOTS; i++)
		n += f->slot[i].used;
	return n;
}
