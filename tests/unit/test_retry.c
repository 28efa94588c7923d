/*
 * test_retry.c - the wait between delivery attempts of the mailer and the
 * city sender (collector/retry.c): doubling per failure up to the cap, a
 * jitter of at most a fifth that never goes below the minimum, and no
 * overflow for the largest configurable values.
 */
#include "harness.h"

#include "retry.h"

#define DRAWS 2000

/* The smallest and largest of DRAWS waits after `failures` failures. */
static void spread(int64_t min_ms, int64_t max_ms, int64_t failures, uint64_t *rng, int64_t *lo,
		   int64_t *hi)
{
	*lo = INT64_MAX;
	*hi = INT64_MIN;
	for (int i = 0; i < DRAWS; i++) {
		int64_t d = retry_delay_ms(min_ms, max_ms, failures, rng);
		if (d < *lo)
			*lo = d;
		if (d > *hi)
			*hi = d;
	}
}

static void test_doubles_up_to_the_cap(void)
{
	uint64_t rng = 1;
	int64_t lo, hi;
	/* 10 s doubling to 600 s: 10, 20, 40, 80, 160, 320, 600, 600 */
	int64_t full[] = {10000, 20000, 40000, 80000, 160000, 320000, 600000, 600000};
	for (int64_t f = 0; f < (int64_t)(sizeof(full) / sizeof(full[0])); f++) {
		spread(10000, 600000, f, &rng, &lo, &hi);
		/* at most a fifth less, never below the minimum; the draws reach both ends */
		int64_t floor = full[f] - full[f] / 5;
		if (floor < 10000)
			floor = 10000;
		CHECK(hi <= full[f]);
		CHECK(hi >= full[f] - full[f] / 50);
		CHECK(lo >= floor);
		CHECK(lo <= floor + full[f] / 50);
	}
	/* a failure count far beyond the cap stays at the cap */
	spread(10000, 600000, INT64_MAX, &rng, &lo, &hi);
	CHECK(hi <= 600000 && hi >= 588000);
	CHECK(lo >= 480000);
}

/* The first retry waits exactly the minimum: jitter never shortens it. */
static void test_minimum_is_kept(void)
{
	uint64_t rng = 12345;
	int64_t lo, hi;
	spread(1000, 86400000, 0, &rng, &lo, &hi);
	CHECK_EQ_INT(lo, 1000);
	CHECK_EQ_INT(hi, 1000);
	/* min == max: always that */
	spread(7000, 7000, 5, &rng, &lo, &hi);
	CHECK_EQ_INT(lo, 7000);
	CHECK_EQ_INT(hi, 7000);
}

/* Items that failed together come back spread out, and the state moves on. */
static void test_jitter_spreads(void)
{
	uint64_t rng = 42;
	int64_t seen[8];
	int distinct = 0;
	for (int i = 0; i < 8; i++) {
		seen[i] = retry_delay_ms(10000, 600000, 4, &rng);
		bool again = false;
		for (int j = 0; j < i; j++)
			again = again || seen[j] == seen[i];
		distinct += !again;
	}
	CHECK(distinct >= 6);
	/* two states seeded alike give the same waits (the caller's seed decides) */
	uint64_t a = 99, b = 99;
	for (int i = 0; i < 16; i++)
		CHECK_EQ_INT(retry_delay_ms(10000, 600000, i, &a), retry_delay_ms(10000, 600000, i, &b));
}

/* The configuration's largest values (retry_max_s 86400) double without overflow. */
static void test_largest_values(void)
{
	uint64_t rng = 7;
	int64_t lo, hi;
	spread(3600000, 86400000, 1000, &rng, &lo, &hi);
	CHECK(hi <= 86400000 && hi >= 86400000 - 86400000 / 50);
	CHECK(lo >= 86400000 - 86400000 / 5);
	spread(1, INT64_MAX, 200, &rng, &lo, &hi);
	CHECK(hi >= INT64_MAX - INT64_MAX / 50);
	CHECK(lo >= INT64_MAX - INT64_MAX / 5);
}

int main(void)
{
	RUN(test_doubles_up_to_the_cap);
	RUN(test_minimum_is_kept);
	RUN(test_jitter_spreads);
	RUN(test_largest_values);
	HARNESS_EXIT();
}
