"""Cache(path=...): data survives close/reopen, in the server's format, and one
process at a time holds the directory."""
import os
import subprocess
import sys
import time

import pytest
import redis

from fastcache import Cache
from fastcache.persistence.datadir import DataDirError
from tests.support.servers import checkout_env, free_port, wait_ready


def fill(c):
    c.set("s", "v")
    c.set("ttl", "t", ex=1000)
    c.set("gone", "x", px=50)
    c.rpush("l", "a", "b", "c")
    c.hset("h", mapping={"f1": "1", "f2": "2"})
    c.sadd("set", "x", "y", "z")
    c.zadd("z", {"m1": 1.5, "m2": -2})
    c.incrbyfloat("f", "1.25")
    c.incr("n", 41)
    c.incr("n")
    c.spop("set")


def snapshot_of(c):
    return {
        "s": c.get("s"), "ttl": c.get("ttl"), "gone": c.get("gone"), "l": c.lrange("l", 0, -1),
        "h": c.hgetall("h"), "set": c.smembers("set"), "z": [tuple(pair) for pair in c.zrange("z", 0, -1, withscores=True)],
        "f": c.get("f"), "n": c.get("n"), "keys": sorted(c.keys("*")),
    }


@pytest.mark.parametrize("options", [
    {"appendonly": "yes", "appendfsync": "always", "save": ""},   # WAL only
    {"appendonly": "no"},                                          # snapshot at close
    {"appendonly": "yes"},                                         # both
])
def test_reopen_keeps_data(tmp_path, options):
    c = Cache(path=tmp_path, **options)
    fill(c)
    before = snapshot_of(c)
    c.close()
    time.sleep(0.06)  # "gone" expires meanwhile and must stay gone
    before["gone"] = None
    before["keys"] = [k for k in before["keys"] if k != b"gone"]
    c = Cache(path=tmp_path, **options)
    try:
        after = snapshot_of(c)
        assert after == before
        assert 990 < c.ttl("ttl") <= 1000
    finally:
        c.close()


def test_wal_survives_without_close(tmp_path):
    """A Cache dropped without close() (a crash, in effect) keeps what the WAL has."""
    script = ("from fastcache import Cache\n"
              "c = Cache(path=%r, appendonly='yes', appendfsync='always', save='')\n"
              "c.set('k', 'v'); c.incr('n', 5)\n"
              "import os; os._exit(0)\n" % str(tmp_path))
    subprocess.run([sys.executable, "-c", script], check=True, env=checkout_env(), timeout=60)
    c = Cache(path=tmp_path, appendonly="yes")
    try:
        assert c.mget("k", "n") == [b"v", b"5"]
    finally:
        c.close()


def test_second_opener_is_refused_with_the_holder_named(tmp_path):
    c = Cache(path=tmp_path)
    try:
        with pytest.raises(DataDirError, match="in use by fastcache.Cache pid %d" % os.getpid()):
            Cache(path=tmp_path)
    finally:
        c.close()
    Cache(path=tmp_path).close()   # free again after close()


def test_server_refuses_a_directory_a_cache_holds(tmp_path):
    c = Cache(path=tmp_path)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "fastcache", "--port", str(free_port()), "--dir", str(tmp_path)],
            capture_output=True, text=True, env=checkout_env(), timeout=60)
        assert proc.returncode != 0
        assert "in use by fastcache.Cache pid %d" % os.getpid() in proc.stdout + proc.stderr
    finally:
        c.close()


def _server(tmp_path, shards):
    port = free_port()
    log = open(tmp_path / ("server-%d.log" % port), "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastcache", "--port", str(port), "--dir", str(tmp_path),
         "--shards", str(shards), "--appendonly", "yes"],
        stdout=log, stderr=subprocess.STDOUT, env=checkout_env())
    wait_ready(port, proc, log_path=log.name)
    return proc, port, log


@pytest.mark.parametrize("protocol", [2, 3])
def test_round_trip_through_the_server(tmp_path, protocol):
    data = tmp_path / "data"
    c = Cache(path=data, appendonly="yes")
    fill(c)
    before = snapshot_of(c)
    c.close()
    before["gone"] = None
    before["keys"] = [k for k in before["keys"] if k != b"gone"]
    time.sleep(0.06)
    proc, port, log = _server(data, shards=3)   # another shard count: resharded on start
    try:
        r = redis.Redis(port=port, protocol=protocol)
        assert snapshot_of(r) == before
        r.set("from-server", "hello")
        r.lpush("l", "front")
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert proc.returncode == 0
    c = Cache(path=data)
    try:
        assert c.get("from-server") == b"hello"
        assert c.lrange("l", 0, -1) == [b"front", b"a", b"b", b"c"]
        assert c.get("n") == b"42"
    finally:
        c.close()
