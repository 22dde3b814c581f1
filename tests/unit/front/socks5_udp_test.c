/* Tests for the SOCKS5 front end's UDP ASSOCIATE over the in-memory tunnel
 * double carrying flows, with a server whose flow handler echoes every
 * datagram back and refuses one port (as a server's udp:// rules would):
 * the reply names the relay socket; datagrams travel with their header and
 * come back with it; fragments, malformed headers and other senders are
 * dropped without reaching the tunnel; a refused destination is dropped
 * at the client after the first refusal; flows per association are
 * bounded; the association ends with its TCP connection; and a tunnel
 * without datagrams answers "command not supported".
 *
 *   test UDP socket -> socks5 front -> pipetunnel -> echo flow handler */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/socks5.h"
#include "front/socks5.h"
#include "io/loop.h"
#include "support/netpeer.h"
#include "support/pipetunnel.h"
#include "util/err.h"
#include "util/log.h"

/* The port the server refuses. */
#define DENIED_PORT 9
#define MAX_SERVER_FLOWS 64

struct fx;

struct srv_flow {
	struct fx *f;
	struct wn_flow *flow;
	struct wn_flow_handler h;
	bool live;
};

struct fx {
	struct wn_loop loop;
	struct wn_log log;
	struct wn_pipetunnel *pt;
	struct wn_socks5_front *sf;
	uint16_t port;
	struct srv_flow flows[MAX_SERVER_FLOWS];
	size_t nflows;
	size_t server_dgrams;
	size_t closed_ok;
	struct wn_endpoint last_target;
};

static void srv_on_datagram(void *ctx, struct wn_flow *fl, const uint8_t *d,
                            size_t len)
{
	struct srv_flow *s = ctx;

	s->f->server_dgrams++;
	assert_int_equal(wn_flow_send(fl, d, len), 0);
}

static void srv_on_closed(void *ctx, struct wn_flow *fl, int err)
{
	struct srv_flow *s = ctx;

	(void)fl;
	s->live = false;
	if (err == WN_STREAM_OK)
		s->f->closed_ok++;
}

static void srv_on_stream(void *ctx, struct wn_tunnel *t, struct wn_stream *s,
                          const struct wn_endpoint *target)
{
	(void)ctx;
	(void)t;
	(void)target;
	wn_stream_reset(s, WN_STREAM_DENIED);
}

static void srv_on_flow(void *ctx, struct wn_tunnel *t, struct wn_flow *fl,
                        const struct wn_endpoint *target)
{
	struct fx *f = ctx;
	struct srv_flow *s;

	(void)t;
	assert_non_null(target);
	assert_int_equal(target->scheme, WN_SCHEME_UDP);
	f->last_target = *target;
	if (target->port == DENIED_PORT || f->nflows == MAX_SERVER_FLOWS) {
		wn_flow_refuse(fl, WN_STREAM_DENIED);
		return;
	}
	s = &f->flows[f->nflows++];
	s->f = f;
	s->flow = fl;
	s->live = true;
	s->h = (struct wn_flow_handler){s, srv_on_datagram, srv_on_closed};
	wn_flow_set_handler(fl, &s->h);
}

