/* The udp front end: one UDP socket, a table of flows keyed by source
 * address, a least-recently-active list for reaping and eviction, and
 * batched receive and reply. See udp.h. */
#include "front/udp.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/prefix.h"
#include "io/dgram.h"
#include "util/container.h"
#include "util/err.h"
#include "util/list.h"

#define LOG_COMP "udp"

/* A source host: an IPv4 address, or an IPv6 /64 (one host may hold a
 * whole /64). The table's fairness is between hosts (see pick_victim). */
struct uhost {
	struct uhost *hnext;         /* hash chain */
	struct uhost *cprev, *cnext; /* in u->by_count[count] */
	struct wn_list all;   /* its flows, least recently active first */
	struct wn_list fresh; /* of them, those not established */
	uint32_t hash;
	unsigned count;       /* its flows */
	struct wn_prefix key; /* IPv4 /32 or IPv6 /64 */
};

struct uflow {
	struct wn_udp_front *u;
	struct uhost *host;
	struct uflow *hnext;   /* hash chain */
	struct wn_list lru;    /* in u->lru, least recently active first */
	struct wn_list fresh;  /* in u->fresh while not established */
	struct wn_list hall;   /* in host->all */
	struct wn_list hfresh; /* in host->fresh while not established */
	struct wn_flow *flow;  /* NULL once refused */
	struct sockaddr_storage src;
	socklen_t srclen;
	uint64_t last_ms; /* last datagram either way */
	uint32_t hash;
	bool denied;      /* refused by the server: datagrams dropped */
	bool replied;     /* a reply came back */
	bool established; /* the source sent again after a reply */
};

struct wn_udp_front {
	struct wn_loop *loop;
	struct wn_log *log;
	struct wn_tunnel *tunnel;
	char name[64];
	char target_text[WN_HOSTNAME_MAX + 16];
	struct wn_endpoint target;
	uint32_t idle_ms;
	uint32_t protect_ms;
	unsigned max_flows;
	/* Evictions: a token bucket of evict_rate a second (as many in a
	 * burst), in thousandths of an eviction. */
	uint32_t evict_rate;
	uint64_t evict_credit;
	uint64_t evict_ms;
	unsigned fec_data, fec_parity, fec_delay_ms;
	struct wn_dgram_sock *sock;
	struct wn_dgram_rx *rx;
	struct wn_timer reap;
	bool closing;
	struct wn_flow_handler fh;

	/* The flow table: mask + 1 buckets, a power of two; the host table
	 * has as many (there are never more hosts than flows). */
	struct uflow **buckets;
	struct uhost **hbuckets;
	uint32_t mask;
	uint8_t hkey[crypto_shorthash_KEYBYTES];
	struct wn_list lru;
	struct wn_list fresh;
	/* Hosts by how many flows they hold: by_count[c] lists those with
	 * c flows (c >= 1); maxc is the largest c with a host. Grown as
	 * counts grow, so it is as long as the largest count seen. */
	struct uhost **by_count;
	unsigned n_by_count;
	unsigned maxc;

	struct wn_udp_front_stats stats;
	struct wn_ratelimit rl_denied, rl_evict, rl_full, rl_err;
};

/* ---- the flow table --------------------------------------------------- */

/* The bytes that identify a source: family, port and address. An IPv4
 * address mapped into IPv6 (a dual-stack socket) is the IPv4 source. */
static size_t addr_key(const struct sockaddr_storage *ss, uint8_t key[20])
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		key[0] = 4;
		memcpy(key + 1, &a->sin_port, 2);
		memcpy(key + 3, &a->sin_addr, 4);
		return 7;
	}
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
	if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
		key[0] = 4;
		memcpy(key + 1, &a->sin6_port, 2);
		memcpy(key + 3, a->sin6_addr.s6_addr + 12, 4);
		return 7;
	}
	key[0] = 6;
	memcpy(key + 1, &a->sin6_port, 2);
	memcpy(key + 3, &a->sin6_addr, 16);
	return 19;
}

static uint32_t key_hash(const struct wn_udp_front *u, const uint8_t *key,
                         size_t n)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint32_t v;

	crypto_shorthash(h, key, n, u->hkey);
	memcpy(&v, h, sizeof(v));
	return v;
}

