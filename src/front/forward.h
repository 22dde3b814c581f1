/* The forward front end (client side): listens on a local TCP address or
 * unix socket and carries each accepted connection through a new tunnel
 * stream to the forward's fixed target. All byte moving is the relay's
 * (src/front/relay.h); this file only listens, accepts and pairs.
 *
 * Listening:
 *  - TCP: an IP literal binds that address (libuv sets SO_REUSEADDR; an
 *    IPv6 wildcard is dual-stack unless the system says otherwise); a name
 *    ("localhost:8080") is resolved once, at open, and every address it
 *    resolves to (up to WN_FORWARD_MAX_LISTEN) is bound, all on one port:
 *    with port 0 the port the system picks for the first address is used
 *    on the others too (io/tcplisten.h), so localhost:0 is one port on
 *    127.0.0.1 and ::1. A name's IPv6 addresses listen IPv6-only (its IPv4
 *    ones are listed on their own). Addresses that do not exist here are
 *    skipped as long as one binds.
 *  - unix: an existing file at the path is removed first only if it is a
 *    socket nobody listens on (a stale one); a live socket or any other
 *    file makes open fail. The socket file is removed on close if it is
 *    still ours.
 *
 * A connection the tunnel has no stream for (wn_tunnel_open_stream returned
 * NULL) is reset at once and logged, rate-limited.
 *
 * Several forwards may run in one process, on one tunnel or several. */
#ifndef WN_FRONT_FORWARD_H
#define WN_FRONT_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/addr.h"
#include "engine/tunnel.h"
#include "front/relay.h"
#include "io/loop.h"
#include "util/log.h"

#define WN_FORWARD_MAX_LISTEN 4

/* Longest front-end name kept for logs (longer ones are cut). */
#define WN_FRONT_NAME_MAX 63

struct wn_forward;

/* Takes an accepted connection (a relay with an accepted socket and no
 * stream, in the forward's set) instead of the forward opening a stream to
 * its target: for front ends that must first speak with the application
 * (SOCKS5). The callee owns the relay's next step; it must open, attach or
 * close it eventually. The forward still closes it on wn_forward_close. */
typedef void (*wn_forward_accept_fn)(void *ctx, struct wn_relay *r);

struct wn_forward_opts {
	const char *name;          /* for logs; copied; NULL: "forward" */
	struct wn_endpoint listen; /* tcp (IP or name) or unix */
	/* Where every accepted connection's stream goes (copied); NULL only
	 * with on_accept. */
	const struct wn_endpoint *target;
	size_t out_limit; /* relay queue cap (relay.h); 0: default */
	int backlog;      /* listen backlog; 0: 128 */
	wn_forward_accept_fn on_accept; /* NULL: stream to target */
	void *ctx;                      /* for on_accept */
	/* A unix listener's socket file mode, set before it listens (so no
	 * connection ever sees the umask's); 0: 0600, the owner only. */
	unsigned unix_mode;
	/* Listen on loopback addresses only (127.0.0.0/8, ::1): any other
	 * address, literal or resolved from a name, is refused with
	 * WN_EPERM (SOCKS5 without users, socks5.h). */
	bool loopback_only;
};

/* Starts listening on opts->listen (opts is copied). Streams are opened on
 * t, which is borrowed: it must outlive the forward (close the forward
 * first). loop and log are borrowed too. WN_EINVAL without a target or
 * on_accept.
 * Returns 0 and *out, or a WN_E* code (WN_EADDRINUSE, WN_EEXIST for a
 * non-socket file in the way, WN_EUNREACH if a name does not resolve,
 * WN_EPERM for a non-loopback address with loopback_only, ...)
 * with nothing for the caller to clean up. */
int wn_forward_open(struct wn_loop *loop, struct wn_log *log,
                    struct wn_tunnel *t, const struct wn_forward_opts *opts,
                    struct wn_forward **out);

/* Stops listening, resets every live connection (and its stream, with
 * WN_STREAM_ABORTED) and removes the unix socket file. The forward is freed
 * by the loop once its listeners have closed; f must not be used after
 * this call. Safe from any callback. */
void wn_forward_close(struct wn_forward *f);

/* The address of the first TCP listener (to learn a port chosen by the
 * system for port 0; every listener of a name has the same port). Returns 0, or WN_EINVAL for a unix forward. */
int wn_forward_sockname(const struct wn_forward *f,
                        struct sockaddr_storage *ss);

/* The forward's live relays and their counters (read-only). */
const struct wn_relay_set *wn_forward_relays(const struct wn_forward *f);

#endif
