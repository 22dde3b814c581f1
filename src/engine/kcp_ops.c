/* The KCP engine behind the engine table (engine_ops.h): the native
 * profile ("kcp") and the kcptun profile ("kcptun"), with their defaults
 * (wn_kcp_engine_opts_default, wn_kcptun_opts_default) under what the
 * configuration set. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_ops.h"
#include "engine/kcp_engine.h"
#include "util/err.h"

struct kcp_engine {
	struct wn_engine base; /* first */
	struct wn_kcp_client *cli;
	struct wn_kcp_server *srv;
	char desc[96]; /* kcptun: what a kcptun peer must match */
};

static struct kcp_engine *KE(struct wn_engine *e)
{
	return (struct kcp_engine *)e;
}

static const struct kcp_engine *KEC(const struct wn_engine *e)
{
	return (const struct kcp_engine *)e;
}

/* The engine's options: its defaults, then what the configuration set;
 * for kcptun also the profile (into *kt). Returns 0 or WN_EINVAL. */
static int opts(const struct wn_engine_conf *c, int kcptun, int server,
                struct wn_kcp_engine_opts *o, struct wn_kcptun_cfg *kt)
{
	if (kcptun)
		wn_kcptun_opts_default(o, server);
	else
		wn_kcp_engine_opts_default(o);
	o->loop = c->loop;
	o->log = c->log;
	o->id = c->id;
	if (c->mode)
		snprintf(o->mode, sizeof(o->mode), "%s", c->mode);
	if (c->snd_wnd)
		o->snd_wnd = c->snd_wnd;
	if (c->rcv_wnd)
		o->rcv_wnd = c->rcv_wnd;
	if (c->mtu)
		o->mtu = c->mtu;
	if (c->max_streams)
		o->max_streams = c->max_streams;
	if (c->idle_timeout_ms)
		o->idle_timeout_ms = c->idle_timeout_ms;
	o->keepalive_ms = server            ? 0
	                  : c->keepalive_ms ? c->keepalive_ms
	                                    : o->keepalive_ms;
	if (c->failover_ms)
		o->failover_ms = c->failover_ms;
	if (c->probe_ms)
		o->probe_ms = c->probe_ms;
	if (!kcptun)
		return 0;
	wn_kcptun_cfg_default(kt);
	if (c->crypt && wn_kcpcrypt_parse(c->crypt, &kt->crypt) != 0)
		return WN_EINVAL;
	if (c->passphrase)
		wn_kcpcrypt_derive(c->passphrase, kt->key);
	if (c->has_fec) {
		kt->datashard = c->datashard;
		kt->parityshard = c->parityshard;
	}
	kt->nocomp = c->nocomp;
	if (c->smuxver)
		kt->smuxver = (int)c->smuxver;
	o->kcptun = kt;
	return 0;
}

static void describe_kcptun(struct kcp_engine *k,
                            const struct wn_kcp_engine_opts *o,
                            const struct wn_kcptun_cfg *kt)
{
	char fec[32] = "no FEC";
	if (kt->datashard)
		snprintf(fec, sizeof(fec), "FEC %u+%u", kt->datashard,
		         kt->parityshard);
	snprintf(k->desc, sizeof(k->desc),
	         "crypt %s, mode %s, %s, %s, smux v%d",
	         wn_kcpcrypt_name(kt->crypt), o->mode, fec,
	         kt->nocomp ? "no compression" : "snappy", kt->smuxver);
}

static int make(const struct wn_engine_ops *ops, const struct wn_engine_conf *c,
                int server, struct wn_engine **out)
{
	int kcptun = ops == &wn_kcptun_engine_ops;
	struct kcp_engine *k = calloc(1, sizeof(*k));
	if (!k)
		return WN_ENOMEM;
	k->base.ops = ops;
	struct wn_kcp_engine_opts o;
	struct wn_kcptun_cfg kt;
	int rc = opts(c, kcptun, server, &o, &kt);
	if (rc == 0 && kcptun)
		describe_kcptun(k, &o, &kt);
	if (rc == 0 && server)
		rc = wn_kcp_server_new(&o, c->clients, c->n_clients, c->accept,
		                       &k->srv);
	else if (rc == 0)
		rc = wn_kcp_client_new(&o, c->server_key, NULL, &k->cli);
	/* The engine keeps its own copy of the profile's key. */
	sodium_memzero(&kt, sizeof(kt));
	if (rc != 0) {
		free(k);
		return rc;
	}
	*out = &k->base;
	return 0;
}

