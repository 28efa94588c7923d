/*
 * sim_lift.c - one simulated lift retrofitted onto a 6-8 storey walk-up.
 *
 * The car is a point in a shaft of levels floor_h (~3 m) apart; level 0 is
 * floor_min. Chinese floor numbering has no floor 0 when there is a
 * basement (-1, 1, 2, ...), so level i is not always floor_min + i.
 *
 * Its life is a small state machine driven by hall calls (a Poisson
 * process whose rate follows the time of day):
 *
 *   IDLE --call--> [RUN empty to the caller] --> OPENING --> OPEN --> CLOSING
 *        --passenger in--> RUN to the destination --> OPENING --> OPEN --> CLOSING --> IDLE
 *
 * and HELD: stopped by a situation (trapped, safety chain open) until it
 * ends, after which the car re-levels to the nearest floor and opens.
 * Situations (sim.h) only bend this machine: they force a passenger in,
 * refuse to open or to start, stop the car, or change its speed limit.
 *
 * Reporting: a record on every change of floor/dir/door/door_zone/
 * occupied/mode/power/safety_ok, and also when the drive goes from
 * accelerating to running speed or starts braking, so the speed actually
 * reached (overspeed!) is seen on every trip. Otherwise every heartbeat.
 */
#include "sim_int.h"

#include "sitepulse/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCEL 0.6          /* m/s^2, a comfortable drive for a small MRL lift */
#define ESTOP_DECEL 1.5    /* m/s^2, brake stop when the drive is cut */
#define LEVEL_SPEED 0.3    /* m/s, re-levelling after a stop between floors */
#define ZONE_M 0.1         /* door zone: within +-0.1 m of a floor level */
#define TRAP_MIN_M 0.4     /* a trapped car stops at least this far from any level */
#define OVERSPEED 1.4      /* x rated speed in SIM_OVERSPEED */
#define CALL_GAP_S 90.0    /* mean gap between hall calls in a factor-1 hour */
#define BOARD_P 0.9        /* the caller may have taken the stairs meanwhile */
#define MAINT_GAP_S (15 * 86400.0) /* TSG T5002: maintenance at least every 15 days */
#define RATED_LOAD_KG 630.0

/*
 * Relative call rate per local hour: morning and evening peaks (a call a
 * minute), quiet nights (one in half an hour); 0.8 on average, i.e. a call
 * every ~2 minutes over the day.
 */
static const double hour_factor[24] = {
	0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.4, 1.5, 1.0, 0.8, 0.9,
	1.1, 0.9,  0.8,  0.8,  1.0, 1.3, 1.5, 1.5, 1.3, 1.0, 0.6, 0.3};

enum phase { P_IDLE, P_OPENING, P_OPEN, P_CLOSING, P_RUN, P_HELD };
/* The drive's state, reported on change so the running speed is seen. */
enum drive { D_STILL, D_ACCEL, D_CRUISE, D_DECEL };

struct sim_lift {
	char dev[SP_ID_MAX + 1];
	struct sim_rng rng;
	/* building */
	int floor_min, floor_max;
	int nlevels;
	bool skip0;          /* no floor 0 between a basement and floor 1 */
	double floor_h;      /* m between levels */
	double rated;        /* m/s */
	int home;            /* level of the entrance floor */
	/* car */
	enum phase phase;
	double phase_left;   /* s left in a door phase */
	double pos, v;       /* m above level 0, m/s (>= 0) */
	int dirn;            /* +1 up, -1 down, while running */
	double target;       /* m, where the run ends */
	bool estop;          /* this run is a brake stop: HELD at its end */
	bool leveling;       /* this run re-levels after a stop: slow, not a trip */
	enum drive drive;
	enum sp_door door;
	bool occupied;
	bool boarding;       /* a passenger is stepping in during this open phase */
	double board_left;
	/* journey */
	bool board;          /* a passenger boards at the next open phase */
	bool force_board;    /* ... for sure: a situation needs someone inside */
	int dest;            /* level to go to after the next door cycle, -1 none */
	int call_from, call_to; /* one pending hall call, -1 none */
	double call_clock;   /* Exp(1) budget until the next call */
	bool kick_dom, kick_over; /* start a trip to show a situation that just began */
	/* maintenance visits (inspection mode) */
	double maint_in, maint_left;
	/* lifetime counters */
	int64_t trips, door_cycles;
	double run_s;
	/* situations (SIM_BIT mask) */
	uint32_t sc;
	/* reporting */
	bool reported;
	struct sp_lift last;
	enum drive last_drive;
	int64_t next_hb;     /* clock_ms of the next heartbeat */
	int64_t hb_phase_ms; /* spreads the devices' heartbeats after a catch-up */
};

