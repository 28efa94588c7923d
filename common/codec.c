/*
 * codec.c - CONTRACT §3 payloads: decode + validate with cJSON, encode by hand.
 *
 * This is the only file that includes cJSON. Record fields are described
 * once, in the per-kind tables below; the same table drives decoding
 * (type and range checks, required fields, duplicate detection) and
 * encoding (field order and presence), so the two cannot drift apart.
 *
 * Why cJSON: it parses a 20-record message about 3.5x faster than jansson
 * (measured, docs/architecture.md) and is what Mosquitto itself uses.
 * What it does not check we check here: UTF-8 of kept strings, integer-ness
 * of numbers, duplicate keys and trailing bytes.
 */
#include "sitepulse/codec.h"
#include "sitepulse/arena.h"
#include "sitepulse/error.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char *const reject_names[SP_REJ_REASON_COUNT] = {
	"none",          "too_large",        "bad_json",       "not_object",  "bad_version",
	"missing_field", "bad_type",         "out_of_range",   "bad_enum",    "bad_id",
	"bad_text",      "bad_ts",           "duplicate_field", "unknown_kind", "too_many_records",
	"no_records",    "bad_topic",        "kind_mismatch",  "foreign_device",
	"too_many_devices"};

const char *sp_reject_name(enum sp_reject r)
{
	return (unsigned)r < SP_REJ_REASON_COUNT ? reject_names[r] : "unknown";
}

/* ---------------------------------------------------------------- field tables */

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

#define R(m) offsetof(struct sp_record, u.m)
#define I64 9007199254740991.0

static const struct field lift_fields[] = {
	{"floor", F_INT32, R(lift.floor), 0, SP_FLOOR_MIN, SP_FLOOR_MAX, NULL, 0},
	{"dir", F_ENUM, R(lift.dir), 0, 0, 0, &sp_vocab_dir, 0},
	{"door", F_ENUM, R(lift.door), 0, 0, 0, &sp_vocab_door, 0},
	{"door_zone", F_BOOL, R(lift.door_zone), 0, 0, 0, NULL, 0},
	{"occupied", F_BOOL, R(lift.occupied), 0, 0, 0, NULL, 0},
	{"speed", F_NUM, R(lift.speed), SP_HAS_SPEED, 0, 20, NULL, 0},
	{"mode", F_ENUM, R(lift.mode), 0, 0, 0, &sp_vocab_mode, 0},
	{"power", F_ENUM, R(lift.power), SP_HAS_POWER_SRC, 0, 0, &sp_vocab_power, 0},
	{"safety_ok", F_BOOL, R(lift.safety_ok), SP_HAS_SAFETY_OK, 0, 0, NULL, 0},
	{"trips", F_INT64, R(lift.trips), SP_HAS_TRIPS, 0, I64, NULL, 0},
	{"door_cycles", F_INT64, R(lift.door_cycles), SP_HAS_DOOR_CYCLES, 0, I64, NULL, 0},
	{"run_s", F_INT64, R(lift.run_s), SP_HAS_RUN_S, 0, I64, NULL, 0},
};

static const struct field station_fields[] = {
	{"power_w", F_NUM, R(station.power_w), SP_HAS_POWER_W, 0, 1e6, NULL, 0},
	{"supply_v", F_NUM, R(station.supply_v), SP_HAS_SUPPLY_V, 0, 1000, NULL, 0},
	{"ambient_c", F_NUM, R(station.ambient_c), SP_HAS_AMBIENT_C, -60, 150, NULL, 0},
	{"smoke", F_BOOL, R(station.smoke), 0, 0, 0, NULL, 0},
	{"leak_ma", F_NUM, R(station.leak_ma), SP_HAS_LEAK_MA, 0, 10000, NULL, 0},
	{"door_open", F_BOOL, R(station.door_open), SP_HAS_DOOR_OPEN, 0, 0, NULL, 0},
	{"energy_wh", F_INT64, R(station.energy_wh), SP_HAS_ENERGY_WH, 0, I64, NULL, 0},
};

static const struct field port_fields[] = {
	{"port", F_INT32, R(port.port), 0, 1, SP_PORT_MAX, NULL, 0},
	{"state", F_ENUM, R(port.state), 0, 0, 0, &sp_vocab_port_state, 0},
	{"v", F_NUM, R(port.v), SP_HAS_V, 0, 1000, NULL, 0},
	{"a", F_NUM, R(port.a), SP_HAS_A, 0, 100, NULL, 0},
	{"w", F_NUM, R(port.w), SP_HAS_W, 0, 100000, NULL, 0},
	{"temp_c", F_NUM, R(port.temp_c), SP_HAS_TEMP_C, -60, 200, NULL, 0},
	{"session_wh", F_NUM, R(port.session_wh), SP_HAS_SESSION_WH, 0, 1e6, NULL, 0},
};

