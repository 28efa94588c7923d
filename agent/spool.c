/*
 * spool.c - the agent's SQLite outbox (see spool.h).
 *
 * Schema (version 1):
 *   meta(key TEXT PRIMARY KEY, value INTEGER)   next_seq
 *   messages(seq INTEGER PRIMARY KEY, ts INTEGER, payload BLOB)
 *   commands(id TEXT PRIMARY KEY, dev TEXT, port INTEGER, at INTEGER, cmd TEXT)
 *     the port_off and port_on commands applied, newest few (spool_cmd_add):
 *     each id once. cmd is "port_off" or "port_on"; NULL is a row an older
 *     agent wrote (it knows port_off only, and not the column), which the
 *     next open takes for a port_off (add_tables).
 *   ports_off(dev TEXT, port INTEGER, PRIMARY KEY(dev, port))
 *     every port a port_off command turned off and no port_on since: bounded
 *     by devices x 64 ports, not by the ids kept. Written in the transaction
 *     that remembers the command's id; the ports of an older agent's rows
 *     (cmd NULL) are added at open, once (add_tables).
 *   pending(id INTEGER PRIMARY KEY, rec TEXT)
 *     records a new spool's agent held in memory at an orderly stop, before
 *     it knew its seq (spool_pending_save), each as its canonical record JSON
 *     (sp_encode_record); deleted in the transaction of the data message
 *     that takes them (spool_append_pending), so a crash in between loads
 *     them again rather than losing them.
 *   These three are created at every open if missing (not a schema version
 *   of their own: an older agent opens the file all the same and leaves
 *   them alone).
 * Byte and message counts are kept in memory (loaded at open) so the
 * overflow check costs nothing per append. They are adjusted by what each
 * append and ack changed, which the queries around the change say; when
 * one of those fails after the file changed (stale), the counters are read
 * from the file again (a scan, as at open) by the next append or ack, so a
 * failed query cannot leave them off for good: counts too high made every
 * append look full and drop, or fail, with nothing left to drop.
 *
 * One process at a time: an flock on the file for as long as it is open.
 * Two agents sharing a spool_path (a copied configuration) would each
 * number messages from the same next_seq, and one would fail its inserts
 * for good; the second is refused at open instead. SQLite's own locks are
 * fcntl locks, which an flock does not touch; but closing any descriptor
 * of the file drops them, so the lock's descriptor is closed only after
 * the database.
 */
#include "spool.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define SCHEMA_VERSION 1
/* failures repeat every tick while a disk is full: this many lines a minute */
#define FAIL_LOG_BURST 3
#define FAIL_LOG_WINDOW_MS 60000

struct spool {
	sqlite3 *db;
	int lock_fd; /* holds the flock (see the top); -1 = none */
	char *path;
	int64_t max_bytes;
	int64_t next_seq;
	int64_t messages, bytes, first_seq, last_seq;
	int64_t dropped_total;
	int64_t dropped_episode; /* drops in the current overflow episode */
	bool overflowing;
	bool have_ports_off; /* the table ports_off exists (add_tables) */
	bool stale; /* messages, bytes, first_seq, last_seq may be off: recount() before use */
	int64_t *dropped_seqs; /* seqs dropped by the append in progress, reported after COMMIT */
	size_t ndropped_seqs, dropped_cap;
	struct sp_ratelimit fail_log;
	sqlite3_stmt *insert, *set_next, *delete_upto, *select_after, *select_oldest, *delete_one,
		*count_upto, *count_all, *begin, *commit, *rollback;
};

static int db_fail(struct spool *sp, const char *what)
{
	uint64_t suppressed;
	if (sp_ratelimit_allow(&sp->fail_log, sp_mono_ms(), FAIL_LOG_BURST, FAIL_LOG_WINDOW_MS,
			       &suppressed))
		SP_ERROR("spool", "%s: %s failed: %s%s", sp->path, what, sqlite3_errmsg(sp->db),
			 suppressed ? " (similar errors were suppressed)" : "");
	return SP_EIO;
}

static int exec(struct spool *sp, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(sp->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		SP_ERROR("spool", "%s: %s: %s", sp->path, sql, msg ? msg : "?");
		sqlite3_free(msg);
		return SP_EIO;
	}
	return 0;
}

