/*
 * gendb.c - sp-gendb: builds a collector database holding weeks of history,
 * for the API latency benchmark (see bench/README.md).
 *
 * The database is written through the collector's own storage interface
 * (collector/store.h), so its schema, indexes and pragmas are exactly the
 * collector's. Layout: SITES sites, one agent "gw-1" per site, LIFTS lifts
 * and CHARGERS chargers dealt round-robin over the sites; one reading per
 * device per INTERVAL for DAYS days up to now, each the canonical body the
 * collector itself stores (sp_encode_record). Readings are written in time
 * order, minute after minute for all devices, as the collector writes them
 * from a live fleet, so rows of one device are spread over the file the way
 * they are in production. The minute's readings of one site count as one
 * data message of its agent (seq = minute + 1), and each agent's ack state
 * says all of them are stored, so a collector started on the file agrees.
 *
 * Readings are stored in per-device chunks (collector/chunk.h) that the
 * collector's compaction merges an hour after they were written. The file
 * is left as a running collector would leave it: everything older than the
 * last --live-minutes (65) compacted (timed, and reported), the last ones
 * written one interval per transaction, as small as live traffic leaves
 * them. --compact-live then compacts those too and reports that apart: the
 * cost of compacting what live traffic wrote (CPU and wall time).
 *
 * Single-threaded. Output: progress on stderr, one JSON line on stdout.
 * Exit status 0 done, 1 failure, 2 bad command line.
 */
#include "store.h"
#include "synth.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/codec.h"
#include "sitepulse/conf.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROWS_PER_TXN 100000
#define COMPACT_BUDGET 65536

struct options {
	const char *db;
	long sites, lifts, chargers, days, interval_s, cache_mb, page_kb, live_minutes;
	unsigned long seed;
	bool compact_live;
};

struct device {
	char site[SP_ID_MAX + 1];
	char dev[SP_ID_MAX + 1];
	bool lift;
	int64_t id;
	int64_t agent_id;
};

struct gendb {
	struct options o;
	struct store *store;
	struct device *devs;
	long ndevs;
	int64_t *agent_ids;        /* per site */
	struct synth rng;
	struct sp_buf body;
	long long rows;
	int64_t merged;            /* chunks compaction merged */
	double compact_s;          /* and how long it took */
	int64_t live_merged;       /* the same for the live tail (--compact-live) */
	double live_compact_s, live_compact_cpu_s;
};

/* ---------------------------------------------------------------- command line */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sp-gendb --db PATH [options]\n"
		"  --db PATH          database to create (must not exist)\n"
		"  --days N           days of history up to now (30)\n"
		"  --lifts N          lifts (500)\n"
		"  --chargers N       chargers (500)\n"
		"  --sites N          sites, one agent each; devices dealt round-robin (10)\n"
		"  --interval-s S     one reading per device every S seconds (60)\n"
		"  --cache-mb N       SQLite page cache while building (256)\n"
		"  --page-kb N        page size of the file, as the collector's [store] page_kb ("
		SP_CONF_DEFAULT(STORE_PAGE_KB_DEFAULT) ")\n"
		"  --seed N           value generator seed (1)\n"
		"  --live-minutes N   the newest N minutes are written one interval per\n"
		"                     transaction and not compacted (65)\n"
		"  --compact-live     then compact them too, timed apart\n"
		"Prints one JSON object (devices, readings, seconds, bytes) on stdout.\n");
}

static int parse_long(const char *name, const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "sp-gendb: --%s: expected an integer in %ld..%ld, got '%s'\n", name, min,
			max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},       {"days", required_argument, NULL, 'D'},
		{"lifts", required_argument, NULL, 'l'},    {"chargers", required_argument, NULL, 'c'},
		{"sites", required_argument, NULL, 's'},    {"interval-s", required_argument, NULL, 'i'},
		{"cache-mb", required_argument, NULL, 'm'}, {"seed", required_argument, NULL, 'S'},
		{"page-kb", required_argument, NULL, 'P'},
		{"live-minutes", required_argument, NULL, 'L'},
		{"compact-live", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
	long v;
	int opt, bad = 0;

	*o = (struct options){.sites = 10, .lifts = 500, .chargers = 500, .days = 30,
			      .interval_s = 60, .cache_mb = 256, .page_kb = STORE_PAGE_KB_DEFAULT,
			      .seed = 1, .live_minutes = 65};
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': o->db = optarg; break;
		case 'D': bad |= parse_long("days", optarg, 1, 3650, &o->days); break;
		case 'l': bad |= parse_long("lifts", optarg, 0, 1000000, &o->lifts); break;
		case 'c': bad |= parse_long("chargers", optarg, 0, 1000000, &o->chargers); break;
		case 's': bad |= parse_long("sites", optarg, 1, 100000, &o->sites); break;
		case 'i': bad |= parse_long("interval-s", optarg, 1, 86400, &o->interval_s); break;
		case 'm': bad |= parse_long("cache-mb", optarg, 1, 65536, &o->cache_mb); break;
		case 'P':
			bad |= parse_long("page-kb", optarg, 1, 64, &o->page_kb);
			if (o->page_kb & (o->page_kb - 1)) {
				fprintf(stderr, "sp-gendb: --page-kb must be a power of two\n");
				bad = -1;
			}
			break;
		case 'S': bad |= parse_long("seed", optarg, 0, 1L << 30, &v); o->seed = (unsigned long)v; break;
		case 'L': bad |= parse_long("live-minutes", optarg, 0, 1000000, &o->live_minutes); break;
		case 'C': o->compact_live = true; break;
		case 'h': usage(stdout); exit(0);
		default: bad = -1; break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sp-gendb: unexpected argument '%s'\n", argv[optind]);
		bad = -1;
	}
	if (o->db == NULL) {
		fprintf(stderr, "sp-gendb: --db PATH is required\n");
		bad = -1;
	} else if (access(o->db, F_OK) == 0) {
		fprintf(stderr, "sp-gendb: %s exists; remove it first (the database must be fresh)\n",
			o->db);
		bad = -1;
	}
	if (o->lifts + o->chargers < 1) {
		fprintf(stderr, "sp-gendb: at least one device is needed\n");
		bad = -1;
	}
	return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- building */

