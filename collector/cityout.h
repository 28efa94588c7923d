/*
 * cityout.h - city summaries (CONTRACT §6): a thread that, every period
 * (aligned to the clock in UTC) plus a grace time for late data, builds one
 * summary per site (summary.h) from the store, puts it in the durable city
 * outbox together with the site's progress (store_sender_add_summary), and
 * POSTs what the outbox holds to the city URL with libcurl, each site's
 * periods in order; anything but a 2xx answer is retried with exponential
 * backoff, across restarts.
 *
 * A hanging city endpoint only ever holds this thread (every attempt has
 * connect and total timeouts); the writer never waits on it.
 */
#ifndef SP_COLLECTOR_CITYOUT_H
#define SP_COLLECTOR_CITYOUT_H

#include <stdint.h>

#include "metrics.h"
#include "store.h"

struct cityout_params {
	struct store *store;
	struct metrics *metrics;     /* summaries_sent, summaries_failed, summaries_queued */
	const char *url;             /* http(s)://... ; "" = build and keep summaries, send nothing */
	const char *token;           /* Authorization: Bearer TOKEN */
	const char *ca_file;         /* NULL or "" = the system's CAs */
	int64_t period_ms;
	int64_t grace_ms;            /* a period is summarized this long after it ends */
	int64_t offline_ms;          /* device_offline_s, for online_pct */
	int64_t timeout_ms;          /* one attempt, all of it */
	int64_t retry_min_ms;
	int64_t retry_max_ms;
	int64_t device_records_max;  /* a device with more readings in a period is left out of it */
};

struct cityout;

/*
 * Copies what it needs from p (strings included), opens the city outbox
 * (a store connection of its own) and starts the thread. NULL on failure
 * (logged). The store and metrics must outlive the thread.
 */
struct cityout *cityout_start(const struct cityout_params *p);

/*
 * Stops the thread (an attempt under way is cut short within about a
 * second and not counted as failed; a summary being built is built again
 * at the next start), joins it and frees c. NULL ok.
 */
void cityout_stop(struct cityout *c);

#endif
