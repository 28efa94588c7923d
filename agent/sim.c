/*
 * sim.c - the simulated site: parameters, clock, scenarios and the public
 * API of sim.h. The devices themselves live in sim_lift.c and
 * sim_charger.c (sim_int.h is their private interface).
 *
 * Time: sim_step(now_ms) advances the simulated site by (now_ms - previous
 * now_ms) x time_scale: the lifts in substeps of 0.1 simulated second (lift
 * motion and door zones need that), at most SUBSTEPS_MAX per call (beyond
 * that, at time scales over ~60, the substeps get longer rather than the
 * call slower), the chargers in their own coarser steps. Records carry the
 * caller's now_ms; heartbeats and scenario windows are in real time. The
 * time of day that drives call and arrival rates is simulated time,
 * start_ms + simulated seconds, in Asia/Shanghai (UTC+8), so a fast
 * simulation shows whole days.
 *
 * Reporting order within a step: the lifts' records, substep by substep,
 * then the chargers'; all records of a step share its ts. At the first
 * step every device reports its full state (it was never reported); after
 * that each device heartbeats with its own seeded phase, so that devices
 * do not all report in the same tick.
 */
#include "sim_int.h"

#include "sitepulse/ids.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBSTEP_S 0.1
#define SUBSTEPS_MAX 600
#define DEVICES_MAX 64
#define SCENARIOS_MAX 1024
#define SCENARIO_MAX_S (10LL * 366 * 86400) /* at and duration: up to ten years */

/* A scenario with its device resolved. */
struct scen {
	struct sim_scenario sc;
	int lift;    /* index, or -1 */
	int charger; /* index, or -1 */
	int port;    /* 0-based port index for port situations */
};

struct sim {
	struct sim_params p;  /* p.scenarios not kept: see scen */
	struct scen *scen;
	size_t nscen;
	struct sim_lift **lifts;
	struct sim_charger **chargers;
	int64_t start_ms;
	int64_t last_ms;      /* now_ms of the previous step */
	int64_t clock_ms;     /* real ms since start, summed over steps, never going back */
	/* devices whose link is cut now (SIM_LINK_LOST): they report nothing */
	bool lift_lost[DEVICES_MAX], charger_lost[DEVICES_MAX];
	double sim_s;         /* simulated seconds since start */
};

static const char *const situation_names[SIM_SITUATION_COUNT] = {
	"trapped_between_floors", "trapped_at_landing", "door_open_moving", "overspeed",
	"on_battery",             "safety_open",        "inspection",       "port_overheat",
	"port_overpower",         "smoke",              "residual_current", "silent",
	"link_lost"};

const char *sim_situation_name(enum sim_situation s)
{
	return (unsigned)s < SIM_SITUATION_COUNT ? situation_names[s] : "?";
}

int sim_situation_parse(const char *name)
{
	for (int i = 0; name != NULL && i < SIM_SITUATION_COUNT; i++)
		if (strcmp(situation_names[i], name) == 0)
			return i;
	return -1;
}

static bool lift_situation(enum sim_situation s)
{
	return s <= SIM_INSPECTION;
}

static bool port_situation(enum sim_situation s)
{
	return s == SIM_PORT_OVERHEAT || s == SIM_PORT_OVERPOWER;
}

