/*
 * metrics.h - the collector's counters and health flags, shared by every
 * thread through one struct owned by main (all fields atomic), rendered in
 * the Prometheus text format for GET /metrics (CONTRACT §5).
 */
#ifndef SP_COLLECTOR_METRICS_H
#define SP_COLLECTOR_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sitepulse/buf.h"
#include "sitepulse/codec.h"
#include "sitepulse/record.h"

#include "store.h"

/*
 * The answers the API refuses with, one counter each (metrics.c's table):
 * 400 401 403 404 405 409 413 500 503, those only libmicrohttpd gives
 * (414 431 505), a connection closed without an answer, one closed at
 * accept for a connection limit, and any other status.
 */
#define METRICS_HTTP_REFUSALS 15
/* metrics_count_refused's status for a connection closed without an answer */
#define METRICS_REFUSED_CLOSED 0u
/* ... and for one closed as it was accepted: max_connections(_per_ip) reached */
#define METRICS_REFUSED_LIMIT 1u

struct metrics {
	/* ingest (Paho thread) */
	atomic_uint_fast64_t messages_received;
	/* ingest (main thread): births and states asked for again (ingest_ask_retained) */
	atomic_uint_fast64_t retained_asked;
	/* ingest (main thread): such requests put off to the end of the interval (reask.h) */
	atomic_uint_fast64_t retained_deferred;
	/* writer thread */
	atomic_uint_fast64_t messages_stored;
	atomic_uint_fast64_t messages_duplicate;
	atomic_uint_fast64_t messages_missing;
	atomic_uint_fast64_t messages_recovered;
	atomic_uint_fast64_t messages_rejected[SP_REJ_REASON_COUNT];
	atomic_uint_fast64_t records_stored[SP_REC_KIND_COUNT];
	atomic_uint_fast64_t records_rejected[SP_REJ_REASON_COUNT];
	atomic_uint_fast64_t births;
	atomic_uint_fast64_t states;
	atomic_uint_fast64_t acks_published;
	atomic_uint_fast64_t batches_committed;
	atomic_uint_fast64_t batches_failed;
	atomic_uint_fast64_t messages_dropped_store; /* in batches that failed to commit */
	atomic_uint_fast64_t chunks_compacted;       /* reading chunks merged into others */
	atomic_uint_fast64_t compactions_failed;
	atomic_int_fast64_t compaction_backlog;      /* gauge: chunks due, not yet looked at */
	atomic_int_fast64_t compaction_lag_ms;       /* gauge: how long the oldest has been due */
	atomic_uint_fast64_t alerts_opened;
	atomic_uint_fast64_t alerts_adopted;         /* opened, but still active in the store */
	atomic_uint_fast64_t alerts_cleared;
	atomic_uint_fast64_t rule_conditions;        /* conditions the rules track (pending or alerted) */
	atomic_uint_fast64_t fault_raises_stale;     /* late fault raises over before they came */
	atomic_uint_fast64_t device_clock_steps;     /* device clocks the rules took as set back */
	atomic_uint_fast64_t gateway_clocks_off;     /* state messages with a clock off ours */
	atomic_uint_fast64_t records_ahead;          /* records stamped after they arrived */
	atomic_uint_fast64_t device_cache_evictions; /* devices evicted from the writer's cache */
	atomic_uint_fast64_t door_counts_refused;    /* lift.door_reopen counts with no room */
	/* mailer thread */
	atomic_uint_fast64_t mail_sent;
	atomic_uint_fast64_t mail_failed;            /* delivery attempts that failed; also
							the writer's mails not composed */
	atomic_int_fast64_t mail_queued;             /* gauge: mails not yet delivered */
	atomic_uint_fast64_t mail_superseded;        /* reminders not sent: later news came */
	/* city thread */
	atomic_uint_fast64_t summaries_sent;
	atomic_uint_fast64_t summaries_failed;       /* delivery attempts that failed */
	atomic_int_fast64_t summaries_queued;        /* gauge: summaries not yet delivered */
	atomic_uint_fast64_t summaries_built;
	atomic_uint_fast64_t summary_devices_left_out; /* too many readings in the period */
	/* writer: mails of a flapping condition not sent (see writer.c) */
	atomic_uint_fast64_t mail_paced;
	atomic_uint_fast64_t mail_reminders;
	/* HTTP threads */
	atomic_uint_fast64_t http_requests;
	atomic_uint_fast64_t http_unauthorized;
	atomic_uint_fast64_t http_refused[METRICS_HTTP_REFUSALS]; /* metrics_count_refused */
	/* health */
	atomic_bool mqtt_connected;
	atomic_bool store_ok;
	/*
	 * sp_mono_ms since when the collector receives: subscribed on its current
	 * connection (0 while not; ingest) and committing again after the store
	 * failed (its start at first; writer). The city thread waits on them.
	 */
	atomic_int_fast64_t subscribed_mono;
	atomic_int_fast64_t store_ok_mono;
	atomic_int_fast64_t last_commit_ms;   /* wall clock, shown */
	atomic_int_fast64_t last_commit_mono; /* sp_mono_ms, for the stall test */
	atomic_uint_fast64_t agents;
	atomic_uint_fast64_t pending_acks;
};

/* Values read at scrape time from other modules. */
struct metrics_gauges {
	uint64_t queue_depth;
	uint64_t queue_bytes;
	uint64_t queue_cap_bytes;
	uint64_t queue_blocked;
	int64_t devices[SP_DEV_KIND_COUNT][2]; /* [kind][online] */
	bool devices_valid;
	int64_t alerts[STORE_ALERT_STATES][STORE_ALERT_SEVERITIES]; /* store_r_alert_counts */
	bool alerts_valid;
};

void metrics_init(struct metrics *m);

/*
 * Counts a request the API refused, by the status it was answered with
 * (sitepulse_http_refused_total{status}), or METRICS_REFUSED_CLOSED /
 * METRICS_REFUSED_LIMIT. Any thread.
 */
void metrics_count_refused(struct metrics *m, unsigned status);

/* Appends the Prometheus text exposition. 0 or SP_ENOMEM. */
int metrics_render(const struct metrics *m, const struct metrics_gauges *g, struct sp_buf *out);

#endif
