/* `warren demo`: a server and a client on loopback with fresh keys, a
 * forward to a built-in echo target, data through it both ways, a summary,
 * a clean exit. Everything runs in this one process and loop, over real
 * UDP and TCP sockets on 127.0.0.1: the same code `warren server` and
 * `warren client` run.
 *
 *   app --tcp--> forward --QUIC/udp--> dialer --tcp--> echo
 *    ^                                                   |
 *    +--------------------- the same bytes back ---------+ */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/commands.h"
#include "app/config.h"
#include "app/fronts.h"
#include "carrier/udp.h"
#include "engine/quic.h"
#include "front/dialer.h"
#include "front/forward.h"
#include "util/err.h"

#define CHUNK (64 * 1024)
#define ECHO_PAUSE (4u << 20) /* echo stops reading above this backlog */

struct demo {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_identity sid, cid;
	struct wn_config cfg; /* holds the server and forward settings */
	struct wn_quic_server *srv;
	struct wn_quic_client *cli;
	struct wn_dialer *dialer;
	struct wn_forward *fwd;
	struct wn_carrier *scar, *ccar;
	uv_tcp_t echo_listener;
	uv_tcp_t app;
	uv_connect_t connect_req;
	uv_timer_t guard;
	uint64_t total, sent, received;
	crypto_generichash_state hsent, hrecv;
	uint8_t key[crypto_stream_chacha20_KEYBYTES];
	uint64_t t_start, t_first;
	int writes_in_flight;
	int app_open, guard_open, echo_open;
	int done, failed;
	char why[160];
};

/* ---- the built-in target: echo with backpressure ---------------------- */

struct echo_conn {
	uv_tcp_t tcp;
	struct demo *d;
	int eof; /* the peer finished: never read again */
};

static void echo_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	buf->base = malloc(CHUNK);
	buf->len = buf->base ? CHUNK : 0;
}

static void echo_free_conn(uv_handle_t *h)
{
	free(h->data);
}

static void echo_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void echo_written(uv_write_t *req, int status)
{
	(void)status;
	uv_stream_t *s = req->handle;
	struct echo_conn *c = s->data;
	free(req->data);
	free(req);
	/* Reading resumes after backpressure, but never after EOF: a second
	 * EOF would start a second shutdown. */
	if (!uv_is_closing((uv_handle_t *)s) && !c->eof &&
	    s->write_queue_size < ECHO_PAUSE / 2)
		uv_read_start(s, echo_alloc, echo_read);
}

static void echo_shut(uv_shutdown_t *req, int status)
{
	(void)status;
	/* Cancelled (UV_ECANCELED) when the handle is already closing. */
	if (!uv_is_closing((uv_handle_t *)req->handle))
		uv_close((uv_handle_t *)req->handle, echo_free_conn);
	free(req);
}

static void echo_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	if (n <= 0) {
		free(buf->base);
		if (n == 0)
			return;
		uv_read_stop(s);
		((struct echo_conn *)s->data)->eof = 1;
		uv_shutdown_t *sr = malloc(sizeof(*sr));
		if (n != UV_EOF || !sr || uv_shutdown(sr, s, echo_shut) != 0) {
			free(sr);
			if (!uv_is_closing((uv_handle_t *)s))
				uv_close((uv_handle_t *)s, echo_free_conn);
		}
		return;
	}
	uv_write_t *req = malloc(sizeof(*req));
	uv_buf_t out = uv_buf_init(buf->base, (unsigned)n);
	if (!req || uv_write(req, s, &out, 1, echo_written) != 0) {
		free(req);
		free(buf->base);
		uv_close((uv_handle_t *)s, echo_free_conn);
		return;
	}
	req->data = buf->base;
	if (s->write_queue_size > ECHO_PAUSE)
		uv_read_stop(s);
}

