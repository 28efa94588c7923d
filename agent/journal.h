/*
 * journal.h - optional audit log of every data message the agent created.
 *
 * One JSON object per line: the data payload itself, or {"dropped":SEQ}
 * when the spool's overflow policy discarded a message, or
 * {"spool_reset":{"journal_seq":L,"spool_seq":S}} when the journal is
 * opened on a spool that is not the one it followed (a new spool, or one
 * behind the journal's last seq L: replaced, restored): the messages after
 * it are the new spool's, numbered after S (0 = not known yet), and their
 * seqs may repeat ones above the line. A last line torn
 * by a kill -9 is cut off at the next start and its message written again
 * in full, so every line is one complete JSON object. Tests compare it,
 * record by record, with what the collector stored. Each line is flushed
 * before the message is published, and at start-up messages that reached
 * the spool but not the journal (a kill -9 between the two) are added, so
 * the journal lists every message that can ever be published. Drop notices
 * are not caught up that way: a kill -9 between the spool's commit of an
 * overflow and their lines loses them (the spool keeps no record of drops),
 * and the journal then lists those messages as created, never dropped.
 * After a failed write (a full disk) the journal stops until the next
 * start, so that no line follows a torn one.
 */
#ifndef SP_AGENT_JOURNAL_H
#define SP_AGENT_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

struct journal;
struct spool;

/* Opens path for appending and catches up with the spool. NULL on failure (logged). */
struct journal *journal_open(const char *path, struct spool *sp);
void journal_close(struct journal *j);

/* Appends a created message (flushed). 0 or SP_EIO. */
int journal_message(struct journal *j, int64_t seq, const char *payload, size_t len);
/* Appends a drop notice (flushed). 0 or SP_EIO. */
int journal_dropped(struct journal *j, int64_t seq);

#endif
