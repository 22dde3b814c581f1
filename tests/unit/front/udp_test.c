/* Tests for the udp front end and the UDP dialer over the pipetunnel
 * (which carries flows on the real flow base): datagrams of every size up
 * to the tunnel's maximum arrive whole and the maximum + 1 is dropped and
 * counted; one flow per source address with replies to that address; the
 * flow cap evicting the one idle longest; idle reaping on both sides; a
 * target the server's udp:// rules do not allow getting nothing; no
 * datagram front end on a tunnel without datagrams.
 *
 *   app sockets -> udp front -> pipetunnel -> dialer/udpdial -> echo target
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "front/dialer.h"
#include "front/udp.h"
#include "front/udpdial.h"
#include "support/netpeer.h"
#include "support/pipetunnel.h"
#include "util/err.h"

/* A UDP echo target on loopback, counting what it got. */
struct echo {
	int fd;
	uv_poll_t poll;
	struct sockaddr_in addr;
	uint64_t got;
	size_t last_len;
	uint16_t ports[8]; /* distinct source ports seen, up to 8 */
	unsigned nports;
};

static void on_echo(uv_poll_t *p, int status, int events)
{
	struct echo *e = p->data;
	uint8_t buf[65536];
	struct sockaddr_storage from;
	socklen_t fl;
	ssize_t n;

	(void)status;
	(void)events;
	for (;;) {
		fl = sizeof(from);
		n = recvfrom(e->fd, buf, sizeof(buf), 0,
		             (struct sockaddr *)&from, &fl);
		if (n < 0)
			break;
		e->got++;
		e->last_len = (size_t)n;
		{
			uint16_t port =
			    ntohs(((struct sockaddr_in *)&from)->sin_port);
			unsigned i;
			for (i = 0; i < e->nports && e->ports[i] != port; i++)
				;
			if (i == e->nports && e->nports < 8)
				e->ports[e->nports++] = port;
		}
		(void)sendto(e->fd, buf, (size_t)n, 0, (struct sockaddr *)&from,
		             fl);
	}
}

static void echo_open(struct echo *e, struct wn_loop *loop)
{
	socklen_t sl = sizeof(e->addr);

	memset(e, 0, sizeof(*e));
	e->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(e->fd >= 0);
	e->addr.sin_family = AF_INET;
	e->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(e->fd, (struct sockaddr *)&e->addr, sl), 0);
	assert_int_equal(getsockname(e->fd, (struct sockaddr *)&e->addr, &sl),
	                 0);
	assert_int_equal(uv_poll_init_socket(wn_loop_uv(loop), &e->poll, e->fd),
	                 0);
	e->poll.data = e;
	assert_int_equal(uv_poll_start(&e->poll, UV_READABLE, on_echo), 0);
}

static void echo_close(struct echo *e)
{
	uv_close((uv_handle_t *)&e->poll, NULL);
}

struct t {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_pipetunnel *pt;
	struct wn_allow_rule rules[4];
	size_t n_rules;
	struct wn_dialer *dialer;
	struct wn_udp_front *front;
	struct sockaddr_storage front_addr;
	struct echo echo;
};

static void t_init(struct t *t, const struct wn_pipetunnel_opts *po)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(wn_loop_init(&t->loop), 0);
	wn_log_init(&t->log, getenv("WN_TEST_LOG") ? WN_LOG_DEBUG : WN_LOG_WARN,
	            2);
	assert_int_equal(wn_pipetunnel_new(&t->loop, po, NULL, &t->pt), 0);
	echo_open(&t->echo, &t->loop);
}

static void t_rule(struct t *t, const char *fmt)
{
	char text[128];
	const char *why;

	snprintf(text, sizeof(text), fmt, ntohs(t->echo.addr.sin_port));
	assert_int_equal(wn_allow_rule_parse(text, &t->rules[t->n_rules], &why),
	                 0);
	t->n_rules++;
}

/* The server (udp rules only, idle_ms) and a udp forward to the echo. */
static unsigned t_conns;      /* the server's udp-connections for t_start */
static unsigned t_evict_rate; /* the forward's evict_rate for t_start */
static unsigned t_fec;        /* the forward's fec = t_fec/3 for t_start */