static int prepare(struct spool *sp, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v3(sp->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
		return db_fail(sp, sql);
	return 0;
}

static int step_done(struct spool *sp, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_fail(sp, what);
	return 0;
}

static int migrate(struct spool *sp)
{
	sqlite3_stmt *st = NULL;
	int version = 0, rc;

	if ((rc = prepare(sp, &st, "PRAGMA user_version")))
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version == SCHEMA_VERSION)
		return 0;
	if (version > SCHEMA_VERSION) {
		SP_ERROR("spool", "%s: schema version %d is newer than this agent (%d)", sp->path,
			 version, SCHEMA_VERSION);
		return SP_EIO;
	}
	return exec(sp, "BEGIN;"
			"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
			"CREATE TABLE IF NOT EXISTS messages(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
			" payload BLOB NOT NULL);"
			"PRAGMA user_version = 1;"
			"COMMIT;");
}

/* 1 if the count query `sql` (one text parameter, name) counts any row, 0 if not, or SP_EIO. */
static int counts_any(struct spool *sp, const char *sql, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = prepare(sp, &st, sql)))
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) > 0 : db_fail(sp, "read the schema");
	sqlite3_finalize(st);
	return rc;
}

/* 1 if the table exists, 0 if not, or SP_EIO. */
static int has_table(struct spool *sp, const char *name)
{
	return counts_any(sp, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
			  name);
}

/* 1 if commands has the column cmd, 0 if not, or SP_EIO. */
static int has_cmd_column(struct spool *sp)
{
	return counts_any(sp, "SELECT count(*) FROM pragma_table_info('commands') WHERE name = ?",
			  "cmd");
}

/*
 * The tables of the commands and pending records (see the top), created if
 * missing, and commands' column cmd added if missing (a spool of an agent
 * before port_on: its rows are all port_off, and get NULL).
 *
 * ports_off came after commands, and port_on after ports_off. The ports of
 * the rows an older agent wrote (cmd NULL: an upgrade, or a run of an older
 * agent in between, which remembers its commands in commands only, or writes
 * no cmd) are put in ports_off, and those rows marked port_off, in the same
 * transaction: each row once. Taking every port in commands at every open,
 * as before port_on, turned a port back off at each restart from an old
 * port_off id still among the 64 kept, after a port_on had put it back in
 * service. A NULL row is newer than every row this agent wrote (this agent
 * marks them all at each open), so adding its port never undoes a later
 * port_on.
 */
static int add_tables(struct spool *sp)
{
	int rc, added;

	if ((rc = exec(sp, "BEGIN IMMEDIATE")))
		return rc;
	if ((rc = exec(sp, "CREATE TABLE IF NOT EXISTS commands(id TEXT PRIMARY KEY,"
			   " dev TEXT NOT NULL, port INTEGER NOT NULL, at INTEGER NOT NULL,"
			   " cmd TEXT)")) ||
	    (rc = has_cmd_column(sp)) < 0 ||
	    (rc == 0 && (rc = exec(sp, "ALTER TABLE commands ADD COLUMN cmd TEXT"))) ||
	    (rc = exec(sp, "CREATE TABLE IF NOT EXISTS pending(id INTEGER PRIMARY KEY,"
			   " rec TEXT NOT NULL)")) ||
	    (rc = exec(sp, "CREATE TABLE IF NOT EXISTS ports_off(dev TEXT NOT NULL,"
			   " port INTEGER NOT NULL, PRIMARY KEY(dev, port)) WITHOUT ROWID")) ||
	    (rc = exec(sp, "INSERT OR IGNORE INTO ports_off(dev, port) "
			   "SELECT dev, port FROM commands WHERE cmd IS NULL")))
		goto fail;
	added = sqlite3_changes(sp->db);
	if ((rc = exec(sp, "UPDATE commands SET cmd = 'port_off' WHERE cmd IS NULL")))
		goto fail;
	if ((rc = exec(sp, "COMMIT")))
		goto fail;
	if (added > 0)
		SP_INFO("spool", "%s: %d ports turned off by the commands it remembers are now kept "
				 "off until a port_on (table ports_off: a spool of an older agent)",
			sp->path, added);
	sp->have_ports_off = true;
	return 0;
fail:
	if (!sqlite3_get_autocommit(sp->db))
		(void)exec(sp, "ROLLBACK");
	return rc;
}

