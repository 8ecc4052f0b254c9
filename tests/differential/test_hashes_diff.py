"""The hash commands against redis-server: identical reply bytes in RESP2 and
RESP3, error texts included.

Small hashes (listpack) reply in the same order as Redis, so most scripts
compare raw bytes as they are; hashtable-encoded replies and random picks
are normalised first."""
import random
import time

import pytest

from tests.support.differential import compare
from tests.support.normalize import (
    blank_bulks, sorted_array, sorted_pairs, sorted_scan, split,
)


LONG = "f" * 65     # one byte over hash-max-listpack-value
LIMIT = "g" * 64    # exactly at it
ENTRIES = 512       # hash-max-listpack-entries


# -- setting and reading --------------------------------------------------------

def test_set_and_read(targets):
    compare(targets, [
        ("HSET", "h", "a", "1"), ("HSET", "h", "b", "2", "c", "3", "a", "x"),
        ("HSET", "h", "a", "1", "a", "2", "d", "4"), ("HMSET", "h", "e", "5", "b", "22"),
        ("HSETNX", "h", "a", "nope"), ("HSETNX", "h", "f", "6"), ("HSETNX", "new", "f", "6"),
        ("HGETALL", "h"), ("HKEYS", "h"), ("HVALS", "h"), ("HLEN", "h"),
        ("HGET", "h", "a"), ("HGET", "h", "zz"), ("HGET", "nokey", "a"),
        ("HMGET", "h", "a", "zz", "b", "a"), ("HMGET", "nokey", "a", "b"),
        ("HEXISTS", "h", "a"), ("HEXISTS", "h", "zz"), ("HEXISTS", "nokey", "a"),
        ("HSTRLEN", "h", "b"), ("HSTRLEN", "h", "zz"), ("HSTRLEN", "nokey", "a"),
        ("HLEN", "nokey"), ("HGETALL", "nokey"), ("HKEYS", "nokey"), ("HVALS", "nokey"),
        ("hset", "h", "", ""), ("HGET", "h", ""), ("HSTRLEN", "h", ""),
        ("HSET", "h", "bin\x00ary", "v\x00"), ("HGET", "h", "bin\x00ary"), ("HGETALL", "h"),
        ("TYPE", "h"), ("OBJECT", "ENCODING", "h"), ("hset", "h", "n", "-0"), ("HGET", "h", "n"),
        ("HSET", "h", "i", "12345678901234567890123"), ("HGET", "h", "i"),
    ])


def test_delete(targets):
    compare(targets, [
        ("HDEL", "nokey", "a"), ("HSET", "h", "a", "1", "b", "2", "c", "3"),
        ("HDEL", "h", "zz"), ("HDEL", "h", "a", "a", "zz"), ("HGETALL", "h"),
        ("HSET", "h", "a", "9"), ("HGETALL", "h"),
        ("HDEL", "h", "b", "c", "a", "zz"), ("EXISTS", "h"), ("TYPE", "h"), ("HLEN", "h"),
        ("HSET", "h", "x", "1"), ("HDEL", "h", "x"), ("EXISTS", "h"),
    ])


def test_arity_errors(targets):
    compare(targets, [
        ("HSET", "h", "a", "1", "b"), ("HSET", "h", "a"), ("HSET", "h"), ("hset", "h", "a"),
        ("HMSET", "h", "a"), ("HMSET", "h", "a", "1", "b"), ("HSETNX", "h", "a"),
        ("HSETNX", "h", "a", "1", "2"), ("HGET", "h"), ("HGET", "h", "a", "b"), ("HMGET", "h"),
        ("HGETALL",), ("HGETALL", "h", "x"), ("HDEL", "h"), ("HEXISTS", "h"), ("HLEN",),
        ("HSTRLEN", "h"), ("HKEYS",), ("HVALS", "h", "x"), ("HINCRBY", "h", "a"),
        ("HINCRBYFLOAT", "h", "a"), ("HRANDFIELD",), ("HSCAN", "h"), ("EXISTS", "h"),
    ])


