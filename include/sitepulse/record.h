/*
 * record.h - the telemetry model shared by agent and collector (CONTRACT §3).
 *
 * Plain value structs: a record is what one `records[]` element of a data
 * message says, after validation. Optional fields are flagged in `has`.
 * Enumerations have a fixed wire text each (sp_*_name / sp_*_parse).
 */
#ifndef SP_RECORD_H
#define SP_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "sitepulse/ids.h"

#define SP_PAYLOAD_MAX (256 * 1024) /* bytes in one MQTT payload */
/*
 * A data message up to this size is read for its seq alone when it is over
 * SP_PAYLOAD_MAX. Twice the limit: the parse tree of a hostile payload of
 * tiny values costs ~32 bytes of memory per payload byte (~16 MB here).
 */
#define SP_PAYLOAD_PEEK_MAX (2 * SP_PAYLOAD_MAX)
#define SP_RECORDS_MAX 1000         /* records in one data message */
#define SP_DEVICES_MAX 512          /* devices in one birth (one agent) */
#define SP_FAULT_CODE_MAX 64        /* bytes of a fault code */
#define SP_TEXT_MAX 256             /* bytes of free text (detail, fw) */
#define SP_FLOOR_MIN (-50)
#define SP_FLOOR_MAX 300

enum sp_rec_kind {
	SP_REC_LIFT = 0,
	SP_REC_STATION,
	SP_REC_PORT,
	SP_REC_SESSION,
	SP_REC_FAULT,
	SP_REC_KIND_COUNT
};

enum sp_dev_kind { SP_DEV_UNKNOWN = 0, SP_DEV_LIFT, SP_DEV_CHARGER, SP_DEV_KIND_COUNT };

enum sp_dir { SP_DIR_UP = 0, SP_DIR_DOWN, SP_DIR_STOP, SP_DIR_COUNT };
enum sp_door { SP_DOOR_OPEN = 0, SP_DOOR_CLOSED, SP_DOOR_OPENING, SP_DOOR_CLOSING, SP_DOOR_COUNT };
enum sp_mode {
	SP_MODE_NORMAL = 0,
	SP_MODE_INSPECTION,
	SP_MODE_OUT_OF_SERVICE,
	SP_MODE_FIRE,
	SP_MODE_EMERGENCY_POWER,
	SP_MODE_COUNT
};
enum sp_power { SP_POWER_MAINS = 0, SP_POWER_BATTERY, SP_POWER_COUNT };
enum sp_port_state {
	SP_PORT_IDLE = 0,
	SP_PORT_PLUGGED,
	SP_PORT_CHARGING,
	SP_PORT_FULL,
	SP_PORT_FAULT,
	SP_PORT_DISABLED,
	SP_PORT_STATE_COUNT
};
enum sp_stop_reason {
	SP_STOP_FULL = 0,
	SP_STOP_UNPLUGGED,
	SP_STOP_USER,
	SP_STOP_LIMIT,
	SP_STOP_OVERCURRENT,
	SP_STOP_SHORT,
	SP_STOP_OVER_TEMP,
	SP_STOP_VOLTAGE,
	SP_STOP_LEAKAGE,
	SP_STOP_SMOKE,
	SP_STOP_POWER_LOSS,
	SP_STOP_REMOTE,
	SP_STOP_FAULT,
	SP_STOP_REASON_COUNT
};

/* Bits of sp_record.has: which optional fields were present. */
enum {
	SP_HAS_SPEED = 1u << 0,       /* lift */
	SP_HAS_POWER_SRC = 1u << 1,   /* lift */
	SP_HAS_SAFETY_OK = 1u << 2,   /* lift */
	SP_HAS_TRIPS = 1u << 3,       /* lift */
	SP_HAS_DOOR_CYCLES = 1u << 4, /* lift */
	SP_HAS_RUN_S = 1u << 5,       /* lift */
	SP_HAS_POWER_W = 1u << 6,     /* station */
	SP_HAS_SUPPLY_V = 1u << 7,    /* station */
	SP_HAS_AMBIENT_C = 1u << 8,   /* station */
	SP_HAS_LEAK_MA = 1u << 9,     /* station */
	SP_HAS_DOOR_OPEN = 1u << 10,  /* station */
	SP_HAS_ENERGY_WH = 1u << 11,  /* station */
	SP_HAS_V = 1u << 12,          /* port */
	SP_HAS_A = 1u << 13,          /* port */
	SP_HAS_W = 1u << 14,          /* port */
	SP_HAS_TEMP_C = 1u << 15,     /* port */
	SP_HAS_SESSION_WH = 1u << 16, /* port */
	SP_HAS_PORT = 1u << 17,       /* fault */
	SP_HAS_DETAIL = 1u << 18,     /* fault */
};

