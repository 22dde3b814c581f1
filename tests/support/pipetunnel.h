/* pipetunnel: an in-process, in-memory engine for tests (engine.h).
 *
 * It joins a "client" tunnel, on which front ends open streams, to a
 * "server" side that hands each new stream to a struct wn_accept_handler
 * (the dialer, or a test's scripted peer), on one wn_loop. Its streams are
 * built on the engines' own stream base (src/engine/stream_base.h), so
 * front ends are held to exactly the rules the engines implement; what is
 * the double's own is the wire, in memory:
 *
 *  - The client end's first bytes are the real stream header, taken off by
 *    the base on the server end (NULL target for the default).
 *  - Every handler call is made from a deferred function (wn_loop_defer),
 *    never from inside the API call that caused it; a pump moves data in
 *    steps across loop iterations, as a real engine would.
 *  - Backpressure: each end's send buffer holds at most send_limit bytes
 *    (short writes, reserve returning 0, then on_writable); each end may
 *    hold at most recv_window bytes delivered but not yet consumed, and
 *    credit comes back only through wn_stream_consumed.
 *  - A reset reaches the peer on the next pump; undelivered data is
 *    dropped. A stop (a release after shutdown, tunnel.h) reaches the peer
 *    at once, as QUIC's STOP_SENDING does, while the stopping end's data
 *    and FIN still arrive.
 *  - Misuse aborts the test process with a message on stderr: any call on
 *    a stream after release or after its on_closed, commit beyond the last
 *    reserve, consumed beyond what was delivered, an accept handler that
 *    returns without setting a handler or resetting the stream.
 *
 * Datagrams: unless no_flows, each tunnel has flows (the engines' own flow
 * base, src/engine/flow_base.h), the server's handed to the accept
 * handler's on_flow (none: refused, WN_STREAM_DENIED). Messages cross an
 * in-memory link of dgram_queue messages each way of at most dgram_max_msg
 * bytes, delivered from a deferred pump; a full queue drops (the base
 * counts WN_EAGAIN), dgram_drop_every loses every Nth message, and nothing
 * moves while the tunnel is down (max_datagram is then 0). A lost session
 * (wn_pipetunnel_lose) ends the server's flows and gives it a new flow
 * state, while the client's flows stay (their targets travel again), as
 * an engine keeps the client tunnel's flows across reconnects.
 *
 * Streams opened while the tunnel is down wait (with their data) until it
 * is up. Ownership: the pipetunnel owns its streams; it is freed by
 * wn_pipetunnel_close (after its last stream is gone). */
#ifndef WN_TESTS_PIPETUNNEL_H
#define WN_TESTS_PIPETUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "io/loop.h"

struct wn_pipetunnel;

struct wn_pipetunnel_opts {
	size_t send_limit;    /* per end send buffer; 0: 64 KiB */
	size_t recv_window;   /* per end flow-control window; 0: 64 KiB */
	size_t chunk;         /* most bytes per on_data call; 0: 16 KiB */
	size_t max_streams;   /* live streams beyond which open fails; 0: any */
	bool down;            /* start disconnected */
	bool no_flows;        /* carry no datagrams (as the kcptun profile) */
	size_t dgram_max_msg; /* largest flow message; 0: 1150 */
	size_t dgram_queue;   /* messages in flight each way; 0: 64 */
	unsigned dgram_drop_every; /* lose every Nth message; 0: none */
	unsigned max_flows;        /* per side; 0: the base's default */
};

struct wn_pipetunnel_stats {
	size_t live;             /* stream pairs alive */
	uint64_t opened;         /* streams opened */
	uint64_t accepted;       /* streams handed to the accept handler */
	uint64_t refused;        /* open_stream returned NULL */
	size_t max_sendq;        /* largest send buffer seen, any end */
	size_t max_unconsumed;   /* most delivered-unconsumed, any end */
	uint64_t closed_ok;      /* ends told on_closed(OK) */
	uint64_t closed_err[16]; /* ends told on_closed(err), by err */
	uint64_t resets[16];     /* wn_stream_reset calls, by err */
	uint64_t released_open;  /* releases that had to reset the stream */
	uint64_t flows_accepted; /* flows handed to the accept handler */
	uint64_t dgram_msgs[2];  /* flow messages carried: [0] to the server */
	uint64_t dgram_lost;     /* lost by dgram_drop_every */
	uint64_t dgram_full;     /* refused: the link's queue was full */
};

/* Creates a pipetunnel; server (copied; may be NULL and set later with
 * wn_pipetunnel_set_server) receives the streams. Returns 0 or WN_ENOMEM. */
int wn_pipetunnel_new(struct wn_loop *loop,
                      const struct wn_pipetunnel_opts *opts,
                      const struct wn_accept_handler *server,
                      struct wn_pipetunnel **out);

/* Sets the server's accept handler (copied). */
void wn_pipetunnel_set_server(struct wn_pipetunnel *pt,
                              const struct wn_accept_handler *server);

/* The client tunnel, for front ends (owned by pt). */
struct wn_tunnel *wn_pipetunnel_client(struct wn_pipetunnel *pt);

/* Connects or disconnects the tunnel; nothing moves while it is down. */
void wn_pipetunnel_set_up(struct wn_pipetunnel *pt, bool up);

/* Loses the session: every stream is reset with WN_STREAM_SESSION_LOST. */
void wn_pipetunnel_lose(struct wn_pipetunnel *pt);

/* The server tunnel (the one the accept handler sees). */
struct wn_tunnel *wn_pipetunnel_server(struct wn_pipetunnel *pt);

/* Changes the largest flow message (what max_datagram derives from); at
 * most opts.dgram_max_msg, the link's slot size (more aborts the test). */
void wn_pipetunnel_set_max_msg(struct wn_pipetunnel *pt, size_t max_msg);

/* Counters, live. */
const struct wn_pipetunnel_stats *
wn_pipetunnel_stats(const struct wn_pipetunnel *pt);

/* Resets what is left (WN_STREAM_SESSION_LOST) and frees pt once its last
 * stream is gone. pt must not be used afterwards. */
void wn_pipetunnel_close(struct wn_pipetunnel *pt);

#endif
