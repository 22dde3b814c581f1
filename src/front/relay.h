/* The relay: the one path between a connected libuv stream socket (TCP or
 * unix) and a tunnel stream. Every front end that carries a byte stream uses
 * it: the forward front end (accepted connection <-> new stream), the
 * server's dialer (handed-over stream <-> connection to the target) and
 * SOCKS5. Front ends only decide which socket meets which stream.
 *
 * Data paths:
 *  - socket -> stream ("up"): the socket is read straight into the stream's
 *    send buffer (wn_stream_reserve/commit, no copy). When the stream is full
 *    the relay stops reading until on_writable. Socket EOF becomes
 *    wn_stream_shutdown (a FIN).
 *  - stream -> socket ("down"): on_data is written to the socket at once
 *    when nothing is queued (uv_try_write), the rest is queued in a bufq and
 *    written by uv_write. wn_stream_consumed is called only for bytes the
 *    socket has taken, so a slow socket stops the peer through flow control;
 *    the queue therefore never holds more than the stream's receive window.
 *    The stream's EOF becomes a socket shutdown after the queue drains.
 *
 * The relay ends when both directions have ended cleanly (stream released,
 * socket closed) or on the first error: a socket error resets the stream
 * (reason from wn_relay_stream_err), a stream reset closes the socket with a
 * TCP RST (SO_LINGER 0) so the application sees the failure.
 *
 * Lifetime: a relay is owned by itself once created. It is listed in its
 * owner's struct wn_relay_set from wn_relay_new until it finishes; when it
 * finishes it unlinks itself, logs, calls the owner's on_finish (if any)
 * and never touches the owner's set or context again. Its memory is freed
 * later, from the close callback of its last libuv handle (loop.h's rule),
 * so it is never freed inside one of its own callbacks. Owners keep pointers
 * to their relays only until on_finish (or until the set says they are
 * gone).
 *
 * Layering: the relay sits above the tunnel API (it is the front ends' data
 * path, so it lives in src/front/) and on top of src/io/sock.h, which owns
 * the socket: accepting, connecting across addresses, closing with a
 * reset, and the handshake reads and writes behind wn_relay_hs_*. */
#ifndef WN_FRONT_RELAY_H
#define WN_FRONT_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "engine/tunnel.h"
#include "io/loop.h"
#include "io/sock.h"
#include "util/log.h"

struct wn_relay;

/* Which end of the tunnel the relay's socket is on; decides how socket
 * errors are reported to the peer (wn_relay_stream_err). */
enum wn_relay_side {
	WN_RELAY_CLIENT, /* the socket is the local application's */
	WN_RELAY_SERVER, /* the socket is the connection to the target */
};

enum wn_relay_sock {
	WN_RELAY_TCP,  /* uv_tcp_t */
	WN_RELAY_PIPE, /* uv_pipe_t (unix socket) */
};

/* At most this many addresses are tried by wn_relay_connect. */
#define WN_RELAY_MAX_ADDRS WN_SOCK_MAX_ADDRS

/* Default cap of the stream -> socket queue. It must be at least the
 * engine's per-stream receive window: the engine never delivers more than
 * that unconsumed, and the relay consumes only what the socket took, so the
 * cap is never reached by a correct engine. Reaching it resets the stream
 * (WN_STREAM_INTERNAL) rather than growing. */
#define WN_RELAY_OUT_LIMIT_DEFAULT (4u * 1024 * 1024)

/* Counters of a set of relays, for logs, metrics and tests. */
struct wn_relay_totals {
	uint64_t opened;        /* relays that got a stream */
	uint64_t closed;        /* relays finished */
	uint64_t up_bytes;      /* socket -> stream, committed */
	uint64_t down_bytes;    /* stream -> socket, written */
	size_t out_max;         /* high-water of any relay's queue */
	uint64_t errs[16];      /* finished relays by enum wn_stream_err */
	uint64_t open_failures; /* wn_relay_open found no stream */
	uint64_t socket_errors; /* socket read/write/connect errors */
};

