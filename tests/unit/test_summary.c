/*
 * test_summary.c - the city summary (summary.c, CONTRACT §6): hand-built
 * records of lifts and chargers over one hour; lifetime counters with a
 * reset and with and without a record before the period, decreases that
 * are no reset (out of order, spurious, a clock set back, also among the
 * records before the period), the growth's bound; availability
 * with overlapping critical and major alerts and an offline gap; online
 * share with and without a record before the period; charger sessions,
 * energy, stops, utilisation (ports' states, expiry after offline_ms),
 * peak power (station, and the ports' sum without one), maximum
 * temperature; the site's alerts block; devices of unknown kind; an empty
 * site; the number formats, the key order; a buffer limit.
 *
 * The body is parsed back with cJSON and compared field by field; the
 * formats are checked on the text.
 */
#include "harness.h"

#include "summary.h"
#include "sitepulse/error.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define SEC  1000LL
#define HOUR (3600 * SEC)
#define S0   1764320400000LL /* the period's start: 2025-11-28T09:00:00Z, on the hour */
#define E0   (S0 + HOUR)
#define OFF  (120 * SEC) /* offline after 2 minutes of silence */
#define GEN  (E0 + 600 * SEC)
#define NONE NAN /* an optional field left out */

/* ------------------------------------------------------------ records */

static struct sp_record rec(enum sp_rec_kind kind, const char *dev, int64_t ts)
{
	struct sp_record r;
	memset(&r, 0, sizeof(r));
	r.kind = kind;
	snprintf(r.dev, sizeof(r.dev), "%s", dev);
	r.ts = ts;
	return r;
}

static struct sp_record lift(const char *dev, int64_t ts, int64_t trips, int64_t door_cycles,
			     int64_t run_s)
{
	struct sp_record r = rec(SP_REC_LIFT, dev, ts);
	r.u.lift.floor = 1;
	r.u.lift.dir = SP_DIR_STOP;
	r.u.lift.door = SP_DOOR_CLOSED;
	r.u.lift.mode = SP_MODE_NORMAL;
	r.u.lift.trips = trips;
	r.u.lift.door_cycles = door_cycles;
	r.u.lift.run_s = run_s;
	r.has = SP_HAS_TRIPS | SP_HAS_DOOR_CYCLES | SP_HAS_RUN_S;
	return r;
}

static struct sp_record station(const char *dev, int64_t ts, double power_w)
{
	struct sp_record r = rec(SP_REC_STATION, dev, ts);
	if (!isnan(power_w)) {
		r.u.station.power_w = power_w;
		r.has |= SP_HAS_POWER_W;
	}
	return r;
}

static struct sp_record port(const char *dev, int64_t ts, int32_t p, enum sp_port_state st,
			     double w, double temp_c)
{
	struct sp_record r = rec(SP_REC_PORT, dev, ts);
	r.u.port.port = p;
	r.u.port.state = st;
	if (!isnan(w)) {
		r.u.port.w = w;
		r.has |= SP_HAS_W;
	}
	if (!isnan(temp_c)) {
		r.u.port.temp_c = temp_c;
		r.has |= SP_HAS_TEMP_C;
	}
	return r;
}

static struct sp_record session(const char *dev, int64_t ts, int32_t p, double wh,
				enum sp_stop_reason reason)
{
	struct sp_record r = rec(SP_REC_SESSION, dev, ts);
	r.u.session.port = p;
	r.u.session.start = ts - 600 * SEC;
	r.u.session.end = ts;
	r.u.session.wh = wh;
	r.u.session.reason = reason;
	return r;
}

static struct sp_record fault(const char *dev, int64_t ts, const char *code, bool active, int32_t p)
{
	struct sp_record r = rec(SP_REC_FAULT, dev, ts);
	snprintf(r.u.fault.code, sizeof(r.u.fault.code), "%s", code);
	r.u.fault.active = active;
	if (p) {
		r.u.fault.port = p;
		r.has |= SP_HAS_PORT;
	}
	return r;
}

/* A device's records, sorted into time order (equal times keep their order). */
#define RECS_MAX 1024
struct recs {
	struct sp_record v[RECS_MAX];
	size_t n;
};

static void add(struct recs *l, struct sp_record r)
{
	if (l->n < RECS_MAX)
		l->v[l->n++] = r;
	else
		CHECK(!"RECS_MAX too small");
}

static void sort_recs(struct recs *l)
{
	for (size_t i = 1; i < l->n; i++) /* insertion sort: stable */
		for (size_t j = i; j > 0 && l->v[j - 1].ts > l->v[j].ts; j--) {
			struct sp_record t = l->v[j];
			l->v[j] = l->v[j - 1];
			l->v[j - 1] = t;
		}
}

/* Feeds one device with its before records and its (sorted) records. */
static void feed(struct summary *s, const char *dev, enum sp_dev_kind kind, int32_t ports,
		 const struct sp_record *before, size_t nbefore, struct recs *l)
{
	struct summary_device d = {dev, kind, ports, before, nbefore};
	CHECK_EQ_INT(summary_device(s, &d), 0);
	if (l == NULL)
		return;
	sort_recs(l);
	for (size_t i = 0; i < l->n; i++)
		CHECK_EQ_INT(summary_record(s, &l->v[i]), 0);
}

static void alert(struct summary *s, const char *rule, const char *dev, const char *sev,
		  int64_t opened_at, int64_t cleared_at)
{
	struct summary_alert a = {rule, dev, sev, opened_at, cleared_at};
	CHECK_EQ_INT(summary_alert(s, &a), 0);
}

