/*
 * mailer.c - the alert mail sender (see mailer.h): one thread, the mail
 * outbox of the store, SMTP through libcurl's easy interface.
 *
 * Loop: take the oldest due mail (store_sender_next copies it: the store's
 * strings live only during its callback; an alert's mails come in the
 * order they were queued), send it in one bounded attempt, then mark it
 * delivered (store_sender_done, mail_sent) or due again later
 * (store_sender_retry with capped exponential backoff, mail_failed, one
 * rate-limited log line). With nothing due the thread sleeps up to a
 * second on a condition variable that mailer_stop signals; about once a
 * second it refreshes the mail_queued gauge from the store.
 *
 * Two kinds of failure. The server out of reach (no connection, no answer
 * in time, the connection dropped, "421 service not available") is not the
 * mail's fault: the whole outbox waits (store_sender_hold) for one backoff
 * of the server's, which grows with its failures in a row (the mail tried
 * waits the longer of that and its own), and the first
 * mail delivered afterwards makes everything held due again
 * (store_sender_release). So after an outage the mails go out oldest
 * first, not each by its own backoff, which sent an alert's reminders and
 * its clear before its opening (the opening, queued first, had failed most
 * and waited longest). A mail queued meanwhile is tried at once, which is
 * how a server back within a long backoff is noticed soon. A refusal of
 * the mail itself (a 4xx or 5xx reply to it) puts only that mail off, by
 * its own backoff.
 *
 * A reminder is not sent when it is superseded (store_sender_superseded:
 * later news of its alert is queued, or the alert was acknowledged or has
 * cleared while it waited): counted in mail_superseded.
 *
 * Threads: mailer_start and mailer_stop run on the caller's thread (main).
 * Everything else runs on the mailer thread, which alone uses the store
 * sender handle and the curl handle (both created in mailer_start, before
 * the thread exists, so a failure is reported to the caller). The two sides
 * share only `stopping` (atomic; also read by curl's callbacks, which run on
 * the mailer thread inside curl_easy_perform) and lock/wake for the wakeup.
 *
 * Delivery is at least once: a mail is marked delivered only after the
 * server accepted it, so a crash, a stop or a lost "250" between the two
 * sends it again, with the same Message-ID (mailfmt.h) for readers and
 * relays to recognise. An attempt cut short by mailer_stop is not counted
 * as a failure: it stays due and goes out after the restart.
 *
 * A mail server that answers 5xx for good (a recipient refused, say) is
 * retried like any failure, at most every retry_max_ms, its error kept in
 * the outbox for operators: the outbox has no "dead" state to park it in.
 * With CURLOPT_MAIL_RCPT_ALLOWFAILS a refused address among several does
 * not hold back the mail for the others.
 *
 * Credentials: with a username set, an smtp:// URL requires STARTTLS
 * (CURLUSESSL_ALL) so that the password never crosses the network in
 * clear; without one, STARTTLS is used when offered (CURLUSESSL_TRY).
 * smtps:// is TLS from the start. The password and the URL's user part are
 * never logged, and the password is wiped from memory when the mailer stops.
 *
 * libcurl: curl_global_init must run once before any thread uses curl; it
 * runs here through pthread_once (cityout.c does the same: libcurl counts
 * the calls, so two callers are fine). curl_global_cleanup is left to the
 * end of the process.
 */
#include "mailer.h"

#include "mailfmt.h"
#include "retry.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define COMP           "mailer"
#define IDLE_MS        1000          /* longest sleep with nothing due */
#define GAUGE_MS       1000          /* mail_queued refresh */
#define CONNECT_MAX_MS 10000         /* connect timeout: min(timeout, this) */
#define BODY_MAX       (1024 * 1024) /* a mail is ~1 KB; bigger ones are refused */
#define KEY_MAX        1024
#define RCPT_LIST_MAX  (64 * 1024)
#define RCPT_MAX       256 /* recipients per mail */
#define ERROR_MAX      512 /* the error kept in the outbox and logged */
#define REPLY_MAX      160 /* the server's reply kept for the error text */
#define UNMARKED_MAX   16
#define LOG_BURST      5 /* failure lines per LOG_WINDOW_MS */
#define LOG_WINDOW_MS  60000

struct mailer {
	/* set in mailer_start, read-only afterwards */
	struct metrics *metrics;
	char *url, *url_shown; /* url_shown: without user:password@, for logs */
	char *username, *password;
	char *from_path; /* "<from>" */
	int64_t timeout_ms, retry_min_ms, retry_max_ms;

