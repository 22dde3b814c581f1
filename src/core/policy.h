/* Target allowlist rules: which targets a client may ask the server to
 * reach. Default deny: a target is allowed only if some rule matches it.
 *
 * Rule syntax (one rule per `allow` value):
 *   HOST:PORTS   HOST is  *            any host
 *                         NAME         that DNS name (case-insensitive)
 *                         *.SUFFIX     any name under SUFFIX
 *                         A.B.C.D[/N]  IPv4 address or CIDR block
 *                         [V6[/N]]     IPv6 address or CIDR block
 *                PORTS is N, N-M or *
 *   unix:PATH    that unix socket; unix:/DIR/ followed by a star: any socket
 *                directly in DIR
 *
 * Pure: matching a DNS name against an address rule is false here; the
 * dialer checks the resolved address separately (wn_policy_addresses).
 *
 * The verdict over a rule list (wn_policy_judge and the helpers below it)
 * is the server's whole target policy as front/dialer.h describes it; the
 * dialer only resolves and connects. */
#ifndef WN_CORE_POLICY_H
#define WN_CORE_POLICY_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/addr.h"

enum wn_rule_kind {
	WN_RULE_ANY_HOST,
	WN_RULE_NAME,
	WN_RULE_NAME_SUFFIX,
	WN_RULE_CIDR4,
	WN_RULE_CIDR6,
	WN_RULE_UNIX,
	WN_RULE_UNIX_DIR,
};

struct wn_allow_rule {
	enum wn_rule_kind kind;
	char text[WN_UNIX_PATH_MAX + 1]; /* name, suffix (with dot), path */
	uint8_t net[16];
	unsigned prefix;
	uint16_t port_lo, port_hi;
};

/* Parses one rule. Returns 0, or WN_EINVAL with *why set to a static
 * description of what was expected. */
int wn_allow_rule_parse(const char *s, struct wn_allow_rule *r,
                        const char **why);

/* Returns true if the rule allows the target endpoint. */
bool wn_allow_rule_match(const struct wn_allow_rule *r,
                         const struct wn_endpoint *target);

/* Returns true if an IP address (AF_INET or AF_INET6 sockaddr) and port
 * are allowed by the rule; used by the dialer after resolving a name. */
bool wn_allow_rule_match_sa(const struct wn_allow_rule *r,
                            const struct sockaddr *sa);

/* What the rules say about a requested target. */
enum wn_verdict {
	WN_VERDICT_DENY,
	WN_VERDICT_ALLOW, /* allowed as requested (by name, for a name) */
	/* A name that no name rule allows but an address rule covers the
	 * port of: resolve it and use only the addresses rules allow. */
	WN_VERDICT_ALLOW_ADDRESSES,
};

/* The verdict of rules[0..n) on target t (IPv4-mapped addresses already
 * unmapped, wn_policy_unmap_v4). The unspecified addresses 0.0.0.0 and ::
 * are denied whatever the rules: connecting to them reaches this host,
 * which no rule for "any address" should imply. */
enum wn_verdict wn_policy_judge(const struct wn_allow_rule *rules, size_t n,
                                const struct wn_endpoint *t);

/* True if some rule of rules[0..n) allows the address and port ss. */
bool wn_policy_address_allowed(const struct wn_allow_rule *rules, size_t n,
                               const struct sockaddr_storage *ss);

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) reaches the IPv4 address:
 * rewrites ss in place to that AF_INET address (port kept), so it is
 * judged and connected to as such. Other addresses are left alone. */
void wn_policy_unmap_v4(struct sockaddr_storage *ss);

/* The usable addresses of a name lookup result, in resolver order: port
 * set, IPv4-mapped addresses unmapped, duplicates and unspecified
 * addresses dropped, and with check (WN_VERDICT_ALLOW_ADDRESSES) only those
 * rules[0..n) allow. Returns how many (at most max) were stored in out. */
size_t wn_policy_addresses(const struct wn_allow_rule *rules, size_t n,
                           const struct addrinfo *res, uint16_t port,
                           bool check, struct sockaddr_storage *out,
                           size_t max);

#endif