static bool same_source(const struct sockaddr_storage *a,
                        const struct sockaddr_storage *b)
{
	uint8_t ka[20], kb[20];
	size_t na = addr_key(a, ka), nb = addr_key(b, kb);

	return na == nb && memcmp(ka, kb, na) == 0;
}

static struct uflow *find_flow(struct wn_udp_front *u,
                               const struct sockaddr_storage *src,
                               uint32_t hash)
{
	struct uflow *e;

	for (e = u->buckets[hash & u->mask]; e; e = e->hnext)
		if (e->hash == hash && same_source(&e->src, src))
			return e;
	return NULL;
}

static struct uhost *find_host(struct wn_udp_front *u,
                               const struct wn_prefix *key, uint32_t hash)
{
	struct uhost *h;

	for (h = u->hbuckets[hash & u->mask]; h; h = h->hnext)
		if (h->hash == hash && wn_prefix_eq(&h->key, key))
			return h;
	return NULL;
}

/* Takes h out of by_count[h->count]. */
static void count_unlink(struct wn_udp_front *u, struct uhost *h)
{
	if (h->cprev)
		h->cprev->cnext = h->cnext;
	else
		u->by_count[h->count] = h->cnext;
	if (h->cnext)
		h->cnext->cprev = h->cprev;
	h->cprev = h->cnext = NULL;
}

static void count_link(struct wn_udp_front *u, struct uhost *h)
{
	h->cprev = NULL;
	h->cnext = u->by_count[h->count];
	if (h->cnext)
		h->cnext->cprev = h;
	u->by_count[h->count] = h;
}

/* One more flow on h. Fails (WN_ENOMEM) only when by_count must grow
 * and cannot. */
static int host_inc(struct wn_udp_front *u, struct uhost *h)
{
	if (h->count + 1 >= u->n_by_count) {
		unsigned n = u->n_by_count ? 2 * u->n_by_count : 16;
		struct uhost **nb = realloc(u->by_count, n * sizeof(*nb));
		if (!nb)
			return WN_ENOMEM;
		memset(nb + u->n_by_count, 0,
		       (n - u->n_by_count) * sizeof(*nb));
		u->by_count = nb;
		u->n_by_count = n;
	}
	if (h->count)
		count_unlink(u, h);
	h->count++;
	count_link(u, h);
	if (h->count > u->maxc)
		u->maxc = h->count;
	return 0;
}

/* One flow less on h; frees h with its last flow. */
static void host_dec(struct wn_udp_front *u, struct uhost *h)
{
	count_unlink(u, h);
	h->count--;
	while (u->maxc && !u->by_count[u->maxc])
		u->maxc--;
	if (h->count) {
		count_link(u, h);
		if (h->count > u->maxc)
			u->maxc = h->count;
		return;
	}
	struct uhost **pp = &u->hbuckets[h->hash & u->mask];
	while (*pp && *pp != h)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = h->hnext;
	free(h);
}

/* Adds a flow's FEC counts to the forward's (it is about to go). */
static void keep_fec_counts(struct wn_udp_front *u, struct wn_flow *f)
{
	struct wn_flow_stats fs;

	wn_flow_stats(f, &fs);
	u->stats.fec_recovered += fs.fec_recovered;
	u->stats.fec_unrecoverable += fs.fec_unrecoverable;
}

/* Unlinks e from the table and the lists and frees it; closes its flow
 * (the tunnel tells the server) unless it has none. */
static void drop_flow(struct wn_udp_front *u, struct uflow *e)
{
	struct uflow **pp = &u->buckets[e->hash & u->mask];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	wn_list_del(&e->lru);
	wn_list_del(&e->hall);
	if (!e->established) {
		wn_list_del(&e->fresh);
		wn_list_del(&e->hfresh);
	}
	host_dec(u, e->host);
	if (e->flow) {
		keep_fec_counts(u, e->flow);
		wn_flow_close(e->flow);
	}
	u->stats.flows--;
	free(e);
}

static void move_tail(struct wn_list *head, struct wn_list *n)
{
	wn_list_del(n);
	wn_list_add_tail(head, n);
}

