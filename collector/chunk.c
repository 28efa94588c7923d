/*
 * chunk.c - per-device reading chunks: format and grouping (see chunk.h).
 */
#include "chunk.h"

#include "sitepulse/buf.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/grow.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(SP_REC_KIND_COUNT <= 32, "a chunk's kinds are a 32-bit mask (chunk_kind_bit)");

int64_t chunk_span_of(int64_t ts)
{
	int64_t q = ts / CHUNK_SPAN_MS;
	return ts % CHUNK_SPAN_MS < 0 ? q - 1 : q;
}

/* ---------------------------------------------------------------- byte order */

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* ------------------------------------------------- varints (PACKED meta) */

static unsigned char *put_varint(unsigned char *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*p++ = (unsigned char)v;
	return p;
}

/* A signed difference, as a small unsigned number either way (0, -1, 1, -2 -> 0, 1, 2, 3). */
static uint64_t zigzag(uint64_t delta)
{
	return (delta << 1) ^ (uint64_t)-(int64_t)(delta >> 63);
}

static uint64_t unzigzag(uint64_t z)
{
	return (z >> 1) ^ (uint64_t)-(int64_t)(z & 1);
}

/* Reads a varint of at most `bits` bits at *pos. False if it runs past end or is longer. */
static bool get_varint(const unsigned char *p, size_t end, size_t *pos, int bits, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < bits && *pos < end; shift += 7) {
		unsigned char c = p[(*pos)++];
		if (shift == 63 && c > 1)
			return false; /* a 64-bit varint's tenth byte holds one bit */
		v |= (uint64_t)(c & 0x7f) << shift;
		if (c < 0x80) {
			*out = v;
			return bits == 64 || v >> bits == 0;
		}
	}
	return false;
}

/* ---------------------------------------------------------------- reading */

bool chunk_bare_ok(uint32_t kind, const char *body, size_t len)
{
	/* the head is put back from the kind: it must name one, and the tail follow the head */
	return kind < SP_REC_KIND_COUNT && len > 0 && (body[0] == ',' || body[0] == '}');
}

int chunk_iter_init(struct chunk_iter *it, int fmt, const void *meta, size_t meta_len,
		    const char *body, size_t body_len)
{
	memset(it, 0, sizeof(*it));
	if ((meta_len > 0 && meta == NULL) || (body_len > 0 && body == NULL))
		return SP_EINVAL;
	it->fmt = fmt;
	it->meta = meta;
	it->meta_len = meta_len;
	it->body = body;
	it->body_len = body_len;
	if (fmt == CHUNK_FMT_FIXED) {
		if (meta_len % CHUNK_ENTRY_SIZE != 0)
			return SP_EINVAL;
		it->n = meta_len / CHUNK_ENTRY_SIZE;
		return 0;
	}
	if (fmt != CHUNK_FMT_PACKED)
		return SP_EINVAL;
	/* every varint ends in a byte below 0x80, and an entry is five of them */
	size_t ends = 0;
	for (size_t i = 0; i < meta_len; i++)
		ends += it->meta[i] < 0x80;
	if (ends % 5 != 0 || (meta_len > 0 && it->meta[meta_len - 1] >= 0x80))
		return SP_EINVAL;
	it->n = ends / 5;
	return 0;
}

/* The next entry's fields; false if the meta is damaged there. */
static bool next_entry(struct chunk_iter *it, struct chunk_rec *out, uint32_t *len,
		       uint32_t *kind)
{
	if (it->fmt == CHUNK_FMT_FIXED) {
		const unsigned char *e = it->meta + it->i * CHUNK_ENTRY_SIZE;
		out->ts = (int64_t)get_u64(e);
		out->seq = (int64_t)get_u64(e + 8);
		out->agent_id = (int64_t)get_u64(e + 16);
		*len = get_u32(e + 24);
		*kind = get_u32(e + 28);
		return true;
	}
	uint64_t dts, dseq, dagent, l, k;
	if (!get_varint(it->meta, it->meta_len, &it->moff, 64, &dts) ||
	    !get_varint(it->meta, it->meta_len, &it->moff, 64, &dseq) ||
	    !get_varint(it->meta, it->meta_len, &it->moff, 64, &dagent) ||
	    !get_varint(it->meta, it->meta_len, &it->moff, 32, &l) ||
	    !get_varint(it->meta, it->meta_len, &it->moff, 32, &k))
		return false;
	/* unsigned arithmetic: deltas wrap as the writer's did */
	it->ts += unzigzag(dts);
	it->seq += unzigzag(dseq);
	it->agent += unzigzag(dagent);
	out->ts = (int64_t)it->ts;
	out->seq = (int64_t)it->seq;
	out->agent_id = (int64_t)it->agent;
	*len = (uint32_t)l;
	*kind = (uint32_t)k;
	return true;
}

