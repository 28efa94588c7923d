/*
 * test_store.c - the storage interface over the SQLite backend: schema
 * creation, agents, device upserts from births and from data, readings and
 * their queries, rollback, sequence progress, the site and device views
 * (online rule, latest reading), counts, ping, and readers running while
 * the writer commits batches.
 *
 * Each test uses its own database file under $SP_TEST_TMP (or /tmp), named
 * after the process id, and removes it afterwards.
 */
#include "harness.h"

#include "citybuild.h"
#include "offline.h"
#include "store.h"
#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#define T0 1764320000000LL
#define ALL_TIME_FROM 0
#define ALL_TIME_TO INT64_MAX

/* ---------------------------------------------------------------- helpers */

/* Opens a store on a new file; path receives its name. */
static struct store *fresh(char *path, size_t size)
{
	harness_tmp_file(path, size, "test_store", "db");
	struct store_params p = {.path = path, .sync_full = false, .readers = 4, .cache_mb = 4};
	return store_open(&p);
}

static void drop(struct store *s, const char *path)
{
	store_close(s);
	harness_remove_db(path);
}

/* A new store holding one agent and one device (committed); NULL on failure. */
static struct store *fresh_with_device(char *path, size_t size, const char *site, const char *dev,
				       enum sp_dev_kind kind, int64_t *agent_id, struct store_device *d)
{
	struct store *s = fresh(path, size);
	CHECK(s != NULL);
	if (s == NULL)
		return NULL;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, site, "a", agent_id), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, site, dev, *agent_id, NULL, kind, NULL, d), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	return s;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct sp_device_info lift_info(const char *dev, int32_t fmin, int32_t fmax)
{
	struct sp_device_info i = {0};
	snprintf(i.dev, sizeof(i.dev), "%s", dev);
	i.kind = SP_DEV_LIFT;
	i.floor_min = fmin;
	i.floor_max = fmax;
	i.rated_speed = 1.0;
	i.rated_load = 630;
	return i;
}

static struct sp_device_info charger_info(const char *dev, int32_t ports)
{
	struct sp_device_info i = {0};
	snprintf(i.dev, sizeof(i.dev), "%s", dev);
	i.kind = SP_DEV_CHARGER;
	i.ports = ports;
	i.port_limit_w = 1500;
	return i;
}

/* Readings collected by a store_r_readings callback. */
#define ROWS_MAX 64
struct rows {
	int n;
	char body[ROWS_MAX][128];
};

static int on_reading(void *ctx, const char *body, size_t len)
{
	struct rows *r = ctx;
	if (r->n < ROWS_MAX)
		snprintf(r->body[r->n], sizeof(r->body[0]), "%.*s", (int)len, body);
	r->n++;
	return 0;
}

static int readings(struct store *s, const char *site, const char *dev, int kind, int64_t from,
		    int64_t to, int64_t limit, struct rows *out)
{
	struct store_readings_query q = {site, dev, kind, from, to, limit, NULL};
	memset(out, 0, sizeof(*out));
	return store_r_readings(s, &q, on_reading, out);
}

/* Device rows collected by a store_r_devices callback. */
struct dev_row {
	char site[SP_ID_MAX + 1], dev[SP_ID_MAX + 1], kind[16], agent[SP_ID_MAX + 1];
	bool online;
	int64_t last_seen;
	bool has_latest, has_meta;
	char latest[128], meta[128];
	int64_t active_alerts;
};

struct dev_rows {
	int n;
	struct dev_row r[32];
};

static int on_device(void *ctx, const struct store_device_row *row)
{
	struct dev_rows *d = ctx;
	if (d->n < 32) {
		struct dev_row *o = &d->r[d->n];
		snprintf(o->site, sizeof(o->site), "%s", row->site ? row->site : "(null)");
		snprintf(o->dev, sizeof(o->dev), "%s", row->dev ? row->dev : "(null)");
		snprintf(o->kind, sizeof(o->kind), "%s", row->kind ? row->kind : "(null)");
		snprintf(o->agent, sizeof(o->agent), "%s", row->agent ? row->agent : "(null)");
		o->online = row->online;
		o->last_seen = row->last_seen;
		o->has_latest = row->latest != NULL;
		o->has_meta = row->meta != NULL;
		snprintf(o->latest, sizeof(o->latest), "%s", row->latest ? row->latest : "");
		snprintf(o->meta, sizeof(o->meta), "%s", row->meta ? row->meta : "");
		o->active_alerts = row->active_alerts;
	}
	d->n++;
	return 0;
}

static const struct dev_row *find_dev(const struct dev_rows *d, const char *site, const char *dev)
{
	for (int i = 0; i < d->n && i < 32; i++)
		if (strcmp(d->r[i].site, site) == 0 && strcmp(d->r[i].dev, dev) == 0)
			return &d->r[i];
	return NULL;
}

/* Site rows collected by a store_r_sites callback. */
struct site_rows {
	int n;
	struct {
		char site[SP_ID_MAX + 1];
		int64_t devices, online, active_alerts;
	} r[16];
};

static int on_site(void *ctx, const struct store_site_row *row)
{
	struct site_rows *s = ctx;
	if (s->n < 16) {
		snprintf(s->r[s->n].site, sizeof(s->r[0].site), "%s", row->site);
		s->r[s->n].devices = row->devices;
		s->r[s->n].online = row->online;
		s->r[s->n].active_alerts = row->active_alerts;
	}
	s->n++;
	return 0;
}

/* Site names collected by a store_r_site_names callback (into site_rows, names only). */
static int on_site_name(void *ctx, const char *site)
{
	struct site_rows *s = ctx;
	if (s->n < 16)
		snprintf(s->r[s->n].site, sizeof(s->r[0].site), "%s", site);
	s->n++;
	return 0;
}

/* Stops the listing after the first name. */
static int on_first_site_name(void *ctx, const char *site)
{
	on_site_name(ctx, site);
	return 1;
}

/* Agents collected by store_w_load_agents. */
struct agent_rows {
	int n;
	struct {
		int64_t id;
		char site[SP_ID_MAX + 1], agent[SP_ID_MAX + 1];
		int64_t acked, gap_since;
		char done[128], missing[128];
		bool done_null, missing_null;
	} r[16];
};

static int on_agent(void *ctx, int64_t agent_id, const char *site, const char *agent,
		    const struct store_agent_progress *p)
{
	struct agent_rows *a = ctx;
	if (a->n < 16) {
		a->r[a->n].id = agent_id;
		snprintf(a->r[a->n].site, sizeof(a->r[0].site), "%s", site);
		snprintf(a->r[a->n].agent, sizeof(a->r[0].agent), "%s", agent);
		a->r[a->n].acked = p->acked;
		a->r[a->n].gap_since = p->gap_since_ms;
		a->r[a->n].done_null = p->done == NULL;
		a->r[a->n].missing_null = p->missing == NULL;
		snprintf(a->r[a->n].done, sizeof(a->r[0].done), "%s", p->done ? p->done : "");
		snprintf(a->r[a->n].missing, sizeof(a->r[0].missing), "%s", p->missing ? p->missing : "");
	}
	a->n++;
	return 0;
}

/* Runs one SQL query returning one integer, directly on the file (for schema checks). */
static int64_t sql_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* ---------------------------------------------------------------- schema */

/* the schema version a new file has (store_sqlite_schema.c) */
enum { SCHEMA_NOW = 18 };

/* Run inside a transaction: a file of the current schema back to 17's shape */
#define BACK_TO_SCHEMA_17                                                                         \
	"DELETE FROM schema_version WHERE version >= 18;"                                          \
	"DROP INDEX outbox_alert;"                                                                 \
	"ALTER TABLE outbox DROP COLUMN alert_id;"                                                 \
	"ALTER TABLE outbox DROP COLUMN reminder;"

/* The same, back to 16's shape */
#define BACK_TO_SCHEMA_16                                                                         \
	BACK_TO_SCHEMA_17                                                                          \
	"DELETE FROM schema_version WHERE version >= 17;"                                          \
	"ALTER TABLE agents DROP COLUMN dropped_seen;"

/*
 * Takes a file of the current schema back to 9's shape (with the version
 * record): no outbox.alert_id and reminder (18), no agents.dropped_seen (17), no alerts.remind_shift (16), no
 * reading_chunks.kinds (15), no alerts_site_opened (14), no progress_log (13), no
 * devices_lookup (11), last_seen in `devices` again and no device_seen (10). The values of
 * last_seen are 0. Run inside a transaction.
 */
#define BACK_TO_SCHEMA_9                                                                          \
	BACK_TO_SCHEMA_16                                                                          \
	"DELETE FROM schema_version WHERE version >= 10;"                                          \
	"ALTER TABLE alerts DROP COLUMN remind_shift;"                                             \
	"ALTER TABLE reading_chunks DROP COLUMN kinds;"                                            \
	"DROP INDEX alerts_site_opened;"                                                           \
	"DROP TABLE progress_log;"                                                                 \
	"DROP INDEX devices_lookup;"                                                               \
	"DROP INDEX devices_site_agent;"                                                           \
	"ALTER TABLE devices ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;"                     \
	"DROP TABLE device_seen;"

/*
 * Opens a file a test took back to an older schema, with a check that it
 * was migrated to the current one. NULL (checked) if it did not open.
 */
static struct store *open_migrated(const char *path)
{
	struct store_params p = {.path = path, .sync_full = false, .readers = 2, .cache_mb = 4};
	struct store *s = store_open(&p);
	CHECK(s != NULL);
	if (s)
		CHECK_EQ_INT(sql_int(path, "SELECT max(version) FROM schema_version"), SCHEMA_NOW);
	return s;
}

static void test_open_creates_schema(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sql_int(path, "SELECT max(version) FROM schema_version"), SCHEMA_NOW);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM schema_version"), SCHEMA_NOW);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
				   "name IN ('agents', 'devices', 'reading_chunks', 'compaction', "
				   "'heartbeat', 'alerts', 'alert_holds', 'outbox', "
				   "'summary_progress', 'fault_clears', 'progress_log')"),
		     11);
	/* the per-reading table of versions 1 and 2 is gone */
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'readings'"), 0);
	CHECK_EQ_INT(store_r_ping(s), 0);
	store_close(s);
	/* reopening an existing store neither fails nor migrates again */
	struct store_params p = {.path = path, .sync_full = true, .readers = 2};
	s = store_open(&p);
	CHECK(s != NULL);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM schema_version"), SCHEMA_NOW);
	if (s)
		CHECK_EQ_INT(store_r_ping(s), 0);
	drop(s, path);
}

/* A new file gets the page size asked for; an existing one keeps its own. */
static void test_page_size_of_new_files(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sql_int(path, "PRAGMA page_size"), STORE_PAGE_KB_DEFAULT * 1024);
	drop(s, path);
	struct store_params p = {.path = path, .readers = 1, .page_kb = 16};
	s = store_open(&p);
	CHECK(s != NULL);
	CHECK_EQ_INT(sql_int(path, "PRAGMA page_size"), 16384);
	store_close(s);
	p.page_kb = 1;
	s = store_open(&p);
	CHECK(s != NULL);
	CHECK_EQ_INT(sql_int(path, "PRAGMA page_size"), 16384);
	if (s)
		CHECK_EQ_INT(store_r_ping(s), 0);
	drop(s, path);
}

/* VFSes registered under the WAL buffer's names (store_sqlite_walbuf.c). */
static int wal_buffer_vfses(void)
{
	int n = 0;
	for (sqlite3_vfs *v = sqlite3_vfs_find(NULL); v; v = v->pNext)
		n += strncmp(v->zName, "sitepulse-walbuf-", 17) == 0;
	return n;
}

/*
 * The writer's WAL buffer is there only with synchronous=FULL (its rule
 * needs every commit's sync) and unless turned off, and goes with its store.
 */
static void test_wal_buffer_only_with_sync_full(void)
{
	char path[512];
	harness_tmp_file(path, sizeof(path), "test_store", "db");
	struct store_params p = {.path = path, .sync_full = true, .readers = 1};
	CHECK_EQ_INT(wal_buffer_vfses(), 0);
	struct store *s = store_open(&p);
	CHECK(s != NULL);
	CHECK_EQ_INT(wal_buffer_vfses(), 1);
	if (s)
		store_close(s);
	CHECK_EQ_INT(wal_buffer_vfses(), 0);
	p.sync_full = false;
	s = store_open(&p);
	CHECK(s != NULL);
	CHECK_EQ_INT(wal_buffer_vfses(), 0);
	if (s)
		store_close(s);
	p.sync_full = true;
	p.wal_buffer_kb = -1;
	s = store_open(&p);
	CHECK(s != NULL);
	CHECK_EQ_INT(wal_buffer_vfses(), 0);
	drop(s, path);
}

/* Runs SQL on a closed store's file. */
static void sql_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "  %s: %s\n", sql, msg ? msg : "?");
	CHECK_EQ_INT(rc, SQLITE_OK);
	sqlite3_free(msg);
	sqlite3_close(db);
}

/*
 * A file as version 1 wrote it (the schema of that version, verbatim, and
 * rows in it) is migrated on open: the heartbeat table appears (2) and
 * every reading moves into chunks (3), readable as before.
 */
static void readings_joined(struct store *s, const char *site, const char *dev, char *out,
			    size_t size);
static int64_t compact_until_done(struct store *s, int64_t now);

static void test_migrates_version_1_readings(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	store_close(s);
	harness_remove_db(path);
	sql_exec(path,
		 "CREATE TABLE schema_version(version INTEGER NOT NULL, applied_at INTEGER NOT NULL);"
		 "INSERT INTO schema_version VALUES (1, 0);"
		 "CREATE TABLE agents(id INTEGER PRIMARY KEY, site TEXT NOT NULL, agent TEXT NOT NULL,"
		 " acked INTEGER NOT NULL DEFAULT 0, done TEXT NOT NULL DEFAULT '',"
		 " missing TEXT NOT NULL DEFAULT '', gap_since INTEGER NOT NULL DEFAULT 0,"
		 " online INTEGER NOT NULL DEFAULT 0, state_at INTEGER NOT NULL DEFAULT 0,"
		 " birth_ts INTEGER NOT NULL DEFAULT 0, birth_at INTEGER NOT NULL DEFAULT 0, fw TEXT,"
		 " last_seen INTEGER NOT NULL DEFAULT 0, UNIQUE(site, agent));"
		 "CREATE TABLE devices(id INTEGER PRIMARY KEY, site TEXT NOT NULL, dev TEXT NOT NULL,"
		 " kind INTEGER NOT NULL, agent_id INTEGER NOT NULL, ports INTEGER NOT NULL DEFAULT 0,"
		 " floor_min INTEGER, floor_max INTEGER, meta TEXT,"
		 " last_seen INTEGER NOT NULL DEFAULT 0, UNIQUE(site, dev));"
		 "CREATE TABLE readings(id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL,"
		 " ts INTEGER NOT NULL, kind INTEGER NOT NULL, agent_id INTEGER NOT NULL,"
		 " seq INTEGER NOT NULL, body TEXT NOT NULL);"
		 "CREATE INDEX readings_device_ts ON readings(device_id, ts);"
		 "INSERT INTO agents(id, site, agent, online) VALUES (1, 'm', 'gw', 1);"
		 "INSERT INTO devices(id, site, dev, kind, agent_id, meta) VALUES"
		 " (1, 'm', 'lift-1', 1, 1, NULL),"
		 " (2, 'm', 'lift-2', 1, 1, '{\"dev\":\"lift-2\",\"kind\":\"lift\",\"rated_speed\":1.6}'),"
		 " (3, 'm', 'chg-1', 2, 1, '{\"dev\":\"chg-1\",\"kind\":\"charger\",\"ports\":2,"
		 "\"port_limit_w\":800}');"
		 /* 1,500 readings of lift-1 a second apart over ~25 minutes, written in reverse */
		 "WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE x < 1499)"
		 " INSERT INTO readings(device_id, ts, kind, agent_id, seq, body)"
		 " SELECT 1, 1764320000000 + 1000 * (1499 - x), 0, 1, 1499 - x,"
		 "  '{\"i\":' || (1499 - x) || '}' FROM i;"
		 /* lift-2: two readings with the same ts (insertion breaks the tie), one an hour later */
		 "INSERT INTO readings(device_id, ts, kind, agent_id, seq, body) VALUES"
		 " (2, 1764320000000, 0, 1, 1, '{\"n\":1}'), (2, 1764320000000, 4, 1, 2, '{\"n\":2}'),"
		 " (2, 1764323600000, 0, 1, 3, '{\"n\":3}');");
	s = open_migrated(path);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'heartbeat'"), 1);
	/* version 9 left the chunks it found (from version 3) in their table as declared */
	CHECK_EQ_INT(sql_int(path, "SELECT sql LIKE '%AUTOINCREMENT%' FROM sqlite_master "
				   "WHERE name = 'reading_chunks'"),
		     1);
	/* version 4 took each device's rating from its birth entry */
	CHECK_EQ_INT(sql_int(path, "SELECT rating FROM devices WHERE id = 1"), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT rating FROM devices WHERE id = 2"), 160);
	CHECK_EQ_INT(sql_int(path, "SELECT rating FROM devices WHERE id = 3"), 800);
	/* version 10 gave every device its row in device_seen */
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM device_seen JOIN devices USING (id)"), 3);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'readings'"), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT sum(n) FROM reading_chunks"), 1503);
	/*
	 * Full chunks, each within one hour: T0 is 400 s before an hour's end,
	 * so lift-1's readings are 400 in one span (1 chunk) and 1,100 in the
	 * next (512 + 512 + 76).
	 */
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE device_id = 1"), 4);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks "
				   "WHERE ts_min / 3600000 != ts_max / 3600000"), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT max(n) FROM reading_chunks"), 512);
	struct rows r;
	CHECK_EQ_INT(readings(s, "m", "lift-1", -1, ALL_TIME_FROM, ALL_TIME_TO, 3, &r), 3);
	CHECK_EQ_STR(r.body[0], "{\"i\":1499}");
	CHECK_EQ_STR(r.body[2], "{\"i\":1497}");
	CHECK_EQ_INT(readings(s, "m", "lift-1", -1, T0 + 10000, T0 + 12000, 10, &r), 3);
	CHECK_EQ_STR(r.body[0], "{\"i\":12}");
	CHECK_EQ_STR(r.body[2], "{\"i\":10}");
	CHECK_EQ_INT(readings(s, "m", "lift-2", -1, ALL_TIME_FROM, ALL_TIME_TO, 10, &r), 3);
	CHECK_EQ_STR(r.body[0], "{\"n\":3}");
	CHECK_EQ_STR(r.body[1], "{\"n\":2}");
	CHECK_EQ_STR(r.body[2], "{\"n\":1}");
	CHECK_EQ_INT(readings(s, "m", "lift-2", SP_REC_FAULT, ALL_TIME_FROM, ALL_TIME_TO, 10, &r), 1);
	CHECK_EQ_STR(r.body[0], "{\"n\":2}");
	/*
	 * The migrated chunks stay in the fixed format (8 added fmt, 0); a new
	 * reading goes into a packed chunk beside them, and every reader reads
	 * both; compaction merges the two small chunks of lift-2's second hour
	 * into one packed chunk, changing no answer.
	 */
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE fmt != 0"), 0);
	int64_t ag = sql_int(path, "SELECT id FROM agents WHERE agent = 'gw'");
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading(s, 2, ag, 4, SP_REC_LIFT, 1764323600001, "{\"n\":4}", 7), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE fmt = 1"), 1);
	char before[4096], after[4096];
	readings_joined(s, "m", "lift-2", before, sizeof(before));
	CHECK_EQ_STR(before, "{\"n\":4}|{\"n\":3}|{\"n\":2}|{\"n\":1}|");
	CHECK(compact_until_done(s, (int64_t)time(NULL) * 1000 + 7200000) >= 2);
	readings_joined(s, "m", "lift-2", after, sizeof(after));
	CHECK_EQ_STR(after, before);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE device_id = 2 AND fmt = 1 "
				   "AND n = 2"), 1);
	/* the heartbeat table works (migration 1 -> 2) */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_heartbeat(s, T0), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT at FROM heartbeat WHERE id = 1"), T0);
	drop(s, path);
}

static void test_open_fails_cleanly(void)
{
	struct store_params p = {.path = "/nonexistent-dir-sitepulse/x/y.db", .readers = 2};
	CHECK(store_open(&p) == NULL); /* logs an (expected) error */
}

/* ---------------------------------------------------------------- writer side */

static void test_agent_find_or_create(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t a1 = 0, a1b = 0, a2 = 0, a3 = 0;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &a1), 0);
	CHECK(a1 > 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &a1b), 0);
	CHECK_EQ_INT(a1b, a1);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-2", &a2), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-b", "agent-1", &a3), 0);
	CHECK(a2 > 0 && a2 != a1);
	CHECK(a3 > 0 && a3 != a1 && a3 != a2);
	CHECK_EQ_INT(store_w_commit(s), 0);
	/* still the same after the commit */
	CHECK_EQ_INT(store_w_begin(s), 0);
	a1b = 0;
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &a1b), 0);
	CHECK_EQ_INT(a1b, a1);
	CHECK_EQ_INT(store_w_agent_birth(s, a1, T0, "1.2.3", T0 + 5), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	drop(s, path);
}

static void test_device_upsert(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0;
	struct store_device d, g;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &ag), 0);
	CHECK_EQ_INT(store_w_device(s, "site-a", "lift-1", &g, NULL), SP_ENOTFOUND);
	CHECK_EQ_INT(store_w_device_count(s), 0);

	/* from a birth: a lift with floors */
	struct sp_device_info li = lift_info("lift-1", -2, 20);
	memset(&d, 0, sizeof(d));
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", ag, &li, SP_DEV_UNKNOWN,
					   "{\"floors\":22}", &d),
		     0);
	CHECK(d.id > 0);
	CHECK_EQ_INT(d.agent_id, ag);
	CHECK_EQ_INT(d.kind, SP_DEV_LIFT);
	CHECK(d.has_floors);
	CHECK_EQ_INT(d.floor_min, -2);
	CHECK_EQ_INT(d.floor_max, 20);
	CHECK_EQ_INT(d.ports, 0);
	memset(&g, 0, sizeof(g));
	CHECK_EQ_INT(store_w_device(s, "site-a", "lift-1", &g, NULL), 0);
	CHECK_EQ_INT(g.id, d.id);
	CHECK_EQ_INT(g.kind, SP_DEV_LIFT);
	CHECK_EQ_INT(g.floor_max, 20);

	/* from a birth: a charger with ports */
	struct sp_device_info ci = charger_info("chg-1", 8);
	struct store_device c;
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "chg-1", ag, &ci, SP_DEV_UNKNOWN, NULL, &c), 0);
	CHECK(c.id > 0 && c.id != d.id);
	CHECK_EQ_INT(c.kind, SP_DEV_CHARGER);
	CHECK_EQ_INT(c.ports, 8);
	CHECK(!c.has_floors);

	/* from data (no birth yet): kind from the record */
	struct store_device x;
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "chg-9", ag, NULL, SP_DEV_CHARGER, NULL, &x), 0);
	CHECK(x.id > 0);
	CHECK_EQ_INT(x.kind, SP_DEV_CHARGER);
	CHECK_EQ_INT(x.ports, 0);
	CHECK(!x.has_floors);
	/* more data, even claiming another kind, changes nothing */
	struct store_device x2;
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "chg-9", ag, NULL, SP_DEV_LIFT, NULL, &x2), 0);
	CHECK_EQ_INT(x2.id, x.id);
	CHECK_EQ_INT(x2.kind, SP_DEV_CHARGER);
	/* first seen in a fault record (no kind): the next record to tell one sets it, once */
	struct store_device u, u2, u3, u4;
	const char *us = "site-u";
	CHECK_EQ_INT(store_w_upsert_device(s, us, "box-1", ag, NULL, SP_DEV_UNKNOWN, NULL, &u), 0);
	CHECK_EQ_INT(u.kind, SP_DEV_UNKNOWN);
	CHECK_EQ_INT(store_w_upsert_device(s, us, "box-1", ag, NULL, SP_DEV_UNKNOWN, NULL, &u2), 0);
	CHECK_EQ_INT(u2.kind, SP_DEV_UNKNOWN);
	CHECK_EQ_INT(store_w_upsert_device(s, us, "box-1", ag, NULL, SP_DEV_CHARGER, NULL, &u3), 0);
	CHECK_EQ_INT(u3.id, u.id);
	CHECK_EQ_INT(u3.kind, SP_DEV_CHARGER);
	CHECK_EQ_INT(store_w_upsert_device(s, us, "box-1", ag, NULL, SP_DEV_LIFT, NULL, &u4), 0);
	CHECK_EQ_INT(u4.kind, SP_DEV_CHARGER);
	CHECK_EQ_INT(store_w_device(s, us, "box-1", &u4, NULL), 0);
	CHECK_EQ_INT(u4.kind, SP_DEV_CHARGER);
	/* data after a birth does not erase what the birth said */
	struct store_device d2;
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", ag, NULL, SP_DEV_LIFT, NULL, &d2), 0);
	CHECK_EQ_INT(d2.id, d.id);
	CHECK(d2.has_floors);
	CHECK_EQ_INT(d2.floor_min, -2);
	CHECK_EQ_INT(d2.floor_max, 20);

	/* a later birth updates kind, ports, floors and meta, keeping the id */
	struct sp_device_info ci9 = charger_info("chg-9", 12);
	struct store_device x3;
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "chg-9", ag, &ci9, SP_DEV_UNKNOWN,
					   "{\"ports\":12}", &x3),
		     0);
	CHECK_EQ_INT(x3.id, x.id);
	CHECK_EQ_INT(x3.ports, 12);
	struct sp_device_info li2 = lift_info("lift-1", 0, 9);
	struct store_device d3;
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", ag, &li2, SP_DEV_UNKNOWN,
					   "{\"floors\":10}", &d3),
		     0);
	CHECK_EQ_INT(d3.id, d.id);
	CHECK_EQ_INT(d3.floor_min, 0);
	CHECK_EQ_INT(d3.floor_max, 9);
	/* a device that changes kind in a birth: lift -> charger */
	struct sp_device_info lc = charger_info("lift-1", 2);
	struct store_device d4;
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", ag, &lc, SP_DEV_UNKNOWN, NULL, &d4), 0);
	CHECK_EQ_INT(d4.id, d.id);
	CHECK_EQ_INT(d4.kind, SP_DEV_CHARGER);
	CHECK_EQ_INT(d4.ports, 2);
	CHECK(!d4.has_floors);
	CHECK_EQ_INT(store_w_device_count(s), 4); /* with site-u box-1 */
	CHECK_EQ_INT(store_w_agent_state(s, ag, true, T0), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	/* meta: the newest birth's, kept when a birth has none */
	struct dev_rows rows = {0};
	CHECK_EQ_INT(store_r_devices(s, "site-a", T0, 60000, 0, on_device, &rows), 0);
	CHECK_EQ_INT(rows.n, 3);
	const struct dev_row *r1 = find_dev(&rows, "site-a", "lift-1");
	const struct dev_row *r9 = find_dev(&rows, "site-a", "chg-9");
	const struct dev_row *rc = find_dev(&rows, "site-a", "chg-1");
	CHECK(r1 && r9 && rc);
	if (r1 && r9 && rc) {
		CHECK(r1->has_meta);
		CHECK_EQ_STR(r1->meta, "{\"floors\":10}");
		CHECK_EQ_STR(r1->kind, "charger");
		CHECK(r9->has_meta);
		CHECK_EQ_STR(r9->meta, "{\"ports\":12}");
		CHECK_EQ_STR(r9->kind, "charger");
		CHECK(!rc->has_meta);
	}
	drop(s, path);
}