/* The relays of one owner (a forward, a dialer). Embed it; it owns nothing:
 * relays link themselves in and out. Fields are read-only outside relay.c. */
struct wn_relay_set {
	struct wn_relay *head;
	long live; /* relays in the set */
	struct wn_relay_totals totals;
};

/* Called once when a relay finishes, with the reason (WN_STREAM_OK after a
 * clean end of both directions). r may be passed to wn_relay_get_stats
 * during the call and must not be used after it returns. It may run from
 * any relay callback and from inside any wn_relay_* call that can end the
 * relay (adopt, connect, close, set_close_all). */
typedef void (*wn_relay_finish_fn)(void *ctx, struct wn_relay *r, int err);

struct wn_relay_opts {
	struct wn_loop *loop;     /* borrowed; outlives the relay */
	struct wn_log *log;       /* borrowed; may be NULL */
	struct wn_relay_set *set; /* the owner's set; required */
	enum wn_relay_side side;
	enum wn_relay_sock sock;
	const char *label; /* log id prefix ("web", a peer id); copied */
	const char *desc;  /* what it connects, for the '+' line; copied */
	size_t out_limit;  /* 0: WN_RELAY_OUT_LIMIT_DEFAULT */
	/* Server side: the relay must be connected within this time after
	 * wn_relay_adopt, else it resets the stream with WN_STREAM_TIMEOUT. It
	 * covers name resolution done by the owner meanwhile. 0: no limit. */
	uint32_t connect_timeout_ms;
	/* Server side, for a stream whose header asked for it
	 * (WN_OPEN_CONFIRM in wn_stream.hdr_flags): once connected, write the
	 * status byte WN_STREAMHDR_STATUS_OK into the stream before any of the
	 * target's data. */
	bool confirm;
	wn_relay_finish_fn on_finish; /* may be NULL */
	void *ctx;
};

/* A snapshot of one relay's counters. */
struct wn_relay_stats {
	uint64_t up_bytes, down_bytes;
	size_t out_queued; /* bytes waiting for the socket now */
	size_t out_max;    /* high-water of out_queued */
	const char *state; /* name of the current state, for tests and logs */
};

/* Initialise the set's list and counters. */
void wn_relay_set_init(struct wn_relay_set *set);

/* Finish every relay of the set now: streams are reset with err (released
 * at once) and sockets closed (RST for TCP). The set is empty afterwards.
 * Safe from any callback. */
void wn_relay_set_close_all(struct wn_relay_set *set, int err);

/* Create a relay with an initialised but unconnected socket. Returns 0 and
 * *out, or WN_ENOMEM / WN_EINVAL. The relay is in the set from now on; if
 * the owner gives up before the relay has a stream it calls
 * wn_relay_close. */
int wn_relay_new(const struct wn_relay_opts *o, struct wn_relay **out);

/* Accept a pending connection of listener (same socket kind) into the
 * relay's socket. Returns 0 or a WN_E* code (the caller then closes r). */
int wn_relay_accept(struct wn_relay *r, uv_stream_t *listener);

/* Client side, after wn_relay_accept: open a stream to target on tunnel t
 * (borrowed for the call) and start relaying. Returns 0, or WN_EAGAIN when
 * the tunnel refused a new stream (the caller then closes r, which resets
 * the connection). */
int wn_relay_open(struct wn_relay *r, struct wn_tunnel *t,
                  const struct wn_endpoint *target);

/* Handshakes on the client side (SOCKS5): between wn_relay_accept and
 * wn_relay_open/attach the owner may speak with the application on the
 * relay's socket through the three calls below; nothing is relayed yet. */

/* Handshake read callback: n > 0 bytes were read into the buffer given to
 * wn_relay_hs_read, or n is a negative WN_E* code (WN_ECLOSED: the
 * application closed its side). r may be closed from it. */
typedef void (*wn_relay_hs_fn)(void *ctx, struct wn_relay *r, ssize_t n);

/* Reads at most len bytes (at least 1) from the socket into buf, which the
 * caller owns and keeps valid until cb, then calls cb once. Reading stops
 * after each callback, so a caller that asks for exactly the bytes it
 * needs never takes bytes meant for the stream. Returns 0, or WN_EINVAL if
 * the relay is not an accepted socket without a stream or a read is
 * already pending. */
