/* The SOCKS5 front end: the handshake on accepted connections, then the
 * relay. See socks5.h for the modes and src/core/socks5.h for the parser.
 *
 * A connection (struct socks_conn) goes through phases:
 *
 *   HANDSHAKE  reading the greeting, credentials and request (timer: the
 *              handshake timeout)
 *   CONFIRM    standard mode: the stream is open with our handler; waiting
 *              for the server's status byte (timer: the confirm timeout)
 *   RELAY      the relay has socket and stream
 *   ASSOC      UDP ASSOCIATE: the relay socket is open and answered; the
 *              TCP connection is only watched for its end, which ends
 *              the association
 *   DONE       the relay finished; the timer (and an association's UDP
 *              socket) are closing, then the connection is freed from the
 *              last close callback
 *
 * The relay owns the socket throughout (it was accepted into one by the
 * forward front end, which also closes every relay when the proxy closes);
 * its on_finish is ours, and is the one way to DONE. A connection is freed
 * once its timer and, for an association, its UDP socket have closed.
 *
 * UDP ASSOCIATE lives in socks5_udp.c; socks5_int.h is what the two
 * files share. */
#include "front/socks5.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/socks5.h"
#include "front/forward.h"
#include "front/socks5_int.h"
#include "util/container.h"
#include "util/err.h"

uint8_t wn_socks5_rep_for(int stream_err)
{
	switch (stream_err) {
	case WN_STREAM_DENIED:
		return WN_SOCKS5_REP_NOT_ALLOWED;
	case WN_STREAM_UNREACHABLE:
		return WN_SOCKS5_REP_HOST_UNREACHABLE;
	case WN_STREAM_REFUSED:
		return WN_SOCKS5_REP_REFUSED;
	case WN_STREAM_TIMEOUT:
		return WN_SOCKS5_REP_TTL_EXPIRED;
	default:
		/* Includes BAD_HEADER: a server too old for the confirm
		 * flag resets such streams as malformed. */
		return WN_SOCKS5_REP_GENERAL;
	}
}

static void front_free(struct wn_socks5_front *sf)
{
	if (sf->creds)
		sodium_memzero(sf->creds, sf->n_users * sizeof(*sf->creds));
	free(sf->creds);
	free(sf);
}

/* ---- credentials ------------------------------------------------------ */

static void cred_blob(uint8_t out[CRED_BLOB], const char *user, size_t ulen,
                      const char *pass, size_t plen)
{
	memset(out, 0, CRED_BLOB);
	out[0] = (uint8_t)ulen;
	memcpy(out + 1, user, ulen);
	out[1 + WN_SOCKS5_CRED_MAX] = (uint8_t)plen;
	memcpy(out + 2 + WN_SOCKS5_CRED_MAX, pass, plen);
}

/* Compares against every user, always all of them, in constant time per
 * user, so timing tells neither which user nor how much matched. */
static bool check_user(const struct wn_socks5_front *sf,
                       const struct wn_socks5 *p)
{
	uint8_t blob[CRED_BLOB];
	int ok = 0;
	size_t i;

	cred_blob(blob, p->user, p->user_len, p->pass, p->pass_len);
	for (i = 0; i < sf->n_users; i++)
		ok |= sodium_memcmp(blob, sf->creds[i], CRED_BLOB) == 0;
	sodium_memzero(blob, sizeof(blob));
	return ok != 0;
}

/* ---- ending ----------------------------------------------------------- */

void wn_s5_conn_closed_one(struct socks_conn *c)
{
	struct wn_socks5_front *sf = c->sf;

	if (--c->closing > 0)
		return;
	sodium_memzero(&c->p, sizeof(c->p));
	free(c->u);
	free(c);
	if (--sf->conns == 0 && sf->closing)
		front_free(sf);
}

static void on_timer_closed(struct wn_timer *t)
{
	wn_s5_conn_closed_one(wn_container_of(t, struct socks_conn, timer));
}

/* The relay finished: closed by us, by the application, by the stream or
 * by the proxy closing. The one way to DONE. */
static void on_relay_finish(void *ctx, struct wn_relay *r, int err)
{
	struct socks_conn *c = ctx;
	struct wn_stream *s = c->s;

	(void)r;
	(void)err;
	c->r = NULL;
	c->phase = P_DONE;
	if (s) {
		/* Released with both directions open: the engine resets it. */
		c->s = NULL;
		wn_stream_release(s);
	}
	if (c->u)
		wn_s5_udp_end(
		    c->u); /* the association ends with its connection */
	wn_timer_close(&c->timer, on_timer_closed);
}

