/*
 * newest.h - keeps the `limit` newest of the readings offered to it.
 *
 * The readings API reads a device's chunks newest chunk first, but chunks
 * may overlap in time (a late reading opens a new chunk in an old hour) and
 * hold readings in arrival order; this bounded min-heap picks the newest
 * `limit` readings by (ts, order) whatever order they come in, copying
 * only those it keeps. Memory: at most `limit` readings.
 *
 * Pure code; one instance per request (not shared between threads).
 */
#ifndef SP_COLLECTOR_NEWEST_H
#define SP_COLLECTOR_NEWEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct newest;

struct newest_item {
	int64_t ts;
	uint64_t order;       /* storage order: a larger value is newer among equal ts */
	char *body;
	size_t len;
};

struct newest *newest_create(size_t limit);
void newest_destroy(struct newest *n);

/*
 * Whether a reading at (ts, order) is among the newest so far: what
 * newest_offer would keep. Lets a caller skip building a body it would drop.
 */
bool newest_takes(const struct newest *n, int64_t ts, uint64_t order);

/* Offers a reading; copied if it is among the newest so far. 0 or SP_ENOMEM. */
int newest_offer(struct newest *n, int64_t ts, uint64_t order, const char *body, size_t len);

/*
 * True when nothing older than ts can be kept any more: the heap is full
 * and its oldest reading is newer than ts. A reader walking chunks by
 * falling ts_max stops at the first chunk for which this holds.
 */
bool newest_done_below(const struct newest *n, int64_t ts);

/*
 * Sorts the kept readings newest first; *items stays owned by n. Returns
 * their count. The last call on n before newest_destroy: no offers after it.
 */
size_t newest_sorted(struct newest *n, const struct newest_item **items);

#endif