static const struct field session_fields[] = {
	{"port", F_INT32, R(session.port), 0, 1, SP_PORT_MAX, NULL, 0},
	{"start", F_TS, R(session.start), 0, 0, 0, NULL, 0},
	{"end", F_TS, R(session.end), 0, 0, 0, NULL, 0},
	{"wh", F_NUM, R(session.wh), 0, 0, 1e6, NULL, 0},
	{"reason", F_ENUM, R(session.reason), 0, 0, 0, &sp_vocab_stop_reason, 0},
};

static const struct field fault_fields[] = {
	{"code", F_CODE, R(fault.code), 0, 0, 0, NULL, SP_FAULT_CODE_MAX},
	{"active", F_BOOL, R(fault.active), 0, 0, 0, NULL, 0},
	{"port", F_INT32, R(fault.port), SP_HAS_PORT, 1, SP_PORT_MAX, NULL, 0},
	{"detail", F_TEXT, R(fault.detail), SP_HAS_DETAIL, 0, 0, NULL, SP_TEXT_MAX},
};

struct kind_table {
	const struct field *fields;
	size_t count;
};

#define TABLE(a) {a, sizeof(a) / sizeof(a[0])}
static const struct kind_table kind_tables[SP_REC_KIND_COUNT] = {
	TABLE(lift_fields), TABLE(station_fields), TABLE(port_fields), TABLE(session_fields),
	TABLE(fault_fields)};

#define D(m) offsetof(struct sp_device_info, m)
static const struct field lift_info_fields[] = {
	{"rated_speed", F_NUM, D(rated_speed), 0, 0.05, 20, NULL, 0},
	{"rated_load", F_NUM, D(rated_load), 1, 0, 100000, NULL, 0},
};
static const struct field charger_info_fields[] = {
	{"ports", F_INT32, D(ports), 0, 1, SP_PORT_MAX, NULL, 0},
	{"port_limit_w", F_NUM, D(port_limit_w), 1, 0, 100000, NULL, 0},
};

/* ---------------------------------------------------------------- decoder object */

struct sp_decoder {
	struct sp_arena *arena;   /* the cJSON tree of the message being decoded */
	struct sp_record records[SP_RECORDS_MAX];
	struct sp_reject_info rejects[SP_RECORDS_MAX];
	struct sp_device_info devices[SP_DEVICES_MAX];
	struct sp_reject_info dev_rejects[SP_DEVICES_MAX];
};

/*
 * cJSON allocates through process-wide hooks. They are set once, to the
 * arena hooks: a thread that has entered a decoder's arena allocates from
 * it, every other thread (and every other use) from malloc as before.
 */
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void install_hooks(void)
{
	cJSON_Hooks h = {sp_arena_malloc, sp_arena_free};
	cJSON_InitHooks(&h);
}

struct sp_decoder *sp_decoder_create(void)
{
	pthread_once(&hooks_once, install_hooks);
	struct sp_decoder *d = calloc(1, sizeof(struct sp_decoder));
	if (d == NULL)
		return NULL;
	/* 64 KiB chunks; keep 1 MiB between messages, so a hostile message cannot pin more */
	d->arena = sp_arena_create(64 * 1024, 1024 * 1024);
	if (d->arena == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

void sp_decoder_destroy(struct sp_decoder *d)
{
	if (d == NULL)
		return;
	sp_arena_destroy(d->arena);
	free(d);
}

/* Parses in the decoder's arena (see release_tree). */
static struct sp_arena *enter(struct sp_decoder *d)
{
	return sp_arena_enter(d->arena);
}

/* Drops a tree parsed in the arena at once, instead of freeing node by node. */
static void release_tree(struct sp_decoder *d, struct sp_arena *prev)
{
	sp_arena_reset(d->arena);
	sp_arena_enter(prev);
}

/* ---------------------------------------------------------------- helpers */

bool sp_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		unsigned char c = *p;
		if (c < 0x80) {
			p++;
			continue;
		}
		size_t len;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if ((size_t)(end - p) < len)
			return false;
		for (size_t i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += len;
	}
	return true;
}

static bool code_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.' || c == ':';
}

