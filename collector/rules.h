/*
 * rules.h - alert rules: which conditions in the telemetry open an alert,
 * how long they must hold first, and what clears it (docs/alerts.md).
 *
 * Pure logic with no I/O: the writer feeds it every stored record and, once
 * a second, the time; it answers with events (a hold starts or ends, an
 * alert opens or clears) that the writer persists in the same transaction
 * as the records that caused them. So after a crash the store holds
 * exactly the alerts of the records it holds, and rules_load_* rebuilds
 * this state from it.
 *
 * Time: holds are measured in device time. A device's clock is its latest
 * record's ts, carried forward by the collector's clock since that record
 * arrived: a backlog replayed after an outage (old records arriving fast)
 * therefore does not let a hold run out before the records that end it have
 * arrived, and a passenger trapped with nothing changing (no new record)
 * is still alerted on time.
 *
 * State is sparse: an entry exists only for a condition that holds now
 * (pending or alerted), so memory follows the alerts, not the fleet.
 *
 * Threading: a struct rules belongs to one thread (the writer).
 */
#ifndef SP_COLLECTOR_RULES_H
#define SP_COLLECTOR_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sitepulse/record.h"

enum alert_severity {
	ALERT_CRITICAL = 0,
	ALERT_MAJOR,
	ALERT_MINOR,
	ALERT_WARNING,
	ALERT_SEVERITY_COUNT
};

/* The catalogue (docs/alerts.md). Order is the documentation's. */
enum rule_id {
	RULE_LIFT_TRAPPED = 0,        /* occupied, stopped, door closed (in or outside the door zone) */
	RULE_LIFT_DOOR_OPEN_MOVING,   /* door not closed while moving or outside the door zone */
	RULE_LIFT_OVERSPEED,          /* speed > threshold x rated speed */
	RULE_LIFT_OVERTRAVEL,         /* outside the door zone beyond a terminal floor, moving outwards */
	RULE_LIFT_STOPPED_OUTSIDE_ZONE, /* empty, stopped outside the door zone */
	RULE_LIFT_POWER_LOSS,         /* running on battery */
	RULE_LIFT_SAFETY_CIRCUIT,     /* safety_ok false */
	RULE_LIFT_DOOR_OPEN_LONG,     /* door not closed while stopped */
	RULE_LIFT_DOOR_REOPEN,        /* door_cycles rising by threshold while stopped at one floor */
	RULE_LIFT_MODE,               /* mode other than normal */
	RULE_LIFT_FAULT,              /* a fault record of a lift, per code */
	RULE_CHARGER_SMOKE,           /* station smoke */
	RULE_CHARGER_LEAKAGE,         /* leak_ma >= threshold */
	RULE_CHARGER_VOLTAGE,         /* supply_v off 220 V by more than threshold % */
	RULE_CHARGER_DOOR_OPEN,       /* station door_open */
	RULE_CHARGER_OVER_TEMP,       /* station ambient_c >= threshold (the cabinet) */
	RULE_CHARGER_FAULT,           /* a fault record of a charger, per code */
	RULE_PORT_OVER_TEMP,          /* temp_c >= threshold, clears below threshold - hysteresis */
	RULE_PORT_OVER_POWER,         /* w > threshold x the charger's port_limit_w */
	RULE_PORT_FAULT,              /* port state fault */
	RULE_PORT_LONG_SESSION,       /* port charging longer than the hold (8 h) */
	/* swept (offline.h), not judged on records: rules_eval and rules_load_* ignore them */
	RULE_LIFT_OFFLINE,            /* a lift's terminal silent while its gateway is up (N01) */
	RULE_CHARGER_OFFLINE,         /* a charger silent while its gateway is up (N02) */
	RULE_GATEWAY_OFFLINE,         /* a gateway (agent) offline or silent (N01/N02, whole site) */
	RULE_COUNT
};

/* How one rule behaves; defaults from the catalogue, overridden by configuration. */
struct rule_setting {
	bool enabled;
	int64_t hold_ms;             /* the condition must hold this long before the alert opens */
	enum alert_severity severity;
	double threshold;            /* meaning per rule (docs/alerts.md); NAN where unused */
	double hysteresis;           /* for threshold rules: clears at threshold - hysteresis */
};

/* "lift.trapped", ...; and back (-1 if unknown). */
const char *rule_name(enum rule_id r);
int rule_parse(const char *name);
const char *alert_severity_name(enum alert_severity s);
/* The severities' names in enum order, NULL-terminated (a configuration enum's choices). */
extern const char *const alert_severity_names[ALERT_SEVERITY_COUNT + 1];
int alert_severity_parse(const char *name);

/* The catalogue's defaults for rule r. */
void rule_defaults(enum rule_id r, struct rule_setting *out);

/*
 * The rule as alerts show it: the catalogue name, and for a device fault
 * its code ("lift.fault.E12"). code may be NULL or "". Always terminated.
 */
#define ALERT_RULE_SHOWN_MAX 160
void alert_rule_shown(char *out, size_t len, const char *rule, const char *code);

