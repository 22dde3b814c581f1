/* Tests for the tcp carrier's connection groups over loopback: a
 * session's connections on the server (bounded, silent members dropped,
 * spill-over to a sibling), and a client with conns = N (one path while
 * any connection lives, max-conns, rotation one at a time, idle members
 * kept alive). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tcpenv.h"

/* A session's group is bounded: connections that keep coming without the
 * old ones going push out the one heard from longest ago. */
static void test_group_bounded(void **state)
{
	struct env *e = *state;
	uint8_t hello[400];
	int fds[40];

	assert_int_equal(server_open(e, NULL), 0);
	for (size_t i = 0; i < 40; i++) {
		fds[i] = raw_connect(e);
		size_t n = make_hello(e, hello, 0x44, 0x45, i + 1);
		send_all(fds[i], hello, n);
		assert_true(wait_n(e, &e->srv.npkts, i + 1, 5000));
		assert_true(wn_tcp_server_conns(e->srv.c) <= 32);
	}
	assert_int_equal(wn_tcp_server_conns(e->srv.c), 32);
	struct eof_wait w0 = {fds[0], false}, w39 = {fds[39], false};
	assert_true(run_until(e, saw_eof, &w0, 5000));
	assert_false(saw_eof(e, &w39));
	for (size_t i = 0; i < 40; i++)
		close(fds[i]);
}

/* A member that goes silent while a sibling keeps talking is dropped
 * after the stall time; the lone survivor is kept however quiet. */
static void test_silent_member_dropped(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.stall_ms = 600};
	uint8_t hello[400];
	size_t one = 1;

	assert_int_equal(server_open(e, &o), 0);
	int a = raw_connect(e), b = raw_connect(e);
	size_t n = make_hello(e, hello, 0x33, 0x34, 1);
	send_all(a, hello, n);
	n = make_hello(e, hello, 0x33, 0x34, 2);
	send_all(b, hello, n);
	assert_true(wait_n(e, &e->srv.npkts, 2, 5000));
	struct eof_wait wa = {a, false}, wb = {b, false};
	uint64_t end = wn_mono_ns() + 5000000000ull;
	while (!saw_eof(e, &wa) && wn_mono_ns() < end) {
		send_all(b, (const uint8_t *)"\x80\x00", 2); /* b talks */
		run_for(e, 50);
	}
	assert_true(wa.eof);
	assert_true(run_until(e, conns_are, &one, 2000));
	run_for(e, 1500); /* b alone and silent: kept */
	assert_false(saw_eof(e, &wb));
	assert_int_equal(e->srv.downs, 0);
	close(a);
	close(b);
}

/* A connection that falls behind (its peer stops reading) fills up, and
 * the session's batches spill over to a sibling: the engine is refused
 * nothing while a connection of the group has room. */
