/*
 * lifecount.h - the growth of a lifetime counter (a lift's trips,
 * door_cycles, run_s) from its values in time order, telling device resets
 * from out-of-order and spurious values (lifecount.c says why and how).
 * Used by the city summary (summary.c).
 *
 * Pure: no I/O, no allocation. A plain value struct: zero it to start.
 */
#ifndef SP_COLLECTOR_LIFECOUNT_H
#define SP_COLLECTOR_LIFECOUNT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The most growth counted: what a counter holds (2^53-1, the codec's bound
 * for them), which also keeps it exact in a JSON number.
 */
#define LIFECOUNT_MAX 9007199254740991LL

struct lifecount {
	bool have;        /* a value has been fed */
	bool reset;       /* a reset is pending: a later jump may prove it spurious */
	int64_t last;     /* the baseline: growth counts from here */
	int64_t delta;    /* the growth so far, -LIFECOUNT_MAX..LIFECOUNT_MAX */
	int64_t pre_last; /* last and delta just before the pending reset */
	int64_t pre_delta;
};

/* The counter's next value in time order (a value below 0 is ignored). */
void lifecount_feed(struct lifecount *c, int64_t v);
/*
 * Counts from here on: the values fed so far only say where the counter
 * stands (e.g. those from before a summary's period).
 */
void lifecount_start(struct lifecount *c);
/* The growth since lifecount_start (or the first value): 0..LIFECOUNT_MAX. */
int64_t lifecount_growth(const struct lifecount *c);

#endif
