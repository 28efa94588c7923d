/*
 * test_restcount.c - door cycles counted per lift standing with a busy
 * door: a count begins with a door not closed (that cycle the first),
 * grows with the counter at one floor, ends at another floor, when the car
 * runs, or after the door has stayed shut and the counter still for the
 * idle time; starts again at a counter gone back; bounded with newcomers
 * refused when full; slots and index reused as counts begin and end.
 */
#include "harness.h"

#include "restcount.h"
#include "sitepulse/error.h"

#define T0   1764320000000LL
#define IDLE 60000
#define OPEN false /* door_closed */
#define SHUT true

static void test_count_at_one_floor(void)
{
	struct restcount *t = restcount_create(8, IDLE);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	struct restcount_seen o;
	/* a car standing with its door shut: nothing counted, no entry */
	CHECK_EQ_INT(restcount_note(t, 1, 3, SHUT, true, 500, T0, &o), 0);
	CHECK(!o.counting && !o.ended);
	CHECK_EQ_INT(restcount_count(t), 0);
	/* the door opens: that cycle is the first */
	CHECK_EQ_INT(restcount_note(t, 1, 3, OPEN, true, 501, T0 + 1000, &o), 0);
	CHECK(o.counting && !o.ended);
	CHECK_EQ_INT(o.counted, 1);
	CHECK_EQ_INT(o.since, T0 + 1000);
	CHECK_EQ_INT(restcount_count(t), 1);
	CHECK_EQ_INT(restcount_note(t, 1, 3, SHUT, true, 501, T0 + 3000, &o), 0);
	CHECK_EQ_INT(o.counted, 1);
	CHECK_EQ_INT(restcount_note(t, 1, 3, OPEN, true, 504, T0 + 9000, &o), 0);
	CHECK(o.counting && !o.ended);
	CHECK_EQ_INT(o.counted, 4);
	CHECK_EQ_INT(o.since, T0 + 1000);
	/* the same record again (a replayed batch) counts the same */
	CHECK_EQ_INT(restcount_note(t, 1, 3, OPEN, true, 504, T0 + 9000, &o), 0);
	CHECK_EQ_INT(o.counted, 4);
	/* another lift is counted on its own */
	CHECK_EQ_INT(restcount_note(t, 2, 3, OPEN, true, 7, T0 + 1000, &o), 0);
	CHECK_EQ_INT(o.counted, 1);
	CHECK_EQ_INT(restcount_count(t), 2);
	/* a record without the counter counts nothing and keeps the base */
	CHECK_EQ_INT(restcount_note(t, 1, 3, OPEN, false, 0, T0 + 10000, &o), 0);
	CHECK(!o.counting && !o.ended);
	CHECK_EQ_INT(restcount_note(t, 1, 3, SHUT, true, 505, T0 + 11000, &o), 0);
	CHECK_EQ_INT(o.counted, 5);
	/* the car runs: its count ends; with the door shut after the stop none begins */
	restcount_forget(t, 1);
	restcount_forget(t, 1);  /* twice is harmless */
	restcount_forget(t, 99); /* never counted: harmless */
	CHECK_EQ_INT(restcount_count(t), 1);
	CHECK_EQ_INT(restcount_note(t, 1, 3, SHUT, true, 520, T0 + 60000, &o), 0);
	CHECK(!o.counting && !o.ended);
	CHECK_EQ_INT(restcount_note(t, 1, 3, OPEN, true, 521, T0 + 62000, &o), 0);
	CHECK(o.counting);
	CHECK_EQ_INT(o.counted, 1);
	CHECK_EQ_INT(o.since, T0 + 62000);
	restcount_destroy(t);
	restcount_destroy(NULL);
}

