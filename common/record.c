/* record.c - wire names of the telemetry model's enumerations (record.h). */
#include "sitepulse/record.h"

#include <string.h>

static const char *const rec_kind_names[SP_REC_KIND_COUNT] = {"lift", "station", "port",
							      "session", "fault"};
static const char *const dev_kind_names[SP_DEV_KIND_COUNT] = {"unknown", "lift", "charger"};
static const char *const dir_names[SP_DIR_COUNT] = {"up", "down", "stop"};
static const char *const door_names[SP_DOOR_COUNT] = {"open", "closed", "opening", "closing"};
static const char *const mode_names[SP_MODE_COUNT] = {"normal", "inspection", "out_of_service",
						      "fire", "emergency_power"};
static const char *const power_names[SP_POWER_COUNT] = {"mains", "battery"};
static const char *const port_state_names[SP_PORT_STATE_COUNT] = {
	"idle", "plugged", "charging", "full", "fault", "disabled"};
static const char *const stop_reason_names[SP_STOP_REASON_COUNT] = {
	"full",    "unplugged", "user",    "limit",      "overcurrent", "short", "over_temp",
	"voltage", "leakage",   "smoke",   "power_loss", "remote",      "fault"};

const struct sp_vocab sp_vocab_rec_kind = {rec_kind_names, SP_REC_KIND_COUNT};
const struct sp_vocab sp_vocab_dev_kind = {dev_kind_names, SP_DEV_KIND_COUNT};
const struct sp_vocab sp_vocab_dir = {dir_names, SP_DIR_COUNT};
const struct sp_vocab sp_vocab_door = {door_names, SP_DOOR_COUNT};
const struct sp_vocab sp_vocab_mode = {mode_names, SP_MODE_COUNT};
const struct sp_vocab sp_vocab_power = {power_names, SP_POWER_COUNT};
const struct sp_vocab sp_vocab_port_state = {port_state_names, SP_PORT_STATE_COUNT};
const struct sp_vocab sp_vocab_stop_reason = {stop_reason_names, SP_STOP_REASON_COUNT};

int sp_vocab_parse(const struct sp_vocab *v, const char *s)
{
	for (int i = 0; i < v->count; i++)
		if (strcmp(v->names[i], s) == 0)
			return i;
	return -1;
}

const char *sp_vocab_name(const struct sp_vocab *v, int x)
{
	return x >= 0 && x < v->count ? v->names[x] : "?";
}

#define NAME_PAIR(fn, type)                                                                  \
	const char *sp_##fn##_name(type v) { return sp_vocab_name(&sp_vocab_##fn, (int)v); } \
	int sp_##fn##_parse(const char *s) { return sp_vocab_parse(&sp_vocab_##fn, s); }

NAME_PAIR(rec_kind, enum sp_rec_kind)
NAME_PAIR(dev_kind, enum sp_dev_kind)
NAME_PAIR(dir, enum sp_dir)
NAME_PAIR(door, enum sp_door)
NAME_PAIR(mode, enum sp_mode)
NAME_PAIR(power, enum sp_power)
NAME_PAIR(port_state, enum sp_port_state)
NAME_PAIR(stop_reason, enum sp_stop_reason)

enum sp_dev_kind sp_rec_dev_kind(enum sp_rec_kind k)
{
	switch (k) {
	case SP_REC_LIFT: return SP_DEV_LIFT;
	case SP_REC_STATION:
	case SP_REC_PORT:
	case SP_REC_SESSION: return SP_DEV_CHARGER;
	default: return SP_DEV_UNKNOWN;
	}
}
