/* Engines size every packet from the carrier (carrier.h): over a carrier
 * whose max_packet is small (Tox's 1373 bytes, and 1000 for kcptun, below
 * its own 1350-byte default), no engine ever sends a packet larger than
 * that, and a bulk echo still gets through whole. Each engine (QUIC, KCP,
 * KCP with the kcptun profile and FEC) runs once (cmocka prestate).
 *
 * The carrier pair is the in-memory one (tests/support/memcarrier.h: in
 * order, no loss, delivered from an idle handle) with a small max_packet
 * and a fixed MTU; it records the largest packet handed to it and counts
 * those above its limit, and delivers them anyway, so an engine that
 * ignores the limit fails the assertions instead of stalling. The engines
 * come from the engine table (tests/support/enginepair.h), kcptun with its
 * default FEC 10/3. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "support/enginepair.h"

static void echo_within(const char *engine, size_t max_packet)
{
	struct wn_enginepair p;
	wn_enginepair_init(&p, engine, 60000);
	/* Datagram-like with a fixed limit, as Tox is (less its state). */
	p.sc.max_packet = p.cc.max_packet = max_packet;
	p.sc.base.caps |= WN_CARRIER_FIXED_MTU;
	p.cc.base.caps |= WN_CARRIER_FIXED_MTU;
	wn_enginepair_start(&p);
	struct wn_echo_client c;
	wn_echo_client_open(&c, p.tunnel, "10.9.9.9:7", 300 * 1000);
	WN_ENGINEPAIR_RUN_UNTIL(&p, c.eof);
	assert_int_equal(c.got, c.len);
	assert_memory_equal(c.echoed, c.payload, c.len);
	/* Nothing above the carrier's limit, either way... */
	assert_int_equal(p.cc.oversized, 0);
	assert_int_equal(p.sc.oversized, 0);
	assert_true(p.cc.largest <= max_packet);
	assert_true(p.sc.largest <= max_packet);
	/* ...and the limit is what sized them: full packets come close. */
	assert_true(p.cc.largest + 64 > max_packet);
	assert_true(p.sc.largest + 64 > max_packet);
	wn_echo_client_free(&c);
	wn_enginepair_finish(&p);
}

static void quic_tox_sized(void **state)
{
	(void)state;
	echo_within("quic", 1373);
}

static void kcp_tox_sized(void **state)
{
	(void)state;
	echo_within("kcp", 1373);
}

static void kcptun_below_its_mtu(void **state)
{
	(void)state;
	echo_within("kcptun", 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(quic_tox_sized),
	    cmocka_unit_test(kcp_tox_sized),
	    cmocka_unit_test(kcptun_below_its_mtu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
