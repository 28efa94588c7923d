/*
 * test_sim.c - the simulator: scenario text, parameter checks, validity of
 * every record against the codec, determinism, the reporting rules, the
 * plausibility of lifts and chargers, and the effect of each situation.
 */
#include "harness.h"

#include "sim.h"
#include "sitepulse/buf.h"
#include "sitepulse/codec.h"
#include "sitepulse/grow.h"

#include <math.h>
#include <stdlib.h>

#define T0 1764320000000LL /* 2025-11-28 16:53:20 in Shanghai */
#define TICK 100
#define SEC 1000LL

/* ---------------------------------------------------------------- helpers */

struct capture {
	struct sp_record *r;
	size_t n, cap;
};

static void collect(void *ctx, const struct sp_record *r)
{
	struct capture *l = ctx;
	if ((l->r = sp_grow(l->r, &l->cap, l->n + 1, sizeof(*l->r), 1024)) == NULL)
		abort();
	l->r[l->n++] = *r;
}

static void capture_free(struct capture *l)
{
	free(l->r);
	memset(l, 0, sizeof(*l));
}

static struct sim_params params(void)
{
	struct sim_params p = {
		.seed = 42,
		.lifts = 1,
		.chargers = 1,
		.ports = 4,
		.floor_min = -1,
		.floor_max = 7,
		.rated_speed = 1.0,
		.port_limit_w = 1000,
		.heartbeat_s = 30,
		.time_scale = 1,
	};
	return p;
}

/* Steps s every TICK ms from `from` to `to` inclusive. */
static void run(struct sim *s, int64_t from, int64_t to, struct capture *got)
{
	for (int64_t t = from; t <= to; t += TICK)
		sim_step(s, t, collect, got);
}

/* Creates a sim with the scenarios given as text and runs it for secs from T0. */
static void run_scenarios(struct sim_params p, const char *const *texts, size_t n, int64_t secs,
			  struct capture *got)
{
	struct sim_scenario sc[8];
	char err[256];
	for (size_t i = 0; i < n; i++)
		CHECK_EQ_INT(sim_scenario_parse(texts[i], &sc[i], err, sizeof(err)), 0);
	p.scenarios = sc;
	p.nscenarios = n;
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	run(s, T0, T0 + secs * SEC, got);
	sim_destroy(s);
}

static bool is(const struct sp_record *r, enum sp_rec_kind k, const char *dev)
{
	return r->kind == k && strcmp(r->dev, dev) == 0;
}

/*
 * Record queries over a capture. pred is an expression over `r`, the record
 * at hand. (GNU statement expressions: the project builds as gnu11.)
 */

/* Index of the first record of kind k of dev with from <= ts < to matching pred, or -1. */
#define FIND(got, k, devname, from, to, pred)                                                 \
	({                                                                                    \
		long found_ = -1;                                                             \
		for (size_t i_ = 0; i_ < (got)->n && found_ < 0; i_++) {                      \
			const struct sp_record *r = &(got)->r[i_];                            \
			if (is(r, k, devname) && r->ts >= (from) && r->ts < (to) && (pred))   \
				found_ = (long)i_;                                            \
		}                                                                             \
		found_;                                                                       \
	})

/* Number of records of kind k of dev with from <= ts < to NOT matching pred. */
#define VIOLATIONS(got, k, devname, from, to, pred)                                           \
	({                                                                                    \
		long bad_ = 0;                                                                \
		for (size_t i_ = 0; i_ < (got)->n; i_++) {                                    \
			const struct sp_record *r = &(got)->r[i_];                            \
			if (is(r, k, devname) && r->ts >= (from) && r->ts < (to) && !(pred))  \
				bad_++;                                                       \
		}                                                                             \
		bad_;                                                                         \
	})

/* Encodes recs as one data message and decodes it back: returns the records rejected. */
static size_t roundtrip(struct sp_decoder *dec, struct sp_buf *b, const struct sp_record *recs,
			size_t n, int64_t now)
{
	struct sp_data_msg m;
	struct sp_reject_info why;

	sp_buf_reset(b);
	if (sp_encode_data(b, 1, now, recs, n) != 0)
		return n;
	if (sp_decode_data(dec, b->data, b->len, now, &m, &why) != 0 || m.count != n) {
		fprintf(stderr, "message rejected: %s %s\n", sp_reject_name(why.reason),
			why.field ? why.field : "");
		return n;
	}
	for (size_t i = 0; i < m.count; i++)
		if (m.rejects[i].reason)
			fprintf(stderr, "record rejected: %s %s: %.300s\n",
				sp_reject_name(m.rejects[i].reason),
				m.rejects[i].field ? m.rejects[i].field : "", b->data);
	return m.rejected;
}

/* Checks every record of got against the codec, one data message per tick. */
static void check_codec(const struct capture *got)
{
	struct sp_decoder *dec = sp_decoder_create();
	struct sp_buf b = SP_BUF_INIT(SP_PAYLOAD_MAX);
	size_t rejected = 0, i = 0;

	CHECK(dec != NULL);
	while (dec && i < got->n) {
		size_t j = i;
		while (j < got->n && got->r[j].ts == got->r[i].ts && j - i < SP_RECORDS_MAX)
			j++;
		rejected += roundtrip(dec, &b, &got->r[i], j - i, got->r[i].ts);
		i = j;
	}
	CHECK_EQ_INT(rejected, 0);
	sp_buf_free(&b);
	sp_decoder_destroy(dec);
}

/* The reporting rule: no device is silent for more than hb_ms (station and each port apart). */
static void check_heartbeats(const struct capture *got, int lifts, int chargers, int ports,
			     int64_t from, int64_t to, int64_t hb_ms)
{
	int64_t last[64][66]; /* [device][0 = lift or station, 1.. ports] */
	long gaps = 0;

	for (int d = 0; d < 64; d++)
		for (int k = 0; k < 66; k++)
			last[d][k] = from;
	for (size_t i = 0; i < got->n; i++) {
		const struct sp_record *r = &got->r[i];
		if (r->ts < from ||
		    (r->kind != SP_REC_LIFT && r->kind != SP_REC_STATION && r->kind != SP_REC_PORT))
			continue;
		/* lift-N is device N-1, chg-N device lifts+N-1 */
		int d = (int)strtol(strchr(r->dev, '-') + 1, NULL, 10) - 1 +
			(r->kind == SP_REC_LIFT ? 0 : lifts);
		int k = r->kind == SP_REC_PORT ? r->u.port.port : 0;
		if (r->ts - last[d][k] > hb_ms)
			gaps++;
		last[d][k] = r->ts;
	}
	for (int d = 0; d < lifts + chargers; d++)
		for (int k = 0; k <= (d < lifts ? 0 : ports); k++)
			if (to - last[d][k] > hb_ms)
				gaps++;
	CHECK_EQ_INT(gaps, 0);
}

/* ---------------------------------------------------------------- scenario text */