	/* shared with mailer_stop */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool sync_ok; /* lock and wake initialised */
	atomic_bool stopping;
	pthread_t thread;
	bool started;

	/* mailer thread only (created before it starts) */
	struct store_sender *sender;
	CURL *curl;
	struct {
		int64_t id, attempts;
		bool reminder;
		struct sp_buf key, rcpt, body;
		int copy_rc; /* 0, or why the item could not be copied */
	} cur;
	size_t body_off; /* how much of cur.body curl has read */
	char errbuf[CURL_ERROR_SIZE];
	char reply[REPLY_MAX];      /* the server's first 4xx/5xx reply of this attempt, */
	char last_reply[REPLY_MAX]; /* else its last one */
	/*
	 * Delivered, but store_sender_done failed: not sent again when the
	 * outbox hands them out once more, only marked (a mail storm otherwise).
	 */
	int64_t unmarked[UNMARKED_MAX];
	size_t nunmarked;
	struct sp_ratelimit fail_log, rcpt_log;
	uint64_t failures_in_row; /* for the one "delivering again" line */
	int64_t server_failures;  /* in a row, out of reach: its backoff */
	uint64_t jitter;
};

/* ---------------------------------------------------------------- libcurl setup */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---------------------------------------------------------------- helpers */

/* "smtp://user:pw@host:25" -> "smtp://host:25": the URL as logs may show it. */
static char *url_for_logs(const char *url)
{
	const char *host = strstr(url, "://");
	host = host ? host + 3 : url;
	size_t auth_end = strcspn(host, "/?#");
	const char *at = memchr(host, '@', auth_end);
	if (at == NULL)
		return strdup(url);
	size_t scheme = (size_t)(host - url);
	char *out = malloc(strlen(url) + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, url, scheme);
	strcpy(out + scheme, at + 1);
	return out;
}

static int64_t backoff_ms(struct mailer *m, int64_t attempts)
{
	return retry_delay_ms(m->retry_min_ms, m->retry_max_ms, attempts, &m->jitter);
}

static void publish_queued(struct mailer *m)
{
	int64_t n = store_sender_pending(m->sender);
	if (n >= 0)
		atomic_store(&m->metrics->mail_queued, n);
}

/* Sleeps up to ms, or until mailer_stop. */
static void idle_wait(struct mailer *m, int64_t ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	int64_t ns = until.tv_nsec + ms * 1000000;
	until.tv_sec += ns / 1000000000;
	until.tv_nsec = ns % 1000000000;
	pthread_mutex_lock(&m->lock);
	while (!atomic_load(&m->stopping) &&
	       pthread_cond_timedwait(&m->wake, &m->lock, &until) == 0)
		;
	pthread_mutex_unlock(&m->lock);
}

/* ---------------------------------------------------------------- one mail */

/* store_sender_next's callback: copies the item (its strings die with the call). */
static int take_item(void *ctx, const struct store_outbox_item *it)
{
	struct mailer *m = ctx;
	int rc;

	m->cur.id = it->id;
	m->cur.attempts = it->attempts;
	m->cur.reminder = it->reminder;
	sp_buf_reset(&m->cur.key);
	sp_buf_reset(&m->cur.rcpt);
	sp_buf_reset(&m->cur.body);
	if ((rc = sp_buf_puts(&m->cur.key, it->key ? it->key : "")) == 0 &&
	    (rc = sp_buf_puts(&m->cur.rcpt, it->rcpt ? it->rcpt : "")) == 0)
		rc = sp_buf_append(&m->cur.body, it->body ? it->body : "",
				   it->body ? it->body_len : 0);
	m->cur.copy_rc = rc;
	return 0;
}

/*
 * The comma-separated recipients as an slist of "<addr>". Addresses that
 * could not be sent safely (blanks, brackets: SMTP command injection; the
 * rule is mailfmt_address_ok, the configuration's and the composition's)
 * are left out and counted in *skipped. NULL with why set when none is left.
 */
static struct curl_slist *recipients(const char *list, char *why, size_t whylen, int *skipped)
{
	struct curl_slist *out = NULL;
	char addr[MAILFMT_ADDR_MAX + 3];
	int n = 0;

