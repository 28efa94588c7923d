/* synth.c - synthetic telemetry values for the benchmark tools (see synth.h). */
#include "synth.h"

#include <math.h>
#include <string.h>

void synth_seed(struct synth *s, uint64_t seed)
{
	s->state = seed * 0x9E3779B97F4A7C15ULL + 1; /* never 0: xorshift would stay at 0 */
}

uint64_t synth_next(struct synth *s)
{
	s->state ^= s->state >> 12;
	s->state ^= s->state << 25;
	s->state ^= s->state >> 27;
	return s->state * 2685821657736338717ULL;
}

/*
 * A value at a resolution of `decimals` in [lo, lo + steps * 10^-decimals),
 * rounded the way the agent's simulator rounds what it sends (sim_round1,
 * sim_round2): 218.3, never 218.30000000000001.
 */
static double at_resolution(double x, int decimals)
{
	double scale = decimals == 1 ? 10.0 : 100.0;
	return round(x * scale) / scale;
}

static double pick(struct synth *s, double lo, unsigned steps, int decimals)
{
	double step = decimals == 1 ? 0.1 : 0.01;
	return at_resolution(lo + (double)(synth_next(s) % steps) * step, decimals);
}

/*
 * How long a device's state lasts: what a real one reports changes in steps
 * (a lift's door and car every few seconds while in use, a charging port's
 * state when a session starts or ends), not on every record. The state is
 * drawn from the device, the port and the window its ts falls in, so every
 * record within a window repeats it (as a heartbeat does) while the values
 * (voltages, temperatures) still vary per record. Until this, every record
 * drew a fresh state: a port started and ended a charging session on every
 * record, which no charger does, and the alert rules' holds churned with
 * it (docs/performance.md item 29).
 */
#define LIFT_STATE_MS 4000
#define PORT_STATE_MS 60000

static struct synth state_of(const char *dev, int32_t port, int64_t ts, int64_t window_ms)
{
	struct synth w;
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = dev; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ (uint64_t)port) * 1099511628211ULL;
	synth_seed(&w, h ^ (uint64_t)(ts / window_ms) * 0x9E3779B97F4A7C15ULL);
	synth_next(&w);
	return w;
}

void synth_device(struct sp_device_info *d, const char *dev, bool lift)
{
	memset(d, 0, sizeof(*d));
	strncpy(d->dev, dev, sizeof(d->dev) - 1);
	if (lift) {
		d->kind = SP_DEV_LIFT;
		d->floor_min = SYNTH_FLOOR_MIN;
		d->floor_max = SYNTH_FLOOR_MAX;
		d->rated_speed = 1.75;
		d->rated_load = 1000;
	} else {
		d->kind = SP_DEV_CHARGER;
		d->ports = SYNTH_PORTS;
		d->port_limit_w = 1000;
	}
}

/*
 * A lift's state window w (its ts / LIFT_STATE_MS): the state of a healthy
 * lift in a residential block. Idle most of the time (70 %: stopped at a
 * landing, door closed, nobody in the car), now and then running between
 * floors (15 %: door closed, never beyond its terminal floors) or boarding
 * at a landing (15 %: in the door zone, door opening, open or closing).
 * States of a fault are never drawn: a car stopped with someone inside and
 * the door closed (lift.trapped's condition), stopped outside the door
 * zone, or outside it at a terminal floor heading out (lift.overtravel's).
 * So the rules hold conditions only while doors stand open, as in a real
 * fleet, and a benchmark measures the fleet's load, not an epidemic of
 * alerts. Until 2026-12-02 each window drew direction, door and occupancy
 * independently: at 100,000 devices, one reading per device every ~33 s,
 * half the lifts held lift.door_open_long and 3 % opened lift.trapped
 * within 20 s (docs/performance.md item 58).
 *
 * The door counter moves on by one cycle per window, never within one, and
 * the floor of window w is never that of w - 1 (odd floors in odd windows,
 * even in even), so a car never stands at one floor with its counter
 * rising: lift.door_reopen (5 cycles at one floor, docs/alerts.md) opens
 * nothing, as on a healthy lift. Until this, door_cycles rose by 2 with
 * every record, stopped or not, and a loader sending a lift more than 3
 * records in a window opened and cleared that alert in most windows the
 * car stood (about 100,000 alerts per 600,000 records at one record a
 * second).
 */