/* "20 s", "2 min", "8 h": a duration as an alert's detail says it. */
void rule_say_duration(int64_t ms, char *out, size_t len);

/* True for the offline rules, which the offline sweep (offline.h) decides, not records. */
bool rule_swept(enum rule_id r);

/*
 * Settings: the catalogue's defaults, then [rule.R] for every site, then
 * [site.S.rule.R] for one site. Built once at start, read-only after.
 */
struct rules_config;
struct rules_config *rules_config_create(void);
void rules_config_destroy(struct rules_config *c);
/* The setting every site uses for r (after rules_config_create: the default). */
struct rule_setting *rules_config_global(struct rules_config *c, enum rule_id r);
/* A site's own setting for r, created as a copy of the global one. NULL on no memory. */
struct rule_setting *rules_config_site(struct rules_config *c, const char *site, enum rule_id r);
/* What applies to r at site. */
const struct rule_setting *rules_config_get(const struct rules_config *c, const char *site,
					    enum rule_id r);

/*
 * A device's clock set back: its records, not late, keep arriving more than
 * ms behind the newest it sent for at least ms of the collector's time
 * (docs/alerts.md). Its conditions then move to the new time. ms >= 1.
 */
#define RULES_CLOCK_STEP_S_DEFAULT 60
void rules_config_set_clock_step(struct rules_config *c, int64_t ms);
/*
 * That step (or the default), in ms: also how far off a gateway's clock may
 * be before the writer says so (writer.c).
 */
int64_t rules_config_clock_step(const struct rules_config *c);

/* What the rules need to know about the device a record belongs to. */
struct rule_device {
	int64_t id;                  /* the store's device id: the key of all state */
	const char *site;
	const char *dev;
	enum sp_dev_kind kind;
	double rated_speed;          /* lift, m/s; 0 = unknown (overspeed then not judged) */
	double port_limit_w;         /* charger, W; 0 = unknown (over-power then not judged) */
	/* lift: the birth's floors (bottom, top); without them overtravel is not judged */
	bool has_floors;
	int16_t floor_bottom, floor_top;
};

enum rule_event_kind {
	RULE_HOLD_START,   /* a condition became true: persist (key, since) */
	RULE_HOLD_END,     /* it ended before its hold ran out: forget (key) */
	/*
	 * A pending hold's since moved (its device's clock set back,
	 * RULE_CLOCK_STEP): persist (key, since) over what was persisted.
	 */
	RULE_HOLD_MOVED,
	RULE_OPEN,         /* the hold ran out: open an alert, return its id; forget the hold */
	RULE_CLEAR,        /* the condition ended: clear alert_id at ts */
	/*
	 * A fault record's clear was judged (whatever it ended): persist
	 * (device_id, port, code, ts) so that rules_note_fault_clear can tell a
	 * restarted engine, and a late raise older than it stays over.
	 */
	RULE_FAULT_CLEARED,
	/* A late fault raise was ignored: its clear, at or after ts, came first (log, count). */
	RULE_RAISE_STALE,
	/*
	 * The device's clock was set back (rules_config_set_clock_step): since is
	 * where its old clock stood, ts the record that took it to the new one
	 * (log, count). Its pending holds follow as RULE_HOLD_MOVED events;
	 * its open alerts now judge its records again.
	 */
	RULE_CLOCK_STEP,
};

/*
 * One event. Strings are valid during the callback only. The key of a
 * condition is (device_id, rule, port, code): port 0 = none, code "" except
 * for the fault rules (the device's own fault code).
 */
struct rule_event {
	enum rule_event_kind kind;
	enum rule_id rule;
	int64_t device_id;
	const char *site, *dev;
	int32_t port;
	const char *code;
	enum alert_severity severity;  /* RULE_OPEN */
	int64_t since;               /* RULE_HOLD_START, RULE_HOLD_MOVED, RULE_OPEN: when it
				      * began (device time);
				      * RULE_CLOCK_STEP: the old clock */
	int64_t ts;                  /* RULE_OPEN: opened_at; RULE_CLEAR: cleared_at; RULE_FAULT_CLEARED,
				      * RULE_RAISE_STALE, RULE_CLOCK_STEP: the record's ts (device
				      * time) */
	int64_t alert_id;            /* RULE_CLEAR */
	const char *detail;          /* RULE_OPEN: human text with the values that triggered it */
};

/*
 * Receives an event. For RULE_OPEN it stores the alert's id in *alert_id.
 * A non-zero return aborts the call that produced the event and is returned
 * by it; the state is then undefined until rules_reset + rules_load_*.
 */
typedef int (*rule_event_fn)(void *ctx, const struct rule_event *ev, int64_t *alert_id);

struct rules;

/* cfg is borrowed and must outlive the engine. NULL on no memory. */
struct rules *rules_create(const struct rules_config *cfg);
void rules_destroy(struct rules *r);