	*skipped = 0;
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		const char *s = p, *e = p + len;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		p += len + (p[len] == ',');
		if (s == e)
			continue;
		if (!mailfmt_address_ok(s, (size_t)(e - s)) || n == RCPT_MAX) {
			(*skipped)++;
			continue;
		}
		snprintf(addr, sizeof(addr), "<%.*s>", (int)(e - s), s);
		struct curl_slist *next = curl_slist_append(out, addr);
		if (next == NULL) {
			snprintf(why, whylen, "out of memory");
			curl_slist_free_all(out);
			return NULL;
		}
		out = next;
		n++;
	}
	if (out == NULL)
		snprintf(why, whylen, "no valid recipient in \"%.200s\"", list);
	return out;
}

static size_t read_body(char *dst, size_t size, size_t nmemb, void *ctx)
{
	struct mailer *m = ctx;
	size_t room = size * nmemb, left = m->cur.body.len - m->body_off;
	size_t n = left < room ? left : room;

	if (atomic_load(&m->stopping))
		return CURL_READFUNC_ABORT;
	memcpy(dst, m->cur.body.data + m->body_off, n);
	m->body_off += n;
	return n;
}

/* Called by curl at least about once a second during a transfer: stop cuts it short. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct mailer *m = ctx;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&m->stopping) ? 1 : 0;
}

/*
 * curl's trace: keeps the server's first error reply ("550 5.1.1 no such
 * user"; later ones, like the "221 Bye" to QUIT, say less) and its last
 * reply, which say more than curl's error text. Only what the server sent
 * is looked at; our own commands (AUTH carries the password) are not.
 */
static int on_trace(CURL *c, curl_infotype type, char *data, size_t size, void *ctx)
{
	struct mailer *m = ctx;
	size_t n = 0;

	(void)c;
	if (type != CURLINFO_HEADER_IN || size == 0)
		return 0;
	while (n < size && n < sizeof(m->last_reply) - 1 && data[n] != '\r' && data[n] != '\n') {
		unsigned char ch = (unsigned char)data[n];
		m->last_reply[n++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	m->last_reply[n] = '\0';
	if (m->reply[0] == '\0' && (data[0] == '4' || data[0] == '5'))
		memcpy(m->reply, m->last_reply, n + 1);
	return 0;
}

static CURLcode set_options(struct mailer *m, struct curl_slist *rcpts)
{
	CURL *c = m->curl;
	bool smtps = strncasecmp(m->url, "smtps://", 8) == 0;
	bool login = m->username && m->username[0];
	long connect_ms = (long)(m->timeout_ms < CONNECT_MAX_MS ? m->timeout_ms : CONNECT_MAX_MS);
	CURLcode rc = CURLE_OK;

	curl_easy_reset(c);
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(c, opt, val);                                        \
	} while (0)
	SET(CURLOPT_URL, m->url);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
	SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
	SET(CURLOPT_MAIL_FROM, m->from_path);
	SET(CURLOPT_MAIL_RCPT, rcpts);
#if LIBCURL_VERSION_NUM >= 0x080200 /* 8.2.0 renamed it */
	SET(CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
#elif LIBCURL_VERSION_NUM >= 0x074500 /* 7.69.0 */
	SET(CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
#endif
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_READFUNCTION, read_body);
	SET(CURLOPT_READDATA, m);
	SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->cur.body.len);
	if (login) {
		SET(CURLOPT_USERNAME, m->username);
		SET(CURLOPT_PASSWORD, m->password ? m->password : "");
	}
	SET(CURLOPT_USE_SSL, (long)(smtps || login ? CURLUSESSL_ALL : CURLUSESSL_TRY));
	SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	SET(CURLOPT_TIMEOUT_MS, (long)m->timeout_ms);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, m);
	SET(CURLOPT_ERRORBUFFER, m->errbuf);
	SET(CURLOPT_DEBUGFUNCTION, on_trace); /* with VERBOSE: to on_trace, not to stderr */
	SET(CURLOPT_DEBUGDATA, m);
	SET(CURLOPT_VERBOSE, 1L);
	/* one connection per mail: no half-dead cached connection to trip over, QUIT each time */
	SET(CURLOPT_FORBID_REUSE, 1L);
#undef SET
	return rc;
}

/* The mail's Message-ID for the log ("?" if it could not even be copied). */
static const char *key_of(const struct mailer *m)
{
	return m->cur.key.data && m->cur.key.data[0] ? m->cur.key.data : "?";
}

