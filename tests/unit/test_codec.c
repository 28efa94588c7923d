/* test_codec.c - decoding, validation (one case per rejection reason) and encoding. */
#include "harness.h"

#include "sitepulse/buf.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"

#include <stdlib.h>

#define NOW 1764320000000LL

static struct sp_decoder *dec;

/* Decodes a data message whose records array is `recs`; returns the whole-message rc. */
static int data(const char *recs, struct sp_data_msg *m, struct sp_reject_info *why)
{
	char buf[8192];
	snprintf(buf, sizeof(buf), "{\"v\":1,\"seq\":7,\"ts\":1764320000123,\"records\":[%s]}", recs);
	return sp_decode_data(dec, buf, strlen(buf), NOW, m, why);
}

/* Returns the reject reason of the single record `rec`. */
static enum sp_reject one(const char *rec)
{
	struct sp_data_msg m;
	struct sp_reject_info why;
	if (data(rec, &m, &why) != 0 || m.count != 1)
		return (enum sp_reject)-1;
	return m.rejects[0].reason;
}

/* Returns the whole-message reject reason of a payload (NONE if accepted). */
static enum sp_reject msg(const char *payload)
{
	struct sp_data_msg m;
	struct sp_reject_info why = {SP_REJ_NONE, NULL};
	if (sp_decode_data(dec, payload, strlen(payload), NOW, &m, &why) == 0)
		return SP_REJ_NONE;
	return why.reason;
}

#define LIFT_OK                                                                           \
	"{\"t\":\"lift\",\"dev\":\"lift-1\",\"ts\":1764320000000,\"floor\":3,\"dir\":\"up\"," \
	"\"door\":\"closed\",\"door_zone\":false,\"occupied\":true,\"speed\":0.98,"            \
	"\"mode\":\"normal\",\"power\":\"mains\",\"safety_ok\":true,\"trips\":12,"             \
	"\"door_cycles\":30,\"run_s\":4000}"

static void test_valid_records(void)
{
	struct sp_data_msg m;
	struct sp_reject_info why;
	const char *recs =
		LIFT_OK ","
		"{\"t\":\"station\",\"dev\":\"chg-1\",\"ts\":1764320000000,\"power_w\":1520.5,"
		"\"supply_v\":221.4,\"ambient_c\":24.5,\"smoke\":false,\"leak_ma\":3.1,"
		"\"door_open\":false,\"energy_wh\":123456},"
		"{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":1764320000000,\"port\":3,\"state\":\"charging\","
		"\"v\":221.4,\"a\":2.31,\"w\":511.4,\"temp_c\":31.2,\"session_wh\":412},"
		"{\"t\":\"session\",\"dev\":\"chg-1\",\"ts\":1764320000000,\"port\":3,"
		"\"start\":1764300000000,\"end\":1764320000000,\"wh\":930.5,\"reason\":\"full\"},"
		"{\"t\":\"fault\",\"dev\":\"chg-1\",\"ts\":1764320000000,\"code\":\"C04\",\"active\":true,"
		"\"port\":3,\"detail\":\"port 3 at 71.5 \\u00b0C\"}";
	CHECK_EQ_INT(data(recs, &m, &why), 0);
	CHECK_EQ_INT(m.seq, 7);
	CHECK_EQ_INT(m.ts, 1764320000123LL);
	CHECK_EQ_INT(m.count, 5);
	CHECK_EQ_INT(m.rejected, 0);
	CHECK_EQ_INT(m.records[0].kind, SP_REC_LIFT);
	CHECK_EQ_STR(m.records[0].dev, "lift-1");
	CHECK_EQ_INT(m.records[0].u.lift.floor, 3);
	CHECK_EQ_INT(m.records[0].u.lift.dir, SP_DIR_UP);
	CHECK(m.records[0].u.lift.occupied);
	CHECK(m.records[0].has & SP_HAS_SPEED);
	CHECK_EQ_INT(m.records[0].u.lift.run_s, 4000);
	CHECK_EQ_INT(m.records[1].u.station.energy_wh, 123456);
	CHECK(m.records[1].u.station.supply_v == 221.4);
	CHECK_EQ_INT(m.records[2].u.port.state, SP_PORT_CHARGING);
	CHECK_EQ_INT(m.records[3].u.session.reason, SP_STOP_FULL);
	CHECK_EQ_STR(m.records[4].u.fault.code, "C04");
	CHECK_EQ_STR(m.records[4].u.fault.detail, "port 3 at 71.5 \xc2\xb0" "C");
	CHECK(m.records[4].has & SP_HAS_PORT);
}

static void test_optional_fields_absent(void)
{
	CHECK_EQ_INT(one("{\"t\":\"lift\",\"dev\":\"l\",\"ts\":1764320000000,\"floor\":0,\"dir\":\"stop\","
			 "\"door\":\"open\",\"door_zone\":true,\"occupied\":false,\"mode\":\"fire\"}"),
		     SP_REJ_NONE);
	CHECK_EQ_INT(one("{\"t\":\"station\",\"dev\":\"c\",\"ts\":1764320000000,\"smoke\":true}"),
		     SP_REJ_NONE);
}

static void test_unknown_fields_ignored(void)
{
	struct sp_data_msg m;
	struct sp_reject_info why;
	CHECK_EQ_INT(data("{\"t\":\"port\",\"dev\":\"c\",\"ts\":1764320000000,\"port\":1,"
			  "\"state\":\"idle\",\"future\":{\"nested\":[1,2,3]},\"x\":null}",
			  &m, &why),
		     0);
	CHECK_EQ_INT(m.rejected, 0);
	/* unknown top-level fields too */
	CHECK_EQ_INT(msg("{\"v\":1,\"seq\":1,\"ts\":1764320000000,\"extra\":\"yes\",\"records\":["
			 "{\"t\":\"station\",\"dev\":\"c\",\"ts\":1764320000000,\"smoke\":false}]}"),
		     SP_REJ_NONE);
}

