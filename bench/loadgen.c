/*
 * loadgen.c - sp-loadgen, the benchmark's load generator (see bench/README.md).
 *
 * Plays N simulated agents over one MQTT connection (sitepulse/mqtt.h):
 * publishes a retained birth per agent, then COUNT data messages that
 * conform to CONTRACT §3.2, round-robin over the agents: message g goes to
 * agent g % N with seq g / N + FIRST_SEQ, so every agent's seqs start at
 * FIRST_SEQ (1 unless --first-seq) and have no gaps. --first-seq continues
 * an earlier run of the same agents and shape where it stopped: seqs, and
 * the device rotation and counters (each agent's records so far). At most
 * WINDOW QoS 1 publishes await the broker's PUBACK; with --rate the
 * messages are paced, else they go as fast as the window allows.
 *
 * It also plays the agents' side of the end-to-end ack (CONTRACT §3.4):
 * subscribed to sp/v1/+/+/ack, it keeps the highest acked seq of each of its
 * agents and the time the ack covering each message arrived, which gives
 * the publish -> acked latency of every message. Acks of agents that are
 * not ours (another loader, an older run) are ignored.
 *
 * Threads: main publishes, waits and reports. The ack callback runs on
 * Paho's receive thread: it writes only acked[] (atomics) and ack_us[] of
 * the messages it newly covers; main reads ack_us[] after the client is
 * destroyed (no thread left). pub_us[g] is written by main before message g
 * is published, so before any ack can cover it.
 *
 * Output: one JSON object on stdout (also after a failure or timeout);
 * progress and errors on stderr. Exit status 0 done, 1 failure or timeout,
 * 2 bad command line.
 */
#include "synth.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"
#include "sitepulse/signals.h"
#include "sitepulse/mqtt.h"
#include "sitepulse/record.h"
#include "sitepulse/topic.h"

#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define AGENTS_MAX 1000000
#define COUNT_MAX 100000000LL
#define PREFIX_MAX 40            /* keeps site and device ids within SP_ID_MAX */
#define BUSY_SLEEP_NS 50000      /* window full: wait 50 µs */

struct options {
	const char *uri, *site_prefix, *agent_prefix, *latency_out, *client_id;
	long agents, records, devices, first_agent, agents_per_site, window;
	long long count, first_seq;
	double rate, timeout_s, ack_timeout_s;
	bool wait_acks, births_only, skip_births;
	unsigned long seed;
};

/* One simulated agent. */
struct agent {
	char site[SP_ID_MAX + 1];
	char name[SP_ID_MAX + 1];
	char data_topic[SP_TOPIC_MAX];
	int64_t last_seq;        /* main thread: highest seq published */
	atomic_llong acked;      /* Paho thread writes, main reads */
	uint64_t tick;           /* records produced so far (device rotation, counters) */
};

struct loadgen {
	struct options o;
	struct agent *agents;
	int64_t *pub_us;         /* per message: monotonic µs when published */
	int64_t *ack_us;         /* per message: monotonic µs when an ack covered it, 0 = not yet */
	struct sp_mqtt *mqtt;
	struct sp_record *recs;
	struct sp_buf out;
	struct synth rng;
	atomic_llong acks_received, acks_foreign;
	/* results */
	long long births, published, busy_waits, payload_bytes;
	double t_first_pub, t_last_pub, t_pubacked, t_acked; /* wall clock ms, 0 = never */
	bool failed, timed_out, all_acked;
	const char *failure;
};

