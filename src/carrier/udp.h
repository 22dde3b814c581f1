/* The udp carrier: one UDP socket, one datagram per packet.
 *
 * It owns its socket (socket(2) under a uv_poll_t) instead of using uv_udp,
 * because libuv 1.44 has no UDP GSO/GRO, and a QUIC path's throughput
 * depends on them (docs/performance.md, "udp: GSO and GRO").
 *
 * Receive. Each readiness event drains the socket with recvmmsg(2) into
 * buffers allocated once at open (no per-packet allocation), for a bounded
 * number of rounds so one busy carrier cannot starve the loop. With UDP_GRO
 * the kernel may hand over several equal-size datagrams coalesced into one
 * read; they are split by the gso_size it reports and delivered one by one
 * through h.recv, in order.
 * Datagrams larger than a receive slot (2 KiB without GRO) are dropped and
 * counted in stats.drops_in: no engine produces them, since max_packet is
 * below that.
 *
 * Send and back-pressure: the contract of send(). The batch is `len` bytes
 * of `seg`-byte packets (the last may be shorter) to one address. It goes
 * out as sendmsg(2) calls with a UDP_SEGMENT control message (GSO: at most
 * 64 segments and 65507 bytes each, larger batches are split), or, where the
 * kernel lacks GSO, as sendmmsg(2) of the single packets. Then:
 *
 *   - 0: the batch was taken whole; buf may be reused at once. Either it was
 *     sent, or the socket filled up part way through and the unsent rest was
 *     copied into the carrier's one pending batch, which goes out by itself
 *     when the socket drains. The engine never learns of a partial send.
 *   - WN_EAGAIN: nothing of this batch was sent or kept. That happens when
 *     a pending batch is still waiting, or when the socket was full before
 *     the first packet. h.writable follows once the pending batch is out and
 *     the socket takes data again; call send() again then.
 *   - another WN_E* code (WN_ECONNREFUSED, WN_EUNREACH, WN_ERANGE for
 *     EMSGSIZE, WN_EINVAL for a bad address, ...): the batch, or the part of
 *     it not yet sent, was dropped and counted in stats.drops_out. Datagram
 *     semantics: the engine treats it as loss.
 *
 * So at most one batch is ever held (its buffer grows to the largest batch
 * that had to be held and stays allocated until close; close() drops it).
 * Packets are never reordered by the pending path: while it is non-empty
 * every send() returns WN_EAGAIN. EAGAIN and ENOBUFS from the kernel both
 * count as "full".
 *
 * Socket setup, and why:
 *   - SO_RCVBUF/SO_SNDBUF 4 MiB (SO_*BUFFORCE first, which works as root and
 *     lifts the net.core.*mem_max cap): bursts of GSO batches otherwise
 *     overflow the default ~200 KiB queues.
 *   - IP_MTU_DISCOVER / IPV6_MTU_DISCOVER = PMTUDISC_PROBE: DF is set (never
 *     fragment) but the kernel's ICMP-learned path MTU is ignored. The QUIC
 *     engine runs its own packetization-layer PMTU discovery; ICMP "packet
 *     too big" messages can be forged off-path; and with PMTUDISC_DO a
 *     learned PMTU below the GSO segment size makes GSO sends fail (EINVAL).
 *     A packet too large for the path is silently lost, which is what DPLPMTUD
 *     expects.
 *   - IPV6_V6ONLY on, always (not left to net.ipv6.bindv6only): addresses
 *     stay in their own family, never v4-mapped, so engines, logs and the
 *     target policy see one form; and a server may bind 0.0.0.0 and [::] on
 *     the same port as two carriers. A client binds the wildcard of the
 *     server's family, so it never needs dual stack.
 *   - UDP_GRO when the kernel has it; GSO is probed once at open
 *     (getsockopt UDP_SEGMENT) and turned off for good, logged once, if a
 *     GSO send fails with EIO, EINVAL or EOPNOTSUPP while the same packets
 *     go out without GSO.
 *   - non-blocking and close-on-exec from socket(2).
 *
 * Capabilities: WN_CARRIER_DATAGRAM (see wn_udp_gso_on for GSO).
 * max_packet: the largest UDP payload over a 1500-byte MTU path, 1472 bytes
 * for IPv4 and 1452 for IPv6; engines may use less.
 * The carrier never calls h.state: UDP is always up.
 *
 * Lifetime: as in carrier.h. close() stops polling and closes the socket at
 * once; the memory is freed from the poll handle's close callback later in
 * the loop iteration. close() may be called from inside any handler
 * function; no handler function runs after it returns. */
#ifndef WN_CARRIER_UDP_H
#define WN_CARRIER_UDP_H

#include <stddef.h>
#include <sys/socket.h>

#include "carrier/carrier.h"
#include "io/loop.h"
#include "util/log.h"

/* Options flags, for tests and measurements. */
#define WN_UDP_NO_GSO 0x1u /* never use UDP_SEGMENT: sendmmsg only */
#define WN_UDP_NO_GRO 0x2u /* never enable UDP_GRO */

/* The largest UDP payload the carrier will produce for one packet over a
 * 1500-byte MTU path. */
#define WN_UDP_MAX_PACKET_V4 1472
#define WN_UDP_MAX_PACKET_V6 1452

struct wn_udp_opts {
	unsigned id;    /* the carrier is named "udp#<id>" in logs */
	unsigned flags; /* WN_UDP_NO_* */
	int sndbuf;     /* socket buffer sizes in bytes; 0: 4 MiB */
	int rcvbuf;
};

/* Opens a udp carrier bound to bind_addr (AF_INET or AF_INET6; a server
 * binds its listen address, a client the wildcard of the server's family,
 * port 0: see wn_udp_wildcard). opts may be NULL (id 0, defaults). The
 * handler is copied; h->recv must be set, the other functions may be NULL.
 * loop and log are borrowed and must outlive the carrier. On success *out
 * is the carrier, owned by the caller until wn_carrier_close. Returns 0,
 * WN_EINVAL for a bad address, WN_EADDRINUSE, WN_EPERM, WN_ENOMEM, or
 * another WN_E* code; nothing is left open on failure. */
int wn_udp_carrier_open(struct wn_loop *loop, struct wn_log *log,
                        const struct sockaddr *bind_addr, socklen_t bind_len,
                        const struct wn_udp_opts *opts,
                        const struct wn_carrier_handler *h,
                        struct wn_carrier **out);

/* Whether sends use GSO now (probed at open, off for good after a GSO send
 * failed): for tests and logs. */
int wn_udp_gso_on(const struct wn_carrier *c);

/* Fills *ss with the wildcard address of `family` (AF_INET or AF_INET6),
 * port 0, and *len with its length: what a client binds. Returns 0 or
 * WN_EINVAL for another family. */
int wn_udp_wildcard(int family, struct sockaddr_storage *ss, socklen_t *len);

#endif