static int kcp_client_new(const struct wn_engine_conf *c,
                          struct wn_engine **out)
{
	return make(&wn_kcp_engine_ops, c, 0, out);
}

static int kcp_server_new(const struct wn_engine_conf *c,
                          struct wn_engine **out)
{
	return make(&wn_kcp_engine_ops, c, 1, out);
}

static int kcptun_client_new(const struct wn_engine_conf *c,
                             struct wn_engine **out)
{
	return make(&wn_kcptun_engine_ops, c, 0, out);
}

static int kcptun_server_new(const struct wn_engine_conf *c,
                             struct wn_engine **out)
{
	return make(&wn_kcptun_engine_ops, c, 1, out);
}

static struct wn_carrier_handler handler(struct wn_engine *e)
{
	struct kcp_engine *k = KE(e);
	return k->srv ? wn_kcp_server_handler(k->srv)
	              : wn_kcp_client_handler(k->cli);
}

static int add_path(struct wn_engine *e, struct wn_carrier *carrier,
                    const struct sockaddr *server, socklen_t len)
{
	struct kcp_engine *k = KE(e);
	return k->cli ? wn_kcp_client_add_path(k->cli, carrier, server, len)
	              : WN_EINVAL;
}

static int go(struct wn_engine *e)
{
	struct kcp_engine *k = KE(e);
	return k->cli ? wn_kcp_client_go(k->cli) : 0;
}

static struct wn_tunnel *tunnel(struct wn_engine *e)
{
	struct kcp_engine *k = KE(e);
	return k->cli ? wn_kcp_client_tunnel(k->cli) : NULL;
}

static int is_up(const struct wn_engine *e)
{
	const struct kcp_engine *k = KEC(e);
	return k->cli ? wn_kcp_client_is_up(k->cli)
	              : wn_kcp_server_sessions(k->srv) > 0;
}

static void stats(const struct wn_engine *e, struct wn_engine_stats *out)
{
	const struct kcp_engine *k = KEC(e);
	const struct wn_kcp_engine_stats *s =
	    k->cli ? wn_kcp_client_stats(k->cli) : wn_kcp_server_stats(k->srv);
	memset(out, 0, sizeof(*out));
	out->sessions = k->cli ? (uint64_t)wn_kcp_client_is_up(k->cli)
	                       : wn_kcp_server_sessions(k->srv);
	out->sessions_opened = s->sessions_opened;
	out->sessions_closed = s->sessions_closed;
	out->streams_opened = s->streams_opened;
	out->streams_closed = s->streams_closed;
	out->pkts_dropped = s->pkts_dropped;
	out->auth_failures = s->auth_failures;
}

static void describe(const struct wn_engine *e, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", KEC(e)->desc);
}

static void close_engine(struct wn_engine *e)
{
	struct kcp_engine *k = KE(e);
	if (k->cli)
		wn_kcp_client_close(k->cli);
	if (k->srv)
		wn_kcp_server_close(k->srv);
	free(k);
}

const struct wn_engine_ops wn_kcp_engine_ops = {
    .name = "kcp",
    .caps = WN_ENGINE_CAP_KEYS | WN_ENGINE_CAP_TARGETS,
    .client_new = kcp_client_new,
    .server_new = kcp_server_new,
    .handler = handler,
    .add_path = add_path,
    .go = go,
    .tunnel = tunnel,
    .is_up = is_up,
    .stats = stats,
    .describe = describe,
    .close = close_engine,
};

/* kcptun: no identities (the passphrase is the secret) and no target in
 * the streams (the server has one). Datagrams: never (kcptun has none). */
const struct wn_engine_ops wn_kcptun_engine_ops = {
    .name = "kcptun",
    .caps = 0,
    .client_new = kcptun_client_new,
    .server_new = kcptun_server_new,
    .handler = handler,
    .add_path = add_path,
    .go = go,
    .tunnel = tunnel,
    .is_up = is_up,
    .stats = stats,
    .describe = describe,
    .close = close_engine,
};
