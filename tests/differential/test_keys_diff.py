"""The generic key commands against redis-server: identical reply bytes in
RESP2 and RESP3, error texts included."""
import time

import pytest

from fastcache.engine.registry import lookup
from tests.support.differential import compare
from tests.support.normalize import sorted_array, sorted_scan, split


# -- normalizers for replies whose order or exact value may legitimately differ --

def rounded(unit):
    """Integer replies rounded to unit (TTLs that tick between the two calls)."""
    def norm(raw):
        if raw[:1] != b":":
            return raw
        value = int(raw[1:-2])
        return value if value < 0 else round(value / unit)
    return norm


def small(raw):
    """OBJECT IDLETIME right after a write: 0, or 1 if Redis's LRU clock ticked.
    (Checked on a non-integer value: Redis shares small integers, whose idle
    time reflects whoever touched the shared object last.)"""
    return b":small" if raw in (b":0\r\n", b":1\r\n") else raw


S = sorted_array


def test_del_exists_touch_unlink(targets):
    compare(targets, [
        ("SET", "a", "1"), ("SET", "b", "2"), ("SET", "c", "3"),
        ("EXISTS", "a"), ("EXISTS", "a", "a", "nope", "b"), ("EXISTS", "nope"),
        ("TOUCH", "a", "nope", "c"), ("TOUCH", "nope"),
        ("DEL", "a", "a", "nope"), ("DEL", "a"), ("UNLINK", "b", "c", "x"), ("UNLINK", "b"),
        ("DEL",), ("UNLINK",), ("EXISTS",), ("TOUCH",), ("del", "x"), ("Exists", "x"),
    ])


def test_type(targets):
    compare(targets, [
        ("SET", "s", "v"), ("TYPE", "s"), ("TYPE", "nope"), ("TYPE",), ("TYPE", "a", "b"),
    ])


OTHER_TYPES = [
    ("list", ("RPUSH", "k_list", "a", "b")),
    ("set", ("SADD", "k_set", "a", "b")),
    ("zset", ("ZADD", "k_zset", "1", "a")),
    ("hash", ("HSET", "k_hash", "f", "v")),
    ("stream", ("XADD", "k_stream", "1-1", "f", "v")),
]


@pytest.mark.parametrize("name,create", OTHER_TYPES, ids=[t[0] for t in OTHER_TYPES])
def test_other_types(targets, name, create):
    if lookup([create[0].lower().encode()]) is None:
        pytest.skip("%s family not implemented yet" % name)
    key = create[1]
    compare(targets, [
        create, ("SET", "s", "v"), ("TYPE", key), (("SCAN", "0", "TYPE", name), sorted_scan),
        (("SCAN", "0", "TYPE", name.upper(), "COUNT", "100"), sorted_scan),
        ("COPY", key, "copied"), ("TYPE", "copied"), ("RENAME", key, "renamed"),
        ("TYPE", "renamed"), ("EXISTS", "renamed", "copied"), ("DEL", "renamed", "copied"),
    ])


def test_expire_family(targets):
    at = int(time.time()) + 1000
    compare(targets, [
        ("SET", "k", "v"), ("TTL", "k"), ("PTTL", "k"), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
        ("TTL", "nope"), ("PTTL", "nope"), ("EXPIRETIME", "nope"), ("PEXPIRETIME", "nope"),
        ("EXPIRE", "nope", "100"), ("PEXPIRE", "nope", "100"),
        ("EXPIRE", "k", "100"), ("TTL", "k"), (("PTTL", "k"), rounded(1000)),
        ("PEXPIRE", "k", "200000"), ("TTL", "k"),
        ("EXPIREAT", "k", str(at)), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
        ("PEXPIREAT", "k", str(at * 1000 + 123)), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
        ("PERSIST", "k"), ("PERSIST", "k"), ("PERSIST", "nope"), ("TTL", "k"),
        ("EXPIRE", "k", "abc"), ("EXPIRE", "k", "1.5"), ("EXPIRE", "k", " 1"), ("EXPIRE", "k"),
        ("TTL",), ("PERSIST",), ("EXPIRETIME", "a", "b"),
    ])