void wn_s5_count_reply(struct wn_socks5_front *sf, const uint8_t *reply)
{
	if (reply[1] < sizeof(sf->stats.replies) / sizeof(sf->stats.replies[0]))
		sf->stats.replies[reply[1]]++;
}

/* Sends out (if anything) and closes the connection with a FIN, so the
 * application reads the reply rather than a reset. */
static void end_with(struct socks_conn *c, const struct wn_socks5_out *out)
{
	if (out->len)
		(void)wn_relay_hs_write(c->r, out->buf, out->len);
	wn_relay_end(c->r);
}

void wn_s5_reply_fail(struct socks_conn *c, uint8_t rep)
{
	struct wn_socks5_out out;

	wn_socks5_reply(rep, &out);
	wn_s5_count_reply(c->sf, out.buf);
	end_with(c, &out);
}

/* ---- standard mode: waiting for the server's answer ------------------- */

static void on_s_data(void *ctx, struct wn_stream *s, const uint8_t *data,
                      size_t len)
{
	struct socks_conn *c = ctx;
	struct wn_socks5_out out;

	if (c->phase != P_CONFIRM || len == 0)
		return;
	c->s = NULL;
	if (data[0] != STATUS_OK) {
		WN_LOG_RL(c->sf->log, &c->sf->rl, wn_loop_now_ms(c->sf->loop),
		          WN_LOG_WARN, LOG_COMP,
		          "socks5 %s: %s: unknown status %u from the server",
		          c->sf->name, c->target, data[0]);
		wn_stream_release(s);
		wn_s5_reply_fail(c, WN_SOCKS5_REP_GENERAL);
		return;
	}
	wn_stream_consumed(s, 1);
	wn_socks5_reply(WN_SOCKS5_REP_SUCCEEDED, &out);
	wn_s5_count_reply(c->sf, out.buf);
	if (wn_relay_hs_write(c->r, out.buf, out.len) < 0) {
		wn_stream_release(s);
		wn_relay_close(c->r, WN_STREAM_ABORTED);
		return;
	}
	c->phase = P_RELAY;
	wn_timer_stop(&c->timer);
	/* The target's first data may have come with the status byte. */
	if (wn_relay_attach(c->r, s, &c->p.target, data + 1, len - 1) < 0) {
		wn_stream_release(s);
		wn_relay_close(c->r, WN_STREAM_INTERNAL);
	}
}

static void on_s_eof(void *ctx, struct wn_stream *s)
{
	struct socks_conn *c = ctx;

	/* A FIN before the status byte: no answer is an answer. */
	c->s = NULL;
	wn_stream_release(s);
	wn_s5_reply_fail(c, WN_SOCKS5_REP_GENERAL);
}

static void on_s_writable(void *ctx, struct wn_stream *s)
{
	(void)ctx;
	(void)s;
}

static void on_s_closed(void *ctx, struct wn_stream *s, int err)
{
	struct socks_conn *c = ctx;
	uint8_t rep = wn_socks5_rep_for(err == WN_STREAM_OK ? -1 : err);

	(void)s;
	c->s = NULL;
	c->sf->stats.failed_replies++;
	WN_LOG_RL(c->sf->log, &c->sf->rl, wn_loop_now_ms(c->sf->loop),
	          WN_LOG_INFO, LOG_COMP, "socks5 %s: %s: %s (reply %u)",
	          c->sf->name, c->target, wn_stream_err_str(err), rep);
	wn_s5_reply_fail(c, rep);
}

/* ---- the handshake ---------------------------------------------------- */

