/* The KCP engine: the Turbo Tunnel stack. KCP ARQ (src/core/kcp.h) carries
 * an smux session (src/core/smux.h) whose streams are the tunnel's streams;
 * every KCP datagram is protected with Noise IK keys (src/crypto/protect.h):
 * WireGuard-style transport packets naming their session by receiver index.
 *
 * Sessions are bound to keys, not addresses: the server answers a session
 * at the address its last authenticated packet came from, so a client
 * whose address or port changes (NAT rebinding, another carrier) keeps its
 * session and its streams. The server answers nothing to a packet that
 * does not prove knowledge of its public key (mac1), and nothing to a
 * client key it does not list.
 *
 * Beside KCP, inside the same protection, an unreliable channel carries
 * the flow base's messages (engine/flow_base.h: tunnel datagrams): the
 * first plaintext byte of a transport packet says which of the two it is
 * (KPT_*), and a datagram message is sealed and goes out with the
 * current send batch on the session's path, never through the ARQ. The server keeps a
 * struct wn_flows per session (a rekey keeps the session, so it keeps the
 * flows); the client keeps one for its tunnel across sessions and tells it
 * when a new session starts. The kcptun profile carries no datagrams.
 *
 * Like the QUIC engine, it runs over any carrier: the application opens the
 * carrier with the engine's handler and hands it over. Its public face is
 * its two rows of the engine table (engine_ops.h): wn_kcp_engine, and
 * wn_kcptun_engine for the kcptun profile; this header is private to it.
 *
 * Client: one session at a time. It handshakes (retrying with backoff),
 * keeps the session alive with keepalives, rekeys every two minutes without
 * disturbing streams, and when nothing is heard for idle_timeout_ms
 * declares the session lost (streams reset with WN_STREAM_SESSION_LOST) and
 * starts a new one; streams opened meanwhile wait for it.
 *
 * Private to the KCP engine: kcp_engine.c (sessions: run pass, sends, end;
 * the options from the engine-neutral configuration, and the rows),
 * kcp_client.c and kcp_server.c (the endpoints and their handshakes),
 * kcp_stream.c (streams behind the tunnel API), kcptun.c (the kcptun
 * profile's packet layer). Unit tests of the engine's defaults include it
 * too. */
#ifndef WN_ENGINE_KCP_ENGINE_INT_H
#define WN_ENGINE_KCP_ENGINE_INT_H

#include <stdio.h>

#include "core/kcpgo.h"
#include "core/streamhdr.h"
#include "crypto/kcpcrypt.h"
#include "crypto/protect.h"
#include "engine/engine_ops.h"
#include "core/kcp_sess.h"
#include "util/cidmap.h"
#include "util/list.h"

/* The kcptun profile: kcp-go's framing instead of Noise, so that either end
 * can be kcptun (see src/engine/kcptun.c). No identities: the passphrase
 * is the only secret, sessions are keyed by the client's address and conv,
 * and streams carry no target header (the server sends every stream to its
 * fixed target, as kcptun-server -t does). */
struct wn_kcptun_cfg {
	enum wn_kcpcrypt_alg crypt;
	uint8_t key[WN_KCPCRYPT_KEY];    /* wn_kcpcrypt_derive(passphrase) */
	unsigned datashard, parityshard; /* FEC; 0/0: off */
	int nocomp;                      /* 1: no snappy stream */
	int smuxver;                     /* 1 or 2 */
};

/* kcptun's defaults: aes, key "it's a secrect", 10/3, compression, smux
 * v1. */
void wn_kcptun_cfg_default(struct wn_kcptun_cfg *k);