static void test_situation_names(void)
{
	for (int i = 0; i < SIM_SITUATION_COUNT; i++)
		CHECK_EQ_INT(sim_situation_parse(sim_situation_name((enum sim_situation)i)), i);
	CHECK_EQ_STR(sim_situation_name(SIM_TRAPPED_BETWEEN_FLOORS), "trapped_between_floors");
	CHECK_EQ_STR(sim_situation_name(SIM_SILENT), "silent");
	CHECK_EQ_STR(sim_situation_name(SIM_SITUATION_COUNT), "?");
	CHECK_EQ_INT(sim_situation_parse("nope"), -1);
	CHECK_EQ_INT(sim_situation_parse(""), -1);
	CHECK_EQ_INT(sim_situation_parse(NULL), -1);
}

static void test_scenario_parse(void)
{
	struct sim_scenario sc;
	char err[256];

	CHECK_EQ_INT(sim_scenario_parse("lift-1:trapped_between_floors@30+120", &sc, err,
					sizeof(err)), 0);
	CHECK_EQ_STR(sc.dev, "lift-1");
	CHECK_EQ_INT(sc.situation, SIM_TRAPPED_BETWEEN_FLOORS);
	CHECK_EQ_INT(sc.port, 0);
	CHECK_EQ_INT(sc.at_ms, 30000);
	CHECK_EQ_INT(sc.duration_ms, 120000);

	CHECK_EQ_INT(sim_scenario_parse("chg-1:port_overheat@10", &sc, err, sizeof(err)), 0);
	CHECK_EQ_STR(sc.dev, "chg-1");
	CHECK_EQ_INT(sc.situation, SIM_PORT_OVERHEAT);
	CHECK_EQ_INT(sc.port, 0);
	CHECK_EQ_INT(sc.at_ms, 10000);
	CHECK_EQ_INT(sc.duration_ms, 0);

	CHECK_EQ_INT(sim_scenario_parse(":silent@60+90", &sc, err, sizeof(err)), 0);
	CHECK_EQ_STR(sc.dev, "");
	CHECK_EQ_INT(sc.situation, SIM_SILENT);
	CHECK_EQ_INT(sc.at_ms, 60000);
	CHECK_EQ_INT(sc.duration_ms, 90000);

	CHECK_EQ_INT(sim_scenario_parse("chg-1/3:port_overheat@10", &sc, err, sizeof(err)), 0);
	CHECK_EQ_STR(sc.dev, "chg-1");
	CHECK_EQ_INT(sc.port, 3);

	CHECK_EQ_INT(sim_scenario_parse("chg-2/64:port_overpower@0+0", &sc, err, sizeof(err)), 0);
	CHECK_EQ_INT(sc.port, 64);
	CHECK_EQ_INT(sc.at_ms, 0);
	CHECK_EQ_INT(sc.duration_ms, 0);
	CHECK_EQ_INT(sim_scenario_parse("chg-1:residual_current@5+1", &sc, err, sizeof(err)), 0);
	CHECK_EQ_INT(sc.situation, SIM_RESIDUAL_CURRENT);

	static const char *const bad[] = {
		"lift-1:nope@1",
		"lift-1:overspeed@x",
		"LIFT:overspeed@1",
		"lift-1:overspeed",            /* missing '@' */
		"lift-1overspeed@1",           /* missing ':' */
		"",
		":overspeed@1",                /* a device is required */
		"lift-1:silent@1",             /* silent is the gateway */
		"lift-1/2:overspeed@1",        /* no port on a lift situation */
		"chg-1/0:port_overheat@1",
		"chg-1/65:port_overheat@1",
		"chg-1/x:port_overheat@1",
		"chg-1/:port_overheat@1",
		"lift-1:overspeed@-1",
		"lift-1:overspeed@+1",
		"lift-1:overspeed@ 1",
		"lift-1:overspeed@",
		"lift-1:overspeed@1+",
		"lift-1:overspeed@1+-5",
		"lift-1:overspeed@1+2x",
		"lift-1:overspeed@1.5",
		"lift-1:overspeed@99999999999999999999",
		"lift-1:overspeed@400000000",
		"lift-1:@1",
		"lift_1!:overspeed@1",
		"a123456789012345678901234567890123456789012345678901234567890123456:overspeed@1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		int rc = sim_scenario_parse(bad[i], &sc, err, sizeof(err));
		CHECK_EQ_INT(rc, -1);
		CHECK(err[0] != '\0');
		if (rc != -1)
			fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
	}
	CHECK_EQ_INT(sim_scenario_parse(NULL, &sc, err, sizeof(err)), -1);
	CHECK_EQ_INT(sim_scenario_parse("lift-1:nope@1", &sc, NULL, 0), -1);
}

/* ---------------------------------------------------------------- creation */

static bool creates(struct sim_params p)
{
	struct sim *s = sim_create(&p, T0);
	sim_destroy(s);
	return s != NULL;
}

static bool creates_with(const struct sim_scenario *sc)
{
	struct sim_params p = params();
	p.scenarios = sc;
	p.nscenarios = 1;
	return creates(p);
}

static void test_create_validation(void)
{
	struct sim_params p;
	struct sim_scenario sc;

	CHECK(creates(params()));
	CHECK(sim_create(NULL, T0) == NULL);
	sim_destroy(NULL);

#define BAD(field, value)                  \
	do {                               \
		p = params();              \
		p.field = value;           \
		CHECK(!creates(p));        \
	} while (0)
	BAD(lifts, -1);
	BAD(lifts, 65);
	BAD(chargers, -1);
	BAD(chargers, 65);
	BAD(ports, 0);
	BAD(ports, 65);
	BAD(heartbeat_s, 0);
	BAD(heartbeat_s, 61);
	BAD(time_scale, 0.5);
	BAD(time_scale, 10001);
	BAD(time_scale, NAN);
	BAD(floor_min, 7);
	BAD(floor_min, 8);
	BAD(floor_min, SP_FLOOR_MIN - 1);
	BAD(floor_max, SP_FLOOR_MAX + 1);
	BAD(rated_speed, 0);
	BAD(rated_speed, INFINITY);
	BAD(port_limit_w, 0);
	BAD(nscenarios, 1); /* scenarios NULL */
#undef BAD
	p = params();
	p.lifts = p.chargers = 0;
	CHECK(!creates(p));
	p = params();
	p.lifts = 64;
	p.chargers = 64;
	p.ports = 64;
	p.floor_min = SP_FLOOR_MIN;
	p.floor_max = SP_FLOOR_MAX;
	p.heartbeat_s = 60;
	p.time_scale = 10000;
	CHECK(creates(p));

	static const struct {
		const char *text;
		bool ok;
	} cases[] = {
		{"lift-1:overspeed@1", true},
		{"lift-2:overspeed@1", false},   /* one lift */
		{"lift-0:overspeed@1", false},
		{"lift-01:overspeed@1", false},
		{"chg-1:overspeed@1", false},    /* a lift situation on a charger */
		{"lift-1:smoke@1", false},       /* a station situation on a lift */
		{"chg-1:smoke@1", true},
		{"chg-2:smoke@1", false},
		{"chg-1/4:port_overheat@1", true},
		{"chg-1/5:port_overheat@1", false}, /* 4 ports */
		{":silent@1+1", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256];
		CHECK_EQ_INT(sim_scenario_parse(cases[i].text, &sc, err, sizeof(err)), 0);
		CHECK_EQ_INT(creates_with(&sc), cases[i].ok);
	}
	CHECK_EQ_INT(sim_scenario_parse("lift-1:overspeed@1", &sc, NULL, 0), 0);
	sc.at_ms = -1;
	CHECK(!creates_with(&sc));
	sc.at_ms = 0;
	sc.duration_ms = -5;
	CHECK(!creates_with(&sc));
	sc.duration_ms = 0;
	sc.situation = SIM_SITUATION_COUNT;
	CHECK(!creates_with(&sc));
}

