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
	const struct kind_table *kt = &codec_kind_tables[r->kind];
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
		for (size_t i = 0; i < CODEC_INFO_FIELDS; i++)
			if ((rc = put_field(b, &codec_lift_info_fields[i], dv)))
				return rc;
	} else if (dv->kind == SP_DEV_CHARGER) {
		for (size_t i = 0; i < CODEC_INFO_FIELDS; i++)
			if ((rc = put_field(b, &codec_charger_info_fields[i], dv)))
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