static void do_connect(struct socks_conn *c)
{
	struct wn_socks5_front *sf = c->sf;
	struct wn_socks5_out out;

	wn_endpoint_format(&c->p.target, c->target, sizeof(c->target));
	sf->stats.connects++;
	if (sf->eager) {
		if (wn_relay_open(c->r, sf->tunnel, &c->p.target) < 0) {
			wn_s5_reply_fail(c, WN_SOCKS5_REP_GENERAL);
			return;
		}
		c->phase = P_RELAY;
		wn_timer_stop(&c->timer);
		/* Before any stream data can reach the socket: handlers
		 * never run inside wn_relay_open. */
		wn_socks5_reply(WN_SOCKS5_REP_SUCCEEDED, &out);
		wn_s5_count_reply(sf, out.buf);
		if (wn_relay_hs_write(c->r, out.buf, out.len) < 0)
			wn_relay_close(c->r, WN_STREAM_ABORTED);
		return;
	}
	c->h = (struct wn_stream_handler){c, on_s_data, on_s_eof, on_s_writable,
	                                  on_s_closed};
	c->s = wn_tunnel_open_stream_flags(sf->tunnel, &c->p.target,
	                                   WN_OPEN_CONFIRM, &c->h);
	if (!c->s) {
		wn_s5_reply_fail(c, WN_SOCKS5_REP_GENERAL);
		return;
	}
	c->phase = P_CONFIRM;
	wn_timer_start(&c->timer, sf->confirm_ms, 0);
}

static void on_hs_read(void *ctx, struct wn_relay *r, ssize_t n);

static void hs_next(struct socks_conn *c)
{
	int rc = wn_relay_hs_read(c->r, c->rbuf, wn_socks5_want(&c->p),
	                          on_hs_read, c);

	if (rc < 0)
		wn_relay_close(c->r, WN_STREAM_INTERNAL);
}

static void handle(struct socks_conn *c, const uint8_t *data, size_t len)
{
	struct wn_socks5_front *sf = c->sf;
	struct wn_socks5_out out;
	enum wn_socks5_event ev;
	size_t used;
	bool auth_failed = false;

	for (;;) {
		ev = wn_socks5_feed(&c->p, data, len, &used, &out);
		data += used;
		len -= used;
		if (ev == WN_SOCKS5_CHECK_AUTH) {
			auth_failed = !check_user(sf, &c->p);
			ev = wn_socks5_auth_done(&c->p, !auth_failed, &out);
		}
		switch (ev) {
		case WN_SOCKS5_MORE:
			hs_next(c);
			return;
		case WN_SOCKS5_SEND:
			if (wn_relay_hs_write(c->r, out.buf, out.len) < 0) {
				wn_relay_close(c->r, WN_STREAM_ABORTED);
				return;
			}
			if (len == 0) {
				hs_next(c);
				return;
			}
			continue;
		case WN_SOCKS5_CONNECT:
			do_connect(c);
			return;
		case WN_SOCKS5_UDP_ASSOCIATE:
			wn_s5_associate(c);
			return;
		default:
			if (auth_failed)
				sf->stats.auth_failures++;
			else
				sf->stats.bad_handshakes++;
			WN_LOG_RL(sf->log, &sf->rl, wn_loop_now_ms(sf->loop),
			          WN_LOG_INFO, LOG_COMP,
			          "socks5 %s: refused: %s", sf->name,
			          c->p.error ? c->p.error : "?");
			if (out.len >= 10)
				wn_s5_count_reply(sf, out.buf);
			end_with(c, &out);
			return;
		}
	}
}

static void on_hs_read(void *ctx, struct wn_relay *r, ssize_t n)
{
	struct socks_conn *c = ctx;

	if (n < 0) {
		/* The application left mid-handshake. */
		wn_relay_close(r, WN_STREAM_ABORTED);
		return;
	}
	handle(c, c->rbuf, (size_t)n);
}

static void on_timer(struct wn_timer *t)
{
	struct socks_conn *c = wn_container_of(t, struct socks_conn, timer);
	struct wn_socks5_front *sf = c->sf;
	struct wn_stream *s = c->s;

	if (c->phase == P_HANDSHAKE) {
		sf->stats.timeouts++;
		WN_LOG_RL(sf->log, &sf->rl, wn_loop_now_ms(sf->loop),
		          WN_LOG_INFO, LOG_COMP,
		          "socks5 %s: handshake timed out", sf->name);
		wn_relay_close(c->r, WN_STREAM_ABORTED);
	} else if (c->phase == P_CONFIRM && s) {
		sf->stats.timeouts++;
		c->s = NULL;
		wn_stream_reset(s, WN_STREAM_TIMEOUT);
		wn_stream_release(s);
		wn_s5_reply_fail(c, WN_SOCKS5_REP_TTL_EXPIRED);
	}
}

