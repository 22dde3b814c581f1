#include <arpa/inet.h>
#include <netdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/policy.h"
#include "util/err.h"

static struct wn_allow_rule rule(const char *s)
{
	struct wn_allow_rule r;
	const char *why = NULL;
	if (wn_allow_rule_parse(s, &r, &why) != 0)
		fail_msg("rule %s rejected: %s", s, why);
	return r;
}

static bool allows(const char *rule_s, const char *target)
{
	struct wn_allow_rule r = rule(rule_s);
	struct wn_endpoint t;
	const char *why = NULL;
	if (wn_endpoint_parse(target, WN_SCHEME_TCP | WN_SCHEME_UNIX,
	                      WN_SCHEME_TCP, 0, &t, &why) != 0)
		fail_msg("target %s rejected: %s", target, why);
	return wn_allow_rule_match(&r, &t);
}

static void test_cidr_and_ports(void **state)
{
	(void)state;
	assert_true(allows("10.0.0.0/8:22", "10.1.2.3:22"));
	assert_false(allows("10.0.0.0/8:22", "10.1.2.3:23"));
	assert_false(allows("10.0.0.0/8:22", "11.0.0.1:22"));
	assert_true(allows("192.168.1.0/25:1000-2000", "192.168.1.127:1500"));
	assert_false(allows("192.168.1.0/25:1000-2000", "192.168.1.128:1500"));
	assert_false(allows("192.168.1.0/25:1000-2000", "192.168.1.1:2001"));
	assert_true(allows("127.0.0.1:*", "127.0.0.1:65535"));
	assert_false(allows("127.0.0.1:*", "127.0.0.2:80"));
	assert_true(allows("0.0.0.0/0:443", "8.8.8.8:443"));
	/* v4 rule never matches a v6 target and vice versa */
	assert_false(allows("0.0.0.0/0:443", "[::1]:443"));
	assert_true(allows("[fd00::/8]:22", "[fd12::1]:22"));
	assert_true(allows("[fd00::]/8:22", "[fd12::1]:22"));
	assert_false(allows("[fd00::/8]:22", "[fe80::1]:22"));
	assert_true(allows("[::1]:80", "[::1]:80"));
	assert_false(allows("[::1]:80", "127.0.0.1:80"));
}

static void test_names_and_wildcards(void **state)
{
	(void)state;
	assert_true(allows("db.internal:5432", "DB.Internal:5432"));
	assert_false(allows("db.internal:5432", "db.internal.evil:5432"));
	assert_true(allows("*.example.org:443", "a.b.example.org:443"));
	assert_false(allows("*.example.org:443", "example.org:443"));
	assert_false(allows("*.example.org:443", "badexample.org:443"));
	assert_true(allows("*:80", "anything.example:80"));
	assert_true(allows("*:80", "1.2.3.4:80"));
	assert_false(allows("*:80", "1.2.3.4:81"));
	/* A name rule never matches an address (and vice versa): the dialer
	 * checks resolved addresses against address rules. */
	assert_false(allows("localhost:80", "127.0.0.1:80"));
	assert_false(allows("127.0.0.0/8:80", "localhost:80"));
}

static void test_unix_rules(void **state)
{
	(void)state;
	assert_true(allows("unix:/run/app.sock", "unix:/run/app.sock"));
	assert_false(allows("unix:/run/app.sock", "unix:/run/app.sock2"));
	assert_false(allows("unix:/run/app.sock", "127.0.0.1:80"));
	assert_false(allows("*:*", "unix:/run/app.sock"));
	assert_true(allows("unix:/run/warren/*", "unix:/run/warren/a.sock"));
	assert_false(allows("unix:/run/warren/*", "unix:/run/warren/d/a.sock"));
	assert_false(allows("unix:/run/warren/*", "unix:/run/warren/.."));
	assert_false(allows("unix:/run/warren/*", "unix:/run/warren/"));
	assert_false(allows("unix:/run/warren/*", "unix:/run/warrenX/a"));
}

