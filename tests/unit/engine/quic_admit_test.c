/* The QUIC server's admission of new connections (src/engine/quic.c,
 * server_admit): silence for clients that do not prove they know the
 * server's key, Retry once too many handshakes are unvalidated, and the
 * caps. Many clients, each on its own address, reach one server through a
 * hub carrier in memory; a "deaf" client stands for a spoofed source: it
 * sends, and what the server sends back to its address is counted and
 * thrown away. Also the caps per client key: sessions, and streams over
 * all of a key's sessions. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "engine/quic_int.h"
#include "util/err.h"

#define MAX_PORTS 160

struct hub;

/* A client's carrier: everything it sends goes to the server. */
struct port {
	struct wn_carrier base; /* first */
	struct hub *hub;
	struct sockaddr_in addr;
	int deaf;
	int mute; /* what it sends is lost: a client killed with -9 */
	uint64_t rx_pkts, rx_bytes, rx_retries; /* what the server sent it */
};

struct hpkt {
	struct hpkt *next;
	struct wn_carrier *to;
	struct sockaddr_in from;
	size_t len;
	uint8_t data[];
};

/* The server's carrier, and the wire between it and the ports. */
struct hub {
	struct wn_carrier base; /* first */
	struct sockaddr_in addr;
	struct port *ports[MAX_PORTS];
	size_t nports;
	struct hpkt *head, **tail;
	uv_idle_t idle;
	uint64_t sent_bytes; /* by the server, to anyone */
};

static void set_addr(struct sockaddr_in *a, const char *ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
}

static void deliver(uv_idle_t *h)
{
	struct hub *hub = h->data;
	struct hpkt *p = hub->head;
	hub->head = NULL;
	hub->tail = &hub->head;
	uv_idle_stop(&hub->idle);
	while (p) {
		struct hpkt *next = p->next;
		p->to->h.recv(p->to->h.ctx, p->to,
		              (const struct sockaddr *)&p->from,
		              sizeof(p->from), p->data, p->len);
		free(p);
		p = next;
	}
}

static void queue(struct hub *hub, struct wn_carrier *to,
                  const struct sockaddr_in *from, const uint8_t *buf, size_t n)
{
	struct hpkt *p = malloc(sizeof(*p) + n);
	assert_non_null(p);
	p->next = NULL;
	p->to = to;
	p->from = *from;
	p->len = n;
	memcpy(p->data, buf, n);
	*hub->tail = p;
	hub->tail = &p->next;
	uv_idle_start(&hub->idle, deliver);
}

static int is_retry(const uint8_t *pkt, size_t n)
{
	/* QUIC v1 long header, packet type 3. */
	return n > 0 && (pkt[0] & 0x80) && ((pkt[0] >> 4) & 3) == 3;
}

static int hub_send(struct wn_carrier *c, const struct sockaddr *to,
                    socklen_t tolen, const uint8_t *buf, size_t len, size_t seg)
{
	struct hub *hub = (struct hub *)c;
	const struct sockaddr_in *a = (const struct sockaddr_in *)to;
	if (tolen < sizeof(*a) || seg == 0)
		return WN_EINVAL;
	struct port *dst = NULL;
	for (size_t i = 0; i < hub->nports; i++)
		if (hub->ports[i]->addr.sin_addr.s_addr == a->sin_addr.s_addr &&
		    hub->ports[i]->addr.sin_port == a->sin_port)
			dst = hub->ports[i];
	for (size_t off = 0; off < len; off += seg) {
		size_t n = len - off < seg ? len - off : seg;
		hub->sent_bytes += n;
		if (!dst)
			continue;
		dst->rx_pkts++;
		dst->rx_bytes += n;
		dst->rx_retries += is_retry(buf + off, n);
		if (!dst->deaf)
			queue(hub, &dst->base, &hub->addr, buf + off, n);
	}
	return 0;
}

static int port_send(struct wn_carrier *c, const struct sockaddr *to,
                     socklen_t tolen, const uint8_t *buf, size_t len,
                     size_t seg)
{
	struct port *p = (struct port *)c;
	(void)to;
	(void)tolen;
	if (seg == 0)
		return WN_EINVAL;
	if (p->mute)
		return 0;
	for (size_t off = 0; off < len; off += seg) {
		size_t n = len - off < seg ? len - off : seg;
		queue(p->hub, &p->hub->base, &p->addr, buf + off, n);
	}
	return 0;
}

