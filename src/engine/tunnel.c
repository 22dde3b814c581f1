/* Dispatch of the tunnel API to the engine behind each stream. */
#include "engine/engine.h"

#include "engine/flow_base.h"

#include "util/err.h"

const char *wn_stream_err_str(int err)
{
	switch (err) {
	case WN_STREAM_OK:
		return "closed";
	case WN_STREAM_INTERNAL:
		return "internal error";
	case WN_STREAM_DENIED:
		return "target not allowed";
	case WN_STREAM_UNREACHABLE:
		return "target unreachable";
	case WN_STREAM_REFUSED:
		return "target refused the connection";
	case WN_STREAM_TARGET_RESET:
		return "target reset the connection";
	case WN_STREAM_TIMEOUT:
		return "connecting to the target timed out";
	case WN_STREAM_BAD_HEADER:
		return "malformed stream header";
	case WN_STREAM_ABORTED:
		return "aborted by the peer";
	case WN_STREAM_SESSION_LOST:
		return "tunnel lost";
	case WN_STREAM_EVICTED:
		return "evicted: too many flows";
	case WN_STREAM_LIMIT:
		return "too many streams for this client key";
	default:
		return "unknown reason";
	}
}

size_t wn_tunnel_recv_window(const struct wn_tunnel *t)
{
	return t->recv_window;
}

struct wn_stream *wn_tunnel_open_stream(struct wn_tunnel *t,
                                        const struct wn_endpoint *target,
                                        const struct wn_stream_handler *h)
{
	return t->ops->open_stream(t, target, 0, h);
}

struct wn_stream *wn_tunnel_open_stream_flags(struct wn_tunnel *t,
                                              const struct wn_endpoint *target,
                                              unsigned flags,
                                              const struct wn_stream_handler *h)
{
	return t->ops->open_stream(t, target, flags, h);
}

ssize_t wn_stream_write(struct wn_stream *s, const uint8_t *data, size_t len)
{
	return s->ops->write(s, data, len);
}

ssize_t wn_stream_reserve(struct wn_stream *s, uint8_t **ptr)
{
	return s->ops->reserve(s, ptr);
}

int wn_stream_commit(struct wn_stream *s, size_t n)
{
	return s->ops->commit(s, n);
}

void wn_stream_consumed(struct wn_stream *s, size_t n)
{
	s->ops->consumed(s, n);
}

int wn_stream_shutdown(struct wn_stream *s)
{
	return s->ops->shutdown(s);
}

void wn_stream_reset(struct wn_stream *s, int err)
{
	s->ops->reset(s, err);
}

void wn_stream_release(struct wn_stream *s)
{
	s->ops->release(s);
}

uint64_t wn_stream_id(const struct wn_stream *s)
{
	return s->id;
}

unsigned wn_stream_open_flags(const struct wn_stream *s)
{
	return s->hdr_flags;
}

void wn_stream_set_handler(struct wn_stream *s,
                           const struct wn_stream_handler *h)
{
	s->h = *h;
}

const char *wn_tunnel_peer_id(const struct wn_tunnel *t)
{
	return t->peer_id;
}

/* ---- datagrams: the flow base (flow_base.c) implements the wn_flow_*
 * calls for every engine; a tunnel without flows carries none. */

int wn_tunnel_has_datagrams(const struct wn_tunnel *t)
{
	return t->flows != NULL;
}

size_t wn_tunnel_max_datagram(const struct wn_tunnel *t)
{
	return t->flows ? wn_fb_max_datagram(t->flows) : 0;
}

struct wn_flow *wn_tunnel_open_flow(struct wn_tunnel *t,
                                    const struct wn_endpoint *target,
                                    const struct wn_flow_handler *h)
{
	return t->flows ? wn_fb_open_flow(t->flows, target, h) : NULL;
}
