/* The UDP dialer: policy, resolution, one connected socket per flow, and
 * idle reaping. See udpdial.h. */
#include "front/udpdial.h"

#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "io/dgram.h"
#include "util/container.h"
#include "util/err.h"
#include "util/list.h"

#define LOG_COMP "udpdial"
#define REAP_MIN_MS 100
/* A flow socket's receive buffer: a target's burst of replies waits there
 * while the loop works (io/dgram.h); the kernel charges only what is
 * queued, so idle flows cost nothing for it. */
#define FLOW_RCVBUF (1 << 20)

struct lookup;

struct pend {
	uint8_t *data;
	size_t len;
};

struct dflow {
	struct wn_udpdial *ud;
	struct wn_flow *flow;
	/* Connected toward the target; none until it is known. */
	struct wn_dgram_sock *socks[WN_UDPDIAL_MAX_CONNS];
	unsigned nsocks, rr;
	struct lookup *lk;  /* the name lookup in progress */
	struct wn_list lru; /* in ud->lru */
	uint64_t last_ms;
	struct pend pend[WN_UDPDIAL_PENDING];
	unsigned npend;
	char peer[WN_TUNNEL_PEER_ID_MAX];
	char target[WN_HOSTNAME_MAX + 16];
};

/* A lookup lives until it completes (libuv owns req until then) even if its
 * flow ended meanwhile (df NULL). */
struct lookup {
	uv_getaddrinfo_t req;
	struct dflow *df;
	enum wn_policy_use use;
	uint16_t port;
};

struct wn_udpdial {
	struct wn_loop *loop;
	struct wn_log *log;
	const struct wn_allow_rule *allow;
	size_t n_allow;
	uint32_t idle_ms;
	unsigned conns;
	wn_udpdial_self_fn self;
	void *self_ctx;
	struct wn_dgram_rx *rx;
	struct wn_timer reap;
	struct wn_list lru;
	bool closing;
	struct wn_udpdial_stats stats;
	struct wn_ratelimit rl;
	struct wn_ratelimit rl_life; /* flows ending: a flood is a few lines */
};

static struct wn_policy_self own(struct wn_udpdial *ud)
{
	if (ud->self)
		return ud->self(ud->self_ctx);
	return (struct wn_policy_self){0};
}

static void drop_pending(struct dflow *df)
{
	unsigned i;

	for (i = 0; i < df->npend; i++)
		free(df->pend[i].data);
	df->npend = 0;
}

/* Frees df and its socket; the flow itself is the caller's to end (it
 * ended, or the caller closes it). */
static void free_flow(struct dflow *df)
{
	struct wn_udpdial *ud = df->ud;

	if (df->lk)
		df->lk->df = NULL; /* the lookup frees itself */
	for (unsigned i = 0; i < df->nsocks; i++)
		wn_dgram_close(df->socks[i]);
	drop_pending(df);
	wn_list_del(&df->lru);
	ud->stats.flows--;
	free(df);
}

static void touch(struct dflow *df)
{
	struct wn_udpdial *ud = df->ud;

	df->last_ms = wn_loop_now_ms(ud->loop);
	wn_list_del(&df->lru);
	wn_list_add_tail(&ud->lru, &df->lru);
}

static void log_denied(struct wn_udpdial *ud, const char *peer, uint64_t id,
                       const char *target, const char *why)
{
	ud->stats.flows_denied++;
	WN_LOG_RL(ud->log, &ud->rl, wn_loop_now_ms(ud->loop), WN_LOG_INFO,
	          LOG_COMP, "client %s flow %llu: udp target %s denied: %s",
	          peer, (unsigned long long)id, target, why);
}

/* ---- the target side --------------------------------------------------- */

static void on_target(void *ctx, const uint8_t *data, size_t len,
                      bool truncated, const struct sockaddr_storage *from,
                      socklen_t fromlen)
{
	struct dflow *df = ctx;
	struct wn_udpdial *ud = df->ud;
	int rc;

	(void)from;
	(void)fromlen;
	if (!df->flow)
		return;
	if (truncated) {
		ud->stats.drop_size++;
		return;
	}
	touch(df);
	rc = wn_flow_send(df->flow, data, len);
	if (rc == 0) {
		ud->stats.dgrams_in++;
		ud->stats.bytes_in += len;
	} else if (rc == WN_EMSGSIZE) {
		ud->stats.drop_size++;
	} else {
		ud->stats.drop_tunnel++;
	}
}