static size_t max_packet(const struct wn_carrier *c)
{
	(void)c;
	return 1452;
}

static int hub_local(const struct wn_carrier *c, struct sockaddr_storage *ss,
                     socklen_t *len)
{
	memcpy(ss, &((const struct hub *)c)->addr, sizeof(struct sockaddr_in));
	*len = sizeof(struct sockaddr_in);
	return 0;
}

static int port_local(const struct wn_carrier *c, struct sockaddr_storage *ss,
                      socklen_t *len)
{
	memcpy(ss, &((const struct port *)c)->addr, sizeof(struct sockaddr_in));
	*len = sizeof(struct sockaddr_in);
	return 0;
}

static void no_close(struct wn_carrier *c)
{
	(void)c;
}

static const struct wn_carrier_ops hub_ops = {
    .send = hub_send,
    .max_packet = max_packet,
    .local_addr = hub_local,
    .close = no_close,
};

static const struct wn_carrier_ops port_ops = {
    .send = port_send,
    .max_packet = max_packet,
    .local_addr = port_local,
    .close = no_close,
};

/* ---- the world: one server, clients on ports -------------------------- */

struct client {
	struct wn_engine *q;
	struct port port;
	int up, closed;
	char down_why[200];
};

struct world {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_identity sid, cid, other, cid2;
	struct wn_engine *srv;
	struct hub hub;
	struct client cl[MAX_PORTS];
	size_t ncl;
	struct wn_quic_opts o;
	uv_timer_t guard;
	int timed_out;
	/* The server keeps the streams it is handed (else it refuses them),
	 * and counts them. */
	int keep_streams;
	size_t accepted;
	struct wn_stream *kept[16];
};

static void srv_data(void *ctx, struct wn_stream *s, const uint8_t *data,
                     size_t len)
{
	(void)ctx;
	(void)data;
	wn_stream_consumed(s, len);
}

static void srv_closed(void *ctx, struct wn_stream *s, int err)
{
	struct world *w = ctx;
	(void)err;
	for (size_t i = 0; i < sizeof(w->kept) / sizeof(w->kept[0]); i++)
		if (w->kept[i] == s)
			w->kept[i] = NULL;
}

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct world *w = ctx;
	(void)t;
	(void)target;
	if (!w->keep_streams) {
		wn_stream_reset(s, WN_STREAM_DENIED);
		return;
	}
	struct wn_stream_handler h = {
	    .ctx = w, .on_data = srv_data, .on_closed = srv_closed};
	wn_stream_set_handler(s, &h);
	if (w->accepted < sizeof(w->kept) / sizeof(w->kept[0]))
		w->kept[w->accepted] = s;
	w->accepted++;
}

static void on_up(void *ctx)
{
	((struct client *)ctx)->up = 1;
}

static void on_down(void *ctx, const char *why)
{
	struct client *c = ctx;
	snprintf(c->down_why, sizeof(c->down_why), "%s", why);
}

static void guard_fired(uv_timer_t *t)
{
	struct world *w = t->data;
	w->timed_out = 1;
	wn_loop_stop(&w->loop);
}

/* A server accepting the keys cid and cid2, with caps per key of
 * sessions_per_key and streams_per_key (0: the defaults). */
