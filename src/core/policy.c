#include "core/policy.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"

static int parse_u16(const char *s, size_t len, uint16_t *out)
{
	if (len == 0 || len > 5)
		return WN_EINVAL;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return WN_EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return WN_EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static int parse_ports(const char *s, size_t len, struct wn_allow_rule *r)
{
	if (len == 1 && s[0] == '*') {
		r->port_lo = 1;
		r->port_hi = 65535;
		return 0;
	}
	const char *dash = memchr(s, '-', len);
	if (!dash) {
		if (parse_u16(s, len, &r->port_lo) != 0)
			return WN_EINVAL;
		r->port_hi = r->port_lo;
		return 0;
	}
	if (parse_u16(s, (size_t)(dash - s), &r->port_lo) != 0 ||
	    parse_u16(dash + 1, len - (size_t)(dash - s) - 1, &r->port_hi) !=
	        0 ||
	    r->port_lo > r->port_hi)
		return WN_EINVAL;
	return 0;
}

static int parse_prefix(const char *s, unsigned max, unsigned *out)
{
	if (!*s || strlen(s) > 3)
		return WN_EINVAL;
	unsigned v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return WN_EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return WN_EINVAL;
	*out = v;
	return 0;
}

/* Parses "ADDR" or "ADDR/N" for one family into the rule. */
static int parse_cidr(char *h, int family, struct wn_allow_rule *r)
{
	unsigned max = family == AF_INET ? 32 : 128;
	char *slash = strchr(h, '/');
	r->prefix = max;
	if (slash) {
		*slash = '\0';
		if (parse_prefix(slash + 1, max, &r->prefix) != 0)
			return WN_EINVAL;
	}
	memset(r->net, 0, sizeof(r->net));
	if (inet_pton(family, h, r->net) != 1)
		return WN_EINVAL;
	r->kind = family == AF_INET ? WN_RULE_CIDR4 : WN_RULE_CIDR6;
	return 0;
}

static int parse_host_rule(const char *s, struct wn_allow_rule *r,
                           const char **why);

int wn_allow_rule_parse(const char *s, struct wn_allow_rule *r,
                        const char **why)
{
	bool udp = false;
	int rc;

	if (strncasecmp(s, "udp://", 6) == 0) {
		udp = true;
		s += 6;
	} else if (strncasecmp(s, "tcp://", 6) == 0) {
		s += 6;
	}
	rc = parse_host_rule(s, r, why);
	if (rc == 0 && udp &&
	    (r->kind == WN_RULE_UNIX || r->kind == WN_RULE_UNIX_DIR)) {
		*why = "a udp:// rule takes HOST:PORTS (no unix sockets)";
		return WN_EINVAL;
	}
	r->udp = udp;
	return rc;
}

/* HOST:PORTS or unix:PATH, without a scheme. */
static int parse_host_rule(const char *s, struct wn_allow_rule *r,
                           const char **why)
{
	memset(r, 0, sizeof(*r));
	size_t len = strlen(s);
	if (strncmp(s, "unix:", 5) == 0) {
		const char *p = s + 5;
		size_t plen = len - 5;
		if (plen == 0 || p[0] != '/' || plen > WN_UNIX_PATH_MAX) {
			*why = "expected unix:/ABSOLUTE/PATH or unix:/DIR/*";
			return WN_EINVAL;
		}
		if (plen >= 2 && p[plen - 1] == '*' && p[plen - 2] == '/') {
			r->kind = WN_RULE_UNIX_DIR;
			memcpy(r->text, p, plen - 1); /* keep the slash */
		} else {
			r->kind = WN_RULE_UNIX;
			memcpy(r->text, p, plen);
		}
		return 0;
	}
	const char *colon = strrchr(s, ':');
	if (!colon) {
		*why = "expected HOST:PORTS or unix:PATH";
		return WN_EINVAL;
	}
	if (parse_ports(colon + 1, len - (size_t)(colon - s) - 1, r) != 0) {
		*why = "expected a port, a port range N-M or *";
		return WN_EINVAL;
	}
	size_t hlen = (size_t)(colon - s);
	char h[WN_HOSTNAME_MAX + 8];
	if (hlen == 0 || hlen >= sizeof(h)) {
		*why = "expected a host, address or CIDR block before ':'";
		return WN_EINVAL;
	}
	memcpy(h, s, hlen);
	h[hlen] = '\0';
	if (strcmp(h, "*") == 0) {
		r->kind = WN_RULE_ANY_HOST;
		return 0;
	}
	if (h[0] == '[') {
		/* "[V6]", "[V6/N]" or "[V6]/N" */
		char *close = strchr(h, ']');
		if (!close) {
			*why = "unterminated [IPv6] address";
			return WN_EINVAL;
		}
		char tmp[WN_HOSTNAME_MAX + 8];
		size_t alen = (size_t)(close - h - 1);
		memcpy(tmp, h + 1, alen);
		tmp[alen] = '\0';
		if (close[1] == '/' && !strchr(tmp, '/')) {
			strncat(tmp, close + 1, sizeof(tmp) - alen - 1);
		} else if (close[1] != '\0') {
			*why = "unexpected text after ]";
			return WN_EINVAL;
		}
		if (parse_cidr(tmp, AF_INET6, r) != 0) {
			*why = "invalid IPv6 address or prefix length";
			return WN_EINVAL;
		}
		return 0;
	}
	if ((h[0] >= '0' && h[0] <= '9') && strspn(h, "0123456789./") == hlen) {
		if (parse_cidr(h, AF_INET, r) != 0) {
			*why = "invalid IPv4 address or prefix length";
			return WN_EINVAL;
		}
		return 0;
	}
	if (h[0] == '*' && h[1] == '.') {
		if (!wn_hostname_valid(h + 2, hlen - 2)) {
			*why = "invalid domain after *.";
			return WN_EINVAL;
		}
		r->kind = WN_RULE_NAME_SUFFIX;
		memcpy(r->text, h + 1, hlen); /* ".example.org" */
		return 0;
	}
	if (!wn_hostname_valid(h, hlen)) {
		*why = "invalid host name";
		return WN_EINVAL;
	}
	r->kind = WN_RULE_NAME;
	memcpy(r->text, h, hlen + 1);
	return 0;
}

static bool prefix_match(const uint8_t *net, const uint8_t *addr, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;
	if (memcmp(net, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (net[full] & mask) == (addr[full] & mask);
}

bool wn_allow_rule_match_sa(const struct wn_allow_rule *r,
                            const struct sockaddr *sa)
{
	uint16_t port;
	const uint8_t *addr;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		port = ntohs(a->sin_port);
		addr = (const uint8_t *)&a->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		port = ntohs(a->sin6_port);
		addr = (const uint8_t *)&a->sin6_addr;
	} else {
		return false;
	}
	if (port < r->port_lo || port > r->port_hi)
		return false;
	switch (r->kind) {
	case WN_RULE_ANY_HOST:
		return true;
	case WN_RULE_CIDR4:
		return sa->sa_family == AF_INET &&
		       prefix_match(r->net, addr, r->prefix);
	case WN_RULE_CIDR6:
		return sa->sa_family == AF_INET6 &&
		       prefix_match(r->net, addr, r->prefix);
	default:
		return false;
	}
}

bool wn_allow_rule_match(const struct wn_allow_rule *r,
                         const struct wn_endpoint *t)
{
	/* Streams and datagrams are allowed separately. */
	if (r->udp != (t->scheme == WN_SCHEME_UDP))
		return false;
	if (t->kind == WN_HOST_UNIX) {
		if (r->kind == WN_RULE_UNIX)
			return strcmp(r->text, t->path) == 0;
		if (r->kind == WN_RULE_UNIX_DIR) {
			size_t n = strlen(r->text);
			/* Only sockets directly inside DIR: no deeper path,
			 * and no ".." escaping it. */
			return strncmp(r->text, t->path, n) == 0 &&
			       t->path[n] != '\0' &&
			       strchr(t->path + n, '/') == NULL &&
			       strcmp(t->path + n, "..") != 0 &&
			       strcmp(t->path + n, ".") != 0;
		}
		return false;
	}
	if (t->kind == WN_HOST_IP)
		return wn_allow_rule_match_sa(r,
		                              (const struct sockaddr *)&t->sa);
	if (t->port < r->port_lo || t->port > r->port_hi)
		return false;
	switch (r->kind) {
	case WN_RULE_ANY_HOST:
		return true;
	case WN_RULE_NAME:
		return strcasecmp(r->text, t->host) == 0;
	case WN_RULE_NAME_SUFFIX: {
		size_t n = strlen(r->text), hl = strlen(t->host);
		return hl > n && strcasecmp(t->host + hl - n, r->text) == 0;
	}
	default:
		return false;
	}
}

/* ---- the verdict over a rule list ------------------------------------ */

size_t wn_policy_split(struct wn_allow_rule *rules, size_t n)
{
	size_t streams = 0, i, j;
	struct wn_allow_rule tmp;

	/* An insertion pass keeps each protocol's order (rules are few and
	 * this runs once, at startup). */
	for (i = 0; i < n; i++) {
		if (rules[i].udp)
			continue;
		tmp = rules[i];
		for (j = i; j > streams; j--)
			rules[j] = rules[j - 1];
		rules[streams++] = tmp;
	}
	return streams;
}

void wn_policy_unmap_v4(struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
	struct sockaddr_in a4 = {.sin_family = AF_INET};

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
		return;
	a4.sin_port = a6->sin6_port;
	memcpy(&a4.sin_addr, &a6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &a4, sizeof(a4));
}

/* 0.0.0.0 and :: are no target anyone means; connecting to them reaches
 * this host, which no rule for "any address" should imply. */
static bool unspecified(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)ss)->sin6_addr);
	return true;
}

