/* What the tcp carrier's tests share (tcp_test.c, tcpgroup_test.c): a loop with a real client and server carrier over
 * loopback, handlers that count what they see, raw sockets that play
 * clients and strangers. Header-only, included by test files only. */
#ifndef WN_TEST_TCPENV_H
#define WN_TEST_TCPENV_H

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

#include "carrier/tcp.h"
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
	/* The handler plays an engine that takes every packet as
	 * authenticated (carrier.h's hint) unless this is set. */
	bool no_auth;
};

struct env {
	struct wn_loop loop;
	struct wn_log log;
	FILE *logf;
	struct wn_identity id;
	struct side srv, cli;
	uint16_t port;
};

static inline void on_recv(void *ctx, struct wn_carrier *c,
                           const struct sockaddr *from, socklen_t fromlen,
                           uint8_t *pkt, size_t len)
{
	struct side *s = ctx;
	(void)pkt;
	if (!s->no_auth)
		wn_carrier_authenticated(c, from, fromlen);
	if (s->npkts < MAXP) {
		s->lens[s->npkts] = len;
		memcpy(&s->from[s->npkts], from, fromlen);
	}
	s->npkts++;
	s->nbytes += len;
}

static inline void on_writable(void *ctx, struct wn_carrier *c)
{
	(void)c;
	((struct side *)ctx)->writables++;
}

static inline void on_state(void *ctx, struct wn_carrier *c,
                            const struct sockaddr *peer,
                            enum wn_carrier_state st, int err)
{
	struct side *s = ctx;
	(void)c;
	if (st == WN_CARRIER_UP) {
		s->ups++;
		if (peer)
			memcpy(&s->last_up, peer, sizeof(struct sockaddr_in6));
	} else {
		s->downs++;
		s->last_down_err = err;
	}
}

static inline struct wn_carrier_handler handler(struct side *s)
{
	struct wn_carrier_handler h = {.ctx = s,
	                               .recv = on_recv,
	                               .writable = on_writable,
	                               .state = on_state};
	return h;
}

static inline int server_open(struct env *e, const struct wn_tcp_opts *o)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(e->port)};
	struct wn_carrier_handler h = handler(&e->srv);
	struct sockaddr_storage ss;
	socklen_t len;
	int rc;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&e->srv, 0, sizeof(e->srv));
	rc = wn_tcp_server_open(&e->loop, &e->log, 0, (struct sockaddr *)&a,
	                        sizeof(a), &e->id, o, &h, &e->srv.c);
	if (rc == 0 && e->port == 0) {
		assert_int_equal(e->srv.c->ops->local_addr(e->srv.c, &ss, &len),
		                 0);
		e->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return rc;
}

static inline void client_open(struct env *e, const struct wn_tcp_opts *o)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(e->port)};
	struct wn_carrier_handler h = handler(&e->cli);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&e->cli, 0, sizeof(e->cli));
	assert_int_equal(wn_tcp_client_open(&e->loop, &e->log, 0,
	                                    (struct sockaddr *)&a, sizeof(a),
	                                    e->id.ed_pk, o, &h, &e->cli.c),
	                 0);
}

static inline int setup(void **state)
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

static inline int teardown(void **state)
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

static inline bool run_until(struct env *e, pred_fn done, void *arg,
                             unsigned ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)ms * 1000000u;

	while (!done(e, arg) && wn_mono_ns() < end)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT), usleep(1000);
	return done(e, arg);
}

static inline void run_for(struct env *e, unsigned ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)ms * 1000000u;

	while (wn_mono_ns() < end)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT), usleep(1000);
}

static inline bool count_at_least(struct env *e, void *arg)
{
	size_t *p = arg;
	(void)e;
	return p[0] >= p[1];
}

/* Waits until *counter >= n. */
static inline bool wait_n(struct env *e, size_t *counter, size_t n, unsigned ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)ms * 1000000u;

	while (*counter < n && wn_mono_ns() < end)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT), usleep(500);
	return *counter >= n;
}

static uint8_t pkt[16384];

static inline int raw_connect(struct env *e)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(e->port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static inline uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A preamble for session sid/secret with counter, then one 5-byte data
 * record. Returns the length. */
static inline size_t make_hello(struct env *e, uint8_t *out, uint8_t sid_byte,
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

static inline void send_all(int fd, const uint8_t *p, size_t n)
{
	assert_int_equal(send(fd, p, n, 0), (ssize_t)n);
}

struct eof_wait {
	int fd;
	bool eof;
};

static inline bool saw_eof(struct env *e, void *arg)
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

static inline bool conns_are(struct env *e, void *arg)
{
	return wn_tcp_server_conns(e->srv.c) == *(size_t *)arg;
}

/* The client's sockets to the server (peer port e->port), up to max. */
static inline size_t client_fds(struct env *e, int *fds, size_t max)
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

static inline size_t log_count(struct env *e, const char *needle)
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

static inline bool group_of(struct env *e, void *arg)
{
	int fds[32];
	return wn_tcp_server_conns(e->srv.c) == *(size_t *)arg &&
	       client_fds(e, fds, 32) == *(size_t *)arg;
}

#endif
