/* The QUIC engine, two-ended, in virtual time: a client and a server
 * endpoint in one process, their packets carried by simulated links
 * (tests/support/simcarrier.h over simlink.h) with loss, duplication,
 * reordering, jitter and a bottleneck. Tunnel streams carry patterned
 * bytes both ways at once; every byte is checked in order, every stream
 * must end cleanly, and the links' and engine's counters must show that
 * packets were lost and stream data sent again.
 *
 * Time only moves when the test moves it: to the next link delivery or
 * the engines' next deadline (wn__quic_ep_next_expiry), whichever comes
 * first. Nothing sleeps, so tens of seconds of virtual time take little
 * wall time. The randomness that changes timing (the links', and ngtcp2's
 * non-cryptographic choices through wn_quic_opts.rand) is seeded; keys and
 * connection IDs change bytes but not sizes, so a seed always gives the
 * same run: the test runs one twice and compares. */
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

#define NSTREAMS 3
#define NS_PER_MS 1000000ull
#define LIMIT_NS (300ull * 1000 * NS_PER_MS) /* virtual time budget */
#define CHUNK 16384

/* The byte at offset off of stream i in direction dir (0: client to
 * server): a pattern that no shift, swap or stream mix-up matches. */
static uint8_t pattern(unsigned i, unsigned dir, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull +
	             (i * 2 + dir + 1) * 0x632BE59BD9B4E019ull;
	x ^= x >> 29;
	return (uint8_t)(x >> 51);
}

struct sim;

/* One end of one stream: what it sends and what it must receive. */
struct end {
	struct sim *m;
	struct wn_stream *s;
	unsigned idx, dir; /* dir: the direction this end sends in */
	uint64_t sent, got;
	uint64_t bad; /* received bytes that differ from the pattern */
	int shut, eof, closed, err;
};

struct sim {
	struct wn_quicpair q; /* both ends, their links and the clock */
	struct end ce[NSTREAMS], se[NSTREAMS];
	uint64_t bytes; /* per stream and direction */
	unsigned closed;
	/* A fault the test injects into the data path to prove it would see
	 * one: flip the byte at this offset of client stream 0's data as the
	 * server receives it; UINT64_MAX: none. */
	uint64_t corrupt_at;
};

struct outcome {
	uint64_t end_ns;
	struct wn_simlink_stats c2s, s2c;
	uint64_t lost_cli, lost_srv; /* engine: stream packets lost */
	uint64_t bad;
	unsigned clean;
};

static void pump(struct end *e)
{
	uint8_t buf[CHUNK];
	while (e->sent < e->m->bytes) {
		size_t n = e->m->bytes - e->sent < CHUNK
		               ? (size_t)(e->m->bytes - e->sent)
		               : CHUNK;
		for (size_t k = 0; k < n; k++)
			buf[k] = pattern(e->idx, e->dir, e->sent + k);
		ssize_t w = wn_stream_write(e->s, buf, n);
		assert_true(w >= 0);
		e->sent += (uint64_t)w;
		if ((size_t)w < n)
			return; /* on_writable follows */
	}
	if (!e->shut) {
		assert_int_equal(wn_stream_shutdown(e->s), 0);
		e->shut = 1;
	}
}

static void on_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                    size_t len)
{
	struct end *e = ctx;
	unsigned rdir = !e->dir; /* what this end receives */
	for (size_t k = 0; k < len; k++) {
		uint8_t b = d[k];
		if (rdir == 0 && e->idx == 0 && e->got + k == e->m->corrupt_at)
			b ^= 1;
		if (b != pattern(e->idx, rdir, e->got + k))
			e->bad++;
	}
	e->got += len;
	wn_stream_consumed(s, len);
}

static void on_eof(void *ctx, struct wn_stream *s)
{
	struct end *e = ctx;
	(void)s;
	e->eof = 1;
}

static void on_writable(void *ctx, struct wn_stream *s)
{
	struct end *e = ctx;
	(void)s;
	pump(e);
}

static void on_closed(void *ctx, struct wn_stream *s, int err)
{
	struct end *e = ctx;
	(void)s;
	e->closed = 1;
	e->err = err;
	e->s = NULL;
	e->m->closed++;
}

/* Server: the target's port says which stream this is. */
static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct sim *m = ctx;
	(void)t;
	assert_non_null(target);
	unsigned i = (unsigned)(target->port - 1000);
	assert_true(i < NSTREAMS);
	struct end *e = &m->se[i];
	assert_null(e->s);
	e->s = s;
	struct wn_stream_handler h = {
	    .ctx = e,
	    .on_data = on_data,
	    .on_eof = on_eof,
	    .on_writable = on_writable,
	    .on_closed = on_closed,
	};
	wn_stream_set_handler(s, &h);
	pump(e);
}