struct current_rows {
	int n;
	char dev[4][SP_ID_MAX + 1];
	char current[4][1024]; /* "" = NULL */
};

static int on_current(void *ctx, const struct store_device_row *row)
{
	struct current_rows *c = ctx;
	if (c->n < 4) {
		snprintf(c->dev[c->n], sizeof(c->dev[0]), "%s", row->dev);
		snprintf(c->current[c->n], sizeof(c->current[0]), "%s", row->current ? row->current : "");
	}
	c->n++;
	return 0;
}

/* A whole port record of chg-1 at T0 + dt. */
static int port_rec(struct store *s, const struct store_device *d, int64_t ag, int64_t seq,
		    int64_t dt, int port, const char *state)
{
	char body[160];
	int len = snprintf(body, sizeof(body),
			   "{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":%lld,\"port\":%d,\"state\":\"%s\"}",
			   (long long)(T0 + dt), port, state);
	return store_w_reading(s, d->id, ag, seq, SP_REC_PORT, T0 + dt, body, (size_t)len);
}

/*
 * STORE_DEVICES_CURRENT: a charger's newest station record and each port's
 * newest by ts (not by arrival), in the window up to its last_seen, across
 * chunks of several commits, whole and tail-stored alike; ties to the later
 * stored; sessions (which name a port too) and older readings left out;
 * lifts, and every device without the flag, get none.
 */
static void test_charger_current(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0;
	struct store_device c, l;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "chg-1", ag, NULL, SP_DEV_CHARGER, NULL, &c), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", ag, NULL, SP_DEV_LIFT, NULL, &l), 0);
	const char *station_old = "{\"t\":\"station\",\"dev\":\"chg-1\",\"ts\":1764320000000,"
				  "\"power_w\":100}";
	CHECK_EQ_INT(store_w_reading(s, c.id, ag, 1, SP_REC_STATION, T0, station_old,
				     strlen(station_old)), 0);
	/* outside the window: 2 min before last_seen (T0 + 10 s) and more */
	CHECK_EQ_INT(port_rec(s, &c, ag, 2, -200000, 1, "old"), 0);
	CHECK_EQ_INT(port_rec(s, &c, ag, 3, -200000, 7, "old"), 0);
	CHECK_EQ_INT(port_rec(s, &c, ag, 4, 0, 1, "idle"), 0);
	CHECK_EQ_INT(port_rec(s, &c, ag, 5, 9000, 7, "charging"), 0);
	const char *lift = "{\"t\":\"lift\",\"dev\":\"lift-1\",\"ts\":1764320000000,\"floor\":1}";
	CHECK_EQ_INT(store_w_reading(s, l.id, ag, 6, SP_REC_LIFT, T0, lift, strlen(lift)), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(port_rec(s, &c, ag, 7, 5000, 1, "charging"), 0);
	CHECK_EQ_INT(port_rec(s, &c, ag, 8, 1000, 2, "fault"), 0);
	CHECK_EQ_INT(port_rec(s, &c, ag, 12, 1000, 2, "idle"), 0); /* same ts, stored later */
	CHECK_EQ_INT(port_rec(s, &c, ag, 13, 4000, 7, "idle"), 0); /* arrived later, older */
	const char *tail = ",\"port\":12,\"state\":\"full\"}";
	CHECK_EQ_INT(store_w_reading_tail(s, c.id, ag, 9, SP_REC_PORT, T0 + 2000, tail, strlen(tail)),
		     0);
	const char *session = "{\"t\":\"session\",\"dev\":\"chg-1\",\"ts\":1764320003000,\"port\":3,"
			      "\"wh\":10}";
	CHECK_EQ_INT(store_w_reading(s, c.id, ag, 10, SP_REC_SESSION, T0 + 3000, session,
				     strlen(session)), 0);
	const char *station = "{\"t\":\"station\",\"dev\":\"chg-1\",\"ts\":1764320010000,"
			      "\"power_w\":200}";
	CHECK_EQ_INT(store_w_reading(s, c.id, ag, 11, SP_REC_STATION, T0 + 10000, station,
				     strlen(station)), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	struct current_rows got = {0};
	CHECK_EQ_INT(store_r_devices(s, "site-a", T0 + 10000, 60000, STORE_DEVICES_CURRENT,
				     on_current, &got), 0);
	CHECK_EQ_INT(got.n, 2);
	CHECK_EQ_STR(got.dev[0], "chg-1");
	CHECK_EQ_STR(got.current[0],
		     "[{\"t\":\"station\",\"dev\":\"chg-1\",\"ts\":1764320010000,\"power_w\":200},"
		     "{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":1764320005000,\"port\":1,\"state\":\"charging\"},"
		     "{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":1764320001000,\"port\":2,\"state\":\"idle\"},"
		     "{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":1764320009000,\"port\":7,\"state\":\"charging\"},"
		     "{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":1764320002000,\"port\":12,\"state\":\"full\"}]");
	CHECK_EQ_STR(got.dev[1], "lift-1");
	CHECK_EQ_STR(got.current[1], "");
	struct current_rows plain = {0};
	CHECK_EQ_INT(store_r_devices(s, "site-a", T0 + 10000, 60000, 0, on_current, &plain), 0);
	CHECK_EQ_INT(plain.n, 2);
	CHECK_EQ_STR(plain.current[0], "");
	drop(s, path);
}

/* Inserts readings of `dev` (i = 0..n-1: ts T0 + 1000 i, LIFT for even i, FAULT for odd). */
static int insert_readings(struct store *s, int64_t dev_id, int64_t ag, int n)
{
	char body[64];
	for (int i = 0; i < n; i++) {
		int len = snprintf(body, sizeof(body), "{\"i\":%d}", i);
		int rc = store_w_reading(s, dev_id, ag, 100 + i, i % 2 ? SP_REC_FAULT : SP_REC_LIFT,
					 T0 + 1000LL * i, body, (size_t)len);
		if (rc)
			return rc;
	}
	return 0;
}

static void test_site_has_records(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0;
	struct store_device d, e;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", ag, NULL, SP_DEV_LIFT, NULL, &d), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-b", "lift-1", ag, NULL, SP_DEV_LIFT, NULL, &e), 0);
	CHECK_EQ_INT(insert_readings(s, d.id, ag, 10), 0); /* T0 .. T0 + 9 s */
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(store_r_site_has_records(s, "site-a", T0, T0 + 1), 1);
	CHECK_EQ_INT(store_r_site_has_records(s, "site-a", T0 + 9000, T0 + 60000), 1);
	CHECK_EQ_INT(store_r_site_has_records(s, "site-a", T0 - 60000, T0), 0); /* to is exclusive */
	CHECK_EQ_INT(store_r_site_has_records(s, "site-a", T0 + 9001, T0 + 60000), 0);
	CHECK_EQ_INT(store_r_site_has_records(s, "site-b", T0, T0 + 60000), 0); /* another site */
	CHECK_EQ_INT(store_r_site_has_records(s, "site-z", T0, T0 + 60000), 0); /* unknown */
	drop(s, path);
}

static void test_readings_query(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0;
	struct store_device d, e;
	struct sp_device_info li = lift_info("lift-1", 0, 5);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", ag, &li, SP_DEV_LIFT, NULL, &d), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-2", ag, NULL, SP_DEV_LIFT, NULL, &e), 0);
	CHECK_EQ_INT(insert_readings(s, d.id, ag, 10), 0);
	/* another device's readings are not mixed in */
	CHECK_EQ_INT(store_w_reading(s, e.id, ag, 500, SP_REC_LIFT, T0 + 5000, "{\"other\":1}", 11), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	struct rows r;
	/* newest first */
	CHECK_EQ_INT(readings(s, "site-a", "lift-1", -1, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), 10);
	CHECK_EQ_INT(r.n, 10);
	CHECK_EQ_STR(r.body[0], "{\"i\":9}");
	CHECK_EQ_STR(r.body[9], "{\"i\":0}");
	int order_ok = 1;
	for (int i = 0; i < 10; i++) {
		char want[32];
		snprintf(want, sizeof(want), "{\"i\":%d}", 9 - i);
		order_ok &= strcmp(r.body[i], want) == 0;
	}
	CHECK(order_ok);
	/* kind filter */
	CHECK_EQ_INT(readings(s, "site-a", "lift-1", SP_REC_FAULT, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), 5);
	CHECK_EQ_STR(r.body[0], "{\"i\":9}");
	CHECK_EQ_STR(r.body[4], "{\"i\":1}");
	CHECK_EQ_INT(readings(s, "site-a", "lift-1", SP_REC_LIFT, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), 5);
	CHECK_EQ_STR(r.body[0], "{\"i\":8}");
	CHECK_EQ_INT(readings(s, "site-a", "lift-1", SP_REC_SESSION, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), 0);
	/* from and to are inclusive */
	CHECK_EQ_INT(readings(s, "site-a", "lift-1", -1, T0 + 2000, T0 + 5000, 100, &r), 4);
	CHECK_EQ_STR(r.body[0], "{\"i\":5}");
	CHECK_EQ_STR(r.body[3], "{\"i\":2}");
	CHECK_EQ_INT(readings(s, "site-a", "lift-1", -1, T0 + 2001, T0 + 4999, 100, &r), 2);
	CHECK_EQ_STR(r.body[0], "{\"i\":4}");
	CHECK_EQ_STR(r.body[1], "{\"i\":3}");
	CHECK_EQ_INT(readings(s, "site-a", "lift-1", -1, T0 + 3000, T0 + 3000, 100, &r), 1);
	CHECK_EQ_STR(r.body[0], "{\"i\":3}");
	CHECK_EQ_INT(readings(s, "site-a", "lift-1", -1, T0 + 20000, ALL_TIME_TO, 100, &r), 0);
	/* limit: the newest ones */
	CHECK_EQ_INT(readings(s, "site-a", "lift-1", -1, ALL_TIME_FROM, ALL_TIME_TO, 3, &r), 3);
	CHECK_EQ_INT(r.n, 3);
	CHECK_EQ_STR(r.body[2], "{\"i\":7}");
	CHECK_EQ_INT(readings(s, "site-a", "lift-1", SP_REC_LIFT, T0 + 1000, T0 + 8000, 2, &r), 2);
	CHECK_EQ_STR(r.body[0], "{\"i\":8}");
	CHECK_EQ_STR(r.body[1], "{\"i\":6}");
	/* the other device */
	CHECK_EQ_INT(readings(s, "site-a", "lift-2", -1, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), 1);
	CHECK_EQ_STR(r.body[0], "{\"other\":1}");
	/* unknown device or site */
	CHECK_EQ_INT(readings(s, "site-a", "nope", -1, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), SP_ENOTFOUND);
	CHECK_EQ_INT(readings(s, "site-x", "lift-1", -1, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), SP_ENOTFOUND);
	CHECK_EQ_INT(r.n, 0);
	drop(s, path);
}

/*
 * with_any: only readings carrying one of the fields, newest first; a
 * field's name inside a text value (its quotes escaped) is not the field.
 * What the city summary's counter baselines read (citybuild.c).
 */
static void test_readings_with_field(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0;
	struct store_device d;
	static const char *const bodies[] = {
	    "{\"t\":\"lift\",\"floor\":1,\"trips\":5,\"run_s\":9}",
	    "{\"t\":\"lift\",\"floor\":2}",
	    "{\"t\":\"fault\",\"code\":\"E1\",\"detail\":\"x,\\\"trips\\\":7\"}",
	    "{\"t\":\"lift\",\"floor\":3}",
	};
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", ag, NULL, SP_DEV_LIFT, NULL, &d), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(store_w_reading(s, d.id, ag, i + 1, i == 2 ? SP_REC_FAULT : SP_REC_LIFT,
					     T0 + 1000 * i, bodies[i], strlen(bodies[i])),
			     0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	static const char *const trips[] = {"trips", NULL};
	static const char *const doors_or_run[] = {"door_cycles", "run_s", NULL};
	static const char *const doors[] = {"door_cycles", NULL};
	struct rows r = {0};
	struct store_readings_query q = {"site-a", "lift-1", -1, ALL_TIME_FROM, ALL_TIME_TO, 10,
					 trips};
	CHECK_EQ_INT(store_r_readings(s, &q, on_reading, &r), 1);
	CHECK_EQ_STR(r.body[0], bodies[0]);
	memset(&r, 0, sizeof(r));
	q.with_any = doors_or_run;
	q.kind = SP_REC_LIFT;
	q.limit = 1;
	CHECK_EQ_INT(store_r_readings(s, &q, on_reading, &r), 1);
	CHECK_EQ_STR(r.body[0], bodies[0]);
	memset(&r, 0, sizeof(r));
	q.with_any = doors;
	CHECK_EQ_INT(store_r_readings(s, &q, on_reading, &r), 0);
	/* without the filter: the newest lift reading, which has no counter */
	memset(&r, 0, sizeof(r));
	q.with_any = NULL;
	CHECK_EQ_INT(store_r_readings(s, &q, on_reading, &r), 1);
	CHECK_EQ_STR(r.body[0], bodies[3]);
	drop(s, path);
}

/*
 * The city summary's lift counters over a real store (citybuild.c): the
 * newest lift record before the period carries no counters (a state
 * change), the one before it does, and it is their base. trips 1000 at
 * L - 100 s, a record without counters at L - 65 s, 1100 at L - 20 s: the
 * period [L - 60 s, L) grew by 100 (it said 0, from the first value in it).
 */
static void test_city_counter_base(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	struct citybuild *cb = NULL;
	struct sp_buf out = SP_BUF_INIT(0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	const int64_t L = T0 + 3600000;
	int64_t ag = 0;
	struct store_device d;
	struct sp_device_info li = lift_info("lift-1", 0, 5);
	char body[3][400];
	const int64_t at[3] = {L - 100000, L - 65000, L - 20000};
	const char *counters[3] = {",\"trips\":1000,\"door_cycles\":2000,\"run_s\":8000", "",
				   ",\"trips\":1100,\"door_cycles\":2150,\"run_s\":8040"};
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", ag, &li, SP_DEV_LIFT, NULL, &d), 0);
	for (int i = 0; i < 3; i++) {
		snprintf(body[i], sizeof(body[i]),
			 "{\"t\":\"lift\",\"dev\":\"lift-1\",\"ts\":%lld,\"floor\":1,\"dir\":\"stop\","
			 "\"door\":\"closed\",\"door_zone\":true,\"occupied\":false,\"mode\":\"normal\"%s}",
			 (long long)at[i], counters[i]);
		CHECK_EQ_INT(store_w_reading(s, d.id, ag, i + 1, SP_REC_LIFT, at[i], body[i],
					     strlen(body[i])),
			     0);
	}
	CHECK_EQ_INT(store_w_commit(s), 0);

	struct citybuild_params p = {s, NULL, 60000, 1000};
	struct citybuild_report rep;
	atomic_bool stop = false;
	CHECK((cb = citybuild_create(&p)) != NULL);
	if (cb == NULL)
		goto out;
	CHECK_EQ_INT(citybuild_period(cb, "site-a", L - 60000, L, L + 1000, false, &stop, &out, &rep),
		     0);
	CHECK_EQ_INT(rep.refused, 0);
	const char *lift = out.data ? strstr(out.data, "\"dev\":\"lift-1\"") : NULL;
	CHECK(lift != NULL);
	if (lift != NULL) {
		CHECK(strstr(lift, "\"trips\":100,") != NULL);
		CHECK(strstr(lift, "\"door_cycles\":150,") != NULL);
		CHECK(strstr(lift, "\"run_s\":40,") != NULL);
		if (strstr(lift, "\"trips\":100,") == NULL)
			fprintf(stderr, "  summary: %s\n", out.data);
	}
out:
	citybuild_destroy(cb);
	sp_buf_free(&out);
	drop(s, path);
}

/*
 * A quiet port behind a busy one (citybuild.c): chg-1 has 2 ports; port 2
 * said "charging" at S - 120 s and nothing since, port 1 said "idle" every
 * 200 ms from S - 110 s (550 records). Within offline_ms (300 s) port 2 is
 * still charging through the 60 s period: 50 % utilisation. Reading only
 * the newest 256 port records before S lost port 2's state (0.0).
 */
static void test_city_quiet_port(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	struct citybuild *cb = NULL;
	struct sp_buf out = SP_BUF_INIT(0), meta = SP_BUF_INIT(0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	const int64_t S = T0 + 3600000;
	int64_t ag = 0, seq = 1;
	struct store_device d;
	struct sp_device_info ci = charger_info("chg-1", 2);
	char body[256];
	CHECK_EQ_INT(sp_encode_device_info(&meta, &ci), 0);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "chg-1", ag, &ci, SP_DEV_CHARGER, meta.data,
					   &d),
		     0);
	snprintf(body, sizeof(body),
		 "{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":%lld,\"port\":2,\"state\":\"charging\","
		 "\"w\":500}",
		 (long long)(S - 120000));
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, seq++, SP_REC_PORT, S - 120000, body, strlen(body)),
		     0);
	for (int64_t ts = S - 110000; ts < S; ts += 200) {
		snprintf(body, sizeof(body),
			 "{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":%lld,\"port\":1,"
			 "\"state\":\"idle\",\"w\":0}",
			 (long long)ts);
		CHECK_EQ_INT(store_w_reading(s, d.id, ag, seq++, SP_REC_PORT, ts, body, strlen(body)),
			     0);
	}
	CHECK_EQ_INT(store_w_commit(s), 0);

	struct citybuild_params p = {s, NULL, 300000, 1000};
	struct citybuild_report rep;
	atomic_bool stop = false;
	CHECK((cb = citybuild_create(&p)) != NULL);
	if (cb == NULL)
		goto out;
	CHECK_EQ_INT(citybuild_period(cb, "site-a", S, S + 60000, S + 61000, false, &stop, &out, &rep),
		     0);
	CHECK_EQ_INT(rep.refused, 0);
	const char *chg = out.data ? strstr(out.data, "\"dev\":\"chg-1\"") : NULL;
	CHECK(chg != NULL);
	const char *half = chg ? strstr(chg, "\"utilization_pct\":50.0,") : NULL;
	CHECK(half != NULL);
	if (chg != NULL && half == NULL)
		fprintf(stderr, "  summary: %s\n", out.data);
out:
	citybuild_destroy(cb);
	sp_buf_free(&out);
	sp_buf_free(&meta);
	drop(s, path);
}

static void test_readings_same_ts_newest_insert_first(void)
{
	char path[512];
	int64_t ag = 0;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "s", "chg", SP_DEV_CHARGER, &ag, &d);
	if (s == NULL)
		return;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, 1, SP_REC_PORT, T0, "{\"n\":1}", 7), 0);
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, 1, SP_REC_PORT, T0, "{\"n\":2}", 7), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	struct rows r;
	CHECK_EQ_INT(readings(s, "s", "chg", -1, T0, T0, 10, &r), 2);
	CHECK_EQ_STR(r.body[0], "{\"n\":2}");
	CHECK_EQ_STR(r.body[1], "{\"n\":1}");
	drop(s, path);
}

/* Bodies of a device's readings, newest first, as one string "b1|b2|..." (for comparisons). */
static void readings_joined(struct store *s, const char *site, const char *dev, char *out, size_t size)
{
	struct rows r;
	size_t used = 0;
	out[0] = '\0';
	CHECK(readings(s, site, dev, -1, ALL_TIME_FROM, ALL_TIME_TO, ROWS_MAX, &r) >= 0);
	for (int i = 0; i < r.n && i < ROWS_MAX; i++)
		used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%s|", r.body[i]);
}

#define HOUR0 1764320400000LL /* an hour's start */

/*
 * Readings spread over many transactions: newest first across chunks,
 * a late reading in an old hour, ties, limits, and the device's newest.
 */
static void test_readings_across_chunks(void)
{
	char path[512], body[64];
	int64_t ag = 0;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "x", "lift", SP_DEV_LIFT, &ag, &d);
	if (s == NULL)
		return;
	/* transaction t holds readings at minutes 2t+1 then 2t (out of order inside a chunk) */
	for (int t = 0; t < 20; t++) {
		CHECK_EQ_INT(store_w_begin(s), 0);
		for (int k = 1; k >= 0; k--) {
			int m = 2 * t + k;
			int len = snprintf(body, sizeof(body), "{\"m\":%d}", m);
			CHECK_EQ_INT(store_w_reading(s, d.id, ag, t + 1, SP_REC_LIFT, HOUR0 + 60000LL * m,
						     body, (size_t)len), 0);
		}
		CHECK_EQ_INT(store_w_commit(s), 0);
	}
	/* a late reading for the hour before, and one two hours later */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, 21, SP_REC_FAULT, HOUR0 - 1, "{\"late\":1}", 10), 0);
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, 21, SP_REC_LIFT, HOUR0 + 7200000, "{\"m\":120}", 10), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), 22);

	struct rows r;
	CHECK_EQ_INT(readings(s, "x", "lift", -1, ALL_TIME_FROM, ALL_TIME_TO, 5, &r), 5);
	CHECK_EQ_STR(r.body[0], "{\"m\":120}");
	CHECK_EQ_STR(r.body[1], "{\"m\":39}");
	CHECK_EQ_STR(r.body[2], "{\"m\":38}");
	CHECK_EQ_STR(r.body[4], "{\"m\":36}");
	/* a window inside the hour: minutes 10..13, newest first */
	CHECK_EQ_INT(readings(s, "x", "lift", -1, HOUR0 + 600000, HOUR0 + 780000, 100, &r), 4);
	CHECK_EQ_STR(r.body[0], "{\"m\":13}");
	CHECK_EQ_STR(r.body[3], "{\"m\":10}");
	/* the oldest: the late reading, found although its chunk was written last */
	CHECK_EQ_INT(readings(s, "x", "lift", -1, ALL_TIME_FROM, HOUR0 + 60000, 100, &r), 3);
	CHECK_EQ_STR(r.body[0], "{\"m\":1}");
	CHECK_EQ_STR(r.body[2], "{\"late\":1}");
	CHECK_EQ_INT(readings(s, "x", "lift", SP_REC_FAULT, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), 1);
	CHECK_EQ_INT(readings(s, "x", "lift", -1, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), 42);
	CHECK_EQ_INT(readings(s, "x", "lift", -1, HOUR0 + 7200001, ALL_TIME_TO, 100, &r), 0);

	/* the device's newest reading is the latest ts, not the last one written into its chunk */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, 22, SP_REC_LIFT, HOUR0 + 7300000, "{\"m\":122}", 10), 0);
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, 22, SP_REC_LIFT, HOUR0 + 7250000, "{\"m\":121}", 10), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	struct dev_rows dr;
	memset(&dr, 0, sizeof(dr));
	CHECK_EQ_INT(store_r_devices(s, "x", HOUR0 + 7300000, 60000, 0, on_device, &dr), 0);
	const struct dev_row *row = find_dev(&dr, "x", "lift");
	CHECK(row != NULL);
	if (row) {
		CHECK_EQ_STR(row->latest, "{\"m\":122}");
		CHECK_EQ_INT(row->last_seen, HOUR0 + 7300000);
	}
	drop(s, path);
}

/* One compaction pass in a transaction of its own, as the writer runs it. 0 or SP_E*. */
static int compact_pass(struct store *s, int64_t now, int budget, int64_t max_ms,
			struct store_compaction *c)
{
	int rc = store_w_begin(s);
	if (rc)
		return rc;
	if ((rc = store_w_compact(s, now, budget, max_ms, c))) {
		store_w_rollback(s);
		return rc;
	}
	return store_w_commit(s);
}

/* Compaction merges an hour's small chunks once it is over, and changes no answer. */
static void test_compaction(void)
{
	char path[512], body[64], before1[4096], before2[4096], after[4096];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0, total = 0;
	struct store_compaction c;
	struct store_device d1, d2, d3;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "c", "a", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "c", "d1", ag, NULL, SP_DEV_LIFT, NULL, &d1), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "c", "d2", ag, NULL, SP_DEV_LIFT, NULL, &d2), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "c", "d3", ag, NULL, SP_DEV_LIFT, NULL, &d3), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	/* 30 transactions: d1 two readings (one tie on ts), d2 one; then one in the next hour */
	for (int t = 0; t < 31; t++) {
		int64_t ts = t < 30 ? HOUR0 + 60000LL * t : HOUR0 + 3600000;
		CHECK_EQ_INT(store_w_begin(s), 0);
		for (int k = 0; k < 2; k++) {
			int len = snprintf(body, sizeof(body), "{\"t\":%d,\"k\":%d}", t, k);
			CHECK_EQ_INT(store_w_reading(s, d1.id, ag, t + 1, SP_REC_LIFT, ts, body, (size_t)len), 0);
		}
		int len = snprintf(body, sizeof(body), "{\"t\":%d}", t);
		CHECK_EQ_INT(store_w_reading(s, d2.id, ag, t + 1, SP_REC_FAULT, ts + 7, body, (size_t)len), 0);
		CHECK_EQ_INT(store_w_commit(s), 0);
	}
	/* d3: one chunk past half full (stays), then a small one: nothing to merge it with */
	CHECK_EQ_INT(store_w_begin(s), 0);
	for (int i = 0; i < 300; i++)
		CHECK_EQ_INT(store_w_reading(s, d3.id, ag, 40, SP_REC_LIFT, HOUR0 + i, "{}", 2), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading(s, d3.id, ag, 41, SP_REC_LIFT, HOUR0 + 999, "{}", 2), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), 64);
	CHECK_EQ_INT(sql_int(path, "SELECT sum(n) FROM reading_chunks"), 31 * 3 + 301);
	readings_joined(s, "c", "d1", before1, sizeof(before1));
	readings_joined(s, "c", "d2", before2, sizeof(before2));

	/* chunks written within the last hour and its grace are left alone */
	int64_t now = (int64_t)time(NULL) * 1000;
	CHECK_EQ_INT(compact_pass(s, now, 4096, -1, &c), 0);
	CHECK_EQ_INT(c.merged, 0);
	CHECK(!c.more && c.backlog == 0 && c.lag_ms == 0);
	CHECK_EQ_INT(sql_int(path, "SELECT upto FROM compaction"), 0);

	/* two hours on, in rounds of 10 chunks looked at */
	int rounds = 0;
	int64_t looked_total = 0;
	do {
		CHECK_EQ_INT(compact_pass(s, now + 7200000, 10, -1, &c), 0);
		CHECK(c.looked >= 0 && c.looked <= 10);
		total += c.merged;
		looked_total += c.looked;
	} while (c.looked > 0 && ++rounds < 100);
	CHECK(rounds < 100);
	/*
	 * Round 1 looks at chunks 1-10, which name (d1, hour 0) and (d2, hour 0),
	 * first d1's (its first chunk is 1): d1's 30 chunks are merged at once
	 * (ids beyond 10 too) into chunk 1, which is the pass's budget, so it
	 * stops before d2's and moves `upto` to 1, below d2's first chunk.
	 * Round 2 looks at the next 10 (all d2's: d1's are gone), merges d2's 30
	 * into chunk 2 and moves `upto` to 20. Round 3 finds the rest: the next
	 * hour's two and d3's two. Round 4: nothing new.
	 */
	CHECK_EQ_INT(looked_total, 24);
	CHECK_EQ_INT(rounds, 3);
	CHECK_EQ_INT(sql_int(path, "SELECT upto = (SELECT max(id) FROM reading_chunks) FROM compaction"), 1);
	/* d1: 30 chunks -> 1 (+1 in the next hour); d2: 30 -> 1 (+1); d3 untouched */
	CHECK_EQ_INT(total, 60);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), 6);
	CHECK_EQ_INT(sql_int(path, "SELECT sum(n) FROM reading_chunks"), 31 * 3 + 301);
	CHECK_EQ_INT(sql_int(path, "SELECT n FROM reading_chunks WHERE device_id = 1 ORDER BY n DESC"), 60);
	readings_joined(s, "c", "d1", after, sizeof(after));
	CHECK_EQ_STR(after, before1);
	readings_joined(s, "c", "d2", after, sizeof(after));
	CHECK_EQ_STR(after, before2);
	/* nothing more to do: a second pass merges nothing */
	CHECK_EQ_INT(compact_pass(s, now + 7200000, 4096, -1, &c), 0);
	CHECK_EQ_INT(c.merged, 0);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM pragma_integrity_check "
				   "WHERE integrity_check != 'ok'"), 0);
	drop(s, path);
}

