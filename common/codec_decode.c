/*
 * codec_decode.c - CONTRACT §3 payloads in: decoding and validation with cJSON.
 *
 * This is the only file that includes cJSON. Records are checked against
 * the field tables of codec_fields.c (type and range, required fields,
 * duplicate keys), in a single pass over each object's members.
 *
 * Why cJSON: it parses a 20-record message about 3.5x faster than jansson
 * (measured, docs/architecture.md) and is what Mosquitto itself uses.
 * What it does not check we check here: UTF-8 of kept strings, integer-ness
 * of numbers, duplicate keys, trailing bytes, and strings that decode with a
 * NUL byte (below, "Strings with a NUL"). Its trees are built in the
 * decoder's arena (sitepulse/arena.h) and dropped with one reset.
 */
#include "codec_fields.h"

#include "sitepulse/arena.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- decoder object */

struct sp_decoder {
	struct sp_arena *arena;   /* the cJSON tree of the message being decoded */
	struct sp_record records[SP_RECORDS_MAX];
	struct sp_reject_info rejects[SP_RECORDS_MAX];
	struct sp_device_info devices[SP_DEVICES_MAX];
	struct sp_reject_info dev_rejects[SP_DEVICES_MAX];
	const struct sp_device_info *by_dev[SP_DEVICES_MAX]; /* scratch: duplicate check */
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

size_t sp_utf8_len(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char c;
	size_t len;
	uint32_t cp;

	if (n == 0)
		return 0;
	c = p[0];
	if (c < 0x80)
		return 1;
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
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool sp_utf8_valid(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t len = sp_utf8_len(s + i, n - i);
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}

/* ---------------------------------------------------------------- strings with a NUL */

/*
 * cJSON decodes "\u0000" to a NUL byte (and copies a raw NUL byte inside
 * quotes as it is) but keeps no length: every C string function then reads
 * "lift-9\u0000../../x" as "lift-9", "closed\u0000?" as "closed", a key
 * "dev\u0000x" as "dev". So after a parse that may hold such a string (a
 * memchr and a memmem over the payload say; almost never), the raw text's
 * string tokens are walked beside the tree, which holds them in the same
 * (document) order, and the nodes whose key or value has a NUL get a flag
 * bit above cJSON's own type bits (cJSON tests its types with & 0xFF and
 * its flags at 256 and 512). Every place that reads a string then refuses a
 * flagged one: SP_REJ_EMBEDDED_NUL for the record (or, at a message's top
 * level, the message). Values of unknown fields are never read and stay
 * ignored.
 */
#define NUL_IN_KEY (1 << 16)
#define NUL_IN_VALUE (1 << 17)

/*
 * Moves *p past the next string token of the JSON text [*p, end) and says in
 * *nul whether it decodes with a NUL byte. False when none is left. Outside
 * strings JSON has no '"'; inside, a backslash always escapes the byte after
 * it, so \" does not end the string and \\u0000 is no NUL.
 */
static bool next_string(const char **p, const char *end, bool *nul)
{
	const char *s = memchr(*p, '"', (size_t)(end - *p));
	if (s == NULL)
		return false;
	*nul = false;
	for (s++; s < end && *s != '"'; s++) {
		if (*s == '\0') {
			*nul = true;
		} else if (*s == '\\') {
			if (end - s >= 6 && memcmp(s + 1, "u0000", 5) == 0)
				*nul = true;
			s++;
		}
	}
	*p = s < end ? s + 1 : end;
	return true;
}

bool sp_json_has_nul(const char *json, size_t len)
{
	const char *p = json, *end = json + len;
	bool nul;
	while (next_string(&p, end, &nul))
		if (nul)
			return true;
	return false;
}

/* Flags the nodes from `node` on (and below) against the tokens at *p. False if they disagree. */
static bool mark_nuls(cJSON *node, const char **p, const char *end)
{
	bool nul;
	for (; node != NULL; node = node->next) {
		if (node->string != NULL) {
			if (!next_string(p, end, &nul))
				return false;
			node->type |= nul ? NUL_IN_KEY : 0;
		}
		if (cJSON_IsString(node)) {
			if (!next_string(p, end, &nul))
				return false;
			node->type |= nul ? NUL_IN_VALUE : 0;
		}
		if (node->child != NULL && !mark_nuls(node->child, p, end))
			return false;
	}
	return true;
}

/* Flags every string of the tree, key and value: refused wherever read. */
static void mark_all(cJSON *node)
{
	for (; node != NULL; node = node->next) {
		node->type |= NUL_IN_KEY | (cJSON_IsString(node) ? NUL_IN_VALUE : 0);
		mark_all(node->child);
	}
}

/*
 * Whether the text may hold a "\u0000" escape: a backslash followed by
 * u0000 (one escaped backslash before it makes a false alarm, which
 * mark_nuls then tells apart). A memchr per backslash, and payloads rarely
 * hold one: memmem cost the parser ~480 instructions per record of a
 * 20-record message.
 */
static bool may_hold_nul_escape(const char *s, const char *end)
{
	while ((s = memchr(s, '\\', (size_t)(end - s))) != NULL) {
		if (end - s >= 6 && memcmp(s + 1, "u0000", 5) == 0)
			return true;
		s++;
	}
	return false;
}

/* Flags the strings of root (parsed from [text, end)) that decode with a NUL. */
static void flag_nul_strings(cJSON *root, const char *text, const char *end)
{
	size_t len = (size_t)(end - text);
	if (memchr(text, '\0', len) == NULL && !may_hold_nul_escape(text, end))
		return;
	const char *p = text;
	bool nul;
	if (mark_nuls(root, &p, end) && !next_string(&p, end, &nul))
		return;
	/*
	 * The tokens and the tree disagree: cJSON read the text otherwise than
	 * next_string does. Cannot happen with cJSON 1.7 (a fuzz build stops
	 * here, so the fuzzer reports it); refusing every string is the safe
	 * side.
	 */
#ifdef SP_FUZZING
	abort();
#endif
	mark_all(root);
}

static bool nul_key(const cJSON *m)
{
	return (m->type & NUL_IN_KEY) != 0;
}

/* Whether v is a string the decoder may read: SP_REJ_NONE, else why not. */
static enum sp_reject string_check(const cJSON *v)
{
	if (!cJSON_IsString(v))
		return SP_REJ_BAD_TYPE;
	return (v->type & NUL_IN_VALUE) ? SP_REJ_EMBEDDED_NUL : SP_REJ_NONE;
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
		if ((r = string_check(v)))
			return r;
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
		if ((r = string_check(v)))
			return r;
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

/*
 * The table entry named `name`. Conforming agents send the fields in table
 * order (the canonical form), so the entry after the previous match, *next,
 * is tried first: one comparison per member instead of a search.
 */
static const struct field *find_field(const struct field *fields, size_t count, const char *name,
				      size_t *next)
{
	size_t i = *next;
	if (i < count && fields[i].name[0] == name[0] && strcmp(fields[i].name, name) == 0) {
		*next = i + 1;
		return &fields[i];
	}
	/* the first byte rules out most names without a call */
	for (i = 0; i < count; i++) {
		if (fields[i].name[0] == name[0] && strcmp(fields[i].name, name) == 0) {
			*next = i + 1;
			return &fields[i];
		}
	}
	return NULL;
}

/* Copies an identifier value; returns the reject reason. */
static enum sp_reject parse_id(const cJSON *v, char *dst)
{
	enum sp_reject r = string_check(v);
	if (r)
		return r;
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
	size_t next = 0;
	enum sp_reject r;

	for (const cJSON *m = obj->child; m != NULL; m = m->next) {
		if (nul_key(m)) {
			/* it would read as the key before its NUL: refused, not ignored */
			why->field = NULL;
			return SP_REJ_EMBEDDED_NUL;
		}
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
		const struct field *f = find_field(fields, count, m->string, &next);
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
	if ((r = string_check(t)))
		return r;
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

	const struct kind_table *kt = &codec_kind_tables[kind];
	if ((r = parse_table(obj, kt->fields, kt->count, rec, now_ms, &rec->has, common, 3, why)))
		return r;
	if (rec->kind == SP_REC_SESSION && rec->u.session.start > rec->u.session.end) {
		why->field = "start";
		return SP_REJ_OUT_OF_RANGE;
	}
	return SP_REJ_NONE;
}

/* Parses a whole payload of at most max bytes into a cJSON tree; NULL with *why on failure. */
static cJSON *parse_payload_max(const char *payload, size_t len, size_t max,
				struct sp_reject_info *why)
{
	const char *end = NULL;
	cJSON *root;

	why->field = NULL;
	if (len > max) {
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
	flag_nul_strings(root, payload, end);
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

/* Parses a whole payload (at most SP_PAYLOAD_MAX) into a cJSON tree; NULL with *why on failure. */
static cJSON *parse_payload(const char *payload, size_t len, struct sp_reject_info *why)
{
	return parse_payload_max(payload, len, SP_PAYLOAD_MAX, why);
}

/*
 * Rejects a payload that names one of its top-level members twice
 * ({"seq":1,"seq":2}): parsers disagree on which one counts, so the message
 * means different things to different readers. One pass over the members.
 */
static enum sp_reject unique_members(const cJSON *root, const char *const *names, size_t n,
				     struct sp_reject_info *why)
{
	uint32_t seen = 0;
	for (const cJSON *m = root->child; m != NULL; m = m->next) {
		if (nul_key(m)) {
			why->field = NULL;
			return SP_REJ_EMBEDDED_NUL; /* "seq\u0000" would read as "seq" */
		}
		for (size_t i = 0; i < n; i++) {
			if (m->string[0] != names[i][0] || strcmp(m->string, names[i]) != 0)
				continue;
			if (seen & (1u << i)) {
				why->field = names[i];
				return SP_REJ_DUPLICATE_FIELD;
			}
			seen |= 1u << i;
			break;
		}
	}
	return SP_REJ_NONE;
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
static const cJSON *get_list(const cJSON *root, const char *name, int max,
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
	why->field = NULL;
	return a;
}

/* ---------------------------------------------------------------- decoders */

int sp_decode_data(struct sp_decoder *d, const char *payload, size_t len, int64_t now_ms,
		   struct sp_data_msg *out, struct sp_reject_info *why)
{
	static const char *const top[] = {"v", "seq", "ts", "records"};
	struct sp_arena *prev = enter(d);
	cJSON *root;

	memset(out, 0, sizeof(*out));
	if (len > SP_PAYLOAD_MAX) {
		/*
		 * Refused whatever it says, but read for its seq (up to
		 * SP_PAYLOAD_PEEK_MAX): a rejected message counts as handled for the
		 * ack (CONTRACT §3), and one whose seq is unknown held its agent's
		 * ack for a whole gap window while the agent sent it again and again.
		 */
		struct sp_reject_info w;
		int64_t seq = 0;
		root = parse_payload_max(payload, len, SP_PAYLOAD_PEEK_MAX, &w);
		if (root != NULL && unique_members(root, top, 4, &w) == SP_REJ_NONE &&
		    get_int(root, "seq", 1, (double)SP_SEQ_MAX, &seq, &w) == SP_REJ_NONE)
			out->seq = seq;
		release_tree(d, prev);
		why->reason = SP_REJ_TOO_LARGE;
		why->field = NULL;
		return SP_EINVAL;
	}
	root = parse_payload(payload, len, why);
	if (root == NULL) {
		release_tree(d, prev);
		return SP_EINVAL;
	}
	/*
	 * seq first: even a rejected message is "handled" for the ack when its
	 * seq is known. Not when seq itself is ambiguous: then the gap window
	 * decides, as for any unreadable message.
	 */
	if ((why->reason = unique_members(root, top, 4, why)) ||
	    (why->reason = get_int(root, "seq", 1, (double)SP_SEQ_MAX, &out->seq, why)) ||
	    (why->reason = check_version(root, why)) ||
	    (why->reason = get_ts(root, "ts", now_ms, &out->ts, why)))
		goto reject;
	const cJSON *list = get_list(root, "records", SP_RECORDS_MAX, why);
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

int sp_decode_record(struct sp_decoder *d, const char *json, size_t len, int64_t now_ms,
		     struct sp_record *out, struct sp_reject_info *why)
{
	struct sp_arena *prev = enter(d);
	cJSON *root = parse_payload(json, len, why);
	if (root == NULL) {
		release_tree(d, prev);
		return SP_EINVAL;
	}
	why->field = NULL;
	why->reason = decode_record(root, now_ms, out, why);
	release_tree(d, prev);
	return why->reason == SP_REJ_NONE ? 0 : SP_EINVAL;
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
	if ((r = string_check(kind)))
		return r;
	int k = sp_vocab_parse(&sp_vocab_dev_kind, kind->valuestring);
	if (k != SP_DEV_LIFT && k != SP_DEV_CHARGER)
		return SP_REJ_BAD_ENUM;
	dev->kind = (enum sp_dev_kind)k;

	if (dev->kind == SP_DEV_LIFT) {
		static const char *const skip[] = {"dev", "kind", "floors"};
		const cJSON *fl = cJSON_GetObjectItemCaseSensitive(obj, "floors");
		why->field = "floors";
		if (fl == NULL) /* not given: floor_min = floor_max = 0, which no birth can say */
			return parse_table(obj, codec_lift_info_fields, CODEC_INFO_FIELDS, dev, 0, &has,
					   skip, 3, why);
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
		return parse_table(obj, codec_lift_info_fields, CODEC_INFO_FIELDS, dev, 0, &has, skip, 3, why);
	}
	static const char *const skip[] = {"dev", "kind"};
	return parse_table(obj, codec_charger_info_fields, CODEC_INFO_FIELDS, dev, 0, &has, skip, 2, why);
}

/* Orders device entries by name, then by their place in the birth (qsort). */
static int by_dev_then_position(const void *pa, const void *pb)
{
	const struct sp_device_info *a = *(const struct sp_device_info *const *)pa;
	const struct sp_device_info *b = *(const struct sp_device_info *const *)pb;
	int c = strcmp(a->dev, b->dev);
	return c ? c : (a > b) - (a < b);
}
int sp_decode_birth(struct sp_decoder *d, const char *payload, size_t len, int64_t now_ms,
		    struct sp_birth *out, struct sp_reject_info *why)
{
	struct sp_arena *prev = enter(d);
	cJSON *root = parse_payload(payload, len, why);

	memset(out, 0, sizeof(*out));
	if (root == NULL) {
		release_tree(d, prev);
		return SP_EINVAL;
	}
	static const char *const top[] = {"v", "ts", "fw", "devices"};
	if ((why->reason = unique_members(root, top, 4, why)) ||
	    (why->reason = check_version(root, why)) ||
	    (why->reason = get_ts(root, "ts", now_ms, &out->ts, why)))
		goto reject;
	const cJSON *fw = cJSON_GetObjectItemCaseSensitive(root, "fw");
	if (fw != NULL) {
		static const struct field fw_field = {"fw", F_TEXT, 0, 1, 0, 0, NULL, SP_TEXT_MAX};
		why->field = "fw";
		if ((why->reason = parse_field(&fw_field, fw, out->fw, now_ms)))
			goto reject;
	}
	const cJSON *list = get_list(root, "devices", SP_DEVICES_MAX, why);
	if (list == NULL)
		goto reject;

	out->devices = d->devices;
	out->rejects = d->dev_rejects;
	size_t i = 0, valid = 0;
	for (const cJSON *e = list->child; e != NULL; e = e->next, i++) {
		d->dev_rejects[i].reason = decode_device(e, &d->devices[i], &d->dev_rejects[i]);
		if (!d->dev_rejects[i].reason)
			d->by_dev[valid++] = &d->devices[i];
	}
	/*
	 * The same device twice in one birth: keep the first. Sorted by name,
	 * then position, duplicates are neighbours: n log n, where comparing
	 * every pair cost 131,000 strcmp for a full birth of 512 devices.
	 */
	qsort(d->by_dev, valid, sizeof(d->by_dev[0]), by_dev_then_position);
	for (size_t k = 1; k < valid; k++) {
		if (strcmp(d->by_dev[k]->dev, d->by_dev[k - 1]->dev) == 0) {
			size_t dup = (size_t)(d->by_dev[k] - d->devices);
			d->dev_rejects[dup].reason = SP_REJ_DUPLICATE_FIELD;
			d->dev_rejects[dup].field = "dev";
		}
	}
	for (size_t k = 0; k < i; k++)
		if (d->dev_rejects[k].reason)
			out->rejected++;
	out->count = i;
	release_tree(d, prev);
	why->reason = SP_REJ_NONE;
	why->field = NULL;
	return 0;
reject:
	release_tree(d, prev);
	return SP_EINVAL;
}

/* An informative ts member (state, ack): its value, or 0 when absent or implausible. */
static int64_t informative_ts(const cJSON *root)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "ts");
	if (t != NULL && cJSON_IsNumber(t) && isfinite(t->valuedouble) &&
	    t->valuedouble >= SP_TS_MIN && t->valuedouble < (double)SP_SEQ_MAX)
		return (int64_t)t->valuedouble;
	return 0;
}

int sp_decode_state(const char *payload, size_t len, bool *online, int64_t *ts,
		    struct sp_reject_info *why)
{
	cJSON *root = parse_payload(payload, len, why);
	if (root == NULL)
		return SP_EINVAL;
	static const char *const top[] = {"online", "ts"};
	const cJSON *on = cJSON_GetObjectItemCaseSensitive(root, "online");
	*ts = 0;
	why->field = "online";
	enum sp_reject dup = unique_members(root, top, 2, why);
	why->reason = dup ? dup
		      : on == NULL ? SP_REJ_MISSING_FIELD
		      : !cJSON_IsBool(on) ? SP_REJ_BAD_TYPE
					   : SP_REJ_NONE;
	if (!why->reason) {
		/* the state ts is informative only; a wrong one is ignored, not fatal */
		*ts = informative_ts(root);
		*online = cJSON_IsTrue(on);
		why->field = NULL;
	}
	cJSON_Delete(root);
	return why->reason ? SP_EINVAL : 0;
}

int sp_decode_ack(const char *payload, size_t len, int64_t *seq, int64_t *ts)
{
	struct sp_reject_info why;
	cJSON *root = parse_payload(payload, len, &why);
	if (root == NULL)
		return SP_EINVAL;
	static const char *const top[] = {"v", "seq", "ts"};
	enum sp_reject r = unique_members(root, top, 3, &why);
	if (!r)
		r = check_version(root, &why);
	if (!r)
		r = get_int(root, "seq", 0, (double)SP_SEQ_MAX, seq, &why);
	if (!r && ts != NULL)
		*ts = informative_ts(root);
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
	};
	/* reason is read below, not by the table: any text is taken */
	static const char *const skip[] = {"v", "cmd", "dev", "reason"};
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
	why->reason = cmd == NULL ? SP_REJ_MISSING_FIELD : string_check(cmd);
	if (why->reason == SP_REJ_NONE) {
		int k = sp_vocab_parse(&sp_vocab_cmd, cmd->valuestring);
		if (k < 0)
			why->reason = SP_REJ_BAD_ENUM;
		else
			out->cmd = (enum sp_cmd_kind)k;
	}
	if (why->reason)
		goto reject;
	why->field = "dev";
	const cJSON *dev = cJSON_GetObjectItemCaseSensitive(root, "dev");
	if ((why->reason = dev == NULL ? SP_REJ_MISSING_FIELD : parse_id(dev, out->dev)))
		goto reject;
	if ((why->reason = parse_table(root, cmd_fields, 3, out, now_ms, &has, skip, 4, why)))
		goto reject;
	/*
	 * CONTRACT §3.3 gives the reason no vocabulary: it only says why the port is
	 * turned off (the session ends with reason "remote" whatever it is), or, for
	 * a port_on, why it is back (e.g. "repaired": no stop reason). A text
	 * outside the stop reasons must not cost the command: a port_off is the safe
	 * direction, and refusing it left an overheating port charging. Only a
	 * reason that is not text at all (or hides a NUL) refuses it.
	 */
	const cJSON *reason = cJSON_GetObjectItemCaseSensitive(root, "reason");
	if (reason != NULL) {
		why->field = "reason";
		if ((why->reason = string_check(reason)))
			goto reject;
		out->reason = sp_vocab_parse(&sp_vocab_stop_reason, reason->valuestring);
	}
	why->field = NULL;
	cJSON_Delete(root);
	return 0;
reject:
	cJSON_Delete(root);
	return SP_EINVAL;
}
