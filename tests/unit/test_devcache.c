/*
 * test_devcache.c - the writer's bounded device cache: put/get, replace,
 * per-batch "seen" tracking and its flush, kept across rollbacks until a
 * flush of it commits, clear, and eviction when full.
 */
#include "harness.h"

#include "devcache.h"

#include <stdbool.h>
#include <stdlib.h>

#define T0 1764320000000LL

static struct store_device dev(int64_t id, enum sp_dev_kind kind)
{
	struct store_device d = {0};
	d.id = id;
	d.agent_id = 100 + id;
	d.kind = kind;
	if (kind == SP_DEV_CHARGER) {
		d.ports = 4;
	} else if (kind == SP_DEV_LIFT) {
		d.has_floors = true;
		d.floor_min = -2;
		d.floor_max = 12;
	}
	return d;
}

/* What devcache_flush_seen reported. */
#define FLUSH_MAX 64
struct flushed {
	int calls;
	int fail_at;          /* call number (1-based) that fails, 0 = none */
	int64_t id[FLUSH_MAX];
	int64_t ts[FLUSH_MAX];
	int64_t heard[FLUSH_MAX];
};

static int on_flush(void *ctx, int64_t device_id, int64_t ts, int64_t heard)
{
	struct flushed *f = ctx;
	if (f->calls < FLUSH_MAX) {
		f->id[f->calls] = device_id;
		f->ts[f->calls] = ts;
		f->heard[f->calls] = heard;
	}
	f->calls++;
	return f->calls == f->fail_at ? -3 : 0;
}

/* What was reported of device id in col (-1 if not reported, -2 if reported twice). */
static int64_t flushed_value(const struct flushed *f, int64_t id, const int64_t *col)
{
	int64_t v = -1;
	for (int i = 0; i < f->calls && i < FLUSH_MAX; i++)
		if (f->id[i] == id)
			v = v == -1 ? col[i] : -2;
	return v;
}

static int64_t flushed_ts(const struct flushed *f, int64_t id)
{
	return flushed_value(f, id, f->ts);
}

static int64_t flushed_heard(const struct flushed *f, int64_t id)
{
	return flushed_value(f, id, f->heard);
}

/* Counts flushed devices and whether they came in ascending id order. */
struct ordered {
	int calls;
	int64_t last_id;
	bool ascending;
};

static int on_flush_ordered(void *ctx, int64_t device_id, int64_t ts, int64_t heard)
{
	struct ordered *o = ctx;
	(void)ts;
	(void)heard;
	if (device_id <= o->last_id)
		o->ascending = false;
	o->last_id = device_id;
	o->calls++;
	return 0;
}

/* A flush in a batch that then commits (the writer's usual path). */
static int flush_commit(struct devcache *c, int (*fn)(void *, int64_t, int64_t, int64_t),
			void *ctx)
{
	int rc = devcache_flush_seen(c, fn, ctx);
	if (rc == 0)
		devcache_seen_commit(c);
	return rc;
}

static void test_put_get(void)
{
	struct devcache *c = devcache_create(16);
	CHECK(c != NULL);
	CHECK_EQ_INT(devcache_count(c), 0);
	CHECK(devcache_get(c, "s1", "lift-1") == NULL);
	struct store_device in = dev(1, SP_DEV_LIFT);
	struct store_device *p = devcache_put(c, "s1", "lift-1", &in, 0, 0);
	CHECK(p != NULL);
	CHECK(p != &in); /* a copy */
	CHECK(devcache_get(c, "s1", "lift-1") == p);
	CHECK_EQ_INT(devcache_count(c), 1);
	struct store_device in2 = dev(2, SP_DEV_CHARGER);
	struct store_device *q = devcache_put(c, "s2", "lift-1", &in2, 0, 0); /* same dev, other site */
	CHECK(q != NULL && q != p);
	CHECK_EQ_INT(devcache_count(c), 2);
	p = devcache_get(c, "s1", "lift-1");
	q = devcache_get(c, "s2", "lift-1");
	CHECK(p && q);
	if (p && q) {
		CHECK_EQ_INT(p->id, 1);
		CHECK_EQ_INT(p->agent_id, 101);
		CHECK_EQ_INT(p->kind, SP_DEV_LIFT);
		CHECK(p->has_floors);
		CHECK_EQ_INT(p->floor_min, -2);
		CHECK_EQ_INT(p->floor_max, 12);
		CHECK_EQ_INT(q->id, 2);
		CHECK_EQ_INT(q->kind, SP_DEV_CHARGER);
		CHECK_EQ_INT(q->ports, 4);
	}
	CHECK(devcache_get(c, "s1", "lift-2") == NULL);
	CHECK(devcache_get(c, "s3", "lift-1") == NULL);
	/* the key is the pair, not the concatenation */
	CHECK(devcache_get(c, "s1/lift", "-1") == NULL);
	devcache_destroy(c);
	devcache_destroy(NULL);
}