static enum sp_reject check_ts(double d, int64_t now_ms, int64_t *out)
{
	if (!isfinite(d) || d != trunc(d))
		return SP_REJ_BAD_TS;
	if (d < (double)SP_TS_MIN || d > (double)(now_ms + SP_TS_MAX_LEAD_MS))
		return SP_REJ_BAD_TS;
	*out = (int64_t)d;
	return SP_REJ_NONE;
}

static enum sp_reject check_int(double d, double min, double max)
{
	if (!isfinite(d) || d != trunc(d))
		return SP_REJ_BAD_TYPE; /* 1.5 where an integer belongs */
	if (d < min || d > max)
		return SP_REJ_OUT_OF_RANGE;
	return SP_REJ_NONE;
}

/* Parses one JSON value into the field f of the struct at base. */
static enum sp_reject parse_field(const struct field *f, const cJSON *v, void *base,
				  int64_t now_ms)
{
	char *dst = (char *)base + f->off;
	enum sp_reject r;

	switch (f->type) {
	case F_BOOL:
		if (!cJSON_IsBool(v))
			return SP_REJ_BAD_TYPE;
		*(bool *)dst = cJSON_IsTrue(v);
		return SP_REJ_NONE;
	case F_INT32:
	case F_INT64:
		if (!cJSON_IsNumber(v))
			return SP_REJ_BAD_TYPE;
		if ((r = check_int(v->valuedouble, f->min, f->max)))
			return r;
		if (f->type == F_INT32)
			*(int32_t *)dst = (int32_t)v->valuedouble;
		else
			*(int64_t *)dst = (int64_t)v->valuedouble;
		return SP_REJ_NONE;
	case F_NUM:
		if (!cJSON_IsNumber(v))
			return SP_REJ_BAD_TYPE;
		if (!isfinite(v->valuedouble) || v->valuedouble < f->min ||
		    v->valuedouble > f->max)
			return SP_REJ_OUT_OF_RANGE;
		*(double *)dst = v->valuedouble;
		return SP_REJ_NONE;
	case F_ENUM: {
		if (!cJSON_IsString(v))
			return SP_REJ_BAD_TYPE;
		int x = sp_vocab_parse(f->vocab, v->valuestring);
		if (x < 0)
			return SP_REJ_BAD_ENUM;
		/* enums of record.h are int-sized with values 0..count-1 */
		*(int *)dst = x;
		return SP_REJ_NONE;
	}
	case F_TS:
		if (!cJSON_IsNumber(v))
			return SP_REJ_BAD_TYPE;
		return check_ts(v->valuedouble, now_ms, (int64_t *)dst);
	case F_CODE:
	case F_TEXT: {
		if (!cJSON_IsString(v))
			return SP_REJ_BAD_TYPE;
		const char *s = v->valuestring;
		size_t n = strnlen(s, f->maxlen + 1);
		if (n > f->maxlen || (f->type == F_CODE && n == 0))
			return SP_REJ_BAD_TEXT;
		if (f->type == F_CODE) {
			for (size_t i = 0; i < n; i++)
				if (!code_char((unsigned char)s[i]))
					return SP_REJ_BAD_TEXT;
		} else {
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
					return SP_REJ_BAD_TEXT;
			if (!sp_utf8_valid(s, n))
				return SP_REJ_BAD_TEXT;
		}
		memcpy(dst, s, n);
		dst[n] = '\0';
		return SP_REJ_NONE;
	}
	}
	return SP_REJ_BAD_TYPE;
}

static const struct field *find_field(const struct field *fields, size_t count, const char *name)
{
	/* the first byte rules out most names without a call */
	for (size_t i = 0; i < count; i++)
		if (fields[i].name[0] == name[0] && strcmp(fields[i].name, name) == 0)
			return &fields[i];
	return NULL;
}

/* Copies an identifier value; returns the reject reason. */
static enum sp_reject parse_id(const cJSON *v, char *dst)
{
	if (!cJSON_IsString(v))
		return SP_REJ_BAD_TYPE;
	size_t n = strnlen(v->valuestring, SP_ID_MAX + 1);
	if (!sp_id_valid(v->valuestring, n))
		return SP_REJ_BAD_ID;
	memcpy(dst, v->valuestring, n);
	dst[n] = '\0';
	return SP_REJ_NONE;
}

/*
 * Decodes the fields of one object against a table, in a single pass over
 * its members (unknown keys skipped, duplicates rejected). `seen` carries
 * bits for fields already handled by the caller (bit i = table entry i).
 * On success *has receives the SP_HAS_* bits of the optional fields present.
 */
