/* The QUIC engine: ngtcp2 0.12 + GnuTLS, behind this one module (a later move
 * to ngtcp2 1.x touches src/engine/quic*.c only). Its public face is its
 * row of the engine table, wn_quic_engine (engine_ops.h); this header is
 * private to it.
 *
 * TLS 1.3 with the node identities as raw public keys pinned on both sides:
 * the client accepts only the server key it was given, the server only the
 * client keys it lists. One QUIC bidirectional stream per tunnelled stream;
 * one DATAGRAM frame (RFC 9221) per flow message of the flow base.
 *
 * The engine runs over any carrier (carrier.h). The application opens the
 * carrier with the engine's handler (wn_engine_handler) and hands it over.
 *
 * Client: keeps one connection to the server up. Keepalive PINGs every
 * keepalive_ms; if nothing is heard for idle_timeout_ms the connection is
 * declared dead, its streams are reset (WN_STREAM_SESSION_LOST), and the
 * client reconnects with backoff; streams opened meanwhile wait, buffered,
 * for the next connection.
 *
 * Server: accepts connections from the listed client keys only; each
 * client's connection is a tunnel; new streams go to the accept handler
 * (the dialer). Packets that are not QUIC for one of its connections, or an
 * Initial that starts one with the client's proof of the server key in its
 * token (crypto/quicproof.h; the client always sends it) or with a Retry
 * token it issued, are dropped without an answer. Past the caps on
 * unvalidated handshakes a proven Initial gets a Retry (quic.c,
 * server_admit; docs/wire-format.md section 1).
 *
 * Private to the QUIC engine (quic.c: client and server endpoints;
 * quic_conn.c: one connection's life, read path, migration and timer;
 * quic_cb.c: its ngtcp2 callbacks; quic_tls.c: its TLS session;
 * quic_write.c: its write pass; quic_stream.c: its streams;
 * quic_dgram.c: its datagrams, the flow base's transport). Nothing
 * outside src/engine/quic*.c includes this or ngtcp2, but for unit tests
 * of the engine's defaults.
 *
 * Naming: a function one quic*.c file calls in another is named wn__q...
 * (wn__qconn_* for a connection, wn__qstream_* for a stream, wn__quic_*
 * for the rest), in libuv's uv__ style: the project's prefix says whose
 * symbol it is in the linked binary, the double underscore that it is the
 * engine's internal and no API. Functions private to one file are static
 * and carry no prefix. */
#ifndef WN_ENGINE_QUIC_INT_H
#define WN_ENGINE_QUIC_INT_H

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "core/prefixcount.h"
#include "core/streamhdr.h"
#include "crypto/quicproof.h"
#include "crypto/tls_rawpk.h"
#include "engine/engine_ops.h"
#include "engine/flow_base.h"
#include "io/loop.h"
#include "util/bufq.h"
#include "util/cidmap.h"
#include "util/list.h"
#include "util/log.h"

#define QUIC_SCID_LEN 16
#define QUIC_DCID_LEN 18
#define QUIC_GSO_MAX 64      /* the kernel's UDP_SEGMENT limit */
#define QUIC_SEND_IOV 4      /* iovecs of stream data offered per packet */
#define QUIC_ACK_THRESH 8    /* ACK at once after this many packets */
#define QUIC_ALPN "warren/1" /* also keeps other QUIC clients out */
/* The datagram queue of a connection (quic_dgram.c), allocated with its
 * first datagram: a ring of QUIC_DGRAM_BYTES holding at most
 * QUIC_DGRAM_SLOTS messages, each stored in its own length. It takes a
 * whole receive burst of the front ends (io/dgram.h reads up to 256
 * datagrams per wakeup) of small or mid-sized datagrams before the write
 * pass runs. The largest message is QUIC_DGRAM_SLOT: 1500 bytes of
 * datagram with its flow header and target fit one, so a carrier with
 * large packets needs no fragments. */
#define QUIC_DGRAM_SLOTS 1024
#define QUIC_DGRAM_BYTES (256 * 1024)
#define QUIC_DGRAM_SLOT 2048
/* The advertised max_datagram_frame_size: any frame a packet can hold. */
#define QUIC_DGRAM_FRAME_MAX 65535

