/* Tests for the udp carrier over real loopback sockets (127.0.0.1, ::1).
 *
 * Every packet carries its sequence number, its own length and bytes derived
 * from both, so a split at the wrong place, a truncation, a corruption, a
 * loss, a duplicate or a reordering each shows up as a count the tests
 * assert on.
 *
 * Loopback never fills a UDP send buffer (the kernel releases it as the
 * packet is handed to lo), so the tests that need a full socket or a failing
 * GSO send interpose sendmsg, sendmmsg and recvmmsg: the definitions below
 * take precedence over libc's (and ASan's) for this executable, and pass
 * through to the real calls unless a fault is armed in `fx`. The carrier
 * code under test is the production code, unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "carrier/udp.h"
#include "io/loop.h"
#include "util/err.h"
#include "util/log.h"

/* ---- fault injection ----------------------------------------------------- */

static struct {
	long allowance; /* packets the "socket" takes before EAGAIN; <0: any */
	bool gso_eio;   /* a sendmsg with UDP_SEGMENT fails with EIO */
	int recv_err_once;  /* errno for the next recvmmsg, then cleared */
	size_t max_read;    /* largest datagram recvmmsg returned (GRO proof) */
	unsigned gso_sends; /* sendmsg calls that carried UDP_SEGMENT */
} fx;

static void fx_reset(void)
{
	memset(&fx, 0, sizeof(fx));
	fx.allowance = -1;
}

static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_sendmmsg)(int, struct mmsghdr *, unsigned int, int);
static int (*real_recvmmsg)(int, struct mmsghdr *, unsigned int, int,
                            struct timespec *);

static void fx_resolve(void)
{
	if (!real_sendmsg) {
		*(void **)&real_sendmsg = dlsym(RTLD_NEXT, "sendmsg");
		*(void **)&real_sendmmsg = dlsym(RTLD_NEXT, "sendmmsg");
		*(void **)&real_recvmmsg = dlsym(RTLD_NEXT, "recvmmsg");
	}
}

/* The segment size a message asks the kernel to cut by, or 0. */
static size_t msg_gso(const struct msghdr *m)
{
	struct cmsghdr *cm;
	uint16_t v;

	for (cm = CMSG_FIRSTHDR(m); cm;
	     cm = CMSG_NXTHDR((struct msghdr *)m, cm))
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_SEGMENT) {
			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			return v;
		}
	return 0;
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	size_t seg, len = 0, i;
	long segs = 1;

	fx_resolve();
	for (i = 0; i < m->msg_iovlen; i++)
		len += m->msg_iov[i].iov_len;
	seg = m->msg_controllen ? msg_gso(m) : 0;
	if (seg) {
		fx.gso_sends++;
		segs = (long)((len + seg - 1) / seg);
		if (fx.gso_eio) {
			errno = EIO;
			return -1;
		}
	}
	if (fx.allowance >= 0) {
		if (fx.allowance < segs) {
			errno = EAGAIN;
			return -1;
		}
		fx.allowance -= segs;
	}
	return real_sendmsg(fd, m, flags);
}

int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	int r;

	fx_resolve();
	if (fx.allowance >= 0) {
		if (fx.allowance == 0) {
			errno = EAGAIN;
			return -1;
		}
		if ((long)n > fx.allowance)
			n = (unsigned)fx.allowance;
	}
	r = real_sendmmsg(fd, v, n, flags);
	if (r > 0 && fx.allowance >= 0)
		fx.allowance -= r;
	return r;
}

int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags,
             struct timespec *t)
{
	int r, i;

	fx_resolve();
	if (fx.recv_err_once) {
		errno = fx.recv_err_once;
		fx.recv_err_once = 0;
		return -1;
	}
	r = real_recvmmsg(fd, v, n, flags, t);
	for (i = 0; i < r; i++)
		if (v[i].msg_len > fx.max_read)
			fx.max_read = v[i].msg_len;
	return r;
}

/* ---- packets ------------------------------------------------------------- */

#define HDR 6 /* seq (4), length (2) */

static uint8_t pattern(uint32_t seq, size_t i)
{
	uint32_t x = seq * 2654435761u + (uint32_t)i * 40503u + 0x9e37u;

	x ^= x >> 13;
	x *= 0x5bd1e995u;
	return (uint8_t)(x ^ (x >> 15));
}

static void pkt_fill(uint8_t *p, size_t len, uint32_t seq)
{
	size_t i;

	assert_true(len >= HDR && len <= 0xffff);
	p[0] = (uint8_t)(seq >> 24);
	p[1] = (uint8_t)(seq >> 16);
	p[2] = (uint8_t)(seq >> 8);
	p[3] = (uint8_t)seq;
	p[4] = (uint8_t)(len >> 8);
	p[5] = (uint8_t)len;
	for (i = HDR; i < len; i++)
		p[i] = pattern(seq, i);
}

