/*
 * summary.c - the city summary of one site and period (summary.h,
 * CONTRACT §6). Pure: no I/O, no clock, no global state.
 *
 * How: the caller hands in one device at a time with its records in time
 * order; the device's figures are worked out as the records pass (the
 * current device's state, struct feed) and kept in a struct dev_sum. The
 * alerts come after every device and add what depends on them (downtime,
 * trapped, alarms); summary_finish then writes the JSON. Memory follows the
 * input: one dev_sum per device, plus its online spans, its critical/major
 * alert spans, its fault codes and its alarm rules.
 *
 * Definitions. P is the period [start, end), O the caller's offline_ms.
 *  - online: a device is online from each of its records (of any kind) until
 *    O after it; the newest record before the period covers the period's
 *    start if it is within O of it. online_pct = online time / P. A device
 *    seen for the first time mid-period was offline before it (we cannot
 *    know otherwise).
 *  - lift counters (trips, door_cycles, run_s), each on its own: the growth
 *    of its values in the period, in time order, from where it stood before
 *    it (the lift records before the period carrying the field, through the
 *    same rule; how far back the caller looks is its choice), else from the
 *    first value in the period. A value lower than the baseline is a device
 *    reset, counting from 0, only when below half of it; a little lower is
 *    an out-of-order or spurious value that adds nothing (the baseline
 *    stays); a reset followed by a jump back near the old baseline was a
 *    spurious low value and is taken back (lifecount.c). At most 2^53-1,
 *    never below 0. Summed over consecutive periods this gives the lifetime
 *    counter's growth, with what happened while a lift was unreported
 *    counted in the period it is first seen.
 *  - downtime_s: unplanned downtime, the time of P covered by the union of
 *    the device's offline time and its critical or major alerts (each from
 *    opened_at to cleared_at, or to the end while still active), in whole
 *    seconds (rounded down). availability_pct = 1 - downtime / P.
 *  - faults: the lift's fault records with active:true in P, by code.
 *  - trapped: the device's lift.trapped alerts opened in P.
 *  - sessions, energy_wh, stops: the charger's session records in P (their
 *    count, the sum of wh rounded to a whole Wh, the count by reason).
 *  - utilization_pct: time ports spent in state charging / (ports x P). A
 *    port's state lasts from its record until the next record of that port
 *    or until O after it, whichever comes first; the newest record of each
 *    port before P gives its state at the start. ports is summary_device's
 *    (raised to the highest port seen, should a record name a higher one,
 *    so the share never exceeds 100 %), else the highest port seen; no
 *    port at all: 0.0.
 *  - peak_w: the highest station power_w in P; with no station power in P,
 *    the highest sum of the ports' w (each port's latest w while its record
 *    is younger than O), taken at each port record; nothing: 0.
 *  - alarms: the device's alerts opened in P, by rule as shown.
 *  - max_temp_c: the highest port temp_c in P; null when none.
 *  - alerts block (every alert handed in, devices listed or not): opened and
 *    cleared = opened_at / cleared_at within P; active_at_end = opened
 *    before the end and not cleared before it; by_severity = the opened ones
 *    by severity, always all four keys (critical, major, minor, warning),
 *    zeros included, so a consumer never has to guess a missing key; other
 *    severity texts count in opened only.
 * Devices of kind unknown are decided by their newest record before the
 * period, else their first in it (lift: lift; station, port, session:
 * charger; fault: charger if it names a port, else lift, as the alert
 * rules decide); one with no record at all is left out. Any record counts
 * towards online. Devices appear in the order given, lifts and chargers
 * each in their list.
 *
 * Output: keys in CONTRACT §6's order; integers as integers; percentages
 * and max_temp_c with one decimal, rounded half away from zero; maps with
 * free keys (faults, alarms) sorted by key (bytewise), stops in the
 * vocabulary's order (CONTRACT §3.2), only non-zero entries.
 */
#include "summary.h"

#include "lifecount.h"
#include "rules.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/ids.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ small tools */

