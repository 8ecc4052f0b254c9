"""Engine-level tests of the string commands: replies, stored values, TTLs."""
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from fastcache.engine import longdouble, strings
from fastcache.engine.context import Context
from fastcache.engine.dispatch import execute
from fastcache.engine.keyspace import Keyspace, now_ms
from fastcache.engine.lcs import lcs, lcs_length
from fastcache.protocol.replies import Error, OK

WRONGTYPE = Error("WRONGTYPE Operation against a key holding the wrong kind of value")
NOT_INT = Error("ERR value is not an integer or out of range")
NOT_FLOAT = Error("ERR value is not a valid float")
SYNTAX = Error("ERR syntax error")


@pytest.fixture
def ctx():
    return Context(Keyspace())


def run(ctx, *args):
    return execute(ctx, [a if isinstance(a, bytes) else str(a).encode() for a in args])


def expiry(ctx, key):
    return ctx.db.expires.get(key)


def hold_hash(ctx, key=b"h"):
    """A non-string value, as another family would store it."""
    ctx.ks.set(ctx.db, key, {b"f": b"v"})


# -- GET / SET ------------------------------------------------------------------

def test_get_set_basics(ctx):
    assert run(ctx, "GET", "k") is None
    assert run(ctx, "SET", "k", "v") is OK
    assert run(ctx, "GET", "k") == b"v"
    assert ctx.ks.hits == 1 and ctx.ks.misses == 1
    hold_hash(ctx)
    assert run(ctx, "GET", "h") == WRONGTYPE


def test_set_nx_xx(ctx):
    assert run(ctx, "SET", "k", "1", "XX") is None
    assert run(ctx, "SET", "k", "1", "nx") is OK
    assert run(ctx, "SET", "k", "2", "NX") is None
    assert run(ctx, "SET", "k", "3", "XX") is OK
    assert run(ctx, "GET", "k") == b"3"


def test_set_get_option(ctx):
    assert run(ctx, "SET", "k", "1", "GET") is None
    assert run(ctx, "SET", "k", "2", "GET", "get") == b"1"
    assert run(ctx, "SET", "k", "3", "NX", "GET") == b"2"   # not set, old value back
    assert run(ctx, "GET", "k") == b"2"
    assert run(ctx, "SET", "new", "1", "XX", "GET") is None
    assert run(ctx, "GET", "new") is None
    hold_hash(ctx)
    assert run(ctx, "SET", "h", "v", "GET") == WRONGTYPE
    assert run(ctx, "SET", "h", "v") is OK   # plain SET overwrites any type


def test_set_expiry_options(ctx):
    before = now_ms()
    run(ctx, "SET", "k", "v", "EX", "100")
    assert before + 100_000 <= expiry(ctx, b"k") <= now_ms() + 100_000
    run(ctx, "SET", "k", "v", "PX", "1500")
    assert before + 1500 <= expiry(ctx, b"k") <= now_ms() + 1500
    run(ctx, "SET", "k", "v", "EXAT", "4000000000")
    assert expiry(ctx, b"k") == 4_000_000_000_000
    run(ctx, "SET", "k", "v", "PXAT", "4000000000123")
    assert expiry(ctx, b"k") == 4_000_000_000_123
    run(ctx, "SET", "k", "v2", "KEEPTTL")
    assert expiry(ctx, b"k") == 4_000_000_000_123
    run(ctx, "SET", "k", "v3")
    assert expiry(ctx, b"k") is None
    run(ctx, "SET", "k", "v", "PXAT", "1")   # already past: gone at the next access
    assert run(ctx, "GET", "k") is None


def test_set_keepttl_on_stale_key_drops_old_ttl(ctx):
    run(ctx, "SET", "k", "v", "PXAT", "1")
    run(ctx, "SET", "k", "v2", "KEEPTTL")
    assert run(ctx, "GET", "k") == b"v2"
    assert expiry(ctx, b"k") is None