/* True if p is exactly a packet pkt_fill made; *seq is its number. */
static bool pkt_check(const uint8_t *p, size_t len, uint32_t *seq)
{
	size_t i;

	if (len < HDR || (size_t)(p[4] << 8 | p[5]) != len)
		return false;
	*seq = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
	for (i = HDR; i < len; i++)
		if (p[i] != pattern(*seq, i))
			return false;
	return true;
}

/* ---- fixture ------------------------------------------------------------- */

struct env {
	struct wn_loop loop;
	struct wn_log log;
	uv_timer_t tick; /* bounds each blocking loop iteration */
	FILE *logf;
	unsigned next_id;
	/* Carriers the test has not closed yet, closed by teardown when an
	 * assertion ended the test early (so a failure reports itself, not a
	 * leak). */
	struct wn_carrier *open[8];
	int nopen;
};

static void env_forget(struct env *e, struct wn_carrier *c)
{
	int i;

	for (i = 0; i < e->nopen; i++)
		if (e->open[i] == c) {
			e->open[i] = e->open[--e->nopen];
			return;
		}
}

static void on_tick(uv_timer_t *t)
{
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	assert_int_equal(wn_loop_init(&e->loop), 0);
	e->logf = tmpfile();
	assert_non_null(e->logf);
	wn_log_init(&e->log, WN_LOG_DEBUG, fileno(e->logf));
	uv_timer_init(wn_loop_uv(&e->loop), &e->tick);
	uv_timer_start(&e->tick, on_tick, 2, 2);
	e->next_id = 1;
	fx_reset();
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	fx_reset();
	while (e->nopen > 0)
		wn_carrier_close(e->open[--e->nopen]);
	uv_close((uv_handle_t *)&e->tick, NULL);
	/* 0: every carrier closed its own handle; the loop swept nothing. */
	assert_int_equal(wn_loop_close(&e->loop), 0);
	fclose(e->logf);
	free(e);
	return 0;
}

/* Occurrences of needle in everything logged so far. */
static int log_count(struct env *e, const char *needle)
{
	static char buf[1 << 16];
	ssize_t n = pread(fileno(e->logf), buf, sizeof(buf) - 1, 0);
	const char *p = buf;
	int count = 0;

	assert_true(n >= 0);
	buf[n] = '\0';
	while ((p = strstr(p, needle)) != NULL) {
		count++;
		p += strlen(needle);
	}
	return count;
}

static bool run_until(struct env *e, bool (*done)(void *), void *arg,
                      unsigned timeout_ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)timeout_ms * 1000000u;

	while (!done(arg) && wn_mono_ns() < end)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_ONCE);
	return done(arg);
}

static void run_for(struct env *e, unsigned ms)
{
	uint64_t end = wn_mono_ns() + (uint64_t)ms * 1000000u;

	while (wn_mono_ns() < end)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_ONCE);
}

/* ---- a peer: a carrier plus what its handler saw ------------------------- */

struct peer {
	struct env *env;
	struct wn_carrier *c;
	/* received */
	size_t npkts, nbytes;
	size_t bad; /* not a packet pkt_fill made: corrupt or mis-split */
	size_t misordered; /* seq != previous seq + 1 */
	size_t dups;       /* seen before (with seen[]) */
	uint32_t next_seq;
	uint8_t *seen; /* one byte per seq, if set */
	size_t nseen;
	size_t *lens; /* lengths in arrival order, if set */
	size_t nlens;
	struct sockaddr_storage from;
	socklen_t fromlen;
	unsigned writable, after_close;
	/* behaviour */
	size_t close_at; /* close the carrier in recv() at this packet count */
	bool closed;
	void (*on_recv)(struct peer *p); /* after each packet (may send) */
	void (*on_writable)(struct peer *p);
	void *user;
};

static void h_recv(void *ctx, struct wn_carrier *c, const struct sockaddr *from,
                   socklen_t fromlen, uint8_t *pkt, size_t len)
{
	struct peer *p = ctx;
	uint32_t seq;

	if (p->closed || c != p->c) {
		p->after_close++;
		return;
	}
	if (!pkt_check(pkt, len, &seq)) {
		p->bad++;
	} else {
		if (seq != p->next_seq)
			p->misordered++;
		p->next_seq = seq + 1;
		if (p->seen && seq < p->nseen && p->seen[seq]++)
			p->dups++;
	}
	if (p->lens && p->npkts < p->nlens)
		p->lens[p->npkts] = len;
	assert_true(fromlen <= sizeof(p->from));
	memcpy(&p->from, from, fromlen);
	p->fromlen = fromlen;
	p->npkts++;
	p->nbytes += len;
	/* The engine may decrypt in place: scribbling must not matter. */
	memset(pkt, 0xee, len);
	if (p->close_at && p->npkts == p->close_at) {
		env_forget(p->env, c);
		wn_carrier_close(c);
		p->closed = true;
		return;
	}
	if (p->on_recv)
		p->on_recv(p);
}