struct wn_kcp_engine_opts {
	struct wn_loop *loop;         /* borrowed */
	struct wn_log *log;           /* borrowed */
	const struct wn_identity *id; /* borrowed; outlives the engine */
	char mode[16];                /* KCP preset: normal fast fast2 fast3 */
	unsigned mtu; /* packet size on the carrier, at most its max_packet;
	                 0: KCP's default plus the protection (1432) */
	unsigned snd_wnd, rcv_wnd; /* KCP windows in segments; 0: default */
	int pacing;                /* pace KCP's sends (core/kcp.h) */
	unsigned rto_srtt_pct;     /* RTO floor, % of the smoothed RTT */
	uint32_t idle_timeout_ms;  /* dead after this long without packets */
	uint32_t keepalive_ms;     /* client: keepalive when idle; 0: none */
	size_t stream_send_limit;  /* bytes queued per stream */
	uint32_t stream_window;    /* smux v2 receive window per stream */
	unsigned max_streams;      /* concurrent streams per session */
	size_t session_buffer;     /* send budget per session (stream_base.h) */
	size_t total_buffer;       /* send budget over the endpoint */
	unsigned max_sessions;     /* server: live sessions */
	uint32_t streams_per_key;  /* server: accepted streams per client key
	                              (its one session's, kcp: a new session
	                              replaces the old) */
	uint32_t failover_ms;      /* client: next path after this long without
	                              an authenticated packet */
	uint32_t probe_ms;         /* client: on a fallback path, try the first
	                              again this often */
	/* Borrowed, NULL for the native profile: kcptun's framing instead
	 * of Noise (id is then not needed). */
	const struct wn_kcptun_cfg *kcptun;
	/* Tests only: the handshake version this end sends (client) or
	 * accepts (server), to play a peer of another release; 0: ours,
	 * HS_PAYLOAD_VERSION. Changes only the version byte. */
	unsigned hs_version;
};

/* Fills in defaults (loop, log and id stay NULL): fast3, windows
 * 2048/2048, pacing on, RTO at least twice the smoothed RTT, idle 15 s,
 * keepalive 5 s, 4 MiB stream window. The windows, the pacing and the RTO
 * floor are what a long path with loss needs (docs/performance.md,
 * "Sending: RTO floor, pacer, windows"); kcptun's own windows are 128/512
 * without them. */
void wn_kcp_engine_opts_default(struct wn_kcp_engine_opts *o);

/* The kcptun profile's defaults (kcptun.c): kcptun's own windows (client
 * 128/512, server 1024/1024), MTU 1350, mode fast, no pacing, no RTO
 * floor, 2 MiB stream buffer; the rest as wn_kcp_engine_opts_default. */
void wn_kcptun_opts_default(struct wn_kcp_engine_opts *o, int server);

/* Counters for logs and metrics. */
struct wn_kcp_engine_stats {
	uint64_t sessions_opened, sessions_closed;
	uint64_t streams_opened, streams_closed;
	uint64_t handshakes, rekeys;
	uint64_t pkts_dropped; /* failed authentication, replays, unknown */
	uint64_t auth_failures;
	uint64_t cookies; /* server: cookie replies sent; client: received */
	uint64_t version_refused; /* server: initiations of another version */
	/* Datagram messages (the flow base's), one per packet each way: */
	uint64_t dgrams_out, dgrams_in;
	uint64_t dgram_drops; /* no keys yet, or the carrier refused them */
	uint64_t bad_payload; /* plaintexts of an unknown type (KPT_*) */
	/* kcptun profile: */
	uint64_t csum_errors;   /* CRC or decryption failed (InCsumErrors) */
	uint64_t fec_dropped;   /* malformed FEC shards */
	uint64_t fec_parity;    /* parity shards received */
	uint64_t fec_recovered; /* data shards rebuilt from parity */
};

/* Paths. A client adds paths to the server (a carrier and the server's
 * address on it), in order of preference; up to WN_KCP_MAX_PATHS. With
 * more than one, the client fails over: after failover_ms without an
 * authenticated packet it sends on the next path, and while away from the
 * first it sends a keepalive there every probe_ms. The server answers on the path of the
 * last packet it authenticated, so when the first path works again its
 * answers arrive there and the client moves back. The policy is
 * core/failover.h, shared with the QUIC engine. */
#define WN_KCP_MAX_PATHS 8

/* The handshake payload: version u8, session id 8, conv u32 LE
 * (docs/wire-format.md, "KCP engine session"). Version 2: every
 * non-empty transport plaintext starts with a KPT_* type byte (version 1
 * had KCP segments only, from the first byte). Ends of different versions
 * never get a session: the server refuses the initiation, so a
 * mismatch cannot misparse. */
#define HS_PAYLOAD_VERSION 2
#define HS_PAYLOAD_LEN 13

