/* clock.c - see clock.h. */
#include "sitepulse/clock.h"

#include <errno.h>
#include <time.h>

static int64_t read_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sp_now_ms(void)
{
	return read_ms(CLOCK_REALTIME);
}

int64_t sp_mono_ms(void)
{
	return read_ms(CLOCK_MONOTONIC);
}

int64_t sp_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int sp_cond_init_mono(pthread_cond_t *cond)
{
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);
	if (rc)
		return rc;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

struct timespec sp_mono_deadline(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000;
	ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	return ts;
}

bool sp_drain_over(bool stopping, int64_t budget_ms, int64_t *deadline)
{
	if (!stopping)
		return false;
	if (*deadline == 0) {
		*deadline = sp_mono_ms() + budget_ms;
		return false;
	}
	return sp_mono_ms() > *deadline;
}

void sp_sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	/* An interrupting signal ends the sleep early: callers re-check their stop flag. */
	nanosleep(&ts, NULL);
}
