/* test_topic.c - identifiers (CONTRACT §1) and MQTT topic names (CONTRACT §2). */
#include "harness.h"

#include "sitepulse/error.h"
#include "sitepulse/ids.h"
#include "sitepulse/topic.h"

/* A string of n copies of c (n < sizeof buffer). */
static const char *repeat(char *buf, size_t cap, char c, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* Parses a NUL-terminated topic; returns the rc. */
static int parse(const char *topic, struct sp_topic *out)
{
	return sp_topic_parse(topic, strlen(topic), out);
}

/* ---------------------------------------------------------------- ids */

static void test_id_valid(void)
{
	CHECK(sp_id_valid_str("hp-ruijin-07"));
	CHECK(sp_id_valid_str("gw-1"));
	CHECK(sp_id_valid_str("lift_1"));
	CHECK(sp_id_valid_str("a"));
	CHECK(sp_id_valid_str("7"));
	CHECK(sp_id_valid_str("0abc")); /* a leading digit is fine */
	CHECK(sp_id_valid_str("a-_-9"));
	CHECK(sp_id_valid("lift-1", 6));
	CHECK(sp_id_valid("lift-1XYZ", 6)); /* only len bytes count */
}

static void test_id_empty(void)
{
	CHECK(!sp_id_valid_str(""));
	CHECK(!sp_id_valid("abc", 0));
	CHECK(!sp_id_valid_str(NULL));
	CHECK(!sp_id_valid(NULL, 3));
}

static void test_id_length_limit(void)
{
	char buf[128];
	CHECK(sp_id_valid_str(repeat(buf, sizeof(buf), 'a', 64)));
	CHECK(sp_id_valid(buf, 64));
	CHECK(!sp_id_valid_str(repeat(buf, sizeof(buf), 'a', 65)));
	CHECK(!sp_id_valid(buf, 65));
	CHECK(!sp_id_valid_str(repeat(buf, sizeof(buf), 'a', 100)));
}

static void test_id_bad_characters(void)
{
	CHECK(!sp_id_valid_str("Lift-1"));
	CHECK(!sp_id_valid_str("lift-A"));
	CHECK(!sp_id_valid_str("-lift"));
	CHECK(!sp_id_valid_str("_lift"));
	CHECK(!sp_id_valid_str("lift 1"));
	CHECK(!sp_id_valid_str("lift.1"));
	CHECK(!sp_id_valid_str("lift/1"));
	CHECK(!sp_id_valid_str("lift+"));
	CHECK(!sp_id_valid_str("lift#"));
	CHECK(!sp_id_valid_str("caf\xc3\xa9"));  /* é in UTF-8 */
	CHECK(!sp_id_valid_str("\xe7\x94\xb5\xe6\xa2\xaf")); /* 电梯 */
	CHECK(!sp_id_valid_str("lift\x7f"));
	CHECK(!sp_id_valid_str("lift\t"));
}

static void test_id_embedded_nul(void)
{
	/* a NUL inside the counted bytes is not an identifier character */
	CHECK(!sp_id_valid("ab\0cd", 5));
	CHECK(!sp_id_valid("ab\0", 3));
	CHECK(sp_id_valid("ab\0cd", 2));
}

/* ---------------------------------------------------------------- parse */

static void test_parse_each_kind(void)
{
	static const struct {
		const char *topic;
		enum sp_topic_kind kind;
	} cases[] = {
		{"sp/v1/hp-ruijin-07/gw-1/birth", SP_TOPIC_BIRTH},
		{"sp/v1/hp-ruijin-07/gw-1/data", SP_TOPIC_DATA},
		{"sp/v1/hp-ruijin-07/gw-1/state", SP_TOPIC_STATE},
		{"sp/v1/hp-ruijin-07/gw-1/ack", SP_TOPIC_ACK},
		{"sp/v1/hp-ruijin-07/gw-1/cmd", SP_TOPIC_CMD},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sp_topic t;
		memset(&t, 0x55, sizeof(t));
		CHECK_EQ_INT(parse(cases[i].topic, &t), 0);
		CHECK_EQ_STR(t.site, "hp-ruijin-07");
		CHECK_EQ_STR(t.agent, "gw-1");
		CHECK_EQ_INT(t.kind, cases[i].kind);
	}
}

static void test_parse_longest_ids(void)
{
	char id[80], topic[256];
	struct sp_topic t;
	repeat(id, sizeof(id), 'z', 64);
	snprintf(topic, sizeof(topic), "sp/v1/%s/%s/birth", id, id);
	CHECK_EQ_INT(strlen(topic), SP_TOPIC_MAX - 1);
	CHECK_EQ_INT(parse(topic, &t), 0);
	CHECK_EQ_STR(t.site, id);
	CHECK_EQ_STR(t.agent, id);
	CHECK_EQ_INT(t.kind, SP_TOPIC_BIRTH);

	snprintf(topic, sizeof(topic), "sp/v1/9/%s/cmd", id);
	CHECK_EQ_INT(parse(topic, &t), 0);
	CHECK_EQ_STR(t.site, "9");
	CHECK_EQ_STR(t.agent, id);
}

static void test_parse_wrong_prefix(void)
{
	struct sp_topic t;
	CHECK_EQ_INT(parse("sp/v2/s/a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v0/s/a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("SP/v1/s/a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("xx/v1/s/a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("/sp/v1/s/a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("$share/g/sp/v1/s/a/data", &t), SP_EINVAL);
}

static void test_parse_segment_count(void)
{
	struct sp_topic t;
	CHECK_EQ_INT(parse("sp/v1/s/data", &t), SP_EINVAL);          /* missing agent */
	CHECK_EQ_INT(parse("sp/v1/s", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a", &t), SP_EINVAL);             /* missing kind */
	CHECK_EQ_INT(parse("sp/v1/s/a/b/data", &t), SP_EINVAL);      /* extra segment */
	CHECK_EQ_INT(parse("sp/v1/s/a/data/x", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a/data/data", &t), SP_EINVAL);
}

static void test_parse_empty_segments(void)
{
	struct sp_topic t;
	CHECK_EQ_INT(parse("sp/v1//a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s//data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a/", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1///", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp//v1/s/a/data", &t), SP_EINVAL);
}

static void test_parse_trailing_slash(void)
{
	struct sp_topic t;
	CHECK_EQ_INT(parse("sp/v1/s/a/data/", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a/birth/", &t), SP_EINVAL);
}

static void test_parse_bad_ids(void)
{
	struct sp_topic t;
	char id[80], topic[256];
	CHECK_EQ_INT(parse("sp/v1/Site/a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/Agent/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/-s/a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/_a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s.1/a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/caf\xc3\xa9/a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a b/data", &t), SP_EINVAL);

	repeat(id, sizeof(id), 'a', 65);
	snprintf(topic, sizeof(topic), "sp/v1/%s/a/data", id);
	CHECK_EQ_INT(parse(topic, &t), SP_EINVAL);
	snprintf(topic, sizeof(topic), "sp/v1/s/%s/data", id);
	CHECK_EQ_INT(parse(topic, &t), SP_EINVAL);
}

static void test_parse_unknown_kind(void)
{
	struct sp_topic t;
	CHECK_EQ_INT(parse("sp/v1/s/a/dat", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a/datas", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a/DATA", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a/alive", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a/births", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a/ ack", &t), SP_EINVAL);
}

static void test_parse_wildcards(void)
{
	struct sp_topic t;
	CHECK_EQ_INT(parse("sp/v1/+/+/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/+/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/+/a/data", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a/+", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s/a/#", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/#", &t), SP_EINVAL);
	CHECK_EQ_INT(parse("sp/v1/s#/a/data", &t), SP_EINVAL);
}

static void test_parse_too_long(void)
{
	char id[80], topic[512];
	struct sp_topic t;
	repeat(id, sizeof(id), 'a', 64);
	/* one character over the longest valid topic */
	snprintf(topic, sizeof(topic), "sp/v1/%s/%s/births", id, id);
	CHECK_EQ_INT(strlen(topic), SP_TOPIC_MAX);
	CHECK_EQ_INT(parse(topic, &t), SP_EINVAL);
	/* far over */
	memset(topic, 'a', sizeof(topic) - 1);
	memcpy(topic, "sp/v1/", 6);
	topic[sizeof(topic) - 1] = '\0';
	CHECK_EQ_INT(parse(topic, &t), SP_EINVAL);
}

static void test_parse_counted_not_terminated(void)
{
	struct sp_topic t;
	/* the topic is a prefix of a larger buffer with no NUL after it */
	const char buf[] = "sp/v1/hp-1/gw-1/dataXXXX/more";
	CHECK_EQ_INT(sp_topic_parse(buf, strlen("sp/v1/hp-1/gw-1/data"), &t), 0);
	CHECK_EQ_STR(t.site, "hp-1");
	CHECK_EQ_STR(t.agent, "gw-1");
	CHECK_EQ_INT(t.kind, SP_TOPIC_DATA);

	/* the bytes after the counted length decide nothing */
	const char buf2[] = "sp/v1/hp-1/gw-1/ack/data";
	CHECK_EQ_INT(sp_topic_parse(buf2, strlen("sp/v1/hp-1/gw-1/ack"), &t), 0);
	CHECK_EQ_INT(t.kind, SP_TOPIC_ACK);

	/* cutting inside the kind leaves an unknown kind */
	CHECK_EQ_INT(sp_topic_parse(buf, strlen("sp/v1/hp-1/gw-1/dat"), &t), SP_EINVAL);
	/* cutting right after the agent's slash leaves an empty kind */
	CHECK_EQ_INT(sp_topic_parse(buf, strlen("sp/v1/hp-1/gw-1/"), &t), SP_EINVAL);
	/* including the extra bytes makes it invalid */
	CHECK_EQ_INT(sp_topic_parse(buf, strlen(buf), &t), SP_EINVAL);

	/* a buffer with no NUL at all (exact-size array) */
	const char exact[20] = {'s', 'p', '/', 'v', '1', '/', 's', '/', 'a', '/',
				'c', 'm', 'd', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z', 'Z'};
	CHECK_EQ_INT(sp_topic_parse(exact, 13, &t), 0);
	CHECK_EQ_STR(t.site, "s");
	CHECK_EQ_STR(t.agent, "a");
	CHECK_EQ_INT(t.kind, SP_TOPIC_CMD);
	CHECK_EQ_INT(sp_topic_parse(exact, sizeof(exact), &t), SP_EINVAL);
}

static void test_parse_embedded_nul(void)
{
	struct sp_topic t;
	const char buf[] = "sp/v1/hp\0x/gw-1/data";
	CHECK_EQ_INT(sp_topic_parse(buf, sizeof(buf) - 1, &t), SP_EINVAL);
	const char buf2[] = "sp/v1/hp/gw-1/data\0";
	CHECK_EQ_INT(sp_topic_parse(buf2, sizeof(buf2), &t), SP_EINVAL); /* NUL counted */
}

/* ---------------------------------------------------------------- format */

static void test_format_round_trip(void)
{
	char buf[SP_TOPIC_MAX];
	char id[80];
	struct sp_topic t;
	for (int k = 0; k < SP_TOPIC_KIND_COUNT; k++) {
		CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "hp-ruijin-07", "gw-1",
					     (enum sp_topic_kind)k), 0);
		CHECK_EQ_INT(parse(buf, &t), 0);
		CHECK_EQ_STR(t.site, "hp-ruijin-07");
		CHECK_EQ_STR(t.agent, "gw-1");
		CHECK_EQ_INT(t.kind, k);
	}
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "hp-1", "gw-1", SP_TOPIC_DATA), 0);
	CHECK_EQ_STR(buf, "sp/v1/hp-1/gw-1/data");
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "hp-1", "gw-1", SP_TOPIC_ACK), 0);
	CHECK_EQ_STR(buf, "sp/v1/hp-1/gw-1/ack");

	/* the longest topic fits exactly in SP_TOPIC_MAX */
	repeat(id, sizeof(id), 'q', 64);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), id, id, SP_TOPIC_STATE), 0);
	CHECK_EQ_INT(strlen(buf), SP_TOPIC_MAX - 1);
	CHECK_EQ_INT(parse(buf, &t), 0);
	CHECK_EQ_STR(t.site, id);
	CHECK_EQ_INT(t.kind, SP_TOPIC_STATE);
}

static void test_format_rejects_bad_ids(void)
{
	char buf[SP_TOPIC_MAX];
	char id[80];
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "", "gw-1", SP_TOPIC_DATA), SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "hp-1", "", SP_TOPIC_DATA), SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), NULL, "gw-1", SP_TOPIC_DATA), SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "hp-1", NULL, SP_TOPIC_DATA), SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "HP-1", "gw-1", SP_TOPIC_DATA), SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "hp-1", "gw/1", SP_TOPIC_DATA), SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "+", "gw-1", SP_TOPIC_DATA), SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "hp-1", "#", SP_TOPIC_DATA), SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "-hp", "gw-1", SP_TOPIC_DATA), SP_EINVAL);
	repeat(id, sizeof(id), 'a', 65);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), id, "gw-1", SP_TOPIC_DATA), SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "hp-1", id, SP_TOPIC_DATA), SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "hp-1", "gw-1", SP_TOPIC_KIND_COUNT),
		     SP_EINVAL);
	CHECK_EQ_INT(sp_topic_format(buf, sizeof(buf), "hp-1", "gw-1", (enum sp_topic_kind)-1),
		     SP_EINVAL);
}

