/*
 * agentseen.c - when each agent was last heard, and which notes are due
 * (see agentseen.h).
 *
 * Entries sit in one array for the writer's lifetime; an open-addressing
 * index (1 + entry index, 0 = empty, at most half full) finds an agent's,
 * and the noted list holds the indexes of the entries heard since their
 * last committed write, so a flush looks at those alone.
 */
#include "agentseen.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"

#include <stdlib.h>

struct entry {
	int64_t agent_id;
	int64_t received_ms; /* the newest arrival noted */
	int64_t written_ms;  /* the arrival a committed flush last wrote; 0: none since start */
	bool noted;          /* on the noted list */
	bool urgent;         /* to write at the next flush, not only with the slow one */
	bool row_online;     /* its row says online since written_ms, as far as we know */
	bool stated;         /* a state message of it handled since its last write */
	bool writing;        /* written by the transaction in progress */
};

struct agentseen {
	int64_t slow_ms;
	struct entry *entries;
	size_t nentries, capentries;
	uint32_t *index;
	size_t slots; /* a power of two, or 0 */
	uint32_t *noted;
	size_t nnoted, capnoted;
	size_t nurgent;
};

struct agentseen *agentseen_create(int64_t slow_ms)
{
	struct agentseen *s = calloc(1, sizeof(*s));
	if (s)
		s->slow_ms = slow_ms;
	return s;
}

void agentseen_destroy(struct agentseen *s)
{
	if (s == NULL)
		return;
	free(s->entries);
	free(s->index);
	free(s->noted);
	free(s);
}

/* The index's slot of agent_id: its entry's, or the empty one where it would go. */
static uint32_t *slot_of(const struct agentseen *s, int64_t agent_id)
{
	size_t mask = s->slots - 1;
	size_t i = (size_t)(((uint64_t)agent_id * 0x9e3779b97f4a7c15ULL) >> 32) & mask;
	while (s->index[i] != 0 && s->entries[s->index[i] - 1].agent_id != agent_id)
		i = (i + 1) & mask;
	return &s->index[i];
}

static struct entry *find(const struct agentseen *s, int64_t agent_id)
{
	if (s->slots == 0)
		return NULL;
	uint32_t at = *slot_of(s, agent_id);
	return at ? &s->entries[at - 1] : NULL;
}

/* Makes the index at least twice the size of the entries with one more. */
static int index_fit(struct agentseen *s)
{
	if (s->slots >= 2 * (s->nentries + 1))
		return 0;
	size_t slots = s->slots ? s->slots * 2 : 256;
	uint32_t *index = calloc(slots, sizeof(*index));
	if (index == NULL)
		return SP_ENOMEM;
	free(s->index);
	s->index = index;
	s->slots = slots;
	for (size_t i = 0; i < s->nentries; i++)
		*slot_of(s, s->entries[i].agent_id) = (uint32_t)i + 1;
	return 0;
}

static void set_urgent(struct agentseen *s, struct entry *e)
{
	if (e->urgent)
		return;
	e->urgent = true;
	s->nurgent++;
}

int agentseen_note(struct agentseen *s, int64_t agent_id, int64_t received_ms)
{
	struct entry *e = find(s, agent_id);
	if (e == NULL) {
		struct entry *entries = sp_grow(s->entries, &s->capentries, s->nentries + 1,
						sizeof(*entries), 64);
		if (entries == NULL)
			return SP_ENOMEM;
		s->entries = entries;
		if (index_fit(s))
			return SP_ENOMEM;
		e = &s->entries[s->nentries];
		*e = (struct entry){.agent_id = agent_id};
		*slot_of(s, agent_id) = (uint32_t)++s->nentries;
	}
	if (e->noted) {
		if (received_ms > e->received_ms)
			e->received_ms = received_ms;
		return 0;
	}
	uint32_t *noted = sp_grow(s->noted, &s->capnoted, s->nnoted + 1, sizeof(*noted), 64);
	if (noted == NULL)
		return SP_ENOMEM;
	s->noted = noted;
	s->noted[s->nnoted++] = (uint32_t)(e - s->entries);
	e->noted = true;
	e->received_ms = received_ms;
	/* back from a silence longer than the slow flush's period, or a row that may say offline */
	if (!e->row_online || received_ms - e->written_ms > s->slow_ms)
		set_urgent(s, e);
	return 0;
}

void agentseen_state_changed(struct agentseen *s, int64_t agent_id)
{
	struct entry *e = find(s, agent_id);
	if (e == NULL)
		return; /* its first note is urgent anyway */
	e->row_online = false;
	e->stated = true;
	if (e->noted)
		set_urgent(s, e);
}

int agentseen_write(struct agentseen *s, bool all, agentseen_write_fn fn, void *ctx)
{
	for (size_t i = 0; i < s->nnoted; i++) {
		struct entry *e = &s->entries[s->noted[i]];
		if (!all && !e->urgent)
			continue;
		int rc = fn(ctx, e->agent_id, e->received_ms);
		if (rc)
			return rc;
		e->writing = true;
	}
	return 0;
}

void agentseen_committed(struct agentseen *s)
{
	size_t kept = 0;
	for (size_t i = 0; i < s->nnoted; i++) {
		struct entry *e = &s->entries[s->noted[i]];
		if (!e->writing) {
			s->noted[kept++] = s->noted[i];
			continue;
		}
		if (e->urgent)
			s->nurgent--;
		e->writing = e->noted = e->urgent = false;
		e->written_ms = e->received_ms;
		/*
		 * The write set online unless a state message said offline after
		 * the data arrived; after one, the next note is written soon again
		 * rather than guessed.
		 */
		e->row_online = !e->stated;
		e->stated = false;
	}
	s->nnoted = kept;
}

void agentseen_aborted(struct agentseen *s)
{
	for (size_t i = 0; i < s->nnoted; i++)
		s->entries[s->noted[i]].writing = false;
}

void agentseen_clock_set_back(struct agentseen *s, int64_t now_ms, int64_t back_ms)
{
	for (size_t i = 0; i < s->nentries; i++) {
		struct entry *e = &s->entries[i];
		if (e->received_ms > now_ms)
			e->received_ms -= back_ms;
		if (e->written_ms > now_ms)
			e->written_ms -= back_ms;
	}
}

size_t agentseen_pending(const struct agentseen *s)
{
	return s->nnoted;
}

size_t agentseen_urgent(const struct agentseen *s)
{
	return s->nurgent;
}
