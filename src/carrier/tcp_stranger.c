/* The tcp carrier's server side: connections that are not a client's
 * (tcp_server_int.h). */
#include <sodium.h>

#include "carrier/tcp_server_int.h"
#include "carrier/tls.h"
#include "util/err.h"

/* A stranger is held until the connection's preamble deadline (random,
 * from accept: tcp_server.c), whatever it sent: a hold that started at
 * the 115th byte would show a prober where the preamble ends. One found
 * out after that deadline (a preamble that arrived just in time, then
 * failed) is held for a random short while. */
#define HOLD_LATE_MS 2000

static void hold(struct wn_tsrv_conn *tc, const char *why)
{
	struct wn_tsrv *t = tc->srv;

	tc->state = TC_STRANGER;
	if (tc->deadline_ms <= now_ms(t))
		tc->deadline_ms =
		    now_ms(t) + 1 + randombytes_uniform(HOLD_LATE_MS);
	t->strangers++;
	WN_LOG_RL(t->b.log, &t->b.rl, now_ms(t), WN_LOG_INFO, LOG_COMP,
	          "%s: conn from %s: %s: held in silence", t->b.base.name,
	          tc->peer, why);
}

/* tls: answers a stranger as a web server would, then closes. */
static void answer(struct wn_tsrv_conn *tc, int looked_like_http, int plain)
{
	struct wn_tsrv *t = tc->srv;
	char buf[1024];
	size_t n;
	int rc;

	tc->state = TC_ANSWERED;
	t->strangers++;
	WN_LOG_RL(t->b.log, &t->b.rl, now_ms(t), WN_LOG_INFO, LOG_COMP,
	          "%s: conn from %s: %s: answered as a web server",
	          t->b.base.name, tc->peer,
	          plain              ? "plain HTTP"
	          : looked_like_http ? "HTTP request"
	                             : "no preamble");
	if (t->b.o.fallback == WN_FALLBACK_CLOSE) {
		wn_tsrv_conn_end(tc, WN_ECLOSED, "stranger");
		return;
	}
	if (t->b.o.fallback == WN_FALLBACK_FILE && !plain) {
		rc = wn_tcpconn_write(&tc->l.s, t->fallback, t->fallback_len);
	} else {
		n = wn_http_answer(buf, sizeof(buf), looked_like_http, plain,
		                   (long long)(wn_wall_ms() / 1000));
		rc = plain ? wn_tcpconn_write_raw(&tc->l.s, buf, n)
		           : wn_tcpconn_write(&tc->l.s, buf, n);
	}
	if (rc != 0) {
		wn_tsrv_conn_end(tc, WN_ECLOSED, "stranger");
		return;
	}
	tc->l.s.end_when_flushed = true;
	tc->deadline_ms = now_ms(t) + 5000; /* a reader that never reads */
}

/* tls: reads an HTTP request's head (discarding it) as a web server's
 * parser does, and answers at the byte where it is decided: a 404 at the
 * empty line, a 400 at the first byte a request head cannot have there,
 * or at the head's size limit. The limit is drawn per connection, from
 * 8 to 16 KiB (web servers' header buffers are of that order), so that
 * no fixed byte count tells this server apart. */
#define HTTP_LIMIT_MIN 8192
#define HTTP_LIMIT_SPREAD 8192

void wn_tsrv_http_feed(struct wn_tsrv_conn *tc, const uint8_t *p, size_t n)
{
	size_t used;

	if (tc->http.limit == 0)
		wn_httphead_init(
		    &tc->http, HTTP_LIMIT_MIN +
		                   randombytes_uniform(HTTP_LIMIT_SPREAD + 1));
	switch (wn_httphead_feed(&tc->http, p, n, &used)) {
	case WN_HTTPHEAD_MORE:
		return;
	case WN_HTTPHEAD_DONE:
		answer(tc, 1, 0);
		return;
	case WN_HTTPHEAD_BAD:
	case WN_HTTPHEAD_TOO_LONG:
		answer(tc, 0, 0);
		return;
	}
}

void wn_tsrv_stranger(struct wn_tsrv_conn *tc, const char *why)
{
	if (tc->srv->b.tls)
		answer(tc, 0, 0);
	else
		hold(tc, why);
}

void wn_tsrv_on_not_tls(struct wn_tcpconn *s, const uint8_t *p, size_t n)
{
	struct wn_tsrv_conn *tc = (struct wn_tsrv_conn *)s;

	answer(tc, wn_http_looks_like_request(p, n), 1);
}
