/*
 * test_offline.c - the offline alerts (offline.h): a gateway offline by its
 * state or silent opens after its hold and clears when back; a device
 * silent behind an up gateway opens, not behind one that is down or just
 * back (unless it was silent already when the gateway's drop began: no
 * spool can rescue it), and clears with a fresh reading; per-site settings apply; and one
 * sweep over a real SQLite store opens and clears exactly those, once.
 * Their mails (alertmail.c): a clear follows the opening's severity, a
 * recipient the mail cannot carry is left out, not the whole mail, and a
 * critical alert is never paced.
 */
#include "harness.h"

#include "alertmail.h"
#include "offline.h"
#include "rules.h"
#include "store.h"

#include "sitepulse/error.h"

#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#define S   1000LL
#define OFF (180 * S) /* device_offline_s */
#define NOW 1800000000000LL

static struct store_offline_agent up_agent(void)
{
	/* online since long ago, heard from a second ago */
	return (struct store_offline_agent){"site-a",    "gw-1",         true, NOW - 3600 * S,
					    NOW - 1 * S, NOW - 3600 * S, 0, 0};
}

static void test_gateway(void)
{
	struct rules_config *cfg = rules_config_create();
	struct rule_event ev;
	char detail[OFFLINE_DETAIL_MAX];
	if (cfg == NULL) {
		CHECK(cfg != NULL);
		return;
	}
	struct store_offline_agent a = up_agent();
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 0);

	/* its last will: offline from state_at, alerted after the 60 s hold */
	a.online = false;
	a.state_at = NOW - 59 * S;
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 0);
	a.state_at = NOW - 61 * S;
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.kind, RULE_OPEN);
	CHECK_EQ_INT(ev.rule, RULE_GATEWAY_OFFLINE);
	CHECK_EQ_INT(ev.device_id, 0);
	CHECK_EQ_STR(ev.site, "site-a");
	CHECK_EQ_STR(ev.dev, "gw-1");
	CHECK_EQ_INT(ev.port, 0);
	CHECK_EQ_STR(ev.code, "");
	CHECK_EQ_INT(ev.severity, ALERT_MAJOR);
	CHECK_EQ_INT(ev.since, NOW - 61 * S);
	CHECK_EQ_INT(ev.ts, NOW - 1 * S);
	CHECK(strstr(ev.detail, "gateway gw-1 offline for 61 s") != NULL);

	/* connected but silent: down from last_seen + offline_ms */
	a = up_agent();
	a.last_seen = NOW - OFF - 60 * S;
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.since, NOW - 60 * S);
	CHECK_EQ_INT(ev.ts, NOW);
	CHECK(strstr(ev.detail, "silent") != NULL);
	a.last_seen = NOW - OFF - 59 * S;
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 0);

	/* never heard from: nothing to say */
	struct store_offline_agent never = {"site-a", "gw-0", false, 0, 0, 0, 0, 0};
	CHECK_EQ_INT(offline_judge_gateway(&never, cfg, OFF, NOW, &ev, detail), 0);

	/* alerted: stays while down, clears at the sweep that sees it up */
	a.online = false;
	a.state_at = NOW - 600 * S;
	a.alert_id = 42;
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 0);
	a = up_agent();
	a.alert_id = 42;
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.kind, RULE_CLEAR);
	CHECK_EQ_INT(ev.alert_id, 42);
	CHECK_EQ_INT(ev.ts, NOW);

	/* a site's own setting: disabled there opens nothing, but a standing alert still clears */
	struct rule_setting *site = rules_config_site(cfg, "site-a", RULE_GATEWAY_OFFLINE);
	CHECK(site != NULL);
	if (site != NULL) {
		site->enabled = false;
		a = up_agent();
		a.online = false;
		a.state_at = NOW - 3600 * S;
		CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 0);
		a = up_agent();
		a.alert_id = 7;
		CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 1);
		CHECK_EQ_INT(ev.kind, RULE_CLEAR);
		struct store_offline_agent b = {"site-b",     "gw-1",         false, NOW - 61 * S,
						NOW - 70 * S, NOW - 3600 * S, 0, 0};
		CHECK_EQ_INT(offline_judge_gateway(&b, cfg, OFF, NOW, &ev, detail), 1);
	}
	rules_config_destroy(cfg);
}

/*
 * A new agent says online on connect and sends data only after the
 * collector's ack (ack_wait_s): never heard from by data, it is judged from
 * its connect (up_since), not from last_seen 0 (an alert dated 1970 that
 * skipped its hold). An agent back after its last will likewise.
 */