static void fx_init(struct fx *f, bool no_flows)
{
	struct wn_pipetunnel_opts po = {.no_flows = no_flows};
	struct wn_accept_handler ah = {f, srv_on_stream, srv_on_flow};
	struct wn_socks5_front_opts o = {.name = "t"};
	struct sockaddr_storage ss;
	const char *why;

	memset(f, 0, sizeof(*f));
	assert_int_equal(wn_loop_init(&f->loop), 0);
	wn_log_init(&f->log, WN_LOG_WARN, 2);
	assert_int_equal(wn_pipetunnel_new(&f->loop, &po, &ah, &f->pt), 0);
	assert_int_equal(wn_endpoint_parse("127.0.0.1:0", WN_SCHEME_TCP,
	                                   WN_SCHEME_TCP, WN_EP_PORT_ZERO_OK,
	                                   &o.listen, &why),
	                 0);
	assert_int_equal(wn_socks5_front_open(&f->loop, &f->log,
	                                      wn_pipetunnel_client(f->pt), &o,
	                                      &f->sf),
	                 0);
	assert_int_equal(wn_socks5_front_sockname(f->sf, &ss), 0);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void fx_finish(struct fx *f)
{
	wn_socks5_front_close(f->sf);
	wn_pipetunnel_close(f->pt);
	wn_np_run_for(&f->loop, 50);
	assert_int_equal(wn_loop_close(&f->loop), 0);
}

static bool readable(void *arg)
{
	struct pollfd p = {.fd = *(int *)arg, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/* Reads exactly n bytes of the TCP reply, running the loop meanwhile. */
static void tcp_expect(struct fx *f, int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;
	ssize_t k;

	while (got < n) {
		assert_true(wn_np_run_until(&f->loop, readable, &fd, 3000));
		k = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (k < 0 && errno == EAGAIN)
			continue;
		assert_true(k > 0);
		got += (size_t)k;
	}
}

/* Connects, negotiates no authentication and asks UDP ASSOCIATE with the
 * client address 0.0.0.0:port. Returns the TCP fd; *relay gets the reply
 * (its code in *rep). */
static int associate(struct fx *f, uint16_t port, uint8_t *rep,
                     struct sockaddr_in *relay)
{
	const uint8_t greet[] = {5, 1, 0};
	uint8_t req[10] = {
	    5, 3, 0, 1, 0, 0, 0, 0, (uint8_t)(port >> 8), (uint8_t)port};
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(f->port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	uint8_t buf[10];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(send(fd, greet, 3, MSG_NOSIGNAL), 3);
	tcp_expect(f, fd, buf, 2);
	assert_int_equal(buf[1], 0);
	assert_int_equal(send(fd, req, sizeof(req), MSG_NOSIGNAL), 10);
	tcp_expect(f, fd, buf, 10);
	assert_int_equal(buf[0], 5);
	*rep = buf[1];
	assert_int_equal(buf[3], WN_SOCKS5_ATYP_IPV4);
	memset(relay, 0, sizeof(*relay));
	relay->sin_family = AF_INET;
	memcpy(&relay->sin_addr, buf + 4, 4);
	memcpy(&relay->sin_port, buf + 8, 2);
	return fd;
}

static int udp_sock(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static uint16_t udp_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* A datagram to ip:port through the relay: header plus payload. */
static void udp_send_to(int fd, const struct sockaddr_in *relay, uint8_t frag,
                        uint32_t ip, uint16_t port, const char *payload)
{
	uint8_t pkt[512];
	size_t n = strlen(payload);

	pkt[0] = pkt[1] = 0;
	pkt[2] = frag;
	pkt[3] = WN_SOCKS5_ATYP_IPV4;
	pkt[4] = (uint8_t)(ip >> 24);
	pkt[5] = (uint8_t)(ip >> 16);
	pkt[6] = (uint8_t)(ip >> 8);
	pkt[7] = (uint8_t)ip;
	pkt[8] = (uint8_t)(port >> 8);
	pkt[9] = (uint8_t)port;
	memcpy(pkt + 10, payload, n);
	assert_int_equal(sendto(fd, pkt, 10 + n, 0,
	                        (const struct sockaddr *)relay, sizeof(*relay)),
	                 (ssize_t)(10 + n));
}

/* Waits up to ms for a datagram; returns its length or -1. */
static ssize_t udp_recv(struct fx *f, int fd, uint8_t *buf, size_t cap,
                        uint64_t ms)
{
	if (!wn_np_run_until(&f->loop, readable, &fd, ms))
		return -1;
	return recv(fd, buf, cap, MSG_DONTWAIT);
}

static void echo_through_association(void **state)
{
	struct fx f;
	struct sockaddr_in relay;
	uint8_t rep, buf[600];
	const uint8_t want_hdr[] = {0, 0, 0, 1, 127, 0, 0, 1, 0x14, 0xe9};
	int tcp, u;
	ssize_t n;

	(void)state;
	fx_init(&f, false);
	u = udp_sock();
	tcp = associate(&f, udp_port(u), &rep, &relay);
	assert_int_equal(rep, WN_SOCKS5_REP_SUCCEEDED);
	/* Bound on the listener's address, on a port of its own. */
	assert_int_equal(relay.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_not_equal(ntohs(relay.sin_port), 0);
	assert_int_not_equal(ntohs(relay.sin_port), f.port);

	udp_send_to(u, &relay, 0, 0x7f000001, 5353, "hello");
	n = udp_recv(&f, u, buf, sizeof(buf), 3000);
	assert_int_equal(n, 10 + 5);
	assert_memory_equal(buf, want_hdr, sizeof(want_hdr));
	assert_memory_equal(buf + 10, "hello", 5);
	assert_int_equal(f.last_target.port, 5353);
	assert_string_equal(f.last_target.host, "127.0.0.1");

	/* A second destination is a second flow; the first is reused. */
	udp_send_to(u, &relay, 0, 0x7f000002, 5354, "two");
	n = udp_recv(&f, u, buf, sizeof(buf), 3000);
	assert_int_equal(n, 13);
	assert_int_equal(buf[7], 2);
	udp_send_to(u, &relay, 0, 0x7f000001, 5353, "again");
	n = udp_recv(&f, u, buf, sizeof(buf), 3000);
	assert_int_equal(n, 15);
	assert_int_equal(f.nflows, 2);
	const struct wn_socks5_front_stats *st =
	    wn_socks5_front_get_stats(f.sf);
	assert_int_equal(st->udp_associates, 1);
	assert_int_equal(st->udp_flows_opened, 2);
	assert_int_equal(st->udp_dgrams_up, 3);
	assert_int_equal(st->udp_dgrams_down, 3);

	/* The association ends with its TCP connection: the server's flows
	 * are closed and the relay port answers no more. */
	close(tcp);
	wn_np_run_for(&f.loop, 100);
	assert_int_equal(f.closed_ok, 2);
	assert_false(f.flows[0].live || f.flows[1].live);
	udp_send_to(u, &relay, 0, 0x7f000001, 5353, "late");
	assert_int_equal(udp_recv(&f, u, buf, sizeof(buf), 200), -1);
	assert_int_equal(f.server_dgrams, 3);
	close(u);
	fx_finish(&f);
}

static void bad_datagrams_never_reach_the_tunnel(void **state)
{
	struct fx f;
	struct sockaddr_in relay;
	uint8_t rep, buf[600];
	const uint8_t short_hdr[] = {0, 0, 0, 1, 127, 0};
	const uint8_t bad_atyp[] = {0, 0, 0, 2, 127, 0, 0, 1, 0, 53, 'x'};
	int tcp, u, other;

	(void)state;
	fx_init(&f, false);
	u = udp_sock();
	other = udp_sock();
	tcp = associate(&f, udp_port(u), &rep, &relay);
	assert_int_equal(rep, WN_SOCKS5_REP_SUCCEEDED);

	/* A fragment, a truncated header, an unknown address type. */
	udp_send_to(u, &relay, 1, 0x7f000001, 5353, "frag");
	assert_int_equal(sendto(u, short_hdr, sizeof(short_hdr), 0,
	                        (struct sockaddr *)&relay, sizeof(relay)),
	                 (ssize_t)sizeof(short_hdr));
	assert_int_equal(sendto(u, bad_atyp, sizeof(bad_atyp), 0,
	                        (struct sockaddr *)&relay, sizeof(relay)),
	                 (ssize_t)sizeof(bad_atyp));
	/* Another local sender (the client named its own port). */
	udp_send_to(other, &relay, 0, 0x7f000001, 5353, "stranger");
	assert_int_equal(udp_recv(&f, u, buf, sizeof(buf), 200), -1);
	assert_int_equal(udp_recv(&f, other, buf, sizeof(buf), 10), -1);
	const struct wn_socks5_front_stats *st =
	    wn_socks5_front_get_stats(f.sf);
	assert_int_equal(st->udp_drop_frag, 1);
	assert_int_equal(st->udp_drop_header, 2);
	assert_int_equal(st->udp_drop_source, 1);
	assert_int_equal(st->udp_flows_opened, 0);
	assert_int_equal(wn_pipetunnel_stats(f.pt)->flows_accepted, 0);
	assert_int_equal(f.server_dgrams, 0);

	/* The client itself still gets through. */
	udp_send_to(u, &relay, 0, 0x7f000001, 5353, "ok");
	assert_int_equal(udp_recv(&f, u, buf, sizeof(buf), 3000), 12);
	close(tcp);
	close(u);
	close(other);
	fx_finish(&f);
}

static void refused_destination_dropped_at_the_client(void **state)
{
	struct fx f;
	struct sockaddr_in relay;
	uint8_t rep, buf[600];
	int tcp, u;

	(void)state;
	fx_init(&f, false);
	u = udp_sock();
	tcp = associate(&f, udp_port(u), &rep, &relay);
	udp_send_to(u, &relay, 0, 0x7f000001, DENIED_PORT, "no");
	assert_int_equal(udp_recv(&f, u, buf, sizeof(buf), 200), -1);
	const struct wn_socks5_front_stats *st =
	    wn_socks5_front_get_stats(f.sf);
	assert_int_equal(st->udp_flows_denied, 1);
	/* Further datagrams to it stop at the client: no new flow. */
	udp_send_to(u, &relay, 0, 0x7f000001, DENIED_PORT, "no");
	udp_send_to(u, &relay, 0, 0x7f000001, DENIED_PORT, "no");
	assert_int_equal(udp_recv(&f, u, buf, sizeof(buf), 200), -1);
	assert_int_equal(st->udp_drop_denied, 2);
	assert_int_equal(wn_pipetunnel_stats(f.pt)->flows_accepted, 1);
	/* An allowed destination works beside it. */
	udp_send_to(u, &relay, 0, 0x7f000001, 5353, "yes");
	assert_int_equal(udp_recv(&f, u, buf, sizeof(buf), 3000), 13);
	close(tcp);
	close(u);
	fx_finish(&f);
}

static void flows_per_association_bounded(void **state)
{
	struct fx f;
	struct sockaddr_in relay;
	uint8_t rep, buf[600];
	size_t i, live = 0;
	int tcp, u;

	(void)state;
	fx_init(&f, false);
	u = udp_sock();
	tcp = associate(&f, udp_port(u), &rep, &relay);
	for (i = 0; i < WN_SOCKS5_UDP_FLOWS + 4; i++) {
		udp_send_to(u, &relay, 0, 0x7f000001, (uint16_t)(6000 + i),
		            "x");
		assert_int_equal(udp_recv(&f, u, buf, sizeof(buf), 3000), 11);
	}
	wn_np_run_for(&f.loop, 50);
	for (i = 0; i < f.nflows; i++)
		live += f.flows[i].live;
	assert_int_equal(f.nflows, WN_SOCKS5_UDP_FLOWS + 4);
	assert_int_equal(live, WN_SOCKS5_UDP_FLOWS);
	/* The oldest went first. */
	for (i = 0; i < 4; i++)
		assert_false(f.flows[i].live);
	assert_int_equal(wn_socks5_front_get_stats(f.sf)->udp_flows_evicted, 4);
	close(tcp);
	close(u);
	fx_finish(&f);
}

static void no_datagrams_no_associate(void **state)
{
	struct fx f;
	struct sockaddr_in relay;
	uint8_t rep;
	int tcp;

	(void)state;
	fx_init(&f, true);
	tcp = associate(&f, 0, &rep, &relay);
	assert_int_equal(rep, WN_SOCKS5_REP_CMD_UNSUPPORTED);
	close(tcp);
	fx_finish(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(echo_through_association),
	    cmocka_unit_test(bad_datagrams_never_reach_the_tunnel),
	    cmocka_unit_test(refused_destination_dropped_at_the_client),
	    cmocka_unit_test(flows_per_association_bounded),
	    cmocka_unit_test(no_datagrams_no_associate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
