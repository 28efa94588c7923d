/*
 * test_devcache.c - the writer's bounded device cache: put/get, replace,
 * per-batch "seen" tracking and its flush, clear, trim, and the full case.
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
};

static int on_flush(void *ctx, int64_t device_id, int64_t ts)
{
	struct flushed *f = ctx;
	if (f->calls < FLUSH_MAX) {
		f->id[f->calls] = device_id;
		f->ts[f->calls] = ts;
	}
	f->calls++;
	return f->calls == f->fail_at ? -3 : 0;
}

/* The ts reported for device id (-1 if not reported, -2 if reported twice). */
static int64_t flushed_ts(const struct flushed *f, int64_t id)
{
	int64_t ts = -1;
	for (int i = 0; i < f->calls && i < FLUSH_MAX; i++)
		if (f->id[i] == id)
			ts = ts == -1 ? f->ts[i] : -2;
	return ts;
}

static void test_put_get(void)
{
	struct devcache *c = devcache_create(16);
	CHECK(c != NULL);
	CHECK_EQ_INT(devcache_count(c), 0);
	CHECK(devcache_get(c, "s1", "lift-1") == NULL);
	struct store_device in = dev(1, SP_DEV_LIFT);
	struct store_device *p = devcache_put(c, "s1", "lift-1", &in);
	CHECK(p != NULL);
	CHECK(p != &in); /* a copy */
	CHECK(devcache_get(c, "s1", "lift-1") == p);
	CHECK_EQ_INT(devcache_count(c), 1);
	struct store_device in2 = dev(2, SP_DEV_CHARGER);
	struct store_device *q = devcache_put(c, "s2", "lift-1", &in2); /* same dev, other site */
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
	struct store_device *p = devcache_put(c, "s", "d", &a);
	struct store_device b = dev(7, SP_DEV_CHARGER);
	b.ports = 16;
	struct store_device *q = devcache_put(c, "s", "d", &b);
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
	struct store_device *pa = devcache_put(c, "s", "a", &a);
	struct store_device *pb = devcache_put(c, "s", "b", &b);
	devcache_put(c, "s", "x", &x); /* never seen */
	devcache_seen(c, pa, T0 + 100);
	devcache_seen(c, pa, T0 + 300);
	devcache_seen(c, pb, T0 + 50);
	devcache_seen(c, pa, T0 + 200); /* older: the newest stays */
	struct flushed f = {0};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 2); /* once per device */
	CHECK_EQ_INT(flushed_ts(&f, 1), T0 + 300);
	CHECK_EQ_INT(flushed_ts(&f, 2), T0 + 50);
	CHECK_EQ_INT(flushed_ts(&f, 3), -1);
	/* forgotten after the flush */
	struct flushed g = {0};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &g), 0);
	CHECK_EQ_INT(g.calls, 0);
	/* the next batch starts afresh (an older ts than the last batch is reported as is) */
	devcache_seen(c, pa, T0 + 10);
	struct flushed h = {0};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &h), 0);
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
	struct store_device *pa = devcache_put(c, "s", "a", &a);
	devcache_seen(c, pa, T0 + 5);
	a.kind = SP_DEV_LIFT; /* a birth arrives in the same batch */
	CHECK(devcache_put(c, "s", "a", &a) == pa);
	devcache_seen(c, pa, T0 + 6);
	struct flushed f = {0};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 1);
	CHECK_EQ_INT(flushed_ts(&f, 1), T0 + 6);
	devcache_destroy(c);
}

static void test_flush_error(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device d[3] = {dev(1, SP_DEV_LIFT), dev(2, SP_DEV_LIFT), dev(3, SP_DEV_LIFT)};
	const char *names[3] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++)
		devcache_seen(c, devcache_put(c, "s", names[i], &d[i]), T0 + i + 1);
	struct flushed f = {.fail_at = 1};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &f), -3);
	CHECK_EQ_INT(f.calls, 1); /* no more calls after an error */
	/* the list was emptied anyway (the caller rolls back and clears) */
	struct flushed g = {0};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &g), 0);
	CHECK_EQ_INT(g.calls, 0);
	/* and a device seen again is reported again, once */
	devcache_seen(c, devcache_get(c, "s", "b"), T0 + 9);
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &g), 0);
	CHECK_EQ_INT(g.calls, 1);
	CHECK_EQ_INT(flushed_ts(&g, 2), T0 + 9);
	devcache_destroy(c);
}

