"""Routing a primary shard's records to replica shards, and applying them exactly once."""
import pytest

from fastcache.config import Config
from fastcache.engine.hashes import Hash
from fastcache.engine.keyspace import Keyspace
from fastcache.engine.records import Journal
from fastcache.engine.slots import key_slot, slot_table
from fastcache.persistence import codec
from fastcache.persistence.apply import Applier
from fastcache.persistence.marks import APPLIED
from fastcache.replication.routing import Layout
from fastcache.server.worker import Worker
from tests.support.shardkeys import one_per_shard


def two_keys():
    """A key on each shard of a 2-shard layout."""
    return [key.encode() for key in one_per_shard(2)]


def test_targets_of_nested_and_cut_layouts():
    nested = Layout(4, slot_table(2))
    assert nested.targets == [[0], [0], [1], [1]] and nested.single == [0, 0, 1, 1]
    assert not nested.inside(0, 0)
    same = Layout(2, slot_table(2))
    assert same.single == [0, 1] and same.inside(1, 1)
    cut = Layout(3, slot_table(2))
    assert cut.targets == [[0], [0, 1], [1]] and cut.single == [0, None, 1]
    wider = Layout(1, slot_table(3))
    assert wider.targets == [[0, 1, 2]] and all(wider.inside(r, 0) for r in range(3))


def test_split_records_by_replica_owner():
    layout = Layout(1, slot_table(2))
    a, b = two_keys()
    records = [
        (1, 0, [b"SET", a, b"1"]),
        (2, 0, [b"MSET", a, b"x", b, b"y"]),       # split by owner
        (3, 0, [b"DEL", a, b]),
        (4, 0, [b"FLUSHDB"]),                       # keyless: every target
        (5, 0, [b"RENAME", a, b]),                  # must run across shards
        (6, 0, [b"SET", b, b"2"]),
    ]
    steps = layout.split_records(0, records)
    assert steps[0] == ({0: [(1, 0, [b"SET", a, b"1"]), (2, 0, [b"MSET", a, b"x"]),
                             (3, 0, [b"DEL", a]), (4, 0, [b"FLUSHDB"])],
                         1: [(2, 0, [b"MSET", b, b"y"]), (3, 0, [b"DEL", b]),
                             (4, 0, [b"FLUSHDB"])]}, None)
    assert steps[1] == (None, (5, 0, [b"RENAME", a, b], {0: {a}, 1: {b}}))
    assert steps[2] == ({1: [(6, 0, [b"SET", b, b"2"])]}, None)


def test_split_chunk_by_replica_owner():
    layout = Layout(1, slot_table(2))
    a, b = two_keys()
    blob = codec.pack((3, {a: b"1", b: b"2"}, {}, {a: 123}))
    pieces = {r: codec.unpack(p) for r, p in layout.split_chunk(blob).items()}
    assert pieces == {0: (3, {a: b"1"}, {}, {a: 123}), 1: (3, {b: b"2"}, {}, {})}


@pytest.fixture
def worker():
    w = Worker(0, Config({"shards": 1}), [], [0], "test", persist=False)
    w.ks.journal = Journal()
    return w


def wrapped(journal):
    return [argv for _, _, argv in journal.take()]


def test_records_apply_once_and_are_journaled_wrapped(worker):
    shard = worker.replication.shard
    shard.origin("p" * 40, 1)
    worker.ks.journal.take()
    records = [(1, 0, [b"SET", b"k", b"1"]), (2, 0, [b"INCR", b"k"]), (3, 0, [b"INCR", b"k"])]
    assert shard.apply(0, records[:2], 2) == 2
    assert shard.apply(0, records, 5) == 5          # 1 and 2 again: skipped
    assert worker.ks.dbs[0].data[b"k"] == b"3"
    assert wrapped(worker.ks.journal) == [
        [APPLIED, b"0", b"1", b"SET", b"k", b"1"], [APPLIED, b"0", b"2", b"INCR", b"k"],
        [APPLIED, b"0", b"3", b"INCR", b"k"], [APPLIED, b"0", b"5"]]


def test_refused_writes_do_not_stop_the_primarys_records(worker):
    worker.refuse_writes = worker.replication.refusal() or "READONLY"
    shard = worker.replication.shard
    shard.origin("p" * 40, 1)
    shard.apply(0, [(1, 0, [b"LPUSH", b"l", b"a"])], 1)
    assert list(worker.ks.dbs[0].data[b"l"]) == [b"a"]
    assert worker.refuse_writes == "READONLY"


def test_a_failing_record_moves_the_mark_but_is_not_journaled(worker):
    shard = worker.replication.shard
    shard.origin("p" * 40, 1)
    worker.ks.journal.take()
    shard.apply(0, [(1, 0, [b"SET", b"k", b"v"]), (2, 0, [b"INCR", b"k"])], 2)
    assert shard.errors == 1
    assert wrapped(worker.ks.journal)[1] == [APPLIED, b"0", b"2"]


def test_full_copy_replaces_the_primary_shards_keys_and_replays(worker):
    shard = worker.replication.shard
    shard.origin("p" * 40, 1)
    worker.ks.set(worker.ks.dbs[0], b"stale", b"x")
    shard.full_begin(0)
    hashed = codec.encode_value(Hash({b"f": b"v"}))
    shard.full_chunk([codec.pack((0, {b"a": b"1"}, {b"h": hashed}, {b"a": 10 ** 15}))])
    shard.full_end(0, 42)
    ks = worker.ks
    assert set(ks.dbs[0].data) == {b"a", b"h"} and ks.dbs[0].expires == {b"a": 10 ** 15}
    assert ks.repl_marks.seqs == {0: 42}
    again = Keyspace(16)
    Applier(again).apply_all([(i + 1, db, argv) for i, (_, db, argv)
                              in enumerate(ks.journal.take())])
    assert set(again.dbs[0].data) == {b"a", b"h"} and again.dbs[0].expires == {b"a": 10 ** 15}
    assert again.repl_marks.seqs == {0: 42}


def test_keyless_records_touch_only_their_primary_shards_keys():
    w = Worker(0, Config({"shards": 1}), [], [0], "test", persist=False)
    shard = w.replication.shard
    shard.origin("p" * 40, 2)            # this replica's one shard holds both primary shards
    mine, other = two_keys()
    assert key_slot(mine) < 8192 <= key_slot(other)
    for key in (mine, other):
        w.ks.set(w.ks.dbs[0], key, b"v")
    shard.apply(0, [(1, 0, [b"SWAPDB", b"0", b"1"])], 1)
    assert set(w.ks.dbs[1].data) == {mine} and set(w.ks.dbs[0].data) == {other}
    shard.apply(1, [(1, 0, [b"FLUSHALL"])], 1)
    assert set(w.ks.dbs[1].data) == {mine} and not w.ks.dbs[0].data
