/*
 * store_sqlite_schema.c - the SQLite store's schema: the migrations from
 * an empty file (or any older version) to the current one, each in its own
 * transaction, recorded in `schema_version`. A file newer than this code is
 * refused. The format of the readings' chunks is docs/internals/storage.md.
 */
#include "store_sqlite_int.h"

#include "chunk.h"

#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <sqlite3.h>
#include <stdio.h>

struct sqlite_store;

/*
 * Each entry migrates from version i to i+1: SQL, then (if set) a C step
 * in the same transaction. Append only, never edit.
 */
struct migration {
	const char *sql;
	int (*convert)(struct sqlite_store *s);
};

static int readings_to_chunks(struct sqlite_store *s);
static int chunks_without_autoincrement(struct sqlite_store *s);

static const struct migration MIGRATIONS[] = {
	/* 0 -> 1: the initial schema */
	{
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
	NULL},
	/* 1 -> 2: a row the writer rewrites every second, so health reflects real writes */
	{"CREATE TABLE heartbeat(id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);", NULL},
	/*
	 * 2 -> 3: readings in per-device chunks (chunk.h): one row and one index
	 * entry per device and hour per transaction, merged by compaction
	 * once the hour is over. `at` is when the row was written; `compaction`
	 * remembers up to which chunk id compaction has looked, which works
	 * because AUTOINCREMENT never hands out an id again (until 9, below).
	 */
	{"CREATE TABLE reading_chunks("
	 " id INTEGER PRIMARY KEY AUTOINCREMENT,"
	 " device_id INTEGER NOT NULL,"
	 " ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL,"
	 " n INTEGER NOT NULL, at INTEGER NOT NULL,"
	 " meta BLOB NOT NULL, body TEXT NOT NULL);"
	 "CREATE INDEX reading_chunks_device_ts ON reading_chunks(device_id, ts_max);"
	 "CREATE TABLE compaction(id INTEGER PRIMARY KEY CHECK (id = 1), upto INTEGER NOT NULL);"
	 "INSERT INTO compaction VALUES (1, 0);",
	 readings_to_chunks},
	/* 3 -> 4: alerts and the rules' pending holds, and each device's rating */
	{SQA_MIGRATION, NULL},
	/* 4 -> 5: outboxes for alert mails and city summaries, and the summaries' progress */
	{SQO_MIGRATION, NULL},
	/*
	 * 5 -> 6: since when an agent has been up without a gap (the offline
	 * alerts); how many reminders an unacknowledged alert has had
	 */
	{"ALTER TABLE agents ADD COLUMN up_since INTEGER NOT NULL DEFAULT 0;"
	 "UPDATE agents SET up_since = state_at WHERE online = 1;"
	 "ALTER TABLE alerts ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0;",
	 NULL},
	/* 6 -> 7: the newest clear of each fault, so a late raise stays over across a restart */
	{SQA_MIGRATION_FAULT_CLEARS, NULL},
	/*
	 * 7 -> 8: chunks in the packed format (chunk.h, CHUNK_FMT_PACKED: varint
	 * entries) with bare readings (CHUNK_BARE: their head left out). Chunks
	 * already written stay as they are, fmt 0 (FIXED). A collector before
	 * this could read neither, so the version makes it refuse the file.
	 */
	{"ALTER TABLE reading_chunks ADD COLUMN fmt INTEGER NOT NULL DEFAULT 0;", NULL},
	/*
	 * 8 -> 9: chunk ids given by the writer (store_sqlite.c,
	 * W_CHUNK_NEXT_ID), above the table's highest and compaction's mark, so
	 * AUTOINCREMENT is no longer needed; its bookkeeping (sqlite_sequence,
	 * read and written by every INSERT) was a quarter of a chunk insert's
	 * instructions. An empty table (a new file) is made again without it; a
	 * table holding readings keeps the declaration (rewriting gigabytes for
	 * it is not worth it) and works the same.
	 */
	{"", chunks_without_autoincrement},
	/*
	 * 9 -> 10: each device's last_seen in a narrow table of its own. The
	 * writer rewrites it for every device heard from, every few seconds;
	 * beside the birth's meta in `devices` that rewrote most of a 100k-device
	 * table's pages per flush (~15 MB of WAL), here ~16 bytes a device. The
	 * index gives the site list and counts their (site, agent) without
	 * reading the wide rows.
	 */
	{"CREATE TABLE device_seen(id INTEGER PRIMARY KEY, last_seen INTEGER NOT NULL DEFAULT 0);"
	 "INSERT INTO device_seen(id, last_seen) SELECT id, last_seen FROM devices;"
	 "ALTER TABLE devices DROP COLUMN last_seen;"
	 "CREATE INDEX devices_site_agent ON devices(site, agent_id);",
	 NULL},
	/*
	 * 10 -> 11: the writer's look-up of a device it has not cached, from the
	 * index alone. Without it a look-up read the unique index, then the wide
	 * row (the birth's meta) in `devices`: at 100,000 devices a 12.5 MB table
	 * read at random, past the 4 MB page cache (docs/performance.md item 44).
	 * The unique index stays: it is the constraint. A row changes only when
	 * its device is made (birth or first reading) or a birth restates it, so
	 * the second index costs those, not a reading.
	 */
	{"CREATE INDEX devices_lookup ON devices(site, dev, agent_id, kind, ports, floor_min,"
	 " floor_max, rating);",
	 NULL},
	/*
	 * 11 -> 12: when each device's readings last arrived, in the collector's
	 * clock: a device's silence (online, the offline alerts) is measured from
	 * it, not from last_seen, its own clock, which may run behind or ahead.
	 * Rows from before start at last_seen, the best there is, but never after
	 * the migration's time: a clock that ran ahead would keep its device
	 * online, unalerted, until that time came.
	 */
	{"ALTER TABLE device_seen ADD COLUMN heard INTEGER NOT NULL DEFAULT 0;"
	 "UPDATE device_seen SET heard = min(last_seen,"
	 " CAST(strftime('%s', 'now') AS INTEGER) * 1000);",
	 NULL},
	/* 12 -> 13: the agents' progress log (store_sqlite_progress.c) */
	{SQP_MIGRATION, NULL},
	/*
	 * 13 -> 14: one site's alerts newest first (the API's list with a site,
	 * store_sqlite_alerts.c RA_LIST_SITE) without passing over every other
	 * site's: ~1 s per million alerts to build, once; an alert's insert
	 * writes one entry more (alerts are rare beside readings).
	 */
	{"CREATE INDEX alerts_site_opened ON alerts(site, opened_at);", NULL},
	/*
	 * 14 -> 15: each chunk's record kinds, a bit 1 << kind each
	 * (chunk_kind_bit), so a read for one kind (GET /api/v1/readings?t=)
	 * skips the chunks without it inside SQLite: without it a rare kind
	 * decoded a device's whole history (docs/performance.md item 55). Chunks
	 * already written keep NULL, "not known: read it": filling it would mean
	 * reading every chunk of a file of many GB. Compaction fills it for the
	 * ones it merges.
	 */
	{"ALTER TABLE reading_chunks ADD COLUMN kinds INTEGER;", NULL},
	/*
	 * 15 -> 16: alerts.remind_shift, how far steps forward of the
	 * collector's clock put an alert's reminders off (store_sqlite_alerts.c);
	 * 0 for the alerts already stored, whose reminders stay as they were
	 */
	{SQA_MIGRATION_REMIND_SHIFT, NULL},
	/*
	 * 16 -> 17: each agent's last_seen when its last drop began (its state
	 * offline, or a silence of agent_down_ms): a device already silent for
	 * device_offline_s by then is judged without the reconnect grace
	 * (offline.c). An agent offline now dropped after its last data; one
	 * online has no drop known (0), judged as before until its next.
	 */
	{"ALTER TABLE agents ADD COLUMN dropped_seen INTEGER NOT NULL DEFAULT 0;"
	 "UPDATE agents SET dropped_seen = last_seen WHERE online = 0;",
	 NULL},
	/* 17 -> 18: outbox.alert_id and outbox.reminder (store_sqlite_outbox.c) */
	{SQO_MIGRATION_MAIL_ORDER, NULL},
};
#define SCHEMA_VERSION ((int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])))

