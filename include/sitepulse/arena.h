/*
 * arena.h - a bump allocator for the JSON trees of one message at a time.
 *
 * Parsing a 20-record message with cJSON makes a few hundred small
 * allocations, and freeing them as many again; with an arena they cost a
 * pointer bump each and are all released by one sp_arena_reset(). cJSON
 * allocates through global hooks, so the arena in use is per thread:
 * sp_arena_enter() makes it current for the calling thread, and the hooks
 * sp_arena_malloc/sp_arena_free serve from it (or from malloc/free when the
 * thread has none). While an arena is current, sp_arena_free() does
 * nothing: everything goes at the next reset.
 *
 * Memory: chunks grow with the largest message seen (a 256 KiB payload
 * needs a few MB of nodes); reset keeps at most `keep` bytes of chunks.
 */
#ifndef SP_ARENA_H
#define SP_ARENA_H

#include <stddef.h>

struct sp_arena;

/* NULL on no memory. chunk: default chunk size; keep: bytes kept across resets. */
struct sp_arena *sp_arena_create(size_t chunk, size_t keep);
void sp_arena_destroy(struct sp_arena *a);

/* Releases everything allocated since the last reset. */
void sp_arena_reset(struct sp_arena *a);

/* Makes a the calling thread's current arena (NULL: none). Returns the previous one. */
struct sp_arena *sp_arena_enter(struct sp_arena *a);

/* Allocation hooks: from the thread's current arena, else malloc/free. */
void *sp_arena_malloc(size_t n);
void sp_arena_free(void *p);

#endif
