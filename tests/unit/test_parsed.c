/*
 * test_parsed.c - the parsed form of a data message (parser -> writer):
 * what the codec decided survives the trip, every accepted record arrives
 * with its canonical body, a damaged buffer is refused, never over-read, and
 * the parsed form of any valid message fits the writer queue main.c makes.
 */
#include "harness.h"

#include "parsed.h"
#include "queue.h"

#include "sitepulse/buf.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/topic.h"

#include <stdio.h>
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

/* ---------------------------------------------------------------- the size bound */

/* Fills r with a record of kind k, every optional field present, every value at its longest. */
static void longest_record(enum sp_rec_kind k, struct sp_record *r)
{
	memset(r, 0, sizeof(*r));
	r->kind = k;
	memset(r->dev, 'd', SP_ID_MAX);
	r->ts = -9223372036854775807LL - 1;
	r->has = ~0u;
	const double num = -1.2345678901234567e-300; /* %.17g at its longest */
	switch (k) {
	case SP_REC_LIFT:
		r->u.lift = (struct sp_lift){-2147483647 - 1, SP_DIR_STOP, SP_DOOR_CLOSING, false, false,
					     SP_MODE_EMERGENCY_POWER, num, SP_POWER_BATTERY, false,
					     INT64_MIN, INT64_MIN, INT64_MIN};
		break;
	case SP_REC_STATION:
		r->u.station = (struct sp_station){false, num, num, num, num, false, INT64_MIN};
		break;
	case SP_REC_PORT:
		r->u.port = (struct sp_port){-2147483647 - 1, SP_PORT_DISABLED, num, num, num, num, num};
		break;
	case SP_REC_SESSION:
		r->u.session = (struct sp_session){-2147483647 - 1, INT64_MIN, INT64_MIN, num,
						   SP_STOP_OVERCURRENT};
		break;
	case SP_REC_FAULT:
		/* code characters need no escape; 0x01 in the text takes the six of \u0001 */
		memset(r->u.fault.code, 'C', SP_FAULT_CODE_MAX);
		r->u.fault.active = false;
		r->u.fault.port = -2147483647 - 1;
		memset(r->u.fault.detail, 0x01, SP_TEXT_MAX);
		break;
	default: break;
	}
}

/*
 * The bound parsed_max_size() is the format's own: every kind's canonical
 * tail at its longest stays within sp_record_tail_max, and 1,000 records of
 * each kind at their longest within parsed_max_size(); a writer queue of
 * parsed_queue_min() takes that message.
 */
static void test_size_bound(void)
{
	struct sp_buf tail = SP_BUF_INIT(0), out = SP_BUF_INIT(0);
	static struct sp_record recs[SP_RECORDS_MAX];
	static struct sp_reject_info ok[SP_RECORDS_MAX];
	size_t largest = 0;
	for (int k = 0; k < SP_REC_KIND_COUNT; k++) {
		longest_record((enum sp_rec_kind)k, &recs[0]);
		sp_buf_reset(&tail);
		CHECK_EQ_INT(sp_encode_record_tail(&tail, &recs[0]), 0);
		CHECK(tail.len <= sp_record_tail_max((enum sp_rec_kind)k));
		for (size_t i = 1; i < SP_RECORDS_MAX; i++)
			recs[i] = recs[0];
		struct sp_data_msg dm = {INT64_MIN, 0, SP_RECORDS_MAX, 0, recs, ok};
		struct sp_reject_info why = {SP_REJ_NONE, NULL};
		sp_buf_reset(&out);
		CHECK_EQ_INT(parsed_write(&out, 0, &dm, &why), 0);
		CHECK(out.len <= parsed_max_size());
		largest = out.len > largest ? out.len : largest;
		printf("  %-8s tail %zu of at most %zu bytes; 1,000 records parsed: %zu bytes\n",
		       sp_rec_kind_name((enum sp_rec_kind)k), tail.len,
		       sp_record_tail_max((enum sp_rec_kind)k), out.len);
	}
	printf("  bound %zu bytes; writer queue at least %zu bytes\n", parsed_max_size(),
	       parsed_queue_min());
	CHECK(parsed_queue_min() >= 2 * parsed_max_size());
	struct queue *q = queue_create(parsed_queue_min(), "writer", "the parser");
	char topic[SP_TOPIC_MAX];
	memset(topic, 't', sizeof(topic) - 1);
	topic[sizeof(topic) - 1] = '\0';
	CHECK(q != NULL);
	/* the largest parsed form, at the longest topic, twice: a full ring still takes the next */
	if (q) {
		longest_record(SP_REC_FAULT, &recs[0]);
		CHECK_EQ_INT(queue_push(q, topic, sizeof(topic) - 1, out.data, largest, 1), 0);
		CHECK_EQ_INT(queue_push(q, topic, sizeof(topic) - 1, out.data, largest, 1), 0);
		queue_destroy(q);
	}
	sp_buf_free(&tail);
	sp_buf_free(&out);
}

/*
 * The reported case: queue_mb = 1, one 255,936-byte message of 1,000 fault
 * records with 160-byte details. Its parsed form is over half a 1 MB writer
 * queue (so the parser refused it as too_large, and the ack covered it);
 * the writer queue main.c makes for queue_mb = 1 takes it.
 */
static void test_large_valid_message_fits(void)
{
	struct sp_buf p = SP_BUF_INIT(0), out = SP_BUF_INIT(0);
	char detail[161];
	memset(detail, 'x', 160);
	detail[160] = '\0';
	sp_buf_puts(&p, "{\"v\":1,\"seq\":1,\"ts\":1764320000000,\"records\":[");
	for (int i = 0; i < SP_RECORDS_MAX; i++)
		sp_buf_printf(&p, "%s{\"t\":\"fault\",\"dev\":\"chg-1\",\"ts\":%lld,\"code\":\"E%03d\","
				  "\"active\":true,\"port\":1,\"detail\":\"%s\"}",
			      i ? "," : "", 1764320000000LL + i, i, detail);
	sp_buf_puts(&p, "]}");
	CHECK(p.len <= SP_PAYLOAD_MAX);
	struct sp_data_msg dm;
	struct sp_reject_info why;
	int rc = sp_decode_data(dec, p.data, p.len, NOW, &dm, &why);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(dm.rejected, 0);
	CHECK_EQ_INT(parsed_write(&out, rc, &dm, &why), 0);
	printf("  payload %zu bytes, parsed %zu bytes\n", p.len, out.len);
	const char *topic = "sp/v1/s1/gw-1/data";
	struct queue *small = queue_create(1024 * 1024, "writer", "the parser");
	CHECK_EQ_INT(queue_push(small, topic, strlen(topic), out.data, out.len, 1), SP_ETOOBIG);
	queue_destroy(small);
	size_t cap = 1024 * 1024 > parsed_queue_min() ? 1024 * 1024 : parsed_queue_min();
	struct queue *q = queue_create(cap, "writer", "the parser");
	CHECK_EQ_INT(queue_push(q, topic, strlen(topic), out.data, out.len, 1), 0);
	queue_destroy(q);
	sp_buf_free(&p);
	sp_buf_free(&out);
}

int main(void)
{
	dec = sp_decoder_create();
	RUN(test_records_round_trip);
	RUN(test_refused_message);
	RUN(test_damage_is_refused);
	RUN(test_size_bound);
	RUN(test_large_valid_message_fits);
	sp_decoder_destroy(dec);
	HARNESS_EXIT();
}
