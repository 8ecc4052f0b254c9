"""What a real server writes to its WAL: one record per change, in deterministic form.

Records are read back from the segment files (each reply leaves only after its
records are written, so the files hold them by the time the reply is here)."""
import time

import pytest

from fastcache.persistence import walfile
from tests.support.persist import DurableServer, dump, same_dump
from tests.support.shardkeys import keys_by_shard, shard_of


def wal_records(server, shard):
    """[(seq, db, argv)] of every record in the shard's segments, oldest first."""
    out = []
    for _, path in walfile.list_segments(server.shard_dir(shard)):
        segment = walfile.Segment(path, shard)
        out.extend(segment.records())
        assert segment.problem is None, segment.problem
    return out


class Recorder:
    """Runs commands and returns the records they added to a shard's WAL."""

    def __init__(self, server, shard=0):
        self.server = server
        self.shard = shard
        self.client = server.client()
        self.seen = len(wal_records(server, shard))

    def run(self, *commands):
        for cmd in commands:
            self.client.execute_command(*cmd)
        return self.new()

    def new(self):
        records = wal_records(self.server, self.shard)
        added, self.seen = records[self.seen:], len(records)
        return [(db, argv) for _, db, argv in added]


@pytest.fixture(scope="module")
def server():
    s = DurableServer("--appendonly", "yes", "--appendfsync", "always", "--save", "",
                      shards=1).start()
    yield s
    s.cleanup()


@pytest.fixture
def rec(server):
    r = Recorder(server)
    r.client.flushall()
    r.new()
    return r


def b(*words):
    return [w if isinstance(w, bytes) else str(w).encode() for w in words]


def near(at, expected_ms, slack_ms=3000):
    return abs(int(at) - expected_ms) <= slack_ms


def now_ms():
    return int(time.time() * 1000)