static void test_replace(void)
{
	struct devcache *c = devcache_create(4);
	struct store_device a = dev(7, SP_DEV_UNKNOWN);
	struct store_device *p = devcache_put(c, "s", "d", &a, 0, 0);
	struct store_device b = dev(7, SP_DEV_CHARGER);
	b.ports = 16;
	struct store_device *q = devcache_put(c, "s", "d", &b, 0, 0);
	CHECK(q == p);
	CHECK_EQ_INT(devcache_count(c), 1);
	CHECK(devcache_get(c, "s", "d") == p);
	CHECK_EQ_INT(p->kind, SP_DEV_CHARGER);
	CHECK_EQ_INT(p->ports, 16);
	devcache_destroy(c);
}

static void test_seen_flush(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device a = dev(1, SP_DEV_LIFT), b = dev(2, SP_DEV_CHARGER),
			    x = dev(3, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a, 0, 0);
	struct store_device *pb = devcache_put(c, "s", "b", &b, 0, 0);
	devcache_put(c, "s", "x", &x, 0, 0); /* never seen */
	devcache_seen(c, pa, T0 + 100, 0);
	devcache_seen(c, pa, T0 + 300, 0);
	devcache_seen(c, pb, T0 + 50, 0);
	devcache_seen(c, pa, T0 + 200, 0); /* older: the newest stays */
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 2); /* once per device */
	CHECK_EQ_INT(flushed_ts(&f, 1), T0 + 300);
	CHECK_EQ_INT(flushed_ts(&f, 2), T0 + 50);
	CHECK_EQ_INT(flushed_ts(&f, 3), -1);
	/* forgotten after the flush */
	struct flushed g = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &g), 0);
	CHECK_EQ_INT(g.calls, 0);
	/* the next batch starts afresh (an older ts than the last batch is reported as is) */
	devcache_seen(c, pa, T0 + 10, 0);
	struct flushed h = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &h), 0);
	CHECK_EQ_INT(h.calls, 1);
	CHECK_EQ_INT(flushed_ts(&h, 1), T0 + 10);
	/* the cached entries themselves stay */
	CHECK_EQ_INT(devcache_count(c), 3);
	CHECK(devcache_get(c, "s", "a") == pa);
	devcache_destroy(c);
}

static void test_seen_survives_replace(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device a = dev(1, SP_DEV_UNKNOWN);
	struct store_device *pa = devcache_put(c, "s", "a", &a, 0, 0);
	devcache_seen(c, pa, T0 + 5, 0);
	a.kind = SP_DEV_LIFT; /* a birth arrives in the same batch */
	CHECK(devcache_put(c, "s", "a", &a, 0, 0) == pa);
	devcache_seen(c, pa, T0 + 6, 0);
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 1);
	CHECK_EQ_INT(flushed_ts(&f, 1), T0 + 6);
	devcache_destroy(c);
}

/*
 * After a flush an entry's old item index is stale: it may point at another
 * device's new item (the flush sorted the list by id), which must not take
 * the entry's readings.
 */
static void test_items_after_flush(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device a = dev(5, SP_DEV_LIFT), b = dev(2, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a, 0, 0);
	struct store_device *pb = devcache_put(c, "s", "b", &b, 0, 0);
	devcache_seen(c, pa, T0 + 1, 0); /* item 0 */
	devcache_seen(c, pb, T0 + 2, 0); /* item 1 */
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 2);
	devcache_seen(c, pb, T0 + 20, 0); /* item 0 now b's: a's old index points at it */
	devcache_seen(c, pa, T0 + 10, 0);
	devcache_seen(c, pa, T0 + 11, 0);
	CHECK_EQ_INT(devcache_seen_count(c), 2);
	struct flushed g = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &g), 0);
	CHECK_EQ_INT(g.calls, 2);
	CHECK_EQ_INT(flushed_ts(&g, 2), T0 + 20);
	CHECK_EQ_INT(flushed_ts(&g, 5), T0 + 11);
	devcache_destroy(c);
}