/*
 * Evaluates one stored record of device d, received at received_ms
 * (collector clock). late: the record came in a message behind newer ones
 * of its agent (seqtrack_behind: resent after a broker or collector restart
 * while newer messages went through) and is older than a record of the
 * same device already evaluated (the writer tells, writer.c
 * late_for_rules); newer records of the device already moved the rules,
 * so a late record only counts if it is a fault record (an explicit raise
 * or clear), and a late raise not even then if the same fault's clear at
 * or after it has been judged already (RULE_RAISE_STALE). Within a device,
 * a record older than the newest one a tracked condition has seen is
 * ignored by it, until records that are not late have kept arriving that
 * far behind for the clock step's time (RULE_CLOCK_STEP).
 * A fault record is judged under its device kind's fault rule (unknown
 * kind: lift without a port, charger with one), or under the other fault
 * rule when only that one tracks the same port and code (its kind was
 * guessed wrong before it became known).
 * Returns 0 or the callback's error.
 */
int rules_eval(struct rules *r, const struct rule_device *d, const struct sp_record *rec,
	       bool late, int64_t received_ms, rule_event_fn fn, void *ctx);

/*
 * Opens the alerts whose hold has run out by now_ms (collector clock). 0 or
 * the callback's error.
 */
int rules_tick(struct rules *r, int64_t now_ms, rule_event_fn fn, void *ctx);

/*
 * The collector's clock was set forward by fwd_ms: each device's clock is
 * carried forward from its newest record's arrival (rules.c, dev_now), which
 * the old clock stamped, so without this every device's time would jump by
 * the step and every pending hold run out at the next tick (a door open for
 * a moment, a lift stopped for a moment: false alerts). Its arrival times
 * move forward with the step instead.
 */
void rules_clock_set_forward(struct rules *r, int64_t fwd_ms);

/*
 * The collector's clock was set back by back_ms, now reading now_ms: the
 * arrival times the old clock stamped after now_ms move back as much. A
 * device's clock is carried forward only from its newest record's arrival
 * on, so without this it stood still for the length of the step: a pending
 * hold (a trapped passenger) ran out only with the device's next record.
 */
void rules_clock_set_back(struct rules *r, int64_t now_ms, int64_t back_ms);

/*
 * Forgets all state (after a rolled-back transaction), before reloading it.
 * Kept: the fault clears remembered (rules_note_fault_clear) and
 * lift.door_reopen's door counts, which the store does not hold. A count
 * is taken from the counter's absolute values, so the batch's records
 * judged again count once.
 */
void rules_reset(struct rules *r);

/*
 * Rebuilds state from the store at start-up (or after rules_reset): an
 * open alert, or a pending hold, of a condition keyed as in rule_event.
 * device_ts is the newest reading time the store knows for the device
 * (its last_seen) and loaded_ms the collector's clock now: the device's
 * clock restarts from there (or from a pending hold's since, if later). A
 * device_ts further ahead of loaded_ms than the clock step is taken as
 * loaded_ms (a clock set back: docs/alerts.md), unless it is a pending
 * hold's and its since is that far ahead too. 0, SP_ENOMEM, or
 * SP_EINVAL for a rule name not in the catalogue (the caller logs and
 * skips it). A swept rule's alert is
 * skipped (0): the offline sweep reads its state from the store each time.
 */
int rules_load_alert(struct rules *r, const struct rule_device *d, const char *rule,
		     int32_t port, const char *code, int64_t alert_id, int64_t opened_at,
		     int64_t device_ts, int64_t loaded_ms);
int rules_load_hold(struct rules *r, const struct rule_device *d, const char *rule,
		    int32_t port, const char *code, int64_t since, int64_t device_ts,
		    int64_t loaded_ms);

/* Conditions tracked now (pending + alerted). */
size_t rules_count(const struct rules *r);

/*
 * lift.door_reopen counts that could not begin since creation, one per
 * record refused: as many as RULES_DOOR_COUNTS_MAX ran already (or no
 * memory), so that lift's door went uncounted (restcount.h).
 */
uint64_t rules_door_counts_refused(const struct rules *r);

/*
 * Faults whose newest clear the rules remember for late raises (faultmemo.h,
 * ~100 bytes each); the store keeps as many (store_w_fault_clear).
 */
#define RULES_FAULT_CLEARS_MAX 4096

/*
 * Lifts whose door cycles lift.door_reopen counts at once: those standing
 * with a busy door now (restcount.h, ~56 bytes each). A lift whose door
 * starts cycling while as many are counted is not counted until one of
 * their counts ends (docs/alerts.md).
 */
#define RULES_DOOR_COUNTS_MAX 65536
/*
 * A door closed this long with its counter still ends lift.door_reopen's
 * count, and clears its alert: the burst of cycles is over.
 */
#define RULES_DOOR_IDLE_MS (60 * 1000)

/* Remembers a fault clear seen before (RULE_FAULT_CLEARED, loaded from the store at start). */
void rules_note_fault_clear(struct rules *r, int64_t device_id, int32_t port, const char *code,
			    int64_t ts);


#endif
