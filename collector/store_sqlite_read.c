/*
 * store_sqlite_read.c - the SQLite backend's reading side (see store.h):
 * the pool of read-only connections the API and the city thread borrow,
 * and the queries they run on them: sites, devices with their newest
 * reading, readings of a device (walking its chunks newest first), a
 * device's records in time order, device counts. WAL lets them read while
 * the writer writes; each connection prepares these statements once.
 */
#include "store_sqlite_int.h"

#include "chunk.h"
#include "newest.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * device_seen (s) is written every few seconds (writer.c) and may trail,
 * but its heard (when a reading last arrived: what online is judged by) not
 * across the online bound: the writer writes it at once for a device back
 * from a silence that long (writer.c, seen_due_now). So the site list and
 * the counts read it alone, one narrow row per device. The device list
 * reads the newest chunk anyway, for the newest reading, and shows the
 * larger of its ts and last_seen.
 *
 * Their active alerts are counted in alerts_one_active, the index of the
 * active alerts alone: left to itself the planner took alerts_key, every
 * alert the site or device ever had (0.2-0.6 s a request with a million
 * cleared ones, docs/performance.md item 54). INDEXED BY makes the plan a
 * guarantee: a statement that could not use the index fails to prepare.
 */
#define DEVICE_COLUMNS                                                                          \
	"SELECT site, dev, kind, agent, agent_online AND heard >= ?2, seen, meta, cid, cmeta,"  \
	" cbody, cfmt, nalerts, did"                                                            \
	" FROM (SELECT d.site, d.dev, d.kind, a.agent, a.online AS agent_online, d.meta,"       \
	"  d.id AS did,"                                                                        \
	"  (SELECT count(*) FROM alerts al INDEXED BY alerts_one_active"                        \
	"   WHERE al.site = d.site AND al.dev = d.dev"                                          \
	"   AND al.device_id = d.id AND al.cleared_at IS NULL) AS nalerts,"                     \
	"  max(s.last_seen, coalesce(c.ts_max, 0)) AS seen, s.heard AS heard,"                  \
	"  c.id AS cid, c.meta AS cmeta, c.body AS cbody, c.fmt AS cfmt"                        \
	" FROM devices d JOIN agents a ON a.id = d.agent_id JOIN device_seen s ON s.id = d.id"  \
	" LEFT JOIN reading_chunks c ON c.id = (SELECT id FROM reading_chunks"                  \
	"                 WHERE device_id = d.id ORDER BY ts_max DESC, id DESC LIMIT 1) "

