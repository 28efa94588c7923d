/*
 * store_sqlite_alerts.c - alerts in the SQLite backend (see store.h).
 *
 * The writer opens and clears alerts, and remembers the rules' pending
 * holds, on its own connection inside its batch transaction. The API lists
 * alerts through the read pool, and acknowledges them through a write
 * connection of its own (one acknowledgement at a time): each is a single
 * UPDATE, and SQLite's write lock orders it against the writer's batches.
 * The state column follows from cleared_at and acked_at; both writers set
 * it in the same statement that sets those, so it never disagrees.
 */
#include "store_sqlite_int.h"

#include "rules.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(STORE_ALERT_SEVERITIES == ALERT_SEVERITY_COUNT, "severity counts");

const char SQA_MIGRATION[] =
	/* a lift's rated speed (cm/s) or a charger's port limit (W), from the birth */
	"ALTER TABLE devices ADD COLUMN rating INTEGER NOT NULL DEFAULT 0;"
	"UPDATE devices SET rating = CASE kind"
	" WHEN 1 THEN min(65535, max(0, CAST(round(coalesce(json_extract(meta, '$.rated_speed'), 0)"
	"  * 100) AS INTEGER)))"
	" WHEN 2 THEN min(65535, max(0, CAST(round(coalesce(json_extract(meta, '$.port_limit_w'), 0))"
	"  AS INTEGER)))"
	" ELSE 0 END WHERE meta IS NOT NULL AND json_valid(meta);"
	/* rule is what people see (lift.fault.E12); rule_base and code are the rules' key */
	"CREATE TABLE alerts("
	" id INTEGER PRIMARY KEY,"
	" rule TEXT NOT NULL, rule_base TEXT NOT NULL, code TEXT NOT NULL DEFAULT '',"
	" device_id INTEGER NOT NULL, site TEXT NOT NULL, dev TEXT NOT NULL, port INTEGER,"
	" severity TEXT NOT NULL, state TEXT NOT NULL,"
	" opened_at INTEGER NOT NULL, cleared_at INTEGER, acked_at INTEGER, acked_by TEXT,"
	" detail TEXT NOT NULL);"
	/* CONTRACT §4: at most one active alert per (rule, site, dev, port), kept by the file itself */
	"CREATE UNIQUE INDEX alerts_one_active ON alerts(site, dev, rule, coalesce(port, 0))"
	" WHERE cleared_at IS NULL;"
	"CREATE INDEX alerts_opened ON alerts(opened_at);"
	"CREATE INDEX alerts_state ON alerts(state, severity);"
	"CREATE TABLE alert_holds("
	" device_id INTEGER NOT NULL, rule TEXT NOT NULL, port INTEGER NOT NULL, code TEXT NOT NULL,"
	" since INTEGER NOT NULL,"
	" PRIMARY KEY(device_id, rule, port, code)) WITHOUT ROWID;";

/*
 * How much later than opened_at + n x repeat_ms an alert's reminders are
 * due (ms): the steps forward of the collector's wall clock while it was
 * active and unacknowledged (sqa_clock_set_forward). A step is no time the
 * crew had to act.
 */
const char SQA_MIGRATION_REMIND_SHIFT[] =
	"ALTER TABLE alerts ADD COLUMN remind_shift INTEGER NOT NULL DEFAULT 0;";

/* the newest clear of each fault (rules: faultmemo.h), for late raises after a restart */
const char SQA_MIGRATION_FAULT_CLEARS[] =
	"CREATE TABLE fault_clears("
	" device_id INTEGER NOT NULL, port INTEGER NOT NULL, code TEXT NOT NULL, ts INTEGER NOT NULL,"
	" PRIMARY KEY(device_id, port, code)) WITHOUT ROWID;"
	"CREATE INDEX fault_clears_ts ON fault_clears(ts);";

enum { WA_OPEN, WA_FIND_ACTIVE, WA_CLEAR, WA_HOLD_PUT, WA_HOLD_DEL, WA_LOAD_ALERTS, WA_LOAD_HOLDS,
       WA_OPENED_SINCE, WA_INFO, WA_OFF_AGENTS, WA_OFF_SILENT, WA_OFF_ALERTED, WA_REMIND_DUE,
       WA_REMINDED, WA_FAULT_CLEAR, WA_FAULT_CLEARS_TRIM, WA_FAULT_CLEARS_LOAD, WA_BACK_ALERTS,
       WA_BACK_REMIND, WA_FWD_REMIND };
_Static_assert(WA_FWD_REMIND + 1 == SQA_W_COUNT, "SQA_W_COUNT");
#define REMINDERS_MAX 64 /* per store_w_reminders_due call */

/* The active alert of (site, dev, rule) without a port: alerts_one_active answers it. */
#define ACTIVE_ALERT(site, dev, rule)                                                  \
	"SELECT al.id FROM alerts al WHERE al.site = " site " AND al.dev = " dev        \
	" AND al.rule = " rule " AND coalesce(al.port, 0) = 0 AND al.cleared_at IS NULL"