static void world_init_caps(struct world *w, uint32_t sessions_per_key,
                            uint32_t streams_per_key)
{
	memset(w, 0, sizeof(*w));
	assert_int_equal(wn_loop_init(&w->loop), 0);
	wn_log_init(&w->log, WN_LOG_ERROR, STDERR_FILENO);
	assert_int_equal(wn_identity_generate(&w->sid), 0);
	assert_int_equal(wn_identity_generate(&w->cid), 0);
	assert_int_equal(wn_identity_generate(&w->other), 0);
	assert_int_equal(wn_identity_generate(&w->cid2), 0);
	wn_quic_opts_default(&w->o);
	w->o.loop = &w->loop;
	w->o.log = &w->log;
	w->o.idle_timeout_ms = 3000;
	w->o.keepalive_ms = 1000;
	w->o.handshake_timeout_ms = 3000;
	w->o.id = &w->sid;
	struct wn_accept_handler ah = {.ctx = w, .on_stream = on_stream};
	/* The server holds a half-open handshake far longer than any test
	 * runs, so the flood's slots stay taken however slow the machine;
	 * clients (w->o) give up after 3 s. */
	struct wn_quic_opts so = w->o;
	so.handshake_timeout_ms = 60000;
	so.idle_timeout_ms = 60000;
	if (sessions_per_key)
		so.sessions_per_key = sessions_per_key;
	if (streams_per_key)
		so.streams_per_key = streams_per_key;
	uint8_t keys[2][WN_KEY_LEN];
	memcpy(keys[0], w->cid.ed_pk, WN_KEY_LEN);
	memcpy(keys[1], w->cid2.ed_pk, WN_KEY_LEN);
	struct wn_engine_conf sconf = {.clients =
	                                   (const uint8_t(*)[WN_KEY_LEN])keys,
	                               .n_clients = 2,
	                               .accept = &ah};
	assert_int_equal(wn__quic_server_new(&so, &sconf, &w->srv), 0);
	struct hub *hub = &w->hub;
	hub->base.ops = &hub_ops;
	hub->base.scheme = "mem";
	hub->base.caps = WN_CARRIER_DATAGRAM;
	hub->base.h = wn_engine_handler(w->srv);
	snprintf(hub->base.name, sizeof(hub->base.name), "hub");
	set_addr(&hub->addr, "10.0.0.2", 4433);
	hub->tail = &hub->head;
	uv_idle_init(wn_loop_uv(&w->loop), &hub->idle);
	hub->idle.data = hub;
	uv_timer_init(wn_loop_uv(&w->loop), &w->guard);
	w->guard.data = w;
	uv_timer_start(&w->guard, guard_fired, 60000, 0);
}

static void world_init(struct world *w)
{
	world_init_caps(w, 0, 0);
}

/* A client with identity id at ip:port pinning server_key; deaf: it never
 * hears back. */
static struct client *add_client_as(struct world *w, const char *ip,
                                    uint16_t port, const uint8_t *server_key,
                                    int deaf, const struct wn_identity *id)
{
	assert_true(w->ncl < MAX_PORTS);
	struct client *c = &w->cl[w->ncl++];
	struct port *p = &c->port;
	p->base.ops = &port_ops;
	p->base.scheme = "mem";
	p->base.caps = WN_CARRIER_DATAGRAM;
	snprintf(p->base.name, sizeof(p->base.name), "port%zu", w->ncl);
	p->hub = &w->hub;
	p->deaf = deaf;
	set_addr(&p->addr, ip, port);
	w->hub.ports[w->hub.nports++] = p;
	struct wn_quic_opts o = w->o;
	o.id = id;
	struct wn_engine_events ev = {
	    .ctx = c, .on_up = on_up, .on_down = on_down};
	struct wn_engine_conf cconf = {.server_key = server_key, .events = &ev};
	assert_int_equal(wn__quic_client_new(&o, &cconf, &c->q), 0);
	p->base.h = wn_engine_handler(c->q);
	assert_int_equal(wn_engine_add_path(c->q, &p->base,
	                                    (struct sockaddr *)&w->hub.addr,
	                                    sizeof(w->hub.addr)),
	                 0);
	assert_int_equal(wn_engine_go(c->q), 0);
	return c;
}

/* A client with the key cid. */
static struct client *add_client(struct world *w, const char *ip, uint16_t port,
                                 const uint8_t *server_key, int deaf)
{
	return add_client_as(w, ip, port, server_key, deaf, &w->cid);
}

/* The server's counters and its live sessions. */
static const struct wn_quic_stats *server_stats(struct wn_engine *srv)
{
	return &wn__quic_ep(srv)->stats;
}

static size_t server_sessions(struct wn_engine *srv)
{
	struct wn_engine_stats st;
	wn_engine_stats(srv, &st);
	return (size_t)st.sessions;
}

