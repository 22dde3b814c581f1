/* The tunnel API: what front ends (forward, socks5, udp, tun) use, and all
 * they use. A front end never knows which engine or carrier carries it.
 *
 * A tunnel is the client's secure session to its server (kept up across
 * reconnects by the engine), or, on the server, one client's session. It
 * carries streams (reliable, ordered byte streams, each to one target) and
 * flows of datagrams (unreliable, each flow to one target).
 *
 * Streams
 * -------
 * Opening costs no round trip: the client opens a stream, the target travels
 * in the stream's first bytes (src/core/streamhdr.h) and data may follow at
 * once. If the server refuses or cannot reach the target it resets the stream
 * with a reason (enum wn_stream_err), which the client front end reports.
 * A stream opened while the tunnel is not yet (or no longer) connected waits,
 * with its data buffered up to the stream's limit, until it is.
 *
 * Backpressure, both ways, so that no buffer grows without bound:
 *  - sending: wn_stream_write() takes what fits under the stream's send limit
 *    and returns the count; when it returned less than offered, the front end
 *    stops reading its socket until on_writable() is called. For reads
 *    without a copy, wn_stream_reserve()/wn_stream_commit() hand out space in
 *    the stream's send buffer to read the socket straight into.
 *  - receiving: on_data() hands data that the front end must take (copy or
 *    queue); the front end then calls wn_stream_consumed() as those bytes
 *    leave its own buffer (written to its socket). The engine grants the peer
 *    more flow-control credit only for consumed bytes, so a slow reader
 *    stops the sender instead of filling memory.
 *
 * Datagrams (flows)
 * -----------------
 * A flow carries unreliable datagrams both ways between a front end and
 * one target: the datagram counterpart of a stream. The client opens a
 * flow with a target; the target travels with the flow's datagrams until
 * the server has acknowledged the flow, so opening costs no round trip.
 * Datagrams may be lost, duplicated or reordered, never truncated or
 * corrupted: a datagram arrives whole or not at all. One that is larger
 * than wn_tunnel_max_datagram() now is refused (WN_EMSGSIZE, counted),
 * one sent while the tunnel is down or its queue full is dropped
 * (counted). Sending never blocks and never waits for streams, nor
 * streams for datagrams. Datagrams larger than one packet of the engine
 * travel as two fragments and are reassembled (with a small bounded
 * buffer and a timeout) before on_datagram.
 *
 * A flow ends when the front end closes it (wn_flow_close: the peer gets
 * on_flow_closed(WN_STREAM_OK)), when the server refuses its target
 * (on_flow_closed(WN_STREAM_DENIED), ...), when the engine evicts it (too
 * many flows: the least recently used goes), or when the tunnel is gone
 * for good. Idle flows are the front ends' to reap: the base keeps no
 * timers. Re-entrancy and lifetime follow the stream rules: no handler
 * is called from inside a wn_flow_* or wn_tunnel_* call, on_flow_closed is
 * the last call and comes once (never after wn_flow_close), and the flow
 * pointer is invalid after either.
 *
 * Half-close: wn_stream_shutdown() ends our direction after the queued data
 * (a FIN); on_eof() reports the peer's FIN after its last data. The stream
 * ends with on_closed(WN_STREAM_OK) once both directions have ended, or at
 * once on a reset from either side, with on_closed(reason).
 *
 * Re-entrancy: no handler function is ever called from inside a wn_stream_*
 * or wn_tunnel_* call; handlers may call any of them (a relay calls
 * wn_stream_consumed inside on_data, reset and release on errors). A
 * reserve that returned 0, like a short write, is followed by on_writable;
 * a reserve need not be followed by a commit.
 *
 * Receive window: delivered but unconsumed bytes never exceed the stream's
 * receive window (wn_tunnel_recv_window), so a front end that queues at
 * least that much never has to drop data; the connection window bounds the
 * sum over a session's streams.
 *
 * Lifetime: the engine owns streams. The front end's handler is called until
 * the front end calls wn_stream_release() or until on_closed(), the last
 * call, which comes exactly once (never for a released stream) and always
 * from the loop. on_closed(OK) may come before the front end has consumed
 * everything delivered. Release is allowed in any state before on_closed,
 * even right after a reset (on_closed then never comes); afterwards the
 * front end makes no more calls on the stream. What release does depends
 * on which directions are still open (src/engine/stream_base.c implements
 * it once, for every engine):
 *  - our direction not shut down: the stream is reset with
 *    WN_STREAM_ABORTED (what was queued is not what the front end meant to
 *    send, so it is dropped); the peer gets on_closed(WN_STREAM_ABORTED).
 *  - ours shut down, the peer's still open: nobody will read the peer's
 *    data. Our queued data and FIN still go out, and the peer is told to
 *    stop sending (QUIC STOP_SENDING; KCP an RST after our FIN); what it
 *    sends meanwhile is discarded. The peer gets all of our data and
 *    on_eof, then on_closed(WN_STREAM_ABORTED); its writes fail with
 *    WN_ECLOSED once the stop arrives.
 *  - both directions ended: the engine finishes on its own (the queued
 *    data and FIN are still delivered); the peer sees a clean close.
 * In the kcptun profile smux has no RST: a reset reaches the peer as a FIN
 * without a reason, and a release after shutdown ends our side as smux's
 * Close() does (the peer's data is discarded; its stream ends when it
 * shuts down). Never free anything inside these callbacks except through
 * deferred close. */
