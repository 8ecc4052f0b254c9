"""Request parser: Redis 7.0's parsing rules and error texts, for the Python and C twins.

Every expected outcome below was observed on redis-server 7.0.15 with raw sockets;
test_cases_match_live_redis re-checks them against the local redis-server.
"""
import socket
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastcache.protocol import parser as parser_module
from fastcache.protocol.parser import (
    NativeRequestParser, ProtocolError, PyRequestParser, QueryBufferLimitExceeded, split_args,
)
from tests.support.resp import ReplyScanner, encode_command

IMPLEMENTATIONS = [PyRequestParser]
if NativeRequestParser is not None:
    IMPLEMENTATIONS.append(NativeRequestParser)


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda cls: cls.__module__)
def make(request):
    return request.param


def run(cls, data, chunk=None, authenticated=True, **limits):
    """Feed data (whole, or in chunk-sized pieces); return (commands, error reply, buffered)."""
    p = cls(**limits)
    p.authenticated = authenticated
    out = []
    step = chunk or max(len(data), 1)
    try:
        for i in range(0, len(data), step):
            out += p.parse(data[i:i + step])
    except ProtocolError as exc:
        return out + exc.commands, exc.reply, p.buffered
    return out, None, p.buffered


def perr(text):
    return b"-ERR Protocol error: " + text + b"\r\n"


INVALID_MBULK = perr(b"invalid multibulk length")
INVALID_BULK = perr(b"invalid bulk length")
QUOTES = perr(b"unbalanced quotes in request")
PING = [b"PING"]