static void to_target(struct dflow *df, const uint8_t *data, size_t len)
{
	struct wn_udpdial *ud = df->ud;

	struct wn_dgram_sock *s = df->socks[df->rr++ % df->nsocks];

	if (wn_dgram_send(s, data, len, NULL, 0) == 0) {
		ud->stats.dgrams_out++;
		ud->stats.bytes_out += len;
	} else {
		ud->stats.drop_target++;
	}
}

/* Opens the flow's connected socket to ss and sends what waited. */
static int connect_flow(struct dflow *df, const struct sockaddr_storage *ss)
{
	struct wn_udpdial *ud = df->ud;
	struct wn_dgram_opts o = {
	    .name = df->target,
	    .family = ss->ss_family,
	    .peer = (const struct sockaddr *)ss,
	    .peer_len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                         : sizeof(struct sockaddr_in6),
	    .rx = ud->rx,
	    .rcvbuf = FLOW_RCVBUF,
	    .on_recv = on_target,
	    .ctx = df,
	};
	unsigned i;
	int rc = 0;

	for (i = 0; i < ud->conns && rc == 0; i++) {
		rc = wn_dgram_open(ud->loop, ud->log, &o,
		                   &df->socks[df->nsocks]);
		if (rc == 0)
			df->nsocks++;
	}
	/* As many as the host gave us (at least one) serve the flow. */
	if (df->nsocks == 0)
		return rc;
	for (i = 0; i < df->npend; i++)
		to_target(df, df->pend[i].data, df->pend[i].len);
	drop_pending(df);
	return 0;
}

/* ---- the flow side ----------------------------------------------------- */

static void on_datagram(void *ctx, struct wn_flow *f, const uint8_t *data,
                        size_t len)
{
	struct dflow *df = ctx;
	struct wn_udpdial *ud = df->ud;
	struct pend *p;

	(void)f;
	touch(df);
	if (df->nsocks) {
		to_target(df, data, len);
		return;
	}
	/* The name is still resolving. */
	if (df->npend == WN_UDPDIAL_PENDING) {
		ud->stats.drop_pending++;
		return;
	}
	p = &df->pend[df->npend];
	p->data = malloc(len ? len : 1);
	if (!p->data) {
		ud->stats.drop_pending++;
		return;
	}
	memcpy(p->data, data, len);
	p->len = len;
	df->npend++;
}

static void on_flow_closed(void *ctx, struct wn_flow *f, int err)
{
	struct dflow *df = ctx;

	(void)f;
	WN_LOG_RL(df->ud->log, &df->ud->rl_life, wn_loop_now_ms(df->ud->loop),
	          WN_LOG_DEBUG, LOG_COMP, "client %s flow to %s: %s", df->peer,
	          df->target, wn_stream_err_str(err));
	df->flow = NULL;
	free_flow(df);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct lookup *lk = wn_container_of(req, struct lookup, req);
	struct dflow *df = lk->df;
	struct sockaddr_storage addrs[1];
	size_t n = 0;

	if (df) {
		struct wn_udpdial *ud = df->ud;
		struct wn_policy_self self = own(ud);

		df->lk = NULL;
		if (status == 0)
			n = wn_policy_addresses(ud->allow, ud->n_allow, &self,
			                        res, lk->port, lk->use, addrs,
			                        1);
		if (n == 0) {
			/* As for streams: one answer whatever the reason. */
			log_denied(
			    ud, df->peer, wn_flow_id(df->flow), df->target,
			    status < 0 ? "does not resolve"
			               : "resolves to no allowed address");
			wn_flow_close(df->flow);
			df->flow = NULL;
			free_flow(df);
		} else if (connect_flow(df, &addrs[0]) < 0) {
			wn_flow_close(df->flow);
			df->flow = NULL;
			free_flow(df);
		}
	}
	if (res)
		uv_freeaddrinfo(res);
	free(lk);
}