static void test_devices(void)
{
	struct sim_params p = params();
	struct sp_device_info d[8];

	p.lifts = 2;
	p.chargers = 3;
	p.ports = 12;
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sim_devices(s, d, 8), 5);
	CHECK_EQ_STR(d[0].dev, "lift-1");
	CHECK_EQ_STR(d[1].dev, "lift-2");
	CHECK_EQ_STR(d[2].dev, "chg-1");
	CHECK_EQ_STR(d[4].dev, "chg-3");
	CHECK_EQ_INT(d[1].kind, SP_DEV_LIFT);
	CHECK_EQ_INT(d[1].floor_min, -1);
	CHECK_EQ_INT(d[1].floor_max, 7);
	CHECK(d[1].rated_speed == 1.0);
	CHECK(d[1].rated_load == 630);
	CHECK_EQ_INT(d[3].kind, SP_DEV_CHARGER);
	CHECK_EQ_INT(d[3].ports, 12);
	CHECK(d[3].port_limit_w == 1000);

	/* the birth built from them is valid */
	struct sp_buf b = SP_BUF_INIT(SP_PAYLOAD_MAX);
	struct sp_decoder *dec = sp_decoder_create();
	struct sp_birth birth;
	struct sp_reject_info why;
	CHECK_EQ_INT(sp_encode_birth(&b, T0, "test", d, 5), 0);
	CHECK_EQ_INT(sp_decode_birth(dec, b.data, b.len, T0, &birth, &why), 0);
	CHECK_EQ_INT(birth.count, 5);
	CHECK_EQ_INT(birth.rejected, 0);
	sp_decoder_destroy(dec);
	sp_buf_free(&b);

	/* a short array is filled up to its capacity */
	memset(d, 0x5a, sizeof(d));
	CHECK_EQ_INT(sim_devices(s, d, 2), 5);
	CHECK_EQ_STR(d[1].dev, "lift-2");
	CHECK_EQ_INT((unsigned char)d[2].dev[0], 0x5a);
	CHECK_EQ_INT(sim_devices(s, NULL, 0), 5);
	sim_destroy(s);
}

/* ---------------------------------------------------------------- normal operation */

/* Two simulated hours of a small site: every record valid, plausible, on time. */
static void test_two_hours(void)
{
	struct sim_params p = params();
	struct capture got = {0};

	p.seed = 7;
	p.lifts = 3;
	p.chargers = 2;
	p.ports = 6;
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t end = T0 + 2 * 3600 * SEC;
	run(s, T0, end, &got);
	sim_destroy(s);

	check_codec(&got);
	check_heartbeats(&got, 3, 2, 6, T0, end, 30 * SEC);

	long fast = 0, open_moving = 0, moving_door = 0, trips_back = 0, bad_floor = 0;
	long stop_speed = 0, trips_done = 0, bad_port = 0, bad_session = 0, sessions = 0;
	long bad_station = 0, bad_ts = 0;
	int64_t trips[3] = {0}, first_trips[3] = {0};
	int64_t both_stations = 0, station_ts[2] = {0};
	for (size_t i = 0; i < got.n; i++) {
		const struct sp_record *r = &got.r[i];
		if (r->ts < T0 || r->ts > end || (r->ts - T0) % TICK)
			bad_ts++;
		if (r->kind == SP_REC_LIFT) {
			const struct sp_lift *x = &r->u.lift;
			int k = r->dev[5] - '1';
			fast += x->speed > 1.05;
			open_moving += x->door == SP_DOOR_OPEN && x->speed > 0;
			moving_door += x->dir != SP_DIR_STOP && x->door != SP_DOOR_CLOSED;
			stop_speed += x->dir == SP_DIR_STOP && x->speed != 0;
			bad_floor += x->floor < -1 || x->floor > 7 || x->floor == 0;
			trips_back += x->trips < trips[k];
			if (first_trips[k] == 0)
				first_trips[k] = x->trips;
			trips[k] = x->trips;
			CHECK(x->mode == SP_MODE_NORMAL || x->mode == SP_MODE_INSPECTION);
			CHECK(x->power == SP_POWER_MAINS && x->safety_ok);
		} else if (r->kind == SP_REC_PORT) {
			const struct sp_port *x = &r->u.port;
			bad_port += x->a < 0 || x->a > 3.5 || x->v < 215 || x->v > 228 ||
				    fabs(x->w - round(x->v * x->a * 10) / 10) > 1e-6 ||
				    x->temp_c < 10 || x->temp_c > 50 ||
				    (x->state == SP_PORT_CHARGING) != (x->a > 0);
		} else if (r->kind == SP_REC_SESSION) {
			const struct sp_session *x = &r->u.session;
			sessions++;
			bad_session += x->start > x->end || x->start < T0 - 12 * 3600 * SEC ||
				       (x->reason == SP_STOP_FULL && x->wh <= 0);
		} else if (r->kind == SP_REC_STATION) {
			const struct sp_station *x = &r->u.station;
			int k = r->dev[4] - '1';
			bad_station += x->smoke || x->door_open || x->leak_ma < 0.5 ||
				       x->leak_ma > 5 || x->supply_v < 215 || x->supply_v > 228 ||
				       x->ambient_c < 15 || x->ambient_c > 30;
			station_ts[k] = r->ts;
			both_stations += r->ts > T0 && station_ts[0] == station_ts[1];
		} else {
			CHECK(0); /* no fault in normal operation */
		}
	}
	for (int k = 0; k < 3; k++)
		trips_done += trips[k] - first_trips[k];
	CHECK_EQ_INT(bad_ts, 0);
	CHECK_EQ_INT(fast, 0);
	CHECK_EQ_INT(open_moving, 0);
	CHECK_EQ_INT(moving_door, 0);
	CHECK_EQ_INT(stop_speed, 0);
	CHECK_EQ_INT(bad_floor, 0);
	CHECK_EQ_INT(trips_back, 0);
	/* 17-19 h, the evening peak: a call a minute or so, one or two runs each */
	CHECK(trips_done >= 3 * 2 * 40);
	CHECK(trips_done <= 3 * 2 * 150);
	CHECK_EQ_INT(bad_port, 0);
	CHECK_EQ_INT(bad_session, 0);
	CHECK(sessions >= 1); /* charges last hours: test_charging_sessions looks at many */
	CHECK_EQ_INT(bad_station, 0);
	CHECK_EQ_INT(both_stations, 0); /* heartbeats spread */
	CHECK(first_trips[0] > 1000);   /* counters start from a plausible past */
	capture_free(&got);
}

