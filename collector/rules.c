/*
 * rules.c - the rules engine of rules.h: the state of the conditions that
 * hold now, and rules_eval/tick/load/reset.
 * What each rule judges, its defaults and its alert's wording are the
 * catalogue's (rules_catalogue.c, through rules_int.h; docs/alerts.md).
 *
 * State is two hash tables: dense arrays grown with sp_grow, their slots
 * numbered and indexed by a slotindex.h each (a freed slot is released and
 * claimed again before a new one):
 *   - conditions ("entries"), keyed (device, rule, port, code): one per
 *     condition true now, pending its hold or alerted;
 *   - devices with at least one condition: the device's names (for events
 *     raised by rules_tick, which has no record) and its clock. A device is
 *     dropped with its last condition, so memory follows the conditions.
 * About 110 bytes per condition and 110 per device with conditions (its
 * names included): 100,000 alerts on as many devices take some 22 MB.
 * Freed slots are reused; the arrays stay at their high-water mark until
 * rules_destroy. lift.door_reopen also needs the door counter of every lift
 * whose door is busy now, alerted or not: that count is restcount.h's
 * (about 64 bytes such a lift, in memory only).
 *
 * A record is taken to describe its device until the next one (agents
 * send on every change): a hold therefore runs out at since + hold when
 * any later record of the device is at or past that time, even one that
 * ends the condition (then the alert opens and clears at once, with the
 * true times). rules_tick finds the holds that run out with no record
 * arriving, on the device's clock extrapolated by the collector's.
 * Cost: rules_eval is a few hash look-ups per record; rules_tick walks
 * every condition (about 0.1 ms per 100,000).
 */
#include "faultmemo.h"
#include "restcount.h"
#include "rules_int.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/slotindex.h"

#include <stdlib.h>
#include <string.h>

#define MIN_HEADS    64u
#define FREE_SLOT    0xff      /* entry.rule of an unused slot */
#define NO_OPENED_AT INT64_MIN /* a loaded alert's opening time is not known */
#define NOT_BEHIND   INT64_MIN /* device.behind_rx of a device whose records keep its time */

/* ----------------------------------------------------------------- state */

/* A condition true now: pending its hold (!open) or alerted (open). */
struct entry {
	int64_t since;     /* device time the condition began */
	int64_t last_ts;   /* newest record ts it has judged: older ones are ignored */
	int64_t opened_at; /* open: the alert's opened_at (as stored, when reloaded) */
	int64_t alert_id;  /* open: the store's id */
	char *code;        /* fault rules: the device's code (heap); NULL = "" */
	char *text;        /* pending fault: the device's own detail (heap) or NULL */
	struct snap snap;  /* pending: the latest values, for the detail */
	int32_t dev;       /* index in rules.devs */
	int32_t port;
	uint8_t rule; /* enum rule_id; FREE_SLOT when unused */
	bool open;
};

/* A device with at least one condition. */
struct device {
	int64_t id;
	int64_t clock_ts; /* its newest record's ts ... */
	int64_t clock_rx; /* ... and the collector's time when that record arrived */
	/*
	 * The collector's time since when its records, not late, have all been
	 * more than the clock step behind clock_ts (NOT_BEHIND: the latest was
	 * not): its clock may have been set back (follow_clock).
	 */
	int64_t behind_rx;
	char *names;      /* "site\0dev\0" (heap); NULL when the slot is unused */
	uint32_t nentries;
	/*
	 * Bit r: rule r has had a condition on this device since it was added
	 * here. A superset of the rules it has conditions of now (a bit is not
	 * cleared when its condition ends; the device is dropped with its last
	 * one): a record skips the condition look-up of every other rule, and
	 * most records are heartbeats of devices with one condition or none.
	 */
	uint32_t rules_seen;
};
_Static_assert(RULE_COUNT <= 32, "rule ids fit device.rules_seen");

