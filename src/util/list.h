/* Intrusive doubly linked list: embed a struct wn_list in each member and
 * one as the head. A member's node is NULL-linked while it is on no list,
 * so wn_list_linked() tells whether it is. */
#ifndef WN_UTIL_LIST_H
#define WN_UTIL_LIST_H

#include <stddef.h>

#include "util/container.h"

struct wn_list {
	struct wn_list *prev, *next;
};

static inline void wn_list_init(struct wn_list *head)
{
	head->prev = head->next = head;
}

static inline int wn_list_empty(const struct wn_list *head)
{
	return head->next == head;
}

static inline void wn_list_add_tail(struct wn_list *head, struct wn_list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static inline void wn_list_del(struct wn_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

static inline int wn_list_linked(const struct wn_list *n)
{
	return n->next != NULL;
}

#define wn_list_entry(ptr, type, member) wn_container_of(ptr, type, member)

#endif
