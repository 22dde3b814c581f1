/* Tests for the tcp carrier (client and server) over loopback: packets
 * both ways, preamble checks against forged and replayed preambles,
 * reaping of half-open connections, redial with a new virtual address,
 * and the bounded write queue. Raw sockets play the strangers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tcpenv.h"

/* ---- a real client and server ----------------------------------------- */

static void test_packets_both_ways(void **state)
{
	struct env *e = *state;
	struct sockaddr_storage la, from;
	socklen_t ll;

	assert_int_equal(server_open(e, NULL), 0);
	client_open(e, NULL);
	/* Before the connection is up, packets are lost, as on a link. */
	assert_int_equal(wn_carrier_send(e->cli.c, NULL, 0, pkt, 100, 100),
	                 WN_EUNREACH);
	assert_true(wait_n(e, &e->cli.ups, 1, 5000));
	assert_int_equal(e->cli.c->ops->local_addr(e->cli.c, &la, &ll), 0);
	assert_int_equal(la.ss_family, AF_INET6);
	assert_int_equal(((struct sockaddr_in6 *)&la)->sin6_addr.s6_addr[0],
	                 0xfd);
	/* One batch of 10 packets of 1000 bytes and a short one. */
	assert_int_equal(wn_carrier_send(e->cli.c, NULL, 0, pkt, 10300, 1000),
	                 0);
	assert_true(wait_n(e, &e->srv.npkts, 11, 5000));
	assert_int_equal(e->srv.nbytes, 10300);
	assert_int_equal(e->srv.lens[10], 300);
	assert_int_equal(e->srv.ups, 1);
	assert_int_equal(wn_tcp_server_sessions(e->srv.c), 1);
	assert_int_equal(wn_tcp_server_conns(e->srv.c), 1);
	/* The server answers the virtual address it saw. */
	memcpy(&from, &e->srv.from[0], sizeof(struct sockaddr_in6));
	assert_memory_equal(&from, &e->srv.last_up,
	                    sizeof(struct sockaddr_in6));
	assert_int_equal(wn_carrier_send(e->srv.c, (struct sockaddr *)&from,
	                                 sizeof(struct sockaddr_in6), pkt, 1452,
	                                 1452),
	                 0);
	assert_true(wait_n(e, &e->cli.npkts, 1, 5000));
	assert_int_equal(e->cli.lens[0], 1452);
	assert_int_equal(
	    ntohs(((struct sockaddr_in *)&e->cli.from[0])->sin_port), e->port);
	/* Packets above max_packet are refused, not split. */
	assert_int_equal(wn_carrier_send(e->cli.c, NULL, 0, pkt, 2000, 2000),
	                 WN_ERANGE);
	/* An unknown virtual address reaches nobody. */
	struct sockaddr_in6 nowhere = {.sin6_family = AF_INET6};
	nowhere.sin6_addr.s6_addr[0] = 0xfd;
	assert_int_equal(wn_carrier_send(e->srv.c, (struct sockaddr *)&nowhere,
	                                 sizeof(nowhere), pkt, 10, 10),
	                 WN_EUNREACH);
}

/* The server goes away and comes back on the same port: the client redials
 * with backoff, and its new connection has a new virtual address. */
static void test_redial_new_address(void **state)
{
	struct env *e = *state;
	struct sockaddr_storage a1, a2;
	socklen_t l1, l2;

	assert_int_equal(server_open(e, NULL), 0);
	client_open(e, NULL);
	assert_true(wait_n(e, &e->cli.ups, 1, 5000));
	assert_int_equal(wn_carrier_send(e->cli.c, NULL, 0, pkt, 50, 50), 0);
	assert_true(wait_n(e, &e->srv.npkts, 1, 5000));
	e->cli.c->ops->local_addr(e->cli.c, &a1, &l1);
	wn_carrier_close(e->srv.c);
	e->srv.c = NULL;
	assert_true(wait_n(e, &e->cli.downs, 1, 5000));
	run_for(e, 300); /* a few refused dials */
	assert_int_equal(server_open(e, NULL), 0);
	assert_true(wait_n(e, &e->cli.ups, 2, 10000));
	e->cli.c->ops->local_addr(e->cli.c, &a2, &l2);
	assert_int_equal(l1, l2);
	assert_memory_not_equal(&a1, &a2, l1);
	assert_int_equal(wn_carrier_send(e->cli.c, NULL, 0, pkt, 50, 50), 0);
	assert_true(wait_n(e, &e->srv.npkts, 1, 5000));
}

/* With padding on both sides, every packet still arrives whole: the
 * padding records between batches are skipped. A raw peer sees them. */
