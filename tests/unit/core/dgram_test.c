#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "core/dgram.h"
#include "util/err.h"

static struct wn_endpoint ep(const char *s)
{
	struct wn_endpoint e;
	const char *why;
	assert_int_equal(wn_endpoint_parse(s, WN_SCHEME_UDP | WN_SCHEME_UNIX,
	                                   WN_SCHEME_UDP, 0, &e, &why),
	                 0);
	return e;
}

static void test_targets_are_the_stream_header_encoding(void **state)
{
	(void)state;
	uint8_t b[WN_DGRAM_TARGET_MAX];
	struct wn_endpoint e = ep("10.0.0.9:53"), out;
	int dflt;
	const uint8_t v4[] = {2, 10, 0, 0, 9, 0, 53};
	assert_int_equal(wn_dgram_target_encode(&e, b, sizeof(b)), 7);
	assert_memory_equal(b, v4, sizeof(v4));
	assert_int_equal(wn_dgram_target_decode(b, 7, &out, &dflt), 7);
	assert_int_equal(dflt, 0);
	assert_int_equal(out.scheme, WN_SCHEME_UDP);
	assert_int_equal(out.port, 53);
	assert_string_equal(out.host, "10.0.0.9");
	/* The default target is its type byte alone. */
	assert_int_equal(wn_dgram_target_encode(NULL, b, sizeof(b)), 1);
	assert_int_equal(b[0], 0);
	assert_int_equal(wn_dgram_target_decode(b, 1, &out, &dflt), 1);
	assert_int_equal(dflt, 1);
	/* Names and IPv6 travel; unix paths do not. */
	e = ep("dns.example:5353");
	int n = wn_dgram_target_encode(&e, b, sizeof(b));
	assert_int_equal(n, 1 + 1 + 11 + 2);
	assert_int_equal(wn_dgram_target_decode(b, (size_t)n, &out, &dflt), n);
	assert_string_equal(out.host, "dns.example");
	e = ep("[2001:db8::1]:443");
	assert_int_equal(wn_dgram_target_encode(&e, b, sizeof(b)), 19);
	e = ep("unix:/run/x");
	assert_int_equal(wn_dgram_target_encode(&e, b, sizeof(b)), WN_EINVAL);
	const uint8_t unixp[] = {4, 2, '/', 'x'};
	assert_int_equal(wn_dgram_target_decode(unixp, 4, &out, &dflt),
	                 WN_EPROTO);
	/* Cut short, or the stream header's confirm flag: refused. */
	assert_int_equal(wn_dgram_target_decode(v4, 6, &out, &dflt), WN_EPROTO);
	const uint8_t conf[] = {0x82, 10, 0, 0, 9, 0, 53};
	assert_int_equal(wn_dgram_target_decode(conf, 7, &out, &dflt),
	                 WN_EPROTO);
	assert_int_equal(wn_dgram_target_decode(v4, 0, &out, &dflt), WN_EPROTO);
}

static void test_data_with_target_and_fragment(void **state)
{
	(void)state;
	const uint8_t tgt[] = {2, 10, 0, 0, 9, 0, 53};
	struct wn_dgram_msg m = {.flow = 300,
	                         .type = WN_DGRAM_DATA,
	                         .flags = WN_DGRAM_F_TARGET | WN_DGRAM_F_FRAG,
	                         .target = tgt,
	                         .target_len = sizeof(tgt),
	                         .dgram_id = 0x1234,
	                         .frag_index = 0};
	uint8_t b[64];
	int h = wn_dgram_encode_hdr(&m, b, sizeof(b));
	assert_int_equal(h, 2 + 1 + 3 + 7);
	assert_int_equal((size_t)h, wn_dgram_hdr_len(&m));
	const uint8_t want[] = {0x41, 0x2c, 0x30, 0x12, 0x34, 0, 2,
	                        10,   0,    0,    9,    0,    53};
	assert_memory_equal(b, want, sizeof(want));
	memcpy(b + h, "abc", 3);
	struct wn_dgram_msg d;
	assert_int_equal(wn_dgram_decode(b, (size_t)h + 3, &d), 0);
	assert_true(d.flow == 300);
	assert_int_equal(d.type, WN_DGRAM_DATA);
	assert_int_equal(d.flags, WN_DGRAM_F_TARGET | WN_DGRAM_F_FRAG);
	assert_int_equal(d.dgram_id, 0x1234);
	assert_int_equal(d.frag_index, 0);
	assert_int_equal(d.target_len, 7);
	assert_memory_equal(d.target, tgt, 7);
	assert_int_equal(d.payload_len, 3);
	assert_memory_equal(d.payload, "abc", 3);
	/* The body a held half keeps: target, then payload. */
	assert_ptr_equal(d.body, b + 6);
	assert_int_equal(d.body_len, 10);
	/* Every proper prefix of the header is refused. */
	for (int i = 0; i < h; i++)
		assert_int_equal(wn_dgram_decode(b, (size_t)i, &d), WN_EPROTO);
	/* An empty datagram is a datagram. */
	struct wn_dgram_msg e = {.flow = 1, .type = WN_DGRAM_DATA};
	h = wn_dgram_encode_hdr(&e, b, sizeof(b));
	assert_int_equal(h, 2);
	assert_int_equal(wn_dgram_decode(b, 2, &d), 0);
	assert_int_equal(d.payload_len, 0);
}

