/* Carriers: packet pipes.
 *
 * A carrier moves opaque packets of at most max_packet() bytes between this
 * node and peers, and never looks inside them. Every engine runs over every
 * carrier through this one interface: an operations table plus capability
 * flags, with the engine's handler for what the carrier reports. Carriers
 * are opened by type (registry.h: udp, tcp, tls; faketcp and tox next).
 *
 * Addressing. Each packet comes from, or goes to, a peer address (a struct
 * sockaddr). For the udp carrier it is the real UDP address. Carriers that
 * are not UDP (tcp, tls, faketcp, tox) give each peer connection a stable
 * *virtual* address instead (vaddr.h: an IPv6 address in fd00::/8 that
 * never appears on the wire), so engines see every carrier the same way:
 * as a datagram socket.
 *
 * Batching. Packets are sent in batches: `len` bytes of packets held back to
 * back, each `seg` bytes long except possibly the last, all to one address
 * (the shape UDP GSO wants). Received packets are delivered one by one
 * through recv(); an engine that wants to answer a whole batch at once
 * defers its answer to the end of the loop iteration (io/loop.h).
 *
 * Packet size. No packet an engine sends may exceed max_packet(): engines
 * size every packet from it (the smallest of the carriers a session may
 * use), never from a constant of their own. A larger one is refused with
 * WN_ERANGE.
 *
 * State contract. A carrier without WN_CARRIER_CONNECTED (udp) is UP for
 * every peer from open to close and never calls h.state. A carrier with it
 * (tcp, tls, and faketcp and tox next) has connections that come and go:
 *   - it starts DOWN for every peer: a client has not reached its server
 *     yet, a server has no peers;
 *   - it reports each change of a peer's state once through h.state, UP and
 *     DOWN alternating (never two UPs or two DOWNs in a row for one peer);
 *     a client reports with peer NULL (its server), a server with the
 *     peer's virtual address; DOWN carries why (a WN_E* code);
 *   - while a peer is UP, send() to it takes packets (0, or WN_EAGAIN with
 *     writable() to follow); while it is DOWN, send() drops them and
 *     returns WN_EUNREACH, as a datagram link would lose them;
 *   - every UP is a new path: from a client's UP on, local_addr() is a
 *     fresh address (an engine that knows its paths by their local address,
 *     as QUIC does, migrates to it); a server's UP names a fresh peer
 *     address, which the peer's packets come from until it goes DOWN;
 *   - close() ends everything without reporting DOWN.
 *
 * Re-entrancy, the same for every carrier:
 *   - handler functions are called from the loop only, never from inside
 *     an operation (send, local_addr, max_packet, close): an error that
 *     send() meets is either its return value or reported later;
 *   - from inside any handler function the engine may call send() (e.g. to
 *     answer from recv(), as the KCP server does) and close(); after close()
 *     returns no handler function is called again, not even for the rest
 *     of a batch being delivered;
 *   - recv()'s pkt is valid only during the call (the engine may modify it
 *     in place, e.g. to decrypt) and must not be passed to send().
 *
 * Authentication hint. A carrier never looks inside packets, so it cannot
 * tell a client from a stranger; only the engine can. The engine calls
 * wn_carrier_authenticated(c, peer) when a packet from peer passed its
 * authentication (a handshake that proved a listed client's key, or a
 * packet that opened under a session's keys), at least once for each new
 * peer address it sees authenticated (a server's UP names a fresh one),
 * not for every packet. A carrier that admits peers before they prove
 * anything, at a cost (the tcp and tls servers: a connection, an fd and a
 * session slot for anyone who knows the server's public key), closes a
 * peer that no packet authenticated soon enough (tcp.h: auth_timeout_ms).
 * Carriers without that cost (udp, clients) leave the operation NULL. It
 * never calls the handler, may be called from inside one, and costs a
 * lookup.
 *
 * Lifetime: the creator owns the carrier and ends it with ops->close(), after
 * which no handler function is called; the memory is freed later by the loop
 * (deferred close). */
#ifndef WN_CARRIER_CARRIER_H
#define WN_CARRIER_CARRIER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Capability flags: promises an engine may rely on. */
/* Packets may be lost, duplicated or reordered: the engine recovers. */
#define WN_CARRIER_DATAGRAM 0x1u
/* Packets arrive, in order, or the connection carrying them dies. */
#define WN_CARRIER_RELIABLE 0x2u
/* Connections come and go: the state contract above (h.state). */
#define WN_CARRIER_CONNECTED 0x4u
/* max_packet() is the carrier's own fixed limit, not a network path's MTU:
 * there is no path MTU to discover, and probing above it is pointless. */
