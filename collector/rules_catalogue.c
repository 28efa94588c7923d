/*
 * rules_catalogue.c - the rule catalogue (docs/alerts.md): what each rule
 * of enum rule_id reads, its defaults, its condition and the detail text of
 * its alert; rule_name, rule_parse, alert_severity_name/parse and
 * rule_defaults of rules.h, and rules_int.h for the engine in rules.c. See
 * rules_int.h for why the catalogue and the engine are two files.
 *
 * The catalogue is one table, a row per enum rule_id: the record kind the
 * rule reads, its defaults, and its condition as a function that judges one
 * record TRUE, FALSE or UNKNOWN (a field it needs is absent, or a threshold
 * value sits inside the hysteresis band). UNKNOWN leaves the state alone.
 * Everything here is const or pure: no state, no I/O.
 */
#include "rules_int.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define STOPPED_SPEED    0.05  /* m/s: below it a car reporting "stop" has stopped */
#define NOMINAL_SUPPLY_V 220.0 /* charger supply voltage the window is centred on */

/* ------------------------------------------------------------ catalogue */

typedef enum verdict (*judge_fn)(const struct rule_device *d, const struct sp_record *rec,
				 const struct rule_facts *f, const struct rule_setting *s,
				 struct snap *v);

struct rule_def {
	const char *name;
	enum sp_rec_kind reads;      /* the record kind it judges; SP_REC_KIND_COUNT: swept */
	judge_fn judge;
	enum alert_severity severity; /* the defaults */
	int64_t hold_ms;
	double threshold, hysteresis;
};

static enum verdict is(bool cond)
{
	return cond ? V_TRUE : V_FALSE;
}

/*
 * A threshold with hysteresis: TRUE past the threshold, FALSE once back
 * beyond threshold - hysteresis, KEEP_OPEN in between. `strict`
 * rules start above the threshold and end at or below the lower bound; the
 * others start at it and end below the lower bound.
 */
static enum verdict over(double value, double threshold, double hysteresis, bool strict)
{
	double low = threshold - hysteresis;
	if (strict)
		return value > threshold ? V_TRUE : value <= low ? V_FALSE : V_KEEP_OPEN;
	return value >= threshold ? V_TRUE : value < low ? V_FALSE : V_KEEP_OPEN;
}

static void lift_snap(const struct sp_lift *l, struct snap *v)
{
	v->floor = l->floor;
	v->door = (uint8_t)l->door;
	v->dir = (uint8_t)l->dir;
	v->mode = (uint8_t)l->mode;
	v->door_zone = l->door_zone;
	v->occupied = l->occupied;
	v->valid = true;
}

static enum verdict lift_trapped(const struct rule_device *d, const struct sp_record *rec,
				 const struct rule_facts *f, const struct rule_setting *s,
				 struct snap *v)
{
	(void)d, (void)f, (void)s;
	const struct sp_lift *l = &rec->u.lift;
	lift_snap(l, v);
	if (l->door != SP_DOOR_CLOSED)
		return V_FALSE;
	/* a car still creeping is levelling, not stuck */
	bool still = !(rec->has & SP_HAS_SPEED) || l->speed < STOPPED_SPEED;
	if (l->occupied && l->dir == SP_DIR_STOP && still)
		return V_TRUE;
	/*
	 * Behind a shut door nobody gets out (L01/L02 clear when the door opens):
	 * an occupancy sensor dropping out, or the car moved to a landing by a
	 * rescue run, must not tell the crew "cleared" while the passenger is
	 * still inside. It ends a pending hold, though.
	 */
	return V_KEEP_OPEN;
}

static enum verdict lift_door_open_moving(const struct rule_device *d, const struct sp_record *rec,
					  const struct rule_facts *f, const struct rule_setting *s,
					  struct snap *v)
{
	(void)d, (void)f, (void)s;
	const struct sp_lift *l = &rec->u.lift;
	lift_snap(l, v);
	return is(l->door != SP_DOOR_CLOSED && (l->dir != SP_DIR_STOP || !l->door_zone));
}