static void t_start(struct t *t, uint32_t idle_ms, unsigned max_flows,
                    uint16_t target_port)
{
	struct wn_dialer_opts d = {.udp_conns = t_conns};
	struct wn_udp_front_opts o = {0};
	const char *why;
	char tgt[64];

	d.udp_allow = t->rules;
	d.n_udp_allow = t->n_rules;
	d.udp_idle_ms = idle_ms;
	assert_int_equal(wn_dialer_new(&t->loop, &t->log, &d, &t->dialer), 0);
	wn_pipetunnel_set_server(t->pt, wn_dialer_handler(t->dialer));
	o.name = "u";
	assert_int_equal(wn_endpoint_parse("127.0.0.1:0", WN_SCHEME_UDP,
	                                   WN_SCHEME_UDP, WN_EP_PORT_ZERO_OK,
	                                   &o.listen, &why),
	                 0);
	snprintf(tgt, sizeof(tgt), "127.0.0.1:%u",
	         target_port ? target_port : ntohs(t->echo.addr.sin_port));
	assert_int_equal(wn_endpoint_parse(tgt, WN_SCHEME_UDP, WN_SCHEME_UDP, 0,
	                                   &o.target, &why),
	                 0);
	o.idle_ms = idle_ms;
	o.max_flows = max_flows;
	o.evict_rate = t_evict_rate;
	o.fec_data = t_fec;
	o.fec_parity = t_fec ? 3 : 0;
	assert_int_equal(wn_udp_front_open(&t->loop, &t->log,
	                                   wn_pipetunnel_client(t->pt), &o,
	                                   &t->front),
	                 0);
	wn_udp_front_sockname(t->front, &t->front_addr);
}

static void t_finish(struct t *t)
{
	if (t->front)
		wn_udp_front_close(t->front);
	if (t->dialer)
		wn_dialer_close(t->dialer);
	wn_pipetunnel_close(t->pt);
	echo_close(&t->echo);
	close(t->echo.fd);
	wn_np_run_for(&t->loop, 50);
	assert_int_equal(wn_loop_close(&t->loop), 0);
}

/* A socket of an application on host 127.0.0.HOST (all of 127/8 is
 * loopback). */
static int app_socket_on(unsigned host)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr =
	                            htonl((INADDR_LOOPBACK & ~0xffu) | host)};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static int app_socket(void)
{
	return app_socket_on(1);
}

static void app_send(struct t *t, int fd, const uint8_t *buf, size_t len)
{
	assert_int_equal(sendto(fd, buf, len, 0,
	                        (struct sockaddr *)&t->front_addr,
	                        sizeof(struct sockaddr_in)),
	                 (ssize_t)len);
}

struct wait_recv {
	int fd;
	uint8_t buf[8192];
	ssize_t n;
};

static bool got_reply(void *arg)
{
	struct wait_recv *w = arg;

	w->n = recv(w->fd, w->buf, sizeof(w->buf), MSG_DONTWAIT);
	return w->n >= 0;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static void test_sizes_intact_and_max_plus_one_dropped(void **state)
{
	struct t t;
	struct wn_udp_front_stats st;
	static struct wait_recv w;
	uint8_t out[4096];
	size_t max, sizes[5];
	int fd;

	(void)state;
	t_init(&t, NULL);
	t_rule(&t, "udp://127.0.0.1:%u");
	t_start(&t, 0, 0, 0);
	max = wn_tunnel_max_datagram(wn_pipetunnel_client(t.pt));
	/* The pipetunnel's 1150-byte messages, two fragments at most. */
	assert_true(max >= 1500);
	sizes[0] = 1;
	sizes[1] = 1200;
	sizes[2] = 1472;
	sizes[3] = 1500;
	sizes[4] = max;
	fd = app_socket();
	w.fd = fd;
	for (unsigned i = 0; i < 5; i++) {
		fill(out, sizes[i], i + 1);
		app_send(&t, fd, out, sizes[i]);
		assert_true(wn_np_run_until(&t.loop, got_reply, &w, 3000));
		assert_int_equal(w.n, (ssize_t)sizes[i]);
		assert_memory_equal(w.buf, out, sizes[i]);
	}
	/* One more byte than the tunnel carries: dropped, counted, and
	 * nothing reaches the target. */
	fill(out, max + 1, 9);
	app_send(&t, fd, out, max + 1);
	wn_np_run_for(&t.loop, 100);
	assert_false(got_reply(&w));
	assert_int_equal(t.echo.got, 5);
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.drop_size, 1);
	assert_int_equal(st.dgrams_up, 5);
	assert_int_equal(st.dgrams_down, 5);
	assert_int_equal(st.flows, 1);
	assert_int_equal(st.flows_opened, 1);
	close(fd);
	t_finish(&t);
}

