/*
 * store_sqlite_progress.c - the agents' sequence progress in the SQLite
 * backend (see store.h): each agent's row in `agents`, and the progress
 * log the writer appends to per commit and folds into the rows now and then.
 *
 * Why a log: the writer persists, in every transaction, the state of every
 * agent the transaction touched. At everyday rates a commit holds about one
 * message per agent, so an UPDATE per agent was one row update per message
 * (~1.5 µs of the writer's ~15, docs/performance.md item 48) and, over a
 * fleet of many gateways, a page of `agents` per touched agent. A log row
 * per commit holds the same states in one insert.
 *
 * A log row's `entries` is a blob, version byte 1, then per agent, each
 * number a varint (7 bits a byte, the low ones first, the high bit set on
 * every byte but the last; an int64 as its two's-complement uint64): agent
 * id, acked, gap_since, then done and missing, each as its length and that
 * many bytes of rangeset text. About 8 bytes an agent in the usual case
 * (no gaps): a commit of 120 agents' state fits a quarter of a 4 KB page.
 * The load checks every length against the blob; a blob that does not read
 * whole fails it (and the collector's start: guessing would store messages
 * twice or skip gaps).
 */
#include "store_sqlite_int.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"

#include <stdlib.h>
#include <string.h>

const char SQP_MIGRATION[] =
	"CREATE TABLE progress_log(id INTEGER PRIMARY KEY, entries BLOB NOT NULL);";

#define LOG_VERSION 1
#define VARINT_MAX 10 /* bytes of a 64-bit varint */

enum { WP_AGENTS_ALL, WP_SAVE, WP_LOG_INS, WP_LOG_ALL, WP_LOG_CLEAR };
_Static_assert(WP_LOG_CLEAR + 1 == SQP_W_COUNT, "SQP_W_COUNT");
static const char *const WPSQL[SQP_W_COUNT] = {
	[WP_AGENTS_ALL] = "SELECT id, site, agent, acked, done, missing, gap_since FROM agents",
	[WP_SAVE] = ("UPDATE agents SET acked = ?2, done = ?3, missing = ?4, gap_since = ?5 "
		     "WHERE id = ?1"),
	[WP_LOG_INS] = "INSERT INTO progress_log(entries) VALUES (?1)",
	[WP_LOG_ALL] = "SELECT entries FROM progress_log ORDER BY id",
	[WP_LOG_CLEAR] = "DELETE FROM progress_log",
};

int sqp_prepare(struct sqlite_store *s)
{
	return sqs_prepare_all(s, s->db, WPSQL, SQP_W_COUNT, s->progress_w);
}

void sqp_finalize(struct sqlite_store *s)
{
	for (int i = 0; i < SQP_W_COUNT; i++)
		sqlite3_finalize(s->progress_w[i]);
	sp_buf_free(&s->progress_log);
}

/* Steps a statement of this file to its end and resets it. 0 or SP_E* (logged). */
static int wp_step(struct sqlite_store *s, int which, const char *what)
{
	sqlite3_stmt *st = s->progress_w[which];
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : sqs_db_error(s, s->db, what);
}

/* ---------------------------------------------------------------- encoding */

/* Writes v as a varint (7 bits a byte, low first, high bit = more): at most VARINT_MAX bytes. */
static unsigned char *put_varint(unsigned char *o, uint64_t v)
{
	while (v >= 0x80) {
		*o++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*o++ = (unsigned char)v;
	return o;
}

/* Reads a varint from [*p, end): 0, or SP_EINVAL when it runs past end or 64 bits. */
static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
			return SP_EINVAL;
		unsigned char c = *(*p)++;
		if (shift == 63 && c > 1)
			return SP_EINVAL; /* past 64 bits */
		x |= (uint64_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0) {
			*v = x;
			return 0;
		}
	}
	return SP_EINVAL;
}

int sqp_log_progress(void *impl, int64_t agent_id, const struct store_agent_progress *p)
{
	struct sqlite_store *s = impl;
	struct sp_buf *b = &s->progress_log;
	const char *done = p->done ? p->done : "", *missing = p->missing ? p->missing : "";
	size_t ld = strlen(done), lm = strlen(missing);
	int rc = sp_buf_reserve(b, 1 + 5 * VARINT_MAX + ld + lm);
	if (rc)
		return rc;
	unsigned char *o = (unsigned char *)b->data + b->len;
	if (b->len == 0)
		*o++ = LOG_VERSION;
	o = put_varint(o, (uint64_t)agent_id);
	o = put_varint(o, (uint64_t)p->acked);
	o = put_varint(o, (uint64_t)p->gap_since_ms);
	o = put_varint(o, ld);
	memcpy(o, done, ld);
	o = put_varint(o + ld, lm);
	memcpy(o, missing, lm);
	sp_buf_end_at(b, (char *)o + lm);
	return 0;
}

int sqp_write_log(struct sqlite_store *s)
{
	struct sp_buf *b = &s->progress_log;
	if (b->len == 0)
		return 0;
	sqlite3_bind_blob64(s->progress_w[WP_LOG_INS], 1, b->data, b->len, SQLITE_STATIC);
	return wp_step(s, WP_LOG_INS, "write the progress log"); /* sq_commit then forgets them */
}

void sqp_forget_log(struct sqlite_store *s)
{
	sp_buf_reset(&s->progress_log);
}

