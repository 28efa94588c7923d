/*
 * agentseen.c - when each agent was last heard, and which notes are due
 * (see agentseen.h).
 *
 * Entries sit in one array for the writer's lifetime, numbered by a hash
 * index (slotindex.h: entries [0, index.high), none ever released) that
 * finds an agent's; the noted list holds the indexes of the entries heard
 * since their last committed write, so a flush looks at those alone.
 */
#include "agentseen.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/slotindex.h"

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
	size_t capentries;
	struct sp_slotindex index;
	uint32_t *noted;
	size_t nnoted, capnoted;
	size_t nurgent;
};

struct agentseen *agentseen_create(int64_t slow_ms)
{
	struct agentseen *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->slow_ms = slow_ms;
	if (sp_slotindex_init(&s->index, 256)) {
		free(s);
		return NULL;
	}
	return s;
}

void agentseen_destroy(struct agentseen *s)
{
	if (s == NULL)
		return;
	free(s->entries);
	sp_slotindex_free(&s->index);
	free(s->noted);
	free(s);
}

static struct entry *find(const struct agentseen *s, int64_t agent_id)
{
	for (int32_t i = sp_slotindex_first(&s->index, sp_hash_id(agent_id)); i >= 0;
	     i = sp_slotindex_next(&s->index, i))
		if (s->entries[i].agent_id == agent_id)
			return &s->entries[i];
	return NULL;
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
		struct entry *entries =
			sp_grow(s->entries, &s->capentries,
				(size_t)sp_slotindex_peek(&s->index) + 1, sizeof(*entries), 64);
		if (entries == NULL)
			return SP_ENOMEM;
		s->entries = entries;
		int32_t i = sp_slotindex_claim(&s->index, sp_hash_id(agent_id));
		if (i < 0)
			return SP_ENOMEM;
		e = &s->entries[i];
		*e = (struct entry){.agent_id = agent_id};
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
	for (int32_t i = 0; i < s->index.high; i++) {
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
