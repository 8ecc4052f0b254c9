"""Direct links: each primary shard's frames go from the worker that owns it to
the replica worker that applies them, while the replica still counts as one."""
import types

from fastcache.replication.direct import direct_shards
from tests.replication.live import Node, info, link_up, wait_for, wait_in_sync


def shards_for(primary_shards, replica_shards, handoff=True):
    worker = types.SimpleNamespace(nshards=primary_shards, handoff=object() if handoff else None)
    return direct_shards(worker, replica_shards)


def test_direct_shards_are_those_inside_one_replica_shard():
    assert shards_for(2, 2) == (0, 1)
    assert shards_for(4, 2) == (0, 1, 2, 3)
    assert shards_for(3, 2) == (0, 2)          # shard 1's slots straddle both replica shards
    assert shards_for(2, 4) == ()
    assert shards_for(2, 0) == ()              # not asked for
    assert shards_for(2, 2, handoff=False) == ()


def test_direct_links_carry_the_shards_and_the_replica_counts_once():
    primary = Node(shards=2)
    replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, shards=2)
    try:
        assert wait_for(lambda: link_up(replica))
        assert wait_for(lambda: "2 on direct links" in replica.output())
        r = primary.client()
        pipe = r.pipeline(transaction=False)
        for i in range(2000):
            pipe.set("d:%d" % i, i)
        pipe.execute()
        assert r.execute_command("WAIT", 1, 5000) == 1
        assert replica.client().get("d:1999") == b"1999"
        assert len(r.client_list(_type="replica")) == 1
        pinfo = info(primary)
        assert pinfo["connected_slaves"] == 1 and pinfo["slave0"]["state"] == "online"
        assert pinfo["slave0"]["offset"] == pinfo["master_repl_offset"]
        assert info(replica)["slave_repl_offset"] == pinfo["master_repl_offset"]
        assert r.execute_command("ROLE")[1] == replica.client().execute_command("ROLE")[4]
        # Killing the one replica connection ends the direct links too; all resume.
        full = r.info("stats")["sync_full"]
        assert r.client_kill_filter(_type="replica") == 1
        r.set("after-kill", "1")
        wait_in_sync(primary, replica)
        assert wait_for(lambda: info(primary)["connected_slaves"] == 1)
        assert r.info("stats")["sync_full"] == full
    finally:
        replica.stop()
        primary.stop()
