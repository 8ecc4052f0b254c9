"""A replica of a live primary: the full copy, then the stream of writes."""
import threading
import time

import pytest
import redis

from tests.replication.live import Node, digest, info, link_up, wait_for, wait_in_sync


@pytest.fixture(scope="module")
def primary():
    node = Node(shards=2)
    yield node
    node.stop()


def fill_every_type(r, n):
    """n keys of each type (five types) with a TTL on every third key; returns
    {key: pexpiretime} of some keys with a TTL."""
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set("str:%d" % i, "v%d" % i)
        pipe.hset("hash:%d" % i, mapping={"f1": i, "f2": "x" * (i % 7)})
        pipe.rpush("list:%d" % i, "a", i, "c")
        pipe.sadd("set:%d" % i, "m1", "m%d" % i)
        pipe.zadd("zset:%d" % i, {"a": 1.5, "b%d" % i: i})
        if i % 3 == 0:
            for kind in ("str", "hash", "list", "set", "zset"):
                pipe.expire("%s:%d" % (kind, i), 3600 + i)
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()


def test_full_sync_of_every_type_with_ttls(primary):
    r = primary.client()
    r.flushall()
    fill_every_type(r, 20000)          # 100k keys
    r.set("gone-soon", "x", px=1)      # expired before the copy: never reaches the replica
    replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, shards=2)
    try:
        wait_in_sync(primary, replica)
        rr = replica.client()
        assert rr.dbsize() == 100000
        for key in ("str:3", "hash:3", "list:3", "set:3", "zset:3", "str:4"):
            assert rr.type(key) == r.type(key)
            assert rr.pexpiretime(key) == r.pexpiretime(key)
        assert rr.hgetall("hash:5") == {b"f1": b"5", b"f2": b"xxxxx"}
        assert rr.lrange("list:7", 0, -1) == [b"a", b"7", b"c"]
        assert rr.zrange("zset:9", 0, -1, withscores=True) == [(b"a", 1.5), (b"b9", 9.0)]
        assert info(replica)["master_link_status"] == "up"
        assert primary.client().info("stats")["sync_full"] >= 1
    finally:
        replica.stop()


def writer(r, stop, counter):
    i = 0
    while not stop.is_set():
        pipe = r.pipeline(transaction=False)
        for _ in range(50):
            i += 1
            pipe.set("w:%d" % (i % 3000), i)
            pipe.incr("counter")
            pipe.lpush("log", i)
            pipe.ltrim("log", 0, 99)
            pipe.hincrby("h", "f%d" % (i % 10), 1)
            pipe.zincrby("z", 1, "m%d" % (i % 20))
            if i % 7 == 0:
                pipe.delete("w:%d" % ((i * 3) % 3000))
            if i % 11 == 0:
                pipe.expire("w:%d" % (i % 3000), 1000)
        pipe.execute()
        counter[0] = i


def test_live_streaming_under_write_load(primary):
    r = primary.client()
    r.flushall()
    replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, shards=2)
    try:
        assert wait_for(lambda: link_up(replica))
        stop, counter = threading.Event(), [0]
        thread = threading.Thread(target=writer, args=(r, stop, counter))
        thread.start()
        seen = set()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:      # the replica follows while writes go on
            value = replica.client().get("counter")
            if value is not None:
                seen.add(int(value))
            time.sleep(0.05)
        stop.set()
        thread.join()
        assert len(seen) > 3
        wait_in_sync(primary, replica)
        assert replica.client().get("counter") == str(counter[0]).encode()
    finally:
        replica.stop()


@pytest.fixture(scope="module")
def pair(primary):
    replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, shards=2)
    assert wait_for(lambda: link_up(replica))
    yield primary, replica
    replica.stop()


def test_replica_refuses_writes_and_serves_reads(pair):
    primary, replica = pair
    primary.client().set("shared", "from-primary")
    assert wait_for(lambda: replica.client().get("shared") == b"from-primary")
    rr = replica.client()
    for write in (("SET", "k", "v"), ("DEL", "shared"), ("LPUSH", "l", "x"), ("INCR", "n"),
                  ("FLUSHALL",)):
        with pytest.raises(redis.ResponseError) as err:
            rr.execute_command(*write)
        assert str(err.value) == "You can't write against a read only replica."
    assert rr.get("shared") == b"from-primary"
    rr.config_set("replica-read-only", "no")          # a writable replica: local writes
    try:
        assert rr.set("local-only", "1")
        assert info(replica)["slave_read_only"] == 0
    finally:
        rr.config_set("replica-read-only", "yes")
    with pytest.raises(redis.ResponseError, match="read only replica"):
        rr.set("local-only", "2")
    primary.client().set("local-only", "p")         # the primary's writes put it right
    primary.client().delete("local-only")
    assert wait_for(lambda: rr.get("local-only") is None)


