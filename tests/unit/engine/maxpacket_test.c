/* Engines size every packet from the carrier (carrier.h): over a carrier
 * whose max_packet is small (Tox's 1373 bytes, and 1000 for kcptun, below
 * its own 1350-byte default), no engine ever sends a packet larger than
 * that, and a bulk echo still gets through whole. Each engine (QUIC, KCP,
 * KCP with the kcptun profile and FEC) runs once (cmocka prestate).
 *
 * The carrier pair is a small local stub (in order, no loss, delivered from
 * an idle handle) that records the largest packet handed to it and counts
 * those above its limit; it delivers them anyway, so an engine that
 * ignores the limit fails the assertions instead of stalling. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "engine/kcp_engine.h"
#include "engine/quic.h"
#include "util/bufq.h"
#include "util/err.h"

/* ---- a carrier pair with a small max_packet ----------------------------- */

struct spkt {
	struct spkt *next;
	size_t len;
	uint8_t data[];
};

struct scar {
	struct wn_carrier base;
	struct scar *peer;
	struct sockaddr_in addr;
	struct spkt *head, **tail;
	uv_idle_t idle;
	size_t max_packet;
	size_t largest;   /* the largest packet send() was given */
	size_t oversized; /* packets above max_packet */
	uint64_t sent;
};

static void sc_deliver(uv_idle_t *h)
{
	struct scar *m = h->data;
	struct spkt *p = m->head;
	m->head = NULL;
	m->tail = &m->head;
	while (p) {
		struct spkt *next = p->next;
		m->base.h.recv(m->base.h.ctx, &m->base,
		               (struct sockaddr *)&m->peer->addr,
		               sizeof(m->peer->addr), p->data, p->len);
		free(p);
		p = next;
	}
	if (!m->head)
		uv_idle_stop(&m->idle);
}

static int sc_send(struct wn_carrier *c, const struct sockaddr *to,
                   socklen_t tolen, const uint8_t *buf, size_t len, size_t seg)
{
	struct scar *m = (struct scar *)c, *dst = m->peer;
	(void)to;
	(void)tolen;
	if (seg == 0 || seg > len)
		seg = len;
	for (size_t off = 0; off < len; off += seg) {
		size_t n = len - off < seg ? len - off : seg;
		if (n > m->largest)
			m->largest = n;
		if (n > m->max_packet)
			m->oversized++;
	}
	for (size_t off = 0; off < len; off += seg) {
		size_t n = len - off < seg ? len - off : seg;
		struct spkt *p = malloc(sizeof(*p) + n);
		assert_non_null(p);
		p->next = NULL;
		p->len = n;
		memcpy(p->data, buf + off, n);
		*dst->tail = p;
		dst->tail = &p->next;
		m->sent++;
	}
	uv_idle_start(&dst->idle, sc_deliver);
	return 0;
}

static size_t sc_max_packet(const struct wn_carrier *c)
{
	return ((const struct scar *)c)->max_packet;
}

static int sc_local_addr(const struct wn_carrier *c,
                         struct sockaddr_storage *ss, socklen_t *len)
{
	const struct scar *m = (const struct scar *)c;
	memcpy(ss, &m->addr, sizeof(m->addr));
	*len = sizeof(m->addr);
	return 0;
}

static void sc_close(struct wn_carrier *c)
{
	struct scar *m = (struct scar *)c;
	uv_idle_stop(&m->idle);
	uv_close((uv_handle_t *)&m->idle, NULL);
	while (m->head) {
		struct spkt *p = m->head;
		m->head = p->next;
		free(p);
	}
}

static const struct wn_carrier_ops sc_ops = {
    .send = sc_send,
    .max_packet = sc_max_packet,
    .local_addr = sc_local_addr,
    .close = sc_close,
};

static void sc_init(struct scar *m, struct wn_loop *loop, const char *ip,
                    uint16_t port, size_t max_packet,
                    struct wn_carrier_handler h)
{
	memset(m, 0, sizeof(*m));
	m->base.ops = &sc_ops;
	m->base.scheme = "small";
	/* Datagram-like with a fixed limit, as Tox is (less its state). */
	m->base.caps = WN_CARRIER_DATAGRAM | WN_CARRIER_FIXED_MTU;
	m->base.h = h;
	m->max_packet = max_packet;
	m->addr.sin_family = AF_INET;
	m->addr.sin_port = htons(port);
	inet_pton(AF_INET, ip, &m->addr.sin_addr);
	m->tail = &m->head;
	uv_idle_init(wn_loop_uv(loop), &m->idle);
	m->idle.data = m;
}

/* ---- engines joined by the pair, with an echo server -------------------- */

