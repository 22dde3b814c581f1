/* The process's file descriptor limit (RLIMIT_NOFILE), and the share of it
 * the stream carriers' listeners may hold.
 *
 * Every carrier connection, target connection and listener is an fd. With
 * the common default soft limit of 1024 a few hundred connections from
 * strangers would reach EMFILE, after which every dial fails, for every
 * engine and carrier. So the daemon raises the soft limit to the hard one
 * at startup, and the tcp and tls listeners' connection limits are kept
 * well below it, leaving the rest to the dialer's target connections. */
#ifndef WN_IO_FDLIMIT_H
#define WN_IO_FDLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "util/log.h"

/* Fds kept out of every share: listeners, the loop's own, log and key
 * files, libuv's reserve. */
#define WN_FDLIMIT_RESERVE 64

/* Raises the soft RLIMIT_NOFILE to the hard limit and logs the result at
 * info (log may be NULL). Returns the soft limit now in force (the old one
 * if it could not be raised), or 0 if it cannot be read. */
uint64_t wn_fdlimit_raise(struct wn_log *log);

/* The soft RLIMIT_NOFILE in force (RLIM_INFINITY as UINT64_MAX), or 0 if
 * it cannot be read. */
uint64_t wn_fdlimit_get(void);

/* How many connections each of n stream listeners may hold under an fd
 * limit of nofile: half of what is left after WN_FDLIMIT_RESERVE (the
 * other half is the dialer's: each carrier connection may bring target
 * connections), split evenly, at least 1. Pure. */
uint32_t wn_fdlimit_share(uint64_t nofile, size_t n);

#endif