/* A door shut and a counter still for the idle time end the count; either moving keeps it. */
static void test_idle_end(void)
{
	struct restcount *t = restcount_create(4, IDLE);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	struct restcount_seen o;
	restcount_note(t, 1, 0, OPEN, true, 10, T0, &o);
	restcount_note(t, 1, 0, SHUT, true, 11, T0 + 5000, &o);
	CHECK_EQ_INT(o.counted, 2);
	CHECK_EQ_INT(restcount_note(t, 1, 0, SHUT, true, 11, T0 + 5000 + IDLE - 1, &o), 0);
	CHECK(o.counting && !o.ended);
	CHECK_EQ_INT(o.counted, 2);
	CHECK_EQ_INT(restcount_note(t, 1, 0, SHUT, true, 11, T0 + 5000 + IDLE, &o), 0);
	CHECK(!o.counting && o.ended);
	CHECK_EQ_INT(restcount_count(t), 0);
	CHECK_EQ_INT(restcount_note(t, 1, 0, SHUT, true, 11, T0 + 200000, &o), 0);
	CHECK(!o.counting && !o.ended);
	/* the counter rising behind a shut door (a cycle between two records) keeps it */
	restcount_note(t, 2, 0, OPEN, true, 5, T0, &o);
	restcount_note(t, 2, 0, SHUT, true, 5, T0 + 50000, &o);
	CHECK_EQ_INT(restcount_note(t, 2, 0, SHUT, true, 6, T0 + 100000, &o), 0);
	CHECK(o.counting && !o.ended);
	CHECK_EQ_INT(o.counted, 2);
	CHECK_EQ_INT(restcount_note(t, 2, 0, SHUT, true, 6, T0 + 100000 + IDLE - 1, &o), 0);
	CHECK(o.counting);
	CHECK_EQ_INT(restcount_note(t, 2, 0, SHUT, true, 6, T0 + 100000 + IDLE, &o), 0);
	CHECK(o.ended && !o.counting);
	/* a door held open never idles */
	restcount_note(t, 3, 0, OPEN, true, 1, T0, &o);
	CHECK_EQ_INT(restcount_note(t, 3, 0, OPEN, true, 1, T0 + 10 * IDLE, &o), 0);
	CHECK(o.counting && !o.ended);
	CHECK_EQ_INT(o.counted, 1);
	restcount_destroy(t);
}

static void test_floor_and_counter_back(void)
{
	struct restcount *t = restcount_create(4, IDLE);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	struct restcount_seen o;
	restcount_note(t, 5, 1, OPEN, true, 100, T0, &o);
	restcount_note(t, 5, 1, SHUT, true, 103, T0 + 1000, &o);
	CHECK_EQ_INT(o.counted, 4);
	/* another floor, door opening: that count ended, one begins here */
	CHECK_EQ_INT(restcount_note(t, 5, 2, OPEN, true, 104, T0 + 2000, &o), 0);
	CHECK(o.counting && o.ended);
	CHECK_EQ_INT(o.counted, 1);
	CHECK_EQ_INT(o.since, T0 + 2000);
	restcount_note(t, 5, 2, SHUT, true, 106, T0 + 3000, &o);
	CHECK(!o.ended);
	CHECK_EQ_INT(o.counted, 3);
	/* the counter goes back: the count starts again, never negative, not ended */
	CHECK_EQ_INT(restcount_note(t, 5, 2, SHUT, true, 3, T0 + 4000, &o), 0);
	CHECK(o.counting && !o.ended);
	CHECK_EQ_INT(o.counted, 0);
	CHECK_EQ_INT(o.since, T0 + 4000);
	restcount_note(t, 5, 2, OPEN, true, 5, T0 + 5000, &o);
	CHECK_EQ_INT(o.counted, 2);
	/* another floor without a counter: ended, nothing begins */
	CHECK_EQ_INT(restcount_note(t, 5, 7, OPEN, false, 0, T0 + 6000, &o), 0);
	CHECK(!o.counting && o.ended);
	CHECK_EQ_INT(restcount_count(t), 0);
	/* another floor with the door shut: ended, nothing begins */
	restcount_note(t, 6, 1, OPEN, true, 10, T0, &o);
	CHECK_EQ_INT(restcount_note(t, 6, 2, SHUT, true, 11, T0 + 1000, &o), 0);
	CHECK(!o.counting && o.ended);
	CHECK_EQ_INT(restcount_count(t), 0);
	restcount_destroy(t);
}

