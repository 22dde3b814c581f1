/* Handshake admission: the global budget and its load mark, replays
 * recognised for free, per-source budgets for proven addresses, and a
 * bounded source table. Virtual time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "crypto/hsadmit.h"

#define T0 1000000

static struct wn_hsadmit *mk(void)
{
	static const uint8_t hkey[16] = {1, 2, 3};
	struct wn_hsadmit *a = malloc(sizeof(*a));
	assert_non_null(a);
	wn_hsadmit_init(a, hkey, T0);
	return a;
}

/* A distinct mac1 for each n. */
static const uint8_t *mac(uint32_t n)
{
	static uint8_t m[WN_PROTECT_MAC_LEN];
	memset(m, 0x5a, sizeof(m));
	memcpy(m, &n, sizeof(n));
	return m;
}

/* An address (port p) as a socket would report it. */
struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

static struct addr ip(const char *text, uint16_t p)
{
	struct addr a;
	memset(&a, 0, sizeof(a));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(p);
		a.len = sizeof(*s4);
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(p);
		a.len = sizeof(*s6);
	}
	return a;
}

#define SA(a) (const struct sockaddr *)&(a).ss, (a).len

static struct addr src_a, src_b;

static int setup(void **state)
{
	(void)state;
	src_a = ip("10.0.0.1", 4000);
	src_b = ip("10.0.0.2", 4000);
	return 0;
}

/* Without load, initiations without mac2 spend the global budget down to
 * the load mark; below it they get cookies, and the rate refills it. */
static void test_global_budget_and_load(void **state)
{
	(void)state;
	struct wn_hsadmit *a = mk();
	uint32_t n = 0;
	assert_false(wn_hsadmit_under_load(a, T0));
	for (int i = 0; i <= WN_HSADMIT_BURST - WN_HSADMIT_LOAD_MARK; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(n++), SA(src_a), false, T0),
		    WN_HSADMIT_GO);
	assert_true(wn_hsadmit_under_load(a, T0));
	assert_int_equal(wn_hsadmit_check(a, mac(n++), SA(src_a), false, T0),
	                 WN_HSADMIT_COOKIE);
	/* Cookies are free: a thousand of them change nothing. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(n++), SA(src_b), false, T0),
		    WN_HSADMIT_COOKIE);
	/* Ten tokens later (50 ms at 200/s) the load is over. */
	assert_int_equal(
	    wn_hsadmit_check(a, mac(n++), SA(src_a), false, T0 + 50),
	    WN_HSADMIT_GO);
	free(a);
}

/* The same bytes twice cost nothing the second time, whatever path they
 * came by: a replay spends neither the global budget nor a source's. */
static void test_replays_are_free(void **state)
{
	(void)state;
	struct wn_hsadmit *a = mk();
	assert_int_equal(wn_hsadmit_check(a, mac(1), SA(src_a), false, T0),
	                 WN_HSADMIT_GO);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(1), SA(src_b), false, T0),
		    WN_HSADMIT_REPLAY);
	assert_false(wn_hsadmit_under_load(a, T0));
	/* A captured initiation with a valid mac2, replayed from its
	 * sender's (spoofed) address: the sender's budget stays whole. */
	assert_int_equal(wn_hsadmit_check(a, mac(2), SA(src_a), true, T0),
	                 WN_HSADMIT_GO);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(2), SA(src_a), true, T0),
		    WN_HSADMIT_REPLAY);
	for (uint32_t i = 0; i < WN_HSADMIT_SRC_BURST - 1; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(100 + i), SA(src_a), true, T0),
		    WN_HSADMIT_GO);
	assert_int_equal(wn_hsadmit_check(a, mac(99), SA(src_a), true, T0),
	                 WN_HSADMIT_LIMIT);
	assert_int_equal(a->seen_hits, 20000);
	free(a);
}

/* Proven sources have budgets of their own: one that floods runs out,
 * another does not notice, and neither touches the global budget, even
 * under load. */
