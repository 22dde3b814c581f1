/* The dialer: target policy, name resolution and connecting, for streams
 * the engine hands over on the server. See dialer.h for the policy. */
#include "front/dialer.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/container.h"
#include "util/err.h"

#define LOG_COMP "dial"

/* The server's own addresses kept for the guard (policy.h), and how
 * often they are re-read: interfaces come and go (DHCP, VPNs), and a
 * refresh is one getifaddrs per that many seconds at most, on a stream's
 * arrival, never per packet. */
#define SELF_MAX 64
#define SELF_REFRESH_MS 5000

/* A name lookup in progress. It lives until both the lookup has completed
 * (libuv owns req until then, even if cancelled) and its relay has
 * finished, whichever comes last. */
struct lookup {
	uv_getaddrinfo_t req;
	struct wn_dialer *d;        /* NULL once the dialer has closed */
	struct wn_relay *relay;     /* NULL once the relay has finished */
	struct lookup *prev, *next; /* in d->lookups while busy */
	bool busy;                  /* the lookup has not completed */
	enum wn_policy_use use;     /* which filter the results take */
	uint16_t port;
	uint64_t stream_id;
	char peer[WN_TUNNEL_PEER_ID_MAX];
	char target[WN_HOSTNAME_MAX + 16];
};

struct wn_dialer {
	struct wn_loop *loop;
	struct wn_log *log;
	const struct wn_allow_rule *allow; /* borrowed */
	size_t n_allow;
	bool has_target;
	struct wn_endpoint target;
	struct wn_accept_handler handler;
	uint32_t timeout_ms;
	size_t out_limit;
	struct wn_relay_set relays;
	struct lookup *lookups;
	struct wn_dialer_stats stats;
	struct wn_ratelimit rl;
	struct wn_deferred free_dn;
	bool closing;
	struct wn_udpdial *udp;                 /* takes the flows */
	struct sockaddr_storage self[SELF_MAX]; /* own interface addresses */
	size_t n_self;
	uint64_t self_read_ms; /* when self was read; 0: never */
};

/* The guard's view of this host, re-read when older than
 * SELF_REFRESH_MS. If getifaddrs fails, the last list stays (loopback,
 * link-local and unspecified are guarded without it). */
static struct wn_policy_self own_addresses(struct wn_dialer *d)
{
	uint64_t now = wn_loop_now_ms(d->loop);
	struct ifaddrs *ifs, *ifa;
	size_t n = 0;

	if (d->self_read_ms == 0 || now - d->self_read_ms >= SELF_REFRESH_MS) {
		d->self_read_ms = now ? now : 1;
		if (getifaddrs(&ifs) == 0) {
			for (ifa = ifs; ifa && n < SELF_MAX;
			     ifa = ifa->ifa_next) {
				if (!ifa->ifa_addr ||
				    (ifa->ifa_addr->sa_family != AF_INET &&
				     ifa->ifa_addr->sa_family != AF_INET6))
					continue;
				memset(&d->self[n], 0, sizeof(d->self[n]));
				memcpy(&d->self[n], ifa->ifa_addr,
				       ifa->ifa_addr->sa_family == AF_INET
				           ? sizeof(struct sockaddr_in)
				           : sizeof(struct sockaddr_in6));
				n++;
			}
			freeifaddrs(ifs);
			d->n_self = n;
		}
	}
	return (struct wn_policy_self){.addrs = d->self, .n = d->n_self};
}

/* The guard's addresses for the UDP dialer. */
static struct wn_policy_self udp_self(void *ctx)
{
	return own_addresses(ctx);
}

/* ---- dialing ---------------------------------------------------------- */

static void log_denied(struct wn_dialer *d, const char *peer, uint64_t id,
                       const char *target, const char *why)
{
	d->stats.denied++;
	WN_LOG_RL(d->log, &d->rl, wn_loop_now_ms(d->loop), WN_LOG_INFO,
	          LOG_COMP, "client %s stream %llu: target %s denied: %s", peer,
	          (unsigned long long)id, target, why);
}

static void lookup_unlink(struct wn_dialer *d, struct lookup *lk)
{
	if (lk->prev)
		lk->prev->next = lk->next;
	else
		d->lookups = lk->next;
	if (lk->next)
		lk->next->prev = lk->prev;
	lk->prev = lk->next = NULL;
}

