/*
 * test_agentseen.c - the agents' liveness notes: which are urgent (first
 * note, a state message since the last write, back from a silence), which
 * wait for the slow flush, what a commit or a rollback of a flush does, and
 * thousands of agents through the index.
 */
#include "harness.h"

#include "agentseen.h"
#include "sitepulse/error.h"

#include <stdlib.h>

#define T0 1764320000000LL
#define SLOW 10000LL /* the slow flush's period under test, ms */

/* A fake store: the last write of each agent id below MAX_ID, and how many writes. */
#define MAX_ID 20000
struct rows {
	int writes;
	int fail_at; /* the write (1-based) that fails; 0: none */
	int64_t seen[MAX_ID];
};

static int write_row(void *ctx, int64_t agent_id, int64_t received_ms)
{
	struct rows *r = ctx;
	if (r->fail_at && r->writes + 1 == r->fail_at)
		return SP_EIO;
	r->writes++;
	if (agent_id >= 0 && agent_id < MAX_ID)
		r->seen[agent_id] = received_ms;
	return 0;
}

/* One flush, committed: returns the writes it made. */
static int flush(struct agentseen *s, struct rows *r, bool all)
{
	int before = r->writes;
	if (agentseen_write(s, all, write_row, r) != 0) {
		agentseen_aborted(s);
		return -1;
	}
	agentseen_committed(s);
	return r->writes - before;
}

static void test_first_note_urgent_then_slow(void)
{
	struct agentseen *s = agentseen_create(SLOW);
	struct rows *r = calloc(1, sizeof(*r));
	CHECK_EQ_INT(agentseen_note(s, 7, T0), 0);
	CHECK_EQ_INT(agentseen_note(s, 7, T0 + 300), 0);
	CHECK_EQ_INT(agentseen_note(s, 7, T0 + 200), 0); /* an older arrival does not lower it */
	CHECK_EQ_INT(agentseen_pending(s), 1);
	CHECK_EQ_INT(agentseen_urgent(s), 1); /* not written since start: its row may say offline */
	CHECK_EQ_INT(flush(s, r, false), 1);
	CHECK_EQ_INT(r->seen[7], T0 + 300);
	CHECK_EQ_INT(agentseen_pending(s), 0);
	/* it keeps sending: waits for the slow flush */
	CHECK_EQ_INT(agentseen_note(s, 7, T0 + 1000), 0);
	CHECK_EQ_INT(agentseen_note(s, 7, T0 + 2000), 0);
	CHECK_EQ_INT(agentseen_urgent(s), 0);
	CHECK_EQ_INT(flush(s, r, false), 0);
	CHECK_EQ_INT(flush(s, r, false), 0);
	CHECK_EQ_INT(agentseen_pending(s), 1);
	CHECK_EQ_INT(flush(s, r, true), 1);
	CHECK_EQ_INT(r->seen[7], T0 + 2000);
	CHECK_EQ_INT(agentseen_pending(s), 0);
	/* nothing noted: nothing written, slow or not */
	CHECK_EQ_INT(flush(s, r, true), 0);
	free(r);
	agentseen_destroy(s);
}

static void test_state_makes_urgent(void)
{
	struct agentseen *s = agentseen_create(SLOW);
	struct rows *r = calloc(1, sizeof(*r));
	agentseen_state_changed(s, 3); /* unknown: nothing to do, its first note is urgent */
	agentseen_note(s, 3, T0);
	flush(s, r, false);
	/* noted, then a state message: the note is written at the next flush */
	agentseen_note(s, 3, T0 + 500);
	CHECK_EQ_INT(agentseen_urgent(s), 0);
	agentseen_state_changed(s, 3);
	CHECK_EQ_INT(agentseen_urgent(s), 1);
	CHECK_EQ_INT(flush(s, r, false), 1);
	CHECK_EQ_INT(r->seen[3], T0 + 500);
	/* the write may not have set it online (the state came after the data): urgent again */
	agentseen_note(s, 3, T0 + 900);
	CHECK_EQ_INT(agentseen_urgent(s), 1);
	CHECK_EQ_INT(flush(s, r, false), 1);
	/* written with no state since: back to the slow flush */
	agentseen_note(s, 3, T0 + 1200);
	CHECK_EQ_INT(agentseen_urgent(s), 0);
	/* a state message while not noted: the next note is urgent */
	flush(s, r, true);
	agentseen_state_changed(s, 3);
	CHECK_EQ_INT(agentseen_pending(s), 0);
	agentseen_note(s, 3, T0 + 1500);
	CHECK_EQ_INT(agentseen_urgent(s), 1);
	free(r);
	agentseen_destroy(s);
}