/* One case per record-level rejection reason. */
static void test_record_rejections(void)
{
	CHECK_EQ_INT(one("42"), SP_REJ_NOT_OBJECT);
	CHECK_EQ_INT(one("{\"t\":\"lift\",\"dev\":\"l\",\"ts\":1764320000000,\"floor\":0,\"dir\":\"up\","
			 "\"door\":\"open\",\"door_zone\":true,\"occupied\":false}"),
		     SP_REJ_MISSING_FIELD); /* mode */
	CHECK_EQ_INT(one("{\"dev\":\"l\",\"ts\":1764320000000}"), SP_REJ_MISSING_FIELD);
	CHECK_EQ_INT(one("{\"t\":\"station\",\"dev\":\"c\",\"ts\":1764320000000,\"smoke\":\"no\"}"),
		     SP_REJ_BAD_TYPE);
	CHECK_EQ_INT(one("{\"t\":\"port\",\"dev\":\"c\",\"ts\":1764320000000,\"port\":1.5,\"state\":\"idle\"}"),
		     SP_REJ_BAD_TYPE);
	CHECK_EQ_INT(one("{\"t\":\"port\",\"dev\":\"c\",\"ts\":1764320000000,\"port\":65,\"state\":\"idle\"}"),
		     SP_REJ_OUT_OF_RANGE);
	CHECK_EQ_INT(one("{\"t\":\"port\",\"dev\":\"c\",\"ts\":1764320000000,\"port\":1,\"state\":\"idle\",\"v\":-3}"),
		     SP_REJ_OUT_OF_RANGE);
	CHECK_EQ_INT(one("{\"t\":\"port\",\"dev\":\"c\",\"ts\":1764320000000,\"port\":1,\"state\":\"melting\"}"),
		     SP_REJ_BAD_ENUM);
	CHECK_EQ_INT(one("{\"t\":\"station\",\"dev\":\"Chg-1\",\"ts\":1764320000000,\"smoke\":false}"),
		     SP_REJ_BAD_ID);
	CHECK_EQ_INT(one("{\"t\":\"station\",\"dev\":\"-c\",\"ts\":1764320000000,\"smoke\":false}"),
		     SP_REJ_BAD_ID);
	CHECK_EQ_INT(one("{\"t\":\"station\",\"dev\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
			 "\"ts\":1764320000000,\"smoke\":false}"),
		     SP_REJ_BAD_ID); /* 65 characters */
	CHECK_EQ_INT(one("{\"t\":\"fault\",\"dev\":\"c\",\"ts\":1764320000000,\"code\":\"a b\",\"active\":true}"),
		     SP_REJ_BAD_TEXT);
	CHECK_EQ_INT(one("{\"t\":\"fault\",\"dev\":\"c\",\"ts\":1764320000000,\"code\":\"x\",\"active\":true,"
			 "\"detail\":\"\xff\xfe\"}"),
		     SP_REJ_BAD_TEXT); /* not UTF-8 */
	CHECK_EQ_INT(one("{\"t\":\"station\",\"dev\":\"c\",\"ts\":1000,\"smoke\":false}"), SP_REJ_BAD_TS);
	CHECK_EQ_INT(one("{\"t\":\"station\",\"dev\":\"c\",\"ts\":1864320000000,\"smoke\":false}"),
		     SP_REJ_BAD_TS); /* years ahead of NOW */
	CHECK_EQ_INT(one("{\"t\":\"station\",\"dev\":\"c\",\"ts\":1764320000000,\"smoke\":false,\"smoke\":true}"),
		     SP_REJ_DUPLICATE_FIELD);
	CHECK_EQ_INT(one("{\"t\":\"station\",\"t\":\"lift\",\"dev\":\"c\",\"ts\":1764320000000,\"smoke\":false}"),
		     SP_REJ_DUPLICATE_FIELD);
	CHECK_EQ_INT(one("{\"t\":\"elevator\",\"dev\":\"c\",\"ts\":1764320000000}"), SP_REJ_UNKNOWN_KIND);
	CHECK_EQ_INT(one("{\"t\":\"session\",\"dev\":\"c\",\"ts\":1764320000000,\"port\":1,\"start\":1764320000000,"
			 "\"end\":1764310000000,\"wh\":1,\"reason\":\"full\"}"),
		     SP_REJ_OUT_OF_RANGE); /* ends before it starts */
}

