/* One TCP connection of a stream carrier (private to src/carrier/): a
 * uv_tcp_t with a bounded write queue and plain byte callbacks. The tcp
 * client and server build the preamble and framing on top of it.
 *
 * Lifetime: the owner embeds struct sconn and calls sconn_close(); no
 * callback runs after that, and on_free(s) is called once libuv has let
 * go of the handle, from which the owner frees its memory. */
#ifndef WN_CARRIER_SCONN_H
#define WN_CARRIER_SCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "io/loop.h"
#include "util/bufq.h"

#define SCONN_IOV 16

struct sconn {
	uv_tcp_t tcp;
	struct wn_loop *loop;
	struct wn_bufq out;
	uv_write_t wreq;
	uv_buf_t wbufs[SCONN_IOV];
	size_t wlen;  /* bytes in the write in flight */
	bool writing; /* a uv_write is in flight */
	bool reading;
	bool closed;
	bool want_drain; /* sconn_write was refused: on_drain owed */
	uint8_t *rbuf;   /* borrowed from the owner: one read at a time */
	size_t rcap;
	uint64_t bytes_in, bytes_out;
	uint64_t born_ms, last_rx_ms;
	uint64_t tx_wait_ms; /* first send since the last receive, or 0 */
	void *owner;
	/* Bytes arrived (valid during the call). */
	void (*on_data)(struct sconn *s, const uint8_t *p, size_t n);
	/* The connection ended (err: WN_ECLOSED for EOF, or why). The owner
	 * calls sconn_close. */
	void (*on_end)(struct sconn *s, int err);
	/* Room in the write queue again after a refused write. */
	void (*on_drain)(struct sconn *s);
	void (*on_free)(struct sconn *s);
};

/* Initialises s's handle on loop (not yet connected or accepted). The
 * write queue holds at most limit bytes. Returns 0 or a WN_E* code (then
 * nothing needs closing). */
int sconn_init(struct sconn *s, struct wn_loop *loop, size_t limit,
               uint8_t *rbuf, size_t rcap);

/* Starts reading (after connect or accept); sets TCP_NODELAY. Returns 0 or
 * a WN_E* code. */
int sconn_start(struct sconn *s);

/* Room in the write queue. */
size_t sconn_space(const struct sconn *s);

/* Queues n bytes (all or nothing) and starts writing. Returns 0, WN_EAGAIN
 * (no room: on_drain follows), or WN_ECLOSED. */
int sconn_write(struct sconn *s, const void *p, size_t n);

/* Queues n bytes already known to fit (after sconn_space), without
 * starting a write; sconn_flush starts it. */
void sconn_put(struct sconn *s, const void *p, size_t n);
void sconn_flush(struct sconn *s);

/* Closes the connection (idempotent). */
void sconn_close(struct sconn *s);

#endif
