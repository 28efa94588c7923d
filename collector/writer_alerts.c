/*
 * writer_alerts.c - the writer's side of the alert rules (writer_int.h):
 * the rules judge each stored record in the writer thread, and their events
 * (a hold begun or ended, an alert opened or cleared, a fault clear to
 * remember) are written here into the batch's transaction, with the alert
 * mail queued in the same transaction (alertmail.h). A batch that rolls back
 * takes them all back, and the rules' state is rebuilt from the store.
 */
#include "writer_int.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"

#include <stdio.h>

void writer_rule_device(struct rule_device *rd, int64_t id, const char *site, const char *dev,
			   enum sp_dev_kind kind, uint16_t rating, const struct store_device *d)
{
	rd->id = id;
	rd->site = site;
	rd->dev = dev;
	rd->kind = kind;
	rd->rated_speed = kind == SP_DEV_LIFT ? rating / 100.0 : 0;
	rd->port_limit_w = kind == SP_DEV_CHARGER ? (double)rating : 0;
	rd->has_floors = kind == SP_DEV_LIFT && d != NULL && d->has_floors;
	rd->floor_bottom = rd->has_floors ? d->floor_min : 0;
	rd->floor_top = rd->has_floors ? d->floor_max : 0;
}

/*
 * Remembers a fault clear in the store too (the rules remember it in
 * memory), so that a raise resent after its own clear is over after a
 * restart as well. The table is trimmed back to what the rules remember
 * once as many clears again have been written: it never holds more than
 * twice that.
 */
static int keep_fault_clear(struct writer *w, const struct rule_event *ev)
{
	int rc = store_w_fault_clear(w->p.store, ev->device_id, ev->port, ev->code, ev->ts);
	if (rc == 0 && ++w->clears_untrimmed >= RULES_FAULT_CLEARS_MAX) {
		rc = store_w_fault_clears_trim(w->p.store, RULES_FAULT_CLEARS_MAX);
		w->clears_untrimmed = 0; /* a rolled-back trim is redone by the next one */
	}
	return rc;
}

/* A late raise the rules ignored (RULE_RAISE_STALE); rate-limited: a resend may hold many. */
static void log_stale_raise(struct writer *w, const struct rule_event *ev)
{
	uint64_t suppressed;
	if (!sp_ratelimit_allow(&w->stale_log, sp_mono_ms(), 10, 10000, &suppressed))
		return;
	SP_INFO("alerts", "%s/%s: late fault raise %s of %lld ignored: its clear, at or after it, came "
			  "first%s",
		ev->site, ev->dev, ev->code, (long long)ev->ts,
		suppressed ? " (similar lines suppressed)" : "");
}

/*
 * A device's clock set back (RULE_CLOCK_STEP); rate-limited: a gateway that
 * stamps its devices' records steps all of them at once.
 */
static void log_clock_step(struct writer *w, const struct rule_event *ev)
{
	uint64_t suppressed;
	if (!sp_ratelimit_allow(&w->step_log, sp_mono_ms(), 10, 10000, &suppressed))
		return;
	SP_WARN("alerts", "%s/%s: device clock set back by %lld s (its records keep arriving behind "
			  "the newest it sent): its alert conditions now follow the new time%s",
		ev->site, ev->dev, (long long)((ev->since - ev->ts) / 1000),
		suppressed ? " (similar lines suppressed)" : "");
}

int writer_load_fault_clear(void *ctx, int64_t device_id, int32_t port, const char *code,
			    int64_t ts)
{
	struct writer *w = ctx;
	rules_note_fault_clear(w->rules, device_id, port, code, ts);
	return 0;
}