int chunk_iter_next(struct chunk_iter *it, struct chunk_rec *out)
{
	if (it->i == it->n)
		return it->off == it->body_len &&
				       (it->fmt == CHUNK_FMT_FIXED || it->moff == it->meta_len)
			       ? 0
			       : SP_EINVAL;
	uint32_t len32, kind;
	struct chunk_rec e;
	if (!next_entry(it, &e, &len32, &kind))
		return SP_EINVAL;
	size_t len = len32;
	size_t sep = it->i > 0 ? 1 : 0;
	if (sep && (it->off >= it->body_len || it->body[it->off] != ','))
		return SP_EINVAL;
	if (len > it->body_len - it->off - sep)
		return SP_EINVAL;
	/* a chunk without body bytes may come without a body at all (NULL): no arithmetic on it */
	const char *body = it->body ? it->body + it->off + sep : "";
	bool bare = (kind & CHUNK_BARE) != 0;
	if (bare) {
		kind &= ~CHUNK_BARE;
		if (!chunk_bare_ok(kind, body, len))
			return SP_EINVAL;
	}
	out->ts = e.ts;
	out->seq = e.seq;
	out->agent_id = e.agent_id;
	out->kind = (int)kind;
	out->body = body;
	out->len = len;
	out->bare = bare;
	it->off += sep + len;
	it->i++;
	return 1;
}

bool chunk_check(int fmt, const void *meta, size_t meta_len, const char *body, size_t body_len)
{
	struct chunk_iter it;
	struct chunk_rec rec;
	int got;
	if (chunk_iter_init(&it, fmt, meta, meta_len, body, body_len) || it.n > CHUNK_MAX_RECORDS)
		return false;
	while ((got = chunk_iter_next(&it, &rec)) == 1)
		;
	return got == 0;
}

int chunk_rec_json(const struct chunk_rec *r, const char *dev, struct sp_buf *out)
{
	int rc;
	if (r->bare && (rc = sp_encode_record_head(out, (enum sp_rec_kind)r->kind, dev, r->ts)))
		return rc;
	return sp_buf_append(out, r->body, r->len);
}

/* ---------------------------------------------------------------- writing */

/* A reading held by the batch: its body borrowed, or copied into the bodies buffer. */
struct held {
	int64_t ts, seq, agent_id;
	const char *borrowed;   /* NULL: the body is at body_off in the bodies buffer */
	size_t body_off;
	uint32_t len;
	uint32_t kind;        /* as the entry holds it: with CHUNK_BARE */
	uint32_t next;        /* next reading of the same group, or NONE */
};

/* The readings of one (device, span), as a list through held.next. */
struct group {
	int64_t device_id, span;
	uint32_t head, tail;
};

#define NONE UINT32_MAX
/* a reset hands back what a burst grew beyond these */
#define KEEP_HELD 8192
#define KEEP_BYTES (2u << 20)
/* ... after this many resets in a row that did not need them (not after every big batch) */
#define SHRINK_AFTER 64

struct chunk_batch {
	struct held *held;
	size_t nheld, held_cap;
	struct sp_buf bodies;
	struct group *groups;
	size_t ngroups, groups_cap;
	uint32_t *slots;      /* open addressing: group index + 1, 0 = empty */
	size_t nslots;        /* a power of two, kept above twice ngroups */
	struct sp_buf meta, body;   /* the chunk being emitted */
	unsigned quiet_resets;      /* consecutive resets with at most KEEP_HELD readings */
};

struct chunk_batch *chunk_batch_create(void)
{
	struct chunk_batch *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->bodies = (struct sp_buf)SP_BUF_INIT(0);
	b->meta = (struct sp_buf)SP_BUF_INIT(0);
	b->body = (struct sp_buf)SP_BUF_INIT(0);
	return b;
}

void chunk_batch_destroy(struct chunk_batch *b)
{
	if (b == NULL)
		return;
	free(b->held);
	free(b->groups);
	free(b->slots);
	sp_buf_free(&b->bodies);
	sp_buf_free(&b->meta);
	sp_buf_free(&b->body);
	free(b);
}

static size_t slot_of(int64_t device_id, int64_t span, size_t nslots)
{
	uint64_t h = (uint64_t)device_id * 0x9E3779B97F4A7C15ull ^ (uint64_t)span * 0xC2B2AE3D27D4EB4Full;
	h ^= h >> 29;
	return (size_t)h & (nslots - 1);
}