static void test_gateway_judged_from_its_connect(void)
{
	struct rules_config *cfg = rules_config_create();
	struct rule_event ev;
	char detail[OFFLINE_DETAIL_MAX];
	if (cfg == NULL) {
		CHECK(cfg != NULL);
		return;
	}
	/* connected at NOW, no data yet */
	struct store_offline_agent a = {"site-a", "gw-new", true, NOW, 0, NOW, 0, 0};
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW + 1 * S, &ev, detail), 0);
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW + OFF + 59 * S, &ev, detail), 0);
	/* still nothing after device_offline_s + hold_s: silent, from its connect */
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW + OFF + 60 * S, &ev, detail), 1);
	CHECK_EQ_INT(ev.kind, RULE_OPEN);
	CHECK_EQ_INT(ev.since, NOW + OFF);
	CHECK_EQ_INT(ev.ts, NOW + OFF + 60 * S);

	/* back after its last will, its data from before: judged from the reconnect too */
	a = (struct store_offline_agent){"site-a", "gw-1", true, NOW, NOW - 3600 * S, NOW, 0, 0};
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW + 2 * S, &ev, detail), 0);
	/* ... and its alert of the outage clears at the sweep that sees it connected */
	a.alert_id = 5;
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW + 2 * S, &ev, detail), 1);
	CHECK_EQ_INT(ev.kind, RULE_CLEAR);
	CHECK_EQ_INT(ev.ts, NOW + 2 * S);

	/*
	 * its retained state delivered again (a collector restart: state_at
	 * new, up_since unchanged) is not news from the agent: still silent
	 */
	a = (struct store_offline_agent){"site-a", "gw-2",         true,          NOW,
					 NOW - OFF - 60 * S, NOW - 3600 * S, 0, 0};
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.since, NOW - 60 * S);

	/* an old file's row: online with neither time known says nothing */
	a = (struct store_offline_agent){"site-a", "gw-3", true, 0, 0, 0, 0, 0};
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 0);
	rules_config_destroy(cfg);
}

/*
 * Clear events carry the rule's severity (as the record rules' do); a
 * device's clear is never dated before its alert opened.
 */
static void test_clear_events(void)
{
	struct rules_config *cfg = rules_config_create();
	struct rule_event ev;
	char detail[OFFLINE_DETAIL_MAX];
	if (cfg == NULL) {
		CHECK(cfg != NULL);
		return;
	}
	rules_config_global(cfg, RULE_GATEWAY_OFFLINE)->severity = ALERT_WARNING;
	rules_config_global(cfg, RULE_CHARGER_OFFLINE)->severity = ALERT_MINOR;
	struct store_offline_agent a = up_agent();
	a.alert_id = 3;
	CHECK_EQ_INT(offline_judge_gateway(&a, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.kind, RULE_CLEAR);
	CHECK_EQ_INT(ev.severity, ALERT_WARNING);

	/* a reading that arrived before the alert opened (a file from before heard) clears at it */
	struct store_offline_device d = {
	    21, "site-a", "chg-1", SP_DEV_CHARGER, NOW - 30 * S, up_agent(), 8, NOW - 10 * S};
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.kind, RULE_CLEAR);
	CHECK_EQ_INT(ev.severity, ALERT_MINOR);
	CHECK_EQ_INT(ev.ts, NOW - 10 * S);
	d.heard = NOW - 5 * S;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.ts, NOW - 5 * S);
	rules_config_destroy(cfg);
}

