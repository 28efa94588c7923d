/*
 * test_chunk.c - readings chunks (chunk.h) and the newest-readings heap
 * (newest.h): the span of a ts, the on-disk entry layout, grouping a batch
 * by (device, span) and splitting groups at the body / record caps, emit's
 * early stop, reset and reuse (also past the memory-release bound), many
 * groups, damaged chunks refused by the iterator; the heap's limit, order,
 * tie-breaking, body copies, done_below, and a randomized brute-force check.
 */
#include "harness.h"

#include "chunk.h"
#include "newest.h"

#include "sitepulse/error.h"
#include "sitepulse/grow.h"
#include "sitepulse/record.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define T0 1764320000000LL
#define H CHUNK_SPAN_MS

/* the format the batch tests emit (main runs them in each); layout tests name theirs */
static int fmt = CHUNK_FMT_FIXED;

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: fixed seed, the same sequence on every run */
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static size_t rnd_below(size_t n)
{
	return (size_t)(rnd() % n);
}

static void shuffle(size_t *a, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = rnd_below(i);
		size_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

/* Writes a JSON object of exactly len bytes into dst (len >= 2; shorter: filler). */
static void mkbody(char *dst, size_t len, uint64_t tag)
{
	char head[48];
	int h = snprintf(head, sizeof(head), "{\"i\":%" PRIu64 ",\"p\":\"", tag);
	if (h < 0 || (size_t)h + 2 > len) {
		for (size_t i = 0; i < len; i++)
			dst[i] = (char)('a' + (tag + i) % 26);
		return;
	}
	memcpy(dst, head, (size_t)h);
	for (size_t i = (size_t)h; i < len - 2; i++)
		dst[i] = (char)('a' + (tag + i) % 26);
	dst[len - 2] = '"';
	dst[len - 1] = '}';
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* One meta entry, encoded independently of chunk.c (the documented format). */
static void put_entry(unsigned char *e, int64_t ts, int64_t seq, int64_t agent, uint32_t len,
		      uint32_t kind)
{
	put64(e, (uint64_t)ts);
	put64(e + 8, (uint64_t)seq);
	put64(e + 16, (uint64_t)agent);
	put32(e + 24, len);
	put32(e + 28, kind);
}

/* ------------------------------------------------------- model of a batch */

struct mrec {
	int64_t dev, ts, seq, agent;
	int kind;
	char *body;
	size_t len;
	size_t idx;           /* insertion order */
};

struct model {
	struct mrec *r;
	size_t n, cap;
	size_t bytes;
};

static char scratch[3 * CHUNK_MAX_BODY];

static void model_free(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->r[i].body);
	free(m->r);
	memset(m, 0, sizeof(*m));
}

static void model_clear(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->r[i].body);
	m->n = 0;
	m->bytes = 0;
}

/*
 * Adds a reading of body length len (generated from tag) to the batch and
 * the model. The batch gets it from a scratch buffer that is overwritten
 * right after, so the batch must have copied it.
 */
static int add(struct chunk_batch *b, struct model *m, int64_t dev, int64_t ts, int64_t seq,
	       int64_t agent, int kind, size_t len)
{
	if ((m->r = sp_grow(m->r, &m->cap, m->n + 1, sizeof(*m->r), 64)) == NULL)
		abort();
	mkbody(scratch, len, (uint64_t)m->n * 7919u + (uint64_t)dev);
	struct mrec *x = &m->r[m->n];
	*x = (struct mrec){dev, ts, seq, agent, kind, malloc(len + 1), len, m->n};
	if (x->body == NULL)
		abort();
	memcpy(x->body, scratch, len);
	x->body[len] = '\0';
	struct chunk_rec r = {ts, seq, agent, kind, scratch, len, false};
	int rc = chunk_batch_add(b, dev, &r);
	memset(scratch, 'X', len + 1);
	if (rc == 0) {
		m->n++;
		m->bytes += len;
	} else {
		free(x->body);
	}
	return rc;
}

/* ------------------------------------------------------- what emit wrote */

struct got {
	int64_t dev, ts_min, ts_max;
	size_t n;
	int fmt;
	unsigned char *meta;
	size_t meta_len;
	char *body;
	size_t body_len;
	uint32_t kinds;
};

struct sink {
	struct got *c;
	size_t n, cap;
	int calls;
	int fail_at;          /* 1-based call that returns fail_rc; 0 = none */
	int fail_rc;
};

static int on_chunk(void *ctx, const struct chunk_out *c)
{
	struct sink *s = ctx;
	s->calls++;
	if ((s->c = sp_grow(s->c, &s->cap, s->n + 1, sizeof(*s->c), 64)) == NULL)
		abort();
	struct got *g = &s->c[s->n++];
	*g = (struct got){c->device_id, c->ts_min, c->ts_max, c->n, c->fmt, malloc(c->meta_len + 1),
			  c->meta_len, malloc(c->body_len + 1), c->body_len, c->kinds};
	if (g->meta == NULL || g->body == NULL)
		abort();
	if (c->meta_len)
		memcpy(g->meta, c->meta, c->meta_len);
	if (c->body_len)
		memcpy(g->body, c->body, c->body_len);
	g->body[c->body_len] = '\0';
	return s->calls == s->fail_at ? s->fail_rc : 0;
}

static void sink_free(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->c[i].meta);
		free(s->c[i].body);
	}
	free(s->c);
	memset(s, 0, sizeof(*s));
}

static const struct mrec *sort_base;