struct rules {
	const struct rules_config *cfg;
	struct entry *entries;
	size_t entries_cap;
	struct sp_slotindex entry_index; /* slots [0, high) of entries */
	struct device *devs;
	size_t devs_cap;
	struct sp_slotindex dev_index; /* slots [0, high) of devs */
	struct faultmemo *clears; /* the newest clear of each fault seen (faultmemo.h) */
	struct restcount *stops;  /* door cycles of the lifts stopped now (restcount.h) */
	/* the rules that read each record kind, in catalogue order: a record visits only its own */
	uint8_t by_kind[SP_REC_KIND_COUNT][RULE_COUNT];
	uint8_t nby_kind[SP_REC_KIND_COUNT];
};
_Static_assert(RULE_COUNT <= UINT8_MAX, "rule ids fit rules.by_kind");

static uint32_t entry_hash(int32_t dev, enum rule_id rule, int32_t port, const char *code)
{
	uint64_t h = sp_hash_mix(sp_hash_mix(sp_hash_mix(0, (uint32_t)dev), (uint64_t)rule),
				 (uint32_t)port);
	return sp_hash_fold(sp_hash_str(h, code));
}

static int32_t dev_find(const struct rules *r, int64_t id)
{
	for (int32_t i = sp_slotindex_first(&r->dev_index, sp_hash_id(id)); i >= 0;
	     i = sp_slotindex_next(&r->dev_index, i))
		if (r->devs[i].id == id)
			return i;
	return -1;
}