static enum sp_reject parse_table(const cJSON *obj, const struct field *fields, size_t count,
				  void *base, int64_t now_ms, uint32_t *has,
				  const char *const *skip, size_t nskip, struct sp_reject_info *why)
{
	uint32_t seen = 0;
	uint32_t skip_seen = 0;
	enum sp_reject r;

	for (const cJSON *m = obj->child; m != NULL; m = m->next) {
		size_t si;
		for (si = 0; si < nskip; si++)
			if (m->string[0] == skip[si][0] && strcmp(m->string, skip[si]) == 0)
				break;
		if (si < nskip) {
			if (skip_seen & (1u << si)) {
				why->field = skip[si];
				return SP_REJ_DUPLICATE_FIELD;
			}
			skip_seen |= 1u << si;
			continue;
		}
		const struct field *f = find_field(fields, count, m->string);
		if (f == NULL)
			continue; /* forward compatibility: unknown fields are ignored */
		uint32_t bit = 1u << (f - fields);
		why->field = f->name;
		if (seen & bit)
			return SP_REJ_DUPLICATE_FIELD;
		seen |= bit;
		if ((r = parse_field(f, m, base, now_ms)))
			return r;
		if (f->has)
			*has |= f->has;
	}
	for (size_t i = 0; i < count; i++) {
		if (fields[i].has == 0 && !(seen & (1u << i))) {
			why->field = fields[i].name;
			return SP_REJ_MISSING_FIELD;
		}
	}
	why->field = NULL;
	return SP_REJ_NONE;
}

static enum sp_reject decode_record(const cJSON *obj, int64_t now_ms, struct sp_record *rec,
				    struct sp_reject_info *why)
{
	static const char *const common[] = {"t", "dev", "ts"};
	enum sp_reject r;

	memset(rec, 0, offsetof(struct sp_record, u));
	why->field = NULL;
	if (!cJSON_IsObject(obj))
		return SP_REJ_NOT_OBJECT;

	const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "t");
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(obj, "dev");
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(obj, "ts");
	why->field = t == NULL ? "t" : dev == NULL ? "dev" : ts == NULL ? "ts" : NULL;
	if (why->field)
		return SP_REJ_MISSING_FIELD;
	why->field = "t";
	if (!cJSON_IsString(t))
		return SP_REJ_BAD_TYPE;
	int kind = sp_vocab_parse(&sp_vocab_rec_kind, t->valuestring);
	if (kind < 0)
		return SP_REJ_UNKNOWN_KIND;
	rec->kind = (enum sp_rec_kind)kind;
	why->field = "dev";
	if ((r = parse_id(dev, rec->dev)))
		return r;
	why->field = "ts";
	if (!cJSON_IsNumber(ts))
		return SP_REJ_BAD_TYPE;
	if ((r = check_ts(ts->valuedouble, now_ms, &rec->ts)))
		return r;

	const struct kind_table *kt = &kind_tables[kind];
	if ((r = parse_table(obj, kt->fields, kt->count, rec, now_ms, &rec->has, common, 3, why)))
		return r;
	if (rec->kind == SP_REC_SESSION && rec->u.session.start > rec->u.session.end) {
		why->field = "start";
		return SP_REJ_OUT_OF_RANGE;
	}
	return SP_REJ_NONE;
}

/* Parses a whole payload into a cJSON tree; NULL with *why on failure. */
static cJSON *parse_payload(const char *payload, size_t len, struct sp_reject_info *why)
{
	const char *end = NULL;
	cJSON *root;

	why->field = NULL;
	if (len > SP_PAYLOAD_MAX) {
		why->reason = SP_REJ_TOO_LARGE;
		return NULL;
	}
	if (payload == NULL || len == 0) {
		why->reason = SP_REJ_BAD_JSON;
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(payload, len, &end, 0);
	if (root == NULL) {
		why->reason = SP_REJ_BAD_JSON;
		return NULL;
	}
	/* cJSON stops at the end of the first value: anything but blanks after it is garbage */
	for (const char *p = end; p < payload + len; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
			cJSON_Delete(root);
			why->reason = SP_REJ_BAD_JSON;
			return NULL;
		}
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		why->reason = SP_REJ_NOT_OBJECT;
		return NULL;
	}
	return root;
}

/* Checks "v":1. */
static enum sp_reject check_version(const cJSON *root, struct sp_reject_info *why)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "v");
	why->field = "v";
	if (v == NULL)
		return SP_REJ_MISSING_FIELD;
	if (!cJSON_IsNumber(v))
		return SP_REJ_BAD_TYPE;
	if (v->valuedouble != 1.0)
		return SP_REJ_BAD_VERSION;
	why->field = NULL;
	return SP_REJ_NONE;
}