static void test_device(void)
{
	struct rules_config *cfg = rules_config_create();
	struct rule_event ev;
	char detail[OFFLINE_DETAIL_MAX];
	if (cfg == NULL) {
		CHECK(cfg != NULL);
		return;
	}
	struct store_offline_device d = {
	    11, "site-a", "lift-1", SP_DEV_LIFT, NOW - OFF - 1 * S, up_agent(), 0, 0};
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.kind, RULE_OPEN);
	CHECK_EQ_INT(ev.rule, RULE_LIFT_OFFLINE);
	CHECK_EQ_INT(ev.device_id, 11);
	CHECK_EQ_STR(ev.dev, "lift-1");
	CHECK_EQ_INT(ev.severity, ALERT_MAJOR);
	CHECK_EQ_INT(ev.ts, NOW - 1 * S);
	CHECK(strstr(ev.detail, "no reading for 3 min while its gateway gw-1 is online") != NULL);
	d.heard = NOW - OFF + 1;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);

	d.kind = SP_DEV_CHARGER;
	d.heard = NOW - 2 * OFF;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.rule, RULE_CHARGER_OFFLINE);
	CHECK_EQ_INT(ev.ts, NOW - OFF);

	/* not behind a gateway that is down (its own alert says it), silent, or just back */
	d.agent.online = false;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);
	d.agent = up_agent();
	d.agent.last_seen = NOW - OFF - 1;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);
	d.agent = up_agent();
	d.agent.last_seen = d.heard + OFF - 1; /* quiet since just after the device */
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);
	d.agent.last_seen = d.heard + OFF;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 1);
	d.agent = up_agent();
	d.agent.up_since = NOW - OFF + 1 * S;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);
	d.agent.up_since = NOW - OFF;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 1);

	/*
	 * just back, but the device was silent for OFF already when the data
	 * the gateway sent before its drop arrived: no backlog can rescue it, no
	 * grace (a gateway reconnecting every few seconds hid it for good)
	 */
	d.agent = up_agent();
	d.heard = NOW - 2 * OFF;
	d.agent.up_since = NOW - 5 * S;
	d.agent.dropped_seen = NOW - 8 * S;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.kind, RULE_OPEN);
	CHECK_EQ_INT(ev.since, NOW - OFF);
	d.heard = NOW - 8 * S - OFF; /* silent exactly OFF at the drop */
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 1);
	/* its last reading came after the drop began minus OFF: the spool may hold more */
	d.heard = NOW - 8 * S - OFF + 1;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);
	d.heard = NOW - 7 * S - OFF;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);
	/* ... until the gateway has been back for OFF */
	d.agent.up_since = NOW - OFF;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 1);
	/* no drop known (0): the grace as before */
	d.heard = NOW - 2 * OFF;
	d.agent.up_since = NOW - 5 * S;
	d.agent.dropped_seen = 0;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);
	/* silent before the drop, but the gateway down now: its own alert */
	d.agent.dropped_seen = NOW - 8 * S;
	d.agent.online = false;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);
	d.agent = up_agent();

	/* a device that never sent a reading is not judged */
	d.heard = 0;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);

	/* alerted: a reading arrived lately clears at its arrival, whatever the gateway */
	d.alert_id = 99;
	d.heard = NOW - OFF - 1;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 0);
	d.heard = NOW - 5 * S;
	d.agent.online = false;
	CHECK_EQ_INT(offline_judge_device(&d, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.kind, RULE_CLEAR);
	CHECK_EQ_INT(ev.alert_id, 99);
	CHECK_EQ_INT(ev.ts, NOW - 5 * S);

	/* hold_s adds to the silence; severity from the setting */
	struct rule_setting *g = rules_config_global(cfg, RULE_LIFT_OFFLINE);
	g->hold_ms = 120 * S;
	g->severity = ALERT_CRITICAL;
	struct store_offline_device l = {
	    12, "site-a", "lift-2", SP_DEV_LIFT, NOW - OFF - 119 * S, up_agent(), 0, 0};
	CHECK_EQ_INT(offline_judge_device(&l, cfg, OFF, NOW, &ev, detail), 0);
	l.heard = NOW - OFF - 120 * S;
	CHECK_EQ_INT(offline_judge_device(&l, cfg, OFF, NOW, &ev, detail), 1);
	CHECK_EQ_INT(ev.severity, ALERT_CRITICAL);
	CHECK_EQ_INT(ev.since, NOW - 120 * S);
	CHECK_EQ_INT(ev.ts, NOW);
	rules_config_destroy(cfg);
}

/* ---------------------------------------------------------------- a real store */

struct sink {
	struct store *s;
	int opened, cleared;
	char last[160];
};

/* What the writer's on_rule_event does with the sweep's events, minus the mail. */
static int persist(void *ctx, const struct rule_event *ev, int64_t *alert_id)
{
	struct sink *k = ctx;
	if (ev->kind == RULE_CLEAR) {
		k->cleared++;
		snprintf(k->last, sizeof(k->last), "clear %lld", (long long)ev->alert_id);
		return store_w_alert_clear(k->s, ev->alert_id, ev->ts);
	}
	struct store_alert_new a = {ev->device_id,
				    rule_name(ev->rule),
				    ev->code,
				    ev->site,
				    ev->dev,
				    ev->port,
				    alert_severity_name(ev->severity),
				    ev->ts,
				    ev->detail};
	k->opened++;
	snprintf(k->last, sizeof(k->last), "open %s %s/%s", a.rule, ev->site, ev->dev);
	return store_w_alert_open(k->s, &a, alert_id, NULL);
}

struct active {
	int n;
	char what[8][96];
};

