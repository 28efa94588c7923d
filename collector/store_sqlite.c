/*
 * store_sqlite.c - the SQLite storage backend (see store.h).
 *
 * The collector's only SQLite user. One write connection, owned by the
 * writer thread; a pool of read-only connections for the API threads
 * (WAL lets them read while the writer writes). Every statement is
 * prepared once per connection and finalized at close.
 *
 * Durability: WAL with synchronous=FULL by default, so a committed batch
 * (and therefore everything the collector acks) survives a power loss;
 * synchronous=NORMAL survives a crash of the collector but may lose the
 * last commits on power loss (documented in docs/architecture.md).
 *
 * Schema: see MIGRATIONS below; `schema_version` records what is applied.
 */
#include "store.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each entry migrates from version i to i+1; append only, never edit. */
static const char *const MIGRATIONS[] = {
	/* 0 -> 1: the initial schema */
	"CREATE TABLE agents("
	" id INTEGER PRIMARY KEY,"
	" site TEXT NOT NULL, agent TEXT NOT NULL,"
	" acked INTEGER NOT NULL DEFAULT 0,"
	" done TEXT NOT NULL DEFAULT '', missing TEXT NOT NULL DEFAULT '',"
	" gap_since INTEGER NOT NULL DEFAULT 0,"
	" online INTEGER NOT NULL DEFAULT 0, state_at INTEGER NOT NULL DEFAULT 0,"
	" birth_ts INTEGER NOT NULL DEFAULT 0, birth_at INTEGER NOT NULL DEFAULT 0, fw TEXT,"
	" last_seen INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE(site, agent));"
	"CREATE TABLE devices("
	" id INTEGER PRIMARY KEY,"
	" site TEXT NOT NULL, dev TEXT NOT NULL,"
	" kind INTEGER NOT NULL, agent_id INTEGER NOT NULL,"
	" ports INTEGER NOT NULL DEFAULT 0,"
	" floor_min INTEGER, floor_max INTEGER,"
	" meta TEXT, last_seen INTEGER NOT NULL DEFAULT 0,"
	" UNIQUE(site, dev));"
	"CREATE TABLE readings("
	" id INTEGER PRIMARY KEY,"
	" device_id INTEGER NOT NULL, ts INTEGER NOT NULL, kind INTEGER NOT NULL,"
	" agent_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" body TEXT NOT NULL);"
	/* the one index of the hot table: readings of a device by time (API) */
	"CREATE INDEX readings_device_ts ON readings(device_id, ts);",
	/* 1 -> 2: a row the writer rewrites every second, so health reflects real writes */
	"CREATE TABLE heartbeat(id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);",
};
#define SCHEMA_VERSION ((int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])))

/* ---------------------------------------------------------------- connections */

enum wstmt {
	W_BEGIN, W_COMMIT, W_ROLLBACK,
	W_AGENT_GET, W_AGENT_INS, W_AGENTS_ALL, W_PROGRESS, W_BIRTH, W_STATE, W_SEEN,
	W_DEV_GET, W_DEV_INS, W_DEV_UPD, W_READING, W_DEV_SEEN, W_DEV_COUNT, W_HEARTBEAT,
	W_COUNT
};

static const char *const WSQL[W_COUNT] = {
	[W_BEGIN] = "BEGIN IMMEDIATE",
	[W_COMMIT] = "COMMIT",
	[W_ROLLBACK] = "ROLLBACK",
	[W_AGENT_GET] = "SELECT id FROM agents WHERE site = ?1 AND agent = ?2",
	[W_AGENT_INS] = "INSERT INTO agents(site, agent) VALUES (?1, ?2)",
	[W_AGENTS_ALL] = "SELECT id, site, agent, acked, done, missing, gap_since FROM agents",
	[W_PROGRESS] = "UPDATE agents SET acked = ?2, done = ?3, missing = ?4, gap_since = ?5 "
		       "WHERE id = ?1",
	[W_BIRTH] = "UPDATE agents SET birth_ts = ?2, fw = ?3, birth_at = ?4 WHERE id = ?1",
	[W_STATE] = "UPDATE agents SET online = ?2, state_at = ?3 WHERE id = ?1",
	/*
	 * data received after the agent's last state message proves it is alive;
	 * data received before it (e.g. in the same batch as its goodbye) does not
	 */
	[W_SEEN] = "UPDATE agents SET last_seen = max(last_seen, ?2), "
		   "online = CASE WHEN ?2 > state_at THEN 1 ELSE online END WHERE id = ?1",
	[W_DEV_GET] = "SELECT id, agent_id, kind, ports, floor_min, floor_max FROM devices "
		      "WHERE site = ?1 AND dev = ?2",
	[W_DEV_INS] = "INSERT INTO devices(site, dev, kind, agent_id, ports, floor_min, floor_max, "
		      "meta) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[W_DEV_UPD] = "UPDATE devices SET kind = ?3, agent_id = ?4, ports = ?5, floor_min = ?6, "
		      "floor_max = ?7, meta = coalesce(?8, meta) WHERE site = ?1 AND dev = ?2",
	[W_READING] = "INSERT INTO readings(device_id, ts, kind, agent_id, seq, body) "
		      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[W_DEV_SEEN] = "UPDATE devices SET last_seen = ?2 WHERE id = ?1 AND last_seen < ?2",
	[W_DEV_COUNT] = "SELECT count(*) FROM devices",
	[W_HEARTBEAT] = "INSERT INTO heartbeat(id, at) VALUES (1, ?1) "
			"ON CONFLICT(id) DO UPDATE SET at = excluded.at",
};