/* A day and a half of one pile at time scale 20: sessions, their ends and their records. */
static void test_charging_sessions(void)
{
	struct sim_params p = params();
	struct capture got = {0};

	p.seed = 11;
	p.lifts = 0;
	p.ports = 8;
	p.time_scale = 20;
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t end = T0 + 2 * 3600 * SEC;
	run(s, T0, end, &got);
	sim_destroy(s);

	check_codec(&got);
	check_heartbeats(&got, 0, 1, 8, T0, end, 30 * SEC);

	enum sp_port_state state[9];
	bool session_now[9] = {false};
	long reasons[SP_STOP_REASON_COUNT] = {0};
	long unexplained_end = 0, bad = 0, plugged_to_charging = 0;
	int64_t energy0 = -1, energy1 = 0;
	for (int k = 0; k < 9; k++)
		state[k] = SP_PORT_STATE_COUNT;
	for (size_t i = 0; i < got.n; i++) {
		const struct sp_record *r = &got.r[i];
		if (r->kind == SP_REC_SESSION) {
			const struct sp_session *x = &r->u.session;
			reasons[x->reason]++;
			bad += x->start > x->end || x->wh < 0 ||
			       (x->reason == SP_STOP_FULL && x->wh <= 0);
			session_now[x->port] = true;
			/* at most 8 h of simulated charging: 24 min of real time at scale 20 */
			bad += x->end - x->start > 8 * 3600 * SEC / 20 + 60 * SEC;
		} else if (r->kind == SP_REC_PORT) {
			const struct sp_port *x = &r->u.port;
			enum sp_port_state was = state[x->port];
			bool was_in = was == SP_PORT_CHARGING || was == SP_PORT_PLUGGED;
			bool is_in = x->state == SP_PORT_CHARGING || x->state == SP_PORT_PLUGGED;
			/* every session that ends says so in a session record just before */
			if (was_in && !is_in && !session_now[x->port])
				unexplained_end++;
			plugged_to_charging +=
				was == SP_PORT_PLUGGED && x->state == SP_PORT_CHARGING;
			bad += x->a < 0 || x->a > 3.5;
			state[x->port] = x->state;
			session_now[x->port] = false;
		} else if (r->kind == SP_REC_STATION) {
			if (energy0 < 0)
				energy0 = r->u.station.energy_wh;
			bad += r->u.station.energy_wh < energy1;
			energy1 = r->u.station.energy_wh;
		}
	}
	long total = 0;
	for (int k = 0; k < SP_STOP_REASON_COUNT; k++)
		total += reasons[k];
	CHECK(total >= 15);
	CHECK(reasons[SP_STOP_FULL] >= total / 2);
	CHECK(reasons[SP_STOP_UNPLUGGED] >= 1);
	CHECK_EQ_INT(reasons[SP_STOP_FULL] + reasons[SP_STOP_UNPLUGGED] + reasons[SP_STOP_LIMIT],
		     total);
	CHECK(plugged_to_charging >= 10);
	CHECK_EQ_INT(unexplained_end, 0);
	CHECK_EQ_INT(bad, 0);
	CHECK(energy1 - energy0 > 5000); /* dozens of e-bike charges */
	capture_free(&got);
}

/* Lift records that make sense whatever the time scale. */
static void check_lift_physics(const struct capture *got, double vmax)
{
	long bad = 0;
	for (size_t i = 0; i < got->n; i++) {
		const struct sp_lift *x = &got->r[i].u.lift;
		if (got->r[i].kind == SP_REC_LIFT)
			bad += x->speed > vmax || (x->dir == SP_DIR_STOP && x->speed != 0) ||
			       (x->speed > 0 && x->door != SP_DOOR_CLOSED);
	}
	CHECK_EQ_INT(bad, 0);
}

/* Irregular ticks, the host sleeping for hours, the clock stepping back. */
static void test_irregular_clock(void)
{
	struct sim_params p = params();
	struct capture got = {0};
	int64_t t = T0;

	p.lifts = 2;
	p.chargers = 2;
	p.time_scale = 5;
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	for (int i = 0; i < 3000; i++) {
		t += (i * 7919) % 1700;
		if (i == 1000)
			t += 3 * 3600 * SEC; /* the host slept */
		if (i == 2000)
			t -= 5 * SEC; /* NTP stepped the clock back */
		sim_step(s, t, collect, &got);
	}
	sim_destroy(s);
	check_codec(&got);
	check_lift_physics(&got, 1.0);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-2", t - 60 * SEC, t + 1, true) >= 0);
	CHECK(FIND(&got, SP_REC_STATION, "chg-2", t - 60 * SEC, t + 1, true) >= 0);
	capture_free(&got);
}

/* At the highest time scale the substeps are coarse: records stay valid and sane. */
static void test_fastest(void)
{
	struct sim_params p = params();
	struct capture got = {0};

	p.lifts = 2;
	p.chargers = 2;
	p.time_scale = 10000;
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	run(s, T0, T0 + 60 * SEC, &got); /* 600 000 s, a week */
	check_heartbeats(&got, 2, 2, 4, T0, T0 + 60 * SEC, 30 * SEC);
	CHECK(FIND(&got, SP_REC_SESSION, "chg-1", T0, T0 + 60 * SEC, true) >= 0);
	/* maintenance visits, about every 15 days per lift: inspection mode for a while */
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", T0, T0 + 60 * SEC,
		   r->u.lift.mode == SP_MODE_INSPECTION) >= 0 ||
	      FIND(&got, SP_REC_LIFT, "lift-2", T0, T0 + 60 * SEC,
		   r->u.lift.mode == SP_MODE_INSPECTION) >= 0);
	/* the host slept three days: 82 simulated years in one step */
	sim_step(s, T0 + 3 * 86400 * SEC, collect, &got);
	sim_step(s, T0 + 3 * 86400 * SEC + TICK, collect, &got);
	sim_destroy(s);
	check_codec(&got);
	check_lift_physics(&got, 1.0);
	capture_free(&got);
}

/* At 4 am the lifts idle: after the first report each device heartbeats in its own tick. */
static void test_heartbeat_spread(void)
{
	struct sim_params p = params();
	struct capture got = {0};
	int64_t night = T0 - (12 * 3600 + 53 * 60 + 20) * SEC; /* 04:00 in Shanghai */
	int64_t second[8] = {0};
	int seen[8] = {0};

	p.lifts = 4;
	p.chargers = 4;
	struct sim *s = sim_create(&p, night);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	run(s, night, night + 60 * SEC, &got);
	sim_destroy(s);
	for (size_t i = 0; i < got.n; i++) {
		const struct sp_record *r = &got.r[i];
		if (r->kind != SP_REC_LIFT && r->kind != SP_REC_STATION)
			continue;
		int d = (int)strtol(strchr(r->dev, '-') + 1, NULL, 10) - 1 +
			(r->kind == SP_REC_LIFT ? 0 : 4);
		if (++seen[d] == 2)
			second[d] = r->ts;
	}
	int distinct = 0;
	for (int d = 0; d < 8; d++) {
		CHECK(seen[d] >= 2);
		bool dup = false;
		for (int e = 0; e < d; e++)
			dup |= second[e] == second[d];
		distinct += !dup;
	}
	CHECK(distinct >= 6); /* seeded phases: a collision or two at most */
	capture_free(&got);
}

