/* The SOCKS5 front end (client side): a local SOCKS5 proxy (RFC 1928
 * CONNECT and UDP ASSOCIATE, RFC 1929 username/password) whose connections travel as tunnel
 * streams to the targets the application names; the server resolves names
 * and applies its target policy.
 *
 * Listening and accepting are the forward front end's (forward.h, with an
 * on_accept hook); the handshake runs on the accepted relay's socket
 * (relay.h's handshake calls), reading exactly the bytes the parser
 * (src/core/socks5.h) asks for, under a size bound (the parser's) and a
 * time bound (handshake_timeout_ms). Then socket and stream go to the one
 * relay path.
 *
 * Two modes:
 *  - eager (the default): once the request is parsed the stream is opened
 *    and the application is told "succeeded" at once; its first data goes
 *    with the stream header in the same flight, so connecting and the first
 *    byte cost one round trip. If the server cannot reach the target it
 *    resets the stream and the application sees its connection reset.
 *  - standard: the stream asks the server to confirm (WN_OPEN_CONFIRM) and
 *    the reply waits for the server's answer: "succeeded" after the status
 *    byte, else the reply code for the reset reason (DENIED: not allowed by
 *    ruleset, UNREACHABLE: host unreachable, REFUSED: connection refused,
 *    TIMEOUT: TTL expired, others: general failure), then a clean close.
 *    One more round trip, exact errors.
 *
 * UDP ASSOCIATE (RFC 1928 section 7), when the tunnel carries datagrams:
 * a UDP relay socket per association on the listener's address, only the
 * client's datagrams admitted, each destination a datagram flow checked
 * by the server's udp:// rules, fragments dropped, the association
 * ending with its TCP connection (socks5.c says more).
 *
 * Authentication: with users configured only username/password is
 * accepted; credentials are compared in constant time over all users.
 * Without users, only "no authentication": keep such a proxy on loopback
 * or a unix socket with tight permissions. */
#ifndef WN_FRONT_SOCKS5_H
#define WN_FRONT_SOCKS5_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/addr.h"
#include "core/socks5.h"
#include "engine/tunnel.h"
#include "front/relay.h"
#include "io/loop.h"
#include "util/log.h"

#define WN_SOCKS5_HANDSHAKE_TIMEOUT_MS 10000
#define WN_SOCKS5_CONFIRM_TIMEOUT_MS 30000
/* Destinations (flows) one UDP association holds at once; a new one
 * closes the least recently used. DNS resolvers and games use a handful;
 * the bound keeps one client from holding many of the tunnel's flows. */
#define WN_SOCKS5_UDP_FLOWS 16

struct wn_socks5_front;

struct wn_socks5_front_opts {
	const char *name;          /* for logs; copied; NULL: "socks5" */
	struct wn_endpoint listen; /* tcp (IP or name) or unix */
	bool eager;                /* answer at once (see above) */
	/* Username/password users (copied); none: no authentication. */
	const struct wn_socks5_user *users;
	size_t n_users;
	size_t out_limit;              /* relay queue cap; 0: default */
	int backlog;                   /* 0: the forward's default */
	uint32_t handshake_timeout_ms; /* accept to request; 0: 10 s */
	uint32_t confirm_timeout_ms;   /* standard mode's wait; 0: 30 s */
	/* Without users the proxy takes anyone who can reach it, so it
	 * listens on loopback only (other addresses: WN_EPERM) unless
	 * this is set. */
	bool unauthenticated;
	unsigned unix_mode; /* as wn_forward_opts: 0 is 0600 */
};

struct wn_socks5_front_stats {
	uint64_t accepted;       /* connections handed to the handshake */
	uint64_t connects;       /* requests that opened a stream */
	uint64_t bad_handshakes; /* malformed or unsupported requests */
	uint64_t auth_failures;  /* wrong username or password */
	uint64_t timeouts;       /* handshake or confirm timed out */
	uint64_t failed_replies; /* standard mode: error replies sent */
	uint64_t replies[9];     /* replies sent, by SOCKS5 reply code */
	/* UDP ASSOCIATE: "up" from the applications into the tunnel,
	 * "down" back to them. */
	uint64_t udp_associates;    /* UDP ASSOCIATE requests */
	uint64_t udp_flows_opened;  /* destinations opened as flows */
	uint64_t udp_flows_evicted; /* closed for room (WN_SOCKS5_UDP_FLOWS) */
	uint64_t udp_flows_denied;  /* refused by the server's udp rules */
	uint64_t udp_dgrams_up, udp_dgrams_down;
	uint64_t udp_drop_source; /* not from the association's client */
	uint64_t udp_drop_frag;   /* FRAG != 0 */
	uint64_t udp_drop_header; /* malformed header */
	uint64_t udp_drop_size;   /* larger than the tunnel carries */
	uint64_t udp_drop_denied; /* to a destination the server refused */
	uint64_t udp_drop_tunnel; /* no flow, tunnel down or queue full */
	uint64_t udp_drop_reply;  /* a reply the socket did not take */
};

/* Starts a SOCKS5 proxy as opts says (copied, users included). Streams are
 * opened on t, which is borrowed and must outlive the proxy; loop and log
 * are borrowed. Returns 0 and *out, or a WN_E* code (as wn_forward_open)
 * with nothing to clean up. */
int wn_socks5_front_open(struct wn_loop *loop, struct wn_log *log,
                         struct wn_tunnel *t,
                         const struct wn_socks5_front_opts *opts,
                         struct wn_socks5_front **out);

/* Stops listening and resets every connection, in handshake or relaying.
 * Freed by the loop later; sf must not be used after this call. */
void wn_socks5_front_close(struct wn_socks5_front *sf);

/* The address of the first TCP listener. Returns 0 or WN_EINVAL. */
int wn_socks5_front_sockname(const struct wn_socks5_front *sf,
                             struct sockaddr_storage *ss);

/* Live relays (handshakes included) and their counters. */
const struct wn_relay_set *
wn_socks5_front_relays(const struct wn_socks5_front *sf);

/* The front end's own counters. */
const struct wn_socks5_front_stats *
wn_socks5_front_get_stats(const struct wn_socks5_front *sf);

/* The SOCKS5 reply code for a stream reset reason (enum wn_stream_err). */
uint8_t wn_socks5_rep_for(int stream_err);

#endif