static void h_writable(void *ctx, struct wn_carrier *c)
{
	struct peer *p = ctx;

	if (p->closed) {
		p->after_close++;
		return;
	}
	p->writable++;
	if (p->on_writable)
		p->on_writable(p);
}

static void peer_open_opts(struct env *e, struct peer *p,
                           const struct sockaddr *sa, socklen_t len,
                           unsigned flags, int sndbuf)
{
	struct wn_carrier_handler h = {
	    .ctx = p,
	    .recv = h_recv,
	    .writable = h_writable,
	};
	struct wn_udp_opts o = {
	    .id = e->next_id++, .flags = flags, .sndbuf = sndbuf};

	memset(p, 0, sizeof(*p));
	p->env = e;
	assert_int_equal(
	    wn_udp_carrier_open(&e->loop, &e->log, sa, len, &o, &h, &p->c), 0);
	assert_non_null(p->c);
	assert_true(e->nopen < 8);
	e->open[e->nopen++] = p->c;
}

static void loopback(int family, struct sockaddr_storage *ss, socklen_t *len)
{
	assert_int_equal(wn_udp_wildcard(family, ss, len), 0);
	if (family == AF_INET)
		((struct sockaddr_in *)ss)->sin_addr.s_addr =
		    htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
}

/* A server on the loopback address and a client on the wildcard. */
static void pair_open(struct env *e, int family, struct peer *srv,
                      unsigned srv_flags, struct peer *cli, unsigned cli_flags)
{
	struct sockaddr_storage ss;
	socklen_t len;

	loopback(family, &ss, &len);
	peer_open_opts(e, srv, (struct sockaddr *)&ss, len, srv_flags, 0);
	assert_int_equal(wn_udp_wildcard(family, &ss, &len), 0);
	peer_open_opts(e, cli, (struct sockaddr *)&ss, len, cli_flags, 0);
}

static void peer_close(struct peer *p)
{
	if (!p->closed) {
		env_forget(p->env, p->c);
		wn_carrier_close(p->c);
		p->closed = true;
	}
}

/* Where to send to reach p (its bound address; p is bound to loopback). */
static void peer_addr(struct peer *p, struct sockaddr_storage *ss,
                      socklen_t *len)
{
	assert_int_equal(p->c->ops->local_addr(p->c, ss, len), 0);
}

/* Sends n packets numbered from seq: n-1 of seg bytes and a last one of
 * last bytes, as one batch. Returns what send() returned. */
static int send_pkts(struct peer *p, const struct sockaddr_storage *to,
                     socklen_t tolen, uint32_t seq, size_t n, size_t seg,
                     size_t last)
{
	size_t len = (n - 1) * seg + last, i;
	uint8_t *buf = malloc(len);
	int rc;

	assert_non_null(buf);
	for (i = 0; i < n; i++)
		pkt_fill(buf + i * seg, i + 1 < n ? seg : last,
		         seq + (uint32_t)i);
	rc = wn_carrier_send(p->c, (const struct sockaddr *)to, tolen, buf, len,
	                     seg);
	/* The carrier said it took the batch: reusing buf must be safe. */
	memset(buf, 0xa5, len);
	free(buf);
	return rc;
}

struct want {
	struct peer *p;
	size_t n;
};

static bool got_n(void *arg)
{
	struct want *w = arg;

	return w->p->npkts >= w->n;
}

static bool got_writable(void *arg)
{
	return ((struct peer *)arg)->writable > 0;
}

static bool got_two_writable(void *arg)
{
	return ((struct peer *)arg)->writable > 1;
}

/* ---- tests --------------------------------------------------------------- */