static enum verdict lift_overspeed(const struct rule_device *d, const struct sp_record *rec,
				   const struct rule_facts *f, const struct rule_setting *s,
				   struct snap *v)
{
	(void)f;
	if (!(rec->has & SP_HAS_SPEED))
		return V_UNKNOWN;
	/* without the birth's rated speed: never, so an alert opened before a birth dropped it clears */
	if (!(d->rated_speed > 0))
		return V_FALSE;
	lift_snap(&rec->u.lift, v);
	v->a = rec->u.lift.speed;
	v->b = d->rated_speed;
	/* threshold and hysteresis are multiples of the rated speed */
	return over(v->a / v->b, s->threshold, s->hysteresis, true);
}

/*
 * L03/L04: the car outside the door zone at or past a terminal floor and
 * moving further out (up at the top, down at the bottom), for the whole
 * hold. Back in the door zone, or inside the range, ends it; stopped or
 * moving back while still out there keeps an open alert open (S6a clears
 * on the door zone only) but ends a pending hold: a car that stopped short
 * of the top landing is lift.stopped_outside_zone or lift.trapped, not an
 * overtravel. Without the birth's floors: never (FALSE, so that an alert
 * opened before a birth that dropped them can still clear).
 */
static enum verdict lift_overtravel(const struct rule_device *d, const struct sp_record *rec,
				    const struct rule_facts *f, const struct rule_setting *s,
				    struct snap *v)
{
	(void)f, (void)s;
	const struct sp_lift *l = &rec->u.lift;
	if (!d->has_floors)
		return V_FALSE;
	lift_snap(l, v);
	bool at_top = l->floor >= d->floor_top, at_bottom = l->floor <= d->floor_bottom;
	if (l->door_zone || (!at_top && !at_bottom))
		return V_FALSE;
	if ((at_top && l->dir == SP_DIR_UP) || (at_bottom && l->dir == SP_DIR_DOWN))
		return V_TRUE;
	return V_KEEP_OPEN;
}

static enum verdict lift_stopped_outside_zone(const struct rule_device *d,
					      const struct sp_record *rec,
					      const struct rule_facts *f,
					      const struct rule_setting *s, struct snap *v)
{
	(void)d, (void)f, (void)s;
	const struct sp_lift *l = &rec->u.lift;
	lift_snap(l, v);
	return is(!l->occupied && l->dir == SP_DIR_STOP && !l->door_zone);
}

static enum verdict lift_power_loss(const struct rule_device *d, const struct sp_record *rec,
				    const struct rule_facts *f, const struct rule_setting *s,
				    struct snap *v)
{
	(void)d, (void)f, (void)s;
	if (!(rec->has & SP_HAS_POWER_SRC))
		return V_UNKNOWN;
	lift_snap(&rec->u.lift, v);
	return is(rec->u.lift.power == SP_POWER_BATTERY);
}

static enum verdict lift_safety_circuit(const struct rule_device *d, const struct sp_record *rec,
					const struct rule_facts *f, const struct rule_setting *s,
					struct snap *v)
{
	(void)d, (void)f, (void)s;
	if (!(rec->has & SP_HAS_SAFETY_OK))
		return V_UNKNOWN;
	lift_snap(&rec->u.lift, v);
	return is(!rec->u.lift.safety_ok);
}

static enum verdict lift_door_open_long(const struct rule_device *d, const struct sp_record *rec,
					const struct rule_facts *f, const struct rule_setting *s,
					struct snap *v)
{
	(void)d, (void)f, (void)s;
	const struct sp_lift *l = &rec->u.lift;
	lift_snap(l, v);
	/*
	 * Any door state but closed: a door that an obstruction keeps bouncing
	 * (open, closing, opening, open, ...) or that jams half way has not
	 * closed either (L11, a door command not completed).
	 */
	return is(l->door != SP_DOOR_CLOSED && l->dir == SP_DIR_STOP);
}

/*
 * L14: threshold door cycles counted while the car stands at one floor
 * (rules.c counts them: restcount.h). The car running, standing at another
 * floor than the one counted, or its door shut and still for
 * RULES_DOOR_IDLE_MS ends it. Below the threshold (the count just began, or
 * began again after the counter went back) is KEEP_OPEN: nothing opens,
 * and an open alert stays open, for a reset counter does not undo the
 * cycles seen. A door shut with no count running is FALSE; UNKNOWN when
 * nothing can be counted (no counter in the record, the table full).
 */