static void encode_all(struct sim_params p, int64_t secs, struct sp_buf *b)
{
	struct capture got = {0};
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	run(s, T0, T0 + secs * SEC, &got);
	sim_destroy(s);
	for (size_t i = 0; i < got.n; i++) {
		CHECK_EQ_INT(sp_encode_record(b, &got.r[i]), 0);
		sp_buf_putc(b, '\n');
	}
	capture_free(&got);
}

static void test_determinism(void)
{
	struct sim_params p = params();
	struct sim_scenario sc[3];
	struct sp_buf a = SP_BUF_INIT(0), b = SP_BUF_INIT(0), c = SP_BUF_INIT(0);

	CHECK_EQ_INT(sim_scenario_parse("lift-2:trapped_between_floors@60+120", &sc[0], NULL, 0),
		     0);
	CHECK_EQ_INT(sim_scenario_parse("chg-1/2:port_overheat@100+60", &sc[1], NULL, 0), 0);
	CHECK_EQ_INT(sim_scenario_parse(":silent@400+30", &sc[2], NULL, 0), 0);
	p.lifts = 2;
	p.chargers = 2;
	p.time_scale = 5;
	p.scenarios = sc;
	p.nscenarios = 3;
	encode_all(p, 1800, &a);
	encode_all(p, 1800, &b);
	p.seed = 43;
	encode_all(p, 1800, &c);
	CHECK(a.len > 10000);
	CHECK_EQ_INT(a.len, b.len);
	CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	CHECK(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
	sp_buf_free(&a);
	sp_buf_free(&b);
	sp_buf_free(&c);
}

static void test_time_scale(void)
{
	struct sim_params p = params();
	int64_t done[2] = {0, 0};

	p.lifts = 2;
	p.chargers = 1;
	for (int k = 0; k < 2; k++) {
		struct capture got = {0};
		p.time_scale = k ? 60 : 1;
		struct sim *s = sim_create(&p, T0);
		CHECK(s != NULL);
		if (s == NULL)
			return;
		run(s, T0, T0 + 600 * SEC, &got);
		sim_destroy(s);
		long first = FIND(&got, SP_REC_LIFT, "lift-1", T0, T0 + 1, true);
		long last = -1;
		for (size_t i = 0; i < got.n; i++)
			if (is(&got.r[i], SP_REC_LIFT, "lift-1"))
				last = (long)i;
		CHECK(first >= 0 && last >= 0);
		if (first >= 0 && last >= 0)
			done[k] = got.r[last].u.lift.trips - got.r[first].u.lift.trips;
		/* heartbeats are real time whatever the scale */
		check_heartbeats(&got, 2, 1, 4, T0, T0 + 600 * SEC, 30 * SEC);
		check_codec(&got);
		capture_free(&got);
	}
	CHECK(done[1] > 10 * (done[0] + 1));
}

/* ---------------------------------------------------------------- situations */

#define AT(s) (T0 + (s) * SEC)

static void test_trapped_between_floors(void)
{
	static const char *const sc[] = {"lift-1:trapped_between_floors@30+120"};
	struct capture got = {0};

	run_scenarios(params(), sc, 1, 240, &got);
	check_codec(&got);
	/* trapped within ~half a minute (a door cycle to let a passenger in, part of a run) */
#define TRAPPED (!r->u.lift.door_zone && r->u.lift.occupied && r->u.lift.door == SP_DOOR_CLOSED && \
		 r->u.lift.dir == SP_DIR_STOP && r->u.lift.speed == 0)
	long first = FIND(&got, SP_REC_LIFT, "lift-1", AT(30), AT(70), TRAPPED);
	CHECK(first >= 0);
	if (first < 0)
		return;
	int64_t since = got.r[first].ts;
	/* held until the end, reported at least every heartbeat */
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", since, AT(150), TRAPPED), 0);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(150) - 30 * SEC, AT(150), TRAPPED) >= 0);
#undef TRAPPED
	/* then it levels and opens, and the passenger gets out */
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(150), AT(151), r->u.lift.dir != SP_DIR_STOP) >=
	      0);
	long open = FIND(&got, SP_REC_LIFT, "lift-1", AT(150), AT(180),
			 r->u.lift.door == SP_DOOR_OPEN && r->u.lift.door_zone &&
				 r->u.lift.dir == SP_DIR_STOP);
	CHECK(open >= 0);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(150), AT(180), !r->u.lift.occupied) >= 0);
	capture_free(&got);
}

static void test_trapped_at_landing(void)
{
	static const char *const sc[] = {"lift-1:trapped_at_landing@30+120"};
	struct capture got = {0};

	run_scenarios(params(), sc, 1, 240, &got);
	check_codec(&got);
#define TRAPPED (r->u.lift.door_zone && r->u.lift.occupied && r->u.lift.door == SP_DOOR_CLOSED && \
		 r->u.lift.dir == SP_DIR_STOP && r->u.lift.speed == 0)
	long first = FIND(&got, SP_REC_LIFT, "lift-1", AT(30), AT(70), TRAPPED);
	CHECK(first >= 0);
	if (first < 0)
		return;
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", got.r[first].ts, AT(150), TRAPPED), 0);
#undef TRAPPED
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(150), AT(151),
		   r->u.lift.door == SP_DOOR_OPENING) >= 0);
	capture_free(&got);
}

static void test_door_open_moving(void)
{
	static const char *const sc[] = {"lift-1:door_open_moving@30+60"};
	struct capture got = {0};

	run_scenarios(params(), sc, 1, 200, &got);
	check_codec(&got);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(30), AT(90),
		   r->u.lift.door == SP_DOOR_OPEN && r->u.lift.dir != SP_DIR_STOP &&
			   r->u.lift.speed > 0) >= 0);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(30), AT(90),
		   r->u.lift.door == SP_DOOR_OPEN && !r->u.lift.door_zone) >= 0);
	/* outside the situation the door is closed while running */
#define CLOSED_RUNNING (r->u.lift.dir == SP_DIR_STOP || r->u.lift.door == SP_DOOR_CLOSED)
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(0), AT(30), CLOSED_RUNNING), 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(120), AT(200), CLOSED_RUNNING), 0);
#undef CLOSED_RUNNING
	capture_free(&got);
}

static void test_overspeed(void)
{
	static const char *const sc[] = {"lift-1:overspeed@30+120"};
	struct capture got = {0};

	run_scenarios(params(), sc, 1, 300, &got);
	check_codec(&got);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(30), AT(150),
		   r->u.lift.speed >= 1.35 && r->u.lift.speed <= 1.41) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(30), AT(150),
				r->u.lift.speed <= 1.41), 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(0), AT(30),
				r->u.lift.speed <= 1.05), 0);
	/* back to rated speed once the situation is over (it slows down at once) */
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(152), AT(300),
				r->u.lift.speed <= 1.05), 0);
	capture_free(&got);
}

