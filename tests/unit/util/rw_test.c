/* Tests for the bounded reader/writer: every width and byte order against
 * hand-written bytes, varint boundaries, sticky errors, zero-copy access. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/rw.h"

/* Every fixed-width field in both byte orders, written then read back. */
static const uint8_t fixed_wire[] = {
    0xa5,                                           /* u8 */
    0x12, 0x34,                                     /* u16be */
    0x34, 0x12,                                     /* u16le */
    0x12, 0x34, 0x56, 0x78,                         /* u32be */
    0x78, 0x56, 0x34, 0x12,                         /* u32le */
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, /* u64be */
    0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, /* u64le */
    0xff, 0xfe,                                     /* u16be, high bit */
    0xfe, 0xff, 0xff, 0xff,                         /* u32le, high bit */
};

static void fixed_write(void **state)
{
	uint8_t buf[sizeof(fixed_wire)];
	struct wn_wr wr;

	memset(buf, 0xcc, sizeof(buf));
	wn_wr_init(&wr, buf, sizeof(buf));
	assert_int_equal(wn_wr_u8(&wr, 0xa5), 0);
	assert_int_equal(wn_wr_u16be(&wr, 0x1234), 0);
	assert_int_equal(wn_wr_u16le(&wr, 0x1234), 0);
	assert_int_equal(wn_wr_u32be(&wr, 0x12345678), 0);
	assert_int_equal(wn_wr_u32le(&wr, 0x12345678), 0);
	assert_int_equal(wn_wr_u64be(&wr, UINT64_C(0x0123456789abcdef)), 0);
	assert_int_equal(wn_wr_u64le(&wr, UINT64_C(0x0123456789abcdef)), 0);
	assert_int_equal(wn_wr_u16be(&wr, 0xfffe), 0);
	assert_int_equal(wn_wr_u32le(&wr, 0xfffffffe), 0);
	assert_int_equal(wr.err, 0);
	assert_int_equal(wn_wr_len(&wr), sizeof(fixed_wire));
	assert_int_equal(wn_wr_space(&wr), 0);
	assert_memory_equal(buf, fixed_wire, sizeof(fixed_wire));
}

static void fixed_read(void **state)
{
	struct wn_rd rd;

	wn_rd_init(&rd, fixed_wire, sizeof(fixed_wire));
	assert_int_equal(wn_rd_u8(&rd), 0xa5);
	assert_int_equal(wn_rd_u16be(&rd), 0x1234);
	assert_int_equal(wn_rd_u16le(&rd), 0x1234);
	assert_int_equal(wn_rd_u32be(&rd), 0x12345678);
	assert_int_equal(wn_rd_u32le(&rd), 0x12345678);
	assert_true(wn_rd_u64be(&rd) == UINT64_C(0x0123456789abcdef));
	assert_true(wn_rd_u64le(&rd) == UINT64_C(0x0123456789abcdef));
	assert_int_equal(wn_rd_u16be(&rd), 0xfffe);
	assert_true(wn_rd_u32le(&rd) == 0xfffffffeu);
	assert_int_equal(rd.err, 0);
	assert_int_equal(wn_rd_remaining(&rd), 0);
}

struct varint_case {
	uint64_t v;
	uint8_t len;
	uint8_t wire[8];
};

