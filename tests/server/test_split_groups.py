"""Split commands' groups in-process (fastcache/server/crossshard.py): two
workers joined by a fake link, the parts' native fast path against the command
table, reply order within a group, and a lost link."""
import asyncio

import pytest

from fastcache.config import Config
from fastcache.engine.context import Context
from fastcache.engine.registry import resolve
from fastcache.protocol.replies import OK, Error
from fastcache.server import crossshard, fanout
from fastcache.server.worker import Worker
from tests.support.shardkeys import one_per_shard

A, B = (k.encode() for k in one_per_shard(2, "sg"))


def _worker(index, **values):
    return Worker(index, Config({"shards": 2, **values}), [], [0, 0], "test", persist=False)


class _Link:
    """Worker 0's link to worker 1, answered at once (or failing: lost)."""

    def __init__(self, peer, lost=False):
        self.peer = peer
        self.lost = lost

    def call(self, kind, payload, txn=None):
        future = asyncio.get_running_loop().create_future()
        if self.lost:
            future.set_exception(ConnectionResetError("link lost"))
        else:
            assert kind == "lockcall" and self.peer.lock is None
            future.set_result(crossshard.peer_lockcall(self.peer, payload, txn))
        return future

    def request(self, kind, payload, callback, txn=None):
        assert kind == "unlock"
        callback(self.peer.unlock(txn))


class _Client:
    """What a group needs of a connection: its db, reply slots, and resumption."""

    def __init__(self, ks, db=0):
        self.ctx = Context(ks, db, 2, self, None)
        self.slots = 0
        self.settled = []      # (slot, reply) in settling order
        self.resumed = 0

    def start_split(self):
        self.slots += 1
        return self.slots

    def settle(self, slot, reply, split=False):
        assert split
        self.settled.append((slot, reply))

    def resume_if_free(self):
        self.resumed += 1


def _member(worker, client, *argv):
    argv = [a if isinstance(a, bytes) else str(a).encode() for a in argv]
    cmd = resolve(argv)
    groups = fanout.group_keys(worker, cmd, argv)
    assert len(groups) == 2
    targets, merge = fanout.plan_split(cmd, argv, groups)
    return crossshard._Member(client, targets, merge)


def _run(workers, members, lost=False):
    async def go():
        workers[0].loop = asyncio.get_running_loop()
        workers[0].peers[1] = _Link(workers[1], lost)
        await crossshard._run_group(workers[0], members)
    asyncio.run(go())


@pytest.mark.parametrize("fast", [True, False])
def test_a_group_runs_members_in_order_on_both_shards(fast):
    # slowlog-log-slower-than 0 times every command: the parts take the command table.
    workers = [_worker(i, **({} if fast else {"slowlog-log-slower-than": 0})) for i in (0, 1)]
    assert all(w.untimed_fast == fast for w in workers)
    one, two = _Client(workers[0].ks), _Client(workers[0].ks, db=1)
    members = [_member(workers[0], one, "MSET", A, "1", B, "2"),
               _member(workers[0], two, "MSET", A, "x", B, "y"),
               _member(workers[0], one, "MGET", B, "missing", A),
               _member(workers[0], one, "DEL", A, B, "missing"),
               _member(workers[0], one, "EXISTS", A, B),
               _member(workers[0], two, "MGET", A, B)]
    _run(workers, members)
    assert one.settled == [(4, 0), (3, 2), (2, [b"2", None, b"1"]), (1, OK)]  # last first
    assert two.settled == [(2, [b"x", b"y"]), (1, OK)]
    assert (one.resumed, two.resumed) == (1, 1)
    assert [w.lock for w in workers] == [None, None]
    assert workers[0].ks.dbs[1].data == {A: b"x"} and workers[1].ks.dbs[1].data == {B: b"y"}
    assert not workers[0].ks.dbs[0].data and not workers[1].ks.dbs[0].data


def test_parts_fast_path_matches_the_command_table():
    results = []
    for fast in (True, False):
        worker = _worker(0, **({} if fast else {"slowlog-log-slower-than": 0}))
        ctx, other = Context(worker.ks, 0, 2, None, worker), Context(worker.ks, 2, 2, None, worker)
        worker.execute(ctx, [b"RPUSH", b"list", b"e"])
        parts = [(ctx, [b"MSET", b"a", b"1", b"b", b"2"]), (ctx, [b"MGET", b"a", b"list", b"zz"]),
                 (other, [b"MSET", b"a", b"other"]), (ctx, [b"DEL", b"a", b"zz"]),
                 (ctx, [b"DEL", b"b"]), (ctx, [b"EXISTS", b"list"]), (other, [b"MGET", b"a"]),
                 (ctx, [b"EXISTS", b"list", b"a", b"list"]), (ctx, [b"TOUCH", b"list", b"b"]),
                 (ctx, [b"UNLINK", b"list"]), (ctx, [b"DBSIZE"])]
        replies = crossshard.run_parts(worker, parts)
        ks = worker.ks
        results.append((replies, [dict(db.data) for db in ks.dbs[:3]], ks.dirty,
                        ks.hits, ks.misses, worker.stats.commands))
    assert results[0] == results[1]
    assert results[0][0] == [OK, [b"1", None, None], OK, 1, 1, 1, [b"other"], 2, 1, 1, 0]


def test_a_lost_link_answers_every_member():
    workers = [_worker(0), _worker(1)]
    one, two = _Client(workers[0].ks), _Client(workers[0].ks)
    members = [_member(workers[0], one, "MSET", A, "1", B, "2"),
               _member(workers[0], two, "MGET", A, B),
               _member(workers[0], one, "MGET", A, B)]
    _run(workers, members, lost=True)
    error = Error("ERR multi-shard command failed: link lost")
    assert one.settled == [(2, error), (1, error)] and two.settled == [(1, error)]
    assert (one.resumed, two.resumed) == (1, 1)
    assert workers[0].lock is None


def test_unlock_runs_held_clients_before_the_next_txn():
    """With txns queued back to back, clients the lock held would otherwise never run."""
    worker = _worker(0)
    events = []

    class Held:
        def resume_after_lock(self):
            events.append(("client", worker.lock))

    def grant():
        events.append(("grant", worker.lock))
        worker.lock = "next"

    worker.lock = "first"
    worker.paused.add(Held())
    worker.deferred.append(grant)
    worker.unlock("first")
    assert events == [("client", None), ("grant", None)]
    assert worker.lock == "next" and not worker.paused
