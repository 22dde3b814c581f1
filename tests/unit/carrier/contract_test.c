/* carrier.h's contract, checked against every carrier type in the registry
 * (udp, tcp, tls) over loopback, each opened through its table row:
 *   - the table: lookups by scheme and name, the scheme mask, the expected
 *     text naming every type, the caps a type promises are the caps its
 *     carriers have;
 *   - the state contract: a carrier without CONNECTED never calls state()
 *     and takes packets at once; a CONNECTED one starts DOWN (send() drops
 *     with WN_EUNREACH), reports UP once per side before packets flow, and
 *     DOWN after its peer goes away;
 *   - re-entrancy: no handler call from inside an operation (every send
 *     and close here is made with a flag up that every handler checks), a
 *     send() from inside recv() (the server echoes), a close() from inside
 *     recv() in the middle of a batch and from inside state(): no handler
 *     call after, and the memory is freed cleanly (ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carrier/registry.h"
#include "util/err.h"

struct env;

struct side {
	struct env *e;
	struct wn_carrier *c;
	bool closed;  /* closed by the test: handlers must not run */
	size_t npkts; /* packets received */
	size_t ups, downs;
	size_t after_close; /* handler calls after close: must stay 0 */
	struct sockaddr_storage from;
	socklen_t fromlen;
	/* behaviour */
	bool echo;          /* send every packet back from inside recv() */
	size_t close_at;    /* close from inside recv() at this packet */
	bool close_on_down; /* close from inside state(DOWN) */
	int echo_rc;        /* the last echo's send() result */
};

struct env {
	struct wn_loop loop;
	struct wn_log log;
	FILE *logf;
	struct wn_identity id;
	struct side srv, cli;
	int in_op;      /* inside a carrier operation called by the test */
	int violations; /* handler calls from inside an operation */
};

static int op_send(struct side *s, const struct sockaddr *to, socklen_t tolen,
                   const uint8_t *buf, size_t len, size_t seg)
{
	int rc;

	s->e->in_op++;
	rc = wn_carrier_send(s->c, to, tolen, buf, len, seg);
	s->e->in_op--;
	return rc;
}

static void op_close(struct side *s)
{
	s->closed = true;
	s->e->in_op++;
	wn_carrier_close(s->c);
	s->e->in_op--;
}

static bool entered(struct side *s)
{
	if (s->e->in_op)
		s->e->violations++;
	if (s->closed) {
		s->after_close++;
		return false;
	}
	return true;
}

static void h_recv(void *ctx, struct wn_carrier *c, const struct sockaddr *from,
                   socklen_t fromlen, uint8_t *pkt, size_t len)
{
	struct side *s = ctx;
	uint8_t copy[2048];

	assert_ptr_equal(c, s->c);
	if (!entered(s))
		return;
	s->npkts++;
	memcpy(&s->from, from, fromlen);
	s->fromlen = fromlen;
	if (s->close_at && s->npkts == s->close_at) {
		op_close(s);
		return;
	}
	if (s->echo) {
		assert_true(len <= sizeof(copy));
		memcpy(copy, pkt, len); /* pkt must not go to send() */
		s->echo_rc = op_send(s, from, fromlen, copy, len, len);
	}
}

static void h_writable(void *ctx, struct wn_carrier *c)
{
	(void)c;
	entered(ctx);
}

static void h_state(void *ctx, struct wn_carrier *c,
                    const struct sockaddr *peer, enum wn_carrier_state st,
                    int err)
{
	struct side *s = ctx;

	(void)peer;
	(void)err;
	assert_ptr_equal(c, s->c);
	if (!entered(s))
		return;
	if (st == WN_CARRIER_UP) {
		/* UP and DOWN alternate. */
		assert_int_equal(s->ups, s->downs);
		s->ups++;
	} else {
		s->downs++;
		assert_int_equal(s->ups, s->downs);
		if (s->close_on_down)
			op_close(s);
	}
}

static struct wn_carrier_handler handler(struct side *s)
{
	struct wn_carrier_handler h = {
	    .ctx = s, .recv = h_recv, .writable = h_writable, .state = h_state};
	return h;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	uint8_t seed[32];

