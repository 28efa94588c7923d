/*
 * test_seqtrack.c - per-agent sequence tracking: acked advancing in and out
 * of order, duplicate and late verdicts, batches (commit and abort), gap
 * expiry, the out-of-order bound, persistence text forms, ack pacing with a
 * fake publisher and explicit clock values, and the agent hash table.
 */
#include "harness.h"

#include "seqtrack.h"
#include "sitepulse/buf.h"
#include "sitepulse/error.h"
#include "sitepulse/ids.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0 1764320000000LL
#define WINDOW 10000LL /* gap window of the trackers under test, ms */

/* ---------------------------------------------------------------- helpers */

/* The agent's out-of-order set as text, in a static buffer (one of two, alternating). */
static const char *done_text(const struct seq_agent *a)
{
	static char out[2][8192];
	static int which;
	char *o = out[which ^= 1];
	struct sp_buf b = SP_BUF_INIT(0);
	o[0] = '\0';
	if (seq_agent_format_done(a, &b) != 0)
		snprintf(o, sizeof(out[0]), "(format failed)");
	else if (b.data)
		snprintf(o, sizeof(out[0]), "%s", b.data);
	sp_buf_free(&b);
	return o;
}

/* The agent's declared-missing set as text, in a static buffer (one of two, alternating). */
static const char *missing_text(const struct seq_agent *a)
{
	static char out[2][8192];
	static int which;
	char *o = out[which ^= 1];
	struct sp_buf b = SP_BUF_INIT(0);
	o[0] = '\0';
	if (seq_agent_format_missing(a, &b) != 0)
		snprintf(o, sizeof(out[0]), "(format failed)");
	else if (b.data)
		snprintf(o, sizeof(out[0]), "%s", b.data);
	sp_buf_free(&b);
	return o;
}

/* Marks seqs [from, to] by `step` in one batch at now and commits; returns the missing total. */
static int64_t mark_range(struct seqtrack *t, struct seq_agent *a, int64_t from, int64_t to,
			  int64_t step, int64_t now)
{
	int64_t missing = 0;
	for (int64_t s = from; s <= to; s += step) {
		int64_t rc = seqtrack_mark(t, a, s, now);
		if (rc < 0)
			return rc;
		missing += rc;
	}
	seqtrack_commit(t, now);
	return missing;
}

/* A fake ack publisher: records every call; fails while `fail` > 0 (counting down). */
#define PUB_MAX 64
struct pubs {
	int calls;
	int fail;
	int attempts;
	char site[PUB_MAX][SP_ID_MAX + 1];
	char agent[PUB_MAX][SP_ID_MAX + 1];
	int64_t seq[PUB_MAX];
};

static int publish(void *ctx, const char *site, const char *agent, int64_t seq)
{
	struct pubs *p = ctx;
	p->attempts++;
	if (p->fail > 0) {
		p->fail--;
		return -1;
	}
	if (p->calls < PUB_MAX) {
		snprintf(p->site[p->calls], sizeof(p->site[0]), "%s", site);
		snprintf(p->agent[p->calls], sizeof(p->agent[0]), "%s", agent);
		p->seq[p->calls] = seq;
	}
	p->calls++;
	return 0;
}

/* ---------------------------------------------------------------- acked and verdicts */

static void test_add_and_accessors(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	CHECK(t != NULL);
	CHECK(seqtrack_find(t, "s1", "a1") == NULL);
	struct seq_agent *a = seqtrack_add(t, "s1", "a1", 42);
	CHECK(a != NULL);
	CHECK(seqtrack_find(t, "s1", "a1") == a);
	CHECK(seqtrack_find(t, "s1", "a2") == NULL);
	CHECK(seqtrack_find(t, "s2", "a1") == NULL);
	CHECK_EQ_STR(seq_agent_site(a), "s1");
	CHECK_EQ_STR(seq_agent_name(a), "a1");
	CHECK_EQ_INT(seq_agent_id(a), 42);
	CHECK_EQ_INT(seq_agent_acked(a), 0);
	CHECK_EQ_INT(seq_agent_gap_since(a), 0);
	CHECK_EQ_STR(done_text(a), "");
	CHECK_EQ_STR(missing_text(a), "");
	CHECK_EQ_INT(seqtrack_count(t), 1);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 0);
	seqtrack_destroy(t);
	seqtrack_destroy(NULL);
}

static void test_in_order_advances(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	for (int64_t s = 1; s <= 100; s++) {
		CHECK_EQ_INT(seqtrack_check(a, s), SEQ_NEW);
		CHECK_EQ_INT(seqtrack_mark(t, a, s, T0), 0);
		CHECK_EQ_INT(seq_agent_acked(a), s);
	}
	seqtrack_commit(t, T0);
	CHECK_EQ_INT(seq_agent_acked(a), 100);
	CHECK_EQ_STR(done_text(a), "");
	CHECK_EQ_INT(seq_agent_gap_since(a), 0);
	seqtrack_destroy(t);
}

static void test_out_of_order_advances(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	CHECK(!seqtrack_behind(a, 3)); /* nothing newer handled yet */
	CHECK_EQ_INT(seqtrack_mark(t, a, 3, T0), 0);
	CHECK_EQ_INT(seq_agent_acked(a), 0);
	CHECK_EQ_STR(done_text(a), "3-3");
	/* 1 and 2 now fill a gap behind 3: their records are older than 3's */
	CHECK(seqtrack_behind(a, 1));
	CHECK(seqtrack_behind(a, 2));
	CHECK(!seqtrack_behind(a, 4));
	CHECK_EQ_INT(seq_agent_gap_since(a), T0); /* a gap opened */
	CHECK_EQ_INT(seqtrack_mark(t, a, 1, T0 + 5), 0);
	CHECK_EQ_INT(seq_agent_acked(a), 1);
	CHECK_EQ_STR(done_text(a), "3-3");
	CHECK_EQ_INT(seq_agent_gap_since(a), T0); /* the same gap, still open */
	CHECK_EQ_INT(seqtrack_mark(t, a, 2, T0 + 9), 0);
	CHECK_EQ_INT(seq_agent_acked(a), 3);
	CHECK_EQ_STR(done_text(a), "");
	CHECK(seqtrack_behind(a, 3)); /* at or below the ack: behind */
	CHECK(!seqtrack_behind(a, 4)); /* the next in order */
	CHECK_EQ_INT(seq_agent_gap_since(a), 0); /* closed */
	/* a longer run: 10 9 8 ... 4 */
	for (int64_t s = 10; s >= 5; s--)
		seqtrack_mark(t, a, s, T0 + 10);
	CHECK_EQ_INT(seq_agent_acked(a), 3);
	CHECK_EQ_STR(done_text(a), "5-10");
	seqtrack_mark(t, a, 4, T0 + 10);
	CHECK_EQ_INT(seq_agent_acked(a), 10);
	seqtrack_commit(t, T0 + 10);
	seqtrack_destroy(t);
}

