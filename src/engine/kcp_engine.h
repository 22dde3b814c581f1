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
 * Like the QUIC engine, it runs over any carrier: the application opens the
 * carrier with the engine's handler and hands it over.
 *
 * Client: one session at a time. It handshakes (retrying with backoff),
 * keeps the session alive with keepalives, rekeys every two minutes without
 * disturbing streams, and when nothing is heard for idle_timeout_ms
 * declares the session lost (streams reset with WN_STREAM_SESSION_LOST) and
 * starts a new one; streams opened meanwhile wait for it. */
#ifndef WN_ENGINE_KCP_ENGINE_H
#define WN_ENGINE_KCP_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "carrier/carrier.h"
#include "crypto/kcpcrypt.h"
#include "crypto/key.h"
#include "engine/engine.h"
#include "io/loop.h"
#include "util/log.h"

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
	unsigned max_sessions;     /* server: live sessions */
	uint32_t failover_ms;      /* client: next path after this long without
	                              an authenticated packet */
	uint32_t probe_ms;         /* client: on a fallback path, try the first
	                              again this often */
	/* Borrowed, NULL for the native profile: kcptun's framing instead
	 * of Noise (id is then not needed). */
	const struct wn_kcptun_cfg *kcptun;
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
	/* kcptun profile: */
	uint64_t csum_errors;   /* CRC or decryption failed (InCsumErrors) */
	uint64_t fec_dropped;   /* malformed FEC shards */
	uint64_t fec_parity;    /* parity shards received */
	uint64_t fec_recovered; /* data shards rebuilt from parity */
};

/* ---- client ---------------------------------------------------------- */

struct wn_kcp_client;

struct wn_kcp_client_events {
	void *ctx;
	void (*on_up)(void *ctx);                    /* handshake done */
	void (*on_down)(void *ctx, const char *why); /* lost; will retry */
};

/* Creates a client that will pin server_key (ignored, may be NULL, with
 * o->kcptun). Returns 0 or a WN_E* code. */
int wn_kcp_client_new(const struct wn_kcp_engine_opts *o,
                      const uint8_t server_key[WN_KEY_LEN],
                      const struct wn_kcp_client_events *ev,
                      struct wn_kcp_client **out);

/* The handler to open the client's carrier with. */
struct wn_carrier_handler wn_kcp_client_handler(struct wn_kcp_client *c);

/* Adds one path and starts (wn_kcp_client_add_path + wn_kcp_client_go).
 * The carrier is borrowed: the caller closes it after
 * wn_kcp_client_close. Returns 0 or a WN_E* code. */
int wn_kcp_client_start(struct wn_kcp_client *c, struct wn_carrier *carrier,
                        const struct sockaddr *server, socklen_t len);

/* Adds a path to the server (a carrier and the server's address on it),
 * in order of preference; up to WN_KCP_MAX_PATHS. With more than one, the
 * client fails over: after failover_ms without an authenticated packet it
 * sends on the next path, and while away from the first it sends a
 * keepalive there every probe_ms. The server answers on the path of the
 * last packet it authenticated, so when the first path works again its
 * answers arrive there and the client moves back. The policy is
 * core/failover.h, shared with the QUIC engine. Returns 0 or WN_E*. */
#define WN_KCP_MAX_PATHS 8
int wn_kcp_client_add_path(struct wn_kcp_client *c, struct wn_carrier *carrier,
                           const struct sockaddr *server, socklen_t len);

/* Starts the session on the first path added. Returns 0 or WN_E*. */
int wn_kcp_client_go(struct wn_kcp_client *c);

/* The tunnel front ends open streams on. Valid until close. */
struct wn_tunnel *wn_kcp_client_tunnel(struct wn_kcp_client *c);

/* True while a session is established. */
int wn_kcp_client_is_up(const struct wn_kcp_client *c);

const struct wn_kcp_engine_stats *
wn_kcp_client_stats(const struct wn_kcp_client *c);

/* Resets every stream and frees the client at the end of the loop
 * iteration. */
void wn_kcp_client_close(struct wn_kcp_client *c);

/* ---- server ---------------------------------------------------------- */

struct wn_kcp_server;

/* Creates a server accepting the n client keys (copied; none with
 * o->kcptun, where every client that knows the passphrase is served). New
 * streams go to ah (with o->kcptun: with a NULL target, the dialer's fixed
 * one). Returns 0 or a WN_E* code. */
int wn_kcp_server_new(const struct wn_kcp_engine_opts *o,
                      const uint8_t (*clients)[WN_KEY_LEN], size_t n,
                      const struct wn_accept_handler *ah,
                      struct wn_kcp_server **out);

/* The handler to open each of the server's carriers with. */
struct wn_carrier_handler wn_kcp_server_handler(struct wn_kcp_server *s);

/* Live sessions. */
size_t wn_kcp_server_sessions(const struct wn_kcp_server *s);

const struct wn_kcp_engine_stats *
wn_kcp_server_stats(const struct wn_kcp_server *s);

/* Ends every session and frees the server at the end of the loop
 * iteration. Carriers are the caller's to close afterwards. */
void wn_kcp_server_close(struct wn_kcp_server *s);

#endif
