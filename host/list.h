#pragma once
/*
 * list.h: the intrusive circular doubly linked list every unit uses (as the Linux
 * kernel's list_head and libuv's queue.h). A list's head is a node of its own; an element
 * embeds a struct ks_list and is found from it with KS_CONTAINER_OF (ks.h). A node that is
 * in no list points at itself, so ks_list_del() of a removed node is harmless.
 */
#include <stdbool.h>
#include <stddef.h>

struct ks_list {
	struct ks_list *prev, *next;
};

static inline void ks_list_init(struct ks_list *l)
{
	l->prev = l->next = l;
}

static inline bool ks_list_empty(const struct ks_list *l)
{
	return l->next == l;
}

/* Take n out of its list (n is then a list of its own, empty). */
static inline void ks_list_del(struct ks_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	ks_list_init(n);
}

/* Insert n after at: ks_list_add(head, n) pushes to the front. */
static inline void ks_list_add(struct ks_list *at, struct ks_list *n)
{
	n->prev = at;
	n->next = at->next;
	at->next->prev = n;
	at->next = n;
}

/* Append n at the back of the list whose head is head. */
static inline void ks_list_add_tail(struct ks_list *head, struct ks_list *n)
{
	ks_list_add(head->prev, n);
}

/* The first and last nodes, or NULL when the list is empty. */
static inline struct ks_list *ks_list_first(const struct ks_list *head)
{
	return ks_list_empty(head) ? NULL : head->next;
}

static inline struct ks_list *ks_list_last(const struct ks_list *head)
{
	return ks_list_empty(head) ? NULL : head->prev;
}

/* Walk the nodes of head with l, l may be removed from the list inside (nx keeps the next). */
#define ks_list_foreach_safe(l, nx, head) \
	for ((l) = (head)->next, (nx) = (l)->next; (l) != (head); (l) = (nx), (nx) = (l)->next)