/*
 * Not delivered: due again after its own backoff; with server_down the
 * whole outbox waits the server's (see the top of the file), and this mail
 * the longer of the two, so that a mail the server chokes on does not
 * always come first after the wait. 0, or the store's error.
 */
static int failed(struct mailer *m, const char *why, bool server_down)
{
	int64_t now = sp_now_ms();
	int64_t delay = backoff_ms(m, m->cur.attempts);
	int64_t hold = server_down ? backoff_ms(m, m->server_failures) : 0;
	uint64_t suppressed = 0;
	int rc;

	atomic_fetch_add(&m->metrics->mail_failed, 1);
	m->failures_in_row++;
	if (hold > delay)
		delay = hold;
	rc = store_sender_retry(m->sender, m->cur.id, now + delay, why);
	if (server_down) {
		m->server_failures++;
		if (rc == 0)
			rc = store_sender_hold(m->sender, now + hold);
	}
	if (sp_ratelimit_allow(&m->fail_log, sp_mono_ms(), LOG_BURST, LOG_WINDOW_MS, &suppressed)) {
		char more[64] = "";
		if (suppressed)
			snprintf(more, sizeof(more), " (%llu similar lines suppressed)",
				 (unsigned long long)suppressed);
		char held[64] = "";
		if (server_down)
			snprintf(held, sizeof(held), ", all mail waits %.1f s for the server",
				 (double)hold / 1000.0);
		SP_WARN(COMP,
			"mail %.256s not delivered (attempt %lld) via %s: %s; "
			"next try in %.1f s%s%s%s",
			key_of(m), (long long)m->cur.attempts + 1, m->url_shown, why,
			(double)delay / 1000.0, held,
			rc ? " (but the outbox could not be updated)" : "", more);
	}
	return rc;
}

static bool unmarked_find(struct mailer *m, int64_t id, size_t *at)
{
	for (size_t i = 0; i < m->nunmarked; i++) {
		if (m->unmarked[i] == id) {
			*at = i;
			return true;
		}
	}
	return false;
}

/* Marks the current mail delivered. 0, or the store's error (then remembered, see unmarked). */
static int mark_done(struct mailer *m)
{
	size_t at;
	bool known = unmarked_find(m, m->cur.id, &at);
	int rc = store_sender_done(m->sender, m->cur.id, sp_now_ms());

	if (rc == 0) {
		if (known)
			m->unmarked[at] = m->unmarked[--m->nunmarked];
		return 0;
	}
	if (!known) {
		SP_ERROR(COMP,
			 "mail %.256s delivered, but the outbox cannot say so (%s): "
			 "held back from sending again until it can",
			 key_of(m), sp_strerror(rc));
		if (m->nunmarked == UNMARKED_MAX)
			m->nunmarked--; /* the oldest memory goes: that mail may be sent twice */
		memmove(m->unmarked + 1, m->unmarked, m->nunmarked * sizeof(m->unmarked[0]));
		m->unmarked[0] = m->cur.id;
		m->nunmarked++;
	}
	return rc;
}

/*
 * Sends the current mail and records the outcome. 0, or the store's error
 * when the outcome could not be recorded (the caller then pauses: the
 * outbox would hand out the same mail at once).
 */
