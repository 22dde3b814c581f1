/* One TCP connection of a stream carrier (private to src/carrier/): a
 * uv_tcp_t with a bounded write queue and plain byte callbacks. The tcp
 * client and server build the preamble and framing on top of it.
 *
 * With TLS (sconn_tls), GnuTLS sits between the socket and those
 * callbacks: bytes read go through the handshake and then record
 * decryption, and what the owner puts is staged, then encrypted into
 * records of up to 16 KiB at each flush (so a packet's frame header and
 * body share one record, and many packets share one).
 *
 * Lifetime: the owner embeds struct sconn and calls sconn_close(); no
 * callback runs after that, and on_free(s) is called once libuv has let
 * go of the handle, from which the owner frees its memory. */
#ifndef WN_CARRIER_SCONN_H
#define WN_CARRIER_SCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gnutls/gnutls.h>
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
	uint64_t last_tx_ms;   /* last time bytes were queued */
	uint64_t tx_wait_ms;   /* first send since the last receive, or 0 */
	bool end_when_flushed; /* on_end(WN_ECLOSED) once the queue is empty */
	/* TLS (NULL tls: plain TCP) */
	gnutls_session_t tls;
	bool hs_done;
	bool first_read_done;
	const uint8_t *pull_p; /* raw bytes GnuTLS has yet to pull */
	size_t pull_n;
	struct wn_bufq plain; /* staged plaintext, encrypted at flush */
	size_t limit_nominal; /* the write queue limit owners see */
	uint8_t *pbuf;        /* decrypted records land here (borrowed) */
	size_t pcap;
	void *owner;
	/* Bytes arrived (valid during the call). */
	void (*on_data)(struct sconn *s, const uint8_t *p, size_t n);
	/* The connection ended (err: WN_ECLOSED for EOF, or why). The owner
	 * calls sconn_close. */
	void (*on_end)(struct sconn *s, int err);
	/* Room in the write queue again after a refused write. */
	void (*on_drain)(struct sconn *s);
	void (*on_free)(struct sconn *s);
	/* TLS: the handshake completed. */
	void (*on_tls_up)(struct sconn *s);
	/* TLS server: the first bytes are not a TLS record (a plain HTTP
	 * request to the TLS port, say); they are handed over instead. */
	void (*on_not_tls)(struct sconn *s, const uint8_t *p, size_t n);
};

/* Puts s under TLS with session tls (taken: freed with the connection),
 * before sconn_start. pbuf (pcap >= 16384 bytes, borrowed) receives
 * decrypted records. A client's handshake starts with sconn_tls_begin.
 * Returns 0 or WN_ENOMEM. */
int sconn_tls(struct sconn *s, gnutls_session_t tls, uint8_t *pbuf,
              size_t pcap);

/* Client: sends the ClientHello (after connect and sconn_start). */
void sconn_tls_begin(struct sconn *s);

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

struct wn_carrier_stats;

/* Frames a carrier batch (len bytes of seg-byte packets, the last may be
 * shorter) as records, adds a padding record of 0..pad_max random bytes
 * (pad: pad_max bytes of scratch), counts it in st and starts writing.
 * All or nothing: WN_EAGAIN when the queue has no room for the whole
 * batch (want_drain is set: on_drain follows), else 0. */
int sconn_send_batch(struct sconn *s, const uint8_t *buf, size_t len,
                     size_t seg, uint32_t pad_max, uint8_t *pad,
                     struct wn_carrier_stats *st);

/* Bytes waiting to be written (staged plaintext included). */
size_t sconn_queued(const struct sconn *s);

/* Queues an empty padding record (a keepalive the peer skips) and starts
 * writing. Returns 0, WN_EAGAIN (no room; nothing owed) or WN_ECLOSED. */
int sconn_ping(struct sconn *s);

/* Queues n bytes to go out as they are, outside TLS (an answer to a
 * stranger that does not speak it). Returns 0 or WN_EAGAIN. */
int sconn_write_raw(struct sconn *s, const void *p, size_t n);

/* Closes the connection (idempotent). */
void sconn_close(struct sconn *s);

#endif
