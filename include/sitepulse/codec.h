/*
 * codec.h - JSON payloads of CONTRACT §3: decoding with validation, and encoding.
 *
 * Decoding never trusts its input: sizes are bounded, every field is
 * type- and range-checked, and each rejection has a named reason
 * (enum sp_reject) used as the `reason` label of the rejection counters.
 * A broken payload rejects the message; a bad record rejects only that
 * record. Unknown fields are ignored. The codec is pure: no I/O, no
 * clock (the caller passes `now_ms`), no global state.
 *
 * Threading: a struct sp_decoder belongs to one thread at a time.
 */
#ifndef SP_CODEC_H
#define SP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sitepulse/buf.h"
#include "sitepulse/record.h"

/* Rejection reasons, for whole messages and for single records. */
enum sp_reject {
	SP_REJ_NONE = 0,
	SP_REJ_TOO_LARGE,        /* payload > SP_PAYLOAD_MAX */
	SP_REJ_BAD_JSON,         /* not parseable JSON, or trailing garbage */
	SP_REJ_NOT_OBJECT,       /* payload or record is not a JSON object */
	SP_REJ_BAD_VERSION,      /* "v" is not 1 */
	SP_REJ_MISSING_FIELD,    /* a required field is absent */
	SP_REJ_BAD_TYPE,         /* a field has the wrong JSON type */
	SP_REJ_OUT_OF_RANGE,     /* a number outside its accepted range */
	SP_REJ_BAD_ENUM,         /* a text outside its vocabulary */
	SP_REJ_BAD_ID,           /* dev/site/agent not a valid identifier */
	SP_REJ_BAD_TEXT,         /* string too long, not UTF-8, or bad characters */
	SP_REJ_EMBEDDED_NUL,     /* a key, id, kind, enum, code or text decodes with a NUL byte */
	SP_REJ_BAD_TS,           /* timestamp before 2020 or too far in the future */
	SP_REJ_DUPLICATE_FIELD,  /* the same key twice in one object */
	SP_REJ_UNKNOWN_KIND,     /* record "t" not one of lift/station/port/session/fault */
	SP_REJ_TOO_MANY_RECORDS, /* more than SP_RECORDS_MAX records (or devices) */
	SP_REJ_NO_RECORDS,       /* empty records (or devices) array */
	SP_REJ_BAD_TOPIC,        /* topic not sp/v1/{site}/{agent}/{birth|data|state} */
	/* context checks done by the collector against its inventory */
	SP_REJ_KIND_MISMATCH,    /* record kind does not fit the device's kind */
	SP_REJ_FOREIGN_DEVICE,   /* device belongs to another agent of the site */
	SP_REJ_TOO_MANY_DEVICES, /* the collector's device limit is reached */
	SP_REJ_REASON_COUNT
};

/* Label text of a reason ("bad_json", ...). */
const char *sp_reject_name(enum sp_reject r);

/* Why something was rejected: the reason and the field concerned (static text or NULL). */
struct sp_reject_info {
	enum sp_reject reason;
	const char *field;
};

/* Earliest timestamp accepted (2020-01-01T00:00:00Z) and allowed clock lead. */
#define SP_TS_MIN 1577836800000LL
#define SP_TS_MAX_LEAD_MS (24LL * 3600 * 1000)
#define SP_SEQ_MAX 9007199254740991LL /* 2^53-1: exact in a JSON number */

struct sp_decoder;

/* Returns a decoder with room for SP_RECORDS_MAX records, or NULL. */
struct sp_decoder *sp_decoder_create(void);
void sp_decoder_destroy(struct sp_decoder *d);

/* A decoded data message. Arrays are owned by the decoder, valid until its next use. */
struct sp_data_msg {
	int64_t seq;
	int64_t ts;
	size_t count;                   /* entries in records[] and rejects[] */
	size_t rejected;                /* entries with rejects[i].reason != SP_REJ_NONE */
	struct sp_record *records;
	struct sp_reject_info *rejects;
};

/*
 * Decodes and validates a data message (§3.2).
 * Returns 0 when the message is accepted (some records may still be
 * rejected: see out->rejects), or SP_EINVAL with *why filled when the whole
 * message is rejected; out->seq is then still set (> 0) if "seq" was valid.
 */
int sp_decode_data(struct sp_decoder *d, const char *payload, size_t len, int64_t now_ms,
		   struct sp_data_msg *out, struct sp_reject_info *why);

/*
 * Decodes and validates one record, as a records[] element of a data
 * message or as the store keeps it (its canonical body): 0, or SP_EINVAL
 * with *why filled.
 */
int sp_decode_record(struct sp_decoder *d, const char *json, size_t len, int64_t now_ms,
		     struct sp_record *out, struct sp_reject_info *why);

