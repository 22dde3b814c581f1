/* What an engine implements behind the tunnel API (tunnel.h).
 *
 * Engines (quic, later kcp) embed struct wn_stream and struct wn_tunnel as
 * the first member of their own stream and session objects and fill in the
 * operations tables; tunnel.c dispatches the public wn_stream_* calls through
 * them. Front ends include tunnel.h only; this header is for engines, and
 * for test doubles that stand in for an engine. The server-side hand-over
 * (struct wn_accept_handler, wn_stream_set_handler) is a front-end contract
 * and lives in tunnel.h. */
#ifndef WN_ENGINE_ENGINE_H
#define WN_ENGINE_ENGINE_H

#include "engine/tunnel.h"

struct wn_stream_ops {
	ssize_t (*write)(struct wn_stream *s, const uint8_t *data, size_t len);
	ssize_t (*reserve)(struct wn_stream *s, uint8_t **ptr);
	int (*commit)(struct wn_stream *s, size_t n);
	void (*consumed)(struct wn_stream *s, size_t n);
	int (*shutdown)(struct wn_stream *s);
	void (*reset)(struct wn_stream *s, int err);
	void (*release)(struct wn_stream *s);
};

struct wn_stream {
	const struct wn_stream_ops *ops;
	struct wn_stream_handler h; /* h.on_* NULL after release */
	uint64_t id;
	/* Server side: the flags of the stream's header (WN_OPEN_*, the
	 * header's WN_STREAMHDR_F_* bits), set by the engine before it calls
	 * the accept handler. With WN_OPEN_CONFIRM the accept handler writes
	 * the status byte WN_STREAMHDR_STATUS_OK first, once connected. */
	unsigned hdr_flags;
};

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
};

#endif
