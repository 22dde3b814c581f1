/* One port on several addresses: see tcplisten.h. */
#include "io/tcplisten.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <unistd.h>

#include "util/err.h"

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                : sizeof(struct sockaddr_in6);
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static unsigned get_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

unsigned wn_tcplisten_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return 0;
	return get_port(&ss);
}

/* A listening socket on sa, or a WN_E* code with nothing open. Listening at
 * once matters: Linux lets two SO_REUSEADDR sockets bind one port as long
 * as neither listens, so only listen() makes a taken port show. */
static int listen_one(const struct sockaddr_storage *sa, int backlog, int *out)
{
	int fd, on = 1, rc;

	fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0)
		return wn_err_from_errno(errno);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    (sa->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) ||
	    bind(fd, (const struct sockaddr *)sa, addr_len(sa)) != 0 ||
	    listen(fd, backlog) != 0) {
		rc = wn_err_from_errno(errno);
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

static void close_all(int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Not an address of this host: skipped as long as another one binds. */
static bool absent(int rc)
{
	return rc == WN_EUNREACH || rc == WN_ENOTSUP;
}

int wn_tcplisten_open(const struct sockaddr_storage *addrs, int n, int backlog,
                      int *fds)
{
	struct sockaddr_storage sa;
	int tries, i, rc, bound, skipped;
	unsigned port, want;

	for (i = 0; i < n; i++) {
		fds[i] = -1;
		if (addrs[i].ss_family != AF_INET &&
		    addrs[i].ss_family != AF_INET6)
			return WN_EINVAL;
	}
	if (n <= 0)
		return WN_EINVAL;
	want = get_port(&addrs[0]);
	for (tries = 0; tries < WN_TCPLISTEN_TRIES; tries++) {
		port = want;
		bound = 0;
		skipped = 0;
		for (i = 0; i < n; i++) {
			sa = addrs[i];
			set_port(&sa, port);
			rc = listen_one(&sa, backlog, &fds[i]);
			if (absent(rc)) {
				if (!skipped)
					skipped = rc;
				continue;
			}
			if (rc < 0)
				break;
			if (port == 0) {
				port = wn_tcplisten_port(fds[i]);
				if (port == 0) {
					rc = WN_EIO;
					break;
				}
			}
			bound++;
		}
		if (i == n)
			return bound > 0 ? bound
			                 : (skipped ? skipped : WN_EINVAL);
		close_all(fds, n);
		/* The system's pick for the first address is taken on a later
		 * one: pick again. Any other failure is final. */
		if (!(rc == WN_EADDRINUSE && want == 0 && bound > 0))
			return rc;
	}
	return WN_EADDRINUSE;
}
