/*
 * grow.h - the one way arrays grow in sitepulse: capacity doubling with an
 * overflow check.
 *
 *	struct item *p = sp_grow(s->items, &s->cap, s->n + 1, sizeof(*p), 64);
 *	if (p == NULL)
 *		return SP_ENOMEM;
 *	s->items = p;
 *
 * Returns the array with room for at least `need` elements of `size` bytes
 * (the same pointer when it already has room), or NULL when memory is short
 * or the size would overflow; then the array and *cap are as they were. A
 * new capacity is `first` (for an empty array) doubled until `need` fits.
 */
#ifndef SP_GROW_H
#define SP_GROW_H

#include <stddef.h>

void *sp_grow(void *items, size_t *cap, size_t need, size_t size, size_t first);

#endif