def test_expire_options(targets):
    compare(targets, [
        ("SET", "k", "v"),
        ("EXPIRE", "k", "100", "XX"), ("EXPIRE", "k", "100", "GT"), ("EXPIRE", "k", "100", "LT"),
        ("TTL", "k"), ("PERSIST", "k"),
        ("EXPIRE", "k", "100", "NX"), ("EXPIRE", "k", "100", "nx"), ("EXPIRE", "k", "50", "gt"),
        ("EXPIRE", "k", "500", "GT"), ("TTL", "k"), ("EXPIRE", "k", "600", "LT"),
        ("EXPIRE", "k", "20", "LT", "XX"), ("TTL", "k"), ("PEXPIRE", "k", "30000", "gt", "xx"),
        ("TTL", "k"),
        ("EXPIRE", "k", "10", "NX", "XX"), ("EXPIRE", "k", "10", "NX", "GT"),
        ("EXPIRE", "k", "10", "LT", "NX"), ("EXPIRE", "k", "10", "GT", "LT"),
        ("EXPIRE", "k", "10", "foo"), ("EXPIRE", "k", "abc", "foo"), ("EXPIRE", "k", "abc", "NX", "XX"),
        ("EXPIRE", "nope", "10", "NX", "XX"), ("PEXPIREAT", "k", "10", "bar"),
        ("EXPIREAT", "k", "10", "NX", "NX"), ("TTL", "k"),
    ])


def test_expire_in_the_past_and_overflow(targets):
    big, small_ = "9223372036854775807", "-9223372036854775808"
    compare(targets, [
        ("SET", "k", "v"), ("EXPIRE", "k", "-1"), ("EXISTS", "k"),
        ("SET", "k", "v"), ("PEXPIRE", "k", "0"), ("EXISTS", "k"),
        ("SET", "k", "v"), ("EXPIREAT", "k", "1"), ("EXISTS", "k"),
        ("SET", "k", "v"), ("PEXPIREAT", "k", small_), ("EXISTS", "k"),
        ("SET", "k", "v"), ("PEXPIRE", "k", small_), ("EXISTS", "k"),
        ("SET", "k", "v"),
        ("EXPIRE", "k", big), ("PEXPIRE", "k", big), ("EXPIREAT", "k", big),
        ("EXPIRE", "k", "9223372036854775"), ("EXPIRE", "k", "9223372036854774"),
        ("EXPIREAT", "k", small_), ("EXPIRE", "k", "-9223372036854776"),
        ("EXPIRE", "k", "9223372036854775808"),
        ("PEXPIREAT", "k", big), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"), (("TTL", "k"), rounded(10)),
        ("EXPIRE", "nope", big),
    ])


def test_expired_keys_vanish(targets):
    compare(targets, [("SET", "a", "1"), ("SET", "b", "2"), ("PEXPIRE", "a", "1")])
    time.sleep(0.01)
    compare(targets, [
        ("KEYS", "*"), ("EXISTS", "a"), ("TTL", "a"), ("TYPE", "a"), ("DBSIZE",),
        ("RANDOMKEY",), ("RENAME", "a", "c"), ("PERSIST", "a"), ("EXPIRE", "a", "10"),
    ])


def test_keys(targets):
    keys = ["hello", "hallo", "hxllo", "heeeello", "user:1:name", "user:2:name", "a*b", "", "[x]"]
    compare(targets, [("SET", k, "v") for k in keys] + [
        (("KEYS", p), S) for p in ("*", "**", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo",
                                  "user:*", "*:name", "a\\*b", "a*b", "", "[[]x]", "\\[x\\]", "nomatch",
                                  "[", "?", "*[", "*\\")
    ] + [("KEYS",), ("KEYS", "a", "b")])


