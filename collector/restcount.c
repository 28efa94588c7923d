/*
 * restcount.c - see restcount.h.
 *
 * A dense array of slots, grown with sp_grow as lifts' doors start
 * cycling (never beyond what `max` needs) and a hash index over it that
 * numbers the slots (slotindex.h): a forgotten lift's slot is released and
 * claimed by the next lift counted, so the array stays at the high-water
 * mark of lifts counted at once. 48 bytes a slot, 8 for its link in the
 * index and 4 to 8 for its chain head.
 */
#include "restcount.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/slotindex.h"

#include <stdlib.h>

#define MIN_HEADS 64u

struct slot {
	int64_t device_id;
	int64_t base;   /* the door counter before the first cycle counted */
	int64_t last;   /* the door counter in the newest record */
	int64_t since;  /* device time counting began */
	int64_t active; /* device time the door was last seen moving, or its counter rising */
	int32_t floor;  /* where the car stands */
};

struct restcount {
	struct slot *slots;
	size_t cap, max;
	int64_t idle_ms;
	struct sp_slotindex index; /* its count: the lifts counted */
	uint64_t refused;
};

struct restcount *restcount_create(size_t max, int64_t idle_ms)
{
	if (max == 0 || max > INT32_MAX / 4 || idle_ms <= 0)
		return NULL;
	struct restcount *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->max = max;
	t->idle_ms = idle_ms;
	if (sp_slotindex_init(&t->index, MIN_HEADS)) {
		restcount_destroy(t);
		return NULL;
	}
	return t;
}

void restcount_destroy(struct restcount *t)
{
	if (t == NULL)
		return;
	free(t->slots);
	sp_slotindex_free(&t->index);
	free(t);
}

static int32_t find(const struct restcount *t, int64_t device_id)
{
	for (int32_t i = sp_slotindex_first(&t->index, sp_hash_id(device_id)); i >= 0;
	     i = sp_slotindex_next(&t->index, i))
		if (t->slots[i].device_id == device_id)
			return i;
	return -1;
}

/* A slot for a new lift, linked into the index; -1 when full or out of memory (*rc says). */
static int32_t add(struct restcount *t, int64_t device_id, int *rc)
{
	*rc = 0;
	if (t->index.count >= t->max) {
		*rc = SP_EFULL;
		return -1;
	}
	/* first 64, doubled: never more than twice what max needs */
	struct slot *p = sp_grow(t->slots, &t->cap, (size_t)sp_slotindex_peek(&t->index) + 1,
				 sizeof(*p), 64);
	if (p == NULL) {
		*rc = SP_ENOMEM;
		return -1;
	}
	t->slots = p;
	int32_t i = sp_slotindex_claim(&t->index, sp_hash_id(device_id));
	if (i < 0) {
		*rc = SP_ENOMEM;
		return -1;
	}
	t->slots[i] = (struct slot){.device_id = device_id};
	return i;
}

int restcount_note(struct restcount *t, int64_t device_id, int32_t floor, bool door_closed,
		   bool has_cycles, int64_t cycles, int64_t ts, struct restcount_seen *out)
{
	*out = (struct restcount_seen){0};
	int32_t i = find(t, device_id);
	if (i >= 0 && t->slots[i].floor != floor) {
		/* the car stands elsewhere: that count is over, and one may begin here */
		sp_slotindex_release(&t->index, i);
		i = -1;
		out->ended = true;
	}
	if (!has_cycles)
		return 0; /* nothing to count: the count, if any, waits for a record with one */
	if (i >= 0) {
		struct slot *s = &t->slots[i];
		if (cycles < s->base) {
			/* the counter went back (terminal reset or replaced): count from here */
			s->base = cycles;
			s->since = ts;
			s->active = ts;
		} else if (cycles != s->last || !door_closed) {
			s->active = ts;
		} else if (ts - s->active >= t->idle_ms) {
			/* the door has stayed shut: the obstruction, if any, is over */
			sp_slotindex_release(&t->index, i);
			out->ended = true;
			return 0;
		}
		s->last = cycles;
		out->counting = true;
		out->counted = cycles - s->base; /* the codec keeps counters in 0 .. 2^53 */
		out->since = s->since;
		return 0;
	}
	if (door_closed)
		return 0; /* a car standing with its door shut: nothing to count yet */
	int rc;
	if ((i = add(t, device_id, &rc)) < 0) {
		t->refused++;
		return rc;
	}
	/* the door is in a cycle now: that cycle is the first (see restcount.h) */
	t->slots[i].floor = floor;
	t->slots[i].base = cycles > 0 ? cycles - 1 : 0;
	t->slots[i].last = cycles;
	t->slots[i].since = ts;
	t->slots[i].active = ts;
	out->counting = true;
	out->counted = cycles - t->slots[i].base;
	out->since = ts;
	return 0;
}

void restcount_forget(struct restcount *t, int64_t device_id)
{
	if (t->index.count == 0)
		return; /* the common case: called for every lift record of a running car */
	int32_t i = find(t, device_id);
	if (i >= 0)
		sp_slotindex_release(&t->index, i);
}

size_t restcount_count(const struct restcount *t)
{
	return t->index.count;
}

uint64_t restcount_refused(const struct restcount *t)
{
	return t->refused;
}
