/* One TCP connection of a tcp or tls carrier (private to src/carrier/): a
 * uv_tcp_t with a bounded write queue and plain byte callbacks. The tcp
 * client and server build the preamble and framing on top of it.
 *
 * With TLS (wn_tcpconn_tls), GnuTLS sits between the socket and those
 * callbacks: bytes read go through the handshake and then record
 * decryption, and what the owner puts is staged, then encrypted into
 * records of up to 16 KiB at each flush (so a packet's frame header and
 * body share one record, and many packets share one).
 *
 * Callbacks run from the loop only, never from inside a wn_tcpconn_* call:
 * a write that fails to start inside one (the owner is inside a carrier
 * operation, whose rule is not to call the engine back) is reported by
 * on_end from a deferred function, at the end of the loop iteration.
 *
 * Lifetime: the owner embeds struct wn_tcpconn and calls
 * wn_tcpconn_close(); no callback runs after that, and on_free(s) is called
 * once libuv has let go of the handle, from which the owner frees its
 * memory. */
#ifndef WN_CARRIER_TCPCONN_H
#define WN_CARRIER_TCPCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gnutls/gnutls.h>
#include <uv.h>

#include "io/loop.h"
#include "util/bufq.h"

#define WN_TCPCONN_IOV 16

struct wn_tcpconn {
	uv_tcp_t tcp;
	struct wn_loop *loop;
	struct wn_bufq out;
	uv_write_t wreq;
	uv_buf_t wbufs[WN_TCPCONN_IOV];
	size_t wlen;  /* bytes in the write in flight */
	bool writing; /* a uv_write is in flight */
	bool reading;
	bool closed;
	bool want_drain; /* wn_tcpconn_write was refused: on_drain owed */
	uint8_t *rbuf;   /* borrowed from the owner: one read at a time */
	size_t rcap;
	uint64_t bytes_in, bytes_out;
	uint64_t born_ms, last_rx_ms;
	uint64_t last_tx_ms;   /* last time bytes were queued */
	uint64_t tx_wait_ms;   /* first send since the last receive, or 0 */
	bool end_when_flushed; /* on_end(WN_ECLOSED) once the queue is empty */
	int fail_err;          /* what fail_node reports through on_end */
	struct wn_deferred fail_node;
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
	void (*on_data)(struct wn_tcpconn *s, const uint8_t *p, size_t n);
	/* The connection ended (err: WN_ECLOSED for EOF, or why). The owner
	 * calls wn_tcpconn_close. */
	void (*on_end)(struct wn_tcpconn *s, int err);
	/* Room in the write queue again after a refused write. */
	void (*on_drain)(struct wn_tcpconn *s);
	void (*on_free)(struct wn_tcpconn *s);
	/* TLS: the handshake completed. */
	void (*on_tls_up)(struct wn_tcpconn *s);
	/* TLS server: the first bytes are not a TLS record (a plain HTTP
	 * request to the TLS port, say); they are handed over instead. */
	void (*on_not_tls)(struct wn_tcpconn *s, const uint8_t *p, size_t n);
};

/* Puts s under TLS with session tls (taken: freed with the connection),
 * before wn_tcpconn_start. pbuf (pcap >= 16384 bytes, borrowed) receives
 * decrypted records. A client's handshake starts with wn_tcpconn_tls_begin.
 * Returns 0 or WN_ENOMEM. */
int wn_tcpconn_tls(struct wn_tcpconn *s, gnutls_session_t tls, uint8_t *pbuf,
                   size_t pcap);

/* Client: sends the ClientHello (after connect and wn_tcpconn_start). */
void wn_tcpconn_tls_begin(struct wn_tcpconn *s);

/* Initialises s's handle on loop (not yet connected or accepted). The
 * write queue holds at most limit bytes. Returns 0 or a WN_E* code (then
 * nothing needs closing). */
int wn_tcpconn_init(struct wn_tcpconn *s, struct wn_loop *loop, size_t limit,
                    uint8_t *rbuf, size_t rcap);

/* Starts reading (after connect or accept); sets TCP_NODELAY and TCP
 * keepalive (WN_TCP_KEEPALIVE_*). Returns 0 or a WN_E* code. */
int wn_tcpconn_start(struct wn_tcpconn *s);

/* Room in the write queue. */
size_t wn_tcpconn_space(const struct wn_tcpconn *s);

/* Queues n bytes (all or nothing) and starts writing. Returns 0, WN_EAGAIN
 * (no room: on_drain follows), or WN_ECLOSED. */
int wn_tcpconn_write(struct wn_tcpconn *s, const void *p, size_t n);

/* Queues n bytes already known to fit (after wn_tcpconn_space), without
 * starting a write; wn_tcpconn_flush starts it. */
void wn_tcpconn_put(struct wn_tcpconn *s, const void *p, size_t n);
void wn_tcpconn_flush(struct wn_tcpconn *s);

struct wn_carrier_stats;

/* Frames a carrier batch (len bytes of seg-byte packets, the last may be
 * shorter) as records, adds a padding record of 0..pad_max random bytes
 * (pad: pad_max bytes of scratch), counts it in st and starts writing.
 * All or nothing: WN_EAGAIN when the queue has no room for the whole
 * batch (want_drain is set: on_drain follows), else 0. */
int wn_tcpconn_send_batch(struct wn_tcpconn *s, const uint8_t *buf, size_t len,
                          size_t seg, uint32_t pad_max, uint8_t *pad,
                          struct wn_carrier_stats *st);

/* Bytes waiting to be written (staged plaintext included). */
size_t wn_tcpconn_queued(const struct wn_tcpconn *s);

/* Queues an empty padding record (a keepalive the peer skips) and starts
 * writing. Returns 0, WN_EAGAIN (no room; nothing owed) or WN_ECLOSED. */
int wn_tcpconn_ping(struct wn_tcpconn *s);

/* Queues n bytes to go out as they are, outside TLS (an answer to a
 * stranger that does not speak it). Returns 0 or WN_EAGAIN. */
int wn_tcpconn_write_raw(struct wn_tcpconn *s, const void *p, size_t n);

/* Closes the connection (idempotent). */
void wn_tcpconn_close(struct wn_tcpconn *s);

#endif