static void test_cap_evicts_oldest_and_idle_reaps(void **state)
{
	enum { N = 20, CAP = 8 };
	struct t t;
	struct wn_udp_front_stats st;
	static struct wait_recv w;
	int fds[N];
	uint8_t b[16];

	(void)state;
	t_init(&t, NULL);
	t_rule(&t, "udp://127.0.0.1:%u");
	t_start(&t, 1000, CAP, 0);
	for (int i = 0; i < N; i++) {
		fds[i] = app_socket();
		fill(b, sizeof(b), (unsigned)i);
		app_send(&t, fds[i], b, sizeof(b));
		/* Each source's reply comes back to that source. */
		w.fd = fds[i];
		assert_true(wn_np_run_until(&t.loop, got_reply, &w, 3000));
		assert_int_equal(w.n, sizeof(b));
		assert_memory_equal(w.buf, b, sizeof(b));
		wn_udp_front_stats(t.front, &st);
		assert_true(st.flows <= CAP);
	}
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.flows, CAP);
	assert_int_equal(st.flows_opened, N);
	assert_int_equal(st.flows_evicted, N - CAP);
	/* The oldest were evicted: the first source opens a new flow, the
	 * last one reuses its own. */
	app_send(&t, fds[N - 1], b, sizeof(b));
	w.fd = fds[N - 1];
	assert_true(wn_np_run_until(&t.loop, got_reply, &w, 3000));
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.flows_opened, N);
	app_send(&t, fds[0], b, sizeof(b));
	w.fd = fds[0];
	assert_true(wn_np_run_until(&t.loop, got_reply, &w, 3000));
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.flows_opened, N + 1);
	/* Silent for udp-idle (plus a reap period): all gone, on both
	 * sides. */
	wn_np_run_for(&t.loop, 1500);
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.flows, 0);
	assert_int_equal(st.flows_reaped, CAP);
	assert_int_equal(wn_udpdial_get_stats(wn_dialer_udp(t.dialer))->flows,
	                 0);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	t_finish(&t);
}

/* One exchange on fd: a datagram out, its echo back. */
static void exchange(struct t *t, int fd, unsigned seed)
{
	static struct wait_recv w;
	uint8_t b[24];

	fill(b, sizeof(b), seed);
	app_send(t, fd, b, sizeof(b));
	w.fd = fd;
	assert_true(wn_np_run_until(&t->loop, got_reply, &w, 3000));
	assert_int_equal(w.n, sizeof(b));
	assert_memory_equal(w.buf, b, sizeof(b));
}

/* A flood of one-shot source ports from another host, many times the
 * cap: the flow of a host holding one flow is never the one evicted, so
 * it keeps its flow (no new flow opens for it) and its answers. */