@pytest.mark.parametrize("args, error", [
    (("NX", "XX"), SYNTAX),
    (("XX", "NX"), SYNTAX),
    (("KEEPTTL", "EX", "10"), SYNTAX),
    (("EX", "10", "PX", "10"), SYNTAX),
    (("PXAT", "10", "EXAT", "10"), SYNTAX),
    (("EX",), SYNTAX),
    (("PERSIST",), SYNTAX),
    (("FOO",), SYNTAX),
    (("EX", "abc"), NOT_INT),
    (("EX", "0"), Error("ERR invalid expire time in 'set' command")),
    (("PX", "-5"), Error("ERR invalid expire time in 'set' command")),
    (("EX", "9223372036854775"), Error("ERR invalid expire time in 'set' command")),
    (("EX", "9223372036854776"), Error("ERR invalid expire time in 'set' command")),
    (("PX", "9223372036854775807"), Error("ERR invalid expire time in 'set' command")),
    (("EXAT", "9223372036854776"), Error("ERR invalid expire time in 'set' command")),
])
def test_set_option_errors(ctx, args, error):
    assert run(ctx, "SET", "k", "v", *args) == error
    assert run(ctx, "GET", "k") is None


def test_set_repeated_options(ctx):
    assert run(ctx, "SET", "k", "v", "EX", "10", "ex", "20") is OK
    assert expiry(ctx, b"k") > now_ms() + 15_000
    assert run(ctx, "SET", "k", "v", "KEEPTTL", "KEEPTTL") is OK
    assert run(ctx, "SET", "k", "v", "EXAT", "9223372036854775") is OK


def test_setnx_setex_psetex(ctx):
    assert run(ctx, "SETNX", "k", "a") == 1
    assert run(ctx, "SETNX", "k", "b") == 0
    assert run(ctx, "GET", "k") == b"a"
    assert run(ctx, "SETEX", "k", "10", "v") is OK
    assert expiry(ctx, b"k") > now_ms() + 9_000
    assert run(ctx, "PSETEX", "k", "500", "w") is OK
    assert expiry(ctx, b"k") <= now_ms() + 500
    assert run(ctx, "GET", "k") == b"w"
    assert run(ctx, "SETEX", "k", "0", "v") == Error("ERR invalid expire time in 'setex' command")
    assert run(ctx, "PSETEX", "k", "-1", "v") == Error("ERR invalid expire time in 'psetex' command")
    assert run(ctx, "SETEX", "k", "x", "v") == NOT_INT
    assert run(ctx, "SETEX", "k", "1") == Error("ERR wrong number of arguments for 'setex' command")


def test_getset_getdel(ctx):
    assert run(ctx, "GETSET", "k", "1") is None
    run(ctx, "SET", "k", "1", "EX", "100")
    assert run(ctx, "GETSET", "k", "2") == b"1"
    assert expiry(ctx, b"k") is None          # GETSET drops the TTL
    assert run(ctx, "GETDEL", "k") == b"2"
    assert run(ctx, "GETDEL", "k") is None
    assert b"k" not in ctx.db.data
    hold_hash(ctx)
    assert run(ctx, "GETSET", "h", "1") == WRONGTYPE
    assert run(ctx, "GETDEL", "h") == WRONGTYPE


def test_getex(ctx):
    assert run(ctx, "GETEX", "nokey", "EX", "abc") is None   # never parsed: no key
    run(ctx, "SET", "k", "v")
    assert run(ctx, "GETEX", "k") == b"v"
    assert expiry(ctx, b"k") is None
    assert run(ctx, "GETEX", "k", "EX", "100") == b"v"
    assert expiry(ctx, b"k") > now_ms() + 90_000
    assert run(ctx, "GETEX", "k", "PXAT", "4000000000000") == b"v"
    assert expiry(ctx, b"k") == 4_000_000_000_000
    assert run(ctx, "GETEX", "k", "PERSIST") == b"v"
    assert expiry(ctx, b"k") is None
    assert run(ctx, "GETEX", "k", "EXAT", "1") == b"v"       # in the past: deleted
    assert b"k" not in ctx.db.data
    run(ctx, "SET", "k", "v")
    assert run(ctx, "GETEX", "k", "EX", "0") == Error("ERR invalid expire time in 'getex' command")
    assert run(ctx, "GETEX", "k", "EX", "x") == NOT_INT
    assert run(ctx, "GETEX", "k", "PERSIST", "EX", "1") == SYNTAX
    assert run(ctx, "GETEX", "k", "NX") == SYNTAX
    assert run(ctx, "GETEX", "k", "KEEPTTL") == SYNTAX
    hold_hash(ctx)
    assert run(ctx, "GETEX", "h", "EX", "x") == WRONGTYPE
    assert run(ctx, "GETEX", "h", "BAD") == SYNTAX


