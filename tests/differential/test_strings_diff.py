"""The string commands against a real redis-server: identical reply bytes, RESP2 and RESP3."""
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastcache.engine.registry import lookup
from tests.support.differential import EngineTarget, compare

WRONG_ARITY_CASES = [
    ("GET",), ("GET", "a", "b"), ("SET", "k"), ("SETNX", "k"), ("SETEX", "k", "1"),
    ("PSETEX", "k", "1"), ("GETSET", "k"), ("GETDEL",), ("GETEX",), ("MGET",), ("MSET", "k"),
    ("MSET", "a", "1", "b"), ("MSETNX", "k"), ("MSETNX", "a", "1", "b"), ("INCR",), ("DECR",),
    ("INCRBY", "k"), ("DECRBY", "k"), ("INCRBYFLOAT", "k"), ("APPEND", "k"), ("STRLEN",),
    ("GETRANGE", "k", "0"), ("SETRANGE", "k", "0"), ("SUBSTR", "k", "0"), ("LCS", "a"),
]


def hold_hash(targets, key="h"):
    """Make key a hash on every target (the engine may not have HSET yet)."""
    for target in targets:
        if isinstance(target, EngineTarget) and lookup([b"hset"]) is None:
            target.ctx.ks.set(target.ctx.db, key.encode(), {b"f": b"v"})
        else:
            target.call("HSET", key, "f", "v")


def test_arity_errors(targets):
    compare(targets, WRONG_ARITY_CASES)


def test_get_set(targets):
    hold_hash(targets)
    compare(targets, [
        ("GET", "k"), ("SET", "k", "v"), ("GET", "k"), ("SET", "k", ""), ("GET", "k"),
        ("SET", "bin", b"\x00\xff\r\n"), ("GET", "bin"), ("GET", "h"),
        ("SET", "k", "1", "XX"), ("SET", "n", "1", "XX"), ("GET", "n"),
        ("SET", "k", "2", "NX"), ("SET", "n", "2", "nx"), ("GET", "n"),
        ("SET", "k", "3", "GET"), ("SET", "new", "3", "GET"), ("SET", "k", "4", "get", "GET"),
        ("SET", "k", "5", "NX", "GET"), ("GET", "k"), ("SET", "z", "5", "XX", "GET"), ("GET", "z"),
        ("SET", "z", "6", "NX", "GET"), ("SET", "h", "v", "GET"), ("SET", "h", "v", "NX", "GET"),
        ("SET", "h", "v"), ("GET", "h"),
    ])


def test_set_option_errors(targets):
    hold_hash(targets)
    compare(targets, [
        ("SET", "k", "v", *args) for args in [
            ("NX", "XX"), ("XX", "NX"), ("KEEPTTL", "EX", "10"), ("EX", "10", "KEEPTTL"),
            ("EX", "10", "PX", "10"), ("PX", "10", "EXAT", "10"), ("EXAT", "10", "PXAT", "10"),
            ("PXAT", "10", "EX", "10"), ("EX",), ("PX",), ("EXAT",), ("PXAT",), ("PERSIST",),
            ("FOO",), ("NX", "EX"), ("EX", "abc"), ("PX", "1.5"), ("EX", "0"), ("PX", "-1"),
            ("EXAT", "0"), ("PXAT", "-100"), ("EX", "9223372036854775"),
            ("EX", "9223372036854776"), ("PX", "9223372036854775807"),
            ("EXAT", "9223372036854776"), ("EX", " 10"), ("EX", "+10"), ("EX", "010"),
            ("ex", "10", "nx", "xx"), ("EX", "10", "EX", "20"), ("KEEPTTL", "KEEPTTL"),
            ("EXAT", "9223372036854775"), ("PXAT", "9223372036854775807"),
        ]
    ] + [("GET", "k"), ("SET", "h", "v", "GET", "EX", "0"), ("SET", "h", "v", "GET", "EX", "x"),
         ("SET", "h", "v", "GET", "BAD")])


def test_expiring_sets_without_ttl_readback(targets):
    compare(targets, [
        ("SET", "k", "v", "PXAT", "1"), ("GET", "k"),
        ("SET", "k", "v", "EXAT", "1"), ("SET", "k", "w", "XX"), ("GET", "k"),
        ("SET", "k", "v", "EX", "100"), ("SET", "k", "w", "XX", "KEEPTTL"), ("GET", "k"),
        ("SETEX", "k", "100", "v"), ("GET", "k"), ("PSETEX", "k", "100000", "w"), ("GET", "k"),
        ("SET", "s", "v", "PX", "30"), ("PSETEX", "p", "30", "v"),
    ])
    time.sleep(0.15)
    compare(targets, [("GET", "s"), ("GET", "p"), ("SET", "s", "x", "XX")])


