/*
 * retry.h - the wait between delivery attempts of the mailer (mailer.c)
 * and the city sender (cityout.c): min_ms doubled per failure in a row,
 * at most max_ms, then up to a fifth less at random so that what failed
 * together (a relay or a city endpoint down for every item) does not come
 * back together — but never below min_ms, the least wait the operator set.
 *
 * Pure: no clock, no I/O; the caller owns the random state (*rng, any
 * seed, advanced by each call). Not thread-safe per state.
 */
#ifndef SP_COLLECTOR_RETRY_H
#define SP_COLLECTOR_RETRY_H

#include <stdint.h>

/* The wait after the (failures + 1)-th failure in a row; min_ms >= 1, max_ms >= min_ms. */
int64_t retry_delay_ms(int64_t min_ms, int64_t max_ms, int64_t failures, uint64_t *rng);

#endif