void wn_udpdial_on_flow(void *ctx, struct wn_tunnel *t, struct wn_flow *f,
                        const struct wn_endpoint *target)
{
	struct wn_udpdial *ud = ctx;
	struct wn_flow_handler h = {
	    .on_datagram = on_datagram,
	    .on_flow_closed = on_flow_closed,
	};
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_DGRAM};
	struct wn_policy_self self;
	struct wn_endpoint tgt;
	struct dflow *df;
	enum wn_verdict v;
	char text[WN_HOSTNAME_MAX + 16];

	ud->stats.flows_opened++;
	if (ud->closing) {
		wn_flow_refuse(f, WN_STREAM_ABORTED);
		return;
	}
	if (!target) {
		log_denied(ud, wn_tunnel_peer_id(t), wn_flow_id(f), "(default)",
		           "the server has no default UDP target");
		wn_flow_refuse(f, WN_STREAM_DENIED);
		return;
	}
	tgt = *target;
	/* A flow's target is a datagram target, whatever scheme the engine
	 * wrote into it: only udp:// rules may allow it. */
	tgt.scheme = WN_SCHEME_UDP;
	if (tgt.kind == WN_HOST_IP)
		wn_policy_unmap_v4(&tgt.sa);
	wn_endpoint_format(&tgt, text, sizeof(text));
	if (tgt.kind != WN_HOST_IP && tgt.kind != WN_HOST_NAME) {
		log_denied(ud, wn_tunnel_peer_id(t), wn_flow_id(f), text,
		           "not a HOST:PORT");
		wn_flow_refuse(f, WN_STREAM_DENIED);
		return;
	}
	self = own(ud);
	v = wn_policy_judge(ud->allow, ud->n_allow, &self, &tgt);
	if (v == WN_VERDICT_DENY) {
		bool guarded =
		    tgt.kind == WN_HOST_IP && wn_policy_guarded(&tgt.sa, &self);
		log_denied(ud, wn_tunnel_peer_id(t), wn_flow_id(f), text,
		           guarded ? "this host or link-local: only an address "
		                     "rule naming it allows it"
		                   : "no udp:// allow rule matches");
		wn_flow_refuse(f, WN_STREAM_DENIED);
		return;
	}
	df = calloc(1, sizeof(*df));
	if (!df) {
		wn_flow_refuse(f, WN_STREAM_INTERNAL);
		return;
	}
	df->ud = ud;
	df->flow = f;
	snprintf(df->peer, sizeof(df->peer), "%s", wn_tunnel_peer_id(t));
	snprintf(df->target, sizeof(df->target), "%s", text);
	df->last_ms = wn_loop_now_ms(ud->loop);
	wn_list_add_tail(&ud->lru, &df->lru);
	ud->stats.flows++;
	if (tgt.kind == WN_HOST_IP) {
		if (connect_flow(df, &tgt.sa) < 0) {
			df->flow = NULL;
			free_flow(df);
			wn_flow_refuse(f, WN_STREAM_UNREACHABLE);
			return;
		}
	} else {
		struct lookup *lk = calloc(1, sizeof(*lk));
		if (!lk ||
		    uv_getaddrinfo(wn_loop_uv(ud->loop), &lk->req, on_resolved,
		                   tgt.host, NULL, &hints) < 0) {
			free(lk);
			df->flow = NULL;
			free_flow(df);
			wn_flow_refuse(f, WN_STREAM_UNREACHABLE);
			return;
		}
		lk->df = df;
		lk->port = tgt.port;
		lk->use = v == WN_VERDICT_ALLOW_ADDRESSES ? WN_POLICY_BY_ADDRESS
		                                          : WN_POLICY_BY_NAME;
		df->lk = lk;
	}
	/* The first datagram is delivered to h right after we return. */
	wn_flow_set_handler(f, &(struct wn_flow_handler){
	                           .ctx = df,
	                           .on_datagram = h.on_datagram,
	                           .on_flow_closed = h.on_flow_closed,
	                       });
}