static void test_padding(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.pad_max = 3000};
	uint8_t hello[400];
	size_t i, n, raw = 0;
	int fd;

	assert_int_equal(server_open(e, &o), 0);
	client_open(e, &o);
	assert_true(wait_n(e, &e->cli.ups, 1, 5000));
	for (i = 0; i < 20; i++)
		assert_int_equal(
		    wn_carrier_send(e->cli.c, NULL, 0, pkt, 1000 + i, 700), 0);
	assert_true(wait_n(e, &e->srv.npkts, 40, 5000));
	assert_int_equal(e->srv.nbytes, 20 * 1000 + 190);
	for (i = 0; i < 20; i++)
		assert_int_equal(
		    wn_carrier_send(e->srv.c,
		                    (struct sockaddr *)&e->srv.from[0],
		                    sizeof(struct sockaddr_in6), pkt, 500, 500),
		    0);
	assert_true(wait_n(e, &e->cli.npkts, 20, 5000));
	assert_int_equal(e->cli.nbytes, 20 * 500);
	/* On the wire: 20 records of 2 + 500 bytes and 20 padding records
	 * of random length (all 20 empty has probability 3001^-20). */
	fd = raw_connect(e);
	n = make_hello(e, hello, 0x77, 0x77, 1);
	send_all(fd, hello, n);
	assert_true(wait_n(e, &e->srv.npkts, 41, 5000));
	for (i = 0; i < 20; i++)
		assert_int_equal(
		    wn_carrier_send(e->srv.c,
		                    (struct sockaddr *)&e->srv.last_up,
		                    sizeof(struct sockaddr_in6), pkt, 500, 500),
		    0);
	uint64_t end = wn_mono_ns() + 2000000000ull;
	static uint8_t sink[1 << 16];
	while (wn_mono_ns() < end) {
		ssize_t r = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (r > 0)
			raw += (size_t)r;
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT);
	}
	assert_true(raw > 20 * (2 + 500) + 20 * 2);
	assert_true(raw <= 20 * (2 + 500) + 20 * (2 + 3000));
	close(fd);
}

static void test_forged_and_replayed(void **state)
{
	struct env *e = *state;
	uint8_t hello[400], again[400];
	size_t n;
	int fd1, fd2, fd3, fd4, fd5;

	assert_int_equal(server_open(e, NULL), 0);
	/* An HTTP request binds nothing and gets no answer. */
	fd1 = raw_connect(e);
	send_all(fd1,
	         (const uint8_t *)"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	                          "0123456789012345678901234567890123456789"
	                          "0123456789012345678901234567890123456789"
	                          "01234567890123456789",
	         127);
	/* A valid preamble binds a new session; its packet arrives. */
	n = make_hello(e, hello, 0xA1, 0xB1, 5);
	fd2 = raw_connect(e);
	send_all(fd2, hello, n);
	assert_true(wait_n(e, &e->srv.npkts, 1, 5000));
	assert_int_equal(e->srv.lens[0], 5);
	assert_int_equal(e->srv.ups, 1);
	/* The same bytes again (a replay) bind nothing. */
	fd3 = raw_connect(e);
	send_all(fd3, hello, n);
	/* The right session id with a wrong secret binds nothing. */
	n = make_hello(e, again, 0xA1, 0xB2, 6);
	fd4 = raw_connect(e);
	send_all(fd4, again, n);
	run_for(e, 300);
	assert_int_equal(e->srv.npkts, 1);
	assert_int_equal(e->srv.ups, 1);
	assert_int_equal(e->srv.downs, 0);
	assert_int_equal(wn_tcp_server_conns(e->srv.c), 1);
	assert_int_equal(wn_tcp_server_sessions(e->srv.c), 1);
	/* Nobody is answered: strangers are held in silence. */
	struct eof_wait w1 = {fd1, false}, w3 = {fd3, false};
	assert_false(saw_eof(e, &w1));
	assert_false(saw_eof(e, &w3));
	/* The session's next counter with the right secret binds: the
	 * connection joins the session (a client may run several), under
	 * the session's one address. */
	n = make_hello(e, again, 0xA1, 0xB1, 6);
	fd5 = raw_connect(e);
	send_all(fd5, again, n);
	assert_true(wait_n(e, &e->srv.npkts, 2, 5000));
	assert_int_equal(e->srv.ups, 1);
	assert_int_equal(e->srv.downs, 0);
	assert_int_equal(wn_tcp_server_conns(e->srv.c), 2);
	assert_memory_equal(&e->srv.from[0], &e->srv.from[1],
	                    sizeof(struct sockaddr_in6));
	/* The first connection goes: the session lives on the second, and
	 * its address reaches it ("sessions follow their packets"). */
	close(fd2);
	fd2 = -1;
	uint64_t until = wn_mono_ns() + 5000000000ull;
	while (wn_tcp_server_conns(e->srv.c) != 1 && wn_mono_ns() < until)
		run_for(e, 5);
	assert_int_equal(wn_tcp_server_conns(e->srv.c), 1);
	assert_int_equal(e->srv.downs, 0);
	assert_int_equal(
	    wn_carrier_send(e->srv.c, (struct sockaddr *)&e->srv.from[0],
	                    sizeof(struct sockaddr_in6), pkt, 9, 9),
	    0);
	/* It may be preceded by empty padding records (keepalive answers). */
	uint8_t b[64];
	size_t got = 0, at = 0;
	uint64_t end = wn_mono_ns() + 5000000000ull;
	while (wn_mono_ns() < end) {
		run_for(e, 5);
		ssize_t r = recv(fd5, b + got, sizeof(b) - got, MSG_DONTWAIT);
		if (r > 0)
			got += (size_t)r;
		while (got - at >= 2 && b[at] == 0x80 && b[at + 1] == 0)
			at += 2;
		if (got - at >= 11)
			break;
	}
	assert_int_equal(got - at, 11);
	assert_memory_equal(b + at, "\x00\x09", 2);
	/* Strangers are closed after their hold (2 to 6 s). */
	assert_true(run_until(e, saw_eof, &w1, 10000));
	assert_true(run_until(e, saw_eof, &w3, 10000));
	close(fd1);
	close(fd3);
	close(fd4);
	close(fd5);
}