/* a device's offline rule by its kind (1 lift, 2 charger: enum sp_dev_kind) */
#define OFFLINE_RULE_OF(kind) "CASE " kind " WHEN 1 THEN ?2 ELSE ?3 END"
#define OFFLINE_DEVICE_COLUMNS \
	"SELECT d.id, d.site, d.dev, d.kind, s.heard, a.agent, a.online, a.state_at, a.last_seen," \
	" a.up_since, a.dropped_seen"

static const char *const WASQL[SQA_W_COUNT] = {
	/*
	 * OR IGNORE: should the rules ever open a condition's alert while one is
	 * still active (alerts_one_active), the writer adopts the active one
	 * (sqa_alert_open) rather than failing every batch after it.
	 */
	[WA_OPEN] = "INSERT OR IGNORE INTO alerts(rule, rule_base, code, device_id, site, dev, port,"
		    " severity, state, opened_at, detail)"
		    " VALUES (?1 || CASE WHEN ?2 = '' THEN '' ELSE '.' || ?2 END,"
		    " ?1, ?2, ?3, ?4, ?5, nullif(?6, 0), ?7, 'active_unack', ?8, ?9)",
	[WA_FIND_ACTIVE] = "SELECT id FROM alerts WHERE site = ?1 AND dev = ?2 AND rule = ?3"
			   " AND coalesce(port, 0) = ?4 AND cleared_at IS NULL",
	[WA_CLEAR] = "UPDATE alerts SET cleared_at = ?2, state = CASE WHEN acked_at IS NULL"
		     " THEN 'cleared_unack' ELSE 'cleared_ack' END WHERE id = ?1 AND cleared_at IS NULL",
	[WA_HOLD_PUT] = "INSERT INTO alert_holds(device_id, rule, port, code, since)"
			" VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO UPDATE SET since = excluded.since",
	[WA_HOLD_DEL] = "DELETE FROM alert_holds WHERE device_id = ?1 AND rule = ?2 AND port = ?3"
			" AND code = ?4",
	[WA_LOAD_ALERTS] = "SELECT al.device_id, d.site, d.dev, d.kind, d.rating, s.last_seen,"
			   " al.rule_base, coalesce(al.port, 0), al.code, al.id, al.opened_at FROM alerts al"
			   " JOIN devices d ON d.id = al.device_id JOIN device_seen s ON s.id = d.id"
			   " WHERE al.cleared_at IS NULL",
	[WA_LOAD_HOLDS] = "SELECT h.device_id, d.site, d.dev, d.kind, d.rating, s.last_seen,"
			  " h.rule, h.port, h.code, h.since, 0 FROM alert_holds h"
			  " JOIN devices d ON d.id = h.device_id JOIN device_seen s ON s.id = d.id",
	[WA_OPENED_SINCE] = "SELECT count(*) FROM alerts WHERE site = ?1 AND dev = ?2 AND rule = ?3"
			    " AND coalesce(port, 0) = ?4 AND opened_at BETWEEN ?5 AND ?6",
	[WA_INFO] = "SELECT opened_at, severity, detail FROM alerts WHERE id = ?1",
	[WA_OFF_AGENTS] = "SELECT a.site, a.agent, a.online, a.state_at, a.last_seen, a.up_since,"
			  " a.dropped_seen,"
			  " coalesce((" ACTIVE_ALERT("a.site", "a.agent", "?1") "), 0)"
			  " FROM agents a WHERE a.last_seen > 0 OR a.state_at > 0",
	/*
	 * one pass over the narrow device_seen, the device's row and a probe of
	 * the partial index only for the silent ones
	 */
	[WA_OFF_SILENT] = OFFLINE_DEVICE_COLUMNS ", 0, 0 FROM device_seen s JOIN devices d ON d.id = s.id"
			  " JOIN agents a ON a.id = d.agent_id"
			  " WHERE d.kind IN (1, 2) AND s.heard > 0 AND s.heard < ?1"
			  " AND NOT EXISTS (" ACTIVE_ALERT("d.site", "d.dev", OFFLINE_RULE_OF("d.kind")) ")",
	/* the active ones through alerts_state (state, severity), not the whole history */
	[WA_OFF_ALERTED] = OFFLINE_DEVICE_COLUMNS ", al.id, al.opened_at FROM alerts al"
			   " JOIN devices d ON d.id = al.device_id JOIN agents a ON a.id = d.agent_id"
			   " JOIN device_seen s ON s.id = d.id"
			   " WHERE al.state IN ('active_unack', 'active_ack') AND al.cleared_at IS NULL"
			   " AND al.rule = " OFFLINE_RULE_OF("d.kind"),
	/* through alerts_state (state, severity): the few unacknowledged, never the history */
	[WA_REMIND_DUE] = "SELECT id, rule, site, dev, coalesce(port, 0), severity, detail, opened_at,"
			  " reminders, opened_at + remind_shift FROM alerts"
			  " WHERE state = 'active_unack' AND severity = ?1"
			  " AND opened_at + remind_shift + (reminders + 1) * ?2 <= ?3"
			  " ORDER BY opened_at, id LIMIT ?4",
	[WA_REMINDED] = "UPDATE alerts SET reminders = ?2 WHERE id = ?1",
	[WA_FAULT_CLEAR] = "INSERT INTO fault_clears(device_id, port, code, ts) VALUES (?1, ?2, ?3, ?4)"
			   " ON CONFLICT DO UPDATE SET ts = max(ts, excluded.ts)",
	/* through fault_clears_ts: the keep-th newest, then what is older */
	[WA_FAULT_CLEARS_TRIM] = "DELETE FROM fault_clears WHERE ts < (SELECT ts FROM fault_clears"
				 " ORDER BY ts DESC LIMIT 1 OFFSET ?1 - 1)",
	[WA_FAULT_CLEARS_LOAD] = "SELECT device_id, port, code, ts FROM (SELECT * FROM fault_clears"
				 " ORDER BY ts DESC LIMIT ?1) ORDER BY ts",
	/*
	 * sqa_clock_set_back: the collector's stamps later than now (?1) move
	 * back ?2; ?3-?5 the offline rules. A pass over the whole table, once
	 * per clock step: acked_at and cleared_at have no index, and a step is rare.
	 */
	[WA_BACK_ALERTS] = "UPDATE alerts SET"
			   " opened_at = CASE WHEN opened_at > ?1 AND rule IN (?3, ?4, ?5)"
			   " THEN opened_at - ?2 ELSE opened_at END,"
			   " cleared_at = CASE WHEN cleared_at > ?1 AND rule IN (?3, ?4, ?5)"
			   " THEN cleared_at - ?2 ELSE cleared_at END,"
			   " acked_at = CASE WHEN acked_at > ?1 THEN acked_at - ?2 ELSE acked_at END"
			   " WHERE (rule IN (?3, ?4, ?5) AND (opened_at > ?1 OR cleared_at > ?1))"
			   " OR acked_at > ?1",
	/*
	 * sqa_clock_set_back: reminders put off by steps forward come back by
	 * the step back ?1, no further (a forward step NTP undoes leaves them
	 * as they were); through alerts_state
	 */
	[WA_BACK_REMIND] = "UPDATE alerts SET remind_shift = max(0, remind_shift - ?1)"
			   " WHERE state = 'active_unack' AND remind_shift > 0",
	/*
	 * sqa_clock_set_forward: the reminders put off by the step ?1, of the
	 * alerts opened in [?2, ?3]; through alerts_state
	 */
	[WA_FWD_REMIND] = "UPDATE alerts SET remind_shift = remind_shift + ?1"
			  " WHERE state = 'active_unack' AND opened_at BETWEEN ?2 AND ?3",
};

