/* The dialer: target policy, name resolution and connecting, for streams
 * the engine hands over on the server. See dialer.h for the policy. */
#include "front/dialer.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))

#define LOG_COMP "dial"

/* A name lookup in progress. It lives until both the lookup has completed
 * (libuv owns req until then, even if cancelled) and its relay has
 * finished, whichever comes last. */
struct lookup {
	uv_getaddrinfo_t req;
	struct wn_dialer *d;        /* NULL once the dialer has closed */
	struct wn_relay *relay;     /* NULL once the relay has finished */
	struct lookup *prev, *next; /* in d->lookups while busy */
	bool busy;                  /* the lookup has not completed */
	bool check;                 /* allowed by address: filter the results */
	uint16_t port;
	uint64_t stream_id;
	char peer[sizeof(((struct wn_tunnel *)0)->peer_id)];
	char target[WN_HOSTNAME_MAX + 16];
};

struct wn_dialer {
	struct wn_loop *loop;
	struct wn_log *log;
	const struct wn_server_cfg *cfg;
	struct wn_accept_handler handler;
	uint32_t timeout_ms;
	size_t out_limit;
	struct wn_relay_set relays;
	struct lookup *lookups;
	struct wn_dialer_stats stats;
	struct wn_ratelimit rl;
	struct wn_deferred free_dn;
	bool closing;
};

enum verdict {
	V_DENY,
	V_ALLOW,           /* allowed as requested (by name for a name) */
	V_ALLOW_ADDRESSES, /* a name: only its addresses that rules allow */
};

/* ---- policy (pure) ---------------------------------------------------- */

/* IPv4-mapped IPv6 reaches the IPv4 address: judge and use it as such. */
static void unmap_v4(struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
	struct sockaddr_in a4 = {.sin_family = AF_INET};

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
		return;
	a4.sin_port = a6->sin6_port;
	memcpy(&a4.sin_addr, &a6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &a4, sizeof(a4));
}

/* 0.0.0.0 and :: are no target anyone means; connecting to them reaches
 * this host, which no rule for "any address" should imply. */
static bool unspecified(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)ss)->sin6_addr);
	return true;
}

static enum verdict judge(const struct wn_server_cfg *cfg,
                          const struct wn_endpoint *t)
{
	bool by_address = false;
	size_t i;

	if (t->kind == WN_HOST_IP && unspecified(&t->sa))
		return V_DENY;
	for (i = 0; i < cfg->n_allow; i++) {
		const struct wn_allow_rule *r = &cfg->allow[i];

		if (wn_allow_rule_match(r, t))
			return V_ALLOW;
		if (t->kind == WN_HOST_NAME &&
		    (r->kind == WN_RULE_CIDR4 || r->kind == WN_RULE_CIDR6) &&
		    t->port >= r->port_lo && t->port <= r->port_hi)
			by_address = true;
	}
	return by_address ? V_ALLOW_ADDRESSES : V_DENY;
}

static bool address_allowed(const struct wn_server_cfg *cfg,
                            const struct sockaddr_storage *ss)
{
	size_t i;

	for (i = 0; i < cfg->n_allow; i++)
		if (wn_allow_rule_match_sa(&cfg->allow[i],
		                           (const struct sockaddr *)ss))
			return true;
	return false;
}

static bool same_address(const struct sockaddr_storage *a,
                         const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		              &((const struct sockaddr_in *)b)->sin_addr,
		              4) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* The usable addresses of a lookup result, in resolver order: port set,
 * duplicates and unspecified addresses dropped, and with check only those
 * the rules allow. Returns how many were stored in out. */
static size_t collect(const struct wn_server_cfg *cfg,
                      const struct addrinfo *res, uint16_t port, bool check,
                      struct sockaddr_storage *out, size_t max)
{
	const struct addrinfo *ai;
	struct sockaddr_storage ss;
	size_t n = 0, i;
	bool dup;

