/*
 * test_clockcheck.c - the agent's check of its clock against the
 * collector's from the acks: which acks tell something, the direction and
 * size of a disagreement, and when it is said (once, again after the repeat
 * period or when it changes sides, and once more when the clocks agree).
 */
#include "harness.h"

#include "clockcheck.h"

#define T0 1764320000000LL
#define S 1000LL
#define TOL CLOCKCHECK_TOLERANCE_MS

/* An ack of a message sent at T0, received 2 s later, stamped T0 + 1 s + collector_off. */
static enum clockcheck_say ack(struct clockcheck *c, int64_t collector_off, int64_t mono,
			       int64_t *off)
{
	return clockcheck_ack(c, T0, T0 + 2 * S, T0 + S + collector_off, mono, off);
}

/* Within the window widened by the tolerance, at its edges included, the clocks agree. */
static void test_agreeing(void)
{
	struct clockcheck c = {0};
	int64_t off = 99;
	CHECK_EQ_INT(ack(&c, 0, 1, &off), CLOCKCHECK_QUIET);
	CHECK_EQ_INT(off, 0);
	/* the collector's time may be anywhere between our send and our receipt, plus or minus TOL */
	CHECK_EQ_INT(clockcheck_ack(&c, T0, T0 + 2 * S, T0 - TOL, 1, &off), CLOCKCHECK_QUIET);
	CHECK_EQ_INT(clockcheck_ack(&c, T0, T0 + 2 * S, T0 + 2 * S + TOL, 1, &off), CLOCKCHECK_QUIET);
	CHECK_EQ_INT(off, 0);
	/* one ms further out on either side is a disagreement */
	CHECK_EQ_INT(clockcheck_ack(&c, T0, T0 + 2 * S, T0 - TOL - 1, 1, &off), CLOCKCHECK_OFF);
	CHECK_EQ_INT(off, TOL + 1);
	c = (struct clockcheck){0};
	CHECK_EQ_INT(clockcheck_ack(&c, T0, T0 + 2 * S, T0 + 2 * S + TOL + 1, 1, &off),
		     CLOCKCHECK_OFF);
	CHECK_EQ_INT(off, -(TOL + 1));
}

/* Acks without a time, or received "before" they were sent (our clock stepped back), tell nothing. */
static void test_nothing_to_tell(void)
{
	struct clockcheck c = {0};
	int64_t off = 99;
	CHECK_EQ_INT(clockcheck_ack(&c, T0, T0 + S, 0, 1, &off), CLOCKCHECK_QUIET);
	CHECK_EQ_INT(off, 0);
	CHECK_EQ_INT(clockcheck_ack(&c, T0, T0 - 3600 * S, T0 - 7200 * S, 1, &off), CLOCKCHECK_QUIET);
	CHECK_EQ_INT(off, 0);
	CHECK_EQ_INT(c.off_ms, 0);
}

/* Our clock an hour ahead: said once, not again within the repeat period, then again. */
static void test_ahead_said_and_repeated(void)
{
	struct clockcheck c = {0};
	int64_t off = 0, mono = 5000;
	CHECK_EQ_INT(ack(&c, -3600 * S, mono, &off), CLOCKCHECK_OFF);
	/* at least the hour minus the second between our send and the collector's stamp */
	CHECK_EQ_INT(off, 3600 * S - S);
	CHECK_EQ_INT(ack(&c, -3600 * S, mono + S, &off), CLOCKCHECK_QUIET);
	CHECK_EQ_INT(off, 3600 * S - S); /* still reported to the caller */
	CHECK_EQ_INT(ack(&c, -3600 * S, mono + CLOCKCHECK_REPEAT_MS - 1, &off), CLOCKCHECK_QUIET);
	CHECK_EQ_INT(ack(&c, -3600 * S, mono + CLOCKCHECK_REPEAT_MS, &off), CLOCKCHECK_OFF);
}

/* From ahead to behind is said at once; agreeing again is said once. */
static void test_sides_and_agreement(void)
{
	struct clockcheck c = {0};
	int64_t off = 0;
	CHECK_EQ_INT(ack(&c, -7200 * S, 10, &off), CLOCKCHECK_OFF);
	CHECK(off > 0);
	CHECK_EQ_INT(ack(&c, 600 * S, 20, &off), CLOCKCHECK_OFF);
	CHECK_EQ_INT(off, -(600 * S - S)); /* behind: the collector stamped after our receipt */
	CHECK_EQ_INT(ack(&c, 0, 30, &off), CLOCKCHECK_AGAIN);
	CHECK_EQ_INT(off, 0);
	CHECK_EQ_INT(ack(&c, 0, 40, &off), CLOCKCHECK_QUIET);
	/* off again after agreeing: said at once, whatever the repeat period */
	CHECK_EQ_INT(ack(&c, -3600 * S, 50, &off), CLOCKCHECK_OFF);
}

int main(void)
{
	RUN(test_agreeing);
	RUN(test_nothing_to_tell);
	RUN(test_ahead_said_and_repeated);
	RUN(test_sides_and_agreement);
	HARNESS_EXIT();
}
