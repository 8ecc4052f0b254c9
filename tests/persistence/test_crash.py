"""kill -9 under load and restart on the same directory: what each fsync policy keeps,
every data type round-tripping through the WAL and snapshots, and snapshots that are a
point in time.

With a process kill (not a power cut) the kernel keeps whatever was written, so
everysec and no lose nothing in practice either; the tests assert only the
weaker promise for them and print what they saw (pytest -s)."""
import os
import threading
import time

import pytest
import redis

from fastcache.engine.keyspace import Keyspace
from fastcache.persistence import snapshot
from tests.support.persist import dump, same_dump
from tests.support.shardkeys import keys_by_shard

WRITERS = 4
LOAD_SECONDS = 1.2
EX_SECONDS = 1000


# -- 1. acknowledged writes under kill -9 ------------------------------------------------

class Writer(threading.Thread):
    """One connection writing a fixed cycle of commands; it records each one it
    attempted and, for those that got a reply, when the reply came."""

    KINDS = ("set", "incr", "rpush", "hset", "zadd", "sadd", "setex")

    def __init__(self, server, t):
        super().__init__(daemon=True)
        self.client = server.client(socket_timeout=5)
        self.t = t
        self.ops = []          # [kind, key, member, ack time or None]
        self.error = None

    def key(self, kind, i=None):
        return "%s:%d" % (kind, self.t) if i is None else "%s:%d:%d" % (kind, self.t, i)

    def run(self):
        c = self.client
        i = 0
        while True:
            kind = self.KINDS[i % len(self.KINDS)]
            member = "m%d" % i
            key = self.key(kind, i) if kind in ("set", "setex") else self.key(kind)
            op = [kind, key, member, None]
            self.ops.append(op)
            try:
                if kind == "set":
                    c.set(key, member)
                elif kind == "incr":
                    c.incr(key)
                elif kind == "rpush":
                    c.rpush(key, member)
                elif kind == "hset":
                    c.hset(key, member, i)
                elif kind == "zadd":
                    c.zadd(key, {member: i})
                elif kind == "sadd":
                    c.sadd(key, member)
                else:
                    c.set(key, member, ex=EX_SECONDS)
            except (redis.ConnectionError, redis.TimeoutError):
                return
            except Exception as exc:         # a reply the test did not expect
                self.error = exc
                return
            op[3] = time.monotonic()
            i += 1


def lost_and_invented(writer, state):
    """([ack time of each acknowledged op missing from state], [values in state
    nobody wrote], {keys the writer used}).

    state is a dump of db 0. Ops of one writer run one at a time, so for each
    structure the ops form a sequence: a counter or list holds a prefix of it."""
    lost, invented = [], []
    ops = writer.ops
    for kind in Writer.KINDS:
        mine = [op for op in ops if op[0] == kind]
        if kind in ("set", "setex"):
            for _, key, member, acked in mine:
                got = state.get((0, key.encode()))
                if got is None:
                    if acked:
                        lost.append(acked)
                    continue
                if got[1] != member.encode():
                    invented.append((key, got))
                if kind == "setex" and not 0 < got[2] <= EX_SECONDS * 1000:
                    invented.append((key, "ttl", got[2]))
                if kind == "set" and got[2] != -1:
                    invented.append((key, "ttl", got[2]))
            continue
        key = writer.key(kind).encode()
        got = state.get((0, key))
        if kind == "incr":
            n = int(got[1]) if got else 0
            present = [j < n for j in range(len(mine))]
            if n > len(mine):
                invented.append((key, n))
        elif kind == "rpush":
            items = got[1] if got else []
            attempted = [m.encode() for _, _, m, _ in mine]
            if items != attempted[:len(items)]:
                invented.append((key, items[:5]))
            present = [j < len(items) for j in range(len(mine))]
        else:
            members = _members(kind, got)
            attempted = {m.encode(): j for j, (_, _, m, _) in enumerate(mine)}
            invented += [(key, m) for m in members if m not in attempted]
            if kind != "sadd":      # HSET and ZADD wrote member m<i> with i
                invented += [(key, m, v) for m, v in members.items()
                             if m in attempted and int(m[1:]) != float(v)]
            present = [m.encode() in members for _, _, m, _ in mine]
        lost += [op[3] for op, here in zip(mine, present) if op[3] and not here]
    return lost, invented, {op[1].encode() for op in ops}