static void test_clear(void)
{
	struct devcache *c = devcache_create(8);
	struct store_device a = dev(1, SP_DEV_LIFT), b = dev(2, SP_DEV_LIFT);
	struct store_device *pa = devcache_put(c, "s", "a", &a);
	devcache_put(c, "s", "b", &b);
	devcache_seen(c, pa, T0);
	devcache_clear(c);
	CHECK_EQ_INT(devcache_count(c), 0);
	CHECK(devcache_get(c, "s", "a") == NULL);
	CHECK(devcache_get(c, "s", "b") == NULL);
	struct flushed f = {0};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 0);
	/* usable again; a re-added device starts unseen */
	struct store_device *pb = devcache_put(c, "s", "b", &b);
	CHECK(pb != NULL);
	CHECK_EQ_INT(devcache_count(c), 1);
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 0);
	devcache_seen(c, pb, T0 + 1);
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 1);
	CHECK_EQ_INT(flushed_ts(&f, 2), T0 + 1);
	devcache_destroy(c);
}

static void test_full_and_trim(void)
{
	struct devcache *c = devcache_create(4);
	char name[16];
	struct store_device *p[4];
	for (int i = 0; i < 4; i++) {
		struct store_device d = dev(i + 1, SP_DEV_CHARGER);
		snprintf(name, sizeof(name), "d%d", i);
		p[i] = devcache_put(c, "s", name, &d);
		CHECK(p[i] != NULL);
		if (i < 3) {
			devcache_trim(c); /* not full: keeps everything */
			CHECK_EQ_INT(devcache_count(c), (size_t)i + 1);
		}
	}
	CHECK_EQ_INT(devcache_count(c), 4);
	/* full: a new device is not cached, existing ones still are and can be replaced */
	struct store_device e = dev(5, SP_DEV_LIFT);
	CHECK(devcache_put(c, "s", "d4", &e) == NULL);
	CHECK(devcache_get(c, "s", "d4") == NULL);
	CHECK_EQ_INT(devcache_count(c), 4);
	struct store_device r = dev(1, SP_DEV_LIFT);
	CHECK(devcache_put(c, "s", "d0", &r) == p[0]);
	CHECK_EQ_INT(p[0]->kind, SP_DEV_LIFT);
	/* full but a seen ts is pending: trim keeps everything */
	devcache_seen(c, p[2], T0 + 2);
	devcache_trim(c);
	CHECK_EQ_INT(devcache_count(c), 4);
	CHECK(devcache_get(c, "s", "d2") == p[2]);
	struct flushed f = {0};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush, &f), 0);
	CHECK_EQ_INT(f.calls, 1);
	CHECK_EQ_INT(flushed_ts(&f, 3), T0 + 2);
	/* full and nothing pending: trim empties it */
	devcache_trim(c);
	CHECK_EQ_INT(devcache_count(c), 0);
	CHECK(devcache_get(c, "s", "d0") == NULL);
	CHECK(devcache_put(c, "s", "d4", &e) != NULL);
	CHECK_EQ_INT(devcache_count(c), 1);
	devcache_destroy(c);
}

/* Counts flushed devices and whether they came in ascending id order. */
struct ordered {
	int calls;
	int64_t last_id;
	bool ascending;
};

static int on_flush_ordered(void *ctx, int64_t device_id, int64_t ts)
{
	struct ordered *o = ctx;
	(void)ts;
	if (device_id <= o->last_id)
		o->ascending = false;
	o->last_id = device_id;
	o->calls++;
	return 0;
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
		first[i] = devcache_put(c, site, name, &d);
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
			devcache_seen(c, d, T0 + i);
	}
	CHECK_EQ_INT(found, N);
	CHECK_EQ_INT(stable, N);
	struct ordered o = {0, 0, true};
	CHECK_EQ_INT(devcache_flush_seen(c, on_flush_ordered, &o), 0);
	CHECK_EQ_INT(o.calls, N / 10);
	CHECK(o.ascending);
	/* the key is the pair: a site that is a prefix of another does not match */
	CHECK(devcache_get(c, "site-", "1dev-1") == NULL);
	devcache_destroy(c);
}

int main(void)
{
	RUN(test_put_get);
	RUN(test_replace);
	RUN(test_seen_flush);
	RUN(test_seen_survives_replace);
	RUN(test_flush_error);
	RUN(test_clear);
	RUN(test_full_and_trim);
	RUN(test_many_devices);
	HARNESS_EXIT();
}
