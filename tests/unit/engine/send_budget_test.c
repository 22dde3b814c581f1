/* The send budget end to end, per engine (stream_base.h, "The send
 * budget"): a client opens many streams to fast targets and does not read
 * them. Without a budget the server holds every stream's full send buffer
 * (streams x stream_send_limit); with it, the bytes the server holds stay
 * under the session budget plus the per-stream floor. Then a stream the
 * client does read still moves while the others hold the budget (no
 * stream waits for ever on others), and once the client reads everything,
 * every stream's data arrives intact and in order. The same the other way:
 * the client's fast sockets to targets the server does not read.
 *
 * What the server holds is measured from outside the engine: the bytes
 * the fast targets wrote into their streams minus the bytes the client
 * received (delivered to its handler, consumed or not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/stream_base.h"
#include "engine/tunnel.h"
#include "support/enginepair.h"
#include "util/err.h"

/* Enough streams, each with a small send limit, that their send buffers
 * together are well over the default session budget (32 MiB). */
#define NSTREAMS 40
#define SEND_LIMIT (2u << 20)
#define PER_STREAM ((5u << 20) / 2) /* more than a send buffer */
#define SESSION_BUDGET (32u << 20)  /* the engines' default */
#define FLOOR (64u << 10)
#define CLIENT_WINDOW (256u << 10)
/* Beyond the budget: one reserve of overshoot, and what the engine holds
 * outside the streams' send buffers (bounded per session on its own):
 * KCP's send window of segments, QUIC's congestion window in flight. */
#define SLACK (4u << 20)
#define MAX_STREAMS 64 /* the most any test opens */

static uint8_t pat(uint64_t off)
{
	return (uint8_t)(off * 131 + (off >> 11));
}

/* ---- the server's fast target ---------------------------------------- */

struct target {
	struct wn_stream *s;
	uint64_t wrote;
	int fin;
};

struct fx {
	struct wn_enginepair p;
	struct target tg[MAX_STREAMS];
	int ntg;
	uint64_t srv_wrote;
};

static struct fx *FX;
static uint64_t TG_BYTES; /* what each target writes */

/* Writes the pattern as a relay reads a socket that always has data:
 * reserve, fill, commit, until the stream is full (on_writable resumes). */
static void tg_fill(struct target *t)
{
	while (t->s && t->wrote < TG_BYTES) {
		uint8_t *p;
		ssize_t n = wn_stream_reserve(t->s, &p);
		if (n <= 0)
			return;
		if ((uint64_t)n > TG_BYTES - t->wrote)
			n = (ssize_t)(TG_BYTES - t->wrote);
		for (ssize_t i = 0; i < n; i++)
			p[i] = pat(t->wrote + (uint64_t)i);
		assert_int_equal(wn_stream_commit(t->s, (size_t)n), 0);
		t->wrote += (uint64_t)n;
		FX->srv_wrote += (uint64_t)n;
	}
	if (t->s && t->wrote == TG_BYTES && !t->fin) {
		t->fin = 1;
		wn_stream_shutdown(t->s);
	}
}

static void tg_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                    size_t len)
{
	(void)ctx;
	(void)d;
	wn_stream_consumed(s, len);
}

static void tg_eof(void *ctx, struct wn_stream *s)
{
	(void)ctx;
	(void)s;
}

static void tg_writable(void *ctx, struct wn_stream *s)
{
	(void)s;
	tg_fill(ctx);
}

static void tg_closed(void *ctx, struct wn_stream *s, int err)
{
	struct target *t = ctx;
	(void)s;
	(void)err;
	t->s = NULL;
}

static void on_stream(void *ctx, struct wn_tunnel *tn, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	(void)ctx;
	(void)tn;
	(void)target;
	assert_true(FX->ntg < MAX_STREAMS);
	struct target *t = &FX->tg[FX->ntg++];
	t->s = s;
	struct wn_stream_handler h = {t, tg_data, tg_eof, tg_writable,
	                              tg_closed};
	wn_stream_set_handler(s, &h);
	tg_fill(t);
}

/* ---- the client: reads, but consumes only when told ----------------- */

struct reader {
	struct wn_stream *s;
	uint64_t got, consumed;
	int reading; /* consume at once */
	int eof, closed, close_err, bad;
};

static struct reader RD[MAX_STREAMS];

static void rd_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                    size_t len)
{
	struct reader *r = ctx;
	for (size_t i = 0; i < len; i++)
		if (d[i] != pat(r->got + i))
			r->bad = 1;
	r->got += len;
	if (r->reading) {
		wn_stream_consumed(s, (size_t)(r->got - r->consumed));
		r->consumed = r->got;
	}
}

