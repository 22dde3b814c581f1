/* The test engine's datagrams (tests/support/pipetunnel.h), which front-end
 * tests rely on: flows open and carry datagrams both ways through the real
 * flow base, a lost session keeps the client's flows, a tunnel without
 * flows carries none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "support/pipetunnel.h"
#include "util/err.h"

struct side {
	struct wn_flow *f;
	int ndg, closed, err;
	size_t last_len;
	uint8_t last[2048];
	int echo;
};

static void h_dgram(void *ctx, struct wn_flow *f, const uint8_t *p, size_t len)
{
	struct side *s = ctx;
	s->f = f;
	s->ndg++;
	s->last_len = len;
	memcpy(s->last, p, len);
	if (s->echo)
		assert_int_equal(wn_flow_send(f, p, len), 0);
}

static void h_closed(void *ctx, struct wn_flow *f, int err)
{
	struct side *s = ctx;
	(void)f;
	s->closed++;
	s->err = err;
}

static struct side srv[4];
static int nsrv;

static void on_flow(void *ctx, struct wn_tunnel *t, struct wn_flow *f,
                    const struct wn_endpoint *target)
{
	(void)ctx;
	(void)t;
	assert_non_null(target);
	assert_int_equal(target->port, 53);
	struct side *s = &srv[nsrv++];
	memset(s, 0, sizeof(*s));
	s->f = f;
	s->echo = 1;
	struct wn_flow_handler h = {
	    .ctx = s, .on_datagram = h_dgram, .on_flow_closed = h_closed};
	wn_flow_set_handler(f, &h);
}

static void run(struct wn_loop *loop)
{
	for (int i = 0; i < 10; i++)
		uv_run(wn_loop_uv(loop), UV_RUN_NOWAIT);
}

static void test_flows_round_trip_and_survive_a_lost_session(void **state)
{
	(void)state;
	struct wn_loop loop;
	struct wn_pipetunnel *pt;
	struct wn_accept_handler ah = {.on_flow = on_flow};
	struct wn_endpoint ep;
	const char *why;
	uint8_t buf[1500];

	nsrv = 0;
	assert_int_equal(wn_loop_init(&loop), 0);
	assert_int_equal(wn_pipetunnel_new(&loop, NULL, &ah, &pt), 0);
	struct wn_tunnel *t = wn_pipetunnel_client(pt);
	assert_int_equal(wn_tunnel_has_datagrams(t), 1);
	assert_true(wn_tunnel_max_datagram(t) >= 1500);
	assert_int_equal(wn_endpoint_parse("10.0.0.9:53", WN_SCHEME_UDP,
	                                   WN_SCHEME_UDP, 0, &ep, &why),
	                 0);
	struct side c = {0};
	struct wn_flow_handler h = {
	    .ctx = &c, .on_datagram = h_dgram, .on_flow_closed = h_closed};
	struct wn_flow *f = wn_tunnel_open_flow(t, &ep, &h);
	assert_non_null(f);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(wn_flow_send(f, buf, sizeof(buf)), 0);
	/* Nothing arrives from inside the call. */
	assert_int_equal(nsrv, 0);
	run(&loop);
	assert_int_equal(nsrv, 1);
	assert_int_equal(c.ndg, 1);
	assert_int_equal(c.last_len, sizeof(buf));
	assert_memory_equal(c.last, buf, sizeof(buf));
	/* A lost session ends the server's flow; the client's stays and
	 * its target travels again. */
	wn_pipetunnel_lose(pt);
	run(&loop);
	assert_int_equal(srv[0].closed, 1);
	assert_int_equal(srv[0].err, WN_STREAM_SESSION_LOST);
	assert_int_equal(c.closed, 0);
	assert_int_equal(wn_flow_send(f, buf, 10), 0);
	run(&loop);
	assert_int_equal(nsrv, 2);
	assert_int_equal(c.ndg, 2);
	/* Down: nothing fits. */
	wn_pipetunnel_set_up(pt, false);
	assert_int_equal(wn_tunnel_max_datagram(t), 0);
	assert_int_equal(wn_flow_send(f, buf, 10), WN_EAGAIN);
	wn_pipetunnel_set_up(pt, true);
	wn_flow_close(f);
	run(&loop);
	assert_int_equal(srv[1].closed, 1);
	assert_int_equal(srv[1].err, WN_STREAM_OK);
	assert_true(wn_pipetunnel_stats(pt)->flows_accepted == 2);
	wn_pipetunnel_close(pt);
	run(&loop);
	assert_int_equal(wn_loop_close(&loop), 0);
}

static void test_no_flows(void **state)
{
	(void)state;
	struct wn_loop loop;
	struct wn_pipetunnel *pt;
	struct wn_pipetunnel_opts o = {.no_flows = true};
	struct wn_flow_handler h = {0};

	assert_int_equal(wn_loop_init(&loop), 0);
	assert_int_equal(wn_pipetunnel_new(&loop, &o, NULL, &pt), 0);
	struct wn_tunnel *t = wn_pipetunnel_client(pt);
	assert_int_equal(wn_tunnel_has_datagrams(t), 0);
	assert_int_equal(wn_tunnel_max_datagram(t), 0);
	assert_null(wn_tunnel_open_flow(t, NULL, &h));
	wn_pipetunnel_close(pt);
	run(&loop);
	assert_int_equal(wn_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flows_round_trip_and_survive_a_lost_session),
	    cmocka_unit_test(test_no_flows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
