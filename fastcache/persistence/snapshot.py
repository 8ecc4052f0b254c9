"""Per-shard snapshot files: every live key of a shard at one WAL sequence.

A shard's snapshots live in its directory as ``snap-<seq>.fcs`` (20 digits, so
names sort by sequence), seq being the last WAL sequence the snapshot holds
(0 for a shard that never wrote). A file is a 48-byte header (little endian)::

    magic b"FCSNAP\\0\\0" | version u16 | shard u16 | seq u64 | created_ms u64
    | payload_len u64 | payload xxh3_64 u64 | databases u32

then the payload: one zstd stream of chunks, each a u64 length and a pickled
database chunk as `fastcache.persistence.codec` describes. ``databases`` is
how many databases the writing shard had.

A replica's snapshot has a sidecar ``snap-<seq>.marks`` (persistence/marks.py):
written before the snapshot is renamed into place, read with it, removed with it.

A snapshot is written to ``<name>.tmp``, fsynced, renamed into place and the
directory fsynced, so a file under its final name is always complete.
"""
import os
import re
import struct

import xxhash
import zstandard

from fastcache import log
from fastcache.engine.keyspace import now_ms
from fastcache.persistence import codec, marks
from fastcache.persistence.walfile import fsync_dir

MAGIC = b"FCSNAP\0\0"
VERSION = 1
HEADER = struct.Struct("<8sHHQQQQI")
_CHUNK_LEN = struct.Struct("<Q")
_PIECE = 1 << 24  # largest single read from the decompressor
_NAME = re.compile(r"snap-(\d{20})\.fcs(\.tmp)?\Z")


class SnapshotError(Exception):
    """A snapshot file that cannot be loaded; the message names the file."""


def snapshot_name(seq):
    return "snap-%020d.fcs" % seq


def _scan(shard_dir):
    """[(seq, path, is_tmp)] of the snapshot files in shard_dir."""
    try:
        names = os.listdir(shard_dir)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        m = _NAME.match(name)
        if m is not None:
            found.append((int(m.group(1)), os.path.join(shard_dir, name), m.group(2) is not None))
    return found


def list_snapshots(shard_dir):
    """[(seq, path)] of the complete snapshots in shard_dir, oldest first."""
    return sorted((seq, path) for seq, path, tmp in _scan(shard_dir) if not tmp)


# -- writing ----------------------------------------------------------------------

def write_snapshot(shard_dir, shard, seq, ks, level=1):
    """Save every live key of ks as the snapshot at seq; its path."""
    os.makedirs(shard_dir, exist_ok=True)
    path = os.path.join(shard_dir, snapshot_name(seq))
    tmp = path + ".tmp"
    _remove_if_there(tmp)
    try:
        with open(tmp, "wb") as f:
            created = now_ms()
            f.write(bytes(HEADER.size))  # rewritten once the payload's size and hash are known
            length, checksum = _write_payload(f, ks, created, level)
            f.seek(0)
            f.write(HEADER.pack(MAGIC, VERSION, shard, seq, created, length, checksum,
                                len(ks.dbs)))
            f.flush()
            os.fsync(f.fileno())
        marks.write_sidecar(path, ks.repl_marks)
        os.replace(tmp, path)
    except BaseException:
        _remove_if_there(tmp)
        raise
    fsync_dir(shard_dir)
    return path


def _write_payload(f, ks, now, level):
    """Stream the chunks of every db through zstd into f: (bytes written, xxh3_64)."""
    compressor = zstandard.ZstdCompressor(level=level).compressobj()
    digest = xxhash.xxh3_64()
    length = 0
    for db in ks.dbs:
        for chunk in codec.db_chunks(db, now):
            blob = codec.pack(chunk)
            for piece in (_CHUNK_LEN.pack(len(blob)), blob):
                out = compressor.compress(piece)
                if out:
                    digest.update(out)
                    f.write(out)
                    length += len(out)
    out = compressor.flush()
    digest.update(out)
    f.write(out)
    return length + len(out), digest.intdigest()


