/* collector_conf.c - the collector's configuration table (see collector_conf.h). */
#include "collector_conf.h"

#include "mailfmt.h"
#include "reask.h"
#include "store.h"

#include "sitepulse/error.h"
#include "sitepulse/ids.h"
#include "sitepulse/mqtt_conf.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
/* SQLite's page sizes in KB: choice i is 2^i KB */
static const char *const page_kb_choices[] = {"1", "2", "4", "8", "16", "32", "64", NULL};


static int check_http_url(const char *value, char *err, size_t errlen)
{
	if (strncmp(value, "http://", 7) == 0 || strncmp(value, "https://", 8) == 0)
		return 0;
	snprintf(err, errlen, "an http:// or https:// URL");
	return -1;
}

static int check_smtp_url(const char *value, char *err, size_t errlen)
{
	if (strncmp(value, "smtp://", 7) == 0 || strncmp(value, "smtps://", 8) == 0)
		return 0;
	snprintf(err, errlen, "an smtp:// or smtps:// URL");
	return -1;
}

/* The composition's own rule (mailfmt.h): an address accepted here is one every mail can carry. */
static int check_mail(const char *value, char *err, size_t errlen)
{
	if (mailfmt_address_ok(value, strlen(value)))
		return 0;
	snprintf(err, errlen,
		 "mail addresses like ops@example.org: printable ASCII, at most %d bytes, without "
		 "blanks, angle brackets, quotes, parentheses, backslashes, commas or semicolons",
		 MAILFMT_ADDR_MAX);
	return -1;
}

static int check_token(const char *value, char *err, size_t errlen)
{
	/* short tokens are accepted (the contract's examples are short) but warned about at start */
	size_t n = strlen(value);
	bool ok = n >= 1 && n <= 256;
	for (size_t i = 0; ok && i < n; i++)
		ok = value[i] > 0x20 && value[i] < 0x7f;
	if (ok && strncmp(value, "sha256:", 7) == 0) {
		/* a digest from --hash-token: exactly 64 hex digits */
		ok = n == 7 + 64;
		for (size_t i = 7; ok && i < n; i++)
			ok = strchr("0123456789abcdefABCDEF", value[i]) != NULL;
	}
	if (ok)
		return 0;
	snprintf(err, errlen, "tokens of 1..256 printable characters without blanks, or sha256:HEX");
	return -1;
}

#define M(m) offsetof(struct collector_conf, mqtt.m) - offsetof(struct collector_conf, mqtt)
static const struct sp_conf_key mqtt_keys[] = {
	{"uri", SP_CONF_STRING, M(uri), "tcp://127.0.0.1:1883", 1, 1024, NULL, 0,
	 sp_conf_check_mqtt_uri, "broker address; ssl://HOST:PORT for TLS (--broker overrides)"},
	{"client_id", SP_CONF_STRING, M(client_id), "sitepulse-collector", 1, 128, NULL, 0, NULL,
	 "fixed MQTT client id: the broker keeps this persistent session while we are away"},
	SP_CONF_MQTT_LOGIN_KEYS(M),
	{"keepalive_s", SP_CONF_INT, M(keepalive_s), "30", 5, 3600, NULL, 0, NULL,
	 "MQTT keepalive"},
	{"max_inflight", SP_CONF_INT, M(max_inflight), "1000", 1, 65535, NULL, 0, NULL,
	 "ack publishes awaiting the broker's PUBACK"},
};