static void exchange(struct env *e, int family)
{
	struct peer srv, cli;
	struct sockaddr_storage to, local;
	socklen_t tolen, llen;
	struct want w;
	size_t max = family == AF_INET ? 1472 : 1452;
	size_t lens[4] = {0};

	pair_open(e, family, &srv, 0, &cli, 0);
	assert_string_equal(srv.c->name, "udp#1");
	assert_string_equal(cli.c->name, "udp#2");
	assert_string_equal(srv.c->scheme, "udp");
	assert_true(srv.c->caps & WN_CARRIER_DATAGRAM);
	assert_false(srv.c->caps & WN_CARRIER_RELIABLE);
	assert_int_equal(wn_carrier_max_packet(srv.c), max);

	/* Client to server: single packets of different sizes, the largest
	 * max_packet, each its own batch. */
	peer_addr(&srv, &to, &tolen);
	assert_int_equal(send_pkts(&cli, &to, tolen, 0, 1, 100, 100), 0);
	assert_int_equal(send_pkts(&cli, &to, tolen, 1, 1, max, max), 0);
	assert_int_equal(send_pkts(&cli, &to, tolen, 2, 1, 7, 7), 0);
	srv.lens = lens;
	srv.nlens = 4;
	w = (struct want){&srv, 3};
	assert_true(run_until(e, got_n, &w, 5000));
	assert_int_equal(srv.npkts, 3);
	assert_int_equal(srv.bad, 0);
	assert_int_equal(srv.misordered, 0);
	assert_int_equal(lens[0], 100);
	assert_int_equal(lens[1], max);
	assert_int_equal(lens[2], 7);

	/* The sender's address is the client's socket. */
	assert_int_equal(cli.c->ops->local_addr(cli.c, &local, &llen), 0);
	assert_int_equal(srv.from.ss_family, family);
	if (family == AF_INET)
		assert_int_equal(((struct sockaddr_in *)&srv.from)->sin_port,
		                 ((struct sockaddr_in *)&local)->sin_port);
	else
		assert_int_equal(((struct sockaddr_in6 *)&srv.from)->sin6_port,
		                 ((struct sockaddr_in6 *)&local)->sin6_port);

	/* Server answers to where the packet came from. */
	assert_int_equal(
	    send_pkts(&srv, &srv.from, srv.fromlen, 0, 5, 1000, 333), 0);
	w = (struct want){&cli, 5};
	assert_true(run_until(e, got_n, &w, 5000));
	assert_int_equal(cli.npkts, 5);
	assert_int_equal(cli.bad, 0);
	assert_int_equal(cli.misordered, 0);
	assert_int_equal(cli.nbytes, 4 * 1000 + 333);

	assert_int_equal(srv.c->stats.pkts_in, 3);
	assert_int_equal(srv.c->stats.bytes_in, 100 + max + 7);
	assert_int_equal(cli.c->stats.pkts_out, 3);
	assert_int_equal(srv.c->stats.pkts_out, 5);
	assert_int_equal(srv.c->stats.drops_in + srv.c->stats.drops_out, 0);

	peer_close(&cli);
	peer_close(&srv);
	/* Closed: local_addr says so, and close twice is harmless. */
	assert_int_equal(srv.c->ops->local_addr(srv.c, &local, &llen),
	                 WN_ECLOSED);
	wn_carrier_close(srv.c);
}

static void exchange_v4(void **state)
{
	exchange(*state, AF_INET);
}

static void exchange_v6(void **state)
{
	exchange(*state, AF_INET6);
}

/* 40 packets of 1200 bytes and a short last one, in one send(). */
static void gso_batch(struct env *e, int family, unsigned cli_flags,
                      unsigned srv_flags)
{
	struct peer srv, cli;
	struct sockaddr_storage to;
	socklen_t tolen;
	size_t lens[64], i;
	struct want w;
	uint64_t calls;

	pair_open(e, family, &srv, srv_flags, &cli, cli_flags);
	if (cli_flags & WN_UDP_NO_GSO)
		assert_false(wn_udp_gso_on(cli.c));
	else
		assert_true(wn_udp_gso_on(cli.c)); /* this kernel has it */
	srv.lens = lens;
	srv.nlens = 64;
	peer_addr(&srv, &to, &tolen);
	calls = cli.c->stats.send_calls;
	assert_int_equal(send_pkts(&cli, &to, tolen, 0, 41, 1200, 345), 0);
	/* One syscall either way: one GSO sendmsg or one sendmmsg. */
	assert_int_equal(cli.c->stats.send_calls - calls, 1);
	assert_int_equal(fx.gso_sends, cli_flags & WN_UDP_NO_GSO ? 0 : 1);
	assert_int_equal(cli.c->stats.pkts_out, 41);
	assert_int_equal(cli.c->stats.bytes_out, 40 * 1200 + 345);

	w = (struct want){&srv, 41};
	assert_true(run_until(e, got_n, &w, 5000));
	run_for(e, 20); /* nothing more may come */
	assert_int_equal(srv.npkts, 41);
	assert_int_equal(srv.bad, 0);
	assert_int_equal(srv.misordered, 0);
	for (i = 0; i < 40; i++)
		assert_int_equal(lens[i], 1200);
	assert_int_equal(lens[40], 345);
	assert_int_equal(srv.c->stats.pkts_in, 41);
	assert_int_equal(srv.c->stats.bytes_in, 40 * 1200 + 345);
	if (!(cli_flags & WN_UDP_NO_GSO) && !(srv_flags & WN_UDP_NO_GRO)) {
		/* GSO in, GRO out: the batch arrived as one read. */
		assert_int_equal(fx.max_read, 40 * 1200 + 345);
	} else {
		assert_true(fx.max_read <= 1200);
	}
	peer_close(&cli);
	peer_close(&srv);
}

static void gso_batch_v4(void **state)
{
	gso_batch(*state, AF_INET, 0, 0);
}

static void gso_batch_v6(void **state)
{
	gso_batch(*state, AF_INET6, 0, 0);
}

static void gso_batch_no_gro(void **state)
{
	gso_batch(*state, AF_INET, 0, WN_UDP_NO_GRO);
}