/* A time span [from, to), ms. */
struct span {
	int64_t from, to;
};

struct spans {
	struct span *v;
	size_t n, cap;
};

static int spans_add(struct spans *s, int64_t from, int64_t to)
{
	struct span *v = sp_grow(s->v, &s->cap, s->n + 1, sizeof(*v), 8);
	if (v == NULL)
		return SP_ENOMEM;
	s->v = v;
	s->v[s->n++] = (struct span){from, to};
	return 0;
}

/* A count by name: sorted by name, so look-ups are binary and the output ordered. */
struct tally_item {
	char *name;
	int64_t n;
};

struct tally {
	struct tally_item *v;
	size_t n, cap;
};

static int tally_add(struct tally *t, const char *name)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(t->v[mid].name, name);
		if (cmp == 0) {
			t->v[mid].n++;
			return 0;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct tally_item *v = sp_grow(t->v, &t->cap, t->n + 1, sizeof(*v), 4);
	if (v == NULL)
		return SP_ENOMEM;
	t->v = v;
	char *copy = strdup(name);
	if (copy == NULL)
		return SP_ENOMEM;
	memmove(&t->v[lo + 1], &t->v[lo], (t->n - lo) * sizeof(*v));
	t->v[lo] = (struct tally_item){copy, 1};
	t->n++;
	return 0;
}

static void tally_free(struct tally *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
}

/* The length of [from, to) inside [lo, hi). */
static int64_t overlap(int64_t from, int64_t to, int64_t lo, int64_t hi)
{
	int64_t a = from > lo ? from : lo;
	int64_t b = to < hi ? to : hi;
	return b > a ? b - a : 0;
}

/* part / whole in tenths of a percent, rounded half up (0 <= part, 0 < whole). */
static int64_t tenths_pct(int64_t part, int64_t whole)
{
	/* part and whole are ms of at most 64 periods: far from overflowing x 1000 */
	return (part * 1000 + whole / 2) / whole;
}

/* ------------------------------------------------------------ state */

/* severities counted in the alerts block: the rules' own (rules.h) */
#define SEV_COUNT ALERT_SEVERITY_COUNT

struct by_name;

/* What the summary says of one device; kept until summary_finish, since alerts come last. */
struct dev_sum {
	char *dev;
	enum sp_dev_kind kind; /* as given, or decided by the records; UNKNOWN: left out */
	struct spans online;   /* merged, in time order, within the period */
	struct spans down;     /* critical and major alerts, clipped to the period */
	/* lift */
	int64_t trips, door_cycles, run_s;
	struct tally faults;
	int64_t trapped;
	/* charger */
	int64_t sessions;
	double energy_wh;
	int64_t charging_ms; /* summed over the ports */
	int32_t ports;
	bool has_station_w, has_port_w, has_temp;
	double station_w_max, port_w_max, max_temp_c;
	int64_t stops[SP_STOP_REASON_COUNT];
	struct tally alarms;
};

/* A port's state since its latest record. */
struct port_state {
	bool live; /* a record of this port has been seen */
	bool has_w;
	enum sp_port_state state;
	int64_t since;
	double w;
};

/* The device being fed (summary_device ... summary_record). */
struct feed {
	bool open;
	size_t idx; /* its dev_sum */
	int32_t ports_given;
	int32_t max_port;
	bool has_span;
	int64_t span_from, span_to; /* the online span being extended */
	int64_t last_ts;            /* records are taken in time order */
	struct lifecount trips, door_cycles, run_s;
	struct port_state port[SP_PORT_MAX + 1];
};

struct summary {
	struct summary_period p; /* p.site points to site below */
	char *site;
	struct dev_sum *devs;
	size_t ndevs, devs_cap;
	struct feed cur;
	struct by_name *by_name; /* devs sorted by name, for alerts; NULL = not built */
	int64_t opened, cleared, active_at_end;
	int64_t by_severity[SEV_COUNT];
};