static void test_on_battery(void)
{
	static const char *const sc[] = {"lift-1:on_battery@30+60"};
	struct capture got = {0};

	run_scenarios(params(), sc, 1, 200, &got);
	check_codec(&got);
	/* reported at once, held, then back to mains */
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(30), AT(30) + 1,
		   r->u.lift.power == SP_POWER_BATTERY) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(30), AT(90),
				r->u.lift.power == SP_POWER_BATTERY), 0);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(90), AT(90) + 1,
		   r->u.lift.power == SP_POWER_MAINS) >= 0);
	/* no new trip starts on battery; the car ends up stopped at a floor */
	long a = FIND(&got, SP_REC_LIFT, "lift-1", AT(30), AT(31), true);
	long b = FIND(&got, SP_REC_LIFT, "lift-1", AT(60), AT(90),
		      r->u.lift.dir == SP_DIR_STOP && r->u.lift.door_zone);
	CHECK(a >= 0 && b >= 0);
	if (a >= 0 && b >= 0)
		CHECK_EQ_INT(got.r[b].u.lift.trips, got.r[a].u.lift.trips);
	capture_free(&got);
}

static void test_safety_open(void)
{
	static const char *const sc[] = {"lift-1:safety_open@30+60", "lift-1:overspeed@10+30"};
	struct capture got = {0};

	/* the overspeed gets the car running when the chain opens */
	run_scenarios(params(), sc, 2, 200, &got);
	check_codec(&got);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(30), AT(30) + 1, !r->u.lift.safety_ok) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(30), AT(90), !r->u.lift.safety_ok),
		     0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(33), AT(90),
				r->u.lift.dir == SP_DIR_STOP && r->u.lift.speed == 0), 0);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(90), AT(90) + 1, r->u.lift.safety_ok) >= 0);
	capture_free(&got);
}

static void test_inspection(void)
{
	static const char *const sc[] = {"lift-1:inspection@30+60"};
	struct capture got = {0};

	run_scenarios(params(), sc, 1, 200, &got);
	check_codec(&got);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(0), AT(30),
				r->u.lift.mode == SP_MODE_NORMAL), 0);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(30), AT(30) + 1,
		   r->u.lift.mode == SP_MODE_INSPECTION) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(30), AT(90),
				r->u.lift.mode == SP_MODE_INSPECTION), 0);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(90), AT(90) + 1,
		   r->u.lift.mode == SP_MODE_NORMAL) >= 0);
	capture_free(&got);
}

static void test_port_overheat(void)
{
	static const char *const sc[] = {"chg-1/2:port_overheat@10+60"};
	struct capture got = {0};

	run_scenarios(params(), sc, 1, 300, &got);
	check_codec(&got);
#define PORT2 (r->u.port.port == 2)
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", AT(10), AT(11),
		   PORT2 && r->u.port.state == SP_PORT_CHARGING) >= 0);
	long hot = FIND(&got, SP_REC_PORT, "chg-1", AT(10), AT(21), PORT2 && r->u.port.temp_c > 70);
	CHECK(hot >= 0);
	long raised = FIND(&got, SP_REC_FAULT, "chg-1", AT(10), AT(21),
			   r->u.fault.active && r->u.fault.port == 2 &&
				   strcmp(r->u.fault.code, "over_temp") == 0);
	CHECK(raised >= 0);
	if (raised >= 0) {
		CHECK(got.r[raised].has & SP_HAS_DETAIL);
		CHECK(strncmp(got.r[raised].u.fault.detail, "port 2 at 7", 11) == 0);
		CHECK(strstr(got.r[raised].u.fault.detail, "\xc2\xb0" "C") != NULL);
	}
	/* stays hot while it lasts */
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", AT(21), AT(70),
				!PORT2 || (r->u.port.temp_c > 70 &&
					   r->u.port.state == SP_PORT_CHARGING)), 0);
	/* the pile cuts the port at the end: over_temp, fault, then idle once cooled */
	CHECK(FIND(&got, SP_REC_SESSION, "chg-1", AT(70), AT(71),
		   r->u.session.port == 2 && r->u.session.reason == SP_STOP_OVER_TEMP &&
			   r->u.session.start == AT(10) && r->u.session.wh > 0) >= 0);
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", AT(70), AT(71),
		   PORT2 && r->u.port.state == SP_PORT_FAULT) >= 0);
	long cleared = FIND(&got, SP_REC_FAULT, "chg-1", AT(70), AT(160),
			    !r->u.fault.active && r->u.fault.port == 2);
	CHECK(cleared >= 0);
	if (cleared >= 0)
		CHECK(FIND(&got, SP_REC_PORT, "chg-1", got.r[cleared].ts, AT(300),
			   PORT2 && r->u.port.state == SP_PORT_IDLE) >= 0);
#undef PORT2
	capture_free(&got);
}

static void test_port_overpower(void)
{
	static const char *const sc[] = {"chg-1:port_overpower@10+60"};
	struct capture got = {0};

	run_scenarios(params(), sc, 1, 200, &got);
	check_codec(&got);
#define PORT1 (r->u.port.port == 1)
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", AT(10), AT(13), PORT1 && r->u.port.w > 1000) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", AT(13), AT(70),
				!PORT1 || (r->u.port.w > 1200 && r->u.port.w < 1400)), 0);
	CHECK(FIND(&got, SP_REC_SESSION, "chg-1", AT(70), AT(71),
		   r->u.session.port == 1 && r->u.session.reason == SP_STOP_OVERCURRENT) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", AT(71), AT(200),
				!PORT1 || r->u.port.w <= 1000), 0);
#undef PORT1
	capture_free(&got);
}

static void test_smoke(void)
{
	/* the overpower makes sure port 1 is charging when the smoke comes */
	static const char *const sc[] = {"chg-1/1:port_overpower@5", "chg-1:smoke@20+60"};
	struct capture got = {0};

	run_scenarios(params(), sc, 2, 200, &got);
	check_codec(&got);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_STATION, "chg-1", AT(0), AT(20), !r->u.station.smoke),
		     0);
	CHECK(FIND(&got, SP_REC_STATION, "chg-1", AT(20), AT(20) + 1, r->u.station.smoke) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_STATION, "chg-1", AT(20), AT(80), r->u.station.smoke),
		     0);
	CHECK(FIND(&got, SP_REC_SESSION, "chg-1", AT(20), AT(20) + 1,
		   r->u.session.port == 1 && r->u.session.reason == SP_STOP_SMOKE) >= 0);
	for (int k = 1; k <= 4; k++)
		CHECK(FIND(&got, SP_REC_PORT, "chg-1", AT(20), AT(20) + 1,
			   r->u.port.port == k && r->u.port.state == SP_PORT_DISABLED) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", AT(20), AT(80),
				r->u.port.state == SP_PORT_DISABLED && r->u.port.a == 0), 0);
	CHECK(FIND(&got, SP_REC_STATION, "chg-1", AT(80), AT(80) + 1, !r->u.station.smoke) >= 0);
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", AT(80), AT(80) + 1,
		   r->u.port.port == 1 && r->u.port.state == SP_PORT_IDLE) >= 0);
	capture_free(&got);
}