static void test_duplicates(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	mark_range(t, a, 1, 5, 1, T0);
	seqtrack_mark(t, a, 8, T0);
	seqtrack_mark(t, a, 9, T0);
	seqtrack_commit(t, T0);
	CHECK_EQ_INT(seq_agent_acked(a), 5);
	CHECK_EQ_INT(seqtrack_check(a, 1), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 5), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 6), SEQ_NEW);
	CHECK_EQ_INT(seqtrack_check(a, 7), SEQ_NEW);
	CHECK_EQ_INT(seqtrack_check(a, 8), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 9), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 10), SEQ_NEW);
	/* marking a duplicate again changes nothing */
	CHECK_EQ_INT(seqtrack_mark(t, a, 3, T0), 0);
	CHECK_EQ_INT(seqtrack_mark(t, a, 8, T0), 0);
	seqtrack_commit(t, T0);
	CHECK_EQ_INT(seq_agent_acked(a), 5);
	CHECK_EQ_STR(done_text(a), "8-9");
	CHECK_EQ_STR(missing_text(a), "");
	seqtrack_destroy(t);
}

/* ---------------------------------------------------------------- batches */

static void test_touched_list(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct seq_agent *b = seqtrack_add(t, "s", "b", 2);
	struct seq_agent *c = seqtrack_add(t, "s", "c", 3);
	CHECK(seqtrack_first_touched(t) == NULL);
	seqtrack_mark(t, a, 1, T0);
	seqtrack_mark(t, c, 1, T0);
	seqtrack_mark(t, a, 2, T0);
	seqtrack_mark(t, a, 3, T0);
	int na = 0, nb = 0, nc = 0, n = 0;
	for (struct seq_agent *x = seqtrack_first_touched(t); x && n < 10;
	     x = seqtrack_next_touched(x), n++) {
		na += x == a;
		nb += x == b;
		nc += x == c;
	}
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(na, 1);
	CHECK_EQ_INT(nb, 0);
	CHECK_EQ_INT(nc, 1);
	seqtrack_commit(t, T0);
	CHECK(seqtrack_first_touched(t) == NULL);
	seqtrack_destroy(t);
}

/* How many agents the unfolded list holds, and whether x is among them (bounded walk). */
static int unfolded(struct seqtrack *t, const struct seq_agent *x, bool *has_x)
{
	int n = 0;
	*has_x = false;
	for (struct seq_agent *y = seqtrack_first_unfolded(t); y && n < 10;
	     y = seqtrack_next_unfolded(y), n++)
		*has_x |= y == x;
	return n;
}

/*
 * The unfolded list (the writer's progress log): agents restored, or
 * touched by a committed batch, until seqtrack_folded; not by an aborted one.
 */
static void test_unfolded_list(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct seq_agent *b = seqtrack_add(t, "s", "b", 2);
	struct seq_agent *c = seqtrack_add(t, "s", "c", 3);
	bool has;
	CHECK_EQ_INT(unfolded(t, a, &has), 0);
	CHECK_EQ_INT(seqtrack_restore(t, c, 4, "", "", 0), 0);
	CHECK_EQ_INT(unfolded(t, c, &has), 1);
	CHECK(has && seq_agent_unfolded(c));
	seqtrack_mark(t, b, 1, T0);
	seqtrack_abort(t);
	CHECK_EQ_INT(unfolded(t, b, &has), 1);
	CHECK(!has && !seq_agent_unfolded(b));
	seqtrack_mark(t, a, 1, T0);
	seqtrack_mark(t, c, 5, T0);
	CHECK(!seq_agent_unfolded(a)); /* not before its batch commits */
	seqtrack_commit(t, T0);
	CHECK_EQ_INT(unfolded(t, a, &has), 2); /* c once */
	CHECK(has && seq_agent_unfolded(a) && !seq_agent_unfolded(b));
	seqtrack_folded(t);
	CHECK_EQ_INT(unfolded(t, a, &has), 0);
	CHECK(!seq_agent_unfolded(a) && !seq_agent_unfolded(c));
	seqtrack_mark(t, a, 2, T0);
	seqtrack_commit(t, T0);
	CHECK_EQ_INT(unfolded(t, a, &has), 1);
	CHECK(has);
	seqtrack_destroy(t);
}