static void echo_accept(uv_stream_t *listener, int status)
{
	struct demo *d = listener->data;
	if (status < 0)
		return;
	struct echo_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->d = d;
	uv_tcp_init(wn_loop_uv(&d->loop), &c->tcp);
	c->tcp.data = c;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, echo_free_conn);
		return;
	}
	uv_read_start((uv_stream_t *)&c->tcp, echo_alloc, echo_read);
}

/* ---- the application: sends, reads back, compares --------------------- */

static void finish(struct demo *d, const char *fail)
{
	if (d->done)
		return;
	d->done = 1;
	if (fail) {
		d->failed = 1;
		snprintf(d->why, sizeof(d->why), "%s", fail);
	}
	if (d->guard_open)
		uv_close((uv_handle_t *)&d->guard, NULL);
	if (d->app_open && !uv_is_closing((uv_handle_t *)&d->app))
		uv_close((uv_handle_t *)&d->app, NULL);
	if (d->echo_open)
		uv_close((uv_handle_t *)&d->echo_listener, NULL);
	if (d->fwd)
		wn_forward_close(d->fwd);
	if (d->cli)
		wn_quic_client_close(d->cli);
	if (d->srv)
		wn_quic_server_close(d->srv);
	if (d->dialer)
		wn_dialer_close(d->dialer);
	if (d->ccar)
		wn_carrier_close(d->ccar);
	if (d->scar)
		wn_carrier_close(d->scar);
}

static void app_write_more(struct demo *d);

static void app_written(uv_write_t *req, int status)
{
	struct demo *d = req->data;
	free(req);
	d->writes_in_flight--;
	if (status < 0) {
		finish(d, "write to the forward failed");
		return;
	}
	app_write_more(d);
}

static void shutdown_done(uv_shutdown_t *req, int status)
{
	(void)status;
	free(req);
}

/* Keeps a few chunks in flight; the tunnel's backpressure paces us. */
static void app_write_more(struct demo *d)
{
	while (!d->done && d->sent < d->total && d->writes_in_flight < 8) {
		size_t n =
		    d->total - d->sent < CHUNK ? d->total - d->sent : CHUNK;
		uv_write_t *req = malloc(sizeof(*req) + n);
		if (!req) {
			finish(d, "out of memory");
			return;
		}
		uint8_t *p = (uint8_t *)(req + 1);
		uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
		uint64_t block = d->sent / CHUNK;
		memcpy(nonce, &block, sizeof(block));
		crypto_stream_chacha20(p, n, nonce, d->key);
		crypto_generichash_update(&d->hsent, p, n);
		uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
		req->data = d;
		if (uv_write(req, (uv_stream_t *)&d->app, &b, 1, app_written) !=
		    0) {
			free(req);
			finish(d, "write to the forward failed");
			return;
		}
		d->writes_in_flight++;
		d->sent += n;
		if (d->sent == d->total) {
			uv_shutdown_t *sr = malloc(sizeof(*sr));
			if (sr && uv_shutdown(sr, (uv_stream_t *)&d->app,
			                      shutdown_done) != 0)
				free(sr);
		}
	}
}

static void app_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	static char rbuf[CHUNK]; /* read-only scratch, hashed at once */
	buf->base = rbuf;
	buf->len = sizeof(rbuf);
}

static void app_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct demo *d = s->data;
	if (n < 0) {
		finish(d, n == UV_EOF && d->received == d->total
		              ? NULL
		              : "the tunnel closed early");
		return;
	}
	if (n > 0 && d->received == 0)
		d->t_first = uv_hrtime();
	crypto_generichash_update(&d->hrecv, (uint8_t *)buf->base, (size_t)n);
	d->received += (uint64_t)n;
}

static void app_connected(uv_connect_t *req, int status)
{
	struct demo *d = req->data;
	if (status < 0) {
		finish(d, "cannot connect to the forward");
		return;
	}
	uv_read_start((uv_stream_t *)&d->app, app_alloc, app_read);
	app_write_more(d);
}

static void guard_fired(uv_timer_t *t)
{
	finish(t->data, "timed out after 60 s");
}

/* ---- wiring ------------------------------------------------------------ */

