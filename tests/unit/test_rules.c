/*
 * test_rules.c - the alert rules: every catalogue rule opening and clearing
 * on realistic records, holds run out by later records and by rules_tick on
 * the extrapolated device clock (and not early during a backlog),
 * hysteresis, suppression in inspection mode, absent fields, late records,
 * door cycles counted while a car stands (lift.door_reopen),
 * a device's clock set back,
 * per-code faults, per-site settings, disabled rules, callback failures,
 * reloading from the store, reset, and 100,000 devices.
 *
 * The callback records the events it receives; the checks are on those.
 */
#include "harness.h"

#include "rules.h"
#include "sitepulse/error.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define T0      1764320000000LL /* device time of the first record */
#define R0      1764320000400LL /* collector time it arrives */
#define S       1000LL
#define ANY     INT64_MIN /* CHECK_EV: do not check this time */
#define FAIL_RC (-42)

/* ------------------------------------------------------------ the sink */

struct got {
	enum rule_event_kind kind;
	enum rule_id rule;
	int64_t device_id;
	char site[SP_ID_MAX + 1], dev[SP_ID_MAX + 1];
	int32_t port;
	char code[SP_FAULT_CODE_MAX + 1];
	enum alert_severity severity;
	int64_t since, ts;
	int64_t alert_id; /* RULE_CLEAR: the one cleared; RULE_OPEN: the one handed out */
	char detail[600];
};

#define EV_MAX 32
struct sink {
	struct got ev[EV_MAX];
	int n;           /* events since the last sink_clear (stored while < EV_MAX) */
	int calls;       /* calls of the callback, failed ones included */
	int64_t next_id; /* the last alert id handed out */
	int fail_kind;   /* an event kind the callback refuses with FAIL_RC; -1 = none */
	bool stress;     /* count only: opens, clears and mismatched ids */
	long opens, clears, bad_ids;
	/* the fault memo's events, counted apart (not in ev / n) */
	int fault_clears, stale;
	struct got last_clear; /* the latest RULE_FAULT_CLEARED */
};

static int on_event(void *ctx, const struct rule_event *ev, int64_t *alert_id)
{
	struct sink *s = ctx;
	s->calls++;
	if ((int)ev->kind == s->fail_kind)
		return FAIL_RC;
	if (ev->kind == RULE_RAISE_STALE) {
		s->stale++;
		return 0;
	}
	if (ev->kind == RULE_FAULT_CLEARED) {
		s->fault_clears++;
		s->last_clear = (struct got){.kind = ev->kind, .rule = ev->rule,
					     .device_id = ev->device_id, .port = ev->port,
					     .ts = ev->ts};
		snprintf(s->last_clear.code, sizeof(s->last_clear.code), "%s", ev->code);
		return 0;
	}
	if (s->stress) {
		/* the id is derived from the device, so a clear must name its own alert */
		if (ev->kind == RULE_OPEN) {
			*alert_id = ev->device_id * 10;
			s->opens++;
		} else if (ev->kind == RULE_CLEAR) {
			s->clears++;
			if (ev->alert_id != ev->device_id * 10)
				s->bad_ids++;
		}
		return 0;
	}
	if (s->n < EV_MAX) {
		struct got *g = &s->ev[s->n];
		g->kind = ev->kind;
		g->rule = ev->rule;
		g->device_id = ev->device_id;
		snprintf(g->site, sizeof(g->site), "%s", ev->site);
		snprintf(g->dev, sizeof(g->dev), "%s", ev->dev);
		g->port = ev->port;
		snprintf(g->code, sizeof(g->code), "%s", ev->code);
		g->severity = ev->severity;
		g->since = ev->since;
		g->ts = ev->ts;
		g->alert_id = ev->alert_id;
		snprintf(g->detail, sizeof(g->detail), "%s",
			 ev->kind == RULE_OPEN && ev->detail ? ev->detail : "");
	}
	if (ev->kind == RULE_OPEN) {
		*alert_id = ++s->next_id;
		if (s->n < EV_MAX)
			s->ev[s->n].alert_id = *alert_id; /* what the store would answer */
	}
	s->n++;
	return 0;
}

static void sink_clear(struct sink *s)
{
	s->n = 0;
}

/* Event k is (kind, rule, port, code), with since and ts unless ANY. */
#define CHECK_EV(s, k, KIND, RULE, PORT, CODE, SINCE, TS)                                          \
	do {                                                                                       \
		CHECK((k) < (s)->n);                                                               \
		const struct got *g_ = &(s)->ev[(k) < EV_MAX ? (k) : 0];                           \
		CHECK_EQ_INT(g_->kind, KIND);                                                      \
		CHECK_EQ_INT(g_->rule, RULE);                                                      \
		CHECK_EQ_INT(g_->port, PORT);                                                      \
		CHECK_EQ_STR(g_->code, CODE);                                                      \
		if ((int64_t)(SINCE) != ANY)                                                       \
			CHECK_EQ_INT(g_->since, SINCE);                                            \
		if ((int64_t)(TS) != ANY)                                                          \
			CHECK_EQ_INT(g_->ts, TS);                                                  \
	} while (0)