static int on_alert(void *ctx, const struct store_alert_row *row)
{
	struct active *a = ctx;
	if (a->n < 8)
		snprintf(a->what[a->n], sizeof(a->what[0]), "%s %s/%s", row->rule, row->site,
			 row->dev);
	a->n++;
	return 0;
}

static int active_alerts(struct store *s, struct active *out)
{
	memset(out, 0, sizeof(*out));
	struct store_alerts_query q = {STORE_ALERTS_ACTIVE, NULL, NULL, 100};
	return store_r_alerts(s, &q, on_alert, out);
}

/* A fresh store file for one test (harness_tmp_file); its path in path. NULL on failure. */
static struct store *store_fresh(char *path, size_t cap, const char *name,
				 struct store_params p)
{
	char stem[64];
	snprintf(stem, sizeof(stem), "test_offline-%s", name);
	harness_tmp_file(path, cap, stem, "db");
	p.path = path;
	return store_open(&p);
}

/* Closes s (may be NULL) and removes its files, unless SP_KEEP_DB is set. */
static void store_drop(struct store *s, const char *path)
{
	if (s)
		store_close(s);
	if (getenv("SP_KEEP_DB") == NULL)
		harness_remove_db(path);
}

/* One sweep in a transaction of its own, its events to fn (as the writer does). */
static int sweep_with(struct store *s, struct rules_config *cfg, int64_t now, rule_event_fn fn,
		      void *ctx)
{
	int rc = store_w_begin(s);
	if (rc == 0 && (rc = offline_sweep(s, cfg, OFF, now, fn, ctx)) == 0)
		return store_w_commit(s);
	store_w_rollback(s);
	return rc;
}

static int sweep(struct store *s, struct rules_config *cfg, struct sink *k, int64_t now)
{
	return sweep_with(s, cfg, now, persist, k);
}

static void test_sweep_store(void)
{
	char path[512];
	struct store *s = store_fresh(path, sizeof(path), "sweep",
				      (struct store_params){.readers = 2, .cache_mb = 4});
	struct rules_config *cfg = rules_config_create();
	CHECK(s != NULL && cfg != NULL);
	if (s == NULL || cfg == NULL)
		goto out;

	/*
	 * gw-1 up with a silent lift and a fresh charger; gw-2 gone, its lift
	 * silent too. The lift's clock runs an hour ahead, the charger's an hour
	 * behind: silence is judged by when readings arrived (heard), not by ts.
	 */
	int64_t a1, a2;
	struct store_device lift1, chg1, lift2;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "gw-1", &a1), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "gw-2", &a2), 0);
	CHECK_EQ_INT(
	    store_w_upsert_device(s, "site-a", "lift-1", a1, NULL, SP_DEV_LIFT, NULL, &lift1), 0);
	CHECK_EQ_INT(
	    store_w_upsert_device(s, "site-a", "chg-1", a1, NULL, SP_DEV_CHARGER, NULL, &chg1), 0);
	CHECK_EQ_INT(
	    store_w_upsert_device(s, "site-a", "lift-2", a2, NULL, SP_DEV_LIFT, NULL, &lift2), 0);
	CHECK_EQ_INT(store_w_agent_state(s, a1, true, NOW - 3600 * S), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, a1, NOW - 2 * S), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, a2, NOW - 3600 * S), 0);
	CHECK_EQ_INT(store_w_agent_state(s, a2, false, NOW - 300 * S), 0);
	CHECK_EQ_INT(store_w_device_seen(s, lift1.id, NOW + 3400 * S, NOW - 200 * S), 0);
	CHECK_EQ_INT(store_w_device_seen(s, chg1.id, NOW - 3602 * S, NOW - 2 * S), 0);
	CHECK_EQ_INT(store_w_device_seen(s, lift2.id, NOW - 400 * S, NOW - 400 * S), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	struct sink k = {s, 0, 0, ""};
	struct active act;
	CHECK_EQ_INT(sweep(s, cfg, &k, NOW), 0);
	CHECK_EQ_INT(k.opened, 2);
	CHECK_EQ_INT(k.cleared, 0);
	CHECK_EQ_INT(active_alerts(s, &act), 2);
	CHECK_EQ_INT(act.n, 2);
	bool gw = false, lift = false;
	for (int i = 0; i < act.n && i < 8; i++) {
		gw |= strcmp(act.what[i], "gateway.offline site-a/gw-2") == 0;
		lift |= strcmp(act.what[i], "lift.offline site-a/lift-1") == 0;
	}
	CHECK(gw && lift);

	/* the next sweep finds them active: nothing twice */
	CHECK_EQ_INT(sweep(s, cfg, &k, NOW + 10 * S), 0);
	CHECK_EQ_INT(k.opened, 2);
	CHECK_EQ_INT(k.cleared, 0);

	/* lift-1 reports again, gw-2 comes back: both clear, lift-2 is not alerted (gw-2 just back)
	 */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_device_seen(s, lift1.id, NOW + 3615 * S, NOW + 15 * S), 0);
	CHECK_EQ_INT(store_w_agent_state(s, a2, true, NOW + 16 * S), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, a2, NOW + 17 * S), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(sweep(s, cfg, &k, NOW + 20 * S), 0);
	CHECK_EQ_INT(k.opened, 2);
	CHECK_EQ_INT(k.cleared, 2);
	CHECK_EQ_INT(active_alerts(s, &act), 0);
	CHECK_EQ_INT(act.n, 0);

	/* gw-2 up for device_offline_s and lift-2 still silent: now it is alerted */
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, a2, NOW + 17 * S + OFF), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, a1, NOW + 17 * S + OFF), 0);
	CHECK_EQ_INT(store_w_device_seen(s, lift1.id, NOW + 3617 * S + OFF, NOW + 17 * S + OFF), 0);
	CHECK_EQ_INT(store_w_device_seen(s, chg1.id, NOW - 3583 * S + OFF, NOW + 17 * S + OFF), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	/* up since its first data after the long silence (NOW + 17 s), not its state message */
	CHECK_EQ_INT(sweep(s, cfg, &k, NOW + 17 * S + OFF - 1), 0);
	CHECK_EQ_INT(k.opened, 2);
	CHECK_EQ_INT(sweep(s, cfg, &k, NOW + 17 * S + OFF), 0);
	CHECK_EQ_INT(k.opened, 3);
	CHECK_EQ_STR(k.last, "open lift.offline site-a/lift-2");
out:
	rules_config_destroy(cfg);
	store_drop(s, path);
}