enum rstmt { R_SITES, R_DEVICES_SITE, R_DEVICES_ALL, R_DEV_ID, R_READINGS, R_COUNTS, R_PING, R_COUNT };

/*
 * devices.last_seen is written every few seconds (writer.c) and may trail.
 * The newest reading, one index seek away, is exact: the device list reads
 * it for every device; the counts only for devices whose stored value says
 * "offline" (CASE evaluates lazily), which in a healthy fleet are few.
 */
#define SEEN_SINCE(param)                                                                       \
	"CASE WHEN d.last_seen >= " param " THEN 1 ELSE EXISTS (SELECT 1 FROM readings r"        \
	" WHERE r.device_id = d.id AND r.ts >= " param ") END"
#define DEVICE_COLUMNS                                                                          \
	"SELECT site, dev, kind, agent, agent_online AND seen >= ?2, seen, meta, latest FROM (" \
	" SELECT d.site, d.dev, d.kind, a.agent, a.online AS agent_online, d.meta,"             \
	"  max(d.last_seen, coalesce(r.ts, 0)) AS seen, r.body AS latest"                       \
	" FROM devices d JOIN agents a ON a.id = d.agent_id"                                    \
	/* the newest reading: one index seek gives both its ts and its body */                  \
	" LEFT JOIN readings r ON r.id = (SELECT id FROM readings WHERE device_id = d.id"       \
	"                                 ORDER BY ts DESC, id DESC LIMIT 1) "

static const char *const RSQL[R_COUNT] = {
	[R_SITES] = "SELECT d.site, count(*), coalesce(sum(a.online AND " SEEN_SINCE("?1") "), 0) "
		    "FROM devices d JOIN agents a ON a.id = d.agent_id GROUP BY d.site ORDER BY d.site",
	[R_DEVICES_SITE] = DEVICE_COLUMNS "WHERE d.site = ?1) ORDER BY dev",
	[R_DEVICES_ALL] = DEVICE_COLUMNS "WHERE ?1 IS NULL) ORDER BY site, dev",
	[R_DEV_ID] = "SELECT id FROM devices WHERE site = ?1 AND dev = ?2",
	[R_READINGS] = "SELECT body FROM readings WHERE device_id = ?1 AND ts BETWEEN ?2 AND ?3 "
		       "AND (?4 < 0 OR kind = ?4) ORDER BY ts DESC, id DESC LIMIT ?5",
	[R_COUNTS] = "SELECT d.kind, a.online AND " SEEN_SINCE("?1") ", count(*) "
		     "FROM devices d JOIN agents a ON a.id = d.agent_id GROUP BY 1, 2",
	[R_PING] = "SELECT 1 FROM schema_version LIMIT 1",
};

struct reader {
	sqlite3 *db;
	sqlite3_stmt *st[R_COUNT];
	bool busy;
};

struct sqlite_store {
	char *path;
	sqlite3 *db;                 /* writer connection */
	sqlite3_stmt *w[W_COUNT];
	bool in_txn;
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_free;
	struct reader *readers;
	int nreaders;
	pthread_mutex_t log_lock;     /* guards error_log (writer and readers report errors) */
	struct sp_ratelimit error_log;
};

