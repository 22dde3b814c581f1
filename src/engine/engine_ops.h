/* One interface for every engine, in two tables as for carriers
 * (carrier/registry.h, carrier.h): the engine types, one row each, looked
 * up by name (quic, kcp, kcptun), and the operations every running engine
 * (a client or a server) implements.
 *
 * The application (src/app) builds one engine-neutral configuration from
 * what the user set, leaving unset settings at 0 or NULL; the engine fills
 * in its own defaults (each engine owns them: quic.c, kcp_engine.c and, for
 * the kcptun profile, kcptun.c). It creates a client or a server through
 * the type, opens carriers with the engine's carrier handler, adds them as
 * paths (clients, in order of preference), starts the engine, and hands
 * the client's tunnel to its front ends. No application code names an
 * engine: a new engine is a new row in the registry (engine_ops.c).
 *
 * A client and a server of one engine have different operations tables,
 * so no operation asks which of the two it runs on. The tables are called
 * at setup and teardown only, never per packet. */
#ifndef WN_ENGINE_ENGINE_OPS_H
#define WN_ENGINE_ENGINE_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "carrier/carrier.h"
#include "crypto/key.h"
#include "engine/engine.h"
#include "io/loop.h"
#include "util/err.h"
#include "util/log.h"

struct wn_engine_ops;
struct wn_engine_type;

/* Capabilities (struct wn_engine_type.caps). */
#define WN_ENGINE_CAP_DATAGRAM 0x1u /* tunnel datagrams (quic, kcp) */
#define WN_ENGINE_CAP_KEYS 0x2u     /* node identities pin both ends */
#define WN_ENGINE_CAP_TARGETS 0x4u  /* streams name their target */

/* A client's session events (wn_engine_conf.events). Called from the
 * loop, never from inside an engine operation. */
struct wn_engine_events {
	void *ctx;
	void (*on_up)(void *ctx);                    /* connected, verified */
	void (*on_down)(void *ctx, const char *why); /* lost; will retry */
};

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
	/* client: told when a session comes up and goes down; NULL: not */
	const struct wn_engine_events *events;
	/* tuning */
	size_t stream_send_limit;  /* bytes queued per stream */
	uint32_t stream_window;    /* per-stream receive window in bytes: the
	                             most a stream delivers unconsumed */
	const char *mode;          /* kcp preset: normal fast fast2 fast3 */
	unsigned snd_wnd, rcv_wnd; /* kcp windows, segments */
	unsigned mtu;              /* kcp packet size on the carrier */
	unsigned max_streams;      /* concurrent streams per session */
	/* send budget (stream_base.h): bytes buffered for sending per session
	 * and over all sessions before relays stop reading; 0: default */
	size_t session_buffer, total_buffer;
	/* server: caps per client key, over all of that key's sessions: live
	 * sessions (engine quic: one more replaces the key's least recently
	 * heard from; engine kcp holds one per key) and accepted streams
	 * (one more is reset); 0: default (WN_KEY_SESSIONS_DEFAULT,
	 * WN_KEY_STREAMS_DEFAULT) */
	unsigned sessions_per_key, streams_per_key;
	/* kcptun profile, in kcptun's terms */
	const char *crypt;      /* aes, aes-128, aes-192, salsa20, none */
	const char *passphrase; /* kcptun's --key */
	int has_fec;            /* datashard/parityshard set (0/0: no FEC) */
	unsigned datashard, parityshard;
	int nocomp;
	unsigned smuxver;
};

/* The caps per client key when the configuration sets none: room for a
 * few devices sharing a key, each with a connection or two (one more
 * replaces the key's least recently heard from, so dead ones never lock a
 * client out), and several sessions' worth of busy streams, while one key
 * can no longer take all of a server's sessions or its streams. */
#define WN_KEY_SESSIONS_DEFAULT 16
#define WN_KEY_STREAMS_DEFAULT 4096

/* Counters every engine keeps, for logs and metrics. */
struct wn_engine_stats {
	uint64_t sessions; /* live */
	uint64_t sessions_opened, sessions_closed;
	uint64_t streams_opened, streams_closed;
	uint64_t pkts_dropped; /* not for any session, or unparseable */
	uint64_t auth_failures;
	/* Datagram messages the engine took and then dropped: its bounded
	 * queue was full (the oldest goes), or the path could no longer
	 * carry one that size. */
	uint64_t dgrams_drop_queue, dgrams_drop_size;
};

