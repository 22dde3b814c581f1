/* Snappy's framing format: round trips through both chunk kinds, input
 * split anywhere, and the corruptions a decoder must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/snappyframe.h"
#include "util/err.h"

struct sink {
	uint8_t data[1 << 20];
	size_t len;
	int calls;
};

static int collect(void *ctx, const uint8_t *d, size_t n)
{
	struct sink *k = ctx;
	assert_true(k->len + n <= sizeof(k->data));
	memcpy(k->data + k->len, d, n);
	k->len += n;
	k->calls++;
	return 0;
}

static void test_crc32c(void **state)
{
	(void)state;
	assert_int_equal(wn_crc32c((const uint8_t *)"123456789", 9),
	                 0xE3069283u);
}

/* Encodes src in blocks of `block`, decodes feeding `step` bytes at a
 * time, and checks the result. Returns the encoded size. */
static size_t round_trip(const uint8_t *src, size_t n, size_t block,
                         size_t step)
{
	size_t cap = (n / block + 1) * wn_snappy_encode_bound(block);
	uint8_t *enc = malloc(cap);
	assert_non_null(enc);
	size_t elen = 0;
	int started = 0;
	for (size_t off = 0; off < n; off += block) {
		size_t b = n - off < block ? n - off : block;
		size_t w = wn_snappy_encode(&started, src + off, b, enc + elen,
		                            cap - elen);
		assert_true(w > 0);
		elen += w;
	}
	assert_memory_equal(enc, "\xff\x06\x00\x00sNaPpY", 10);
	struct wn_snappy_dec *d;
	assert_int_equal(wn_snappy_dec_new(&d), 0);
	struct sink *k = calloc(1, sizeof(*k));
	for (size_t off = 0; off < elen; off += step) {
		size_t s = elen - off < step ? elen - off : step;
		assert_int_equal(
		    wn_snappy_dec_input(d, enc + off, s, collect, k), 0);
	}
	assert_int_equal(k->len, n);
	assert_memory_equal(k->data, src, n);
	free(k);
	wn_snappy_dec_free(d);
	free(enc);
	return elen;
}

static void test_round_trips(void **state)
{
	(void)state;
	static uint8_t text[300000], noise[300000];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (uint8_t) "the kcptun profile "[i % 19];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(noise); i++) {
		x = x * 1103515245u + 12345u;
		noise[i] = (uint8_t)(x >> 16);
	}
	/* Repetitive data shrinks (compressed chunks), noise does not grow
	 * beyond the chunk headers (uncompressed chunks). */
	assert_true(round_trip(text, sizeof(text), 65536, 7) <
	            sizeof(text) / 10);
	size_t nz = round_trip(noise, sizeof(noise), 65536, 1000);
	assert_true(nz <= sizeof(noise) + 10 + 8 * 5);
	round_trip(text, 1, 1, 1);
	round_trip(noise, 5000, 333, 1);
}

static void feed_expect(const uint8_t *p, size_t n, int want)
{
	struct wn_snappy_dec *d;
	assert_int_equal(wn_snappy_dec_new(&d), 0);
	struct sink *k = calloc(1, sizeof(*k));
	assert_int_equal(wn_snappy_dec_input(d, p, n, collect, k), want);
	if (want != 0) /* sticky */
		assert_int_equal(wn_snappy_dec_input(d, p, 1, collect, k),
		                 want);
	free(k);
	wn_snappy_dec_free(d);
}

static void test_corruption(void **state)
{
	(void)state;
	uint8_t buf[256];
	int started = 0;
	size_t n = wn_snappy_encode(&started, (const uint8_t *)"hello", 5, buf,
	                            sizeof(buf));
	feed_expect(buf, n, 0);
	/* A flipped data bit fails the CRC. */
	buf[n - 1] ^= 1;
	feed_expect(buf, n, WN_EPROTO);
	buf[n - 1] ^= 1;
	/* Data before the stream identifier. */
	feed_expect(buf + 10, n - 10, WN_EPROTO);
	/* Padding and reserved skippable chunks are skipped; a reserved
	 * unskippable one is an error. */
	uint8_t pad[] = {0xff, 6, 0, 0, 's', 'N', 'a',  'P', 'p', 'Y', 0xfe,
	                 3,    0, 0, 1, 2,   3,   0x80, 0,   0,   0};
	feed_expect(pad, sizeof(pad), 0);
	pad[10] = 0x02;
	feed_expect(pad, sizeof(pad), WN_EPROTO);
	/* A data chunk longer than any block can be. */
	uint8_t big[] = {0xff, 6,   0,   0,    's',  'N',  'a',
	                 'P',  'p', 'Y', 0x01, 0x05, 0x00, 0x01};
	feed_expect(big, sizeof(big), WN_EPROTO);
	/* A compressed chunk that is not a snappy block. */
	uint8_t bad[] = {0xff, 6, 0, 0, 's', 'N', 'a', 'P',  'p',  'Y',  0x00,
	                 8,    0, 0, 0, 0,   0,   0,   0xff, 0xff, 0xff, 0xff};
	feed_expect(bad, sizeof(bad), WN_EPROTO);
	/* A wrong identifier. */
	uint8_t id[] = {0xff, 6, 0, 0, 's', 'N', 'a', 'P', 'p', 'X'};
	feed_expect(id, sizeof(id), WN_EPROTO);
}

/* A decoder costs what its stream has needed: small after a short chunk,
 * no more after a long header whose body has not come, the block only
 * with the first compressed chunk. */
static void test_decoder_grows_with_stream(void **state)
{
	(void)state;
	struct wn_snappy_dec *d;
	assert_int_equal(wn_snappy_dec_new(&d), 0);
	struct sink *k = calloc(1, sizeof(*k));
	static uint8_t enc[80000];
	int started = 0;
	static const uint8_t hello[] = "hello, kcptun";
	size_t n =
	    wn_snappy_encode(&started, hello, sizeof(hello), enc, sizeof(enc));
	assert_int_equal(wn_snappy_dec_input(d, enc, n, collect, k), 0);
	assert_true(wn_snappy_dec_footprint(d) < 1024);
	/* An uncompressed chunk's header claiming 65540 bytes, and 10 of
	 * them. */
	const uint8_t big[] = {0x01, 0x04, 0x00, 0x01, 1, 2, 3,
	                       4,    5,    6,    7,    8, 9, 10};
	assert_int_equal(wn_snappy_dec_input(d, big, sizeof(big), collect, k),
	                 0);
	assert_true(wn_snappy_dec_footprint(d) < 1024);
	wn_snappy_dec_free(d);

	static uint8_t text[65536];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (uint8_t) "compressible "[i % 13];
	assert_int_equal(wn_snappy_dec_new(&d), 0);
	started = 0;
	n = wn_snappy_encode(&started, text, sizeof(text), enc, sizeof(enc));
	k->len = 0;
	assert_int_equal(wn_snappy_dec_input(d, enc, n, collect, k), 0);
	assert_true(wn_snappy_dec_footprint(d) >= WN_SNAPPY_BLOCK);
	free(k);
	wn_snappy_dec_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32c),
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_corruption),
	    cmocka_unit_test(test_decoder_grows_with_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
