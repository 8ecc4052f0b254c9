"""Replication frames: how a primary ships one shard's mutations to its replicas.

A frame is a 45-byte header (little endian) and a payload::

    magic b"FCRF" | version u8 | kind u8 | flags u8 | shard u16 | first_seq u64
    | last_seq u64 | count u32 | raw_len u32 | wire_len u32 | checksum u64

- ``flags`` bit 0 (FLAG_ZSTD): the payload on the wire is one zstd frame that
  inflates to ``raw_len`` bytes; without it the payload is sent as is and
  ``wire_len == raw_len``. The encoder compresses only when that makes it smaller.
- ``checksum`` is xxh3-64 of the wire payload, seeded with xxh3-64 of the 37
  header bytes before it, so a damaged sequence or shard number is caught too,
  not just a damaged payload.
- A raw payload is ``count`` items, each a u32 length and its bytes.

Kinds:

- RECORDS (1): ``count`` mutation records with the sequences first_seq..last_seq,
  one after the other; each item is a WAL record payload
  (`fastcache.persistence.walfile.encode_payload`: db and argv).
- SNAPSHOT_CHUNK (2): part of a full resync. Each item is one opaque snapshot
  chunk (a packed database chunk, `fastcache.persistence.codec`); first_seq ==
  last_seq == the sequence the snapshot was taken at.
- SNAPSHOT_END (3): the snapshot at first_seq (== last_seq) is complete; live
  RECORDS frames from first_seq + 1 follow. No items.
- HEARTBEAT (4): keep-alive carrying the shard's newest sequence in first_seq
  (== last_seq), so a replica knows how far behind it is. No items.
"""
import struct

import zstandard
from xxhash import xxh3_64_intdigest

from fastcache.persistence.walfile import decode_payload, encode_payload, py_encode_payload

MAGIC = b"FCRF"
VERSION = 1

RECORDS = 1
SNAPSHOT_CHUNK = 2
SNAPSHOT_END = 3
HEARTBEAT = 4
KIND_NAMES = {RECORDS: "records", SNAPSHOT_CHUNK: "snapshot-chunk",
              SNAPSHOT_END: "snapshot-end", HEARTBEAT: "heartbeat"}

FLAG_ZSTD = 1

_FIELDS = struct.Struct("<4sBBBHQQIII")   # the header up to the checksum
_CHECKSUM = struct.Struct("<Q")
HEADER_SIZE = _FIELDS.size + _CHECKSUM.size
_KIND_AT = 4 + 1                         # offset of the kind
_SEQS_AT = 4 + 1 + 1 + 1 + 2             # offset of first_seq, last_seq
_SEQS = struct.Struct("<QQ")
ITEM_LEN = struct.Struct("<I")

# Default bound on a frame's payload: room for one record holding a 512 MB
# argument (proto-max-bulk-len), while a garbage length still cannot make a
# decoder buffer or inflate without limit.
MAX_PAYLOAD = (1 << 30)
# zstd's own frame overhead means payloads this short never shrink.
_MIN_COMPRESS = 32


class FrameError(Exception):
    """A byte stream that is not a valid run of frames; the link must be dropped."""


def pack_items(items):
    """The raw payload of items: each a u32 length, then its bytes."""
    parts = []
    pack = ITEM_LEN.pack
    for item in items:
        parts.append(pack(len(item)))
        parts.append(item)
    return b"".join(parts)


def py_encode_entries(entries, pos, db, max_count, max_bytes, force):
    """(items, count, pos, db): the records of a journal's entries (argvs, with an
    int wherever the db changes; db is the one in force at pos) from pos on, as a
    RECORDS frame's items: at most max_count records and max_bytes of items, except
    that force takes the first record however large. The pos and db returned are
    where the next call goes on (fastcache._native.encode_entries is its C twin)."""
    parts = []
    count = total = 0
    n = len(entries)
    while pos < n and count < max_count:
        item = entries[pos]
        if isinstance(item, int):
            db = item
            pos += 1
            continue
        payload = py_encode_payload(db, item)
        size = 4 + len(payload)
        if total + size > max_bytes and not (count == 0 and force):
            break
        parts.append(ITEM_LEN.pack(len(payload)))
        parts.append(payload)
        total += size
        count += 1
        pos += 1
    return b"".join(parts), count, pos, db


