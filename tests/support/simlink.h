/* simlink: a one-way packet link in virtual time for two-ended protocol
 * tests (the KCP core's, and the engine simulator's).
 *
 * Packets sent at `now` are delivered after a propagation delay, with
 * optional jitter (which keeps packets in order), reordering (a packet held
 * back while later ones pass it), duplication, random loss, an outage switch, and a bottleneck:
 * a serialisation rate with a drop-tail queue. Every random choice comes
 * from one seeded generator, so a run is a pure function of its seed and
 * its inputs. Times are uint32_t ms that may wrap (compared by signed
 * difference); the caller must not move time backwards.
 *
 * Setup failures (out of memory) abort: they are bugs in the test. */
#ifndef WN_TESTS_SIMLINK_H
#define WN_TESTS_SIMLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wn_simlink_cfg {
	uint32_t delay_ms;   /* one-way propagation delay */
	uint32_t jitter_ms;  /* plus a uniform extra delay in [0, jitter] */
	double loss;         /* probability a packet is dropped */
	double dup;          /* probability a packet is delivered twice */
	double reorder;      /* probability a packet is held back ... */
	uint32_t reorder_ms; /* ... by this much more */
	uint64_t rate_Bps;   /* bottleneck bytes per second; 0: unlimited */
	size_t queue_bytes;  /* bottleneck queue (drop tail); 0: unlimited */
	uint64_t seed;
};

struct wn_simlink_stats {
	uint64_t sent;        /* packets offered */
	uint64_t lost;        /* dropped at random or while down */
	uint64_t queue_drops; /* dropped by the full bottleneck queue */
	uint64_t duplicated;
	uint64_t delivered;
	uint64_t delivered_bytes;
};

struct wn_simlink;

/* Creates a link; cfg is copied. Free with wn_simlink_free. */
struct wn_simlink *wn_simlink_new(const struct wn_simlink_cfg *cfg);

/* Frees the link and the packets in flight. NULL is fine. */
void wn_simlink_free(struct wn_simlink *l);

/* Offers a packet (copied; len > 0) at time now. */
void wn_simlink_send(struct wn_simlink *l, const uint8_t *pkt, size_t len,
                     uint32_t now);

/* While down, every packet offered is lost (packets already in flight
 * still arrive). */
void wn_simlink_set_down(struct wn_simlink *l, bool down);

/* Changes the random loss probability from now on. */
void wn_simlink_set_loss(struct wn_simlink *l, double loss);

/* Returns true and sets *when to the earliest delivery time if a packet is
 * in flight. */
bool wn_simlink_next(const struct wn_simlink *l, uint32_t *when);

/* Pops the earliest packet due at or before now into buf (truncated to
 * cap). Returns its full length, or 0 if none is due. */
size_t wn_simlink_recv(struct wn_simlink *l, uint32_t now, uint8_t *buf,
                       size_t cap);

/* Copies the counters. */
void wn_simlink_get_stats(const struct wn_simlink *l,
                          struct wn_simlink_stats *st);

/* The link's generator, for tests that want more seeded randomness:
 * returns the next 64 random bits. */
uint64_t wn_simlink_rand(struct wn_simlink *l);

#endif