static void test_spill_over_to_a_sibling(void **state)
{
	struct env *e = *state;
	uint8_t hello[400];
	static uint8_t sink[1 << 16];
	size_t n, sent = 0, got_b = 0;
	int rc = 0;

	assert_int_equal(server_open(e, NULL), 0);
	int a = raw_connect(e), b = raw_connect(e);
	n = make_hello(e, hello, 0x21, 0x22, 1);
	send_all(a, hello, n);
	assert_true(wait_n(e, &e->srv.npkts, 1, 5000));
	n = make_hello(e, hello, 0x21, 0x22, 2);
	send_all(b, hello, n);
	assert_true(wait_n(e, &e->srv.npkts, 2, 5000));
	struct sockaddr *to = (struct sockaddr *)&e->srv.from[0];
	/* a reads nothing; b reads everything. */
	while (got_b < (1u << 20) && sent < (64u << 20)) {
		rc = wn_carrier_send(e->srv.c, to, sizeof(struct sockaddr_in6),
		                     pkt, 14520, 1452);
		assert_int_equal(rc, 0);
		sent += 14520;
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT);
		ssize_t r;
		while ((r = recv(b, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
			got_b += (size_t)r;
	}
	assert_true(got_b >= (1u << 20));
	/* Most went to a first: b took over only once a was loaded. */
	assert_true(sent - got_b >= (256u << 10));
	assert_int_equal(e->srv.downs, 0);
	close(a);
	close(b);
}

/* Four connections of one session, one path for the engines: the client
 * announces up once and keeps one virtual address while any connection
 * lives, however many die and are redialled; the server sees one session
 * address. Only when all die does the path go down and come back new. */
static void test_parallel_group(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.conns = 4};
	struct sockaddr_storage a1, a2;
	socklen_t l1, l2;
	size_t four = 4;
	int fds[8];

	assert_int_equal(server_open(e, NULL), 0);
	client_open(e, &o);
	assert_true(run_until(e, group_of, &four, 5000));
	assert_int_equal(e->cli.ups, 1);
	assert_int_equal(wn_tcp_server_sessions(e->srv.c), 1);
	e->cli.c->ops->local_addr(e->cli.c, &a1, &l1);
	for (int i = 0; i < 50; i++)
		assert_int_equal(
		    wn_carrier_send(e->cli.c, NULL, 0, pkt, 10000, 1000), 0);
	assert_true(wait_n(e, &e->srv.npkts, 500, 5000));
	assert_int_equal(e->srv.ups, 1);
	for (int i = 0; i < 50; i++)
		assert_int_equal(
		    wn_carrier_send(
		        e->srv.c, (struct sockaddr *)&e->srv.from[0],
		        sizeof(struct sockaddr_in6), pkt, 10000, 1000),
		    0);
	assert_true(wait_n(e, &e->cli.npkts, 500, 5000));
	/* Two connections die: redialled, the path unchanged. */
	assert_int_equal(client_fds(e, fds, 8), 4);
	shutdown(fds[0], SHUT_RDWR);
	shutdown(fds[2], SHUT_RDWR);
	run_for(e, 100);
	assert_true(run_until(e, group_of, &four, 5000));
	assert_true(log_count(e, "up (4 up)") >= 2);
	assert_int_equal(e->cli.ups, 1);
	assert_int_equal(e->cli.downs, 0);
	assert_int_equal(e->srv.ups, 1);
	assert_int_equal(e->srv.downs, 0);
	e->cli.c->ops->local_addr(e->cli.c, &a2, &l2);
	assert_memory_equal(&a1, &a2, l1);
	assert_int_equal(wn_carrier_send(e->cli.c, NULL, 0, pkt, 100, 100), 0);
	assert_true(wait_n(e, &e->srv.npkts, 501, 5000));
	assert_memory_equal(&e->srv.from[0], &e->srv.from[MAXP - 1],
	                    sizeof(struct sockaddr_in6));
	/* All die at once: the path goes down, and comes back as a new one. */
	assert_int_equal(client_fds(e, fds, 8), 4);
	for (int i = 0; i < 4; i++)
		shutdown(fds[i], SHUT_RDWR);
	assert_true(wait_n(e, &e->cli.downs, 1, 5000));
	assert_true(wait_n(e, &e->cli.ups, 2, 10000));
	assert_true(run_until(e, group_of, &four, 10000));
	e->cli.c->ops->local_addr(e->cli.c, &a2, &l2);
	assert_memory_not_equal(&a1, &a2, l1);
	assert_int_equal(e->cli.ups, 2);
}

/* max_conns counts each parallel connection: a client that wants more
 * than the server allows keeps what it got, and its extra dials back off
 * without disturbing the path. */
static void test_max_conns_counts_each(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts so = {.max_conns = 2}, co = {.conns = 4};
	size_t two = 2;

	assert_int_equal(server_open(e, &so), 0);
	client_open(e, &co);
	assert_true(wait_n(e, &e->cli.ups, 1, 5000));
	assert_true(run_until(e, conns_are, &two, 5000));
	run_for(e, 1500);
	assert_int_equal(wn_tcp_server_conns(e->srv.c), 2);
	assert_true(log_count(e, "connection limit (2) reached") >= 1);
	assert_int_equal(e->cli.ups, 1);
	assert_int_equal(e->cli.downs, 0);
	assert_int_equal(wn_carrier_send(e->cli.c, NULL, 0, pkt, 100, 100), 0);
	assert_true(wait_n(e, &e->srv.npkts, 1, 5000));
}

/* Rotation replaces connections one at a time: the group never empties,
 * so the engines never see the path go down or change. */
static void test_rotation_one_at_a_time(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.conns = 2, .rotate_after_ms = 400};
	struct sockaddr_storage a1, a2;
	socklen_t l1, l2;
	size_t two = 2, min = 99;

	assert_int_equal(server_open(e, NULL), 0);
	client_open(e, &o);
	assert_true(run_until(e, group_of, &two, 5000));
	e->cli.c->ops->local_addr(e->cli.c, &a1, &l1);
	uint64_t end = wn_mono_ns() + 3000000000ull;
	while (wn_mono_ns() < end) {
		assert_int_equal(
		    wn_carrier_send(e->cli.c, NULL, 0, pkt, 1000, 1000), 0);
		run_for(e, 10);
		size_t n = wn_tcp_server_conns(e->srv.c);
		if (n < min)
			min = n;
	}
	assert_true(log_count(e, ": rotating (age)") >= 4);
	assert_true(min >= 1);
	assert_int_equal(e->cli.ups, 1);
	assert_int_equal(e->cli.downs, 0);
	assert_int_equal(e->srv.ups, 1);
	assert_int_equal(e->srv.downs, 0);
	e->cli.c->ops->local_addr(e->cli.c, &a2, &l2);
	assert_memory_equal(&a1, &a2, l1);
}

/* Idle members stay provably alive: the client pings each, the server
 * answers, so neither the client's stall rule nor the server's silence
 * rule closes a live connection. */
static void test_idle_members_kept(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.conns = 3, .stall_ms = 1600};
	size_t three = 3;

	assert_int_equal(server_open(e, &o), 0);
	client_open(e, &o);
	assert_true(run_until(e, group_of, &three, 5000));
	run_for(e, 4000);
	assert_int_equal(log_count(e, "stalled"), 0);
	assert_int_equal(log_count(e, "silent"), 0);
	assert_int_equal(log_count(e, "up (3 up)"), 1);
	assert_true(group_of(e, &three));
	assert_int_equal(e->cli.downs, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_group_bounded, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_silent_member_dropped, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_spill_over_to_a_sibling, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_parallel_group, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_max_conns_counts_each, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_one_at_a_time, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_idle_members_kept, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
