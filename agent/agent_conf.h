/*
 * agent_conf.h - the agent's configuration: the struct, its table, and loading.
 * Every key is documented by its table entry (see docs/configuration.md).
 */
#ifndef SP_AGENT_CONF_H
#define SP_AGENT_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "sim.h"
#include "sitepulse/conf.h"

#define AGENT_SCENARIOS_MAX 64

struct agent_conf {
	struct {
		char *site;
		char *id;
		char *spool_path;
		int64_t spool_max_mb;
		bool spool_sync_full;
		char *journal;       /* optional: every created message, JSON lines */
		int64_t batch_ms;
		int64_t batch_max;
		int64_t resend_s;
		int64_t ack_wait_s;
		char *fw;
	} agent;
	struct {
		char *uri;
		char *client_id;     /* default: sitepulse-agent-{site}-{id} */
		char *username;
		char *password;
		char *ca_file;
		char *cert_file;
		char *key_file;
		bool tls_insecure;
		int64_t keepalive_s;
		int64_t max_inflight;
		int64_t max_unacked;
	} mqtt;
	struct {
		int64_t seed;
		int64_t lifts;
		int64_t chargers;
		int64_t ports;
		int64_t floor_min;
		int64_t floor_max;
		double rated_speed;
		double port_limit_w;
		int64_t heartbeat_s;
		double time_scale;
	} sim;
	struct {
		int level;           /* enum sp_log_level */
	} log;
	/* [scenario.NAME] sections and --scenario options */
	struct agent_scenario_conf {
		char *section;       /* NAME of [scenario.NAME], or "--scenario" */
		char *dev;
		char *situation_text;
		int situation;       /* enum sim_situation, resolved by agent_conf_load */
		int64_t port;
		int64_t at_s;
		int64_t duration_s;
	} scenarios[AGENT_SCENARIOS_MAX];
	size_t nscenarios;
};

extern const struct sp_conf_schema agent_conf_schema;

/* Applies defaults. 0 or SP_ENOMEM. */
int agent_conf_init(struct agent_conf *c);

/*
 * Loads path into c (after agent_conf_init), then checks cross-key rules
 * (required keys, scenario devices) and what the simulator would refuse at
 * start (a site without devices, a scenario's device or port missing from
 * the site). Errors go to errs. 0 or SP_ECONFIG.
 */
int agent_conf_load(struct agent_conf *c, const char *path, struct sp_conf_errors *errs);

/*
 * Adds a --scenario option ("DEV:SITUATION@AT[+DUR]"), after agent_conf_load:
 * its device and port are checked against the loaded [sim]. 0 or SP_ECONFIG.
 */
int agent_conf_add_scenario(struct agent_conf *c, const char *spec, struct sp_conf_errors *errs);

/* Fills sim parameters (scenarios points into out_scenarios, room for AGENT_SCENARIOS_MAX). */
void agent_conf_sim_params(const struct agent_conf *c, struct sim_params *p,
			   struct sim_scenario *out_scenarios);

void agent_conf_free(struct agent_conf *c);

#endif