/* The boundaries of each length, and RFC 9000 Appendix A.1's examples. */
static const struct varint_case varints[] = {
    {0, 1, {0x00}},
    {37, 1, {0x25}},
    {63, 1, {0x3f}},
    {64, 2, {0x40, 0x40}},
    {15293, 2, {0x7b, 0xbd}},
    {16383, 2, {0x7f, 0xff}},
    {16384, 4, {0x80, 0x00, 0x40, 0x00}},
    {494878333, 4, {0x9d, 0x7f, 0x3e, 0x7d}},
    {(UINT64_C(1) << 30) - 1, 4, {0xbf, 0xff, 0xff, 0xff}},
    {UINT64_C(1) << 30, 8, {0xc0, 0, 0, 0, 0x40, 0, 0, 0}},
    {UINT64_C(151288809941952652),
     8,
     {0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}},
    {WN_VARINT_MAX, 8, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
};

static void varint_round_trip(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(varints) / sizeof(varints[0]); i++) {
		const struct varint_case *c = &varints[i];
		uint8_t buf[9];
		struct wn_wr wr;
		struct wn_rd rd;

		assert_int_equal(wn_varint_len(c->v), c->len);
		memset(buf, 0xcc, sizeof(buf));
		wn_wr_init(&wr, buf, sizeof(buf));
		assert_int_equal(wn_wr_varint(&wr, c->v), 0);
		assert_int_equal(wn_wr_len(&wr), c->len);
		assert_memory_equal(buf, c->wire, c->len);
		assert_int_equal(buf[c->len], 0xcc);

		wn_rd_init(&rd, c->wire, c->len);
		assert_true(wn_rd_varint(&rd) == c->v);
		assert_int_equal(rd.err, 0);
		assert_int_equal(wn_rd_remaining(&rd), 0);
	}
}

static void varint_non_minimal_accepted(void **state)
{
	/* 37 in two bytes (RFC 9000 A.1 notes this decodes to 37), then 0 in
	 * eight bytes. */
	static const uint8_t wire[] = {0x40, 0x25, 0xc0, 0, 0, 0, 0, 0, 0, 0};
	struct wn_rd rd;

	wn_rd_init(&rd, wire, sizeof(wire));
	assert_true(wn_rd_varint(&rd) == 37);
	assert_true(wn_rd_varint(&rd) == 0);
	assert_int_equal(rd.err, 0);
	assert_int_equal(wn_rd_remaining(&rd), 0);
}

static void varint_too_large_rejected(void **state)
{
	uint8_t buf[16];
	struct wn_wr wr;

	assert_int_equal(wn_varint_len(WN_VARINT_MAX + 1), 0);
	assert_int_equal(wn_varint_len(UINT64_MAX), 0);

	wn_wr_init(&wr, buf, sizeof(buf));
	assert_int_equal(wn_wr_u8(&wr, 1), 0);
	assert_int_equal(wn_wr_varint(&wr, WN_VARINT_MAX + 1), WN_ERANGE);
	assert_int_equal(wr.err, WN_ERANGE);
	assert_int_equal(wn_wr_len(&wr), 1);
	/* Sticky: later writes are refused with the first error. */
	assert_int_equal(wn_wr_varint(&wr, 5), WN_ERANGE);
	assert_int_equal(wn_wr_u8(&wr, 2), WN_ERANGE);
	assert_int_equal(wn_wr_len(&wr), 1);

	wn_wr_init(&wr, buf, sizeof(buf));
	assert_int_equal(wn_wr_varint(&wr, UINT64_MAX), WN_ERANGE);
	assert_int_equal(wn_wr_len(&wr), 0);
}

static void varint_truncated(void **state)
{
	/* An 8-byte varint with only 7 bytes present must consume nothing. */
	static const uint8_t wire[] = {0xc0, 1, 2, 3, 4, 5, 6};
	struct wn_rd rd;

	wn_rd_init(&rd, wire, sizeof(wire));
	assert_true(wn_rd_varint(&rd) == 0);
	assert_int_equal(rd.err, WN_ETRUNC);
	assert_int_equal(rd.off, 0);

	wn_rd_init(&rd, NULL, 0);
	assert_true(wn_rd_varint(&rd) == 0);
	assert_int_equal(rd.err, WN_ETRUNC);
}

static void varint_no_space(void **state)
{
	uint8_t buf[3];
	struct wn_wr wr;

	wn_wr_init(&wr, buf, sizeof(buf));
	assert_int_equal(wn_wr_varint(&wr, 16384), WN_ENOSPC);
	assert_int_equal(wn_wr_len(&wr), 0);
	assert_int_equal(wr.err, WN_ENOSPC);
}

