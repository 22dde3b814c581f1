/* memcarrier: an in-memory datagram carrier pair for tests (carrier.h).
 *
 * Two carriers joined back to back on one wn_loop: what one sends, the
 * other's handler receives in a later loop iteration (from a uv_idle_t,
 * never from inside send), one recv() per segment of the batch, with the
 * sender's address as `from`. Optionally lossy (loss_per_mille) and
 * reordering (reorder_per_mille: a packet is held back and delivered after
 * the next one), from a deterministic generator seeded by the port. So two
 * engines, or any datagram user, can talk without sockets.
 *
 * Ownership: the caller owns both structs (embed them or keep them on the
 * stack); wn_memcarrier_close (also the ops' close) stops one and drops
 * what was on its way to it, and must be called before the loop closes. */
#ifndef WN_TESTS_MEMCARRIER_H
#define WN_TESTS_MEMCARRIER_H

#include <netinet/in.h>
#include <stdint.h>

#include "carrier/carrier.h"
#include "io/loop.h"

struct wn_mempkt;

struct wn_memcarrier {
	struct wn_carrier base; /* first: hand &base to the engine */
	struct wn_memcarrier *peer;
	struct sockaddr_in addr;
	struct wn_mempkt *head, **tail; /* on their way to this carrier */
	struct wn_mempkt *held;         /* held back for reordering */
	uv_idle_t idle;
	size_t max_packet;          /* 1452 unless set */
	uint32_t loss_per_mille;    /* of the packets sent to the peer */
	uint32_t reorder_per_mille; /* idem */
	uint64_t rng;
	uint64_t sent, delivered, dropped, reordered;
	/* Packets above max_packet are counted, and delivered anyway: an
	 * engine that ignores the limit fails its test's assertions instead
	 * of stalling. */
	size_t largest; /* the largest packet handed to send */
	uint64_t oversized;
};

/* Initialises m (any memory) as a carrier at ip:port whose packets go to
 * handler h. Join two with wn_memcarrier_pair before sending. */
void wn_memcarrier_init(struct wn_memcarrier *m, struct wn_loop *loop,
                        const char *ip, uint16_t port,
                        struct wn_carrier_handler h);

/* Joins a and b: each sends to the other. */
void wn_memcarrier_pair(struct wn_memcarrier *a, struct wn_memcarrier *b);

/* The peer's address, to give an engine as the server's. */
const struct sockaddr *wn_memcarrier_addr(const struct wn_memcarrier *m);

/* Stops m: drops what was queued for it, closes its idle handle. */
void wn_memcarrier_close(struct wn_memcarrier *m);

#endif
