/* parsed.c - see parsed.h. */
#include "parsed.h"

#include "queue.h"

#include "sitepulse/error.h"
#include "sitepulse/ids.h"
#include "sitepulse/topic.h"

#include <string.h>

#define PARSED_MAGIC 0x31445053u /* "SPD1" */

struct msg_hdr {
	uint32_t magic;
	int32_t reason;
	const char *field;
	int64_t seq;
	uint32_t count;
	uint32_t pad;
};

struct rec_hdr {
	int32_t reason;
	int32_t kind;
	int64_t ts;
	const char *field;
	int32_t port;
	int32_t floor;
	uint32_t dev_len;   /* without the NUL that follows */
	uint32_t body_len;
	uint32_t has;       /* sp_record.has */
	uint32_t facts_len; /* the record's values (its sp_record union member), after the body */
};

/* The bytes of a record's union member: what the alert rules read. */
static size_t facts_size(enum sp_rec_kind kind)
{
	switch (kind) {
	case SP_REC_LIFT: return sizeof(struct sp_lift);
	case SP_REC_STATION: return sizeof(struct sp_station);
	case SP_REC_PORT: return sizeof(struct sp_port);
	case SP_REC_SESSION: return sizeof(struct sp_session);
	case SP_REC_FAULT: return sizeof(struct sp_fault);
	default: return 0;
	}
}

/* The port a record speaks of, as the writer checks it against the charger's ports. */
static int32_t record_port(const struct sp_record *r)
{
	switch (r->kind) {
	case SP_REC_PORT: return r->u.port.port;
	case SP_REC_SESSION: return r->u.session.port;
	case SP_REC_FAULT: return (r->has & SP_HAS_PORT) ? r->u.fault.port : 0;
	default: return 0;
	}
}

int parsed_write(struct sp_buf *out, int rc, const struct sp_data_msg *dm,
		 const struct sp_reject_info *why)
{
	struct msg_hdr h = {PARSED_MAGIC, rc ? (int32_t)why->reason : 0, rc ? why->field : NULL,
			    dm->seq, rc ? 0 : (uint32_t)dm->count, 0};
	if (rc && h.reason == SP_REJ_NONE)
		h.reason = SP_REJ_BAD_JSON; /* an error without a reason: refuse, never store */
	if (sp_buf_append(out, &h, sizeof(h)))
		return SP_ENOMEM;
	for (size_t i = 0; i < h.count; i++) {
		const struct sp_record *r = &dm->records[i];
		const struct sp_reject_info *rw = &dm->rejects[i];
		struct rec_hdr rh = {(int32_t)rw->reason, (int32_t)r->kind, r->ts, rw->field,
				     record_port(r), r->kind == SP_REC_LIFT ? r->u.lift.floor : 0,
				     0, 0, r->has, 0};
		size_t at = out->len;
		if (rw->reason == SP_REJ_NONE)
			rh.dev_len = (uint32_t)strnlen(r->dev, SP_ID_MAX);
		if (sp_buf_append(out, &rh, sizeof(rh)) ||
		    sp_buf_append(out, r->dev, rh.dev_len) || sp_buf_putc(out, '\0'))
			return SP_ENOMEM;
		if (rw->reason != SP_REJ_NONE)
			continue;
		size_t body_at = out->len;
		if (sp_encode_record_tail(out, r))
			return SP_ENOMEM;
		rh.body_len = (uint32_t)(out->len - body_at);
		rh.facts_len = (uint32_t)facts_size(r->kind);
		if (sp_buf_append(out, &r->u, rh.facts_len))
			return SP_ENOMEM;
		memcpy(out->data + at, &rh, sizeof(rh)); /* now with its lengths */
	}
	return 0;
}

/*
 * The arithmetic, with today's tables (tests/unit/test_parsed.c prints it):
 * a fault record is the largest, 48 (record header) + 65 (id, NUL) + 1,986
 * (tail: code 64 and detail 256 bytes at six bytes each, port, active, the
 * names) + 332 (struct sp_fault) = 2,431 bytes; 1,000 of them and the
 * 32-byte message header make 2,431,032 bytes, twice that plus the topic
 * and entry header ~4.9 MB of writer queue. Real records stay far below
 * (codes have no characters to escape, texts no control characters), but
 * the bound is what the code cannot exceed, whatever the payload.
 */
