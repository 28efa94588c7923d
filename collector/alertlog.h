/*
 * alertlog.h - the log lines of a batch's alert events (an alert opened,
 * adopted or cleared), said once the batch's transaction has committed.
 *
 * The writer opens and clears alerts inside the batch's transaction. A
 * batch that rolls back takes them back: its messages are resent by their
 * agents and judged again, and the alert may then get another id, or the
 * rolled-back id may go to another alert. Said at once, the line would
 * report an alert that never existed. So the lines wait here until the
 * commit (alertlog_commit) and are forgotten with a rollback
 * (alertlog_abort).
 *
 * Bounded: at most max_bytes of text wait. Lines beyond are counted, and
 * the count is said in one line after the rest (a sweep that opens many
 * alerts at once is not worth more of the log than that: the API and the
 * metrics have every one).
 *
 * Pure (the caller says the lines); owned by the writer thread.
 */
#ifndef SP_COLLECTOR_ALERTLOG_H
#define SP_COLLECTOR_ALERTLOG_H

#include <stddef.h>

struct alertlog;

/* NULL on no memory. max_bytes: the lines' text, NULs included. */
struct alertlog *alertlog_create(size_t max_bytes);
void alertlog_destroy(struct alertlog *l);

/*
 * Keeps one line (printf format) until the commit; a line longer than
 * ALERTLOG_LINE_MAX - 1 is cut there. One that does not fit is counted.
 */
#define ALERTLOG_LINE_MAX 1024
void alertlog_add(struct alertlog *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef void (*alertlog_say_fn)(void *ctx, const char *line);

/*
 * The batch committed: calls say once per kept line, in the order added,
 * then, if lines did not fit, once more with their count; forgets them.
 * Returns the number of lines added since the last commit or abort.
 */
size_t alertlog_commit(struct alertlog *l, alertlog_say_fn say, void *ctx);

/* The batch rolled back: forgets its lines. Returns how many were added. */
size_t alertlog_abort(struct alertlog *l);

#endif