/* Fills an empty table of n slots (a power of two) with every group at its position. */
static void index_groups(const struct chunk_batch *b, uint32_t *slots, size_t n)
{
	for (size_t g = 0; g < b->ngroups; g++) {
		size_t i = slot_of(b->groups[g].device_id, b->groups[g].span, n);
		while (slots[i])
			i = (i + 1) & (n - 1);
		slots[i] = (uint32_t)g + 1;
	}
}

static int grow_slots(struct chunk_batch *b)
{
	size_t n = b->nslots ? b->nslots * 2 : 256;
	uint32_t *slots = calloc(n, sizeof(*slots));
	if (slots == NULL)
		return SP_ENOMEM;
	index_groups(b, slots, n);
	free(b->slots);
	b->slots = slots;
	b->nslots = n;
	return 0;
}

/* The group of (device_id, span), created if new; NULL on no memory. */
static struct group *find_group(struct chunk_batch *b, int64_t device_id, int64_t span)
{
	if ((b->ngroups + 1) * 2 > b->nslots && grow_slots(b))
		return NULL;
	size_t i = slot_of(device_id, span, b->nslots);
	for (; b->slots[i]; i = (i + 1) & (b->nslots - 1)) {
		struct group *g = &b->groups[b->slots[i] - 1];
		if (g->device_id == device_id && g->span == span)
			return g;
	}
	struct group *p = sp_grow(b->groups, &b->groups_cap, b->ngroups + 1, sizeof(*p), 64);
	if (p == NULL)
		return NULL;
	b->groups = p;
	struct group *g = &b->groups[b->ngroups];
	*g = (struct group){device_id, span, NONE, NONE};
	b->slots[i] = (uint32_t)++b->ngroups;
	return g;
}

static int add(struct chunk_batch *b, int64_t device_id, const struct chunk_rec *r, bool copy)
{
	if (r->len > UINT32_MAX || b->nheld >= NONE - 1)
		return SP_ENOMEM;
	struct held *p = sp_grow(b->held, &b->held_cap, b->nheld + 1, sizeof(*p), 256);
	if (p == NULL)
		return SP_ENOMEM;
	b->held = p;
	size_t off = b->bodies.len;
	if (copy && sp_buf_append(&b->bodies, r->body, r->len))
		return SP_ENOMEM;
	struct group *g = find_group(b, device_id, chunk_span_of(r->ts));
	if (g == NULL) {
		if (copy) {
			b->bodies.len = off;
			b->bodies.data[off] = '\0';
		}
		return SP_ENOMEM;
	}
	uint32_t idx = (uint32_t)b->nheld++;
	uint32_t kind = (uint32_t)r->kind | (r->bare ? CHUNK_BARE : 0);
	b->held[idx] = (struct held){r->ts, r->seq, r->agent_id, copy ? NULL : r->body, off,
				     (uint32_t)r->len, kind, NONE};
	if (g->tail == NONE)
		g->head = idx;
	else
		b->held[g->tail].next = idx;
	g->tail = idx;
	return 0;
}

int chunk_batch_add(struct chunk_batch *b, int64_t device_id, const struct chunk_rec *r)
{
	return add(b, device_id, r, true);
}

int chunk_batch_add_borrowed(struct chunk_batch *b, int64_t device_id, const struct chunk_rec *r)
{
	return add(b, device_id, r, false);
}

size_t chunk_batch_count(const struct chunk_batch *b)
{
	return b->nheld;
}

size_t chunk_batch_body_bytes(const struct chunk_batch *b)
{
	return b->bodies.len;
}

static int by_device_span(const void *pa, const void *pb)
{
	const struct group *a = pa, *b = pb;
	if (a->device_id != b->device_id)
		return a->device_id < b->device_id ? -1 : 1;
	return a->span < b->span ? -1 : a->span > b->span;
}

/* Writes out the chunk built so far in b->meta / b->body. */
static int flush_chunk(struct chunk_batch *b, int64_t device_id, int64_t ts_min, int64_t ts_max,
		       size_t n, uint32_t kinds, int fmt, chunk_emit_fn fn, void *ctx)
{
	struct chunk_out c = {device_id, ts_min, ts_max, n, fmt, b->meta.data, b->meta.len,
			      b->body.data, b->body.len, kinds};
	int rc = fn(ctx, &c);
	sp_buf_reset(&b->meta);
	sp_buf_reset(&b->body);
	return rc;
}