/* ---------------------------------------------------------------- up_since */

static int64_t seen_up_since, seen_dropped;

static int note_agent(void *ctx, const struct store_offline_agent *a)
{
	(void)ctx;
	seen_up_since = a->up_since;
	seen_dropped = a->dropped_seen;
	return 0;
}

static int no_device(void *ctx, const struct store_offline_device *d)
{
	(void)ctx, (void)d;
	return 0;
}

/* The agent's up_since as the sweep reads it (-1 on error). */
static int64_t up_since_of(struct store *s)
{
	struct store_offline_scan q = {0, offline_rules(), note_agent, no_device, NULL};
	seen_up_since = -1;
	if (store_w_begin(s) != 0)
		return -1;
	int rc = store_w_offline_scan(s, &q);
	store_w_rollback(s);
	return rc == 0 ? seen_up_since : -1;
}

static void test_up_since(void)
{
	char path[512];
	struct store *s = store_fresh(path, sizeof(path), "up",
				      (struct store_params){.readers = 1, .agent_down_ms = 60 * S});
	CHECK(s != NULL);
	if (s == NULL)
		return;
	int64_t ag;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "gw-1", &ag), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	/* dropped: its data's last arrival when its last drop began */
	struct {
		char what; /* 's' state online, 'o' state offline, 'd' data */
		int64_t at, want, dropped;
	} steps[] = {
	    {'d', NOW, NOW, 0},                     /* first data: up */
	    {'d', NOW + 50 * S, NOW, 0},            /* a gap under agent_down_ms: still up since NOW */
	    /* 61 s of silence: it was down, from its data at 50 */
	    {'d', NOW + 111 * S, NOW + 111 * S, NOW + 50 * S},
	    {'o', NOW + 120 * S, NOW + 111 * S, NOW + 111 * S}, /* its last will */
	    /* data from before the will proves nothing, nor moves the drop */
	    {'d', NOW + 119 * S, NOW + 111 * S, NOW + 111 * S},
	    {'s', NOW + 125 * S, NOW + 125 * S, NOW + 111 * S}, /* back, saying so */
	    {'s', NOW + 126 * S, NOW + 125 * S, NOW + 111 * S}, /* said twice: still the first */
	    {'o', NOW + 130 * S, NOW + 125 * S, NOW + 119 * S},
	    /* a retained offline delivered again (a restart, a re-ask) is no new drop */
	    {'o', NOW + 130 * S + 500, NOW + 125 * S, NOW + 119 * S},
	    {'d', NOW + 131 * S, NOW + 131 * S, NOW + 119 * S}, /* back by data alone */
	    /* nor a retained online while up */
	    {'s', NOW + 140 * S, NOW + 131 * S, NOW + 119 * S},
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		CHECK_EQ_INT(store_w_begin(s), 0);
		if (steps[i].what == 'd')
			CHECK_EQ_INT(store_w_agent_seen(s, ag, steps[i].at), 0);
		else
			CHECK_EQ_INT(store_w_agent_state(s, ag, steps[i].what == 's', steps[i].at),
				     0);
		CHECK_EQ_INT(store_w_commit(s), 0);
		int64_t got = up_since_of(s);
		if (got != steps[i].want || seen_dropped != steps[i].dropped)
			fprintf(stderr, "  step %zu\n", i);
		CHECK_EQ_INT(got, steps[i].want);
		CHECK_EQ_INT(seen_dropped, steps[i].dropped);
	}
	/* a clock set back moves it with the agent's other stamps */
	struct store_offline_rules rules = offline_rules();
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_clock_set_back(s, NOW + 100 * S, 60 * S, &rules), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);
	CHECK_EQ_INT(up_since_of(s), NOW + 71 * S);
	CHECK_EQ_INT(seen_dropped, NOW + 59 * S);
	store_drop(s, path);
}