# (input, commands, error reply or None). No error and no commands: Redis waits for more.
CASES = [
    # multibulk count
    (b"*1048577\r\n", [], None),
    (b"*2147483647\r\n", [], None),
    (b"*2147483648\r\n", [], INVALID_MBULK),
    (b"*abc\r\n", [], INVALID_MBULK),
    (b"*\r\n", [], INVALID_MBULK),
    (b"*01\r\n$4\r\nPING\r\n", [], INVALID_MBULK),
    (b"*+1\r\n", [], INVALID_MBULK),
    (b"*-0\r\n", [], INVALID_MBULK),
    (b"* 1\r\n", [], INVALID_MBULK),
    (b"*1 \r\n", [], INVALID_MBULK),
    (b"*1\n$4\r\nPING\r\n", [], INVALID_MBULK),
    (b"*99999999999999999999\r\n", [], INVALID_MBULK),
    (b"*0\r\n*1\r\n$4\r\nPING\r\n", [PING], None),
    (b"*-1\r\nPING\r\n", [PING], None),
    (b"*-5\r\nPING\r\n", [PING], None),
    # bulk headers
    (b"*1\r\nx4\r\nPING\r\n", [], perr(b"expected '$', got 'x'")),
    (b"*1\r\n\r\n", [], perr(b"expected '$', got ' '")),
    (b"*1\r\n\n\r\n", [], perr(b"expected '$', got ' '")),
    (b"*1\r\n\r\r\n", [], perr(b"expected '$', got ' '")),
    (b"*1\r\n\xff\r\n", [], perr(b"expected '$', got '\xff'")),
    (b"*1\r$4\r\nPING\r\n", [], perr(b"expected '$', got '4'")),
    (b"*1\r\n$\r\n", [], INVALID_BULK),
    (b"*1\r\n$-1\r\n", [], INVALID_BULK),
    (b"*1\r\n$04\r\nPING\r\n", [], INVALID_BULK),
    (b"*1\r\n$536870912\r\n", [], None),
    (b"*1\r\n$536870913\r\n", [], INVALID_BULK),
    # leniency: the byte after a header's CR and the two bytes after a bulk go unchecked
    (b"*1\r\n$4\r\nPINGXY", [PING], None),
    (b"*1\r\n$4\r\nPINGXY*1\r\n$4\r\nPING\r\n", [PING, PING], None),
    (b"*1\rX$4\r\nPING\r\n", [PING], None),
    (b"*1\r\n$4\rXPING\r\n", [PING], None),
    (b"*1\r\n$4\r\nPING", [], None),
    (b"*1\r\n$4\r\n\r\n\r\n", [], None),
    (b"*1\r\n$4\r\nPING\r\n*", [PING], None),
    # commands before the bad bytes still run
    (b"PING\r\n*abc\r\n", [PING], INVALID_MBULK),
    (b"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n", [[b"ECHO", b"abc"]], None),
    (b"*2\r\n$4\r\nECHO\r\n$6\r\na\r\n\x00bc\r\n", [[b"ECHO", b"a\r\n\x00bc"]], None),
    # a NUL hides later line ends (Redis scans with strchr): the request waits
    (b"*1\r\n\x00\r\n", [], None),
    (b"*1\x00\r\n", [], None),
    (b"*1\r\n$4\x00\r\nPING\r\n", [], None),
    (b"*1\r\n$x\x00\r\n\r\n", [], None),
    (b"ECHO a\x00b\n", [], None),
    # inline requests
    (b"PING\n", [PING], None),
    (b"\n\nPING\n", [PING], None),
    (b"  PING  \r\n", [PING], None),
    (b"\r\n", [], None),
    (b" \n", [], None),
    (b"\rPING\n", [PING], None),
    (b"\r\r\nPING\n", [PING], None),
    (b"PI\rNG\r\n", [[b"PI", b"NG"]], None),
    (b"PING\r\r\n", [PING], None),
    (b"*1\r\n$4\r\nPING\r\n\r\nPING\r\n", [PING, PING], None),
    (b'ECHO "a\\x41\\n\\r\\t\\b\\a\\z\\"\\\\"\n', [[b"ECHO", b'aA\n\r\t\x08\x07z"\\']], None),
    (b"ECHO 'a\\'b\\\\'\n", [], QUOTES),
    (b'ECHO "abc"d\n', [], QUOTES),
    (b"ECHO 'abc'd\n", [], QUOTES),
    (b'ECHO "abc\n', [], QUOTES),
    (b"ECHO 'abc\n", [], QUOTES),
    (b'ECHO a"b"c\n', [], QUOTES),
    (b'ECHO "a\\"\n', [], QUOTES),
    (b'ECHO "a\\\n', [], QUOTES),
    (b'ECHO "\\x4"\n', [[b"ECHO", b"x4"]], None),
    (b'ECHO "\\xZZ"\n', [[b"ECHO", b"xZZ"]], None),
    (b'ECHO "\\x41\\x4a"\n', [[b"ECHO", b"AJ"]], None),
    (b'ECHO "\\xfF"\n', [[b"ECHO", b"\xff"]], None),
    (b"ECHO '\\x41'\n", [[b"ECHO", b"\\x41"]], None),
    (b"ECHO 'a\\\\b'\n", [[b"ECHO", b"a\\\\b"]], None),
    (b'ECHO "\\q\\\\"\n', [[b"ECHO", b"q\\"]], None),
    (b'ECHO ""\n', [[b"ECHO", b""]], None),
    (b"ECHO ''\n", [[b"ECHO", b""]], None),
    (b'ECHO "a" "b"\n', [[b"ECHO", b"a", b"b"]], None),
    (b'ECHO "a"\t\n', [[b"ECHO", b"a"]], None),
    (b'ECHO a"b c"\n', [[b"ECHO", b"ab c"]], None),
    (b"ECHO\tx\n", [[b"ECHO", b"x"]], None),
    (b"ECHO\x0bx\n", [[b"ECHO\x0bx"]], None),
    (b"ECHO\x0cx\n", [[b"ECHO\x0cx"]], None),
    (b"\x0bPING\n", [PING], None),
    (b"PING\x0b\n", [[b"PING\x0b"]], None),
    (b"ECHO a\x0b b\n", [[b"ECHO", b"a\x0b", b"b"]], None),
    (b'ECHO "a"\x0bb\n', [[b"ECHO", b"a", b"b"]], None),
    (b'SET "k\\x00" v\nGET "k\\x00"\n', [[b"SET", b"k\x00", b"v"], [b"GET", b"k\x00"]], None),
]

