/*
 * test_parsed.c - the parsed form of a data message (parser -> writer):
 * what the codec decided survives the trip, every accepted record arrives
 * with its canonical body, and a damaged buffer is refused, never over-read.
 */
#include "harness.h"

#include "parsed.h"

#include "sitepulse/buf.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"

#include <stdlib.h>
#include <string.h>

#define NOW 1764320000000LL

static struct sp_decoder *dec;

/* Decodes payload as the parser does and writes its parsed form into out. */
static void parse(const char *payload, struct sp_buf *out)
{
	struct sp_data_msg dm;
	struct sp_reject_info why;
	int rc = sp_decode_data(dec, payload, strlen(payload), NOW, &dm, &why);
	sp_buf_reset(out);
	CHECK_EQ_INT(parsed_write(out, rc, &dm, &why), 0);
}

static void test_records_round_trip(void)
{
	const char *p =
		"{\"v\":1,\"seq\":41,\"ts\":1764320000500,\"records\":["
		"{\"t\":\"lift\",\"dev\":\"lift-1\",\"ts\":1764320000000,\"floor\":-1,\"dir\":\"up\","
		"\"door\":\"closed\",\"door_zone\":false,\"occupied\":true,\"speed\":0.98,"
		"\"mode\":\"normal\",\"power\":\"mains\",\"safety_ok\":true,\"extra\":1},"
		"{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":1764320000100,\"port\":7,\"state\":\"idle\"},"
		"{\"t\":\"port\",\"dev\":\"chg-1\",\"ts\":1764320000200,\"port\":0,\"state\":\"idle\"},"
		"{\"t\":\"fault\",\"dev\":\"chg-2\",\"ts\":1764320000300,\"code\":\"overtemp\","
		"\"port\":3,\"active\":true}]}";
	struct sp_buf b = SP_BUF_INIT(0);
	parse(p, &b);

	/* what the writer must store: the codec's own canonical form of each record */
	struct sp_data_msg dm;
	struct sp_reject_info why;
	CHECK_EQ_INT(sp_decode_data(dec, p, strlen(p), NOW, &dm, &why), 0);
	CHECK_EQ_INT(dm.count, 4);

	struct parsed_msg m;
	CHECK_EQ_INT(parsed_open(b.data, b.len, &m), 0);
	CHECK_EQ_INT(m.seq, 41);
	CHECK_EQ_INT(m.why.reason, SP_REJ_NONE);
	CHECK_EQ_INT(m.count, 4);
	struct parsed_rec r;
	struct sp_buf want = SP_BUF_INIT(0);
	for (size_t i = 0; i < 4; i++) {
		CHECK_EQ_INT(parsed_next(&m, &r), 1);
		CHECK_EQ_INT(r.why.reason, dm.rejects[i].reason);
		if (r.why.reason != SP_REJ_NONE) {
			CHECK(r.body == NULL);
			CHECK(r.why.field != NULL && strcmp(r.why.field, dm.rejects[i].field) == 0);
			continue;
		}
		CHECK_EQ_INT(r.kind, dm.records[i].kind);
		CHECK_EQ_INT(r.ts, dm.records[i].ts);
		CHECK_EQ_STR(r.dev, dm.records[i].dev);
		/* the tail only: with the head, from the kind, dev and ts beside it, the whole record */
		sp_buf_reset(&want);
		CHECK_EQ_INT(sp_encode_record_tail(&want, &dm.records[i]), 0);
		CHECK(r.body != NULL && r.body_len == want.len && memcmp(r.body, want.data, want.len) == 0);
		sp_buf_reset(&want);
		CHECK_EQ_INT(sp_encode_record_head(&want, r.kind, r.dev, r.ts), 0);
		CHECK(r.body != NULL && sp_buf_append(&want, r.body, r.body_len) == 0);
		struct sp_buf whole = SP_BUF_INIT(0);
		CHECK_EQ_INT(sp_encode_record(&whole, &dm.records[i]), 0);
		CHECK_EQ_STR(want.data, whole.data);
		sp_buf_free(&whole);
	}
	CHECK_EQ_INT(parsed_next(&m, &r), 0); /* the end */
	CHECK_EQ_INT(parsed_next(&m, &r), 0);

	/* the context the writer checks: floor of a lift, port of a port and of a fault */
	CHECK_EQ_INT(parsed_open(b.data, b.len, &m), 0);
	CHECK_EQ_INT(parsed_next(&m, &r), 1);
	CHECK_EQ_INT(r.why.reason, SP_REJ_NONE);
	CHECK_EQ_INT(r.floor, -1);
	CHECK_EQ_INT(r.port, 0);
	CHECK_EQ_INT(parsed_next(&m, &r), 1);
	CHECK_EQ_INT(r.port, 7);
	CHECK_EQ_INT(parsed_next(&m, &r), 1);
	CHECK(r.why.reason != SP_REJ_NONE); /* port 0 is out of range */
	CHECK_EQ_INT(parsed_next(&m, &r), 1);
	CHECK_EQ_INT(r.why.reason, SP_REJ_NONE);
	CHECK_EQ_INT(r.port, 3);
	CHECK_EQ_INT(r.kind, SP_REC_FAULT);

	/* the values the alert rules read arrive as the codec decoded them */
	struct sp_record rec;
	CHECK_EQ_INT(parsed_open(b.data, b.len, &m), 0);
	CHECK_EQ_INT(parsed_next(&m, &r), 1);
	parsed_record(&r, &rec);
	CHECK_EQ_INT(rec.kind, SP_REC_LIFT);
	CHECK_EQ_STR(rec.dev, "lift-1");
	CHECK_EQ_INT(rec.ts, 1764320000000LL);
	CHECK_EQ_INT(rec.has, dm.records[0].has);
	CHECK(rec.has & SP_HAS_SPEED);
	CHECK_EQ_INT(rec.u.lift.floor, -1);
	CHECK_EQ_INT(rec.u.lift.dir, SP_DIR_UP);
	CHECK_EQ_INT(rec.u.lift.door, SP_DOOR_CLOSED);
	CHECK(rec.u.lift.occupied && !rec.u.lift.door_zone && rec.u.lift.safety_ok);
	CHECK(rec.u.lift.speed == 0.98);
	CHECK_EQ_INT(parsed_next(&m, &r), 1);
	parsed_record(&r, &rec);
	CHECK_EQ_INT(rec.u.port.port, 7);
	CHECK_EQ_INT(rec.u.port.state, SP_PORT_IDLE);
	CHECK_EQ_INT(parsed_next(&m, &r), 1); /* the refused one carries no values */
	CHECK_EQ_INT(r.facts_len, 0);
	CHECK_EQ_INT(parsed_next(&m, &r), 1);
	parsed_record(&r, &rec);
	CHECK_EQ_STR(rec.u.fault.code, "overtemp");
	CHECK(rec.u.fault.active);
	CHECK_EQ_INT(rec.u.fault.port, 3);
	CHECK(rec.has & SP_HAS_PORT);
	sp_buf_free(&want);
	sp_buf_free(&b);
}