static int by_dev_span_idx(const void *pa, const void *pb)
{
	const struct mrec *a = &sort_base[*(const size_t *)pa], *b = &sort_base[*(const size_t *)pb];
	int64_t sa = chunk_span_of(a->ts), sb = chunk_span_of(b->ts);
	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (sa != sb)
		return sa < sb ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Reports the first few mismatches of one verify, counts all. */
static int bad;
#define EXPECT(cond, ...)                                                                  \
	do {                                                                               \
		if (!(cond)) {                                                             \
			if (bad++ < 5) {                                                   \
				fprintf(stderr, "%s:%d: expected %s: ", __FILE__, __LINE__, \
					#cond);                                            \
				fprintf(stderr, __VA_ARGS__);                              \
				fputc('\n', stderr);                                       \
			}                                                                  \
		}                                                                          \
	} while (0)

/*
 * Checks the chunks in s against the model: (device, span) order, each
 * chunk's summary, meta size, body (the bodies joined by ','), every field
 * read back by chunk_iter, insertion order within groups, the caps, and
 * that a chunk ends only when the next reading would not fit (greedy).
 */
static void check_chunks(const struct sink *s, const struct model *m)
{
	size_t *order = malloc((m->n ? m->n : 1) * sizeof(*order));
	if (order == NULL)
		abort();
	for (size_t i = 0; i < m->n; i++)
		order[i] = i;
	sort_base = m->r;
	qsort(order, m->n, sizeof(*order), by_dev_span_idx);

	bad = 0;
	size_t pos = 0;
	for (size_t ci = 0; ci < s->n; ci++) {
		const struct got *c = &s->c[ci];
		EXPECT(c->n >= 1 && c->n <= CHUNK_MAX_RECORDS, "chunk %zu n %zu", ci, c->n);
		EXPECT(c->fmt == CHUNK_FMT_FIXED ? c->meta_len == c->n * CHUNK_ENTRY_SIZE
						 : c->meta_len >= 5 * c->n &&
							   c->meta_len <= c->n * CHUNK_PACKED_MAX,
		       "chunk %zu meta_len %zu n %zu", ci, c->meta_len, c->n);
		EXPECT(c->body_len <= CHUNK_MAX_BODY || c->n == 1, "chunk %zu body_len %zu n %zu",
		       ci, c->body_len, c->n);
		if (pos + c->n > m->n) {
			EXPECT(pos + c->n <= m->n, "chunk %zu: more readings than added", ci);
			break;
		}
		int64_t span = chunk_span_of(c->ts_min);
		if (ci > 0) {
			const struct got *p = &s->c[ci - 1];
			int64_t pspan = chunk_span_of(p->ts_min);
			EXPECT(p->dev < c->dev || (p->dev == c->dev && pspan <= span),
			       "chunk %zu out of (device, span) order", ci);
		}

		/* the body is exactly the bodies joined by ','; kinds has the bit of each kind */
		size_t want_len = 0;
		uint32_t want_kinds = 0;
		for (size_t k = 0; k < c->n; k++) {
			const struct mrec *r = &m->r[order[pos + k]];
			want_len += r->len + (k > 0);
			want_kinds |= r->kind >= 0 && r->kind < 32 ? 1u << r->kind : 0;
		}
		EXPECT(c->kinds == want_kinds, "chunk %zu kinds %#x want %#x", ci, (unsigned)c->kinds,
		       (unsigned)want_kinds);
		EXPECT(c->body_len == want_len, "chunk %zu body_len %zu want %zu", ci, c->body_len,
		       want_len);
		if (c->body_len == want_len) {
			size_t off = 0;
			for (size_t k = 0; k < c->n; k++) {
				const struct mrec *r = &m->r[order[pos + k]];
				if (k > 0) {
					EXPECT(c->body[off] == ',', "chunk %zu sep at %zu", ci, off);
					off++;
				}
				EXPECT(memcmp(c->body + off, r->body, r->len) == 0,
				       "chunk %zu body of reading %zu", ci, k);
				off += r->len;
			}
		}

		/* the fixed meta's bytes are the documented entries (packed: test_packed_layout) */
		for (size_t k = 0; c->fmt == CHUNK_FMT_FIXED && k < c->n; k++) {
			const struct mrec *r = &m->r[order[pos + k]];
			unsigned char e[CHUNK_ENTRY_SIZE];
			put_entry(e, r->ts, r->seq, r->agent, (uint32_t)r->len, (uint32_t)r->kind);
			EXPECT(memcmp(c->meta + k * CHUNK_ENTRY_SIZE, e, sizeof(e)) == 0,
			       "chunk %zu meta entry %zu", ci, k);
		}

		/* and read back field by field */
		struct chunk_iter it;
		struct chunk_rec rec;
		EXPECT(c->fmt == fmt, "chunk %zu format %d", ci, c->fmt);
		EXPECT(chunk_check(c->fmt, c->meta, c->meta_len, c->body, c->body_len),
		       "chunk %zu checks", ci);
		EXPECT(chunk_iter_init(&it, c->fmt, c->meta, c->meta_len, c->body, c->body_len) ==
			       0,
		       "chunk %zu init", ci);
		EXPECT(chunk_iter_count(&it) == c->n, "chunk %zu count", ci);
		int64_t tmin = INT64_MAX, tmax = INT64_MIN;
		for (size_t k = 0; k < c->n; k++) {
			const struct mrec *r = &m->r[order[pos + k]];
			int got = chunk_iter_next(&it, &rec);
			EXPECT(got == 1, "chunk %zu next %zu -> %d", ci, k, got);
			if (got != 1)
				break;
			EXPECT(r->dev == c->dev, "chunk %zu reading %zu device %" PRId64 " want %" PRId64,
			       ci, k, c->dev, r->dev);
			EXPECT(rec.ts == r->ts, "chunk %zu reading %zu ts", ci, k);
			EXPECT(rec.seq == r->seq, "chunk %zu reading %zu seq", ci, k);
			EXPECT(rec.agent_id == r->agent, "chunk %zu reading %zu agent", ci, k);
			EXPECT(rec.kind == r->kind, "chunk %zu reading %zu kind", ci, k);
			EXPECT(rec.len == r->len && memcmp(rec.body, r->body, r->len) == 0,
			       "chunk %zu reading %zu body", ci, k);
			EXPECT(rec.body >= c->body && rec.body + rec.len <= c->body + c->body_len,
			       "chunk %zu reading %zu body points into the chunk", ci, k);
			EXPECT(chunk_span_of(rec.ts) == span, "chunk %zu reading %zu span", ci, k);
			if (rec.ts < tmin)
				tmin = rec.ts;
			if (rec.ts > tmax)
				tmax = rec.ts;
		}
		EXPECT(chunk_iter_next(&it, &rec) == 0, "chunk %zu end", ci);
		EXPECT(c->ts_min == tmin && c->ts_max == tmax, "chunk %zu ts_min/ts_max", ci);

		/* greedy: a group continues in the next chunk only when this one was full */
		if (ci + 1 < s->n && pos + c->n < m->n) {
			const struct mrec *next = &m->r[order[pos + c->n]];
			if (next->dev == c->dev && chunk_span_of(next->ts) == span)
				EXPECT(c->n == CHUNK_MAX_RECORDS ||
					       c->body_len + 1 + next->len > CHUNK_MAX_BODY,
				       "chunk %zu ended early (n %zu body %zu next %zu)", ci, c->n,
				       c->body_len, next->len);
		}
		pos += c->n;
	}
	EXPECT(pos == m->n, "chunks hold %zu readings, %zu added", pos, m->n);
	CHECK_EQ_INT(bad, 0);
	free(order);
}

/* Emits the batch, checks the result against the model; returns the chunk count. */
static size_t verify(struct chunk_batch *b, const struct model *m)
{
	struct sink s = {0};
	CHECK_EQ_INT(chunk_batch_count(b), m->n);
	CHECK_EQ_INT(chunk_batch_body_bytes(b), m->bytes);
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
	CHECK_EQ_INT(s.calls, s.n);
	check_chunks(&s, m);
	size_t n = s.n;
	sink_free(&s);
	/* emit keeps the readings */
	CHECK_EQ_INT(chunk_batch_count(b), m->n);
	CHECK_EQ_INT(chunk_batch_body_bytes(b), m->bytes);
	return n;
}

/* -------------------------------------------------------------- chunk_span_of */

static void test_span_of(void)
{
	CHECK_EQ_INT(chunk_span_of(0), 0);
	CHECK_EQ_INT(chunk_span_of(1), 0);
	CHECK_EQ_INT(chunk_span_of(3599999), 0);
	CHECK_EQ_INT(chunk_span_of(3600000), 1);
	CHECK_EQ_INT(chunk_span_of(3600001), 1);
	CHECK_EQ_INT(chunk_span_of(7199999), 1);
	CHECK_EQ_INT(chunk_span_of(7200000), 2);
	CHECK_EQ_INT(chunk_span_of(T0), T0 / H);
	CHECK_EQ_INT(chunk_span_of(-1), -1);
	CHECK_EQ_INT(chunk_span_of(-3599999), -1);
	CHECK_EQ_INT(chunk_span_of(-3600000), -1);
	CHECK_EQ_INT(chunk_span_of(-3600001), -2);
	CHECK_EQ_INT(chunk_span_of(-7200000), -2);
	CHECK_EQ_INT(chunk_span_of(-7200001), -3);
	CHECK_EQ_INT(chunk_span_of(INT64_MAX), 2562047788015LL);
	CHECK_EQ_INT(chunk_span_of(INT64_MIN), -2562047788016LL);
	/* floor division: span * H <= ts < (span + 1) * H */
	rng_state = 0x5eed0001;
	int off = 0;
	for (int i = 0; i < 10000; i++) {
		int64_t ts = (int64_t)(rnd() % 2000000000000ull) - 1000000000000LL;
		int64_t s = chunk_span_of(ts);
		if (!(s * H <= ts && ts < (s + 1) * H))
			off++;
	}
	CHECK_EQ_INT(off, 0);
}

/* ------------------------------------------------------------- batch: format */

static void test_entry_layout(void)
{
	/* one reading, fields with distinct bytes: the meta is the documented layout */
	struct chunk_batch *b = chunk_batch_create();
	CHECK(b != NULL);
	struct chunk_rec r = {0x0102030405060708LL, 0x1112131415161718LL, 0x2122232425262728LL, 3,
			      "{\"a\":1}", 7, false};
	CHECK_EQ_INT(chunk_batch_add(b, 42, &r), 0);
	struct sink s = {0};
	CHECK_EQ_INT(chunk_batch_emit(b, CHUNK_FMT_FIXED, on_chunk, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	if (s.n == 1) {
		static const unsigned char want[CHUNK_ENTRY_SIZE] = {
			0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
			0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,
			0x28, 0x27, 0x26, 0x25, 0x24, 0x23, 0x22, 0x21,
			7, 0, 0, 0,
			3, 0, 0, 0,
		};
		CHECK_EQ_INT(s.c[0].dev, 42);
		CHECK_EQ_INT(s.c[0].n, 1);
		CHECK_EQ_INT(s.c[0].ts_min, r.ts);
		CHECK_EQ_INT(s.c[0].ts_max, r.ts);
		CHECK_EQ_INT(s.c[0].meta_len, CHUNK_ENTRY_SIZE);
		CHECK(memcmp(s.c[0].meta, want, sizeof(want)) == 0);
		CHECK_EQ_STR(s.c[0].body, "{\"a\":1}");
	}
	sink_free(&s);

	/* negative ts round-trips (two's complement in the u64) */
	chunk_batch_reset(b);
	struct chunk_rec neg = {-1, 1, 1, 0, "{}", 2, false};
	CHECK_EQ_INT(chunk_batch_add(b, 1, &neg), 0);
	CHECK_EQ_INT(chunk_batch_emit(b, CHUNK_FMT_FIXED, on_chunk, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	if (s.n == 1) {
		for (int i = 0; i < 8; i++)
			CHECK_EQ_INT(s.c[0].meta[i], 0xff);
		struct chunk_iter it;
		struct chunk_rec out;
		CHECK_EQ_INT(chunk_iter_init(&it, s.c[0].fmt, s.c[0].meta, s.c[0].meta_len,
					     s.c[0].body,
					     s.c[0].body_len), 0);
		CHECK_EQ_INT(chunk_iter_next(&it, &out), 1);
		CHECK_EQ_INT(out.ts, -1);
		CHECK_EQ_INT(s.c[0].ts_min, -1);
		CHECK_EQ_INT(chunk_iter_next(&it, &out), 0);
	}
	sink_free(&s);
	chunk_batch_destroy(b);
	chunk_batch_destroy(NULL);
}

/* ------------------------------------------------------- batch: round trip */

static void test_round_trip(void)
{
	struct chunk_batch *b = chunk_batch_create();
	struct model m = {0};
	CHECK(b != NULL);
	CHECK_EQ_INT(chunk_batch_count(b), 0);
	CHECK_EQ_INT(chunk_batch_body_bytes(b), 0);

	/* an empty batch emits nothing */
	struct sink s = {0};
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
	CHECK_EQ_INT(s.calls, 0);

	/*
	 * Devices added out of order, spans interleaved (including ones
	 * before the epoch and the span edges), readings out of ts order
	 * within a span: each group keeps insertion order, not ts order.
	 */
	static const int64_t devs[] = {30, 7, 1000000007, 1, 12};
	static const int64_t tss[] = {
		T0 + 5, T0 - 1, T0 + H + 10, T0 + 2, -1, -H, -H - 1, 0, T0 + H - 1 - (T0 % H),
		T0 - (T0 % H), T0 + 1, INT64_MAX, INT64_MIN, T0 + 3 * H,
	};
	size_t nt = sizeof(tss) / sizeof(tss[0]), nd = sizeof(devs) / sizeof(devs[0]);
	int64_t seq = 1;
	for (size_t round = 0; round < 3; round++)
		for (size_t i = 0; i < nt; i++)
			for (size_t d = 0; d < nd; d++) {
				size_t k = (i * 5 + d * 3 + round) % nt;
				CHECK_EQ_INT(add(b, &m, devs[d], tss[k], seq++, 100 + (int64_t)d,
						 (int)((k + d) % 4), 40 + (i * 13 + d) % 90),
					     0);
			}
	/* large seq / agent values survive */
	CHECK_EQ_INT(add(b, &m, 7, T0, INT64_MAX, INT64_MAX, 2, 40), 0);
	CHECK_EQ_INT(add(b, &m, 7, T0, INT64_MAX - 1, 1, 0xff, 40), 0); /* the largest kind */
	CHECK_EQ_INT(chunk_batch_count(b), m.n);
	CHECK_EQ_INT(chunk_batch_body_bytes(b), m.bytes);

	/* groups are small: one chunk each, (device, span) pairs all distinct */
	size_t groups = 0;
	for (size_t i = 0; i < m.n; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = m.r[j].dev == m.r[i].dev &&
			       chunk_span_of(m.r[j].ts) == chunk_span_of(m.r[i].ts);
		groups += !seen;
	}
	CHECK_EQ_INT(verify(b, &m), groups);

	/* the chunks' bodies are JSON arrays when bracketed: check the shape (bodies >= 40 bytes are objects) */
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
	int shape_bad = 0;
	for (size_t i = 0; i < s.n; i++) {
		const char *p = s.c[i].body;
		size_t depth = 0, objects = 0;
		for (size_t j = 0; j < s.c[i].body_len; j++) {
			if (p[j] == '{' && depth++ == 0)
				objects++;
			else if (p[j] == '}')
				depth--;
			else if (p[j] == ',' && depth == 0 && (j == 0 || p[j - 1] != '}'))
				shape_bad++;
		}
		if (objects != s.c[i].n || depth != 0 || p[0] != '{' ||
		    p[s.c[i].body_len - 1] != '}')
			shape_bad++;
	}
	CHECK_EQ_INT(shape_bad, 0);
	/* the same chunks again: emit is repeatable */
	size_t first = s.n;
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
	CHECK_EQ_INT(s.n, 2 * first);
	int differ = 0;
	for (size_t i = 0; i < first && s.n == 2 * first; i++)
		differ += s.c[i].dev != s.c[first + i].dev || s.c[i].n != s.c[first + i].n ||
			  s.c[i].body_len != s.c[first + i].body_len ||
			  memcmp(s.c[i].body, s.c[first + i].body, s.c[i].body_len) != 0 ||
			  memcmp(s.c[i].meta, s.c[first + i].meta, s.c[i].meta_len) != 0;
	CHECK_EQ_INT(differ, 0);
	sink_free(&s);

	model_free(&m);
	chunk_batch_destroy(b);
}

/* Empty bodies are legal in the format: they still get their ',' separators. */
static void test_empty_bodies(void)
{
	struct chunk_batch *b = chunk_batch_create();
	struct model m = {0};
	CHECK_EQ_INT(add(b, &m, 5, T0, 1, 1, 0, 0), 0);
	CHECK_EQ_INT(add(b, &m, 5, T0 + 1, 2, 1, 0, 3), 0);
	CHECK_EQ_INT(add(b, &m, 5, T0 + 2, 3, 1, 0, 0), 0);
	CHECK_EQ_INT(add(b, &m, 5, T0 + 3, 4, 1, 0, 0), 0);
	CHECK_EQ_INT(verify(b, &m), 1);
	struct sink s = {0};
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	if (s.n == 1) {
		CHECK_EQ_INT(s.c[0].body_len, 6);
		CHECK(memcmp(s.c[0].body, ",", 1) == 0);
		CHECK(memcmp(s.c[0].body + 4, ",,", 2) == 0);
	}
	sink_free(&s);
	model_free(&m);
	chunk_batch_destroy(b);
}

/* ---------------------------------------------------------- batch: splitting */

static void test_split_records(void)
{
	struct chunk_batch *b = chunk_batch_create();
	struct model m = {0};
	/* exactly CHUNK_MAX_RECORDS: one chunk */
	for (int i = 0; i < CHUNK_MAX_RECORDS; i++)
		CHECK_EQ_INT(add(b, &m, 3, T0 + (i * 7919) % 1000, i + 1, 9, 1, 12), 0);
	CHECK_EQ_INT(verify(b, &m), 1);
	/* one more: two; of another kind, which only the second chunk's kinds may name */
	CHECK_EQ_INT(add(b, &m, 3, T0 + 500, CHUNK_MAX_RECORDS + 1, 9, 4, 12), 0);
	CHECK_EQ_INT(verify(b, &m), 2);
	chunk_batch_reset(b);
	model_clear(&m);

	/* 1300 readings of one device and hour, interleaved with another device */
	for (int i = 0; i < 1300; i++) {
		CHECK_EQ_INT(add(b, &m, 8, T0 + (i * 37) % 3000, i + 1, 2, i % 3, 15 + i % 20), 0);
		if (i % 100 == 0)
			CHECK_EQ_INT(add(b, &m, 4, T0 + i, i + 1, 2, 0, 15), 0);
	}
	CHECK_EQ_INT(verify(b, &m), 1 + 3);
	struct sink s = {0};
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
	CHECK_EQ_INT(s.n, 4);
	if (s.n == 4) {
		CHECK_EQ_INT(s.c[0].dev, 4);
		CHECK_EQ_INT(s.c[0].n, 13);
		CHECK_EQ_INT(s.c[1].n, CHUNK_MAX_RECORDS);
		CHECK_EQ_INT(s.c[2].n, CHUNK_MAX_RECORDS);
		CHECK_EQ_INT(s.c[3].n, 1300 - 2 * CHUNK_MAX_RECORDS);
	}
	sink_free(&s);
	model_free(&m);
	chunk_batch_destroy(b);
}

static void test_split_body(void)
{
	struct chunk_batch *b = chunk_batch_create();
	struct model m = {0};
	struct sink s = {0};

	/* 100 bodies of 1000 bytes: 32 fit (32 * 1000 + 31 commas), the 33rd does not */
	for (int i = 0; i < 100; i++)
		CHECK_EQ_INT(add(b, &m, 1, T0 + i, i + 1, 1, 0, 1000), 0);
	CHECK_EQ_INT(verify(b, &m), 4);
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
	CHECK_EQ_INT(s.n, 4);
	if (s.n == 4) {
		CHECK_EQ_INT(s.c[0].n, 32);
		CHECK_EQ_INT(s.c[0].body_len, 32 * 1000 + 31);
		CHECK_EQ_INT(s.c[3].n, 4);
		CHECK_EQ_INT(s.c[0].ts_min, T0);
		CHECK_EQ_INT(s.c[0].ts_max, T0 + 31);
		CHECK_EQ_INT(s.c[1].ts_min, T0 + 32);
	}
	sink_free(&s);
	chunk_batch_reset(b);
	model_clear(&m);

	/* exactly CHUNK_MAX_BODY with the separator: one chunk */
	CHECK_EQ_INT(add(b, &m, 1, T0, 1, 1, 0, 1000), 0);
	CHECK_EQ_INT(add(b, &m, 1, T0, 2, 1, 0, CHUNK_MAX_BODY - 1001), 0);
	CHECK_EQ_INT(verify(b, &m), 1);
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	if (s.n == 1)
		CHECK_EQ_INT(s.c[0].body_len, CHUNK_MAX_BODY);
	sink_free(&s);
	chunk_batch_reset(b);
	model_clear(&m);
	/* one byte over: two */
	CHECK_EQ_INT(add(b, &m, 1, T0, 1, 1, 0, 1000), 0);
	CHECK_EQ_INT(add(b, &m, 1, T0, 2, 1, 0, CHUNK_MAX_BODY - 1000), 0);
	CHECK_EQ_INT(verify(b, &m), 2);
	chunk_batch_reset(b);
	model_clear(&m);

	/* a single reading of exactly CHUNK_MAX_BODY, and one larger: each alone */
	CHECK_EQ_INT(add(b, &m, 2, T0, 1, 1, 0, 100), 0);
	CHECK_EQ_INT(add(b, &m, 2, T0 + 1, 2, 1, 0, 200), 0);
	CHECK_EQ_INT(add(b, &m, 2, T0 + 2, 3, 1, 0, CHUNK_MAX_BODY + 5000), 0);
	CHECK_EQ_INT(add(b, &m, 2, T0 + 3, 4, 1, 0, 300), 0);
	CHECK_EQ_INT(add(b, &m, 2, T0 + 4, 5, 1, 0, CHUNK_MAX_BODY), 0);
	CHECK_EQ_INT(add(b, &m, 2, T0 + 5, 6, 1, 0, 2 * CHUNK_MAX_BODY), 0);
	CHECK_EQ_INT(add(b, &m, 2, T0 + 6, 7, 1, 0, 400), 0);
	CHECK_EQ_INT(add(b, &m, 2, T0 + 7, 8, 1, 0, 500), 0);
	CHECK_EQ_INT(verify(b, &m), 6);
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
	CHECK_EQ_INT(s.n, 6);
	if (s.n == 6) {
		static const size_t want_n[] = {2, 1, 1, 1, 1, 2};
		static const size_t want_len[] = {301, CHUNK_MAX_BODY + 5000, 300, CHUNK_MAX_BODY,
						  2 * CHUNK_MAX_BODY, 901};
		for (int i = 0; i < 6; i++) {
			CHECK_EQ_INT(s.c[i].n, want_n[i]);
			CHECK_EQ_INT(s.c[i].body_len, want_len[i]);
		}
		CHECK_EQ_INT(s.c[1].ts_min, T0 + 2);
		CHECK_EQ_INT(s.c[1].ts_max, T0 + 2);
		CHECK_EQ_INT(s.c[5].ts_min, T0 + 6);
		CHECK_EQ_INT(s.c[5].ts_max, T0 + 7);
	}
	sink_free(&s);
	chunk_batch_reset(b);
	model_clear(&m);

	/* random sizes over a few groups: every chunk within the caps, greedy */
	rng_state = 0x5eed0002;
	for (int i = 0; i < 3000; i++) {
		size_t len = rnd_below(10) == 0 ? 2000 + rnd_below(40000) : 2 + rnd_below(300);
		CHECK_EQ_INT(add(b, &m, 1 + (int64_t)rnd_below(3), T0 + (int64_t)rnd_below(3 * H),
				 i + 1, 1, 0, len),
			     0);
	}
	CHECK(verify(b, &m) > 9);
	model_free(&m);
	chunk_batch_destroy(b);
}

/* ------------------------------------------------------------ batch: emit stops */

static void test_emit_stops(void)
{
	struct chunk_batch *b = chunk_batch_create();
	struct model m = {0};
	for (int d = 1; d <= 5; d++)
		for (int i = 0; i < 4; i++)
			CHECK_EQ_INT(add(b, &m, d, T0 + i, i + 1, 1, 0, 20), 0);
	/* 1300 readings of device 6: three chunks */
	for (int i = 0; i < 1300; i++)
		CHECK_EQ_INT(add(b, &m, 6, T0 + i, i + 1, 1, 0, 20), 0);

	struct sink s = {.fail_at = 3, .fail_rc = 7};
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 7);
	CHECK_EQ_INT(s.calls, 3);
	CHECK_EQ_INT(s.n, 3);
	if (s.n == 3)
		CHECK_EQ_INT(s.c[2].dev, 3);
	sink_free(&s);

	s = (struct sink){.fail_at = 1, .fail_rc = -1234};
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), -1234);
	CHECK_EQ_INT(s.calls, 1);
	sink_free(&s);

	/* stopping inside a split group (the 7th chunk is device 6's second) */
	s = (struct sink){.fail_at = 7, .fail_rc = SP_EIO};
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), SP_EIO);
	CHECK_EQ_INT(s.calls, 7);
	CHECK_EQ_INT(s.n, 7);
	if (s.n == 7) {
		CHECK_EQ_INT(s.c[6].dev, 6);
		CHECK_EQ_INT(s.c[6].n, CHUNK_MAX_RECORDS);
	}
	sink_free(&s);

	/* the last one */
	s = (struct sink){.fail_at = 8, .fail_rc = 1};
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 1);
	CHECK_EQ_INT(s.calls, 8);
	sink_free(&s);

	/* a stopped emit leaves the batch whole: a full emit afterwards is right */
	CHECK_EQ_INT(verify(b, &m), 8);
	model_free(&m);
	chunk_batch_destroy(b);
}