/* ---------------------------------------------------------------- geometry */

static bool has(const struct sim_lift *l, enum sim_situation s)
{
	return (l->sc & SIM_BIT(s)) != 0;
}

static int level_floor(const struct sim_lift *l, int lv)
{
	int f = l->floor_min + lv;
	return l->skip0 && f >= 0 ? f + 1 : f;
}

static double level_pos(const struct sim_lift *l, int lv)
{
	return lv * l->floor_h;
}

static int nearest_level(const struct sim_lift *l)
{
	int lv = (int)lround(l->pos / l->floor_h);
	return lv < 0 ? 0 : lv >= l->nlevels ? l->nlevels - 1 : lv;
}

static double level_offset(const struct sim_lift *l, double pos)
{
	double k = pos / l->floor_h;
	return fabs(k - round(k)) * l->floor_h;
}

static bool in_zone(const struct sim_lift *l)
{
	return level_offset(l, l->pos) <= ZONE_M + 1e-9;
}

static int other_level(struct sim_lift *l, int lv)
{
	int x = sim_rng_int(&l->rng, l->nlevels - 1);
	return x >= lv ? x + 1 : x;
}

static int adjacent_level(const struct sim_lift *l)
{
	int lv = nearest_level(l);
	return lv + 1 < l->nlevels ? lv + 1 : lv - 1;
}

static int farthest_level(const struct sim_lift *l)
{
	int lv = nearest_level(l);
	return lv >= l->nlevels - 1 - lv ? 0 : l->nlevels - 1;
}

/* ---------------------------------------------------------------- situations */

static bool inspection(const struct sim_lift *l)
{
	return has(l, SIM_INSPECTION) || l->maint_left > 0;
}

static bool trapped(const struct sim_lift *l)
{
	return has(l, SIM_TRAPPED_BETWEEN_FLOORS) || has(l, SIM_TRAPPED_AT_LANDING);
}

/* May the car start a normal run? */
static bool can_run(const struct sim_lift *l)
{
	return !has(l, SIM_SAFETY_OPEN) && !has(l, SIM_ON_BATTERY) && !inspection(l);
}

/* ---------------------------------------------------------------- state machine */

static void go_idle(struct sim_lift *l)
{
	l->phase = P_IDLE;
	l->board = false;
	l->dest = -1;
}

static void hold(struct sim_lift *l)
{
	l->phase = P_HELD;
	l->v = 0;
	l->drive = D_STILL;
}

static void start_run(struct sim_lift *l, int lv, bool leveling)
{
	l->phase = P_RUN;
	l->target = level_pos(l, lv);
	l->dirn = l->target >= l->pos ? 1 : -1;
	l->estop = false;
	l->leveling = leveling;
	l->drive = D_ACCEL;
	if (!leveling)
		l->trips++;
	/* the door-lock fault: the car leaves with its door open */
	l->door = has(l, SIM_DOOR_OPEN_MOVING) ? SP_DOOR_OPEN : SP_DOOR_CLOSED;
}

/* Brake stop from where the car is: it ends HELD, wherever that is. */
static void estop(struct sim_lift *l)
{
	double stop = l->pos + l->dirn * l->v * l->v / (2 * ESTOP_DECEL);
	double top = level_pos(l, l->nlevels - 1);
	l->target = stop < 0 ? 0 : stop > top ? top : stop;
	l->estop = true;
}

static void enter_open(struct sim_lift *l)
{
	l->phase = P_OPEN;
	l->door = SP_DOOR_OPEN;
	l->phase_left = sim_rng_range(&l->rng, 3.0, 8.0);
	l->occupied = false; /* whoever rode gets out */
	l->boarding = false;
	/* nobody is let in by a car that cannot leave, unless a situation needs a passenger */
	if (l->board && (trapped(l) || l->force_board ||
			 (can_run(l) && sim_rng_chance(&l->rng, BOARD_P)))) {
		l->boarding = true;
		l->board_left = sim_rng_range(&l->rng, 1.0, 2.5);
	}
	l->board = false;
	l->force_board = false;
}

static void open_door(struct sim_lift *l, bool board, int dest)
{
	l->board = board;
	l->dest = dest;
	if (l->door == SP_DOOR_OPEN) { /* arrived with the door open (door_open_moving) */
		enter_open(l);
		return;
	}
	l->phase = P_OPENING;
	l->door = SP_DOOR_OPENING;
	l->phase_left = sim_rng_range(&l->rng, 2.0, 2.5);
	l->door_cycles++;
}