def test_wrong_type(targets):
    compare(targets, [
        ("SET", "s", "x"),
        ("HSET", "s", "a", "1"), ("HSET", "s", "a", "1", "b"), ("HMSET", "s", "a", "1"),
        ("HSETNX", "s", "a", "1"), ("HGET", "s", "a"), ("HMGET", "s", "a"), ("HGETALL", "s"),
        ("HDEL", "s", "a"), ("HEXISTS", "s", "a"), ("HLEN", "s"), ("HSTRLEN", "s", "a"),
        ("HKEYS", "s"), ("HVALS", "s"), ("HINCRBY", "s", "a", "1"), ("HINCRBY", "s", "a", "x"),
        ("HINCRBYFLOAT", "s", "a", "1"), ("HINCRBYFLOAT", "s", "a", "x"),
        ("HRANDFIELD", "s"), ("HRANDFIELD", "s", "0"), ("HRANDFIELD", "s", "x"),
        ("HRANDFIELD", "s", "1", "bad"), ("HSCAN", "s", "0"), ("HSCAN", "s", "x"),
        ("HSCAN", "s", "0", "COUNT", "0"), ("GET", "s"),
        ("HSET", "h", "a", "1"), ("GET", "h"), ("INCR", "h"), ("TYPE", "h"),
    ])


def test_expired_hash_is_gone(targets):
    compare(targets, [("HSET", "h", "a", "1"), ("PEXPIRE", "h", "1")])
    time.sleep(0.01)
    compare(targets, [
        ("HGET", "h", "a"), ("HLEN", "h"), ("HSET", "h", "b", "2"), ("TTL", "h"), ("HGETALL", "h"),
        ("EXPIRE", "h", "100"), ("HSET", "h", "c", "3"), ("TTL", "h"),
    ])


# -- counters -------------------------------------------------------------------

def test_hincrby(targets):
    compare(targets, [
        ("HINCRBY", "h", "a", "x"), ("EXISTS", "h"), ("HINCRBY", "h", "a", "5"),
        ("HINCRBY", "h", "a", "-10"), ("HINCRBY", "h", "a", "01"), ("HINCRBY", "h", "a", "+1"),
        ("HINCRBY", "h", "a", "-0"),
        ("HINCRBY", "h", "a", " 1"), ("HINCRBY", "h", "a", "1.0"),
        ("HINCRBY", "h", "a", "9223372036854775808"),
        ("HINCRBY", "h", "big", "9223372036854775807"), ("HINCRBY", "h", "big", "1"),
        ("HINCRBY", "h", "big", "0"), ("HINCRBY", "h", "small", "-9223372036854775808"),
        ("HINCRBY", "h", "small", "-1"), ("HINCRBY", "h", "small", "1"),
        ("HSET", "h", "f", "1.5", "sp", " 1", "z", "-0", "lead", "007", "e", ""),
        ("HINCRBY", "h", "f", "1"), ("HINCRBY", "h", "sp", "1"), ("HINCRBY", "h", "z", "1"),
        ("HINCRBY", "h", "lead", "1"), ("HINCRBY", "h", "e", "1"),
        ("HSET", "h", "n", "-5"), ("HINCRBY", "h", "n", "5"), ("HGETALL", "h"),
    ])


def test_hincrbyfloat(targets):
    compare(targets, [
        ("HINCRBYFLOAT", "h", "f", "inf"), ("HINCRBYFLOAT", "h", "f", "-Infinity"),
        ("HINCRBYFLOAT", "h", "f", "nan"), ("HINCRBYFLOAT", "h", "f", "abc"),
        ("HINCRBYFLOAT", "h", "f", "1e5000"), ("HINCRBYFLOAT", "h", "f", ""),
        ("HINCRBYFLOAT", "h", "f", " 1"), ("EXISTS", "h"),
        ("HINCRBYFLOAT", "h", "q", "0.1"), ("HINCRBYFLOAT", "h", "q", "0.2"),
        ("HINCRBYFLOAT", "h", "q", "1e-20"), ("HINCRBYFLOAT", "h", "q", "0x10"),
        ("HINCRBYFLOAT", "h", "q", "-16.3"), ("HINCRBYFLOAT", "h", "q", "5.0e3"),
        ("HINCRBYFLOAT", "h", "q", "-5000"), ("HINCRBYFLOAT", "h", "q", "-0"),
        ("HINCRBYFLOAT", "h", "q", "+.5e1"), ("HINCRBYFLOAT", "h", "q", "."),
        ("HINCRBYFLOAT", "h", "q", "1."),
        ("HSET", "h", "i", "10", "g", "inf", "ng", "-inf", "sp", " 1", "bad", "1x",
         "huge", "1e400", "over", "1e5000"),
        ("HINCRBYFLOAT", "h", "i", "1.5"), ("HINCRBYFLOAT", "h", "g", "1"),
        ("HINCRBYFLOAT", "h", "ng", "1"), ("HINCRBYFLOAT", "h", "sp", "1"),
        ("HINCRBYFLOAT", "h", "bad", "1"), ("HINCRBYFLOAT", "h", "over", "1"),
        ("HINCRBYFLOAT", "h", "huge", "1"), ("HINCRBYFLOAT", "h", "huge", "-1e400"),
        ("HSET", "h", "m", "1.1e4932"), ("HINCRBYFLOAT", "h", "m", "1.1e4932"),
        ("HINCRBYFLOAT", "h", "i", "3.0"), ("HINCRBYFLOAT", "h", "i", "-14.5"),
        ("HGETALL", "h", ), ("OBJECT", "ENCODING", "h"),
    ], normalize=sorted_pairs)


