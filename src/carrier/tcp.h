/* The tcp carrier, and tls (the same under TLS 1.3): two carrier types
 * (registry.h). Packets travel over TCP connections that come and go while
 * the session above them lives on: the Turbo Tunnel design.
 *
 * Each connection starts with a preamble from the client
 * (crypto/preamble.h: a sealed box to the server's key holding a random
 * session id, a session secret and a strictly increasing counter), then
 * carries framed packets both ways (core/frame.h).
 *
 * Client (wn_tcp_client_open): dials the server, sends a preamble, and
 * keeps opts.conns connections (a group; default one) up: when one dies
 * (cut, reset, or stalled: bytes sent and nothing heard for stall_ms) it
 * redials at once, then with jittered exponential backoff (100 ms doubling
 * to 5 s) while dials fail. The group has one virtual local address
 * (vaddr.h) while any of its connections is up: the first connection up
 * after none gives it a fresh one and is announced with
 * h.state(NULL, WN_CARRIER_UP) (a new path: carrier.h's state contract);
 * the last one's end is announced DOWN. Connections
 * joining or leaving a live group are not announced: to the engine a lost
 * connection is lost packets. Rotation (rotate_after_ms, rotate_bytes)
 * dials the replacement first, one connection at a time (group.h).
 * Packets sent while no connection is up are dropped (WN_EUNREACH), as a
 * datagram link would lose them. Packets arrive from the server address
 * given at open.
 *
 * Server (wn_tcp_server_open): listens; a connection whose preamble
 * opens with the server's key binds to its session: a new session id makes
 * a new session (the engine above authenticates the client and drops
 * strangers), a known one binds only if the secret matches (constant time)
 * and the counter is above the last accepted one, so a replayed preamble
 * binds nothing. A bound connection joins its session's group (at most
 * WN_SGROUP_SERVER_MAX; beyond, the member heard from longest ago is
 * closed). While the group has connections the session has one virtual
 * peer address (vaddr.h: a per-session tag and the number of the
 * connection that started the group), reported with h.state(addr,
 * WN_CARRIER_UP) when the group starts and DOWN when its last connection
 * ends. Packets
 * sent to any address of a session go out on one of its connections
 * (group.h: the preferred unless loaded), so an engine that still answers
 * an old address reaches the client anyway ("sessions follow their
 * packets"). Members are kept alive and dead ones dropped by the rules in
 * group.h.
 * Anything that is not a valid preamble is held open in silence until
 * the connection's preamble deadline (random, counted from accept, so the
 * same whether 114 bytes or 115 came), its input discarded, then closed
 * (tcp), or answered as
 * a web server would (tls: see tls.h and opts.fallback): an HTTP request
 * gets a 404 once its header is in, anything else a 400, a plain HTTP
 * request to the TLS port the 400 web servers give it. Connections without a
 * preamble after preamble_timeout_ms, or silent for idle_close_ms, are
 * reaped.
 *
 * Padding: with pad_max, each batch sent is followed by a padding record
 * of a random 0..pad_max bytes, so packet sizes and timing show less on a
 * plain tcp carrier (under tls, records hide them anyway).
 *
 * Send: a batch is framed whole into one connection's write queue or not
 * at all; a full queue (queue_limit) gives WN_EAGAIN, and h.writable
 * follows once it drains or a connection of the group ends.
 *
 * Capabilities: WN_CARRIER_RELIABLE (packets arrive in order, or the
 * connection dies), WN_CARRIER_CONNECTED (the state contract above) and
 * WN_CARRIER_FIXED_MTU. max_packet is opts.max_packet (default 1472, what a
 * udp carrier sends over IPv4, so a session can move between them).
 *
 * Re-entrancy: as in carrier.h. A connection error found inside send()
 * (a write that cannot start) ends that connection from the loop, later.
 *
 * Lifetime: as in carrier.h; close() closes every connection at once and
 * frees the carrier once libuv is done with its handles. */
#ifndef WN_CARRIER_TCP_H
#define WN_CARRIER_TCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "carrier/carrier.h"
#include "crypto/key.h"
#include "io/loop.h"
#include "util/log.h"

/* A server's connection limit when max_conns is 0. */
#define WN_TCP_MAX_CONNS 4096