#define ST(m) offsetof(struct collector_conf, store.m) - offsetof(struct collector_conf, store)
static const struct sp_conf_key store_keys[] = {
	{"path", SP_CONF_STRING, ST(path), "sitepulse.db", 1, 4096, NULL, 0, NULL,
	 "SQLite database file (--db overrides)"},
	{"sync_full", SP_CONF_BOOL, ST(sync_full), "true", 0, 0, NULL, 0, NULL,
	 "fsync every commit: what is acked survives power loss (false: survives a crash only)"},
	{"batch_max", SP_CONF_INT, ST(batch_max), "2000", 1, 100000, NULL, 0, NULL,
	 "messages per transaction at most"},
	{"commit_interval_ms", SP_CONF_INT, ST(commit_interval_ms), "40", 0, 1000, NULL, 0, NULL,
	 "group commit: a batch smaller than batch_max waits this long after the previous commit"},
	{"queue_mb", SP_CONF_INT, ST(queue_mb), "16", 1, 4096, NULL, 0, NULL,
	 "decoded messages waiting for the writer, but at least the ~4.9 MB that two of the largest "
	 "valid messages take decoded (a quarter more, at least 1 MB, for raw messages before the "
	 "parser); when full the broker is held back"},
	{"cache_mb", SP_CONF_INT, ST(cache_mb), SP_CONF_DEFAULT(STORE_CACHE_MB_DEFAULT), 1, 4096,
	 NULL, 0, NULL, "SQLite page cache of the writer"},
	{"page_kb", SP_CONF_ENUM, ST(page_kb_log2), SP_CONF_DEFAULT(STORE_PAGE_KB_DEFAULT), 0, 0,
	 page_kb_choices, 0, NULL,
	 "SQLite page size of a new database file (an existing file keeps its own); 16 stores big "
	 "messages and answers the API faster, but costs more per message with a very large fleet; "
	 "2 writes 24-40 % fewer bytes to the disk with small messages, but cold API reads are "
	 "slower"},
	{"wal_buffer_kb", SP_CONF_INT, ST(wal_buffer_kb), SP_CONF_DEFAULT(STORE_WAL_BUFFER_KB_DEFAULT),
	 0, 64, NULL, 0, NULL,
	 "with sync_full, the writer gathers a commit's WAL writes into writes of up to this size "
	 "(SQLite writes each page with two system calls); 0 = as SQLite does"},
	{"checkpoint_mb", SP_CONF_INT, ST(checkpoint_mb), "32", 1, 1024, NULL, 0, NULL,
	 "the WAL is copied into the database when it reaches this size: larger writes hot index "
	 "pages back less often (faster ingest) but uses more disk and pauses longer per checkpoint"},
	{"compact_after_s", SP_CONF_INT, ST(compact_after_s), "3900", 1, 604800, NULL, 0, NULL,
	 "stored readings are merged into fewer, bigger chunks this long after they were written "
	 "(65 minutes: their hour is over); shorter is for tests, it merges the current hour "
	 "again and again"},
	{"readers", SP_CONF_INT, ST(readers), "2", 1, 64, NULL, 0, NULL,
	 "read connections for the API; a read that finds all busy for 5 s answers 503 "
	 "store busy"},
	{"gap_window_s", SP_CONF_INT, ST(gap_window_s), "600", 1, 604800, NULL, 0, NULL,
	 "a missing seq still open after this long is declared missing (CONTRACT §3.4); keep it "
	 "above the agents' longest resend interval (32 x their resend_s), or a message an agent "
	 "still holds and will resend is given up"},
	{"max_devices", SP_CONF_INT, ST(max_devices), "1000000", 1, 100000000, NULL, 0, NULL,
	 "devices the collector accepts; records of further new devices are rejected"},
	/*
	 * Bounded by default so that memory does not grow with the fleet (the
	 * 32 MB target holds at any size); a fleet above it pays a store
	 * look-up per record of an evicted device (docs/performance.md item 42).
	 */
	{"device_cache", SP_CONF_INT, ST(device_cache), "16384", 1024, 16777216, NULL, 0, NULL,
	 "devices the writer keeps in memory (~83 bytes each, allocated as the fleet grows); "
	 "beyond this, devices not heard from lately make room for new ones and are read from "
	 "the database again when they report (docs/performance.md items 40, 42)"},
	{"progress_fold_commits", SP_CONF_INT, ST(progress_fold_commits), "256", 1, 65536, NULL, 0,
	 NULL,
	 "the agents' sequence state is logged as one row per commit and folded into their rows "
	 "after this many such commits (docs/internals/exactly-once.md): more means fewer folds, a longer "
	 "log to read at start"},
	{"device_offline_s", SP_CONF_INT, ST(device_offline_s), "180", 10, 86400, NULL, 0, NULL,
	 "a device is offline when its agent is, or when no reading of it has arrived for this "
	 "long"},
	{"clock_step_s", SP_CONF_INT, ST(clock_step_s), SP_CONF_DEFAULT(RULES_CLOCK_STEP_S_DEFAULT), 1,
	 86400, NULL, 0, NULL,
	 "a device whose records keep arriving more than this far behind its newest, for this "
	 "long, has had its clock set back: its alert conditions move to the new time "
	 "(docs/alerts.md); a gateway whose state message, or a reading stamped after it arrived, "
	 "is this far off the collector's clock is logged (docs/operations.md)"},
	{"reask_interval_s", SP_CONF_INT, ST(reask_interval_s), SP_CONF_DEFAULT(REASK_INTERVAL_S_DEFAULT),
	 1, 3600, NULL, 0, NULL,
	 "after a failed write that dropped retained births or states, the broker is asked to resend "
	 "the whole fleet's: at most once per this long, a later request waiting for its end "
	 "(a flapping disk would otherwise have them resent at every recovery)"},
};