static void test_abort_restores(void)
{
	struct seqtrack *t = seqtrack_create(1000);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct seq_agent *b = seqtrack_add(t, "s", "b", 2);
	/* a: acked 5, 4 declared missing, 7 and 9 out of order */
	mark_range(t, a, 1, 3, 1, T0);
	mark_range(t, a, 5, 5, 1, T0);
	CHECK_EQ_INT(seqtrack_expire(t, T0 + 1000), 1);
	seqtrack_commit(t, T0 + 1000);
	mark_range(t, a, 7, 9, 2, T0 + 2000);
	CHECK_EQ_INT(seq_agent_acked(a), 5);
	CHECK_EQ_STR(done_text(a), "7-7,9-9");
	CHECK_EQ_STR(missing_text(a), "4-4");
	CHECK_EQ_INT(seq_agent_gap_since(a), T0 + 2000);
	/* b: acked 2 */
	mark_range(t, b, 1, 2, 1, T0);
	size_t pending = seqtrack_pending_acks(t);

	/* one batch touching a several times (advance, late, out of order, expiry) and b */
	CHECK_EQ_INT(seqtrack_mark(t, a, 6, T0 + 3000), 0);
	CHECK_EQ_INT(seq_agent_acked(a), 7);
	CHECK_EQ_INT(seqtrack_mark(t, a, 4, T0 + 3000), 0);
	CHECK_EQ_INT(seqtrack_mark(t, a, 8, T0 + 3000), 0);
	CHECK_EQ_INT(seq_agent_acked(a), 9);
	CHECK_EQ_INT(seqtrack_mark(t, a, 12, T0 + 3000), 0);
	CHECK_EQ_INT(seqtrack_mark(t, b, 3, T0 + 3000), 0);
	CHECK_EQ_INT(seqtrack_expire(t, T0 + 9000), 2); /* 10-11 */
	CHECK_EQ_INT(seq_agent_acked(a), 12);
	CHECK_EQ_STR(missing_text(a), "10-11");

	seqtrack_abort(t);
	CHECK(seqtrack_first_touched(t) == NULL);
	CHECK_EQ_INT(seq_agent_acked(a), 5);
	CHECK_EQ_STR(done_text(a), "7-7,9-9");
	CHECK_EQ_STR(missing_text(a), "4-4");
	CHECK_EQ_INT(seq_agent_gap_since(a), T0 + 2000);
	CHECK_EQ_INT(seqtrack_check(a, 4), SEQ_LATE);
	CHECK_EQ_INT(seqtrack_check(a, 6), SEQ_NEW);
	CHECK_EQ_INT(seqtrack_check(a, 8), SEQ_NEW);
	CHECK_EQ_INT(seqtrack_check(a, 12), SEQ_NEW);
	CHECK_EQ_INT(seq_agent_acked(b), 2);
	CHECK_EQ_INT(seqtrack_check(b, 3), SEQ_NEW);
	CHECK_EQ_INT(seqtrack_pending_acks(t), pending);

	/* the same batch replayed and committed gives the same result as before the abort */
	seqtrack_mark(t, a, 6, T0 + 4000);
	seqtrack_mark(t, a, 4, T0 + 4000);
	seqtrack_mark(t, a, 8, T0 + 4000);
	seqtrack_commit(t, T0 + 4000);
	CHECK_EQ_INT(seq_agent_acked(a), 9);
	CHECK_EQ_STR(done_text(a), "");
	CHECK_EQ_STR(missing_text(a), "");
	seqtrack_destroy(t);
}

static void test_commit_queues_only_advances(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct seq_agent *b = seqtrack_add(t, "s", "b", 2);
	seqtrack_mark(t, a, 2, T0); /* out of order: no advance */
	seqtrack_mark(t, b, 1, T0);
	seqtrack_commit(t, T0);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 1);
	struct pubs p = {0};
	seqtrack_publish_due(t, T0 + 5000, true, publish, &p);
	CHECK_EQ_INT(p.calls, 1);
	CHECK_EQ_STR(p.agent[0], "b");
	CHECK_EQ_INT(p.seq[0], 1);
	seqtrack_destroy(t);
}

/* ---------------------------------------------------------------- gaps and late arrivals */

static void test_gap_expiry(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct seq_agent *b = seqtrack_add(t, "s", "b", 2);
	mark_range(t, a, 1, 2, 1, T0);
	mark_range(t, a, 6, 7, 1, T0 + 100); /* 3..5 missing since T0 + 100 */
	mark_range(t, b, 1, 1, 1, T0);       /* no gap */
	CHECK_EQ_INT(seq_agent_gap_since(a), T0 + 100);
	CHECK_EQ_INT(seqtrack_expire(t, T0 + 100 + WINDOW - 1), 0);
	CHECK_EQ_INT(seq_agent_acked(a), 2);
	CHECK(seqtrack_first_touched(t) == NULL); /* nothing expired, nothing touched */
	CHECK_EQ_INT(seqtrack_expire(t, T0 + 100 + WINDOW), 3);
	CHECK_EQ_INT(seq_agent_acked(a), 7);
	CHECK_EQ_STR(done_text(a), "");
	CHECK_EQ_STR(missing_text(a), "3-5");
	CHECK_EQ_INT(seq_agent_gap_since(a), 0);
	CHECK_EQ_INT(seq_agent_acked(b), 1);
	CHECK(seqtrack_first_touched(t) == a);
	CHECK(seqtrack_next_touched(a) == NULL);
	seqtrack_commit(t, T0 + 100 + WINDOW);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 2);
	/* nothing more to expire */
	CHECK_EQ_INT(seqtrack_expire(t, T0 + 10 * WINDOW), 0);
	CHECK_EQ_INT(seq_agent_acked(a), 7);
	seqtrack_destroy(t);
}

static void test_late_arrival(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	mark_range(t, a, 1, 1, 1, T0);
	mark_range(t, a, 5, 5, 1, T0);
	CHECK_EQ_INT(seqtrack_expire(t, T0 + WINDOW), 3);
	seqtrack_commit(t, T0 + WINDOW);
	CHECK_EQ_INT(seq_agent_acked(a), 5);
	CHECK_EQ_INT(seqtrack_check(a, 2), SEQ_LATE);
	CHECK_EQ_INT(seqtrack_check(a, 3), SEQ_LATE);
	CHECK_EQ_INT(seqtrack_check(a, 4), SEQ_LATE);
	CHECK_EQ_INT(seqtrack_check(a, 1), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 5), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_mark(t, a, 3, T0 + WINDOW + 1), 0);
	seqtrack_commit(t, T0 + WINDOW + 1);
	CHECK_EQ_INT(seqtrack_check(a, 3), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 2), SEQ_LATE);
	CHECK_EQ_INT(seqtrack_check(a, 4), SEQ_LATE);
	CHECK_EQ_STR(missing_text(a), "2-2,4-4");
	CHECK_EQ_INT(seq_agent_acked(a), 5);
	seqtrack_mark(t, a, 2, T0 + WINDOW + 2);
	seqtrack_mark(t, a, 4, T0 + WINDOW + 2);
	seqtrack_commit(t, T0 + WINDOW + 2);
	CHECK_EQ_INT(seqtrack_check(a, 2), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 4), SEQ_DUPLICATE);
	CHECK_EQ_STR(missing_text(a), "");
	seqtrack_destroy(t);
}