static int set(struct demo *d, enum wn_role role, const char *key,
               const char *value)
{
	return wn_config_set_flag(&d->cfg, role, key, key, value);
}

static int setup(struct demo *d)
{
	char buf[160];
	struct sockaddr_in lo = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &lo.sin_addr);

	/* The echo target on an ephemeral port. */
	uv_tcp_init(wn_loop_uv(&d->loop), &d->echo_listener);
	d->echo_open = 1;
	d->echo_listener.data = d;
	if (uv_tcp_bind(&d->echo_listener, (struct sockaddr *)&lo, 0) != 0 ||
	    uv_listen((uv_stream_t *)&d->echo_listener, 64, echo_accept) != 0)
		return WN_EIO;
	struct sockaddr_in echo;
	int elen = sizeof(echo);
	uv_tcp_getsockname(&d->echo_listener, (struct sockaddr *)&echo, &elen);
	char target[64];
	snprintf(target, sizeof(target), "127.0.0.1:%u", ntohs(echo.sin_port));

	/* The server: allows exactly the echo target to this client. */
	char ckey[WN_KEY_B64_LEN + 1];
	wn_key_encode(d->cid.ed_pk, ckey);
	wn_config_init(&d->cfg);
	if (set(d, WN_ROLE_SERVER, "allow-client", ckey) ||
	    set(d, WN_ROLE_SERVER, "allow", target))
		return WN_EINTERNAL;
	struct wn_quic_opts o;
	wn_quic_opts_default(&o);
	/* A relay holds up to a whole stream window (tunnel.h). */
	struct wn_dialer_opts dopts;
	wn_app_dialer_opts(&d->cfg.server, &dopts);
	dopts.out_limit = o.stream_window_max;
	int rc = wn_dialer_new(&d->loop, &d->log, &dopts, &d->dialer);
	o.loop = &d->loop;
	o.log = &d->log;
	o.id = &d->sid;
	if (rc == 0)
		rc = wn_quic_server_new(&o, &d->cid.ed_pk, 1,
		                        wn_dialer_handler(d->dialer), &d->srv);
	struct wn_carrier_handler sh;
	if (rc == 0) {
		sh = wn_quic_server_handler(d->srv);
		rc = wn_udp_carrier_open(&d->loop, &d->log,
		                         (struct sockaddr *)&lo, sizeof(lo),
		                         NULL, &sh, &d->scar);
	}
	if (rc != 0)
		return rc;
	struct sockaddr_storage saddr;
	socklen_t slen = sizeof(saddr);
	d->scar->ops->local_addr(d->scar, &saddr, &slen);

	/* The client: one forward on an ephemeral port to the echo. */
	o.id = &d->cid;
	rc = wn_quic_client_new(&o, d->sid.ed_pk, NULL, &d->cli);
	struct wn_carrier_handler ch;
	if (rc == 0) {
		struct sockaddr_storage any;
		socklen_t alen;
		wn_udp_wildcard(AF_INET, &any, &alen);
		ch = wn_quic_client_handler(d->cli);
		rc = wn_udp_carrier_open(&d->loop, &d->log,
		                         (struct sockaddr *)&any, alen, NULL,
		                         &ch, &d->ccar);
	}
	if (rc != 0)
		return rc;
	snprintf(buf, sizeof(buf), "127.0.0.1:0=%s", target);
	if (set(d, WN_ROLE_CLIENT, "L", buf))
		return WN_EINTERNAL;
	struct wn_forward_opts fopts;
	wn_app_forward_opts(&d->cfg.forwards[0], &fopts);
	fopts.out_limit = o.stream_window_max;
	rc = wn_forward_open(&d->loop, &d->log, wn_quic_client_tunnel(d->cli),
	                     &fopts, &d->fwd);
	if (rc != 0)
		return rc;
	wn_quic_client_start(d->cli, d->ccar, (struct sockaddr *)&saddr, slen);

	/* The application connects to the forward. */
	struct sockaddr_storage fwd;
	wn_forward_sockname(d->fwd, &fwd);
	uv_tcp_init(wn_loop_uv(&d->loop), &d->app);
	d->app_open = 1;
	d->app.data = d;
	d->connect_req.data = d;
	d->t_start = uv_hrtime();
	if (uv_tcp_connect(&d->connect_req, &d->app, (struct sockaddr *)&fwd,
	                   app_connected) != 0)
		return WN_EIO;
	uv_timer_init(wn_loop_uv(&d->loop), &d->guard);
	d->guard_open = 1;
	d->guard.data = d;
	uv_timer_start(&d->guard, guard_fired, 60000, 0);
	printf("warren demo: server on udp://127.0.0.1:%u, forward "
	       "127.0.0.1:%u -> echo %s\n",
	       ntohs(((struct sockaddr_in *)&saddr)->sin_port),
	       ntohs(((struct sockaddr_in *)&fwd)->sin_port), target);
	return 0;
}

