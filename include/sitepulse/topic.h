/*
 * topic.h - MQTT topic names of CONTRACT §2: sp/v1/{site}/{agent}/{kind}.
 * Pure string handling; the topic's site and agent are authoritative.
 */
#ifndef SP_TOPIC_H
#define SP_TOPIC_H

#include <stddef.h>

#include "sitepulse/ids.h"

enum sp_topic_kind {
	SP_TOPIC_BIRTH = 0,
	SP_TOPIC_DATA,
	SP_TOPIC_STATE,
	SP_TOPIC_ACK,
	SP_TOPIC_CMD,
	SP_TOPIC_KIND_COUNT
};

#define SP_TOPIC_MAX (6 + 2 * SP_ID_MAX + 2 + 5 + 1) /* "sp/v1/" site "/" agent "/" kind NUL */

struct sp_topic {
	char site[SP_ID_MAX + 1];
	char agent[SP_ID_MAX + 1];
	enum sp_topic_kind kind;
};

/*
 * Parses the len bytes at topic (need not be NUL-terminated).
 * Returns 0, or SP_EINVAL if it is not exactly sp/v1/{id}/{id}/{kind}.
 */
int sp_topic_parse(const char *topic, size_t len, struct sp_topic *out);

/* Writes the topic into buf (at least SP_TOPIC_MAX bytes). Returns 0 or SP_EINVAL. */
int sp_topic_format(char *buf, size_t cap, const char *site, const char *agent,
		    enum sp_topic_kind kind);

/* Wire name of a kind ("birth", "data", ...). */
const char *sp_topic_kind_name(enum sp_topic_kind kind);

#endif
