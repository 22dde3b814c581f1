/* The QUIC engine's datagrams (RFC 9221 DATAGRAM frames carrying the flow
 * base's messages), two-ended in virtual time over simulated links, as
 * quic_sim_test.c runs streams. The client opens a flow; the server's
 * accept handler takes it and echoes every datagram back. Every datagram
 * is a pattern of its own length, so a truncated, corrupted or mixed-up
 * one is counted as bad.
 *
 * What it proves: datagrams of 1, 1200, 1472 and 1500 bytes arrive whole
 * over a 1200- and a 1452-byte path (the larger ones as two fragments);
 * a message of exactly the engine's max_msg fits one packet (ngtcp2 would
 * otherwise silently never send it); loss does not stall the datagrams or
 * a stream; a datagram flood neither stalls a concurrent stream transfer
 * (which completes intact) nor is starved by it, and what the bounded
 * queue dropped is counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/addr.h"
#include "engine/quic_int.h"
#include "io/loop.h"
#include "support/quicpair.h"
#include "support/simcarrier.h"
#include "support/simlink.h"
#include "util/err.h"

#define NS_PER_MS 1000000ull
#define START_NS (1000 * NS_PER_MS)
#define CHUNK 16384

static const size_t sizes[] = {1, 1200, 1472, 1500};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* The byte at k of every datagram of len bytes. */
static uint8_t dpat(size_t len, size_t k)
{
	uint64_t x =
	    (k + 1) * 0x9E3779B97F4A7C15ull + len * 0x632BE59BD9B4E019ull;
	x ^= x >> 29;
	return (uint8_t)(x >> 51);
}

static uint8_t spat(uint64_t off)
{
	uint64_t x = (off + 7) * 0xD6E8FEB86659FD93ull;
	x ^= x >> 31;
	return (uint8_t)(x >> 43);
}

/* Datagrams seen at one end, per size, and the bad ones. */
struct tally {
	uint64_t n[NSIZES];
	uint64_t total, bad;
};

static void tally_add(struct tally *t, const uint8_t *d, size_t len)
{
	for (size_t i = 0; i < NSIZES; i++) {
		if (sizes[i] != len)
			continue;
		for (size_t k = 0; k < len; k++)
			if (d[k] != dpat(len, k)) {
				t->bad++;
				return;
			}
		t->n[i]++;
		t->total++;
		return;
	}
	t->bad++;
}

struct sim {
	struct wn_quicpair q;  /* both ends, their links and the clock */
	struct wn_flow *cflow; /* the client's flow */
	struct wn_flow *sflow; /* the server's current one */
	unsigned server_flows; /* on_flow calls */
	int cflow_closed;
	struct tally at_srv, at_cli; /* received, both ways */
	/* An optional stream, client to server. */
	struct wn_stream *cs, *ss;
	uint64_t s_bytes, s_sent, s_got, s_bad;
	int s_shut, s_eof, s_closed, s_err;
};

static void settle(struct sim *m)
{
	wn_quicpair_settle(&m->q);
}

static bool step(struct sim *m, uint64_t step_ns)
{
	return wn_quicpair_step(&m->q, step_ns);
}

/* ---- flows ------------------------------------------------------------ */

static void cli_datagram(void *ctx, struct wn_flow *f, const uint8_t *d,
                         size_t len)
{
	struct sim *m = ctx;
	(void)f;
	tally_add(&m->at_cli, d, len);
}

static void cli_flow_closed(void *ctx, struct wn_flow *f, int err)
{
	struct sim *m = ctx;
	(void)f;
	(void)err;
	m->cflow_closed = 1;
	m->cflow = NULL;
}

/* The server echoes what it gets. */
static void srv_datagram(void *ctx, struct wn_flow *f, const uint8_t *d,
                         size_t len)
{
	struct sim *m = ctx;
	tally_add(&m->at_srv, d, len);
	wn_flow_send(f, d, len);
}

static void srv_flow_closed(void *ctx, struct wn_flow *f, int err)
{
	struct sim *m = ctx;
	(void)err;
	if (m->sflow == f)
		m->sflow = NULL;
}

