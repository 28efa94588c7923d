/*
 * test_walbuf.c - the writer's WAL buffer (store_sqlite_walbuf.c) on real
 * SQLite files: each commit is in the file before another connection can
 * see it, the writes are actually gathered, frames spilled by a transaction
 * that rolls back never land on another connection's commit, and the file
 * stays whole through checkpoints, truncation and reopening.
 */
#include "harness.h"

#include "store_sqlite_walbuf.h"

#include <sqlite3.h>
#include <stdio.h>

static int exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fprintf(stderr, "  %s: %s\n", sql, err ? err : sqlite3_errstr(rc));
	sqlite3_free(err);
	return rc;
}

static long long one_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int integrity_ok(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int ok = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ok;
}

/* The writer's connection, as the store opens it: through the buffer, WAL, FULL. */
static sqlite3 *open_writer(const char *path, struct walbuf *w, int cache_pages)
{
	sqlite3 *db = NULL;
	char pragma[64];
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    walbuf_vfs_name(w)) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = %d", cache_pages);
	if (exec(db, "PRAGMA journal_mode = WAL") || exec(db, "PRAGMA synchronous = FULL") ||
	    exec(db, pragma)) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static sqlite3 *open_plain(const char *path)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 2000);
	return db;
}

/* Inserts n rows of `bytes` random bytes each, tagged tag. */
static int insert_rows(sqlite3 *db, const char *tag, int n, int bytes)
{
	char sql[160];
	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %d)"
		 " INSERT INTO t(tag, v) SELECT '%s', randomblob(%d) FROM k",
		 n, tag, bytes);
	return exec(db, sql);
}

/*
 * A new file and a writer's connection to it through a new buffer of `bytes`,
 * with table t; NULL on failure (*w then may be NULL too).
 */
static sqlite3 *setup(struct walbuf **w, char *path, size_t size, size_t bytes, int cache_pages)
{
	harness_tmp_file(path, size, "test_walbuf", "db");
	*w = walbuf_create(bytes);
	CHECK(*w != NULL);
	sqlite3 *db = *w ? open_writer(path, *w, cache_pages) : NULL;
	CHECK(db != NULL);
	if (db && exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, tag TEXT, v BLOB)") != SQLITE_OK) {
		CHECK(!"table t created");
		sqlite3_close(db);
		db = NULL;
	}
	return db;
}

static void teardown(sqlite3 *db, struct walbuf *w, const char *path)
{
	sqlite3_close(db);
	walbuf_destroy(w);
	harness_remove_db(path);
}

/* ---------------------------------------------------------------- tests */

/* Each commit is readable by another connection at once; its writes were gathered. */
static void test_commits_visible_and_gathered(void)
{
	char path[512];
	struct walbuf_stats st;
	struct walbuf *w;
	sqlite3 *wdb = setup(&w, path, sizeof(path), 2 * 1024 * 1024, 2000);
	sqlite3 *rdb = wdb ? open_plain(path) : NULL;
	CHECK(rdb != NULL);
	for (int i = 1; i <= 20 && rdb; i++) {
		CHECK_EQ_INT(exec(wdb, "BEGIN IMMEDIATE"), SQLITE_OK);
		CHECK_EQ_INT(insert_rows(wdb, "w", 40, 600), SQLITE_OK);
		CHECK_EQ_INT(exec(wdb, "COMMIT"), SQLITE_OK);
		/* a plain connection, its own descriptor: the commit's frames are in the file */
		CHECK_EQ_INT(one_int(rdb, "SELECT count(*) FROM t"), 40 * i);
		CHECK_EQ_INT(one_int(rdb, "SELECT sum(length(v)) FROM t"), 40LL * 600 * i);
	}
	if (rdb == NULL)
		goto out;
	walbuf_stats(w, &st);
	/* ~8 frames a commit, two SQLite writes each: gathered into one write per commit */
	CHECK(st.wal_writes >= 20 * 2 * 8);
	CHECK(st.file_writes > 0 && st.file_writes * 8 <= st.wal_writes);
	/* a commit bigger than one write takes (the unix VFS's limit is below 128 KB) */
	CHECK_EQ_INT(exec(wdb, "BEGIN IMMEDIATE"), SQLITE_OK);
	CHECK_EQ_INT(insert_rows(wdb, "big", 400, 3000), SQLITE_OK);
	CHECK_EQ_INT(exec(wdb, "COMMIT"), SQLITE_OK);
	CHECK_EQ_INT(one_int(rdb, "SELECT sum(length(v)) FROM t WHERE tag = 'big'"), 400LL * 3000);
	CHECK(integrity_ok(path));
out:
	sqlite3_close(rdb);
	teardown(wdb, w, path);
}

/*
 * A transaction whose pages spill into the WAL and which then rolls back
 * leaves buffered frames where the next writer, another connection, writes
 * its commit: they must be written (or dropped) before that, never after.
 */