struct summary *summary_begin(const struct summary_period *p)
{
	assert(p != NULL && p->site != NULL && p->end > p->start && p->offline_ms >= 0);
	struct summary *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->site = strdup(p->site);
	if (s->site == NULL) {
		free(s);
		return NULL;
	}
	s->p = *p;
	s->p.site = s->site;
	return s;
}

static void dev_sum_free(struct dev_sum *d)
{
	free(d->dev);
	free(d->online.v);
	free(d->down.v);
	tally_free(&d->faults);
	tally_free(&d->alarms);
}

void summary_free(struct summary *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->ndevs; i++)
		dev_sum_free(&s->devs[i]);
	free(s->devs);
	free(s->by_name);
	free(s->site);
	free(s);
}

/* ------------------------------------------------------------ feeding records */

/* The device kind a record tells (see the definitions above). */
static enum sp_dev_kind kind_of(const struct sp_record *r)
{
	if (r->kind == SP_REC_FAULT)
		return (r->has & SP_HAS_PORT) ? SP_DEV_CHARGER : SP_DEV_LIFT;
	return sp_rec_dev_kind(r->kind);
}

/* Ends the online span being extended, keeping what of it lies in the period. */
static int span_close(struct summary *s, struct dev_sum *d)
{
	struct feed *f = &s->cur;
	if (!f->has_span)
		return 0;
	f->has_span = false;
	if (overlap(f->span_from, f->span_to, s->p.start, s->p.end) == 0)
		return 0;
	int64_t a = f->span_from > s->p.start ? f->span_from : s->p.start;
	int64_t b = f->span_to < s->p.end ? f->span_to : s->p.end;
	return spans_add(&d->online, a, b);
}

/* Online from t until t + O: extends the current span, or ends it and starts another. */
static int note_online(struct summary *s, struct dev_sum *d, int64_t t)
{
	struct feed *f = &s->cur;
	int64_t until = t + s->p.offline_ms;
	int rc;
	if (f->has_span && t <= f->span_to) {
		if (until > f->span_to)
			f->span_to = until;
		return 0;
	}
	if ((rc = span_close(s, d)))
		return rc;
	f->has_span = true;
	f->span_from = t;
	f->span_to = until;
	return 0;
}

/* Ends port p's current state at t (its next record, or the end of the device). */
static void port_close(struct summary *s, struct dev_sum *d, struct port_state *ps, int64_t t)
{
	if (!ps->live)
		return;
	int64_t until = ps->since + s->p.offline_ms;
	if (t < until)
		until = t;
	if (ps->state == SP_PORT_CHARGING)
		d->charging_ms += overlap(ps->since, until, s->p.start, s->p.end);
}

/* Port record r starts its port's state at t. */
static void port_open(struct feed *f, const struct sp_record *r, int64_t t)
{
	int32_t p = r->u.port.port;
	struct port_state *ps = &f->port[p];
	ps->live = true;
	ps->state = r->u.port.state;
	ps->since = t;
	ps->has_w = (r->has & SP_HAS_W) != 0;
	ps->w = ps->has_w ? r->u.port.w : 0;
	if (p > f->max_port)
		f->max_port = p;
}

/* The sum of the ports' w at t, each while its record is younger than O. */
static void port_power(struct summary *s, struct dev_sum *d, int64_t t)
{
	struct feed *f = &s->cur;
	double sum = 0;
	bool any = false;
	for (int32_t p = 1; p <= f->max_port; p++) {
		const struct port_state *ps = &f->port[p];
		if (ps->live && ps->has_w && t < ps->since + s->p.offline_ms) {
			sum += ps->w;
			any = true;
		}
	}
	if (any && (!d->has_port_w || sum > d->port_w_max)) {
		d->port_w_max = sum;
		d->has_port_w = true;
	}
}

static bool port_ok(const struct sp_record *r)
{
	return r->u.port.port >= 1 && r->u.port.port <= SP_PORT_MAX;
}