static void on_relay_finish(void *ctx, struct wn_relay *r, int err)
{
	struct lookup *lk = ctx;

	lk->relay = NULL;
	if (!lk->busy)
		free(lk);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct lookup *lk = wn_container_of(req, struct lookup, req);
	struct wn_dialer *d = lk->d;
	struct sockaddr_storage addrs[WN_RELAY_MAX_ADDRS];
	size_t n;

	if (d)
		lookup_unlink(d, lk);
	/* Without a dialer there is no relay either (closing ended it). */
	if (d && lk->relay) {
		struct wn_policy_self self = own_addresses(d);

		n = 0;
		if (status < 0) {
			d->stats.resolve_failures++;
			WN_LOG(d->log, WN_LOG_DEBUG, LOG_COMP,
			       "client %s stream %llu: %s: %s", lk->peer,
			       (unsigned long long)lk->stream_id, lk->target,
			       uv_strerror(status));
		} else {
			d->stats.resolved++;
			n = wn_policy_addresses(d->allow, d->n_allow, &self,
			                        res, lk->port, lk->use, addrs,
			                        WN_RELAY_MAX_ADDRS);
		}
		/* Not resolving and resolving only to refused addresses
		 * end alike (DENIED), so a reset never tells the client
		 * what the server's resolver knows (dialer.h). The
		 * operator's fixed target is no client's question: it
		 * just could not be reached. */
		if (n == 0 && lk->use == WN_POLICY_FIXED) {
			wn_relay_close(lk->relay, WN_STREAM_UNREACHABLE);
		} else if (n == 0) {
			log_denied(d, lk->peer, lk->stream_id, lk->target,
			           status < 0 ? "does not resolve"
			           : lk->use == WN_POLICY_BY_ADDRESS
			               ? "resolves to no allowed address"
			               : "resolves to no usable address");
			wn_relay_close(lk->relay, WN_STREAM_DENIED);
		} else if (wn_relay_connect(lk->relay, addrs, n, NULL) < 0) {
			wn_relay_close(lk->relay, WN_STREAM_INTERNAL);
		}
	}
	if (res)
		uv_freeaddrinfo(res);
	/* Whatever happened above, the relay's on_finish has not freed lk
	 * because it was busy; now the last one out frees it. */
	lk->busy = false;
	if (!lk->relay)
		free(lk);
}

/* lk->busy is set from its creation, so a relay that ends meanwhile
 * (its on_finish) leaves lk to this function. */
static void start_lookup(struct wn_dialer *d, struct lookup *lk,
                         const struct wn_endpoint *t)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM};
	int rc;

	if (!lk->relay) {
		free(lk);
		return;
	}
	rc = uv_getaddrinfo(wn_loop_uv(d->loop), &lk->req, on_resolved, t->host,
	                    NULL, &hints);
	if (rc < 0) {
		d->stats.resolve_failures++;
		wn_relay_close(lk->relay, WN_STREAM_UNREACHABLE);
		free(lk);
		return;
	}
	lk->d = d;
	lk->next = d->lookups;
	if (lk->next)
		lk->next->prev = lk;
	d->lookups = lk;
}

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct wn_dialer *d = ctx;
	struct wn_relay_opts o = {
	    .loop = d->loop,
	    .log = d->log,
	    .set = &d->relays,
	    .side = WN_RELAY_SERVER,
	    .label = wn_tunnel_peer_id(t),
	    /* A relay holds a whole receive window (tunnel.h). */
	    .out_limit = d->out_limit ? d->out_limit : wn_tunnel_recv_window(t),
	    .connect_timeout_ms = d->timeout_ms,
	    .confirm = (wn_stream_open_flags(s) & WN_OPEN_CONFIRM) != 0,
	};
	struct wn_endpoint tgt;
	struct lookup *lk = NULL;
	struct wn_relay *r;
	enum wn_verdict v;
	bool guarded = false;
	char text[WN_UNIX_PATH_MAX + 32];
	int rc;

	d->stats.streams++;
	if (d->closing) {
		wn_stream_reset(s, WN_STREAM_ABORTED);
		return;
	}
	if (d->has_target) {
		tgt = d->target;
		v = WN_VERDICT_ALLOW;
	} else if (!target) {
		log_denied(d, wn_tunnel_peer_id(t), wn_stream_id(s),
		           "(default)", "the server has no default target");
		wn_stream_reset(s, WN_STREAM_DENIED);
		return;
	} else {
		tgt = *target;
		if (tgt.kind == WN_HOST_IP)
			wn_policy_unmap_v4(&tgt.sa);
		struct wn_policy_self self = own_addresses(d);

		v = wn_policy_judge(d->allow, d->n_allow, &self, &tgt);
		guarded =
		    tgt.kind == WN_HOST_IP && wn_policy_guarded(&tgt.sa, &self);
	}
	wn_endpoint_format(&tgt, text, sizeof(text));
	if (v == WN_VERDICT_DENY) {
		log_denied(d, wn_tunnel_peer_id(t), wn_stream_id(s), text,
		           guarded ? "this host or link-local: only an address "
		                     "rule naming it allows it"
		                   : "no allow rule matches");
		wn_stream_reset(s, WN_STREAM_DENIED);
		return;
	}

	if (tgt.kind == WN_HOST_NAME) {
		lk = calloc(1, sizeof(*lk));
		if (!lk) {
			wn_stream_reset(s, WN_STREAM_INTERNAL);
			return;
		}
		lk->busy = true;
		lk->use = d->has_target ? WN_POLICY_FIXED
		          : v == WN_VERDICT_ALLOW_ADDRESSES
		              ? WN_POLICY_BY_ADDRESS
		              : WN_POLICY_BY_NAME;
		lk->port = tgt.port;
		lk->stream_id = wn_stream_id(s);
		memcpy(lk->peer, wn_tunnel_peer_id(t), sizeof(lk->peer));
		lk->peer[sizeof(lk->peer) - 1] = '\0';
		snprintf(lk->target, sizeof(lk->target), "%s", text);
		o.on_finish = on_relay_finish;
		o.ctx = lk;
	}
	o.sock = tgt.kind == WN_HOST_UNIX ? WN_RELAY_PIPE : WN_RELAY_TCP;
	o.desc = text;
	rc = wn_relay_new(&o, &r);
	if (rc < 0) {
		free(lk);
		wn_stream_reset(s, WN_STREAM_INTERNAL);
		return;
	}
	if (lk)
		lk->relay = r;
	/* From here the relay owns the stream and ends it on any failure. */
	wn_relay_adopt(r, s);
	switch (tgt.kind) {
	case WN_HOST_UNIX:
		rc = wn_relay_connect(r, NULL, 0, tgt.path);
		break;
	case WN_HOST_IP:
		rc = wn_relay_connect(r, &tgt.sa, 1, NULL);
		break;
	default:
		start_lookup(d, lk, &tgt);
		rc = 0;
		break;
	}
	/* Also harmless if the relay already finished (it is freed only by
	 * the loop, later). */
	if (rc < 0)
		wn_relay_close(r, WN_STREAM_INTERNAL);
}

