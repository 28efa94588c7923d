/* agent_conf.c - the agent's configuration table (see agent_conf.h). */
#include "agent_conf.h"

#include "sitepulse/error.h"
#include "sitepulse/ids.h"
#include "sitepulse/log.h"
#include "sitepulse/mqtt_conf.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

static int check_situation(const char *value, char *err, size_t errlen)
{
	if (sim_situation_parse(value) >= 0)
		return 0;
	size_t n = (size_t)snprintf(err, errlen, "one of");
	for (int i = 0; i < SIM_SITUATION_COUNT && n < errlen; i++)
		n += (size_t)snprintf(err + n, errlen - n, "%s%s", i ? ", " : " ",
				      sim_situation_name((enum sim_situation)i));
	return -1;
}

#define A(m) offsetof(struct agent_conf, agent.m) - offsetof(struct agent_conf, agent)
static const struct sp_conf_key agent_keys[] = {
	{"site", SP_CONF_STRING, A(site), NULL, 1, 64, NULL, SP_CONF_REQUIRED | SP_CONF_ID, NULL,
	 "the site this gateway belongs to (CONTRACT §1 identifier)"},
	{"id", SP_CONF_STRING, A(id), NULL, 1, 64, NULL, SP_CONF_REQUIRED | SP_CONF_ID, NULL,
	 "this agent's identifier within the site"},
	{"spool_path", SP_CONF_STRING, A(spool_path), "spool.db", 1, 4096, NULL, 0, NULL,
	 "SQLite file holding every data message until the collector acknowledges it"},
	{"spool_max_mb", SP_CONF_INT, A(spool_max_mb), "64", 1, 65536, NULL, 0, NULL,
	 "payload bytes the spool may hold; when full the oldest messages are dropped (counted, logged)"},
	{"spool_sync", SP_CONF_BOOL, A(spool_sync_full), "true", 0, 0, NULL, 0, NULL,
	 "fsync every append (survives power loss); false survives only a crash of the agent"},
	{"journal", SP_CONF_STRING, A(journal), "", 0, 4096, NULL, 0, NULL,
	 "optional file receiving every created data message as one JSON line (for audits and tests)"},
	{"batch_ms", SP_CONF_INT, A(batch_ms), "1000", 10, 60000, NULL, 0, NULL,
	 "longest time a record waits before its data message is created"},
	{"batch_max", SP_CONF_INT, A(batch_max), "200", 1, 1000, NULL, 0, NULL,
	 "records per data message at most"},
	{"resend_s", SP_CONF_INT, A(resend_s), "10", 1, 3600, NULL, 0, NULL,
	 "publish unacknowledged messages again after this long without ack progress"
	 " (doubles, up to 32x); 32x must stay below the collector's gap_window_s"},
	{"ack_wait_s", SP_CONF_INT, A(ack_wait_s), "3", 0, 3600, NULL, 0, NULL,
	 "after each connect, wait up to this long for the collector's ack before publishing data "
	 "(and, with a new spool, to continue its seq; a new spool starts at 1 only once the "
	 "broker granted the ack subscription 1 s ago, even with 0)"},
	{"fw", SP_CONF_STRING, A(fw), "sitepulse-agent " SP_VERSION, 0, 256, NULL, 0, NULL,
	 "firmware/software version announced in the birth message"},
};

#define M(m) offsetof(struct agent_conf, mqtt.m) - offsetof(struct agent_conf, mqtt)
static const struct sp_conf_key mqtt_keys[] = {
	{"uri", SP_CONF_STRING, M(uri), "tcp://127.0.0.1:1883", 1, 1024, NULL, 0,
	 sp_conf_check_mqtt_uri, "broker address; ssl://HOST:PORT for TLS"},
	{"client_id", SP_CONF_STRING, M(client_id), "", 0, 128, NULL, 0, NULL,
	 "MQTT client id (default sitepulse-agent-SITE-ID)"},
	SP_CONF_MQTT_LOGIN_KEYS(M),
	{"keepalive_s", SP_CONF_INT, M(keepalive_s), "30", 5, 3600, NULL, 0, NULL,
	 "MQTT keepalive; the broker publishes the offline Will after 1.5x this"},
	{"max_inflight", SP_CONF_INT, M(max_inflight), "100", 1, 65535, NULL, 0, NULL,
	 "QoS 1 publishes awaiting the broker's PUBACK"},
	{"max_unacked", SP_CONF_INT, M(max_unacked), "2000", 1, 1000000, NULL, 0, NULL,
	 "data messages published but not yet acknowledged end to end"},
};