int wn_cmd_demo(int argc, char **argv)
{
	uint64_t mib = 64;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
			char *end;
			mib = strtoull(argv[++i], &end, 10);
			if (*end || mib == 0 || mib > 65536) {
				fprintf(stderr, "warren demo: --mib takes "
				                "1..65536\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: warren demo [--mib N]\n");
			return 2;
		}
	}
	struct demo *d = calloc(1, sizeof(*d));
	if (!d || sodium_init() < 0 || wn_loop_init(&d->loop) != 0) {
		free(d);
		return 1;
	}
	wn_log_init(&d->log, WN_LOG_INFO, STDERR_FILENO);
	d->total = mib << 20;
	randombytes_buf(d->key, sizeof(d->key));
	crypto_generichash_init(&d->hsent, NULL, 0, 32);
	crypto_generichash_init(&d->hrecv, NULL, 0, 32);
	if (wn_identity_generate(&d->sid) || wn_identity_generate(&d->cid)) {
		free(d);
		return 1;
	}
	char skey[WN_KEY_B64_LEN + 1], ckey[WN_KEY_B64_LEN + 1];
	wn_key_encode(d->sid.ed_pk, skey);
	wn_key_encode(d->cid.ed_pk, ckey);
	printf("warren demo: fresh keys: server %s, client %s\n", skey, ckey);
	int rc = setup(d);
	if (rc != 0) {
		fprintf(stderr, "warren demo: cannot set up: %s\n",
		        wn_strerror(rc));
		finish(d, "setup failed");
	}
	wn_loop_run(&d->loop);
	wn_loop_close(&d->loop);
	uint8_t hs[32], hr[32];
	crypto_generichash_final(&d->hsent, hs, sizeof(hs));
	crypto_generichash_final(&d->hrecv, hr, sizeof(hr));
	double secs = (double)(uv_hrtime() - d->t_start) / 1e9;
	int ok = !d->failed && d->received == d->total &&
	         memcmp(hs, hr, sizeof(hs)) == 0;
	if (ok) {
		printf("warren demo: sent %llu MiB through the tunnel and got "
		       "the same %llu MiB back (BLAKE2b match)\n",
		       (unsigned long long)mib, (unsigned long long)mib);
		printf("warren demo: first byte back %.1f ms after connecting "
		       "(the tunnel's handshake included); %.2f s in "
		       "all, %.0f Mbit/s each way\n",
		       (double)(d->t_first - d->t_start) / 1e6, secs,
		       (double)d->total * 8 / secs / 1e6);
	} else {
		printf("warren demo: FAILED: %s (sent %llu, got back %llu "
		       "bytes%s)\n",
		       d->why[0] ? d->why : "data differs",
		       (unsigned long long)d->sent,
		       (unsigned long long)d->received,
		       d->received == d->total ? ", contents differ" : "");
	}
	wn_identity_wipe(&d->sid);
	wn_identity_wipe(&d->cid);
	wn_config_free(&d->cfg);
	free(d);
	return ok ? 0 : 1;
}
