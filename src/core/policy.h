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
 * dialer checks the resolved address separately. */
#ifndef WN_CORE_POLICY_H
#define WN_CORE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

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

#endif
