"""The wire protocol over raw sockets, byte for byte against redis-server 7.

Inline commands, deep pipelines, requests split at every byte, protocol
errors (reply then close), and the connection limits: maxclients,
requirepass, timeout, QUIT. After each exchange the server must still serve
other clients."""
import socket
import time

import pytest

from tests.integration.conftest import PASSWORD
from tests.support.procs import start_fastcache_argv
from tests.support.resp import RawClient, encode_command
from tests.support.shardkeys import keys_by_shard, one_per_shard, round_robin
from tests.support.wire import (connect, read_until_closed, replies_before_sentinel,
                                until_closed)


@pytest.fixture
def pair(fc, redis_ref):
    """(fastcache, reference redis) ports, both flushed; afterwards fastcache must be healthy."""
    watcher = RawClient(fc.port)
    for port in (fc.port, redis_ref.port):
        c = RawClient(port)
        assert c.call("FLUSHALL") == b"+OK\r\n"
        c.close()
    yield fc.port, redis_ref.port
    assert_serving(fc.port, watcher)
    watcher.close()


def assert_serving(port, watcher):
    """An existing and a new connection both still get correct answers."""
    assert watcher.call("PING") == b"+PONG\r\n"
    assert watcher.call("SET", "alive", "yes") == b"+OK\r\n"
    fresh = RawClient(port)
    try:
        assert fresh.call("GET", "alive") == b"$3\r\nyes\r\n"
    finally:
        fresh.close()


# -- inline commands and RESP quirks ---------------------------------------------

EXCHANGES = {
    "ping-crlf": b"PING\r\n",
    "ping-lf": b"PING\n",
    "set-get-lf": b"SET a b\nGET a\r\n",
    "lowercase": b"set a b\r\nget a\r\n",
    "extra-spaces": b"   ECHO    spaced    \r\n",
    "empty-lines": b"\r\n\n\r\nPING\r\n",
    "double-quotes": b'SET "a b" "c\\x41d\\n\\t\\"q\\""\r\nGET "a b"\r\n',
    "single-quotes": b"SET 'x y' 'it\\'s'\r\nGET 'x y'\r\n",
    "empty-arg": b'ECHO ""\r\n',
    "mixed-resp-inline": b"*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nECHO hi\n",
    "empty-multibulk": b"*0\r\n*-1\r\nPING\r\n",
    "bulk-trailer-unchecked": b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",
    "binary-bulk": b"*3\r\n$3\r\nSET\r\n$3\r\nb\x00n\r\n$4\r\n\r\n\x00\xff\r\n"
                   b"*2\r\n$3\r\nGET\r\n$3\r\nb\x00n\r\n",
    "wrong-arity": b"GET\r\nSET a\r\n",
    "unknown": b"NOPE x y\r\n",
    "hex-escapes": b"*0\r\nECHO \"\\x00\\xff\"\r\n",
    "inline-hex-invalid": b'ECHO "\\xZZ"\r\n',
}


@pytest.mark.parametrize("payload", list(EXCHANGES.values()), ids=list(EXCHANGES))
def test_exchange_matches_redis(pair, payload):
    ours, theirs = pair
    expected = replies_before_sentinel(theirs, payload)
    assert replies_before_sentinel(ours, payload) == expected


# -- protocol errors: exact reply, then the server hangs up ------------------------

PROTOCOL_ERRORS = {
    "multibulk-not-a-number": b"*abc\r\n",
    "multibulk-too-long": b"*2147483648\r\n",
    "expected-dollar": b"*1\r\nfoo\r\n",
    "bulk-not-a-number": b"*1\r\n$abc\r\n",
    "bulk-negative": b"*1\r\n$-1\r\n",
    "bulk-above-proto-max": b"*1\r\n$536870913\r\n",
    "unbalanced-double-quote": b'SET "a b\r\n',
    "text-after-closing-quote": b'"foo"bar\r\n',
    "unbalanced-single-quote": b"ECHO 'abc\r\n",
    "inline-over-64k": b"x" * (64 * 1024 + 10),
    "mbulk-count-over-64k": b"*" + b"1" * (64 * 1024 + 10),
    "bulk-count-over-64k": b"*1\r\n$" + b"1" * (64 * 1024 + 10),
    "after-good-commands": b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n",
    "in-second-arg": b"*2\r\n$4\r\nECHO\r\n:5\r\n",
}


@pytest.mark.parametrize("payload", list(PROTOCOL_ERRORS.values()), ids=list(PROTOCOL_ERRORS))
def test_protocol_error_matches_redis(pair, payload):
    ours, theirs = pair
    expected = until_closed(theirs, payload)
    assert expected[1], "redis-server kept the connection open"
    assert b"-ERR Protocol error: " in expected[0]
    assert until_closed(ours, payload) == expected