static void test_half_open_reaped(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.preamble_timeout_ms = 200,
	                        .idle_close_ms = 300};
	uint8_t hello[400];
	int fd1, fd2;

	assert_int_equal(server_open(e, &o), 0);
	/* Connected, silent: no preamble ever comes. */
	fd1 = raw_connect(e);
	/* Half a preamble. */
	fd2 = raw_connect(e);
	make_hello(e, hello, 1, 2, 1);
	send_all(fd2, hello, 50);
	struct eof_wait w1 = {fd1, false}, w2 = {fd2, false};
	assert_true(run_until(e, saw_eof, &w1, 5000));
	assert_true(run_until(e, saw_eof, &w2, 5000));
	/* A bound connection that goes silent is closed after idle_close. */
	int fd3 = raw_connect(e);
	size_t n = make_hello(e, hello, 3, 4, 1);
	send_all(fd3, hello, n);
	assert_true(wait_n(e, &e->srv.npkts, 1, 5000));
	struct eof_wait w3 = {fd3, false};
	assert_true(run_until(e, saw_eof, &w3, 5000));
	assert_true(wait_n(e, &e->srv.downs, 1, 5000));
	assert_int_equal(wn_tcp_server_conns(e->srv.c), 0);
	close(fd1);
	close(fd2);
	close(fd3);
}

/* A peer that does not read: the write queue fills to its limit, send()
 * says WN_EAGAIN, and writable() follows once the peer reads. */
static void test_bounded_queue(void **state)
{
	struct env *e = *state;
	struct wn_tcp_opts o = {.queue_limit = 64 * 1024};
	uint8_t hello[400];
	size_t n, sent = 0;
	int fd, rc = 0;

	assert_int_equal(server_open(e, &o), 0);
	fd = raw_connect(e);
	n = make_hello(e, hello, 7, 7, 1);
	send_all(fd, hello, n);
	assert_true(wait_n(e, &e->srv.npkts, 1, 5000));
	struct sockaddr *to = (struct sockaddr *)&e->srv.from[0];
	while (sent < (256u << 20)) {
		rc = wn_carrier_send(e->srv.c, to, sizeof(struct sockaddr_in6),
		                     pkt, 14520, 1452);
		if (rc == WN_EAGAIN)
			break;
		assert_int_equal(rc, 0);
		sent += 14520;
		run_for(e, 0);
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT);
	}
	assert_int_equal(rc, WN_EAGAIN);
	assert_int_equal(e->srv.writables, 0);
	/* The peer reads: the queue drains and the engine hears of it. */
	static char sink[1 << 16];
	uint64_t end = wn_mono_ns() + 10000000000ull;
	while (e->srv.writables == 0 && wn_mono_ns() < end) {
		(void)recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT);
	}
	assert_int_equal(e->srv.writables, 1);
	close(fd);
}

/* Connections of one session churn: each new one comes before the last
 * goes. The server keeps one session, under one address, however many
 * came and went (ASan's leak check covers the memory of the ones that
 * went). */
static void test_churn_stays_bounded(void **state)
{
	struct env *e = *state;
	uint8_t hello[400];
	size_t one = 1;
	int prev = -1;

	assert_int_equal(server_open(e, NULL), 0);
	for (uint64_t i = 1; i <= 100; i++) {
		int fd = raw_connect(e);
		size_t n = make_hello(e, hello, 0x55, 0x66, i);
		send_all(fd, hello, n);
		assert_true(wait_n(e, &e->srv.npkts, (size_t)i, 5000));
		if (prev >= 0)
			close(prev);
		prev = fd;
		assert_true(run_until(e, conns_are, &one, 5000));
		assert_int_equal(wn_tcp_server_sessions(e->srv.c), 1);
	}
	assert_int_equal(e->srv.ups, 1);
	assert_int_equal(e->srv.downs, 0);
	assert_memory_equal(&e->srv.from[0], &e->srv.from[MAXP - 1],
	                    sizeof(struct sockaddr_in6));
	close(prev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_packets_both_ways, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_redial_new_address, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_padding, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forged_and_replayed, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_half_open_reaped, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_bounded_queue, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_churn_stays_bounded, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
