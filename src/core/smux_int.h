/* Internals of the smux core shared by smux.c (session, stream table, the
 * stream calls), smux_in.c (the frame parser) and smux_out.c (the frame
 * scheduler behind wn_smux_pull). Nothing outside src/core/smux*.c includes
 * this. */
#ifndef WN_CORE_SMUX_INT_H
#define WN_CORE_SMUX_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/smux.h"
#include "util/bufq.h"

/* Chunk size of a stream's send queue: a quarter of the default frame, so
 * a short write does not pin a large chunk. */
#define WN_SMUX_CHUNK 8192

/* Drained streams that may keep their send-queue chunks for reuse, at
 * most: the least recently drained beyond it give theirs back at each pull.
 * Freeing at every drain would make a busy stream malloc and free a chunk
 * per frame, which glibc answers with brk calls and page faults
 * (docs/performance.md, "smux: chunk reuse"). */
#define WN_SMUX_DRAINED_MAX 256

/* Refusals (RST or FIN for a SYN we did not accept) waiting to be sent, at
 * most. Each takes 8 bytes here; the engine pulls between inputs, so only a
 * peer opening streams in a flood while we are not sending comes near it. */
#define WN_SMUX_REFUSED_MAX 65536

/* An intrusive doubly linked list node; next is NULL when not on a list.
 * A list is a sentinel node whose next/prev point at itself when empty. */
struct wn_smux_link {
	struct wn_smux_link *prev;
	struct wn_smux_link *next;
};

/* Stream flags. The two directions are tracked separately (ours: FIN_QUEUED
 * then FIN_SENT; the peer's: FIN_RECV) and RESET ends both. SYN, UPD and RST
 * mark control frames owed to the peer. */
enum {
	WN_SMUX_SF_SYN = 1u << 0,        /* our SYN is to be sent */
	WN_SMUX_SF_UPD = 1u << 1,        /* an UPD is to be sent */
	WN_SMUX_SF_RST = 1u << 2,        /* our reset (RST or FIN) to be sent */
	WN_SMUX_SF_FIN_QUEUED = 1u << 3, /* shut down: FIN after the data */
	WN_SMUX_SF_FIN_SENT = 1u << 4,   /* our direction is over */
	WN_SMUX_SF_FIN_RECV = 1u << 5,   /* the peer's direction is over */
	WN_SMUX_SF_RESET = 1u << 6,      /* reset by either side */
	WN_SMUX_SF_FORGOTTEN = 1u << 7,  /* the engine let go of it */
	WN_SMUX_SF_WANT_WR = 1u << 8,    /* a short write awaits on_writable */
	WN_SMUX_SF_STOP = 1u << 9,       /* native: an RST follows our FIN */
};

struct wn_smux_stream {
	struct wn_smux_link ctrl;    /* on m->ctrl while SYN/UPD/RST is owed */
	struct wn_smux_link ready;   /* on m->ready while data or FIN can go */
	struct wn_smux_link wr;      /* on m->writable until on_writable */
	struct wn_smux_link drained; /* on m->drained: chunks kept, no data */
	struct wn_bufq sendq;
	uint64_t recv;     /* PSH bytes delivered to the engine */
	uint64_t consumed; /* of those, reported consumed */
	uint32_t sid;
	uint32_t flags;
	uint32_t sent;          /* PSH bytes sent, mod 2^32 as smux counts */
	uint32_t peer_consumed; /* from the peer's latest UPD */
	uint32_t peer_window;   /* idem; WN_SMUX_INITIAL_WINDOW before */
	uint32_t upd_incr;      /* consumed since the last UPD was queued */
	/* Under a receive budget: the window the peer was last told (or
	 * assumes), counted in m->granted; 0 once the peer's direction is
	 * over. */
	uint32_t granted;
	uint32_t reason; /* of our reset, while SF_RST or SF_STOP */
	uint32_t turn;   /* bytes sent in its current round-robin turn */
};

struct wn_smux_slot {
	uint32_t sid;
	struct wn_smux_stream *s;
};

struct wn_smux_refusal {
	uint32_t sid;
	uint32_t reason;
};

enum wn_smux_in_state {
	WN_SMUX_IN_HDR,  /* collecting a header */
	WN_SMUX_IN_CTRL, /* collecting an UPD or RST payload */
	WN_SMUX_IN_DATA, /* passing a PSH payload through */
};

struct wn_smux {
	struct wn_smux_cfg cfg;
	struct wn_smux_cb cb;

	/* Streams sorted by id: binary search per frame, and ids of one side
	 * arrive in increasing order, so inserts append. */
	struct wn_smux_slot *tab;
	unsigned nstreams;
	unsigned tabcap;

	struct wn_smux_link ctrl;     /* streams owing a control frame */
	struct wn_smux_link ready;    /* round-robin order for data */
	struct wn_smux_link writable; /* for on_writable after a pull */
	struct wn_smux_link drained;  /* LRU of streams holding idle chunks */
	unsigned ndrained;

