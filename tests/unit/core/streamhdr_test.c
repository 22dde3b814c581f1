#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/streamhdr.h"
#include "util/err.h"

static struct wn_endpoint ep(const char *s)
{
	struct wn_endpoint e;
	const char *why;
	assert_int_equal(wn_endpoint_parse(s, WN_SCHEME_TCP | WN_SCHEME_UNIX,
	                                   WN_SCHEME_TCP, 0, &e, &why),
	                 0);
	return e;
}

static void round_trip(const char *s, const uint8_t *expect, size_t elen)
{
	struct wn_endpoint in = ep(s), out;
	uint8_t buf[WN_STREAMHDR_MAX + 8];
	int n = wn_streamhdr_encode(&in, buf, sizeof(buf));
	assert_int_equal(n, (int)elen);
	assert_memory_equal(buf, expect, elen);
	/* Every proper prefix is "incomplete", never an error. */
	int dflt;
	for (size_t i = 0; i < elen; i++)
		assert_int_equal(wn_streamhdr_decode(buf, i, &out, &dflt),
		                 WN_EAGAIN);
	/* Trailing stream data is not part of the header. */
	buf[n] = 0xAA;
	assert_int_equal(wn_streamhdr_decode(buf, elen + 1, &out, &dflt),
	                 (int)elen);
	assert_int_equal(dflt, 0);
	char a[160], b[160];
	assert_string_equal(wn_endpoint_format(&in, a, sizeof(a)),
	                    wn_endpoint_format(&out, b, sizeof(b)));
}

static void test_each_type_on_the_wire(void **state)
{
	(void)state;
	const uint8_t v4[] = {1, 2, 10, 0, 0, 5, 0, 22};
	round_trip("10.0.0.5:22", v4, sizeof(v4));
	const uint8_t v6[] = {1, 3, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,    0,
	                      0, 0, 0,    0,    0,    0,    0, 1, 0x01, 0xbb};
	round_trip("[2001:db8::1]:443", v6, sizeof(v6));
	const uint8_t name[] = {1,   1,   11,  'e', 'x', 'a', 'm',  'p',
	                        'l', 'e', '.', 'o', 'r', 'g', 0x1f, 0x90};
	round_trip("example.org:8080", name, sizeof(name));
	const uint8_t unixp[] = {1, 4, 6, '/', 'r', 'u', 'n', '/', 'x'};
	round_trip("unix:/run/x", unixp, sizeof(unixp));
}

static void test_default_target(void **state)
{
	(void)state;
	uint8_t buf[4];
	assert_int_equal(wn_streamhdr_encode(NULL, buf, sizeof(buf)), 2);
	struct wn_endpoint out;
	int dflt = 0;
	assert_int_equal(wn_streamhdr_decode(buf, 2, &out, &dflt), 2);
	assert_int_equal(dflt, 1);
}