/*
 * Migration 2 -> 3: the rows of `readings` become chunks, a device at a
 * time in time order (so the chunks come out full), then the table goes.
 * Runs once, inside the migration's transaction; on a large store it takes
 * a while (logged).
 */
static int readings_to_chunks(struct sqlite_store *s)
{
	static const char *const sel = "SELECT device_id, ts, kind, agent_id, seq, body FROM readings "
				       "ORDER BY device_id, ts, id";
	/* the table as migration 3 made it: no fmt yet (FIXED, its default from 8 on) */
	static const char *const v3_ins =
		"INSERT INTO reading_chunks(device_id, ts_min, ts_max, n, at, meta, body, id) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	sqlite3_stmt *st = NULL, *ins = NULL;
	int64_t rows = 0;
	int rc = 0, step;

	if (sqlite3_prepare_v2(s->db, sel, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, v3_ins, -1, &ins, NULL) != SQLITE_OK) {
		rc = sqs_db_error(s, s->db, "prepare the readings migration");
		goto done;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct chunk_rec r = {
			.ts = sqlite3_column_int64(st, 1),
			.kind = sqlite3_column_int(st, 2),
			.agent_id = sqlite3_column_int64(st, 3),
			.seq = sqlite3_column_int64(st, 4),
			.body = (const char *)sqlite3_column_text(st, 5),
			.len = (size_t)sqlite3_column_bytes(st, 5),
		};
		/* `at` 0: old enough for compaction to merge what a flush split */
		if ((rc = chunk_batch_add(s->batch, sqlite3_column_int64(st, 0), &r)) ||
		    (chunk_batch_body_bytes(s->batch) >= BATCH_FLUSH_BYTES &&
		     (rc = sqs_write_chunks(s, s->batch, ins, CHUNK_FMT_FIXED, 0, NULL, 0))))
			goto done;
		rows++;
	}
	if (step != SQLITE_DONE) {
		rc = sqs_db_error(s, s->db, "read readings for the migration");
		goto done;
	}
	if ((rc = sqs_write_chunks(s, s->batch, ins, CHUNK_FMT_FIXED, 0, NULL, 0)))
		goto done;
	sqlite3_finalize(st);
	st = NULL;
	rc = sqs_exec(s->db, s->path, "DROP TABLE readings");
	if (rc == 0)
		SP_INFO("store", "%s: %lld readings moved into chunks", s->path, (long long)rows);
done:
	chunk_batch_reset(s->batch);
	sqlite3_finalize(st);
	sqlite3_finalize(ins);
	return rc;
}

