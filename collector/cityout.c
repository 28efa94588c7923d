/*
 * cityout.c - the city thread (cityout.h): builds each site's summary of
 * each period from the store (citybuild.h) into the durable city outbox, and
 * POSTs the outbox's items to the city with libcurl.
 *
 * Threads: cityout_start and cityout_stop run on the caller's thread (main).
 * Everything between runs on the city thread, which alone uses the
 * outbox handle (a SQLite connection of its own, store.h), the decoder, the
 * curl handle, the site table and the buffers; they are created before the
 * thread starts and freed after it is joined. The two meet only in the
 * atomic `stopping`, set under `lock` and signalled on `wake` so the wait
 * ends at once; curl's progress callback (on the city thread, inside
 * curl_easy_perform) reads it to cut an attempt short. Metrics are atomics.
 *
 * Each loop (about once a second; cityout_stop wakes it at once):
 *  1. schedule: the sites (store_r_site_names, listed again every 10 s so new
 *     sites are found) each have a next period to summarize, due at its
 *     end + grace_ms. The next period of a site already summarized follows
 *     the stored progress (store_sender_summarized); a site never
 *     summarized starts at the most recent period that had ended when this
 *     thread first saw it - no backfill of history - or, if the site sent
 *     nothing in that period (it has just appeared), the first later one in
 *     which it did: a summary of a site before it existed would report a
 *     total outage. Whether it sent anything is first asked of the store
 *     cheaply (store_r_site_has_records): reading a whole empty period of
 *     a new site of 500 devices cost as much as summarizing it. Periods
 *     are caught up one at a time, in order, at most BUILD_BUDGET
 *     summaries a loop; none while the collector has been receiving for
 *     less than grace_ms (receiving_for_grace: after a restart, a
 *     reconnect or a store outage the data of a due period comes only now).
 *  2. deliver: the outbox's due items, oldest first, each site's periods in
 *     order (store_sender_next), at most SEND_BUDGET a loop; a 2xx answer
 *     is done, anything else (or no answer) is retried after a capped
 *     exponential backoff with jitter (CONTRACT §6: 4xx too - the city may
 *     be fixing its side). No answer at all (no connection, a timeout) is
 *     the city's outage, not the summary's: the whole outbox waits one
 *     backoff of the endpoint's (store_sender_hold; hold_until_ms here,
 *     for summaries built meanwhile too), one attempt per backoff instead
 *     of one per site, and the first summary delivered afterwards makes
 *     all of them due again (store_sender_release), so they go out at
 *     once, oldest first. After a restart the first summary due is tried
 *     at once. An attempt cut short by cityout_stop is not counted: the
 *     item is due again at the next start.
 *  3. the queued gauge: at once when this thread adds or delivers a
 *     summary, and about once a second besides.
 * Without a url, summaries are built and kept (the API shows them) and
 * nothing is sent: they stay undelivered in the outbox, counted by the
 * gauge, and a url configured later sends them, oldest first.
 *
 * What a summary is made of, and how it is read from the store:
 * citybuild.h.
 *
 * Bounds: BODY_MAX per summary (a site of ~100,000 devices; beyond, the
 * period is retried and logged, never half sent); the answer's body is
 * read up to RESPONSE_MAX and then dropped; every attempt has a connect
 * and a total timeout. The site table holds one entry per site the store
 * knows.
 */
#include "cityout.h"

#include "citybuild.h"
#include "retry.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/ids.h"
#include "sitepulse/log.h"

#include <assert.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_COMP         "city"
#define LOOP_MS          1000  /* the clock is looked at about this often */
#define SITES_REFRESH_MS 10000 /* new sites are found within this */
#define BUILD_RETRY_MS   30000 /* after a failed build, the site waits this long */
#define BUILD_BUDGET     8     /* summaries built per loop */
#define SEND_BUDGET      8     /* delivery attempts per loop */
#define BODY_MAX               (32u << 20) /* bytes of one summary */
#define RESPONSE_MAX           (64u << 10) /* bytes of an answer read before it is dropped */
#define CONNECT_TIMEOUT_MAX_MS 10000