/* Answers a call from level `from` to level `to`. */
static void serve(struct sim_lift *l, int from, int to)
{
	if (from == nearest_level(l) && in_zone(l)) {
		open_door(l, true, to);
		return;
	}
	start_run(l, from, false);
	l->board = true; /* kept for the door cycle at the caller's level */
	l->dest = to;
}

static void after_close(struct sim_lift *l)
{
	int here = nearest_level(l);

	l->door = SP_DOOR_CLOSED;
	if (trapped(l) && !l->occupied) { /* the situation needs someone inside: reopen */
		open_door(l, true, has(l, SIM_TRAPPED_BETWEEN_FLOORS) ? adjacent_level(l) : -1);
		return;
	}
	if (has(l, SIM_TRAPPED_AT_LANDING) && l->occupied) {
		hold(l);
		return;
	}
	if (has(l, SIM_TRAPPED_BETWEEN_FLOORS) && (l->dest < 0 || l->dest == here))
		l->dest = adjacent_level(l);
	if (!l->occupied) {
		go_idle(l);
		return;
	}
	if (l->dest >= 0 && l->dest != here &&
	    (can_run(l) || has(l, SIM_TRAPPED_BETWEEN_FLOORS))) {
		int d = l->dest;
		l->dest = -1;
		l->board = false;
		start_run(l, d, false);
		return;
	}
	/* the car cannot leave: the door reopens and the passenger gets out */
	open_door(l, false, -1);
}

static void arrive(struct sim_lift *l)
{
	l->pos = l->target;
	l->v = 0;
	l->drive = D_STILL;
	if (l->estop) {
		hold(l);
		return;
	}
	if (l->leveling) {
		open_door(l, false, -1);
		return;
	}
	if (has(l, SIM_TRAPPED_AT_LANDING) && l->occupied) {
		hold(l);
		return;
	}
	open_door(l, l->board, l->dest);
}

/* On battery the car stops at the next floor it can brake for, and lets passengers out. */
static void stop_at_next_floor(struct sim_lift *l)
{
	double stop = l->pos + l->dirn * l->v * l->v / (2 * ACCEL);
	double k = stop / l->floor_h;
	int lv = l->dirn > 0 ? (int)ceil(k - 1e-9) : (int)floor(k + 1e-9);
	lv = lv < 0 ? 0 : lv >= l->nlevels ? l->nlevels - 1 : lv;
	if (l->dirn * (level_pos(l, lv) - l->target) < 0)
		l->target = level_pos(l, lv);
	l->dest = -1;
	l->board = false;
}

static void run_step(struct sim_lift *l, double dt)
{
	double vmax = l->rated;
	if (l->leveling)
		vmax = LEVEL_SPEED;
	else if (has(l, SIM_OVERSPEED))
		vmax = OVERSPEED * l->rated; /* the drive no longer holds the car back */
	double decel = l->estop ? ESTOP_DECEL : ACCEL;
	double d = fabs(l->target - l->pos);
	double vstop = sqrt(2 * decel * d);
	double vn = l->v > vmax ? fmax(vmax, l->v - ACCEL * dt) : fmin(vmax, l->v + ACCEL * dt);
	bool braking = vn >= vstop;

	if (braking)
		vn = vstop;
	if (vn * dt >= d - 1e-6) {
		l->run_s += vn > 0 ? fmin(dt, d / vn) : 0; /* a long substep ends with the run */
		arrive(l);
		return;
	}
	l->run_s += dt;
	l->pos += l->dirn * vn * dt;
	l->drive = braking || vn < l->v - 1e-9 ? D_DECEL : vn >= vmax - 1e-9 ? D_CRUISE : D_ACCEL;
	l->v = vn;

	if (has(l, SIM_TRAPPED_BETWEEN_FLOORS) && l->occupied && !l->estop && !l->leveling) {
		/* stop where the car cannot be left through a door, short of its destination */
		double stop = l->pos + l->dirn * l->v * l->v / (2 * ESTOP_DECEL);
		if (level_offset(l, stop) >= TRAP_MIN_M && l->dirn * (l->target - stop) > 0)
			estop(l);
	}
}

static void new_call(struct sim_lift *l)
{
	double u = sim_rng_unit(&l->rng);
	int lv = sim_rng_int(&l->rng, l->nlevels);

	if (u < 0.5) { /* from the entrance up to a flat */
		l->call_from = l->home;
		l->call_to = other_level(l, l->home);
	} else if (u < 0.9) { /* from a flat down to the entrance */
		l->call_from = other_level(l, l->home);
		l->call_to = l->home;
	} else { /* neighbours, basement storage */
		l->call_from = lv;
		l->call_to = other_level(l, lv);
	}
}