def _members(kind, got):
    if got is None:
        return {}
    if kind == "hset":
        return got[1]
    if kind == "zadd":
        return {m: s for m, s in got[1]}
    return {m: True for m in got[1]}


@pytest.mark.parametrize("policy", ["always", "everysec", "no"])
def test_acknowledged_writes_survive_kill9(make_server, policy):
    s = make_server("--appendonly", "yes", "--appendfsync", policy, "--save", "").start()
    writers = [Writer(s, t) for t in range(WRITERS)]
    for w in writers:
        w.start()
    time.sleep(LOAD_SECONDS)
    killed_at = time.monotonic()
    s.kill9()
    for w in writers:
        w.join(10)
        assert not w.is_alive()
        assert w.error is None, w.error
    s.start()
    state = dump(s.port, [0])
    all_keys = set()
    lost_times, invented = [], []
    for w in writers:
        lost, inv, keys = lost_and_invented(w, state)
        lost_times += lost
        invented += inv
        all_keys |= keys
    invented += [k for (_, k) in state if k not in all_keys]
    acked = sum(1 for w in writers for op in w.ops if op[3])
    print("appendfsync %s: %d acknowledged writes, %d lost after kill -9"
          % (policy, acked, len(lost_times)))
    assert acked > 500, "the load was too light to mean anything"
    assert invented == []
    if policy == "always":
        assert lost_times == []
    else:
        # everysec/no promise: only writes from about the last second (two, with slack)
        assert all(t >= killed_at - 2.0 for t in lost_times), sorted(killed_at - t
                                                                    for t in lost_times)[-5:]


# -- 2. every data type through the WAL and through snapshots ---------------------------