/* ---------------------------------------------------------------- mail */

struct mail_sink {
	struct sink k;
	struct alertmail *am;
	struct alertmail_counts counts;
};

/* persist, then the mail, as the writer's on_rule_event does */
static int persist_and_mail(void *ctx, const struct rule_event *ev, int64_t *alert_id)
{
	struct mail_sink *m = ctx;
	int rc = persist(&m->k, ev, alert_id);
	if (rc)
		return rc;
	bool cleared = ev->kind == RULE_CLEAR;
	return alertmail_event(m->am, m->k.s, ev, cleared ? ev->alert_id : *alert_id, cleared,
			       &m->counts);
}

static int64_t mails_queued(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM outbox", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static int mail_sweep(struct store *s, struct rules_config *cfg, struct mail_sink *m, int64_t now)
{
	return sweep_with(s, cfg, now, persist_and_mail, m);
}

/* The agent says it is online, or its connection ends (its last will), at `at`. */
static int gateway_state(struct store *s, int64_t ag, bool online, int64_t at)
{
	int rc = store_w_begin(s);
	if (rc == 0 && (rc = store_w_agent_state(s, ag, online, at)) == 0)
		return store_w_commit(s);
	store_w_rollback(s);
	return rc;
}

/*
 * A clear is mailed only when its alert's opening was: by the severity the
 * alert was stored with, whatever the event or today's setting says. A
 * warning gateway.offline under min_severity minor mails neither its
 * opening nor its clear; a major one opened before its setting became
 * warning (a restart with a new configuration) mails both.
 */
static void test_clear_mail_follows_min_severity(void)
{
	char path[512];
	struct store *s = store_fresh(path, sizeof(path), "mail",
				      (struct store_params){.readers = 1, .agent_down_ms = 60 * S});
	struct rules_config *cfg = rules_config_create();
	char *to_items[] = {"crew@example.test"};
	struct sp_conf_list to = {to_items, 1};
	struct writer_mail wm = {"sitepulse@example.test", &to, NULL, 0, ALERT_MINOR, 10, 0, 0};
	struct mail_sink m = {{s, 0, 0, ""}, alertmail_create(&wm), {0, 0, 0}};
	int64_t ag;
	CHECK(s != NULL && cfg != NULL && m.am != NULL);
	if (s == NULL || cfg == NULL || m.am == NULL)
		goto out;
	struct rule_setting *g = rules_config_global(cfg, RULE_GATEWAY_OFFLINE);
	g->severity = ALERT_WARNING;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "gw-1", &ag), 0);
	CHECK_EQ_INT(store_w_agent_state(s, ag, true, NOW - 3600 * S), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, ag, NOW - 1 * S), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	/* a warning: neither its opening nor its clear is mailed */
	CHECK_EQ_INT(gateway_state(s, ag, false, NOW), 0);
	CHECK_EQ_INT(mail_sweep(s, cfg, &m, NOW + 61 * S), 0);
	CHECK_EQ_INT(m.k.opened, 1);
	CHECK_EQ_INT(mails_queued(path), 0);
	CHECK_EQ_INT(gateway_state(s, ag, true, NOW + 70 * S), 0);
	CHECK_EQ_INT(mail_sweep(s, cfg, &m, NOW + 71 * S), 0);
	CHECK_EQ_INT(m.k.cleared, 1);
	CHECK_EQ_INT(mails_queued(path), 0);

	/* opened as major (mailed), cleared after the setting said warning: mailed too */
	g->severity = ALERT_MAJOR;
	CHECK_EQ_INT(gateway_state(s, ag, false, NOW + 100 * S), 0);
	CHECK_EQ_INT(mail_sweep(s, cfg, &m, NOW + 161 * S), 0);
	CHECK_EQ_INT(m.k.opened, 2);
	CHECK_EQ_INT(mails_queued(path), 1);
	g->severity = ALERT_WARNING;
	CHECK_EQ_INT(gateway_state(s, ag, true, NOW + 170 * S), 0);
	CHECK_EQ_INT(mail_sweep(s, cfg, &m, NOW + 171 * S), 0);
	CHECK_EQ_INT(m.k.cleared, 2);
	CHECK_EQ_INT(mails_queued(path), 2);