# -- multi-key ------------------------------------------------------------------

def test_mget_mset_msetnx(ctx):
    assert run(ctx, "MSET", "a", "1", "b", "2") is OK
    hold_hash(ctx)
    assert run(ctx, "MGET", "a", "b", "h", "nokey") == [b"1", b"2", None, None]
    assert run(ctx, "MSET", "a", "1", "b") == Error("ERR wrong number of arguments for 'mset' command")
    assert run(ctx, "MSETNX", "a", "9", "c", "3") == 0
    assert run(ctx, "GET", "c") is None
    assert run(ctx, "MSETNX", "c", "3", "d", "4") == 1
    assert run(ctx, "MGET", "c", "d") == [b"3", b"4"]
    assert run(ctx, "MSETNX", "x") == Error("ERR wrong number of arguments for 'msetnx' command")


def test_mset_clears_ttl(ctx):
    run(ctx, "SET", "a", "1", "EX", "100")
    run(ctx, "MSET", "a", "2")
    assert expiry(ctx, b"a") is None


# -- counters -------------------------------------------------------------------

def test_incr_family(ctx):
    assert run(ctx, "INCR", "n") == 1
    assert run(ctx, "INCRBY", "n", "41") == 42
    assert run(ctx, "DECR", "n") == 41
    assert run(ctx, "DECRBY", "n", "-9") == 50
    assert run(ctx, "GET", "n") == b"50"
    assert run(ctx, "INCRBY", "z", "0") == 0
    assert run(ctx, "GET", "z") == b"0"


@pytest.mark.parametrize("stored", [b"", b" 1", b"1 ", b"+1", b"01", b"-0", b"1.0", b"abc",
                                    b"9223372036854775808", b"1\x00"])
def test_incr_refuses_non_integers(ctx, stored):
    ctx.ks.set(ctx.db, b"n", stored)
    assert run(ctx, "INCR", "n") == NOT_INT
    assert run(ctx, "GET", "n") == stored


def test_incr_overflow_and_argument_errors(ctx):
    run(ctx, "SET", "n", "9223372036854775807")
    assert run(ctx, "INCR", "n") == Error("ERR increment or decrement would overflow")
    run(ctx, "SET", "n", "-9223372036854775808")
    assert run(ctx, "DECR", "n") == Error("ERR increment or decrement would overflow")
    assert run(ctx, "DECRBY", "n", "-9223372036854775808") == Error("ERR decrement would overflow")
    assert run(ctx, "INCRBY", "n", "9223372036854775807") == -1
    assert run(ctx, "INCRBY", "n", "1.5") == NOT_INT
    assert run(ctx, "INCRBY", "n", "9223372036854775808") == NOT_INT
    hold_hash(ctx)
    assert run(ctx, "INCR", "h") == WRONGTYPE
    assert run(ctx, "INCRBY", "h", "x") == NOT_INT   # the argument is checked first


def test_counters_keep_ttl(ctx):
    run(ctx, "SET", "n", "1", "PXAT", "4000000000000")
    run(ctx, "INCR", "n")
    run(ctx, "INCRBYFLOAT", "n", "1.5")
    run(ctx, "APPEND", "n", "0")
    run(ctx, "SETRANGE", "n", "0", "9")
    assert run(ctx, "GET", "n") == b"9.50"
    assert expiry(ctx, b"n") == 4_000_000_000_000


