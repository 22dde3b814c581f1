/* Tests for the iovec ring: wraparound, full and empty edges, and a
 * randomized comparison against a flat buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/ring.h"

static void fill(uint8_t *p, size_t n, size_t start)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)((start + i) * 13 + 1);
}

/* Concatenate what read_iov describes and compare it with want. */
static void check_data(const struct wn_ring *r, const uint8_t *want, size_t n)
{
	struct iovec iov[2];
	uint8_t flat[256];
	size_t off = 0;
	int i, cnt;

	assert_true(n <= sizeof(flat));
	cnt = wn_ring_read_iov(r, iov);
	assert_true(cnt >= 0 && cnt <= 2);
	for (i = 0; i < cnt; i++) {
		assert_true(iov[i].iov_len > 0);
		memcpy(flat + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	for (; i < 2; i++) {
		assert_null(iov[i].iov_base);
		assert_int_equal(iov[i].iov_len, 0);
	}
	assert_int_equal(off, n);
	assert_memory_equal(flat, want, n);
}

static void init_rounds_up(void **state)
{
	struct wn_ring r;

	assert_int_equal(wn_ring_init(&r, 0), WN_EINVAL);
	assert_int_equal(wn_ring_cap(&r), 0);
	wn_ring_free(&r);
	assert_int_equal(wn_ring_init(&r, SIZE_MAX), WN_EINVAL);
	assert_int_equal(wn_ring_init(&r, 100), 0);
	assert_int_equal(wn_ring_cap(&r), 128);
	assert_int_equal(wn_ring_space(&r), 128);
	assert_int_equal(wn_ring_len(&r), 0);
	wn_ring_free(&r);
	assert_int_equal(wn_ring_init(&r, 64), 0);
	assert_int_equal(wn_ring_cap(&r), 64);
	wn_ring_free(&r);
	assert_int_equal(wn_ring_init(&r, 1), 0);
	assert_int_equal(wn_ring_cap(&r), 1);
	wn_ring_free(&r);
}

static void empty_and_full(void **state)
{
	uint8_t in[16], out[16];
	struct iovec iov[2];
	struct wn_ring r;

	fill(in, sizeof(in), 0);
	assert_int_equal(wn_ring_init(&r, 16), 0);
	/* Empty: nothing to read, all space in one piece. */
	assert_int_equal(wn_ring_read_iov(&r, iov), 0);
	assert_int_equal(wn_ring_write_iov(&r, iov), 1);
	assert_ptr_equal(iov[0].iov_base, r.buf);
	assert_int_equal(iov[0].iov_len, 16);
	assert_int_equal(iov[1].iov_len, 0);
	assert_int_equal(wn_ring_consume(&r, 1), WN_EINVAL);
	assert_int_equal(wn_ring_read(&r, out, 4), 0);

	/* Full: every byte usable, no space left. */
	assert_int_equal(wn_ring_write(&r, in, 20), 16);
	assert_int_equal(wn_ring_len(&r), 16);
	assert_int_equal(wn_ring_space(&r), 0);
	assert_int_equal(wn_ring_write_iov(&r, iov), 0);
	assert_null(iov[0].iov_base);
	assert_int_equal(wn_ring_commit(&r, 1), WN_EINVAL);
	assert_int_equal(wn_ring_write(&r, in, 1), 0);
	check_data(&r, in, 16);
	assert_int_equal(wn_ring_consume(&r, 17), WN_EINVAL);
	assert_int_equal(wn_ring_len(&r), 16);

	assert_int_equal(wn_ring_read(&r, out, 16), 16);
	assert_memory_equal(out, in, 16);
	assert_int_equal(wn_ring_len(&r), 0);

	assert_int_equal(wn_ring_write(&r, in, 5), 5);
	wn_ring_clear(&r);
	assert_int_equal(wn_ring_len(&r), 0);
	assert_int_equal(wn_ring_space(&r), 16);
	wn_ring_free(&r);
}

static void wraparound(void **state)
{
	uint8_t in[32];
	struct iovec iov[2];
	struct wn_ring r;

	fill(in, sizeof(in), 0);
	assert_int_equal(wn_ring_init(&r, 16), 0);
	/* Data at [0, 12), then consume 10: data at [10, 12). */
	assert_int_equal(wn_ring_write(&r, in, 12), 12);
	assert_int_equal(wn_ring_consume(&r, 10), 0);

	/* Free space wraps: [12, 16) then [0, 10). */
	assert_int_equal(wn_ring_write_iov(&r, iov), 2);
	assert_ptr_equal(iov[0].iov_base, r.buf + 12);
	assert_int_equal(iov[0].iov_len, 4);
	assert_ptr_equal(iov[1].iov_base, r.buf);
	assert_int_equal(iov[1].iov_len, 10);

	/* Fill across the wrap as readv would, commit 9 of the 14. */
	memcpy(iov[0].iov_base, in + 12, 4);
	memcpy(iov[1].iov_base, in + 16, 5);
	assert_int_equal(wn_ring_commit(&r, 9), 0);
	assert_int_equal(wn_ring_len(&r), 11);

	/* Data wraps: [10, 16) then [0, 5). */
	assert_int_equal(wn_ring_read_iov(&r, iov), 2);
	assert_ptr_equal(iov[0].iov_base, r.buf + 10);
	assert_int_equal(iov[0].iov_len, 6);
	assert_ptr_equal(iov[1].iov_base, r.buf);
	assert_int_equal(iov[1].iov_len, 5);
	check_data(&r, in + 10, 11);

	/* Free space is now one piece again, [5, 10). */
	assert_int_equal(wn_ring_write_iov(&r, iov), 1);
	assert_ptr_equal(iov[0].iov_base, r.buf + 5);
	assert_int_equal(iov[0].iov_len, 5);

	/* Consuming past the end leaves data at [0, 5) only. */
	assert_int_equal(wn_ring_consume(&r, 6), 0);
	assert_int_equal(wn_ring_read_iov(&r, iov), 1);
	assert_ptr_equal(iov[0].iov_base, r.buf);
	assert_int_equal(iov[0].iov_len, 5);
	check_data(&r, in + 16, 5);

	/* Emptying the ring rewinds it: the next read lands in one piece. */
	assert_int_equal(wn_ring_consume(&r, 5), 0);
	assert_int_equal(wn_ring_write_iov(&r, iov), 1);
	assert_ptr_equal(iov[0].iov_base, r.buf);
	assert_int_equal(iov[0].iov_len, 16);
	wn_ring_free(&r);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static void run_model(size_t cap, uint64_t seed, int ops)
{
	uint8_t model[256], tmp[256 + 3];
	struct iovec iov[2];
	size_t mlen = 0, written = 0, n, k, off;
	struct wn_ring r;
	int i, j, cnt, split = 0;

	assert_true(cap <= sizeof(model));
	assert_int_equal(wn_ring_init(&r, cap), 0);
	assert_int_equal(wn_ring_cap(&r), cap);
	for (i = 0; i < ops; i++) {
		switch (rnd(&seed) % 5) {
		case 0: /* copy in */
			n = rnd(&seed) % (cap + 3);
			fill(tmp, n, written);
			k = wn_ring_write(&r, tmp, n);
			assert_int_equal(k, n < cap - mlen ? n : cap - mlen);
			memcpy(model + mlen, tmp, k);
			mlen += k;
			written += k;
			break;
		case 1: /* readv-style: fill a prefix of the iovecs, commit */
			cnt = wn_ring_write_iov(&r, iov);
			n = rnd(&seed) % (cap - mlen + 1);
			fill(tmp, n, written);
			for (j = 0, off = 0; j < cnt && off < n; j++) {
				k = iov[j].iov_len < n - off ? iov[j].iov_len
				                             : n - off;
				memcpy(iov[j].iov_base, tmp + off, k);
				off += k;
			}
			split += cnt == 2;
			assert_int_equal(off, n);
			assert_int_equal(wn_ring_commit(&r, n), 0);
			memcpy(model + mlen, tmp, n);
			mlen += n;
			written += n;
			break;
		case 2: /* writev-style: consume a prefix */
			n = rnd(&seed) % (cap + 3);
			if (n > mlen) {
				assert_int_equal(wn_ring_consume(&r, n),
				                 WN_EINVAL);
				n = mlen;
			}
			assert_int_equal(wn_ring_consume(&r, n), 0);
			memmove(model, model + n, mlen - n);
			mlen -= n;
			break;
		default: /* copy out */
			n = rnd(&seed) % (cap + 3);
			k = wn_ring_read(&r, tmp, n);
			assert_int_equal(k, n < mlen ? n : mlen);
			assert_memory_equal(tmp, model, k);
			memmove(model, model + k, mlen - k);
			mlen -= k;
			break;
		}
		assert_int_equal(wn_ring_len(&r), mlen);
		assert_int_equal(wn_ring_space(&r), cap - mlen);
		check_data(&r, model, mlen);
	}
	/* The walk must have exercised split free space (impossible at
	 * capacity 2, where an empty ring rewinds to offset 0). */
	if (cap > 2)
		assert_true(split > 0);
	wn_ring_free(&r);
}

static void model_random(void **state)
{
	run_model(16, 0x9e3779b97f4a7c15u, 20000);
	run_model(256, 0xabcdefu, 20000);
	run_model(2, 0x5u, 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(init_rounds_up),
	    cmocka_unit_test(empty_and_full),
	    cmocka_unit_test(wraparound),
	    cmocka_unit_test(model_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
