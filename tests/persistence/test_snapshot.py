"""Snapshot files: layout, round trips, expiry, and every way a file can be bad."""
import os
import struct

import pytest
import xxhash
import zstandard

from fastcache import log
from fastcache.engine.context import Context
from fastcache.engine.keyspace import Keyspace, now_ms
from fastcache.persistence import codec, snapshot
from fastcache.persistence.snapshot import (
    HEADER, SnapshotError, list_snapshots, newest_valid, read_header, read_snapshot,
    remove_older, write_snapshot,
)
from tests.persistence.test_codec import FAR, build_samples, observe_all, run


def filled_keyspace(databases=16):
    """Samples of every type in dbs 0 and 5, plain strings in db 15, TTLs here and there."""
    ks = Keyspace(databases)
    build_samples(Context(ks, 0))
    ctx = Context(ks, 5)
    build_samples(ctx)
    run(ctx, "PEXPIREAT", "list", FAR + 1)
    run(ctx, "PEXPIREAT", "str:int", FAR + 2)
    ctx = Context(ks, databases - 1)
    for i in range(100):
        run(ctx, "SET", "plain:%d" % i, "value %d" % i)
    return ks


def empty_of(ks):
    return all(not db.data and not db.expires for db in ks.dbs)


@pytest.fixture
def shard_dir(tmp_path):
    return str(tmp_path / "data" / "shard-3")


def test_round_trip_of_several_dbs(shard_dir):
    ks = filled_keyspace()
    path = write_snapshot(shard_dir, 3, 42, ks)
    assert path == os.path.join(shard_dir, "snap-%020d.fcs" % 42)
    assert os.listdir(shard_dir) == ["snap-%020d.fcs" % 42]
    loaded = Keyspace()
    assert read_snapshot(path, loaded) == 42
    assert observe_all(loaded) == observe_all(ks)
    assert loaded.dirty == 0
    head = read_header(path)
    assert (head["shard"], head["seq"], head["databases"]) == (3, 42, 16)
    assert abs(head["created_ms"] - now_ms()) < 60000
    assert head["payload_len"] == os.path.getsize(path) - HEADER.size


def test_header_layout(shard_dir):
    path = write_snapshot(shard_dir, 7, 9, filled_keyspace(), level=3)
    with open(path, "rb") as f:
        raw = f.read()
    assert raw[:8] == b"FCSNAP\0\0" and HEADER.size == 48
    _, version, shard, seq, _, length, checksum, dbs = struct.unpack("<8sHHQQQQI", raw[:48])
    assert (version, shard, seq, dbs, length) == (1, 7, 9, 16, len(raw) - 48)
    assert checksum == xxhash.xxh3_64_intdigest(raw[48:])


def test_empty_shard(shard_dir):
    path = write_snapshot(shard_dir, 0, 0, Keyspace())
    assert path.endswith("snap-00000000000000000000.fcs")
    ks = Keyspace()
    assert read_snapshot(path, ks) == 0
    assert empty_of(ks)
    assert newest_valid(shard_dir, Keyspace()) == (0, path)


def test_expired_keys_are_skipped_when_writing(shard_dir):
    ks = filled_keyspace()
    ks.dbs[0].expires[b"str:raw"] = 1000  # long past
    ks.dbs[15].expires[b"plain:1"] = now_ms() - 1
    loaded = Keyspace()
    read_snapshot(write_snapshot(shard_dir, 0, 1, ks), loaded)
    assert b"str:raw" not in loaded.dbs[0].data and b"plain:1" not in loaded.dbs[15].data
    assert len(loaded.dbs[15].data) == 99
    assert b"str:raw" in ks.dbs[0].data  # writing changes nothing


def test_keys_expired_since_writing_are_skipped_when_reading(shard_dir, monkeypatch):
    ks = filled_keyspace()
    soon = now_ms() + 3600_000
    ks.dbs[5].expires[b"set:intset"] = soon
    ks.dbs[15].expires[b"plain:7"] = soon
    path = write_snapshot(shard_dir, 0, 1, ks)
    monkeypatch.setattr(snapshot, "now_ms", lambda: soon)
    loaded = Keyspace()
    read_snapshot(path, loaded)
    assert b"set:intset" not in loaded.dbs[5].data and b"set:intset" not in loaded.dbs[5].expires
    assert b"plain:7" not in loaded.dbs[15].data
    assert loaded.dbs[5].expires[b"list"] == FAR + 1