/* Reads a required integer member of root. */
static enum sp_reject get_int(const cJSON *root, const char *name, double min, double max,
			      int64_t *out, struct sp_reject_info *why)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
	enum sp_reject r;
	why->field = name;
	if (v == NULL)
		return SP_REJ_MISSING_FIELD;
	if (!cJSON_IsNumber(v))
		return SP_REJ_BAD_TYPE;
	if ((r = check_int(v->valuedouble, min, max)))
		return r;
	*out = (int64_t)v->valuedouble;
	why->field = NULL;
	return SP_REJ_NONE;
}

/* Reads a required timestamp member of root. */
static enum sp_reject get_ts(const cJSON *root, const char *name, int64_t now_ms, int64_t *out,
			     struct sp_reject_info *why)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
	why->field = name;
	if (v == NULL)
		return SP_REJ_MISSING_FIELD;
	if (!cJSON_IsNumber(v))
		return SP_REJ_BAD_TYPE;
	enum sp_reject r = check_ts(v->valuedouble, now_ms, out);
	if (r == SP_REJ_NONE)
		why->field = NULL;
	return r;
}

/* Returns the array member `name` with 1..max elements, or NULL with why. */
static const cJSON *get_list(const cJSON *root, const char *name, int max, int *count,
			     struct sp_reject_info *why)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, name);
	why->field = name;
	if (a == NULL) {
		why->reason = SP_REJ_MISSING_FIELD;
		return NULL;
	}
	if (!cJSON_IsArray(a)) {
		why->reason = SP_REJ_BAD_TYPE;
		return NULL;
	}
	int n = 0;
	for (const cJSON *e = a->child; e != NULL; e = e->next)
		if (++n > max) {
			why->reason = SP_REJ_TOO_MANY_RECORDS;
			return NULL;
		}
	if (n == 0) {
		why->reason = SP_REJ_NO_RECORDS;
		return NULL;
	}
	*count = n;
	why->field = NULL;
	return a;
}

/* ---------------------------------------------------------------- decoders */

int sp_decode_data(struct sp_decoder *d, const char *payload, size_t len, int64_t now_ms,
		   struct sp_data_msg *out, struct sp_reject_info *why)
{
	struct sp_arena *prev = enter(d);
	cJSON *root = parse_payload(payload, len, why);
	int count = 0;

	memset(out, 0, sizeof(*out));
	if (root == NULL) {
		release_tree(d, prev);
		return SP_EINVAL;
	}
	/* seq first: even a rejected message is "handled" for the ack when its seq is known */
	if ((why->reason = get_int(root, "seq", 1, (double)SP_SEQ_MAX, &out->seq, why)) ||
	    (why->reason = check_version(root, why)) ||
	    (why->reason = get_ts(root, "ts", now_ms, &out->ts, why)))
		goto reject;
	const cJSON *list = get_list(root, "records", SP_RECORDS_MAX, &count, why);
	if (list == NULL)
		goto reject;

	out->records = d->records;
	out->rejects = d->rejects;
	size_t i = 0;
	for (const cJSON *e = list->child; e != NULL; e = e->next, i++) {
		d->rejects[i].reason = decode_record(e, now_ms, &d->records[i], &d->rejects[i]);
		if (d->rejects[i].reason)
			out->rejected++;
	}
	out->count = i;
	release_tree(d, prev);
	why->reason = SP_REJ_NONE;
	why->field = NULL;
	return 0;
reject:
	release_tree(d, prev);
	return SP_EINVAL;
}

static enum sp_reject decode_device(const cJSON *obj, struct sp_device_info *dev,
				    struct sp_reject_info *why)
{
	enum sp_reject r;
	uint32_t has = 0;