/* ---------------------------------------------------------------- scenario text */

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen,
							const char *fmt, ...)
{
	va_list ap;
	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Parses decimal digits in [s, end) (end NULL: to the NUL) into 0..max. */
static int parse_uint(const char *s, const char *end, long long max, long long *out)
{
	char *stop;

	if (*s < '0' || *s > '9')
		return -1; /* strtoll would accept blanks and signs */
	errno = 0;
	long long v = strtoll(s, &stop, 10);
	if (errno == ERANGE || v > max || (end ? stop != end : *stop != '\0'))
		return -1;
	*out = v;
	return 0;
}

int sim_scenario_parse(const char *text, struct sim_scenario *out, char *err, size_t errlen)
{
	struct sim_scenario sc;
	char name[32];
	long long v;

	memset(&sc, 0, sizeof(sc));
	if (text == NULL)
		return fail(err, errlen, "no scenario");
	const char *colon = strchr(text, ':');
	if (colon == NULL)
		return fail(err, errlen,
			    "\"%s\": expected DEV[/PORT]:SITUATION@AT[+DURATION] (no ':')", text);
	const char *at = strchr(colon + 1, '@');
	if (at == NULL)
		return fail(err, errlen, "\"%s\": missing '@AT' (seconds after the start)", text);

	const char *slash = memchr(text, '/', (size_t)(colon - text));
	size_t devlen = (size_t)((slash ? slash : colon) - text);
	if (devlen > SP_ID_MAX)
		return fail(err, errlen, "\"%s\": device name longer than 64 characters", text);
	memcpy(sc.dev, text, devlen);
	sc.dev[devlen] = '\0';
	if (slash != NULL) {
		if (parse_uint(slash + 1, colon, SP_PORT_MAX, &v) || v < 1)
			return fail(err, errlen, "\"%s\": port must be 1..64", text);
		sc.port = (int32_t)v;
	}

	size_t nlen = (size_t)(at - colon - 1);
	if (nlen >= sizeof(name))
		nlen = sizeof(name) - 1; /* too long for any name: still unknown */
	memcpy(name, colon + 1, nlen);
	name[nlen] = '\0';
	int sit = sim_situation_parse(name);
	if (sit < 0) {
		char names[400];
		size_t n = 0;
		for (int i = 0; i < SIM_SITUATION_COUNT; i++)
			n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "",
					      situation_names[i]);
		return fail(err, errlen, "unknown situation \"%s\" (one of %s)", name, names);
	}
	sc.situation = (enum sim_situation)sit;

	const char *plus = strchr(at + 1, '+');
	if (parse_uint(at + 1, plus, SCENARIO_MAX_S, &v))
		return fail(err, errlen, "\"%s\": AT must be whole seconds (0..316224000)", text);
	sc.at_ms = v * 1000;
	if (plus != NULL) {
		if (parse_uint(plus + 1, NULL, SCENARIO_MAX_S, &v))
			return fail(err, errlen,
				    "\"%s\": DURATION must be whole seconds (0..316224000)", text);
		sc.duration_ms = v * 1000;
	}

	if (sc.situation == SIM_SILENT) {
		if (devlen != 0 || slash != NULL)
			return fail(err, errlen,
				    "\"%s\": silent is the whole gateway: leave DEV empty", text);
	} else {
		if (devlen == 0)
			return fail(err, errlen,
				    "\"%s\": a device is required (only silent has none)", text);
		if (!sp_id_valid_str(sc.dev))
			return fail(err, errlen,
				    "\"%s\": DEV is not a valid identifier ([a-z0-9_-])", text);
		if (slash != NULL && !port_situation(sc.situation))
			return fail(err, errlen, "\"%s\": a port only goes with port_overheat or "
						 "port_overpower", text);
	}
	*out = sc;
	return 0;
}

/* ---------------------------------------------------------------- creation */

/* Index of device "PREFIX-N" with 1 <= N <= n, or -1. */
static int dev_index(const char *dev, const char *prefix, int n)
{
	size_t len = strlen(prefix);
	long long v;

	if (strncmp(dev, prefix, len) != 0 || dev[len] == '0' ||
	    parse_uint(dev + len, NULL, n, &v) || v < 1)
		return -1;
	return (int)v - 1;
}

/* "lift-1..lift-N" (or "no lifts"), for messages. */
static void dev_range(char *buf, size_t len, const char *prefix, int n, const char *key)
{
	if (n > 0)
		snprintf(buf, len, "%s1..%s%d", prefix, prefix, n);
	else
		snprintf(buf, len, "none: [sim] %s = 0", key);
}

/*
 * Resolves a scenario's device and port against the site (sim_scenario_check
 * says what it checks). out may be NULL. NULL, or the failing field with a
 * message in err.
 */
static const char *resolve(const struct sim_params *p, const struct sim_scenario *in,
			   struct scen *out, char *err, size_t errlen)
{
	struct scen x = {.sc = *in, .lift = -1, .charger = -1, .port = 0};
	char lifts[64], chargers[64];

