/*
 * faultmemo.c - see faultmemo.h.
 *
 * A ring of `max` slots in the order faults were first noted, and a hash
 * index over it. Noting a fault already there moves its time forward in
 * place; a new one takes the next slot, forgetting the fault noted longest
 * ago when the ring is full. The ring is allocated whole at creation but
 * only the slots used are ever touched.
 */
#include "faultmemo.h"

#include "sitepulse/record.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	int64_t device_id;
	int64_t ts;    /* the newest clear noted */
	int32_t port;
	int32_t next;  /* hash chain, -1 = end */
	uint32_t hash;
	char code[SP_FAULT_CODE_MAX + 1];
};

struct faultmemo {
	struct slot *ring;
	size_t max, used, oldest; /* used slots are [0, used); when full, oldest is next to go */
	int32_t *buckets;
	size_t nbuckets; /* a power of two, at least 2 * max */
};

static uint32_t key_hash(int64_t device_id, int32_t port, const char *code)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)device_id;
	h = (h ^ (uint32_t)port) * 1099511628211ULL;
	for (const char *p = code; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (uint32_t)(h ^ (h >> 32));
}

struct faultmemo *faultmemo_create(size_t max)
{
	if (max == 0 || max > INT32_MAX / 4)
		return NULL;
	struct faultmemo *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->max = max;
	m->nbuckets = 16;
	while (m->nbuckets < 2 * max)
		m->nbuckets *= 2;
	m->ring = malloc(max * sizeof(*m->ring));
	m->buckets = malloc(m->nbuckets * sizeof(*m->buckets));
	if (m->ring == NULL || m->buckets == NULL) {
		faultmemo_destroy(m);
		return NULL;
	}
	memset(m->buckets, 0xff, m->nbuckets * sizeof(*m->buckets));
	return m;
}

void faultmemo_destroy(struct faultmemo *m)
{
	if (m == NULL)
		return;
	free(m->ring);
	free(m->buckets);
	free(m);
}

static int32_t find(const struct faultmemo *m, uint32_t h, int64_t device_id, int32_t port,
		    const char *code)
{
	for (int32_t i = m->buckets[h & (m->nbuckets - 1)]; i >= 0; i = m->ring[i].next) {
		const struct slot *s = &m->ring[i];
		if (s->hash == h && s->device_id == device_id && s->port == port &&
		    strcmp(s->code, code) == 0)
			return i;
	}
	return -1;
}

/* Takes slot i out of its hash chain. */
static void unlink_slot(struct faultmemo *m, int32_t i)
{
	int32_t *link = &m->buckets[m->ring[i].hash & (m->nbuckets - 1)];
	while (*link != i)
		link = &m->ring[*link].next;
	*link = m->ring[i].next;
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
		return;
	}
	if (m->used < m->max) {
		i = (int32_t)m->used++;
	} else {
		i = (int32_t)m->oldest;
		m->oldest = (m->oldest + 1) % m->max;
		unlink_slot(m, i);
	}
	struct slot *s = &m->ring[i];
	s->device_id = device_id;
	s->ts = ts;
	s->port = port;
	s->hash = h;
	strcpy(s->code, code);
	size_t b = h & (m->nbuckets - 1);
	s->next = m->buckets[b];
	m->buckets[b] = i;
}

bool faultmemo_cleared_since(const struct faultmemo *m, int64_t device_id, int32_t port,
			     const char *code, int64_t ts)
{
	int32_t i = find(m, key_hash(device_id, port, code), device_id, port, code);
	return i >= 0 && m->ring[i].ts >= ts;
}

size_t faultmemo_count(const struct faultmemo *m)
{
	return m->used;
}
