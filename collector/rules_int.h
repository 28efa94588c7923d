/*
 * rules_int.h - what the rules engine needs from the rule catalogue and
 * the settings. Internal to the three files that together implement rules.h:
 *
 *   rules_catalogue.c  what the rules are: one row per enum rule_id with the
 *                      record kind it reads, its defaults, its condition and
 *                      the wording of its alert's detail; rule_name,
 *                      rule_parse, alert_severity_name/parse, rule_defaults.
 *   rules_config.c     the settings: rules_config_*.
 *   rules.c            how conditions are tracked: the state tables, holds,
 *                      the device clock, rules_eval/tick/load/reset.
 *
 * They are split because they change for different reasons: a new or
 * changed rule touches the catalogue (and rules.h's enum rule_id), not the
 * engine; a change to how holds, clocks or state work touches the engine,
 * and can be read without the catalogue's conditions and texts in the way;
 * the settings change with the configuration file. The catalogue is
 * read-only (const tables, pure functions); no file has mutable global
 * state.
 */
#ifndef SP_COLLECTOR_RULES_INT_H
#define SP_COLLECTOR_RULES_INT_H

#include "restcount.h"
#include "rules.h"

#include "sitepulse/record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for the longest detail: a fault's code and its own text plus our words. */
#define DETAIL_MAX 512
_Static_assert(DETAIL_MAX > SP_FAULT_CODE_MAX + SP_TEXT_MAX + 96, "fault detail may be cut");

/*
 * A condition judged on one record: TRUE, FALSE, UNKNOWN (a field it needs
 * is absent: leaves the state alone) or KEEP_OPEN: no longer true, but not
 * far enough back to end an alert (a threshold value inside its hysteresis
 * band; a car still outside the door zone at a terminal floor). KEEP_OPEN
 * leaves an open alert open, so a value hovering at the limit cannot flap
 * it, and ends a hold still pending like FALSE: the condition did not last
 * the hold, so a spike followed by in-band readings opens nothing.
 */
enum verdict { V_FALSE, V_TRUE, V_UNKNOWN, V_KEEP_OPEN };

/* The values an alert's detail is written from (kept while a hold runs). */
struct snap {
	double a, b; /* per rule: speed and rated speed, temperature, ... */
	int32_t floor;
	uint8_t door, dir, mode;
	bool door_zone, occupied;
	bool valid; /* false for a condition reloaded from the store */
};

/*
 * What the engine knows of a device beyond the record in hand, from its
 * own state (rules.c): for a lift record, the door cycles counted since its
 * car stopped at its floor (restcount.h; lift.door_reopen). Zero for other
 * records.
 */
struct rule_facts {
	struct restcount_seen door;
};

/*
 * The record kind rule r judges (SP_REC_FAULT for the fault rules,
 * SP_REC_KIND_COUNT for the swept ones, which judge none). r < RULE_COUNT.
 */
enum sp_rec_kind rule_reads(enum rule_id r);

/*
 * Judges rule r's condition on rec, a record of kind rule_reads(r) of device
 * d, with the engine's facts f, under setting s. Fills *v with the values
 * the detail is written from and sets v->valid, except when a value the
 * rule needs is missing (the verdict is then UNKNOWN and *v as the caller
 * left it). All pointers are borrowed.
 */
enum verdict rule_judge(enum rule_id r, const struct rule_device *d, const struct sp_record *rec,
			const struct rule_facts *f, const struct rule_setting *s, struct snap *v);

/*
 * Writes the detail of an alert of `rule` into out (len bytes, always
 * terminated; DETAIL_MAX is enough): the values in v, the limits in s,
 * the condition's port and code, text the device's own fault text (or NULL),
 * held_ms how long the condition held before the alert opened. A v not
 * valid (a condition reloaded from the store) gets a generic text.
 */
void rule_describe(enum rule_id rule, const struct snap *v, const struct rule_setting *s,
		   int32_t port, const char *code, const char *text, int64_t held_ms, char *out,
		   size_t len);

#endif
