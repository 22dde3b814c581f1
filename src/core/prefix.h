/* Source prefixes: the one place that decides which network a peer's
 * address belongs to, for every limit kept per source (the QUIC server's
 * half-open handshakes, the tcp/tls servers' unproved connections, the KCP
 * server's handshake budgets, the kcptun profile's new sessions).
 *
 * A prefix is the first v4_bits of an IPv4 address or the first v6_bits of
 * an IPv6 address, each caller choosing the lengths its limit needs: an
 * IPv4 /24 or an IPv6 /64 is what one attacker usually holds whole, while
 * an IPv4 /32 is one host (or one NAT) that has proved it receives our
 * packets. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a dual-stack
 * socket reports its IPv4 peers) is always its IPv4 address: otherwise
 * every IPv4 peer of a dual-stack server would fall into the one IPv6
 * prefix ::ffff:0:0/64 and share a single budget.
 *
 * Pure: no I/O, no clock, no allocation. */
#ifndef WN_CORE_PREFIX_H
#define WN_CORE_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* The usual lengths: an IPv4 network, one IPv4 host, an IPv6 network. */
#define WN_PREFIX_V4_NET 24
#define WN_PREFIX_V4_HOST 32
#define WN_PREFIX_V6_NET 64

/* Bytes of a prefix: its family tag (WN_PREFIX_FAMILY_*), its length in
 * bits, then the address with every bit past the length cleared. */
#define WN_PREFIX_LEN 18

enum {
	WN_PREFIX_FAMILY_OTHER = 0, /* not IP, or a short address */
	WN_PREFIX_FAMILY_V4 = 4,
	WN_PREFIX_FAMILY_V6 = 6,
};

/* Room for the text of any prefix ("ffff:...:ffff/128"). */
#define WN_PREFIX_STRLEN 48

/* A prefix as a key: compare it whole (wn_prefix_eq), hash it whole. */
struct wn_prefix {
	uint8_t b[WN_PREFIX_LEN];
};

/* The prefix of sa (len bytes): its first v4_bits (IPv4 and IPv4-mapped
 * IPv6; at most 32) or v6_bits (other IPv6; at most 128). Any other
 * family, or a len too short for its family, gives the one all-zero
 * prefix of WN_PREFIX_FAMILY_OTHER. Returns the family tag. */
int wn_prefix_of(const struct sockaddr *sa, socklen_t len, unsigned v4_bits,
                 unsigned v6_bits, struct wn_prefix *out);

static inline bool wn_prefix_eq(const struct wn_prefix *a,
                                const struct wn_prefix *b)
{
	return memcmp(a->b, b->b, WN_PREFIX_LEN) == 0;
}

/* p hashed under key (SipHash-2-4): a stranger without the key cannot
 * choose prefixes that land on one slot of a table. */
uint64_t wn_prefix_hash(const struct wn_prefix *p, const uint8_t key[16]);

/* p as text for logs ("10.1.2.0/24", "2001:db8::/64", "(other)") in out
 * (cap bytes; WN_PREFIX_STRLEN is always enough); returns out. */
char *wn_prefix_format(const struct wn_prefix *p, char *out, size_t cap);

#endif
