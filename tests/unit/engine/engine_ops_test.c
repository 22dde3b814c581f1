/* The engine table (engine/engine_ops.h): lookup by name, capabilities,
 * the client's and the server's operations, each engine's own defaults
 * behind one configuration (read from the engines' private headers), and
 * the tunnel reporting its receive window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/config.h"
#include "engine/engine_ops.h"
#include "engine/kcp_engine_int.h"
#include "engine/quic_int.h"
#include "util/err.h"

static void test_find_by_name(void **state)
{
	(void)state;
	const char *names[] = {"quic", "kcp", "kcptun"};
	for (size_t i = 0; i < 3; i++) {
		const struct wn_engine_type *e = wn_engine_find(names[i]);
		assert_non_null(e);
		assert_string_equal(e->name, names[i]);
		assert_non_null(e->client_new);
		assert_non_null(e->server_new);
	}
	assert_null(wn_engine_find("tcp"));
	assert_null(wn_engine_find(""));
	assert_null(wn_engine_find(NULL));
}

static void test_capabilities(void **state)
{
	(void)state;
	unsigned q = wn_engine_find("quic")->caps;
	unsigned k = wn_engine_find("kcp")->caps;
	unsigned t = wn_engine_find("kcptun")->caps;
	assert_true(q & WN_ENGINE_CAP_DATAGRAM);
	assert_true(k & WN_ENGINE_CAP_DATAGRAM);  /* the unreliable channel */
	assert_false(t & WN_ENGINE_CAP_DATAGRAM); /* kcptun has none */
	assert_true(q & k & WN_ENGINE_CAP_KEYS);
	assert_false(t & WN_ENGINE_CAP_KEYS);
	assert_true(q & k & WN_ENGINE_CAP_TARGETS);
	assert_false(t & WN_ENGINE_CAP_TARGETS);
}

static void test_kcptun_defaults_are_kcptuns(void **state)
{
	(void)state;
	struct wn_kcp_engine_opts k, c, s;
	wn_kcp_engine_opts_default(&k);
	wn_kcptun_opts_default(&c, 0);
	wn_kcptun_opts_default(&s, 1);
	assert_int_equal(c.snd_wnd, 128);
	assert_int_equal(c.rcv_wnd, 512);
	assert_int_equal(s.snd_wnd, 1024);
	assert_int_equal(s.rcv_wnd, 1024);
	assert_int_equal(c.mtu, 1350);
	assert_string_equal(c.mode, "fast");
	assert_int_equal(c.pacing, 0);
	assert_int_equal(c.rto_srtt_pct, 0);
	assert_int_equal(c.stream_window, 2u << 20);
	/* The native profile keeps its own. */
	assert_string_equal(k.mode, "fast3");
	assert_int_equal(k.pacing, 1);
	assert_int_equal(c.idle_timeout_ms, k.idle_timeout_ms);
}

/* The help text states each engine's defaults as the engines have them. */
static void test_help_states_the_engines_defaults(void **state)
{
	(void)state;
	static char buf[32768];
	wn_config_describe(WN_ROLE_CLIENT, buf, sizeof(buf));
	struct wn_kcp_engine_opts k, c, s;
	struct wn_quic_opts q;
	wn_kcp_engine_opts_default(&k);
	wn_kcptun_opts_default(&c, 0);
	wn_kcptun_opts_default(&s, 1);
	wn_quic_opts_default(&q);
	char want[160];
	snprintf(want, sizeof(want),
	         "send window in segments (default %u; kcptun: %u, server "
	         "%u)",
	         k.snd_wnd, c.snd_wnd, s.snd_wnd);
	assert_non_null(strstr(buf, want));
	snprintf(want, sizeof(want),
	         "receive window in segments (default %u; kcptun: %u, server "
	         "%u)",
	         k.rcv_wnd, c.rcv_wnd, s.rcv_wnd);
	assert_non_null(strstr(buf, want));
	snprintf(want, sizeof(want), "kcptun: %u;", c.mtu);
	assert_non_null(strstr(buf, want));
	snprintf(want, sizeof(want), "%s (default; kcptun: %s)", k.mode,
	         c.mode);
	assert_non_null(strstr(buf, want));
	assert_int_equal(q.max_streams, k.max_streams);
	snprintf(want, sizeof(want), "streams per session (default %u)",
	         (unsigned)q.max_streams);
	assert_non_null(strstr(buf, want));
}

static void on_stream_unused(void *ctx, struct wn_tunnel *t,
                             struct wn_stream *s,
                             const struct wn_endpoint *target)
{
	(void)ctx;
	(void)t;
	(void)target;
	wn_stream_reset(s, WN_STREAM_DENIED);
}