def _ttl_within(limit_ms, slack_ms=30_000):
    """Normalizer for PTTL replies: a positive TTL close to limit_ms counts as equal."""
    def normalize(raw):
        if raw[:1] == b":":
            value = int(raw[1:-2])
            if limit_ms - slack_ms < value <= limit_ms:
                return b"ttl ok"
        return raw
    return normalize


def test_ttl_effects(targets):
    if lookup([b"pttl"]) is None:
        pytest.skip("PTTL is not in the engine yet")
    compare(targets, [
        ("SET", "k", "v", "EX", "100"), (("PTTL", "k"), _ttl_within(100_000)),
        ("SET", "k", "v2", "KEEPTTL"), (("PTTL", "k"), _ttl_within(100_000)),
        ("SET", "k", "v3", "GET"), ("PTTL", "k"),
        ("SET", "k", "v", "PX", "5000"), (("PTTL", "k"), _ttl_within(5000)),
        ("SET", "k", "v", "PXAT", "4000000000000"), (("PTTL", "k"), _ttl_within(10 ** 13, 10 ** 13)),
        ("SETEX", "k", "60", "v"), (("PTTL", "k"), _ttl_within(60_000)),
        ("INCRBY", "k", "0"), ("SETEX", "n", "60", "1"), ("INCR", "n"), ("INCRBYFLOAT", "n", "1"),
        ("APPEND", "n", "1"), ("SETRANGE", "n", "0", "7"), (("PTTL", "n"), _ttl_within(60_000)),
        ("GETSET", "n", "1"), ("PTTL", "n"),
        ("PSETEX", "k", "9000", "v"), (("PTTL", "k"), _ttl_within(9000)),
        ("GETEX", "k", "PERSIST"), ("PTTL", "k"),
        ("GETEX", "k", "EX", "70"), (("PTTL", "k"), _ttl_within(70_000)),
        ("GETEX", "k", "PX", "7000"), (("PTTL", "k"), _ttl_within(7000)),
        ("GETEX", "k"), (("PTTL", "k"), _ttl_within(7000)),
        ("MSET", "k", "1"), ("PTTL", "k"),
    ])


def test_setnx_setex_psetex_getset_getdel(targets):
    hold_hash(targets)
    compare(targets, [
        ("SETNX", "k", "a"), ("SETNX", "k", "b"), ("GET", "k"), ("SETNX", "h", "x"),
        ("SETEX", "k", "0", "v"), ("SETEX", "k", "-1", "v"), ("SETEX", "k", "x", "v"),
        ("SETEX", "k", "9223372036854776", "v"), ("PSETEX", "k", "0", "v"),
        ("PSETEX", "k", "9223372036854775807", "v"), ("PSETEX", "k", "1e3", "v"),
        ("SETEX", "h", "10", "v"), ("GET", "h"), ("GET", "k"),
        ("GETSET", "k", "new"), ("GETSET", "nokey", "1"), ("GET", "nokey"),
        ("GETDEL", "k"), ("GETDEL", "k"), ("GET", "k"),
    ])
    hold_hash(targets, "h2")
    compare(targets, [("GETSET", "h2", "x"), ("GETDEL", "h2"), ("SETNX", "h2", "x")])


def test_getex(targets):
    hold_hash(targets)
    compare(targets, [
        ("GETEX", "nokey"), ("GETEX", "nokey", "EX", "abc"), ("GETEX", "nokey", "EX", "0"),
        ("GETEX", "nokey", "BAD"), ("SET", "k", "v"), ("GETEX", "k"), ("GETEX", "k", "ex", "100"),
        ("GETEX", "k", "PX", "100000"), ("GETEX", "k", "EXAT", "4000000000"),
        ("GETEX", "k", "PXAT", "4000000000000"), ("GETEX", "k", "PERSIST"),
        ("GETEX", "k", "persist", "PERSIST"), ("GETEX", "k", "EX", "0"), ("GETEX", "k", "PX", "-1"),
        ("GETEX", "k", "EX", "x"), ("GETEX", "k", "EX", "9223372036854776"),
        ("GETEX", "k", "PX", "9223372036854775807"), ("GETEX", "k", "PERSIST", "EX", "1"),
        ("GETEX", "k", "EX", "1", "PERSIST"), ("GETEX", "k", "EX", "1", "PX", "1"),
        ("GETEX", "k", "EX"), ("GETEX", "k", "NX"), ("GETEX", "k", "XX"), ("GETEX", "k", "GET"),
        ("GETEX", "k", "KEEPTTL"), ("GETEX", "h"), ("GETEX", "h", "EX", "x"),
        ("GETEX", "h", "BAD"), ("GETEX", "k", "PXAT", "1"), ("GET", "k"),
        ("SET", "k", "v"), ("GETEX", "k", "EXAT", "1"), ("GETEX", "k"),
    ])