/*
 * A lent tail is kept by pointer until the commit; a copied body may change
 * at once. A tail reads back with its head written again.
 */
static void test_lent_and_copied_bodies(void)
{
	char path[512], lent[2][16] = {",\"lent\":1}", ",\"lent\":2}"}, copied[16], want[96];
	int64_t ag = 0;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "l", "d", SP_DEV_LIFT, &ag, &d);
	if (s == NULL)
		return;
	CHECK_EQ_INT(store_w_begin(s), 0);
	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(store_w_reading_tail_lent(s, d.id, ag, 1, SP_REC_LIFT, T0 + i, lent[i],
						       strlen(lent[i])), 0);
		snprintf(copied, sizeof(copied), "{\"copy\":%d}", i);
		CHECK_EQ_INT(store_w_reading(s, d.id, ag, 1, SP_REC_LIFT, T0 + 10 + i, copied,
					     strlen(copied)), 0);
		memset(copied, 'x', sizeof(copied) - 1);
	}
	CHECK_EQ_INT(store_w_commit(s), 0);
	struct rows r;
	CHECK_EQ_INT(readings(s, "l", "d", -1, ALL_TIME_FROM, ALL_TIME_TO, 10, &r), 4);
	CHECK_EQ_STR(r.body[0], "{\"copy\":1}");
	CHECK_EQ_STR(r.body[1], "{\"copy\":0}");
	for (int i = 0; i < 2; i++) {
		snprintf(want, sizeof(want), "{\"t\":\"lift\",\"dev\":\"d\",\"ts\":%lld,\"lent\":%d}",
			 (long long)(T0 + 1 - i), 2 - i);
		CHECK_EQ_STR(r.body[2 + i], want);
	}
	/* a rollback forgets lent tails too: nothing of them is read afterwards */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading_tail_lent(s, d.id, ag, 2, SP_REC_LIFT, T0 + 99, lent[0],
					       strlen(lent[0])), 0);
	store_w_rollback(s);
	memset(lent, 0, sizeof(lent));
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(readings(s, "l", "d", -1, ALL_TIME_FROM, ALL_TIME_TO, 10, &r), 4);
	drop(s, path);
}

/* Writes one transaction of `count` readings of a device (ts, body "<tag><i>"). */
static void write_txn(struct store *s, const struct store_device *d, int64_t ag, int64_t ts,
		      int count, const char *tag)
{
	char body[32];
	CHECK_EQ_INT(store_w_begin(s), 0);
	for (int i = 0; i < count; i++) {
		int len = snprintf(body, sizeof(body), "\"%s%d\"", tag, i);
		CHECK_EQ_INT(store_w_reading(s, d->id, ag, 1, SP_REC_LIFT, ts, body, (size_t)len), 0);
	}
	CHECK_EQ_INT(store_w_commit(s), 0);
}

static int64_t compact_until_done(struct store *s, int64_t now)
{
	struct store_compaction c;
	int64_t total = 0;
	int rounds = 0;
	do {
		CHECK_EQ_INT(compact_pass(s, now, 4096, -1, &c), 0);
		total += c.merged;
	} while (c.looked > 0 && ++rounds < 100);
	return total;
}

/*
 * A pass's time bound (store_w_compact max_ms): with 0, each call merges
 * one run and leaves the rest for the next call, `upto` just below the
 * first chunk of the (device, hour) it did not finish; nothing is skipped.
 * Two devices with 10 one-reading chunks each in an hour that is over: 10
 * merged (d1's; `upto` 1, below d2's first chunk, more to do), then 10
 * (d2's; `upto` past all 20, done), then none.
 */
static void test_compaction_time_bound(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0;
	struct store_compaction c;
	struct store_device d1, d2;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "c", "a", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "c", "d1", ag, NULL, SP_DEV_LIFT, NULL, &d1), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "c", "d2", ag, NULL, SP_DEV_LIFT, NULL, &d2), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	for (int i = 0; i < 10; i++) {
		write_txn(s, &d1, ag, HOUR0 + i, 1, "a");
		write_txn(s, &d2, ag, HOUR0 + i, 1, "b");
	}
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), 20);
	int64_t now = (int64_t)time(NULL) * 1000 + 7200000;
	const int64_t want[3] = {10, 10, 0}, want_upto[3] = {1, 20, 20};
	for (int call = 0; call < 3; call++) {
		CHECK_EQ_INT(compact_pass(s, now, 4096, 0, &c), 0);
		CHECK_EQ_INT(c.merged, want[call]);
		CHECK_EQ_INT(sql_int(path, "SELECT upto FROM compaction"), want_upto[call]);
		CHECK_EQ_INT(c.more, call == 0);
	}
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), 2);
	CHECK_EQ_INT(sql_int(path, "SELECT sum(n) FROM reading_chunks"), 20);
	drop(s, path);
}

/*
 * Compaction keeps up with a chunk rate far above one pass's budget. The
 * review's case: 2,000 devices, each commit writing a chunk per device into
 * hours that are over, against passes of 4,096 chunks once a second. A
 * pass that merged its budget left `upto` where it was, so the next one
 * looked at the same chunks again; where new chunks kept landing in those
 * hours every pass spent its budget on the same (device, hour)s, `upto`
 * never moved and the devices past the first budget's were never merged.
 * Scaled down here: 64 devices, a budget of 16, each commit 64 one-reading
 * chunks into the same hour that is over, all at one ts (so storage order
 * alone orders a device's readings).
 *  1. One pass per commit, so four times as many chunks written as a pass
 *     may merge: compaction falls behind (and says so: more, backlog), but
 *     every pass moves `upto` past the (device, hour)s it finished, so the
 *     passes walk through the chunks instead of going round the same ones.
 *  2. Passes while the store says it is behind, as the writer now runs
 *     them (at most KEEPUP_PASSES per commit here; the writer's rest
 *     between passes bounds them in time): the backlog part 1 left shrinks
 *     from commit to commit, and once it is gone each commit's chunks are
 *     merged before the next one (backlog 0, one chunk per device).
 * Every reading is there once, in the order written.
 */
#define KEEPUP_DEVICES 64
#define KEEPUP_BUDGET  16
#define KEEPUP_SLOW    20 /* commits with one pass each */
#define KEEPUP_FAST    12 /* then commits with passes while behind */
#define KEEPUP_PASSES  16 /* at most, after a commit */
static void test_compaction_keeps_up(void)
{
	char path[512], body[16], want[16];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0, now = (int64_t)time(NULL) * 1000 + 7200000;
	struct store_compaction c;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "k", "a", &ag), 0);
	int64_t ids[KEEPUP_DEVICES];
	for (int d = 0; d < KEEPUP_DEVICES; d++) {
		struct store_device sd;
		snprintf(body, sizeof(body), "d%d", d);
		CHECK_EQ_INT(store_w_upsert_device(s, "k", body, ag, NULL, SP_DEV_LIFT, NULL, &sd), 0);
		ids[d] = sd.id;
	}
	CHECK_EQ_INT(store_w_commit(s), 0);
	int64_t upto = 0, backlog = INT64_MAX;
	for (int commit = 0; commit < KEEPUP_SLOW + KEEPUP_FAST; commit++) {
		CHECK_EQ_INT(store_w_begin(s), 0);
		for (int d = 0; d < KEEPUP_DEVICES; d++) {
			int len = snprintf(body, sizeof(body), "%d", commit);
			CHECK_EQ_INT(store_w_reading(s, ids[d], ag, commit + 1, SP_REC_LIFT, HOUR0 + 1000,
						     body, (size_t)len), 0);
		}
		CHECK_EQ_INT(store_w_commit(s), 0);
		int passes = 0;
		do {
			CHECK_EQ_INT(compact_pass(s, now, KEEPUP_BUDGET, -1, &c), 0);
			int64_t was = upto;
			upto = sql_int(path, "SELECT upto FROM compaction");
			if (commit < KEEPUP_SLOW) {
				CHECK(upto > was);
				CHECK(c.more && c.backlog > 0 && c.lag_ms > 0);
			}
		} while (commit >= KEEPUP_SLOW && c.more && ++passes < KEEPUP_PASSES);
		if (commit < KEEPUP_SLOW)
			continue;
		/* part 2: the backlog only shrinks, and is gone after a few commits */
		CHECK(c.backlog <= backlog);
		backlog = c.backlog;
		if (commit >= KEEPUP_SLOW + KEEPUP_FAST / 2) {
			CHECK(!c.more);
			CHECK_EQ_INT(c.backlog, 0);
			CHECK_EQ_INT(c.lag_ms, 0);
			CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), KEEPUP_DEVICES);
		}
	}
	CHECK_EQ_INT(sql_int(path, "SELECT sum(n) FROM reading_chunks"),
		     KEEPUP_DEVICES * (KEEPUP_SLOW + KEEPUP_FAST));
	for (int d = 0; d < KEEPUP_DEVICES; d++) {
		struct rows r;
		snprintf(body, sizeof(body), "d%d", d);
		CHECK_EQ_INT(readings(s, "k", body, -1, ALL_TIME_FROM, ALL_TIME_TO, ROWS_MAX, &r),
			     KEEPUP_SLOW + KEEPUP_FAST);
		for (int i = 0; i < r.n && i < ROWS_MAX; i++) {
			snprintf(want, sizeof(want), "%d", KEEPUP_SLOW + KEEPUP_FAST - 1 - i);
			CHECK_EQ_STR(r.body[i], want);
		}
	}
	drop(s, path);
}

/*
 * Ties on ts keep their order through compaction, also around a full chunk
 * that is not merged; and chunks written after the newest one was merged
 * away are still found (ids are never handed out twice).
 */
static void test_compaction_keeps_order(void)
{
	char path[512], before[4096], after[4096];
	int64_t ag = 0, now = (int64_t)time(NULL) * 1000 + 7200000;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "o", "d", SP_DEV_LIFT, &ag, &d);
	if (s == NULL)
		return;
	/* all at one ts: small, small, full (300), small, small */
	write_txn(s, &d, ag, HOUR0, 1, "a");
	write_txn(s, &d, ag, HOUR0, 1, "b");
	write_txn(s, &d, ag, HOUR0, 300, "f");
	write_txn(s, &d, ag, HOUR0, 2, "c");
	write_txn(s, &d, ag, HOUR0, 1, "e");
	struct rows r;
	CHECK_EQ_INT(readings(s, "o", "d", -1, HOUR0, HOUR0, 3, &r), 3);
	CHECK_EQ_STR(r.body[0], "\"e0\"");
	CHECK_EQ_STR(r.body[1], "\"c1\"");
	CHECK_EQ_STR(r.body[2], "\"c0\"");
	readings_joined(s, "o", "d", before, sizeof(before));
	CHECK_EQ_INT(compact_until_done(s, now), 4);
	/* the two runs became one chunk each; the full one stayed */
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), 3);
	readings_joined(s, "o", "d", after, sizeof(after));
	CHECK_EQ_STR(after, before);
	CHECK_EQ_INT(readings(s, "o", "d", -1, HOUR0, HOUR0, 1000, &r), 305);
	/* the newest chunk was merged away (its id given up): new chunks still get new ids */
	write_txn(s, &d, ag, HOUR0 + 5 * 3600000LL, 1, "x");
	write_txn(s, &d, ag, HOUR0 + 5 * 3600000LL, 1, "y");
	char q[256];
	snprintf(q, sizeof(q), "SELECT min(id) > (SELECT upto FROM compaction) FROM reading_chunks "
			       "WHERE ts_min >= %lld", (long long)(HOUR0 + 5 * 3600000LL));
	CHECK_EQ_INT(sql_int(path, q), 1);
	CHECK_EQ_INT(compact_until_done(s, now), 2);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), 4);
	drop(s, path);
}

/*
 * New chunks are numbered by the writer. A new file's table declares no
 * AUTOINCREMENT (migration 9 made it again while empty); a file of schema 8
 * holding readings keeps the declaration through migration 9 and works the
 * same: ids rise in write order, stay above compaction's mark after the
 * newest chunks were merged away, and SQLite's own counter follows them.
 */
static void test_chunk_ids(void)
{
	char path[512];
	int64_t ag = 0, now = (int64_t)time(NULL) * 1000 + 7200000;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "i", "d", SP_DEV_LIFT, &ag, &d);
	if (s == NULL)
		return;
	static const char *const autoinc = "SELECT sql LIKE '%AUTOINCREMENT%' FROM sqlite_master "
					   "WHERE name = 'reading_chunks'";
	CHECK_EQ_INT(sql_int(path, autoinc), 0);
	write_txn(s, &d, ag, HOUR0, 1, "a");
	store_close(s);
	/* a file of schema 8 holding readings: the table as it declared it, rows and all */
	sql_exec(path, "BEGIN;" BACK_TO_SCHEMA_9
		       "DELETE FROM schema_version WHERE version = 9;"
		       "ALTER TABLE reading_chunks RENAME TO old_chunks;"
		       "CREATE TABLE reading_chunks(id INTEGER PRIMARY KEY AUTOINCREMENT,"
		       " device_id INTEGER NOT NULL, ts_min INTEGER NOT NULL,"
		       " ts_max INTEGER NOT NULL, n INTEGER NOT NULL, at INTEGER NOT NULL,"
		       " meta BLOB NOT NULL, body TEXT NOT NULL, fmt INTEGER NOT NULL DEFAULT 0);"
		       "INSERT INTO reading_chunks SELECT * FROM old_chunks;"
		       "DROP TABLE old_chunks;"
		       "CREATE INDEX reading_chunks_device_ts ON reading_chunks(device_id, ts_max);"
		       "COMMIT;");
	s = open_migrated(path);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sql_int(path, autoinc), 1);
	write_txn(s, &d, ag, HOUR0, 1, "b");
	write_txn(s, &d, ag, HOUR0, 1, "c");
	CHECK_EQ_INT(sql_int(path, "SELECT group_concat(id) = '1,2,3' FROM "
				   "(SELECT id FROM reading_chunks ORDER BY id)"),
		     1);
	CHECK_EQ_INT(sql_int(path, "SELECT seq FROM sqlite_sequence WHERE name = 'reading_chunks'"),
		     3);
	/* all three merged into one, which takes the smallest id: 2 and 3 are given up */
	CHECK_EQ_INT(compact_until_done(s, now), 3);
	CHECK_EQ_INT(sql_int(path, "SELECT group_concat(id) FROM reading_chunks"), 1);
	CHECK_EQ_INT(sql_int(path, "SELECT upto FROM compaction"), 3);
	write_txn(s, &d, ag, HOUR0 + 5 * 3600000LL, 1, "d");
	CHECK_EQ_INT(sql_int(path, "SELECT max(id) FROM reading_chunks"), 4);
	struct rows r;
	CHECK_EQ_INT(readings(s, "i", "d", -1, HOUR0, HOUR0 + 5 * 3600000LL, 10, &r), 4);
	CHECK_EQ_STR(r.body[0], "\"d0\"");
	CHECK_EQ_STR(r.body[3], "\"a0\"");
	drop(s, path);
}

/* ------------------------------------------------- reading one record kind */

/* Appends each reading's JSON and a newline (store_r_readings callback; ctx: sp_buf). */
static int on_reading_line(void *ctx, const char *body, size_t len)
{
	struct sp_buf *b = ctx;
	CHECK_EQ_INT(sp_buf_append(b, body, len), 0);
	CHECK_EQ_INT(sp_buf_puts(b, "\n"), 0);
	return 0;
}

/* Whether a test reading's JSON says it is of kind k: its "k" field (kinds_device below). */
static bool line_of_kind(const char *line, int k)
{
	char a[16], b[16];
	snprintf(a, sizeof(a), "\"k\":%d,", k);
	snprintf(b, sizeof(b), "\"k\":%d}", k);
	return strstr(line, a) != NULL || strstr(line, b) != NULL;
}

/*
 * Asks for the newest `limit` readings of one kind and checks the answer is
 * the unfiltered one (every reading of [from, to]) filtered by kind and cut
 * at limit: the same readings in the same order. Returns their number.
 */
static int check_kind_query(struct store *s, const char *site, const char *dev, int kind,
			    int64_t from, int64_t to, int64_t limit)
{
	struct sp_buf all = SP_BUF_INIT(0), want = SP_BUF_INIT(0), got = SP_BUF_INIT(0);
	struct store_readings_query q = {site, dev, -1, from, to, 10000, NULL};
	int64_t kept = 0;
	CHECK(store_r_readings(s, &q, on_reading_line, &all) >= 0);
	for (char *line = all.data, *end; line && *line && kept < limit; line = end + 1) {
		end = strchr(line, '\n');
		if (end == NULL)
			break;
		*end = '\0';
		if (kind < 0 || line_of_kind(line, kind)) {
			*end = '\n';
			CHECK_EQ_INT(sp_buf_append(&want, line, (size_t)(end - line) + 1), 0);
			kept++;
		}
		*end = '\n';
	}
	q.kind = kind;
	q.limit = limit;
	int n = store_r_readings(s, &q, on_reading_line, &got);
	CHECK_EQ_INT(n, kept);
	if (strcmp(got.data ? got.data : "", want.data ? want.data : "") != 0) {
		fprintf(stderr, "  kind %d [%lld, %lld] limit %lld:\n  got  %s\n  want %s\n", kind,
			(long long)from, (long long)to, (long long)limit, got.data ? got.data : "",
			want.data ? want.data : "");
		CHECK(!"the kind's readings are the unfiltered ones filtered");
	}
	sp_buf_free(&all);
	sp_buf_free(&want);
	sp_buf_free(&got);
	return n;
}

/* Every kind, several limits, the whole history and a window of it: see check_kind_query. */
static void check_kind_queries(struct store *s, const char *site, const char *dev)
{
	static const int64_t limits[] = {1, 2, 5, 10000};
	static const int64_t windows[][2] = {
		{ALL_TIME_FROM, ALL_TIME_TO},
		{HOUR0 + 10 * 3600000LL, HOUR0 + 25 * 3600000LL + 59 * 60000LL},
	};
	for (int k = -1; k < SP_REC_KIND_COUNT; k++)
		for (size_t w = 0; w < sizeof(windows) / sizeof(windows[0]); w++)
			for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++)
				check_kind_query(s, site, dev, k, windows[w][0], windows[w][1],
						 limits[l]);
}

/* The number of the device's readings of kind k (all time). */
static int count_kind(struct store *s, const char *site, const char *dev, int k)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct store_readings_query q = {site, dev, k, ALL_TIME_FROM, ALL_TIME_TO, 10000, NULL};
	int n = store_r_readings(s, &q, on_reading_line, &b);
	sp_buf_free(&b);
	return n;
}

#define KINDS_HOURS 40

/*
 * Writes a device's readings of several kinds over KINDS_HOURS hours, one
 * chunk each per transaction: per hour five readings (minutes 0-4), lifts
 * save a fault every 7th hour (stored bare, as the collector does), a
 * session every 5th, a port in hours 20-22; in even hours a second
 * transaction of two lifts (minutes 30, 31); then a late fault in hour 2,
 * in a chunk of its own written last. No station reading at all. Each
 * reading's JSON says its kind ("k"). Returns the number of chunks that
 * hold lifts only.
 */
static int kinds_device(struct store *s, const struct store_device *d, int64_t ag)
{
	char body[64];
	int lift_only = 0;
	for (int h = 0; h < KINDS_HOURS; h++) {
		int64_t hour = HOUR0 + h * 3600000LL;
		bool mixed = false;
		CHECK_EQ_INT(store_w_begin(s), 0);
		for (int i = 0; i < 5; i++) {
			int k = SP_REC_LIFT;
			if (h % 7 == 3 && i == 2)
				k = SP_REC_FAULT;
			else if (h % 5 == 1 && i == 4)
				k = SP_REC_SESSION;
			else if (h >= 20 && h <= 22 && i == 0)
				k = SP_REC_PORT;
			mixed |= k != SP_REC_LIFT;
			int64_t ts = hour + 60000LL * i;
			if (k == SP_REC_FAULT) {
				int len = snprintf(body, sizeof(body), ",\"k\":%d,\"h\":%d}", k, h);
				CHECK_EQ_INT(store_w_reading_tail(s, d->id, ag, h + 1, (enum sp_rec_kind)k,
								  ts, body, (size_t)len), 0);
			} else {
				int len = snprintf(body, sizeof(body), "{\"k\":%d,\"h\":%d,\"i\":%d}", k, h, i);
				CHECK_EQ_INT(store_w_reading(s, d->id, ag, h + 1, (enum sp_rec_kind)k, ts,
							     body, (size_t)len), 0);
			}
		}
		CHECK_EQ_INT(store_w_commit(s), 0);
		lift_only += !mixed;
		if (h % 2 == 0) {
			CHECK_EQ_INT(store_w_begin(s), 0);
			for (int i = 30; i < 32; i++) {
				int len = snprintf(body, sizeof(body), "{\"k\":0,\"h\":%d,\"i\":%d}", h, i);
				CHECK_EQ_INT(store_w_reading(s, d->id, ag, h + 1, SP_REC_LIFT,
							     hour + 60000LL * i, body, (size_t)len), 0);
			}
			CHECK_EQ_INT(store_w_commit(s), 0);
			lift_only++;
		}
	}
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading(s, d->id, ag, 99, SP_REC_FAULT, HOUR0 + 2 * 3600000LL + 45 * 60000LL,
				     "{\"k\":4,\"late\":1}", 16), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	return lift_only;
}

/*
 * A read for one kind (GET /api/v1/readings?t=) answers exactly what the
 * unfiltered read filtered by kind would, whatever each chunk's kinds
 * (schema 15) says: written by the writer (the kinds it holds), NULL (a
 * chunk from before 15: read), merged by compaction (the kinds of its
 * readings, also from NULL parts). And a chunk whose kinds lacks the kind
 * is passed over in SQLite on that column alone: its meta and body are
 * never looked at (a rare kind no longer decodes the whole history).
 */
static void test_readings_by_kind(void)
{
	char path[512], q[160];
	int64_t ag = 0, now = (int64_t)time(NULL) * 1000 + 7200000;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "k", "d", SP_DEV_LIFT, &ag, &d);
	if (s == NULL)
		return;
	int lift_only = kinds_device(s, &d, ag);
	int chunks = KINDS_HOURS + KINDS_HOURS / 2 + 1;
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), chunks);
	/* every chunk written names its kinds: a bit per kind */
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE kinds IS NULL"), 0);
	snprintf(q, sizeof(q), "SELECT count(*) = %d FROM reading_chunks WHERE kinds = 1", lift_only);
	CHECK_EQ_INT(sql_int(path, q), 1);
	snprintf(q, sizeof(q), "SELECT kinds FROM reading_chunks WHERE ts_min = %lld",
		 (long long)(HOUR0 + 3 * 3600000LL));
	CHECK_EQ_INT(sql_int(path, q), 1 << SP_REC_LIFT | 1 << SP_REC_FAULT);
	snprintf(q, sizeof(q), "SELECT kinds FROM reading_chunks WHERE ts_min = %lld",
		 (long long)(HOUR0 + 21 * 3600000LL));
	CHECK_EQ_INT(sql_int(path, q), 1 << SP_REC_LIFT | 1 << SP_REC_PORT | 1 << SP_REC_SESSION);
	CHECK_EQ_INT(sql_int(path, "SELECT kinds FROM reading_chunks ORDER BY id DESC"),
		     1 << SP_REC_FAULT);
	check_kind_queries(s, "k", "d");
	/* hours 3, 10, 17, 24, 31, 38 and the late one */
	CHECK_EQ_INT(count_kind(s, "k", "d", SP_REC_FAULT), 7);
	CHECK_EQ_INT(count_kind(s, "k", "d", SP_REC_STATION), 0);

	/* the chunk of the late fault says it holds lifts only: t=fault passes it over */
	sql_exec(path, "UPDATE reading_chunks SET kinds = 1 WHERE id = (SELECT max(id) FROM reading_chunks)");
	CHECK_EQ_INT(count_kind(s, "k", "d", SP_REC_FAULT), 6);
	CHECK_EQ_INT(count_kind(s, "k", "d", -1), KINDS_HOURS * 5 + KINDS_HOURS + 1);

	/* chunks from before schema 15 (kinds NULL), beside newer ones, are read */
	sql_exec(path, "UPDATE reading_chunks SET kinds = NULL WHERE id % 2 = 1");
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE kinds IS NULL"),
		     (chunks + 1) / 2);
	CHECK_EQ_INT(count_kind(s, "k", "d", SP_REC_FAULT), 7);
	check_kind_queries(s, "k", "d");

	/*
	 * An old file (every chunk NULL) compacted: each merged chunk gets the
	 * kinds of its readings; a chunk compaction leaves alone stays NULL.
	 * Even hours' two chunks merge (hour 2's with the late fault's).
	 */
	sql_exec(path, "UPDATE reading_chunks SET kinds = NULL");
	struct sp_buf before = SP_BUF_INIT(0), after = SP_BUF_INIT(0);
	struct store_readings_query all = {"k", "d", -1, ALL_TIME_FROM, ALL_TIME_TO, 10000, NULL};
	CHECK(store_r_readings(s, &all, on_reading_line, &before) > 0);
	CHECK_EQ_INT(compact_until_done(s, now), KINDS_HOURS + 1);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE kinds IS NULL"),
		     KINDS_HOURS / 2);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE kinds IS NOT NULL"),
		     KINDS_HOURS / 2);
	snprintf(q, sizeof(q), "SELECT kinds FROM reading_chunks WHERE ts_min = %lld",
		 (long long)(HOUR0 + 2 * 3600000LL));
	CHECK_EQ_INT(sql_int(path, q), 1 << SP_REC_LIFT | 1 << SP_REC_FAULT);
	snprintf(q, sizeof(q), "SELECT kinds FROM reading_chunks WHERE ts_min = %lld",
		 (long long)(HOUR0 + 4 * 3600000LL));
	CHECK_EQ_INT(sql_int(path, q), 1 << SP_REC_LIFT);
	CHECK(store_r_readings(s, &all, on_reading_line, &after) > 0);
	CHECK_EQ_STR(after.data, before.data);
	CHECK_EQ_INT(count_kind(s, "k", "d", SP_REC_FAULT), 7);
	check_kind_queries(s, "k", "d");
	sp_buf_free(&before);
	sp_buf_free(&after);
	drop(s, path);
}