/* ------------------------------------------------------- batch: reset, reuse */

static void test_reset_reuse(void)
{
	struct chunk_batch *b = chunk_batch_create();
	struct model m = {0};
	struct sink s = {0};

	CHECK_EQ_INT(add(b, &m, 1, T0, 1, 1, 0, 10), 0);
	CHECK_EQ_INT(add(b, &m, 2, T0, 2, 1, 0, 25), 0);
	CHECK_EQ_INT(add(b, &m, 1, T0 + H, 3, 1, 0, 5), 0);
	CHECK_EQ_INT(chunk_batch_count(b), 3);
	CHECK_EQ_INT(chunk_batch_body_bytes(b), 40);
	CHECK_EQ_INT(verify(b, &m), 3);

	/* reset: nothing held, nothing emitted */
	chunk_batch_reset(b);
	model_clear(&m);
	CHECK_EQ_INT(chunk_batch_count(b), 0);
	CHECK_EQ_INT(chunk_batch_body_bytes(b), 0);
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
	CHECK_EQ_INT(s.calls, 0);
	/* reset twice is harmless */
	chunk_batch_reset(b);
	CHECK_EQ_INT(chunk_batch_count(b), 0);

	/* reuse: the same (device, span) pairs start new groups */
	CHECK_EQ_INT(add(b, &m, 2, T0 + 1, 10, 1, 0, 30), 0);
	CHECK_EQ_INT(add(b, &m, 1, T0 + 1, 11, 1, 0, 30), 0);
	CHECK_EQ_INT(verify(b, &m), 2);

	/* reset without an emit (groups never sorted), then reuse */
	chunk_batch_reset(b);
	model_clear(&m);
	for (int i = 0; i < 50; i++)
		CHECK_EQ_INT(add(b, &m, 50 - i % 5, T0 + i * (H / 7), i, 1, 0, 17), 0);
	verify(b, &m);
	chunk_batch_reset(b);
	model_clear(&m);

	/*
	 * A big batch: past KEEP_HELD (8192) readings and KEEP_BYTES (2 MiB)
	 * of bodies, so the reset hands memory back; then the batch works
	 * as new, twice over.
	 */
	rng_state = 0x5eed0003;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 9500; i++)
			CHECK_EQ_INT(add(b, &m, 1 + (int64_t)rnd_below(700),
					 T0 + (int64_t)rnd_below(4 * H), i + 1, 1, i % 4,
					 200 + rnd_below(200)),
				     0);
		CHECK(m.bytes > (2u << 20));
		verify(b, &m);
		chunk_batch_reset(b);
		model_clear(&m);
		CHECK_EQ_INT(chunk_batch_count(b), 0);
		CHECK_EQ_INT(chunk_batch_body_bytes(b), 0);
		CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &s), 0);
		CHECK_EQ_INT(s.calls, 0);
		/* small reuse right after the release */
		CHECK_EQ_INT(add(b, &m, 9, T0, 1, 1, 0, 11), 0);
		CHECK_EQ_INT(add(b, &m, 8, T0, 2, 1, 0, 12), 0);
		CHECK_EQ_INT(add(b, &m, 9, T0 + 5, 3, 1, 0, 13), 0);
		CHECK_EQ_INT(verify(b, &m), 2);
		chunk_batch_reset(b);
		model_clear(&m);
	}
	model_free(&m);
	chunk_batch_destroy(b);
}

