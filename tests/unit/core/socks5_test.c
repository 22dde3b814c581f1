/* The SOCKS5 parser: every message, each split at every byte, and the
 * malformed inputs a client can send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "core/socks5.h"
#include "util/err.h"

/* Feeds msg in pieces of at most `step` bytes, each no larger than want,
 * as the front end reads. Returns the final event; checks that no byte
 * past the message is taken (msg is followed by 0xAA junk in buf). */
static enum wn_socks5_event feed_split(struct wn_socks5 *p, const uint8_t *msg,
                                       size_t n, size_t step,
                                       struct wn_socks5_out *out)
{
	uint8_t buf[WN_SOCKS5_MSG_MAX + 16];
	enum wn_socks5_event ev = WN_SOCKS5_MORE;
	size_t off = 0, used, chunk, want;

	memcpy(buf, msg, n);
	memset(buf + n, 0xAA, sizeof(buf) - n);
	while (ev == WN_SOCKS5_MORE) {
		want = wn_socks5_want(p);
		assert_true(want > 0);
		assert_true(off + want <= n); /* never asks past the message */
		chunk = want < step ? want : step;
		ev = wn_socks5_feed(p, buf + off, chunk, &used, out);
		assert_true(used <= chunk);
		off += used;
		if (ev == WN_SOCKS5_MORE)
			assert_int_equal(used, chunk);
	}
	/* Even handed everything at once, it stops at the message's end. */
	return ev;
}

static void handshake_noauth(void **state)
{
	(void)state;
	const uint8_t greet[] = {5, 2, 0, 2};
	const uint8_t req[] = {5,   1,   0,   3,   11,  'e', 'x', 'a',  'm',
	                       'p', 'l', 'e', '.', 'o', 'r', 'g', 0x1f, 0x90};
	struct wn_socks5 p;
	struct wn_socks5_out out;

	for (size_t step = 1; step <= sizeof(req); step++) {
		wn_socks5_init(&p, false);
		assert_int_equal(p.state, WN_SOCKS5_GREETING);
		assert_int_equal(
		    feed_split(&p, greet, sizeof(greet), step, &out),
		    WN_SOCKS5_SEND);
		assert_int_equal(out.len, 2);
		assert_int_equal(out.buf[0], 5);
		assert_int_equal(out.buf[1], 0);
		assert_int_equal(p.state, WN_SOCKS5_REQUEST);
		assert_int_equal(feed_split(&p, req, sizeof(req), step, &out),
		                 WN_SOCKS5_CONNECT);
		assert_int_equal(p.state, WN_SOCKS5_DONE);
		assert_int_equal(wn_socks5_want(&p), 0);
		assert_int_equal(p.target.kind, WN_HOST_NAME);
		assert_string_equal(p.target.host, "example.org");
		assert_int_equal(p.target.port, 8080);
	}
}

static void whole_buffer_stops_at_message_end(void **state)
{
	(void)state;
	/* A pipelining client: greeting, request and data in one read. */
	const uint8_t all[] = {5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 5, 0, 22, 'G'};
	struct wn_socks5 p;
	struct wn_socks5_out out;
	size_t used;

	wn_socks5_init(&p, false);
	assert_int_equal(wn_socks5_feed(&p, all, sizeof(all), &used, &out),
	                 WN_SOCKS5_SEND);
	assert_int_equal(used, 3);
	assert_int_equal(
	    wn_socks5_feed(&p, all + 3, sizeof(all) - 3, &used, &out),
	    WN_SOCKS5_CONNECT);
	assert_int_equal(used, 10); /* 'G' is the application's */
	assert_int_equal(p.target.kind, WN_HOST_IP);
	assert_string_equal(p.target.host, "10.0.0.5");
	assert_int_equal(p.target.port, 22);
	/* Nothing more is taken once done. */
	assert_int_equal(wn_socks5_feed(&p, all + 13, 1, &used, &out),
	                 WN_SOCKS5_FAIL);
	assert_int_equal(used, 0);
}