/* One case per message-level rejection reason. */
static void test_message_rejections(void)
{
	CHECK_EQ_INT(msg("{\"v\":1,\"seq\":1"), SP_REJ_BAD_JSON);
	CHECK_EQ_INT(msg("{\"v\":1} trailing"), SP_REJ_BAD_JSON);
	CHECK_EQ_INT(msg(""), SP_REJ_BAD_JSON);
	CHECK_EQ_INT(msg("[1,2]"), SP_REJ_NOT_OBJECT);
	CHECK_EQ_INT(msg("{\"v\":2,\"seq\":1,\"ts\":1764320000000,\"records\":[]}"), SP_REJ_BAD_VERSION);
	CHECK_EQ_INT(msg("{\"v\":1,\"ts\":1764320000000,\"records\":[]}"), SP_REJ_MISSING_FIELD);
	CHECK_EQ_INT(msg("{\"v\":1,\"seq\":\"1\",\"ts\":1764320000000,\"records\":[]}"), SP_REJ_BAD_TYPE);
	CHECK_EQ_INT(msg("{\"v\":1,\"seq\":0,\"ts\":1764320000000,\"records\":[]}"), SP_REJ_OUT_OF_RANGE);
	CHECK_EQ_INT(msg("{\"v\":1,\"seq\":1,\"ts\":99,\"records\":[{}]}"), SP_REJ_BAD_TS);
	CHECK_EQ_INT(msg("{\"v\":1,\"seq\":1,\"ts\":1764320000000,\"records\":[]}"), SP_REJ_NO_RECORDS);
	CHECK_EQ_INT(msg("{\"v\":1,\"seq\":1,\"ts\":1764320000000,\"records\":{}}"), SP_REJ_BAD_TYPE);
	/* a top-level member twice is ambiguous: rejected, and its seq is not taken */
	{
		const char *dup[] = {
			"{\"v\":1,\"seq\":1,\"seq\":2,\"ts\":1764320000000,\"records\":[" LIFT_OK "]}",
			"{\"v\":1,\"v\":2,\"seq\":1,\"ts\":1764320000000,\"records\":[" LIFT_OK "]}",
			"{\"v\":1,\"seq\":1,\"ts\":1764320000000,\"ts\":1,\"records\":[" LIFT_OK "]}",
			"{\"v\":1,\"seq\":1,\"ts\":1764320000000,\"records\":[" LIFT_OK "],\"records\":[]}",
		};
		for (size_t i = 0; i < sizeof(dup) / sizeof(dup[0]); i++) {
			struct sp_data_msg dm;
			struct sp_reject_info dwhy;
			CHECK_EQ_INT(sp_decode_data(dec, dup[i], strlen(dup[i]), NOW, &dm, &dwhy), SP_EINVAL);
			CHECK_EQ_INT(dwhy.reason, SP_REJ_DUPLICATE_FIELD);
			CHECK_EQ_INT(dm.seq, 0);
		}
		/* an unknown member twice is still just ignored */
		CHECK_EQ_INT(msg("{\"v\":1,\"x\":1,\"x\":2,\"seq\":1,\"ts\":1764320000000,\"records\":[" LIFT_OK "]}"),
			     SP_REJ_NONE);
	}

	/* 1001 records */
	struct sp_buf b = SP_BUF_INIT(0);
	sp_buf_puts(&b, "{\"v\":1,\"seq\":1,\"ts\":1764320000000,\"records\":[");
	for (int i = 0; i <= SP_RECORDS_MAX; i++)
		sp_buf_puts(&b, i ? ",{}" : "{}");
	sp_buf_puts(&b, "]}");
	CHECK_EQ_INT(msg(b.data), SP_REJ_TOO_MANY_RECORDS);

	/* one byte over 256 KiB */
	sp_buf_reset(&b);
	sp_buf_puts(&b, "{\"v\":1,\"pad\":\"");
	while (b.len < SP_PAYLOAD_MAX - 1)
		sp_buf_putc(&b, 'x');
	sp_buf_puts(&b, "\"}");
	CHECK(b.len > SP_PAYLOAD_MAX);
	struct sp_data_msg m;
	struct sp_reject_info why;
	CHECK_EQ_INT(sp_decode_data(dec, b.data, b.len, NOW, &m, &why), SP_EINVAL);
	CHECK_EQ_INT(why.reason, SP_REJ_TOO_LARGE);
	CHECK_EQ_INT(m.seq, 0); /* it has none */

	/* too large, but its seq is read: the rejection counts as handled for the ack */
	static const struct {
		const char *head;
		size_t total;
		int64_t seq;
	} big[] = {
	    {"{\"v\":1,\"seq\":7,\"ts\":1764320000000,\"records\":[],\"pad\":\"", SP_PAYLOAD_MAX + 1, 7},
	    {"{\"v\":1,\"seq\":8,\"ts\":1764320000000,\"records\":[],\"pad\":\"", SP_PAYLOAD_PEEK_MAX, 8},
	    /* beyond what is read for a seq */
	    {"{\"v\":1,\"seq\":9,\"ts\":1764320000000,\"records\":[],\"pad\":\"", SP_PAYLOAD_PEEK_MAX + 1, 0},
	    /* an ambiguous or invalid seq is no seq */
	    {"{\"v\":1,\"seq\":9,\"seq\":10,\"pad\":\"", SP_PAYLOAD_MAX + 1, 0},
	    {"{\"v\":1,\"seq\":0,\"pad\":\"", SP_PAYLOAD_MAX + 1, 0},
	    {"{\"v\":1,\"seq\":\"9\",\"pad\":\"", SP_PAYLOAD_MAX + 1, 0},
	};
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		sp_buf_reset(&b);
		sp_buf_puts(&b, big[i].head);
		while (b.len < big[i].total - 2)
			sp_buf_putc(&b, 'x');
		sp_buf_puts(&b, "\"}");
		CHECK_EQ_INT(b.len, big[i].total);
		CHECK_EQ_INT(sp_decode_data(dec, b.data, b.len, NOW, &m, &why), SP_EINVAL);
		CHECK_EQ_INT(why.reason, SP_REJ_TOO_LARGE);
		CHECK_EQ_INT(m.seq, big[i].seq);
	}
	/* broken JSON over the limit: no seq */
	sp_buf_reset(&b);
	sp_buf_puts(&b, "{\"v\":1,\"seq\":5,\"pad\":\"");
	while (b.len < SP_PAYLOAD_MAX + 10)
		sp_buf_putc(&b, 'x');
	CHECK_EQ_INT(sp_decode_data(dec, b.data, b.len, NOW, &m, &why), SP_EINVAL);
	CHECK_EQ_INT(why.reason, SP_REJ_TOO_LARGE);
	CHECK_EQ_INT(m.seq, 0);

	/* deep nesting is refused by the parser, not by the stack */
	sp_buf_reset(&b);
	for (int i = 0; i < 100000; i++)
		sp_buf_putc(&b, '[');
	CHECK_EQ_INT(msg(b.data), SP_REJ_BAD_JSON);
	sp_buf_free(&b);
}

static void test_good_records_survive_bad_neighbours(void)
{
	struct sp_data_msg m;
	struct sp_reject_info why;
	CHECK_EQ_INT(data(LIFT_OK ",17,{\"t\":\"nope\"}," LIFT_OK, &m, &why), 0);
	CHECK_EQ_INT(m.count, 4);
	CHECK_EQ_INT(m.rejected, 2);
	CHECK_EQ_INT(m.rejects[0].reason, SP_REJ_NONE);
	CHECK_EQ_INT(m.rejects[1].reason, SP_REJ_NOT_OBJECT);
	CHECK_EQ_INT(m.rejects[2].reason, SP_REJ_MISSING_FIELD);
	CHECK_EQ_INT(m.rejects[3].reason, SP_REJ_NONE);
}

/* Members in any order decode as in table order; a repeat is caught wherever it comes. */
static void test_member_order(void)
{
	struct sp_data_msg m;
	struct sp_reject_info why;
	CHECK_EQ_INT(data(LIFT_OK, &m, &why), 0);
	struct sp_record canonical = m.records[0];
	const char *reversed =
		"{\"run_s\":4000,\"door_cycles\":30,\"trips\":12,\"safety_ok\":true,"
		"\"power\":\"mains\",\"mode\":\"normal\",\"speed\":0.98,\"occupied\":true,"
		"\"door_zone\":false,\"door\":\"closed\",\"dir\":\"up\",\"floor\":3,"
		"\"ts\":1764320000000,\"dev\":\"lift-1\",\"t\":\"lift\"}";
	CHECK_EQ_INT(data(reversed, &m, &why), 0);
	CHECK_EQ_INT(m.rejected, 0);
	CHECK_EQ_INT(m.records[0].kind, canonical.kind);
	CHECK_EQ_STR(m.records[0].dev, canonical.dev);
	CHECK_EQ_INT(m.records[0].ts, canonical.ts);
	CHECK_EQ_INT(m.records[0].has, canonical.has);
	CHECK(memcmp(&m.records[0].u.lift, &canonical.u.lift, sizeof(canonical.u.lift)) == 0);
	/* the repeat right after its first match, and one far behind it */
	CHECK_EQ_INT(one("{\"t\":\"lift\",\"dev\":\"l\",\"ts\":1764320000000,\"floor\":3,\"floor\":4,"
			 "\"dir\":\"up\",\"door\":\"closed\",\"door_zone\":false,\"occupied\":true,"
			 "\"mode\":\"normal\"}"),
		     SP_REJ_DUPLICATE_FIELD);
	CHECK_EQ_INT(one("{\"t\":\"lift\",\"dev\":\"l\",\"ts\":1764320000000,\"floor\":3,"
			 "\"dir\":\"up\",\"door\":\"closed\",\"door_zone\":false,\"occupied\":true,"
			 "\"mode\":\"normal\",\"dir\":\"down\"}"),
		     SP_REJ_DUPLICATE_FIELD);
}

