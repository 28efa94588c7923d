/*
 * sim.h - the agent's built-in simulator: the lifts and charging stations of
 * one site gateway, producing CONTRACT §3.2 records as a real gateway would.
 *
 * It knows nothing of MQTT, spools or clocks: the caller advances it with
 * sim_step(now_ms) and receives records through a callback. Given the same
 * parameters, seed and sequence of now_ms values, it produces the same
 * records (deterministic), which is what the tests rely on.
 *
 * Scenario injection: a scenario makes one device go through a named
 * situation (enum sim_situation) from an offset after start, for a
 * duration, e.g. "lift-1 trapped_between_floors at 30 s for 120 s".
 *
 * Threading: a struct sim belongs to one thread (the agent's main loop).
 */
#ifndef SP_AGENT_SIM_H
#define SP_AGENT_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sitepulse/record.h"

enum sim_situation {
	SIM_TRAPPED_BETWEEN_FLOORS = 0, /* lift stops outside the door zone, door closed, passenger */
	SIM_TRAPPED_AT_LANDING,         /* lift stops in the door zone, door stays closed, passenger */
	SIM_DOOR_OPEN_MOVING,           /* lift moves with the door open */
	SIM_OVERSPEED,                  /* lift runs at ~1.4 x rated speed */
	SIM_ON_BATTERY,                 /* lift power from battery (mains lost) */
	SIM_SAFETY_OPEN,                /* lift safety circuit open (safety_ok false), lift stops */
	SIM_INSPECTION,                 /* lift in inspection mode */
	SIM_PORT_OVERHEAT,              /* a charger port heats past 70 °C */
	SIM_PORT_OVERPOWER,             /* a charger port draws more than its limit */
	SIM_SMOKE,                      /* station smoke detector active */
	SIM_RESIDUAL_CURRENT,           /* station leak current >= 30 mA */
	SIM_SILENT,                     /* the whole gateway stops reporting (agent-level) */
	SIM_LINK_LOST,                  /* one device's link to the gateway is cut: it reports nothing */
	SIM_SITUATION_COUNT
};

/* Wire/config name of a situation ("trapped_between_floors", ...), and back (-1 if unknown). */
const char *sim_situation_name(enum sim_situation s);
int sim_situation_parse(const char *name);

struct sim_scenario {
	char dev[SP_ID_MAX + 1];   /* device it applies to ("" for SIM_SILENT: the gateway) */
	enum sim_situation situation;
	int32_t port;              /* charger port for port situations; 0 = port 1 */
	int64_t at_ms;             /* offset from the simulation start */
	int64_t duration_ms;       /* 0 = until the end */
};

/*
 * Parses "DEV:SITUATION@AT[+DURATION]" (seconds), e.g.
 * "lift-1:trapped_between_floors@30+120", "chg-1:port_overheat@10" or
 * ":silent@60+90"; a port may follow the device: "chg-1/3:port_overheat@10".
 * Returns 0, or -1 with a message in err.
 */
int sim_scenario_parse(const char *text, struct sim_scenario *out, char *err, size_t errlen);

struct sim_params {
	uint64_t seed;
	int lifts;                 /* 0..64 */
	int chargers;              /* 0..64 */
	int ports;                 /* per charger, 1..64 */
	int floor_min, floor_max;  /* e.g. -1 .. 7 */
	double rated_speed;        /* m/s */
	double port_limit_w;       /* per-port power limit announced in the birth */
	int heartbeat_s;           /* maximum interval between two reports of a device (<= 60) */
	double time_scale;         /* 1 = real time; >1 makes things happen faster */
	const struct sim_scenario *scenarios;
	size_t nscenarios;
};

struct sim;

/*
 * The rules sim_create applies, for a configuration check before it:
 * sim_params_check the site (a device at least, ranges), sim_scenario_check
 * one scenario against it (its device exists for its situation - lift-N
 * with N <= lifts, chg-N - a port only for a port situation and within
 * ports). NULL when valid, else the name of the failing [sim] key or
 * scenario field ("dev", "port", ...) with what is accepted in err
 * (err may be NULL).
 */
const char *sim_params_check(const struct sim_params *p, char *err, size_t errlen);
const char *sim_scenario_check(const struct sim_params *p, const struct sim_scenario *sc,
			       char *err, size_t errlen);

/* Creates the simulated site, starting at start_ms. NULL on bad params or no memory. */
struct sim *sim_create(const struct sim_params *p, int64_t start_ms);
void sim_destroy(struct sim *s);

/* Number of devices, and fills up to cap device descriptions (for the birth). */
size_t sim_devices(const struct sim *s, struct sp_device_info *out, size_t cap);

/* Receives each record produced; the record is only valid during the call. */
typedef void (*sim_emit_fn)(void *ctx, const struct sp_record *r);

/*
 * Advances the simulation to now_ms (monotonic non-decreasing; callers tick
 * every 100 ms or so) and emits the records due: a device's record on every
 * change of its reported state and at least every heartbeat_s.
 * Records carry ts = now_ms (wall clock of the caller).
 */
void sim_step(struct sim *s, int64_t now_ms, sim_emit_fn emit, void *ctx);

/* True while a SIM_SILENT scenario is active: the agent then publishes nothing. */
bool sim_silent(const struct sim *s, int64_t now_ms);

/* Whether the simulated fleet has this charger and port. */
bool sim_has_port(struct sim *s, const char *dev, int port);

/*
 * Applies a remote port_off command (CONTRACT §3.3): the port's session, if
 * any, ends with reason "remote" and the port becomes "disabled" until a
 * port_on (sim_port_on).
 * Returns 0, or -1 if there is no such charger/port.
 */
int sim_port_off(struct sim *s, const char *dev, int port);

/*
 * A port a port_off command turned off before this run (the agent remembers
 * its commands in the spool): disabled from the start, as the charger itself
 * would have kept it, with no session record (whatever session the start drew
 * for it never happened). Call before the first sim_step. 0, or -1 as above.
 */
int sim_port_keep_off(struct sim *s, const char *dev, int port);

/*
 * Applies a port_on command (docs/protocol.md, Command): a port a port_off
 * turned off is in service again ("idle"; "fault" until it has cooled if it
 * is still over temperature; "disabled" until the smoke clears if the pile is
 * cut for smoke), reported at the next step; a port_off of the same tick not
 * yet applied is cancelled. Returns 0, 1 if the port was not off by a command
 * (nothing changed), or -1 if there is no such charger/port.
 */
int sim_port_on(struct sim *s, const char *dev, int port);

#endif
