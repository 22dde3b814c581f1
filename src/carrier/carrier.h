/* Carriers: packet pipes.
 *
 * A carrier moves opaque packets of at most max_packet() bytes between this
 * node and peers, and never looks inside them. Every engine runs over every
 * carrier through this one interface: an operations table plus capability
 * flags, with the engine's handler for what the carrier reports.
 *
 * Addressing. Each packet comes from, or goes to, a peer address (a struct
 * sockaddr). For the udp carrier it is the real UDP address. Carriers that are
 * not UDP (tcp, tls, faketcp, tox) give each peer connection a stable
 * *virtual* address instead (an IPv6 address in fd00::/8 that never appears on
 * the wire), so engines see every carrier the same way: as a datagram socket.
 * When a stream carrier's connection is replaced, the new connection gets a
 * new virtual address, which is how the QUIC engine learns to migrate.
 *
 * Batching. Packets are sent in batches: `len` bytes of packets held back to
 * back, each `seg` bytes long except possibly the last, all to one address
 * (the shape UDP GSO wants). Received packets are delivered one by one
 * through recv(), then recv_done() once per batch, so an engine can process a
 * whole batch before it writes its answers once.
 *
 * Lifetime: the creator owns the carrier and ends it with ops->close(), after
 * which no handler function is called; the memory is freed later by the loop
 * (deferred close). */
#ifndef WN_CARRIER_CARRIER_H
#define WN_CARRIER_CARRIER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Capability flags. */
#define WN_CARRIER_DATAGRAM 0x1u /* packets may be lost or reordered */
#define WN_CARRIER_RELIABLE \
	0x2u /* packets arrive, in order, or the link dies */
#define WN_CARRIER_ENCRYPTED 0x4u /* the carrier itself encrypts */
#define WN_CARRIER_GSO 0x8u       /* batches are segmented by the kernel */

struct wn_carrier;

/* What a carrier reports to its user (the engine). Called from the loop. */
struct wn_carrier_handler {
	void *ctx;
	/* One packet from `from`. pkt is valid only during the call (the
	 * engine may modify it in place, e.g. to decrypt). */
	void (*recv)(void *ctx, struct wn_carrier *c,
	             const struct sockaddr *from, socklen_t fromlen,
	             uint8_t *pkt, size_t len);
	/* The end of a batch of recv() calls. */
	void (*recv_done)(void *ctx, struct wn_carrier *c);
	/* The carrier can take packets again after send() returned WN_EAGAIN. */
	void (*writable)(void *ctx, struct wn_carrier *c);
	/* The carrier (or, for a multi-peer carrier, the path to `peer`; NULL
	 * means all of it) came up (up != 0) or went down (err: why). Datagram
	 * carriers such as udp are always up and may never call this. */
	void (*state)(void *ctx, struct wn_carrier *c,
	              const struct sockaddr *peer, int up, int err);
};

struct wn_carrier_ops {
	const char *name; /* "udp", "tcp", ... */
	/* Sends a batch (see above). Returns 0 when the batch was taken (sent
	 * or copied: buf may be reused at once), WN_EAGAIN when the carrier is
	 * full (nothing was sent; writable() follows), or another WN_E* code
	 * for a batch that was dropped (e.g. WN_EUNREACH). Never blocks. */
	int (*send)(struct wn_carrier *c, const struct sockaddr *to,
	            socklen_t tolen, const uint8_t *buf, size_t len,
	            size_t seg);
	/* Largest packet this carrier carries. */
	size_t (*max_packet)(const struct wn_carrier *c);
	/* The local address packets are sent from (for udp the bound socket
	 * address; for other carriers a virtual one). Returns 0 or WN_E*. */
	int (*local_addr)(const struct wn_carrier *c,
	                  struct sockaddr_storage *ss, socklen_t *len);
	/* Stops the carrier: no handler calls after this returns; memory is
	 * released at the end of the loop iteration. */
	void (*close)(struct wn_carrier *c);
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

static inline void wn_carrier_close(struct wn_carrier *c)
{
	c->ops->close(c);
}

#endif
