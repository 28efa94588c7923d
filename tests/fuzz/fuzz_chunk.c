/*
 * fuzz_chunk.c - libFuzzer target for the stored chunk format (chunk.h): a
 * chunk read back from a damaged or edited database file is untrusted bytes.
 *
 * Input: byte 0 picks the format (bit 0), bytes 1-2 the meta's length
 * (bounded by what is left), then the meta, then the body. Whatever
 * chunk_check accepts must iterate without an error, every reading must
 * give its JSON (chunk_rec_json), and written again through a chunk_batch,
 * in either format, must read back the same readings in the same order
 * (by span, as the batch groups them, then as given), each chunk's kinds
 * (reading_chunks.kinds) naming exactly the kinds read back from it.
 */
#include "chunk.h"

#include "sitepulse/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct readings {
	struct chunk_rec r[CHUNK_MAX_RECORDS + 1]; /* + 1: room for the call that ends */
	size_t n;
};

struct emitted {
	const struct readings *want;
	size_t at; /* readings of want compared so far */
};

static bool same(const struct chunk_rec *a, const struct chunk_rec *b)
{
	return a->ts == b->ts && a->seq == b->seq && a->agent_id == b->agent_id &&
	       a->kind == b->kind && a->bare == b->bare && a->len == b->len &&
	       (a->len == 0 || memcmp(a->body, b->body, a->len) == 0);
}

static int on_chunk(void *ctx, const struct chunk_out *c)
{
	struct emitted *e = ctx;
	struct chunk_iter it;
	struct chunk_rec r;
	int got;
	if (!chunk_check(c->fmt, c->meta, c->meta_len, c->body, c->body_len) ||
	    chunk_iter_init(&it, c->fmt, c->meta, c->meta_len, c->body, c->body_len) != 0)
		abort(); /* we wrote something we do not accept */
	uint32_t kinds = 0;
	while ((got = chunk_iter_next(&it, &r)) == 1) {
		if (e->at >= e->want->n || !same(&r, &e->want->r[e->at]))
			abort(); /* not what went in, or not in its place */
		kinds |= chunk_kind_bit(r.kind);
		e->at++;
	}
	if (got != 0 || c->kinds != kinds)
		abort(); /* kinds must name exactly the kinds a reader finds in the chunk */
	return 0;
}

/* Stable order by span: insertion sort (at most CHUNK_MAX_RECORDS readings). */
static void by_span(struct readings *rs)
{
	for (size_t i = 1; i < rs->n; i++) {
		struct chunk_rec x = rs->r[i];
		size_t j = i;
		while (j > 0 && chunk_span_of(rs->r[j - 1].ts) > chunk_span_of(x.ts)) {
			rs->r[j] = rs->r[j - 1];
			j--;
		}
		rs->r[j] = x;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct readings rs;
	if (size < 3)
		return 0;
	int fmt = data[0] & 1;
	size_t meta_len = (size_t)data[1] | (size_t)data[2] << 8;
	data += 3;
	size -= 3;
	if (meta_len > size)
		meta_len = size;
	const uint8_t *meta = data;
	const char *body = (const char *)data + meta_len;
	size_t body_len = size - meta_len;

	if (!chunk_check(fmt, meta_len ? meta : NULL, meta_len, body_len ? body : NULL, body_len))
		return 0;
	struct chunk_iter it;
	if (chunk_iter_init(&it, fmt, meta_len ? meta : NULL, meta_len, body_len ? body : NULL,
			    body_len) != 0)
		abort();
	struct sp_buf json = SP_BUF_INIT(0);
	int got;
	rs.n = 0;
	while ((got = chunk_iter_next(&it, &rs.r[rs.n])) == 1) {
		sp_buf_reset(&json);
		if (chunk_rec_json(&rs.r[rs.n], "dev-1", &json) != 0)
			abort(); /* a sound chunk's reading always reads back */
		if (++rs.n > CHUNK_MAX_RECORDS)
			abort(); /* chunk_check bounds the count */
	}
	sp_buf_free(&json);
	if (got != 0 || rs.n != chunk_iter_count(&it))
		abort(); /* iterating a chunk that passed the check failed */

	/* written again, in each format: the same readings back */
	struct chunk_batch *b = chunk_batch_create();
	if (b == NULL)
		return 0;
	for (size_t i = 0; i < rs.n; i++)
		if (chunk_batch_add(b, 7, &rs.r[i]) != 0)
			abort();
	by_span(&rs);
	for (int f = CHUNK_FMT_FIXED; f <= CHUNK_FMT_PACKED; f++) {
		struct emitted e = {&rs, 0};
		if (chunk_batch_emit(b, f, on_chunk, &e) != 0 || e.at != rs.n)
			abort();
	}
	chunk_batch_destroy(b);
	return 0;
}