	if ((unsigned)in->situation >= SIM_SITUATION_COUNT)
		return fail(err, errlen, "unknown situation"), "situation";
	if (in->at_ms < 0 || in->at_ms > SCENARIO_MAX_S * 1000)
		return fail(err, errlen, "at most %lld s", SCENARIO_MAX_S), "at";
	if (in->duration_ms < 0 || in->duration_ms > SCENARIO_MAX_S * 1000)
		return fail(err, errlen, "at most %lld s", SCENARIO_MAX_S), "duration";
	if (in->situation == SIM_SILENT) /* the gateway: dev and port do not apply */
		goto ok;
	if (memchr(in->dev, '\0', sizeof(in->dev)) == NULL)
		return fail(err, errlen, "too long"), "dev";
	if (in->port != 0 && !port_situation(in->situation))
		return fail(err, errlen, "a port only goes with port_overheat or port_overpower, "
					 "not %s", situation_names[in->situation]), "port";
	dev_range(lifts, sizeof(lifts), "lift-", p->lifts, "lifts");
	dev_range(chargers, sizeof(chargers), "chg-", p->chargers, "chargers");
	if (in->situation == SIM_LINK_LOST) { /* either kind */
		x.lift = dev_index(in->dev, "lift-", p->lifts);
		if (x.lift < 0)
			x.charger = dev_index(in->dev, "chg-", p->chargers);
		if (x.lift < 0 && x.charger < 0)
			return fail(err, errlen, "no device \"%s\" on this site (lifts: %s; chargers: "
						 "%s)", in->dev, lifts, chargers), "dev";
		goto ok;
	}
	if (lift_situation(in->situation)) {
		x.lift = dev_index(in->dev, "lift-", p->lifts);
		if (x.lift < 0)
			return fail(err, errlen, "%s happens to a lift: no lift \"%s\" on this site "
						 "(lifts: %s)", situation_names[in->situation],
				    in->dev, lifts), "dev";
		goto ok;
	}
	x.charger = dev_index(in->dev, "chg-", p->chargers);
	if (x.charger < 0)
		return fail(err, errlen, "%s happens to a charger: no charger \"%s\" on this site "
					 "(chargers: %s)", situation_names[in->situation],
			    in->dev, chargers), "dev";
	if (port_situation(in->situation)) {
		if (in->port < 0 || in->port > p->ports)
			return fail(err, errlen, "no port %d: the chargers have %d ([sim] ports)",
				    (int)in->port, p->ports), "port";
		x.port = in->port > 0 ? in->port - 1 : 0;
	}
ok:
	if (out != NULL)
		*out = x;
	return NULL;
}

const char *sim_scenario_check(const struct sim_params *p, const struct sim_scenario *sc,
			       char *err, size_t errlen)
{
	return resolve(p, sc, NULL, err, errlen);
}

static bool in_range(double x, double lo, double hi)
{
	return isfinite(x) && x >= lo && x <= hi;
}

const char *sim_params_check(const struct sim_params *p, char *err, size_t errlen)
{
	if (p->lifts < 0 || p->lifts > DEVICES_MAX)
		return fail(err, errlen, "0..%d", DEVICES_MAX), "lifts";
	if (p->chargers < 0 || p->chargers > DEVICES_MAX)
		return fail(err, errlen, "0..%d", DEVICES_MAX), "chargers";
	if (p->lifts + p->chargers == 0)
		return fail(err, errlen, "lifts and chargers are both 0: a site needs a device"),
		       "lifts";
	if (p->heartbeat_s < 1 || p->heartbeat_s > 60)
		return fail(err, errlen, "1..60"), "heartbeat_s";
	if (!in_range(p->time_scale, 1, 10000))
		return fail(err, errlen, "1..10000"), "time_scale";
	if (p->lifts > 0) {
		if (p->floor_min < SP_FLOOR_MIN || p->floor_min >= p->floor_max)
			return fail(err, errlen, "%d..%d, below floor_max (%d)", SP_FLOOR_MIN,
				    SP_FLOOR_MAX - 1, p->floor_max), "floor_min";
		if (p->floor_max > SP_FLOOR_MAX)
			return fail(err, errlen, "at most %d", SP_FLOOR_MAX), "floor_max";
		if (!in_range(p->rated_speed, 0.1, 10))
			return fail(err, errlen, "0.1..10"), "rated_speed";
	}
	if (p->chargers > 0) {
		if (p->ports < 1 || p->ports > SP_PORT_MAX)
			return fail(err, errlen, "1..%d", SP_PORT_MAX), "ports";
		if (!in_range(p->port_limit_w, 100, 10000))
			return fail(err, errlen, "100..10000"), "port_limit_w";
	}
	if (p->nscenarios > SCENARIOS_MAX || (p->nscenarios > 0 && p->scenarios == NULL))
		return fail(err, errlen, "at most %d", SCENARIOS_MAX), "scenarios";
	return NULL;
}