static void test_control_messages(void **state)
{
	(void)state;
	uint8_t b[16];
	struct wn_dgram_msg d;
	struct wn_dgram_msg c = {
	    .flow = 7, .type = WN_DGRAM_CLOSE, .reason = 2};
	assert_int_equal(wn_dgram_encode_hdr(&c, b, sizeof(b)), 3);
	const uint8_t cw[] = {7, 2, 2};
	assert_memory_equal(b, cw, 3);
	assert_int_equal(wn_dgram_decode(b, 3, &d), 0);
	assert_int_equal(d.type, WN_DGRAM_CLOSE);
	assert_int_equal(d.reason, 2);
	assert_int_equal(wn_dgram_decode(b, 2, &d), WN_EPROTO);
	const uint8_t ack[] = {7, 1}, unk[] = {7, 3};
	assert_int_equal(wn_dgram_decode(ack, 2, &d), 0);
	assert_int_equal(d.type, WN_DGRAM_ACK);
	assert_int_equal(wn_dgram_decode(unk, 2, &d), 0);
	assert_int_equal(d.type, WN_DGRAM_UNKNOWN);
	/* Nothing may follow a message without payload. */
	const uint8_t ack_x[] = {7, 1, 0}, close_x[] = {7, 2, 0, 0};
	assert_int_equal(wn_dgram_decode(ack_x, 3, &d), WN_EPROTO);
	assert_int_equal(wn_dgram_decode(close_x, 4, &d), WN_EPROTO);
	/* OPEN needs its target, and only that. */
	const uint8_t open[] = {7, 0x14, 0}, open_bare[] = {7, 4};
	assert_int_equal(wn_dgram_decode(open, 3, &d), 0);
	assert_int_equal(d.type, WN_DGRAM_OPEN);
	assert_int_equal(d.target_len, 1);
	assert_int_equal(wn_dgram_decode(open_bare, 2, &d), WN_EPROTO);
	struct wn_dgram_msg o = {.flow = 7, .type = WN_DGRAM_OPEN};
	assert_int_equal(wn_dgram_encode_hdr(&o, b, sizeof(b)), WN_EINVAL);
}

/* FEC: a data shard wraps a message without its flow id; a parity shard
 * carries its group's count; what a decoder would refuse is refused. */
