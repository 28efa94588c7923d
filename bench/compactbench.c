/*
 * compactbench.c - sp-compactbench: whether compaction keeps up with a
 * sustained chunk rate, through the collector's own store (collector/store.h).
 *
 * A device reporting between two commits gets a chunk of its own per commit,
 * so chunks are written at (devices active per commit) x (commits per
 * second). This tool writes, for --seconds "seconds", --commits commits a
 * second of one one-reading chunk per device for --devices devices, in an
 * hour that is over (another each second; --same-hour: always the same, so
 * new chunks keep landing in the (device, hour)s being merged), every chunk
 * due at once (compaction is asked as if two hours had passed). After each
 * second's commits it runs compaction as the writer schedules it
 * (collector/writer.c, COMPACT_*; repeated here, they are static there):
 * passes of at most 4,096 chunks and 50 ms, one after another while the store
 * says chunks due are left over, as long as their time times 5 fits in the
 * second (the writer rests 4 x a pass's time after it: at most a fifth of its
 * time); --once: one pass a second, the cadence before 2026-12. The seconds
 * are the tool's, not the clock's: writing and compacting take what they take.
 *
 * Prints a line per second on stderr (passes, backlog, upto, rows: read
 * through a read-only connection of its own, as the tests read the file) and
 * one JSON object on stdout. Single-threaded. Exit status 0 done, 1 failure, 2 bad
 * command line.
 */
#include "store.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"

#include <getopt.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PASS_BUDGET 4096 /* writer.c COMPACT_BUDGET */
#define PASS_MAX_MS 50   /* COMPACT_MAX_MS */
#define PASS_REST   4    /* COMPACT_REST */
#define HOUR_MS     3600000LL

