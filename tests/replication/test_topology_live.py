"""Replicas with another shard count than their primary, promotion, and auth."""
import threading

import pytest
import redis

from tests.replication.live import Node, info, link_up, wait_for, wait_in_sync
from tests.replication.test_sync_live import fill_every_type, writer


def multi_key_writes(r):
    """Writes whose keys a replica with other slot ranges must split or run across shards."""
    r.mset({"mk:%d" % i: i for i in range(200)})
    r.delete(*["mk:%d" % i for i in range(0, 200, 3)])
    r.sadd("src", *range(20))
    for i in range(40):
        r.rename("mk:%d" % (3 * i + 1), "renamed:%d" % i)
        r.smove("src", "dst:%d" % (i % 4), i % 20)
        r.rpoplpush("src-list", "mk-list")
        r.lpush("src-list", i)
    r.sunionstore("union", "dst:0", "dst:1", "dst:2")
    r.copy("renamed:1", "copied", replace=True)
    r.msetnx({"nx:a": 1, "nx:b": 2})
    r.zadd("za", {"a": 1, "b": 2})
    r.zadd("zb", {"b": 3, "c": 4})
    r.zunionstore("zu", ["za", "zb"])


@pytest.mark.parametrize("primary_shards,replica_shards", [(4, 2), (3, 2), (1, 3)])
def test_replica_with_another_shard_count(primary_shards, replica_shards):
    primary = Node(shards=primary_shards)
    try:
        r = primary.client()
        fill_every_type(r, 2000)
        replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, shards=replica_shards)
        try:
            wait_in_sync(primary, replica)
            stop, counter = threading.Event(), [0]
            thread = threading.Thread(target=writer, args=(r, stop, counter))
            thread.start()
            try:
                multi_key_writes(r)
            finally:
                stop.set()
                thread.join()
            wait_in_sync(primary, replica)
            assert replica.client().get("counter") == str(counter[0]).encode()
            # Keyless records: each primary shard's touches only its own keys.
            r.execute_command("SWAPDB", 0, 1)
            wait_in_sync(primary, replica)
            assert redis.Redis(port=replica.port, db=1).get("counter") == str(counter[0]).encode()
            redis.Redis(port=primary.port, db=1).flushdb()
            redis.Redis(port=primary.port, db=0).set("left", "alone")
            wait_in_sync(primary, replica)
            assert redis.Redis(port=replica.port, db=1).dbsize() == 0
            assert replica.client().get("left") == b"alone"
            r.flushall()
            wait_in_sync(primary, replica)
            assert replica.client().dbsize() == 0
        finally:
            replica.stop()
    finally:
        primary.stop()


def test_promotion_keeps_the_data_and_starts_a_new_history():
    primary = Node(shards=2)
    replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, shards=2)
    try:
        r = primary.client()
        r.mset({"a": 1, "b": 2})
        wait_in_sync(primary, replica)
        old_replid = info(primary)["master_replid"]
        rr = replica.client()
        assert rr.execute_command("REPLICAOF", "NO", "ONE") == b"OK"
        assert info(replica)["role"] == "master"
        assert info(replica)["master_replid"] != old_replid
        assert rr.mget("a", "b") == [b"1", b"2"]
        rr.set("a", "promoted")                  # writable now
        assert rr.get("a") == b"promoted"
        assert rr.execute_command("ROLE")[0] == b"master"
        # Following the old primary again: a full copy makes it equal again.
        assert rr.execute_command("REPLICAOF", "127.0.0.1", primary.port) == b"OK"
        assert rr.execute_command("REPLICAOF", "127.0.0.1", primary.port) == \
            b"OK Already connected to specified master"
        wait_in_sync(primary, replica)
        assert rr.get("a") == b"1"
        with pytest.raises(redis.ResponseError, match="read only replica"):
            rr.set("a", "x")
        with pytest.raises(redis.ResponseError, match="Invalid master port"):
            rr.execute_command("REPLICAOF", "127.0.0.1", "99999")
    finally:
        replica.stop()
        primary.stop()


def test_wrong_masterauth_is_a_clear_error_and_no_sync():
    primary = Node(shards=2, password="s3cret")
    replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, "--masterauth", "wrong",
                   shards=2)
    try:
        primary.client().set("secret", "data")
        assert wait_for(lambda: "fastcache_master_link_error" in info(replica))
        rinfo = info(replica)
        assert rinfo["master_link_status"] == "down"
        assert "WRONGPASS" in rinfo["fastcache_master_link_error"]
        assert "Unable to AUTH to MASTER" in replica.output()
        assert replica.client().dbsize() == 0
        replica.client().config_set("masterauth", "s3cret")
        wait_in_sync(primary, replica)
        assert replica.client().get("secret") == b"data"
    finally:
        replica.stop()
        primary.stop()


def test_replica_without_masterauth_is_refused():
    primary = Node(shards=1, password="s3cret")
    replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, shards=1)
    try:
        assert wait_for(lambda: "fastcache_master_link_error" in info(replica))
        assert "NOAUTH" in info(replica)["fastcache_master_link_error"]
        assert not link_up(replica)
    finally:
        replica.stop()
        primary.stop()
