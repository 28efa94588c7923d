/* clock.h - the two clocks sitepulse uses. */
#ifndef SP_CLOCK_H
#define SP_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Wall clock: milliseconds since the Unix epoch, UTC (for timestamps). */
int64_t sp_now_ms(void);

/* Monotonic clock in milliseconds (for timeouts and intervals). */
int64_t sp_mono_ms(void);

/* The same clock in microseconds (for measuring short work). */
int64_t sp_mono_us(void);

/*
 * For a thread that drains its input when asked to stop: false while not
 * stopping, and for budget_ms after stopping began; then true. *deadline
 * holds the state (0 before the first call).
 */
bool sp_drain_over(bool stopping, int64_t budget_ms, int64_t *deadline);

/*
 * Timed waits. A condition variable made with sp_cond_init_mono measures its
 * pthread_cond_timedwait deadlines on CLOCK_MONOTONIC, and sp_mono_deadline
 * gives such a deadline: a step of the wall clock (NTP, an operator, a VM
 * resumed) then neither stretches a wait (a clock stepped back by an hour
 * would keep an idle thread asleep for that hour) nor cuts it short. Every
 * timed wait in sitepulse uses the pair. sp_cond_init_mono returns 0 or an
 * errno value, as pthread_cond_init does.
 */
int sp_cond_init_mono(pthread_cond_t *cond);
struct timespec sp_mono_deadline(int64_t ms);

/* Sleeps for ms milliseconds; a signal ends the sleep early (callers re-check their flags). */
void sp_sleep_ms(int64_t ms);

#endif
