/* kcp-go's FEC framing: headers, classification, seqid wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/kcp.h"
#include "core/kcpgo.h"
#include "util/err.h"

static void test_data_shard(void **state)
{
	(void)state;
	uint8_t pkt[8 + 30];
	memset(pkt + 8, 0xAB, 30);
	wn_kcpgo_put_data_hdr(pkt, 0x01020304, 30);
	const uint8_t want[8] = {4, 3, 2, 1, 0xF1, 0, 32, 0};
	assert_memory_equal(pkt, want, 8);
	struct wn_kcpgo_pkt p;
	assert_int_equal(wn_kcpgo_parse(pkt, sizeof(pkt), &p), 0);
	assert_int_equal(p.kind, WN_KCPGO_DATA);
	assert_int_equal(p.seqid, 0x01020304);
	assert_ptr_equal(p.kcp, pkt + 8);
	assert_int_equal(p.kcp_len, 30);
	assert_ptr_equal(p.shard, pkt + 6);
	assert_int_equal(p.shard_len, 32);
	/* A size beyond the packet, or below 2, is refused. */
	assert_int_equal(wn_kcpgo_parse(pkt, sizeof(pkt) - 1, &p), WN_ETRUNC);
	pkt[6] = 1;
	assert_int_equal(wn_kcpgo_parse(pkt, sizeof(pkt), &p), WN_ETRUNC);
	assert_int_equal(wn_kcpgo_parse(pkt, 7, &p), WN_ETRUNC);
	/* Padding after the size is fine (parity rebuilds pad). */
	pkt[6] = 10;
	assert_int_equal(wn_kcpgo_parse(pkt, sizeof(pkt), &p), 0);
	assert_int_equal(p.kcp_len, 8);
}

static void test_parity_and_raw(void **state)
{
	(void)state;
	uint8_t pkt[40] = {0};
	wn_kcpgo_put_parity_hdr(pkt, 12);
	struct wn_kcpgo_pkt p;
	assert_int_equal(wn_kcpgo_parse(pkt, sizeof(pkt), &p), 0);
	assert_int_equal(p.kind, WN_KCPGO_PARITY);
	assert_int_equal(p.seqid, 12);
	assert_int_equal(p.shard_len, 34);
	/* A KCP segment: cmd 81..84 and frg at bytes 4-5. */
	struct wn_kcp_hdr h = {.conv = 0xF1F1, .cmd = WN_KCP_CMD_PUSH};
	uint8_t seg[WN_KCP_OVERHEAD];
	wn_kcp_hdr_encode(&h, seg);
	assert_int_equal(wn_kcpgo_parse(seg, sizeof(seg), &p), 0);
	assert_int_equal(p.kind, WN_KCPGO_RAW);
	assert_int_equal(p.kcp_len, sizeof(seg));
	assert_int_equal(wn_kcpgo_parse(seg, sizeof(seg) - 1, &p), WN_ETRUNC);
}

static void test_seqid_wrap(void **state)
{
	(void)state;
	/* 13 shards: the last group ends at 0xffffffff / 13 * 13 - 1. */
	uint32_t paws = 0xFFFFFFFFu / 13 * 13;
	assert_int_equal(wn_kcpgo_next_seqid(5, 13), 6);
	assert_int_equal(wn_kcpgo_next_seqid(paws - 1, 13), 0);
	assert_int_equal(wn_kcpgo_next_seqid(0xFFFFFFFEu, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_data_shard),
	    cmocka_unit_test(test_parity_and_raw),
	    cmocka_unit_test(test_seqid_wrap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
