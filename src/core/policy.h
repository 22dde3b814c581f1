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
 *   tcp://HOST:PORTS   the same as HOST:PORTS, written out
 *   udp://HOST:PORTS   datagram flows (the udp front end, SOCKS5 UDP) to
 *                      HOST:PORTS, HOST as above (no unix sockets)
 *
 * Streams and datagrams are allowed separately: a rule without udp://
 * allows streams only and never a flow, a udp:// rule allows flows only
 * and never a stream. wn_allow_rule_match and wn_policy_judge enforce it by
 * the target's scheme (WN_SCHEME_UDP for a flow's target), also for the
 * rule that opens a guarded address; the address-level functions
 * (wn_policy_address_explicit, wn_policy_address_allowed,
 * wn_policy_addresses) see no target and so must be given the rules of
 * one protocol: wn_policy_split separates a configured list.
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
	bool udp; /* allows datagram flows, never streams */
};

/* Parses one rule. Returns 0, or WN_EINVAL with *why set to a static
 * description of what was expected. */
int wn_allow_rule_parse(const char *s, struct wn_allow_rule *r,
                        const char **why);

/* Returns true if the rule allows the target endpoint: a udp rule only a
 * WN_SCHEME_UDP target, any other rule only a target of another scheme. */
bool wn_allow_rule_match(const struct wn_allow_rule *r,
                         const struct wn_endpoint *target);

/* Returns true if an IP address (AF_INET or AF_INET6 sockaddr) and port
 * are allowed by the rule; used by the dialer after resolving a name. */
bool wn_allow_rule_match_sa(const struct wn_allow_rule *r,
                            const struct sockaddr *sa);

/* Moves the udp rules of rules[0..*n) to the end, keeping the order within
 * each protocol, and returns how many stream rules come first (the rest,
 * *n minus that, are the udp rules). */
size_t wn_policy_split(struct wn_allow_rule *rules, size_t n);

/* What the rules say about a requested target. */
enum wn_verdict {
	WN_VERDICT_DENY,
	WN_VERDICT_ALLOW, /* allowed as requested (by name, for a name) */
	/* A name that no name rule allows but an address rule covers the
	 * port of: resolve it and use only the addresses rules allow. */
	WN_VERDICT_ALLOW_ADDRESSES,
};

/* The addresses the server itself answers on (its interfaces'), which a
 * broad rule must not reach; see wn_policy_guarded. addrs is borrowed;
 * NULL with n 0 for none. */
struct wn_policy_self {
	const struct sockaddr_storage *addrs;
	size_t n;
};

/* True if ss is in the default deny list: 0.0.0.0/8 and :: (this host),
 * loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16, fe80::/10) or
 * one of self's addresses (ports are ignored). Such an address is reached
 * only through a rule that names it: wn_policy_address_explicit. Private
 * ranges (RFC 1918, fc00::/7) are not in the list: a tunnel to a home or
 * office network exists to reach them. */
bool wn_policy_guarded(const struct sockaddr_storage *ss,
                       const struct wn_policy_self *self);

/* True if some CIDR rule of rules[0..n) narrower than /0 (an address or a
 * block written out, not `*`, 0.0.0.0/0 or ::/0) covers the address and
 * port ss: the only rules that let a guarded address through. */
bool wn_policy_address_explicit(const struct wn_allow_rule *rules, size_t n,
                                const struct sockaddr_storage *ss);

/* The verdict of rules[0..n) on target t (IPv4-mapped addresses already
 * unmapped, wn_policy_unmap_v4). The unspecified addresses 0.0.0.0 and ::
 * are denied whatever the rules: connecting to them reaches this host,
 * which no rule for "any address" should imply. A guarded address literal
 * (wn_policy_guarded) is allowed only by an explicit address rule. */
enum wn_verdict wn_policy_judge(const struct wn_allow_rule *rules, size_t n,
                                const struct wn_policy_self *self,
                                const struct wn_endpoint *t);

/* True if some rule of rules[0..n) allows the address and port ss. */
bool wn_policy_address_allowed(const struct wn_allow_rule *rules, size_t n,
                               const struct sockaddr_storage *ss);

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) reaches the IPv4 address:
 * rewrites ss in place to that AF_INET address (port kept), so it is
 * judged and connected to as such. Other addresses are left alone. */
void wn_policy_unmap_v4(struct sockaddr_storage *ss);

/* Why a looked-up name is being connected to, which decides the filter. */
enum wn_policy_use {
	WN_POLICY_FIXED,      /* the operator's fixed target: no guard */
	WN_POLICY_BY_NAME,    /* a name rule allowed it (WN_VERDICT_ALLOW) */
	WN_POLICY_BY_ADDRESS, /* WN_VERDICT_ALLOW_ADDRESSES */
};

/* The usable addresses of a name lookup result, in resolver order: port
 * set, IPv4-mapped addresses unmapped, duplicates and unspecified
 * addresses dropped; unless use is WN_POLICY_FIXED, guarded addresses
 * (wn_policy_guarded) dropped too unless an explicit address rule covers
 * them; and for WN_POLICY_BY_ADDRESS only those rules[0..n) allow. Returns
 * how many (at most max) were stored in out. */
size_t wn_policy_addresses(const struct wn_allow_rule *rules, size_t n,
                           const struct wn_policy_self *self,
                           const struct addrinfo *res, uint16_t port,
                           enum wn_policy_use use, struct sockaddr_storage *out,
                           size_t max);

#endif