static void touch(struct wn_udp_front *u, struct uflow *e)
{
	e->last_ms = wn_loop_now_ms(u->loop);
	move_tail(&u->lru, &e->lru);
	move_tail(&e->host->all, &e->hall);
	if (!e->established) {
		move_tail(&u->fresh, &e->fresh);
		move_tail(&e->host->fresh, &e->hfresh);
	}
}

/* The source sent again after a reply: a flow in use both ways (as
 * conntrack's "assured"), which a newcomer does not push out while it is
 * active. A request answered once (DNS) never gets here. */
static void establish(struct uflow *e)
{
	if (e->established)
		return;
	e->established = true;
	wn_list_del(&e->fresh);
	wn_list_del(&e->hfresh);
}

static struct uflow *oldest(struct wn_list *head, size_t off)
{
	return wn_list_empty(head) ? NULL
	                           : (struct uflow *)((char *)head->next - off);
}

#define OLDEST(head, member) oldest((head), offsetof(struct uflow, member))

/* The oldest of a list of flows, when it may go: one not established
 * always may (fresh), an established one only once idle protect_ms. */
static struct uflow *evictable(struct wn_udp_front *u, struct wn_list *fresh,
                               size_t foff, struct wn_list *all, size_t aoff,
                               uint64_t now)
{
	struct uflow *e = oldest(fresh, foff);

	if (e)
		return e;
	e = oldest(all, aoff);
	if (e && now - e->last_ms >= u->protect_ms)
		return e;
	return NULL;
}

/* The flow a datagram from a new source of host h (NULL: a host with no
 * flow yet) takes the place of when the table is full, or NULL: the
 * datagram is dropped.
 *  - Fairness between hosts first: while another host holds at least two
 *    flows more than h, h takes the slot of that host's flow idle
 *    longest (one not established first). So many source ports on one
 *    host cannot push out the flows of another host; a host is bounded
 *    by its fair share once others want slots.
 *  - Otherwise h makes room among its own flows (or, when every host
 *    holds at most one, among all): the one idle longest that is not
 *    established, else an established one idle protect_ms; while every
 *    candidate is established and active, the newcomer waits (dropped,
 *    counted): a flood of new sources never evicts flows in use. */
static struct uflow *pick_victim(struct wn_udp_front *u, struct uhost *h,
                                 uint64_t now)
{
	unsigned ch = h ? h->count : 0;
	struct uhost *v = u->by_count[u->maxc];

	if (v && v != h && u->maxc >= ch + 2) {
		struct uflow *e = OLDEST(&v->fresh, hfresh);
		return e ? e : OLDEST(&v->all, hall);
	}
	if (h)
		return evictable(u, &h->fresh, offsetof(struct uflow, hfresh),
		                 &h->all, offsetof(struct uflow, hall), now);
	return evictable(u, &u->fresh, offsetof(struct uflow, fresh), &u->lru,
	                 offsetof(struct uflow, lru), now);
}

/* Whether one more eviction fits the rate now. Every new flow costs the
 * server a socket (and the tunnel an open and a close), so a flood of new
 * sources, which would replace flows as fast as datagrams come, costs it
 * at most evict_rate of them a second; the datagrams beyond are dropped
 * here (drop_full), where they cost least. */
static bool evict_allowed(struct wn_udp_front *u, uint64_t now)
{
	uint64_t cap = (uint64_t)u->evict_rate * 1000;

	if (now > u->evict_ms) {
		u->evict_credit += (now - u->evict_ms) * u->evict_rate;
		if (u->evict_credit > cap)
			u->evict_credit = cap;
	}
	u->evict_ms = now;
	return u->evict_credit >= 1000;
}

static void on_flow_datagram(void *ctx, struct wn_flow *f, const uint8_t *data,
                             size_t len);
static void on_flow_closed(void *ctx, struct wn_flow *f, int err);

/* A new flow for src, making room first when the table is full
 * (pick_victim). NULL when there is no room or the tunnel has no flow
 * for it (counted). */
