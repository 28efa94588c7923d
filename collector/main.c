/*
 * main.c - sitepulse-collector: command line, configuration, start-up and
 * orderly shutdown of the parts, exit codes (CONTRACT §7).
 *
 * Threads: main (this file: MQTT connection upkeep), Paho's own threads,
 * the writer, and libmicrohttpd's pool. See docs/architecture.md.
 */
#include "api.h"
#include "cityout.h"
#include "collector_conf.h"
#include "ingest.h"
#include "mailer.h"
#include "metrics.h"
#include "parsed.h"
#include "parser.h"
#include "queue.h"
#include "store.h"
#include "tokens.h"
#include "writer.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"
#include "sitepulse/record.h"
#include "sitepulse/signals.h"
#include "sitepulse/topic.h"

#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOP_MS 100
/*
 * On stop, after ingest_stop (at most ~1.3 s, normally a few ms): the time
 * the parser and then the writer have, together, to store what was taken
 * from the broker; with the rest of the stop within §7's 5 s.
 */
#define DRAIN_MS 3000
/*
 * From the stop's start, how long a wait for a database lock held elsewhere
 * (another process, a backup) may go on: then every such wait gives up, so
 * the drain, the last words and the outbox senders end within §7's 5 s.
 */
#define STOP_WAITS_MS 3000
/*
 * The raw queue's least size: it must take the largest message it is handed,
 * an oversize data message read for its seq alone (SP_PAYLOAD_PEEK_MAX, ingest.c)
 */
#define INGEST_QUEUE_MIN queue_cap_for(SP_TOPIC_MAX * 4, SP_PAYLOAD_PEEK_MAX)

/* Everything the collector runs, owned by main(). */
struct collector {
	struct collector_conf conf;
	struct metrics metrics;
	struct store *store;
	struct queue *queue;          /* raw messages: ingest -> parser */
	struct queue *parsed;         /* decoded messages: parser -> writer */
	struct ingest *ingest;
	struct parser *parser;
	struct writer *writer;
	struct tokens *tokens;
	struct api *api;
	struct rules_config *rules;   /* read by the writer; lives until the end */
	struct writer_mail mail;      /* read by the writer */
	struct mailer *mailer;
	struct cityout *cityout;
};

static void usage(FILE *out)
{
	fprintf(out,
		"NAME\n"
		"    sitepulse-collector - stores lift and charger telemetry and serves it\n"
		"\n"
		"SYNOPSIS\n"
		"    sitepulse-collector --config FILE [--broker URI] [--db PATH] [--http HOST:PORT]\n"
		"                        [--check-config]\n"
		"    sitepulse-collector --help | --version\n"
		"\n"
		"DESCRIPTION\n"
		"    Subscribes to sp/v1/+/+/{birth,data,state} with a persistent MQTT session,\n"
		"    validates every message, stores readings exactly once in SQLite (batched\n"
		"    transactions), and acknowledges them end to end on sp/v1/SITE/AGENT/ack once\n"
		"    committed. Runs every stored record through the alert rules (docs/alerts.md);\n"
		"    alerts open and clear in the same transaction as their records. Serves\n"
		"    /healthz, /metrics and the JSON API under /api/v1/.\n"
		"\n"
		"OPTIONS\n"
		"    -c, --config FILE     read the configuration (INI) from FILE (required)\n"
		"    -b, --broker URI      broker address, overrides [mqtt] uri\n"
		"    -d, --db PATH         database file, overrides [store] path\n"
		"    -l, --http HOST:PORT  HTTP address, overrides [api] listen\n"
		"        --check-config    validate the configuration and exit (0 valid, 2 invalid)\n"
		"        --config-reference  print the key reference (Markdown) and exit\n"
		"        --hash-token TOKEN  print sha256:HEX of TOKEN, to list it in viewer_tokens or\n"
		"                          operator_tokens instead of the token itself, and exit\n"
		"    -h, --help            print this help and exit\n"
		"    -V, --version         print the version and exit\n"
		"\n"
		"CONFIGURATION\n");
	sp_conf_print_reference(&collector_conf_schema, out, false);
	fprintf(out,
		"EXIT STATUS\n"
		"    0  normal end (after SIGTERM or SIGINT)\n"
		"    1  runtime failure (database cannot be opened, HTTP address unusable)\n"
		"    2  bad command line or configuration; every problem is printed as\n"
		"       FILE:LINE: [section] key: problem (accepted: range)\n"
		"\n"
		"SIGNALS\n"
		"    SIGTERM, SIGINT  stop taking messages (disconnect: what the broker has not\n"
		"                     handed over waits in the collector's session), store and\n"
		"                     commit everything taken, close the database and exit 0\n"
		"                     within 5 s; the acks of the last commits are published at\n"
		"                     the next start\n"
		"\n"
		"SEE ALSO\n"
		"    sitepulse-agent(8), docs/configuration.md, docs/protocol.md, docs/operations.md\n");
}