/* The detail of event k contains text. */
#define CHECK_DETAIL(s, k, text)                                                                   \
	do {                                                                                       \
		const char *d_ = (s)->ev[(k) < EV_MAX ? (k) : 0].detail;                           \
		harness_checks++;                                                                  \
		if (strstr(d_, text) == NULL) {                                                    \
			harness_failures++;                                                        \
			fprintf(stderr, "%s:%d: detail \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, \
				d_, text);                                                         \
		}                                                                                  \
	} while (0)

/* ---------------------------------------------------------- the fixture */

static const struct rule_device LIFT = {.id = 1, .site = "site-a", .dev = "lift-1",
					.kind = SP_DEV_LIFT, .rated_speed = 1.0};
static const struct rule_device LIFT_B = {.id = 2, .site = "site-b", .dev = "lift-1",
					  .kind = SP_DEV_LIFT, .rated_speed = 1.0};
static const struct rule_device CHG = {.id = 3, .site = "site-a", .dev = "chg-1",
				       .kind = SP_DEV_CHARGER, .port_limit_w = 1000};
static const struct rule_device CHG_B = {.id = 4, .site = "site-b", .dev = "chg-1",
					 .kind = SP_DEV_CHARGER, .port_limit_w = 1000};

struct fx {
	struct rules_config *cfg;
	struct rules *r;
	struct sink *s;
};

static bool fx_open(struct fx *f)
{
	f->cfg = rules_config_create();
	f->r = f->cfg ? rules_create(f->cfg) : NULL;
	f->s = calloc(1, sizeof(*f->s));
	CHECK(f->cfg && f->r && f->s);
	if (!f->cfg || !f->r || !f->s)
		return false;
	f->s->next_id = 100;
	f->s->fail_kind = -1;
	return true;
}

static void fx_close(struct fx *f)
{
	rules_destroy(f->r);
	rules_config_destroy(f->cfg);
	free(f->s);
}

static int feed(struct fx *f, const struct rule_device *d, struct sp_record rec, int64_t rx)
{
	return rules_eval(f->r, d, &rec, false, rx, on_event, f->s);
}

static int feed_late(struct fx *f, const struct rule_device *d, struct sp_record rec, int64_t rx)
{
	return rules_eval(f->r, d, &rec, true, rx, on_event, f->s);
}

static int tick(struct fx *f, int64_t now)
{
	return rules_tick(f->r, now, on_event, f->s);
}

/* ------------------------------------------------------------- records */

/* A lift record, mode normal, no optional field. */
static struct sp_record lift(const struct rule_device *d, int64_t ts, int floor, enum sp_dir dir,
			     enum sp_door door, bool zone, bool occupied)
{
	struct sp_record r = {.kind = SP_REC_LIFT, .ts = ts};
	snprintf(r.dev, sizeof(r.dev), "%s", d->dev);
	r.u.lift = (struct sp_lift){.floor = floor,
				    .dir = dir,
				    .door = door,
				    .door_zone = zone,
				    .occupied = occupied,
				    .mode = SP_MODE_NORMAL};
	return r;
}

/* Passenger in a stopped car with the door closed. */
static struct sp_record trapped(const struct rule_device *d, int64_t ts, int floor, bool zone)
{
	return lift(d, ts, floor, SP_DIR_STOP, SP_DOOR_CLOSED, zone, true);
}

/* A car on its way up, door closed: no rule's condition. */
static struct sp_record moving(const struct rule_device *d, int64_t ts, int floor)
{
	return lift(d, ts, floor, SP_DIR_UP, SP_DOOR_CLOSED, false, true);
}

/* An idle car at a landing, door closed, nobody in it: no rule's condition. */
static struct sp_record parked(const struct rule_device *d, int64_t ts, int floor)
{
	return lift(d, ts, floor, SP_DIR_STOP, SP_DOOR_CLOSED, true, false);
}

/* A car at a landing with its door open and nobody in it: whoever was inside got out. */
static struct sp_record landed(const struct rule_device *d, int64_t ts, int floor)
{
	return lift(d, ts, floor, SP_DIR_STOP, SP_DOOR_OPEN, true, false);
}

/* A car stopped at a landing, door closed, nobody in it, its door counter at cycles. */
static struct sp_record shut(const struct rule_device *d, int64_t ts, int floor, int64_t cycles)
{
	struct sp_record r = parked(d, ts, floor);
	r.u.lift.door_cycles = cycles;
	r.has |= SP_HAS_DOOR_CYCLES;
	return r;
}

/* The same with the door open: a door in its cycle. */
static struct sp_record doors(const struct rule_device *d, int64_t ts, int floor, int64_t cycles)
{
	struct sp_record r = shut(d, ts, floor, cycles);
	r.u.lift.door = SP_DOOR_OPEN;
	return r;
}

static struct sp_record station(const struct rule_device *d, int64_t ts, bool smoke)
{
	struct sp_record r = {.kind = SP_REC_STATION, .ts = ts};
	snprintf(r.dev, sizeof(r.dev), "%s", d->dev);
	r.u.station.smoke = smoke;
	return r;
}

static struct sp_record port(const struct rule_device *d, int64_t ts, int32_t no,
			     enum sp_port_state state)
{
	struct sp_record r = {.kind = SP_REC_PORT, .ts = ts};
	snprintf(r.dev, sizeof(r.dev), "%s", d->dev);
	r.u.port.port = no;
	r.u.port.state = state;
	return r;
}

static struct sp_record port_temp(const struct rule_device *d, int64_t ts, int32_t no, double c)
{
	struct sp_record r = port(d, ts, no, SP_PORT_IDLE);
	r.u.port.temp_c = c;
	r.has |= SP_HAS_TEMP_C;
	return r;
}

/* A fault record; port 0 = none, detail NULL = none. */
static struct sp_record fault(const struct rule_device *d, int64_t ts, const char *code,
			      bool active, int32_t port_no, const char *detail)
{
	struct sp_record r = {.kind = SP_REC_FAULT, .ts = ts};
	snprintf(r.dev, sizeof(r.dev), "%s", d->dev);
	snprintf(r.u.fault.code, sizeof(r.u.fault.code), "%s", code);
	r.u.fault.active = active;
	if (port_no > 0) {
		r.u.fault.port = port_no;
		r.has |= SP_HAS_PORT;
	}
	if (detail) {
		snprintf(r.u.fault.detail, sizeof(r.u.fault.detail), "%s", detail);
		r.has |= SP_HAS_DETAIL;
	}
	return r;
}

/* --------------------------------------------------------------- tests */

static void test_catalogue(void)
{
	static const char *const names[RULE_COUNT] = {
		"lift.trapped",        "lift.door_open_moving",
		"lift.overspeed",      "lift.overtravel",
		"lift.stopped_outside_zone",
		"lift.power_loss",     "lift.safety_circuit",
		"lift.door_open_long", "lift.door_reopen",
		"lift.mode",
		"lift.fault",          "charger.smoke",
		"charger.leakage",     "charger.voltage",
		"charger.door_open",   "charger.over_temp",
		"charger.fault",       "port.over_temp",
		"port.over_power",     "port.fault",
		"port.long_session",   "lift.offline",
		"charger.offline",     "gateway.offline"};
	for (int i = 0; i < RULE_COUNT; i++) {
		CHECK_EQ_STR(rule_name((enum rule_id)i), names[i]);
		CHECK_EQ_INT(rule_parse(names[i]), i);
	}
	CHECK_EQ_INT(rule_parse("lift.nope"), -1);
	CHECK_EQ_INT(rule_parse("lift.fault.E12"), -1);
	char shown[ALERT_RULE_SHOWN_MAX];
	alert_rule_shown(shown, sizeof(shown), "lift.fault", "E12");
	CHECK_EQ_STR(shown, "lift.fault.E12");
	alert_rule_shown(shown, sizeof(shown), "lift.trapped", "");
	CHECK_EQ_STR(shown, "lift.trapped");
	alert_rule_shown(shown, sizeof(shown), "lift.trapped", NULL);
	CHECK_EQ_STR(shown, "lift.trapped");
	CHECK_EQ_STR(rule_name(RULE_COUNT), "?");
	CHECK_EQ_STR(alert_severity_name(ALERT_CRITICAL), "critical");
	CHECK_EQ_STR(alert_severity_name(ALERT_WARNING), "warning");
	CHECK_EQ_INT(alert_severity_parse("major"), ALERT_MAJOR);
	CHECK_EQ_INT(alert_severity_parse("minor"), ALERT_MINOR);
	CHECK_EQ_INT(alert_severity_parse("P1"), -1);

	struct {
		enum rule_id r;
		enum alert_severity sev;
		int64_t hold_ms;
		double threshold, hysteresis; /* NAN: unused */
	} want[] = {
		{RULE_LIFT_TRAPPED, ALERT_CRITICAL, 20 * S, NAN, NAN},
		{RULE_LIFT_DOOR_OPEN_MOVING, ALERT_CRITICAL, 0, NAN, NAN},
		{RULE_LIFT_OVERSPEED, ALERT_CRITICAL, 0, 1.2, 0.2},
		{RULE_LIFT_OVERTRAVEL, ALERT_CRITICAL, 20 * S, NAN, NAN},
		{RULE_LIFT_STOPPED_OUTSIDE_ZONE, ALERT_MAJOR, 45 * S, NAN, NAN},
		{RULE_LIFT_POWER_LOSS, ALERT_MAJOR, 0, NAN, NAN},
		{RULE_LIFT_SAFETY_CIRCUIT, ALERT_MAJOR, 0, NAN, NAN},
		{RULE_LIFT_DOOR_OPEN_LONG, ALERT_MINOR, 120 * S, NAN, NAN},
		{RULE_LIFT_DOOR_REOPEN, ALERT_MINOR, 0, 5, 0},
		{RULE_LIFT_MODE, ALERT_WARNING, 0, NAN, NAN},
		{RULE_LIFT_FAULT, ALERT_MAJOR, 0, NAN, NAN},
		{RULE_CHARGER_SMOKE, ALERT_CRITICAL, 0, NAN, NAN},
		{RULE_CHARGER_LEAKAGE, ALERT_CRITICAL, 0, 30, 5},
		{RULE_CHARGER_VOLTAGE, ALERT_MINOR, 90 * S, 15, 2},
		{RULE_CHARGER_DOOR_OPEN, ALERT_MINOR, 0, NAN, NAN},
		{RULE_CHARGER_OVER_TEMP, ALERT_CRITICAL, 0, 60, 5},
		{RULE_CHARGER_FAULT, ALERT_MAJOR, 0, NAN, NAN},
		{RULE_PORT_OVER_TEMP, ALERT_CRITICAL, 0, 60, 5},
		{RULE_PORT_OVER_POWER, ALERT_MAJOR, 5 * S, 1.0, 0.05},
		{RULE_PORT_FAULT, ALERT_MAJOR, 0, NAN, NAN},
		{RULE_PORT_LONG_SESSION, ALERT_MINOR, 8 * 3600 * S, NAN, NAN},
		{RULE_LIFT_OFFLINE, ALERT_MAJOR, 0, NAN, NAN},
		{RULE_CHARGER_OFFLINE, ALERT_MAJOR, 0, NAN, NAN},
		{RULE_GATEWAY_OFFLINE, ALERT_MAJOR, 60 * S, NAN, NAN},
	};
	CHECK_EQ_INT(sizeof(want) / sizeof(want[0]), RULE_COUNT);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct rule_setting s;
		rule_defaults(want[i].r, &s);
		CHECK(s.enabled);
		CHECK_EQ_INT(s.severity, want[i].sev);
		CHECK_EQ_INT(s.hold_ms, want[i].hold_ms);
		if (isnan(want[i].threshold)) {
			CHECK(isnan(s.threshold) && isnan(s.hysteresis));
		} else {
			CHECK(s.threshold == want[i].threshold);
			CHECK(s.hysteresis == want[i].hysteresis);
		}
	}
}

static void test_config_overrides(void)
{
	struct rules_config *c = rules_config_create();
	CHECK(c != NULL);
	if (c == NULL)
		return;
	struct rule_setting *g = rules_config_global(c, RULE_LIFT_TRAPPED);
	CHECK(rules_config_get(c, "site-a", RULE_LIFT_TRAPPED) == g);
	g->hold_ms = 30 * S;
	struct rule_setting *a = rules_config_site(c, "site-a", RULE_LIFT_TRAPPED);
	CHECK(a != NULL && a != g);
	if (a == NULL)
		goto out;
	CHECK_EQ_INT(a->hold_ms, 30 * S); /* a copy of the global setting */
	CHECK_EQ_INT(a->severity, ALERT_CRITICAL);
	a->hold_ms = 10 * S;
	CHECK_EQ_INT(rules_config_get(c, "site-a", RULE_LIFT_TRAPPED)->hold_ms, 10 * S);
	CHECK_EQ_INT(rules_config_get(c, "site-b", RULE_LIFT_TRAPPED)->hold_ms, 30 * S);
	CHECK(rules_config_get(c, NULL, RULE_LIFT_TRAPPED) == g);
	/* another rule of site-a is still the global one */
	CHECK(rules_config_get(c, "site-a", RULE_LIFT_MODE) ==
		  rules_config_global(c, RULE_LIFT_MODE));
	/* many more sites, inserted before and after: a stays valid and found */
	for (int i = 0; i < 200; i++) {
		char site[16];
		snprintf(site, sizeof(site), "%s-%03d", i % 2 ? "aaa" : "zzz", i);
		struct rule_setting *o = rules_config_site(c, site, RULE_LIFT_TRAPPED);
		CHECK(o != NULL);
		if (o)
			o->hold_ms = i;
	}
	CHECK(rules_config_site(c, "site-a", RULE_LIFT_TRAPPED) == a);
	CHECK(rules_config_get(c, "site-a", RULE_LIFT_TRAPPED) == a);
	CHECK_EQ_INT(a->hold_ms, 10 * S);
	CHECK_EQ_INT(rules_config_get(c, "zzz-198", RULE_LIFT_TRAPPED)->hold_ms, 198);
	CHECK_EQ_INT(rules_config_get(c, "aaa-007", RULE_LIFT_TRAPPED)->hold_ms, 7);
out:
	rules_config_destroy(c);
}

static void test_trapped_opens_on_a_later_record(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* a door starting to open starts door_open_long's hold too: not this test's subject */
	rules_config_global(f.cfg, RULE_LIFT_DOOR_OPEN_LONG)->enabled = false;
	CHECK_EQ_INT(feed(&f, &LIFT, trapped(&LIFT, T0, 3, false), R0), 0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_TRAPPED, 0, "", T0, ANY);
	CHECK_EQ_INT(s->ev[0].device_id, 1);
	CHECK_EQ_STR(s->ev[0].site, "site-a");
	CHECK_EQ_STR(s->ev[0].dev, "lift-1");
	CHECK_EQ_INT(rules_count(f.r), 1);

	sink_clear(s);
	CHECK_EQ_INT(feed(&f, &LIFT, trapped(&LIFT, T0 + 10 * S, 3, false), R0 + 10 * S), 0);
	CHECK_EQ_INT(s->n, 0);

	/* the next record is past since + hold: opens at since + hold, not at its own ts */
	CHECK_EQ_INT(feed(&f, &LIFT, trapped(&LIFT, T0 + 25 * S, 3, false), R0 + 25 * S), 0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0, T0 + 20 * S);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_CRITICAL);
	CHECK_DETAIL(s, 0, "passenger trapped 20 s");
	CHECK_DETAIL(s, 0, "between floors near floor 3");
	int64_t id = s->ev[0].alert_id;

	/* the car levels into the door zone and the door starts to open */
	sink_clear(s);
	struct sp_record open =
		lift(&LIFT, T0 + 30 * S, 3, SP_DIR_STOP, SP_DOOR_OPENING, true, true);
	CHECK_EQ_INT(feed(&f, &LIFT, open, R0 + 30 * S), 0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_CLEAR, RULE_LIFT_TRAPPED, 0, "", ANY, T0 + 30 * S);
	CHECK_EQ_INT(s->ev[0].alert_id, id);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

/*
 * Behind a shut door nobody gets out: an open lift.trapped alert stays open
 * while the occupancy sensor drops out or the car moves, and clears only
 * when the door opens (L01/L02). Before the hold ran out, the same records
 * end the hold.
 */
static void test_trapped_clears_only_when_the_door_opens(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* trapped at a landing (in the door zone: no lift.stopped_outside_zone) */
	feed(&f, &LIFT, trapped(&LIFT, T0, 3, true), R0);
	feed(&f, &LIFT, trapped(&LIFT, T0 + 20 * S, 3, true), R0 + 20 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0, T0 + 20 * S);
	int64_t id = s->ev[1].alert_id;

	sink_clear(s);
	/* the sensor sees nobody, the door still shut: no "cleared" for the crew */
	feed(&f, &LIFT, parked(&LIFT, T0 + 40 * S, 3), R0 + 40 * S);
	/* it sees the passenger again: the same alert, no second one */
	feed(&f, &LIFT, trapped(&LIFT, T0 + 42 * S, 3, true), R0 + 42 * S);
	CHECK_EQ_INT(tick(&f, R0 + 80 * S), 0);
	/* a rescue run brings the car to the landing, the door still shut */
	feed(&f, &LIFT, lift(&LIFT, T0 + 85 * S, 3, SP_DIR_DOWN, SP_DOOR_CLOSED, false, true),
	     R0 + 85 * S);
	feed(&f, &LIFT, lift(&LIFT, T0 + 90 * S, 2, SP_DIR_STOP, SP_DOOR_CLOSED, true, false),
	     R0 + 90 * S);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 1);
	/* the door opens: cleared */
	feed(&f, &LIFT, landed(&LIFT, T0 + 95 * S, 2), R0 + 95 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_CLEAR, RULE_LIFT_TRAPPED, 0, "", ANY, T0 + 95 * S);
	CHECK_EQ_INT(s->ev[0].alert_id, id);
	CHECK_EV(s, 1, RULE_HOLD_START, RULE_LIFT_DOOR_OPEN_LONG, 0, "", T0 + 95 * S, ANY);

	/* a pending hold ends when the sensor sees nobody, and starts again after */
	sink_clear(s);
	feed(&f, &LIFT_B, trapped(&LIFT_B, T0, 3, true), R0);
	feed(&f, &LIFT_B, parked(&LIFT_B, T0 + 10 * S, 3), R0 + 10 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_HOLD_END, RULE_LIFT_TRAPPED, 0, "", ANY, ANY);
	CHECK_EQ_INT(rules_count(f.r), 1); /* LIFT's lift.door_open_long hold */
out:
	fx_close(&f);
}

/*
 * After a restart an open alert's clear is still never dated before its
 * opening: the tick opened lift.trapped at since + hold, before the record
 * that ends it (stamped earlier, still in the agent's batch) arrived.
 */
static void test_reloaded_alert_clears_not_before_its_opening(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	CHECK_EQ_INT(rules_load_alert(f.r, &LIFT, "lift.trapped", 0, "", 61, T0 + 20 * S, T0 + 10 * S,
				      R0), 0);
	feed(&f, &LIFT, landed(&LIFT, T0 + 19500, 3), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 2); /* and lift.door_open_long's hold starts */
	CHECK_EV(s, 0, RULE_CLEAR, RULE_LIFT_TRAPPED, 0, "", ANY, T0 + 20 * S);
	CHECK_EQ_INT(s->ev[0].alert_id, 61);
out:
	fx_close(&f);
}

static void test_trapped_hold_ends_and_tick_opens(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* a door starting to open starts door_open_long's hold too: not this test's subject */
	rules_config_global(f.cfg, RULE_LIFT_DOOR_OPEN_LONG)->enabled = false;
	/* the door opens after 5 s: the hold ends, nothing opens */
	feed(&f, &LIFT, trapped(&LIFT, T0, 2, true), R0);
	struct sp_record opening =
		lift(&LIFT, T0 + 5 * S, 2, SP_DIR_STOP, SP_DOOR_OPENING, true, true);
	CHECK_EQ_INT(feed(&f, &LIFT, opening, R0 + 5 * S), 0);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_TRAPPED, 0, "", T0, ANY);
	CHECK_EV(s, 1, RULE_HOLD_END, RULE_LIFT_TRAPPED, 0, "", ANY, ANY);
	CHECK_EQ_INT(rules_count(f.r), 0);
	CHECK_EQ_INT(tick(&f, R0 + 60 * S), 0);
	CHECK_EQ_INT(s->n, 2);

	/* a car still creeping (speed present, not below 0.05) is not a trapped one */
	sink_clear(s);
	int64_t t1 = T0 + 100 * S, r1 = R0 + 100 * S;
	struct sp_record creep = trapped(&LIFT, t1, 2, true);
	creep.u.lift.speed = 0.3;
	creep.has |= SP_HAS_SPEED;
	feed(&f, &LIFT, creep, r1);
	CHECK_EQ_INT(s->n, 0);
	struct sp_record still = trapped(&LIFT, t1, 2, true);
	still.u.lift.speed = 0.01;
	still.has |= SP_HAS_SPEED;
	feed(&f, &LIFT, still, r1);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_TRAPPED, 0, "", t1, ANY);

	/* no further record: the tick opens it when the device clock reaches since + 20 s */
	sink_clear(s);
	CHECK_EQ_INT(tick(&f, r1 + 20 * S - 1), 0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(tick(&f, r1 + 20 * S), 0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", t1, t1 + 20 * S);
	CHECK_DETAIL(s, 0, "at floor 2 in the door zone");
	CHECK_EQ_INT(tick(&f, r1 + 40 * S), 0);
	CHECK_EQ_INT(s->n, 1); /* opened once */
	CHECK_EQ_INT(rules_count(f.r), 1);
out:
	fx_close(&f);
}

static void test_tick_follows_the_newest_record(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &LIFT, trapped(&LIFT, T0, 5, false), R0);
	/* the next record is 10 s newer but took 15 s to arrive: the clock is (T0+10 s, R0+15 s) */
	feed(&f, &LIFT, trapped(&LIFT, T0 + 10 * S, 5, false), R0 + 15 * S);
	sink_clear(s);
	CHECK_EQ_INT(tick(&f, R0 + 25 * S - 1), 0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(tick(&f, R0 + 25 * S), 0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0, T0 + 20 * S);
out:
	fx_close(&f);
}

static void test_backlog_does_not_open_early(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* a door starting to open starts door_open_long's hold too: not this test's subject */
	rules_config_global(f.cfg, RULE_LIFT_DOOR_OPEN_LONG)->enabled = false;
	/* an hour-old backlog arrives fast after an outage */
	int64_t now = T0 + 3600 * S;
	feed(&f, &LIFT, trapped(&LIFT, T0, 3, false), now);
	CHECK_EQ_INT(tick(&f, now + 1 * S), 0);
	feed(&f, &LIFT, trapped(&LIFT, T0 + 5 * S, 3, false), now + 1 * S + 10);
	CHECK_EQ_INT(tick(&f, now + 2 * S), 0);
	CHECK_EQ_INT(s->n, 1); /* only the hold start, though T0 + 20 s is long past */
	struct sp_record open =
		lift(&LIFT, T0 + 8 * S, 3, SP_DIR_STOP, SP_DOOR_OPENING, true, true);
	feed(&f, &LIFT, open, now + 2 * S + 10);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_HOLD_END, RULE_LIFT_TRAPPED, 0, "", ANY, ANY);
	CHECK_EQ_INT(rules_count(f.r), 0);

	/* the backlog shows it held past the hold: opens on the record, at since + hold */
	sink_clear(s);
	feed(&f, &LIFT, trapped(&LIFT, T0 + 100 * S, 3, false), now + 3 * S);
	feed(&f, &LIFT, trapped(&LIFT, T0 + 130 * S, 3, false), now + 3 * S + 10);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_TRAPPED, 0, "", T0 + 100 * S, ANY);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0 + 100 * S, T0 + 120 * S);
out:
	fx_close(&f);
}

static void test_record_past_the_hold_that_ends_it(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* a door starting to open starts door_open_long's hold too: not this test's subject */
	rules_config_global(f.cfg, RULE_LIFT_DOOR_OPEN_LONG)->enabled = false;
	/* records describe the device until the next: trapped from T0 to T0 + 30 s */
	feed(&f, &LIFT, trapped(&LIFT, T0, 1, true), R0);
	struct sp_record open =
		lift(&LIFT, T0 + 30 * S, 1, SP_DIR_STOP, SP_DOOR_OPENING, true, true);
	feed(&f, &LIFT, open, R0 + 100);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_TRAPPED, 0, "", T0, ANY);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0, T0 + 20 * S);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_LIFT_TRAPPED, 0, "", ANY, T0 + 30 * S);
	CHECK_EQ_INT(s->ev[2].alert_id, s->ev[1].alert_id);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

static void test_clear_never_before_open(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* a door starting to open starts door_open_long's hold too: not this test's subject */
	rules_config_global(f.cfg, RULE_LIFT_DOOR_OPEN_LONG)->enabled = false;
	/* the tick opens on the extrapolated clock; a slow record then says it ended earlier */
	feed(&f, &LIFT, trapped(&LIFT, T0, 2, true), R0);
	tick(&f, R0 + 20 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0, T0 + 20 * S);
	struct sp_record opening =
		lift(&LIFT, T0 + 19 * S, 2, SP_DIR_STOP, SP_DOOR_OPENING, true, true);
	feed(&f, &LIFT, opening, R0 + 21 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_LIFT_TRAPPED, 0, "", ANY, T0 + 20 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

static void test_door_open_moving(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	struct sp_record r = lift(&LIFT, T0, 4, SP_DIR_UP, SP_DOOR_OPEN, true, true);
	feed(&f, &LIFT, r, R0);
	CHECK_EQ_INT(s->n, 1); /* hold 0: opens at once, no hold start */
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_DOOR_OPEN_MOVING, 0, "", T0, T0);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_CRITICAL);
	CHECK_DETAIL(s, 0, "door open while the car is moving up");
	feed(&f, &LIFT, moving(&LIFT, T0 + 1 * S, 5), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_DOOR_OPEN_MOVING, 0, "", ANY, T0 + 1 * S);

	/* opening at a landing, stopped in the door zone: normal (door_open_long's hold starts) */
	sink_clear(s);
	r = lift(&LIFT, T0 + 2 * S, 5, SP_DIR_STOP, SP_DOOR_OPENING, true, true);
	feed(&f, &LIFT, r, R0 + 2 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_DOOR_OPEN_LONG, 0, "", T0 + 2 * S, ANY);
	/* open while stopped outside the door zone */
	r = lift(&LIFT, T0 + 3 * S, 5, SP_DIR_STOP, SP_DOOR_OPEN, false, true);
	feed(&f, &LIFT, r, R0 + 3 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_DOOR_OPEN_MOVING, 0, "", T0 + 3 * S, T0 + 3 * S);
	CHECK_DETAIL(s, 1, "stopped outside the door zone near floor 5");
	CHECK_EQ_INT(rules_count(f.r), 2);
out:
	fx_close(&f);
}

static struct sp_record at_speed(const struct rule_device *d, int64_t ts, double v)
{
	struct sp_record r = moving(d, ts, 6);
	r.u.lift.speed = v;
	r.has |= SP_HAS_SPEED;
	return r;
}

