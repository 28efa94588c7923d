/*
 * store_sqlite.c - the SQLite storage backend (see store.h).
 *
 * The collector's only SQLite user. One write connection, owned by the
 * writer thread; a pool of read-only connections for the API threads
 * (WAL lets them read while the writer writes; their queries are in
 * store_sqlite_read.c, compaction in store_sqlite_compact.c, alerts and
 * outboxes in store_sqlite_alerts.c and store_sqlite_outbox.c). Every
 * statement is prepared once per connection and finalized at close.
 *
 * Durability: WAL with synchronous=FULL by default, so a committed batch
 * (and therefore everything the collector acks) survives a power loss;
 * synchronous=NORMAL survives a crash of the collector but may lose the
 * last commits on power loss (documented in docs/architecture.md).
 *
 * Schema: store_sqlite_schema.c (the migrations); `schema_version` records
 * what is applied.
 */
#include "store_sqlite_int.h"

#include "chunk.h"
#include "store_sqlite_walbuf.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---------------------------------------------------------------- connections */


static const char *const WSQL[W_COUNT] = {
	[W_BEGIN] = "BEGIN IMMEDIATE",
	[W_COMMIT] = "COMMIT",
	[W_ROLLBACK] = "ROLLBACK",
	[W_AGENT_GET] = "SELECT id FROM agents WHERE site = ?1 AND agent = ?2",
	[W_AGENT_INS] = "INSERT INTO agents(site, agent) VALUES (?1, ?2)",
	[W_BIRTH] = "UPDATE agents SET birth_ts = ?2, fw = ?3, birth_at = ?4 WHERE id = ?1",
	/*
	 * (SET expressions read the row as it was: up_since sees the old online)
	 * Only a change records one: a retained state delivered again (a
	 * restart, a re-ask) says what the row says and fakes no drop or return.
	 * dropped_seen: the newest data the agent delivered before this drop
	 * (offline.c, the devices' grace): the row's last_seen, which may lag
	 * the last arrival by a liveness flush (too early errs towards the
	 * grace, never towards a false alert). min(): after a clock set back
	 * the row may hold stamps of the clock that ran ahead until the batch
	 * moves them (store_w_clock_set_back).
	 */
	[W_STATE] = "UPDATE agents SET up_since = CASE WHEN ?2 AND NOT online THEN ?3 ELSE up_since END,"
		    " dropped_seen = CASE WHEN NOT ?2 AND online THEN min(last_seen, ?3)"
		    " ELSE dropped_seen END,"
		    " online = ?2, state_at = ?3 WHERE id = ?1",
	/*
	 * data received after the agent's last state message proves it is alive;
	 * data received before it (e.g. in the same batch as its goodbye) does not.
	 * Up again after being offline, or after silence longer than ?3
	 * (agent_down_ms): up_since restarts. A silence is a drop too, which
	 * began at its last data (dropped_seen); after a state offline,
	 * W_STATE set that already.
	 */
	[W_SEEN] = "UPDATE agents SET up_since = CASE WHEN ?2 > state_at AND (NOT online OR"
		   " (last_seen > 0 AND last_seen < ?2 - ?3)) THEN ?2 ELSE up_since END,"
		   " dropped_seen = CASE WHEN ?2 > state_at AND online AND last_seen > 0"
		   " AND last_seen < ?2 - ?3 THEN last_seen ELSE dropped_seen END,"
		   " last_seen = max(last_seen, ?2),"
		   " online = CASE WHEN ?2 > state_at THEN 1 ELSE online END WHERE id = ?1",
	/*
	 * from devices_lookup alone (schema 11), named because the planner
	 * prefers the unique index, which leads to the wide row
	 */
	[W_DEV_GET] = "SELECT d.id, d.agent_id, d.kind, d.ports, d.floor_min, d.floor_max, d.rating,"
		      " s.last_seen, s.heard FROM devices d INDEXED BY devices_lookup"
		      " JOIN device_seen s ON s.id = d.id"
		      " WHERE d.site = ?1 AND d.dev = ?2",
	[W_DEV_INS] = "INSERT INTO devices(site, dev, kind, agent_id, ports, floor_min, floor_max, "
		      "meta, rating) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	/* every device has its row in device_seen from the start (schema 10) */
	[W_DEV_SEEN_INS] = "INSERT INTO device_seen(id, last_seen) VALUES (?1, 0)",
	/* a record's kind for a device of unknown kind only: never over a birth's */
	[W_DEV_KIND] = "UPDATE devices SET kind = ?3 WHERE site = ?1 AND dev = ?2 AND kind = 0",
	[W_DEV_UPD] = "UPDATE devices SET kind = ?3, agent_id = ?4, ports = ?5, floor_min = ?6, "
		      "floor_max = ?7, meta = coalesce(?8, meta), rating = ?9 "
		      "WHERE site = ?1 AND dev = ?2",
	/*
	 * ?8: NULL for a new id, or the id compaction gives a merged chunk; ?9
	 * the meta's format; ?10 the kinds of its readings (chunk_kind_bit)
	 */
	[W_CHUNK_INS] = "INSERT INTO reading_chunks(device_id, ts_min, ts_max, n, at, meta, body, "
			"id, fmt, kinds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[W_DEV_SEEN] = "UPDATE device_seen SET last_seen = max(last_seen, ?2),"
		       " heard = max(heard, ?3) WHERE id = ?1 AND (last_seen < ?2 OR heard < ?3)",
	[W_DEV_COUNT] = "SELECT count(*) FROM devices",
	[W_HEARTBEAT] = "INSERT INTO heartbeat(id, at) VALUES (1, ?1) "
			"ON CONFLICT(id) DO UPDATE SET at = excluded.at",
	/* store_w_clock_set_back: our stamps later than now (?1) move back ?2 */
	[W_BACK_DEVICES] = "UPDATE device_seen SET heard = heard - ?2 WHERE heard > ?1",
	[W_BACK_AGENTS] = "UPDATE agents SET"
			  " last_seen = CASE WHEN last_seen > ?1 THEN last_seen - ?2 ELSE last_seen END,"
			  " up_since = CASE WHEN up_since > ?1 THEN up_since - ?2 ELSE up_since END,"
			  " state_at = CASE WHEN state_at > ?1 THEN state_at - ?2 ELSE state_at END,"
			  " dropped_seen = CASE WHEN dropped_seen > ?1 THEN dropped_seen - ?2"
			  " ELSE dropped_seen END"
			  " WHERE last_seen > ?1 OR up_since > ?1 OR state_at > ?1 OR dropped_seen > ?1",
	/* store_w_newest_stamp: once at start, a pass over both tables */
	[W_NEWEST_STAMP] = "SELECT max(coalesce((SELECT max(heard) FROM device_seen), 0),"
			   " coalesce((SELECT max(max(last_seen, up_since, state_at)) FROM agents), 0))",
	[W_COMPACT_UPTO] = "SELECT upto FROM compaction WHERE id = 1",
	[W_COMPACT_SCAN] = "SELECT id, device_id, ts_max, at FROM reading_chunks WHERE id > ?1 "
			   "ORDER BY id LIMIT ?2",
	/*
	 * A device's chunks of one span (its ts_max places a chunk) after id ?5,
	 * in storage order; the bodies of full ones (n >= ?4) are not read.
	 */
	[W_COMPACT_GROUP] = "SELECT at, n, id, CASE WHEN n < ?4 THEN meta END, "
			    "CASE WHEN n < ?4 THEN body END, fmt FROM reading_chunks "
			    "WHERE device_id = ?1 AND ts_max BETWEEN ?2 AND ?3 AND id > ?5 ORDER BY id",
	[W_CHUNK_DEL] = "DELETE FROM reading_chunks WHERE id = ?1",
	[W_COMPACT_SET] = "UPDATE compaction SET upto = ?1 WHERE id = 1",
	/*
	 * The first id for a transaction's new chunks: above every chunk in the
	 * table (so storage order is write order) and above every id compaction
	 * has looked at (so it looks at them), even where the newest chunks were
	 * merged away. Asked inside the transaction, so it is right whoever wrote
	 * before.
	 */
	[W_CHUNK_NEXT_ID] = "SELECT max(coalesce((SELECT max(id) FROM reading_chunks), 0), "
			    "coalesce((SELECT upto FROM compaction WHERE id = 1), 0)) + 1",
	/* compaction's backlog (store_sqlite_compact.c): look-ups by id alone */
	[W_COMPACT_NEXT] = "SELECT id, at FROM reading_chunks WHERE id >= ?1 ORDER BY id LIMIT 1",
	[W_COMPACT_MAX] = "SELECT coalesce(max(id), 0) FROM reading_chunks",
};



