/* Virtual peer addresses (vaddr.h). */
#include "carrier/vaddr.h"

#include <string.h>

#include "util/rw.h"

void wn_vaddr_make(struct sockaddr_in6 *a, const uint8_t tag[WN_VADDR_TAG_LEN],
                   uint64_t num, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	a->sin6_addr.s6_addr[0] = 0xfd;
	memcpy(&a->sin6_addr.s6_addr[1], tag, WN_VADDR_TAG_LEN);
	wn_put_u64be(&a->sin6_addr.s6_addr[8], num);
}

const uint8_t *wn_vaddr_tag(const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

	if (!sa || len < sizeof(*a) || sa->sa_family != AF_INET6 ||
	    a->sin6_addr.s6_addr[0] != 0xfd)
		return NULL;
	return &a->sin6_addr.s6_addr[1];
}

uint64_t wn_vaddr_num(const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

	if (!wn_vaddr_tag(sa, len))
		return 0;
	return wn_get_u64be(&a->sin6_addr.s6_addr[8]);
}