/* A site and the next period to summarize. */
struct site_next {
	char site[SP_ID_MAX + 1];
	int64_t next;     /* period start; -1 = not known yet */
	int64_t bridge_end; /* > next: that period ends here, not at next + period_ms */
	bool first;       /* never summarized: an empty first period is skipped */
	int64_t retry_at; /* wall ms: no build before (after a failure) */
};

/* The item being delivered: a copy, so no store statement stays open during the POST. */
struct item {
	int64_t id;
	int64_t attempts;
	char key[2 * SP_ID_MAX + 24]; /* site:period_start */
	struct sp_buf body;
	bool ok; /* copied whole */
};

struct cityout {
	struct cityout_params p; /* strings point to the copies below */
	char *url, *token, *ca_file;
	char *auth; /* "Authorization: Bearer TOKEN", or NULL without a token */

	pthread_t thread;
	bool started, lock_ok, wake_ok;
	pthread_mutex_t lock;
	pthread_cond_t wake;  /* signalled by cityout_stop */
	atomic_bool stopping; /* set by cityout_stop, under lock */

	/* city thread only (created before it starts, freed after it is joined) */
	struct store_sender *out;
	struct citybuild *builder;
	CURL *curl;
	char errbuf[CURL_ERROR_SIZE];
	size_t answer_bytes;
	bool answer_cut; /* the answer outgrew RESPONSE_MAX: we stopped reading */
	struct item item;
	struct sp_buf body;      /* the summary being built */
	struct site_next *sites; /* sorted by site */
	size_t nsites, sites_cap;
	int64_t next_scan_ms, next_gauge_ms; /* sp_mono_ms */
	bool failing;  /* the last delivery failed (the recovery is logged once) */
	bool waiting_logged; /* due periods wait for receiving_for_grace (logged once) */
	int64_t unreachable_in_row; /* attempts in a row the city did not answer: its backoff */
	int64_t hold_until_ms; /* sp_mono_ms: no attempt before (the city did not answer) */
	uint64_t jitter; /* retry_delay_ms's random state */
	struct sp_ratelimit send_log, build_log;
};

/* ------------------------------------------------------------ helpers */

/*
 * libcurl's global set-up is process-wide by libcurl's design, hence these
 * two statics: written once under pthread_once, read-only afterwards. The
 * mailer does the same with its own once; libcurl counts the calls.
 */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

/* libcurl's global set-up: once per process, before the first handle (it is refcounted). */
static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Logs a line of a repeated kind at most 5 times a minute, saying how many were dropped. */
static bool log_allowed(struct sp_ratelimit *rl)
{
	uint64_t suppressed = 0;
	if (!sp_ratelimit_allow(rl, sp_mono_ms(), 5, 60000, &suppressed))
		return false;
	if (suppressed)
		SP_WARN(LOG_COMP, "(%llu similar lines suppressed)",
			(unsigned long long)suppressed);
	return true;
}

/*
 * Sets the summaries_queued gauge from the outbox. Called whenever this
 * thread changes what is pending (a summary added, one delivered), so the
 * gauge is right even while deliveries block for their timeouts, and once
 * a second besides (the count is one indexed query).
 */
static void update_queued(struct cityout *c)
{
	int64_t n = store_sender_pending(c->out);
	if (n >= 0)
		atomic_store(&c->p.metrics->summaries_queued, n);
	c->next_gauge_ms = sp_mono_ms() + LOOP_MS;
}

/* ------------------------------------------------------------ sites */

static int site_row(void *ctx, const char *site)
{
	struct cityout *c = ctx;
	size_t len = site ? strlen(site) : 0;
	if (len == 0 || len > SP_ID_MAX)
		return 0; /* the store only holds valid ids */
	size_t lo = 0, hi = c->nsites;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->sites[mid].site, site);
		if (cmp == 0)
			return 0;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct site_next *v = sp_grow(c->sites, &c->sites_cap, c->nsites + 1, sizeof(*v), 16);
	if (v == NULL)
		return SP_ENOMEM; /* stops the listing; the rest is found at the next one */
	c->sites = v;
	memmove(&v[lo + 1], &v[lo], (c->nsites - lo) * sizeof(*v));
	memset(&v[lo], 0, sizeof(v[lo]));
	memcpy(v[lo].site, site, len + 1);
	v[lo].next = -1;
	c->nsites++;
	return 0;
}