/*
 * Schema 15 adds reading_chunks.kinds. A file of 14 holding readings gains
 * the column, NULL in every chunk already there (rewritten: none), and
 * reads every kind as before; chunks written after name their kinds.
 */
static void test_migrates_chunk_kinds(void)
{
	char path[512];
	int64_t ag = 0, now = (int64_t)time(NULL) * 1000 + 7200000;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "k", "d", SP_DEV_LIFT, &ag, &d);
	if (s == NULL)
		return;
	kinds_device(s, &d, ag);
	store_close(s);
	sql_exec(path, "BEGIN;" BACK_TO_SCHEMA_16
		       "DELETE FROM schema_version WHERE version >= 15;"
		       "ALTER TABLE alerts DROP COLUMN remind_shift;"
		       "ALTER TABLE reading_chunks DROP COLUMN kinds;"
		       "COMMIT;");
	static const char *const has_kinds = "SELECT count(*) FROM pragma_table_info('reading_chunks') "
					     "WHERE name = 'kinds'";
	CHECK_EQ_INT(sql_int(path, has_kinds), 0);
	s = open_migrated(path);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sql_int(path, has_kinds), 1);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) = (SELECT count(*) FROM reading_chunks) "
				   "FROM reading_chunks WHERE kinds IS NULL"),
		     1);
	CHECK_EQ_INT(count_kind(s, "k", "d", SP_REC_FAULT), 7);
	check_kind_queries(s, "k", "d");
	/* written now: named */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, 200, SP_REC_SESSION, HOUR0 + 50 * 3600000LL,
				     "{\"k\":3}", 7), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT kinds FROM reading_chunks ORDER BY id DESC"),
		     1 << SP_REC_SESSION);
	CHECK_EQ_INT(count_kind(s, "k", "d", SP_REC_SESSION), 9);
	/* and compaction names what it merges */
	CHECK_EQ_INT(compact_until_done(s, now), KINDS_HOURS + 1);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE kinds IS NULL"),
		     KINDS_HOURS / 2);
	check_kind_queries(s, "k", "d");
	drop(s, path);
}

/*
 * Schema 17 adds agents.dropped_seen, the agent's last_seen when its last
 * drop began (offline.c: the devices' reconnect grace). A file of 15 gains
 * it: an agent offline now has its last_seen (it dropped after its last
 * data), one online 0 (no drop known); the next drop records as usual.
 */
static void test_migrates_dropped_seen(void)
{
	const int64_t at = 1800000000000LL;
	char path[512];
	int64_t on = 0, off = 0;
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "m", "on", &on), 0);
	CHECK_EQ_INT(store_w_agent(s, "m", "off", &off), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, on, at - 5000), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, off, at - 9000), 0);
	CHECK_EQ_INT(store_w_agent_state(s, off, false, at - 1000), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	store_close(s);
	sql_exec(path, "BEGIN;" BACK_TO_SCHEMA_16 "COMMIT;");
	static const char *const has_col = "SELECT count(*) FROM pragma_table_info('agents') "
					   "WHERE name = 'dropped_seen'";
	CHECK_EQ_INT(sql_int(path, has_col), 0);
	s = open_migrated(path);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sql_int(path, has_col), 1);
	CHECK_EQ_INT(sql_int(path, "SELECT dropped_seen FROM agents WHERE agent = 'off'"),
		     at - 9000);
	CHECK_EQ_INT(sql_int(path, "SELECT dropped_seen FROM agents WHERE agent = 'on'"), 0);
	/* a drop after the migration: its last data before it */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent_state(s, on, false, at), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT dropped_seen FROM agents WHERE agent = 'on'"),
		     at - 5000);
	drop(s, path);
}

/* A devices row out of range (a damaged or edited file) is clamped, never wrapped. */
static void test_device_row_clamped(void)
{
	char path[512];
	int64_t ag = 0;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "c", "d", SP_DEV_CHARGER, &ag, &d);
	if (s == NULL)
		return;
	sql_exec(path, "UPDATE devices SET kind = 9, ports = 70000, floor_min = -40000, "
		       "floor_max = 40000");
	struct store_device g;
	memset(&g, 0x55, sizeof(g));
	CHECK_EQ_INT(store_w_device(s, "c", "d", &g, NULL), 0);
	CHECK_EQ_INT(g.id, d.id);
	CHECK_EQ_INT(g.kind, SP_DEV_UNKNOWN);
	CHECK_EQ_INT(g.ports, SP_PORT_MAX);
	CHECK(g.has_floors);
	CHECK_EQ_INT(g.floor_min, SP_FLOOR_MIN);
	CHECK_EQ_INT(g.floor_max, SP_FLOOR_MAX);
	sql_exec(path, "UPDATE devices SET kind = -1, ports = -5, floor_min = NULL, floor_max = NULL");
	CHECK_EQ_INT(store_w_device(s, "c", "d", &g, NULL), 0);
	CHECK_EQ_INT(g.kind, SP_DEV_UNKNOWN);
	CHECK_EQ_INT(g.ports, 0);
	CHECK(!g.has_floors);
	drop(s, path);
}

/* A damaged chunk (its entries do not match its body) is skipped by readers and left by compaction. */
static void test_damaged_chunk(void)
{
	char path[512];
	int64_t ag = 0, now = (int64_t)time(NULL) * 1000 + 7200000;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "z", "d", SP_DEV_LIFT, &ag, &d);
	if (s == NULL)
		return;
	write_txn(s, &d, ag, HOUR0, 1, "a");
	write_txn(s, &d, ag, HOUR0 + 1, 1, "b");
	write_txn(s, &d, ag, HOUR0 + 2, 1, "c");
	/* the middle one's body is two bytes longer than its entry says */
	sql_exec(path, "UPDATE reading_chunks SET body = body || 'xx' "
		       "WHERE id = (SELECT min(id) + 1 FROM reading_chunks)");
	struct rows r;
	CHECK_EQ_INT(readings(s, "z", "d", -1, ALL_TIME_FROM, ALL_TIME_TO, 10, &r), 2);
	CHECK_EQ_STR(r.body[0], "\"c0\"");
	CHECK_EQ_STR(r.body[1], "\"a0\"");
	/* it ends the run: nothing to merge on either side, and it stays as it is */
	CHECK_EQ_INT(compact_until_done(s, now), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), 3);
	/* damaged newest chunk: the device is listed, without a latest reading */
	sql_exec(path, "UPDATE reading_chunks SET meta = x'00' WHERE id = (SELECT max(id) FROM reading_chunks)");
	struct dev_rows dr;
	memset(&dr, 0, sizeof(dr));
	CHECK_EQ_INT(store_r_devices(s, "z", HOUR0, 60000, 0, on_device, &dr), 0);
	CHECK_EQ_INT(dr.n, 1);
	CHECK(!dr.r[0].has_latest);
	/*
	 * found again by every read (a dashboard polls the device list): logged
	 * a few times a minute, not 50 times (stderr caught in a file)
	 */
	char logpath[600];
	snprintf(logpath, sizeof(logpath), "%s.stderr", path);
	int saved = dup(2), fd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	CHECK(saved >= 0 && fd >= 0);
	if (saved >= 0 && fd >= 0) {
		dup2(fd, 2);
		for (int i = 0; i < 50; i++) {
			memset(&dr, 0, sizeof(dr));
			store_r_devices(s, "z", HOUR0, 60000, 0, on_device, &dr);
		}
		dup2(saved, 2);
		int lines = 0;
		FILE *f = fopen(logpath, "r");
		char line[1024];
		while (f && fgets(line, sizeof(line), f))
			lines += strstr(line, "damaged readings chunk") != NULL;
		if (f)
			fclose(f);
		CHECK(lines >= 1 && lines <= 5);
		if (lines < 1 || lines > 5)
			fprintf(stderr, "  %d lines of a damaged chunk for 50 reads\n", lines);
	}
	if (fd >= 0)
		close(fd);
	if (saved >= 0)
		close(saved);
	unlink(logpath);
	drop(s, path);
}

static void test_rollback_leaves_nothing(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0, keep = 0;
	struct store_device d;
	/* one committed agent, to see that rollback only undoes its own batch */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-k", "keep", &keep), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-r", "agent-r", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-r", "dev-r", ag, NULL, SP_DEV_LIFT, NULL, &d), 0);
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, 1, SP_REC_LIFT, T0, "{}", 2), 0);
	struct store_agent_progress p = {.acked = 9, .done = "11-12", .missing = "", .gap_since_ms = T0};
	CHECK_EQ_INT(store_w_save_progress(s, keep, &p), 0);
	CHECK_EQ_INT(store_w_agent_state(s, ag, true, T0), 0);
	store_w_rollback(s);

	struct rows r;
	CHECK_EQ_INT(readings(s, "site-r", "dev-r", -1, ALL_TIME_FROM, ALL_TIME_TO, 10, &r), SP_ENOTFOUND);
	struct dev_rows dr = {0};
	CHECK_EQ_INT(store_r_devices(s, NULL, T0, 60000, 0, on_device, &dr), 0);
	CHECK_EQ_INT(dr.n, 0);
	struct store_device g;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_device(s, "site-r", "dev-r", &g, NULL), SP_ENOTFOUND);
	CHECK_EQ_INT(store_w_device_count(s), 0);
	struct agent_rows ar = {0};
	CHECK_EQ_INT(store_w_load_agents(s, on_agent, &ar), 0);
	CHECK_EQ_INT(ar.n, 1);
	CHECK_EQ_STR(ar.r[0].agent, "keep");
	CHECK_EQ_INT(ar.r[0].acked, 0); /* the progress update was rolled back */
	CHECK_EQ_STR(ar.r[0].done, "");
	CHECK_EQ_INT(store_w_commit(s), 0);
	/* a rollback outside a transaction is harmless */
	store_w_rollback(s);
	CHECK_EQ_INT(store_r_ping(s), 0);
	drop(s, path);
}

/* Closes the store and opens its file again (a restart); NULL (checked, file removed) on failure. */
static struct store *reopen(struct store *s, const char *path)
{
	store_close(s);
	struct store_params sp = {.path = path, .readers = 2};
	s = store_open(&sp);
	CHECK(s != NULL);
	if (s == NULL)
		harness_remove_db(path);
	return s;
}

static void test_progress_round_trip(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t a1 = 0, a2 = 0;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &a1), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-b", "agent-2", &a2), 0);
	struct store_agent_progress p = {
		.acked = 42, .done = "44-45,50-50", .missing = "3-3,7-9", .gap_since_ms = T0 + 7};
	CHECK_EQ_INT(store_w_save_progress(s, a1, &p), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	/* a second save overwrites; NULL texts are stored as empty */
	CHECK_EQ_INT(store_w_begin(s), 0);
	struct store_agent_progress p2 = {.acked = 43, .done = NULL, .missing = "3-3", .gap_since_ms = 0};
	CHECK_EQ_INT(store_w_save_progress(s, a2, &p2), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	/* and they survive a reopen */
	if ((s = reopen(s, path)) == NULL)
		return;
	struct agent_rows ar = {0};
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_load_agents(s, on_agent, &ar), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(ar.n, 2);
	int seen = 0;
	for (int i = 0; i < ar.n && i < 16; i++) {
		if (ar.r[i].id == a1) {
			seen |= 1;
			CHECK_EQ_STR(ar.r[i].site, "site-a");
			CHECK_EQ_STR(ar.r[i].agent, "agent-1");
			CHECK_EQ_INT(ar.r[i].acked, 42);
			CHECK_EQ_STR(ar.r[i].done, "44-45,50-50");
			CHECK_EQ_STR(ar.r[i].missing, "3-3,7-9");
			CHECK_EQ_INT(ar.r[i].gap_since, T0 + 7);
		} else if (ar.r[i].id == a2) {
			seen |= 2;
			CHECK_EQ_STR(ar.r[i].site, "site-b");
			CHECK_EQ_INT(ar.r[i].acked, 43);
			CHECK(!ar.r[i].done_null);
			CHECK_EQ_STR(ar.r[i].done, "");
			CHECK_EQ_STR(ar.r[i].missing, "3-3");
			CHECK_EQ_INT(ar.r[i].gap_since, 0);
		}
	}
	CHECK_EQ_INT(seen, 3);
	drop(s, path);
}

/* Loads the agents and checks one's progress. */
static void check_loaded(struct store *s, int64_t id, int64_t acked, const char *done,
			 const char *missing, int64_t gap)
{
	struct agent_rows ar = {0};
	CHECK_EQ_INT(store_w_load_agents(s, on_agent, &ar), 0);
	int i = 0;
	while (i < ar.n && i < 16 && ar.r[i].id != id)
		i++;
	CHECK(i < ar.n && i < 16); /* the agent was loaded */
	if (i >= ar.n || i >= 16)
		return;
	CHECK_EQ_INT(ar.r[i].acked, acked);
	CHECK_EQ_STR(ar.r[i].done, done);
	CHECK_EQ_STR(ar.r[i].missing, missing);
	CHECK_EQ_INT(ar.r[i].gap_since, gap);
}

/*
 * The progress log: a commit's entries are one row; a load gives each agent
 * its newest entry, else its row; a rollback drops the entries; a fold
 * (saves, then clear) empties it; a damaged row fails the load.
 */
static void test_progress_log(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	static const char *const rows = "SELECT count(*) FROM progress_log";
	int64_t a1 = 0, a2 = 0, a3 = 0;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &a1), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-2", &a2), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-b", "agent-3", &a3), 0);
	struct store_agent_progress row1 = {.acked = 10, .done = "", .missing = ""};
	struct store_agent_progress row3 = {.acked = 5, .done = "7-8", .missing = "", .gap_since_ms = 9};
	CHECK_EQ_INT(store_w_save_progress(s, a1, &row1), 0);
	CHECK_EQ_INT(store_w_save_progress(s, a3, &row3), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, rows), 0); /* saves write rows, not the log */

	struct store_agent_progress l1 = {.acked = 20, .done = "22-23", .missing = "1-1",
					  .gap_since_ms = T0 + 1};
	struct store_agent_progress l2 = {.acked = 7, .done = NULL, .missing = NULL};
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_log_progress(s, a1, &l1), 0);
	CHECK_EQ_INT(store_w_log_progress(s, a2, &l2), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, rows), 1); /* one row for the commit */
	struct store_agent_progress l1b = {.acked = 30, .done = "", .missing = "1-1,4-4"};
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_log_progress(s, a1, &l1b), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	struct store_agent_progress gone = {.acked = 99, .done = "101-101", .missing = ""};
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_log_progress(s, a2, &gone), 0);
	store_w_rollback(s);
	/* a commit with nothing logged writes no row: the rolled-back entries are gone */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, rows), 2);

	/* a fresh start reads the newest entry of each agent, else its row */
	if ((s = reopen(s, path)) == NULL)
		return;
	check_loaded(s, a1, 30, "", "1-1,4-4", 0);
	check_loaded(s, a2, 7, "", "", 0);
	check_loaded(s, a3, 5, "7-8", "", 9);

	/* a fold: every agent saved, the log cleared (this transaction's entries too) */
	struct store_agent_progress later = {.acked = 31, .done = "", .missing = ""};
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_save_progress(s, a1, &l1b), 0);
	CHECK_EQ_INT(store_w_save_progress(s, a2, &l2), 0);
	CHECK_EQ_INT(store_w_log_progress(s, a1, &later), 0);
	CHECK_EQ_INT(store_w_clear_progress_log(s), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, rows), 0);
	check_loaded(s, a1, 30, "", "1-1,4-4", 0);
	check_loaded(s, a2, 7, "", "", 0);

	/*
	 * The format docs/internals/exactly-once.md and the file's top describe,
	 * written by hand: version 1; agent a2, acked 258 (a varint of two bytes),
	 * gap_since 1, done "5-6", missing "".
	 */
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO progress_log(entries) VALUES (x'01%02x820201" "03352d36" "00')",
		 (unsigned)a2);
	sql_exec(path, sql);
	check_loaded(s, a2, 258, "5-6", "", 1);
	check_loaded(s, a3, 5, "7-8", "", 9);

	/* damaged rows: the load fails rather than guess */
	static const char *const damaged[] = {
		"x'02'",                   /* unknown version */
		"x''",                     /* not even a version */
		"x'0102'",                 /* an entry cut short after its agent */
		"x'010100000941424344'",   /* a done of 9 bytes with 4 left */
		"x'01010000010000'",       /* a done of one NUL byte */
		"x'01ffffffffffffffffffff01'", /* a varint past 64 bits */
	};
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		snprintf(sql, sizeof(sql), "DELETE FROM progress_log;"
					   "INSERT INTO progress_log(entries) VALUES (%s)", damaged[i]);
		sql_exec(path, sql);
		struct agent_rows ar = {0};
		CHECK_EQ_INT(store_w_load_agents(s, on_agent, &ar), SP_EIO);
	}
	sql_exec(path, "DELETE FROM progress_log");
	check_loaded(s, a1, 30, "", "1-1,4-4", 0);
	drop(s, path);
}

/*
 * A commit that fails (here its chunk insert, refused by a trigger) writes
 * none of its log entries and leaves none for the next commit: they describe
 * a state the writer has rolled back (seqtrack_abort), and written later
 * they would count messages never stored as handled.
 */
static void test_progress_log_failed_commit(void)
{
	char path[512];
	int64_t ag = 0;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "site-a", "lift-1", SP_DEV_LIFT, &ag,
					    &d);
	if (s == NULL)
		return;
	sql_exec(path, "CREATE TRIGGER no_chunks BEFORE INSERT ON reading_chunks "
		       "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
	struct store_agent_progress p = {.acked = 5, .done = "", .missing = ""};
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, 5, SP_REC_LIFT, T0, "\"r\"", 3), 0);
	CHECK_EQ_INT(store_w_log_progress(s, ag, &p), 0);
	CHECK(store_w_commit(s) != 0);
	sql_exec(path, "DROP TRIGGER no_chunks");
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM progress_log"), 0);
	check_loaded(s, ag, 0, "", "", 0);
	drop(s, path);
}

static int fail_agent(void *ctx, int64_t agent_id, const char *site, const char *agent,
		      const struct store_agent_progress *p)
{
	(void)agent_id;
	(void)site;
	(void)agent;
	(void)p;
	(*(int *)ctx)++;
	return SP_ENOMEM;
}

/*
 * The writer's start-up relies on a failing callback failing the load
 * (writer.c load_agent returns SP_ENOMEM and writer_start checks the result).
 */
static void test_load_agents_passes_callback_error(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t a1 = 0, a2 = 0;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &a1), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-2", &a2), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	int calls = 0;
	CHECK_EQ_INT(store_w_load_agents(s, fail_agent, &calls), SP_ENOMEM);
	CHECK_EQ_INT(calls, 1); /* stops at the first error */
	/* the statement was reset: a later load works */
	struct agent_rows ar = {0};
	CHECK_EQ_INT(store_w_load_agents(s, on_agent, &ar), 0);
	CHECK_EQ_INT(ar.n, 2);
	drop(s, path);
}

/* ---------------------------------------------------------------- reader side */

#define NOW (T0 + 1000000)
#define OFFLINE 60000

static void test_sites_devices_online(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t a1 = 0, a2 = 0, a3 = 0;
	struct store_device l1, c1, n1, l2;
	struct sp_device_info li = lift_info("lift-1", 0, 8), ci = charger_info("chg-1", 4);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &a1), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-b", "agent-2", &a2), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-0", "agent-3", &a3), 0); /* no devices: no site */
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", a1, &li, SP_DEV_UNKNOWN, "{\"m\":1}", &l1), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "chg-1", a1, &ci, SP_DEV_UNKNOWN, NULL, &c1), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "new-1", a1, NULL, SP_DEV_LIFT, NULL, &n1), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-b", "lift-2", a2, NULL, SP_DEV_LIFT, NULL, &l2), 0);
	/* lift-1: recent; chg-1: exactly at the offline bound; new-1: never; lift-2: recent */
	CHECK_EQ_INT(store_w_reading(s, l1.id, a1, 1, SP_REC_LIFT, NOW - 5000, "{\"old\":1}", 9), 0);
	CHECK_EQ_INT(store_w_reading(s, l1.id, a1, 2, SP_REC_LIFT, NOW - 1000, "{\"new\":1}", 9), 0);
	CHECK_EQ_INT(store_w_reading(s, l1.id, a1, 2, SP_REC_FAULT, NOW - 3000, "{\"mid\":1}", 9), 0);
	CHECK_EQ_INT(store_w_device_seen(s, l1.id, NOW - 5000, NOW - 5000), 0);
	CHECK_EQ_INT(store_w_device_seen(s, l1.id, NOW - 1000, NOW - 1000), 0);
	CHECK_EQ_INT(store_w_device_seen(s, l1.id, NOW - 3000, NOW - 3000), 0); /* never moves back */
	CHECK_EQ_INT(store_w_device_seen(s, c1.id, NOW - OFFLINE, NOW - OFFLINE), 0);
	CHECK_EQ_INT(store_w_device_seen(s, l2.id, NOW - 10, NOW - 10), 0);
	/* agent-1 reported data (alive); agent-2 said it is offline */
	CHECK_EQ_INT(store_w_agent_seen(s, a1, NOW - 1000), 0);
	CHECK_EQ_INT(store_w_agent_state(s, a2, false, NOW - 20), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	struct dev_rows all = {0};
	CHECK_EQ_INT(store_r_devices(s, NULL, NOW, OFFLINE, 0, on_device, &all), 0);
	CHECK_EQ_INT(all.n, 4);
	/* sorted by site then dev */
	CHECK_EQ_STR(all.r[0].dev, "chg-1");
	CHECK_EQ_STR(all.r[1].dev, "lift-1");
	CHECK_EQ_STR(all.r[2].dev, "new-1");
	CHECK_EQ_STR(all.r[3].dev, "lift-2");
	const struct dev_row *r;
	r = find_dev(&all, "site-a", "lift-1");
	CHECK(r != NULL);
	if (r) {
		CHECK(r->online);
		CHECK_EQ_INT(r->last_seen, NOW - 1000);
		CHECK_EQ_STR(r->kind, "lift");
		CHECK_EQ_STR(r->agent, "agent-1");
		CHECK(r->has_latest);
		CHECK_EQ_STR(r->latest, "{\"new\":1}");
		CHECK_EQ_STR(r->meta, "{\"m\":1}");
	}
	r = find_dev(&all, "site-a", "chg-1");
	CHECK(r != NULL);
	if (r) {
		CHECK(r->online); /* last_seen == now - offline_ms still counts */
		CHECK_EQ_STR(r->kind, "charger");
		CHECK(!r->has_latest);
		CHECK(!r->has_meta);
	}
	r = find_dev(&all, "site-a", "new-1");
	CHECK(r != NULL);
	if (r) {
		CHECK(!r->online); /* never reported */
		CHECK_EQ_INT(r->last_seen, 0);
	}
	r = find_dev(&all, "site-b", "lift-2");
	CHECK(r != NULL);
	if (r) {
		CHECK(!r->online); /* recent, but its agent is offline */
		CHECK_EQ_STR(r->agent, "agent-2");
	}
	/* one site only */
	struct dev_rows one = {0};
	CHECK_EQ_INT(store_r_devices(s, "site-b", NOW, OFFLINE, 0, on_device, &one), 0);
	CHECK_EQ_INT(one.n, 1);
	CHECK_EQ_STR(one.r[0].dev, "lift-2");
	struct dev_rows none = {0};
	CHECK_EQ_INT(store_r_devices(s, "site-z", NOW, OFFLINE, 0, on_device, &none), 0);
	CHECK_EQ_INT(none.n, 0);

	/* a moment later chg-1 is past the bound */
	struct dev_rows later = {0};
	CHECK_EQ_INT(store_r_devices(s, "site-a", NOW + 1, OFFLINE, 0, on_device, &later), 0);
	r = find_dev(&later, "site-a", "chg-1");
	CHECK(r && !r->online);
	r = find_dev(&later, "site-a", "lift-1");
	CHECK(r && r->online);

	struct site_rows sr = {0};
	CHECK_EQ_INT(store_r_sites(s, NOW, OFFLINE, on_site, &sr), 0);
	CHECK_EQ_INT(sr.n, 2);
	CHECK_EQ_STR(sr.r[0].site, "site-a");
	CHECK_EQ_INT(sr.r[0].devices, 3);
	CHECK_EQ_INT(sr.r[0].online, 2);
	CHECK_EQ_STR(sr.r[1].site, "site-b");
	CHECK_EQ_INT(sr.r[1].devices, 1);
	CHECK_EQ_INT(sr.r[1].online, 0);

	/* the names alone: each site with devices once, in order */
	struct site_rows names = {0};
	CHECK_EQ_INT(store_r_site_names(s, on_site_name, &names), 0);
	CHECK_EQ_INT(names.n, 2);
	CHECK_EQ_STR(names.r[0].site, "site-a");
	CHECK_EQ_STR(names.r[1].site, "site-b");
	memset(&names, 0, sizeof(names));
	CHECK_EQ_INT(store_r_site_names(s, on_first_site_name, &names), 0);
	CHECK_EQ_INT(names.n, 1);
	CHECK_EQ_STR(names.r[0].site, "site-a");

	int64_t counts[SP_DEV_KIND_COUNT][2];
	memset(counts, 0xff, sizeof(counts));
	CHECK_EQ_INT(store_r_device_counts(s, NOW, OFFLINE, counts), 0);
	CHECK_EQ_INT(counts[SP_DEV_UNKNOWN][0], 0);
	CHECK_EQ_INT(counts[SP_DEV_UNKNOWN][1], 0);
	CHECK_EQ_INT(counts[SP_DEV_LIFT][1], 1);    /* lift-1 */
	CHECK_EQ_INT(counts[SP_DEV_LIFT][0], 2);    /* new-1, lift-2 */
	CHECK_EQ_INT(counts[SP_DEV_CHARGER][1], 1); /* chg-1 */
	CHECK_EQ_INT(counts[SP_DEV_CHARGER][0], 0);

	/* agent-2 sends data: alive again; then says offline, then online */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, a2, NOW), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	memset(&sr, 0, sizeof(sr));
	CHECK_EQ_INT(store_r_sites(s, NOW, OFFLINE, on_site, &sr), 0);
	CHECK_EQ_INT(sr.r[1].online, 1);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent_state(s, a2, false, NOW), 0);
	CHECK_EQ_INT(store_w_agent_state(s, a1, false, NOW), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	memset(&sr, 0, sizeof(sr));
	CHECK_EQ_INT(store_r_sites(s, NOW, OFFLINE, on_site, &sr), 0);
	CHECK_EQ_INT(sr.r[0].online, 0);
	CHECK_EQ_INT(sr.r[1].online, 0);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent_state(s, a1, true, NOW), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(store_r_device_counts(s, NOW, OFFLINE, counts), 0);
	CHECK_EQ_INT(counts[SP_DEV_LIFT][1], 1);
	CHECK_EQ_INT(counts[SP_DEV_CHARGER][1], 1);
	CHECK_EQ_INT(counts[SP_DEV_LIFT][0], 2);
	CHECK_EQ_INT(store_r_ping(s), 0);
	drop(s, path);
}