enum which { QUIC, KCP, KCPTUN };

struct world {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_identity sid, cid;
	enum which e;
	struct wn_kcptun_cfg kt;
	struct wn_quic_server *srv;
	struct wn_quic_client *cli;
	struct wn_kcp_server *ksrv;
	struct wn_kcp_client *kcli;
	struct scar sc, cc;
	uint8_t *payload, *echoed;
	size_t len, sent, got;
	int eof;
	struct wn_stream *cs;
	uv_timer_t guard;
	int timed_out;
};

struct echo {
	struct wn_bufq pending;
	int eof;
};

static void echo_drain(struct wn_stream *s, struct echo *e)
{
	while (wn_bufq_len(&e->pending) > 0) {
		struct iovec iov;
		wn_bufq_peek_iov(&e->pending, &iov, 1);
		ssize_t n = wn_stream_write(s, iov.iov_base, iov.iov_len);
		assert_true(n >= 0);
		if (n == 0)
			return;
		wn_bufq_consume(&e->pending, (size_t)n);
		wn_stream_consumed(s, (size_t)n);
	}
	if (e->eof)
		wn_stream_shutdown(s);
}

static void echo_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                      size_t len)
{
	struct echo *e = ctx;
	assert_int_equal(wn_bufq_write(&e->pending, d, len), (ssize_t)len);
	echo_drain(s, e);
}

static void echo_writable(void *ctx, struct wn_stream *s)
{
	echo_drain(s, ctx);
}

static void echo_eof(void *ctx, struct wn_stream *s)
{
	struct echo *e = ctx;
	e->eof = 1;
	echo_drain(s, e);
}

static void echo_closed(void *ctx, struct wn_stream *s, int err)
{
	struct echo *e = ctx;
	(void)s;
	(void)err;
	wn_bufq_free(&e->pending);
	free(e);
}

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	(void)ctx;
	(void)t;
	(void)target;
	struct echo *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	assert_int_equal(wn_bufq_init(&e->pending, 16384, SIZE_MAX / 2), 0);
	struct wn_stream_handler h = {
	    .ctx = e,
	    .on_data = echo_data,
	    .on_eof = echo_eof,
	    .on_writable = echo_writable,
	    .on_closed = echo_closed,
	};
	wn_stream_set_handler(s, &h);
}

static void pump(struct world *w)
{
	while (w->cs && w->sent < w->len) {
		ssize_t n = wn_stream_write(w->cs, w->payload + w->sent,
		                            w->len - w->sent);
		assert_true(n >= 0);
		if (n == 0)
			return;
		w->sent += (size_t)n;
	}
	if (w->cs)
		wn_stream_shutdown(w->cs);
}

static void cli_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                     size_t len)
{
	struct world *w = ctx;
	assert_true(w->got + len <= w->len);
	memcpy(w->echoed + w->got, d, len);
	w->got += len;
	wn_stream_consumed(s, len);
}

static void cli_eof(void *ctx, struct wn_stream *s)
{
	(void)s;
	((struct world *)ctx)->eof = 1;
}

static void cli_writable(void *ctx, struct wn_stream *s)
{
	(void)s;
	pump(ctx);
}

static void cli_closed(void *ctx, struct wn_stream *s, int err)
{
	(void)s;
	(void)err;
	((struct world *)ctx)->cs = NULL;
}

static void guard_fired(uv_timer_t *t)
{
	struct world *w = t->data;
	w->timed_out = 1;
	wn_loop_stop(&w->loop);
}