/* What the cache knows of a device's newest reading: from the store, then from what it notes. */
static void test_newest(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device a = dev(1, SP_DEV_LIFT), b = dev(2, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a, T0 + 1999, 0);
	struct store_device *pb = devcache_put(c, "s", "b", &b, 0, 0);
	CHECK_EQ_INT(devcache_newest(pa), T0 + 1000); /* whole seconds, rounded down */
	CHECK_EQ_INT(devcache_newest(pb), 0);
	devcache_seen(c, pa, T0 + 500, 0); /* older than known: no change */
	CHECK_EQ_INT(devcache_newest(pa), T0 + 1000);
	devcache_seen(c, pa, T0 + 7300, 0);
	CHECK_EQ_INT(devcache_newest(pa), T0 + 7000);
	devcache_put(c, "s", "a", &a, T0 + 3000, 0); /* a birth: what the store says is older */
	CHECK_EQ_INT(devcache_newest(pa), T0 + 7000);
	devcache_put(c, "s", "b", &b, T0 + 9000, 0);
	CHECK_EQ_INT(devcache_newest(pb), T0 + 9000);
	/* a flush forgets the items, not what is known */
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(devcache_newest(pa), T0 + 7000);
	devcache_destroy(c);
}

/*
 * The bound the writer tests late records against: never below what the
 * cache was told or noted. Exact while noted since the flush, the end of
 * the whole second after it; unknown (INT64_MAX) for a device read again
 * while an evicted entry's notes were unwritten, notes of its own or not,
 * until the flush of them commits (a store that trails its notes).
 */
static void test_newest_bound(void)
{
	struct devcache *c = devcache_create(2);
	struct store_device a = dev(1, SP_DEV_LIFT), b = dev(2, SP_DEV_LIFT), x = dev(3, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a, T0 + 1200, 0);
	struct store_device *pb = devcache_put(c, "s", "b", &b, 0, 0);
	CHECK_EQ_INT(devcache_newest_bound(c, pa), T0 + 1999);
	CHECK_EQ_INT(devcache_newest_bound(c, pb), 999); /* none: below any real ts */
	devcache_seen(c, pa, T0 + 7300, 0);
	CHECK_EQ_INT(devcache_newest_bound(c, pa), T0 + 7300); /* exact */
	devcache_seen(c, pa, T0 + 7100, 0);                     /* older: no change */
	CHECK_EQ_INT(devcache_newest_bound(c, pa), T0 + 7300);
	struct flushed f = {0};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &f), 0);
	CHECK_EQ_INT(devcache_newest_bound(c, pa), T0 + 7300); /* not committed yet */
	devcache_seen_commit(c);
	CHECK_EQ_INT(devcache_newest_bound(c, pa), T0 + 7999);

	/* b noted, then evicted before the flush: a device read again cannot tell */
	devcache_seen(c, pb, T0 + 5000, 0);
	devcache_get(c, "s", "a"); /* a used: the hand takes b */
	struct store_device *px = devcache_put(c, "s", "x", &x, T0 + 100, 0);
	CHECK(devcache_get(c, "s", "b") == NULL);
	CHECK_EQ_INT(devcache_newest_bound(c, px), INT64_MAX);
	pb = devcache_put(c, "s", "b", &b, T0 + 1000, 0); /* the store's last_seen, trailing */
	CHECK_EQ_INT(devcache_newest_bound(c, pb), INT64_MAX);
	devcache_seen(c, pb, T0 + 6000, 0); /* noted again: still unsure (the old note is newer?) */
	CHECK_EQ_INT(devcache_newest_bound(c, pb), INT64_MAX);
	/* once a flush committed, the store has them all again, and so has b */
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(devcache_newest_bound(c, pb), T0 + 6999);
	devcache_destroy(c);
}

/*
 * When a device's readings arrived (heard, the collector's clock) is kept
 * apart from their ts (its own clock): a reading older than the newest
 * still raises heard; a rollback gives a committed item its heard back;
 * the flush reports the newest of each; heard is kept in whole seconds,
 * rounded up, from the store (put) or the notes.
 */