static void ipv6_and_literal_names(void **state)
{
	(void)state;
	const uint8_t greet[] = {5, 1, 0};
	const uint8_t v6[] = {5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,
	                      0, 0, 0, 0, 0,    0,    0,    0,    1, 1, 0xbb};
	const uint8_t name4[] = {5,   1,   0,   3,   9,   '1', '2', '7',
	                         '.', '0', '.', '0', '.', '1', 0,   80};
	const uint8_t name6[] = {5, 1, 0, 3, 3, ':', ':', '1', 0, 80};
	struct wn_socks5 p;
	struct wn_socks5_out out;

	wn_socks5_init(&p, false);
	assert_int_equal(feed_split(&p, greet, 3, 8, &out), WN_SOCKS5_SEND);
	assert_int_equal(feed_split(&p, v6, sizeof(v6), 7, &out),
	                 WN_SOCKS5_CONNECT);
	assert_int_equal(p.target.kind, WN_HOST_IP);
	assert_int_equal(p.target.sa.ss_family, AF_INET6);
	assert_string_equal(p.target.host, "2001:db8::1");
	assert_int_equal(p.target.port, 443);

	wn_socks5_init(&p, false);
	assert_int_equal(feed_split(&p, greet, 3, 8, &out), WN_SOCKS5_SEND);
	assert_int_equal(feed_split(&p, name4, sizeof(name4), 3, &out),
	                 WN_SOCKS5_CONNECT);
	assert_int_equal(p.target.kind, WN_HOST_IP);
	assert_int_equal(p.target.sa.ss_family, AF_INET);
	assert_int_equal(p.target.port, 80);

	wn_socks5_init(&p, false);
	assert_int_equal(feed_split(&p, greet, 3, 8, &out), WN_SOCKS5_SEND);
	assert_int_equal(feed_split(&p, name6, sizeof(name6), 1, &out),
	                 WN_SOCKS5_CONNECT);
	assert_int_equal(p.target.kind, WN_HOST_IP);
	assert_int_equal(p.target.sa.ss_family, AF_INET6);
}

static void userpass(void **state)
{
	(void)state;
	const uint8_t greet[] = {5, 2, 0, 2};
	const uint8_t au[] = {1, 5, 'a', 'l', 'i', 'c', 'e', 3, 'p', 'w', 'd'};
	const uint8_t req[] = {5, 1, 0, 1, 127, 0, 0, 1, 0, 80};
	struct wn_socks5 p;
	struct wn_socks5_out out;

	for (size_t step = 1; step <= sizeof(au); step++) {
		wn_socks5_init(&p, true);
		assert_int_equal(
		    feed_split(&p, greet, sizeof(greet), step, &out),
		    WN_SOCKS5_SEND);
		assert_int_equal(out.buf[1], WN_SOCKS5_METHOD_USERPASS);
		assert_int_equal(p.state, WN_SOCKS5_AUTH);
		assert_int_equal(feed_split(&p, au, sizeof(au), step, &out),
		                 WN_SOCKS5_CHECK_AUTH);
		assert_string_equal(p.user, "alice");
		assert_int_equal(p.user_len, 5);
		assert_string_equal(p.pass, "pwd");
		assert_int_equal(wn_socks5_want(&p), 0);
		assert_int_equal(wn_socks5_auth_done(&p, true, &out),
		                 WN_SOCKS5_SEND);
		assert_int_equal(out.len, 2);
		assert_int_equal(out.buf[0], 1);
		assert_int_equal(out.buf[1], 0);
		assert_int_equal(p.pass[0], 0); /* wiped */
		assert_int_equal(feed_split(&p, req, sizeof(req), step, &out),
		                 WN_SOCKS5_CONNECT);
	}
	/* Wrong credentials: failure status, then close. */
	wn_socks5_init(&p, true);
	assert_int_equal(feed_split(&p, greet, sizeof(greet), 4, &out),
	                 WN_SOCKS5_SEND);
	assert_int_equal(feed_split(&p, au, sizeof(au), 4, &out),
	                 WN_SOCKS5_CHECK_AUTH);
	assert_int_equal(wn_socks5_auth_done(&p, false, &out), WN_SOCKS5_FAIL);
	assert_int_equal(out.len, 2);
	assert_int_equal(out.buf[1], WN_SOCKS5_AUTH_FAILED);
	assert_int_equal(p.state, WN_SOCKS5_FAILED);
	/* An empty password is a password (some clients send one). */
	const uint8_t au0[] = {1, 1, 'u', 0};
	wn_socks5_init(&p, true);
	assert_int_equal(feed_split(&p, greet, sizeof(greet), 4, &out),
	                 WN_SOCKS5_SEND);
	assert_int_equal(feed_split(&p, au0, sizeof(au0), 1, &out),
	                 WN_SOCKS5_CHECK_AUTH);
	assert_int_equal(p.pass_len, 0);
	/* Longest credentials fit. */
	uint8_t big[3 + 255 + 255];
	big[0] = 1;
	big[1] = 255;
	memset(big + 2, 'u', 255);
	big[257] = 255;
	memset(big + 258, 'p', 255);
	wn_socks5_init(&p, true);
	assert_int_equal(feed_split(&p, greet, sizeof(greet), 4, &out),
	                 WN_SOCKS5_SEND);
	assert_int_equal(feed_split(&p, big, sizeof(big), 100, &out),
	                 WN_SOCKS5_CHECK_AUTH);
	assert_int_equal(p.user_len, 255);
	assert_int_equal(p.pass_len, 255);
}

