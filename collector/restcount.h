/*
 * restcount.h - door cycles counted while a lift's car stands at one floor,
 * for the rule lift.door_reopen (DOMAIN L14; docs/alerts.md, "Counting
 * door cycles").
 *
 * A lift reports door_cycles, a lifetime counter. A door that keeps
 * reopening (an obstruction in the doorway, a passenger holding it) shows
 * as that counter rising while the car stays stopped at one floor. This
 * table remembers, per lift whose car stands now, the floor and the
 * counter's value when counting began there (the base); the count is the
 * rise since. The caller forgets a lift when its car runs, so the table
 * holds the lifts stopped now, not the fleet.
 *
 * The count is taken from the counter's absolute values, not by adding up
 * rises, so a record judged twice (a batch replayed after a rollback)
 * counts once.
 *
 * Bounded: at most `max` lifts (about 40 bytes each with their share of
 * the hash index). When the table is full a lift that stops is not counted
 * (restcount_note says SP_EFULL, counted in restcount_refused) until a
 * counted lift runs and frees its entry; lifts already counted go on.
 * Refusing the newcomer rather than evicting one is deliberate: evicting
 * would silently restart some other lift's count, and a minor alert missed
 * for a lift that stopped while the table was full costs less than alerts
 * that depend on the table's churn. In memory only: a collector restart
 * starts every count again.
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
	bool moved;      /* the car stands at another floor than the one counted */
	int64_t counted; /* cycles since counting began at this floor (>= 0) */
	int64_t since;   /* device time counting began */
};

struct restcount;

/* Counts at most max lifts at a time (1 .. INT32_MAX / 4). NULL on no memory or a bad max. */
struct restcount *restcount_create(size_t max);
/* Accepts NULL. */
void restcount_destroy(struct restcount *t);

/*
 * Notes a record of device_id's car stopped at floor, at device time ts,
 * its door counter at cycles (has_cycles false: the record gave none;
 * cycles is then ignored). Fills *out. Counting (re)starts at this record,
 * counted 0, when the lift has no entry, when it stands at another floor
 * than the one counted (out->moved), or when cycles is below the base (the
 * counter went back: the terminal was reset or replaced). A record without
 * the counter counts nothing (out->counting false); at another floor it
 * also forgets the lift (out->moved), so the next counter starts afresh.
 * Returns 0, or SP_EFULL (table full) or SP_ENOMEM when a new lift could
 * not be added: it is then not counted (out->counting false) and the
 * refusal is counted.
 */
int restcount_note(struct restcount *t, int64_t device_id, int32_t floor, bool has_cycles,
		   int64_t cycles, int64_t ts, struct restcount_seen *out);

/* The car runs, or its lift is not to be counted now: forgets device_id, if counted. */
void restcount_forget(struct restcount *t, int64_t device_id);

/* Lifts counted now. */
size_t restcount_count(const struct restcount *t);

/* New lifts refused since creation (table full, or no memory). */
uint64_t restcount_refused(const struct restcount *t);

#endif
