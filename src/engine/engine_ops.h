/* One interface for every engine: the operations table the application
 * drives an engine through, looked up by name (quic, kcp, kcptun).
 *
 * The application (src/app) builds one engine-neutral configuration from
 * what the user set, leaving unset settings at 0 or NULL; the engine fills
 * in its own defaults (each engine owns them: quic.c, kcp_engine.c and, for
 * the kcptun profile, kcptun.c). It then opens carriers with the engine's
 * carrier handler, adds them as paths (clients, in order of preference),
 * starts the engine, and hands the client's tunnel to its front ends. No
 * application code names an engine: a new engine is a new table in the
 * registry (engine_ops.c).
 *
 * The table is called at setup and teardown only, never per packet. */
#ifndef WN_ENGINE_ENGINE_OPS_H
#define WN_ENGINE_ENGINE_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "carrier/carrier.h"
#include "crypto/key.h"
#include "engine/engine.h"
#include "io/loop.h"
#include "util/log.h"

/* Capabilities (struct wn_engine_ops.caps). */
#define WN_ENGINE_CAP_DATAGRAM 0x1u /* tunnel datagrams (quic) */
#define WN_ENGINE_CAP_KEYS 0x2u     /* node identities pin both ends */
#define WN_ENGINE_CAP_TARGETS 0x4u  /* streams name their target */

/* What an engine is built from. Borrowed pointers must outlive the engine.
 * Settings left at 0 (NULL for strings) take the engine's default. */
struct wn_engine_conf {
	struct wn_loop *loop;
	struct wn_log *log;
	const struct wn_identity *id; /* with WN_ENGINE_CAP_KEYS */
	/* client: the server's key (WN_ENGINE_CAP_KEYS) */
	const uint8_t *server_key;
	/* server: the client keys it accepts (copied), and where new streams
	 * go */
	const uint8_t (*clients)[WN_KEY_LEN];
	size_t n_clients;
	const struct wn_accept_handler *accept;
	/* liveness */
	uint32_t idle_timeout_ms;      /* dead after this long silent */
	uint32_t keepalive_ms;         /* client: when idle; servers: none */
	uint32_t handshake_timeout_ms; /* client: give up a connect attempt */
	uint32_t failover_ms;          /* client, several paths */
	uint32_t probe_ms;             /* client, several paths */
	/* tuning */
	const char *mode;          /* kcp preset: normal fast fast2 fast3 */
	unsigned snd_wnd, rcv_wnd; /* kcp windows, segments */
	unsigned mtu;              /* kcp packet size on the carrier */
	unsigned max_streams;      /* concurrent streams per session */
	/* kcptun profile, in kcptun's terms */
	const char *crypt;      /* aes, aes-128, aes-192, salsa20, none */
	const char *passphrase; /* kcptun's --key */
	int has_fec;            /* datashard/parityshard set (0/0: no FEC) */
	unsigned datashard, parityshard;
	int nocomp;
	unsigned smuxver;
};

/* Counters every engine keeps, for logs and metrics. */
struct wn_engine_stats {
	uint64_t sessions; /* live */
	uint64_t sessions_opened, sessions_closed;
	uint64_t streams_opened, streams_closed;
	uint64_t pkts_dropped; /* not for any session, or unparseable */
	uint64_t auth_failures;
};

/* A running engine: a client or a server. Engines embed it first in their
 * own adapter object. */
struct wn_engine {
	const struct wn_engine_ops *ops;
};

struct wn_engine_ops {
	const char *name; /* "quic", "kcp", "kcptun" */
	unsigned caps;    /* WN_ENGINE_CAP_* */
	/* Constructors. Return 0 or a WN_E* code. */
	int (*client_new)(const struct wn_engine_conf *c,
	                  struct wn_engine **out);
	int (*server_new)(const struct wn_engine_conf *c,
	                  struct wn_engine **out);
	/* The handler to open the engine's carriers with. */
	struct wn_carrier_handler (*handler)(struct wn_engine *e);
	/* Client: adds a path (a carrier, borrowed until after close, and
	 * the server's address on it), in order of preference. */
	int (*add_path)(struct wn_engine *e, struct wn_carrier *carrier,
	                const struct sockaddr *server, socklen_t len);
	/* Client: connects once every path is added. */
	int (*go)(struct wn_engine *e);
	/* Client: the tunnel front ends open streams on, valid until close. */
	struct wn_tunnel *(*tunnel)(struct wn_engine *e);
	/* Client: a session is up. Server: at least one session is. */
	int (*is_up)(const struct wn_engine *e);
	void (*stats)(const struct wn_engine *e, struct wn_engine_stats *out);
	/* A short description of the settings that matter to a peer that is
	 * not warren ("crypt aes, mode fast, ..."), "" if none. */
	void (*describe)(const struct wn_engine *e, char *buf, size_t cap);
	/* Ends every session and frees the engine at the end of the loop
	 * iteration; carriers are the caller's to close afterwards. */
	void (*close)(struct wn_engine *e);
};

/* The engine called `name`, or NULL. */
const struct wn_engine_ops *wn_engine_find(const char *name);

/* The tables, for the registry. */
extern const struct wn_engine_ops wn_quic_engine_ops;
extern const struct wn_engine_ops wn_kcp_engine_ops;
extern const struct wn_engine_ops wn_kcptun_engine_ops;

#endif