struct wn_quic_opts {
	struct wn_loop *loop;         /* borrowed */
	struct wn_log *log;           /* borrowed */
	const struct wn_identity *id; /* borrowed; outlives the engine */
	uint32_t idle_timeout_ms;     /* dead after this long without packets */
	uint32_t keepalive_ms;        /* client: PING when idle; 0: none */
	uint32_t handshake_timeout_ms; /* client: give up a connect attempt */
	size_t stream_send_limit; /* bytes buffered per stream, unacked incl. */
	uint64_t stream_window;   /* initial receive window per stream */
	uint64_t stream_window_max; /* autotuning limit per stream */
	uint64_t conn_window_max;   /* autotuning limit per connection */
	uint64_t max_streams;       /* concurrent streams per connection */
	uint32_t sessions_per_key;  /* server: connections per client key */
	uint32_t streams_per_key;   /* server: accepted streams per key */
	size_t session_buffer; /* send budget per connection (stream_base.h) */
	size_t total_buffer;   /* send budget over the endpoint */
	uint32_t failover_ms;  /* client, several paths: move after this long
	                         without progress (default 3 s) */
	uint32_t probe_ms;     /* client: try the first path again this often
	                         while on another (default 10 s) */
	/* The engine's one clock, in nanoseconds: every timestamp ngtcp2 sees
	 * and every millisecond the engine keeps (last packet, stream waits,
	 * failover) comes from it. NULL: wn_mono_ns, with milliseconds from
	 * the loop's cached time (both libuv's monotonic clock). A test runs
	 * the engine in virtual time with its own. */
	uint64_t (*clock_ns)(void *ctx);
	void *clock_ctx;
	/* ngtcp2's randomness for non-cryptographic choices (BBR's probing
	 * phase, which changes timing). NULL: libsodium. A virtual-time test
	 * passes a seeded one so that a seed always gives the same run. Keys,
	 * connection IDs and tokens always come from libsodium. */
	void (*rand)(void *ctx, uint8_t *buf, size_t len);
	void *rand_ctx;
};

/* Fills in defaults (loop, log and id stay NULL). */
void wn_quic_opts_default(struct wn_quic_opts *o);

/* Counters for logs and metrics. */
struct wn_quic_stats {
	uint64_t conns_opened, conns_closed;
	uint64_t streams_opened, streams_closed;
	uint64_t pkts_dropped; /* not for any connection, or unparseable */
	uint64_t auth_failures;
	/* Packets with stream data that ngtcp2 declared lost (so sent
	 * again), summed over the streams that closed. */
	uint64_t stream_pkts_lost;
	uint64_t retries_sent; /* server: Retry packets (address validation) */
	/* DATAGRAM frames written and received, and flow messages dropped:
	 * the oldest in a full queue, or one the path can no longer carry. */
	uint64_t dgrams_sent, dgrams_recv;
	uint64_t dgrams_drop_queue, dgrams_drop_size;
};

/* Carrier failover. A client may have several ways to its server, tried
 * in order: add_path adds each, then go connects (engine_ops.h).
 * Connections start on the first path. The policy is core/failover.h,
 * shared with the KCP engine; here are its mechanics. When the active
 * path makes no progress (bytes in flight and nothing heard for
 * failover_ms, or its stream carrier down that long) the connection
 * migrates at once to the next path that is up, keeping every stream; while
 * not on the first path it probes the first every probe_ms (ngtcp2 path
 * validation) and moves back when it answers. Packets never exceed the
 * smallest carrier's max_packet. */
#define WN_QUIC_MAX_PATHS 8

/* The constructors behind the engine's row (wn_quic_engine), from full
 * options instead of the engine-neutral configuration: for a test that
 * sets what that configuration has no field for (clock_ns). conf gives the
 * keys, the accept handler and the events; its tuning is ignored. Return
 * 0 or a WN_E* code. */
int wn__quic_client_new(const struct wn_quic_opts *o,
                        const struct wn_engine_conf *conf,
                        struct wn_engine **out);
int wn__quic_server_new(const struct wn_quic_opts *o,
                        const struct wn_engine_conf *conf,
                        struct wn_engine **out);

struct qconn;
struct qdgram_ring; /* quic_dgram.c */
struct qstream;

/* What the client and the server share: configuration, TLS credentials,
 * the transmit buffer and the hooks that tell the endpoint about its
 * connections. */
