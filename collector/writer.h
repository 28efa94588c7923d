/*
 * writer.h - the writer thread: takes raw messages from the ingest queue in
 * batches, decodes and validates them, stores them in one transaction per
 * batch together with the alerts their records open and clear (rules.h),
 * and after COMMIT advances and publishes the end-to-end acks.
 *
 * It is the only thread that writes to the store and the only user of the
 * sequence tracker and device cache. See docs/architecture.md.
 */
#ifndef SP_COLLECTOR_WRITER_H
#define SP_COLLECTOR_WRITER_H

#include <stdint.h>

#include "alertmail.h"
#include "collector_conf.h"
#include "ingest.h"
#include "metrics.h"
#include "queue.h"
#include "rules.h"
#include "store.h"

struct writer;

struct writer_params {
	struct store *store;
	struct queue *queue;     /* parsed messages (parser.h), consumed here */
	struct queue *upstream;  /* raw messages before the parser: only looked at (is it empty?) */
	struct ingest *ingest;
	struct metrics *metrics;
	int64_t batch_max;       /* messages per transaction */
	int64_t commit_interval_ms; /* a small batch waits this long after the last commit */
	int64_t gap_window_ms;
	int64_t max_devices;
	int64_t device_cache;    /* devices kept in memory (devcache.h) */
	int64_t device_seen_flush_ms; /* devices' last_seen is written this often */
	int64_t progress_fold_commits; /* the progress log is folded after this many rows (writer.c) */
	int64_t offline_ms;      /* [store] device_offline_s: the offline alerts' silence (offline.h) */
	const struct rules_config *rules; /* alert rules' settings; must outlive the writer */
	const struct writer_mail *mail;   /* NULL: no mails; else must outlive the writer (alertmail.h) */
};

/* Loads the agents' sequence state and starts the thread. NULL on failure. */
struct writer *writer_start(const struct writer_params *p);

/*
 * Call after the queue is closed: the thread stores what the queue holds
 * for at most drain_ms (what is left then is not stored, so not acked: its
 * agent resends it), commits, hands the last acks to the ingest's acker,
 * and is joined; then frees. Accepts NULL.
 */
void writer_stop(struct writer *w, int drain_ms);

#endif