/* Ends the current device: its online span and port states, its counters. */
static int feed_close(struct summary *s)
{
	struct feed *f = &s->cur;
	struct dev_sum *d = &s->devs[f->idx];
	int rc;
	if ((rc = span_close(s, d)))
		return rc;
	for (int32_t p = 1; p <= f->max_port; p++)
		port_close(s, d, &f->port[p], s->p.end);
	d->ports = f->ports_given > f->max_port ? f->ports_given : f->max_port;
	d->trips = lifecount_growth(&f->trips);
	d->door_cycles = lifecount_growth(&f->door_cycles);
	d->run_s = lifecount_growth(&f->run_s);
	f->open = false;
	return 0;
}

/* A lift record before the period carrying a counter. */
static bool counters_at(const struct sp_record *r, int64_t start)
{
	const uint32_t any = SP_HAS_TRIPS | SP_HAS_DOOR_CYCLES | SP_HAS_RUN_S;
	return r->ts < start && r->kind == SP_REC_LIFT && (r->has & any);
}

/* Pointers to records, in time order (equal times: in the order given). */
static int cmp_rec_time(const void *a, const void *b)
{
	const struct sp_record *x = *(const struct sp_record *const *)a;
	const struct sp_record *y = *(const struct sp_record *const *)b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x < y ? -1 : x > y;
}

/*
 * Where the lift counters stand at the period's start: the lift records
 * before it that carry them, in time order, through lifecount_feed (so a
 * spurious or out-of-order newest value is no baseline), their growth not
 * counted. 0 or SP_ENOMEM.
 */
static int counters_before(struct feed *f, const struct summary_device *in, int64_t start)
{
	size_t n = 0;
	for (size_t i = 0; i < in->nbefore; i++)
		n += counters_at(&in->before[i], start);
	if (n == 0)
		return 0;
	const struct sp_record **v = malloc(n * sizeof(*v));
	if (v == NULL)
		return SP_ENOMEM;
	n = 0;
	for (size_t i = 0; i < in->nbefore; i++)
		if (counters_at(&in->before[i], start))
			v[n++] = &in->before[i];
	qsort(v, n, sizeof(*v), cmp_rec_time);
	for (size_t i = 0; i < n; i++) {
		if (v[i]->has & SP_HAS_TRIPS)
			lifecount_feed(&f->trips, v[i]->u.lift.trips);
		if (v[i]->has & SP_HAS_DOOR_CYCLES)
			lifecount_feed(&f->door_cycles, v[i]->u.lift.door_cycles);
		if (v[i]->has & SP_HAS_RUN_S)
			lifecount_feed(&f->run_s, v[i]->u.lift.run_s);
	}
	free(v);
	lifecount_start(&f->trips);
	lifecount_start(&f->door_cycles);
	lifecount_start(&f->run_s);
	return 0;
}

int summary_device(struct summary *s, const struct summary_device *in)
{
	assert(s != NULL && in != NULL && in->dev != NULL && (in->before || !in->nbefore));
	struct feed *f = &s->cur;
	int rc = 0;
	if (f->open && (rc = feed_close(s)))
		return rc;
	struct dev_sum *v = sp_grow(s->devs, &s->devs_cap, s->ndevs + 1, sizeof(*v), 16);
	if (v == NULL)
		return SP_ENOMEM;
	s->devs = v;
	struct dev_sum *d = &s->devs[s->ndevs];
	memset(d, 0, sizeof(*d));
	if ((d->dev = strdup(in->dev)) == NULL)
		return SP_ENOMEM;
	d->kind = in->kind;
	s->ndevs++;
	free(s->by_name); /* a device after alerts (not the documented order): index again */
	s->by_name = NULL;

	memset(f, 0, sizeof(*f));
	f->open = true;
	f->idx = s->ndevs - 1;
	f->ports_given = in->ports > 0 ? in->ports : 0;
	f->last_ts = s->p.start;

	/* the newest record before the period of each use (see summary.h) */
	const struct sp_record *newest = NULL;
	const struct sp_record *port[SP_PORT_MAX + 1] = {0};
	for (size_t i = 0; i < in->nbefore; i++) {
		const struct sp_record *r = &in->before[i];
		if (r->ts >= s->p.start)
			continue;
		if (newest == NULL || r->ts > newest->ts)
			newest = r;
		if (r->kind == SP_REC_PORT && port_ok(r) &&
		    (port[r->u.port.port] == NULL || r->ts > port[r->u.port.port]->ts))
			port[r->u.port.port] = r;
	}
	if (newest != NULL && d->kind == SP_DEV_UNKNOWN)
		d->kind = kind_of(newest);
	if (newest != NULL && (rc = note_online(s, d, newest->ts)))
		return rc;
	/* each counter from the records carrying it: a state record between has none */
	if ((rc = counters_before(f, in, s->p.start)))
		return rc;
	for (int32_t p = 1; p <= SP_PORT_MAX; p++)
		if (port[p] != NULL)
			port_open(f, port[p], port[p]->ts);
	return 0;
}

