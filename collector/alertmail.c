/*
 * alertmail.c - the writer's side of alert mail (see alertmail.h):
 * recipients and time zones per site, pacing, reminders, and the outbox.
 */
#include "alertmail.h"

#include "mailfmt.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"
#include "sitepulse/tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a condition's mails are counted for pacing (writer_mail.max_per_hour). */
#define MAIL_PACE_MS (3600 * 1000LL)

struct alertmail {
	const struct writer_mail *m;
	struct sp_buf mail;           /* the message being composed */
	struct site_tz {
		struct sp_tz *tz;     /* NULL: not loaded (or unreadable: then UTC) */
		bool tried;
	} *tzs;                       /* one per [site.*] section, then the default zone */
};

struct alertmail *alertmail_create(const struct writer_mail *m)
{
	struct alertmail *am = calloc(1, sizeof(*am));
	if (am == NULL)
		return NULL;
	am->m = m;
	if ((am->tzs = calloc(m->nsites + 1, sizeof(*am->tzs))) == NULL) {
		free(am);
		return NULL;
	}
	return am;
}

void alertmail_destroy(struct alertmail *am)
{
	if (am == NULL)
		return;
	sp_buf_free(&am->mail);
	for (size_t i = 0; i <= am->m->nsites; i++)
		sp_tz_free(am->tzs[i].tz);
	free(am->tzs);
	free(am);
}

/* The site's time zone for people (NULL: UTC, if the zone cannot be read), loaded once. */
static const struct sp_tz *site_tz(struct alertmail *am, const struct collector_site_conf *sc)
{
	struct site_tz *z = &am->tzs[sc ? (size_t)(sc - am->m->sites) : am->m->nsites];
	if (!z->tried) {
		z->tried = true;
		z->tz = sp_tz_load(sc ? sc->timezone : COLLECTOR_TIMEZONE_DEFAULT);
	}
	return z->tz;
}

/*
 * Composes a's mail for its site's recipients and puts it into the outbox
 * (the caller's transaction). a->tz is filled in here. A recipient that is
 * not a usable address (the configuration refuses those, so only if the
 * two rules ever part) is left out, said so, and the others get the mail;
 * a mail that cannot be composed at all is logged and counted in c->failed
 * (the alert stands). *queued (unless NULL) says whether a mail went into
 * the outbox (a site nobody is to be mailed for has none).
 */
static int put_mail(struct alertmail *am, struct store *s, struct mail_alert *a,
		    struct alertmail_counts *c, bool *queued)
{
	const struct writer_mail *m = am->m;
	char msgid[MAILFMT_MSGID_MAX];
	const struct collector_site_conf *sc = collector_site_find(m->sites, m->nsites, a->site);
	const struct sp_conf_list *to = sc && sc->mail_to.count ? &sc->mail_to : m->to;
	const char *usable[COLLECTOR_MAIL_TO_MAX];
	size_t nusable = 0;
	if (queued)
		*queued = false;
	if (to->count == 0)
		return 0;
	a->tz = site_tz(am, sc);
	for (size_t i = 0; i < to->count; i++) {
		const char *addr = to->items[i];
		if (nusable < COLLECTOR_MAIL_TO_MAX && mailfmt_address_ok(addr, strlen(addr)))
			usable[nusable++] = addr;
		else
			SP_ERROR("alerts", "alert %lld: recipient \"%.300s\" of site %s left out of "
				 "its mail (not a plain mail address, or more than %d)",
				 (long long)a->alert_id, addr, a->site, COLLECTOR_MAIL_TO_MAX);
	}
	struct mail_envelope env = {m->from, usable, nusable};
	sp_buf_reset(&am->mail);
	int rc = nusable == 0 ? SP_EINVAL : mailfmt_message_id(a, msgid, sizeof(msgid));
	if (rc == 0)
		rc = mailfmt_alert(&am->mail, a, &env, sp_now_ms());
	if (rc) {
		SP_ERROR("alerts", "alert %lld of site %s: cannot compose its mail (%s); the "
			 "alert stands, its mail is lost", (long long)a->alert_id, a->site,
			 nusable == 0 ? "no usable recipient" : sp_strerror(rc));
		c->failed++;
		return 0;
	}
	/* recipients as the mailer reads them: comma-separated, no spaces */
	char rcpt[COLLECTOR_MAIL_TO_MAX * (MAILFMT_ADDR_MAX + 1)];
	size_t at = 0;
	for (size_t i = 0; i < nusable; i++)
		at += (size_t)snprintf(rcpt + at, sizeof(rcpt) - at, "%s%s", i ? "," : "", usable[i]);
	struct store_mail mail = {
		.key = msgid,
		.site = a->site,
		.rcpt = rcpt,
		.body = am->mail.data,
		.body_len = am->mail.len,
		.alert_id = a->alert_id,
		.reminder = !a->cleared && a->reminder > 0,
	};
	rc = store_w_mail_add(s, &mail, sp_now_ms());
	if (queued)
		*queued = rc == 0;
	return rc;
}