def test_hincrbyfloat_matches_incrbyfloat_rounding(targets):
    rng = random.Random(7)
    script = []
    for i in range(40):
        delta = "%.*g" % (rng.randint(1, 20), rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-8, 8))
        script.append(("HINCRBYFLOAT", "h", "f%d" % (i % 4), delta))
    compare(targets, script + [("HGETALL", "h")])


# -- encodings ------------------------------------------------------------------

def _fill(n, prefix="f"):
    args = ["HSET", "h"]
    for i in range(n):
        args += ["%s%d" % (prefix, i), "v%d" % i]
    return tuple(args)


def test_entry_count_threshold(targets):
    compare(targets, [
        _fill(ENTRIES), ("OBJECT", "ENCODING", "h"), ("HSETNX", "h", "f0", "x"),
        ("OBJECT", "ENCODING", "h"), ("HSET", "h", "f1", "y"), ("OBJECT", "ENCODING", "h"),
        ("HSETNX", "h", "extra", "x"), ("OBJECT", "ENCODING", "h"),
        ("HDEL", "h", *["f%d" % i for i in range(ENTRIES - 5)]), ("OBJECT", "ENCODING", "h"),
        ("HLEN", "h"), ("DEL", "h"), _fill(ENTRIES + 1), ("OBJECT", "ENCODING", "h"),
        ("HMSET", "m", *_fill(ENTRIES + 2)[2:]), ("OBJECT", "ENCODING", "m"), ("HLEN", "m"),
    ])
    compare(targets, [("HGETALL", "h"), ("HGETALL", "m")], normalize=sorted_pairs)
    compare(targets, [("HKEYS", "h"), ("HVALS", "m")], normalize=sorted_array)


@pytest.mark.parametrize("write", [
    ("HSET", "h", "extra", "x"), ("HMSET", "h", "f0", "1", "extra", "x"),
    ("HSET", "h", "extra", "x", "extra", "y"), ("HSETNX", "h", "extra", "x"),
    ("HINCRBY", "h", "extra", "1"), ("HINCRBYFLOAT", "h", "extra", "1"),
    ("HSET", "h", "f0", "1"),
])
def test_one_more_entry_converts(targets, write):
    compare(targets, [_fill(ENTRIES), write, ("OBJECT", "ENCODING", "h"), ("HLEN", "h")])


@pytest.mark.parametrize("write", [
    ("HSET", "h", LONG, "v"), ("HSET", "h", "f", LONG), ("HSET", "h", "a", LONG),
    ("HMSET", "h", "x", "1", "y", LONG), ("HSETNX", "h", LONG, "1"), ("HSETNX", "h", "n", LONG),
    ("HINCRBY", "h", LONG, "1"), ("HINCRBYFLOAT", "h", LONG, "1"),
    ("HINCRBYFLOAT", "h", "x", "1e70"),
])
def test_value_length_threshold(targets, write):
    compare(targets, [
        ("HSET", "h", "a", "1", LIMIT, LIMIT), ("OBJECT", "ENCODING", "h"),
        write, ("OBJECT", "ENCODING", "h"),
        ("HDEL", "h", LONG, "a", "x", "y", "n"), ("OBJECT", "ENCODING", "h"), ("HLEN", "h"),
    ])
    compare(targets, [("HGETALL", "h")], normalize=sorted_pairs)


