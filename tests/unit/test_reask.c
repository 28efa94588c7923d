/*
 * test_reask.c - the re-asks for the retained births and states are paced:
 * the first request goes at once; one within the interval after a re-ask is
 * deferred (once), waits, and goes at the interval's end, never dropped;
 * requests meanwhile join it; a re-ask that could not go out is tried at
 * the next call; a connect's subscriptions answer a waiting request without
 * restarting the interval. A flapping store (fail, recover, fail, recover)
 * made the collector re-ask at every recovery before.
 */
#include "harness.h"

#include "reask.h"

#define IV 60000

static void test_first_at_once(void)
{
	struct reask r;
	reask_init(&r, IV);
	CHECK_EQ_INT(reask_step(&r, false, 1000), REASK_IDLE);
	/* a monotonic clock may be small after boot: the first re-ask still goes at once */
	CHECK_EQ_INT(reask_step(&r, true, 5), REASK_GO);
	reask_done(&r, 5);
	CHECK_EQ_INT(reask_step(&r, false, 100), REASK_IDLE);
	CHECK_EQ_INT(reask_step(&r, false, 5 + IV * 3), REASK_IDLE);
}

/* Two store failures within the interval: one re-ask at once, one at the interval's end. */
static void test_flapping_store(void)
{
	struct reask r;
	reask_init(&r, IV);
	int64_t t0 = 1000000;
	CHECK_EQ_INT(reask_step(&r, true, t0), REASK_GO);
	reask_done(&r, t0);

	/* the second recovery, 10 s later: deferred, once */
	CHECK_EQ_INT(reask_step(&r, true, t0 + 10000), REASK_DEFER);
	CHECK_EQ_INT(reask_due_ms(&r), t0 + IV);
	CHECK_EQ_INT(reask_step(&r, false, t0 + 10100), REASK_WAIT);
	/* a third within the interval joins the waiting one: not deferred again */
	CHECK_EQ_INT(reask_step(&r, true, t0 + 30000), REASK_WAIT);
	CHECK_EQ_INT(reask_step(&r, false, t0 + IV - 1), REASK_WAIT);
	/* the interval's end: carried out, without being asked again */
	CHECK_EQ_INT(reask_step(&r, false, t0 + IV), REASK_GO);
	reask_done(&r, t0 + IV);
	CHECK_EQ_INT(reask_step(&r, false, t0 + IV + 100), REASK_IDLE);

	/* the next one within the new interval is deferred again, from the last re-ask */
	CHECK_EQ_INT(reask_step(&r, true, t0 + IV + 1000), REASK_DEFER);
	CHECK_EQ_INT(reask_due_ms(&r), t0 + 2 * IV);
	CHECK_EQ_INT(reask_step(&r, false, t0 + 2 * IV + 500), REASK_GO);
	reask_done(&r, t0 + 2 * IV + 500);

	/* one long after the interval: at once */
	CHECK_EQ_INT(reask_step(&r, true, t0 + 5 * IV), REASK_GO);
}

/* A re-ask that could not go out (a SUBSCRIBE refused locally) is tried at every call. */
static void test_not_sent_stays(void)
{
	struct reask r;
	reask_init(&r, IV);
	CHECK_EQ_INT(reask_step(&r, true, 100), REASK_GO);
	/* no reask_done: the request still waits, and needs no new asking */
	CHECK_EQ_INT(reask_step(&r, false, 200), REASK_GO);
	CHECK_EQ_INT(reask_step(&r, false, 300), REASK_GO);
	reask_done(&r, 300);
	CHECK_EQ_INT(reask_step(&r, false, 400), REASK_IDLE);
}

/* A connect's subscriptions answer a waiting request; the interval still counts from the re-ask. */
static void test_answered_by_connect(void)
{
	struct reask r;
	reask_init(&r, IV);
	CHECK_EQ_INT(reask_step(&r, true, 100), REASK_GO);
	reask_done(&r, 100);
	CHECK_EQ_INT(reask_step(&r, true, 1000), REASK_DEFER);
	reask_answered(&r);
	CHECK_EQ_INT(reask_step(&r, false, 100 + IV), REASK_IDLE);
	/* the next request: paced from the last re-ask, not from the connect */
	CHECK_EQ_INT(reask_step(&r, true, 100 + IV), REASK_GO);
	reask_done(&r, 100 + IV);
	CHECK_EQ_INT(reask_step(&r, true, 200 + IV), REASK_DEFER);
	reask_answered(&r);
	/* answered with nothing waiting changes nothing */
	reask_answered(&r);
	CHECK_EQ_INT(reask_step(&r, false, 300 + IV), REASK_IDLE);
}

int main(void)
{
	RUN(test_first_at_once);
	RUN(test_flapping_store);
	RUN(test_not_sent_stays);
	RUN(test_answered_by_connect);
	HARNESS_EXIT();
}
