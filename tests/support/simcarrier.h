/* simcarrier: a datagram carrier (carrier.h) over simulated links
 * (simlink.h), for engines run in virtual time.
 *
 * What the engine sends at the virtual now goes into the outbound link,
 * one packet per segment of the batch; wn_simcarrier_deliver hands every
 * packet of the inbound link due at now to the engine's handler, with the
 * peer's address as `from`. The carrier never calls the handler from
 * inside send, and owns no loop handle: the test moves time and calls
 * deliver, so nothing happens behind its back.
 *
 * The virtual clock is the caller's uint64_t of nanoseconds (the engine's
 * injected clock reads the same variable); the links count whole
 * milliseconds, so a packet sent at 3.7 ms leaves at 3 ms.
 *
 * Ownership: the caller owns the struct and both links (borrowed; they
 * outlive the carrier). close() only stops deliveries. */
#ifndef WN_TESTS_SIMCARRIER_H
#define WN_TESTS_SIMCARRIER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "carrier/carrier.h"
#include "support/simlink.h"

#define WN_SIMCARRIER_MAX_PACKET 1452

struct wn_simcarrier {
	struct wn_carrier base; /* first: hand &base to the engine */
	struct sockaddr_in addr, peer;
	struct wn_simlink *out, *in; /* borrowed */
	const uint64_t *now_ns;      /* borrowed: the virtual clock */
	size_t max_packet;           /* WN_SIMCARRIER_MAX_PACKET unless set */
	int closed;
	uint8_t rx[WN_SIMCARRIER_MAX_PACKET];
};

/* Initialises c as a carrier at ip:port whose peer is at peer_ip:peer_port,
 * sending on out and receiving from in, with time read from *now_ns;
 * packets go to h. */
void wn_simcarrier_init(struct wn_simcarrier *c, const char *ip, uint16_t port,
                        const char *peer_ip, uint16_t peer_port,
                        struct wn_simlink *out, struct wn_simlink *in,
                        const uint64_t *now_ns, struct wn_carrier_handler h);

/* Delivers every inbound packet due at *now_ns. Returns how many. */
unsigned wn_simcarrier_deliver(struct wn_simcarrier *c);

/* Sets *when_ns to the next inbound delivery (never before *now_ns) and
 * returns true, or returns false when nothing is in flight to c. */
bool wn_simcarrier_next(const struct wn_simcarrier *c, uint64_t *when_ns);

/* The carrier's own address (give the peer's engine this as its server). */
const struct sockaddr *wn_simcarrier_addr(const struct wn_simcarrier *c);

#endif