/*
 * A device's liveness is written every few seconds; until then the device
 * list shows the newest reading's ts as last_seen. Online is the stored
 * heard alone, which the writer keeps on the right side of the online
 * bound (writer.c, seen_due_now): "fresh" has its newest reading waiting
 * for the flush, its stored heard recent; "stale" was silent, so its new
 * reading's arrival is written at once, as the writer does. Every view
 * agrees, before the flush and after it.
 */
static void test_online_from_newest_reading(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t a = 0;
	struct store_device fresh_dev, stale, quiet;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &a), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, a, NOW), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "fresh", a, NULL, SP_DEV_LIFT, NULL, &fresh_dev), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "stale", a, NULL, SP_DEV_LIFT, NULL, &stale), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "quiet", a, NULL, SP_DEV_LIFT, NULL, &quiet), 0);
	/* fresh: heard from 5 s ago (flushed), a reading now, its last_seen not written yet */
	CHECK_EQ_INT(store_w_device_seen(s, fresh_dev.id, NOW - 5000, NOW - 5000), 0);
	CHECK_EQ_INT(store_w_reading(s, fresh_dev.id, a, 1, SP_REC_LIFT, NOW - 500, "{\"f\":1}", 7), 0);
	/* stale: last_seen written long ago, a new reading since */
	CHECK_EQ_INT(store_w_reading(s, stale.id, a, 2, SP_REC_LIFT, NOW - 10 * OFFLINE, "{\"s\":0}", 7), 0);
	CHECK_EQ_INT(store_w_device_seen(s, stale.id, NOW - 10 * OFFLINE, NOW - 10 * OFFLINE), 0);
	CHECK_EQ_INT(store_w_reading(s, stale.id, a, 3, SP_REC_LIFT, NOW - 2000, "{\"s\":1}", 7), 0);
	CHECK_EQ_INT(store_w_device_seen(s, stale.id, NOW - 2000, NOW - 2000), 0); /* the writer's "now" */
	/* quiet: its only reading is older than the bound */
	CHECK_EQ_INT(store_w_reading(s, quiet.id, a, 4, SP_REC_LIFT, NOW - OFFLINE - 1, "{\"q\":1}", 7), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	struct dev_rows all = {0};
	CHECK_EQ_INT(store_r_devices(s, "site-a", NOW, OFFLINE, 0, on_device, &all), 0);
	CHECK_EQ_INT(all.n, 3);
	const struct dev_row *r = find_dev(&all, "site-a", "fresh");
	CHECK(r && r->online && r->last_seen == NOW - 500);
	r = find_dev(&all, "site-a", "stale");
	CHECK(r && r->online && r->last_seen == NOW - 2000);
	r = find_dev(&all, "site-a", "quiet");
	CHECK(r && !r->online && r->last_seen == NOW - OFFLINE - 1);

	struct site_rows sr = {0};
	CHECK_EQ_INT(store_r_sites(s, NOW, OFFLINE, on_site, &sr), 0);
	CHECK_EQ_INT(sr.n, 1);
	CHECK_EQ_INT(sr.r[0].devices, 3);
	CHECK_EQ_INT(sr.r[0].online, 2);

	int64_t counts[SP_DEV_KIND_COUNT][2];
	memset(counts, 0xff, sizeof(counts));
	CHECK_EQ_INT(store_r_device_counts(s, NOW, OFFLINE, counts), 0);
	CHECK_EQ_INT(counts[SP_DEV_LIFT][1], 2);
	CHECK_EQ_INT(counts[SP_DEV_LIFT][0], 1);

	/* the flush changes no view */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_device_seen(s, fresh_dev.id, NOW - 500, NOW - 500), 0);
	CHECK_EQ_INT(store_w_device_seen(s, quiet.id, NOW - OFFLINE - 1, NOW - OFFLINE - 1), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	sr.n = 0;
	CHECK_EQ_INT(store_r_sites(s, NOW, OFFLINE, on_site, &sr), 0);
	CHECK_EQ_INT(sr.n, 1);
	CHECK_EQ_INT(sr.r[0].online, 2);
	CHECK_EQ_INT(store_r_device_counts(s, NOW, OFFLINE, counts), 0);
	CHECK_EQ_INT(counts[SP_DEV_LIFT][1], 2);
	CHECK_EQ_INT(counts[SP_DEV_LIFT][0], 1);
	drop(s, path);
}

/*
 * Online is judged by when a device's readings arrived (heard), not by
 * their ts: a device whose clock runs far behind is online while its
 * readings come; one whose clock runs ahead is offline once they stop.
 * last_seen shows the device's own clock. Every view agrees.
 */
static void test_online_by_arrival(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t a = 0;
	struct store_device behind, ahead;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "agent-1", &a), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, a, NOW), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "behind", a, NULL, SP_DEV_LIFT, NULL, &behind), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "ahead", a, NULL, SP_DEV_CHARGER, NULL, &ahead), 0);
	CHECK_EQ_INT(store_w_reading(s, behind.id, a, 1, SP_REC_LIFT, NOW - 10 * OFFLINE, "{\"b\":1}", 7), 0);
	CHECK_EQ_INT(store_w_device_seen(s, behind.id, NOW - 10 * OFFLINE, NOW - 1000), 0);
	CHECK_EQ_INT(store_w_reading(s, ahead.id, a, 2, SP_REC_STATION, NOW + 3600000, "{\"a\":1}", 7), 0);
	CHECK_EQ_INT(store_w_device_seen(s, ahead.id, NOW + 3600000, NOW - OFFLINE - 1), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	struct dev_rows all = {0};
	CHECK_EQ_INT(store_r_devices(s, "site-a", NOW, OFFLINE, 0, on_device, &all), 0);
	CHECK_EQ_INT(all.n, 2);
	const struct dev_row *r = find_dev(&all, "site-a", "behind");
	CHECK(r && r->online && r->last_seen == NOW - 10 * OFFLINE);
	r = find_dev(&all, "site-a", "ahead");
	CHECK(r && !r->online && r->last_seen == NOW + 3600000);
	struct site_rows sr = {0};
	CHECK_EQ_INT(store_r_sites(s, NOW, OFFLINE, on_site, &sr), 0);
	CHECK_EQ_INT(sr.n, 1);
	CHECK_EQ_INT(sr.r[0].online, 1);
	int64_t counts[SP_DEV_KIND_COUNT][2];
	memset(counts, 0xff, sizeof(counts));
	CHECK_EQ_INT(store_r_device_counts(s, NOW, OFFLINE, counts), 0);
	CHECK_EQ_INT(counts[SP_DEV_LIFT][1], 1);
	CHECK_EQ_INT(counts[SP_DEV_CHARGER][0], 1);
	/* both never move back: an older ts raises heard alone, an older heard ts alone */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_device_seen(s, behind.id, NOW - 11 * OFFLINE, NOW - 500), 0);
	CHECK_EQ_INT(store_w_device_seen(s, ahead.id, NOW + 3700000, NOW - 2 * OFFLINE), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	struct store_seen seen = {0, 0};
	CHECK_EQ_INT(store_w_device(s, "site-a", "behind", &behind, &seen), 0);
	CHECK(seen.last_seen == NOW - 10 * OFFLINE && seen.heard == NOW - 500);
	CHECK_EQ_INT(store_w_device(s, "site-a", "ahead", &ahead, &seen), 0);
	CHECK(seen.last_seen == NOW + 3700000 && seen.heard == NOW - OFFLINE - 1);
	drop(s, path);
}

/*
 * Schema 10 keeps each device's last_seen in device_seen. A file of schema
 * 9 (the column in `devices`) is migrated on open: every device keeps its
 * value, the column goes, and the views read the new table; a device
 * created after it has its row at once.
 */
static void test_migrates_device_seen(void)
{
	char path[512];
	int64_t ag = 0;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "m", "lift-1", SP_DEV_LIFT, &ag, &d);
	if (s == NULL)
		return;
	store_close(s);
	sql_exec(path, "BEGIN;" BACK_TO_SCHEMA_9
		       "INSERT INTO devices(site, dev, kind, agent_id, last_seen)"
		       " SELECT 'm', 'chg-1', 2, agent_id, 0 FROM devices WHERE dev = 'lift-1';"
		       /* a clock far ahead (2100): heard starts no later than the migration */
		       "INSERT INTO devices(site, dev, kind, agent_id, last_seen)"
		       " SELECT 'm', 'chg-9', 2, agent_id, 4102444800000 FROM devices"
		       " WHERE dev = 'lift-1';"
		       "COMMIT;");
	char set[128];
	snprintf(set, sizeof(set), "UPDATE devices SET last_seen = %lld WHERE dev = 'lift-1'",
		 (long long)(NOW - 1000));
	sql_exec(path, set);
	s = open_migrated(path);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM pragma_table_info('devices') "
				   "WHERE name = 'last_seen'"),
		     0);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM device_seen"), 3);
	CHECK_EQ_INT(sql_int(path, "SELECT last_seen FROM device_seen WHERE id = "
				   "(SELECT id FROM devices WHERE dev = 'lift-1')"),
		     NOW - 1000);
	struct store_device g;
	struct store_seen seen = {-1, -1};
	CHECK_EQ_INT(store_w_device(s, "m", "lift-1", &g, &seen), 0);
	CHECK_EQ_INT(seen.last_seen, NOW - 1000);
	CHECK_EQ_INT(seen.heard, NOW - 1000); /* 11 -> 12: heard starts at last_seen */
	CHECK_EQ_INT(store_w_device(s, "m", "chg-1", &g, &seen), 0);
	CHECK_EQ_INT(seen.last_seen, 0);
	CHECK_EQ_INT(seen.heard, 0);
	int64_t migrated_by = sp_now_ms();
	CHECK_EQ_INT(store_w_device(s, "m", "chg-9", &g, &seen), 0);
	CHECK_EQ_INT(seen.last_seen, 4102444800000);
	CHECK(seen.heard > 0 && seen.heard <= migrated_by);
	struct dev_rows all = {0};
	CHECK_EQ_INT(store_r_devices(s, "m", NOW, OFFLINE, 0, on_device, &all), 0);
	CHECK_EQ_INT(all.n, 3);
	const struct dev_row *r = find_dev(&all, "m", "lift-1");
	CHECK(r && r->last_seen == NOW - 1000);
	r = find_dev(&all, "m", "chg-1");
	CHECK(r && r->last_seen == 0);
	/* a device made now has its row; its last_seen written as usual */
	struct store_device d2;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "m", "lift-2", ag, NULL, SP_DEV_LIFT, NULL, &d2), 0);
	CHECK_EQ_INT(store_w_device_seen(s, d2.id, NOW - 5, NOW - 5), 0);
	CHECK_EQ_INT(store_w_device_seen(s, d2.id, NOW - 9, NOW - 9), 0); /* never backwards */
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM device_seen"), 4);
	char q[128];
	snprintf(q, sizeof(q), "SELECT last_seen FROM device_seen WHERE id = %lld", (long long)d2.id);
	CHECK_EQ_INT(sql_int(path, q), NOW - 5);
	drop(s, path);
}

/*
 * Schema 11 looks devices up from an index of the columns the writer reads
 * (devices_lookup). A file of schema 10 gains it on open, and what a look-up
 * returns is what the rows say, for devices from before and after.
 */
static void test_migrates_device_lookup(void)
{
	char path[512];
	int64_t ag = 0;
	struct store_device lift, chg, g;
	struct store *s = fresh_with_device(path, sizeof(path), "m", "lift-1", SP_DEV_LIFT, &ag, &lift);
	if (s == NULL)
		return;
	struct sp_device_info li = lift_info("lift-1", -2, 17), ci = charger_info("chg-1", 6);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "m", "lift-1", ag, &li, SP_DEV_UNKNOWN, NULL, &lift), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "m", "chg-1", ag, &ci, SP_DEV_UNKNOWN, NULL, &chg), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	store_close(s);
	sql_exec(path, "BEGIN;" BACK_TO_SCHEMA_16
		       "DELETE FROM schema_version WHERE version >= 11;"
		       "ALTER TABLE alerts DROP COLUMN remind_shift;"
		       "ALTER TABLE reading_chunks DROP COLUMN kinds;"
		       "DROP INDEX alerts_site_opened;"
		       "DROP TABLE progress_log;"
		       "DROP INDEX devices_lookup;"
		       "ALTER TABLE device_seen DROP COLUMN heard;"
		       "COMMIT;");
	static const char *const has_index = "SELECT count(*) FROM sqlite_master "
					     "WHERE type = 'index' AND name = 'devices_lookup'";
	CHECK_EQ_INT(sql_int(path, has_index), 0);
	s = open_migrated(path);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sql_int(path, has_index), 1);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM pragma_index_info('devices_lookup')"), 8);
	CHECK_EQ_INT(store_w_device(s, "m", "lift-1", &g, NULL), 0);
	CHECK(g.id == lift.id && g.agent_id == ag && g.kind == SP_DEV_LIFT && g.has_floors);
	CHECK(g.floor_min == -2 && g.floor_max == 17 && g.rating == lift.rating && g.rating > 0);
	CHECK_EQ_INT(store_w_device(s, "m", "chg-1", &g, NULL), 0);
	CHECK(g.id == chg.id && g.kind == SP_DEV_CHARGER && g.ports == 6 && !g.has_floors);
	CHECK_EQ_INT(g.rating, 1500);
	/* a birth that changes a device: the look-up reads the new values */
	ci.ports = 9;
	ci.port_limit_w = 2200;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "m", "chg-1", ag, &ci, SP_DEV_UNKNOWN, NULL, &chg), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(store_w_device(s, "m", "chg-1", &g, NULL), 0);
	CHECK(g.ports == 9 && g.rating == 2200);
	CHECK_EQ_INT(store_w_device(s, "m", "chg-2", &g, NULL), SP_ENOTFOUND);
	drop(s, path);
}

static void test_empty_store_views(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	struct site_rows sr = {0};
	struct dev_rows dr = {0};
	int64_t counts[SP_DEV_KIND_COUNT][2];
	memset(counts, 0xff, sizeof(counts));
	CHECK_EQ_INT(store_r_sites(s, NOW, OFFLINE, on_site, &sr), 0);
	CHECK_EQ_INT(sr.n, 0);
	CHECK_EQ_INT(store_r_site_names(s, on_site_name, &sr), 0);
	CHECK_EQ_INT(sr.n, 0);
	CHECK_EQ_INT(store_r_devices(s, NULL, NOW, OFFLINE, 0, on_device, &dr), 0);
	CHECK_EQ_INT(dr.n, 0);
	CHECK_EQ_INT(store_r_device_counts(s, NOW, OFFLINE, counts), 0);
	int64_t sum = 0;
	for (int k = 0; k < SP_DEV_KIND_COUNT; k++)
		sum += counts[k][0] + counts[k][1];
	CHECK_EQ_INT(sum, 0);
	drop(s, path);
}

static void test_readers_do_not_see_open_batch(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0;
	struct store_device d;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "s", "a", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "s", "d", ag, NULL, SP_DEV_LIFT, NULL, &d), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(insert_readings(s, d.id, ag, 5), 0);
	struct rows r;
	CHECK_EQ_INT(readings(s, "s", "d", -1, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(readings(s, "s", "d", -1, ALL_TIME_FROM, ALL_TIME_TO, 100, &r), 5);
	drop(s, path);
}

/* ---------------------------------------------------------------- concurrency */

#define BATCHES 40
#define PER_BATCH 250

struct reader_ctx {
	struct store *s;
	atomic_int *stop;
	atomic_int *ready;
	int errors;
	int torn;     /* a count that is not a whole number of batches */
	int iterations;
	int64_t last; /* rows seen by the last query */
	int regress;  /* fewer rows than before */
};

static int count_row(void *ctx, const char *body, size_t len)
{
	(void)body;
	(void)len;
	(*(int64_t *)ctx)++;
	return 0;
}

static int count_site(void *ctx, const struct store_site_row *row)
{
	(void)row;
	(*(int *)ctx)++;
	return 0;
}

static int count_device(void *ctx, const struct store_device_row *row)
{
	(void)row;
	(*(int *)ctx)++;
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader_ctx *c = arg;
	int64_t deadline = mono_ms() + 15000;
	struct store_readings_query q = {"site-c", "bulk", -1, ALL_TIME_FROM, ALL_TIME_TO, 1000000, NULL};
	atomic_fetch_add(c->ready, 1);
	while (!atomic_load(c->stop) && c->iterations < 100000 && mono_ms() < deadline) {
		int64_t n = 0;
		int rc = store_r_readings(c->s, &q, count_row, &n);
		if (rc < 0 || rc != n)
			c->errors++;
		if (n % PER_BATCH != 0)
			c->torn++;
		if (n < c->last)
			c->regress++;
		c->last = n;
		int sites = 0, devs = 0;
		int64_t counts[SP_DEV_KIND_COUNT][2];
		if (store_r_sites(c->s, NOW, OFFLINE, count_site, &sites) != 0 || sites != 1)
			c->errors++;
		if (store_r_devices(c->s, NULL, NOW, OFFLINE, 0, count_device, &devs) != 0 || devs != 1)
			c->errors++;
		if (store_r_device_counts(c->s, NOW, OFFLINE, counts) != 0 || counts[SP_DEV_LIFT][1] != 1)
			c->errors++;
		if (store_r_ping(c->s) != 0)
			c->errors++;
		c->iterations++;
	}
	return NULL;
}

/*
 * /healthz's ping with every reader held by a slow consumer: a store_r_sites
 * whose callback does not return until released, as an API thread building
 * a long answer holds its reader. The ping runs on a thread of its own so
 * that a ping waiting forever fails the test (bounded) instead of hanging it.
 */
struct slow_pool {
	struct store *s;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int holding;   /* readers held inside the callback */
	bool release;  /* lets the callbacks return */
	bool ping_done;
	int ping_rc;
	int64_t ping_ms;
};

static int hold_site(void *ctx, const struct store_site_row *row)
{
	struct slow_pool *sp = ctx;
	(void)row;
	pthread_mutex_lock(&sp->lock);
	sp->holding++;
	pthread_cond_broadcast(&sp->changed);
	while (!sp->release)
		pthread_cond_wait(&sp->changed, &sp->lock);
	sp->holding--;
	pthread_mutex_unlock(&sp->lock);
	return 0;
}

static void *slow_reader_main(void *arg)
{
	struct slow_pool *sp = arg;
	CHECK_EQ_INT(store_r_sites(sp->s, NOW, OFFLINE, hold_site, sp), 0);
	return NULL;
}

static void *ping_main(void *arg)
{
	struct slow_pool *sp = arg;
	int64_t t0 = mono_ms();
	int rc = store_r_ping(sp->s);
	pthread_mutex_lock(&sp->lock);
	sp->ping_rc = rc;
	sp->ping_ms = mono_ms() - t0;
	sp->ping_done = true;
	pthread_cond_broadcast(&sp->changed);
	pthread_mutex_unlock(&sp->lock);
	return NULL;
}

/* Waits until pred(sp) or deadline_ms passed (monotonic), under sp->lock. */
static bool slow_wait(struct slow_pool *sp, bool (*pred)(const struct slow_pool *), int64_t ms)
{
	int64_t until = mono_ms() + ms;
	pthread_mutex_lock(&sp->lock);
	while (!pred(sp) && mono_ms() < until) {
		pthread_mutex_unlock(&sp->lock);
		nanosleep(&(struct timespec){0, 5000000L}, NULL);
		pthread_mutex_lock(&sp->lock);
	}
	bool ok = pred(sp);
	pthread_mutex_unlock(&sp->lock);
	return ok;
}

static bool all_held(const struct slow_pool *sp)
{
	return sp->holding == 2;
}

static bool ping_finished(const struct slow_pool *sp)
{
	return sp->ping_done;
}

/* Starts the ping thread; 0 or -1. */
static int start_ping(struct slow_pool *sp, pthread_t *th)
{
	pthread_mutex_lock(&sp->lock);
	sp->ping_done = false;
	sp->ping_rc = -999;
	pthread_mutex_unlock(&sp->lock);
	return pthread_create(th, NULL, ping_main, sp) == 0 ? 0 : -1;
}

static void test_ping_with_every_reader_busy(void)
{
	char path[512];
	harness_tmp_file(path, sizeof(path), "test_store", "db");
	struct store_params p = {.path = path, .sync_full = false, .readers = 2, .cache_mb = 4};
	struct store *s = store_open(&p);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0;
	struct store_device d;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-p", "agent-p", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-p", "lift-p", ag, NULL, SP_DEV_LIFT, NULL, &d), 0);
	CHECK_EQ_INT(store_w_device_seen(s, d.id, NOW, NOW), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(store_r_ping(s), 0); /* a free reader answers */

	struct slow_pool sp = {.s = s};
	pthread_mutex_init(&sp.lock, NULL);
	pthread_cond_init(&sp.changed, NULL);
	pthread_t readers[2], pinger;
	int started = 0;
	for (int i = 0; i < 2; i++)
		started += pthread_create(&readers[i], NULL, slow_reader_main, &sp) == 0;
	CHECK_EQ_INT(started, 2);
	CHECK(slow_wait(&sp, all_held, 5000)); /* both readers held inside a query */

	/* every reader busy: the ping gives up after STORE_PING_WAIT_MS with 1 */
	bool pinged = start_ping(&sp, &pinger) == 0;
	CHECK(pinged);
	bool done = pinged && slow_wait(&sp, ping_finished, STORE_PING_WAIT_MS + 2000);
	CHECK(done); /* a ping that waits for a reader as long as it takes never gets here */
	if (done) {
		CHECK_EQ_INT(sp.ping_rc, 1);
		CHECK(sp.ping_ms >= STORE_PING_WAIT_MS - 50);
		CHECK(sp.ping_ms < STORE_PING_WAIT_MS + 1500);
	}
	if (pinged && !done) { /* a ping stuck waiting: free the readers before joining it */
		pthread_mutex_lock(&sp.lock);
		sp.release = true;
		pthread_cond_broadcast(&sp.changed);
		pthread_mutex_unlock(&sp.lock);
	}
	if (pinged)
		pthread_join(pinger, NULL);

	/* a reader that comes free within the wait is taken: the ping answers 0, early */
	if (done) {
		pinged = start_ping(&sp, &pinger) == 0;
		CHECK(pinged);
		nanosleep(&(struct timespec){0, 200000000L}, NULL); /* the ping is waiting now */
		pthread_mutex_lock(&sp.lock);
		sp.release = true;
		pthread_cond_broadcast(&sp.changed);
		pthread_mutex_unlock(&sp.lock);
		if (pinged) {
			CHECK(slow_wait(&sp, ping_finished, STORE_PING_WAIT_MS + 2000));
			pthread_join(pinger, NULL);
			CHECK_EQ_INT(sp.ping_rc, 0);
			CHECK(sp.ping_ms < STORE_PING_WAIT_MS);
		}
	}
	pthread_mutex_lock(&sp.lock); /* whatever failed above, the readers return */
	sp.release = true;
	pthread_cond_broadcast(&sp.changed);
	pthread_mutex_unlock(&sp.lock);
	for (int i = 0; i < started; i++)
		pthread_join(readers[i], NULL);
	CHECK_EQ_INT(store_r_ping(s), 0);
	pthread_cond_destroy(&sp.changed);
	pthread_mutex_destroy(&sp.lock);
	drop(s, path);
}

