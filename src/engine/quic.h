/* The QUIC engine: ngtcp2 0.12 + GnuTLS, behind this one module (a later move
 * to ngtcp2 1.x touches src/engine/quic*.c only).
 *
 * TLS 1.3 with the node identities as raw public keys pinned on both sides:
 * the client accepts only the server key it was given, the server only the
 * client keys it lists. One QUIC bidirectional stream per tunnelled stream;
 * DATAGRAM frames are negotiated for the datagram front ends.
 *
 * The engine runs over any carrier (carrier.h). The application opens the
 * carrier with the engine's handler (wn_quic_*_handler) and hands it over.
 *
 * Client: keeps one connection to the server up. Keepalive PINGs every
 * keepalive_ms; if nothing is heard for idle_timeout_ms the connection is
 * declared dead, its streams are reset (WN_STREAM_SESSION_LOST), and the
 * client reconnects with backoff; streams opened meanwhile wait, buffered,
 * for the next connection.
 *
 * Server: accepts connections from the listed client keys only; each
 * client's connection is a tunnel; new streams go to the accept handler
 * (the dialer). Packets that are not QUIC for one of its connections, or an
 * Initial that starts one with the client's proof of the server key in its
 * token (crypto/quicproof.h; the client always sends it) or with a Retry
 * token it issued, are dropped without an answer. Past the caps on
 * unvalidated handshakes a proven Initial gets a Retry (quic.c,
 * server_admit; docs/wire-format.md section 1). */
#ifndef WN_ENGINE_QUIC_H
#define WN_ENGINE_QUIC_H

#include <stddef.h>
#include <stdint.h>

#include "carrier/carrier.h"
#include "crypto/key.h"
#include "engine/engine.h"
#include "io/loop.h"
#include "util/log.h"

struct wn_quic_opts {
	struct wn_loop *loop;         /* borrowed */
	struct wn_log *log;           /* borrowed */
	const struct wn_identity *id; /* borrowed; outlives the engine */
	uint32_t idle_timeout_ms;     /* dead after this long without packets */
	uint32_t keepalive_ms;        /* client: PING when idle; 0: none */
	uint32_t handshake_timeout_ms; /* client: give up a connect attempt */
	size_t stream_send_limit; /* bytes buffered per stream, unacked incl. */
	uint64_t stream_window;   /* initial receive window per stream */
	uint64_t stream_window_max; /* autotuning limit per stream */
	uint64_t conn_window_max;   /* autotuning limit per connection */
	uint64_t max_streams;       /* concurrent streams per connection */
	uint32_t failover_ms; /* client, several paths: move after this long
	                         without progress (default 3 s) */
	uint32_t probe_ms;    /* client: try the first path again this often
	                         while on another (default 10 s) */
	/* The engine's one clock, in nanoseconds: every timestamp ngtcp2 sees
	 * and every millisecond the engine keeps (last packet, stream waits,
	 * failover) comes from it. NULL: wn_mono_ns, with milliseconds from
	 * the loop's cached time (both libuv's monotonic clock). A test runs
	 * the engine in virtual time with its own. */
	uint64_t (*clock_ns)(void *ctx);
	void *clock_ctx;
	/* ngtcp2's randomness for non-cryptographic choices (BBR's probing
	 * phase, which changes timing). NULL: libsodium. A virtual-time test
	 * passes a seeded one so that a seed always gives the same run. Keys,
	 * connection IDs and tokens always come from libsodium. */
	void (*rand)(void *ctx, uint8_t *buf, size_t len);
	void *rand_ctx;
};

/* Fills in defaults (loop, log and id stay NULL). */
void wn_quic_opts_default(struct wn_quic_opts *o);

/* Counters for logs and metrics. */
struct wn_quic_stats {
	uint64_t conns_opened, conns_closed;
	uint64_t streams_opened, streams_closed;
	uint64_t pkts_dropped; /* not for any connection, or unparseable */
	uint64_t auth_failures;
	/* Packets with stream data that ngtcp2 declared lost (so sent
	 * again), summed over the streams that closed. */
	uint64_t stream_pkts_lost;
	uint64_t retries_sent; /* server: Retry packets (address validation) */
};

/* ---- client ---------------------------------------------------------- */

struct wn_quic_client;

struct wn_quic_client_events {
	void *ctx;
	void (*on_up)(void *ctx); /* connected and verified */
	void (*on_down)(void *ctx, const char *why); /* lost; will retry */
};

