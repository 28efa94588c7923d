/*
 * spool.h - the agent's durable outbox of data messages (CONTRACT §3.4).
 *
 * Every data message is written here (committed) before it is published,
 * and leaves only when an end-to-end ack from the collector covers it.
 * The spool also keeps the next sequence number, so seq survives restarts
 * and is never reused; the ids of the last commands applied and every port
 * a command turned off and none put back (spool_cmd_add); and the records an orderly stop
 * found before the seq was known (spool_pending_save).
 *
 * Bounded by payload bytes (max_bytes). Policy when full: drop the oldest
 * messages to make room, count them, and log once when an overflow episode
 * starts and once when it ends. Dropped seqs are reported to the caller so
 * the journal can record them.
 *
 * Durability: SQLite in WAL mode; with sync_full every append is fsync'ed
 * (survives power loss), otherwise it survives a crash of the agent but
 * not of the machine.
 *
 * This is the agent's only SQLite user. Threading: one thread (main loop).
 */
#ifndef SP_AGENT_SPOOL_H
#define SP_AGENT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sitepulse/codec.h"
#include "sitepulse/record.h"

struct spool;

struct spool_stats {
	int64_t messages;      /* unacked messages held */
	int64_t bytes;         /* their payload bytes */
	int64_t first_seq;     /* oldest held seq, 0 if empty */
	int64_t last_seq;      /* newest held seq, 0 if empty */
	int64_t dropped_total; /* messages dropped by the overflow policy since open */
};

/*
 * Opens (creating) the spool at path. NULL on failure (logged), also when
 * its state cannot be read: a spool taken for empty or new would reuse seqs.
 */
struct spool *spool_open(const char *path, int64_t max_bytes, bool sync_full);
void spool_close(struct spool *sp);

/*
 * The next seq to use, or 0 when the spool is new and does not know it yet
 * (the agent then learns it from the collector's retained ack: ack + 1).
 */
int64_t spool_next_seq(const struct spool *sp);

/* Sets the next seq of a new spool. 0 or SP_EIO. */
int spool_set_next_seq(struct spool *sp, int64_t next);

/*
 * Called with the seq of each message the overflow policy dropped, after
 * the append that dropped it has committed (a failed append drops nothing).
 */
typedef void (*spool_drop_fn)(void *ctx, int64_t seq);

/*
 * Appends the message as seq = spool_next_seq() and advances the next seq,
 * in one transaction. Drops oldest messages first if needed (calling
 * on_drop for each). Returns 0, SP_ETOOBIG (larger than the whole spool),
 * SP_ENOMEM or SP_EIO (e.g. a full disk: nothing changed, try again later).
 * Database errors are logged here, at most 3 lines a minute.
 */
int spool_append(struct spool *sp, int64_t ts, const char *payload, size_t len,
		 spool_drop_fn on_drop, void *ctx);

/*
 * spool_append, and in the same transaction deletes the pending records with
 * id <= pending_upto (0: none): the message holds them now.
 */
int spool_append_pending(struct spool *sp, int64_t ts, const char *payload, size_t len,
			 int64_t pending_upto, spool_drop_fn on_drop, void *ctx);

/*
 * Deletes every message with seq <= acked_seq. 0 or SP_EIO (the count of
 * what leaves failed: nothing deleted; or the delete failed; try again).
 */
int spool_ack(struct spool *sp, int64_t acked_seq);

/* Receives a held message; return non-zero to stop the iteration. */
typedef int (*spool_each_fn)(void *ctx, int64_t seq, const char *payload, size_t len);

/*
 * Calls fn for held messages with seq > after_seq, oldest first, at most
 * max of them. Returns the number visited, or SP_EIO.
 */
int spool_each_after(struct spool *sp, int64_t after_seq, size_t max, spool_each_fn fn,
		     void *ctx);

/*
 * Remembers a port_off or port_on command applied (CONTRACT §3.3: once per
 * id, across restarts too; port_on shares the ids) and forgets all but the
 * newest `keep` ids. A new port_off id's port is remembered off
 * (spool_port_off_each) until a port_on id's takes it out, in the same
 * transaction as the id. Returns 1 if the id is new, 0 if it was already
 * there (nothing written), or SP_EIO (nothing written).
 */
int spool_cmd_add(struct spool *sp, const char *id, enum sp_cmd_kind cmd, const char *dev,
		  int port, int64_t at_ms, int keep);

/* Receives a remembered command. */
typedef void (*spool_cmd_fn)(void *ctx, const char *id, const char *dev, int port);

/*
 * Calls fn for each remembered command (the newest `keep`), oldest first.
 * Returns their number, or SP_EIO.
 */
int spool_cmd_each(struct spool *sp, spool_cmd_fn fn, void *ctx);

/* Receives a port a command turned off. */
typedef void (*spool_port_fn)(void *ctx, const char *dev, int port);

/*
 * Calls fn for each port a port_off command turned off and no port_on put
 * back since (however many commands came since), in (dev, port) order.
 * Returns their number, or SP_EIO.
 */
int spool_port_off_each(struct spool *sp, spool_port_fn fn, void *ctx);

/*
 * Pending records: what a new spool's agent held in memory at an orderly
 * stop, before it knew its seq (no ack ever came: it never connected), so
 * that they are not lost. Each has an id, increasing in the order kept.
 *
 * spool_pending_save deletes those with id < keep_from (INT64_MAX: all; the
 * agent passes the id of the oldest it still holds from the last load) and
 * adds recs[0..n) after the rest, in one transaction. 0, SP_EIO, SP_ENOMEM,
 * or the encoder's error (nothing changed).
 */
int spool_pending_save(struct spool *sp, const struct sp_record *recs, size_t n,
		       int64_t keep_from);

/* Receives a pending record (valid during the call only). */
typedef void (*spool_pending_fn)(void *ctx, int64_t id, const struct sp_record *r);

/*
 * Calls fn for the newest `max` pending records, oldest first; they stay
 * until spool_append_pending or spool_pending_save deletes them (older ones
 * beyond max too). A row that does not decode is deleted (logged). Returns
 * the number delivered, or SP_EIO / SP_ENOMEM.
 */
int spool_pending_each(struct spool *sp, size_t max, spool_pending_fn fn, void *ctx);

/*
 * The counters, kept in memory. After a query around an append or ack failed
 * they may be off until the next append or ack, which reads them from the
 * file again first (a scan of every message, only then).
 */
void spool_get_stats(const struct spool *sp, struct spool_stats *out);

#endif
