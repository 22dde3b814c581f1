/* The dialer (server side): the accept handler an engine hands each new
 * incoming stream to. It applies the server's target policy, connects to
 * the target and hands stream and connection to a relay (src/front/relay.h).
 *
 * Target policy, from struct wn_dialer_opts (the verdict itself is
 * src/core/policy.h's wn_policy_judge):
 *  - A fixed target (`target = ...`) is used for every stream, whatever
 *    the client asked; it is the operator's own choice, so no allow rule
 *    (and no guard, below) is consulted; a lookup that fails resets the
 *    stream with WN_STREAM_UNREACHABLE. A name is resolved and its addresses are tried in order.
 *  - Otherwise the requested target must be allowed (default deny); a
 *    stream with no target of its own (the header's "default target") is
 *    denied, since there is no default.
 *     * IP literal: allowed if an allow rule matches address and port.
 *       IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are treated as the IPv4
 *       address they reach, for matching and for connecting, so a rule
 *       for [::]/0 does not open IPv4 loopback through the back door.
 *     * unix path: allowed if a unix:PATH or unix:/DIR/ star rule matches.
 *     * DNS name, two ways:
 *        (a) allowed by name: a NAME, *.SUFFIX or * rule matches name and
 *            port. The name is resolved and every address it resolves to
 *            may be used, except guarded ones (below).
 *        (b) allowed by address: no name rule matches, but an address rule
 *            (CIDR) covers the port. The name is resolved and only the
 *            resolved addresses that some rule allows (address and port)
 *            are tried, in resolver order, guarded ones again excepted.
 *            Names matching neither way are denied without a lookup.
 *     * Guarded addresses (wn_policy_guarded): this host (0.0.0.0/8, ::,
 *       loopback, every address of the server's own interfaces, re-read
 *       at most every few seconds) and link-local (169.254.0.0/16, where
 *       cloud metadata services answer, and fe80::/10). Whether reached as
 *       a literal or through a name, only an address rule narrower than
 *       /0 that covers the address and port opens them (127.0.0.1:5432,
 *       10.0.0.0/8:*); a name rule, `*` or 0.0.0.0/0 never do. Private
 *       ranges (RFC 1918, fc00::/7) are not guarded: reaching the network
 *       behind the server is what a tunnel is for.
 *    A looked-up name that yields no address to try, whatever the reason
 *    (it does not resolve, or resolves only to addresses the rules or the
 *    guard refuse), is reset with the one code WN_STREAM_DENIED, so the
 *    reset tells a client nothing about the server's DNS: the server is no
 *    DNS oracle. The server's log says which it was (at debug).
 *    A denied stream is reset with WN_STREAM_DENIED and logged at info
 *    (rate-limited) with the client's id, the stream and the target.
 *  - Connecting: the relay tries the addresses in order, within the
 *    connect timeout, which runs from the stream's arrival and so also
 *    bounds name resolution. Failures reset the stream: WN_STREAM_REFUSED
 *    (any address refused), WN_STREAM_TIMEOUT, WN_STREAM_UNREACHABLE (no
 *    route, no such unix socket).
 *  - Confirming: a stream whose header carries the confirm flag
 *    (WN_OPEN_CONFIRM, SOCKS5 standard mode) gets the status byte 0 as its
 *    first reverse byte once the target is connected; failures reset it
 *    as above. Name resolution is bounded by the connect timeout (the
 *    stream is reset with WN_STREAM_TIMEOUT; a late answer is ignored).
 *
 * Data ordering (what the dialer assumes of the engine): on_stream sets the
 * relay's stream handler before it returns (wn_relay_adopt). Until then
 * the engine holds the stream's data and EOF. From then on the relay takes
 * every on_data/on_eof, queues them in order while the target is being
 * resolved and connected (never calling wn_stream_consumed for them, so the
 * queue is bounded by the stream's receive window), and writes them first
 * once connected. Nothing is lost or reordered whatever arrives when. */
#ifndef WN_FRONT_DIALER_H
#define WN_FRONT_DIALER_H

#include <stddef.h>
#include <stdint.h>

#include "core/addr.h"
#include "core/policy.h"
#include "engine/tunnel.h"
#include "front/relay.h"
#include "front/udpdial.h"
#include "io/loop.h"
#include "util/log.h"

#define WN_DIALER_CONNECT_TIMEOUT_DEFAULT_MS 10000

struct wn_dialer;

struct wn_dialer_opts {
	/* The allow rules (borrowed: they must outlive the dialer). */
	const struct wn_allow_rule *allow;
	size_t n_allow;
	/* The fixed target of every stream (copied), or NULL: targets are
	 * the clients' own, under the rules. */
	const struct wn_endpoint *target;
	uint32_t connect_timeout_ms; /* 0: the default, 10 s */
	size_t out_limit; /* relay queue cap (relay.h); 0: the tunnel's
	                     receive window, else the relay's default */
	/* Datagram flows (front/udpdial.h): the udp:// rules (borrowed),
	 * and the idle time after which a flow is closed (0: default).
	 * Flows are taken whatever the rules (none: every flow refused). */
	const struct wn_allow_rule *udp_allow;
	size_t n_udp_allow;
	uint32_t udp_idle_ms;
	unsigned udp_conns; /* sockets per flow (udpdial.h); 0: 1 */
};

struct wn_dialer_stats {
	uint64_t streams;          /* handed to the dialer */
	uint64_t denied;           /* reset with WN_STREAM_DENIED */
	uint64_t resolved;         /* name lookups that succeeded */
	uint64_t resolve_failures; /* name lookups that failed */
};

/* Creates a dialer with the policy and tuning of opts (copied; the rules
 * it points to are borrowed). loop and log are borrowed. Returns 0 and
 * *out, or WN_ENOMEM. */
int wn_dialer_new(struct wn_loop *loop, struct wn_log *log,
                  const struct wn_dialer_opts *opts, struct wn_dialer **out);

/* The accept handler to give the engine; valid until wn_dialer_close. */
const struct wn_accept_handler *wn_dialer_handler(struct wn_dialer *d);

/* Resets every live stream (WN_STREAM_ABORTED) with its connection,
 * abandons lookups in progress, and frees the dialer at the end of the loop
 * iteration. The engine must no longer call the handler. Safe from any
 * callback. */
void wn_dialer_close(struct wn_dialer *d);

/* The dialer's live relays and their counters (read-only). */
const struct wn_relay_set *wn_dialer_relays(const struct wn_dialer *d);

/* The UDP dialer taking the flows (its counters). */
const struct wn_udpdial *wn_dialer_udp(const struct wn_dialer *d);

/* The dialer's own counters. */
const struct wn_dialer_stats *wn_dialer_get_stats(const struct wn_dialer *d);

#endif
