/* The datagram flow message: one unreliable unit of an engine's wire (a
 * QUIC DATAGRAM frame, a KCP engine unreliable packet) carrying a piece of
 * a tunnel flow (src/engine/tunnel.h, "Datagrams"). Pure: no I/O, no
 * allocation.
 *
 *   varint  flow id       QUIC varint (RFC 9000 §16), chosen by the client
 *   u8      type | flags  low 4 bits the type, 0x10 TARGET, 0x20 FRAG;
 *                         0xc0 reserved (must be 0)
 *   [u16 datagram id, u8 index]   FRAG: index 0 or 1 of two fragments
 *   [target]              TARGET: the stream header's target encoding
 *                         without its version byte (src/core/streamhdr.h:
 *                         type byte 0 default, 1 name, 2 IPv4, 3 IPv6, then
 *                         the address and port); UDP, so no unix paths.
 *                         In a fragmented datagram only index 0 carries it
 *   ...                   the rest, by type:
 *     DATA    (0)  payload (may be empty); flags TARGET, FRAG allowed
 *     ACK     (1)  nothing: the server took the flow (no flags)
 *     CLOSE   (2)  u8 reason (enum wn_stream_err): closed, or refused
 *     UNKNOWN (3)  nothing: the receiver knows no such flow (no flags)
 *     OPEN    (4)  nothing: the target alone (TARGET required), sent
 *                  before a datagram too large to carry it too
 *     FEC     (5)  (no flags) u16 group, u8 index, u8 data, u8 parity,
 *                  u8 delay_ms, then: index < data, a data shard: one
 *                  message of this flow without its flow id (its type
 *                  byte first; DATA or OPEN); index >= data, a parity
 *                  shard: u8 count (the group's data shards, 1..data),
 *                  then the Reed-Solomon parity (src/core/dgfec.h) of the
 *                  group's shards
 *
 * The fragment header comes before the target so that a fragment's body
 * (target and payload) is contiguous: the receiver keeps it as one piece
 * until the other half comes. Integers big-endian. Mirrored in docs/wire-format.md ("Datagram
 * flows"). */
#ifndef WN_CORE_DGRAM_H
#define WN_CORE_DGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/streamhdr.h"

#define WN_DGRAM_DATA 0
#define WN_DGRAM_ACK 1
#define WN_DGRAM_CLOSE 2
#define WN_DGRAM_UNKNOWN 3
#define WN_DGRAM_OPEN 4
#define WN_DGRAM_FEC 5

#define WN_DGRAM_TYPE_MASK 0x0fu
#define WN_DGRAM_F_TARGET 0x10u
#define WN_DGRAM_F_FRAG 0x20u
#define WN_DGRAM_F_RESERVED 0xc0u

/* The longest target encoding (a 253-byte name). */
#define WN_DGRAM_TARGET_MAX (WN_STREAMHDR_MAX - 1)
/* The fragment header's size (datagram id, index). */
#define WN_DGRAM_FRAG_HDR 3
/* The longest header: flow id, type, fragment header, target. */
#define WN_DGRAM_HDR_MAX (8 + 1 + WN_DGRAM_TARGET_MAX + WN_DGRAM_FRAG_HDR)
/* FEC (type 5): the header after the type byte (group, index, data,
 * parity, delay); a parity shard's count byte follows it. */
#define WN_DGRAM_FEC_HDR 6
/* The most data and parity shards a group may have, and the longest
 * grouping time a sender may state. */
#define WN_DGRAM_FEC_DATA_MAX 32
#define WN_DGRAM_FEC_PARITY_MAX 16
#define WN_DGRAM_FEC_DELAY_MAX 255
/* The longest shard: a u16 length and the message without its flow id.
 * A parity shard is as long as its group's longest shard. */
