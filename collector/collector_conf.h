/*
 * collector_conf.h - the collector's configuration: struct, table, loading.
 * The keys of CONTRACT §7 plus the collector's own; every key is listed in
 * docs/configuration.md (generated from the table and checked by a test).
 */
#ifndef SP_COLLECTOR_CONF_H
#define SP_COLLECTOR_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "rules.h"

#include "sitepulse/conf.h"

#define COLLECTOR_SITES_MAX 4096
#define COLLECTOR_MAIL_TO_MAX 64 /* [smtp] to, [site.S] mail_to: addresses at most */
#define COLLECTOR_TIMEZONE_DEFAULT "Asia/Shanghai" /* CONTRACT §1: a site without [site.S] */
#define COLLECTOR_RULES_MAX 1024

struct collector_site_conf {
	char *site;            /* [site.NAME] */
	char *timezone;
	struct sp_conf_list mail_to;
};

struct collector_rule_conf {
	char *site;            /* NULL for [rule.NAME], the site for [site.S.rule.NAME] */
	char *rule;
	int64_t hold_s;        /* -1 = the rule's own */
	int enabled;           /* -1 = not said, 0 off, 1 on */
	int severity;          /* index in the severity list, -1 = rule default */
	double threshold;      /* NAN = the rule's own */
	double hysteresis;     /* NAN = the rule's own */
};

struct collector_conf {
	struct {
		char *uri;
		char *client_id;
		char *username;
		char *password;
		char *ca_file;
		char *cert_file;
		char *key_file;
		bool tls_insecure;
		int64_t keepalive_s;
		int64_t max_inflight;
	} mqtt;
	struct {
		char *path;
		bool sync_full;
		int64_t batch_max;
		int64_t commit_interval_ms;
		int64_t queue_mb;
		int64_t cache_mb;
		int page_kb_log2;      /* [store] page_kb = 2^this */
		int64_t checkpoint_mb;
		int64_t wal_buffer_kb;  /* 0 = none */
		int64_t compact_after_s;
		int64_t readers;
		int64_t gap_window_s;
		int64_t max_devices;
		int64_t device_cache;
		int64_t progress_fold_commits;
		int64_t device_offline_s;
		int64_t clock_step_s;
		int64_t reask_interval_s;
	} store;
	struct {
		char *listen;
		struct sp_conf_list viewer_tokens;
		struct sp_conf_list operator_tokens;
		int64_t threads;
		int64_t max_connections;
		int64_t max_connections_per_ip;
		int64_t response_mb;
		int64_t timeout_s;
		char *tls_cert_file;
		char *tls_key_file;
	} api;
	struct {
		char *url;
		char *from;
		struct sp_conf_list to;
		char *username;
		char *password;
		int min_severity;      /* index in critical, major, minor, warning */
		int64_t max_per_hour;
		int64_t max_per_hour_critical;
		int64_t repeat_s;
		int64_t timeout_s;
		int64_t retry_min_s;
		int64_t retry_max_s;
	} smtp;
	struct {
		char *url;
		char *token;
		int64_t period_s;
		int64_t grace_s;
		char *ca_file;
		int64_t timeout_s;
		int64_t retry_min_s;
		int64_t retry_max_s;
		int64_t device_records_max;
	} city;
	struct {
		int level;
	} log;
	struct collector_site_conf *sites;
	size_t nsites;
	struct collector_rule_conf *rules;
	size_t nrules;
};

extern const struct sp_conf_schema collector_conf_schema;

int collector_conf_init(struct collector_conf *c);

/* Loads path into c (after collector_conf_init). Errors go to errs. 0 or SP_ECONFIG. */
int collector_conf_load(struct collector_conf *c, const char *path, struct sp_conf_errors *errs);

/* Applies --broker / --db / --http overrides (NULL = none). 0 or SP_ECONFIG. */
int collector_conf_override(struct collector_conf *c, const char *broker, const char *db,
			    const char *http, struct sp_conf_errors *errs);

void collector_conf_free(struct collector_conf *c);

/* The [site.S] section of site among sites[0, n), or NULL. */
const struct collector_site_conf *collector_site_find(const struct collector_site_conf *sites,
						      size_t n, const char *site);

/*
 * The IANA time zone people see site's times in: its [site.S] timezone, else
 * COLLECTOR_TIMEZONE_DEFAULT. Borrowed from c (or static).
 */
const char *collector_conf_timezone(const struct collector_conf *c, const char *site);

/*
 * Builds the alert rules' settings (rules.h) from [store] clock_step_s, the [rule.*] and
 * [site.*.rule.*] sections over the catalogue's defaults. 0, SP_ENOMEM, or
 * SP_ECONFIG with a message in errs for a rule not in the catalogue.
 */
int collector_conf_rules(const struct collector_conf *c, struct rules_config *rc,
			 struct sp_conf_errors *errs);

#endif
