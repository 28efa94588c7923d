"""
chunkfmt.py - the collector's stored chunk format (collector/chunk.h,
docs/internals/storage.md) read in Python: the one decoder of it that the
integration tests (sptest.db_chunk_records) and the benchmark
(bench/benchlib.chunk_agent_seqs) share.
"""
import json
import struct

# reading_chunks.fmt 0: one entry of 32 bytes, little-endian
CHUNK_ENTRY = struct.Struct("<qqqII")  # ts, seq, agent_id, body length (bytes), kind
CHUNK_FMT_FIXED, CHUNK_FMT_PACKED = 0, 1  # reading_chunks.fmt
CHUNK_BARE = 0x100  # in an entry's kind: the body is the record's canonical tail
REC_KINDS = ("lift", "station", "port", "session", "fault")  # enum sp_rec_kind


def meta_entries(meta, fmt):
    """The entries (ts, seq, agent_id, length, kind) of a chunk's meta, or None
    if it is not whole entries of its format. FIXED: 32-byte entries. PACKED:
    five LEB128 varints per entry, the first three zigzag deltas from the entry
    before (from 0), 64-bit wrapping."""
    if fmt == CHUNK_FMT_FIXED:
        if len(meta) % CHUNK_ENTRY.size:
            return None
        return list(CHUNK_ENTRY.iter_unpack(meta))
    if fmt != CHUNK_FMT_PACKED:
        return None
    vals, v, shift = [], 0, 0
    for b in meta:
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            vals.append(v)
            v, shift = 0, 0
        elif shift > 63:
            return None
    if shift or len(vals) % 5:
        return None
    out, prev = [], [0, 0, 0]
    for i in range(0, len(vals), 5):
        for j in range(3):
            z = vals[i + j]
            prev[j] = (prev[j] + ((z >> 1) ^ -(z & 1))) % (1 << 64)
        signed = [x - (1 << 64) if x >= 1 << 63 else x for x in prev]
        out.append((signed[0], signed[1], signed[2], vals[i + 3], vals[i + 4]))
    return out


def reading_json(text, kind, dev, ts):
    """A reading's JSON from its stored body: as it is, or, for a bare entry
    (kind with CHUNK_BARE), its head {"t":KIND,"dev":DEV,"ts":TS put back
    before the tail as the collector does. Returns (kind, json text), or None
    for a bare entry that cannot be read back (unknown kind, no device, not a
    tail)."""
    if not kind & CHUNK_BARE:
        return kind, text
    kind &= ~CHUNK_BARE
    if kind >= len(REC_KINDS) or dev is None or text[:1] not in (",", "}"):
        return None
    return kind, '{"t":%s,"dev":%s,"ts":%d%s' % (json.dumps(REC_KINDS[kind]),
                                                 json.dumps(dev, ensure_ascii=False), ts, text)