static void no_gso_batch(void **state)
{
	gso_batch(*state, AF_INET, WN_UDP_NO_GSO, 0);
}

/* A burst of 25 batches of 40 (1000 packets) at once: GRO-coalesced reads
 * are split byte-exact and in order, and the receive side visibly batches.
 * Also a batch over the kernel's GSO limits (100 segments, 120 KB), which
 * the carrier must split across sendmsg calls. */
static void burst(struct env *e, unsigned cli_flags, unsigned srv_flags)
{
	struct peer srv, cli;
	struct sockaddr_storage to;
	socklen_t tolen;
	struct want w;
	uint32_t seq = 0;
	int b;

	pair_open(e, AF_INET, &srv, srv_flags, &cli, cli_flags);
	peer_addr(&srv, &to, &tolen);
	for (b = 0; b < 25; b++, seq += 40)
		assert_int_equal(
		    send_pkts(&cli, &to, tolen, seq, 40, 1200, 100 + b), 0);
	assert_int_equal(send_pkts(&cli, &to, tolen, seq, 100, 1200, 1200), 0);
	if (!(cli_flags & WN_UDP_NO_GSO))
		/* 25 + 2 (54 and 46 segments: 65507 bytes at most). */
		assert_int_equal(fx.gso_sends, 27);
	w = (struct want){&srv, 1100};
	assert_true(run_until(e, got_n, &w, 5000));
	run_for(e, 20);
	assert_int_equal(srv.npkts, 1100);
	assert_int_equal(srv.bad, 0);
	assert_int_equal(srv.misordered, 0);
	assert_int_equal(srv.next_seq, 1100);
	assert_int_equal(srv.c->stats.drops_in, 0);
	assert_int_equal(srv.c->stats.pkts_in, 1100);
	/* Batching: far fewer syscalls and batches than packets. */
	assert_true(srv.c->stats.recv_calls * 10 < srv.c->stats.pkts_in);
	if (!(cli_flags & WN_UDP_NO_GSO) && !(srv_flags & WN_UDP_NO_GRO))
		assert_true(fx.max_read > 1500);
	peer_close(&cli);
	peer_close(&srv);
}

static void burst_gso_gro(void **state)
{
	burst(*state, 0, 0);
}

static void burst_plain(void **state)
{
	burst(*state, WN_UDP_NO_GSO, WN_UDP_NO_GRO);
}

/* 10,000 packets of varied sizes, paced by a window of packets in flight so
 * that the 4 MiB receive buffer never overflows (loopback drops what does
 * not fit; the window makes the count exact). */
#define N_BURST 10000
#define WINDOW 512
#define BATCH 20

struct pump {
	struct peer *cli, *srv;
	struct sockaddr_storage to;
	socklen_t tolen;
	uint32_t sent;
	unsigned eagain;
};

static void pump_run(struct pump *pm)
{
	size_t n, seg;
	int rc;

	while (pm->sent < N_BURST && pm->sent - pm->srv->npkts < WINDOW) {
		n = N_BURST - pm->sent < BATCH ? N_BURST - pm->sent : BATCH;
		seg = 200 + (pm->sent * 7) % 1200;
		rc = send_pkts(pm->cli, &pm->to, pm->tolen, pm->sent, n, seg,
		               HDR + pm->sent % seg);
		if (rc == WN_EAGAIN) {
			pm->eagain++;
			return; /* writable() resumes */
		}
		assert_int_equal(rc, 0);
		pm->sent += (uint32_t)n;
	}
}

static void pump_on_event(struct peer *p)
{
	pump_run(p->user);
}

static void burst_10000(void **state)
{
	struct env *e = *state;
	struct peer srv, cli;
	struct pump pm = {0};
	struct want w;
	size_t i;

	pair_open(e, AF_INET, &srv, 0, &cli, 0);
	srv.seen = calloc(N_BURST, 1);
	assert_non_null(srv.seen);
	srv.nseen = N_BURST;
	pm.cli = &cli;
	pm.srv = &srv;
	peer_addr(&srv, &pm.to, &pm.tolen);
	srv.user = &pm;
	srv.on_recv = pump_on_event; /* sends from inside recv() */
	cli.user = &pm;
	cli.on_writable = pump_on_event;
	pump_run(&pm);
	w = (struct want){&srv, N_BURST};
	assert_true(run_until(e, got_n, &w, 20000));
	run_for(e, 20);
	assert_int_equal(pm.sent, N_BURST);
	assert_int_equal(srv.npkts, N_BURST);
	assert_int_equal(srv.bad, 0);
	assert_int_equal(srv.dups, 0);
	for (i = 0; i < N_BURST; i++)
		assert_int_equal(srv.seen[i], 1);
	assert_int_equal(cli.c->stats.pkts_out, N_BURST);
	assert_int_equal(srv.c->stats.pkts_in, N_BURST);
	assert_int_equal(srv.c->stats.bytes_in, cli.c->stats.bytes_out);
	assert_int_equal(srv.c->stats.drops_in + cli.c->stats.drops_out, 0);
	assert_true(srv.c->stats.recv_calls * 4 < srv.c->stats.pkts_in);
	free(srv.seen);
	peer_close(&cli);
	peer_close(&srv);
}