/* Reads the counters from the file: a scan of every message, so only at open and after a failure. */
static int recount(struct spool *sp)
{
	int rc = sqlite3_step(sp->count_all);
	if (rc == SQLITE_ROW) {
		sp->messages = sqlite3_column_int64(sp->count_all, 0);
		sp->bytes = sqlite3_column_int64(sp->count_all, 1);
		sp->first_seq = sqlite3_column_int64(sp->count_all, 2);
		sp->last_seq = sqlite3_column_int64(sp->count_all, 3);
		sp->stale = false;
	}
	sqlite3_reset(sp->count_all);
	return rc == SQLITE_ROW ? 0 : db_fail(sp, "count");
}

/* The counters, made right first if a failed query may have left them off. */
static int refresh(struct spool *sp)
{
	return sp->stale ? recount(sp) : 0;
}

/*
 * Called once the statements are prepared. A failed read fails the open:
 * a spool taken for empty or new would number messages from a seq it used.
 */
static int load_state(struct spool *sp)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = prepare(sp, &st, "SELECT value FROM meta WHERE key = 'next_seq'")))
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		sp->next_seq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(sp, "read next seq");
	if ((rc = recount(sp)))
		return rc;
	/* a seq is never reused, even if meta was lost but messages survived */
	if (sp->last_seq >= sp->next_seq && sp->last_seq > 0)
		sp->next_seq = sp->last_seq + 1;
	return 0;
}

