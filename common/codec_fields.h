/*
 * codec_fields.h - private to the codec: the field tables that describe every
 * record kind once. The decoder (codec_decode.c) checks types, ranges and
 * presence against them; the encoder (codec_encode.c) writes fields in
 * their order. One description, so the two cannot drift apart.
 */
#ifndef SP_CODEC_FIELDS_H
#define SP_CODEC_FIELDS_H

#include "sitepulse/record.h"

#include <stddef.h>
#include <stdint.h>

enum ftype {
	F_BOOL,  /* bool */
	F_INT32, /* int32_t, integral JSON number in [min,max] */
	F_INT64, /* int64_t, integral JSON number in [min,max] */
	F_NUM,   /* double in [min,max] */
	F_ENUM,  /* int-sized enum, text in vocab */
	F_TS,    /* int64_t timestamp, SP_TS_MIN .. now + lead */
	F_CODE,  /* char[maxlen+1], [A-Za-z0-9_.:-] */
	F_TEXT,  /* char[maxlen+1], UTF-8 without control characters */
};

struct field {
	const char *name;
	enum ftype type;
	size_t off;           /* offset in the target struct */
	uint32_t has;         /* SP_HAS_* bit; 0 = required */
	double min, max;      /* numeric range */
	const struct sp_vocab *vocab;
	size_t maxlen;        /* F_CODE, F_TEXT */
};

struct kind_table {
	const struct field *fields;
	size_t count;
};

/* Record fields per kind (after t, dev, ts), indexed by enum sp_rec_kind. */
extern const struct kind_table codec_kind_tables[SP_REC_KIND_COUNT];

/* Birth device fields beyond dev, kind (and floors for lifts). */
#define CODEC_INFO_FIELDS 2
extern const struct field codec_lift_info_fields[CODEC_INFO_FIELDS];
extern const struct field codec_charger_info_fields[CODEC_INFO_FIELDS];

#endif
