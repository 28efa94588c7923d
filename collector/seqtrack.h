/*
 * seqtrack.h - per-agent sequence tracking: exactly-once storage and the
 * end-to-end ack (CONTRACT §3.4). Pure: no I/O, no clock, no locks.
 *
 * For each agent it knows `acked`, the highest N such that every seq 1..N
 * is handled (committed, rejected, or declared missing), the handled seqs
 * above N+1 (out of order), and the seqs declared missing (so a late
 * arrival is still stored, not taken for a duplicate).
 *
 * Batches: the writer marks the seqs of one database transaction, persists
 * the touched agents' state inside that transaction, then calls
 * seqtrack_commit() after COMMIT or seqtrack_abort() after ROLLBACK (which
 * restores every touched agent).
 *
 * Gaps: each open gap gets its own window, counted from when the gap
 * before it closed (or from its first sight), so several gaps of one
 * burst are declared one window after another, never early.
 *
 * Ack pacing (CONTRACT §3.4): while an agent's ack keeps advancing it is
 * published at most once a second; once the writer has committed everything
 * it received and the agent's ack has not moved for SEQTRACK_IDLE_ACK_MS
 * (the agent went quiet), it is published at once, so the last ack of a
 * burst arrives within about 100 ms of its commit. An ack asked for again
 * (a duplicate arrived, a restore, a reconnect) is published at once unless
 * it also moved within the second. Pacing reads a monotonic clock (the
 * callers' mono_ms): a wall clock set back would hold every ack until it
 * caught up. A call costs in proportion to the acks it publishes, not to
 * the agents waiting.
 *
 * Threading: owned by the writer thread.
 */
#ifndef SP_COLLECTOR_SEQTRACK_H
#define SP_COLLECTOR_SEQTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sitepulse/buf.h"

#define SEQTRACK_MAX_RANGES 1024  /* out-of-order ranges kept per agent */
#define SEQTRACK_MISSING_KEPT 256 /* declared-missing ranges remembered per agent */
#define SEQTRACK_ACK_INTERVAL_MS 1000
#define SEQTRACK_IDLE_ACK_MS 80 /* an agent whose ack has not moved this long has gone quiet */

enum seq_verdict {
	SEQ_NEW = 0,   /* not seen: store it */
	SEQ_DUPLICATE, /* already handled: ignore it */
	SEQ_LATE,      /* was declared missing and arrived after all: store it */
};

struct seqtrack;
struct seq_agent;

struct seqtrack *seqtrack_create(int64_t gap_window_ms);
void seqtrack_destroy(struct seqtrack *t);

/* The agent's tracker, or NULL if unknown. */
struct seq_agent *seqtrack_find(struct seqtrack *t, const char *site, const char *agent);

/* Adds an agent (acked 0, nothing seen). NULL on no memory. */
struct seq_agent *seqtrack_add(struct seqtrack *t, const char *site, const char *agent,
			       int64_t agent_id);

/*
 * Restores persisted state (see seq_agent_format_*) and queues the agent's
 * ack for publication (the broker may have lost it); the agent counts as
 * unfolded (below). 0 or SP_EINVAL.
 */
int seqtrack_restore(struct seqtrack *t, struct seq_agent *a, int64_t acked, const char *done,
		     const char *missing, int64_t gap_since_ms);

enum seq_verdict seqtrack_check(const struct seq_agent *a, int64_t seq);

/*
 * True when seq is behind the agent's newest handled message: a higher seq
 * was already handled (the message fills a gap, e.g. resent after a broker
 * or collector restart while newer ones went through). Its records are
 * older than records already processed (the alert rules ignore them).
 */
bool seqtrack_behind(const struct seq_agent *a, int64_t seq);

/*
 * Marks seq handled in the current batch. Returns the number of messages
 * declared missing as a side effect (only when the agent's out-of-order
 * set is full), or SP_ENOMEM.
 */
int64_t seqtrack_mark(struct seqtrack *t, struct seq_agent *a, int64_t seq, int64_t now_ms);

/* Notes that a duplicate arrived: the agent missed our ack, so publish it again. */
void seqtrack_note_duplicate(struct seqtrack *t, struct seq_agent *a);

/*
 * Declares gaps open longer than the window missing (part of the current
 * batch). Returns the number of messages declared missing.
 */
int64_t seqtrack_expire(struct seqtrack *t, int64_t now_ms);

/*
 * The wall clock was set back by back_ms (outside a batch): gaps first seen
 * after now_ms, by the clock that ran ahead, count from back_ms earlier, so
 * they are declared missing on time; their agents join the unfolded list
 * (their rows are written at the next fold).
 */
void seqtrack_clock_set_back(struct seqtrack *t, int64_t now_ms, int64_t back_ms);

/*
 * The wall clock was set forward by fwd_ms (outside a batch): every open gap
 * counts from fwd_ms later, so the step does not shorten its window (an
 * expired gap moves the ack past it, and the agent drops what it still
 * holds of it); their agents join the unfolded list.
 */
void seqtrack_clock_set_forward(struct seqtrack *t, int64_t fwd_ms);

/* Agents touched by the current batch, to persist before COMMIT. */
struct seq_agent *seqtrack_first_touched(struct seqtrack *t);
struct seq_agent *seqtrack_next_touched(struct seq_agent *a);

/*
 * Commit: the touched agents' state is kept and they join the unfolded
 * list; those whose ack moved queue it for publication (mono_ms: when, by
 * the monotonic clock of the pacing).
 */
void seqtrack_commit(struct seqtrack *t, int64_t mono_ms);
void seqtrack_abort(struct seqtrack *t);

/*
 * Folding (the writer's progress log, store.h): the agents whose committed
 * state may be newer than their own row in the store — restored at start or
 * touched by a committed batch since the last fold. After a transaction
 * that wrote every one of them into its row committed, seqtrack_folded
 * empties the list (a rolled-back fold leaves it as it was).
 */
struct seq_agent *seqtrack_first_unfolded(struct seqtrack *t);
struct seq_agent *seqtrack_next_unfolded(struct seq_agent *a);
bool seq_agent_unfolded(const struct seq_agent *a);
void seqtrack_folded(struct seqtrack *t);

/* Publishes one ack; returns 0 when sent, non-zero to retry on a later call (and stop this one). */
typedef int (*seqtrack_publish_fn)(void *ctx, const char *site, const char *agent, int64_t seq);

/*
 * Publishes the acks that are due at mono_ms (the pacing rule above; idle:
 * the writer has committed everything it received). mono_ms never goes
 * back from one call (or commit) to the next.
 */
void seqtrack_publish_due(struct seqtrack *t, int64_t mono_ms, bool idle,
			  seqtrack_publish_fn fn, void *ctx);

/* Marks every agent's ack for publication again (after a reconnect). */
void seqtrack_republish_all(struct seqtrack *t);

/* Accessors. */
const char *seq_agent_site(const struct seq_agent *a);
const char *seq_agent_name(const struct seq_agent *a);
int64_t seq_agent_id(const struct seq_agent *a);
int64_t seq_agent_acked(const struct seq_agent *a);
int64_t seq_agent_gap_since(const struct seq_agent *a);
/* Text forms of the out-of-order and missing sets, for persistence. */
int seq_agent_format_done(const struct seq_agent *a, struct sp_buf *out);
int seq_agent_format_missing(const struct seq_agent *a, struct sp_buf *out);

size_t seqtrack_count(const struct seqtrack *t);
/* Agents with acks waiting to be published. */
size_t seqtrack_pending_acks(const struct seqtrack *t);

#endif