static void test_rolled_back_spill_never_lands_on_a_commit(void)
{
	char path[512];
	struct walbuf_stats before, after;
	struct walbuf *w;
	/* 16 pages of cache: a 40-page transaction spills */
	sqlite3 *wdb = setup(&w, path, sizeof(path), 1024 * 1024, 16), *odb = NULL;
	if (wdb == NULL)
		goto out;
	CHECK_EQ_INT(insert_rows(wdb, "base", 10, 100), SQLITE_OK);
	odb = open_plain(path);
	CHECK(odb != NULL);
	if (odb == NULL)
		goto out;

	walbuf_stats(w, &before);
	CHECK_EQ_INT(exec(wdb, "BEGIN IMMEDIATE"), SQLITE_OK);
	CHECK_EQ_INT(insert_rows(wdb, "gone", 40, 3000), SQLITE_OK);
	walbuf_stats(w, &after);
	CHECK(after.wal_writes > before.wal_writes); /* it did spill (else this tests nothing) */
	CHECK(after.file_writes == before.file_writes); /* ... into the buffer */
	CHECK_EQ_INT(exec(wdb, "ROLLBACK"), SQLITE_OK);

	/* the other connection commits where the rolled-back frames were */
	CHECK_EQ_INT(exec(odb, "BEGIN IMMEDIATE"), SQLITE_OK);
	CHECK_EQ_INT(insert_rows(odb, "other", 5, 2000), SQLITE_OK);
	CHECK_EQ_INT(exec(odb, "COMMIT"), SQLITE_OK);
	/* the writer commits after it, then everything is read back by a third connection */
	CHECK_EQ_INT(exec(wdb, "BEGIN IMMEDIATE"), SQLITE_OK);
	CHECK_EQ_INT(insert_rows(wdb, "after", 3, 100), SQLITE_OK);
	CHECK_EQ_INT(exec(wdb, "COMMIT"), SQLITE_OK);

	sqlite3 *rdb = open_plain(path);
	CHECK(rdb != NULL);
	CHECK_EQ_INT(one_int(rdb, "SELECT count(*) FROM t WHERE tag = 'gone'"), 0);
	CHECK_EQ_INT(one_int(rdb, "SELECT count(*) FROM t WHERE tag = 'other'"), 5);
	CHECK_EQ_INT(one_int(rdb, "SELECT sum(length(v)) FROM t WHERE tag = 'other'"), 5 * 2000);
	CHECK_EQ_INT(one_int(rdb, "SELECT count(*) FROM t WHERE tag = 'after'"), 3);
	CHECK_EQ_INT(one_int(rdb, "SELECT count(*) FROM t"), 10 + 5 + 3);
	sqlite3_close(rdb);
	CHECK(integrity_ok(path));
	/* and after a checkpoint folded the WAL into the file */
	CHECK_EQ_INT(exec(odb, "PRAGMA wal_checkpoint(TRUNCATE)"), SQLITE_OK);
	CHECK(integrity_ok(path));
out:
	sqlite3_close(odb);
	teardown(wdb, w, path);
}

/*
 * Checkpoints (truncating the WAL), a buffer smaller than a frame, and a
 * close and reopen: the data written is the data read.
 */
static void test_checkpoints_small_buffer_reopen(void)
{
	char path[512];
	struct walbuf *w;
	/* a buffer smaller than a page: pages are written at once */
	sqlite3 *wdb = setup(&w, path, sizeof(path), 1000, 2000);
	if (wdb == NULL)
		goto out;
	for (int i = 0; i < 6; i++) {
		CHECK_EQ_INT(insert_rows(wdb, "x", 30, 700), SQLITE_OK);
		if (i % 2)
			CHECK_EQ_INT(exec(wdb, "PRAGMA wal_checkpoint(TRUNCATE)"), SQLITE_OK);
	}
	CHECK_EQ_INT(exec(wdb, "UPDATE t SET v = zeroblob(700) WHERE id % 3 = 0"), SQLITE_OK);
	sqlite3_close(wdb);
	wdb = NULL;
	CHECK(integrity_ok(path));
	sqlite3 *rdb = open_plain(path);
	CHECK(rdb != NULL);
	CHECK_EQ_INT(one_int(rdb, "SELECT count(*) FROM t"), 180);
	CHECK_EQ_INT(one_int(rdb, "SELECT count(*) FROM t WHERE v = zeroblob(700)"), 60);
	sqlite3_close(rdb);
	/* the same instance serves a new connection once the first is closed */
	wdb = open_writer(path, w, 2000);
	CHECK(wdb != NULL);
	CHECK_EQ_INT(insert_rows(wdb, "y", 5, 10), SQLITE_OK);
	CHECK_EQ_INT(one_int(wdb, "SELECT count(*) FROM t"), 185);
out:
	teardown(wdb, w, path);
}

/* One instance serves one connection: a second at the same time is refused. */
static void test_one_connection_per_instance(void)
{
	char path[512];
	struct walbuf *w;
	sqlite3 *a = setup(&w, path, sizeof(path), 64 * 1024, 100), *b = NULL;
	if (a != NULL)
		CHECK(sqlite3_open_v2(path, &b, SQLITE_OPEN_READWRITE, walbuf_vfs_name(w)) !=
		      SQLITE_OK);
	sqlite3_close(b);
	teardown(a, w, path);
}

int main(void)
{
	RUN(test_commits_visible_and_gathered);
	RUN(test_rolled_back_spill_never_lands_on_a_commit);
	RUN(test_checkpoints_small_buffer_reopen);
	RUN(test_one_connection_per_instance);
	HARNESS_EXIT();
}