#define WN_DGRAM_FEC_SHARD_MAX 1536
/* What FEC costs a message: a flow with FEC builds its messages at most
 * max_msg - WN_DGRAM_FEC_OVERHEAD bytes long, so that each, wrapped in
 * the FEC header, and its group's parity shards (header, count, length,
 * parity) fit in max_msg. */
#define WN_DGRAM_FEC_OVERHEAD (1 + WN_DGRAM_FEC_HDR + 1 + 2)

/* Flow ids are QUIC varints. */
#define WN_DGRAM_FLOW_MAX ((1ull << 62) - 1)

/* A decoded message, or one to encode. Pointers point into the message. */
struct wn_dgram_msg {
	uint64_t flow;
	unsigned type;         /* WN_DGRAM_DATA, ... */
	unsigned flags;        /* WN_DGRAM_F_TARGET | WN_DGRAM_F_FRAG */
	const uint8_t *target; /* TARGET: its encoding */
	size_t target_len;     /* TARGET: 1..WN_DGRAM_TARGET_MAX */
	uint16_t dgram_id;     /* FRAG */
	uint8_t frag_index;    /* FRAG: 0 or 1 */
	uint8_t reason;        /* CLOSE */
	uint16_t fec_group;    /* FEC: the sender's group counter */
	uint8_t fec_index;     /* FEC: 0 .. fec_data + fec_parity - 1 */
	uint8_t fec_data;      /* FEC: data shards in a full group */
	uint8_t fec_parity;    /* FEC: parity shards in a full group */
	uint8_t fec_delay;     /* FEC: the sender's grouping time, ms */
	uint8_t fec_count;     /* FEC parity: data shards in this group */
	const uint8_t *body;   /* after the fragment header: target and
	                           * payload (what a held half keeps); FEC:
	                           * the shard (a data shard's message, or
	                           * the parity bytes after the count) */
	size_t body_len;
	const uint8_t *payload; /* DATA: the datagram or fragment */
	size_t payload_len;
};

/* Encodes target (NULL: the server's default UDP target) as a flow target.
 * Returns the length written, or WN_EINVAL (a unix path, a bad name) /
 * WN_ENOSPC. */
int wn_dgram_target_encode(const struct wn_endpoint *target, uint8_t *buf,
                           size_t cap);

/* Decodes a flow target from the start of buf. Returns its length and
 * fills *target (scheme WN_SCHEME_UDP) and *is_default, or WN_EPROTO when
 * malformed or cut short. */
int wn_dgram_target_decode(const uint8_t *buf, size_t len,
                           struct wn_endpoint *target, int *is_default);

/* The header's length for m (everything before the payload, or the whole
 * message for the types without payload). */
size_t wn_dgram_hdr_len(const struct wn_dgram_msg *m);

/* Writes m's header (as wn_dgram_hdr_len counts it; the DATA payload is the
 * caller's to append) into buf. Returns its length, WN_ENOSPC, or
 * WN_EINVAL for a message that decoding would refuse. */
int wn_dgram_encode_hdr(const struct wn_dgram_msg *m, uint8_t *buf, size_t cap);

/* Decodes one message. Returns 0 (m filled, pointing into msg) or
 * WN_EPROTO: truncated, reserved bits, flags the type does not take, a bad
 * target, a fragment index above 1, a target on index 1, bytes after a message without
 * payload; for FEC: counts of 0 or above the maxima, an index past the
 * group, a delay of 0, a parity count above data, an empty shard, a shard
 * longer than WN_DGRAM_FEC_SHARD_MAX allows. */
int wn_dgram_decode(const uint8_t *msg, size_t len, struct wn_dgram_msg *m);

/* Decodes an FEC data shard's message: msg is a message of flow `flow`
 * without its flow id (its type byte first). Returns 0 or WN_EPROTO (as
 * wn_dgram_decode, and for any type but DATA and OPEN). */
int wn_dgram_decode_inner(uint64_t flow, const uint8_t *msg, size_t len,
                          struct wn_dgram_msg *m);

#endif
