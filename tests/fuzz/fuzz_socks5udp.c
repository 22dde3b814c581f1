/* Fuzz target: the SOCKS5 UDP request header, the first bytes of every
 * datagram a local application sends to a UDP ASSOCIATE relay. Whatever
 * the input, the parser must not crash, must report a header no longer
 * than the datagram, and an accepted destination must encode into a
 * header that parses back to the same port and name and encodes to the
 * same bytes again (an IPv4-mapped IPv6 address is encoded as IPv4, so
 * the first encoding need not equal the input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/socks5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wn_endpoint dst, again;
	uint8_t hdr[WN_SOCKS5_UDP_HDR_MAX], hdr2[WN_SOCKS5_UDP_HDR_MAX];
	const char *why;
	int n, m, k;

	n = wn_socks5_udp_parse(data, size, &dst, &why);
	if (n < 0) {
		if (!why)
			abort();
		return 0;
	}
	/* The shortest header names a one-byte host. */
	if ((size_t)n > size || n < 4 + 1 + 1 + 2 ||
	    n > WN_SOCKS5_UDP_HDR_MAX || dst.port == 0 ||
	    dst.scheme != WN_SCHEME_UDP || strlen(dst.host) > WN_HOSTNAME_MAX)
		abort();
	m = wn_socks5_udp_header(&dst, hdr, sizeof(hdr));
	if (m < 0 || m > (int)sizeof(hdr))
		abort();
	k = wn_socks5_udp_parse(hdr, (size_t)m, &again, &why);
	if (k != m || again.port != dst.port || again.kind != dst.kind ||
	    (dst.kind == WN_HOST_NAME && strcmp(again.host, dst.host) != 0))
		abort();
	if (wn_socks5_udp_header(&again, hdr2, sizeof(hdr2)) != m ||
	    memcmp(hdr, hdr2, (size_t)m) != 0)
		abort();
	/* Too small a buffer is refused, never overrun. */
	if (wn_socks5_udp_header(&dst, hdr, (size_t)m - 1) >= 0)
		abort();
	return 0;
}
