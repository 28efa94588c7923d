/*
 * fuzz_codec.c - libFuzzer target for the payload decoders and validators
 * (data, birth, state, ack, cmd). Every accepted record must encode and
 * decode back to the same record (the canonical form the collector stores),
 * and must not owe its acceptance to a NUL inside one of its strings
 * (check_nul_faithful).
 */
#include "sitepulse/buf.h"
#include "sitepulse/codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1764320000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sp_decoder *dec, *dec2, *dec3;

static void check_round_trip(const struct sp_record *r)
{
	struct sp_buf b = SP_BUF_INIT(SP_PAYLOAD_MAX);
	struct sp_data_msg m;
	struct sp_reject_info why;
	if (sp_encode_data(&b, 1, NOW, r, 1) == 0) {
		if (sp_decode_data(dec2, b.data, b.len, NOW, &m, &why) != 0 || m.count != 1 ||
		    m.rejected != 0)
			abort(); /* we wrote something we do not accept */
		struct sp_buf again = SP_BUF_INIT(SP_PAYLOAD_MAX);
		struct sp_buf first = SP_BUF_INIT(SP_PAYLOAD_MAX);
		sp_encode_record(&first, r);
		sp_encode_record(&again, &m.records[0]);
		if (first.len != again.len || memcmp(first.data, again.data, first.len) != 0)
			abort(); /* the canonical form is not stable */
		/* what the store keeps (the tail) and writes again (the head) make the whole */
		sp_buf_reset(&again);
		if (sp_encode_record_head(&again, r->kind, r->dev, r->ts) != 0 ||
		    sp_encode_record_tail(&again, r) != 0 || first.len != again.len ||
		    memcmp(first.data, again.data, first.len) != 0)
			abort();
		sp_buf_free(&again);
		sp_buf_free(&first);
	}
	sp_buf_free(&b);
}

/*
 * Copies in to out, turning every NUL inside a JSON string into a byte 1: a
 * raw NUL byte into a raw 1, the escape \u0000 into \u0001. Written apart
 * from the codec's own scanner, on purpose. True if anything changed.
 */
static bool nul_to_one(const uint8_t *in, size_t n, uint8_t *out)
{
	bool in_string = false, changed = false;
	memcpy(out, in, n);
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '"') {
			in_string = !in_string;
		} else if (in_string && in[i] == 0) {
			out[i] = 1;
			changed = true;
		} else if (in_string && in[i] == '\\') {
			if (n - i > 5 && memcmp(in + i + 1, "u0000", 5) == 0) {
				out[i + 5] = '1';
				changed = true;
			}
			i++; /* the escaped byte, a quote too */
		}
	}
	return changed;
}

/*
 * A record accepted from the input is accepted, unchanged, from its copy
 * with every NUL in a string made a 1. Such a 1 is refused wherever a string
 * is read (ids, kinds, enums, codes and texts all refuse control
 * characters) and ignored where it is not (unknown fields), so a record the
 * copy refuses read a string with a NUL in the input: read as the C string
 * before the NUL, it would have been stored truncated.
 */
static void check_nul_faithful(const uint8_t *data, size_t size, const struct sp_data_msg *m)
{
	uint8_t *copy = malloc(size ? size : 1);
	struct sp_data_msg m2;
	struct sp_reject_info why;
	if (copy == NULL)
		return;
	if (nul_to_one(data, size, copy)) {
		if (sp_decode_data(dec3, (const char *)copy, size, NOW, &m2, &why) != 0 ||
		    m2.count != m->count)
			abort();
		for (size_t i = 0; i < m->count; i++) {
			if (m->rejects[i].reason != SP_REJ_NONE)
				continue;
			if (m2.rejects[i].reason != SP_REJ_NONE)
				abort(); /* accepted through a NUL */
			struct sp_buf a = SP_BUF_INIT(SP_PAYLOAD_MAX), b = SP_BUF_INIT(SP_PAYLOAD_MAX);
			sp_encode_record(&a, &m->records[i]);
			sp_encode_record(&b, &m2.records[i]);
			if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
				abort();
			sp_buf_free(&a);
			sp_buf_free(&b);
		}
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_data_msg m;
	struct sp_birth bi;
	struct sp_reject_info why;
	struct sp_cmd cmd;
	bool online;
	int64_t ts, seq;
	const char *p = (const char *)data;

	if (dec == NULL) {
		dec = sp_decoder_create();
		dec2 = sp_decoder_create();
		dec3 = sp_decoder_create();
	}
	if (sp_decode_data(dec, p, size, NOW, &m, &why) == 0) {
		if (m.count == 0 || m.count > SP_RECORDS_MAX)
			abort();
		for (size_t i = 0; i < m.count; i++)
			if (m.rejects[i].reason == SP_REJ_NONE)
				check_round_trip(&m.records[i]);
		check_nul_faithful(data, size, &m);
	} else if (why.reason == SP_REJ_NONE || why.reason >= SP_REJ_REASON_COUNT) {
		abort(); /* every rejection has a reason */
	}
	if (sp_decode_birth(dec, p, size, NOW, &bi, &why) == 0) {
		struct sp_buf b = SP_BUF_INIT(SP_PAYLOAD_MAX);
		for (size_t i = 0; i < bi.count; i++)
			if (bi.rejects[i].reason == SP_REJ_NONE)
				sp_encode_device_info(&b, &bi.devices[i]);
		sp_buf_free(&b);
	}
	sp_decode_state(p, size, &online, &ts, &why);
	sp_decode_ack(p, size, &seq, &ts);
	sp_decode_cmd(p, size, NOW, &cmd, &why);
	return 0;
}