/*
 * Reports a SQLite failure with the library's text. Rate-limited: a full
 * disk fails every batch until space returns: one line a minute tells the
 * operator; the writer says when the episode starts (WARN) and ends (INFO).
 */
int sqs_db_error(struct sqlite_store *s, sqlite3 *db, const char *what)
{
	uint64_t suppressed;
	int code = sqlite3_extended_errcode(db);
	bool full = (code & 0xff) == SQLITE_FULL;

	pthread_mutex_lock(&s->log_lock);
	bool log = sp_ratelimit_allow(&s->error_log, sp_mono_ms(), 1, 60000, &suppressed);
	pthread_mutex_unlock(&s->log_lock);
	if (log)
		SP_ERROR("store", "%s: %s: %s%s%s", s->path, what, full ? "disk full: " : "",
			 sqlite3_errmsg(db), suppressed ? " (earlier errors suppressed)" : "");
	return full ? SP_ENOSPC : SP_EIO;
}

int sqs_exec(sqlite3 *db, const char *path, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		SP_ERROR("store", "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return (sqlite3_extended_errcode(db) & 0xff) == SQLITE_FULL ? SP_ENOSPC : SP_EIO;
	}
	return 0;
}

/*
 * WAL or nothing: readers then never hold up the writer's commits, and a
 * commit at synchronous=NORMAL survives a crash of ours. SQLite answers
 * the pragma with the mode it is in and stays in its rollback journal
 * where WAL cannot work (no shared memory, e.g. some network file systems),
 * where readers would block commits and NORMAL could corrupt the file on
 * a power loss.
 */