static void sim_run(const struct wn_simlink_cfg *link, uint64_t bytes,
                    uint64_t corrupt_at, struct outcome *out)
{
	struct sim *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	m->bytes = bytes;
	m->corrupt_at = corrupt_at;
	struct wn_accept_handler ah = {.ctx = m, .on_stream = on_stream};
	wn_quicpair_init(&m->q, link, 1000 * NS_PER_MS, WN_LOG_WARN, &ah);
	wn_quicpair_connect(&m->q);

	/* Streams opened before the connection is up wait for it. */
	for (unsigned i = 0; i < NSTREAMS; i++) {
		char t[32];
		struct wn_endpoint target;
		const char *why;
		snprintf(t, sizeof(t), "10.9.0.1:%u", 1000 + i);
		assert_int_equal(
		    wn_hostport_parse(t, strlen(t), 0, &target, &why), 0);
		struct end *e = &m->ce[i];
		e->m = m;
		e->idx = i;
		e->dir = 0;
		m->se[i].m = m;
		m->se[i].idx = i;
		m->se[i].dir = 1;
		struct wn_stream_handler h = {
		    .ctx = e,
		    .on_data = on_data,
		    .on_eof = on_eof,
		    .on_writable = on_writable,
		    .on_closed = on_closed,
		};
		e->s = wn_tunnel_open_stream(wn_engine_tunnel(m->q.cli),
		                             &target, &h);
		assert_non_null(e->s);
		pump(e);
	}

	wn_quicpair_settle(&m->q);
	while (m->closed < 2 * NSTREAMS) {
		uint64_t t = wn_quicpair_next_event(&m->q);
		assert_true(t != UINT64_MAX); /* something is always due */
		wn_quicpair_advance(&m->q, t);
		assert_true(m->q.now < LIMIT_NS);
	}

	memset(out, 0, sizeof(*out));
	out->end_ns = m->q.now - 1000 * NS_PER_MS;
	for (unsigned i = 0; i < NSTREAMS; i++) {
		struct end *ends[2] = {&m->ce[i], &m->se[i]};
		for (int k = 0; k < 2; k++) {
			struct end *e = ends[k];
			out->bad += e->bad;
			if (e->closed && e->err == WN_STREAM_OK && e->eof &&
			    e->got == bytes && e->sent == bytes)
				out->clean++;
		}
	}
	wn_simlink_get_stats(m->q.c2s, &out->c2s);
	wn_simlink_get_stats(m->q.s2c, &out->s2c);
	out->lost_cli = wn__quic_ep(m->q.cli)->stats.stream_pkts_lost;
	out->lost_srv = wn__quic_ep(m->q.srv)->stats.stream_pkts_lost;
	assert_true(wn_engine_is_up(m->q.cli));
	struct wn_engine_stats st;
	wn_engine_stats(m->q.srv, &st);
	assert_int_equal(st.sessions, 1);

	wn_quicpair_free(&m->q);
	free(m);
}

static const struct wn_simlink_cfg lossy = {
    .delay_ms = 25,
    .jitter_ms = 4,
    .loss = 0.03,
    .dup = 0.005,
    .reorder = 0.02,
    .reorder_ms = 8,
    .rate_Bps = 1000000, /* 8 Mbit/s */
    .queue_bytes = 256 * 1024,
    .seed = 15,
};

static void print(const char *name, const struct outcome *r, uint64_t bytes)
{
	double s = (double)r->end_ns / 1e9;
	printf("%s: %.2f s virtual, %.2f MB/s per direction; of the packets "
	       "sent c2s %llu/%llu lost, %llu queue drops; s2c %llu/%llu "
	       "lost, %llu queue drops; stream packets sent again: client "
	       "%llu, server %llu\n",
	       name, s, (double)bytes * NSTREAMS / s / 1e6,
	       (unsigned long long)r->c2s.lost, (unsigned long long)r->c2s.sent,
	       (unsigned long long)r->c2s.queue_drops,
	       (unsigned long long)r->s2c.lost, (unsigned long long)r->s2c.sent,
	       (unsigned long long)r->s2c.queue_drops,
	       (unsigned long long)r->lost_cli,
	       (unsigned long long)r->lost_srv);
}

/* Two megabytes each way on each of three streams through a few percent
 * loss: every byte arrives, in order, every stream closes cleanly, and the
 * loss really happened on both links and was repaired by both engines. */
static void t_lossy_both_ways(void **state)
{
	(void)state;
	const uint64_t bytes = 2u << 20;
	struct outcome r;
	sim_run(&lossy, bytes, UINT64_MAX, &r);
	print("lossy", &r, bytes);
	assert_int_equal(r.bad, 0);
	assert_int_equal(r.clean, 2 * NSTREAMS);
	assert_true(r.c2s.lost > 0 && r.s2c.lost > 0);
	assert_true(r.c2s.duplicated > 0 && r.s2c.duplicated > 0);
	/* Both senders lost stream data and sent it again. */
	assert_true(r.lost_cli > 0);
	assert_true(r.lost_srv > 0);
	/* The link's delay and rate bound the run from below. */
	assert_true(r.end_ns >
	            bytes * NSTREAMS * 1000000000ull / lossy.rate_Bps);
}

/* The same seed gives the same run: the same virtual time and the same
 * packets sent, lost and delivered. */
static void t_deterministic(void **state)
{
	(void)state;
	const uint64_t bytes = 256u << 10;
	struct outcome a, b;
	sim_run(&lossy, bytes, UINT64_MAX, &a);
	sim_run(&lossy, bytes, UINT64_MAX, &b);
	assert_int_equal(a.clean, 2 * NSTREAMS);
	assert_int_equal(a.end_ns, b.end_ns);
	assert_memory_equal(&a.c2s, &b.c2s, sizeof(a.c2s));
	assert_memory_equal(&a.s2c, &b.s2c, sizeof(a.s2c));
	assert_int_equal(a.lost_cli, b.lost_cli);
	assert_int_equal(a.lost_srv, b.lost_srv);
}

/* The check sees a fault: one flipped bit in a megabyte is one bad byte. */
static void t_detects_corruption(void **state)
{
	(void)state;
	const uint64_t bytes = 1u << 20;
	struct outcome r;
	sim_run(&lossy, bytes, 123457, &r);
	assert_int_equal(r.bad, 1);
	assert_int_equal(r.clean, 2 * NSTREAMS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_lossy_both_ways),
	    cmocka_unit_test(t_deterministic),
	    cmocka_unit_test(t_detects_corruption),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
