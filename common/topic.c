/* topic.c - see topic.h. */
#include "sitepulse/topic.h"
#include "sitepulse/error.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[SP_TOPIC_KIND_COUNT] = {"birth", "data", "state", "ack",
							    "cmd"};

const char *sp_topic_kind_name(enum sp_topic_kind kind)
{
	return (unsigned)kind < SP_TOPIC_KIND_COUNT ? kind_names[kind] : "?";
}

/* Takes the next '/'-terminated (or final) segment of [*p, end). */
static int next_segment(const char **p, const char *end, const char **seg, size_t *seg_len,
			int last)
{
	const char *s = *p;
	const char *slash = memchr(s, '/', (size_t)(end - s));
	if (last) {
		if (slash != NULL)
			return SP_EINVAL;
		slash = end;
	} else if (slash == NULL) {
		return SP_EINVAL;
	}
	*seg = s;
	*seg_len = (size_t)(slash - s);
	*p = last ? end : slash + 1;
	return 0;
}

int sp_topic_parse(const char *topic, size_t len, struct sp_topic *out)
{
	const char *p = topic, *end = topic + len, *seg;
	size_t n;

	if (topic == NULL || len < 6 || len >= SP_TOPIC_MAX || memcmp(topic, "sp/v1/", 6) != 0)
		return SP_EINVAL;
	p += 6;
	if (next_segment(&p, end, &seg, &n, 0) || !sp_id_valid(seg, n))
		return SP_EINVAL;
	memcpy(out->site, seg, n);
	out->site[n] = '\0';
	if (next_segment(&p, end, &seg, &n, 0) || !sp_id_valid(seg, n))
		return SP_EINVAL;
	memcpy(out->agent, seg, n);
	out->agent[n] = '\0';
	if (next_segment(&p, end, &seg, &n, 1))
		return SP_EINVAL;
	for (int k = 0; k < SP_TOPIC_KIND_COUNT; k++) {
		if (strlen(kind_names[k]) == n && memcmp(kind_names[k], seg, n) == 0) {
			out->kind = (enum sp_topic_kind)k;
			return 0;
		}
	}
	return SP_EINVAL;
}

int sp_topic_format(char *buf, size_t cap, const char *site, const char *agent,
		    enum sp_topic_kind kind)
{
	if (!sp_id_valid_str(site) || !sp_id_valid_str(agent) ||
	    (unsigned)kind >= SP_TOPIC_KIND_COUNT)
		return SP_EINVAL;
	int n = snprintf(buf, cap, "sp/v1/%s/%s/%s", site, agent, kind_names[kind]);
	return n < 0 || (size_t)n >= cap ? SP_EINVAL : 0;
}
