#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/err.h"

static const char *const level_tags[] = {"erro", "warn", "info", "debg",
                                         "trac"};
static const char *const level_names[] = {"error", "warn", "info", "debug",
                                          "trace"};

void wn_log_init(struct wn_log *log, int level, int fd)
{
	memset(log, 0, sizeof(*log));
	log->level = level;
	log->fd = fd;
}

int wn_log_level_parse(const char *s)
{
	for (int i = 0; i <= WN_LOG_TRACE; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return WN_EINVAL;
}

const char *wn_log_level_tag(int level)
{
	if (level < 0 || level > WN_LOG_TRACE)
		return "????";
	return level_tags[level];
}

size_t wn_log_format(const struct wn_log *log, char *buf, size_t cap, int level,
                     const char *comp, const char *fmt, va_list ap)
{
	struct timespec ts;
	if (log->clock)
		ts = log->clock(log->clock_ctx);
	else
		clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	time_t secs = ts.tv_sec;
	if (log->utc)
		gmtime_r(&secs, &tm);
	else
		localtime_r(&secs, &tm);
	int n =
	    snprintf(buf, cap, "%04d.%02d.%02d %02d:%02d:%02d [%s] [%s] ",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	             tm.tm_min, tm.tm_sec, wn_log_level_tag(level), comp);
	if (n < 0)
		return 0;
	size_t len = (size_t)n < cap ? (size_t)n : cap - 1;
	int m = vsnprintf(buf + len, cap - len, fmt, ap);
	if (m > 0)
		len += (size_t)m < cap - len ? (size_t)m : cap - len - 1;
	/* A log line is one line: control characters from peer-supplied
	 * strings (targets, SNI, reasons) must not forge extra lines. */
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	return len;
}

static void write_line(struct wn_log *log, char *buf, size_t len)
{
	buf[len++] = '\n';
	while (len > 0) {
		ssize_t w = write(log->fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere to report a failing log */
		buf += w;
		len -= (size_t)w;
	}
	log->lines++;
}

void wn_vlogf(struct wn_log *log, int level, const char *comp, const char *fmt,
              va_list ap)
{
	if (!wn_log_enabled(log, level))
		return;
	char buf[1024];
	size_t len =
	    wn_log_format(log, buf, sizeof(buf) - 1, level, comp, fmt, ap);
	write_line(log, buf, len);
}

void wn_logf(struct wn_log *log, int level, const char *comp, const char *fmt,
             ...)
{
	va_list ap;
	va_start(ap, fmt);
	wn_vlogf(log, level, comp, fmt, ap);
	va_end(ap);
}

void wn_log_event(struct wn_log *log, int level, const char *comp, char sign,
                  const char *id, long live, const char *reason)
{
	if (reason && *reason)
		wn_logf(log, level, comp, "%c %s = %ld %s", sign, id, live,
		        reason);
	else
		wn_logf(log, level, comp, "%c %s = %ld", sign, id, live);
}

bool wn_ratelimit_allow(struct wn_ratelimit *rl, uint64_t now_ms)
{
	if (rl->window_start_ms == 0 ||
	    now_ms - rl->window_start_ms >= rl->interval_ms ||
	    now_ms < rl->window_start_ms) {
		rl->window_start_ms = now_ms ? now_ms : 1;
		rl->used = 0;
	}
	if (rl->used < rl->burst) {
		rl->used++;
		return true;
	}
	rl->suppressed++;
	return false;
}

bool wn_log_ratelimited(struct wn_log *log, struct wn_ratelimit *rl,
                        uint64_t now_ms, int level, const char *comp)
{
	uint32_t pending = rl->suppressed;
	if (!wn_ratelimit_allow(rl, now_ms))
		return false;
	if (pending > 0 && rl->suppressed == pending) {
		wn_logf(log, level, comp, "%u similar lines suppressed",
		        pending);
		rl->suppressed = 0;
	}
	return true;
}