/* ---------------------------------------------------------- batch: many groups */

static void test_many_groups(void)
{
	struct chunk_batch *b = chunk_batch_create();
	struct model m = {0};
	enum { NDEV = 5000, SPANS = 2 };
	size_t *ord = malloc(NDEV * SPANS * 2 * sizeof(*ord));
	if (ord == NULL)
		abort();
	for (size_t i = 0; i < NDEV * SPANS * 2; i++)
		ord[i] = i;
	rng_state = 0x5eed0004;
	shuffle(ord, NDEV * SPANS * 2);
	/* two readings per (device, span), all in random order */
	for (size_t i = 0; i < NDEV * SPANS * 2; i++) {
		size_t k = ord[i] / 2;
		int64_t dev = 1 + (int64_t)(k % NDEV) * 3;
		int64_t ts = T0 + (int64_t)(k / NDEV) * H + (int64_t)(ord[i] % 2) * 1000;
		CHECK_EQ_INT(add(b, &m, dev, ts, (int64_t)i + 1, 1, 0, 8 + i % 8), 0);
	}
	CHECK_EQ_INT(verify(b, &m), NDEV * SPANS);

	/*
	 * After the emit (which sorted the groups and rebuilt the table):
	 * more readings for existing groups and for new ones still group.
	 */
	for (size_t i = 0; i < 3000; i++) {
		int64_t dev = 1 + (int64_t)rnd_below(NDEV + 1000) * 3;   /* some new devices */
		int64_t ts = T0 + (int64_t)rnd_below(SPANS + 1) * H + 7; /* and a new span */
		CHECK_EQ_INT(add(b, &m, dev, ts, 100000 + (int64_t)i, 2, 1, 9), 0);
	}
	/* devices between the old ones */
	for (int64_t dev = 2; dev < 300; dev += 3)
		CHECK_EQ_INT(add(b, &m, dev, T0, dev, 3, 2, 9), 0);
	size_t groups = verify(b, &m);
	CHECK(groups > NDEV * SPANS);
	/* and again after a second emit */
	CHECK_EQ_INT(add(b, &m, 1, T0 + 42, 999999, 1, 0, 5), 0);
	CHECK_EQ_INT(add(b, &m, 2, T0 + 42, 999999, 1, 0, 5), 0);
	CHECK_EQ_INT(add(b, &m, 3 * NDEV + 10000, T0 + 42, 999999, 1, 0, 5), 0);
	CHECK_EQ_INT(verify(b, &m), groups + 1);

	free(ord);
	model_free(&m);
	chunk_batch_destroy(b);
}