static void test_refused_message(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct parsed_msg m;
	struct parsed_rec r;

	/* seq readable, version wrong: refused, seq kept (it counts as handled) */
	parse("{\"v\":2,\"seq\":9,\"ts\":1764320000000,\"records\":[{}]}", &b);
	CHECK_EQ_INT(parsed_open(b.data, b.len, &m), 0);
	CHECK_EQ_INT(m.why.reason, SP_REJ_BAD_VERSION);
	CHECK_EQ_STR(m.why.field, "v");
	CHECK_EQ_INT(m.seq, 9);
	CHECK_EQ_INT(m.count, 0);
	CHECK_EQ_INT(parsed_next(&m, &r), 0);

	/* not JSON: refused, seq unknown */
	parse("{\"v\":1,\"seq\":", &b);
	CHECK_EQ_INT(parsed_open(b.data, b.len, &m), 0);
	CHECK_EQ_INT(m.why.reason, SP_REJ_BAD_JSON);
	CHECK_EQ_INT(m.seq, 0);

	/* an error the codec gave no reason for is still a refusal */
	struct sp_data_msg dm = {0};
	struct sp_reject_info none = {SP_REJ_NONE, NULL};
	sp_buf_reset(&b);
	CHECK_EQ_INT(parsed_write(&b, SP_EINVAL, &dm, &none), 0);
	CHECK_EQ_INT(parsed_open(b.data, b.len, &m), 0);
	CHECK(m.why.reason != SP_REJ_NONE);
	sp_buf_free(&b);
}

static void test_damage_is_refused(void)
{
	struct sp_buf b = SP_BUF_INIT(0);
	struct parsed_msg m;
	struct parsed_rec r;
	parse("{\"v\":1,\"seq\":3,\"ts\":1764320000000,\"records\":["
	      "{\"t\":\"station\",\"dev\":\"chg-1\",\"ts\":1764320000000,\"smoke\":false},"
	      "{\"t\":\"station\",\"dev\":\"chg-2\",\"ts\":1764320000000,\"smoke\":true}]}",
	      &b);

	/* not a parsed message at all: raw JSON, empty, short */
	CHECK_EQ_INT(parsed_open("{\"v\":1}", 7, &m), SP_EINVAL);
	CHECK_EQ_INT(parsed_open(NULL, 0, &m), SP_EINVAL);
	CHECK_EQ_INT(parsed_open(b.data, 8, &m), SP_EINVAL);

	/* every truncation: open may succeed, but the records never run past the end */
	for (size_t cut = 0; cut < b.len; cut++) {
		char *copy = malloc(cut ? cut : 1);
		memcpy(copy, b.data, cut);
		int got = 0, rc = 0;
		if (parsed_open(copy, cut, &m) == 0)
			while ((rc = parsed_next(&m, &r)) == 1)
				got++;
		CHECK(got < 2 && rc <= 0);
		free(copy);
	}

	/* a flipped length byte inside the first record header */
	char *bad = malloc(b.len);
	memcpy(bad, b.data, b.len);
	bad[32 + 32] = (char)0x7f; /* record header: dev_len */
	CHECK_EQ_INT(parsed_open(bad, b.len, &m), 0);
	CHECK_EQ_INT(parsed_next(&m, &r), SP_EINVAL);
	free(bad);

	/* intact: both records */
	CHECK_EQ_INT(parsed_open(b.data, b.len, &m), 0);
	CHECK_EQ_INT(parsed_next(&m, &r), 1);
	CHECK_EQ_STR(r.dev, "chg-1");
	CHECK_EQ_INT(parsed_next(&m, &r), 1);
	CHECK_EQ_STR(r.dev, "chg-2");
	CHECK_EQ_INT(parsed_next(&m, &r), 0);
	sp_buf_free(&b);
}

int main(void)
{
	dec = sp_decoder_create();
	RUN(test_records_round_trip);
	RUN(test_refused_message);
	RUN(test_damage_is_refused);
	sp_decoder_destroy(dec);
	HARNESS_EXIT();
}