static const char *const RSQL[R_COUNT] = {
	[R_SITES] = "SELECT d.site, count(*), coalesce(sum(a.online AND s.heard >= ?1), 0), "
		    "(SELECT count(*) FROM alerts al INDEXED BY alerts_one_active"
		    " WHERE al.site = d.site AND al.cleared_at IS NULL) "
		    "FROM devices d JOIN agents a ON a.id = d.agent_id JOIN device_seen s ON s.id = d.id "
		    "GROUP BY d.site ORDER BY d.site",
	/* from one site to the next through UNIQUE(site, dev): a seek per site, not a scan */
	[R_SITE_NAMES] = "WITH RECURSIVE s(site) AS (SELECT min(site) FROM devices UNION ALL"
			 " SELECT (SELECT min(site) FROM devices WHERE site > s.site) FROM s"
			 " WHERE s.site IS NOT NULL) SELECT site FROM s WHERE site IS NOT NULL",
	[R_DEVICES_SITE] = DEVICE_COLUMNS "WHERE d.site = ?1) ORDER BY dev",
	[R_DEVICES_ALL] = DEVICE_COLUMNS "WHERE ?1 IS NULL) ORDER BY site, dev",
	[R_DEV_ID] = "SELECT id FROM devices WHERE site = ?1 AND dev = ?2",
	/*
	 * Chunks that may hold readings in [from, to], newest first. A chunk
	 * spans less than CHUNK_SPAN_MS, so ts_min <= to implies ts_max <
	 * to + span (?4): the index bounds the scan on both sides. ?5, when
	 * not NULL, is the one record kind wanted: chunks whose kinds (schema
	 * 15) lack it are passed over here, their meta and body never handed
	 * out (a rare kind would otherwise decode the device's whole history);
	 * kinds NULL is a chunk written before 15, which may hold any kind.
	 * Unbound (NULL) means every kind, so a caller that leaves it reads
	 * too much, never too little. The kinds term is checked on each row
	 * the index finds; INDEXED BY keeps the index in charge of the plan
	 * (a statement that could not use it fails to prepare).
	 */
	[R_CHUNKS] = "SELECT ts_max, id, meta, body, fmt FROM reading_chunks"
		     " INDEXED BY reading_chunks_device_ts WHERE device_id = ?1 "
		     "AND ts_max BETWEEN ?2 AND ?4 AND ts_min <= ?3 "
		     "AND (?5 IS NULL OR kinds IS NULL OR kinds & (1 << ?5) != 0) "
		     "ORDER BY ts_max DESC, id DESC",
	[R_COUNTS] = "SELECT d.kind, a.online AND s.heard >= ?1, count(*) "
		     "FROM devices d JOIN agents a ON a.id = d.agent_id JOIN device_seen s ON s.id = d.id "
		     "GROUP BY 1, 2",
	[R_PING] = "SELECT 1 FROM schema_version LIMIT 1",
	/*
	 * every reading in [?2, ?3) lies in a chunk overlapping it; a chunk that
	 * only spans the range may say yes wrongly (the caller then reads more)
	 */
	[R_SITE_HAS] = "SELECT EXISTS (SELECT 1 FROM devices d JOIN reading_chunks c"
		       " ON c.device_id = d.id AND c.ts_max >= ?2 AND c.ts_min < ?3"
		       " WHERE d.site = ?1)",
};

int sqr_prepare_reader(struct sqlite_store *s, struct reader *r)
{
	return sqs_prepare_all(s, r->db, RSQL, R_COUNT, r->st);
}

/* A free reader, marked busy; NULL when every one is busy. */
static struct reader *take_free_locked(struct sqlite_store *s)
{
	for (int i = 0; i < s->nreaders; i++) {
		if (!s->readers[i].busy) {
			s->readers[i].busy = true;
			return &s->readers[i];
		}
	}
	return NULL;
}

struct reader *sqs_borrow(struct sqlite_store *s)
{
	return sqs_borrow_within(s, STORE_READ_WAIT_MS);
}

struct reader *sqs_borrow_within(struct sqlite_store *s, int64_t wait_ms)
{
	struct reader *r;
	/* pool_free measures on the monotonic clock (sq_open): a clock step moves no deadline */
	struct timespec until = sp_mono_deadline(wait_ms);
	pthread_mutex_lock(&s->pool_lock);
	while ((r = take_free_locked(s)) == NULL &&
	       pthread_cond_timedwait(&s->pool_free, &s->pool_lock, &until) == 0)
		;
	/* timed out: one may have come free at the last moment */
	if (r == NULL)
		r = take_free_locked(s);
	pthread_mutex_unlock(&s->pool_lock);
	return r;
}

void sqs_give_back(struct sqlite_store *s, struct reader *r)
{
	pthread_mutex_lock(&s->pool_lock);
	r->busy = false;
	pthread_cond_signal(&s->pool_free);
	pthread_mutex_unlock(&s->pool_lock);
}

/* Finishes a read: resets the statement, maps the step result. */
int sqs_rdone(struct sqlite_store *s, struct reader *r, sqlite3_stmt *st, int rc,
		 const char *what)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	int out = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqs_db_error(s, r->db, what);
	sqs_give_back(s, r);
	return out;
}

