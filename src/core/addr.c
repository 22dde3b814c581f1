#include "core/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

static const struct {
	const char *prefix;
	enum wn_scheme scheme;
} schemes[] = {
    {"udp://", WN_SCHEME_UDP},
    {"tcp://", WN_SCHEME_TCP},
    {"tls://", WN_SCHEME_TLS},
};

const char *wn_scheme_name(enum wn_scheme s)
{
	switch (s) {
	case WN_SCHEME_UDP:
		return "udp";
	case WN_SCHEME_TCP:
		return "tcp";
	case WN_SCHEME_TLS:
		return "tls";
	case WN_SCHEME_UNIX:
		return "unix";
	default:
		return "";
	}
}

bool wn_hostname_valid(const char *s, size_t len)
{
	if (len == 0 || len > WN_HOSTNAME_MAX)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && label > 0))
			return false;
		if (++label > 63)
			return false;
	}
	return s[len - 1] != '-';
}

static int parse_port(const char *s, size_t len, unsigned flags, uint16_t *port)
{
	if (len == 0 || len > 5)
		return WN_EINVAL;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return WN_EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535 || (v == 0 && !(flags & WN_EP_PORT_ZERO_OK)))
		return WN_EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int wn_hostport_parse(const char *s, size_t len, unsigned flags,
                      struct wn_endpoint *out, const char **why)
{
	const char *host, *port;
	size_t hlen;
	bool bracket = len > 0 && s[0] == '[';
	if (bracket) {
		const char *close = memchr(s, ']', len);
		if (!close || (size_t)(close - s) + 1 >= len ||
		    close[1] != ':') {
			*why = "expected [IPv6]:PORT";
			return WN_EINVAL;
		}
		host = s + 1;
		hlen = (size_t)(close - host);
		port = close + 2;
	} else {
		const char *colon = NULL;
		for (size_t i = 0; i < len; i++)
			if (s[i] == ':') {
				if (colon) {
					*why = "IPv6 addresses need brackets: "
					       "[ADDR]:PORT";
					return WN_EINVAL;
				}
				colon = s + i;
			}
		if (!colon) {
			*why = "expected HOST:PORT";
			return WN_EINVAL;
		}
		host = s;
		hlen = (size_t)(colon - s);
		port = colon + 1;
	}
	size_t plen = len - (size_t)(port - s);
	if (parse_port(port, plen, flags, &out->port) != 0) {
		*why = (flags & WN_EP_PORT_ZERO_OK)
		           ? "expected a port number 0-65535"
		           : "expected a port number 1-65535";
		return WN_EINVAL;
	}
	if (hlen == 0 || hlen > WN_HOSTNAME_MAX) {
		*why = "expected a host name or address before ':'";
		return WN_EINVAL;
	}
	char h[WN_HOSTNAME_MAX + 1];
	memcpy(h, host, hlen);
	h[hlen] = '\0';
	memset(&out->sa, 0, sizeof(out->sa));
	if (bracket) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out->sa;
		if (inet_pton(AF_INET6, h, &a6->sin6_addr) != 1) {
			*why = "invalid IPv6 address in brackets";
			return WN_EINVAL;
		}
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(out->port);
		out->salen = sizeof(*a6);
		out->kind = WN_HOST_IP;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&out->sa;
		if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons(out->port);
			out->salen = sizeof(*a4);
			out->kind = WN_HOST_IP;
		} else if (wn_hostname_valid(h, hlen)) {
			bool digits_dots = true;
			for (size_t i = 0; i < hlen; i++)
				if (!((h[i] >= '0' && h[i] <= '9') ||
				      h[i] == '.'))
					digits_dots = false;
			if (digits_dots) {
				*why = "invalid IPv4 address";
				return WN_EINVAL;
			}
			out->kind = WN_HOST_NAME;
			out->salen = 0;
		} else {
			*why = "invalid host name";
			return WN_EINVAL;
		}
	}
	memcpy(out->host, h, hlen + 1);
	return 0;
}

int wn_endpoint_parse(const char *s, unsigned allowed, enum wn_scheme dflt,
                      unsigned flags, struct wn_endpoint *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	size_t len = strlen(s);
	if (strncmp(s, "unix:", 5) == 0) {
		if (!(allowed & WN_SCHEME_UNIX)) {
			*why = "unix sockets are not allowed here";
			return WN_EINVAL;
		}
		const char *p = s + 5;
		size_t plen = len - 5;
		if (plen == 0 || plen > WN_UNIX_PATH_MAX) {
			*why = "expected unix:PATH (path up to 107 bytes)";
			return WN_EINVAL;
		}
		out->scheme = WN_SCHEME_UNIX;
		out->kind = WN_HOST_UNIX;
		memcpy(out->path, p, plen + 1);
		return 0;
	}
	enum wn_scheme scheme = WN_SCHEME_NONE;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);
		if (strncmp(s, schemes[i].prefix, n) == 0) {
			scheme = schemes[i].scheme;
			s += n;
			len -= n;
			break;
		}
	}
	if (scheme == WN_SCHEME_NONE) {
		if (strstr(s, "://")) {
			*why =
			    "unknown scheme (expected udp://, tcp://, tls:// "
			    "or unix:)";
			return WN_EINVAL;
		}
		if (dflt == WN_SCHEME_NONE) {
			*why = "a scheme is required (udp://, tcp:// or "
			       "tls://)";
			return WN_EINVAL;
		}
		scheme = dflt;
	}
	if (!(allowed & scheme)) {
		*why = "this scheme is not allowed here";
		return WN_EINVAL;
	}
	out->scheme = scheme;
	return wn_hostport_parse(s, len, flags, out, why);
}

char *wn_endpoint_format(const struct wn_endpoint *ep, char *buf, size_t cap)
{
	if (ep->kind == WN_HOST_UNIX) {
		snprintf(buf, cap, "unix:%s", ep->path);
		return buf;
	}
	const char *pre = wn_scheme_name(ep->scheme);
	bool v6 = ep->kind == WN_HOST_IP && ep->sa.ss_family == AF_INET6;
	snprintf(buf, cap, "%s%s%s%s%s:%u", pre, *pre ? "://" : "",
	         v6 ? "[" : "", ep->host, v6 ? "]" : "", ep->port);
	return buf;
}

char *wn_sockaddr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, cap, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, cap, "?");
	}
	return buf;
}