static void reader_truncation_sticky(void **state)
{
	static const uint8_t wire[] = {0x01, 0x02, 0x03, 0x04, 0x05};
	uint8_t out[4] = {0xcc, 0xcc, 0xcc, 0xcc};
	struct wn_rd rd;

	wn_rd_init(&rd, wire, sizeof(wire));
	assert_int_equal(wn_rd_u16be(&rd), 0x0102);
	/* Needs 4, has 3: fails without moving. */
	assert_int_equal(wn_rd_u32be(&rd), 0);
	assert_int_equal(rd.err, WN_ETRUNC);
	assert_int_equal(rd.off, 2);
	/* Would fit, but the reader has failed: still refused. */
	assert_int_equal(wn_rd_u8(&rd), 0);
	assert_int_equal(wn_rd_u16le(&rd), 0);
	assert_true(wn_rd_u64le(&rd) == 0);
	assert_null(wn_rd_ptr(&rd, 1));
	assert_int_equal(wn_rd_bytes(&rd, out, 1), WN_ETRUNC);
	assert_int_equal(out[0], 0xcc);
	assert_int_equal(wn_rd_skip(&rd, 0), WN_ETRUNC);
	assert_int_equal(rd.off, 2);
	assert_int_equal(wn_rd_remaining(&rd), 0);
	assert_int_equal(rd.err, WN_ETRUNC);
}

static void reader_first_error_wins(void **state)
{
	static const uint8_t wire[] = {0x06};
	struct wn_rd rd;

	wn_rd_init(&rd, wire, sizeof(wire));
	if (wn_rd_u8(&rd) != 5)
		wn_rd_fail(&rd, WN_EPROTO);
	assert_int_equal(wn_rd_u8(&rd), 0);
	assert_int_equal(rd.err, WN_EPROTO);
}

static void reader_exact_end(void **state)
{
	static const uint8_t wire[] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct wn_rd rd;

	/* Reading exactly up to the end is not an error. */
	wn_rd_init(&rd, wire, sizeof(wire));
	assert_int_equal(wn_rd_skip(&rd, 7), 0);
	assert_int_equal(wn_rd_u8(&rd), 8);
	assert_int_equal(rd.err, 0);
	assert_non_null(wn_rd_ptr(&rd, 0));
	assert_int_equal(rd.err, 0);
	assert_int_equal(wn_rd_u8(&rd), 0);
	assert_int_equal(rd.err, WN_ETRUNC);

	/* A huge length must not wrap the bounds check. */
	wn_rd_init(&rd, wire, sizeof(wire));
	assert_int_equal(wn_rd_skip(&rd, 1), 0);
	assert_null(wn_rd_ptr(&rd, SIZE_MAX));
	assert_int_equal(rd.off, 1);
}

static void reader_zero_copy(void **state)
{
	static const uint8_t wire[] = {0x03, 'a', 'b', 'c', 0x7f};
	const uint8_t *name;
	struct wn_rd rd;
	size_t n;

	wn_rd_init(&rd, wire, sizeof(wire));
	n = wn_rd_u8(&rd);
	name = wn_rd_ptr(&rd, n);
	/* The pointer is into the input itself, not a copy. */
	assert_ptr_equal(name, wire + 1);
	assert_memory_equal(name, "abc", 3);
	assert_int_equal(wn_rd_u8(&rd), 0x7f);
	assert_int_equal(rd.err, 0);

	/* Empty input given as NULL still yields a usable, non-NULL position. */
	wn_rd_init(&rd, NULL, 0);
	assert_non_null(wn_rd_ptr(&rd, 0));
	assert_int_equal(wn_rd_remaining(&rd), 0);
	assert_int_equal(rd.err, 0);
}