#define API(m) offsetof(struct collector_conf, api.m) - offsetof(struct collector_conf, api)
static const struct sp_conf_key api_keys[] = {
	{"listen", SP_CONF_STRING, API(listen), "127.0.0.1:8080", 1, 300, NULL, 0,
	 sp_conf_check_hostport, "HTTP address (--http overrides)"},
	{"viewer_tokens", SP_CONF_LIST, API(viewer_tokens), "", 0, 64, NULL, SP_CONF_SECRET,
	 check_token, "bearer tokens with the viewer role (read the API); a token or its sha256:HEX"},
	{"operator_tokens", SP_CONF_LIST, API(operator_tokens), "", 0, 64, NULL, SP_CONF_SECRET,
	 check_token,
	 "bearer tokens with the operator role (read and acknowledge); a token or its sha256:HEX; "
	 "an acknowledgement without a name is recorded as operator-N, N the token's place here"},
	{"threads", SP_CONF_INT, API(threads), "4", 1, 64, NULL, 0, NULL,
	 "HTTP worker threads; keep it above [store] readers: a thread waiting for a reader is "
	 "free again within 5 s, so the ones beyond the readers come free for /healthz"},
	{"max_connections", SP_CONF_INT, API(max_connections), "512", 1, 100000, NULL, 0, NULL,
	 "open HTTP connections at most (beyond: refused)"},
	{"max_connections_per_ip", SP_CONF_INT, API(max_connections_per_ip), "64", 0, 100000, NULL,
	 0, NULL, "open HTTP connections from one address at most (0: no per-address limit)"},
	{"response_mb", SP_CONF_INT, API(response_mb), "128", 1, 65536, NULL, 0, NULL,
	 "answers queued for their readers at most, all together (a slow reader holds its "
	 "answer until it has read it); one that would go past is refused with 503; answers "
	 "under 64 KiB, and one alone, always go out"},
	{"timeout_s", SP_CONF_INT, API(timeout_s), "10", 1, 3600, NULL, 0, NULL,
	 "an HTTP connection that sends or receives nothing for this long is closed (a "
	 "bound on each silence, not on a whole request: docs/security.md)"},
	{"tls_cert_file", SP_CONF_STRING, API(tls_cert_file), "", 0, 4096, NULL, 0, NULL,
	 "serve HTTPS with this certificate chain (PEM); empty: plain HTTP (e.g. behind a reverse proxy)"},
	{"tls_key_file", SP_CONF_STRING, API(tls_key_file), "", 0, 4096, NULL, 0, NULL,
	 "private key (PEM) of tls_cert_file"},
};

