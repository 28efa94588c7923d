/*
 * sim_charger.c - one simulated e-bike charging pile (a station with N
 * sockets) of a residential compound.
 *
 * E-bikes arrive at the pile as a Poisson process (a few sessions per port
 * per day, most in the evening, local time UTC+8) and take a free port.
 * A port then goes
 *
 *   idle -> plugged (3-10 s, the user scans the code) -> charging -> full -> idle
 *
 * Charging is constant current (1.5-3 A at ~220 V) until the battery is at
 * ~85 %, then a constant-voltage taper (exponential decay of the current)
 * until it falls below 0.15 A: the pile declares the battery full and ends
 * the session; the bike stays plugged until its owner comes back. Some
 * owners unplug early; a worn battery whose current never tapers off hits
 * the 8 h limit. Port temperature follows the current with a 10 min time
 * constant. Situations (sim.h) force a session and heat or overload a port,
 * or act on the whole station (smoke, residual current).
 *
 * The pile is advanced in steps of about one simulated second: nothing on a
 * charger changes faster, and it keeps 64 piles x 64 ports cheap at high
 * time scales.
 *
 * Reporting: a port record on a change of state, of w by more than 10 %
 * (and 5 W) or of temp_c by 1 °C; a station record on a change of smoke,
 * door_open or leak_ma by 5 mA; session and fault records when they
 * happen; the station and every port at each heartbeat.
 */
#include "sim_int.h"

#include "sitepulse/codec.h"
#include "sitepulse/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEP_S 1.0             /* simulated seconds per charger step */
#define STEPS_MAX 50           /* charger steps per sim_step at most */
#define SESSIONS_PER_DAY 3.0   /* per port, in a factor-1 hour */
#define LIMIT_S (8 * 3600.0)   /* Beijing guidance: one charge should not exceed 8 h */
#define FULL_A 0.15            /* taper current at which the battery is declared full */
#define EFFICIENCY 0.85        /* charger: mains W to battery W */
#define SOC_CV 0.85            /* state of charge where the CC phase ends */
#define THERMAL_TAU_S 600.0    /* socket and plug warm up and cool down slowly */
#define OVERHEAT_TAU_S 4.0     /* a bad contact heats up fast */
#define COOL_TAU_S 45.0        /* a hot contact cut off cools fast at first */
#define OVER_TEMP_C 70.0       /* fault raised above this */
#define OVER_TEMP_CLEAR_C 60.0 /* and cleared below this */
#define OVERPOWER 1.3          /* x port_limit_w in SIM_PORT_OVERPOWER */
#define LEAK_REPORT_MA 5.0     /* leak_ma change reported at once */
#define NOMINAL_V 220.0
#define SESSION_WH_MAX 100000.0 /* only a never-ending forced session gets there */
#define TWO_PI 6.283185307179586

/* Relative arrival rate per local hour: people plug in when they come home. */
static const double hour_factor[24] = {
	0.3, 0.2, 0.2, 0.2, 0.2, 0.3, 0.6, 0.9, 1.0, 0.8, 0.7, 0.8,
	1.1, 1.0, 0.7, 0.7, 0.8, 1.2, 1.9, 2.4, 2.4, 2.0, 1.4, 0.8};

struct port {
	int no;                /* 1-based */
	enum sp_port_state state;
	double a;              /* A drawn now */
	double temp;           /* °C */
	double wh;             /* energy of the current or last session */
	/* session */
	int64_t start_ms;      /* wall clock of the plug-in */
	double sess_s;         /* simulated s since the plug-in */
	double chg_s;          /* simulated s charging */
	double left;           /* s left plugged before charging, full before unplug, in fault */
	double i_cc;           /* A in the constant current phase */
	double t_cc;           /* s of constant current */
	double tau;            /* s, time constant of the taper */
	double i_float;        /* A the taper tends to (0, or > FULL_A for a worn battery) */
	double unplug_at;      /* sess_s at which the owner unplugs early, < 0 never */
	double hot_c;          /* temperature reached in SIM_PORT_OVERHEAT */
	bool over_temp;        /* over_temp fault raised */
	bool remote_off;       /* disabled by a port_off command, until a port_on */
	bool off_pending;      /* port_off received, applied at the next step */
	uint32_t sc;           /* situations on this port */
	struct sp_port last;   /* as last reported */
};

