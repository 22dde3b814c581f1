#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/log.h"

/* 2020-09-01 17:15:07 UTC */
static struct timespec fixed_clock(void *ctx)
{
	(void)ctx;
	struct timespec ts = {.tv_sec = 1598980507, .tv_nsec = 0};
	return ts;
}

struct capture {
	int fds[2];
	struct wn_log log;
};

static void capture_open(struct capture *c, int level)
{
	assert_int_equal(pipe(c->fds), 0);
	wn_log_init(&c->log, level, c->fds[1]);
	c->log.clock = fixed_clock;
	c->log.utc = true;
}

/* Closes the write end and returns everything written (caller frees). */
static char *capture_close(struct capture *c)
{
	close(c->fds[1]);
	char *buf = calloc(1, 65536);
	size_t len = 0;
	ssize_t n;
	while ((n = read(c->fds[0], buf + len, 65535 - len)) > 0)
		len += (size_t)n;
	close(c->fds[0]);
	return buf;
}

static void test_line_format_matches_tunnels(void **state)
{
	(void)state;
	struct capture c;
	capture_open(&c, WN_LOG_INFO);
	wn_log_event(&c.log, WN_LOG_INFO, "conn", '+', "8f7ed46a", 2, NULL);
	wn_log_event(&c.log, WN_LOG_ERROR, "conn", '-', "8f7ed46a", 1,
	             "unexpected EOF");
	char *out = capture_close(&c);
	assert_string_equal(out,
	                    "2020.09.01 17:15:07 [info] [conn] + 8f7ed46a = 2\n"
	                    "2020.09.01 17:15:07 [erro] [conn] - 8f7ed46a = 1 "
	                    "unexpected EOF\n");
	assert_int_equal(c.log.lines, 2);
	free(out);
}

static int evaluated;
static int side_effect(void)
{
	evaluated++;
	return 1;
}

static void test_levels_filter_and_skip_evaluation(void **state)
{
	(void)state;
	struct capture c;
	capture_open(&c, WN_LOG_WARN);
	evaluated = 0;
	WN_LOG(&c.log, WN_LOG_DEBUG, "sess", "x %d", side_effect());
	WN_LOG(&c.log, WN_LOG_INFO, "sess", "x %d", side_effect());
	WN_LOG(&c.log, WN_LOG_WARN, "sess", "kept %d", side_effect());
	char *out = capture_close(&c);
	assert_int_equal(evaluated, 1);
	assert_string_equal(out, "2020.09.01 17:15:07 [warn] [sess] kept 1\n");
	free(out);
}

static void test_control_characters_cannot_forge_lines(void **state)
{
	(void)state;
	struct capture c;
	capture_open(&c, WN_LOG_INFO);
	wn_logf(&c.log, WN_LOG_INFO, "sock", "target %s",
	        "evil\n2020.01.01 00:00:00 [erro] [x] forged");
	char *out = capture_close(&c);
	assert_non_null(strstr(out, "target evil?2020"));
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
	free(out);
}

static void test_level_parse(void **state)
{
	(void)state;
	assert_int_equal(wn_log_level_parse("error"), WN_LOG_ERROR);
	assert_int_equal(wn_log_level_parse("debug"), WN_LOG_DEBUG);
	assert_int_equal(wn_log_level_parse("trace"), WN_LOG_TRACE);
	assert_int_equal(wn_log_level_parse("INFO"), WN_EINVAL);
	assert_int_equal(wn_log_level_parse(""), WN_EINVAL);
	assert_string_equal(wn_log_level_tag(WN_LOG_DEBUG), "debg");
}

static void test_ratelimit_counts_and_reports_suppressed(void **state)
{
	(void)state;
	struct capture c;
	capture_open(&c, WN_LOG_INFO);
	struct wn_ratelimit rl = WN_RATELIMIT_INIT(1000, 3);
	uint64_t now = 5000;
	for (int i = 0; i < 100; i++)
		WN_LOG_RL(&c.log, &rl, now + (uint64_t)i, WN_LOG_WARN, "udp",
		          "bad packet %d", i);
	/* Next window: one note about the 97 suppressed, then the line. */
	WN_LOG_RL(&c.log, &rl, now + 1500, WN_LOG_WARN, "udp", "bad packet %d",
	          100);
	char *out = capture_close(&c);
	const char *expect =
	    "2020.09.01 17:15:07 [warn] [udp] bad packet 0\n"
	    "2020.09.01 17:15:07 [warn] [udp] bad packet 1\n"
	    "2020.09.01 17:15:07 [warn] [udp] bad packet 2\n"
	    "2020.09.01 17:15:07 [warn] [udp] 97 similar lines suppressed\n"
	    "2020.09.01 17:15:07 [warn] [udp] bad packet 100\n";
	assert_string_equal(out, expect);
	assert_int_equal(rl.suppressed, 0);
	free(out);
}

static void test_long_lines_are_truncated_not_overflowed(void **state)
{
	(void)state;
	struct capture c;
	capture_open(&c, WN_LOG_INFO);
	char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	wn_logf(&c.log, WN_LOG_INFO, "x", "%s", big);
	char *out = capture_close(&c);
	size_t len = strlen(out);
	assert_true(len > 900 && len <= 1024);
	assert_int_equal(out[len - 1], '\n');
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_format_matches_tunnels),
	    cmocka_unit_test(test_levels_filter_and_skip_evaluation),
	    cmocka_unit_test(test_control_characters_cannot_forge_lines),
	    cmocka_unit_test(test_level_parse),
	    cmocka_unit_test(test_ratelimit_counts_and_reports_suppressed),
	    cmocka_unit_test(test_long_lines_are_truncated_not_overflowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