int sqp_save_progress(void *impl, int64_t agent_id, const struct store_agent_progress *p)
{
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->progress_w[WP_SAVE];
	sqlite3_bind_int64(st, 1, agent_id);
	sqlite3_bind_int64(st, 2, p->acked);
	sqs_bind_text(st, 3, p->done ? p->done : "");
	sqs_bind_text(st, 4, p->missing ? p->missing : "");
	sqlite3_bind_int64(st, 5, p->gap_since_ms);
	return wp_step(s, WP_SAVE, "save an agent's progress");
}

int sqp_clear_log(void *impl)
{
	struct sqlite_store *s = impl;
	sp_buf_reset(&s->progress_log);
	return wp_step(s, WP_LOG_CLEAR, "clear the progress log");
}

/* ---------------------------------------------------------------- loading */

/* One entry of the log; its texts are at offsets into the view's text pool. */
struct logged {
	int64_t agent_id, acked, gap_since_ms;
	size_t order;                 /* place in the log: the highest is the newest */
	size_t done, missing;
};

struct log_view {
	struct logged *e;             /* in log order */
	size_t n, cap;
	struct sp_buf texts;          /* every entry's texts, each NUL-terminated */
};

/* Copies a text of the blob into the pool: its offset, or SIZE_MAX and *err. */
static size_t keep_text(struct log_view *v, const unsigned char *t, size_t len, int *err)
{
	size_t at = v->texts.len;
	if (memchr(t, 0, len)) {
		*err = SP_EINVAL;
		return SIZE_MAX;
	}
	if (sp_buf_append(&v->texts, t, len) || sp_buf_putc(&v->texts, '\0')) {
		*err = SP_ENOMEM;
		return SIZE_MAX;
	}
	return at;
}

/* Adds one row's entries to the view. SP_EINVAL when the blob does not read whole. */
static int read_blob(struct log_view *v, const unsigned char *b, size_t len)
{
	if (len < 1 || b[0] != LOG_VERSION)
		return SP_EINVAL;
	const unsigned char *at = b + 1, *end = b + len;
	int err = 0;
	while (at < end) {
		uint64_t id, acked, gap, ld, lm;
		const unsigned char *done, *missing;
		if (get_varint(&at, end, &id) || get_varint(&at, end, &acked) ||
		    get_varint(&at, end, &gap) || get_varint(&at, end, &ld) ||
		    ld > (uint64_t)(end - at))
			return SP_EINVAL;
		done = at;
		at += ld;
		if (get_varint(&at, end, &lm) || lm > (uint64_t)(end - at))
			return SP_EINVAL;
		missing = at;
		at += lm;
		struct logged *ne = sp_grow(v->e, &v->cap, v->n + 1, sizeof(*ne), 256);
		if (ne == NULL)
			return SP_ENOMEM;
		v->e = ne;
		struct logged *e = &v->e[v->n];
		*e = (struct logged){(int64_t)id, (int64_t)acked, (int64_t)gap, v->n, 0, 0};
		if ((e->done = keep_text(v, done, ld, &err)) == SIZE_MAX ||
		    (e->missing = keep_text(v, missing, lm, &err)) == SIZE_MAX)
			return err;
		v->n++;
	}
	return 0;
}

/* By agent, then log order: an agent's newest entry is the last of its run. */
static int by_agent_then_order(const void *a, const void *b)
{
	const struct logged *x = a, *y = b;
	if (x->agent_id != y->agent_id)
		return x->agent_id < y->agent_id ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The agent's newest entry in the sorted view, or NULL. */
static const struct logged *newest_entry(const struct log_view *v, int64_t agent_id)
{
	size_t lo = 0, hi = v->n; /* first entry with agent_id > the one sought */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->e[mid].agent_id <= agent_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && v->e[lo - 1].agent_id == agent_id ? &v->e[lo - 1] : NULL;
}

static int read_log(struct sqlite_store *s, struct log_view *v)
{
	sqlite3_stmt *st = s->progress_w[WP_LOG_ALL];
	int rc, err = 0;
	int64_t rows = 0;
	while (err == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *blob = sqlite3_column_blob(st, 0);
		err = read_blob(v, blob, (size_t)sqlite3_column_bytes(st, 0));
		rows++;
	}
	sqlite3_reset(st);
	if (err == SP_EINVAL) {
		SP_ERROR("store", "%s: the agents' progress log is damaged (row %lld of it)", s->path,
			 (long long)rows);
		return SP_EIO;
	}
	if (err)
		return err;
	if (rc != SQLITE_DONE)
		return sqs_db_error(s, s->db, "read the progress log");
	if (v->n > 1)
		qsort(v->e, v->n, sizeof(*v->e), by_agent_then_order);
	return 0;
}

int sqp_load_agents(void *impl, store_agent_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	struct log_view v = {.texts = SP_BUF_INIT(0)};
	sqlite3_stmt *st = s->progress_w[WP_AGENTS_ALL];
	int rc = read_log(s, &v), step = SQLITE_DONE;
	if (rc)
		goto done;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		const struct logged *e = newest_entry(&v, id);
		struct store_agent_progress p;
		if (e)
			p = (struct store_agent_progress){e->acked, v.texts.data + e->done,
							  v.texts.data + e->missing, e->gap_since_ms};
		else
			p = (struct store_agent_progress){sqlite3_column_int64(st, 3),
							  (const char *)sqlite3_column_text(st, 4),
							  (const char *)sqlite3_column_text(st, 5),
							  sqlite3_column_int64(st, 6)};
		if ((rc = fn(ctx, id, (const char *)sqlite3_column_text(st, 1),
			     (const char *)sqlite3_column_text(st, 2), &p)))
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sqs_db_error(s, s->db, "load agents");
done:
	sqlite3_reset(st);
	free(v.e);
	sp_buf_free(&v.texts);
	return rc;
}
