/*
 * codec_encode.c - CONTRACT §3 payloads out: records, data, birth, state, ack
 * and cmd messages, written field by field from the same tables the decoder
 * checks against (codec_fields.c). The canonical form of a record is what
 * this file writes: conforming agents send it, and the collector stores it.
 */
#include "codec_fields.h"

#include "sitepulse/codec.h"
#include "sitepulse/error.h"

#include <stdbool.h>
#include <string.h>

/*
 * One field, `,"name":value`, written into room reserved for all of it at
 * once: encoding sits on the collector's hot path (every stored record is
 * written in canonical form, docs/performance.md item 25), and one check
 * per field instead of one per comma and quote halves its cost. Field
 * names come from our own tables and are plain words that need no escaping.
 * Near a buffer's limit a field is refused by its bound (a number's 32
 * bytes, six per byte of text), not by its actual size: the agent then
 * splits a batch that would just have fit in 256 KB; nothing else changes.
 */
/*
 * The bound of one field's value: what put_field reserves for it, and what
 * sp_record_tail_max adds up (with text_len at the field's longest). 0 for
 * a type the encoder does not know.
 */
static size_t value_max(const struct field *f, size_t text_len)
{
	switch (f->type) {
	case F_BOOL: return 5;
	case F_INT32:
	case F_INT64:
	case F_TS: return SP_JSON_INT_MAX;
	case F_NUM: return SP_JSON_NUM_MAX;
	case F_ENUM:
	case F_CODE:
	case F_TEXT: return SP_JSON_STR_MAX(text_len);
	}
	return 0;
}

static int put_field(struct sp_buf *b, const struct field *f, const void *base)
{
	const char *src = (const char *)base + f->off;
	const char *text = NULL;
	size_t text_len = 0;

	if (f->type == F_ENUM || f->type == F_CODE || f->type == F_TEXT) {
		text = f->type == F_ENUM ? sp_vocab_name(f->vocab, *(const int *)src) : src;
		text_len = strlen(text);
	}
	size_t vmax = value_max(f, text_len);
	if (vmax == 0)
		return SP_EINVAL;
	size_t name_len = strlen(f->name);
	int rc = sp_buf_reserve(b, name_len + 4 + vmax);
	if (rc)
		return rc;
	char *o = b->data + b->len;
	*o++ = ',';
	*o++ = '"';
	memcpy(o, f->name, name_len);
	o += name_len;
	*o++ = '"';
	*o++ = ':';
	switch (f->type) {
	case F_BOOL:
		if (*(const bool *)src) {
			memcpy(o, "true", 4);
			o += 4;
		} else {
			memcpy(o, "false", 5);
			o += 5;
		}
		break;
	case F_INT32: o = sp_json_write_int(o, *(const int32_t *)src); break;
	case F_INT64:
	case F_TS: o = sp_json_write_int(o, *(const int64_t *)src); break;
	case F_NUM: o = sp_json_write_num(o, *(const double *)src); break;
	default: o = sp_json_write_str(o, text, text_len); break;
	}
	sp_buf_end_at(b, o);
	return 0;
}

int sp_encode_record_head(struct sp_buf *b, enum sp_rec_kind kind, const char *dev, int64_t ts)
{
	if ((unsigned)kind >= SP_REC_KIND_COUNT || dev == NULL)
		return SP_EINVAL;
	const char *kname = sp_rec_kind_name(kind);
	size_t kind_len = strlen(kname), dev_len = strlen(dev);
	int rc;

	/* {"t":KIND,"dev":DEV,"ts":TS */
	static const char t_key[] = "{\"t\":", dev_key[] = ",\"dev\":", ts_key[] = ",\"ts\":";
	if ((rc = sp_buf_reserve(b, sizeof(t_key) + sizeof(dev_key) + sizeof(ts_key) +
					    SP_JSON_STR_MAX(kind_len) + SP_JSON_STR_MAX(dev_len) +
					    SP_JSON_INT_MAX)))
		return rc;
	char *o = b->data + b->len;
	memcpy(o, t_key, sizeof(t_key) - 1);
	o = sp_json_write_str(o + sizeof(t_key) - 1, kname, kind_len);
	memcpy(o, dev_key, sizeof(dev_key) - 1);
	o = sp_json_write_str(o + sizeof(dev_key) - 1, dev, dev_len);
	memcpy(o, ts_key, sizeof(ts_key) - 1);
	o = sp_json_write_int(o + sizeof(ts_key) - 1, ts);
	sp_buf_end_at(b, o);
	return 0;
}

