/*
 * test_faultmemo.c - the newest clear per (device, port, code): kept newest,
 * keyed on all three, bounded with the oldest noted forgotten first.
 */
#include "harness.h"

#include "faultmemo.h"

#include <stdio.h>

static void test_newest_clear_per_fault(void)
{
	struct faultmemo *m = faultmemo_create(8);
	CHECK(m != NULL);
	if (m == NULL)
		return;
	CHECK(!faultmemo_cleared_since(m, 1, 0, "E12", 0));
	faultmemo_note_clear(m, 1, 0, "E12", 1000);
	CHECK(faultmemo_cleared_since(m, 1, 0, "E12", 999));
	CHECK(faultmemo_cleared_since(m, 1, 0, "E12", 1000)); /* at the clear's time: over */
	CHECK(!faultmemo_cleared_since(m, 1, 0, "E12", 1001));
	/* an older clear noted later does not move it back; a newer one moves it on */
	faultmemo_note_clear(m, 1, 0, "E12", 500);
	CHECK(faultmemo_cleared_since(m, 1, 0, "E12", 1000));
	faultmemo_note_clear(m, 1, 0, "E12", 2000);
	CHECK(faultmemo_cleared_since(m, 1, 0, "E12", 1500));
	CHECK_EQ_INT(faultmemo_count(m), 1);
	/* the key is device, port and code together */
	CHECK(!faultmemo_cleared_since(m, 2, 0, "E12", 0));
	CHECK(!faultmemo_cleared_since(m, 1, 3, "E12", 0));
	CHECK(!faultmemo_cleared_since(m, 1, 0, "E13", 0));
	CHECK(!faultmemo_cleared_since(m, 1, 0, "E1", 0));
	faultmemo_note_clear(m, 1, 3, "E12", 100);
	CHECK(faultmemo_cleared_since(m, 1, 3, "E12", 100));
	CHECK(faultmemo_cleared_since(m, 1, 0, "E12", 2000));
	CHECK_EQ_INT(faultmemo_count(m), 2);
	/* an empty code is a code like any other */
	faultmemo_note_clear(m, 1, 0, "", 7);
	CHECK(faultmemo_cleared_since(m, 1, 0, "", 7));
	faultmemo_destroy(m);
}

static void test_bounded_oldest_forgotten(void)
{
	enum { MAX = 64 };
	struct faultmemo *m = faultmemo_create(MAX);
	CHECK(m != NULL);
	if (m == NULL)
		return;
	char code[16];
	for (int i = 0; i < MAX; i++) {
		snprintf(code, sizeof(code), "F%d", i);
		faultmemo_note_clear(m, 100 + i % 5, 0, code, 1000 + i);
	}
	CHECK_EQ_INT(faultmemo_count(m), MAX);
	/*
	 * a fault cleared again is kept once more when its turn to go comes: the
	 * store keeps the newest clears by time, and so must the memory
	 */
	faultmemo_note_clear(m, 100, 0, "F0", 5000);
	CHECK_EQ_INT(faultmemo_count(m), MAX);
	/* ten new faults: the ten noted first but F0 go, the rest and the new stay */
	for (int i = MAX; i < MAX + 10; i++) {
		snprintf(code, sizeof(code), "F%d", i);
		faultmemo_note_clear(m, 100 + i % 5, 0, code, 1000 + i);
	}
	CHECK_EQ_INT(faultmemo_count(m), MAX);
	int kept = 0, forgotten = 0;
	for (int i = 0; i < MAX + 10; i++) {
		snprintf(code, sizeof(code), "F%d", i);
		bool there = faultmemo_cleared_since(m, 100 + i % 5, 0, code, 0);
		if (i >= 1 && i <= 10) {
			CHECK(!there);
			forgotten += !there;
		} else {
			CHECK(there);
			kept += there;
		}
	}
	CHECK_EQ_INT(forgotten, 10);
	CHECK_EQ_INT(kept, MAX);
	CHECK(faultmemo_cleared_since(m, 100, 0, "F0", 5000));
	/* and the ring goes round again without losing its index */
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < MAX; i++) {
			snprintf(code, sizeof(code), "R%d-%d", round, i);
			faultmemo_note_clear(m, 7, i % 12, code, round);
			CHECK(faultmemo_cleared_since(m, 7, i % 12, code, round));
		}
	snprintf(code, sizeof(code), "R2-%d", MAX - 1);
	CHECK(faultmemo_cleared_since(m, 7, (MAX - 1) % 12, code, 2));
	CHECK(!faultmemo_cleared_since(m, 7, 0, "R1-0", 0));
	CHECK_EQ_INT(faultmemo_count(m), MAX);
	faultmemo_destroy(m);
	CHECK(faultmemo_create(0) == NULL);
}

int main(void)
{
	RUN(test_newest_clear_per_fault);
	RUN(test_bounded_oldest_forgotten);
	HARNESS_EXIT();
}