def test_hsetnx_on_existing_field_keeps_listpack(targets):
    compare(targets, [
        ("HSET", "h", "a", "1"), ("HSETNX", "h", "a", LONG), ("OBJECT", "ENCODING", "h"),
        ("HSET", "new", LONG, "1"), ("OBJECT", "ENCODING", "new"),
    ])


def test_type_copy_and_scan_type(targets):
    compare(targets, [
        ("HSET", "h", "a", "1", "b", "2"), ("HSET", "big", LONG, "1"), ("SET", "s", "x"),
        ("COPY", "h", "h2"), ("HSET", "h2", "c", "3"), ("HGETALL", "h"), ("HGETALL", "h2"),
        ("COPY", "big", "big2"), ("OBJECT", "ENCODING", "big2"), ("HGETALL", "big2"),
        ("TYPE", "h2"), (("SCAN", "0", "TYPE", "hash", "COUNT", "100"), sorted_scan),
        ("RENAME", "h", "r"), ("HGETALL", "r"), ("DEL", "r"), ("HGETALL", "r"),
    ])


# -- HRANDFIELD -----------------------------------------------------------------

def test_hrandfield_arguments(targets):
    compare(targets, [
        ("HSET", "h", "a", "1", "b", "2", "c", "3"),
        ("HRANDFIELD", "h", "x"), ("HRANDFIELD", "h", "1.5"), ("HRANDFIELD", "h", "-0"),
        ("HRANDFIELD", "h", "+1"), ("HRANDFIELD", "h", "01"), ("HRANDFIELD", "nokey", "x"),
        ("HRANDFIELD", "h", "-9223372036854775808"),
        ("HRANDFIELD", "h", "-9223372036854775808", "WITHVALUES"),
        ("HRANDFIELD", "h", "9223372036854775808"),
        ("HRANDFIELD", "h", "-9223372036854775807", "withvalues"),
        ("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"),
        ("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"),
        ("HRANDFIELD", "h", "1", "WITHVALUE"), ("HRANDFIELD", "h", "1", "WITHVALUES", "x"),
        ("HRANDFIELD", "h", "x", "WITHVALUE"), ("HRANDFIELD", "nokey", "1", "bad"),
        ("HRANDFIELD", "nokey"), ("HRANDFIELD", "nokey", "0"), ("HRANDFIELD", "nokey", "5"),
        ("HRANDFIELD", "nokey", "-5", "WITHVALUES"), ("HRANDFIELD", "h", "0"),
        ("HRANDFIELD", "h", "0", "withvalues"),
        # count >= size returns the whole (listpack) hash in order
        ("HRANDFIELD", "h", "3"), ("HRANDFIELD", "h", "100", "WITHVALUES"),
        ("HRANDFIELD", "h", "4611686018427387903", "WITHVALUES"),
        ("HSET", "one", "f", "v"), ("HRANDFIELD", "one"), ("HRANDFIELD", "one", "1"),
        ("HRANDFIELD", "one", "1", "WITHVALUES"), ("HRANDFIELD", "one", "-3"),
        ("HRANDFIELD", "one", "-3", "WITHVALUES"),
    ])


@pytest.mark.parametrize("size", [5, ENTRIES + 100])
def test_hrandfield_shapes(targets, size):
    compare(targets, [_fill(size)])
    script = [("HRANDFIELD", "h")]
    for count in (1, 2, 4, -1, -4, -10, size - 1, size, size + 3, -size * 2):
        script += [("HRANDFIELD", "h", str(count)), ("HRANDFIELD", "h", str(count), "WITHVALUES")]
    compare(targets, script, normalize=blank_bulks)


def test_hrandfield_picks_members(targets):
    engine = targets[1]
    engine.call(*_fill(10))
    fields = {b"f%d" % i for i in range(10)}
    for count in (3, -30, 10):
        raw = engine.call("HRANDFIELD", "h", str(count))
        picked = [item.split(b"\r\n")[1] for item in split(raw)[1]]
        assert len(picked) == abs(count) and set(picked) <= fields
        if count > 0:
            assert len(set(picked)) == count


