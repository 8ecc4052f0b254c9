"""SLOWLOG, TIME, LASTSAVE and SHUTDOWN."""
import time

import pytest

from tests.server.conftest import client, raw
from tests.support.differential import compare
from tests.support.servers import start_fastcache
from tests.support.workers import one_client_per_worker


def test_errors_match_redis(pair):
    compare(pair, [
        ("SLOWLOG",), ("SLOWLOG", "nosuch"), ("SLOWLOG", "HELP"), ("SLOWLOG", "HELP", "x"),
        ("SLOWLOG", "GET", "-2"), ("SLOWLOG", "GET", "abc"), ("SLOWLOG", "GET", "1", "2"),
        ("SLOWLOG", "LEN", "x"), ("SLOWLOG", "RESET", "x"), ("SLOWLOG", "GET", "0"),
        ("TIME", "x"), ("LASTSAVE", "x"),
        ("SHUTDOWN", "nosuch"), ("SHUTDOWN", "ABORT"), ("SHUTDOWN", "NOSAVE", "SAVE"),
        ("SHUTDOWN", "ABORT", "NOW"), ("SHUTDOWN", "FORCE", "ABORT"),
    ])


def slowlog(r, count):
    """SLOWLOG GET through redis-py, which leaves the strings as bytes."""
    return [{k: v.decode() if isinstance(v, bytes) else v for k, v in entry.items()}
            for entry in r.slowlog_get(count)]


@pytest.fixture
def slow_everything(fc):
    admin = client(fc.port)
    admin.config_set("slowlog-log-slower-than", 0)
    admin.slowlog_reset()
    yield admin
    admin.config_set("slowlog-log-slower-than", 10000)
    admin.slowlog_reset()


def test_slowlog_gathers_every_worker(fc, slow_everything):
    clients = one_client_per_worker(lambda: client(fc.port), fc.shards)
    for index, c in clients.items():
        c.client_setname("w%d" % index)
        c.echo("from-worker-%d" % index)
    entries = slowlog(slow_everything, -1)
    echoes = {e["command"]: e for e in entries if e["command"].startswith("ECHO")}
    assert set(echoes) == {"ECHO from-worker-%d" % i for i in clients}
    for index in clients:
        entry = echoes["ECHO from-worker-%d" % index]
        assert entry["client_name"] == "w%d" % index and entry["duration"] >= 0
        assert entry["client_address"].startswith("127.0.0.1:")
    assert len({e["id"] for e in entries}) == len(entries)
    stamps = [e["start_time"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)
    assert slow_everything.slowlog_len() >= len(entries)
    assert len(slow_everything.slowlog_get(1)) == 1
    assert len(slow_everything.slowlog_get()) == min(10, slow_everything.slowlog_len())
    assert slow_everything.slowlog_reset() is True
    assert slow_everything.slowlog_len() == 0


def test_slowlog_keeps_long_arguments_short(fc, slow_everything):
    c = raw(fc.port)
    c.call("ECHO", "x" * 200)
    entries = slowlog(client(fc.port), -1)
    echoed = next(e for e in entries if e["command"].startswith("ECHO"))
    assert echoed["command"] == "ECHO " + "x" * 128 + "... (72 more bytes)"


def test_time_and_lastsave(fc, protocol):
    r = client(fc.port, protocol)
    seconds, micros = r.time()
    assert abs(seconds + micros / 1e6 - time.time()) < 5 and 0 <= micros < 1000000
    saved = r.lastsave()
    assert abs(saved.timestamp() - time.time()) < 3600
    for c in one_client_per_worker(lambda: client(fc.port), fc.shards).values():
        assert c.lastsave() == saved  # the same answer from every worker


def test_shutdown_from_any_worker():
    server = start_fastcache(shards=2)
    try:
        clients = {}
        while 1 not in clients:  # a connection on worker 1: not the first worker
            c = raw(server.port)
            clients[int(c.call("CLIENT", "ID")[1:-2]) % 2] = c
        c = clients[1]
        assert c.call("SHUTDOWN", "ABORT") == b"-ERR No shutdown in progress.\r\n"
        c.send(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
        with pytest.raises(ConnectionError):
            c.read_reply()  # closed without a reply
        assert server.proc.wait(10) == 0
    finally:
        server.stop()
