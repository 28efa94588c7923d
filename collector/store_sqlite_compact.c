/*
 * store_sqlite_compact.c - compaction in the SQLite backend (see store.h,
 * docs/internals/storage.md): once a chunk's hour is over, a device's small
 * chunks of that hour are merged into full ones, a bounded number of chunks
 * looked at per call, in the writer's transaction of its own.
 */
#include "store_sqlite_int.h"

#include "chunk.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct span_key {
	int64_t device_id, span;
};

static int by_span_key(const void *pa, const void *pb)
{
	const struct span_key *a = pa, *b = pb;
	if (a->device_id != b->device_id)
		return a->device_id < b->device_id ? -1 : 1;
	return a->span < b->span ? -1 : a->span > b->span;
}

/* A chunk less than half full is worth merging; a fuller one stays as it is. */
#define UNDERFULL_RECORDS (CHUNK_MAX_RECORDS / 2)
static bool underfull(size_t n, size_t body_len)
{
	return n < UNDERFULL_RECORDS && body_len < CHUNK_MAX_BODY / 2;
}

/* chunks merged at most in one go (bounds the copies held: 256 x 16 KB) */
#define COMPACT_RUN_MAX 256

/*
 * Merges the first run, after chunk id *from, of two or more under-full
 * chunks of one device and span that follow each other in storage order (a
 * fuller or damaged chunk ends a run). The run's readings, in storage
 * order, are packed into as few chunks as the limits allow, and those take
 * the run's smallest ids (packing never makes more chunks than it took):
 * every reading keeps its place in storage order relative to all others,
 * so no answer changes, ties on ts included. *from moves past the run, or
 * to INT64_MAX when there is none; *merged counts the chunks merged.
 */
static int compact_run(struct sqlite_store *s, const struct span_key *k, int64_t *from,
		       int64_t ids[COMPACT_RUN_MAX], int64_t *merged)
{
	sqlite3_stmt *st = s->w[W_COMPACT_GROUP];
	int64_t lo = k->span * CHUNK_SPAN_MS, at = INT64_MAX;
	size_t nids = 0;
	int rc = 0, step = SQLITE_DONE;

	sqlite3_bind_int64(st, 1, k->device_id);
	sqlite3_bind_int64(st, 2, lo);
	sqlite3_bind_int64(st, 3, lo + (CHUNK_SPAN_MS - 1));
	sqlite3_bind_int(st, 4, UNDERFULL_RECORDS);
	sqlite3_bind_int64(st, 5, *from);
	while (nids < COMPACT_RUN_MAX && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct chunk_iter it;
		struct chunk_rec rec;
		/* a full chunk's meta and body are not even read (NULL) */
		if (sqlite3_column_int64(st, 1) >= UNDERFULL_RECORDS ||
		    !sqs_row_chunk(s, st, 2, "left as it is", &it) || !underfull(it.n, it.body_len)) {
			if (nids >= 2)
				break;
			/* a run of one is not worth it: start again after this chunk */
			nids = 0;
			at = INT64_MAX;
			chunk_batch_reset(s->merging);
			continue;
		}
		ids[nids++] = sqlite3_column_int64(st, 2);
		if (sqlite3_column_int64(st, 0) < at)
			at = sqlite3_column_int64(st, 0);
		while (chunk_iter_next(&it, &rec) == 1)
			if ((rc = chunk_batch_add(s->merging, k->device_id, &rec)))
				goto done;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = sqs_db_error(s, s->db, "read chunks to compact");
		goto done;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (nids < 2) {
		*from = INT64_MAX;
		goto done;
	}
	*from = ids[nids - 1];
	for (size_t i = 0; i < nids; i++) {
		sqlite3_bind_int64(s->w[W_CHUNK_DEL], 1, ids[i]);
		if ((rc = sqs_wstep(s, W_CHUNK_DEL)))
			goto done;
	}
	/* the merged chunks keep the oldest `at`: already past compaction's cut-off */
	if ((rc = sqs_write_chunks(s, s->merging, s->w[W_CHUNK_INS], CHUNK_FMT_PACKED, at, ids,
				   nids)) == 0)
		*merged += (int64_t)nids;
done:
	if (rc == SP_ENOMEM)
		SP_ERROR("store", "%s: out of memory compacting readings", s->path);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	chunk_batch_reset(s->merging);
	return rc;
}

/*
 * Looks at the chunks written since the last call (by id, up to `budget`)
 * that were written at least compact_after_ms ago: each names a device
 * and span that may now hold runs of small chunks, which compact_run
 * merges. `compaction.upto` remembers how far it got. The budget counts
 * chunks, and a run of 256 half-full chunks moves ~65,000 readings (tens of
 * ms); so the time is bounded too (max_ms), or a backlog's chunks could
 * hold the writer, and every ack, for most of a second.
 */
int sqc_compact(void *impl, int64_t now_ms, int budget, int64_t max_ms, int64_t *merged)
{
	int64_t deadline = max_ms < 0 ? INT64_MAX : sp_mono_ms() + max_ms;
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_COMPACT_UPTO];
	int64_t upto = 0, cutoff = now_ms - s->compact_after_ms, ids[COMPACT_RUN_MAX];
	struct span_key *keys = NULL;
	size_t nkeys = 0;
	int rc = 0, step;

	*merged = 0;
	if (budget <= 0)
		return 0;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		upto = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (step != SQLITE_ROW)
		return sqs_db_error(s, s->db, "read compaction state");
	if ((keys = malloc((size_t)budget * sizeof(*keys))) == NULL)
		return SP_ENOMEM;
	st = s->w[W_COMPACT_SCAN];
	sqlite3_bind_int64(st, 1, upto);
	sqlite3_bind_int64(st, 2, budget);
	int64_t last = upto;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		/*
		 * Written after the cut-off: wait. Unless written further "in the
		 * future" than the wait itself: the clock stepped back, and
		 * waiting for it could take that long.
		 */
		int64_t at = sqlite3_column_int64(st, 3);
		if (at >= cutoff && at - now_ms <= s->compact_after_ms)
			break;
		last = sqlite3_column_int64(st, 0);
		int64_t span = chunk_span_of(sqlite3_column_int64(st, 2));
		/* a span whose ms do not fit in int64 can only come from a damaged row */
		if (span > INT64_MAX / CHUNK_SPAN_MS - 1 || span < INT64_MIN / CHUNK_SPAN_MS + 1)
			continue;
		keys[nkeys++] = (struct span_key){sqlite3_column_int64(st, 1), span};
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = sqs_db_error(s, s->db, "scan chunks to compact");
		goto done;
	}
	qsort(keys, nkeys, sizeof(*keys), by_span_key);
	for (size_t i = 0; i < nkeys; i++) {
		if (i > 0 && by_span_key(&keys[i], &keys[i - 1]) == 0)
			continue;
		for (int64_t from = 0; from != INT64_MAX;) {
			/*
			 * Enough for one pass (chunks or time): stop here and keep
			 * `upto` where it was, so the next pass looks at the same chunks again
			 * (what is merged already costs it an index seek).
			 */
			if (*merged >= budget || (*merged > 0 && sp_mono_ms() >= deadline)) {
				last = upto;
				goto save;
			}
			if ((rc = compact_run(s, &keys[i], &from, ids, merged)))
				goto done;
		}
	}
save:
	if (last != upto) {
		sqlite3_bind_int64(s->w[W_COMPACT_SET], 1, last);
		rc = sqs_wstep(s, W_COMPACT_SET);
	}
done:
	free(keys);
	return rc ? rc : (int)nkeys;
}
