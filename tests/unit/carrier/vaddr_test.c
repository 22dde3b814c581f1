/* Tests for virtual peer addresses (carrier/vaddr.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "carrier/vaddr.h"

static void round_trip(void **state)
{
	static const uint8_t tag[WN_VADDR_TAG_LEN] = {1, 2, 3, 4, 5, 6, 7};
	struct sockaddr_in6 a;
	const uint8_t *t;

	(void)state;
	wn_vaddr_make(&a, tag, 0x0102030405060708ull, 4433);
	assert_int_equal(a.sin6_family, AF_INET6);
	assert_int_equal(ntohs(a.sin6_port), 4433);
	assert_int_equal(a.sin6_addr.s6_addr[0], 0xfd); /* fd00::/8 */
	t = wn_vaddr_tag((struct sockaddr *)&a, sizeof(a));
	assert_non_null(t);
	assert_memory_equal(t, tag, sizeof(tag));
	assert_int_equal(wn_vaddr_num((struct sockaddr *)&a, sizeof(a)),
	                 0x0102030405060708ull);
	/* A new path to the same peer: same tag, another address. */
	struct sockaddr_in6 b;
	wn_vaddr_make(&b, tag, 2, 4433);
	assert_memory_equal(wn_vaddr_tag((struct sockaddr *)&b, sizeof(b)), tag,
	                    sizeof(tag));
	assert_memory_not_equal(&a.sin6_addr, &b.sin6_addr,
	                        sizeof(a.sin6_addr));
}

static void not_virtual(void **state)
{
	struct sockaddr_in6 a6;
	struct sockaddr_in a4;

	(void)state;
	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &a6.sin6_addr);
	assert_null(wn_vaddr_tag((struct sockaddr *)&a6, sizeof(a6)));
	assert_int_equal(wn_vaddr_num((struct sockaddr *)&a6, sizeof(a6)), 0);
	memset(&a4, 0, sizeof(a4));
	a4.sin_family = AF_INET;
	assert_null(wn_vaddr_tag((struct sockaddr *)&a4, sizeof(a4)));
	/* Too short to be one, and no address at all. */
	inet_pton(AF_INET6, "fd00::1", &a6.sin6_addr);
	assert_non_null(wn_vaddr_tag((struct sockaddr *)&a6, sizeof(a6)));
	assert_null(wn_vaddr_tag((struct sockaddr *)&a6, sizeof(a6) - 1));
	assert_null(wn_vaddr_tag(NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip),
	    cmocka_unit_test(not_virtual),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