static void test_round_trip(void)
{
	struct sp_data_msg m;
	struct sp_reject_info why;
	struct sp_buf b = SP_BUF_INIT(0);
	const char *rec = LIFT_OK;

	CHECK_EQ_INT(data(rec, &m, &why), 0);
	CHECK_EQ_INT(sp_encode_record(&b, &m.records[0]), 0);
	CHECK_EQ_STR(b.data, rec); /* canonical form = what a conforming agent sends */

	/* every kind, every optional field: each re-encodes to exactly its input */
	static const char *const canonical[] = {
		"{\"t\":\"station\",\"dev\":\"chg-1\",\"ts\":1764320000000,\"power_w\":1520.5,"
		"\"supply_v\":221.4,\"ambient_c\":-24.5,\"smoke\":false,\"leak_ma\":3.1,"
		"\"door_open\":true,\"energy_wh\":123456}",
		"{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":1764320000000,\"port\":3,"
		"\"state\":\"charging\",\"v\":221.4,\"a\":2.31,\"w\":511.4,\"temp_c\":31.2,"
		"\"session_wh\":412}",
		"{\"t\":\"session\",\"dev\":\"chg-1\",\"ts\":1764320000000,\"port\":3,"
		"\"start\":1764300000000,\"end\":1764320000000,\"wh\":930.5,\"reason\":\"full\"}",
		/* texts hold no control characters (bad_text), but quotes and backslashes */
		"{\"t\":\"fault\",\"dev\":\"chg-1\",\"ts\":1764320000000,\"code\":\"C04\","
		"\"active\":true,\"port\":3,\"detail\":\"say \\\"hi\\\" \\\\ at 71.5 \xc2\xb0" "C\"}",
	};
	for (size_t i = 0; i < sizeof(canonical) / sizeof(canonical[0]); i++) {
		CHECK_EQ_INT(data(canonical[i], &m, &why), 0);
		CHECK_EQ_INT(m.rejected, 0);
		sp_buf_reset(&b);
		CHECK_EQ_INT(sp_encode_record(&b, &m.records[0]), 0);
		CHECK_EQ_STR(b.data, canonical[i]);
		/* head and tail (what the store keeps) are exactly the two halves */
		const struct sp_record *r = &m.records[0];
		sp_buf_reset(&b);
		CHECK_EQ_INT(sp_encode_record_head(&b, r->kind, r->dev, r->ts), 0);
		size_t head_len = b.len;
		CHECK(head_len < strlen(canonical[i]) &&
		      memcmp(b.data, canonical[i], head_len) == 0);
		sp_buf_reset(&b);
		CHECK_EQ_INT(sp_encode_record_tail(&b, r), 0);
		CHECK_EQ_STR(b.data, canonical[i] + head_len);
	}
	sp_buf_reset(&b);
	CHECK_EQ_INT(sp_encode_record_head(&b, SP_REC_KIND_COUNT, "x", 1), SP_EINVAL);
	CHECK_EQ_INT(sp_encode_record_head(&b, SP_REC_LIFT, NULL, 1), SP_EINVAL);
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(data(rec, &m, &why), 0);

	struct sp_record copy = m.records[0];
	sp_buf_reset(&b);
	CHECK_EQ_INT(sp_encode_data(&b, 99, NOW, &copy, 1), 0);
	CHECK_EQ_INT(sp_decode_data(dec, b.data, b.len, NOW, &m, &why), 0);
	CHECK_EQ_INT(m.seq, 99);
	CHECK_EQ_INT(m.count, 1);
	CHECK(memcmp(&m.records[0].u.lift, &copy.u.lift, sizeof(copy.u.lift)) == 0);
	sp_buf_free(&b);
}

static void test_numbers(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	double vals[] = {0, 1, -1, 221.4, 2.31, 0.98, 1e-7, 123456.789, -40.5, 1e300};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		sp_buf_reset(&b);
		sp_buf_json_num(&b, vals[i]);
		CHECK(strtod(b.data, NULL) == vals[i]);
	}
	sp_buf_reset(&b);
	sp_buf_json_num(&b, 221.4);
	CHECK_EQ_STR(b.data, "221.4");
	sp_buf_reset(&b);
	sp_buf_json_num(&b, -2.5);
	CHECK_EQ_STR(b.data, "-2.5");
	const struct {
		double v;
		const char *text;
	} exact[] = {{0.05, "0.05"}, {-0.5, "-0.5"}, {1234.5678, "1234.5678"}, {100, "100"},
		     {-40, "-40"}, {0.000001, "0.000001"}, {221.25, "221.25"}};
	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
		sp_buf_reset(&b);
		sp_buf_json_num(&b, exact[i].v);
		CHECK_EQ_STR(b.data, exact[i].text);
	}
	sp_buf_reset(&b);
	sp_buf_json_int(&b, -9007199254740991LL);
	CHECK_EQ_STR(b.data, "-9007199254740991");
	sp_buf_free(&b);
}