/*
 * Not for alerts below min_severity; not for a condition that already
 * opened max_per_hour alerts in the hour before this one (a flapping sensor
 * must not flood the crew; counted, and its clear mail is paced alike).
 * A clear is judged by the severity the alert was opened with (the store's),
 * not the event's: nobody told of the opening is told of the clear, and
 * everybody told of it is.
 *
 * A critical alert has its own, much higher limit (max_per_hour_critical,
 * 20 by default; DOMAIN's P1: notify at once): the 5th entrapment in a lift
 * within the hour is a passenger as trapped as the first, and its clear
 * tells the crew the passenger is out (without it their mail says trapped,
 * still). No lift traps 20 passengers an hour, but a smoke detector with no
 * hold flapping every few seconds would otherwise mail hundreds of times an
 * hour and bury the next entrapment's mail behind them in the outbox. It
 * counts toward its condition's hour, being an alert like any other: a rule
 * whose severity a site's configuration lowers below critical is paced at
 * max_per_hour, which is how an operator quiets one known-faulty detector
 * (docs/operations.md).
 */
int alertmail_event(struct alertmail *am, struct store *s, const struct rule_event *ev,
		    int64_t alert_id, bool cleared, struct alertmail_counts *c)
{
	const struct writer_mail *m = am->m;
	char rule[ALERT_RULE_SHOWN_MAX], severity[16], detail[512];
	int64_t opened_at = ev->ts;
	int rc;

	if (!cleared && ev->severity > m->min_severity)
		return 0;
	alert_rule_shown(rule, sizeof(rule), rule_name(ev->rule), ev->code);
	snprintf(severity, sizeof(severity), "%s", alert_severity_name(ev->severity));
	snprintf(detail, sizeof(detail), "%s", ev->detail ? ev->detail : "");
	if (cleared && (rc = store_w_alert_info(s, alert_id, &opened_at, severity, sizeof(severity),
						detail, sizeof(detail))))
		return rc == SP_ENOTFOUND ? 0 : rc;
	int stored = alert_severity_parse(severity);
	if (cleared && (stored < 0 || stored > (int)m->min_severity))
		return 0; /* (an unknown name: its opening was not mailed either) */
	int64_t limit = stored == ALERT_CRITICAL ? m->max_per_hour_critical : m->max_per_hour;
	if (limit > 0) {
		int64_t n = store_w_alerts_opened_between(s, ev->site, ev->dev, rule, ev->port,
							  opened_at - MAIL_PACE_MS, opened_at);
		if (n < 0)
			return (int)n;
		if (n > limit) {
			c->paced++;
			return 0;
		}
	}
	struct mail_alert a = {.alert_id = alert_id, .cleared = cleared, .rule = rule,
			       .site = ev->site, .dev = ev->dev, .port = ev->port,
			       .severity = severity, .detail = detail, .opened_at = opened_at,
			       .cleared_at = cleared ? ev->ts : 0};
	return put_mail(am, s, &a, c, NULL);
}

/* ---------------------------------------------------------------- reminders */

/*
 * DOMAIN's P1, "repeat until acknowledged". The count is stored in the
 * caller's transaction with the mail, so none is sent twice.
 */
struct remind {
	struct alertmail *am;
	struct store *s;
	int64_t now;
	struct alertmail_counts *c;
};

static int remind_one(void *ctx, const struct store_reminder *r)
{
	struct remind *x = ctx;
	int64_t n = (x->now - r->remind_from) / x->am->m->repeat_ms;
	if (n <= r->reminders)
		n = r->reminders + 1;
	if (n > INT32_MAX)
		n = INT32_MAX;
	struct mail_alert a = {.alert_id = r->id, .reminder = (int)n, .rule = r->rule,
			       .site = r->site, .dev = r->dev, .port = r->port,
			       .severity = r->severity, .detail = r->detail,
			       .opened_at = r->opened_at};
	bool queued;
	int rc = put_mail(x->am, x->s, &a, x->c, &queued);
	/* the count is stored either way, so a reminder nobody could be sent is not tried again */
	if (rc == 0 && (rc = store_w_alert_reminded(x->s, r->id, n)) == 0 && queued)
		x->c->reminders++;
	return rc;
}

int alertmail_reminders(struct alertmail *am, struct store *s, int64_t now_ms,
			struct alertmail_counts *c)
{
	if (am->m->repeat_ms <= 0)
		return 0; /* critical alerts are always mailed when mail is on: min_severity allows it */
	struct remind x = {am, s, now_ms, c};
	return store_w_reminders_due(s, alert_severity_name(ALERT_CRITICAL), am->m->repeat_ms,
				     now_ms, remind_one, &x);
}
