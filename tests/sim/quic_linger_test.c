/* The QUIC engine's lingering streams, two-ended in virtual time
 * (tests/support/quicpair.h): a stream that ends while ngtcp2 still holds
 * unacknowledged data of it must keep that data until ngtcp2 closes the
 * stream (quic_int.h, struct qconn's `lingering`).
 *
 * ngtcp2 keeps pointers into the stream data it sent, not copies, and
 * resends from them. A stream that the peer reset or refused, or that the
 * front end reset itself, ends at once in the stream base, and its send
 * queue used to be freed then; a packet lost around that moment was then
 * written again from freed memory (ASan: writev_stream from the expiry
 * timer). Each run here races resets against retransmission: a lossy,
 * reordering link, streams with more data than is in flight, and resets
 * from either end, by refusal or in mid-stream, in waves. Under ASan the
 * use after free is reported; everywhere, every stream must end with the
 * expected reason, the connection must survive, and no stream may linger
 * once its connection is quiet (lingering data is freed, not leaked).
 * With the fix of ce3c246 reverted, every seed below makes ASan report
 * the use after free, in ngtcp2_conn_writev_stream from the expiry timer.
 *
 * What happens to each stream (enum kind) follows from its index, which
 * travels as its target port, so the server's accept handler knows its
 * part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/addr.h"
#include "engine/quic_int.h"
#include "support/quicpair.h"
#include "util/err.h"

enum kind {
	K_REFUSED,    /* the server resets it in the accept handler */
	K_NO_HANDLER, /* the server sets no handler: the base resets it */
	K_SRV_RESET,  /* the server reads a little, then resets it */
	K_CLI_RESET,  /* the server sends a reply; the client reads a
	                 little of it, then resets it */
	K_CLI_ABORT,  /* the client resets its own stream mid-write */
	K_KINDS,
};

#define WAVES 6
#define PER_WAVE (2 * K_KINDS)
#define NSTREAMS (WAVES * PER_WAVE)
#define BYTES (192u << 10) /* each sender's total: more than in flight */
#define SOME (24u << 10)   /* read before a reset in mid-stream */
#define CHUNK 8192
#define PORT_BASE 2000
#define NS_MS WN_QUICPAIR_NS_PER_MS
#define LIMIT_NS (600ull * 1000 * NS_MS)

static uint8_t pattern(unsigned i, uint64_t off)
{
	return (uint8_t)((off + 1) * 131 + i * 7 + (off >> 9));
}

struct lsim;

/* One end of one stream. */
struct end {
	struct lsim *m;
	struct wn_stream *s;
	unsigned idx;
	enum kind kind;
	int server;
	uint64_t sent, got;
	int closed, err, bad;
};

struct lsim {
	struct wn_quicpair q;
	struct end ce[NSTREAMS], se[NSTREAMS];
	unsigned opened, closed;      /* client streams */
	struct wn_tunnel *srv_tunnel; /* the server's session */
};

static enum kind kind_of(unsigned i)
{
	return (enum kind)(i % K_KINDS);
}

/* Writes the pattern until the stream is full or all is sent; a client
 * aborting its own stream resets it halfway. */
static void pump(struct end *e)
{
	uint8_t buf[CHUNK];
	while (e->s && e->sent < BYTES) {
		if (!e->server && e->kind == K_CLI_ABORT &&
		    e->sent >= BYTES / 2) {
			struct wn_stream *s = e->s;
			wn_stream_reset(s, WN_STREAM_ABORTED);
			return;
		}
		size_t n =
		    BYTES - e->sent < CHUNK ? (size_t)(BYTES - e->sent) : CHUNK;
		for (size_t k = 0; k < n; k++)
			buf[k] = pattern(e->idx, e->sent + k);
		ssize_t w = wn_stream_write(e->s, buf, n);
		assert_true(w >= 0);
		e->sent += (uint64_t)w;
		if ((size_t)w < n)
			return; /* on_writable follows */
	}
	if (e->s && e->sent == BYTES)
		assert_int_equal(wn_stream_shutdown(e->s), 0);
}

static void on_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                    size_t len)
{
	struct end *e = ctx;
	for (size_t k = 0; k < len; k++)
		if (d[k] != pattern(e->idx, e->got + k))
			e->bad = 1;
	e->got += len;
	wn_stream_consumed(s, len);
	if (e->got < SOME)
		return;
	if ((e->server && e->kind == K_SRV_RESET) ||
	    (!e->server && e->kind == K_CLI_RESET))
		wn_stream_reset(s, WN_STREAM_TARGET_RESET);
}