int sqr_sites(void *impl, int64_t now_ms, int64_t offline_ms, store_site_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	sqlite3_stmt *st = r->st[R_SITES];
	int rc;
	sqlite3_bind_int64(st, 1, now_ms - offline_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_site_row row = {(const char *)sqlite3_column_text(st, 0),
					     sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
					     sqlite3_column_int64(st, 3)};
		if (fn(ctx, &row))
			break;
	}
	return sqs_rdone(s, r, st, rc, "list sites");
}

int sqr_site_names(void *impl, store_site_name_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	sqlite3_stmt *st = r->st[R_SITE_NAMES];
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (fn(ctx, (const char *)sqlite3_column_text(st, 0)))
			break;
	return sqs_rdone(s, r, st, rc, "list site names");
}

/*
 * The newest reading of a chunk (the last of those with the largest ts) of
 * device dev, copied NUL-terminated into r->latest; NULL if the chunk holds
 * none or is damaged (reported).
 */
static const char *chunk_latest(struct sqlite_store *s, struct reader *r, sqlite3_stmt *st,
				int id_col, const char *dev)
{
	struct chunk_iter it;
	struct chunk_rec rec, best = {0};
	bool found = false;
	if (sqlite3_column_type(st, id_col) == SQLITE_NULL ||
	    !sqs_row_chunk(s, st, id_col, "no latest reading shown", &it))
		return NULL;
	while (chunk_iter_next(&it, &rec) == 1) {
		if (!found || rec.ts >= best.ts)
			best = rec;
		found = true;
	}
	sp_buf_reset(&r->latest);
	if (!found || chunk_rec_json(&best, dev, &r->latest))
		return NULL;
	return r->latest.data;
}

/* The port a stored port record names (canonical: `,"port":N`), 0 if none. */
static int rec_port(const struct chunk_rec *rec)
{
	static const char pat[] = ",\"port\":";
	const char *p = memmem(rec->body, rec->len, pat, sizeof(pat) - 1);
	int port = 0;
	if (p == NULL)
		return 0;
	for (p += sizeof(pat) - 1; p < rec->body + rec->len && *p >= '0' && *p <= '9'; p++) {
		port = port * 10 + (*p - '0');
		if (port > SP_PORT_MAX)
			return 0;
	}
	return port;
}

/*
 * A charger's current state (STORE_DEVICES_CURRENT): its newest station
 * record and each port's newest among its readings in [last_seen -
 * STORE_CURRENT_WINDOW_MS, last_seen], as a JSON array in r->current
 * (station first, then the ports in order). The newest of a slot is the
 * largest ts, ties to the later stored, as in chunk_latest; each new one is
 * appended to r->found, so what a slot keeps outlives the chunk it came
 * from. NULL when there is none; a damaged chunk is skipped (reported).
 */
static const char *charger_current(struct sqlite_store *s, struct reader *r, int64_t device_id,
				   const char *dev, int64_t last_seen)
{
	struct slot {
		int64_t ts;
		uint64_t order;
		size_t off, len; /* in r->found; len 0 = none yet */
	} slots[1 + SP_PORT_MAX] = {{0}};
	sqlite3_stmt *st = r->st[R_CHUNKS];
	int64_t from = last_seen > STORE_CURRENT_WINDOW_MS ? last_seen - STORE_CURRENT_WINDOW_MS : 0;
	int rc, failed = 0;
	sp_buf_reset(&r->found);
	sqlite3_bind_int64(st, 1, device_id);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, last_seen);
	sqlite3_bind_int64(st, 4, last_seen > INT64_MAX - CHUNK_SPAN_MS ? INT64_MAX
								    : last_seen + CHUNK_SPAN_MS);
	/* ?5 stays NULL: stations and ports both */
	while (!failed && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct chunk_iter it;
		struct chunk_rec rec;
		if (!sqs_row_chunk(s, st, 1, "not in the current state", &it))
			continue;
		uint64_t chunk_id = (uint64_t)sqlite3_column_int64(st, 1);
		for (uint64_t i = 0; chunk_iter_next(&it, &rec) == 1; i++) {
			if (rec.ts < from || rec.ts > last_seen)
				continue;
			int k = rec.kind == SP_REC_STATION ? 0 : rec.kind == SP_REC_PORT ? rec_port(&rec) : -1;
			if (k < 0 || (k == 0 && rec.kind != SP_REC_STATION))
				continue;
			uint64_t order = chunk_id * 1024 + i; /* storage order, as read_chunks */
			struct slot *sl = &slots[k];
			if (sl->len && (rec.ts < sl->ts || (rec.ts == sl->ts && order < sl->order)))
				continue;
			size_t off = r->found.len;
			if (chunk_rec_json(&rec, dev, &r->found)) {
				failed = 1;
				break;
			}
			*sl = (struct slot){rec.ts, order, off, r->found.len - off};
		}
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	sp_buf_reset(&r->current);
	if (failed || sp_buf_putc(&r->current, '['))
		return NULL;
	size_t n = 0;
	for (int k = 0; k <= SP_PORT_MAX; k++) {
		if (slots[k].len == 0)
			continue;
		if ((n++ && sp_buf_putc(&r->current, ',')) ||
		    sp_buf_append(&r->current, r->found.data + slots[k].off, slots[k].len))
			return NULL;
	}
	if (n == 0 || sp_buf_puts(&r->current, "]"))
		return NULL;
	return r->current.data;
}