static int enter_wal(struct sqlite_store *s)
{
	sqlite3_stmt *st = NULL;
	int rc = SP_EIO;
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqs_db_error(s, s->db, "PRAGMA journal_mode = WAL");
		goto done;
	}
	const char *mode = (const char *)sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		SP_ERROR("store", "%s: SQLite cannot use write-ahead logging here (journal mode %s); "
			 "put the database on a local file system", s->path, mode ? mode : "unknown");
		goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(st);
	return rc;
}

/* ---------------------------------------------------------------- chunks */

/* a chunk's hour is over this long after it was written, save for late readings */
#define COMPACT_AFTER_MS (CHUNK_SPAN_MS + 5 * 60 * 1000LL)
#define AGENT_DOWN_MS (180 * 1000LL) /* [store] device_offline_s's default */

struct chunk_sink {
	struct sqlite_store *s;
	sqlite3 *db;
	sqlite3_stmt *ins;   /* W_CHUNK_INS's SQL (or, FIXED only, the same without fmt, kinds) */
	int64_t at;
	const int64_t *ids;  /* ids for the chunks in order (compaction), or NULL: new ids */
	size_t nids, used;
	int64_t next_id;     /* without ids: the next new chunk's (W_CHUNK_NEXT_ID) */
};

static int insert_chunk(void *ctx, const struct chunk_out *c)
{
	struct chunk_sink *k = ctx;
	sqlite3_stmt *st = k->ins;
	sqlite3_bind_int64(st, 1, c->device_id);
	sqlite3_bind_int64(st, 2, c->ts_min);
	sqlite3_bind_int64(st, 3, c->ts_max);
	sqlite3_bind_int64(st, 4, (int64_t)c->n);
	sqlite3_bind_int64(st, 5, k->at);
	sqlite3_bind_blob(st, 6, c->meta ? c->meta : "", (int)c->meta_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, c->body ? c->body : "", (int)c->body_len, SQLITE_STATIC);
	/* every parameter is bound on every call: no clearing between them */
	if (k->ids && k->used < k->nids)
		sqlite3_bind_int64(st, 8, k->ids[k->used++]);
	else if (k->ids == NULL && k->next_id > 0)
		sqlite3_bind_int64(st, 8, k->next_id++);
	else /* SQLite's max + 1: the 2 -> 3 migration's empty table (or, not reached, a packing
	      * that needs more chunks than it took) */
		sqlite3_bind_null(st, 8);
	/* the 2 -> 3 migration's statement, FIXED only, has no ?9 and ?10 (kinds stays NULL) */
	if (c->fmt != CHUNK_FMT_FIXED) {
		sqlite3_bind_int(st, 9, c->fmt);
		sqlite3_bind_int64(st, 10, c->kinds);
	}
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : sqs_db_error(k->s, k->db, "write readings");
}

/* Writes a batch's readings as chunks of format fmt (with these ids, if any) and empties it. */
int sqs_write_chunks(struct sqlite_store *s, struct chunk_batch *b, sqlite3_stmt *ins, int fmt,
		     int64_t at, const int64_t *ids, size_t nids)
{
	struct chunk_sink sink = {s, s->db, ins, at, ids, nids, 0, 0};
	int rc = 0;
	/* (the migrations run before the statements are prepared) */
	if (ids == NULL && chunk_batch_count(b) > 0 && s->w[W_CHUNK_NEXT_ID] != NULL) {
		sqlite3_stmt *st = s->w[W_CHUNK_NEXT_ID];
		if (sqlite3_step(st) == SQLITE_ROW)
			sink.next_id = sqlite3_column_int64(st, 0);
		else
			rc = sqs_db_error(s, s->db, "number new readings chunks");
		sqlite3_reset(st);
	}
	if (rc == 0)
		rc = chunk_batch_emit(b, fmt, insert_chunk, &sink);
	chunk_batch_reset(b);
	if (rc == SP_ENOMEM)
		SP_ERROR("store", "%s: out of memory writing readings", s->path);
	return rc;
}

/*
 * The chunk whose id, meta, body and fmt are columns id_col .. id_col + 3 of
 * the statement's current row, checked whole (chunk_check) and ready to walk.
 * False if it is damaged, logged with `fate` (what becomes of it).
 */
