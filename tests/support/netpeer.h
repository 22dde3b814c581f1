/* netpeer: the applications at both ends of a tunnel, for tests: clients
 * that send a verifiable byte stream and check what comes back, and target
 * servers that echo, sink (and verify), greet or reset, over loopback TCP
 * or unix sockets, all on one wn_loop.
 *
 * Streams are verifiable without storing them: byte `off` of the stream
 * with seed S is a pure function of (S, off); the first 4 bytes carry S
 * itself (little-endian), so a sink learns the seed from the stream.
 *
 * Objects are embedded by the test (they must stay in place until their
 * handles are closed: call the close function and run the loop, or let
 * wn_loop_close finish them). */
#ifndef WN_TESTS_NETPEER_H
#define WN_TESTS_NETPEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "engine/tunnel.h"
#include "io/loop.h"

/* Byte off of the stream with seed seed. */
uint8_t wn_np_byte(uint32_t seed, uint64_t off);
void wn_np_fill(uint32_t seed, uint64_t off, uint8_t *buf, size_t n);
/* True if buf holds bytes off..off+n of the stream. */
bool wn_np_check(uint32_t seed, uint64_t off, const uint8_t *buf, size_t n);

/* Run the loop until cond(arg) is true or timeout_ms passed; returns the
 * last cond. */
bool wn_np_run_until(struct wn_loop *loop, bool (*cond)(void *), void *arg,
                     uint64_t timeout_ms);
/* Run the loop for about ms milliseconds. */
void wn_np_run_for(struct wn_loop *loop, uint64_t ms);

enum wn_np_mode {
	WN_NP_ECHO,  /* write back what is read; shut down after the EOF */
	WN_NP_SINK,  /* verify; shut down and close after the EOF */
	WN_NP_GREET, /* send greet_len bytes of greet_seed, shut down; sink */
	WN_NP_RESET, /* reset (RST) after reset_after bytes were read */
};

struct np_sconn;

struct wn_np_server {
	struct wn_loop *loop;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} l;
	bool is_pipe;
	bool listening;
	char path[108];
	uint16_t port;
	enum wn_np_mode mode;
	uint32_t greet_seed;
	uint64_t greet_len;
	uint64_t reset_after;
	bool stalled;          /* new connections are not read until resume */
	size_t echo_queue_max; /* stop reading above this; 0: 1 MiB */
	/* results */
	int accepted, finished, eofs, resets, errors, mismatches;
	uint64_t bytes_in, bytes_out;
	struct np_sconn *conns;
};

/* Listen on ip ("127.0.0.1", "::1") port 0 (s->port is set). 0 or -1. */
int wn_np_server_tcp(struct wn_np_server *s, struct wn_loop *loop,
                     const char *ip, enum wn_np_mode mode);
/* Listen on a unix socket at path (an old file there is removed). */
int wn_np_server_unix(struct wn_np_server *s, struct wn_loop *loop,
                      const char *path, enum wn_np_mode mode);
/* Start reading the connections held by `stalled`. */
void wn_np_server_resume(struct wn_np_server *s);
/* Close the listener and every connection (abortively). */
void wn_np_server_close(struct wn_np_server *s);

enum wn_np_expect {
	WN_NP_EXPECT_ECHO,    /* our own stream back */
	WN_NP_EXPECT_STREAM,  /* the stream of expect_seed, expect_len long */
	WN_NP_EXPECT_NOTHING, /* EOF only */
};

struct wn_np_client {
	struct wn_loop *loop;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_connect_t creq;
	uv_shutdown_t sreq;
	bool is_pipe;
	uint32_t seed;
	uint64_t send_len;    /* bytes to send (>= 4 for the seed) */
	bool shut_after_send; /* shut down the write side when done */
	enum wn_np_expect expect;
	uint32_t expect_seed;
	uint64_t expect_len;
	bool stalled; /* do not read until wn_np_client_resume */
	bool reading;
	/* results */
	int connect_status;
	bool connected;
	uint64_t queued, sent, recvd;
	bool mismatch;
	bool eof;
	int read_err, write_err; /* libuv codes, 0 if none */
	bool shut_done;
	bool closing, closed;
	uint64_t start_ms, end_ms;
};

/* Connect to sa and start: send, shut down, read and verify. 0 or -1. */
int wn_np_client_tcp(struct wn_np_client *c, struct wn_loop *loop,
                     const struct sockaddr *sa);
int wn_np_client_unix(struct wn_np_client *c, struct wn_loop *loop,
                      const char *path);
/* Start reading (after `stalled`). */
void wn_np_client_resume(struct wn_np_client *c);
/* Reset the connection now (RST). */
void wn_np_client_reset(struct wn_np_client *c);
/* Close it now (FIN, no waiting). */
void wn_np_client_close(struct wn_np_client *c);
/* The connection was reset by the other end (seen by a read, or by a
 * write when that came first). */
bool wn_np_client_was_reset(const struct wn_np_client *c);
/* Everything expected arrived, EOF seen, all sent and nothing failed. */
bool wn_np_client_ok(const struct wn_np_client *c);

/* A scripted application on one end of a tunnel stream: it sends the
 * stream of `seed` (send_len bytes, then a FIN if shut_when_sent), checks
 * what arrives against the stream of expect_seed, and consumes at once
 * unless `hold`. Tests poke its fields and read its results. */
struct wn_np_stream {
	struct wn_stream *s; /* NULL once on_closed came */
	int streams;         /* streams it was attached to */
	/* receiving */
	uint32_t expect_seed;
	uint64_t got;
	bool mismatch, eof, closed;
	int closed_err;
	bool hold; /* keep delivered bytes unconsumed until unhold */
	size_t unconsumed;
	uint64_t reset_after_got; /* reset with reset_err once got >= it */
	int reset_err;
	/* sending */
	uint32_t seed;
	uint64_t send_len, sent;
	bool shut_when_sent, shut;
	int writable_calls;
	/* called after each on_data, for tests that act from callbacks */
	void (*on_data_hook)(struct wn_np_stream *p, void *arg);
	void *hook_arg;
};

/* The handler to attach p with (ctx is p). */
struct wn_stream_handler wn_np_stream_handler(struct wn_np_stream *p);
/* Write as much of the stream as the send buffer takes now. */
void wn_np_stream_push(struct wn_np_stream *p);
/* Consume what was held and stop holding. */
void wn_np_stream_unhold(struct wn_np_stream *p);

#endif