	struct wn_smux_refusal *refused; /* FIFO [refused_head, nrefused) */
	size_t refused_head;
	size_t nrefused;
	size_t refused_cap;

	uint32_t next_id; /* last id we opened (smux's nextStreamID) */
	int goaway;       /* our ids are exhausted */
	int nop;          /* a NOP is to be sent */
	int err;          /* sticky session error */
	const char *why;  /* what broke the session (static string) */
	int in_cb;        /* inside a callback: input and pull refuse */
	size_t recv_pending;
	size_t granted; /* the streams' windows (stream.granted), summed */

	/* Frame parser. */
	enum wn_smux_in_state in_state;
	struct wn_smux_hdr in_hdr;
	uint8_t in_buf[WN_SMUX_HDR_LEN];
	size_t in_have; /* bytes collected in in_buf */
	size_t in_left; /* PSH payload bytes still to come */
};

/* ---- Lists ---- */

static inline void wn_smuxi_list_init(struct wn_smux_link *l)
{
	l->prev = l;
	l->next = l;
}

static inline int wn_smuxi_list_empty(const struct wn_smux_link *l)
{
	return l->next == l;
}

static inline int wn_smuxi_linked(const struct wn_smux_link *n)
{
	return n->next != NULL;
}

static inline void wn_smuxi_unlink(struct wn_smux_link *n)
{
	if (!n->next)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = NULL;
	n->next = NULL;
}

static inline void wn_smuxi_push_tail(struct wn_smux_link *l,
                                      struct wn_smux_link *n)
{
	n->prev = l->prev;
	n->next = l;
	l->prev->next = n;
	l->prev = n;
}

#define WN_SMUX_OF(ptr, member)                            \
	((struct wn_smux_stream *)((char *)(ptr)-offsetof( \
	    struct wn_smux_stream, member)))

/* ---- Shared by the three files (smux.c) ---- */

/* The stream with id sid, or NULL. O(log n). */
struct wn_smux_stream *wn_smuxi_find(const struct wn_smux *m, uint32_t sid);

/* Creates stream sid and puts it in the table. Returns it, or NULL on
 * allocation failure. The caller has checked that sid is not present. */
struct wn_smux_stream *wn_smuxi_add(struct wn_smux *m, uint32_t sid);

/* Removes s from the table and every list and frees it with its queue,
 * settling recv_pending. No callback. */
void wn_smuxi_destroy(struct wn_smux *m, struct wn_smux_stream *s);

/* Frees s if the engine forgot it and nothing is owed to the peer any more.
 * Returns 1 if it was freed. */
int wn_smuxi_reap(struct wn_smux *m, struct wn_smux_stream *s);

/* Puts s on or takes it off the control and ready lists to match its
 * flags, queue and send window. Call after any change to them. */
void wn_smuxi_sched(struct wn_smux *m, struct wn_smux_stream *s);

/* Whether a receive budget shapes the windows we advertise. */
int wn_smuxi_budgeted(const struct wn_smux *m);

/* Sets the window counted for s (session and pool) to w. */
void wn_smuxi_grant(struct wn_smux *m, struct wn_smux_stream *s, uint32_t w);

/* The window for the UPD s is about to send (cfg.stream_window without
 * a budget; see smux.h, Flow control), counted for s. */
uint32_t wn_smuxi_upd_window(struct wn_smux *m, struct wn_smux_stream *s);

/* A new stream's first UPD, if it owes one: at once when our window is
 * larger than the one the peer assumes, or, under a budget, smaller. */
void wn_smuxi_open_window(struct wn_smux *m, struct wn_smux_stream *s);

/* Bytes s may send now under its v2 window (SIZE_MAX in v1). */
size_t wn_smuxi_window(const struct wn_smux *m, const struct wn_smux_stream *s);

/* Drops s's queued data and marks it reset; with send != 0 our reset is
 * owed to the peer (unless its SYN never left, or, in compat mode, our FIN
 * already did). */
void wn_smuxi_do_reset(struct wn_smux *m, struct wn_smux_stream *s, int send,
                       uint32_t reason);

/* Notes that s's send queue just drained but may still hold chunks: s
 * becomes the most recently drained stream. */
void wn_smuxi_drained(struct wn_smux *m, struct wn_smux_stream *s);

/* Frees the chunks of drained streams, least recent first, until at most
 * keep of them hold any. */
void wn_smuxi_trim(struct wn_smux *m, unsigned keep);

/* Queues an RST (compat: FIN) for a refused sid. Returns 0 or WN_ENOMEM
 * (also when WN_SMUX_REFUSED_MAX are already waiting). */
int wn_smuxi_refuse(struct wn_smux *m, uint32_t sid, uint32_t reason);

#endif