bool sqs_row_chunk(struct sqlite_store *s, sqlite3_stmt *st, int id_col, const char *fate,
		   struct chunk_iter *it)
{
	const void *meta = sqlite3_column_blob(st, id_col + 1);
	size_t meta_len = (size_t)sqlite3_column_bytes(st, id_col + 1);
	const char *body = (const char *)sqlite3_column_text(st, id_col + 2);
	size_t body_len = (size_t)sqlite3_column_bytes(st, id_col + 2);
	int fmt = sqlite3_column_int(st, id_col + 3);
	if (chunk_check(fmt, meta, meta_len, body, body_len))
		return chunk_iter_init(it, fmt, meta, meta_len, body, body_len) == 0;
	/*
	 * A damaged chunk stays (nothing here repairs it), so every read that
	 * passes over it finds it again: a device's newest one at every poll
	 * of the dashboard's device list. A few lines a minute say so.
	 */
	uint64_t suppressed;
	pthread_mutex_lock(&s->log_lock);
	bool log = sp_ratelimit_allow(&s->damaged_log, sp_mono_ms(), 5, 60000, &suppressed);
	pthread_mutex_unlock(&s->log_lock);
	if (log)
		SP_ERROR("store", "%s: damaged readings chunk %lld (%s)%s", s->path,
			 (long long)sqlite3_column_int64(st, id_col), fate,
			 suppressed ? " (more such lines were suppressed)" : "");
	return false;
}

/*
 * SQLite's busy handler: the delays of its own busy timeout (1 ms growing to
 * 100 ms, their sum bounded by the connection's timeout), cut short at the
 * store's waits_end_mono. Without that end a stop found the database locked
 * by another process (a backup, an operator's sqlite3 shell) waiting out
 * 5 s per attempt, the drain's and the last words' one after another: 17 s
 * instead of CONTRACT §7's 5.
 */