static struct summary *begin(void)
{
	struct summary_period p = {"hp-ruijin-07", S0, E0, GEN, OFF};
	struct summary *s = summary_begin(&p);
	CHECK(s != NULL);
	return s;
}

/* Finishes s into b (reset first) and frees it; returns the parsed body or NULL. */
static cJSON *finish(struct summary *s, struct sp_buf *b)
{
	sp_buf_reset(b);
	int rc = summary_finish(s, b);
	summary_free(s);
	CHECK_EQ_INT(rc, 0);
	if (rc)
		return NULL;
	cJSON *j = cJSON_ParseWithLength(b->data, b->len);
	CHECK(j != NULL);
	if (j == NULL)
		fprintf(stderr, "  not JSON: %s\n", b->data);
	return j;
}

/* ------------------------------------------------------------ reading the body */

static const cJSON *get(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (v == NULL)
		fprintf(stderr, "  no key \"%s\"\n", key);
	return v;
}

/* The device dev in list ("lifts" or "chargers"), or NULL. */
static const cJSON *device(const cJSON *body, const char *list, const char *dev)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, get(body, list))
	{
		const cJSON *d = get(e, "dev");
		if (cJSON_IsString(d) && strcmp(d->valuestring, dev) == 0)
			return e;
	}
	fprintf(stderr, "  no %s \"%s\"\n", list, dev);
	return NULL;
}