def test_mget_mset_msetnx(targets):
    hold_hash(targets)
    compare(targets, [
        ("MSET", "a", "1", "b", "2"), ("MGET", "a", "b", "h", "nokey", "a"),
        ("MSET", "a", "x", "a", "y"), ("GET", "a"), ("MSETNX", "a", "1", "c", "3"), ("GET", "c"),
        ("MSETNX", "c", "3", "d", "4", "c", "5"), ("MGET", "c", "d"), ("MSETNX", "h", "1"),
        ("MSET", "h", "now-a-string"), ("MGET", "h"),
    ])


def test_counters(targets):
    hold_hash(targets)
    compare(targets, [
        ("INCR", "n"), ("INCRBY", "n", "41"), ("DECR", "n"), ("DECRBY", "n", "-9"),
        ("INCRBY", "n", "0"), ("DECRBY", "n", "100"), ("GET", "n"), ("INCRBY", "z", "0"),
        ("SET", "n", "9223372036854775807"), ("INCR", "n"), ("INCRBY", "n", "-1"),
        ("SET", "n", "-9223372036854775808"), ("DECR", "n"), ("DECRBY", "n", "1"),
        ("DECRBY", "n", "-9223372036854775808"), ("DECRBY", "n", "9223372036854775807"),
        ("INCRBY", "n", "9223372036854775807"), ("INCRBY", "n", "x"), ("INCRBY", "n", "1.0"),
        ("INCRBY", "n", "+1"), ("INCRBY", "n", "01"), ("INCRBY", "n", "-0"),
        ("INCRBY", "n", "9223372036854775808"), ("INCRBY", "n", ""), ("INCR", "h"),
        ("INCRBY", "h", "x"), ("DECRBY", "h", "-9223372036854775808"),
    ] + [cmd for stored in ["", " 1", "1 ", "+1", "01", "-0", "1.0", "abc", "1e3",
                            "9223372036854775808", "-9223372036854775809", b"1\x00"]
         for cmd in [("SET", "s", stored), ("INCR", "s"), ("DECRBY", "s", "2"), ("GET", "s")]])


INCRBYFLOAT_CASES = [
    (None, "0.1"), ("0.1", "0.2"), ("10.50", "0.1"), ("5.0e3", "2.0e2"), ("3", "-3"),
    ("-0", "-0"), ("0", "-1e-20"), ("1", "0x1p3"), ("0", "0X1.8P-3"), ("0", "0.000003814697265625"),
    ("0", "0.000011444091796875"), ("1", "9223372036854775807"), ("0", "1e4000"),
    ("-1e4932", "-1e4932"), ("1.18e4932", "1e4931"), ("0", "1e-4940"), ("0", "1e-5000"),
    ("0", "inf"), ("inf", "-inf"), ("abc", "inf"), ("inf", "abc"), ("0", "nan"), ("0", "-NaN"),
    ("0", "0x1.fffffffffffffffffp0"), ("0", " 1"), ("0", "1 "), ("0", "+1"), ("0", ".5"),
    ("0", "5."), ("0", "."), ("0", "1e"), ("0", "0x"), ("0", "1e+5"), ("0", "InFiNiTy"),
    ("0", "infinit"), ("0", "0x1p-16445"), ("0", "0x1p-16446"), ("0", "0x1.8p-16446"),
    ("0", "1" * 4900), ("0", "1" * 5000), ("0", "1" * 5119), ("0", "1" * 5120),
    ("0", "0." + "0" * 4000 + "1e3000"), ("0", "123456789.123456789123456789"), ("0", "1e-17"),
    ("0", "5e-18"), ("0", "1.5e-17"), ("0", "-5e-18"), ("0", "0e99999999999999999999999"),
    ("0", "1e-99999999999999999999999"), ("0", "0x1p99999999999999"), ("0", "1_0"),
    ("0", "1e5000"), ("0", "-1e5000"), ("0", "0x1p16383"), ("0", "0x1.ffffffffffffffffp16383"),
    ("0", "0x1.fffffffffffffffffp16383"), ("", "1"), ("1", ""), ("1", b"1\x00"),
    ("3.0", "0"), ("0.1", "-0.1"), ("1e-10", "1e10"),
]