static void on_flow(void *ctx, struct wn_tunnel *t, struct wn_flow *f,
                    const struct wn_endpoint *target)
{
	struct wn_dialer *d = ctx;

	wn_udpdial_on_flow(d->udp, t, f, target);
}

/* ---- public ----------------------------------------------------------- */

int wn_dialer_new(struct wn_loop *loop, struct wn_log *log,
                  const struct wn_dialer_opts *opts, struct wn_dialer **out)
{
	struct wn_dialer *d = calloc(1, sizeof(*d));
	struct wn_udpdial_opts uo = {
	    .allow = opts->udp_allow,
	    .n_allow = opts->n_udp_allow,
	    .idle_ms = opts->udp_idle_ms,
	    .conns = opts->udp_conns,
	    .self = udp_self,
	    .self_ctx = d,
	};

	if (!d)
		return WN_ENOMEM;
	if (wn_udpdial_new(loop, log, &uo, &d->udp) != 0) {
		free(d);
		return WN_ENOMEM;
	}
	d->loop = loop;
	d->log = log;
	d->allow = opts->allow;
	d->n_allow = opts->n_allow;
	d->has_target = opts->target != NULL;
	if (opts->target)
		d->target = *opts->target;
	d->handler.ctx = d;
	d->handler.on_stream = on_stream;
	d->handler.on_flow = on_flow;
	d->timeout_ms = opts->connect_timeout_ms
	                    ? opts->connect_timeout_ms
	                    : WN_DIALER_CONNECT_TIMEOUT_DEFAULT_MS;
	d->out_limit = opts->out_limit;
	d->rl = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 10);
	wn_relay_set_init(&d->relays);
	wn_deferred_init(&d->free_dn);
	*out = d;
	return 0;
}

const struct wn_accept_handler *wn_dialer_handler(struct wn_dialer *d)
{
	return &d->handler;
}

static void free_dialer(struct wn_deferred *dn)
{
	free(wn_container_of(dn, struct wn_dialer, free_dn));
}

void wn_dialer_close(struct wn_dialer *d)
{
	struct lookup *lk, *next;

	if (d->closing)
		return;
	d->closing = true;
	wn_udpdial_close(d->udp);
	wn_relay_set_close_all(&d->relays, WN_STREAM_ABORTED);
	/* The lookups' relays are gone; the lookups themselves complete
	 * (cancelled, if they had not started) and free themselves. */
	for (lk = d->lookups; lk; lk = next) {
		next = lk->next;
		lk->d = NULL;
		lk->prev = lk->next = NULL;
		uv_cancel((uv_req_t *)&lk->req);
	}
	d->lookups = NULL;
	wn_loop_defer(d->loop, &d->free_dn, free_dialer);
}

const struct wn_relay_set *wn_dialer_relays(const struct wn_dialer *d)
{
	return &d->relays;
}

const struct wn_udpdial *wn_dialer_udp(const struct wn_dialer *d)
{
	return d->udp;
}

const struct wn_dialer_stats *wn_dialer_get_stats(const struct wn_dialer *d)
{
	return &d->stats;
}