#define S(m) offsetof(struct agent_conf, sim.m) - offsetof(struct agent_conf, sim)
static const struct sp_conf_key sim_keys[] = {
	{"seed", SP_CONF_INT, S(seed), "1", 0, 9007199254740991.0, NULL, 0, NULL,
	 "random seed: the same seed gives the same site"},
	{"lifts", SP_CONF_INT, S(lifts), "2", 0, 64, NULL, 0, NULL, "number of lifts"},
	{"chargers", SP_CONF_INT, S(chargers), "2", 0, 64, NULL, 0, NULL,
	 "number of charging stations"},
	{"ports", SP_CONF_INT, S(ports), "12", 1, 64, NULL, 0, NULL, "ports per charging station"},
	{"floor_min", SP_CONF_INT, S(floor_min), "1", -50, 300, NULL, 0, NULL, "lowest floor served"},
	{"floor_max", SP_CONF_INT, S(floor_max), "7", -50, 300, NULL, 0, NULL, "highest floor served"},
	{"rated_speed", SP_CONF_DOUBLE, S(rated_speed), "1.0", 0.1, 4, NULL, 0, NULL,
	 "lift rated speed, m/s"},
	{"port_limit_w", SP_CONF_DOUBLE, S(port_limit_w), "1000", 100, 10000, NULL, 0, NULL,
	 "per-port power limit of the chargers, W"},
	{"heartbeat_s", SP_CONF_INT, S(heartbeat_s), "60", 1, 60, NULL, 0, NULL,
	 "each device reports at least this often (CONTRACT: at most 60)"},
	{"time_scale", SP_CONF_DOUBLE, S(time_scale), "1", 1, 10000, NULL, 0, NULL,
	 "run the simulated behaviour this many times faster than real time"},
};

static const struct sp_conf_key log_keys[] = {
	{"level", SP_CONF_ENUM, 0, "info", 0, 0, log_levels, 0, NULL,
	 "log threshold: error, warn, info or debug"},
};

#define SC(m) offsetof(struct agent_scenario_conf, m)
static const struct sp_conf_key scenario_keys[] = {
	{"dev", SP_CONF_STRING, SC(dev), "", 0, 64, NULL, 0, NULL,
	 "device the situation happens to (empty for silent)"},
	{"situation", SP_CONF_STRING, SC(situation_text), NULL, 1, 64, NULL, SP_CONF_REQUIRED,
	 check_situation, "what happens (see docs/configuration.md for the list)"},
	{"port", SP_CONF_INT, SC(port), "0", 0, 64, NULL, 0, NULL,
	 "charger port for port situations (0: port 1)"},
	{"at_s", SP_CONF_INT, SC(at_s), "0", 0, 31536000, NULL, 0, NULL,
	 "seconds after the agent starts"},
	{"duration_s", SP_CONF_INT, SC(duration_s), "0", 0, 31536000, NULL, 0, NULL,
	 "how long it lasts (0: until the agent stops)"},
};