static void test_heard(void)
{
	struct devcache *c = devcache_create(1024);
	struct store_device a = dev(1, SP_DEV_LIFT), b = dev(2, SP_DEV_CHARGER);
	struct store_device *pa = devcache_put(c, "s", "a", &a, T0 + 9000, T0 + 1500);
	struct store_device *pb = devcache_put(c, "s", "b", &b, 0, 0);
	CHECK_EQ_INT(devcache_heard(pa), T0 + 2000); /* whole seconds, rounded up */
	CHECK_EQ_INT(devcache_heard(pb), 0);
	/* a's clock runs ahead: its readings are older than the store's newest */
	CHECK_EQ_INT(devcache_seen(c, pa, T0 + 5000, T0 + 3200), 0);
	CHECK_EQ_INT(devcache_heard(pa), T0 + 4000);
	CHECK_EQ_INT(devcache_newest(pa), T0 + 9000);
	CHECK_EQ_INT(devcache_seen(c, pb, T0 + 100, T0 + 5000), 0);
	CHECK_EQ_INT(devcache_heard(pb), T0 + 5000); /* a whole second stays as it is */
	devcache_seen_commit(c);
	/* batch 2 raises a's heard with an older reading still, then rolls back */
	CHECK_EQ_INT(devcache_seen(c, pa, T0 + 4000, T0 + 7700), 0);
	CHECK_EQ_INT(devcache_heard(pa), T0 + 8000);
	devcache_seen_abort(c);
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 2);
	CHECK_EQ_INT(flushed_ts(&f, 1), T0 + 5000);
	CHECK_EQ_INT(flushed_heard(&f, 1), T0 + 4000);
	CHECK_EQ_INT(flushed_heard(&f, 2), T0 + 5000);
	/* a later arrival with an older ts raises heard alone */
	CHECK_EQ_INT(devcache_seen(c, pb, T0 + 100, T0 + 5400), 0);
	CHECK_EQ_INT(devcache_seen(c, pb, T0 + 50, T0 + 8800), 0);
	struct flushed g = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &g), 0);
	CHECK_EQ_INT(g.calls, 1);
	CHECK_EQ_INT(flushed_ts(&g, 2), T0 + 100);
	CHECK_EQ_INT(flushed_heard(&g, 2), T0 + 9000);
	CHECK_EQ_INT(devcache_heard(pb), T0 + 9000);
	devcache_destroy(c);
}

/*
 * The bound across batches: a committed batch's note (not yet flushed)
 * stays the newest when a later batch notes an older reading of the same
 * device; a rollback and the clear after it leave nothing the cache can
 * tell until a flush of the committed notes commits.
 */
static void test_newest_bound_batches(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device a = dev(1, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a, 0, 0);
	devcache_seen(c, pa, T0 + 5300, 0);
	devcache_seen_commit(c); /* batch 1 committed, no flush */
	devcache_seen(c, pa, T0 + 5100, 0); /* batch 2: an older reading */
	CHECK_EQ_INT(devcache_newest_bound(c, pa), T0 + 5300);
	devcache_seen_abort(c); /* batch 2 rolled back */
	devcache_clear(c);
	pa = devcache_put(c, "s", "a", &a, T0 + 1000, 0); /* read again: the store trails */
	CHECK_EQ_INT(devcache_newest_bound(c, pa), INT64_MAX);
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(devcache_newest_bound(c, pa), T0 + 5999); /* batch 1's note, written */
	devcache_destroy(c);
}

/*
 * A note made while the cache cannot tell, or after a flush in the same
 * second, keeps the bound it had: an older reading noted then must not make
 * a later, still older one look newer than what the rules judged. A device
 * read again while an evicted entry's note was unwritten is unsure until a
 * flush of that note commits, and then knows its newest.
 */
static void test_newest_bound_floor(void)
{
	struct devcache *c = devcache_create(2);
	struct store_device a = dev(1, SP_DEV_LIFT), b = dev(2, SP_DEV_LIFT), x = dev(3, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a, T0, 0);
	devcache_put(c, "s", "b", &b, T0, 0);
	devcache_seen(c, pa, T0 + 10900, 0); /* judged, committed, not flushed */
	devcache_seen_commit(c);
	devcache_get(c, "s", "b"); /* b used: the hand takes a */
	devcache_put(c, "s", "x", &x, T0, 0);
	CHECK(devcache_get(c, "s", "a") == NULL);
	pa = devcache_put(c, "s", "a", &a, T0, 0); /* read again: the store trails */
	devcache_seen(c, pa, T0 + 2000, 0);           /* a late reading, noted */
	CHECK_EQ_INT(devcache_newest_bound(c, pa), INT64_MAX); /* T0 + 5000 is late too */
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(flushed_ts(&f, 1), T0 + 10900);
	/* the flush of the evicted entry's note committed: a knows its newest */
	CHECK_EQ_INT(devcache_newest_bound(c, pa), T0 + 10999);
	/* a late reading in the second of the newest judged, then an older one */
	devcache_seen(c, pa, T0 + 10100, 0);
	CHECK_EQ_INT(devcache_newest_bound(c, pa), T0 + 10999); /* not 10100 */
	devcache_destroy(c);
}

