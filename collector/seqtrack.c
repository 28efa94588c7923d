/*
 * seqtrack.c - per-agent sequence tracking (see seqtrack.h).
 *
 * Agents live in a chained hash table keyed by "site/agent". Intrusive
 * lists thread through them: the agents touched by the current batch (with
 * a snapshot for abort), the agents whose state is not yet folded into
 * their rows (the writer's progress log), and three for ack publication
 * (struct ack_list below), each kept in the order its agents fall due, so
 * a call of seqtrack_publish_due looks at the agents it publishes and at
 * most one more per list: its cost follows the acks sent, not the agents
 * waiting (a walk of every waiting agent every 10 ms grew with the fleet).
 */
#include "seqtrack.h"

#include "rangeset.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The ack lists. An agent whose ack differs from the one last published
 * (changed) is on ASKED or PACED, and on ADVANCED when the difference came
 * from a commit; one asked to publish again (duplicate, restore,
 * reconnect) is on ASKED.
 *   ASKED:    due at the next call (asked again; or changed with no
 *             publication within the interval); any order.
 *   PACED:    published within the last interval, oldest publication first;
 *             the head is due when its interval has passed and it changed.
 *   ADVANCED: changed by a commit, oldest advance first; when the writer is
 *             idle the head is due once it has not moved for the idle delay.
 * Times are the caller's monotonic milliseconds: the lists stay in order
 * because they never go back.
 */
enum { ACK_ASKED, ACK_PACED, ACK_ADVANCED, ACK_LISTS };

struct ack_link {
	struct seq_agent *prev, *next;
	bool on;
};

struct ack_list {
	struct seq_agent *head, *tail;
};

struct seq_agent {
	char site[SP_ID_MAX + 1];
	char agent[SP_ID_MAX + 1];
	int64_t agent_id;
	uint64_t hash;
	struct seq_agent *hash_next;

	int64_t acked;
	struct rangeset done;     /* handled seqs > acked + 1 */
	struct rangeset missing;  /* declared missing, <= acked */
	int64_t gap_since_ms;     /* first time the current gap was seen; 0 = none */

	/* batch snapshot */
	bool touched;
	struct seq_agent *next_touched;
	int64_t snap_acked, snap_gap_since;
	struct rangeset snap_done, snap_missing;

	bool unfolded;            /* on the unfolded list */
	struct seq_agent *next_unfolded;

	/* ack publication (monotonic times) */
	int64_t published_ack;    /* -1: not published since start */
	int64_t last_pub_ms;
	int64_t last_advance_ms;
	bool force_pub;           /* asked to publish again, even unchanged */
	bool waiting;             /* changed or asked: counted in npending */
	struct ack_link ack[ACK_LISTS];
};

struct seqtrack {
	int64_t gap_window_ms;
	struct seq_agent **buckets;
	size_t nbuckets;
	struct seq_agent *touched;
	struct seq_agent *unfolded;
	struct ack_list acks[ACK_LISTS];
	size_t npending;          /* agents waiting */
	struct seq_agent **all;   /* every agent, for expiry and republish */
	size_t nall, capall;
};

