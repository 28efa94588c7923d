/*
 * rangeset.h - a bounded, sorted set of int64 values kept as disjoint
 * inclusive ranges [lo, hi]. Used for the sequence numbers an agent has
 * delivered out of order and for those declared missing. Pure.
 */
#ifndef SP_COLLECTOR_RANGESET_H
#define SP_COLLECTOR_RANGESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sitepulse/buf.h"

struct range {
	int64_t lo, hi;
};

struct rangeset {
	struct range *r;
	size_t n, cap;
	size_t max;   /* at most this many ranges */
};

void rangeset_init(struct rangeset *s, size_t max_ranges);
void rangeset_free(struct rangeset *s);
void rangeset_clear(struct rangeset *s);

bool rangeset_contains(const struct rangeset *s, int64_t x);

/* Adds [lo, hi], merging neighbours. 0, SP_EFULL (would exceed max ranges) or SP_ENOMEM. */
int rangeset_add(struct rangeset *s, int64_t lo, int64_t hi);

/* Removes x (splitting its range). 0, SP_EFULL or SP_ENOMEM; removing an absent x is 0. */
int rangeset_remove(struct rangeset *s, int64_t x);

/* Removes the first (lowest) range. */
void rangeset_pop_first(struct rangeset *s);

/* Removes every value below x. */
void rangeset_drop_below(struct rangeset *s, int64_t x);

/* Copies src into dst (same max). 0 or SP_ENOMEM. */
int rangeset_copy(struct rangeset *dst, const struct rangeset *src);

/* Text form "lo-hi,lo-hi" ("" when empty), for storage. */
int rangeset_format(const struct rangeset *s, struct sp_buf *out);
/* Parses the text form, replacing the content. 0 or SP_EINVAL. */
int rangeset_parse(struct rangeset *s, const char *text);

#endif