static int busy_wait(void *arg, int count)
{
	static const int delays[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
	const int n = (int)(sizeof(delays) / sizeof(delays[0]));
	const struct sqs_busy *b = arg;
	int64_t waited = 0;
	for (int i = 0; i < count && i < n; i++)
		waited += delays[i];
	if (count > n)
		waited += (int64_t)(count - n) * delays[n - 1];
	int64_t delay = count < n ? delays[count] : delays[n - 1];
	if (waited >= b->timeout_ms)
		return 0;
	if (waited + delay > b->timeout_ms)
		delay = b->timeout_ms - waited;
	int64_t end = atomic_load(&b->s->waits_end_mono);
	if (end > 0) {
		int64_t left = end - sp_mono_ms();
		if (left <= 0)
			return 0;
		if (delay > left)
			delay = left;
	}
	sp_sleep_ms(delay);
	return 1;
}

void sqs_busy_init(struct sqlite_store *s, sqlite3 *db, struct sqs_busy *b, int timeout_ms)
{
	b->s = s;
	b->timeout_ms = timeout_ms;
	sqlite3_busy_handler(db, busy_wait, b);
}

static void sq_stop_waits(void *impl, int64_t end_mono)
{
	struct sqlite_store *s = impl;
	atomic_store(&s->waits_end_mono, end_mono > 0 ? end_mono : 1);
}

static int open_reader(struct sqlite_store *s, struct reader *r)
{
	if (sqlite3_open_v2(s->path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		return sqs_db_error(s, r->db, "open read connection");
	sqs_busy_init(s, r->db, &s->busy_reader, 2000);
	/*
	 * 1 MB instead of SQLite's 2 MB: a read touches few pages (the chunk
	 * index's interior pages and its rows), and the device gauges' scan of
	 * `devices` would otherwise fill each reader's cache at 100,000 devices
	 * (docs/performance.md item 24).
	 */
	if (sqs_exec(r->db, s->path, "PRAGMA cache_size = -1024"))
		return SP_EIO;
	int rc = sqr_prepare_reader(s, r);
	if (rc == 0)
		rc = sqa_prepare_reader(s, r);
	return rc ? rc : sqo_prepare_reader(s, r);
}

static void sq_close(void *impl)
{
	struct sqlite_store *s = impl;
	if (s == NULL)
		return;
	for (int i = 0; i < W_COUNT; i++)
		sqlite3_finalize(s->w[i]);
	sqa_finalize(s);
	sqo_finalize(s);
	sqp_finalize(s);
	for (int r = 0; s->readers && r < s->nreaders; r++) {
		for (int i = 0; i < R_COUNT; i++)
			sqlite3_finalize(s->readers[r].st[i]);
		sqa_finalize_reader(&s->readers[r]);
		sqo_finalize_reader(&s->readers[r]);
		sp_buf_free(&s->readers[r].latest);
		sp_buf_free(&s->readers[r].json);
		sp_buf_free(&s->readers[r].current);
		sp_buf_free(&s->readers[r].found);
		if (s->readers[r].db)
			sqlite3_close(s->readers[r].db);
	}
	free(s->readers);
	if (s->db) {
		/* leave a tidy file: fold the WAL back into the database */
		sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		sqlite3_close(s->db);
	}
	walbuf_destroy(s->walbuf); /* after its connection */
	pthread_cond_destroy(&s->pool_free);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_mutex_destroy(&s->log_lock);
	pthread_mutex_destroy(&s->ack_lock);
	chunk_batch_destroy(s->batch);
	chunk_batch_destroy(s->merging);
	free(s->path);
	free(s);
}

/*
 * Checkpoints run in the writer's COMMIT once the WAL holds mb MB. Every
 * commit rewrites one readings-index page per device it touches; the bigger
 * the WAL between checkpoints, the more of those rewrites a checkpoint folds
 * into one copy (measured: a 20-record backlog drains ~13 % faster at 32 MB
 * than at SQLite's 4 MB, see docs/performance.md). The WAL file is cut back
 * to this size when it restarts, so a huge batch does not leave it huge.
 */
static int set_checkpoint(struct sqlite_store *s, int64_t mb)
{
	sqlite3_stmt *st = NULL;
	int64_t page = 4096;
	char pragma[96];
	if (mb <= 0)
		return 0;
	if (sqlite3_prepare_v2(s->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
		page = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_wal_autocheckpoint(s->db, (int)(mb * 1024 * 1024 / page));
	snprintf(pragma, sizeof(pragma), "PRAGMA journal_size_limit = %lld",
		 (long long)(mb * 1024 * 1024));
	return sqs_exec(s->db, s->path, pragma);
}

static void *sq_open(const struct store_params *p)
{
	struct sqlite_store *s = calloc(1, sizeof(*s));
	char pragma[128];

	if (s == NULL)
		return NULL;
	/*
	 * Process-wide SQLite setting, before its first use: no memory
	 * statistics, which otherwise take a global mutex on every allocation.
	 * (Fails harmlessly with SQLITE_MISUSE if SQLite is already initialised.)
	 */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	pthread_mutex_init(&s->pool_lock, NULL);
	pthread_mutex_init(&s->log_lock, NULL);
	pthread_mutex_init(&s->ack_lock, NULL);
	/* sqs_borrow_within's deadline is monotonic; sq_close destroys it, so no way back */
	if (sp_cond_init_mono(&s->pool_free) != 0) {
		SP_ERROR("store", "cannot create the read pool's condition variable");
		pthread_mutex_destroy(&s->pool_lock);
		pthread_mutex_destroy(&s->log_lock);
		pthread_mutex_destroy(&s->ack_lock);
		free(s);
		return NULL;
	}
	s->path = strdup(p->path);
	s->batch = chunk_batch_create();
	s->merging = chunk_batch_create();
	s->compact_after_ms = p->compact_after_ms > 0 ? p->compact_after_ms : COMPACT_AFTER_MS;
	s->agent_down_ms = p->agent_down_ms > 0 ? p->agent_down_ms : AGENT_DOWN_MS;
	if (s->path == NULL || s->batch == NULL || s->merging == NULL)
		goto fail;
	/* only with synchronous=FULL: see store_sqlite_walbuf.c */
	if (p->sync_full && p->wal_buffer_kb >= 0) {
		int64_t kb = p->wal_buffer_kb > 0 ? p->wal_buffer_kb : STORE_WAL_BUFFER_KB_DEFAULT;
		if ((s->walbuf = walbuf_create((size_t)kb * 1024)) == NULL) {
			SP_ERROR("store", "%s: cannot register the WAL buffer's VFS", s->path);
			goto fail;
		}
	}
	if (sqlite3_open_v2(p->path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    s->walbuf ? walbuf_vfs_name(s->walbuf) : NULL) != SQLITE_OK) {
		sqs_db_error(s, s->db, "open");
		goto fail;
	}
	sqs_busy_init(s, s->db, &s->busy_writer, 5000);
	/* takes effect only while the file is still empty: an existing file keeps its size */
	snprintf(pragma, sizeof(pragma), "PRAGMA page_size = %lld",
		 (long long)(p->page_kb > 0 ? p->page_kb : STORE_PAGE_KB_DEFAULT) * 1024);
	if (sqs_exec(s->db, s->path, pragma))
		goto fail;
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%lld",
		 (long long)(p->cache_mb > 0 ? p->cache_mb : STORE_CACHE_MB_DEFAULT) * 1024);
	if (enter_wal(s) ||
	    sqs_exec(s->db, s->path,
		     p->sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL") ||
	    sqs_exec(s->db, s->path, "PRAGMA temp_store = MEMORY") ||
	    sqs_exec(s->db, s->path, pragma) || sqs_migrate(s) || set_checkpoint(s, p->checkpoint_mb))
		goto fail;
	if (sqs_prepare_all(s, s->db, WSQL, W_COUNT, s->w) || sqa_prepare(s) || sqo_prepare(s) ||
	    sqp_prepare(s))
		goto fail;
	s->nreaders = p->readers > 0 ? p->readers : 2;
	s->readers = calloc((size_t)s->nreaders, sizeof(*s->readers));
	if (s->readers == NULL)
		goto fail;
	for (int r = 0; r < s->nreaders; r++)
		if (open_reader(s, &s->readers[r]))
			goto fail;
	SP_INFO("store", "%s: open (schema %d, synchronous=%s, %d readers)", s->path,
		sqs_schema_version(), p->sync_full ? "FULL" : "NORMAL", s->nreaders);
	return s;
fail:
	sq_close(s);
	return NULL;
}

/* ---------------------------------------------------------------- writer side */

/* Steps a write statement to completion and resets it. */
int sqs_wstep(struct sqlite_store *s, enum wstmt which)
{
	sqlite3_stmt *st = s->w[which];
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return sqs_db_error(s, s->db, WSQL[which]);
}

static int sq_begin(void *impl)
{
	struct sqlite_store *s = impl;
	int rc = sqs_wstep(s, W_BEGIN);
	s->in_txn = rc == 0;
	sqp_forget_log(s); /* entries logged outside a transaction belong to none */
	return rc;
}

static int sq_commit(void *impl)
{
	struct sqlite_store *s = impl;
	int rc = sqs_write_chunks(s, s->batch, s->w[W_CHUNK_INS], CHUNK_FMT_PACKED,
				sp_now_ms(), NULL, 0);
	if (rc == 0)
		rc = sqp_write_log(s);
	/* a failed commit's entries describe a state the writer rolls back: drop them */
	sqp_forget_log(s);
	if (rc == 0)
		rc = sqs_wstep(s, W_COMMIT);
	if (rc) {
		/* a failed COMMIT may leave the transaction open: end it */
		if (!sqlite3_get_autocommit(s->db))
			sqs_wstep(s, W_ROLLBACK);
	}
	s->in_txn = false;
	return rc;
}

static void sq_rollback(void *impl)
{
	struct sqlite_store *s = impl;
	chunk_batch_reset(s->batch);
	sqp_forget_log(s);
	if (!sqlite3_get_autocommit(s->db))
		sqs_wstep(s, W_ROLLBACK);
	s->in_txn = false;
}

int sqs_prepare_all(struct sqlite_store *s, sqlite3 *db, const char *const *sql, int n,
		    sqlite3_stmt **out)
{
	for (int i = 0; i < n; i++)
		if (sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &out[i], NULL) !=
		    SQLITE_OK)
			return sqs_db_error(s, db, sql[i]);
	return 0;
}

void sqs_bind_text(sqlite3_stmt *st, int i, const char *text)
{
	if (text)
		sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static int sq_agent(void *impl, const char *site, const char *agent, int64_t *agent_id)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_AGENT_GET];
	sqs_bind_text(st, 1, site);
	sqs_bind_text(st, 2, agent);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*agent_id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return 0;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return sqs_db_error(s, s->db, "find agent");
	sqs_bind_text(s->w[W_AGENT_INS], 1, site);
	sqs_bind_text(s->w[W_AGENT_INS], 2, agent);
	if ((rc = sqs_wstep(s, W_AGENT_INS)))
		return rc;
	*agent_id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

static int sq_agent_birth(void *impl, int64_t agent_id, int64_t ts, const char *fw,
			  int64_t received_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_BIRTH];
	sqlite3_bind_int64(st, 1, agent_id);
	sqlite3_bind_int64(st, 2, ts);
	sqs_bind_text(st, 3, fw);
	sqlite3_bind_int64(st, 4, received_ms);
	return sqs_wstep(s, W_BIRTH);
}

static int sq_agent_state(void *impl, int64_t agent_id, bool online, int64_t received_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_STATE];
	sqlite3_bind_int64(st, 1, agent_id);
	sqlite3_bind_int(st, 2, online);
	sqlite3_bind_int64(st, 3, received_ms);
	return sqs_wstep(s, W_STATE);
}

static int sq_agent_seen(void *impl, int64_t agent_id, int64_t received_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_SEEN];
	sqlite3_bind_int64(st, 1, agent_id);
	sqlite3_bind_int64(st, 2, received_ms);
	sqlite3_bind_int64(st, 3, s->agent_down_ms);
	return sqs_wstep(s, W_SEEN);
}

static int sq_clock_set_back(void *impl, int64_t now_ms, int64_t back_ms,
			     const struct store_offline_rules *offline)
{
	struct sqlite_store *s = impl;
	static const enum wstmt which[] = {W_BACK_DEVICES, W_BACK_AGENTS};
	for (size_t i = 0; i < sizeof(which) / sizeof(which[0]); i++) {
		sqlite3_stmt *st = s->w[which[i]];
		sqlite3_bind_int64(st, 1, now_ms);
		sqlite3_bind_int64(st, 2, back_ms);
		int rc = sqs_wstep(s, which[i]);
		if (rc)
			return rc;
	}
	return sqa_clock_set_back(s, now_ms, back_ms, offline);
}

/* The one integer a writer statement without parameters reads, or -1 (logged when what is given). */
static int64_t read_one_int(struct sqlite_store *s, enum wstmt which, const char *what)
{
	sqlite3_stmt *st = s->w[which];
	int64_t v = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else if (what)
		sqs_db_error(s, s->db, what);
	sqlite3_reset(st);
	return v;
}

static int64_t sq_newest_stamp(void *impl)
{
	return read_one_int(impl, W_NEWEST_STAMP, "read the newest liveness time");
}

static int16_t column_clamped(sqlite3_stmt *st, int col, int lo, int hi)
{
	int v = sqlite3_column_int(st, col);
	return (int16_t)(v < lo ? lo : v > hi ? hi : v);
}

/*
 * The row was written from a validated birth, so its values are in range;
 * a damaged or edited file is clamped to the limits rather than wrapped
 * into the small fields of struct store_device.
 */
static void read_device(sqlite3_stmt *st, struct store_device *out)
{
	int kind = sqlite3_column_int(st, 2);
	out->id = sqlite3_column_int64(st, 0);
	out->agent_id = sqlite3_column_int64(st, 1);
	out->kind = (uint8_t)(kind > SP_DEV_UNKNOWN && kind < SP_DEV_KIND_COUNT ? kind : SP_DEV_UNKNOWN);
	out->ports = (int8_t)column_clamped(st, 3, 0, SP_PORT_MAX);
	out->has_floors = sqlite3_column_type(st, 4) != SQLITE_NULL;
	out->floor_min = column_clamped(st, 4, SP_FLOOR_MIN, SP_FLOOR_MAX);
	out->floor_max = column_clamped(st, 5, SP_FLOOR_MIN, SP_FLOOR_MAX);
	int64_t rating = sqlite3_column_int64(st, 6);
	out->rating = (uint16_t)(rating < 0 ? 0 : rating > 65535 ? 65535 : rating);
}

static int sq_device(void *impl, const char *site, const char *dev, struct store_device *out,
		     struct store_seen *seen)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_DEV_GET];
	sqs_bind_text(st, 1, site);
	sqs_bind_text(st, 2, dev);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_device(st, out);
		if (seen) {
			seen->last_seen = sqlite3_column_int64(st, 7);
			seen->heard = sqlite3_column_int64(st, 8);
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? SP_ENOTFOUND : sqs_db_error(s, s->db, "find device");
}