struct spool *spool_open(const char *path, int64_t max_bytes, bool sync_full)
{
	struct spool *sp = calloc(1, sizeof(*sp));
	if (sp == NULL)
		return NULL;
	sp->lock_fd = -1;
	sp->max_bytes = max_bytes;
	sp->path = strdup(path);
	if (sp->path == NULL)
		goto fail;
	if (sqlite3_open_v2(path, &sp->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
						   SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		SP_ERROR("spool", "%s: cannot open: %s", path,
			 sp->db ? sqlite3_errmsg(sp->db) : "out of memory");
		goto fail;
	}
	/* the file exists now (SQLite creates it at open) */
	sp->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (sp->lock_fd < 0 || flock(sp->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK)
			SP_ERROR("spool", "%s: in use by another process (two agents with one "
					  "spool_path?): not opened",
				 path);
		else
			SP_ERROR("spool", "%s: cannot lock: %s", path, strerror(errno));
		goto fail;
	}
	sqlite3_busy_timeout(sp->db, 5000);
	if (exec(sp, "PRAGMA journal_mode=WAL") ||
	    exec(sp, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") ||
	    migrate(sp))
		goto fail;
	/*
	 * Not a reason to refuse the spool: on a full disk an older agent's spool
	 * cannot take the tables, and the agent must run all the same (the
	 * commands are then applied, not remembered: spool_cmd_add fails; and
	 * records are not kept at a stop: spool_pending_save fails).
	 */
	/*
	 * ports_off may well be there when add_tables failed (a spool of an
	 * earlier run, and the column cmd not added on a full disk): then it
	 * is read, not the 64 ids of commands, which would put in service
	 * every port turned off by an older command.
	 */
	if (add_tables(sp) != 0)
		sp->have_ports_off = has_table(sp, "ports_off") == 1;
	if (prepare(sp, &sp->insert, "INSERT INTO messages(seq, ts, payload) VALUES (?, ?, ?)") ||
	    prepare(sp, &sp->set_next,
		    "INSERT INTO meta(key, value) VALUES ('next_seq', ?) "
		    "ON CONFLICT(key) DO UPDATE SET value = excluded.value") ||
	    prepare(sp, &sp->delete_upto, "DELETE FROM messages WHERE seq <= ?") ||
	    prepare(sp, &sp->select_after,
		    "SELECT seq, payload FROM messages WHERE seq > ? ORDER BY seq LIMIT ?") ||
	    prepare(sp, &sp->select_oldest,
		    "SELECT seq, length(payload) FROM messages ORDER BY seq LIMIT 1") ||
	    prepare(sp, &sp->delete_one, "DELETE FROM messages WHERE seq = ?") ||
	    prepare(sp, &sp->count_upto, "SELECT count(*), coalesce(sum(length(payload)),0) "
					 "FROM messages WHERE seq <= ?") ||
	    prepare(sp, &sp->count_all, "SELECT count(*), coalesce(sum(length(payload)),0), "
					"coalesce(min(seq),0), coalesce(max(seq),0) FROM messages") ||
	    prepare(sp, &sp->begin, "BEGIN IMMEDIATE") || prepare(sp, &sp->commit, "COMMIT") ||
	    prepare(sp, &sp->rollback, "ROLLBACK") || load_state(sp))
		goto fail;
	/* a spool left full by the previous run is still in its overflow episode */
	sp->overflowing = sp->bytes >= sp->max_bytes * 9 / 10;
	SP_INFO("spool", "%s: %lld unacked messages (%lld bytes), next seq %lld", path,
		(long long)sp->messages, (long long)sp->bytes, (long long)sp->next_seq);
	return sp;
fail:
	spool_close(sp);
	return NULL;
}

void spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	sqlite3_stmt *all[] = {sp->insert,     sp->set_next,   sp->delete_upto,
			       sp->select_after, sp->select_oldest, sp->delete_one, sp->count_upto,
			       sp->count_all,  sp->begin,      sp->commit,     sp->rollback};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		sqlite3_finalize(all[i]);
	if (sp->db)
		sqlite3_close(sp->db);
	if (sp->lock_fd >= 0)
		close(sp->lock_fd); /* after the database: see the top */
	free(sp->dropped_seqs);
	free(sp->path);
	free(sp);
}

int64_t spool_next_seq(const struct spool *sp)
{
	return sp->next_seq;
}

int spool_set_next_seq(struct spool *sp, int64_t next)
{
	sqlite3_bind_int64(sp->set_next, 1, next);
	int rc = step_done(sp, sp->set_next, "set next seq");
	if (rc == 0)
		sp->next_seq = next;
	return rc;
}

/*
 * Drops the oldest message (inside the caller's transaction) and notes its
 * seq, which the caller reports once the transaction has committed.
 */
static int drop_oldest(struct spool *sp)
{
	int64_t seq, len;
	int64_t *seqs = sp_grow(sp->dropped_seqs, &sp->dropped_cap, sp->ndropped_seqs + 1,
				sizeof(*seqs), 16);
	if (seqs == NULL)
		return SP_ENOMEM;
	sp->dropped_seqs = seqs;
	if (sqlite3_step(sp->select_oldest) != SQLITE_ROW) {
		sqlite3_reset(sp->select_oldest);
		return SP_ENOTFOUND;
	}
	seq = sqlite3_column_int64(sp->select_oldest, 0);
	len = sqlite3_column_int64(sp->select_oldest, 1);
	sqlite3_reset(sp->select_oldest);
	sqlite3_bind_int64(sp->delete_one, 1, seq);
	int rc = step_done(sp, sp->delete_one, "drop oldest");
	if (rc)
		return rc;
	sp->messages--;
	sp->bytes -= len;
	sp->dropped_total++;
	sp->dropped_episode++;
	sp->dropped_seqs[sp->ndropped_seqs++] = seq;
	return 0;
}

/*
 * Deletes the pending records with id <= upto (inside the caller's
 * transaction). Prepared here, not at open: a spool without the table
 * (add_tables failed) must still open, and this runs once or twice a life.
 */
static int delete_pending_upto(struct spool *sp, int64_t upto)
{
	sqlite3_stmt *st = NULL;
	int rc;
	if ((rc = prepare(sp, &st, "DELETE FROM pending WHERE id <= ?")))
		return rc;
	sqlite3_bind_int64(st, 1, upto);
	rc = step_done(sp, st, "delete pending records");
	sqlite3_finalize(st);
	return rc;
}

int spool_append(struct spool *sp, int64_t ts, const char *payload, size_t len,
		 spool_drop_fn on_drop, void *ctx)
{
	return spool_append_pending(sp, ts, payload, len, 0, on_drop, ctx);
}

int spool_append_pending(struct spool *sp, int64_t ts, const char *payload, size_t len,
			 int64_t pending_upto, spool_drop_fn on_drop, void *ctx)
{
	int64_t seq = sp->next_seq;
	int rc;

	if ((int64_t)len > sp->max_bytes)
		return SP_ETOOBIG;
	if (seq <= 0)
		return SP_EINVAL; /* the caller must learn the seq first */
	if ((rc = refresh(sp)))
		return rc;
	int64_t bytes = sp->bytes, messages = sp->messages, first = sp->first_seq;
	int64_t dropped = sp->dropped_total, episode = sp->dropped_episode;
	bool overflowing = sp->overflowing;
	if ((rc = step_done(sp, sp->begin, "begin")))
		return rc;
	sp->ndropped_seqs = 0;
	while (sp->bytes + (int64_t)len > sp->max_bytes) {
		sp->overflowing = true;
		if ((rc = drop_oldest(sp)))
			goto fail;
	}
	sqlite3_bind_int64(sp->insert, 1, seq);
	sqlite3_bind_int64(sp->insert, 2, ts);
	sqlite3_bind_blob(sp->insert, 3, payload, (int)len, SQLITE_STATIC);
	rc = step_done(sp, sp->insert, "append");
	sqlite3_clear_bindings(sp->insert);
	if (rc)
		goto fail;
	sqlite3_bind_int64(sp->set_next, 1, seq + 1);
	if ((rc = step_done(sp, sp->set_next, "advance seq")))
		goto fail;
	if (pending_upto > 0 && (rc = delete_pending_upto(sp, pending_upto)))
		goto fail;
	if ((rc = step_done(sp, sp->commit, "commit")))
		goto fail;
	/* only now: an append that fails (a full disk) is tried again, and drops nothing */
	if (sp->overflowing && !overflowing)
		SP_WARN("spool", "%s: full (%lld bytes held, limit %lld): dropping oldest "
				 "messages until the collector catches up",
			sp->path, (long long)bytes, (long long)sp->max_bytes);
	for (size_t i = 0; on_drop && i < sp->ndropped_seqs; i++)
		on_drop(ctx, sp->dropped_seqs[i]);
	sp->next_seq = seq + 1;
	sp->messages++;
	sp->bytes += (int64_t)len;
	sp->last_seq = seq;
	if (sp->messages == 1 || sp->first_seq == 0)
		sp->first_seq = seq;
	if (sp->dropped_total > dropped) {
		/* the oldest held is now whatever survived the drops */
		if (sqlite3_step(sp->select_oldest) == SQLITE_ROW)
			sp->first_seq = sqlite3_column_int64(sp->select_oldest, 0);
		else
			sp->stale = true; /* committed: the next call reads it again */
		sqlite3_reset(sp->select_oldest);
	}
	return 0;
fail:
	/* SQLite rolls back by itself after some errors (SQLITE_FULL at COMMIT among them) */
	if (!sqlite3_get_autocommit(sp->db))
		step_done(sp, sp->rollback, "rollback");
	sp->bytes = bytes;
	sp->messages = messages;
	sp->first_seq = first;
	sp->dropped_total = dropped;
	sp->dropped_episode = episode;
	sp->overflowing = overflowing;
	/* full by the counters, yet nothing to drop: they are off, whatever made them so */
	if (rc == SP_ENOTFOUND)
		sp->stale = true;
	return rc;
}

int spool_ack(struct spool *sp, int64_t acked_seq)
{
	int64_t n = 0, bytes = 0;
	int rc;

	if ((rc = refresh(sp)))
		return rc;
	if (sp->messages == 0 || acked_seq < sp->first_seq)
		return 0;
	/*
	 * Count what leaves (a range scan over exactly those rows), then delete
	 * it. A failed count deletes nothing: the counters would not know what
	 * left (the caller tries the ack again).
	 */
	sqlite3_bind_int64(sp->count_upto, 1, acked_seq);
	rc = sqlite3_step(sp->count_upto);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_int64(sp->count_upto, 0);
		bytes = sqlite3_column_int64(sp->count_upto, 1);
	}
	sqlite3_reset(sp->count_upto);
	if (rc != SQLITE_ROW)
		return db_fail(sp, "count acked");
	sqlite3_bind_int64(sp->delete_upto, 1, acked_seq);
	if ((rc = step_done(sp, sp->delete_upto, "ack")))
		return rc;
	sp->messages -= n;
	sp->bytes -= bytes;
	if (sp->messages < 0 || sp->bytes < 0)
		sp->stale = true; /* more left than the counters held: they were off */
	if (sp->messages <= 0) {
		sp->messages = 0;
		sp->bytes = 0;
		sp->first_seq = 0;
		sp->last_seq = 0;
	} else {
		if (sqlite3_step(sp->select_oldest) == SQLITE_ROW)
			sp->first_seq = sqlite3_column_int64(sp->select_oldest, 0);
		else
			sp->stale = true; /* deleted: the next call reads the oldest again */
		sqlite3_reset(sp->select_oldest);
	}
	if (sp->overflowing && sp->bytes < sp->max_bytes * 9 / 10) {
		sp->overflowing = false;
		SP_INFO("spool", "%s: below its limit again; %lld messages were dropped in this "
				 "overflow",
			sp->path, (long long)sp->dropped_episode);
		sp->dropped_episode = 0;
	}
	return 0;
}