static void test_bad_rules(void **state)
{
	(void)state;
	const char *bad[] = {
	    "",
	    "10.0.0.0/8",
	    "10.0.0.0/33:22",
	    "10.0.0.0/8:0",
	    "host:70000",
	    "host:5-4",
	    "host:a-b",
	    "[fd00::/129]:1",
	    "[fd00::1:1",
	    "[fd00::]x:1",
	    "*.:1",
	    "bad_name:1",
	    "unix:rel",
	    "unix:",
	    ":22",
	    "1.2.3:22",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wn_allow_rule r;
		const char *why = NULL;
		if (wn_allow_rule_parse(bad[i], &r, &why) != WN_EINVAL)
			fail_msg("rule \"%s\" accepted", bad[i]);
		assert_non_null(why);
	}
}

/* ---- the verdict over a rule list (the dialer's policy) --------------- */

static struct wn_endpoint target(const char *s)
{
	struct wn_endpoint t;
	const char *why = NULL;
	if (wn_endpoint_parse(s, WN_SCHEME_TCP | WN_SCHEME_UNIX, WN_SCHEME_TCP,
	                      0, &t, &why) != 0)
		fail_msg("target %s rejected: %s", s, why);
	return t;
}

/* The server's own addresses in the tests below: one IPv4, one IPv6. */
static struct sockaddr_storage self_addrs[2];
static const struct wn_policy_self self = {.addrs = self_addrs, .n = 2};

static void self_init(void)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)&self_addrs[0];
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&self_addrs[1];

	a4->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "203.0.113.5", &a4->sin_addr), 1);
	a4->sin_port = htons(4433); /* the guard ignores ports */
	a6->sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::5", &a6->sin6_addr), 1);
}

static enum wn_verdict judge(const char *const *rules, size_t n,
                             const char *tgt)
{
	struct wn_allow_rule r[8];
	struct wn_endpoint t = target(tgt);

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		r[i] = rule(rules[i]);
	if (t.kind == WN_HOST_IP)
		wn_policy_unmap_v4(&t.sa);
	self_init();
	return wn_policy_judge(r, n, &self, &t);
}

static void test_judge(void **state)
{
	static const char *const rules[] = {"db.internal:5432",
	                                    "10.0.0.0/8:80-90", "[::1]:22"};
	(void)state;
	/* Names: a name rule allows outright; an address rule covering the
	 * port allows only the addresses it resolves to; else deny. */
	assert_int_equal(judge(rules, 3, "db.internal:5432"), WN_VERDICT_ALLOW);
	assert_int_equal(judge(rules, 3, "web.example:80"),
	                 WN_VERDICT_ALLOW_ADDRESSES);
	assert_int_equal(judge(rules, 3, "web.example:91"), WN_VERDICT_DENY);
	assert_int_equal(judge(rules, 3, "db.internal:5433"), WN_VERDICT_DENY);
	/* Literals: matched by the address rules. */
	assert_int_equal(judge(rules, 3, "10.9.9.9:85"), WN_VERDICT_ALLOW);
	assert_int_equal(judge(rules, 3, "11.0.0.1:85"), WN_VERDICT_DENY);
	assert_int_equal(judge(rules, 3, "[::1]:22"), WN_VERDICT_ALLOW);
	/* No rules: default deny. */
	assert_int_equal(judge(rules, 0, "10.9.9.9:85"), WN_VERDICT_DENY);
}

static void test_judge_unspecified_and_mapped(void **state)
{
	static const char *const any[] = {"*:*", "0.0.0.0/0:*", "[::]/0:*"};
	static const char *const v6[] = {"[::]/0:*"};
	(void)state;
	/* "Any address" never means this host through 0.0.0.0 or ::. */
	assert_int_equal(judge(any, 3, "0.0.0.0:80"), WN_VERDICT_DENY);
	assert_int_equal(judge(any, 3, "[::]:80"), WN_VERDICT_DENY);
	/* An IPv4-mapped address is judged as the IPv4 address it reaches,
	 * so a rule for all of IPv6 does not open IPv4 loopback. */
	assert_int_equal(judge(v6, 1, "[::ffff:127.0.0.1]:80"),
	                 WN_VERDICT_DENY);
	assert_int_equal(judge(v6, 1, "[::2]:80"), WN_VERDICT_ALLOW);
	assert_int_equal(judge(any, 3, "[::ffff:0.0.0.0]:80"), WN_VERDICT_DENY);
}