static void test_overspeed_hysteresis(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &LIFT, at_speed(&LIFT, T0, 1.2), R0); /* at 1.2 x, not above */
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &LIFT, at_speed(&LIFT, T0 + 1 * S, 1.25), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_OVERSPEED, 0, "", T0 + 1 * S, T0 + 1 * S);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_CRITICAL);
	CHECK_DETAIL(s, 0, "speed 1.25 m/s");
	CHECK_DETAIL(s, 0, "rated 1.00 m/s");
	feed(&f, &LIFT, at_speed(&LIFT, T0 + 2 * S, 1.1), R0 + 2 * S); /* in the band */
	feed(&f, &LIFT, moving(&LIFT, T0 + 3 * S, 6), R0 + 3 * S);     /* no speed */
	CHECK_EQ_INT(s->n, 1);
	feed(&f, &LIFT, at_speed(&LIFT, T0 + 4 * S, 1.0), R0 + 4 * S); /* back at rated */
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_OVERSPEED, 0, "", ANY, T0 + 4 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);

	/* rated speed unknown: not judged */
	struct rule_device unrated = LIFT;
	unrated.id = 9;
	unrated.rated_speed = 0;
	feed(&f, &unrated, at_speed(&unrated, T0, 5.0), R0);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EQ_INT(rules_count(f.r), 0);

	/* an alert open when a new birth drops the rated speed clears with the next speed */
	sink_clear(s);
	feed(&f, &LIFT, at_speed(&LIFT, T0 + 10 * S, 1.3), R0 + 10 * S);
	CHECK_EQ_INT(s->n, 1);
	struct rule_device dropped = LIFT;
	dropped.rated_speed = 0;
	feed(&f, &dropped, at_speed(&dropped, T0 + 11 * S, 0), R0 + 11 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_OVERSPEED, 0, "", ANY, T0 + 11 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

/*
 * A lift rule with a hold, from its first record to its clear: the hold
 * starts at the record, the tick opens nothing a second before it runs out
 * and opens the alert (with its severity and detail) once it has, and
 * `end`, 10 s after that, clears it.
 */
static void hold_lifecycle(const struct sp_record *start, enum rule_id rule, int64_t hold_s,
			   enum alert_severity severity, const char *detail, struct sp_record end)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &LIFT, *start, R0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_HOLD_START, rule, 0, "", T0, ANY);
	tick(&f, R0 + (hold_s - 1) * S);
	CHECK_EQ_INT(s->n, 1);
	tick(&f, R0 + (hold_s + 1) * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, rule, 0, "", T0, T0 + hold_s * S);
	CHECK_EQ_INT(s->ev[1].severity, severity);
	CHECK_DETAIL(s, 1, detail);
	end.ts = T0 + (hold_s + 10) * S;
	feed(&f, &LIFT, end, R0 + (hold_s + 10) * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, rule, 0, "", ANY, end.ts);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

/*
 * lift.overtravel (L03/L04): a car outside the door zone at a terminal
 * floor, moving outwards, for 20 s. A normal arrival at the top passes that
 * way for a moment and opens nothing; a car that stays there opens a
 * critical alert, which stopping or moving back out there leaves open and
 * the door zone clears. At the bottom alike. Not judged without the birth's
 * floors. (No such rule before: an overtravel opened nothing.)
 */
static void test_overtravel(void)
{
	static const struct rule_device floors = {.id = 7, .site = "site-a", .dev = "lift-7",
						  .kind = SP_DEV_LIFT, .rated_speed = 1.0,
						  .has_floors = true, .floor_bottom = -1,
						  .floor_top = 7};
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* arriving at the top: 3 s outside the door zone going up, then levelled */
	feed(&f, &floors, moving(&floors, T0, 6), R0);
	CHECK_EQ_INT(s->n, 0); /* below the top: nothing */
	feed(&f, &floors, moving(&floors, T0 + 1 * S, 7), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_OVERTRAVEL, 0, "", T0 + 1 * S, ANY);
	feed(&f, &floors, parked(&floors, T0 + 4 * S, 7), R0 + 4 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_HOLD_END, RULE_LIFT_OVERTRAVEL, 0, "", ANY, ANY);
	sink_clear(s);

	/* past the top and staying there */
	feed(&f, &floors, moving(&floors, T0 + 10 * S, 7), R0 + 10 * S);
	CHECK_EQ_INT(s->n, 1);
	tick(&f, R0 + 29 * S);
	CHECK_EQ_INT(s->n, 1);
	tick(&f, R0 + 31 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_OVERTRAVEL, 0, "", T0 + 10 * S, T0 + 30 * S);
	CHECK_EQ_INT(s->ev[1].severity, ALERT_CRITICAL);
	CHECK_DETAIL(s, 1, "car up at floor 7 outside the door zone for 20 s (top floor)");
	/* stopped, then moving back down, still out of the door zone: stays open */
	feed(&f, &floors, lift(&floors, T0 + 32 * S, 7, SP_DIR_DOWN, SP_DOOR_CLOSED, false, true),
	     R0 + 32 * S);
	CHECK_EQ_INT(s->n, 2);
	feed(&f, &floors, parked(&floors, T0 + 40 * S, 7), R0 + 40 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_LIFT_OVERTRAVEL, 0, "", ANY, T0 + 40 * S);
	CHECK_EQ_INT(s->ev[2].alert_id, s->ev[1].alert_id);
	sink_clear(s);

	/* the bottom: going down at floor -1 outside the door zone */
	feed(&f, &floors, lift(&floors, T0 + 50 * S, -1, SP_DIR_DOWN, SP_DOOR_CLOSED, false, true),
	     R0 + 50 * S);
	tick(&f, R0 + 71 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_OVERTRAVEL, 0, "", T0 + 50 * S, T0 + 70 * S);
	CHECK_DETAIL(s, 1, "car down at floor -1 outside the door zone for 20 s (bottom floor)");
	feed(&f, &floors, moving(&floors, T0 + 80 * S, 0), R0 + 80 * S); /* inside the range */
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_LIFT_OVERTRAVEL, 0, "", ANY, T0 + 80 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
	sink_clear(s);

	/*
	 * stopping short of the top landing (one record going up, then stopped
	 * outside the door zone): the hold ends, no overtravel 20 s later (that
	 * car is lift.stopped_outside_zone's)
	 */
	feed(&f, &floors, moving(&floors, T0 + 90 * S, 7), R0 + 90 * S);
	feed(&f, &floors, lift(&floors, T0 + 91 * S, 7, SP_DIR_STOP, SP_DOOR_CLOSED, false, false),
	     R0 + 91 * S);
	CHECK_EQ_INT(s->n, 3); /* hold start, hold end, stopped_outside_zone's hold start */
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_OVERTRAVEL, 0, "", T0 + 90 * S, ANY);
	CHECK_EV(s, 1, RULE_HOLD_END, RULE_LIFT_OVERTRAVEL, 0, "", ANY, ANY);
	CHECK_EV(s, 2, RULE_HOLD_START, RULE_LIFT_STOPPED_OUTSIDE_ZONE, 0, "", T0 + 91 * S, ANY);
	feed(&f, &floors, parked(&floors, T0 + 95 * S, 7), R0 + 95 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
	sink_clear(s);

	/* an open alert of a lift whose next birth gives no floors: the next record clears it */
	feed(&f, &floors, moving(&floors, T0 + 100 * S, 7), R0 + 100 * S);
	feed(&f, &floors, moving(&floors, T0 + 121 * S, 7), R0 + 121 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_OVERTRAVEL, 0, "", T0 + 100 * S, T0 + 120 * S);
	struct rule_device nofloors = floors;
	nofloors.has_floors = false;
	feed(&f, &nofloors, moving(&nofloors, T0 + 122 * S, 7), R0 + 122 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_LIFT_OVERTRAVEL, 0, "", ANY, T0 + 122 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
	sink_clear(s);

	/* no floors from the birth: not judged */
	feed(&f, &LIFT, moving(&LIFT, T0, 7), R0);
	tick(&f, R0 + 60 * S);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

static void test_stopped_outside_zone(void)
{
	struct sp_record r = lift(&LIFT, T0, 4, SP_DIR_STOP, SP_DOOR_CLOSED, false, false);
	hold_lifecycle(&r, RULE_LIFT_STOPPED_OUTSIDE_ZONE, 45, ALERT_MAJOR, "near floor 4",
		       parked(&LIFT, T0, 4));
}

static void test_power_loss_and_safety_circuit(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	struct sp_record r = moving(&LIFT, T0, 2);
	r.u.lift.power = SP_POWER_BATTERY;
	r.u.lift.safety_ok = false;
	r.has |= SP_HAS_POWER_SRC | SP_HAS_SAFETY_OK;
	feed(&f, &LIFT, r, R0);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_POWER_LOSS, 0, "", T0, T0);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_SAFETY_CIRCUIT, 0, "", T0, T0);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_MAJOR);
	CHECK_EQ_INT(s->ev[1].severity, ALERT_MAJOR);
	CHECK_DETAIL(s, 0, "battery");
	CHECK_DETAIL(s, 0, "passenger in the car");
	CHECK_DETAIL(s, 1, "safety circuit open at floor 2");
	CHECK(s->ev[0].detail[0] && strcmp(s->ev[0].detail, s->ev[1].detail) != 0);

	/* neither field present: both stay open */
	feed(&f, &LIFT, moving(&LIFT, T0 + 1 * S, 2), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EQ_INT(rules_count(f.r), 2);
	/* mains back (safety not reported): only power_loss clears */
	r = moving(&LIFT, T0 + 2 * S, 2);
	r.u.lift.power = SP_POWER_MAINS;
	r.has |= SP_HAS_POWER_SRC;
	feed(&f, &LIFT, r, R0 + 2 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_LIFT_POWER_LOSS, 0, "", ANY, T0 + 2 * S);
	CHECK_EQ_INT(s->ev[2].alert_id, s->ev[0].alert_id);
	r = moving(&LIFT, T0 + 3 * S, 2);
	r.u.lift.safety_ok = true;
	r.has |= SP_HAS_SAFETY_OK;
	feed(&f, &LIFT, r, R0 + 3 * S);
	CHECK_EQ_INT(s->n, 4);
	CHECK_EV(s, 3, RULE_CLEAR, RULE_LIFT_SAFETY_CIRCUIT, 0, "", ANY, T0 + 3 * S);
	CHECK_EQ_INT(s->ev[3].alert_id, s->ev[1].alert_id);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

static void test_door_open_long(void)
{
	struct sp_record r = lift(&LIFT, T0, 0, SP_DIR_STOP, SP_DOOR_OPEN, true, false);
	hold_lifecycle(&r, RULE_LIFT_DOOR_OPEN_LONG, 120, ALERT_MINOR,
		       "door not closed for 2 min (now open)", parked(&LIFT, T0, 0));
}

/*
 * A door an obstruction keeps bouncing (open, closing, opening, open, ...)
 * never closes: door_open_long opens after its 120 s. It did not: each
 * "closing" ended the hold, so such a door was never alerted.
 */
static void test_door_bouncing(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	static const enum sp_door cycle[] = {SP_DOOR_OPEN, SP_DOOR_CLOSING, SP_DOOR_OPENING};
	for (int i = 0; i < 30; i++) {
		struct sp_record r = lift(&LIFT, T0 + i * 5 * S, 2, SP_DIR_STOP, cycle[i % 3], true,
					  false);
		feed(&f, &LIFT, r, R0 + i * 5 * S);
	}
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_DOOR_OPEN_LONG, 0, "", T0, ANY);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_DOOR_OPEN_LONG, 0, "", T0, T0 + 120 * S);
	CHECK_DETAIL(s, 1, "door not closed for 2 min");
	CHECK_DETAIL(s, 1, "at floor 2 in the door zone");
	feed(&f, &LIFT, parked(&LIFT, T0 + 150 * S, 2), R0 + 150 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_LIFT_DOOR_OPEN_LONG, 0, "", ANY, T0 + 150 * S);
out:
	fx_close(&f);
}

/* ------------------------------------------------- lift.door_reopen (L14) */

/*
 * A fixture for door cycles: lift.door_open_long off, so that the events
 * seen are lift.door_reopen's alone (its doors stand open between cycles).
 */
static bool fx_open_doors(struct fx *f)
{
	if (!fx_open(f))
		return false;
	rules_config_global(f->cfg, RULE_LIFT_DOOR_OPEN_LONG)->enabled = false;
	return true;
}

/* Feeds doors() records at floor, 5 s apart from ts on, with the counter at each of cycles[]. */
static void door_cycles_at(struct fx *f, const struct rule_device *d, int64_t ts, int floor,
			   const int64_t *cycles, int n)
{
	for (int i = 0; i < n; i++)
		feed(f, d, doors(d, ts + i * 5 * S, floor, cycles[i]), R0 + (ts - T0) + i * 5 * S);
}

/*
 * Five cycles while the car stands opens one alert at the fifth, not
 * before, and no other with the cycles after; the car running clears it.
 */
static void test_door_reopen_at_the_threshold(void)
{
	struct fx f;
	if (!fx_open_doors(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &LIFT, shut(&LIFT, T0, 2, 1000), R0); /* standing, door shut: nothing counted */
	static const int64_t four[] = {1001, 1002, 1003, 1004};
	door_cycles_at(&f, &LIFT, T0 + 5 * S, 2, four, 4); /* the door opens: 4 cycles */
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 0);
	feed(&f, &LIFT, doors(&LIFT, T0 + 25 * S, 2, 1005), R0 + 25 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 25 * S, T0 + 25 * S);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_MINOR);
	CHECK_DETAIL(s, 0, "door opened and closed 5 times in 20 s");
	CHECK_DETAIL(s, 0, "at floor 2 (limit 5)");
	CHECK_DETAIL(s, 0, "possible door obstruction");
	/* more cycles, and the tick: still the one alert */
	static const int64_t more[] = {1006, 1009, 1020};
	door_cycles_at(&f, &LIFT, T0 + 30 * S, 2, more, 3);
	tick(&f, R0 + 600 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EQ_INT(rules_count(f.r), 1);
	/* the car runs: cleared */
	struct sp_record r = moving(&LIFT, T0 + 50 * S, 2);
	r.u.lift.door_cycles = 1020;
	r.has |= SP_HAS_DOOR_CYCLES;
	feed(&f, &LIFT, r, R0 + 50 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_DOOR_REOPEN, 0, "", ANY, T0 + 50 * S);
	CHECK_EQ_INT(s->ev[1].alert_id, s->ev[0].alert_id);
	CHECK_EQ_INT(rules_count(f.r), 0);
	/* stopped at the same floor again: counting starts from there, its first cycle the first */
	static const int64_t again[] = {1021, 1024};
	door_cycles_at(&f, &LIFT, T0 + 60 * S, 2, again, 2);
	CHECK_EQ_INT(s->n, 2);
	feed(&f, &LIFT, doors(&LIFT, T0 + 70 * S, 2, 1026), R0 + 70 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 70 * S, T0 + 70 * S);
out:
	fx_close(&f);
}