/* method selection: the client must offer the method configured. */
static void methods(void **state)
{
	(void)state;
	const uint8_t only_none[] = {5, 1, 0};
	const uint8_t only_pass[] = {5, 1, 2};
	const uint8_t none_at_all[] = {5, 0};
	struct wn_socks5 p;
	struct wn_socks5_out out;

	wn_socks5_init(&p, true);
	assert_int_equal(feed_split(&p, only_none, 3, 3, &out), WN_SOCKS5_FAIL);
	assert_int_equal(out.len, 2);
	assert_int_equal(out.buf[1], WN_SOCKS5_METHOD_UNACCEPTABLE);

	wn_socks5_init(&p, false);
	assert_int_equal(feed_split(&p, only_pass, 3, 3, &out), WN_SOCKS5_FAIL);
	assert_int_equal(out.buf[1], WN_SOCKS5_METHOD_UNACCEPTABLE);

	wn_socks5_init(&p, false);
	assert_int_equal(feed_split(&p, none_at_all, 2, 1, &out),
	                 WN_SOCKS5_FAIL);
	assert_int_equal(out.buf[1], WN_SOCKS5_METHOD_UNACCEPTABLE);
	assert_int_equal(wn_socks5_want(&p), 0);
}

struct bad_request {
	const char *what;
	uint8_t msg[24];
	size_t n;
	uint8_t rep;    /* 0xff: closed without a reply */
	size_t fail_at; /* bytes taken when it fails */
};

