/* Private to the tcp and tls carriers (tcp_client.c, tcp_server.c,
 * tcp_stranger.c, tcp_common.c): defaults, and the plumbing client and
 * server share.
 *
 * Both sides are built the same way: a struct wn_tcp_base (the carrier head
 * plus what every side needs: loop, options, buffers, a handle count) embedded
 * first in the side's own struct, and connections that embed a struct
 * wn_tcp_link (one struct wn_tcpconn plus its frame decoder) first. The base
 * is freed when its last libuv handle (listener, timer, connection) has
 * closed. */
#ifndef WN_CARRIER_TCP_INT_H
#define WN_CARRIER_TCP_INT_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "carrier/group.h"
#include "carrier/tcp.h"
#include "carrier/tcpconn.h"
#include "carrier/vaddr.h"
#include "core/frame.h"
#include "util/log.h"

#define WN_TCP_MAX_PACKET 1472 /* the largest a udp carrier sends (IPv4) */
#define WN_TCP_QUEUE_LIMIT (512 * 1024)
#define WN_TCP_PREAMBLE_TIMEOUT_MS 5000
#define WN_TCP_AUTH_TIMEOUT_MS 5000
#define WN_TCP_MAX_SESSIONS 4096
#define WN_TCP_SOURCE_CONNS 32
/* TCP keepalive on every carrier connection: a peer that vanished without
 * a FIN or RST (a host that lost power, a NAT that forgot the mapping) is
 * found within idle + interval * count seconds, whatever the layers above
 * do. */
#define WN_TCP_KEEPALIVE_IDLE_S 60
#define WN_TCP_KEEPALIVE_INTVL_S 10
#define WN_TCP_KEEPALIVE_CNT 6
#define WN_TCP_STALL_MS 8000
#define WN_TCP_RBUF (64 * 1024)
#define WN_TCP_PBUF (16384 + 256) /* tls: one decrypted record */
/* Connection groups (group.h): the client pings a connection that sent
 * nothing for a quarter of the stall time (so a dead one is found within
 * it), the server answers one that heard and did not reply for an eighth
 * of it, and drops a member silent for the stall time while a sibling
 * lives. */
#define WN_TCP_PING_DIV 4
#define WN_TCP_ACK_DIV 8

/* What every tcp or tls carrier, client or server, holds. */
struct wn_tcp_base {
	struct wn_carrier base; /* first */
	struct wn_loop *loop;
	struct wn_log *log;
	struct wn_tcp_opts o;
	bool tls;    /* connections run under TLS (the tls type) */
	int handles; /* libuv handles still open, and the opener's reference */
	bool closed;
	bool want_writable; /* a send was refused: h.writable is owed */
	uint64_t conn_seq;
	struct wn_ratelimit rl;
	gnutls_certificate_credentials_t cred; /* tls */
	/* Frees the side's own resources (not the memory of the struct,
	 * which is freed after it); may be NULL. */
	void (*destroy)(struct wn_tcp_base *b);
	uint8_t rbuf[WN_TCP_RBUF];
	uint8_t pad[WN_FRAME_MAX]; /* padding record scratch */
	uint8_t pbuf[WN_TCP_PBUF]; /* tls: one decrypted record */
};

/* One connection as the carrier sees it: embedded first in the side's own
 * connection struct. */
struct wn_tcp_link {
	struct wn_tcpconn s; /* first */
	struct wn_tcp_base *tb;
	uint64_t num; /* 1, 2, ... in order of creation */
	struct wn_frame_dec dec;
	uint8_t *decbuf;
};

/* Fills b's head for a side: options with defaults, ops, name
 * "<scheme>#<id>", capabilities, the handler (copied), one reference. */
void wn_tcp_base_init(struct wn_tcp_base *b, const struct wn_carrier_ops *ops,
                      bool tls, unsigned id, struct wn_loop *loop,
                      struct wn_log *log, const struct wn_tcp_opts *opts,
                      const struct wn_carrier_handler *h);

/* Drops one reference; the last calls destroy, frees the credentials and
 * then the memory. */
void wn_tcp_release(struct wn_tcp_base *b);

/* Calls h.writable if a send was refused since the last call (a connection
 * drained, or the one a writer waited on is gone: its packets are now
 * dropped as lost, or go to another one). */
void wn_tcp_owe_writable(struct wn_tcp_base *b);

/* A new connection of size bytes (a struct embedding struct wn_tcp_link
 * first) with an initialised handle and frame decoder, a reference on b
 * and the next number; on_data and on_end are the caller's. NULL when out
 * of memory (nothing to undo). */
void *wn_tcp_link_new(struct wn_tcp_base *b, size_t size,
                      void (*on_data)(struct wn_tcpconn *s, const uint8_t *p,
                                      size_t n),
                      void (*on_end)(struct wn_tcpconn *s, int err));

/* Decodes framed packets from p[0, n) and delivers each through h.recv as
 * coming from `from`, until the input ends, the connection closes or the
 * carrier does. Returns 0, or WN_EPROTO for a malformed record (counted in
 * drops_in; the caller ends the connection). */
int wn_tcp_deliver(struct wn_tcp_link *l, const uint8_t *p, size_t n,
                   const struct sockaddr *from, socklen_t fromlen);

/* Checks a batch against the carrier (closed, empty, a segment above
 * max_packet) and normalises *seg. Returns 0 or the WN_E* code send()
 * returns. */
int wn_tcp_send_check(const struct wn_tcp_base *b, const uint8_t *buf,
                      size_t len, size_t *seg);

/* Sends a checked batch on l (NULL: no connection takes it, so it is
 * dropped: WN_EUNREACH). Returns send()'s code. */
int wn_tcp_send_on(struct wn_tcp_base *b, struct wn_tcp_link *l,
                   const uint8_t *buf, size_t len, size_t seg);

/* The ops' max_packet for both sides. */
size_t wn_tcp_max_packet(const struct wn_carrier *c);

/* Room a batch's padding record may take. */
#define WN_TCP_PAD_SLACK(pad_max) ((pad_max) ? WN_FRAME_HDR + (pad_max) : 0)

/* Bytes a batch of len bytes of seg-byte packets takes framed. */
static inline size_t wn_tcp_framed_len(size_t len, size_t seg)
{
	return len + WN_FRAME_HDR * ((len + seg - 1) / seg);
}

#endif