static void test_readers_while_writing(void)
{
	char path[512];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag = 0;
	struct store_device d;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-c", "agent-c", &ag), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-c", "bulk", ag, NULL, SP_DEV_LIFT, NULL, &d), 0);
	CHECK_EQ_INT(store_w_agent_state(s, ag, true, NOW), 0);
	CHECK_EQ_INT(store_w_device_seen(s, d.id, NOW, NOW), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	atomic_int stop = 0, ready = 0;
	struct reader_ctx rc[4];
	pthread_t th[4];
	int started = 0;
	for (int i = 0; i < 4; i++) {
		rc[i] = (struct reader_ctx){.s = s, .stop = &stop, .ready = &ready};
		if (pthread_create(&th[i], NULL, reader_main, &rc[i]) == 0)
			started++;
	}
	CHECK_EQ_INT(started, 4);
	/* start writing once every reader is reading (bounded wait) */
	for (int64_t until = mono_ms() + 5000; atomic_load(&ready) < started && mono_ms() < until;)
		nanosleep(&(struct timespec){0, 1000000L}, NULL);

	int werr = 0;
	char body[96];
	for (int b = 0; b < BATCHES; b++) {
		if (store_w_begin(s) != 0) {
			werr++;
			continue;
		}
		for (int i = 0; i < PER_BATCH; i++) {
			int len = snprintf(body, sizeof(body), "{\"b\":%d,\"i\":%d,\"pad\":\"%040d\"}", b, i, i);
			if (store_w_reading(s, d.id, ag, b * PER_BATCH + i + 1, SP_REC_LIFT,
					    T0 + b * PER_BATCH + i, body, (size_t)len) != 0)
				werr++;
		}
		if (store_w_device_seen(s, d.id, NOW, NOW) != 0 || store_w_agent_seen(s, ag, NOW) != 0)
			werr++;
		if (store_w_commit(s) != 0)
			werr++;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ_INT(werr, 0);
	int errors = 0, torn = 0, regress = 0, iters = 0;
	for (int i = 0; i < started; i++) {
		errors += rc[i].errors;
		torn += rc[i].torn;
		regress += rc[i].regress;
		iters += rc[i].iterations > 0;
	}
	CHECK_EQ_INT(errors, 0);
	CHECK_EQ_INT(torn, 0);
	CHECK_EQ_INT(regress, 0);
	CHECK_EQ_INT(iters, started); /* every reader ran */
	struct store_readings_query q = {"site-c", "bulk", -1, ALL_TIME_FROM, ALL_TIME_TO, 1000000, NULL};
	int64_t n = 0;
	CHECK_EQ_INT(store_r_readings(s, &q, count_row, &n), BATCHES * PER_BATCH);
	CHECK_EQ_INT(n, BATCHES * PER_BATCH);
	drop(s, path);
}


/* ---------------------------------------------------------------- alerts */

/* Alerts collected by store_r_alerts / store_ack_alert. */
struct alert_rows {
	int n;
	struct {
		int64_t id, opened_at, cleared_at, acked_at;
		int32_t port;
		char rule[80], site[SP_ID_MAX + 1], dev[SP_ID_MAX + 1], severity[16], state[16];
		char acked_by[80], detail[128];
		bool acked_by_null;
	} r[16];
};

static int on_alert(void *ctx, const struct store_alert_row *a)
{
	struct alert_rows *o = ctx;
	if (o->n < 16) {
		typeof(o->r[0]) *x = &o->r[o->n];
		x->id = a->id;
		x->opened_at = a->opened_at;
		x->cleared_at = a->cleared_at;
		x->acked_at = a->acked_at;
		x->port = a->port;
		snprintf(x->rule, sizeof(x->rule), "%s", a->rule);
		snprintf(x->site, sizeof(x->site), "%s", a->site);
		snprintf(x->dev, sizeof(x->dev), "%s", a->dev);
		snprintf(x->severity, sizeof(x->severity), "%s", a->severity);
		snprintf(x->state, sizeof(x->state), "%s", a->state);
		snprintf(x->acked_by, sizeof(x->acked_by), "%s", a->acked_by ? a->acked_by : "");
		snprintf(x->detail, sizeof(x->detail), "%s", a->detail);
		x->acked_by_null = a->acked_by == NULL;
	}
	o->n++;
	return 0;
}

static int list_alerts(struct store *s, enum store_alert_state_filter state, const char *site,
		       const char *severity, int64_t limit, struct alert_rows *out)
{
	struct store_alerts_query q = {state, site, severity, limit};
	memset(out, 0, sizeof(*out));
	return store_r_alerts(s, &q, on_alert, out);
}

static int64_t open_alert(struct store *s, const struct store_device *d, const char *rule,
			  const char *code, int32_t port, const char *sev, int64_t at)
{
	struct store_alert_new a = {d->id, rule, code, "site-a", "lift-1", port, sev, at, "details"};
	int64_t id = 0;
	bool adopted = true;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_alert_open(s, &a, &id, &adopted), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK(id > 0);
	CHECK(!adopted);
	return id;
}

static void clear_alert(struct store *s, int64_t id, int64_t at)
{
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_alert_clear(s, id, at), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
}

/* Open, list, count in the views, acknowledge, clear; the states follow CONTRACT §4. */
static void test_alert_lifecycle(void)
{
	char path[256];
	int64_t agent;
	struct store_device d;
	struct alert_rows rows;
	struct site_rows sites = {0};
	struct dev_rows devs = {0};
	struct store *s = fresh_with_device(path, sizeof(path), "site-a", "lift-1", SP_DEV_LIFT,
					    &agent, &d);
	if (s == NULL)
		return;
	int64_t id = open_alert(s, &d, "lift.trapped", "", 0, "critical", T0);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, NULL, NULL, 100, &rows), 1);
	CHECK_EQ_INT(rows.r[0].id, id);
	CHECK_EQ_STR(rows.r[0].rule, "lift.trapped");
	CHECK_EQ_STR(rows.r[0].state, "active_unack");
	CHECK_EQ_STR(rows.r[0].severity, "critical");
	CHECK_EQ_INT(rows.r[0].port, 0);
	CHECK_EQ_INT(rows.r[0].opened_at, T0);
	CHECK_EQ_INT(rows.r[0].cleared_at, 0);
	CHECK(rows.r[0].acked_by_null);
	CHECK_EQ_INT(store_r_sites(s, T0, 180000, on_site, &sites), 0);
	CHECK_EQ_INT(sites.r[0].active_alerts, 1);
	CHECK_EQ_INT(store_r_devices(s, "site-a", T0, 180000, 0, on_device, &devs), 0);
	CHECK_EQ_INT(devs.r[0].active_alerts, 1);

	/* acknowledged while active, then cleared: active_ack, then cleared_ack */
	memset(&rows, 0, sizeof(rows));
	CHECK_EQ_INT(store_ack_alert(s, id, "Li Wei", T0 + 5, on_alert, &rows), 0);
	CHECK_EQ_STR(rows.r[0].state, "active_ack");
	CHECK_EQ_STR(rows.r[0].acked_by, "Li Wei");
	CHECK_EQ_INT(rows.r[0].acked_at, T0 + 5);
	memset(&rows, 0, sizeof(rows));
	CHECK_EQ_INT(store_ack_alert(s, id, "someone else", T0 + 6, on_alert, &rows), SP_EEXIST);
	CHECK_EQ_STR(rows.r[0].acked_by, "Li Wei"); /* the first acknowledgement stands */
	CHECK_EQ_INT(store_ack_alert(s, id + 1000, "x", T0, on_alert, &rows), SP_ENOTFOUND);
	clear_alert(s, id, T0 + 10);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, NULL, NULL, 100, &rows), 1);
	CHECK_EQ_STR(rows.r[0].state, "cleared_ack");
	CHECK_EQ_INT(rows.r[0].cleared_at, T0 + 10);
	memset(&sites, 0, sizeof(sites));
	CHECK_EQ_INT(store_r_sites(s, T0, 180000, on_site, &sites), 0);
	CHECK_EQ_INT(sites.r[0].active_alerts, 0);

	/* cleared first, acknowledged later: cleared_unack, then cleared_ack */
	int64_t id2 = open_alert(s, &d, "lift.power_loss", "", 0, "major", T0 + 20);
	clear_alert(s, id2, T0 + 30);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_CLEARED, NULL, "major", 100, &rows), 1);
	CHECK_EQ_STR(rows.r[0].state, "cleared_unack");
	memset(&rows, 0, sizeof(rows));
	CHECK_EQ_INT(store_ack_alert(s, id2, "ops", T0 + 40, on_alert, &rows), 0);
	CHECK_EQ_STR(rows.r[0].state, "cleared_ack");

	int64_t counts[STORE_ALERT_STATES][STORE_ALERT_SEVERITIES];
	CHECK_EQ_INT(store_r_alert_counts(s, false, counts), 0);
	CHECK_EQ_INT(counts[3][0], 1); /* cleared_ack, critical */
	CHECK_EQ_INT(counts[3][1], 1); /* cleared_ack, major */
	CHECK_EQ_INT(counts[0][0] + counts[1][0] + counts[2][0] + counts[0][1], 0);

	/* active only: what the dashboard counts per severity (an unacked and an acked one) */
	open_alert(s, &d, "lift.fault", "E1", 0, "major", T0 + 50);
	int64_t id4 = open_alert(s, &d, "lift.fault", "E2", 0, "major", T0 + 51);
	CHECK_EQ_INT(store_ack_alert(s, id4, "ops", T0 + 52, on_alert, &rows), 0);
	CHECK_EQ_INT(store_r_alert_counts(s, true, counts), 0);
	CHECK_EQ_INT(counts[0][1], 1); /* active_unack, major */
	CHECK_EQ_INT(counts[1][1], 1); /* active_ack, major */
	CHECK_EQ_INT(counts[3][0] + counts[3][1] + counts[2][1] + counts[0][0], 0); /* no cleared */
	drop(s, path);
}

/* Filters, newest first, limit; a fault's code in the rule; at most one active per key. */
static void test_alert_queries_and_keys(void)
{
	char path[256];
	int64_t agent;
	struct store_device d;
	struct alert_rows rows;
	struct store *s = fresh_with_device(path, sizeof(path), "site-a", "lift-1", SP_DEV_LIFT,
					    &agent, &d);
	if (s == NULL)
		return;
	int64_t a1 = open_alert(s, &d, "lift.fault", "E12", 0, "major", T0 + 100);
	int64_t a2 = open_alert(s, &d, "lift.fault", "E13", 0, "major", T0 + 50);
	int64_t a3 = open_alert(s, &d, "port.over_temp", "", 3, "critical", T0 + 200);
	CHECK(a1 != a2 && a2 != a3);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ACTIVE, NULL, NULL, 100, &rows), 3);
	CHECK_EQ_INT(rows.r[0].id, a3); /* newest opened_at first */
	CHECK_EQ_INT(rows.r[1].id, a1);
	CHECK_EQ_INT(rows.r[2].id, a2);
	CHECK_EQ_STR(rows.r[1].rule, "lift.fault.E12");
	CHECK_EQ_INT(rows.r[0].port, 3);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, NULL, "critical", 100, &rows), 1);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, "site-a", NULL, 2, &rows), 2);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, "site-b", NULL, 100, &rows), 0);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_CLEARED, NULL, NULL, 100, &rows), 0);

	/*
	 * the same key again while active: the active alert is kept as it was, not
	 * doubled, and said to be adopted (the writer mails it not again)
	 */
	struct store_alert_new same = {d.id, "lift.fault", "E12", "site-a", "lift-1", 0, "critical",
				       T0 + 300, "again"};
	int64_t again = 0;
	bool adopted = false;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_alert_open(s, &same, &again, &adopted), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(again, a1);
	CHECK(adopted);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, NULL, NULL, 100, &rows), 3);
	CHECK_EQ_INT(rows.r[1].id, a1);
	CHECK_EQ_INT(rows.r[1].opened_at, T0 + 100);
	CHECK_EQ_STR(rows.r[1].severity, "major");
	CHECK_EQ_STR(rows.r[1].detail, "details");
	/* once cleared, the key may open a new alert */
	clear_alert(s, a1, T0 + 400);
	int64_t next = open_alert(s, &d, "lift.fault", "E12", 0, "major", T0 + 500);
	CHECK(next != a1);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, NULL, NULL, 100, &rows), 4);

	/* an alert opened in a transaction that rolls back never existed */
	struct store_alert_new gone = {d.id, "lift.mode", "", "site-a", "lift-1", 0, "warning",
				       T0 + 600, "x"};
	int64_t id;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_alert_open(s, &gone, &id, NULL), 0);
	store_w_rollback(s);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, NULL, "warning", 100, &rows), 0);
	drop(s, path);
}

/*
 * The alert list's three statements (active; one site's; every site's),
 * each with every filter it takes, over two sites' alerts of every state;
 * and the active counts of the site and device lists beside cleared alerts.
 */
static void test_alert_list_filters(void)
{
	char path[256];
	int64_t agent_a, agent_b;
	struct store_device da, db;
	struct alert_rows rows;
	struct site_rows sites = {0};
	struct dev_rows devs = {0};
	struct store *s = fresh_with_device(path, sizeof(path), "site-a", "lift-1", SP_DEV_LIFT,
					    &agent_a, &da);
	if (s == NULL)
		return;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-b", "b", &agent_b), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-b", "chg-1", agent_b, NULL, SP_DEV_CHARGER,
					   NULL, &db),
		     0);
	/* site-a: an active critical (T0+10), a cleared critical (T0+20), an active minor (T0+30) */
	struct store_alert_new a1 = {da.id, "lift.trapped", "", "site-a", "lift-1", 0, "critical",
				     T0 + 10, "x"};
	struct store_alert_new a2 = {da.id, "lift.overspeed", "", "site-a", "lift-1", 0, "critical",
				     T0 + 20, "x"};
	struct store_alert_new a3 = {da.id, "lift.mode", "", "site-a", "lift-1", 0, "minor",
				     T0 + 30, "x"};
	/* site-b: a cleared major (T0+15), an active critical (T0+25), another port's (T0+25) */
	struct store_alert_new b1 = {db.id, "port.over_temp", "", "site-b", "chg-1", 1, "major",
				     T0 + 15, "x"};
	struct store_alert_new b2 = {db.id, "port.over_temp", "", "site-b", "chg-1", 2, "critical",
				     T0 + 25, "x"};
	struct store_alert_new b3 = {db.id, "port.over_temp", "", "site-b", "chg-1", 3, "critical",
				     T0 + 25, "x"};
	int64_t id_a1, id_a2, id_a3, id_b1, id_b2, id_b3;
	CHECK_EQ_INT(store_w_alert_open(s, &a1, &id_a1, NULL), 0);
	CHECK_EQ_INT(store_w_alert_open(s, &a2, &id_a2, NULL), 0);
	CHECK_EQ_INT(store_w_alert_open(s, &a3, &id_a3, NULL), 0);
	CHECK_EQ_INT(store_w_alert_open(s, &b1, &id_b1, NULL), 0);
	CHECK_EQ_INT(store_w_alert_open(s, &b2, &id_b2, NULL), 0);
	CHECK_EQ_INT(store_w_alert_open(s, &b3, &id_b3, NULL), 0);
	CHECK_EQ_INT(store_w_alert_clear(s, id_a2, T0 + 40), 0);
	CHECK_EQ_INT(store_w_alert_clear(s, id_b1, T0 + 40), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	/* active: every site, newest first (the later id first at equal times) */
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ACTIVE, NULL, NULL, 100, &rows), 4);
	CHECK_EQ_INT(rows.r[0].id, id_a3);
	CHECK_EQ_INT(rows.r[1].id, id_b3);
	CHECK_EQ_INT(rows.r[2].id, id_b2);
	CHECK_EQ_INT(rows.r[3].id, id_a1);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ACTIVE, NULL, "critical", 100, &rows), 3);
	CHECK_EQ_INT(rows.r[0].id, id_b3);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ACTIVE, "site-a", NULL, 100, &rows), 2);
	CHECK_EQ_INT(rows.r[0].id, id_a3);
	CHECK_EQ_INT(rows.r[1].id, id_a1);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ACTIVE, "site-b", "critical", 1, &rows), 1);
	CHECK_EQ_INT(rows.r[0].id, id_b3);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ACTIVE, "site-b", "major", 100, &rows), 0);

	/* one site's, by state and severity */
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, "site-a", NULL, 100, &rows), 3);
	CHECK_EQ_INT(rows.r[0].id, id_a3);
	CHECK_EQ_INT(rows.r[1].id, id_a2);
	CHECK_EQ_INT(rows.r[2].id, id_a1);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_CLEARED, "site-a", NULL, 100, &rows), 1);
	CHECK_EQ_INT(rows.r[0].id, id_a2);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_CLEARED, "site-b", "critical", 100, &rows), 0);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, "site-b", "critical", 100, &rows), 2);
	CHECK_EQ_INT(rows.r[0].id, id_b3);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, "site-b", NULL, 2, &rows), 2);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, "site-c", NULL, 100, &rows), 0);

	/* every site's */
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_CLEARED, NULL, NULL, 100, &rows), 2);
	CHECK_EQ_INT(rows.r[0].id, id_a2);
	CHECK_EQ_INT(rows.r[1].id, id_b1);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, NULL, "critical", 100, &rows), 4);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, NULL, NULL, 5, &rows), 5);

	/* the site and device lists count the active alerts only */
	CHECK_EQ_INT(store_r_sites(s, T0, 180000, on_site, &sites), 0);
	CHECK_EQ_INT(sites.n, 2);
	CHECK_EQ_INT(sites.r[0].active_alerts, 2); /* site-a */
	CHECK_EQ_INT(sites.r[1].active_alerts, 2); /* site-b */
	CHECK_EQ_INT(store_r_devices(s, "site-b", T0, 180000, 0, on_device, &devs), 0);
	CHECK_EQ_INT(devs.r[0].active_alerts, 2);
	drop(s, path);
}

/* Conditions collected by store_w_load_conditions. */
struct cond_rows {
	int n;
	struct store_condition c[8];
	char rule[8][40], code[8][40], dev[8][SP_ID_MAX + 1];
};

static int on_condition(void *ctx, const struct store_condition *c)
{
	struct cond_rows *o = ctx;
	if (o->n < 8) {
		o->c[o->n] = *c;
		snprintf(o->rule[o->n], sizeof(o->rule[0]), "%s", c->rule);
		snprintf(o->code[o->n], sizeof(o->code[0]), "%s", c->code);
		snprintf(o->dev[o->n], sizeof(o->dev[0]), "%s", c->dev);
	}
	o->n++;
	return 0;
}

static int load_fails(void *ctx, const struct store_condition *c)
{
	(void)ctx;
	(void)c;
	return SP_ENOMEM;
}

/* Holds are kept and replaced per key; the load hands back alerts and holds with the device. */
/* The fault clears the rules remember: newest ts wins, loaded oldest first, trimmed to keep. */
struct clear_rows {
	int n;
	int64_t device_id[16], ts[16];
	int32_t port[16];
	char code[16][8];
	int fail_at; /* 1-based row whose callback fails, 0 = none */
};

static int on_clear(void *ctx, int64_t device_id, int32_t port, const char *code, int64_t ts)
{
	struct clear_rows *r = ctx;
	if (r->n + 1 == r->fail_at)
		return SP_EINVAL;
	if (r->n < 16) {
		r->device_id[r->n] = device_id;
		r->port[r->n] = port;
		r->ts[r->n] = ts;
		snprintf(r->code[r->n], sizeof(r->code[0]), "%s", code);
	}
	r->n++;
	return 0;
}

static void test_fault_clears(void)
{
	char path[256];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_fault_clear(s, 7, 0, "E12", T0 + 50), 0);
	CHECK_EQ_INT(store_w_fault_clear(s, 7, 0, "E12", T0 + 20), 0); /* older: kept at 50 */
	CHECK_EQ_INT(store_w_fault_clear(s, 7, 3, "E12", T0 + 10), 0); /* another port */
	CHECK_EQ_INT(store_w_fault_clear(s, 8, 0, "E12", T0 + 30), 0); /* another device */
	CHECK_EQ_INT(store_w_fault_clear(s, 7, 0, "", T0 + 40), 0);    /* an empty code */
	CHECK_EQ_INT(store_w_commit(s), 0);
	struct clear_rows r = {0};
	CHECK_EQ_INT(store_w_load_fault_clears(s, 100, on_clear, &r), 0);
	CHECK_EQ_INT(r.n, 4);
	/* oldest first */
	CHECK(r.device_id[0] == 7 && r.port[0] == 3 && r.ts[0] == T0 + 10);
	CHECK(r.device_id[1] == 8 && r.port[1] == 0 && r.ts[1] == T0 + 30);
	CHECK(r.device_id[2] == 7 && strcmp(r.code[2], "") == 0 && r.ts[2] == T0 + 40);
	CHECK(r.device_id[3] == 7 && strcmp(r.code[3], "E12") == 0 && r.ts[3] == T0 + 50);
	/* a newer one moves its time on; max 2 loads the newest two, still oldest first */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_fault_clear(s, 7, 3, "E12", T0 + 60), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	r = (struct clear_rows){0};
	CHECK_EQ_INT(store_w_load_fault_clears(s, 2, on_clear, &r), 0);
	CHECK_EQ_INT(r.n, 2);
	CHECK(r.ts[0] == T0 + 50 && r.ts[1] == T0 + 60 && r.port[1] == 3);
	/* a callback's error ends the load and is returned */
	r = (struct clear_rows){.fail_at = 2};
	CHECK_EQ_INT(store_w_load_fault_clears(s, 100, on_clear, &r), SP_EINVAL);
	CHECK_EQ_INT(r.n, 1);
	/* trimmed to the newest 2 (what is older than the 2nd newest goes); more than there is: none */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_fault_clears_trim(s, 10), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM fault_clears"), 4);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_fault_clears_trim(s, 2), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM fault_clears"), 2);
	CHECK_EQ_INT(sql_int(path, "SELECT min(ts) FROM fault_clears"), T0 + 50);
	/* rolled back: not there */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_fault_clear(s, 9, 0, "X", T0 + 70), 0);
	store_w_rollback(s);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM fault_clears WHERE device_id = 9"), 0);
	drop(s, path);
}

static void test_holds_and_load(void)
{
	char path[256];
	int64_t agent;
	struct store_device d, c;
	struct cond_rows rows = {0};
	struct store *s = fresh_with_device(path, sizeof(path), "site-a", "lift-1", SP_DEV_LIFT,
					    &agent, &d);
	if (s == NULL)
		return;
	struct sp_device_info li = lift_info("lift-1", -1, 7), ci = charger_info("chg-1", 4);
	li.rated_speed = 1.75;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", agent, &li, SP_DEV_LIFT, NULL, &d), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "chg-1", agent, &ci, SP_DEV_CHARGER, NULL, &c), 0);
	CHECK_EQ_INT(store_w_device_seen(s, d.id, T0 + 77, T0 + 77), 0);
	CHECK_EQ_INT(store_w_hold_put(s, d.id, "lift.trapped", 0, "", T0), 0);
	CHECK_EQ_INT(store_w_hold_put(s, d.id, "lift.trapped", 0, "", T0 + 1), 0); /* replaces */
	CHECK_EQ_INT(store_w_hold_put(s, c.id, "port.over_power", 2, "", T0 + 2), 0);
	CHECK_EQ_INT(store_w_hold_put(s, c.id, "port.over_power", 3, "", T0 + 3), 0);
	CHECK_EQ_INT(store_w_hold_del(s, c.id, "port.over_power", 3, ""), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(d.rating, 175); /* cm/s */
	CHECK_EQ_INT(c.rating, 1500); /* W */
	int64_t id = open_alert(s, &d, "lift.fault", "E7", 0, "major", T0);

	CHECK_EQ_INT(store_w_load_conditions(s, on_condition, &rows), 0);
	CHECK_EQ_INT(rows.n, 3);
	/* alerts first, then holds */
	CHECK_EQ_INT(rows.c[0].alert_id, id);
	CHECK_EQ_STR(rows.rule[0], "lift.fault");
	CHECK_EQ_STR(rows.code[0], "E7");
	CHECK_EQ_INT(rows.c[0].kind, SP_DEV_LIFT);
	CHECK_EQ_INT(rows.c[0].rating, 175);
	CHECK_EQ_INT(rows.c[0].last_seen, T0 + 77);
	for (int i = 1; i < 3; i++) {
		CHECK_EQ_INT(rows.c[i].alert_id, 0);
		if (strcmp(rows.rule[i], "lift.trapped") == 0) {
			CHECK_EQ_INT(rows.c[i].since, T0 + 1);
			CHECK_EQ_STR(rows.dev[i], "lift-1");
		} else {
			CHECK_EQ_STR(rows.rule[i], "port.over_power");
			CHECK_EQ_INT(rows.c[i].port, 2);
			CHECK_EQ_INT(rows.c[i].since, T0 + 2);
			CHECK_EQ_INT(rows.c[i].rating, 1500);
			CHECK_EQ_INT(rows.c[i].kind, SP_DEV_CHARGER);
		}
	}
	/* a callback's error stops the load and is returned */
	CHECK_EQ_INT(store_w_load_conditions(s, load_fails, NULL), SP_ENOMEM);
	drop(s, path);
}

/* ---------------------------------------------------------------- outboxes */

struct taken {
	int n;
	int64_t id, attempts;
	char key[128], site[SP_ID_MAX + 1], rcpt[128], body[256];
	bool rcpt_null, reminder;
};

static int on_item(void *ctx, const struct store_outbox_item *it)
{
	struct taken *t = ctx;
	t->n++;
	t->id = it->id;
	t->attempts = it->attempts;
	snprintf(t->key, sizeof(t->key), "%s", it->key);
	snprintf(t->site, sizeof(t->site), "%s", it->site);
	snprintf(t->rcpt, sizeof(t->rcpt), "%s", it->rcpt ? it->rcpt : "");
	snprintf(t->body, sizeof(t->body), "%.*s", (int)it->body_len, it->body);
	t->rcpt_null = it->rcpt == NULL;
	t->reminder = it->reminder;
	return 0;
}

/* The next item due at now, for a sender whose longest backoff is longest_wait. */
static int take_within(struct store_sender *h, int64_t now, int64_t longest_wait,
		       struct taken *t)
{
	memset(t, 0, sizeof(*t));
	return store_sender_next(h, now, longest_wait, on_item, t);
}

/* The same, with a backoff longer than any wait these tests schedule. */
static int take(struct store_sender *h, int64_t now, struct taken *t)
{
	return take_within(h, now, 24 * 3600 * 1000LL, t);
}

/* The collector's clock set back an hour: its liveness stamps later than now move back, others stay. */
static void test_clock_set_back(void)
{
	const int64_t HOUR = 3600 * 1000;
	char path[256], sql[256];
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ahead = 0, before = 0;
	struct store_device d1, d2;
	CHECK_EQ_INT(store_w_newest_stamp(s), 0); /* nothing heard yet */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "gw-ahead", &ahead), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "gw-before", &before), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-1", ahead, NULL, SP_DEV_LIFT, NULL, &d1),
		     0);
	CHECK_EQ_INT(store_w_upsert_device(s, "site-a", "lift-2", before, NULL, SP_DEV_LIFT, NULL, &d2),
		     0);
	/* gw-ahead and lift-1 heard by the clock an hour ahead; gw-before and lift-2 before that */
	CHECK_EQ_INT(store_w_agent_state(s, ahead, true, T0 + HOUR - 5000), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, ahead, T0 + HOUR - 1000), 0);
	CHECK_EQ_INT(store_w_device_seen(s, d1.id, T0 + HOUR - 1000, T0 + HOUR - 1000), 0);
	CHECK_EQ_INT(store_w_agent_state(s, before, true, T0 - 9000), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, before, T0 - 8000), 0);
	CHECK_EQ_INT(store_w_device_seen(s, d2.id, T0 - 8000, T0 - 8000), 0);
	CHECK_EQ_INT(store_w_newest_stamp(s), T0 + HOUR - 1000);
	const struct store_offline_rules offline = offline_rules();
	CHECK_EQ_INT(store_w_clock_set_back(s, T0, HOUR, &offline), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(store_w_newest_stamp(s), T0 - 1000);
	snprintf(sql, sizeof(sql), "SELECT heard FROM device_seen WHERE id = %lld", (long long)d1.id);
	CHECK_EQ_INT(sql_int(path, sql), T0 - 1000);
	/* the device's own clock (last_seen) is not ours: it stays */
	snprintf(sql, sizeof(sql), "SELECT last_seen FROM device_seen WHERE id = %lld",
		 (long long)d1.id);
	CHECK_EQ_INT(sql_int(path, sql), T0 + HOUR - 1000);
	snprintf(sql, sizeof(sql), "SELECT heard FROM device_seen WHERE id = %lld", (long long)d2.id);
	CHECK_EQ_INT(sql_int(path, sql), T0 - 8000);
	struct {
		int64_t id;
		const char *col;
		int64_t want;
	} const rows[] = {
		{ahead, "last_seen", T0 - 1000}, {ahead, "up_since", T0 - 5000},
		{ahead, "state_at", T0 - 5000},  {before, "last_seen", T0 - 8000},
		{before, "up_since", T0 - 9000}, {before, "state_at", T0 - 9000},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(sql, sizeof(sql), "SELECT %s FROM agents WHERE id = %lld", rows[i].col,
			 (long long)rows[i].id);
		CHECK_EQ_INT(sql_int(path, sql), rows[i].want);
	}
	drop(s, path);
}