struct sim_charger {
	char dev[SP_ID_MAX + 1];
	struct sim_rng rng;
	int nports;
	double limit_w;
	struct port *ports;
	/* station */
	double supply_v, ambient, amb_base, amb_walk;
	double leak, leak_base, leak_fault;
	double energy_wh;      /* lifetime, fractional */
	double arrive_clock;   /* Exp(1) budget until the next e-bike */
	double pending_s;      /* simulated time not yet stepped */
	uint32_t sc;           /* station situations */
	/* reporting */
	bool beat;             /* the first heartbeat went out: changes are reported from then on */
	struct sp_station last;
	int64_t next_hb;
	int64_t hb_phase_ms;
};

static bool in_session(const struct port *p)
{
	return p->state == SP_PORT_PLUGGED || p->state == SP_PORT_CHARGING;
}

static bool forced(const struct port *p)
{
	return (p->sc & (SIM_BIT(SIM_PORT_OVERHEAT) | SIM_BIT(SIM_PORT_OVERPOWER))) != 0;
}

/* Whether the pile can power ports at all. */
static bool station_ok(const struct sim_charger *c)
{
	return !(c->sc & (SIM_BIT(SIM_SMOKE) | SIM_BIT(SIM_RESIDUAL_CURRENT)));
}

static double port_v(const struct sim_charger *c)
{
	return sim_round1(c->supply_v);
}

/* ---------------------------------------------------------------- records */

static void fill_head(struct sp_record *r, enum sp_rec_kind kind, const struct sim_charger *c,
		      int64_t ts)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	memcpy(r->dev, c->dev, sizeof(r->dev));
	r->ts = ts;
}

static void fill_port(const struct sim_charger *c, const struct port *p, struct sp_record *r,
		      int64_t ts)
{
	fill_head(r, SP_REC_PORT, c, ts);
	r->has = SP_HAS_V | SP_HAS_A | SP_HAS_W | SP_HAS_TEMP_C | SP_HAS_SESSION_WH;
	struct sp_port *x = &r->u.port;
	x->port = p->no;
	x->state = p->state;
	x->v = port_v(c);
	x->a = sim_round2(p->a);
	x->w = sim_round1(x->v * x->a);
	x->temp_c = sim_round1(p->temp);
	x->session_wh = sim_round1(p->wh);
}

static void port_report(struct sim_charger *c, struct port *p, const struct sim_out *o,
			bool force)
{
	struct sp_record r;

	if (!force && !c->beat)
		return; /* the first heartbeat reports everything */
	fill_port(c, p, &r, o->ts);
	const struct sp_port *x = &r.u.port, *y = &p->last;
	bool changed = x->state != y->state ||
		       fabs(x->w - y->w) > fmax(0.1 * y->w, 5.0) ||
		       fabs(x->temp_c - y->temp_c) >= 1.0 - 1e-9;
	if (!force && !changed)
		return;
	if (!sim_out_send(o, &r))
		return;
	p->last = *x;
}

static void fill_station(const struct sim_charger *c, struct sp_record *r, int64_t ts)
{
	fill_head(r, SP_REC_STATION, c, ts);
	r->has = SP_HAS_POWER_W | SP_HAS_SUPPLY_V | SP_HAS_AMBIENT_C | SP_HAS_LEAK_MA |
		 SP_HAS_DOOR_OPEN | SP_HAS_ENERGY_WH;
	struct sp_station *x = &r->u.station;
	double w = 0;
	for (int i = 0; i < c->nports; i++)
		w += sim_round1(port_v(c) * sim_round2(c->ports[i].a));
	x->smoke = (c->sc & SIM_BIT(SIM_SMOKE)) != 0;
	x->power_w = sim_round1(w);
	x->supply_v = sim_round1(c->supply_v);
	x->ambient_c = sim_round1(c->ambient);
	x->leak_ma = sim_round1(c->leak);
	x->door_open = false;
	x->energy_wh = (int64_t)c->energy_wh;
}

