/*
 * test_restcount.c - door cycles counted per stopped lift: counted from
 * the base at one floor, started again at another floor or a counter gone
 * back, forgotten when the car runs, bounded with newcomers refused when
 * full, and slots and index reused as lifts stop and run.
 */
#include "harness.h"

#include "restcount.h"
#include "sitepulse/error.h"

#define T0 1764320000000LL

static void test_count_at_one_floor(void)
{
	struct restcount *t = restcount_create(8);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	struct restcount_seen o;
	CHECK_EQ_INT(restcount_note(t, 1, 3, true, 500, T0, &o), 0);
	CHECK(o.counting && !o.moved);
	CHECK_EQ_INT(o.counted, 0);
	CHECK_EQ_INT(o.since, T0);
	CHECK_EQ_INT(restcount_count(t), 1);
	CHECK_EQ_INT(restcount_note(t, 1, 3, true, 504, T0 + 9000, &o), 0);
	CHECK(o.counting && !o.moved);
	CHECK_EQ_INT(o.counted, 4);
	CHECK_EQ_INT(o.since, T0);
	/* the same record again (a replayed batch) counts the same */
	CHECK_EQ_INT(restcount_note(t, 1, 3, true, 504, T0 + 9000, &o), 0);
	CHECK_EQ_INT(o.counted, 4);
	/* another lift is counted on its own */
	CHECK_EQ_INT(restcount_note(t, 2, 3, true, 7, T0 + 1000, &o), 0);
	CHECK_EQ_INT(o.counted, 0);
	CHECK_EQ_INT(restcount_count(t), 2);
	/* a record without the counter counts nothing and keeps the base */
	CHECK_EQ_INT(restcount_note(t, 1, 3, false, 0, T0 + 10000, &o), 0);
	CHECK(!o.counting && !o.moved);
	CHECK_EQ_INT(restcount_note(t, 1, 3, true, 505, T0 + 11000, &o), 0);
	CHECK_EQ_INT(o.counted, 5);
	/* the car runs: forgotten, and counted afresh when it stops */
	restcount_forget(t, 1);
	restcount_forget(t, 1); /* twice is harmless */
	restcount_forget(t, 99); /* never counted: harmless */
	CHECK_EQ_INT(restcount_count(t), 1);
	CHECK_EQ_INT(restcount_note(t, 1, 3, true, 520, T0 + 60000, &o), 0);
	CHECK(o.counting && !o.moved);
	CHECK_EQ_INT(o.counted, 0);
	CHECK_EQ_INT(o.since, T0 + 60000);
	restcount_destroy(t);
	restcount_destroy(NULL);
}

static void test_floor_and_counter_back(void)
{
	struct restcount *t = restcount_create(4);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	struct restcount_seen o;
	restcount_note(t, 5, 1, true, 100, T0, &o);
	restcount_note(t, 5, 1, true, 103, T0 + 1000, &o);
	CHECK_EQ_INT(o.counted, 3);
	/* another floor: moved, counted from here */
	CHECK_EQ_INT(restcount_note(t, 5, 2, true, 104, T0 + 2000, &o), 0);
	CHECK(o.counting && o.moved);
	CHECK_EQ_INT(o.counted, 0);
	CHECK_EQ_INT(o.since, T0 + 2000);
	restcount_note(t, 5, 2, true, 106, T0 + 3000, &o);
	CHECK(!o.moved);
	CHECK_EQ_INT(o.counted, 2);
	/* the counter goes back: the count starts again, never negative, not moved */
	CHECK_EQ_INT(restcount_note(t, 5, 2, true, 3, T0 + 4000, &o), 0);
	CHECK(o.counting && !o.moved);
	CHECK_EQ_INT(o.counted, 0);
	CHECK_EQ_INT(o.since, T0 + 4000);
	restcount_note(t, 5, 2, true, 5, T0 + 5000, &o);
	CHECK_EQ_INT(o.counted, 2);
	/* another floor without a counter: moved, forgotten */
	CHECK_EQ_INT(restcount_note(t, 5, 7, false, 0, T0 + 6000, &o), 0);
	CHECK(!o.counting && o.moved);
	CHECK_EQ_INT(restcount_count(t), 0);
	restcount_note(t, 5, 7, true, 9, T0 + 7000, &o);
	CHECK(o.counting && !o.moved);
	CHECK_EQ_INT(o.counted, 0);
	restcount_destroy(t);
}

