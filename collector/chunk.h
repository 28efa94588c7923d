/*
 * chunk.h - readings stored in per-device chunks: the on-disk format and
 * the grouping of a transaction's records into chunks.
 *
 * One row of `reading_chunks` holds readings of one device from one hour
 * (by the readings' own ts): an index entry per chunk instead of one per
 * reading (the index insert per reading cost ~2 us, half the collector's
 * per-record CPU) and a device's readings together on a few pages (the
 * API's cold reads). The format (docs/internals/storage.md):
 *
 *   meta  BLOB: n entries (ts, seq, agent_id, body length, kind), in the
 *               row's format `fmt` (enum chunk_fmt below): 32 bytes each
 *               (FIXED), or varint deltas (PACKED, what the collector
 *               writes); kind is enum sp_rec_kind, | CHUNK_BARE when the
 *               body is bare
 *   body  TEXT: the n records' bodies joined by ','. A body is the record's
 *               JSON, or, when bare, its canonical tail only
 *               (sp_encode_record_tail): the head `{"t":..,"dev":..,"ts":..`
 *               repeats the entry's kind and ts and the chunk's device, so
 *               the store leaves it out (a quarter of the bytes written)
 *               and chunk_rec_json puts it back when a reading is read.
 *
 * Entries are in storage order (arrival, then compaction keeps it); that
 * order breaks ties between readings with the same ts.
 *
 * Pure code, no SQLite: used by store_sqlite.c, tested directly.
 * Threading: a chunk_batch belongs to one thread (the writer).
 */
#ifndef SP_COLLECTOR_CHUNK_H
#define SP_COLLECTOR_CHUNK_H

#include "sitepulse/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNK_ENTRY_SIZE 32
/* the span of one chunk: its readings' ts lie in one [k * span, (k + 1) * span) */
#define CHUNK_SPAN_MS 3600000LL
/* a chunk grows to this many body bytes or records, then the next one starts */
#define CHUNK_MAX_BODY (32 * 1024)
#define CHUNK_MAX_RECORDS 512
/* in an entry's kind: the body is the record's canonical tail, without its head */
#define CHUNK_BARE 0x100u

/*
 * How a chunk's meta holds its entries (reading_chunks.fmt). FIXED: the
 * 32-byte entries above. PACKED: per entry five varints (LEB128), the
 * first three zigzag deltas from the entry before (from 0 for the first):
 *   ts - prev ts | seq - prev seq | agent_id - prev agent_id | length | kind
 * A device's readings in one chunk share their agent and mostly their
 * message, and lie seconds apart, so an entry takes 6-8 bytes, not 32.
 * The collector writes PACKED; FIXED chunks (written before) stay readable.
 */
enum chunk_fmt { CHUNK_FMT_FIXED = 0, CHUNK_FMT_PACKED = 1 };
/* the longest PACKED entry: three 64-bit varints, a 32-bit length, a kind */
#define CHUNK_PACKED_MAX (3 * 10 + 5 + 2)

/* One reading as a chunk holds it. */
struct chunk_rec {
	int64_t ts;
	int64_t seq;
	int64_t agent_id;
	int kind;             /* enum sp_rec_kind */
	const char *body;     /* not NUL-terminated */
	size_t len;
	bool bare;            /* body is the canonical tail: chunk_rec_json adds the head */
};

/*
 * A chunk's kinds (reading_chunks.kinds, schema 15) are the OR of this bit
 * for each of its readings' kinds, so a read for one kind skips, inside
 * SQLite, the chunks without it. A kind outside 0..31 (only in a damaged or
 * edited whole entry) sets none: no query asks for one (sp_rec_kind_parse).
 */
static inline uint32_t chunk_kind_bit(int kind)
{
	return kind >= 0 && kind < 32 ? 1u << kind : 0;
}

/* The span a ts falls in (floor division: also right for ts < 0). */
int64_t chunk_span_of(int64_t ts);

/* ---------------------------------------------------------------- reading */

