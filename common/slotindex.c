/*
 * slotindex.c - see slotindex.h.
 *
 * The links live apart from the caller's records, one per slot claimed, so
 * the owner's array keeps only its own fields. A released slot's link
 * chains the released ones (newest first) instead of a hash chain.
 * Rehashing walks the old chains: they hold exactly the slots indexed, so
 * a released slot needs no mark.
 */
#include "sitepulse/slotindex.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"

#include <stdlib.h>
#include <string.h>

#define MIN_HEADS 16u

static int32_t *heads_new(size_t n)
{
	if (n > SIZE_MAX / sizeof(int32_t))
		return NULL;
	int32_t *h = malloc(n * sizeof(*h));
	if (h)
		memset(h, 0xff, n * sizeof(*h)); /* -1 */
	return h;
}

int sp_slotindex_init(struct sp_slotindex *x, size_t heads)
{
	size_t n = MIN_HEADS;
	while (n < heads && n <= (size_t)INT32_MAX)
		n *= 2;
	*x = (struct sp_slotindex){.heads = heads_new(n), .nheads = n, .released = -1};
	return x->heads ? 0 : SP_ENOMEM;
}

void sp_slotindex_free(struct sp_slotindex *x)
{
	free(x->heads);
	free(x->links);
	*x = (struct sp_slotindex){.released = -1};
}

/* Doubles the heads; on no memory the index stays as it is (longer chains). */
static void rehash(struct sp_slotindex *x)
{
	if (x->nheads > (size_t)INT32_MAX)
		return;
	size_t n = x->nheads * 2;
	int32_t *heads = heads_new(n);
	if (heads == NULL)
		return;
	for (size_t k = 0; k < x->nheads; k++) {
		int32_t i = x->heads[k];
		while (i >= 0) {
			int32_t next = x->links[i].next;
			size_t at = x->links[i].hash & (n - 1);
			x->links[i].next = heads[at];
			heads[at] = i;
			i = next;
		}
	}
	free(x->heads);
	x->heads = heads;
	x->nheads = n;
}

int sp_slotindex_reserve(struct sp_slotindex *x, size_t nslots)
{
	struct sp_slotindex_link *links = sp_grow(x->links, &x->nlinks, nslots, sizeof(*links), 64);
	if (links == NULL)
		return SP_ENOMEM;
	x->links = links;
	return 0;
}

int32_t sp_slotindex_claim(struct sp_slotindex *x, uint32_t hash)
{
	int32_t slot = sp_slotindex_peek(x);
	if (slot == x->high) {
		if (x->high == INT32_MAX || sp_slotindex_reserve(x, (size_t)x->high + 1))
			return -1;
		x->high++;
	} else {
		x->released = x->links[slot].next;
	}
	if (x->count >= x->nheads)
		rehash(x);
	size_t at = hash & (x->nheads - 1);
	x->links[slot] = (struct sp_slotindex_link){.hash = hash, .next = x->heads[at]};
	x->heads[at] = slot;
	x->count++;
	return slot;
}

void sp_slotindex_release(struct sp_slotindex *x, int32_t slot)
{
	int32_t *link = &x->heads[x->links[slot].hash & (x->nheads - 1)];
	while (*link != slot)
		link = &x->links[*link].next;
	*link = x->links[slot].next;
	x->links[slot].next = x->released;
	x->released = slot;
	x->count--;
}

void sp_slotindex_clear(struct sp_slotindex *x)
{
	memset(x->heads, 0xff, x->nheads * sizeof(*x->heads)); /* -1 */
	x->count = 0;
	x->high = 0;
	x->released = -1;
}