static struct uflow *new_flow(struct wn_udp_front *u,
                              const struct sockaddr_storage *src,
                              socklen_t srclen, uint32_t hash)
{
	struct wn_flow_handler fh = u->fh;
	struct wn_prefix hk;
	(void)wn_prefix_of((const struct sockaddr *)src, srclen,
	                   WN_PREFIX_V4_HOST, WN_PREFIX_V6_NET, &hk);
	uint32_t hh = key_hash(u, hk.b, sizeof(hk.b));
	uint64_t now = wn_loop_now_ms(u->loop);
	struct uhost *h = find_host(u, &hk, hh);
	struct uflow *e;

	if (u->stats.flows >= u->max_flows) {
		bool rate_ok = evict_allowed(u, now);
		struct uflow *old = rate_ok ? pick_victim(u, h, now) : NULL;
		if (!old) {
			u->stats.drop_full++;
			WN_LOG_RL(u->log, &u->rl_full, now, WN_LOG_INFO,
			          LOG_COMP,
			          "%s: %u flows (max-flows), %s: datagrams "
			          "from new sources dropped",
			          u->name, u->max_flows,
			          rate_ok ? "all in use"
			                  : "replaced as fast as allowed");
			return NULL;
		}
		u->stats.flows_evicted++;
		u->evict_credit -= 1000;
		WN_LOG_RL(u->log, &u->rl_evict, now, WN_LOG_INFO, LOG_COMP,
		          "%s: %u flows (max-flows): evicting the one idle "
		          "longest",
		          u->name, u->max_flows);
		drop_flow(u, old);
		/* That may have been h's last flow. */
		h = find_host(u, &hk, hh);
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		goto fail;
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h)
			goto fail;
		h->hash = hh;
		h->key = hk;
		wn_list_init(&h->all);
		wn_list_init(&h->fresh);
		h->hnext = u->hbuckets[hh & u->mask];
		u->hbuckets[hh & u->mask] = h;
	}
	if (host_inc(u, h) < 0) {
		if (h->count == 0) {
			u->hbuckets[hh & u->mask] = h->hnext;
			free(h);
		}
		goto fail;
	}
	e->u = u;
	e->host = h;
	e->src = *src;
	e->srclen = srclen;
	e->hash = hash;
	e->last_ms = now;
	wn_list_add_tail(&u->lru, &e->lru);
	wn_list_add_tail(&u->fresh, &e->fresh);
	wn_list_add_tail(&h->all, &e->hall);
	wn_list_add_tail(&h->fresh, &e->hfresh);
	e->hnext = u->buckets[hash & u->mask];
	u->buckets[hash & u->mask] = e;
	u->stats.flows++;
	fh.ctx = e;
	e->flow = wn_tunnel_open_flow(u->tunnel, &u->target, &fh);
	if (!e->flow) {
		WN_LOG_RL(u->log, &u->rl_err, now, WN_LOG_INFO, LOG_COMP,
		          "%s: the tunnel has no flow for a new source now",
		          u->name);
		u->stats.open_failed++;
		drop_flow(u, e);
		return NULL;
	}
	if (u->fec_data && wn_flow_set_fec(e->flow, u->fec_data, u->fec_parity,
	                                   u->fec_delay_ms) < 0) {
		u->stats.fec_off++;
		WN_LOG_RL(u->log, &u->rl_err, now, WN_LOG_WARN, LOG_COMP,
		          "%s: no memory for FEC on a new flow: it goes "
		          "without",
		          u->name);
	}
	u->stats.flows_opened++;
	return e;
fail:
	free(e);
	u->stats.open_failed++;
	return NULL;
}

/* ---- replies (tunnel to application) ----------------------------------- */

static void on_flow_datagram(void *ctx, struct wn_flow *f, const uint8_t *data,
                             size_t len)
{
	struct uflow *e = ctx;
	struct wn_udp_front *u = e->u;

	(void)f;
	if (u->closing)
		return;
	e->replied = true;
	touch(u, e);
	/* Queued for the iteration's sendmmsg (io/dgram.h). */
	if (wn_dgram_send(u->sock, data, len, (const struct sockaddr *)&e->src,
	                  e->srclen) == 0) {
		u->stats.dgrams_down++;
		u->stats.bytes_down += len;
	} else {
		u->stats.drop_reply++;
	}
}

