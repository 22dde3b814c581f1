/* kcp-go's FEC framing, the layer between kcp-go's packet protection
 * (src/crypto/kcpcrypt.h) and KCP segments, so that warren speaks kcptun's
 * wire format.
 *
 * With FEC on (kcptun's -datashard/-parityshard), every packet after the
 * crypto header starts with a 6-byte FEC header, integers little-endian:
 *
 *   u32 seqid   shard number, one per packet, data and parity alike
 *   u16 type    0xF1 data shard, 0xF2 parity shard
 *   data:   u16 size (KCP bytes + 2), then the KCP segments
 *   parity: Reed-Solomon parity over the group's [size][KCP] fields
 *
 * Shards come in groups of datashard + parityshard consecutive seqids, the
 * data shards first. seqid wraps at the largest multiple of the group size
 * below 2^32, so groups never straddle the wrap.
 *
 * Without FEC the KCP segments follow the crypto header directly. A
 * receiver tells the two apart by bytes 4-5: a KCP segment has cmd (81-84)
 * and frg there, which never read as 0x00F1 or 0x00F2.
 *
 * Pure: no I/O, no clock. Mirrored in docs/wire-format.md ("kcptun profile
 * (kcp-go framing)"). */
#ifndef WN_CORE_KCPGO_H
#define WN_CORE_KCPGO_H

#include <stddef.h>
#include <stdint.h>

#define WN_KCPGO_FEC_HDR 6      /* seqid + type */
#define WN_KCPGO_FEC_DATA_HDR 8 /* seqid + type + size */
#define WN_KCPGO_FEC_DATA 0xF1
#define WN_KCPGO_FEC_PARITY 0xF2
#define WN_KCPGO_SHARDS_MAX 255 /* datashard + parityshard */
/* The most data (and, separately, parity) shards a decoder adapts to
 * unless it was configured for more: a group's rebuild inverts a
 * datashard x datashard matrix, so the peer must not choose 253. */
#define WN_KCPGO_DETECT_MAX 32

/* What a received packet (after the crypto header) holds. */
enum wn_kcpgo_kind {
	WN_KCPGO_RAW,    /* KCP segments, no FEC header */
	WN_KCPGO_DATA,   /* an FEC data shard */
	WN_KCPGO_PARITY, /* an FEC parity shard */
};

struct wn_kcpgo_pkt {
	enum wn_kcpgo_kind kind;
	uint32_t seqid;     /* DATA, PARITY */
	const uint8_t *kcp; /* RAW, DATA: the KCP segments */
	size_t kcp_len;
	const uint8_t *shard; /* DATA, PARITY: the bytes FEC codes over:
	                         data from its size field on */
	size_t shard_len;
};

/* Classifies and splits p[0, len) (borrowed; the result points into it).
 * Returns 0, or WN_ETRUNC when a shard is shorter than its header or a
 * data shard's size field claims more than the packet holds or less than
 * 2, or when a raw packet is shorter than one KCP header (24 bytes). */
int wn_kcpgo_parse(const uint8_t *p, size_t len, struct wn_kcpgo_pkt *out);

/* Writes a data shard's 8-byte header in front of kcp_len bytes of KCP:
 * seqid, type 0xF1, size kcp_len + 2. */
void wn_kcpgo_put_data_hdr(uint8_t hdr[WN_KCPGO_FEC_DATA_HDR], uint32_t seqid,
                           size_t kcp_len);

/* Writes a parity shard's 6-byte header. */
void wn_kcpgo_put_parity_hdr(uint8_t hdr[WN_KCPGO_FEC_HDR], uint32_t seqid);

/* The seqid after seqid for groups of `shards` (data + parity, 1..255):
 * seqid + 1, wrapping to 0 at the largest multiple of shards that fits
 * 32 bits, as kcp-go's encoder does. */
uint32_t wn_kcpgo_next_seqid(uint32_t seqid, unsigned shards);

/* ---- FEC groups (Reed-Solomon, src/core/rs.h) ------------------------ */

struct wn_rs;

/* The sender's side: stamps data shards and, after every `datashard` of
 * them, produces the group's parity packets, as kcp-go's encoder does:
 * each data shard's [size][KCP] is zero-padded to the group's longest,
 * and the parity shards are that long. */
