"""Hypothesis fuzzing of live servers.

Random bytes and mutated RESP go to a fresh connection, whose write side is
then shut. The server must answer with well-formed replies and close it
(never hang), and a long-lived client must keep getting correct answers with
its data intact: no worker died, no other client was disturbed. A second
property sends the same mutated requests to redis-server: replies must match
byte for byte."""
import socket
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.resp import RawClient, ReplyScanner, encode_command
from tests.support.servers import start_fastcache
from tests.support.shardkeys import round_robin
from tests.support.wire import connect, read_until_closed

FUZZ = settings(max_examples=60, deadline=timedelta(seconds=15), database=None,
                suppress_health_check=[HealthCheck.too_slow])

# -- generating requests ---------------------------------------------------------

KEYS = [b"fz:a", b"fz:b", b"{fz}c", b"fz:n", b"fz:f"]
VALUES = [b"", b"0", b"1", b"-7", b"3.5", b"1e3", b"abc", b"9223372036854775807", b"x y",
          b"\x00\xff", b"inf"]

# name, argument kinds (k=key, v=value, i=small int, *=repeat the previous)
DETERMINISTIC = [
    (b"SET", "kv"), (b"SET", "kvs"), (b"GET", "k"), (b"INCR", "k"), (b"DECRBY", "ki"),
    (b"INCRBYFLOAT", "kv"), (b"APPEND", "kv"), (b"STRLEN", "k"), (b"GETRANGE", "kii"),
    (b"MGET", "k*"), (b"MSET", "kvkv"), (b"MSETNX", "kvkv"), (b"DEL", "k*"),
    (b"EXISTS", "k*"), (b"TYPE", "k"), (b"ECHO", "v"), (b"PING", ""), (b"PING", "v"),
    (b"EXPIRE", "ki"), (b"PERSIST", "k"), (b"GETDEL", "k"), (b"SETNX", "kv"),
    (b"LCS", "kk"), (b"COPY", "kk"), (b"RENAME", "kk"), (b"SELECT", "i"), (b"GETSET", "kv"),
    (b"TOUCH", "k*"), (b"UNLINK", "k*"), (b"GETEX", "k"), (b"NOSUCH", "v"),
]
ANYTHING = DETERMINISTIC + [(b"KEYS", "v"), (b"SCAN", "i"), (b"DBSIZE", ""), (b"TTL", "k"),
                            (b"HELLO", "i"), (b"RANDOMKEY", ""), (b"QUIT", "")]
SET_OPTIONS = [b"NX", b"XX", b"GET", b"KEEPTTL", b"EX", b"PX", b"10", b"EXAT"]
HEADER_NUMBERS = [b"-1", b"0", b"1", b"2", b"10", b"11", b"16385", b"65536", b"2147483647",
                  b"2147483648", b"536870913", b"9223372036854775808", b"", b"x", b"+1", b" 1"]


@st.composite
def command(draw, table):
    name, kinds = draw(st.sampled_from(table))
    args = [name]
    for kind in kinds:
        if kind == "k":
            args.append(draw(st.sampled_from(KEYS)))
        elif kind == "v":
            args.append(draw(st.sampled_from(VALUES)))
        elif kind == "i":
            args.append(b"%d" % draw(st.integers(-3, 17)))
        elif kind == "s":
            args.append(draw(st.sampled_from(SET_OPTIONS)))
        elif kind == "*":
            args.extend(draw(st.lists(st.sampled_from(KEYS), max_size=4)))
    if draw(st.booleans()):
        args[0] = args[0].lower()
    return args


def inline(args):
    return b" ".join(b'"%s"' % a if (not a or b" " in a) else a for a in args) + b"\r\n"


@st.composite
def requests(draw, table):
    """Several commands, each as RESP or inline."""
    parts = []
    for args in draw(st.lists(command(table), min_size=1, max_size=8)):
        use_inline = draw(st.booleans()) and all(b"\x00" not in a for a in args)
        parts.append(inline(args) if use_inline else encode_command(args))
    return b"".join(parts)


@st.composite
def mutated(draw, table):
    """Valid requests with a few bytes flipped, inserted, deleted, or a header number replaced."""
    data = bytearray(draw(requests(table)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "header", "truncate", "repeat"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=6))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 6))]
        elif op == "header":
            marks = [i for i, b in enumerate(data) if b in b"*$"]
            if marks:
                at = marks[pos % len(marks)] + 1
                end = data.find(b"\r\n", at)
                if end > 0:
                    data[at:end] = draw(st.sampled_from(HEADER_NUMBERS))
        elif op == "truncate":
            del data[pos:]
        elif op == "repeat":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 40))]
    return bytes(data)