static enum verdict lift_door_reopen(const struct rule_device *d, const struct sp_record *rec,
				     const struct rule_facts *f, const struct rule_setting *s,
				     struct snap *v)
{
	(void)d;
	const struct sp_lift *l = &rec->u.lift;
	if (l->dir != SP_DIR_STOP || f->door.ended)
		return V_FALSE;
	if (!f->door.counting) {
		/*
		 * A door shut with no count running: nothing obstructs it. Also
		 * where a count was lost (a restart, a rolled-back batch) under an
		 * alert still open, which would otherwise stay open while the car
		 * stands parked.
		 */
		bool shut = l->door == SP_DOOR_CLOSED && (rec->has & SP_HAS_DOOR_CYCLES);
		return shut ? V_FALSE : V_UNKNOWN;
	}
	lift_snap(l, v);
	v->a = (double)f->door.counted;
	/* how long the count took, for the detail (0 for records out of order) */
	v->b = rec->ts > f->door.since ? (double)(rec->ts - f->door.since) / 1000.0 : 0.0;
	/* one cycle is a stop's boarding: below 2 every stop would alert */
	double limit = s->threshold >= 2 ? s->threshold : 2;
	return v->a >= limit ? V_TRUE : V_KEEP_OPEN;
}

static enum verdict lift_mode(const struct rule_device *d, const struct sp_record *rec,
			      const struct rule_facts *f, const struct rule_setting *s,
			      struct snap *v)
{
	(void)d, (void)f, (void)s;
	lift_snap(&rec->u.lift, v);
	return is(rec->u.lift.mode != SP_MODE_NORMAL);
}

/* Both fault rules: the device's own raise or clear. */
static enum verdict device_fault(const struct rule_device *d, const struct sp_record *rec,
				 const struct rule_facts *f, const struct rule_setting *s,
				 struct snap *v)
{
	(void)d, (void)f, (void)s;
	v->valid = true;
	return is(rec->u.fault.active);
}

static enum verdict charger_smoke(const struct rule_device *d, const struct sp_record *rec,
				  const struct rule_facts *f, const struct rule_setting *s,
				  struct snap *v)
{
	(void)d, (void)f, (void)s;
	v->valid = true;
	return is(rec->u.station.smoke);
}

/*
 * The rules that start at a reading >= their threshold (leakage, the
 * cabinet's and a port's temperature): UNKNOWN when the record lacks the
 * field, else the reading kept for the detail and judged by over().
 */
static enum verdict reading_at_least(bool present, double reading, const struct rule_setting *s,
				     struct snap *v)
{
	if (!present)
		return V_UNKNOWN;
	v->a = reading;
	v->valid = true;
	return over(v->a, s->threshold, s->hysteresis, false);
}

static enum verdict charger_leakage(const struct rule_device *d, const struct sp_record *rec,
				    const struct rule_facts *f, const struct rule_setting *s,
				    struct snap *v)
{
	(void)d, (void)f;
	return reading_at_least(rec->has & SP_HAS_LEAK_MA, rec->u.station.leak_ma, s, v);
}

static enum verdict charger_voltage(const struct rule_device *d, const struct sp_record *rec,
				    const struct rule_facts *f, const struct rule_setting *s,
				    struct snap *v)
{
	(void)d, (void)f;
	if (!(rec->has & SP_HAS_SUPPLY_V))
		return V_UNKNOWN;
	v->a = rec->u.station.supply_v;
	v->valid = true;
	/* threshold and hysteresis are per cent of the nominal voltage */
	double off = fabs(v->a - NOMINAL_SUPPLY_V) * 100.0 / NOMINAL_SUPPLY_V;
	return over(off, s->threshold, s->hysteresis, true);
}

static enum verdict charger_door_open(const struct rule_device *d, const struct sp_record *rec,
				      const struct rule_facts *f, const struct rule_setting *s,
				      struct snap *v)
{
	(void)d, (void)f, (void)s;
	if (!(rec->has & SP_HAS_DOOR_OPEN))
		return V_UNKNOWN;
	v->valid = true;
	return is(rec->u.station.door_open);
}

/* The cabinet's (station's) temperature: C04 names the cabinet as well as the port. */
static enum verdict charger_over_temp(const struct rule_device *d, const struct sp_record *rec,
				      const struct rule_facts *f, const struct rule_setting *s,
				      struct snap *v)
{
	(void)d, (void)f;
	return reading_at_least(rec->has & SP_HAS_AMBIENT_C, rec->u.station.ambient_c, s, v);
}