static void test_flood_from_another_host_keeps_a_flow(void **state)
{
	enum { CAP = 8, FLOOD = 40 };
	struct t t;
	struct wn_udp_front_stats st;
	int probe, fds[FLOOD];

	(void)state;
	t_init(&t, NULL);
	t_rule(&t, "udp://127.0.0.1:%u");
	t_start(&t, 30000, CAP, 0);
	probe = app_socket_on(1);
	exchange(&t, probe, 1);
	for (int i = 0; i < FLOOD; i++) {
		fds[i] = app_socket_on(2);
		exchange(&t, fds[i], 100 + (unsigned)i);
	}
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.flows, CAP);
	assert_int_equal(st.flows_opened, 1 + FLOOD);
	assert_int_equal(st.flows_evicted, 1 + FLOOD - CAP);
	/* The probe's flow is the one idle longest, and still it stays. */
	exchange(&t, probe, 2);
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.flows_opened, 1 + FLOOD);
	assert_int_equal(st.drop_full, 0);
	for (int i = 0; i < FLOOD; i++)
		close(fds[i]);
	close(probe);
	t_finish(&t);
}

/* The same from the probe's own host: an established flow (its source
 * sent again after a reply) in use is never evicted by new sources,
 * which push out only each other (one-shot requests are not
 * established). */
static void test_flood_keeps_established_flows(void **state)
{
	enum { CAP = 8, FLOOD = 40 };
	struct t t;
	struct wn_udp_front_stats st;
	int probe, fds[FLOOD];

	(void)state;
	t_init(&t, NULL);
	t_rule(&t, "udp://127.0.0.1:%u");
	t_start(&t, 30000, CAP, 0);
	probe = app_socket();
	exchange(&t, probe, 1);
	exchange(&t, probe, 2);
	for (int i = 0; i < FLOOD; i++) {
		fds[i] = app_socket();
		exchange(&t, fds[i], 100 + (unsigned)i);
	}
	exchange(&t, probe, 3);
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.flows_opened, 1 + FLOOD);
	assert_int_equal(st.flows_evicted, 1 + FLOOD - CAP);
	assert_int_equal(st.drop_full, 0);
	for (int i = 0; i < FLOOD; i++)
		close(fds[i]);
	close(probe);
	t_finish(&t);
}

/* A table full of established flows in use takes no newcomer: its
 * datagrams are dropped and counted, and never reach the target, until
 * the flows have been silent a while. */
static void test_full_of_flows_in_use_drops_newcomers(void **state)
{
	enum { CAP = 4 };
	struct t t;
	struct wn_udp_front_stats st;
	int fds[CAP], late;
	uint8_t b[8] = {7};
	uint64_t got;

	(void)state;
	t_init(&t, NULL);
	t_rule(&t, "udp://127.0.0.1:%u");
	t_start(&t, 1000, CAP, 0);
	for (int i = 0; i < CAP; i++) {
		fds[i] = app_socket();
		exchange(&t, fds[i], (unsigned)i);
		exchange(&t, fds[i], 10 + (unsigned)i);
	}
	late = app_socket();
	got = t.echo.got;
	app_send(&t, late, b, sizeof(b));
	app_send(&t, late, b, sizeof(b));
	wn_np_run_for(&t.loop, 100);
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.drop_full, 2);
	assert_int_equal(st.flows_evicted, 0);
	assert_int_equal(st.flows, CAP);
	assert_int_equal(t.echo.got, got);
	/* Silent past the protection (udp-idle here): room again. */
	wn_np_run_for(&t.loop, 1100);
	exchange(&t, late, 99);
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.drop_full, 2);
	for (int i = 0; i < CAP; i++)
		close(fds[i]);
	close(late);
	t_finish(&t);
}

/* Evictions are rate-limited: a burst of new sources beyond the bucket
 * is dropped and counted (never reaching the target) until it refills. */
static void test_evictions_are_rate_limited(void **state)
{
	enum { CAP = 4, RATE = 5, N = 12 };
	struct t t;
	struct wn_udp_front_stats st;
	int fds[N];
	uint8_t b[8] = {3};

	(void)state;
	t_init(&t, NULL);
	t_rule(&t, "udp://127.0.0.1:%u");
	t_evict_rate = RATE;
	t_start(&t, 30000, CAP, 0);
	t_evict_rate = 0;
	for (int i = 0; i < N; i++) {
		fds[i] = app_socket();
		app_send(&t, fds[i], b, sizeof(b));
	}
	wn_np_run_for(&t.loop, 100);
	wn_udp_front_stats(t.front, &st);
	/* CAP flows, RATE replaced at once (and at most one more refilled
	 * in the 100 ms); the rest dropped here. */
	assert_true(st.flows_evicted >= RATE && st.flows_evicted <= RATE + 1);
	assert_int_equal(st.drop_full, N - CAP - st.flows_evicted);
	assert_int_equal(st.flows_opened, CAP + st.flows_evicted);
	/* A second later the bucket is full again. */
	wn_np_run_for(&t.loop, 1000);
	exchange(&t, fds[N - 1], 5);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	t_finish(&t);
}

