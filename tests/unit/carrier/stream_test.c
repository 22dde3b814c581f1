/* Tests for the tcp carrier (client and server) over loopback: packets
 * both ways, preamble checks against forged and replayed preambles,
 * reaping of half-open connections, redial with a new virtual address,
 * and the bounded write queue. Raw sockets play the strangers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "carrier/stream.h"
#include "crypto/key.h"
#include "crypto/preamble.h"
#include "io/loop.h"
#include "util/err.h"
#include "util/log.h"

#define MAXP 64

struct side {
	struct wn_carrier *c;
	size_t npkts, nbytes, ups, downs, writables;
	size_t lens[MAXP];
	struct sockaddr_storage from[MAXP];
	struct sockaddr_storage last_up;
	int last_down_err;
};

struct env {
	struct wn_loop loop;
	struct wn_log log;
	FILE *logf;
	struct wn_identity id;
	struct side srv, cli;
	uint16_t port;
};

static void on_recv(void *ctx, struct wn_carrier *c,
                    const struct sockaddr *from, socklen_t fromlen,
                    uint8_t *pkt, size_t len)
{
	struct side *s = ctx;
	(void)c;
	(void)pkt;
	if (s->npkts < MAXP) {
		s->lens[s->npkts] = len;
		memcpy(&s->from[s->npkts], from, fromlen);
	}
	s->npkts++;
	s->nbytes += len;
}

static void on_writable(void *ctx, struct wn_carrier *c)
{
	(void)c;
	((struct side *)ctx)->writables++;
}

static void on_state(void *ctx, struct wn_carrier *c,
                     const struct sockaddr *peer, int up, int err)
{
	struct side *s = ctx;
	(void)c;
	if (up) {
		s->ups++;
		if (peer)
			memcpy(&s->last_up, peer, sizeof(struct sockaddr_in6));
	} else {
		s->downs++;
		s->last_down_err = err;
	}
}

static struct wn_carrier_handler handler(struct side *s)
{
	struct wn_carrier_handler h = {.ctx = s,
	                               .recv = on_recv,
	                               .writable = on_writable,
	                               .state = on_state};
	return h;
}

static int server_open(struct env *e, const struct wn_stream_opts *o)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(e->port)};
	struct wn_carrier_handler h = handler(&e->srv);
	struct sockaddr_storage ss;
	socklen_t len;
	int rc;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&e->srv, 0, sizeof(e->srv));
	rc = wn_stream_server_open(&e->loop, &e->log, (struct sockaddr *)&a,
	                           sizeof(a), &e->id, o, &h, &e->srv.c);
	if (rc == 0 && e->port == 0) {
		assert_int_equal(e->srv.c->ops->local_addr(e->srv.c, &ss, &len),
		                 0);
		e->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return rc;
}

static void client_open(struct env *e, const struct wn_stream_opts *o)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(e->port)};
	struct wn_carrier_handler h = handler(&e->cli);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&e->cli, 0, sizeof(e->cli));
	assert_int_equal(wn_stream_client_open(&e->loop, &e->log,
	                                       (struct sockaddr *)&a, sizeof(a),
	                                       e->id.ed_pk, o, &h, &e->cli.c),
	                 0);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	uint8_t seed[32];

	assert_non_null(e);
	assert_int_equal(wn_loop_init(&e->loop), 0);
	e->logf = tmpfile();
	wn_log_init(&e->log, WN_LOG_DEBUG, fileno(e->logf));
	memset(seed, 3, sizeof(seed));
	assert_int_equal(wn_identity_from_seed(&e->id, seed), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	if (e->cli.c)
		wn_carrier_close(e->cli.c);
	if (e->srv.c)
		wn_carrier_close(e->srv.c);
	assert_int_equal(wn_loop_close(&e->loop), 0);
	fclose(e->logf);
	free(e);
	return 0;
}

typedef bool (*pred_fn)(struct env *e, void *arg);

static bool run_until(struct env *e, pred_fn done, void *arg, unsigned ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)ms * 1000000u;

	while (!done(e, arg) && wn_mono_ns() < end)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT), usleep(1000);
	return done(e, arg);
}

static void run_for(struct env *e, unsigned ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)ms * 1000000u;

	while (wn_mono_ns() < end)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT), usleep(1000);
}

static bool count_at_least(struct env *e, void *arg)
{
	size_t *p = arg;
	(void)e;
	return p[0] >= p[1];
}

/* Waits until *counter >= n. */
static bool wait_n(struct env *e, size_t *counter, size_t n, unsigned ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)ms * 1000000u;

	while (*counter < n && wn_mono_ns() < end)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT), usleep(500);
	return *counter >= n;
}