/* ---------------------------------------------------------------- time */

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ns(long ns)
{
	struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
	nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- ack side (Paho thread) */

/* Index of our agent named `name`, or -1. Names are PREFIX + 6-digit number. */
static long agent_index(const struct loadgen *lg, const char *name)
{
	size_t plen = strlen(lg->o.agent_prefix);
	char *end;
	if (strncmp(name, lg->o.agent_prefix, plen) != 0 || name[plen] < '0' || name[plen] > '9')
		return -1;
	errno = 0;
	long n = strtol(name + plen, &end, 10);
	if (errno || *end != '\0')
		return -1;
	n -= lg->o.first_agent;
	return n >= 0 && n < lg->o.agents ? n : -1;
}

static void on_message(void *ctx, const char *topic, size_t topic_len, const void *payload,
		       size_t len)
{
	struct loadgen *lg = ctx;
	struct sp_topic t;
	int64_t seq;
	if (sp_topic_parse(topic, topic_len, &t) || t.kind != SP_TOPIC_ACK ||
	    sp_decode_ack(payload, len, &seq, NULL))
		return;
	long a = agent_index(lg, t.agent);
	if (a < 0) {
		atomic_fetch_add(&lg->acks_foreign, 1);
		return;
	}
	atomic_fetch_add(&lg->acks_received, 1);
	struct agent *ag = &lg->agents[a];
	long long prev = atomic_load(&ag->acked);
	if (seq <= prev)
		return;
	int64_t now = mono_us();
	long long n = lg->o.agents;
	/* (an ack of an earlier run's seqs, below FIRST_SEQ, covers none of ours) */
	for (long long s = prev + 1 > lg->o.first_seq ? prev + 1 : lg->o.first_seq; s <= seq; s++) {
		long long g = (s - lg->o.first_seq) * n + a;
		if (g >= lg->o.count)
			break;
		lg->ack_us[g] = now;
	}
	atomic_store(&ag->acked, seq);
}

/* ---------------------------------------------------------------- messages */

static void agent_names(const struct options *o, long i, struct agent *ag)
{
	long no = o->first_agent + i;
	snprintf(ag->site, sizeof(ag->site), "%s%04ld", o->site_prefix, no / o->agents_per_site);
	snprintf(ag->name, sizeof(ag->name), "%s%06ld", o->agent_prefix, no);
	sp_topic_format(ag->data_topic, sizeof(ag->data_topic), ag->site, ag->name, SP_TOPIC_DATA);
}

/* Device k of an agent: even k a lift, odd k a charger. Fits: the prefix is <= PREFIX_MAX. */
static void device_name(const struct agent *ag, long k, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%.*s-%c%hu", PREFIX_MAX + 6, ag->name, k % 2 == 0 ? 'l' : 'c',
			 (unsigned short)(k / 2 + 1));
	assert(n > 0 && (size_t)n < cap);
	(void)n;
}

/* The next record of agent ag: its devices in turn (synth.h decides what each sends). */
static void next_record(struct loadgen *lg, struct agent *ag, struct sp_record *r, int64_t ts)
{
	char dev[SP_ID_MAX + 1];
	uint64_t n = ag->tick++;
	long k = (long)(n % (uint64_t)lg->o.devices);
	device_name(ag, k, dev, sizeof(dev));
	synth_record(&lg->rng, r, dev, k % 2 == 0, ts, n / (uint64_t)lg->o.devices);
}

static void fail(struct loadgen *lg, const char *why)
{
	if (!lg->failed)
		fprintf(stderr, "sp-loadgen: %s\n", why);
	lg->failed = true;
	lg->failure = why;
}

/* Publishes QoS 1, waiting while the window is full. 0, or -1 (failure recorded). */
static int publish(struct loadgen *lg, const char *topic, const struct sp_buf *b, bool retain,
		   int64_t deadline_us)
{
	for (;;) {
		int rc = sp_mqtt_publish(lg->mqtt, topic, b->data, b->len, 1, retain);
		if (rc == 0)
			return 0;
		if (rc != SP_EBUSY) {
			fail(lg, rc == SP_ECONN ? "connection to the broker lost" : "publish failed");
			return -1;
		}
		lg->busy_waits++;
		if (sp_stop_requested || mono_us() > deadline_us) {
			lg->timed_out = mono_us() > deadline_us;
			fail(lg, sp_stop_requested ? "interrupted" : "timed out with the window full");
			return -1;
		}
		sleep_ns(BUSY_SLEEP_NS);
	}
}

static int publish_births(struct loadgen *lg, int64_t deadline_us)
{
	struct sp_device_info *devs = calloc((size_t)lg->o.devices, sizeof(*devs));
	char topic[SP_TOPIC_MAX];
	int rc = 0;
	if (devs == NULL) {
		fail(lg, "out of memory");
		return -1;
	}
	for (long i = 0; i < lg->o.agents && rc == 0; i++) {
		struct agent *ag = &lg->agents[i];
		for (long k = 0; k < lg->o.devices; k++) {
			char dev[SP_ID_MAX + 1];
			device_name(ag, k, dev, sizeof(dev));
			synth_device(&devs[k], dev, k % 2 == 0);
		}
		sp_buf_reset(&lg->out);
		sp_topic_format(topic, sizeof(topic), ag->site, ag->name, SP_TOPIC_BIRTH);
		if (sp_encode_birth(&lg->out, sp_now_ms(), "bench-1.0", devs, (size_t)lg->o.devices)) {
			fail(lg, "cannot encode a birth");
			rc = -1;
		} else if ((rc = publish(lg, topic, &lg->out, true, deadline_us)) == 0) {
			lg->births++;
		}
	}
	free(devs);
	return rc;
}