/* ------------------------------------------------------------ iter: damage */

/*
 * Borrowed bodies are read at emit time, not copied at add time: only the
 * copied ones count in chunk_batch_body_bytes, and a mix of both comes out
 * in insertion order.
 */
static void test_borrowed(void)
{
	struct chunk_batch *b = chunk_batch_create();
	struct sink k = {0};
	char lent[3][16] = {"{\"l\":0}", "{\"l\":1}", "{\"l\":2}"};
	CHECK(b != NULL);
	if (b == NULL)
		return;
	for (int i = 0; i < 3; i++) {
		struct chunk_rec r = {1000 + i, i + 1, 7, 0, lent[i], strlen(lent[i]), false};
		CHECK_EQ_INT(chunk_batch_add_borrowed(b, 5, &r), 0);
		struct chunk_rec c = {2000 + i, i + 1, 7, 4, "{\"c\":1}", 7, false};
		CHECK_EQ_INT(chunk_batch_add(b, 5, &c), 0);
	}
	CHECK_EQ_INT(chunk_batch_count(b), 6);
	CHECK_EQ_INT(chunk_batch_body_bytes(b), 21);
	/* the lender may change the body until emit: the batch reads it then */
	lent[1][5] = '9';
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &k), 0);
	CHECK_EQ_INT(k.n, 1);
	if (k.n == 1) {
		CHECK_EQ_INT(k.c[0].n, 6);
		CHECK_EQ_STR(k.c[0].body, "{\"l\":0},{\"c\":1},{\"l\":9},{\"c\":1},{\"l\":2},{\"c\":1}");
	}
	sink_free(&k);
	chunk_batch_destroy(b);
}

/* chunk_check: a chunk is used whole or not at all. */
static void test_check(void)
{
	static unsigned char meta[(CHUNK_MAX_RECORDS + 1) * CHUNK_ENTRY_SIZE];
	static char body[CHUNK_MAX_RECORDS + 1];
	/* "{}" and "[1]": sound */
	put_entry(meta, 1, 1, 1, 2, 0);
	put_entry(meta + CHUNK_ENTRY_SIZE, 2, 2, 1, 3, 0);
	CHECK(chunk_check(CHUNK_FMT_FIXED, meta, 2 * CHUNK_ENTRY_SIZE, "{},[1]", 6));
	CHECK(chunk_check(CHUNK_FMT_FIXED, NULL, 0, NULL, 0));
	/* the same, damaged after its first reading: rejected whole */
	CHECK(!chunk_check(CHUNK_FMT_FIXED, meta, 2 * CHUNK_ENTRY_SIZE, "{};[1]", 6));
	CHECK(!chunk_check(CHUNK_FMT_FIXED, meta, 2 * CHUNK_ENTRY_SIZE, "{},[1]x", 7));
	CHECK(!chunk_check(CHUNK_FMT_FIXED, meta, 2 * CHUNK_ENTRY_SIZE, "{},[1", 5));
	CHECK(!chunk_check(CHUNK_FMT_FIXED, meta, 2 * CHUNK_ENTRY_SIZE - 1, "{},[1]", 6));
	/* empty readings separated by commas: CHUNK_MAX_RECORDS is sound, one more is not */
	memset(meta, 0, sizeof(meta));
	memset(body, ',', sizeof(body));
	CHECK(chunk_check(CHUNK_FMT_FIXED, meta, CHUNK_MAX_RECORDS * CHUNK_ENTRY_SIZE, body,
			  CHUNK_MAX_RECORDS - 1));
	CHECK(!chunk_check(CHUNK_FMT_FIXED, meta, (CHUNK_MAX_RECORDS + 1) * CHUNK_ENTRY_SIZE, body,
			   CHUNK_MAX_RECORDS));
	/* what emit writes passes */
	struct chunk_batch *b = chunk_batch_create();
	struct model m = {0};
	struct sink k = {0};
	for (int i = 0; i < 700; i++)
		CHECK_EQ_INT(add(b, &m, i % 3, T0 + i, i, 1, 0, (size_t)(i % 90)), 0);
	CHECK_EQ_INT(chunk_batch_emit(b, fmt, on_chunk, &k), 0);
	CHECK(k.n >= 3);
	for (size_t i = 0; i < k.n; i++)
		CHECK(chunk_check(k.c[i].fmt, k.c[i].meta, k.c[i].meta_len, k.c[i].body,
				  k.c[i].body_len));
	sink_free(&k);
	model_free(&m);
	chunk_batch_destroy(b);
}

/* The packed meta, byte for byte: zigzag deltas from the entry before, then length and kind. */
static void test_packed_layout(void)
{
	struct chunk_batch *b = chunk_batch_create();
	struct sink k = {0};
	struct chunk_rec in[3] = {
		{1000, 7, 300, SP_REC_LIFT, "}", 1, true},          /* from 0: 2000, 14, 600 */
		{999, 7, 300, SP_REC_FAULT, ",\"x\":1}", 7, true},  /* -1, 0, 0 */
		{2000, INT64_MIN, 300, SP_REC_LIFT, "{}", 2, false}, /* +1001, wraps, 0 */
	};
	CHECK(b != NULL);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(chunk_batch_add(b, 4, &in[i]), 0);
	CHECK_EQ_INT(chunk_batch_emit(b, CHUNK_FMT_PACKED, on_chunk, &k), 0);
	CHECK_EQ_INT(k.n, 1);
	if (k.n == 1) {
		static const unsigned char want[] = {
			0xd0, 0x0f, 14, 0xd8, 0x04, 1, 0x80, 0x02,  /* 2000, 14, 600, 1, 0x100 */
			1, 0, 0, 7, 0x84, 0x02,                      /* -1, 0, 0, 7, 0x104 */
			0xd2, 0x0f,                                  /* 2002 */
			/* INT64_MIN - 7 wraps to INT64_MAX - 6: zigzag 2^64 - 14 */
			0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
			0, 2, 0,                                     /* 0, 2, 0 */
		};
		CHECK_EQ_INT(k.c[0].fmt, CHUNK_FMT_PACKED);
		CHECK_EQ_INT(k.c[0].meta_len, sizeof(want));
		CHECK(k.c[0].meta_len == sizeof(want) && memcmp(k.c[0].meta, want, sizeof(want)) == 0);
		struct chunk_iter it;
		struct chunk_rec r;
		CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_PACKED, k.c[0].meta, k.c[0].meta_len,
					     k.c[0].body, k.c[0].body_len), 0);
		CHECK_EQ_INT(chunk_iter_count(&it), 3);
		for (int i = 0; i < 3; i++) {
			CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
			CHECK(r.ts == in[i].ts && r.seq == in[i].seq && r.agent_id == in[i].agent_id);
			CHECK(r.kind == in[i].kind && r.bare == in[i].bare && r.len == in[i].len);
		}
		CHECK_EQ_INT(chunk_iter_next(&it, &r), 0);
	}
	sink_free(&k);
	chunk_batch_destroy(b);
}

