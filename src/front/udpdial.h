/* The UDP dialer (server side): what the dialer (front/dialer.h) hands
 * each new incoming datagram flow to (struct wn_accept_handler on_flow).
 *
 * Policy: the same as for streams (dialer.h), with the udp:// allow rules
 * only (core/policy.h: a stream rule never allows a flow). Default deny; a
 * flow without a target of its own (the "default UDP target") is refused,
 * since the server has none. A refused flow gets WN_STREAM_DENIED (logged
 * at info, rate-limited, with the client's id, the flow and the target)
 * and nothing is sent toward its target. A name is resolved
 * asynchronously; the flow's first datagrams (at most WN_UDPDIAL_PENDING)
 * wait for the answer, and a name that yields no allowed address is
 * refused with WN_STREAM_DENIED whatever the reason, as for streams (no
 * DNS oracle). The guard (this host, link-local) applies as for streams.
 *
 * Relay: one connected UDP socket per flow toward the first allowed
 * address (a connected socket takes replies from the target only and
 * costs no lookup per datagram), or conns of them (Tonel's
 * --udp-connections: a target that spreads load by source port, such as a
 * server with SO_REUSEPORT workers, sees several): the flow's datagrams
 * go out round-robin over them and replies on any go back on the flow. Datagrams from the client go out as they
 * come; the target's go back on the flow (wn_flow_send), whole or not at
 * all. A flow silent both ways for idle_ms is closed (one timer for all
 * flows, walking them from the least recently active).
 *
 * Memory: one receive scratch for all flows (io/dgram.h); per flow, a
 * socket and, while its name resolves, the waiting datagrams. The number of
 * flows is bounded by the engine's flow cap per session. */
#ifndef WN_FRONT_UDPDIAL_H
#define WN_FRONT_UDPDIAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "engine/tunnel.h"
#include "io/loop.h"
#include "util/log.h"

#define WN_UDPDIAL_IDLE_DEFAULT_MS 60000
#define WN_UDPDIAL_PENDING 4
#define WN_UDPDIAL_MAX_CONNS 16

struct wn_udpdial;

/* The server's own addresses for the guard (wn_policy_guarded), supplied
 * by the owner (the stream dialer keeps them fresh). */
typedef struct wn_policy_self (*wn_udpdial_self_fn)(void *ctx);

struct wn_udpdial_opts {
	/* The udp:// rules (borrowed: they must outlive the dialer). */
	const struct wn_allow_rule *allow;
	size_t n_allow;
	uint32_t idle_ms; /* 0: WN_UDPDIAL_IDLE_DEFAULT_MS */
	unsigned conns;   /* sockets per flow, 1..WN_UDPDIAL_MAX_CONNS; 0: 1 */
	wn_udpdial_self_fn self;
	void *self_ctx;
};

struct wn_udpdial_stats {
	uint64_t flows;                 /* live */
	uint64_t flows_opened;          /* handed to the dialer */
	uint64_t flows_denied;          /* refused: WN_STREAM_DENIED */
	uint64_t flows_reaped;          /* closed after idle_ms */
	uint64_t dgrams_out, bytes_out; /* sent to targets */
	uint64_t dgrams_in, bytes_in;   /* from targets, onto flows */
	uint64_t drop_size;    /* from a target, larger than the tunnel takes */
	uint64_t drop_tunnel;  /* the tunnel did not take it now */
	uint64_t drop_pending; /* beyond WN_UDPDIAL_PENDING while resolving */
	uint64_t drop_target;  /* the target socket did not take it */
};

/* Returns 0 and *out, or WN_ENOMEM. loop and log are borrowed. */
int wn_udpdial_new(struct wn_loop *loop, struct wn_log *log,
                   const struct wn_udpdial_opts *opts, struct wn_udpdial **out);

/* The on_flow of struct wn_accept_handler, with ctx the udpdial. */
void wn_udpdial_on_flow(void *ctx, struct wn_tunnel *t, struct wn_flow *f,
                        const struct wn_endpoint *target);

/* Closes every flow and its socket, abandons lookups, and frees the dialer
 * from the loop. The engine must no longer call on_flow with it. */
void wn_udpdial_close(struct wn_udpdial *ud);

/* The counters, now (stats.flows live). */
const struct wn_udpdial_stats *
wn_udpdial_get_stats(const struct wn_udpdial *ud);

#endif