static void on_flow(void *ctx, struct wn_tunnel *t, struct wn_flow *f,
                    const struct wn_endpoint *target)
{
	struct sim *m = ctx;
	(void)t;
	assert_non_null(target);
	assert_int_equal(target->port, 53);
	struct wn_flow_handler h = {.ctx = m,
	                            .on_datagram = srv_datagram,
	                            .on_flow_closed = srv_flow_closed};
	wn_flow_set_handler(f, &h);
	m->sflow = f;
	m->server_flows++;
}

/* ---- the optional stream ---------------------------------------------- */

static void s_pump(struct sim *m)
{
	uint8_t buf[CHUNK];
	while (m->cs && m->s_sent < m->s_bytes) {
		size_t n = m->s_bytes - m->s_sent < CHUNK
		               ? (size_t)(m->s_bytes - m->s_sent)
		               : CHUNK;
		for (size_t k = 0; k < n; k++)
			buf[k] = spat(m->s_sent + k);
		ssize_t w = wn_stream_write(m->cs, buf, n);
		assert_true(w >= 0);
		m->s_sent += (uint64_t)w;
		if ((size_t)w < n)
			return;
	}
	if (m->cs && !m->s_shut) {
		assert_int_equal(wn_stream_shutdown(m->cs), 0);
		m->s_shut = 1;
	}
}

static void cs_writable(void *ctx, struct wn_stream *s)
{
	(void)s;
	s_pump(ctx);
}

static void cs_closed(void *ctx, struct wn_stream *s, int err)
{
	struct sim *m = ctx;
	(void)s;
	(void)err;
	m->cs = NULL;
}

static void ss_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                    size_t len)
{
	struct sim *m = ctx;
	for (size_t k = 0; k < len; k++)
		if (d[k] != spat(m->s_got + k))
			m->s_bad++;
	m->s_got += len;
	wn_stream_consumed(s, len);
}

static void ss_eof(void *ctx, struct wn_stream *s)
{
	struct sim *m = ctx;
	m->s_eof = 1;
	wn_stream_shutdown(s);
}

static void ss_closed(void *ctx, struct wn_stream *s, int err)
{
	struct sim *m = ctx;
	(void)s;
	m->s_closed = 1;
	m->s_err = err;
	m->ss = NULL;
}

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct sim *m = ctx;
	(void)t;
	(void)target;
	m->ss = s;
	struct wn_stream_handler h = {.ctx = m,
	                              .on_data = ss_data,
	                              .on_eof = ss_eof,
	                              .on_closed = ss_closed};
	wn_stream_set_handler(s, &h);
}

/* ---- the rig ------------------------------------------------------------ */

static struct sim *sim_new(const struct wn_simlink_cfg *link, size_t max_pkt)
{
	struct sim *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	static struct wn_accept_handler ah;
	ah = (struct wn_accept_handler){
	    .ctx = m, .on_stream = on_stream, .on_flow = on_flow};
	wn_quicpair_init(&m->q, link, START_NS,
	                 getenv("DG_DEBUG") ? WN_LOG_DEBUG : WN_LOG_WARN, &ah);
	m->q.sc.max_packet = max_pkt;
	m->q.cc.max_packet = max_pkt;
	/* A path other than ngtcp2's 1200-byte start is a fixed one, as a
	 * stream carrier's is (no path MTU discovery to wait for). */
	if (max_pkt != 1200) {
		m->q.sc.base.caps |= WN_CARRIER_FIXED_MTU;
		m->q.cc.base.caps |= WN_CARRIER_FIXED_MTU;
	}
	struct wn_tunnel *t = wn_engine_tunnel(m->q.cli);
	assert_true(wn_tunnel_has_datagrams(t));
	assert_int_equal(wn_tunnel_max_datagram(t), 0); /* not up yet */
	wn_quicpair_connect(&m->q);