static void idle_step(struct sim_lift *l)
{
	int here = nearest_level(l);

	if (trapped(l) && !l->occupied) {
		open_door(l, true, has(l, SIM_TRAPPED_BETWEEN_FLOORS) ? adjacent_level(l) : -1);
	} else if (l->kick_dom && can_run(l)) {
		l->kick_dom = false;
		l->force_board = true;
		serve(l, here, other_level(l, here));
	} else if (l->kick_over && can_run(l)) {
		l->kick_over = false;
		l->force_board = true;
		serve(l, here, farthest_level(l));
	} else if (l->maint_in <= 0 && l->sc == 0 && l->maint_left <= 0) {
		/* a maintenance visit: the lift is in inspection mode, calls go unanswered */
		l->maint_left = sim_rng_range(&l->rng, 1800, 5400);
		l->maint_in = sim_rng_exp(&l->rng, MAINT_GAP_S);
		l->call_from = l->call_to = -1;
	} else if (can_run(l) && !trapped(l) && l->call_from >= 0) {
		int from = l->call_from, to = l->call_to;
		l->call_from = l->call_to = -1;
		serve(l, from, to);
	}
}

static void recover(struct sim_lift *l)
{
	int lv = nearest_level(l);
	if (fabs(l->pos - level_pos(l, lv)) <= ZONE_M + 1e-9) {
		l->pos = level_pos(l, lv);
		open_door(l, false, -1);
	} else {
		start_run(l, lv, true);
	}
}

void sim_lift_advance(struct sim_lift *l, double dt, double hour)
{
	int h = (int)hour;
	l->call_clock -= dt * hour_factor[h < 0 ? 0 : h > 23 ? 23 : h] / CALL_GAP_S;
	if (l->call_clock <= 0) {
		l->call_clock = sim_rng_exp(&l->rng, 1.0);
		if (l->call_from < 0 && !inspection(l))
			new_call(l);
	}
	if (l->maint_left > 0)
		l->maint_left -= dt;
	else
		l->maint_in -= dt;

	switch (l->phase) {
	case P_IDLE:
		idle_step(l);
		break;
	case P_OPENING:
		if ((l->phase_left -= dt) <= 0)
			enter_open(l);
		break;
	case P_OPEN:
		if (l->boarding && (l->board_left -= dt) <= 0) {
			l->boarding = false;
			l->occupied = true;
		}
		if ((l->phase_left -= dt) > 0)
			break;
		if (l->boarding) {
			l->boarding = false;
			l->occupied = true;
		}
		if (has(l, SIM_DOOR_OPEN_MOVING) && l->occupied && l->dest >= 0 &&
		    l->dest != nearest_level(l) && can_run(l)) {
			int d = l->dest;
			l->dest = -1;
			start_run(l, d, false);
			break;
		}
		l->phase = P_CLOSING;
		l->door = SP_DOOR_CLOSING;
		l->phase_left = sim_rng_range(&l->rng, 2.8, 3.4);
		break;
	case P_CLOSING:
		if ((l->phase_left -= dt) <= 0)
			after_close(l);
		break;
	case P_RUN:
		run_step(l, dt);
		break;
	case P_HELD:
		if (!trapped(l) && !has(l, SIM_SAFETY_OPEN))
			recover(l);
		break;
	}
}

void sim_lift_situations(struct sim_lift *l, uint32_t mask)
{
	uint32_t on = mask & ~l->sc;

	l->sc = mask;
	if (mask != 0)
		l->maint_left = 0; /* an injected situation ends a maintenance visit */
	if (!has(l, SIM_DOOR_OPEN_MOVING))
		l->kick_dom = false;
	if (!has(l, SIM_OVERSPEED))
		l->kick_over = false;
	if (on & SIM_BIT(SIM_DOOR_OPEN_MOVING)) {
		l->kick_dom = true;
		if (l->phase == P_RUN)
			l->door = SP_DOOR_OPEN;
	}
	if (on & SIM_BIT(SIM_OVERSPEED))
		l->kick_over = true;
	if (l->phase == P_RUN && !l->estop) {
		if (on & SIM_BIT(SIM_SAFETY_OPEN))
			estop(l);
		else if ((on & SIM_BIT(SIM_ON_BATTERY)) && !l->leveling)
			stop_at_next_floor(l);
	}
}

/* ---------------------------------------------------------------- reporting */