static enum verdict port_over_temp(const struct rule_device *d, const struct sp_record *rec,
				   const struct rule_facts *f, const struct rule_setting *s,
				   struct snap *v)
{
	(void)d, (void)f;
	return reading_at_least(rec->has & SP_HAS_TEMP_C, rec->u.port.temp_c, s, v);
}

static enum verdict port_over_power(const struct rule_device *d, const struct sp_record *rec,
				    const struct rule_facts *f, const struct rule_setting *s,
				    struct snap *v)
{
	(void)f;
	if (!(rec->has & SP_HAS_W))
		return V_UNKNOWN;
	/* without the birth's port limit: never, so an alert opened before a birth dropped it clears */
	if (!(d->port_limit_w > 0))
		return V_FALSE;
	v->a = rec->u.port.w;
	v->b = d->port_limit_w;
	v->valid = true;
	/* threshold and hysteresis are multiples of the port's limit */
	return over(v->a / v->b, s->threshold, s->hysteresis, true);
}

static enum verdict port_fault(const struct rule_device *d, const struct sp_record *rec,
			       const struct rule_facts *f, const struct rule_setting *s,
			       struct snap *v)
{
	(void)d, (void)f, (void)s;
	v->valid = true;
	return is(rec->u.port.state == SP_PORT_FAULT);
}

static enum verdict port_long_session(const struct rule_device *d, const struct sp_record *rec,
				      const struct rule_facts *f, const struct rule_setting *s,
				      struct snap *v)
{
	(void)d, (void)f, (void)s;
	v->valid = true;
	return is(rec->u.port.state == SP_PORT_CHARGING);
}

