/* `warren server` and `warren client`, and the node wiring they share with
 * `warren demo` (node.h): from configuration to a running loop. Server:
 * carriers -> engine -> dialer. Client: forwards and SOCKS5 proxies ->
 * engine -> carriers. The engine comes from the engine table by name; this
 * file names none. SIGINT/SIGTERM shut down cleanly (the engine's goodbye
 * to the peer, every socket closed, exit 0). */
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

#include "app/cli.h"
#include "app/commands.h"
#include "app/config.h"
#include "app/fronts.h"
#include "app/node.h"
#include "carrier/registry.h"
#include "carrier/tcp.h"
#include "front/dialer.h"
#include "front/forward.h"
#include "front/socks5.h"
#include "front/udp.h"
#include "io/fdlimit.h"
#include "io/loop.h"
#include "util/err.h"
#include "util/log.h"

/* ---- the node --------------------------------------------------------- */

/* Resolves an endpoint to one socket address (the first the resolver
 * gives for names). Returns 0 or WN_EUNREACH. */
static int resolve(const struct wn_endpoint *ep, struct sockaddr_storage *ss,
                   socklen_t *len)
{
	if (ep->kind == WN_HOST_IP) {
		memcpy(ss, &ep->sa, ep->salen);
		*len = ep->salen;
		return 0;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM,
	                         .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", ep->port);
	if (getaddrinfo(ep->host, port, &hints, &res) != 0 || !res)
		return WN_EUNREACH;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* The engine's name for the configured kind. */
static const char *engine_name(enum wn_engine_kind kind)
{
	static const char *const names[] = {
	    [WN_ENGINE_QUIC] = "quic",
	    [WN_ENGINE_KCP] = "kcp",
	    [WN_ENGINE_KCPTUN] = "kcptun",
	};
	return (size_t)kind < sizeof(names) / sizeof(names[0]) ? names[kind]
	                                                       : "";
}

/* The engine-neutral engine configuration: what the user set. */
static void engine_conf(struct wn_node *n, const struct wn_engine_cfg *e,
                        struct wn_engine_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->loop = n->loop;
	c->log = n->log;
	c->id = n->id;
	c->mode = e->mode_set ? e->mode : NULL;
	c->snd_wnd = e->sndwnd;
	c->rcv_wnd = e->rcvwnd;
	c->mtu = e->mtu;
	c->max_streams = e->max_streams;
	c->session_buffer = (size_t)e->session_buffer;
	c->total_buffer = (size_t)e->total_buffer;
	c->crypt = e->crypt;
	c->passphrase = e->kcptun_key;
	c->has_fec = 1;
	c->datashard = e->datashard;
	c->parityshard = e->parityshard;
	c->nocomp = e->nocomp;
	c->smuxver = e->smuxver;
}

/* Opens the server's i-th listener with handler h, through the carrier
 * type its scheme names (carrier/registry.h). */
static int open_listener(struct wn_node *n, const struct wn_server_cfg *sc,
                         size_t i, const struct sockaddr *ss, socklen_t len,
                         uint32_t max_conns, const struct wn_carrier_handler *h,
                         struct wn_carrier **out)
{
	const struct wn_carrier_type *ct =
	    wn_carrier_type_find(sc->listen[i].scheme);
	struct wn_carrier_conf cf = {
	    .id = (unsigned)i + 1,
	    .addr = ss,
	    .addrlen = len,
	    .ident = n->id,
	    .tcp = {
	        .sni = sc->sni,
	        .tls_cert = sc->tls_cert[0] ? sc->tls_cert : NULL,
	        .tls_key = sc->tls_key[0] ? sc->tls_key : NULL,
	        .fallback = (int)sc->fallback,
	        .fallback_file = sc->fallback_path,
	        .idle_close_ms = sc->idle_close_ms,
	        .max_conns = max_conns,
	        .pad_max = sc->padding,
	    }};
	return ct ? ct->open_server(n->loop, n->log, &cf, h, out) : WN_EINVAL;
}

/* Opens the client's carrier to its i-th server (at address server) with
 * handler h, through the carrier type its scheme names. */
static int open_path(struct wn_node *n, const struct wn_client_cfg *cc,
                     size_t i, const struct sockaddr_storage *server,
                     socklen_t slen, const struct wn_carrier_handler *h,
                     struct wn_carrier **out)
{
	const struct wn_endpoint *ep = &cc->server[i];
	const struct wn_carrier_type *ct = wn_carrier_type_find(ep->scheme);
	struct wn_carrier_conf cf = {
	    .id = (unsigned)i + 1,
	    .addr = (const struct sockaddr *)server,
	    .addrlen = slen,
	    .server_pk = cc->server_key,
	    .tcp = {
	        /* SNI: as configured, else the server's name. */
	        .sni = cc->sni[0]                 ? cc->sni
	               : ep->kind == WN_HOST_NAME ? ep->host
	                                          : NULL,
	        .rotate_after_ms = cc->rotate_after_ms,
	        .rotate_bytes = cc->rotate_bytes,
	        .conns = cc->conns,
	        .pad_max = cc->padding,
	    }};
	return ct ? ct->open_client(n->loop, n->log, &cf, h, out) : WN_EINVAL;
}

/* Each connection-holding listener's connection limit: the configured
 * max-conns, or the default, clipped to the listeners' share of the fd
 * limit (io/fdlimit.h), so strangers can never take the fds the dialer
 * needs. */
static uint32_t listener_conns(struct wn_log *log,
                               const struct wn_server_cfg *sc)
{
	uint64_t nofile = wn_fdlimit_get();
	uint32_t want = sc->max_conns ? sc->max_conns : WN_TCP_MAX_CONNS;
	uint32_t share;
	size_t n = 0;

	for (size_t i = 0; i < sc->n_listen; i++) {
		const struct wn_carrier_type *ct =
		    wn_carrier_type_find(sc->listen[i].scheme);
		if (ct && (ct->caps & WN_CARRIER_CONNECTED))
			n++;
	}
	if (n == 0 || nofile == 0)
		return want;
	share = wn_fdlimit_share(nofile, n);
	if (want <= share)
		return want;
	if (sc->max_conns)
		WN_LOG(log, WN_LOG_WARN, "main",
		       "max-conns %u: the fd limit (%llu) leaves room for %u "
		       "per listener; using %u",
		       sc->max_conns, (unsigned long long)nofile, share, share);
	return share;
}

static void node_init(struct wn_node *n, struct wn_loop *loop,
                      struct wn_log *log, const struct wn_identity *id)
{
	memset(n, 0, sizeof(*n));
	n->loop = loop;
	n->log = log;
	n->id = id;
}

int wn_node_server(struct wn_node *n, struct wn_loop *loop, struct wn_log *log,
                   const struct wn_identity *id, const struct wn_config *cfg)
{
	const struct wn_server_cfg *sc = &cfg->server;
	node_init(n, loop, log, id);
	n->engine_type = wn_engine_find(engine_name(sc->engine.kind));
	if (!n->engine_type)
		return WN_EINVAL;
	/* out_limit 0: each relay holds its tunnel's receive window. */
	struct wn_dialer_opts dopts;
	wn_app_dialer_opts(sc, &dopts);
	dopts.out_limit = 0;
	int rc = wn_dialer_new(loop, log, &dopts, &n->dialer);
	struct wn_engine_conf ec;
	engine_conf(n, &sc->engine, &ec);
	ec.idle_timeout_ms = sc->idle_timeout_ms;
	ec.clients = (const uint8_t(*)[WN_KEY_LEN])sc->allow_client;
	ec.n_clients = sc->n_allow_client;
	ec.accept = rc == 0 ? wn_dialer_handler(n->dialer) : NULL;
	if (rc == 0)
		rc = wn_engine_server_new(n->engine_type, &ec, &n->engine);
	if (rc != 0) {
		WN_LOG(log, WN_LOG_ERROR, "main", "cannot start: %s",
		       wn_strerror(rc));
		return rc;
	}
	struct wn_carrier_handler h = wn_engine_handler(n->engine);
	uint32_t max_conns = listener_conns(log, sc);
	for (size_t i = 0; i < sc->n_listen && i < WN_NODE_MAX_CARRIERS; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		char name[128];
		wn_endpoint_format(&sc->listen[i], name, sizeof(name));
		if (resolve(&sc->listen[i], &ss, &len) != 0) {
			WN_LOG(log, WN_LOG_ERROR, "main", "cannot resolve %s",
			       name);
			return WN_EUNREACH;
		}
		rc = open_listener(n, sc, i, (struct sockaddr *)&ss, len,
		                   max_conns, &h, &n->carriers[n->ncarriers]);
		if (rc != 0) {
			WN_LOG(log, WN_LOG_ERROR, "main",
			       "cannot listen on %s: %s", name,
			       wn_strerror(rc));
			return rc;
		}
		n->ncarriers++;
		WN_LOG(log, WN_LOG_INFO, "main", "listening on %s", name);
	}
	if (!(n->engine_type->caps & WN_ENGINE_CAP_KEYS)) {
		char desc[128];
		wn_engine_describe(n->engine, desc, sizeof(desc));
		WN_LOG(log, WN_LOG_INFO, "main",
		       "server ready: engine %s, %s, fixed target",
		       n->engine_type->name, desc);
		return 0;
	}
	char key[WN_KEY_B64_LEN + 1];
	wn_key_encode(id->ed_pk, key);
	WN_LOG(log, WN_LOG_INFO, "main",
	       "server ready: key %s, engine %s, %zu client key%s, %s", key,
	       n->engine_type->name, sc->n_allow_client,
	       sc->n_allow_client == 1 ? "" : "s",
	       sc->has_target ? "fixed target" : "targets by allow rules");
	return 0;
}

int wn_node_client(struct wn_node *n, struct wn_loop *loop, struct wn_log *log,
                   const struct wn_identity *id, const struct wn_config *cfg)
{
	const struct wn_client_cfg *cc = &cfg->client;
	node_init(n, loop, log, id);
	n->engine_type = wn_engine_find(engine_name(cc->engine.kind));
	if (!n->engine_type)
		return WN_EINVAL;
	struct wn_engine_conf ec;
	engine_conf(n, &cc->engine, &ec);
	ec.server_key = cc->server_key;
	ec.idle_timeout_ms = cc->dead_peer_timeout_ms;
	ec.keepalive_ms = cc->keepalive_ms;
	ec.handshake_timeout_ms = cc->dead_peer_timeout_ms;
	ec.failover_ms = cc->failover_ms;
	ec.probe_ms = cc->probe_ms;
	int rc = wn_engine_client_new(n->engine_type, &ec, &n->engine);
	if (rc != 0) {
		WN_LOG(log, WN_LOG_ERROR, "main", "cannot start: %s",
		       wn_strerror(rc));
		return rc;
	}
	/* One carrier per server address, tried in order (failover). */
	struct wn_carrier_handler h = wn_engine_handler(n->engine);
	for (size_t i = 0; i < cc->n_server && i < WN_NODE_MAX_CARRIERS; i++) {
		struct sockaddr_storage server;
		socklen_t slen;
		char sname[128];
		wn_endpoint_format(&cc->server[i], sname, sizeof(sname));
		if (resolve(&cc->server[i], &server, &slen) != 0) {
			WN_LOG(log, WN_LOG_ERROR, "main", "cannot resolve %s",
			       sname);
			return WN_EUNREACH;
		}
		struct wn_carrier **slot = &n->carriers[n->ncarriers];
		rc = open_path(n, cc, i, &server, slen, &h, slot);
		if (rc == 0)
			n->ncarriers++;
		if (rc == 0)
			rc = wn_engine_add_path(
			    n->engine, *slot, (struct sockaddr *)&server, slen);
		if (rc != 0) {
			WN_LOG(log, WN_LOG_ERROR, "main", "cannot start %s: %s",
			       sname, wn_strerror(rc));
			return rc;
		}
	}
	struct wn_tunnel *tunnel = wn_engine_tunnel(n->engine);
	/* A relay must hold a whole stream window of delivered, unconsumed
	 * data (tunnel.h). */
	size_t out_limit = wn_tunnel_recv_window(tunnel);
	n->fwd = calloc(cfg->n_forwards ? cfg->n_forwards : 1, sizeof(*n->fwd));
	for (size_t i = 0; n->fwd && i < cfg->n_forwards; i++) {
		const struct wn_forward_cfg *f = &cfg->forwards[i];
		struct wn_forward_opts fopts;
		wn_app_forward_opts(f, &fopts);
		/* Engine kcptun: the server has the one target, and streams
		 * carry none; the listen address stands in for it in logs. */
		if (!fopts.target)
			fopts.target = &f->listen;
		fopts.out_limit = out_limit;
		char l[128];
		wn_endpoint_format(&f->listen, l, sizeof(l));
		rc = wn_forward_open(loop, log, tunnel, &fopts,
		                     &n->fwd[n->nfwd]);
		if (rc != 0) {
			WN_LOG(log, WN_LOG_ERROR, "main",
			       "forward %s: cannot listen on %s: %s", f->name,
			       l, wn_strerror(rc));
			return rc;
		}
		n->nfwd++;
	}
	n->socks = calloc(cfg->n_socks ? cfg->n_socks : 1, sizeof(*n->socks));
	for (size_t i = 0; n->socks && i < cfg->n_socks; i++) {
		const struct wn_socks5_cfg *sc = &cfg->socks[i];
		struct wn_socks5_front_opts so;
		wn_app_socks5_opts(sc, &so);
		so.out_limit = out_limit;
		rc = wn_socks5_front_open(loop, log, tunnel, &so,
		                          &n->socks[n->nsocks]);
		if (rc != 0) {
			char l[128];
			WN_LOG(log, WN_LOG_ERROR, "main",
			       "socks5 %s: cannot listen on %s: %s", sc->name,
			       wn_endpoint_format(&sc->listen, l, sizeof(l)),
			       wn_strerror(rc));
			return rc;
		}
		n->nsocks++;
	}
	n->udps = calloc(cfg->n_udps ? cfg->n_udps : 1, sizeof(*n->udps));
	for (size_t i = 0; n->udps && i < cfg->n_udps; i++) {
		const struct wn_forward_cfg *uc = &cfg->udps[i];
		struct wn_udp_front_opts uo;
		char l[128];

		wn_app_udp_opts(uc, &uo);
		wn_endpoint_format(&uc->listen, l, sizeof(l));
		/* Config checks refuse engine kcptun with UDP forwards; this
		 * is the engine's own word on it. */
		if (!(n->engine_type->caps & WN_ENGINE_CAP_DATAGRAM) ||
		    !wn_tunnel_has_datagrams(tunnel)) {
			WN_LOG(log, WN_LOG_ERROR, "main",
			       "udp %s: engine %s carries no datagrams, so "
			       "it cannot serve UDP forwards",
			       uc->name, n->engine_type->name);
			return WN_ENOTSUP;
		}
		rc = wn_udp_front_open(loop, log, tunnel, &uo,
		                       &n->udps[n->nudps]);
		if (rc != 0) {
			WN_LOG(log, WN_LOG_ERROR, "main",
			       "udp %s: cannot listen on %s: %s", uc->name, l,
			       wn_strerror(rc));
			return rc;
		}
		n->nudps++;
	}
	if (!n->fwd || !n->socks || !n->udps)
		return WN_ENOMEM;
	rc = wn_engine_go(n->engine);
	if (rc != 0) {
		WN_LOG(log, WN_LOG_ERROR, "main", "cannot start: %s",
		       wn_strerror(rc));
		return rc;
	}
	char name[128];
	wn_endpoint_format(&cc->server[0], name, sizeof(name));
	WN_LOG(log, WN_LOG_INFO, "main", "client ready: server %s%s, engine %s",
	       name, cc->n_server > 1 ? " (and fallbacks)" : "",
	       n->engine_type->name);
	return 0;
}

void wn_node_close(struct wn_node *n)
{
	if (n->closed)
		return;
	n->closed = 1;
	for (size_t i = 0; i < n->nfwd; i++)
		wn_forward_close(n->fwd[i]);
	for (size_t i = 0; i < n->nsocks; i++)
		wn_socks5_front_close(n->socks[i]);
	/* Flows belong to the engine: their front ends go first. */
	for (size_t i = 0; i < n->nudps; i++)
		wn_udp_front_close(n->udps[i]);
	if (n->engine)
		wn_engine_close(n->engine);
	if (n->dialer)
		wn_dialer_close(n->dialer);
	/* The engine has said goodbye to its peers by now. */
	for (size_t i = 0; i < n->ncarriers; i++)
		wn_carrier_close(n->carriers[i]);
	free(n->fwd);
	free(n->socks);
	free(n->udps);
	n->fwd = NULL;
	n->socks = NULL;
	n->udps = NULL;
	n->nudps = 0;
	n->engine = NULL;
	n->dialer = NULL;
	n->nfwd = n->nsocks = n->ncarriers = 0;
}

/* ---- the commands ----------------------------------------------------- */

struct daemon {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_config cfg;
	struct wn_identity id;
	uv_signal_t sigint, sigterm;
	uv_timer_t trim;
	int stopping;
	struct wn_node node;
};

/* glibc keeps the memory of freed sessions, streams and buffers in its
 * heaps, so after a burst of clients the process stayed at its peak RSS
 * long after they left (docs/stress.md, churn). Handing free pages back
 * now and then costs one walk of the free lists. */
#define TRIM_EVERY_MS 30000

static void on_trim(uv_timer_t *h)
{
	(void)h;
#ifdef __GLIBC__
	(void)malloc_trim(0);
#endif
}

static void shutdown_daemon(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	WN_LOG(&d->log, WN_LOG_INFO, "main", "shutting down (%s)", why);
	wn_node_close(&d->node);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->trim, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	shutdown_daemon(h->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* Loads and checks the configuration for a role; prints problems. */
static int load(struct daemon *d, enum wn_role role, int argc, char **argv)
{
	wn_config_init(&d->cfg);
	wn_cli_load(&d->cfg, role, argc, argv, NULL, NULL);
	if (d->cfg.n_diags == 0)
		wn_config_validate(&d->cfg, role);
	if (d->cfg.n_diags == 0)
		wn_config_load_keys(&d->cfg, role,
		                    role == WN_ROLE_SERVER ? &d->id : NULL,
		                    role == WN_ROLE_CLIENT ? &d->id : NULL);
	if (d->cfg.n_diags == 0 && role == WN_ROLE_CLIENT)
		wn_config_load_users(&d->cfg);
	if (d->cfg.n_diags > 0 || d->cfg.oom) {
		wn_cli_print_diags(&d->cfg, stderr);
		fprintf(stderr, "warren %s: configuration has %zu problem%s\n",
		        role == WN_ROLE_SERVER ? "server" : "client",
		        d->cfg.n_diags, d->cfg.n_diags == 1 ? "" : "s");
		return 1;
	}
	return 0;
}

static int start_loop(struct daemon *d, int level)
{
	if (wn_loop_init(&d->loop) != 0) {
		fprintf(stderr, "warren: cannot start the event loop\n");
		return 1;
	}
	wn_log_init(&d->log, level, STDERR_FILENO);
	(void)wn_fdlimit_raise(&d->log);
	uv_signal_init(wn_loop_uv(&d->loop), &d->sigint);
	uv_signal_init(wn_loop_uv(&d->loop), &d->sigterm);
	d->sigint.data = d->sigterm.data = d;
	uv_signal_start(&d->sigint, on_signal, SIGINT);
	uv_signal_start(&d->sigterm, on_signal, SIGTERM);
	uv_timer_init(wn_loop_uv(&d->loop), &d->trim);
	uv_timer_start(&d->trim, on_trim, TRIM_EVERY_MS, TRIM_EVERY_MS);
	uv_unref((uv_handle_t *)&d->trim);
	/* A peer that goes away must not kill us with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* Runs the loop (after a failed start: only to close what was opened) and
 * releases everything. Returns 0 if the node started. */
static int finish(struct daemon *d, int rc)
{
	if (rc != 0)
		shutdown_daemon(d, "startup failed");
	wn_loop_run(&d->loop);
	wn_loop_close(&d->loop);
	wn_identity_wipe(&d->id);
	wn_config_free(&d->cfg);
	free(d);
	return rc != 0 ? 1 : 0;
}

static int run(enum wn_role role, int argc, char **argv)
{
	struct daemon *d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	if (load(d, role, argc, argv) != 0) {
		wn_config_free(&d->cfg);
		free(d);
		return 1;
	}
	int level = role == WN_ROLE_SERVER ? d->cfg.server.log_level
	                                   : d->cfg.client.log_level;
	if (start_loop(d, level) != 0) {
		wn_config_free(&d->cfg);
		free(d);
		return 1;
	}
	int rc =
	    role == WN_ROLE_SERVER
	        ? wn_node_server(&d->node, &d->loop, &d->log, &d->id, &d->cfg)
	        : wn_node_client(&d->node, &d->loop, &d->log, &d->id, &d->cfg);
	return finish(d, rc);
}

int wn_cmd_server(int argc, char **argv)
{
	return run(WN_ROLE_SERVER, argc, argv);
}

int wn_cmd_client(int argc, char **argv)
{
	return run(WN_ROLE_CLIENT, argc, argv);
}
