/*
 * offline.c - the offline alerts (see offline.h): judging gateways and
 * devices from what the store knows of their liveness, and the sweep that
 * walks the store and hands the events on.
 */
#include "offline.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/*
 * When a connected agent was last heard from: its newest data, or its
 * (re)connect (up_since) if later. A new agent announces itself and waits
 * for the collector's ack (ack_wait_s) before any data; its silence runs
 * from the connect, never from 0 (which dated its alert 1970 and skipped
 * the hold). Not state_at: a retained state is delivered again on every
 * collector restart, which says nothing about the agent.
 */
static int64_t heard_at(const struct store_offline_agent *a)
{
	return a->up_since > a->last_seen ? a->up_since : a->last_seen;
}

/* Up: online by its last state (or data since), and heard from within offline_ms. */
static bool gateway_up(const struct store_offline_agent *a, int64_t offline_ms, int64_t now_ms)
{
	return a->online && heard_at(a) >= now_ms - offline_ms;
}

int offline_judge_gateway(const struct store_offline_agent *a, const struct rules_config *cfg,
			  int64_t offline_ms, int64_t now_ms, struct rule_event *ev, char *detail)
{
	const struct rule_setting *s = rules_config_get(cfg, a->site, RULE_GATEWAY_OFFLINE);
	bool up = gateway_up(a, offline_ms, now_ms);
	/* severity on a clear too: the mail of one below min_severity is not sent either */
	*ev = (struct rule_event){.rule = RULE_GATEWAY_OFFLINE,
				  .site = a->site,
				  .dev = a->agent,
				  .code = "",
				  .severity = s->severity};
	if (a->alert_id > 0) {
		if (!up)
			return 0;
		/* back: with a state message that said so, or data since */
		ev->kind = RULE_CLEAR;
		ev->alert_id = a->alert_id;
		ev->ts = now_ms;
		return 1;
	}
	if (up || !s->enabled)
		return 0;
	/* its connection ended (state offline), or it went quiet while connected */
	int64_t since = a->online ? heard_at(a) : a->state_at;
	if (since <= 0)
		return 0; /* never heard from (only an old file's row can say online without when) */
	int64_t down_since = a->online ? since + offline_ms : since;
	if (now_ms < down_since + s->hold_ms)
		return 0;
	char held[32], quiet[32];
	rule_say_duration(now_ms - down_since, held, sizeof(held));
	rule_say_duration(offline_ms, quiet, sizeof(quiet));
	if (a->online)
		snprintf(detail, OFFLINE_DETAIL_MAX,
			 "gateway %s silent: connected, but no message for %s", a->agent, quiet);
	else
		snprintf(detail, OFFLINE_DETAIL_MAX,
			 "gateway %s offline for %s: its connection to the broker ended "
			 "(a stop, or its last will); its devices send nothing",
			 a->agent, held);
	ev->kind = RULE_OPEN;
	ev->severity = s->severity;
	ev->since = down_since;
	ev->ts = down_since + s->hold_ms;
	ev->detail = detail;
	return 1;
}