	memset(dev, 0, sizeof(*dev));
	why->field = NULL;
	if (!cJSON_IsObject(obj))
		return SP_REJ_NOT_OBJECT;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "dev");
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
	why->field = "dev";
	if (id == NULL)
		return SP_REJ_MISSING_FIELD;
	if ((r = parse_id(id, dev->dev)))
		return r;
	why->field = "kind";
	if (kind == NULL)
		return SP_REJ_MISSING_FIELD;
	if (!cJSON_IsString(kind))
		return SP_REJ_BAD_TYPE;
	int k = sp_vocab_parse(&sp_vocab_dev_kind, kind->valuestring);
	if (k != SP_DEV_LIFT && k != SP_DEV_CHARGER)
		return SP_REJ_BAD_ENUM;
	dev->kind = (enum sp_dev_kind)k;

	if (dev->kind == SP_DEV_LIFT) {
		static const char *const skip[] = {"dev", "kind", "floors"};
		const cJSON *fl = cJSON_GetObjectItemCaseSensitive(obj, "floors");
		why->field = "floors";
		if (fl == NULL)
			return SP_REJ_MISSING_FIELD;
		if (!cJSON_IsArray(fl) || cJSON_GetArraySize(fl) != 2 ||
		    !cJSON_IsNumber(fl->child) || !cJSON_IsNumber(fl->child->next))
			return SP_REJ_BAD_TYPE;
		if ((r = check_int(fl->child->valuedouble, SP_FLOOR_MIN, SP_FLOOR_MAX)) ||
		    (r = check_int(fl->child->next->valuedouble, SP_FLOOR_MIN, SP_FLOOR_MAX)))
			return r;
		dev->floor_min = (int32_t)fl->child->valuedouble;
		dev->floor_max = (int32_t)fl->child->next->valuedouble;
		if (dev->floor_min >= dev->floor_max)
			return SP_REJ_OUT_OF_RANGE;
		return parse_table(obj, lift_info_fields, 2, dev, 0, &has, skip, 3, why);
	}
	static const char *const skip[] = {"dev", "kind"};
	return parse_table(obj, charger_info_fields, 2, dev, 0, &has, skip, 2, why);
}

int sp_decode_birth(struct sp_decoder *d, const char *payload, size_t len, int64_t now_ms,
		    struct sp_birth *out, struct sp_reject_info *why)
{
	struct sp_arena *prev = enter(d);
	cJSON *root = parse_payload(payload, len, why);
	int count = 0;

	memset(out, 0, sizeof(*out));
	if (root == NULL) {
		release_tree(d, prev);
		return SP_EINVAL;
	}
	if ((why->reason = check_version(root, why)) ||
	    (why->reason = get_ts(root, "ts", now_ms, &out->ts, why)))
		goto reject;
	const cJSON *fw = cJSON_GetObjectItemCaseSensitive(root, "fw");
	if (fw != NULL) {
		static const struct field fw_field = {"fw", F_TEXT, 0, 1, 0, 0, NULL, SP_TEXT_MAX};
		why->field = "fw";
		if ((why->reason = parse_field(&fw_field, fw, out->fw, now_ms)))
			goto reject;
	}
	const cJSON *list = get_list(root, "devices", SP_DEVICES_MAX, &count, why);
	if (list == NULL)
		goto reject;

	out->devices = d->devices;
	out->rejects = d->dev_rejects;
	size_t i = 0;
	for (const cJSON *e = list->child; e != NULL; e = e->next, i++) {
		d->dev_rejects[i].reason = decode_device(e, &d->devices[i], &d->dev_rejects[i]);
		/* the same device twice in one birth: keep the first */
		for (size_t j = 0; j < i && !d->dev_rejects[i].reason; j++) {
			if (!d->dev_rejects[j].reason &&
			    strcmp(d->devices[j].dev, d->devices[i].dev) == 0) {
				d->dev_rejects[i].reason = SP_REJ_DUPLICATE_FIELD;
				d->dev_rejects[i].field = "dev";
			}
		}
		if (d->dev_rejects[i].reason)
			out->rejected++;
	}
	out->count = i;
	release_tree(d, prev);
	why->reason = SP_REJ_NONE;
	why->field = NULL;
	return 0;
reject:
	release_tree(d, prev);
	return SP_EINVAL;
}

int sp_decode_state(const char *payload, size_t len, bool *online, int64_t *ts,
		    struct sp_reject_info *why)
{
	cJSON *root = parse_payload(payload, len, why);
	if (root == NULL)
		return SP_EINVAL;
	const cJSON *on = cJSON_GetObjectItemCaseSensitive(root, "online");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "ts");
	*ts = 0;
	why->field = "online";
	why->reason = on == NULL ? SP_REJ_MISSING_FIELD
		      : !cJSON_IsBool(on) ? SP_REJ_BAD_TYPE
					   : SP_REJ_NONE;
	if (!why->reason && t != NULL) {
		why->field = "ts";
		/* the state ts is informative only; a wrong one is ignored, not fatal */
		if (cJSON_IsNumber(t) && isfinite(t->valuedouble) && t->valuedouble >= SP_TS_MIN &&
		    t->valuedouble < (double)SP_SEQ_MAX)
			*ts = (int64_t)t->valuedouble;
	}
	if (!why->reason) {
		*online = cJSON_IsTrue(on);
		why->field = NULL;
	}
	cJSON_Delete(root);
	return why->reason ? SP_EINVAL : 0;
}