static void test_residual_current(void)
{
	static const char *const sc[] = {"chg-1/3:port_overheat@5", "chg-1:residual_current@20+60"};
	struct capture got = {0};

	run_scenarios(params(), sc, 2, 200, &got);
	check_codec(&got);
	CHECK(FIND(&got, SP_REC_STATION, "chg-1", AT(20), AT(20) + 1,
		   r->u.station.leak_ma >= 30) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_STATION, "chg-1", AT(20), AT(80),
				r->u.station.leak_ma >= 30 && r->u.station.leak_ma <= 50), 0);
	CHECK(FIND(&got, SP_REC_SESSION, "chg-1", AT(20), AT(20) + 1,
		   r->u.session.port == 3 && r->u.session.reason == SP_STOP_LEAKAGE) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", AT(20), AT(80),
				r->u.port.state != SP_PORT_CHARGING), 0);
	CHECK(FIND(&got, SP_REC_STATION, "chg-1", AT(80), AT(80) + 1,
		   r->u.station.leak_ma < 5) >= 0);
	capture_free(&got);
}

static void test_link_lost(void)
{
	/* one device at a time goes quiet; the others report on */
	static const char *const sc[] = {"lift-1:link_lost@10+100", "chg-1:link_lost@50+40"};
	struct capture got = {0};
	struct sim_scenario bad;
	char err[200];
	CHECK_EQ_INT(sim_scenario_parse(":link_lost@5", &bad, err, sizeof(err)), -1);
	CHECK_EQ_INT(sim_scenario_parse("chg-1/2:link_lost@5", &bad, err, sizeof(err)), -1);

	run_scenarios(params(), sc, 2, 160, &got);
	check_codec(&got);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(0), AT(10), true) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", AT(10), AT(110), false), 0);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(110), AT(145), true) >= 0);
	CHECK(FIND(&got, SP_REC_STATION, "chg-1", AT(0), AT(50), true) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_STATION, "chg-1", AT(50), AT(90), false), 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", AT(50), AT(90), false), 0);
	CHECK(FIND(&got, SP_REC_STATION, "chg-1", AT(90), AT(125), true) >= 0);
	capture_free(&got);
}

static void test_silent(void)
{
	static const char *const texts[] = {":silent@30+60"};
	struct sim_params p = params();
	struct sim_scenario sc;
	struct capture got = {0};

	CHECK_EQ_INT(sim_scenario_parse(texts[0], &sc, NULL, 0), 0);
	p.scenarios = &sc;
	p.nscenarios = 1;
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK(!sim_silent(s, AT(29) + 900));
	CHECK(sim_silent(s, AT(30)));
	CHECK(sim_silent(s, AT(89) + 900));
	CHECK(!sim_silent(s, AT(90)));
	run(s, T0, AT(200), &got);
	sim_destroy(s);
	check_codec(&got);
	long during = 0;
	for (size_t i = 0; i < got.n; i++)
		during += got.r[i].ts >= AT(30) && got.r[i].ts < AT(90);
	CHECK_EQ_INT(during, 0);
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(20), AT(30), true) >= 0 ||
	      FIND(&got, SP_REC_LIFT, "lift-1", AT(0), AT(1), true) >= 0);
	/* back at once: every device overdue reports in the first tick */
	CHECK(FIND(&got, SP_REC_LIFT, "lift-1", AT(90), AT(90) + 1, true) >= 0);
	CHECK(FIND(&got, SP_REC_STATION, "chg-1", AT(90), AT(90) + 1, true) >= 0);
	check_heartbeats(&got, 1, 1, 4, AT(90), AT(200), 30 * SEC);
	capture_free(&got);

	/* the agent passes no callback while silent: the same happens */
	s = sim_create(&p, T0);
	CHECK(s != NULL);
	for (int64_t t = T0; s != NULL && t <= AT(120); t += TICK)
		sim_step(s, t, sim_silent(s, t) ? NULL : collect, &got);
	CHECK(FIND(&got, SP_REC_STATION, "chg-1", AT(90), AT(90) + 1, true) >= 0);
	sim_destroy(s);
	capture_free(&got);
}

static void test_port_off(void)
{
	struct sim_params p = params();
	struct capture got = {0};
	int64_t t;
	int port = 0;

	p.time_scale = 50;
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sim_port_off(s, "chg-2", 1), -1);
	CHECK_EQ_INT(sim_port_off(s, "chg-1", 0), -1);
	CHECK_EQ_INT(sim_port_off(s, "chg-1", 5), -1);
	CHECK_EQ_INT(sim_port_off(s, "chg-01", 1), -1);
	CHECK_EQ_INT(sim_port_off(s, "lift-1", 1), -1);
	CHECK_EQ_INT(sim_port_off(s, "", 1), -1);
	CHECK_EQ_INT(sim_port_off(s, NULL, 1), -1);
	/* run until some port is charging */
	for (t = T0; port == 0 && t < T0 + 3600 * SEC; t += TICK) {
		sim_step(s, t, collect, &got);
		for (size_t i = 0; i < got.n; i++) {
			const struct sp_record *r = &got.r[i];
			if (r->kind == SP_REC_PORT && r->u.port.state == SP_PORT_CHARGING)
				port = r->u.port.port;
		}
	}
	CHECK(port > 0);
	if (port == 0)
		goto out;
	got.n = 0;
	CHECK_EQ_INT(sim_port_off(s, "chg-1", port), 0);
	sim_step(s, t, collect, &got);
	CHECK(FIND(&got, SP_REC_SESSION, "chg-1", t, t + 1,
		   r->u.session.port == port && r->u.session.reason == SP_STOP_REMOTE) >= 0);
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", t, t + 1,
		   r->u.port.port == port && r->u.port.state == SP_PORT_DISABLED) >= 0);
	/* disabled for good; a second command changes nothing */
	CHECK_EQ_INT(sim_port_off(s, "chg-1", port), 0);
	run(s, t + TICK, t + 600 * SEC, &got);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", t, t + 600 * SEC,
				r->u.port.port != port || r->u.port.state == SP_PORT_DISABLED), 0);
	CHECK(FIND(&got, SP_REC_SESSION, "chg-1", t + 1, t + 600 * SEC,
		   r->u.session.port == port) < 0);
	check_codec(&got);
out:
	sim_destroy(s);
	capture_free(&got);
}

/*
 * port_on (docs/protocol.md, Command): a port a port_off turned off is in
 * service again, reported at the next step, and takes sessions again; one
 * not off is left alone (1); a port_off and a port_on of the same tick leave
 * the port in service; a port kept off at start comes back too.
 */