/* A number field, or NAN when absent or not a number. */
static double num(const cJSON *o, const char *key)
{
	const cJSON *v = get(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

#define CHECK_NUM(o, key, want)                                                                    \
	do {                                                                                       \
		double got_ = num((o), (key));                                                     \
		harness_checks++;                                                                  \
		if (!(fabs(got_ - (double)(want)) < 1e-9)) {                                       \
			harness_failures++;                                                        \
			fprintf(stderr, "%s:%d: CHECK failed: %s = %.17g, want %.17g\n", __FILE__, \
				__LINE__, (key), got_, (double)(want));                            \
		}                                                                                  \
	} while (0)

/* The number of keys of an object field. */
static int nkeys(const cJSON *o, const char *key)
{
	const cJSON *v = get(o, key);
	return cJSON_IsObject(v) ? cJSON_GetArraySize(v) : -1;
}

/* ------------------------------------------------------------ the site */

/*
 * lift-1: counters 100/200/1000 before the period; records at 60 and 120 s,
 * silent until 600 s (offline 240..600 s), a device reset at 600 s, then a
 * record a minute to the end; faults E12 (twice raised, once cleared) and E07.
 * lift-2: nothing at all. chg-1: 4 ports, port 1 charging since before the
 * period. chg-2: kind unknown, no station power, 2 ports seen. x-9: unknown,
 * no records: left out.
 */
static void lift_1(struct summary *s)
{
	static struct recs l;
	l.n = 0;
	struct sp_record before[] = {lift("lift-1", S0 - 30 * SEC, 100, 200, 1000)};
	add(&l, lift("lift-1", S0 + 60 * SEC, 105, 210, 1030));
	add(&l, lift("lift-1", S0 + 120 * SEC, 110, 220, 1060));
	for (int64_t k = 0, t = 600; t < 3600; t += 60, k++)
		add(&l, lift("lift-1", S0 + t * SEC, 3 + k, 4 + 2 * k, 10 + 30 * k));
	add(&l, fault("lift-1", S0 + 800 * SEC, "E12", true, 0));
	add(&l, fault("lift-1", S0 + 1200 * SEC, "E12", false, 0));
	add(&l, fault("lift-1", S0 + 2000 * SEC, "E12", true, 0));
	add(&l, fault("lift-1", S0 + 2100 * SEC, "E07", true, 0));
	feed(s, "lift-1", SP_DEV_LIFT, 0, before, 1, &l);
}

static void chg_1(struct summary *s)
{
	static struct recs l;
	l.n = 0;
	struct sp_record before[] = {
	    port("chg-1", S0 - 30 * SEC, 1, SP_PORT_CHARGING, 500, 30),
	    station("chg-1", S0 - 30 * SEC, 900),
	};
	for (int64_t t = 30; t < 3600; t += 60) {
		int64_t ts = S0 + t * SEC;
		add(&l, station("chg-1", ts, t == 1230 ? 1800.4 : 1000));
		if (t < 1800)
			add(&l, port("chg-1", ts, 1, SP_PORT_CHARGING, 600, 35));
		else
			add(&l, port("chg-1", ts, 1, SP_PORT_FULL, 0, 33));
		if (t >= 900 && t < 1500)
			add(&l, port("chg-1", ts, 2, SP_PORT_CHARGING, 500, 30));
		else
			add(&l, port("chg-1", ts, 2, SP_PORT_IDLE, 0, 30));
		add(&l, port("chg-1", ts, 3, SP_PORT_IDLE, 0, t == 2010 ? 41.04 : 25));
		if (t < 3000)
			add(&l, port("chg-1", ts, 4, SP_PORT_FAULT, 0, NONE));
	}
	add(&l, session("chg-1", S0 + 1530 * SEC, 2, 300.3, SP_STOP_UNPLUGGED));
	add(&l, session("chg-1", S0 + 1830 * SEC, 1, 1234.4, SP_STOP_FULL));
	add(&l, session("chg-1", S0 + 2500 * SEC, 3, 10.2, SP_STOP_FULL));
	feed(s, "chg-1", SP_DEV_CHARGER, 4, before, 2, &l);
}

static void chg_2(struct summary *s)
{
	static struct recs l;
	l.n = 0;
	add(&l, port("chg-2", S0 + 0 * SEC, 1, SP_PORT_CHARGING, 700, NONE));
	add(&l, port("chg-2", S0 + 10 * SEC, 2, SP_PORT_CHARGING, 800, NONE));
	add(&l, port("chg-2", S0 + 70 * SEC, 1, SP_PORT_CHARGING, 650, NONE));
	/* port 1's record of 70 s is older than 2 minutes at 200 s: not in the sum */
	add(&l, port("chg-2", S0 + 200 * SEC, 2, SP_PORT_CHARGING, 900, NONE));
	feed(s, "chg-2", SP_DEV_UNKNOWN, 0, NULL, 0, &l);
}

static void site_alerts(struct summary *s)
{
	alert(s, "lift.trapped", "lift-1", "critical", S0 - 600 * SEC, S0 + 30 * SEC);
	alert(s, "lift.trapped", "lift-1", "critical", S0 + 300 * SEC, S0 + 900 * SEC);
	alert(s, "lift.fault.E12", "lift-1", "major", S0 + 800 * SEC, S0 + 1200 * SEC);
	alert(s, "lift.door_open_long", "lift-1", "minor", S0 + 1500 * SEC, S0 + 1700 * SEC);
	alert(s, "lift.fault.E12", "lift-1", "major", S0 + 2000 * SEC + 500, 0);
	alert(s, "lift.trapped", "lift-2", "critical", S0 + 100 * SEC, S0 + 200 * SEC);
	alert(s, "port.over_temp", "chg-1", "critical", S0 + 2010 * SEC, S0 + 2100 * SEC);
	alert(s, "port.over_temp", "chg-1", "critical", S0 + 2400 * SEC, S0 + 2460 * SEC);
	alert(s, "charger.fault.E05", "chg-1", "major", S0 - 500 * SEC, 0);
	alert(s, "port.fault", "chg-1", "major", S0 + 40 * SEC, 0);
	alert(s, "charger.door_open", "chg-2", "minor", S0 + 3000 * SEC, E0);
	alert(s, "lift.mode", "ghost", "warning", S0 + 10 * SEC, E0 + 100 * SEC);
}

/* The whole site in b; the parsed body (cJSON_Delete it) or NULL. */
static cJSON *site(struct sp_buf *b)
{
	struct summary *s = begin();
	if (s == NULL)
		return NULL;
	lift_1(s);
	feed(s, "lift-2", SP_DEV_LIFT, 0, NULL, 0, NULL);
	chg_1(s);
	feed(s, "x-9", SP_DEV_UNKNOWN, 0, NULL, 0, NULL);
	chg_2(s);
	site_alerts(s);
	return finish(s, b);
}

/* ------------------------------------------------------------ tests */

static void test_header_fields(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	cJSON *j = site(&b);
	CHECK(j != NULL);
	CHECK_NUM(j, "v", 1);
	CHECK(cJSON_IsString(get(j, "site")) &&
	      strcmp(get(j, "site")->valuestring, "hp-ruijin-07") == 0);
	CHECK_NUM(j, "period_start", S0);
	CHECK_NUM(j, "period_end", E0);
	CHECK_NUM(j, "generated_at", GEN);
	CHECK_EQ_INT(cJSON_GetArraySize(get(j, "lifts")), 2);
	CHECK_EQ_INT(cJSON_GetArraySize(get(j, "chargers")), 2);
	/* devices in the order given; x-9 (unknown, no records) left out; chg-2 by its records */
	CHECK_EQ_STR(cJSON_GetArrayItem(get(j, "lifts"), 0)->child->valuestring, "lift-1");
	CHECK_EQ_STR(cJSON_GetArrayItem(get(j, "lifts"), 1)->child->valuestring, "lift-2");
	CHECK_EQ_STR(cJSON_GetArrayItem(get(j, "chargers"), 0)->child->valuestring, "chg-1");
	CHECK_EQ_STR(cJSON_GetArrayItem(get(j, "chargers"), 1)->child->valuestring, "chg-2");
	CHECK(strstr(b.data, "x-9") == NULL);
	cJSON_Delete(j);
	sp_buf_free(&b);
}

static void test_lift_counters_with_reset(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	cJSON *j = site(&b);
	const cJSON *l = device(j, "lifts", "lift-1");
	/* 100 -> 105 -> 110, reset to 3, then +1 a minute for 49 minutes */
	CHECK_NUM(l, "trips", 5 + 5 + 3 + 49);
	CHECK_NUM(l, "door_cycles", 10 + 10 + 4 + 98);
	CHECK_NUM(l, "run_s", 30 + 30 + 10 + 1470);
	/* a lift with no records counts nothing */
	const cJSON *l2 = device(j, "lifts", "lift-2");
	CHECK_NUM(l2, "trips", 0);
	CHECK_NUM(l2, "door_cycles", 0);
	CHECK_NUM(l2, "run_s", 0);
	cJSON_Delete(j);
	sp_buf_free(&b);
}

/* Without a record before the period the first value in it is the base. */
static void test_counters_without_before(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct summary *s = begin();
	struct recs *l = calloc(1, sizeof(*l));
	add(l, lift("l", S0 + 10 * SEC, 500, 50, 7000));
	add(l, lift("l", S0 + 20 * SEC, 520, 60, 7100));
	struct sp_record no_counters = lift("l", S0 + 30 * SEC, 0, 0, 0);
	no_counters.has = 0; /* a record without counters changes nothing */
	add(l, no_counters);
	add(l, lift("l", S0 + 40 * SEC, 10, 2, 100)); /* a reset */
	add(l, lift("l", S0 + 50 * SEC, 15, 4, 160));
	/* only trips is sent on the next one */
	struct sp_record trips_only = lift("l", S0 + 60 * SEC, 16, 0, 0);
	trips_only.has = SP_HAS_TRIPS;
	add(l, trips_only);
	/* a lift record before the period older than the one passed is not the base */
	struct sp_record before[] = {lift("l", S0 - 90 * SEC, 400, 40, 6000),
				     lift("l", S0 - 9 * HOUR, 1, 1, 1)};
	feed(s, "l", SP_DEV_LIFT, 0, NULL, 0, l);
	feed(s, "m", SP_DEV_LIFT, 0, before, 2, l);
	cJSON *j = finish(s, &b);
	const cJSON *d = device(j, "lifts", "l");
	CHECK_NUM(d, "trips", 20 + 10 + 5 + 1);
	CHECK_NUM(d, "door_cycles", 10 + 2 + 2);
	CHECK_NUM(d, "run_s", 100 + 100 + 60);
	/* m: the same records (named l, which does not matter here) over a base before */
	const cJSON *m = device(j, "lifts", "m");
	CHECK_NUM(m, "trips", 100 + 20 + 10 + 5 + 1);
	CHECK_NUM(m, "door_cycles", 10 + 10 + 2 + 2);
	CHECK_NUM(m, "run_s", 1000 + 100 + 100 + 60);
	cJSON_Delete(j);
	free(l);
	sp_buf_free(&b);
}

/*
 * Counters are optional (CONTRACT §3.2) and come less often than state
 * records: each counter's base is the newest record before the period that
 * carries it, not the newest lift record, which may carry none (its base
 * would then be the first value in the period, losing the growth between).
 */
static void test_counter_base_skips_records_without_it(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct summary *s = begin();
	struct recs *l = calloc(1, sizeof(*l));
	add(l, lift("l", S0 + 40 * SEC, 1100, 2200, 9000));
	struct sp_record state = lift("l", S0 - 65 * SEC, 0, 0, 0);
	state.has = 0;
	struct sp_record trips_only = lift("l", S0 - 30 * SEC, 1050, 0, 0);
	trips_only.has = SP_HAS_TRIPS;
	struct sp_record before[] = {lift("l", S0 - 100 * SEC, 1000, 2000, 8000), state, trips_only};
	feed(s, "l", SP_DEV_LIFT, 0, before, 3, l);
	cJSON *j = finish(s, &b);
	const cJSON *d = device(j, "lifts", "l");
	CHECK_NUM(d, "trips", 50); /* from the trips-only record, the newest carrying it */
	CHECK_NUM(d, "door_cycles", 200);
	CHECK_NUM(d, "run_s", 1000);
	cJSON_Delete(j);
	free(l);
	sp_buf_free(&b);
}

/* A lift's counters, the three moving together (door_cycles 2 x, run_s 10 x trips). */
static struct sp_record counters(const char *dev, int64_t ts, int64_t trips)
{
	return lift(dev, ts, trips, 2 * trips, 10 * trips);
}

#define CHECK_COUNTERS(d, want)                                                                    \
	do {                                                                                       \
		CHECK_NUM((d), "trips", (want));                                                   \
		CHECK_NUM((d), "door_cycles", 2 * (want));                                         \
		CHECK_NUM((d), "run_s", 10 * (want));                                              \
	} while (0)

/*
 * A counter going down is a reset only when it restarts low (below half of
 * where it stood); a little lower is an out-of-order or spurious value that
 * adds nothing and leaves the baseline where it was; a "reset" followed by
 * a value back at or above the old baseline was a spurious low value.
 */
static void test_counter_decreases(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct summary *s = begin();
	struct recs *l = calloc(1, sizeof(*l));
	struct sp_record before[] = {counters("x", S0 - 60 * SEC, 311000)};
	/* a real reset: counts from 0 */
	add(l, counters("x", S0 + 10 * SEC, 3));
	add(l, counters("x", S0 + 20 * SEC, 10));
	feed(s, "reset", SP_DEV_LIFT, 0, before, 1, l);
	/* one spurious 0 */
	l->n = 0;
	add(l, counters("x", S0 + 10 * SEC, 0));
	add(l, counters("x", S0 + 20 * SEC, 311005));
	feed(s, "glitch", SP_DEV_LIFT, 0, before, 1, l);
	/* the same without a record before the period */
	l->n = 0;
	add(l, counters("x", S0 + 5 * SEC, 311000));
	add(l, counters("x", S0 + 10 * SEC, 0));
	add(l, counters("x", S0 + 20 * SEC, 311005));
	feed(s, "glitch-first", SP_DEV_LIFT, 0, NULL, 0, l);
	/* a spurious low run (0, then 3) until the counter shows again */
	l->n = 0;
	add(l, counters("x", S0 + 10 * SEC, 0));
	add(l, counters("x", S0 + 20 * SEC, 3));
	add(l, counters("x", S0 + 30 * SEC, 311005));
	add(l, counters("x", S0 + 40 * SEC, 311007));
	feed(s, "glitch-run", SP_DEV_LIFT, 0, before, 1, l);
	/* a little lower: out of order; the baseline stays at 311000 */
	l->n = 0;
	add(l, counters("x", S0 + 10 * SEC, 310990));
	add(l, counters("x", S0 + 20 * SEC, 310995));
	add(l, counters("x", S0 + 30 * SEC, 311000));
	add(l, counters("x", S0 + 40 * SEC, 311005));
	feed(s, "lower", SP_DEV_LIFT, 0, before, 1, l);
	cJSON *j = finish(s, &b);
	CHECK_COUNTERS(device(j, "lifts", "reset"), 10);
	CHECK_COUNTERS(device(j, "lifts", "glitch"), 5);
	CHECK_COUNTERS(device(j, "lifts", "glitch-first"), 5);
	CHECK_COUNTERS(device(j, "lifts", "glitch-run"), 7);
	CHECK_COUNTERS(device(j, "lifts", "lower"), 5);
	cJSON_Delete(j);
	free(l);
	sp_buf_free(&b);
}

/*
 * A gateway clock set back 5 minutes half-way through the period: records
 * of the old and the new timeline interleave in time order for 5 minutes,
 * each new one 15 trips ahead of the old one beside it (a trip every 20 s
 * of real time). The growth is the true one: the last value (the newest in
 * real time, 311194) less the base.
 */
static void test_counter_interleaved_timelines(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct summary *s = begin();
	struct recs *l = calloc(1, sizeof(*l));
	struct sp_record before[] = {counters("l", S0 - 20 * SEC, 310999)};
	/* t: real time, until the records reach ts 3580 s */
	for (int64_t t = 0; t < 3900; t += 20) {
		int64_t ts = t < 1800 ? t : t - 300; /* the clock 300 s back from 1800 s on */
		add(l, counters("l", S0 + ts * SEC, 311000 + t / 20));
	}
	feed(s, "l", SP_DEV_LIFT, 0, before, 1, l);
	cJSON *j = finish(s, &b);
	CHECK_COUNTERS(device(j, "lifts", "l"), 311194 - 310999);
	CHECK_NUM(device(j, "lifts", "l"), "online_pct", 100.0);
	cJSON_Delete(j);
	free(l);
	sp_buf_free(&b);
}

/*
 * The records before the period carrying a counter go through the same
 * rule (their growth not counted): a spurious low value, or an old
 * timeline's value, as the newest of them is no baseline to count the
 * whole counter from.
 */
static void test_counter_decreases_before_the_period(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct summary *s = begin();
	struct recs *l = calloc(1, sizeof(*l));
	/* given newest first: any order will do */
	struct sp_record glitch[] = {counters("x", S0 - 300 * SEC, 0),
				     counters("x", S0 - 1200 * SEC, 311000)};
	add(l, counters("x", S0 + 10 * SEC, 311005));
	add(l, counters("x", S0 + 20 * SEC, 311010));
	feed(s, "glitch", SP_DEV_LIFT, 0, glitch, 2, l);
	struct sp_record late[] = {counters("x", S0 - 60 * SEC, 311010),
				   counters("x", S0 - 40 * SEC, 311000)};
	l->n = 0;
	add(l, counters("x", S0 + 10 * SEC, 311012));
	feed(s, "interleaved", SP_DEV_LIFT, 0, late, 2, l);
	struct sp_record reset[] = {counters("x", S0 - 1200 * SEC, 311000),
				    counters("x", S0 - 300 * SEC, 3)};
	l->n = 0;
	add(l, counters("x", S0 + 10 * SEC, 10));
	feed(s, "reset", SP_DEV_LIFT, 0, reset, 2, l);
	/*
	 * a spurious run before the period (0, then 100: the period before
	 * counted 100) that proves spurious in this one: what the period before
	 * counted for it is taken back, down to 0 (a summary never counts
	 * below 0)
	 */
	struct sp_record run[] = {counters("x", S0 - 1200 * SEC, 311000),
				  counters("x", S0 - 600 * SEC, 0),
				  counters("x", S0 - 300 * SEC, 100)};
	l->n = 0;
	add(l, counters("x", S0 + 10 * SEC, 311005));
	add(l, counters("x", S0 + 20 * SEC, 311200));
	feed(s, "run", SP_DEV_LIFT, 0, run, 3, l);
	l->n = 0;
	add(l, counters("x", S0 + 10 * SEC, 311005));
	feed(s, "run-short", SP_DEV_LIFT, 0, run, 3, l);
	cJSON *j = finish(s, &b);
	CHECK_COUNTERS(device(j, "lifts", "glitch"), 10);
	CHECK_COUNTERS(device(j, "lifts", "interleaved"), 2);
	CHECK_COUNTERS(device(j, "lifts", "reset"), 7);
	CHECK_COUNTERS(device(j, "lifts", "run"), 200 - 100);
	CHECK_COUNTERS(device(j, "lifts", "run-short"), 0);
	cJSON_Delete(j);
	free(l);
	sp_buf_free(&b);
}

/*
 * Counters go up to 2^53-1 (the codec's bound): a device that resets and
 * regrows them over and over in a period (0, then up to 2^53-1 in eighths,
 * again and again: each a real reset, regrown by steps) would overflow a
 * 64-bit sum after 1024 rounds. The growth stops at 2^53-1 (exact in a
 * JSON number).
 */
static void test_counter_saturates(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct summary *s = begin();
	const int64_t eighth = 9007199254740991LL / 8;
	struct summary_device d = {"l", SP_DEV_LIFT, 0, NULL, 0};
	CHECK_EQ_INT(summary_device(s, &d), 0);
	for (int64_t i = 0; i < 9 * 1100; i++) {
		struct sp_record r = lift("l", S0 + i * SEC / 3, i % 9 * eighth, 0, 0);
		r.has = SP_HAS_TRIPS;
		CHECK_EQ_INT(summary_record(s, &r), 0);
	}
	cJSON *j = finish(s, &b);
	CHECK(b.data != NULL && strstr(b.data, "\"trips\":9007199254740991,") != NULL);
	if (b.data != NULL && strstr(b.data, "\"trips\":9007199254740991,") == NULL)
		fprintf(stderr, "  got %s\n", b.data);
	cJSON_Delete(j);
	sp_buf_free(&b);
}

static void test_availability_and_online(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	cJSON *j = site(&b);
	const cJSON *l = device(j, "lifts", "lift-1");
	/*
	 * Online: [0, 240 s) (the record 30 s before the start covers it) and
	 * [600 s, end): 3240 s of 3600 = 90.0 %. Down: trapped [-600, 30),
	 * offline [240, 600), trapped [300, 900), E12 major [800, 1200), E12
	 * [2000.5, end) = 30 + 960 + 1599.5 s; the minor alert counts nothing.
	 */
	CHECK_NUM(l, "online_pct", 90.0);
	CHECK_NUM(l, "downtime_s", 2589);
	CHECK_NUM(l, "availability_pct", 28.1); /* 1010.5 / 3600 = 28.07 % */
	CHECK_NUM(l, "trapped", 1);             /* the one opened before the period is not */
	CHECK_EQ_INT(nkeys(l, "faults"), 2);
	CHECK_NUM(get(l, "faults"), "E07", 1);
	CHECK_NUM(get(l, "faults"), "E12", 2);
	/* lift-2: no record, so offline all along; its own critical alert changes nothing */
	const cJSON *l2 = device(j, "lifts", "lift-2");
	CHECK_NUM(l2, "online_pct", 0.0);
	CHECK_NUM(l2, "availability_pct", 0.0);
	CHECK_NUM(l2, "downtime_s", 3600);
	CHECK_NUM(l2, "trapped", 1);
	CHECK_EQ_INT(nkeys(l2, "faults"), 0);
	cJSON_Delete(j);
	sp_buf_free(&b);
}

/* A record before the period covers its start only if it is within offline_ms of it. */
static void test_online_before(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct summary *s = begin();
	struct sp_record near[] = {lift("a", S0 - 60 * SEC, 1, 1, 1)};
	struct sp_record far[] = {lift("b", S0 - 121 * SEC, 1, 1, 1)};
	struct recs *l = calloc(1, sizeof(*l));
	for (int64_t t = 600; t < 3600; t += 100)
		add(l, lift("a", S0 + t * SEC, 1, 1, 1));
	feed(s, "a", SP_DEV_LIFT, 0, near, 1, l);
	feed(s, "b", SP_DEV_LIFT, 0, far, 1, l);
	/* no alerts: only offline time is down */
	cJSON *j = finish(s, &b);
	const cJSON *a = device(j, "lifts", "a"), *bb = device(j, "lifts", "b");
	/* a: [0, 60) and [600, end): 3060 s = 85.0 %; b: [600, end) = 83.3 % */
	CHECK_NUM(a, "online_pct", 85.0);
	CHECK_NUM(a, "downtime_s", 540);
	CHECK_NUM(a, "availability_pct", 85.0);
	CHECK_NUM(bb, "online_pct", 83.3);
	CHECK_NUM(bb, "downtime_s", 600);
	CHECK_NUM(bb, "availability_pct", 83.3);
	cJSON_Delete(j);
	free(l);
	sp_buf_free(&b);
}

static void test_charger(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	cJSON *j = site(&b);
	const cJSON *c = device(j, "chargers", "chg-1");
	CHECK_NUM(c, "sessions", 3);
	CHECK_NUM(c, "energy_wh", 1545); /* 300.3 + 1234.4 + 10.2 = 1544.9 */
	/*
	 * Port 1 charging from the start (its record 30 s before) to its first
	 * "full" at 1830 s; port 2 from 930 to 1530 s: 2430 s of 4 x 3600 s.
	 */
	CHECK_NUM(c, "utilization_pct", 16.9);
	CHECK_NUM(c, "peak_w", 1800); /* station power 1800.4 */
	CHECK_EQ_INT(nkeys(c, "stops"), 2);
	CHECK_NUM(get(c, "stops"), "full", 2);
	CHECK_NUM(get(c, "stops"), "unplugged", 1);
	/* opened in the period; charger.fault.E05 was opened before it */
	CHECK_EQ_INT(nkeys(c, "alarms"), 2);
	CHECK_NUM(get(c, "alarms"), "port.over_temp", 2);
	CHECK_NUM(get(c, "alarms"), "port.fault", 1);
	CHECK_NUM(c, "max_temp_c", 41.0); /* 41.04 */
	CHECK_NUM(c, "online_pct", 100.0);
	cJSON_Delete(j);
	sp_buf_free(&b);
}

/* No station power: the peak of the ports' sum; ports counted from the records. */
static void test_charger_without_station(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	cJSON *j = site(&b);
	const cJSON *c = device(j, "chargers", "chg-2");
	CHECK_NUM(c, "peak_w", 1500);
	/*
	 * Port 1: [0, 70) then [70, 190) (its state expires 2 minutes after its
	 * record); port 2: [10, 130) and [200, 320): 430 s of 2 x 3600 s.
	 */
	CHECK_NUM(c, "utilization_pct", 6.0);
	CHECK_NUM(c, "online_pct", 8.6); /* [0, 190) and [200, 320) */
	CHECK_NUM(c, "sessions", 0);
	CHECK_NUM(c, "energy_wh", 0);
	CHECK_EQ_INT(nkeys(c, "stops"), 0);
	CHECK(cJSON_IsNull(get(c, "max_temp_c")));
	CHECK_EQ_INT(nkeys(c, "alarms"), 1);
	CHECK_NUM(get(c, "alarms"), "charger.door_open", 1);
	cJSON_Delete(j);
	sp_buf_free(&b);
}

static void test_alerts_block(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	cJSON *j = site(&b);
	const cJSON *a = get(j, "alerts");
	/* opened in the period: all but the two opened before it */
	CHECK_NUM(a, "opened", 10);
	/* cleared in it: the four of lift-1 with a clear, lift-2's, chg-1's two over_temp */
	CHECK_NUM(a, "cleared", 7);
	/* E12 still open, E05, port.fault, the door cleared at the very end, ghost's */
	CHECK_NUM(a, "active_at_end", 5);
	const cJSON *sev = get(a, "by_severity");
	CHECK_EQ_INT(cJSON_GetArraySize(sev), 4);
	CHECK_NUM(sev, "critical", 4);
	CHECK_NUM(sev, "major", 3);
	CHECK_NUM(sev, "minor", 2);
	CHECK_NUM(sev, "warning", 1);
	cJSON_Delete(j);
	sp_buf_free(&b);
}

static void test_empty_site(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct summary *s = begin();
	cJSON *j = finish(s, &b);
	char want[512];
	snprintf(want, sizeof(want),
		 "{\"v\":1,\"site\":\"hp-ruijin-07\",\"period_start\":%lld,\"period_end\":%lld,"
		 "\"generated_at\":%lld,\"lifts\":[],\"chargers\":[],\"alerts\":{\"opened\":0,"
		 "\"cleared\":0,\"active_at_end\":0,\"by_severity\":{\"critical\":0,\"major\":0,"
		 "\"minor\":0,\"warning\":0}}}",
		 (long long)S0, (long long)E0, (long long)GEN);
	CHECK_EQ_STR(b.data, want);
	CHECK(j != NULL);
	cJSON_Delete(j);
	sp_buf_free(&b);
}

/* Integers print as integers, shares with one decimal; keys in CONTRACT §6's order. */
static void test_formats_and_key_order(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	cJSON *j = site(&b);
	CHECK(strstr(b.data,
		     "\"trips\":62,\"door_cycles\":122,\"run_s\":1540,"
		     "\"availability_pct\":28.1,\"downtime_s\":2589,"
		     "\"faults\":{\"E07\":1,\"E12\":2},\"trapped\":1,\"online_pct\":90.0}") !=
	      NULL);
	CHECK(strstr(b.data, "{\"dev\":\"chg-1\",\"sessions\":3,\"energy_wh\":1545,"
			     "\"utilization_pct\":16.9,\"peak_w\":1800,"
			     "\"stops\":{\"full\":2,\"unplugged\":1},"
			     "\"alarms\":{\"port.fault\":1,\"port.over_temp\":2},"
			     "\"max_temp_c\":41.0,\"online_pct\":100.0}") != NULL);
	CHECK(strstr(b.data, "\"max_temp_c\":null,\"online_pct\":8.6}") != NULL);
	const char *order[] = {"\"v\":",          "\"site\":",          "\"period_start\":",
			       "\"period_end\":", "\"generated_at\":",  "\"lifts\":",
			       "\"chargers\":",   "\"alerts\":",        "\"opened\":",
			       "\"cleared\":",    "\"active_at_end\":", "\"by_severity\":"};
	const char *at = b.data;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *p = strstr(at, order[i]);
		CHECK(p != NULL);
		if (p == NULL)
			break;
		at = p;
	}
	cJSON_Delete(j);
	sp_buf_free(&b);
}

/* One decimal also below zero; devices of unknown kind decided by their records. */
static void test_negative_temp_and_unknown_lift(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct summary *s = begin();
	struct recs *l = calloc(1, sizeof(*l));
	add(l, port("c", S0 + 1 * SEC, 1, SP_PORT_IDLE, 0, -3.46));
	add(l, port("c", S0 + 2 * SEC, 1, SP_PORT_IDLE, 0, -0.54));
	feed(s, "c", SP_DEV_CHARGER, 2, NULL, 0, l);
	l->n = 0;
	add(l, fault("u", S0 + 5 * SEC, "E01", true, 0)); /* no port: a lift's fault */
	feed(s, "u", SP_DEV_UNKNOWN, 0, NULL, 0, l);
	l->n = 0;
	add(l, fault("v", S0 + 5 * SEC, "P9", true, 3)); /* a port: a charger's */
	feed(s, "v", SP_DEV_UNKNOWN, 0, NULL, 0, l);
	/* decided by a record before the period alone, which also covers its start */
	struct sp_record before[] = {lift("w", S0 - 10 * SEC, 5, 5, 5)};
	feed(s, "w", SP_DEV_UNKNOWN, 0, before, 1, NULL);
	cJSON *j = finish(s, &b);
	CHECK(strstr(b.data, "\"max_temp_c\":-0.5,") != NULL);
	CHECK_NUM(device(j, "chargers", "c"), "utilization_pct", 0.0);
	const cJSON *u = device(j, "lifts", "u");
	CHECK_NUM(get(u, "faults"), "E01", 1);
	CHECK(device(j, "chargers", "v") != NULL);
	CHECK_NUM(device(j, "lifts", "w"), "online_pct", 3.1); /* 110 s */
	CHECK_NUM(device(j, "lifts", "w"), "trips", 0);
	CHECK_EQ_INT(cJSON_GetArraySize(get(j, "lifts")), 2);
	CHECK_EQ_INT(cJSON_GetArraySize(get(j, "chargers")), 2);
	cJSON_Delete(j);
	free(l);
	sp_buf_free(&b);
}

/* Records outside the period, and before records at or after its start, count nothing. */
static void test_outside_the_period(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct summary *s = begin();
	struct recs *l = calloc(1, sizeof(*l));
	add(l, session("c", S0 - 1, 1, 100, SP_STOP_FULL));
	add(l, session("c", S0, 1, 7, SP_STOP_USER));
	add(l, session("c", E0 - 1, 1, 8, SP_STOP_USER));
	add(l, session("c", E0, 1, 100, SP_STOP_FULL));
	struct sp_record before[] = {port("c", S0, 1, SP_PORT_CHARGING, 5000, 90)};
	feed(s, "c", SP_DEV_CHARGER, 1, before, 1, l);
	cJSON *j = finish(s, &b);
	const cJSON *c = device(j, "chargers", "c");
	CHECK_NUM(c, "sessions", 2);
	CHECK_NUM(c, "energy_wh", 15);
	CHECK_NUM(get(c, "stops"), "user", 2);
	CHECK_EQ_INT(nkeys(c, "stops"), 1);
	CHECK_NUM(c, "utilization_pct", 0.0);
	CHECK_NUM(c, "peak_w", 0);
	CHECK(cJSON_IsNull(get(c, "max_temp_c")));
	/* [0, 120 s) and [3599.999 s, end): 120.001 s */
	CHECK_NUM(c, "online_pct", 3.3);
	cJSON_Delete(j);
	free(l);
	sp_buf_free(&b);
}

/* A full buffer: SP_ETOOBIG, and the buffer as it was. */
/*
 * Devices left out (their records could not be read whole): started, with
 * records from before the period, then dropped - one among the others, one
 * last before the alerts. The body is the site's without them.
 */
static void test_dropped_devices(void)
{
	struct sp_buf want = SP_BUF_INIT(0), got = SP_BUF_INIT(0);
	cJSON *jw = site(&want);
	struct summary *s = begin();
	if (s == NULL || jw == NULL)
		goto out;
	lift_1(s);
	struct sp_record before[] = {port("chg-9", S0 - 30 * SEC, 1, SP_PORT_CHARGING, 500, 30)};
	struct summary_device gone = {"chg-9", SP_DEV_CHARGER, 4, before, 1};
	CHECK_EQ_INT(summary_device(s, &gone), 0);
	summary_drop_device(s);
	feed(s, "lift-2", SP_DEV_LIFT, 0, NULL, 0, NULL);
	chg_1(s);
	feed(s, "x-9", SP_DEV_UNKNOWN, 0, NULL, 0, NULL);
	chg_2(s);
	struct summary_device last = {"lift-9", SP_DEV_LIFT, 0, NULL, 0};
	CHECK_EQ_INT(summary_device(s, &last), 0);
	summary_drop_device(s);
	site_alerts(s);
	cJSON *jg = finish(s, &got);
	CHECK(jg != NULL && got.data != NULL && strstr(got.data, "chg-9") == NULL &&
	      strstr(got.data, "lift-9") == NULL);
	CHECK_EQ_STR(got.data, want.data);
	cJSON_Delete(jg);
out:
	cJSON_Delete(jw);
	sp_buf_free(&want);
	sp_buf_free(&got);
}

static void test_buffer_limit(void)
{
	struct sp_buf b = SP_BUF_INIT(300);
	CHECK_EQ_INT(sp_buf_puts(&b, "keep"), 0);
	struct summary *s = begin();
	lift_1(s);
	CHECK_EQ_INT(summary_finish(s, &b), SP_ETOOBIG);
	CHECK_EQ_STR(b.data, "keep");
	CHECK_EQ_INT(b.len, 4);
	summary_free(s);
	summary_free(NULL);
	sp_buf_free(&b);
}

int main(void)
{
	RUN(test_header_fields);
	RUN(test_lift_counters_with_reset);
	RUN(test_counters_without_before);
	RUN(test_counter_base_skips_records_without_it);
	RUN(test_counter_decreases);
	RUN(test_counter_interleaved_timelines);
	RUN(test_counter_decreases_before_the_period);
	RUN(test_counter_saturates);
	RUN(test_availability_and_online);
	RUN(test_online_before);
	RUN(test_charger);
	RUN(test_charger_without_station);
	RUN(test_alerts_block);
	RUN(test_empty_site);
	RUN(test_formats_and_key_order);
	RUN(test_negative_temp_and_unknown_lift);
	RUN(test_outside_the_period);
	RUN(test_buffer_limit);
	RUN(test_dropped_devices);
	HARNESS_EXIT();
}
