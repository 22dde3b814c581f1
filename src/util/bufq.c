#include "util/bufq.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Invariants between calls:
 *   - every chunk but the tail is full (end == chunk_size);
 *   - every chunk but the tail holds unread data (off < end), because a
 *     chunk drained by consume is recycled at once;
 *   - when the queue is empty there is at most one chunk, with off == end == 0
 *     so that the next append starts at its beginning.
 * These are what bound the number of chunks holding data by
 * ceil(limit / chunk_size) + 1. They also mean that a chunk's unread data
 * starts at a fixed queue offset until consume reaches that chunk, which is
 * what lets the peek_iov_at cursor (cur, cur_pos) survive appends and
 * consumes that end before it. */
struct wn_bufq_chunk {
	struct wn_bufq_chunk *next;
	size_t off; /* first unread byte */
	size_t end; /* one past the last written byte */
	uint8_t data[];
};

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Take a spare chunk or allocate one. Returns NULL on allocation failure. */
static struct wn_bufq_chunk *chunk_get(struct wn_bufq *q)
{
	struct wn_bufq_chunk *c = q->spare;

	if (c) {
		q->spare = c->next;
		q->nspare--;
	} else {
		c = malloc(sizeof(*c) + q->chunk_size);
		if (!c)
			return NULL;
		q->nchunks++;
	}
	c->next = NULL;
	c->off = 0;
	c->end = 0;
	return c;
}

/* Keep c as a spare if there is room for one, else free it. */
static void chunk_put(struct wn_bufq *q, struct wn_bufq_chunk *c)
{
	if (q->nspare < WN_BUFQ_SPARE_MAX) {
		c->next = q->spare;
		q->spare = c;
		q->nspare++;
		return;
	}
	free(c);
	q->nchunks--;
}

static void free_list(struct wn_bufq *q, struct wn_bufq_chunk *c)
{
	while (c) {
		struct wn_bufq_chunk *next = c->next;

		free(c);
		q->nchunks--;
		c = next;
	}
}

static void append_chunk(struct wn_bufq *q, struct wn_bufq_chunk *c)
{
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
}

int wn_bufq_init(struct wn_bufq *q, size_t chunk_size, size_t limit)
{
	/* Reserve returns a chunk's free space as ssize_t. */
	if (chunk_size == 0 ||
	    chunk_size > SSIZE_MAX - sizeof(struct wn_bufq_chunk))
		return WN_EINVAL;
	memset(q, 0, sizeof(*q));
	q->chunk_size = chunk_size;
	q->limit = limit;
	return 0;
}

void wn_bufq_free(struct wn_bufq *q)
{
	free_list(q, q->head);
	free_list(q, q->spare);
	q->head = NULL;
	q->tail = NULL;
	q->spare = NULL;
	q->nspare = 0;
	q->len = 0;
	q->cur = NULL;
	q->cur_pos = 0;
}

void wn_bufq_shrink(struct wn_bufq *q)
{
	free_list(q, q->spare);
	q->spare = NULL;
	q->nspare = 0;
	if (q->len == 0) {
		free_list(q, q->head);
		q->head = NULL;
		q->tail = NULL;
		q->cur = NULL;
		q->cur_pos = 0;
	}
}

size_t wn_bufq_len(const struct wn_bufq *q)
{
	return q->len;
}

size_t wn_bufq_space(const struct wn_bufq *q)
{
	return q->len < q->limit ? q->limit - q->len : 0;
}

size_t wn_bufq_chunks(const struct wn_bufq *q)
{
	return q->nchunks;
}

ssize_t wn_bufq_write(struct wn_bufq *q, const void *data, size_t len)
{
	struct wn_bufq_chunk *fresh = NULL, *last = NULL, *c;
	const uint8_t *src = data;
	size_t n, room, left, need, k;

	if (len == 0)
		return 0;
	n = min_sz(min_sz(len, wn_bufq_space(q)), SSIZE_MAX);
	if (n == 0)
		return WN_EAGAIN;

	/* Get every chunk the write needs before copying anything, so that an
	 * allocation failure leaves the queue exactly as it was. */
	room = q->tail ? q->chunk_size - q->tail->end : 0;
	if (n > room) {
		need = (n - room + q->chunk_size - 1) / q->chunk_size;
		while (need--) {
			c = chunk_get(q);
			if (!c) {
				while (fresh) {
					c = fresh->next;
					chunk_put(q, fresh);
					fresh = c;
				}
				return WN_ENOMEM;
			}
			if (last)
				last->next = c;
			else
				fresh = c;
			last = c;
		}
	}

	/* Fill the tail's free space, then the fresh chunks in order. */
	c = q->tail ? q->tail : fresh;
	if (fresh) {
		append_chunk(q, fresh);
		q->tail = last;
	}
	for (left = n; left; c = c->next) {
		k = min_sz(left, q->chunk_size - c->end);
		memcpy(c->data + c->end, src, k);
		c->end += k;
		src += k;
		left -= k;
	}
	q->len += n;
	return (ssize_t)n;
}