/* Station record on a change; force for the heartbeat. False if it could not be sent. */
static bool station_report(struct sim_charger *c, const struct sim_out *o, bool force)
{
	struct sp_record r;

	if (!force && !c->beat)
		return true;
	fill_station(c, &r, o->ts);
	const struct sp_station *x = &r.u.station, *y = &c->last;
	bool changed = x->smoke != y->smoke || x->door_open != y->door_open ||
		       fabs(x->leak_ma - y->leak_ma) >= LEAK_REPORT_MA;
	if (!force && !changed)
		return true;
	if (!sim_out_send(o, &r))
		return false;
	c->last = *x;
	return true;
}

static void end_session(struct sim_charger *c, struct port *p, enum sp_stop_reason reason,
			const struct sim_out *o)
{
	struct sp_record r;

	fill_head(&r, SP_REC_SESSION, c, o->ts);
	r.u.session.port = p->no;
	r.u.session.start = p->start_ms;
	/* the wall clock may have stepped back since the start */
	r.u.session.end = o->ts > p->start_ms ? o->ts : p->start_ms;
	r.u.session.wh = sim_round1(p->wh);
	r.u.session.reason = reason;
	sim_out_send(o, &r);
	p->a = 0;
}

static void fault_record(struct sim_charger *c, const struct port *p, bool active,
			 const struct sim_out *o)
{
	struct sp_record r;

	fill_head(&r, SP_REC_FAULT, c, o->ts);
	r.has = SP_HAS_PORT | SP_HAS_DETAIL;
	snprintf(r.u.fault.code, sizeof(r.u.fault.code), "over_temp");
	r.u.fault.active = active;
	r.u.fault.port = p->no;
	snprintf(r.u.fault.detail, sizeof(r.u.fault.detail), "port %d at %.1f \xc2\xb0" "C", p->no,
		 sim_round1(p->temp));
	sim_out_send(o, &r);
}

/* ---------------------------------------------------------------- sessions */

static void to_idle(struct port *p)
{
	p->state = SP_PORT_IDLE;
	p->a = 0;
	p->wh = 0;
}

/* Draws the battery and the owner of a new session plugged in at o->ts. */
static void begin_session(struct sim_charger *c, struct port *p, const struct sim_out *o)
{
	struct sim_rng *rng = &c->rng;
	/* normal charging always stays under the port limit: the pile would cut it otherwise */
	double amax = 0.9 * c->limit_w / NOMINAL_V;
	double cap_wh = sim_rng_range(rng, 400, 1400); /* 48 V 10-28 Ah */
	double soc0 = sim_rng_range(rng, 0.1, 0.7);

	p->state = SP_PORT_PLUGGED;
	p->start_ms = o->ts;
	p->sess_s = p->chg_s = 0;
	p->wh = 0;
	p->a = 0;
	p->left = sim_rng_range(rng, 3, 10);
	p->i_cc = fmin(sim_rng_range(rng, 1.5, 3.0), amax);
	double battery_w = NOMINAL_V * p->i_cc * EFFICIENCY;
	p->t_cc = fmax(60, (SOC_CV - soc0) * cap_wh / battery_w * 3600);
	p->tau = (1 - SOC_CV) * cap_wh / battery_w * 3600;
	p->i_float = sim_rng_chance(rng, 0.06) ? sim_rng_range(rng, 0.18, 0.3) : 0;
	p->unplug_at = sim_rng_chance(rng, 0.15) ? sim_rng_range(rng, 600, 3 * 3600) : -1;
}

