/*
 * store_sqlite_outbox.c - the outboxes (alert mails, city summaries) and
 * the summaries' progress in the SQLite backend (see store.h).
 *
 * The writer adds mails on its own connection, in its batch transaction.
 * Each sender thread (mailer.c, cityout.c) gets a connection of its own
 * (struct sq_sender): taking the next item, marking it delivered or due
 * again are single statements, so a sender never holds SQLite's write
 * lock while it talks to its peer; the writer's batches and the senders'
 * updates are ordered by SQLite's lock (busy timeout).
 */
#include "store_sqlite_int.h"

#include "sitepulse/error.h"

#include <stdlib.h>
#include <string.h>

const char SQO_MIGRATION[] =
	/* box: 0 mail, 1 city; key: Message-ID or Idempotency-Key */
	"CREATE TABLE outbox("
	" id INTEGER PRIMARY KEY,"
	" box INTEGER NOT NULL, key TEXT NOT NULL, site TEXT NOT NULL, rcpt TEXT,"
	" body BLOB NOT NULL, created_at INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0,"
	" sent_at INTEGER, last_error TEXT, period_start INTEGER,"
	" UNIQUE(box, key));"
	"CREATE INDEX outbox_pending ON outbox(box, next_try) WHERE sent_at IS NULL;"
	"CREATE INDEX outbox_periods ON outbox(box, site, period_start);"
	"CREATE TABLE summary_progress(site TEXT PRIMARY KEY, period_start INTEGER NOT NULL)"
	" WITHOUT ROWID;"
	/* mail pacing counts a condition's recent alerts */
	"CREATE INDEX alerts_key ON alerts(site, dev, rule, opened_at);";

/*
 * 17 -> 18: a mail's alert and whether it is a reminder, so that an alert's
 * mails go out in the order they were queued and a reminder overtaken by
 * later news is not sent (store_sender_next, store_sender_superseded).
 * Mails still waiting get both from their Message-ID
 * (<sitepulse.alert.ID.EVENT.…>, mailfmt.h); delivered ones need neither.
 */
const char SQO_MIGRATION_MAIL_ORDER[] =
	"ALTER TABLE outbox ADD COLUMN alert_id INTEGER;"
	"ALTER TABLE outbox ADD COLUMN reminder INTEGER NOT NULL DEFAULT 0;"
	"UPDATE outbox SET alert_id = CAST(substr(key, 18) AS INTEGER),"
	" reminder = key LIKE '%.reminder-%'"
	" WHERE box = 0 AND sent_at IS NULL AND key LIKE '<sitepulse.alert.%';"
	"CREATE INDEX outbox_alert ON outbox(alert_id, id) WHERE sent_at IS NULL;";

/* ---------------------------------------------------------------- statements */

enum { WO_ADD };
_Static_assert(WO_ADD + 1 == SQO_W_COUNT, "SQO_W_COUNT");
static const char *const WOSQL[SQO_W_COUNT] = {
	[WO_ADD] = "INSERT OR IGNORE INTO outbox(box, key, site, rcpt, body, created_at, next_try,"
		   " alert_id, reminder) VALUES (0, ?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
};

enum { RO_SUMMARIES };
_Static_assert(RO_SUMMARIES + 1 == SQO_R_COUNT, "SQO_R_COUNT");
static const char *const ROSQL[SQO_R_COUNT] = {
	[RO_SUMMARIES] = "SELECT site, period_start, body, coalesce(sent_at, 0) FROM outbox"
			 " WHERE box = 1 AND (?1 IS NULL OR site = ?1)"
			 " AND period_start BETWEEN ?2 AND ?3"
			 " ORDER BY period_start DESC, site LIMIT ?4",
};

enum { SO_NEXT, SO_DONE, SO_RETRY, SO_PENDING, SO_HOLD, SO_RELEASE, SO_SUPERSEDE, SO_SUMMARIZED,
       SO_BEGIN, SO_ADD, SO_PROGRESS, SO_COMMIT, SO_ROLLBACK, SO_COUNT };
#define ITEM_COLUMNS "SELECT id, key, site, rcpt, body, created_at, attempts, reminder FROM outbox "
/*
 * store_sender_next's due: never put off (next_try still created_at:
 * queued since the last failure, which is how a peer back within a long
 * backoff is noticed), its time come, or a time a clock set back left
 * behind.
 */