def test_quit_replies_then_closes(pair):
    ours, theirs = pair
    for payload in (b"PING\r\nQUIT\r\nPING\r\n", b"*1\r\n$4\r\nQUIT\r\n", b"QUIT now please\r\n"):
        expected = until_closed(theirs, payload)
        assert expected[1]
        assert until_closed(ours, payload) == expected


@pytest.mark.parametrize("count", [1, 4, 40])
def test_half_close_still_delivers_every_reply(pair, fc, count):
    """`printf ... | nc -N`: the client shuts its write side right after the requests,
    here while requests forwarded to other shards are still in flight."""
    ours, theirs = pair
    for attempt in range(5):  # whether EOF overtakes a forwarded reply is a race: retry
        client = RawClient(ours)
        worker = int(client.call("CLIENT", "ID")[1:-2]) % fc.shards
        other = (worker + 1) % fc.shards  # count=1: only a key this worker does not own
        keys = (keys_by_shard(fc.shards, 1, "hc%d" % attempt)[other] if count == 1
                else round_robin(4, count, "hc%d" % attempt))
        payload = b"".join(encode_command(("SET", k, k)) + encode_command(("GET", k))
                           for k in keys)
        payload += encode_command(("MGET", *keys[:8])) + b"PING\r\n"
        expected = until_closed(theirs, payload, half_close=True)
        try:
            client.send(payload)
            client.sock.shutdown(socket.SHUT_WR)
            assert read_until_closed(client.sock) == expected, "attempt %d" % attempt
        finally:
            client.close()


# -- pipelines and fragmentation ---------------------------------------------------


