/* The engines give the tcp carrier's server its authentication hint
 * (carrier.h): real QUIC and KCP engines over a real tcp carrier on
 * loopback, with an auth timeout far shorter than the test, keep their one
 * carrier connection: the server never closes it as unauthenticated. An
 * engine that forgot the hint would see its connection closed once the
 * timeout passed, and redial. Each engine runs once (cmocka prestate). */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "carrier/tcp.h"
#include "engine/engine_ops.h"
#include "util/err.h"

#define AUTH_MS 400

/* The server engine's handler, wrapped to count the carrier's reports. */
struct wrap {
	struct wn_carrier_handler inner;
	size_t ups, downs;
};

static void w_recv(void *ctx, struct wn_carrier *c, const struct sockaddr *from,
                   socklen_t fromlen, uint8_t *pkt, size_t len)
{
	struct wrap *w = ctx;
	w->inner.recv(w->inner.ctx, c, from, fromlen, pkt, len);
}

static void w_writable(void *ctx, struct wn_carrier *c)
{
	struct wrap *w = ctx;
	if (w->inner.writable)
		w->inner.writable(w->inner.ctx, c);
}

static void w_state(void *ctx, struct wn_carrier *c,
                    const struct sockaddr *peer, enum wn_carrier_state st,
                    int err)
{
	struct wrap *w = ctx;
	if (st == WN_CARRIER_UP)
		w->ups++;
	else
		w->downs++;
	if (w->inner.state)
		w->inner.state(w->inner.ctx, c, peer, st, err);
}

static void on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                      const struct wn_endpoint *target)
{
	(void)ctx;
	(void)t;
	(void)target;
	wn_stream_reset(s, WN_STREAM_DENIED);
}

static void run_ms(struct wn_loop *loop, unsigned ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)ms * 1000000u;
	while (wn_mono_ns() < end)
		uv_run(wn_loop_uv(loop), UV_RUN_NOWAIT), usleep(1000);
}

static void test_engine_keeps_its_connection(void **state)
{
	const char *name = *state;
	const struct wn_engine_type *t = wn_engine_find(name);
	struct wn_identity sid, cid;
	uint8_t seed[32];
	struct wn_loop loop;
	struct wn_log log;
	FILE *logf = tmpfile();
	struct wn_accept_handler ah = {.on_stream = on_stream};
	struct wn_engine *seng = NULL, *ceng = NULL;
	struct wn_carrier *scar = NULL, *ccar = NULL;
	struct wrap w = {0};
	struct wn_tcp_opts so = {.preamble_timeout_ms = AUTH_MS,
	                         .auth_timeout_ms = AUTH_MS};
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct sockaddr_storage ss;
	socklen_t sl;

	assert_non_null(t);
	assert_non_null(logf);
	assert_int_equal(wn_loop_init(&loop), 0);
	wn_log_init(&log, WN_LOG_DEBUG, fileno(logf));
	memset(seed, 1, sizeof(seed));
	assert_int_equal(wn_identity_from_seed(&sid, seed), 0);
	memset(seed, 2, sizeof(seed));
	assert_int_equal(wn_identity_from_seed(&cid, seed), 0);

	struct wn_engine_conf sc = {.loop = &loop,
	                            .log = &log,
	                            .id = &sid,
	                            .clients =
	                                (const uint8_t(*)[WN_KEY_LEN])cid.ed_pk,
	                            .n_clients = 1,
	                            .accept = &ah};
	assert_int_equal(wn_engine_server_new(t, &sc, &seng), 0);
	w.inner = wn_engine_handler(seng);
	struct wn_carrier_handler wh = {.ctx = &w,
	                                .recv = w_recv,
	                                .writable = w_writable,
	                                .state = w_state};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(wn_tcp_server_open(&loop, &log, 1,
	                                    (struct sockaddr *)&a, sizeof(a),
	                                    &sid, &so, &wh, &scar),
	                 0);
	assert_int_equal(scar->ops->local_addr(scar, &ss, &sl), 0);
	a.sin_port = ((struct sockaddr_in6 *)&ss)->sin6_port;

	struct wn_engine_conf cc = {
	    .loop = &loop, .log = &log, .id = &cid, .server_key = sid.ed_pk};
	assert_int_equal(wn_engine_client_new(t, &cc, &ceng), 0);
	struct wn_carrier_handler ch = wn_engine_handler(ceng);
	assert_int_equal(wn_tcp_client_open(&loop, &log, 1,
	                                    (struct sockaddr *)&a, sizeof(a),
	                                    sid.ed_pk, NULL, &ch, &ccar),
	                 0);
	assert_int_equal(
	    wn_engine_add_path(ceng, ccar, (struct sockaddr *)&a, sizeof(a)),
	    0);
	assert_int_equal(wn_engine_go(ceng), 0);

	uint64_t end = wn_mono_ns() + 5000000000ull;
	while (!wn_engine_is_up(ceng) && wn_mono_ns() < end)
		run_ms(&loop, 5);
	assert_true(wn_engine_is_up(ceng));
	/* Several auth timeouts later: the same one connection. */
	run_ms(&loop, 4 * AUTH_MS);
	assert_true(wn_engine_is_up(ceng));
	assert_int_equal(w.ups, 1);
	assert_int_equal(w.downs, 0);
	assert_int_equal(wn_tcp_server_conns(scar), 1);

	wn_engine_close(ceng);
	wn_engine_close(seng);
	run_ms(&loop, 50);
	wn_carrier_close(ccar);
	wn_carrier_close(scar);
	run_ms(&loop, 20);
	assert_int_equal(wn_loop_close(&loop), 0);
	fclose(logf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_prestate(test_engine_keeps_its_connection,
	                              (void *)"quic"),
	    cmocka_unit_test_prestate(test_engine_keeps_its_connection,
	                              (void *)"kcp"),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