int spool_each_after(struct spool *sp, int64_t after_seq, size_t max, spool_each_fn fn,
		     void *ctx)
{
	int n = 0, rc;
	sqlite3_bind_int64(sp->select_after, 1, after_seq);
	sqlite3_bind_int64(sp->select_after, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(sp->select_after)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(sp->select_after, 0);
		const char *p = sqlite3_column_blob(sp->select_after, 1);
		size_t len = (size_t)sqlite3_column_bytes(sp->select_after, 1);
		n++;
		if (fn(ctx, seq, p ? p : "", len))
			break;
	}
	sqlite3_reset(sp->select_after);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(sp, "read");
	return n;
}

void spool_get_stats(const struct spool *sp, struct spool_stats *out)
{
	out->messages = sp->messages;
	out->bytes = sp->bytes;
	out->first_seq = sp->first_seq;
	out->last_seq = sp->last_seq;
	out->dropped_total = sp->dropped_total;
}

int spool_cmd_add(struct spool *sp, const char *id, enum sp_cmd_kind cmd, const char *dev,
		  int port, int64_t at_ms, int keep)
{
	sqlite3_stmt *st = NULL;
	int rc, changed;

	/*
	 * One transaction: the id and its port are remembered together (a port
	 * remembered without its id would be turned off, or on, again by the
	 * same id; an id without its port would leave the port in service, or
	 * off, after a restart).
	 */
	if ((rc = step_done(sp, sp->begin, "begin")))
		return rc;
	if ((rc = prepare(sp, &st, "INSERT OR IGNORE INTO commands(id, dev, port, at, cmd) "
				   "VALUES (?, ?, ?, ?, ?)")))
		goto fail;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, dev, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, port);
	sqlite3_bind_int64(st, 4, at_ms);
	sqlite3_bind_text(st, 5, sp_cmd_name(cmd), -1, SQLITE_STATIC);
	rc = step_done(sp, st, "remember a command");
	sqlite3_finalize(st);
	if (rc)
		goto fail;
	changed = sqlite3_changes(sp->db);
	/* an id already there was applied (to its own port): this one is not */
	if (changed > 0) {
		if ((rc = prepare(sp, &st, cmd == SP_CMD_PORT_ON
						   ? "DELETE FROM ports_off WHERE dev = ? AND port = ?"
						   : "INSERT OR IGNORE INTO ports_off(dev, port) "
						     "VALUES (?, ?)")))
			goto fail;
		sqlite3_bind_text(st, 1, dev, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, port);
		rc = step_done(sp, st, cmd == SP_CMD_PORT_ON ? "remember a port on"
							     : "remember a port off");
		sqlite3_finalize(st);
		if (rc)
			goto fail;
	}
	/*
	 * The newest `keep` ids stay, newest by rowid (the order of arrival: only
	 * the oldest rows are ever deleted), not by `at`: after the wall clock was
	 * set back a new command's `at` is older than the rest, and it would go
	 * at once. Their ports stay in ports_off: a port stays off until a
	 * port_on, however many commands came since.
	 */
	if ((rc = prepare(sp, &st, "DELETE FROM commands WHERE rowid NOT IN (SELECT rowid FROM "
				   "commands ORDER BY rowid DESC LIMIT ?)")))
		goto fail;
	sqlite3_bind_int(st, 1, keep);
	rc = step_done(sp, st, "forget old commands");
	sqlite3_finalize(st);
	if (rc || (rc = step_done(sp, sp->commit, "commit")))
		goto fail;
	return changed > 0 ? 1 : 0;