try:
    from fastcache._native import encode_entries
except ImportError:  # built without the extension
    encode_entries = py_encode_entries


def header_kind(frame_bytes):
    """The kind of an encoded frame."""
    return frame_bytes[_KIND_AT]


def header_seqs(frame_bytes):
    """(first_seq, last_seq) read from an encoded frame's header."""
    return _SEQS.unpack_from(frame_bytes, _SEQS_AT)


class FrameEncoder:
    """Builds frames, compressing payloads with one reused zstd context (level None: never).

    Like the zstd context it holds, an encoder is for one thread."""

    __slots__ = ("_compress",)

    def __init__(self, level=None):
        self._compress = None if level is None else zstandard.ZstdCompressor(level=level).compress

    def encode(self, kind, shard, first_seq, last_seq, count, raw):
        """One frame around an already packed raw payload."""
        if len(raw) > MAX_PAYLOAD:    # no decoder would take it: fail here, not on the replica
            raise ValueError("frame payload of %d bytes exceeds the %d byte limit"
                             % (len(raw), MAX_PAYLOAD))
        wire, flags = raw, 0
        if self._compress is not None and len(raw) >= _MIN_COMPRESS:
            packed = self._compress(raw)
            if len(packed) < len(raw):
                wire, flags = packed, FLAG_ZSTD
        fields = _FIELDS.pack(MAGIC, VERSION, kind, flags, shard, first_seq, last_seq,
                              count, len(raw), len(wire))
        checksum = xxh3_64_intdigest(wire, xxh3_64_intdigest(fields))
        return b"".join((fields, _CHECKSUM.pack(checksum), wire))

    def records(self, shard, first_seq, records):
        """A RECORDS frame of (db, argv) pairs numbered from first_seq."""
        if not records:
            raise ValueError("a records frame needs at least one record")
        raw = pack_items([encode_payload(db, argv) for db, argv in records])
        return self.encode(RECORDS, shard, first_seq, first_seq + len(records) - 1,
                           len(records), raw)

    def snapshot_chunk(self, shard, seq, chunks):
        """A SNAPSHOT_CHUNK frame carrying the given opaque chunks of the snapshot at seq."""
        if not chunks:
            raise ValueError("a snapshot chunk frame needs at least one chunk")
        return self.encode(SNAPSHOT_CHUNK, shard, seq, seq, len(chunks), pack_items(chunks))

    def snapshot_end(self, shard, seq):
        return self.encode(SNAPSHOT_END, shard, seq, seq, 0, b"")

    def heartbeat(self, shard, seq):
        return self.encode(HEARTBEAT, shard, seq, seq, 0, b"")


def encode_frame(kind, shard, first_seq, records, compress_level=None):
    """One frame of the given kind; records are its items: (db, argv) pairs for
    RECORDS, chunk bytes for SNAPSHOT_CHUNK, nothing for SNAPSHOT_END and
    HEARTBEAT (first_seq is then their sequence).

    Builds a fresh encoder each call; a stream of frames should hold a
    FrameEncoder (the Batcher does)."""
    encoder = FrameEncoder(compress_level)
    if kind == RECORDS:
        return encoder.records(shard, first_seq, records)
    if kind == SNAPSHOT_CHUNK:
        return encoder.snapshot_chunk(shard, first_seq, records)
    if kind in (SNAPSHOT_END, HEARTBEAT):
        if records:
            raise ValueError("a %s frame carries no items" % KIND_NAMES[kind])
        return encoder.encode(kind, shard, first_seq, first_seq, 0, b"")
    raise ValueError("unknown frame kind %r" % (kind,))


