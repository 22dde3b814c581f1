/* The cap on streams per client key (streams-per-key), end to end through
 * the engine table as the daemon builds the engines, for each engine that
 * knows its clients' keys: the server accepts at most the cap of one key's
 * streams at once, the next is reset with WN_STREAM_LIMIT before the accept
 * handler sees it, and a stream that ends gives its place back. (Several
 * sessions of one key sharing the cap: quic_admit_test.c; the kcp engine
 * holds one session per key.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/tunnel.h"
#include "support/enginepair.h"
#include "util/err.h"

#define CAP 3

struct fx {
	struct wn_enginepair p;
	int accepted;
	struct wn_stream *kept[CAP + 2];
};

/* The client's streams, and how each ended. */
struct cs {
	struct wn_stream *s;
	int closed, err;
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
	struct fx *f = ctx;
	(void)err;
	for (int i = 0; i < CAP + 2; i++)
		if (f->kept[i] == s)
			f->kept[i] = NULL;
}

/* The server holds every stream it is handed, open. */
static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	struct fx *f = ctx;
	(void)t;
	(void)target;
	struct wn_stream_handler h = {
	    .ctx = f, .on_data = srv_data, .on_closed = srv_closed};
	wn_stream_set_handler(s, &h);
	if (f->accepted < CAP + 2)
		f->kept[f->accepted] = s;
	f->accepted++;
}

static void cs_data(void *ctx, struct wn_stream *s, const uint8_t *data,
                    size_t len)
{
	(void)ctx;
	(void)data;
	wn_stream_consumed(s, len);
}

static void cs_closed(void *ctx, struct wn_stream *s, int err)
{
	struct cs *c = ctx;
	(void)s;
	c->closed = 1;
	c->err = err;
	c->s = NULL;
}

static void open_cs(struct fx *f, struct cs *c)
{
	struct wn_endpoint target;
	const char *why;
	assert_int_equal(wn_endpoint_parse("10.99.0.1:80", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, 0, &target, &why),
	                 0);
	struct wn_stream_handler h = {
	    .ctx = c, .on_data = cs_data, .on_closed = cs_closed};
	memset(c, 0, sizeof(*c));
	c->s = wn_tunnel_open_stream(f->p.tunnel, &target, &h);
	assert_non_null(c->s);
	/* A byte after the header, so that the server has the stream. */
	assert_int_equal(wn_stream_write(c->s, (const uint8_t *)"x", 1), 1);
}

static void run_cap(const char *engine)
{
	struct fx f;
	memset(&f, 0, sizeof(f));
	wn_enginepair_init(&f.p, engine, 20000);
	f.p.sconf.streams_per_key = CAP;
	f.p.accept =
	    (struct wn_accept_handler){.ctx = &f, .on_stream = on_stream};
	wn_enginepair_start(&f.p);
	WN_ENGINEPAIR_RUN_UNTIL(&f.p, f.p.ups == 1);
	struct cs c[CAP + 2];
	for (int i = 0; i < CAP; i++)
		open_cs(&f, &c[i]);
	WN_ENGINEPAIR_RUN_UNTIL(&f.p, f.accepted == CAP);
	/* One more of the same key: refused, with the reason. */
	open_cs(&f, &c[CAP]);
	WN_ENGINEPAIR_RUN_UNTIL(&f.p, c[CAP].closed);
	assert_int_equal(c[CAP].err, WN_STREAM_LIMIT);
	assert_int_equal(f.accepted, CAP);
	for (int i = 0; i < CAP; i++)
		assert_false(c[i].closed);
	/* One ends: its place is free again. */
	wn_stream_reset(c[0].s, WN_STREAM_ABORTED);
	c[0].s = NULL;
	WN_ENGINEPAIR_RUN_UNTIL(&f.p, f.kept[0] == NULL);
	open_cs(&f, &c[CAP + 1]);
	WN_ENGINEPAIR_RUN_UNTIL(&f.p, f.accepted == CAP + 1);
	wn_enginepair_run_for(&f.p, 100);
	assert_false(c[CAP + 1].closed);
	wn_enginepair_finish(&f.p);
}

static void test_quic(void **state)
{
	(void)state;
	run_cap("quic");
}

static void test_kcp(void **state)
{
	(void)state;
	run_cap("kcp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_quic),
	    cmocka_unit_test(test_kcp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