void summary_drop_device(struct summary *s)
{
	assert(s != NULL && s->cur.open && s->cur.idx == s->ndevs - 1);
	dev_sum_free(&s->devs[--s->ndevs]);
	s->cur.open = false;
	free(s->by_name); /* it may name the device */
	s->by_name = NULL;
}

int summary_record(struct summary *s, const struct sp_record *r)
{
	assert(s != NULL && r != NULL && s->cur.open);
	struct feed *f = &s->cur;
	if (r->ts < s->p.start || r->ts >= s->p.end)
		return 0;
	struct dev_sum *d = &s->devs[f->idx];
	/* equal or (against the promise) earlier times: spans never run backwards */
	int64_t t = r->ts > f->last_ts ? r->ts : f->last_ts;
	f->last_ts = t;
	if (d->kind == SP_DEV_UNKNOWN)
		d->kind = kind_of(r);
	int rc = note_online(s, d, t);
	if (rc)
		return rc;
	switch (r->kind) {
	case SP_REC_LIFT:
		if (r->has & SP_HAS_TRIPS)
			lifecount_feed(&f->trips, r->u.lift.trips);
		if (r->has & SP_HAS_DOOR_CYCLES)
			lifecount_feed(&f->door_cycles, r->u.lift.door_cycles);
		if (r->has & SP_HAS_RUN_S)
			lifecount_feed(&f->run_s, r->u.lift.run_s);
		break;
	case SP_REC_STATION:
		if ((r->has & SP_HAS_POWER_W) &&
		    (!d->has_station_w || r->u.station.power_w > d->station_w_max)) {
			d->station_w_max = r->u.station.power_w;
			d->has_station_w = true;
		}
		break;
	case SP_REC_PORT:
		if (!port_ok(r))
			break;
		port_close(s, d, &f->port[r->u.port.port], t);
		port_open(f, r, t);
		port_power(s, d, t);
		if ((r->has & SP_HAS_TEMP_C) &&
		    (!d->has_temp || r->u.port.temp_c > d->max_temp_c)) {
			d->max_temp_c = r->u.port.temp_c;
			d->has_temp = true;
		}
		break;
	case SP_REC_SESSION:
		d->sessions++;
		d->energy_wh += r->u.session.wh;
		if ((unsigned)r->u.session.reason < SP_STOP_REASON_COUNT)
			d->stops[r->u.session.reason]++;
		break;
	case SP_REC_FAULT:
		if (r->u.fault.active)
			return tally_add(&d->faults, r->u.fault.code);
		break;
	default: break;
	}
	return 0;
}

/* ------------------------------------------------------------ alerts */

/* The alerts' way to a device: its name, and where it is in devs. */
struct by_name {
	const char *dev;
	size_t idx;
};

