/*
 * slotindex.h - slot numbers for a caller's array, and a chained hash index
 * over them.
 *
 * The collector keeps several tables as a dense array of slots (faults
 * cleared, door counts, the rules' devices and conditions, agents heard),
 * each with its own key. This is what they share: it hands out slot
 * numbers (a released slot is claimed again before a new one, so the array
 * stays at the high-water mark of slots in use) and maps a 32-bit hash to
 * the slots that carry it. The caller keeps the records and their keys,
 * and compares the keys:
 *
 *	for (int32_t i = sp_slotindex_first(&t->index, h); i >= 0;
 *	     i = sp_slotindex_next(&t->index, i))
 *		if (t->slots[i].device_id == device_id)
 *			return i;
 *
 * and before claiming makes its array cover the slot claim will give:
 *
 *	p = sp_grow(t->slots, &t->cap, (size_t)sp_slotindex_peek(&t->index) + 1, ...);
 *	int32_t i = sp_slotindex_claim(&t->index, h);
 *
 * Slots [0, high) have been claimed; those released since are not indexed
 * (the owner marks its records of them free, to skip them in a walk).
 * first and next yield only slots whose hash is h, so a key is compared
 * only where the hashes agree. The heads double when the slots indexed
 * would pass them (a load factor of at most 1); an index whose heads
 * cannot grow for want of memory stays correct, with longer chains.
 *
 * The struct is embedded by value in its owner; its fields are this
 * module's (the owner reads count and high). Threading: none of its own;
 * used by the owner's thread.
 */
#ifndef SP_SLOTINDEX_H
#define SP_SLOTINDEX_H

#include <stddef.h>
#include <stdint.h>

struct sp_slotindex_link {
	uint32_t hash;
	int32_t next; /* the next slot of its chain, or of the released ones; -1 = end */
};

struct sp_slotindex {
	int32_t *heads;                  /* nheads chain heads, -1 = empty */
	struct sp_slotindex_link *links; /* per slot claimed */
	size_t nheads;                   /* a power of two */
	size_t nlinks;                   /* slots links has room for */
	size_t count;                    /* slots indexed (claimed, not released) */
	int32_t high;                    /* slots [0, high) claimed since init or clear */
	int32_t released;                /* the released slot claimed next, -1 = none */
};

/*
 * An empty index with at least `heads` chain heads (rounded up to a power
 * of two, at least 16): a table with a known bound passes twice the bound
 * and never rehashes. 0 or SP_ENOMEM.
 */
int sp_slotindex_init(struct sp_slotindex *x, size_t heads);

/*
 * Makes room for the links of slots [0, nslots) at once, so that claiming
 * within them cannot fail (a table allocated whole at creation). 0 or
 * SP_ENOMEM.
 */
int sp_slotindex_reserve(struct sp_slotindex *x, size_t nslots);

/* Frees what init, reserve and claim allocated; the struct may be initialised again. */
void sp_slotindex_free(struct sp_slotindex *x);

/* The slot the next claim gives: the last one released, else high. */
static inline int32_t sp_slotindex_peek(const struct sp_slotindex *x)
{
	return x->released >= 0 ? x->released : x->high;
}

/*
 * Claims the slot peek names and indexes it under hash. The slot, or -1
 * (no memory for its link, or INT32_MAX slots claimed): then nothing
 * changed.
 */
int32_t sp_slotindex_claim(struct sp_slotindex *x, uint32_t hash);

/* Takes a claimed slot out of the index; it is claimed again before any new one. */
void sp_slotindex_release(struct sp_slotindex *x, int32_t slot);

/* Forgets every slot (high 0, none released), keeping the memory for the next claims. */
void sp_slotindex_clear(struct sp_slotindex *x);

/* From slot i on along its chain, the first slot whose hash is hash, or -1. */
static inline int32_t sp_slotindex_skip(const struct sp_slotindex *x, int32_t i, uint32_t hash)
{
	while (i >= 0 && x->links[i].hash != hash)
		i = x->links[i].next;
	return i;
}

/* The first indexed slot whose hash is hash, or -1. */
static inline int32_t sp_slotindex_first(const struct sp_slotindex *x, uint32_t hash)
{
	return sp_slotindex_skip(x, x->heads[hash & (x->nheads - 1)], hash);
}

/* The next indexed slot after slot (an indexed one) with the same hash, or -1. */
static inline int32_t sp_slotindex_next(const struct sp_slotindex *x, int32_t slot)
{
	return sp_slotindex_skip(x, x->links[slot].next, x->links[slot].hash);
}

/*
 * Hashing the keys. mix folds a 64-bit value into a running hash (a start
 * of 0), str folds a string (FNV-1a), and fold makes the index's 32 bits of
 * it; sp_hash_id is the hash of a lone database id.
 */
static inline uint64_t sp_hash_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

static inline uint64_t sp_hash_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static inline uint32_t sp_hash_fold(uint64_t h)
{
	return (uint32_t)(h ^ (h >> 32));
}

static inline uint32_t sp_hash_id(int64_t id)
{
	return sp_hash_fold(sp_hash_mix(0, (uint64_t)id));
}

#endif
