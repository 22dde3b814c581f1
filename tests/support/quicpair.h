/* quicpair: a QUIC client and server joined by simulated links, in
 * virtual time: the rig of the two-ended QUIC tests (tests/sim).
 *
 * Both engines read the pair's clock (`now`, nanoseconds) and draw their
 * non-cryptographic randomness from the links' seeded generators, so a
 * run is the same for a seed. The engines arm no loop timers with an
 * injected clock: wn_quicpair_step moves time to the next delivery or
 * engine deadline and runs what is due, and nothing happens behind the
 * test's back.
 *
 * Ownership: the test owns the struct (embed it, or allocate it zeroed)
 * and calls wn_quicpair_free at the end. */
#ifndef WN_TESTS_QUICPAIR_H
#define WN_TESTS_QUICPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/key.h"
#include "engine/engine_ops.h"
#include "io/loop.h"
#include "support/simcarrier.h"
#include "support/simlink.h"
#include "util/log.h"

#define WN_QUICPAIR_NS_PER_MS 1000000ull

struct wn_quicpair {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_identity sid, cid;
	uint64_t now; /* virtual ns: both engines' clock */
	struct wn_simlink *c2s, *s2c;
	struct wn_simcarrier cc, sc;
	struct wn_engine *cli, *srv;
};

/* Builds both ends at virtual time start_ns: links in both directions
 * from link (the reverse one with a derived seed), a server accepting the
 * client's key with ah (copied by the engine), a client pinning the
 * server's key, and their carriers. The client has no path yet: set what
 * the test needs on p->cc/p->sc (max_packet, caps), then
 * wn_quicpair_connect. */
void wn_quicpair_init(struct wn_quicpair *p, const struct wn_simlink_cfg *link,
                      uint64_t start_ns, enum wn_log_level level,
                      const struct wn_accept_handler *ah);

/* Adds the client's path to the server and starts it connecting. */
void wn_quicpair_connect(struct wn_quicpair *p);

/* Runs the deferred work (write passes, closes) due at the present. */
void wn_quicpair_settle(struct wn_quicpair *p);

/* The next moment anything happens (a delivery or an engine deadline), or
 * UINT64_MAX when nothing is due. */
uint64_t wn_quicpair_next_event(const struct wn_quicpair *p);

/* Moves time to t, or a microsecond on when t is not in the future (a
 * deadline already due, such as a write pass the pacer cut short, comes
 * again), and runs the deliveries and engine deadlines due then. */
void wn_quicpair_advance(struct wn_quicpair *p, uint64_t t);

/* Runs queued work, then moves time to the next event (or by step_ns at
 * most, when step_ns is not 0) and runs what is due. Returns false when
 * nothing at all is due (only the client's reconnect timer, a loop timer,
 * can be pending). */
bool wn_quicpair_step(struct wn_quicpair *p, uint64_t step_ns);

/* Closes both engines and carriers, the loop and the links, and wipes the
 * identities. */
void wn_quicpair_free(struct wn_quicpair *p);

#endif