	struct wn_endpoint target;
	const char *why;
	assert_int_equal(wn_endpoint_parse("10.9.0.1:53", WN_SCHEME_UDP,
	                                   WN_SCHEME_UDP, 0, &target, &why),
	                 0);
	struct wn_flow_handler h = {.ctx = m,
	                            .on_datagram = cli_datagram,
	                            .on_flow_closed = cli_flow_closed};
	m->cflow = wn_tunnel_open_flow(t, &target, &h);
	assert_non_null(m->cflow);
	settle(m);
	while (!wn_engine_is_up(m->q.cli)) {
		assert_true(step(m, 0));
		assert_true(m->q.now < START_NS + 10000 * NS_PER_MS);
	}
	return m;
}

static void sim_free(struct sim *m)
{
	wn_quicpair_free(&m->q);
	free(m);
}

static struct qconn *only_conn(struct wn_engine *e)
{
	struct qep *ep = wn__quic_ep(e);
	assert_false(wn_list_empty(&ep->conns));
	return wn_list_entry(ep->conns.next, struct qconn, link);
}

static void send_sized(struct sim *m, size_t len)
{
	uint8_t buf[1500];
	for (size_t k = 0; k < len; k++)
		buf[k] = dpat(len, k);
	assert_int_equal(wn_flow_send(m->cflow, buf, len), 0);
}

/* Runs for ms of virtual time. */
static void run_for(struct sim *m, uint64_t ms)
{
	uint64_t end = m->q.now + ms * NS_PER_MS;
	while (m->q.now < end)
		step(m, end - m->q.now);
}

/* The short header (1 + DCID + 4-byte packet number) and AEAD tag (16),
 * then the DATAGRAM frame's type and 2-byte length. */
static size_t expected_max(size_t path, size_t dcid)
{
	return path - (1 + dcid + 4 + 16) - 3;
}

/* ---- tests -------------------------------------------------------------- */

static const struct wn_simlink_cfg clean = {
    .delay_ms = 10, .rate_Bps = 4000000, .queue_bytes = 512 * 1024, .seed = 3};

static void sizes_over(size_t max_pkt)
{
	struct sim *m = sim_new(&clean, max_pkt);
	run_for(m, 3000); /* path MTU discovery */
	struct qconn *cq = only_conn(m->q.cli);
	size_t mm = wn__qdgram_max(cq);
	size_t path = ngtcp2_conn_get_path_max_tx_udp_payload_size(cq->conn);
	if (path > max_pkt)
		path = max_pkt;
	assert_int_equal(
	    mm, expected_max(path, ngtcp2_conn_get_dcid(cq->conn)->datalen));
	print_message("path %zu: max_msg %zu, max datagram %zu\n", path, mm,
	              wn_tunnel_max_datagram(wn_engine_tunnel(m->q.cli)));
	assert_true(wn_tunnel_max_datagram(wn_engine_tunnel(m->q.cli)) >= 1500);

	/* A message of exactly max_msg fits one packet and leaves (the
	 * server's flow base drops it as malformed: it is not a flow
	 * message); one byte more is refused up front. */
	static uint8_t raw[QUIC_DGRAM_SLOT + 1];
	memset(raw, 0xff, sizeof(raw));
	struct qep *cep = wn__quic_ep(m->q.cli), *sep = wn__quic_ep(m->q.srv);
	uint64_t sent0 = cep->stats.dgrams_sent;
	uint64_t recv0 = sep->stats.dgrams_recv;
	assert_int_equal(wn__qdgram_queue(cq, raw, mm + 1), WN_EMSGSIZE);
	assert_int_equal(wn__qdgram_queue(cq, raw, mm), 0);
	run_for(m, 100);
	assert_int_equal(cep->stats.dgrams_sent, sent0 + 1);
	assert_int_equal(sep->stats.dgrams_recv, recv0 + 1);
	assert_int_equal(cq->dg_count, 0);

	for (unsigned r = 0; r < 10; r++) {
		for (size_t i = 0; i < NSIZES; i++)
			send_sized(m, sizes[i]);
		run_for(m, 5);
	}
	run_for(m, 500);
	for (size_t i = 0; i < NSIZES; i++)
		print_message("size %zu: %llu at the server, %llu back\n",
		              sizes[i], (unsigned long long)m->at_srv.n[i],
		              (unsigned long long)m->at_cli.n[i]);
	/* Every message the client sent arrived, and the echoes too. */
	assert_int_equal(sep->stats.dgrams_recv, cep->stats.dgrams_sent);
	for (size_t i = 0; i < NSIZES; i++) {
		assert_int_equal(m->at_srv.n[i], 10);
		assert_int_equal(m->at_cli.n[i], 10);
	}
	assert_int_equal(m->at_srv.bad, 0);
	assert_int_equal(m->at_cli.bad, 0);
	assert_int_equal(m->server_flows, 1);
	struct wn_engine_stats st;
	wn_engine_stats(m->q.cli, &st);
	assert_int_equal(st.dgrams_drop_queue, 0);
	assert_int_equal(st.dgrams_drop_size, 0);
	sim_free(m);
}