int wn_relay_hs_read(struct wn_relay *r, uint8_t *buf, size_t len,
                     wn_relay_hs_fn cb, void *ctx);

/* Writes all of data to the socket now (a handshake reply), or fails:
 * WN_EAGAIN if the socket would take only part of it (replies are small
 * and the socket's buffer is nearly empty then, so only a misbehaving
 * application gets there), WN_EINVAL once stream data has reached the
 * socket, another WN_E* code on a socket error. The caller closes r on
 * failure. Also allowed right after wn_relay_open/attach. */
int wn_relay_hs_write(struct wn_relay *r, const uint8_t *data, size_t len);

/* Client side, after wn_relay_accept: take over stream s, which the owner
 * opened itself (with its own handler, to read a confirm status byte
 * first), and start relaying. s's handler becomes the relay's at once.
 * pending (len bytes; may be NULL when len is 0, copied) is data the owner
 * received from s and did not consume: it is written to the socket first
 * and consumed as the socket takes it. Returns 0, or WN_EINVAL if the relay
 * is not an accepted socket without a stream (s is then untouched).
 * target (borrowed; may be NULL) names the stream's target in logs. */
int wn_relay_attach(struct wn_relay *r, struct wn_stream *s,
                    const struct wn_endpoint *target, const uint8_t *pending,
                    size_t len);

/* Replaces the relay's on_finish and its ctx (for an owner that takes over
 * a relay another created: the forward hands accepted connections to the
 * SOCKS5 front end). */
void wn_relay_set_finish(struct wn_relay *r, wn_relay_finish_fn fn, void *ctx);

/* Finishes a relay that has no stream (any more) cleanly: its socket is
 * closed with a FIN after what was written (a handshake's failure reply),
 * not with a reset; on_finish gets WN_STREAM_OK. A relay that has a stream
 * is closed as by wn_relay_close(r, WN_STREAM_ABORTED). */
void wn_relay_end(struct wn_relay *r);

/* Server side: take over stream s, handed to an accept handler. Sets s's
 * handler to the relay's at once (before the handler returns), so data and
 * EOF that arrive before the socket is connected are queued in order, up to
 * the out limit, and written once it is. Starts the connect timeout. */
void wn_relay_adopt(struct wn_relay *r, struct wn_stream *s);

/* Server side, after wn_relay_adopt: connect the socket and start relaying.
 * For WN_RELAY_TCP, addrs[0..n) (copied, at most WN_RELAY_MAX_ADDRS used)
 * are tried in order until one answers; for WN_RELAY_PIPE, path. On failure
 * the stream is reset with the reason of the most telling failure (refused
 * before anything else). Returns 0, or WN_EINVAL if the relay is not
 * waiting for a connection or nothing was given (the relay is unchanged). */
int wn_relay_connect(struct wn_relay *r, const struct sockaddr_storage *addrs,
                     size_t n, const char *path);

/* Finish the relay now with reason err (not WN_STREAM_OK): the stream, if
 * any, is reset with err and released, the socket closed (RST for TCP).
 * Does nothing if the relay has finished already. Safe from any callback,
 * including the relay's own. */
void wn_relay_close(struct wn_relay *r, int err);

/* The local and peer addresses of the relay's TCP socket (either may be
 * NULL): what a SOCKS5 UDP association binds to and admits. Returns 0,
 * or WN_EINVAL for a unix socket or a closed one. */
int wn_relay_sock_addrs(struct wn_relay *r, struct sockaddr_storage *local,
                        struct sockaddr_storage *peer);

/* Counters of a live relay (or of one inside its on_finish). */
void wn_relay_get_stats(const struct wn_relay *r, struct wn_relay_stats *st);

/* The stream error to report for a socket error werr (a WN_E* code) on the
 * given side; `connecting` selects the mapping of connect failures
 * (refused, unreachable, timed out). */
int wn_relay_stream_err(enum wn_relay_side side, bool connecting, int werr);

#endif
