/*
 * faultmemo.c - see faultmemo.h.
 *
 * A ring of `max` slots in the order faults were first noted, and a hash
 * index over it that numbers them (slotindex.h). Noting a fault already there moves its time forward in
 * place and marks it renewed; a new one takes the next slot, forgetting,
 * when the ring is full, the fault noted longest ago: released, its slot
 * is the one claimed next. A renewed fault the hand reaches is kept once
 * more instead (the CLOCK scheme): a fault cleared again a moment ago is
 * not forgotten before ones whose newest clear is older, as the store,
 * which keeps the newest clears by time, does not forget it either.
 * The ring is allocated whole at creation but only the slots used are ever
 * touched. The index is made whole too: a link per slot and twice as many
 * chain heads, so noting a clear never allocates and the index never
 * rehashes.
 */
#include "faultmemo.h"

#include "sitepulse/record.h"
#include "sitepulse/slotindex.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	int64_t device_id;
	int64_t ts;    /* the newest clear noted */
	int32_t port;
	bool renewed;  /* noted again since the hand last passed it: kept once more */
	char code[SP_FAULT_CODE_MAX + 1];
};

struct faultmemo {
	struct slot *ring;
	size_t max, oldest; /* slots [0, index.high) used; when all are, oldest is next to go */
	struct sp_slotindex index;
};

static uint32_t key_hash(int64_t device_id, int32_t port, const char *code)
{
	return sp_hash_fold(sp_hash_str(sp_hash_mix(sp_hash_mix(0, (uint64_t)device_id),
						    (uint32_t)port),
					code));
}

struct faultmemo *faultmemo_create(size_t max)
{
	if (max == 0 || max > INT32_MAX / 4)
		return NULL;
	struct faultmemo *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->max = max;
	m->ring = malloc(max * sizeof(*m->ring));
	if (m->ring == NULL || sp_slotindex_init(&m->index, 2 * max) ||
	    sp_slotindex_reserve(&m->index, max)) {
		faultmemo_destroy(m);
		return NULL;
	}
	return m;
}

void faultmemo_destroy(struct faultmemo *m)
{
	if (m == NULL)
		return;
	free(m->ring);
	sp_slotindex_free(&m->index);
	free(m);
}

static int32_t find(const struct faultmemo *m, uint32_t h, int64_t device_id, int32_t port,
		    const char *code)
{
	for (int32_t i = sp_slotindex_first(&m->index, h); i >= 0;
	     i = sp_slotindex_next(&m->index, i)) {
		const struct slot *s = &m->ring[i];
		if (s->device_id == device_id && s->port == port && strcmp(s->code, code) == 0)
			return i;
	}
	return -1;
}

void faultmemo_note_clear(struct faultmemo *m, int64_t device_id, int32_t port,
			  const char *code, int64_t ts)
{
	if (strlen(code) > SP_FAULT_CODE_MAX)
		return; /* the decoder refuses such codes; nothing to remember */
	uint32_t h = key_hash(device_id, port, code);
	int32_t i = find(m, h, device_id, port, code);
	if (i >= 0) {
		if (ts > m->ring[i].ts)
			m->ring[i].ts = ts;
		m->ring[i].renewed = true;
		return;
	}
	if ((size_t)m->index.high == m->max) {
		/* ends: each slot passed loses its mark, so at most one round */
		while (m->ring[m->oldest].renewed) {
			m->ring[m->oldest].renewed = false;
			m->oldest = (m->oldest + 1) % m->max;
		}
		sp_slotindex_release(&m->index, (int32_t)m->oldest);
		m->oldest = (m->oldest + 1) % m->max;
	}
	/* cannot fail: create reserved the links of the whole ring */
	i = sp_slotindex_claim(&m->index, h);
	struct slot *s = &m->ring[i];
	s->device_id = device_id;
	s->ts = ts;
	s->port = port;
	s->renewed = false;
	strcpy(s->code, code);
}

bool faultmemo_cleared_since(const struct faultmemo *m, int64_t device_id, int32_t port,
			     const char *code, int64_t ts)
{
	int32_t i = find(m, key_hash(device_id, port, code), device_id, port, code);
	return i >= 0 && m->ring[i].ts >= ts;
}

size_t faultmemo_count(const struct faultmemo *m)
{
	return (size_t)m->index.high;
}
