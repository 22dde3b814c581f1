/* enginepair: see enginepair.h. */
#include "support/enginepair.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bufq.h"
#include "util/err.h"

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "enginepair: %s: %s\n", what, arg);
	abort();
}

/* ---- the echo ----------------------------------------------------------- */

/* The echo keeps what the stream would not take yet and credits the peer
 * only for bytes it has written back. */
struct echo {
	struct wn_bufq pending;
	int eof;
};

static void echo_drain(struct wn_stream *s, struct echo *e)
{
	while (wn_bufq_len(&e->pending) > 0) {
		struct iovec iov;
		wn_bufq_peek_iov(&e->pending, &iov, 1);
		ssize_t n = wn_stream_write(s, iov.iov_base, iov.iov_len);
		if (n < 0)
			die("echo", wn_strerror((int)n));
		if (n == 0)
			return; /* on_writable comes back here */
		wn_bufq_consume(&e->pending, (size_t)n);
		wn_stream_consumed(s, (size_t)n);
	}
	if (e->eof)
		wn_stream_shutdown(s);
}

static void echo_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                      size_t len)
{
	struct echo *e = ctx;
	if (wn_bufq_write(&e->pending, d, len) != (ssize_t)len)
		die("echo", "queue full");
	echo_drain(s, e);
}

static void echo_writable(void *ctx, struct wn_stream *s)
{
	echo_drain(s, ctx);
}

static void echo_eof(void *ctx, struct wn_stream *s)
{
	struct echo *e = ctx;
	e->eof = 1;
	echo_drain(s, e);
}

static void echo_closed(void *ctx, struct wn_stream *s, int err)
{
	struct echo *e = ctx;
	(void)s;
	(void)err;
	wn_bufq_free(&e->pending);
	free(e);
}

void wn_echo_stream(struct wn_stream *s)
{
	struct echo *e = calloc(1, sizeof(*e));
	if (!e || wn_bufq_init(&e->pending, 16384, SIZE_MAX / 2) != 0)
		die("echo", "out of memory");
	struct wn_stream_handler h = {
	    .ctx = e,
	    .on_data = echo_data,
	    .on_eof = echo_eof,
	    .on_writable = echo_writable,
	    .on_closed = echo_closed,
	};
	wn_stream_set_handler(s, &h);
}

/* ---- the echo client ---------------------------------------------------- */

static void ec_pump(struct wn_echo_client *c)
{
	while (c->s && c->sent < c->len) {
		ssize_t n = wn_stream_write(c->s, c->payload + c->sent,
		                            c->len - c->sent);
		if (n < 0)
			die("echo client", wn_strerror((int)n));
		if (n == 0)
			return; /* on_writable will call again */
		c->sent += (size_t)n;
	}
	if (c->s)
		wn_stream_shutdown(c->s);
}

static void ec_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                    size_t len)
{
	struct wn_echo_client *c = ctx;
	if (c->got + len > c->len)
		die("echo client", "more came back than was sent");
	memcpy(c->echoed + c->got, d, len);
	c->got += len;
	wn_stream_consumed(s, len);
}

static void ec_eof(void *ctx, struct wn_stream *s)
{
	(void)s;
	((struct wn_echo_client *)ctx)->eof = 1;
}

static void ec_writable(void *ctx, struct wn_stream *s)
{
	(void)s;
	ec_pump(ctx);
}

static void ec_closed(void *ctx, struct wn_stream *s, int err)
{
	struct wn_echo_client *c = ctx;
	(void)s;
	c->closed = 1;
	c->close_err = err;
	c->s = NULL;
}

void wn_echo_client_open(struct wn_echo_client *c, struct wn_tunnel *t,
                         const char *target, size_t len)
{
	memset(c, 0, sizeof(*c));
	c->len = len;
	c->payload = malloc(len ? len : 1);
	c->echoed = malloc(len ? len : 1);
	if (!c->payload || !c->echoed)
		die("echo client", "out of memory");
	randombytes_buf(c->payload, len);
	struct wn_endpoint ep;
	const char *why;
	if (wn_endpoint_parse(target, WN_SCHEME_TCP | WN_SCHEME_UNIX,
	                      WN_SCHEME_TCP, 0, &ep, &why) != 0)
		die(target, why);
	struct wn_stream_handler h = {
	    .ctx = c,
	    .on_data = ec_data,
	    .on_eof = ec_eof,
	    .on_writable = ec_writable,
	    .on_closed = ec_closed,
	};
	c->s = wn_tunnel_open_stream(t, &ep, &h);
	if (!c->s)
		die("echo client", "no stream");
	ec_pump(c);
}

int wn_echo_client_intact(const struct wn_echo_client *c)
{
	return c->eof && c->got == c->len &&
	       memcmp(c->echoed, c->payload, c->len) == 0;
}

void wn_echo_client_free(struct wn_echo_client *c)
{
	free(c->payload);
	free(c->echoed);
	c->payload = c->echoed = NULL;
}