BIG = 64 * 1024
BIG_CASES = [
    (b"x" * BIG, [], None),
    (b"x" * (BIG + 1), [], perr(b"too big inline request")),
    (b"x" * BIG + b"\n", [[b"x" * BIG]], None),
    (b"ECHO " + b"x" * 70000 + b"\n", [[b"ECHO", b"x" * 70000]], None),
    (b"ECHO " + b"x" * 70000, [], perr(b"too big inline request")),
    (b"*" + b"1" * (BIG - 1), [], None),
    (b"*" + b"1" * BIG, [], perr(b"too big mbulk count string")),
    (b"*1\r\n$" + b"1" * (BIG - 1), [], None),
    (b"*1\r\n$" + b"1" * BIG, [], perr(b"too big bulk count string")),
    (b"*1\r\n$" + b"1" * (BIG + 1) + b"\r\n", [], INVALID_BULK),
    (b"*1\x00\r\n" + b"x" * BIG, [], perr(b"too big mbulk count string")),
    (b"*1\x00\r\n" + b"x" * (BIG - 6), [], None),
    (b"*1\r\n$4\x00\r\n" + b"x" * BIG, [], perr(b"too big bulk count string")),
    (b"*1\r\nx\x00\r\n" + b"x" * BIG, [], perr(b"too big bulk count string")),
    (b"ECHO a\x00b\n" + b"x" * BIG, [], perr(b"too big inline request")),
    (b"*1\r\n$4\r\nPING\r\n*1\r\n$4\x00\r\n" + b"x" * BIG, [PING], perr(b"too big bulk count string")),
]

UNAUTH_CASES = [
    (b"*10\r\n", [], None),
    (b"*11\r\n", [], perr(b"unauthenticated multibulk length")),
    (b"*-1\r\n*11\r\n", [], perr(b"unauthenticated multibulk length")),
    (b"*3000000000\r\n", [], INVALID_MBULK),
    (b"*1\r\n$16384\r\n", [], None),
    (b"*1\r\n$16385\r\n", [], perr(b"unauthenticated bulk length")),
    (b"*1\r\n$-1\r\n", [], INVALID_BULK),
    (b"*1\r\n$536870913\r\n", [], INVALID_BULK),
    (b"*1\r\nx\r\n", [], perr(b"expected '$', got 'x'")),
]


def case_id(value):
    return repr(value[:24])[2:-1] + ("...%d" % len(value) if len(value) > 24 else "")


def cases(table):
    return pytest.mark.parametrize("data, commands, error", table,
                                   ids=[case_id(c[0]) for c in table])


@cases(CASES + BIG_CASES)
def test_cases(make, data, commands, error):
    assert run(make, data)[:2] == (commands, error)


@cases(CASES)
def test_cases_byte_by_byte(make, data, commands, error):
    assert run(make, data, chunk=1)[:2] == (commands, error)


@cases(UNAUTH_CASES)
def test_unauthenticated_limits(make, data, commands, error):
    assert run(make, data, authenticated=False)[:2] == (commands, error)
    assert b"unauthenticated" not in (run(make, data, authenticated=True)[1] or b"")


def test_authenticated_applies_from_the_next_request(make):
    p = make()
    p.authenticated = False
    assert p.parse(encode_command(["AUTH", "pw"])) == [[b"AUTH", b"pw"]]
    p.authenticated = True
    big = encode_command(["SET", "k", "v" * 20000] + ["x"] * 10)
    assert p.parse(big) == [[b"SET", b"k", b"v" * 20000] + [b"x"] * 10]
    assert p.authenticated is True


def test_max_bulk_len_is_configurable(make):
    assert run(make, b"*1\r\n$100\r\n" + b"x" * 100 + b"\r\n", max_bulk_len=100)[:2] == \
        ([[b"x" * 100]], None)
    assert run(make, b"*1\r\n$101\r\n", max_bulk_len=100)[1] == INVALID_BULK
    p = make()
    p.max_bulk_len = 10
    with pytest.raises(ProtocolError):
        p.parse(encode_command(["ECHO", "x" * 11]))


def test_error_carries_reply_and_earlier_commands(make):
    p = make()
    with pytest.raises(ProtocolError) as info:
        p.parse(b"PING\r\n*1\r\n$3\r\nGET\r\n*x\r\n")
    exc = info.value
    assert exc.commands == [PING, [b"GET"]]
    assert exc.message == "ERR Protocol error: invalid multibulk length"
    assert exc.reply == INVALID_MBULK
    # The stream is dead: later calls fail the same way, with nothing left to run.
    p.feed(b"PING\r\n")
    with pytest.raises(ProtocolError) as again:
        p.commands()
    assert again.value.reply == INVALID_MBULK and again.value.commands == []
    assert p.buffered == 0


def test_error_byte_survives_exactly(make):
    with pytest.raises(ProtocolError) as info:
        make().parse(b"*1\r\n\xe9\r\n")
    assert info.value.reply == b"-ERR Protocol error: expected '$', got '\xe9'\r\n"