int sqr_devices(void *impl, const char *site, int64_t now_ms, int64_t offline_ms,
		unsigned flags, store_device_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	sqlite3_stmt *st = r->st[site ? R_DEVICES_SITE : R_DEVICES_ALL];
	int rc;
	sqs_bind_text(st, 1, site);
	sqlite3_bind_int64(st, 2, now_ms - offline_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *dev = (const char *)sqlite3_column_text(st, 1);
		struct store_device_row row = {
			.site = (const char *)sqlite3_column_text(st, 0),
			.dev = dev,
			.kind = sp_dev_kind_name((enum sp_dev_kind)sqlite3_column_int(st, 2)),
			.agent = (const char *)sqlite3_column_text(st, 3),
			.online = sqlite3_column_int(st, 4) != 0,
			.last_seen = sqlite3_column_int64(st, 5),
			.meta = (const char *)sqlite3_column_text(st, 6),
			.latest = dev ? chunk_latest(s, r, st, 7, dev) : NULL,
			.active_alerts = sqlite3_column_int64(st, 11),
		};
		if ((flags & STORE_DEVICES_CURRENT) && dev && row.last_seen > 0 &&
		    sqlite3_column_int(st, 2) == SP_DEV_CHARGER)
			row.current = charger_current(s, r, sqlite3_column_int64(st, 12), dev,
						      row.last_seen);
		if (fn(ctx, &row))
			break;
	}
	return sqs_rdone(s, r, st, rc, "list devices");
}

/*
 * Whether a stored body carries one of the fields: stored bodies are
 * canonical (codec_encode.c), each field written `,"name":`, and a quote in
 * a text value is escaped, so the pattern only matches a field.
 */
static bool carries_any(const char *body, size_t len, const char *const *names)
{
	char pat[64];
	for (; *names; names++) {
		int n = snprintf(pat, sizeof(pat), ",\"%s\":", *names);
		if (n > 0 && (size_t)n < sizeof(pat) && memmem(body, len, pat, (size_t)n))
			return true;
	}
	return false;
}

/*
 * Walks the device's chunks newest first, keeping the newest q->limit
 * readings that match (newest.h), until no older chunk can add one; then
 * hands them to fn newest first. Returns their number or SP_E*.
 */