static void reader_bytes_and_sub(void **state)
{
	static const uint8_t wire[] = {0x00, 0x03, 0x10, 0x20, 0x30, 0xee};
	uint8_t out[3];
	struct wn_rd rd, sub;

	wn_rd_init(&rd, wire, sizeof(wire));
	wn_rd_sub(&rd, wn_rd_u16be(&rd), &sub);
	assert_int_equal(rd.err, 0);
	assert_int_equal(wn_rd_remaining(&sub), 3);
	assert_int_equal(wn_rd_bytes(&sub, out, 3), 0);
	assert_memory_equal(out, wire + 2, 3);
	/* Reading past the sub-reader fails it, not the outer reader. */
	assert_int_equal(wn_rd_u8(&sub), 0);
	assert_int_equal(sub.err, WN_ETRUNC);
	assert_int_equal(wn_rd_u8(&rd), 0xee);
	assert_int_equal(rd.err, 0);

	/* A length field pointing past the end fails both. */
	wn_rd_init(&rd, wire, sizeof(wire));
	wn_rd_skip(&rd, 2);
	wn_rd_sub(&rd, 9, &sub);
	assert_int_equal(rd.err, WN_ETRUNC);
	assert_int_equal(sub.err, WN_ETRUNC);
	assert_int_equal(wn_rd_remaining(&sub), 0);
	assert_int_equal(wn_rd_u8(&sub), 0);
}

static void writer_nospc_sticky(void **state)
{
	uint8_t buf[6];
	struct wn_wr wr;
	uint8_t *p;

	memset(buf, 0xcc, sizeof(buf));
	wn_wr_init(&wr, buf, sizeof(buf));
	assert_int_equal(wn_wr_u32be(&wr, 0xdeadbeef), 0);
	/* 4 bytes into 2: refused whole, nothing written. */
	assert_int_equal(wn_wr_u32le(&wr, 0x01020304), WN_ENOSPC);
	assert_int_equal(wn_wr_len(&wr), 4);
	assert_int_equal(buf[4], 0xcc);
	/* Would fit, but the writer has failed. */
	assert_int_equal(wn_wr_u8(&wr, 1), WN_ENOSPC);
	assert_int_equal(wn_wr_bytes(&wr, "x", 1), WN_ENOSPC);
	assert_int_equal(wn_wr_zero(&wr, 1), WN_ENOSPC);
	assert_null(wn_wr_ptr(&wr, 0));
	assert_int_equal(wn_wr_len(&wr), 4);
	assert_int_equal(wn_wr_space(&wr), 0);
	assert_int_equal(buf[4], 0xcc);
	assert_int_equal(buf[5], 0xcc);

	/* In-place writes and padding. */
	wn_wr_init(&wr, buf, sizeof(buf));
	p = wn_wr_ptr(&wr, 2);
	assert_ptr_equal(p, buf);
	p[0] = 'h';
	p[1] = 'i';
	assert_int_equal(wn_wr_zero(&wr, 3), 0);
	assert_int_equal(wn_wr_bytes(&wr, "!", 1), 0);
	assert_int_equal(wr.err, 0);
	assert_memory_equal(buf, "hi\0\0\0!", 6);
	assert_null(wn_wr_ptr(&wr, SIZE_MAX));
	assert_int_equal(wr.err, WN_ENOSPC);
}

static void raw_helpers(void **state)
{
	uint8_t b[8];

	wn_put_u16be(b, 0xbeef);
	assert_memory_equal(b, "\xbe\xef", 2);
	assert_int_equal(wn_get_u16le(b), 0xefbe);
	wn_put_u64le(b, UINT64_C(0x8877665544332211));
	assert_memory_equal(b, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	assert_true(wn_get_u64be(b) == UINT64_C(0x1122334455667788));
	assert_true(wn_get_u32be(b + 4) == 0x55667788u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(fixed_write),
	    cmocka_unit_test(fixed_read),
	    cmocka_unit_test(varint_round_trip),
	    cmocka_unit_test(varint_non_minimal_accepted),
	    cmocka_unit_test(varint_too_large_rejected),
	    cmocka_unit_test(varint_truncated),
	    cmocka_unit_test(varint_no_space),
	    cmocka_unit_test(reader_truncation_sticky),
	    cmocka_unit_test(reader_first_error_wins),
	    cmocka_unit_test(reader_exact_end),
	    cmocka_unit_test(reader_zero_copy),
	    cmocka_unit_test(reader_bytes_and_sub),
	    cmocka_unit_test(writer_nospc_sticky),
	    cmocka_unit_test(raw_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