static void on_accept(void *ctx, struct wn_relay *r)
{
	struct wn_socks5_front *sf = ctx;
	struct socks_conn *c;

	if (sf->closing) {
		wn_relay_close(r, WN_STREAM_ABORTED);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || wn_timer_init(sf->loop, &c->timer, on_timer) < 0) {
		free(c);
		wn_relay_close(r, WN_STREAM_INTERNAL);
		return;
	}
	c->sf = sf;
	c->r = r;
	c->phase = P_HANDSHAKE;
	c->closing = 1; /* the timer */
	sf->conns++;
	sf->stats.accepted++;
	wn_socks5_init(&c->p, sf->n_users > 0);
	/* UDP ASSOCIATE needs a tunnel that carries datagrams; without, the
	 * client hears "command not supported". */
	if (wn_tunnel_has_datagrams(sf->tunnel))
		wn_socks5_enable_udp(&c->p);
	wn_relay_set_finish(r, on_relay_finish, c);
	wn_timer_start(&c->timer, sf->hs_ms, 0);
	hs_next(c);
}

/* ---- public ----------------------------------------------------------- */

int wn_socks5_front_open(struct wn_loop *loop, struct wn_log *log,
                         struct wn_tunnel *t,
                         const struct wn_socks5_front_opts *opts,
                         struct wn_socks5_front **out)
{
	struct wn_forward_opts fo = {0};
	struct wn_socks5_front *sf;
	char text[WN_UNIX_PATH_MAX + 32];
	size_t i;
	int rc;

	if (sodium_init() < 0)
		return WN_EINTERNAL;
	sf = calloc(1, sizeof(*sf));
	if (!sf)
		return WN_ENOMEM;
	if (opts->n_users) {
		sf->creds = calloc(opts->n_users, sizeof(*sf->creds));
		if (!sf->creds) {
			free(sf);
			return WN_ENOMEM;
		}
	}
	for (i = 0; i < opts->n_users; i++)
		cred_blob(sf->creds[i], opts->users[i].name,
		          strlen(opts->users[i].name), opts->users[i].pass,
		          strlen(opts->users[i].pass));
	sf->n_users = opts->n_users;
	sf->loop = loop;
	sf->log = log;
	sf->tunnel = t;
	sf->eager = opts->eager;
	snprintf(sf->name, sizeof(sf->name), "%s",
	         opts->name && opts->name[0] ? opts->name : "socks5");
	sf->hs_ms = opts->handshake_timeout_ms ? opts->handshake_timeout_ms
	                                       : WN_SOCKS5_HANDSHAKE_TIMEOUT_MS;
	sf->confirm_ms = opts->confirm_timeout_ms
	                     ? opts->confirm_timeout_ms
	                     : WN_SOCKS5_CONFIRM_TIMEOUT_MS;
	sf->rl = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 5);

	fo.name = sf->name;
	fo.listen = opts->listen;
	fo.out_limit = opts->out_limit;
	fo.backlog = opts->backlog;
	fo.on_accept = on_accept;
	fo.ctx = sf;
	fo.unix_mode = opts->unix_mode;
	fo.loopback_only = opts->n_users == 0 && !opts->unauthenticated;
	rc = wn_forward_open(loop, log, t, &fo, &sf->fwd);
	if (rc < 0) {
		front_free(sf);
		return rc;
	}
	WN_LOG(log, WN_LOG_INFO, LOG_COMP, "socks5 %s: on %s, %s, %s%s",
	       sf->name, wn_endpoint_format(&opts->listen, text, sizeof(text)),
	       sf->eager ? "eager" : "standard",
	       sf->n_users ? "username/password" : "no authentication",
	       wn_tunnel_has_datagrams(t) ? ", UDP ASSOCIATE" : "");
	*out = sf;
	return 0;
}

void wn_socks5_front_close(struct wn_socks5_front *sf)
{
	if (sf->closing)
		return;
	sf->closing = true;
	/* Closes every relay: each socks_conn ends through on_relay_finish. */
	wn_forward_close(sf->fwd);
	sf->fwd = NULL;
	if (sf->conns == 0)
		front_free(sf);
}

int wn_socks5_front_sockname(const struct wn_socks5_front *sf,
                             struct sockaddr_storage *ss)
{
	return sf->fwd ? wn_forward_sockname(sf->fwd, ss) : WN_EINVAL;
}

const struct wn_relay_set *
wn_socks5_front_relays(const struct wn_socks5_front *sf)
{
	return wn_forward_relays(sf->fwd);
}

const struct wn_socks5_front_stats *
wn_socks5_front_get_stats(const struct wn_socks5_front *sf)
{
	return &sf->stats;
}