@pytest.mark.parametrize("start, delta, result", [
    (None, "0.1", b"0.1"),
    ("0.1", "0.2", b"0.3"),
    ("10.50", "0.1", b"10.6"),
    ("5.0e3", "2.0e2", b"5200"),
    ("3", "-3", b"0"),
    ("-0", "-0", b"0"),
    ("0", "-1e-20", b"0"),
    ("1", "0x1p3", b"9"),
    ("0", "0.000003814697265625", b"0.00000381469726562"),   # a tie: rounds to even
    ("0", "0.000011444091796875", b"0.00001144409179688"),
    ("1", "9223372036854775807", b"9223372036854775808"),
    ("0", "123456789.123456789123456789", b"123456789.12345678912242875"),
    ("0", "1e-4940", b"0"),   # subnormal: valid, prints as 0
])
def test_incrbyfloat_matches_long_double(ctx, start, delta, result):
    if start is not None:
        run(ctx, "SET", "f", start)
    assert run(ctx, "INCRBYFLOAT", "f", delta) == result
    assert run(ctx, "GET", "f") == result


@pytest.mark.parametrize("start, delta, error", [
    ("abc", "1", NOT_FLOAT),
    ("", "1", NOT_FLOAT),
    ("1", " 1", NOT_FLOAT),
    ("1", "1 ", NOT_FLOAT),
    ("1", "nan", NOT_FLOAT),
    ("1", "1e5000", NOT_FLOAT),
    ("1", "1e-5000", NOT_FLOAT),
    ("1", "1_0", NOT_FLOAT),
    ("1", "0x", NOT_FLOAT),
    ("inf", "x", NOT_FLOAT),
    ("1", "inf", Error("ERR increment would produce NaN or Infinity")),
    ("-Infinity", "1", Error("ERR increment would produce NaN or Infinity")),
    ("1.18e4932", "1e4931", Error("ERR increment would produce NaN or Infinity")),
])
def test_incrbyfloat_errors(ctx, start, delta, error):
    run(ctx, "SET", "f", start)
    assert run(ctx, "INCRBYFLOAT", "f", delta) == error
    assert run(ctx, "GET", "f") == start.encode()


def test_incrbyfloat_wrongtype_first(ctx):
    hold_hash(ctx)
    assert run(ctx, "INCRBYFLOAT", "h", "x") == WRONGTYPE


# -- long double emulation ------------------------------------------------------

def test_longdouble_parse():
    assert longdouble.parse(b"0.5") == Fraction(1, 2)
    assert longdouble.parse(b"-0x1.8p1") == -3
    assert longdouble.parse(b".5e1") == 5
    assert longdouble.parse(b"5.") == 5
    assert longdouble.parse(b"+1") == 1
    assert longdouble.parse(b"INF") == longdouble.INFINITY
    assert longdouble.parse(b"-infinity") == longdouble.INFINITY
    for bad in (b"", b".", b"e5", b"1e", b"1e+", b"infinit", b"nan", b"NaN(1)", b"0x.p1",
                b"\t1", b"1\n", b"1\x00", b"1" * 5120, b"0x1p-16446"):
        assert longdouble.parse(bad) is None, bad
    # 0.1 is rounded to 64 significant bits, not Python's 53.
    tenth = longdouble.parse(b"0.1")
    assert tenth != Fraction(0.1) and abs(tenth - Fraction(1, 10)) < Fraction(1, 10 * 2 ** 63)
    assert longdouble.parse(b"0x1p-16445") == Fraction(1, 2 ** 16445)   # smallest subnormal


def test_longdouble_huge_values_format_fully():
    text = longdouble.format_human(longdouble.parse(b"1e4930"))
    assert len(text) == 4931 and text.startswith(b"1000000000000000000026")
    assert longdouble.format_human(longdouble.parse(b"1" * 4900)).startswith(b"1" * 19)
    assert longdouble.parse(b"1" * 5000) is None   # about 1e4999: overflows


def test_longdouble_overflow_on_add():
    biggest = longdouble.parse(b"0x1.fffffffffffffffep16383")
    with pytest.raises(longdouble.Infinite):
        longdouble.add(biggest, biggest)


# -- APPEND / STRLEN / SETRANGE / GETRANGE ----------------------------------------