static int sq_upsert_device(void *impl, const char *site, const char *dev, int64_t agent_id,
			    const struct sp_device_info *info, enum sp_dev_kind kind,
			    const char *meta_json, struct store_device *out)
{
	struct sqlite_store *s = impl;
	struct store_device cur;
	int rc = sq_device(impl, site, dev, &cur, NULL);
	if (rc && rc != SP_ENOTFOUND)
		return rc;
	bool exists = rc == 0;
	/*
	 * Data before a birth must not erase what a birth said. It only tells
	 * the kind of a device of unknown kind (one first seen in a fault
	 * record, which names none); W_DEV_KIND leaves any other kind alone.
	 */
	if (exists && info == NULL) {
		if (cur.kind == SP_DEV_UNKNOWN && kind != SP_DEV_UNKNOWN) {
			sqlite3_stmt *st = s->w[W_DEV_KIND];
			sqs_bind_text(st, 1, site);
			sqs_bind_text(st, 2, dev);
			sqlite3_bind_int(st, 3, (int)kind);
			if ((rc = sqs_wstep(s, W_DEV_KIND)))
				return rc;
			if (sqlite3_changes(s->db) > 0)
				cur.kind = (uint8_t)kind;
		}
		*out = cur;
		return 0;
	}
	enum wstmt which = exists ? W_DEV_UPD : W_DEV_INS;
	sqlite3_stmt *st = s->w[which];
	sqs_bind_text(st, 1, site);
	sqs_bind_text(st, 2, dev);
	sqlite3_bind_int(st, 3, info ? (int)info->kind : (int)kind);
	sqlite3_bind_int64(st, 4, agent_id);
	sqlite3_bind_int(st, 5, info && info->kind == SP_DEV_CHARGER ? info->ports : 0);
	if (info && info->kind == SP_DEV_LIFT && info->floor_min < info->floor_max) {
		sqlite3_bind_int(st, 6, info->floor_min);
		sqlite3_bind_int(st, 7, info->floor_max);
	} else {
		sqlite3_bind_null(st, 6);
		sqlite3_bind_null(st, 7);
	}
	sqs_bind_text(st, 8, meta_json);
	sqlite3_bind_int(st, 9, store_device_rating(info));
	if ((rc = sqs_wstep(s, which)))
		return rc;
	if (!exists) {
		sqlite3_bind_int64(s->w[W_DEV_SEEN_INS], 1, sqlite3_last_insert_rowid(s->db));
		if ((rc = sqs_wstep(s, W_DEV_SEEN_INS)))
			return rc;
	}
	return sq_device(impl, site, dev, out, NULL);
}