struct qep {
	struct wn_engine base; /* the engine table's handle (engine_ops.h) */
	struct wn_quic_opts o;
	struct wn_tls_creds creds;
	int is_server;
	uint8_t reset_secret[32];
	/* The key of the proof of the server key in a client's first Initial
	 * token (crypto/quicproof.h): the client's from the server key it
	 * pins, the server's from its own. */
	uint8_t proof_key[WN_QPROOF_KEY_LEN];
	uint8_t *txbuf;
	size_t txcap;
	struct wn_quic_stats stats;
	struct wn_list conns;
	uint64_t conn_seq;
	struct wn_ratelimit rl_drop, rl_err;
	/* server */
	struct wn_cidmap cids;
	uint8_t (*clients)[WN_KEY_LEN];
	size_t nclients;
	/* per client key (nclients each): live verified connections, and
	 * accepted streams (the stream base's count, stream_base.h) */
	uint32_t *key_sessions, *key_streams;
	struct wn_accept_handler ah;
	/* client */
	uint8_t server_key[WN_KEY_LEN];
	size_t max_pkt;   /* if not 0: no packet larger, on any path */
	int stream_paths; /* some path has a fixed MTU: no PMTUD */
	/* Hooks from a connection to its endpoint. */
	void (*conn_up)(struct qep *ep, struct qconn *qc);
	void (*conn_dead)(struct qep *ep, struct qconn *qc);
	void (*streams_available)(struct qep *ep, struct qconn *qc);
	/* The connection now sends on `carrier` (a validated migration). */
	void (*path_moved)(struct qep *ep, struct qconn *qc,
	                   struct wn_carrier *carrier);
	/* What the endpoint's streams share (set up with the first). */
	struct wn_stream_env senv;
};

enum qconn_state {
	QC_HANDSHAKE,
	QC_UP,
	QC_DEAD, /* streams failed; waiting to be freed */
};

struct qconn {
	struct wn_tunnel tunnel; /* first: the server hands this out */
	struct qep *ep;
	ngtcp2_conn *conn;
	gnutls_session_t tls;
	ngtcp2_crypto_conn_ref ref;
	/* The carrier of the current path, and that path's addresses. Other
	 * paths carry their carrier in ngtcp2_path.user_data. */
	struct wn_carrier *carrier;
	struct sockaddr_storage local, remote;
	socklen_t llen, rlen;
	struct wn_timer timer;
	struct wn_deferred dnode; /* flush, or free once dead */
	struct wn_list link;      /* in ep->conns */
	struct wn_list streams;   /* every attached stream */
	/* Ended streams whose sent data ngtcp2 may still retransmit: ngtcp2
	 * keeps pointers into a stream's data until it is acknowledged or
	 * the stream closes, so sendq lives until cb_stream_close (or the
	 * connection's death). */
	struct wn_list lingering;
	struct wn_list ready; /* streams with data or a FIN to send */
	enum qconn_state state;
	uint64_t write_epoch;
	uint64_t unpaced; /* bytes written since the last pacing update */
	uint64_t id;
	int carrier_blocked; /* wait for the carrier's writable() */
	int stops_owed;      /* a released stream's FIN left in this pass */
	uint64_t last_rx_ms; /* engine time of the last packet taken */
	int peer_ok;
	int key_counted; /* server: up, counted in ep->key_sessions */
	uint8_t peer_key[WN_KEY_LEN];
	/* Server: what admission counts this connection as until its
	 * handshake ends (QC_ADMIT_* bits, quic.c), and its source prefix. */
	unsigned admit;
	struct wn_prefix prefix;
	/* Where its DATAGRAM frames go: the server connection's own flows
	 * (in tunnel.flows, created when the handshake ends), or the
	 * client's, which outlive its connections. NULL: none yet. */
	struct wn_flows *flows;
	/* Flow messages waiting for the write pass: a ring (quic_dgram.c);
	 * dg_head and dg_count index its messages, dg_wr is where the next
	 * one's bytes go. dg_turn: the next packet starts with a datagram
	 * even though streams have data, so that neither waits behind the
	 * other (quic_write.c). */
	struct qdgram_ring *dg;
	unsigned dg_head, dg_count;
	uint32_t dg_wr;
	int dg_turn;
	char why[160]; /* why it died, for logs */
};

struct qstream {
	struct wn_stream base; /* first: the stream base owns the semantics */
	struct qep *ep;
	struct qconn *qc;     /* NULL while pending or once ended */
	int64_t sid;          /* -1 until attached to a connection */
	struct wn_bufq sendq; /* unacked and unsent data */
	size_t sent;          /* bytes at the head of sendq already sent */
	uint64_t blocked_epoch;
	uint64_t opened_ms; /* engine time at open, to time out pending */
	unsigned fin_wanted : 1, fin_sent : 1,
	    stop_owed : 1, /* released: STOP_SENDING after our FIN */
	    lingering : 1, /* ended, but ngtcp2 may still read sendq */
	    free_owed : 1; /* the base freed it while lingering */
	/* conn->streams, conn->lingering or the client's pending list */
	struct wn_list link;
	struct wn_list rlink; /* conn->ready */
};