/* A flush whose write fails: its batch rolls back, and nothing committed is forgotten. */
static void test_flush_error(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device d[3] = {dev(1, SP_DEV_LIFT), dev(2, SP_DEV_LIFT), dev(3, SP_DEV_LIFT)};
	const char *names[3] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++)
		devcache_seen(c, devcache_put(c, "s", names[i], &d[i], 0, 0), T0 + i + 1, 0);
	devcache_seen_commit(c); /* that batch committed, without a flush */
	devcache_seen(c, devcache_get(c, "s", "b"), T0 + 9, 0); /* the next batch... */
	struct flushed f = {.fail_at = 1};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &f), -3);
	CHECK_EQ_INT(f.calls, 1); /* no more calls after an error */
	devcache_seen_abort(c); /* ...rolls back */
	devcache_clear(c);
	/* what the committed batch noted is reported again; the failed batch's reading is not */
	struct flushed g = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &g), 0);
	CHECK_EQ_INT(g.calls, 3);
	CHECK_EQ_INT(flushed_ts(&g, 1), T0 + 1);
	CHECK_EQ_INT(flushed_ts(&g, 2), T0 + 2);
	CHECK_EQ_INT(flushed_ts(&g, 3), T0 + 3);
	/* and after that flush committed, nothing is left */
	struct flushed h = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &h), 0);
	CHECK_EQ_INT(h.calls, 0);
	devcache_destroy(c);
}

/*
 * The writer's rollback (abort, then clear) keeps what committed batches
 * noted since the last flush: a device that then goes quiet still gets its
 * newest stored reading as last_seen at the next flush, not an older one.
 */
static void test_seen_survives_rollback(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device a = dev(1, SP_DEV_LIFT), b = dev(2, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a, 0, 0);
	struct store_device *pb = devcache_put(c, "s", "b", &b, 0, 0);
	devcache_seen(c, pa, T0 + 100, 0);
	devcache_seen(c, pb, T0 + 200, 0);
	devcache_seen_commit(c); /* batch 1 committed (no flush due) */
	/* batch 2: newer readings of both (a twice), then it fails */
	devcache_seen(c, pa, T0 + 300, 0);
	devcache_seen(c, pa, T0 + 350, 0);
	devcache_seen(c, pb, T0 + 400, 0);
	CHECK_EQ_INT(devcache_seen_count(c), 2); /* batch 1's items raised in place */
	devcache_seen_abort(c);
	devcache_clear(c);
	CHECK_EQ_INT(devcache_seen_count(c), 2);
	/* batch 3 reads a again from the store, sees an older reading of it, and flushes */
	pa = devcache_put(c, "s", "a", &a, T0 + 100, 0);
	devcache_seen(c, pa, T0 + 50, 0);
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 2);
	CHECK_EQ_INT(flushed_ts(&f, 1), T0 + 100); /* batch 1's, not the rolled-back 300 */
	CHECK_EQ_INT(flushed_ts(&f, 2), T0 + 200);
	CHECK_EQ_INT(devcache_seen_count(c), 0);
	devcache_destroy(c);
}

/*
 * A flush that wrote everything, in a batch that then failed to commit:
 * its writes are rolled back, so the items stay for the next flush; only
 * the failed batch's own readings go.
 */
static void test_flush_rolled_back(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device a = dev(7, SP_DEV_LIFT), b = dev(3, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a, 0, 0);
	struct store_device *pb = devcache_put(c, "s", "b", &b, 0, 0);
	devcache_seen(c, pa, T0 + 10, 0);
	devcache_seen_commit(c);
	devcache_seen(c, pa, T0 + 20, 0); /* the failing batch: a newer reading of a, a first of b */
	devcache_seen(c, pb, T0 + 30, 0);
	struct flushed f = {0};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 2);
	CHECK_EQ_INT(flushed_ts(&f, 7), T0 + 20);
	CHECK_EQ_INT(flushed_ts(&f, 3), T0 + 30);
	devcache_seen_abort(c); /* COMMIT failed */
	devcache_clear(c);
	struct flushed g = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &g), 0);
	CHECK_EQ_INT(g.calls, 1);
	CHECK_EQ_INT(flushed_ts(&g, 7), T0 + 10);
	CHECK_EQ_INT(flushed_ts(&g, 3), -1);
	/* a device seen after a flush in the same batch stays for the next one */
	pa = devcache_put(c, "s", "a", &a, 0, 0);
	devcache_seen(c, pa, T0 + 40, 0);
	struct flushed h = {0};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &h), 0);
	pb = devcache_put(c, "s", "b", &b, 0, 0);
	devcache_seen(c, pb, T0 + 50, 0);
	devcache_seen_commit(c);
	CHECK_EQ_INT(devcache_seen_count(c), 1);
	struct flushed k = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &k), 0);
	CHECK_EQ_INT(k.calls, 1);
	CHECK_EQ_INT(flushed_ts(&k, 3), T0 + 50);
	devcache_destroy(c);
}

