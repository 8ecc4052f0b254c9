"""A worker killed with SIGKILL: with appendonly on, the supervisor brings the
workers back and each recovers its shard from disk; without it the server
stops rather than serve part of the keyspace."""
import os
import signal
import subprocess
import time

import pytest
import redis

from tests.support.servers import start_fastcache


def worker_pids(server):
    out = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True)
    return sorted(int(p) for p in out.stdout.split())


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_killed_worker_comes_back_with_its_shard(fsync):
    server = start_fastcache("--appendonly", "yes", "--appendfsync", fsync, "--save", "", shards=2)
    try:
        r = redis.Redis(port=server.port, socket_timeout=5)
        r.mset({"key:%d" % i: "v%d" % i for i in range(2000)})
        r.rpush("{list}", *range(100))
        for _ in range(50):
            r.incr("counter")
        before = worker_pids(server)
        assert len(before) == 2
        os.kill(before[0], signal.SIGKILL)
        assert wait_for(lambda: len(set(worker_pids(server)) - set(before)) == 2), server.output()
        r = redis.Redis(port=server.port, socket_timeout=5)
        assert wait_for(lambda: r.ping())
        assert wait_for(lambda: r.dbsize() == 2002), server.output()
        assert r.mget(["key:%d" % i for i in range(2000)]) == [b"v%d" % i for i in range(2000)]
        assert r.lrange("{list}", 0, -1) == [b"%d" % i for i in range(100)]
        assert r.get("counter") == b"50"
        assert server.proc.poll() is None
        assert "Restarting every worker" in server.output()
    finally:
        server.stop()


def test_without_appendonly_a_dead_worker_stops_the_server():
    server = start_fastcache("--save", "", shards=2)
    try:
        os.kill(worker_pids(server)[0], signal.SIGKILL)
        assert server.proc.wait(30) == 1
    finally:
        server.stop()