static void test_port_on(void)
{
	struct sim_params p = params();
	struct capture got = {0};
	int64_t t = T0;

	p.time_scale = 50;
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	CHECK_EQ_INT(sim_port_on(s, "chg-2", 1), -1);
	CHECK_EQ_INT(sim_port_on(s, "chg-1", 0), -1);
	CHECK_EQ_INT(sim_port_on(s, "chg-1", 5), -1);
	CHECK_EQ_INT(sim_port_on(s, "lift-1", 1), -1);
	CHECK_EQ_INT(sim_port_on(s, NULL, 1), -1);
	CHECK_EQ_INT(sim_port_on(s, "chg-1", 1), 1); /* not off: nothing to do */
	/* kept off at start (a port_off before the restart), then a port_on before the first step */
	CHECK_EQ_INT(sim_port_keep_off(s, "chg-1", 4), 0);
	CHECK_EQ_INT(sim_port_on(s, "chg-1", 4), 0);
	run(s, t, t + 60 * SEC, &got);
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", t, t + 60 * SEC, r->u.port.port == 4) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", t, t + 60 * SEC,
				r->u.port.port != 4 || r->u.port.state != SP_PORT_DISABLED), 0);
	/* port 2 off, then back on */
	t += 60 * SEC + TICK;
	got.n = 0;
	CHECK_EQ_INT(sim_port_off(s, "chg-1", 2), 0);
	sim_step(s, t, collect, &got);
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", t, t + 1,
		   r->u.port.port == 2 && r->u.port.state == SP_PORT_DISABLED) >= 0);
	run(s, t + TICK, t + 60 * SEC, &got);
	t += 60 * SEC + TICK;
	got.n = 0;
	CHECK_EQ_INT(sim_port_on(s, "chg-1", 2), 0);
	CHECK_EQ_INT(sim_port_on(s, "chg-1", 2), 1); /* in service already */
	sim_step(s, t, collect, &got);
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", t, t + 1,
		   r->u.port.port == 2 && r->u.port.state == SP_PORT_IDLE) >= 0);
	/* in service from then on: a day of arrivals finds it too */
	run(s, t + TICK, t + 1728 * SEC, &got);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", t, t + 1728 * SEC,
				r->u.port.port != 2 || r->u.port.state != SP_PORT_DISABLED), 0);
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", t, t + 1728 * SEC,
		   r->u.port.port == 2 && r->u.port.state == SP_PORT_CHARGING) >= 0);
	/* a port_off and a port_on of the same tick: the port never leaves service */
	t += 1728 * SEC + TICK;
	got.n = 0;
	CHECK_EQ_INT(sim_port_off(s, "chg-1", 3), 0);
	CHECK_EQ_INT(sim_port_on(s, "chg-1", 3), 0);
	run(s, t, t + 60 * SEC, &got);
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", t, t + 60 * SEC, r->u.port.port == 3) >= 0);
	CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", t, t + 60 * SEC,
				r->u.port.port != 3 || r->u.port.state != SP_PORT_DISABLED), 0);
	CHECK(FIND(&got, SP_REC_SESSION, "chg-1", t, t + 60 * SEC,
		   r->u.session.reason == SP_STOP_REMOTE) < 0);
	check_codec(&got);
	sim_destroy(s);
	capture_free(&got);
}

/*
 * port_on for a port turned off while it overheats: the pile's own protection
 * stands, the port is in fault (not idle) until its over_temp fault clears,
 * then idle.
 */
static void test_port_on_hot(void)
{
	struct sim_params p = params();
	struct sim_scenario sc;
	struct capture got = {0};
	char err[256];

	CHECK_EQ_INT(sim_scenario_parse("chg-1/2:port_overheat@10+60", &sc, err, sizeof(err)), 0);
	p.scenarios = &sc;
	p.nscenarios = 1;
	struct sim *s = sim_create(&p, T0);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	run(s, T0, AT(30), &got);
	CHECK(FIND(&got, SP_REC_FAULT, "chg-1", AT(10), AT(30),
		   r->u.fault.active && r->u.fault.port == 2) >= 0);
	CHECK_EQ_INT(sim_port_off(s, "chg-1", 2), 0);
	run(s, AT(30) + TICK, AT(31), &got);
	CHECK_EQ_INT(sim_port_on(s, "chg-1", 2), 0);
	run(s, AT(31) + TICK, AT(200), &got);
#define PORT2 (r->u.port.port == 2)
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", AT(30), AT(31),
		   PORT2 && r->u.port.state == SP_PORT_DISABLED) >= 0);
	CHECK(FIND(&got, SP_REC_PORT, "chg-1", AT(31), AT(33),
		   PORT2 && r->u.port.state == SP_PORT_FAULT) >= 0);
	long cleared = FIND(&got, SP_REC_FAULT, "chg-1", AT(31), AT(200),
			    !r->u.fault.active && r->u.fault.port == 2);
	CHECK(cleared >= 0);
	if (cleared >= 0) {
		int64_t at = got.r[cleared].ts;
		CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_PORT, "chg-1", AT(32), at,
					!PORT2 || r->u.port.state == SP_PORT_FAULT), 0);
		CHECK(FIND(&got, SP_REC_PORT, "chg-1", at, AT(200),
			   PORT2 && r->u.port.state == SP_PORT_IDLE) >= 0);
	}
#undef PORT2
	check_codec(&got);
	sim_destroy(s);
	capture_free(&got);
}

/* Every situation at once on a small and a tall building: all records stay valid. */
static void test_all_situations_valid(void)
{
	static const char *const sc[] = {
		"lift-1:trapped_between_floors@10+40", "lift-2:trapped_at_landing@10+40",
		"lift-1:door_open_moving@60+30",       "lift-2:overspeed@60+60",
		"lift-1:on_battery@100+30",            "lift-2:safety_open@130+20",
		"lift-1:inspection@150+20",            "chg-1/2:port_overheat@10+30",
	};
	static const char *const sc2[] = {"chg-1/1:port_overpower@10+30", "chg-1:smoke@50+20",
					  "chg-2:residual_current@30+30", ":silent@90+20"};
	struct sim_params p = params();
	struct capture got = {0};

	p.lifts = 2;
	p.chargers = 2;
	for (int k = 0; k < 2; k++) {
		p.floor_min = k ? 1 : -2;
		p.floor_max = k ? 2 : 30;
		p.rated_speed = k ? 0.4 : 4;
		run_scenarios(p, sc, 8, 300, &got);
		run_scenarios(p, sc2, 4, 300, &got);
		check_codec(&got);
		CHECK_EQ_INT(VIOLATIONS(&got, SP_REC_LIFT, "lift-1", 0, AT(1000),
					r->u.lift.floor >= p.floor_min &&
						r->u.lift.floor <= p.floor_max &&
						r->u.lift.floor != 0),
			     0);
		capture_free(&got);
	}
}

int main(void)
{
	RUN(test_situation_names);
	RUN(test_scenario_parse);
	RUN(test_create_validation);
	RUN(test_devices);
	RUN(test_two_hours);
	RUN(test_charging_sessions);
	RUN(test_irregular_clock);
	RUN(test_fastest);
	RUN(test_heartbeat_spread);
	RUN(test_determinism);
	RUN(test_time_scale);
	RUN(test_trapped_between_floors);
	RUN(test_trapped_at_landing);
	RUN(test_door_open_moving);
	RUN(test_overspeed);
	RUN(test_on_battery);
	RUN(test_safety_open);
	RUN(test_inspection);
	RUN(test_port_overheat);
	RUN(test_port_overpower);
	RUN(test_smoke);
	RUN(test_residual_current);
	RUN(test_link_lost);
	RUN(test_silent);
	RUN(test_port_off);
	RUN(test_port_on);
	RUN(test_port_on_hot);
	RUN(test_all_situations_valid);
	HARNESS_EXIT();
}