def chunked(data, cuts):
    """data in pieces at the given cut points (so requests arrive split)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points + [len(data)]:
        if p > last:
            pieces.append(data[last:p])
            last = p
    return pieces


# -- the exchange ------------------------------------------------------------------------


def exchange(port, pieces, timeout=5.0):
    """Send the pieces, shut our write side, read until the server closes.

    Returns the bytes received; fails if the server does not close in time."""
    sock = connect(port, timeout)
    try:
        for piece in pieces:
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server already hung up (protocol error): fine
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        data, closed = read_until_closed(sock, timeout)
    finally:
        sock.close()
    assert closed, "server neither closed nor finished after %r; got %r" % (pieces, data[-200:])
    return data


def assert_well_formed(data):
    """data is a sequence of complete replies (a reply is never cut in half)."""
    pos = 0
    while pos < len(data):
        end = ReplyScanner.end(data, pos)
        assert end > pos, "incomplete or malformed reply at %d: %r" % (pos, data[pos:pos + 200])
        pos = end


# -- liveness fuzzing against dedicated servers ------------------------------------------


class Keeper:
    """A long-lived client holding data on every shard, checked after each example."""

    def __init__(self, port):
        self.port = port
        self.keys = round_robin(4, 16, "keep")
        self.client = RawClient(port)
        for i, key in enumerate(self.keys):
            assert self.client.call("SET", key, "value-%d" % i) == b"+OK\r\n"
        self.expected = self.client.call("MGET", *self.keys)

    def check(self):
        assert self.client.call("PING") == b"+PONG\r\n"
        assert self.client.call("MGET", *self.keys) == self.expected
        fresh = RawClient(self.port)
        try:
            assert fresh.call("ECHO", "still here") == b"$10\r\nstill here\r\n"
            assert fresh.call("GET", self.keys[-1]) == b"$8\r\nvalue-15\r\n"
        finally:
            fresh.close()


@pytest.fixture(scope="module", params=[1, 4], ids=["shards1", "shards4"])
def keeper(request):
    server = start_fastcache(shards=request.param)
    keeper = Keeper(server.port)
    yield keeper
    alive = server.proc.poll() is None
    log = server.output()
    keeper.client.close()
    server.stop()
    assert alive, "server died while fuzzed:\n" + log


@FUZZ
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=4))
def test_random_bytes(keeper, data, cuts):
    assert_well_formed(exchange(keeper.port, chunked(data, cuts)))
    keeper.check()


@FUZZ
@given(data=mutated(ANYTHING), cuts=st.lists(st.integers(0, 2000), max_size=4))
def test_mutated_requests(keeper, data, cuts):
    assert_well_formed(exchange(keeper.port, chunked(data, cuts)))
    keeper.check()


@FUZZ
@given(data=requests(ANYTHING), cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_valid_requests_split_anywhere(keeper, data, cuts):
    assert_well_formed(exchange(keeper.port, chunked(data, cuts)))
    keeper.check()


# -- differential fuzzing against redis-server -------------------------------------------


def exchange_expecting(port, data, expected, timeout=5.0):
    """Send data and read until `expected` bytes came (or they diverge, or the
    server closes, or timeout); only then shut our side and read the rest.

    Unlike exchange(), the reply never depends on how the server treats a
    half-closed connection (test_protocol_raw covers that)."""
    sock = connect(port, timeout)
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = b""
        sock.settimeout(timeout)
        while len(got) < len(expected) and expected.startswith(got):
            try:
                chunk = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                return got
            got += chunk
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return got
        rest, _ = read_until_closed(sock, timeout)
        return got + rest
    finally:
        sock.close()


@pytest.fixture(scope="module")
def flushers(fc, redis_ref):
    clients = [RawClient(fc.port), RawClient(redis_ref.port)]
    yield clients
    for c in clients:
        c.close()


@FUZZ
@given(data=mutated(DETERMINISTIC))
def test_mutated_requests_match_redis(fc, redis_ref, flushers, data):
    for c in flushers:
        assert c.call("FLUSHALL") == b"+OK\r\n"
    expected = exchange(redis_ref.port, [data])
    assert exchange_expecting(fc.port, data, expected) == expected, "for request %r" % data
