"""DEBUG: SLEEP blocks a worker, POPULATE and SET-ACTIVE-EXPIRE reach every shard."""
import threading
import time

import pytest

from tests.server.conftest import client, raw
from tests.support.differential import compare
from tests.support.servers import start_redis


@pytest.fixture(scope="module")
def debug_redis(redis_ref):
    """A reference redis-server that allows DEBUG (Redis 7 refuses it by default)."""
    server = start_redis("--enable-debug-command", "yes")
    yield server
    server.stop()


@pytest.fixture
def debug_pair(fc, debug_redis, protocol):
    ours, theirs = raw(fc.port, protocol), raw(debug_redis.port, protocol)
    for c in (ours, theirs):
        c.call("FLUSHALL")
    yield ours, theirs
    ours.close()
    theirs.close()


def test_replies_match_redis(debug_pair):
    types = ["string", "integer", "double", "bignum", "null", "array", "set", "map", "verbatim",
             "true", "false", "nosuch"]
    compare(debug_pair, [("DEBUG", "PROTOCOL", t) for t in types] + [
        ("DEBUG",), ("DEBUG", "nosuch"), ("DEBUG", "SLEEP"), ("DEBUG", "SLEEP", "1", "2"),
        ("DEBUG", "SLEEP", "0"), ("DEBUG", "SLEEP", "abc"), ("DEBUG", "SLEEP", "-1"),
        ("DEBUG", "ERROR", "custom failure"), ("DEBUG", "ERROR", "two\r\nlines"),
        ("DEBUG", "ERROR"), ("DEBUG", "LOG", "hello"), ("DEBUG", "HELP", "x"),
        ("DEBUG", "POPULATE", "x"), ("DEBUG", "POPULATE", "-1"),
        ("DEBUG", "POPULATE", "1", "p", "-1"),
        ("DEBUG", "POPULATE", "1", "p", "2", "x"), ("DEBUG", "SET-ACTIVE-EXPIRE"),
        ("SET", "key:3", "mine"), ("DEBUG", "POPULATE", "50"), ("DBSIZE",),
        ("MGET", "key:0", "key:3", "key:49", "key:50"),
        ("DEBUG", "POPULATE", "20", "pre", "3"), ("DEBUG", "POPULATE", "20", "big", "12"),
        ("MGET", "pre:0", "pre:15", "big:7"), ("DBSIZE",),
        ("SELECT", "2"), ("DEBUG", "POPULATE", "5"), ("DBSIZE",),
    ])


def test_protocol_attrib_and_push(fc, debug_redis):
    for port in (fc.port, debug_redis.port):
        c = raw(port, 3)
        c.send(b"*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$6\r\nattrib\r\n")
        assert c.read_reply() == b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n"
        assert c.read_reply() == b"$39\r\nSome real reply following the attribute\r\n"
        c.send(b"*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$4\r\npush\r\n")
        assert c.read_reply() == b">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n"
        assert c.read_reply() == b"$40\r\nSome real reply following the push reply\r\n"


def test_help_lists_what_we_have(fc):
    lines = client(fc.port).execute_command("DEBUG", "HELP")
    assert lines[0].startswith("DEBUG <subcommand>")
    assert {"SLEEP <seconds>", "POPULATE <count> [<prefix>] [<size>]", "HELP"} <= set(lines)


def server_time(raw_client):
    """The server's clock, by TIME on a raw connection."""
    parts = raw_client.call("TIME").split(b"\r\n")
    return int(parts[2]) + int(parts[4]) / 1e6


def test_sleep_blocks_its_worker(fc):
    sleeper = raw(fc.port)
    worker = int(sleeper.call("CLIENT", "ID")[1:-2]) % fc.shards
    while True:  # a second connection on the same worker
        other = raw(fc.port)
        if int(other.call("CLIENT", "ID")[1:-2]) % fc.shards == worker:
            break
    started = time.time()
    thread = threading.Thread(target=sleeper.call, args=("DEBUG", "SLEEP", "0.5"))
    thread.start()
    time.sleep(0.1)
    answered = server_time(other)
    thread.join()
    assert answered >= started + 0.45  # the worker read TIME only once the sleep was over


def test_set_active_expire_reaches_every_shard(fc):
    r = client(fc.port)
    r.flushall()
    try:
        assert r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0") == "OK"
        for i in range(20):
            r.set("volatile:%d" % i, 1, px=20)
        time.sleep(0.4)
        assert r.dbsize() == 20  # expired, but nobody removed them
    finally:
        assert r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1") == "OK"
    deadline = time.monotonic() + 10
    while r.dbsize() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.dbsize() == 0
