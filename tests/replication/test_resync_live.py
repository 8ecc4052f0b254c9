"""A replica that loses its link catches up: from the backlog when it still
holds what the replica missed (partial), with a full copy when it does not."""
import os
import signal

import pytest

from tests.replication.live import Node, info, link_up, started_pair, wait_for, wait_in_sync


def stats(node):
    s = node.client().info("stats")
    return s["sync_full"], s["sync_partial_ok"], s["sync_partial_err"]


def write_batch(r, prefix, n, size=100):
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set("%s:%d" % (prefix, i), os.urandom(size))
        pipe.incr("%s:count" % prefix)
        pipe.hset("%s:h" % prefix, "f%d" % (i % 50), i)
    pipe.execute()


def connected(primary, n):
    return info(primary)["connected_slaves"] == n and info(primary).get("slave0", {}).get(
        "state", "online") == "online"


def start_pair(*primary_flags):
    primary = Node(*primary_flags, shards=2)
    replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, shards=2)
    return started_pair(primary, replica, lambda: link_up(replica) and connected(primary, 1))


def stopped_until_dropped(primary, replica):
    """SIGSTOP the replica and write until the primary drops it as too slow."""
    r = primary.client()
    replica.signal_all(signal.SIGSTOP)
    for _ in range(40):                  # far more than the socket buffers and the limit
        write_batch(r, "during", 500, size=1000)
        if info(primary)["connected_slaves"] == 0:
            break
    assert wait_for(lambda: info(primary)["connected_slaves"] == 0, 10)
    assert info(primary)["fastcache_repl_dropped_slow_replicas"] >= 1


def test_killed_link_resumes_from_the_backlog():
    primary, replica = start_pair("--repl-backlog-size", "16mb")
    try:
        r = primary.client()
        write_batch(r, "before", 500)
        wait_in_sync(primary, replica)
        full, partial, _ = stats(primary)
        assert r.client_kill_filter(_type="replica") == 1
        write_batch(r, "during", 2000)
        wait_in_sync(primary, replica)
        assert wait_for(lambda: connected(primary, 1))
        assert stats(primary)[:2] == (full, partial + 1)
        assert replica.client().get("during:count") == b"2000"
    finally:
        replica.stop()
        primary.stop()


@pytest.mark.parametrize("backlog,resync", [("64mb", "partial"), ("16kb", "full")])
def test_stopped_replica_is_dropped_then_catches_up(backlog, resync):
    """A replica too slow to read is dropped; it comes back from the backlog if the
    backlog still reaches back to it, else with a full copy."""
    primary, replica = start_pair("--repl-backlog-size", backlog, "--repl-compression", "none",
                                  "--client-output-buffer-limit", "replica 256kb 128kb 1")
    try:
        r = primary.client()
        write_batch(r, "before", 100)
        wait_in_sync(primary, replica)
        full, partial, errors = stats(primary)
        stopped_until_dropped(primary, replica)
        write_batch(r, "after", 100)
        replica.signal_all(signal.SIGCONT)
        wait_in_sync(primary, replica)
        assert wait_for(lambda: connected(primary, 1))
        if resync == "partial":
            assert stats(primary) == (full, partial + 1, errors)
        else:
            assert stats(primary) == (full + 1, partial, errors + 1)
    finally:
        replica.stop()
        primary.stop()


def test_full_copy_larger_than_the_output_limit():
    """The copy itself does not count against client-output-buffer-limit."""
    primary = Node("--repl-compression", "none",
                   "--client-output-buffer-limit", "replica 256kb 128kb 1", shards=2)
    try:
        write_batch(primary.client(), "big", 20000, size=1000)     # ~20 MB: more than the sockets hold
        replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, shards=2)
        try:
            wait_in_sync(primary, replica)
            assert info(primary)["fastcache_repl_dropped_slow_replicas"] == 0
            assert stats(primary)[0] == 1
        finally:
            replica.stop()
    finally:
        primary.stop()
