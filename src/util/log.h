/* Leveled, tagged logging with rate limiting.
 *
 * Line format (TunneLS's, which operators of these tools already grep for):
 *
 *   2020.09.01 17:15:07 [info] [conn] + 8f7ed46a = 2 reason
 *   ^ local time        ^level ^component, then free text
 *
 * Open/close events use wn_log_event(): sign '+' or '-', the object id, the
 * live count of such objects after the event, and an optional reason.
 *
 * There is no global logger: a struct wn_log is created by the application
 * and passed down. Anything that can fire per packet must go through a
 * struct wn_ratelimit owned by the object that logs (WN_LOG_RL), so a flood
 * of bad packets costs one line per interval plus a count of what was
 * suppressed. A disabled level costs one comparison (WN_LOG checks first). */
#ifndef WN_UTIL_LOG_H
#define WN_UTIL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

enum wn_log_level {
	WN_LOG_ERROR = 0,
	WN_LOG_WARN = 1,
	WN_LOG_INFO = 2,
	WN_LOG_DEBUG = 3,
	WN_LOG_TRACE = 4,
};

/* Returns the wall-clock time to print; injected so tests are exact. */
typedef struct timespec (*wn_wallclock_fn)(void *ctx);

struct wn_log {
	int level;             /* messages above this level are dropped */
	int fd;                /* destination; each line is one write(2) */
	wn_wallclock_fn clock; /* NULL: clock_gettime(CLOCK_REALTIME) */
	void *clock_ctx;
	bool utc;       /* print UTC instead of local time */
	uint64_t lines; /* lines written, for the metrics endpoint */
};

/* A token bucket per call site: at most `burst` lines per `interval_ms`. */
struct wn_ratelimit {
	uint32_t interval_ms;
	uint32_t burst;
	uint64_t window_start_ms;
	uint32_t used;
	uint32_t suppressed;
};

#define WN_RATELIMIT_INIT(interval_ms_, burst_)                  \
	{                                                        \
		.interval_ms = (interval_ms_), .burst = (burst_) \
	}

/* Initializes a logger writing to fd at the given level. */
void wn_log_init(struct wn_log *log, int level, int fd);

/* Parses "error", "warn", "info", "debug" or "trace"; returns the level or
 * WN_EINVAL. */
int wn_log_level_parse(const char *s);

/* The four-letter tag printed for a level ("erro", "warn", "info", ...). */
const char *wn_log_level_tag(int level);

static inline bool wn_log_enabled(const struct wn_log *log, int level)
{
	return log != NULL && level <= log->level;
}

/* Writes one line: time, level, component, formatted text. Call through
 * WN_LOG so the arguments are not evaluated when the level is off. */
void wn_logf(struct wn_log *log, int level, const char *comp, const char *fmt,
             ...) __attribute__((format(printf, 4, 5)));
void wn_vlogf(struct wn_log *log, int level, const char *comp, const char *fmt,
              va_list ap);

/* Logs an open ('+') or close ('-') event of object `id`, with the number
 * of live objects of its kind after the event and an optional reason
 * (NULL for none). */
void wn_log_event(struct wn_log *log, int level, const char *comp, char sign,
                  const char *id, long live, const char *reason);

/* Returns true if a line may be written now; otherwise counts it as
 * suppressed. When a new window opens after suppression, the next allowed
 * line is preceded by a note of how many were suppressed. */
bool wn_ratelimit_allow(struct wn_ratelimit *rl, uint64_t now_ms);

/* Formats the log line into buf (without newline); exposed for tests.
 * Returns the length written (truncated to cap-1). */
size_t wn_log_format(const struct wn_log *log, char *buf, size_t cap, int level,
                     const char *comp, const char *fmt, va_list ap);

#define WN_LOG(log, lvl, comp, ...)                                 \
	do {                                                        \
		if (wn_log_enabled((log), (lvl)))                   \
			wn_logf((log), (lvl), (comp), __VA_ARGS__); \
	} while (0)

/* Rate-limited log for anything that can fire per packet. `rl` is a
 * struct wn_ratelimit * owned by the caller; now_ms its clock. */
#define WN_LOG_RL(log, rl, now_ms, lvl, comp, ...)                            \
	do {                                                                  \
		if (wn_log_enabled((log), (lvl)) &&                           \
		    wn_log_ratelimited((log), (rl), (now_ms), (lvl), (comp))) \
			wn_logf((log), (lvl), (comp), __VA_ARGS__);           \
	} while (0)

/* Helper behind WN_LOG_RL: applies the limiter and, when a suppressed
 * count is pending, writes the "N similar lines suppressed" note. */
bool wn_log_ratelimited(struct wn_log *log, struct wn_ratelimit *rl,
                        uint64_t now_ms, int level, const char *comp);

#endif