int sp_decode_ack(const char *payload, size_t len, int64_t *seq)
{
	struct sp_reject_info why;
	cJSON *root = parse_payload(payload, len, &why);
	if (root == NULL)
		return SP_EINVAL;
	enum sp_reject r = check_version(root, &why);
	if (!r)
		r = get_int(root, "seq", 0, (double)SP_SEQ_MAX, seq, &why);
	cJSON_Delete(root);
	return r ? SP_EINVAL : 0;
}

int sp_decode_cmd(const char *payload, size_t len, int64_t now_ms, struct sp_cmd *out,
		  struct sp_reject_info *why)
{
	static const struct field cmd_fields[] = {
		{"id", F_CODE, offsetof(struct sp_cmd, id), 0, 0, 0, NULL, SP_ID_MAX},
		{"ts", F_TS, offsetof(struct sp_cmd, ts), 0, 0, 0, NULL, 0},
		{"port", F_INT32, offsetof(struct sp_cmd, port), 0, 1, SP_PORT_MAX, NULL, 0},
		{"reason", F_ENUM, offsetof(struct sp_cmd, reason), 1, 0, 0, &sp_vocab_stop_reason, 0},
	};
	static const char *const skip[] = {"v", "cmd", "dev"};
	uint32_t has = 0;
	cJSON *root = parse_payload(payload, len, why);

	memset(out, 0, sizeof(*out));
	out->reason = -1;
	if (root == NULL)
		return SP_EINVAL;
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(root, "cmd");
	if ((why->reason = check_version(root, why)))
		goto reject;
	why->field = "cmd";
	why->reason = cmd == NULL ? SP_REJ_MISSING_FIELD
		      : !cJSON_IsString(cmd) ? SP_REJ_BAD_TYPE
		      : strcmp(cmd->valuestring, "port_off") != 0 ? SP_REJ_BAD_ENUM
								   : SP_REJ_NONE;
	if (why->reason)
		goto reject;
	why->field = "dev";
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(root, "dev");
	if ((why->reason = dev == NULL ? SP_REJ_MISSING_FIELD : parse_id(dev, out->dev)))
		goto reject;
	if ((why->reason = parse_table(root, cmd_fields, 4, out, now_ms, &has, skip, 3, why)))
		goto reject;
	cJSON_Delete(root);
	return 0;
reject:
	cJSON_Delete(root);
	return SP_EINVAL;
}

/* ---------------------------------------------------------------- encoders */

static int put_key(struct sp_buf *b, const char *name, bool first)
{
	int rc;
	if (!first && (rc = sp_buf_putc(b, ',')))
		return rc;
	if ((rc = sp_buf_json_str(b, name, strlen(name))))
		return rc;
	return sp_buf_putc(b, ':');
}

static int put_field(struct sp_buf *b, const struct field *f, const void *base)
{
	const char *src = (const char *)base + f->off;
	int rc = put_key(b, f->name, false);
	if (rc)
		return rc;
	switch (f->type) {
	case F_BOOL: return sp_buf_puts(b, *(const bool *)src ? "true" : "false");
	case F_INT32: return sp_buf_json_int(b, *(const int32_t *)src);
	case F_INT64:
	case F_TS: return sp_buf_json_int(b, *(const int64_t *)src);
	case F_NUM: return sp_buf_json_num(b, *(const double *)src);
	case F_ENUM: {
		const char *name = sp_vocab_name(f->vocab, *(const int *)src);
		return sp_buf_json_str(b, name, strlen(name));
	}
	case F_CODE:
	case F_TEXT: return sp_buf_json_str(b, src, strlen(src));
	}
	return SP_EINVAL;
}

int sp_encode_record(struct sp_buf *b, const struct sp_record *r)
{
	const struct kind_table *kt = &kind_tables[r->kind];
	const char *kind = sp_rec_kind_name(r->kind);
	int rc;

	if ((rc = sp_buf_puts(b, "{\"t\":")) || (rc = sp_buf_json_str(b, kind, strlen(kind))) ||
	    (rc = sp_buf_puts(b, ",\"dev\":")) ||
	    (rc = sp_buf_json_str(b, r->dev, strlen(r->dev))) || (rc = sp_buf_puts(b, ",\"ts\":")) ||
	    (rc = sp_buf_json_int(b, r->ts)))
		return rc;
	for (size_t i = 0; i < kt->count; i++) {
		const struct field *f = &kt->fields[i];
		if (f->has && !(r->has & f->has))
			continue;
		if ((rc = put_field(b, f, r)))
			return rc;
	}
	return sp_buf_putc(b, '}');
}