def test_scan_small(targets):
    compare(targets, [("SET", "k%d" % i, "v") for i in range(8)] + [("SET", "other", "v")] + [
        (("SCAN", "0"), sorted_scan), (("SCAN", "0", "COUNT", "100"), sorted_scan),
        (("SCAN", "0", "MATCH", "k*"), sorted_scan), (("SCAN", "0", "match", "*[1-3]"), sorted_scan),
        (("SCAN", "0", "TYPE", "string"), sorted_scan), (("SCAN", "0", "TYPE", "list"), sorted_scan),
        (("SCAN", "0", "TYPE", "nosuchtype"), sorted_scan),
        (("SCAN", "0", "MATCH", "k1", "MATCH", "o*", "COUNT", "20"), sorted_scan),
        (("SCAN", ""), sorted_scan), (("SCAN", "+0"), sorted_scan), (("SCAN", "00"), sorted_scan),
        ("SCAN", " 0"), ("SCAN", "0 "), ("SCAN", "x"), ("SCAN", "1.0"), ("SCAN", "18446744073709551616"),
        ("SCAN", "0", "COUNT", "0"), ("SCAN", "0", "COUNT", "-1"), ("SCAN", "0", "COUNT", "x"),
        ("SCAN", "x", "COUNT", "0"), ("SCAN", "0", "MATCH"), ("SCAN", "0", "COUNT"),
        ("SCAN", "0", "foo", "bar"), ("SCAN", "0", "TYPE"), ("SCAN",),
    ])


def test_scan_empty(targets):
    compare(targets, [("SCAN", "0"), ("SCAN", "0", "MATCH", "x*", "COUNT", "5")])


def _full_scan(target, *options):
    cursor, found = b"0", []
    while True:
        raw = target.call("SCAN", cursor, *options)
        _, (cursor_raw, keys_raw) = split(raw)
        cursor = cursor_raw.split(b"\r\n")[1]
        found += [item.split(b"\r\n")[1] for item in split(keys_raw)[1]]
        if cursor == b"0":
            return found


@pytest.mark.parametrize("options", [(), ("COUNT", "7"), ("MATCH", "k1*", "COUNT", "3"), ("COUNT", "1000")])
def test_scan_full_iteration(targets, options):
    for t in targets:
        for i in range(300):
            t.call("SET", "k%d" % i, "v")
    redis_keys, our_keys = (_full_scan(t, *options) for t in targets)
    assert sorted(set(redis_keys)) == sorted(set(our_keys))
    assert len(our_keys) == len(set(our_keys))


def test_randomkey_dbsize(targets):
    compare(targets, [
        ("RANDOMKEY",), ("DBSIZE",), ("SET", "only", "v"), ("RANDOMKEY",), ("DBSIZE",),
        ("SET", "two", "v"), ("DBSIZE",), ("RANDOMKEY", "x"), ("DBSIZE", "x"),
    ])


def test_rename(targets):
    compare(targets, [
        ("RENAME", "nope", "x"), ("RENAMENX", "nope", "x"), ("RENAME", "nope", "nope"),
        ("SET", "a", "1"), ("SET", "b", "2"), ("EXPIRE", "a", "100"),
        ("RENAME", "a", "a"), ("RENAMENX", "a", "a"), ("RENAMENX", "a", "b"),
        ("RENAME", "a", "b"), ("GET", "b"), ("TTL", "b"), ("EXISTS", "a"),
        ("SET", "c", "3"), ("RENAMENX", "c", "d"), ("RENAME", "d", "b"), ("TTL", "b"), ("GET", "b"),
        ("RENAME", "a"), ("RENAMENX", "a", "b", "c"),
    ])


