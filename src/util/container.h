/* wn_container_of: from a pointer to a member back to the struct that
 * embeds it. The one definition in the tree; intrusive lists (list.h),
 * libuv requests and handles embedded in their owner, and deferred-close
 * nodes all recover their owner through it. */
#ifndef WN_UTIL_CONTAINER_H
#define WN_UTIL_CONTAINER_H

#include <stddef.h>

#define wn_container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))

#endif