static void fill(const struct sim_lift *l, struct sp_record *r, int64_t ts)
{
	memset(r, 0, sizeof(*r));
	r->kind = SP_REC_LIFT;
	memcpy(r->dev, l->dev, sizeof(r->dev));
	r->ts = ts;
	r->has = SP_HAS_SPEED | SP_HAS_POWER_SRC | SP_HAS_SAFETY_OK | SP_HAS_TRIPS |
		 SP_HAS_DOOR_CYCLES | SP_HAS_RUN_S;
	struct sp_lift *x = &r->u.lift;
	x->floor = level_floor(l, nearest_level(l));
	x->dir = l->phase != P_RUN ? SP_DIR_STOP : l->dirn > 0 ? SP_DIR_UP : SP_DIR_DOWN;
	x->door = l->door;
	x->door_zone = in_zone(l);
	x->occupied = l->occupied;
	x->mode = inspection(l) ? SP_MODE_INSPECTION : SP_MODE_NORMAL;
	x->speed = l->phase == P_RUN ? sim_round2(l->v) : 0;
	x->power = has(l, SIM_ON_BATTERY) ? SP_POWER_BATTERY : SP_POWER_MAINS;
	x->safety_ok = !has(l, SIM_SAFETY_OPEN);
	x->trips = l->trips;
	x->door_cycles = l->door_cycles;
	x->run_s = (int64_t)l->run_s;
}

static bool changed(const struct sp_lift *a, const struct sp_lift *b)
{
	return a->floor != b->floor || a->dir != b->dir || a->door != b->door ||
	       a->door_zone != b->door_zone || a->occupied != b->occupied || a->mode != b->mode ||
	       a->power != b->power || a->safety_ok != b->safety_ok;
}

void sim_lift_report(struct sim_lift *l, const struct sim_out *o)
{
	struct sp_record r;

	fill(l, &r, o->ts);
	bool due = !l->reported || sim_out_hb_due(o, l->next_hb);
	if (!due && !changed(&r.u.lift, &l->last) && l->drive == l->last_drive)
		return;
	if (!sim_out_send(o, &r))
		return;
	/* after a catch-up (start, end of a silence) devices would beat together: spread them */
	bool late = !l->reported || o->clock_ms > l->next_hb;
	l->next_hb = o->clock_ms + (late ? l->hb_phase_ms : o->hb_ms);
	l->last = r.u.lift;
	l->last_drive = l->drive;
	l->reported = true;
}

/* ---------------------------------------------------------------- lifecycle */

struct sim_lift *sim_lift_create(int index, const struct sim_params *p)
{
	struct sim_lift *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;

	snprintf(l->dev, sizeof(l->dev), "lift-%d", index + 1);
	sim_rng_seed(&l->rng, p->seed, (uint64_t)index + 1);
	l->floor_min = p->floor_min;
	l->floor_max = p->floor_max;
	l->skip0 = p->floor_min < 0 && p->floor_max > 0;
	l->nlevels = p->floor_max - p->floor_min + 1 - (l->skip0 ? 1 : 0);
	l->floor_h = 2.8 + 0.05 * sim_rng_int(&l->rng, 7); /* 2.8 .. 3.1 m */
	l->rated = p->rated_speed;
	l->home = 0;
	for (int lv = 0; lv < l->nlevels; lv++)
		if (level_floor(l, lv) == 1)
			l->home = lv;

	int lv = sim_rng_chance(&l->rng, 0.6) ? l->home : sim_rng_int(&l->rng, l->nlevels);
	l->pos = level_pos(l, lv);
	l->phase = P_IDLE;
	l->door = SP_DOOR_CLOSED;
	l->dest = l->call_from = l->call_to = -1;
	l->call_clock = sim_rng_exp(&l->rng, 1.0);
	l->maint_in = sim_rng_exp(&l->rng, MAINT_GAP_S);

	/* installed 1-6 years ago, with about the traffic simulated here: 400-900 runs a day */
	double days = sim_rng_range(&l->rng, 365, 6 * 365);
	l->trips = (int64_t)(days * sim_rng_range(&l->rng, 400, 900));
	l->door_cycles = (int64_t)(l->trips * sim_rng_range(&l->rng, 1.15, 1.35));
	l->run_s = floor(l->trips * sim_rng_range(&l->rng, 9, 14));

	l->hb_phase_ms = (int64_t)(p->heartbeat_s * 1000.0 * sim_rng_range(&l->rng, 0.3, 1.0));
	return l;
}

void sim_lift_destroy(struct sim_lift *l)
{
	free(l);
}

void sim_lift_info(const struct sim_lift *l, struct sp_device_info *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->dev, l->dev, sizeof(out->dev));
	out->kind = SP_DEV_LIFT;
	out->floor_min = l->floor_min;
	out->floor_max = l->floor_max;
	out->rated_speed = l->rated;
	out->rated_load = RATED_LOAD_KG;
}
