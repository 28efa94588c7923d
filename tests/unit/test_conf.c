/*
 * test_conf.c - the configuration tables (common/conf.c over libinih) and the two
 * real schemas: the agent's (agent/agent_conf.c) and the collector's
 * (collector/collector_conf.c). Every case writes an INI file into
 * $SP_TEST_TMP (or /tmp), loads it into a fresh struct and checks the values
 * or the exact "FILE:LINE: [section] key: problem" error lines.
 */
#include "harness.h"

#include "agent_conf.h"
#include "collector_conf.h"
#include "sitepulse/conf.h"
#include "sitepulse/error.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The collector example of CONTRACT §7, verbatim. */
static const char contract_collector[] =
	"[mqtt]\n"
	"uri = tcp://127.0.0.1:1883          ; ssl://… for TLS\n"
	"client_id = sitepulse-collector\n"
	"[store]\n"
	"path = sitepulse.db\n"
	"[api]\n"
	"listen = 127.0.0.1:8080\n"
	"viewer_tokens = token1, token2      ; comma-separated\n"
	"operator_tokens = token3\n"
	"[smtp]\n"
	"url = smtp://127.0.0.1:2525\n"
	"from = sitepulse@example.org\n"
	"to = ops@example.org                ; default recipients, comma-separated\n"
	"[city]\n"
	"url = https://city.example.org/api/summaries\n"
	"token = secret\n"
	"period_s = 3600\n"
	"grace_s = 600\n"
	"[site.hp-ruijin-07]                 ; per-site settings\n"
	"timezone = Asia/Shanghai\n"
	"mail_to = crew7@example.org\n"
	"[rule.lift.trapped]                 ; per-rule settings; [site.X.rule.R] overrides for one site\n"
	"hold_s = 10\n";

/* The agent example of CONTRACT §7, verbatim. */
static const char contract_agent[] =
	"[agent]\n"
	"site = hp-ruijin-07\n"
	"id = gw-1\n"
	"spool_path = spool.db\n"
	"[mqtt]\n"
	"uri = tcp://127.0.0.1:1883\n"
	"[sim]                               ; the built-in simulator\n"
	"seed = 1\n"
	"lifts = 2\n"
	"chargers = 2\n"
	"ports = 12                          ; per charger\n";

/* The smallest valid agent file (its two required keys). */
#define AGENT_MIN "[agent]\nsite = hp-1\nid = gw-1\n"

/* ---------------------------------------------------------------- helpers */

static char tmp_dir[512];
static int file_counter;

static void init_tmp_dir(void)
{
	const char *d = getenv("SP_TEST_TMP");
	snprintf(tmp_dir, sizeof(tmp_dir), "%s", d && *d ? d : "/tmp");
	if (mkdir(tmp_dir, 0700) != 0 && errno != EEXIST)
		fprintf(stderr, "cannot create %s: %s\n", tmp_dir, strerror(errno));
}

/* A fresh file name in the temp dir: PID and a counter make it unique. */
static void tmp_path(char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/test_conf_%ld_%d.ini", tmp_dir, (long)getpid(), ++file_counter);
}

/* Writes len bytes to path, readable by the owner only (no "secrets exposed" warning). */
static void write_bytes(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ_INT(write(fd, text, len), len);
	close(fd);
}

struct cload {
	char path[600];
	struct collector_conf c;
	struct sp_conf_errors e;
	int rc;
};

struct aload {
	char path[600];
	struct agent_conf c;
	struct sp_conf_errors e;
	int rc;
};

/* Loads text as a collector config file into a freshly initialised l->c. */
static void cload_bytes(struct cload *l, const char *text, size_t len)
{
	memset(l, 0, sizeof(*l));
	tmp_path(l->path, sizeof(l->path));
	write_bytes(l->path, text, len);
	CHECK_EQ_INT(collector_conf_init(&l->c), 0);
	l->rc = collector_conf_load(&l->c, l->path, &l->e);
	unlink(l->path);
}

static void cload(struct cload *l, const char *text)
{
	cload_bytes(l, text, strlen(text));
}

static void cload_done(struct cload *l)
{
	collector_conf_free(&l->c);
	sp_conf_errors_free(&l->e);
}

static void aload(struct aload *l, const char *text)
{
	memset(l, 0, sizeof(*l));
	tmp_path(l->path, sizeof(l->path));
	write_bytes(l->path, text, strlen(text));
	CHECK_EQ_INT(agent_conf_init(&l->c), 0);
	l->rc = agent_conf_load(&l->c, l->path, &l->e);
	unlink(l->path);
}

static void aload_done(struct aload *l)
{
	agent_conf_free(&l->c);
	sp_conf_errors_free(&l->e);
}

static void dump_errors(const struct sp_conf_errors *e)
{
	fprintf(stderr, "  (%zu error lines)\n", e->count);
	for (size_t i = 0; i < e->count; i++)
		fprintf(stderr, "  | %s\n", e->lines[i]);
}

#define ANY_LINE (-1)

/* True if line starts with "PATH:N: HEAD" for some line number N. */
static bool starts_any_line(const char *line, const char *path, const char *head)
{
	size_t n = strlen(path);
	if (strncmp(line, path, n) != 0 || line[n] != ':')
		return false;
	line += n + 1;
	if (*line < '1' || *line > '9')
		return false;
	while (*line >= '0' && *line <= '9')
		line++;
	return strncmp(line, ": ", 2) == 0 && strncmp(line + 2, head, strlen(head)) == 0;
}

/*
 * True if errs holds a line that starts with "PATH:LINE: HEAD" (LINE 0:
 * "PATH: HEAD", for errors of the whole file; ANY_LINE: any line number)
 * and contains frag (NULL: anything). Dumps errs otherwise.
 */
static bool has_error(const struct sp_conf_errors *e, const char *path, int line,
		      const char *head, const char *frag)
{
	char prefix[1024];
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: %s", path, line, head);
	else if (line == 0)
		snprintf(prefix, sizeof(prefix), "%s: %s", path, head);
	else
		snprintf(prefix, sizeof(prefix), "%s:*: %s", path, head);
	for (size_t i = 0; i < e->count; i++) {
		bool start = line == ANY_LINE ? starts_any_line(e->lines[i], path, head)
					      : strncmp(e->lines[i], prefix, strlen(prefix)) == 0;
		if (start && (frag == NULL || strstr(e->lines[i], frag) != NULL))
			return true;
	}
	fprintf(stderr, "  expected an error starting \"%s\"%s%s%s\n", prefix,
		frag ? " containing \"" : "", frag ? frag : "", frag ? "\"" : "");
	dump_errors(e);
	return false;
}

/* True if no error line contains s. */
static bool no_error_contains(const struct sp_conf_errors *e, const char *s)
{
	for (size_t i = 0; i < e->count; i++) {
		if (strstr(e->lines[i], s) != NULL) {
			fprintf(stderr, "  error line leaks \"%s\": %s\n", s, e->lines[i]);
			return false;
		}
	}
	return true;
}

static const struct collector_rule_conf *find_rule(const struct collector_conf *c,
						   const char *site, const char *rule)
{
	for (size_t i = 0; i < c->nrules; i++) {
		const struct collector_rule_conf *r = &c->rules[i];
		bool same_site = site == NULL ? r->site == NULL
					      : r->site != NULL && strcmp(site, r->site) == 0;
		if (strcmp(r->rule, rule) == 0 && same_site)
			return r;
	}
	return NULL;
}

/* ---------------------------------------------------------------- contract examples */

static void test_contract_collector_example(void)
{
	struct cload l;
	struct sp_conf_errors pre = {NULL, 0};
	const struct sp_conf_schema *s = &collector_conf_schema;

	memset(&l, 0, sizeof(l));
	tmp_path(l.path, sizeof(l.path));
	write_bytes(l.path, contract_collector, strlen(contract_collector));
	CHECK_EQ_INT(collector_conf_init(&l.c), 0);
	/* values different from the defaults first, so the file must be what sets them */
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "mqtt", "uri", "tcp://10.9.9.9:1999", "t", &pre), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "mqtt", "client_id", "other", "t", &pre), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "store", "path", "/nowhere.db", "t", &pre), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "api", "listen", "0.0.0.0:1", "t", &pre), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "city", "period_s", "60", "t", &pre), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "city", "grace_s", "1", "t", &pre), 0);
	CHECK_EQ_INT(pre.count, 0);
	l.rc = collector_conf_load(&l.c, l.path, &l.e);
	unlink(l.path);

	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	if (l.e.count)
		dump_errors(&l.e);
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://127.0.0.1:1883");
	CHECK_EQ_STR(l.c.mqtt.client_id, "sitepulse-collector");
	CHECK_EQ_STR(l.c.store.path, "sitepulse.db");
	CHECK_EQ_STR(l.c.api.listen, "127.0.0.1:8080");
	CHECK_EQ_INT(l.c.api.viewer_tokens.count, 2);
	if (l.c.api.viewer_tokens.count == 2) {
		CHECK_EQ_STR(l.c.api.viewer_tokens.items[0], "token1");
		CHECK_EQ_STR(l.c.api.viewer_tokens.items[1], "token2");
	}
	CHECK_EQ_INT(l.c.api.operator_tokens.count, 1);
	if (l.c.api.operator_tokens.count == 1)
		CHECK_EQ_STR(l.c.api.operator_tokens.items[0], "token3");
	CHECK_EQ_STR(l.c.smtp.url, "smtp://127.0.0.1:2525");
	CHECK_EQ_STR(l.c.smtp.from, "sitepulse@example.org");
	CHECK_EQ_INT(l.c.smtp.to.count, 1);
	if (l.c.smtp.to.count == 1)
		CHECK_EQ_STR(l.c.smtp.to.items[0], "ops@example.org");
	CHECK_EQ_STR(l.c.city.url, "https://city.example.org/api/summaries");
	CHECK_EQ_STR(l.c.city.token, "secret");
	CHECK_EQ_INT(l.c.city.period_s, 3600);
	CHECK_EQ_INT(l.c.city.grace_s, 600);
	CHECK_EQ_INT(l.c.nsites, 1);
	if (l.c.nsites == 1) {
		CHECK_EQ_STR(l.c.sites[0].site, "hp-ruijin-07");
		CHECK_EQ_STR(l.c.sites[0].timezone, "Asia/Shanghai");
		CHECK_EQ_INT(l.c.sites[0].mail_to.count, 1);
		if (l.c.sites[0].mail_to.count == 1)
			CHECK_EQ_STR(l.c.sites[0].mail_to.items[0], "crew7@example.org");
	}
	CHECK_EQ_INT(l.c.nrules, 1);
	const struct collector_rule_conf *r = find_rule(&l.c, NULL, "lift.trapped");
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ_INT(r->hold_s, 10);
		CHECK(r->enabled);
		CHECK_EQ_INT(r->severity, -1);
	}
	sp_conf_errors_free(&pre);
	cload_done(&l);
}

