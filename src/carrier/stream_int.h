/* Private to the stream carriers (tcp_client.c, tcp_server.c): defaults and
 * the virtual addresses both ends hand to engines. */
#ifndef WN_CARRIER_STREAM_INT_H
#define WN_CARRIER_STREAM_INT_H

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "carrier/group.h"
#include "carrier/stream.h"
#include "core/frame.h"
#include "util/rw.h"

#define STREAM_MAX_PACKET 1472 /* the largest a udp carrier sends (IPv4) */
#define STREAM_QUEUE_LIMIT (512 * 1024)
#define STREAM_PREAMBLE_TIMEOUT_MS 10000
#define STREAM_STALL_MS 8000
#define STREAM_MAX_CONNS 4096
#define STREAM_RBUF (64 * 1024)
#define STREAM_TAG_LEN 7 /* session tag in a server's virtual address */
/* Connection groups (group.h): the client pings a connection that sent
 * nothing for a quarter of the stall time (so a dead one is found within
 * it), the server answers one that heard and did not reply for an eighth
 * of it, and drops a member silent for the stall time while a sibling
 * lives. */
#define STREAM_PING_DIV 4
#define STREAM_ACK_DIV 8

static inline void stream_opts_fill(struct wn_stream_opts *o,
                                    const struct wn_stream_opts *in)
{
	if (in)
		*o = *in;
	else
		memset(o, 0, sizeof(*o));
	if (o->max_packet == 0 || o->max_packet > WN_FRAME_MAX)
		o->max_packet = STREAM_MAX_PACKET;
	if (o->queue_limit == 0)
		o->queue_limit = STREAM_QUEUE_LIMIT;
	if (o->preamble_timeout_ms == 0)
		o->preamble_timeout_ms = STREAM_PREAMBLE_TIMEOUT_MS;
	if (o->stall_ms == 0)
		o->stall_ms = STREAM_STALL_MS;
	if (o->max_conns == 0)
		o->max_conns = STREAM_MAX_CONNS;
	if (o->conns == 0)
		o->conns = 1;
	if (o->conns > WN_SGROUP_MAX)
		o->conns = WN_SGROUP_MAX;
	if (o->pad_max > WN_FRAME_MAX)
		o->pad_max = WN_FRAME_MAX;
}

/* A virtual IPv6 address in fd00::/8: fd, then 7 bytes of tag, then a
 * 64-bit number, with a port. It never appears on the wire. */
static inline void stream_vaddr(struct sockaddr_in6 *a,
                                const uint8_t tag[STREAM_TAG_LEN], uint64_t num,
                                uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	a->sin6_addr.s6_addr[0] = 0xfd;
	memcpy(&a->sin6_addr.s6_addr[1], tag, STREAM_TAG_LEN);
	wn_put_u64be(&a->sin6_addr.s6_addr[8], num);
}

/* Room a batch's padding record may take. */
#define STREAM_PAD_SLACK(pad_max) ((pad_max) ? WN_FRAME_HDR + (pad_max) : 0)

/* Bytes a batch of len bytes of seg-byte packets takes framed. */
static inline size_t stream_framed_len(size_t len, size_t seg)
{
	return len + WN_FRAME_HDR * ((len + seg - 1) / seg);
}

#endif
