/* `warren server` and `warren client`: wiring from configuration to a
 * running loop. Server: udp carriers -> QUIC server -> dialer. Client:
 * forwards and SOCKS5 proxies -> QUIC client -> udp carrier. SIGINT/SIGTERM shut down cleanly
 * (CONNECTION_CLOSE to the peer, every socket closed, exit 0). */
#include <netdb.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cli.h"
#include "app/commands.h"
#include "app/config.h"
#include "app/fronts.h"
#include "carrier/stream.h"
#include "carrier/udp.h"
#include "engine/kcp_engine.h"
#include "engine/quic.h"
#include "front/dialer.h"
#include "front/forward.h"
#include "front/socks5.h"
#include "io/loop.h"
#include "util/err.h"
#include "util/log.h"

#define MAX_CARRIERS 16

struct daemon {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_config cfg;
	struct wn_identity id;
	uv_signal_t sigint, sigterm;
	int stopping;
	/* server: one engine */
	struct wn_quic_server *srv;
	struct wn_kcp_server *ksrv;
	struct wn_kcptun_cfg kt; /* engine kcptun: borrowed by the engine */
	struct wn_dialer *dialer;
	/* client: one engine */
	struct wn_quic_client *cli;
	struct wn_kcp_client *kcli;
	struct wn_forward **fwd;
	size_t nfwd;
	struct wn_socks5_front **socks;
	size_t nsocks;
	struct wn_carrier *carriers[MAX_CARRIERS];
	size_t ncarriers;
};

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

