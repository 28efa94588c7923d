/* arena.c - see arena.h. */
#include "sitepulse/arena.h"

#include <stdint.h>
#include <stdlib.h>

#define ALIGN 16

struct chunk {
	struct chunk *next;
	size_t size, used;
	_Alignas(ALIGN) unsigned char data[];
};

struct sp_arena {
	/*
	 * Chunks in the order they are filled; `cur` is the one being filled.
	 * After a reset every kept chunk is empty and `cur` is the first, so a
	 * block costs one comparison and a bump; a chunk of its own for a big
	 * block goes after `cur` without becoming it, so the room left in `cur`
	 * serves the blocks after it.
	 */
	struct chunk *chunks, *cur;
	size_t chunk_size;
	size_t keep;
};

/* The calling thread's arena: the one piece of state the cJSON hooks can reach. */
static _Thread_local struct sp_arena *current;

struct sp_arena *sp_arena_create(size_t chunk, size_t keep)
{
	struct sp_arena *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->chunk_size = chunk < 4096 ? 4096 : chunk;
	a->keep = keep;
	return a;
}

void sp_arena_destroy(struct sp_arena *a)
{
	if (a == NULL)
		return;
	if (current == a)
		current = NULL;
	for (struct chunk *c = a->chunks, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	free(a);
}

void sp_arena_reset(struct sp_arena *a)
{
	size_t kept = 0;
	struct chunk **link = &a->chunks;
	while (*link) {
		struct chunk *c = *link;
		if (kept + c->size <= a->keep) {
			kept += c->size;
			c->used = 0;
			link = &c->next;
		} else {
			*link = c->next;
			free(c);
		}
	}
	a->cur = a->chunks;
}

static struct chunk *chunk_new(struct sp_arena *a, size_t size)
{
	if (size > SIZE_MAX - sizeof(struct chunk))
		return NULL;
	struct chunk *c = malloc(sizeof(*c) + size);
	if (c == NULL)
		return NULL;
	c->size = size;
	c->used = 0;
	struct chunk **link = a->cur ? &a->cur->next : &a->chunks;
	c->next = *link;
	*link = c;
	return c;
}

static void *arena_alloc(struct sp_arena *a, size_t n)
{
	if (n > SIZE_MAX - ALIGN) /* would round up to 0 */
		return NULL;
	n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	struct chunk *c = a->cur;
	if (c == NULL || c->size - c->used < n) {
		if (n > a->chunk_size) {
			c = chunk_new(a, n);
		} else {
			/* the next kept chunk with room, else a new one */
			for (c = c ? c->next : a->chunks; c && c->size - c->used < n; c = c->next)
				;
			if (c == NULL)
				c = chunk_new(a, a->chunk_size);
			if (c)
				a->cur = c;
		}
		if (c == NULL)
			return NULL;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

struct sp_arena *sp_arena_enter(struct sp_arena *a)
{
	struct sp_arena *prev = current;
	current = a;
	return prev;
}

void *sp_arena_malloc(size_t n)
{
	return current ? arena_alloc(current, n) : malloc(n);
}

void sp_arena_free(void *p)
{
	if (current == NULL)
		free(p);
	/* else: arena memory, released by the next reset */
}