static void test_scattered_beyond_max_ranges(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	int64_t total = 0;
	bool failed = false;
	/* 2, 4, ..., 2 * MAX: one out-of-order range each, the set is then full */
	for (int64_t k = 1; k <= SEQTRACK_MAX_RANGES; k++) {
		int64_t rc = seqtrack_mark(t, a, 2 * k, T0);
		failed |= rc < 0;
		total += rc;
	}
	CHECK(!failed);
	CHECK_EQ_INT(total, 0);
	CHECK_EQ_INT(seq_agent_acked(a), 0);
	/* one more range: the oldest gap (seq 1) is declared missing */
	CHECK_EQ_INT(seqtrack_mark(t, a, 2 * SEQTRACK_MAX_RANGES + 2, T0), 1);
	CHECK_EQ_INT(seq_agent_acked(a), 2);
	CHECK_EQ_INT(seqtrack_check(a, 1), SEQ_LATE);
	CHECK_EQ_INT(seqtrack_check(a, 2), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 3), SEQ_NEW);
	CHECK_EQ_INT(seqtrack_check(a, 2 * SEQTRACK_MAX_RANGES + 2), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 2 * SEQTRACK_MAX_RANGES + 3), SEQ_NEW);
	CHECK_EQ_STR(missing_text(a), "1-1");
	/* and so on for each further range */
	total = 0;
	for (int64_t k = SEQTRACK_MAX_RANGES + 2; k <= SEQTRACK_MAX_RANGES + 11; k++)
		total += seqtrack_mark(t, a, 2 * k, T0);
	CHECK_EQ_INT(total, 10);
	CHECK_EQ_INT(seq_agent_acked(a), 22);
	seqtrack_commit(t, T0);
	struct pubs p = {0};
	seqtrack_publish_due(t, T0 + SEQTRACK_IDLE_ACK_MS, true, publish, &p);
	CHECK_EQ_INT(p.calls, 1);
	CHECK_EQ_INT(p.seq[0], 22);
	seqtrack_destroy(t);
}

/*
 * A seq that falls inside the oldest gap while the out-of-order set is full
 * is stored by the caller; it must not end up declared missing (a
 * redelivery would then be stored a second time as SEQ_LATE).
 */
static void test_full_set_mark_inside_first_gap(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	for (int64_t k = 0; k < SEQTRACK_MAX_RANGES; k++)
		seqtrack_mark(t, a, 10 + 2 * k, T0); /* 10, 12, ...: gap 1..9 first */
	CHECK_EQ_INT(seq_agent_acked(a), 0);
	/* 5 is not adjacent to anything: it needs a new range, the set is full */
	CHECK_EQ_INT(seqtrack_check(a, 5), SEQ_NEW);
	int64_t missing = seqtrack_mark(t, a, 5, T0);
	CHECK_EQ_INT(seq_agent_acked(a), 10);
	CHECK_EQ_INT(missing, 8); /* 1-4 and 6-9; 5 itself arrived */
	CHECK_EQ_INT(seqtrack_check(a, 5), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 4), SEQ_LATE);
	CHECK_EQ_INT(seqtrack_check(a, 6), SEQ_LATE);
	seqtrack_commit(t, T0);
	seqtrack_destroy(t);
}

/*
 * A late arrival whose removal splits a declared-missing range while that
 * set is full: the seq must stop being SEQ_LATE (else a redelivery is
 * stored twice).
 */
static void test_late_arrival_with_full_missing_set(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	/* seqs 4, 8, 12, ...: once the out-of-order set is full, each new one declares a 3-wide gap */
	int64_t missing = 0;
	int64_t k_last = SEQTRACK_MAX_RANGES + SEQTRACK_MISSING_KEPT;
	for (int64_t k = 1; k <= k_last; k++)
		missing += seqtrack_mark(t, a, 4 * k, T0);
	CHECK_EQ_INT(missing, 3 * SEQTRACK_MISSING_KEPT);
	CHECK_EQ_INT(seq_agent_acked(a), 4 * SEQTRACK_MISSING_KEPT);
	const char *m = missing_text(a);
	CHECK(strncmp(m, "1-3,5-7,9-11,", 13) == 0);
	CHECK_EQ_INT(seqtrack_check(a, 6), SEQ_LATE);
	CHECK_EQ_INT(seqtrack_check(a, 2), SEQ_LATE);
	/* 6 arrives: removing it splits 5-7, which needs one more (the 257th) range */
	CHECK_EQ_INT(seqtrack_mark(t, a, 6, T0), 0);
	CHECK_EQ_INT(seqtrack_check(a, 6), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(a, 5), SEQ_LATE);
	CHECK_EQ_INT(seqtrack_check(a, 7), SEQ_LATE);
	seqtrack_commit(t, T0);
	seqtrack_destroy(t);
}

/* ---------------------------------------------------------------- persistence */

