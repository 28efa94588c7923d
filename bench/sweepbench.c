/*
 * sweepbench.c - sp-sweepbench: what one offline sweep (collector/offline.h)
 * costs the writer with many devices.
 *
 * Builds, through the collector's own store (collector/store.h), a database
 * of --devices devices (12-port chargers with their births' metadata, as
 * sp-gendb makes them) behind one agent per --per-agent devices, every
 * agent up and heard from a second ago, one device in --silent-every silent
 * for longer than device_offline_s and the others fresh; then times
 * --reps sweeps (offline_sweep, in a transaction that is rolled back, so
 * every sweep finds the same silent devices) and prints the best and the
 * median wall and CPU time as one JSON line. Single-threaded.
 * Exit status 0 done, 1 failure, 2 bad command line.
 */
#include "offline.h"
#include "rules.h"
#include "store.h"
#include "synth.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/ids.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define OFFLINE_MS (180 * 1000LL)
#define REPS_MAX   100

struct options {
	const char *db;
	long devices, per_agent, silent_every, reps;
};

static void usage(FILE *out)
{
	fprintf(out, "usage: sp-sweepbench --db PATH [--devices N (100000)] [--per-agent N (25)]\n"
		     "                     [--silent-every N (1000)] [--reps N (9)]\n"
		     "The file at PATH is replaced.\n");
}

static double seconds(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int count_event(void *ctx, const struct rule_event *ev, int64_t *alert_id)
{
	(void)ev;
	(*(long *)ctx)++;
	*alert_id = 0;
	return 0;
}

static int build(struct store *s, const struct options *o, int64_t now)
{
	struct sp_buf meta = {0};
	int64_t agent_id = 0;
	int rc = store_w_begin(s);
	for (long i = 0; rc == 0 && i < o->devices; i++) {
		char site[SP_ID_MAX + 1], dev[SP_ID_MAX + 1];
		struct sp_device_info info;
		struct store_device row;
		snprintf(site, sizeof(site), "site-%06ld", i / o->per_agent + 1);
		snprintf(dev, sizeof(dev), "chg-%04ld", i % o->per_agent + 1);
		if (i % o->per_agent == 0 &&
		    ((rc = store_w_agent(s, site, "gw-1", &agent_id)) ||
		     (rc = store_w_agent_state(s, agent_id, true, now - 3600 * 1000LL)) ||
		     (rc = store_w_agent_seen(s, agent_id, now - 1000))))
			break;
		synth_device(&info, dev, false);
		sp_buf_reset(&meta);
		if ((rc = sp_encode_device_info(&meta, &info)) ||
		    (rc = store_w_upsert_device(s, site, dev, agent_id, &info, info.kind, meta.data,
						&row)))
			break;
		int64_t seen =
		    i % o->silent_every == 0 ? now - 2 * OFFLINE_MS : now - (i % 60) * 1000;
		rc = store_w_device_seen(s, row.id, seen, seen);
	}
	if (rc == 0)
		rc = store_w_commit(s);
	else
		store_w_rollback(s);
	sp_buf_free(&meta);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = {NULL, 100000, 25, 1000, 9};
	static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
					     {"devices", required_argument, NULL, 'n'},
					     {"per-agent", required_argument, NULL, 'a'},
					     {"silent-every", required_argument, NULL, 's'},
					     {"reps", required_argument, NULL, 'r'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int opt;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': o.db = optarg; break;
		case 'n': o.devices = strtol(optarg, NULL, 10); break;
		case 'a': o.per_agent = strtol(optarg, NULL, 10); break;
		case 's': o.silent_every = strtol(optarg, NULL, 10); break;
		case 'r': o.reps = strtol(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (o.db == NULL || o.devices < 1 || o.devices > 10000000 || o.per_agent < 1 ||
	    o.per_agent > 9999 || o.silent_every < 1 || o.reps < 1 || o.reps > REPS_MAX) {
		usage(stderr);
		return 2;
	}
	unlink(o.db);
	struct store_params p = {.path = o.db, .readers = 1};
	struct store *s = store_open(&p);
	struct rules_config *cfg = rules_config_create();
	int status = 1;
	if (s == NULL || cfg == NULL)
		goto out;
	int64_t now = sp_now_ms();
	if (build(s, &o, now) != 0) {
		fprintf(stderr, "sp-sweepbench: cannot build the database\n");
		goto out;
	}
	double wall[REPS_MAX], cpu[REPS_MAX];
	long events = 0;
	for (long r = 0; r < o.reps; r++) {
		events = 0;
		double c0 = seconds(CLOCK_PROCESS_CPUTIME_ID), t0 = seconds(CLOCK_MONOTONIC);
		int rc = store_w_begin(s);
		if (rc == 0)
			rc = offline_sweep(s, cfg, OFFLINE_MS, now, count_event, &events);
		wall[r] = (seconds(CLOCK_MONOTONIC) - t0) * 1000.0;
		cpu[r] = (seconds(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1000.0;
		store_w_rollback(s);
		if (rc != 0) {
			fprintf(stderr, "sp-sweepbench: sweep failed: %s\n", sp_strerror(rc));
			goto out;
		}
	}
	qsort(wall, (size_t)o.reps, sizeof(double), cmp_double);
	qsort(cpu, (size_t)o.reps, sizeof(double), cmp_double);
	printf("{\"devices\":%ld,\"agents\":%ld,\"opened_per_sweep\":%ld,\"reps\":%ld,"
	       "\"wall_ms_best\":%.2f,\"wall_ms_median\":%.2f,\"cpu_ms_best\":%.2f,"
	       "\"cpu_ms_median\":%.2f}\n",
	       o.devices, (o.devices + o.per_agent - 1) / o.per_agent, events, o.reps, wall[0],
	       wall[o.reps / 2], cpu[0], cpu[o.reps / 2]);
	status = 0;
out:
	rules_config_destroy(cfg);
	if (s)
		store_close(s);
	return status;
}