static int cmp_by_name(const void *a, const void *b)
{
	const struct by_name *x = a, *y = b;
	int c = strcmp(x->dev, y->dev);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * The device named dev (the first given, if twice): 0 with *idx, or
 * SP_ENOTFOUND, or SP_ENOMEM (building the index, once per summary).
 */
static int find_dev(struct summary *s, const char *dev, size_t *idx)
{
	if (s->by_name == NULL) {
		s->by_name = malloc((s->ndevs ? s->ndevs : 1) * sizeof(*s->by_name));
		if (s->by_name == NULL)
			return SP_ENOMEM;
		for (size_t i = 0; i < s->ndevs; i++)
			s->by_name[i] = (struct by_name){s->devs[i].dev, i};
		qsort(s->by_name, s->ndevs, sizeof(*s->by_name), cmp_by_name);
	}
	size_t lo = 0, hi = s->ndevs;
	while (lo < hi) { /* the leftmost match */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(s->by_name[mid].dev, dev) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->ndevs && strcmp(s->by_name[lo].dev, dev) == 0) {
		*idx = s->by_name[lo].idx;
		return 0;
	}
	return SP_ENOTFOUND;
}

int summary_alert(struct summary *s, const struct summary_alert *a)
{
	assert(s != NULL && a != NULL && a->rule && a->dev && a->severity);
	int rc;
	if (s->cur.open && (rc = feed_close(s)))
		return rc;
	int64_t start = s->p.start, end = s->p.end;
	bool opened = a->opened_at >= start && a->opened_at < end;
	int sev = -1;
	for (int i = 0; i < SEV_COUNT; i++)
		if (strcmp(a->severity, alert_severity_names[i]) == 0)
			sev = i;
	if (opened) {
		s->opened++;
		if (sev >= 0)
			s->by_severity[sev]++;
	}
	if (a->cleared_at != 0 && a->cleared_at >= start && a->cleared_at < end)
		s->cleared++;
	if (a->opened_at < end && (a->cleared_at == 0 || a->cleared_at >= end))
		s->active_at_end++;

	size_t i;
	if ((rc = find_dev(s, a->dev, &i)))
		return rc == SP_ENOTFOUND ? 0 : rc; /* a device not listed: the site's block only */
	struct dev_sum *d = &s->devs[i];
	if (sev == ALERT_CRITICAL || sev == ALERT_MAJOR) {
		int64_t until = a->cleared_at != 0 ? a->cleared_at : end;
		int64_t from = a->opened_at > start ? a->opened_at : start;
		if (until > end)
			until = end;
		if (until > from && (rc = spans_add(&d->down, from, until)))
			return rc;
	}
	if (opened) {
		if (strcmp(a->rule, "lift.trapped") == 0)
			d->trapped++;
		if ((rc = tally_add(&d->alarms, a->rule)))
			return rc;
	}
	return 0;
}

/* ------------------------------------------------------------ output */

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	return x->from < y->from ? -1 : x->from > y->from;
}

/*
 * Unplanned downtime in ms: the union of the offline time (the period
 * outside the online spans) and the critical/major alert spans.
 */
static int downtime_ms(const struct summary *s, const struct dev_sum *d, int64_t *out)
{
	struct spans all = {0};
	int64_t at = s->p.start, down = 0;
	int rc = 0;
	for (size_t i = 0; i < d->online.n; i++) { /* the gaps between online spans */
		if (d->online.v[i].from > at && (rc = spans_add(&all, at, d->online.v[i].from)))
			goto out;
		at = d->online.v[i].to;
	}
	if (at < s->p.end && (rc = spans_add(&all, at, s->p.end)))
		goto out;
	for (size_t i = 0; i < d->down.n; i++)
		if ((rc = spans_add(&all, d->down.v[i].from, d->down.v[i].to)))
			goto out;
	if (all.n > 1)
		qsort(all.v, all.n, sizeof(*all.v), cmp_span);
	int64_t from = 0, to = 0;
	bool open = false;
	for (size_t i = 0; i < all.n; i++) {
		if (open && all.v[i].from <= to) {
			if (all.v[i].to > to)
				to = all.v[i].to;
			continue;
		}
		if (open)
			down += to - from;
		from = all.v[i].from;
		to = all.v[i].to;
		open = true;
	}
	if (open)
		down += to - from;
	*out = down;
out:
	free(all.v);
	return rc;
}