/* Milliseconds from now until the monotonic time `until`, at least 0. */
static int ms_until(int64_t until)
{
	int64_t left = until - sp_mono_ms();
	return left > 0 ? (int)left : 0;
}

/* Says what a stop that ran out of time did not store (it was not acked either). */
static void report_unstored(struct collector *c)
{
	struct queue_stats raw = {0}, parsed = {0};
	if (c->queue)
		queue_get_stats(c->queue, &raw);
	if (c->parsed)
		queue_get_stats(c->parsed, &parsed);
	if (raw.depth + parsed.depth > 0)
		SP_WARN("main", "stop: %zu messages taken from the broker were not stored within "
				"%d ms; not acked, so their agents send them again",
			raw.depth + parsed.depth, DRAIN_MS);
}

static void collector_stop(struct collector *c)
{
	/*
	 * Order matters: no new requests; no new messages (disconnect first:
	 * every message Paho handed over is already acknowledged to the broker,
	 * what it has not stays in our session); then store everything taken;
	 * then say goodbye.
	 */
	store_stop_waits(c->store, sp_mono_ms() + STOP_WAITS_MS);
	api_stop(c->api);
	c->api = NULL;
	ingest_stop(c->ingest);
	if (c->queue)
		queue_close(c->queue);
	int64_t drain_until = sp_mono_ms() + DRAIN_MS;
	parser_stop(c->parser, ms_until(drain_until)); /* closes c->parsed */
	c->parser = NULL;
	writer_stop(c->writer, ms_until(drain_until));
	c->writer = NULL;
	report_unstored(c);
	/* after the writer: what it committed last may still be handed to them */
	mailer_stop(c->mailer);
	c->mailer = NULL;
	cityout_stop(c->cityout);
	c->cityout = NULL;
	ingest_destroy(c->ingest);
	c->ingest = NULL;
	store_close(c->store);
	c->store = NULL;
	tokens_destroy(c->tokens);
	c->tokens = NULL;
	queue_destroy(c->queue);
	c->queue = NULL;
	queue_destroy(c->parsed);
	c->parsed = NULL;
}

/* Short plain-text tokens are easy to guess: say so once at start. */
static void warn_short_tokens(const struct collector_conf *cf)
{
	const struct sp_conf_list *lists[] = {&cf->api.viewer_tokens, &cf->api.operator_tokens};
	size_t n = 0;
	for (int l = 0; l < 2; l++)
		for (size_t i = 0; i < lists[l]->count; i++)
			n += strncmp(lists[l]->items[i], "sha256:", 7) != 0 &&
			     strlen(lists[l]->items[i]) < 16;
	if (n)
		SP_WARN("main", "%zu API tokens are shorter than 16 characters: easy to guess", n);
}

/*
 * How often devices' liveness (last_seen, heard) is written: a tenth of the
 * offline threshold, between 1 and 10 s. The stored values trail by at most
 * this much, but heard is the exact arrival, so a device that goes silent is
 * still offline exactly device_offline_s after its last reading arrived; one
 * that comes back has it written at once (writer.c, seen_due_now).
 */
static int64_t device_seen_flush_ms(const struct collector_conf *cf)
{
	int64_t ms = cf->store.device_offline_s * 100;
	return ms < 1000 ? 1000 : ms > 10000 ? 10000 : ms;
}