struct sp_lift {
	int32_t floor;
	enum sp_dir dir;
	enum sp_door door;
	bool door_zone;
	bool occupied;
	enum sp_mode mode;
	double speed;          /* m/s, >= 0 */
	enum sp_power power;
	bool safety_ok;
	int64_t trips;         /* lifetime counters */
	int64_t door_cycles;
	int64_t run_s;
};

struct sp_station {
	bool smoke;
	double power_w;
	double supply_v;
	double ambient_c;
	double leak_ma;
	bool door_open;
	int64_t energy_wh;     /* lifetime counter */
};

struct sp_port {
	int32_t port;          /* 1..64 */
	enum sp_port_state state;
	double v, a, w, temp_c, session_wh;
};

struct sp_session {
	int32_t port;
	int64_t start, end;    /* ms since epoch, start <= end */
	double wh;
	enum sp_stop_reason reason;
};

struct sp_fault {
	char code[SP_FAULT_CODE_MAX + 1];
	bool active;
	int32_t port;          /* valid if SP_HAS_PORT */
	char detail[SP_TEXT_MAX + 1]; /* valid UTF-8 if SP_HAS_DETAIL */
};

struct sp_record {
	enum sp_rec_kind kind;
	char dev[SP_ID_MAX + 1];
	int64_t ts;            /* ms since epoch */
	uint32_t has;          /* SP_HAS_* */
	union {
		struct sp_lift lift;
		struct sp_station station;
		struct sp_port port;
		struct sp_session session;
		struct sp_fault fault;
	} u;
};

/* One device as announced in a birth message (CONTRACT §3.1). */
struct sp_device_info {
	char dev[SP_ID_MAX + 1];
	enum sp_dev_kind kind;
	/* lift */
	int32_t floor_min, floor_max;
	double rated_speed;    /* m/s */
	double rated_load;     /* kg */
	/* charger */
	int32_t ports;         /* 1..64 */
	double port_limit_w;
};

/* A vocabulary: the wire texts of one enumeration, indexed by value. */
struct sp_vocab {
	const char *const *names;
	int count;
};

extern const struct sp_vocab sp_vocab_rec_kind, sp_vocab_dev_kind, sp_vocab_dir, sp_vocab_door,
	sp_vocab_mode, sp_vocab_power, sp_vocab_port_state, sp_vocab_stop_reason;

/* Value of text s in vocabulary v, or -1. */
int sp_vocab_parse(const struct sp_vocab *v, const char *s);
/* Text of value x in vocabulary v, or "?" when out of range. */
const char *sp_vocab_name(const struct sp_vocab *v, int x);

/* Typed shorthands. *_name() returns a static string; *_parse() returns the value or -1. */
const char *sp_rec_kind_name(enum sp_rec_kind k);
int sp_rec_kind_parse(const char *s);
const char *sp_dev_kind_name(enum sp_dev_kind k);
int sp_dev_kind_parse(const char *s);
const char *sp_dir_name(enum sp_dir v);
int sp_dir_parse(const char *s);
const char *sp_door_name(enum sp_door v);
int sp_door_parse(const char *s);
const char *sp_mode_name(enum sp_mode v);
int sp_mode_parse(const char *s);
const char *sp_power_name(enum sp_power v);
int sp_power_parse(const char *s);
const char *sp_port_state_name(enum sp_port_state v);
int sp_port_state_parse(const char *s);
const char *sp_stop_reason_name(enum sp_stop_reason v);
int sp_stop_reason_parse(const char *s);

/* The device kind a record of kind k belongs to (fault: SP_DEV_UNKNOWN, either). */
enum sp_dev_kind sp_rec_dev_kind(enum sp_rec_kind k);

#endif