#define S_ 1000LL
#define NO_THRESHOLD NAN, NAN
/* One row per rule, in enum rule_id's order; sources are DOMAIN.md §4's ids (docs/alerts.md). */
static const struct rule_def catalogue[RULE_COUNT] = {
	/* L01/L02: S6a's default 20 s */
	[RULE_LIFT_TRAPPED] = {"lift.trapped", SP_REC_LIFT, lift_trapped,
			       ALERT_CRITICAL, 20 * S_, NO_THRESHOLD},
	/* L06/L07: edge-triggered */
	[RULE_LIFT_DOOR_OPEN_MOVING] = {"lift.door_open_moving", SP_REC_LIFT, lift_door_open_moving,
					ALERT_CRITICAL, 0, NO_THRESHOLD},
	/* L05: S6a's 1.2 x rated; clears back at rated (1.2 - 0.2) */
	[RULE_LIFT_OVERSPEED] = {"lift.overspeed", SP_REC_LIFT, lift_overspeed,
				 ALERT_CRITICAL, 0, 1.2, 0.2},
	/*
	 * L03/L04: S6a's timer Ta (20-45 s): a car arriving at a terminal floor
	 * is outside the door zone, moving outwards, for a few seconds
	 */
	[RULE_LIFT_OVERTRAVEL] = {"lift.overtravel", SP_REC_LIFT, lift_overtravel,
				  ALERT_CRITICAL, 20 * S_, NO_THRESHOLD},
	/* L08: S6a's default 45 s */
	[RULE_LIFT_STOPPED_OUTSIDE_ZONE] = {"lift.stopped_outside_zone", SP_REC_LIFT,
					    lift_stopped_outside_zone,
					    ALERT_MAJOR, 45 * S_, NO_THRESHOLD},
	/* L09: on change */
	[RULE_LIFT_POWER_LOSS] = {"lift.power_loss", SP_REC_LIFT, lift_power_loss,
				  ALERT_MAJOR, 0, NO_THRESHOLD},
	/* L10: on change */
	[RULE_LIFT_SAFETY_CIRCUIT] = {"lift.safety_circuit", SP_REC_LIFT, lift_safety_circuit,
				      ALERT_MAJOR, 0, NO_THRESHOLD},
	/* L11: S6d's landing door open > 120 s */
	[RULE_LIFT_DOOR_OPEN_LONG] = {"lift.door_open_long", SP_REC_LIFT, lift_door_open_long,
				      ALERT_MINOR, 120 * S_, NO_THRESHOLD},
	/* L14: S6a's counter, 5 cycles by default; one alert, at once */
	[RULE_LIFT_DOOR_REOPEN] = {"lift.door_reopen", SP_REC_LIFT, lift_door_reopen,
				   ALERT_MINOR, 0, 5.0, 0.0},
	/* L17: on change */
	[RULE_LIFT_MODE] = {"lift.mode", SP_REC_LIFT, lift_mode,
			    ALERT_WARNING, 0, NO_THRESHOLD},
	/* L18 and whatever else the lift reports as a fault code */
	[RULE_LIFT_FAULT] = {"lift.fault", SP_REC_FAULT, device_fault,
			     ALERT_MAJOR, 0, NO_THRESHOLD},
	/* C05 */
	[RULE_CHARGER_SMOKE] = {"charger.smoke", SP_REC_STATION, charger_smoke,
				ALERT_CRITICAL, 0, NO_THRESHOLD},
	/*
	 * C06: S9's 30 mA; clears below 25 mA. The threshold rules' hysteresis
	 * bands are ours [I]: without one a reading that hovers at the limit
	 * (a damp cabinet at 29-31 mA) opened and cleared an alert on every
	 * record, critical mails included.
	 */
	[RULE_CHARGER_LEAKAGE] = {"charger.leakage", SP_REC_STATION, charger_leakage,
				  ALERT_CRITICAL, 0, 30.0, 5.0},
	/*
	 * C07: a 220 V +- 15 % window [I]; clears within +- 13 %. "Notify if
	 * persistent": the station reports its voltage every 60 s and on alarm
	 * (DOMAIN), so the hold outlasts one heartbeat: a single report out of
	 * the window followed by one within it opens nothing (a 60 s hold opened
	 * and cleared an alert, two mails, for it); two in a row open.
	 */
	[RULE_CHARGER_VOLTAGE] = {"charger.voltage", SP_REC_STATION, charger_voltage,
				  ALERT_MINOR, 90 * S_, 15.0, 2.0},
	/* C14 */
	[RULE_CHARGER_DOOR_OPEN] = {"charger.door_open", SP_REC_STATION, charger_door_open,
				    ALERT_MINOR, 0, NO_THRESHOLD},
	/*
	 * C04 for the cabinet: Shenzhen's cabinets cut power at 60 C (S10), S9's
	 * cabinets run up to 50 C; clears below 55 C
	 */
	[RULE_CHARGER_OVER_TEMP] = {"charger.over_temp", SP_REC_STATION, charger_over_temp,
				    ALERT_CRITICAL, 0, 60.0, 5.0},
	/* C03, C08, C12, C13, C15 as the charger reports them */
	[RULE_CHARGER_FAULT] = {"charger.fault", SP_REC_FAULT, device_fault,
				ALERT_MAJOR, 0, NO_THRESHOLD},
	/* C04: Shenzhen's cabinet cut-off at 60 C; clears below 55 C */
	[RULE_PORT_OVER_TEMP] = {"port.over_temp", SP_REC_PORT, port_over_temp,
				 ALERT_CRITICAL, 0, 60.0, 5.0},
	/* C01: above the port's limit for 5 s; clears at 95 % of it */
	[RULE_PORT_OVER_POWER] = {"port.over_power", SP_REC_PORT, port_over_power,
				  ALERT_MAJOR, 5 * S_, 1.0, 0.05},
	/* the port's own fault state */
	[RULE_PORT_FAULT] = {"port.fault", SP_REC_PORT, port_fault,
			     ALERT_MAJOR, 0, NO_THRESHOLD},
	/* C09: S10's guidance, a charge should not exceed 8 h */
	[RULE_PORT_LONG_SESSION] = {"port.long_session", SP_REC_PORT, port_long_session,
				    ALERT_MINOR, 8 * 3600 * S_, NO_THRESHOLD},
	/*
	 * N01/N02 (offline.c): silent for [store] device_offline_s, then hold_s
	 * more. A gateway's default hold of 60 s rides out an agent's restart.
	 */
	[RULE_LIFT_OFFLINE] = {"lift.offline", SP_REC_KIND_COUNT, NULL, ALERT_MAJOR, 0, NO_THRESHOLD},
	[RULE_CHARGER_OFFLINE] = {"charger.offline", SP_REC_KIND_COUNT, NULL, ALERT_MAJOR, 0,
				  NO_THRESHOLD},
	[RULE_GATEWAY_OFFLINE] = {"gateway.offline", SP_REC_KIND_COUNT, NULL, ALERT_MAJOR, 60 * S_,
				  NO_THRESHOLD},
};