#define ALERT_COLUMNS "SELECT id, rule, site, dev, coalesce(port, 0), severity, state, opened_at," \
		      " coalesce(cleared_at, 0), coalesce(acked_at, 0), acked_by, detail FROM alerts "

enum { RA_LIST_ACTIVE, RA_LIST_SITE, RA_LIST, RA_COUNTS, RA_ACTIVE_COUNTS, RA_DURING };
_Static_assert(RA_DURING + 1 == SQA_R_COUNT, "SQA_R_COUNT");

/*
 * ?1 the state filter (enum store_alert_state_filter): all (0) or cleared
 * (2); the active ones (1) are RA_LIST_ACTIVE's
 */
#define ALERT_STATE_FILTER "(?1 <> 2 OR cleared_at IS NOT NULL)"
_Static_assert(STORE_ALERTS_CLEARED == 2, "ALERT_STATE_FILTER spells it 2");

/*
 * The alert list, newest first, in three statements so that each has an
 * index that fits (docs/performance.md item 54): one form with every filter
 * optional scanned alerts_opened from the newest and tested each row, all
 * the history when few rows match (the active ones of a severity, or a
 * quiet site's). INDEXED BY makes a plan a guarantee: a statement that
 * could not use its index fails to prepare, and the store to open.
 */