struct wn_tcp_opts {
	size_t max_packet;  /* 0: 1472 */
	size_t queue_limit; /* write queue per connection; 0: 512 KiB */
	uint32_t preamble_timeout_ms; /* server: preamble and its padding
	                                 in by (less a random part of up to
	                                 a quarter); 0: 5 s */
	uint32_t auth_timeout_ms;     /* server: a new session carries a packet
	                                 the engine authenticated within
	                                 this (carrier.h), or its connections
	                                 are closed; 0: 5 s */
	uint32_t idle_close_ms;       /* close a silent connection; 0: never */
	uint32_t stall_ms;            /* client: sent, nothing heard; 0: 8 s */
	uint32_t rotate_after_ms;     /* client: replace after; 0: never */
	uint64_t rotate_bytes;        /* client: replace after; 0: never */
	uint32_t max_conns;           /* server: connections; 0: 4096 */
	uint32_t max_sessions;        /* server: sessions remembered; 0: 4096 */
	uint32_t source_conns;        /* server: connections not yet
	                                 authenticated per source /24 or /64;
	                                 0: 32 */
	uint32_t conns;   /* client: parallel connections per session, 1..16
	                   (WN_SGROUP_MAX); 0: 1 */
	uint32_t pad_max; /* after each batch, a padding record of 0..pad_max
	                     random bytes (at most 32767); 0: none */
	/* tls only */
	const char *sni;           /* client: server name sent; server: the
	                         generated certificate's name (borrowed) */
	const char *tls_cert;      /* server: PEM files, or both NULL to */
	const char *tls_key;       /*   generate a self-signed certificate */
	int fallback;              /* server: enum wn_fallback_kind (tls.h) */
	const char *fallback_file; /* with WN_FALLBACK_FILE: read at open */
};

/* Opens a client carrier to `server` (a real TCP address), named
 * "tcp#<id>" or "tls#<id>". server_pk is the server's Ed25519 identity;
 * the preamble is sealed to its X25519 form. loop and log are borrowed.
 * The first dial starts at once. Returns 0, WN_EINVAL (bad address or
 * key), WN_ECRYPTO or WN_ENOMEM. */
int wn_tcp_client_open(struct wn_loop *loop, struct wn_log *log, unsigned id,
                       const struct sockaddr *server, socklen_t len,
                       const uint8_t server_pk[WN_KEY_LEN],
                       const struct wn_tcp_opts *opts,
                       const struct wn_carrier_handler *h,
                       struct wn_carrier **out);
int wn_tls_client_open(struct wn_loop *loop, struct wn_log *log, unsigned id,
                       const struct sockaddr *server, socklen_t len,
                       const uint8_t server_pk[WN_KEY_LEN],
                       const struct wn_tcp_opts *opts,
                       const struct wn_carrier_handler *h,
                       struct wn_carrier **out);

/* Opens a server carrier listening on bind_addr. ident is the server's
 * identity (borrowed; it must outlive the carrier): preambles are opened
 * with its X25519 key. Returns 0, WN_EADDRINUSE, WN_EINVAL, WN_ENOMEM or
 * another WN_E* code. */
int wn_tcp_server_open(struct wn_loop *loop, struct wn_log *log, unsigned id,
                       const struct sockaddr *bind_addr, socklen_t len,
                       const struct wn_identity *ident,
                       const struct wn_tcp_opts *opts,
                       const struct wn_carrier_handler *h,
                       struct wn_carrier **out);
int wn_tls_server_open(struct wn_loop *loop, struct wn_log *log, unsigned id,
                       const struct sockaddr *bind_addr, socklen_t len,
                       const struct wn_identity *ident,
                       const struct wn_tcp_opts *opts,
                       const struct wn_carrier_handler *h,
                       struct wn_carrier **out);

/* Server: live bound connections and sessions, for tests and metrics. */
size_t wn_tcp_server_conns(const struct wn_carrier *c);
size_t wn_tcp_server_sessions(const struct wn_carrier *c);

/* Server, fault injection for tests: the next n accepted connections find
 * no memory for their state, as when allocation fails. */
void wn_tcp_server_fail_allocs(struct wn_carrier *c, unsigned n);

#endif
