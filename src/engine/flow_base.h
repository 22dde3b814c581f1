/* The flow base: tunnel datagram semantics (tunnel.h, "Datagrams"),
 * implemented once for every engine, as the stream base does for streams.
 *
 * An engine that carries datagrams embeds one struct wn_flows per session
 * (the client: one for its tunnel, kept across reconnects; the server: one
 * per client session), points its struct wn_tunnel's `flows` at it, and
 * supplies a transport table that moves opaque messages: one message is
 * one unreliable unit of the engine's wire (a QUIC DATAGRAM frame, a KCP
 * engine unreliable packet) of at most max_msg() bytes. The base owns
 * everything above that:
 *
 *  - the flow message format (src/core/dgram.h, docs/wire-format.md): a
 *    flow id, the target until the server has acknowledged the flow,
 *    acknowledgements, refusals and closes, and fragments;
 *  - splitting a datagram larger than one message into two fragments and
 *    reassembling them (src/core/dgfrag.h: a small bounded buffer per
 *    session, fragments time out);
 *  - FEC for flows that ask for it (wn_flow_set_fec; the server mirrors
 *    its client's counts): each message wrapped as a data shard of a
 *    group, the group's Reed-Solomon parity sent when it is full or its
 *    grouping time has passed (src/core/dgfec.h), and lost messages
 *    rebuilt as soon as a group allows, in memory bounded per session;
 *  - the flow table: ids, the cap on flows per session (at the cap the
 *    least recently used flow not established is evicted, else an
 *    established one silent for a while; while every flow is established
 *    and in use, a new one is refused with WN_STREAM_EVICTED), the
 *    server's accept handler (on_flow) and its
 *    "handler or refuse" rule, the deferred on_flow_closed;
 *  - per-flow and per-session counters.
 *
 * Re-entrancy as for the stream base: the base never calls a handler from
 * inside a wn_flow_* or wn_tunnel_* call (it defers), and calls the
 * transport only from inside those calls and the wn_fb_* calls. The
 * engine calls wn_fb_recv from its receive path; that calls handlers.
 *
 * Time: the base takes the engine's clock through the transport (now_ms),
 * so a test's virtual clock drives fragment timeouts and FEC grouping.
 * Expired fragments are dropped when the buffer is next used. The one
 * timer, armed only while an FEC group is open, sends parity when the
 * grouping time has passed (wn_fb_poll); the transport's send is then
 * called from that timer's callback too.
 *
 * After wn_fb_finish the base calls the transport no more, so an engine
 * may free its session (then wn_fb_free) while front ends still hold
 * flows whose on_flow_closed is pending. */
#ifndef WN_ENGINE_FLOW_BASE_H
#define WN_ENGINE_FLOW_BASE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/tunnel.h"
#include "io/loop.h"
#include "util/list.h"
#include "util/log.h"

struct wn_flows;

/* What an engine does on its wire for the base. Called only from inside
 * the base; none of them may call a handler. */
struct wn_fb_transport {
	/* Sends one message (copied, or written out before returning).
	 * Returns 0, WN_EAGAIN when it was dropped now (no session, the
	 * engine's bounded datagram queue is full), or WN_EMSGSIZE when len
	 * exceeds max_msg(). The engine may still drop a message it took
	 * (congestion, queue overflow: it drops the oldest) and counts that
	 * in its own statistics. */
	int (*send)(struct wn_flows *fl, const uint8_t *msg, size_t len);
	/* The largest message that travels in one packet now, in bytes; 0
	 * while there is no session (or the peer takes no datagrams). */
	size_t (*max_msg)(const struct wn_flows *fl);
	/* The engine's time in milliseconds (its one clock). */
	uint64_t (*now_ms)(const struct wn_flows *fl);
};

/* Totals over a session's flows (and what matched no flow). */
struct wn_flows_stats {
	uint64_t flows_opened, flows_closed, flows_evicted;
	uint64_t flows_refused; /* new ones, when every slot was in use */
	uint64_t dgrams_out, bytes_out, dgrams_in, bytes_in;
	uint64_t drop_size, drop_queue, drop_policy, frag_lost;
	uint64_t fec_recovered, fec_unrecoverable;
	uint64_t fec_nomem;    /* flows whose FEC the memory budget refused */
	uint64_t bad_msgs;     /* malformed messages from the peer */
	uint64_t unknown_flow; /* messages for a flow this side does not know */
};

/* Creates the flow state of one session (server: ah is the engine's
 * accept handler, whose on_flow takes new flows; client: ah NULL).
 * max_flows: the cap on live flows (0: the base's default). ctx is the
 * engine's, for its transport (wn_fb_ctx). Returns NULL on allocation
 * failure. The internals are the base's own (flow_base.c). */
struct wn_flows *wn_fb_new(const struct wn_fb_transport *tp, void *ctx,
                           struct wn_loop *loop, struct wn_log *log,
                           struct wn_tunnel *t,
                           const struct wn_accept_handler *ah,
                           unsigned max_flows);

/* The engine's ctx given to wn_fb_new. */
void *wn_fb_ctx(const struct wn_flows *fl);

/* ---- events from the engine's wire (these call handlers) -------------- */

/* A message from the peer (valid during the call). Malformed messages
 * and those for unknown flows are dropped and counted; nothing the peer
 * sends grows memory beyond the base's bounds. */
void wn_fb_recv(struct wn_flows *fl, const uint8_t *msg, size_t len);

/* Client: the engine has a new session (after a reconnect): the server
 * knows none of our flows, so their targets travel again. */
void wn_fb_session_changed(struct wn_flows *fl);

/* Ends every flow with err (the tunnel is gone for good, or the server's
 * session ended): on_flow_closed follows from the loop for each flow not
 * closed by its front end. Further sends fail with WN_ECLOSED. */
void wn_fb_finish(struct wn_flows *fl, int err);

/* Frees the flow state, after wn_fb_finish, once the engine's session is
 * freed (the base defers the frees it still owes). */
void wn_fb_free(struct wn_flows *fl);

void wn_fb_stats(const struct wn_flows *fl, struct wn_flows_stats *out);

/* Sends the parity of every FEC group whose grouping time has passed (by
 * the transport's clock) and arms the base's timer for the next. The
 * timer calls it; a test on a virtual clock calls it after moving the
 * clock. */
void wn_fb_poll(struct wn_flows *fl);

/* ---- for tunnel.c (the wn_tunnel_* flow calls) -------------------------- */

/* wn_tunnel_open_flow on a tunnel with flows (client side; NULL on a
 * server's, after wn_fb_finish, or for a target a flow cannot carry). */
struct wn_flow *wn_fb_open_flow(struct wn_flows *fl,
                                const struct wn_endpoint *target,
                                const struct wn_flow_handler *h);

/* wn_tunnel_max_datagram on a tunnel with flows: what wn_flow_send takes
 * now on a flow the server has acknowledged. A flow not yet acknowledged
 * takes the same: its target rides in the first fragment, or travels
 * alone just before the datagram when there is no room for it
 * (docs/wire-format.md, "Datagram flows"). */
size_t wn_fb_max_datagram(const struct wn_flows *fl);

#endif
