"""A replica shard's marks survive a restart with its data: WAL records and snapshot sidecars."""
import os

from fastcache.engine.keyspace import Keyspace
from fastcache.persistence import marks, snapshot
from fastcache.persistence.apply import Applier, put_record
from fastcache.persistence.marks import Marks, applied_record, origin_record
from fastcache.persistence.recovery import recover
from fastcache.persistence.walfile import encode_payload, file_header, frame, segment_name
from fastcache.server import commands  # noqa: F401 (registers every command the records use)


def replay(records, ks=None):
    ks = ks or Keyspace(4)
    Applier(ks).apply_all([(i + 1, db, argv) for i, (db, argv) in enumerate(records)])
    return ks


def test_wrapped_records_run_and_move_the_mark():
    ks = replay([
        (0, origin_record("r" * 40, 3)),
        (0, applied_record(1, 7, [b"SET", b"k", b"v"])),
        (2, applied_record(2, 4, [b"RPUSH", b"l", b"a", b"b"])),
        (0, applied_record(1, 9)),                       # mark only
        (1, applied_record(0, 3, put_record(b"h", b"blob", None))),
    ])
    assert ks.repl_marks.replid == "r" * 40 and ks.repl_marks.nshards == 3
    assert ks.repl_marks.seqs == {1: 9, 2: 4, 0: 3}
    assert ks.dbs[0].data[b"k"] == b"v"
    assert list(ks.dbs[2].data[b"l"]) == [b"a", b"b"]
    assert ks.dbs[1].data[b"h"] == b"blob"


def test_origin_voids_earlier_marks_and_a_negative_mark_forgets():
    ks = replay([
        (0, origin_record("a" * 40, 2)),
        (0, applied_record(0, 5)),
        (0, applied_record(1, 6)),
        (0, applied_record(1, -1)),          # a full copy of shard 1 started
    ])
    assert ks.repl_marks.seqs == {0: 5}
    replay([(0, origin_record("b" * 40, 2))], ks)
    assert ks.repl_marks.replid == "b" * 40 and ks.repl_marks.seqs == {}


def test_state_round_trip():
    m = Marks("x" * 40, 4, {0: 1, 3: 99})
    again = Marks.from_state(m.state())
    assert (again.replid, again.nshards, again.seqs) == ("x" * 40, 4, {0: 1, 3: 99})


def test_snapshot_carries_the_marks_in_a_sidecar(tmp_path):
    ks = Keyspace(2)
    ks.set(ks.dbs[0], b"k", b"v")
    ks.repl_marks = Marks("m" * 40, 2, {0: 10, 1: 20})
    path = snapshot.write_snapshot(str(tmp_path), 0, 5, ks)
    assert os.path.exists(marks.sidecar_path(path))
    loaded = Keyspace(2)
    assert snapshot.newest_valid(str(tmp_path), loaded) == (5, path)
    assert loaded.repl_marks.seqs == {0: 10, 1: 20}
    # A later snapshot of a shard that is no replica any more has no sidecar...
    ks.repl_marks = None
    later = snapshot.write_snapshot(str(tmp_path), 0, 8, ks)
    assert not os.path.exists(marks.sidecar_path(later))
    # ... and the old sidecar goes with its snapshot.
    snapshot.remove_older(str(tmp_path), 8)
    assert not os.path.exists(marks.sidecar_path(path))
    fresh = Keyspace(2)
    snapshot.newest_valid(str(tmp_path), fresh)
    assert fresh.repl_marks is None


def test_recovery_restores_data_and_marks_together(tmp_path):
    shard_dir = str(tmp_path)
    ks = Keyspace(2)
    ks.repl_marks = Marks("z" * 40, 1, {0: 100})
    ks.set(ks.dbs[0], b"old", b"1")
    snapshot.write_snapshot(shard_dir, 0, 3, ks)
    records = [(4, 0, applied_record(0, 101, [b"SET", b"new", b"2"])),
               (5, 0, applied_record(0, 102, [b"DEL", b"old"])),
               (6, 0, [b"DEL", b"expired-here"]),            # the replica's own record
               (7, 0, applied_record(0, 105))]
    with open(os.path.join(shard_dir, segment_name(4)), "wb") as f:
        f.write(file_header(0))
        for seq, db, argv in records:
            f.write(frame(seq, encode_payload(db, argv)))
    restored = Keyspace(2)
    loaded = recover(restored, shard_dir, 0)
    assert loaded.seq == 7
    assert restored.dbs[0].data == {b"new": b"2"}
    assert restored.repl_marks.seqs == {0: 105}