#define SM(m) offsetof(struct collector_conf, smtp.m) - offsetof(struct collector_conf, smtp)
static const struct sp_conf_key smtp_keys[] = {
	{"url", SP_CONF_STRING, SM(url), "", 0, 1024, NULL, 0, check_smtp_url,
	 "mail server for alert mails; empty: no mails (alerts still open, in the API)"},
	{"from", SP_CONF_STRING, SM(from), "sitepulse@localhost", 0, MAILFMT_ADDR_MAX, NULL, 0, check_mail,
	 "sender address"},
	{"to", SP_CONF_LIST, SM(to), "", 0, COLLECTOR_MAIL_TO_MAX, NULL, 0, check_mail,
	 "recipients of every site that has no mail_to of its own"},
	{"username", SP_CONF_STRING, SM(username), "", 0, 256, NULL, 0, NULL,
	 "SMTP user; empty: no login"},
	{"password", SP_CONF_STRING, SM(password), "", 0, 256, NULL, SP_CONF_SECRET, NULL,
	 "SMTP password"},
	{"min_severity", SP_CONF_ENUM, SM(min_severity), "minor", 0, 0, alert_severity_names, 0, NULL,
	 "alerts of this severity or worse are mailed (opened, and cleared)"},
	{"max_per_hour", SP_CONF_INT, SM(max_per_hour), "4", 1, 1000, NULL, 0, NULL,
	 "alerts of one condition (rule, device, port) mailed in an hour; the mails of more are "
	 "counted, not sent (critical alerts: max_per_hour_critical)"},
	{"max_per_hour_critical", SP_CONF_INT, SM(max_per_hour_critical), "20", 0, 1000, NULL, 0,
	 NULL,
	 "the same for critical alerts: high enough that every real entrapment is mailed, a "
	 "detector flapping every few seconds is not (0: never paced; docs/alerts.md)"},
	{"repeat_s", SP_CONF_INT, SM(repeat_s), "600", 0, 86400, NULL, 0, NULL,
	 "a critical alert still active and not acknowledged is mailed again this often (0: once)"},
	{"timeout_s", SP_CONF_INT, SM(timeout_s), "30", 1, 600, NULL, 0, NULL,
	 "one delivery attempt, all of it (a server that never answers)"},
	{"retry_min_s", SP_CONF_INT, SM(retry_min_s), "10", 1, 3600, NULL, 0, NULL,
	 "wait after a failed delivery, doubled per failure"},
	{"retry_max_s", SP_CONF_INT, SM(retry_max_s), "600", 1, 86400, NULL, 0, NULL,
	 "longest wait between attempts; not below retry_min_s"},
};

#define CI(m) offsetof(struct collector_conf, city.m) - offsetof(struct collector_conf, city)
static const struct sp_conf_key city_keys[] = {
	{"url", SP_CONF_STRING, CI(url), "", 0, 1024, NULL, 0, check_http_url,
	 "city endpoint for summaries; empty: summaries are built (API) but not sent"},
	{"token", SP_CONF_STRING, CI(token), "", 0, 1024, NULL, SP_CONF_SECRET, NULL,
	 "bearer token for the city endpoint"},
	{"period_s", SP_CONF_INT, CI(period_s), "3600", 60, 86400, NULL, 0, NULL,
	 "summary period, aligned to the clock in UTC (after a change, one shorter "
	 "bridging summary leads up to the new grid: docs/protocol.md)"},
	{"grace_s", SP_CONF_INT, CI(grace_s), "600", 0, 86400, NULL, 0, NULL,
	 "wait after a period ends before summarising it (late data)"},
	{"ca_file", SP_CONF_STRING, CI(ca_file), "", 0, 4096, NULL, 0, NULL,
	 "CA certificates (PEM) for an https:// url; empty: the system's"},
	{"timeout_s", SP_CONF_INT, CI(timeout_s), "30", 1, 600, NULL, 0, NULL,
	 "one delivery attempt, all of it (an endpoint that never answers)"},
	{"retry_min_s", SP_CONF_INT, CI(retry_min_s), "10", 1, 3600, NULL, 0, NULL,
	 "wait after a failed delivery, doubled per failure"},
	{"retry_max_s", SP_CONF_INT, CI(retry_max_s), "600", 1, 86400, NULL, 0, NULL,
	 "longest wait between attempts; not below retry_min_s"},
	{"device_records_max", SP_CONF_INT, CI(device_records_max), "250000", 10, 10000000, NULL, 0,
	 NULL, "readings of one device in one period a summary reads (all held at once, ~220 bytes "
	       "each); a device with more is left out of that period's summary"},
};