/* The first byte of a (non-empty) transport plaintext. */
#define KPT_KCP 0  /* KCP segments follow (docs/wire-format.md section 6) */
#define KPT_FLOW 1 /* one flow message (the flow base's) follows */
#define KPT_LEN 1

/* Reserve/commit hand out this much contiguous space at a time. */
#define KCP_SCRATCH 16384

/* Sealed packets are sent in batches of up to this many (UDP GSO). */
#define KCP_TX_SEGS 64
#define KCP_PKT_MAX 2048 /* largest packet the engine sends */

/* What the client and the server share. */
struct ksession;

struct kep {
	struct wn_engine base; /* the engine table's handle (engine_ops.h) */
	struct wn_kcp_engine_opts o;
	int is_server;
	struct wn_kcp_engine_stats stats;
	uint64_t sess_seq;
	struct wn_ratelimit rl_drop, rl_err;
	struct wn_accept_handler ah; /* server */
	/* The send batch (tx_add/tx_flush in kcp_engine.c): packets of one session,
	 * flushed at the end of each run pass. */
	uint8_t *tx;
	size_t tx_len, tx_seg;
	unsigned tx_n;
	unsigned tx_dg; /* of them, datagram messages (dropped if refused) */
	struct ksession *tx_ks;
	/* Hooks from a session to its endpoint: it died (streams failed);
	 * its run pass starts (client: handshake retries and rekeys). */
	void (*sess_dead)(struct kep *ep, struct ksession *ks);
	void (*sess_tick)(struct kep *ep, struct ksession *ks, uint64_t now);
	struct ktprof *kt; /* the kcptun profile, or NULL (kcptun.c) */
	char desc[96];     /* kcptun: what a kcptun peer must match */
	/* What the endpoint's streams share (kcp_stream.c sets it up with
	 * the first stream). */
	struct wn_stream_env senv;
	/* server: accepted streams per client key (nkeys of them; the stream
	 * base counts them, stream_base.h); NULL for kcptun */
	uint32_t *key_streams;
	size_t nkeys;
	/* The receive direction's budget over every session: the smux
	 * windows they advertise (core/smux.h, Flow control). */
	struct wn_smux_pool rpool;
};

enum ks_state {
	KS_HANDSHAKE, /* client: waiting for the response */
	KS_UP,
	KS_DEAD, /* streams failed; waiting to be freed */
};

struct ksession {
	struct wn_tunnel tunnel; /* first: handed out to front ends */
	struct kep *ep;
	struct wn_kcp_sess *core;
	struct wn_protect_peer peer; /* keys; wiped when freed */
	int peer_live;
	struct wn_carrier *carrier; /* where packets go: the last path */
	struct sockaddr_storage remote;
	socklen_t rlen;
	struct wn_timer timer;
	struct wn_deferred dnode; /* run pass, or free once dead */
	struct wn_list link;      /* server: in the server's sessions */
	struct wn_cidmap streams; /* smux stream id -> kstream */
	struct wn_list all;       /* every live kstream */
	struct wn_list blocked;   /* kstreams waiting for on_writable */
	enum ks_state state;
	uint64_t id;
	uint8_t sess_id[8]; /* the client's session id (handshake payload) */
	uint32_t conv;
	uint8_t peer_key[WN_KEY_LEN];
	uint64_t created_ms;
	uint64_t hs_next_ms; /* client: next initiation (retry or rekey) */
	uint64_t tick_ms;    /* client: next failover check */
	int client_index;    /* server: which allowed client */
	uint32_t hs_backoff_ms;
	int timer_live;
	int was_up;
	char why[128];
	struct wn_kcpgo_enc *fec_enc; /* kcptun with FEC: our shards */
	struct wn_kcpgo_dec *fec_dec; /* kcptun with FEC: the peer's */
	/* Datagrams: the flows this session's flow messages go to (server:
	 * its own, flows_own; client: the client's, kept across sessions);
	 * NULL in the kcptun profile. pkt_max: the largest packet this
	 * session sends (the mtu it was sized to). */
	struct wn_flows *flows;
	int flows_own;
	size_t pkt_max;
	uint8_t scratch[KCP_SCRATCH]; /* reserve/commit */
	struct kstream *scratch_owner;
};