ssize_t wn_bufq_reserve(struct wn_bufq *q, uint8_t **ptr)
{
	size_t space = wn_bufq_space(q);
	struct wn_bufq_chunk *c = q->tail;

	if (space == 0)
		return WN_EAGAIN;
	if (!c || c->end == q->chunk_size) {
		/* Linked now, even though it stays empty until commit: an empty
		 * tail is allowed by the invariants and costs no data. */
		c = chunk_get(q);
		if (!c)
			return WN_ENOMEM;
		append_chunk(q, c);
	}
	*ptr = c->data + c->end;
	return (ssize_t)min_sz(q->chunk_size - c->end, space);
}

int wn_bufq_commit(struct wn_bufq *q, size_t n)
{
	struct wn_bufq_chunk *c = q->tail;

	if (n == 0)
		return 0;
	if (!c || n > q->chunk_size - c->end || n > wn_bufq_space(q))
		return WN_EINVAL;
	c->end += n;
	q->len += n;
	return 0;
}

int wn_bufq_peek_iov(const struct wn_bufq *q, struct iovec *iov, int max_iov)
{
	const struct wn_bufq_chunk *c;
	int n = 0;

	for (c = q->head; c && n < max_iov; c = c->next) {
		/* Only an empty tail (fresh from reserve) can hold nothing. */
		if (c->off == c->end)
			continue;
		iov[n].iov_base = (void *)(c->data + c->off);
		iov[n].iov_len = c->end - c->off;
		n++;
	}
	return n;
}

int wn_bufq_peek_iov_at(struct wn_bufq *q, size_t skip, struct iovec *iov,
                        int max_iov)
{
	struct wn_bufq_chunk *c = q->head;
	size_t pos = 0; /* queue offset of c's first unread byte */
	int n = 0;

	if (q->cur && q->cur_pos <= skip) {
		c = q->cur;
		pos = q->cur_pos;
	}
	/* Find the chunk holding offset skip; stop on the tail even when
	 * skip is at the very end, so the next call starts there. */
	while (c && c->next && skip - pos >= c->end - c->off) {
		pos += c->end - c->off;
		c = c->next;
	}
	if (!c || max_iov <= 0)
		return 0;
	q->cur = c;
	q->cur_pos = pos;
	skip -= pos;
	for (; c && n < max_iov; c = c->next) {
		size_t have = c->end - c->off;
		if (skip >= have) {
			skip -= have;
			continue;
		}
		iov[n].iov_base = c->data + c->off + skip;
		iov[n].iov_len = have - skip;
		skip = 0;
		n++;
	}
	return n;
}

size_t wn_bufq_peek(const struct wn_bufq *q, void *dst, size_t n)
{
	const struct wn_bufq_chunk *c;
	uint8_t *out = dst;
	size_t total = min_sz(n, q->len), left = total, k;

	for (c = q->head; left; c = c->next) {
		k = min_sz(left, c->end - c->off);
		memcpy(out, c->data + c->off, k);
		out += k;
		left -= k;
	}
	return total;
}

size_t wn_bufq_read(struct wn_bufq *q, void *dst, size_t n)
{
	size_t got = wn_bufq_peek(q, dst, n);

	wn_bufq_consume(q, got);
	return got;
}

int wn_bufq_consume(struct wn_bufq *q, size_t n)
{
	struct wn_bufq_chunk *c;
	size_t k;

	if (n > q->len)
		return WN_EINVAL;
	q->len -= n;
	/* The cursor's chunk survives, at an offset n lower, unless the
	 * consume reached it; then it starts over from the head. */
	if (q->cur && q->cur_pos > n) {
		q->cur_pos -= n;
	} else {
		q->cur = NULL;
		q->cur_pos = 0;
	}
	while (n) {
		c = q->head;
		k = min_sz(n, c->end - c->off);
		c->off += k;
		n -= k;
		if (c->off == c->end && c != q->tail) {
			q->head = c->next;
			chunk_put(q, c);
		}
	}
	/* Drained: the one chunk left is the tail; rewind it so the next
	 * append (or reserve, for a socket read) gets the whole chunk. */
	if (q->len == 0 && q->head) {
		q->head->off = 0;
		q->head->end = 0;
	}
	return 0;
}
