/* The process's file descriptor limit (fdlimit.h). */
#include "io/fdlimit.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

static uint64_t as_u64(rlim_t v)
{
	return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

uint64_t wn_fdlimit_get(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	return as_u64(rl.rlim_cur);
}

uint64_t wn_fdlimit_raise(struct wn_log *log)
{
	struct rlimit rl;
	rlim_t old;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	old = rl.rlim_cur;
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			if (log)
				WN_LOG(
				    log, WN_LOG_WARN, "main",
				    "fd limit %llu: cannot raise it to %llu: "
				    "%s",
				    (unsigned long long)as_u64(old),
				    (unsigned long long)as_u64(rl.rlim_max),
				    strerror(errno));
			return as_u64(old);
		}
	}
	if (log)
		WN_LOG(log, WN_LOG_INFO, "main", "fd limit %llu (was %llu)",
		       (unsigned long long)as_u64(rl.rlim_cur),
		       (unsigned long long)as_u64(old));
	return as_u64(rl.rlim_cur);
}

uint32_t wn_fdlimit_share(uint64_t nofile, size_t n)
{
	uint64_t s;

	if (n == 0)
		n = 1;
	s = nofile > WN_FDLIMIT_RESERVE ? (nofile - WN_FDLIMIT_RESERVE) / 2 / n
	                                : 0;
	if (s > UINT32_MAX)
		s = UINT32_MAX;
	return s > 0 ? (uint32_t)s : 1;
}