#define WN_CARRIER_FIXED_MTU 0x8u

/* A peer's state (see the state contract). A carrier that is dialling or
 * handshaking is DOWN until packets can flow. */
enum wn_carrier_state {
	WN_CARRIER_DOWN = 0,
	WN_CARRIER_UP = 1,
};

struct wn_carrier;

/* What a carrier reports to its user (the engine). Called from the loop. */
struct wn_carrier_handler {
	void *ctx;
	/* One packet from `from` (see the re-entrancy rules). */
	void (*recv)(void *ctx, struct wn_carrier *c,
	             const struct sockaddr *from, socklen_t fromlen,
	             uint8_t *pkt, size_t len);
	/* The carrier can take packets again after send() returned WN_EAGAIN. */
	void (*writable)(void *ctx, struct wn_carrier *c);
	/* A WN_CARRIER_CONNECTED carrier's peer (NULL: a client's server)
	 * changed state (err: why it went DOWN, else 0). May be NULL. */
	void (*state)(void *ctx, struct wn_carrier *c,
	              const struct sockaddr *peer, enum wn_carrier_state st,
	              int err);
};

struct wn_carrier_ops {
	/* Sends a batch (see above). Returns 0 when the batch was taken (sent
	 * or copied: buf may be reused at once), WN_EAGAIN when the carrier is
	 * full (nothing was sent; writable() follows), or another WN_E* code
	 * for a batch that was dropped (e.g. WN_EUNREACH, WN_ERANGE for a
	 * segment above max_packet). Never blocks, never calls the handler. */
	int (*send)(struct wn_carrier *c, const struct sockaddr *to,
	            socklen_t tolen, const uint8_t *buf, size_t len,
	            size_t seg);
	/* Largest packet this carrier carries (fixed from open on). */
	size_t (*max_packet)(const struct wn_carrier *c);
	/* The local address packets are sent from (for udp the bound socket
	 * address; for other carriers a virtual one). Returns 0 or WN_E*. */
	int (*local_addr)(const struct wn_carrier *c,
	                  struct sockaddr_storage *ss, socklen_t *len);
	/* Stops the carrier: no handler calls after this returns; memory is
	 * released at the end of the loop iteration. */
	void (*close)(struct wn_carrier *c);
	/* The engine authenticated a packet from peer (see "Authentication
	 * hint"); an address the carrier does not know is ignored. May be
	 * NULL. */
	void (*authenticated)(struct wn_carrier *c, const struct sockaddr *peer,
	                      socklen_t len);
};

/* Counters every carrier keeps (read by the metrics endpoint). */
struct wn_carrier_stats {
	uint64_t pkts_in, pkts_out;
	uint64_t bytes_in, bytes_out;
	uint64_t send_calls, recv_calls; /* syscalls: shows batching */
	uint64_t drops_in, drops_out;    /* dropped by the carrier itself */
};

/* The common head of every carrier. Carriers embed it first and are used
 * only through it. */
struct wn_carrier {
	const struct wn_carrier_ops *ops;
	const char *scheme; /* its type's name: "udp", "tcp", "tls", ... */
	unsigned caps;
	struct wn_carrier_handler h;
	char name[32]; /* for logs: "udp#1" */
	struct wn_carrier_stats stats;
};

static inline int wn_carrier_send(struct wn_carrier *c,
                                  const struct sockaddr *to, socklen_t tolen,
                                  const uint8_t *buf, size_t len, size_t seg)
{
	return c->ops->send(c, to, tolen, buf, len, seg);
}

static inline size_t wn_carrier_max_packet(const struct wn_carrier *c)
{
	return c->ops->max_packet(c);
}

/* Whether the carrier is UP at open (no connection state to wait for). */
static inline int wn_carrier_starts_up(const struct wn_carrier *c)
{
	return !(c->caps & WN_CARRIER_CONNECTED);
}

/* The engine's authentication hint (a no-op for carriers without one). */
static inline void wn_carrier_authenticated(struct wn_carrier *c,
                                            const struct sockaddr *peer,
                                            socklen_t len)
{
	if (c->ops->authenticated)
		c->ops->authenticated(c, peer, len);
}

static inline void wn_carrier_close(struct wn_carrier *c)
{
	c->ops->close(c);
}

#endif
