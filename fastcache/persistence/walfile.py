"""The WAL's on-disk format: segment names, the file header, and record framing.

A shard's WAL is a run of segment files in its directory, ``wal-<first seq>.log``
(20 digits, so names sort by sequence). Each starts with a 16-byte header::

    magic b"FCWAL\\0\\0\\0" | version u16 | shard u16 | reserved u32

followed by records, each one mutation (little endian)::

    length u32 | head u32 | seq u64 | checksum u64 | payload (length bytes)

- ``head`` is xxh32 of (length, seq): a damaged length is caught before it is trusted, so
  corruption mid-file is never mistaken for a torn tail (which would drop what follows);
- ``checksum`` is xxh3-64 of the payload, seeded with seq;
- the payload is the db number (u16), the argument count (u32), then each argument as a
  u32 length and its bytes.

Sequences are consecutive within a shard, across segments.
"""
import os
import struct

from xxhash import xxh3_64_intdigest, xxh32_intdigest

MAGIC = b"FCWAL\0\0\0"
VERSION = 1
FILE_HEADER = struct.Struct("<8sHHI")
RECORD_HEADER = struct.Struct("<IIQQ")
_HEAD_FIELDS = struct.Struct("<IQ")
_DB_ARGC = struct.Struct("<HI")
_LEN = struct.Struct("<I")
_PREFIX = "wal-"
_SUFFIX = ".log"


class WalFormatError(Exception):
    """A file that is not a WAL segment this version can read."""


def segment_name(first_seq):
    return "%s%020d%s" % (_PREFIX, first_seq, _SUFFIX)


def list_segments(shard_dir):
    """[(first seq, path)] of the shard's segments, oldest first."""
    found = []
    try:
        names = os.listdir(shard_dir)
    except FileNotFoundError:
        return []
    for name in names:
        if name.startswith(_PREFIX) and name.endswith(_SUFFIX):
            digits = name[len(_PREFIX):-len(_SUFFIX)]
            if digits.isdigit():
                found.append((int(digits), os.path.join(shard_dir, name)))
    found.sort()
    return found


def file_header(shard):
    return FILE_HEADER.pack(MAGIC, VERSION, shard, 0)


def py_encode_payload(dbid, argv):
    """A record's payload: u16 db, u32 argc, then each argument's u32 length and bytes
    (fastcache._native.encode_payload is its C twin)."""
    parts = [_DB_ARGC.pack(dbid, len(argv))]
    pack = _LEN.pack
    for arg in argv:
        parts.append(pack(len(arg)))
        parts.append(arg)
    return b"".join(parts)


try:
    from fastcache._native import encode_payload
except ImportError:  # built without the extension
    encode_payload = py_encode_payload


def frame(seq, payload):
    n = len(payload)
    return RECORD_HEADER.pack(n, xxh32_intdigest(_HEAD_FIELDS.pack(n, seq)), seq,
                              xxh3_64_intdigest(payload, seq)) + payload


def encode_record(seq, dbid, argv):
    return frame(seq, encode_payload(dbid, argv))


def encode_records(records):
    """[(seq, db, argv)] framed and joined: the WAL's bytes for them."""
    return b"".join([frame(seq, encode_payload(dbid, argv)) for seq, dbid, argv in records])


def decode_payload(payload):
    """(db, argv) of a record's payload."""
    dbid, argc = _DB_ARGC.unpack_from(payload)
    pos = _DB_ARGC.size
    argv = []
    unpack = _LEN.unpack_from
    for _ in range(argc):
        (n,) = unpack(payload, pos)
        pos += 4
        argv.append(payload[pos:pos + n])
        pos += n
    if pos != len(payload):
        raise ValueError("payload length does not match its arguments")
    return dbid, argv


def py_decode_record(payload, seq):
    """(seq, db, argv) of a record (fastcache._native.decode_record is its C twin)."""
    return (seq,) + decode_payload(payload)


try:
    from fastcache._native import decode_record
except ImportError:  # built without the extension
    decode_record = py_decode_record


class Segment:
    """One segment file read whole: its records, and where and how it goes bad.

    After records() has run, ``end`` is the offset just past the last good
    record and ``problem`` is None, ("torn", offset, bytes) for an incomplete
    or half-written last record, or ("corrupt", offset, reason) for damage
    with data after it."""

    def __init__(self, path, shard=None):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        self.end = FILE_HEADER.size
        self.problem = None
        self.last_seq = None
        data = self.data
        if len(data) < FILE_HEADER.size:
            if MAGIC.startswith(data[:8]):   # created, header not yet written in full
                self.end = 0
                self.problem = ("torn", 0, len(data)) if data else None
                return
            raise WalFormatError("%s is not a fastcache WAL segment" % path)
        magic, version, file_shard, _ = FILE_HEADER.unpack_from(data)
        if magic != MAGIC:
            raise WalFormatError("%s is not a fastcache WAL segment" % path)
        if version != VERSION:
            raise WalFormatError("%s has WAL format version %d; this fastcache reads version %d"
                                 % (path, version, VERSION))
        if shard is not None and file_shard != shard:
            raise WalFormatError("%s belongs to shard %d, not %d" % (path, file_shard, shard))

    def records(self, expect_seq=None):
        """Yield (seq, db, argv) for each good record, in order."""
        data = self.data
        size = len(data)
        pos = self.end
        hsize = RECORD_HEADER.size
        while pos < size:
            if size - pos < hsize:
                self._torn(pos)
                return
            n, head, seq, checksum = RECORD_HEADER.unpack_from(data, pos)
            if head != xxh32_intdigest(_HEAD_FIELDS.pack(n, seq)):
                if not data[pos:].strip(b"\0"):
                    self._torn(pos)        # space allocated but never written
                else:
                    self.problem = ("corrupt", pos, "bad record header")
                return
            body = pos + hsize
            if body + n > size:
                self._torn(pos)
                return
            payload = data[body:body + n]
            if xxh3_64_intdigest(payload, seq) != checksum:
                if body + n == size:
                    self._torn(pos)
                else:
                    self.problem = ("corrupt", pos, "checksum mismatch")
                return
            if expect_seq is not None and seq != expect_seq:
                self.problem = ("corrupt", pos, "sequence %d where %d was due" % (seq, expect_seq))
                return
            try:
                record = decode_record(payload, seq)
            except (ValueError, struct.error) as exc:
                self.problem = ("corrupt", pos, "bad payload: %s" % exc)
                return
            pos = body + n
            self.end = pos
            self.last_seq = seq
            if expect_seq is not None:
                expect_seq += 1
            yield record

    def _torn(self, pos):
        self.problem = ("torn", pos, len(self.data) - pos)


def truncate(path, offset):
    """Cut path to offset bytes, durably."""
    with open(path, "r+b") as f:
        f.truncate(offset)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path):
    """Make a rename or a new file in path durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