static void rd_eof(void *ctx, struct wn_stream *s)
{
	struct reader *r = ctx;
	r->eof = 1;
	wn_stream_shutdown(s);
}

static void rd_writable(void *ctx, struct wn_stream *s)
{
	(void)ctx;
	(void)s;
}

static void rd_closed(void *ctx, struct wn_stream *s, int err)
{
	struct reader *r = ctx;
	(void)s;
	r->s = NULL;
	r->closed = 1;
	r->close_err = err;
}

static void rd_open(struct fx *fx, struct reader *r, int reading)
{
	struct wn_endpoint ep;
	const char *why;
	struct wn_stream_handler h = {r, rd_data, rd_eof, rd_writable,
	                              rd_closed};
	assert_int_equal(wn_endpoint_parse("target.example:80", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &ep, &why),
	                 0);
	memset(r, 0, sizeof(*r));
	r->reading = reading;
	r->s = wn_tunnel_open_stream(fx->p.tunnel, &ep, &h);
	assert_non_null(r->s);
}

static void rd_start_reading(struct reader *r)
{
	r->reading = 1;
	if (r->s && r->got > r->consumed) {
		wn_stream_consumed(r->s, (size_t)(r->got - r->consumed));
		r->consumed = r->got;
	}
}

static uint64_t client_got(void)
{
	uint64_t sum = 0;
	for (int i = 0; i < MAX_STREAMS; i++)
		sum += RD[i].got;
	return sum;
}

static int all_done(int n)
{
	for (int i = 0; i < n; i++)
		if (!RD[i].closed)
			return 0;
	return 1;
}

/* Runs the loop until what the server holds stops changing, keeping the
 * most it held. */
static uint64_t run_settle(struct fx *fx, uint64_t *held_max)
{
	uint64_t last = UINT64_MAX;
	for (int round = 0; round < 200; round++) {
		wn_enginepair_run_for(&fx->p, 20);
		uint64_t held = fx->srv_wrote - client_got();
		if (held > *held_max)
			*held_max = held;
		if (fx->srv_wrote == last && round > 10)
			break;
		last = fx->srv_wrote;
	}
	return fx->srv_wrote - client_got();
}

static void run_engine(const char *engine)
{
	static struct fx fx;
	uint64_t held_max = 0;

	memset(&fx, 0, sizeof(fx));
	memset(RD, 0, sizeof(RD));
	FX = &fx;
	TG_BYTES = PER_STREAM;
	wn_enginepair_init(&fx.p, engine, 120000);
	fx.p.sconf.stream_send_limit = SEND_LIMIT;
	fx.p.cconf.stream_send_limit = SEND_LIMIT;
	/* The client's windows absorb little of what it does not read. */
	fx.p.cconf.stream_window = CLIENT_WINDOW;
	fx.p.accept.ctx = &fx;
	fx.p.accept.on_stream = on_stream;
	wn_enginepair_start(&fx.p);
	WN_ENGINEPAIR_RUN_UNTIL(&fx.p, fx.p.ups > 0);

	/* Many streams nobody reads: the server must not hold them all. */
	for (int i = 0; i < NSTREAMS; i++)
		rd_open(&fx, &RD[i], 0);
	run_settle(&fx, &held_max);
	print_message("%s: server held at most %llu bytes for %d unread "
	              "streams (send limit %u each)\n",
	              engine, (unsigned long long)held_max, NSTREAMS,
	              SEND_LIMIT);
	assert_true(held_max <= SESSION_BUDGET + NSTREAMS * FLOOR + SLACK);

	/* A stream that is read still moves while the others hold the
	 * budget. Not with QUIC: there the unread streams hold the client's
	 * own connection window too, which stops every stream of the
	 * connection whatever the server does (the client's relays read
	 * their sockets as fast as the sockets take data, so only a stuck
	 * application gets there). */
	if (strcmp(engine, "quic") != 0) {
		rd_open(&fx, &RD[NSTREAMS], 1);
		WN_ENGINEPAIR_RUN_UNTIL(&fx.p, RD[NSTREAMS].closed);
		assert_int_equal(RD[NSTREAMS].close_err, WN_STREAM_OK);
		assert_int_equal(RD[NSTREAMS].got, PER_STREAM);
		assert_false(RD[NSTREAMS].bad);
	}

	/* Once the client reads, everything arrives intact. */
	for (int i = 0; i < NSTREAMS; i++)
		rd_start_reading(&RD[i]);
	WN_ENGINEPAIR_RUN_UNTIL(&fx.p, all_done(NSTREAMS));
	for (int i = 0; i < NSTREAMS; i++) {
		assert_int_equal(RD[i].close_err, WN_STREAM_OK);
		assert_int_equal(RD[i].got, PER_STREAM);
		assert_true(RD[i].eof);
		assert_false(RD[i].bad);
	}
	wn_enginepair_finish(&fx.p);
}