/* A busy car: a cycle or two at each stop, running between; the cycles do not add up. */
static void test_door_reopen_car_moves_between(void)
{
	struct fx f;
	if (!fx_open_doors(&f))
		goto out;
	struct sink *s = f.s;
	int64_t cycles = 500, t = T0;
	for (int stop = 0; stop < 20; stop++) {
		int floor = stop % 2 ? 2 : 5; /* the same two floors over and over */
		for (int i = 0; i < 3; i++, t += 5 * S, cycles += i < 2) /* 2 cycles a stop */
			feed(&f, &LIFT, doors(&LIFT, t, floor, cycles), R0 + (t - T0));
		struct sp_record r = moving(&LIFT, t, floor);
		feed(&f, &LIFT, r, R0 + (t - T0));
		t += 5 * S;
	}
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

/* At another floor without a running record between: cleared, and counted from there. */
static void test_door_reopen_floor_change(void)
{
	struct fx f;
	if (!fx_open_doors(&f))
		goto out;
	struct sink *s = f.s;
	static const int64_t six[] = {10, 12, 14, 16};
	door_cycles_at(&f, &LIFT, T0, 3, six, 4);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 10 * S, ANY);
	CHECK_DETAIL(s, 0, "5 times in 10 s while the car stood at floor 3");
	feed(&f, &LIFT, doors(&LIFT, T0 + 20 * S, 4, 17), R0 + 20 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_DOOR_REOPEN, 0, "", ANY, T0 + 20 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
	static const int64_t four[] = {18, 20};
	door_cycles_at(&f, &LIFT, T0 + 25 * S, 4, four, 2); /* 4 since floor 4 (17 the first) */
	CHECK_EQ_INT(s->n, 2);
	feed(&f, &LIFT, doors(&LIFT, T0 + 35 * S, 4, 22), R0 + 35 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 35 * S, ANY);
	CHECK_DETAIL(s, 2, "at floor 4");
out:
	fx_close(&f);
}

/* A counter that goes back (terminal reset or replaced) starts the count again; it never raises. */
static void test_door_reopen_counter_back(void)
{
	struct fx f;
	if (!fx_open_doors(&f))
		goto out;
	struct sink *s = f.s;
	static const int64_t reset[] = {90000, 90003, 2, 5, 6};
	door_cycles_at(&f, &LIFT, T0, 1, reset, 5); /* 3, then 0 from 2 on: 4 */
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 0);
	feed(&f, &LIFT, doors(&LIFT, T0 + 25 * S, 1, 7), R0 + 25 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 25 * S, ANY);
	CHECK_DETAIL(s, 0, "5 times in 15 s");
	/* with the alert open, a reset neither clears it nor opens another */
	static const int64_t reset2[] = {0, 1, 9};
	door_cycles_at(&f, &LIFT, T0 + 30 * S, 1, reset2, 3);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EQ_INT(rules_count(f.r), 1);
	feed(&f, &LIFT, moving(&LIFT, T0 + 45 * S, 1), R0 + 45 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_DOOR_REOPEN, 0, "", ANY, T0 + 45 * S);
out:
	fx_close(&f);
}

/*
 * Inspection and out of service switch the rule off, as they do the other
 * lift rules but lift.trapped: an open alert clears, nothing opens, and the
 * technician's cycles do not count once the lift is back in service.
 */
static void test_door_reopen_maintenance_modes(void)
{
	static const enum sp_mode modes[] = {SP_MODE_INSPECTION, SP_MODE_OUT_OF_SERVICE};
	for (int m = 0; m < 2; m++) {
		struct fx f;
		if (!fx_open_doors(&f))
			goto next;
		struct sink *s = f.s;
		static const int64_t five[] = {100, 102, 105};
		door_cycles_at(&f, &LIFT, T0, 2, five, 3);
		CHECK_EQ_INT(s->n, 1);
		CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", ANY, ANY);
		/* a technician takes the lift over, at the same floor */
		for (int i = 0; i < 10; i++) {
			struct sp_record r = doors(&LIFT, T0 + (20 + i * 5) * S, 2, 106 + 3 * i);
			r.u.lift.mode = modes[m];
			feed(&f, &LIFT, r, R0 + (20 + i * 5) * S);
		}
		CHECK_EQ_INT(s->n, 3);
		CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_DOOR_REOPEN, 0, "", ANY, T0 + 20 * S);
		CHECK_EV(s, 2, RULE_OPEN, RULE_LIFT_MODE, 0, "", ANY, ANY);
		/* back in service, still at floor 2: counting starts there (133 the first) */
		static const int64_t back[] = {133, 134, 136};
		door_cycles_at(&f, &LIFT, T0 + 100 * S, 2, back, 3);
		CHECK_EQ_INT(s->n, 4);
		CHECK_EV(s, 3, RULE_CLEAR, RULE_LIFT_MODE, 0, "", ANY, T0 + 100 * S);
		feed(&f, &LIFT, doors(&LIFT, T0 + 115 * S, 2, 138), R0 + 115 * S);
		CHECK_EQ_INT(s->n, 5);
		CHECK_EV(s, 4, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 115 * S, ANY);
	next:
		fx_close(&f);
	}
}

/* The threshold from the configuration, for every site and for one; disabled; below 2. */
static void test_door_reopen_configured(void)
{
	struct fx f;
	if (!fx_open_doors(&f))
		goto out;
	struct sink *s = f.s;
	rules_config_global(f.cfg, RULE_LIFT_DOOR_REOPEN)->threshold = 3;
	struct rule_setting *b = rules_config_site(f.cfg, "site-b", RULE_LIFT_DOOR_REOPEN);
	CHECK(b != NULL);
	if (b == NULL)
		goto out;
	b->threshold = 8;
	static const int64_t c[] = {10, 11, 12, 13, 14, 15, 16};
	door_cycles_at(&f, &LIFT, T0, 0, c, 7);
	door_cycles_at(&f, &LIFT_B, T0, 0, c, 7);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 10 * S, ANY);
	CHECK_EQ_INT(s->ev[0].device_id, LIFT.id);
	CHECK_DETAIL(s, 0, "3 times in 10 s while the car stood at floor 0 (limit 3)");
	feed(&f, &LIFT_B, doors(&LIFT_B, T0 + 35 * S, 0, 16), R0 + 35 * S);
	CHECK_EQ_INT(s->n, 1);
	feed(&f, &LIFT_B, doors(&LIFT_B, T0 + 40 * S, 0, 17), R0 + 40 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 40 * S, ANY);
	CHECK_EQ_INT(s->ev[1].device_id, LIFT_B.id);
	CHECK_DETAIL(s, 1, "(limit 8)");
	/* disabled: the open alert clears with the next record, nothing counts */
	rules_config_global(f.cfg, RULE_LIFT_DOOR_REOPEN)->enabled = false;
	static const int64_t many[] = {20, 40, 60};
	door_cycles_at(&f, &LIFT, T0 + 100 * S, 0, many, 3);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_LIFT_DOOR_REOPEN, 0, "", ANY, T0 + 100 * S);
	/* enabled again: counted from the first record after, not from before */
	rules_config_global(f.cfg, RULE_LIFT_DOOR_REOPEN)->enabled = true;
	static const int64_t two[] = {60, 61};
	door_cycles_at(&f, &LIFT, T0 + 200 * S, 0, two, 2);
	CHECK_EQ_INT(s->n, 3);
	/* a threshold below 2 counts as 2: one cycle at a stop is boarding, and opens nothing */
	rules_config_global(f.cfg, RULE_LIFT_DOOR_REOPEN)->threshold = 0;
	feed(&f, &LIFT, moving(&LIFT, T0 + 250 * S, 0), R0 + 250 * S);
	static const int64_t still[] = {62, 62, 62};
	door_cycles_at(&f, &LIFT, T0 + 300 * S, 0, still, 3);
	CHECK_EQ_INT(s->n, 3);
	feed(&f, &LIFT, doors(&LIFT, T0 + 320 * S, 0, 63), R0 + 320 * S);
	CHECK_EQ_INT(s->n, 4);
	CHECK_EV(s, 3, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 320 * S, ANY);
	CHECK_DETAIL(s, 3, "(limit 2)");
out:
	fx_close(&f);
}

/*
 * Records without the counter count nothing and leave the state alone;
 * counts survive rules_reset, and records judged twice count once.
 */
static void test_door_reopen_without_counter(void)
{
	struct fx f;
	if (!fx_open_doors(&f))
		goto out;
	struct sink *s = f.s;
	for (int i = 0; i < 10; i++)
		feed(&f, &LIFT, parked(&LIFT, T0 + i * S, 2), R0 + i * S);
	CHECK_EQ_INT(s->n, 0);
	static const int64_t c[] = {41, 42, 43};
	door_cycles_at(&f, &LIFT, T0 + 10 * S, 2, c, 3);
	feed(&f, &LIFT, parked(&LIFT, T0 + 30 * S, 2), R0 + 30 * S); /* no counter: no change */
	rules_reset(f.r); /* a rolled-back batch: the same records come again */
	door_cycles_at(&f, &LIFT, T0 + 10 * S, 2, c, 3);
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &LIFT, doors(&LIFT, T0 + 35 * S, 2, 44), R0 + 35 * S);
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &LIFT, doors(&LIFT, T0 + 40 * S, 2, 45), R0 + 40 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 40 * S, ANY);
	CHECK_DETAIL(s, 0, "5 times in 30 s");
	/* no counter, another floor: cleared */
	feed(&f, &LIFT, parked(&LIFT, T0 + 45 * S, 3), R0 + 45 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_DOOR_REOPEN, 0, "", ANY, T0 + 45 * S);
out:
	fx_close(&f);
}

/*
 * A door shut with its counter still for RULES_DOOR_IDLE_MS ends the count
 * and clears the alert: the burst is over. Cycles before such a pause do not
 * add to those after it; a counter rising behind a shut door keeps it.
 */
static void test_door_reopen_idle(void)
{
	struct fx f;
	if (!fx_open_doors(&f))
		goto out;
	struct sink *s = f.s;
	static const int64_t burst[] = {301, 302, 303, 304, 305};
	door_cycles_at(&f, &LIFT, T0, 6, burst, 5);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_DOOR_REOPEN, 0, "", T0 + 20 * S, ANY);
	/* shut from T0 + 25 s on; the counter rises once behind it (T0 + 50 s) */
	feed(&f, &LIFT, shut(&LIFT, T0 + 25 * S, 6, 305), R0 + 25 * S);
	feed(&f, &LIFT, shut(&LIFT, T0 + 50 * S, 6, 306), R0 + 50 * S);
	feed(&f, &LIFT, shut(&LIFT, T0 + 50 * S + RULES_DOOR_IDLE_MS - 1, 6, 306),
	     R0 + 50 * S + RULES_DOOR_IDLE_MS - 1);
	CHECK_EQ_INT(s->n, 1);
	feed(&f, &LIFT, shut(&LIFT, T0 + 50 * S + RULES_DOOR_IDLE_MS, 6, 306),
	     R0 + 50 * S + RULES_DOOR_IDLE_MS);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_DOOR_REOPEN, 0, "", ANY,
		 T0 + 50 * S + RULES_DOOR_IDLE_MS);
	CHECK_EQ_INT(rules_count(f.r), 0);
	/* three cycles, a pause, three more: two bursts of three, no alert */
	int64_t t = T0 + 200 * S;
	static const int64_t three[] = {307, 308, 309};
	door_cycles_at(&f, &LIFT, t, 6, three, 3);
	feed(&f, &LIFT, shut(&LIFT, t + 15 * S, 6, 309), R0 + (t - T0) + 15 * S);
	feed(&f, &LIFT, shut(&LIFT, t + 15 * S + RULES_DOOR_IDLE_MS, 6, 309),
	     R0 + (t - T0) + 15 * S + RULES_DOOR_IDLE_MS);
	static const int64_t three_more[] = {310, 311, 312};
	door_cycles_at(&f, &LIFT, t + 100 * S, 6, three_more, 3);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

/*
 * A restart (or a rolled-back batch) forgets the door counts, not the open
 * alert: the first record of the car standing with its door shut ends it,
 * rather than leaving it open for as long as the car stays parked.
 */
static void test_door_reopen_count_lost(void)
{
	struct fx f;
	if (!fx_open_doors(&f))
		goto out;
	struct sink *s = f.s;
	CHECK_EQ_INT(rules_load_alert(f.r, &LIFT, "lift.door_reopen", 0, "", 91, T0 + 20 * S, T0 + 20 * S, R0),
		     0);
	CHECK_EQ_INT(rules_count(f.r), 1);
	feed(&f, &LIFT, shut(&LIFT, T0 + 25 * S, 6, 305), R0 + 25 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_CLEAR, RULE_LIFT_DOOR_REOPEN, 0, "", ANY, T0 + 25 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
	/* a record without the counter says nothing either way: a new alert stays open */
	CHECK_EQ_INT(rules_load_alert(f.r, &LIFT, "lift.door_reopen", 0, "", 92, T0 + 30 * S, T0 + 30 * S, R0),
		     0);
	struct sp_record r = shut(&LIFT, T0 + 35 * S, 6, 305);
	r.has &= ~SP_HAS_DOOR_CYCLES;
	feed(&f, &LIFT, r, R0 + 35 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EQ_INT(rules_count(f.r), 1);
out:
	fx_close(&f);
}

static void test_inspection_suppresses(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &LIFT, trapped(&LIFT, T0, 3, false), R0);
	CHECK_EQ_INT(s->n, 1);
	/* a technician switches to inspection: the hold ends, lift.mode opens */
	struct sp_record r = trapped(&LIFT, T0 + 5 * S, 3, false);
	r.u.lift.mode = SP_MODE_INSPECTION;
	feed(&f, &LIFT, r, R0 + 5 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 1, RULE_HOLD_END, RULE_LIFT_TRAPPED, 0, "", ANY, ANY);
	CHECK_EV(s, 2, RULE_OPEN, RULE_LIFT_MODE, 0, "", T0 + 5 * S, T0 + 5 * S);
	CHECK_EQ_INT(s->ev[2].severity, ALERT_WARNING);
	CHECK_DETAIL(s, 2, "inspection");
	/* moving with the door open in inspection, then out of service outside the zone: quiet */
	r = lift(&LIFT, T0 + 10 * S, 3, SP_DIR_UP, SP_DOOR_OPEN, false, true);
	r.u.lift.mode = SP_MODE_INSPECTION;
	r.u.lift.power = SP_POWER_BATTERY;
	r.has |= SP_HAS_POWER_SRC;
	feed(&f, &LIFT, r, R0 + 10 * S);
	r = lift(&LIFT, T0 + 15 * S, 3, SP_DIR_STOP, SP_DOOR_OPEN, false, false);
	r.u.lift.mode = SP_MODE_OUT_OF_SERVICE;
	feed(&f, &LIFT, r, R0 + 15 * S);
	tick(&f, R0 + 600 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EQ_INT(rules_count(f.r), 1);
	/* fire mode is not maintenance: the rules judge again */
	r = lift(&LIFT, T0 + 20 * S, 3, SP_DIR_UP, SP_DOOR_OPEN, false, false);
	r.u.lift.mode = SP_MODE_FIRE;
	feed(&f, &LIFT, r, R0 + 20 * S);
	CHECK_EQ_INT(s->n, 4);
	CHECK_EV(s, 3, RULE_OPEN, RULE_LIFT_DOOR_OPEN_MOVING, 0, "", ANY, ANY);
	/* back to normal at a landing: both clear */
	feed(&f, &LIFT, parked(&LIFT, T0 + 25 * S, 3), R0 + 25 * S);
	CHECK_EQ_INT(s->n, 6);
	CHECK_EV(s, 4, RULE_CLEAR, RULE_LIFT_DOOR_OPEN_MOVING, 0, "", ANY, T0 + 25 * S);
	CHECK_EV(s, 5, RULE_CLEAR, RULE_LIFT_MODE, 0, "", ANY, T0 + 25 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

/*
 * A passenger shut in a car the controller reports out of service is still
 * trapped (it was not alerted: out of service quieted every lift rule); the
 * rest stays quiet out of service.
 */
static void test_out_of_service_trapped(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	struct sp_record r = trapped(&LIFT, T0, 3, false);
	r.u.lift.mode = SP_MODE_OUT_OF_SERVICE;
	r.u.lift.power = SP_POWER_BATTERY;
	r.has |= SP_HAS_POWER_SRC;
	feed(&f, &LIFT, r, R0);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_TRAPPED, 0, "", T0, ANY);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_MODE, 0, "", T0, T0);
	tick(&f, R0 + 20 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0, T0 + 20 * S);
	CHECK_EQ_INT(s->ev[2].severity, ALERT_CRITICAL);
	CHECK_DETAIL(s, 2, "between floors near floor 3");
	/* the door opens (still out of service, car empty now): it clears, nothing else opens */
	r = lift(&LIFT, T0 + 30 * S, 3, SP_DIR_STOP, SP_DOOR_OPEN, true, false);
	r.u.lift.mode = SP_MODE_OUT_OF_SERVICE;
	feed(&f, &LIFT, r, R0 + 30 * S);
	tick(&f, R0 + 600 * S);
	CHECK_EQ_INT(s->n, 4);
	CHECK_EV(s, 3, RULE_CLEAR, RULE_LIFT_TRAPPED, 0, "", ANY, T0 + 30 * S);
	CHECK_EQ_INT(rules_count(f.r), 1); /* lift.mode */
	/* in inspection a technician in the car is no trapped passenger */
	r = trapped(&LIFT, T0 + 40 * S, 3, false);
	r.u.lift.mode = SP_MODE_INSPECTION;
	feed(&f, &LIFT, r, R0 + 40 * S);
	tick(&f, R0 + 700 * S);
	CHECK_EQ_INT(s->n, 4);
out:
	fx_close(&f);
}

static void test_faults_per_code(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &LIFT, fault(&LIFT, T0, "E12", true, 0, "brake did not lift"), R0);
	feed(&f, &LIFT, fault(&LIFT, T0 + 1 * S, "E13", true, 0, NULL), R0 + 1 * S);
	feed(&f, &LIFT, fault(&LIFT, T0 + 2 * S, "E12", true, 0, NULL), R0 + 2 * S); /* again */
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_FAULT, 0, "E12", T0, T0);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_FAULT, 0, "E13", T0 + 1 * S, T0 + 1 * S);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_MAJOR);
	CHECK_DETAIL(s, 0, "fault E12 raised: brake did not lift");
	CHECK_DETAIL(s, 1, "fault E13 raised");
	CHECK_EQ_INT(rules_count(f.r), 2);
	feed(&f, &LIFT, fault(&LIFT, T0 + 3 * S, "E12", false, 0, NULL), R0 + 3 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_LIFT_FAULT, 0, "E12", ANY, T0 + 3 * S);
	CHECK_EQ_INT(s->ev[2].alert_id, s->ev[0].alert_id);
	CHECK(s->ev[0].alert_id != s->ev[1].alert_id);
	CHECK_EQ_INT(rules_count(f.r), 1);
	feed(&f, &LIFT, fault(&LIFT, T0 + 4 * S, "E13", false, 0, NULL), R0 + 4 * S);
	CHECK_EQ_INT(s->n, 4);
	CHECK_EV(s, 3, RULE_CLEAR, RULE_LIFT_FAULT, 0, "E13", ANY, T0 + 4 * S);
	CHECK_EQ_INT(s->ev[3].alert_id, s->ev[1].alert_id);
	CHECK_EQ_INT(rules_count(f.r), 0);

	/* a charger's fault on a port is keyed by the port too */
	sink_clear(s);
	feed(&f, &CHG, fault(&CHG, T0, "F1", true, 3, "relay stuck"), R0);
	feed(&f, &CHG, fault(&CHG, T0, "F1", true, 4, NULL), R0);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_OPEN, RULE_CHARGER_FAULT, 3, "F1", T0, T0);
	CHECK_EV(s, 1, RULE_OPEN, RULE_CHARGER_FAULT, 4, "F1", T0, T0);
	CHECK_DETAIL(s, 0, "fault F1 raised on port 3: relay stuck");
	feed(&f, &CHG, fault(&CHG, T0 + 1 * S, "F1", false, 4, NULL), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_CHARGER_FAULT, 4, "F1", ANY, ANY);
	CHECK_EQ_INT(s->ev[2].alert_id, s->ev[1].alert_id);
	CHECK_EQ_INT(rules_count(f.r), 1);

	/* a device of unknown kind: a port makes it a charger */
	sink_clear(s);
	struct rule_device unk = {
		.id = 7, .site = "site-a", .dev = "box-1", .kind = SP_DEV_UNKNOWN};
	feed(&f, &unk, fault(&unk, T0, "X", true, 2, NULL), R0);
	feed(&f, &unk, fault(&unk, T0, "Y", true, 0, NULL), R0);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_OPEN, RULE_CHARGER_FAULT, 2, "X", T0, T0);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_FAULT, 0, "Y", T0, T0);