struct kstream {
	struct wn_stream base; /* first: the stream base owns the semantics */
	struct kep *ep;
	struct ksession *ks; /* NULL once ended */
	/* The session whose smux holds the stream's data, ended or not: the
	 * send budget asks it (kt_queued) until the session goes. */
	struct ksession *home;
	uint32_t sid;
	struct wn_list link;  /* ks->all */
	struct wn_list wlink; /* ks->blocked */
};

/* ---- kcp_stream.c ---------------------------------------------------- */

/* The smux callbacks that route stream events of ks to its kstreams. */
struct wn_smux_cb wn__kstream_smux_cb(struct ksession *ks);

/* Client: opens a stream to target on ks. NULL when ks takes no more. */
struct kstream *wn__kstream_open(struct ksession *ks,
                                 const struct wn_endpoint *target,
                                 unsigned flags,
                                 const struct wn_stream_handler *h);

/* Ends a stream with err (on_closed from the loop). */
void wn__kstream_fail(struct kstream *st, int err);

/* After a run pass: wakes streams whose short write now has room. */
void wn__kstream_wake_writers(struct ksession *ks);

/* ---- kcptun.c --------------------------------------------------------- */

/* Sets up ep's kcptun profile from cfg (copied). Returns 0 or WN_ENOMEM. */
int wn__ktprof_new(struct kep *ep, const struct wn_kcptun_cfg *cfg);

void wn__ktprof_free(struct kep *ep);

/* Adjusts a new session's configuration to kcptun's: framing room, smux
 * version and compat mode, keepalive, KCP as kcp-go runs it. */
void wn__ktprof_sess_cfg(struct kep *ep, struct wn_kcp_sess_cfg *cfg,
                         size_t max_pkt);

/* Frees a session's FEC state (made as it is first needed: the encoder
 * with the first packet sent, the decoder with the first parity shard). */
void wn__ktprof_sess_free(struct ksession *ks);

/* KCP's output in the kcptun profile: FEC header, nonce, CRC, cipher; then
 * sends it, and after every datashard packets the group's parity. pkt
 * has the profile's headroom before it. */
void wn__ktprof_output(struct ksession *ks, uint8_t *pkt, size_t len);

/* Opens a packet received from `from` in place (decrypt, CRC, FEC
 * header; a failure is logged, rate-limited). Returns 0
 * with its parts in *fp (pointing into pkt), or a negative code after
 * which the packet is dropped (and counted in ep->stats). */
int wn__ktprof_open(struct kep *ep, const struct sockaddr *from, uint8_t *pkt,
                    size_t len, struct wn_kcpgo_pkt *fp);

/* Hands an opened packet to ks: KCP segments to the session, FEC shards
 * to its decoder (and what it rebuilds to the session). */
void wn__ktprof_input(struct ksession *ks, struct wn_carrier *c,
                      const struct sockaddr *from, socklen_t fromlen,
                      const struct wn_kcpgo_pkt *fp);

/* ---- kcp_client.c, kcp_server.c: the constructors behind the rows ----- */

/* Create a client or a server of the KCP engine, in the profile of t
 * (wn_kcp_engine or wn_kcptun_engine), as the rows' client_new and
 * server_new. */
int wn__kep_client_new(const struct wn_engine_type *t,
                       const struct wn_engine_conf *conf,
                       struct wn_engine **out);
int wn__kep_server_new(const struct wn_engine_type *t,
                       const struct wn_engine_conf *conf,
                       struct wn_engine **out);

/* The same from full options instead of the engine-neutral
 * configuration's tuning (o->kcptun: the profile, copied), for the rows
 * and for a test that sets what that configuration has no field for.
 * conf gives the keys, the accept handler and the events. */
int wn__kep_client_create(const struct wn_kcp_engine_opts *o,
                          const struct wn_engine_conf *conf,
                          struct wn_engine **out);
int wn__kep_server_create(const struct wn_kcp_engine_opts *o,
                          const struct wn_engine_conf *conf,
                          struct wn_engine **out);

/* The endpoint behind an engine handle, a client's or a server's (its
 * counters in ->stats, for tests too). */
static inline struct kep *wn__kep_of(struct wn_engine *e)
{
	return wn_container_of(e, struct kep, base);
}

static inline const struct kep *wn__kep_cof(const struct wn_engine *e)
{
	return wn_container_of(e, const struct kep, base);
}

