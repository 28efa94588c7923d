/*
 * parsed.h - a data message after the decode stage, as it travels from the
 * parser thread to the writer through the second queue.
 *
 * The parser decodes and validates the JSON, and encodes every accepted
 * record's canonical tail, what the store keeps of it (sp_encode_record_tail:
 * the head repeats kind, dev and ts, which travel here anyway); the writer
 * then needs only what it checks against the inventory and stores. One flat byte string per
 * message, written and read with memcpy (the queue does not align
 * payloads), never leaving the process: the `field` names in it point to
 * the codec's static strings.
 *
 *   message header | record header, dev, canonical tail, values | record ... |
 *
 * The values are the record's sp_record union member, byte for byte: the
 * alert rules read them without decoding the JSON a second time.
 *
 * Pure functions, no state: used by parser.c and writer.c, tested directly.
 */
#ifndef SP_COLLECTOR_PARSED_H
#define SP_COLLECTOR_PARSED_H

#include "sitepulse/buf.h"
#include "sitepulse/codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A message as the writer reads it; walk its records with parsed_next. */
struct parsed_msg {
	int64_t seq;                  /* 0 = unknown (unreadable or ambiguous) */
	struct sp_reject_info why;    /* SP_REJ_NONE, or why the whole message is refused */
	size_t count;                 /* records (0 when refused) */
	const char *next, *end;       /* cursor */
	size_t left;
};

struct parsed_rec {
	struct sp_reject_info why;    /* SP_REJ_NONE or why the codec refused the record */
	enum sp_rec_kind kind;
	int64_t ts;
	int32_t port;                 /* port/session/fault port, 0 = none */
	int32_t floor;                /* lift records */
	const char *dev;              /* NUL-terminated, inside the message */
	const char *body;             /* canonical tail, not NUL-terminated; NULL when refused */
	size_t body_len;
	uint32_t has;                 /* sp_record.has */
	const void *facts;            /* the record's values for the rules (parsed_record) */
	size_t facts_len;
};

/*
 * Appends the parsed form of a decoded message to out: dm and why as
 * sp_decode_data left them (rc its return value). 0 or SP_ENOMEM.
 */
int parsed_write(struct sp_buf *out, int rc, const struct sp_data_msg *dm,
		 const struct sp_reject_info *why);

/*
 * The most bytes parsed_write writes for any message sp_decode_data
 * accepts: the message header and SP_RECORDS_MAX records of the kind whose
 * parsed form can be largest (record header, the longest id and its NUL,
 * the longest canonical tail, sp_record_tail_max, and the values). A bound
 * on the format, not on the payload: it holds whatever the 256 KiB payload
 * says, including records sp_decode_data rejects (they are smaller).
 */
size_t parsed_max_size(void);

/*
 * The least writer queue capacity (queue.h) that takes the parsed form of
 * every data message: queue_cap_for a topic of the longest valid form and
 * a payload of parsed_max_size(). A smaller writer queue could refuse a
 * valid message as too big.
 */
size_t parsed_queue_min(void);

/* Opens a parsed message. 0, or SP_EINVAL if buf is not one. */
int parsed_open(const char *buf, size_t len, struct parsed_msg *m);

/* The next record: 1 with *r filled, 0 at the end, SP_EINVAL on a damaged buffer. */
int parsed_next(struct parsed_msg *m, struct parsed_rec *r);

/* The accepted record r as a struct sp_record again (for the alert rules). */
void parsed_record(const struct parsed_rec *r, struct sp_record *out);

#endif