static bool guarded(const char *tgt)
{
	struct wn_endpoint t = target(tgt);

	self_init();
	return wn_policy_guarded(&t.sa, &self);
}

/* The default deny list: this host, loopback, link-local and the
 * server's own addresses; private ranges and the rest are not in it. */
static void test_guarded(void **state)
{
	(void)state;
	assert_true(guarded("127.0.0.1:80"));
	assert_true(guarded("127.255.0.9:80"));
	assert_true(guarded("0.0.0.0:80"));
	assert_true(guarded("0.1.2.3:80"));
	assert_true(guarded("169.254.169.254:80"));
	assert_true(guarded("[::1]:80"));
	assert_true(guarded("[::]:80"));
	assert_true(guarded("[fe80::1]:80"));
	assert_true(guarded("[febf::1]:80"));
	assert_true(guarded("203.0.113.5:22"));
	assert_true(guarded("[2001:db8::5]:22"));
	assert_false(guarded("128.0.0.1:80"));
	assert_false(guarded("169.253.1.1:80"));
	assert_false(guarded("[fec0::1]:80"));
	assert_false(guarded("[::2]:80"));
	assert_false(guarded("203.0.113.6:22"));
	assert_false(guarded("10.0.0.1:22"));
	assert_false(guarded("192.168.1.1:22"));
	assert_false(guarded("172.16.0.1:22"));
	assert_false(guarded("[fd00::1]:22"));
	assert_false(guarded("8.8.8.8:53"));
}

/* Broad rules (`*`, /0) never reach a guarded address literal; a rule
 * that names the address (or a block narrower than /0 covering it and
 * the port) does. */
static void test_judge_guarded(void **state)
{
	static const char *const broad[] = {"*:*", "0.0.0.0/0:*", "[::]/0:*"};
	static const char *const lo[] = {"*:*", "127.0.0.1:5432"};
	static const char *const net[] = {"127.0.0.0/8:*", "169.254.0.0/16:80",
	                                  "203.0.113.0/24:22", "[fe80::/10]:*"};
	(void)state;
	assert_int_equal(judge(broad, 3, "127.0.0.1:5432"), WN_VERDICT_DENY);
	assert_int_equal(judge(broad, 3, "[::1]:5432"), WN_VERDICT_DENY);
	assert_int_equal(judge(broad, 3, "169.254.169.254:80"),
	                 WN_VERDICT_DENY);
	assert_int_equal(judge(broad, 3, "[fe80::1]:22"), WN_VERDICT_DENY);
	assert_int_equal(judge(broad, 3, "203.0.113.5:22"), WN_VERDICT_DENY);
	assert_int_equal(judge(broad, 3, "[2001:db8::5]:22"), WN_VERDICT_DENY);
	assert_int_equal(judge(broad, 3, "[::ffff:127.0.0.1]:22"),
	                 WN_VERDICT_DENY);
	/* The rest of the world and private ranges stay open to them. */
	assert_int_equal(judge(broad, 3, "192.168.1.10:22"), WN_VERDICT_ALLOW);
	assert_int_equal(judge(broad, 3, "203.0.113.6:22"), WN_VERDICT_ALLOW);
	/* A rule naming the address opens it, for its ports only. */
	assert_int_equal(judge(lo, 2, "127.0.0.1:5432"), WN_VERDICT_ALLOW);
	assert_int_equal(judge(lo, 2, "127.0.0.1:5433"), WN_VERDICT_DENY);
	assert_int_equal(judge(lo, 2, "127.0.0.2:5432"), WN_VERDICT_DENY);
	assert_int_equal(judge(net, 4, "127.0.0.9:1"), WN_VERDICT_ALLOW);
	assert_int_equal(judge(net, 4, "169.254.169.254:80"), WN_VERDICT_ALLOW);
	assert_int_equal(judge(net, 4, "169.254.169.254:81"), WN_VERDICT_DENY);
	assert_int_equal(judge(net, 4, "203.0.113.5:22"), WN_VERDICT_ALLOW);
	assert_int_equal(judge(net, 4, "[fe80::1]:7"), WN_VERDICT_ALLOW);
}