/*
 * Reports a SQLite failure with the library's text. Rate-limited: a full
 * disk fails every batch until space returns: one line a minute tells the
 * operator; the writer says when the episode starts (WARN) and ends (INFO).
 */
static int db_error(struct sqlite_store *s, sqlite3 *db, const char *what)
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

static int exec_sql(sqlite3 *db, const char *path, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		SP_ERROR("store", "%s: %s", path, msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return (sqlite3_extended_errcode(db) & 0xff) == SQLITE_FULL ? SP_ENOSPC : SP_EIO;
	}
	return 0;
}

static int migrate(struct sqlite_store *s)
{
	sqlite3_stmt *st = NULL;
	int version = 0, rc;

	if ((rc = exec_sql(s->db, s->path,
			   "CREATE TABLE IF NOT EXISTS schema_version("
			   "version INTEGER NOT NULL, applied_at INTEGER NOT NULL)")))
		return rc;
	if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1,
			       &st, NULL) != SQLITE_OK)
		return db_error(s, s->db, "read schema version");
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > SCHEMA_VERSION) {
		SP_ERROR("store", "%s: schema version %d is newer than this collector (%d)", s->path,
			 version, SCHEMA_VERSION);
		return SP_EIO;
	}
	for (int v = version; v < SCHEMA_VERSION; v++) {
		char record[160];
		snprintf(record, sizeof(record),
			 "INSERT INTO schema_version VALUES (%d, CAST(strftime('%%s','now') AS INTEGER)*1000)",
			 v + 1);
		if ((rc = exec_sql(s->db, s->path, "BEGIN")) ||
		    (rc = exec_sql(s->db, s->path, MIGRATIONS[v])) ||
		    (rc = exec_sql(s->db, s->path, record)) ||
		    (rc = exec_sql(s->db, s->path, "COMMIT"))) {
			exec_sql(s->db, s->path, "ROLLBACK");
			return rc;
		}
		SP_INFO("store", "%s: schema migrated to version %d", s->path, v + 1);
	}
	return 0;
}

