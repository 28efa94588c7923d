/* clock.h - the two clocks sitepulse uses. */
#ifndef SP_CLOCK_H
#define SP_CLOCK_H

#include <stdint.h>

/* Wall clock: milliseconds since the Unix epoch, UTC (for timestamps). */
int64_t sp_now_ms(void);

/* Monotonic clock in milliseconds (for timeouts and intervals). */
int64_t sp_mono_ms(void);

/* Sleeps for ms milliseconds; a signal ends the sleep early (callers re-check their flags). */
void sp_sleep_ms(int64_t ms);

#endif