out:
	alertmail_destroy(m.am);
	rules_config_destroy(cfg);
	store_drop(s, path);
}

/*
 * Pacing ([smtp] max_per_hour) holds back the mails of a condition that
 * opened more than that in the hour before, but not those of a critical
 * alert (DOMAIN's P1: notify at once): a gateway.offline made critical
 * flaps 4 times under max_per_hour 2 and each opening and clear is mailed.
 * The critical alerts still count toward the condition's hour: the same
 * condition opened as major next is paced, its opening and its clear.
 * Critical alerts have a limit of their own, max_per_hour_critical (0 here
 * at first: never paced), past which a flapping detector is paced too.
 */
static void test_critical_not_paced(void)
{
	char path[512];
	struct store *s = store_fresh(path, sizeof(path), "pace",
				      (struct store_params){.readers = 1, .agent_down_ms = 60 * S});
	struct rules_config *cfg = rules_config_create();
	char *to_items[] = {"crew@example.test"};
	struct sp_conf_list to = {to_items, 1};
	struct writer_mail wm = {"sitepulse@example.test", &to, NULL, 0, ALERT_MINOR, 2, 0, 0};
	struct mail_sink m = {{s, 0, 0, ""}, alertmail_create(&wm), {0, 0, 0}};
	int64_t ag, t = NOW;
	CHECK(s != NULL && cfg != NULL && m.am != NULL);
	if (s == NULL || cfg == NULL || m.am == NULL)
		goto out;
	struct rule_setting *g = rules_config_global(cfg, RULE_GATEWAY_OFFLINE);
	g->severity = ALERT_CRITICAL;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "gw-1", &ag), 0);
	CHECK_EQ_INT(store_w_agent_state(s, ag, true, NOW - 3600 * S), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, ag, NOW - 1 * S), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	/* 4 critical flaps, 100 s apart: 4 openings and 4 clears mailed, none paced */
	for (int i = 1; i <= 4; i++, t += 100 * S) {
		CHECK_EQ_INT(gateway_state(s, ag, false, t), 0);
		CHECK_EQ_INT(mail_sweep(s, cfg, &m, t + 61 * S), 0);
		CHECK_EQ_INT(m.k.opened, i);
		CHECK_EQ_INT(mails_queued(path), 2 * i - 1);
		CHECK_EQ_INT(gateway_state(s, ag, true, t + 70 * S), 0);
		CHECK_EQ_INT(mail_sweep(s, cfg, &m, t + 71 * S), 0);
		CHECK_EQ_INT(m.k.cleared, i);
		CHECK_EQ_INT(mails_queued(path), 2 * i);
	}
	CHECK_EQ_INT(m.counts.paced, 0);

	/* the 5th opening, as major: its condition opened 4 alerts within the hour, paced */
	g->severity = ALERT_MAJOR;
	CHECK_EQ_INT(gateway_state(s, ag, false, t), 0);
	CHECK_EQ_INT(mail_sweep(s, cfg, &m, t + 61 * S), 0);
	CHECK_EQ_INT(m.k.opened, 5);
	CHECK_EQ_INT(gateway_state(s, ag, true, t + 70 * S), 0);
	CHECK_EQ_INT(mail_sweep(s, cfg, &m, t + 71 * S), 0);
	CHECK_EQ_INT(m.k.cleared, 5);
	CHECK_EQ_INT(mails_queued(path), 8);
	CHECK_EQ_INT(m.counts.paced, 2);

	/*
	 * Critical again under max_per_hour_critical 6: the 6th alert of the
	 * hour is mailed, the 7th (a detector flapping on) is paced.
	 */
	g->severity = ALERT_CRITICAL;
	wm.max_per_hour_critical = 6;
	t += 100 * S;
	for (int i = 6; i <= 7; i++, t += 100 * S) {
		CHECK_EQ_INT(gateway_state(s, ag, false, t), 0);
		CHECK_EQ_INT(mail_sweep(s, cfg, &m, t + 61 * S), 0);
		CHECK_EQ_INT(gateway_state(s, ag, true, t + 70 * S), 0);
		CHECK_EQ_INT(mail_sweep(s, cfg, &m, t + 71 * S), 0);
		CHECK_EQ_INT(m.k.opened, i);
		CHECK_EQ_INT(m.k.cleared, i);
	}
	CHECK_EQ_INT(mails_queued(path), 10);
	CHECK_EQ_INT(m.counts.paced, 4);