static int open_reader(struct sqlite_store *s, struct reader *r)
{
	if (sqlite3_open_v2(s->path, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		return db_error(s, r->db, "open read connection");
	sqlite3_busy_timeout(r->db, 2000);
	for (int i = 0; i < R_COUNT; i++)
		if (sqlite3_prepare_v3(r->db, RSQL[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i], NULL) !=
		    SQLITE_OK)
			return db_error(s, r->db, RSQL[i]);
	return 0;
}

static void sq_close(void *impl)
{
	struct sqlite_store *s = impl;
	if (s == NULL)
		return;
	for (int i = 0; i < W_COUNT; i++)
		sqlite3_finalize(s->w[i]);
	for (int r = 0; s->readers && r < s->nreaders; r++) {
		for (int i = 0; i < R_COUNT; i++)
			sqlite3_finalize(s->readers[r].st[i]);
		if (s->readers[r].db)
			sqlite3_close(s->readers[r].db);
	}
	free(s->readers);
	if (s->db) {
		/* leave a tidy file: fold the WAL back into the database */
		sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		sqlite3_close(s->db);
	}
	pthread_cond_destroy(&s->pool_free);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_mutex_destroy(&s->log_lock);
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
	return exec_sql(s->db, s->path, pragma);
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
	pthread_cond_init(&s->pool_free, NULL);
	pthread_mutex_init(&s->log_lock, NULL);
	s->path = strdup(p->path);
	if (s->path == NULL)
		goto fail;
	if (sqlite3_open_v2(p->path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		db_error(s, s->db, "open");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%lld",
		 (long long)(p->cache_mb > 0 ? p->cache_mb * 1024 : 8192));
	if (exec_sql(s->db, s->path, "PRAGMA journal_mode = WAL") ||
	    exec_sql(s->db, s->path,
		     p->sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL") ||
	    exec_sql(s->db, s->path, "PRAGMA temp_store = MEMORY") ||
	    exec_sql(s->db, s->path, pragma) || migrate(s) || set_checkpoint(s, p->checkpoint_mb))
		goto fail;
	for (int i = 0; i < W_COUNT; i++)
		if (sqlite3_prepare_v3(s->db, WSQL[i], -1, SQLITE_PREPARE_PERSISTENT, &s->w[i], NULL) !=
		    SQLITE_OK) {
			db_error(s, s->db, WSQL[i]);
			goto fail;
		}
	s->nreaders = p->readers > 0 ? p->readers : 2;
	s->readers = calloc((size_t)s->nreaders, sizeof(*s->readers));
	if (s->readers == NULL)
		goto fail;
	for (int r = 0; r < s->nreaders; r++)
		if (open_reader(s, &s->readers[r]))
			goto fail;
	SP_INFO("store", "%s: open (schema %d, synchronous=%s, %d readers)", s->path,
		SCHEMA_VERSION, p->sync_full ? "FULL" : "NORMAL", s->nreaders);
	return s;
fail:
	sq_close(s);
	return NULL;
}

/* ---------------------------------------------------------------- writer side */

/* Steps a write statement to completion and resets it. */
static int wstep(struct sqlite_store *s, enum wstmt which)
{
	sqlite3_stmt *st = s->w[which];
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return db_error(s, s->db, WSQL[which]);
}

static int sq_begin(void *impl)
{
	struct sqlite_store *s = impl;
	int rc = wstep(s, W_BEGIN);
	s->in_txn = rc == 0;
	return rc;
}

static int sq_commit(void *impl)
{
	struct sqlite_store *s = impl;
	int rc = wstep(s, W_COMMIT);
	if (rc) {
		/* a failed COMMIT may leave the transaction open: end it */
		if (!sqlite3_get_autocommit(s->db))
			wstep(s, W_ROLLBACK);
	}
	s->in_txn = false;
	return rc;
}

static void sq_rollback(void *impl)
{
	struct sqlite_store *s = impl;
	if (!sqlite3_get_autocommit(s->db))
		wstep(s, W_ROLLBACK);
	s->in_txn = false;
}

static void bind_text(sqlite3_stmt *st, int i, const char *text)
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
	bind_text(st, 1, site);
	bind_text(st, 2, agent);
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
		return db_error(s, s->db, "find agent");
	bind_text(s->w[W_AGENT_INS], 1, site);
	bind_text(s->w[W_AGENT_INS], 2, agent);
	if ((rc = wstep(s, W_AGENT_INS)))
		return rc;
	*agent_id = sqlite3_last_insert_rowid(s->db);
	return 0;
}

static int sq_load_agents(void *impl, store_agent_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_AGENTS_ALL];
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_agent_progress p = {
			.acked = sqlite3_column_int64(st, 3),
			.done = (const char *)sqlite3_column_text(st, 4),
			.missing = (const char *)sqlite3_column_text(st, 5),
			.gap_since_ms = sqlite3_column_int64(st, 6),
		};
		int err = fn(ctx, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
			     (const char *)sqlite3_column_text(st, 2), &p);
		if (err) {
			sqlite3_reset(st);
			return err;
		}
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_error(s, s->db, "load agents");
}

static int sq_save_progress(void *impl, int64_t agent_id, const struct store_agent_progress *p)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_PROGRESS];
	sqlite3_bind_int64(st, 1, agent_id);
	sqlite3_bind_int64(st, 2, p->acked);
	bind_text(st, 3, p->done ? p->done : "");
	bind_text(st, 4, p->missing ? p->missing : "");
	sqlite3_bind_int64(st, 5, p->gap_since_ms);
	return wstep(s, W_PROGRESS);
}

static int sq_agent_birth(void *impl, int64_t agent_id, int64_t ts, const char *fw,
			  int64_t received_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_BIRTH];
	sqlite3_bind_int64(st, 1, agent_id);
	sqlite3_bind_int64(st, 2, ts);
	bind_text(st, 3, fw);
	sqlite3_bind_int64(st, 4, received_ms);
	return wstep(s, W_BIRTH);
}

static int sq_agent_state(void *impl, int64_t agent_id, bool online, int64_t received_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_STATE];
	sqlite3_bind_int64(st, 1, agent_id);
	sqlite3_bind_int(st, 2, online);
	sqlite3_bind_int64(st, 3, received_ms);
	return wstep(s, W_STATE);
}

static int sq_agent_seen(void *impl, int64_t agent_id, int64_t received_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_SEEN];
	sqlite3_bind_int64(st, 1, agent_id);
	sqlite3_bind_int64(st, 2, received_ms);
	return wstep(s, W_SEEN);
}