/* Appends h's meta entry in format fmt; prev is the entry before it in the chunk (or NULL). */
static int put_entry(struct sp_buf *meta, int fmt, const struct held *h, const struct held *prev)
{
	unsigned char e[CHUNK_ENTRY_SIZE > CHUNK_PACKED_MAX ? CHUNK_ENTRY_SIZE : CHUNK_PACKED_MAX];
	unsigned char *o = e;
	if (fmt == CHUNK_FMT_FIXED) {
		put_u64(e, (uint64_t)h->ts);
		put_u64(e + 8, (uint64_t)h->seq);
		put_u64(e + 16, (uint64_t)h->agent_id);
		put_u32(e + 24, h->len);
		put_u32(e + 28, h->kind);
		o = e + CHUNK_ENTRY_SIZE;
	} else {
		uint64_t ts = prev ? (uint64_t)prev->ts : 0, seq = prev ? (uint64_t)prev->seq : 0,
			 agent = prev ? (uint64_t)prev->agent_id : 0;
		o = put_varint(o, zigzag((uint64_t)h->ts - ts));
		o = put_varint(o, zigzag((uint64_t)h->seq - seq));
		o = put_varint(o, zigzag((uint64_t)h->agent_id - agent));
		o = put_varint(o, h->len);
		o = put_varint(o, h->kind);
	}
	return sp_buf_append(meta, e, (size_t)(o - e));
}

static int emit_group(struct chunk_batch *b, const struct group *g, int fmt, chunk_emit_fn fn,
		      void *ctx)
{
	size_t n = 0;
	int64_t ts_min = 0, ts_max = 0;
	uint32_t kinds = 0;
	const struct held *prev = NULL;
	int rc;
	for (uint32_t i = g->head; i != NONE; i = b->held[i].next) {
		const struct held *h = &b->held[i];
		if (n > 0 && (n == CHUNK_MAX_RECORDS || b->body.len + 1 + h->len > CHUNK_MAX_BODY)) {
			if ((rc = flush_chunk(b, g->device_id, ts_min, ts_max, n, kinds, fmt, fn, ctx)))
				return rc;
			n = 0;
			kinds = 0;
			prev = NULL;
		}
		if (put_entry(&b->meta, fmt, h, prev) ||
		    (n > 0 && sp_buf_putc(&b->body, ',')) ||
		    (h->len > 0 && sp_buf_append(&b->body, h->borrowed ? h->borrowed
									 : b->bodies.data + h->body_off,
						 h->len)))
			return SP_ENOMEM;
		if (n == 0 || h->ts < ts_min)
			ts_min = h->ts;
		if (n == 0 || h->ts > ts_max)
			ts_max = h->ts;
		/* the kind a reader will see in the entry (chunk_iter_next): without CHUNK_BARE */
		kinds |= chunk_kind_bit((int)(h->kind & ~CHUNK_BARE));
		n++;
		prev = h;
	}
	return n > 0 ? flush_chunk(b, g->device_id, ts_min, ts_max, n, kinds, fmt, fn, ctx) : 0;
}

int chunk_batch_emit(struct chunk_batch *b, int fmt, chunk_emit_fn fn, void *ctx)
{
	int rc = 0;
	if (b->ngroups == 0)
		return 0;
	/*
	 * In (device, span) order: the chunks' index entries then go in
	 * key order. The hash table indexes groups by position, so it is
	 * rebuilt after the sort (emit is followed by a reset anyway).
	 */
	qsort(b->groups, b->ngroups, sizeof(*b->groups), by_device_span);
	memset(b->slots, 0, b->nslots * sizeof(*b->slots));
	index_groups(b, b->slots, b->nslots);
	sp_buf_reset(&b->meta);
	sp_buf_reset(&b->body);
	for (size_t g = 0; g < b->ngroups && rc == 0; g++)
		rc = emit_group(b, &b->groups[g], fmt, fn, ctx);
	sp_buf_reset(&b->meta);
	sp_buf_reset(&b->body);
	return rc;
}

void chunk_batch_reset(struct chunk_batch *b)
{
	b->quiet_resets = b->nheld > KEEP_HELD ? 0 : b->quiet_resets + 1;
	if (b->held_cap > KEEP_HELD && b->quiet_resets >= SHRINK_AFTER) {
		free(b->held);
		b->held = NULL;
		b->held_cap = 0;
		free(b->groups);
		b->groups = NULL;
		b->groups_cap = 0;
		free(b->slots);
		b->slots = NULL;
		b->nslots = 0;
	} else if (b->nslots) {
		memset(b->slots, 0, b->nslots * sizeof(*b->slots));
	}
	if (b->bodies.cap > KEEP_BYTES)
		sp_buf_free(&b->bodies);
	/* a single huge reading makes the emit buffers that big: do not keep them */
	if (b->meta.cap > KEEP_BYTES)
		sp_buf_free(&b->meta);
	if (b->body.cap > KEEP_BYTES)
		sp_buf_free(&b->body);
	b->nheld = 0;
	b->ngroups = 0;
	sp_buf_reset(&b->bodies);
}