static void on_eof(void *ctx, struct wn_stream *s)
{
	(void)ctx;
	(void)s;
}

static void on_writable(void *ctx, struct wn_stream *s)
{
	(void)s;
	pump(ctx);
}

static void on_closed(void *ctx, struct wn_stream *s, int err)
{
	struct end *e = ctx;
	(void)s;
	e->closed = 1;
	e->err = err;
	e->s = NULL;
	if (!e->server)
		e->m->closed++;
}

static struct wn_stream_handler handler(struct end *e)
{
	struct wn_stream_handler h = {
	    .ctx = e,
	    .on_data = on_data,
	    .on_eof = on_eof,
	    .on_writable = on_writable,
	    .on_closed = on_closed,
	};
	return h;
}

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct lsim *m = ctx;
	m->srv_tunnel = t;
	assert_non_null(target);
	unsigned i = (unsigned)(target->port - PORT_BASE);
	assert_true(i < NSTREAMS);
	struct end *e = &m->se[i];
	assert_null(e->s);
	switch (e->kind) {
	case K_REFUSED:
		wn_stream_reset(s, WN_STREAM_DENIED);
		return;
	case K_NO_HANDLER:
		return;
	default:
		break;
	}
	e->s = s;
	struct wn_stream_handler h = handler(e);
	wn_stream_set_handler(s, &h);
	/* The server's reply: what the client resets in mid-stream. */
	if (e->kind == K_CLI_RESET)
		pump(e);
}

static void open_stream(struct lsim *m, unsigned i)
{
	char t[32];
	struct wn_endpoint target;
	const char *why;
	snprintf(t, sizeof(t), "10.9.0.1:%u", PORT_BASE + i);
	assert_int_equal(wn_hostport_parse(t, strlen(t), 0, &target, &why), 0);
	struct end *e = &m->ce[i];
	struct wn_stream_handler h = handler(e);
	e->s = wn_tunnel_open_stream(wn_engine_tunnel(m->q.cli), &target, &h);
	assert_non_null(e->s);
	m->opened++;
	/* The server's reply streams are the client's to read: the client
	 * sends only a little on them. */
	if (e->kind != K_CLI_RESET)
		pump(e);
}

/* Streams of the client's and the server's connections still lingering,
 * and (in *counted) the bytes the send budget still counts for them. */
static unsigned lingering_counted(struct wn_engine *eng, size_t *counted)
{
	struct qep *ep = wn__quic_ep(eng);
	unsigned n = 0;
	for (struct wn_list *c = ep->conns.next; c != &ep->conns; c = c->next) {
		struct qconn *qc = wn_list_entry(c, struct qconn, link);
		for (struct wn_list *l = qc->lingering.next;
		     l != &qc->lingering; l = l->next) {
			n++;
			if (counted)
				*counted +=
				    wn_list_entry(l, struct qstream, link)
				        ->base.acct;
		}
	}
	return n;
}

static unsigned lingering(struct wn_engine *eng)
{
	return lingering_counted(eng, NULL);
}

struct result {
	unsigned max_lingering; /* the most seen at once, both ends */
	size_t max_counted;     /* the most bytes counted for them */
	uint64_t lost_cli, lost_srv;
};