fail:
	if (!sqlite3_get_autocommit(sp->db))
		step_done(sp, sp->rollback, "rollback");
	return rc;
}

int spool_cmd_each(struct spool *sp, spool_cmd_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rc, n = 0;

	if ((rc = prepare(sp, &st, "SELECT id, dev, port FROM commands ORDER BY rowid")))
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *dev = (const char *)sqlite3_column_text(st, 1);
		if (id == NULL || dev == NULL)
			continue;
		fn(ctx, id, dev, sqlite3_column_int(st, 2));
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(sp, "read the commands");
	return n;
}

int spool_port_off_each(struct spool *sp, spool_port_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rc, n = 0;

	/*
	 * Without ports_off (not created: a full disk at open) the commands still
	 * say some: the ports of port_off ids (or an older agent's rows) without
	 * a later port_on. A spool whose commands has no cmd column yet has no
	 * port_on either.
	 */
	if (sp->have_ports_off)
		rc = prepare(sp, &st, "SELECT dev, port FROM ports_off ORDER BY dev, port");
	else if ((rc = has_cmd_column(sp)) >= 0)
		rc = prepare(sp, &st, rc ? "SELECT dev, port FROM commands c WHERE "
					   "coalesce(cmd, 'port_off') = 'port_off' AND NOT EXISTS ("
					   "SELECT 1 FROM commands n WHERE n.dev = c.dev AND "
					   "n.port = c.port AND n.rowid > c.rowid AND "
					   "n.cmd = 'port_on') GROUP BY dev, port ORDER BY dev, port"
					 : "SELECT DISTINCT dev, port FROM commands ORDER BY dev, port");
	if (rc)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *dev = (const char *)sqlite3_column_text(st, 0);
		if (dev == NULL)
			continue;
		fn(ctx, dev, sqlite3_column_int(st, 1));
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(sp, "read the ports off");
	return n;
}

