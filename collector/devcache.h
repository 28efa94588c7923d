/*
 * devcache.h - the writer's bounded cache of devices, keyed by (site, dev).
 *
 * Saves a database lookup per record and collects the newest timestamp of
 * each device seen since the last flush (written as one update per device,
 * in id order). Grows on demand up to max_entries; when full it is emptied
 * at the next trim (the store remains the truth), so memory is bounded
 * however many devices exist. Returned pointers stay valid until a clear.
 * Threading: owned by the writer thread.
 */
#ifndef SP_COLLECTOR_DEVCACHE_H
#define SP_COLLECTOR_DEVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct devcache;

struct devcache *devcache_create(size_t max_entries);
void devcache_destroy(struct devcache *c);

/* The cached device or NULL. */
struct store_device *devcache_get(struct devcache *c, const char *site, const char *dev);

/* Caches (or replaces) a device; returns the cached copy or NULL on no memory. */
struct store_device *devcache_put(struct devcache *c, const char *site, const char *dev,
				  const struct store_device *d);

/* Notes a reading of the device at ts (kept until devcache_flush_seen). */
void devcache_seen(struct devcache *c, struct store_device *d, int64_t ts);

/* Calls fn for each device seen since the last flush, then forgets them. 0 or fn's error. */
int devcache_flush_seen(struct devcache *c, int (*fn)(void *ctx, int64_t device_id, int64_t ts),
			void *ctx);

/* Empties the cache (after a rollback, whose new rows no longer exist; or when full). */
void devcache_clear(struct devcache *c);

/* Empties the cache if it reached its bound. Call between batches. */
void devcache_trim(struct devcache *c);

size_t devcache_count(const struct devcache *c);

#endif