static const char *const RASQL[SQA_R_COUNT] = {
	/* the active alerts, from the index that holds only them, then sorted */
	[RA_LIST_ACTIVE] = ALERT_COLUMNS "INDEXED BY alerts_one_active WHERE cleared_at IS NULL"
	" AND (?2 IS NULL OR site = ?2) AND (?3 IS NULL OR severity = ?3)"
	" ORDER BY opened_at DESC, id DESC LIMIT ?4",
	/* one site's, newest first through alerts_site_opened (site, opened_at) */
	[RA_LIST_SITE] = ALERT_COLUMNS "INDEXED BY alerts_site_opened WHERE site = ?2 AND "
	ALERT_STATE_FILTER " AND (?3 IS NULL OR severity = ?3)"
	" ORDER BY opened_at DESC, id DESC LIMIT ?4",
	/*
	 * every site's (?2 unused: a site goes to RA_LIST_SITE): newest first
	 * through alerts_opened, the planner's own choice, until the limit
	 */
	[RA_LIST] = ALERT_COLUMNS "WHERE " ALERT_STATE_FILTER
	" AND (?3 IS NULL OR severity = ?3) ORDER BY opened_at DESC, id DESC LIMIT ?4",
	[RA_COUNTS] = "SELECT state, severity, count(*) FROM alerts GROUP BY state, severity",
	/* through alerts_state (state, severity): the dashboard asks every 5 s */
	[RA_ACTIVE_COUNTS] = "SELECT state, severity, count(*) FROM alerts"
			     " WHERE state IN ('active_unack', 'active_ack')"
			     " GROUP BY state, severity",
	/* active at some moment of [?2, ?3): opened before its end, not cleared before its start */
	[RA_DURING] = ALERT_COLUMNS "WHERE site = ?1 AND opened_at < ?3"
		      " AND (cleared_at IS NULL OR cleared_at >= ?2) ORDER BY opened_at, id",
};

enum { ACK_SET, ACK_GET };
static const char *const ACKSQL[2] = {
	[ACK_SET] = "UPDATE alerts SET acked_at = ?2, acked_by = ?3, state = CASE WHEN cleared_at IS"
		    " NULL THEN 'active_ack' ELSE 'cleared_ack' END WHERE id = ?1 AND acked_at IS NULL",
	[ACK_GET] = ALERT_COLUMNS "WHERE id = ?1",
};


/* ---------------------------------------------------------------- statements */

int sqa_prepare(struct sqlite_store *s)
{
	int rc = sqs_prepare_all(s, s->db, WASQL, SQA_W_COUNT, s->alert_w);
	if (rc)
		return rc;
	if (sqlite3_open_v2(s->path, &s->ack_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		return sqs_db_error(s, s->ack_db, "open the acknowledgement connection");
	/* the writer's batches are short (tens of ms): an acknowledgement waits them out */
	sqs_busy_init(s, s->ack_db, &s->busy_ack, 5000);
	return sqs_prepare_all(s, s->ack_db, ACKSQL, 2, s->ack_st);
}

int sqa_prepare_reader(struct sqlite_store *s, struct reader *r)
{
	return sqs_prepare_all(s, r->db, RASQL, SQA_R_COUNT, r->alert_st);
}

void sqa_finalize(struct sqlite_store *s)
{
	for (int i = 0; i < SQA_W_COUNT; i++)
		sqlite3_finalize(s->alert_w[i]);
	for (int i = 0; i < 2; i++)
		sqlite3_finalize(s->ack_st[i]);
	if (s->ack_db)
		sqlite3_close(s->ack_db);
}

void sqa_finalize_reader(struct reader *r)
{
	for (int i = 0; i < SQA_R_COUNT; i++)
		sqlite3_finalize(r->alert_st[i]);
}

/* Steps a writer statement to its end and resets it. */
static int wa_step(struct sqlite_store *s, int which)
{
	sqlite3_stmt *st = s->alert_w[which];
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : sqs_db_error(s, s->db, WASQL[which]);
}

/* ---------------------------------------------------------------- writer side */

int sqa_alert_open(void *impl, const struct store_alert_new *a, int64_t *id, bool *adopted)
{
	struct sqlite_store *s = impl;
	*adopted = false;
	sqlite3_stmt *st = s->alert_w[WA_OPEN];
	sqs_bind_text(st, 1, a->rule);
	sqs_bind_text(st, 2, a->code ? a->code : "");
	sqlite3_bind_int64(st, 3, a->device_id);
	sqs_bind_text(st, 4, a->site);
	sqs_bind_text(st, 5, a->dev);
	sqlite3_bind_int(st, 6, a->port);
	sqs_bind_text(st, 7, a->severity);
	sqlite3_bind_int64(st, 8, a->opened_at);
	sqs_bind_text(st, 9, a->detail ? a->detail : "");
	int rc = wa_step(s, WA_OPEN);
	if (rc)
		return rc;
	if (sqlite3_changes(s->db) > 0) {
		*id = sqlite3_last_insert_rowid(s->db);
		return 0;
	}
	char rule[ALERT_RULE_SHOWN_MAX];
	alert_rule_shown(rule, sizeof(rule), a->rule, a->code);
	st = s->alert_w[WA_FIND_ACTIVE];
	sqs_bind_text(st, 1, a->site);
	sqs_bind_text(st, 2, a->dev);
	sqs_bind_text(st, 3, rule);
	sqlite3_bind_int(st, 4, a->port);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW)
		return sqs_db_error(s, s->db, "find the active alert");
	/* the caller says what it means (writer_alerts.c: logged, counted, not mailed again) */
	*adopted = true;
	return 0;
}

int sqa_alert_clear(void *impl, int64_t id, int64_t ts)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->alert_w[WA_CLEAR];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, ts);
	return wa_step(s, WA_CLEAR);
}