def test_many_chunks_of_every_kind(shard_dir, monkeypatch):
    monkeypatch.setattr(codec, "CHUNK_KEYS", 7)
    ks = filled_keyspace()
    for i in range(50):
        ks.dbs[2].data[b"s%d" % i] = b"v"
        ks.dbs[2].expires[b"s%d" % i] = FAR + i
    loaded = Keyspace()
    read_snapshot(write_snapshot(shard_dir, 0, 5, ks), loaded)
    assert observe_all(loaded) == observe_all(ks)


def test_leftover_tmp_is_replaced_and_dir_created(shard_dir):
    os.makedirs(shard_dir)
    tmp = os.path.join(shard_dir, "snap-%020d.fcs.tmp" % 5)
    with open(tmp, "wb") as f:
        f.write(b"half a snapshot")
    write_snapshot(shard_dir, 0, 5, filled_keyspace())
    assert sorted(os.listdir(shard_dir)) == ["snap-%020d.fcs" % 5]


def test_failed_write_leaves_no_tmp(shard_dir):
    ks = Keyspace()
    ks.dbs[0].data[b"bad"] = object()
    with pytest.raises(TypeError):
        write_snapshot(shard_dir, 0, 1, ks)
    assert os.listdir(shard_dir) == []


def test_fewer_databases_than_the_file_is_an_error(shard_dir):
    path = write_snapshot(shard_dir, 0, 1, filled_keyspace())
    with pytest.raises(SnapshotError, match="16 databases"):
        read_snapshot(path, Keyspace(8))
    ks = Keyspace(32)
    read_snapshot(path, ks)  # more is fine
    assert len(ks.dbs[15].data) == 100


# -- bad files --------------------------------------------------------------------

def _rewrite(path, fn):
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    raw = fn(raw)
    with open(path, "wb") as f:
        f.write(raw)


def _flip_payload_byte(raw):
    raw[HEADER.size + 10] ^= 0xFF
    return raw


def _set_version(raw, version):
    struct.pack_into("<H", raw, 8, version)
    return raw


def _wrong_magic(raw):
    raw[:8] = b"REDIS001"
    return raw


@pytest.mark.parametrize("damage, message", [
    (_flip_payload_byte, "checksum"),
    (lambda raw: raw[:-5], "truncated"),
    (lambda raw: raw[:20], "truncated snapshot header"),
    (lambda raw: raw + b"x", "trailing data"),
    (_wrong_magic, "bad magic"),
    (lambda raw: _set_version(raw, 2), "version 2"),
    (lambda raw: b"", "truncated"),
])
def test_bad_file_names_itself(shard_dir, damage, message):
    path = write_snapshot(shard_dir, 0, 1, filled_keyspace())
    _rewrite(path, damage)
    ks = Keyspace()
    with pytest.raises(SnapshotError, match=message) as info:
        read_snapshot(path, ks)
    assert path in str(info.value)
    assert empty_of(ks)  # the file is checked before anything loads


def test_file_renamed_to_another_seq_is_refused(shard_dir):
    path = write_snapshot(shard_dir, 0, 1, filled_keyspace())
    other = os.path.join(shard_dir, "snap-%020d.fcs" % 2)
    os.rename(path, other)
    with pytest.raises(SnapshotError, match="seq"):
        read_snapshot(other, Keyspace())


def _stream(*blobs):
    return b"".join(struct.pack("<Q", len(b)) + b for b in blobs)


def _forge(shard_dir, seq, stream):
    """A snapshot with a valid header and checksum around a chunk stream."""
    payload = zstandard.ZstdCompressor().compress(stream)
    os.makedirs(shard_dir, exist_ok=True)
    path = os.path.join(shard_dir, "snap-%020d.fcs" % seq)
    with open(path, "wb") as f:
        f.write(HEADER.pack(b"FCSNAP\0\0", 1, 0, seq, 0, len(payload),
                            xxhash.xxh3_64_intdigest(payload), 16))
        f.write(payload)
    return path