static void test_bounded_newcomers_refused(void)
{
	enum { MAX = 5 };
	struct restcount *t = restcount_create(MAX);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	struct restcount_seen o;
	for (int i = 0; i < MAX; i++)
		CHECK_EQ_INT(restcount_note(t, 100 + i, 0, true, 10, T0, &o), 0);
	CHECK_EQ_INT(restcount_count(t), MAX);
	/* full: a lift that stops now is not counted, and the refusal is counted */
	CHECK_EQ_INT(restcount_note(t, 200, 0, true, 10, T0, &o), SP_EFULL);
	CHECK(!o.counting);
	CHECK_EQ_INT(restcount_note(t, 200, 0, true, 20, T0 + 1000, &o), SP_EFULL);
	CHECK_EQ_INT(restcount_refused(t), 2);
	CHECK_EQ_INT(restcount_count(t), MAX);
	/* a record without the counter asks for no room: not refused */
	CHECK_EQ_INT(restcount_note(t, 201, 0, false, 0, T0, &o), 0);
	CHECK_EQ_INT(restcount_refused(t), 2);
	/* those counted go on counting, a floor change included */
	CHECK_EQ_INT(restcount_note(t, 100, 0, true, 14, T0 + 1000, &o), 0);
	CHECK_EQ_INT(o.counted, 4);
	CHECK_EQ_INT(restcount_note(t, 101, 3, true, 14, T0 + 1000, &o), 0);
	CHECK(o.counting && o.moved);
	/* one runs: the newcomer gets its slot, counted from its next record */
	restcount_forget(t, 102);
	CHECK_EQ_INT(restcount_note(t, 200, 0, true, 30, T0 + 2000, &o), 0);
	CHECK(o.counting);
	CHECK_EQ_INT(o.counted, 0);
	CHECK_EQ_INT(restcount_note(t, 200, 0, true, 31, T0 + 3000, &o), 0);
	CHECK_EQ_INT(o.counted, 1);
	CHECK_EQ_INT(restcount_count(t), MAX);
	CHECK_EQ_INT(restcount_note(t, 202, 0, true, 1, T0, &o), SP_EFULL);
	restcount_destroy(t);
	CHECK(restcount_create(0) == NULL);
}

/* Many lifts stopping and running: the index grows, slots are reused, nothing is mixed up. */
static void test_many_lifts(void)
{
	enum { N = 5000 };
	struct restcount *t = restcount_create(N);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	struct restcount_seen o;
	int bad = 0;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++)
			bad += restcount_note(t, i * 7919LL, i % 30, true, 1000LL * i, T0, &o) != 0;
		CHECK_EQ_INT(restcount_count(t), N);
		for (int i = 0; i < N; i++) {
			bad += restcount_note(t, i * 7919LL, i % 30, true, 1000LL * i + i % 9,
					      T0 + 1000, &o) != 0;
			bad += !o.counting || o.moved || o.counted != i % 9 || o.since != T0;
		}
		/* every other lift runs, then all */
		for (int i = 0; i < N; i += 2)
			restcount_forget(t, i * 7919LL);
		CHECK_EQ_INT(restcount_count(t), N / 2);
		for (int i = 1; i < N; i += 2) {
			restcount_note(t, i * 7919LL, i % 30, true, 1000LL * i + 20, T0 + 2000, &o);
			bad += o.counted != 20;
		}
		for (int i = 0; i < N; i++)
			restcount_forget(t, i * 7919LL);
		CHECK_EQ_INT(restcount_count(t), 0);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(restcount_refused(t), 0);
	restcount_destroy(t);
}

int main(void)
{
	RUN(test_count_at_one_floor);
	RUN(test_floor_and_counter_back);
	RUN(test_bounded_newcomers_refused);
	RUN(test_many_lifts);
	HARNESS_EXIT();
}
