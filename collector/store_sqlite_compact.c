/*
 * store_sqlite_compact.c - compaction in the SQLite backend (see store.h,
 * docs/internals/storage.md): once a chunk's hour is over, a device's small
 * chunks of that hour are merged into full ones, a bounded number of chunks
 * looked at per call, in the writer's transaction of its own. The mark
 * `compaction.upto` moves past every (device, hour) a call finished, so the
 * next call goes on where this one stopped, however much is left.
 */
#include "store_sqlite_int.h"

#include "chunk.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* A (device, hour) to look at, and the smallest id among the chunks that named it. */
struct span_key {
	int64_t device_id, span, first;
};

/* (device, span), then first: the first of a group's entries has its smallest id */
static int by_span_key(const void *pa, const void *pb)
{
	const struct span_key *a = pa, *b = pb;
	if (a->device_id != b->device_id)
		return a->device_id < b->device_id ? -1 : 1;
	if (a->span != b->span)
		return a->span < b->span ? -1 : 1;
	return a->first < b->first ? -1 : a->first > b->first;
}

static int by_first(const void *pa, const void *pb)
{
	const struct span_key *a = pa, *b = pb;
	return a->first < b->first ? -1 : a->first > b->first;
}

/*
 * A chunk written at `at` is not due yet: written after the cut-off. Unless
 * written further "in the future" than the wait itself: the clock stepped
 * back, and waiting for it could take that long.
 */