static int read_chunks(struct sqlite_store *s, struct reader *r, int64_t device_id,
		       const struct store_readings_query *q, store_reading_fn fn, void *ctx)
{
	sqlite3_stmt *st = r->st[R_CHUNKS];
	struct newest *keep = newest_create(q->limit > 0 ? (size_t)q->limit : 0);
	const struct newest_item *items;
	int rc, out = 0;
	if (keep == NULL)
		return SP_ENOMEM;
	sqlite3_bind_int64(st, 1, device_id);
	sqlite3_bind_int64(st, 2, q->from);
	sqlite3_bind_int64(st, 3, q->to);
	sqlite3_bind_int64(st, 4, q->to > INT64_MAX - CHUNK_SPAN_MS ? INT64_MAX : q->to + CHUNK_SPAN_MS);
	/* a kind's bit only exists for kinds chunk_kind_bit names (and the parser gives no other) */
	if (chunk_kind_bit(q->kind) != 0)
		sqlite3_bind_int(st, 5, q->kind);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct chunk_iter it;
		struct chunk_rec rec;
		if (newest_done_below(keep, sqlite3_column_int64(st, 0)))
			break;
		if (!sqs_row_chunk(s, st, 1, "skipped", &it))
			continue;
		int64_t chunk_id = sqlite3_column_int64(st, 1);
		/*
		 * Storage order: chunk id, then place in the chunk (< CHUNK_MAX_RECORDS
		 * in a sound chunk, so 1024 per id keeps them apart below 2^54 ids).
		 */
		for (uint64_t i = 0; chunk_iter_next(&it, &rec) == 1; i++) {
			if (rec.ts < q->from || rec.ts > q->to || (q->kind >= 0 && rec.kind != q->kind) ||
			    (q->with_any && !carries_any(rec.body, rec.len, q->with_any)))
				continue;
			uint64_t order = (uint64_t)chunk_id * 1024 + i;
			if (!newest_takes(keep, rec.ts, order))
				continue;
			sp_buf_reset(&r->json);
			if (chunk_rec_json(&rec, q->dev, &r->json) ||
			    newest_offer(keep, rec.ts, order, r->json.data, r->json.len)) {
				out = SP_ENOMEM;
				goto done;
			}
		}
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		out = sqs_db_error(s, r->db, "read readings");
		goto done;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	size_t n = newest_sorted(keep, &items);
	for (size_t i = 0; i < n; i++) {
		out++;
		if (fn(ctx, items[i].body, items[i].len))
			break;
	}
done:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	newest_destroy(keep);
	return out;
}

int sqr_readings(void *impl, const struct store_readings_query *q, store_reading_fn fn,
			 void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	sqlite3_stmt *st = r->st[R_DEV_ID];
	int64_t device_id;
	int rc;

	sqs_bind_text(st, 1, q->site);
	sqs_bind_text(st, 2, q->dev);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int out = rc == SQLITE_DONE ? SP_ENOTFOUND : sqs_db_error(s, r->db, "find device");
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		sqs_give_back(s, r);
		return out;
	}
	device_id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);

	rc = read_chunks(s, r, device_id, q, fn, ctx);
	sqs_give_back(s, r);
	return rc;
}

/* A reading found for store_r_device_records: where its body lies, and its place. */
struct found_rec {
	int64_t ts;
	uint64_t order;          /* storage order: chunk id, then place in the chunk */
	size_t at, len;          /* in the copy of the bodies */
	int kind;
};