static void on_flow_closed(void *ctx, struct wn_flow *f, int err)
{
	struct uflow *e = ctx;
	struct wn_udp_front *u = e->u;
	char src[INET6_ADDRSTRLEN + 8];

	keep_fec_counts(u, f);
	e->flow = NULL;
	if (err == WN_STREAM_DENIED) {
		u->stats.flows_denied++;
		e->denied = true;
		wn_sockaddr_format((const struct sockaddr *)&e->src, src,
		                   sizeof(src));
		WN_LOG_RL(u->log, &u->rl_denied, wn_loop_now_ms(u->loop),
		          WN_LOG_WARN, LOG_COMP,
		          "%s: flow from %s: the server refused target %s",
		          u->name, src, u->target_text);
		return;
	}
	u->stats.flows_lost++;
	WN_LOG_RL(u->log, &u->rl_err, wn_loop_now_ms(u->loop), WN_LOG_DEBUG,
	          LOG_COMP, "%s: flow ended: %s", u->name,
	          wn_stream_err_str(err));
	drop_flow(u, e);
}

/* ---- receive (application to tunnel) ----------------------------------- */

static void on_recv(void *ctx, const uint8_t *data, size_t len, bool truncated,
                    const struct sockaddr_storage *src, socklen_t srclen)
{
	struct wn_udp_front *u = ctx;
	size_t max = wn_tunnel_max_datagram(u->tunnel);
	struct uflow *e;
	uint32_t hash;
	int rc;

	if (src->ss_family != AF_INET && src->ss_family != AF_INET6)
		return;
	/* Whole or not at all: never truncated. */
	if (max == 0) {
		u->stats.drop_tunnel++;
		return;
	}
	if (truncated || len > max) {
		u->stats.drop_size++;
		WN_LOG_RL(u->log, &u->rl_err, wn_loop_now_ms(u->loop),
		          WN_LOG_INFO, LOG_COMP,
		          "%s: dropped a datagram of %s%zu bytes: the tunnel "
		          "carries at most %zu now",
		          u->name, truncated ? "over " : "", len, max);
		return;
	}
	{
		uint8_t key[20];
		hash = key_hash(u, key, addr_key(src, key));
	}
	e = find_flow(u, src, hash);
	if (e && e->denied) {
		/* Not touched: a refused source is forgotten idle_ms after
		 * its refusal, and may then try again. */
		u->stats.drop_policy++;
		return;
	}
	if (!e) {
		e = new_flow(u, src, srclen, hash);
		if (!e)
			return;
	} else {
		if (e->replied)
			establish(e);
		touch(u, e);
	}
	rc = wn_flow_send(e->flow, data, len);
	if (rc == 0) {
		u->stats.dgrams_up++;
		u->stats.bytes_up += len;
	} else if (rc == WN_EMSGSIZE) {
		u->stats.drop_size++;
	} else {
		u->stats.drop_tunnel++;
	}
}

/* ---- reaping ----------------------------------------------------------- */

static void on_reap(struct wn_timer *t)
{
	struct wn_udp_front *u = wn_container_of(t, struct wn_udp_front, reap);
	uint64_t now = wn_loop_now_ms(u->loop);
	uint64_t n = 0;

	while (!wn_list_empty(&u->lru)) {
		struct uflow *e = wn_list_entry(u->lru.next, struct uflow, lru);
		if (now - e->last_ms < u->idle_ms)
			break;
		drop_flow(u, e);
		n++;
	}
	if (n) {
		u->stats.flows_reaped += n;
		WN_LOG(u->log, WN_LOG_DEBUG, LOG_COMP,
		       "%s: reaped %llu idle flows, %llu left", u->name,
		       (unsigned long long)n,
		       (unsigned long long)u->stats.flows);
	}
}

/* ---- open and close ---------------------------------------------------- */

static void on_timer_closed(struct wn_timer *t)
{
	struct wn_udp_front *u = wn_container_of(t, struct wn_udp_front, reap);

	/* The socket closed first and reads no more into rx. */
	wn_dgram_rx_free(u->rx);
	free(u->buckets);
	free(u->hbuckets);
	free(u->by_count);
	free(u);
}