static void malformed(void **state)
{
	(void)state;
	const uint8_t greet[] = {5, 1, 0};
	static const struct bad_request reqs[] = {
	    {"version 4", {4, 1, 0, 1, 1, 2, 3, 4, 0, 80}, 10, 1, 1},
	    {"bind", {5, 2, 0, 1, 1, 2, 3, 4, 0, 80}, 10, 7, 2},
	    {"udp associate", {5, 3, 0, 1, 1, 2, 3, 4, 0, 80}, 10, 7, 2},
	    {"command 9", {5, 9, 0, 1}, 4, 7, 2},
	    {"atyp 2", {5, 1, 0, 2, 1, 2, 3, 4, 0, 80}, 10, 8, 4},
	    {"atyp 0", {5, 1, 0, 0}, 4, 8, 4},
	    {"empty name", {5, 1, 0, 3, 0, 0, 80}, 7, 1, 5},
	    {"bad name", {5, 1, 0, 3, 3, 'a', '_', 'b', 0, 80}, 10, 4, 10},
	    {"port 0", {5, 1, 0, 1, 1, 2, 3, 4, 0, 0}, 10, 4, 10},
	};
	struct wn_socks5 p;
	struct wn_socks5_out out;
	size_t used;

	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		const struct bad_request *r = &reqs[i];

		wn_socks5_init(&p, false);
		assert_int_equal(feed_split(&p, greet, 3, 3, &out),
		                 WN_SOCKS5_SEND);
		assert_int_equal(wn_socks5_feed(&p, r->msg, r->n, &used, &out),
		                 WN_SOCKS5_FAIL);
		assert_int_equal(used, r->fail_at);
		assert_non_null(p.error);
		assert_int_equal(out.len, 10);
		assert_int_equal(out.buf[0], 5);
		assert_int_equal(out.buf[1], r->rep);
		assert_int_equal(p.state, WN_SOCKS5_FAILED);
		assert_int_equal(wn_socks5_want(&p), 0);
	}
	/* Not SOCKS5 at all: close without a word. */
	const uint8_t socks4[] = {4, 1, 0, 80, 127, 0, 0, 1, 0};
	const uint8_t http[] = "GET / HTTP/1.1\r\n";
	wn_socks5_init(&p, false);
	assert_int_equal(
	    wn_socks5_feed(&p, socks4, sizeof(socks4), &used, &out),
	    WN_SOCKS5_FAIL);
	assert_int_equal(out.len, 0);
	assert_int_equal(used, 1);
	wn_socks5_init(&p, false);
	assert_int_equal(wn_socks5_feed(&p, http, sizeof(http), &used, &out),
	                 WN_SOCKS5_FAIL);
	/* Bad auth version, empty user. */
	const uint8_t greet2[] = {5, 1, 2};
	const uint8_t badver[] = {5, 1, 'u', 1, 'p'};
	const uint8_t nouser[] = {1, 0, 1, 'p'};
	wn_socks5_init(&p, true);
	assert_int_equal(feed_split(&p, greet2, 3, 3, &out), WN_SOCKS5_SEND);
	assert_int_equal(
	    wn_socks5_feed(&p, badver, sizeof(badver), &used, &out),
	    WN_SOCKS5_FAIL);
	assert_int_equal(out.buf[1], WN_SOCKS5_AUTH_FAILED);
	wn_socks5_init(&p, true);
	assert_int_equal(feed_split(&p, greet2, 3, 3, &out), WN_SOCKS5_SEND);
	assert_int_equal(
	    wn_socks5_feed(&p, nouser, sizeof(nouser), &used, &out),
	    WN_SOCKS5_FAIL);
	assert_int_equal(used, 2);
	/* A verdict when none was asked for. */
	wn_socks5_init(&p, false);
	assert_int_equal(wn_socks5_auth_done(&p, true, &out), WN_SOCKS5_FAIL);
}

/* Longest name: 253 bytes works, 254 and 255 are refused before any byte
 * lands past the target's name buffer. */
static void long_names(void **state)
{
	(void)state;
	const uint8_t greet[] = {5, 1, 0};
	uint8_t req[5 + 255 + 2];
	struct wn_socks5 p;
	struct wn_socks5_out out;

	for (int n = 253; n <= 255; n++) {
		req[0] = 5;
		req[1] = 1;
		req[2] = 0;
		req[3] = 3;
		req[4] = (uint8_t)n;
		for (int i = 0; i < n; i++)
			req[5 + i] = (i % 64 == 63) ? '.' : 'a';
		req[5 + n] = 0;
		req[6 + n] = 80;
		wn_socks5_init(&p, false);
		assert_int_equal(feed_split(&p, greet, 3, 3, &out),
		                 WN_SOCKS5_SEND);
		enum wn_socks5_event ev =
		    feed_split(&p, req, (size_t)n + 7, 300, &out);
		if (n == 253) {
			assert_int_equal(ev, WN_SOCKS5_CONNECT);
			assert_int_equal(strlen(p.target.host), 253);
		} else {
			assert_int_equal(ev, WN_SOCKS5_FAIL);
			assert_int_equal(out.buf[1],
			                 WN_SOCKS5_REP_HOST_UNREACHABLE);
		}
	}
}

static void replies(void **state)
{
	(void)state;
	struct wn_socks5_out out;
	const uint8_t ok[] = {5, 0, 0, 1, 0, 0, 0, 0, 0, 0};

	wn_socks5_reply(WN_SOCKS5_REP_SUCCEEDED, &out);
	assert_int_equal(out.len, sizeof(ok));
	assert_memory_equal(out.buf, ok, sizeof(ok));
	wn_socks5_reply(WN_SOCKS5_REP_REFUSED, &out);
	assert_int_equal(out.buf[1], 5);
}

