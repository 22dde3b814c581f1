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
 *  - At most max_flows flows at once. A datagram from a new source
 *    address when the table is full takes the place of another flow, or
 *    is dropped (drop_full), by two rules (udp.c, pick_victim):
 *    fairness between source hosts (an IPv4 address, an IPv6 /64): while
 *    another host holds at least two flows more than the newcomer's, the
 *    newcomer takes the slot of that host's flow idle longest, so a host
 *    with many source ports is held to its fair share once others want
 *    slots; otherwise room is made among the newcomer's host's own flows
 *    (among all when every host holds at most one): the one idle longest
 *    that is not established, else an established one silent for
 *    WN_UDP_FRONT_PROTECT_MS. A flow is established once its source sent
 *    again after a reply (a flow in use both ways; a request answered
 *    once, as DNS, is not). So a flood of new sources costs a bounded
 *    table and never pushes out established flows in use: while all are,
 *    the newcomers wait. For one host sending one-shot requests from many
 *    ports this is least recently used eviction, as before.
 *  - At most WN_UDP_FRONT_EVICT_RATE evictions a second (max_flows when
 *    that is more), in a token bucket as deep: each new flow costs the
 *    server a socket, so a flood of new sources, which would replace a
 *    flow per datagram, costs the server a bounded rate; the datagrams
 *    beyond it are dropped here (drop_full).
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
/* An established flow (see above) silent for less than this is in use:
 * a new source does not take its place (at most udp-idle). */
#define WN_UDP_FRONT_PROTECT_MS 2000
/* Evictions a second at most (and in one burst), or max_flows when that
 * is more. */
#define WN_UDP_FRONT_EVICT_RATE 2048
/* The listening socket's receive and send buffers, in bytes: a few
 * milliseconds of a busy loop at a gigabit (io/dgram.h). */
#define WN_UDP_FRONT_SOCKBUF (4 << 20)

struct wn_udp_front;

struct wn_udp_front_opts {
	const char *name;          /* for logs; copied; NULL: "udp" */
	struct wn_endpoint listen; /* IP literal or name (the first address
	                              it resolves to, at open); port 0: any */
	struct wn_endpoint target; /* every flow's target (copied) */
	uint32_t idle_ms;          /* 0: WN_UDP_FRONT_IDLE_DEFAULT_MS */
	unsigned max_flows;        /* 0: WN_UDP_FRONT_MAX_FLOWS_DEFAULT */
	/* Evictions a second at most (0: WN_UDP_FRONT_EVICT_RATE, or
	 * max_flows when more); not a configuration key: the unit tests set it. */
	unsigned evict_rate;
	unsigned fec_data;     /* FEC data shards per group; 0: off */
	unsigned fec_parity;   /* FEC parity shards per group */
	uint32_t fec_delay_ms; /* FEC grouping time; 0: 5 ms */
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
	uint64_t drop_full;   /* from a new source, every slot in use */
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