size_t parsed_max_size(void)
{
	size_t rec_max = 0;
	for (int k = 0; k < SP_REC_KIND_COUNT; k++) {
		size_t n = sizeof(struct rec_hdr) + SP_ID_MAX + 1 +
			   sp_record_tail_max((enum sp_rec_kind)k) + facts_size((enum sp_rec_kind)k);
		if (n > rec_max)
			rec_max = n;
	}
	return sizeof(struct msg_hdr) + (size_t)SP_RECORDS_MAX * rec_max;
}

size_t parsed_queue_min(void)
{
	/* the parser passes a data message on only if its topic parsed: shorter than SP_TOPIC_MAX */
	return queue_cap_for(SP_TOPIC_MAX - 1, parsed_max_size());
}

int parsed_open(const char *buf, size_t len, struct parsed_msg *m)
{
	struct msg_hdr h;
	memset(m, 0, sizeof(*m));
	if (buf == NULL || len < sizeof(h))
		return SP_EINVAL;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != PARSED_MAGIC || h.reason < 0 || h.reason >= SP_REJ_REASON_COUNT)
		return SP_EINVAL;
	m->seq = h.seq;
	m->why.reason = (enum sp_reject)h.reason;
	m->why.field = h.field;
	m->count = h.count;
	m->left = h.count;
	m->next = buf + sizeof(h);
	m->end = buf + len;
	return 0;
}

int parsed_next(struct parsed_msg *m, struct parsed_rec *r)
{
	struct rec_hdr rh;
	if (m->left == 0)
		return 0;
	if ((size_t)(m->end - m->next) < sizeof(rh))
		return SP_EINVAL;
	memcpy(&rh, m->next, sizeof(rh));
	size_t room = (size_t)(m->end - m->next) - sizeof(rh);
	if (rh.reason < 0 || rh.reason >= SP_REJ_REASON_COUNT || rh.kind < 0 ||
	    rh.kind >= SP_REC_KIND_COUNT || rh.dev_len > SP_ID_MAX || rh.dev_len + 1 > room ||
	    rh.body_len > room - rh.dev_len - 1 ||
	    rh.facts_len != (rh.reason == SP_REJ_NONE ? facts_size((enum sp_rec_kind)rh.kind) : 0) ||
	    rh.facts_len > room - rh.dev_len - 1 - rh.body_len)
		return SP_EINVAL;
	const char *dev = m->next + sizeof(rh);
	if (dev[rh.dev_len] != '\0')
		return SP_EINVAL;
	r->why.reason = (enum sp_reject)rh.reason;
	r->why.field = rh.field;
	r->kind = (enum sp_rec_kind)rh.kind;
	r->ts = rh.ts;
	r->port = rh.port;
	r->floor = rh.floor;
	r->dev = dev;
	r->body = rh.reason == SP_REJ_NONE ? dev + rh.dev_len + 1 : NULL;
	r->body_len = rh.body_len;
	r->has = rh.has;
	r->facts = dev + rh.dev_len + 1 + rh.body_len;
	r->facts_len = rh.facts_len;
	m->next = dev + rh.dev_len + 1 + rh.body_len + rh.facts_len;
	m->left--;
	return 1;
}

void parsed_record(const struct parsed_rec *r, struct sp_record *out)
{
	out->kind = r->kind;
	out->ts = r->ts;
	out->has = r->has;
	size_t n = strnlen(r->dev, SP_ID_MAX);
	memcpy(out->dev, r->dev, n);
	out->dev[n] = '\0';
	/*
	 * Only the record's own member: the rest of the union is never read
	 * (zeroing all of it, sized by the fault's strings, cost ~100
	 * instructions a record).
	 */
	if (r->facts_len <= sizeof(out->u))
		memcpy(&out->u, r->facts, r->facts_len);
	if (r->kind == SP_REC_FAULT) {
		/* the strings came through a byte copy: make sure they end */
		out->u.fault.code[SP_FAULT_CODE_MAX] = '\0';
		out->u.fault.detail[SP_TEXT_MAX] = '\0';
	}
}