#ifndef WN_ENGINE_TUNNEL_H
#define WN_ENGINE_TUNNEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/addr.h"

struct wn_tunnel;
struct wn_stream;

/* Why a stream was reset. Travels on the wire as the application error code
 * (QUIC RESET_STREAM / STOP_SENDING), and as a flow's CLOSE reason; values
 * are stable. */
enum wn_stream_err {
	WN_STREAM_OK = 0,           /* not an error */
	WN_STREAM_INTERNAL = 1,     /* a bug or resource failure */
	WN_STREAM_DENIED = 2,       /* target not allowed by the server */
	WN_STREAM_UNREACHABLE = 3,  /* no route, name did not resolve */
	WN_STREAM_REFUSED = 4,      /* the target refused the connection */
	WN_STREAM_TARGET_RESET = 5, /* the target reset the connection */
	WN_STREAM_TIMEOUT = 6,      /* connecting to the target timed out */
	WN_STREAM_BAD_HEADER = 7,   /* malformed stream header */
	WN_STREAM_ABORTED = 8,      /* the other side's application aborted */
	WN_STREAM_SESSION_LOST = 9, /* the tunnel itself was lost */
	WN_STREAM_EVICTED = 10,     /* too many flows: the least recently
	                             * used was ended (flows only) */
	WN_STREAM_LIMIT = 11,       /* the client's key holds as many streams
	                             * as the server allows one key */
};

/* A short description of a stream error ("target not allowed"). */
const char *wn_stream_err_str(int err);

struct wn_stream_handler {
	void *ctx;
	/* Data from the peer: take all `len` bytes (they are valid only during
	 * the call), then report them with wn_stream_consumed() as they leave
	 * your buffer. */
	void (*on_data)(void *ctx, struct wn_stream *s, const uint8_t *data,
	                size_t len);
	/* The peer finished sending (after its last on_data). */
	void (*on_eof)(void *ctx, struct wn_stream *s);
	/* Space opened in the send buffer after a short wn_stream_write. */
	void (*on_writable)(void *ctx, struct wn_stream *s);
	/* The stream ended: err is WN_STREAM_OK after a clean close of both
	 * directions, else why it was reset. Last call; the stream pointer is
	 * invalid after it returns. */
	void (*on_closed)(void *ctx, struct wn_stream *s, int err);
};

/* Opens a stream to `target` on the tunnel (client side). Returns the stream
 * (owned by the engine) or NULL when the tunnel cannot take more streams now
 * (the caller should refuse its connection). */
struct wn_stream *wn_tunnel_open_stream(struct wn_tunnel *t,
                                        const struct wn_endpoint *target,
                                        const struct wn_stream_handler *h);

/* Flag of wn_tunnel_open_stream_flags: ask the server to confirm the
 * target connection. The first byte on_data delivers is then the server's
 * status byte (0: connected), written once the target is connected and
 * before any of the target's data; a failure still resets the stream with
 * its reason. For front ends that must answer their application only once
 * the target is known to be reachable (SOCKS5 standard mode); it costs the
 * application one round trip. The same bit as the stream header's flag
 * (src/core/streamhdr.h). */
#define WN_OPEN_CONFIRM 0x80u