	assert_non_null(e);
	assert_int_equal(wn_loop_init(&e->loop), 0);
	e->logf = tmpfile();
	wn_log_init(&e->log, WN_LOG_DEBUG, fileno(e->logf));
	memset(seed, 5, sizeof(seed));
	assert_int_equal(wn_identity_from_seed(&e->id, seed), 0);
	e->srv.e = e->cli.e = e;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	if (e->cli.c && !e->cli.closed)
		op_close(&e->cli);
	if (e->srv.c && !e->srv.closed)
		op_close(&e->srv);
	assert_int_equal(wn_loop_close(&e->loop), 0);
	assert_int_equal(e->violations, 0);
	fclose(e->logf);
	free(e);
	return 0;
}

static bool wait_for(struct env *e, const size_t *counter, size_t n,
                     unsigned ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)ms * 1000000u;

	while (*counter < n && wn_mono_ns() < end)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT), usleep(500);
	return *counter >= n;
}

static void run_for(struct env *e, unsigned ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)ms * 1000000u;

	while (wn_mono_ns() < end)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT), usleep(500);
}

/* Opens a server on 127.0.0.1 (any port) and a client to it, both through
 * the type's table row. */
static void open_pair(struct env *e, const struct wn_carrier_type *t)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct wn_carrier_handler sh = handler(&e->srv), ch = handler(&e->cli);
	struct sockaddr_storage ss;
	socklen_t len;
	struct wn_carrier_conf sc = {.id = 1,
	                             .addr = (struct sockaddr *)&a,
	                             .addrlen = sizeof(a),
	                             .ident = &e->id};
	struct wn_carrier_conf cc = {.id = 2, .server_pk = e->id.ed_pk};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(t->open_server(&e->loop, &e->log, &sc, &sh, &e->srv.c),
	                 0);
	/* The real port: udp reports its socket's, the others a virtual
	 * address with the listening port. */
	assert_int_equal(e->srv.c->ops->local_addr(e->srv.c, &ss, &len), 0);
	a.sin_port = ss.ss_family == AF_INET
	                 ? ((struct sockaddr_in *)&ss)->sin_port
	                 : ((struct sockaddr_in6 *)&ss)->sin6_port;
	cc.addr = (struct sockaddr *)&a;
	cc.addrlen = sizeof(a);
	assert_int_equal(t->open_client(&e->loop, &e->log, &cc, &ch, &e->cli.c),
	                 0);
}

static void fill(uint8_t *p, size_t n, uint8_t tag)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(tag + i);
}

/* ---- the table ----------------------------------------------------------- */

static void table(void **state)
{
	const struct wn_carrier_type *t;
	const char *expect = wn_carrier_expect();
	unsigned mask = 0;
	size_t i;

	(void)state;
	for (i = 0; (t = wn_carrier_type_at(i)) != NULL; i++) {
		char scheme[16];

		assert_ptr_equal(wn_carrier_type_find(t->scheme), t);
		assert_ptr_equal(wn_carrier_type_by_name(t->name), t);
		assert_string_equal(wn_scheme_name(t->scheme), t->name);
		snprintf(scheme, sizeof(scheme), "%s://", t->name);
		assert_non_null(strstr(expect, scheme));
		assert_non_null(t->open_client);
		assert_non_null(t->open_server);
		/* DATAGRAM and RELIABLE are exclusive promises. */
		assert_false((t->caps & WN_CARRIER_DATAGRAM) &&
		             (t->caps & WN_CARRIER_RELIABLE));
		mask |= (unsigned)t->scheme;
	}
	assert_int_equal(i, 3);
	assert_int_equal(mask, wn_carrier_schemes());
	assert_int_equal(mask, WN_SCHEME_UDP | WN_SCHEME_TCP | WN_SCHEME_TLS);
	assert_null(wn_carrier_type_find(WN_SCHEME_UNIX));
	assert_null(wn_carrier_type_by_name("tox"));
	assert_false(wn_carrier_starts_up(
	    &(struct wn_carrier){.caps = WN_CARRIER_CONNECTED}));
}

/* ---- state contract and re-entrancy, per type -------------------------- */