/* Adds the sites the store knows and this table does not yet. */
static void refresh_sites(struct cityout *c)
{
	int rc = store_r_site_names(c->p.store, site_row, c);
	if (rc < 0 && log_allowed(&c->build_log))
		SP_WARN(LOG_COMP, "listing the sites failed: %s; tried again in %d s",
			sp_strerror(rc), SITES_REFRESH_MS / 1000);
}

/* The end of the site's next period: a bridge's, or one period_ms on. */
static int64_t period_end(const struct cityout *c, const struct site_next *sn)
{
	return sn->bridge_end > sn->next ? sn->bridge_end : sn->next + c->p.period_ms;
}

/*
 * The site's next period, from the stored progress or (never summarized) the
 * clock. After the last summarized period comes the next one of the current
 * length, aligned to the clock: with [city] period_s changed in between,
 * last + period_ms would summarize time twice (a shorter period) or leave
 * every later period off the clock's (a longer one). Where the last end is
 * not on the new length's grid, one bridging period runs from it to the
 * next aligned start, so the city gets every stretch of time exactly once
 * (before, that stretch was in no summary).
 */
static int site_resolve(struct cityout *c, struct site_next *sn, int64_t now)
{
	int64_t last, last_end;
	int rc = store_sender_summarized(c->out, sn->site, &last, &last_end);
	if (rc == 0) {
		bool known = last_end > last;
		int64_t end = known ? last_end : last + c->p.period_ms;
		int64_t aligned = -floor_div(-end, c->p.period_ms) * c->p.period_ms;
		/*
		 * Without the last period's end (its summary unreadable) a bridge
		 * could start inside it, or after a gap: whole periods only.
		 */
		sn->next = known ? end : aligned;
		sn->bridge_end = aligned;
		if (!known)
			SP_WARN(LOG_COMP, "%s: the end of the last summary (period %lld) cannot be "
					  "read: the next starts at %lld, assuming period_s did not change",
				sn->site, (long long)last, (long long)aligned);
		else if (aligned != end)
			SP_INFO(LOG_COMP, "%s: [city] period_s changed: one bridging summary covers "
					  "%lld to %lld (%lld s), then whole periods follow",
				sn->site, (long long)end, (long long)aligned,
				(long long)((aligned - end) / 1000));
		sn->first = false;
	} else if (rc == SP_ENOTFOUND) {
		sn->next = floor_div(now, c->p.period_ms) * c->p.period_ms - c->p.period_ms;
		sn->first = true;
	}
	return rc == SP_ENOTFOUND ? 0 : rc;
}

/* ------------------------------------------------------------ building */

/*
 * Builds the site's summary of the period at sn->next (citybuild.h) and
 * adds it to the outbox with the site's progress. 0, 1 when skipped (a
 * site's empty first period), or SP_E* (logged here).
 */
static int build(struct cityout *c, struct site_next *sn, int64_t now)
{
	int64_t start = sn->next, end = period_end(c, sn);
	struct citybuild_report rep;
	char key[sizeof(c->item.key)];
	int rc = citybuild_period(c->builder, sn->site, start, end, now, sn->first, &c->stopping,
				  &c->body, &rep);
	if (rc == 1) {
		SP_DEBUG(LOG_COMP, "%s: nothing in its first period %lld: not summarized", sn->site,
			 (long long)start);
		return 1;
	}
	if (rc == SP_ECLOSED)
		return rc; /* built again at the next start */
	if (rc)
		goto fail;
	snprintf(key, sizeof(key), "%s:%lld", sn->site, (long long)start);
	rep.failed_at = "storing the summary";
	if ((rc = store_sender_add_summary(c->out, sn->site, start, end, key, c->body.data,
					   c->body.len, now)))
		goto fail;
	atomic_fetch_add(&c->p.metrics->summaries_built, 1);
	update_queued(c);
	if (rep.refused)
		SP_WARN(LOG_COMP, "summary %s: %zu stored records could not be decoded, left out",
			key, rep.refused);
	SP_DEBUG(LOG_COMP, "summary %s built (%zu devices, %zu bytes)", key, rep.devices,
		 c->body.len);
	return 0;
fail:
	if (log_allowed(&c->build_log))
		SP_ERROR(LOG_COMP,
			 "summary of %s for period %lld not built (%s: %s); tried again in %d s",
			 sn->site, (long long)start, rep.failed_at, sp_strerror(rc),
			 BUILD_RETRY_MS / 1000);
	return rc;
}