/* As wn_tunnel_open_stream, with WN_OPEN_* flags. */
struct wn_stream *
wn_tunnel_open_stream_flags(struct wn_tunnel *t,
                            const struct wn_endpoint *target, unsigned flags,
                            const struct wn_stream_handler *h);

/* Copies up to len bytes into the stream's send buffer. Returns the number
 * taken (may be 0 when full: wait for on_writable), or WN_ECLOSED after
 * shutdown, a reset or the peer's stop. */
ssize_t wn_stream_write(struct wn_stream *s, const uint8_t *data, size_t len);

/* Zero-copy variant: *ptr receives contiguous free space in the send
 * buffer; returns its size (0 when full), or WN_ECLOSED. Fill some of it and
 * call wn_stream_commit with the number of bytes written. */
ssize_t wn_stream_reserve(struct wn_stream *s, uint8_t **ptr);
int wn_stream_commit(struct wn_stream *s, size_t n);

/* Reports that n bytes delivered by on_data have been consumed. */
void wn_stream_consumed(struct wn_stream *s, size_t n);

/* Ends our sending direction after the data already written (FIN).
 * Returns 0 (also when already shut down), or WN_ECLOSED once the
 * direction was aborted (a reset, the peer's stop) or the stream ended. */
int wn_stream_shutdown(struct wn_stream *s);

/* Aborts both directions with a reason (queued data is dropped); the peer
 * gets on_closed(err). Our on_closed(err) follows (later in the loop
 * iteration, never from inside this call) unless we release first. */
void wn_stream_reset(struct wn_stream *s, int err);

/* The front end is done: no more handler calls, and no more calls from
 * it. See "Lifetime" above for what happens to directions still open. */
void wn_stream_release(struct wn_stream *s);

/* The most delivered, unconsumed data a stream of the tunnel may hold
 * (its receive window, in bytes); 0 if the engine does not say. A relay's
 * queue must hold this much. */
size_t wn_tunnel_recv_window(const struct wn_tunnel *t);

/* ---- datagrams ----------------------------------------------------- */

struct wn_flow;

struct wn_flow_handler {
	void *ctx;
	/* One whole datagram from the peer (valid only during the call). */
	void (*on_datagram)(void *ctx, struct wn_flow *f, const uint8_t *data,
	                    size_t len);
	/* The flow ended (err as for streams: WN_STREAM_OK when the peer
	 * closed it, WN_STREAM_DENIED when the server refused its target,
	 * WN_STREAM_EVICTED when either end's flow table was full and this
	 * flow its least recently used, WN_STREAM_SESSION_LOST, ...). Last
	 * call. */
	void (*on_flow_closed)(void *ctx, struct wn_flow *f, int err);
};

/* Whether the tunnel carries datagrams at all (the kcptun profile does
 * not): a datagram front end checks this at startup. */
int wn_tunnel_has_datagrams(const struct wn_tunnel *t);

/* The largest datagram wn_flow_send takes right now, in bytes (it changes
 * with the carrier and the path); 0 while the tunnel is down or carries no
 * datagrams. The same for every flow, acknowledged or not (a target still
 * travelling costs no size: docs/wire-format.md, "Datagram flows"). */
size_t wn_tunnel_max_datagram(const struct wn_tunnel *t);

/* Opens a flow to target (client side; target is a WN_SCHEME_UDP
 * endpoint, or NULL for the server's default UDP target). Returns the flow,
 * owned by the engine until on_flow_closed or wn_flow_close, or NULL when
 * the tunnel carries no datagrams or has no room for another flow. */
struct wn_flow *wn_tunnel_open_flow(struct wn_tunnel *t,
                                    const struct wn_endpoint *target,
                                    const struct wn_flow_handler *h);

/* Sends one datagram (copied). Returns 0 when it was handed to the engine
 * (which may still drop it under congestion, and counts that),
 * WN_EMSGSIZE when it is larger than wn_tunnel_max_datagram(), WN_EAGAIN
 * when it was dropped now (tunnel down, queue full), WN_ECLOSED after the
 * flow ended. Every drop is counted in the flow's statistics. */
int wn_flow_send(struct wn_flow *f, const uint8_t *data, size_t len);