static void bind_key(sqlite3_stmt *st, int64_t device_id, const char *rule, int32_t port,
		     const char *code)
{
	sqlite3_bind_int64(st, 1, device_id);
	sqs_bind_text(st, 2, rule);
	sqlite3_bind_int(st, 3, port);
	sqs_bind_text(st, 4, code ? code : "");
}

int sqa_hold_put(void *impl, int64_t device_id, const char *rule, int32_t port, const char *code,
		 int64_t since)
{
	struct sqlite_store *s = impl;
	bind_key(s->alert_w[WA_HOLD_PUT], device_id, rule, port, code);
	sqlite3_bind_int64(s->alert_w[WA_HOLD_PUT], 5, since);
	return wa_step(s, WA_HOLD_PUT);
}

int sqa_hold_del(void *impl, int64_t device_id, const char *rule, int32_t port, const char *code)
{
	struct sqlite_store *s = impl;
	bind_key(s->alert_w[WA_HOLD_DEL], device_id, rule, port, code);
	return wa_step(s, WA_HOLD_DEL);
}

/* Loads the rows of one of the two condition queries (the columns are alike; a hold's opened_at is 0). */
static int load_rows(struct sqlite_store *s, int which, store_condition_fn fn, void *ctx)
{
	sqlite3_stmt *st = s->alert_w[which];
	int rc, err = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int kind = sqlite3_column_int(st, 3);
		int64_t rating = sqlite3_column_int64(st, 4);
		int64_t last = sqlite3_column_int64(st, 9);
		struct store_condition c = {
			.device_id = sqlite3_column_int64(st, 0),
			.site = (const char *)sqlite3_column_text(st, 1),
			.dev = (const char *)sqlite3_column_text(st, 2),
			.kind = kind > SP_DEV_UNKNOWN && kind < SP_DEV_KIND_COUNT ? (enum sp_dev_kind)kind
										  : SP_DEV_UNKNOWN,
			.rating = (uint16_t)(rating < 0 ? 0 : rating > 65535 ? 65535 : rating),
			.last_seen = sqlite3_column_int64(st, 5),
			.rule = (const char *)sqlite3_column_text(st, 6),
			.port = sqlite3_column_int(st, 7),
			.code = (const char *)sqlite3_column_text(st, 8),
			.alert_id = which == WA_LOAD_ALERTS ? last : 0,
			.since = which == WA_LOAD_HOLDS ? last : 0,
			.opened_at = sqlite3_column_int64(st, 10),
		};
		if (c.site == NULL || c.dev == NULL || c.rule == NULL || c.code == NULL)
			continue; /* only a damaged file has NULLs here */
		if ((err = fn(ctx, &c)))
			break;
	}
	sqlite3_reset(st);
	if (err)
		return err;
	return rc == SQLITE_DONE ? 0 : sqs_db_error(s, s->db, "load alerts");
}

int sqa_load_conditions(void *impl, store_condition_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	int rc = load_rows(s, WA_LOAD_ALERTS, fn, ctx);
	return rc ? rc : load_rows(s, WA_LOAD_HOLDS, fn, ctx);
}

int sqa_fault_clear(void *impl, int64_t device_id, int32_t port, const char *code, int64_t ts)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->alert_w[WA_FAULT_CLEAR];
	sqlite3_bind_int64(st, 1, device_id);
	sqlite3_bind_int(st, 2, port);
	sqs_bind_text(st, 3, code);
	sqlite3_bind_int64(st, 4, ts);
	return wa_step(s, WA_FAULT_CLEAR);
}

int sqa_fault_clears_trim(void *impl, int64_t keep)
{
	struct sqlite_store *s = impl;
	sqlite3_bind_int64(s->alert_w[WA_FAULT_CLEARS_TRIM], 1, keep > 0 ? keep : 1);
	return wa_step(s, WA_FAULT_CLEARS_TRIM);
}

int sqa_load_fault_clears(void *impl, int64_t max, store_fault_clear_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->alert_w[WA_FAULT_CLEARS_LOAD];
	sqlite3_bind_int64(st, 1, max);
	int rc, err = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *code = (const char *)sqlite3_column_text(st, 2);
		if (code == NULL)
			continue; /* only a damaged file has NULLs here */
		if ((err = fn(ctx, sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1), code,
			      sqlite3_column_int64(st, 3))) != 0)
			break;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (err)
		return err;
	return rc == SQLITE_DONE ? 0 : sqs_db_error(s, s->db, "load the fault clears");
}