/* A situation needs this port charging now. */
static void force_charging(struct sim_charger *c, struct port *p, const struct sim_out *o)
{
	if (p->state == SP_PORT_DISABLED || p->state == SP_PORT_CHARGING || !station_ok(c))
		return;
	if (p->state != SP_PORT_PLUGGED)
		begin_session(c, p, o);
	p->state = SP_PORT_CHARGING;
	p->chg_s = 0;
	p->a = p->i_cc;
}

static void charge_step(struct sim_charger *c, struct port *p, double dt, const struct sim_out *o)
{
	p->sess_s += dt;
	p->chg_s += dt;
	if (p->sc & SIM_BIT(SIM_PORT_OVERPOWER))
		p->a = OVERPOWER * c->limit_w / c->supply_v;
	else if (p->chg_s < p->t_cc)
		p->a = p->i_cc * (1 + 0.01 * (sim_rng_unit(&c->rng) - 0.5)); /* ripple */
	else
		p->a = p->i_float +
		       (p->i_cc - p->i_float) * exp(-(p->chg_s - p->t_cc) / p->tau);
	/* a long step (high time scale) charges no longer than the session can last */
	double t = forced(p) ? dt : fmin(dt, fmax(LIMIT_S - (p->sess_s - dt), 0));
	double wh = c->supply_v * p->a * t / 3600;
	p->wh = fmin(p->wh + wh, SESSION_WH_MAX);
	c->energy_wh += wh;
	if (forced(p))
		return; /* the situation keeps it charging until it ends */
	if (p->a < FULL_A) {
		end_session(c, p, SP_STOP_FULL, o);
		p->state = SP_PORT_FULL;
		/* the owner comes back later, often the next morning */
		p->left = fmin(fmax(sim_rng_exp(&c->rng, 2 * 3600), 300), 12 * 3600);
	} else if (p->sess_s >= LIMIT_S) {
		end_session(c, p, SP_STOP_LIMIT, o);
		to_idle(p);
	} else if (p->unplug_at >= 0 && p->sess_s >= p->unplug_at) {
		end_session(c, p, SP_STOP_UNPLUGGED, o);
		to_idle(p);
	}
}

static void heat_step(struct sim_charger *c, struct port *p, double dt, const struct sim_out *o)
{
	double target = c->ambient, tau = THERMAL_TAU_S;

	if (p->state == SP_PORT_CHARGING) {
		target += fmin(4.0 * p->a, 25.0);
		if (p->sc & SIM_BIT(SIM_PORT_OVERHEAT)) {
			target = p->hot_c;
			tau = OVERHEAT_TAU_S;
		}
	} else if (p->temp > target + 15) {
		tau = COOL_TAU_S;
	}
	p->temp = target + (p->temp - target) * exp(-dt / tau);

	double t = sim_round1(p->temp);
	if (!p->over_temp && t > OVER_TEMP_C) {
		p->over_temp = true;
		fault_record(c, p, true, o);
	} else if (p->over_temp && t < OVER_TEMP_CLEAR_C) {
		p->over_temp = false;
		fault_record(c, p, false, o);
	}
}

static void port_step(struct sim_charger *c, struct port *p, double dt, const struct sim_out *o)
{
	heat_step(c, p, dt, o);
	switch (p->state) {
	case SP_PORT_PLUGGED:
		p->sess_s += dt;
		if ((p->left -= dt) <= 0) {
			p->state = SP_PORT_CHARGING;
			p->chg_s = 0;
			p->a = p->i_cc;
		}
		break;
	case SP_PORT_CHARGING:
		charge_step(c, p, dt, o);
		break;
	case SP_PORT_FULL:
		if ((p->left -= dt) <= 0)
			to_idle(p);
		break;
	case SP_PORT_FAULT:
		if ((p->left -= dt) <= 0 && !p->over_temp)
			to_idle(p);
		break;
	default:
		break;
	}
	port_report(c, p, o, false);
}

/* ---------------------------------------------------------------- station */

/* Ambient: a daily swing peaking at 15:00 plus weather drifting slowly. */
static double ambient_at(const struct sim_charger *c, double hour)
{
	double t = c->amb_base + 4 * cos((hour - 15) / 24 * TWO_PI) + c->amb_walk;
	return fmin(fmax(t, 15.0), 30.0);
}