static int by_ts_then_order(const void *pa, const void *pb)
{
	const struct found_rec *a = pa, *b = pb;
	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

int sqr_device_records(void *impl, const char *site, const char *dev, int64_t from, int64_t to,
		       int64_t max, store_record_fn fn, void *ctx)
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	sqlite3_stmt *st = r->st[R_DEV_ID];
	struct found_rec *found = NULL;
	size_t n = 0, cap = 0;
	struct sp_buf bodies = SP_BUF_INIT(0);
	int rc, out = 0;

	sqs_bind_text(st, 1, site);
	sqs_bind_text(st, 2, dev);
	rc = sqlite3_step(st);
	int64_t device_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW) {
		out = rc == SQLITE_DONE ? SP_ENOTFOUND : sqs_db_error(s, r->db, "find device");
		goto done;
	}
	if (to <= from)
		goto done;
	st = r->st[R_CHUNKS];
	sqlite3_bind_int64(st, 1, device_id);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to - 1);
	sqlite3_bind_int64(st, 4, to > INT64_MAX - CHUNK_SPAN_MS ? INT64_MAX : to + CHUNK_SPAN_MS);
	/* ?5 stays NULL: a summary reads every kind */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct chunk_iter it;
		struct chunk_rec rec;
		if (!sqs_row_chunk(s, st, 1, "skipped", &it))
			continue;
		uint64_t chunk_id = (uint64_t)sqlite3_column_int64(st, 1);
		for (uint64_t i = 0; chunk_iter_next(&it, &rec) == 1; i++) {
			if (rec.ts < from || rec.ts >= to)
				continue;
			if ((int64_t)n >= max) {
				out = SP_ETOOBIG;
				goto reset;
			}
			/* keep what sp_grow returned before anything else can fail: it freed the old array */
			struct found_rec *g = sp_grow(found, &cap, n + 1, sizeof(*found), 256);
			if (g == NULL) {
				out = SP_ENOMEM;
				goto reset;
			}
			found = g;
			size_t at = bodies.len;
			if (chunk_rec_json(&rec, dev, &bodies)) {
				out = SP_ENOMEM;
				goto reset;
			}
			found[n++] = (struct found_rec){rec.ts, chunk_id * 1024 + i, at,
							bodies.len - at, rec.kind};
		}
	}
	if (rc != SQLITE_DONE)
		out = sqs_db_error(s, r->db, "read readings");
reset:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (out == 0) {
		if (n > 1) /* qsort's array may not be NULL, even for 0 items */
			qsort(found, n, sizeof(*found), by_ts_then_order);
		for (size_t i = 0; i < n; i++) {
			out++;
			if (fn(ctx, found[i].ts, (enum sp_rec_kind)found[i].kind,
			       bodies.data + found[i].at, found[i].len))
				break;
		}
	}
done:
	sqs_give_back(s, r);
	free(found);
	sp_buf_free(&bodies);
	return out;
}

int sqr_device_counts(void *impl, int64_t now_ms, int64_t offline_ms,
			      int64_t counts[SP_DEV_KIND_COUNT][2])
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	sqlite3_stmt *st = r->st[R_COUNTS];
	int rc;
	memset(counts, 0, sizeof(int64_t) * SP_DEV_KIND_COUNT * 2);
	sqlite3_bind_int64(st, 1, now_ms - offline_ms);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int kind = sqlite3_column_int(st, 0);
		int online = sqlite3_column_int(st, 1) != 0;
		if (kind >= 0 && kind < SP_DEV_KIND_COUNT)
			counts[kind][online] += sqlite3_column_int64(st, 2);
	}
	return sqs_rdone(s, r, st, rc, "count devices");
}

int sqr_ping(void *impl)
{
	struct sqlite_store *s = impl;
	/*
	 * Not sqs_borrow: /healthz must answer within a load balancer's
	 * patience even while slow queries hold every reader. Readers that
	 * are all busy reading show the file readable; the answer is 1.
	 */
	struct reader *r = sqs_borrow_within(s, STORE_PING_WAIT_MS);
	if (r == NULL)
		return 1;
	sqlite3_stmt *st = r->st[R_PING];
	int rc = sqlite3_step(st);
	return sqs_rdone(s, r, st, rc, "ping");
}

int sqr_site_has_records(void *impl, const char *site, int64_t from, int64_t to)
{
	struct sqlite_store *s = impl;
	struct reader *r = sqs_borrow(s);
	if (r == NULL)
		return SP_EBUSY; /* every reader busy for STORE_READ_WAIT_MS */
	sqlite3_stmt *st = r->st[R_SITE_HAS];
	sqs_bind_text(st, 1, site);
	sqlite3_bind_int64(st, 2, from);
	sqlite3_bind_int64(st, 3, to);
	int rc = sqlite3_step(st);
	int has = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
	int err = sqs_rdone(s, r, st, rc, "look for a site's readings");
	return err ? err : has;
}