def test_deep_pipeline_in_one_send(fc):
    counters = one_per_shard(4, "ctr")
    client = RawClient(fc.port)
    try:
        client.call("DEL", *counters)
        n = 10_000
        payload = b"".join(encode_command(("INCR", counters[i % 4])) for i in range(n))
        client.send(payload)
        replies = [client.read_reply() for _ in range(n)]
        assert replies == [b":%d\r\n" % (i // 4 + 1) for i in range(n)]
        mixed = []
        expected = []
        for i in range(2_500):
            key = counters[i % 4]
            mixed.append(encode_command(("GET", key)))
            expected.append(b"$4\r\n2500\r\n")
            mixed.append(b"PING\r\n")
            expected.append(b"+PONG\r\n")
            mixed.append(encode_command(("ECHO", str(i))))
            expected.append(b"$%d\r\n%d\r\n" % (len(str(i)), i))
            mixed.append(encode_command(("EXISTS", key, counters[(i + 1) % 4])))
            expected.append(b":2\r\n")
        client.send(b"".join(mixed))
        assert [client.read_reply() for _ in range(len(expected))] == expected
    finally:
        client.close()


def split_payload():
    keys = one_per_shard(4, "sp")
    payload = (encode_command(("SET", keys[1], "hello"))
               + encode_command(("GET", keys[1]))
               + b"PING\r\n"
               + b'ECHO "a b"\n'
               + encode_command(("MGET", *keys))
               + encode_command(("EXISTS", keys[1], keys[2])))
    expected = (b"+OK\r\n$5\r\nhello\r\n+PONG\r\n$3\r\na b\r\n"
                b"*4\r\n$-1\r\n$5\r\nhello\r\n$-1\r\n$-1\r\n:1\r\n")
    return keys, payload, expected


def test_request_split_at_every_byte(fc):
    keys, payload, expected = split_payload()
    sock = connect(fc.port)
    try:
        for cut in range(1, len(payload)):
            sock.sendall(payload[:cut])
            time.sleep(0.001)  # let the first piece arrive on its own
            sock.sendall(payload[cut:])
            got = b""
            while len(got) < len(expected):
                chunk = sock.recv(65536)
                assert chunk, "closed at cut %d" % cut
                got += chunk
            assert got == expected, "cut at byte %d" % cut
    finally:
        sock.close()


def test_request_sent_one_byte_at_a_time(fc):
    keys, payload, expected = split_payload()
    pieces = [payload[i:i + 1] for i in range(len(payload))]
    got = replies_before_sentinel(fc.port, payload, pieces=pieces)
    assert got == expected


# -- requirepass -------------------------------------------------------------------


AUTH_SCRIPT = [
    ("GET", "a"),
    ("PING",),
    ("NOPE",),
    ("SET", "a", "1"),
    ("HELLO", "3"),
    ("HELLO", "2", "AUTH", "default", "nope"),
    ("AUTH", "wrong"),
    ("AUTH", "default", "wrong"),
    ("AUTH", "nobody", PASSWORD),
    ("AUTH", "a", "b", "c"),
    ("AUTH",),
    ("GET", "a"),
    ("AUTH", PASSWORD),
    ("GET", "a"),
    ("SET", "a", "1"),
    ("MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "6"),
    ("ECHO", "x" * 20000),
    ("AUTH", "wrong"),
    ("GET", "a"),
]


def test_requirepass_matches_redis(auth_pair):
    ours, theirs = auth_pair
    a, b = RawClient(ours.port), RawClient(theirs.port)
    try:
        for args in AUTH_SCRIPT:
            assert a.call(*args) == b.call(*args), args
        cleanup = ("DEL", "a", "b", "c", "d", "e", "f")
        assert a.call(*cleanup) == b.call(*cleanup)
    finally:
        a.close()
        b.close()


def test_hello_auth_authenticates(auth_pair):
    ours, _ = auth_pair
    client = RawClient(ours.port)
    try:
        reply = client.call("HELLO", "3", "AUTH", "default", PASSWORD)
        assert reply.startswith(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n")
        assert client.call("PING") == b"+PONG\r\n"
    finally:
        client.close()


UNAUTH_LIMITS = {
    "multibulk-over-10": b"*11\r\n",
    "bulk-over-16k": b"*1\r\n$16385\r\n",
    "bulk-over-16k-later-arg": b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$16385\r\n",
    "inline-over-64k": b"y" * (64 * 1024 + 1),
}


@pytest.mark.parametrize("payload", list(UNAUTH_LIMITS.values()), ids=list(UNAUTH_LIMITS))
def test_unauthenticated_limits_match_redis(auth_pair, payload):
    ours, theirs = auth_pair
    expected = until_closed(theirs.port, payload)
    assert expected[1]
    assert until_closed(ours.port, payload) == expected
    watcher = RawClient(ours.port)
    try:
        assert watcher.call("AUTH", PASSWORD) == b"+OK\r\n"
        assert watcher.call("PING") == b"+PONG\r\n"
    finally:
        watcher.close()


def test_limits_lifted_after_auth(auth_pair):
    ours, _ = auth_pair
    payload = (encode_command(("AUTH", PASSWORD))
               + encode_command(["MSET"] + ["k%d" % i for i in range(12)])
               + encode_command(("ECHO", "z" * 20000)))
    got = replies_before_sentinel(ours.port, payload)
    assert got == b"+OK\r\n+OK\r\n$20000\r\n" + b"z" * 20000 + b"\r\n"


# -- maxclients and timeout ------------------------------------------------------------


def open_admitted(port, count, attempts=50):
    """count connections that each answered PING (retrying while earlier
    connections are still being counted by the server)."""
    for _ in range(attempts):
        socks = []
        try:
            for _ in range(count):
                sock = connect(port)
                socks.append(sock)
                sock.sendall(b"PING\r\n")
                if sock.recv(100) != b"+PONG\r\n":
                    raise ConnectionError
            return socks
        except OSError:
            for sock in socks:
                sock.close()
            time.sleep(0.05)
    raise AssertionError("could not open %d connections" % count)


@pytest.mark.parametrize("shards", [1, 4])
def test_maxclients(shards):
    server = start_fastcache_argv("--shards", str(shards), "--maxclients", "3")
    try:
        admitted = open_admitted(server.port, 3)
        assert until_closed(server.port, b"PING\r\n") == (
            b"-ERR max number of clients reached\r\n", True)
        for sock in admitted:  # the admitted ones are unaffected
            sock.sendall(b"PING\r\n")
            assert sock.recv(100) == b"+PONG\r\n"
        admitted.pop().close()
        admitted += open_admitted(server.port, 1)  # a freed place can be taken again
        for sock in admitted:
            sock.close()
    finally:
        server.stop()


@pytest.mark.parametrize("shards", [1, 4])
def test_idle_timeout_closes_client(shards):
    server = start_fastcache_argv("--shards", str(shards), "--timeout", "1")
    try:
        idle = connect(server.port)
        busy = connect(server.port)
        idle.sendall(b"PING\r\n")
        assert idle.recv(100) == b"+PONG\r\n"
        for _ in range(25):  # keep talking for ~2.5 s: never idle for a second
            busy.sendall(b"PING\r\n")
            assert busy.recv(100) == b"+PONG\r\n"
            time.sleep(0.1)
        assert read_until_closed(idle, timeout=10) == (b"", True)
        busy.sendall(b"PING\r\n")
        assert busy.recv(100) == b"+PONG\r\n"
        busy.close()
        idle.close()
    finally:
        server.stop()
