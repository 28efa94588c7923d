/* clock.h - the two clocks sitepulse uses. */
#ifndef SP_CLOCK_H
#define SP_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* Wall clock: milliseconds since the Unix epoch, UTC (for timestamps). */
int64_t sp_now_ms(void);

/* Monotonic clock in milliseconds (for timeouts and intervals). */
int64_t sp_mono_ms(void);

/*
 * For a thread that drains its input when asked to stop: false while not
 * stopping, and for budget_ms after stopping began; then true. *deadline
 * holds the state (0 before the first call).
 */
bool sp_drain_over(bool stopping, int64_t budget_ms, int64_t *deadline);

/* Sleeps for ms milliseconds; a signal ends the sleep early (callers re-check their flags). */
void sp_sleep_ms(int64_t ms);

#endif