/*
 * Whether the collector has been receiving for grace_ms: subscribed on its
 * connection and committing. After a restart, a reconnect or a store
 * outage, what the broker queued for our session and what the agents kept
 * in their spools comes only now; a period built before it has would show
 * its devices offline and miss what they did, and no period is built
 * twice. A period due by then has waited grace_ms of the collector's own
 * receiving, as one built on time has (monotonic: a clock step does not
 * shorten it).
 */
static bool receiving_for_grace(struct cityout *c, int64_t mono)
{
	int64_t sub = atomic_load(&c->p.metrics->subscribed_mono);
	int64_t ok = atomic_load(&c->p.metrics->store_ok_mono);
	if (sub <= 0 || !atomic_load(&c->p.metrics->store_ok))
		return false;
	return mono - (sub > ok ? sub : ok) >= c->p.grace_ms;
}

/* Builds what is due, at most BUILD_BUDGET summaries. True if more may be due. */
static bool schedule(struct cityout *c, int64_t now)
{
	int64_t mono = sp_mono_ms(); /* the scan's period: a wall clock set back must not stop it */
	if (mono >= c->next_scan_ms) {
		refresh_sites(c);
		c->next_scan_ms = mono + SITES_REFRESH_MS;
	}
	bool receiving = receiving_for_grace(c, mono);
	if (receiving && c->waiting_logged) {
		SP_INFO(LOG_COMP, "receiving again for grace_s (%lld s): the periods due are built now",
			(long long)(c->p.grace_ms / 1000));
		c->waiting_logged = false;
	}
	int budget = BUILD_BUDGET;
	bool progress = true;
	/* one period per site per round, so a site catching up does not starve the others */
	while (progress && budget > 0 && !atomic_load(&c->stopping)) {
		progress = false;
		for (size_t i = 0; i < c->nsites && budget > 0; i++) {
			struct site_next *sn = &c->sites[i];
			if (now < sn->retry_at)
				continue;
			if (sn->next < 0 && site_resolve(c, sn, now) != 0) {
				sn->retry_at = now + BUILD_RETRY_MS;
				continue;
			}
			int64_t end = period_end(c, sn);
			if (now < end + c->p.grace_ms)
				continue;
			if (!receiving) {
				if (!c->waiting_logged)
					SP_INFO(LOG_COMP,
						"periods due wait until the collector has been receiving "
						"for grace_s (%lld s) since it (re)connected or its "
						"store recovered (the agents' data comes only now)",
						(long long)(c->p.grace_ms / 1000));
				c->waiting_logged = true;
				break;
			}
			/* a new site's first periods: skipped at the cost of a probe when empty */
			int rc = sn->first ? store_r_site_has_records(c->p.store, sn->site, sn->next,
								       end)
					   : 1;
			if (rc == 0) {
				sn->next = end;
				progress = true;
				continue;
			}
			if (rc > 0)
				rc = build(c, sn, now);
			if (rc < 0) {
				sn->retry_at = now + BUILD_RETRY_MS;
				continue;
			}
			if (rc == 0)
				sn->first = false;
			budget--; /* a skipped period read as much as a built one */
			sn->next = end;
			progress = true;
		}
	}
	return budget == 0;
}

/* ------------------------------------------------------------ delivering */

static size_t on_answer(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct cityout *c = ctx;
	size_t n = size * nmemb;
	(void)data;
	if (c->answer_bytes + n > RESPONSE_MAX) {
		c->answer_cut = true;
		return 0; /* stops the transfer: the status line is what we need */
	}
	c->answer_bytes += n;
	return n;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct cityout *c = ctx;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&c->stopping) ? 1 : 0;
}

