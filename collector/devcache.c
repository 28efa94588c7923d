/*
 * devcache.c - see devcache.h.
 *
 * Memory is what a city-sized fleet allows: entries live in fixed-size
 * chunks (stable addresses; no copy when growing) and their keys in a
 * string pool, "site\0dev\0" packed, instead of two fixed SP_ID_MAX arrays
 * per entry. 56 bytes per entry plus the key plus 4-8 bytes of bucket:
 * ~8.3 MB for 100,000 devices with 20-byte keys. Chunks and buckets grow
 * on demand up to the bound.
 *
 * Once full, a new device takes the place of the first entry the clock
 * hand finds not used since the hand last passed (a reference bit per
 * entry, set by every get after the put that cached it): a device heard
 * from once per pass of the hand goes, in the order they came; one heard
 * from more often stays. An evicted key becomes dead
 * bytes in the pool; the pool is rewritten when they outweigh the live
 * ones, so it stays within about twice the live keys.
 *
 * What devcache_seen notes lives apart from the entries, as (id, ts,
 * heard) items, so an eviction (or a clear after a rollback) loses nothing. An entry only
 * remembers which item is its own: the index holds while it is below the
 * count of items and the item there has the entry's device id. The list
 * follows the writer's transactions: items [0, kept) were noted by batches
 * that committed, items [kept, nseen) by the batch in progress. A batch
 * raises an item of the first part in place (one item per device, however
 * many batches note it before a flush), saving its times on an undo list the
 * first time (the item's batch stamp says when); a rollback puts those back
 * and cuts the list to kept. A flush writes every item, in id order, from
 * a sorted copy, and forgets none: the writes are part of the batch, and
 * only its commit drops what they wrote (devcache_seen_commit); a rollback
 * drops them from the database and keeps the items. Cutting or emptying
 * the list forgets entries' items at once: an index left from before
 * points past the end or at another device's item.
 */
#include "devcache.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SHIFT 12
#define CHUNK_ENTRIES (1u << CHUNK_SHIFT)
#define POOL_CHUNK (64u * 1024)
#define MIN_BUCKETS 1024u
#define HASH_MASK 0x3fffffffu
/*
 * The seen lists keep this many items (128 KB of them) across commits; a
 * burst's bigger arrays are handed back once its flush has committed (the
 * sorted copy at every commit: it only lives from a flush to its commit).
 */
#define SEEN_KEEP 4096u

struct entry {
	struct store_device d;
	const char *key;      /* "site\0dev\0" in the pool */
	uint32_t hash : 30;
	/*
	 * Made while an evicted entry's note was not yet written (notes_unowned):
	 * newest_s, read from the store, may trail what was judged of the device.
	 */
	uint32_t unsure : 1;
	uint32_t ref : 1;     /* used since the clock hand last passed */
	int32_t next;         /* chain, -1 = end */
	int32_t seen_item;    /* this entry's seen item, if still valid (own_item) */
	uint32_t newest_s;    /* newest ts known, in whole seconds (rounded down), 0 = none */
	uint32_t heard_s;     /* when a reading last arrived (collector clock), seconds, up */
};

/* the memory figures above (and docs/performance.md item 40) count on it */
_Static_assert(sizeof(struct entry) == 56, "struct entry grew: update the memory figures");

/* One block of the string pool; blocks are chained, newest first. */
struct pool_block {
	struct pool_block *prev;
	size_t used, size;
	char data[];
};

struct seen_item {
	int64_t id, ts;
	/*
	 * What devcache_newest_bound said just before the item was made: a
	 * device evicted with a newer item, or after a flush in the same second,
	 * may have been judged newer than this item's ts.
	 */
	int64_t floor;
	uint32_t batch;               /* the batch that last saved its times for undo */
	uint32_t heard_s;             /* its readings' newest arrival, whole seconds rounded up */
};

/* heard fits the padding: the items of a burst (up to SEEN_FLUSH_AT, writer.c) grow no bigger */
_Static_assert(sizeof(struct seen_item) == 32, "struct seen_item grew");

