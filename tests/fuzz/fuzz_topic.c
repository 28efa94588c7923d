/* fuzz_topic.c - libFuzzer target for the topic parser and identifier checks. */
#include "sitepulse/ids.h"
#include "sitepulse/topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_topic t;
	char again[SP_TOPIC_MAX];
	const char *p = (const char *)data;

	sp_id_valid(p, size);
	if (sp_topic_parse(p, size, &t) == 0) {
		/* what parses must format back to exactly the input */
		if (sp_topic_format(again, sizeof(again), t.site, t.agent, t.kind) != 0 ||
		    strlen(again) != size || memcmp(again, p, size) != 0)
			abort();
	}
	return 0;
}