static void test_unmap_v4(void **state)
{
	struct wn_endpoint t = target("[::ffff:192.0.2.7]:443");
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)&t.sa;
	struct wn_endpoint u = target("[2001:db8::1]:443");
	struct sockaddr_storage before = u.sa;
	(void)state;

	wn_policy_unmap_v4(&t.sa);
	assert_int_equal(t.sa.ss_family, AF_INET);
	assert_int_equal(ntohs(a4->sin_port), 443);
	assert_int_equal(ntohl(a4->sin_addr.s_addr), 0xc0000207);
	wn_policy_unmap_v4(&u.sa);
	assert_memory_equal(&u.sa, &before, sizeof(before));
}

/* An addrinfo list as a resolver returns it, from address literals. */
struct ai_list {
	struct addrinfo ai[8];
	struct sockaddr_storage sa[8];
};

static struct addrinfo *ai_list(struct ai_list *l, const char *const *ips,
                                size_t n)
{
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < n; i++) {
		struct addrinfo *ai = &l->ai[i];

		if (strchr(ips[i], ':')) {
			struct sockaddr_in6 *a =
			    (struct sockaddr_in6 *)&l->sa[i];
			a->sin6_family = AF_INET6;
			assert_int_equal(
			    inet_pton(AF_INET6, ips[i], &a->sin6_addr), 1);
			ai->ai_addrlen = sizeof(*a);
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&l->sa[i];
			a->sin_family = AF_INET;
			assert_int_equal(
			    inet_pton(AF_INET, ips[i], &a->sin_addr), 1);
			ai->ai_addrlen = sizeof(*a);
		}
		ai->ai_family = l->sa[i].ss_family;
		ai->ai_addr = (struct sockaddr *)&l->sa[i];
		ai->ai_next = i + 1 < n ? &l->ai[i + 1] : NULL;
	}
	return &l->ai[0];
}

static const char *addr_text(const struct sockaddr_storage *ss, char *buf)
{
	const void *a =
	    ss->ss_family == AF_INET
	        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
	        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	return inet_ntop(ss->ss_family, a, buf, INET6_ADDRSTRLEN);
}

static void test_addresses(void **state)
{
	static const char *const ips[] = {"10.1.1.1",        "0.0.0.0",
	                                  "::ffff:10.1.1.1", "192.0.2.1",
	                                  "10.2.2.2",        "::"};
	struct wn_allow_rule r = rule("10.0.0.0/8:80");
	struct sockaddr_storage out[8];
	struct ai_list l;
	char buf[INET6_ADDRSTRLEN];
	size_t n;
	(void)state;

	/* Allowed by name: every usable address, in order, port set, the
	 * mapped duplicate and the unspecified ones dropped. */
	n = wn_policy_addresses(&r, 1, NULL, ai_list(&l, ips, 6), 80,
	                        WN_POLICY_BY_NAME, out, 8);
	assert_int_equal(n, 3);
	assert_string_equal(addr_text(&out[0], buf), "10.1.1.1");
	assert_string_equal(addr_text(&out[1], buf), "192.0.2.1");
	assert_string_equal(addr_text(&out[2], buf), "10.2.2.2");
	assert_int_equal(ntohs(((struct sockaddr_in *)&out[2])->sin_port), 80);
	/* Allowed by address: only those a rule allows. */
	n = wn_policy_addresses(&r, 1, NULL, ai_list(&l, ips, 6), 80,
	                        WN_POLICY_BY_ADDRESS, out, 8);
	assert_int_equal(n, 2);
	assert_string_equal(addr_text(&out[0], buf), "10.1.1.1");
	assert_string_equal(addr_text(&out[1], buf), "10.2.2.2");
	/* The port is part of the check, and max bounds the output. */
	assert_int_equal(wn_policy_addresses(&r, 1, NULL, ai_list(&l, ips, 6),
	                                     81, WN_POLICY_BY_ADDRESS, out, 8),
	                 0);
	assert_int_equal(wn_policy_addresses(&r, 1, NULL, ai_list(&l, ips, 6),
	                                     80, WN_POLICY_BY_NAME, out, 1),
	                 1);
	assert_true(wn_policy_address_allowed(&r, 1, &out[0]));
}