def test_wait_counts_acknowledging_replicas(pair):
    primary, replica = pair
    r = primary.client()
    r.set("waited", "1")
    assert r.execute_command("WAIT", 1, 5000) == 1
    assert replica.client().get("waited") == b"1"      # WAIT's promise: it is there already
    assert r.execute_command("WAIT", 2, 200) == 1      # only one replica: times out with 1
    assert r.execute_command("WAIT", 0, 0) == 1
    with pytest.raises(redis.ResponseError, match="WAIT cannot be used with replica instances"):
        replica.client().execute_command("WAIT", 1, 10)
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        r.execute_command("WAIT", 1, -1)


def test_role_and_info(pair):
    primary, replica = pair
    primary.client().set("x", "y")
    assert primary.client().execute_command("WAIT", 1, 5000) == 1
    role = primary.client().execute_command("ROLE")
    assert role[0] == b"master" and role[1] >= 1
    assert len(role[2]) == 1 and role[2][0][0] == b"127.0.0.1"
    assert role[2][0][1] == str(replica.port).encode()
    rrole = replica.client().execute_command("ROLE")
    assert rrole[:4] == [b"slave", b"127.0.0.1", primary.port, b"connected"]
    assert rrole[4] == role[1]
    pinfo, rinfo = info(primary), info(replica)
    assert pinfo["role"] == "master" and pinfo["connected_slaves"] == 1
    assert pinfo["slave0"]["port"] == replica.port and pinfo["slave0"]["state"] == "online"
    assert len(pinfo["master_replid"]) == 40
    assert pinfo["repl_backlog_active"] == 1
    assert pinfo["fastcache_repl_records"] >= 1 and pinfo["fastcache_repl_frames"] >= 1
    assert rinfo["role"] == "slave" and rinfo["master_port"] == primary.port
    assert rinfo["master_link_status"] == "up" and rinfo["master_sync_in_progress"] == 0
    assert rinfo["master_replid"] == pinfo["master_replid"]
    assert rinfo["slave_repl_offset"] == pinfo["master_repl_offset"]
    assert "fastcache_repl_shard0" in rinfo and "fastcache_repl_shard1" in pinfo
    assert replica.client().execute_command("HELLO", "2")[11] == b"replica"
    assert digest(primary) == digest(replica)


def test_wait_inside_a_transaction_does_not_block(pair):
    primary, _ = pair
    pipe = primary.client().pipeline(transaction=True)
    pipe.set("in-txn", "1")
    pipe.execute_command("WAIT", 1, 0)
    assert pipe.execute() == [True, 1]


def test_an_idle_primary_parks_its_timer_and_ships_the_next_write_at_once(pair):
    primary, replica = pair
    r = primary.client()
    old = r.config_get("repl-batch-max-delay-us")["repl-batch-max-delay-us"]
    try:
        r.config_set("repl-batch-max-delay-us", "200000")
        r.set("before-lull", "1")
        time.sleep(1.0)                  # ticks that find nothing park the timers
        frames = info(primary)["fastcache_repl_frames"]
        r.set("after-lull", "1")
        # Parked, the record leaves before the reply rather than at a later tick.
        assert info(primary)["fastcache_repl_frames"] == frames + 1
        assert wait_for(lambda: replica.client().get("after-lull") == b"1")
    finally:
        r.config_set("repl-batch-max-delay-us", old)
    wait_in_sync(primary, replica)


@pytest.mark.parametrize("settings", [
    {"repl-send-policy": "immediate", "repl-compression": "none"},
    {"repl-batch-max-records": "3", "repl-batch-max-delay-us": "0", "repl-zstd-level": "5"},
])
def test_batching_settings_change_at_run_time(pair, settings):
    primary, replica = pair
    r = primary.client()
    old = {name: r.config_get(name)[name] for name in settings}
    try:
        for name, value in settings.items():
            assert r.config_set(name, value)
        for i in range(50):
            r.set("tuned:%d" % i, i)
        assert r.execute_command("WAIT", 1, 5000) == 1
        assert replica.client().get("tuned:49") == b"49"
    finally:
        for name, value in old.items():
            r.config_set(name, value)
    wait_in_sync(primary, replica)