static void test_restore_round_trip(void)
{
	struct seqtrack *t1 = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t1, "s", "a", 7);
	mark_range(t1, a, 1, 2, 1, T0);
	mark_range(t1, a, 4, 4, 1, T0);
	CHECK_EQ_INT(seqtrack_expire(t1, T0 + WINDOW), 1); /* 3 missing, acked 4 */
	seqtrack_commit(t1, T0 + WINDOW);
	mark_range(t1, a, 7, 9, 2, T0 + WINDOW + 5); /* 7, 9 out of order */
	CHECK_EQ_STR(done_text(a), "7-7,9-9");
	CHECK_EQ_STR(missing_text(a), "3-3");

	char done[256], miss[256];
	snprintf(done, sizeof(done), "%s", done_text(a));
	snprintf(miss, sizeof(miss), "%s", missing_text(a));

	struct seqtrack *t2 = seqtrack_create(WINDOW);
	struct seq_agent *b = seqtrack_add(t2, "s", "a", 7);
	CHECK_EQ_INT(seqtrack_restore(t2, b, seq_agent_acked(a), done, miss, seq_agent_gap_since(a)), 0);
	CHECK_EQ_INT(seq_agent_acked(b), 4);
	CHECK_EQ_INT(seq_agent_gap_since(b), T0 + WINDOW + 5);
	CHECK_EQ_STR(done_text(b), done);
	CHECK_EQ_STR(missing_text(b), miss);
	int differ = 0;
	for (int64_t s = 0; s <= 12; s++)
		differ += seqtrack_check(a, s) != seqtrack_check(b, s);
	CHECK_EQ_INT(differ, 0);
	CHECK_EQ_INT(seqtrack_check(b, 3), SEQ_LATE);
	CHECK_EQ_INT(seqtrack_check(b, 8), SEQ_NEW);
	CHECK_EQ_INT(seqtrack_check(b, 9), SEQ_DUPLICATE);
	/* the restored tracker carries on */
	seqtrack_mark(t2, b, 5, T0 + WINDOW + 10);
	seqtrack_mark(t2, b, 6, T0 + WINDOW + 10);
	seqtrack_commit(t2, T0 + WINDOW + 10);
	CHECK_EQ_INT(seq_agent_acked(b), 7);
	/* the open gap keeps its original start: it expires one window after it opened */
	CHECK_EQ_INT(seqtrack_expire(t2, T0 + 2 * WINDOW + 4), 0);
	CHECK_EQ_INT(seqtrack_expire(t2, T0 + 2 * WINDOW + 5), 1);
	CHECK_EQ_INT(seq_agent_acked(b), 9);
	seqtrack_commit(t2, T0 + 2 * WINDOW + 5);
	/* NULL texts mean empty sets */
	struct seq_agent *c = seqtrack_add(t2, "s", "c", 8);
	CHECK_EQ_INT(seqtrack_restore(t2, c, 17, NULL, NULL, 0), 0);
	CHECK_EQ_INT(seq_agent_acked(c), 17);
	CHECK_EQ_INT(seqtrack_check(c, 17), SEQ_DUPLICATE);
	CHECK_EQ_INT(seqtrack_check(c, 18), SEQ_NEW);
	seqtrack_destroy(t1);
	seqtrack_destroy(t2);
}

static void test_restore_rejects_garbage(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	CHECK_EQ_INT(seqtrack_restore(t, a, 5, "7-", "", 0), SP_EINVAL);
	CHECK_EQ_INT(seqtrack_restore(t, a, 5, "", "3-2", 0), SP_EINVAL);
	seqtrack_destroy(t);
}

/* ---------------------------------------------------------------- more than 4 ranges */

/* Batches after an agent collected several out-of-order ranges (run in a child: may hang). */
static void many_gaps_across_batches(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	CHECK_EQ_INT(mark_range(t, a, 2, 12, 2, T0), 0); /* 2, 4, ..., 12: six ranges */
	CHECK_EQ_STR(done_text(a), "2-2,4-4,6-6,8-8,10-10,12-12");
	CHECK_EQ_INT(mark_range(t, a, 1, 1, 1, T0 + 1), 0); /* the next batch */
	CHECK_EQ_INT(seq_agent_acked(a), 2);
	CHECK_EQ_STR(done_text(a), "4-4,6-6,8-8,10-10,12-12");
	seqtrack_destroy(t);
}

static void test_batch_after_many_gaps(void)
{
	CHECK(in_child(many_gaps_across_batches, 3000));
}

/* A batch after restoring state with several ranges (run in a child: may hang). */
static void mark_after_restore_many_ranges(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	CHECK_EQ_INT(seqtrack_restore(t, a, 20, "22-22,24-24,26-26,28-28,30-30",
				      "1-1,3-3,5-5,7-7,9-9,11-11", T0), 0);
	CHECK_EQ_INT(seqtrack_mark(t, a, 21, T0 + 1), 0);
	CHECK_EQ_INT(seq_agent_acked(a), 22);
	seqtrack_abort(t);
	CHECK_EQ_INT(seq_agent_acked(a), 20);
	CHECK_EQ_STR(done_text(a), "22-22,24-24,26-26,28-28,30-30");
	CHECK_EQ_STR(missing_text(a), "1-1,3-3,5-5,7-7,9-9,11-11");
	seqtrack_destroy(t);
}

static void test_mark_after_restore_many_ranges(void)
{
	CHECK(in_child(mark_after_restore_many_ranges, 3000));
}

/* ---------------------------------------------------------------- ack pacing */

static void test_publish_when_idle(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "site-1", "agent-1", 1);
	struct pubs p = {0};
	seqtrack_publish_due(t, T0, true, publish, &p); /* nothing pending */
	CHECK_EQ_INT(p.attempts, 0);
	mark_range(t, a, 1, 3, 1, T0);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 1);
	seqtrack_publish_due(t, T0 + SEQTRACK_IDLE_ACK_MS, true, publish, &p);
	CHECK_EQ_INT(p.calls, 1);
	CHECK_EQ_STR(p.site[0], "site-1");
	CHECK_EQ_STR(p.agent[0], "agent-1");
	CHECK_EQ_INT(p.seq[0], 3);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 0);
	/* unchanged: never again */
	seqtrack_publish_due(t, T0 + 5000, true, publish, &p);
	seqtrack_publish_due(t, T0 + 50000, false, publish, &p);
	CHECK_EQ_INT(p.attempts, 1);
	/* a batch without an advance queues nothing */
	mark_range(t, a, 2, 2, 1, T0 + 60000); /* duplicate */
	seqtrack_publish_due(t, T0 + 70000, true, publish, &p);
	CHECK_EQ_INT(p.attempts, 1);
	seqtrack_destroy(t);
}

