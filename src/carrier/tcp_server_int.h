/* Private to the tcp carrier's server side (tcp_server.c, tcp_stranger.c):
 * its connections, sessions and listener. */
#ifndef WN_CARRIER_TCP_SERVER_INT_H
#define WN_CARRIER_TCP_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "carrier/sconn.h"
#include "carrier/stream_int.h"
#include "crypto/preamble.h"
#include "util/cidmap.h"
#include "util/list.h"
#include "util/log.h"

#define LOG_COMP "carrier"

enum tconn_state {
	TC_PREAMBLE, /* waiting for the preamble */
	TC_PADDING,  /* skipping the preamble's padding */
	TC_BOUND,    /* framed packets */
	TC_STRANGER, /* not a preamble: held in silence, then closed */
	TC_HTTP,     /* tls: an HTTP request; answered once its header is in */
	TC_ANSWERED, /* tls: answered; closes when the answer is out */
};

struct tsess;

struct tconn {
	struct sconn s; /* first */
	struct tsrv *srv;
	struct tsess *sess;
	enum tconn_state state;
	bool bound;          /* counted in srv->nbound */
	struct wn_list link; /* srv->conns */
	uint64_t num;
	uint64_t deadline_ms; /* preamble or hold deadline */
	size_t skip;          /* padding bytes still to skip */
	struct sockaddr_in6 vaddr;
	uint8_t pre[WN_PREAMBLE_SEALED];
	size_t prelen;
	uint32_t crlf;     /* TC_HTTP: the last 4 bytes seen, for CRLFCRLF */
	size_t http_bytes; /* TC_HTTP: header bytes read */
	struct wn_frame_dec dec;
	uint8_t *decbuf;
	char peer[64];
};

struct tsess {
	uint8_t tag[STREAM_TAG_LEN];
	uint8_t sid[WN_PREAMBLE_SID_LEN];
	uint8_t secret[WN_PREAMBLE_SECRET_LEN];
	uint64_t counter;
	struct tconn *conns[WN_SGROUP_SERVER_MAX]; /* bound connections */
	size_t nconns;
	struct tconn *pref;        /* sends go here while it is not loaded */
	struct sockaddr_in6 vaddr; /* the session's address while it has
	                               connections: its tag and the first
	                               one's number */
	uint64_t last_ms;    /* last time a connection was bound or ended */
	struct wn_list link; /* srv->sessions */
};

struct tsrv {
	struct wn_carrier base; /* first */
	struct wn_loop *loop;
	struct wn_log *log;
	const struct wn_identity *id;
	struct wn_stream_opts o;
	uv_tcp_t listener;
	struct wn_timer reaper;
	int handles; /* libuv handles still open */
	bool closed;
	bool reaper_live;
	bool want_writable;
	uint16_t port;
	struct sockaddr_in6 local;
	struct wn_cidmap by_tag, by_sid;
	struct wn_list conns, sessions;
	size_t nconns, nbound, nsessions;
	uint64_t conn_seq;
	uint8_t rbuf[STREAM_RBUF];
	uint8_t pad[WN_FRAME_MAX]; /* padding record scratch */
	uint8_t pbuf[16384 + 256]; /* tls: one decrypted record */
	gnutls_certificate_credentials_t cred;
	char *fallback; /* tls, WN_FALLBACK_FILE: the answer */
	size_t fallback_len;
	struct wn_ratelimit rl;
	uint64_t strangers, replays;
};

static inline uint64_t now_ms(const struct tsrv *t)
{
	return wn_loop_now_ms(t->loop);
}

static inline uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Closes a connection; reports its session's address down if it was the
 * session's last (tcp_server.c). */
void tsrv_conn_end(struct tconn *tc, int err, const char *why);

/* A connection that is not a client's (tcp_stranger.c): tcp holds it in
 * silence for a while, tls answers as a web server would. */
void tsrv_stranger(struct tconn *tc, const char *why);

/* tls: reads an HTTP request's header, then answers (tcp_stranger.c). */
void tsrv_http_feed(struct tconn *tc, const uint8_t *p, size_t n);

/* tls: the first bytes were not TLS (sconn's on_not_tls). */
void tsrv_on_not_tls(struct sconn *s, const uint8_t *p, size_t n);

#endif