/* A batch raising a committed device's ts twice, then flushing: one call, the newest ts. */
static void test_raise_committed_item(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device a = dev(4, SP_DEV_LIFT), b = dev(9, SP_DEV_LIFT), x = dev(1, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a, 0, 0);
	struct store_device *pb = devcache_put(c, "s", "b", &b, 0, 0);
	struct store_device *px = devcache_put(c, "s", "x", &x, 0, 0);
	devcache_seen(c, pb, T0 + 1, 0);
	devcache_seen(c, pa, T0 + 2, 0);
	devcache_seen_commit(c);
	devcache_seen(c, pa, T0 + 5, 0);
	devcache_seen(c, pa, T0 + 6, 0);
	devcache_seen(c, px, T0 + 7, 0);
	CHECK_EQ_INT(devcache_seen_count(c), 3); /* a's committed item raised in place, x new */
	struct ordered o = {0, 0, true};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush_ordered, &o), 0);
	CHECK_EQ_INT(o.calls, 3);
	CHECK(o.ascending); /* in id order */
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 3);
	CHECK_EQ_INT(flushed_ts(&f, 4), T0 + 6);
	CHECK_EQ_INT(flushed_ts(&f, 9), T0 + 1);
	CHECK_EQ_INT(flushed_ts(&f, 1), T0 + 7);
	devcache_destroy(c);
}

static void test_clear(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device a = dev(1, SP_DEV_LIFT), b = dev(2, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a, 0, 0);
	devcache_put(c, "s", "b", &b, 0, 0);
	devcache_seen(c, pa, T0, 0);
	devcache_seen_abort(c); /* the writer's rollback: the batch's notes go, then the entries */
	devcache_clear(c);
	CHECK_EQ_INT(devcache_count(c), 0);
	CHECK(devcache_get(c, "s", "a") == NULL);
	CHECK(devcache_get(c, "s", "b") == NULL);
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 0);
	/* usable again; a re-added device starts unseen */
	struct store_device *pb = devcache_put(c, "s", "b", &b, 0, 0);
	CHECK(pb != NULL);
	CHECK_EQ_INT(devcache_count(c), 1);
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 0);
	devcache_seen(c, pb, T0 + 1, 0);
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 1);
	CHECK_EQ_INT(flushed_ts(&f, 2), T0 + 1);
	devcache_destroy(c);
}

static struct store_device *put_named(struct devcache *c, const char *site, int i, int64_t id)
{
	char name[32];
	struct store_device d = dev(id, SP_DEV_CHARGER);
	snprintf(name, sizeof(name), "d%d", i);
	return devcache_put(c, site, name, &d, 0, 0);
}

static struct store_device *get_named(struct devcache *c, const char *site, int i)
{
	char name[32];
	snprintf(name, sizeof(name), "d%d", i);
	return devcache_get(c, site, name);
}

/* Full: a new device evicts one not used since the clock hand last passed. */
static void test_eviction(void)
{
	struct devcache *c = devcache_create(4);
	for (int i = 0; i < 4; i++)
		CHECK(put_named(c, "s", i, i + 1) != NULL);
	CHECK_EQ_INT(devcache_count(c), 4);
	CHECK_EQ_INT(devcache_evictions(c), 0);
	/* none used since it was cached: the hand takes the first, d0 */
	struct store_device *p4 = put_named(c, "s", 4, 5);
	CHECK(p4 != NULL);
	CHECK_EQ_INT(devcache_count(c), 4);
	CHECK_EQ_INT(devcache_evictions(c), 1);
	CHECK(get_named(c, "s", 0) == NULL);
	/* d1 is used; the next eviction passes it over and takes d2 */
	CHECK(get_named(c, "s", 1) != NULL);
	CHECK(put_named(c, "s", 5, 6) != NULL);
	CHECK_EQ_INT(devcache_evictions(c), 2);
	CHECK(get_named(c, "s", 2) == NULL);
	int present[] = {1, 3, 4, 5};
	for (int k = 0; k < 4; k++) {
		struct store_device *d = get_named(c, "s", present[k]);
		CHECK(d != NULL && d->id == present[k] + 1);
	}
	/* replacing a cached device evicts nothing */
	CHECK(put_named(c, "s", 3, 4) != NULL);
	CHECK_EQ_INT(devcache_evictions(c), 2);
	CHECK_EQ_INT(devcache_count(c), 4);
	/* a device read again after its eviction is cached again */
	CHECK(put_named(c, "s", 0, 1) != NULL);
	CHECK(get_named(c, "s", 0) != NULL);
	CHECK_EQ_INT(devcache_count(c), 4);
	devcache_destroy(c);
}

