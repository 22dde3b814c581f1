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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidr_and_ports),
	    cmocka_unit_test(test_names_and_wildcards),
	    cmocka_unit_test(test_unix_rules),
	    cmocka_unit_test(test_bad_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