/* UDP ASSOCIATE is refused unless enabled; enabled, it returns the
 * client's announced address, with port 0 allowed (the client may not
 * know its port yet), as a UDP endpoint. */
static void udp_associate_request(void **state)
{
	(void)state;
	const uint8_t greet[] = {5, 1, 0};
	const uint8_t req[] = {5, 3, 0, 1, 0, 0, 0, 0, 0, 0};
	const uint8_t req6[] = {5, 3, 0, 4, 0, 0, 0, 0, 0, 0,    0,
	                        0, 0, 0, 0, 0, 0, 0, 0, 1, 0x30, 0x39};
	struct wn_socks5 p;
	struct wn_socks5_out out;
	size_t used;

	wn_socks5_init(&p, false);
	assert_int_equal(feed_split(&p, greet, 3, 3, &out), WN_SOCKS5_SEND);
	assert_int_equal(wn_socks5_feed(&p, req, sizeof(req), &used, &out),
	                 WN_SOCKS5_FAIL);
	assert_int_equal(out.buf[1], WN_SOCKS5_REP_CMD_UNSUPPORTED);

	for (size_t step = 1; step <= sizeof(req6); step++) {
		wn_socks5_init(&p, false);
		wn_socks5_enable_udp(&p);
		assert_int_equal(feed_split(&p, greet, 3, step, &out),
		                 WN_SOCKS5_SEND);
		assert_int_equal(feed_split(&p, req, sizeof(req), step, &out),
		                 WN_SOCKS5_UDP_ASSOCIATE);
		assert_int_equal(p.state, WN_SOCKS5_DONE);
		assert_int_equal(p.target.scheme, WN_SCHEME_UDP);
		assert_int_equal(p.target.kind, WN_HOST_IP);
		assert_int_equal(p.target.port, 0);
		assert_string_equal(p.target.host, "0.0.0.0");
		assert_int_equal(wn_socks5_want(&p), 0);

		wn_socks5_init(&p, false);
		wn_socks5_enable_udp(&p);
		assert_int_equal(feed_split(&p, greet, 3, step, &out),
		                 WN_SOCKS5_SEND);
		assert_int_equal(feed_split(&p, req6, sizeof(req6), step, &out),
		                 WN_SOCKS5_UDP_ASSOCIATE);
		assert_string_equal(p.target.host, "::1");
		assert_int_equal(p.target.port, 12345);
	}
	/* CONNECT still refuses port 0 with UDP enabled. */
	const uint8_t conn0[] = {5, 1, 0, 1, 1, 2, 3, 4, 0, 0};
	wn_socks5_init(&p, false);
	wn_socks5_enable_udp(&p);
	assert_int_equal(feed_split(&p, greet, 3, 3, &out), WN_SOCKS5_SEND);
	assert_int_equal(wn_socks5_feed(&p, conn0, sizeof(conn0), &used, &out),
	                 WN_SOCKS5_FAIL);
	assert_int_equal(out.buf[1], WN_SOCKS5_REP_HOST_UNREACHABLE);
	/* BIND stays unsupported. */
	const uint8_t bind[] = {5, 2, 0, 1, 1, 2, 3, 4, 0, 80};
	wn_socks5_init(&p, false);
	wn_socks5_enable_udp(&p);
	assert_int_equal(feed_split(&p, greet, 3, 3, &out), WN_SOCKS5_SEND);
	assert_int_equal(wn_socks5_feed(&p, bind, sizeof(bind), &used, &out),
	                 WN_SOCKS5_FAIL);
	assert_int_equal(out.buf[1], WN_SOCKS5_REP_CMD_UNSUPPORTED);
}

/* The UDP ASSOCIATE reply names the relay socket: IPv4, IPv6, and an
 * IPv4-mapped IPv6 address written as IPv4. */