def test_copy(targets):
    compare(targets, [
        ("COPY", "nope", "x"), ("SET", "a", "1"), ("EXPIRE", "a", "100"),
        ("COPY", "a", "a"), ("COPY", "a", "b"), ("TTL", "b"), ("COPY", "a", "b"),
        ("SET", "c", "3"), ("COPY", "c", "b", "REPLACE"), ("TTL", "b"), ("GET", "b"),
        ("COPY", "a", "a", "DB", "1"), ("COPY", "a", "a", "db", "1"), ("COPY", "a", "a", "DB", "1", "replace"),
        ("COPY", "a", "a", "DB", "0"), ("COPY", "a", "x", "DB", "16"), ("COPY", "a", "x", "DB", "-1"),
        ("COPY", "a", "x", "DB", "x"), ("COPY", "a", "x", "DB", "2147483648"),
        ("COPY", "a", "x", "DB", "99999999999999999999"), ("COPY", "a", "x", "DB"),
        ("COPY", "a", "x", "foo"), ("COPY", "a", "x", "REPLACE", "foo"), ("COPY", "a"),
        ("COPY", "nope", "nope", "DB", "0"), ("SWAPDB", "0", "1"), ("GET", "a"), ("TTL", "a"),
    ])


def test_move(targets):
    compare(targets, [
        ("SET", "a", "1"), ("EXPIRE", "a", "100"),
        ("MOVE", "a", "0"), ("MOVE", "a", "16"), ("MOVE", "a", "-1"), ("MOVE", "a", "x"),
        ("MOVE", "a", "4294967296"), ("MOVE", "nope", "1"), ("MOVE", "nope", "0"),
        ("MOVE", "a", "1"), ("EXISTS", "a"), ("SET", "a", "2"), ("MOVE", "a", "1"),
        ("MOVE", "a"), ("SWAPDB", "0", "1"), ("GET", "a"), ("TTL", "a"),
    ])


def test_swapdb_flush(targets):
    compare(targets, [
        ("SET", "a", "1"), ("SWAPDB", "0", "1"), ("DBSIZE",), ("SWAPDB", "1", "0"), ("DBSIZE",),
        ("SWAPDB", "0", "0"), ("DBSIZE",),
        ("SWAPDB", "0", "16"), ("SWAPDB", "-1", "0"), ("SWAPDB", "x", "y"), ("SWAPDB", "0", "y"),
        ("SWAPDB", "0", "2147483648"), ("SWAPDB", "0"),
        ("FLUSHDB", "x"), ("FLUSHDB", "async", "sync"), ("FLUSHALL", "x"), ("FLUSHALL", "sync", "x"),
        ("FLUSHDB", "ASYNC"), ("DBSIZE",), ("SET", "a", "1"), ("FLUSHDB", "sync"), ("DBSIZE",),
        ("SET", "a", "1"), ("FLUSHDB",), ("SET", "b", "1"), ("FLUSHALL",), ("DBSIZE",),
        ("SET", "c", "1"), ("FLUSHALL", "Async"), ("FLUSHALL", "SYNC"), ("DBSIZE",),
    ])


def test_object(targets):
    values = ["123", "0", "9999", "10000", "-5", "-0", "007", "+1", " 1", "1.5",
              "9223372036854775807", "9223372036854775808", "-9223372036854775808",
              "x" * 44, "x" * 45, "", "hello"]
    script = []
    for i, v in enumerate(values):
        script += [("SET", "k%d" % i, v), ("OBJECT", "ENCODING", "k%d" % i), ("OBJECT", "REFCOUNT", "k%d" % i)]
    compare(targets, script + [
        ("OBJECT", "ENCODING", "nope"), ("OBJECT", "REFCOUNT", "nope"), ("OBJECT", "IDLETIME", "nope"),
        ("OBJECT", "FREQ", "nope"), ("OBJECT", "FREQ", "k0"), (("OBJECT", "IDLETIME", "k16"), small),
        ("OBJECT", "HELP"), ("object", "help"), ("OBJECT", "HELP", "x"), ("OBJECT",),
        ("OBJECT", "foo"), ("OBJECT", "foo", "bar"), ("OBJECT", "ENCODING"),
        ("OBJECT", "ENCODING", "a", "b"), ("OBJECT", "refcount"), ("OBJECT", "idletime", "a", "b"),
        ("OBJECT", "Encoding", "k0"),
    ])
