/*
 * writer_int.h - the writer thread's state, shared by its two files:
 * writer.c (the loop, the messages, the batches, the acks) and
 * writer_alerts.c (the alert rules' side: their events written into the
 * batch's transaction, their state loaded from the store). The main thread
 * makes it (writer_start), sets `stop` (atomic) and joins the thread; all
 * else is the writer thread's alone.
 * Not for other modules: they see writer.h.
 */
#ifndef SP_WRITER_INT_H
#define SP_WRITER_INT_H

#include "writer.h"

#include "agentseen.h"
#include "alertlog.h"
#include "alertmail.h"
#include "devcache.h"
#include "holdlog.h"
#include "rules.h"
#include "seqtrack.h"

#include "sitepulse/buf.h"
#include "sitepulse/codec.h"
#include "sitepulse/log.h"
#include "sitepulse/topic.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* What one batch did, added to the metrics after COMMIT. */
struct batch_counts {
	uint64_t stored, duplicate, missing, recovered, births, states;
	uint64_t alerts_opened, alerts_adopted, alerts_cleared, fault_raises_stale, clock_steps;
	uint64_t gateway_clocks_off;
	uint64_t records_ahead;
	struct alertmail_counts mail;
	uint64_t msg_rejected[SP_REJ_REASON_COUNT];
	uint64_t rec_stored[SP_REC_KIND_COUNT];
	uint64_t rec_rejected[SP_REJ_REASON_COUNT];
};

struct writer {
	struct writer_params p;
	pthread_t thread;
	bool started;
	atomic_bool stop;             /* set by writer_stop (main thread) */
	atomic_int drain_ms;          /* set by writer_stop before stop: the drain budget */
	struct store_device scratch;  /* a device when the cache is full */
	struct sp_decoder *dec;
	struct seqtrack *seq;
	struct devcache *devs;
	struct rules *rules;
	struct holdlog *holds;        /* the batch's hold events, written net before COMMIT */
	struct alertlog *alert_lines; /* the batch's alert log lines, said after COMMIT */
	struct agentseen *agents_seen; /* agents' liveness to write (agentseen.h) */
	struct alertmail *mail;       /* NULL: alerts are not mailed */
	struct queue_msg *msgs;
	struct sp_topic *topics;
	bool *topic_ok;
	struct sp_buf done, missing, meta;
	uint64_t epoch_seen;
	int64_t last_expire_mono;    /* the cadences: sp_mono_ms */
	int64_t compact_due_us;      /* when the next compaction pass may run: sp_mono_us */
	/* the wall clock against the monotonic one, to see it set back (writer.c, note_clock) */
	int64_t clock_off;
	bool clock_off_known;
	/*
	 * The last forward step of the wall clock (note_clock): arrivals stamped
	 * at or before fwd_upto were stamped by the clock before it, and move
	 * forward by fwd_ms as they come out of the queue; 0 = none (or undone
	 * by a step back).
	 */
	int64_t fwd_upto, fwd_ms;
	int64_t clock_back_ms;        /* set back by this much: to apply in the next batch */
	/*
	 * set forward by this much: the store's reminders to put off in the
	 * next batch, those of the alerts opened while the old clock ran in
	 * this process: from started_wall (its reading at the writer's start)
	 * to fwd_upto (store_w_clock_set_forward)
	 */
	int64_t clock_fwd_ms;
	int64_t started_wall;
	int64_t device_count;
	bool failing;                 /* the last batch failed to commit */
	/*
	 * The alert state could not be read again after a rollback: the next
	 * batch reads it before judging anything, or fails as the store does.
	 */
	bool conditions_stale;
	/* births and states in batches that failed since: to ask the broker for again (writer.c) */
	uint64_t retained_dropped;
	int64_t liveness_flushed_mono;
	int64_t devices_flushed_mono;
	int64_t progress_rows;       /* rows in the progress log since its last fold (writer.c) */
	/*
	 * The broker connection as link_settled needs it: up since when
	 * (sp_mono_ms; 0: down), and since the last re-ask for the retained
	 * births and states (ingest_reasks).
	 */
	uint64_t link_epoch, link_reasks;
	int64_t link_up_since;
	/*
	 * hold_sweeps: when the wait began that recoveries and re-asks have
	 * kept extending since (sp_mono_ms; 0: none), and whether it was said
	 * that they no longer extend it
	 */
	int64_t held_since;
	bool held_said;
	int64_t swept_mono;           /* when the last offline sweep committed (sp_mono_ms) */
	int64_t last_commit_mono;     /* when the last batch with messages started */
	int64_t clears_untrimmed;     /* fault clears written since the store's were last trimmed */
	struct sp_ratelimit reject_log;
	struct sp_ratelimit stale_log;  /* late fault raises ignored */
	struct sp_ratelimit step_log;   /* device clocks set back */
	struct sp_ratelimit clock_log;  /* gateway and device clocks off ours */
	struct sp_ratelimit door_log;   /* lift.door_reopen counts refused */
	uint64_t door_refused;          /* rules_door_counts_refused at the last batch */
	struct batch_counts bc;
};

/* ---------------------------------------------------------------- writer_alerts.c */

/*
 * What the rules need to know of a device, from the inventory's row: its
 * kind, rating and (a lift's, when its birth gave them) floors; d NULL: none
 * known (an alert or hold loaded at start, before any record of it).
 */
void writer_rule_device(struct rule_device *rd, int64_t id, const char *site, const char *dev,
			enum sp_dev_kind kind, uint16_t rating, const struct store_device *d);

/* The rules' events (rule_event_fn, ctx: the writer), written in the batch's transaction. */
int writer_on_rule_event(void *ctx, const struct rule_event *ev, int64_t *alert_id);

/* holdlog_flush's writers (ctx: the store). */
int writer_put_hold(void *ctx, int64_t device_id, int rule, int32_t port, const char *code,
		    int64_t since);
int writer_del_hold(void *ctx, int64_t device_id, int rule, int32_t port, const char *code);

/* (Re)builds the rules' state from the store: at start, and after a rolled-back batch. */
int writer_load_conditions(struct writer *w);

/* store_w_load_fault_clears' callback at start (ctx: the writer). */
int writer_load_fault_clear(void *ctx, int64_t device_id, int32_t port, const char *code,
			    int64_t ts);

#endif