static const struct sp_conf_key log_keys[] = {
	{"level", SP_CONF_ENUM, 0, "info", 0, 0, log_levels, 0, NULL,
	 "log threshold: error, warn, info or debug"},
};

#define SI(m) offsetof(struct collector_site_conf, m)
static const struct sp_conf_key site_keys[] = {
	{"timezone", SP_CONF_STRING, SI(timezone), COLLECTOR_TIMEZONE_DEFAULT, 1, 64, NULL, 0,
	 sp_conf_check_timezone, "the site's time zone, for people: local times in alert mails and "
	 "on the dashboard "
	 "(summary periods stay aligned to UTC, CONTRACT §6)"},
	{"mail_to", SP_CONF_LIST, SI(mail_to), "", 0, COLLECTOR_MAIL_TO_MAX, NULL, 0, check_mail,
	 "the site's crew: alert mail recipients (instead of [smtp] to)"},
};

#define RU(m) offsetof(struct collector_rule_conf, m)
static const struct sp_conf_key rule_keys[] = {
	{"hold_s", SP_CONF_INT, RU(hold_s), NULL, 0, 86400, NULL, 0, NULL,
	 "how long the condition must hold before the alert opens (default: the rule's own, "
	 "docs/alerts.md)"},
	{"enabled", SP_CONF_SWITCH, RU(enabled), NULL, 0, 0, NULL, 0, NULL,
	 "rule on or off (default: on; for one site, what [rule.NAME] says)"},
	{"severity", SP_CONF_ENUM, RU(severity), NULL, 0, 0, alert_severity_names, 0, NULL,
	 "the alert's severity (default: the rule's own)"},
	{"threshold", SP_CONF_DOUBLE, RU(threshold), NULL, -1e9, 1e9, NULL, 0, NULL,
	 "the rule's limit, in the unit docs/alerts.md gives for it (default: the rule's own)"},
	{"hysteresis", SP_CONF_DOUBLE, RU(hysteresis), NULL, 0, 1e9, NULL, 0, NULL,
	 "a threshold rule clears only below threshold - hysteresis (default: the rule's own)"},
};

static void *site_instance(void *root, const char *const *parts, size_t nparts, bool *created,
			   char *err, size_t errlen)
{
	struct collector_conf *c = root;
	(void)nparts;
	if (!sp_id_valid_str(parts[0])) {
		snprintf(err, errlen, "site name must be an identifier [a-z0-9_-]");
		return NULL;
	}
	for (size_t i = 0; i < c->nsites; i++)
		if (strcmp(c->sites[i].site, parts[0]) == 0) {
			*created = false;
			return &c->sites[i];
		}
	if (c->nsites >= COLLECTOR_SITES_MAX) {
		snprintf(err, errlen, "too many [site.*] sections (at most %d)", COLLECTOR_SITES_MAX);
		return NULL;
	}
	struct collector_site_conf *s = realloc(c->sites, (c->nsites + 1) * sizeof(*s));
	if (s == NULL)
		return NULL;
	c->sites = s;
	s = &c->sites[c->nsites];
	memset(s, 0, sizeof(*s));
	s->site = strdup(parts[0]);
	if (s->site == NULL)
		return NULL;
	c->nsites++;
	*created = true;
	return s;
}

static bool rule_name_ok(const char *r)
{
	/* rule names like lift.trapped: identifiers joined by dots */
	size_t n = strlen(r);
	if (n == 0 || n > 64 || r[0] == '.' || r[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '_' ||
		      r[i] == '.'))
			return false;
	return true;
}

