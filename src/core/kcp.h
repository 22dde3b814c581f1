/* KCP: the ARQ core of the KCP engine, wire-compatible with skywind3000/kcp
 * and xtaci/kcp-go (so kcptun can talk to it).
 *
 * A datagram carries one or more segments, each a 24-byte header followed
 * by len bytes of data. All integers little-endian:
 *
 *   u32 conv   conversation id, equal on both ends
 *   u8  cmd    81 PUSH (data), 82 ACK, 83 WASK (window probe), 84 WINS
 *              (window tell)
 *   u8  frg    message mode: fragments still to come (counts down to 0);
 *              stream mode: always 0
 *   u16 wnd    the sender's free receive window, in segments
 *   u32 ts     PUSH: send time; ACK: the ts of the PUSH it acknowledges
 *   u32 sn     sequence number (PUSH; ACK: the sn acknowledged)
 *   u32 una    every sn below this has been received by the sender
 *   u32 len    data length (0 for ACK, WASK, WINS)
 *
 * Mirrored in docs/wire-format.md ("KCP segment").
 *
 * Pure: no I/O, no clock, no randomness. Every call that needs time takes
 * `now` in milliseconds; it may wrap, and is only ever compared by signed
 * difference. The core never polls: after input, send or recv the caller
 * asks wn_kcp_deadline() when to call wn_kcp_flush() next and sets one
 * timer. Only acks are batched (for `interval`); calling wn_kcp_flush()
 * after every input is correct too, it just sends more, smaller datagrams.
 *
 * Not thread-safe; the output callback must not call back into the core. */
#ifndef WN_CORE_KCP_H
#define WN_CORE_KCP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WN_KCP_OVERHEAD 24 /* segment header */

#define WN_KCP_CMD_PUSH 81
#define WN_KCP_CMD_ACK 82
#define WN_KCP_CMD_WASK 83
#define WN_KCP_CMD_WINS 84

#define WN_KCP_MTU_DEFAULT 1400
#define WN_KCP_MTU_MIN 50
#define WN_KCP_MTU_MAX 65535
#define WN_KCP_SND_WND_DEFAULT 32
#define WN_KCP_RCV_WND_DEFAULT 128
#define WN_KCP_WND_MAX 65535 /* wnd is a u16 on the wire */
#define WN_KCP_INTERVAL_DEFAULT 100
#define WN_KCP_INTERVAL_MIN 10   /* interval is clamped to [MIN, MAX] */
#define WN_KCP_INTERVAL_MAX 5000 /* as the reference does */
#define WN_KCP_RTO_NODELAY_MIN 30
#define WN_KCP_RTO_MIN 100
#define WN_KCP_RTO_DEFAULT 200
#define WN_KCP_RTO_MAX 60000 /* also caps each segment's backed-off RTO */
#define WN_KCP_DEAD_LINK_DEFAULT 20
#define WN_KCP_SSTHRESH_INIT 2
#define WN_KCP_SSTHRESH_MIN 2
#define WN_KCP_PROBE_INIT 7000    /* first window probe after 7 s */
#define WN_KCP_PROBE_LIMIT 120000 /* probe interval grows x1.5 to 120 s */
#define WN_KCP_FASTACK_LIMIT 5    /* fast resend only while xmit <= 5 */
#define WN_KCP_MSG_FRAGS_MAX 127  /* message mode: fragments per message */
#define WN_KCP_SEND_LIMIT_DEFAULT ((size_t)4 << 20)
#define WN_KCP_ROOM_MAX 4096 /* headroom and tailroom, each */
/* wn_kcp_deadline() with nothing to do: this far ahead (one day). */
#define WN_KCP_IDLE_MS 86400000u

/* A decoded segment header. */
struct wn_kcp_hdr {
	uint32_t conv;
	uint8_t cmd;
	uint8_t frg;
	uint16_t wnd;
	uint32_t ts;
	uint32_t sn;
	uint32_t una;
	uint32_t len;
};

/* Writes h as 24 bytes at out. */
void wn_kcp_hdr_encode(const struct wn_kcp_hdr *h,
                       uint8_t out[WN_KCP_OVERHEAD]);

/* Reads a header from the first 24 bytes of p[0, len). Returns 0, or
 * WN_ETRUNC if len < 24. Does not check cmd or len against anything. */
int wn_kcp_hdr_decode(const uint8_t *p, size_t len, struct wn_kcp_hdr *h);