static int collector_start(struct collector *c)
{
	struct collector_conf *cf = &c->conf;
	struct store_params sp = {cf->store.path, cf->store.sync_full, (int)cf->store.readers,
				  cf->store.cache_mb, (int64_t)1 << cf->store.page_kb_log2, cf->store.checkpoint_mb,
				  cf->store.compact_after_s * 1000, cf->store.device_offline_s * 1000,
				  cf->store.wal_buffer_kb > 0 ? cf->store.wal_buffer_kb : -1};
	metrics_init(&c->metrics);
	c->store = store_open(&sp);
	if (c->store == NULL)
		return SP_EIO;
	/*
	 * The writer's queue is queue_mb (its size is the transaction size),
	 * but never less than the parsed form of any valid message needs
	 * (parsed_queue_min, ~4.9 MB: 1,000 records of the largest kind at their
	 * longest, twice, see parsed.c): a smaller one could refuse a valid
	 * message. The raw queue before the parser only evens out bursts: a
	 * quarter of queue_mb.
	 */
	size_t queue_bytes = (size_t)cf->store.queue_mb * 1024 * 1024;
	size_t writer_bytes = queue_bytes;
	if (writer_bytes < parsed_queue_min()) {
		writer_bytes = parsed_queue_min();
		SP_INFO("main", "writer queue %zu bytes: queue_mb = %lld is less than the parsed form "
				"of the largest valid message needs", writer_bytes,
			(long long)cf->store.queue_mb);
	}
	size_t ingest_bytes = queue_bytes / 4 > INGEST_QUEUE_MIN ? queue_bytes / 4 : INGEST_QUEUE_MIN;
	c->queue = queue_create(ingest_bytes, "ingest", "the broker");
	c->parsed = queue_create(writer_bytes, "writer", "the parser");
	if (c->queue == NULL || c->parsed == NULL)
		return SP_ENOMEM;
	c->parser = parser_start(c->queue, c->parsed);
	if (c->parser == NULL)
		return SP_ENOMEM;
	c->ingest = ingest_create(cf, c->queue, &c->metrics);
	if (c->ingest == NULL)
		return SP_EIO;
	struct writer_params wp = {c->store,
				   c->parsed,
				   c->queue,
				   c->ingest,
				   &c->metrics,
				   cf->store.batch_max,
				   cf->store.commit_interval_ms,
				   cf->store.gap_window_s * 1000,
				   cf->store.max_devices,
				   cf->store.device_cache,
				   device_seen_flush_ms(cf),
				   cf->store.progress_fold_commits,
				   cf->store.device_offline_s * 1000,
				   c->rules,
				   *cf->smtp.url ? &c->mail : NULL};
	c->mail = (struct writer_mail){cf->smtp.from, &cf->smtp.to, cf->sites, cf->nsites,
				       (enum alert_severity)cf->smtp.min_severity, cf->smtp.max_per_hour,
				       cf->smtp.repeat_s * 1000, cf->smtp.max_per_hour_critical};
	c->writer = writer_start(&wp);
	if (c->writer == NULL)
		return SP_EIO;
	if (*cf->smtp.url) {
		struct mailer_params mp = {c->store,
					   &c->metrics,
					   cf->smtp.url,
					   cf->smtp.username,
					   cf->smtp.password,
					   cf->smtp.from,
					   cf->smtp.timeout_s * 1000,
					   cf->smtp.retry_min_s * 1000,
					   cf->smtp.retry_max_s * 1000};
		if ((c->mailer = mailer_start(&mp)) == NULL)
			return SP_EIO;
	} else {
		SP_INFO("main", "[smtp] url is empty: alerts are not mailed");
	}
	struct cityout_params cp = {c->store,
				    &c->metrics,
				    cf->city.url,
				    cf->city.token,
				    cf->city.ca_file,
				    cf->city.period_s * 1000,
				    cf->city.grace_s * 1000,
				    cf->store.device_offline_s * 1000,
				    cf->city.timeout_s * 1000,
				    cf->city.retry_min_s * 1000,
				    cf->city.retry_max_s * 1000,
				    cf->city.device_records_max};
	if ((c->cityout = cityout_start(&cp)) == NULL)
		return SP_EIO;
	warn_short_tokens(cf);
	char err[200];
	/* from here on the tokens exist only as digests */
	c->tokens = tokens_create(&cf->api.viewer_tokens, &cf->api.operator_tokens, err, sizeof(err));
	if (c->tokens == NULL) {
		SP_ERROR("main", "API tokens: %s", err);
		return SP_ENOMEM;
	}
	struct api_params ap = {cf, c->store, &c->metrics, c->queue, c->parsed, c->tokens};
	c->api = api_start(&ap);
	if (c->api == NULL)
		return SP_EIO;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"broker", required_argument, NULL, 'b'},
		{"db", required_argument, NULL, 'd'},     {"http", required_argument, NULL, 'l'},
		{"check-config", no_argument, NULL, 'k'},
		{"config-reference", no_argument, NULL, 'R'},
		{"hash-token", required_argument, NULL, 'H'}, {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0}};
	struct collector c;
	struct sp_conf_errors errs = {NULL, 0};
	const char *config_path = NULL, *broker = NULL, *db = NULL, *http = NULL;
	bool check_only = false;
	int opt, status = 2;

	memset(&c, 0, sizeof(c));
	/*
	 * A fixed mmap threshold (glibc's default one rises to the size of each
	 * large block freed): blocks of 128 KB and more are then always mapped
	 * on their own and go back to the system when freed, instead of
	 * staying resident in an arena once a burst has grown them (the seen
	 * list, the chunk batch; docs/performance.md item 43). Such blocks are
	 * made per flush or burst, not per message.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	while ((opt = getopt_long(argc, argv, "c:b:d:l:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 'b': broker = optarg; break;
		case 'd': db = optarg; break;
		case 'l': http = optarg; break;
		case 'k': check_only = true; break;
		case 'R': sp_conf_print_reference(&collector_conf_schema, stdout, true); return 0;
		case 'H': {
			char text[TOKENS_HASH_TEXT_LEN + 1];
			if (tokens_hash_text(optarg, text, sizeof(text)) != 0)
				return 1;
			printf("%s\n", text);
			return 0;
		}
		case 'h': usage(stdout); return 0;
		case 'V': printf("sitepulse-collector %s\n", SP_VERSION); return 0;
		default:
			fprintf(stderr, "Try 'sitepulse-collector --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sitepulse-collector: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (config_path == NULL) {
		fprintf(stderr, "sitepulse-collector: --config FILE is required (see --help)\n");
		return 2;
	}
	if (collector_conf_init(&c.conf) != 0) {
		fprintf(stderr, "sitepulse-collector: out of memory\n");
		return 1;
	}
	collector_conf_load(&c.conf, config_path, &errs);
	collector_conf_override(&c.conf, broker, db, http, &errs);
	c.rules = rules_config_create();
	if (c.rules == NULL || collector_conf_rules(&c.conf, c.rules, &errs) == SP_ENOMEM) {
		fprintf(stderr, "sitepulse-collector: out of memory\n");
		status = 1;
		goto out;
	}
	if (errs.count > 0) {
		sp_conf_errors_print(&errs, stderr);
		goto out;
	}
	if (check_only) {
		printf("%s: configuration OK\n", config_path);
		status = 0;
		goto out;
	}
	sp_log_set_level((enum sp_log_level)c.conf.log.level);

	sp_stop_on_signals();

	SP_INFO("main", "sitepulse-collector %s starting", SP_VERSION);
	if (collector_start(&c) != 0) {
		status = 1;
		collector_stop(&c);
		goto out;
	}
	while (!sp_stop_requested) {
		ingest_poll(c.ingest);
		sp_sleep_ms(LOOP_MS);
	}
	SP_INFO("main", "stopping");
	collector_stop(&c);
	SP_INFO("main", "stopped");
	status = 0;
out:
	sp_conf_errors_free(&errs);
	collector_conf_free(&c.conf);
	rules_config_destroy(c.rules);
	return status;
}