/* ---------------------------------------------------------------- offline sweep */

static void read_offline_agent(sqlite3_stmt *st, int at, struct store_offline_agent *a)
{
	a->online = sqlite3_column_int(st, at) != 0;
	a->state_at = sqlite3_column_int64(st, at + 1);
	a->last_seen = sqlite3_column_int64(st, at + 2);
	a->up_since = sqlite3_column_int64(st, at + 3);
	a->dropped_seen = sqlite3_column_int64(st, at + 4);
}

static void read_offline_device(sqlite3_stmt *st, struct store_offline_device *d)
{
	d->device_id = sqlite3_column_int64(st, 0);
	d->site = (const char *)sqlite3_column_text(st, 1);
	d->dev = (const char *)sqlite3_column_text(st, 2);
	d->kind = sqlite3_column_int(st, 3) == SP_DEV_LIFT ? SP_DEV_LIFT : SP_DEV_CHARGER;
	d->heard = sqlite3_column_int64(st, 4);
	d->agent = (struct store_offline_agent){.site = d->site,
						.agent = (const char *)sqlite3_column_text(st, 5)};
	read_offline_agent(st, 6, &d->agent);
	d->alert_id = sqlite3_column_int64(st, 11);
	d->alert_opened_at = sqlite3_column_int64(st, 12);
}

/* A device row kept past its statement: WA_OFF_ALERTED's callbacks update the table it walks. */
struct offline_copy {
	struct store_offline_device d;
	char site[SP_ID_MAX + 1], dev[SP_ID_MAX + 1], agent[SP_ID_MAX + 1];
};

static int offline_devices(struct sqlite_store *s, int which, const struct store_offline_scan *q)
{
	sqlite3_stmt *st = s->alert_w[which];
	struct offline_copy *copies = NULL;
	size_t n = 0, cap = 0;
	int rc, err = 0;
	if (which == WA_OFF_SILENT)
		sqlite3_bind_int64(st, 1, q->silent_before);
	sqs_bind_text(st, 2, q->rules.lift);
	sqs_bind_text(st, 3, q->rules.charger);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_offline_device d;
		read_offline_device(st, &d);
		if (d.site == NULL || d.dev == NULL || d.agent.agent == NULL)
			continue; /* only a damaged file has NULLs here */
		if (which == WA_OFF_SILENT) {
			/* opening alerts inserts into a table this statement only probes */
			if ((err = q->device(q->ctx, &d)))
				break;
			continue;
		}
		struct offline_copy *c = sp_grow(copies, &cap, n + 1, sizeof(*c), 16);
		if (c == NULL) {
			err = SP_ENOMEM;
			break;
		}
		copies = c;
		c = &copies[n++];
		c->d = d;
		snprintf(c->site, sizeof(c->site), "%s", d.site);
		snprintf(c->dev, sizeof(c->dev), "%s", d.dev);
		snprintf(c->agent, sizeof(c->agent), "%s", d.agent.agent);
		c->d.site = c->d.agent.site = c->site;
		c->d.dev = c->dev;
		c->d.agent.agent = c->agent;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (!err && rc != SQLITE_DONE)
		err = sqs_db_error(s, s->db, "find silent devices");
	for (size_t i = 0; !err && i < n; i++)
		err = q->device(q->ctx, &copies[i].d);
	free(copies);
	return err;
}

int sqa_offline_scan(void *impl, const struct store_offline_scan *q)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->alert_w[WA_OFF_AGENTS];
	int rc, err = 0;
	sqs_bind_text(st, 1, q->rules.gateway);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_offline_agent a = {.site = (const char *)sqlite3_column_text(st, 0),
						.agent = (const char *)sqlite3_column_text(st, 1),
						.alert_id = sqlite3_column_int64(st, 7)};
		read_offline_agent(st, 2, &a);
		if (a.site == NULL || a.agent == NULL)
			continue;
		/* the walk is over agents; the callback writes only alerts */
		if ((err = q->agent(q->ctx, &a)))
			break;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (err)
		return err;
	if (rc != SQLITE_DONE)
		return sqs_db_error(s, s->db, "read the agents' liveness");
	if ((err = offline_devices(s, WA_OFF_SILENT, q)))
		return err;
	return offline_devices(s, WA_OFF_ALERTED, q);
}

int sqa_clock_set_back(struct sqlite_store *s, int64_t now_ms, int64_t back_ms,
		       const struct store_offline_rules *offline)
{
	sqlite3_stmt *st = s->alert_w[WA_BACK_ALERTS];
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int64(st, 2, back_ms);
	sqs_bind_text(st, 3, offline->gateway);
	sqs_bind_text(st, 4, offline->lift);
	sqs_bind_text(st, 5, offline->charger);
	int rc = wa_step(s, WA_BACK_ALERTS);
	if (rc)
		return rc;
	sqlite3_bind_int64(s->alert_w[WA_BACK_REMIND], 1, back_ms);
	return wa_step(s, WA_BACK_REMIND);
}

