/*
 * main.c - sitepulse-agent: command line, configuration, signals, exit codes.
 * Exit status (CONTRACT §7): 0 normal end, 1 runtime failure, 2 bad command
 * line or configuration.
 */
#include "agent.h"
#include "agent_conf.h"

#include "sitepulse/error.h"
#include "sitepulse/log.h"
#include "sitepulse/signals.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out,
		"NAME\n"
		"    sitepulse-agent - site gateway agent: lift and charger telemetry over MQTT\n"
		"\n"
		"SYNOPSIS\n"
		"    sitepulse-agent --config FILE [--scenario SPEC]... [--check-config]\n"
		"    sitepulse-agent --help | --version\n"
		"\n"
		"DESCRIPTION\n"
		"    Represents one site gateway with its lifts and charging stations (today from a\n"
		"    built-in simulator). Every data message is committed to a local SQLite spool\n"
		"    before it is published to the broker (topics sp/v1/SITE/AGENT/...), and stays\n"
		"    there until the collector's end-to-end ack covers it; unacknowledged messages\n"
		"    are published again, oldest first. Sequence numbers survive restarts.\n"
		"\n"
		"OPTIONS\n"
		"    -c, --config FILE     read the configuration (INI) from FILE (required)\n"
		"    -s, --scenario SPEC   inject a situation: DEV[/PORT]:SITUATION@AT[+DURATION],\n"
		"                          AT and DURATION in seconds, e.g.\n"
		"                          lift-1:trapped_between_floors@30+120, :silent@60+90,\n"
		"                          chg-2:link_lost@60+300\n"
		"        --check-config    validate the configuration and exit (0 valid, 2 invalid)\n"
		"        --config-reference  print the key reference (Markdown) and exit\n"
		"    -h, --help            print this help and exit\n"
		"    -V, --version         print the version and exit\n"
		"\n"
		"SITUATIONS\n"
		"   ");
	for (int i = 0; i < SIM_SITUATION_COUNT; i++)
		fprintf(out, " %s", sim_situation_name((enum sim_situation)i));
	fprintf(out, "\n\nCONFIGURATION\n");
	sp_conf_print_reference(&agent_conf_schema, out, false);
	fprintf(out,
		"EXIT STATUS\n"
		"    0  normal end (after SIGTERM or SIGINT)\n"
		"    1  runtime failure (spool or journal unusable; stopped with records the\n"
		"       spool refused, e.g. on a full disk: they are lost)\n"
		"    2  bad command line or configuration; every problem is printed as\n"
		"       FILE:LINE: [section] key: problem (accepted: range)\n"
		"\n"
		"SIGNALS\n"
		"    SIGTERM, SIGINT  seal pending records into the spool, publish state offline,\n"
		"                     close the spool and exit 0 within 5 s\n"
		"\n"
		"SEE ALSO\n"
		"    sitepulse-collector(8), docs/configuration.md, docs/protocol.md\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},  {"scenario", required_argument, NULL, 's'},
		{"check-config", no_argument, NULL, 'k'},
		{"config-reference", no_argument, NULL, 'R'},  {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0}};
	struct agent_conf conf;
	struct sp_conf_errors errs = {NULL, 0};
	const char *config_path = NULL;
	const char *scenario_specs[AGENT_SCENARIOS_MAX];
	size_t nspecs = 0;
	bool check_only = false;
	int opt, status = 2;

	while ((opt = getopt_long(argc, argv, "c:s:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 's':
			if (nspecs >= AGENT_SCENARIOS_MAX) {
				fprintf(stderr, "sitepulse-agent: too many --scenario options\n");
				return 2;
			}
			scenario_specs[nspecs++] = optarg;
			break;
		case 'k': check_only = true; break;
		case 'R': sp_conf_print_reference(&agent_conf_schema, stdout, true); return 0;
		case 'h': usage(stdout); return 0;
		case 'V': printf("sitepulse-agent %s\n", SP_VERSION); return 0;
		default:
			fprintf(stderr, "Try 'sitepulse-agent --help'.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sitepulse-agent: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (config_path == NULL) {
		fprintf(stderr, "sitepulse-agent: --config FILE is required (see --help)\n");
		return 2;
	}

	if (agent_conf_init(&conf) != 0) {
		fprintf(stderr, "sitepulse-agent: out of memory\n");
		return 1;
	}
	agent_conf_load(&conf, config_path, &errs);
	for (size_t i = 0; i < nspecs; i++)
		agent_conf_add_scenario(&conf, scenario_specs[i], &errs);
	if (errs.count > 0) {
		sp_conf_errors_print(&errs, stderr);
		goto out;
	}
	if (check_only) {
		printf("%s: configuration OK\n", config_path);
		status = 0;
		goto out;
	}
	sp_log_set_level((enum sp_log_level)conf.log.level);

	sp_stop_on_signals();

	struct agent *agent = agent_create(&conf);
	if (agent == NULL) {
		status = 1;
		goto out;
	}
	SP_INFO("main", "sitepulse-agent %s started", SP_VERSION);
	status = agent_run(agent, &sp_stop_requested) == 0 ? 0 : 1;
	agent_destroy(agent);
	SP_INFO("main", "stopped");
out:
	sp_conf_errors_free(&errs);
	agent_conf_free(&conf);
	return status;
}