struct sim *sim_create(const struct sim_params *p, int64_t start_ms)
{
	struct sim *s = NULL;

	if (p == NULL || sim_params_check(p, NULL, 0) != NULL)
		goto fail;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	s->p = *p;
	s->p.scenarios = NULL;
	s->p.nscenarios = 0;
	s->start_ms = s->last_ms = start_ms;
	if (p->nscenarios > 0) {
		s->scen = calloc(p->nscenarios, sizeof(*s->scen));
		if (s->scen == NULL)
			goto fail;
		for (size_t i = 0; i < p->nscenarios; i++)
			if (resolve(p, &p->scenarios[i], &s->scen[i], NULL, 0) != NULL)
				goto fail;
		s->nscen = p->nscenarios;
	}
	/* + 1: calloc(0) may return NULL, which is not a failure */
	s->lifts = calloc((size_t)p->lifts + 1, sizeof(*s->lifts));
	s->chargers = calloc((size_t)p->chargers + 1, sizeof(*s->chargers));
	if (s->lifts == NULL || s->chargers == NULL)
		goto fail;
	for (int i = 0; i < p->lifts; i++)
		if ((s->lifts[i] = sim_lift_create(i, p)) == NULL)
			goto fail;
	for (int i = 0; i < p->chargers; i++)
		if ((s->chargers[i] = sim_charger_create(i, p, start_ms)) == NULL)
			goto fail;
	return s;
fail:
	sim_destroy(s);
	return NULL;
}

void sim_destroy(struct sim *s)
{
	if (s == NULL)
		return;
	for (int i = 0; s->lifts != NULL && i < s->p.lifts; i++)
		sim_lift_destroy(s->lifts[i]);
	for (int i = 0; s->chargers != NULL && i < s->p.chargers; i++)
		sim_charger_destroy(s->chargers[i]);
	free(s->lifts);
	free(s->chargers);
	free(s->scen);
	free(s);
}

size_t sim_devices(const struct sim *s, struct sp_device_info *out, size_t cap)
{
	size_t n = 0;
	for (int i = 0; i < s->p.lifts; i++, n++)
		if (n < cap)
			sim_lift_info(s->lifts[i], &out[n]);
	for (int i = 0; i < s->p.chargers; i++, n++)
		if (n < cap)
			sim_charger_info(s->chargers[i], &out[n]);
	return n;
}

/* ---------------------------------------------------------------- stepping */

static bool scen_active(const struct scen *x, int64_t since_ms)
{
	return since_ms >= x->sc.at_ms &&
	       (x->sc.duration_ms == 0 || since_ms < x->sc.at_ms + x->sc.duration_ms);
}

bool sim_silent(const struct sim *s, int64_t now_ms)
{
	for (size_t i = 0; i < s->nscen; i++)
		if (s->scen[i].sc.situation == SIM_SILENT &&
		    scen_active(&s->scen[i], now_ms - s->start_ms))
			return true;
	return false;
}

/* Tells each device which situations are active now (scenario windows are wall clock). */
static void apply_situations(struct sim *s, int64_t now_ms, const struct sim_out *o,
			     const struct sim_out *mute)
{
	int64_t since = now_ms - s->start_ms;
	uint32_t port_masks[SP_PORT_MAX];

	for (int i = 0; i < s->p.lifts; i++) {
		uint32_t mask = 0;
		for (size_t k = 0; k < s->nscen; k++)
			if (s->scen[k].lift == i && scen_active(&s->scen[k], since))
				mask |= SIM_BIT(s->scen[k].sc.situation);
		s->lift_lost[i] = (mask & SIM_BIT(SIM_LINK_LOST)) != 0;
		sim_lift_situations(s->lifts[i], mask & ~SIM_BIT(SIM_LINK_LOST));
	}
	for (int i = 0; i < s->p.chargers; i++) {
		uint32_t mask = 0;
		memset(port_masks, 0, sizeof(port_masks));
		for (size_t k = 0; k < s->nscen; k++) {
			const struct scen *x = &s->scen[k];
			if (x->charger != i || !scen_active(x, since))
				continue;
			if (port_situation(x->sc.situation))
				port_masks[x->port] |= SIM_BIT(x->sc.situation);
			else
				mask |= SIM_BIT(x->sc.situation);
		}
		s->charger_lost[i] = (mask & SIM_BIT(SIM_LINK_LOST)) != 0;
		sim_charger_apply(s->chargers[i], mask & ~SIM_BIT(SIM_LINK_LOST), port_masks,
				  s->charger_lost[i] ? mute : o);
	}
}