static int count_reminder(void *ctx, const struct store_reminder *r)
{
	(void)r;
	(*(int *)ctx)++;
	return 0;
}

/*
 * The same for the alerts: the offline rules' times are the collector's
 * clock and move back; the other rules' opened_at is their device's clock
 * and stays; an acknowledgement is ours whatever the rule. A reminder of the
 * offline alert opened while the clock ran ahead then comes on time.
 */
static void test_clock_set_back_alerts(void)
{
	const int64_t HOUR = 3600 * 1000, REPEAT = 600 * 1000;
	const struct store_offline_rules offline = offline_rules(); /* the names the writer passes */
	char path[256];
	int64_t agent_id = 0;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "site-a", "lift-1", SP_DEV_LIFT,
					    &agent_id, &d);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	struct alert_rows rows = {0}; /* (store_ack_alert hands its alert to on_alert too) */
	/* by the clock an hour ahead: one offline alert acked and cleared, then another opened */
	int64_t gone = open_alert(s, &d, offline.lift, "", 0, "major", T0 + HOUR - 3000);
	CHECK_EQ_INT(store_ack_alert(s, gone, "ops", T0 + HOUR - 2500, on_alert, &rows), 0);
	clear_alert(s, gone, T0 + HOUR - 2000);
	int64_t open = open_alert(s, &d, offline.lift, "", 0, "major", T0 + HOUR - 500);
	/* a device clock an hour ahead too: its alert's opened_at is the device's; the ack is ours */
	int64_t trapped = open_alert(s, &d, "lift.trapped", "", 0, "critical", T0 + HOUR - 400);
	CHECK_EQ_INT(store_ack_alert(s, trapped, "ops", T0 + HOUR - 300, on_alert, &rows), 0);
	/* stamped before the clock ran ahead */
	int64_t before = open_alert(s, &d, offline.gateway, "", 0, "minor", T0 - 7000);

	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_clock_set_back(s, T0, HOUR, &offline), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, NULL, NULL, 16, &rows), 4);
	for (int i = 0; i < rows.n && i < 16; i++) {
		const typeof(rows.r[0]) *a = &rows.r[i];
		if (a->id == gone) {
			CHECK_EQ_INT(a->opened_at, T0 - 3000);
			CHECK_EQ_INT(a->acked_at, T0 - 2500);
			CHECK_EQ_INT(a->cleared_at, T0 - 2000);
		} else if (a->id == open) {
			CHECK_EQ_INT(a->opened_at, T0 - 500);
			CHECK_EQ_INT(a->cleared_at, 0);
		} else if (a->id == trapped) {
			CHECK_EQ_INT(a->opened_at, T0 + HOUR - 400);
			CHECK_EQ_INT(a->acked_at, T0 - 300);
		} else {
			CHECK_EQ_INT(a->id, before);
			CHECK_EQ_INT(a->opened_at, T0 - 7000);
		}
	}
	/* the open offline alert's first reminder is due REPEAT after it opened, not an hour later */
	int due = 0;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reminders_due(s, "major", REPEAT, T0 - 500 + REPEAT - 1, count_reminder,
					   &due),
		     0);
	CHECK_EQ_INT(due, 0);
	CHECK_EQ_INT(store_w_reminders_due(s, "major", REPEAT, T0 - 500 + REPEAT, count_reminder,
					   &due),
		     0);
	CHECK_EQ_INT(due, 1);
	store_w_rollback(s);
	drop(s, path);
}

/* The reminders due at now (store_w_reminders_due), each seen with its fields. */
struct due_rows {
	int n;
	struct store_reminder r[8];
};

static int on_due(void *ctx, const struct store_reminder *r)
{
	struct due_rows *o = ctx;
	if (o->n < 8) {
		o->r[o->n] = *r;
		o->r[o->n].rule = o->r[o->n].site = o->r[o->n].dev = NULL; /* not kept */
		o->r[o->n].severity = o->r[o->n].detail = NULL;
	}
	o->n++;
	return 0;
}

static int due_at(struct store *s, int64_t repeat_ms, int64_t now_ms, struct due_rows *out)
{
	memset(out, 0, sizeof(*out));
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reminders_due(s, "critical", repeat_ms, now_ms, on_due, out), 0);
	store_w_rollback(s);
	return out->n;
}

static void step_clock(struct store *s, int64_t fwd_ms, int64_t back_ms, int64_t now_ms)
{
	const struct store_offline_rules offline = offline_rules();
	CHECK_EQ_INT(store_w_begin(s), 0);
	if (fwd_ms)
		CHECK_EQ_INT(store_w_clock_set_forward(s, fwd_ms, T0, T0 + 10), 0);
	if (back_ms)
		CHECK_EQ_INT(store_w_clock_set_back(s, now_ms, back_ms, &offline), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
}

/*
 * The collector's clock set forward: the reminders of the alerts active and
 * unacknowledged then are put off by the step (their period counts time
 * that passed), theirs only, and nothing else of any alert moves; a step
 * back takes back what steps forward put off, never more; a rollback
 * leaves nothing. Before, an hour's step made every such alert due at once.
 */
static void test_clock_set_forward_reminders(void)
{
	const int64_t HOUR = 3600 * 1000, REPEAT = 600 * 1000;
	char path[256], sql[160];
	int64_t agent_id = 0;
	struct store_device d;
	struct due_rows due;
	struct alert_rows rows = {0};
	struct store *s = fresh_with_device(path, sizeof(path), "site-a", "lift-1", SP_DEV_LIFT,
					    &agent_id, &d);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t waits = open_alert(s, &d, "lift.trapped", "", 0, "critical", T0);
	int64_t acked = open_alert(s, &d, "lift.overspeed", "", 0, "critical", T0 + 1);
	CHECK_EQ_INT(store_ack_alert(s, acked, "ops", T0 + 2, on_alert, &rows), 0);
	int64_t cleared = open_alert(s, &d, "lift.door_open", "", 0, "critical", T0 + 3);
	clear_alert(s, cleared, T0 + 4);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + REPEAT, &due), 1);
	CHECK_EQ_INT(due.r[0].id, waits);
	CHECK_EQ_INT(due.r[0].remind_from, T0);

	/* a rolled-back step puts nothing off */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_clock_set_forward(s, HOUR, T0, T0 + 10), 0);
	store_w_rollback(s);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + REPEAT, &due), 1);

	/* an hour forward: due REPEAT after it opened by the time that passed */
	step_clock(s, HOUR, 0, 0);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + HOUR + REPEAT - 1, &due), 0);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + HOUR + REPEAT, &due), 1);
	CHECK_EQ_INT(due.r[0].id, waits);
	CHECK_EQ_INT(due.r[0].opened_at, T0); /* the mail's Message-ID and times: as stamped */
	CHECK_EQ_INT(due.r[0].remind_from, T0 + HOUR);
	CHECK_EQ_INT(due.r[0].reminders, 0);
	/* the next one REPEAT later, still from the shifted start */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_alert_reminded(s, waits, 1), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + HOUR + 2 * REPEAT - 1, &due), 0);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + HOUR + 2 * REPEAT, &due), 1);
	/* only the active unacknowledged alert was put off; no alert's times moved */
	snprintf(sql, sizeof(sql), "SELECT sum(remind_shift) FROM alerts WHERE id <> %lld",
		 (long long)waits);
	CHECK_EQ_INT(sql_int(path, sql), 0);
	CHECK_EQ_INT(list_alerts(s, STORE_ALERTS_ALL, NULL, NULL, 16, &rows), 3);
	for (int i = 0; i < rows.n && i < 16; i++) {
		const typeof(rows.r[0]) *a = &rows.r[i];
		CHECK_EQ_INT(a->opened_at,
			     a->id == waits ? T0 : a->id == acked ? T0 + 1 : T0 + 3);
		CHECK_EQ_INT(a->acked_at, a->id == acked ? T0 + 2 : 0);
		CHECK_EQ_INT(a->cleared_at, a->id == cleared ? T0 + 4 : 0);
	}

	/* an alert opened after the step is not put off by it */
	int64_t later = open_alert(s, &d, "lift.stuck", "", 0, "critical", T0 + HOUR + 10);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + HOUR + 10 + REPEAT, &due), 1);
	CHECK_EQ_INT(due.r[0].id, later);

	/* set back half an hour (NTP undoing part of the step): half of it is taken back */
	step_clock(s, 0, HOUR / 2, T0 + HOUR / 2);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + HOUR / 2 + 2 * REPEAT - 1, &due), 0);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + HOUR / 2 + 2 * REPEAT, &due), 1);
	CHECK_EQ_INT(due.r[0].id, waits);
	/* back further than it was put off: to its own schedule, not before it */
	step_clock(s, 0, HOUR, T0);
	snprintf(sql, sizeof(sql), "SELECT remind_shift FROM alerts WHERE id = %lld",
		 (long long)waits);
	CHECK_EQ_INT(sql_int(path, sql), 0);
	snprintf(sql, sizeof(sql), "SELECT remind_shift FROM alerts WHERE id = %lld",
		 (long long)later);
	CHECK_EQ_INT(sql_int(path, sql), 0);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + 2 * REPEAT - 1, &due), 0);
	CHECK_EQ_INT(due_at(s, REPEAT, T0 + 2 * REPEAT, &due), 1);
	/*
	 * only the alerts opened while the old clock ran in this process
	 * ([from, to]): one from before it started (stamped by a clock never
	 * seen: a host rebooted with its clock behind) and one stamped ahead of
	 * the old clock (a device's, right where the collector's was behind)
	 * keep their schedules
	 */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_clock_set_forward(s, HOUR, T0 + 1, T0 + 2 * HOUR), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	snprintf(sql, sizeof(sql), "SELECT remind_shift FROM alerts WHERE id = %lld",
		 (long long)waits);
	CHECK_EQ_INT(sql_int(path, sql), 0);
	snprintf(sql, sizeof(sql), "SELECT remind_shift FROM alerts WHERE id = %lld",
		 (long long)later);
	CHECK_EQ_INT(sql_int(path, sql), HOUR);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_clock_set_forward(s, HOUR, T0 + 1, T0 + HOUR), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sql_int(path, sql), HOUR);
	drop(s, path);
}

/* Adds a mail of alert_id (0: none) to the outbox, in the caller's transaction. */
static int add_mail(struct store *s, const char *key, const char *site, const char *rcpt,
		    const char *body, int64_t alert_id, bool reminder, int64_t at)
{
	struct store_mail m = {key, site, rcpt, body, strlen(body), alert_id, reminder};
	return store_w_mail_add(s, &m, at);
}

/* A sender of box on s, or NULL with s dropped (the test returns). */
static struct store_sender *open_sender(struct store *s, const char *path, enum store_outbox box)
{
	struct store_sender *h = store_sender_open(s, box);
	CHECK(h != NULL);
	if (h == NULL)
		drop(s, path);
	return h;
}

/* A fresh store (*sp) and a sender of box on it, or NULL (nothing left to close). */
static struct store_sender *fresh_sender(char *path, size_t size, enum store_outbox box,
					 struct store **sp)
{
	*sp = fresh(path, size);
	CHECK(*sp != NULL);
	return *sp ? open_sender(*sp, path, box) : NULL;
}

/* Mails: added in the writer's transaction, once per key, delivered oldest first, retried when due. */
static void test_mail_outbox(void)
{
	char path[256];
	struct taken t;
	struct store *s;
	struct store_sender *h = fresh_sender(path, sizeof(path), STORE_OUTBOX_MAIL, &s);
	if (h == NULL)
		return;
	CHECK_EQ_INT(take(h, T0, &t), 0);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(add_mail(s, "<m1@x>", "site-a", "a@x.org,b@x.org", "mail one", 0, false, T0), 0);
	CHECK_EQ_INT(add_mail(s, "<m2@x>", "site-b", "c@x.org", "mail two", 0, false, T0 + 1), 0);
	/* the same Message-ID again (a redelivered batch): nothing new */
	CHECK_EQ_INT(add_mail(s, "<m1@x>", "site-a", "a@x.org", "mail one again", 0, false, T0 + 2), 0);
	CHECK_EQ_INT(take(h, T0 + 5, &t), 0); /* not committed yet: the sender sees nothing */
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(store_sender_pending(h), 2);

	CHECK_EQ_INT(take(h, T0 + 5, &t), 1);
	CHECK_EQ_STR(t.key, "<m1@x>");
	CHECK_EQ_STR(t.rcpt, "a@x.org,b@x.org");
	CHECK_EQ_STR(t.body, "mail one");
	CHECK_EQ_INT(t.attempts, 0);
	int64_t first = t.id;
	/* it failed: due again in a minute; meanwhile the next one goes */
	CHECK_EQ_INT(store_sender_retry(h, first, T0 + 60000, "connection refused"), 0);
	CHECK_EQ_INT(take(h, T0 + 6, &t), 1);
	CHECK_EQ_STR(t.key, "<m2@x>");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 7), 0);
	CHECK_EQ_INT(take(h, T0 + 8, &t), 0);
	CHECK_EQ_INT(store_sender_pending(h), 1);
	CHECK_EQ_INT(take(h, T0 + 60000, &t), 1);
	CHECK_EQ_INT(t.id, first);
	CHECK_EQ_INT(t.attempts, 1);
	CHECK_EQ_INT(store_sender_done(h, first, T0 + 60001), 0);
	CHECK_EQ_INT(store_sender_pending(h), 0);
	CHECK_EQ_INT(take(h, INT64_MAX, &t), 0); /* delivered items never come back */

	/*
	 * The wall clock set back (NTP correcting a clock that ran ahead): a
	 * mail never tried is due at once, and so is one whose retry lies
	 * further ahead than the sender's longest backoff (30 s here); one
	 * within it still waits.
	 */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(add_mail(s, "<m3@x>", "site-a", "a@x.org", "mail three", 0, false, T0 + 70000), 0);
	CHECK_EQ_INT(add_mail(s, "<m4@x>", "site-a", "a@x.org", "mail four", 0, false, T0 + 70001), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(take_within(h, T0 + 70002, 30000, &t), 1);
	CHECK_EQ_STR(t.key, "<m3@x>");
	CHECK_EQ_INT(store_sender_retry(h, t.id, T0 + 80002, "connection refused"), 0);
	/* set back 10 s: m4, never tried, is due though made "later"; m3 is 20 s ahead: waits */
	CHECK_EQ_INT(take_within(h, T0 + 60001, 30000, &t), 1);
	CHECK_EQ_STR(t.key, "<m4@x>");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 60001), 0);
	CHECK_EQ_INT(take_within(h, T0 + 60002, 30000, &t), 0);
	CHECK_EQ_INT(take_within(h, T0 + 70003, 30000, &t), 0);
	/* set back an hour: m3's retry is an hour ahead, more than any backoff: due */
	CHECK_EQ_INT(take_within(h, T0 - 3600 * 1000, 30000, &t), 1);
	CHECK_EQ_STR(t.key, "<m3@x>");
	CHECK_EQ_INT(t.attempts, 1);
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 - 3600 * 1000), 0);
	CHECK_EQ_INT(take_within(h, INT64_MAX, 30000, &t), 0); /* no overflow at the far end */
	/* the city outbox is another queue */
	struct store_sender *c = store_sender_open(s, STORE_OUTBOX_CITY);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_INT(take(c, INT64_MAX, &t), 0);
		store_sender_close(c);
	}
	store_sender_close(h);
	drop(s, path);
}

/*
 * An alert's mails go out in the order queued: its reminder and its clear
 * wait while its opening waits (for a retry), other alerts' mails do not.
 * A reminder is superseded by a later mail of its alert, or by its alert
 * acknowledged or cleared; one still true is sent.
 */
static void test_mail_alert_order(void)
{
	char path[256];
	int64_t agent;
	struct store_device d;
	struct taken t;
	struct store *s = fresh_with_device(path, sizeof(path), "site-a", "lift-1", SP_DEV_LIFT,
					    &agent, &d);
	if (s == NULL)
		return;
	struct store_sender *h = open_sender(s, path, STORE_OUTBOX_MAIL);
	if (h == NULL)
		return;
	int64_t a = open_alert(s, &d, "lift.trapped", "", 0, "critical", T0);
	int64_t b = open_alert(s, &d, "lift.power_loss", "", 0, "critical", T0 + 10);
	int64_t c = open_alert(s, &d, "lift.fault", "E1", 0, "critical", T0 + 20);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(add_mail(s, "<a-opened>", "site-a", "x@y.org", "a1", a, false, T0), 0);
	CHECK_EQ_INT(add_mail(s, "<b-opened>", "site-a", "x@y.org", "b1", b, false, T0), 0);
	CHECK_EQ_INT(add_mail(s, "<a-reminder-1>", "site-a", "x@y.org", "a2", a, true, T0), 0);
	CHECK_EQ_INT(add_mail(s, "<c-opened>", "site-a", "x@y.org", "c1", c, false, T0), 0);
	CHECK_EQ_INT(add_mail(s, "<a-cleared>", "site-a", "x@y.org", "a3", a, false, T0), 0);
	CHECK_EQ_INT(add_mail(s, "<c-reminder-1>", "site-a", "x@y.org", "c2", c, true, T0), 0);
	CHECK_EQ_INT(add_mail(s, "<b-reminder-1>", "site-a", "x@y.org", "b2", b, true, T0), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	CHECK_EQ_INT(take(h, T0 + 100, &t), 1);
	CHECK_EQ_STR(t.key, "<a-opened>");
	CHECK(!t.reminder);
	int64_t a1 = t.id;
	/* a's opening failed: its reminder and its clear, never tried, still wait for it */
	CHECK_EQ_INT(store_sender_retry(h, a1, T0 + 60000, "451 try later"), 0);
	CHECK_EQ_INT(take(h, T0 + 101, &t), 1);
	CHECK_EQ_STR(t.key, "<b-opened>");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 101), 0);
	CHECK_EQ_INT(take(h, T0 + 102, &t), 1);
	CHECK_EQ_STR(t.key, "<c-opened>");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 102), 0);
	/* c's reminder: nothing newer of c, c active and not acknowledged: it stands */
	CHECK_EQ_INT(take(h, T0 + 103, &t), 1);
	CHECK_EQ_STR(t.key, "<c-reminder-1>");
	CHECK(t.reminder);
	CHECK_EQ_INT(store_sender_superseded(h, t.id, T0 + 103), 0);
	/* ... until someone acknowledges c */
	struct alert_rows rows = {0};
	CHECK_EQ_INT(store_ack_alert(s, c, "Li Wei", T0 + 104, on_alert, &rows), 0);
	CHECK_EQ_INT(store_sender_superseded(h, t.id, T0 + 105), 1);
	CHECK_EQ_INT(store_sender_superseded(h, t.id, T0 + 106), 0); /* once */
	/* b's reminder: b cleared meanwhile (its clear not mailed): superseded too */
	CHECK_EQ_INT(take(h, T0 + 107, &t), 1);
	CHECK_EQ_STR(t.key, "<b-reminder-1>");
	clear_alert(s, b, T0 + 107);
	CHECK_EQ_INT(store_sender_superseded(h, t.id, T0 + 108), 1);
	/* an opened mail or a clear is never superseded */
	CHECK_EQ_INT(store_sender_superseded(h, a1, T0 + 108), 0);
	CHECK_EQ_INT(take(h, T0 + 109, &t), 0); /* a's mails wait for a1 */
	CHECK_EQ_INT(store_sender_pending(h), 3);
	/* a new mail of a: a1 is tried in its place (were the server back, it would go first) */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(add_mail(s, "<a-note>", "site-a", "x@y.org", "a4", a, false, T0 + 110), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(take(h, T0 + 110, &t), 1);
	CHECK_EQ_INT(t.id, a1);
	CHECK_EQ_INT(t.attempts, 1);
	/* failed again: a's later mails wait with it, no busy loop */
	CHECK_EQ_INT(store_sender_retry(h, a1, T0 + 60000, "451 try later"), 0);
	CHECK_EQ_INT(take(h, T0 + 111, &t), 0);

	CHECK_EQ_INT(take(h, T0 + 60000, &t), 1);
	CHECK_EQ_INT(t.id, a1);
	CHECK_EQ_INT(store_sender_done(h, a1, T0 + 60000), 0);
	CHECK_EQ_INT(take(h, T0 + 60001, &t), 1);
	CHECK_EQ_STR(t.key, "<a-reminder-1>");
	/* a is active and not acknowledged, but its clear is queued behind: superseded */
	CHECK_EQ_INT(store_sender_superseded(h, t.id, T0 + 60001), 1);
	CHECK_EQ_INT(take(h, T0 + 60002, &t), 1);
	CHECK_EQ_STR(t.key, "<a-cleared>");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 60002), 0);
	CHECK_EQ_INT(take(h, T0 + 60003, &t), 1);
	CHECK_EQ_STR(t.key, "<a-note>");
	CHECK_EQ_INT(t.attempts, 0);
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 60003), 0);
	CHECK_EQ_INT(store_sender_pending(h), 0);
	CHECK_EQ_INT(take(h, INT64_MAX, &t), 0);
	/* the outbox says why the superseded ones were not sent */
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM outbox WHERE last_error LIKE "
				   "'not sent: superseded%'"),
		     3);
	store_sender_close(h);
	drop(s, path);
}

/*
 * The server out of reach: store_sender_hold makes every waiting mail due
 * at the hold's end (one waiting longer keeps its time); a mail queued
 * afterwards is due at once, and probes the server (for its alert's oldest
 * waiting mail, if any); store_sender_release makes them all due now,
 * oldest first.
 */
static void test_mail_hold(void)
{
	char path[256];
	struct taken t;
	struct store *s;
	struct store_sender *h = fresh_sender(path, sizeof(path), STORE_OUTBOX_MAIL, &s);
	if (h == NULL)
		return;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(add_mail(s, "<x1>", "site-a", "x@y.org", "x1", 1, false, T0), 0);
	CHECK_EQ_INT(add_mail(s, "<x2>", "site-a", "x@y.org", "x2", 2, false, T0), 0);
	CHECK_EQ_INT(add_mail(s, "<x3>", "site-a", "x@y.org", "x3", 3, false, T0), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	/* x1: the server does not answer; everything waits 5 s, x1 included */
	CHECK_EQ_INT(take(h, T0, &t), 1);
	CHECK_EQ_STR(t.key, "<x1>");
	CHECK_EQ_INT(store_sender_retry(h, t.id, T0 + 5000, "connection refused"), 0);
	CHECK_EQ_INT(store_sender_hold(h, T0 + 5000), 0);
	CHECK_EQ_INT(take(h, T0 + 1, &t), 0); /* x2 and x3 wait too, never tried */
	/* x4, queued now, is tried at once: still no answer, everything waits 10 s */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(add_mail(s, "<x4>", "site-a", "x@y.org", "x4", 4, false, T0 + 2), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(take(h, T0 + 2, &t), 1);
	CHECK_EQ_STR(t.key, "<x4>");
	CHECK_EQ_INT(store_sender_retry(h, t.id, T0 + 10000, "connection refused"), 0);
	CHECK_EQ_INT(store_sender_hold(h, T0 + 10000), 0);
	CHECK_EQ_INT(take(h, T0 + 6000, &t), 0); /* x1 was held to the second hold's end */
	/* x5 of x1's alert probes for x1, which the server refuses for itself: 50 s */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(add_mail(s, "<x5>", "site-a", "x@y.org", "x5", 1, false, T0 + 6001), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(take(h, T0 + 6001, &t), 1);
	CHECK_EQ_STR(t.key, "<x1>");
	CHECK_EQ_INT(store_sender_retry(h, t.id, T0 + 50000, "550 no such user"), 0);
	/* a shorter hold does not shorten a longer wait */
	CHECK_EQ_INT(store_sender_hold(h, T0 + 10000), 0);
	CHECK_EQ_INT(take(h, T0 + 10000, &t), 1);
	CHECK_EQ_STR(t.key, "<x2>");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 10000), 0);
	CHECK_EQ_INT(take(h, T0 + 10001, &t), 1);
	CHECK_EQ_STR(t.key, "<x3>");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 10001), 0);
	CHECK_EQ_INT(take(h, T0 + 10002, &t), 1);
	CHECK_EQ_STR(t.key, "<x4>");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 10002), 0);
	CHECK_EQ_INT(take(h, T0 + 10003, &t), 0); /* x1 (and x5 behind it): 50 s */
	/* the server answers again: whatever waits is due now, oldest first */
	CHECK_EQ_INT(store_sender_release(h, T0 + 10004), 0);
	CHECK_EQ_INT(take(h, T0 + 10004, &t), 1);
	CHECK_EQ_STR(t.key, "<x1>");
	CHECK_EQ_INT(t.attempts, 2);
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 10004), 0);
	CHECK_EQ_INT(take(h, T0 + 10005, &t), 1);
	CHECK_EQ_STR(t.key, "<x5>");
	CHECK_EQ_INT(t.attempts, 0);
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 10005), 0);
	CHECK_EQ_INT(store_sender_pending(h), 0);
	store_sender_close(h);
	drop(s, path);
}

/* A file of schema 17: its waiting mails get their alert and kind from their Message-ID. */
static void test_mail_order_migrated(void)
{
	char path[512];
	struct taken t;
	struct store *s = fresh(path, sizeof(path));
	CHECK(s != NULL);
	if (s == NULL)
		return;
	store_close(s);
	sql_exec(path, "BEGIN;" BACK_TO_SCHEMA_17
		       "INSERT INTO outbox(box, key, site, rcpt, body, created_at, sent_at) VALUES"
		       " (0, '<sitepulse.alert.42.opened.1764@site-a.sitepulse>', 'site-a',"
		       "  'x@y.org', 'o', 1, 5),"
		       " (0, '<sitepulse.alert.43.opened.1765@site-a.sitepulse>', 'site-a',"
		       "  'x@y.org', 'o', 1, NULL),"
		       " (0, '<sitepulse.alert.43.reminder-2.1765@site-a.sitepulse>', 'site-a',"
		       "  'x@y.org', 'r', 1, NULL),"
		       " (0, '<sitepulse.alert.43.cleared.1765@site-a.sitepulse>', 'site-a',"
		       "  'x@y.org', 'c', 1, NULL);"
		       "UPDATE outbox SET attempts = 3, next_try = 1764320030000 WHERE key LIKE "
		       "'%43.opened%';"
		       "COMMIT;");
	s = open_migrated(path);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM outbox WHERE alert_id = 43"), 3);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM outbox WHERE reminder = 1 AND key LIKE "
				   "'%reminder-2%'"),
		     1);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM outbox WHERE reminder = 1"), 1);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM outbox WHERE alert_id IS NULL"), 1);
	struct store_sender *h = store_sender_open(s, STORE_OUTBOX_MAIL);
	CHECK(h != NULL);
	if (h) {
		/* 43's later mails were due by their own times: its opening comes in their place */
		CHECK_EQ_INT(take_within(h, T0, 60000, &t), 1);
		CHECK_EQ_INT(t.attempts, 3);
		CHECK(strstr(t.key, "43.opened") != NULL);
		/* failed again: the three wait together */
		CHECK_EQ_INT(store_sender_retry(h, t.id, T0 + 30000, "connection refused"), 0);
		CHECK_EQ_INT(take_within(h, T0 + 1, 60000, &t), 0);
		CHECK_EQ_INT(take_within(h, T0 + 30000, 60000, &t), 1);
		CHECK(strstr(t.key, "43.opened") != NULL);
		store_sender_close(h);
	}
	drop(s, path);
}