/* Sites, their agents and the devices, as births would have left them. */
static int create_inventory(struct gendb *g, int64_t now)
{
	struct sp_buf meta = SP_BUF_INIT(0);
	int rc;

	g->ndevs = g->o.lifts + g->o.chargers;
	g->devs = calloc((size_t)g->ndevs, sizeof(*g->devs));
	g->agent_ids = calloc((size_t)g->o.sites, sizeof(*g->agent_ids));
	if (g->devs == NULL || g->agent_ids == NULL)
		return SP_ENOMEM;
	if ((rc = store_w_begin(g->store)))
		return rc;
	for (long s = 0; s < g->o.sites; s++) {
		char site[SP_ID_MAX + 1];
		snprintf(site, sizeof(site), "site-%03ld", s + 1);
		if ((rc = store_w_agent(g->store, site, "gw-1", &g->agent_ids[s])) ||
		    (rc = store_w_agent_birth(g->store, g->agent_ids[s], now, "bench-1.0", now)) ||
		    (rc = store_w_agent_state(g->store, g->agent_ids[s], true, now)))
			goto out;
	}
	for (long i = 0; i < g->ndevs; i++) {
		struct device *d = &g->devs[i];
		struct sp_device_info info;
		struct store_device row;
		long site = i % g->o.sites;
		d->lift = i < g->o.lifts;
		snprintf(d->site, sizeof(d->site), "site-%03ld", site + 1);
		if (d->lift)
			snprintf(d->dev, sizeof(d->dev), "lift-%04ld", i + 1);
		else
			snprintf(d->dev, sizeof(d->dev), "chg-%04ld", i - g->o.lifts + 1);
		d->agent_id = g->agent_ids[site];
		synth_device(&info, d->dev, d->lift);
		sp_buf_reset(&meta);
		if ((rc = sp_encode_device_info(&meta, &info)) ||
		    (rc = store_w_upsert_device(g->store, d->site, d->dev, d->agent_id, &info,
						info.kind, meta.data, &row)))
			goto out;
		d->id = row.id;
	}
	rc = store_w_commit(g->store);
out:
	if (rc)
		store_w_rollback(g->store);
	sp_buf_free(&meta);
	return rc;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Compacts everything written so far, as the collector does an hour later. */
static int compact_all(struct gendb *g, int64_t *merged_total, double *wall_s, double *cpu_s)
{
	int64_t t0 = sp_mono_ms(), later = sp_now_ms() + 2 * 3600 * 1000;
	double cpu0 = cpu_seconds();
	struct store_compaction c;
	int rc;
	do {
		if ((rc = store_w_begin(g->store)))
			return rc;
		if ((rc = store_w_compact(g->store, later, COMPACT_BUDGET, -1, &c))) {
			store_w_rollback(g->store);
			return rc;
		}
		if ((rc = store_w_commit(g->store)))
			return rc;
		*merged_total += c.merged;
	} while (c.looked > 0);
	*wall_s = (double)(sp_mono_ms() - t0) / 1000.0;
	if (cpu_s)
		*cpu_s = cpu_seconds() - cpu0;
	return 0;
}

static int write_readings(struct gendb *g, int64_t start, int64_t steps)
{
	int64_t interval_ms = g->o.interval_s * 1000;
	int64_t live_from = steps - (g->o.live_minutes * 60 + g->o.interval_s - 1) / g->o.interval_s;
	long long in_txn = 0, total = (long long)steps * g->ndevs;
	int last_pct = -1;
	struct sp_record r;
	int rc;

	if (live_from < 0)
		live_from = 0;
	if ((rc = store_w_begin(g->store)))
		return rc;
	for (int64_t m = 0; m < steps; m++) {
		if (m == live_from) {
			if ((rc = store_w_commit(g->store)) ||
			    (rc = compact_all(g, &g->merged, &g->compact_s, NULL)) ||
			    (rc = store_w_begin(g->store)))
				return rc;
			in_txn = 0;
		}
		for (long i = 0; i < g->ndevs; i++) {
			struct device *d = &g->devs[i];
			/* devices report at their own second of the minute */
			int64_t ts = start + m * interval_ms + (i * 997) % interval_ms;
			synth_record(&g->rng, &r, d->dev, d->lift, ts, (uint64_t)m);
			sp_buf_reset(&g->body);
			if ((rc = sp_encode_record_tail(&g->body, &r)) ||
			    (rc = store_w_reading_tail(g->store, d->id, d->agent_id, m + 1, r.kind,
						       ts, g->body.data, g->body.len)))
				goto fail;
			g->rows++;
			in_txn++;
		}
		if (in_txn >= ROWS_PER_TXN || m >= live_from) {
			if ((rc = store_w_commit(g->store)) || (rc = store_w_begin(g->store)))
				return rc;
			in_txn = 0;
		}
		int pct = (int)(g->rows * 100 / total);
		if (pct / 10 != last_pct / 10) {
			fprintf(stderr, "sp-gendb: %d %% (%lld readings)\n", pct, g->rows);
			last_pct = pct;
		}
	}
	/* what a collector would have recorded after the last minute */
	int64_t last = start + (steps - 1) * interval_ms + interval_ms - 1;
	struct store_agent_progress p = {steps, "", "", 0};
	for (long s = 0; s < g->o.sites; s++)
		if ((rc = store_w_save_progress(g->store, g->agent_ids[s], &p)) ||
		    (rc = store_w_agent_seen(g->store, g->agent_ids[s], last)))
			goto fail;
	for (long i = 0; i < g->ndevs; i++) {
		int64_t seen = last - interval_ms + 1 + (i * 997) % interval_ms;
		if ((rc = store_w_device_seen(g->store, g->devs[i].id, seen, seen)))
			goto fail;
	}
	return store_w_commit(g->store);
fail:
	store_w_rollback(g->store);
	return rc;
}

static void gendb_free(struct gendb *g)
{
	store_close(g->store);
	free(g->devs);
	free(g->agent_ids);
	sp_buf_free(&g->body);
}

int main(int argc, char **argv)
{
	struct gendb g;
	struct stat st;
	int rc;

	memset(&g, 0, sizeof(g));
	if (parse_options(argc, argv, &g.o)) {
		fprintf(stderr, "Try 'sp-gendb --help'.\n");
		return 2;
	}
	sp_log_set_level(SP_LOG_WARN);
	synth_seed(&g.rng, g.o.seed);

	/* synchronous=NORMAL: a build that crashes is simply run again */
	struct store_params sp = {.path = g.o.db, .readers = 1, .cache_mb = g.o.cache_mb,
				  .page_kb = g.o.page_kb};
	int64_t t0 = sp_mono_ms();
	int64_t interval_ms = g.o.interval_s * 1000;
	int64_t steps = g.o.days * 86400 / g.o.interval_s;
	int64_t end = sp_now_ms() / interval_ms * interval_ms;
	int64_t start = end - steps * interval_ms;

	if ((g.store = store_open(&sp)) == NULL) {
		rc = SP_EIO;
		goto out;
	}
	if ((rc = create_inventory(&g, end)) || (rc = write_readings(&g, start, steps)))
		goto out;
	if (g.o.compact_live && (rc = compact_all(&g, &g.live_merged, &g.live_compact_s,
						   &g.live_compact_cpu_s)))
		goto out;
	store_close(g.store); /* folds the WAL into the file */
	g.store = NULL;
	if (stat(g.o.db, &st) != 0)
		st.st_size = 0;
	printf("{\"db\":\"%s\",\"sites\":%ld,\"devices\":%ld,\"lifts\":%ld,\"chargers\":%ld,"
	       "\"days\":%ld,\"interval_s\":%ld,\"readings\":%lld,\"from_ms\":%lld,\"to_ms\":%lld,"
	       "\"seconds\":%.1f,\"bytes\":%lld,\"chunks_merged\":%lld,\"compact_s\":%.1f,"
	       "\"live_minutes\":%ld,\"live_chunks_merged\":%lld,\"live_compact_s\":%.2f,"
	       "\"live_compact_cpu_s\":%.2f}\n",
	       g.o.db, g.o.sites, g.ndevs, g.o.lifts, g.o.chargers, g.o.days, g.o.interval_s, g.rows,
	       (long long)start, (long long)end, (double)(sp_mono_ms() - t0) / 1000.0,
	       (long long)st.st_size, (long long)g.merged, g.compact_s, g.o.live_minutes,
	       (long long)g.live_merged, g.live_compact_s, g.live_compact_cpu_s);
out:
	if (rc)
		fprintf(stderr, "sp-gendb: %s: failed: %s\n", g.o.db, sp_strerror(rc));
	gendb_free(&g);
	return rc ? 1 : 0;
}
