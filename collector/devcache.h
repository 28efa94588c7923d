/*
 * devcache.h - the writer's bounded cache of devices, keyed by (site, dev).
 *
 * Saves a database lookup per record and collects, for each device seen
 * since the last flush, its newest reading's timestamp and when a reading
 * of it last arrived (written as one update per device, in id order).
 * Grows on demand up to max_entries; past that bound each new device
 * evicts one that has not been used lately (the clock algorithm), so
 * memory is bounded however many devices exist and the devices that report
 * most often stay. The store remains the truth: an evicted device is
 * read from it again when it next reports.
 *
 * Returned pointers stay valid until the next put or clear (a put may
 * evict the entry a pointer points to). The writer may change a cached
 * row's fields through one (it learns a device's kind: writer.c
 * learn_kind); the key (site, dev) is not among them.
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

/*
 * Caches (or replaces) a device, evicting another when full; returns the
 * cached copy or NULL on no memory. newest and heard: the newest reading's
 * ts and when a reading last arrived, as the store knows them (its
 * last_seen and heard), 0 if none.
 */
struct store_device *devcache_put(struct devcache *c, const char *site, const char *dev,
				  const struct store_device *d, int64_t newest, int64_t heard);

/*
 * Notes a reading of a cached device at ts, arrived at heard (the
 * collector's clock), kept until a flush of it has
 * committed (devcache_seen_commit), even if the device is evicted or the
 * cache cleared meanwhile; dropped by devcache_seen_abort if the batch it
 * was noted in rolls back. -1 on no memory (nothing noted).
 */
int devcache_seen(struct devcache *c, struct store_device *d, int64_t ts, int64_t heard);

/*
 * The newest reading's ts known of a cached device (given to put, or
 * noted since), rounded down to whole seconds: never above the truth.
 */
int64_t devcache_newest(const struct store_device *d);

/*
 * When a reading of a cached device last arrived (put or noted), in whole
 * seconds rounded up: never before the truth.
 */
int64_t devcache_heard(const struct store_device *d);

/*
 * At or above the newest reading's ts known of a cached device. Without a
 * note of its own not yet written by a committed flush: the end of
 * devcache_newest's second, or INT64_MAX when the cache cannot tell (an
 * entry with such notes was evicted, or the cache cleared, since: d may be
 * that device, read again from a store whose last_seen trails them). With
 * one: its newest ts, but never below what this said when the note was
 * made (so an older reading noted after an eviction cannot lower it). The
 * writer's test of whether a record of a late message is older than what
 * the rules already judged.
 */
int64_t devcache_newest_bound(const struct devcache *c, const struct store_device *d);

/*
 * Devices noted by devcache_seen and not yet written by a committed flush
 * (one evicted and read again in between counts twice).
 */
size_t devcache_seen_count(const struct devcache *c);

/*
 * Calls fn once per device noted and not yet written by a committed flush,
 * in device id order, with its newest ts and newest arrival (whole seconds
 * rounded up, in ms: the arrival fits an item's padding). Forgets nothing: the writes
 * belong to the writer's transaction, and devcache_seen_commit forgets what
 * they wrote once it committed. 0 or fn's error (the rest is not called).
 */
typedef int (*devcache_seen_fn)(void *ctx, int64_t device_id, int64_t ts, int64_t heard);
int devcache_flush_seen(struct devcache *c, devcache_seen_fn fn, void *ctx);

/*
 * The writer's transaction committed: what devcache_seen noted in it is
 * kept, and what a flush in it wrote is forgotten.
 */
void devcache_seen_commit(struct devcache *c);

/*
 * The writer's transaction rolled back: what devcache_seen noted in it is
 * dropped (its readings are not stored); what earlier, committed batches
 * noted stays, also when a flush in the failed batch had written it.
 */
void devcache_seen_abort(struct devcache *c);

/*
 * Empties the cache (after a rollback, whose new rows no longer exist).
 * What devcache_seen noted is not touched: see devcache_seen_abort.
 */
void devcache_clear(struct devcache *c);

size_t devcache_count(const struct devcache *c);

/* Devices evicted to make room since creation. */
uint64_t devcache_evictions(const struct devcache *c);

#endif