/* Sending to a port nobody listens on (ICMP port unreachable comes back),
 * a recv error injected in the middle of a read, and a send to an address
 * of the wrong family: none of it stops later traffic. */
static void closed_port(void **state)
{
	struct env *e = *state;
	struct peer srv, cli;
	struct sockaddr_storage to, dead, v6;
	socklen_t tolen, deadlen, v6len;
	struct want w;
	int fd, i, rc;

	pair_open(e, AF_INET, &srv, 0, &cli, 0);
	loopback(AF_INET, &dead, &deadlen);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&dead, deadlen), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&dead, &deadlen),
	                 0);
	close(fd);

	for (i = 0; i < 10; i++) {
		rc = send_pkts(&cli, &dead, deadlen, 0, 3, 500, 500);
		assert_true(rc == 0 || rc == WN_ECONNREFUSED);
		run_for(e, 2);
	}
	/* The client still receives... */
	assert_int_equal(send_pkts(&srv, &dead, deadlen, 0, 1, 50, 50), 0);
	peer_addr(&srv, &to, &tolen);
	assert_int_equal(send_pkts(&cli, &to, tolen, 0, 4, 800, 800), 0);
	w = (struct want){&srv, 4};
	assert_true(run_until(e, got_n, &w, 5000));
	assert_int_equal(send_pkts(&srv, &srv.from, srv.fromlen, 0, 4, 900, 90),
	                 0);
	w = (struct want){&cli, 4};
	assert_true(run_until(e, got_n, &w, 5000));
	assert_int_equal(cli.bad + srv.bad, 0);

	/* ...also when a read fails with an error queued by ICMP. */
	fx.recv_err_once = ECONNREFUSED;
	assert_int_equal(send_pkts(&srv, &srv.from, srv.fromlen, 4, 4, 900, 90),
	                 0);
	w = (struct want){&cli, 8};
	assert_true(run_until(e, got_n, &w, 5000));
	assert_int_equal(fx.recv_err_once, 0); /* the fault was hit */
	assert_int_equal(cli.npkts, 8);
	assert_int_equal(cli.bad + cli.misordered, 0);

	/* Wrong family: dropped, counted, said. */
	loopback(AF_INET6, &v6, &v6len);
	assert_int_equal(send_pkts(&cli, &v6, v6len, 0, 3, 100, 100),
	                 WN_EINVAL);
	assert_int_equal(cli.c->stats.drops_out, 3);
	/* An oversized packet: EMSGSIZE, dropped, counted. */
	assert_int_equal(send_pkts(&cli, &to, tolen, 0, 1, 65535, 65535),
	                 WN_ERANGE);
	assert_int_equal(cli.c->stats.drops_out, 4);
	peer_close(&cli);
	peer_close(&srv);
}

/* The socket fills part way through a batch: the rest is kept and sent by
 * the carrier, the next send() says WN_EAGAIN, writable() follows once the
 * socket drains, and nothing is lost, duplicated or reordered. */
struct eag {
	struct sockaddr_storage to;
	socklen_t tolen;
	int rc;
};

static void eag_on_writable(struct peer *p)
{
	struct eag *g = p->user;

	/* Resend the batch that was refused. */
	g->rc = send_pkts(p, &g->to, g->tolen, 100, 100, 1000, 1000);
}

