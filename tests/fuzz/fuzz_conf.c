/*
 * fuzz_conf.c - libFuzzer target for the configuration parser (libinih
 * under the declarative tables), with the collector's and the agent's real
 * schemas. A failed load must still free cleanly; a successful one must
 * leave every string key set or NULL.
 */
#include "agent_conf.h"
#include "collector_conf.h"

#include "sitepulse/conf.h"
#include "sitepulse/log.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_conf_errors errs = {NULL, 0};
	struct collector_conf cc;
	struct agent_conf ac;
	FILE *f;

	sp_log_set_level(SP_LOG_ERROR);
	if (size == 0)
		return 0;
	if ((f = fmemopen((void *)data, size, "r")) != NULL) {
		collector_conf_init(&cc);
		sp_conf_load_stream(&collector_conf_schema, f, "fuzz.ini", &cc, &errs);
		fclose(f);
		collector_conf_free(&cc);
		sp_conf_errors_free(&errs);
	}
	if ((f = fmemopen((void *)data, size, "r")) != NULL) {
		agent_conf_init(&ac);
		sp_conf_load_stream(&agent_conf_schema, f, "fuzz.ini", &ac, &errs);
		fclose(f);
		agent_conf_free(&ac);
		sp_conf_errors_free(&errs);
	}
	return 0;
}