static void station_step(struct sim_charger *c, double dt, double hour)
{
	struct sim_rng *rng = &c->rng;
	double sq = sqrt(dt);
	int charging = 0;

	for (int i = 0; i < c->nports; i++)
		charging += c->ports[i].state == SP_PORT_CHARGING;
	/* supply: a slow random walk pulled back to ~220 V, sagging a little under load */
	c->supply_v += (220.5 - 0.15 * charging - c->supply_v) * fmin(dt / 900, 1.0) +
		       (sim_rng_unit(rng) - 0.5) * 0.3 * sq;
	c->supply_v = fmin(fmax(c->supply_v, 215.5), 225.0);
	c->amb_walk += (sim_rng_unit(rng) - 0.5) * 0.02 * sq;
	c->amb_walk = fmin(fmax(c->amb_walk, -2.0), 2.0);
	c->ambient = ambient_at(c, hour);
	/* residual current: insulation leakage grows with the number of chargers powered */
	if (c->sc & SIM_BIT(SIM_RESIDUAL_CURRENT))
		c->leak = c->leak_fault + sim_rng_range(rng, -1, 1);
	else
		c->leak = fmin(fmax(c->leak_base + 0.3 * charging + sim_rng_range(rng, -0.2, 0.2),
				    0.5), 5.0);
}

static void arrivals(struct sim_charger *c, double dt, double hour, const struct sim_out *o)
{
	int h = (int)hour;
	double factor = hour_factor[h < 0 ? 0 : h > 23 ? 23 : h];
	double rate = c->nports * SESSIONS_PER_DAY / 86400 * factor; /* e-bikes per second */
	c->arrive_clock -= dt * rate;
	if (c->arrive_clock > 0)
		return;
	c->arrive_clock = sim_rng_exp(&c->rng, 1.0);
	if (!station_ok(c))
		return;
	int idle = 0;
	for (int i = 0; i < c->nports; i++)
		idle += c->ports[i].state == SP_PORT_IDLE;
	if (idle == 0)
		return; /* all taken: the rider goes elsewhere */
	int k = sim_rng_int(&c->rng, idle);
	for (int i = 0; i < c->nports; i++) {
		if (c->ports[i].state == SP_PORT_IDLE && k-- == 0) {
			begin_session(c, &c->ports[i], o);
			return;
		}
	}
}

void sim_charger_advance(struct sim_charger *c, double dt, const struct sim_out *o)
{
	c->pending_s += dt;
	if (c->pending_s < STEP_S)
		return;
	/* at high time scales the steps get longer, not more numerous */
	double step = fmax(STEP_S, c->pending_s / STEPS_MAX);
	int n = (int)(c->pending_s / step);
	for (int k = 0; k < n; k++) {
		double hour = fmod(o->hour + k * step / 3600, 24.0);
		station_step(c, step, hour);
		arrivals(c, step, hour, o);
		for (int i = 0; i < c->nports; i++)
			port_step(c, &c->ports[i], step, o);
		station_report(c, o, false);
	}
	c->pending_s -= n * step;
}