/* Damaged packed metas are refused whole, whatever the damage. */
static void test_packed_damaged(void)
{
	struct chunk_iter it;
	struct chunk_rec r;
	/* one sound entry: ts 1, seq 0, agent 0, length 2, kind 0 */
	static const unsigned char one[] = {2, 0, 0, 2, 0};
	CHECK(chunk_check(CHUNK_FMT_PACKED, one, sizeof(one), "{}", 2));
	CHECK(chunk_check(CHUNK_FMT_PACKED, NULL, 0, NULL, 0));
	/* the same meta in the other format, or an unknown one: refused */
	CHECK(!chunk_check(CHUNK_FMT_FIXED, one, sizeof(one), "{}", 2));
	CHECK(!chunk_check(2, one, sizeof(one), "{}", 2));
	CHECK_EQ_INT(chunk_iter_init(&it, -1, one, sizeof(one), "{}", 2), SP_EINVAL);
	/* every cut of it: too few varints, or a varint cut short */
	for (size_t cut = 0; cut < sizeof(one); cut++)
		CHECK(!chunk_check(CHUNK_FMT_PACKED, one, cut, "{}", 2) || cut == 0);
	static const unsigned char unterminated[] = {2, 0, 0, 2, 0x80};
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_PACKED, unterminated, 5, "{}", 2), SP_EINVAL);
	/* a length of 2^32 does not fit 32 bits; a 64-bit varint of eleven bytes or a large tenth */
	static const unsigned char len33[] = {2, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0};
	CHECK(!chunk_check(CHUNK_FMT_PACKED, len33, sizeof(len33), "{}", 2));
	static const unsigned char ts11[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					     0x00, 0, 0, 2, 0};
	CHECK(!chunk_check(CHUNK_FMT_PACKED, ts11, sizeof(ts11), "{}", 2));
	static const unsigned char ts10[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
					     0, 0, 2, 0};
	CHECK(!chunk_check(CHUNK_FMT_PACKED, ts10, sizeof(ts10), "{}", 2));
	/* the largest: 2^64 - 1, one bit in the tenth byte */
	static const unsigned char tsmax[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
					      0, 0, 2, 0};
	CHECK(chunk_check(CHUNK_FMT_PACKED, tsmax, sizeof(tsmax), "{}", 2));
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_PACKED, tsmax, sizeof(tsmax), "{}", 2), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK_EQ_INT(r.ts, INT64_MIN); /* zigzag 2^64 - 1 is -2^63 */
	/* lengths and body disagree, as in the fixed format */
	CHECK(!chunk_check(CHUNK_FMT_PACKED, one, sizeof(one), "{}x", 3));
	CHECK(!chunk_check(CHUNK_FMT_PACKED, one, sizeof(one), "{", 1));
	/* a bare entry's checks hold here too */
	static const unsigned char bare_bad[] = {2, 0, 0, 2, 0x85, 0x02}; /* kind 5 | BARE */
	CHECK(!chunk_check(CHUNK_FMT_PACKED, bare_bad, sizeof(bare_bad), ",}", 2));
	static const unsigned char bare_ok[] = {2, 0, 0, 2, 0x84, 0x02};
	CHECK(chunk_check(CHUNK_FMT_PACKED, bare_ok, sizeof(bare_ok), ",}", 2));
}

/* Bare readings: the flag in the entry's kind, the head put back, damaged ones refused. */
static void test_bare(void)
{
	struct chunk_batch *b = chunk_batch_create();
	struct sink k = {0};
	struct chunk_rec in[3] = {
		{T0 + 5, 1, 9, SP_REC_PORT, ",\"port\":2}", 10, true},
		{T0 - 7, 2, 9, SP_REC_FAULT, "}", 1, true},
		{T0 + 6, 3, 9, SP_REC_LIFT, "{\"x\":1}", 7, false},
	};
	char want[3][96];
	snprintf(want[0], sizeof(want[0]), "{\"t\":\"port\",\"dev\":\"ch-1\",\"ts\":%lld,\"port\":2}",
		 (long long)(T0 + 5));
	snprintf(want[1], sizeof(want[1]), "{\"t\":\"fault\",\"dev\":\"ch-1\",\"ts\":%lld}",
		 (long long)(T0 - 7));
	snprintf(want[2], sizeof(want[2]), "{\"x\":1}");
	CHECK(b != NULL);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(chunk_batch_add(b, 4, &in[i]), 0);
	CHECK_EQ_INT(chunk_batch_emit(b, CHUNK_FMT_FIXED, on_chunk, &k), 0);
	CHECK_EQ_INT(k.n, 1);
	if (k.n == 1) {
		/* the flag is bit 8 of the kind; the body holds the tails as given */
		CHECK_EQ_INT(k.c[0].meta[28], SP_REC_PORT);
		CHECK_EQ_INT(k.c[0].meta[29], 1);
		CHECK_EQ_INT(k.c[0].meta[2 * CHUNK_ENTRY_SIZE + 29], 0);
		CHECK_EQ_STR(k.c[0].body, ",\"port\":2},},{\"x\":1}");
		/* kinds names the kinds, not the bare flag */
		CHECK_EQ_INT(k.c[0].kinds,
			     1u << SP_REC_PORT | 1u << SP_REC_FAULT | 1u << SP_REC_LIFT);
		CHECK(chunk_check(k.c[0].fmt, k.c[0].meta, k.c[0].meta_len, k.c[0].body, k.c[0].body_len));
		struct chunk_iter it;
		struct chunk_rec r;
		struct sp_buf json = SP_BUF_INIT(0);
		CHECK_EQ_INT(chunk_iter_init(&it, k.c[0].fmt, k.c[0].meta, k.c[0].meta_len, k.c[0].body,
					     k.c[0].body_len), 0);
		for (int i = 0; i < 3; i++) {
			CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
			CHECK_EQ_INT(r.kind, in[i].kind);
			CHECK_EQ_INT(r.bare, in[i].bare);
			CHECK_EQ_INT(r.ts, in[i].ts);
			sp_buf_reset(&json);
			CHECK_EQ_INT(chunk_rec_json(&r, "ch-1", &json), 0);
			CHECK_EQ_STR(json.data, want[i]);
		}
		CHECK_EQ_INT(chunk_iter_next(&it, &r), 0);
		/* a head needs a kind it can name */
		r = in[0];
		r.kind = SP_REC_KIND_COUNT;
		CHECK_EQ_INT(chunk_rec_json(&r, "ch-1", &json), SP_EINVAL);
		sp_buf_free(&json);
	}
	sink_free(&k);
	chunk_batch_destroy(b);

	/* stored bare entries that could not read back as records: the chunk is damaged */
	unsigned char meta[CHUNK_ENTRY_SIZE];
	put_entry(meta, 1, 1, 1, 1, CHUNK_BARE | SP_REC_FAULT);
	CHECK(chunk_check(CHUNK_FMT_FIXED, meta, sizeof(meta), "}", 1));
	put_entry(meta, 1, 1, 1, 1, CHUNK_BARE | SP_REC_KIND_COUNT);
	CHECK(!chunk_check(CHUNK_FMT_FIXED, meta, sizeof(meta), "}", 1));
	put_entry(meta, 1, 1, 1, 1, CHUNK_BARE | 0xff);
	CHECK(!chunk_check(CHUNK_FMT_FIXED, meta, sizeof(meta), "}", 1));
	put_entry(meta, 1, 1, 1, 2, CHUNK_BARE | SP_REC_LIFT);
	CHECK(!chunk_check(CHUNK_FMT_FIXED, meta, sizeof(meta), "{}", 2));
	CHECK(chunk_check(CHUNK_FMT_FIXED, meta, sizeof(meta), ",}", 2)); /* shape only: the JSON is the writer's */
	put_entry(meta, 1, 1, 1, 0, CHUNK_BARE | SP_REC_LIFT);
	CHECK(!chunk_check(CHUNK_FMT_FIXED, meta, sizeof(meta), "", 0));
	/* the same bytes without the flag are an ordinary (if odd) body */
	put_entry(meta, 1, 1, 1, 2, SP_REC_LIFT);
	CHECK(chunk_check(CHUNK_FMT_FIXED, meta, sizeof(meta), "{}", 2));
}