int offline_judge_device(const struct store_offline_device *d, const struct rules_config *cfg,
			 int64_t offline_ms, int64_t now_ms, struct rule_event *ev, char *detail)
{
	enum rule_id rule = d->kind == SP_DEV_LIFT ? RULE_LIFT_OFFLINE : RULE_CHARGER_OFFLINE;
	const struct rule_setting *s = rules_config_get(cfg, d->site, rule);
	*ev = (struct rule_event){.rule = rule,
				  .device_id = d->device_id,
				  .site = d->site,
				  .dev = d->dev,
				  .code = "",
				  .severity = s->severity};
	if (d->alert_id > 0) {
		if (d->heard < now_ms - offline_ms)
			return 0;
		ev->kind = RULE_CLEAR;
		ev->alert_id = d->alert_id;
		/*
		 * when the returning reading arrived, but never before the alert
		 * opened (an alert of a file from before heard was kept has a time
		 * of the device's clock)
		 */
		ev->ts = d->heard > d->alert_opened_at ? d->heard : d->alert_opened_at;
		return 1;
	}
	if (!s->enabled || d->heard <= 0 || now_ms < d->heard + offline_ms + s->hold_ms)
		return 0;
	/*
	 * Only behind a gateway that is up, has been for offline_ms (one just
	 * back has its devices' spooled readings still to deliver) and kept
	 * sending for offline_ms after the device's last reading arrived (a
	 * gateway going quiet silences all its devices at once, their last
	 * readings a heartbeat apart: that is the gateway's one alert, not
	 * theirs). Every time here is the collector's clock.
	 *
	 * The grace is for the spool alone, and the spool is sent oldest first:
	 * when the gateway's data before its last drop arrived (dropped_seen),
	 * everything older had arrived too. A device already silent for
	 * offline_ms by then was silent behind a gateway that was sending, and
	 * no backlog can have a reading of it: no grace. Without this, a gateway
	 * that reconnects more often than every offline_ms (a flaky link, each
	 * drop too short for its own alert) hid its dead devices for good. Not
	 * the offline state's arrival: the broker sends a will up to 1.5
	 * keepalives after the link died, readings of which wait in the spool.
	 * The gateway's last_seen is at least dropped_seen, so "kept sending"
	 * holds for such a device by itself.
	 */
	const struct store_offline_agent *g = &d->agent;
	bool just_back = g->up_since > now_ms - offline_ms;
	bool silent_before_drop = d->heard + offline_ms <= g->dropped_seen;
	if (!gateway_up(g, offline_ms, now_ms) || (just_back && !silent_before_drop) ||
	    g->last_seen < d->heard + offline_ms)
		return 0;
	char quiet[32];
	rule_say_duration(now_ms - d->heard, quiet, sizeof(quiet));
	snprintf(detail, OFFLINE_DETAIL_MAX, "no reading for %s while its gateway %s is online",
		 quiet, g->agent);
	ev->kind = RULE_OPEN;
	ev->severity = s->severity;
	ev->since = d->heard + offline_ms;
	ev->ts = d->heard + offline_ms + s->hold_ms;
	ev->detail = detail;
	return 1;
}

/* ---------------------------------------------------------------- sweep */

struct sweep {
	const struct rules_config *cfg;
	int64_t offline_ms, now_ms;
	rule_event_fn fn;
	void *ctx;
	char detail[OFFLINE_DETAIL_MAX];
};

/* Hands a judged event on (judged 0: nothing to do). */
static int hand_on(struct sweep *sw, int judged, const struct rule_event *ev)
{
	int64_t alert_id = 0;
	return judged ? sw->fn(sw->ctx, ev, &alert_id) : 0;
}

static int on_agent(void *ctx, const struct store_offline_agent *a)
{
	struct sweep *sw = ctx;
	struct rule_event ev;
	return hand_on(
	    sw, offline_judge_gateway(a, sw->cfg, sw->offline_ms, sw->now_ms, &ev, sw->detail),
	    &ev);
}

static int on_device(void *ctx, const struct store_offline_device *d)
{
	struct sweep *sw = ctx;
	struct rule_event ev;
	return hand_on(
	    sw, offline_judge_device(d, sw->cfg, sw->offline_ms, sw->now_ms, &ev, sw->detail), &ev);
}

struct store_offline_rules offline_rules(void)
{
	return (struct store_offline_rules){.gateway = rule_name(RULE_GATEWAY_OFFLINE),
					    .lift = rule_name(RULE_LIFT_OFFLINE),
					    .charger = rule_name(RULE_CHARGER_OFFLINE)};
}

int offline_sweep(struct store *s, const struct rules_config *cfg, int64_t offline_ms,
		  int64_t now_ms, rule_event_fn fn, void *ctx)
{
	struct sweep sw = {cfg, offline_ms, now_ms, fn, ctx, ""};
	struct store_offline_scan q = {.silent_before = now_ms - offline_ms,
				       .rules = offline_rules(),
				       .agent = on_agent,
				       .device = on_device,
				       .ctx = &sw};
	return store_w_offline_scan(s, &q);
}
