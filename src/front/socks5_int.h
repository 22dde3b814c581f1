/* What the SOCKS5 front end's two files share: socks5.c (connections, the
 * handshake, CONNECT) and socks5_udp.c (UDP ASSOCIATE). Internal to
 * src/front; nothing else includes it. */
#ifndef WN_FRONT_SOCKS5_INT_H
#define WN_FRONT_SOCKS5_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/socks5.h"
#include "engine/tunnel.h"
#include "front/forward.h"
#include "front/relay.h"
#include "front/socks5.h"
#include "io/loop.h"
#include "util/log.h"

#define LOG_COMP "socks"
/* The confirm status byte that means "connected" (streamhdr.h). */
#define STATUS_OK 0
/* A credential as compared: u8 len, 255 bytes padded with zeros, twice. */
#define CRED_BLOB (2 * (1 + WN_SOCKS5_CRED_MAX))

enum phase { P_HANDSHAKE, P_CONFIRM, P_RELAY, P_ASSOC, P_DONE };

struct socks_udp;

struct socks_conn {
	struct wn_socks5_front *sf;
	struct wn_relay *r;  /* NULL once the relay finished */
	struct wn_stream *s; /* ours while in CONFIRM */
	struct wn_stream_handler h;
	struct wn_timer timer;
	enum phase phase;
	struct wn_socks5 p;
	struct socks_udp *u; /* UDP ASSOCIATE only */
	int closing;         /* handles still to close before the free */
	uint8_t rbuf[WN_SOCKS5_MSG_MAX];
	char target[WN_HOSTNAME_MAX + 16];
};

struct wn_socks5_front {
	struct wn_loop *loop;
	struct wn_log *log;
	struct wn_tunnel *tunnel;
	struct wn_forward *fwd;
	char name[WN_FRONT_NAME_MAX + 1];
	bool eager;
	uint8_t (*creds)[CRED_BLOB]; /* the users, as compared */
	size_t n_users;
	uint32_t hs_ms, confirm_ms;
	struct wn_socks5_front_stats stats;
	struct wn_ratelimit rl;
	long conns; /* connections not yet freed */
	bool closing;
};

/* Counts a reply sent, by its code. */
void wn_s5_count_reply(struct wn_socks5_front *sf, const uint8_t *reply);

/* Sends the failure reply rep and closes the connection with a FIN. */
void wn_s5_reply_fail(struct socks_conn *c, uint8_t rep);

/* One of the connection's handles has closed; the last frees it. */
void wn_s5_conn_closed_one(struct socks_conn *c);

/* UDP ASSOCIATE (socks5_udp.c): open the relay socket and answer. */
void wn_s5_associate(struct socks_conn *c);

/* Ends an association: its flows closed, its socket closed (the
 * connection's free waits for it). */
void wn_s5_udp_end(struct socks_udp *u);

#endif