def test_relative_ttls_become_absolute(rec):
    t = now_ms()
    got = rec.run(("SET", "a", "1", "EX", "100"), ("SETEX", "b", "50", "x"),
                  ("PSETEX", "c", "7000", "y"), ("EXPIRE", "a", "200"), ("PEXPIRE", "b", "9000"),
                  ("GETEX", "c", "EX", "300"), ("GETEX", "c", "PERSIST"),
                  ("EXPIREAT", "a", str(t // 1000 + 500)))
    shapes = [argv[:-1] if argv[0] != b"PERSIST" else argv for _, argv in got]
    assert shapes == [b("SET", "a", "1", "PXAT"), b("SET", "b", "x", "PXAT"),
                      b("SET", "c", "y", "PXAT"), b("PEXPIREAT", "a"), b("PEXPIREAT", "b"),
                      b("PEXPIREAT", "c"), b("PERSIST", "c"), b("PEXPIREAT", "a")]
    ats = [int(argv[-1]) for _, argv in got if argv[0] != b"PERSIST"]
    for at, rel in zip(ats, [100000, 50000, 7000, 200000, 9000, 300000]):
        assert near(at, t + rel), (at, t, rel)
    assert ats[-1] == (t // 1000 + 500) * 1000


def test_nondeterministic_commands_become_their_outcome(rec):
    rec.client.sadd("s", "m1")
    rec.client.set("f", "1", ex=1000)
    rec.new()
    got = rec.run(("INCRBYFLOAT", "f", "1.5"), ("HINCRBYFLOAT", "h", "x", "2.5"), ("SPOP", "s"))
    assert got == [(0, b("SET", "f", "2.5", "KEEPTTL")), (0, b("HSET", "h", "x", "2.5")),
                   (0, b("SREM", "s", "m1"))]


def test_spop_with_a_count_records_the_members_it_popped(rec):
    """SPOP key count replies with a set: its record must be SREM of those members
    (not the reply object), and the connection must survive it."""
    rec.client.sadd("s", *["m%d" % i for i in range(10)])
    rec.new()
    popped = rec.client.spop("s", 3)
    assert len(popped) == 3
    got = rec.new()
    assert len(got) == 1 and got[0][1][:2] == b("SREM", "s")
    assert sorted(got[0][1][2:]) == sorted(popped)
    everything = rec.client.spop("s", 100)       # the whole rest: the key goes
    assert len(everything) == 7
    got = rec.new()
    assert sorted(got[0][1][2:]) == sorted(everything) and rec.client.exists("s") == 0


def test_writes_that_change_nothing_record_nothing(rec):
    rec.client.sadd("s", "x")
    rec.client.set("k", "v")
    rec.new()
    got = rec.run(("DEL", "missing"), ("SADD", "s", "x"), ("EXPIRE", "missing", "10"),
                  ("SREM", "s", "nope"), ("HDEL", "nohash", "f"), ("PERSIST", "k"),
                  ("LPOP", "nolist"), ("SET", "k", "w", "NX"), ("GET", "k"), ("EXISTS", "k"))
    assert got == []


def test_expiry_records_del(rec):
    rec.client.set("lazy", "v", px=30)
    rec.client.set("active", "v", px=30)
    rec.new()
    time.sleep(0.1)
    assert rec.client.get("lazy") is None
    found = rec.new()
    assert (0, b("DEL", "lazy")) in found
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (0, b("DEL", "active")) not in found:
        time.sleep(0.05)
        found += rec.new()
    assert (0, b("DEL", "active")) in found


def test_set_with_a_past_deadline_records_del(rec):
    rec.client.set("k", "v")
    rec.new()
    got = rec.run(("SET", "k", "w", "PXAT", "1"), ("SET", "k2", "w"), ("EXPIRE", "k2", "-1"))
    # SET ... PXAT in the past replays to "no key" either way
    assert got[0] in [(0, b("DEL", "k")), (0, b("SET", "k", "w", "PXAT", "1"))]
    assert got[1:] == [(0, b("SET", "k2", "w")), (0, b("DEL", "k2"))]


def test_records_carry_their_db(rec):
    c = rec.server.client(db=4)
    c.set("x", "1")
    c.swapdb(4, 5)
    c.flushdb()                              # db 4 is empty now: nothing to record
    rec.server.client(db=5).flushdb()
    assert rec.new() == [(4, b("SET", "x", "1")), (4, b("SWAPDB", "4", "5")), (5, b("FLUSHDB"))]


def test_pipelined_fast_path_writes_are_all_recorded_in_order(rec):
    pipe = rec.client.pipeline(transaction=False)
    expected = []
    for i in range(300):
        cmd = [("SET", "s%d" % i, "v%d" % i), ("INCR", "n"), ("RPUSH", "l", "e%d" % i),
               ("HSET", "h", "f%d" % i, "v"), ("SADD", "set", "m%d" % i),
               ("ZADD", "z", str(i), "m%d" % i), ("LPOP", "l")][i % 7]
        pipe.execute_command(*cmd)
        expected.append((0, b(*cmd)))
    pipe.execute()
    assert rec.new() == expected


def test_sequences_are_consecutive_across_restarts(make_server):
    s = make_server("--appendonly", "yes", "--save", "", shards=1).start()
    for run in range(3):
        c = s.client()
        for i in range(20):
            c.incr("n")
        if run < 2:
            s.restart()
    seqs = [seq for seq, _, _ in wal_records(s, 0)]
    assert seqs == list(range(1, 61))
    firsts = [first for first, _ in walfile.list_segments(s.shard_dir(0))]
    assert firsts == sorted(firsts) and firsts[0] == 1
    assert int(s.client().get("n")) == 60


def test_each_shard_records_only_its_own_keys(make_server):
    s = make_server("--appendonly", "yes", "--save", "").start()
    (a0, b0, c0), (a1, b1, c1) = keys_by_shard(2, 3, prefix="x")
    c = s.client()
    c.mset({a0: "1", a1: "2", b0: "3"})
    c.sadd(b1, "m")
    c.rename(a0, c1)                      # shard 0 -> shard 1
    c.smove(b1, c0, "m")                  # shard 1 -> shard 0
    c.delete(a1, b0)
    for shard in range(2):
        for _, _, argv in wal_records(s, shard):
            for key in _written_keys(argv):
                assert shard_of(key, 2) == shard, (shard, argv)
    before = dump(s.port, [0])
    s.restart()
    same_dump(before, dump(s.port, [0]))


def _written_keys(argv):
    """The keys a record names (the commands used in the test above)."""
    name = argv[0].upper()
    if name == b"MSET":
        return argv[1::2]
    if name in (b"DEL", b"UNLINK"):
        return argv[1:]
    if name in (b"RENAME", b"RENAMENX", b"SMOVE", b"LMOVE", b"RPOPLPUSH"):
        return argv[1:3]
    return argv[1:2]
