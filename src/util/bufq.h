/* Chunked byte queue with a byte limit: the backpressure buffer.
 *
 * A FIFO of bytes kept in fixed-size chunks, so appending never moves queued
 * data and draining hands out iovecs that point straight into the chunks.
 * It sits wherever one side may produce faster than the other drains: a
 * stream's send and receive buffers, a carrier's output queue.
 *
 * Backpressure is the caller's job and is explicit: before reading more from
 * a producer (a socket, a stream) check wn_bufq_space(); when it is 0 stop
 * reading (uv_read_stop, shrink the advertised window) and resume once a
 * consume makes room. wn_bufq_write never exceeds the limit: it accepts a
 * prefix and says how much.
 *
 * Memory is bounded: at most ceil(limit / chunk_size) + 1 chunks hold data,
 * plus at most WN_BUFQ_SPARE_MAX spare chunks kept so that steady traffic
 * reuses chunks instead of calling malloc. wn_bufq_shrink() hands all chunks
 * not holding data back to the allocator (for idle objects).
 *
 * The struct is embedded by its owner; its fields are private. The queue owns
 * its chunks; pointers handed out by peek_iov and reserve point into them and
 * stay valid until the next call that changes the queue. */
#ifndef WN_UTIL_BUFQ_H
#define WN_UTIL_BUFQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Spare (empty) chunks kept for reuse, at most. */
#define WN_BUFQ_SPARE_MAX 2

/* A reasonable chunk size for stream buffers. */
#define WN_BUFQ_CHUNK_DEFAULT (16 * 1024)

struct wn_bufq_chunk;

struct wn_bufq {
	struct wn_bufq_chunk *head; /* oldest data; NULL when no chunk */
	struct wn_bufq_chunk *tail; /* where appends go */
	struct wn_bufq_chunk *spare;
	size_t nspare;
	size_t nchunks; /* allocated: queued plus spare */
	size_t chunk_size;
	size_t limit;
	size_t len; /* queued bytes */
	/* Where the last wn_bufq_peek_iov_at stopped: the chunk holding that
	 * offset and the queue offset of its first unread byte (cur_pos).
	 * NULL when unknown; only ever a hint. */
	struct wn_bufq_chunk *cur;
	size_t cur_pos;
};

/* Prepare an empty queue holding at most limit bytes in chunks of chunk_size
 * bytes. Allocates nothing (chunks come on demand). Returns 0, or WN_EINVAL if
 * chunk_size is 0 or absurdly large. */
int wn_bufq_init(struct wn_bufq *q, size_t chunk_size, size_t limit);

/* Free every chunk and drop the queued data. q stays initialised (same chunk
 * size and limit) and empty, so it may be used again or simply discarded. */
void wn_bufq_free(struct wn_bufq *q);

/* Free every chunk not holding data: the spares, and the last chunk if the
 * queue is empty. Use it when the owner goes idle. */
void wn_bufq_shrink(struct wn_bufq *q);

/* Queued bytes. */
size_t wn_bufq_len(const struct wn_bufq *q);

/* Bytes that may still be queued before the limit: the backpressure signal. */
size_t wn_bufq_space(const struct wn_bufq *q);

/* Chunks currently allocated (queued and spare), for stats and tests. */
size_t wn_bufq_chunks(const struct wn_bufq *q);

/* Append min(len, space) bytes copied from data. Returns the number of bytes
 * accepted (0 only when len is 0), WN_EAGAIN if the queue is full, or
 * WN_ENOMEM if a chunk could not be allocated, in which case nothing was
 * appended. The caller keeps data. */
ssize_t wn_bufq_write(struct wn_bufq *q, const void *data, size_t len);

/* Zero-copy append, step 1: point *ptr at contiguous free space in the tail
 * chunk (allocating a chunk if the tail is full) so that a socket read can
 * land there. Returns the usable size (> 0, never more than the space left
 * under the limit), WN_EAGAIN if the queue is full, or WN_ENOMEM (queue
 * unchanged). Nothing is queued until wn_bufq_commit. */
ssize_t wn_bufq_reserve(struct wn_bufq *q, uint8_t **ptr);

/* Zero-copy append, step 2: queue the first n bytes written at the pointer
 * from the last wn_bufq_reserve (n may be 0). Returns 0, or WN_EINVAL if n is
 * more than that reserve returned (queue unchanged). */
int wn_bufq_commit(struct wn_bufq *q, size_t n);

/* Describe the queued data from the head, in order, as up to max_iov iovecs
 * pointing into the chunks (for writev/uv_write), without consuming it.
 * Returns the number of iovecs filled; fewer than the queue needs if max_iov
 * is small. The iovecs are valid until the queue next changes. */
int wn_bufq_peek_iov(const struct wn_bufq *q, struct iovec *iov, int max_iov);

/* Like wn_bufq_peek_iov, but describes the data after the first `skip`
 * queued bytes (for senders that keep sent data until it is acknowledged).
 * The queue remembers the chunk where the walk stopped, so a sender whose
 * skip only grows (or shrinks by what it consumes from the head) starts
 * there instead of at the head: amortised O(1) per call instead of
 * O(chunks). Any skip is correct; a smaller one than last time (a rewind)
 * walks from the head. Changes only that hint, never the data. */
int wn_bufq_peek_iov_at(struct wn_bufq *q, size_t skip, struct iovec *iov,
                        int max_iov);

/* Copy up to n bytes from the head into dst without consuming them. Returns
 * the number of bytes copied, min(n, len). */
size_t wn_bufq_peek(const struct wn_bufq *q, void *dst, size_t n);

/* Copy up to n bytes from the head into dst and consume them. Returns the
 * number of bytes moved, min(n, len). */
size_t wn_bufq_read(struct wn_bufq *q, void *dst, size_t n);

/* Drop n bytes from the head (after a write completed). Returns 0, or
 * WN_EINVAL if fewer than n bytes are queued (queue unchanged). */
int wn_bufq_consume(struct wn_bufq *q, size_t n);

#endif
