/* Two smux cores joined back to back, for tests: what one pulls is fed to
 * the other, cut at random points, until both are quiet. Each side records
 * what its callbacks saw per stream and can send a verifiable byte pattern
 * on streams (wn_sp_pat: byte `off` of stream `sid`), so tests check data
 * without storing it. Deterministic for a given seed. */
#ifndef WN_TEST_SMUXPAIR_H
#define WN_TEST_SMUXPAIR_H

#include <stddef.h>
#include <stdint.h>

#include "core/smux.h"

/* What one side saw of one stream. */
struct wn_sp_rx {
	uint32_t sid;
	uint64_t got;      /* bytes delivered by on_data */
	uint64_t consumed; /* bytes this side reported consumed */
	int open;          /* on_open calls */
	int fin;           /* on_fin calls */
	int reset;         /* on_reset calls */
	uint32_t reason;   /* of the last on_reset */
	int writable;      /* on_writable calls */
	int bad;           /* bytes that did not match the pattern */
	int after_end;     /* events after on_fin/on_reset that must not be */
};

/* A pattern this side sends on a stream. */
struct wn_sp_tx {
	uint32_t sid;
	uint64_t total; /* bytes to send */
	uint64_t off;   /* bytes the core took so far */
	int fin;        /* shut down after the last byte */
	int done;       /* shut down (or gave up: stream closed) */
	int blocked;    /* a short write: wait for on_writable */
};

struct wn_sp_side {
	struct wn_smux *m;
	struct wn_sp_rx *rx;
	size_t nrx;
	struct wn_sp_tx *tx;
	size_t ntx;
	int consume;     /* report data consumed as it arrives */
	uint32_t stall;  /* ... except on this stream (0: none) */
	uint32_t refuse; /* on_open returns this (0: accept) */
	int forget_done; /* forget a stream once both directions ended */
};

struct wn_sp {
	struct wn_sp_side a; /* client */
	struct wn_sp_side b; /* server */
	uint64_t rng;
	size_t max_pull; /* largest pull; each pull takes 16..max_pull */
	uint8_t *buf;    /* WN_SP_BUF bytes for pulls */
};

#define WN_SP_BUF (1 << 17)

/* Byte `off` of the pattern on stream sid. */
uint8_t wn_sp_pat(uint32_t sid, uint64_t off);

/* A small deterministic generator (xorshift64*). */
uint64_t wn_sp_rand(uint64_t *state);

/* Creates both cores (a from ca, b from cb, with the recording callbacks),
 * both consuming as data arrives. Returns 0 or the wn_smux_new error. */
int wn_sp_init(struct wn_sp *p, const struct wn_smux_cfg *ca,
               const struct wn_smux_cfg *cb, uint64_t seed);
void wn_sp_free(struct wn_sp *p);

/* The record of sid on side d (created empty if new). */
struct wn_sp_rx *wn_sp_rx(struct wn_sp_side *d, uint32_t sid);

/* Sends `total` pattern bytes on sid from side d, then a FIN if fin. */
void wn_sp_send(struct wn_sp_side *d, uint32_t sid, uint64_t total, int fin);

/* Opens a stream on d and sends on it as wn_sp_send. Returns its id, or 0
 * if wn_smux_open failed. */
uint32_t wn_sp_open(struct wn_sp_side *d, uint64_t total, int fin);

/* Writes what the senders of d can, shutting streams down when done. As
 * an engine would, a sender that had a short write waits for on_writable.
 * Returns the bytes the core took. */
size_t wn_sp_feed(struct wn_sp_side *d);

/* One pull of at most cap bytes from `from`, fed to `to` in random pieces.
 * Returns the bytes moved; *rc gets the first input error (or 0). */
size_t wn_sp_xfer(struct wn_sp *p, struct wn_sp_side *from,
                  struct wn_sp_side *to, size_t cap, int *rc);

/* Feeds and transfers both ways until neither side has anything to send.
 * Returns 0, or the first input error. */
int wn_sp_pump(struct wn_sp *p);

#endif
