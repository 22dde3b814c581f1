/* The event loop: a libuv loop plus deferred work.
 *
 * Each struct wn_loop embeds its own uv_loop_t (never the default loop), so
 * several loops, and so several daemons, can live in one process.
 *
 * Deferred work is how objects die. The rule is "never free an object inside
 * its own callback": the code that closes an object (often running inside one
 * of that object's callbacks, with callers up the stack still holding
 * pointers to it) only marks it closed and unlinks it, then calls
 * wn_loop_defer with a node embedded in the object. The loop runs the node's
 * function at the end of the current iteration, after every I/O and timer
 * callback of that iteration has returned; that function frees the object.
 *
 * Ordering, within one iteration: timers, I/O callbacks, then the deferred
 * functions (from a uv_check_t), then libuv's close callbacks (uv_close).
 * Deferred functions run in the order they were deferred, so closing the
 * children of an object before the object itself frees them first.
 *
 * Objects that embed libuv handles: libuv still touches a handle after
 * uv_close until its close callback has run, which is after the deferred
 * functions. So free such an object from the close callback of its last
 * handle (for example: the deferred function calls uv_close or
 * wn_timer_close, and the close callback frees), never from a deferred
 * function while one of its handles is still closing. */
#ifndef WN_IO_LOOP_H
#define WN_IO_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Intrusive node for deferred work, embedded in the object it belongs to.
 * Zero it (calloc, or wn_deferred_init) before its first use. Fields are
 * private. */
struct wn_deferred {
	struct wn_deferred *next;
	void (*fn)(struct wn_deferred *node); /* non-NULL while pending */
};

/* A loop. Embed or allocate it; it must not move after wn_loop_init, since
 * libuv keeps pointers into it. Fields are private except through the
 * accessors below. */
struct wn_loop {
	uv_loop_t uv;
	uv_check_t check; /* runs the deferred list; unreferenced */
	uv_idle_t idle;   /* active only while work is pending */
	struct wn_deferred *head;
	struct wn_deferred **tailp;
};

/* Initialise loop. Returns 0 or a WN_E* code (loop then needs no cleanup). */
int wn_loop_init(struct wn_loop *loop);

/* Run until wn_loop_stop is called or nothing is left to do (no active
 * referenced handles or requests, no deferred work). Returns true if it
 * stopped with handles still active, false if it ran out of work. */
bool wn_loop_run(struct wn_loop *loop);

/* Make wn_loop_run return after the current iteration; that iteration's
 * deferred work still runs. Safe to call from any callback of this loop. */
void wn_loop_stop(struct wn_loop *loop);

/* Tear the loop down: run pending deferred work, uv_close every handle still
 * open (with no close callback: their owners should have closed them), run
 * the loop until every close has completed and every deferral made meanwhile
 * has run, then release libuv's resources. Call it outside wn_loop_run.
 * Returns the number of handles it had to close (0 when every owner closed
 * its own, which tests may assert), or a WN_E* code if libuv refused to
 * close the loop. */
int wn_loop_close(struct wn_loop *loop);

/* The libuv loop, for code in src/io/ that creates handles on it. */
uv_loop_t *wn_loop_uv(struct wn_loop *loop);

/* The loop's cached monotonic time in milliseconds, taken at the start of the
 * current iteration (uv_now). */
uint64_t wn_loop_now_ms(const struct wn_loop *loop);

/* Refresh the cached time (after a long computation inside a callback). */
void wn_loop_update_time(struct wn_loop *loop);

/* Monotonic clock in nanoseconds from an arbitrary origin, read now. */
uint64_t wn_mono_ns(void);

/* Wall-clock time: milliseconds since the Unix epoch (0 if unavailable). */
uint64_t wn_wall_ms(void);

/* True while deferred work is pending (for a caller that drives the loop
 * itself, one iteration at a time, as a virtual-time test does). */
bool wn_loop_has_deferred(const struct wn_loop *loop);

/* Make node idle (not pending). */
void wn_deferred_init(struct wn_deferred *node);

/* True while node is deferred and its function has not started yet. */
bool wn_deferred_pending(const struct wn_deferred *node);

/* Schedule fn(node) to run at the end of the current loop iteration (or of
 * the next one, if called from a deferred function). Never allocates. If
 * node is already pending this is a no-op and the first fn stays. The node
 * is no longer pending when fn starts, so fn may free the memory holding
 * node, or defer node again. The caller must keep node's memory alive until
 * fn runs. */
void wn_loop_defer(struct wn_loop *loop, struct wn_deferred *node,
                   void (*fn)(struct wn_deferred *node));

/* A timer on a wn_loop, embedded in its owner; cb receives the wn_timer, from
 * which the owner recovers itself with offsetof. Fields are private (the
 * timer uses uv.data). */
struct wn_timer {
	uv_timer_t uv;
	void (*cb)(struct wn_timer *t);
	void (*closed)(struct wn_timer *t);
};

/* Initialise t (stopped) on loop; cb runs each time it fires. Returns 0 or a
 * WN_E* code. Once initialised, t must be closed with wn_timer_close before
 * its memory is freed. */
int wn_timer_init(struct wn_loop *loop, struct wn_timer *t,
                  void (*cb)(struct wn_timer *t));

/* (Re)arm t to fire after after_ms, then every repeat_ms if repeat_ms is not
 * 0. Returns 0 or a WN_E* code (WN_EINVAL if t is closing). */
int wn_timer_start(struct wn_timer *t, uint64_t after_ms, uint64_t repeat_ms);

/* Disarm t. Harmless if it is not armed. */
void wn_timer_stop(struct wn_timer *t);

/* Close t. closed (may be NULL) runs once libuv is done with t, later in
 * this iteration; only then may t's memory be freed. */
void wn_timer_close(struct wn_timer *t, void (*closed)(struct wn_timer *t));

#endif