static uint64_t hash_key(const char *site, const char *agent)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (const char *p = site; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '/') * 1099511628211ULL;
	for (const char *p = agent; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

struct seqtrack *seqtrack_create(int64_t gap_window_ms)
{
	struct seqtrack *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->gap_window_ms = gap_window_ms;
	t->nbuckets = 256;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (t->buckets == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

static void agent_free(struct seq_agent *a)
{
	rangeset_free(&a->done);
	rangeset_free(&a->missing);
	rangeset_free(&a->snap_done);
	rangeset_free(&a->snap_missing);
	free(a);
}

void seqtrack_destroy(struct seqtrack *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nall; i++)
		agent_free(t->all[i]);
	free(t->all);
	free(t->buckets);
	free(t);
}

struct seq_agent *seqtrack_find(struct seqtrack *t, const char *site, const char *agent)
{
	uint64_t h = hash_key(site, agent);
	for (struct seq_agent *a = t->buckets[h & (t->nbuckets - 1)]; a; a = a->hash_next)
		if (a->hash == h && strcmp(a->site, site) == 0 && strcmp(a->agent, agent) == 0)
			return a;
	return NULL;
}

static int rehash(struct seqtrack *t)
{
	size_t n = t->nbuckets * 2;
	struct seq_agent **b = calloc(n, sizeof(*b));
	if (b == NULL)
		return SP_ENOMEM;
	for (size_t i = 0; i < t->nall; i++) {
		struct seq_agent *a = t->all[i];
		a->hash_next = b[a->hash & (n - 1)];
		b[a->hash & (n - 1)] = a;
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
	return 0;
}

struct seq_agent *seqtrack_add(struct seqtrack *t, const char *site, const char *agent,
			       int64_t agent_id)
{
	struct seq_agent **all = sp_grow(t->all, &t->capall, t->nall + 1, sizeof(*all), 64);
	if (all == NULL)
		return NULL;
	t->all = all;
	if (t->nall + 1 > t->nbuckets && rehash(t))
		return NULL;
	struct seq_agent *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	snprintf(a->site, sizeof(a->site), "%s", site);
	snprintf(a->agent, sizeof(a->agent), "%s", agent);
	a->agent_id = agent_id;
	a->hash = hash_key(site, agent);
	a->published_ack = -1;
	rangeset_init(&a->done, SEQTRACK_MAX_RANGES);
	rangeset_init(&a->missing, SEQTRACK_MISSING_KEPT);
	rangeset_init(&a->snap_done, SEQTRACK_MAX_RANGES);
	rangeset_init(&a->snap_missing, SEQTRACK_MISSING_KEPT);
	size_t b = a->hash & (t->nbuckets - 1);
	a->hash_next = t->buckets[b];
	t->buckets[b] = a;
	t->all[t->nall++] = a;
	return a;
}

static void ack_remove(struct seqtrack *t, struct seq_agent *a, int l)
{
	struct ack_link *k = &a->ack[l];
	if (!k->on)
		return;
	if (k->prev)
		k->prev->ack[l].next = k->next;
	else
		t->acks[l].head = k->next;
	if (k->next)
		k->next->ack[l].prev = k->prev;
	else
		t->acks[l].tail = k->prev;
	*k = (struct ack_link){0};
}

/* Appends a to list l; one already on it moves to the end. */
static void ack_append(struct seqtrack *t, struct seq_agent *a, int l)
{
	ack_remove(t, a, l);
	struct ack_list *list = &t->acks[l];
	a->ack[l] = (struct ack_link){.prev = list->tail, .next = NULL, .on = true};
	if (list->tail)
		list->tail->ack[l].next = a;
	else
		list->head = a;
	list->tail = a;
}

static void note_waiting(struct seqtrack *t, struct seq_agent *a)
{
	if (a->waiting)
		return;
	a->waiting = true;
	t->npending++;
}

/* Asks for a's ack to be published again, at once (duplicate, restore, reconnect). */
static void ask_again(struct seqtrack *t, struct seq_agent *a)
{
	a->force_pub = true;
	note_waiting(t, a);
	if (!a->ack[ACK_ASKED].on)
		ack_append(t, a, ACK_ASKED);
}

/* Puts an agent on the unfolded list: its state is newer than its row (or may be). */
static void note_unfolded(struct seqtrack *t, struct seq_agent *a)
{
	if (a->unfolded)
		return;
	a->unfolded = true;
	a->next_unfolded = t->unfolded;
	t->unfolded = a;
}

int seqtrack_restore(struct seqtrack *t, struct seq_agent *a, int64_t acked, const char *done,
		     const char *missing, int64_t gap_since_ms)
{
	a->acked = acked;
	a->gap_since_ms = gap_since_ms;
	/* the state may have come from the store's progress log, not the agent's row */
	note_unfolded(t, a);
	if (rangeset_parse(&a->done, done ? done : "") ||
	    rangeset_parse(&a->missing, missing ? missing : ""))
		return SP_EINVAL;
	/* an ack the broker may have lost (restart without persistence) is published again */
	ask_again(t, a);
	return 0;
}

enum seq_verdict seqtrack_check(const struct seq_agent *a, int64_t seq)
{
	if (seq <= a->acked)
		return rangeset_contains(&a->missing, seq) ? SEQ_LATE : SEQ_DUPLICATE;
	return rangeset_contains(&a->done, seq) ? SEQ_DUPLICATE : SEQ_NEW;
}

bool seqtrack_behind(const struct seq_agent *a, int64_t seq)
{
	/* done holds the handled seqs above acked + 1, in order: its last range ends highest */
	return seq <= a->acked || (a->done.n > 0 && a->done.r[a->done.n - 1].hi > seq);
}

/* First touch in a batch: keep what is needed to undo it. */
static int touch(struct seqtrack *t, struct seq_agent *a)
{
	if (a->touched)
		return 0;
	if (rangeset_copy(&a->snap_done, &a->done) || rangeset_copy(&a->snap_missing, &a->missing))
		return SP_ENOMEM;
	a->snap_acked = a->acked;
	a->snap_gap_since = a->gap_since_ms;
	a->touched = true;
	a->next_touched = t->touched;
	t->touched = a;
	return 0;
}

/* Moves acked over the handled seqs that now follow it. */
static void advance(struct seq_agent *a, int64_t now_ms)
{
	while (a->done.n > 0 && a->done.r[0].lo == a->acked + 1) {
		a->acked = a->done.r[0].hi;
		rangeset_pop_first(&a->done);
	}
	if (a->done.n == 0)
		a->gap_since_ms = 0;
	else if (a->gap_since_ms == 0)
		a->gap_since_ms = now_ms;
}

/* Declares the gap before the first out-of-order range missing. */
static int64_t declare_first_gap(struct seq_agent *a, int64_t now_ms)
{
	int64_t lo = a->acked + 1, hi = a->done.r[0].lo - 1;
	if (rangeset_add(&a->missing, lo, hi) == SP_EFULL) {
		/* remember the most recent gaps: forget the oldest */
		rangeset_pop_first(&a->missing);
		rangeset_add(&a->missing, lo, hi);
	}
	a->acked = hi;
	a->gap_since_ms = 0;
	advance(a, now_ms);
	return hi - lo + 1;
}

/* Takes seq out of the declared-missing set (making room by forgetting the oldest gaps). */
static void forget_missing(struct seq_agent *a, int64_t seq)
{
	while (rangeset_remove(&a->missing, seq) == SP_EFULL)
		rangeset_pop_first(&a->missing);
}

int64_t seqtrack_mark(struct seqtrack *t, struct seq_agent *a, int64_t seq, int64_t now_ms)
{
	int64_t missing = 0;
	if (touch(t, a))
		return SP_ENOMEM;
	if (seq <= a->acked) {
		forget_missing(a, seq); /* a late arrival of a seq declared missing */
		return 0;
	}
	int rc;
	while ((rc = rangeset_add(&a->done, seq, seq)) == SP_EFULL) {
		/* a hostile or broken agent scattering seqs: close the oldest gap now */
		missing += declare_first_gap(a, now_ms);
		if (seq <= a->acked) {
			/* seq itself was in that gap: it is being stored, not missing */
			forget_missing(a, seq);
			return missing - 1;
		}
	}
	if (rc)
		return SP_ENOMEM;
	advance(a, now_ms);
	return missing;
}

void seqtrack_note_duplicate(struct seqtrack *t, struct seq_agent *a)
{
	ask_again(t, a);
}

int64_t seqtrack_expire(struct seqtrack *t, int64_t now_ms)
{
	int64_t missing = 0;
	for (size_t i = 0; i < t->nall; i++) {
		struct seq_agent *a = t->all[i];
		if (a->done.n == 0 || a->gap_since_ms == 0 ||
		    now_ms - a->gap_since_ms < t->gap_window_ms)
			continue;
		if (touch(t, a))
			break;
		missing += declare_first_gap(a, now_ms);
	}
	return missing;
}

void seqtrack_clock_set_back(struct seqtrack *t, int64_t now_ms, int64_t back_ms)
{
	for (size_t i = 0; i < t->nall; i++) {
		struct seq_agent *a = t->all[i];
		if (a->gap_since_ms > now_ms) {
			a->gap_since_ms -= back_ms;
			note_unfolded(t, a);
		}
	}
}

void seqtrack_clock_set_forward(struct seqtrack *t, int64_t fwd_ms)
{
	for (size_t i = 0; i < t->nall; i++) {
		struct seq_agent *a = t->all[i];
		if (a->gap_since_ms != 0) {
			a->gap_since_ms += fwd_ms;
			note_unfolded(t, a);
		}
	}
}

struct seq_agent *seqtrack_first_touched(struct seqtrack *t)
{
	return t->touched;
}

struct seq_agent *seqtrack_next_touched(struct seq_agent *a)
{
	return a->next_touched;
}

struct seq_agent *seqtrack_first_unfolded(struct seqtrack *t)
{
	return t->unfolded;
}

struct seq_agent *seqtrack_next_unfolded(struct seq_agent *a)
{
	return a->next_unfolded;
}

bool seq_agent_unfolded(const struct seq_agent *a)
{
	return a->unfolded;
}

void seqtrack_folded(struct seqtrack *t)
{
	struct seq_agent *a = t->unfolded;
	while (a) {
		struct seq_agent *next = a->next_unfolded;
		a->unfolded = false;
		a->next_unfolded = NULL;
		a = next;
	}
	t->unfolded = NULL;
}

void seqtrack_commit(struct seqtrack *t, int64_t mono_ms)
{
	struct seq_agent *a = t->touched;
	while (a) {
		struct seq_agent *next = a->next_touched;
		if (a->acked != a->snap_acked) {
			a->last_advance_ms = mono_ms;
			note_waiting(t, a);
			ack_append(t, a, ACK_ADVANCED);
			/* published within the interval: PACED says when; else at once */
			if (!a->ack[ACK_PACED].on && !a->ack[ACK_ASKED].on)
				ack_append(t, a, ACK_ASKED);
		}
		note_unfolded(t, a);
		a->touched = false;
		a->next_touched = NULL;
		a = next;
	}
	t->touched = NULL;
}

void seqtrack_abort(struct seqtrack *t)
{
	struct seq_agent *a = t->touched;
	while (a) {
		struct seq_agent *next = a->next_touched;
		/* swap back the snapshot (the copies were made at first touch) */
		struct rangeset tmp = a->done;
		a->done = a->snap_done;
		a->snap_done = tmp;
		tmp = a->missing;
		a->missing = a->snap_missing;
		a->snap_missing = tmp;
		a->acked = a->snap_acked;
		a->gap_since_ms = a->snap_gap_since;
		a->touched = false;
		a->next_touched = NULL;
		a = next;
	}
	t->touched = NULL;
}

/* Publishes a's ack; non-zero when fn could not (nothing changes then). */
static int publish(struct seqtrack *t, struct seq_agent *a, int64_t mono_ms,
		   seqtrack_publish_fn fn, void *ctx)
{
	if (fn(ctx, a->site, a->agent, a->acked) != 0)
		return -1;
	a->published_ack = a->acked;
	a->last_pub_ms = mono_ms;
	a->force_pub = false;
	if (a->waiting) {
		a->waiting = false;
		t->npending--;
	}
	ack_remove(t, a, ACK_ASKED);
	ack_remove(t, a, ACK_ADVANCED);
	ack_append(t, a, ACK_PACED);
	return 0;
}

void seqtrack_publish_due(struct seqtrack *t, int64_t mono_ms, bool idle,
			  seqtrack_publish_fn fn, void *ctx)
{
	struct seq_agent *a;
	/* a failed publication stops the call: not connected, or the in-flight window is full */
	while ((a = t->acks[ACK_ASKED].head)) {
		bool changed = a->acked != a->published_ack;
		/* asked again while its ack also moved within the interval: paced like any advance */
		if ((a->force_pub && !changed) || (changed && !a->ack[ACK_PACED].on)) {
			if (publish(t, a, mono_ms, fn, ctx))
				return;
		} else {
			ack_remove(t, a, ACK_ASKED);
		}
	}
	while ((a = t->acks[ACK_PACED].head) &&
	       mono_ms - a->last_pub_ms >= SEQTRACK_ACK_INTERVAL_MS) {
		if (a->acked != a->published_ack) {
			if (publish(t, a, mono_ms, fn, ctx)) /* moves it to the end */
				return;
		} else {
			ack_remove(t, a, ACK_PACED); /* its next advance is due at once */
		}
	}
	while (idle && (a = t->acks[ACK_ADVANCED].head) &&
	       mono_ms - a->last_advance_ms >= SEQTRACK_IDLE_ACK_MS) {
		if (a->acked != a->published_ack) {
			if (publish(t, a, mono_ms, fn, ctx))
				return;
		} else {
			ack_remove(t, a, ACK_ADVANCED);
		}
	}
}

void seqtrack_republish_all(struct seqtrack *t)
{
	for (size_t i = 0; i < t->nall; i++)
		ask_again(t, t->all[i]);
}

const char *seq_agent_site(const struct seq_agent *a) { return a->site; }
const char *seq_agent_name(const struct seq_agent *a) { return a->agent; }
int64_t seq_agent_id(const struct seq_agent *a) { return a->agent_id; }
int64_t seq_agent_acked(const struct seq_agent *a) { return a->acked; }
int64_t seq_agent_gap_since(const struct seq_agent *a) { return a->gap_since_ms; }

int seq_agent_format_done(const struct seq_agent *a, struct sp_buf *out)
{
	return rangeset_format(&a->done, out);
}

int seq_agent_format_missing(const struct seq_agent *a, struct sp_buf *out)
{
	return rangeset_format(&a->missing, out);
}

size_t seqtrack_count(const struct seqtrack *t)
{
	return t->nall;
}

size_t seqtrack_pending_acks(const struct seqtrack *t)
{
	return t->npending;
}