/* A name (whatever rule allowed it) never resolves its way to a guarded
 * address: only an explicit address rule covering it lets it through. */
static void test_addresses_guarded(void **state)
{
	static const char *const ips[] = {"127.0.0.1",   "::1",
	                                  "169.254.1.1", "fe80::1",
	                                  "203.0.113.5", "192.168.1.1"};
	struct wn_allow_rule any[2] = {rule("*:*"), rule("0.0.0.0/0:*")};
	struct wn_allow_rule named[2] = {rule("*:*"), rule("127.0.0.1:80")};
	struct sockaddr_storage out[8];
	struct ai_list l;
	char buf[INET6_ADDRSTRLEN];
	size_t n;
	(void)state;

	self_init();
	/* By a name rule, or checked against a /0: only the private one. */
	n = wn_policy_addresses(any, 2, &self, ai_list(&l, ips, 6), 80,
	                        WN_POLICY_BY_NAME, out, 8);
	assert_int_equal(n, 1);
	assert_string_equal(addr_text(&out[0], buf), "192.168.1.1");
	n = wn_policy_addresses(&any[1], 1, &self, ai_list(&l, ips, 6), 80,
	                        WN_POLICY_BY_ADDRESS, out, 8);
	assert_int_equal(n, 1);
	assert_string_equal(addr_text(&out[0], buf), "192.168.1.1");
	/* An explicit rule opens its address and port, nothing else. */
	n = wn_policy_addresses(named, 2, &self, ai_list(&l, ips, 6), 80,
	                        WN_POLICY_BY_NAME, out, 8);
	assert_int_equal(n, 2);
	assert_string_equal(addr_text(&out[0], buf), "127.0.0.1");
	assert_string_equal(addr_text(&out[1], buf), "192.168.1.1");
	n = wn_policy_addresses(named, 2, &self, ai_list(&l, ips, 6), 81,
	                        WN_POLICY_BY_NAME, out, 8);
	assert_int_equal(n, 1);
}

/* A target as the dialer sees it: "udp://..." is a flow's target, anything
 * else a stream's. */
static struct wn_endpoint any_target(const char *s)
{
	struct wn_endpoint t;
	const char *why = NULL;
	if (wn_endpoint_parse(s, WN_SCHEME_UDP | WN_SCHEME_TCP | WN_SCHEME_UNIX,
	                      WN_SCHEME_TCP, 0, &t, &why) != 0)
		fail_msg("target %s rejected: %s", s, why);
	return t;
}

static enum wn_verdict judge_any(const char *const *rules, size_t n,
                                 const char *tgt)
{
	struct wn_allow_rule r[8];
	struct wn_endpoint t = any_target(tgt);

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		r[i] = rule(rules[i]);
	self_init();
	return wn_policy_judge(r, n, &self, &t);
}