static void run(const struct wn_simlink_cfg *link, struct result *res)
{
	struct lsim *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	for (unsigned i = 0; i < NSTREAMS; i++) {
		struct end *ends[2] = {&m->ce[i], &m->se[i]};
		for (int k = 0; k < 2; k++) {
			ends[k]->m = m;
			ends[k]->idx = i;
			ends[k]->kind = kind_of(i);
			ends[k]->server = k;
		}
	}
	struct wn_accept_handler ah = {.ctx = m, .on_stream = on_stream};
	wn_quicpair_init(&m->q, link, 1000 * NS_MS, WN_LOG_ERROR, &ah);
	wn_quicpair_connect(&m->q);
	memset(res, 0, sizeof(*res));

	/* Waves of streams, each opened while the last one's resets and
	 * retransmissions are still under way. */
	uint64_t next_wave = m->q.now;
	unsigned wave = 0;
	while (m->closed < NSTREAMS || wave < WAVES) {
		if (wave < WAVES && m->q.now >= next_wave) {
			for (unsigned k = 0; k < PER_WAVE; k++)
				open_stream(m, wave * PER_WAVE + k);
			wave++;
			next_wave = m->q.now + 150 * NS_MS;
		}
		size_t counted = 0;
		unsigned l = lingering_counted(m->q.cli, &counted) +
		             lingering_counted(m->q.srv, &counted);
		if (l > res->max_lingering)
			res->max_lingering = l;
		if (counted > res->max_counted)
			res->max_counted = counted;
		assert_true(wn_quicpair_step(&m->q, 10 * NS_MS));
		assert_true(m->q.now < LIMIT_NS);
	}
	/* Every client stream ended, each as its kind says. */
	for (unsigned i = 0; i < NSTREAMS; i++) {
		struct end *e = &m->ce[i];
		assert_true(e->closed);
		assert_false(e->bad);
		assert_false(m->se[i].bad);
		switch (e->kind) {
		case K_REFUSED:
			assert_int_equal(e->err, WN_STREAM_DENIED);
			break;
		case K_NO_HANDLER:
			assert_int_equal(e->err, WN_STREAM_INTERNAL);
			break;
		case K_SRV_RESET:
		case K_CLI_RESET:
			assert_int_equal(e->err, WN_STREAM_TARGET_RESET);
			break;
		case K_CLI_ABORT:
			assert_int_equal(e->err, WN_STREAM_ABORTED);
			break;
		default:
			fail();
		}
	}
	/* Give ngtcp2 time to finish what it still resends and to close the
	 * streams: nothing lingers on a quiet connection. */
	uint64_t until = m->q.now + 10000 * NS_MS;
	while (m->q.now < until &&
	       lingering(m->q.cli) + lingering(m->q.srv) > 0)
		assert_true(wn_quicpair_step(&m->q, 10 * NS_MS));
	assert_int_equal(lingering(m->q.cli), 0);
	assert_int_equal(lingering(m->q.srv), 0);
	/* What the lingering streams had counted in the send budget came
	 * back with them. */
	assert_non_null(m->srv_tunnel);
	assert_int_equal(wn_sb_session_buffered(wn_engine_tunnel(m->q.cli)), 0);
	assert_int_equal(wn_sb_session_buffered(m->srv_tunnel), 0);
	assert_true(wn_engine_is_up(m->q.cli));
	struct wn_engine_stats st;
	wn_engine_stats(m->q.srv, &st);
	assert_int_equal(st.sessions, 1);
	res->lost_cli = wn__quic_ep(m->q.cli)->stats.stream_pkts_lost;
	res->lost_srv = wn__quic_ep(m->q.srv)->stats.stream_pkts_lost;
	wn_quicpair_free(&m->q);
	free(m);
}

/* Resets race retransmission through heavy loss and reordering, over
 * several seeds: ended streams do linger (the race really happened), both
 * ends resend stream data, and everything ends as it should. */
static void t_resets_race_retransmission(void **state)
{
	(void)state;
	unsigned max_lingering = 0;
	size_t max_counted = 0;
	uint64_t lost_cli = 0, lost_srv = 0;
	for (uint64_t seed = 1; seed <= 6; seed++) {
		struct wn_simlink_cfg link = {
		    .delay_ms = 20,
		    .jitter_ms = 5,
		    .loss = 0.12,
		    .reorder = 0.05,
		    .reorder_ms = 15,
		    .rate_Bps = 2000000,
		    .queue_bytes = 128 * 1024,
		    .seed = seed,
		};
		struct result r;
		run(&link, &r);
		if (r.max_lingering > max_lingering)
			max_lingering = r.max_lingering;
		if (r.max_counted > max_counted)
			max_counted = r.max_counted;
		lost_cli += r.lost_cli;
		lost_srv += r.lost_srv;
	}
	printf("lingering: at most %u streams at once, %zu bytes of theirs "
	       "counted in the send budget; stream packets sent again: "
	       "client %llu, server %llu\n",
	       max_lingering, max_counted, (unsigned long long)lost_cli,
	       (unsigned long long)lost_srv);
	assert_true(max_lingering > 0);
	/* A lingering stream's buffer is memory the peer holds us to: the
	 * send budget counts it until ngtcp2 lets go. */
	assert_true(max_counted > 0);
	assert_true(lost_cli > 0);
	assert_true(lost_srv > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_resets_race_retransmission),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