static int deliver(struct mailer *m)
{
	char why[ERROR_MAX];
	struct curl_slist *rcpts = NULL;
	CURLcode res;
	size_t at;
	int skipped = 0;
	uint64_t suppressed;

	if (unmarked_find(m, m->cur.id, &at))
		return mark_done(m); /* already delivered: only the marking is missing */
	if (m->cur.copy_rc) {
		snprintf(why, sizeof(why), "cannot take the mail from the outbox: %s",
			 sp_strerror(m->cur.copy_rc));
		return failed(m, why, false);
	}
	rcpts = recipients(m->cur.rcpt.data, why, sizeof(why), &skipped);
	if (rcpts == NULL)
		return failed(m, why, false);
	if (skipped &&
	    sp_ratelimit_allow(&m->rcpt_log, sp_mono_ms(), 1, LOG_WINDOW_MS, &suppressed))
		SP_WARN(COMP,
			"mail %.256s: %d recipient(s) of \"%.300s\" left out (not a plain "
			"address, or more than %d)",
			key_of(m), skipped, m->cur.rcpt.data, RCPT_MAX);
	m->body_off = 0;
	m->errbuf[0] = '\0';
	m->reply[0] = '\0';
	m->last_reply[0] = '\0';
	res = set_options(m, rcpts);
	if (res == CURLE_OK)
		res = curl_easy_perform(m->curl);
	curl_slist_free_all(rcpts);

	if (res == CURLE_OK) {
		atomic_fetch_add(&m->metrics->mail_sent, 1);
		SP_DEBUG(COMP, "mail %.256s delivered", key_of(m));
		if (m->failures_in_row) {
			SP_INFO(COMP, "delivering mail again via %s (after %llu failed attempts)",
				m->url_shown, (unsigned long long)m->failures_in_row);
			m->failures_in_row = 0;
		}
		m->server_failures = 0;
		int rc = mark_done(m);
		/* the server answers: what waited for it is due, oldest first (a release
		 * that fails is tried again after the next delivery) */
		(void)store_sender_release(m->sender, sp_now_ms());
		return rc;
	}
	if (atomic_load(&m->stopping) &&
	    (res == CURLE_ABORTED_BY_CALLBACK || res == CURLE_READ_ERROR)) {
		SP_INFO(COMP, "stopping: mail %.256s cut short, it goes out after the restart",
			key_of(m));
		return 0; /* not the server's failure: nothing recorded, still due */
	}
	/* curl's own words (never the password), and what the server said last */
	const char *text = m->errbuf[0] ? m->errbuf : curl_easy_strerror(res);
	int tn = (int)strcspn(text, "\r\n");
	const char *said = m->reply[0] ? m->reply : m->last_reply;
	if (said[0])
		snprintf(why, sizeof(why), "%.*s (server said: %s)", tn, text, said);
	else
		snprintf(why, sizeof(why), "%.*s", tn, text);
	/* no refusal of this mail: the server was not reached, or is closing ("421") */
	return failed(m, why, m->reply[0] == '\0' || strncmp(m->reply, "421", 3) == 0);
}

/*
 * Whether the current mail, a reminder, is superseded (then marked so in
 * the outbox and counted). When the outbox cannot tell, it is sent: a
 * stale reminder is better than a lost one.
 */
static bool superseded(struct mailer *m)
{
	int rc = store_sender_superseded(m->sender, m->cur.id, sp_now_ms());

	if (rc != 1)
		return false;
	atomic_fetch_add(&m->metrics->mail_superseded, 1);
	SP_INFO(COMP, "reminder %.256s not sent: superseded (later news of its alert is queued, "
		"or it was acknowledged or cleared)", key_of(m));
	return true;
}

/* ---------------------------------------------------------------- thread */