class Frame:
    """One decoded frame; ``payload`` is the raw (inflated) payload."""

    __slots__ = ("kind", "flags", "shard", "first_seq", "last_seq", "count", "payload",
                 "wire_size")

    def __init__(self, kind, flags, shard, first_seq, last_seq, count, payload, wire_size):
        self.kind = kind
        self.flags = flags
        self.shard = shard
        self.first_seq = first_seq
        self.last_seq = last_seq
        self.count = count
        self.payload = payload
        self.wire_size = wire_size      # header included

    @property
    def compressed(self):
        return bool(self.flags & FLAG_ZSTD)

    def items(self):
        """The payload's items, as bytes."""
        payload = self.payload
        try:
            return [payload[a:b] for a, b in _item_spans(payload, self.count)]
        except ValueError as exc:
            raise FrameError(str(exc)) from None

    def records(self, after=None):
        """[(seq, db, argv)] of a RECORDS frame, leaving out seqs <= after: a replica
        whose watermark falls inside the frame passes it here."""
        if self.kind != RECORDS:
            raise FrameError("a %s frame holds no records" % KIND_NAMES[self.kind])
        if after is None:
            after = self.first_seq - 1
        try:
            return decode_records(self.payload, self.count, self.first_seq, after)
        except ValueError as exc:
            raise FrameError(str(exc)) from None

    def __repr__(self):
        return "<Frame %s shard=%d seqs=%d..%d count=%d %d bytes%s>" % (
            KIND_NAMES.get(self.kind, self.kind), self.shard, self.first_seq, self.last_seq,
            self.count, len(self.payload), " zstd" if self.compressed else "")


def _item_spans(payload, count):
    """[(start, end)] of the count items of a raw payload; ValueError if they do not fill it."""
    spans = []
    end = len(payload)
    pos = 0
    unpack = ITEM_LEN.unpack_from
    for _ in range(count):
        if end - pos < 4:
            raise ValueError("frame payload ends inside an item length")
        (n,) = unpack(payload, pos)
        pos += 4
        if end - pos < n:
            raise ValueError("frame payload ends inside an item")
        spans.append((pos, pos + n))
        pos += n
    if pos != end:
        raise ValueError("frame payload has %d bytes after its %d items" % (end - pos, count))
    return spans


def py_decode_records(payload, count, first_seq, after):
    """[(seq, db, argv)] of the records past after in a RECORDS payload of count items
    numbered from first_seq; ValueError when it is malformed (fastcache._native.
    decode_records is its C twin)."""
    out = []
    for seq, (a, b) in enumerate(_item_spans(payload, count), first_seq):
        if seq > after:
            try:
                db, argv = decode_payload(payload[a:b])
            except (ValueError, struct.error) as exc:
                raise ValueError("bad record %d in frame: %s" % (seq, exc)) from None
            out.append((seq, db, argv))
    return out


def py_decode_runs(payload, count, first_seq, after):
    """[(seq, db, [argv, ...])]: the records past after in a RECORDS payload, each
    run of consecutive ones in one db as one entry, seq being its first record's
    (fastcache._native.decode_runs is its C twin)."""
    runs = []
    for seq, db, argv in py_decode_records(payload, count, first_seq, after):
        if runs and runs[-1][1] == db:
            runs[-1][2].append(argv)
        else:
            runs.append((seq, db, [argv]))
    return runs


try:
    from fastcache._native import decode_records, decode_runs
except ImportError:  # built without the extension
    decode_records = py_decode_records
    decode_runs = py_decode_runs