static void reply_with_address(void **state)
{
	(void)state;
	struct wn_socks5_out out;
	struct sockaddr_in a4 = {.sin_family = AF_INET,
	                         .sin_port = htons(40000)};
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
	                          .sin6_port = htons(40001)};
	const uint8_t want4[] = {5, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x40};
	const uint8_t want6[] = {5, 0, 0, 4, 0x20, 0x01, 0x0d, 0xb8,
	                         0, 0, 0, 0, 0,    0,    0,    0,
	                         0, 0, 0, 7, 0x9c, 0x41};
	const uint8_t wantm[] = {5, 0, 0, 1, 10, 1, 2, 3, 0x9c, 0x41};

	inet_pton(AF_INET, "127.0.0.1", &a4.sin_addr);
	wn_socks5_reply_addr(WN_SOCKS5_REP_SUCCEEDED, (struct sockaddr *)&a4,
	                     &out);
	assert_int_equal(out.len, sizeof(want4));
	assert_memory_equal(out.buf, want4, sizeof(want4));
	inet_pton(AF_INET6, "2001:db8::7", &a6.sin6_addr);
	wn_socks5_reply_addr(WN_SOCKS5_REP_SUCCEEDED, (struct sockaddr *)&a6,
	                     &out);
	assert_int_equal(out.len, sizeof(want6));
	assert_int_equal(out.len, WN_SOCKS5_OUT_MAX);
	assert_memory_equal(out.buf, want6, sizeof(want6));
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &a6.sin6_addr);
	wn_socks5_reply_addr(WN_SOCKS5_REP_SUCCEEDED, (struct sockaddr *)&a6,
	                     &out);
	assert_int_equal(out.len, sizeof(wantm));
	assert_memory_equal(out.buf, wantm, sizeof(wantm));
}

/* Datagram headers from the client: each address type, the data offset,
 * and everything that must be dropped. */