struct options {
	const char *db;
	long devices, commits, seconds;
	bool same_hour, once, sync_full;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sp-compactbench --db PATH [--devices N (2000)] [--commits N (3)]\n"
		"                       [--seconds N (20)] [--same-hour] [--once] [--sync-full]\n"
		"The file at PATH is replaced, and removed at the end.\n");
}

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* One value from the file, through a connection of its own (the store's are its own). */
static int64_t sql_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static int make_devices(struct store *s, long n, int64_t *agent_id, int64_t *ids)
{
	int rc = store_w_begin(s);
	if (rc)
		return rc;
	rc = store_w_agent(s, "bench", "gw-1", agent_id);
	for (long i = 0; rc == 0 && i < n; i++) {
		char dev[32];
		struct store_device d;
		snprintf(dev, sizeof(dev), "lift-%06ld", i);
		if ((rc = store_w_upsert_device(s, "bench", dev, *agent_id, NULL, SP_DEV_LIFT, NULL,
						&d)) == 0)
			ids[i] = d.id;
	}
	if (rc) {
		store_w_rollback(s);
		return rc;
	}
	return store_w_commit(s);
}

static int write_commit(struct store *s, const struct options *o, int64_t agent_id,
			const int64_t *ids, int64_t seq, int64_t ts)
{
	static const char body[] = "{\"floor\":3,\"moving\":false}";
	int rc = store_w_begin(s);
	if (rc)
		return rc;
	for (long i = 0; rc == 0 && i < o->devices; i++)
		rc = store_w_reading(s, ids[i], agent_id, seq, SP_REC_LIFT, ts, body,
				     sizeof(body) - 1);
	if (rc) {
		store_w_rollback(s);
		return rc;
	}
	return store_w_commit(s);
}

/* One pass as the writer runs it; *us its wall time, begin to commit. */
static int pass(struct store *s, int64_t now, struct store_compaction *c, int64_t *us)
{
	int64_t t0 = sp_mono_us();
	int rc = store_w_begin(s);
	if (rc)
		return rc;
	if ((rc = store_w_compact(s, now, PASS_BUDGET, PASS_MAX_MS, c))) {
		store_w_rollback(s);
		return rc;
	}
	rc = store_w_commit(s);
	*us = sp_mono_us() - t0;
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = {NULL, 2000, 3, 20, false, false, false};
	static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
					     {"devices", required_argument, NULL, 'n'},
					     {"commits", required_argument, NULL, 'c'},
					     {"seconds", required_argument, NULL, 's'},
					     {"same-hour", no_argument, NULL, 'H'},
					     {"once", no_argument, NULL, 'o'},
					     {"sync-full", no_argument, NULL, 'f'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int opt;
	bool ok = true;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': o.db = optarg; break;
		case 'n': ok &= parse_long(optarg, 1, 1000000, &o.devices); break;
		case 'c': ok &= parse_long(optarg, 1, 1000, &o.commits); break;
		case 's': ok &= parse_long(optarg, 1, 3600, &o.seconds); break;
		case 'H': o.same_hour = true; break;
		case 'o': o.once = true; break;
		case 'f': o.sync_full = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!ok || o.db == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	unlink(o.db);
	struct store_params p = {.path = o.db, .sync_full = o.sync_full, .readers = 1};
	struct store *s = store_open(&p);
	int64_t *ids = calloc((size_t)o.devices, sizeof(*ids)), agent_id = 0;
	int status = 1, rc = 0;
	if (s == NULL || ids == NULL || (rc = make_devices(s, o.devices, &agent_id, ids)))
		goto out;
	/* every chunk due: compaction asked two hours on, readings in hours over by then */
	int64_t later = sp_now_ms() + 2 * HOUR_MS, hour0 = (sp_now_ms() / HOUR_MS - 48) * HOUR_MS;
	int64_t write_us = 0, compact_us = 0, max_pass_us = 0, passes = 0, merged = 0;
	struct store_compaction c = {0};
	for (long sec = 0; sec < o.seconds; sec++) {
		int64_t t0 = sp_mono_us(), ts = (o.same_hour ? hour0 : hour0 - sec * HOUR_MS) + sec;
		for (long k = 0; k < o.commits; k++)
			if ((rc = write_commit(s, &o, agent_id, ids, sec * o.commits + k + 1, ts)))
				goto out;
		write_us += sp_mono_us() - t0;
		/* the writer's share: passes while behind, their time x (1 + rest) within the
		 * second */
		int64_t used_us = 0, us = 0;
		int npass = 0;
		do {
			if ((rc = pass(s, later, &c, &us)))
				goto out;
			npass++;
			merged += c.merged;
			compact_us += us;
			if (us > max_pass_us)
				max_pass_us = us;
			used_us += us * (1 + PASS_REST);
		} while (!o.once && c.more && used_us < 1000000);
		passes += npass;
		fprintf(stderr,
			"second %ld: %d passes, backlog %lld chunks, upto %lld, max id %lld, rows "
			"%lld\n",
			sec, npass, (long long)c.backlog,
			(long long)sql_int(o.db, "SELECT upto FROM compaction"),
			(long long)sql_int(o.db, "SELECT max(id) FROM reading_chunks"),
			(long long)sql_int(o.db, "SELECT count(*) FROM reading_chunks"));
	}
	int64_t written = o.devices * o.commits * o.seconds;
	printf("{\"devices\":%ld,\"commits_per_s\":%ld,\"seconds\":%ld,\"same_hour\":%s,"
	       "\"cadence\":\"%s\",\"chunks_written\":%lld,\"chunks_merged\":%lld,\"passes\":%lld,"
	       "\"write_ms\":%.0f,\"compact_ms\":%.0f,\"max_pass_ms\":%.1f,"
	       "\"us_per_merged_chunk\":%.2f,\"backlog_end\":%lld,\"rows_end\":%lld}\n",
	       o.devices, o.commits, o.seconds, o.same_hour ? "true" : "false",
	       o.once ? "once a second" : "writer", (long long)written, (long long)merged,
	       (long long)passes, (double)write_us / 1000.0, (double)compact_us / 1000.0,
	       (double)max_pass_us / 1000.0, merged > 0 ? (double)compact_us / (double)merged : 0.0,
	       (long long)c.backlog,
	       (long long)sql_int(o.db, "SELECT count(*) FROM reading_chunks"));
	status = 0;
out:
	if (rc)
		fprintf(stderr, "sp-compactbench: %s\n", sp_strerror(rc));
	else if (status && s == NULL)
		fprintf(stderr, "sp-compactbench: cannot open %s\n", o.db);
	free(ids);
	if (s)
		store_close(s);
	if (o.db) {
		char side[4096];
		unlink(o.db);
		snprintf(side, sizeof(side), "%s-wal", o.db);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", o.db);
		unlink(side);
	}
	return status;
}