def test_incrbyfloat(targets):
    script = []
    for start, delta in INCRBYFLOAT_CASES:
        script.append(("DEL", "f") if start is None else ("SET", "f", start))
        script += [("INCRBYFLOAT", "f", delta), ("GET", "f")]
    compare(targets, script)
    hold_hash(targets)
    compare(targets, [("INCRBYFLOAT", "h", "x"), ("INCRBYFLOAT", "h", "1")])


def test_incrbyfloat_random(targets):
    rng = random.Random(7)

    def number():
        kind = rng.random()
        if kind < 0.3:
            return repr(rng.uniform(-1e6, 1e6))
        if kind < 0.5:
            return "%d.%0*d" % (rng.randint(-10 ** 6, 10 ** 6), rng.randint(1, 25), rng.randint(0, 10 ** 25))
        if kind < 0.7:
            return "%de%d" % (rng.randint(-10 ** 20, 10 ** 20), rng.randint(-60, 60))
        if kind < 0.9:
            return "0.%018d" % rng.randint(0, 10 ** 18 - 1)
        return hex(rng.randint(1, 2 ** 70)) + "p-%d" % rng.randint(0, 100)

    script = [("SET", "f", number())]
    for _ in range(400):
        script.append(("INCRBYFLOAT", "f", number()))
        if rng.random() < 0.1:
            script.append(("SET", "f", number()))
    compare(targets, script)


def test_append_strlen_setrange_getrange(targets):
    hold_hash(targets)
    compare(targets, [
        ("STRLEN", "k"), ("APPEND", "k", "ab"), ("APPEND", "k", ""), ("APPEND", "k", b"\x00c"),
        ("STRLEN", "k"), ("GET", "k"), ("APPEND", "h", "x"), ("STRLEN", "h"),
        ("SETRANGE", "r", "3", "ab"), ("GET", "r"), ("SETRANGE", "r", "1", "XYZW"), ("GET", "r"),
        ("SETRANGE", "r", "7", "!"), ("GET", "r"), ("SETRANGE", "r", "0", ""), ("STRLEN", "r"),
        ("SETRANGE", "nokey", "5", ""), ("GET", "nokey"), ("SETRANGE", "nokey", "0", ""),
        ("SETRANGE", "r", "-1", "x"), ("SETRANGE", "r", "x", "x"), ("SETRANGE", "r", "1.5", "x"),
        ("SETRANGE", "r", "536870912", "x"), ("SETRANGE", "r", "536870912", ""),
        ("SETRANGE", "nokey", "536870912", "x"), ("SETRANGE", "nokey", "9999999999", ""),
        ("SETRANGE", "r", "9223372036854775807", "x"), ("SETRANGE", "r", "9223372036854775808", "x"),
        ("SETRANGE", "h", "-1", "x"), ("SETRANGE", "h", "0", "x"), ("SETRANGE", "h", "0", ""),
        ("SET", "s", "This is a string"),
    ] + [(cmd, key, start, end)
         for cmd in ("GETRANGE", "SUBSTR")
         for key in ("s", "nokey")
         for start, end in [("0", "3"), ("-3", "-1"), ("0", "-1"), ("10", "100"), ("-1", "-5"),
                            ("-100", "2"), ("5", "3"), ("-100", "-100"), ("100", "200"),
                            ("-1", "-1"), ("0", "0"), ("-9223372036854775808", "9223372036854775807"),
                            ("a", "1"), ("1", "a"), ("0", "1.0")]]
      + [("GETRANGE", "h", "0", "1"), ("GETRANGE", "h", "x", "1"), ("SET", "e", ""),
         ("GETRANGE", "e", "0", "-1"), ("GETRANGE", "e", "-1", "0")])


def test_lcs(targets):
    hold_hash(targets)
    compare(targets, [
        ("MSET", "a", "ohmytext", "b", "mynewtext"), ("LCS", "a", "b"), ("LCS", "a", "b", "LEN"),
        ("LCS", "a", "b", "IDX"), ("LCS", "a", "b", "idx", "minmatchlen", "4", "withmatchlen"),
        ("LCS", "a", "b", "IDX", "MINMATCHLEN", "-5", "WITHMATCHLEN"),
        ("LCS", "a", "b", "LEN", "MINMATCHLEN", "3"), ("LCS", "a", "b", "WITHMATCHLEN"),
        ("LCS", "a", "b", "LEN", "IDX"), ("LCS", "a", "b", "IDX", "LEN"),
        ("LCS", "a", "b", "MINMATCHLEN"), ("LCS", "a", "b", "MINMATCHLEN", "x"),
        ("LCS", "a", "b", "FOO"), ("LCS", "h", "b", "FOO"), ("LCS", "a", "h"),
        ("LCS", "nokey", "b"), ("LCS", "nokey", "b", "IDX"), ("LCS", "nokey", "b", "LEN"),
        ("LCS", "a", "a", "IDX", "WITHMATCHLEN"), ("SETRANGE", "big", "20000", "x"),
        ("LCS", "big", "big", "LEN"), ("LCS", "big", "big", "LEN", "foo"),
        ("LCS", "big", "a", "IDX"),
    ])