static void test_publish_paced_while_busy(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct pubs p = {0};
	const int64_t P = T0 + SEQTRACK_IDLE_ACK_MS; /* the first publication */
	mark_range(t, a, 1, 1, 1, T0);
	seqtrack_publish_due(t, P, true, publish, &p);
	CHECK_EQ_INT(p.calls, 1);
	/* a second advance 100 ms later, while busy: held back for the rest of the second */
	mark_range(t, a, 2, 2, 1, P + 100);
	seqtrack_publish_due(t, P + 200, false, publish, &p);
	CHECK_EQ_INT(p.calls, 1);
	mark_range(t, a, 3, 3, 1, P + 500);
	seqtrack_publish_due(t, P + 600, false, publish, &p);
	seqtrack_publish_due(t, P + SEQTRACK_ACK_INTERVAL_MS - 1, false, publish, &p);
	CHECK_EQ_INT(p.calls, 1);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 1);
	/* a second after the last publication: the newest ack goes out, once */
	seqtrack_publish_due(t, P + SEQTRACK_ACK_INTERVAL_MS, false, publish, &p);
	CHECK_EQ_INT(p.calls, 2);
	CHECK_EQ_INT(p.seq[1], 3);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 0);
	seqtrack_publish_due(t, P + 3 * SEQTRACK_ACK_INTERVAL_MS, false, publish, &p);
	CHECK_EQ_INT(p.calls, 2);
	seqtrack_destroy(t);
}

static void test_publish_idle_within_interval(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct pubs p = {0};
	const int64_t P = T0 + SEQTRACK_IDLE_ACK_MS;
	mark_range(t, a, 1, 1, 1, T0);
	seqtrack_publish_due(t, P, true, publish, &p);
	CHECK_EQ_INT(p.calls, 1);
	/* advanced 100 ms later; once idle it goes out within the idle delay, not a second later */
	mark_range(t, a, 2, 2, 1, P + 100);
	seqtrack_publish_due(t, P + 100 + SEQTRACK_IDLE_ACK_MS, true, publish, &p);
	CHECK_EQ_INT(p.calls, 2);
	CHECK_EQ_INT(p.seq[1], 2);
	seqtrack_destroy(t);
}

static void test_duplicate_forces_republish(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct pubs p = {0};
	mark_range(t, a, 1, 4, 1, T0);
	seqtrack_publish_due(t, T0 + SEQTRACK_IDLE_ACK_MS, true, publish, &p);
	CHECK_EQ_INT(p.calls, 1);
	/* the agent resends 3: it missed our ack; say it again at once, busy or not */
	CHECK_EQ_INT(seqtrack_check(a, 3), SEQ_DUPLICATE);
	seqtrack_note_duplicate(t, a);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 1);
	seqtrack_publish_due(t, T0 + SEQTRACK_IDLE_ACK_MS + 10, false, publish, &p);
	CHECK_EQ_INT(p.calls, 2);
	CHECK_EQ_INT(p.seq[1], 4);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 0);
	/* only once */
	seqtrack_publish_due(t, T0 + 60000, true, publish, &p);
	CHECK_EQ_INT(p.calls, 2);
	seqtrack_destroy(t);
}

static void test_publish_failure_retried(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct pubs p = {.fail = 2};
	mark_range(t, a, 1, 5, 1, T0);
	seqtrack_publish_due(t, T0 + SEQTRACK_IDLE_ACK_MS, true, publish, &p);
	CHECK_EQ_INT(p.attempts, 1);
	CHECK_EQ_INT(p.calls, 0);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 1);
	seqtrack_publish_due(t, T0 + SEQTRACK_IDLE_ACK_MS + 1, true, publish, &p);
	CHECK_EQ_INT(p.attempts, 2);
	CHECK_EQ_INT(p.calls, 0);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 1);
	seqtrack_publish_due(t, T0 + SEQTRACK_IDLE_ACK_MS + 2, true, publish, &p);
	CHECK_EQ_INT(p.attempts, 3);
	CHECK_EQ_INT(p.calls, 1);
	CHECK_EQ_INT(p.seq[0], 5);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 0);
	/* a failed forced republish is retried too */
	p.fail = 1;
	seqtrack_note_duplicate(t, a);
	seqtrack_publish_due(t, T0 + 10000, false, publish, &p);
	CHECK_EQ_INT(p.calls, 1);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 1);
	seqtrack_publish_due(t, T0 + 10001, false, publish, &p);
	CHECK_EQ_INT(p.calls, 2);
	CHECK_EQ_INT(p.seq[1], 5);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 0);
	seqtrack_destroy(t);
}

static void test_republish_all(void)
{
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *ag[3];
	const char *names[3] = {"a0", "a1", "a2"};
	for (int i = 0; i < 3; i++) {
		ag[i] = seqtrack_add(t, "s", names[i], i + 1);
		mark_range(t, ag[i], 1, 10 * (i + 1), 1, T0);
	}
	struct pubs p = {0};
	seqtrack_publish_due(t, T0 + SEQTRACK_IDLE_ACK_MS, true, publish, &p);
	CHECK_EQ_INT(p.calls, 3);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 0);
	seqtrack_republish_all(t);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 3);
	seqtrack_publish_due(t, T0 + SEQTRACK_IDLE_ACK_MS + 1, false, publish, &p);
	CHECK_EQ_INT(p.calls, 6);
	int seen = 0;
	for (int c = 3; c < 6 && c < PUB_MAX; c++)
		for (int i = 0; i < 3; i++)
			if (strcmp(p.agent[c], names[i]) == 0 && p.seq[c] == 10 * (i + 1))
				seen |= 1 << i;
	CHECK_EQ_INT(seen, 7);
	CHECK_EQ_INT(seqtrack_pending_acks(t), 0);
	seqtrack_destroy(t);
}

/*
 * The pacing rule as the first version wrote it, a walk of every waiting
 * agent per call, kept here as the model the lists must agree with: an
 * agent queued (an advance committed, a restore, a duplicate, a reconnect)
 * is due when its ack changed or was asked for, and a second passed since
 * its last publication, or the writer is idle and the ack has not moved for
 * the idle delay, or it was asked for and did not change.
 */
struct model_agent {
	struct seq_agent *a;
	int64_t next_seq, published, last_pub, last_adv;
	bool force, queued;
};

static bool model_changed(const struct model_agent *m)
{
	return seq_agent_acked(m->a) != m->published;
}