/* Client side, right after wn_tunnel_open_flow and before the flow's
 * first datagram: protects the flow's datagrams with forward error
 * correction. Each `data` messages form a group followed by `parity`
 * Reed-Solomon parity messages, which rebuild up to `parity` lost
 * messages of the group without retransmission; a group with fewer
 * messages after delay_ms closes early with its share of parity
 * (rounded up). Datagrams are never held back; only the parity waits.
 * The server protects the flow's replies with the same counts. data
 * 1..32, parity 1..16, delay_ms 1..255 (docs/wire-format.md, "Datagram
 * flows"). A flow with FEC carries datagrams a little smaller than
 * wn_tunnel_max_datagram (its messages give 10 bytes to FEC); a larger
 * one gets WN_EMSGSIZE. Returns 0, WN_EINVAL (counts out of range, not a
 * client's flow, FEC already set, datagrams already sent) or WN_ENOMEM
 * (memory, or the session's FEC budget: the flow stays plain). */
int wn_flow_set_fec(struct wn_flow *f, unsigned data, unsigned parity,
                    unsigned delay_ms);

/* The front end is done with the flow: the peer is told (best effort),
 * no handler is called again, and the front end makes no more calls on
 * it. */
void wn_flow_close(struct wn_flow *f);

/* Sets the handler of a flow handed over by on_flow (server side). */
void wn_flow_set_handler(struct wn_flow *f, const struct wn_flow_handler *h);

/* The engine's id of a flow, for logs ("flow 3"). */
uint64_t wn_flow_id(const struct wn_flow *f);

/* What a flow has carried and dropped, for logs and metrics. */
struct wn_flow_stats {
	uint64_t dgrams_out, bytes_out; /* sent by us (handed to the engine) */
	uint64_t dgrams_in, bytes_in;   /* delivered to on_datagram */
	uint64_t drop_size;   /* too large to send, or reassembled too large */
	uint64_t drop_queue;  /* tunnel down, or the engine's queue full */
	uint64_t drop_policy; /* refused by the server's policy */
	uint64_t frag_lost;   /* fragments whose other half never came */
	/* FEC (wn_flow_set_fec): messages (a datagram or one of its two
	 * fragments) from the peer rebuilt from parity, and those lost that
	 * could not be. */
	uint64_t fec_recovered, fec_unrecoverable;
};
void wn_flow_stats(const struct wn_flow *f, struct wn_flow_stats *out);

/* Server side: how an engine hands a new incoming stream to the front end
 * that serves it (the dialer). The handler must either set a stream
 * handler (wn_stream_set_handler) and carry on, or wn_stream_reset the
 * stream, before returning; until a handler is set the engine holds the
 * stream's data and EOF. target is NULL for a stream that asked for the
 * server's default target. */
struct wn_accept_handler {
	void *ctx;
	void (*on_stream)(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
	                  const struct wn_endpoint *target);
	/* A new incoming flow, with its first datagram still held (it is
	 * delivered to the handler set here, right after on_flow returns).
	 * As for streams: set a handler (wn_flow_set_handler) or refuse
	 * (wn_flow_refuse) before returning. target is NULL for the
	 * server's default UDP target. NULL: this server takes no flows
	 * (they are refused with WN_STREAM_DENIED). */
	void (*on_flow)(void *ctx, struct wn_tunnel *t, struct wn_flow *f,
	                const struct wn_endpoint *target);
};

/* Server side, inside on_flow: refuses the flow with a reason (told to
 * the client, which gets on_flow_closed(err)); the flow is gone on
 * return. */
void wn_flow_refuse(struct wn_flow *f, int err);

/* Sets the handler of a stream handed over by on_stream, or takes over a
 * stream (a relay taking one its owner opened): h is copied and called from
 * now on instead of the previous handler. */
void wn_stream_set_handler(struct wn_stream *s,
                           const struct wn_stream_handler *h);

/* Server side: the WN_OPEN_* flags the client opened the stream with (its
 * header's flags), known when on_stream is called. With WN_OPEN_CONFIRM
 * the front end writes the status byte WN_STREAMHDR_STATUS_OK first, once
 * the target is connected. */
unsigned wn_stream_open_flags(const struct wn_stream *s);

/* The engine's id of a stream, for logs ("stream 7"). */
uint64_t wn_stream_id(const struct wn_stream *s);

/* The short hex of a tunnel's peer key, for logs (NUL-terminated, at most
 * WN_TUNNEL_PEER_ID_MAX bytes with the NUL). */
#define WN_TUNNEL_PEER_ID_MAX 16
const char *wn_tunnel_peer_id(const struct wn_tunnel *t);

#endif