static bool due_later(const struct sqlite_store *s, int64_t at, int64_t now_ms, int64_t cutoff)
{
	return at >= cutoff && at - now_ms <= s->compact_after_ms;
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
 * to INT64_MAX when there is none or the group ends with it (the caller
 * then knows the group finished without asking again); *merged counts the
 * chunks merged.
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
	*from = step == SQLITE_DONE ? INT64_MAX : ids[nids - 1];
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

/* The first chunk with an id >= from: *found, its id and `at`. 0 or SP_E*. */
static int chunk_from(struct sqlite_store *s, int64_t from, bool *found, int64_t *id, int64_t *at)
{
	sqlite3_stmt *st = s->w[W_COMPACT_NEXT];
	sqlite3_bind_int64(st, 1, from);
	int step = sqlite3_step(st);
	if ((*found = step == SQLITE_ROW)) {
		*id = sqlite3_column_int64(st, 0);
		*at = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return sqs_db_error(s, s->db, "measure the compaction backlog");
	return 0;
}

/*
 * For a call that leaves chunks due: how many lie above `upto`, and how
 * long the oldest has been due (out->backlog, out->lag_ms). Counting them
 * would read every row of the backlog (millions when far behind), on the
 * writer's thread; instead the last chunk due is found by bisection over
 * ids, ~log2(ids) look-ups by rowid (tens of µs): the writer numbers
 * chunks in the order it writes them, so `at` rises with the id (a merged
 * chunk takes an older id and an older `at`, which keeps it so). The
 * count is in ids: an upper bound, since ids given up by merges ahead of
 * the mark count too. After a clock set back `at` no longer rises
 * everywhere and it is an estimate, as is where the scan stops then.
 */
static int measure_backlog(struct sqlite_store *s, int64_t upto, int64_t now_ms, int64_t cutoff,
			   struct store_compaction *out)
{
	sqlite3_stmt *st = s->w[W_COMPACT_MAX];
	int64_t lo = upto, hi, id = 0, at = 0;
	bool found;
	int rc, step = sqlite3_step(st);

	hi = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (step != SQLITE_ROW)
		return sqs_db_error(s, s->db, "measure the compaction backlog");
	hi = hi < INT64_MAX ? hi + 1 : INT64_MAX; /* no chunk due at or above hi */
	out->backlog = out->lag_ms = 0;
	if ((rc = chunk_from(s, upto + 1, &found, &id, &at)) || !found ||
	    due_later(s, at, now_ms, cutoff))
		return rc;
	out->lag_ms = cutoff > at ? cutoff - at : 0;
	/* lo: a chunk due (or upto); no chunk due at or above hi */
	for (lo = id; hi - lo > 1;) {
		int64_t mid = lo + (hi - lo) / 2;
		if ((rc = chunk_from(s, mid, &found, &id, &at)))
			return rc;
		if (!found || id >= hi || due_later(s, at, now_ms, cutoff))
			hi = mid;
		else
			lo = id;
	}
	out->backlog = lo - upto;
	return 0;
}

/*
 * Looks at the chunks written since the mark `compaction.upto` (by id, up
 * to `budget`) that were written at least compact_after_ms ago: each names
 * a device and span that may now hold runs of small chunks, which
 * compact_run merges. The budget counts chunks, and a run of 256 half-full
 * chunks moves ~65,000 readings (tens of ms); so the time is bounded too
 * (max_ms), or a backlog's chunks could hold the writer, and every ack,
 * for most of a second.
 *
 * The (device, span)s are taken in the order of their first chunk's id,
 * so those finished when the pass stops on its budget or time are exactly
 * those whose chunks all lie below the first chunk of the next one: the
 * mark moves to just below that chunk, and the next pass starts there. A
 * pass that had to leave the mark where it was (as one did when it took
 * the (device, span)s in index order) would look at the same chunks again
 * and, where new chunks keep landing in those hours, spend its budget on
 * the same groups for ever: compaction then never passes a certain chunk
 * rate (~4,096 a second at one pass a second). Every chunk below the mark
 * was looked at with its (device, span) finished after it was written, and
 * every chunk written later gets an id above the mark (W_CHUNK_NEXT_ID):
 * nothing is passed over. Merging keeps each reading's place in storage
 * order (compact_run), whatever order the groups are taken in.
 */
int sqc_compact(void *impl, int64_t now_ms, int budget, int64_t max_ms,
		struct store_compaction *out)
{
	int64_t deadline = max_ms < 0 ? INT64_MAX : sp_mono_ms() + max_ms;
	struct sqlite_store *s = impl;
	sqlite3_stmt *st = s->w[W_COMPACT_UPTO];
	int64_t upto = 0, cutoff = now_ms - s->compact_after_ms, ids[COMPACT_RUN_MAX];
	struct span_key *keys = NULL;
	size_t nkeys = 0, ngroups = 0, done = 0;
	bool young = false;
	int rc = 0, step;

	*out = (struct store_compaction){0};
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
		if (due_later(s, sqlite3_column_int64(st, 3), now_ms, cutoff)) {
			young = true;
			break;
		}
		last = sqlite3_column_int64(st, 0);
		out->looked++;
		int64_t span = chunk_span_of(sqlite3_column_int64(st, 2));
		/* a span whose ms do not fit in int64 can only come from a damaged row */
		if (span > INT64_MAX / CHUNK_SPAN_MS - 1 || span < INT64_MIN / CHUNK_SPAN_MS + 1)
			continue;
		keys[nkeys++] = (struct span_key){sqlite3_column_int64(st, 1), span, last};
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = sqs_db_error(s, s->db, "scan chunks to compact");
		goto done;
	}
	/* each (device, span) once, with its smallest id; then in the order of those */
	qsort(keys, nkeys, sizeof(*keys), by_span_key);
	for (size_t i = 0; i < nkeys; i++)
		if (ngroups == 0 || keys[i].device_id != keys[ngroups - 1].device_id ||
		    keys[i].span != keys[ngroups - 1].span)
			keys[ngroups++] = keys[i];
	qsort(keys, ngroups, sizeof(*keys), by_first);
	for (; done < ngroups; done++) {
		for (int64_t from = 0; from != INT64_MAX;) {
			/*
			 * Enough for one pass (chunks or time), once it got somewhere
			 * (a run merged or a group finished): the next pass begins
			 * with this group, at its first chunk.
			 */
			if (out->merged >= budget ||
			    ((out->merged > 0 || done > 0) && sp_mono_ms() >= deadline)) {
				last = keys[done].first - 1;
				out->more = true;
				goto save;
			}
			if ((rc = compact_run(s, &keys[done], &from, ids, &out->merged)))
				goto done;
		}
	}
	/* it looked at `budget` chunks, all due: more may be */
	out->more = !young && out->looked == budget;
save:
	if (last != upto) {
		sqlite3_bind_int64(s->w[W_COMPACT_SET], 1, last);
		if ((rc = sqs_wstep(s, W_COMPACT_SET)))
			goto done;
	}
	if (out->more)
		rc = measure_backlog(s, last, now_ms, cutoff, out);
done:
	free(keys);
	return rc;
}