static void shutdown_daemon(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = 1;
	WN_LOG(&d->log, WN_LOG_INFO, "main", "shutting down (%s)", why);
	for (size_t i = 0; i < d->nfwd; i++)
		wn_forward_close(d->fwd[i]);
	for (size_t i = 0; i < d->nsocks; i++)
		wn_socks5_front_close(d->socks[i]);
	if (d->cli)
		wn_quic_client_close(d->cli);
	if (d->kcli)
		wn_kcp_client_close(d->kcli);
	if (d->srv)
		wn_quic_server_close(d->srv);
	if (d->ksrv)
		wn_kcp_server_close(d->ksrv);
	if (d->dialer)
		wn_dialer_close(d->dialer);
	/* The engines have sent their CONNECTION_CLOSE by now. */
	for (size_t i = 0; i < d->ncarriers; i++)
		wn_carrier_close(d->carriers[i]);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
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
	uv_signal_init(wn_loop_uv(&d->loop), &d->sigint);
	uv_signal_init(wn_loop_uv(&d->loop), &d->sigterm);
	d->sigint.data = d->sigterm.data = d;
	uv_signal_start(&d->sigint, on_signal, SIGINT);
	uv_signal_start(&d->sigterm, on_signal, SIGTERM);
	/* A peer that goes away must not kill us with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* Runs the loop (after a failed start: only to close what was opened) and
 * releases everything. Returns rc. */
static int finish(struct daemon *d, int rc)
{
	if (rc != 0)
		shutdown_daemon(d, "startup failed");
	wn_loop_run(&d->loop);
	wn_loop_close(&d->loop);
	wn_identity_wipe(&d->id);
	sodium_memzero(&d->kt, sizeof(d->kt));
	free(d->fwd);
	free(d->socks);
	wn_config_free(&d->cfg);
	free(d);
	return rc;
}

static void quic_opts(struct daemon *d, const struct wn_engine_cfg *e,
                      struct wn_quic_opts *o)
{
	wn_quic_opts_default(o);
	o->loop = &d->loop;
	o->log = &d->log;
	o->id = &d->id;
	if (e->max_streams)
		o->max_streams = e->max_streams;
}

static void kcp_opts(struct daemon *d, const struct wn_engine_cfg *e,
                     int server, struct wn_kcp_engine_opts *o)
{
	wn_kcp_engine_opts_default(o);
	o->loop = &d->loop;
	o->log = &d->log;
	o->id = &d->id;
	snprintf(o->mode, sizeof(o->mode), "%s", e->mode);
	if (e->kind == WN_ENGINE_KCPTUN) {
		/* kcptun's own defaults: its windows, its MTU, KCP as the
		 * reference runs it (no pacing, no RTO floor). */
		struct wn_kcptun_cfg *k = &d->kt;
		wn_kcptun_cfg_default(k);
		wn_kcpcrypt_parse(e->crypt, &k->crypt);
		wn_kcpcrypt_derive(e->kcptun_key, k->key);
		k->datashard = e->datashard;
		k->parityshard = e->parityshard;
		k->nocomp = e->nocomp;
		k->smuxver = (int)e->smuxver;
		o->kcptun = k;
		o->snd_wnd = server ? 1024 : 128;
		o->rcv_wnd = server ? 1024 : 512;
		o->mtu = 1350;
		o->pacing = 0;
		o->rto_srtt_pct = 0;
		o->stream_window = 2 * 1024 * 1024; /* kcptun's -streambuf */
	}
	if (e->sndwnd)
		o->snd_wnd = e->sndwnd;
	if (e->rcvwnd)
		o->rcv_wnd = e->rcvwnd;
	if (e->mtu)
		o->mtu = e->mtu;
	if (e->max_streams)
		o->max_streams = e->max_streams;
}

int wn_cmd_server(int argc, char **argv)
{
	struct daemon *d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	if (load(d, WN_ROLE_SERVER, argc, argv) != 0) {
		wn_config_free(&d->cfg);
		free(d);
		return 1;
	}
	const struct wn_server_cfg *sc = &d->cfg.server;
	if (start_loop(d, sc->log_level) != 0) {
		wn_config_free(&d->cfg);
		free(d);
		return 1;
	}
	struct wn_quic_opts o;
	quic_opts(d, &sc->engine, &o);
	struct wn_kcp_engine_opts ko;
	kcp_opts(d, &sc->engine, 1, &ko);
	int kcp = sc->engine.kind != WN_ENGINE_QUIC;
	/* A relay must be able to hold a whole stream window of delivered,
	 * unconsumed data (tunnel.h). */
	struct wn_dialer_opts dopts;
	wn_app_dialer_opts(sc, &dopts);
	dopts.out_limit = kcp ? ko.stream_window : o.stream_window_max;
	int rc = wn_dialer_new(&d->loop, &d->log, &dopts, &d->dialer);
	o.idle_timeout_ms = ko.idle_timeout_ms = sc->idle_timeout_ms;
	o.keepalive_ms = ko.keepalive_ms = 0;
	const uint8_t(*clients)[WN_KEY_LEN] =
	    (const uint8_t(*)[WN_KEY_LEN])sc->allow_client;
	if (rc == 0 && kcp)
		rc = wn_kcp_server_new(&ko, clients, sc->n_allow_client,
		                       wn_dialer_handler(d->dialer), &d->ksrv);
	else if (rc == 0)
		rc = wn_quic_server_new(&o, clients, sc->n_allow_client,
		                        wn_dialer_handler(d->dialer), &d->srv);
	if (rc != 0) {
		WN_LOG(&d->log, WN_LOG_ERROR, "main", "cannot start: %s",
		       wn_strerror(rc));
		return finish(d, 1);
	}
	struct wn_carrier_handler h = kcp ? wn_kcp_server_handler(d->ksrv)
	                                  : wn_quic_server_handler(d->srv);
	for (size_t i = 0; i < sc->n_listen && i < MAX_CARRIERS; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		char name[128];
		wn_endpoint_format(&sc->listen[i], name, sizeof(name));
		if (resolve(&sc->listen[i], &ss, &len) != 0) {
			WN_LOG(&d->log, WN_LOG_ERROR, "main",
			       "cannot resolve %s", name);
			return finish(d, 1);
		}
		if (sc->listen[i].scheme != WN_SCHEME_UDP) {
			struct wn_stream_opts so = {
			    .id = (unsigned)i + 1,
			    .tls = sc->listen[i].scheme == WN_SCHEME_TLS,
			    .sni = sc->sni,
			    .tls_cert = sc->tls_cert[0] ? sc->tls_cert : NULL,
			    .tls_key = sc->tls_key[0] ? sc->tls_key : NULL,
			    .fallback = (int)sc->fallback,
			    .fallback_file = sc->fallback_path,
			    .idle_close_ms = sc->idle_close_ms,
			    .max_conns = sc->max_conns,
			    .pad_max = sc->padding,
			};
			rc = wn_stream_server_open(
			    &d->loop, &d->log, (struct sockaddr *)&ss, len,
			    &d->id, &so, &h, &d->carriers[d->ncarriers]);
		} else {
			struct wn_udp_opts uo = {.id = (unsigned)i + 1};
			rc = wn_udp_carrier_open(
			    &d->loop, &d->log, (struct sockaddr *)&ss, len, &uo,
			    &h, &d->carriers[d->ncarriers]);
		}
		if (rc != 0) {
			WN_LOG(&d->log, WN_LOG_ERROR, "main",
			       "cannot listen on %s: %s", name,
			       wn_strerror(rc));
			return finish(d, 1);
		}
		d->ncarriers++;
		WN_LOG(&d->log, WN_LOG_INFO, "main", "listening on %s", name);
	}
	if (ko.kcptun) {
		const struct wn_engine_cfg *e = &sc->engine;
		char fec[32] = "no FEC";
		if (e->datashard)
			snprintf(fec, sizeof(fec), "FEC %u+%u", e->datashard,
			         e->parityshard);
		WN_LOG(&d->log, WN_LOG_INFO, "main",
		       "server ready: engine kcptun, crypt %s, mode %s, %s, "
		       "%s, smux v%u, fixed target",
		       e->crypt, e->mode, fec,
		       e->nocomp ? "no compression" : "snappy", e->smuxver);
		return finish(d, 0);
	}
	char key[WN_KEY_B64_LEN + 1];
	wn_key_encode(d->id.ed_pk, key);
	WN_LOG(&d->log, WN_LOG_INFO, "main",
	       "server ready: key %s, engine %s, %zu client key%s, %s", key,
	       kcp ? (ko.kcptun ? "kcptun" : "kcp") : "quic",
	       sc->n_allow_client, sc->n_allow_client == 1 ? "" : "s",
	       sc->has_target ? "fixed target" : "targets by allow rules");
	return finish(d, 0);
}

int wn_cmd_client(int argc, char **argv)
{
	struct daemon *d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	if (load(d, WN_ROLE_CLIENT, argc, argv) != 0) {
		wn_config_free(&d->cfg);
		free(d);
		return 1;
	}
	const struct wn_client_cfg *cc = &d->cfg.client;
	if (start_loop(d, cc->log_level) != 0) {
		wn_config_free(&d->cfg);
		free(d);
		return 1;
	}
	char name[128];
	wn_endpoint_format(&cc->server[0], name, sizeof(name));
	struct wn_quic_opts o;
	quic_opts(d, &cc->engine, &o);
	o.idle_timeout_ms = cc->dead_peer_timeout_ms;
	o.keepalive_ms = cc->keepalive_ms;
	o.handshake_timeout_ms = cc->dead_peer_timeout_ms;
	o.failover_ms = cc->failover_ms;
	if (cc->probe_ms)
		o.probe_ms = cc->probe_ms;
	struct wn_kcp_engine_opts ko;
	kcp_opts(d, &cc->engine, 0, &ko);
	ko.idle_timeout_ms = cc->dead_peer_timeout_ms;
	ko.keepalive_ms = cc->keepalive_ms;
	if (cc->failover_ms)
		ko.failover_ms = cc->failover_ms;
	if (cc->probe_ms)
		ko.probe_ms = cc->probe_ms;
	int kcp = cc->engine.kind != WN_ENGINE_QUIC;
	int rc = kcp ? wn_kcp_client_new(&ko, cc->server_key, NULL, &d->kcli)
	             : wn_quic_client_new(&o, cc->server_key, NULL, &d->cli);
	if (rc != 0) {
		WN_LOG(&d->log, WN_LOG_ERROR, "main", "cannot start: %s",
		       wn_strerror(rc));
		return finish(d, 1);
	}
	/* One carrier per server address, tried in order (failover). */
	size_t nserver = cc->n_server;
	for (size_t i = 0; i < nserver && i < MAX_CARRIERS; i++) {
		const struct wn_endpoint *ep = &cc->server[i];
		struct sockaddr_storage server, local;
		socklen_t slen, llen;
		char sname[128];
		wn_endpoint_format(ep, sname, sizeof(sname));
		if (resolve(ep, &server, &slen) != 0) {
			WN_LOG(&d->log, WN_LOG_ERROR, "main",
			       "cannot resolve %s", sname);
			return finish(d, 1);
		}
		struct wn_carrier_handler h =
		    kcp ? wn_kcp_client_handler(d->kcli)
		        : wn_quic_client_handler(d->cli);
		struct wn_carrier **slot = &d->carriers[d->ncarriers];
		if (ep->scheme != WN_SCHEME_UDP) {
			/* SNI: as configured, else the server's name. */
			const char *sni = cc->sni[0]                 ? cc->sni
			                  : ep->kind == WN_HOST_NAME ? ep->host
			                                             : NULL;
			struct wn_stream_opts so = {
			    .id = (unsigned)i + 1,
			    .tls = ep->scheme == WN_SCHEME_TLS,
			    .sni = sni,
			    .rotate_after_ms = cc->rotate_after_ms,
			    .rotate_bytes = cc->rotate_bytes,
			    .conns = cc->conns,
			    .pad_max = cc->padding,
			};
			rc = wn_stream_client_open(
			    &d->loop, &d->log, (struct sockaddr *)&server, slen,
			    cc->server_key, &so, &h, slot);
		} else {
			struct wn_udp_opts uo = {.id = (unsigned)i + 1};
			rc = wn_udp_wildcard(server.ss_family, &local, &llen);
			if (rc == 0)
				rc = wn_udp_carrier_open(
				    &d->loop, &d->log,
				    (struct sockaddr *)&local, llen, &uo, &h,
				    slot);
		}
		if (rc == 0)
			d->ncarriers++;
		if (rc == 0 && kcp)
			rc = wn_kcp_client_add_path(
			    d->kcli, *slot, (struct sockaddr *)&server, slen);
		else if (rc == 0)
			rc = wn_quic_client_add_path(
			    d->cli, *slot, (struct sockaddr *)&server, slen);
		if (rc != 0) {
			WN_LOG(&d->log, WN_LOG_ERROR, "main",
			       "cannot start %s: %s", sname, wn_strerror(rc));
			return finish(d, 1);
		}
	}
	struct wn_tunnel *tunnel =
	    kcp ? wn_kcp_client_tunnel(d->kcli) : wn_quic_client_tunnel(d->cli);
	d->fwd =
	    calloc(d->cfg.n_forwards ? d->cfg.n_forwards : 1, sizeof(*d->fwd));
	for (size_t i = 0; d->fwd && i < d->cfg.n_forwards; i++) {
		const struct wn_forward_cfg *f = &d->cfg.forwards[i];
		struct wn_forward_opts fopts;
		wn_app_forward_opts(f, &fopts);
		/* Engine kcptun: the server has the one target, and streams
		 * carry none; the listen address stands in for it in logs. */
		if (!fopts.target)
			fopts.target = &f->listen;
		fopts.out_limit = kcp ? ko.stream_window : o.stream_window_max;
		char l[128];
		wn_endpoint_format(&f->listen, l, sizeof(l));
		rc = wn_forward_open(&d->loop, &d->log, tunnel, &fopts,
		                     &d->fwd[d->nfwd]);
		if (rc != 0) {
			WN_LOG(&d->log, WN_LOG_ERROR, "main",
			       "forward %s: cannot listen on %s: %s", f->name,
			       l, wn_strerror(rc));
			return finish(d, 1);
		}
		d->nfwd++;
	}
	d->socks =
	    calloc(d->cfg.n_socks ? d->cfg.n_socks : 1, sizeof(*d->socks));
	for (size_t i = 0; d->socks && i < d->cfg.n_socks; i++) {
		const struct wn_socks5_cfg *sc = &d->cfg.socks[i];
		struct wn_socks5_front_opts so;
		wn_app_socks5_opts(sc, &so);
		so.out_limit = kcp ? ko.stream_window : o.stream_window_max;
		rc = wn_socks5_front_open(&d->loop, &d->log, tunnel, &so,
		                          &d->socks[d->nsocks]);
		if (rc != 0) {
			char l[128];
			WN_LOG(&d->log, WN_LOG_ERROR, "main",
			       "socks5 %s: cannot listen on %s: %s", sc->name,
			       wn_endpoint_format(&sc->listen, l, sizeof(l)),
			       wn_strerror(rc));
			return finish(d, 1);
		}
		d->nsocks++;
	}
	if (kcp)
		wn_kcp_client_go(d->kcli);
	else
		wn_quic_client_go(d->cli);
	WN_LOG(&d->log, WN_LOG_INFO, "main",
	       "client ready: server %s%s, engine %s", name,
	       nserver > 1 ? " (and fallbacks)" : "",
	       kcp ? (ko.kcptun ? "kcptun" : "kcp") : "quic");
	return finish(d, 0);
}