static void test_malformed_headers(void **state)
{
	(void)state;
	struct wn_endpoint out;
	int dflt;
	const uint8_t bad_version[] = {2, 2, 1, 2, 3, 4, 0, 1};
	const uint8_t bad_type[] = {1, 9};
	const uint8_t port0[] = {1, 2, 1, 2, 3, 4, 0, 0};
	const uint8_t badname[] = {1, 1, 3, 'a', '_', 'b', 0, 1};
	const uint8_t emptyname[] = {1, 1, 0, 0, 1};
	const uint8_t nulpath[] = {1, 4, 2, '/', 0};
	const uint8_t emptypath[] = {1, 4, 0};
	const struct {
		const uint8_t *p;
		size_t n;
	} cases[] = {
	    {bad_version, sizeof(bad_version)},
	    {bad_type, sizeof(bad_type)},
	    {port0, sizeof(port0)},
	    {badname, sizeof(badname)},
	    {emptyname, sizeof(emptyname)},
	    {nulpath, sizeof(nulpath)},
	    {emptypath, sizeof(emptypath)},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(
		    wn_streamhdr_decode(cases[i].p, cases[i].n, &out, &dflt),
		    WN_EPROTO);
	uint8_t small[3];
	struct wn_endpoint in = ep("10.0.0.5:22");
	assert_int_equal(wn_streamhdr_encode(&in, small, sizeof(small)),
	                 WN_ENOSPC);
}

/* The confirm flag rides in the type byte; the plain decoder refuses it so
 * an engine that cannot honour it resets instead of leaving a client
 * waiting. Headers without the flag decode as before. */
static void test_confirm_flag(void **state)
{
	(void)state;
	struct wn_endpoint in = ep("10.0.0.5:22"), out;
	uint8_t buf[WN_STREAMHDR_MAX];
	const uint8_t wire[] = {1, 0x82, 10, 0, 0, 5, 0, 22};
	unsigned flags = 99;
	int dflt, n;

	n = wn_streamhdr_encode_flags(&in, WN_STREAMHDR_F_CONFIRM, buf,
	                              sizeof(buf));
	assert_int_equal(n, (int)sizeof(wire));
	assert_memory_equal(buf, wire, sizeof(wire));
	for (int i = 0; i < n; i++)
		assert_int_equal(wn_streamhdr_decode_flags(buf, (size_t)i, &out,
		                                           &dflt, &flags),
		                 WN_EAGAIN);
	assert_int_equal(
	    wn_streamhdr_decode_flags(buf, (size_t)n, &out, &dflt, &flags), n);
	assert_int_equal(flags, WN_STREAMHDR_F_CONFIRM);
	assert_int_equal(out.port, 22);
	assert_string_equal(out.host, "10.0.0.5");
	assert_int_equal(wn_streamhdr_decode(buf, (size_t)n, &out, &dflt),
	                 WN_EPROTO);

	/* Default target with confirm, and no flag at all. */
	assert_int_equal(wn_streamhdr_encode_flags(NULL, WN_STREAMHDR_F_CONFIRM,
	                                           buf, sizeof(buf)),
	                 2);
	assert_int_equal(buf[1], 0x80);
	assert_int_equal(wn_streamhdr_decode_flags(buf, 2, &out, &dflt, &flags),
	                 2);
	assert_int_equal(dflt, 1);
	assert_int_equal(flags, WN_STREAMHDR_F_CONFIRM);
	n = wn_streamhdr_encode(&in, buf, sizeof(buf));
	assert_int_equal(
	    wn_streamhdr_decode_flags(buf, (size_t)n, &out, &dflt, &flags), n);
	assert_int_equal(flags, 0);

	/* Unknown flags are refused both ways. */
	assert_int_equal(wn_streamhdr_encode_flags(&in, 0x40, buf, sizeof(buf)),
	                 WN_EINVAL);
	const uint8_t bad[] = {1, 0xc2, 10, 0, 0, 5, 0, 22};
	assert_int_equal(
	    wn_streamhdr_decode_flags(bad, sizeof(bad), &out, &dflt, &flags),
	    WN_EPROTO);
}

/* The accumulator gets a header (with payload behind it) in every split
 * into two pieces, and in single bytes; the bytes it claims add up to the
 * header and the payload is never taken. */
static void test_take_in_pieces(void **state)
{
	(void)state;
	struct wn_endpoint in = ep("example.org:443"), out;
	uint8_t buf[WN_STREAMHDR_MAX + 4];
	int n = wn_streamhdr_encode_flags(&in, WN_STREAMHDR_F_CONFIRM, buf,
	                                  sizeof(buf));
	assert_true(n > 0);
	memcpy(buf + n, "DATA", 4);
	size_t total = (size_t)n + 4;
	for (size_t cut = 0; cut <= total; cut++) {
		struct wn_streamhdr_acc a = {0};
		size_t used = 0, claimed = 0;
		int dflt = 1, rc;
		unsigned flags = 0;
		rc =
		    wn_streamhdr_take(&a, buf, cut, &used, &out, &dflt, &flags);
		claimed += used;
		if (cut < (size_t)n) {
			assert_int_equal(rc, WN_EAGAIN);
			assert_int_equal(used, cut);
			rc = wn_streamhdr_take(&a, buf + cut, total - cut,
			                       &used, &out, &dflt, &flags);
			claimed += used;
		}
		assert_int_equal(rc, n);
		assert_int_equal(claimed, (size_t)n);
		assert_int_equal(dflt, 0);
		assert_int_equal(flags, WN_STREAMHDR_F_CONFIRM);
		assert_string_equal(out.host, "example.org");
		assert_int_equal(out.port, 443);
	}
	/* One byte at a time. */
	struct wn_streamhdr_acc a = {0};
	size_t used, claimed = 0;
	int dflt, rc = WN_EAGAIN;
	unsigned flags;
	for (size_t i = 0; rc == WN_EAGAIN; i++) {
		rc = wn_streamhdr_take(&a, buf + i, 1, &used, &out, &dflt,
		                       &flags);
		claimed += used;
	}
	assert_int_equal(rc, n);
	assert_int_equal(claimed, (size_t)n);
	/* A bad version is an error at once. */
	struct wn_streamhdr_acc b = {0};
	const uint8_t bad[] = {9, 2, 1, 2, 3, 4, 0, 80};
	assert_int_equal(
	    wn_streamhdr_take(&b, bad, sizeof(bad), &used, &out, &dflt, &flags),
	    WN_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_each_type_on_the_wire),
	    cmocka_unit_test(test_default_target),
	    cmocka_unit_test(test_malformed_headers),
	    cmocka_unit_test(test_confirm_flag),
	    cmocka_unit_test(test_take_in_pieces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
