/* Source prefixes (prefix.h). */
#include "core/prefix.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>

/* Keeps the first `bits` bits of a[0, len), clearing the rest. */
static void keep_bits(uint8_t *a, size_t len, unsigned bits)
{
	for (size_t i = 0; i < len; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		a[i] &= (uint8_t)(0xFF00u >> bits);
		bits = 0;
	}
}

int wn_prefix_of(const struct sockaddr *sa, socklen_t len, unsigned v4_bits,
                 unsigned v6_bits, struct wn_prefix *out)
{
	const uint8_t *a = NULL;
	unsigned bits = 0;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		a = (const uint8_t *)&((const struct sockaddr_in *)sa)
		        ->sin_addr;
		n = 4;
	} else if (sa->sa_family == AF_INET6 &&
	           len >= sizeof(struct sockaddr_in6)) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)sa)->sin6_addr;
		a = a6->s6_addr;
		n = 16;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			a += 12;
			n = 4;
		}
	}
	if (!a)
		return WN_PREFIX_FAMILY_OTHER;
	if (n == 4) {
		out->b[0] = WN_PREFIX_FAMILY_V4;
		bits = v4_bits < 32 ? v4_bits : 32;
	} else {
		out->b[0] = WN_PREFIX_FAMILY_V6;
		bits = v6_bits < 128 ? v6_bits : 128;
	}
	out->b[1] = (uint8_t)bits;
	memcpy(out->b + 2, a, n);
	keep_bits(out->b + 2, n, bits);
	return out->b[0];
}

uint64_t wn_prefix_hash(const struct wn_prefix *p, const uint8_t key[16])
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v = 0;

	crypto_shorthash(h, p->b, WN_PREFIX_LEN, key);
	for (size_t i = 0; i < sizeof(h); i++)
		v = v << 8 | h[i];
	return v;
}

char *wn_prefix_format(const struct wn_prefix *p, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	int fam = p->b[0] == WN_PREFIX_FAMILY_V4   ? AF_INET
	          : p->b[0] == WN_PREFIX_FAMILY_V6 ? AF_INET6
	                                           : 0;

	if (fam && inet_ntop(fam, p->b + 2, a, sizeof(a)))
		snprintf(out, cap, "%s/%u", a, p->b[1]);
	else
		snprintf(out, cap, "(other)");
	return out;
}