static void t_sizes_1200(void **state)
{
	(void)state;
	sizes_over(1200);
}

static void t_sizes_1452(void **state)
{
	(void)state;
	sizes_over(1452);
}

static const struct wn_simlink_cfg lossy = {
    .delay_ms = 20,
    .jitter_ms = 3,
    .loss = 0.05,
    .dup = 0.01,
    .reorder = 0.02,
    .reorder_ms = 6,
    .rate_Bps = 2000000,
    .queue_bytes = 256 * 1024,
    .seed = 21,
};

/* Loss: datagrams keep flowing (lost ones are not sent again and hold
 * nothing up) while a stream is carried to its end. */
static void t_loss(void **state)
{
	(void)state;
	struct sim *m = sim_new(&lossy, 1452);
	m->s_bytes = 1u << 20;
	struct wn_endpoint target;
	const char *why;
	assert_int_equal(wn_hostport_parse("10.9.0.1:80", 11, 0, &target, &why),
	                 0);
	struct wn_stream_handler h = {
	    .ctx = m, .on_writable = cs_writable, .on_closed = cs_closed};
	m->cs = wn_tunnel_open_stream(wn_engine_tunnel(m->q.cli), &target, &h);
	assert_non_null(m->cs);
	s_pump(m);
	unsigned sent = 0;
	uint64_t late0 = 0;
	for (unsigned r = 0; r < 400; r++) {
		send_sized(m, sizes[r % NSIZES]);
		sent++;
		if (r == 300)
			late0 = m->at_cli.total;
		run_for(m, 10);
	}
	run_for(m, 2000);
	while (!m->s_closed && m->q.now < START_NS + 120000 * NS_PER_MS)
		step(m, 0);
	print_message("loss: %llu of %u at the server, %llu echoed back\n",
	              (unsigned long long)m->at_srv.total, sent,
	              (unsigned long long)m->at_cli.total);
	assert_int_equal(m->at_srv.bad + m->at_cli.bad, 0);
	/* One way, a fragment is lost with 5%: most arrive, not all. */
	assert_true(m->at_srv.total >= sent * 80 / 100);
	assert_true(m->at_srv.total < sent);
	assert_true(m->at_cli.total >= sent * 65 / 100);
	/* The last hundred kept coming (nothing stalled). */
	assert_true(m->at_cli.total - late0 >= 60);
	struct wn_simlink_stats ls;
	wn_simlink_get_stats(m->q.c2s, &ls);
	assert_true(ls.lost > 0);
	assert_true(m->s_closed);
	assert_int_equal(m->s_err, WN_STREAM_OK);
	assert_int_equal(m->s_got, m->s_bytes);
	assert_int_equal(m->s_bad, 0);
	sim_free(m);
}

static const struct wn_simlink_cfg narrow = {
    .delay_ms = 15,
    .rate_Bps = 1000000, /* 8 Mbit/s */
    .queue_bytes = 128 * 1024,
    .seed = 9,
};

/* A flood of datagrams far above the link's rate, with a stream
 * transfer at the same time: the stream completes intact, in a time
 * that shows it got its share; datagrams still get through; what the
 * queue had to drop is counted. */