def build_dataset(s, tag):
    """Writes of every type and most write paths; keys are named after tag."""
    (k0, k1, k2, k3, k4), (j0, j1, j2, j3, j4) = keys_by_shard(2, 5, prefix=tag)
    c = s.client()
    # strings
    c.set(k0, "alpha")
    c.append(k0, "-beta")
    c.set(j0, "0123456789")
    c.setrange(j0, 3, "XYZ")
    c.incr(tag + ":n")
    c.incrby(tag + ":n", 41)
    c.decr(tag + ":n")
    c.incrbyfloat(tag + ":f", "2.5")
    c.incrbyfloat(tag + ":f", "0.125")
    c.mset({k1: "m1", j1: "m2", tag + ":m3": "m3"})      # split over both shards
    c.msetnx({tag + ":nx1": "a", tag + ":nx2": "b"})
    c.set(tag + ":bin", bytes(range(256)))
    # lists
    c.rpush(tag + ":list", *range(20))
    c.lpush(tag + ":list", "head")
    c.lpop(tag + ":list")
    c.rpop(tag + ":list", 2)
    c.linsert(tag + ":list", "BEFORE", "5", "five")
    c.lset(tag + ":list", 0, "zero")
    c.lrem(tag + ":list", 1, "7")
    c.ltrim(tag + ":list", 0, 12)
    # hashes
    c.hset(tag + ":hash", mapping={"a": 1, "b": "two", "c": 3})
    c.hdel(tag + ":hash", "c")
    c.hincrby(tag + ":hash", "a", 10)
    c.hincrbyfloat(tag + ":hash", "fl", "1.5")
    c.hincrbyfloat(tag + ":hash", "fl", "0.25")
    c.hsetnx(tag + ":hash", "nx", "v")
    c.hset(tag + ":bighash", mapping={"f%d" % i: "v" * (i % 70) for i in range(300)})
    # sets
    c.sadd(tag + ":set", *range(30))
    c.srem(tag + ":set", 3, 4)
    c.spop(tag + ":set")
    c.spop(tag + ":set", 5)
    c.sadd(tag + ":popped", "a", "b")
    c.spop(tag + ":popped", 10)                   # pops the whole set
    c.sadd(tag + ":strset", "x", "y", "z")
    # sorted sets
    c.zadd(tag + ":zset", {"a": 1, "b": 2.5, "c": -3, "d": 1e20})
    c.zincrby(tag + ":zset", 0.5, "a")
    c.zrem(tag + ":zset", "b")
    c.zpopmin(tag + ":zset")
    c.zadd(tag + ":bigzset", {"m%d" % i: i / 7 for i in range(300)})
    c.zadd(tag + ":bigzset", {"m1": 5}, xx=True)
    # TTLs of every kind
    c.set(tag + ":ex", "v", ex=EX_SECONDS)
    c.set(tag + ":px", "v", px=900000)
    c.execute_command("SETEX", tag + ":setex", 800, "v")
    c.execute_command("PSETEX", tag + ":psetex", 700000, "v")
    c.expire(k2, 600)
    c.set(k2, "no ttl after SET")
    c.set(j2, "keeps ttl")
    c.expire(j2, 650)
    c.set(j2, "keeps ttl 2", keepttl=True)
    c.pexpire(tag + ":list", 550000)
    c.expireat(tag + ":hash", int(time.time()) + 500)
    c.set(tag + ":getex", "v")
    c.getex(tag + ":getex", ex=450)
    c.set(tag + ":persist", "v", ex=100)
    c.persist(tag + ":persist")
    c.set(tag + ":f2", "1.5", ex=400)
    c.incrbyfloat(tag + ":f2", "1")               # keeps the TTL
    # cross-shard commands
    c.set(k3, "renamed", ex=300)
    c.rename(k3, j3)                               # shard 0 -> 1, TTL travels
    c.sadd(k4, "a", "b", "c")
    c.sadd(j4, "c", "d")
    c.sunionstore(tag + ":union", [k4, j4])
    c.sinterstore(tag + ":inter", [k4, j4])
    c.smove(k4, j4, "a")
    c.rpush(j1 + ":l", "x", "y", "z")
    c.lmove(j1 + ":l", k1 + ":l", "LEFT", "RIGHT")
    c.zadd(k0 + ":z", {"p": 1, "q": 2})
    c.zunionstore(tag + ":zu", [k0 + ":z", tag + ":zset"])
    # a blocked pop served by a later push, on each shard
    served = []
    waiters = []
    for key in (k0 + ":bl", j0 + ":bl"):
        t = threading.Thread(target=lambda key=key: served.append(
            s.client(socket_timeout=10).blpop([key], timeout=5)))
        t.start()
        waiters.append(t)
    time.sleep(0.2)
    for key in (k0 + ":bl", j0 + ":bl"):
        c.rpush(key, "first", "second")
    for t in waiters:
        t.join(10)
    assert len(served) == 2 and all(v[1] == b"first" for v in served), served
    # transactions: on one shard, and across both
    pipe = c.pipeline(transaction=True)
    pipe.set("{%s}:tx1" % tag, "a").incr("{%s}:tx2" % tag).rpush("{%s}:tx3" % tag, 1, 2)
    pipe.execute()
    pipe = c.pipeline(transaction=True)
    pipe.set(k0 + ":tx", "x").set(j0 + ":tx", "y").incr(tag + ":n").delete(k1)
    pipe.execute()
    # other databases, FLUSHDB, SWAPDB
    d1, d2, d3 = s.client(db=1), s.client(db=2), s.client(db=3)
    d1.set(tag + ":db1", "one")
    d1.hset(tag + ":db1h", "f", "v")
    d2.sadd(tag + ":db2s", "a", "b")
    d2.set(tag + ":db2x", "x", ex=900)
    d3.set(tag + ":gone-with-flush", "x")
    d3.rpush(tag + ":gone-with-flush-l", "x")
    d3.flushdb()
    d3.set(tag + ":after-flush", "stays")
    d1.swapdb(1, 2)
    s.client(db=15).zadd(tag + ":db15", {"z": 1})
    # keys that expire, lazily and actively
    c.set(tag + ":gone1", "v", px=50)
    c.set(j0 + ":gone2", "v", px=50)
    c.rpush(tag + ":gone3", "v")
    c.pexpire(tag + ":gone3", 50)
    time.sleep(0.12)
    assert c.get(tag + ":gone1") is None


