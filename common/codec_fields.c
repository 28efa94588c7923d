/*
 * codec_fields.c - the field tables of every record kind (codec_fields.h) and
 * the names of the rejection reasons.
 */
#include "codec_fields.h"

#include "sitepulse/codec.h"

static const char *const reject_names[SP_REJ_REASON_COUNT] = {
	"none",          "too_large",        "bad_json",       "not_object",  "bad_version",
	"missing_field", "bad_type",         "out_of_range",   "bad_enum",    "bad_id",
	"bad_text",      "embedded_nul",     "bad_ts",         "duplicate_field", "unknown_kind",
	"too_many_records", "no_records",    "bad_topic",      "kind_mismatch",  "foreign_device",
	"too_many_devices"};

const char *sp_reject_name(enum sp_reject r)
{
	return (unsigned)r < SP_REJ_REASON_COUNT ? reject_names[r] : "unknown";
}

/* ---------------------------------------------------------------- field tables */

#define R(m) offsetof(struct sp_record, u.m)
#define I64 9007199254740991.0

static const struct field lift_fields[] = {
	{"floor", F_INT32, R(lift.floor), 0, SP_FLOOR_MIN, SP_FLOOR_MAX, NULL, 0},
	{"dir", F_ENUM, R(lift.dir), 0, 0, 0, &sp_vocab_dir, 0},
	{"door", F_ENUM, R(lift.door), 0, 0, 0, &sp_vocab_door, 0},
	{"door_zone", F_BOOL, R(lift.door_zone), 0, 0, 0, NULL, 0},
	{"occupied", F_BOOL, R(lift.occupied), 0, 0, 0, NULL, 0},
	{"speed", F_NUM, R(lift.speed), SP_HAS_SPEED, 0, 20, NULL, 0},
	{"mode", F_ENUM, R(lift.mode), 0, 0, 0, &sp_vocab_mode, 0},
	{"power", F_ENUM, R(lift.power), SP_HAS_POWER_SRC, 0, 0, &sp_vocab_power, 0},
	{"safety_ok", F_BOOL, R(lift.safety_ok), SP_HAS_SAFETY_OK, 0, 0, NULL, 0},
	{"trips", F_INT64, R(lift.trips), SP_HAS_TRIPS, 0, I64, NULL, 0},
	{"door_cycles", F_INT64, R(lift.door_cycles), SP_HAS_DOOR_CYCLES, 0, I64, NULL, 0},
	{"run_s", F_INT64, R(lift.run_s), SP_HAS_RUN_S, 0, I64, NULL, 0},
};

static const struct field station_fields[] = {
	{"power_w", F_NUM, R(station.power_w), SP_HAS_POWER_W, 0, 1e6, NULL, 0},
	{"supply_v", F_NUM, R(station.supply_v), SP_HAS_SUPPLY_V, 0, 1000, NULL, 0},
	{"ambient_c", F_NUM, R(station.ambient_c), SP_HAS_AMBIENT_C, -60, 150, NULL, 0},
	{"smoke", F_BOOL, R(station.smoke), 0, 0, 0, NULL, 0},
	{"leak_ma", F_NUM, R(station.leak_ma), SP_HAS_LEAK_MA, 0, 10000, NULL, 0},
	{"door_open", F_BOOL, R(station.door_open), SP_HAS_DOOR_OPEN, 0, 0, NULL, 0},
	{"energy_wh", F_INT64, R(station.energy_wh), SP_HAS_ENERGY_WH, 0, I64, NULL, 0},
};

static const struct field port_fields[] = {
	{"port", F_INT32, R(port.port), 0, 1, SP_PORT_MAX, NULL, 0},
	{"state", F_ENUM, R(port.state), 0, 0, 0, &sp_vocab_port_state, 0},
	{"v", F_NUM, R(port.v), SP_HAS_V, 0, 1000, NULL, 0},
	{"a", F_NUM, R(port.a), SP_HAS_A, 0, 100, NULL, 0},
	{"w", F_NUM, R(port.w), SP_HAS_W, 0, 100000, NULL, 0},
	{"temp_c", F_NUM, R(port.temp_c), SP_HAS_TEMP_C, -60, 200, NULL, 0},
	{"session_wh", F_NUM, R(port.session_wh), SP_HAS_SESSION_WH, 0, 1e6, NULL, 0},
};

static const struct field session_fields[] = {
	{"port", F_INT32, R(session.port), 0, 1, SP_PORT_MAX, NULL, 0},
	{"start", F_TS, R(session.start), 0, 0, 0, NULL, 0},
	{"end", F_TS, R(session.end), 0, 0, 0, NULL, 0},
	{"wh", F_NUM, R(session.wh), 0, 0, 1e6, NULL, 0},
	{"reason", F_ENUM, R(session.reason), 0, 0, 0, &sp_vocab_stop_reason, 0},
};

static const struct field fault_fields[] = {
	{"code", F_CODE, R(fault.code), 0, 0, 0, NULL, SP_FAULT_CODE_MAX},
	{"active", F_BOOL, R(fault.active), 0, 0, 0, NULL, 0},
	{"port", F_INT32, R(fault.port), SP_HAS_PORT, 1, SP_PORT_MAX, NULL, 0},
	{"detail", F_TEXT, R(fault.detail), SP_HAS_DETAIL, 0, 0, NULL, SP_TEXT_MAX},
};

#define TABLE(a) {a, sizeof(a) / sizeof(a[0])}
const struct kind_table codec_kind_tables[SP_REC_KIND_COUNT] = {
	TABLE(lift_fields), TABLE(station_fields), TABLE(port_fields), TABLE(session_fields),
	TABLE(fault_fields)};

#define D(m) offsetof(struct sp_device_info, m)
const struct field codec_lift_info_fields[CODEC_INFO_FIELDS] = {
	/* optional, as the birth's other fields (CONTRACT §3.1 requires none): 0 = not given */
	{"rated_speed", F_NUM, D(rated_speed), 1, 0.05, 20, NULL, 0},
	{"rated_load", F_NUM, D(rated_load), 1, 0, 100000, NULL, 0},
};
const struct field codec_charger_info_fields[CODEC_INFO_FIELDS] = {
	{"ports", F_INT32, D(ports), 1, 1, SP_PORT_MAX, NULL, 0},
	{"port_limit_w", F_NUM, D(port_limit_w), 1, 0, 100000, NULL, 0},
};