static void t_flood(void **state)
{
	(void)state;
	struct sim *m = sim_new(&narrow, 1452);
	m->s_bytes = 4u << 20; /* ~4.2 s alone at 8 Mbit/s */
	struct wn_endpoint target;
	const char *why;
	assert_int_equal(wn_hostport_parse("10.9.0.1:80", 11, 0, &target, &why),
	                 0);
	struct wn_stream_handler h = {
	    .ctx = m, .on_writable = cs_writable, .on_closed = cs_closed};
	m->cs = wn_tunnel_open_stream(wn_engine_tunnel(m->q.cli), &target, &h);
	assert_non_null(m->cs);
	s_pump(m);
	uint64_t t0 = m->q.now;
	unsigned sent = 0;
	/* 64 datagrams of 1200 bytes every millisecond: ~600 Mbit/s. */
	while (!m->s_closed && m->q.now < t0 + 60000 * NS_PER_MS) {
		for (unsigned k = 0; k < 64 && m->cflow; k++, sent++)
			send_sized(m, 1200);
		run_for(m, 1);
	}
	uint64_t took_ms = (m->q.now - t0) / NS_PER_MS;
	struct wn_engine_stats st;
	wn_engine_stats(m->q.cli, &st);
	print_message("flood: stream done in %llu ms; %u datagrams offered, "
	              "%llu arrived, %llu dropped by the queue\n",
	              (unsigned long long)took_ms, sent,
	              (unsigned long long)m->at_srv.total,
	              (unsigned long long)st.dgrams_drop_queue);
	assert_true(m->s_closed);
	assert_int_equal(m->s_err, WN_STREAM_OK);
	assert_int_equal(m->s_got, m->s_bytes);
	assert_int_equal(m->s_bad, 0);
	/* Half the packets at least are the stream's: well within 4× its
	 * time alone. */
	assert_true(took_ms < 17000);
	/* The datagrams were not starved by the stream either. */
	assert_true(m->at_srv.total > 1000);
	assert_int_equal(m->at_srv.bad, 0);
	assert_true(st.dgrams_drop_queue > 0);
	/* Every datagram offered was sent, dropped by the queue, or is
	 * still queued. */
	struct qconn *cq = only_conn(m->q.cli);
	struct qep *cep = wn__quic_ep(m->q.cli);
	/* A 1200-byte datagram is two messages on a 1200-byte path. */
	unsigned per = wn__qdgram_max(cq) < 1300 ? 2 : 1;
	assert_int_equal(cep->stats.dgrams_sent + st.dgrams_drop_queue +
	                     cq->dg_count,
	                 (uint64_t)sent * per);
	sim_free(m);
}

/* A reconnect: the client's flow, kept, works on the new connection (its
 * target travels again and the server takes it as a new flow). */
static void t_reconnect(void **state)
{
	(void)state;
	struct sim *m = sim_new(&clean, 1452);
	send_sized(m, 1200);
	run_for(m, 200);
	assert_int_equal(m->at_cli.total, 1);
	assert_int_equal(m->server_flows, 1);

	wn__qconn_close(only_conn(m->q.cli), "test: drop the connection");
	settle(m);
	assert_false(wn_engine_is_up(m->q.cli));
	assert_int_equal(wn_tunnel_max_datagram(wn_engine_tunnel(m->q.cli)), 0);
	assert_int_equal(wn_flow_send(m->cflow, (const uint8_t *)"x", 1),
	                 WN_EAGAIN);
	/* The reconnect backoff is a loop timer, in the loop's real time. */
	uint64_t guard = 0;
	while (!wn_engine_is_up(m->q.cli)) {
		if (!step(m, 0))
			uv_run(wn_loop_uv(&m->q.loop), UV_RUN_ONCE);
		assert_true(++guard < 100000);
		assert_true(m->q.now < START_NS + 60000 * NS_PER_MS);
	}
	assert_non_null(m->cflow);
	assert_false(m->cflow_closed);
	for (size_t i = 0; i < NSIZES; i++)
		send_sized(m, sizes[i]);
	run_for(m, 300);
	assert_int_equal(m->server_flows, 2);
	assert_int_equal(m->at_cli.total, 1 + NSIZES);
	assert_int_equal(m->at_cli.bad + m->at_srv.bad, 0);
	sim_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_sizes_1200), cmocka_unit_test(t_sizes_1452),
	    cmocka_unit_test(t_loss),       cmocka_unit_test(t_flood),
	    cmocka_unit_test(t_reconnect),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
