/* Fixed-capacity byte ring that hands out iovecs.
 *
 * One allocation at init, none after. The free space and the queued data are
 * each described by at most two iovecs (two when they wrap past the end of the
 * buffer), so a producer can readv() straight into the ring and a consumer
 * can writev() straight out of it. For queues that must grow on demand up to
 * a limit, use wn_bufq instead.
 *
 * The struct is embedded by its owner; its fields are private. The ring owns
 * its buffer. */
#ifndef WN_UTIL_RING_H
#define WN_UTIL_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct wn_ring {
	uint8_t *buf;
	size_t mask; /* capacity - 1; the capacity is a power of two */
	size_t head; /* read position; free-running, masked on use */
	size_t tail; /* write position; free-running, masked on use */
};

/* Allocate a ring of at least cap bytes (rounded up to a power of two; see
 * wn_ring_cap). Returns 0, WN_EINVAL if cap is 0 or too large, or WN_ENOMEM.
 * On failure r holds no memory and wn_ring_free(r) is harmless. */
int wn_ring_init(struct wn_ring *r, size_t cap);

/* Free the buffer. r is left empty with capacity 0. */
void wn_ring_free(struct wn_ring *r);

/* Capacity, queued bytes, and free bytes. */
size_t wn_ring_cap(const struct wn_ring *r);
size_t wn_ring_len(const struct wn_ring *r);
size_t wn_ring_space(const struct wn_ring *r);

/* Drop all queued data. */
void wn_ring_clear(struct wn_ring *r);

/* Describe the free space, in order, as iov[0] and iov[1]. Returns how many
 * are non-empty (0 when full, 1, or 2 when the space wraps); unused entries
 * are set to {NULL, 0}. After filling a prefix of that space, queue it with
 * wn_ring_commit. The iovecs are valid until the next commit, consume or
 * clear: emptying the ring rewinds it to offset 0 so that the next read lands
 * in one piece. */
int wn_ring_write_iov(struct wn_ring *r, struct iovec iov[2]);

/* Queue n bytes written into the space from wn_ring_write_iov. Returns 0, or
 * WN_EINVAL if n exceeds the free space (ring unchanged). */
int wn_ring_commit(struct wn_ring *r, size_t n);

/* Describe the queued data, oldest first, as iov[0] and iov[1], without
 * consuming it. Returns how many are non-empty (0 when empty, 1 or 2);
 * unused entries are set to {NULL, 0}. Valid until the next consume or clear. */
int wn_ring_read_iov(const struct wn_ring *r, struct iovec iov[2]);

/* Drop n bytes from the head. Returns 0, or WN_EINVAL if fewer than n bytes
 * are queued (ring unchanged). */
int wn_ring_consume(struct wn_ring *r, size_t n);

/* Copy up to n bytes from data into the ring. Returns the number copied,
 * min(n, space). */
size_t wn_ring_write(struct wn_ring *r, const void *data, size_t n);

/* Copy up to n bytes out of the ring into dst and consume them. Returns the
 * number copied, min(n, len). */
size_t wn_ring_read(struct wn_ring *r, void *dst, size_t n);

#endif
