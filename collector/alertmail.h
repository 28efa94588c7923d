/*
 * alertmail.h - the writer's side of alert mail: which alert events are
 * mailed and to whom, pacing of a flapping condition, and reminders of
 * critical alerts nobody acknowledges (DOMAIN's P1). Each mail is composed
 * (mailfmt.h) and put into the store's mail outbox inside the caller's
 * transaction, the one that opens, clears or counts the alert, so a mail is
 * never lost nor, for a committed event, composed twice; mailer.c delivers
 * the outbox. docs/alerts.md "Mail".
 *
 * Threading: one struct alertmail belongs to the writer's thread.
 */
#ifndef SP_COLLECTOR_ALERTMAIL_H
#define SP_COLLECTOR_ALERTMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector_conf.h"
#include "rules.h"
#include "store.h"

/* Who gets alert mails, and which ([smtp] and [site.S] of the configuration). */
struct writer_mail {
	const char *from;
	const struct sp_conf_list *to;             /* recipients of sites without mail_to */
	const struct collector_site_conf *sites;   /* mail_to and timezone per site */
	size_t nsites;
	enum alert_severity min_severity;          /* this or worse is mailed */
	int64_t max_per_hour;                      /* per condition: more are paced (counted) */
	int64_t repeat_ms;                         /* remind of critical unacked (0: never) */
	int64_t max_per_hour_critical;             /* the same for critical alerts (0: never
						      paced) */
};

/* What a batch's mail did, added to the metrics after COMMIT. */
struct alertmail_counts {
	uint64_t paced;      /* not sent: their condition opened max_per_hour(_critical) already */
	uint64_t reminders;  /* reminders queued */
	uint64_t failed;     /* not composed (no usable recipient, ...): lost, logged as ERROR */
};

struct alertmail;

/* m is borrowed and must outlive it. NULL on no memory. */
struct alertmail *alertmail_create(const struct writer_mail *m);
void alertmail_destroy(struct alertmail *am);

/*
 * Queues the mail of an alert opened (cleared false: ev is the RULE_OPEN
 * event, alert_id its new id) or cleared (ev the RULE_CLEAR event), unless
 * below min_severity (a clear: by the severity the alert was stored with),
 * paced (never a critical one: see alertmail.c), or the site has no
 * recipients. A recipient that is not a usable address (mailfmt_address_ok)
 * is left out and logged; a mail that cannot be composed (none left, ...)
 * is logged as an ERROR, counted in c->failed and skipped (the alert
 * stands). 0 or SP_E* (the store's; the caller's transaction then fails).
 */
int alertmail_event(struct alertmail *am, struct store *s, const struct rule_event *ev,
		    int64_t alert_id, bool cleared, struct alertmail_counts *c);

/*
 * Queues the reminders due at now_ms (store_w_reminders_due): a critical
 * alert still active and unacknowledged repeat_ms after it opened, and
 * every repeat_ms after, until acknowledged or cleared (later by the steps
 * forward of the collector's clock meanwhile: store_w_clock_set_forward);
 * after an outage only the latest due. 0 or SP_E*.
 */
int alertmail_reminders(struct alertmail *am, struct store *s, int64_t now_ms,
			struct alertmail_counts *c);

#endif
