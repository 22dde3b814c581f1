/* The udp front end (client side): a UDP forward. It receives datagrams on
 * a local UDP address and carries them through the tunnel as datagram
 * flows (engine/tunnel.h, "Datagrams (flows)") to the forward's fixed
 * target; the server sends them on from one connected socket per flow
 * (front/udpdial.h) and the target's replies come back the same way.
 *
 * Flows: each client source address (IP and port) is one flow, found in a
 * hash table keyed with a random secret (so a sender cannot pick source
 * ports that collide); replies of the flow go back to that source address.
 *  - A flow silent for idle_ms is reaped (wn_flow_close). One timer per
 *    forward, firing every idle_ms / 4 (at least every WN_UDP_REAP_MIN_MS),
 *    walks the flows from the least recently active, so a flow lives at
 *    most idle_ms plus a quarter of it after its last datagram; no timer
 *    per flow.
 *  - At most max_flows flows at once: a datagram from a new source address
 *    when the table is full evicts the least recently active flow (the one
 *    idle longest) first. A flood of source addresses therefore costs a
 *    bounded table and pushes out only flows idler than every flooding
 *    one.
 *  - A flow the server refuses (on_flow_closed(WN_STREAM_DENIED)) is logged
 *    once (rate-limited over all flows) with the target; its source address
 *    stays in the table as refused, so its further datagrams are dropped
 *    and counted here instead of each opening a new flow, until it has been
 *    silent for idle_ms. A flow the tunnel ends otherwise (session lost,
 *    evicted by the engine) is forgotten: the next datagram opens a new one.
 *
 * FEC (fec_data/fec_parity, off by default): each flow is opened with
 * wn_flow_set_fec, so Reed-Solomon parity repairs random loss on the path
 * both ways (the server mirrors it for the replies); a flow the tunnel
 * has no FEC memory for travels without (logged, rate-limited). What was
 * rebuilt and what could not be are counted per forward.
 *
 * Datagrams are never truncated: one larger than wn_tunnel_max_datagram()
 * (or than WN_DGRAM_SLOT, which receiving needs a buffer bound for, above
 * any tunnel's maximum) is dropped and counted in drop_size. Datagrams that arrive while the
 * tunnel is down or its queue is full are dropped and counted (drop_tunnel).
 *
 * Batching (io/dgram.h): datagrams are read with recvmmsg, WN_DGRAM_BATCH
 * at a time, and replies to the applications are collected during a loop
 * iteration and written with one sendmmsg per WN_DGRAM_BATCH. A reply
 * the socket will not take now (its buffer full) is dropped and counted
 * (drop_reply): UDP is unreliable, and waiting would hold the flows'
 * other traffic. */
#ifndef WN_FRONT_UDP_H
#define WN_FRONT_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/addr.h"
#include "engine/tunnel.h"
#include "io/loop.h"
#include "util/log.h"

#define WN_UDP_FRONT_IDLE_DEFAULT_MS 60000
#define WN_UDP_FRONT_MAX_FLOWS_DEFAULT 1024
#define WN_UDP_REAP_MIN_MS 100

struct wn_udp_front;

struct wn_udp_front_opts {
	const char *name;          /* for logs; copied; NULL: "udp" */
	struct wn_endpoint listen; /* IP literal or name (the first address
	                              it resolves to, at open); port 0: any */
	struct wn_endpoint target; /* every flow's target (copied) */
	uint32_t idle_ms;          /* 0: WN_UDP_FRONT_IDLE_DEFAULT_MS */
	unsigned max_flows;        /* 0: WN_UDP_FRONT_MAX_FLOWS_DEFAULT */
	unsigned fec_data;         /* FEC data shards per group; 0: off */
	unsigned fec_parity;       /* FEC parity shards per group */
	uint32_t fec_delay_ms;     /* FEC grouping time; 0: 5 ms */
};

/* The forward's counters; datagrams and bytes "up" went from the
 * applications into the tunnel, "down" from the tunnel to the
 * applications. */
struct wn_udp_front_stats {
	uint64_t flows;         /* live now (refused ones included) */
	uint64_t flows_opened;  /* flows opened on the tunnel */
	uint64_t flows_reaped;  /* closed after idle_ms of silence */
	uint64_t flows_evicted; /* closed to make room (max_flows) */
	uint64_t flows_denied;  /* refused by the server's policy */
	uint64_t flows_lost;    /* ended by the tunnel otherwise */
	uint64_t open_failed;   /* the tunnel had no flow for a source */
	uint64_t dgrams_up, bytes_up;
	uint64_t dgrams_down, bytes_down;
	uint64_t drop_size;   /* larger than the tunnel carries: not sent */
	uint64_t drop_tunnel; /* tunnel down or its queue full */
	uint64_t drop_policy; /* from a source whose flow was refused */
	uint64_t drop_reply;  /* the local socket did not take a reply */
	/* FEC, over the forward's flows, closed and live: messages from the
	 * server rebuilt from parity, lost ones that could not be, flows
	 * that went without FEC (no memory for it). */
	uint64_t fec_recovered, fec_unrecoverable, fec_off;
};

/* Binds opts->listen and starts forwarding (opts is copied). t, loop and
 * log are borrowed: t must outlive the forward (close the forward first).
 * Returns 0 and *out, or a WN_E* code (WN_EADDRINUSE, WN_EUNREACH when a
 * name does not resolve, WN_ENOTSUP when t carries no datagrams, ...)
 * with nothing for the caller to clean up. */
int wn_udp_front_open(struct wn_loop *loop, struct wn_log *log,
                      struct wn_tunnel *t, const struct wn_udp_front_opts *opts,
                      struct wn_udp_front **out);

/* Closes every flow (wn_flow_close) and the socket; the forward is freed
 * by the loop. Safe from any callback; u must not be used afterwards. */
void wn_udp_front_close(struct wn_udp_front *u);

/* The bound address (to learn the port chosen for port 0). */
int wn_udp_front_sockname(const struct wn_udp_front *u,
                          struct sockaddr_storage *ss);

/* The forward's counters, now. */
void wn_udp_front_stats(const struct wn_udp_front *u,
                        struct wn_udp_front_stats *out);

#endif