static void t_quic(void **state)
{
	(void)state;
	run_engine("quic");
}

static void t_kcp(void **state)
{
	(void)state;
	run_engine("kcp");
}

/* ---- streams that end with data still queued ---------------------------- */

/* Each client stream is shut down as soon as it is open and never read
 * until told: the server's target writes less than a send buffer and shuts
 * down, so its stream ends (both directions over) while most of its data
 * still waits for the client's window. That data is still the server's
 * to hold: it must stay counted in the session's budget until it leaves
 * the engine's buffers, or a client could make the server hold streams x
 * stream_send_limit through streams that end at once. */
#define ENDED_STREAMS 64
#define ENDED_BYTES (768u << 10) /* under the send limit: the target ends */
#define ENDED_SEND_LIMIT (1u << 20)
#define ENDED_BUDGET (4u << 20)

static struct wn_tunnel *ENDED_TUNNEL; /* the server's session */

static void on_ended_stream(void *ctx, struct wn_tunnel *tn,
                            struct wn_stream *s,
                            const struct wn_endpoint *target)
{
	ENDED_TUNNEL = tn;
	on_stream(ctx, tn, s, target);
}

static void run_ended(const char *engine)
{
	static struct fx fx;
	uint64_t held_max = 0;

	memset(&fx, 0, sizeof(fx));
	memset(RD, 0, sizeof(RD));
	FX = &fx;
	TG_BYTES = ENDED_BYTES;
	ENDED_TUNNEL = NULL;
	wn_enginepair_init(&fx.p, engine, 120000);
	fx.p.sconf.stream_send_limit = ENDED_SEND_LIMIT;
	fx.p.sconf.session_buffer = ENDED_BUDGET;
	fx.p.cconf.stream_window = CLIENT_WINDOW;
	fx.p.accept.ctx = &fx;
	fx.p.accept.on_stream = on_ended_stream;
	wn_enginepair_start(&fx.p);
	WN_ENGINEPAIR_RUN_UNTIL(&fx.p, fx.p.ups > 0);

	for (int i = 0; i < ENDED_STREAMS; i++) {
		rd_open(&fx, &RD[i], 0);
		assert_int_equal(wn_stream_shutdown(RD[i].s), 0);
	}
	run_settle(&fx, &held_max);
	print_message("%s: server held at most %llu bytes for %d streams "
	              "that ended unread (budget %u)\n",
	              engine, (unsigned long long)held_max, ENDED_STREAMS,
	              ENDED_BUDGET);
	assert_non_null(ENDED_TUNNEL);
	assert_true(held_max <= ENDED_BUDGET + ENDED_STREAMS * FLOOR + SLACK);

	/* Once the client reads, every stream's data arrives intact, and
	 * the budget gets all of it back. */
	for (int i = 0; i < ENDED_STREAMS; i++)
		rd_start_reading(&RD[i]);
	WN_ENGINEPAIR_RUN_UNTIL(&fx.p, all_done(ENDED_STREAMS));
	for (int i = 0; i < ENDED_STREAMS; i++) {
		assert_int_equal(RD[i].close_err, WN_STREAM_OK);
		assert_int_equal(RD[i].got, ENDED_BYTES);
		assert_false(RD[i].bad);
	}
	WN_ENGINEPAIR_RUN_UNTIL(&fx.p,
	                        wn_sb_session_buffered(ENDED_TUNNEL) == 0);
	wn_enginepair_finish(&fx.p);
}

static void t_quic_ended(void **state)
{
	(void)state;
	run_ended("quic");
}

static void t_kcp_ended(void **state)
{
	(void)state;
	run_ended("kcp");
}

/* ---- the other direction: the client's fast sockets ------------------ */

/* A client stream fed as the client's relay feeds it from a local socket
 * that always has data; the server's target does not read until told. */
struct writer {
	struct wn_stream *s;
	uint64_t wrote;
	int closed, close_err;
};

struct sink {
	struct wn_stream *s;
	uint64_t got, consumed;
	int eof, bad;
};

static struct writer WR[NSTREAMS];
static struct sink SK[NSTREAMS];
static int NSK, SINK_READING;
static uint64_t CLI_WROTE;