static bool same_address(const struct sockaddr_storage *a,
                         const struct sockaddr_storage *b);

bool wn_policy_guarded(const struct sockaddr_storage *ss,
                       const struct wn_policy_self *self)
{
	static const uint8_t ll6[2] = {0xfe, 0x80};
	size_t i;

	if (ss->ss_family == AF_INET) {
		const uint8_t *a =
		    (const uint8_t *)&((const struct sockaddr_in *)ss)
		        ->sin_addr;
		/* 0/8 is "this network", 127/8 loopback, 169.254/16
		 * link-local (cloud metadata services live there). */
		if (a[0] == 0 || a[0] == 127 || (a[0] == 169 && a[1] == 254))
			return true;
	} else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)ss)->sin6_addr;
		if (IN6_IS_ADDR_UNSPECIFIED(a6) || IN6_IS_ADDR_LOOPBACK(a6) ||
		    prefix_match(ll6, a6->s6_addr, 10))
			return true;
	} else {
		return true;
	}
	for (i = 0; self && i < self->n; i++)
		if (same_address(&self->addrs[i], ss))
			return true;
	return false;
}

/* wn_policy_address_explicit over the rules of one protocol only. */
static bool explicit_for(const struct wn_allow_rule *rules, size_t n,
                         const struct sockaddr_storage *ss, bool udp)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (rules[i].udp == udp &&
		    (rules[i].kind == WN_RULE_CIDR4 ||
		     rules[i].kind == WN_RULE_CIDR6) &&
		    rules[i].prefix > 0 &&
		    wn_allow_rule_match_sa(&rules[i],
		                           (const struct sockaddr *)ss))
			return true;
	return false;
}

