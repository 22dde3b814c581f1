/* A connected byte-stream socket (TCP or unix) on the loop: the socket
 * plumbing under the relay (src/front/relay.h), which knows nothing of
 * tunnels.
 *
 * It owns one libuv stream handle and the things every owner of such a
 * handle otherwise writes itself:
 *  - accepting from a listener, or connecting to a list of addresses in
 *    order until one answers (each attempt on a fresh socket, since a failed
 *    connect leaves the old one unusable and the next address may be of
 *    another family), reporting the most telling failure;
 *  - closing with a TCP reset (SO_LINGER 0) when the peer must see the
 *    failure, not an EOF;
 *  - telling an EOF that hides a reset from a clean half-close;
 *  - handshake I/O: reading at most N bytes once and writing a small reply
 *    all at once (SOCKS5 speaks with its application through these before
 *    the relay starts).
 *
 * The owner embeds struct wn_sock and reads and writes the handle itself
 * for its data path (wn_sock_stream, wn_sock_read_start/stop); the
 * handle's data field is the owner's ctx for those callbacks.
 *
 * Lifetime: wn_sock_close starts the close and on_close(ctx) follows once
 * the handle is closed, from libuv's close callback: the owner frees the
 * memory holding the wn_sock there, never earlier. No other callback runs
 * after wn_sock_close. */
#ifndef WN_IO_SOCK_H
#define WN_IO_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>

#include "io/loop.h"
#include "util/log.h"

enum wn_sock_kind {
	WN_SOCK_TCP,  /* uv_tcp_t */
	WN_SOCK_PIPE, /* uv_pipe_t (unix socket) */
};

/* At most this many addresses are tried by wn_sock_connect. */
#define WN_SOCK_MAX_ADDRS 8

struct wn_sock;

/* The connect finished: status 0 (connected), or the most telling WN_E*
 * failure over all addresses (a refusal wins: something is there and says
 * no). Not called after wn_sock_close. */
typedef void (*wn_sock_connect_fn)(void *ctx, int status);

/* The handle is closed; the last call. */
typedef void (*wn_sock_close_fn)(void *ctx);

/* A handshake read finished: n > 0 bytes were read into the caller's
 * buffer, or n is a negative WN_E* code (WN_ECLOSED: the peer closed its
 * side). Not called after wn_sock_close or wn_sock_read_stop. */
typedef void (*wn_sock_read_fn)(void *ctx, ssize_t n);

struct wn_sock {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_connect_t creq;
	enum wn_sock_kind kind;
	struct wn_loop *loop;
	struct wn_log *log; /* may be NULL */
	const char *id;     /* borrowed log name ("c11e0001/4") */
	void *ctx;
	wn_sock_connect_fn on_connect;
	wn_sock_close_fn on_close;
	bool live;       /* initialised and not closing */
	bool retrying;   /* closing the handle to connect on a fresh one */
	bool connecting; /* a connect (of any address) in flight */
	bool connected;  /* accepted, or a connect succeeded */
	bool reading;

	struct sockaddr_storage addrs[WN_SOCK_MAX_ADDRS];
	size_t naddrs, next_addr;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int connect_err; /* most telling WN_E* connect failure so far */

	/* A handshake read in progress. */
	uint8_t *rd_buf;
	size_t rd_len;
	wn_sock_read_fn rd_cb;
};

/* Initialises s's handle on loop, not yet connected. ctx is passed to the
 * callbacks and stored as the handle's data; on_close is required. log and
 * id (borrowed, may change contents) name the socket in debug logs.
 * Returns 0 or a WN_E* code (nothing to close then). */
int wn_sock_init(struct wn_sock *s, struct wn_loop *loop,
                 enum wn_sock_kind kind, struct wn_log *log, const char *id,
                 wn_sock_close_fn on_close, void *ctx);

