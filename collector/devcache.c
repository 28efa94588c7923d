/*
 * devcache.c - see devcache.h.
 *
 * Memory is what a city-sized fleet allows: entries live in fixed-size
 * chunks (stable addresses, so callers may hold a struct store_device *
 * across puts; no copy when growing) and their keys in a string pool,
 * "site\0dev\0" packed, instead of two fixed SP_ID_MAX arrays per entry.
 * 56 bytes per entry plus the key plus 4-8 bytes of bucket: ~8.5 MB
 * for 100,000 devices. Chunks and buckets grow on demand up to the bound.
 */
#include "devcache.h"

#include "sitepulse/grow.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_SHIFT 12
#define CHUNK_ENTRIES (1u << CHUNK_SHIFT)
#define POOL_CHUNK (64u * 1024)
#define MIN_BUCKETS 1024u

struct entry {
	struct store_device d;
	const char *key;      /* "site\0dev\0" in the pool */
	int64_t seen_ts;      /* newest reading ts since the last flush, 0 = none */
	uint32_t hash;
	int32_t next;         /* chain, -1 = end */
	int32_t next_seen;    /* seen list, -1 = end */
	int32_t self;         /* this entry's index (fills what would be padding) */
};

/* One block of the string pool; blocks are chained, newest first. */
struct pool_block {
	struct pool_block *prev;
	size_t used, size;
	char data[];
};

struct seen_item {
	int64_t id, ts;
};

struct devcache {
	struct entry **chunks;
	size_t nchunks, chunks_cap;
	size_t n, max;
	int32_t *buckets;
	size_t nbuckets;
	int32_t seen_head;
	size_t nseen;
	struct pool_block *pool;
	struct seen_item *flush;      /* scratch for devcache_flush_seen, reused */
	size_t flush_cap;
};

static inline struct entry *entry_at(const struct devcache *c, int32_t i)
{
	return &c->chunks[(uint32_t)i >> CHUNK_SHIFT][(uint32_t)i & (CHUNK_ENTRIES - 1)];
}

static uint32_t hash_key(const char *site, const char *dev)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = site; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '/') * 1099511628211ULL;
	for (const char *p = dev; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (uint32_t)(h ^ (h >> 32));
}

static void pool_free(struct pool_block *b)
{
	while (b) {
		struct pool_block *prev = b->prev;
		free(b);
		b = prev;
	}
}

/* A copy of "site\0dev\0" in the pool, or NULL on no memory. */
static const char *pool_add(struct devcache *c, const char *site, size_t ls, const char *dev,
			    size_t ld)
{
	size_t need = ls + ld + 2;
	struct pool_block *b = c->pool;
	if (b == NULL || b->size - b->used < need) {
		size_t size = need > POOL_CHUNK ? need : POOL_CHUNK;
		struct pool_block *nb = malloc(sizeof(*nb) + size);
		if (nb == NULL)
			return NULL;
		nb->prev = b;
		nb->used = 0;
		nb->size = size;
		c->pool = b = nb;
	}
	char *k = b->data + b->used;
	memcpy(k, site, ls + 1);
	memcpy(k + ls + 1, dev, ld + 1);
	b->used += need;
	return k;
}

struct devcache *devcache_create(size_t max_entries)
{
	if (max_entries == 0 || max_entries > INT32_MAX)
		return NULL;
	struct devcache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->max = max_entries;
	c->nbuckets = MIN_BUCKETS;
	c->buckets = malloc(c->nbuckets * sizeof(*c->buckets));
	if (c->buckets == NULL) {
		free(c);
		return NULL;
	}
	devcache_clear(c);
	return c;
}

void devcache_destroy(struct devcache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nchunks; i++)
		free(c->chunks[i]);
	free(c->chunks);
	free(c->buckets);
	free(c->flush);
	pool_free(c->pool);
	free(c);
}

void devcache_clear(struct devcache *c)
{
	memset(c->buckets, 0xff, c->nbuckets * sizeof(*c->buckets));
	c->n = 0;
	c->seen_head = -1;
	c->nseen = 0;
	/* keep the newest pool block (reused), hand the others back */
	if (c->pool) {
		pool_free(c->pool->prev);
		c->pool->prev = NULL;
		c->pool->used = 0;
	}
}

void devcache_trim(struct devcache *c)
{
	if (c->n >= c->max && c->seen_head < 0)
		devcache_clear(c);
}