/* A client built through the table, its tunnel's receive window. */
static size_t client_window(const char *engine, unsigned mtu)
{
	struct wn_loop loop;
	struct wn_log log;
	struct wn_identity id;
	assert_int_equal(wn_loop_init(&loop), 0);
	wn_log_init(&log, WN_LOG_ERROR, STDERR_FILENO);
	assert_int_equal(wn_identity_generate(&id), 0);
	const struct wn_engine_type *t = wn_engine_find(engine);
	struct wn_engine_conf c = {
	    .loop = &loop,
	    .log = &log,
	    .id = &id,
	    .server_key = id.ed_pk,
	    .mtu = mtu,
	};
	struct wn_engine *e = NULL;
	assert_int_equal(wn_engine_client_new(t, &c, &e), 0);
	/* A client's table has every operation. */
	assert_non_null(e->ops->handler);
	assert_non_null(e->ops->add_path);
	assert_non_null(e->ops->go);
	assert_non_null(e->ops->tunnel);
	assert_non_null(e->ops->close);
	assert_false(wn_engine_is_up(e));
	struct wn_engine_stats st;
	wn_engine_stats(e, &st);
	assert_int_equal(st.sessions_opened, 0);
	size_t w = wn_tunnel_recv_window(wn_engine_tunnel(e));
	wn_engine_close(e);
	wn_loop_run(&loop);
	wn_loop_close(&loop);
	wn_identity_wipe(&id);
	return w;
}

static void test_tunnel_reports_its_receive_window(void **state)
{
	(void)state;
	struct wn_quic_opts q;
	struct wn_kcp_engine_opts k, t;
	wn_quic_opts_default(&q);
	wn_kcp_engine_opts_default(&k);
	wn_kcptun_opts_default(&t, 0);
	assert_int_equal(client_window("quic", 0), q.stream_window_max);
	assert_int_equal(client_window("kcp", 0), k.stream_window);
	assert_int_equal(client_window("kcptun", 0), t.stream_window);
	assert_true(t.stream_window != k.stream_window);
}

static void test_bad_kcptun_cipher_is_refused(void **state)
{
	(void)state;
	struct wn_loop loop;
	struct wn_log log;
	assert_int_equal(wn_loop_init(&loop), 0);
	wn_log_init(&log, WN_LOG_ERROR, STDERR_FILENO);
	struct wn_engine_conf c = {
	    .loop = &loop, .log = &log, .crypt = "rot13"};
	struct wn_engine *e = NULL;
	assert_int_equal(wn_engine_client_new(&wn_kcptun_engine, &c, &e),
	                 WN_EINVAL);
	assert_null(e);
	wn_loop_run(&loop);
	wn_loop_close(&loop);
}

/* A server built through the table: its table has no client operations,
 * and the wrappers answer for them; it is up only with a session. */
static void test_server_operations(void **state)
{
	(void)state;
	const char *names[] = {"quic", "kcp", "kcptun"};
	for (size_t i = 0; i < 3; i++) {
		struct wn_loop loop;
		struct wn_log log;
		struct wn_identity id;
		assert_int_equal(wn_loop_init(&loop), 0);
		wn_log_init(&log, WN_LOG_ERROR, STDERR_FILENO);
		assert_int_equal(wn_identity_generate(&id), 0);
		struct wn_accept_handler ah = {.on_stream = on_stream_unused};
		struct wn_engine_conf c = {
		    .loop = &loop,
		    .log = &log,
		    .id = &id,
		    .clients = &id.ed_pk,
		    .n_clients = 1,
		    .accept = &ah,
		};
		struct wn_engine *e = NULL;
		assert_int_equal(
		    wn_engine_server_new(wn_engine_find(names[i]), &c, &e), 0);
		assert_null(e->ops->add_path);
		assert_null(e->ops->go);
		assert_null(e->ops->tunnel);
		assert_null(wn_engine_tunnel(e));
		assert_int_equal(wn_engine_add_path(e, NULL, NULL, 0),
		                 WN_EINVAL);
		assert_int_equal(wn_engine_go(e), 0);
		assert_false(wn_engine_is_up(e));
		struct wn_engine_stats st;
		wn_engine_stats(e, &st);
		assert_int_equal(st.sessions, 0);
		wn_engine_close(e);
		wn_loop_run(&loop);
		wn_loop_close(&loop);
		wn_identity_wipe(&id);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_find_by_name),
	    cmocka_unit_test(test_capabilities),
	    cmocka_unit_test(test_kcptun_defaults_are_kcptuns),
	    cmocka_unit_test(test_help_states_the_engines_defaults),
	    cmocka_unit_test(test_tunnel_reports_its_receive_window),
	    cmocka_unit_test(test_bad_kcptun_cipher_is_refused),
	    cmocka_unit_test(test_server_operations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