static void tick(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop for ms of its time (a timer keeps it from blocking on the
 * guard when nothing else is pending). */
static void run_for(struct world *w, uint64_t ms)
{
	uv_timer_t t;
	uv_timer_init(wn_loop_uv(&w->loop), &t);
	uv_timer_start(&t, tick, 10, 10);
	uint64_t end = wn_loop_now_ms(&w->loop) + ms;
	while (wn_loop_now_ms(&w->loop) < end && !w->timed_out)
		uv_run(wn_loop_uv(&w->loop), UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(wn_loop_uv(&w->loop), UV_RUN_NOWAIT);
	assert_false(w->timed_out);
}

/* Runs until c is up and the server counts its session. */
static void run_until_up(struct world *w, struct client *c)
{
	size_t n = server_sessions(w->srv) + 1;
	while ((!c->up || server_sessions(w->srv) < n) && !w->timed_out)
		uv_run(wn_loop_uv(&w->loop), UV_RUN_ONCE);
	assert_false(w->timed_out);
}

/* Runs until c is up (a session that replaces another adds none). */
static void run_until_client_up(struct world *w, struct client *c)
{
	while (!c->up && !w->timed_out)
		uv_run(wn_loop_uv(&w->loop), UV_RUN_ONCE);
	assert_false(w->timed_out);
}

static void world_free(struct world *w)
{
	for (size_t i = 0; i < w->ncl; i++)
		if (!w->cl[i].closed)
			wn_engine_close(w->cl[i].q);
	wn_engine_close(w->srv);
	uv_close((uv_handle_t *)&w->guard, NULL);
	for (int i = 0; i < 3; i++)
		uv_run(wn_loop_uv(&w->loop), UV_RUN_NOWAIT);
	uv_idle_stop(&w->hub.idle);
	uv_close((uv_handle_t *)&w->hub.idle, NULL);
	while (w->hub.head) {
		struct hpkt *p = w->hub.head;
		w->hub.head = p->next;
		free(p);
	}
	assert_int_equal(wn_loop_close(&w->loop), 0);
}

static uint64_t half_open(struct world *w)
{
	const struct wn_quic_stats *st = server_stats(w->srv);
	return st->conns_opened - st->conns_closed - server_sessions(w->srv);
}

/* ---- tests ------------------------------------------------------------ */

/* A client that does not know the server's key (it pins another one, so
 * its Initials carry a proof for another key) gets not one byte back: no
 * handshake, no key, no sign that a server is there. */
static void test_stranger_gets_nothing(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	struct client *c = add_client(&w, "10.1.0.1", 5000, w.other.ed_pk, 0);
	run_for(&w, 3500); /* past the client's handshake timeout */
	assert_int_equal(c->up, 0);
	assert_int_equal(c->port.rx_pkts, 0);
	assert_int_equal(w.hub.sent_bytes, 0);
	assert_true(server_stats(w.srv)->pkts_dropped >= 2);
	assert_int_equal(server_stats(w.srv)->conns_opened, 0);
	/* It never saw the server's key: it says it heard nothing, and no
	 * key appears in what it says. */
	char key[WN_KEY_B64_LEN + 1];
	wn_key_encode(w.sid.ed_pk, key);
	assert_non_null(strstr(c->down_why, "no answer to the handshake"));
	assert_null(strstr(c->down_why, key));
	/* A client with the right key, from the same address, connects. */
	c = add_client(&w, "10.1.0.1", 5001, w.sid.ed_pk, 0);
	run_until_up(&w, c);
	assert_int_equal(server_stats(w.srv)->retries_sent, 0);
	world_free(&w);
}

/* Spoofed sources that know the key (replays, or a former client) flood
 * the server with proven Initials from many networks: only 64 of them
 * become unvalidated handshakes, the rest get a Retry (small, to an
 * address that never answers it), and a real client still connects,
 * through the Retry. */
static void test_flood_gets_retry_and_client_connects(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	char ip[32];
	for (int i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "10.2.%d.1", i);
		add_client(&w, ip, 6000, w.sid.ed_pk, 1);
	}
	run_for(&w, 200);
	assert_int_equal(half_open(&w), 64);
	const struct wn_quic_stats *st = server_stats(w.srv);
	assert_true(st->retries_sent >= 36);
	uint64_t retry_bytes = 0, retries = 0;
	for (size_t i = 0; i < w.ncl; i++) {
		retry_bytes +=
		    w.cl[i].port.rx_retries ? w.cl[i].port.rx_bytes : 0;
		retries += w.cl[i].port.rx_retries;
		/* Who got a Retry got nothing else. */
		if (w.cl[i].port.rx_retries)
			assert_int_equal(w.cl[i].port.rx_retries,
			                 w.cl[i].port.rx_pkts);
	}
	assert_true(retries >= 36);
	/* A Retry is smaller than the 1200-byte Initial it answers: no
	 * amplification towards a spoofed address. */
	assert_true(retry_bytes / retries < 200);
	struct client *c = add_client(&w, "10.3.0.1", 7000, w.sid.ed_pk, 0);
	run_until_up(&w, c);
	assert_true(c->port.rx_retries >= 1);
	assert_int_equal(server_sessions(w.srv), 1);
	/* The cap held throughout: the real client's handshake was the
	 * only one past it, and it was validated. */
	assert_true(half_open(&w) <= 64);
	world_free(&w);
}

/* One network holds at most 4 unvalidated handshakes, however many
 * addresses it uses; a real client inside it still connects. */
static void test_prefix_cap(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	char ip[32];
	for (int i = 0; i < 10; i++) {
		snprintf(ip, sizeof(ip), "10.4.4.%d", 10 + i);
		add_client(&w, ip, 6000, w.sid.ed_pk, 1);
	}
	/* Another network is not affected. */
	add_client(&w, "10.5.0.1", 6000, w.sid.ed_pk, 1);
	run_for(&w, 200);
	assert_int_equal(half_open(&w), 5);
	assert_true(server_stats(w.srv)->retries_sent >= 6);
	assert_int_equal(w.cl[10].port.rx_retries, 0);
	struct client *c = add_client(&w, "10.4.4.200", 7000, w.sid.ed_pk, 0);
	run_until_up(&w, c);
	assert_true(c->port.rx_retries >= 1);
	world_free(&w);
}

/* Handshakes that end give their slots back, in all and per prefix: once
 * the flood's handshakes are over, a new client from the flooded network
 * is admitted without a Retry again. */
static void test_slots_come_back(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	char ip[32];
	/* Up to both caps: 64 unvalidated in all, 4 of them in one /24. */
	for (int i = 0; i < 64; i++) {
		if (i < 4)
			snprintf(ip, sizeof(ip), "10.6.6.%d", 10 + i);
		else
			snprintf(ip, sizeof(ip), "10.7.%d.1", i);
		add_client(&w, ip, 6000, w.sid.ed_pk, 1);
	}
	run_for(&w, 200);
	assert_int_equal(half_open(&w), 64);
	assert_int_equal(server_stats(w.srv)->retries_sent, 0);
	for (size_t i = 0; i < w.ncl; i++) {
		wn_engine_close(w.cl[i].q);
		w.cl[i].closed = 1;
	}
	run_for(&w, 3500); /* their CONNECTION_CLOSE ends the handshakes */
	assert_int_equal(half_open(&w), 0);
	uint64_t retries = server_stats(w.srv)->retries_sent;
	struct client *c = add_client(&w, "10.6.6.99", 7000, w.sid.ed_pk, 0);
	run_until_up(&w, c);
	assert_int_equal(c->port.rx_retries, 0);
	assert_int_equal(server_stats(w.srv)->retries_sent, retries);
	world_free(&w);
}

/* A well-formed Initial header (the payload is noise: it does not
 * decrypt) to a fresh DCID, with token tok[0, toklen), padded to 1200
 * bytes as a client's first datagram must be. Returns its length. */
static size_t fake_initial(uint8_t *b, const uint8_t *tok, size_t toklen)
{
	size_t n = 0;
	b[n++] = 0xc0; /* long header, fixed bit, Initial, 1-byte PN */
	b[n++] = 0;
	b[n++] = 0;
	b[n++] = 0;
	b[n++] = 1; /* QUIC v1 */
	b[n++] = 18;
	randombytes_buf(b + n, 18);
	n += 18;
	b[n++] = 16;
	randombytes_buf(b + n, 16);
	n += 16;
	assert_true(toklen < 64);
	b[n++] = (uint8_t)toklen;
	memcpy(b + n, tok, toklen);
	n += toklen;
	size_t rest = 1200 - n - 2;
	b[n++] = (uint8_t)(0x40 | rest >> 8);
	b[n++] = (uint8_t)rest;
	randombytes_buf(b + n, rest);
	return n + rest;
}

/* Initials from strangers: no token, a token shaped like a proof that is
 * not one, a token shaped like a Retry token that this server did not
 * issue. None gets an answer, and none gets as far as a connection (no
 * ngtcp2 or TLS state, no slot). */
static void test_bad_tokens_make_no_state(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	struct client *c = add_client(&w, "10.8.0.1", 5000, w.sid.ed_pk, 0);
	run_until_up(&w, c);
	uint64_t opened = server_stats(w.srv)->conns_opened;
	uint64_t sent = w.hub.sent_bytes, rx = c->port.rx_bytes;
	uint8_t pkt[1200], tok[60];
	struct wn_carrier_handler h = w.hub.base.h;
	struct sockaddr_in from;
	set_addr(&from, "10.8.1.1", 5555);
	for (int i = 0; i < 60; i++) {
		size_t toklen = i % 3 == 0 ? 0 : i % 3 == 1 ? 20 : 58;
		randombytes_buf(tok, sizeof(tok));
		if (toklen == 58)
			tok[0] = 0xb6; /* NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY */
		size_t n = fake_initial(pkt, tok, toklen);
		h.recv(h.ctx, &w.hub.base, (struct sockaddr *)&from,
		       sizeof(from), pkt, n);
	}
	run_for(&w, 100);
	assert_int_equal(server_stats(w.srv)->conns_opened, opened);
	/* Whatever the server sent went to its real client. */
	assert_int_equal(w.hub.sent_bytes - sent, c->port.rx_bytes - rx);
	world_free(&w);
}

/* One client key holds at most sessions-per-key connections at once, over
 * any number of addresses. One more replaces the key's connection that
 * heard from its client least recently: a client killed without a word
 * (its port goes mute) is the one replaced, the live ones stay, and other
 * keys are not affected. */
static void test_sessions_per_key(void **state)
{
	(void)state;
	struct world w;
	world_init_caps(&w, 3, 0);
	char ip[32];
	struct client *c[3];
	for (int i = 0; i < 3; i++) {
		snprintf(ip, sizeof(ip), "10.8.%d.1", i);
		c[i] = add_client(&w, ip, 6000, w.sid.ed_pk, 0);
		run_until_up(&w, c[i]);
	}
	struct client *o =
	    add_client_as(&w, "10.9.0.1", 6000, w.sid.ed_pk, 0, &w.cid2);
	run_until_up(&w, o);
	assert_int_equal(server_sessions(w.srv), 4);
	/* The middle one is killed: the server hears nothing from it any
	 * more, while the others keep alive every second. */
	c[1]->port.mute = 1;
	run_for(&w, 1500);
	assert_int_equal(server_sessions(w.srv), 4);
	struct client *n = add_client(&w, "10.8.9.1", 6000, w.sid.ed_pk, 0);
	run_until_client_up(&w, n);
	run_for(&w, 300);
	assert_int_equal(wn__quic_ep(w.srv)->key_sessions[0], 3);
	assert_int_equal(wn__quic_ep(w.srv)->key_sessions[1], 1);
	assert_int_equal(server_sessions(w.srv), 4);
	/* The live ones and the other key's were never dropped. */
	assert_string_equal(c[0]->down_why, "");
	assert_string_equal(c[2]->down_why, "");
	assert_string_equal(o->down_why, "");
	assert_true(wn_engine_is_up(c[0]->q) && wn_engine_is_up(c[2]->q));
	assert_true(wn_engine_is_up(n->q) && wn_engine_is_up(o->q));
	/* Each new session of the key replaces one: never more than 3. */
	for (int i = 0; i < 3; i++) {
		snprintf(ip, sizeof(ip), "10.8.%d.1", 20 + i);
		run_until_client_up(&w,
		                    add_client(&w, ip, 6000, w.sid.ed_pk, 0));
		run_for(&w, 100);
		assert_true(wn__quic_ep(w.srv)->key_sessions[0] <= 3);
	}
	assert_string_equal(o->down_why, "");
	world_free(&w);
}

/* A client's stream: what it was told at the end. */
struct cstream {
	struct wn_stream *s;
	int closed, err;
};

static void cs_data(void *ctx, struct wn_stream *s, const uint8_t *data,
                    size_t len)
{
	(void)ctx;
	(void)data;
	wn_stream_consumed(s, len);
}

static void cs_closed(void *ctx, struct wn_stream *s, int err)
{
	struct cstream *cs = ctx;
	(void)s;
	cs->closed = 1;
	cs->err = err;
	cs->s = NULL;
}

static void open_cstream(struct client *c, struct cstream *cs,
                         const struct wn_endpoint *target)
{
	struct wn_stream_handler h = {
	    .ctx = cs, .on_data = cs_data, .on_closed = cs_closed};
	memset(cs, 0, sizeof(*cs));
	cs->s = wn_tunnel_open_stream(wn_engine_tunnel(c->q), target, &h);
	assert_non_null(cs->s);
}

/* streams-per-key counts the streams a key holds over all its sessions:
 * two sessions of one key share the cap, a stream past it is reset with
 * WN_STREAM_LIMIT before the accept handler sees it, another key has its
 * own count, and a stream that ends gives its place back. */
static void test_streams_per_key(void **state)
{
	(void)state;
	struct world w;
	world_init_caps(&w, 0, 5);
	w.keep_streams = 1;
	struct wn_endpoint target;
	const char *why;
	assert_int_equal(wn_endpoint_parse("10.99.0.1:80", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &target, &why),
	                 0);
	struct client *a = add_client(&w, "10.8.0.1", 6000, w.sid.ed_pk, 0);
	run_until_up(&w, a);
	struct client *b = add_client(&w, "10.8.1.1", 6000, w.sid.ed_pk, 0);
	run_until_up(&w, b);
	struct client *o =
	    add_client_as(&w, "10.9.0.1", 6000, w.sid.ed_pk, 0, &w.cid2);
	run_until_up(&w, o);
	struct cstream cs[8];
	for (int i = 0; i < 3; i++)
		open_cstream(a, &cs[i], &target);
	run_for(&w, 300);
	for (int i = 3; i < 6; i++)
		open_cstream(b, &cs[i], &target);
	run_for(&w, 300);
	assert_int_equal(w.accepted, 5);
	int limited = 0;
	for (int i = 0; i < 6; i++)
		if (cs[i].closed) {
			assert_int_equal(cs[i].err, WN_STREAM_LIMIT);
			limited++;
		}
	assert_int_equal(limited, 1);
	assert_int_equal(wn__quic_ep(w.srv)->key_streams[0], 5);
	/* The other key's streams are its own. */
	open_cstream(o, &cs[6], &target);
	run_for(&w, 300);
	assert_int_equal(w.accepted, 6);
	assert_false(cs[6].closed);
	/* One of the key's streams ends: the next one is accepted. */
	assert_non_null(cs[0].s);
	wn_stream_reset(cs[0].s, WN_STREAM_ABORTED);
	cs[0].s = NULL;
	run_for(&w, 300);
	assert_int_equal(wn__quic_ep(w.srv)->key_streams[0], 4);
	open_cstream(a, &cs[7], &target);
	run_for(&w, 300);
	assert_int_equal(w.accepted, 7);
	assert_false(cs[7].closed);
	assert_int_equal(wn__quic_ep(w.srv)->key_streams[0], 5);
	world_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stranger_gets_nothing),
	    cmocka_unit_test(test_flood_gets_retry_and_client_connects),
	    cmocka_unit_test(test_prefix_cap),
	    cmocka_unit_test(test_slots_come_back),
	    cmocka_unit_test(test_bad_tokens_make_no_state),
	    cmocka_unit_test(test_sessions_per_key),
	    cmocka_unit_test(test_streams_per_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
