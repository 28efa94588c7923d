/*
 * holdlog.h - the alert rules' hold events of one batch, folded before
 * they are written (writer.c).
 *
 * A condition that begins its hold and ends it again within one batch (a
 * port that starts charging and stops, a lift door open for a moment)
 * leaves nothing to persist; one that ends a hold begun in an earlier
 * batch needs one delete; one still pending needs one upsert. The writer
 * records each event here in the order the rules give them and, just
 * before COMMIT, writes only the net change per condition: one statement
 * per condition and batch at most, instead of one per event (measured in
 * docs/performance.md item 29).
 *
 * Pure; owned by the writer thread.
 */
#ifndef SP_COLLECTOR_HOLDLOG_H
#define SP_COLLECTOR_HOLDLOG_H

#include <stddef.h>
#include <stdint.h>

struct holdlog;

struct holdlog *holdlog_create(void);
void holdlog_destroy(struct holdlog *h);

/* A hold began at since (HOLD_START). 0 or SP_ENOMEM. */
int holdlog_begin(struct holdlog *h, int64_t device_id, int rule, int32_t port, const char *code,
		  int64_t since);
/*
 * A pending hold begins at since now (HOLD_MOVED). Recorded as an end and a
 * begin: a hold written in an earlier batch has its row replaced (deleted,
 * should it end later in the batch), one begun in this batch is written
 * once, with the new since. 0 or SP_ENOMEM.
 */
int holdlog_move(struct holdlog *h, int64_t device_id, int rule, int32_t port, const char *code,
		 int64_t since);
/* A hold ended (HOLD_END, or OPEN: the alert replaces it). 0 or SP_ENOMEM. */
int holdlog_end(struct holdlog *h, int64_t device_id, int rule, int32_t port, const char *code);

typedef int (*holdlog_put_fn)(void *ctx, int64_t device_id, int rule, int32_t port,
			      const char *code, int64_t since);
typedef int (*holdlog_del_fn)(void *ctx, int64_t device_id, int rule, int32_t port,
			      const char *code);

/*
 * Calls put (the hold is pending now: write it, replacing any) or del (a
 * hold written in an earlier batch is over) once per condition whose state
 * changed since the last flush, in (device, rule, port, code) order, then
 * forgets the events. A hold begun and ended since then calls nothing.
 * Returns 0 or the first callback error (the events are forgotten either way:
 * the caller rolls back and reloads).
 */
int holdlog_flush(struct holdlog *h, holdlog_put_fn put, holdlog_del_fn del, void *ctx);

/* Forgets the events (after a rollback). */
void holdlog_clear(struct holdlog *h);

/* Events recorded since the last flush or clear. */
size_t holdlog_count(const struct holdlog *h);

#endif