	for (ai = res; ai && n < max; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(ss))
			continue;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		unmap_v4(&ss);
		if (unspecified(&ss) || (check && !address_allowed(cfg, &ss)))
			continue;
		for (dup = false, i = 0; i < n && !dup; i++)
			dup = same_address(&out[i], &ss);
		if (!dup)
			out[n++] = ss;
	}
	return n;
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
	struct lookup *lk = container_of(req, struct lookup, req);
	struct wn_dialer *d = lk->d;
	struct sockaddr_storage addrs[WN_RELAY_MAX_ADDRS];
	size_t n;

	if (d)
		lookup_unlink(d, lk);
	/* Without a dialer there is no relay either (closing ended it). */
	if (d && lk->relay) {
		if (status < 0) {
			d->stats.resolve_failures++;
			WN_LOG(d->log, WN_LOG_DEBUG, LOG_COMP,
			       "client %s stream %llu: %s: %s", lk->peer,
			       (unsigned long long)lk->stream_id, lk->target,
			       uv_strerror(status));
			wn_relay_close(lk->relay, WN_STREAM_UNREACHABLE);
		} else {
			d->stats.resolved++;
			n = collect(d->cfg, res, lk->port, lk->check, addrs,
			            WN_RELAY_MAX_ADDRS);
			if (n == 0) {
				log_denied(d, lk->peer, lk->stream_id,
				           lk->target,
				           lk->check ? "resolves to no allowed "
				                       "address"
				                     : "resolves to no usable "
				                       "address");
				wn_relay_close(lk->relay,
				               lk->check
				                   ? WN_STREAM_DENIED
				                   : WN_STREAM_UNREACHABLE);
			} else if (wn_relay_connect(lk->relay, addrs, n, NULL) <
			           0) {
				wn_relay_close(lk->relay, WN_STREAM_INTERNAL);
			}
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
	    .label = t->peer_id,
	    /* A relay holds a whole receive window (tunnel.h). */
	    .out_limit = d->out_limit ? d->out_limit : wn_tunnel_recv_window(t),
	    .connect_timeout_ms = d->timeout_ms,
	    .confirm = (s->hdr_flags & WN_OPEN_CONFIRM) != 0,
	};
	struct wn_endpoint tgt;
	struct lookup *lk = NULL;
	struct wn_relay *r;
	enum verdict v;
	char text[WN_UNIX_PATH_MAX + 32];
	int rc;

	d->stats.streams++;
	if (d->closing) {
		wn_stream_reset(s, WN_STREAM_ABORTED);
		return;
	}
	if (d->cfg->has_target) {
		tgt = d->cfg->target;
		v = V_ALLOW;
	} else if (!target) {
		log_denied(d, t->peer_id, wn_stream_id(s), "(default)",
		           "the server has no default target");
		wn_stream_reset(s, WN_STREAM_DENIED);
		return;
	} else {
		tgt = *target;
		if (tgt.kind == WN_HOST_IP)
			unmap_v4(&tgt.sa);
		v = judge(d->cfg, &tgt);
	}
	wn_endpoint_format(&tgt, text, sizeof(text));
	if (v == V_DENY) {
		log_denied(d, t->peer_id, wn_stream_id(s), text,
		           "no allow rule matches");
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
		lk->check = v == V_ALLOW_ADDRESSES;
		lk->port = tgt.port;
		lk->stream_id = wn_stream_id(s);
		memcpy(lk->peer, t->peer_id, sizeof(lk->peer));
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

/* ---- public ----------------------------------------------------------- */

int wn_dialer_new(struct wn_loop *loop, struct wn_log *log,
                  const struct wn_server_cfg *cfg,
                  const struct wn_dialer_opts *opts, struct wn_dialer **out)
{
	struct wn_dialer *d = calloc(1, sizeof(*d));

	if (!d)
		return WN_ENOMEM;
	d->loop = loop;
	d->log = log;
	d->cfg = cfg;
	d->handler.ctx = d;
	d->handler.on_stream = on_stream;
	d->timeout_ms = opts && opts->connect_timeout_ms
	                    ? opts->connect_timeout_ms
	                    : WN_DIALER_CONNECT_TIMEOUT_DEFAULT_MS;
	d->out_limit = opts ? opts->out_limit : 0;
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
	free(container_of(dn, struct wn_dialer, free_dn));
}

void wn_dialer_close(struct wn_dialer *d)
{
	struct lookup *lk, *next;

	if (d->closing)
		return;
	d->closing = true;
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

const struct wn_dialer_stats *wn_dialer_get_stats(const struct wn_dialer *d)
{
	return &d->stats;
}