bool wn_policy_address_explicit(const struct wn_allow_rule *rules, size_t n,
                                const struct sockaddr_storage *ss)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((rules[i].kind == WN_RULE_CIDR4 ||
		     rules[i].kind == WN_RULE_CIDR6) &&
		    rules[i].prefix > 0 &&
		    wn_allow_rule_match_sa(&rules[i],
		                           (const struct sockaddr *)ss))
			return true;
	return false;
}

enum wn_verdict wn_policy_judge(const struct wn_allow_rule *rules, size_t n,
                                const struct wn_policy_self *self,
                                const struct wn_endpoint *t)
{
	bool by_address = false;
	size_t i;

	if (t->kind == WN_HOST_IP && unspecified(&t->sa))
		return WN_VERDICT_DENY;
	/* This host and its neighbours on the link: only a rule that names
	 * the address opens them, never `*` or a /0. */
	if (t->kind == WN_HOST_IP && wn_policy_guarded(&t->sa, self))
		return explicit_for(rules, n, &t->sa,
		                    t->scheme == WN_SCHEME_UDP)
		           ? WN_VERDICT_ALLOW
		           : WN_VERDICT_DENY;
	for (i = 0; i < n; i++) {
		const struct wn_allow_rule *r = &rules[i];

		if (wn_allow_rule_match(r, t))
			return WN_VERDICT_ALLOW;
		if (t->kind == WN_HOST_NAME &&
		    r->udp == (t->scheme == WN_SCHEME_UDP) &&
		    (r->kind == WN_RULE_CIDR4 || r->kind == WN_RULE_CIDR6) &&
		    t->port >= r->port_lo && t->port <= r->port_hi)
			by_address = true;
	}
	return by_address ? WN_VERDICT_ALLOW_ADDRESSES : WN_VERDICT_DENY;
}

bool wn_policy_address_allowed(const struct wn_allow_rule *rules, size_t n,
                               const struct sockaddr_storage *ss)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (wn_allow_rule_match_sa(&rules[i],
		                           (const struct sockaddr *)ss))
			return true;
	return false;
}

static bool same_address(const struct sockaddr_storage *a,
                         const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		              &((const struct sockaddr_in *)b)->sin_addr,
		              4) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

size_t wn_policy_addresses(const struct wn_allow_rule *rules, size_t nrules,
                           const struct wn_policy_self *self,
                           const struct addrinfo *res, uint16_t port,
                           enum wn_policy_use use, struct sockaddr_storage *out,
                           size_t max)
{
	bool check = use == WN_POLICY_BY_ADDRESS;
	bool guard = use != WN_POLICY_FIXED;
	const struct addrinfo *ai;
	struct sockaddr_storage ss;
	size_t n = 0, i;
	bool dup;

	for (ai = res; ai && n < max; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(ss))
			continue;
		memset(&ss, 0, sizeof(ss));
		memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		wn_policy_unmap_v4(&ss);
		/* A name rule, or a check by a broad address rule, never
		 * reaches a guarded address: the name's owner (or anyone
		 * who controls its DNS) chooses what it resolves to. */
		if (unspecified(&ss) ||
		    (guard && wn_policy_guarded(&ss, self) &&
		     !wn_policy_address_explicit(rules, nrules, &ss)) ||
		    (check && !wn_policy_address_allowed(rules, nrules, &ss)))
			continue;
		for (dup = false, i = 0; i < n && !dup; i++)
			dup = same_address(&out[i], &ss);
		if (!dup)
			out[n++] = ss;
	}
	return n;
}