def test_query_buffer_limit(make):
    p = make(max_query_buffer=100)
    p.feed(b"*1\r\n$200\r\n" + b"x" * 80)
    assert p.commands() == []
    with pytest.raises(QueryBufferLimitExceeded) as info:
        p.feed(b"x" * 50)
    assert isinstance(info.value, ProtocolError)
    assert info.value.reply == b""          # Redis closes without replying
    with pytest.raises(QueryBufferLimitExceeded):
        p.commands()
    # Checked on what a read leaves unparsed plus the read, before parsing (like Redis).
    with pytest.raises(QueryBufferLimitExceeded):
        make(max_query_buffer=10).parse(b"PING\r\nPING\r\n")
    q = make(max_query_buffer=12)
    assert q.parse(b"PING\r\nPING\r\n") == [PING, PING]
    q.max_query_buffer = 5
    with pytest.raises(QueryBufferLimitExceeded):
        q.parse(b"PING\r\n")


def test_buffered_counts_unparsed_bytes(make):
    p = make()
    assert p.buffered == 0
    p.feed(b"*2\r\n$3\r\nGET\r\n$4\r\nke")
    assert p.buffered == len(b"*2\r\n$3\r\nGET\r\n$4\r\nke")
    assert p.commands() == []
    assert p.buffered == 2                  # arguments read so far are out of the buffer
    assert p.parse(b"y1\r\nPI") == [[b"GET", b"key1"]]
    assert p.buffered == 2
    assert p.parse(b"NG\r\n") == [PING]
    assert p.buffered == 0


def test_partial_headers_wait(make):
    p = make()
    for piece in (b"*", b"2", b"\r", b"\n", b"$", b"3\r", b"\nGET\r", b"\n$1\r\nk", b"\r"):
        assert p.parse(piece) == []
    assert p.parse(b"\n") == [[b"GET", b"k"]]