static int publish_data(struct loadgen *lg, int64_t deadline_us)
{
	const struct options *o = &lg->o;
	int64_t start = mono_us();
	for (long long g = 0; g < o->count; g++) {
		struct agent *ag = &lg->agents[g % o->agents];
		int64_t seq = g / o->agents + o->first_seq;
		if (o->rate > 0) {
			int64_t due = start + (int64_t)((double)g * 1e6 / o->rate);
			int64_t now = mono_us();
			if (due > now)
				sleep_ns((long)(due - now) * 1000);
		}
		if (sp_stop_requested || mono_us() > deadline_us) {
			lg->timed_out = !sp_stop_requested;
			fail(lg, sp_stop_requested ? "interrupted" : "timed out while publishing");
			return -1;
		}
		int64_t ts = sp_now_ms();
		for (long r = 0; r < o->records; r++)
			next_record(lg, ag, &lg->recs[r], ts);
		sp_buf_reset(&lg->out);
		if (sp_encode_data(&lg->out, seq, ts, lg->recs, (size_t)o->records)) {
			fail(lg, "cannot encode a data message (too large?)");
			return -1;
		}
		int64_t now = mono_us();
		lg->pub_us[g] = now;
		if (g == 0)
			lg->t_first_pub = wall_ms();
		if (publish(lg, ag->data_topic, &lg->out, false, deadline_us))
			return -1;
		ag->last_seq = seq;
		lg->published++;
		lg->payload_bytes += (long long)lg->out.len;
	}
	lg->t_last_pub = wall_ms();
	return 0;
}

/* Waits until cond(lg) holds, up to deadline. 0 or -1. */
static int wait_for(struct loadgen *lg, bool (*cond)(struct loadgen *), int64_t deadline_us)
{
	while (!cond(lg)) {
		if (sp_stop_requested || mono_us() > deadline_us)
			return -1;
		if (!sp_mqtt_connected(lg->mqtt)) {
			fail(lg, "connection to the broker lost");
			return -1;
		}
		sleep_ns(200000);
	}
	return 0;
}

static bool all_pubacked(struct loadgen *lg)
{
	return sp_mqtt_inflight(lg->mqtt) == 0;
}

static bool every_agent_acked(struct loadgen *lg)
{
	for (long i = 0; i < lg->o.agents; i++)
		if (atomic_load(&lg->agents[i].acked) < lg->agents[i].last_seq)
			return false;
	return true;
}

/* ---------------------------------------------------------------- report */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[n], in ms. */
static double pct_ms(const int64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);
	i = i == 0 ? 0 : i - 1;
	return (double)v[i < n ? i : n - 1] / 1000.0;
}

static void print_latency(struct loadgen *lg, FILE *out)
{
	size_t n = 0;
	int64_t *lat = malloc((size_t)(lg->published > 0 ? lg->published : 1) * sizeof(*lat));
	FILE *f = NULL;
	if (lat == NULL) {
		fprintf(out, "null");
		return;
	}
	if (lg->o.latency_out && (f = fopen(lg->o.latency_out, "w")) == NULL)
		fprintf(stderr, "sp-loadgen: %s: %s\n", lg->o.latency_out, strerror(errno));
	for (long long g = 0; g < lg->published; g++) {
		if (lg->ack_us[g] == 0)
			continue;
		lat[n++] = lg->ack_us[g] - lg->pub_us[g];
		if (f)
			fprintf(f, "%" PRId64 "\n", lat[n - 1]);
	}
	if (f)
		fclose(f);
	if (n == 0) {
		fprintf(out, "null");
	} else {
		qsort(lat, n, sizeof(*lat), cmp_i64);
		fprintf(out, "{\"n\":%zu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}", n,
			pct_ms(lat, n, 50), pct_ms(lat, n, 90), pct_ms(lat, n, 99),
			pct_ms(lat, n, 100));
	}
	free(lat);
}

static void print_time(FILE *out, const char *key, double ms)
{
	if (ms > 0)
		fprintf(out, ",\"%s\":%.3f", key, ms);
	else
		fprintf(out, ",\"%s\":null", key);
}