struct chunk_iter {
	int fmt;                      /* enum chunk_fmt */
	const unsigned char *meta;
	size_t meta_len, moff;        /* PACKED: where the next entry starts */
	size_t n, i;
	uint64_t ts, seq, agent;      /* PACKED: the entry before, the deltas' base */
	const char *body;
	size_t body_len, off;
};

/*
 * Starts reading a stored chunk of format fmt. 0, or SP_EINVAL when meta is
 * not whole entries (or fmt unknown).
 */
int chunk_iter_init(struct chunk_iter *it, int fmt, const void *meta, size_t meta_len,
		    const char *body, size_t body_len);
/*
 * The next reading: 1 (out filled; out->body points into the chunk's
 * body), 0 at the end, SP_EINVAL when lengths and body disagree (a damaged
 * row: the caller reports it and skips the chunk).
 */
int chunk_iter_next(struct chunk_iter *it, struct chunk_rec *out);

/*
 * Checks a stored chunk whole: whole entries, at most CHUNK_MAX_RECORDS of
 * them, their lengths and the commas covering body exactly, and every bare
 * entry of a known kind with a body that starts as a tail does (',' or '}'). Readers use
 * nothing of a chunk that fails this (not even the readings before the
 * damage), and iterating one that passes never fails.
 */
bool chunk_check(int fmt, const void *meta, size_t meta_len, const char *body, size_t body_len);

/* Whether a bare body of this kind can be read back: a known kind, a tail (',' or '}' first). */
bool chunk_bare_ok(uint32_t kind, const char *body, size_t len);

/*
 * Appends the reading's JSON to out: its body, after the head that a bare
 * body leaves out (sp_encode_record_head, from its kind and ts and dev, the
 * chunk's device). So a bare reading reads back byte for byte as
 * sp_encode_record wrote it whole. 0, SP_ENOMEM or SP_EINVAL (bad kind).
 */
int chunk_rec_json(const struct chunk_rec *r, const char *dev, struct sp_buf *out);

/* Number of readings the chunk says it holds. */
static inline size_t chunk_iter_count(const struct chunk_iter *it)
{
	return it->n;
}

/* ---------------------------------------------------------------- writing */

/* A chunk ready to be written. Pointers valid during the emit callback. */
struct chunk_out {
	int64_t device_id;
	int64_t ts_min, ts_max;
	size_t n;
	int fmt;                 /* how meta holds the entries: enum chunk_fmt */
	const void *meta;
	size_t meta_len;
	const char *body;
	size_t body_len;
	uint32_t kinds;          /* chunk_kind_bit of each reading's kind, OR'ed */
};

typedef int (*chunk_emit_fn)(void *ctx, const struct chunk_out *c);

/*
 * Collects readings (copied) grouped by (device, span); emit writes each
 * group as chunks of at most CHUNK_MAX_BODY bytes / CHUNK_MAX_RECORDS
 * readings (a single larger reading gets a chunk of its own), groups in
 * (device, span) order, readings in the order they were added.
 */
struct chunk_batch;

struct chunk_batch *chunk_batch_create(void);
void chunk_batch_destroy(struct chunk_batch *b);
/* Adds a copy of the reading. 0 or SP_ENOMEM (the batch is unchanged then). */
int chunk_batch_add(struct chunk_batch *b, int64_t device_id, const struct chunk_rec *r);
/* Adds the reading without copying its body, which must stay valid until the next reset. */
int chunk_batch_add_borrowed(struct chunk_batch *b, int64_t device_id, const struct chunk_rec *r);
/* Readings held, and the bytes of the bodies copied into the batch (to bound it). */
size_t chunk_batch_count(const struct chunk_batch *b);
size_t chunk_batch_body_bytes(const struct chunk_batch *b);
/*
 * Calls fn per chunk, its meta in format fmt; stops at and returns fn's
 * first non-zero (or SP_ENOMEM). Keeps the readings.
 */
int chunk_batch_emit(struct chunk_batch *b, int fmt, chunk_emit_fn fn, void *ctx);
/* Forgets the readings; keeps the memory for the next batch (down to a bound). */
void chunk_batch_reset(struct chunk_batch *b);

#endif