struct wn_kcp_cfg {
	uint32_t conv;
	unsigned
	    mtu; /* whole KCP datagram incl. 24-byte headers; default 1400 */
	unsigned snd_wnd, rcv_wnd; /* segments; default 32/128 */
	int nodelay;       /* 0: min RTO 100 ms, backoff x2; else 30 ms, x1.5 */
	unsigned interval; /* ms: ack batching, RTO floor; clamped 10..5000 */
	unsigned resend;   /* fast resend after this many dup acks; 0 off */
	int nc;            /* 1: no congestion window (only snd/rmt window) */
	int stream;        /* 1 = stream mode (default); 0 = message mode */
	unsigned dead_link; /* dead after one segment is sent this many times */
	size_t send_limit;  /* max bytes queued in snd_queue+snd_buf (4 MiB) */
	size_t headroom,
	    tailroom; /* writable bytes around each output packet */
	/* The RTO is at least this percentage of the smoothed RTT (0: off,
	 * the reference's behaviour; sender-side only, wire-compatible). */
	unsigned rto_srtt_pct;
	/* 1: pace PUSH segments at 1.25x (2x in startup) the measured
	 * delivery rate and keep at most three bandwidth-delay products
	 * (plus `interval` at that rate, for the peer's ack delay) in
	 * flight (0: off, the reference's bursts; sender-side only). */
	int pacing;
	/* When pending acks make wn_kcp_deadline() say "now" (receiver-side
	 * only, wire-compatible): 0, the reference's rule, `interval` after
	 * the first of them was queued; N, as soon as N are pending, or
	 * after min(interval, srtt / 4, at least 1 ms) once an RTT has been
	 * measured (interval before), and the next two flushes after a
	 * segment beyond a gap arrives. 1 acks at the first flush. */
	unsigned ack_every;
};

/* Fills cfg with the defaults: conv 0, mtu 1400, windows 32/128, nodelay 0,
 * interval 100, resend 0, nc 0, stream 1, dead_link 20, send_limit 4 MiB,
 * no head- or tailroom, no RTO floor, no pacing, ack_every 0. */
void wn_kcp_cfg_default(struct wn_kcp_cfg *cfg);

/* Sets nodelay, interval, resend and nc from a kcptun mode: "normal"
 * (0,40,2,1), "fast" (0,30,2,1), "fast2" (1,20,2,1), "fast3" (1,10,2,1).
 * Other fields are left alone. Returns 0, or WN_EINVAL for another name. */
int wn_kcp_preset(struct wn_kcp_cfg *cfg, const char *name);

/* Called with each datagram to send: pkt points into the core's own buffer,
 * with cfg.headroom writable bytes before it and cfg.tailroom after
 * pkt + len, so the callee may encrypt in place. pkt is valid only during
 * the call. */
typedef void (*wn_kcp_output_fn)(void *ctx, uint8_t *pkt, size_t len);

struct wn_kcp;

/* Creates a core. cfg is copied; out and ctx are kept and called from
 * wn_kcp_flush only. Returns 0 with *out_kcp set (free with wn_kcp_free),
 * WN_EINVAL for a bad cfg (mtu outside 50..65535, a window of 0 or above
 * 65535, dead_link 0, send_limit below one segment, head/tailroom above
 * 4096, no out), or WN_ENOMEM. */
int wn_kcp_new(const struct wn_kcp_cfg *cfg, wn_kcp_output_fn out, void *ctx,
               uint32_t now, struct wn_kcp **out_kcp);

/* Frees the core and everything it holds. NULL is fine. */
void wn_kcp_free(struct wn_kcp *k);

/* Processes one received datagram (borrowed; nothing is kept). Returns 0,
 * or WN_EPROTO if it is malformed: shorter than a header, a wrong conv, an
 * unknown cmd, a len beyond the datagram, a trailing partial header, or in
 * message mode a frg the receive window could never reassemble. Segments
 * before the bad one have been processed; the rest is dropped and counted.
 * A PUSH outside the receive window is dropped and counted (drop_window),
 * not an error; so is a PUSH longer than mss (drop_large), which is not
 * acknowledged either: both ends must use the same mtu, or the receiver
 * the larger. WN_ENOMEM if a segment could not be stored (it is not
 * acknowledged, so the peer sends it again). */
int wn_kcp_input(struct wn_kcp *k, const uint8_t *pkt, size_t len,
                 uint32_t now);

/* Queues data (copied) for sending. Stream mode: accepts as many bytes as
 * wn_kcp_send_space() allows and returns that count (0 when full). Message
 * mode: data is one message, accepted whole or not at all (0); a message
 * longer than 127 segments gives WN_EINVAL. WN_ENOMEM if nothing could be
 * queued for lack of memory. Nothing is sent until wn_kcp_flush. */
