/* Endpoints as users write them: "udp://[2001:db8::1]:4433",
 * "tcp://example.org:443", "127.0.0.1:8080", "unix:/run/app.sock".
 *
 * Pure: no name resolution, no sockets. A host is an IPv4 literal, an IPv6
 * literal in brackets, or a DNS name (kept as text, resolved later by the
 * I/O layer). */
#ifndef WN_CORE_ADDR_H
#define WN_CORE_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

enum wn_scheme {
	WN_SCHEME_NONE = 0,
	WN_SCHEME_UDP = 1 << 0,
	WN_SCHEME_TCP = 1 << 1,
	WN_SCHEME_TLS = 1 << 2,
	WN_SCHEME_UNIX = 1 << 3,
};

enum wn_host_kind {
	WN_HOST_IP,   /* literal address in .sa */
	WN_HOST_NAME, /* DNS name in .host */
	WN_HOST_UNIX, /* unix socket path in .path */
};

#define WN_HOSTNAME_MAX 253
#define WN_UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

struct wn_endpoint {
	enum wn_scheme scheme;
	enum wn_host_kind kind;
	char host[WN_HOSTNAME_MAX + 1]; /* name, or the literal as written */
	char path[WN_UNIX_PATH_MAX + 1];
	uint16_t port;
	struct sockaddr_storage sa; /* valid when kind == WN_HOST_IP */
	socklen_t salen;
};

/* Flags for wn_endpoint_parse. */
#define WN_EP_PORT_ZERO_OK 1u /* accept port 0 (listen on any port) */

/* Parses s. `allowed` is a mask of WN_SCHEME_* accepted; `dflt` is the
 * scheme assumed when s has none (WN_SCHEME_NONE: a scheme is required).
 * "unix:PATH" selects WN_SCHEME_UNIX. Returns 0, or WN_EINVAL with *why set
 * to a static description of what was expected. */
int wn_endpoint_parse(const char *s, unsigned allowed, enum wn_scheme dflt,
                      unsigned flags, struct wn_endpoint *out,
                      const char **why);

/* Parses "HOST:PORT" (no scheme). Same contract as wn_endpoint_parse. */
int wn_hostport_parse(const char *s, size_t len, unsigned flags,
                      struct wn_endpoint *out, const char **why);

/* Returns true if s is a syntactically valid DNS name (RFC 1123 labels). */
bool wn_hostname_valid(const char *s, size_t len);

/* Formats an endpoint back to text ("udp://[::1]:4433"). Returns buf. */
char *wn_endpoint_format(const struct wn_endpoint *ep, char *buf, size_t cap);

/* The URL prefix for a scheme ("udp", "tcp", "tls", "unix"). */
const char *wn_scheme_name(enum wn_scheme s);

/* Formats an IPv4 or IPv6 socket address as "1.2.3.4:5" or "[::1]:5" (other
 * families: "?"), for logs. Returns buf. */
char *wn_sockaddr_format(const struct sockaddr *sa, char *buf, size_t cap);

#endif