/* ---- the pair ----------------------------------------------------------- */

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct wn_enginepair *p = ctx;
	(void)t;
	p->accepted++;
	p->have_target = target != NULL;
	if (target)
		p->target = *target;
	if (p->deny)
		wn_stream_reset(s, WN_STREAM_DENIED);
	else
		wn_echo_stream(s);
}

static void on_up(void *ctx)
{
	((struct wn_enginepair *)ctx)->ups++;
}

static void on_down(void *ctx, const char *why)
{
	struct wn_enginepair *p = ctx;
	p->downs++;
	snprintf(p->down_why, sizeof(p->down_why), "%s", why);
}

static void guard_fired(uv_timer_t *t)
{
	struct wn_enginepair *p = t->data;
	p->timed_out = 1;
	wn_loop_stop(&p->loop);
}

static void conf_init(struct wn_enginepair *p, struct wn_engine_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->loop = &p->loop;
	c->log = &p->log;
}

void wn_enginepair_init(struct wn_enginepair *p, const char *engine,
                        uint64_t guard_ms)
{
	const char *lvl = getenv("WN_TEST_LOG");
	memset(p, 0, sizeof(*p));
	if (wn_loop_init(&p->loop) != 0)
		die("loop", "init");
	wn_log_init(&p->log, lvl ? wn_log_level_parse(lvl) : WN_LOG_WARN, 2);
	uv_timer_init(wn_loop_uv(&p->loop), &p->guard);
	p->guard.data = p;
	uv_timer_start(&p->guard, guard_fired, guard_ms, 0);
	if (!engine)
		return;
	p->type = wn_engine_find(engine);
	if (!p->type)
		die("no engine", engine);
	p->accept =
	    (struct wn_accept_handler){.ctx = p, .on_stream = on_stream};
	p->events = (struct wn_engine_events){
	    .ctx = p, .on_up = on_up, .on_down = on_down};
	conf_init(p, &p->sconf);
	conf_init(p, &p->cconf);
	p->sconf.accept = &p->accept;
	p->cconf.events = &p->events;
	if (p->type->caps & WN_ENGINE_CAP_KEYS) {
		if (wn_identity_generate(&p->sid) != 0 ||
		    wn_identity_generate(&p->cid) != 0)
			die("identity", "generate");
		p->sconf.id = &p->sid;
		p->sconf.clients = &p->cid.ed_pk;
		p->sconf.n_clients = 1;
		p->cconf.id = &p->cid;
		p->cconf.server_key = p->sid.ed_pk;
	}
	struct wn_carrier_handler none = {0};
	wn_memcarrier_init(&p->sc, &p->loop, "10.0.0.2", 4433, none);
	wn_memcarrier_init(&p->cc, &p->loop, "10.0.0.1", 50000, none);
	wn_memcarrier_pair(&p->sc, &p->cc);
}

void wn_enginepair_start(struct wn_enginepair *p)
{
	int rc = wn_engine_server_new(p->type, &p->sconf, &p->srv);
	if (rc != 0)
		die("server", wn_strerror(rc));
	rc = wn_engine_client_new(p->type, &p->cconf, &p->cli);
	if (rc != 0)
		die("client", wn_strerror(rc));
	p->sc.base.h = wn_engine_handler(p->srv);
	p->cc.base.h = wn_engine_handler(p->cli);
	rc = wn_engine_add_path(p->cli, &p->cc.base, wn_memcarrier_addr(&p->sc),
	                        sizeof(p->sc.addr));
	if (rc == 0)
		rc = wn_engine_go(p->cli);
	if (rc != 0)
		die("client start", wn_strerror(rc));
	p->tunnel = wn_engine_tunnel(p->cli);
}

static void run_for_fired(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

void wn_enginepair_run_for(struct wn_enginepair *p, uint64_t ms)
{
	uv_timer_t t;
	int done = 0;
	uv_timer_init(wn_loop_uv(&p->loop), &t);
	t.data = &done;
	uv_timer_start(&t, run_for_fired, ms, 0);
	while (!done && !p->timed_out)
		uv_run(wn_loop_uv(&p->loop), UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(wn_loop_uv(&p->loop), UV_RUN_NOWAIT);
}

void wn_enginepair_finish(struct wn_enginepair *p)
{
	if (p->cli)
		wn_engine_close(p->cli);
	if (p->srv)
		wn_engine_close(p->srv);
	/* Let the engines send their goodbyes and free themselves. */
	uv_close((uv_handle_t *)&p->guard, NULL);
	for (int i = 0; i < 4; i++)
		uv_run(wn_loop_uv(&p->loop), UV_RUN_NOWAIT);
	if (p->type) {
		wn_memcarrier_close(&p->sc);
		wn_memcarrier_close(&p->cc);
	}
	if (wn_loop_close(&p->loop) != 0)
		die("loop", "a handle was left open");
	wn_identity_wipe(&p->sid);
	wn_identity_wipe(&p->cid);
}