/* A committed item's times before the batch in progress raised them. */
struct seen_undo {
	int64_t ts;
	uint32_t heard_s;
	size_t index;
};

struct devcache {
	struct entry **chunks;
	size_t nchunks, chunks_cap;
	size_t n, max;
	size_t hand;                  /* the clock's next candidate, once full */
	uint64_t evictions;
	int32_t *buckets;
	size_t nbuckets;
	struct pool_block *pool;
	size_t pool_used, pool_live;  /* key bytes written since the last rewrite / still in use */
	struct seen_item *seen;
	size_t nseen, seen_cap;
	size_t kept;                  /* items noted by committed batches (see the top) */
	size_t flushed;               /* items written by a flush in this batch, 0 = none */
	uint32_t batch;               /* the batch in progress, counted from 1 */
	struct seen_undo *undo;       /* at most one per item of [0, kept) */
	size_t nundo, undo_cap;
	struct seen_item *sorted;     /* the flush's sorted copy */
	size_t sorted_cap;
	/*
	 * An entry lost sight of its item (evicted, or the cache cleared) while
	 * the item was not yet written by a committed flush: a device read again
	 * may then be newer than its entry says (devcache_newest_bound).
	 */
	bool notes_unowned;
	bool unowned_at_flush;        /* notes_unowned when this batch's flush ran */
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
	return (uint32_t)(h ^ (h >> 32)) & HASH_MASK;
}

static size_t key_size(const char *key)
{
	size_t ls = strlen(key);
	return ls + strlen(key + ls + 1) + 2;
}

static void pool_free(struct pool_block *b)
{
	while (b) {
		struct pool_block *prev = b->prev;
		free(b);
		b = prev;
	}
}

/* An empty block for at least `need` bytes (POOL_CHUNK at least) before prev, or NULL. */
static struct pool_block *pool_block_new(size_t need, struct pool_block *prev)
{
	size_t bytes = need > POOL_CHUNK ? need : POOL_CHUNK;
	struct pool_block *b = malloc(sizeof(*b) + bytes);
	if (b == NULL)
		return NULL;
	b->prev = prev;
	b->used = 0;
	b->size = bytes;
	return b;
}

/* Room for `size` bytes of key in the pool, or NULL on no memory. */
static char *pool_alloc(struct devcache *c, size_t size)
{
	struct pool_block *b = c->pool;
	if (b == NULL || b->size - b->used < size) {
		if ((b = pool_block_new(size, b)) == NULL)
			return NULL;
		c->pool = b;
	}
	char *out = b->data + b->used;
	b->used += size;
	c->pool_used += size;
	c->pool_live += size;
	return out;
}

/*
 * Copies every live key into one new block and drops the old pool with its
 * dead keys. Left as it was on no memory (the dead bytes only wait longer).
 */
static void pool_rewrite(struct devcache *c)
{
	size_t live = 0;
	for (size_t i = 0; i < c->n; i++)
		live += key_size(entry_at(c, (int32_t)i)->key);
	struct pool_block *b = pool_block_new(live, NULL);
	if (b == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		struct entry *e = entry_at(c, (int32_t)i);
		size_t size = key_size(e->key);
		memcpy(b->data + b->used, e->key, size);
		e->key = b->data + b->used;
		b->used += size;
	}
	pool_free(c->pool);
	c->pool = b;
	c->pool_used = c->pool_live = b->used;
}

struct devcache *devcache_create(size_t max_entries)
{
	if (max_entries == 0 || max_entries > INT32_MAX)
		return NULL;
	struct devcache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->max = max_entries;
	c->batch = 1;
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
	free(c->seen);
	free(c->undo);
	free(c->sorted);
	pool_free(c->pool);
	free(c);
}

void devcache_clear(struct devcache *c)
{
	memset(c->buckets, 0xff, c->nbuckets * sizeof(*c->buckets));
	c->n = 0;
	c->hand = 0;
	/* the seen items stay: they are ids and times, not entries (see the top) */
	if (c->nseen > 0)
		c->notes_unowned = true;
	/* keep the newest pool block (reused), hand the others back */
	if (c->pool) {
		pool_free(c->pool->prev);
		c->pool->prev = NULL;
		c->pool->used = 0;
	}
	c->pool_used = c->pool_live = 0;
}