void wn_udp_front_close(struct wn_udp_front *u)
{
	if (u->closing)
		return;
	u->closing = true;
	while (!wn_list_empty(&u->lru))
		drop_flow(u, wn_list_entry(u->lru.next, struct uflow, lru));
	WN_LOG(u->log, WN_LOG_INFO, LOG_COMP,
	       "%s: closed: %llu flows, %llu datagrams up, %llu down, "
	       "dropped %llu too large, %llu tunnel, %llu refused, %llu "
	       "replies, %llu table full (%llu evicted)",
	       u->name, (unsigned long long)u->stats.flows_opened,
	       (unsigned long long)u->stats.dgrams_up,
	       (unsigned long long)u->stats.dgrams_down,
	       (unsigned long long)u->stats.drop_size,
	       (unsigned long long)u->stats.drop_tunnel,
	       (unsigned long long)u->stats.drop_policy,
	       (unsigned long long)u->stats.drop_reply,
	       (unsigned long long)u->stats.drop_full,
	       (unsigned long long)u->stats.flows_evicted);
	if (u->fec_data)
		WN_LOG(u->log, WN_LOG_INFO, LOG_COMP,
		       "%s: fec %u/%u: %llu rebuilt, %llu unrecoverable, %llu "
		       "flows without",
		       u->name, u->fec_data, u->fec_parity,
		       (unsigned long long)u->stats.fec_recovered,
		       (unsigned long long)u->stats.fec_unrecoverable,
		       (unsigned long long)u->stats.fec_off);
	if (u->sock)
		wn_dgram_close(u->sock);
	u->sock = NULL;
	wn_timer_close(&u->reap, on_timer_closed);
}

/* The listen address: a literal, or the first address a name resolves
 * to (synchronously: once, while starting up). */
static int resolve_listen(struct wn_loop *loop, const struct wn_endpoint *ep,
                          struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM};
	uv_getaddrinfo_t req;
	char port[8];

	if (ep->kind == WN_HOST_IP) {
		*ss = ep->sa;
	} else if (ep->kind == WN_HOST_NAME) {
		snprintf(port, sizeof(port), "%u", (unsigned)ep->port);
		if (uv_getaddrinfo(wn_loop_uv(loop), &req, NULL, ep->host, port,
		                   &hints) != 0 ||
		    !req.addrinfo)
			return WN_EUNREACH;
		memset(ss, 0, sizeof(*ss));
		if (req.addrinfo->ai_addrlen <= sizeof(*ss))
			memcpy(ss, req.addrinfo->ai_addr,
			       req.addrinfo->ai_addrlen);
		uv_freeaddrinfo(req.addrinfo);
	} else {
		return WN_EINVAL;
	}
	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
		return WN_EUNREACH;
	*len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                : sizeof(struct sockaddr_in6);
	return 0;
}

static uint32_t pow2_at_least(unsigned n)
{
	uint32_t v = 16;

	while (v < n && v < (1u << 30))
		v <<= 1;
	return v;
}

int wn_udp_front_open(struct wn_loop *loop, struct wn_log *log,
                      struct wn_tunnel *t, const struct wn_udp_front_opts *o,
                      struct wn_udp_front **out)
{
	struct wn_dgram_opts so = {0};
	struct wn_udp_front *u;
	struct sockaddr_storage ss, local;
	socklen_t sl;
	char a[INET6_ADDRSTRLEN + 8];
	uint64_t period;
	int rc;