static void eagain_pending(struct env *e, unsigned cli_flags)
{
	struct peer srv, cli;
	struct eag g = {.rc = 1};
	struct want w;
	size_t first;
	int i;

	pair_open(e, AF_INET, &srv, 0, &cli, cli_flags);
	peer_addr(&srv, &g.to, &g.tolen);
	cli.user = &g;
	cli.on_writable = eag_on_writable;

	/* Room for 70 packets. With GSO the first 64-segment send fits and
	 * the second (36) does not; without, sendmmsg takes 64, then 6. */
	fx.allowance = 70;
	first = cli_flags & WN_UDP_NO_GSO ? 70 : 64;
	assert_int_equal(send_pkts(&cli, &g.to, g.tolen, 0, 100, 1000, 1000),
	                 0);
	assert_int_equal(cli.c->stats.pkts_out, first);
	/* A batch is pending: the next one is refused whole. */
	assert_int_equal(send_pkts(&cli, &g.to, g.tolen, 100, 100, 1000, 1000),
	                 WN_EAGAIN);
	w = (struct want){&srv, first};
	assert_true(run_until(e, got_n, &w, 5000));
	/* Still full: POLLOUT fires, the flush fails, nothing moves. */
	for (i = 0; i < 10; i++)
		uv_run(wn_loop_uv(&e->loop), UV_RUN_NOWAIT);
	run_for(e, 10);
	assert_int_equal(srv.npkts, first);
	assert_int_equal(cli.writable, 0);

	/* The socket drains. Until the pending batch is out, a new batch
	 * would overtake it: still refused. */
	fx.allowance = -1;
	assert_int_equal(send_pkts(&cli, &g.to, g.tolen, 100, 100, 1000, 1000),
	                 WN_EAGAIN);
	assert_true(run_until(e, got_writable, &cli, 5000));
	assert_int_equal(cli.writable, 1);
	assert_int_equal(g.rc, 0);
	w = (struct want){&srv, 200};
	assert_true(run_until(e, got_n, &w, 5000));
	run_for(e, 20);
	assert_int_equal(srv.npkts, 200);
	assert_int_equal(srv.bad, 0);
	assert_int_equal(srv.misordered, 0);
	assert_int_equal(srv.next_seq, 200);
	assert_int_equal(cli.c->stats.pkts_out, 200);
	assert_int_equal(cli.c->stats.drops_out, 0);
	assert_int_equal(cli.writable, 1);

	/* Full before the first packet: WN_EAGAIN with nothing kept, then
	 * writable() (as soon as the kernel reports room: here at once). */
	fx.allowance = 0;
	cli.on_writable = NULL;
	assert_int_equal(send_pkts(&cli, &g.to, g.tolen, 200, 10, 1000, 1000),
	                 WN_EAGAIN);
	fx.allowance = -1;
	run_until(e, got_two_writable, &cli, 5000);
	assert_int_equal(cli.writable, 2);
	run_for(e, 20);
	assert_int_equal(cli.writable, 2);
	assert_int_equal(cli.c->stats.pkts_out, 200);
	assert_int_equal(srv.npkts, 200);
	peer_close(&cli);
	peer_close(&srv);
}

static void eagain_pending_gso(void **state)
{
	eagain_pending(*state, 0);
}

static void eagain_pending_mmsg(void **state)
{
	eagain_pending(*state, WN_UDP_NO_GSO);
}

/* A GSO send failing with EIO (a device without checksum offload) while the
 * same packets go out one by one: GSO goes off for good, logged once. */
static void gso_fallback(void **state)
{
	struct env *e = *state;
	struct peer srv, cli;
	struct sockaddr_storage to;
	socklen_t tolen;
	struct want w;

	pair_open(e, AF_INET, &srv, 0, &cli, 0);
	peer_addr(&srv, &to, &tolen);
	assert_true(wn_udp_gso_on(cli.c));
	fx.gso_eio = true;
	assert_int_equal(send_pkts(&cli, &to, tolen, 0, 40, 1200, 1200), 0);
	assert_false(wn_udp_gso_on(cli.c));
	assert_int_equal(send_pkts(&cli, &to, tolen, 40, 40, 1200, 10), 0);
	assert_int_equal(fx.gso_sends, 1); /* never tried again */
	w = (struct want){&srv, 80};
	assert_true(run_until(e, got_n, &w, 5000));
	assert_int_equal(srv.npkts, 80);
	assert_int_equal(srv.bad + srv.misordered, 0);
	assert_int_equal(cli.c->stats.drops_out, 0);
	assert_int_equal(log_count(e, "GSO send failed"), 1);
	peer_close(&cli);
	peer_close(&srv);
}

/* Closing a carrier from inside its own recv() (in the middle of a
 * GRO-coalesced read and of a recvmmsg batch, and at a batch's last
 * packet): no handler call after, and the memory is freed cleanly (ASan). */
static void close_in_callbacks(void **state)
{
	struct env *e = *state;
	struct peer srv, cli, srv2;
	struct sockaddr_storage to;
	socklen_t tolen;
	struct want w;

	pair_open(e, AF_INET, &srv, 0, &cli, 0);
	peer_addr(&srv, &to, &tolen);
	srv.close_at = 5;
	assert_int_equal(send_pkts(&cli, &to, tolen, 0, 40, 1200, 1200), 0);
	assert_int_equal(send_pkts(&cli, &to, tolen, 40, 40, 1200, 1200), 0);
	w = (struct want){&srv, 5};
	assert_true(run_until(e, got_n, &w, 5000));
	run_for(e, 20);
	assert_int_equal(srv.npkts, 5);
	assert_int_equal(srv.after_close, 0);

	/* The client keeps sending into the void; a second server closes
	 * at the last packet of a batch. */
	{
		struct sockaddr_storage ss;
		socklen_t len;

		loopback(AF_INET, &ss, &len);
		peer_open_opts(e, &srv2, (struct sockaddr *)&ss, len, 0, 0);
	}
	srv2.close_at = 30;
	peer_addr(&srv2, &to, &tolen);
	assert_int_equal(send_pkts(&cli, &to, tolen, 0, 30, 1000, 1000), 0);
	w = (struct want){&srv2, 30};
	assert_true(run_until(e, got_n, &w, 5000));
	assert_int_equal(send_pkts(&cli, &to, tolen, 30, 30, 1000, 1000), 0);
	run_for(e, 20);
	assert_true(srv2.closed);
	assert_int_equal(srv2.npkts, 30);
	assert_int_equal(srv2.after_close, 0);
	peer_close(&cli);
}