static void test_format_small_buffer(void)
{
	char buf[SP_TOPIC_MAX];
	/* "sp/v1/hp-1/gw-1/data" is 20 characters: 21 bytes fit, 20 do not */
	CHECK_EQ_INT(sp_topic_format(buf, 21, "hp-1", "gw-1", SP_TOPIC_DATA), 0);
	CHECK_EQ_STR(buf, "sp/v1/hp-1/gw-1/data");
	CHECK_EQ_INT(sp_topic_format(buf, 20, "hp-1", "gw-1", SP_TOPIC_DATA), SP_EINVAL);
}

static void test_kind_names(void)
{
	CHECK_EQ_STR(sp_topic_kind_name(SP_TOPIC_BIRTH), "birth");
	CHECK_EQ_STR(sp_topic_kind_name(SP_TOPIC_DATA), "data");
	CHECK_EQ_STR(sp_topic_kind_name(SP_TOPIC_STATE), "state");
	CHECK_EQ_STR(sp_topic_kind_name(SP_TOPIC_ACK), "ack");
	CHECK_EQ_STR(sp_topic_kind_name(SP_TOPIC_CMD), "cmd");
	CHECK_EQ_STR(sp_topic_kind_name(SP_TOPIC_KIND_COUNT), "?");
}

int main(void)
{
	RUN(test_id_valid);
	RUN(test_id_empty);
	RUN(test_id_length_limit);
	RUN(test_id_bad_characters);
	RUN(test_id_embedded_nul);
	RUN(test_parse_each_kind);
	RUN(test_parse_longest_ids);
	RUN(test_parse_wrong_prefix);
	RUN(test_parse_segment_count);
	RUN(test_parse_empty_segments);
	RUN(test_parse_trailing_slash);
	RUN(test_parse_bad_ids);
	RUN(test_parse_unknown_kind);
	RUN(test_parse_wildcards);
	RUN(test_parse_too_long);
	RUN(test_parse_counted_not_terminated);
	RUN(test_parse_embedded_nul);
	RUN(test_format_round_trip);
	RUN(test_format_rejects_bad_ids);
	RUN(test_format_small_buffer);
	RUN(test_kind_names);
	HARNESS_EXIT();
}