static int64_t online_ms(const struct dev_sum *d)
{
	int64_t sum = 0;
	for (size_t i = 0; i < d->online.n; i++)
		sum += d->online.v[i].to - d->online.v[i].from;
	return sum;
}

/* A number with one decimal from its tenths: 995 -> 99.5, -5 -> -0.5. */
static int put_tenths(struct sp_buf *b, int64_t tenths)
{
	const char *sign = tenths < 0 ? "-" : "";
	uint64_t m = tenths < 0 ? (uint64_t)0 - (uint64_t)tenths : (uint64_t)tenths;
	return sp_buf_printf(b, "%s%llu.%u", sign, (unsigned long long)(m / 10),
			     (unsigned)(m % 10));
}

/* A measured double as a whole number (rounded); absurd values are clamped, NaN is 0. */
static int64_t whole(double v)
{
	const double lim = 9e18; /* within int64_t */
	if (isnan(v))
		return 0;
	if (v > lim)
		v = lim;
	if (v < -lim)
		v = -lim;
	return (int64_t)llround(v);
}

static int put_key(struct sp_buf *b, const char *key)
{
	int rc;
	if ((rc = sp_buf_json_str(b, key, strlen(key))))
		return rc;
	return sp_buf_putc(b, ':');
}

static int put_tally(struct sp_buf *b, const struct tally *t)
{
	int rc = sp_buf_putc(b, '{');
	for (size_t i = 0; rc == 0 && i < t->n; i++) {
		if ((i && (rc = sp_buf_putc(b, ','))) || (rc = put_key(b, t->v[i].name)))
			break;
		rc = sp_buf_json_int(b, t->v[i].n);
	}
	return rc ? rc : sp_buf_putc(b, '}');
}

static int put_lift(struct sp_buf *b, const struct summary *s, const struct dev_sum *d)
{
	int64_t period = s->p.end - s->p.start, down = 0;
	int rc;
	if ((rc = downtime_ms(s, d, &down)))
		return rc;
	if ((rc = sp_buf_puts(b, "{\"dev\":")) ||
	    (rc = sp_buf_json_str(b, d->dev, strlen(d->dev))) ||
	    (rc = sp_buf_printf(b, ",\"trips\":%lld,\"door_cycles\":%lld,\"run_s\":%lld",
				(long long)d->trips, (long long)d->door_cycles,
				(long long)d->run_s)) ||
	    (rc = sp_buf_puts(b, ",\"availability_pct\":")) ||
	    (rc = put_tenths(b, tenths_pct(period - down, period))) ||
	    (rc = sp_buf_printf(b, ",\"downtime_s\":%lld,\"faults\":", (long long)(down / 1000))) ||
	    (rc = put_tally(b, &d->faults)) ||
	    (rc = sp_buf_printf(b, ",\"trapped\":%lld,\"online_pct\":", (long long)d->trapped)) ||
	    (rc = put_tenths(b, tenths_pct(online_ms(d), period))))
		return rc;
	return sp_buf_putc(b, '}');
}

static int put_stops(struct sp_buf *b, const struct dev_sum *d)
{
	int rc = sp_buf_putc(b, '{');
	bool first = true;
	for (int i = 0; rc == 0 && i < SP_STOP_REASON_COUNT; i++) {
		if (d->stops[i] == 0)
			continue;
		if ((!first && (rc = sp_buf_putc(b, ','))) ||
		    (rc = put_key(b, sp_stop_reason_name((enum sp_stop_reason)i))))
			break;
		rc = sp_buf_json_int(b, d->stops[i]);
		first = false;
	}
	return rc ? rc : sp_buf_putc(b, '}');
}