static void *run(void *arg)
{
	struct mailer *m = arg;
	int64_t next_gauge = 0;
	struct sp_ratelimit store_log = {0};
	uint64_t suppressed;

	while (!atomic_load(&m->stopping)) {
		int64_t mono = sp_mono_ms();
		if (mono >= next_gauge) {
			publish_queued(m);
			next_gauge = mono + GAUGE_MS;
		}
		int rc = store_sender_next(m->sender, sp_now_ms(), m->retry_max_ms, take_item, m);
		if (rc == 1 && m->cur.reminder && superseded(m))
			continue;
		if (rc == 1) {
			if (deliver(m) == 0)
				continue;
			/* the outcome is not recorded: the same mail would come straight back */
			idle_wait(m, IDLE_MS);
			continue;
		}
		if (rc < 0 && sp_ratelimit_allow(&store_log, mono, 1, LOG_WINDOW_MS, &suppressed))
			SP_ERROR(COMP, "cannot read the mail outbox: %s (retrying every second)",
				 sp_strerror(rc));
		idle_wait(m, IDLE_MS);
	}
	publish_queued(m);
	return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static void destroy(struct mailer *m)
{
	if (m == NULL)
		return;
	if (m->curl)
		curl_easy_cleanup(m->curl);
	store_sender_close(m->sender);
	if (m->sync_ok) {
		pthread_cond_destroy(&m->wake);
		pthread_mutex_destroy(&m->lock);
	}
	sp_buf_free(&m->cur.key);
	sp_buf_free(&m->cur.rcpt);
	sp_buf_free(&m->cur.body);
	if (m->password) {
		explicit_bzero(m->password, strlen(m->password)); /* no secret in freed memory */
		free(m->password);
	}
	if (m->url) {
		explicit_bzero(m->url, strlen(m->url)); /* it may hold user:password@ */
		free(m->url);
	}
	free(m->url_shown);
	free(m->username);
	free(m->from_path);
	free(m);
}

static bool params_ok(const struct mailer_params *p)
{
	const char *why = NULL;

	if (p->store == NULL || p->metrics == NULL)
		why = "no store or metrics";
	else if (p->url == NULL || (strncasecmp(p->url, "smtp://", 7) != 0 &&
				    strncasecmp(p->url, "smtps://", 8) != 0))
		why = "the URL is not smtp:// or smtps://";
	else if (p->from == NULL || !mailfmt_address_ok(p->from, strlen(p->from)))
		why = "the sender address is not a plain address like sitepulse@example.org";
	else if (p->timeout_ms <= 0 || p->timeout_ms > 24 * 3600 * 1000)
		why = "timeout out of range";
	else if (p->retry_min_ms <= 0 || p->retry_max_ms < p->retry_min_ms)
		why = "retry delays out of range";
	if (why)
		SP_ERROR(COMP, "not started: %s", why);
	return why == NULL;
}

struct mailer *mailer_start(const struct mailer_params *p)
{
	struct mailer *m = NULL;
	pthread_condattr_t ca;
	size_t from_len;

	if (!params_ok(p))
		return NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		SP_ERROR(COMP, "not started: curl_global_init: %s",
			 curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto nomem;
	m->metrics = p->metrics;
	m->timeout_ms = p->timeout_ms;
	m->retry_min_ms = p->retry_min_ms;
	m->retry_max_ms = p->retry_max_ms;
	m->jitter = (uint64_t)sp_now_ms() ^ (uint64_t)(uintptr_t)m;
	m->cur.key = (struct sp_buf)SP_BUF_INIT(KEY_MAX);
	m->cur.rcpt = (struct sp_buf)SP_BUF_INIT(RCPT_LIST_MAX);
	m->cur.body = (struct sp_buf)SP_BUF_INIT(BODY_MAX);
	from_len = strlen(p->from);
	m->url = strdup(p->url);
	m->url_shown = m->url ? url_for_logs(m->url) : NULL;
	m->from_path = malloc(from_len + 3);
	if (m->url == NULL || m->url_shown == NULL || m->from_path == NULL)
		goto nomem;
	snprintf(m->from_path, from_len + 3, "<%s>", p->from);
	if (p->username && p->username[0]) {
		m->username = strdup(p->username);
		m->password = strdup(p->password ? p->password : "");
		if (m->username == NULL || m->password == NULL)
			goto nomem;
	}
	/* the wait measures the monotonic clock: a wall-clock step neither stalls nor hurries it */
	if (pthread_condattr_init(&ca) != 0)
		goto nomem;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&m->lock, NULL) != 0) {
		pthread_condattr_destroy(&ca);
		goto nomem;
	}
	if (pthread_cond_init(&m->wake, &ca) != 0) {
		pthread_mutex_destroy(&m->lock);
		pthread_condattr_destroy(&ca);
		goto nomem;
	}
	pthread_condattr_destroy(&ca);
	m->sync_ok = true;
	m->curl = curl_easy_init();
	if (m->curl == NULL) {
		SP_ERROR(COMP, "not started: curl_easy_init failed");
		goto fail;
	}
	m->sender = store_sender_open(p->store, STORE_OUTBOX_MAIL);
	if (m->sender == NULL)
		goto fail; /* logged by the store */
	if (pthread_create(&m->thread, NULL, run, m) != 0) {
		SP_ERROR(COMP, "not started: cannot create its thread");
		goto fail;
	}
	m->started = true;
	(void)pthread_setname_np(m->thread, "sp-mailer"); /* for top -H, perf, gdb */
	SP_INFO(COMP, "started: alert mail via %s, from %s%s, %lld ms per attempt", m->url_shown,
		p->from, m->username ? ", with login (TLS required)" : "",
		(long long)m->timeout_ms);
	return m;
nomem:
	SP_ERROR(COMP, "not started: out of memory");
fail:
	destroy(m);
	return NULL;
}

void mailer_stop(struct mailer *m)
{
	if (m == NULL)
		return;
	if (m->started) {
		pthread_mutex_lock(&m->lock);
		atomic_store(&m->stopping, true);
		pthread_cond_broadcast(&m->wake);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
	}
	destroy(m);
}