const char *const alert_severity_names[ALERT_SEVERITY_COUNT + 1] = {"critical", "major", "minor",
								   "warning", NULL};

const char *rule_name(enum rule_id r)
{
	return (unsigned)r < RULE_COUNT ? catalogue[r].name : "?";
}

int rule_parse(const char *name)
{
	for (int i = 0; i < RULE_COUNT; i++)
		if (strcmp(catalogue[i].name, name) == 0)
			return i;
	return -1;
}

const char *alert_severity_name(enum alert_severity s)
{
	return (unsigned)s < ALERT_SEVERITY_COUNT ? alert_severity_names[s] : "?";
}

int alert_severity_parse(const char *name)
{
	for (int i = 0; i < ALERT_SEVERITY_COUNT; i++)
		if (strcmp(alert_severity_names[i], name) == 0)
			return i;
	return -1;
}

void rule_defaults(enum rule_id r, struct rule_setting *out)
{
	assert((unsigned)r < RULE_COUNT);
	const struct rule_def *def = &catalogue[r];
	*out = (struct rule_setting){.enabled = true,
				     .hold_ms = def->hold_ms,
				     .severity = def->severity,
				     .threshold = def->threshold,
				     .hysteresis = def->hysteresis};
}

void alert_rule_shown(char *out, size_t len, const char *rule, const char *code)
{
	bool has_code = code != NULL && code[0] != '\0';
	snprintf(out, len, "%s%s%s", rule, has_code ? "." : "", has_code ? code : "");
}

bool rule_swept(enum rule_id r)
{
	assert((unsigned)r < RULE_COUNT);
	return catalogue[r].reads == SP_REC_KIND_COUNT;
}

/* The engine's view of the table (rules_int.h). */
enum sp_rec_kind rule_reads(enum rule_id r)
{
	assert((unsigned)r < RULE_COUNT);
	return catalogue[r].reads;
}

enum verdict rule_judge(enum rule_id r, const struct rule_device *d, const struct sp_record *rec,
			const struct rule_facts *f, const struct rule_setting *s, struct snap *v)
{
	assert((unsigned)r < RULE_COUNT && catalogue[r].judge != NULL);
	return catalogue[r].judge(d, rec, f, s, v);
}

/* -------------------------------------------------------------- details */

void rule_say_duration(int64_t ms, char *out, size_t len)
{
	long long s = (long long)(ms / 1000);
	if (s < 120)
		snprintf(out, len, "%lld s", s);
	else if (s < 7200)
		snprintf(out, len, "%lld min", s / 60);
	else if (s % 3600 == 0)
		snprintf(out, len, "%lld h", s / 3600);
	else
		snprintf(out, len, "%.1f h", (double)s / 3600.0);
}