void sim_charger_apply(struct sim_charger *c, uint32_t mask, const uint32_t *port_masks,
		       const struct sim_out *o)
{
	uint32_t on = mask & ~c->sc, off = c->sc & ~mask;

	c->sc = mask;
	if (on & SIM_BIT(SIM_SMOKE)) {
		/* the pile cuts every port */
		for (int i = 0; i < c->nports; i++) {
			struct port *p = &c->ports[i];
			if (in_session(p))
				end_session(c, p, SP_STOP_SMOKE, o);
			p->state = SP_PORT_DISABLED;
			p->a = 0;
			p->wh = 0;
		}
	} else if (off & SIM_BIT(SIM_SMOKE)) {
		for (int i = 0; i < c->nports; i++)
			if (c->ports[i].state == SP_PORT_DISABLED && !c->ports[i].remote_off)
				to_idle(&c->ports[i]);
	}
	if (on & SIM_BIT(SIM_RESIDUAL_CURRENT)) {
		/* the RCD trips: charging stops until it is reset */
		c->leak_fault = sim_rng_range(&c->rng, 36, 44);
		c->leak = c->leak_fault;
		for (int i = 0; i < c->nports; i++) {
			if (in_session(&c->ports[i])) {
				end_session(c, &c->ports[i], SP_STOP_LEAKAGE, o);
				to_idle(&c->ports[i]);
			}
		}
	} else if (off & SIM_BIT(SIM_RESIDUAL_CURRENT)) {
		c->leak = c->leak_base;
	}

	for (int i = 0; i < c->nports; i++) {
		struct port *p = &c->ports[i];
		uint32_t pon = port_masks[i] & ~p->sc, poff = p->sc & ~port_masks[i];
		p->sc = port_masks[i];
		if (pon & SIM_BIT(SIM_PORT_OVERHEAT))
			p->hot_c = sim_rng_range(&c->rng, 78, 88);
		if (pon & (SIM_BIT(SIM_PORT_OVERHEAT) | SIM_BIT(SIM_PORT_OVERPOWER)))
			force_charging(c, p, o);
		if (p->state == SP_PORT_CHARGING && !forced(p) &&
		    (poff & (SIM_BIT(SIM_PORT_OVERHEAT) | SIM_BIT(SIM_PORT_OVERPOWER)))) {
			/* the pile itself cuts the port when the situation ends */
			bool hot = poff & SIM_BIT(SIM_PORT_OVERHEAT);
			end_session(c, p, hot ? SP_STOP_OVER_TEMP : SP_STOP_OVERCURRENT, o);
			p->state = SP_PORT_FAULT;
			p->left = hot ? 5 : 10; /* over_temp also waits for the contact to cool */
		}
		if (p->off_pending) {
			p->off_pending = false;
			p->remote_off = true;
			if (in_session(p))
				end_session(c, p, SP_STOP_REMOTE, o);
			p->state = SP_PORT_DISABLED;
			p->a = 0;
			p->wh = 0;
		}
		port_report(c, p, o, false);
	}
	station_report(c, o, false);
}

void sim_charger_report(struct sim_charger *c, const struct sim_out *o)
{
	if (c->beat && !sim_out_hb_due(o, c->next_hb))
		return;
	/* after a catch-up (start, end of a silence) devices would beat together: spread them */
	bool late = !c->beat || o->clock_ms > c->next_hb;
	if (!station_report(c, o, true))
		return;
	for (int i = 0; i < c->nports; i++)
		port_report(c, &c->ports[i], o, true);
	c->next_hb = o->clock_ms + (late ? c->hb_phase_ms : o->hb_ms);
	c->beat = true;
}

void sim_charger_port_off(struct sim_charger *c, int port)
{
	c->ports[port - 1].off_pending = true;
}

void sim_charger_port_keep_off(struct sim_charger *c, int port)
{
	struct port *p = &c->ports[port - 1];
	p->off_pending = false;
	p->remote_off = true;
	p->state = SP_PORT_DISABLED;
	p->a = 0;
	p->wh = 0;
}

/*
 * A port_on command: a port a port_off turned off (or is about to: a
 * port_off of the same tick) is in service again. Nothing else is touched:
 * a port the pile itself disabled (smoke) comes back when the smoke clears,
 * as every other; a port still above the over_temp clear point goes to
 * fault, as after a cut-off, and idle once it has cooled (the pile's own
 * protection does not yield to a remote command). The next step reports the
 * change (port_report compares the state with the last reported).
 */