static void print_report(struct loadgen *lg, FILE *out)
{
	const struct options *o = &lg->o;
	struct rusage ru;
	long long acked = 0;
	for (long i = 0; i < o->agents; i++) {
		long long a = atomic_load(&lg->agents[i].acked);
		a = a < lg->agents[i].last_seq ? a : lg->agents[i].last_seq;
		acked += a >= o->first_seq ? a - o->first_seq + 1 : 0; /* of this run's messages */
	}
	getrusage(RUSAGE_SELF, &ru);
	double span = lg->t_last_pub > 0 ? (lg->t_last_pub - lg->t_first_pub) / 1000.0 : 0;
	fprintf(out,
		"{\"agents\":%ld,\"first_agent\":%ld,\"devices_per_agent\":%ld,\"records\":%ld,"
		"\"count\":%lld,\"rate\":%g,\"window\":%ld,\"births\":%lld,\"published\":%lld,"
		"\"payload_bytes_avg\":%.1f,\"busy_waits\":%lld,\"publish_s\":%.3f,"
		"\"publish_rate\":%.1f",
		o->agents, o->first_agent, o->devices, o->records, o->count, o->rate, o->window,
		lg->births, lg->published,
		lg->published ? (double)lg->payload_bytes / (double)lg->published : 0.0,
		lg->busy_waits, span, span > 0 ? (double)lg->published / span : 0.0);
	print_time(out, "t_first_pub_ms", lg->t_first_pub);
	print_time(out, "t_last_pub_ms", lg->t_last_pub);
	print_time(out, "t_pubacked_ms", lg->t_pubacked);
	print_time(out, "t_acked_ms", lg->t_acked);
	fprintf(out,
		",\"acked\":%lld,\"all_acked\":%s,\"acks_received\":%lld,\"acks_foreign\":%lld,"
		"\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"timed_out\":%s,\"ok\":%s,\"error\":",
		acked, lg->all_acked ? "true" : "false", (long long)atomic_load(&lg->acks_received),
		(long long)atomic_load(&lg->acks_foreign),
		(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
		(double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
		lg->timed_out ? "true" : "false", lg->failed ? "false" : "true");
	if (lg->failure)
		fprintf(out, "\"%s\"", lg->failure);
	else
		fprintf(out, "null");
	fprintf(out, ",\"latency_ms\":");
	print_latency(lg, out);
	fprintf(out, "}\n");
}

/* ---------------------------------------------------------------- command line */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sp-loadgen --uri URI [options]\n"
		"  --uri URI            broker (tcp://127.0.0.1:1883)\n"
		"  --agents N           simulated agents (100)\n"
		"  --devices D          devices per agent, lifts and chargers alternating (10, max %d)\n"
		"  --records R          records per data message (1, max %d)\n"
		"  --count TOTAL        data messages in all, round-robin over the agents (10000)\n"
		"  --rate MSG_PER_S     pace the messages; 0 = as fast as the window allows (0)\n"
		"  --window W           QoS 1 publishes awaiting PUBACK (1000)\n"
		"  --site-prefix P      sites are P0000, P0001, ... (bench-s)\n"
		"  --agent-prefix P     agents are P000000, P000001, ...; use a fresh one per run (bench-a)\n"
		"  --first-agent K      number of the first agent (0): several loaders use disjoint ranges\n"
		"  --agents-per-site N  agents per site (10)\n"
		"  --wait-acks          after the last PUBACK, wait until every agent's ack covers its last seq\n"
		"  --ack-timeout S      for --wait-acks (60)\n"
		"  --timeout S          hard limit of the whole run (600)\n"
		"  --births-only        publish the births, wait for their PUBACKs, stop\n"
		"  --skip-births        publish no births (they were published before)\n"
		"  --first-seq S        first seq of every agent (1): continues an earlier run of the\n"
		"                       same agents, devices and --records that ended at S - 1\n"
		"  --latency-out FILE   publish->acked latency of every acked message, µs, one per line\n"
		"  --client-id ID       MQTT client id (AGENT_PREFIX-loader-FIRST_AGENT)\n"
		"  --seed N             value generator seed (1)\n"
		"Prints one JSON object with the results on stdout.\n",
		SP_DEVICES_MAX, SP_RECORDS_MAX);
}