static void wr_fill(struct writer *w)
{
	while (w->s && w->wrote < PER_STREAM) {
		uint8_t *p;
		ssize_t n = wn_stream_reserve(w->s, &p);
		if (n <= 0)
			return;
		if ((uint64_t)n > PER_STREAM - w->wrote)
			n = (ssize_t)(PER_STREAM - w->wrote);
		for (ssize_t i = 0; i < n; i++)
			p[i] = pat(w->wrote + (uint64_t)i);
		assert_int_equal(wn_stream_commit(w->s, (size_t)n), 0);
		w->wrote += (uint64_t)n;
		CLI_WROTE += (uint64_t)n;
	}
	if (w->s && w->wrote == PER_STREAM)
		wn_stream_shutdown(w->s);
}

static void wr_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                    size_t len)
{
	(void)ctx;
	(void)d;
	wn_stream_consumed(s, len);
}

static void wr_eof(void *ctx, struct wn_stream *s)
{
	(void)ctx;
	(void)s;
}

static void wr_writable(void *ctx, struct wn_stream *s)
{
	(void)s;
	wr_fill(ctx);
}

static void wr_closed(void *ctx, struct wn_stream *s, int err)
{
	struct writer *w = ctx;
	(void)s;
	w->s = NULL;
	w->closed = 1;
	w->close_err = err;
}

static void sk_consume(struct sink *k)
{
	if (k->s && k->got > k->consumed) {
		wn_stream_consumed(k->s, (size_t)(k->got - k->consumed));
		k->consumed = k->got;
	}
}

static void sk_data(void *ctx, struct wn_stream *s, const uint8_t *d,
                    size_t len)
{
	struct sink *k = ctx;
	(void)s;
	for (size_t i = 0; i < len; i++)
		if (d[i] != pat(k->got + i))
			k->bad = 1;
	k->got += len;
	if (SINK_READING)
		sk_consume(k);
}

static void sk_eof(void *ctx, struct wn_stream *s)
{
	struct sink *k = ctx;
	k->eof = 1;
	wn_stream_shutdown(s);
}

static void sk_writable(void *ctx, struct wn_stream *s)
{
	(void)ctx;
	(void)s;
}

static void sk_closed(void *ctx, struct wn_stream *s, int err)
{
	struct sink *k = ctx;
	(void)s;
	(void)err;
	k->s = NULL;
}

static void on_sink_stream(void *ctx, struct wn_tunnel *tn, struct wn_stream *s,
                           const struct wn_endpoint *target)
{
	(void)ctx;
	(void)tn;
	(void)target;
	assert_true(NSK < NSTREAMS);
	struct sink *k = &SK[NSK++];
	k->s = s;
	struct wn_stream_handler h = {k, sk_data, sk_eof, sk_writable,
	                              sk_closed};
	wn_stream_set_handler(s, &h);
}

static uint64_t server_got(void)
{
	uint64_t sum = 0;
	for (int i = 0; i < NSK; i++)
		sum += SK[i].got;
	return sum;
}

static void run_upstream(const char *engine)
{
	static struct wn_enginepair p;
	uint64_t held_max = 0, last = UINT64_MAX;

	memset(WR, 0, sizeof(WR));
	memset(SK, 0, sizeof(SK));
	NSK = 0;
	SINK_READING = 0;
	CLI_WROTE = 0;
	wn_enginepair_init(&p, engine, 120000);
	p.sconf.stream_send_limit = SEND_LIMIT;
	p.cconf.stream_send_limit = SEND_LIMIT;
	p.sconf.stream_window = CLIENT_WINDOW;
	p.accept.on_stream = on_sink_stream;
	wn_enginepair_start(&p);
	WN_ENGINEPAIR_RUN_UNTIL(&p, p.ups > 0);

	struct wn_endpoint ep;
	const char *why;
	assert_int_equal(wn_endpoint_parse("target.example:80", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &ep, &why),
	                 0);
	for (int i = 0; i < NSTREAMS; i++) {
		struct wn_stream_handler h = {&WR[i], wr_data, wr_eof,
		                              wr_writable, wr_closed};
		WR[i].s = wn_tunnel_open_stream(p.tunnel, &ep, &h);
		assert_non_null(WR[i].s);
		wr_fill(&WR[i]);
	}
	for (int round = 0; round < 200; round++) {
		wn_enginepair_run_for(&p, 20);
		uint64_t held = CLI_WROTE - server_got();
		if (held > held_max)
			held_max = held;
		if (CLI_WROTE == last && round > 10)
			break;
		last = CLI_WROTE;
	}
	print_message("%s: client held at most %llu bytes for %d streams "
	              "the server does not read\n",
	              engine, (unsigned long long)held_max, NSTREAMS);
	assert_true(held_max <= SESSION_BUDGET + NSTREAMS * FLOOR + SLACK);

	SINK_READING = 1;
	for (int i = 0; i < NSK; i++)
		sk_consume(&SK[i]);
	for (int i = 0; i < NSTREAMS; i++) {
		WN_ENGINEPAIR_RUN_UNTIL(&p, WR[i].closed);
		assert_int_equal(WR[i].close_err, WN_STREAM_OK);
	}
	assert_int_equal(NSK, NSTREAMS);
	for (int i = 0; i < NSK; i++) {
		assert_int_equal(SK[i].got, PER_STREAM);
		assert_true(SK[i].eof);
		assert_false(SK[i].bad);
	}
	wn_enginepair_finish(&p);
}

