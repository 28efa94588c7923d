/*
 * test_rangeset.c - the bounded set of int64 ranges: merging on add, contains,
 * remove (split, ends, single), pop_first, drop_below, the max-ranges limit,
 * copy, and the text form (round trip and rejection of garbage).
 */
#include "harness.h"

#include "rangeset.h"
#include "sitepulse/buf.h"
#include "sitepulse/error.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The set's text form ("" when empty), in a static buffer. */
static const char *text(const struct rangeset *s)
{
	static char out[4096];
	struct sp_buf b = SP_BUF_INIT(0);
	out[0] = '\0';
	if (rangeset_format(s, &b) == 0 && b.data)
		snprintf(out, sizeof(out), "%s", b.data);
	else if (b.data == NULL && s->n != 0)
		snprintf(out, sizeof(out), "(format failed)");
	sp_buf_free(&b);
	return out;
}

static void test_add_disjoint_sorted(void)
{
	struct rangeset s;
	rangeset_init(&s, 16);
	CHECK_EQ_INT(rangeset_add(&s, 20, 25), 0);
	CHECK_EQ_INT(rangeset_add(&s, 1, 3), 0);
	CHECK_EQ_INT(rangeset_add(&s, 10, 10), 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_STR(text(&s), "1-3,10-10,20-25");
	rangeset_free(&s);
}

static void test_add_merges_adjacent(void)
{
	struct rangeset s;
	rangeset_init(&s, 16);
	CHECK_EQ_INT(rangeset_add(&s, 5, 5), 0);
	CHECK_EQ_INT(rangeset_add(&s, 6, 6), 0);  /* touches on the right */
	CHECK_EQ_INT(rangeset_add(&s, 4, 4), 0);  /* touches on the left */
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_STR(text(&s), "4-6");
	CHECK_EQ_INT(rangeset_add(&s, 8, 9), 0);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_INT(rangeset_add(&s, 7, 7), 0);  /* bridges two ranges */
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_STR(text(&s), "4-9");
	rangeset_free(&s);
}

static void test_add_merges_overlapping(void)
{
	struct rangeset s;
	rangeset_init(&s, 16);
	CHECK_EQ_INT(rangeset_add(&s, 1, 2), 0);
	CHECK_EQ_INT(rangeset_add(&s, 5, 6), 0);
	CHECK_EQ_INT(rangeset_add(&s, 9, 10), 0);
	CHECK_EQ_INT(rangeset_add(&s, 20, 30), 0);
	CHECK_EQ_INT(s.n, 4);
	/* covers 5-6 and 9-10 partly and beyond; leaves 1-2 and 20-30 */
	CHECK_EQ_INT(rangeset_add(&s, 4, 12), 0);
	CHECK_EQ_STR(text(&s), "1-2,4-12,20-30");
	/* inside an existing range: no change */
	CHECK_EQ_INT(rangeset_add(&s, 22, 25), 0);
	CHECK_EQ_STR(text(&s), "1-2,4-12,20-30");
	/* swallows everything */
	CHECK_EQ_INT(rangeset_add(&s, 0, 100), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_STR(text(&s), "0-100");
	rangeset_free(&s);
}

static void test_contains(void)
{
	struct rangeset s;
	rangeset_init(&s, 16);
	CHECK(!rangeset_contains(&s, 0));
	rangeset_add(&s, 10, 20);
	rangeset_add(&s, 30, 30);
	rangeset_add(&s, 40, 45);
	CHECK(!rangeset_contains(&s, 9));
	CHECK(rangeset_contains(&s, 10));
	CHECK(rangeset_contains(&s, 15));
	CHECK(rangeset_contains(&s, 20));
	CHECK(!rangeset_contains(&s, 21));
	CHECK(!rangeset_contains(&s, 29));
	CHECK(rangeset_contains(&s, 30));
	CHECK(!rangeset_contains(&s, 31));
	CHECK(rangeset_contains(&s, 45));
	CHECK(!rangeset_contains(&s, 46));
	CHECK(!rangeset_contains(&s, -5));
	rangeset_free(&s);
}

static void test_remove_splits(void)
{
	struct rangeset s;
	rangeset_init(&s, 16);
	rangeset_add(&s, 1, 10);
	CHECK_EQ_INT(rangeset_remove(&s, 5), 0);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_STR(text(&s), "1-4,6-10");
	CHECK(!rangeset_contains(&s, 5));
	CHECK(rangeset_contains(&s, 4));
	CHECK(rangeset_contains(&s, 6));
	rangeset_free(&s);
}

static void test_remove_ends_and_single(void)
{
	struct rangeset s;
	rangeset_init(&s, 16);
	rangeset_add(&s, 1, 5);
	rangeset_add(&s, 8, 8);
	rangeset_add(&s, 10, 12);
	CHECK_EQ_INT(rangeset_remove(&s, 1), 0); /* low end */
	CHECK_EQ_STR(text(&s), "2-5,8-8,10-12");
	CHECK_EQ_INT(rangeset_remove(&s, 5), 0); /* high end */
	CHECK_EQ_STR(text(&s), "2-4,8-8,10-12");
	CHECK_EQ_INT(rangeset_remove(&s, 8), 0); /* single */
	CHECK_EQ_STR(text(&s), "2-4,10-12");
	CHECK_EQ_INT(s.n, 2);
	/* absent values: no change, no error */
	CHECK_EQ_INT(rangeset_remove(&s, 8), 0);
	CHECK_EQ_INT(rangeset_remove(&s, 100), 0);
	CHECK_EQ_INT(rangeset_remove(&s, -1), 0);
	CHECK_EQ_STR(text(&s), "2-4,10-12");
	rangeset_free(&s);
}

static void test_pop_first(void)
{
	struct rangeset s;
	rangeset_init(&s, 16);
	rangeset_pop_first(&s); /* empty: no-op */
	CHECK_EQ_INT(s.n, 0);
	rangeset_add(&s, 1, 2);
	rangeset_add(&s, 4, 6);
	rangeset_add(&s, 9, 9);
	rangeset_pop_first(&s);
	CHECK_EQ_STR(text(&s), "4-6,9-9");
	rangeset_pop_first(&s);
	CHECK_EQ_STR(text(&s), "9-9");
	rangeset_pop_first(&s);
	CHECK_EQ_INT(s.n, 0);
	CHECK_EQ_STR(text(&s), "");
	rangeset_free(&s);
}

static void test_drop_below(void)
{
	struct rangeset s;
	rangeset_init(&s, 16);
	rangeset_add(&s, 1, 3);
	rangeset_add(&s, 5, 10);
	rangeset_add(&s, 20, 25);
	rangeset_drop_below(&s, 0); /* nothing below */
	CHECK_EQ_STR(text(&s), "1-3,5-10,20-25");
	rangeset_drop_below(&s, 7); /* drops 1-3, trims 5-10 */
	CHECK_EQ_STR(text(&s), "7-10,20-25");
	rangeset_drop_below(&s, 11); /* drops a whole range exactly */
	CHECK_EQ_STR(text(&s), "20-25");
	rangeset_drop_below(&s, 25);
	CHECK_EQ_STR(text(&s), "25-25");
	rangeset_drop_below(&s, 26);
	CHECK_EQ_INT(s.n, 0);
	rangeset_free(&s);
}

static void test_max_ranges_full(void)
{
	struct rangeset s;
	rangeset_init(&s, 3);
	CHECK_EQ_INT(rangeset_add(&s, 1, 1), 0);
	CHECK_EQ_INT(rangeset_add(&s, 3, 3), 0);
	CHECK_EQ_INT(rangeset_add(&s, 5, 5), 0);
	CHECK_EQ_INT(rangeset_add(&s, 7, 7), SP_EFULL);
	CHECK_EQ_INT(rangeset_add(&s, -10, -8), SP_EFULL);
	CHECK_EQ_STR(text(&s), "1-1,3-3,5-5"); /* unchanged by the failures */
	/* merging needs no new slot: still allowed when full */
	CHECK_EQ_INT(rangeset_add(&s, 2, 2), 0);
	CHECK_EQ_STR(text(&s), "1-3,5-5");
	CHECK_EQ_INT(rangeset_add(&s, 6, 6), 0);
	CHECK_EQ_STR(text(&s), "1-3,5-6");
	/* a split needs one more range */
	CHECK_EQ_INT(rangeset_add(&s, 10, 20), 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_INT(rangeset_remove(&s, 15), SP_EFULL);
	CHECK_EQ_STR(text(&s), "1-3,5-6,10-20");
	/* removing an end or a single never needs room */
	CHECK_EQ_INT(rangeset_remove(&s, 20), 0);
	CHECK_EQ_INT(rangeset_remove(&s, 1), 0);
	CHECK_EQ_STR(text(&s), "2-3,5-6,10-19");
	rangeset_free(&s);
}

static void test_many_ranges_grow(void)
{
	struct rangeset s;
	rangeset_init(&s, 1000);
	for (int64_t i = 0; i < 1000; i++)
		CHECK_EQ_INT(rangeset_add(&s, i * 10, i * 10 + 2), 0);
	CHECK_EQ_INT(s.n, 1000);
	CHECK_EQ_INT(rangeset_add(&s, 100000, 100000), SP_EFULL);
	int bad = 0;
	for (int64_t i = 0; i < 1000; i++)
		if (!rangeset_contains(&s, i * 10 + 1) || rangeset_contains(&s, i * 10 + 5))
			bad++;
	CHECK_EQ_INT(bad, 0);
	rangeset_free(&s);
}

static void test_copy(void)
{
	struct rangeset src, dst;
	rangeset_init(&src, 7);
	rangeset_init(&dst, 100);
	rangeset_add(&dst, 500, 600); /* replaced by the copy */
	for (int64_t i = 0; i < 4; i++)
		rangeset_add(&src, i * 3, i * 3 + 1);
	CHECK_EQ_INT(rangeset_copy(&dst, &src), 0);
	CHECK_EQ_INT(dst.n, 4);
	CHECK_EQ_INT(dst.max, 7);
	CHECK_EQ_STR(text(&dst), "0-1,3-4,6-7,9-10");
	/* independent storage */
	rangeset_add(&src, 2, 2);
	rangeset_pop_first(&src);
	CHECK_EQ_STR(text(&dst), "0-1,3-4,6-7,9-10");
	/* copying an empty set empties the destination */
	struct rangeset empty;
	rangeset_init(&empty, 7);
	CHECK_EQ_INT(rangeset_copy(&dst, &empty), 0);
	CHECK_EQ_INT(dst.n, 0);
	rangeset_free(&empty);
	rangeset_free(&src);
	rangeset_free(&dst);
}

/* Copies of sets with more ranges than the destination has room for (run in a child: may hang). */
static void copy_needs_growth(void)
{
	struct rangeset src, fresh, small;
	rangeset_init(&src, 100);
	rangeset_init(&fresh, 100);
	rangeset_init(&small, 100);
	rangeset_add(&small, 500, 600); /* some capacity, less than needed */
	for (int64_t i = 0; i < 40; i++)
		rangeset_add(&src, i * 3, i * 3 + 1);
	CHECK_EQ_INT(rangeset_copy(&fresh, &src), 0);
	CHECK_EQ_INT(fresh.n, 40);
	CHECK_EQ_STR(text(&fresh), text(&src));
	CHECK_EQ_INT(rangeset_copy(&small, &src), 0);
	CHECK_EQ_INT(small.n, 40);
	CHECK(rangeset_contains(&small, 117) && !rangeset_contains(&small, 500));
	rangeset_free(&src);
	rangeset_free(&fresh);
	rangeset_free(&small);
}

static void test_copy_grows_destination(void)
{
	CHECK(in_child(copy_needs_growth, 3000));
}

static void test_clear(void)
{
	struct rangeset s;
	rangeset_init(&s, 4);
	rangeset_add(&s, 1, 1);
	rangeset_add(&s, 3, 3);
	rangeset_clear(&s);
	CHECK_EQ_INT(s.n, 0);
	CHECK(!rangeset_contains(&s, 1));
	CHECK_EQ_INT(rangeset_add(&s, 9, 9), 0);
	CHECK_EQ_STR(text(&s), "9-9");
	rangeset_free(&s);
}

static void test_format_parse_round_trip(void)
{
	struct rangeset s, t;
	rangeset_init(&s, 64);
	rangeset_init(&t, 64);
	CHECK_EQ_STR(text(&s), "");
	rangeset_add(&s, -5, -3);
	rangeset_add(&s, 7, 7);
	rangeset_add(&s, 9, 1000);
	rangeset_add(&s, 9007199254740993LL, 9007199254741000LL);
	const char *want = "-5--3,7-7,9-1000,9007199254740993-9007199254741000";
	CHECK_EQ_STR(text(&s), want);
	CHECK_EQ_INT(rangeset_parse(&t, want), 0);
	CHECK_EQ_INT(t.n, 4);
	CHECK_EQ_STR(text(&t), want);
	CHECK(rangeset_contains(&t, -4));
	CHECK(rangeset_contains(&t, 9007199254740999LL));
	CHECK(!rangeset_contains(&t, 8));
	/* parsing replaces the content */
	CHECK_EQ_INT(rangeset_parse(&t, "1-2"), 0);
	CHECK_EQ_STR(text(&t), "1-2");
	CHECK_EQ_INT(rangeset_parse(&t, ""), 0);
	CHECK_EQ_INT(t.n, 0);
	/* unsorted or touching input is normalised */
	CHECK_EQ_INT(rangeset_parse(&t, "10-12,1-3,4-5,11-20"), 0);
	CHECK_EQ_STR(text(&t), "1-5,10-20");
	rangeset_free(&s);
	rangeset_free(&t);
}

static void test_parse_rejects_garbage(void)
{
	static const char *const bad[] = {"1-", "5-3", "a-b", "1-2,,", "-", "1", "1-2x",
					  "1-2;3-4", ",1-2", "99999999999999999999-1"};
	struct rangeset s;
	rangeset_init(&s, 64);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = rangeset_parse(&s, bad[i]);
		if (rc != SP_EINVAL)
			fprintf(stderr, "  parse(\"%s\") = %d\n", bad[i], rc);
		CHECK_EQ_INT(rc, SP_EINVAL);
	}
	rangeset_free(&s);
}

static void test_parse_rejects_too_many(void)
{
	struct rangeset s;
	rangeset_init(&s, 2);
	CHECK_EQ_INT(rangeset_parse(&s, "1-1,3-3"), 0);
	CHECK_EQ_INT(rangeset_parse(&s, "1-1,3-3,5-5"), SP_EINVAL);
	rangeset_free(&s);
}

int main(void)
{
	RUN(test_add_disjoint_sorted);
	RUN(test_add_merges_adjacent);
	RUN(test_add_merges_overlapping);
	RUN(test_contains);
	RUN(test_remove_splits);
	RUN(test_remove_ends_and_single);
	RUN(test_pop_first);
	RUN(test_drop_below);
	RUN(test_max_ranges_full);
	RUN(test_many_ranges_grow);
	RUN(test_copy);
	RUN(test_copy_grows_destination);
	RUN(test_clear);
	RUN(test_format_parse_round_trip);
	RUN(test_parse_rejects_garbage);
	RUN(test_parse_rejects_too_many);
	HARNESS_EXIT();
}