static void udp_header_parse(void **state)
{
	(void)state;
	struct wn_endpoint d;
	const char *why;
	const uint8_t v4[] = {0, 0, 0, 1, 10, 0, 0, 9, 0, 53, 'q', 'q'};
	const uint8_t v6[] = {0, 0, 0, 4, 0, 0, 0, 0, 0, 0,  0,  0,
	                      0, 0, 0, 0, 0, 0, 0, 1, 0, 53, 'x'};
	const uint8_t name[] = {0,   0,   0,   3,   11,  'e', 'x', 'a', 'm',
	                        'p', 'l', 'e', '.', 'o', 'r', 'g', 1,   0};
	const uint8_t lit[] = {0,   0,   0,   3,   8,   '1', '0', '.',
	                       '0', '.', '0', '.', '9', 0,   53};
	/* Reserved bytes are not checked (RFC 1928 gives them no use). */
	const uint8_t rsv[] = {0xff, 0xff, 0, 1, 10, 0, 0, 9, 0, 53};

	assert_int_equal(wn_socks5_udp_parse(v4, sizeof(v4), &d, &why), 10);
	assert_int_equal(d.scheme, WN_SCHEME_UDP);
	assert_int_equal(d.kind, WN_HOST_IP);
	assert_string_equal(d.host, "10.0.0.9");
	assert_int_equal(d.port, 53);
	assert_int_equal(((struct sockaddr_in *)&d.sa)->sin_port, htons(53));
	assert_int_equal(wn_socks5_udp_parse(v6, sizeof(v6), &d, &why), 22);
	assert_string_equal(d.host, "::1");
	assert_int_equal(wn_socks5_udp_parse(name, sizeof(name), &d, &why),
	                 sizeof(name));
	assert_int_equal(d.kind, WN_HOST_NAME);
	assert_string_equal(d.host, "example.org");
	assert_int_equal(d.port, 256);
	assert_int_equal(wn_socks5_udp_parse(lit, sizeof(lit), &d, &why),
	                 sizeof(lit));
	assert_int_equal(d.kind, WN_HOST_IP);
	assert_int_equal(d.sa.ss_family, AF_INET);
	assert_int_equal(wn_socks5_udp_parse(rsv, sizeof(rsv), &d, &why), 10);

	/* Drops: a fragment, unknown type, short, port 0, bad names. */
	const struct {
		uint8_t pkt[16];
		size_t n;
		int err;
	} bad[] = {
	    {{0, 0, 1, 1, 10, 0, 0, 9, 0, 53}, 10, WN_ENOTSUP},
	    {{0, 0, 0x80, 1, 10, 0, 0, 9, 0, 53}, 10, WN_ENOTSUP},
	    {{0, 0, 0, 2, 10, 0, 0, 9, 0, 53}, 10, WN_ENOTSUP},
	    {{0, 0, 0, 1, 10, 0, 0, 9, 0}, 9, WN_ETRUNC},
	    {{0, 0, 0}, 3, WN_ETRUNC},
	    {{0}, 0, WN_ETRUNC},
	    {{0, 0, 0, 4, 0, 0}, 6, WN_ETRUNC},
	    {{0, 0, 0, 3, 5, 'a', 'b'}, 7, WN_ETRUNC},
	    {{0, 0, 0, 1, 10, 0, 0, 9, 0, 0}, 10, WN_EINVAL},
	    {{0, 0, 0, 3, 0, 0, 53}, 7, WN_EINVAL},
	    {{0, 0, 0, 3, 3, 'a', '_', 'b', 0, 53}, 10, WN_EINVAL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(
		    wn_socks5_udp_parse(bad[i].pkt, bad[i].n, &d, &why),
		    bad[i].err);
		assert_non_null(why);
	}
	/* A 254-byte name is refused before it is copied. */
	uint8_t longname[4 + 1 + 254 + 2];
	memset(longname, 'a', sizeof(longname));
	longname[0] = longname[1] = longname[2] = 0;
	longname[3] = 3;
	longname[4] = 254;
	assert_int_equal(
	    wn_socks5_udp_parse(longname, sizeof(longname), &d, &why),
	    WN_EINVAL);
}

/* Headers on replies to the client: the source as an address or a name,
 * each parsing back to itself; a short buffer is refused. */
static void udp_header_encode(void **state)
{
	(void)state;
	struct wn_endpoint src, back;
	uint8_t buf[WN_SOCKS5_UDP_HDR_MAX];
	const char *why;
	const uint8_t want4[] = {0, 0, 0, 1, 10, 0, 0, 9, 0, 53};
	struct sockaddr_in *a4 = (struct sockaddr_in *)&src.sa;

	memset(&src, 0, sizeof(src));
	src.scheme = WN_SCHEME_UDP;
	src.kind = WN_HOST_IP;
	a4->sin_family = AF_INET;
	a4->sin_port = htons(53);
	inet_pton(AF_INET, "10.0.0.9", &a4->sin_addr);
	src.salen = sizeof(*a4);
	src.port = 53;
	assert_int_equal(wn_socks5_udp_header(&src, buf, sizeof(buf)), 10);
	assert_memory_equal(buf, want4, sizeof(want4));
	assert_int_equal(wn_socks5_udp_header(&src, buf, 9), WN_ENOSPC);

	memset(&src, 0, sizeof(src));
	src.scheme = WN_SCHEME_UDP;
	src.kind = WN_HOST_NAME;
	strcpy(src.host, "dns.example");
	src.port = 5353;
	assert_int_equal(wn_socks5_udp_header(&src, buf, sizeof(buf)),
	                 4 + 1 + 11 + 2);
	assert_int_equal(buf[3], WN_SOCKS5_ATYP_NAME);
	assert_int_equal(wn_socks5_udp_parse(buf, 18, &back, &why), 18);
	assert_string_equal(back.host, "dns.example");
	assert_int_equal(back.port, 5353);
	assert_int_equal(wn_socks5_udp_header(&src, buf, 17), WN_ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(handshake_noauth),
	    cmocka_unit_test(whole_buffer_stops_at_message_end),
	    cmocka_unit_test(ipv6_and_literal_names),
	    cmocka_unit_test(userpass),
	    cmocka_unit_test(methods),
	    cmocka_unit_test(malformed),
	    cmocka_unit_test(long_names),
	    cmocka_unit_test(replies),
	    cmocka_unit_test(udp_associate_request),
	    cmocka_unit_test(reply_with_address),
	    cmocka_unit_test(udp_header_parse),
	    cmocka_unit_test(udp_header_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
