#include "util/ring.h"

#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* head and tail count bytes ever consumed and committed, wrapping modulo
 * SIZE_MAX + 1. Because the capacity is a power of two it divides that
 * modulus, so tail - head is the queued length and (x & mask) the offset even
 * across the wrap, and a full ring (len == cap) is told apart from an empty one
 * without wasting a byte. */

/* Describe n bytes starting at position pos as one or two iovecs. */
static int span(const struct wn_ring *r, size_t pos, size_t n,
                struct iovec iov[2])
{
	size_t off = pos & r->mask;
	size_t first = r->mask + 1 - off;
	int cnt = 0;

	iov[0] = (struct iovec){NULL, 0};
	iov[1] = (struct iovec){NULL, 0};
	if (n == 0)
		return 0;
	if (first > n)
		first = n;
	iov[cnt++] = (struct iovec){r->buf + off, first};
	if (n > first)
		iov[cnt++] = (struct iovec){r->buf, n - first};
	return cnt;
}

int wn_ring_init(struct wn_ring *r, size_t cap)
{
	size_t c = 1;

	memset(r, 0, sizeof(*r));
	if (cap == 0 || cap > (SIZE_MAX >> 1) + 1)
		return WN_EINVAL;
	while (c < cap)
		c <<= 1;
	r->buf = malloc(c);
	if (!r->buf)
		return WN_ENOMEM;
	r->mask = c - 1;
	return 0;
}

void wn_ring_free(struct wn_ring *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

size_t wn_ring_cap(const struct wn_ring *r)
{
	return r->buf ? r->mask + 1 : 0;
}

size_t wn_ring_len(const struct wn_ring *r)
{
	return r->tail - r->head;
}

size_t wn_ring_space(const struct wn_ring *r)
{
	return wn_ring_cap(r) - wn_ring_len(r);
}

void wn_ring_clear(struct wn_ring *r)
{
	r->head = 0;
	r->tail = 0;
}

int wn_ring_write_iov(struct wn_ring *r, struct iovec iov[2])
{
	return span(r, r->tail, wn_ring_space(r), iov);
}

int wn_ring_commit(struct wn_ring *r, size_t n)
{
	if (n > wn_ring_space(r))
		return WN_EINVAL;
	r->tail += n;
	return 0;
}

int wn_ring_read_iov(const struct wn_ring *r, struct iovec iov[2])
{
	return span(r, r->head, wn_ring_len(r), iov);
}

int wn_ring_consume(struct wn_ring *r, size_t n)
{
	if (n > wn_ring_len(r))
		return WN_EINVAL;
	r->head += n;
	/* Rewind an empty ring so its free space is one contiguous piece. */
	if (r->head == r->tail)
		wn_ring_clear(r);
	return 0;
}

size_t wn_ring_write(struct wn_ring *r, const void *data, size_t n)
{
	struct iovec iov[2];
	const uint8_t *src = data;
	size_t done = 0, k;
	int i, cnt = wn_ring_write_iov(r, iov);

	for (i = 0; i < cnt && done < n; i++) {
		k = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
		memcpy(iov[i].iov_base, src + done, k);
		done += k;
	}
	r->tail += done;
	return done;
}

size_t wn_ring_read(struct wn_ring *r, void *dst, size_t n)
{
	struct iovec iov[2];
	uint8_t *out = dst;
	size_t done = 0, k;
	int i, cnt = wn_ring_read_iov(r, iov);

	for (i = 0; i < cnt && done < n; i++) {
		k = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
		memcpy(out + done, iov[i].iov_base, k);
		done += k;
	}
	wn_ring_consume(r, done);
	return done;
}
