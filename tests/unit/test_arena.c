/*
 * test_arena.c - the bump allocator behind cJSON's trees: aligned, disjoint
 * blocks; a block bigger than a chunk; room left in an older chunk used
 * again; reset keeping at most `keep` bytes; the hooks falling back to
 * malloc/free when the thread has no arena.
 */
#include "harness.h"

#include "sitepulse/arena.h"

#include <stdint.h>
#include <string.h>

#define CHUNK 4096

static bool aligned(const void *p)
{
	return ((uintptr_t)p & 15u) == 0;
}

/* [a, a+na) and [b, b+nb) do not overlap */
static bool disjoint(const char *a, size_t na, const char *b, size_t nb)
{
	return a + na <= b || b + nb <= a;
}

static void test_blocks_aligned_and_disjoint(void)
{
	struct sp_arena *a = sp_arena_create(CHUNK, 4 * CHUNK);
	CHECK(a != NULL);
	CHECK(sp_arena_enter(a) == NULL);
	enum { N = 300 };
	char *p[N];
	size_t len[N];
	for (int i = 0; i < N; i++) {
		len[i] = 1 + (size_t)(i * 37) % 200; /* 300 blocks: several chunks */
		p[i] = sp_arena_malloc(len[i]);
		CHECK(p[i] != NULL && aligned(p[i]));
		memset(p[i], i & 0xff, len[i]);
	}
	for (int i = 0; i < N; i++) {
		for (size_t k = 0; k < len[i]; k++)
			if ((unsigned char)p[i][k] != (i & 0xff)) {
				CHECK(!"a block was overwritten by another");
				i = N;
				break;
			}
	}
	for (int i = 1; i < N; i++)
		CHECK(disjoint(p[i - 1], len[i - 1], p[i], len[i]));
	CHECK(sp_arena_enter(NULL) == a);
	sp_arena_destroy(a);
}

static void test_big_block_and_room_left_behind(void)
{
	struct sp_arena *a = sp_arena_create(CHUNK, 8 * CHUNK);
	sp_arena_enter(a);
	/* a chunk nearly full, then a block bigger than a chunk: a chunk of its own */
	char *first = sp_arena_malloc(CHUNK - 256);
	char *big = sp_arena_malloc(3 * CHUNK);
	CHECK(first != NULL && big != NULL);
	memset(big, 'b', 3 * CHUNK);
	/* the next small block still fits in the first chunk's last 256 bytes */
	char *small = sp_arena_malloc(100);
	CHECK(small == first + (CHUNK - 256));
	CHECK(disjoint(small, 100, big, 3 * CHUNK));
	/* too big for any room left: a new chunk, and the one after it follows on */
	char *next = sp_arena_malloc(CHUNK - 64);
	char *after = sp_arena_malloc(32);
	CHECK(next != NULL && after == next + (CHUNK - 64));
	CHECK(big[0] == 'b' && big[3 * CHUNK - 1] == 'b');
	sp_arena_enter(NULL);
	sp_arena_destroy(a);
}

static void test_reset_reuses_and_keeps_at_most_keep(void)
{
	struct sp_arena *a = sp_arena_create(CHUNK, CHUNK);
	sp_arena_enter(a);
	char *p = sp_arena_malloc(64);
	for (int i = 0; i < 20; i++)
		CHECK(sp_arena_malloc(1000) != NULL); /* five chunks or so */
	sp_arena_reset(a);
	/* one chunk kept (keep = one chunk): allocation starts over at its start */
	char *q = sp_arena_malloc(64);
	CHECK(q != NULL && aligned(q));
	CHECK(sp_arena_malloc(CHUNK - 64) == q + 64);
	sp_arena_reset(a);
	CHECK(sp_arena_malloc(16) == q);
	(void)p;
	sp_arena_enter(NULL);
	sp_arena_destroy(a);
}

/* A size that would round up past SIZE_MAX is refused, not served as a small block. */
static void test_size_overflow_refused(void)
{
	struct sp_arena *a = sp_arena_create(CHUNK, CHUNK);
	sp_arena_enter(a);
	CHECK(sp_arena_malloc(SIZE_MAX) == NULL);
	CHECK(sp_arena_malloc(SIZE_MAX - 8) == NULL);
	CHECK(sp_arena_malloc(SIZE_MAX - sizeof(void *) * 4) == NULL);
	char *p = sp_arena_malloc(32); /* and the arena still serves */
	CHECK(p != NULL && aligned(p));
	sp_arena_enter(NULL);
	sp_arena_destroy(a);
}

static void test_without_arena_malloc_and_free(void)
{
	CHECK(sp_arena_enter(NULL) == NULL);
	char *p = sp_arena_malloc(32); /* plain malloc: ASan would see a leak without the free */
	CHECK(p != NULL);
	memset(p, 0, 32);
	sp_arena_free(p);
	/* while an arena is current, free does nothing and destroy releases everything */
	struct sp_arena *a = sp_arena_create(CHUNK, CHUNK);
	sp_arena_enter(a);
	char *q = sp_arena_malloc(32);
	sp_arena_free(q);
	memset(q, 1, 32); /* still valid until the next reset */
	sp_arena_destroy(a); /* destroying the current arena also unsets it */
	char *r = sp_arena_malloc(8);
	CHECK(r != NULL);
	sp_arena_free(r);
}

int main(void)
{
	RUN(test_blocks_aligned_and_disjoint);
	RUN(test_big_block_and_room_left_behind);
	RUN(test_reset_reuses_and_keeps_at_most_keep);
	RUN(test_size_overflow_refused);
	RUN(test_without_arena_malloc_and_free);
	HARNESS_EXIT();
}
