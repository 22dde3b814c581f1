/* A warren node: the wiring from configuration to a running server or
 * client in a loop, shared by `warren server`, `warren client` and
 * `warren demo` (daemon.c). Server: carriers -> engine -> dialer (streams
 * and UDP flows). Client: forwards, SOCKS5 proxies and UDP forwards ->
 * engine -> one carrier per server address
 * (failover, in order). The engine is the configuration's, looked up in
 * the engine table (engine/engine_ops.h). */
#ifndef WN_APP_NODE_H
#define WN_APP_NODE_H

#include <stddef.h>

#include "app/config.h"
#include "carrier/carrier.h"
#include "crypto/key.h"
#include "engine/engine_ops.h"
#include "io/loop.h"
#include "util/log.h"

#define WN_NODE_MAX_CARRIERS 16

struct wn_dialer;
struct wn_forward;
struct wn_socks5_front;
struct wn_udp_front;

struct wn_node {
	struct wn_loop *loop;         /* borrowed */
	struct wn_log *log;           /* borrowed */
	const struct wn_identity *id; /* borrowed */
	const struct wn_engine_type *engine_type;
	struct wn_engine *engine;
	struct wn_dialer *dialer; /* server */
	struct wn_forward **fwd;  /* client */
	size_t nfwd;
	struct wn_socks5_front **socks; /* client */
	size_t nsocks;
	struct wn_udp_front **udps; /* client */
	size_t nudps;
	struct wn_carrier *carriers[WN_NODE_MAX_CARRIERS];
	size_t ncarriers;
	int closed;
};

/* Starts the server of cfg (cfg->server; cfg and id outlive the node) on
 * loop: listens, logs "server ready". Returns 0 or a WN_E* code, having
 * logged why; either way wn_node_close undoes what was opened. */
int wn_node_server(struct wn_node *n, struct wn_loop *loop, struct wn_log *log,
                   const struct wn_identity *id, const struct wn_config *cfg);

/* Starts the client of cfg (cfg->client, cfg->forwards, cfg->socks):
 * opens the front ends and connects, logs "client ready". As for
 * wn_node_server. */
int wn_node_client(struct wn_node *n, struct wn_loop *loop, struct wn_log *log,
                   const struct wn_identity *id, const struct wn_config *cfg);

/* Closes everything the node opened (the engine says goodbye to its peers
 * before the carriers close); the loop finishes the rest. Idempotent. */
void wn_node_close(struct wn_node *n);

#endif