static void test_disallowed_target_gets_nothing(void **state)
{
	struct t t;
	struct wn_udp_front_stats st;
	static struct wait_recv w;
	uint8_t b[32] = {1, 2, 3};
	const struct wn_udpdial_stats *ds;
	int fd;

	(void)state;
	t_init(&t, NULL);
	/* A stream rule for the very target and a udp rule for another
	 * port: neither allows this flow. */
	t_rule(&t, "udp://127.0.0.1:1");
	t_start(&t, 0, 0, 0);
	fd = app_socket();
	w.fd = fd;
	app_send(&t, fd, b, sizeof(b));
	wn_np_run_for(&t.loop, 200);
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.flows_denied, 1);
	/* Further datagrams from the refused source stay on the client. */
	app_send(&t, fd, b, sizeof(b));
	app_send(&t, fd, b, sizeof(b));
	wn_np_run_for(&t.loop, 100);
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.drop_policy, 2);
	assert_int_equal(st.flows_opened, 1);
	assert_int_equal(t.echo.got, 0);
	assert_false(got_reply(&w));
	ds = wn_udpdial_get_stats(wn_dialer_udp(t.dialer));
	assert_int_equal(ds->flows_denied, 1);
	assert_int_equal(ds->dgrams_out, 0);
	close(fd);
	t_finish(&t);
}

static void test_stream_rule_never_allows_udp(void **state)
{
	struct t t;
	struct wn_udp_front_stats st;
	struct wn_dialer_opts d = {0};
	struct wn_udp_front_opts o = {0};
	const char *why;
	char tgt[64];
	uint8_t b[8] = {0};
	int fd;

	(void)state;
	t_init(&t, NULL);
	t_rule(&t, "127.0.0.1:%u");
	/* The stream rule, even handed to the UDP dialer (as a mixed list
	 * would be), never allows the flow: the rule says streams. */
	d.allow = t.rules;
	d.n_allow = 1;
	d.udp_allow = t.rules;
	d.n_udp_allow = 1;
	assert_int_equal(wn_dialer_new(&t.loop, &t.log, &d, &t.dialer), 0);
	wn_pipetunnel_set_server(t.pt, wn_dialer_handler(t.dialer));
	assert_int_equal(wn_endpoint_parse("127.0.0.1:0", WN_SCHEME_UDP,
	                                   WN_SCHEME_UDP, WN_EP_PORT_ZERO_OK,
	                                   &o.listen, &why),
	                 0);
	snprintf(tgt, sizeof(tgt), "127.0.0.1:%u", ntohs(t.echo.addr.sin_port));
	assert_int_equal(wn_endpoint_parse(tgt, WN_SCHEME_UDP, WN_SCHEME_UDP, 0,
	                                   &o.target, &why),
	                 0);
	assert_int_equal(wn_udp_front_open(&t.loop, &t.log,
	                                   wn_pipetunnel_client(t.pt), &o,
	                                   &t.front),
	                 0);
	wn_udp_front_sockname(t.front, &t.front_addr);
	fd = app_socket();
	app_send(&t, fd, b, sizeof(b));
	wn_np_run_for(&t.loop, 200);
	wn_udp_front_stats(t.front, &st);
	assert_int_equal(st.flows_denied, 1);
	assert_int_equal(t.echo.got, 0);
	close(fd);
	t_finish(&t);
}