def _snapshot_files(s):
    return [p for i in range(s.shards) for p in s.snapshots(i)]


def _wal_files(s):
    return [p for i in range(s.shards) for p in s.segments(i)]


def test_round_trip_through_the_wal(make_server):
    s = make_server("--appendonly", "yes", "--appendfsync", "always", "--save", "").start()
    build_dataset(s, "w")
    before = dump(s.port)
    assert len(before) > 40
    s.restart()
    assert _snapshot_files(s) == []
    same_dump(before, dump(s.port))


def test_round_trip_through_a_snapshot(make_server):
    s = make_server("--appendonly", "no", "--save", "3600 1").start()
    build_dataset(s, "s")
    before = dump(s.port)
    assert s.stop() == 0                    # SIGTERM with save rules: a snapshot
    assert len(_snapshot_files(s)) == 2 and _wal_files(s) == []
    s.start()
    same_dump(before, dump(s.port))
    s.restart()                             # kill -9 without changes: same snapshot
    same_dump(before, dump(s.port))


def test_round_trip_through_a_snapshot_plus_wal(make_server):
    s = make_server("--appendonly", "yes", "--appendfsync", "everysec", "--save", "3600 1")
    s.start()
    build_dataset(s, "a")
    assert s.stop() == 0                    # snapshot on the way out
    assert len(_snapshot_files(s)) == 2
    s.start()
    build_dataset(s, "b")
    c = s.client()
    assert c.save()                         # a foreground snapshot, WAL goes on after it
    snaps = _snapshot_files(s)
    c.rpush("a:list", "tail")               # change keys the snapshots hold
    c.incr("a:n")
    c.delete("a:hash")
    c.expire("b:set", 123)
    c.persist("a:ex")
    c.set("new", "after the snapshot")
    before = dump(s.port)
    s.restart()
    assert _snapshot_files(s) == snaps
    same_dump(before, dump(s.port))


def _gone_soon(s, dbs=(0, 1)):
    """Until expiry has removed every key (replayed expired keys go at the next
    cron); the dump at the end."""
    deadline = time.monotonic() + 3
    while True:
        left = dump(s.port, dbs)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _short_lived(s):
    c, d1 = s.client(), s.client(db=1)
    for i in range(20):
        c.set("px:%d" % i, "v", px=300)
    c.hset("px:h", "f", "v")
    c.pexpire("px:h", 300)
    d1.set("px:db1", "v", px=300)
    for c2 in (c, d1):
        assert c2.get("px:0") in (b"v", None)


def test_expired_keys_do_not_come_back_from_the_wal(make_server):
    s = make_server("--appendonly", "yes", "--appendfsync", "always", "--save", "").start()
    _short_lived(s)
    s.kill9()
    time.sleep(0.4)
    s.start()
    assert s.client().exists("px:0", "px:h") == 0
    assert _gone_soon(s) == {}


def test_expired_keys_do_not_come_back_from_a_snapshot(make_server):
    s = make_server("--appendonly", "no", "--save", "3600 1").start()
    _short_lived(s)
    assert s.stop() == 0
    assert _snapshot_files(s)
    time.sleep(0.4)
    s.start()
    assert s.client().dbsize() == 0 and s.client(db=1).dbsize() == 0


# -- 6. snapshots are a point in time --------------------------------------------------