/* The endpoint behind an engine handle, a client's or a server's: for the
 * engine's files, and for a test of its internals (the counters in
 * ep->stats, a virtual clock's deadlines). */
static inline struct qep *wn__quic_ep(struct wn_engine *e)
{
	return wn_container_of(e, struct qep, base);
}

static inline const struct qep *wn__quic_cep(const struct wn_engine *e)
{
	return wn_container_of(e, const struct qep, base);
}

/* ---- quic_conn.c ---------------------------------------------------- */

/* Creates a client connection to remote over carrier. NULL on failure. */
struct qconn *wn__qconn_new_client(struct qep *ep, struct wn_carrier *carrier,
                                   const struct sockaddr *remote,
                                   socklen_t rlen);

/* Creates a server connection for an accepted Initial. odcid: NULL for an
 * Initial admitted on the client's proof alone; after a Retry, the DCID of
 * the client's first Initial, from the verified Retry token in hd (the
 * address is then validated). NULL on failure. */
struct qconn *wn__qconn_new_server(struct qep *ep, struct wn_carrier *carrier,
                                   const struct sockaddr *remote,
                                   socklen_t rlen, const ngtcp2_pkt_hd *hd,
                                   const ngtcp2_cid *odcid);

/* Feeds one packet, received on carrier, to the connection. Kills it on a
 * fatal error. */
void wn__qconn_read(struct qconn *qc, struct wn_carrier *carrier,
                    const struct sockaddr *from, socklen_t fromlen,
                    const uint8_t *pkt, size_t len);

/* Asks for a write pass at the end of this loop iteration. */
void wn__qconn_schedule(struct qconn *qc);

/* The carrier's local address changed (a stream carrier's new
 * connection): moves an established connection to the new path at once
 * (ngtcp2_conn_initiate_immediate_migration), which also starts fresh RTT
 * and congestion state for it. Returns 0, or a WN_E* code when it could not
 * migrate (then the connection carries on, on its old path). */
int wn__qconn_migrate(struct qconn *qc);

/* Client: moves the connection to carrier's path (its local address, the
 * server at remote). immediate: at once (the current path is failing);
 * else only once the new path is validated (probing a path to move back
 * to; path_moved reports success). Returns 0 or a WN_E* code. */
int wn__qconn_move(struct qconn *qc, struct wn_carrier *carrier,
                   const struct sockaddr *remote, socklen_t rlen,
                   int immediate);

/* Bytes sent and not yet acknowledged or declared lost. */
uint64_t wn__qconn_in_flight(struct qconn *qc);

/* Sends CONNECTION_CLOSE (when possible) and kills the connection. */
void wn__qconn_close(struct qconn *qc, const char *why);

/* Fails every stream with WN_STREAM_SESSION_LOST, tells the endpoint, and
 * frees the connection later. Idempotent. */
void wn__qconn_kill(struct qconn *qc, const char *why);

/* Fails the connection on a fatal ngtcp2 error: tells the peer why (TLS
 * alert or transport error) when it still can, then kills it. */
void wn__qconn_fail(struct qconn *qc, int liberr);

/* Arms the connection's timer for ngtcp2's next expiry, as seen at now. */
void wn__qconn_arm_timer(struct qconn *qc, ngtcp2_tstamp now);

/* Virtual time. With an injected clock the engine arms no loop timer for
 * its connections' deadlines (the loop's time is not the clock's): the
 * clock's owner, a test, reads the endpoint's earliest ngtcp2 deadline
 * over its connections with wn__quic_ep_next_expiry (in the clock's
 * nanoseconds; UINT64_MAX: none), moves its clock there and calls
 * wn__quic_ep_expire, which handles every deadline due then and runs the
 * write passes; wn__quic_ep(e) gives the endpoint of a client or a
 * server. Packets in and deferred work still come through the carrier's
 * handler and the loop, read at the clock's now. The client's reconnect
 * backoff and its multi-path health check stay on loop timers: a
 * virtual-time run uses one path and expects no reconnect. */
uint64_t wn__quic_ep_next_expiry(const struct qep *ep);
void wn__quic_ep_expire(struct qep *ep);

/* ---- quic_cb.c ------------------------------------------------------ */

/* Fills the ngtcp2 callback table of a client or a server connection. */
void wn__qconn_fill_callbacks(ngtcp2_callbacks *cb, int server);

/* ---- quic_tls.c ----------------------------------------------------- */