out:
	fx_close(&f);
}

/*
 * A fault raised while its device's kind was unknown is judged under the
 * guessed rule (no port: lift.fault). Once the device is known as a charger
 * (a birth, or a station or port record), its clear finds nothing under
 * charger.fault: it ends the lift.fault condition of the same port and code,
 * whose alert is the one open, rather than leave that alert open for ever.
 * A raise repeated meanwhile keeps that alert (no second one the clear
 * would leave). The same after a restart (the alert reloaded), and the other
 * way round.
 */
static void test_fault_of_a_device_first_unknown(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	struct rule_device unk = {
		.id = 8, .site = "site-a", .dev = "chg-9", .kind = SP_DEV_UNKNOWN};
	struct rule_device chg = unk;
	chg.kind = SP_DEV_CHARGER;
	chg.port_limit_w = 1000;
	feed(&f, &unk, fault(&unk, T0, "E7", true, 0, "contactor"), R0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_FAULT, 0, "E7", T0, T0);
	/* its birth (or a port record) said charger: the same fault raised again */
	feed(&f, &chg, fault(&chg, T0 + 1 * S, "E7", true, 0, NULL), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EQ_INT(rules_count(f.r), 1);
	feed(&f, &chg, fault(&chg, T0 + 2 * S, "E7", false, 0, NULL), R0 + 2 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_FAULT, 0, "E7", ANY, T0 + 2 * S);
	CHECK_EQ_INT(s->ev[1].alert_id, s->ev[0].alert_id);
	CHECK_EQ_INT(rules_count(f.r), 0);
	CHECK_EQ_INT(s->fault_clears, 1);
	CHECK(s->last_clear.device_id == chg.id && s->last_clear.port == 0 &&
	      s->last_clear.ts == T0 + 2 * S);
	CHECK_EQ_STR(s->last_clear.code, "E7");
	/* a late raise before that clear stays over, whichever rule it is judged under */
	feed_late(&f, &chg, fault(&chg, T0 + 1 * S, "E7", true, 0, NULL), R0 + 3 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EQ_INT(s->stale, 1);
	/* now a charger: a new raise of it is a charger fault */
	feed(&f, &chg, fault(&chg, T0 + 4 * S, "E7", true, 0, NULL), R0 + 4 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_OPEN, RULE_CHARGER_FAULT, 0, "E7", T0 + 4 * S, T0 + 4 * S);
	feed(&f, &chg, fault(&chg, T0 + 5 * S, "E7", false, 0, NULL), R0 + 5 * S);
	CHECK_EQ_INT(s->n, 4);
	CHECK_EV(s, 3, RULE_CLEAR, RULE_CHARGER_FAULT, 0, "E7", ANY, T0 + 5 * S);
	CHECK_EQ_INT(s->ev[3].alert_id, s->ev[2].alert_id);
	CHECK_EQ_INT(rules_count(f.r), 0);

	/* after a restart: the lift.fault alert reloaded, the device a charger by now */
	sink_clear(s);
	rules_reset(f.r);
	CHECK_EQ_INT(rules_load_alert(f.r, &chg, "lift.fault", 0, "E8", 77, T0 + 10 * S, T0 + 10 * S, R0), 0);
	feed(&f, &chg, fault(&chg, T0 + 11 * S, "E8", false, 0, NULL), R0 + 11 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_CLEAR, RULE_LIFT_FAULT, 0, "E8", ANY, T0 + 11 * S);
	CHECK_EQ_INT(s->ev[0].alert_id, 77);
	CHECK_EQ_INT(rules_count(f.r), 0);

	/* the other way: a port made the guess charger, the device is a lift */
	sink_clear(s);
	struct rule_device unk2 = {.id = 9, .site = "site-a", .dev = "lift-9",
				   .kind = SP_DEV_UNKNOWN};
	struct rule_device lift9 = unk2;
	lift9.kind = SP_DEV_LIFT;
	feed(&f, &unk2, fault(&unk2, T0, "E3", true, 2, NULL), R0);
	CHECK_EV(s, 0, RULE_OPEN, RULE_CHARGER_FAULT, 2, "E3", T0, T0);
	/* another port's clear is another fault: nothing to end */
	feed(&f, &lift9, fault(&lift9, T0 + 1 * S, "E3", false, 1, NULL), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 1);
	feed(&f, &lift9, fault(&lift9, T0 + 2 * S, "E3", false, 2, NULL), R0 + 2 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_FAULT, 2, "E3", ANY, T0 + 2 * S);
	CHECK_EQ_INT(s->ev[1].alert_id, s->ev[0].alert_id);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

static void test_late_records(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* late non-fault records do not move the rules */
	feed_late(&f, &CHG, station(&CHG, T0, true), R0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 0);
	feed(&f, &CHG, station(&CHG, T0 + 10 * S, true), R0 + 10 * S);
	CHECK_EQ_INT(s->n, 1);
	feed_late(&f, &CHG, station(&CHG, T0 + 11 * S, false), R0 + 11 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EQ_INT(rules_count(f.r), 1);
	feed(&f, &CHG, station(&CHG, T0 + 12 * S, false), R0 + 12 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_SMOKE, 0, "", ANY, T0 + 12 * S);

	/* late fault records are explicit raises and clears: honoured */
	sink_clear(s);
	feed_late(&f, &CHG, fault(&CHG, T0 + 20 * S, "F9", true, 0, NULL), R0 + 30 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_CHARGER_FAULT, 0, "F9", T0 + 20 * S, T0 + 20 * S);
	feed_late(&f, &CHG, fault(&CHG, T0 + 25 * S, "F9", false, 0, NULL), R0 + 31 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_FAULT, 0, "F9", ANY, T0 + 25 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
	CHECK_EQ_INT(s->stale, 0);
out:
	fx_close(&f);
}

/*
 * A raise lost in transit and resent after its own clear went through
 * (late, older than that clear) is over already: no alert that nothing
 * would ever clear. The same fault raised after the clear still opens,
 * and other codes, ports and devices are not affected.
 */
static void test_late_raise_after_its_clear(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &LIFT, fault(&LIFT, T0 + 20 * S, "E12", false, 0, NULL), R0 + 20 * S);
	CHECK_EQ_INT(s->n, 0); /* a clear with nothing to clear */
	/* still handed on, for the store to remember */
	CHECK_EQ_INT(s->fault_clears, 1);
	CHECK(s->last_clear.device_id == LIFT.id && s->last_clear.rule == RULE_LIFT_FAULT &&
	      s->last_clear.port == 0 && s->last_clear.ts == T0 + 20 * S);
	CHECK_EQ_STR(s->last_clear.code, "E12");
	feed_late(&f, &LIFT, fault(&LIFT, T0 + 10 * S, "E12", true, 0, NULL), R0 + 25 * S);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 0);
	CHECK_EQ_INT(s->stale, 1);
	/* at the clear's own time: the clear came after it */
	feed_late(&f, &LIFT, fault(&LIFT, T0 + 20 * S, "E12", true, 0, NULL), R0 + 26 * S);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(s->stale, 2);
	/* another code of the same lift, late as well: nothing cleared it, it opens */
	feed_late(&f, &LIFT, fault(&LIFT, T0 + 10 * S, "E30", true, 0, NULL), R0 + 27 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_FAULT, 0, "E30", T0 + 10 * S, T0 + 10 * S);
	/* a late raise newer than the clear is a new episode: it opens */
	feed_late(&f, &LIFT, fault(&LIFT, T0 + 21 * S, "E12", true, 0, NULL), R0 + 28 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_FAULT, 0, "E12", T0 + 21 * S, T0 + 21 * S);
	/* a raise that is not late is judged as always, even older than a clear (device clocks) */
	feed(&f, &CHG, fault(&CHG, T0 + 40 * S, "F1", false, 2, NULL), R0 + 40 * S);
	feed(&f, &CHG, fault(&CHG, T0 + 35 * S, "F1", true, 2, NULL), R0 + 41 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_OPEN, RULE_CHARGER_FAULT, 2, "F1", T0 + 35 * S, ANY);
	/* the charger's clear was of port 2: a late raise of port 3 opens, of port 2 not */
	feed(&f, &CHG, fault(&CHG, T0 + 50 * S, "F1", false, 2, NULL), R0 + 50 * S);
	CHECK_EQ_INT(s->n, 4);
	CHECK(s->last_clear.device_id == CHG.id && s->last_clear.rule == RULE_CHARGER_FAULT &&
	      s->last_clear.port == 2 && s->last_clear.ts == T0 + 50 * S);
	CHECK_EQ_INT(s->fault_clears, 3); /* E12, and F1 of port 2 twice */
	CHECK_EV(s, 3, RULE_CLEAR, RULE_CHARGER_FAULT, 2, "F1", ANY, T0 + 50 * S);
	feed_late(&f, &CHG, fault(&CHG, T0 + 45 * S, "F1", true, 2, NULL), R0 + 51 * S);
	CHECK_EQ_INT(s->n, 4);
	feed_late(&f, &CHG, fault(&CHG, T0 + 45 * S, "F1", true, 3, NULL), R0 + 52 * S);
	CHECK_EQ_INT(s->n, 5);
	CHECK_EV(s, 4, RULE_OPEN, RULE_CHARGER_FAULT, 3, "F1", T0 + 45 * S, ANY);
	/* another device with the same code and port is its own */
	feed_late(&f, &CHG_B, fault(&CHG_B, T0 + 45 * S, "F1", true, 2, NULL), R0 + 53 * S);
	CHECK_EQ_INT(s->n, 6);
	CHECK_EQ_INT(s->ev[5].device_id, CHG_B.id);
	CHECK_EQ_INT(s->stale, 3);
	/* remembered across a reset (the reload after a rolled-back batch) */
	rules_reset(f.r);
	sink_clear(s);
	feed_late(&f, &LIFT, fault(&LIFT, T0 + 15 * S, "E12", true, 0, NULL), R0 + 60 * S);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(s->stale, 4);
out:
	fx_close(&f);
}

static void test_older_record_ignored(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &CHG, station(&CHG, T0 + 10 * S, true), R0);
	feed(&f, &CHG, station(&CHG, T0 + 5 * S, false), R0 + 1); /* out of order */
	CHECK_EQ_INT(s->n, 1);
	CHECK_EQ_INT(rules_count(f.r), 1);
	feed(&f, &CHG, station(&CHG, T0 + 10 * S, false), R0 + 2); /* same ts: judged */
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_SMOKE, 0, "", ANY, T0 + 10 * S);
out:
	fx_close(&f);
}

static struct sp_record leak(const struct rule_device *d, int64_t ts, double ma)
{
	struct sp_record r = station(d, ts, false);
	r.u.station.leak_ma = ma;
	r.has |= SP_HAS_LEAK_MA;
	return r;
}

static struct sp_record supply(const struct rule_device *d, int64_t ts, double v)
{
	struct sp_record r = station(d, ts, false);
	r.u.station.supply_v = v;
	r.has |= SP_HAS_SUPPLY_V;
	return r;
}

/* Event k is a clock step from old to new (device time). */
#define CHECK_STEP(s, k, OLD, NEW)                                                                 \
	do {                                                                                       \
		CHECK((k) < (s)->n);                                                               \
		CHECK_EQ_INT((s)->ev[(k) < EV_MAX ? (k) : 0].kind, RULE_CLOCK_STEP);               \
		CHECK_EQ_INT((s)->ev[(k) < EV_MAX ? (k) : 0].since, OLD);                          \
		CHECK_EQ_INT((s)->ev[(k) < EV_MAX ? (k) : 0].ts, NEW);                             \
	} while (0)

#define H (3600 * S)

static struct sp_record charging(const struct rule_device *d, int64_t ts, int32_t no)
{
	return port(d, ts, no, SP_PORT_CHARGING);
}

/*
 * A charger's clock set back 8 h (local time sent as UTC, then corrected):
 * its records are ignored for the clock step's time, then its open alert
 * clears on them and its pending hold keeps the time it has run.
 */
static void test_clock_set_back(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	int64_t t8 = T0 + 8 * H;
	feed(&f, &CHG, station(&CHG, t8, true), R0);
	feed(&f, &CHG, charging(&CHG, t8, 1), R0);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_OPEN, RULE_CHARGER_SMOKE, 0, "", t8, t8);
	CHECK_EV(s, 1, RULE_HOLD_START, RULE_PORT_LONG_SESSION, 1, "", t8, ANY);
	int64_t smoke_id = s->ev[0].alert_id;

	/* the smoke is gone, but the records are 8 h behind: not judged for 60 s */
	sink_clear(s);
	CHECK_EQ_INT(feed(&f, &CHG, station(&CHG, T0 + 10 * S, false), R0 + 10 * S), 0);
	CHECK_EQ_INT(feed(&f, &CHG, charging(&CHG, T0 + 10 * S, 1), R0 + 10 * S), 0);
	CHECK_EQ_INT(tick(&f, R0 + 40 * S), 0);
	/* a late record on the old clock says nothing of the clock now: no restart of the 60 s */
	CHECK_EQ_INT(feed_late(&f, &CHG, fault(&CHG, t8 - 1 * S, "E1", false, 0, NULL), R0 + 50 * S),
		     0);
	CHECK_EQ_INT(feed(&f, &CHG, station(&CHG, T0 + 69 * S, false), R0 + 69 * S), 0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 2);

	/* 60 s behind: the clock was set back */
	CHECK_EQ_INT(feed(&f, &CHG, station(&CHG, T0 + 70 * S, false), R0 + 70 * S), 0);
	CHECK_EQ_INT(s->n, 3);
	CHECK_STEP(s, 0, t8 + 70 * S, T0 + 70 * S);
	/* the hold ran 70 s on the old clock: it began 70 s before the new one's now */
	CHECK_EV(s, 1, RULE_HOLD_MOVED, RULE_PORT_LONG_SESSION, 1, "", T0, ANY);
	/* cleared at its opening time, never before */
	CHECK_EV(s, 2, RULE_CLEAR, RULE_CHARGER_SMOKE, 0, "", ANY, t8);
	CHECK_EQ_INT(s->ev[2].alert_id, smoke_id);
	CHECK_EQ_INT(rules_count(f.r), 1);

	/* the session's 8 h are counted on the new clock */
	sink_clear(s);
	CHECK_EQ_INT(feed(&f, &CHG, charging(&CHG, T0 + 8 * H - 1, 1), R0 + 8 * H - 1), 0);
	CHECK_EQ_INT(tick(&f, R0 + 8 * H - 1), 0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(feed(&f, &CHG, charging(&CHG, T0 + 8 * H, 1), R0 + 8 * H), 0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_PORT_LONG_SESSION, 1, "", T0, T0 + 8 * H);
out:
	fx_close(&f);
}

/*
 * Old records a terminal kept while its link was down, sent in order after
 * newer ones: behind the clock, but for less than the clock step, and
 * followed by current records. Late records do not count either.
 */
static void test_kept_records_are_no_clock_step(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	int64_t now = T0 + 1 * H;
	feed(&f, &LIFT, trapped(&LIFT, now, 3, false), R0);
	feed(&f, &LIFT, trapped(&LIFT, now + 20 * S, 3, false), R0 + 20 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", now, now + 20 * S);

	sink_clear(s);
	feed(&f, &LIFT, parked(&LIFT, T0, 3), R0 + 30 * S);
	feed(&f, &LIFT, parked(&LIFT, T0 + 55 * S, 3), R0 + 85 * S);
	feed(&f, &LIFT, trapped(&LIFT, now + 88 * S, 3, false), R0 + 88 * S); /* current again */
	for (int i = 0; i < 12; i++) /* late records are no sign of the clock */
		feed_late(&f, &LIFT, fault(&LIFT, T0 + i * S, "E12", false, 0, NULL),
			  R0 + (90 + 6 * i) * S);
	feed(&f, &LIFT, parked(&LIFT, T0 + 60 * S, 3), R0 + 100 * S);
	feed(&f, &LIFT, parked(&LIFT, T0 + 65 * S, 3), R0 + 155 * S);
	CHECK_EQ_INT(tick(&f, R0 + 158 * S), 0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 1);

	/* behind for 60 s without a current record between: now it is a clock step */
	feed(&f, &LIFT, landed(&LIFT, T0 + 70 * S, 3), R0 + 160 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_STEP(s, 0, now + 160 * S, T0 + 70 * S);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_TRAPPED, 0, "", ANY, now + 20 * S);
	/* (the open door starts lift.door_open_long's hold) */
	CHECK_EV(s, 2, RULE_HOLD_START, RULE_LIFT_DOOR_OPEN_LONG, 0, "", T0 + 70 * S, ANY);
	CHECK_EQ_INT(rules_count(f.r), 1);
out:
	fx_close(&f);
}

/*
 * A condition that begins while a device's records are behind its clock
 * holds on that clock, as the device's other conditions do: the tick does
 * not take its hold as run out at once.
 */
static void test_condition_begun_behind_the_clock(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* the timings below count on a 60 s hold of charger.voltage (its default is 90 s) */
	rules_config_global(f.cfg, RULE_CHARGER_VOLTAGE)->hold_ms = 60 * S;
	int64_t t8 = T0 + 8 * H;
	feed(&f, &CHG, station(&CHG, t8, true), R0);
	CHECK_EQ_INT(s->n, 1);

	sink_clear(s);
	feed(&f, &CHG, station(&CHG, T0 + 5 * S, true), R0 + 5 * S); /* behind from here */
	feed(&f, &CHG, supply(&CHG, T0 + 10 * S, 150), R0 + 10 * S);  /* 32 % low: 60 s hold */
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_CHARGER_VOLTAGE, 0, "", t8 + 10 * S, ANY);
	CHECK_EQ_INT(tick(&f, R0 + 69 * S), 0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EQ_INT(tick(&f, R0 + 70 * S), 0);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_CHARGER_VOLTAGE, 0, "", t8 + 10 * S, t8 + 70 * S);

	/* the step comes with the next record; both alerts clear on it */
	sink_clear(s);
	feed(&f, &CHG, supply(&CHG, T0 + 75 * S, 221), R0 + 75 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_STEP(s, 0, t8 + 75 * S, T0 + 75 * S);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_SMOKE, 0, "", ANY, t8);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_CHARGER_VOLTAGE, 0, "", ANY, t8 + 70 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

/* The clock step is the configured one. */
static void test_clock_step_configured(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	rules_config_set_clock_step(f.cfg, 5 * S);
	feed(&f, &CHG, station(&CHG, T0 + 1 * H, true), R0);
	sink_clear(s);
	feed(&f, &CHG, station(&CHG, T0 + 1 * H - 5 * S, false), R0 + 1 * S); /* not 5 s behind */
	feed(&f, &CHG, station(&CHG, T0, false), R0 + 2 * S);
	feed(&f, &CHG, station(&CHG, T0 + 4 * S, false), R0 + 6 * S);
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &CHG, station(&CHG, T0 + 5 * S, false), R0 + 7 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_STEP(s, 0, T0 + 1 * H + 7 * S, T0 + 5 * S);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_SMOKE, 0, "", ANY, T0 + 1 * H);
out:
	fx_close(&f);
}

/*
 * The collector's clock stepped by `step` (forward > 0, back < 0) 5 s into
 * a trapped-passenger hold: the hold runs out 20 s after it began in real
 * time - not at the next tick (forward), not with the device's next record
 * (back). The device's time is carried forward from its record's arrival,
 * which the old clock stamped.
 */
static void hold_across_clock_step(int64_t step)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &LIFT, trapped(&LIFT, T0, 2, true), R0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_TRAPPED, 0, "", T0, ANY);
	sink_clear(s);
	if (step > 0)
		rules_clock_set_forward(f.r, step);
	else
		rules_clock_set_back(f.r, R0 + 5 * S + step, -step);
	/* 5 s later in real time, on the new clock: still holding */
	CHECK_EQ_INT(tick(&f, R0 + step + 5 * S), 0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(tick(&f, R0 + step + 20 * S - 1), 0);
	CHECK_EQ_INT(s->n, 0);
	/* its 20 s passed: it opens, dated in the device's time */
	CHECK_EQ_INT(tick(&f, R0 + step + 20 * S), 0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0, T0 + 20 * S);
out:
	fx_close(&f);
}

