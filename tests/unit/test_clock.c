/*
 * test_clock.c - the clocks, and sp_drain_over: the stop budget of the
 * collector's draining threads (parser, writer, acker).
 */
#include "harness.h"

#include "sitepulse/clock.h"

static void test_clocks(void)
{
	int64_t m0 = sp_mono_ms(), u0 = sp_mono_us();
	sp_sleep_ms(20);
	int64_t m1 = sp_mono_ms(), u1 = sp_mono_us();
	CHECK(m1 - m0 >= 19);
	/* the same clock in µs */
	CHECK(u1 - u0 >= 19000);
	CHECK(u1 / 1000 >= m1 - 1 && u1 / 1000 <= sp_mono_ms());
	CHECK(sp_now_ms() > 1577836800000LL); /* after 2020-01-01 */
}

static void test_drain_over(void)
{
	int64_t deadline = 0;
	/* not stopping: never over, and no deadline taken */
	CHECK(!sp_drain_over(false, 0, &deadline));
	CHECK_EQ_INT(deadline, 0);
	/* stopping: the budget starts at the first call that sees it */
	CHECK(!sp_drain_over(true, 60000, &deadline));
	CHECK(deadline > sp_mono_ms());
	CHECK(!sp_drain_over(true, 60000, &deadline)); /* well within a minute */
	/* a spent budget */
	int64_t spent = 0;
	CHECK(!sp_drain_over(true, 5, &spent));
	sp_sleep_ms(20);
	CHECK(sp_drain_over(true, 5, &spent));
	CHECK(sp_drain_over(true, 5, &spent)); /* and stays over */
}

int main(void)
{
	RUN(test_clocks);
	RUN(test_drain_over);
	HARNESS_EXIT();
}