/* Bad arguments, a busy port, and IPV6_V6ONLY: 0.0.0.0:P and [::]:P can be
 * bound side by side. */
static void open_errors(void **state)
{
	struct env *e = *state;
	struct wn_carrier_handler h = {.recv = h_recv};
	struct wn_carrier *c = NULL, *c2 = NULL, *c3 = NULL;
	struct sockaddr_storage ss, ss6, got;
	socklen_t len, len6, glen;
	struct {
		sa_family_t f;
		char p[20];
	} un = {AF_UNIX, "x"};

	assert_int_equal(wn_udp_wildcard(AF_UNIX, &ss, &len), WN_EINVAL);
	loopback(AF_INET, &ss, &len);
	assert_int_equal(wn_udp_carrier_open(&e->loop, &e->log,
	                                     (struct sockaddr *)&un, sizeof(un),
	                                     NULL, &h, &c),
	                 WN_EINVAL);
	assert_int_equal(wn_udp_carrier_open(&e->loop, &e->log,
	                                     (struct sockaddr *)&ss, 4, NULL,
	                                     &h, &c),
	                 WN_EINVAL);
	h.recv = NULL;
	assert_int_equal(wn_udp_carrier_open(&e->loop, &e->log,
	                                     (struct sockaddr *)&ss, len, NULL,
	                                     &h, &c),
	                 WN_EINVAL);
	h.recv = h_recv;
	assert_null(c);

	/* NULL opts: id 0, and no log needed. */
	assert_int_equal(wn_udp_carrier_open(&e->loop, NULL,
	                                     (struct sockaddr *)&ss, len, NULL,
	                                     &h, &c),
	                 0);
	assert_string_equal(c->name, "udp#0");
	assert_int_equal(c->ops->local_addr(c, &got, &glen), 0);
	assert_int_equal(glen, sizeof(struct sockaddr_in));
	assert_int_not_equal(((struct sockaddr_in *)&got)->sin_port, 0);
	/* Same address and port: in use. */
	assert_int_equal(wn_udp_carrier_open(&e->loop, &e->log,
	                                     (struct sockaddr *)&got, glen,
	                                     NULL, &h, &c2),
	                 WN_EADDRINUSE);
	/* Closed (its memory lives until the loop iterates): refused. */
	wn_carrier_close(c);
	assert_int_equal(wn_carrier_send(c, (struct sockaddr *)&got, glen,
	                                 (const uint8_t *)"x", 1, 1),
	                 WN_ECLOSED);
	assert_int_equal(c->ops->local_addr(c, &got, &glen), WN_ECLOSED);

	/* Wildcards of both families on one port. */
	assert_int_equal(wn_udp_wildcard(AF_INET, &ss, &len), 0);
	assert_int_equal(wn_udp_carrier_open(&e->loop, &e->log,
	                                     (struct sockaddr *)&ss, len, NULL,
	                                     &h, &c2),
	                 0);
	assert_int_equal(c2->ops->local_addr(c2, &got, &glen), 0);
	assert_int_equal(wn_udp_wildcard(AF_INET6, &ss6, &len6), 0);
	((struct sockaddr_in6 *)&ss6)->sin6_port =
	    ((struct sockaddr_in *)&got)->sin_port;
	assert_int_equal(wn_udp_carrier_open(&e->loop, &e->log,
	                                     (struct sockaddr *)&ss6, len6,
	                                     NULL, &h, &c3),
	                 0);
	assert_int_equal(wn_carrier_max_packet(c3), 1452);
	wn_carrier_close(c3);
	wn_carrier_close(c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(exchange_v4, setup, teardown),
	    cmocka_unit_test_setup_teardown(exchange_v6, setup, teardown),
	    cmocka_unit_test_setup_teardown(gso_batch_v4, setup, teardown),
	    cmocka_unit_test_setup_teardown(gso_batch_v6, setup, teardown),
	    cmocka_unit_test_setup_teardown(gso_batch_no_gro, setup, teardown),
	    cmocka_unit_test_setup_teardown(no_gso_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(burst_gso_gro, setup, teardown),
	    cmocka_unit_test_setup_teardown(burst_plain, setup, teardown),
	    cmocka_unit_test_setup_teardown(burst_10000, setup, teardown),
	    cmocka_unit_test_setup_teardown(closed_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(eagain_pending_gso, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(eagain_pending_mmsg, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(gso_fallback, setup, teardown),
	    cmocka_unit_test_setup_teardown(close_in_callbacks, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(open_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
