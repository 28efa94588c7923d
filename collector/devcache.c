/* devcache.c - see devcache.h. Open hashing with chains; entries in one array. */
#include "devcache.h"

#include "sitepulse/ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	char site[SP_ID_MAX + 1];
	char dev[SP_ID_MAX + 1];
	uint64_t hash;
	struct store_device d;
	int64_t seen_ts;      /* newest reading ts in this batch, 0 = none */
	int32_t next;         /* chain, -1 = end */
	int32_t next_seen;    /* seen list, -1 = end */
};

struct devcache {
	struct entry *e;
	size_t n, max;
	int32_t *buckets;
	size_t nbuckets;
	int32_t seen_head;
};

static uint64_t hash_key(const char *site, const char *dev)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = site; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '/') * 1099511628211ULL;
	for (const char *p = dev; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

struct devcache *devcache_create(size_t max_entries)
{
	struct devcache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->max = max_entries;
	c->nbuckets = 1;
	while (c->nbuckets < max_entries)
		c->nbuckets <<= 1;
	c->e = calloc(max_entries, sizeof(*c->e));
	c->buckets = malloc(c->nbuckets * sizeof(*c->buckets));
	if (c->e == NULL || c->buckets == NULL) {
		devcache_destroy(c);
		return NULL;
	}
	devcache_clear(c);
	return c;
}

void devcache_destroy(struct devcache *c)
{
	if (c == NULL)
		return;
	free(c->e);
	free(c->buckets);
	free(c);
}

void devcache_clear(struct devcache *c)
{
	memset(c->buckets, 0xff, c->nbuckets * sizeof(*c->buckets));
	c->n = 0;
	c->seen_head = -1;
}

void devcache_trim(struct devcache *c)
{
	if (c->n >= c->max && c->seen_head < 0)
		devcache_clear(c);
}

struct store_device *devcache_get(struct devcache *c, const char *site, const char *dev)
{
	uint64_t h = hash_key(site, dev);
	for (int32_t i = c->buckets[h & (c->nbuckets - 1)]; i >= 0; i = c->e[i].next) {
		struct entry *e = &c->e[i];
		if (e->hash == h && strcmp(e->dev, dev) == 0 && strcmp(e->site, site) == 0)
			return &e->d;
	}
	return NULL;
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
	uint64_t h = hash_key(site, dev);
	struct entry *e = &c->e[c->n];
	snprintf(e->site, sizeof(e->site), "%s", site);
	snprintf(e->dev, sizeof(e->dev), "%s", dev);
	e->hash = h;
	e->d = *d;
	e->seen_ts = 0;
	e->next_seen = -1;
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
		c->seen_head = (int32_t)(e - c->e);
	}
	if (ts > e->seen_ts)
		e->seen_ts = ts;
}

int devcache_flush_seen(struct devcache *c, int (*fn)(void *ctx, int64_t device_id, int64_t ts),
			void *ctx)
{
	int rc = 0;
	int32_t i = c->seen_head;
	while (i >= 0) {
		struct entry *e = &c->e[i];
		if (rc == 0)
			rc = fn(ctx, e->d.id, e->seen_ts);
		e->seen_ts = 0;
		i = e->next_seen;
		e->next_seen = -1;
	}
	c->seen_head = -1;
	return rc;
}

size_t devcache_count(const struct devcache *c)
{
	return c->n;
}
