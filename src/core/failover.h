/* The failover policy of a client with several paths to its server (a
 * carrier and the server's address on it, in order of preference): when
 * to leave the active path, which path to take, when to probe the first
 * path again. Pure: time is passed in, and the engine does the moving (QUIC
 * migrates its connection, KCP sends on another carrier) and tells the
 * policy when it has moved.
 *
 * The rules:
 *  - Fail over when the active path makes no progress: it has been down
 *    for failover_ms, or nothing was heard for failover_ms while data is
 *    in flight; and never sooner than failover_ms after the last move, so
 *    that the next path gets its chance.
 *  - Take the next path after the active one, in order and round, that is
 *    up.
 *  - While not on the first path, probe the first every probe_ms (the
 *    first probe_ms after leaving it), while it is up.
 *  - Move back to a more preferred path when it is known to work again:
 *    the engine's business (a validated QUIC path, a KCP answer arriving
 *    there); it reports the move with wn_failover_moved. */
#ifndef WN_CORE_FAILOVER_H
#define WN_CORE_FAILOVER_H

#include <stdint.h>

#define WN_FAILOVER_MAX_PATHS 8

struct wn_failover {
	uint32_t after_ms; /* failover_ms */
	uint32_t probe_ms;
	unsigned npaths, active;
	uint64_t moved_ms;  /* last move (or the start) */
	uint64_t probed_ms; /* last probe (or move) */
	uint8_t up[WN_FAILOVER_MAX_PATHS];
	uint64_t down_ms[WN_FAILOVER_MAX_PATHS]; /* when it went down */
};

enum wn_failover_act {
	WN_FAILOVER_STAY = 0,
	WN_FAILOVER_MOVE,  /* move to *path: the active one makes no progress */
	WN_FAILOVER_PROBE, /* probe *path (the first) */
};

/* Starts with no paths, on what will be path 0, at now. */
void wn_failover_init(struct wn_failover *f, uint32_t after_ms,
                      uint32_t probe_ms, uint64_t now);

/* Adds the next path, up or not yet. Returns its index, or -1 when there
 * are WN_FAILOVER_MAX_PATHS already. */
int wn_failover_add_path(struct wn_failover *f, int up, uint64_t now);

/* The engine starts (or starts over) on path 0 at now. */
void wn_failover_start(struct wn_failover *f, uint64_t now);

/* A path went up or down. */
void wn_failover_path_state(struct wn_failover *f, unsigned i, int up,
                            uint64_t now);

/* The engine moved to path i (after a MOVE, or back to a better path). */
void wn_failover_moved(struct wn_failover *f, unsigned i, uint64_t now);

/* What to do at now, given when the server was last heard and whether
 * data is in flight. With PROBE the probe counts as sent. The move to
 * *path is not done until wn_failover_moved. */
enum wn_failover_act wn_failover_check(struct wn_failover *f, uint64_t now,
                                       uint64_t heard_ms, int in_flight,
                                       unsigned *path);

/* When check can next return something other than STAY, if nothing else
 * happens (the server stays silent, data stays in flight). */
uint64_t wn_failover_next(const struct wn_failover *f, uint64_t heard_ms);

#endif