class GroupWriter(threading.Thread):
    """Sets a group of keys (one shard, by hash tag) to the step number, step after
    step: with one MSET, or with MULTI (a SET per key, then SET of a step key);
    then an INCR outside it."""

    def __init__(self, client, tag, multi, size=8):
        super().__init__(daemon=True)
        self.client = client
        self.tag = tag
        self.multi = multi
        self.keys = ["{%s}:k%d" % (tag, i) for i in range(size)]
        self.stop = threading.Event()
        self.steps = 0

    def run(self):
        c = self.client
        while not self.stop.is_set():
            step = self.steps + 1
            if self.multi:
                pipe = c.pipeline(transaction=True)
                for key in self.keys:
                    pipe.set(key, step)
                pipe.set("{%s}:step" % self.tag, step)
                pipe.execute()
            else:
                c.mset({k: step for k in self.keys})
            c.incr("%s:counter" % self.tag)
            self.steps = step

    def check(self, data, where):
        """Assert data (a snapshot's db 0) holds the group at one step; False if absent."""
        values = {data.get(k.encode()) for k in self.keys}
        if values == {None}:
            return False
        assert len(values) == 1, (where, self.tag, values)
        if self.multi:
            step = data.get(("{%s}:step" % self.tag).encode())
            assert values == {step}, ("half a transaction", where, self.tag, values, step)
        assert int(values.pop()) <= self.steps
        return True


def _capture_snapshots(s, into, seconds):
    """Hard-link every complete snapshot file that shows up (a snapshot later
    replaces it), for a while; [captured paths]."""
    got = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for path in _snapshot_files(s):
            name = os.path.join(into, os.path.basename(os.path.dirname(path)) + "-"
                                + os.path.basename(path))
            if name not in got:
                try:
                    os.link(path, name)
                    got[name] = True
                except FileNotFoundError:
                    pass
        time.sleep(0.01)
    return sorted(got)


def _group_tags(prefix, nshards=2):
    """A hash tag owned by each shard, in shard order."""
    return [keys[0] for keys in keys_by_shard(nshards, 1, prefix)]


def _client_on(s, index):
    """A no-retry client whose connection landed on worker index."""
    for _ in range(64):
        c = s.client()
        if c.client_id() % s.shards == index:
            return c
        c.close()
    raise AssertionError("no connection reached worker %d" % index)


def _run_groups(s, writers, into, seconds=2.5):
    """Run the writers while background snapshots come and go; check every
    captured snapshot, then that a restart keeps the data."""
    for w in writers:
        w.start()
    captured = _capture_snapshots(s, into, seconds)
    for w in writers:
        w.stop.set()
        w.join(10)
    print("%d snapshots captured, steps %s" % (len(captured), [w.steps for w in writers]))
    assert len(captured) >= 4, captured
    seen = 0
    for path in captured:
        ks = Keyspace(16)
        snapshot.read_snapshot(path, ks)
        seen += sum(w.check(ks.dbs[0].data, path) for w in writers)
    assert seen >= len(writers)
    before = dump(s.port, [0])
    s.restart()
    same_dump(before, dump(s.port, [0]))


# A small WAL growth limit makes background snapshots come one after another.
GROWTH_SNAPSHOTS = ("--appendonly", "yes", "--appendfsync", "no", "--save", "",
                    "--auto-aof-rewrite-min-size", "64kb")


def test_snapshots_are_a_point_in_time(make_server, tmp_path):
    s = make_server(*GROWTH_SNAPSHOTS).start()
    writers = [GroupWriter(s.client(), tag, multi=False) for tag in _group_tags("m")]
    # transactions from a connection on the group's own shard run inline
    writers += [GroupWriter(_client_on(s, i), tag, multi=True)
                for i, tag in enumerate(_group_tags("t"))]
    _run_groups(s, writers, str(tmp_path))


def test_snapshots_never_hold_half_a_forwarded_transaction(make_server, tmp_path):
    """A transaction sent to a worker that does not own its keys runs on the owner
    one command at a time under the cross-shard lock; a snapshot must not fork
    in between."""
    s = make_server(*GROWTH_SNAPSHOTS).start()
    writers = [GroupWriter(_client_on(s, 1 - i), tag, multi=True)
               for i, tag in enumerate(_group_tags("f"))]
    _run_groups(s, writers, str(tmp_path))