/* The alert's detail: what was seen, with the values and the limits. */
void rule_describe(enum rule_id rule, const struct snap *v, const struct rule_setting *s,
		   int32_t port, const char *code, const char *text, int64_t held_ms, char *out,
		   size_t len)
{
	char held[32];
	rule_say_duration(held_ms, held, sizeof(held));
	if (!v->valid) {
		/* reloaded at start-up: the values that started it are not kept in the store */
		snprintf(out, len, "%s held for %s (since before a collector restart)",
			 catalogue[rule].name, held);
		return;
	}
	const char *zone = v->door_zone ? "in the door zone" : "outside the door zone";
	switch (rule) {
	case RULE_LIFT_TRAPPED:
		if (v->door_zone)
			snprintf(out, len,
				 "passenger trapped %s: door closed, car stopped at floor %d in "
				 "the door zone",
				 held, (int)v->floor);
		else
			snprintf(out, len,
				 "passenger trapped %s: door closed, car stopped between floors "
				 "near floor %d",
				 held, (int)v->floor);
		break;
	case RULE_LIFT_DOOR_OPEN_MOVING:
		snprintf(out, len, "door %s while the car is %s %s near floor %d",
			 sp_door_name(v->door), v->dir == SP_DIR_STOP ? "stopped" : "moving",
			 v->dir == SP_DIR_STOP ? zone : sp_dir_name(v->dir), (int)v->floor);
		break;
	case RULE_LIFT_OVERSPEED:
		snprintf(out, len, "speed %.2f m/s, %.2f x rated %.2f m/s (limit %g x)", v->a,
			 v->a / v->b, v->b, s->threshold);
		break;
	case RULE_LIFT_OVERTRAVEL:
		snprintf(out, len, "car %s at floor %d outside the door zone for %s (%s floor)",
			 v->dir == SP_DIR_STOP ? "stopped" : sp_dir_name(v->dir), (int)v->floor, held,
			 v->dir == SP_DIR_DOWN ? "bottom" : "top");
		break;
	case RULE_LIFT_STOPPED_OUTSIDE_ZONE:
		snprintf(out, len, "car stopped empty outside the door zone near floor %d for %s",
			 (int)v->floor, held);
		break;
	case RULE_LIFT_POWER_LOSS:
		snprintf(out, len, "on battery power at floor %d%s", (int)v->floor,
			 v->occupied ? ", passenger in the car" : "");
		break;
	case RULE_LIFT_SAFETY_CIRCUIT:
		snprintf(out, len, "safety circuit open at floor %d", (int)v->floor);
		break;
	case RULE_LIFT_DOOR_OPEN_LONG:
		snprintf(out, len, "door not closed for %s (now %s), car stopped at floor %d %s",
			 held, sp_door_name(v->door), (int)v->floor, zone);
		break;
	case RULE_LIFT_DOOR_REOPEN: {
		char took[32];
		rule_say_duration((int64_t)(v->b * 1000.0), took, sizeof(took));
		snprintf(out, len,
			 "door opened and closed %.0f times in %s while the car stood at floor %d "
			 "(limit %g): possible door obstruction",
			 v->a, took, (int)v->floor, s->threshold >= 2 ? s->threshold : 2.0);
		break;
	}
	case RULE_LIFT_MODE: snprintf(out, len, "mode %s", sp_mode_name(v->mode)); break;
	case RULE_LIFT_FAULT:
	case RULE_CHARGER_FAULT: {
		char where[24] = "";
		if (port > 0)
			snprintf(where, sizeof(where), " on port %d", (int)port);
		snprintf(out, len, "fault %s raised%s%s%s", code, where, text ? ": " : "",
			 text ? text : "");
		break;
	}
	case RULE_CHARGER_SMOKE: snprintf(out, len, "smoke detected"); break;
	case RULE_CHARGER_LEAKAGE:
		snprintf(out, len, "leak current %g mA (limit %g mA)", v->a, s->threshold);
		break;
	case RULE_CHARGER_VOLTAGE:
		snprintf(out, len, "supply %.1f V (%g V \u00b1 %g %%) for %s", v->a,
			 NOMINAL_SUPPLY_V, s->threshold, held);
		break;
	case RULE_CHARGER_DOOR_OPEN: snprintf(out, len, "cabinet door open"); break;
	case RULE_CHARGER_OVER_TEMP:
		snprintf(out, len, "cabinet at %.1f \u00b0C (limit %g \u00b0C)", v->a, s->threshold);
		break;
	case RULE_PORT_OVER_TEMP:
		snprintf(out, len, "port %d at %.1f \u00b0C (limit %g \u00b0C)", (int)port, v->a,
			 s->threshold);
		break;
	case RULE_PORT_OVER_POWER:
		snprintf(out, len, "port %d drawing %.0f W for %s (limit %.0f W)", (int)port, v->a,
			 held, s->threshold * v->b);
		break;
	case RULE_PORT_FAULT: snprintf(out, len, "port %d in fault state", (int)port); break;
	case RULE_PORT_LONG_SESSION:
		snprintf(out, len, "port %d charging for %s", (int)port, held);
		break;
	case RULE_LIFT_OFFLINE:
	case RULE_CHARGER_OFFLINE:
	case RULE_GATEWAY_OFFLINE: /* offline.c writes their details; never judged here */
	case RULE_COUNT:
		assert(0);
		out[0] = '\0';
		break;
	}
}