static void read_device(sqlite3_stmt *st, struct store_device *out)
{
	out->id = sqlite3_column_int64(st, 0);
	out->agent_id = sqlite3_column_int64(st, 1);
	out->kind = (enum sp_dev_kind)sqlite3_column_int(st, 2);
	out->ports = sqlite3_column_int(st, 3);
	out->has_floors = sqlite3_column_type(st, 4) != SQLITE_NULL;
	out->floor_min = sqlite3_column_int(st, 4);
	out->floor_max = sqlite3_column_int(st, 5);
}

static int sq_device(void *impl, const char *site, const char *dev, struct store_device *out)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_DEV_GET];
	bind_text(st, 1, site);
	bind_text(st, 2, dev);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_device(st, out);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? SP_ENOTFOUND : db_error(s, s->db, "find device");
}

static int sq_upsert_device(void *impl, const char *site, const char *dev, int64_t agent_id,
			    const struct sp_device_info *info, enum sp_dev_kind kind,
			    const char *meta_json, struct store_device *out)
{
	struct sqlite_store *s = impl;
	struct store_device cur;
	int rc = sq_device(impl, site, dev, &cur);
	if (rc && rc != SP_ENOTFOUND)
		return rc;
	bool exists = rc == 0;
	/* data before a birth must not erase what a birth said */
	if (exists && info == NULL) {
		*out = cur;
		return 0;
	}
	enum wstmt which = exists ? W_DEV_UPD : W_DEV_INS;
	sqlite3_stmt *st = s->w[which];
	bind_text(st, 1, site);
	bind_text(st, 2, dev);
	sqlite3_bind_int(st, 3, info ? (int)info->kind : (int)kind);
	sqlite3_bind_int64(st, 4, agent_id);
	sqlite3_bind_int(st, 5, info && info->kind == SP_DEV_CHARGER ? info->ports : 0);
	if (info && info->kind == SP_DEV_LIFT) {
		sqlite3_bind_int(st, 6, info->floor_min);
		sqlite3_bind_int(st, 7, info->floor_max);
	} else {
		sqlite3_bind_null(st, 6);
		sqlite3_bind_null(st, 7);
	}
	bind_text(st, 8, meta_json);
	if ((rc = wstep(s, which)))
		return rc;
	return sq_device(impl, site, dev, out);
}

static int sq_reading(void *impl, int64_t device_id, int64_t agent_id, int64_t seq,
		      enum sp_rec_kind kind, int64_t ts, const char *body, size_t body_len)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_READING];
	sqlite3_bind_int64(st, 1, device_id);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_int(st, 3, (int)kind);
	sqlite3_bind_int64(st, 4, agent_id);
	sqlite3_bind_int64(st, 5, seq);
	sqlite3_bind_text(st, 6, body, (int)body_len, SQLITE_STATIC);
	return wstep(s, W_READING);
}

static int sq_device_seen(void *impl, int64_t device_id, int64_t ts)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_DEV_SEEN];
	sqlite3_bind_int64(st, 1, device_id);
	sqlite3_bind_int64(st, 2, ts);
	return wstep(s, W_DEV_SEEN);
}

static int64_t sq_device_count(void *impl)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_DEV_COUNT];
	int64_t n = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}

static int sq_heartbeat(void *impl, int64_t now_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_bind_int64(s->w[W_HEARTBEAT], 1, now_ms);
	return wstep(s, W_HEARTBEAT);
}

/* ---------------------------------------------------------------- reader side */

static struct reader *borrow(struct sqlite_store *s)
{
	pthread_mutex_lock(&s->pool_lock);
	for (;;) {
		for (int i = 0; i < s->nreaders; i++) {
			if (!s->readers[i].busy) {
				s->readers[i].busy = true;
				pthread_mutex_unlock(&s->pool_lock);
				return &s->readers[i];
			}
		}
		pthread_cond_wait(&s->pool_free, &s->pool_lock);
	}
}

static void give_back(struct sqlite_store *s, struct reader *r)
{
	pthread_mutex_lock(&s->pool_lock);
	r->busy = false;
	pthread_cond_signal(&s->pool_free);
	pthread_mutex_unlock(&s->pool_lock);
}

/* Finishes a read: resets the statement, maps the step result. */
static int rdone(struct sqlite_store *s, struct reader *r, sqlite3_stmt *st, int rc,
		 const char *what)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	int out = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_error(s, r->db, what);
	give_back(s, r);
	return out;
}