static void test_clock_set_forward_keeps_holds(void)
{
	hold_across_clock_step(3600 * S);
}

static void test_clock_set_back_keeps_holds(void)
{
	hold_across_clock_step(-3600 * S);
}

/*
 * A hold that began on a device's new clock is not moved when the step is
 * taken (again, after a restart: the stored last_seen is the old clock's).
 */
static void test_clock_step_keeps_holds_of_the_new_time(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/*
	 * The store: last_seen on the old clock, which was right, the hold on
	 * the new one, set 1 h back.
	 */
	int64_t r1 = R0 + 1 * H;
	CHECK_EQ_INT(rules_load_hold(f.r, &CHG, "port.long_session", 1, "", T0, T0 + 1 * H, r1), 0);
	feed(&f, &CHG, charging(&CHG, T0 + 10 * S, 1), r1 + 10 * S);
	feed(&f, &CHG, charging(&CHG, T0 + 70 * S, 1), r1 + 70 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_STEP(s, 0, T0 + 1 * H + 70 * S, T0 + 70 * S);
	sink_clear(s);
	feed(&f, &CHG, charging(&CHG, T0 + 8 * H - 1, 1), r1 + 8 * H - 1);
	CHECK_EQ_INT(tick(&f, r1 + 8 * H - 1), 0);
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &CHG, charging(&CHG, T0 + 8 * H, 1), r1 + 8 * H);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_PORT_LONG_SESSION, 1, "", T0, T0 + 8 * H);
out:
	fx_close(&f);
}

/*
 * Loaded at start, a last_seen further ahead of the collector's clock than
 * the clock step (a device clock set back, and the step taken, before the
 * restart) is taken as the collector's time: a hold begun on the new clock
 * does not run out at once on the tick, and the device's records judge its
 * conditions at once. A hold begun on a clock still ahead keeps that clock.
 */
static void test_load_takes_no_time_far_ahead(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* the timings below count on a 60 s hold of charger.voltage (its default is 90 s) */
	rules_config_global(f.cfg, RULE_CHARGER_VOLTAGE)->hold_ms = 60 * S;
	/* the smoke alert opened on the clock that ran 8 h ahead */
	CHECK_EQ_INT(rules_load_alert(f.r, &CHG, "charger.smoke", 0, "", 55, R0 + 8 * H - 30 * S,
				      R0 + 8 * H, R0), 0);
	CHECK_EQ_INT(rules_load_hold(f.r, &CHG, "charger.voltage", 0, "", R0 - 10 * S, R0 + 8 * H,
				     R0), 0);
	CHECK_EQ_INT(tick(&f, R0 + 50 * S - 1), 0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(tick(&f, R0 + 50 * S), 0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_CHARGER_VOLTAGE, 0, "", R0 - 10 * S, R0 + 50 * S);
	feed(&f, &CHG, supply(&CHG, R0 + 51 * S, 220), R0 + 51 * S);
	CHECK_EQ_INT(s->n, 3);
	/* its clear is never dated before its opening, as without the restart (clock_set_back) */
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_SMOKE, 0, "", ANY, R0 + 8 * H - 30 * S);
	CHECK_EQ_INT(s->ev[1].alert_id, 55);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_CHARGER_VOLTAGE, 0, "", ANY, R0 + 51 * S);

	/*
	 * A lift whose clock still runs 8 h ahead: its trapped hold keeps its
	 * 20 s there, on the tick from its last_seen and on its records.
	 */
	int64_t t8 = R0 + 8 * H;
	CHECK_EQ_INT(rules_load_hold(f.r, &LIFT, "lift.trapped", 0, "", t8 - 5 * S, t8, R0), 0);
	sink_clear(s);
	CHECK_EQ_INT(tick(&f, R0 + 15 * S - 1), 0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(tick(&f, R0 + 15 * S), 0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", t8 - 5 * S, t8 + 15 * S);
	CHECK_EQ_INT(rules_load_hold(f.r, &LIFT_B, "lift.trapped", 0, "", t8 - 5 * S, t8, R0), 0);
	sink_clear(s);
	feed(&f, &LIFT_B, trapped(&LIFT_B, t8 + 10 * S, 3, false), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &LIFT_B, trapped(&LIFT_B, t8 + 15 * S, 3, false), R0 + 2 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", t8 - 5 * S, t8 + 15 * S);

	/* a last_seen ahead by less than the clock step is kept as it was stored */
	CHECK_EQ_INT(rules_load_alert(f.r, &CHG_B, "charger.smoke", 0, "", 57, R0 + 50 * S, R0 + 50 * S, R0), 0);
	sink_clear(s);
	feed(&f, &CHG_B, station(&CHG_B, R0 + 30 * S, false), R0 + 30 * S);
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &CHG_B, station(&CHG_B, R0 + 50 * S, false), R0 + 50 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_CLEAR, RULE_CHARGER_SMOKE, 0, "", ANY, R0 + 50 * S);
out:
	fx_close(&f);
}

/*
 * charger.voltage with the station's 60 s heartbeat (DOMAIN: supply voltage
 * every 60 s and on alarm): one report out of the window followed by a
 * heartbeat within it opens nothing, on the records or on the tick; two
 * reports out in a row do. A 60 s hold opened and cleared an alert (two
 * mails) for the single report.
 */
static void test_voltage_needs_two_heartbeats(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &CHG, supply(&CHG, T0, 185), R0);
	tick(&f, R0 + 60 * S);
	feed(&f, &CHG, supply(&CHG, T0 + 60 * S, 221), R0 + 61 * S);
	tick(&f, R0 + 200 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_CHARGER_VOLTAGE, 0, "", T0, ANY);
	CHECK_EV(s, 1, RULE_HOLD_END, RULE_CHARGER_VOLTAGE, 0, "", ANY, ANY);

	sink_clear(s);
	int64_t t = T0 + 300 * S, r = R0 + 300 * S;
	feed(&f, &CHG, supply(&CHG, t, 185), r);
	feed(&f, &CHG, supply(&CHG, t + 60 * S, 186), r + 61 * S);
	/* the device's clock: its newest record (t + 60 s, arrived 1 s late) plus the wait since */
	tick(&f, r + 91 * S - 1);
	CHECK_EQ_INT(s->n, 1);
	tick(&f, r + 91 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_CHARGER_VOLTAGE, 0, "", t, t + 90 * S);
out:
	fx_close(&f);
}