static bool key_equal(const char *key, const char *site, const char *dev)
{
	return strcmp(key, site) == 0 && strcmp(key + strlen(key) + 1, dev) == 0;
}

struct store_device *devcache_get(struct devcache *c, const char *site, const char *dev)
{
	uint32_t h = hash_key(site, dev);
	for (int32_t i = c->buckets[h & (c->nbuckets - 1)]; i >= 0;) {
		struct entry *e = entry_at(c, i);
		if (e->hash == h && key_equal(e->key, site, dev)) {
			e->ref = 1;
			return &e->d;
		}
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

/*
 * The entry's newest seen item, in either part of the list, or NULL: none
 * not yet written by a committed flush.
 */
static struct seen_item *noted_item(const struct devcache *c, const struct entry *e)
{
	if (e->seen_item < 0 || (size_t)e->seen_item >= c->nseen ||
	    c->seen[e->seen_item].id != e->d.id)
		return NULL;
	return &c->seen[e->seen_item];
}

/*
 * Takes the first entry the hand finds unused since its last pass out of
 * its chain and returns its index. Ends within two turns: the first clears
 * every bit. Its seen item, if any, stays for the next flush.
 */
static int32_t evict(struct devcache *c)
{
	for (;;) {
		int32_t i = (int32_t)c->hand;
		c->hand = c->hand + 1 == c->n ? 0 : c->hand + 1;
		struct entry *e = entry_at(c, i);
		if (e->ref) {
			e->ref = 0;
			continue;
		}
		int32_t *link = &c->buckets[e->hash & (c->nbuckets - 1)];
		while (*link != i)
			link = &entry_at(c, *link)->next;
		*link = e->next;
		c->pool_live -= key_size(e->key);
		c->evictions++;
		if (noted_item(c, e) != NULL)
			c->notes_unowned = true; /* its item stays; a new entry will not know it */
		return i;
	}
}

/* ts in whole seconds, rounded down (never above ts), within uint32_t */
static uint32_t to_seconds(int64_t ts)
{
	return ts <= 0 ? 0 : ts / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ts / 1000);
}

/*
 * An arrival in whole seconds, rounded up (never below it: a device is
 * never taken as silent before it is), within uint32_t.
 */
static uint32_t to_seconds_up(int64_t ms)
{
	return ms <= 0 ? 0 : ms / 1000 >= UINT32_MAX ? UINT32_MAX : (uint32_t)((ms + 999) / 1000);
}

/* The entry a cached device is in (devcache_get and put hand out &e->d). */
static struct entry *entry_of(const struct store_device *d)
{
	return (struct entry *)((const char *)d - offsetof(struct entry, d));
}

struct store_device *devcache_put(struct devcache *c, const char *site, const char *dev,
				  const struct store_device *d, int64_t newest, int64_t heard)
{
	struct store_device *cur = devcache_get(c, site, dev);
	if (cur) {
		struct entry *e = entry_of(cur);
		*cur = *d;
		if (to_seconds(newest) > e->newest_s)
			e->newest_s = to_seconds(newest);
		if (to_seconds_up(heard) > e->heard_s)
			e->heard_s = to_seconds_up(heard);
		return cur;
	}
	size_t ls = strlen(site), ld = strlen(dev);
	if (c->n < c->max) {
		/* a failed grow only lengthens chains; the entry still goes in */
		if (c->n >= c->nbuckets)
			(void)grow_buckets(c);
		if (reserve_entry(c))
			return NULL;
	}
	/* the key before an eviction: on no memory the cache is as it was */
	char *key = pool_alloc(c, ls + ld + 2);
	if (key == NULL)
		return NULL;
	memcpy(key, site, ls + 1);
	memcpy(key + ls + 1, dev, ld + 1);
	int32_t i = c->n < c->max ? (int32_t)c->n++ : evict(c);
	uint32_t h = hash_key(site, dev);
	struct entry *e = entry_at(c, i);
	e->d = *d;
	e->key = key;
	e->hash = h;
	e->ref = 0; /* earned by a second use: a device heard from once goes first */
	e->unsure = c->notes_unowned;
	e->seen_item = -1;
	e->newest_s = to_seconds(newest);
	e->heard_s = to_seconds_up(heard);
	e->next = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = i;
	/* dead keys outweigh the live ones (and are worth a rewrite): compact */
	if (c->pool_used - c->pool_live > c->pool_live && c->pool_used > 4 * POOL_CHUNK)
		pool_rewrite(c);
	return &e->d;
}

int64_t devcache_newest(const struct store_device *d)
{
	return (int64_t)entry_of(d)->newest_s * 1000;
}

int64_t devcache_heard(const struct store_device *d)
{
	return (int64_t)entry_of(d)->heard_s * 1000;
}

/*
 * devcache_newest_bound of an entry without an item of its own. An unsure
 * entry stays so until the flush that wrote the notes of evicted entries
 * commits (settle_unsure).
 */
static int64_t bound_without_item(const struct entry *e)
{
	return e->unsure ? INT64_MAX : (int64_t)e->newest_s * 1000 + 999;
}

int64_t devcache_newest_bound(const struct devcache *c, const struct store_device *d)
{
	const struct entry *e = entry_of(d);
	const struct seen_item *s = noted_item(c, e);
	if (s != NULL)
		return s->ts > s->floor ? s->ts : s->floor; /* newest_s only grows with s->ts */
	return bound_without_item(e);
}

int devcache_seen(struct devcache *c, struct store_device *d, int64_t ts, int64_t heard)
{
	uint32_t heard_s = to_seconds_up(heard);
	struct entry *e = entry_of(d);
	struct seen_item *s = noted_item(c, e);
	if (s == NULL) {
		s = sp_grow(c->seen, &c->seen_cap, c->nseen + 1, sizeof(*s), 256);
		if (s == NULL)
			return -1;
		c->seen = s;
		s = &c->seen[c->nseen];
		*s = (struct seen_item){d->id, ts, bound_without_item(e), c->batch, heard_s};
		e->seen_item = (int32_t)c->nseen++;
	} else if (ts > s->ts || heard_s > s->heard_s) {
		size_t i = (size_t)e->seen_item;
		if (i < c->kept && s->batch != c->batch) {
			/* a committed batch's item: undo keeps what it was before this batch */
			struct seen_undo *u =
				sp_grow(c->undo, &c->undo_cap, c->nundo + 1, sizeof(*u), 256);
			if (u == NULL)
				return -1;
			c->undo = u;
			c->undo[c->nundo++] = (struct seen_undo){s->ts, s->heard_s, i};
			s->batch = c->batch;
		}
		if (ts > s->ts)
			s->ts = ts;
		if (heard_s > s->heard_s)
			s->heard_s = heard_s;
	}
	if (to_seconds(ts) > e->newest_s)
		e->newest_s = to_seconds(ts);
	if (heard_s > e->heard_s)
		e->heard_s = heard_s;
	return 0;
}

size_t devcache_seen_count(const struct devcache *c)
{
	return c->nseen;
}

static int by_id(const void *a, const void *b)
{
	const struct seen_item *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

int devcache_flush_seen(struct devcache *c, devcache_seen_fn fn, void *ctx)
{
	size_t n = c->nseen;
	/*
	 * In id order (neighbouring rows share B-tree pages, so each page is
	 * dirtied once), from a sorted copy: the items keep their places, so
	 * the entries' indices and a rollback's undo list stay true.
	 */
	struct seen_item *sorted = sp_grow(c->sorted, &c->sorted_cap, n, sizeof(*sorted), 256);
	if (sorted == NULL && n > 0)
		return SP_ENOMEM;
	c->sorted = sorted;
	if (n > 0)
		memcpy(sorted, c->seen, n * sizeof(*sorted));
	if (n > 1)
		qsort(sorted, n, sizeof(*sorted), by_id);
	c->flushed = n;
	/* the store has every item from this flush's commit on: only later losses count */
	c->unowned_at_flush = c->notes_unowned;
	c->notes_unowned = false;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0;) {
		/* a device evicted and read again has two items: its newest times count */
		int64_t id = sorted[i].id, ts = sorted[i].ts;
		uint32_t heard_s = sorted[i].heard_s;
		for (i++; i < n && sorted[i].id == id; i++) {
			ts = sorted[i].ts > ts ? sorted[i].ts : ts;
			heard_s = sorted[i].heard_s > heard_s ? sorted[i].heard_s : heard_s;
		}
		rc = fn(ctx, id, ts, (int64_t)heard_s * 1000);
	}
	return rc;
}

/*
 * The flush of sorted[0, n) committed, with the notes of evicted entries:
 * an unsure entry's newest is now its own newest or its device's written
 * note, whichever is newer. One pass over the entries, a binary search each.
 */
static void settle_unsure(struct devcache *c, const struct seen_item *sorted, size_t n)
{
	for (size_t i = 0; i < c->n; i++) {
		struct entry *e = entry_at(c, (int32_t)i);
		if (!e->unsure)
			continue;
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (sorted[mid].id < e->d.id)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < n && sorted[lo].id == e->d.id; lo++)
			if (to_seconds(sorted[lo].ts) > e->newest_s)
				e->newest_s = to_seconds(sorted[lo].ts);
		e->unsure = 0;
	}
}