static void test_contract_agent_example(void)
{
	struct aload l;
	struct sp_conf_errors pre = {NULL, 0};
	const struct sp_conf_schema *s = &agent_conf_schema;

	memset(&l, 0, sizeof(l));
	tmp_path(l.path, sizeof(l.path));
	write_bytes(l.path, contract_agent, strlen(contract_agent));
	CHECK_EQ_INT(agent_conf_init(&l.c), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "agent", "spool_path", "/other.db", "t", &pre), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "mqtt", "uri", "ssl://broker:8883", "t", &pre), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "sim", "seed", "77", "t", &pre), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "sim", "lifts", "9", "t", &pre), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "sim", "chargers", "9", "t", &pre), 0);
	CHECK_EQ_INT(sp_conf_set(s, &l.c, "sim", "ports", "9", "t", &pre), 0);
	CHECK_EQ_INT(pre.count, 0);
	l.rc = agent_conf_load(&l.c, l.path, &l.e);
	unlink(l.path);

	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	if (l.e.count)
		dump_errors(&l.e);
	CHECK_EQ_STR(l.c.agent.site, "hp-ruijin-07");
	CHECK_EQ_STR(l.c.agent.id, "gw-1");
	CHECK_EQ_STR(l.c.agent.spool_path, "spool.db");
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://127.0.0.1:1883");
	CHECK_EQ_INT(l.c.sim.seed, 1);
	CHECK_EQ_INT(l.c.sim.lifts, 2);
	CHECK_EQ_INT(l.c.sim.chargers, 2);
	CHECK_EQ_INT(l.c.sim.ports, 12);
	CHECK_EQ_INT(l.c.nscenarios, 0);
	sp_conf_errors_free(&pre);
	aload_done(&l);
}

/* ---------------------------------------------------------------- defaults */