static void test_iter_damaged(void)
{
	struct chunk_iter it;
	struct chunk_rec r;
	unsigned char meta[4 * CHUNK_ENTRY_SIZE];

	/* an empty chunk: nothing, at once, and again */
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, NULL, 0, NULL, 0), 0);
	CHECK_EQ_INT(chunk_iter_count(&it), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 0);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 0, "", 0), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 0);

	/* meta not whole entries */
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 1, "", 0), SP_EINVAL);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 31, "abc", 3), SP_EINVAL);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 33, "abc", 3), SP_EINVAL);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 2 * CHUNK_ENTRY_SIZE - 1, "abc", 3), SP_EINVAL);
	/* NULL with a length */
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, NULL, CHUNK_ENTRY_SIZE, "abc", 3), SP_EINVAL);
	put_entry(meta, 1, 1, 1, 0, 0);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, CHUNK_ENTRY_SIZE, NULL, 3), SP_EINVAL);

	/* a sound two-entry chunk, for reference */
	put_entry(meta, T0, 1, 2, 3, 1);
	put_entry(meta + 32, T0 + 1, 2, 2, 2, 1);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 64, "abc,de", 6), 0);
	CHECK_EQ_INT(chunk_iter_count(&it), 2);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK(r.len == 3 && memcmp(r.body, "abc", 3) == 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK(r.len == 2 && memcmp(r.body, "de", 2) == 0);
	CHECK_EQ_INT(r.ts, T0 + 1);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 0);

	/* the first length runs past the body */
	put_entry(meta, T0, 1, 2, 10, 1);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 32, "abc", 3), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), SP_EINVAL);
	/* the second runs past by one */
	put_entry(meta, T0, 1, 2, 3, 1);
	put_entry(meta + 32, T0, 1, 2, 3, 1);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 64, "abc,de", 6), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), SP_EINVAL);
	/* a huge length does not wrap around */
	put_entry(meta + 32, T0, 1, 2, UINT32_MAX, 1);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 64, "abc,de", 6), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), SP_EINVAL);
	put_entry(meta, T0, 1, 2, UINT32_MAX, 1);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 32, "abc", 3), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), SP_EINVAL);

	/* the ',' separator missing: another byte there, or the body ends there */
	put_entry(meta, T0, 1, 2, 3, 1);
	put_entry(meta + 32, T0, 1, 2, 2, 1);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 64, "abcXde", 6), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), SP_EINVAL);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 64, "abcde", 5), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), SP_EINVAL);
	put_entry(meta + 32, T0, 1, 2, 0, 1);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 64, "abc", 3), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), SP_EINVAL);
	/* ... while a zero-length last body with its ',' is sound */
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 64, "abc,", 4), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK_EQ_INT(r.len, 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 0);
	/* a ',' before the first body is not a separator */
	put_entry(meta, T0, 1, 2, 3, 1);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 32, ",ab", 3), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK(memcmp(r.body, ",ab", 3) == 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 0);

	/* extra body bytes after the last entry: an error at the end, not 0 */
	put_entry(meta, T0, 1, 2, 3, 1);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 32, "abc,x", 5), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), SP_EINVAL);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, meta, 32, "abc,", 4), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), 1);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), SP_EINVAL);
	CHECK_EQ_INT(chunk_iter_init(&it, CHUNK_FMT_FIXED, NULL, 0, "x", 1), 0);
	CHECK_EQ_INT(chunk_iter_next(&it, &r), SP_EINVAL);

	/* a real chunk, cut short or lengthened by a byte anywhere: never read past */
	struct chunk_batch *b = chunk_batch_create();
	struct model m = {0};
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(add(b, &m, 1, T0 + i, i + 1, 1, 0, 5 + (size_t)i), 0);
	struct sink s = {0};
	CHECK_EQ_INT(chunk_batch_emit(b, CHUNK_FMT_FIXED, on_chunk, &s), 0);
	CHECK_EQ_INT(s.n, 1);
	if (s.n == 1) {
		const struct got *c = &s.c[0];
		int wrong = 0;
		for (size_t cut = 0; cut < c->body_len; cut++) {
			/* a heap copy of exactly `cut` bytes: ASan sees any over-read */
			char *p = malloc(cut ? cut : 1);
			if (p == NULL)
				abort();
			memcpy(p, c->body, cut);
			int rc;
			size_t got = 0;
			if (chunk_iter_init(&it, c->fmt, c->meta, c->meta_len, p, cut))
				wrong++;
			while ((rc = chunk_iter_next(&it, &r)) == 1)
				got++;
			if (rc != SP_EINVAL || got >= c->n)
				wrong++;
			free(p);
		}
		CHECK_EQ_INT(wrong, 0);
		/* meta cut to fewer whole entries: the rest of the body is extra */
		CHECK_EQ_INT(chunk_iter_init(&it, c->fmt, c->meta, c->meta_len - 32, c->body, c->body_len), 0);
		int rc;
		while ((rc = chunk_iter_next(&it, &r)) == 1)
			;
		CHECK_EQ_INT(rc, SP_EINVAL);
	}
	sink_free(&s);
	model_free(&m);
	chunk_batch_destroy(b);
}

/* ------------------------------------------------------------------ newest */

static void test_newest_limit0(void)
{
	struct newest *n = newest_create(0);
	const struct newest_item *items = NULL;
	CHECK(n != NULL);
	CHECK(newest_done_below(n, INT64_MIN));
	CHECK(newest_done_below(n, 0));
	CHECK(newest_done_below(n, INT64_MAX));
	CHECK(!newest_takes(n, INT64_MAX, UINT64_MAX));
	CHECK_EQ_INT(newest_offer(n, T0, 1, "{}", 2), 0);
	CHECK_EQ_INT(newest_offer(n, INT64_MAX, UINT64_MAX, "{}", 2), 0);
	CHECK_EQ_INT(newest_sorted(n, &items), 0);
	CHECK(newest_done_below(n, INT64_MAX));
	newest_destroy(n);
	newest_destroy(NULL);

	/* nothing offered at all */
	n = newest_create(5);
	CHECK(!newest_done_below(n, INT64_MIN));
	CHECK_EQ_INT(newest_sorted(n, &items), 0);
	newest_destroy(n);
}

static void test_newest_basic(void)
{
	/* ts 10, 20, ..., 100 offered in a scrambled order, limit 3 */
	static const int64_t ts[] = {50, 10, 100, 30, 80, 20, 90, 60, 40, 70};
	struct newest *n = newest_create(3);
	char buf[32];
	for (size_t i = 0; i < 10; i++) {
		int len = snprintf(buf, sizeof(buf), "{\"ts\":%" PRId64 "}", ts[i]);
		CHECK_EQ_INT(newest_offer(n, ts[i], i, buf, (size_t)len), 0);
		memset(buf, '#', sizeof(buf)); /* the kept copy is unaffected */
		CHECK_EQ_INT(newest_done_below(n, 0), i >= 2);
	}
	const struct newest_item *items = NULL;
	size_t k = newest_sorted(n, &items);
	CHECK_EQ_INT(k, 3);
	if (k == 3) {
		CHECK_EQ_INT(items[0].ts, 100);
		CHECK_EQ_INT(items[1].ts, 90);
		CHECK_EQ_INT(items[2].ts, 80);
		CHECK_EQ_INT(items[0].order, 2);
		CHECK_EQ_INT(items[1].order, 6);
		CHECK_EQ_INT(items[2].order, 4);
		CHECK_EQ_STR(items[0].body, "{\"ts\":100}");
		CHECK_EQ_STR(items[1].body, "{\"ts\":90}");
		CHECK_EQ_STR(items[2].body, "{\"ts\":80}");
		CHECK_EQ_INT(items[0].len, 10);
		CHECK_EQ_INT(items[2].len, 9);
	}
	/* sorting again gives the same */
	const struct newest_item *again = NULL;
	CHECK_EQ_INT(newest_sorted(n, &again), 3);
	CHECK(again == items && again[0].ts == 100 && again[2].ts == 80);
	newest_destroy(n);
}