	if (!wn_tunnel_has_datagrams(t))
		return WN_ENOTSUP;
	rc = resolve_listen(loop, &o->listen, &ss, &sl);
	if (rc < 0)
		return rc;
	u = calloc(1, sizeof(*u));
	if (!u)
		return WN_ENOMEM;
	u->loop = loop;
	u->log = log;
	u->tunnel = t;
	snprintf(u->name, sizeof(u->name), "%s", o->name ? o->name : "udp");
	u->target = o->target;
	wn_endpoint_format(&u->target, u->target_text, sizeof(u->target_text));
	u->idle_ms = o->idle_ms ? o->idle_ms : WN_UDP_FRONT_IDLE_DEFAULT_MS;
	u->max_flows =
	    o->max_flows ? o->max_flows : WN_UDP_FRONT_MAX_FLOWS_DEFAULT;
	u->evict_rate = o->evict_rate ? o->evict_rate
	                : u->max_flows > WN_UDP_FRONT_EVICT_RATE
	                    ? u->max_flows
	                    : WN_UDP_FRONT_EVICT_RATE;
	u->evict_credit = (uint64_t)u->evict_rate * 1000;
	u->evict_ms = wn_loop_now_ms(loop);
	u->fec_data = o->fec_data;
	u->fec_parity = o->fec_parity;
	u->fec_delay_ms = o->fec_delay_ms ? o->fec_delay_ms : 5;
	u->fh.on_datagram = on_flow_datagram;
	u->fh.on_flow_closed = on_flow_closed;
	wn_list_init(&u->lru);
	wn_list_init(&u->fresh);
	u->protect_ms = WN_UDP_FRONT_PROTECT_MS < u->idle_ms
	                    ? WN_UDP_FRONT_PROTECT_MS
	                    : u->idle_ms;
	u->rl_denied = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 5);
	u->rl_evict = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 1);
	u->rl_full = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 1);
	u->rl_err = (struct wn_ratelimit)WN_RATELIMIT_INIT(10000, 5);
	randombytes_buf(u->hkey, sizeof(u->hkey));
	u->mask = pow2_at_least(u->max_flows) - 1;
	u->buckets = calloc((size_t)u->mask + 1, sizeof(*u->buckets));
	u->hbuckets = calloc((size_t)u->mask + 1, sizeof(*u->hbuckets));
	if (!u->buckets || !u->hbuckets || wn_dgram_rx_new(&u->rx) != 0) {
		free(u->buckets);
		free(u->hbuckets);
		free(u);
		return WN_ENOMEM;
	}
	rc = wn_timer_init(loop, &u->reap, on_reap);
	if (rc < 0) {
		wn_dgram_rx_free(u->rx);
		free(u->buckets);
		free(u->hbuckets);
		free(u);
		return rc;
	}
	so.name = u->name;
	so.family = ss.ss_family;
	so.bind = (const struct sockaddr *)&ss;
	so.bind_len = sl;
	so.rx = u->rx;
	so.batch_send = true;
	/* Every application's datagrams queue here while the loop works. */
	so.rcvbuf = WN_UDP_FRONT_SOCKBUF;
	so.sndbuf = WN_UDP_FRONT_SOCKBUF;
	so.on_recv = on_recv;
	so.ctx = u;
	rc = wn_dgram_open(loop, log, &so, &u->sock);
	period = u->idle_ms / 4;
	if (period < WN_UDP_REAP_MIN_MS)
		period = WN_UDP_REAP_MIN_MS;
	if (rc == 0)
		rc = wn_timer_start(&u->reap, period, period);
	if (rc < 0) {
		wn_udp_front_close(u);
		return rc;
	}
	wn_dgram_sockname(u->sock, &local);
	wn_sockaddr_format((struct sockaddr *)&local, a, sizeof(a));
	char fec[48] = "off";
	if (u->fec_data)
		snprintf(fec, sizeof(fec), "%u/%u, fec-delay %ums", u->fec_data,
		         u->fec_parity, u->fec_delay_ms);
	WN_LOG(log, WN_LOG_INFO, LOG_COMP,
	       "%s: listening on udp://%s for %s (udp-idle %ums, max-flows "
	       "%u, fec %s)",
	       u->name, a, u->target_text, u->idle_ms, u->max_flows, fec);
	*out = u;
	return 0;
}

int wn_udp_front_sockname(const struct wn_udp_front *u,
                          struct sockaddr_storage *ss)
{
	return wn_dgram_sockname(u->sock, ss);
}

void wn_udp_front_stats(const struct wn_udp_front *u,
                        struct wn_udp_front_stats *out)
{
	*out = u->stats;
	for (struct wn_list *n = u->lru.next; n != &u->lru; n = n->next) {
		const struct uflow *e = wn_list_entry(n, struct uflow, lru);
		struct wn_flow_stats fs;
		if (!e->flow)
			continue;
		wn_flow_stats(e->flow, &fs);
		out->fec_recovered += fs.fec_recovered;
		out->fec_unrecoverable += fs.fec_unrecoverable;
	}
	/* Replies go out in batches: the kernel's refusals are counted
	 * where the batch is written. */
	if (u->sock) {
		uint64_t lost = wn_dgram_get_stats(u->sock)->send_dropped;
		out->drop_reply += lost;
		out->dgrams_down -=
		    lost < out->dgrams_down ? lost : out->dgrams_down;
	}
}