/* Sets up the connection's GnuTLS session for ngtcp2 (raw public keys,
 * the warren ALPN). Returns 0 or a WN_E* code. */
int wn__qconn_setup_tls(struct qconn *qc);

/* ---- quic_write.c --------------------------------------------------- */

/* The write pass: writes what ngtcp2 and the ready streams have, in
 * GSO-shaped batches, tells the pacer, and re-arms the timer. */
void wn__qconn_flush(struct qconn *qc);

/* The write pass at a time the caller already read from the clock. */
void wn__qconn_flush_at(struct qconn *qc, ngtcp2_tstamp now);

/* Sends len bytes of seg-sized packets to path (the current carrier and
 * remote when path names none). Returns wn_carrier_send's result; notes a
 * blocked carrier. */
int wn__qconn_send_batch(struct qconn *qc, const ngtcp2_path *path,
                         const uint8_t *buf, size_t len, size_t seg);

/* ---- quic_dgram.c --------------------------------------------------- */

/* The largest flow message one DATAGRAM frame carries on the connection's
 * current path now: the peer's max_datagram_frame_size and the path's
 * packet size less the short header, the AEAD tag and the frame's own
 * header; 0 before the handshake ends or when the peer takes none. */
size_t wn__qdgram_max(struct qconn *qc);

/* Queues one flow message for the write pass (copied): 0, WN_EMSGSIZE
 * when it is larger than wn__qdgram_max, WN_EAGAIN when the connection
 * is not up (or the queue cannot be allocated). A full queue drops its
 * oldest message (counted) to take the new one. */
int wn__qdgram_queue(struct qconn *qc, const uint8_t *msg, size_t len);

/* The oldest queued message (NULL when none), and taking it off. */
const uint8_t *wn__qdgram_head(const struct qconn *qc, size_t *len);
void wn__qdgram_pop(struct qconn *qc);

/* Frees the queue (the connection is being freed). */
void wn__qdgram_free(struct qconn *qc);

/* A DATAGRAM frame from the peer: to the connection's flows. */
void wn__qdgram_recv(struct qconn *qc, const uint8_t *data, size_t len);

/* The transport of a server connection's flows (ctx: the qconn). */
extern const struct wn_fb_transport wn__quic_server_fb;

/* ---- quic_stream.c -------------------------------------------------- */

/* A new stream, not attached to any connection; the header for target (if
 * not NULL) is queued as its first bytes. NULL on allocation failure. */
struct qstream *wn__qstream_new(struct qep *ep,
                                const struct wn_endpoint *target,
                                unsigned flags,
                                const struct wn_stream_handler *h);

/* Attaches a pending stream to an established client connection. Returns 0,
 * WN_EAGAIN when the stream limit is reached, or a WN_E* code. */
int wn__qstream_attach(struct qconn *qc, struct qstream *qs);

/* Ends a stream that never reached a connection: on_closed(err) follows at
 * the end of the loop iteration. */
void wn__qstream_fail(struct qstream *qs, int err);

/* Whether the stream has data or a FIN to send. */
int wn__qstream_has_output(const struct qstream *qs);

/* ngtcp2 is done with a lingering stream (it closed, or its connection
 * died): frees its data, and the stream if the base already freed it. */
void wn__qstream_unlinger(struct qstream *qs);

/* Puts a stream with output on its connection's ready list and schedules
 * a write pass. */
void wn__qstream_mark_ready(struct qstream *qs);

/* ---- quic_tls.c, quic_conn.c ---------------------------------------- */

/* GnuTLS verify function for the engine's credentials: checks the peer's
 * raw public key against the pin (client) or the allow list (server). */
int wn_quic_verify_peer(gnutls_session_t s);

/* The engine's clock (wn_quic_opts.clock_ns), in nanoseconds for ngtcp2.
 * Each event (a packet in, a write pass, the timer) reads it once and
 * passes the time down. Without an injected clock this is the direct call
 * it always was: no indirect call on the packet path. */
static inline ngtcp2_tstamp wn__quic_now(const struct qep *ep)
{
	return ep->o.clock_ns ? ep->o.clock_ns(ep->o.clock_ctx) : wn_mono_ns();
}

/* The same clock in milliseconds, for the engine's own bookkeeping;
 * without an injected clock, the loop's cached time (no clock read). */
static inline uint64_t wn__quic_now_ms(const struct qep *ep)
{
	return ep->o.clock_ns ? ep->o.clock_ns(ep->o.clock_ctx) / 1000000
	                      : wn_loop_now_ms(ep->o.loop);
}

#endif
