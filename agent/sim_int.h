/*
 * sim_int.h - private interface between the parts of the simulator:
 *   sim.c          the site: parameters, clock, scenarios, heartbeats, public API
 *   sim_lift.c     one lift (struct sim_lift)
 *   sim_charger.c  one charging pile and its ports (struct sim_charger)
 *
 * Nothing here is used outside agent/sim*.c. Each device owns its own
 * random generator, seeded from the site seed and the device's index, so a
 * device behaves the same whatever else is on the site.
 */
#ifndef SP_AGENT_SIM_INT_H
#define SP_AGENT_SIM_INT_H

#include "sim.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#define SIM_BIT(situation) (1u << (situation))

/* ---------------------------------------------------------------- PRNG */

/* xoshiro256** (Blackman & Vigna), state filled by splitmix64. */
struct sim_rng {
	uint64_t s[4];
};

static inline uint64_t sim_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Seeds r for the stream-th device of the site with this seed. */
static inline void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
	for (int i = 0; i < 4; i++)
		r->s[i] = sim_splitmix64(&x);
}

static inline uint64_t sim_rng_next(struct sim_rng *r)
{
	uint64_t *s = r->s;
	uint64_t x = s[1] * 5;
	uint64_t result = ((x << 7) | (x >> 57)) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return result;
}

/* Uniform in [0, 1). */
static inline double sim_rng_unit(struct sim_rng *r)
{
	return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [lo, hi). */
static inline double sim_rng_range(struct sim_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * sim_rng_unit(r);
}

/* Exponentially distributed with this mean. */
static inline double sim_rng_exp(struct sim_rng *r, double mean)
{
	return -mean * log(1.0 - sim_rng_unit(r));
}

static inline bool sim_rng_chance(struct sim_rng *r, double p)
{
	return sim_rng_unit(r) < p;
}

/* Uniform integer in 0..n-1 (n >= 1). */
static inline int sim_rng_int(struct sim_rng *r, int n)
{
	return (int)(sim_rng_unit(r) * n);
}

/* ---------------------------------------------------------------- output of one step */

/*
 * What a device needs to report during one sim_step. emit is NULL while the
 * gateway is silent: records are then dropped and the device does not count
 * them as reported, so it reports its state again when the silence ends.
 */
struct sim_out {
	sim_emit_fn emit;
	void *ctx;
	int64_t ts;       /* now_ms of the step: the ts of every record */
	int64_t clock_ms; /* real ms since the start, never going back (heartbeats) */
	int64_t step_ms;  /* length of this step: a heartbeat goes one step early, never late */
	int64_t hb_ms;    /* heartbeat interval */
	double hour;      /* simulated local time of day (UTC+8), hours in [0, 24) */
};

/* Sends r; false if nothing was sent (silent). */
static inline bool sim_out_send(const struct sim_out *o, const struct sp_record *r)
{
	if (o->emit == NULL)
		return false;
	o->emit(o->ctx, r);
	return true;
}

/* True when a heartbeat scheduled at next_ms must go out in this step. */
static inline bool sim_out_hb_due(const struct sim_out *o, int64_t next_ms)
{
	return o->clock_ms + o->step_ms > next_ms;
}

/* Local hour of day in Asia/Shanghai (UTC+8, no DST) at wall clock ms. */
static inline double sim_local_hour(double ms)
{
	double h = fmod((ms / 1000.0 + 8 * 3600.0) / 3600.0, 24.0);
	return h < 0 ? h + 24.0 : h;
}

static inline double sim_round1(double x)
{
	return round(x * 10.0) / 10.0;
}

static inline double sim_round2(double x)
{
	return round(x * 100.0) / 100.0;
}

/* ---------------------------------------------------------------- lifts (sim_lift.c) */

struct sim_lift;

/* Creates lift number index (0-based, named lift-{index+1}); NULL if out of memory. */
struct sim_lift *sim_lift_create(int index, const struct sim_params *p);
void sim_lift_destroy(struct sim_lift *l);
void sim_lift_info(const struct sim_lift *l, struct sp_device_info *out);
/* Sets the situations now active on the lift (SIM_BIT mask); acts on those starting. */
void sim_lift_situations(struct sim_lift *l, uint32_t mask);
/* Advances the lift by dt simulated seconds. */
void sim_lift_advance(struct sim_lift *l, double dt, double hour);
/* Emits a lift record if the reported state changed or a heartbeat is due. */
void sim_lift_report(struct sim_lift *l, const struct sim_out *o);

/* ---------------------------------------------------------------- chargers (sim_charger.c) */

struct sim_charger;

/* Creates charger number index (named chg-{index+1}); NULL if out of memory. */
struct sim_charger *sim_charger_create(int index, const struct sim_params *p, int64_t start_ms);
void sim_charger_destroy(struct sim_charger *c);
void sim_charger_info(const struct sim_charger *c, struct sp_device_info *out);
/* Number of ports. */
int sim_charger_ports(const struct sim_charger *c);
/*
 * Applies what happened since the last step: the situations now active on
 * the station (mask) and on each port (port_masks[0..ports-1]), and the
 * pending port_off commands. May emit session records.
 */
void sim_charger_apply(struct sim_charger *c, uint32_t mask, const uint32_t *port_masks,
		       const struct sim_out *o);
/*
 * Advances by dt simulated seconds (o->hour: local time at the start of
 * them), emitting port, session and fault records on change.
 */
void sim_charger_advance(struct sim_charger *c, double dt, const struct sim_out *o);
/* Emits the station record and all port records if a heartbeat is due. */
void sim_charger_report(struct sim_charger *c, const struct sim_out *o);
/* Queues a port_off command for port (1-based, valid) until the next step. */
void sim_charger_port_off(struct sim_charger *c, int port);
/* Disables port (1-based, valid) at once, without a session record (sim_port_keep_off). */
void sim_charger_port_keep_off(struct sim_charger *c, int port);
/*
 * A port_on command for port (1-based, valid): a port off by a port_off (or
 * one queued) is in service again at once. 0, or 1 if it was not off by a
 * command (nothing changed).
 */
int sim_charger_port_on(struct sim_charger *c, int port);

#endif