out:
	alertmail_destroy(m.am);
	rules_config_destroy(cfg);
	store_drop(s, path);
}

/* The recipients of the one mail in the outbox ("" when there is none, or several). */
static void mail_rcpt(const char *path, char *out, size_t cap)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	out[0] = '\0';
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT rcpt, body FROM outbox", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);
		snprintf(out, cap, "%s", r ? r : "");
		if (sqlite3_step(st) != SQLITE_DONE)
			out[0] = '\0';
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/*
 * A recipient the mail cannot carry (the configuration refuses those; this
 * is the second line of defence) is left out and the others get the mail;
 * a site left without any usable recipient has its mail counted as failed,
 * not silently dropped. Either way the alert itself stands.
 */
static void test_mail_bad_recipient(void)
{
	char path[512], rcpt[512];
	struct store *s = store_fresh(path, sizeof(path), "mailrcpt",
				      (struct store_params){.readers = 1, .agent_down_ms = 60 * S});
	struct rules_config *cfg = rules_config_create();
	char *to_items[] = {"\xe8\xbf\x90\xe7\xbb\xb4@example.cn", "crew@example.test",
			    "\"o.p\"@example.test"};
	char *bad_items[] = {"\xe8\xbf\x90\xe7\xbb\xb4@example.cn"};
	struct sp_conf_list to = {to_items, 3}, bad = {bad_items, 1};
	struct collector_site_conf sites[1] = {{.site = "site-b", .mail_to = bad,
						.timezone = "UTC"}};
	struct writer_mail wm = {"sitepulse@example.test", &to, sites, 1, ALERT_MINOR, 10, 0, 0};
	struct mail_sink m = {{s, 0, 0, ""}, alertmail_create(&wm), {0, 0, 0}};
	int64_t ag, bg;
	CHECK(s != NULL && cfg != NULL && m.am != NULL);
	if (s == NULL || cfg == NULL || m.am == NULL)
		goto out;
	CHECK_EQ_INT(store_w_begin(s), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-a", "gw-1", &ag), 0);
	CHECK_EQ_INT(store_w_agent_state(s, ag, true, NOW - 3600 * S), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, ag, NOW - 1 * S), 0);
	CHECK_EQ_INT(store_w_agent(s, "site-b", "gw-1", &bg), 0);
	CHECK_EQ_INT(store_w_agent_state(s, bg, true, NOW - 3600 * S), 0);
	CHECK_EQ_INT(store_w_agent_seen(s, bg, NOW - 1 * S), 0);
	CHECK_EQ_INT(store_w_commit(s), 0);

	/* site-a ([smtp] to): one good recipient among two bad ones gets the mail, alone */
	CHECK_EQ_INT(gateway_state(s, ag, false, NOW), 0);
	CHECK_EQ_INT(mail_sweep(s, cfg, &m, NOW + 61 * S), 0);
	CHECK_EQ_INT(m.k.opened, 1);
	CHECK_EQ_INT(mails_queued(path), 1);
	mail_rcpt(path, rcpt, sizeof(rcpt));
	CHECK_EQ_STR(rcpt, "crew@example.test");
	CHECK_EQ_INT(m.counts.failed, 0);

	/* site-b (its mail_to): nobody left; the alert opens, its mail is counted as failed */
	CHECK_EQ_INT(gateway_state(s, bg, false, NOW), 0);
	CHECK_EQ_INT(mail_sweep(s, cfg, &m, NOW + 62 * S), 0);
	CHECK_EQ_INT(m.k.opened, 2);
	CHECK_EQ_INT(mails_queued(path), 1);
	CHECK_EQ_INT(m.counts.failed, 1);
out:
	alertmail_destroy(m.am);
	rules_config_destroy(cfg);
	store_drop(s, path);
}

int main(void)
{
	RUN(test_gateway);
	RUN(test_gateway_judged_from_its_connect);
	RUN(test_clear_events);
	RUN(test_device);
	RUN(test_sweep_store);
	RUN(test_up_since);
	RUN(test_clear_mail_follows_min_severity);
	RUN(test_mail_bad_recipient);
	RUN(test_critical_not_paced);
	HARNESS_EXIT();
}