static uint8_t pkt[16384];

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
	assert_int_equal(wn_stream_server_sessions(e->srv.c), 1);
	assert_int_equal(wn_stream_server_conns(e->srv.c), 1);
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

/* ---- strangers, forgeries and replays --------------------------------- */

static int raw_connect(struct env *e)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(e->port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A preamble for session sid/secret with counter, then one 5-byte data
 * record. Returns the length. */
static size_t make_hello(struct env *e, uint8_t *out, uint8_t sid_byte,
                         uint8_t secret_byte, uint64_t counter)
{
	struct wn_preamble p;
	uint8_t seed[32], pad[7] = {0};
	int n;

	memset(&p, 0, sizeof(p));
	memset(p.sid, sid_byte, sizeof(p.sid));
	memset(p.secret, secret_byte, sizeof(p.secret));
	p.counter = counter;
	p.timestamp_ms = wall_ms();
	p.pad_len = sizeof(pad);
	randombytes_buf(seed, sizeof(seed));
	n = wn_preamble_seal(&p, e->id.x_pk, seed, pad, out, 400);
	assert_true(n > 0);
	memcpy(out + n, "\x00\x05hello", 7);
	return (size_t)n + 7;
}

static void send_all(int fd, const uint8_t *p, size_t n)
{
	assert_int_equal(send(fd, p, n, 0), (ssize_t)n);
}

struct eof_wait {
	int fd;
	bool eof;
};

static bool saw_eof(struct env *e, void *arg)
{
	struct eof_wait *w = arg;
	char b[256];
	ssize_t n;
	(void)e;
	while ((n = recv(w->fd, b, sizeof(b), MSG_DONTWAIT)) > 0)
		;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
		w->eof = true;
	return w->eof;
}

/* With padding on both sides, every packet still arrives whole: the
 * padding records between batches are skipped. A raw peer sees them. */
static void test_padding(void **state)
{
	struct env *e = *state;
	struct wn_stream_opts o = {.pad_max = 3000};
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
	assert_int_equal(wn_stream_server_conns(e->srv.c), 1);
	assert_int_equal(wn_stream_server_sessions(e->srv.c), 1);
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
	assert_int_equal(wn_stream_server_conns(e->srv.c), 2);
	assert_memory_equal(&e->srv.from[0], &e->srv.from[1],
	                    sizeof(struct sockaddr_in6));
	/* The first connection goes: the session lives on the second, and
	 * its address reaches it ("sessions follow their packets"). */
	close(fd2);
	fd2 = -1;
	uint64_t until = wn_mono_ns() + 5000000000ull;
	while (wn_stream_server_conns(e->srv.c) != 1 && wn_mono_ns() < until)
		run_for(e, 5);
	assert_int_equal(wn_stream_server_conns(e->srv.c), 1);
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
	struct wn_stream_opts o = {.preamble_timeout_ms = 200,
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
	assert_int_equal(wn_stream_server_conns(e->srv.c), 0);
	close(fd1);
	close(fd2);
	close(fd3);
}

/* A peer that does not read: the write queue fills to its limit, send()
 * says WN_EAGAIN, and writable() follows once the peer reads. */
static void test_bounded_queue(void **state)
{
	struct env *e = *state;
	struct wn_stream_opts o = {.queue_limit = 64 * 1024};
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

static bool conns_are(struct env *e, void *arg)
{
	return wn_stream_server_conns(e->srv.c) == *(size_t *)arg;
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
		assert_int_equal(wn_stream_server_sessions(e->srv.c), 1);
	}
	assert_int_equal(e->srv.ups, 1);
	assert_int_equal(e->srv.downs, 0);
	assert_memory_equal(&e->srv.from[0], &e->srv.from[MAXP - 1],
	                    sizeof(struct sockaddr_in6));
	close(prev);
}

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
		assert_true(wn_stream_server_conns(e->srv.c) <= 32);
	}
	assert_int_equal(wn_stream_server_conns(e->srv.c), 32);
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
	struct wn_stream_opts o = {.stall_ms = 600};
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

/* ---- parallel connections (conns = N) --------------------------------- */

/* The client's sockets to the server (peer port e->port), up to max. */
static size_t client_fds(struct env *e, int *fds, size_t max)
{
	size_t n = 0;

	for (int fd = 3; fd < 1024 && n < max; fd++) {
		struct sockaddr_in a;
		socklen_t l = sizeof(a);
		if (getpeername(fd, (struct sockaddr *)&a, &l) == 0 &&
		    a.sin_family == AF_INET && ntohs(a.sin_port) == e->port)
			fds[n++] = fd;
	}
	return n;
}

static size_t log_count(struct env *e, const char *needle)
{
	static char buf[1 << 20];
	size_t n, count = 0;

	fflush(e->logf);
	fseek(e->logf, 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, e->logf);
	buf[n] = '\0';
	for (char *p = buf; (p = strstr(p, needle)) != NULL; p++)
		count++;
	return count;
}

static bool group_of(struct env *e, void *arg)
{
	int fds[32];
	return wn_stream_server_conns(e->srv.c) == *(size_t *)arg &&
	       client_fds(e, fds, 32) == *(size_t *)arg;
}

/* Four connections of one session, one path for the engines: the client
 * announces up once and keeps one virtual address while any connection
 * lives, however many die and are redialled; the server sees one session
 * address. Only when all die does the path go down and come back new. */
static void test_parallel_group(void **state)
{
	struct env *e = *state;
	struct wn_stream_opts o = {.conns = 4};
	struct sockaddr_storage a1, a2;
	socklen_t l1, l2;
	size_t four = 4;
	int fds[8];

	assert_int_equal(server_open(e, NULL), 0);
	client_open(e, &o);
	assert_true(run_until(e, group_of, &four, 5000));
	assert_int_equal(e->cli.ups, 1);
	assert_int_equal(wn_stream_server_sessions(e->srv.c), 1);
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
	struct wn_stream_opts so = {.max_conns = 2}, co = {.conns = 4};
	size_t two = 2;

	assert_int_equal(server_open(e, &so), 0);
	client_open(e, &co);
	assert_true(wait_n(e, &e->cli.ups, 1, 5000));
	assert_true(run_until(e, conns_are, &two, 5000));
	run_for(e, 1500);
	assert_int_equal(wn_stream_server_conns(e->srv.c), 2);
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
	struct wn_stream_opts o = {.conns = 2, .rotate_after_ms = 400};
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
		size_t n = wn_stream_server_conns(e->srv.c);
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
	struct wn_stream_opts o = {.conns = 3, .stall_ms = 1600};
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
	    cmocka_unit_test_setup_teardown(test_group_bounded, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_silent_member_dropped, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_spill_over_to_a_sibling, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_parallel_group, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rotation_one_at_a_time, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_max_conns_counts_each, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_idle_members_kept, setup,
	                                    teardown),
	};
	(void)count_at_least;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