/* The rules' events, written in the batch's transaction (rules.h). */
int writer_on_rule_event(void *ctx, const struct rule_event *ev, int64_t *alert_id)
{
	struct writer *w = ctx;
	const char *rule = rule_name(ev->rule);
	char shown[ALERT_RULE_SHOWN_MAX], port[24] = "";
	int rc;
	switch (ev->kind) {
	case RULE_HOLD_START:
		return holdlog_begin(w->holds, ev->device_id, (int)ev->rule, ev->port, ev->code,
				     ev->since);
	case RULE_HOLD_END:
		return holdlog_end(w->holds, ev->device_id, (int)ev->rule, ev->port, ev->code);
	case RULE_HOLD_MOVED:
		return holdlog_move(w->holds, ev->device_id, (int)ev->rule, ev->port, ev->code,
				    ev->since);
	case RULE_OPEN: {
		struct store_alert_new a = {ev->device_id, rule, ev->code, ev->site, ev->dev, ev->port,
					    alert_severity_name(ev->severity), ev->ts, ev->detail};
		bool adopted;
		/* the alert replaces its hold (if it had one: holdlog writes nothing otherwise) */
		if ((!rule_swept(ev->rule) &&
		     (rc = holdlog_end(w->holds, ev->device_id, (int)ev->rule, ev->port, ev->code))) ||
		    (rc = store_w_alert_open(w->p.store, &a, alert_id, &adopted)))
			return rc;
		alert_rule_shown(shown, sizeof(shown), rule, ev->code);
		if (ev->port)
			snprintf(port, sizeof(port), " port %d", (int)ev->port);
		if (adopted) {
			/*
			 * Still active in the store: the rules had lost it (store_w_alert_open).
			 * It is the same alert, so no "opened" mail again: its own went into
			 * the outbox when it opened (unless it was paced or below min_severity).
			 */
			w->bc.alerts_adopted++;
			alertlog_add(w->alert_lines, "alert %lld adopted: %s %s/%s%s was still active in the "
					  "store; kept as it is, not mailed again",
				(long long)*alert_id, shown, ev->site, ev->dev, port);
			return 0;
		}
		w->bc.alerts_opened++;
		alertlog_add(w->alert_lines, "alert %lld opened: %s %s %s/%s%s: %s", (long long)*alert_id, shown,
			a.severity, ev->site, ev->dev, port, ev->detail);
		return w->mail ? alertmail_event(w->mail, w->p.store, ev, *alert_id, false, &w->bc.mail)
			       : 0;
	}
	case RULE_CLEAR:
		if ((rc = store_w_alert_clear(w->p.store, ev->alert_id, ev->ts)))
			return rc;
		w->bc.alerts_cleared++;
		alert_rule_shown(shown, sizeof(shown), rule, ev->code);
		alertlog_add(w->alert_lines, "alert %lld cleared: %s %s/%s", (long long)ev->alert_id, shown,
			ev->site, ev->dev);
		return w->mail ? alertmail_event(w->mail, w->p.store, ev, ev->alert_id, true, &w->bc.mail)
			       : 0;
	case RULE_FAULT_CLEARED:
		return keep_fault_clear(w, ev);
	case RULE_RAISE_STALE:
		w->bc.fault_raises_stale++;
		log_stale_raise(w, ev);
		return 0;
	case RULE_CLOCK_STEP:
		w->bc.clock_steps++;
		log_clock_step(w, ev);
		return 0;
	}
	return 0;
}

int writer_put_hold(void *ctx, int64_t device_id, int rule, int32_t port, const char *code,
		    int64_t since)
{
	return store_w_hold_put(ctx, device_id, rule_name((enum rule_id)rule), port, code, since);
}

int writer_del_hold(void *ctx, int64_t device_id, int rule, int32_t port, const char *code)
{
	return store_w_hold_del(ctx, device_id, rule_name((enum rule_id)rule), port, code);
}

static int load_condition(void *ctx, const struct store_condition *c)
{
	struct writer *w = ctx;
	struct rule_device rd;
	int64_t now = sp_now_ms();
	int rc;
	writer_rule_device(&rd, c->device_id, c->site, c->dev, c->kind, c->rating, NULL);
	if (c->alert_id > 0)
		rc = rules_load_alert(w->rules, &rd, c->rule, c->port, c->code, c->alert_id,
				      c->opened_at, c->last_seen, now);
	else
		rc = rules_load_hold(w->rules, &rd, c->rule, c->port, c->code, c->since, c->last_seen,
				     now);
	if (rc == SP_EINVAL) {
		SP_WARN("alerts", "%s/%s: unknown rule %s in the store: left as it is", c->site, c->dev,
			c->rule);
		return 0;
	}
	return rc;
}

int writer_load_conditions(struct writer *w)
{
	rules_reset(w->rules);
	int rc = store_w_load_conditions(w->p.store, load_condition, w);
	atomic_store(&w->p.metrics->rule_conditions, rules_count(w->rules));
	return rc;
}