static void fill_lift(struct synth *s, struct sp_lift *x, uint64_t n, int64_t w, struct synth *st)
{
	uint64_t what = synth_next(st) % 20;
	bool moving = what >= 14 && what < 17, boarding = what >= 17;
	int32_t pairs = (SYNTH_FLOOR_MAX - SYNTH_FLOOR_MIN + 1) / 2;
	x->floor =
	    SYNTH_FLOOR_MIN + 2 * (int32_t)(synth_next(st) % (uint64_t)pairs) + (int32_t)(w & 1);
	x->dir = SP_DIR_STOP;
	if (moving) {
		/* never past a terminal floor: up below the top, down above the bottom */
		bool up = x->floor == SYNTH_FLOOR_MAX   ? false
			  : x->floor == SYNTH_FLOOR_MIN ? true
							: (synth_next(st) & 1) != 0;
		x->dir = up ? SP_DIR_UP : SP_DIR_DOWN;
	}
	static const enum sp_door boarding_doors[] = {SP_DOOR_OPENING, SP_DOOR_OPEN,
						      SP_DOOR_CLOSING};
	x->door = boarding ? boarding_doors[synth_next(st) % 3] : SP_DOOR_CLOSED;
	x->door_zone = !moving;
	x->occupied = (moving || boarding) && synth_next(st) % 10 < 6;
	x->speed = moving ? pick(s, 1.0, 50, 2) : 0.0;
	x->mode = SP_MODE_NORMAL;
	x->power = SP_POWER_MAINS;
	x->safety_ok = true;
	x->trips = 120000 + (int64_t)n;
	x->door_cycles = 250000 + w;
	x->run_s = 3600000 + 7 * (int64_t)n;
}

static void fill_station(struct synth *s, struct sp_station *x, uint64_t n)
{
	x->power_w = pick(s, 1500, 40000, 1);
	x->supply_v = pick(s, 215, 100, 1);
	x->ambient_c = pick(s, 18, 150, 1);
	x->smoke = false;
	x->leak_ma = pick(s, 0, 30, 1);
	x->door_open = false;
	x->energy_wh = 5000000 + 40 * (int64_t)n;
}

static void fill_port(struct synth *s, struct sp_port *x, int32_t port, struct synth *st)
{
	bool charging = synth_next(st) & 1;
	x->port = port;
	x->state = charging ? SP_PORT_CHARGING : SP_PORT_IDLE;
	x->v = pick(s, 218, 60, 1);
	x->a = charging ? pick(s, 1.5, 150, 2) : 0.0;
	x->w = at_resolution(x->v * x->a, 1);
	x->temp_c = pick(s, charging ? 37 : 25, 50, 1);
	x->session_wh = charging ? pick(s, 0, 8000, 1) : 0.0;
}

void synth_record(struct synth *s, struct sp_record *r, const char *dev, bool lift, int64_t ts,
		  uint64_t n)
{
	memset(r, 0, sizeof(*r));
	strncpy(r->dev, dev, sizeof(r->dev) - 1);
	r->ts = ts;
	if (lift) {
		r->kind = SP_REC_LIFT;
		r->has = SP_HAS_SPEED | SP_HAS_POWER_SRC | SP_HAS_SAFETY_OK | SP_HAS_TRIPS |
			 SP_HAS_DOOR_CYCLES | SP_HAS_RUN_S;
		struct synth st = state_of(dev, 0, ts, LIFT_STATE_MS);
		fill_lift(s, &r->u.lift, n, ts / LIFT_STATE_MS, &st);
	} else if (n % (SYNTH_PORTS + 1) == 0) {
		r->kind = SP_REC_STATION;
		r->has = SP_HAS_POWER_W | SP_HAS_SUPPLY_V | SP_HAS_AMBIENT_C | SP_HAS_LEAK_MA |
			 SP_HAS_DOOR_OPEN | SP_HAS_ENERGY_WH;
		fill_station(s, &r->u.station, n);
	} else {
		r->kind = SP_REC_PORT;
		r->has = SP_HAS_V | SP_HAS_A | SP_HAS_W | SP_HAS_TEMP_C | SP_HAS_SESSION_WH;
		int32_t port = (int32_t)(n % (SYNTH_PORTS + 1));
		struct synth st = state_of(dev, port, ts, PORT_STATE_MS);
		fill_port(s, &r->u.port, port, &st);
	}
}