static int put_charger(struct sp_buf *b, const struct summary *s, const struct dev_sum *d)
{
	int64_t period = s->p.end - s->p.start;
	double peak = d->has_station_w ? d->station_w_max : d->has_port_w ? d->port_w_max : 0;
	int64_t util = d->ports > 0 ? tenths_pct(d->charging_ms, (int64_t)d->ports * period) : 0;
	int rc;
	if ((rc = sp_buf_puts(b, "{\"dev\":")) ||
	    (rc = sp_buf_json_str(b, d->dev, strlen(d->dev))) ||
	    (rc = sp_buf_printf(b, ",\"sessions\":%lld,\"energy_wh\":%lld,\"utilization_pct\":",
				(long long)d->sessions, (long long)whole(d->energy_wh))) ||
	    (rc = put_tenths(b, util)) ||
	    (rc = sp_buf_printf(b, ",\"peak_w\":%lld,\"stops\":", (long long)whole(peak))) ||
	    (rc = put_stops(b, d)) || (rc = sp_buf_puts(b, ",\"alarms\":")) ||
	    (rc = put_tally(b, &d->alarms)) || (rc = sp_buf_puts(b, ",\"max_temp_c\":")))
		return rc;
	if (d->has_temp)
		rc = put_tenths(b, whole(d->max_temp_c * 10));
	else
		rc = sp_buf_puts(b, "null");
	if (rc || (rc = sp_buf_puts(b, ",\"online_pct\":")) ||
	    (rc = put_tenths(b, tenths_pct(online_ms(d), period))))
		return rc;
	return sp_buf_putc(b, '}');
}

/* The devices of one kind, in the order given. */
static int put_devices(struct sp_buf *b, const struct summary *s, enum sp_dev_kind kind)
{
	int rc = sp_buf_putc(b, '[');
	bool first = true;
	for (size_t i = 0; rc == 0 && i < s->ndevs; i++) {
		const struct dev_sum *d = &s->devs[i];
		if (d->kind != kind)
			continue;
		if (!first && (rc = sp_buf_putc(b, ',')))
			break;
		first = false;
		rc = kind == SP_DEV_LIFT ? put_lift(b, s, d) : put_charger(b, s, d);
	}
	return rc ? rc : sp_buf_putc(b, ']');
}

int summary_finish(struct summary *s, struct sp_buf *out)
{
	assert(s != NULL && out != NULL);
	size_t len0 = out->len;
	int rc;
	if (s->cur.open && (rc = feed_close(s)))
		return rc;
	if ((rc = sp_buf_puts(out, "{\"v\":1,\"site\":")) ||
	    (rc = sp_buf_json_str(out, s->site, strlen(s->site))) ||
	    (rc = sp_buf_printf(
		 out, ",\"period_start\":%lld,\"period_end\":%lld,\"generated_at\":%lld",
		 (long long)s->p.start, (long long)s->p.end, (long long)s->p.generated_at)) ||
	    (rc = sp_buf_puts(out, ",\"lifts\":")) || (rc = put_devices(out, s, SP_DEV_LIFT)) ||
	    (rc = sp_buf_puts(out, ",\"chargers\":")) ||
	    (rc = put_devices(out, s, SP_DEV_CHARGER)) ||
	    (rc = sp_buf_printf(out,
				",\"alerts\":{\"opened\":%lld,\"cleared\":%lld,"
				"\"active_at_end\":%lld,\"by_severity\":{",
				(long long)s->opened, (long long)s->cleared,
				(long long)s->active_at_end)))
		goto fail;
	for (int i = 0; i < SEV_COUNT; i++)
		if ((rc = sp_buf_printf(out, "%s\"%s\":%lld", i ? "," : "", alert_severity_names[i],
					(long long)s->by_severity[i])))
			goto fail;
	if ((rc = sp_buf_puts(out, "}}}")) == 0)
		return 0;
fail:
	out->len = len0;
	if (out->data)
		out->data[len0] = '\0';
	return rc;
}