static void test_per_source_budgets(void **state)
{
	(void)state;
	struct wn_hsadmit *a = mk();
	uint32_t n = 0;
	/* Put the server under load. */
	while (!wn_hsadmit_under_load(a, T0))
		wn_hsadmit_check(a, mac(n++), SA(src_a), false, T0);
	for (int i = 0; i < WN_HSADMIT_SRC_BURST; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(n++), SA(src_a), true, T0),
		    WN_HSADMIT_GO);
	assert_int_equal(wn_hsadmit_check(a, mac(n++), SA(src_a), true, T0),
	                 WN_HSADMIT_LIMIT);
	assert_int_equal(wn_hsadmit_check(a, mac(n++), SA(src_b), true, T0),
	                 WN_HSADMIT_GO);
	/* The flooding source refills at its own rate: one per 100 ms. */
	assert_int_equal(
	    wn_hsadmit_check(a, mac(n++), SA(src_a), true, T0 + 50),
	    WN_HSADMIT_LIMIT);
	assert_int_equal(
	    wn_hsadmit_check(a, mac(n++), SA(src_a), true, T0 + 100),
	    WN_HSADMIT_GO);
	/* Ports are not part of the key: the same host from another port
	 * is the same (empty) bucket. */
	struct addr a2 = ip("10.0.0.1", 4001);
	assert_int_equal(wn_hsadmit_check(a, mac(n++), SA(a2), true, T0 + 100),
	                 WN_HSADMIT_LIMIT);
	/* An address that is not IP has no budget. */
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	assert_int_equal(wn_hsadmit_check(a, mac(n++), (struct sockaddr *)&un,
	                                  sizeof(un), true, T0),
	                 WN_HSADMIT_LIMIT);
	free(a);
}

/* Any number of sources fit in the fixed table: old ones make room, and
 * a source seen again recently keeps its (spent) bucket. */
static void test_source_table_bounded(void **state)
{
	(void)state;
	struct wn_hsadmit *a = mk();
	uint32_t n = 0;
	for (uint32_t i = 0; i < 20 * WN_HSADMIT_SOURCES; i++) {
		struct addr s = ip("172.16.0.0", 9);
		((struct sockaddr_in *)&s.ss)->sin_addr.s_addr =
		    htonl(0xac100000u + i);
		assert_int_equal(
		    wn_hsadmit_check(a, mac(n++), SA(s), true, T0 + i),
		    WN_HSADMIT_GO);
	}
	uint64_t t = T0 + 20 * WN_HSADMIT_SOURCES;
	for (int i = 0; i < WN_HSADMIT_SRC_BURST; i++)
		wn_hsadmit_check(a, mac(n++), SA(src_a), true, t);
	assert_int_equal(wn_hsadmit_check(a, mac(n++), SA(src_a), true, t),
	                 WN_HSADMIT_LIMIT);
	free(a);
}

/* A dual-stack server sees its IPv4 clients as IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d). Each is its own IPv4 host, as it would be on
 * an IPv4 socket: one proven host that spends its budget leaves every
 * other IPv4 client's alone. (Keyed as IPv6 /64s, they all shared the one
 * prefix ::ffff:0:0/64, and so one budget.) */
static void test_mapped_ipv4_sources(void **state)
{
	(void)state;
	struct wn_hsadmit *a = mk();
	uint32_t n = 0;
	struct addr m1 = ip("::ffff:192.0.2.1", 5000);
	struct addr m2 = ip("::ffff:198.51.100.7", 5000);
	struct addr v4 = ip("192.0.2.1", 6000);
	for (int i = 0; i < WN_HSADMIT_SRC_BURST; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(n++), SA(m1), true, T0),
		    WN_HSADMIT_GO);
	assert_int_equal(wn_hsadmit_check(a, mac(n++), SA(m1), true, T0),
	                 WN_HSADMIT_LIMIT);
	/* Another IPv4 host through the same dual-stack socket. */
	assert_int_equal(wn_hsadmit_check(a, mac(n++), SA(m2), true, T0),
	                 WN_HSADMIT_GO);
	/* The mapped address and the plain one are the same host. */
	assert_int_equal(wn_hsadmit_check(a, mac(n++), SA(v4), true, T0),
	                 WN_HSADMIT_LIMIT);
	/* IPv6 sources are still keyed by their /64. */
	struct addr h1 = ip("2001:db8:1:2::1", 1),
	            h2 = ip("2001:db8:1:2::99", 1);
	for (int i = 0; i < WN_HSADMIT_SRC_BURST; i++)
		assert_int_equal(
		    wn_hsadmit_check(a, mac(n++), SA(h1), true, T0),
		    WN_HSADMIT_GO);
	assert_int_equal(wn_hsadmit_check(a, mac(n++), SA(h2), true, T0),
	                 WN_HSADMIT_LIMIT);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_global_budget_and_load),
	    cmocka_unit_test(test_replays_are_free),
	    cmocka_unit_test(test_per_source_budgets),
	    cmocka_unit_test(test_source_table_bounded),
	    cmocka_unit_test(test_mapped_ipv4_sources),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