int sqs_migrate(struct sqlite_store *s)
{
	sqlite3_stmt *st = NULL;
	int version = 0, rc;

	if ((rc = sqs_exec(s->db, s->path,
			   "CREATE TABLE IF NOT EXISTS schema_version("
			   "version INTEGER NOT NULL, applied_at INTEGER NOT NULL)")))
		return rc;
	if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1,
			       &st, NULL) != SQLITE_OK)
		return sqs_db_error(s, s->db, "read schema version");
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
		if ((rc = sqs_exec(s->db, s->path, "BEGIN")) ||
		    (rc = sqs_exec(s->db, s->path, MIGRATIONS[v].sql)) ||
		    (MIGRATIONS[v].convert && (rc = MIGRATIONS[v].convert(s))) ||
		    (rc = sqs_exec(s->db, s->path, record)) ||
		    (rc = sqs_exec(s->db, s->path, "COMMIT"))) {
			sqs_exec(s->db, s->path, "ROLLBACK");
			return rc;
		}
		SP_INFO("store", "%s: schema migrated to version %d", s->path, v + 1);
	}
	return 0;
}

static int chunks_without_autoincrement(struct sqlite_store *s)
{
	sqlite3_stmt *st = NULL;
	int empty = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT NOT EXISTS (SELECT 1 FROM reading_chunks)", -1, &st,
			       NULL) != SQLITE_OK)
		return sqs_db_error(s, s->db, "look at the readings chunks");
	if (sqlite3_step(st) == SQLITE_ROW)
		empty = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (!empty)
		return 0;
	return sqs_exec(s->db, s->path,
			"DROP TABLE reading_chunks;"
			"CREATE TABLE reading_chunks("
			" id INTEGER PRIMARY KEY,"
			" device_id INTEGER NOT NULL,"
			" ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL,"
			" n INTEGER NOT NULL, at INTEGER NOT NULL,"
			" meta BLOB NOT NULL, body TEXT NOT NULL,"
			" fmt INTEGER NOT NULL DEFAULT 0);"
			"CREATE INDEX reading_chunks_device_ts ON reading_chunks(device_id, ts_max);");
}

int sqs_schema_version(void)
{
	return SCHEMA_VERSION;
}