static void test_station_rules(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* the timings below count on a 60 s hold of charger.voltage (its default is 90 s) */
	rules_config_global(f.cfg, RULE_CHARGER_VOLTAGE)->hold_ms = 60 * S;
	feed(&f, &CHG, station(&CHG, T0, true), R0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_CHARGER_SMOKE, 0, "", T0, T0);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_CRITICAL);
	CHECK_DETAIL(s, 0, "smoke detected");
	feed(&f, &CHG, station(&CHG, T0 + 1 * S, false), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_SMOKE, 0, "", ANY, T0 + 1 * S);

	/* leakage: opens at 30 mA, clears below 25 mA (hysteresis 5) */
	sink_clear(s);
	feed(&f, &CHG, leak(&CHG, T0 + 2 * S, 29.9), R0 + 2 * S);
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &CHG, leak(&CHG, T0 + 3 * S, 35), R0 + 3 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_CHARGER_LEAKAGE, 0, "", T0 + 3 * S, T0 + 3 * S);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_CRITICAL);
	CHECK_DETAIL(s, 0, "leak current 35 mA (limit 30 mA)");
	/* hovering at the limit: one alert, not one per crossing */
	for (int i = 0; i < 20; i++)
		feed(&f, &CHG, leak(&CHG, T0 + (4 + i) * S, i % 2 ? 31 : 29), R0 + (4 + i) * S);
	feed(&f, &CHG, leak(&CHG, T0 + 24 * S, 25), R0 + 24 * S); /* 25 is not below 25 */
	CHECK_EQ_INT(s->n, 1);
	feed(&f, &CHG, leak(&CHG, T0 + 25 * S, 24), R0 + 25 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_LEAKAGE, 0, "", ANY, T0 + 25 * S);
	feed(&f, &CHG, leak(&CHG, T0 + 26 * S, 30), R0 + 26 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_OPEN, RULE_CHARGER_LEAKAGE, 0, "", T0 + 26 * S, T0 + 26 * S);
	feed(&f, &CHG, leak(&CHG, T0 + 27 * S, 0), R0 + 27 * S);
	CHECK_EQ_INT(s->n, 4);

	/* voltage: outside 220 V +- 15 % for 60 s */
	sink_clear(s);
	int64_t t = T0 + 100 * S, r = R0 + 100 * S;
	feed(&f, &CHG, supply(&CHG, t, 190), r); /* -13.6 %: inside */
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &CHG, supply(&CHG, t + 1 * S, 180), r + 1 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_CHARGER_VOLTAGE, 0, "", t + 1 * S, ANY);
	feed(&f, &CHG, supply(&CHG, t + 62 * S, 180), r + 62 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_CHARGER_VOLTAGE, 0, "", t + 1 * S, t + 61 * S);
	CHECK_EQ_INT(s->ev[1].severity, ALERT_MINOR);
	CHECK_DETAIL(s, 1, "supply 180.0 V (220 V \u00b1 15 %)");
	/* back to -14 %, inside the window but not by the hysteresis (2 %): still open */
	feed(&f, &CHG, supply(&CHG, t + 65 * S, 189.2), r + 65 * S);
	feed(&f, &CHG, supply(&CHG, t + 66 * S, 186), r + 66 * S);
	feed(&f, &CHG, supply(&CHG, t + 67 * S, 190), r + 67 * S);
	CHECK_EQ_INT(s->n, 2);
	feed(&f, &CHG, supply(&CHG, t + 70 * S, 215), r + 70 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_CHARGER_VOLTAGE, 0, "", ANY, t + 70 * S);
	/* over-voltage, briefly: a hold that ends */
	feed(&f, &CHG, supply(&CHG, t + 80 * S, 260), r + 80 * S);
	feed(&f, &CHG, supply(&CHG, t + 90 * S, 230), r + 90 * S);
	CHECK_EQ_INT(s->n, 5);
	CHECK_EV(s, 3, RULE_HOLD_START, RULE_CHARGER_VOLTAGE, 0, "", t + 80 * S, ANY);
	CHECK_EV(s, 4, RULE_HOLD_END, RULE_CHARGER_VOLTAGE, 0, "", ANY, ANY);

	/* cabinet door */
	sink_clear(s);
	struct sp_record d = station(&CHG, t + 100 * S, false);
	d.u.station.door_open = true;
	d.has |= SP_HAS_DOOR_OPEN;
	feed(&f, &CHG, d, r + 100 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_CHARGER_DOOR_OPEN, 0, "", t + 100 * S, t + 100 * S);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_MINOR);
	CHECK_DETAIL(s, 0, "cabinet door open");
	feed(&f, &CHG, station(&CHG, t + 101 * S, false), r + 101 * S); /* door not reported */
	CHECK_EQ_INT(s->n, 1);
	d.ts = t + 102 * S;
	d.u.station.door_open = false;
	feed(&f, &CHG, d, r + 102 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_DOOR_OPEN, 0, "", ANY, t + 102 * S);
	/*
	 * a voltage spike (+18 %), then readings back in the window but inside
	 * the band (+13.6 %): the hold ends, nothing opens 60 s later (the band
	 * kept the hold running, so the spike alone opened an alert)
	 */
	sink_clear(s);
	feed(&f, &CHG, supply(&CHG, t + 110 * S, 260), r + 110 * S);
	feed(&f, &CHG, supply(&CHG, t + 111 * S, 250), r + 111 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_CHARGER_VOLTAGE, 0, "", t + 110 * S, ANY);
	CHECK_EV(s, 1, RULE_HOLD_END, RULE_CHARGER_VOLTAGE, 0, "", ANY, ANY);
	tick(&f, r + 200 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

/* The cabinet too overheats (DOMAIN C04): it opened nothing, only ports' temperatures did. */
static void test_cabinet_over_temp(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	struct sp_record r = station(&CHG, T0, false);
	r.u.station.ambient_c = 45;
	r.has |= SP_HAS_AMBIENT_C;
	feed(&f, &CHG, r, R0);
	CHECK_EQ_INT(s->n, 0);
	r.ts = T0 + 1 * S;
	r.u.station.ambient_c = 70;
	feed(&f, &CHG, r, R0 + 1 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_CHARGER_OVER_TEMP, 0, "", T0 + 1 * S, T0 + 1 * S);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_CRITICAL);
	CHECK_DETAIL(s, 0, "cabinet at 70.0 \u00b0C (limit 60 \u00b0C)");
	/* cooling through the band, a record without the field: still open */
	r.ts = T0 + 2 * S;
	r.u.station.ambient_c = 56;
	feed(&f, &CHG, r, R0 + 2 * S);
	feed(&f, &CHG, station(&CHG, T0 + 3 * S, false), R0 + 3 * S);
	CHECK_EQ_INT(s->n, 1);
	r.ts = T0 + 4 * S;
	r.u.station.ambient_c = 54.9;
	feed(&f, &CHG, r, R0 + 4 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_CHARGER_OVER_TEMP, 0, "", ANY, T0 + 4 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

static void test_port_over_temp_hysteresis(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &CHG, port_temp(&CHG, T0, 3, 59.9), R0);
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &CHG, port_temp(&CHG, T0 + 1 * S, 3, 61), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_PORT_OVER_TEMP, 3, "", T0 + 1 * S, T0 + 1 * S);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_CRITICAL);
	CHECK_DETAIL(s, 0, "port 3 at 61.0 \u00b0C (limit 60 \u00b0C)");
	/* another port heats up too: its own alert */
	feed(&f, &CHG, port_temp(&CHG, T0 + 1 * S, 4, 72.5), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_PORT_OVER_TEMP, 4, "", ANY, ANY);
	CHECK_DETAIL(s, 1, "port 4 at 72.5 \u00b0C");
	feed(&f, &CHG, port_temp(&CHG, T0 + 2 * S, 3, 57), R0 + 2 * S);      /* in the band */
	feed(&f, &CHG, port(&CHG, T0 + 3 * S, 3, SP_PORT_IDLE), R0 + 3 * S); /* no temp_c */
	feed(&f, &CHG, port_temp(&CHG, T0 + 4 * S, 3, 55), R0 + 4 * S); /* 55 is not below 55 */
	CHECK_EQ_INT(s->n, 2);
	feed(&f, &CHG, port_temp(&CHG, T0 + 5 * S, 3, 54), R0 + 5 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_PORT_OVER_TEMP, 3, "", ANY, T0 + 5 * S);
	CHECK_EQ_INT(s->ev[2].alert_id, s->ev[0].alert_id);
	CHECK_EQ_INT(rules_count(f.r), 1); /* port 4 */
out:
	fx_close(&f);
}

static struct sp_record port_power(const struct rule_device *d, int64_t ts, int32_t no, double w)
{
	struct sp_record r = port(d, ts, no, SP_PORT_FULL);
	r.u.port.w = w;
	r.has |= SP_HAS_W;
	return r;
}