/*
 * Hands back what a burst grew beyond SEEN_KEEP: the sorted copy, the undo
 * list (both empty after a commit), and the items' array when it is four
 * times what it holds. A failed shrink keeps the bigger array.
 */
static void seen_shrink(struct devcache *c)
{
	if (c->sorted_cap > SEEN_KEEP) {
		free(c->sorted);
		c->sorted = NULL;
		c->sorted_cap = 0;
	}
	if (c->undo_cap > SEEN_KEEP) {
		free(c->undo);
		c->undo = NULL;
		c->undo_cap = 0;
	}
	if (c->seen_cap > SEEN_KEEP && c->seen_cap / 4 > c->nseen) {
		size_t cap = c->nseen * 2 > SEEN_KEEP ? c->nseen * 2 : SEEN_KEEP;
		struct seen_item *p = realloc(c->seen, cap * sizeof(*p));
		if (p != NULL) {
			c->seen = p;
			c->seen_cap = cap;
		}
	}
}

void devcache_seen_commit(struct devcache *c)
{
	bool flushed = c->flushed > 0;
	if (flushed) {
		if (c->unowned_at_flush)
			settle_unsure(c, c->sorted, c->flushed);
		/* written and committed: forgotten; what was noted after the flush stays */
		memmove(c->seen, c->seen + c->flushed, (c->nseen - c->flushed) * sizeof(*c->seen));
		c->nseen -= c->flushed;
		c->flushed = 0;
	}
	c->unowned_at_flush = false;
	c->kept = c->nseen;
	c->nundo = 0;
	c->batch++;
	if (flushed)
		seen_shrink(c); /* the list is at its shortest right after a flush */
}

void devcache_seen_abort(struct devcache *c)
{
	/* the committed items this batch raised get their times back */
	for (size_t u = c->nundo; u-- > 0;) {
		c->seen[c->undo[u].index].ts = c->undo[u].ts;
		c->seen[c->undo[u].index].heard_s = c->undo[u].heard_s;
	}
	c->nundo = 0;
	c->batch++; /* (a stamp equal again after 2^32 batches only skips an undo: a later ts) */
	c->nseen = c->kept;
	if (c->flushed > 0)
		c->notes_unowned |= c->unowned_at_flush; /* the flush's writes are gone */
	c->flushed = 0;
	c->unowned_at_flush = false;
}

size_t devcache_count(const struct devcache *c)
{
	return c->n;
}

uint64_t devcache_evictions(const struct devcache *c)
{
	return c->evictions;
}