def test_append_strlen(ctx):
    assert run(ctx, "STRLEN", "k") == 0
    assert run(ctx, "APPEND", "k", "ab") == 2
    assert run(ctx, "APPEND", "k", "cd") == 4
    assert run(ctx, "APPEND", "k", "") == 4
    assert run(ctx, "STRLEN", "k") == 4
    assert run(ctx, "GET", "k") == b"abcd"
    hold_hash(ctx)
    assert run(ctx, "APPEND", "h", "x") == WRONGTYPE
    assert run(ctx, "STRLEN", "h") == WRONGTYPE


def test_size_limit(ctx, monkeypatch):
    too_big = Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    assert run(ctx, "SETRANGE", "k", "536870912", "x") == too_big
    assert run(ctx, "SETRANGE", "k", "536870912", "") == 0
    monkeypatch.setattr(strings, "MAX_STRING", 8)
    run(ctx, "SET", "k", "12345")
    assert run(ctx, "APPEND", "k", "678") == 8
    assert run(ctx, "APPEND", "k", "9") == too_big
    assert run(ctx, "SETRANGE", "k", "8", "x") == too_big
    assert run(ctx, "SETRANGE", "k", "100", "") == 8     # nothing to write: no check
    assert run(ctx, "GET", "k") == b"12345678"


def test_setrange(ctx):
    assert run(ctx, "SETRANGE", "k", "3", "ab") == 5
    assert run(ctx, "GET", "k") == b"\x00\x00\x00ab"
    assert run(ctx, "SETRANGE", "k", "1", "XYZW") == 5
    assert run(ctx, "GET", "k") == b"\x00XYZW"
    assert run(ctx, "SETRANGE", "k", "7", "!") == 8
    assert run(ctx, "GET", "k") == b"\x00XYZW\x00\x00!"
    assert run(ctx, "SETRANGE", "nokey", "5", "") == 0
    assert b"nokey" not in ctx.db.data
    assert run(ctx, "SETRANGE", "k", "-1", "x") == Error("ERR offset is out of range")
    assert run(ctx, "SETRANGE", "k", "x", "x") == NOT_INT
    hold_hash(ctx)
    assert run(ctx, "SETRANGE", "h", "-1", "x") == Error("ERR offset is out of range")
    assert run(ctx, "SETRANGE", "h", "0", "x") == WRONGTYPE


def test_getrange_substr(ctx):
    run(ctx, "SET", "k", "This is a string")
    for cmd in ("GETRANGE", "SUBSTR"):
        assert run(ctx, cmd, "k", "0", "3") == b"This"
        assert run(ctx, cmd, "k", "-3", "-1") == b"ing"
        assert run(ctx, cmd, "k", "0", "-1") == b"This is a string"
        assert run(ctx, cmd, "k", "10", "100") == b"string"
        assert run(ctx, cmd, "k", "-1", "-5") == b""
        assert run(ctx, cmd, "k", "-100", "2") == b"Thi"
        assert run(ctx, cmd, "k", "5", "3") == b""
        assert run(ctx, cmd, "nokey", "0", "-1") == b""
        assert run(ctx, cmd, "k", "a", "1") == NOT_INT
    hold_hash(ctx)
    assert run(ctx, "GETRANGE", "h", "0", "1") == WRONGTYPE


# -- LCS ------------------------------------------------------------------------

def test_lcs_replies(ctx):
    run(ctx, "MSET", "a", "ohmytext", "b", "mynewtext")
    assert run(ctx, "LCS", "a", "b") == b"mytext"
    assert run(ctx, "LCS", "a", "b", "LEN") == 6
    assert run(ctx, "LCS", "a", "b", "IDX") == {
        b"matches": [[[4, 7], [5, 8]], [[2, 3], [0, 1]]], b"len": 6}
    assert run(ctx, "LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN") == {
        b"matches": [[[4, 7], [5, 8], 4]], b"len": 6}
    assert run(ctx, "LCS", "a", "nokey", "IDX") == {b"matches": [], b"len": 0}
    assert run(ctx, "LCS", "a", "b", "LEN", "IDX") == Error(
        "ERR If you want both the length and indexes, please just use IDX.")
    assert run(ctx, "LCS", "a", "b", "MINMATCHLEN") == SYNTAX
    assert run(ctx, "LCS", "a", "b", "MINMATCHLEN", "x") == NOT_INT
    hold_hash(ctx)
    assert run(ctx, "LCS", "h", "b", "BAD") == Error(
        "ERR The specified keys must contain string values")