int sqa_clock_set_forward(void *impl, int64_t fwd_ms, int64_t from_ms, int64_t to_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_bind_int64(s->alert_w[WA_FWD_REMIND], 1, fwd_ms);
	sqlite3_bind_int64(s->alert_w[WA_FWD_REMIND], 2, from_ms);
	sqlite3_bind_int64(s->alert_w[WA_FWD_REMIND], 3, to_ms);
	return wa_step(s, WA_FWD_REMIND);
}

/* ---------------------------------------------------------------- reminders */

/* A due alert kept past its statement: fn updates the rows the statement walks. */
struct reminder_copy {
	struct store_reminder r;
	char rule[160], site[SP_ID_MAX + 1], dev[SP_ID_MAX + 1], severity[16], detail[512];
};

int sqa_reminders_due(void *impl, const char *severity, int64_t repeat_ms, int64_t now_ms,
		      store_reminder_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->alert_w[WA_REMIND_DUE];
	struct reminder_copy *copies = NULL;
	size_t n = 0, cap = 0;
	int rc, err = 0;
	sqs_bind_text(st, 1, severity);
	sqlite3_bind_int64(st, 2, repeat_ms);
	sqlite3_bind_int64(st, 3, now_ms);
	sqlite3_bind_int(st, 4, REMINDERS_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *text[5];
		for (int i = 0; i < 4; i++)
			text[i] = (const char *)sqlite3_column_text(st, i + 1);
		text[4] = (const char *)sqlite3_column_text(st, 6);
		if (!text[0] || !text[1] || !text[2] || !text[3] || !text[4])
			continue; /* only a damaged file has NULLs here */
		struct reminder_copy *c = sp_grow(copies, &cap, n + 1, sizeof(*c), 8);
		if (c == NULL) {
			err = SP_ENOMEM;
			break;
		}
		copies = c;
		c = &copies[n++];
		snprintf(c->rule, sizeof(c->rule), "%s", text[0]);
		snprintf(c->site, sizeof(c->site), "%s", text[1]);
		snprintf(c->dev, sizeof(c->dev), "%s", text[2]);
		snprintf(c->severity, sizeof(c->severity), "%s", sqlite3_column_text(st, 5) ?
			 (const char *)sqlite3_column_text(st, 5) : "");
		snprintf(c->detail, sizeof(c->detail), "%s", text[4]);
		c->r = (struct store_reminder){
			.id = sqlite3_column_int64(st, 0), .rule = c->rule, .site = c->site,
			.dev = c->dev, .port = sqlite3_column_int(st, 4), .severity = c->severity,
			.detail = c->detail, .opened_at = sqlite3_column_int64(st, 7),
			.remind_from = sqlite3_column_int64(st, 9),
			.reminders = sqlite3_column_int64(st, 8)};
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (!err && rc != SQLITE_DONE)
		err = sqs_db_error(s, s->db, "find the alerts due a reminder");
	for (size_t i = 0; !err && i < n; i++)
		err = fn(ctx, &copies[i].r);
	free(copies);
	return err;
}

int sqa_alert_reminded(void *impl, int64_t id, int64_t reminders)
{
	struct sqlite_store *s = impl;
	sqlite3_bind_int64(s->alert_w[WA_REMINDED], 1, id);
	sqlite3_bind_int64(s->alert_w[WA_REMINDED], 2, reminders);
	return wa_step(s, WA_REMINDED);
}

/* ---------------------------------------------------------------- readers */

static void read_alert(sqlite3_stmt *st, struct store_alert_row *a)
{
	a->id = sqlite3_column_int64(st, 0);
	a->rule = (const char *)sqlite3_column_text(st, 1);
	a->site = (const char *)sqlite3_column_text(st, 2);
	a->dev = (const char *)sqlite3_column_text(st, 3);
	a->port = sqlite3_column_int(st, 4);
	a->severity = (const char *)sqlite3_column_text(st, 5);
	a->state = (const char *)sqlite3_column_text(st, 6);
	a->opened_at = sqlite3_column_int64(st, 7);
	a->cleared_at = sqlite3_column_int64(st, 8);
	a->acked_at = sqlite3_column_int64(st, 9);
	a->acked_by = (const char *)sqlite3_column_text(st, 10);
	a->detail = (const char *)sqlite3_column_text(st, 11);
}

/* Hands the rows of a bound alert query to fn, then ends the read. Their number or SP_E*. */
static int walk_alerts(struct sqlite_store *s, struct reader *r, sqlite3_stmt *st,
		       store_alert_fn fn, void *ctx, const char *what)
{
	int rc, n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_alert_row a;
		read_alert(st, &a);
		n++;
		if (fn(ctx, &a))
			break;
	}
	int err = sqs_rdone(s, r, st, rc, what);
	return err ? err : n;
}

