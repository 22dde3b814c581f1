/* The failover policy (failover.h). */
#include "core/failover.h"

#include <string.h>

void wn_failover_init(struct wn_failover *f, uint32_t after_ms,
                      uint32_t probe_ms, uint64_t now)
{
	memset(f, 0, sizeof(*f));
	f->after_ms = after_ms;
	f->probe_ms = probe_ms;
	f->moved_ms = f->probed_ms = now;
}

int wn_failover_add_path(struct wn_failover *f, int up, uint64_t now)
{
	if (f->npaths == WN_FAILOVER_MAX_PATHS)
		return -1;
	unsigned i = f->npaths++;
	f->up[i] = up != 0;
	f->down_ms[i] = now;
	return (int)i;
}

void wn_failover_start(struct wn_failover *f, uint64_t now)
{
	f->active = 0;
	f->moved_ms = f->probed_ms = now;
}

void wn_failover_path_state(struct wn_failover *f, unsigned i, int up,
                            uint64_t now)
{
	if (i >= f->npaths)
		return;
	if (f->up[i] && !up)
		f->down_ms[i] = now;
	f->up[i] = up != 0;
}

void wn_failover_moved(struct wn_failover *f, unsigned i, uint64_t now)
{
	if (i >= f->npaths || i == f->active)
		return;
	f->active = i;
	f->moved_ms = f->probed_ms = now;
}

/* The next path after the active one that is up, or the active one. */
static unsigned next_up(const struct wn_failover *f)
{
	for (unsigned k = 1; k < f->npaths; k++) {
		unsigned j = (f->active + k) % f->npaths;
		if (f->up[j])
			return j;
	}
	return f->active;
}

enum wn_failover_act wn_failover_check(struct wn_failover *f, uint64_t now,
                                       uint64_t heard_ms, int in_flight,
                                       unsigned *path)
{
	if (f->npaths < 2)
		return WN_FAILOVER_STAY;
	unsigned a = f->active;
	int down = !f->up[a] && now - f->down_ms[a] >= f->after_ms;
	int silent = in_flight && now - heard_ms >= f->after_ms;
	if ((down || silent) && now - f->moved_ms >= f->after_ms) {
		unsigned j = next_up(f);
		if (j != a) {
			*path = j;
			return WN_FAILOVER_MOVE;
		}
	}
	if (a != 0 && f->up[0] && now - f->probed_ms >= f->probe_ms) {
		f->probed_ms = now;
		*path = 0;
		return WN_FAILOVER_PROBE;
	}
	return WN_FAILOVER_STAY;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

uint64_t wn_failover_next(const struct wn_failover *f, uint64_t heard_ms)
{
	unsigned a = f->active;
	uint64_t t = heard_ms + f->after_ms;
	if (!f->up[a] && f->down_ms[a] + f->after_ms < t)
		t = f->down_ms[a] + f->after_ms;
	t = max64(t, f->moved_ms + f->after_ms);
	if (a != 0 && f->probed_ms + f->probe_ms < t)
		t = f->probed_ms + f->probe_ms;
	return t;
}