def test_lcs_random(targets):
    rng = random.Random(3)
    script = []
    for size, alphabet in [(30, "ab"), (200, "acgt"), (600, "abcdefgh"), (1500, "ab")]:
        for _ in range(3):
            a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, size)))
            b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, size)))
            script += [("MSET", "x", a, "y", b), ("LCS", "x", "y"), ("LCS", "x", "y", "LEN"),
                       ("LCS", "x", "y", "IDX", "WITHMATCHLEN"),
                       ("LCS", "y", "x", "IDX", "MINMATCHLEN", str(rng.randint(1, 4)))]
    compare(targets, script)


# -- random command sequences ---------------------------------------------------

_keys = st.sampled_from(["a", "b", "c"])
_values = st.sampled_from(["", "0", "1", "-1", "10", "abc", "9223372036854775807", "1.5",
                           "-2.25e2", "0x10", "inf", " 1", "ohmytext", "mynewtext", b"\x00\xff"])
_ints = st.sampled_from(["0", "1", "-1", "3", "7", "-3", "100", "x", "1.0",
                         "9223372036854775807", "-9223372036854775808"])
_floats = st.sampled_from(["0.1", "-0.1", "1e3", "3", "-2.5", "1e-20", "0x1p-3", "x", "inf"])
_ttls = st.sampled_from(["100000", "0", "-1", "x"])  # no TTL short enough to lapse mid-run
_set_opts = st.lists(st.sampled_from([("NX",), ("XX",), ("GET",), ("KEEPTTL",), ("EX", "1000"),
                                      ("PX", "100000"), ("EXAT", "1"), ("PXAT", "4000000000000"),
                                      ("EX",), ("PERSIST",)]), max_size=3)
_getex_opts = st.lists(st.sampled_from([("PERSIST",), ("EX", "1000"), ("PX", "0"), ("EXAT", "1"),
                                        ("PXAT", "4000000000000"), ("EX", "x"), ("NX",)]), max_size=2)

_commands = st.one_of(
    st.tuples(st.just("GET"), _keys),
    st.builds(lambda k, v, opts: ("SET", k, v) + sum(opts, ()), _keys, _values, _set_opts),
    st.tuples(st.just("SETNX"), _keys, _values),
    st.tuples(st.sampled_from(["SETEX", "PSETEX"]), _keys, _ttls, _values),
    st.tuples(st.sampled_from(["GETSET", "APPEND"]), _keys, _values),
    st.tuples(st.sampled_from(["GETDEL", "STRLEN", "INCR", "DECR"]), _keys),
    st.builds(lambda k, opts: ("GETEX", k) + sum(opts, ()), _keys, _getex_opts),
    st.builds(lambda ks: ("MGET",) + tuple(ks), st.lists(_keys, min_size=1, max_size=4)),
    st.builds(lambda cmd, kv: (cmd,) + sum(kv, ()), st.sampled_from(["MSET", "MSETNX"]),
              st.lists(st.tuples(_keys, _values), min_size=1, max_size=3)),
    st.tuples(st.sampled_from(["INCRBY", "DECRBY"]), _keys, _ints),
    st.tuples(st.just("INCRBYFLOAT"), _keys, _floats),
    st.tuples(st.sampled_from(["GETRANGE", "SUBSTR"]), _keys, _ints, _ints),
    st.tuples(st.just("SETRANGE"), _keys, st.sampled_from(["0", "2", "5", "-1", "x"]), _values),
    st.builds(lambda a, b, opts: ("LCS", a, b) + opts, _keys, _keys,
              st.sampled_from([(), ("LEN",), ("IDX",), ("IDX", "WITHMATCHLEN", "MINMATCHLEN", "2")])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(_commands, min_size=1, max_size=25))
def test_random_sequences(redis_ref, script):
    from tests.support.resp import RawClient
    for proto in (2, 3):
        client = RawClient(redis_ref.port)
        try:
            client.call("FLUSHALL")
            if proto == 3:
                client.call("HELLO", "3")
            compare([client, EngineTarget(proto=proto)], script)
        finally:
            client.close()