def test_huge_declared_bulk_is_not_allocated_up_front(make):
    p = make()
    tracemalloc.start()
    try:
        p.parse(b"*2\r\n$3\r\nSET\r\n$536870912\r\n" + b"x" * 1000)
        for _ in range(10):
            p.parse(b"x" * 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024
    assert p.buffered == 11000


def test_big_bulk_in_small_reads(make):
    value = bytes(range(256)) * 4096            # 1MB, with CRs and NULs
    data = encode_command([b"SET", b"k", value]) + encode_command([b"GET", b"k"])
    assert run(make, data, chunk=4096)[:2] == ([[b"SET", b"k", value], [b"GET", b"k"]], None)


def test_pipeline_in_reads(make):
    cmds = [[b"SET", b"key:%d" % i, b"v" * (i % 50)] if i % 3 else [b"GET", b"key:%d" % i]
            for i in range(3000)]
    cmds.append([b"MSET"] + [b"k%d" % i for i in range(2000)])
    cmds.append([b"SET", b"big", b"x" * 5000])
    cmds.append([b"SET", b"crlf", b"a\r\nb"])
    data = b"".join(encode_command(c) for c in cmds)
    for chunk in (len(data), 16384, 1000, 7):
        assert run(make, data, chunk=chunk) == (cmds, None, 0)


def test_feed_accepts_any_bytes_like(make):
    p = make()
    p.feed(bytearray(b"*1\r\n$4\r\nPI"))
    p.feed(memoryview(b"NG\r\n"))
    cmds = p.commands()
    assert cmds == [PING] and type(cmds[0][0]) is bytes


def test_empty_reads(make):
    p = make()
    assert p.parse(b"") == [] and p.commands() == [] and p.buffered == 0


def test_fastest_implementation_is_exported():
    assert parser_module.RequestParser is (NativeRequestParser or PyRequestParser)


@pytest.mark.parametrize("line, args", [
    (b"", []),
    (b"a b  c", [b"a", b"b", b"c"]),
    (b'"a b" \'c d\'', [b"a b", b"c d"]),
    (b'"\\x00\\x7f\\xff"', [b"\x00\x7f\xff"]),
    (b'"unterminated', None),
    (b'"a"b', None),
])
def test_split_args(line, args):
    assert split_args(line) == args


# ---- against the live reference server ----------------------------------------------------

def _read_all(sock, want, closes, grace=0.03):
    """Read want bytes (and until EOF if the server is expected to close); return (bytes, closed)."""
    buf = b""
    sock.settimeout(5)
    while len(buf) < want or closes:
        chunk = sock.recv(65536)
        if not chunk:
            return buf, True
        buf += chunk
    sock.settimeout(grace)
    try:
        chunk = sock.recv(65536)
        return buf + chunk, not chunk
    except socket.timeout:
        return buf, False


def _replies(port, commands):
    """The reference server's replies to commands sent canonically."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"".join(encode_command(c) for c in commands))
        buf, pos = b"", 0
        s.settimeout(5)
        for _ in commands:
            while (end := ReplyScanner.end(buf, pos)) < 0:
                buf += s.recv(65536)
            pos = end
        return buf


def assert_like_redis(port, data):
    """Raw data must get from Redis what our parse predicts: the replies to the commands we
    parsed, then our error reply and a closed connection (or no error and an open one)."""
    commands, error, _ = run(PyRequestParser, data)
    expected = (_replies(port, commands) if commands else b"") + (error or b"")
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        got, closed = _read_all(s, len(expected), error is not None)
    assert (got, closed) == (expected, error is not None), data


@cases(CASES)
def test_cases_match_live_redis(redis_ref, data, commands, error):
    assert_like_redis(redis_ref.port, data)


# ---- fuzzing ---------------------------------------------------------------------------------

PIECES = [b"*", b"$", b"\r", b"\n", b"\r\n", b"0", b"1", b"2", b"3", b"9", b"-", b"+", b" ",
          b"\t", b"\x0b", b'"', b"'", b"\\", b"x", b"4", b"f", b"\x00", b"\xff", b"a", b"PING",
          b"ECHO", b"*1\r\n", b"*2\r\n", b"$1\r\n", b"$4\r\n", b"$0\r\n"]

protocol_soup = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)
arg = st.one_of(st.binary(max_size=12), st.sampled_from([b"ECHO", b"PING", b"a\r\nb", b'"q"']))
argv = st.lists(arg, min_size=1, max_size=5)


def _inline(args):
    return b" ".join(b'"' + a.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
                     for a in args) + b"\r\n"


@st.composite
def mutated_resp(draw):
    """Valid requests (multibulk and inline), then a few byte-level mutations."""
    cmds = draw(st.lists(argv, max_size=6))
    data = bytearray(b"".join(_inline(c) if draw(st.booleans()) and all(b"\0" not in a for a in c)
                              else encode_command(c) for c in cmds))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        at = draw(st.integers(0, len(data)))
        byte = draw(st.sampled_from(b"*$\r\n0123-x \"'\\\x00"))
        if op == "insert":
            data[at:at] = bytes([byte])
        elif at < len(data):
            if op == "delete":
                del data[at]
            elif op == "replace":
                data[at] = byte
            else:
                del data[at:]
    return bytes(data)


fuzz_input = st.one_of(st.binary(max_size=200), protocol_soup, mutated_resp())
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def drain(parser, data, out):
    """Append every command now complete to out; before AUTH the parser hands
    out one per call."""
    more = parser.parse(data)
    while more:
        out += more
        more = parser.commands()


def _outcome(cls, data, chunks, authenticated):
    p = cls()
    p.authenticated = authenticated
    out, at = [], 0
    try:
        for size in chunks + [len(data)]:
            drain(p, data[at:at + size], out)
            at += size
    except ProtocolError as exc:
        return out + exc.commands, exc.reply, 0
    return out, None, p.buffered


@FUZZ
@given(data=fuzz_input, cuts=st.lists(st.integers(1, 50), max_size=8),
       authenticated=st.booleans())
def test_fuzz_only_commands_or_protocol_errors(data, cuts, authenticated):
    whole = _outcome(PyRequestParser, data, [], authenticated)
    for cmds in whole[0]:
        assert cmds and all(type(a) is bytes for a in cmds)
    # Read boundaries never change the outcome (below Redis's 64KB line limits).
    assert _outcome(PyRequestParser, data, cuts, authenticated) == whole
    if NativeRequestParser is not None:
        assert _outcome(NativeRequestParser, data, [], authenticated) == whole
        assert _outcome(NativeRequestParser, data, cuts, authenticated) == whole


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.one_of(protocol_soup, mutated_resp()))
def test_fuzz_matches_live_redis(redis_ref, data):
    assert_like_redis(redis_ref.port, data)