static void test_udp_connections_round_robin(void **state)
{
	struct t t;
	static struct wait_recv w;
	uint8_t b[100];
	int fd;

	(void)state;
	t_init(&t, NULL);
	t_rule(&t, "udp://127.0.0.1:%u");
	t_conns = 3;
	t_start(&t, 0, 0, 0);
	t_conns = 0;
	fd = app_socket();
	w.fd = fd;
	for (unsigned i = 0; i < 6; i++) {
		fill(b, sizeof(b), i);
		app_send(&t, fd, b, sizeof(b));
		/* Replies on every socket come back on the one flow. */
		assert_true(wn_np_run_until(&t.loop, got_reply, &w, 3000));
		assert_memory_equal(w.buf, b, sizeof(b));
	}
	/* One flow, three sockets toward the target, used in turn. */
	assert_int_equal(t.echo.got, 6);
	assert_int_equal(t.echo.nports, 3);
	close(fd);
	t_finish(&t);
}

/* 200 datagrams in bursts of ten through a tunnel that loses every ninth
 * message each way: with fec 10/3 every one comes back (rebuilt both
 * ways, counted by the forward); without, about one in five is lost. */
static unsigned fec_echoes(unsigned fec, struct wn_udp_front_stats *st)
{
	struct wn_pipetunnel_opts po = {.dgram_drop_every = 9};
	struct t t;
	uint8_t b[600], r[2048];
	unsigned back = 0;
	int fd;

	t_init(&t, &po);
	t_rule(&t, "udp://127.0.0.1:%u");
	t_fec = fec;
	t_start(&t, 0, 0, 0);
	t_fec = 0;
	fd = app_socket();
	for (unsigned i = 0; i < 200; i++) {
		fill(b, sizeof(b), i);
		app_send(&t, fd, b, sizeof(b));
		if (i % 10 != 9)
			continue;
		/* Past the grouping time: the parity has gone too. */
		wn_np_run_for(&t.loop, 30);
		while (recv(fd, r, sizeof(r), MSG_DONTWAIT) == sizeof(b))
			back++;
	}
	wn_udp_front_stats(t.front, st);
	close(fd);
	t_finish(&t);
	return back;
}

static void test_fec_repairs_loss(void **state)
{
	struct wn_udp_front_stats st;

	(void)state;
	unsigned plain = fec_echoes(0, &st);
	assert_true(plain < 180);
	assert_int_equal(st.fec_recovered, 0);
	unsigned fec = fec_echoes(10, &st);
	assert_int_equal(fec, 200);
	assert_true(st.fec_recovered >= 10);
	assert_int_equal(st.fec_unrecoverable, 0);
	assert_int_equal(st.fec_off, 0);
}

static void test_no_datagrams_no_front(void **state)
{
	struct wn_pipetunnel_opts po = {.no_flows = true};
	struct wn_udp_front_opts o = {0};
	struct wn_udp_front *u = NULL;
	struct t t;
	const char *why;

	(void)state;
	t_init(&t, &po);
	assert_int_equal(wn_endpoint_parse("127.0.0.1:0", WN_SCHEME_UDP,
	                                   WN_SCHEME_UDP, WN_EP_PORT_ZERO_OK,
	                                   &o.listen, &why),
	                 0);
	o.target = o.listen;
	assert_int_equal(wn_udp_front_open(&t.loop, &t.log,
	                                   wn_pipetunnel_client(t.pt), &o, &u),
	                 WN_ENOTSUP);
	assert_null(u);
	t_finish(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sizes_intact_and_max_plus_one_dropped),
	    cmocka_unit_test(test_cap_evicts_oldest_and_idle_reaps),
	    cmocka_unit_test(test_flood_from_another_host_keeps_a_flow),
	    cmocka_unit_test(test_flood_keeps_established_flows),
	    cmocka_unit_test(test_full_of_flows_in_use_drops_newcomers),
	    cmocka_unit_test(test_evictions_are_rate_limited),
	    cmocka_unit_test(test_disallowed_target_gets_nothing),
	    cmocka_unit_test(test_stream_rule_never_allows_udp),
	    cmocka_unit_test(test_udp_connections_round_robin),
	    cmocka_unit_test(test_fec_repairs_loss),
	    cmocka_unit_test(test_no_datagrams_no_front),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