ssize_t wn_kcp_send(struct wn_kcp *k, const uint8_t *data, size_t len);

/* Copies received data into buf. Stream mode: up to cap of the bytes
 * available, in order. Message mode: the next whole message, or WN_ENOSPC
 * if it is longer than cap (nothing consumed). Returns the byte count, or
 * WN_EAGAIN if nothing is ready. Reading reopens the receive window; if it
 * had closed, a window update is queued for the next flush. */
ssize_t wn_kcp_recv(struct wn_kcp *k, uint8_t *buf, size_t cap);

/* Bytes the next wn_kcp_recv would return with unlimited cap. */
size_t wn_kcp_readable(const struct wn_kcp *k);

/* Bytes wn_kcp_send would accept now (send_limit minus queued bytes). */
size_t wn_kcp_send_space(const struct wn_kcp *k);

/* Segments sent and not yet acknowledged (the reference's snd_buf). */
size_t wn_kcp_inflight(const struct wn_kcp *k);

/* Segments queued and not yet sent (snd_queue). */
size_t wn_kcp_queued(const struct wn_kcp *k);

/* Sends what can go now, as few datagrams of at most mtu bytes as possible:
 * pending acks, window probe and window tell, new data within
 * min(snd_wnd, peer window, cwnd), and retransmissions that are due (RTO
 * expired, or fast resend after `resend` duplicate acks). */
void wn_kcp_flush(struct wn_kcp *k, uint32_t now);

/* Returns the absolute time (ms, never before now) at which wn_kcp_flush
 * must next be called: now if new data fits the windows, a fast resend is
 * due, a window probe or tell is pending, or acks are piling up (half the
 * ack list, or cfg.ack_every); else the earliest of the next RTO expiry
 * (or an earlier moment at which the core checks it), the next window
 * probe and, when acks wait, the end of their delay (see cfg.ack_every).
 * With nothing to do: now + WN_KCP_IDLE_MS. Calling wn_kcp_flush only
 * when this time is reached sends the same segments as calling it more
 * often, in fewer, fuller datagrams. */
uint32_t wn_kcp_deadline(const struct wn_kcp *k, uint32_t now);

/* The path changed (a new carrier connection, failover): every segment
 * sent and not yet acknowledged is due again at once, with its timeout
 * backoff undone, instead of waiting out timers that grew while the old
 * path was dead. */
void wn_kcp_kick(struct wn_kcp *k, uint32_t now);

/* Returns 1 once some segment has been sent dead_link times without being
 * acknowledged (the peer or the path is gone), else 0. Sticky. */
int wn_kcp_is_dead(const struct wn_kcp *k);

struct wn_kcp_stats {
	uint64_t out_segs; /* PUSH segments sent, retransmissions included */
	uint64_t retrans_segs; /* retransmissions: fast_retrans + lost_segs */
	uint64_t fast_retrans; /* after `resend` duplicate acks */
	uint64_t lost_segs;    /* after an RTO expired */
	uint64_t in_segs;      /* well-formed segments received */
	uint64_t in_bytes;     /* new data bytes stored for the reader */
	uint64_t out_bytes;    /* datagram bytes handed to the output */
	uint64_t drop_bad;     /* malformed datagrams or segments */
	uint64_t drop_dup;     /* PUSH already received */
	uint64_t drop_window;  /* PUSH beyond the receive window */
	uint32_t srtt_ms, rto_ms, cwnd;
	/* Additions to the engine's brief: */
	uint64_t out_pkts, in_pkts; /* datagrams */
	uint64_t drop_conv;    /* datagrams or segments with another conv */
	uint64_t ack_overflow; /* acks not queued: the ack list was full */
	uint64_t probes_sent;  /* WASK segments sent */
	uint64_t seg_allocs;   /* segment mallocs (free list misses) */
	uint64_t seg_mem;      /* bytes of segment memory held now */
	uint64_t drop_large;   /* PUSH longer than mss */
	uint32_t seg_spare;    /* segments on the free list now */
	uint32_t rmt_wnd;      /* the peer's last advertised window */
};

/* Frees the spare segments kept for reuse (for a session gone idle). */
void wn_kcp_shrink(struct wn_kcp *k);

/* Copies the counters into *st. */
void wn_kcp_get_stats(const struct wn_kcp *k, struct wn_kcp_stats *st);

/* Reads the conv of a datagram's first segment, for carriers and engines
 * that route by it. Returns 0, or WN_EPROTO if len < 24. */
int wn_kcp_peek_conv(const uint8_t *pkt, size_t len, uint32_t *conv);

#endif