/* What was seen of an evicted device is still flushed, merged with what came after. */
static void test_seen_survives_eviction(void)
{
	struct devcache *c = devcache_create(2);
	struct store_device *a = put_named(c, "s", 0, 10);
	CHECK_EQ_INT(devcache_seen(c, a, T0 + 5, 0), 0);
	struct store_device *b = put_named(c, "s", 1, 11);
	CHECK_EQ_INT(devcache_seen(c, b, T0 + 7, 0), 0);
	/* d0 goes (both fresh: the hand takes the first) */
	CHECK(put_named(c, "s", 2, 12) != NULL);
	CHECK(get_named(c, "s", 0) == NULL);
	/* d0 reports again, read back from the store; an older reading, then a newer one */
	a = put_named(c, "s", 0, 10);
	CHECK(a != NULL);
	CHECK_EQ_INT(devcache_seen(c, a, T0 + 3, 0), 0);
	CHECK_EQ_INT(devcache_seen_count(c), 3); /* d0 twice: once per stay in the cache */
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 2);             /* once per device */
	CHECK_EQ_INT(flushed_ts(&f, 10), T0 + 5); /* the newest of its two stays */
	CHECK_EQ_INT(flushed_ts(&f, 11), T0 + 7); /* evicted by d0's return, still reported */
	CHECK_EQ_INT(flushed_ts(&f, 12), -1);
	CHECK_EQ_INT(devcache_seen_count(c), 0);
	devcache_destroy(c);
}

/* Device i of test_churn's fleet: long keys, so the pool fills fast. */
static void churn_key(char site[80], char name[80], int i)
{
	snprintf(site, 80, "a-rather-long-site-identifier-%d", i % 13);
	snprintf(name, 80, "charging-station-with-a-long-name-%06d", i);
}

/*
 * A fleet many times the cache, with long keys, passing through it again
 * and again: the evicted keys' bytes are reclaimed (the pool is rewritten
 * many times over; ASan would see a key left pointing into a freed block),
 * and what is cached is always right.
 */
static void test_churn(void)
{
	enum { CAP = 1024, FLEET = 9000, ROUNDS = 4 };
	struct devcache *c = devcache_create(CAP);
	char site[80], name[80];
	int wrong = 0, put_failed = 0, hits = 0, hot_misses = 0;
	struct store_device hot = dev(FLEET + 1, SP_DEV_LIFT);
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < FLEET; i++) {
			/* a device that reports all along, every 100 others: it stays */
			if (i % 100 == 0 && devcache_get(c, "hot", "lift") == NULL) {
				hot_misses++;
				devcache_put(c, "hot", "lift", &hot, 0, 0);
			}
			churn_key(site, name, i);
			struct store_device *d = devcache_get(c, site, name);
			if (d) {
				hits++;
				wrong += d->id != i + 1;
				continue;
			}
			struct store_device in = dev(i + 1, SP_DEV_CHARGER);
			d = devcache_put(c, site, name, &in, 0, 0);
			put_failed += d == NULL;
			if (d && i % 3 == 0)
				devcache_seen(c, d, T0 + r * FLEET + i, 0);
		}
	}
	CHECK_EQ_INT(hot_misses, 1); /* only its first time */
	CHECK_EQ_INT(put_failed, 0);
	CHECK_EQ_INT(wrong, 0);
	CHECK_EQ_INT(hits, 0); /* a cycle longer than the cache: every device was evicted first */
	CHECK_EQ_INT(devcache_count(c), CAP);
	CHECK(devcache_evictions(c) >= (uint64_t)(ROUNDS * FLEET - CAP));
	/* everything cached now is found by its key, with its own id */
	int found = 0;
	for (int i = 0; i < FLEET; i++) {
		churn_key(site, name, i);
		struct store_device *d = devcache_get(c, site, name);
		if (d) {
			found++;
			wrong += d->id != i + 1;
		}
	}
	CHECK_EQ_INT(wrong, 0);
	CHECK(found >= CAP - 2 && found <= CAP);
	/* every device seen in the rounds is flushed once, in id order */
	struct ordered o = {0, 0, true};
	CHECK_EQ_INT(flush_commit(c, on_flush_ordered, &o), 0);
	CHECK_EQ_INT(o.calls, FLEET / 3);
	CHECK(o.ascending);
	devcache_destroy(c);
}