static void test_back_from_silence(void)
{
	struct agentseen *s = agentseen_create(SLOW);
	struct rows *r = calloc(1, sizeof(*r));
	agentseen_note(s, 1, T0);
	agentseen_note(s, 2, T0);
	flush(s, r, false);
	/* agent 1 heard within the period, agent 2 after a longer silence */
	agentseen_note(s, 1, T0 + SLOW);
	agentseen_note(s, 2, T0 + SLOW + 1);
	CHECK_EQ_INT(agentseen_urgent(s), 1);
	CHECK_EQ_INT(flush(s, r, false), 1);
	CHECK_EQ_INT(r->seen[2], T0 + SLOW + 1);
	CHECK_EQ_INT(r->seen[1], T0);
	CHECK_EQ_INT(agentseen_pending(s), 1);
	free(r);
	agentseen_destroy(s);
}

static void test_rollback_keeps_notes(void)
{
	struct agentseen *s = agentseen_create(SLOW);
	struct rows *r = calloc(1, sizeof(*r));
	for (int id = 1; id <= 3; id++)
		agentseen_note(s, id, T0 + id);
	/* written, then the transaction rolled back */
	CHECK_EQ_INT(agentseen_write(s, false, write_row, r), 0);
	agentseen_aborted(s);
	CHECK_EQ_INT(agentseen_pending(s), 3);
	CHECK_EQ_INT(agentseen_urgent(s), 3);
	/* a write that fails half way: also rolled back, all still due */
	r->fail_at = r->writes + 2;
	CHECK_EQ_INT(agentseen_write(s, true, write_row, r), SP_EIO);
	agentseen_aborted(s);
	CHECK_EQ_INT(agentseen_pending(s), 3);
	r->fail_at = 0;
	r->writes = 0;
	CHECK_EQ_INT(flush(s, r, false), 3);
	CHECK_EQ_INT(agentseen_pending(s), 0);
	CHECK_EQ_INT(agentseen_urgent(s), 0);
	/* a slow flush rolled back, then a fast one commits: the notes it did not write stay */
	agentseen_note(s, 1, T0 + 100);
	CHECK_EQ_INT(agentseen_write(s, true, write_row, r), 0);
	agentseen_aborted(s);
	CHECK_EQ_INT(flush(s, r, false), 0);
	CHECK_EQ_INT(agentseen_pending(s), 1);
	CHECK_EQ_INT(flush(s, r, true), 1);
	CHECK_EQ_INT(r->seen[1], T0 + 100);
	free(r);
	agentseen_destroy(s);
}

static void test_many_agents(void)
{
	enum { N = 12000 };
	struct agentseen *s = agentseen_create(SLOW);
	struct rows *r = calloc(1, sizeof(*r));
	int ok = 0;
	for (int round = 0; round < 2; round++)
		for (int64_t id = 1; id <= N; id++)
			ok += agentseen_note(s, id, T0 + id + round * 1000) == 0;
	CHECK_EQ_INT(ok, 2 * N);
	CHECK_EQ_INT(agentseen_pending(s), N);
	CHECK_EQ_INT(flush(s, r, false), N);
	int right = 0;
	for (int64_t id = 1; id <= N; id++)
		right += r->seen[id] == T0 + id + 1000;
	CHECK_EQ_INT(right, N);
	/* every third heard again soon: none urgent, all written by the slow flush */
	for (int64_t id = 3; id <= N; id += 3)
		agentseen_note(s, id, T0 + 5000 + id);
	CHECK_EQ_INT(agentseen_pending(s), N / 3);
	CHECK_EQ_INT(agentseen_urgent(s), 0);
	CHECK_EQ_INT(flush(s, r, false), 0);
	CHECK_EQ_INT(flush(s, r, true), N / 3);
	CHECK_EQ_INT(r->seen[N], T0 + 5000 + N);
	CHECK_EQ_INT(r->seen[N - 1], T0 + N - 1 + 1000);
	free(r);
	agentseen_destroy(s);
}

static void test_clock_set_back(void)
{
	const int64_t HOUR = 3600 * 1000;
	struct agentseen *s = agentseen_create(SLOW);
	struct rows *r = calloc(1, sizeof(*r));
	/* written, and noted again, by a clock an hour ahead; agent 2 before it ran ahead */
	agentseen_note(s, 1, T0 + HOUR);
	agentseen_note(s, 2, T0 - 5000);
	flush(s, r, false);
	agentseen_note(s, 1, T0 + HOUR + 500);
	agentseen_clock_set_back(s, T0 + 1000, HOUR);
	CHECK_EQ_INT(flush(s, r, true), 1);
	CHECK_EQ_INT(r->seen[1], T0 + 500);
	/* heard again 2 s later by the right clock: within the slow period of the moved write */
	agentseen_note(s, 1, T0 + 2500);
	CHECK_EQ_INT(agentseen_urgent(s), 0);
	/* agent 2's time was behind now: not moved; after its silence its note is urgent */
	agentseen_note(s, 2, T0 + 6000);
	CHECK_EQ_INT(agentseen_urgent(s), 1);
	free(r);
	agentseen_destroy(s);
}

int main(void)
{
	RUN(test_first_note_urgent_then_slow);
	RUN(test_state_makes_urgent);
	RUN(test_back_from_silence);
	RUN(test_rollback_keeps_notes);
	RUN(test_many_agents);
	RUN(test_clock_set_back);
	HARNESS_EXIT();
}
