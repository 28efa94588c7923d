/*
 * test_holdlog.c - a batch's hold events fold into one write per condition:
 * begun and ended within the batch writes nothing; ended after an earlier
 * batch deletes; still pending upserts with the newest since; conditions
 * are told apart by device, rule, port and fault code.
 */
#include "harness.h"

#include "holdlog.h"

#include "sitepulse/error.h"

#include <stdint.h>

struct writes {
	int n;
	char what[16][80];
	int fail_at;   /* 1-based call that fails, 0 = none */
};

static int on_put(void *ctx, int64_t dev, int rule, int32_t port, const char *code, int64_t since)
{
	struct writes *w = ctx;
	if (w->n < 16)
		snprintf(w->what[w->n], sizeof(w->what[0]), "put %lld/%d/%d/%s@%lld", (long long)dev,
			 rule, (int)port, code, (long long)since);
	w->n++;
	return w->fail_at == w->n ? SP_EIO : 0;
}

static int on_del(void *ctx, int64_t dev, int rule, int32_t port, const char *code)
{
	struct writes *w = ctx;
	if (w->n < 16)
		snprintf(w->what[w->n], sizeof(w->what[0]), "del %lld/%d/%d/%s", (long long)dev, rule,
			 (int)port, code);
	w->n++;
	return w->fail_at == w->n ? SP_EIO : 0;
}

static void test_folding(void)
{
	struct holdlog *h = holdlog_create();
	struct writes w = {0};
	CHECK(h != NULL);
	if (h == NULL)
		return;
	/* 1: begun and ended within the batch, twice: nothing */
	CHECK_EQ_INT(holdlog_begin(h, 1, 0, 0, "", 100), 0);
	CHECK_EQ_INT(holdlog_end(h, 1, 0, 0, ""), 0);
	CHECK_EQ_INT(holdlog_begin(h, 1, 0, 0, "", 300), 0);
	CHECK_EQ_INT(holdlog_end(h, 1, 0, 0, ""), 0);
	/* 2: ended (begun in an earlier batch), begun again: the new since */
	CHECK_EQ_INT(holdlog_end(h, 2, 5, 3, ""), 0);
	CHECK_EQ_INT(holdlog_begin(h, 2, 5, 3, "", 700), 0);
	/* 2, another port: ended only: a delete */
	CHECK_EQ_INT(holdlog_end(h, 2, 5, 4, ""), 0);
	/* 3: two fault codes are two conditions */
	CHECK_EQ_INT(holdlog_begin(h, 3, 8, 0, "E1", 10), 0);
	CHECK_EQ_INT(holdlog_begin(h, 3, 8, 0, "E2", 20), 0);
	CHECK_EQ_INT(holdlog_end(h, 3, 8, 0, "E1"), 0);
	CHECK_EQ_INT(holdlog_count(h), 10);
	CHECK_EQ_INT(holdlog_flush(h, on_put, on_del, &w), 0);
	CHECK_EQ_INT(w.n, 3);
	CHECK_EQ_STR(w.what[0], "put 2/5/3/@700");
	CHECK_EQ_STR(w.what[1], "del 2/5/4/");
	CHECK_EQ_STR(w.what[2], "put 3/8/0/E2@20");
	CHECK_EQ_INT(holdlog_count(h), 0);
	/* the next batch starts afresh: an end now means a hold written before */
	memset(&w, 0, sizeof(w));
	CHECK_EQ_INT(holdlog_end(h, 2, 5, 3, ""), 0);
	CHECK_EQ_INT(holdlog_flush(h, on_put, on_del, &w), 0);
	CHECK_EQ_INT(w.n, 1);
	CHECK_EQ_STR(w.what[0], "del 2/5/3/");
	holdlog_destroy(h);
}

/*
 * A hold moved (its device's clock set back): written again with its new
 * since; deleted if it ends in the same batch; written once if it began in
 * the batch; nothing if it began and ended there.
 */
static void test_move(void)
{
	struct holdlog *h = holdlog_create();
	struct writes w = {0};
	CHECK(h != NULL);
	if (h == NULL)
		return;
	CHECK_EQ_INT(holdlog_move(h, 1, 17, 1, "", 500), 0);       /* held before, moved */
	CHECK_EQ_INT(holdlog_move(h, 2, 17, 1, "", 600), 0);       /* held before, moved, ended */
	CHECK_EQ_INT(holdlog_end(h, 2, 17, 1, ""), 0);
	CHECK_EQ_INT(holdlog_begin(h, 3, 17, 1, "", 900), 0);      /* begun here, moved */
	CHECK_EQ_INT(holdlog_move(h, 3, 17, 1, "", 700), 0);
	CHECK_EQ_INT(holdlog_begin(h, 4, 17, 1, "", 900), 0);      /* begun here, moved, ended */
	CHECK_EQ_INT(holdlog_move(h, 4, 17, 1, "", 700), 0);
	CHECK_EQ_INT(holdlog_end(h, 4, 17, 1, ""), 0);
	CHECK_EQ_INT(holdlog_flush(h, on_put, on_del, &w), 0);
	CHECK_EQ_INT(w.n, 3);
	CHECK_EQ_STR(w.what[0], "put 1/17/1/@500");
	CHECK_EQ_STR(w.what[1], "del 2/17/1/");
	CHECK_EQ_STR(w.what[2], "put 3/17/1/@700");
	holdlog_destroy(h);
}

static void test_failure_and_clear(void)
{
	struct holdlog *h = holdlog_create();
	struct writes w = {.fail_at = 1};
	CHECK(h != NULL);
	if (h == NULL)
		return;
	CHECK_EQ_INT(holdlog_begin(h, 1, 0, 0, "", 1), 0);
	CHECK_EQ_INT(holdlog_begin(h, 2, 0, 0, "", 2), 0);
	CHECK_EQ_INT(holdlog_flush(h, on_put, on_del, &w), SP_EIO);
	CHECK_EQ_INT(w.n, 1); /* stops at the first error */
	CHECK_EQ_INT(holdlog_count(h), 0);
	CHECK_EQ_INT(holdlog_begin(h, 1, 0, 0, "X", 1), 0);
	holdlog_clear(h); /* a rolled-back batch: nothing of it is written later */
	memset(&w, 0, sizeof(w));
	CHECK_EQ_INT(holdlog_flush(h, on_put, on_del, &w), 0);
	CHECK_EQ_INT(w.n, 0);
	holdlog_destroy(h);
}

/* Many devices, many flips: one write per condition that ends pending or ended an old hold. */
static void test_many(void)
{
	struct holdlog *h = holdlog_create();
	struct writes w = {0};
	CHECK(h != NULL);
	if (h == NULL)
		return;
	for (int64_t d = 0; d < 5000; d++)
		for (int k = 0; k < 7; k++) /* begin, end, begin, ... ends on a begin */
			CHECK_EQ_INT(k % 2 ? holdlog_end(h, d, 1, 2, "") : holdlog_begin(h, d, 1, 2, "", k),
				     0);
	CHECK_EQ_INT(holdlog_flush(h, on_put, on_del, &w), 0);
	CHECK_EQ_INT(w.n, 5000);
	holdlog_destroy(h);
}

int main(void)
{
	RUN(test_folding);
	RUN(test_move);
	RUN(test_failure_and_clear);
	RUN(test_many);
	HARNESS_EXIT();
}