struct store_device *devcache_get(struct devcache *c, const char *site, const char *dev)
{
	uint32_t h = hash_key(site, dev);
	for (int32_t i = c->buckets[h & (c->nbuckets - 1)]; i >= 0;) {
		struct entry *e = entry_at(c, i);
		if (e->hash == h && strcmp(e->key, site) == 0 &&
		    strcmp(e->key + strlen(e->key) + 1, dev) == 0)
			return &e->d;
		i = e->next;
	}
	return NULL;
}

/* Doubles the bucket array and re-chains every entry. -1 on no memory. */
static int grow_buckets(struct devcache *c)
{
	size_t nb = c->nbuckets * 2;
	int32_t *b = malloc(nb * sizeof(*b));
	if (b == NULL)
		return -1;
	memset(b, 0xff, nb * sizeof(*b));
	for (size_t i = 0; i < c->n; i++) {
		struct entry *e = entry_at(c, (int32_t)i);
		e->next = b[e->hash & (nb - 1)];
		b[e->hash & (nb - 1)] = (int32_t)i;
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = nb;
	return 0;
}

/* Makes room for entry number c->n. -1 on no memory. */
static int reserve_entry(struct devcache *c)
{
	size_t chunk = c->n >> CHUNK_SHIFT;
	if (chunk < c->nchunks)
		return 0;
	struct entry **p = sp_grow(c->chunks, &c->chunks_cap, c->nchunks + 1, sizeof(*p), 4);
	if (p == NULL)
		return -1;
	c->chunks = p;
	c->chunks[c->nchunks] = malloc(CHUNK_ENTRIES * sizeof(struct entry));
	if (c->chunks[c->nchunks] == NULL)
		return -1;
	c->nchunks++;
	return 0;
}

struct store_device *devcache_put(struct devcache *c, const char *site, const char *dev,
				  const struct store_device *d)
{
	struct store_device *cur = devcache_get(c, site, dev);
	if (cur) {
		*cur = *d;
		return cur;
	}
	if (c->n >= c->max)
		return NULL; /* full until the next trim: callers fall back to the store */
	/* a full or failed grow only lengthens chains; the entry still goes in */
	if (c->n >= c->nbuckets)
		(void)grow_buckets(c);
	if (reserve_entry(c))
		return NULL;
	const char *key = pool_add(c, site, strlen(site), dev, strlen(dev));
	if (key == NULL)
		return NULL;
	uint32_t h = hash_key(site, dev);
	struct entry *e = entry_at(c, (int32_t)c->n);
	e->d = *d;
	e->key = key;
	e->hash = h;
	e->seen_ts = 0;
	e->next_seen = -1;
	e->self = (int32_t)c->n;
	e->next = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = (int32_t)c->n;
	c->n++;
	return &e->d;
}

void devcache_seen(struct devcache *c, struct store_device *d, int64_t ts)
{
	struct entry *e = (struct entry *)((char *)d - offsetof(struct entry, d));
	if (e->seen_ts == 0) {
		e->next_seen = c->seen_head;
		c->seen_head = e->self;
		c->nseen++;
	}
	if (ts > e->seen_ts)
		e->seen_ts = ts;
}

static int by_id(const void *a, const void *b)
{
	const struct seen_item *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

int devcache_flush_seen(struct devcache *c, int (*fn)(void *ctx, int64_t device_id, int64_t ts),
			void *ctx)
{
	int rc = 0;
	size_t n = 0;
	if (c->nseen > c->flush_cap) {
		struct seen_item *p = realloc(c->flush, c->nseen * sizeof(*p));
		if (p != NULL) {
			c->flush = p;
			c->flush_cap = c->nseen;
		}
	}
	for (int32_t i = c->seen_head; i >= 0;) {
		struct entry *e = entry_at(c, i);
		if (n < c->flush_cap)
			c->flush[n++] = (struct seen_item){e->d.id, e->seen_ts};
		else if (rc == 0)
			rc = fn(ctx, e->d.id, e->seen_ts); /* no memory to sort: unsorted */
		e->seen_ts = 0;
		i = e->next_seen;
		e->next_seen = -1;
	}
	c->seen_head = -1;
	c->nseen = 0;
	/* in id order: neighbouring rows share B-tree pages, so each page is dirtied once */
	if (n > 1)
		qsort(c->flush, n, sizeof(*c->flush), by_id);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(ctx, c->flush[i].id, c->flush[i].ts);
	return rc;
}

size_t devcache_count(const struct devcache *c)
{
	return c->n;
}