/* A running engine: a client or a server. Engines embed it in their
 * client and server objects and set ops to that role's table. */
struct wn_engine {
	const struct wn_engine_ops *ops;
};

/* What a running engine does. The client-only operations are NULL in a
 * server's table (the wn_engine_* wrappers below answer for them). */
struct wn_engine_ops {
	/* The handler to open the engine's carriers with. */
	struct wn_carrier_handler (*handler)(struct wn_engine *e);
	/* Client: adds a path (a carrier, borrowed until after close, and
	 * the server's address on it), in order of preference, before go.
	 * Returns 0 or WN_EINVAL (too many paths, or already started). */
	int (*add_path)(struct wn_engine *e, struct wn_carrier *carrier,
	                const struct sockaddr *server, socklen_t len);
	/* Client: connects once every path is added. Returns 0 or WN_E*. */
	int (*go)(struct wn_engine *e);
	/* Client: the tunnel front ends open streams on, valid until close. */
	struct wn_tunnel *(*tunnel)(struct wn_engine *e);
	/* Client: a session is up. Server: at least one session is. */
	int (*is_up)(const struct wn_engine *e);
	void (*stats)(const struct wn_engine *e, struct wn_engine_stats *out);
	/* A short description of the settings that matter to a peer that is
	 * not warren ("crypt aes, mode fast, ..."), "" if none. */
	void (*describe)(const struct wn_engine *e, char *buf, size_t cap);
	/* Ends every session (resetting the client's streams) and frees the
	 * engine at the end of the loop iteration; carriers are the caller's
	 * to close afterwards. */
	void (*close)(struct wn_engine *e);
};

/* Creates a client or a server of type t (the row itself: an engine with
 * several profiles tells them apart by it) from c. Returns 0 with *out
 * owned by the caller until wn_engine_close, or a WN_E* code with nothing
 * left open. */
typedef int wn_engine_new_fn(const struct wn_engine_type *t,
                             const struct wn_engine_conf *c,
                             struct wn_engine **out);

/* An engine type: one row of the registry. */
struct wn_engine_type {
	const char *name; /* "quic", "kcp", "kcptun" */
	unsigned caps;    /* WN_ENGINE_CAP_* */
	wn_engine_new_fn *client_new;
	wn_engine_new_fn *server_new;
};

/* The engine type called `name`, or NULL. */
const struct wn_engine_type *wn_engine_find(const char *name);

/* The rows, for the registry (each in its engine's own files). */
extern const struct wn_engine_type wn_quic_engine;
extern const struct wn_engine_type wn_kcp_engine;
extern const struct wn_engine_type wn_kcptun_engine;

static inline int wn_engine_client_new(const struct wn_engine_type *t,
                                       const struct wn_engine_conf *c,
                                       struct wn_engine **out)
{
	return t->client_new(t, c, out);
}

static inline int wn_engine_server_new(const struct wn_engine_type *t,
                                       const struct wn_engine_conf *c,
                                       struct wn_engine **out)
{
	return t->server_new(t, c, out);
}

static inline struct wn_carrier_handler wn_engine_handler(struct wn_engine *e)
{
	return e->ops->handler(e);
}

/* WN_EINVAL on a server. */
static inline int wn_engine_add_path(struct wn_engine *e,
                                     struct wn_carrier *carrier,
                                     const struct sockaddr *server,
                                     socklen_t len)
{
	return e->ops->add_path ? e->ops->add_path(e, carrier, server, len)
	                        : WN_EINVAL;
}

/* 0 on a server: it has nothing to connect. */
static inline int wn_engine_go(struct wn_engine *e)
{
	return e->ops->go ? e->ops->go(e) : 0;
}

/* NULL on a server: its tunnels are its sessions, handed to the accept
 * handler with each stream. */
static inline struct wn_tunnel *wn_engine_tunnel(struct wn_engine *e)
{
	return e->ops->tunnel ? e->ops->tunnel(e) : NULL;
}

static inline int wn_engine_is_up(const struct wn_engine *e)
{
	return e->ops->is_up(e);
}

static inline void wn_engine_stats(const struct wn_engine *e,
                                   struct wn_engine_stats *out)
{
	e->ops->stats(e, out);
}

static inline void wn_engine_describe(const struct wn_engine *e, char *buf,
                                      size_t cap)
{
	e->ops->describe(e, buf, cap);
}

static inline void wn_engine_close(struct wn_engine *e)
{
	e->ops->close(e);
}

#endif