static void test_fec(void **state)
{
	(void)state;
	uint8_t b[64];
	struct wn_dgram_msg d, in;
	struct wn_dgram_msg f = {.flow = 9,
	                         .type = WN_DGRAM_FEC,
	                         .fec_group = 0x1234,
	                         .fec_index = 2,
	                         .fec_data = 10,
	                         .fec_parity = 3,
	                         .fec_delay = 5};
	assert_int_equal(wn_dgram_hdr_len(&f), 8);
	assert_int_equal(wn_dgram_encode_hdr(&f, b, sizeof(b)), 8);
	const uint8_t w[] = {9, 5, 0x12, 0x34, 2, 10, 3, 5};
	assert_memory_equal(b, w, 8);
	/* The shard: DATA with a target (the default) and payload "hi". */
	b[8] = 0x10;
	b[9] = 0;
	b[10] = 'h';
	b[11] = 'i';
	assert_int_equal(wn_dgram_decode(b, 12, &d), 0);
	assert_int_equal(d.type, WN_DGRAM_FEC);
	assert_int_equal(d.fec_group, 0x1234);
	assert_int_equal(d.fec_index, 2);
	assert_int_equal(d.fec_data, 10);
	assert_int_equal(d.fec_parity, 3);
	assert_int_equal(d.fec_delay, 5);
	assert_int_equal(d.body_len, 4);
	assert_int_equal(wn_dgram_decode_inner(d.flow, d.body, d.body_len, &in),
	                 0);
	assert_int_equal(in.flow, 9);
	assert_int_equal(in.type, WN_DGRAM_DATA);
	assert_int_equal(in.target_len, 1);
	assert_int_equal(in.payload_len, 2);
	/* Only DATA and OPEN travel in shards. */
	const uint8_t ack[] = {1}, fec[] = {5, 0, 0, 0, 1, 1, 1, 0};
	assert_int_equal(wn_dgram_decode_inner(9, ack, 1, &in), WN_EPROTO);
	assert_int_equal(wn_dgram_decode_inner(9, fec, 8, &in), WN_EPROTO);
	/* Parity: the count byte, then at least a length and a byte. */
	f.fec_index = 11;
	f.fec_count = 4;
	assert_int_equal(wn_dgram_encode_hdr(&f, b, sizeof(b)), 9);
	assert_int_equal(b[8], 4);
	memset(b + 9, 0xAA, 3);
	assert_int_equal(wn_dgram_decode(b, 12, &d), 0);
	assert_int_equal(d.fec_count, 4);
	assert_int_equal(d.body_len, 3);
	assert_int_equal(wn_dgram_decode(b, 11, &d), WN_EPROTO);
	/* Counts out of range. */
	b[8] = 11; /* count above data */
	assert_int_equal(wn_dgram_decode(b, 12, &d), WN_EPROTO);
	b[8] = 4;
	b[4] = 13; /* index past the group */
	assert_int_equal(wn_dgram_decode(b, 12, &d), WN_EPROTO);
	b[4] = 11;
	b[5] = WN_DGRAM_FEC_DATA_MAX + 1;
	assert_int_equal(wn_dgram_decode(b, 12, &d), WN_EPROTO);
	b[5] = 10;
	b[7] = 0; /* no delay */
	assert_int_equal(wn_dgram_decode(b, 12, &d), WN_EPROTO);
	b[7] = 5;
	b[1] = 0x15; /* flags on FEC */
	assert_int_equal(wn_dgram_decode(b, 12, &d), WN_EPROTO);
	f.fec_parity = 0;
	assert_int_equal(wn_dgram_encode_hdr(&f, b, sizeof(b)), WN_EINVAL);
}

static void test_malformed_refused(void **state)
{
	(void)state;
	struct wn_dgram_msg d;
	const uint8_t reserved[] = {1, 0x40}, type[] = {1, 6},
	              ack_flag[] = {1, 0x11, 0}, idx2[] = {1, 0x20, 0, 1, 2},
	              tgt_on_1[] = {1, 0x30, 0, 1, 1, 0},
	              bad_tgt[] = {1, 0x10, 9}, empty[] = {0};
	assert_int_equal(wn_dgram_decode(reserved, 2, &d), WN_EPROTO);
	assert_int_equal(wn_dgram_decode(type, 2, &d), WN_EPROTO);
	assert_int_equal(wn_dgram_decode(ack_flag, 3, &d), WN_EPROTO);
	assert_int_equal(wn_dgram_decode(idx2, 5, &d), WN_EPROTO);
	assert_int_equal(wn_dgram_decode(tgt_on_1, 6, &d), WN_EPROTO);
	assert_int_equal(wn_dgram_decode(bad_tgt, 3, &d), WN_EPROTO);
	assert_int_equal(wn_dgram_decode(empty, 0, &d), WN_EPROTO);
	/* A varint flow id cut short. */
	const uint8_t cut[] = {0x80, 1};
	assert_int_equal(wn_dgram_decode(cut, 2, &d), WN_EPROTO);
	/* The encoder refuses what the decoder would. */
	struct wn_dgram_msg m = {.flow = 1ull << 62, .type = WN_DGRAM_DATA};
	uint8_t b[16];
	assert_int_equal(wn_dgram_encode_hdr(&m, b, sizeof(b)), WN_EINVAL);
	m.flow = 1;
	m.flags = WN_DGRAM_F_FRAG;
	m.frag_index = 2;
	assert_int_equal(wn_dgram_encode_hdr(&m, b, sizeof(b)), WN_EINVAL);
	m.frag_index = 0;
	assert_int_equal(wn_dgram_encode_hdr(&m, b, 3), WN_ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_targets_are_the_stream_header_encoding),
	    cmocka_unit_test(test_data_with_target_and_fragment),
	    cmocka_unit_test(test_control_messages),
	    cmocka_unit_test(test_fec),
	    cmocka_unit_test(test_malformed_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
