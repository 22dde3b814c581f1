/* The tunnel API: what front ends (forward, socks5, udp, tun) use, and all
 * they use. A front end never knows which engine or carrier carries it.
 *
 * A tunnel is the client's secure session to its server (kept up across
 * reconnects by the engine), or, on the server, one client's session. It
 * carries streams (reliable, ordered byte streams, each to one target) and,
 * later, datagrams.
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
 * Half-close: wn_stream_shutdown() ends our direction after the queued data
 * (a FIN); on_eof() reports the peer's FIN after its last data. The stream
 * lives until both directions are done, or a reset.
 *
 * Re-entrancy: no handler function is ever called from inside a wn_stream_*
 * or wn_tunnel_* call; handlers may call any of them (a relay calls
 * wn_stream_consumed inside on_data, reset and release on errors). A
 * reserve that returned 0, like a short write, is followed by on_writable;
 * a reserve need not be followed by a commit.
 *
 * Receive window: delivered but unconsumed bytes never exceed the stream's
 * receive window (for QUIC: wn_quic_opts.stream_window_max), so a front end
 * that queues at least that much never has to drop data; the connection
 * window bounds the sum over a session's streams.
 *
 * Lifetime: the engine owns streams. The front end's handler is called until
 * the front end calls wn_stream_release() (after which the engine finishes
 * the stream on its own: flushing a FIN, or resetting it if the front end
 * released it with directions still open) or until on_closed(), which is the
 * last call. Release is allowed in any state before on_closed, even right
 * after a reset (on_closed then never comes). on_closed(OK) may come before
 * the front end has consumed everything delivered. Never free anything inside these callbacks except through
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
 * (QUIC RESET_STREAM / STOP_SENDING); values are stable. */
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
 * shutdown or reset. */
ssize_t wn_stream_write(struct wn_stream *s, const uint8_t *data, size_t len);

/* Zero-copy variant: *ptr receives contiguous free space in the send
 * buffer; returns its size (0 when full), or WN_ECLOSED. Fill some of it and
 * call wn_stream_commit with the number of bytes written. */
ssize_t wn_stream_reserve(struct wn_stream *s, uint8_t **ptr);
int wn_stream_commit(struct wn_stream *s, size_t n);

/* Reports that n bytes delivered by on_data have been consumed. */
void wn_stream_consumed(struct wn_stream *s, size_t n);

/* Ends our sending direction after the data already written (FIN). */
int wn_stream_shutdown(struct wn_stream *s);

/* Aborts both directions with a reason. on_closed follows (later in the
 * loop iteration, never from inside this call). */
void wn_stream_reset(struct wn_stream *s, int err);

/* The front end is done: no more handler calls. */
void wn_stream_release(struct wn_stream *s);

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
};

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
