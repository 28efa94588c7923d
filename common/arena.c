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
	struct chunk *chunks; /* current chunk first */
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
}

static void *arena_alloc(struct sp_arena *a, size_t n)
{
	n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	/* first chunk with room (only the first few are ever partly used) */
	for (struct chunk *c = a->chunks; c; c = c->next) {
		if (c->size - c->used >= n) {
			void *p = c->data + c->used;
			c->used += n;
			return p;
		}
	}
	size_t size = n > a->chunk_size ? n : a->chunk_size;
	if (size > SIZE_MAX - sizeof(struct chunk))
		return NULL;
	struct chunk *c = malloc(sizeof(*c) + size);
	if (c == NULL)
		return NULL;
	c->size = size;
	c->used = n;
	c->next = a->chunks;
	a->chunks = c;
	return c->data;
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