/* A decoded birth message. Arrays are owned by the decoder. */
struct sp_birth {
	int64_t ts;
	char fw[SP_TEXT_MAX + 1];       /* "" if absent */
	size_t count;
	size_t rejected;
	struct sp_device_info *devices;
	struct sp_reject_info *rejects;
};

/* Decodes a birth (§3.1); per-device rejects like data records. 0 or SP_EINVAL. */
int sp_decode_birth(struct sp_decoder *d, const char *payload, size_t len, int64_t now_ms,
		    struct sp_birth *out, struct sp_reject_info *why);

/* Decodes a state payload (§2): {"online":bool[,"ts":…]}. *ts is 0 when absent. */
int sp_decode_state(const char *payload, size_t len, bool *online, int64_t *ts,
		    struct sp_reject_info *why);

/*
 * Decodes an ack payload {"v":1,"seq":N,"ts":…}. 0 or SP_EINVAL. *ts (may
 * be NULL) is when the collector published it, by its clock; 0 when absent
 * or not a plausible time (it only informs, as a state's ts).
 */
int sp_decode_ack(const char *payload, size_t len, int64_t *seq, int64_t *ts);

/*
 * The commands (§3.3): port_off, and port_on, our extension of the same shape
 * that puts a port a port_off turned off back in service (docs/protocol.md,
 * Command). Zero is port_off: a zeroed sp_cmd is the contract's command.
 */
enum sp_cmd_kind { SP_CMD_PORT_OFF = 0, SP_CMD_PORT_ON, SP_CMD_KIND_COUNT };
extern const struct sp_vocab sp_vocab_cmd;

/* A command to an agent (§3.3). */
struct sp_cmd {
	enum sp_cmd_kind cmd;
	char id[SP_ID_MAX + 1];   /* 1-64 of [A-Za-z0-9_.:-]; applied once per id */
	int64_t ts;
	char dev[SP_ID_MAX + 1];
	int32_t port;
	int reason;               /* enum sp_stop_reason; -1 absent or another text */
};

/* "port_off" or "port_on" (sp_vocab_name of sp_vocab_cmd). */
const char *sp_cmd_name(enum sp_cmd_kind k);

/* Decodes a cmd payload. 0 or SP_EINVAL (unknown commands included). */
int sp_decode_cmd(const char *payload, size_t len, int64_t now_ms, struct sp_cmd *out,
		  struct sp_reject_info *why);
int sp_encode_cmd(struct sp_buf *b, const struct sp_cmd *c);

/* Encoders append to b; they return 0, SP_ENOMEM or SP_ETOOBIG. */
int sp_encode_record(struct sp_buf *b, const struct sp_record *r);
/*
 * A record's canonical form in two parts, head then tail: the head
 * `{"t":KIND,"dev":DEV,"ts":TS` says only what a stored reading's device and
 * chunk entry already say, so the store keeps the tail (`,"field":value...}`,
 * or `}`) and writes the head again when it reads (docs/internals/storage.md).
 * sp_encode_record is exactly head + tail. Also SP_EINVAL for a kind out of range.
 */
int sp_encode_record_head(struct sp_buf *b, enum sp_rec_kind kind, const char *dev, int64_t ts);
int sp_encode_record_tail(struct sp_buf *b, const struct sp_record *r);
/*
 * The most bytes sp_encode_record_tail writes for a record of kind k (0 for
 * no such kind): every field present at its longest (a number's 32 bytes,
 * a text's maximum length with every byte escaped as \u00XX), from the same
 * field tables and the same per-field bound the encoder reserves with.
 */
size_t sp_record_tail_max(enum sp_rec_kind k);
int sp_encode_data(struct sp_buf *b, int64_t seq, int64_t ts, const struct sp_record *recs,
		   size_t n);
int sp_encode_birth(struct sp_buf *b, int64_t ts, const char *fw,
		    const struct sp_device_info *devs, size_t n);
int sp_encode_device_info(struct sp_buf *b, const struct sp_device_info *dev);
int sp_encode_state(struct sp_buf *b, bool online, int64_t ts);
int sp_encode_ack(struct sp_buf *b, int64_t seq, int64_t ts);

/*
 * True if a string of the JSON text json (len bytes, syntactically valid)
 * decodes to one holding a NUL byte: the escape \u0000, or a raw NUL byte
 * inside quotes. Such a string reads, as a C string, as its part before
 * the NUL ("lift-9\u0000../x" as "lift-9"), so the decoders refuse every one
 * they read (SP_REJ_EMBEDDED_NUL); this is the same check for other JSON
 * readers (the API's request bodies).
 */
bool sp_json_has_nul(const char *json, size_t len);

/* True if the n bytes at s are valid UTF-8 (no overlongs, no surrogates). */
bool sp_utf8_valid(const char *s, size_t n);
/* Bytes of the valid UTF-8 sequence at s (n bytes available): 1..4, or 0 if invalid. */
size_t sp_utf8_len(const char *s, size_t n);

#endif