# -- HSCAN ----------------------------------------------------------------------

def test_hscan_listpack(targets):
    compare(targets, [
        ("HSCAN", "nokey", "0"), ("HSCAN", "nokey", "x"), ("HSCAN", "nokey", "0", "TYPE", "x"),
        ("HSCAN", "nokey", "0", "COUNT", "0"),
        ("HSET", "h", "a", "1", "b", "2", "ab", "3", "c", "4"),
        ("HSCAN", "h", "0"), ("HSCAN", "h", "123"), ("HSCAN", "h", "-1"),
        ("HSCAN", "h", "0", "MATCH", "a*"), ("HSCAN", "h", "0", "match", "*b", "COUNT", "1"),
        ("HSCAN", "h", "0", "MATCH", "zz"), ("HSCAN", "h", "0", "COUNT", "1"),
        ("HSCAN", "h", "0", "MATCH", "a*", "MATCH", "c"),
        ("HSCAN", "h", "x"), ("HSCAN", "h", " 0"), ("HSCAN", "h", "+0"), ("HSCAN", "h", ""),
        ("HSCAN", "h", "18446744073709551616"),
        ("HSCAN", "h", "0", "TYPE", "hash"), ("HSCAN", "h", "0", "COUNT", "0"),
        ("HSCAN", "h", "0", "COUNT", "-1"), ("HSCAN", "h", "0", "COUNT", "x"),
        ("HSCAN", "h", "0", "COUNT"), ("HSCAN", "h", "0", "MATCH"), ("HSCAN", "h", "0", "foo", "1"),
        ("HSCAN", "h", "x", "COUNT", "0"),
    ])


def _full_hscan(target, key, *options):
    """Every (field, value) an HSCAN iteration returns, duplicates kept."""
    cursor, found = b"0", []
    while True:
        _, (cursor_raw, items_raw) = split(target.call("HSCAN", key, cursor, *options))
        cursor = cursor_raw.split(b"\r\n")[1]
        items = [item.split(b"\r\n")[1] for item in split(items_raw)[1]]
        found += list(zip(items[::2], items[1::2]))
        if cursor == b"0":
            return found


@pytest.mark.parametrize("options", [(), ("COUNT", "7"), ("MATCH", "f1*", "COUNT", "3"),
                                     ("COUNT", "1000")])
def test_hscan_hashtable_full_iteration(targets, options):
    compare(targets, [_fill(ENTRIES + 200), ("OBJECT", "ENCODING", "h")])
    theirs, ours = (_full_hscan(t, "h", *options) for t in targets)
    assert sorted(set(theirs)) == sorted(set(ours))
    assert len(ours) == len(set(ours))


# -- a random mix, compared reply by reply --------------------------------------

def test_random_script(targets):
    rng = random.Random(2024)
    fields = ["f%d" % i for i in range(6)]
    keys = ["h1", "h2", "s"]
    script = [("SET", "s", "str")]
    for _ in range(300):
        key, field = rng.choice(keys), rng.choice(fields)
        kind = rng.randrange(12)
        if kind == 0:
            script.append(("HSET", key, field, str(rng.randint(-3, 3)), rng.choice(fields), "v"))
        elif kind == 1:
            script.append(("HSETNX", key, field, str(rng.randint(-3, 3))))
        elif kind == 2:
            script.append(("HDEL", key, field, rng.choice(fields)))
        elif kind == 3:
            script.append(("HINCRBY", key, field, str(rng.randint(-5, 5))))
        elif kind == 4:
            script.append(("HINCRBYFLOAT", key, field, rng.choice(["0.5", "-1.25", "3", "1e3"])))
        elif kind == 5:
            script.append(("HMGET", key, field, rng.choice(fields)))
        elif kind == 6:
            script.append(("HGETALL", key))
        elif kind == 7:
            script.append(("HSCAN", key, "0", "MATCH", "f[0-3]"))
        else:
            script.append((rng.choice(["HGET", "HEXISTS", "HSTRLEN"]), key, field))
        if rng.random() < 0.1:
            script.append((rng.choice(["HLEN", "HKEYS", "HVALS", "EXISTS"]), key))
    compare(targets, script)