#define ITEM_DUE(t) "(" t "next_try = " t "created_at OR " t "next_try <= ?1 OR " t "next_try > ?2)"
static const char *const SOSQL[STORE_OUTBOX_COUNT][SO_COUNT] = {
	[STORE_OUTBOX_MAIL] = {
		/* the oldest due mail, or in its place its alert's oldest waiting one */
		[SO_NEXT] = ITEM_COLUMNS "WHERE id = (SELECT coalesce((SELECT min(p.id) FROM outbox p"
			    " WHERE p.alert_id = d.alert_id AND p.sent_at IS NULL), d.id)"
			    " FROM (SELECT id, alert_id FROM outbox WHERE box = 0 AND sent_at IS NULL"
			    " AND " ITEM_DUE("") " ORDER BY id LIMIT 1) d)",
	},
	[STORE_OUTBOX_CITY] = {
		/* each site's periods in order: nothing older of the same site still waiting */
		[SO_NEXT] = ITEM_COLUMNS "o WHERE box = 1 AND sent_at IS NULL AND " ITEM_DUE("o.")
			    " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.box = 1"
			    " AND p.site = o.site AND p.sent_at IS NULL AND p.id < o.id)"
			    " ORDER BY id LIMIT 1",
	},
};
static const char *const SO_COMMON[SO_COUNT] = {
	[SO_DONE] = "UPDATE outbox SET sent_at = ?2, last_error = NULL WHERE id = ?1",
	/* a mail's later mails of its alert wait with it (they cannot go before it) */
	[SO_RETRY] = "UPDATE outbox SET attempts = attempts + (id = ?1), next_try = ?2,"
		     " last_error = CASE WHEN id = ?1 THEN ?3 ELSE last_error END"
		     " WHERE id = ?1 OR (alert_id = (SELECT alert_id FROM outbox WHERE id = ?1)"
		     " AND sent_at IS NULL AND id > ?1)",
	[SO_PENDING] = "SELECT count(*) FROM outbox WHERE box = ?1 AND sent_at IS NULL",
	[SO_HOLD] = "UPDATE outbox SET next_try = ?2 WHERE box = ?1 AND sent_at IS NULL"
		    " AND next_try < ?2",
	[SO_RELEASE] = "UPDATE outbox SET next_try = ?2 WHERE box = ?1 AND sent_at IS NULL"
		       " AND next_try > ?2",
	/* sent_at marks it done; last_error says it was not sent, and why */
	[SO_SUPERSEDE] = "UPDATE outbox SET sent_at = ?2, last_error = 'not sent: superseded by"
			 " a later mail of its alert, or the alert was acknowledged or cleared'"
			 " WHERE id = ?1 AND box = 0 AND reminder = 1 AND sent_at IS NULL AND ("
			 "EXISTS (SELECT 1 FROM outbox n WHERE n.alert_id = outbox.alert_id"
			 " AND n.sent_at IS NULL AND n.id > outbox.id)"
			 " OR EXISTS (SELECT 1 FROM alerts a WHERE a.id = outbox.alert_id"
			 " AND (a.acked_at IS NOT NULL OR a.cleared_at IS NOT NULL)))",
	/* the period's end from its summary: the period may have had another [city] period_s */
	[SO_SUMMARIZED] = "SELECT p.period_start, (SELECT json_extract(CAST(o.body AS TEXT),"
			  " '$.period_end') FROM outbox o WHERE o.box = 1 AND o.site = p.site"
			  " AND o.period_start = p.period_start) FROM summary_progress p"
			  " WHERE p.site = ?1",
	[SO_BEGIN] = "BEGIN IMMEDIATE",
	[SO_ADD] = "INSERT OR IGNORE INTO outbox(box, key, site, body, created_at, next_try,"
		   " period_start) VALUES (1, ?1, ?2, ?3, ?4, ?4, ?5)",
	[SO_PROGRESS] = "INSERT INTO summary_progress(site, period_start) VALUES (?1, ?2)"
			" ON CONFLICT(site) DO UPDATE SET period_start = excluded.period_start",
	[SO_COMMIT] = "COMMIT",
	[SO_ROLLBACK] = "ROLLBACK",
};

struct sq_sender {
	struct sqlite_store *s;
	sqlite3 *db;
	struct sqs_busy busy;   /* its own: the mail and city senders run on two threads */
	enum store_outbox box;
	sqlite3_stmt *st[SO_COUNT];
};

int sqo_prepare(struct sqlite_store *s)
{
	return sqs_prepare_all(s, s->db, WOSQL, SQO_W_COUNT, s->outbox_w);
}

int sqo_prepare_reader(struct sqlite_store *s, struct reader *r)
{
	return sqs_prepare_all(s, r->db, ROSQL, SQO_R_COUNT, r->outbox_st);
}