@pytest.mark.parametrize("bad_blob", [
    codec.pack("not a chunk"),
    codec.pack((99, {}, {}, {})),  # no such db
    codec.pack((0, {}, {b"k": (77, [])}, {})),  # unknown value tag
    b"\x80\x05cos\nsystem\n.",  # a global
    codec.pack((0, {b"k": b"v"}, {}, {b"k": "soon"})),  # an expiry that is no number
])
def test_bad_payload_with_good_checksum_is_a_snapshot_error(shard_dir, bad_blob):
    path = _forge(shard_dir, 1, _stream(codec.pack((0, {b"a": b"1"}, {}, {})), bad_blob))
    with pytest.raises(SnapshotError, match="bad payload") as info:
        read_snapshot(path, Keyspace())
    assert path in str(info.value)


@pytest.mark.parametrize("cut", [1, 9, 2**62])
def test_payload_cut_mid_chunk_is_a_snapshot_error(shard_dir, cut):
    stream = _stream(codec.pack((0, {b"a": b"1"}, {}, {})))
    if cut == 2**62:  # a length far beyond the data
        stream = struct.pack("<Q", cut) + stream[8:]
    else:
        stream = stream[:-cut]
    path = _forge(shard_dir, 1, stream)
    with pytest.raises(SnapshotError, match="cut short"):
        read_snapshot(path, Keyspace())


# -- choosing, listing and pruning ------------------------------------------------

def test_newest_valid_falls_back_to_an_older_snapshot(shard_dir, monkeypatch):
    warnings = []
    monkeypatch.setattr(log, "warning", warnings.append)
    old = filled_keyspace()
    old_path = write_snapshot(shard_dir, 0, 10, old)
    # Newer ones: one half-loads before failing, one has a bad checksum.
    _forge(shard_dir, 20, _stream(codec.pack((0, {b"junk": b"1"}, {}, {b"junk": FAR})),
                                  codec.pack((3, {}, {b"k": (77,)}, {}))))
    newest = write_snapshot(shard_dir, 0, 30, Keyspace())
    _rewrite(newest, lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]))
    ks = Keyspace()
    assert newest_valid(shard_dir, ks) == (10, old_path)
    assert observe_all(ks) == observe_all(old)  # nothing left of the failed attempts
    assert len(warnings) == 2 and "snap-%020d.fcs" % 30 in warnings[0]
    assert "snap-%020d.fcs" % 20 in warnings[1]


def test_newest_valid_without_any_good_snapshot(shard_dir, monkeypatch):
    monkeypatch.setattr(log, "warning", lambda message: None)
    assert newest_valid(shard_dir, Keyspace()) == (0, None)  # no directory at all
    _forge(shard_dir, 4, _stream(codec.pack((0, {b"junk": b"1"}, {}, {})), codec.pack(None)))
    ks = Keyspace()
    assert newest_valid(shard_dir, ks) == (0, None)
    assert empty_of(ks)


def test_list_snapshots_and_remove_older(shard_dir):
    ks = Keyspace()
    paths = {seq: write_snapshot(shard_dir, 0, seq, ks) for seq in (3, 1, 12, 2)}
    for name in ("snap-%020d.fcs.tmp" % 1, "snap-%020d.fcs.tmp" % 20, "wal-1.log", "snap-1.fcs"):
        open(os.path.join(shard_dir, name), "wb").close()
    assert list_snapshots(shard_dir) == [(seq, paths[seq]) for seq in (1, 2, 3, 12)]
    remove_older(shard_dir, 3)
    assert sorted(os.listdir(shard_dir)) == sorted([
        "snap-%020d.fcs" % 3, "snap-%020d.fcs" % 12, "snap-%020d.fcs.tmp" % 20,
        "wal-1.log", "snap-1.fcs"])
    assert list_snapshots(str(shard_dir) + "-missing") == []