static void test_udp_rules(void **state)
{
	static const char *const udp[] = {"udp://10.0.0.9:53",
	                                  "udp://*.example:53"};
	static const char *const tcp[] = {"10.0.0.9:53", "tcp://*.example:53",
	                                  "*:*"};
	static const char *const guard[] = {"udp://127.0.0.1:53"};
	struct wn_allow_rule r;
	const char *why = NULL;
	(void)state;
	r = rule("udp://10.0.0.0/8:1000-2000");
	assert_true(r.udp);
	assert_int_equal(r.kind, WN_RULE_CIDR4);
	assert_int_equal(r.port_lo, 1000);
	assert_false(rule("tcp://10.0.0.9:53").udp);
	assert_false(rule("10.0.0.9:53").udp);
	assert_true(rule("UDP://[fd00::/8]:*").udp);
	/* A datagram rule names hosts; unix sockets have no UDP here. */
	assert_int_equal(wn_allow_rule_parse("udp://unix:/run/x", &r, &why),
	                 WN_EINVAL);
	assert_non_null(why);
	assert_int_equal(wn_allow_rule_parse("udp://", &r, &why), WN_EINVAL);
	assert_int_equal(wn_allow_rule_parse("udp://10.0.0.9", &r, &why),
	                 WN_EINVAL);

	/* A udp rule allows flows to what it names, and nothing else. */
	assert_int_equal(judge_any(udp, 2, "udp://10.0.0.9:53"),
	                 WN_VERDICT_ALLOW);
	assert_int_equal(judge_any(udp, 2, "udp://10.0.0.9:54"),
	                 WN_VERDICT_DENY);
	assert_int_equal(judge_any(udp, 2, "udp://ns.example:53"),
	                 WN_VERDICT_ALLOW);
	assert_int_equal(judge_any(udp, 2, "udp://ns.other:53"),
	                 WN_VERDICT_ALLOW_ADDRESSES);
	/* ...and never a stream to the same place. */
	assert_int_equal(judge_any(udp, 2, "10.0.0.9:53"), WN_VERDICT_DENY);
	assert_int_equal(judge_any(udp, 2, "ns.example:53"), WN_VERDICT_DENY);
	assert_int_equal(judge_any(udp, 2, "ns.other:53"), WN_VERDICT_DENY);
	assert_false(allows("udp://10.0.0.9:53", "10.0.0.9:53"));
	/* A stream rule, even *:*, never allows a flow. */
	assert_int_equal(judge_any(tcp, 3, "udp://10.0.0.9:53"),
	                 WN_VERDICT_DENY);
	assert_int_equal(judge_any(tcp, 3, "udp://ns.example:53"),
	                 WN_VERDICT_DENY);
	assert_int_equal(judge_any(tcp, 3, "10.0.0.9:53"), WN_VERDICT_ALLOW);
	/* The guard applies to flows as to streams: loopback only by a
	 * rule that names it. */
	assert_int_equal(judge_any(guard, 1, "udp://127.0.0.1:53"),
	                 WN_VERDICT_ALLOW);
	assert_int_equal(judge_any(udp, 2, "udp://127.0.0.1:53"),
	                 WN_VERDICT_DENY);
	/* ...and the rule naming a guarded address opens it for its own
	 * protocol only, also in a mixed list. */
	assert_int_equal(judge_any(guard, 1, "127.0.0.1:53"), WN_VERDICT_DENY);
	{
		static const char *const tcp_lo[] = {"127.0.0.1:53"};
		assert_int_equal(judge_any(tcp_lo, 1, "udp://127.0.0.1:53"),
		                 WN_VERDICT_DENY);
		assert_int_equal(judge_any(tcp_lo, 1, "127.0.0.1:53"),
		                 WN_VERDICT_ALLOW);
	}
}

static void test_split(void **state)
{
	static const char *const text[] = {"udp://10.0.0.9:53", "a.example:80",
	                                   "udp://*.example:53", "10.0.0.0/8:*",
	                                   "unix:/run/a.sock"};
	struct wn_allow_rule r[5];
	size_t i, n;
	(void)state;
	for (i = 0; i < 5; i++)
		r[i] = rule(text[i]);
	n = wn_policy_split(r, 5);
	assert_int_equal(n, 3);
	/* Stream rules first, then udp rules, each in the order given. */
	assert_string_equal(r[0].text, "a.example");
	assert_int_equal(r[1].kind, WN_RULE_CIDR4);
	assert_int_equal(r[2].kind, WN_RULE_UNIX);
	assert_true(r[3].udp && r[3].kind == WN_RULE_CIDR4);
	assert_true(r[4].udp && r[4].kind == WN_RULE_NAME_SUFFIX);
	for (i = 0; i < n; i++)
		assert_false(r[i].udp);
	assert_int_equal(wn_policy_split(r, 5), 3); /* idempotent */
	assert_int_equal(wn_policy_split(r, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidr_and_ports),
	    cmocka_unit_test(test_names_and_wildcards),
	    cmocka_unit_test(test_unix_rules),
	    cmocka_unit_test(test_bad_rules),
	    cmocka_unit_test(test_judge),
	    cmocka_unit_test(test_judge_unspecified_and_mapped),
	    cmocka_unit_test(test_guarded),
	    cmocka_unit_test(test_judge_guarded),
	    cmocka_unit_test(test_unmap_v4),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_addresses_guarded),
	    cmocka_unit_test(test_udp_rules),
	    cmocka_unit_test(test_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