void sqo_finalize(struct sqlite_store *s)
{
	for (int i = 0; i < SQO_W_COUNT; i++)
		sqlite3_finalize(s->outbox_w[i]);
}

void sqo_finalize_reader(struct reader *r)
{
	for (int i = 0; i < SQO_R_COUNT; i++)
		sqlite3_finalize(r->outbox_st[i]);
}

/* ---------------------------------------------------------------- writer side */

int sqo_mail_add(void *impl, const struct store_mail *m, int64_t now_ms)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->outbox_w[WO_ADD];
	sqs_bind_text(st, 1, m->key);
	sqs_bind_text(st, 2, m->site);
	sqs_bind_text(st, 3, m->rcpt);
	sqlite3_bind_blob(st, 4, m->body, (int)m->body_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now_ms);
	if (m->alert_id > 0)
		sqlite3_bind_int64(st, 6, m->alert_id); /* else NULL: in no alert's order */
	sqlite3_bind_int(st, 7, m->reminder ? 1 : 0);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : sqs_db_error(s, s->db, "add to the outbox");
}

/* ---------------------------------------------------------------- senders */

void *sqo_sender_open(void *impl, enum store_outbox box)
{
	struct sqlite_store *s = impl;
	struct sq_sender *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return NULL;
	h->s = s;
	h->box = box;
	if (sqlite3_open_v2(s->path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		sqs_db_error(s, h->db, "open an outbox connection");
		goto fail;
	}
	/* the writer's batches are short: a sender's update waits them out */
	sqs_busy_init(s, h->db, &h->busy, 10000);
	for (int i = 0; i < SO_COUNT; i++) {
		const char *sql = i == SO_NEXT ? SOSQL[box][SO_NEXT] : SO_COMMON[i];
		if (sqlite3_prepare_v3(h->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &h->st[i], NULL) !=
		    SQLITE_OK) {
			sqs_db_error(s, h->db, sql);
			goto fail;
		}
	}
	return h;
fail:
	sqo_sender_close(h);
	return NULL;
}

void sqo_sender_close(void *hv)
{
	struct sq_sender *h = hv;
	if (h == NULL)
		return;
	for (int i = 0; i < SO_COUNT; i++)
		sqlite3_finalize(h->st[i]);
	if (h->db)
		sqlite3_close(h->db);
	free(h);
}

/* Steps a statement of the sender to its end and resets it. */
static int so_step(struct sq_sender *h, int which, const char *what)
{
	sqlite3_stmt *st = h->st[which];
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : sqs_db_error(h->s, h->db, what);
}

int sqo_sender_next(void *hv, int64_t now_ms, int64_t longest_wait_ms, store_outbox_fn fn,
		    void *ctx)
{
	struct sq_sender *h = hv;
	sqlite3_stmt *st = h->st[SO_NEXT];
	int out;
	if (longest_wait_ms < 0)
		longest_wait_ms = 0;
	sqlite3_bind_int64(st, 1, now_ms);
	sqlite3_bind_int64(st, 2, now_ms > INT64_MAX - longest_wait_ms ? INT64_MAX
								: now_ms + longest_wait_ms);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct store_outbox_item it = {
			.id = sqlite3_column_int64(st, 0),
			.key = (const char *)sqlite3_column_text(st, 1),
			.site = (const char *)sqlite3_column_text(st, 2),
			.rcpt = (const char *)sqlite3_column_text(st, 3),
			.body = sqlite3_column_blob(st, 4),
			.body_len = (size_t)sqlite3_column_bytes(st, 4),
			.created_at = sqlite3_column_int64(st, 5),
			.attempts = sqlite3_column_int64(st, 6),
			.reminder = sqlite3_column_int(st, 7) != 0,
		};
		if (it.key == NULL || it.site == NULL || it.body == NULL)
			it.body_len = 0; /* only a damaged file: the sender refuses an empty item */
		fn(ctx, &it);
		out = 1;
	} else {
		out = rc == SQLITE_DONE ? 0 : sqs_db_error(h->s, h->db, "read the outbox");
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return out;
}

int sqo_sender_done(void *hv, int64_t id, int64_t now_ms)
{
	struct sq_sender *h = hv;
	sqlite3_bind_int64(h->st[SO_DONE], 1, id);
	sqlite3_bind_int64(h->st[SO_DONE], 2, now_ms);
	return so_step(h, SO_DONE, "mark an outbox item delivered");
}

int sqo_sender_retry(void *hv, int64_t id, int64_t next_try_ms, const char *error)
{
	struct sq_sender *h = hv;
	sqlite3_bind_int64(h->st[SO_RETRY], 1, id);
	sqlite3_bind_int64(h->st[SO_RETRY], 2, next_try_ms);
	sqs_bind_text(h->st[SO_RETRY], 3, error);
	return so_step(h, SO_RETRY, "reschedule an outbox item");
}

int64_t sqo_sender_pending(void *hv)
{
	struct sq_sender *h = hv;
	sqlite3_stmt *st = h->st[SO_PENDING];
	int64_t n = SP_EIO;
	sqlite3_bind_int(st, 1, (int)h->box);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return n;
}

int sqo_sender_hold(void *hv, int64_t until_ms)
{
	struct sq_sender *h = hv;
	sqlite3_bind_int(h->st[SO_HOLD], 1, (int)h->box);
	sqlite3_bind_int64(h->st[SO_HOLD], 2, until_ms);
	return so_step(h, SO_HOLD, "hold the outbox");
}

int sqo_sender_release(void *hv, int64_t now_ms)
{
	struct sq_sender *h = hv;
	sqlite3_bind_int(h->st[SO_RELEASE], 1, (int)h->box);
	sqlite3_bind_int64(h->st[SO_RELEASE], 2, now_ms);
	return so_step(h, SO_RELEASE, "release the outbox");
}

int sqo_sender_superseded(void *hv, int64_t id, int64_t now_ms)
{
	struct sq_sender *h = hv;
	sqlite3_bind_int64(h->st[SO_SUPERSEDE], 1, id);
	sqlite3_bind_int64(h->st[SO_SUPERSEDE], 2, now_ms);
	int rc = so_step(h, SO_SUPERSEDE, "mark a reminder superseded");
	return rc ? rc : sqlite3_changes(h->db) > 0;
}

int sqo_sender_summarized(void *hv, const char *site, int64_t *period_start,
			  int64_t *period_end)
{
	struct sq_sender *h = hv;
	sqlite3_stmt *st = h->st[SO_SUMMARIZED];
	sqs_bind_text(st, 1, site);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*period_start = sqlite3_column_int64(st, 0);
		*period_end = sqlite3_column_type(st, 1) == SQLITE_INTEGER
				      ? sqlite3_column_int64(st, 1)
				      : 0;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? SP_ENOTFOUND : sqs_db_error(h->s, h->db, "read summary progress");
}

int sqo_sender_add_summary(void *hv, const char *site, int64_t period_start, int64_t period_end,
			   const char *key, const char *body, size_t body_len, int64_t now_ms)
{
	struct sq_sender *h = hv;
	int rc;
	(void)period_end;
	if ((rc = so_step(h, SO_BEGIN, "begin a summary")))
		return rc;
	sqs_bind_text(h->st[SO_ADD], 1, key);
	sqs_bind_text(h->st[SO_ADD], 2, site);
	sqlite3_bind_blob(h->st[SO_ADD], 3, body, (int)body_len, SQLITE_STATIC);
	sqlite3_bind_int64(h->st[SO_ADD], 4, now_ms);
	sqlite3_bind_int64(h->st[SO_ADD], 5, period_start);
	sqs_bind_text(h->st[SO_PROGRESS], 1, site);
	sqlite3_bind_int64(h->st[SO_PROGRESS], 2, period_start);
	if ((rc = so_step(h, SO_ADD, "add a summary")) ||
	    (rc = so_step(h, SO_PROGRESS, "save summary progress")) ||
	    (rc = so_step(h, SO_COMMIT, "commit a summary"))) {
		if (!sqlite3_get_autocommit(h->db))
			so_step(h, SO_ROLLBACK, "roll back a summary");
		return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- readers */

int sqo_r_summaries(void *impl, const char *site, int64_t from, int64_t to, int64_t limit,
		    store_summary_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	sqlite3_stmt *st = r->outbox_st[RO_SUMMARIES];
	int rc, n = 0;
	sqs_bind_text(st, 1, site);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	sqlite3_bind_int64(st, 4, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_summary_row row = {
			.site = (const char *)sqlite3_column_text(st, 0),
			.period_start = sqlite3_column_int64(st, 1),
			.body = sqlite3_column_blob(st, 2),
			.body_len = (size_t)sqlite3_column_bytes(st, 2),
			.sent_at = sqlite3_column_int64(st, 3),
		};
		if (row.site == NULL || row.body == NULL)
			continue;
		n++;
		if (fn(ctx, &row))
			break;
	}
	int err = sqs_rdone(s, r, st, rc, "list summaries");
	return err ? err : n;
}