static bool model_due(const struct model_agent *m, int64_t now, bool idle)
{
	bool changed = model_changed(m);
	return m->queued && (changed || m->force) &&
	       (now - m->last_pub >= SEQTRACK_ACK_INTERVAL_MS ||
		(idle && now - m->last_adv >= SEQTRACK_IDLE_ACK_MS) || (m->force && !changed));
}

static void model_ask(struct model_agent *m)
{
	m->force = true;
	m->queued = true;
}

#define MODEL_AGENTS 48
struct model_pubs {
	struct model_agent *agents;
	uint64_t *rng;
	int fail_pct;         /* chance that a publication fails */
	bool failed;          /* one failed in this call */
	int n;
	int who[MODEL_AGENTS * 2];
	int64_t seq[MODEL_AGENTS * 2];
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int model_publish(void *ctx, const char *site, const char *agent, int64_t seq)
{
	struct model_pubs *p = ctx;
	(void)site;
	if ((int)(rnd(p->rng) % 100) < p->fail_pct) {
		p->failed = true;
		return -1;
	}
	if (p->n < MODEL_AGENTS * 2) {
		p->who[p->n] = atoi(agent + 1);
		p->seq[p->n] = seq;
	}
	p->n++;
	return 0;
}

/* One random batch: in order, out of order, duplicates; committed or (one in ten) rolled back. */
static void model_batch(struct seqtrack *t, struct model_agent *m, uint64_t *rng, int64_t now)
{
	int64_t before[MODEL_AGENTS], next[MODEL_AGENTS];
	for (int i = 0; i < MODEL_AGENTS; i++) {
		before[i] = seq_agent_acked(m[i].a);
		next[i] = m[i].next_seq;
	}
	int touches = 1 + (int)(rnd(rng) % 12);
	for (int k = 0; k < touches; k++) {
		struct model_agent *x = &m[rnd(rng) % MODEL_AGENTS];
		int64_t seq;
		switch (rnd(rng) % 8) {
		case 0: seq = x->next_seq + 1 + (int64_t)(rnd(rng) % 3); break; /* a gap */
		case 1: seq = x->next_seq > 1 ? 1 + (int64_t)(rnd(rng) % (uint64_t)x->next_seq) : 1; break;
		default: seq = x->next_seq; break;
		}
		if (seqtrack_check(x->a, seq) == SEQ_DUPLICATE) {
			seqtrack_note_duplicate(t, x->a);
			model_ask(x);
			continue;
		}
		seqtrack_mark(t, x->a, seq, now);
		if (seq >= x->next_seq)
			x->next_seq = seq + 1;
	}
	if (rnd(rng) % 10 == 0) {
		seqtrack_abort(t);
		for (int i = 0; i < MODEL_AGENTS; i++)
			m[i].next_seq = next[i];
		return;
	}
	seqtrack_commit(t, now);
	for (int i = 0; i < MODEL_AGENTS; i++)
		if (seq_agent_acked(m[i].a) != before[i]) {
			m[i].last_adv = now;
			m[i].queued = true;
		}
}

/* One call of seqtrack_publish_due against the model; returns the publications. */
static int model_call(struct seqtrack *t, struct model_agent *m, struct model_pubs *p,
		      int64_t now, bool idle)
{
	bool due[MODEL_AGENTS];
	for (int i = 0; i < MODEL_AGENTS; i++)
		due[i] = model_due(&m[i], now, idle);
	p->n = 0;
	p->failed = false;
	seqtrack_publish_due(t, now, idle, model_publish, p);
	bool said[MODEL_AGENTS] = {0};
	int wrong = 0;
	for (int k = 0; k < p->n && k < MODEL_AGENTS * 2; k++) {
		int i = p->who[k];
		if (i < 0 || i >= MODEL_AGENTS || !due[i] || said[i] ||
		    p->seq[k] != seq_agent_acked(m[i].a)) {
			wrong++;
			continue;
		}
		said[i] = true;
		m[i].published = p->seq[k];
		m[i].last_pub = now;
		m[i].force = false;
		m[i].queued = false;
	}
	/* a failed publication ends the call: only then may a due ack wait */
	for (int i = 0; i < MODEL_AGENTS; i++)
		if (due[i] && !said[i] && !p->failed)
			wrong++;
	size_t waiting = 0;
	for (int i = 0; i < MODEL_AGENTS; i++)
		waiting += m[i].queued && (model_changed(&m[i]) || m[i].force);
	if (seqtrack_pending_acks(t) != waiting)
		wrong++;
	return wrong;
}

static void test_pacing_matches_model(void)
{
	for (uint64_t seed = 1; seed <= 4; seed++) {
		uint64_t rng = 0x9e3779b97f4a7c15ULL * seed;
		struct seqtrack *t = seqtrack_create(WINDOW);
		struct model_agent m[MODEL_AGENTS];
		int64_t now = 5000;
		for (int i = 0; i < MODEL_AGENTS; i++) {
			char name[16];
			snprintf(name, sizeof(name), "a%d", i);
			m[i] = (struct model_agent){.a = seqtrack_add(t, "s", name, i + 1),
						    .next_seq = 1, .published = -1};
			if (i % 4 == 0) { /* restored from the store: its ack is said again */
				seqtrack_restore(t, m[i].a, 10 * i, "", "", 0);
				m[i].next_seq = 10 * i + 1;
				model_ask(&m[i]);
			}
		}
		struct model_pubs p = {.agents = m, .rng = &rng};
		int wrong = 0, published = 0, calls_with_failure = 0;
		for (int step = 0; step < 4000; step++) {
			p.fail_pct = step % 1000 < 250 ? 20 : 0; /* stretches of a full window */
			switch (rnd(&rng) % 10) {
			case 0: case 1: case 2: case 3: model_batch(t, m, &rng, now); break;
			case 4:
				if (rnd(&rng) % 50 == 0) {
					seqtrack_republish_all(t);
					for (int i = 0; i < MODEL_AGENTS; i++)
						model_ask(&m[i]);
				}
				break;
			default: {
				now += (int64_t)(rnd(&rng) % 300);
				wrong += model_call(t, m, &p, now, rnd(&rng) % 3 == 0);
				published += p.n;
				calls_with_failure += p.failed;
			}
			}
		}
		CHECK_EQ_INT(wrong, 0);
		CHECK(published > 500);        /* the run published, paced and idle */
		CHECK(calls_with_failure > 20); /* and retried after failures */
		seqtrack_destroy(t);
	}
}

static void test_clock_set_back(void)
{
	const int64_t HOUR = 3600 * 1000;
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct seq_agent *b = seqtrack_add(t, "s", "b", 2);
	/* a's gap seen by a clock an hour ahead, b's before it ran ahead */
	mark_range(t, a, 2, 2, 1, T0 + HOUR);
	mark_range(t, b, 2, 2, 1, T0 - 1000);
	seqtrack_folded(t);
	seqtrack_clock_set_back(t, T0, HOUR);
	CHECK_EQ_INT(seq_agent_gap_since(a), T0);
	CHECK_EQ_INT(seq_agent_gap_since(b), T0 - 1000);
	CHECK(seq_agent_unfolded(a)); /* its row is written at the next fold */
	CHECK(!seq_agent_unfolded(b));
	/* declared missing one window after the gap was really seen, not an hour later */
	CHECK_EQ_INT(seqtrack_expire(t, T0 + WINDOW), 2);
	seqtrack_commit(t, T0 + WINDOW);
	CHECK_EQ_INT(seq_agent_acked(a), 2);
	CHECK_EQ_INT(seq_agent_acked(b), 2);
	seqtrack_destroy(t);
}

static void test_clock_set_forward(void)
{
	const int64_t HOUR = 3600 * 1000;
	struct seqtrack *t = seqtrack_create(WINDOW);
	struct seq_agent *a = seqtrack_add(t, "s", "a", 1);
	struct seq_agent *b = seqtrack_add(t, "s", "b", 2);
	/* a's gap seen before the clock was set an hour forward; b has none */
	mark_range(t, a, 2, 2, 1, T0);
	mark_range(t, b, 1, 1, 1, T0);
	seqtrack_folded(t);
	seqtrack_clock_set_forward(t, HOUR);
	CHECK_EQ_INT(seq_agent_gap_since(a), T0 + HOUR);
	CHECK_EQ_INT(seq_agent_gap_since(b), 0);
	CHECK(seq_agent_unfolded(a)); /* its row is written at the next fold */
	CHECK(!seq_agent_unfolded(b));
	/* the new clock an hour on: the gap is as old as it really is, not an hour older */
	CHECK_EQ_INT(seqtrack_expire(t, T0 + HOUR + WINDOW - 1), 0);
	seqtrack_commit(t, T0 + HOUR);
	CHECK_EQ_INT(seq_agent_acked(a), 0);
	/* its missing message came: the ack passes the gap, nothing declared missing */
	CHECK_EQ_INT(mark_range(t, a, 1, 1, 1, T0 + HOUR + 1000), 0);
	CHECK_EQ_INT(seq_agent_acked(a), 2);
	CHECK_EQ_INT(seq_agent_gap_since(a), 0);
	seqtrack_destroy(t);
}

/* ---------------------------------------------------------------- many agents */

static void test_many_agents(void)
{
	enum { N = 5000 };
	struct seqtrack *t = seqtrack_create(WINDOW);
	char site[32], agent[32];
	int added = 0;
	for (int i = 0; i < N; i++) {
		snprintf(site, sizeof(site), "site-%d", i % 37);
		snprintf(agent, sizeof(agent), "agent-%d", i);
		added += seqtrack_add(t, site, agent, 1000 + i) != NULL;
	}
	CHECK_EQ_INT(added, N);
	CHECK_EQ_INT(seqtrack_count(t), N);
	int found = 0;
	for (int i = 0; i < N; i++) {
		snprintf(site, sizeof(site), "site-%d", i % 37);
		snprintf(agent, sizeof(agent), "agent-%d", i);
		struct seq_agent *a = seqtrack_find(t, site, agent);
		if (a && seq_agent_id(a) == 1000 + i && strcmp(seq_agent_name(a), agent) == 0 &&
		    strcmp(seq_agent_site(a), site) == 0)
			found++;
	}
	CHECK_EQ_INT(found, N);
	CHECK(seqtrack_find(t, "site-1", "agent-0") == NULL); /* agent-0 is on site-0 */
	CHECK(seqtrack_find(t, "site-0", "agent-5000") == NULL);
	/* the tracker still works on agents found after the table grew */
	snprintf(site, sizeof(site), "site-%d", (N - 1) % 37);
	snprintf(agent, sizeof(agent), "agent-%d", N - 1);
	struct seq_agent *a = seqtrack_find(t, site, agent);
	CHECK(a != NULL);
	if (a) {
		mark_range(t, a, 1, 3, 1, T0);
		CHECK_EQ_INT(seq_agent_acked(a), 3);
	}
	seqtrack_destroy(t);
}

int main(void)
{
	RUN(test_add_and_accessors);
	RUN(test_in_order_advances);
	RUN(test_out_of_order_advances);
	RUN(test_duplicates);
	RUN(test_touched_list);
	RUN(test_unfolded_list);
	RUN(test_abort_restores);
	RUN(test_commit_queues_only_advances);
	RUN(test_gap_expiry);
	RUN(test_late_arrival);
	RUN(test_scattered_beyond_max_ranges);
	RUN(test_full_set_mark_inside_first_gap);
	RUN(test_late_arrival_with_full_missing_set);
	RUN(test_restore_round_trip);
	RUN(test_restore_rejects_garbage);
	RUN(test_batch_after_many_gaps);
	RUN(test_mark_after_restore_many_ranges);
	RUN(test_publish_when_idle);
	RUN(test_publish_paced_while_busy);
	RUN(test_publish_idle_within_interval);
	RUN(test_duplicate_forces_republish);
	RUN(test_publish_failure_retried);
	RUN(test_republish_all);
	RUN(test_pacing_matches_model);
	RUN(test_clock_set_back);
	RUN(test_clock_set_forward);
	RUN(test_many_agents);
	HARNESS_EXIT();
}
