/*
 * mailer.h - the alert mail sender: a thread that takes mails from the
 * store's mail outbox (store.h, STORE_OUTBOX_MAIL) and delivers them over
 * SMTP with libcurl, one at a time, oldest first; a failure is retried
 * with exponential backoff, a success is never sent again.
 *
 * A stuck or dead mail server only ever holds this thread: each attempt is
 * bounded by connect and total timeouts, and the writer never waits on it.
 */
#ifndef SP_COLLECTOR_MAILER_H
#define SP_COLLECTOR_MAILER_H

#include <stdint.h>

#include "metrics.h"
#include "store.h"

struct mailer_params {
	struct store *store;
	struct metrics *metrics;     /* mail_sent, mail_failed, mail_queued */
	const char *url;             /* smtp://host:port or smtps://host:port */
	const char *username;        /* NULL or "" = no login */
	const char *password;
	const char *from;            /* MAIL FROM */
	int64_t timeout_ms;          /* one attempt, all of it */
	int64_t retry_min_ms;        /* first backoff; doubled per failure */
	int64_t retry_max_ms;
};

struct mailer;

/* Copies what it needs from p; starts the thread. NULL on failure (logged). */
struct mailer *mailer_start(const struct mailer_params *p);

/* Stops (an attempt under way is cut short within about a second), joins and frees. NULL ok. */
void mailer_stop(struct mailer *m);

#endif
