#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/httphead.h"

/* Feeds s whole; returns the result and the bytes used in *used. */
static enum wn_httphead_result feed_str(struct wn_httphead *h, const char *s,
                                        size_t *used)
{
	return wn_httphead_feed(h, (const uint8_t *)s, strlen(s), used);
}

/* Feeds s one byte at a time: the result must be the same as whole, at
 * the same byte. */
static enum wn_httphead_result feed_bytes(const char *s, uint32_t limit,
                                          size_t *at)
{
	struct wn_httphead h;
	wn_httphead_init(&h, limit);
	size_t n = strlen(s), used;
	for (size_t i = 0; i < n; i++) {
		enum wn_httphead_result r =
		    wn_httphead_feed(&h, (const uint8_t *)s + i, 1, &used);
		if (r != WN_HTTPHEAD_MORE) {
			*at = i + used;
			return r;
		}
		assert_int_equal(used, 1);
	}
	*at = n;
	return WN_HTTPHEAD_MORE;
}

static void check(const char *s, enum wn_httphead_result want, size_t at)
{
	struct wn_httphead h;
	size_t used, at1;
	wn_httphead_init(&h, 0);
	assert_int_equal(feed_str(&h, s, &used), want);
	assert_int_equal(used, at);
	assert_int_equal(feed_bytes(s, 0, &at1), want);
	assert_int_equal(at1, at);
}

static void test_complete_heads(void **state)
{
	(void)state;
	const char *curl = "GET /index.html HTTP/1.1\r\n"
	                   "Host: www.example.org\r\n"
	                   "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
	check(curl, WN_HTTPHEAD_DONE, strlen(curl));
	/* Bare LF line ends, an empty line before the request line, a value
	 * with tabs and obs-text, an empty value, HTTP/1.0, no headers. */
	const char *lf = "\r\n\nPOST /a?b=c HTTP/1.0\nX-A:\t\xe9t\xe9 \n"
	                 "X-Empty:\n\n";
	check(lf, WN_HTTPHEAD_DONE, strlen(lf));
	check("HEAD * HTTP/1.1\r\n\r\n", WN_HTTPHEAD_DONE, 19);
	/* Bytes after the head are not read. */
	check("GET / HTTP/1.1\r\n\r\nbody", WN_HTTPHEAD_DONE, 18);
}

static void test_incomplete_heads(void **state)
{
	(void)state;
	check("GET / HTTP/1.1\r\nHost: a", WN_HTTPHEAD_MORE, 23);
	check("GET /very/long/path", WN_HTTPHEAD_MORE, 19);
	check("", WN_HTTPHEAD_MORE, 0);
}

/* Each is refused at the byte that makes it wrong, not at a line's end
 * or at the empty line. */
static void test_broken_at_the_byte(void **state)
{
	(void)state;
	check("GET  / HTTP/1.1\r\n", WN_HTTPHEAD_BAD, 5);   /* two spaces */
	check("GET /\r\n\r\n", WN_HTTPHEAD_BAD, 6);         /* HTTP/0.9 */
	check("GET / HTTQ/1.1\r\n", WN_HTTPHEAD_BAD, 10);   /* the version */
	check("GET / HTTP/x.1\r\n", WN_HTTPHEAD_BAD, 12);   /* a digit */
	check("GET / HTTP/1.11\r\n", WN_HTTPHEAD_BAD, 15);  /* after it */
	check("GET / HTTP/1.1\r\r", WN_HTTPHEAD_BAD, 16);   /* CR without LF */
	check("G\x01T / HTTP/1.1\r\n", WN_HTTPHEAD_BAD, 2); /* the method */
	check("GET /a\x7f HTTP/1.1\r\n", WN_HTTPHEAD_BAD, 7);
	check("GET / HTTP/1.1\r\nHost a\r\n", WN_HTTPHEAD_BAD, 21); /* no : */
	check("GET / HTTP/1.1\r\n folded\r\n", WN_HTTPHEAD_BAD, 17);
	check("GET / HTTP/1.1\r\nX: a\x01\r\n", WN_HTTPHEAD_BAD, 21);
	check("GET / HTTP/1.1\r\nX: a\r\n\rx", WN_HTTPHEAD_BAD, 24);
	check("\x16\x03\x01", WN_HTTPHEAD_BAD, 1); /* a TLS record */
}

static void test_limit(void **state)
{
	(void)state;
	char big[300];
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	big[sizeof(big) - 1] = 0;
	size_t at;
	/* Exactly the limit and nothing decided: too long on the next byte. */
	assert_int_equal(feed_bytes(big, 100, &at), WN_HTTPHEAD_TOO_LONG);
	assert_int_equal(at, 100);
	struct wn_httphead h;
	size_t used;
	wn_httphead_init(&h, 100);
	assert_int_equal(feed_str(&h, big, &used), WN_HTTPHEAD_TOO_LONG);
	assert_int_equal(used, 100);
	/* Decided: nothing more is read, the answer stays. */
	assert_int_equal(feed_str(&h, "\r\n\r\n", &used), WN_HTTPHEAD_TOO_LONG);
	assert_int_equal(used, 0);
	/* A head that completes within the limit is complete. */
	wn_httphead_init(&h, 18);
	assert_int_equal(feed_str(&h, "GET / HTTP/1.1\r\n\r\n", &used),
	                 WN_HTTPHEAD_DONE);
	assert_int_equal(used, 18);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_complete_heads),
	    cmocka_unit_test(test_incomplete_heads),
	    cmocka_unit_test(test_broken_at_the_byte),
	    cmocka_unit_test(test_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