static void *scenario_instance(void *root, const char *const *parts, size_t nparts,
			       bool *created, char *err, size_t errlen)
{
	struct agent_conf *c = root;
	(void)nparts;
	for (size_t i = 0; i < c->nscenarios; i++)
		if (strcmp(c->scenarios[i].section, parts[0]) == 0) {
			*created = false;
			return &c->scenarios[i];
		}
	if (c->nscenarios >= AGENT_SCENARIOS_MAX) {
		snprintf(err, errlen, "too many scenarios (at most %d)", AGENT_SCENARIOS_MAX);
		return NULL;
	}
	struct agent_scenario_conf *s = &c->scenarios[c->nscenarios];
	memset(s, 0, sizeof(*s));
	s->section = strdup(parts[0]);
	if (s->section == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->situation = -1; /* resolved from situation_text by agent_conf_load */
	c->nscenarios++;
	*created = true;
	return s;
}

static const struct sp_conf_section sections[] = {
	{"agent", agent_keys, sizeof(agent_keys) / sizeof(agent_keys[0]),
	 offsetof(struct agent_conf, agent), NULL, "identity, spool and batching"},
	{"mqtt", mqtt_keys, sizeof(mqtt_keys) / sizeof(mqtt_keys[0]),
	 offsetof(struct agent_conf, mqtt), NULL, "broker connection"},
	{"sim", sim_keys, sizeof(sim_keys) / sizeof(sim_keys[0]), offsetof(struct agent_conf, sim),
	 NULL, "the built-in simulator"},
	{"log", log_keys, 1, offsetof(struct agent_conf, log), NULL, "logging"},
	{"scenario.*", scenario_keys, sizeof(scenario_keys) / sizeof(scenario_keys[0]), 0,
	 scenario_instance,
	 "a situation injected into the simulation, e.g. [scenario.trap] (repeatable)"},
};

const struct sp_conf_schema agent_conf_schema = {"sitepulse-agent", sections,
						 sizeof(sections) / sizeof(sections[0])};

int agent_conf_init(struct agent_conf *c)
{
	memset(c, 0, sizeof(*c));
	return sp_conf_defaults(&agent_conf_schema, c);
}

/* A scenario field's name as a [scenario.*] key. */
static const char *scenario_key(const char *field)
{
	if (strcmp(field, "at") == 0)
		return "at_s";
	if (strcmp(field, "duration") == 0)
		return "duration_s";
	return field;
}

/*
 * A problem of section's key found after the load: "FILE:LINE: [section]
 * key: problem" as the loader's own, the line the key's (else its
 * section's header: a key left at its default); no line when neither is
 * in the file.
 */
static void add_at(struct sp_conf_errors *errs, const struct sp_conf_where *where,
		   const char *path, const char *section, const char *key, const char *problem)
{
	int line = sp_conf_where_line(where, section, key);
	if (line > 0)
		sp_conf_errors_add(errs, "%s:%d: [%s] %s: %s", path, line, section, key, problem);
	else
		sp_conf_errors_add(errs, "%s: [%s] %s: %s", path, section, key, problem);
}

/*
 * What the simulator would refuse at start (sim.h: sim_params_check,
 * sim_scenario_check), found here instead, so that --check-config finds it
 * too and the agent exits 2 naming the key. The [sim] section and the
 * scenarios of the file; --scenario options are checked as they are added.
 */
static void check_site(const struct agent_conf *c, const char *path,
		       const struct sp_conf_where *where, struct sp_conf_errors *errs)
{
	struct sim_params p;
	struct sim_scenario sc[AGENT_SCENARIOS_MAX];
	char err[256], section[300];

	agent_conf_sim_params(c, &p, sc);
	const char *key = sim_params_check(&p, err, sizeof(err));
	if (key != NULL) {
		add_at(errs, where, path, "sim", key, err);
		return; /* the scenarios are judged against a valid site only */
	}
	for (size_t i = 0; i < c->nscenarios; i++) {
		const struct agent_scenario_conf *s = &c->scenarios[i];
		if (s->situation < 0 || (s->situation != SIM_SILENT &&
					 (s->dev == NULL || !sp_id_valid_str(s->dev))))
			continue; /* reported above */
		key = sim_scenario_check(&p, &sc[i], err, sizeof(err));
		snprintf(section, sizeof(section), "scenario.%s", s->section);
		if (key != NULL)
			add_at(errs, where, path, section, scenario_key(key), err);
	}
}

int agent_conf_load(struct agent_conf *c, const char *path, struct sp_conf_errors *errs)
{
	size_t before = errs->count;
	struct sp_conf_where *where = NULL;
	char section[300], problem[300];
	sp_conf_load_where(&agent_conf_schema, path, c, errs, &where);

	for (size_t i = 0; i < c->nscenarios; i++) {
		struct agent_scenario_conf *s = &c->scenarios[i];
		if (s->situation >= 0)
			continue;
		int sit = s->situation_text ? sim_situation_parse(s->situation_text) : -1;
		if (sit < 0)
			continue; /* reported by the loader: required key missing */
		s->situation = sit;
		if (sit != SIM_SILENT && (s->dev == NULL || !sp_id_valid_str(s->dev))) {
			snprintf(section, sizeof(section), "scenario.%s", s->section);
			snprintf(problem, sizeof(problem), "required for situation %s",
				 s->situation_text);
			add_at(errs, where, path, section, "dev", problem);
		}
	}
	check_site(c, path, where, errs);
	sp_conf_where_free(where);
	return errs->count > before ? SP_ECONFIG : 0;
}

int agent_conf_add_scenario(struct agent_conf *c, const char *spec, struct sp_conf_errors *errs)
{
	struct sim_scenario sc;
	char err[256];
	if (sim_scenario_parse(spec, &sc, err, sizeof(err))) {
		sp_conf_errors_add(errs, "--scenario %s: %s", spec, err);
		return SP_ECONFIG;
	}
	if (c->nscenarios >= AGENT_SCENARIOS_MAX) {
		sp_conf_errors_add(errs, "--scenario %s: too many scenarios (at most %d)", spec,
				   AGENT_SCENARIOS_MAX);
		return SP_ECONFIG;
	}
	/* against the site of the file (loaded before), as the file's scenarios */
	struct sim_params p;
	struct sim_scenario unused[AGENT_SCENARIOS_MAX];
	agent_conf_sim_params(c, &p, unused);
	if (sim_params_check(&p, NULL, 0) == NULL && sim_scenario_check(&p, &sc, err, sizeof(err))) {
		sp_conf_errors_add(errs, "--scenario %s: %s", spec, err);
		return SP_ECONFIG;
	}
	struct agent_scenario_conf *s = &c->scenarios[c->nscenarios];
	memset(s, 0, sizeof(*s));
	s->section = strdup("--scenario");
	s->situation_text = strdup(sim_situation_name(sc.situation));
	s->dev = strdup(sc.dev);
	if (s->section == NULL || s->situation_text == NULL || s->dev == NULL) {
		free(s->section);
		free(s->situation_text);
		free(s->dev);
		sp_conf_errors_add(errs, "--scenario: out of memory");
		return SP_ECONFIG;
	}
	s->situation = (int)sc.situation;
	s->port = sc.port;
	s->at_s = sc.at_ms / 1000;
	s->duration_s = sc.duration_ms / 1000;
	c->nscenarios++;
	return 0;
}

void agent_conf_sim_params(const struct agent_conf *c, struct sim_params *p,
			   struct sim_scenario *out)
{
	memset(p, 0, sizeof(*p));
	p->seed = (uint64_t)c->sim.seed;
	p->lifts = (int)c->sim.lifts;
	p->chargers = (int)c->sim.chargers;
	p->ports = (int)c->sim.ports;
	p->floor_min = (int)c->sim.floor_min;
	p->floor_max = (int)c->sim.floor_max;
	p->rated_speed = c->sim.rated_speed;
	p->port_limit_w = c->sim.port_limit_w;
	p->heartbeat_s = (int)c->sim.heartbeat_s;
	p->time_scale = c->sim.time_scale;
	for (size_t i = 0; i < c->nscenarios; i++) {
		const struct agent_scenario_conf *s = &c->scenarios[i];
		memset(&out[i], 0, sizeof(out[i]));
		snprintf(out[i].dev, sizeof(out[i].dev), "%s", s->dev ? s->dev : "");
		out[i].situation = (enum sim_situation)s->situation;
		out[i].port = (int32_t)s->port;
		out[i].at_ms = s->at_s * 1000;
		out[i].duration_ms = s->duration_s * 1000;
	}
	p->scenarios = out;
	p->nscenarios = c->nscenarios;
}

void agent_conf_free(struct agent_conf *c)
{
	sp_conf_free(&agent_conf_schema, c);
	for (size_t i = 0; i < c->nscenarios; i++) {
		sp_conf_free_keys(scenario_keys, sizeof(scenario_keys) / sizeof(scenario_keys[0]),
				  &c->scenarios[i]);
		free(c->scenarios[i].section);
	}
	c->nscenarios = 0;
}