/* ---- reaping, open and close ------------------------------------------- */

static void on_reap(struct wn_timer *t)
{
	struct wn_udpdial *ud = wn_container_of(t, struct wn_udpdial, reap);
	uint64_t now = wn_loop_now_ms(ud->loop);

	while (!wn_list_empty(&ud->lru)) {
		struct dflow *df =
		    wn_list_entry(ud->lru.next, struct dflow, lru);
		if (now - df->last_ms < ud->idle_ms)
			break;
		ud->stats.flows_reaped++;
		if (df->flow)
			wn_flow_close(df->flow);
		df->flow = NULL;
		free_flow(df);
	}
}

int wn_udpdial_new(struct wn_loop *loop, struct wn_log *log,
                   const struct wn_udpdial_opts *o, struct wn_udpdial **out)
{
	struct wn_udpdial *ud = calloc(1, sizeof(*ud));
	uint64_t period;
	int rc;

	if (!ud)
		return WN_ENOMEM;
	ud->loop = loop;
	ud->log = log;
	ud->allow = o->allow;
	ud->n_allow = o->n_allow;
	ud->idle_ms = o->idle_ms ? o->idle_ms : WN_UDPDIAL_IDLE_DEFAULT_MS;
	ud->conns = o->conns == 0                     ? 1
	            : o->conns > WN_UDPDIAL_MAX_CONNS ? WN_UDPDIAL_MAX_CONNS
	                                              : o->conns;
	ud->self = o->self;
	ud->self_ctx = o->self_ctx;
	ud->rl = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 10);
	ud->rl_life = (struct wn_ratelimit)WN_RATELIMIT_INIT(1000, 20);
	wn_list_init(&ud->lru);
	rc = wn_dgram_rx_new(&ud->rx);
	if (rc < 0) {
		free(ud);
		return rc;
	}
	rc = wn_timer_init(loop, &ud->reap, on_reap);
	if (rc < 0) {
		wn_dgram_rx_free(ud->rx);
		free(ud);
		return rc;
	}
	period = ud->idle_ms / 4;
	if (period < REAP_MIN_MS)
		period = REAP_MIN_MS;
	rc = wn_timer_start(&ud->reap, period, period);
	if (rc < 0) {
		wn_udpdial_close(ud);
		return rc;
	}
	*out = ud;
	return 0;
}

static void on_timer_closed(struct wn_timer *t)
{
	struct wn_udpdial *ud = wn_container_of(t, struct wn_udpdial, reap);

	/* Every flow socket closed before the timer, and libuv closes
	 * handles in order: none reads into rx any more. */
	wn_dgram_rx_free(ud->rx);
	free(ud);
}

void wn_udpdial_close(struct wn_udpdial *ud)
{
	if (ud->closing)
		return;
	ud->closing = true;
	if (ud->stats.flows_opened)
		WN_LOG(ud->log, WN_LOG_INFO, LOG_COMP,
		       "closed: %llu flows (%llu denied), %llu datagrams to "
		       "targets, %llu back, dropped %llu the target socket "
		       "refused, %llu the tunnel, %llu too large, %llu "
		       "resolving",
		       (unsigned long long)ud->stats.flows_opened,
		       (unsigned long long)ud->stats.flows_denied,
		       (unsigned long long)ud->stats.dgrams_out,
		       (unsigned long long)ud->stats.dgrams_in,
		       (unsigned long long)ud->stats.drop_target,
		       (unsigned long long)ud->stats.drop_tunnel,
		       (unsigned long long)ud->stats.drop_size,
		       (unsigned long long)ud->stats.drop_pending);
	while (!wn_list_empty(&ud->lru)) {
		struct dflow *df =
		    wn_list_entry(ud->lru.next, struct dflow, lru);
		if (df->flow)
			wn_flow_close(df->flow);
		df->flow = NULL;
		free_flow(df);
	}
	wn_timer_close(&ud->reap, on_timer_closed);
}

const struct wn_udpdial_stats *wn_udpdial_get_stats(const struct wn_udpdial *ud)
{
	return &ud->stats;
}