static void world_init(struct world *w, enum which e, size_t max_packet)
{
	memset(w, 0, sizeof(*w));
	w->e = e;
	assert_int_equal(wn_loop_init(&w->loop), 0);
	wn_log_init(&w->log, WN_LOG_WARN, STDERR_FILENO);
	assert_int_equal(wn_identity_generate(&w->sid), 0);
	assert_int_equal(wn_identity_generate(&w->cid), 0);
	struct wn_accept_handler ah = {.ctx = w, .on_stream = on_stream};
	struct wn_carrier_handler sh, ch;
	if (e == QUIC) {
		struct wn_quic_opts o;
		wn_quic_opts_default(&o);
		o.loop = &w->loop;
		o.log = &w->log;
		o.id = &w->sid;
		assert_int_equal(
		    wn_quic_server_new(&o, &w->cid.ed_pk, 1, &ah, &w->srv), 0);
		o.id = &w->cid;
		assert_int_equal(
		    wn_quic_client_new(&o, w->sid.ed_pk, NULL, &w->cli), 0);
		sh = wn_quic_server_handler(w->srv);
		ch = wn_quic_client_handler(w->cli);
	} else {
		struct wn_kcp_engine_opts ko;
		wn_kcp_engine_opts_default(&ko);
		ko.loop = &w->loop;
		ko.log = &w->log;
		ko.id = &w->sid;
		if (e == KCPTUN) {
			wn_kcptun_cfg_default(&w->kt); /* FEC 10/3 */
			ko.kcptun = &w->kt;
		}
		assert_int_equal(
		    wn_kcp_server_new(&ko, &w->cid.ed_pk, 1, &ah, &w->ksrv), 0);
		ko.id = &w->cid;
		assert_int_equal(
		    wn_kcp_client_new(&ko, w->sid.ed_pk, NULL, &w->kcli), 0);
		sh = wn_kcp_server_handler(w->ksrv);
		ch = wn_kcp_client_handler(w->kcli);
	}
	sc_init(&w->sc, &w->loop, "10.0.0.2", 4433, max_packet, sh);
	sc_init(&w->cc, &w->loop, "10.0.0.1", 50000, max_packet, ch);
	w->sc.peer = &w->cc;
	w->cc.peer = &w->sc;
	struct sockaddr *sa = (struct sockaddr *)&w->sc.addr;
	if (e == QUIC)
		assert_int_equal(wn_quic_client_start(w->cli, &w->cc.base, sa,
		                                      sizeof(w->sc.addr)),
		                 0);
	else
		assert_int_equal(wn_kcp_client_start(w->kcli, &w->cc.base, sa,
		                                     sizeof(w->sc.addr)),
		                 0);
	uv_timer_init(wn_loop_uv(&w->loop), &w->guard);
	w->guard.data = w;
	uv_timer_start(&w->guard, guard_fired, 60000, 0);
}

static void world_free(struct world *w)
{
	if (w->e == QUIC) {
		wn_quic_client_close(w->cli);
		wn_quic_server_close(w->srv);
	} else {
		wn_kcp_client_close(w->kcli);
		wn_kcp_server_close(w->ksrv);
	}
	uv_close((uv_handle_t *)&w->guard, NULL);
	for (int i = 0; i < 3; i++)
		uv_run(wn_loop_uv(&w->loop), UV_RUN_NOWAIT);
	sc_close(&w->sc.base);
	sc_close(&w->cc.base);
	assert_int_equal(wn_loop_close(&w->loop), 0);
	free(w->payload);
	free(w->echoed);
}

static void echo_within(enum which e, size_t max_packet)
{
	struct world w;
	world_init(&w, e, max_packet);
	w.len = 300 * 1000;
	w.payload = malloc(w.len);
	w.echoed = malloc(w.len);
	assert_non_null(w.payload);
	assert_non_null(w.echoed);
	randombytes_buf(w.payload, w.len);
	struct wn_endpoint target;
	const char *why;
	assert_int_equal(wn_endpoint_parse("10.9.9.9:7", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &target, &why),
	                 0);
	struct wn_stream_handler h = {
	    .ctx = &w,
	    .on_data = cli_data,
	    .on_eof = cli_eof,
	    .on_writable = cli_writable,
	    .on_closed = cli_closed,
	};
	struct wn_tunnel *t = e == QUIC ? wn_quic_client_tunnel(w.cli)
	                                : wn_kcp_client_tunnel(w.kcli);
	w.cs = wn_tunnel_open_stream(t, &target, &h);
	assert_non_null(w.cs);
	pump(&w);
	while (!w.eof && !w.timed_out)
		uv_run(wn_loop_uv(&w.loop), UV_RUN_ONCE);
	assert_false(w.timed_out);
	assert_int_equal(w.got, w.len);
	assert_memory_equal(w.echoed, w.payload, w.len);
	/* Nothing above the carrier's limit, either way... */
	assert_int_equal(w.cc.oversized, 0);
	assert_int_equal(w.sc.oversized, 0);
	assert_true(w.cc.largest <= max_packet);
	assert_true(w.sc.largest <= max_packet);
	/* ...and the limit is what sized them: full packets come close. */
	assert_true(w.cc.largest + 64 > max_packet);
	assert_true(w.sc.largest + 64 > max_packet);
	world_free(&w);
}

static void quic_tox_sized(void **state)
{
	(void)state;
	echo_within(QUIC, 1373);
}

static void kcp_tox_sized(void **state)
{
	(void)state;
	echo_within(KCP, 1373);
}

static void kcptun_below_its_mtu(void **state)
{
	(void)state;
	echo_within(KCPTUN, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(quic_tox_sized),
	    cmocka_unit_test(kcp_tox_sized),
	    cmocka_unit_test(kcptun_below_its_mtu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