int sp_encode_data(struct sp_buf *b, int64_t seq, int64_t ts, const struct sp_record *recs,
		   size_t n)
{
	int rc;
	if ((rc = sp_buf_puts(b, "{\"v\":1,\"seq\":")) || (rc = sp_buf_json_int(b, seq)) ||
	    (rc = sp_buf_puts(b, ",\"ts\":")) || (rc = sp_buf_json_int(b, ts)) ||
	    (rc = sp_buf_puts(b, ",\"records\":[")))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (i && (rc = sp_buf_putc(b, ',')))
			return rc;
		if ((rc = sp_encode_record(b, &recs[i])))
			return rc;
	}
	return sp_buf_puts(b, "]}");
}

int sp_encode_device_info(struct sp_buf *b, const struct sp_device_info *dv)
{
	const char *kind = sp_dev_kind_name(dv->kind);
	int rc;
	if ((rc = sp_buf_puts(b, "{\"dev\":")) || (rc = sp_buf_json_str(b, dv->dev, strlen(dv->dev))) ||
	    (rc = sp_buf_puts(b, ",\"kind\":")) || (rc = sp_buf_json_str(b, kind, strlen(kind))))
		return rc;
	if (dv->kind == SP_DEV_LIFT) {
		if ((rc = sp_buf_printf(b, ",\"floors\":[%d,%d]", (int)dv->floor_min,
					(int)dv->floor_max)))
			return rc;
		for (size_t i = 0; i < 2; i++)
			if ((rc = put_field(b, &lift_info_fields[i], dv)))
				return rc;
	} else if (dv->kind == SP_DEV_CHARGER) {
		for (size_t i = 0; i < 2; i++)
			if ((rc = put_field(b, &charger_info_fields[i], dv)))
				return rc;
	}
	return sp_buf_putc(b, '}');
}

int sp_encode_birth(struct sp_buf *b, int64_t ts, const char *fw,
		    const struct sp_device_info *devs, size_t n)
{
	int rc;
	if ((rc = sp_buf_puts(b, "{\"v\":1,\"ts\":")) || (rc = sp_buf_json_int(b, ts)) ||
	    (rc = sp_buf_puts(b, ",\"fw\":")) || (rc = sp_buf_json_str(b, fw, strlen(fw))) ||
	    (rc = sp_buf_puts(b, ",\"devices\":[")))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (i && (rc = sp_buf_putc(b, ',')))
			return rc;
		if ((rc = sp_encode_device_info(b, &devs[i])))
			return rc;
	}
	return sp_buf_puts(b, "]}");
}

int sp_encode_state(struct sp_buf *b, bool online, int64_t ts)
{
	int rc = sp_buf_puts(b, online ? "{\"online\":true" : "{\"online\":false");
	if (!rc && ts > 0 && !(rc = sp_buf_puts(b, ",\"ts\":")))
		rc = sp_buf_json_int(b, ts);
	return rc ? rc : sp_buf_putc(b, '}');
}

int sp_encode_ack(struct sp_buf *b, int64_t seq, int64_t ts)
{
	int rc;
	if ((rc = sp_buf_puts(b, "{\"v\":1,\"seq\":")) || (rc = sp_buf_json_int(b, seq)) ||
	    (rc = sp_buf_puts(b, ",\"ts\":")) || (rc = sp_buf_json_int(b, ts)))
		return rc;
	return sp_buf_putc(b, '}');
}

int sp_encode_cmd(struct sp_buf *b, const struct sp_cmd *c)
{
	int rc;
	if ((rc = sp_buf_puts(b, "{\"v\":1,\"id\":")) || (rc = sp_buf_json_str(b, c->id, strlen(c->id))) ||
	    (rc = sp_buf_puts(b, ",\"ts\":")) || (rc = sp_buf_json_int(b, c->ts)) ||
	    (rc = sp_buf_puts(b, ",\"cmd\":\"port_off\",\"dev\":")) ||
	    (rc = sp_buf_json_str(b, c->dev, strlen(c->dev))) || (rc = sp_buf_puts(b, ",\"port\":")) ||
	    (rc = sp_buf_json_int(b, c->port)))
		return rc;
	if (c->reason >= 0) {
		const char *r = sp_stop_reason_name((enum sp_stop_reason)c->reason);
		if ((rc = sp_buf_puts(b, ",\"reason\":")) || (rc = sp_buf_json_str(b, r, strlen(r))))
			return rc;
	}
	return sp_buf_putc(b, '}');
}