/* Enough devices to grow the buckets and span several entry chunks. */
static void test_many_devices(void)
{
	enum { N = 20000 };
	struct devcache *c = devcache_create(N);
	static struct store_device *first[N];
	char site[32], name[32];
	int ok = 0;
	for (int i = 0; i < N; i++) {
		/* ids in reverse insertion order, so an unsorted flush would show */
		struct store_device d = dev(N - i, i % 2 ? SP_DEV_LIFT : SP_DEV_CHARGER);
		snprintf(site, sizeof(site), "site-%d", i % 7);
		snprintf(name, sizeof(name), "dev-%d", i);
		first[i] = devcache_put(c, site, name, &d, 0, 0);
		ok += first[i] != NULL;
	}
	CHECK_EQ_INT(ok, N);
	CHECK_EQ_INT(devcache_count(c), N);
	int found = 0, stable = 0;
	for (int i = 0; i < N; i++) {
		snprintf(site, sizeof(site), "site-%d", i % 7);
		snprintf(name, sizeof(name), "dev-%d", i);
		struct store_device *d = devcache_get(c, site, name);
		found += d != NULL && d->id == N - i;
		stable += d == first[i]; /* addresses survive growth */
		if (d && i % 10 == 0)
			devcache_seen(c, d, T0 + i, 0);
	}
	CHECK_EQ_INT(found, N);
	CHECK_EQ_INT(stable, N);
	struct ordered o = {0, 0, true};
	CHECK_EQ_INT(flush_commit(c, on_flush_ordered, &o), 0);
	CHECK_EQ_INT(o.calls, N / 10);
	CHECK(o.ascending);
	/* the key is the pair: a site that is a prefix of another does not match */
	CHECK(devcache_get(c, "site-", "1dev-1") == NULL);
	devcache_destroy(c);
}

/*
 * A burst's seen lists are handed back at the commit of its flush (the
 * arrays shrink, devcache.c's SEEN_KEEP): what was noted after the flush
 * survives the shrink, and the list works on as before.
 */
static void test_burst_handed_back(void)
{
	enum { N = 20000 }; /* items: well above four times SEEN_KEEP */
	struct devcache *c = devcache_create(N + 8);
	char name[32];
	for (int i = 0; i < N; i++) {
		struct store_device d = dev(i + 1, SP_DEV_LIFT);
		snprintf(name, sizeof(name), "dev-%d", i);
		devcache_seen(c, devcache_put(c, "s", name, &d, 0, 0), T0 + i, 0);
	}
	struct ordered o = {0, 0, true};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush_ordered, &o), 0);
	CHECK_EQ_INT(o.calls, N);
	struct store_device x = dev(N + 1, SP_DEV_LIFT);
	struct store_device *px = devcache_put(c, "s", "x", &x, 0, 0);
	devcache_seen(c, px, T0 + 5, 0); /* after the flush: kept by the commit, moved by the shrink */
	devcache_seen_commit(c);
	CHECK_EQ_INT(devcache_seen_count(c), 1);
	devcache_seen(c, px, T0 + 9, 0);
	devcache_seen(c, devcache_get(c, "s", "dev-7"), T0 + 100, 0);
	struct flushed f = {0};
	CHECK_EQ_INT(flush_commit(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 2);
	CHECK_EQ_INT(flushed_ts(&f, N + 1), T0 + 9);
	CHECK_EQ_INT(flushed_ts(&f, 8), T0 + 100);
	CHECK_EQ_INT(devcache_seen_count(c), 0);
	devcache_destroy(c);
}

int main(void)
{
	RUN(test_put_get);
	RUN(test_replace);
	RUN(test_seen_flush);
	RUN(test_seen_survives_replace);
	RUN(test_items_after_flush);
	RUN(test_newest);
	RUN(test_newest_bound);
	RUN(test_newest_bound_batches);
	RUN(test_heard);
	RUN(test_newest_bound_floor);
	RUN(test_flush_error);
	RUN(test_seen_survives_rollback);
	RUN(test_flush_rolled_back);
	RUN(test_raise_committed_item);
	RUN(test_clear);
	RUN(test_eviction);
	RUN(test_seen_survives_eviction);
	RUN(test_churn);
	RUN(test_many_devices);
	RUN(test_burst_handed_back);
	HARNESS_EXIT();
}
