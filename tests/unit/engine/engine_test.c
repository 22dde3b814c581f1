/* Both engines (QUIC and KCP) end to end in one process: a client and a
 * server engine, built through the engine table, joined by an in-memory
 * carrier (tests/support/enginepair.h over memcarrier.h, optionally lossy),
 * no sockets. Every test runs once per engine, named by the prestate. */
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

#include "support/enginepair.h"
#include "util/err.h"

/* The engine of this run (prestate) with the settings these tests use. */
static void pair_init(struct wn_enginepair *p, void **state)
{
	wn_enginepair_init(p, (const char *)*state, 60000);
	p->sconf.idle_timeout_ms = p->cconf.idle_timeout_ms = 3000;
	p->cconf.keepalive_ms = 1000;
	p->cconf.handshake_timeout_ms = 3000;
}

static int is_kcp(void **state)
{
	return strcmp((const char *)*state, "kcp") == 0;
}

static void server_stats(struct wn_enginepair *p, struct wn_engine_stats *st)
{
	wn_engine_stats(p->srv, st);
}

static void echo_transfer(void **state, size_t len, uint32_t loss,
                          uint32_t reorder)
{
	struct wn_enginepair p;
	pair_init(&p, state);
	p.sc.loss_per_mille = p.cc.loss_per_mille = loss;
	p.sc.reorder_per_mille = p.cc.reorder_per_mille = reorder;
	wn_enginepair_start(&p);
	/* Opened before the handshake: it waits, then goes. */
	struct wn_echo_client c;
	wn_echo_client_open(&c, p.tunnel, "10.9.9.9:7", len);
	WN_ENGINEPAIR_RUN_UNTIL(&p, c.closed);
	assert_int_equal(c.close_err, WN_STREAM_OK);
	assert_true(c.eof);
	assert_int_equal(c.got, len);
	assert_memory_equal(c.echoed, c.payload, len);
	assert_int_equal(p.accepted, 1);
	assert_string_equal(p.target.host, "10.9.9.9");
	assert_int_equal(p.target.port, 7);
	assert_int_equal(p.ups, 1);
	if (loss)
		assert_true(p.sc.dropped + p.cc.dropped > 0);
	if (reorder)
		assert_true(p.sc.reordered + p.cc.reordered > 0);
	wn_echo_client_free(&c);
	wn_enginepair_finish(&p);
}

static void test_echo_small(void **state)
{
	echo_transfer(state, 1000, 0, 0);
}

static void test_echo_8mb(void **state)
{
	echo_transfer(state, 8u << 20, 0, 0);
}

static void test_echo_2mb_with_3pct_loss(void **state)
{
	echo_transfer(state, 2u << 20, 30, 0);
}

static void test_echo_1mb_reordered(void **state)
{
	echo_transfer(state, 1u << 20, 0, 50);
}

static void test_wrong_server_key_refused(void **state)
{
	struct wn_enginepair p;
	pair_init(&p, state);
	struct wn_identity other;
	assert_int_equal(wn_identity_generate(&other), 0);
	p.cconf.server_key = other.ed_pk;
	wn_enginepair_start(&p);
	/* The server cannot tell a prober from a client with the wrong key:
	 * it stays silent (KCP: mac1; QUIC: the proof of the server key in
	 * the Initial's token), so the client never comes up and never sees
	 * the server's key. */
	wn_enginepair_run_for(&p, 2500);
	assert_int_equal(p.ups, 0);
	struct wn_engine_stats st;
	server_stats(&p, &st);
	assert_true(st.pkts_dropped >= 2);
	assert_int_equal(p.sc.sent, 0);
	assert_int_equal(st.sessions, 0);
	assert_false(wn_engine_is_up(p.srv));
	wn_enginepair_finish(&p);
}

static void test_unknown_client_refused(void **state)
{
	struct wn_enginepair p;
	pair_init(&p, state);
	struct wn_identity other;
	assert_int_equal(wn_identity_generate(&other), 0);
	p.sconf.clients = &other.ed_pk;
	wn_enginepair_start(&p);
	if (is_kcp(state)) {
		wn_enginepair_run_for(&p, 1500);
		assert_int_equal(p.ups, 0); /* no answer at all */
	} else {
		WN_ENGINEPAIR_RUN_UNTIL(&p, p.downs > 0);
	}
	struct wn_engine_stats st;
	server_stats(&p, &st);
	assert_int_equal(st.sessions, 0);
	assert_true(st.auth_failures >= 1);
	wn_enginepair_finish(&p);
}

static void test_denied_stream_reset_with_reason(void **state)
{
	struct wn_enginepair p;
	pair_init(&p, state);
	p.deny = 1;
	wn_enginepair_start(&p);
	struct wn_echo_client c;
	wn_echo_client_open(&c, p.tunnel, "unix:/run/x.sock", 10);
	WN_ENGINEPAIR_RUN_UNTIL(&p, c.closed);
	assert_int_equal(c.close_err, WN_STREAM_DENIED);
	assert_string_equal(p.target.path, "/run/x.sock");
	wn_echo_client_free(&c);
	wn_enginepair_finish(&p);
}

static void test_garbage_is_ignored(void **state)
{
	struct wn_enginepair p;
	pair_init(&p, state);
	wn_enginepair_start(&p);
	uint8_t junk[1300];
	for (int i = 0; i < 200; i++) {
		randombytes_buf(junk, sizeof(junk));
		size_t n = 1 + (size_t)(randombytes_uniform(sizeof(junk)));
		wn_carrier_send(&p.cc.base, NULL, 0, junk, n, n);
	}
	/* Then a real transfer still works. */
	struct wn_echo_client c;
	wn_echo_client_open(&c, p.tunnel, "example.org:80", 100000);
	WN_ENGINEPAIR_RUN_UNTIL(&p, c.closed);
	assert_int_equal(c.close_err, WN_STREAM_OK);
	assert_true(wn_echo_client_intact(&c));
	struct wn_engine_stats st;
	server_stats(&p, &st);
	assert_true(st.pkts_dropped >= 150);
	assert_true(wn_engine_is_up(p.srv));
	wn_echo_client_free(&c);
	wn_enginepair_finish(&p);
}

#define BOTH(t)                                       \
	cmocka_unit_test_prestate(t, (void *)"quic"), \
	    cmocka_unit_test_prestate(t, (void *)"kcp")

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_echo_small),
	    BOTH(test_echo_8mb),
	    BOTH(test_echo_2mb_with_3pct_loss),
	    BOTH(test_echo_1mb_reordered),
	    BOTH(test_wrong_server_key_refused),
	    BOTH(test_unknown_client_refused),
	    BOTH(test_denied_stream_reset_with_reason),
	    BOTH(test_garbage_is_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
