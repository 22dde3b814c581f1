/* Private to the tcp and tls carriers' server side (tcp_server.c,
 * tcp_stranger.c): its connections, sessions and listener. */
#ifndef WN_CARRIER_TCP_SERVER_INT_H
#define WN_CARRIER_TCP_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "carrier/srclimit.h"
#include "carrier/tcp_int.h"
#include "core/httphead.h"
#include "crypto/preamble.h"
#include "util/cidmap.h"
#include "util/list.h"
#include "util/log.h"

#define LOG_COMP "carrier"

enum wn_tsrv_conn_state {
	TC_PREAMBLE, /* waiting for the preamble */
	TC_PADDING,  /* skipping the preamble's padding */
	TC_BOUND,    /* framed packets */
	TC_STRANGER, /* not a preamble: held in silence, then closed */
	TC_HTTP,     /* tls: an HTTP request; answered once its header is in */
	TC_ANSWERED, /* tls: answered; closes when the answer is out */
};

struct wn_tsrv_sess;

struct wn_tsrv_conn {
	struct wn_tcp_link l; /* first */
	struct wn_tsrv *srv;
	struct wn_tsrv_sess *sess;
	enum wn_tsrv_conn_state state;
	bool bound;           /* counted in srv->nbound */
	struct wn_list link;  /* srv->conns */
	uint64_t deadline_ms; /* preamble (and padding) or hold deadline */
	wn_srckey src;        /* the peer's source prefix */
	bool src_counted;     /* counted in srv->srcs: not proved yet */
	size_t skip;          /* padding bytes still to skip */
	struct sockaddr_in6 vaddr;
	uint8_t pre[WN_PREAMBLE_SEALED];
	size_t prelen;
	struct wn_httphead http; /* TC_HTTP: the request head so far */
	char peer[64];
};

struct wn_tsrv_sess {
	uint8_t tag[WN_VADDR_TAG_LEN];
	uint8_t sid[WN_PREAMBLE_SID_LEN];
	uint8_t secret[WN_PREAMBLE_SECRET_LEN];
	uint64_t counter;
	struct wn_tsrv_conn
	    *conns[WN_SGROUP_SERVER_MAX]; /* bound connections */
	size_t nconns;
	struct wn_tsrv_conn *pref; /* sends go here while it is not loaded */
	struct sockaddr_in6 vaddr; /* the session's address while it has
	                               connections: its tag and the first
	                               one's number */
	uint64_t last_ms; /* last time a connection was bound or ended */
	uint64_t born_ms;
	/* The engine authenticated a packet from it (carrier.h): a client's,
	 * not a stranger's who only knows the server's public key. */
	bool authed;
	struct wn_list link; /* srv->sessions */
};

struct wn_tsrv {
	struct wn_tcp_base b; /* first */
	const struct wn_identity *id;
	uv_tcp_t listener;
	struct wn_timer reaper;
	bool reaper_live;
	uint16_t port;
	struct sockaddr_in6 local;
	struct wn_cidmap by_tag, by_sid;
	struct wn_list conns, sessions;
	size_t nconns, nbound, nsessions;
	struct wn_srclimit srcs; /* unproved connections per source */
	uint32_t reap_ms;
	bool accept_stalled;  /* a connection is pending, not yet taken */
	unsigned fail_allocs; /* fault injection (wn_tcp_server_fail_allocs) */
	char *fallback;       /* tls, WN_FALLBACK_FILE: the answer */
	size_t fallback_len;
	uint64_t strangers, replays, unauthed, source_limited;
};

static inline uint64_t now_ms(const struct wn_tsrv *t)
{
	return wn_loop_now_ms(t->b.loop);
}

/* Closes a connection; reports its session's address down if it was the
 * session's last (tcp_server.c). */
void wn_tsrv_conn_end(struct wn_tsrv_conn *tc, int err, const char *why);

/* A connection that is not a client's (tcp_stranger.c): tcp holds it in
 * silence for a while, tls answers as a web server would. */
void wn_tsrv_stranger(struct wn_tsrv_conn *tc, const char *why);

/* tls: reads an HTTP request's header, then answers (tcp_stranger.c). */
void wn_tsrv_http_feed(struct wn_tsrv_conn *tc, const uint8_t *p, size_t n);

/* tls: the first bytes were not TLS (wn_tcpconn's on_not_tls). */
void wn_tsrv_on_not_tls(struct wn_tcpconn *s, const uint8_t *p, size_t n);

#endif