static int take_item(void *ctx, const struct store_outbox_item *it)
{
	struct item *item = ctx;
	item->id = it->id;
	item->attempts = it->attempts;
	item->ok = false;
	snprintf(item->key, sizeof(item->key), "%s", it->key ? it->key : "");
	sp_buf_reset(&item->body);
	if (it->body_len > 0 && sp_buf_append(&item->body, it->body, it->body_len) == 0)
		item->ok = true;
	return 0;
}

static int64_t backoff_ms(struct cityout *c, int64_t attempts)
{
	return retry_delay_ms(c->p.retry_min_ms, c->p.retry_max_ms, attempts, &c->jitter);
}

enum outcome { SENT, FAILED, CUT_SHORT };

/* POSTs the item; *status receives the HTTP status (0: none), error a text on failure. */
static enum outcome post(struct cityout *c, long *status, char *error, size_t errlen)
{
	struct curl_slist *h = NULL, *t;
	char idem[sizeof(c->item.key) + 32];
	CURLcode cc;

	*status = 0;
	snprintf(idem, sizeof(idem), "Idempotency-Key: %s", c->item.key);
	/* "Expect:" sends the body at once instead of waiting for 100-continue */
	const char *lines[] = {"Content-Type: application/json", idem, "Expect:", c->auth};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (lines[i] == NULL)
			continue;
		if ((t = curl_slist_append(h, lines[i])) == NULL) {
			snprintf(error, errlen, "out of memory");
			curl_slist_free_all(h);
			return FAILED;
		}
		h = t;
	}
	c->errbuf[0] = '\0';
	c->answer_bytes = 0;
	c->answer_cut = false;
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, c->item.body.data);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->item.body.len);
	cc = curl_easy_perform(c->curl);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);

	if (cc == CURLE_ABORTED_BY_CALLBACK && atomic_load(&c->stopping))
		return CUT_SHORT;
	bool answered = cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && c->answer_cut);
	if (answered && *status >= 200 && *status < 300)
		return SENT;
	if (answered)
		snprintf(error, errlen, "HTTP %ld", *status);
	else if (*status > 0)
		snprintf(error, errlen, "HTTP %ld, then %s", *status,
			 c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
	else
		snprintf(error, errlen, "%s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
	return FAILED;
}

/* Delivers what is due, at most SEND_BUDGET attempts. True if more may be due. */
static bool deliver(struct cityout *c)
{
	if (c->curl == NULL)
		return false; /* no url: summaries are built and kept, not sent */
	/*
	 * The city did not answer: nothing is tried until its backoff has
	 * passed, summaries built meanwhile included. Each attempt may take
	 * timeout_s, and building waits for delivery (one thread): trying each
	 * new summary at once cost a timeout per BUILD_BUDGET summaries built,
	 * an hour before a thousand sites' period was even in the outbox.
	 */
	if (sp_mono_ms() < c->hold_until_ms)
		return false;
	for (int n = 0; n < SEND_BUDGET; n++) {
		if (atomic_load(&c->stopping))
			return false;
		int rc = store_sender_next(c->out, sp_now_ms(), c->p.retry_max_ms, take_item,
					   &c->item);
		if (rc <= 0)
			return false; /* nothing due, or a store error (logged by the store) */
		char error[CURL_ERROR_SIZE + 64] = "";
		long status = 0;
		enum outcome o = FAILED;
		if (c->item.ok)
			o = post(c, &status, error, sizeof(error));
		else
			snprintf(error, sizeof(error), "empty or unreadable item in the outbox");
		if (o == CUT_SHORT)
			return false;
		int64_t now = sp_now_ms();
		if (o == SENT) {
			if (store_sender_done(c->out, c->item.id, now) != 0)
				return false;
			atomic_fetch_add(&c->p.metrics->summaries_sent, 1);
			update_queued(c);
			if (c->failing)
				SP_INFO(LOG_COMP, "summary %s delivered: the city answers again",
					c->item.key);
			c->failing = false;
			c->unreachable_in_row = 0;
			/* what waited for the city is due, oldest first (a release that fails
			 * is tried again after the next delivery) */
			(void)store_sender_release(c->out, now);
			continue;
		}
		int64_t wait = c->item.ok ? backoff_ms(c, c->item.attempts) : c->p.retry_max_ms;
		/* no answer: every summary waits for the city, this one the longer of the two */
		int64_t hold = c->item.ok && status == 0 ? backoff_ms(c, c->unreachable_in_row++) : 0;
		if (hold > wait)
			wait = hold;
		atomic_fetch_add(&c->p.metrics->summaries_failed, 1);
		c->failing = true;
		if (log_allowed(&c->send_log)) {
			/* 4xx but 408 and 429: our request or token is wrong, someone must act */
			bool ours = !c->item.ok || (status >= 400 && status < 500 &&
						    status != 408 && status != 429);
			char held[64] = "";
			if (hold > 0)
				snprintf(held, sizeof(held), ", all summaries wait %.1f s for the city",
					 (double)hold / 1000);
			sp_log(ours ? SP_LOG_ERROR : SP_LOG_WARN, LOG_COMP,
			       "summary %s not delivered (%s); attempt %lld, next in %.1f s%s",
			       c->item.key, error, (long long)c->item.attempts + 1,
			       (double)wait / 1000, held);
		}
		if (store_sender_retry(c->out, c->item.id, now + wait, error) != 0)
			return false;
		if (hold > 0) {
			c->hold_until_ms = sp_mono_ms() + hold;
			/* in the store too, so that a restart keeps the backlog waiting */
			(void)store_sender_hold(c->out, now + hold);
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------ the thread */

static void *city_main(void *arg)
{
	struct cityout *c = arg;
	/* the gauge tells the truth from the start, not only after a first (maybe hanging) delivery */
	update_queued(c);
	for (;;) {
		int64_t now = sp_now_ms();
		bool more = schedule(c, now);
		more |= deliver(c);
		if (sp_mono_ms() >= c->next_gauge_ms)
			update_queued(c);
		pthread_mutex_lock(&c->lock);
		if (!atomic_load(&c->stopping) && !more) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += LOOP_MS / 1000;
			pthread_cond_timedwait(&c->wake, &c->lock, &ts);
		}
		pthread_mutex_unlock(&c->lock);
		if (atomic_load(&c->stopping))
			break;
	}
	return NULL;
}

/* Sets up the curl handle: everything but the item's headers and body. 0 or SP_E*. */
static int curl_setup(struct cityout *c)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		SP_ERROR(LOG_COMP, "libcurl: %s", curl_easy_strerror(curl_init_rc));
		return SP_EIO;
	}
	if ((c->curl = curl_easy_init()) == NULL) {
		SP_ERROR(LOG_COMP, "libcurl: no handle");
		return SP_ENOMEM;
	}
	int64_t connect_ms =
	    c->p.timeout_ms < CONNECT_TIMEOUT_MAX_MS ? c->p.timeout_ms : CONNECT_TIMEOUT_MAX_MS;
	CURLcode cc = CURLE_OK;
	CURL *h = c->curl;
#define OPT(o, v)                                                                                  \
	do {                                                                                       \
		if (cc == CURLE_OK)                                                                \
			cc = curl_easy_setopt(h, o, v);                                            \
	} while (0)
	OPT(CURLOPT_URL, c->url);
	OPT(CURLOPT_POST, 1L);
	OPT(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
	OPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	OPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	OPT(CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
	OPT(CURLOPT_TIMEOUT_MS, (long)c->p.timeout_ms);
	OPT(CURLOPT_ERRORBUFFER, c->errbuf);
	OPT(CURLOPT_WRITEFUNCTION, on_answer);
	OPT(CURLOPT_WRITEDATA, c);
	OPT(CURLOPT_XFERINFOFUNCTION, on_progress);
	OPT(CURLOPT_XFERINFODATA, c);
	OPT(CURLOPT_NOPROGRESS, 0L);
	OPT(CURLOPT_USERAGENT, "sitepulse-collector/" SP_VERSION);
	if (c->ca_file[0])
		OPT(CURLOPT_CAINFO, c->ca_file);
#undef OPT
	if (cc != CURLE_OK) {
		SP_ERROR(LOG_COMP, "libcurl refuses an option: %s", curl_easy_strerror(cc));
		return SP_ECONFIG;
	}
	return 0;
}

static void destroy(struct cityout *c)
{
	if (c == NULL)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	store_sender_close(c->out);
	citybuild_destroy(c->builder);
	sp_buf_free(&c->item.body);
	sp_buf_free(&c->body);
	free(c->sites);
	free(c->url);
	free(c->token);
	free(c->ca_file);
	free(c->auth);
	if (c->wake_ok)
		pthread_cond_destroy(&c->wake);
	if (c->lock_ok)
		pthread_mutex_destroy(&c->lock);
	free(c);
}

struct cityout *cityout_start(const struct cityout_params *p)
{
	assert(p != NULL && p->store != NULL && p->metrics != NULL && p->period_ms > 0 &&
	       p->grace_ms >= 0 && p->offline_ms >= 0 && p->timeout_ms > 0 && p->retry_min_ms > 0 &&
	       p->retry_max_ms >= p->retry_min_ms);
	struct cityout *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;
	if (c == NULL)
		return NULL;
	c->p = *p;
	c->body = (struct sp_buf)SP_BUF_INIT(BODY_MAX);
	c->item.body = (struct sp_buf)SP_BUF_INIT(BODY_MAX);
	c->jitter = (uint64_t)sp_mono_ms() ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)c;
	atomic_init(&c->stopping, false);
	if (pthread_mutex_init(&c->lock, NULL) != 0)
		goto fail;
	c->lock_ok = true;
	/* the wait's deadline is on the monotonic clock: a wall clock step cannot stretch it */
	if (pthread_condattr_init(&ca) != 0)
		goto fail;
	c->wake_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
		     pthread_cond_init(&c->wake, &ca) == 0;
	pthread_condattr_destroy(&ca);
	if (!c->wake_ok)
		goto fail;

	c->url = strdup(p->url ? p->url : "");
	c->token = strdup(p->token ? p->token : "");
	c->ca_file = strdup(p->ca_file ? p->ca_file : "");
	if (c->url == NULL || c->token == NULL || c->ca_file == NULL)
		goto fail;
	c->p.url = c->url;
	c->p.token = c->token;
	c->p.ca_file = c->ca_file;
	if (strpbrk(c->token, "\r\n") != NULL) {
		SP_ERROR(LOG_COMP, "the city token holds a line break: refused");
		goto fail;
	}
	if (c->token[0]) {
		size_t n = strlen(c->token) + sizeof("Authorization: Bearer ");
		if ((c->auth = malloc(n)) == NULL)
			goto fail;
		snprintf(c->auth, n, "Authorization: Bearer %s", c->token);
	}
	struct citybuild_params bp = {p->store, p->metrics, p->offline_ms, p->device_records_max};
	if ((c->builder = citybuild_create(&bp)) == NULL)
		goto fail;
	if ((c->out = store_sender_open(p->store, STORE_OUTBOX_CITY)) == NULL)
		goto fail;
	if (c->url[0] && curl_setup(c) != 0)
		goto fail;
	if (pthread_create(&c->thread, NULL, city_main, c) != 0) {
		SP_ERROR(LOG_COMP, "cannot start the city thread");
		goto fail;
	}
	c->started = true;
	(void)pthread_setname_np(c->thread, "sp-city"); /* for top -H, perf, gdb */
	SP_INFO(LOG_COMP, "summaries every %lld s, %lld s after each period ends; %s",
		(long long)(p->period_ms / 1000), (long long)(p->grace_ms / 1000),
		c->url[0] ? "sent to the city" : "no url: kept, not sent");
	return c;
fail:
	destroy(c);
	return NULL;
}

void cityout_stop(struct cityout *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	atomic_store(&c->stopping, true);
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	if (c->started)
		pthread_join(c->thread, NULL);
	destroy(c);
}