static void contract(struct env *e, const char *name)
{
	const struct wn_carrier_type *t = wn_carrier_type_by_name(name);
	struct sockaddr_storage to;
	socklen_t tolen;
	uint8_t buf[5 * 1000];
	bool connected;

	assert_non_null(t);
	open_pair(e, t);
	connected = (t->caps & WN_CARRIER_CONNECTED) != 0;
	assert_int_equal(e->srv.c->caps, t->caps);
	assert_int_equal(e->cli.c->caps, t->caps);
	assert_string_equal(e->srv.c->scheme, t->name);
	assert_string_equal(e->cli.c->scheme, t->name);
	assert_int_equal(wn_carrier_starts_up(e->cli.c), !connected);
	e->srv.echo = true;

	/* The server's address, as the client sends to it. */
	{
		struct sockaddr_storage ss;
		socklen_t len;
		struct sockaddr_in *a = (struct sockaddr_in *)&to;

		assert_int_equal(e->srv.c->ops->local_addr(e->srv.c, &ss, &len),
		                 0);
		memset(&to, 0, sizeof(to));
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = ss.ss_family == AF_INET
		                  ? ((struct sockaddr_in *)&ss)->sin_port
		                  : ((struct sockaddr_in6 *)&ss)->sin6_port;
		tolen = sizeof(*a);
	}
	fill(buf, sizeof(buf), 1);
	if (connected) {
		/* DOWN at open: packets are dropped, as lost. */
		assert_int_equal(op_send(&e->cli, (struct sockaddr *)&to, tolen,
		                         buf, 100, 100),
		                 WN_EUNREACH);
		assert_true(wait_for(e, &e->cli.ups, 1, 5000));
	} else {
		run_for(e, 20);
	}
	/* One batch of five packets; the server echoes each from recv(). */
	assert_int_equal(op_send(&e->cli, (struct sockaddr *)&to, tolen, buf,
	                         sizeof(buf), 1000),
	                 0);
	assert_true(wait_for(e, &e->cli.npkts, 5, 5000));
	assert_int_equal(e->srv.npkts, 5);
	assert_int_equal(e->srv.echo_rc, 0);
	if (connected) {
		assert_int_equal(e->srv.ups, 1);
		assert_int_equal(e->cli.ups, 1);
		assert_int_equal(e->srv.downs + e->cli.downs, 0);
		/* The server names its peer with a virtual address. */
		assert_int_equal(e->srv.from.ss_family, AF_INET6);
		assert_int_equal(
		    ((struct sockaddr_in6 *)&e->srv.from)->sin6_addr.s6_addr[0],
		    0xfd);
	} else {
		assert_int_equal(e->srv.ups + e->srv.downs, 0);
		assert_int_equal(e->cli.ups + e->cli.downs, 0);
	}

	/* The server closes itself from inside recv() at the 7th packet,
	 * the second of a batch of five: nothing more reaches it. */
	e->srv.close_at = 7;
	e->cli.close_on_down = true;
	assert_int_equal(op_send(&e->cli, (struct sockaddr *)&to, tolen, buf,
	                         sizeof(buf), 1000),
	                 0);
	assert_true(wait_for(e, &e->srv.npkts, 7, 5000));
	run_for(e, 100);
	assert_true(e->srv.closed);
	assert_int_equal(e->srv.npkts, 7);
	assert_int_equal(e->srv.after_close, 0);
	assert_int_equal(e->cli.npkts, 6); /* the 6th was echoed */
	if (connected) {
		/* The client's connection dies with the server: DOWN, and the
		 * client closes itself from inside state(). */
		assert_true(wait_for(e, &e->cli.downs, 1, 5000));
		assert_true(e->cli.closed);
		run_for(e, 50);
		assert_int_equal(e->cli.downs, 1);
	}
	assert_int_equal(e->cli.after_close, 0);
	assert_int_equal(e->violations, 0);
}

static void contract_udp(void **state)
{
	contract(*state, "udp");
}

static void contract_tcp(void **state)
{
	contract(*state, "tcp");
}

static void contract_tls(void **state)
{
	contract(*state, "tls");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(table),
	    cmocka_unit_test_setup_teardown(contract_udp, setup, teardown),
	    cmocka_unit_test_setup_teardown(contract_tcp, setup, teardown),
	    cmocka_unit_test_setup_teardown(contract_tls, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