/* a + b, saturated, for times; b >= 0. */
static int64_t add_time(int64_t a, int64_t b)
{
	return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* The device's clock at the collector's time now: its newest ts, carried forward. */
static int64_t dev_now(const struct device *dv, int64_t now)
{
	return add_time(dv->clock_ts, now > dv->clock_rx ? now - dv->clock_rx : 0);
}

void rules_clock_set_back(struct rules *r, int64_t now_ms, int64_t back_ms)
{
	for (int32_t i = 0; i < r->dev_index.high; i++) {
		struct device *dv = &r->devs[i];
		if (dv->names == NULL)
			continue; /* a free slot */
		if (dv->clock_rx > now_ms)
			dv->clock_rx -= back_ms; /* both are collector times: no overflow */
		if (dv->behind_rx != NOT_BEHIND && dv->behind_rx > now_ms)
			dv->behind_rx -= back_ms;
	}
}

void rules_clock_set_forward(struct rules *r, int64_t fwd_ms)
{
	for (int32_t i = 0; i < r->dev_index.high; i++) {
		struct device *dv = &r->devs[i];
		if (dv->names == NULL)
			continue; /* a free slot */
		dv->clock_rx = add_time(dv->clock_rx, fwd_ms);
		if (dv->behind_rx != NOT_BEHIND)
			dv->behind_rx = add_time(dv->behind_rx, fwd_ms);
	}
}

/* Moves the device's clock forward to a newer record (ts, arrived at rx). */
static void dev_clock(struct device *dv, int64_t ts, int64_t rx)
{
	if (ts >= dv->clock_ts) {
		dv->clock_ts = ts;
		dv->clock_rx = rx;
	}
}

/* Adds device d with its clock at (ts, rx). Its index, or -1 on no memory. */
static int32_t dev_add(struct rules *r, const struct rule_device *d, int64_t ts, int64_t rx)
{
	size_t ls = strlen(d->site), ld = strlen(d->dev);
	char *names = malloc(ls + ld + 2);
	if (names == NULL)
		return -1;
	struct device *p = sp_grow(r->devs, &r->devs_cap,
				   (size_t)sp_slotindex_peek(&r->dev_index) + 1, sizeof(*p), 64);
	if (p == NULL)
		goto fail;
	r->devs = p;
	int32_t i = sp_slotindex_claim(&r->dev_index, sp_hash_id(d->id));
	if (i < 0)
		goto fail;
	memcpy(names, d->site, ls + 1);
	memcpy(names + ls + 1, d->dev, ld + 1);
	r->devs[i] = (struct device){.id = d->id, .clock_ts = ts, .clock_rx = rx,
				     .behind_rx = NOT_BEHIND, .names = names};
	return i;
fail:
	free(names);
	return -1;
}

static void dev_drop(struct rules *r, int32_t i)
{
	struct device *dv = &r->devs[i];
	sp_slotindex_release(&r->dev_index, i);
	free(dv->names);
	dv->names = NULL;
}

static int32_t entry_find(const struct rules *r, int32_t dev, enum rule_id rule, int32_t port,
			  const char *code)
{
	for (int32_t i = sp_slotindex_first(&r->entry_index, entry_hash(dev, rule, port, code));
	     i >= 0; i = sp_slotindex_next(&r->entry_index, i)) {
		const struct entry *e = &r->entries[i];
		if (e->dev == dev && e->rule == rule && e->port == port &&
		    strcmp(e->code ? e->code : "", code) == 0)
			return i;
	}
	return -1;
}

/* Adds a pending condition of device dev, not yet started. Its index, or -1 on no memory. */
static int32_t entry_add(struct rules *r, int32_t dev, enum rule_id rule, int32_t port,
			 const char *code)
{
	char *copy = NULL;
	if (code[0] != '\0' && (copy = strdup(code)) == NULL)
		return -1;
	struct entry *p = sp_grow(r->entries, &r->entries_cap,
				  (size_t)sp_slotindex_peek(&r->entry_index) + 1, sizeof(*p), 64);
	if (p == NULL)
		goto fail;
	r->entries = p;
	int32_t i = sp_slotindex_claim(&r->entry_index, entry_hash(dev, rule, port, code));
	if (i < 0)
		goto fail;
	r->entries[i] = (struct entry){.code = copy,
				       .dev = dev,
				       .port = port,
				       .rule = (uint8_t)rule,
				       .opened_at = NO_OPENED_AT};
	r->devs[dev].nentries++;
	r->devs[dev].rules_seen |= 1u << rule;
	return i;
fail:
	free(copy);
	return -1;
}

/* Forgets condition i, and its device with its last condition. */
static void entry_drop(struct rules *r, int32_t i)
{
	struct entry *e = &r->entries[i];
	sp_slotindex_release(&r->entry_index, i);
	free(e->code);
	free(e->text);
	int32_t dev = e->dev;
	*e = (struct entry){.rule = FREE_SLOT};
	if (--r->devs[dev].nentries == 0)
		dev_drop(r, dev);
}

/* When condition e's hold runs out under setting s (device time). */
static int64_t due_at(const struct entry *e, const struct rule_setting *s)
{
	return add_time(e->since, s->hold_ms > 0 ? s->hold_ms : 0);
}

/* ------------------------------------------------------------- lifecycle */

struct rules *rules_create(const struct rules_config *cfg)
{
	if (cfg == NULL)
		return NULL;
	struct rules *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->cfg = cfg;
	for (int rule = 0; rule < RULE_COUNT; rule++) {
		enum sp_rec_kind k = rule_reads((enum rule_id)rule);
		if (k < SP_REC_KIND_COUNT)
			r->by_kind[k][r->nby_kind[k]++] = (uint8_t)rule;
	}
	int rc_entries = sp_slotindex_init(&r->entry_index, MIN_HEADS);
	int rc_devs = sp_slotindex_init(&r->dev_index, MIN_HEADS);
	r->clears = faultmemo_create(RULES_FAULT_CLEARS_MAX);
	r->stops = restcount_create(RULES_DOOR_COUNTS_MAX, RULES_DOOR_IDLE_MS);
	if (rc_entries || rc_devs || r->clears == NULL || r->stops == NULL) {
		rules_destroy(r);
		return NULL;
	}
	return r;
}

void rules_destroy(struct rules *r)
{
	if (r == NULL)
		return;
	if (r->entry_index.heads && r->dev_index.heads)
		rules_reset(r);
	free(r->entries);
	sp_slotindex_free(&r->entry_index);
	free(r->devs);
	sp_slotindex_free(&r->dev_index);
	faultmemo_destroy(r->clears);
	restcount_destroy(r->stops);
	free(r);
}

void rules_reset(struct rules *r)
{
	for (int32_t i = 0; i < r->entry_index.high; i++) {
		free(r->entries[i].code);
		free(r->entries[i].text);
	}
	for (int32_t i = 0; i < r->dev_index.high; i++)
		free(r->devs[i].names);
	/* keep the arrays (the reload after a rollback refills them); forget their contents */
	sp_slotindex_clear(&r->entry_index);
	sp_slotindex_clear(&r->dev_index);
}

void rules_note_fault_clear(struct rules *r, int64_t device_id, int32_t port, const char *code,
			    int64_t ts)
{
	faultmemo_note_clear(r->clears, device_id, port, code, ts);
}

size_t rules_count(const struct rules *r)
{
	return r->entry_index.count;
}

uint64_t rules_door_counts_refused(const struct rules *r)
{
	return restcount_refused(r->stops);
}

/* ---------------------------------------------------------------- events */

/*
 * Tells fn about condition i. OPEN writes the detail from the kept values
 * and turns the condition into an alert when fn accepts it.
 */
static int emit(struct rules *r, int32_t i, enum rule_event_kind kind, int64_t ts,
		const struct rule_setting *s, rule_event_fn fn, void *ctx)
{
	struct entry *e = &r->entries[i];
	const struct device *dv = &r->devs[e->dev];
	const char *code = e->code ? e->code : "";
	char detail[DETAIL_MAX];
	detail[0] = '\0';
	struct rule_event ev = {.kind = kind,
				.rule = (enum rule_id)e->rule,
				.device_id = dv->id,
				.site = dv->names,
				.dev = dv->names + strlen(dv->names) + 1,
				.port = e->port,
				.code = code,
				.severity = s->severity,
				.since = e->since,
				.ts = ts,
				.alert_id = e->alert_id,
				.detail = detail};
	if (kind == RULE_OPEN)
		rule_describe(ev.rule, &e->snap, s, e->port, code, e->text, ts - e->since, detail,
			      sizeof(detail));
	int64_t id = 0;
	int rc = fn(ctx, &ev, &id);
	if (rc != 0)
		return rc;
	if (kind == RULE_OPEN) {
		e->open = true;
		e->alert_id = id;
		e->opened_at = ts;
		free(e->text); /* only needed for the detail */
		e->text = NULL;
	}
	return 0;
}

/* Keeps a TRUE record's values for the detail of an alert still to open. */
static int keep_values(struct entry *e, const struct snap *v, const struct sp_record *rec)
{
	e->snap = *v;
	if (rec->kind != SP_REC_FAULT)
		return 0;
	char *text = NULL;
	if ((rec->has & SP_HAS_DETAIL) && (text = strdup(rec->u.fault.detail)) == NULL)
		return SP_ENOMEM;
	free(e->text);
	e->text = text;
	return 0;
}

/* A condition became true: a hold starts, or with no hold the alert opens. */
static int start(struct rules *r, const struct rule_device *d, const struct sp_record *rec,
		 enum rule_id rule, int32_t port, const char *code, const struct rule_setting *s,
		 const struct snap *v, int64_t received_ms, rule_event_fn fn, void *ctx)
{
	int32_t dev = dev_find(r, d->id);
	if (dev < 0 && (dev = dev_add(r, d, rec->ts, received_ms)) < 0)
		return SP_ENOMEM;
	int32_t i = entry_add(r, dev, rule, port, code);
	if (i < 0) {
		if (r->devs[dev].nentries == 0)
			dev_drop(r, dev);
		return SP_ENOMEM;
	}
	struct entry *e = &r->entries[i];
	/*
	 * While the device's records arrive behind its clock (set back, perhaps:
	 * follow_clock), a condition begins on that clock, as its others do; the
	 * tick would otherwise take its hold as run out at once.
	 */
	const struct device *dv = &r->devs[dev];
	e->since = dv->behind_rx == NOT_BEHIND ? rec->ts : dev_now(dv, received_ms);
	e->last_ts = rec->ts;
	int rc = keep_values(e, v, rec);
	if (rc == 0)
		rc = emit(r, i, s->hold_ms > 0 ? RULE_HOLD_START : RULE_OPEN, e->since, s, fn, ctx);
	if (rc != 0)
		entry_drop(r, i); /* fn saw nothing it must undo, or failed (state is undefined) */
	return rc;
}

/*
 * Lift rules other than lift.mode are quiet while people work on the lift
 * (DOMAIN §4.1: inspection). Out of service quiets them too (a car parked
 * with its door open, or with the mains off, is what the crew that took it
 * out of service expects), all but lift.trapped: a passenger shut in a
 * stopped car is trapped whatever the mode, and a controller that stops a
 * car after a fault often says out of service — just when people get stuck.
 */
static bool suppressed(enum rule_id rule, const struct sp_record *rec)
{
	if (rec->kind != SP_REC_LIFT || rule == RULE_LIFT_MODE)
		return false;
	if (rec->u.lift.mode == SP_MODE_OUT_OF_SERVICE)
		return rule != RULE_LIFT_TRAPPED;
	return rec->u.lift.mode == SP_MODE_INSPECTION;
}

/*
 * Judges one rule on one record. *dev is the device's index (or -1), found
 * once per record by rules_eval and found again here whenever a condition
 * begins or ends (the device may then be added or dropped).
 */
static int judge_one(struct rules *r, const struct rule_device *d, const struct sp_record *rec,
		     const struct rule_facts *facts, enum rule_id rule, int32_t port,
		     const char *code, int64_t received_ms, int32_t *dev, rule_event_fn fn,
		     void *ctx)
{
	const struct rule_setting *s = rules_config_get(r->cfg, d->site, rule);
	struct snap v = {0};
	enum verdict vd = V_FALSE; /* a disabled or suppressed rule sees its condition gone */
	if (s->enabled && !suppressed(rule, rec))
		vd = rule_judge(rule, d, rec, facts, s, &v);

	int32_t i = *dev < 0 || !(r->devs[*dev].rules_seen & (1u << rule))
			    ? -1
			    : entry_find(r, *dev, rule, port, code);
	if (vd == V_KEEP_OPEN) /* rules_int.h */
		vd = i >= 0 && r->entries[i].open ? V_UNKNOWN : V_FALSE;
	if (i < 0) {
		if (vd != V_TRUE)
			return 0;
		int rc = start(r, d, rec, rule, port, code, s, &v, received_ms, fn, ctx);
		*dev = dev_find(r, d->id);
		return rc;
	}
	struct entry *e = &r->entries[i];
	if (rec->ts < e->last_ts)
		return 0; /* older than what this condition has seen: out of date */
	e->last_ts = rec->ts;
	int rc = 0;
	if (!e->open) {
		if (vd == V_TRUE && (rc = keep_values(e, &v, rec)) != 0)
			return rc;
		/* the condition lasted at least until this record: the hold may have run out */
		int64_t due = due_at(e, s);
		if (s->enabled && rec->ts >= due &&
		    (rc = emit(r, i, RULE_OPEN, due, s, fn, ctx)) != 0)
			return rc;
	}
	if (vd != V_FALSE)
		return 0;
	e = &r->entries[i];
	if (e->open) {
		/* never before it opened, should the tick's extrapolation have run ahead */
		int64_t ts = rec->ts > e->opened_at ? rec->ts : e->opened_at;
		rc = emit(r, i, RULE_CLEAR, ts, s, fn, ctx);
	} else {
		rc = emit(r, i, RULE_HOLD_END, rec->ts, s, fn, ctx);
	}
	if (rc != 0)
		return rc;
	entry_drop(r, i);
	*dev = dev_find(r, d->id);
	return 0;
}

/*
 * lift.door_reopen's count for lift record rec of device d (restcount.h),
 * taken once per record before the rules judge it. A car that runs ends
 * its count; so does one the rule does not judge now (disabled for its site,
 * or in inspection or out of service, where a technician cycling the door
 * is no obstruction: counting starts again with the first record after).
 * A lift the table has no room for is not counted (out->counting false):
 * the rule cannot judge it, which leaves its state as it was.
 */
static void count_door_cycles(struct rules *r, const struct rule_device *d,
			      const struct sp_record *rec, struct restcount_seen *out)
{
	const struct sp_lift *l = &rec->u.lift;
	const struct rule_setting *s = rules_config_get(r->cfg, d->site, RULE_LIFT_DOOR_REOPEN);
	*out = (struct restcount_seen){0};
	if (!s->enabled || suppressed(RULE_LIFT_DOOR_REOPEN, rec) || l->dir != SP_DIR_STOP) {
		restcount_forget(r->stops, d->id);
		return;
	}
	/* SP_EFULL / SP_ENOMEM: not counted (out says so), and restcount counts the refusal */
	(void)restcount_note(r->stops, d->id, l->floor, l->door == SP_DOOR_CLOSED,
			     (rec->has & SP_HAS_DOOR_CYCLES) != 0, l->door_cycles, rec->ts, out);
}

/* RULE_FAULT_CLEARED or RULE_RAISE_STALE of fault record rec. */
static int fault_event(const struct rule_device *d, const struct sp_record *rec,
		       enum rule_event_kind kind, enum rule_id rule, int32_t port, rule_event_fn fn,
		       void *ctx)
{
	struct rule_event ev = {.kind = kind, .rule = rule, .device_id = d->id, .site = d->site,
				.dev = d->dev, .port = port, .code = rec->u.fault.code,
				.ts = rec->ts, .detail = ""};
	int64_t unused = 0;
	return fn(ctx, &ev, &unused);
}

/*
 * The device's clock set back (follow_clock): its clock restarts from the
 * record (ts, arrived at rx), its conditions judge records from ts on, and
 * each pending hold begun on the old clock keeps the time it has run there
 * (its since moves with the clock, and is written again). A hold whose
 * since is not after ts is kept as it is: it began on the new clock (the
 * step is taken again after a restart, from the stored last_seen) or has
 * run longer than the step (it then runs out later by the step at most).
 * An open alert's opened_at stays as it was told.
 */
static int clock_set_back(struct rules *r, int32_t dev, int64_t ts, int64_t rx, rule_event_fn fn,
			  void *ctx)
{
	struct device *dv = &r->devs[dev];
	int64_t was = dev_now(dv, rx);
	int64_t shift = ts - was; /* < 0; both are valid record times, so no overflow */
	struct rule_event ev = {.kind = RULE_CLOCK_STEP, .device_id = dv->id, .site = dv->names,
				.dev = dv->names + strlen(dv->names) + 1, .code = "",
				.since = was, .ts = ts, .detail = ""};
	int64_t unused = 0;
	int rc = fn(ctx, &ev, &unused);
	if (rc != 0)
		return rc;
	dv->clock_ts = ts;
	dv->clock_rx = rx;
	dv->behind_rx = NOT_BEHIND;
	/* emit neither adds nor drops entries; a clock step is rare, so a walk of all will do */
	for (int32_t i = 0; i < r->entry_index.high; i++) {
		struct entry *e = &r->entries[i];
		if (e->rule == FREE_SLOT || e->dev != dev)
			continue;
		e->last_ts = ts;
		if (e->open || e->since <= ts)
			continue;
		e->since += shift;
		const struct rule_setting *s = rules_config_get(r->cfg, dv->names, e->rule);
		if ((rc = emit(r, (int32_t)i, RULE_HOLD_MOVED, e->since, s, fn, ctx)) != 0)
			return rc;
	}
	return 0;
}

/*
 * Follows the device's clock to a record of it (ts, arrived at rx; late as
 * for rules_eval). A clock only moves forward, so a device whose clock is
 * set back would have its records ignored by its conditions until its new
 * time passed the old; but records that are not late and arrive far behind
 * can also be old ones a terminal kept while its link was down and sends
 * now, which must not rewind the rules. So the clock is taken as set back
 * only once such records have kept coming for the clock step's time (a
 * kept backlog comes in a burst and is followed by current records again).
 */
static int follow_clock(struct rules *r, int32_t dev, int64_t ts, int64_t rx, bool late,
			rule_event_fn fn, void *ctx)
{
	struct device *dv = &r->devs[dev];
	int64_t step = rules_config_clock_step(r->cfg);
	if (late || ts >= dv->clock_ts - step) {
		if (!late)
			dv->behind_rx = NOT_BEHIND;
		dev_clock(dv, ts, rx);
		return 0;
	}
	if (dv->behind_rx == NOT_BEHIND || rx < dv->behind_rx) {
		dv->behind_rx = rx; /* (and should the collector's clock have stepped back itself) */
		return 0;
	}
	return rx - dv->behind_rx >= step ? clock_set_back(r, dev, ts, rx, fn, ctx) : 0;
}

/* A tracked condition of rule on device dev (an index, or -1), port and code. */
static bool has_entry(const struct rules *r, int32_t dev, enum rule_id rule, int32_t port,
		      const char *code)
{
	return dev >= 0 && (r->devs[dev].rules_seen & (1u << rule)) &&
	       entry_find(r, dev, rule, port, code) >= 0;
}

/*
 * The fault rule a fault record of device d (index dev, or -1) is judged
 * under: its kind's. A device of unknown kind (data before its birth) is
 * guessed from the record, a port saying charger, none lift; its kind may
 * become known later (a birth, or the writer learning it from a lift,
 * station or port record), so the guess may have been wrong. The fault's
 * condition is then tracked under the other fault rule, and stays there:
 * a record that finds none under its kind's rule takes the other rule's of
 * the same port and code, if there is one. So an alert opened under the
 * guess is ended by its clear (its RULE_CLEAR names it, and holds keep
 * their key), also one reloaded after a restart, and a raise repeated
 * meanwhile does not open a second alert that would outlive it.
 */
static enum rule_id fault_rule(const struct rules *r, const struct rule_device *d, int32_t dev,
			       bool has_port, int32_t port, const char *code)
{
	bool lift = d->kind == SP_DEV_LIFT || (d->kind == SP_DEV_UNKNOWN && !has_port);
	enum rule_id rule = lift ? RULE_LIFT_FAULT : RULE_CHARGER_FAULT;
	enum rule_id other = lift ? RULE_CHARGER_FAULT : RULE_LIFT_FAULT;
	if (!has_entry(r, dev, other, port, code) || has_entry(r, dev, rule, port, code))
		return rule;
	return other;
}

int rules_eval(struct rules *r, const struct rule_device *d, const struct sp_record *rec, bool late,
	       int64_t received_ms, rule_event_fn fn, void *ctx)
{
	if (rec->kind == SP_REC_SESSION)
		return 0;
	if (late && rec->kind != SP_REC_FAULT)
		return 0; /* newer records of this device already moved these rules */

	struct rule_facts facts = {0};
	int32_t dev = dev_find(r, d->id);
	if (dev >= 0) {
		int rc = follow_clock(r, dev, rec->ts, received_ms, late, fn, ctx);
		if (rc != 0)
			return rc;
	}

	if (rec->kind == SP_REC_FAULT) {
		bool has_port = (rec->has & SP_HAS_PORT) != 0;
		int32_t fport = has_port ? rec->u.fault.port : 0;
		const char *code = rec->u.fault.code;
		enum rule_id rule = fault_rule(r, d, dev, has_port, fport, code);
		if (rec->u.fault.active && late &&
		    faultmemo_cleared_since(r->clears, d->id, fport, code, rec->ts))
			/* resent after its own clear went through: the fault is over already */
			return fault_event(d, rec, RULE_RAISE_STALE, rule, fport, fn, ctx);
		int rc = judge_one(r, d, rec, &facts, rule, fport, code, received_ms, &dev, fn,
				   ctx);
		if (rc || rec->u.fault.active)
			return rc;
		faultmemo_note_clear(r->clears, d->id, fport, code, rec->ts);
		return fault_event(d, rec, RULE_FAULT_CLEARED, rule, fport, fn, ctx);
	}
	int32_t port = rec->kind == SP_REC_PORT ? rec->u.port.port : 0;
	if (rec->kind == SP_REC_LIFT)
		count_door_cycles(r, d, rec, &facts.door);
	for (int i = 0; i < r->nby_kind[rec->kind]; i++) {
		int rc = judge_one(r, d, rec, &facts, (enum rule_id)r->by_kind[rec->kind][i], port,
				   "", received_ms, &dev, fn, ctx);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int rules_tick(struct rules *r, int64_t now_ms, rule_event_fn fn, void *ctx)
{
	/* emit does not add or drop entries, so the walk is stable */
	for (int32_t i = 0; i < r->entry_index.high; i++) {
		const struct entry *e = &r->entries[i];
		if (e->rule == FREE_SLOT || e->open)
			continue;
		const struct device *dv = &r->devs[e->dev];
		const struct rule_setting *s = rules_config_get(r->cfg, dv->names, e->rule);
		if (!s->enabled)
			continue; /* a reloaded hold of a disabled rule ends with the next record */
		int64_t due = due_at(e, s);
		if (dev_now(dv, now_ms) < due)
			continue;
		int rc = emit(r, (int32_t)i, RULE_OPEN, due, s, fn, ctx);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- loading */

/* since: a hold's start, or (open) the alert's opened_at */
static int load(struct rules *r, const struct rule_device *d, const char *name, int32_t port,
		const char *code, bool open, int64_t alert_id, int64_t since, int64_t device_ts,
		int64_t loaded_ms)
{
	int rule = rule_parse(name);
	if (rule < 0)
		return SP_EINVAL;
	if (rule_swept((enum rule_id)rule))
		return 0; /* offline.c reads these from the store on every sweep */
	/* keys as rules_eval makes them, whatever the store held */
	if (rule != RULE_LIFT_FAULT && rule != RULE_CHARGER_FAULT)
		code = "";
	else if (code == NULL)
		code = "";
	if (strlen(code) > SP_FAULT_CODE_MAX)
		return SP_EINVAL;
	enum sp_rec_kind reads = rule_reads((enum rule_id)rule);
	if (reads == SP_REC_LIFT || reads == SP_REC_STATION)
		port = 0;

	/*
	 * A last_seen further ahead of the collector's clock than the clock step
	 * may be one of a clock set back since, whose step was taken: a hold
	 * begun on the new clock (its since not that far ahead) would run out at
	 * once on the old one's tick, so the device restarts from the
	 * collector's time. A hold begun that far ahead is one of a clock still
	 * ahead (or of a step not yet taken): the clock stays, and the device's
	 * records move it on (or are taken as a step again).
	 */
	int64_t ahead = add_time(loaded_ms, rules_config_clock_step(r->cfg));
	if (device_ts > ahead && (open || since <= ahead))
		device_ts = loaded_ms;
	int64_t clock_ts = !open && since > device_ts ? since : device_ts;
	int32_t dev = dev_find(r, d->id);
	if (dev >= 0)
		dev_clock(&r->devs[dev], clock_ts, loaded_ms);
	else if ((dev = dev_add(r, d, clock_ts, loaded_ms)) < 0)
		return SP_ENOMEM;
	int32_t i = entry_find(r, dev, (enum rule_id)rule, port, code);
	if (i < 0 && (i = entry_add(r, dev, (enum rule_id)rule, port, code)) < 0) {
		if (r->devs[dev].nentries == 0)
			dev_drop(r, dev);
		return SP_ENOMEM;
	}
	struct entry *e = &r->entries[i];
	e->open = open;
	e->alert_id = open ? alert_id : 0;
	e->since = open ? device_ts : since;
	/* a clear is never dated before the opening, across a restart too */
	e->opened_at = open ? since : NO_OPENED_AT;
	e->last_ts = clock_ts;
	e->snap.valid = false; /* the store keeps no values for the detail */
	return 0;
}

int rules_load_alert(struct rules *r, const struct rule_device *d, const char *rule, int32_t port,
		     const char *code, int64_t alert_id, int64_t opened_at, int64_t device_ts,
		     int64_t loaded_ms)
{
	return load(r, d, rule, port, code, true, alert_id, opened_at, device_ts, loaded_ms);
}

int rules_load_hold(struct rules *r, const struct rule_device *d, const char *rule, int32_t port,
		    const char *code, int64_t since, int64_t device_ts, int64_t loaded_ms)
{
	return load(r, d, rule, port, code, false, 0, since, device_ts, loaded_ms);
}