static void test_newest_ties(void)
{
	/* equal ts: the larger order is newer */
	struct newest *n = newest_create(3);
	CHECK_EQ_INT(newest_offer(n, 5, 1, "a", 1), 0);
	CHECK_EQ_INT(newest_offer(n, 5, 3, "b", 1), 0);
	CHECK_EQ_INT(newest_offer(n, 4, 9, "c", 1), 0);
	CHECK_EQ_INT(newest_offer(n, 5, 2, "d", 1), 0); /* pushes out (4, 9) */
	CHECK_EQ_INT(newest_offer(n, 5, 0, "e", 1), 0); /* older than all kept: dropped */
	CHECK_EQ_INT(newest_offer(n, 6, 0, "f", 1), 0); /* pushes out (5, 1) */
	const struct newest_item *items = NULL;
	CHECK_EQ_INT(newest_sorted(n, &items), 3);
	CHECK_EQ_STR(items[0].body, "f");
	CHECK_EQ_STR(items[1].body, "b");
	CHECK_EQ_STR(items[2].body, "d");
	CHECK_EQ_INT(items[2].ts, 5);
	CHECK_EQ_INT(items[2].order, 2);
	newest_destroy(n);

	/* order decides on equal ts even when it is huge */
	n = newest_create(1);
	CHECK_EQ_INT(newest_offer(n, 7, UINT64_MAX - 1, "x", 1), 0);
	CHECK_EQ_INT(newest_offer(n, 7, UINT64_MAX, "y", 1), 0);
	CHECK_EQ_INT(newest_offer(n, 7, 0, "z", 1), 0);
	CHECK_EQ_INT(newest_sorted(n, &items), 1);
	CHECK_EQ_STR(items[0].body, "y");
	newest_destroy(n);

	/* negative ts order below positive */
	n = newest_create(2);
	CHECK_EQ_INT(newest_offer(n, -5, 1, "m5", 2), 0);
	CHECK_EQ_INT(newest_offer(n, INT64_MIN, 2, "min", 3), 0);
	CHECK_EQ_INT(newest_offer(n, -1, 0, "m1", 2), 0);
	CHECK_EQ_INT(newest_sorted(n, &items), 2);
	CHECK_EQ_STR(items[0].body, "m1");
	CHECK_EQ_STR(items[1].body, "m5");
	newest_destroy(n);
}

static void test_newest_copies(void)
{
	struct newest *n = newest_create(4);
	char src[16] = "hello";
	CHECK_EQ_INT(newest_offer(n, 1, 1, src, 5), 0);
	memcpy(src, "WORLD", 5);
	/* a body with a NUL inside and one of length 0 */
	CHECK_EQ_INT(newest_offer(n, 2, 1, "a\0b", 3), 0);
	CHECK_EQ_INT(newest_offer(n, 3, 1, src, 0), 0);
	/* not NUL-terminated in the source: only len bytes are taken */
	char raw[4] = {'x', 'y', 'z', 'w'};
	CHECK_EQ_INT(newest_offer(n, 4, 1, raw, 3), 0);
	raw[0] = 'Q';
	const struct newest_item *items = NULL;
	CHECK_EQ_INT(newest_sorted(n, &items), 4);
	CHECK_EQ_STR(items[0].body, "xyz");
	CHECK_EQ_INT(items[0].len, 3);
	CHECK(items[0].body != raw);
	CHECK(items[1].body != NULL && items[1].len == 0 && items[1].body[0] == '\0');
	CHECK(items[2].len == 3 && memcmp(items[2].body, "a\0b", 4) == 0);
	CHECK_EQ_STR(items[3].body, "hello");
	CHECK(items[3].body != src);
	CHECK_EQ_INT(items[3].body[items[3].len], '\0');
	newest_destroy(n);
}

static void test_newest_done_below(void)
{
	struct newest *n = newest_create(3);
	CHECK(!newest_done_below(n, INT64_MIN));
	CHECK(newest_takes(n, INT64_MIN, 0)); /* not full: anything */
	CHECK_EQ_INT(newest_offer(n, 20, 1, "a", 1), 0);
	CHECK_EQ_INT(newest_offer(n, 30, 2, "b", 1), 0);
	CHECK(!newest_done_below(n, INT64_MIN)); /* not full yet */
	CHECK(!newest_done_below(n, 0));
	CHECK_EQ_INT(newest_offer(n, 10, 3, "c", 1), 0);
	/* full; oldest kept ts is 10 */
	CHECK(newest_done_below(n, INT64_MIN));
	CHECK(newest_done_below(n, 9));
	CHECK(!newest_done_below(n, 10)); /* a ts-10 reading with a larger order could still enter */
	CHECK(!newest_done_below(n, 11));
	CHECK(!newest_done_below(n, INT64_MAX));
	CHECK_EQ_INT(newest_offer(n, 25, 4, "d", 1), 0); /* oldest now 20 */
	CHECK(newest_done_below(n, 19));
	CHECK(!newest_done_below(n, 20));
	CHECK(!newest_takes(n, 5, 5));
	CHECK(!newest_takes(n, 20, 1)); /* the oldest kept itself: not newer than it */
	CHECK(newest_takes(n, 20, 2));
	CHECK_EQ_INT(newest_offer(n, 5, 5, "e", 1), 0); /* too old: no change */
	CHECK(newest_done_below(n, 19));
	CHECK(!newest_done_below(n, 20));
	/* equal ts, larger order: enters, pushing out (20, 1) */
	CHECK_EQ_INT(newest_offer(n, 20, 9, "f", 1), 0);
	CHECK(newest_done_below(n, 19));
	CHECK(!newest_done_below(n, 20));
	const struct newest_item *items = NULL;
	CHECK_EQ_INT(newest_sorted(n, &items), 3);
	CHECK_EQ_STR(items[2].body, "f");
	newest_destroy(n);
}

struct offer {
	int64_t ts;
	uint64_t order;
};

static int offer_newer_first(const void *pa, const void *pb)
{
	const struct offer *a = pa, *b = pb;
	if (a->ts != b->ts)
		return a->ts > b->ts ? -1 : 1;
	return a->order > b->order ? -1 : a->order < b->order;
}

static void test_newest_random(void)
{
	enum { N = 2000 };
	static const size_t limits[] = {1, 2, 7, 16, 17, 100, 1999, 2000, 2001, 5000};
	struct offer *all = malloc(N * sizeof(*all)), *pre = malloc(N * sizeof(*pre));
	size_t *perm = malloc(N * sizeof(*perm));
	if (all == NULL || pre == NULL || perm == NULL)
		abort();
	rng_state = 0x5eed0005;
	for (size_t li = 0; li < sizeof(limits) / sizeof(limits[0]); li++) {
		size_t limit = limits[li];
		/* unique orders in random sequence, ts from a narrow range: many equal ts */
		for (size_t i = 0; i < N; i++)
			perm[i] = i;
		shuffle(perm, N);
		for (size_t i = 0; i < N; i++)
			all[i] = (struct offer){(int64_t)rnd_below(li % 2 ? 50 : 600) - 100,
						(uint64_t)perm[i] * 1024};
		struct newest *n = newest_create(limit);
		int wrong_done = 0;
		for (size_t i = 0; i < N; i++) {
			char body[48];
			int len = snprintf(body, sizeof(body), "%" PRId64 ":%" PRIu64, all[i].ts,
					   all[i].order);
			CHECK_EQ_INT(newest_offer(n, all[i].ts, all[i].order, body, (size_t)len), 0);
			if (i % 97 == 0 || i == N - 1) {
				/* done_below against the brute-force oldest kept */
				size_t k = i + 1;
				memcpy(pre, all, k * sizeof(*pre));
				qsort(pre, k, sizeof(*pre), offer_newer_first);
				if (k < limit) {
					wrong_done += newest_done_below(n, INT64_MIN);
				} else {
					int64_t oldest = pre[limit - 1].ts;
					wrong_done += !newest_done_below(n, oldest - 1);
					wrong_done += newest_done_below(n, oldest);
					wrong_done += newest_done_below(n, oldest + 1);
				}
			}
		}
		CHECK_EQ_INT(wrong_done, 0);
		memcpy(pre, all, N * sizeof(*pre));
		qsort(pre, N, sizeof(*pre), offer_newer_first);
		const struct newest_item *items = NULL;
		size_t k = newest_sorted(n, &items);
		size_t want = limit < N ? limit : N;
		CHECK_EQ_INT(k, want);
		int wrong = 0;
		for (size_t i = 0; i < k && i < want; i++) {
			char body[48];
			int len = snprintf(body, sizeof(body), "%" PRId64 ":%" PRIu64, pre[i].ts,
					   pre[i].order);
			if (items[i].ts != pre[i].ts || items[i].order != pre[i].order ||
			    items[i].len != (size_t)len || strcmp(items[i].body, body) != 0)
				wrong++;
		}
		if (wrong)
			fprintf(stderr, "  limit %zu: %d items wrong\n", limit, wrong);
		CHECK_EQ_INT(wrong, 0);
		newest_destroy(n);
	}
	free(all);
	free(pre);
	free(perm);
}

int main(void)
{
	RUN(test_span_of);
	RUN(test_entry_layout);
	RUN(test_packed_layout);
	/* the batch's grouping and splitting, in each format */
	for (fmt = CHUNK_FMT_FIXED; fmt <= CHUNK_FMT_PACKED; fmt++) {
		RUN(test_round_trip);
		RUN(test_empty_bodies);
		RUN(test_split_records);
		RUN(test_split_body);
		RUN(test_emit_stops);
		RUN(test_reset_reuse);
		RUN(test_many_groups);
		RUN(test_borrowed);
		RUN(test_check);
	}
	RUN(test_packed_damaged);
	RUN(test_bare);
	RUN(test_iter_damaged);
	RUN(test_newest_limit0);
	RUN(test_newest_basic);
	RUN(test_newest_ties);
	RUN(test_newest_copies);
	RUN(test_newest_done_below);
	RUN(test_newest_random);
	HARNESS_EXIT();
}
