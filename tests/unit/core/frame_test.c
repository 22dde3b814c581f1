#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/frame.h"
#include "util/err.h"

/* Decodes all of in[0, len) fed in pieces of `step` bytes; collects packets
 * back to back into out. Returns the number of packets, or the error. */
static int decode_all(const uint8_t *in, size_t len, size_t step, size_t cap,
                      uint8_t *out, size_t *outlen, size_t *lens)
{
	uint8_t buf[WN_FRAME_MAX];
	struct wn_frame_dec d;
	int n = 0;

	wn_frame_dec_init(&d, buf, cap);
	*outlen = 0;
	for (size_t off = 0; off < len;) {
		size_t piece = len - off < step ? len - off : step;
		size_t pos = 0;
		while (pos < piece) {
			const uint8_t *pkt;
			size_t plen, used;
			int rc =
			    wn_frame_dec_feed(&d, in + off + pos, piece - pos,
			                      &used, &pkt, &plen);
			if (rc < 0)
				return rc;
			pos += used;
			if (rc == 1) {
				memcpy(out + *outlen, pkt, plen);
				*outlen += plen;
				lens[n++] = plen;
			} else {
				assert_int_equal(pos, piece);
			}
		}
		off += piece;
	}
	return n;
}

static void test_wire_format(void **state)
{
	(void)state;
	uint8_t buf[32];
	struct wn_wr wr;
	wn_wr_init(&wr, buf, sizeof(buf));
	assert_int_equal(wn_frame_put_data(&wr, (const uint8_t *)"abc", 3), 0);
	assert_int_equal(wn_frame_put_padding(&wr, (const uint8_t *)"zz", 2),
	                 0);
	assert_int_equal(wn_frame_put_padding(&wr, NULL, 0), 0);
	const uint8_t want[] = {0x00, 0x03, 'a', 'b',  'c', 0x80,
	                        0x02, 'z',  'z', 0x80, 0x00};
	assert_int_equal(wn_wr_len(&wr), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_put_limits(void **state)
{
	(void)state;
	static uint8_t big[WN_FRAME_MAX + 1];
	uint8_t buf[8];
	struct wn_wr wr;
	wn_wr_init(&wr, buf, sizeof(buf));
	assert_int_equal(wn_frame_put_data(&wr, big, 0), WN_EINVAL);
	assert_int_equal(wn_frame_put_data(&wr, big, WN_FRAME_MAX + 1),
	                 WN_EINVAL);
	assert_int_equal(wn_frame_put_padding(&wr, big, WN_FRAME_MAX + 1),
	                 WN_EINVAL);
	assert_int_equal(wn_frame_put_data(&wr, big, 7), WN_ENOSPC);
	/* Sticky: nothing more goes in. */
	assert_int_equal(wn_frame_put_data(&wr, big, 1), WN_ENOSPC);
}

/* Packets and padding interleaved survive every split of the input. */
static void test_any_split(void **state)
{
	(void)state;
	static uint8_t wire[70000], out[70000], pkt[3000];
	size_t lens[64], outlen;
	struct wn_wr wr;
	size_t sizes[] = {1, 2, 1200, 1452, 3000, 17};
	wn_wr_init(&wr, wire, sizeof(wire));
	for (size_t i = 0; i < sizeof(pkt); i++)
		pkt[i] = (uint8_t)(i * 7 + 3);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(wn_frame_put_padding(&wr, pkt, i * 5), 0);
		assert_int_equal(wn_frame_put_data(&wr, pkt, sizes[i]), 0);
	}
	size_t len = wn_wr_len(&wr);
	size_t steps[] = {1, 2, 3, 7, 100, 1453, 65536};
	for (size_t s = 0; s < 7; s++) {
		int n =
		    decode_all(wire, len, steps[s], 3000, out, &outlen, lens);
		assert_int_equal(n, 6);
		size_t off = 0;
		for (size_t i = 0; i < 6; i++) {
			assert_int_equal(lens[i], sizes[i]);
			assert_memory_equal(out + off, pkt, sizes[i]);
			off += sizes[i];
		}
	}
}

static void test_bad_records(void **state)
{
	(void)state;
	uint8_t out[16];
	size_t lens[4], outlen;
	/* An empty data record. */
	const uint8_t empty[] = {0x00, 0x00};
	assert_int_equal(decode_all(empty, 2, 1, 100, out, &outlen, lens),
	                 WN_EPROTO);
	/* A data record longer than the decoder accepts (101 > 100). */
	const uint8_t big[] = {0x00, 101, 1, 2};
	assert_int_equal(decode_all(big, 4, 4, 100, out, &outlen, lens),
	                 WN_EPROTO);
	/* Padding may be longer than the packet limit. */
	uint8_t pad[2 + 200] = {0x80, 200};
	assert_int_equal(
	    decode_all(pad, sizeof(pad), 9, 100, out, &outlen, lens), 0);
	/* Errors are sticky. */
	uint8_t buf[100];
	struct wn_frame_dec d;
	const uint8_t *p;
	size_t pl, used;
	wn_frame_dec_init(&d, buf, sizeof(buf));
	assert_int_equal(wn_frame_dec_feed(&d, empty, 2, &used, &p, &pl),
	                 WN_EPROTO);
	const uint8_t good[] = {0x00, 0x01, 0x42};
	assert_int_equal(wn_frame_dec_feed(&d, good, 3, &used, &p, &pl),
	                 WN_EPROTO);
}

/* A whole record in one input is handed out in place, without a copy. */
static void test_zero_copy(void **state)
{
	(void)state;
	uint8_t buf[100];
	struct wn_frame_dec d;
	const uint8_t in[] = {0x00, 0x02, 'h', 'i', 0x00, 0x01, '!'};
	const uint8_t *p;
	size_t pl, used;
	wn_frame_dec_init(&d, buf, sizeof(buf));
	assert_int_equal(wn_frame_dec_feed(&d, in, sizeof(in), &used, &p, &pl),
	                 1);
	assert_int_equal(used, 4);
	assert_ptr_equal(p, in + 2);
	assert_int_equal(pl, 2);
	assert_int_equal(wn_frame_dec_feed(&d, in + 4, 3, &used, &p, &pl), 1);
	assert_ptr_equal(p, in + 6);
	assert_int_equal(wn_frame_dec_feed(&d, in, 0, &used, &p, &pl), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wire_format),
	    cmocka_unit_test(test_put_limits),
	    cmocka_unit_test(test_any_split),
	    cmocka_unit_test(test_bad_records),
	    cmocka_unit_test(test_zero_copy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
