"""Blocking list commands against real servers: Redis's replies, wake-ups by
pushes from other connections (other workers), fairness, timeouts."""
import socket
import threading
import time


from tests.integration.conftest import make_client
from tests.support.resp import RawClient, encode_command, run_script
from tests.support.shardkeys import one_per_shard

SCRIPT = [
    ("BLPOP", "a", "0.1"), ("BLPOP", "a", "-1"), ("BLPOP", "a", "x"), ("BLPOP", "a", "inf"),
    ("BLMOVE", "a", "b", "LEFT", "RIGHT", "0.1"), ("BLMOVE", "a", "b", "UP", "RIGHT", "0"),
    ("RPUSH", "a", "1", "2", "3"), ("BLPOP", "b", "a", "1"), ("BRPOP", "a", "1"),
    ("BRPOPLPUSH", "a", "c", "1"), ("BLMPOP", "0.1", "2", "x", "y", "LEFT"),
    ("BLMPOP", "0.1", "1", "c", "RIGHT", "COUNT", "5"), ("BLMPOP", "0.1", "0", "c", "LEFT"),
    ("SET", "s", "1"), ("BLPOP", "s", "1"), ("MULTI",), ("BLPOP", "zz", "10"), ("EXEC",),
    ("BZPOPMIN", "z", "0.1"), ("ZADD", "z", "1", "a", "2.5", "b", "3", "c"),
    ("BZPOPMIN", "y", "z", "1"), ("BZPOPMAX", "z", "1"), ("BZPOPMIN", "s", "1"),
    ("BZMPOP", "0.1", "1", "y", "MIN"), ("ZADD", "z", "7", "d"),
    ("BZMPOP", "1", "2", "y", "z", "MAX", "COUNT", "5"), ("BZMPOP", "1", "1", "z", "UP"),
    ("BZPOPMAX", "z", "-2"),
]


def test_replies_match_redis(fc, redis_ref, protocol):
    assert run_script(fc.port, SCRIPT, protocol) == run_script(redis_ref.port, SCRIPT, protocol)


def _blocked(port, *cmd):
    """A raw connection that sent a blocking command; read its reply later."""
    c = RawClient(port, timeout=10)
    c.send(encode_command(cmd))
    return c


def test_push_from_another_worker_wakes_the_waiter(fc4):
    keys = one_per_shard(4, prefix="q")
    pusher_clients = [make_client(fc4.port) for _ in range(6)]  # spread over the workers
    pusher_clients[0].flushall()
    for i, key in enumerate(keys):
        waiter = _blocked(fc4.port, "BLPOP", key, "5")
        time.sleep(0.05)
        pusher = pusher_clients[i % len(pusher_clients)]
        assert pusher.rpush(key, "v%d" % i) == 1
        expected = encode_command([key, "v%d" % i]).replace(b"*2", b"*2", 1)
        assert waiter.read_reply() == expected
        assert pusher.llen(key) == 0
        waiter.close()
    for c in pusher_clients:
        c.close()


def test_first_blocked_is_first_served(fc4):
    r = make_client(fc4.port)
    r.flushall()
    waiters = []
    for i in range(3):
        waiters.append(_blocked(fc4.port, "BRPOP", "fifo", "5"))
        time.sleep(0.05)
    r.lpush("fifo", "one")
    r.lpush("fifo", "two")
    r.lpush("fifo", "three")
    got = [w.read_reply() for w in waiters]
    assert got == [encode_command(["fifo", v]) for v in ("one", "two", "three")]
    for w in waiters:
        w.close()
    r.close()


def test_keys_on_several_shards(fc4):
    a, b = one_per_shard(4, prefix="m")[:2]
    r = make_client(fc4.port)
    r.flushall()
    waiter = _blocked(fc4.port, "BLPOP", a, b, "5")
    time.sleep(0.1)
    r.rpush(b, "x")
    assert waiter.read_reply() == encode_command([b, "x"])
    waiter.close()
    r.close()


def test_blmove_wakes_and_moves(fc4):
    r = make_client(fc4.port)
    r.flushall()
    src, dst = one_per_shard(4, prefix="mv")[:2]
    waiter = _blocked(fc4.port, "BLMOVE", src, dst, "LEFT", "RIGHT", "5")
    time.sleep(0.1)
    r.rpush(src, "item")
    assert waiter.read_reply() == b"$4\r\nitem\r\n"
    assert r.lrange(dst, 0, -1) == ["item"] and r.exists(src) == 0
    waiter.close()
    r.close()


def test_timeout_and_disconnect_lose_nothing(fc4):
    r = make_client(fc4.port)
    r.flushall()
    start = time.monotonic()
    assert r.blpop(["t"], timeout=0.3) is None
    assert 0.25 <= time.monotonic() - start < 5
    gone = socket.create_connection(("127.0.0.1", fc4.port))
    gone.sendall(encode_command(("BLPOP", "t", "0")))
    time.sleep(0.1)
    gone.close()
    time.sleep(0.2)
    r.rpush("t", "kept")
    assert r.lrange("t", 0, -1) == ["kept"]
    r.close()


def test_redis_py_blpop(fc, protocol):
    r = make_client(fc.port, protocol)
    r.flushall()
    result = {}

    def wait():
        c = make_client(fc.port, protocol)
        result["v"] = c.blpop(["job"], timeout=5)
        c.close()

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.2)
    r.rpush("job", "payload")
    t.join(10)
    assert result["v"] in (("job", "payload"), ["job", "payload"])
    r.close()


def test_bzpopmin_woken_by_zadd_from_another_worker(fc4):
    keys = one_per_shard(4, prefix="zq")
    clients = [make_client(fc4.port) for _ in range(5)]
    clients[0].flushall()
    for i, key in enumerate(keys):
        waiter = _blocked(fc4.port, "BZPOPMIN", key, "5")
        time.sleep(0.05)
        clients[i % 5].zadd(key, {"m": 1.5})
        assert waiter.read_reply() == encode_command([key, "m", "1.5"])
        waiter.close()
    for c in clients:
        c.close()


def test_blocking_commands_inside_a_cross_shard_exec(fc4, redis_ref):
    """Queued in MULTI they do not block; they take what the keys hold now,
    wherever those keys live."""
    a, b, c = one_per_shard(4, prefix="tx")[:3]
    script = [("RPUSH", b, "x", "y"), ("ZADD", c, "1", "m"), ("MULTI",), ("SET", a, "1"),
              ("BLPOP", "nothing", b, "5"), ("BRPOP", a + "-missing", "5"),
              ("BZPOPMIN", c, "5"), ("BLMOVE", b, a + "-list", "LEFT", "RIGHT", "5"),
              ("BLMPOP", "5", "2", a + "-missing", b, "LEFT"), ("EXEC",)]
    assert run_script(fc4.port, script) == run_script(redis_ref.port, script)