int sp_encode_record_tail(struct sp_buf *b, const struct sp_record *r)
{
	if ((unsigned)r->kind >= SP_REC_KIND_COUNT)
		return SP_EINVAL;
	const struct kind_table *kt = &codec_kind_tables[r->kind];
	int rc;
	for (size_t i = 0; i < kt->count; i++) {
		const struct field *f = &kt->fields[i];
		if (f->has && !(r->has & f->has))
			continue;
		if ((rc = put_field(b, f, r)))
			return rc;
	}
	return sp_buf_putc(b, '}');
}

size_t sp_record_tail_max(enum sp_rec_kind k)
{
	if ((unsigned)k >= SP_REC_KIND_COUNT)
		return 0;
	const struct kind_table *kt = &codec_kind_tables[k];
	size_t n = 1; /* the closing brace */
	for (size_t i = 0; i < kt->count; i++) {
		const struct field *f = &kt->fields[i];
		size_t text_max = f->maxlen;
		if (f->type == F_ENUM)
			for (int v = 0; v < f->vocab->count; v++)
				if (strlen(f->vocab->names[v]) > text_max)
					text_max = strlen(f->vocab->names[v]);
		/* ,"name":value */
		n += strlen(f->name) + 4 + value_max(f, text_max);
	}
	return n;
}

int sp_encode_record(struct sp_buf *b, const struct sp_record *r)
{
	int rc = sp_encode_record_head(b, r->kind, r->dev, r->ts);
	return rc ? rc : sp_encode_record_tail(b, r);
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

/* A birth entry's field; an optional one whose value is 0 (not given) is left out. */
static int put_info_field(struct sp_buf *b, const struct field *f, const struct sp_device_info *dv)
{
	const char *src = (const char *)dv + f->off;
	if (f->has && ((f->type == F_NUM && *(const double *)src == 0) ||
		       (f->type == F_INT32 && *(const int32_t *)src == 0)))
		return 0;
	return put_field(b, f, dv);
}

int sp_encode_device_info(struct sp_buf *b, const struct sp_device_info *dv)
{
	const char *kind = sp_dev_kind_name(dv->kind);
	int rc;
	if ((rc = sp_buf_puts(b, "{\"dev\":")) || (rc = sp_buf_json_str(b, dv->dev, strlen(dv->dev))) ||
	    (rc = sp_buf_puts(b, ",\"kind\":")) || (rc = sp_buf_json_str(b, kind, strlen(kind))))
		return rc;
	/* what the birth left out stays out: floors min < max, optional fields 0 when not given */
	if (dv->kind == SP_DEV_LIFT) {
		if (dv->floor_min < dv->floor_max &&
		    (rc = sp_buf_printf(b, ",\"floors\":[%d,%d]", (int)dv->floor_min,
					(int)dv->floor_max)))
			return rc;
		for (size_t i = 0; i < CODEC_INFO_FIELDS; i++)
			if ((rc = put_info_field(b, &codec_lift_info_fields[i], dv)))
				return rc;
	} else if (dv->kind == SP_DEV_CHARGER) {
		for (size_t i = 0; i < CODEC_INFO_FIELDS; i++)
			if ((rc = put_info_field(b, &codec_charger_info_fields[i], dv)))
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

static const char *const cmd_names[SP_CMD_KIND_COUNT] = {"port_off", "port_on"};
const struct sp_vocab sp_vocab_cmd = {cmd_names, SP_CMD_KIND_COUNT};

const char *sp_cmd_name(enum sp_cmd_kind k)
{
	return sp_vocab_name(&sp_vocab_cmd, (int)k);
}

int sp_encode_cmd(struct sp_buf *b, const struct sp_cmd *c)
{
	int rc;
	if ((rc = sp_buf_puts(b, "{\"v\":1,\"id\":")) || (rc = sp_buf_json_str(b, c->id, strlen(c->id))) ||
	    (rc = sp_buf_puts(b, ",\"ts\":")) || (rc = sp_buf_json_int(b, c->ts)) ||
	    (rc = sp_buf_puts(b, ",\"cmd\":\"")) || (rc = sp_buf_puts(b, sp_cmd_name(c->cmd))) ||
	    (rc = sp_buf_puts(b, "\",\"dev\":")) ||
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