/* Accepts a pending connection of listener (same socket kind). Returns 0
 * or a WN_E* code. Sets TCP_NODELAY on TCP. */
int wn_sock_accept(struct wn_sock *s, uv_stream_t *listener);

/* Takes the connection pending on listener (TCP or pipe) and closes it at
 * once: what an accept callback does when it cannot serve one (out of
 * memory). libuv stops polling a listener whose callback left a connection
 * pending, so a callback that just returned would stop accepting for good.
 * Needs a small allocation of its own (freed when the handle has closed);
 * returns 0, or WN_ENOMEM or another WN_E* code when the connection could
 * not be taken (it is still pending: call again later). */
int wn_sock_refuse(uv_stream_t *listener);

/* Turns on TCP keepalive on h: the first probe after idle_s seconds
 * without traffic, then one every intvl_s, the connection dropped after
 * cnt unanswered ones. Returns 0 or a WN_E* code. */
int wn_sock_keepalive(uv_tcp_t *h, unsigned idle_s, unsigned intvl_s,
                      unsigned cnt);

/* Connects: for TCP to addrs[0..n) in order (copied, at most
 * WN_SOCK_MAX_ADDRS used) until one answers, for a pipe to path. cb
 * follows once (possibly from inside this call, when the last address
 * fails at once). Returns 0, or WN_EINVAL if nothing usable was given or
 * the socket is connected or connecting (cb is then not called). */
int wn_sock_connect(struct wn_sock *s, const struct sockaddr_storage *addrs,
                    size_t n, const char *path, wn_sock_connect_fn cb);

/* Closes the socket; with rst a connected TCP peer sees a reset rather than
 * an EOF. Idempotent; on_close follows once. Cancels a connect in flight
 * and a handshake read without calling their callbacks. */
void wn_sock_close(struct wn_sock *s, bool rst);

/* The handle, for the owner's own reads and writes. */
static inline uv_stream_t *wn_sock_stream(struct wn_sock *s)
{
	return &s->h.stream;
}

/* Starts reading with the owner's callbacks (the handle's data is the
 * owner's ctx). Returns 0 or a libuv error (negative UV_E*). */
int wn_sock_read_start(struct wn_sock *s, uv_alloc_cb alloc, uv_read_cb cb);

/* Stops reading; also ends a pending handshake read without its callback. */
void wn_sock_read_stop(struct wn_sock *s);

/* Handshake read: reads at most len bytes (at least 1) into buf, which the
 * caller keeps valid until cb, then stops reading and calls cb(ctx, n)
 * once. A caller that asks for exactly the bytes it needs so never takes
 * bytes meant for whoever reads next. Returns 0, or WN_EINVAL if the
 * socket is not connected or a read is pending, or a WN_E* error. */
int wn_sock_read_some(struct wn_sock *s, uint8_t *buf, size_t len,
                      wn_sock_read_fn cb);

/* Handshake write: writes all of data now, or fails: WN_EAGAIN if the
 * socket would take only part of it (replies are small and the socket's
 * buffer is nearly empty then), another WN_E* code on a socket error.
 * The caller must have nothing queued on the handle. */
int wn_sock_write_now(struct wn_sock *s, const uint8_t *data, size_t len);

/* An EOF libuv reports may be a reset after data (poll says HUP after a
 * partial read): returns the socket's pending error as a negative libuv
 * code, or 0 (a clean EOF, or not TCP). */
int wn_sock_pending_error(struct wn_sock *s);

/* "ADDR:PORT" or "[V6]:PORT" of a TCP peer; else "tcp" or "unix". */
void wn_sock_peer_text(struct wn_sock *s, char *buf, size_t cap);

/* The local and peer addresses of a TCP socket (either may be NULL).
 * Returns 0, or WN_EINVAL for a unix socket or one not connected. */
int wn_sock_addrs(struct wn_sock *s, struct sockaddr_storage *local,
                  struct sockaddr_storage *peer);

#endif