def test_lcs_memory_limit(ctx):
    run(ctx, "SETRANGE", "big", "20000", "x")
    assert run(ctx, "LCS", "big", "big", "LEN") == Error(
        "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")


def _table_lcs(a, b, min_len, with_len):
    """Redis's own method: the full table, walked back from the end; runs of
    consecutive diagonal matches become the ranges."""
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
    pairs = []
    i, j = len(a), len(b)
    while i and j:
        if a[i - 1] == b[j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif t[i - 1][j] > t[i][j - 1]:
            i -= 1
        else:
            j -= 1
    runs = []
    for pair in pairs:
        if runs and runs[-1][-1] == (pair[0] + 1, pair[1] + 1):
            runs[-1].append(pair)
        else:
            runs.append([pair])
    ranges = [[[run[-1][0], run[0][0]], [run[-1][1], run[0][1]]] + ([len(run)] if with_len else [])
              for run in runs if len(run) >= min_len]
    return bytes(a[x] for x, _ in reversed(pairs)), t[-1][-1], ranges


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.binary(max_size=40), st.integers(0, 4), st.booleans(),
       st.sampled_from([b"ab", b"abc", b"a\x00\xff"]))
def test_bit_parallel_lcs_walks_like_redis(a, b, min_len, with_len, alphabet):
    # Map the random bytes onto a small alphabet so matches are frequent.
    a = bytes(alphabet[x % len(alphabet)] for x in a)
    b = bytes(alphabet[x % len(alphabet)] for x in b)
    expected = _table_lcs(a, b, min_len, with_len)
    assert lcs(a, b, True, min_len, with_len) == expected
    assert lcs_length(a, b) == expected[1]


# -- model-based: INCR / APPEND / SETRANGE / GETRANGE -------------------------------

def _model_getrange(value, start, end):
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    first = min(max(start + size if start < 0 else start, 0), size)
    last = min(max(end + size if end < 0 else end, 0), size - 1)
    return value[first:last + 1] if first <= last else b""


def _model_apply(model, op):
    kind, key = op[0], op[1]
    old = model.get(key)
    if kind == "INCRBY":
        try:
            number = int(old) if old is not None else 0
            if old is not None and str(number).encode() != old or not -2 ** 63 <= number < 2 ** 63:
                raise ValueError
        except ValueError:
            return NOT_INT
        number += op[2]
        if not -2 ** 63 <= number < 2 ** 63:
            return Error("ERR increment or decrement would overflow")
        model[key] = str(number).encode()
        return number
    if kind == "APPEND":
        model[key] = (old or b"") + op[2]
        return len(model[key])
    if kind == "SETRANGE":
        offset, patch = op[2], op[3]
        if not patch:
            return len(old or b"")
        value = bytearray(old or b"")
        if len(value) < offset + len(patch):
            value.extend(bytes(offset + len(patch) - len(value)))
        value[offset:offset + len(patch)] = patch
        model[key] = bytes(value)
        return len(value)
    if kind == "GETRANGE":
        return _model_getrange(old or b"", op[2], op[3])
    return old   # GET


_keys = st.sampled_from([b"a", b"b"])
_small = st.integers(-30, 30)
_ops = st.one_of(
    st.tuples(st.just("INCRBY"), _keys, st.one_of(_small, st.sampled_from([2 ** 63 - 1, -2 ** 63]))),
    st.tuples(st.just("APPEND"), _keys, st.sampled_from([b"", b"1", b"7", b"x", b"-", b"0"])),
    st.tuples(st.just("SETRANGE"), _keys, st.integers(0, 12), st.sampled_from([b"", b"9", b"ab", b"-1"])),
    st.tuples(st.just("GETRANGE"), _keys, _small, _small),
    st.tuples(st.just("GET"), _keys),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_ops, max_size=30))
def test_string_ops_match_model(ops):
    ctx, model = Context(Keyspace()), {}
    for op in ops:
        assert run(ctx, *op) == _model_apply(model, op), op
    for key, value in model.items():
        assert run(ctx, "GET", key) == value