static void test_bounded_newcomers_refused(void)
{
	enum { MAX = 5 };
	struct restcount *t = restcount_create(MAX, IDLE);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	struct restcount_seen o;
	for (int i = 0; i < MAX; i++)
		CHECK_EQ_INT(restcount_note(t, 100 + i, 0, OPEN, true, 10, T0, &o), 0);
	CHECK_EQ_INT(restcount_count(t), MAX);
	/* full: a lift whose door starts cycling now is not counted, and the refusal is counted */
	CHECK_EQ_INT(restcount_note(t, 200, 0, OPEN, true, 10, T0, &o), SP_EFULL);
	CHECK(!o.counting);
	CHECK_EQ_INT(restcount_note(t, 200, 0, OPEN, true, 20, T0 + 1000, &o), SP_EFULL);
	CHECK_EQ_INT(restcount_refused(t), 2);
	CHECK_EQ_INT(restcount_count(t), MAX);
	/* a shut door or a record without the counter asks for no room: not refused */
	CHECK_EQ_INT(restcount_note(t, 201, 0, SHUT, true, 3, T0, &o), 0);
	CHECK_EQ_INT(restcount_note(t, 201, 0, OPEN, false, 0, T0, &o), 0);
	CHECK_EQ_INT(restcount_refused(t), 2);
	/* those counted go on counting, a floor change included */
	CHECK_EQ_INT(restcount_note(t, 100, 0, SHUT, true, 14, T0 + 1000, &o), 0);
	CHECK_EQ_INT(o.counted, 5);
	CHECK_EQ_INT(restcount_note(t, 101, 3, OPEN, true, 14, T0 + 1000, &o), 0);
	CHECK(o.counting && o.ended);
	/* one runs: the newcomer gets its slot */
	restcount_forget(t, 102);
	CHECK_EQ_INT(restcount_note(t, 200, 0, OPEN, true, 30, T0 + 2000, &o), 0);
	CHECK(o.counting);
	CHECK_EQ_INT(o.counted, 1);
	CHECK_EQ_INT(restcount_note(t, 200, 0, SHUT, true, 31, T0 + 3000, &o), 0);
	CHECK_EQ_INT(o.counted, 2);
	CHECK_EQ_INT(restcount_count(t), MAX);
	CHECK_EQ_INT(restcount_note(t, 202, 0, OPEN, true, 1, T0, &o), SP_EFULL);
	restcount_destroy(t);
	CHECK(restcount_create(0, IDLE) == NULL);
	CHECK(restcount_create(4, 0) == NULL);
}

/* Many counts beginning and ending: the index grows, slots are reused, nothing is mixed up. */
static void test_many_lifts(void)
{
	enum { N = 5000 };
	struct restcount *t = restcount_create(N, IDLE);
	CHECK(t != NULL);
	if (t == NULL)
		return;
	struct restcount_seen o;
	int bad = 0;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++)
			bad += restcount_note(t, i * 7919LL, i % 30, OPEN, true, 1000LL * (i + 1),
					      T0, &o) != 0;
		CHECK_EQ_INT(restcount_count(t), N);
		for (int i = 0; i < N; i++) {
			bad += restcount_note(t, i * 7919LL, i % 30, SHUT, true,
					      1000LL * (i + 1) + i % 9, T0 + 1000, &o) != 0;
			bad += !o.counting || o.ended || o.counted != 1 + i % 9 || o.since != T0;
		}
		/* every other lift runs, then all */
		for (int i = 0; i < N; i += 2)
			restcount_forget(t, i * 7919LL);
		CHECK_EQ_INT(restcount_count(t), N / 2);
		for (int i = 1; i < N; i += 2) {
			restcount_note(t, i * 7919LL, i % 30, SHUT, true, 1000LL * (i + 1) + 20,
				       T0 + 2000, &o);
			bad += o.counted != 21;
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
	RUN(test_idle_end);
	RUN(test_floor_and_counter_back);
	RUN(test_bounded_newcomers_refused);
	RUN(test_many_lifts);
	HARNESS_EXIT();
}
