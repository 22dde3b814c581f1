/* A UDP socket on the loop with batched I/O: the socket plumbing under the
 * udp front end (front/udp.h) and the server's UDP dialer
 * (front/udpdial.h), which know nothing of errno or libuv handles.
 *
 * Receiving: datagrams are read with recvmmsg, WN_DGRAM_BATCH at a time,
 * into a receive scratch (struct wn_dgram_rx) that several sockets of one
 * loop may share, since each batch is handed to on_recv before the next
 * read: a server with a socket per flow needs one scratch, not one per
 * flow. Each datagram is reported whole, or as truncated when it was
 * larger than WN_DGRAM_SLOT (the owner drops it: UDP is never delivered
 * cut). ICMP errors (a port unreachable reported for an earlier send)
 * are cleared and reading goes on.
 *
 * Sending: wn_dgram_send copies the datagram. With batch_send the copies
 * are collected and written with one sendmmsg when WN_DGRAM_BATCH are
 * queued or at the end of the loop iteration; without, each is written at
 * once (a connected socket of one flow rarely has a batch to gain). A
 * datagram the kernel will not take now (socket buffer full) is dropped
 * and counted: waiting would delay everything behind it for nothing UDP
 * promises.
 *
 * Lifetime: wn_dgram_close stops every callback at once and frees the
 * socket from the loop later; no callback runs after it. */
#ifndef WN_IO_DGRAM_H
#define WN_IO_DGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "io/loop.h"
#include "util/log.h"

/* Datagrams read (and, with batch_send, written) per system call. */
#define WN_DGRAM_BATCH 32
/* The largest datagram received whole; longer ones are reported
 * truncated. Above any datagram a tunnel carries (two engine packets). */
#define WN_DGRAM_SLOT 4096

struct wn_dgram_rx;
struct wn_dgram_sock;

/* A receive scratch: WN_DGRAM_BATCH slots of WN_DGRAM_SLOT bytes. Returns
 * 0 and *out, or WN_ENOMEM. Free it after every socket using it closed. */
int wn_dgram_rx_new(struct wn_dgram_rx **out);
void wn_dgram_rx_free(struct wn_dgram_rx *rx);

/* One datagram received: data valid only during the call. truncated: it
 * was longer than WN_DGRAM_SLOT and data holds only its start. */
typedef void (*wn_dgram_recv_fn)(void *ctx, const uint8_t *data, size_t len,
                                 bool truncated,
                                 const struct sockaddr_storage *from,
                                 socklen_t fromlen);

struct wn_dgram_opts {
	const char *name; /* for logs (borrowed; must outlive the socket) */
	int family;       /* AF_INET or AF_INET6 */
	/* Bind here (NULL: an ephemeral port on the wildcard address). */
	const struct sockaddr *bind;
	socklen_t bind_len;
	/* Connect to here (NULL: unconnected; sends name their peer). */
	const struct sockaddr *peer;
	socklen_t peer_len;
	struct wn_dgram_rx *rx; /* borrowed scratch; must outlive it */
	bool batch_send;        /* collect sends for sendmmsg */
	wn_dgram_recv_fn on_recv;
	void *ctx;
};

struct wn_dgram_stats {
	uint64_t recv, recv_bytes;
	uint64_t sent, sent_bytes;
	uint64_t send_dropped; /* the kernel did not take it */
	uint64_t recv_calls, send_calls;
};

/* Opens the socket and starts reading (opts is copied). Returns 0 and
 * *out, or a WN_E* code (WN_EADDRINUSE, ...) with nothing to clean up. */
int wn_dgram_open(struct wn_loop *loop, struct wn_log *log,
                  const struct wn_dgram_opts *opts, struct wn_dgram_sock **out);

/* Sends (or, with batch_send, queues) one datagram of len bytes (copied)
 * to `to` (NULL on a connected socket). Returns 0, WN_EMSGSIZE above
 * WN_DGRAM_SLOT, or WN_EAGAIN when it was dropped now (counted). */
int wn_dgram_send(struct wn_dgram_sock *s, const uint8_t *data, size_t len,
                  const struct sockaddr *to, socklen_t tolen);

/* The bound address. */
int wn_dgram_sockname(const struct wn_dgram_sock *s,
                      struct sockaddr_storage *ss);

const struct wn_dgram_stats *wn_dgram_get_stats(const struct wn_dgram_sock *s);

/* Stops reading, drops what is queued and frees the socket later in the
 * loop. No callback runs after this call. */
void wn_dgram_close(struct wn_dgram_sock *s);

#endif