/*
 * Held until commit (a lent body by pointer, others copied), then written
 * as chunks (chunk.h); a transaction that holds more than
 * BATCH_FLUSH_READINGS or BATCH_FLUSH_BYTES writes what it has early,
 * inside the same transaction, so the batch stays bounded.
 */
static int sq_reading(void *impl, int64_t device_id, int64_t agent_id, int64_t seq,
		      enum sp_rec_kind kind, int64_t ts, const char *body, size_t body_len,
		      unsigned how)
{
	struct sqlite_store *s = impl;
	struct chunk_rec r = {ts, seq, agent_id, (int)kind, body, body_len,
			      (how & STORE_BODY_TAIL) != 0};
	if (r.bare && !chunk_bare_ok((uint32_t)kind, body, body_len)) {
		SP_ERROR("store", "%s: a reading of kind %d given as a tail is none (not stored)",
			 s->path, (int)kind);
		return SP_EINVAL;
	}
	int (*add)(struct chunk_batch *, int64_t, const struct chunk_rec *) =
		how & STORE_BODY_LENT ? chunk_batch_add_borrowed : chunk_batch_add;
	if (add(s->batch, device_id, &r)) {
		SP_ERROR("store", "%s: out of memory holding readings", s->path);
		return SP_ENOMEM;
	}
	if (chunk_batch_count(s->batch) >= BATCH_FLUSH_READINGS ||
	    chunk_batch_body_bytes(s->batch) >= BATCH_FLUSH_BYTES)
		return sqs_write_chunks(s, s->batch, s->w[W_CHUNK_INS], CHUNK_FMT_PACKED,
				sp_now_ms(), NULL, 0);
	return 0;
}