static void *rule_instance(void *root, const char *const *parts, size_t nparts, bool *created,
			   char *err, size_t errlen)
{
	struct collector_conf *c = root;
	const char *site = nparts == 2 ? parts[0] : NULL;
	const char *rule = parts[nparts - 1];
	if ((site && !sp_id_valid_str(site)) || !rule_name_ok(rule)) {
		snprintf(err, errlen, "expected [rule.NAME] or [site.SITE.rule.NAME], NAME like lift.trapped");
		return NULL;
	}
	if (rule_parse(rule) < 0) {
		snprintf(err, errlen, "no such rule: %s (docs/alerts.md lists them)", rule);
		return NULL;
	}
	for (size_t i = 0; i < c->nrules; i++) {
		struct collector_rule_conf *r = &c->rules[i];
		if (strcmp(r->rule, rule) == 0 &&
		    ((site == NULL && r->site == NULL) || (site && r->site && !strcmp(site, r->site)))) {
			*created = false;
			return r;
		}
	}
	if (c->nrules >= COLLECTOR_RULES_MAX) {
		snprintf(err, errlen, "too many rule sections (at most %d)", COLLECTOR_RULES_MAX);
		return NULL;
	}
	struct collector_rule_conf *r = realloc(c->rules, (c->nrules + 1) * sizeof(*r));
	if (r == NULL)
		return NULL;
	c->rules = r;
	r = &c->rules[c->nrules];
	memset(r, 0, sizeof(*r));
	r->severity = -1;
	r->hold_s = -1;
	r->enabled = -1;
	r->threshold = NAN;
	r->hysteresis = NAN;
	r->rule = strdup(rule);
	r->site = site ? strdup(site) : NULL;
	if (r->rule == NULL || (site && r->site == NULL)) {
		free(r->rule);
		free(r->site);
		return NULL;
	}
	c->nrules++;
	*created = true;
	return r;
}

#define N(a) (sizeof(a) / sizeof(a[0]))
static const struct sp_conf_section sections[] = {
	{"mqtt", mqtt_keys, N(mqtt_keys), offsetof(struct collector_conf, mqtt), NULL,
	 "broker connection (persistent session, QoS 1)"},
	{"store", store_keys, N(store_keys), offsetof(struct collector_conf, store), NULL,
	 "the SQLite store and the writer"},
	{"api", api_keys, N(api_keys), offsetof(struct collector_conf, api), NULL,
	 "HTTP API and metrics"},
	{"smtp", smtp_keys, N(smtp_keys), offsetof(struct collector_conf, smtp), NULL,
	 "alert mail (libcurl SMTP, from a durable outbox)"},
	{"city", city_keys, N(city_keys), offsetof(struct collector_conf, city), NULL,
	 "city summaries (libcurl HTTP(S) POST, from a durable outbox)"},
	{"log", log_keys, N(log_keys), offsetof(struct collector_conf, log), NULL, "logging"},
	/* most specific first: site names cannot hold dots, rule names can */
	{"site.*.rule.*", rule_keys, N(rule_keys), 0, rule_instance,
	 "a rule's settings for one site, e.g. [site.hp-ruijin-07.rule.lift.trapped]"},
	{"site.*", site_keys, N(site_keys), 0, site_instance,
	 "per-site settings, e.g. [site.hp-ruijin-07]"},
	{"rule.*", rule_keys, N(rule_keys), 0, rule_instance,
	 "a rule's settings for every site, e.g. [rule.lift.trapped]"},
};

const struct sp_conf_schema collector_conf_schema = {"sitepulse-collector", sections,
						     N(sections)};

int collector_conf_init(struct collector_conf *c)
{
	memset(c, 0, sizeof(*c));
	return sp_conf_defaults(&collector_conf_schema, c);
}

/*
 * A sender's backoff doubles from retry_min_s up to retry_max_s; a maximum
 * below the minimum would make every wait shorter than the first, and the
 * outbox's test for a clock set back (a wait longer than the longest)
 * would take each failed item as due again at once.
 */
static void check_retry(const char *path, const char *section, int64_t min_s, int64_t max_s,
			struct sp_conf_errors *errs)
{
	if (max_s < min_s)
		sp_conf_errors_add(errs, "%s: [%s] retry_max_s: %lld is below retry_min_s (%lld)",
				   path, section, (long long)max_s, (long long)min_s);
}