int sqa_r_alerts(void *impl, const struct store_alerts_query *q, store_alert_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	int which = q->state == STORE_ALERTS_ACTIVE ? RA_LIST_ACTIVE
		    : q->site != NULL		    ? RA_LIST_SITE
						    : RA_LIST;
	sqlite3_stmt *st = r->alert_st[which];
	sqlite3_bind_int(st, 1, (int)q->state);
	sqs_bind_text(st, 2, q->site);
	sqs_bind_text(st, 3, q->severity);
	sqlite3_bind_int64(st, 4, q->limit);
	return walk_alerts(s, r, st, fn, ctx, "list alerts");
}

int sqa_r_alert_counts(void *impl, bool active_only,
		       int64_t counts[STORE_ALERT_STATES][STORE_ALERT_SEVERITIES])
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	sqlite3_stmt *st = r->alert_st[active_only ? RA_ACTIVE_COUNTS : RA_COUNTS];
	int rc;
	memset(counts, 0, sizeof(int64_t) * STORE_ALERT_STATES * STORE_ALERT_SEVERITIES);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(st, 0);
		const char *sev = (const char *)sqlite3_column_text(st, 1);
		int j = sev ? alert_severity_parse(sev) : -1;
		for (int i = 0; state && j >= 0 && i < STORE_ALERT_STATES; i++)
			if (strcmp(state, store_alert_states[i]) == 0)
				counts[i][j] += sqlite3_column_int64(st, 2);
	}
	return sqs_rdone(s, r, st, rc, "count alerts");
}

/* ---------------------------------------------------------------- acknowledgement */

int sqa_ack_alert(void *impl, int64_t id, const char *by, int64_t now_ms, store_alert_fn fn,
		  void *ctx)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *set = s->ack_st[ACK_SET], *get = s->ack_st[ACK_GET];
	int rc, out;

	pthread_mutex_lock(&s->ack_lock);
	sqlite3_bind_int64(set, 1, id);
	sqlite3_bind_int64(set, 2, now_ms);
	sqs_bind_text(set, 3, by);
	rc = sqlite3_step(set);
	bool changed = rc == SQLITE_DONE && sqlite3_changes(s->ack_db) > 0;
	sqlite3_reset(set);
	sqlite3_clear_bindings(set);
	if (rc != SQLITE_DONE) {
		out = sqs_db_error(s, s->ack_db, "acknowledge an alert");
		goto done;
	}
	sqlite3_bind_int64(get, 1, id);
	rc = sqlite3_step(get);
	if (rc == SQLITE_ROW) {
		struct store_alert_row a;
		read_alert(get, &a);
		out = changed ? 0 : SP_EEXIST;
		fn(ctx, &a);
	} else {
		out = rc == SQLITE_DONE ? SP_ENOTFOUND : sqs_db_error(s, s->ack_db, "read an alert");
	}
	sqlite3_reset(get);
	sqlite3_clear_bindings(get);
done:
	pthread_mutex_unlock(&s->ack_lock);
	return out;
}

int64_t sqa_alerts_opened_between(void *impl, const char *site, const char *dev,
				  const char *rule_shown, int32_t port, int64_t from_ms,
				  int64_t to_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->alert_w[WA_OPENED_SINCE];
	int64_t n;
	sqs_bind_text(st, 1, site);
	sqs_bind_text(st, 2, dev);
	sqs_bind_text(st, 3, rule_shown);
	sqlite3_bind_int(st, 4, port);
	sqlite3_bind_int64(st, 5, from_ms);
	sqlite3_bind_int64(st, 6, to_ms);
	int rc = sqlite3_step(st);
	n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : sqs_db_error(s, s->db, "count alerts");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return n;
}

int sqa_alert_info(void *impl, int64_t id, int64_t *opened_at, char *severity,
		   size_t severity_cap, char *detail, size_t detail_cap)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->alert_w[WA_INFO];
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *sev = (const char *)sqlite3_column_text(st, 1);
		const char *det = (const char *)sqlite3_column_text(st, 2);
		*opened_at = sqlite3_column_int64(st, 0);
		snprintf(severity, severity_cap, "%s", sev ? sev : "");
		snprintf(detail, detail_cap, "%s", det ? det : "");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? SP_ENOTFOUND : sqs_db_error(s, s->db, "read an alert");
}

int sqa_r_alerts_during(void *impl, const char *site, int64_t from, int64_t to, store_alert_fn fn,
			void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	sqlite3_stmt *st = r->alert_st[RA_DURING];
	sqs_bind_text(st, 1, site);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	return walk_alerts(s, r, st, fn, ctx, "list a period's alerts");
}
