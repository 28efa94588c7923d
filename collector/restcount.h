/*
 * restcount.h - door cycles counted while a lift's car stands at one floor,
 * for the rule lift.door_reopen (DOMAIN L14; docs/alerts.md, "Counting
 * door cycles").
 *
 * A lift reports door_cycles, a lifetime counter. A door that keeps
 * reopening (an obstruction in the doorway, a passenger holding it) shows
 * as that counter rising while the car stays stopped at one floor. A count
 * begins at a stopped record whose door is not closed: that cycle is the
 * first (the base is the counter less one; terminals, this project's
 * simulator among them, count a cycle when the door starts to open). Each
 * rise of the counter after it is one more. The count ends when the car
 * stands at another floor (or runs: the caller forgets the lift), or when
 * the door has stayed closed with the counter still for idle_ms: the burst
 * of cycles is over. So the table holds the lifts whose doors are busy
 * now, not the fleet: a car parked with its door shut has no entry.
 *
 * The count is taken from the counter's absolute values, not by adding up
 * rises, so a record judged twice (a batch replayed after a rollback)
 * counts once.
 *
 * Bounded: at most `max` lifts (about 64 bytes each with their share of
 * the hash index). When the table is full a lift is not counted
 * (restcount_note says SP_EFULL, counted in restcount_refused) until a
 * counted lift's count ends and frees its entry; lifts already counted go
 * on. Refusing the newcomer rather than evicting one is deliberate:
 * evicting would silently restart some other lift's count. In memory
 * only: a collector restart starts every count again.
 *
 * Pure; owned by the rules (the writer thread).
 */
#ifndef SP_COLLECTOR_RESTCOUNT_H
#define SP_COLLECTOR_RESTCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What restcount_note saw. */
struct restcount_seen {
	bool counting;   /* false: nothing is counted for the lift (see restcount_note) */
	bool ended;      /* a count ended at this record: another floor, or the door shut idle */
	int64_t counted; /* cycles since counting began at this floor (>= 0) */
	int64_t since;   /* device time counting began */
};

struct restcount;

/*
 * Counts at most max lifts at a time (1 .. INT32_MAX / 4); a count ends
 * after idle_ms (> 0) of a shut door and a still counter. NULL on no
 * memory or a bad argument.
 */
struct restcount *restcount_create(size_t max, int64_t idle_ms);
/* Accepts NULL. */
void restcount_destroy(struct restcount *t);

/*
 * Notes a record of device_id's car stopped at floor, at device time ts,
 * its door closed or not, its door counter at cycles (has_cycles false: the
 * record gave none; cycles is then ignored). Fills *out:
 *  - another floor than the one counted ends that count (out->ended);
 *  - no counter: nothing else (out->counting false);
 *  - a count running: counted is the counter's rise since its base; a
 *    counter below the base (reset or replaced) starts it again, counted 0;
 *    a closed door with the counter unchanged for idle_ms since the door
 *    last moved ends it (out->ended, out->counting false);
 *  - none running: a door not closed begins one, counted 1; a closed one
 *    begins nothing (out->counting false).
 * Returns 0, or SP_EFULL (table full) or SP_ENOMEM when a count could not
 * begin: the lift is then not counted (out->counting false) and the
 * refusal is counted.
 */
int restcount_note(struct restcount *t, int64_t device_id, int32_t floor, bool door_closed,
		   bool has_cycles, int64_t cycles, int64_t ts, struct restcount_seen *out);

/* The car runs, or its lift is not to be counted now: ends device_id's count, if any. */
void restcount_forget(struct restcount *t, int64_t device_id);

/* Lifts counted now. */
size_t restcount_count(const struct restcount *t);

/*
 * Records refused a count since creation (table full, or no memory): each
 * record of a lift left uncounted while its door is not shut.
 */
uint64_t restcount_refused(const struct restcount *t);

#endif