/* Creates a client that will pin server_key. Returns 0 or a WN_E* code. */
int wn_quic_client_new(const struct wn_quic_opts *o,
                       const uint8_t server_key[WN_KEY_LEN],
                       const struct wn_quic_client_events *ev,
                       struct wn_quic_client **out);

/* The handler to open the client's carrier with. */
struct wn_carrier_handler wn_quic_client_handler(struct wn_quic_client *c);

/* Starts connecting to `server` over `carrier` (borrowed: the caller closes
 * it after wn_quic_client_close): add_path and go in one. Returns 0 or a
 * WN_E* code. */
int wn_quic_client_start(struct wn_quic_client *c, struct wn_carrier *carrier,
                         const struct sockaddr *server, socklen_t len);

/* Carrier failover. A client may have several ways to its server, tried
 * in order: wn_quic_client_add_path adds each, then wn_quic_client_go
 * connects (wn_quic_client_start is both, for one path). Connections start
 * on the first path. The policy is core/failover.h, shared with the KCP
 * engine; here are its mechanics. When
 * the active path makes no progress (bytes in flight and nothing heard for
 * failover_ms, or its stream carrier down that long) the connection
 * migrates at once to the next path that is up, keeping every stream; while
 * not on the first path it probes the first every probe_ms (ngtcp2 path
 * validation) and moves back when it answers. Packets never exceed the
 * smallest carrier's max_packet. */
#define WN_QUIC_MAX_PATHS 8

/* Adds a path: server's address on carrier (borrowed, as for start).
 * Returns 0 or WN_EINVAL (too many, or the client already started). */
int wn_quic_client_add_path(struct wn_quic_client *c,
                            struct wn_carrier *carrier,
                            const struct sockaddr *server, socklen_t len);

/* Connects over the first path once every path is added. Returns 0 or a
 * WN_E* code. */
int wn_quic_client_go(struct wn_quic_client *c);

/* The tunnel front ends open streams on. Valid until close. */
struct wn_tunnel *wn_quic_client_tunnel(struct wn_quic_client *c);

/* True while a verified connection is up. */
int wn_quic_client_is_up(const struct wn_quic_client *c);

const struct wn_quic_stats *
wn_quic_client_stats(const struct wn_quic_client *c);

/* Closes the connection (CONNECTION_CLOSE to the server), resets every
 * stream, and frees the client at the end of the loop iteration. */
void wn_quic_client_close(struct wn_quic_client *c);

/* ---- server ---------------------------------------------------------- */

struct wn_quic_server;

/* Creates a server accepting the n client keys (copied). New streams go to
 * ah. Returns 0 or a WN_E* code. */
int wn_quic_server_new(const struct wn_quic_opts *o,
                       const uint8_t (*clients)[WN_KEY_LEN], size_t n,
                       const struct wn_accept_handler *ah,
                       struct wn_quic_server **out);

/* The handler to open each of the server's carriers with. Packets are
 * answered on the carrier they came from. */
struct wn_carrier_handler wn_quic_server_handler(struct wn_quic_server *s);

/* Live client connections. */
size_t wn_quic_server_sessions(const struct wn_quic_server *s);

const struct wn_quic_stats *
wn_quic_server_stats(const struct wn_quic_server *s);

/* Closes every connection and frees the server at the end of the loop
 * iteration. Carriers are the caller's to close afterwards. */
void wn_quic_server_close(struct wn_quic_server *s);

/* ---- virtual time ---------------------------------------------------- */

/* Virtual time. With an injected clock the engine arms no loop timer for
 * its connections' deadlines (the loop's time is not the clock's): the
 * clock's owner reads the earliest deadline with wn_quic_*_next_expiry
 * (in the clock's nanoseconds; UINT64_MAX: none), moves its clock there
 * and calls wn_quic_*_expire, which handles every deadline due then and
 * runs the write passes. Packets in and deferred work still come through
 * the carrier's handler and the loop, read at the clock's now. The client's
 * reconnect backoff and its multi-path health check stay on loop timers:
 * a virtual-time run uses one path and expects no reconnect. */
uint64_t wn_quic_client_next_expiry(const struct wn_quic_client *c);
void wn_quic_client_expire(struct wn_quic_client *c);
uint64_t wn_quic_server_next_expiry(const struct wn_quic_server *s);
void wn_quic_server_expire(struct wn_quic_server *s);

#endif
