"""MULTI/EXEC/DISCARD/WATCH against real servers, with 1 and 4 shards.

Replies are compared byte for byte with redis-server; the cross-shard tests
check atomicity and isolation with a concurrent reader."""
import threading
import time

import pytest
import redis

from tests.integration.conftest import make_client
from tests.support.resp import RawClient, encode_command, run_script
from tests.support.shardkeys import one_per_shard

SCRIPTS = {
    "queue_and_errors": [
        ("MULTI",), ("MULTI",), ("WATCH", "a"), ("GET", "a"), ("NOPE",), ("EXEC",)],
    "without_multi": [("EXEC",), ("DISCARD",)],
    "arity_error_aborts": [("MULTI",), ("SET", "a", "1"), ("INCR", "a", "b"), ("EXEC",), ("GET", "a")],
    "runtime_errors_inside": [
        ("MULTI",), ("SET", "a", "x"), ("INCR", "a"), ("PING",), ("EXEC",)],
    "select_inside_persists": [
        ("MULTI",), ("SELECT", "2"), ("SET", "b", "1"), ("EXEC",), ("GET", "b"), ("SELECT", "0")],
    "multi_key_inside": [
        ("MULTI",), ("SET", "a", "1"), ("SET", "b", "2"), ("SET", "c", "3"), ("MGET", "a", "b", "c"),
        ("DBSIZE",), ("RENAME", "a", "z"), ("DEL", "b", "c"), ("EXEC",), ("KEYS", "*")],
    "watch_untouched": [("WATCH", "a", "b", "c"), ("MULTI",), ("INCR", "a"), ("EXEC",)],
    "watch_touched_by_self": [
        ("WATCH", "a"), ("SET", "a", "2"), ("MULTI",), ("GET", "a"), ("EXEC",), ("GET", "a")],
    "watch_flushall_existing": [
        ("SET", "k", "1"), ("WATCH", "k"), ("FLUSHALL",), ("MULTI",), ("INCR", "k"), ("EXEC",)],
    "watch_flushall_missing": [("WATCH", "k"), ("FLUSHALL",), ("MULTI",), ("INCR", "k"), ("EXEC",)],
    "watch_failed_setnx": [
        ("SET", "k", "1"), ("WATCH", "k"), ("SETNX", "k", "2"), ("MULTI",), ("GET", "k"), ("EXEC",)],
    "unwatch_and_discard": [
        ("WATCH", "a"), ("SET", "a", "1"), ("UNWATCH",), ("MULTI",), ("GET", "a"), ("DISCARD",),
        ("MULTI",), ("GET", "a"), ("EXEC",)],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_match_redis(fc, redis_ref, protocol, name):
    script = SCRIPTS[name]
    assert run_script(fc.port, script, protocol) == run_script(redis_ref.port, script, protocol)


def test_watched_key_expiring_aborts(fc, redis_ref):
    def run(port):
        c = RawClient(port)
        c.call("FLUSHALL")
        out = [c.call("SET", "e", "1", "PX", "50"), c.call("WATCH", "e")]
        time.sleep(0.15)
        out += [c.call("MULTI"), c.call("INCR", "e"), c.call("EXEC")]
        c.close()
        return out
    assert run(fc.port) == run(redis_ref.port)


def test_watch_sees_a_write_from_any_worker(fc4):
    """The writer uses many connections, so some land on other workers."""
    keys = one_per_shard(4, prefix="w")
    watcher = make_client(fc4.port)
    watcher.flushall()
    for key in keys:
        pipe = watcher.pipeline(transaction=True)
        pipe.watch(key)
        writers = [make_client(fc4.port) for _ in range(6)]
        writers[-1].set(key, "changed")
        pipe.multi()
        pipe.set(key, "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
        assert watcher.get(key) == "changed"
        for w in writers:
            w.close()
    watcher.close()


def test_redis_py_transaction_pipeline_across_shards(fc4, protocol):
    r = make_client(fc4.port, protocol)
    r.flushall()
    keys = one_per_shard(4, prefix="t")
    pipe = r.pipeline()  # transaction=True by default
    for i, key in enumerate(keys):
        pipe.set(key, i)
        pipe.incr(key)
    pipe.mget(keys)
    pipe.dbsize()
    result = pipe.execute()
    assert result[-2] == [str(i + 1) for i in range(4)]
    assert result[-1] == 4
    r.close()


def test_cross_shard_exec_is_atomic_and_isolated(fc4):
    """One client moves units between keys on different shards in transactions;
    a reader never sees a total other than the starting one."""
    keys = one_per_shard(4, prefix="acct")
    setup = make_client(fc4.port)
    setup.flushall()
    setup.mset({k: 100 for k in keys})
    stop = threading.Event()
    seen = []

    def reader():
        c = make_client(fc4.port)
        while not stop.is_set() and len(seen) < 5000:
            seen.append(sum(int(v) for v in c.mget(keys)))
        c.close()

    thread = threading.Thread(target=reader)
    thread.start()
    writer = RawClient(fc4.port)
    deadline = time.monotonic() + 3
    rounds = 0
    while time.monotonic() < deadline and rounds < 300:
        src, dst = keys[rounds % 4], keys[(rounds + 1) % 4]
        batch = [("MULTI",), ("DECRBY", src, "7"), ("INCRBY", dst, "7"), ("EXEC",)]
        writer.send(b"".join(encode_command(c) for c in batch))
        replies = [writer.read_reply() for _ in batch]
        assert replies[-1].startswith(b"*2\r\n"), replies
        rounds += 1
    stop.set()
    thread.join(10)
    writer.close()
    assert rounds > 10 and seen
    assert set(seen) == {400}
    assert sum(int(v) for v in setup.mget(keys)) == 400
    setup.close()