static int parse_long(const char *name, const char *s, long long min, long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "sp-loadgen: --%s: expected an integer in %lld..%lld, got '%s'\n", name,
			min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_double(const char *name, const char *s, double min, double max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max)) {
		fprintf(stderr, "sp-loadgen: --%s: expected a number in %g..%g, got '%s'\n", name, min,
			max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static bool prefix_ok(const char *p)
{
	size_t n = strlen(p);
	return n >= 1 && n <= PREFIX_MAX && sp_id_valid(p, n);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
		{"uri", required_argument, NULL, 'u'},          {"agents", required_argument, NULL, 'n'},
		{"devices", required_argument, NULL, 'D'},      {"records", required_argument, NULL, 'r'},
		{"count", required_argument, NULL, 'c'},        {"rate", required_argument, NULL, 'R'},
		{"window", required_argument, NULL, 'w'},       {"site-prefix", required_argument, NULL, 'S'},
		{"agent-prefix", required_argument, NULL, 'A'}, {"first-agent", required_argument, NULL, 'f'},
		{"agents-per-site", required_argument, NULL, 'P'},
		{"wait-acks", no_argument, NULL, 'W'},          {"ack-timeout", required_argument, NULL, 'T'},
		{"timeout", required_argument, NULL, 't'},      {"births-only", no_argument, NULL, 'B'},
		{"skip-births", no_argument, NULL, 'K'},        {"latency-out", required_argument, NULL, 'L'},
		{"client-id", required_argument, NULL, 'i'},    {"seed", required_argument, NULL, 's'},
		{"first-seq", required_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},               {NULL, 0, NULL, 0}};
	long long v;
	int opt, bad = 0;

	*o = (struct options){.uri = "tcp://127.0.0.1:1883", .site_prefix = "bench-s",
			      .agent_prefix = "bench-a", .agents = 100, .records = 1, .devices = 10,
			      .agents_per_site = 10, .window = 1000, .count = 10000,
			      .timeout_s = 600, .ack_timeout_s = 60, .seed = 1, .first_seq = 1};
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'u': o->uri = optarg; break;
		case 'n': bad |= parse_long("agents", optarg, 1, AGENTS_MAX, &v); o->agents = (long)v; break;
		case 'D': bad |= parse_long("devices", optarg, 1, SP_DEVICES_MAX, &v); o->devices = (long)v; break;
		case 'r': bad |= parse_long("records", optarg, 1, SP_RECORDS_MAX, &v); o->records = (long)v; break;
		case 'c': bad |= parse_long("count", optarg, 0, COUNT_MAX, &o->count); break;
		case 'R': bad |= parse_double("rate", optarg, 0, 1e7, &o->rate); break;
		case 'w': bad |= parse_long("window", optarg, 1, 65535, &v); o->window = (long)v; break;
		case 'S': o->site_prefix = optarg; break;
		case 'A': o->agent_prefix = optarg; break;
		case 'f': bad |= parse_long("first-agent", optarg, 0, 99999999, &v); o->first_agent = (long)v; break;
		case 'P': bad |= parse_long("agents-per-site", optarg, 1, AGENTS_MAX, &v); o->agents_per_site = (long)v; break;
		case 'W': o->wait_acks = true; break;
		case 'T': bad |= parse_double("ack-timeout", optarg, 0.1, 86400, &o->ack_timeout_s); break;
		case 't': bad |= parse_double("timeout", optarg, 0.1, 86400, &o->timeout_s); break;
		case 'B': o->births_only = true; break;
		case 'K': o->skip_births = true; break;
		case 'F': bad |= parse_long("first-seq", optarg, 1, 1LL << 40, &o->first_seq); break;
		case 'L': o->latency_out = optarg; break;
		case 'i': o->client_id = optarg; break;
		case 's': bad |= parse_long("seed", optarg, 0, 1LL << 40, &v); o->seed = (unsigned long)v; break;
		case 'h': usage(stdout); exit(0);
		default: bad = -1; break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sp-loadgen: unexpected argument '%s'\n", argv[optind]);
		bad = -1;
	}
	if (!prefix_ok(o->site_prefix) || !prefix_ok(o->agent_prefix)) {
		fprintf(stderr, "sp-loadgen: prefixes must be 1..%d characters of [a-z0-9_-]\n",
			PREFIX_MAX);
		bad = -1;
	}
	if (o->first_agent + o->agents > 999999) {
		fprintf(stderr, "sp-loadgen: agent numbers must stay below 1000000\n");
		bad = -1;
	}
	if (o->births_only && o->skip_births) {
		fprintf(stderr, "sp-loadgen: --births-only and --skip-births exclude each other\n");
		bad = -1;
	}
	return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- main */

static void loadgen_free(struct loadgen *lg)
{
	sp_mqtt_destroy(lg->mqtt, 2000);
	free(lg->agents);
	free(lg->pub_us);
	free(lg->ack_us);
	free(lg->recs);
	sp_buf_free(&lg->out);
}

static int run(struct loadgen *lg)
{
	const struct options *o = &lg->o;
	int64_t deadline = mono_us() + (int64_t)(o->timeout_s * 1e6);
	char client_id[128];

	snprintf(client_id, sizeof(client_id), "%s-loader-%ld", o->agent_prefix, o->first_agent);
	struct sp_mqtt_params p = {.uri = o->uri, .client_id = o->client_id ? o->client_id : client_id,
				   .keepalive_s = 30, .clean_session = true,
				   .max_inflight = (int)o->window};
	struct sp_mqtt_callbacks cb = {lg, on_message, NULL, NULL};
	if ((lg->mqtt = sp_mqtt_create(&p, &cb)) == NULL) {
		fail(lg, "cannot create the MQTT client");
		return -1;
	}
	int64_t connect_deadline = mono_us() + 10000000;
	while (!sp_mqtt_connected(lg->mqtt)) {
		if (sp_stop_requested || mono_us() > connect_deadline) {
			fail(lg, "cannot connect to the broker within 10 s");
			return -1;
		}
		sp_mqtt_poll(lg->mqtt);
		sleep_ns(20000000);
	}
	/* Paho sends in order: the SUBSCRIBE is at the broker before our first data message */
	if (!o->births_only && sp_mqtt_subscribe(lg->mqtt, "sp/v1/+/+/ack", 1)) {
		fail(lg, "cannot subscribe to the acks");
		return -1;
	}
	if (!o->skip_births && publish_births(lg, deadline))
		return -1;
	if (!o->births_only && publish_data(lg, deadline))
		return -1;
	if (wait_for(lg, all_pubacked, deadline)) {
		lg->timed_out = !sp_stop_requested;
		fail(lg, "timed out waiting for PUBACKs");
		return -1;
	}
	lg->t_pubacked = wall_ms();
	if (!o->wait_acks || o->births_only)
		return 0;
	int64_t ack_deadline = mono_us() + (int64_t)(o->ack_timeout_s * 1e6);
	if (wait_for(lg, every_agent_acked, ack_deadline < deadline ? ack_deadline : deadline)) {
		lg->timed_out = !sp_stop_requested;
		fail(lg, "timed out waiting for the collector's acks");
		return -1;
	}
	lg->t_acked = wall_ms();
	lg->all_acked = true;
	return 0;
}

int main(int argc, char **argv)
{
	struct loadgen lg;
	memset(&lg, 0, sizeof(lg));
	if (parse_options(argc, argv, &lg.o)) {
		fprintf(stderr, "Try 'sp-loadgen --help'.\n");
		return 2;
	}
	sp_log_set_level(SP_LOG_WARN);
	sp_stop_on_signals();

	size_t count = (size_t)(lg.o.count > 0 ? lg.o.count : 1);
	synth_seed(&lg.rng, lg.o.seed);
	lg.out.limit = SP_PAYLOAD_MAX;
	lg.agents = calloc((size_t)lg.o.agents, sizeof(*lg.agents));
	lg.pub_us = calloc(count, sizeof(*lg.pub_us));
	lg.ack_us = calloc(count, sizeof(*lg.ack_us));
	lg.recs = calloc((size_t)lg.o.records, sizeof(*lg.recs));
	int status = 1;
	if (!lg.agents || !lg.pub_us || !lg.ack_us || !lg.recs) {
		fprintf(stderr, "sp-loadgen: out of memory for %lld messages\n", lg.o.count);
		goto out;
	}
	for (long i = 0; i < lg.o.agents; i++) {
		agent_names(&lg.o, i, &lg.agents[i]);
		atomic_init(&lg.agents[i].acked, 0);
		/* an earlier run of this shape made (first_seq - 1) messages per agent */
		lg.agents[i].tick = (uint64_t)(lg.o.first_seq - 1) * (uint64_t)lg.o.records;
	}
	status = run(&lg) == 0 ? 0 : 1;
	/* no Paho thread may touch ack_us[] while the report reads it */
	sp_mqtt_destroy(lg.mqtt, 2000);
	lg.mqtt = NULL;
	print_report(&lg, stdout);
out:
	loadgen_free(&lg);
	return status;
}
