"""Pub/sub against real servers: replies byte for byte like redis-server,
delivery between clients on different workers, and slow subscribers."""
import socket
import time

import pytest

from tests.integration.conftest import make_client
from tests.support.procs import start_fastcache_argv
from tests.support.resp import RawClient, encode_command

# (Redis answers a bare UNSUBSCRIBE in its hash table's order, so scripts
# leave at most one subscription for it.)
SCRIPTS = {
    "subscribed_mode": [("SUBSCRIBE", "a", "b"), ("GET", "x"), ("PING",), ("PING", "hi"),
                        ("PUBSUB", "NUMPAT"), ("UNSUBSCRIBE", "b"), ("UNSUBSCRIBE",), ("PING",)],
    "unsubscribe_nothing": [("UNSUBSCRIBE",), ("PUNSUBSCRIBE",)],
    "patterns": [("PSUBSCRIBE", "a*", "b?"), ("PUNSUBSCRIBE", "a*"), ("SUBSCRIBE", "a", "a"),
                 ("RESET",), ("PING",)],
    "introspection": [("PUBSUB", "CHANNELS"), ("PUBSUB", "NUMSUB", "a", "b"),
                      ("PUBSUB", "NUMPAT"), ("PUBSUB", "FOO"), ("PUBSUB", "HELP"),
                      ("PUBLISH", "a", "hi"), ("SUBSCRIBE",), ("PUBSUB", "CHANNELS", "a", "b")],
}


def _replies(port, proto, script):
    c = RawClient(port)
    try:
        if proto == 3:
            c.call("HELLO", "3")
        c.send(b"".join(encode_command(cmd) for cmd in script))
        out = []
        for _ in script:
            out.append(c.read_reply())
        # Multi-channel (un)subscribes answer once per channel: collect the rest.
        c.sock.settimeout(0.3)
        try:
            while True:
                out.append(c.read_reply())
        except (socket.timeout, ConnectionError):
            pass
        return out
    finally:
        c.close()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_match_redis(fc, redis_ref, protocol, name):
    script = SCRIPTS[name]
    assert _replies(fc.port, protocol, script) == _replies(redis_ref.port, protocol, script)


def _subscriber(port, proto, *channels, pattern=False):
    c = RawClient(port)
    if proto == 3:
        c.call("HELLO", "3")
    c.send(encode_command(("PSUBSCRIBE" if pattern else "SUBSCRIBE",) + channels))
    for _ in channels:
        c.read_reply()
    return c


def test_publish_reaches_subscribers_on_every_worker(fc4, protocol):
    """Enough subscribers that every worker has some; PUBLISH counts them all."""
    subs = [_subscriber(fc4.port, protocol, "news") for _ in range(12)]
    psubs = [_subscriber(fc4.port, protocol, "n*", pattern=True) for _ in range(4)]
    publisher = make_client(fc4.port)
    try:
        assert publisher.pubsub_numsub("news") == [("news", 12)]
        assert publisher.pubsub_numpat() == 1
        assert publisher.publish("news", "hello") == 16
        kind = b">" if protocol == 3 else b"*"
        for s in subs:
            assert s.read_reply() == kind + b"3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
        for s in psubs:
            assert s.read_reply() == (kind + b"4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n"
                                      b"$5\r\nhello\r\n")
        assert publisher.publish("other", "x") == 0
    finally:
        for s in subs + psubs:
            s.close()
        publisher.close()


def test_redis_py_pubsub_resp2_and_resp3(fc4, protocol):
    r = make_client(fc4.port, protocol)
    p = r.pubsub()
    p.subscribe("chan")
    assert p.get_message(timeout=2)["type"] == "subscribe"
    others = [make_client(fc4.port) for _ in range(4)]
    for i, o in enumerate(others):
        assert o.publish("chan", "m%d" % i) == 1
    got = [p.get_message(timeout=2) for _ in others]
    assert [m["data"] for m in got] == ["m%d" % i for i in range(4)]
    p.close()
    r.close()
    for o in others:
        o.close()


def test_slow_subscriber_is_disconnected_and_others_unaffected():
    server = start_fastcache_argv("--shards", "2", "--client-output-buffer-limit",
                                  "pubsub", "1mb", "256kb", "60")
    try:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(encode_command(("SUBSCRIBE", "flood")))
        time.sleep(0.2)
        good = _subscriber(server.port, 2, "flood")
        publisher = make_client(server.port)
        payload = "x" * 16384
        deadline = time.monotonic() + 10
        receivers = 2
        sent = 0
        while receivers == 2 and time.monotonic() < deadline and sent < 2000:
            receivers = publisher.publish("flood", payload)
            sent += 1
            if sent % 20 == 0:
                for _ in range(20):
                    good.read_reply()
        assert receivers == 1, "the slow subscriber was never dropped"
        assert publisher.ping() is True
        assert publisher.pubsub_numsub("flood") == [("flood", 1)]
        slow.close()
        good.close()
        publisher.close()
    finally:
        server.stop()
