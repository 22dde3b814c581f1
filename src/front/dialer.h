/* The dialer (server side): the accept handler an engine hands each new
 * incoming stream to. It applies the server's target policy, connects to
 * the target and hands stream and connection to a relay (src/front/relay.h).
 *
 * Target policy, from struct wn_dialer_opts (the verdict itself is
 * src/core/policy.h's wn_policy_judge):
 *  - A fixed target (`target = ...`) is used for every stream, whatever
 *    the client asked; it is the operator's own choice, so no allow rule is
 *    consulted. A name is resolved and its addresses are tried in order.
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
 *            may be used: the operator trusted the name.
 *        (b) allowed by address: no name rule matches, but an address rule
 *            (CIDR) covers the port. The name is resolved and only the
 *            resolved addresses that some rule allows (address and port)
 *            are tried, in resolver order; if none is allowed the stream
 *            is denied. Names matching neither way are denied without a
 *            lookup, so the server is no DNS oracle for its clients.
 *    A denied stream is reset with WN_STREAM_DENIED and logged at info
 *    (rate-limited) with the client's id, the stream and the target.
 *  - Connecting: the relay tries the addresses in order, within the
 *    connect timeout, which runs from the stream's arrival and so also
 *    bounds name resolution. Failures reset the stream: WN_STREAM_REFUSED
 *    (any address refused), WN_STREAM_TIMEOUT, WN_STREAM_UNREACHABLE (no
 *    route, no such unix socket, name did not resolve).
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
	size_t out_limit;            /* relay queue cap (relay.h); 0: default */
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

/* The dialer's own counters. */
const struct wn_dialer_stats *wn_dialer_get_stats(const struct wn_dialer *d);

#endif