static int sq_r_sites(void *impl, int64_t now_ms, int64_t offline_ms, store_site_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = borrow(s);
	sqlite3_stmt *st = r->st[R_SITES];
	int rc;
	sqlite3_bind_int64(st, 1, now_ms - offline_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_site_row row = {(const char *)sqlite3_column_text(st, 0),
					     sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2)};
		if (fn(ctx, &row))
			break;
	}
	return rdone(s, r, st, rc, "list sites");
}

static int sq_r_devices(void *impl, const char *site, int64_t now_ms, int64_t offline_ms,
			store_device_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = borrow(s);
	sqlite3_stmt *st = r->st[site ? R_DEVICES_SITE : R_DEVICES_ALL];
	int rc;
	bind_text(st, 1, site);
	sqlite3_bind_int64(st, 2, now_ms - offline_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_device_row row = {
			.site = (const char *)sqlite3_column_text(st, 0),
			.dev = (const char *)sqlite3_column_text(st, 1),
			.kind = sp_dev_kind_name((enum sp_dev_kind)sqlite3_column_int(st, 2)),
			.agent = (const char *)sqlite3_column_text(st, 3),
			.online = sqlite3_column_int(st, 4) != 0,
			.last_seen = sqlite3_column_int64(st, 5),
			.meta = (const char *)sqlite3_column_text(st, 6),
			.latest = (const char *)sqlite3_column_text(st, 7),
		};
		if (fn(ctx, &row))
			break;
	}
	return rdone(s, r, st, rc, "list devices");
}

static int sq_r_readings(void *impl, const struct store_readings_query *q, store_reading_fn fn,
			 void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = borrow(s);
	sqlite3_stmt *st = r->st[R_DEV_ID];
	int64_t device_id;
	int rc, n = 0;

	bind_text(st, 1, q->site);
	bind_text(st, 2, q->dev);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int out = rc == SQLITE_DONE ? SP_ENOTFOUND : db_error(s, r->db, "find device");
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		give_back(s, r);
		return out;
	}
	device_id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);

	st = r->st[R_READINGS];
	sqlite3_bind_int64(st, 1, device_id);
	sqlite3_bind_int64(st, 2, q->from);
	sqlite3_bind_int64(st, 3, q->to);
	sqlite3_bind_int(st, 4, q->kind);
	sqlite3_bind_int64(st, 5, q->limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (fn(ctx, (const char *)sqlite3_column_text(st, 0),
		       (size_t)sqlite3_column_bytes(st, 0)))
			break;
	}
	rc = rdone(s, r, st, rc, "read readings");
	return rc ? rc : n;
}

static int sq_r_device_counts(void *impl, int64_t now_ms, int64_t offline_ms,
			      int64_t counts[SP_DEV_KIND_COUNT][2])
{
	struct sqlite_store *s = impl;
	struct reader *r = borrow(s);
	sqlite3_stmt *st = r->st[R_COUNTS];
	int rc;
	memset(counts, 0, sizeof(int64_t) * SP_DEV_KIND_COUNT * 2);
	sqlite3_bind_int64(st, 1, now_ms - offline_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int kind = sqlite3_column_int(st, 0);
		int online = sqlite3_column_int(st, 1) != 0;
		if (kind >= 0 && kind < SP_DEV_KIND_COUNT)
			counts[kind][online] += sqlite3_column_int64(st, 2);
	}
	return rdone(s, r, st, rc, "count devices");
}

static int sq_r_ping(void *impl)
{
	struct sqlite_store *s = impl;
	struct reader *r = borrow(s);
	sqlite3_stmt *st = r->st[R_PING];
	int rc = sqlite3_step(st);
	return rdone(s, r, st, rc, "ping");
}

const struct store_backend store_sqlite_backend = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.w_begin = sq_begin,
	.w_commit = sq_commit,
	.w_rollback = sq_rollback,
	.w_agent = sq_agent,
	.w_load_agents = sq_load_agents,
	.w_save_progress = sq_save_progress,
	.w_agent_birth = sq_agent_birth,
	.w_agent_state = sq_agent_state,
	.w_agent_seen = sq_agent_seen,
	.w_device = sq_device,
	.w_upsert_device = sq_upsert_device,
	.w_reading = sq_reading,
	.w_device_seen = sq_device_seen,
	.w_device_count = sq_device_count,
	.w_heartbeat = sq_heartbeat,
	.r_sites = sq_r_sites,
	.r_devices = sq_r_devices,
	.r_readings = sq_r_readings,
	.r_device_counts = sq_r_device_counts,
	.r_ping = sq_r_ping,
};