static int sq_device_seen(void *impl, int64_t device_id, int64_t ts, int64_t heard)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_DEV_SEEN];
	sqlite3_bind_int64(st, 1, device_id);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_int64(st, 3, heard);
	return sqs_wstep(s, W_DEV_SEEN);
}

static int64_t sq_device_count(void *impl)
{
	return read_one_int(impl, W_DEV_COUNT, NULL);
}

static int sq_heartbeat(void *impl, int64_t now_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_bind_int64(s->w[W_HEARTBEAT], 1, now_ms);
	return sqs_wstep(s, W_HEARTBEAT);
}

const struct store_backend store_sqlite_backend = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.stop_waits = sq_stop_waits,
	.w_begin = sq_begin,
	.w_commit = sq_commit,
	.w_rollback = sq_rollback,
	.w_agent = sq_agent,
	.w_load_agents = sqp_load_agents,
	.w_log_progress = sqp_log_progress,
	.w_save_progress = sqp_save_progress,
	.w_clear_progress_log = sqp_clear_log,
	.w_agent_birth = sq_agent_birth,
	.w_agent_state = sq_agent_state,
	.w_agent_seen = sq_agent_seen,
	.w_clock_set_back = sq_clock_set_back,
	.w_clock_set_forward = sqa_clock_set_forward,
	.w_newest_stamp = sq_newest_stamp,
	.w_device = sq_device,
	.w_upsert_device = sq_upsert_device,
	.w_reading = sq_reading,
	.w_device_seen = sq_device_seen,
	.w_device_count = sq_device_count,
	.w_heartbeat = sq_heartbeat,
	.w_compact = sqc_compact,
	.r_sites = sqr_sites,
	.r_site_names = sqr_site_names,
	.r_devices = sqr_devices,
	.r_readings = sqr_readings,
	.r_device_counts = sqr_device_counts,
	.r_ping = sqr_ping,
	.r_site_has_records = sqr_site_has_records,
	.w_alert_open = sqa_alert_open,
	.w_alert_clear = sqa_alert_clear,
	.w_hold_put = sqa_hold_put,
	.w_hold_del = sqa_hold_del,
	.w_load_conditions = sqa_load_conditions,
	.w_fault_clear = sqa_fault_clear,
	.w_fault_clears_trim = sqa_fault_clears_trim,
	.w_load_fault_clears = sqa_load_fault_clears,
	.w_offline_scan = sqa_offline_scan,
	.w_reminders_due = sqa_reminders_due,
	.w_alert_reminded = sqa_alert_reminded,
	.r_alerts = sqa_r_alerts,
	.ack_alert = sqa_ack_alert,
	.r_alert_counts = sqa_r_alert_counts,
	.w_alerts_opened_between = sqa_alerts_opened_between,
	.w_alert_info = sqa_alert_info,
	.r_alerts_during = sqa_r_alerts_during,
	.r_device_records = sqr_device_records,
	.w_mail_add = sqo_mail_add,
	.sender_open = sqo_sender_open,
	.sender_close = sqo_sender_close,
	.sender_next = sqo_sender_next,
	.sender_done = sqo_sender_done,
	.sender_retry = sqo_sender_retry,
	.sender_pending = sqo_sender_pending,
	.sender_hold = sqo_sender_hold,
	.sender_release = sqo_sender_release,
	.sender_superseded = sqo_sender_superseded,
	.sender_summarized = sqo_sender_summarized,
	.sender_add_summary = sqo_sender_add_summary,
	.r_summaries = sqo_r_summaries,
};