int sim_charger_port_on(struct sim_charger *c, int port)
{
	struct port *p = &c->ports[port - 1];
	if (!p->remote_off && !p->off_pending)
		return 1;
	bool was_off = p->remote_off;
	p->off_pending = false;
	p->remote_off = false;
	if (!was_off || p->state != SP_PORT_DISABLED)
		return 0; /* a port_off not yet applied: the port never left service */
	if (c->sc & SIM_BIT(SIM_SMOKE))
		return 0; /* disabled by the pile until the smoke clears (sim_charger_apply) */
	to_idle(p);
	if (p->over_temp) {
		p->state = SP_PORT_FAULT;
		p->left = 0;
	}
	return 0;
}

/* ---------------------------------------------------------------- lifecycle */

/* Some ports are busy when the gateway starts: charging since a while, or full. */
static void initial_port(struct sim_charger *c, struct port *p, const struct sim_params *sp,
			 int64_t start_ms)
{
	double u = sim_rng_unit(&c->rng);
	struct sim_out o = {NULL, NULL, start_ms, 0, 0, 0, 0};

	p->temp = c->ambient;
	if (u < 0.2) {
		begin_session(c, p, &o);
		double e = sim_rng_range(&c->rng, 0, p->t_cc);
		p->state = SP_PORT_CHARGING;
		p->a = p->i_cc;
		p->chg_s = e;
		p->sess_s = e + p->left;
		p->wh = NOMINAL_V * p->i_cc * e / 3600;
		/* started that long ago in simulated time, i.e. e / time_scale in real time */
		p->start_ms = start_ms - (int64_t)((e + p->left) * 1000 / sp->time_scale);
		if (p->start_ms < SP_TS_MIN && start_ms >= SP_TS_MIN)
			p->start_ms = SP_TS_MIN; /* records before 2020 are rejected */
		p->temp = c->ambient + fmin(4.0 * p->a, 25.0) * (1 - exp(-e / THERMAL_TAU_S));
	} else if (u < 0.3) {
		p->state = SP_PORT_FULL;
		p->wh = sim_round1(sim_rng_range(&c->rng, 150, 900));
		p->left = fmin(sim_rng_exp(&c->rng, 2 * 3600), 12 * 3600);
	}
}

struct sim_charger *sim_charger_create(int index, const struct sim_params *p, int64_t start_ms)
{
	struct sim_charger *c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->ports = calloc((size_t)p->ports, sizeof(*c->ports));
	if (c->ports == NULL)
		goto fail;

	snprintf(c->dev, sizeof(c->dev), "chg-%d", index + 1);
	/* streams 1..64 are the lifts' */
	sim_rng_seed(&c->rng, p->seed, 1000 + (uint64_t)index);
	c->nports = p->ports;
	c->limit_w = p->port_limit_w;
	c->supply_v = sim_rng_range(&c->rng, 217, 224);
	c->amb_base = sim_rng_range(&c->rng, 19, 24);
	c->ambient = ambient_at(c, sim_local_hour((double)start_ms));
	c->leak_base = sim_rng_range(&c->rng, 0.8, 2.5);
	c->leak = c->leak_base;
	/* in service for 200-1000 days, 0.5-1 kWh per port and day */
	c->energy_wh = floor(p->ports * sim_rng_range(&c->rng, 200, 1000) *
			     sim_rng_range(&c->rng, 500, 1000));
	c->arrive_clock = sim_rng_exp(&c->rng, 1.0);
	c->hb_phase_ms = (int64_t)(p->heartbeat_s * 1000.0 * sim_rng_range(&c->rng, 0.3, 1.0));
	for (int i = 0; i < c->nports; i++) {
		c->ports[i].no = i + 1;
		initial_port(c, &c->ports[i], p, start_ms);
	}
	return c;
fail:
	sim_charger_destroy(c);
	return NULL;
}

void sim_charger_destroy(struct sim_charger *c)
{
	if (c == NULL)
		return;
	free(c->ports);
	free(c);
}

int sim_charger_ports(const struct sim_charger *c)
{
	return c->nports;
}

void sim_charger_info(const struct sim_charger *c, struct sp_device_info *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->dev, c->dev, sizeof(out->dev));
	out->kind = SP_DEV_CHARGER;
	out->ports = c->nports;
	out->port_limit_w = c->limit_w;
}
