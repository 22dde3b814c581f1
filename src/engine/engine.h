/* What an engine implements behind the tunnel API (tunnel.h).
 *
 * Engines (quic, kcp) embed struct wn_stream (src/engine/stream_base.h:
 * the one implementation of the stream semantics, which they drive through
 * a small transport table) and struct wn_tunnel as the first member of
 * their own stream and session objects; tunnel.c dispatches the public
 * calls. Front ends include tunnel.h only; this header is for engines, and
 * for test doubles that stand in for an engine. */
#ifndef WN_ENGINE_ENGINE_H
#define WN_ENGINE_ENGINE_H

#include "engine/tunnel.h"

struct wn_flows;

struct wn_stream_ops {
	ssize_t (*write)(struct wn_stream *s, const uint8_t *data, size_t len);
	ssize_t (*reserve)(struct wn_stream *s, uint8_t **ptr);
	int (*commit)(struct wn_stream *s, size_t n);
	void (*consumed)(struct wn_stream *s, size_t n);
	int (*shutdown)(struct wn_stream *s);
	void (*reset)(struct wn_stream *s, int err);
	void (*release)(struct wn_stream *s);
};

#include "engine/stream_base.h"

struct wn_tunnel_ops {
	/* flags: WN_OPEN_*; the engine puts them in the stream header. */
	struct wn_stream *(*open_stream)(struct wn_tunnel *t,
	                                 const struct wn_endpoint *target,
	                                 unsigned flags,
	                                 const struct wn_stream_handler *h);
};

struct wn_tunnel {
	const struct wn_tunnel_ops *ops;
	char peer_id[WN_TUNNEL_PEER_ID_MAX]; /* short hex of the peer's key */
	/* Server: 1 + the index of the session's client key in the server's
	 * list of keys, for the caps per key; 0: none (clients, kcptun). */
	uint32_t key_slot;
	/* Delivered but unconsumed bytes per stream never exceed this (see
	 * "Receive window" in tunnel.h); 0: unknown. Set by the engine. */
	size_t recv_window;
	/* The session's datagram flows (src/engine/flow_base.h), created by
	 * an engine that carries datagrams; NULL: it does not. */
	struct wn_flows *flows;
	/* The session's send budget (stream_base.h); the base's, zeroed by
	 * the engine with the rest. */
	struct wn_sb_budget budget;
};

#endif