struct wn_kcpgo_enc;

/* Creates an encoder for rs's shard counts. max_shard: the longest
 * [size][KCP] a data shard will carry; headroom: writable bytes kept in
 * front of each parity packet (for the crypto header). rs is borrowed
 * and must outlive the encoder. Returns 0, WN_EINVAL or WN_ENOMEM. */
int wn_kcpgo_enc_new(const struct wn_rs *rs, unsigned datashard,
                     unsigned parityshard, size_t max_shard, size_t headroom,
                     struct wn_kcpgo_enc **out);

void wn_kcpgo_enc_free(struct wn_kcpgo_enc *e);

/* Makes kcp[0, kcp_len) a data shard: writes its 8-byte header at
 * kcp - 8 (writable) and keeps a copy for the group's parity. Returns the
 * number of parity packets now ready (0, or parityshard when the group is
 * complete), or WN_EINVAL if kcp_len + 2 exceeds max_shard (the shard
 * goes out without FEC protection then: it is still stamped). */
int wn_kcpgo_enc_data(struct wn_kcpgo_enc *e, uint8_t *kcp, size_t kcp_len);

/* The i-th parity packet of the group just completed: returns its FEC
 * header's address (with `headroom` writable bytes before it) and its
 * length in *len. Valid until the next wn_kcpgo_enc_data. */
uint8_t *wn_kcpgo_enc_parity(struct wn_kcpgo_enc *e, unsigned i, size_t *len);

/* The receiver's side: keeps the shards of the last few groups and
 * rebuilds a group's lost data shards once `datashard` of its shards
 * (parity included) are in. Data shards themselves go to KCP at once
 * (the caller's job); only rebuilt ones come out of here. */
struct wn_kcpgo_dec;

/* Called with each rebuilt data shard's KCP segments (valid during the
 * call). */
typedef void (*wn_kcpgo_kcp_fn)(void *ctx, const uint8_t *kcp, size_t len);

/* Creates a decoder; like wn_kcpgo_enc_new. Keeps 3 groups of shards:
 * 3 x (datashard + parityshard) x max_shard bytes. The counts are a first
 * guess: when a shard arrives in the other kind's slot, the decoder looks
 * at the last 64 shards' seqids and kinds for the smallest group size
 * they fit (over at least two groups) and switches to it, with a codec
 * of its own, as kcp-go's decoder adapts to its peer. It adapts only to
 * counts up to max(datashard, WN_KCPGO_DETECT_MAX) data and
 * max(parityshard, WN_KCPGO_DETECT_MAX) parity shards, tries at most once
 * every 8 shards (after the first 32), and after switching waits 1,024 shards before the next
 * switch. Rebuilds reuse the inverted matrix of a recent erasure pattern
 * (src/core/rs.h, wn_rs_cache). */
int wn_kcpgo_dec_new(const struct wn_rs *rs, unsigned datashard,
                     unsigned parityshard, size_t max_shard,
                     struct wn_kcpgo_dec **out);

void wn_kcpgo_dec_free(struct wn_kcpgo_dec *d);

/* The shard counts the decoder works with now, and how often it changed
 * them (retunes may be NULL). */
void wn_kcpgo_dec_shards(const struct wn_kcpgo_dec *d, unsigned *datashard,
                         unsigned *parityshard, uint64_t *retunes);

/* How many matrices the decoder's rebuilds have inverted (the rest came
 * from its cache). */
uint64_t wn_kcpgo_dec_inversions(const struct wn_kcpgo_dec *d);

/* Feeds a DATA or PARITY packet (p from wn_kcpgo_parse; borrowed). Calls
 * out for each data shard rebuilt. Returns how many were rebuilt (>= 0),
 * or WN_EPROTO when the shard does not fit (longer than max_shard, a
 * parity shard whose length differs from its group's, a data shard
 * longer than its group's parity, or a rebuilt shard whose size field is
 * impossible): it is dropped, nothing else changes. Shards of groups
 * older than the ones kept, and duplicates, are ignored (0). */
int wn_kcpgo_dec_input(struct wn_kcpgo_dec *d, const struct wn_kcpgo_pkt *p,
                       wn_kcpgo_kcp_fn out, void *ctx);

#endif
