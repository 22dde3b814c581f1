/* The QUIC engine behind the engine table (engine_ops.h): its defaults
 * (wn_quic_opts_default) under what the configuration set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_ops.h"
#include "engine/quic.h"
#include "util/err.h"

struct quic_engine {
	struct wn_engine base; /* first */
	struct wn_quic_client *cli;
	struct wn_quic_server *srv;
};

static struct quic_engine *QE(struct wn_engine *e)
{
	return (struct quic_engine *)e;
}

static const struct quic_engine *QEC(const struct wn_engine *e)
{
	return (const struct quic_engine *)e;
}

static void opts(const struct wn_engine_conf *c, int server,
                 struct wn_quic_opts *o)
{
	wn_quic_opts_default(o);
	o->loop = c->loop;
	o->log = c->log;
	o->id = c->id;
	if (c->max_streams)
		o->max_streams = c->max_streams;
	if (c->idle_timeout_ms)
		o->idle_timeout_ms = c->idle_timeout_ms;
	o->keepalive_ms = server            ? 0
	                  : c->keepalive_ms ? c->keepalive_ms
	                                    : o->keepalive_ms;
	if (c->handshake_timeout_ms)
		o->handshake_timeout_ms = c->handshake_timeout_ms;
	if (c->failover_ms)
		o->failover_ms = c->failover_ms;
	if (c->probe_ms)
		o->probe_ms = c->probe_ms;
}

static int make(const struct wn_engine_conf *c, int server,
                struct wn_engine **out)
{
	struct quic_engine *q = calloc(1, sizeof(*q));
	if (!q)
		return WN_ENOMEM;
	q->base.ops = &wn_quic_engine_ops;
	struct wn_quic_opts o;
	opts(c, server, &o);
	int rc = server ? wn_quic_server_new(&o, c->clients, c->n_clients,
	                                     c->accept, &q->srv)
	                : wn_quic_client_new(&o, c->server_key, NULL, &q->cli);
	if (rc != 0) {
		free(q);
		return rc;
	}
	*out = &q->base;
	return 0;
}

static int client_new(const struct wn_engine_conf *c, struct wn_engine **out)
{
	return make(c, 0, out);
}

static int server_new(const struct wn_engine_conf *c, struct wn_engine **out)
{
	return make(c, 1, out);
}

static struct wn_carrier_handler handler(struct wn_engine *e)
{
	struct quic_engine *q = QE(e);
	return q->srv ? wn_quic_server_handler(q->srv)
	              : wn_quic_client_handler(q->cli);
}

static int add_path(struct wn_engine *e, struct wn_carrier *carrier,
                    const struct sockaddr *server, socklen_t len)
{
	struct quic_engine *q = QE(e);
	return q->cli ? wn_quic_client_add_path(q->cli, carrier, server, len)
	              : WN_EINVAL;
}

static int go(struct wn_engine *e)
{
	struct quic_engine *q = QE(e);
	return q->cli ? wn_quic_client_go(q->cli) : 0;
}

static struct wn_tunnel *tunnel(struct wn_engine *e)
{
	struct quic_engine *q = QE(e);
	return q->cli ? wn_quic_client_tunnel(q->cli) : NULL;
}

static int is_up(const struct wn_engine *e)
{
	const struct quic_engine *q = QEC(e);
	return q->cli ? wn_quic_client_is_up(q->cli)
	              : wn_quic_server_sessions(q->srv) > 0;
}

static void stats(const struct wn_engine *e, struct wn_engine_stats *out)
{
	const struct quic_engine *q = QEC(e);
	const struct wn_quic_stats *s = q->cli ? wn_quic_client_stats(q->cli)
	                                       : wn_quic_server_stats(q->srv);
	memset(out, 0, sizeof(*out));
	out->sessions = q->cli ? (uint64_t)wn_quic_client_is_up(q->cli)
	                       : wn_quic_server_sessions(q->srv);
	out->sessions_opened = s->conns_opened;
	out->sessions_closed = s->conns_closed;
	out->streams_opened = s->streams_opened;
	out->streams_closed = s->streams_closed;
	out->pkts_dropped = s->pkts_dropped;
	out->auth_failures = s->auth_failures;
}

static void describe(const struct wn_engine *e, char *buf, size_t cap)
{
	(void)e;
	if (cap)
		buf[0] = '\0';
}

static void close_engine(struct wn_engine *e)
{
	struct quic_engine *q = QE(e);
	if (q->cli)
		wn_quic_client_close(q->cli);
	if (q->srv)
		wn_quic_server_close(q->srv);
	free(q);
}

const struct wn_engine_ops wn_quic_engine_ops = {
    .name = "quic",
    .caps = WN_ENGINE_CAP_DATAGRAM | WN_ENGINE_CAP_KEYS | WN_ENGINE_CAP_TARGETS,
    .client_new = client_new,
    .server_new = server_new,
    .handler = handler,
    .add_path = add_path,
    .go = go,
    .tunnel = tunnel,
    .is_up = is_up,
    .stats = stats,
    .describe = describe,
    .close = close_engine,
};