static void test_buf_json_str(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	const struct {
		const char *in, *out;
	} cases[] = {
		{"", "\"\""},
		{"lift-1", "\"lift-1\""},
		{"\"", "\"\\\"\""},
		{"a\\", "\"a\\\\\""},
		{"\x7f" "x\x1f", "\"\\u007fx\\u001f\""},
		{"\f\b", "\"\\u000c\\u0008\""},
		{"\xe7\x94\xb5\xe6\xa2\xaf 3\n", "\"\xe7\x94\xb5\xe6\xa2\xaf 3\\n\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sp_buf_reset(&b);
		CHECK_EQ_INT(sp_buf_json_str(&b, cases[i].in, strlen(cases[i].in)), 0);
		CHECK_EQ_STR(b.data, cases[i].out);
		CHECK_EQ_INT(b.len, strlen(cases[i].out));
	}
	/* a NUL inside the given length is escaped too */
	sp_buf_reset(&b);
	CHECK_EQ_INT(sp_buf_json_str(&b, "a\0b", 3), 0);
	CHECK_EQ_STR(b.data, "\"a\\u0000b\"");
	sp_buf_free(&b);

	/* putc keeps the limit and the terminating NUL, on its fast path too */
	struct sp_buf small = SP_BUF_INIT(3);
	CHECK_EQ_INT(sp_buf_putc(&small, 'a'), 0);
	CHECK_EQ_INT(sp_buf_putc(&small, 'b'), 0);
	CHECK_EQ_INT(sp_buf_putc(&small, 'c'), 0);
	CHECK_EQ_INT(sp_buf_putc(&small, 'd'), SP_ETOOBIG);
	CHECK_EQ_INT(small.len, 3);
	CHECK_EQ_STR(small.data, "abc");
	sp_buf_free(&small);
}

static void test_birth(void)
{
	struct sp_birth bi;
	struct sp_reject_info why;
	const char *p = "{\"v\":1,\"ts\":1764320000000,\"fw\":\"1.4.2\",\"devices\":["
			"{\"dev\":\"lift-1\",\"kind\":\"lift\",\"floors\":[-1,7],\"rated_speed\":1.0,\"rated_load\":630},"
			"{\"dev\":\"chg-1\",\"kind\":\"charger\",\"ports\":12,\"port_limit_w\":1000},"
			"{\"dev\":\"chg-2\",\"kind\":\"charger\",\"ports\":99},"
			"{\"dev\":\"lift-1\",\"kind\":\"lift\",\"floors\":[0,3],\"rated_speed\":1.0},"
			"{\"dev\":\"x\",\"kind\":\"toaster\"}]}";
	CHECK_EQ_INT(sp_decode_birth(dec, p, strlen(p), NOW, &bi, &why), 0);
	CHECK_EQ_STR(bi.fw, "1.4.2");
	CHECK_EQ_INT(bi.count, 5);
	CHECK_EQ_INT(bi.rejected, 3);
	CHECK_EQ_INT(bi.devices[0].floor_min, -1);
	CHECK_EQ_INT(bi.devices[0].floor_max, 7);
	CHECK_EQ_INT(bi.devices[1].ports, 12);
	CHECK_EQ_INT(bi.rejects[2].reason, SP_REJ_OUT_OF_RANGE);
	CHECK_EQ_INT(bi.rejects[3].reason, SP_REJ_DUPLICATE_FIELD);
	CHECK_EQ_INT(bi.rejects[4].reason, SP_REJ_BAD_ENUM);

	struct sp_buf b = SP_BUF_INIT(0);
	CHECK_EQ_INT(sp_encode_birth(&b, NOW, "2.0", bi.devices, 2), 0);
	struct sp_birth again;
	CHECK_EQ_INT(sp_decode_birth(dec, b.data, b.len, NOW, &again, &why), 0);
	CHECK_EQ_INT(again.count, 2);
	CHECK_EQ_INT(again.rejected, 0);
	CHECK_EQ_INT(again.devices[1].ports, 12);
	sp_buf_free(&b);

	/* CONTRACT §3.1 requires no field but dev and kind: the rest is taken when given */
	const char *bare = "{\"v\":1,\"ts\":1764320000000,\"devices\":[{\"dev\":\"lift-2\",\"kind\":\"lift\"},"
			   "{\"dev\":\"chg-3\",\"kind\":\"charger\"},"
			   "{\"dev\":\"lift-3\",\"kind\":\"lift\",\"floors\":[2,2]},"
			   "{\"dev\":\"lift-4\",\"kind\":\"lift\",\"rated_speed\":0}]}";
	CHECK_EQ_INT(sp_decode_birth(dec, bare, strlen(bare), NOW, &bi, &why), 0);
	CHECK_EQ_INT(bi.count, 4);
	CHECK_EQ_INT(bi.rejected, 2);
	CHECK_EQ_INT(bi.rejects[0].reason, SP_REJ_NONE);
	CHECK_EQ_INT(bi.rejects[1].reason, SP_REJ_NONE);
	CHECK_EQ_INT(bi.rejects[2].reason, SP_REJ_OUT_OF_RANGE); /* floors given: min < max */
	CHECK_EQ_INT(bi.rejects[3].reason, SP_REJ_OUT_OF_RANGE); /* rated_speed given: >= 0.05 */
	CHECK_EQ_INT(bi.devices[0].floor_min, 0);
	CHECK_EQ_INT(bi.devices[0].floor_max, 0);
	CHECK(bi.devices[0].rated_speed == 0);
	CHECK_EQ_INT(bi.devices[1].ports, 0);
	sp_buf_reset(&b);
	CHECK_EQ_INT(sp_encode_device_info(&b, &bi.devices[0]), 0);
	CHECK_EQ_INT(sp_buf_putc(&b, '\0'), 0);
	CHECK_EQ_STR(b.data, "{\"dev\":\"lift-2\",\"kind\":\"lift\"}");
	sp_buf_reset(&b);
	CHECK_EQ_INT(sp_encode_device_info(&b, &bi.devices[1]), 0);
	CHECK_EQ_INT(sp_buf_putc(&b, '\0'), 0);
	CHECK_EQ_STR(b.data, "{\"dev\":\"chg-3\",\"kind\":\"charger\"}");
	sp_buf_free(&b);

	const char *twice = "{\"v\":1,\"ts\":1764320000000,\"devices\":[{\"dev\":\"chg-1\",\"kind\":\"charger\","
			    "\"ports\":2}],\"devices\":[]}";
	CHECK_EQ_INT(sp_decode_birth(dec, twice, strlen(twice), NOW, &bi, &why), SP_EINVAL);
	CHECK_EQ_INT(why.reason, SP_REJ_DUPLICATE_FIELD);

	const char *empty = "{\"v\":1,\"ts\":1764320000000,\"devices\":[]}";
	CHECK_EQ_INT(sp_decode_birth(dec, empty, strlen(empty), NOW, &bi, &why), SP_EINVAL);
	CHECK_EQ_INT(why.reason, SP_REJ_NO_RECORDS);
}

/* A device named twice in one birth: the first entry counts, later ones are rejected. */
static void test_birth_duplicate_devices(void)
{
	struct sp_birth bi;
	struct sp_reject_info why;
	struct sp_buf p = SP_BUF_INIT(0);
	static const char *const names[] = {"b", "a", "b", "c", "a", "b", "bad!", "d"};
	sp_buf_puts(&p, "{\"v\":1,\"ts\":1764320000000,\"devices\":[");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		sp_buf_printf(&p, "%s{\"dev\":\"%s\",\"kind\":\"charger\",\"ports\":%zu}",
			      i ? "," : "", names[i], i + 1);
	sp_buf_puts(&p, "]}");
	CHECK_EQ_INT(sp_decode_birth(dec, p.data, p.len, NOW, &bi, &why), 0);
	CHECK_EQ_INT(bi.count, 8);
	CHECK_EQ_INT(bi.rejected, 4);
	static const int dup[] = {0, 0, 1, 0, 1, 1, 0, 0};
	for (size_t i = 0; i < 8; i++) {
		if (i == 6) {
			CHECK_EQ_INT(bi.rejects[i].reason, SP_REJ_BAD_ID);
			continue;
		}
		CHECK_EQ_INT(bi.rejects[i].reason, dup[i] ? SP_REJ_DUPLICATE_FIELD : SP_REJ_NONE);
	}
	/* the kept ones are the first of each name, with their own fields */
	CHECK_EQ_INT(bi.devices[0].ports, 1);
	CHECK_EQ_INT(bi.devices[1].ports, 2);

	/* a full birth of one name: all but the first rejected */
	sp_buf_reset(&p);
	sp_buf_puts(&p, "{\"v\":1,\"ts\":1764320000000,\"devices\":[");
	for (int i = 0; i < SP_DEVICES_MAX; i++)
		sp_buf_printf(&p, "%s{\"dev\":\"same\",\"kind\":\"charger\",\"ports\":2}", i ? "," : "");
	sp_buf_puts(&p, "]}");
	CHECK_EQ_INT(sp_decode_birth(dec, p.data, p.len, NOW, &bi, &why), 0);
	CHECK_EQ_INT(bi.count, SP_DEVICES_MAX);
	CHECK_EQ_INT(bi.rejected, SP_DEVICES_MAX - 1);
	CHECK_EQ_INT(bi.rejects[0].reason, SP_REJ_NONE);
	sp_buf_free(&p);
}

static void test_state_and_ack(void)
{
	bool online = true;
	int64_t ts = 1, seq = 0;
	struct sp_reject_info why;
	CHECK_EQ_INT(sp_decode_state("{\"online\":false}", 16, &online, &ts, &why), 0);
	CHECK(!online);
	CHECK_EQ_INT(ts, 0);
	CHECK_EQ_INT(sp_decode_state("{\"online\":true,\"ts\":1764320000000}", 34, &online, &ts, &why), 0);
	CHECK(online);
	CHECK_EQ_INT(ts, 1764320000000LL);
	CHECK_EQ_INT(sp_decode_state("{\"online\":1}", 12, &online, &ts, &why), SP_EINVAL);
	CHECK_EQ_INT(why.reason, SP_REJ_BAD_TYPE);
	const char *flip = "{\"online\":true,\"online\":false}";
	CHECK_EQ_INT(sp_decode_state(flip, strlen(flip), &online, &ts, &why), SP_EINVAL);
	CHECK_EQ_INT(why.reason, SP_REJ_DUPLICATE_FIELD);
	const char *ack2 = "{\"v\":1,\"seq\":5,\"seq\":9}";
	CHECK_EQ_INT(sp_decode_ack(ack2, strlen(ack2), &seq, NULL), SP_EINVAL);

	struct sp_buf b = SP_BUF_INIT(0);
	sp_encode_ack(&b, 4242, NOW);
	CHECK_EQ_INT(sp_decode_ack(b.data, b.len, &seq, NULL), 0);
	CHECK_EQ_INT(seq, 4242);
	CHECK_EQ_INT(sp_decode_ack(b.data, b.len, &seq, &ts), 0);
	CHECK_EQ_INT(ts, NOW);
	CHECK_EQ_INT(sp_decode_ack("{\"v\":1,\"seq\":-1}", 16, &seq, NULL), SP_EINVAL);
	/* the ack's ts only informs (the agent's clock check): absent or implausible, it is 0 */
	static const char *const no_time[] = {
	    "{\"v\":1,\"seq\":7}", "{\"v\":1,\"seq\":7,\"ts\":\"soon\"}",
	    "{\"v\":1,\"seq\":7,\"ts\":-5}", "{\"v\":1,\"seq\":7,\"ts\":1e300}"};
	for (size_t i = 0; i < sizeof(no_time) / sizeof(no_time[0]); i++) {
		ts = 99;
		CHECK_EQ_INT(sp_decode_ack(no_time[i], strlen(no_time[i]), &seq, &ts), 0);
		CHECK_EQ_INT(seq, 7);
		CHECK_EQ_INT(ts, 0);
	}
	const char *two_times = "{\"v\":1,\"seq\":7,\"ts\":1764320000000,\"ts\":1}";
	CHECK_EQ_INT(sp_decode_ack(two_times, strlen(two_times), &seq, &ts), SP_EINVAL);
	sp_buf_free(&b);
}

/* ---------------------------------------------------------------- strings with a NUL */

#define REC_HEAD "{\"t\":\"lift\",\"dev\":\"lift-9\",\"ts\":1764320000000,"
#define LIFT_REST                                                                          \
	"\"floor\":1,\"dir\":\"up\",\"door\":\"closed\",\"door_zone\":true,\"occupied\":false," \
	"\"mode\":\"normal\"}"
#define FAULT(code, detail)                                                                     \
	"{\"t\":\"fault\",\"dev\":\"chg-1\",\"ts\":1764320000000,\"code\":\"" code "\",\"active\":true," \
	"\"detail\":\"" detail "\"}"

/*
 * cJSON decodes \u0000 to a NUL byte and keeps no length: without the check
 * each of these read as its part before the NUL (lift-9, lift, closed, E1)
 * and was stored.
 */
static void test_nul_in_record_strings(void)
{
	/* the reported cases: id, kind, enum, code */
	CHECK_EQ_INT(one("{\"t\":\"lift\",\"dev\":\"lift-9\\u0000../../x\",\"ts\":1764320000000,"
			 LIFT_REST),
		     SP_REJ_EMBEDDED_NUL);
	CHECK_EQ_INT(one("{\"t\":\"lift\\u0000junk\",\"dev\":\"lift-9\",\"ts\":1764320000000,"
			 LIFT_REST),
		     SP_REJ_EMBEDDED_NUL);
	CHECK_EQ_INT(one(REC_HEAD "\"floor\":1,\"dir\":\"up\",\"door\":\"closed\\u0000?\","
			 "\"door_zone\":true,\"occupied\":false,\"mode\":\"normal\"}"),
		     SP_REJ_EMBEDDED_NUL);
	CHECK_EQ_INT(one(FAULT("E1\\u0000<script>", "x")), SP_REJ_EMBEDDED_NUL);
	CHECK_EQ_INT(one(FAULT("E1", "hot\\u0000 and more")), SP_REJ_EMBEDDED_NUL);
	/* where the NUL is and which record it is in */
	struct sp_data_msg m;
	struct sp_reject_info why;
	CHECK_EQ_INT(data(LIFT_OK "," FAULT("E1\\u0000x", "d") "," LIFT_OK, &m, &why), 0);
	CHECK_EQ_INT(m.count, 3);
	CHECK_EQ_INT(m.rejected, 1); /* only that record; its neighbours are stored */
	CHECK_EQ_INT(m.rejects[1].reason, SP_REJ_EMBEDDED_NUL);
	CHECK_EQ_STR(m.rejects[1].field, "code");
	CHECK_EQ_INT(m.rejects[0].reason, SP_REJ_NONE);
	CHECK_EQ_INT(m.rejects[2].reason, SP_REJ_NONE);
	/* a key with a NUL would read as the key before it: refused, not ignored */
	CHECK_EQ_INT(one("{\"t\":\"lift\",\"dev\\u0000x\":\"other\",\"dev\":\"lift-9\","
			 "\"ts\":1764320000000," LIFT_REST),
		     SP_REJ_EMBEDDED_NUL);
	CHECK_EQ_INT(one(REC_HEAD "\"door\\u0000\":\"open\"," LIFT_REST), SP_REJ_EMBEDDED_NUL);
	/* not a NUL: an escaped backslash before u0000, and the value of an unknown field */
	CHECK_EQ_INT(one(FAULT("E1", "path C:\\\\u0000")), SP_REJ_NONE);
	CHECK_EQ_INT(data(FAULT("E1", "C:\\\\u0000"), &m, &why), 0);
	CHECK_EQ_STR(m.records[0].u.fault.detail, "C:\\u0000");
	CHECK_EQ_INT(one(REC_HEAD "\"note\":\"a\\u0000b\"," LIFT_REST), SP_REJ_NONE);
	CHECK_EQ_INT(one(REC_HEAD "\"x\":{\"deep\":[\"\\u0000\"]}," LIFT_REST), SP_REJ_NONE);
	/* other escapes of small characters keep their meaning (a control character: bad_text) */
	CHECK_EQ_INT(one(FAULT("E1", "a\\u0001b")), SP_REJ_BAD_TEXT);
	CHECK_EQ_INT(one(FAULT("E1", "\\u00b0C")), SP_REJ_NONE);
}

/* A raw NUL byte inside quotes is copied by cJSON as it is: the same refusal. */
static void test_raw_nul_byte(void)
{
	static const char head[] = "{\"v\":1,\"seq\":3,\"ts\":1764320000000,\"records\":["
				   "{\"t\":\"station\",\"dev\":\"chg-1";
	static const char tail[] = "x\",\"ts\":1764320000000,\"smoke\":false}]}";
	char buf[256];
	size_t n = 0;
	memcpy(buf, head, sizeof(head) - 1);
	n += sizeof(head) - 1;
	buf[n++] = '\0';
	memcpy(buf + n, tail, sizeof(tail) - 1);
	n += sizeof(tail) - 1;
	struct sp_data_msg m;
	struct sp_reject_info why;
	CHECK_EQ_INT(sp_decode_data(dec, buf, n, NOW, &m, &why), 0);
	CHECK_EQ_INT(m.count, 1);
	CHECK_EQ_INT(m.rejects[0].reason, SP_REJ_EMBEDDED_NUL);
	CHECK_EQ_STR(m.rejects[0].field, "dev");
}

/* A NUL at a message's top level rejects the message; in a birth, the device or the birth. */
static void test_nul_in_messages(void)
{
	CHECK_EQ_INT(msg("{\"v\":1,\"seq\\u0000\":9,\"seq\":1,\"ts\":1764320000000,\"records\":["
			 LIFT_OK "]}"),
		     SP_REJ_EMBEDDED_NUL);
	struct sp_birth bi;
	struct sp_reject_info why;
	const char *b1 = "{\"v\":1,\"ts\":1764320000000,\"fw\":\"1.4\\u0000evil\",\"devices\":["
			 "{\"dev\":\"chg-1\",\"kind\":\"charger\",\"ports\":2}]}";
	CHECK_EQ_INT(sp_decode_birth(dec, b1, strlen(b1), NOW, &bi, &why), SP_EINVAL);
	CHECK_EQ_INT(why.reason, SP_REJ_EMBEDDED_NUL);
	const char *b2 = "{\"v\":1,\"ts\":1764320000000,\"devices\":["
			 "{\"dev\":\"chg-1\\u0000x\",\"kind\":\"charger\",\"ports\":2},"
			 "{\"dev\":\"chg-2\",\"kind\":\"charger\\u0000\",\"ports\":2},"
			 "{\"dev\":\"chg-3\",\"kind\":\"charger\",\"ports\":2}]}";
	CHECK_EQ_INT(sp_decode_birth(dec, b2, strlen(b2), NOW, &bi, &why), 0);
	CHECK_EQ_INT(bi.count, 3);
	CHECK_EQ_INT(bi.rejected, 2);
	CHECK_EQ_INT(bi.rejects[0].reason, SP_REJ_EMBEDDED_NUL);
	CHECK_EQ_INT(bi.rejects[1].reason, SP_REJ_EMBEDDED_NUL);
	CHECK_EQ_INT(bi.rejects[2].reason, SP_REJ_NONE);
	bool online = false;
	int64_t ts, seq = 0;
	const char *st = "{\"online\\u0000\":false,\"online\":true}";
	CHECK_EQ_INT(sp_decode_state(st, strlen(st), &online, &ts, &why), SP_EINVAL);
	CHECK_EQ_INT(why.reason, SP_REJ_EMBEDDED_NUL);
	/* the agent's decoders share the checks */
	const char *ack = "{\"v\":1,\"seq\\u0000\":99,\"seq\":3}";
	CHECK_EQ_INT(sp_decode_ack(ack, strlen(ack), &seq, NULL), SP_EINVAL);
	struct sp_cmd cmd;
	const char *cmds[] = {
		"{\"v\":1,\"id\":\"c1\",\"ts\":1764320000000,\"cmd\":\"port_off\","
		"\"dev\":\"chg-1\\u0000../x\",\"port\":3}",
		"{\"v\":1,\"id\":\"c1\\u0000b\",\"ts\":1764320000000,\"cmd\":\"port_off\","
		"\"dev\":\"chg-1\",\"port\":3}",
		"{\"v\":1,\"id\":\"c1\",\"ts\":1764320000000,\"cmd\":\"port_off\\u0000x\","
		"\"dev\":\"chg-1\",\"port\":3}",
		"{\"v\":1,\"id\":\"c1\",\"ts\":1764320000000,\"cmd\":\"port_off\","
		"\"dev\":\"chg-1\",\"port\":3,\"reason\":\"over_temp\\u0000\"}",
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		CHECK_EQ_INT(sp_decode_cmd(cmds[i], strlen(cmds[i]), NOW, &cmd, &why), SP_EINVAL);
		CHECK_EQ_INT(why.reason, SP_REJ_EMBEDDED_NUL);
	}
	const char *ok = "{\"v\":1,\"id\":\"c1\",\"ts\":1764320000000,\"cmd\":\"port_off\","
			 "\"dev\":\"chg-1\",\"port\":3,\"reason\":\"over_temp\"}";
	CHECK_EQ_INT(sp_decode_cmd(ok, strlen(ok), NOW, &cmd, &why), 0);
	CHECK_EQ_INT(cmd.reason, SP_STOP_OVER_TEMP);
	/* the contract gives the reason no vocabulary: another text still turns the port off */
	const char *other = "{\"v\":1,\"id\":\"c2\",\"ts\":1764320000000,\"cmd\":\"port_off\","
			    "\"dev\":\"chg-1\",\"port\":4,\"reason\":\"maintenance\"}";
	CHECK_EQ_INT(sp_decode_cmd(other, strlen(other), NOW, &cmd, &why), 0);
	CHECK_EQ_INT(cmd.reason, -1);
	CHECK_EQ_INT(cmd.port, 4);
	CHECK_EQ_INT(cmd.cmd, SP_CMD_PORT_OFF);
	/* port_on, our extension of the same shape (docs/protocol.md, Command) */
	const char *on = "{\"v\":1,\"id\":\"c3\",\"ts\":1764320000000,\"cmd\":\"port_on\","
			 "\"dev\":\"chg-1\",\"port\":3,\"reason\":\"repaired\"}";
	CHECK_EQ_INT(sp_decode_cmd(on, strlen(on), NOW, &cmd, &why), 0);
	CHECK_EQ_INT(cmd.cmd, SP_CMD_PORT_ON);
	CHECK_EQ_STR(cmd.id, "c3");
	CHECK_EQ_STR(cmd.dev, "chg-1");
	CHECK_EQ_INT(cmd.port, 3);
	CHECK_EQ_INT(cmd.reason, -1);
	struct sp_buf eb = SP_BUF_INIT(1024);
	CHECK_EQ_INT(sp_encode_cmd(&eb, &cmd), 0);
	struct sp_cmd back;
	CHECK_EQ_INT(sp_decode_cmd(eb.data, eb.len, NOW, &back, &why), 0);
	CHECK_EQ_INT(back.cmd, SP_CMD_PORT_ON);
	CHECK_EQ_STR(back.id, "c3");
	CHECK_EQ_INT(back.port, 3);
	sp_buf_free(&eb);
	/* and the command's other refusals, by the same string check */
	static const struct {
		const char *cmd;
		enum sp_reject want;
	} bad[] = {
	    {"", SP_REJ_MISSING_FIELD},
	    {"\"cmd\":1,", SP_REJ_BAD_TYPE},
	    {"\"cmd\":\"reboot\",", SP_REJ_BAD_ENUM},
	    {"\"cmd\":\"port_On\",", SP_REJ_BAD_ENUM},
	    {"\"cmd\":\"port_on\",\"reason\":5,", SP_REJ_BAD_TYPE},
	    {"\"cmd\":\"port_off\",\"reason\":5,", SP_REJ_BAD_TYPE},
	    {"\"cmd\":\"port_off\",\"reason\":\"a\",\"reason\":\"b\",", SP_REJ_DUPLICATE_FIELD},
	};
	char text[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text),
			 "{\"v\":1,\"id\":\"c1\",\"ts\":1764320000000,%s\"dev\":\"chg-1\",\"port\":3}",
			 bad[i].cmd);
		CHECK_EQ_INT(sp_decode_cmd(text, strlen(text), NOW, &cmd, &why), SP_EINVAL);
		CHECK_EQ_INT(why.reason, bad[i].want);
	}
}