static void t_quic_upstream(void **state)
{
	(void)state;
	run_upstream("quic");
}

static void t_kcp_upstream(void **state)
{
	(void)state;
	run_upstream("kcp");
}

/* ---- the receive direction: data the server's targets do not take ------ */

/* The client's fast sockets feed streams whose targets on the server read
 * nothing: what the engine has delivered to them and they have not
 * consumed waits in the server's relays. The stream windows alone let a
 * session hold streams x stream_window of it (a client opening many
 * streams to a target it makes slow); the session's budget bounds it as
 * it bounds what the server sends: at most the budget plus a floor per
 * stream, and what is in flight (SLACK). */
#define RECV_BUDGET (4u << 20)

static void run_recv(const char *engine)
{
	static struct wn_enginepair p;
	uint64_t held_max = 0, last = UINT64_MAX;

	memset(WR, 0, sizeof(WR));
	memset(SK, 0, sizeof(SK));
	NSK = 0;
	SINK_READING = 0;
	CLI_WROTE = 0;
	wn_enginepair_init(&p, engine, 120000);
	p.cconf.stream_send_limit = SEND_LIMIT;
	p.sconf.session_buffer = RECV_BUDGET;
	p.accept.on_stream = on_sink_stream;
	wn_enginepair_start(&p);
	WN_ENGINEPAIR_RUN_UNTIL(&p, p.ups > 0);

	struct wn_endpoint ep;
	const char *why;
	assert_int_equal(wn_endpoint_parse("target.example:80", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &ep, &why),
	                 0);
	for (int i = 0; i < NSTREAMS; i++) {
		struct wn_stream_handler h = {&WR[i], wr_data, wr_eof,
		                              wr_writable, wr_closed};
		WR[i].s = wn_tunnel_open_stream(p.tunnel, &ep, &h);
		assert_non_null(WR[i].s);
		wr_fill(&WR[i]);
	}
	/* Until what the targets hold stops growing (the client's writes
	 * stop much earlier, at its own send budget). */
	for (int round = 0, still = 0; round < 1000 && still < 10; round++) {
		wn_enginepair_run_for(&p, 20);
		uint64_t held = server_got(); /* nothing consumed */
		if (held > held_max)
			held_max = held;
		still = held == last ? still + 1 : 0;
		last = held;
	}
	print_message("%s: the server's engine delivered at most %llu bytes "
	              "its %d targets did not take (budget %u)\n",
	              engine, (unsigned long long)held_max, NSTREAMS,
	              RECV_BUDGET);
	assert_true(held_max <= RECV_BUDGET + NSTREAMS * FLOOR + SLACK);

	SINK_READING = 1;
	for (int i = 0; i < NSK; i++)
		sk_consume(&SK[i]);
	for (int i = 0; i < NSTREAMS; i++) {
		WN_ENGINEPAIR_RUN_UNTIL(&p, WR[i].closed);
		assert_int_equal(WR[i].close_err, WN_STREAM_OK);
	}
	assert_int_equal(NSK, NSTREAMS);
	for (int i = 0; i < NSK; i++) {
		assert_int_equal(SK[i].got, PER_STREAM);
		assert_true(SK[i].eof);
		assert_false(SK[i].bad);
	}
	wn_enginepair_finish(&p);
}

static void t_quic_recv(void **state)
{
	(void)state;
	run_recv("quic");
}

static void t_kcp_recv(void **state)
{
	(void)state;
	run_recv("kcp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_quic),          cmocka_unit_test(t_kcp),
	    cmocka_unit_test(t_quic_ended),    cmocka_unit_test(t_kcp_ended),
	    cmocka_unit_test(t_quic_upstream), cmocka_unit_test(t_kcp_upstream),
	    cmocka_unit_test(t_quic_recv),     cmocka_unit_test(t_kcp_recv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