/* Simulated local hour of day, Asia/Shanghai (UTC+8, no DST). */
static double local_hour(const struct sim *s)
{
	return sim_local_hour((double)s->start_ms + s->sim_s * 1000.0);
}

void sim_step(struct sim *s, int64_t now_ms, sim_emit_fn emit, void *ctx)
{
	int64_t step_ms = now_ms > s->last_ms ? now_ms - s->last_ms : 0;

	s->last_ms = now_ms;
	s->clock_ms += step_ms;
	struct sim_out o = {
		.emit = sim_silent(s, now_ms) ? NULL : emit,
		.ctx = ctx,
		.ts = now_ms,
		.clock_ms = s->clock_ms,
		.step_ms = step_ms,
		.hb_ms = s->p.heartbeat_s * 1000LL,
		.hour = local_hour(s),
	};
	struct sim_out mute = o; /* for a device whose link is cut */
	mute.emit = NULL;
	apply_situations(s, now_ms, &o, &mute);

	double dt = (double)step_ms / 1000.0 * s->p.time_scale;
	double substeps = ceil(dt / SUBSTEP_S - 1e-9);
	int n = substeps > SUBSTEPS_MAX ? SUBSTEPS_MAX : (int)substeps;
	for (int k = 0; k < n && s->p.lifts > 0; k++) {
		double at_s = s->sim_s + k * dt / n;
		double hour = sim_local_hour((double)s->start_ms + at_s * 1000.0);
		for (int i = 0; i < s->p.lifts; i++) {
			sim_lift_advance(s->lifts[i], dt / n, hour);
			sim_lift_report(s->lifts[i], s->lift_lost[i] ? &mute : &o);
		}
	}
	for (int i = 0; i < s->p.chargers; i++)
		sim_charger_advance(s->chargers[i], dt, s->charger_lost[i] ? &mute : &o);
	s->sim_s += dt;
	/* heartbeats, and the first report when the step did not advance */
	for (int i = 0; i < s->p.lifts; i++)
		sim_lift_report(s->lifts[i], s->lift_lost[i] ? &mute : &o);
	for (int i = 0; i < s->p.chargers; i++)
		sim_charger_report(s->chargers[i], s->charger_lost[i] ? &mute : &o);
}

/* The charger with this port, or NULL. */
static struct sim_charger *port_owner(struct sim *s, const char *dev, int port)
{
	if (s == NULL || dev == NULL)
		return NULL;
	int i = dev_index(dev, "chg-", s->p.chargers);
	if (i < 0 || port < 1 || port > sim_charger_ports(s->chargers[i]))
		return NULL;
	return s->chargers[i];
}

bool sim_has_port(struct sim *s, const char *dev, int port)
{
	return port_owner(s, dev, port) != NULL;
}

int sim_port_off(struct sim *s, const char *dev, int port)
{
	struct sim_charger *c = port_owner(s, dev, port);
	if (c == NULL)
		return -1;
	sim_charger_port_off(c, port);
	return 0;
}

int sim_port_keep_off(struct sim *s, const char *dev, int port)
{
	struct sim_charger *c = port_owner(s, dev, port);
	if (c == NULL)
		return -1;
	sim_charger_port_keep_off(c, port);
	return 0;
}

int sim_port_on(struct sim *s, const char *dev, int port)
{
	struct sim_charger *c = port_owner(s, dev, port);
	if (c == NULL)
		return -1;
	return sim_charger_port_on(c, port);
}