/* ---- kcp_engine.c: what the client (kcp_client.c) and the server (kcp_server.c)
 * share ---------------------------------------------------------------- */

static inline uint64_t wn__kep_now(const struct kep *ep)
{
	return wn_loop_now_ms(ep->o.loop);
}

/* A key's short name for logs: its first four bytes in hex. */
static inline void wn__kep_key_name(const uint8_t *k, char out[16])
{
	snprintf(out, 16, "%02x%02x%02x%02x", k[0], k[1], k[2], k[3]);
}

/* The options of a client or server of profile t: the profile's defaults,
 * then what conf set; for kcptun also the profile itself, into *kt, which
 * o->kcptun then points at (the engine copies it; the caller wipes it).
 * Returns 0 or WN_EINVAL. */
int wn__kep_opts_from(const struct wn_engine_type *t,
                      const struct wn_engine_conf *conf, int server,
                      struct wn_kcp_engine_opts *o, struct wn_kcptun_cfg *kt);

/* Sets ep->desc from the options (kcptun: the profile's settings). */
void wn__kep_describe_init(struct kep *ep, const struct wn_kcp_engine_opts *o);

/* The engine operations a client and a server share: describe, and the
 * counters as the table reports them (live: the sessions up). */
void wn__kep_describe(const struct wn_engine *e, char *buf, size_t cap);
void wn__kep_stats(const struct kep *ep, uint64_t live,
                   struct wn_engine_stats *out);

/* Sends the endpoint's batch of packets (one carrier send). */
void wn__kep_tx_flush(struct kep *ep);

/* Creates a session (state KS_HANDSHAKE) for peer_key with KCP
 * conversation conv. Its packets are sized to fit max_pkt, the largest
 * packet every carrier it may send on takes (wn_carrier_max_packet), and
 * the configured mtu. NULL on failure. */
struct ksession *wn__ksession_new(struct kep *ep, const uint8_t *peer_key,
                                  uint32_t conv, size_t max_pkt);

/* Frees a session that never went live (wn__ksession_kill otherwise). */
void wn__ksession_free(struct ksession *ks);

/* Ends a session: its streams fail with SESSION_LOST, the endpoint's
 * sess_dead hook runs, the memory goes at the end of the iteration. */
void wn__ksession_kill(struct ksession *ks, const char *why);

/* Sends one packet at once (handshakes), after the pending batch. */
void wn__ksession_send_now(struct ksession *ks, const uint8_t *pkt, size_t len);

/* Seals and sends an empty transport packet: a keepalive, and the
 * client's confirmation of fresh keys. */
void wn__ksession_send_empty(struct ksession *ks, uint64_t now);

/* ---- kcp_engine.c ----------------------------------------------------------- */

/* Sends one finished packet on the session's current path. */
void wn__ksession_send(struct ksession *ks, const uint8_t *pkt, size_t len);

/* An authenticated (kcptun: checksummed) packet's KCP segments for ks,
 * from `from` over c: the session answers there now. */
void wn__ksession_input(struct ksession *ks, struct wn_carrier *c,
                        const struct sockaddr *from, socklen_t fromlen,
                        const uint8_t *pt, size_t ptlen);

/* Asks for a run pass (smux -> KCP -> carrier) at the end of the loop
 * iteration. */
void wn__ksession_schedule(struct ksession *ks);

/* The flow base's transport on a session (flow_base.h). dgram_max: the
 * largest flow message one packet carries now (0 unless the session is
 * up). dgram_send: seals msg (a KPT_FLOW packet) and adds it to the send
 * batch, which goes out at the end of the loop iteration; no ARQ, no
 * retransmission. Returns 0, WN_EAGAIN (no session up, no keys yet) or
 * WN_EMSGSIZE (above dgram_max). */
size_t wn__ksession_dgram_max(const struct ksession *ks);
int wn__ksession_dgram_send(struct ksession *ks, const uint8_t *msg,
                            size_t len);

/* ---- kcp_client.c ---------------------------------------------------- */

/* Starts a rekey of the client's live session now, as the two-minute
 * timer would (tests). Returns 0, or WN_EAGAIN without a session up. */
int wn__kep_client_rekey(struct wn_engine *e);

#endif
