"""Crashes and restarts on either side never leave the replica silently different."""
import threading

import pytest

from tests.replication.live import Node, info, link_up, started_pair, wait_for, wait_in_sync
from tests.replication.test_resync_live import stats, write_batch
from tests.replication.test_sync_live import writer


def start_pair(primary_flags=(), replica_flags=(), shards=(2, 2)):
    primary = Node(*primary_flags, shards=shards[0])
    replica = Node("--replicaof", "127.0.0.1 %d" % primary.port, *replica_flags,
                   shards=shards[1])
    return started_pair(primary, replica, lambda: link_up(replica))


@pytest.mark.parametrize("fsync,shards", [("everysec", (2, 2)), ("always", (2, 2)),
                                          ("everysec", (4, 2)), ("everysec", (1, 2))])
def test_replica_killed_and_restarted_resumes_without_a_full_copy(fsync, shards):
    primary, replica = start_pair(("--repl-backlog-size", "32mb"),
                                  ("--appendonly", "yes", "--appendfsync", fsync), shards)
    try:
        r = primary.client()
        write_batch(r, "before", 1000)
        wait_in_sync(primary, replica)
        full, partial, _ = stats(primary)
        stop, counter = threading.Event(), [0]
        thread = threading.Thread(target=writer, args=(r, stop, counter))
        thread.start()
        try:
            wait_for(lambda: counter[0] > 2000, 10)
            replica.kill9()                   # mid-stream, records in flight
            write_batch(r, "while-down", 500)
        finally:
            stop.set()
            thread.join()
        replica.start()
        wait_in_sync(primary, replica)
        assert wait_for(lambda: stats(primary)[1] == partial + 1)
        assert stats(primary)[0] == full
        assert replica.client().get("counter") == str(counter[0]).encode()
    finally:
        replica.stop()
        primary.stop()


def test_primary_killed_and_restarted_with_its_data():
    primary, replica = start_pair(("--appendonly", "yes", "--appendfsync", "always"))
    try:
        r = primary.client()
        write_batch(r, "before", 1000)
        wait_in_sync(primary, replica)
        full = stats(primary)[0]
        primary.kill9()
        primary.start()
        r = primary.client()
        assert r.get("before:count") == b"1000"
        write_batch(r, "after", 200)
        wait_in_sync(primary, replica)
        assert replica.client().get("after:count") == b"200"
        # A restarted primary has a new history: the replica copied it afresh.
        assert stats(primary)[0] >= 1 and full >= 1
        assert info(replica)["master_replid"] == info(primary)["master_replid"]
    finally:
        replica.stop()
        primary.stop()


def test_primary_restarted_without_its_data_empties_the_replica():
    primary, replica = start_pair()
    try:
        write_batch(primary.client(), "before", 1000)
        wait_in_sync(primary, replica)
        primary.kill9()
        primary.wipe()
        primary.start()
        primary.client().set("only", "this")
        wait_in_sync(primary, replica)
        assert replica.client().dbsize() == 1
        assert replica.client().get("only") == b"this"
    finally:
        replica.stop()
        primary.stop()