static void test_port_rules(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* over-power: above the port's limit for 5 s */
	feed(&f, &CHG, port_power(&CHG, T0, 2, 1000), R0); /* at the limit: fine */
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &CHG, port_power(&CHG, T0 + 1 * S, 2, 1200), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_PORT_OVER_POWER, 2, "", T0 + 1 * S, ANY);
	tick(&f, R0 + 6 * S - 1);
	CHECK_EQ_INT(s->n, 1);
	tick(&f, R0 + 6 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_PORT_OVER_POWER, 2, "", T0 + 1 * S, T0 + 6 * S);
	CHECK_EQ_INT(s->ev[1].severity, ALERT_MAJOR);
	CHECK_DETAIL(s, 1, "port 2 drawing 1200 W");
	CHECK_DETAIL(s, 1, "limit 1000 W");
	/* hovering at the limit: no clear until 95 % of it */
	feed(&f, &CHG, port_power(&CHG, T0 + 7 * S, 2, 990), R0 + 7 * S);
	feed(&f, &CHG, port_power(&CHG, T0 + 8 * S, 2, 1010), R0 + 8 * S);
	feed(&f, &CHG, port_power(&CHG, T0 + 9 * S, 2, 951), R0 + 9 * S);
	CHECK_EQ_INT(s->n, 2);
	feed(&f, &CHG, port_power(&CHG, T0 + 10 * S, 2, 900), R0 + 10 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_PORT_OVER_POWER, 2, "", ANY, T0 + 10 * S);
	/*
	 * a spike, then a reading within the limit but inside the band (96 %):
	 * the hold ends, nothing opens 5 s later (the band kept the hold
	 * running, and a port within its limit was alerted)
	 */
	feed(&f, &CHG, port_power(&CHG, T0 + 11 * S, 2, 1010), R0 + 11 * S);
	feed(&f, &CHG, port_power(&CHG, T0 + 12 * S, 2, 960), R0 + 12 * S);
	CHECK_EQ_INT(s->n, 5);
	CHECK_EV(s, 3, RULE_HOLD_START, RULE_PORT_OVER_POWER, 2, "", T0 + 11 * S, ANY);
	CHECK_EV(s, 4, RULE_HOLD_END, RULE_PORT_OVER_POWER, 2, "", ANY, ANY);
	tick(&f, R0 + 20 * S);
	CHECK_EQ_INT(s->n, 5);
	/* limit unknown: not judged */
	struct rule_device nolimit = CHG;
	nolimit.id = 30;
	nolimit.port_limit_w = 0;
	feed(&f, &nolimit, port_power(&nolimit, T0, 2, 5000), R0);
	CHECK_EQ_INT(s->n, 5);
	/* an alert open when a new birth drops the limit clears with the port's next reading */
	feed(&f, &CHG, port_power(&CHG, T0 + 21 * S, 3, 1300), R0 + 21 * S);
	tick(&f, R0 + 27 * S);
	CHECK_EQ_INT(s->n, 7);
	CHECK_EV(s, 6, RULE_OPEN, RULE_PORT_OVER_POWER, 3, "", T0 + 21 * S, T0 + 26 * S);
	struct rule_device dropped = CHG;
	dropped.port_limit_w = 0;
	feed(&f, &dropped, port_power(&dropped, T0 + 28 * S, 3, 100), R0 + 28 * S);
	CHECK_EQ_INT(s->n, 8);
	CHECK_EV(s, 7, RULE_CLEAR, RULE_PORT_OVER_POWER, 3, "", ANY, T0 + 28 * S);

	/* port fault state */
	sink_clear(s);
	feed(&f, &CHG, port(&CHG, T0 + 10 * S, 5, SP_PORT_FAULT), R0 + 10 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_PORT_FAULT, 5, "", T0 + 10 * S, T0 + 10 * S);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_MAJOR);
	CHECK_DETAIL(s, 0, "port 5 in fault state");
	feed(&f, &CHG, port(&CHG, T0 + 11 * S, 5, SP_PORT_IDLE), R0 + 11 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_PORT_FAULT, 5, "", ANY, T0 + 11 * S);

	/* a session over 8 h; station records keep the device clock moving */
	sink_clear(s);
	int64_t t = T0 + 20 * S, r = R0 + 20 * S, h8 = 8 * 3600 * S;
	feed(&f, &CHG, port(&CHG, t, 6, SP_PORT_CHARGING), r);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_PORT_LONG_SESSION, 6, "", t, ANY);
	feed(&f, &CHG, station(&CHG, t + 4 * 3600 * S, false), r + 4 * 3600 * S);
	tick(&f, r + h8 - 1);
	CHECK_EQ_INT(s->n, 1);
	tick(&f, r + h8);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_PORT_LONG_SESSION, 6, "", t, t + h8);
	CHECK_EQ_INT(s->ev[1].severity, ALERT_MINOR);
	CHECK_DETAIL(s, 1, "port 6 charging for 8 h");
	feed(&f, &CHG, port(&CHG, t + h8 + 60 * S, 6, SP_PORT_FULL), r + h8 + 60 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_PORT_LONG_SESSION, 6, "", ANY, t + h8 + 60 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

/*
 * A device with a condition of one rule: another rule's condition on it
 * still begins and ends (a record looks up only the rules that have had a
 * condition on its device), and after the device has left the table with
 * its last condition, it comes back with a clean slate.
 */
static void test_second_rule_on_a_device(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &CHG, port_temp(&CHG, T0, 3, 65), R0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_PORT_OVER_TEMP, 3, "", T0, T0);
	/* port 3 also reports a fault: a second rule on the same device and port */
	struct sp_record rec = port(&CHG, T0 + 1 * S, 3, SP_PORT_FAULT);
	rec.u.port.temp_c = 66;
	rec.has |= SP_HAS_TEMP_C;
	feed(&f, &CHG, rec, R0 + 1 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_PORT_FAULT, 3, "", T0 + 1 * S, T0 + 1 * S);
	CHECK_EQ_INT(rules_count(f.r), 2);
	/* the fault ends while the heat stays: the second rule's clear is not skipped */
	feed(&f, &CHG, port_temp(&CHG, T0 + 2 * S, 3, 66), R0 + 2 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_PORT_FAULT, 3, "", ANY, T0 + 2 * S);
	CHECK_EQ_INT(s->ev[2].alert_id, s->ev[1].alert_id);
	/* and begins again: the rule's bit stays set, its look-up finds nothing, it starts anew */
	feed(&f, &CHG, port(&CHG, T0 + 3 * S, 4, SP_PORT_FAULT), R0 + 3 * S);
	CHECK_EQ_INT(s->n, 4);
	CHECK_EV(s, 3, RULE_OPEN, RULE_PORT_FAULT, 4, "", T0 + 3 * S, ANY);
	feed(&f, &CHG, port(&CHG, T0 + 4 * S, 4, SP_PORT_IDLE), R0 + 4 * S);
	feed(&f, &CHG, port_temp(&CHG, T0 + 4 * S, 3, 40), R0 + 4 * S);
	CHECK_EQ_INT(s->n, 6);
	CHECK_EV(s, 4, RULE_CLEAR, RULE_PORT_FAULT, 4, "", ANY, T0 + 4 * S);
	CHECK_EV(s, 5, RULE_CLEAR, RULE_PORT_OVER_TEMP, 3, "", ANY, T0 + 4 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);
	/* the device left with its last condition; another device may take its slot */
	sink_clear(s);
	feed(&f, &CHG_B, port(&CHG_B, T0 + 5 * S, 1, SP_PORT_FAULT), R0 + 5 * S);
	feed(&f, &CHG, port_temp(&CHG, T0 + 6 * S, 2, 61), R0 + 6 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_OPEN, RULE_PORT_FAULT, 1, "", ANY, ANY);
	CHECK_EQ_INT(s->ev[0].device_id, CHG_B.id);
	CHECK_EV(s, 1, RULE_OPEN, RULE_PORT_OVER_TEMP, 2, "", ANY, ANY);
	feed(&f, &CHG_B, port(&CHG_B, T0 + 7 * S, 1, SP_PORT_IDLE), R0 + 7 * S);
	feed(&f, &CHG, port_temp(&CHG, T0 + 7 * S, 2, 30), R0 + 7 * S);
	CHECK_EQ_INT(s->n, 4);
	CHECK_EV(s, 2, RULE_CLEAR, RULE_PORT_FAULT, 1, "", ANY, ANY);
	CHECK_EV(s, 3, RULE_CLEAR, RULE_PORT_OVER_TEMP, 2, "", ANY, ANY);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

static void test_absent_fields_leave_state(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* the timings below count on a 60 s hold of charger.voltage (its default is 90 s) */
	rules_config_global(f.cfg, RULE_CHARGER_VOLTAGE)->hold_ms = 60 * S;
	/* nothing starts from a record without the field */
	feed(&f, &CHG, station(&CHG, T0, false), R0);
	feed(&f, &CHG, port(&CHG, T0, 1, SP_PORT_IDLE), R0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 0);
	/* an open alert and a pending hold survive records without their fields */
	feed(&f, &CHG, leak(&CHG, T0 + 1 * S, 40), R0 + 1 * S);
	feed(&f, &CHG, supply(&CHG, T0 + 1 * S, 270), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EQ_INT(rules_count(f.r), 2);
	feed(&f, &CHG, station(&CHG, T0 + 2 * S, false), R0 + 2 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EQ_INT(rules_count(f.r), 2);
	/* the hold still runs: the tick opens it */
	tick(&f, R0 + 61 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 2, RULE_OPEN, RULE_CHARGER_VOLTAGE, 0, "", T0 + 1 * S, T0 + 61 * S);
	CHECK_DETAIL(s, 2, "supply 270.0 V");
out:
	fx_close(&f);
}

static void test_site_override(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	struct rule_setting *a = rules_config_site(f.cfg, "site-a", RULE_LIFT_TRAPPED);
	CHECK(a != NULL);
	if (a == NULL)
		goto out;
	a->hold_ms = 10 * S;
	a->severity = ALERT_MAJOR;
	struct rule_setting *b = rules_config_site(f.cfg, "site-b", RULE_PORT_OVER_TEMP);
	CHECK(b != NULL);
	if (b == NULL)
		goto out;
	b->threshold = 70;

	feed(&f, &LIFT, trapped(&LIFT, T0, 1, true), R0);
	feed(&f, &LIFT_B, trapped(&LIFT_B, T0, 1, true), R0);
	CHECK_EQ_INT(s->n, 2);
	sink_clear(s);
	tick(&f, R0 + 10 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0, T0 + 10 * S);
	CHECK_EQ_INT(s->ev[0].device_id, LIFT.id);
	CHECK_EQ_INT(s->ev[0].severity, ALERT_MAJOR);
	CHECK_DETAIL(s, 0, "trapped 10 s");
	tick(&f, R0 + 20 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 1, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0, T0 + 20 * S);
	CHECK_EQ_INT(s->ev[1].device_id, LIFT_B.id);
	CHECK_EQ_INT(s->ev[1].severity, ALERT_CRITICAL);

	sink_clear(s);
	feed(&f, &CHG_B, port_temp(&CHG_B, T0, 1, 65), R0);
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &CHG, port_temp(&CHG, T0, 1, 65), R0);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EQ_INT(s->ev[0].device_id, CHG.id);
	feed(&f, &CHG_B, port_temp(&CHG_B, T0 + 1 * S, 1, 70), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_DETAIL(s, 1, "limit 70 \u00b0C");
out:
	fx_close(&f);
}

static void test_disabled_rule(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	/* the timings below count on a 60 s hold of charger.voltage (its default is 90 s) */
	rules_config_global(f.cfg, RULE_CHARGER_VOLTAGE)->hold_ms = 60 * S;
	rules_config_global(f.cfg, RULE_CHARGER_SMOKE)->enabled = false;
	rules_config_global(f.cfg, RULE_CHARGER_VOLTAGE)->enabled = false;
	feed(&f, &CHG, station(&CHG, T0, true), R0);
	CHECK_EQ_INT(s->n, 0);
	CHECK_EQ_INT(rules_count(f.r), 0);
	/* an alert of it from before: cleared by the next record, smoke or not */
	CHECK_EQ_INT(rules_load_alert(f.r, &CHG, "charger.smoke", 0, "", 55, T0, T0, R0), 0);
	CHECK_EQ_INT(rules_load_hold(f.r, &CHG, "charger.voltage", 0, "", T0 - 100 * S, T0, R0), 0);
	CHECK_EQ_INT(rules_count(f.r), 2);
	tick(&f, R0 + 3600 * S); /* a disabled rule's hold never runs out */
	CHECK_EQ_INT(s->n, 0);
	/* a station record judges both as false, whatever it says */
	feed(&f, &CHG, supply(&CHG, T0 + 1 * S, 150), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_CLEAR, RULE_CHARGER_SMOKE, 0, "", ANY, T0 + 1 * S);
	CHECK_EQ_INT(s->ev[0].alert_id, 55);
	CHECK_EV(s, 1, RULE_HOLD_END, RULE_CHARGER_VOLTAGE, 0, "", ANY, ANY);
	CHECK_EQ_INT(rules_count(f.r), 0);
	sink_clear(s);
	CHECK_EQ_INT(rules_load_alert(f.r, &CHG, "charger.smoke", 0, "", 56, T0, T0, R0), 0);
	feed(&f, &CHG, station(&CHG, T0 + 2 * S, true), R0 + 2 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_CLEAR, RULE_CHARGER_SMOKE, 0, "", ANY, T0 + 2 * S);
	CHECK_EQ_INT(s->ev[0].alert_id, 56);
	CHECK_EQ_INT(rules_count(f.r), 0);
out:
	fx_close(&f);
}

static void test_callback_failure(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	s->fail_kind = RULE_HOLD_START;
	CHECK_EQ_INT(feed(&f, &LIFT, trapped(&LIFT, T0, 1, false), R0), FAIL_RC);

	/* two alerts due on one record: the first refusal returns at once */
	rules_reset(f.r);
	s->fail_kind = RULE_OPEN;
	s->calls = 0;
	struct sp_record r = moving(&LIFT, T0, 2);
	r.u.lift.power = SP_POWER_BATTERY;
	r.u.lift.safety_ok = false;
	r.has |= SP_HAS_POWER_SRC | SP_HAS_SAFETY_OK;
	CHECK_EQ_INT(feed(&f, &LIFT, r, R0), FAIL_RC);
	CHECK_EQ_INT(s->calls, 1);

	/* from the tick */
	rules_reset(f.r);
	s->fail_kind = -1;
	CHECK_EQ_INT(feed(&f, &LIFT, trapped(&LIFT, T0, 1, false), R0), 0);
	s->fail_kind = RULE_OPEN;
	CHECK_EQ_INT(tick(&f, R0 + 10 * S), 0);
	CHECK_EQ_INT(tick(&f, R0 + 20 * S), FAIL_RC);

	/* a hold end and a clear */
	rules_reset(f.r);
	s->fail_kind = -1;
	feed(&f, &LIFT, trapped(&LIFT, T0, 1, false), R0);
	feed(&f, &CHG, station(&CHG, T0, true), R0);
	s->fail_kind = RULE_HOLD_END;
	CHECK_EQ_INT(feed(&f, &LIFT, parked(&LIFT, T0 + 1 * S, 1), R0 + 1 * S), FAIL_RC);
	s->fail_kind = RULE_CLEAR;
	CHECK_EQ_INT(feed(&f, &CHG, station(&CHG, T0 + 1 * S, false), R0 + 1 * S), FAIL_RC);
out:
	fx_close(&f);
}

static void test_load_alert_and_hold(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	CHECK_EQ_INT(rules_load_alert(f.r, &LIFT, "lift.nope", 0, "", 1, T0, T0, R0), SP_EINVAL);
	CHECK_EQ_INT(rules_load_alert(f.r, &LIFT, "lift.fault.E7", 0, "E7", 1, T0, T0, R0), SP_EINVAL);
	CHECK_EQ_INT(rules_load_hold(f.r, &LIFT, "", 0, "", T0, T0, R0), SP_EINVAL);
	/* the offline sweep's alerts are its own: accepted, not tracked, never cleared by records */
	CHECK_EQ_INT(rules_load_alert(f.r, &LIFT, "lift.offline", 0, "", 5, T0, T0, R0), 0);
	CHECK(rule_swept(RULE_GATEWAY_OFFLINE) && !rule_swept(RULE_LIFT_TRAPPED));
	CHECK_EQ_INT(rules_count(f.r), 0);

	/* an open fault alert, cleared by the device */
	CHECK_EQ_INT(rules_load_alert(f.r, &LIFT, "lift.fault", 0, "E7", 77, T0, T0, R0), 0);
	CHECK_EQ_INT(rules_count(f.r), 1);
	feed(&f, &LIFT, fault(&LIFT, T0 + 1 * S, "E7", true, 0, NULL), R0 + 1 * S); /* still */
	CHECK_EQ_INT(s->n, 0);
	feed(&f, &LIFT, fault(&LIFT, T0 + 2 * S, "E7", false, 0, NULL), R0 + 2 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_CLEAR, RULE_LIFT_FAULT, 0, "E7", ANY, T0 + 2 * S);
	CHECK_EQ_INT(s->ev[0].alert_id, 77);
	CHECK_EQ_INT(rules_count(f.r), 0);

	/* a pending hold: the device clock restarts at device_ts when loaded */
	sink_clear(s);
	int64_t load_at = R0 + 1000 * S;
	CHECK_EQ_INT(rules_load_hold(f.r, &LIFT, "lift.trapped", 0, NULL, T0, T0 + 5 * S, load_at),
		     0);
	tick(&f, load_at + 15 * S - 1);
	CHECK_EQ_INT(s->n, 0);
	tick(&f, load_at + 15 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_TRAPPED, 0, "", T0, T0 + 20 * S);
	CHECK_DETAIL(s, 0, "lift.trapped held for 20 s");
	feed(&f, &LIFT, landed(&LIFT, T0 + 40 * S, 1), load_at + 20 * S);
	CHECK_EQ_INT(s->n, 3);
	CHECK_EV(s, 1, RULE_CLEAR, RULE_LIFT_TRAPPED, 0, "", ANY, T0 + 40 * S);
	CHECK_EQ_INT(s->ev[1].alert_id, s->ev[0].alert_id);
	CHECK_EV(s, 2, RULE_HOLD_START, RULE_LIFT_DOOR_OPEN_LONG, 0, "", T0 + 40 * S, ANY);
	CHECK_EQ_INT(rules_count(f.r), 1);
	feed(&f, &LIFT, parked(&LIFT, T0 + 45 * S, 1), load_at + 25 * S);
	CHECK_EQ_INT(rules_count(f.r), 0);

	/* a hold whose since is newer than the device's last_seen: the clock starts at since */
	sink_clear(s);
	CHECK_EQ_INT(rules_load_hold(f.r, &LIFT_B, "lift.stopped_outside_zone", 0, "", T0 + 10 * S,
				     T0, load_at),
		     0);
	tick(&f, load_at + 45 * S - 1);
	CHECK_EQ_INT(s->n, 0);
	tick(&f, load_at + 45 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_OPEN, RULE_LIFT_STOPPED_OUTSIDE_ZONE, 0, "", T0 + 10 * S, T0 + 55 * S);
	CHECK_EQ_INT(s->ev[0].device_id, LIFT_B.id);
	CHECK_EQ_STR(s->ev[0].site, "site-b");

	/* loaded port alerts keep their port */
	sink_clear(s);
	CHECK_EQ_INT(rules_load_alert(f.r, &CHG, "port.over_temp", 3, "", 90, T0, T0, R0), 0);
	feed(&f, &CHG, port_temp(&CHG, T0 + 1 * S, 3, 40), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 1);
	CHECK_EV(s, 0, RULE_CLEAR, RULE_PORT_OVER_TEMP, 3, "", ANY, T0 + 1 * S);
	CHECK_EQ_INT(s->ev[0].alert_id, 90);
out:
	fx_close(&f);
}

static void test_reset(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	feed(&f, &LIFT, trapped(&LIFT, T0, 1, false), R0);
	feed(&f, &CHG, station(&CHG, T0, true), R0);
	CHECK_EQ_INT(rules_count(f.r), 2);
	rules_reset(f.r);
	CHECK_EQ_INT(rules_count(f.r), 0);
	sink_clear(s);
	tick(&f, R0 + 3600 * S);
	CHECK_EQ_INT(s->n, 0);
	/* forgotten: the same conditions start afresh */
	feed(&f, &LIFT, trapped(&LIFT, T0 + 1 * S, 1, false), R0 + 1 * S);
	feed(&f, &CHG, station(&CHG, T0 + 1 * S, true), R0 + 1 * S);
	CHECK_EQ_INT(s->n, 2);
	CHECK_EV(s, 0, RULE_HOLD_START, RULE_LIFT_TRAPPED, 0, "", T0 + 1 * S, ANY);
	CHECK_EV(s, 1, RULE_OPEN, RULE_CHARGER_SMOKE, 0, "", T0 + 1 * S, T0 + 1 * S);
out:
	fx_close(&f);
}

#define STRESS_DEVICES 100000

static void test_stress_many_devices(void)
{
	struct fx f;
	if (!fx_open(&f))
		goto out;
	struct sink *s = f.s;
	s->stress = true;
	/* two rounds: the second reuses freed slots */
	for (int round = 0; round < 2; round++) {
		int64_t t = T0 + round * 100 * S;
		int failed = 0;
		for (int i = 0; i < STRESS_DEVICES; i++) {
			char name[SP_ID_MAX + 1];
			snprintf(name, sizeof(name), "chg-%d", i);
			struct rule_device d = {.id = i + 1,
						.site = i % 2 ? "site-a" : "site-b",
						.dev = name,
						.kind = SP_DEV_CHARGER};
			failed += feed(&f, &d, station(&d, t, true), R0) != 0;
		}
		CHECK_EQ_INT(failed, 0);
		CHECK_EQ_INT(s->opens, (round + 1) * (long)STRESS_DEVICES);
		CHECK_EQ_INT(rules_count(f.r), STRESS_DEVICES);
		CHECK_EQ_INT(tick(&f, R0 + 10 * S), 0);
		for (int i = 0; i < STRESS_DEVICES; i++) {
			char name[SP_ID_MAX + 1];
			snprintf(name, sizeof(name), "chg-%d", i);
			struct rule_device d = {.id = i + 1,
						.site = i % 2 ? "site-a" : "site-b",
						.dev = name,
						.kind = SP_DEV_CHARGER};
			failed += feed(&f, &d, station(&d, t + 1 * S, false), R0 + 1 * S) != 0;
		}
		CHECK_EQ_INT(failed, 0);
		CHECK_EQ_INT(s->clears, (round + 1) * (long)STRESS_DEVICES);
		CHECK_EQ_INT(s->bad_ids, 0);
		CHECK_EQ_INT(rules_count(f.r), 0);
	}
out:
	fx_close(&f);
}

int main(void)
{
	RUN(test_catalogue);
	RUN(test_config_overrides);
	RUN(test_trapped_opens_on_a_later_record);
	RUN(test_trapped_hold_ends_and_tick_opens);
	RUN(test_tick_follows_the_newest_record);
	RUN(test_backlog_does_not_open_early);
	RUN(test_record_past_the_hold_that_ends_it);
	RUN(test_clear_never_before_open);
	RUN(test_door_open_moving);
	RUN(test_overspeed_hysteresis);
	RUN(test_overtravel);
	RUN(test_stopped_outside_zone);
	RUN(test_power_loss_and_safety_circuit);
	RUN(test_door_open_long);
	RUN(test_door_bouncing);
	RUN(test_door_reopen_at_the_threshold);
	RUN(test_door_reopen_car_moves_between);
	RUN(test_door_reopen_floor_change);
	RUN(test_door_reopen_counter_back);
	RUN(test_door_reopen_maintenance_modes);
	RUN(test_door_reopen_configured);
	RUN(test_door_reopen_without_counter);
	RUN(test_door_reopen_idle);
	RUN(test_door_reopen_count_lost);
	RUN(test_inspection_suppresses);
	RUN(test_out_of_service_trapped);
	RUN(test_faults_per_code);
	RUN(test_fault_of_a_device_first_unknown);
	RUN(test_late_records);
	RUN(test_late_raise_after_its_clear);
	RUN(test_older_record_ignored);
	RUN(test_clock_set_back);
	RUN(test_kept_records_are_no_clock_step);
	RUN(test_condition_begun_behind_the_clock);
	RUN(test_clock_step_configured);
	RUN(test_clock_step_keeps_holds_of_the_new_time);
	RUN(test_clock_set_forward_keeps_holds);
	RUN(test_clock_set_back_keeps_holds);
	RUN(test_load_takes_no_time_far_ahead);
	RUN(test_voltage_needs_two_heartbeats);
	RUN(test_station_rules);
	RUN(test_cabinet_over_temp);
	RUN(test_port_over_temp_hysteresis);
	RUN(test_port_rules);
	RUN(test_second_rule_on_a_device);
	RUN(test_absent_fields_leave_state);
	RUN(test_site_override);
	RUN(test_disabled_rule);
	RUN(test_callback_failure);
	RUN(test_load_alert_and_hold);
	RUN(test_trapped_clears_only_when_the_door_opens);
	RUN(test_reloaded_alert_clears_not_before_its_opening);
	RUN(test_reset);
	RUN(test_stress_many_devices);
	HARNESS_EXIT();
}