static int on_summary_row(void *ctx, const struct store_summary_row *r)
{
	struct taken *t = ctx;
	if (t->n++ == 0) {
		snprintf(t->site, sizeof(t->site), "%s", r->site);
		snprintf(t->body, sizeof(t->body), "%.*s", (int)r->body_len, r->body);
		t->id = r->period_start;
		t->attempts = r->sent_at;
	}
	return 0;
}

/*
 * The city out of reach: the hold puts every waiting summary off (one
 * attempt per wait, not one per site), a summary built afterwards is tried
 * at once, and once the city answers everything goes, oldest first.
 */
static void test_city_hold(void)
{
	char path[256];
	struct taken t;
	struct store *s;
	struct store_sender *h = fresh_sender(path, sizeof(path), STORE_OUTBOX_CITY, &s);
	if (h == NULL)
		return;
	const int64_t M = 60000;
	CHECK_EQ_INT(store_sender_add_summary(h, "site-a", T0, T0 + M, "a:1", "{}", 2, T0 + M), 0);
	CHECK_EQ_INT(store_sender_add_summary(h, "site-b", T0, T0 + M, "b:1", "{}", 2, T0 + M), 0);
	CHECK_EQ_INT(store_sender_add_summary(h, "site-c", T0, T0 + M, "c:1", "{}", 2, T0 + M), 0);
	CHECK_EQ_INT(take(h, T0 + M, &t), 1);
	CHECK_EQ_STR(t.key, "a:1");
	/* no answer: a:1 waits 20 s (its own backoff's longer), everything else 10 */
	CHECK_EQ_INT(store_sender_retry(h, t.id, T0 + M + 20000, "connection refused"), 0);
	CHECK_EQ_INT(store_sender_hold(h, T0 + M + 10000), 0);
	CHECK_EQ_INT(take(h, T0 + M + 1, &t), 0); /* b:1 and c:1, never tried, wait too */
	/* a summary built now (a new site's): tried at once */
	CHECK_EQ_INT(store_sender_add_summary(h, "site-d", T0 + M, T0 + 2 * M, "d:2", "{}", 2,
					      T0 + M + 2), 0);
	CHECK_EQ_INT(take(h, T0 + M + 2, &t), 1);
	CHECK_EQ_STR(t.key, "d:2");
	CHECK_EQ_INT(store_sender_retry(h, t.id, T0 + M + 30000, "connection refused"), 0);
	CHECK_EQ_INT(store_sender_hold(h, T0 + M + 30000), 0);
	CHECK_EQ_INT(take(h, T0 + M + 20000, &t), 0); /* the second hold covers a:1 too */
	/* another new summary: delivered, the city is back; what waited goes, oldest first */
	CHECK_EQ_INT(store_sender_add_summary(h, "site-e", T0 + M, T0 + 2 * M, "e:2", "{}", 2,
					      T0 + M + 20001), 0);
	CHECK_EQ_INT(take(h, T0 + M + 20001, &t), 1);
	CHECK_EQ_STR(t.key, "e:2");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + M + 20001), 0);
	CHECK_EQ_INT(store_sender_release(h, T0 + M + 20001), 0);
	static const char *const order[] = {"a:1", "b:1", "c:1", "d:2"};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		CHECK_EQ_INT(take(h, T0 + M + 20002, &t), 1);
		CHECK_EQ_STR(t.key, order[i]);
		CHECK_EQ_INT(store_sender_done(h, t.id, T0 + M + 20002), 0);
	}
	CHECK_EQ_INT(store_sender_pending(h), 0);
	store_sender_close(h);
	drop(s, path);
}

/*
 * store_sender_release acts only where a hold may be in force: on a handle
 * just opened (a previous run's hold is in the store) and after
 * store_sender_hold; otherwise an item put off for its own failure keeps
 * its time. (The city's sender once kept that state itself and began as if
 * nothing were held: after a restart, summaries held by the run before
 * waited out their hold although the city answered.)
 */
/* A read that holds the only reader until told (store_r_site_names' callback waits). */
struct reader_holder {
	struct store *s;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool holding, release, done;
	int rc;
};

static int hold_the_reader(void *ctx, const char *site)
{
	struct reader_holder *h = ctx;
	(void)site;
	pthread_mutex_lock(&h->lock);
	h->holding = true;
	pthread_cond_broadcast(&h->cond);
	while (!h->release)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static void *reader_holder_main(void *arg)
{
	struct reader_holder *h = arg;
	int rc = store_r_site_names(h->s, hold_the_reader, h);
	pthread_mutex_lock(&h->lock);
	h->rc = rc;
	h->done = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/*
 * Every reader busy with a slow query: another read answers SP_EBUSY after
 * STORE_READ_WAIT_MS instead of waiting as long as the query takes (an API
 * thread comes free for /healthz), the ping 1 after STORE_PING_WAIT_MS;
 * once the reader is back, reads work again.
 */
static void test_reads_all_readers_busy(void)
{
	char path[512];
	harness_tmp_file(path, sizeof(path), "test_store", "db");
	struct store_params p = {.path = path, .readers = 1, .cache_mb = 4};
	struct store *s = store_open(&p);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t agent;
	struct store_device d;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "busy-1", "a", &agent), 0);
	CHECK_EQ_INT(store_w_upsert_device(s, "busy-1", "lift-1", agent, NULL, SP_DEV_LIFT, NULL, &d),
		     0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	struct reader_holder h = {.s = s};
	pthread_mutex_init(&h.lock, NULL);
	pthread_cond_init(&h.cond, NULL);
	pthread_t t;
	CHECK_EQ_INT(pthread_create(&t, NULL, reader_holder_main, &h), 0);
	pthread_mutex_lock(&h.lock);
	while (!h.holding && !h.done)
		pthread_cond_wait(&h.cond, &h.lock);
	bool holding = h.holding;
	pthread_mutex_unlock(&h.lock);
	CHECK(holding);
	if (holding) {
		struct site_rows sr = {0};
		int64_t t0 = mono_ms();
		CHECK_EQ_INT(store_r_sites(s, NOW, OFFLINE, on_site, &sr), SP_EBUSY);
		int64_t waited = mono_ms() - t0;
		CHECK(waited >= STORE_READ_WAIT_MS - 20);
		CHECK(waited < STORE_READ_WAIT_MS + 10000);
		CHECK_EQ_INT(sr.n, 0);
		CHECK_EQ_INT(store_r_ping(s), 1);
	}
	pthread_mutex_lock(&h.lock);
	h.release = true;
	pthread_cond_broadcast(&h.cond);
	pthread_mutex_unlock(&h.lock);
	pthread_join(t, NULL);
	CHECK_EQ_INT(h.rc, 0);
	struct site_rows sr = {0};
	CHECK_EQ_INT(store_r_sites(s, NOW, OFFLINE, on_site, &sr), 0);
	CHECK_EQ_INT(sr.n, 1);
	pthread_mutex_destroy(&h.lock);
	pthread_cond_destroy(&h.cond);
	drop(s, path);
}

static void test_sender_release_needs_hold(void)
{
	char path[256];
	struct taken t;
	struct store *s;
	struct store_sender *h = fresh_sender(path, sizeof(path), STORE_OUTBOX_CITY, &s);
	if (h == NULL)
		return;
	const int64_t M = 60000;
	CHECK_EQ_INT(store_sender_add_summary(h, "site-a", T0, T0 + M, "a:1", "{}", 2, T0 + M), 0);
	CHECK_EQ_INT(store_sender_add_summary(h, "site-b", T0, T0 + M, "b:1", "{}", 2, T0 + M), 0);
	CHECK_EQ_INT(take(h, T0 + M, &t), 1);
	CHECK_EQ_STR(t.key, "a:1");
	CHECK_EQ_INT(store_sender_retry(h, t.id, T0 + M + 50000, "connection refused"), 0);
	CHECK_EQ_INT(store_sender_hold(h, T0 + M + 20000), 0);
	/* the collector restarts: its new handle releases the old hold at the first delivery */
	store_sender_close(h);
	if ((h = open_sender(s, path, STORE_OUTBOX_CITY)) == NULL)
		return;
	CHECK_EQ_INT(take(h, T0 + M + 1, &t), 0);
	CHECK_EQ_INT(store_sender_release(h, T0 + M + 1), 0);
	CHECK_EQ_INT(take(h, T0 + M + 1, &t), 1);
	CHECK_EQ_STR(t.key, "a:1");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + M + 1), 0);
	CHECK_EQ_INT(take(h, T0 + M + 2, &t), 1);
	CHECK_EQ_STR(t.key, "b:1");
	/* b:1 refused for itself (503): a release with no hold since keeps its time */
	CHECK_EQ_INT(store_sender_retry(h, t.id, T0 + M + 90000, "HTTP 503"), 0);
	CHECK_EQ_INT(store_sender_release(h, T0 + M + 3), 0);
	CHECK_EQ_INT(take(h, T0 + M + 3, &t), 0);
	/* a hold since: the release makes it due */
	CHECK_EQ_INT(store_sender_hold(h, T0 + M + 10000), 0);
	CHECK_EQ_INT(store_sender_release(h, T0 + M + 4), 0);
	CHECK_EQ_INT(take(h, T0 + M + 4, &t), 1);
	CHECK_EQ_STR(t.key, "b:1");
	store_sender_close(h);
	drop(s, path);
}

/* City summaries: progress and outbox in one transaction; each site's periods go out in order. */
static void test_city_outbox(void)
{
	char path[256];
	struct taken t;
	int64_t p, pe;
	struct store *s;
	struct store_sender *h = fresh_sender(path, sizeof(path), STORE_OUTBOX_CITY, &s);
	if (h == NULL)
		return;
	const int64_t H = 3600000;
	CHECK_EQ_INT(store_sender_summarized(h, "site-a", &p, &pe), SP_ENOTFOUND);
	CHECK_EQ_INT(store_sender_add_summary(h, "site-a", T0, T0 + H, "site-a:1", "{\"a\":1}", 7,
					      T0 + H), 0);
	CHECK_EQ_INT(store_sender_add_summary(h, "site-b", T0, T0 + H, "site-b:1", "{\"b\":1}", 7,
					      T0 + H), 0);
	CHECK_EQ_INT(store_sender_add_summary(h, "site-a", T0 + H, T0 + 2 * H, "site-a:2",
					      "{\"a\":2}", 7, T0 + 2 * H), 0);
	CHECK_EQ_INT(store_sender_summarized(h, "site-a", &p, &pe), 0);
	CHECK_EQ_INT(p, T0 + H);
	CHECK_EQ_INT(pe, 0); /* these bodies say no period_end */
	CHECK_EQ_INT(store_sender_pending(h), 3);

	/* site-a's first period fails: its second waits behind it, site-b goes on */
	CHECK_EQ_INT(take(h, T0 + 2 * H, &t), 1);
	CHECK_EQ_STR(t.key, "site-a:1");
	CHECK(t.rcpt_null);
	CHECK_EQ_INT(store_sender_retry(h, t.id, T0 + 3 * H, "503"), 0);
	CHECK_EQ_INT(take(h, T0 + 2 * H, &t), 1);
	CHECK_EQ_STR(t.key, "site-b:1");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 2 * H), 0);
	CHECK_EQ_INT(take(h, T0 + 2 * H, &t), 0); /* site-a:2 must not overtake site-a:1 */
	CHECK_EQ_INT(take(h, T0 + 3 * H, &t), 1);
	CHECK_EQ_STR(t.key, "site-a:1");
	CHECK_EQ_INT(store_sender_done(h, t.id, T0 + 3 * H), 0);
	CHECK_EQ_INT(take(h, T0 + 3 * H, &t), 1);
	CHECK_EQ_STR(t.key, "site-a:2");

	/* the API's list: newest period first, filters, and whether it was delivered */
	memset(&t, 0, sizeof(t));
	CHECK_EQ_INT(store_r_summaries(s, NULL, 0, INT64_MAX, 100, on_summary_row, &t), 3);
	CHECK_EQ_STR(t.site, "site-a");
	CHECK_EQ_STR(t.body, "{\"a\":2}");
	CHECK_EQ_INT(t.attempts, 0); /* sent_at: not delivered */
	memset(&t, 0, sizeof(t));
	CHECK_EQ_INT(store_r_summaries(s, "site-b", 0, INT64_MAX, 100, on_summary_row, &t), 1);
	CHECK_EQ_INT(t.attempts, T0 + 2 * H);
	memset(&t, 0, sizeof(t));
	CHECK_EQ_INT(store_r_summaries(s, "site-a", T0, T0, 100, on_summary_row, &t), 1);
	CHECK_EQ_INT(t.id, T0);
	/* the same key again (a restart that rebuilt a period): ignored, progress kept */
	CHECK_EQ_INT(store_sender_add_summary(h, "site-a", T0 + H, T0 + 2 * H, "site-a:2", "{}", 2,
					      T0 + 3 * H), 0);
	memset(&t, 0, sizeof(t));
	CHECK_EQ_INT(store_r_summaries(s, "site-a", 0, INT64_MAX, 100, on_summary_row, &t), 2);
	CHECK_EQ_STR(t.body, "{\"a\":2}");
	/* a summary that says its end: the next period follows on from it, whatever its length */
	char body[128];
	int blen = snprintf(body, sizeof(body), "{\"v\":1,\"period_start\":%lld,\"period_end\":%lld}",
			    (long long)(T0 + 2 * H), (long long)(T0 + 4 * H));
	CHECK_EQ_INT(store_sender_add_summary(h, "site-c", T0 + 2 * H, T0 + 4 * H, "site-c:1", body,
					      (size_t)blen, T0 + 4 * H), 0);
	CHECK_EQ_INT(store_sender_summarized(h, "site-c", &p, &pe), 0);
	CHECK_EQ_INT(p, T0 + 2 * H);
	CHECK_EQ_INT(pe, T0 + 4 * H);
	store_sender_close(h);
	drop(s, path);
}

/* A device's readings of a period in time order, across chunks and kinds. */
struct rec_rows {
	int n;
	int64_t ts[16];
	int kind[16];
	char body[16][64];
};

static int on_rec(void *ctx, int64_t ts, enum sp_rec_kind kind, const char *body, size_t len)
{
	struct rec_rows *o = ctx;
	if (o->n < 16) {
		o->ts[o->n] = ts;
		o->kind[o->n] = kind;
		snprintf(o->body[o->n], sizeof(o->body[0]), "%.*s", (int)len, body);
	}
	o->n++;
	return 0;
}

static void test_device_records_in_time_order(void)
{
	char path[256];
	int64_t agent;
	struct store_device d;
	struct rec_rows rows = {0};
	struct store *s = fresh_with_device(path, sizeof(path), "site-a", "lift-1", SP_DEV_LIFT,
					    &agent, &d);
	if (s == NULL)
		return;
	/* three transactions (three chunks), written out of time order */
	const int64_t ts[] = {T0 + 300, T0 + 100, T0 + 200, T0 + 3600000 + 5, T0 - 1, T0 + 100};
	for (int i = 0; i < 6; i++) {
		char body[32];
		snprintf(body, sizeof(body), "{\"i\":%d}", i);
		if (i % 2 == 0)
			CHECK_EQ_INT(store_w_begin(s), 0);
		CHECK_EQ_INT(store_w_reading(s, d.id, agent, i + 1, i == 1 ? SP_REC_FAULT : SP_REC_LIFT,
					     ts[i], body, strlen(body)), 0);
		if (i % 2 == 1)
			CHECK_EQ_INT(store_w_commit(s), 0);
	}
	CHECK_EQ_INT(store_r_device_records(s, "site-a", "lift-1", T0, T0 + 3600000, 100, on_rec, &rows), 4);
	CHECK_EQ_INT(rows.ts[0], T0 + 100);
	CHECK_EQ_STR(rows.body[0], "{\"i\":1}"); /* equal ts: storage order */
	CHECK_EQ_INT(rows.kind[0], SP_REC_FAULT);
	CHECK_EQ_STR(rows.body[1], "{\"i\":5}");
	CHECK_EQ_INT(rows.ts[2], T0 + 200);
	CHECK_EQ_INT(rows.ts[3], T0 + 300);
	CHECK_EQ_INT(rows.kind[3], SP_REC_LIFT);
	memset(&rows, 0, sizeof(rows));
	CHECK_EQ_INT(store_r_device_records(s, "site-a", "nope", T0, T0 + 1, 100, on_rec, &rows),
		     SP_ENOTFOUND);
	CHECK_EQ_INT(store_r_device_records(s, "site-a", "lift-1", T0 + 1, T0 + 1, 100, on_rec, &rows), 0);
	/* four in the hour: a bound of 4 reads them, 3 refuses before handing any out */
	CHECK_EQ_INT(store_r_device_records(s, "site-a", "lift-1", T0, T0 + 3600000, 4, on_rec, &rows), 4);
	memset(&rows, 0, sizeof(rows));
	CHECK_EQ_INT(store_r_device_records(s, "site-a", "lift-1", T0, T0 + 3600000, 3, on_rec, &rows),
		     SP_ETOOBIG);
	CHECK_EQ_INT(rows.n, 0);
	drop(s, path);
}

/*
 * Readings handed over as canonical tails are stored without their head
 * and read back whole, byte for byte, by every reader: the readings query,
 * the device list's newest reading, a device's records in time order, and
 * again after compaction merged them with whole bodies. A tail that could
 * not be read back is refused.
 */
static void test_tail_readings_read_whole(void)
{
	char path[512], want[4][96], before[4096], after[4096];
	int64_t ag = 0, now = (int64_t)time(NULL) * 1000 + 7200000;
	struct store_device d;
	struct store *s = fresh_with_device(path, sizeof(path), "t", "lift-7", SP_DEV_LIFT, &ag, &d);
	if (s == NULL)
		return;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading_tail(s, d.id, ag, 1, SP_REC_LIFT, HOUR0 + 1, ",\"floor\":3}", 11), 0);
	CHECK_EQ_INT(store_w_reading_tail(s, d.id, ag, 1, SP_REC_FAULT, HOUR0 + 2, "}", 1), 0);
	CHECK_EQ_INT(store_w_reading(s, d.id, ag, 1, SP_REC_LIFT, HOUR0 + 3, "{\"w\":1}", 7), 0);
	/* not tails: refused, the transaction goes on */
	CHECK_EQ_INT(store_w_reading_tail(s, d.id, ag, 1, SP_REC_LIFT, HOUR0 + 4, "{\"w\":2}", 7),
		     SP_EINVAL);
	CHECK_EQ_INT(store_w_reading_tail(s, d.id, ag, 1, SP_REC_LIFT, HOUR0 + 4, "", 0), SP_EINVAL);
	CHECK_EQ_INT(store_w_reading_tail(s, d.id, ag, 1, SP_REC_KIND_COUNT, HOUR0 + 4, "}", 1),
		     SP_EINVAL);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_reading_tail(s, d.id, ag, 2, SP_REC_LIFT, HOUR0 + 9, ",\"floor\":4}", 11), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	/* the device's name is nowhere in the bodies: the heads were left out */
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE instr(body, 'lift-7')"), 0);
	CHECK_EQ_INT(sql_int(path, "SELECT sum(n) FROM reading_chunks"), 4);

	snprintf(want[0], sizeof(want[0]), "{\"t\":\"lift\",\"dev\":\"lift-7\",\"ts\":%lld,\"floor\":4}",
		 (long long)(HOUR0 + 9));
	snprintf(want[1], sizeof(want[1]), "{\"w\":1}");
	snprintf(want[2], sizeof(want[2]), "{\"t\":\"fault\",\"dev\":\"lift-7\",\"ts\":%lld}",
		 (long long)(HOUR0 + 2));
	snprintf(want[3], sizeof(want[3]), "{\"t\":\"lift\",\"dev\":\"lift-7\",\"ts\":%lld,\"floor\":3}",
		 (long long)(HOUR0 + 1));
	struct rows r;
	CHECK_EQ_INT(readings(s, "t", "lift-7", -1, ALL_TIME_FROM, ALL_TIME_TO, 10, &r), 4);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_STR(r.body[i], want[i]);
	CHECK_EQ_INT(readings(s, "t", "lift-7", SP_REC_FAULT, ALL_TIME_FROM, ALL_TIME_TO, 10, &r), 1);
	CHECK_EQ_STR(r.body[0], want[2]);

	struct dev_rows dr = {0};
	CHECK_EQ_INT(store_r_devices(s, "t", HOUR0 + 10, 60000, 0, on_device, &dr), 0);
	CHECK_EQ_INT(dr.n, 1);
	CHECK_EQ_STR(dr.r[0].latest, want[0]);

	struct rec_rows rec = {0};
	CHECK_EQ_INT(store_r_device_records(s, "t", "lift-7", HOUR0, HOUR0 + 10, 100, on_rec, &rec), 4);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_STR(rec.body[i], want[3 - i]);
	CHECK_EQ_INT(rec.kind[1], SP_REC_FAULT);

	/* compaction moves bare and whole bodies alike, changing no answer */
	readings_joined(s, "t", "lift-7", before, sizeof(before));
	CHECK_EQ_INT(compact_until_done(s, now), 2);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks"), 1);
	readings_joined(s, "t", "lift-7", after, sizeof(after));
	CHECK_EQ_STR(after, before);
	CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM reading_chunks WHERE instr(body, 'lift-7')"), 0);
	drop(s, path);
}

static int count_alert(void *ctx, const struct store_alert_row *a)
{
	(void)a;
	(*(int *)ctx)++;
	return 0;
}

/* Alerts during a period: open at some moment of it; and the pacing count. */
static void test_alerts_during_and_since(void)
{
	char path[256];
	int64_t agent;
	struct store_device d;
	int n = 0;
	struct store *s = fresh_with_device(path, sizeof(path), "site-a", "lift-1", SP_DEV_LIFT,
					    &agent, &d);
	if (s == NULL)
		return;
	int64_t before = open_alert(s, &d, "lift.mode", "", 0, "warning", T0 - 500);
	clear_alert(s, before, T0 - 100); /* over before the period */
	int64_t across = open_alert(s, &d, "lift.power_loss", "", 0, "major", T0 - 50);
	clear_alert(s, across, T0 + 50);
	open_alert(s, &d, "lift.trapped", "", 0, "critical", T0 + 10); /* still active */
	open_alert(s, &d, "lift.fault", "E1", 0, "major", T0 + 1000); /* after the period */
	CHECK_EQ_INT(store_r_alerts_during(s, "site-a", T0, T0 + 1000, count_alert, &n), 2);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(store_r_alerts_during(s, "site-b", T0, T0 + 1000, count_alert, &n), 0);
	CHECK_EQ_INT(store_w_alerts_opened_between(s, "site-a", "lift-1", "lift.fault.E1", 0, T0,
						   T0 + 1000), 1);
	CHECK_EQ_INT(store_w_alerts_opened_between(s, "site-a", "lift-1", "lift.fault.E1", 0, T0 + 1001,
						   INT64_MAX), 0);
	CHECK_EQ_INT(store_w_alerts_opened_between(s, "site-a", "lift-1", "lift.fault.E1", 0, 0, T0 + 999),
		     0);
	CHECK_EQ_INT(store_w_alerts_opened_between(s, "site-a", "lift-1", "lift.mode", 0, 0, INT64_MAX),
		     1);
	int64_t opened;
	char sev[16], detail[64];
	CHECK_EQ_INT(store_w_alert_info(s, across, &opened, sev, sizeof(sev), detail, sizeof(detail)), 0);
	CHECK_EQ_INT(opened, T0 - 50);
	CHECK_EQ_STR(sev, "major");
	CHECK_EQ_STR(detail, "details");
	CHECK_EQ_INT(store_w_alert_info(s, across + 100, &opened, sev, sizeof(sev), detail,
					sizeof(detail)), SP_ENOTFOUND);
	drop(s, path);
}

int main(void)
{
	sp_log_set_level(SP_LOG_WARN); /* the store logs its lifecycle at INFO */
	RUN(test_open_creates_schema);
	RUN(test_charger_current);
	RUN(test_page_size_of_new_files);
	RUN(test_wal_buffer_only_with_sync_full);
	RUN(test_migrates_version_1_readings);
	RUN(test_open_fails_cleanly);
	RUN(test_agent_find_or_create);
	RUN(test_device_upsert);
	RUN(test_readings_query);
	RUN(test_readings_with_field);
	RUN(test_city_counter_base);
	RUN(test_city_quiet_port);
	RUN(test_readings_same_ts_newest_insert_first);
	RUN(test_readings_across_chunks);
	RUN(test_lent_and_copied_bodies);
	RUN(test_tail_readings_read_whole);
	RUN(test_compaction);
	RUN(test_compaction_time_bound);
	RUN(test_compaction_keeps_up);
	RUN(test_compaction_keeps_order);
	RUN(test_chunk_ids);
	RUN(test_readings_by_kind);
	RUN(test_migrates_chunk_kinds);
	RUN(test_migrates_dropped_seen);
	RUN(test_migrates_device_seen);
	RUN(test_migrates_device_lookup);
	RUN(test_device_row_clamped);
	RUN(test_damaged_chunk);
	RUN(test_rollback_leaves_nothing);
	RUN(test_progress_round_trip);
	RUN(test_load_agents_passes_callback_error);
	RUN(test_progress_log);
	RUN(test_progress_log_failed_commit);
	RUN(test_sites_devices_online);
	RUN(test_online_from_newest_reading);
	RUN(test_online_by_arrival);
	RUN(test_empty_store_views);
	RUN(test_readers_do_not_see_open_batch);
	RUN(test_readers_while_writing);
	RUN(test_ping_with_every_reader_busy);
	RUN(test_alert_lifecycle);
	RUN(test_alert_queries_and_keys);
	RUN(test_alert_list_filters);
	RUN(test_holds_and_load);
	RUN(test_fault_clears);
	RUN(test_clock_set_back);
	RUN(test_clock_set_back_alerts);
	RUN(test_clock_set_forward_reminders);
	RUN(test_mail_outbox);
	RUN(test_mail_alert_order);
	RUN(test_mail_hold);
	RUN(test_mail_order_migrated);
	RUN(test_city_hold);
	RUN(test_sender_release_needs_hold);
	RUN(test_reads_all_readers_busy);
	RUN(test_city_outbox);
	RUN(test_device_records_in_time_order);
	RUN(test_alerts_during_and_since);
	RUN(test_site_has_records);
	HARNESS_EXIT();
}
