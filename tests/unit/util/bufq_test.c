/* Tests for the chunked queue: chunk boundaries, the limit, zero-copy
 * append, a randomized comparison against a flat buffer, bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/bufq.h"
#include "util/err.h"

/* The ENOMEM test asks malloc for an impossible size; under ASan that must
 * return NULL like glibc does rather than abort. Unused without ASan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

/* Deterministic pattern so that any misplaced byte shows. */
static void fill(uint8_t *p, size_t n, size_t start)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)((start + i) * 7 + 3);
}

static size_t max_chunks(size_t limit, size_t chunk)
{
	return (limit + chunk - 1) / chunk + 1 + WN_BUFQ_SPARE_MAX;
}

/* Concatenate what peek_iov describes and compare it with want. */
static void check_iov(const struct wn_bufq *q, const uint8_t *want, size_t n)
{
	struct iovec iov[64];
	uint8_t *flat = malloc(n + 1);
	size_t off = 0;
	int i, cnt;

	assert_non_null(flat);
	cnt = wn_bufq_peek_iov(q, iov, 64);
	for (i = 0; i < cnt; i++) {
		assert_true(iov[i].iov_len > 0);
		assert_true(off + iov[i].iov_len <= n);
		memcpy(flat + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	assert_int_equal(off, n);
	assert_memory_equal(flat, want, n);
	free(flat);
}

static void init_rejects(void **state)
{
	struct wn_bufq q;

	assert_int_equal(wn_bufq_init(&q, 0, 100), WN_EINVAL);
	assert_int_equal(wn_bufq_init(&q, SIZE_MAX, 100), WN_EINVAL);
	assert_int_equal(wn_bufq_init(&q, 16, 100), 0);
	assert_int_equal(wn_bufq_len(&q), 0);
	assert_int_equal(wn_bufq_space(&q), 100);
	assert_int_equal(wn_bufq_chunks(&q), 0);
	wn_bufq_free(&q);
}

static void across_chunks(void **state)
{
	uint8_t in[100], out[100];
	struct iovec iov[8];
	struct wn_bufq q;

	fill(in, sizeof(in), 0);
	assert_int_equal(wn_bufq_init(&q, 16, 1000), 0);
	/* 10 + 30 bytes: spans chunks 0..2 (16 + 16 + 8). */
	assert_int_equal(wn_bufq_write(&q, in, 10), 10);
	assert_int_equal(wn_bufq_write(&q, in + 10, 30), 30);
	assert_int_equal(wn_bufq_len(&q), 40);
	assert_int_equal(wn_bufq_chunks(&q), 3);
	assert_int_equal(wn_bufq_peek_iov(&q, iov, 8), 3);
	assert_int_equal(iov[0].iov_len, 16);
	assert_int_equal(iov[1].iov_len, 16);
	assert_int_equal(iov[2].iov_len, 8);
	check_iov(&q, in, 40);

	/* max_iov smaller than needed: a prefix. */
	assert_int_equal(wn_bufq_peek_iov(&q, iov, 2), 2);
	assert_int_equal(wn_bufq_peek_iov(&q, iov, 0), 0);

	/* Consume into the middle of the second chunk. */
	assert_int_equal(wn_bufq_consume(&q, 20), 0);
	assert_int_equal(wn_bufq_len(&q), 20);
	assert_int_equal(wn_bufq_peek_iov(&q, iov, 8), 2);
	assert_int_equal(iov[0].iov_len, 12);
	assert_int_equal(iov[1].iov_len, 8);
	check_iov(&q, in + 20, 20);
	/* The drained first chunk went to the spare list, not to free(). */
	assert_int_equal(wn_bufq_chunks(&q), 3);

	assert_int_equal(wn_bufq_peek(&q, out, 5), 5);
	assert_memory_equal(out, in + 20, 5);
	assert_int_equal(wn_bufq_len(&q), 20);
	assert_int_equal(wn_bufq_read(&q, out, 100), 20);
	assert_memory_equal(out, in + 20, 20);
	assert_int_equal(wn_bufq_len(&q), 0);
	assert_int_equal(wn_bufq_peek_iov(&q, iov, 8), 0);

	/* Too much consumed is refused and changes nothing. */
	assert_int_equal(wn_bufq_write(&q, in, 5), 5);
	assert_int_equal(wn_bufq_consume(&q, 6), WN_EINVAL);
	assert_int_equal(wn_bufq_len(&q), 5);
	check_iov(&q, in, 5);

	wn_bufq_free(&q);
	assert_int_equal(wn_bufq_chunks(&q), 0);
}

static void limit_enforced(void **state)
{
	uint8_t in[64];
	struct wn_bufq q;

	fill(in, sizeof(in), 0);
	assert_int_equal(wn_bufq_init(&q, 16, 50), 0);
	assert_int_equal(wn_bufq_write(&q, in, 40), 40);
	assert_int_equal(wn_bufq_space(&q), 10);
	/* Only the part under the limit is accepted. */
	assert_int_equal(wn_bufq_write(&q, in + 40, 24), 10);
	assert_int_equal(wn_bufq_len(&q), 50);
	assert_int_equal(wn_bufq_space(&q), 0);
	assert_int_equal(wn_bufq_write(&q, in, 1), WN_EAGAIN);
	assert_int_equal(wn_bufq_write(&q, in, 0), 0);
	check_iov(&q, in, 50);
	/* Room again after a consume. */
	assert_int_equal(wn_bufq_consume(&q, 3), 0);
	assert_int_equal(wn_bufq_space(&q), 3);
	assert_int_equal(wn_bufq_write(&q, in + 50, 14), 3);
	check_iov(&q, in + 3, 50);
	assert_true(wn_bufq_chunks(&q) <= max_chunks(50, 16));
	wn_bufq_free(&q);
}

static void reserve_commit(void **state)
{
	uint8_t in[64], *p, *p2;
	struct wn_bufq q;
	ssize_t n;

	fill(in, sizeof(in), 0);
	assert_int_equal(wn_bufq_init(&q, 16, 40), 0);

	n = wn_bufq_reserve(&q, &p);
	assert_int_equal(n, 16);
	memcpy(p, in, 10);
	/* More than reserved is refused. */
	assert_int_equal(wn_bufq_commit(&q, 17), WN_EINVAL);
	assert_int_equal(wn_bufq_len(&q), 0);
	assert_int_equal(wn_bufq_commit(&q, 10), 0);
	assert_int_equal(wn_bufq_len(&q), 10);

	/* The rest of the same chunk comes next, contiguous with the data. */
	n = wn_bufq_reserve(&q, &p2);
	assert_int_equal(n, 6);
	assert_ptr_equal(p2, p + 10);
	memcpy(p2, in + 10, 6);
	assert_int_equal(wn_bufq_commit(&q, 6), 0);

	/* Tail full: a new chunk; commit 0 leaves an empty tail behind. */
	n = wn_bufq_reserve(&q, &p);
	assert_int_equal(n, 16);
	assert_int_equal(wn_bufq_commit(&q, 0), 0);
	assert_int_equal(wn_bufq_chunks(&q), 2);
	check_iov(&q, in, 16);

	/* A write after that fills the empty tail first. */
	assert_int_equal(wn_bufq_write(&q, in + 16, 20), 20);
	assert_int_equal(wn_bufq_chunks(&q), 3);
	check_iov(&q, in, 36);

	/* Reserve never offers more than the limit allows. */
	n = wn_bufq_reserve(&q, &p);
	assert_int_equal(n, 4);
	memcpy(p, in + 36, 4);
	assert_int_equal(wn_bufq_commit(&q, 4), 0);
	assert_int_equal(wn_bufq_reserve(&q, &p), WN_EAGAIN);
	assert_int_equal(wn_bufq_commit(&q, 1), WN_EINVAL);
	check_iov(&q, in, 40);

	/* Drained: the remaining chunk rewinds, so reserve offers it whole. */
	assert_int_equal(wn_bufq_consume(&q, 40), 0);
	n = wn_bufq_reserve(&q, &p);
	assert_int_equal(n, 16);
	wn_bufq_free(&q);
}

static void nomem_leaves_queue_unchanged(void **state)
{
	struct wn_bufq q;
	uint8_t *p;

	/* A chunk size no allocator can satisfy. */
	assert_int_equal(wn_bufq_init(&q, SIZE_MAX / 4, SIZE_MAX), 0);
	assert_int_equal(wn_bufq_write(&q, "abc", 3), WN_ENOMEM);
	assert_int_equal(wn_bufq_reserve(&q, &p), WN_ENOMEM);
	assert_int_equal(wn_bufq_len(&q), 0);
	assert_int_equal(wn_bufq_chunks(&q), 0);
	assert_int_equal(wn_bufq_peek_iov(&q, NULL, 0), 0);
	wn_bufq_free(&q);
}

static void spares_bounded_and_shrink(void **state)
{
	uint8_t in[16 * 10];
	struct wn_bufq q;
	int round;

	fill(in, sizeof(in), 0);
	assert_int_equal(wn_bufq_init(&q, 16, sizeof(in)), 0);
	assert_int_equal(wn_bufq_write(&q, in, sizeof(in)),
	                 (ssize_t)sizeof(in));
	assert_int_equal(wn_bufq_chunks(&q), 10);
	/* Draining 10 chunks keeps 1 (rewound) plus WN_BUFQ_SPARE_MAX. */
	assert_int_equal(wn_bufq_consume(&q, sizeof(in)), 0);
	assert_int_equal(wn_bufq_chunks(&q), 1 + WN_BUFQ_SPARE_MAX);

	/* Steady traffic of up to three chunks reuses the same chunks. */
	for (round = 0; round < 100; round++) {
		assert_int_equal(wn_bufq_write(&q, in, 40), 40);
		assert_int_equal(wn_bufq_consume(&q, 40), 0);
		assert_int_equal(wn_bufq_chunks(&q), 1 + WN_BUFQ_SPARE_MAX);
	}

	assert_int_equal(wn_bufq_write(&q, in, 20), 20);
	wn_bufq_shrink(&q);
	/* Data is kept: two chunks hold it. */
	assert_int_equal(wn_bufq_chunks(&q), 2);
	check_iov(&q, in, 20);
	assert_int_equal(wn_bufq_consume(&q, 20), 0);
	wn_bufq_shrink(&q);
	assert_int_equal(wn_bufq_chunks(&q), 0);
	/* Still usable after shrinking to nothing. */
	assert_int_equal(wn_bufq_write(&q, in, 5), 5);
	check_iov(&q, in, 5);
	wn_bufq_free(&q);
	assert_int_equal(wn_bufq_chunks(&q), 0);
}

/* xorshift64*: deterministic and independent of libc's rand(). */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

/* Random operations on the queue and on a flat model buffer must agree byte
 * for byte, and allocation must stay within the documented bound. */
static void run_model(size_t chunk, size_t limit, uint64_t seed, int ops)
{
	/* tmp takes whole writes and reads, which may exceed the limit. */
	size_t tmpsz = limit + chunk * 3 + 2;
	uint8_t *model = malloc(limit), *tmp = malloc(tmpsz);
	size_t mlen = 0, written = 0, n;
	struct wn_bufq q;
	ssize_t r;
	uint8_t *p;
	int i;

	assert_non_null(model);
	assert_non_null(tmp);
	assert_int_equal(wn_bufq_init(&q, chunk, limit), 0);
	for (i = 0; i < ops; i++) {
		switch (rnd(&seed) % 6) {
		case 0:
		case 1: /* write */
			n = rnd(&seed) % (chunk * 3 + 2);
			fill(tmp, n, written);
			r = wn_bufq_write(&q, tmp, n);
			if (n == 0) {
				assert_int_equal(r, 0);
			} else if (mlen == limit) {
				assert_int_equal(r, WN_EAGAIN);
			} else {
				size_t want =
				    n < limit - mlen ? n : limit - mlen;

				assert_int_equal(r, (ssize_t)want);
				memcpy(model + mlen, tmp, want);
				mlen += want;
				written += want;
			}
			break;
		case 2: /* reserve + partial commit */
			r = wn_bufq_reserve(&q, &p);
			if (mlen == limit) {
				assert_int_equal(r, WN_EAGAIN);
				break;
			}
			assert_true(r > 0 && (size_t)r <= limit - mlen);
			assert_true((size_t)r <= chunk);
			n = rnd(&seed) % ((size_t)r + 1);
			fill(p, n, written);
			assert_int_equal(wn_bufq_commit(&q, n), 0);
			memcpy(model + mlen, p, n);
			mlen += n;
			written += n;
			break;
		case 3:
		case 4: /* consume */
			n = rnd(&seed) % (chunk * 3 + 2);
			if (n > mlen) {
				assert_int_equal(wn_bufq_consume(&q, n),
				                 WN_EINVAL);
				n = mlen;
			}
			assert_int_equal(wn_bufq_consume(&q, n), 0);
			memmove(model, model + n, mlen - n);
			mlen -= n;
			break;
		default: /* read */
			n = rnd(&seed) % (chunk * 2 + 2);
			r = (ssize_t)wn_bufq_read(&q, tmp, n);
			assert_int_equal(r, (ssize_t)(n < mlen ? n : mlen));
			assert_memory_equal(tmp, model, (size_t)r);
			memmove(model, model + r, mlen - (size_t)r);
			mlen -= (size_t)r;
			break;
		}
		assert_int_equal(wn_bufq_len(&q), mlen);
		assert_int_equal(wn_bufq_space(&q), limit - mlen);
		assert_true(wn_bufq_chunks(&q) <= max_chunks(limit, chunk));
		if (i % 16 == 0 || mlen < 64)
			check_iov(&q, model, mlen);
	}
	check_iov(&q, model, mlen);
	wn_bufq_free(&q);
	assert_int_equal(wn_bufq_chunks(&q), 0);
	free(model);
	free(tmp);
}

static void model_random(void **state)
{
	run_model(16, 200, 0x9e3779b97f4a7c15u, 20000);
	run_model(16, 64, 0x1234567u, 20000); /* limit a multiple of chunk */
	run_model(7, 30, 0xdeadbeefu, 20000); /* odd sizes */
	run_model(64, 10, 0x42u, 5000);       /* limit under one chunk */
	run_model(1, 9, 0x77u, 5000);         /* one-byte chunks */
}

static void peek_iov_at_skips(void **state)
{
	(void)state;
	struct wn_bufq q;
	uint8_t data[100], got[100];
	for (int i = 0; i < 100; i++)
		data[i] = (uint8_t)i;
	assert_int_equal(wn_bufq_init(&q, 16, 1000), 0);
	assert_int_equal(wn_bufq_write(&q, data, 100), 100);
	for (size_t skip = 0; skip <= 100; skip++) {
		struct iovec iov[16];
		int n = wn_bufq_peek_iov_at(&q, skip, iov, 16);
		size_t off = 0;
		for (int i = 0; i < n; i++) {
			memcpy(got + off, iov[i].iov_base, iov[i].iov_len);
			off += iov[i].iov_len;
		}
		assert_int_equal(off, 100 - skip);
		assert_memory_equal(got, data + skip, 100 - skip);
	}
	/* After a partial consume the offset counts from the new head. */
	assert_int_equal(wn_bufq_consume(&q, 10), 0);
	struct iovec iov[16];
	assert_int_equal(wn_bufq_peek_iov_at(&q, 5, iov, 1), 1);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[0], 15);
	wn_bufq_free(&q);
}

/* Concatenates what peek_iov_at(skip) describes (up to max_iov iovecs)
 * into out; returns the byte count. */
static size_t flat_at(struct wn_bufq *q, size_t skip, int max_iov, uint8_t *out)
{
	struct iovec iov[8];
	size_t off = 0;
	int n = wn_bufq_peek_iov_at(q, skip, iov, max_iov);

	assert_true(n >= 0 && n <= max_iov);
	for (int i = 0; i < n; i++) {
		assert_true(iov[i].iov_len > 0);
		memcpy(out + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	return off;
}

/* A sender's pattern, the one the cursor is for: append, send from
 * `sent` a little at a time, drop acknowledged bytes from the head, now
 * and then rewind (any skip must stay correct). Every peek must match a
 * flat model byte for byte, wherever the cursor was left. */
static void run_sender(size_t chunk, size_t limit, uint64_t seed, int ops)
{
	uint8_t *model = malloc(limit), *tmp = malloc(limit + chunk * 8);
	size_t mlen = 0, sent = 0, written = 0, n, got, want;
	struct wn_bufq q;
	ssize_t r;

	assert_non_null(model);
	assert_non_null(tmp);
	assert_int_equal(wn_bufq_init(&q, chunk, limit), 0);
	for (int i = 0; i < ops; i++) {
		switch (rnd(&seed) % 8) {
		case 0:
		case 1: /* the producer appends */
			n = rnd(&seed) % (chunk * 3 + 2);
			fill(tmp, n, written);
			r = wn_bufq_write(&q, tmp, n);
			if (r > 0) {
				memcpy(model + mlen, tmp, (size_t)r);
				mlen += (size_t)r;
				written += (size_t)r;
			}
			break;
		case 2: /* acknowledged: consume up to what was sent */
			n = sent ? rnd(&seed) % (sent + 1) : 0;
			assert_int_equal(wn_bufq_consume(&q, n), 0);
			memmove(model, model + n, mlen - n);
			mlen -= n;
			sent -= n;
			break;
		case 3: /* a rewind, or a jump ahead */
			sent = rnd(&seed) % (mlen + 1);
			/* fall through */
		default: /* send a packet's worth from `sent` */
			got = flat_at(&q, sent, 1 + (int)(rnd(&seed) % 4), tmp);
			assert_true(sent + got <= mlen);
			assert_memory_equal(tmp, model + sent, got);
			want = rnd(&seed) % (chunk + 2);
			sent += want < got ? want : got;
			break;
		}
		/* With room for every chunk, the whole rest is described. */
		if (i % 8 == 0) {
			uint8_t *all = malloc(mlen + 1);
			size_t skip = rnd(&seed) % (mlen + 1);
			struct iovec iov[8];
			size_t off = 0;
			int k;

			assert_non_null(all);
			k = wn_bufq_peek_iov_at(&q, skip, iov, 8);
			for (int j = 0; j < k; j++) {
				memcpy(all + off, iov[j].iov_base,
				       iov[j].iov_len);
				off += iov[j].iov_len;
			}
			if (k < 8)
				assert_int_equal(off, mlen - skip);
			assert_memory_equal(all, model + skip, off);
			free(all);
		}
	}
	wn_bufq_free(&q);
	free(model);
	free(tmp);
}

static void peek_iov_at_cursor(void **state)
{
	(void)state;
	run_sender(16, 200, 0x5eedu, 30000);
	run_sender(7, 100, 0xfeedu, 30000);
	run_sender(1, 20, 0xabcu, 10000);
	run_sender(1024, 8192, 0x31337u, 10000);
}

/* The cursor survives a consume that ends before it and is dropped by one
 * that reaches it, by a shrink of an empty queue and by free. */
static void peek_iov_at_cursor_lifetime(void **state)
{
	(void)state;
	struct wn_bufq q;
	uint8_t data[64];
	struct iovec iov[2];

	for (int i = 0; i < 64; i++)
		data[i] = (uint8_t)i;
	assert_int_equal(wn_bufq_init(&q, 8, 64), 0);
	assert_int_equal(wn_bufq_write(&q, data, 64), 64);
	assert_int_equal(wn_bufq_peek_iov_at(&q, 40, iov, 2), 2);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[0], 40);
	assert_int_equal(iov[0].iov_len, 8);
	/* Consume three whole chunks: the cursor chunk now starts at 16. */
	assert_int_equal(wn_bufq_consume(&q, 24), 0);
	assert_int_equal(wn_bufq_peek_iov_at(&q, 17, iov, 1), 1);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[0], 41);
	/* A consume into the cursor's chunk drops it. */
	assert_int_equal(wn_bufq_consume(&q, 20), 0);
	assert_int_equal(wn_bufq_peek_iov_at(&q, 0, iov, 1), 1);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[0], 44);
	/* A rewind below the cursor walks from the head. */
	assert_int_equal(wn_bufq_peek_iov_at(&q, 15, iov, 1), 1);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[0], 59);
	assert_int_equal(wn_bufq_peek_iov_at(&q, 3, iov, 1), 1);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[0], 47);
	/* Drained and shrunk, then refilled: fresh chunks, right bytes. */
	assert_int_equal(wn_bufq_consume(&q, 20), 0);
	wn_bufq_shrink(&q);
	assert_int_equal(wn_bufq_chunks(&q), 0);
	assert_int_equal(wn_bufq_peek_iov_at(&q, 0, iov, 2), 0);
	assert_int_equal(wn_bufq_write(&q, data + 1, 20), 20);
	assert_int_equal(wn_bufq_peek_iov_at(&q, 10, iov, 1), 1);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[0], 11);
	wn_bufq_free(&q);
	assert_int_equal(wn_bufq_peek_iov_at(&q, 0, iov, 2), 0);
	assert_int_equal(wn_bufq_write(&q, data, 9), 9);
	assert_int_equal(wn_bufq_peek_iov_at(&q, 8, iov, 2), 1);
	assert_int_equal(((uint8_t *)iov[0].iov_base)[0], 8);
	wn_bufq_free(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(init_rejects),
	    cmocka_unit_test(across_chunks),
	    cmocka_unit_test(limit_enforced),
	    cmocka_unit_test(reserve_commit),
	    cmocka_unit_test(nomem_leaves_queue_unchanged),
	    cmocka_unit_test(spares_bounded_and_shrink),
	    cmocka_unit_test(model_random),
	    cmocka_unit_test(peek_iov_at_skips),
	    cmocka_unit_test(peek_iov_at_cursor),
	    cmocka_unit_test(peek_iov_at_cursor_lifetime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
