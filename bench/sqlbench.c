/*
 * sqlbench.c - sp-sqlbench: SQLite alone, in the shape of the collector's
 * readings table, to tell the database's share of the cost from ours.
 *
 *   sp-sqlbench [--rows N] [--devices N] [--per-commit N] [--per-stmt N]
 *               [--no-index] [--checkpoint-pages N] [--sync full|normal] FILE
 *
 * Inserts N rows of a 200-byte body round-robin (by a stride) over the
 * devices, committing every --per-commit rows, with one prepared INSERT of
 * --per-stmt rows (a multi-row VALUES list when > 1). Prints one line:
 * microseconds of wall time per row. FILE and its -wal are replaced.
 */
#include <sqlite3.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BODY_BYTES 200
#define DEVICE_STRIDE 7919 /* a prime: consecutive rows go to scattered devices */

struct opts {
	long rows, devices, per_commit, per_stmt, checkpoint_pages;
	int index, sync_full;
	const char *path;
};

static double mono_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "sp-sqlbench: %s: %s\n", sql, err ? err : "?");
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: sp-sqlbench [--rows N] [--devices N] [--per-commit N] "
			"[--per-stmt N] [--no-index] [--checkpoint-pages N] "
			"[--sync full|normal] FILE\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{"rows", required_argument, NULL, 'r'},
		{"devices", required_argument, NULL, 'd'},
		{"per-commit", required_argument, NULL, 'c'},
		{"per-stmt", required_argument, NULL, 's'},
		{"no-index", no_argument, NULL, 'n'},
		{"checkpoint-pages", required_argument, NULL, 'p'},
		{"sync", required_argument, NULL, 'y'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct opts){400000, 1000, 40000, 1, 1000, 1, 1, NULL};
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'r': o->rows = atol(optarg); break;
		case 'd': o->devices = atol(optarg); break;
		case 'c': o->per_commit = atol(optarg); break;
		case 's': o->per_stmt = atol(optarg); break;
		case 'n': o->index = 0; break;
		case 'p': o->checkpoint_pages = atol(optarg); break;
		case 'y': o->sync_full = strcmp(optarg, "normal") != 0; break;
		default: return -1;
		}
	}
	if (optind != argc - 1 || o->rows < 1 || o->rows > 100000000 || o->devices < 1 ||
	    o->per_commit < 1 || o->per_stmt < 1 || o->per_stmt > 100 || o->checkpoint_pages < 0)
		return -1;
	o->path = argv[optind];
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *sql = NULL, wal[4096], body[BODY_BYTES];
	int rc = 1;

	if (parse(argc, argv, &o)) {
		usage();
		return 2;
	}
	snprintf(wal, sizeof(wal), "%s-wal", o.path);
	unlink(o.path);
	unlink(wal);
	if (sqlite3_open(o.path, &db) != SQLITE_OK) {
		fprintf(stderr, "sp-sqlbench: cannot open %s\n", o.path);
		goto out;
	}
	if (exec(db, "PRAGMA journal_mode = WAL") ||
	    exec(db, o.sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL") ||
	    exec(db, "PRAGMA cache_size = -8192") ||
	    exec(db, "CREATE TABLE readings(id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL,"
		     " ts INTEGER NOT NULL, kind INTEGER NOT NULL, agent_id INTEGER NOT NULL,"
		     " seq INTEGER NOT NULL, body TEXT NOT NULL)") ||
	    (o.index && exec(db, "CREATE INDEX readings_device_ts ON readings(device_id, ts)")))
		goto out;
	sqlite3_wal_autocheckpoint(db, (int)o.checkpoint_pages);

	static const char head[] = "INSERT INTO readings(device_id, ts, kind, agent_id, seq, body) VALUES ";
	static const char tuple[] = ",(?,?,?,?,?,?)";
	size_t cap = sizeof(head) + (size_t)o.per_stmt * sizeof(tuple);
	sql = malloc(cap);
	if (sql == NULL)
		goto out;
	strcpy(sql, head);
	for (long i = 0; i < o.per_stmt; i++)
		strcat(sql, i == 0 ? tuple + 1 : tuple);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "sp-sqlbench: prepare: %s\n", sqlite3_errmsg(db));
		goto out;
	}
	memset(body, 'x', sizeof(body));
	const sqlite3_int64 ts0 = 1764320000000LL;
	double t0 = mono_s();
	if (exec(db, "BEGIN"))
		goto out;
	long done = 0, in_txn = 0;
	while (done + o.per_stmt <= o.rows) {
		for (long j = 0; j < o.per_stmt; j++) {
			long i = done + j;
			int p = (int)j * 6;
			sqlite3_bind_int64(st, p + 1, (i * DEVICE_STRIDE) % o.devices + 1);
			sqlite3_bind_int64(st, p + 2, ts0 + i);
			sqlite3_bind_int(st, p + 3, 1);
			sqlite3_bind_int64(st, p + 4, 1);
			sqlite3_bind_int64(st, p + 5, i / 20);
			sqlite3_bind_text(st, p + 6, body, sizeof(body), SQLITE_STATIC);
		}
		if (sqlite3_step(st) != SQLITE_DONE) {
			fprintf(stderr, "sp-sqlbench: insert: %s\n", sqlite3_errmsg(db));
			goto out;
		}
		sqlite3_reset(st);
		done += o.per_stmt;
		in_txn += o.per_stmt;
		if (in_txn >= o.per_commit) {
			if (exec(db, "COMMIT") || exec(db, "BEGIN"))
				goto out;
			in_txn = 0;
		}
	}
	if (exec(db, "COMMIT"))
		goto out;
	double secs = mono_s() - t0;
	printf("rows %ld, devices %ld, per commit %ld, per statement %ld, index %s, checkpoint "
	       "every %ld pages: %.2f us/row\n",
	       done, o.devices, o.per_commit, o.per_stmt, o.index ? "yes" : "no", o.checkpoint_pages,
	       secs * 1e6 / (double)done);
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(sql);
	unlink(o.path);
	unlink(wal);
	return rc;
}