def _remove_if_there(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# -- reading ----------------------------------------------------------------------

def _open_checked(path):
    """(open file positioned at the payload, header fields) after checking the
    header's size, magic and version."""
    f = open(path, "rb")
    try:
        raw = f.read(HEADER.size)
        if len(raw) < HEADER.size:
            raise SnapshotError("%s: truncated snapshot header" % path)
        magic, version, shard, seq, created, length, checksum, databases = HEADER.unpack(raw)
        if magic != MAGIC:
            raise SnapshotError("%s: not a fastcache snapshot (bad magic)" % path)
        if version != VERSION:
            raise SnapshotError("%s: unsupported snapshot version %d (this build reads %d)"
                                % (path, version, VERSION))
    except BaseException:
        f.close()
        raise
    return f, {"shard": shard, "seq": seq, "created_ms": created, "payload_len": length,
               "checksum": checksum, "databases": databases}


def read_header(path):
    """The header fields of the snapshot at path as a dict (shard, seq,
    created_ms, payload_len, checksum, databases); SnapshotError for a file
    that is not a snapshot of this version."""
    f, head = _open_checked(path)
    f.close()
    return head


def read_snapshot(path, ks):
    """Load the snapshot at path into ks (whose dbs should be empty); its seq.

    The file is checked whole (size, checksum, database count) before ks is
    touched; keys whose expiry has passed are skipped."""
    f, head = _open_checked(path)
    with f:
        size = os.fstat(f.fileno()).st_size
        expected = HEADER.size + head["payload_len"]
        if size != expected:
            raise SnapshotError("%s: %s: %d bytes, header says %d" % (
                path, "truncated" if size < expected else "trailing data", size, expected))
        payload = f.read(head["payload_len"])
    if xxhash.xxh3_64_intdigest(payload) != head["checksum"]:
        raise SnapshotError("%s: payload checksum mismatch" % path)
    m = _NAME.match(os.path.basename(path))
    if m is not None and int(m.group(1)) != head["seq"]:
        raise SnapshotError("%s: file name says seq %s, header says %d"
                            % (path, int(m.group(1)), head["seq"]))
    if head["databases"] > len(ks.dbs):
        raise SnapshotError("%s: written with %d databases, this server has %d"
                            % (path, head["databases"], len(ks.dbs)))
    try:
        ks.repl_marks = marks.read_sidecar(path)
    except ValueError as exc:
        raise SnapshotError(str(exc)) from None
    try:
        _load_payload(payload, ks)
    except (ValueError, TypeError, zstandard.ZstdError) as exc:
        raise SnapshotError("%s: bad payload: %s" % (path, exc)) from None
    return head["seq"]


def _load_payload(payload, ks):
    reader = zstandard.ZstdDecompressor().stream_reader(payload)
    dbs = ks.dbs
    touched = set()
    while True:
        prefix = _read_exactly(reader, _CHUNK_LEN.size)
        if not prefix:
            break
        if len(prefix) < _CHUNK_LEN.size:
            raise ValueError("chunk length cut short")
        (n,) = _CHUNK_LEN.unpack(prefix)
        blob = _read_exactly(reader, n)
        if len(blob) < n:
            raise ValueError("chunk cut short")
        chunk = codec.unpack(blob)
        dbid = codec.chunk_db(chunk)
        if not 0 <= dbid < len(dbs):
            raise ValueError("chunk names db %d" % dbid)
        codec.load_chunk(chunk, dbs[dbid])
        touched.add(dbid)
    now = now_ms()
    for dbid in touched:
        codec.drop_expired(dbs[dbid], now)


def _read_exactly(reader, n):
    """n bytes from reader, fewer only at the end of the stream. Reads in
    pieces, so a bogus length costs no more memory than the stream holds."""
    parts = []
    have = 0
    while have < n:
        more = reader.read(min(n - have, _PIECE))
        if not more:
            break
        parts.append(more)
        have += len(more)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _clear(ks):
    ks.repl_marks = None
    for db in ks.dbs:
        db.data = {}
        db.expires = {}
        db.atime = {}
        db.sweep = None


def newest_valid(shard_dir, ks):
    """Load the newest snapshot that reads cleanly into ks: (seq, path), or
    (0, None) when there is none. A bad one is logged and the next older tried."""
    for seq, path in reversed(list_snapshots(shard_dir)):
        try:
            return read_snapshot(path, ks), path
        except (SnapshotError, OSError) as exc:
            log.warning("Skipping snapshot: %s" % exc)
            _clear(ks)
    return 0, None


def remove_older(shard_dir, seq):
    """Delete the snapshots before seq, and leftover .tmp files up to seq (a
    later one may still be being written)."""
    for found, path, tmp in _scan(shard_dir):
        if found < seq or (tmp and found <= seq):
            _remove_if_there(path)
            if not tmp:
                marks.remove_sidecar(path)
