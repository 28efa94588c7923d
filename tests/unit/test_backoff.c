/*
 * test_backoff.c - sp_mqtt's reconnect delay (mqtt/backoff.c): doubling on
 * failed connects up to the cap, a connection that held starting it over,
 * and one lost right after it came up (another client with our client id
 * taking the session over) counting as a failed connect, so two such
 * clients end up reconnecting at the cap's pace instead of every 0.5 s.
 */
#include "harness.h"

#include "backoff.h"

static void test_failures_double_to_the_cap(void)
{
	struct backoff b;
	backoff_init(&b, 500, 30000);
	int64_t want[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK_EQ_INT(backoff_failed(&b), want[i]);
	/* a cap below the minimum is the minimum */
	backoff_init(&b, 500, 100);
	CHECK_EQ_INT(backoff_failed(&b), 500);
	CHECK_EQ_INT(backoff_failed(&b), 500);
}

/* A connection that stayed up: the next connect is tried after the minimum again. */
static void test_lasting_connection_starts_over(void)
{
	struct backoff b;
	bool brief = true;
	backoff_init(&b, 500, 30000);
	for (int i = 0; i < 5; i++)
		backoff_failed(&b);
	CHECK_EQ_INT(backoff_lost(&b, BACKOFF_STABLE_MS, &brief), 500);
	CHECK(!brief);
	/* and a failure after it grows from there, as after a first failure */
	CHECK_EQ_INT(backoff_failed(&b), 500);
	CHECK_EQ_INT(backoff_failed(&b), 1000);
	CHECK_EQ_INT(backoff_lost(&b, 3600 * 1000, NULL), 500);
}

/* Lost within BACKOFF_STABLE_MS: as a failed connect, growing, never reset by the connect. */
static void test_brief_connection_keeps_growing(void)
{
	struct backoff b;
	bool brief = false;
	backoff_init(&b, 500, 30000);
	int64_t want[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK_EQ_INT(backoff_lost(&b, 200, &brief), want[i]);
		CHECK(brief);
	}
	CHECK_EQ_INT(backoff_lost(&b, BACKOFF_STABLE_MS - 1, &brief), 30000);
	CHECK(brief);
	/* mixed with failed connects: one growing delay */
	backoff_init(&b, 500, 30000);
	CHECK_EQ_INT(backoff_failed(&b), 500);
	CHECK_EQ_INT(backoff_lost(&b, 0, NULL), 1000);
	CHECK_EQ_INT(backoff_failed(&b), 2000);
	CHECK_EQ_INT(backoff_lost(&b, 50, NULL), 4000);
}

/*
 * Two clients with one client id: each connect of one takes the session of
 * the other over, at once. Simulated as a timeline with the minimum delays
 * (no jitter): in 10 min the old rule (every loss starts over at 0.5 s)
 * made a connect every 0.5 s, 1200 of them; now a few dozen at most, and at
 * the end at the cap's pace.
 */
static void test_two_clients_one_id(void)
{
	struct backoff b[2];
	int64_t up_since[2] = {0, -1}, next_at[2] = {-1, 100};
	int connects = 0, late_connects = 0;
	backoff_init(&b[0], 500, 30000);
	backoff_init(&b[1], 500, 30000);
	int up = 0; /* client 0 is up at t = 0, client 1 connects at 100 ms */
	for (int64_t t = 0; t <= 600000; t += 10) {
		int other = 1 - up;
		if (next_at[other] >= 0 && t >= next_at[other]) {
			/* the other connects: the broker closes ours */
			next_at[up] = t + backoff_lost(&b[up], t - up_since[up], NULL);
			up_since[other] = t;
			next_at[other] = -1;
			up = other;
			connects++;
			if (t >= 540000)
				late_connects++;
		}
	}
	fprintf(stderr, "two clients, one id: %d connects in 10 min, %d in the last minute\n",
		connects, late_connects);
	CHECK(connects <= 60);
	/*
	 * At the cap: one stays up while the other waits 30 s; the one that held
	 * then starts over at 0.5 s and takes the session back, so two connects
	 * every 30 s.
	 */
	CHECK(late_connects <= 5);
	CHECK(late_connects >= 2);
}

int main(void)
{
	RUN(test_failures_double_to_the_cap);
	RUN(test_lasting_connection_starts_over);
	RUN(test_brief_connection_keeps_growing);
	RUN(test_two_clients_one_id);
	HARNESS_EXIT();
}