static void test_json_has_nul(void)
{
	CHECK(!sp_json_has_nul("{\"by\":\"alice\"}", 14));
	CHECK(sp_json_has_nul("{\"by\":\"al\\u0000ice\"}", 20));
	CHECK(!sp_json_has_nul("{\"by\":\"al\\\\u0000ice\"}", 21));  /* \\ then u0000 */
	CHECK(sp_json_has_nul("{\"by\":\"al\\\\\\u0000\"}", 18));    /* \\ then \u0000 */
	CHECK(!sp_json_has_nul("{\"a\\\"\\u0000\":1}", 6));          /* cut before the escape */
	CHECK(sp_json_has_nul("{\"a\\\"\\u0000\":1}", 15));          /* \" does not end it */
	CHECK(sp_json_has_nul("[\"x\0y\"]", 7));                     /* a raw NUL in a string */
	CHECK(!sp_json_has_nul("[1, 2]\0", 7));                      /* outside strings */
}

static void test_utf8(void)
{
	CHECK(sp_utf8_valid("abc", 3));
	CHECK(sp_utf8_valid("\xe7\x94\xb5\xe6\xa2\xaf", 6)); /* 电梯 */
	CHECK(!sp_utf8_valid("\xc0\xaf", 2));                /* overlong */
	CHECK(!sp_utf8_valid("\xed\xa0\x80", 3));            /* surrogate */
	CHECK(!sp_utf8_valid("\xe7\x94", 2));                /* truncated */
}

static void test_reject_names(void)
{
	for (int r = 0; r < SP_REJ_REASON_COUNT; r++) {
		const char *n = sp_reject_name((enum sp_reject)r);
		CHECK(n != NULL && strcmp(n, "unknown") != 0);
	}
	CHECK_EQ_STR(sp_reject_name(SP_REJ_TOO_MANY_RECORDS), "too_many_records");
}

int main(void)
{
	dec = sp_decoder_create();
	CHECK(dec != NULL);
	RUN(test_valid_records);
	RUN(test_optional_fields_absent);
	RUN(test_unknown_fields_ignored);
	RUN(test_record_rejections);
	RUN(test_message_rejections);
	RUN(test_good_records_survive_bad_neighbours);
	RUN(test_member_order);
	RUN(test_round_trip);
	RUN(test_numbers);
	RUN(test_buf_json_str);
	RUN(test_birth);
	RUN(test_birth_duplicate_devices);
	RUN(test_state_and_ack);
	RUN(test_nul_in_record_strings);
	RUN(test_raw_nul_byte);
	RUN(test_nul_in_messages);
	RUN(test_json_has_nul);
	RUN(test_utf8);
	RUN(test_reject_names);
	sp_decoder_destroy(dec);
	HARNESS_EXIT();
}
