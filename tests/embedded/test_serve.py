"""Cache.serve(): redis-cli and redis-py see and change the Cache's live data."""
import shutil
import socket
import subprocess
import threading
import time

import pytest
import redis

from fastcache import Cache

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli not installed")


def cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), *map(str, args)], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return out.stdout.rstrip("\n")


@pytest.fixture
def served():
    cache = Cache(decode_responses=True)
    host, port = cache.serve(port=0)
    client = redis.Redis(port=port, decode_responses=True, socket_timeout=10)
    yield cache, port, client
    client.close()
    cache.close()


def test_both_sides_see_and_change_the_same_data(served):
    cache, port, client = served
    cache.set("from-python", "hello")
    cache.hset("h", mapping={"a": 1})
    assert cli(port, "GET", "from-python") == "hello"
    assert cli(port, "HGET", "h", "a") == "1"
    assert cli(port, "SET", "from-cli", "world") == "OK"
    assert cli(port, "RPUSH", "l", "x", "y") == "2"
    assert cache.get("from-cli") == "world"
    assert cache.lrange("l", 0, -1) == ["x", "y"]
    assert client.incr("n") == 1
    assert cache.incr("n") == 2
    assert client.get("n") == "2"
    assert cli(port, "DBSIZE") == "5"
    assert cli(port, "CONFIG", "GET", "port") == "port\n%d" % port
    cache.flushall()
    assert cli(port, "DBSIZE") == "0"


def test_concurrent_writers_on_both_sides(served):
    cache, port, client = served
    rounds = 500

    def remote():
        c = redis.Redis(port=port)
        for _ in range(rounds):
            c.incr("counter")
            c.rpush("list", "r")
        c.close()

    threads = [threading.Thread(target=remote) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(rounds):
        cache.incr("counter")
        cache.rpush("list", "l")
    for t in threads:
        t.join()
    assert cache.get("counter") == str(3 * rounds)
    assert client.llen("list") == 3 * rounds


def _pop_while(blocked_pop, push):
    """What blocked_pop() returns when push() runs while it waits."""
    got = []
    t = threading.Thread(target=lambda: got.append(blocked_pop()))
    t.start()
    time.sleep(0.2)
    push()
    t.join(5)
    return got


def test_served_blocked_client_gets_an_in_process_push(served):
    cache, port, client = served
    got = _pop_while(lambda: client.blpop(["jobs"], timeout=10),
                     lambda: cache.rpush("jobs", "job"))
    assert got == [("jobs", "job")]


def test_in_process_blocked_caller_gets_a_served_push(served):
    cache, port, client = served
    got = _pop_while(lambda: cache.brpop(["jobs"], timeout=10),
                     lambda: cli(port, "LPUSH", "jobs", "job"))
    assert got == [("jobs", "job")]


def test_in_process_publish_reaches_served_subscribers(served):
    cache, port, client = served
    pubsub = client.pubsub()
    pubsub.subscribe("news")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    assert cache.publish("news", "hi") == 1
    message = pubsub.get_message(timeout=5)
    assert (message["channel"], message["data"]) == ("news", "hi")
    pubsub.close()


def test_in_process_write_breaks_a_served_watch(served):
    cache, port, client = served
    with client.pipeline() as pipe:
        pipe.watch("w")
        cache.set("w", "changed")
        pipe.multi()
        pipe.set("w", "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert cache.get("w") == "changed"


def test_close_stops_serving(served):
    cache, port, client = served
    assert cli(port, "PING") == "PONG"
    cache.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    cache.set("still", "works")
    assert cache.get("still") == "works"


def test_shutdown_from_a_client_stops_serving_only():
    cache = Cache()
    try:
        _, port = cache.serve(port=0)
        cache.set("k", "v")
        subprocess.run(["redis-cli", "-p", str(port), "SHUTDOWN"], capture_output=True, timeout=10)
        deadline = time.monotonic() + 5
        while cache._engine.server.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not cache._engine.server.thread.is_alive()
        assert cache.get("k") == b"v"
        _, port2 = cache.serve(port=0)  # and it can serve again
        assert cli(port2, "GET", "k") == "v"
    finally:
        cache.close()


def test_serving_twice_or_on_a_busy_port_fails():
    with Cache() as cache, Cache() as other:
        _, port = cache.serve(port=0)
        with pytest.raises(RuntimeError, match="already served"):
            cache.serve(port=0)
        with pytest.raises(OSError):
            other.serve(port=port)