class FrameDecoder:
    """Turns a byte stream into Frames, whatever the feeds' boundaries.

    Any damage raises FrameError, and so does every later feed: past a bad
    frame there is no telling where the next one starts, so the link must be
    dropped (frames decoded earlier in the failing feed are lost with it; the
    replica's watermark has not moved past them)."""

    def __init__(self, max_payload=MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buf = bytearray()
        self._decompress = zstandard.ZstdDecompressor().decompress
        self._broken = None

    @property
    def buffered(self):
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data):
        """The frames completed by data, in order."""
        if self._broken is not None:
            raise FrameError(self._broken)
        buf = self._buf
        if buf:
            buf += data
            data = buf
        frames = []
        try:
            pos = self._parse(data, frames)
        except FrameError as exc:
            self._broken = str(exc)
            buf.clear()
            raise
        if data is buf:
            del buf[:pos]
        elif pos < len(data):
            buf += memoryview(data)[pos:]
        return frames

    def _parse(self, data, frames):
        """Append every complete frame in data to frames; the offset after the last."""
        pos = 0
        size = len(data)
        with memoryview(data) as view:     # released before the caller resizes the buffer
            while size - pos >= HEADER_SIZE:
                (magic, version, kind, flags, shard, first, last, count, raw_len,
                 wire_len) = _FIELDS.unpack_from(data, pos)
                if magic != MAGIC:
                    raise FrameError("bad frame magic %r" % magic)
                if version != VERSION:
                    raise FrameError("frame version %d; this fastcache reads version %d"
                                     % (version, VERSION))
                self._check_header(kind, flags, first, last, count, raw_len, wire_len)
                body = pos + HEADER_SIZE
                end = body + wire_len
                if end > size:
                    break
                (checksum,) = _CHECKSUM.unpack_from(data, body - _CHECKSUM.size)
                wire = view[body:end].tobytes()
                seed = xxh3_64_intdigest(view[pos:pos + _FIELDS.size])
                if xxh3_64_intdigest(wire, seed) != checksum:
                    raise FrameError("frame checksum mismatch (seqs %d..%d)" % (first, last))
                payload = self._inflate(wire, raw_len) if flags & FLAG_ZSTD else wire
                frames.append(Frame(kind, flags, shard, first, last, count, payload, end - pos))
                pos = end
        return pos

    def _check_header(self, kind, flags, first, last, count, raw_len, wire_len):
        if kind not in KIND_NAMES:
            raise FrameError("unknown frame kind %d" % kind)
        if flags & ~FLAG_ZSTD:
            raise FrameError("unknown frame flags 0x%02x" % flags)
        if raw_len > self.max_payload or wire_len > self.max_payload:
            raise FrameError("frame payload of %d bytes exceeds the %d byte limit"
                             % (max(raw_len, wire_len), self.max_payload))
        if not flags & FLAG_ZSTD and wire_len != raw_len:
            raise FrameError("uncompressed frame with wire length %d != raw length %d"
                             % (wire_len, raw_len))
        if kind == RECORDS:
            if count == 0 or last - first + 1 != count:
                raise FrameError("records frame of %d records for seqs %d..%d"
                                 % (count, first, last))
        elif first != last:
            raise FrameError("%s frame for seqs %d..%d" % (KIND_NAMES[kind], first, last))
        elif kind == SNAPSHOT_CHUNK:
            if count == 0:
                raise FrameError("snapshot chunk frame without chunks")
        elif count or raw_len:
            raise FrameError("%s frame with a payload" % KIND_NAMES[kind])

    def _inflate(self, wire, raw_len):
        # The content size zstd reads from its own header decides the allocation,
        # so it is checked against raw_len before anything is inflated.
        try:
            if zstandard.frame_content_size(wire) != raw_len:
                raise FrameError("compressed payload does not declare its raw length %d" % raw_len)
            payload = self._decompress(wire)
        except zstandard.ZstdError as exc:
            raise FrameError("bad compressed payload: %s" % exc) from None
        if len(payload) != raw_len:
            raise FrameError("payload inflated to %d bytes, not %d" % (len(payload), raw_len))
        return payload