int spool_pending_save(struct spool *sp, const struct sp_record *recs, size_t n,
		       int64_t keep_from)
{
	struct sp_buf b = SP_BUF_INIT(SP_PAYLOAD_MAX);
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = step_done(sp, sp->begin, "begin")))
		return rc;
	/* rows below keep_from were dropped from memory since they were loaded */
	if ((rc = delete_pending_upto(sp, keep_from - 1)) ||
	    (rc = prepare(sp, &st, "INSERT INTO pending(rec) VALUES (?)")))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		sp_buf_reset(&b);
		if ((rc = sp_encode_record(&b, &recs[i])))
			goto fail;
		sqlite3_bind_text(st, 1, b.data, (int)b.len, SQLITE_STATIC);
		if ((rc = step_done(sp, st, "keep a pending record")))
			goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = step_done(sp, sp->commit, "commit")))
		goto fail;
	sp_buf_free(&b);
	return 0;
fail:
	sqlite3_finalize(st);
	if (!sqlite3_get_autocommit(sp->db))
		step_done(sp, sp->rollback, "rollback");
	sp_buf_free(&b);
	return rc;
}

/*
 * The time the kept records are decoded against: any time of theirs is
 * taken (the check is for the collector's input). They were this agent's
 * valid records when kept; a gateway clock set back more than a day since
 * must not refuse them.
 */
#define PENDING_NOW_MS (SP_SEQ_MAX / 2)

int spool_pending_each(struct spool *sp, size_t max, spool_pending_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL, *del = NULL;
	struct sp_decoder *d = NULL;
	struct sp_record rec;
	struct sp_reject_info why = {.reason = SP_REJ_NONE};
	int rc, n = 0, bad = 0;

	if ((rc = prepare(sp, &st, "SELECT id, rec FROM (SELECT id, rec FROM pending ORDER BY id "
				   "DESC LIMIT ?) ORDER BY id")) ||
	    (rc = prepare(sp, &del, "DELETE FROM pending WHERE id = ?")))
		goto out;
	if ((d = sp_decoder_create()) == NULL) {
		rc = SP_ENOMEM;
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const char *json = (const char *)sqlite3_column_text(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		if (json != NULL && sp_decode_record(d, json, len, PENDING_NOW_MS, &rec, &why) == 0) {
			fn(ctx, id, &rec);
			n++;
			continue;
		}
		/* cannot get better: gone, so that it is not read at every start */
		if (bad++ == 0)
			SP_WARN("spool", "%s: a kept record does not decode (%s): deleted", sp->path,
				sp_reject_name(why.reason));
		sqlite3_bind_int64(del, 1, id);
		(void)step_done(sp, del, "delete a bad pending record");
	}
	rc = rc == SQLITE_DONE ? n : db_fail(sp, "read the pending records");
	if (bad > 1)
		SP_WARN("spool", "%s: %d kept records did not decode: deleted", sp->path, bad);
out:
	sp_decoder_destroy(d);
	sqlite3_finalize(st);
	sqlite3_finalize(del);
	return rc;
}