int collector_conf_load(struct collector_conf *c, const char *path, struct sp_conf_errors *errs)
{
	size_t before = errs->count;
	int rc = sp_conf_load(&collector_conf_schema, path, c, errs);
	/* relations between keys, each checked alone by the schema */
	check_retry(path, "smtp", c->smtp.retry_min_s, c->smtp.retry_max_s, errs);
	check_retry(path, "city", c->city.retry_min_s, c->city.retry_max_s, errs);
	return rc ? rc : errs->count > before ? SP_ECONFIG : 0;
}

int collector_conf_override(struct collector_conf *c, const char *broker, const char *db,
			    const char *http, struct sp_conf_errors *errs)
{
	int rc = 0;
	if (broker)
		rc |= sp_conf_set(&collector_conf_schema, c, "mqtt", "uri", broker, "--broker", errs);
	if (db)
		rc |= sp_conf_set(&collector_conf_schema, c, "store", "path", db, "--db", errs);
	if (http)
		rc |= sp_conf_set(&collector_conf_schema, c, "api", "listen", http, "--http", errs);
	return rc ? SP_ECONFIG : 0;
}

void collector_conf_free(struct collector_conf *c)
{
	sp_conf_free(&collector_conf_schema, c);
	for (size_t i = 0; i < c->nsites; i++) {
		sp_conf_free_keys(site_keys, N(site_keys), &c->sites[i]);
		free(c->sites[i].site);
	}
	free(c->sites);
	for (size_t i = 0; i < c->nrules; i++) {
		sp_conf_free_keys(rule_keys, N(rule_keys), &c->rules[i]);
		free(c->rules[i].rule);
		free(c->rules[i].site);
	}
	free(c->rules);
	c->sites = NULL;
	c->rules = NULL;
	c->nsites = c->nrules = 0;
}

/* Lays one rule section over a setting: what it says, the rest as it was. */
static void apply_rule(const struct collector_rule_conf *r, struct rule_setting *out)
{
	if (r->enabled >= 0)
		out->enabled = r->enabled == 1;
	if (r->hold_s >= 0)
		out->hold_ms = r->hold_s * 1000;
	if (r->severity >= 0)
		out->severity = (enum alert_severity)r->severity;
	if (!isnan(r->threshold))
		out->threshold = r->threshold;
	if (!isnan(r->hysteresis))
		out->hysteresis = r->hysteresis;
}

int collector_conf_rules(const struct collector_conf *c, struct rules_config *rc,
			 struct sp_conf_errors *errs)
{
	int status = 0;
	rules_config_set_clock_step(rc, c->store.clock_step_s * 1000);
	/* [rule.R] first, so that [site.S.rule.R] starts from it */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < c->nrules; i++) {
			const struct collector_rule_conf *r = &c->rules[i];
			if ((r->site != NULL) != (pass == 1))
				continue;
			int id = rule_parse(r->rule);
			if (id < 0) {
				sp_conf_errors_add(errs, "[%s%s%srule.%s]: no such rule (docs/alerts.md "
							 "lists them)",
						   r->site ? "site." : "", r->site ? r->site : "",
						   r->site ? "." : "", r->rule);
				status = SP_ECONFIG;
				continue;
			}
			struct rule_setting *set =
				r->site ? rules_config_site(rc, r->site, (enum rule_id)id)
					: rules_config_global(rc, (enum rule_id)id);
			if (set == NULL)
				return SP_ENOMEM;
			apply_rule(r, set);
		}
	}
	return status;
}

const struct collector_site_conf *collector_site_find(const struct collector_site_conf *sites,
						      size_t n, const char *site)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(sites[i].site, site) == 0)
			return &sites[i];
	return NULL;
}

const char *collector_conf_timezone(const struct collector_conf *c, const char *site)
{
	const struct collector_site_conf *sc = collector_site_find(c->sites, c->nsites, site);
	return sc && sc->timezone ? sc->timezone : COLLECTOR_TIMEZONE_DEFAULT;
}