static void test_collector_defaults_when_absent(void)
{
	struct cload l;
	cload(&l, "[mqtt]\nclient_id = c-2\n[api]\nthreads = 4\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_STR(l.c.mqtt.client_id, "c-2");
	CHECK_EQ_INT(l.c.api.threads, 4);
	/* everything else keeps its table default */
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://127.0.0.1:1883");
	CHECK_EQ_STR(l.c.mqtt.password, "");
	CHECK(!l.c.mqtt.tls_insecure);
	CHECK_EQ_INT(l.c.mqtt.keepalive_s, 30);
	CHECK_EQ_STR(l.c.store.path, "sitepulse.db");
	CHECK(l.c.store.sync_full);
	CHECK_EQ_INT(l.c.store.gap_window_s, 600);
	CHECK_EQ_INT(l.c.store.batch_max, 2000);
	CHECK_EQ_STR(l.c.api.listen, "127.0.0.1:8080");
	CHECK_EQ_INT(l.c.api.viewer_tokens.count, 0);
	CHECK_EQ_INT(l.c.api.operator_tokens.count, 0);
	CHECK_EQ_INT(l.c.api.max_connections, 512);
	CHECK_EQ_STR(l.c.smtp.url, "");
	CHECK_EQ_INT(l.c.smtp.to.count, 0);
	CHECK_EQ_INT(l.c.city.period_s, 3600);
	CHECK_EQ_INT(l.c.city.grace_s, 600);
	CHECK_EQ_INT(l.c.log.level, 2); /* "info" */
	CHECK_EQ_INT(l.c.nsites, 0);
	CHECK_EQ_INT(l.c.nrules, 0);
	cload_done(&l);
}

static void test_agent_defaults_when_absent(void)
{
	struct aload l;
	aload(&l, AGENT_MIN "[sim]\nlifts = 3\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_INT(l.c.sim.lifts, 3);
	CHECK_EQ_STR(l.c.agent.spool_path, "spool.db");
	CHECK_EQ_INT(l.c.agent.spool_max_mb, 64);
	CHECK(l.c.agent.spool_sync_full);
	CHECK_EQ_STR(l.c.agent.journal, "");
	CHECK_EQ_INT(l.c.agent.batch_ms, 1000);
	CHECK_EQ_INT(l.c.agent.batch_max, 200);
	CHECK_EQ_STR(l.c.agent.fw, "sitepulse-agent " SP_VERSION);
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://127.0.0.1:1883");
	CHECK_EQ_STR(l.c.mqtt.client_id, "");
	CHECK_EQ_INT(l.c.mqtt.max_unacked, 2000);
	CHECK_EQ_INT(l.c.sim.seed, 1);
	CHECK_EQ_INT(l.c.sim.chargers, 2);
	CHECK_EQ_INT(l.c.sim.ports, 12);
	CHECK_EQ_INT(l.c.sim.floor_min, 1);
	CHECK_EQ_INT(l.c.sim.floor_max, 7);
	CHECK(l.c.sim.rated_speed == 1.0);
	CHECK(l.c.sim.port_limit_w == 1000.0);
	CHECK(l.c.sim.time_scale == 1.0);
	CHECK_EQ_INT(l.c.log.level, 2);
	aload_done(&l);
}

/*
 * Every default in every fixed section is accepted by its own key (set
 * again through sp_conf_set), and sp_conf_defaults succeeds.
 */
static void check_fixed_defaults(const struct sp_conf_schema *s, void *root)
{
	struct sp_conf_errors e = {NULL, 0};
	CHECK_EQ_INT(sp_conf_defaults(s, root), 0);
	for (size_t i = 0; i < s->nsections; i++) {
		const struct sp_conf_section *sec = &s->sections[i];
		if (sec->instance)
			continue;
		for (size_t j = 0; j < sec->nkeys; j++) {
			const struct sp_conf_key *k = &sec->keys[j];
			if (k->def == NULL)
				continue;
			int rc = sp_conf_set(s, root, sec->name, k->name, k->def, "default", &e);
			if (rc != 0)
				fprintf(stderr, "  %s [%s] %s: default \"%s\" rejected\n",
					s->program, sec->name, k->name, k->def);
			CHECK_EQ_INT(rc, 0);
		}
	}
	CHECK_EQ_INT(e.count, 0);
	sp_conf_errors_free(&e);
	sp_conf_free(s, root);
}

static void test_defaults_are_valid(void)
{
	struct collector_conf cc;
	struct agent_conf ac;
	memset(&cc, 0, sizeof(cc));
	check_fixed_defaults(&collector_conf_schema, &cc);
	memset(&ac, 0, sizeof(ac));
	check_fixed_defaults(&agent_conf_schema, &ac);

	/* instance sections get their defaults when created: a bad one would be an error */
	struct cload l;
	cload(&l, "[site.s1]\nmail_to =\n[rule.lift.mode]\nenabled = true\n"
		  "[site.s1.rule.lift.mode]\nenabled = true\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_INT(l.c.nsites, 1);
	if (l.c.nsites == 1)
		CHECK_EQ_STR(l.c.sites[0].timezone, "Asia/Shanghai");
	const struct collector_rule_conf *r = find_rule(&l.c, "s1", "lift.mode");
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ_INT(r->hold_s, -1); /* not said: the rule's own */
		CHECK_EQ_INT(r->enabled, 1);
		CHECK_EQ_INT(r->severity, -1);
		CHECK(isnan(r->threshold) && isnan(r->hysteresis));
	}
	cload_done(&l);

	struct aload a;
	aload(&a, AGENT_MIN "[scenario.quiet]\nsituation = silent\n");
	CHECK_EQ_INT(a.rc, 0);
	CHECK_EQ_INT(a.e.count, 0);
	CHECK_EQ_INT(a.c.nscenarios, 1);
	CHECK_EQ_INT(a.c.scenarios[0].port, 0);
	CHECK_EQ_INT(a.c.scenarios[0].at_s, 0);
	CHECK_EQ_INT(a.c.scenarios[0].duration_s, 0);
	CHECK_EQ_STR(a.c.scenarios[0].dev, "");
	aload_done(&a);
}

static void test_empty_file(void)
{
	struct cload c;
	cload(&c, "");
	CHECK_EQ_INT(c.rc, 0);
	CHECK_EQ_INT(c.e.count, 0);
	cload_done(&c);

	/* the agent's only errors are its two required keys */
	struct aload a;
	aload(&a, "");
	CHECK_EQ_INT(a.rc, SP_ECONFIG);
	CHECK_EQ_INT(a.e.count, 2);
	CHECK(has_error(&a.e, a.path, 0, "[agent] site: ", "required"));
	CHECK(has_error(&a.e, a.path, 0, "[agent] id: ", "required"));
	aload_done(&a);
}

/* ---------------------------------------------------------------- one error kind each */

static void test_unknown_key(void)
{
	struct cload l;
	cload(&l, "[mqtt]\nuri = tcp://h:1\nurl = tcp://h:1\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 1);
	CHECK(has_error(&l.e, l.path, 3, "[mqtt] url: ", "unknown key"));
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://h:1");
	cload_done(&l);
}

static void test_unknown_section(void)
{
	struct cload l;
	/* the error names the [section] header's line; its keys are not reported again */
	cload(&l, "[mqtt]\nuri = tcp://h:1\n[mqttt]\nuri = tcp://h:2\nclient_id = x\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 1);
	CHECK(has_error(&l.e, l.path, 3, "[mqttt]", "unknown section"));
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://h:1");
	cload_done(&l);
}

static void test_unknown_section_without_keys(void)
{
	/* a misspelt header with nothing under it is still a bad line */
	struct cload l;
	cload(&l, "[mqtt]\nuri = tcp://h:1\n[bogus]\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 1);
	CHECK(has_error(&l.e, l.path, 3, "[bogus]", "unknown section"));
	cload_done(&l);
}

static void test_repeated_section_allowed(void)
{
	struct cload l;
	cload(&l, "[mqtt]\nuri = tcp://h:1\n[store]\npath = a.db\n[mqtt]\nclient_id = again\n"
		  "[site.s1]\ntimezone = UTC\n[store]\nbatch_max = 5\n"
		  "[site.s1]\nmail_to = a@b.c\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://h:1");
	CHECK_EQ_STR(l.c.mqtt.client_id, "again");
	CHECK_EQ_STR(l.c.store.path, "a.db");
	CHECK_EQ_INT(l.c.store.batch_max, 5);
	CHECK_EQ_INT(l.c.nsites, 1);
	if (l.c.nsites == 1) {
		CHECK_EQ_STR(l.c.sites[0].timezone, "UTC");
		CHECK_EQ_INT(l.c.sites[0].mail_to.count, 1);
	}
	cload_done(&l);
}

static void test_repeated_key(void)
{
	struct cload l;
	/* in one section, and across two headers of the same section */
	cload(&l, "[mqtt]\nuri = tcp://h:1\nuri = tcp://h:2\n[store]\npath = a.db\n[mqtt]\n"
		  "uri = tcp://h:3\n[site.s1]\ntimezone = UTC\ntimezone = UTC\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 3);
	CHECK(has_error(&l.e, l.path, 3, "[mqtt] uri: ", "more than once"));
	CHECK(has_error(&l.e, l.path, 7, "[mqtt] uri: ", "more than once"));
	CHECK(has_error(&l.e, l.path, 10, "[site.s1] timezone: ", "more than once"));
	cload_done(&l);
}

static void test_int_out_of_range(void)
{
	struct cload l;
	cload(&l, "[city]\nperiod_s = 59\ngrace_s = 86401\n[api]\nthreads = 0\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 3);
	CHECK(has_error(&l.e, l.path, 2, "[city] period_s: ", "\"59\""));
	CHECK(has_error(&l.e, l.path, 2, "[city] period_s: ", "60..86400"));
	CHECK(has_error(&l.e, l.path, 3, "[city] grace_s: ", "0..86400"));
	CHECK(has_error(&l.e, l.path, 5, "[api] threads: ", "1..64"));
	CHECK_EQ_INT(l.c.city.period_s, 3600); /* unchanged */
	cload_done(&l);

	/* the bounds themselves are accepted */
	cload(&l, "[city]\nperiod_s = 60\ngrace_s = 86400\n[api]\nthreads = 64\n");
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_INT(l.c.city.period_s, 60);
	CHECK_EQ_INT(l.c.city.grace_s, 86400);
	CHECK_EQ_INT(l.c.api.threads, 64);
	cload_done(&l);

	/* negative bounds and doubles (agent) */
	struct aload a;
	aload(&a, AGENT_MIN "[sim]\nfloor_min = -51\nrated_speed = 4.5\nfloor_max = -1\n"
			    "floor_min = -50\n");
	CHECK_EQ_INT(a.rc, SP_ECONFIG);
	CHECK(has_error(&a.e, a.path, 5, "[sim] floor_min: ", "-50..300"));
	CHECK(has_error(&a.e, a.path, 6, "[sim] rated_speed: ", "0.1..4"));
	CHECK(has_error(&a.e, a.path, 8, "[sim] floor_min: ", "more than once"));
	CHECK_EQ_INT(a.c.sim.floor_max, -1);
	aload_done(&a);
}

static void test_int_not_numeric(void)
{
	struct cload l;
	cload(&l, "[store]\nbatch_max = ten\nreaders = 2x\nqueue_mb =\ncache_mb = 0x10\n"
		  "gap_window_s = 99999999999999999999999\ntimeout_s = 1.5\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 6);
	CHECK(has_error(&l.e, l.path, 2, "[store] batch_max: ", "\"ten\""));
	CHECK(has_error(&l.e, l.path, 2, "[store] batch_max: ", "integer 1..100000"));
	CHECK(has_error(&l.e, l.path, 3, "[store] readers: ", "\"2x\""));
	CHECK(has_error(&l.e, l.path, 4, "[store] queue_mb: ", "bad value"));
	CHECK(has_error(&l.e, l.path, 5, "[store] cache_mb: ", "\"0x10\""));
	CHECK(has_error(&l.e, l.path, 6, "[store] gap_window_s: ", "bad value"));
	CHECK(has_error(&l.e, l.path, 7, "[store] timeout_s: ", "unknown key"));
	CHECK_EQ_INT(l.c.store.batch_max, 2000);
	CHECK_EQ_INT(l.c.store.readers, 2);
	cload_done(&l);

	struct aload a;
	aload(&a, AGENT_MIN "[sim]\nrated_speed = fast\ntime_scale = nan\n");
	CHECK_EQ_INT(a.rc, SP_ECONFIG);
	CHECK(has_error(&a.e, a.path, 5, "[sim] rated_speed: ", "\"fast\""));
	CHECK(has_error(&a.e, a.path, 6, "[sim] time_scale: ", "bad value"));
	aload_done(&a);
}

static void test_bad_enum_and_bool(void)
{
	struct cload l;
	cload(&l, "[log]\nlevel = verbose\n[store]\nsync_full = maybe\n[rule.lift.trapped]\n"
		  "severity = fatal\nenabled = 2\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 4);
	CHECK(has_error(&l.e, l.path, 2, "[log] level: ", "\"verbose\""));
	CHECK(has_error(&l.e, l.path, 2, "[log] level: ", "error, warn, info, debug"));
	CHECK(has_error(&l.e, l.path, 4, "[store] sync_full: ", "true or false"));
	CHECK(has_error(&l.e, l.path, 6, "[rule.lift.trapped] severity: ",
			"critical, major, minor, warning"));
	CHECK(has_error(&l.e, l.path, 7, "[rule.lift.trapped] enabled: ", "\"2\""));
	CHECK_EQ_INT(l.c.log.level, 2);
	CHECK(l.c.store.sync_full);
	cload_done(&l);
}

static void test_good_enum_and_bool_spellings(void)
{
	struct cload l;
	cload(&l, "[log]\nlevel = debug\n[store]\nsync_full = off\n[mqtt]\ntls_insecure = YES\n"
		  "[rule.lift.mode]\nenabled = 0\nseverity = minor\n[rule.lift.fault]\nenabled = On\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_INT(l.c.log.level, 3);
	CHECK(!l.c.store.sync_full);
	CHECK(l.c.mqtt.tls_insecure);
	const struct collector_rule_conf *a = find_rule(&l.c, NULL, "lift.mode");
	const struct collector_rule_conf *b = find_rule(&l.c, NULL, "lift.fault");
	CHECK(a != NULL && a->enabled == 0 && a->severity == 2);
	CHECK(b != NULL && b->enabled == 1 && b->severity == -1);
	cload_done(&l);
}

static void test_bad_identifier(void)
{
	struct aload l;
	aload(&l, "[agent]\nsite = HP-1\nid = -gw\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, 2, "[agent] site: ", "\"HP-1\""));
	CHECK(has_error(&l.e, l.path, 2, "[agent] site: ", "identifier"));
	CHECK(has_error(&l.e, l.path, 3, "[agent] id: ", "\"-gw\""));
	aload_done(&l);

	/* 64 characters are an identifier, 65 are not */
	char text[512];
	snprintf(text, sizeof(text), "[agent]\nsite = %064d\nid = %065d\n", 0, 0);
	aload(&l, text);
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 1);
	CHECK(has_error(&l.e, l.path, 3, "[agent] id: ", "bad value"));
	CHECK(l.c.agent.site != NULL && strlen(l.c.agent.site) == 64);
	aload_done(&l);

	/*
	 * a [site.NAME] whose NAME is not an identifier (a section error: which
	 * line it names is checked by test_unknown_section)
	 */
	struct cload c;
	cload(&c, "[site.Ruijin]\ntimezone = UTC\n");
	CHECK_EQ_INT(c.rc, SP_ECONFIG);
	CHECK_EQ_INT(c.e.count, 1);
	CHECK(has_error(&c.e, c.path, ANY_LINE, "[site.Ruijin]", "identifier"));
	CHECK_EQ_INT(c.c.nsites, 0);
	cload_done(&c);
}

static void test_bad_mqtt_uri(void)
{
	static const char *const bad[] = {
		"127.0.0.1:1883", "http://127.0.0.1:1883", "tcp://127.0.0.1", "tcp://127.0.0.1:0",
		"tcp://:1883",    "tcp://h:65536",         "tcp://h:x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256];
		struct cload l;
		snprintf(text, sizeof(text), "[store]\npath = x.db\n[mqtt]\nuri = %s\n", bad[i]);
		cload(&l, text);
		CHECK_EQ_INT(l.rc, SP_ECONFIG);
		CHECK_EQ_INT(l.e.count, 1);
		CHECK(has_error(&l.e, l.path, 4, "[mqtt] uri: ", bad[i]));
		CHECK(has_error(&l.e, l.path, 4, "[mqtt] uri: ", "tcp://HOST:PORT"));
		CHECK_EQ_STR(l.c.mqtt.uri, "tcp://127.0.0.1:1883");
		cload_done(&l);
	}
	static const char *const good[] = {"tcp://broker:1883", "ssl://broker.example.org:8883",
					   "mqtt://[::1]:1883", "mqtts://10.0.0.1:8883"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char text[256];
		struct cload l;
		snprintf(text, sizeof(text), "[mqtt]\nuri = %s\n", good[i]);
		cload(&l, text);
		CHECK_EQ_INT(l.e.count, 0);
		CHECK_EQ_STR(l.c.mqtt.uri, good[i]);
		cload_done(&l);
	}
}

static void test_bad_listen(void)
{
	static const char *const bad[] = {"127.0.0.1", "127.0.0.1:",     "127.0.0.1:http",
					  ":8080",     "127.0.0.1:65536", "::1:8080",
					  "[::1]8080", "[]:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256];
		struct cload l;
		snprintf(text, sizeof(text), "[api]\n\nlisten = %s\n", bad[i]);
		cload(&l, text);
		CHECK_EQ_INT(l.rc, SP_ECONFIG);
		CHECK_EQ_INT(l.e.count, 1);
		CHECK(has_error(&l.e, l.path, 3, "[api] listen: ", "HOST:PORT"));
		CHECK_EQ_STR(l.c.api.listen, "127.0.0.1:8080");
		cload_done(&l);
	}
	struct cload l;
	cload(&l, "[api]\nlisten = [::1]:9090\n");
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_STR(l.c.api.listen, "[::1]:9090");
	cload_done(&l);
}

static void test_bad_timezone(void)
{
	struct cload l;
	cload(&l, "[site.a]\ntimezone = Mars/Olympus_Mons\n[site.b]\ntimezone = ../../etc/passwd\n"
		  "[site.c]\ntimezone = /etc/localtime\n[site.d]\ntimezone = Europe/Berlin\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 3);
	CHECK(has_error(&l.e, l.path, 2, "[site.a] timezone: ", "\"Mars/Olympus_Mons\""));
	CHECK(has_error(&l.e, l.path, 2, "[site.a] timezone: ", "IANA"));
	CHECK(has_error(&l.e, l.path, 4, "[site.b] timezone: ", "IANA"));
	CHECK(has_error(&l.e, l.path, 6, "[site.c] timezone: ", "IANA"));
	CHECK_EQ_INT(l.c.nsites, 4);
	if (l.c.nsites == 4) {
		CHECK_EQ_STR(l.c.sites[0].timezone, "Asia/Shanghai"); /* default kept */
		CHECK_EQ_STR(l.c.sites[3].timezone, "Europe/Berlin");
	}
	cload_done(&l);
}

static void test_key_outside_section(void)
{
	struct cload l;
	cload(&l, "; leading comment\nuri = tcp://h:1\n[mqtt]\nclient_id = c\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 1);
	CHECK(has_error(&l.e, l.path, 2, "uri: ", "outside"));
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://127.0.0.1:1883");
	CHECK_EQ_STR(l.c.mqtt.client_id, "c");
	cload_done(&l);
}

/* A UTF-8 byte order mark opening the file is skipped; anywhere else it is no blank. */
static void test_utf8_bom(void)
{
	struct cload l;
	cload(&l, "\xEF\xBB\xBF[mqtt]\nuri = tcp://h:1\nclient_id = bom\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://h:1");
	CHECK_EQ_STR(l.c.mqtt.client_id, "bom");
	cload_done(&l);

	cload(&l, "\xEF\xBB\xBF; a comment first\n[mqtt]\nclient_id = bom\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_STR(l.c.mqtt.client_id, "bom");
	cload_done(&l);

	cload(&l, "[mqtt]\n\xEF\xBB\xBF[store]\npath = p.db\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, 2, "syntax error", NULL));
	cload_done(&l);
}

static void test_syntax_error(void)
{
	struct cload l;
	cload(&l, "[mqtt]\nclient_id = c\njust some words\n[store\npath = p.db\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 2);
	CHECK(has_error(&l.e, l.path, 3, "syntax error", NULL));
	CHECK(has_error(&l.e, l.path, 4, "syntax error", NULL));
	/* the keys under a broken header are skipped, not filed under the previous section */
	CHECK(!has_error(&l.e, l.path, 5, "path", NULL));
	CHECK_EQ_STR(l.c.store.path, "sitepulse.db");
	CHECK_EQ_STR(l.c.mqtt.client_id, "c");
	cload_done(&l);

	cload(&l, "[mqtt]\nclient_id = c\njust some words\n[store]\npath = p.db\n");
	CHECK_EQ_INT(l.e.count, 1);
	CHECK(has_error(&l.e, l.path, 3, "syntax error", NULL));
	CHECK_EQ_STR(l.c.store.path, "p.db");
	cload_done(&l);
}

static void test_line_too_long(void)
{
	char text[2048], val[600];
	struct cload l;

	/* "path = " is 7 characters: 191 more make 198, the longest line accepted */
	memset(val, 'p', 191);
	val[191] = '\0';
	snprintf(text, sizeof(text), "[store]\npath = %s\n", val);
	CHECK_EQ_INT(strlen(text), 8 + 198 + 1);
	cload(&l, text);
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_STR(l.c.store.path, val);
	cload_done(&l);

	/* 199 characters: rejected, and the next lines keep their numbers */
	val[192] = '\0';
	val[191] = 'p';
	snprintf(text, sizeof(text), "[store]\npath = %s\nbatch_max = 7\n[api]\nthreads = 99\n",
		 val);
	cload(&l, text);
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 2);
	CHECK(has_error(&l.e, l.path, 2, "line too long", "198"));
	CHECK(has_error(&l.e, l.path, 5, "[api] threads: ", "1..64"));
	CHECK_EQ_STR(l.c.store.path, "sitepulse.db");
	CHECK_EQ_INT(l.c.store.batch_max, 7);
	cload_done(&l);

	/* far longer than inih's buffer: one error, not a split line */
	memset(val, 'q', 500);
	val[500] = '\0';
	snprintf(text, sizeof(text), "[store]\npath = %s\n[mqtt]\nuri = bad\n", val);
	cload(&l, text);
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 2);
	CHECK(has_error(&l.e, l.path, 2, "line too long", NULL));
	CHECK(has_error(&l.e, l.path, 4, "[mqtt] uri: ", "\"bad\""));
	CHECK_EQ_STR(l.c.store.path, "sitepulse.db");
	cload_done(&l);
}

static void test_missing_required_key(void)
{
	struct aload l;
	aload(&l, "[agent]\nsite = hp-1\n[sim]\nlifts = 1\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 1);
	CHECK(has_error(&l.e, l.path, 0, "[agent] id: ", "required key missing"));
	CHECK_EQ_STR(l.c.agent.site, "hp-1");
	aload_done(&l);

	aload(&l, "[agent]\nid = gw-1\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 1);
	CHECK(has_error(&l.e, l.path, 0, "[agent] site: ", "required key missing"));
	aload_done(&l);

	/* a required key of an instance section */
	aload(&l, AGENT_MIN "[scenario.trap]\ndev = lift-1\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 1);
	CHECK(has_error(&l.e, l.path, 0, "[scenario.trap] situation: ", "required key missing"));
	aload_done(&l);
}

static void test_all_errors_in_one_load(void)
{
	struct cload l;
	cload(&l, "[mqtt]\n"                 /* 1 */
		  "uri = ftp://h:1\n"        /* 2: bad uri */
		  "keepalive_s = 1\n"        /* 3: out of range */
		  "colour = blue\n"          /* 4: unknown key */
		  "[store]\n"                /* 5 */
		  "sync_full = perhaps\n"    /* 6: bad boolean */
		  "sync_full = true\n"       /* 7: repeated */
		  "oops\n"                   /* 8: syntax error */
		  "[api]\n"                  /* 9 */
		  "listen = nowhere\n");     /* 10: bad host:port */
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 7);
	CHECK(has_error(&l.e, l.path, 2, "[mqtt] uri: ", "ftp://h:1"));
	CHECK(has_error(&l.e, l.path, 3, "[mqtt] keepalive_s: ", "5..3600"));
	CHECK(has_error(&l.e, l.path, 4, "[mqtt] colour: ", "unknown key"));
	CHECK(has_error(&l.e, l.path, 6, "[store] sync_full: ", "true or false"));
	CHECK(has_error(&l.e, l.path, 7, "[store] sync_full: ", "more than once"));
	CHECK(has_error(&l.e, l.path, 8, "syntax error", NULL));
	CHECK(has_error(&l.e, l.path, 10, "[api] listen: ", "HOST:PORT"));
	/* reported in file order */
	if (l.e.count == 7) {
		char want[700];
		snprintf(want, sizeof(want), "%s:2: ", l.path);
		CHECK(strncmp(l.e.lines[0], want, strlen(want)) == 0);
		snprintf(want, sizeof(want), "%s:10: ", l.path);
		CHECK(strncmp(l.e.lines[6], want, strlen(want)) == 0);
	}
	cload_done(&l);

	/* the agent: file errors and its cross-key rules together */
	struct aload a;
	aload(&a, "[agent]\nsite = hp-1\nbatch_max = 0\n[sim]\nfloor_min = 9\nports = 65\n"
		  "[mqtt]\nhost = h\n");
	CHECK_EQ_INT(a.rc, SP_ECONFIG);
	CHECK_EQ_INT(a.e.count, 5);
	CHECK(has_error(&a.e, a.path, 3, "[agent] batch_max: ", "1..1000"));
	CHECK(has_error(&a.e, a.path, 6, "[sim] ports: ", "1..64"));
	CHECK(has_error(&a.e, a.path, 0, "[agent] id: ", "required"));
	CHECK(has_error(&a.e, a.path, 5, "[sim] floor_min: ", "below floor_max"));
	CHECK(has_error(&a.e, a.path, 8, "[mqtt] host: ", "unknown key"));
	aload_done(&a);
}

/* ---------------------------------------------------------------- file syntax */

static void test_indented_keys(void)
{
	struct cload l;
	cload(&l, "  [mqtt]\n    uri = tcp://h:1\n\tclient_id = tabbed\n \t keepalive_s = 60\n"
		  "[store]\n   path = p.db\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://h:1");
	CHECK_EQ_STR(l.c.mqtt.client_id, "tabbed");
	CHECK_EQ_INT(l.c.mqtt.keepalive_s, 60);
	CHECK_EQ_STR(l.c.store.path, "p.db");
	cload_done(&l);
}

static void test_crlf_line_endings(void)
{
	struct cload l;
	cload(&l, "[mqtt]\r\nuri = tcp://h:1\r\nclient_id = crlf   ; comment\r\n\r\n"
		  "[api]\r\nviewer_tokens = a,b\r\nthreads = 0\r\n[store]\r\npath = p.db");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 1);
	CHECK(has_error(&l.e, l.path, 7, "[api] threads: ", "\"0\""));
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://h:1");
	CHECK_EQ_STR(l.c.mqtt.client_id, "crlf");
	CHECK_EQ_INT(l.c.api.viewer_tokens.count, 2);
	if (l.c.api.viewer_tokens.count == 2)
		CHECK_EQ_STR(l.c.api.viewer_tokens.items[1], "b");
	CHECK_EQ_STR(l.c.store.path, "p.db"); /* last line without a newline */
	cload_done(&l);
}

static void test_comments(void)
{
	struct cload l;
	cload(&l, "# hash comment\n; semicolon comment\n[mqtt]\n# uri = tcp://h:9\n"
		  "  ; client_id = indented-comment\nclient_id = c-1 ; inline comment\n"
		  "username = user#1\nkeepalive_s = 45\t; tab before the comment\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://127.0.0.1:1883");
	CHECK_EQ_STR(l.c.mqtt.client_id, "c-1");
	CHECK_EQ_STR(l.c.mqtt.username, "user#1"); /* '#' without a blank before it is kept */
	CHECK_EQ_INT(l.c.mqtt.keepalive_s, 45);
	cload_done(&l);
	/* '#' after a blank starts an inline comment too (CONTRACT §7: ";" or "#" comments) */
	cload(&l, "[mqtt]  # the broker\nuri = tcp://h:1   # plain TCP\nclient_id = c-2\t# tab\n"
		  "username = a#b # c\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_STR(l.c.mqtt.uri, "tcp://h:1");
	CHECK_EQ_STR(l.c.mqtt.client_id, "c-2");
	CHECK_EQ_STR(l.c.mqtt.username, "a#b");
	cload_done(&l);
}

/*
 * A path that opens but cannot be read (a directory) is an error. It read as an
 * empty file: the program reported "configuration OK" and ran on every default.
 */
static void test_unreadable_file(void)
{
	struct sp_conf_errors e = {NULL, 0};
	struct collector_conf c;
	struct agent_conf a;

	CHECK_EQ_INT(collector_conf_init(&c), 0);
	CHECK_EQ_INT(collector_conf_load(&c, tmp_dir, &e), SP_ECONFIG);
	CHECK_EQ_INT(e.count, 1);
	CHECK(has_error(&e, tmp_dir, 0, "cannot read", NULL));
	collector_conf_free(&c);
	sp_conf_errors_free(&e);

	CHECK_EQ_INT(agent_conf_init(&a), 0);
	CHECK_EQ_INT(agent_conf_load(&a, tmp_dir, &e), SP_ECONFIG);
	CHECK(has_error(&e, tmp_dir, 0, "cannot read", NULL));
	agent_conf_free(&a);
	sp_conf_errors_free(&e);
}

static void test_list_values(void)
{
	struct cload l;
	cload(&l, "[api]\nviewer_tokens =  t1 ,t2,, t3  \noperator_tokens =\n"
		  "[smtp]\nto = a@example.org,b@example.org\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.c.api.viewer_tokens.count, 3);
	if (l.c.api.viewer_tokens.count == 3) {
		CHECK_EQ_STR(l.c.api.viewer_tokens.items[0], "t1");
		CHECK_EQ_STR(l.c.api.viewer_tokens.items[1], "t2");
		CHECK_EQ_STR(l.c.api.viewer_tokens.items[2], "t3");
	}
	CHECK_EQ_INT(l.c.api.operator_tokens.count, 0);
	CHECK_EQ_INT(l.c.smtp.to.count, 2);
	cload_done(&l);

	cload(&l, "[smtp]\nto = a@example.org, not-an-address\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, 2, "[smtp] to: ", "mail addresses"));
	CHECK_EQ_INT(l.c.smtp.to.count, 0); /* all or nothing */
	cload_done(&l);

	/*
	 * A list key given again adds to the list: a line is at most 198
	 * characters, so ten recipients could not be written at all when a
	 * repeat was an error.
	 */
	cload(&l, "[smtp]\nto = a@example.org, b@example.org\nfrom = s@example.org\n"
		  "to = c@example.org\n[site.s1]\nmail_to = d@example.org\n"
		  "mail_to = e@example.org,f@example.org\n[api]\noperator_tokens = o1\n"
		  "operator_tokens = o2\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.c.smtp.to.count, 3);
	if (l.c.smtp.to.count == 3) {
		CHECK_EQ_STR(l.c.smtp.to.items[0], "a@example.org");
		CHECK_EQ_STR(l.c.smtp.to.items[2], "c@example.org");
	}
	CHECK_EQ_INT(l.c.nsites, 1);
	if (l.c.nsites == 1) {
		CHECK_EQ_INT(l.c.sites[0].mail_to.count, 3);
		if (l.c.sites[0].mail_to.count == 3)
			CHECK_EQ_STR(l.c.sites[0].mail_to.items[2], "f@example.org");
	}
	CHECK_EQ_INT(l.c.api.operator_tokens.count, 2);
	cload_done(&l);

	/* an empty line of a list given before adds nothing (fuzz_conf: memcpy from NULL) */
	cload(&l, "[smtp]\nto = a@example.org\nto =\nto = , \n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.c.smtp.to.count, 1);
	cload_done(&l);

	/* the bound holds for the whole list, over all its lines */
	char text[8192];
	size_t n = (size_t)snprintf(text, sizeof(text), "[smtp]\n");
	for (int i = 0; i <= COLLECTOR_MAIL_TO_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "to = r%d@example.org\n", i);
	cload(&l, text);
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, COLLECTOR_MAIL_TO_MAX + 2, "[smtp] to: ", "at most"));
	CHECK_EQ_INT(l.c.smtp.to.count, COLLECTOR_MAIL_TO_MAX);
	cload_done(&l);

	/* other keys given twice stay an error */
	cload(&l, "[smtp]\nfrom = a@example.org\nfrom = b@example.org\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, 3, "[smtp] from: ", "more than once"));
	cload_done(&l);
}

/*
 * Mail addresses follow the composition's rule (mailfmt_address_ok): one the
 * alert mail could not carry is refused at start, with the key and the
 * address, instead of costing that site every alert mail later. Printable
 * ASCII only (no SMTPUTF8), no quoted local part, comment or backslash,
 * at most 254 bytes; in [smtp] to, [site.S] mail_to and [smtp] from alike.
 */
static void test_mail_addresses(void)
{
	struct cload l;
	char text[1024], addr[300];

	cload(&l, "[smtp]\nurl = smtp://127.0.0.1:2525\n"
		  "to = ops@example.org, \xe8\xbf\x90\xe7\xbb\xb4@example.cn\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, 3, "[smtp] to: ",
			"\"\xe8\xbf\x90\xe7\xbb\xb4@example.cn\" in the list"));
	CHECK(has_error(&l.e, l.path, 3, "[smtp] to: ", "printable ASCII"));
	CHECK_EQ_INT(l.c.smtp.to.count, 0);
	cload_done(&l);

	cload(&l, "[smtp]\nurl = smtp://127.0.0.1:2525\n[site.s1]\nmail_to = \"o.p\"@example.org\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, 4, "[site.s1] mail_to: ", "\"\"o.p\"@example.org\""));
	cload_done(&l);

	/* the offending item is named even at the end of a long list */
	snprintf(text, sizeof(text),
		 "[smtp]\nto = crew-member-01@example.org, crew-member-02@example.org, "
		 "crew-member-03@example.org, crew(4)@example.org\n");
	cload(&l, text);
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, 2, "[smtp] to: ", "\"crew(4)@example.org\""));
	cload_done(&l);

	cload(&l, "[smtp]\nfrom = site\\pulse@example.org\nto = o\\p@example.org\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, 2, "[smtp] from: ", "site\\pulse@example.org"));
	CHECK(has_error(&l.e, l.path, 3, "[smtp] to: ", "o\\p@example.org"));
	cload_done(&l);

	/* 254 bytes pass, 255 do not (set directly: a file's line holds 198 characters) */
	struct sp_conf_errors e = {NULL, 0};
	struct collector_conf c;
	CHECK_EQ_INT(collector_conf_init(&c), 0);
	memset(addr, 'a', sizeof(addr));
	memcpy(addr + 254 - 12, "@example.org", 13);
	CHECK_EQ_INT(sp_conf_set(&collector_conf_schema, &c, "smtp", "to", addr, "--to", &e), 0);
	CHECK_EQ_INT(c.smtp.to.count, 1);
	memset(addr, 'a', sizeof(addr));
	memcpy(addr + 255 - 12, "@example.org", 13);
	CHECK_EQ_INT(sp_conf_set(&collector_conf_schema, &c, "smtp", "to", addr, "--to", &e),
		     SP_ECONFIG);
	CHECK_EQ_INT(e.count, 1);
	if (e.count == 1)
		CHECK(strstr(e.lines[0], "at most 254 bytes") != NULL);
	sp_conf_errors_free(&e);
	collector_conf_free(&c);

	/* what the mail can carry still passes */
	cload(&l, "[smtp]\nfrom = sitepulse+alerts@example.org\n"
		  "to = o.p+lift@example.org, crew_7-x@mail.example.cn\n"
		  "[site.s1]\nmail_to = a@b\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.c.smtp.to.count, 2);
	cload_done(&l);
}

static void test_missing_file(void)
{
	char path[600];
	struct sp_conf_errors e = {NULL, 0};
	struct collector_conf c;

	tmp_path(path, sizeof(path));
	unlink(path);
	CHECK_EQ_INT(collector_conf_init(&c), 0);
	CHECK_EQ_INT(collector_conf_load(&c, path, &e), SP_ECONFIG);
	CHECK_EQ_INT(e.count, 1);
	CHECK(has_error(&e, path, 0, "cannot open", NULL));
	CHECK_EQ_STR(c.mqtt.uri, "tcp://127.0.0.1:1883");
	collector_conf_free(&c);
	sp_conf_errors_free(&e);

	struct agent_conf a;
	CHECK_EQ_INT(agent_conf_init(&a), 0);
	CHECK_EQ_INT(agent_conf_load(&a, path, &e), SP_ECONFIG);
	CHECK_EQ_INT(e.count, 1);
	CHECK(has_error(&e, path, 0, "cannot open", NULL));
	agent_conf_free(&a);
	sp_conf_errors_free(&e);
}

/* ---------------------------------------------------------------- overrides, set */

static void test_collector_override(void)
{
	struct sp_conf_errors e = {NULL, 0};
	struct collector_conf c;

	CHECK_EQ_INT(collector_conf_init(&c), 0);
	CHECK_EQ_INT(collector_conf_override(&c, "tcp://10.0.0.5:1884", "/var/lib/sp.db",
					     "0.0.0.0:9000", &e), 0);
	CHECK_EQ_INT(e.count, 0);
	CHECK_EQ_STR(c.mqtt.uri, "tcp://10.0.0.5:1884");
	CHECK_EQ_STR(c.store.path, "/var/lib/sp.db");
	CHECK_EQ_STR(c.api.listen, "0.0.0.0:9000");
	CHECK_EQ_INT(collector_conf_override(&c, NULL, NULL, NULL, &e), 0);
	CHECK_EQ_STR(c.mqtt.uri, "tcp://10.0.0.5:1884");

	CHECK_EQ_INT(collector_conf_override(&c, "localhost", NULL, NULL, &e), SP_ECONFIG);
	CHECK_EQ_INT(e.count, 1);
	if (e.count == 1) {
		CHECK(strncmp(e.lines[0], "--broker: [mqtt] uri: ", 22) == 0);
		CHECK(strstr(e.lines[0], "\"localhost\"") != NULL);
	}
	CHECK_EQ_STR(c.mqtt.uri, "tcp://10.0.0.5:1884"); /* unchanged */
	sp_conf_errors_free(&e);

	/* every bad override is reported, each naming its option */
	CHECK_EQ_INT(collector_conf_override(&c, "tcp://h", "", "nohost", &e), SP_ECONFIG);
	CHECK_EQ_INT(e.count, 3);
	if (e.count == 3) {
		CHECK(strncmp(e.lines[0], "--broker: ", 10) == 0);
		CHECK(strncmp(e.lines[1], "--db: [store] path: ", 20) == 0);
		CHECK(strncmp(e.lines[2], "--http: [api] listen: ", 22) == 0);
	}
	sp_conf_errors_free(&e);
	collector_conf_free(&c);
}

static void test_conf_set_unknown(void)
{
	struct sp_conf_errors e = {NULL, 0};
	struct collector_conf c;

	CHECK_EQ_INT(collector_conf_init(&c), 0);
	CHECK_EQ_INT(sp_conf_set(&collector_conf_schema, &c, "mqtt", "nokey", "1", "--x", &e),
		     SP_ECONFIG);
	CHECK_EQ_INT(sp_conf_set(&collector_conf_schema, &c, "nosection", "uri", "1", "--y", &e),
		     SP_ECONFIG);
	CHECK_EQ_INT(sp_conf_set(&collector_conf_schema, &c, "site.*", "timezone", "UTC", "--z",
				 &e),
		     SP_ECONFIG);
	CHECK_EQ_INT(e.count, 3);
	if (e.count == 3) {
		CHECK_EQ_STR(e.lines[0], "--x: [mqtt] nokey: unknown key");
		CHECK_EQ_STR(e.lines[1], "--y: [nosection] uri: unknown key");
		CHECK(strncmp(e.lines[2], "--z: ", 5) == 0);
	}
	CHECK_EQ_INT(sp_conf_set(&collector_conf_schema, &c, "store", "batch_max", "17", "--q", &e),
		     0);
	CHECK_EQ_INT(c.store.batch_max, 17);
	CHECK_EQ_INT(e.count, 3);
	sp_conf_errors_free(&e);
	collector_conf_free(&c);
}

/* ---------------------------------------------------------------- secrets */

static void test_secrets_not_in_errors(void)
{
	struct cload l;
	cload(&l, "[api]\n"
		  "viewer_tokens = goodtoken, SeCrEt-Viewer value\n"  /* blank inside a token */
		  "operator_tokens = SeCrEt-Op1\n"
		  "operator_tokens = SeCrEt-Op2 bad\n"                /* added to, blank inside */
		  "viewer_token = SeCrEt-Typo\n"                      /* unknown key */
		  "[mqtt]\n"
		  "password = SeCrEt-Pw1\n"
		  "password = SeCrEt-Pw2\n"
		  "[city]\n"
		  "token = SeCrEt-City\n"
		  "token = SeCrEt-City2\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 5);
	CHECK(has_error(&l.e, l.path, 2, "[api] viewer_tokens: ", "bad value"));
	CHECK(has_error(&l.e, l.path, 4, "[api] operator_tokens: ", "bad value"));
	CHECK(has_error(&l.e, l.path, 5, "[api] viewer_token: ", "unknown key"));
	CHECK(has_error(&l.e, l.path, 8, "[mqtt] password: ", "more than once"));
	CHECK(has_error(&l.e, l.path, 11, "[city] token: ", "more than once"));
	CHECK(no_error_contains(&l.e, "SeCrEt"));
	CHECK(no_error_contains(&l.e, "goodtoken"));
	CHECK_EQ_INT(l.c.api.viewer_tokens.count, 0);
	CHECK_EQ_STR(l.c.mqtt.password, "SeCrEt-Pw1");
	cload_done(&l);

	/* values too long for the file are still kept out of messages (set directly) */
	char pw[400];
	struct sp_conf_errors e = {NULL, 0};
	struct collector_conf c;
	memset(pw, 'Z', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	memcpy(pw, "SeCrEt", 6);
	CHECK_EQ_INT(collector_conf_init(&c), 0);
	CHECK_EQ_INT(sp_conf_set(&collector_conf_schema, &c, "mqtt", "password", pw, "--pw", &e),
		     SP_ECONFIG);
	CHECK_EQ_INT(sp_conf_set(&collector_conf_schema, &c, "smtp", "password", pw, "--pw", &e),
		     SP_ECONFIG);
	CHECK_EQ_INT(sp_conf_set(&collector_conf_schema, &c, "api", "operator_tokens",
				 "SeCrEt\x01tok", "--tok", &e),
		     SP_ECONFIG);
	CHECK_EQ_INT(e.count, 3);
	CHECK(no_error_contains(&e, "SeCrEt"));
	CHECK(no_error_contains(&e, "ZZZZ"));
	if (e.count == 3)
		CHECK(strncmp(e.lines[0], "--pw: [mqtt] password: ", 23) == 0);
	sp_conf_errors_free(&e);
	collector_conf_free(&c);

	/* a non-secret bad value IS quoted (so the check above means something) */
	cload(&l, "[mqtt]\nclient_id = VisibleValue\nkeepalive_s = VisibleValue\n");
	CHECK(has_error(&l.e, l.path, 3, "[mqtt] keepalive_s: ", "\"VisibleValue\""));
	cload_done(&l);
}

/* ---------------------------------------------------------------- instance sections */

static void test_rule_sections(void)
{
	struct cload l;
	cload(&l, "[rule.lift.trapped]\nhold_s = 10\n"
		  "[site.hp-1.rule.lift.trapped]\nhold_s = 5\nseverity = major\n"
		  "[site.hp-1]\ntimezone = Asia/Tokyo\n"
		  "[site.hp-2.rule.port.over_temp]\nenabled = false\n"
		  "[rule.lift.trapped]\nenabled = false\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_INT(l.c.nrules, 3);
	const struct collector_rule_conf *g = find_rule(&l.c, NULL, "lift.trapped");
	const struct collector_rule_conf *s1 = find_rule(&l.c, "hp-1", "lift.trapped");
	const struct collector_rule_conf *s2 = find_rule(&l.c, "hp-2", "port.over_temp");
	CHECK(g != NULL);
	CHECK(s1 != NULL);
	CHECK(s2 != NULL);
	if (g) {
		CHECK_EQ_INT(g->hold_s, 10);
		CHECK(!g->enabled);
		CHECK_EQ_INT(g->severity, -1);
	}
	if (s1) {
		CHECK_EQ_INT(s1->hold_s, 5);
		CHECK_EQ_INT(s1->enabled, -1); /* not said */
		CHECK_EQ_INT(s1->severity, 1);
	}
	if (s2) {
		CHECK_EQ_INT(s2->hold_s, -1);
		CHECK_EQ_INT(s2->enabled, 0);
	}

	/* the rules' settings: catalogue, then [rule.R], then [site.S.rule.R] over it */
	struct rules_config *rc = rules_config_create();
	struct sp_conf_errors e = {NULL, 0};
	CHECK(rc != NULL);
	if (rc) {
		CHECK_EQ_INT(collector_conf_rules(&l.c, rc, &e), 0);
		const struct rule_setting *g1 = rules_config_get(rc, "hp-9", RULE_LIFT_TRAPPED);
		const struct rule_setting *h1 = rules_config_get(rc, "hp-1", RULE_LIFT_TRAPPED);
		const struct rule_setting *h2 = rules_config_get(rc, "hp-2", RULE_PORT_OVER_TEMP);
		const struct rule_setting *g2 = rules_config_get(rc, "hp-1", RULE_PORT_OVER_TEMP);
		struct rule_setting def;
		rule_defaults(RULE_PORT_OVER_TEMP, &def);
		CHECK(!g1->enabled && g1->hold_ms == 10000 && g1->severity == ALERT_CRITICAL);
		/* hp-1 did not say enabled: it stays off as [rule.lift.trapped] says */
		CHECK(!h1->enabled && h1->hold_ms == 5000 && h1->severity == ALERT_MAJOR);
		CHECK(!h2->enabled && h2->hold_ms == def.hold_ms && h2->threshold == def.threshold);
		CHECK(g2->enabled && g2->threshold == def.threshold);
		rules_config_destroy(rc);
	}
	CHECK_EQ_INT(e.count, 0);
	sp_conf_errors_free(&e);
	/* [site.hp-1.rule.*] is not a site section; [site.hp-1] is */
	CHECK_EQ_INT(l.c.nsites, 1);
	if (l.c.nsites == 1) {
		CHECK_EQ_STR(l.c.sites[0].site, "hp-1");
		CHECK_EQ_STR(l.c.sites[0].timezone, "Asia/Tokyo");
	}
	cload_done(&l);
}

/* lift.door_reopen's threshold (door cycles) is set like any rule's, for all sites and for one. */
static void test_door_reopen_section(void)
{
	struct cload l;
	cload(&l, "[rule.lift.door_reopen]\nthreshold = 3\n"
		  "[site.hp-1.rule.lift.door_reopen]\nthreshold = 8\n"
		  "[site.hp-2.rule.lift.door_reopen]\nenabled = false\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	struct rules_config *rc = rules_config_create();
	struct sp_conf_errors e = {NULL, 0};
	CHECK(rc != NULL);
	if (rc) {
		CHECK_EQ_INT(collector_conf_rules(&l.c, rc, &e), 0);
		const struct rule_setting *g = rules_config_get(rc, "hp-9", RULE_LIFT_DOOR_REOPEN);
		const struct rule_setting *h1 = rules_config_get(rc, "hp-1", RULE_LIFT_DOOR_REOPEN);
		const struct rule_setting *h2 = rules_config_get(rc, "hp-2", RULE_LIFT_DOOR_REOPEN);
		CHECK(g->enabled && g->threshold == 3 && g->hold_ms == 0);
		CHECK(g->severity == ALERT_MINOR);
		CHECK(h1->enabled && h1->threshold == 8);
		CHECK(!h2->enabled && h2->threshold == 3);
		rules_config_destroy(rc);
	}
	CHECK_EQ_INT(e.count, 0);
	sp_conf_errors_free(&e);
	cload_done(&l);
}

static void test_bad_rule_sections(void)
{
	struct cload l;
	cload(&l, "[rule.Lift]\nhold_s = 1\n[rule.lift.]\nhold_s = 1\n"
		  "[site.HP.rule.x]\nhold_s = 1\n"
		  "[rule.lift.mode]\nhold_s = -1\n[rule.lift.trapd]\nhold_s = 5\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 5);
	/* section errors: which line they name is checked by test_unknown_section */
	CHECK(has_error(&l.e, l.path, ANY_LINE, "[rule.Lift]", "NAME like lift.trapped"));
	CHECK(has_error(&l.e, l.path, ANY_LINE, "[rule.lift.]", "NAME like lift.trapped"));
	CHECK(has_error(&l.e, l.path, ANY_LINE, "[site.HP.rule.x]", NULL));
	CHECK(has_error(&l.e, l.path, 8, "[rule.lift.mode] hold_s: ", "0..86400"));
	/* a rule name of the right shape that the catalogue does not know: a typo, refused */
	CHECK(has_error(&l.e, l.path, ANY_LINE, "[rule.lift.trapd]", "no such rule"));
	CHECK_EQ_INT(l.c.nrules, 1);
	cload_done(&l);
}

static void test_site_name_of_64_characters(void)
{
	/*
	 * The longest site id of CONTRACT §1 must name exactly that site, never
	 * a shortened one (inih itself keeps at most 49 characters of a
	 * section name).
	 */
	char id[65], text[512];
	struct cload l;
	memset(id, 'a', 64);
	id[64] = '\0';
	snprintf(text, sizeof(text), "[site.%s]\nmail_to = crew@example.org\n", id);
	cload(&l, text);
	CHECK_EQ_INT(l.c.nsites, 1);
	if (l.c.nsites == 1)
		CHECK_EQ_STR(l.c.sites[0].site, id);
	cload_done(&l);

	snprintf(text, sizeof(text), "[site.%s.rule.lift.trapped]\nhold_s = 3\n", id);
	cload(&l, text);
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.c.nsites, 0);
	const struct collector_rule_conf *r = find_rule(&l.c, id, "lift.trapped");
	CHECK(r != NULL);
	if (r)
		CHECK_EQ_INT(r->hold_s, 3);
	cload_done(&l);
}

static void test_agent_scenarios(void)
{
	struct aload l;
	aload(&l, AGENT_MIN "[scenario.trap]\ndev = lift-1\nsituation = trapped_between_floors\n"
			    "at_s = 30\nduration_s = 120\n"
			    "[scenario.hot]\ndev = chg-1\nsituation = port_overheat\nport = 3\n");
	CHECK_EQ_INT(l.rc, 0);
	CHECK_EQ_INT(l.e.count, 0);
	CHECK_EQ_INT(l.c.nscenarios, 2);
	if (l.c.nscenarios == 2) {
		CHECK_EQ_STR(l.c.scenarios[0].section, "trap");
		CHECK_EQ_STR(l.c.scenarios[0].dev, "lift-1");
		CHECK_EQ_INT(l.c.scenarios[0].situation, SIM_TRAPPED_BETWEEN_FLOORS);
		CHECK_EQ_INT(l.c.scenarios[0].at_s, 30);
		CHECK_EQ_INT(l.c.scenarios[0].duration_s, 120);
		CHECK_EQ_INT(l.c.scenarios[1].situation, SIM_PORT_OVERHEAT);
		CHECK_EQ_INT(l.c.scenarios[1].port, 3);
	}
	/* and from the command line */
	CHECK_EQ_INT(agent_conf_add_scenario(&l.c, "lift-2:overspeed@10+20", &l.e), 0);
	CHECK_EQ_INT(l.c.nscenarios, 3);
	if (l.c.nscenarios == 3) {
		CHECK_EQ_STR(l.c.scenarios[2].section, "--scenario");
		CHECK_EQ_STR(l.c.scenarios[2].dev, "lift-2");
		CHECK_EQ_INT(l.c.scenarios[2].situation, SIM_OVERSPEED);
		CHECK_EQ_INT(l.c.scenarios[2].at_s, 10);
		CHECK_EQ_INT(l.c.scenarios[2].duration_s, 20);
	}
	CHECK_EQ_INT(agent_conf_add_scenario(&l.c, "lift-2-overspeed", &l.e), SP_ECONFIG);
	CHECK_EQ_INT(l.e.count, 1);
	if (l.e.count == 1)
		CHECK(strncmp(l.e.lines[0], "--scenario lift-2-overspeed: ", 29) == 0);
	CHECK_EQ_INT(l.c.nscenarios, 3);
	aload_done(&l);

	aload(&l, AGENT_MIN "[scenario.x]\nsituation = levitation\n[scenario.y]\n"
			    "situation = smoke\n");
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, 5, "[scenario.x] situation: ", "\"levitation\""));
	CHECK(has_error(&l.e, l.path, 6, "[scenario.y] dev: ", "required for situation smoke"));
	aload_done(&l);
}

/* ---------------------------------------------------------------- reference */

/* Checks that the Markdown reference lists every key under its own section heading. */
static void check_reference(const struct sp_conf_schema *s)
{
	char *doc = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&doc, &len);
	CHECK(f != NULL);
	if (f == NULL)
		return;
	sp_conf_print_reference(s, f, true);
	fclose(f);
	for (size_t i = 0; i < s->nsections; i++) {
		const struct sp_conf_section *sec = &s->sections[i];
		char want[256];
		snprintf(want, sizeof(want), "### `[%s]`\n", sec->name);
		const char *start = strstr(doc, want);
		CHECK(start != NULL);
		if (start == NULL) {
			fprintf(stderr, "  %s: no heading for [%s]\n", s->program, sec->name);
			continue;
		}
		const char *end = strstr(start + 1, "### ");
		size_t span = end ? (size_t)(end - start) : strlen(start);
		for (size_t j = 0; j < sec->nkeys; j++) {
			snprintf(want, sizeof(want), "| `%s` |", sec->keys[j].name);
			const char *row = memmem(start, span, want, strlen(want));
			CHECK(row != NULL);
			if (row == NULL)
				fprintf(stderr, "  %s: [%s] %s missing from the reference\n",
					s->program, sec->name, sec->keys[j].name);
		}
	}
	free(doc);
}

/*
 * sp_conf_where: the line of each key and section header a load found,
 * for checks across keys after it (the agent's simulated site); and the
 * agent's such errors name it as the loader's own do.
 */
static void test_where_lines(void)
{
	struct aload l;
	char path[600];
	struct agent_conf c;
	struct sp_conf_errors e = {0};
	struct sp_conf_where *w = NULL;
	const char *text = AGENT_MIN "[sim]\nlifts = 0\n\n[scenario.x]\nsituation = smoke\n"
				     "[sim]\nchargers = 0\n";
	int n = 0; /* AGENT_MIN's lines */
	for (const char *p = AGENT_MIN; *p; p++)
		n += *p == '\n';
	tmp_path(path, sizeof(path));
	write_bytes(path, text, strlen(text));
	CHECK_EQ_INT(agent_conf_init(&c), 0);
	sp_conf_load_where(&agent_conf_schema, path, &c, &e, &w);
	CHECK(w != NULL);
	CHECK_EQ_INT(sp_conf_where_line(w, "sim", "lifts"), n + 2);
	CHECK_EQ_INT(sp_conf_where_line(w, "sim", "chargers"), n + 7);
	CHECK_EQ_INT(sp_conf_where_line(w, "sim", NULL), n + 1);       /* its first header */
	CHECK_EQ_INT(sp_conf_where_line(w, "sim", "ports"), n + 1);    /* left at its default */
	CHECK_EQ_INT(sp_conf_where_line(w, "scenario.x", "dev"), n + 4);
	CHECK_EQ_INT(sp_conf_where_line(w, "scenario.y", "dev"), 0);   /* not in the file */
	CHECK_EQ_INT(sp_conf_where_line(NULL, "sim", "lifts"), 0);
	sp_conf_where_free(w);
	agent_conf_free(&c);
	sp_conf_errors_free(&e);

	aload(&l, text);
	CHECK_EQ_INT(l.rc, SP_ECONFIG);
	CHECK(has_error(&l.e, l.path, n + 4, "[scenario.x] dev: ", "required for situation smoke"));
	/* lifts and chargers both 0: named at lifts, where the file set it */
	CHECK(has_error(&l.e, l.path, n + 2, "[sim] lifts: ", "a site needs a device"));
	aload_done(&l);
	unlink(path);
}

static void test_reference_markdown(void)
{
	check_reference(&collector_conf_schema);
	check_reference(&agent_conf_schema);

	/* a few rows in full */
	char *doc = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&doc, &len);
	CHECK(f != NULL);
	if (f == NULL)
		return;
	sp_conf_print_reference(&collector_conf_schema, f, true);
	fclose(f);
	CHECK(strstr(doc, "### `[mqtt]`") != NULL);
	CHECK(strstr(doc, "### `[site.*.rule.*]`") != NULL);
	CHECK(strstr(doc, "| `uri` |") != NULL);
	CHECK(strstr(doc, "| `viewer_tokens` |") != NULL);
	CHECK(strstr(doc, "| `hold_s` |") != NULL);
	CHECK(strstr(doc, "| `period_s` | integer 60..86400 | `3600` |") != NULL);
	const char *tok = strstr(doc, "| `operator_tokens` |");
	CHECK(tok != NULL && strstr(tok, "(secret)") != NULL &&
	      strstr(tok, "(secret)") < strchr(tok, '\n'));
	free(doc);

	doc = NULL;
	f = open_memstream(&doc, &len);
	CHECK(f != NULL);
	if (f == NULL)
		return;
	sp_conf_print_reference(&agent_conf_schema, f, true);
	fclose(f);
	CHECK(strstr(doc, "| `site` |") != NULL);
	CHECK(strstr(doc, "| `spool_path` |") != NULL);
	CHECK(strstr(doc, "### `[scenario.*]`") != NULL);
	const char *site = strstr(doc, "| `site` |");
	CHECK(site != NULL && strstr(site, "`(required)`") != NULL &&
	      strstr(site, "`(required)`") < strchr(site, '\n'));
	free(doc);

	/* plain text (--help) lists the keys too */
	doc = NULL;
	f = open_memstream(&doc, &len);
	CHECK(f != NULL);
	if (f == NULL)
		return;
	sp_conf_print_reference(&collector_conf_schema, f, false);
	fclose(f);
	CHECK(strstr(doc, "  [api]") != NULL);
	CHECK(strstr(doc, "    listen ") != NULL);
	CHECK(strstr(doc, "| `") == NULL);
	free(doc);
}

int main(void)
{
	init_tmp_dir();
	RUN(test_contract_collector_example);
	RUN(test_contract_agent_example);
	RUN(test_collector_defaults_when_absent);
	RUN(test_agent_defaults_when_absent);
	RUN(test_defaults_are_valid);
	RUN(test_empty_file);
	RUN(test_unknown_key);
	RUN(test_unknown_section);
	RUN(test_unknown_section_without_keys);
	RUN(test_repeated_section_allowed);
	RUN(test_repeated_key);
	RUN(test_int_out_of_range);
	RUN(test_int_not_numeric);
	RUN(test_bad_enum_and_bool);
	RUN(test_good_enum_and_bool_spellings);
	RUN(test_bad_identifier);
	RUN(test_bad_mqtt_uri);
	RUN(test_bad_listen);
	RUN(test_bad_timezone);
	RUN(test_key_outside_section);
	RUN(test_syntax_error);
	RUN(test_line_too_long);
	RUN(test_missing_required_key);
	RUN(test_all_errors_in_one_load);
	RUN(test_indented_keys);
	RUN(test_crlf_line_endings);
	RUN(test_utf8_bom);
	RUN(test_comments);
	RUN(test_list_values);
	RUN(test_mail_addresses);
	RUN(test_missing_file);
	RUN(test_unreadable_file);
	RUN(test_collector_override);
	RUN(test_conf_set_unknown);
	RUN(test_secrets_not_in_errors);
	RUN(test_rule_sections);
	RUN(test_door_reopen_section);
	RUN(test_bad_rule_sections);
	RUN(test_site_name_of_64_characters);
	RUN(test_agent_scenarios);
	RUN(test_where_lines);
	RUN(test_reference_markdown);
	HARNESS_EXIT();
}
