"""The set commands against redis-server: identical reply bytes in RESP2 and
RESP3, error texts included, and the same ks.dirty / keyspace hit and miss
counts as Redis's INFO.

Set replies come in no particular order (Redis lists intsets in ascending
order, fastcache does not), so they are sorted before comparing; random
picks are compared by shape, then checked against the sets they came from."""
import random
import re
import time

import hiredis
import pytest

from tests.support.differential import compare
from tests.support.normalize import blank_bulks, sorted_array, sorted_scan

S = sorted_array
MAX_INTSET = 512  # set-max-intset-entries


def parse(raw):
    reader = hiredis.Reader()
    reader.feed(raw)
    return reader.gets()


def members(target, key):
    return set(parse(target.call("SMEMBERS", key)))


def ints(start, stop):
    return [str(i) for i in range(start, stop)]


# -- adding, removing, reading ------------------------------------------------------

def test_add_remove_and_read(targets):
    compare(targets, [
        ("SADD", "s", "a", "b", "a", "c"), ("SADD", "s", "a"), ("SCARD", "s"),
        (("SMEMBERS", "s"), S), ("SISMEMBER", "s", "a"), ("SISMEMBER", "s", "zz"),
        ("SMISMEMBER", "s", "a", "zz", "c", "a"), ("SMISMEMBER", "nope", "a", "b"),
        ("SISMEMBER", "nope", "a"), ("SCARD", "nope"), ("SMEMBERS", "nope"),
        ("SREM", "s", "a", "zz", "a"), ("SREM", "nope", "a"), (("SMEMBERS", "s"), S),
        ("SREM", "s", "b", "c", "d"), ("EXISTS", "s"), ("TYPE", "s"),
        ("sadd", "s", "", "x"), ("SISMEMBER", "s", ""), ("Srem", "s", "", "x"), ("EXISTS", "s"),
        ("SADD", "bin", "a\x00b", "\r\n"), (("SMEMBERS", "bin"), S),
    ])


def test_arity_errors(targets):
    compare(targets, [
        ("SADD", "s"), ("SREM", "s"), ("SMEMBERS",), ("SMEMBERS", "a", "b"),
        ("SISMEMBER", "s"), ("SISMEMBER", "s", "a", "b"), ("SMISMEMBER", "s"), ("SCARD",),
        ("SCARD", "a", "b"), ("SPOP",), ("SRANDMEMBER",), ("SMOVE", "a", "b"),
        ("SMOVE", "a", "b", "c", "d"), ("SINTER",), ("SUNION",), ("SDIFF",),
        ("SINTERSTORE", "d"), ("SUNIONSTORE", "d"), ("SDIFFSTORE", "d"),
        ("SINTERCARD", "1"), ("SSCAN", "s"),
        ("SPOP", "nope", "1", "2"), ("SRANDMEMBER", "nope", "1", "2"),
        ("SPOP", "nope", "x", "2"), ("SRANDMEMBER", "nope", "x", "2"),
    ])


def test_wrong_type(targets):
    compare(targets, [
        ("SET", "str", "v"), ("SADD", "set", "1", "2"),
        ("SADD", "str", "a"), ("SREM", "str", "a"), ("SMEMBERS", "str"), ("SISMEMBER", "str", "a"),
        ("SMISMEMBER", "str", "a"), ("SCARD", "str"), ("SPOP", "str"), ("SPOP", "str", "0"),
        ("SPOP", "str", "2"), ("SPOP", "str", "x"), ("SRANDMEMBER", "str"),
        ("SRANDMEMBER", "str", "0"), ("SRANDMEMBER", "str", "x"), ("SRANDMEMBER", "str", "-2"),
        ("SMOVE", "str", "set", "1"), ("SMOVE", "set", "str", "1"), ("SMOVE", "set", "str", "9"),
        ("SMOVE", "nope", "str", "1"), ("SMOVE", "str", "str", "1"),
        ("SINTER", "nope", "str"), ("SINTER", "set", "str"), ("SUNION", "str", "nope"),
        ("SDIFF", "nope", "str"), ("SDIFF", "set", "nope", "str"),
        ("SINTERSTORE", "d", "set", "str"), ("SUNIONSTORE", "d", "str"),
        ("SDIFFSTORE", "d", "nope", "str"), ("EXISTS", "d"),
        ("SINTERCARD", "2", "nope", "str"), ("SINTERCARD", "2", "str", "nope", "LIMIT", "x"),
        ("SINTERCARD", "1", "str", "x"), ("SSCAN", "str", "0"), ("SSCAN", "str", "x"),
        ("SSCAN", "str", "0", "COUNT", "x"), (("SMEMBERS", "set"), S), ("GET", "str"),
    ])


def test_expired_set_is_gone(targets):
    compare(targets, [("SADD", "s", "a"), ("PEXPIRE", "s", "1"), ("SADD", "t", "a"),
                      ("PEXPIRE", "t", "1")])
    time.sleep(0.01)
    compare(targets, [
        ("SISMEMBER", "s", "a"), ("SADD", "s", "b"), ("TTL", "s"), ("SMEMBERS", "s"),
        ("SMOVE", "t", "u", "a"), ("EXISTS", "u"), ("SCARD", "t"),
    ])


# -- encodings ----------------------------------------------------------------------

def test_intset_and_hashtable(targets):
    compare(targets, [
        ("SADD", "i", "3", "-1", "9223372036854775807", "-9223372036854775808"),
        ("OBJECT", "ENCODING", "i"),
        *[step for value in ("01", "-0", "+1", " 1", "1 ", "9223372036854775808", "1.0", "a", "")
          for step in (("SADD", "x" + value, "1", value), ("OBJECT", "ENCODING", "x" + value))],
        ("SADD", "sticky", "1", "a"), ("SREM", "sticky", "a"), ("OBJECT", "ENCODING", "sticky"),
        ("SADD", "i", "3"), ("OBJECT", "ENCODING", "i"),
    ])


def test_entry_count_threshold(targets):
    compare(targets, [
        ("SADD", "s", *ints(0, MAX_INTSET)), ("OBJECT", "ENCODING", "s"),
        ("SADD", "s", "0"), ("OBJECT", "ENCODING", "s"),
        ("SADD", "s", str(MAX_INTSET)), ("OBJECT", "ENCODING", "s"),
        ("SREM", "s", *ints(0, 500)), ("OBJECT", "ENCODING", "s"), ("SCARD", "s"),
        ("SADD", "t", *ints(0, MAX_INTSET + 1)), ("OBJECT", "ENCODING", "t"),
    ])


def test_store_results_are_encoded_from_their_members(targets):
    compare(targets, [
        ("SADD", "ht", "1", "2", "3", "a"), ("SREM", "ht", "a"), ("OBJECT", "ENCODING", "ht"),
        ("SADD", "mixed", "1", "01"),
        ("SINTERSTORE", "d", "ht", "ht"), ("OBJECT", "ENCODING", "d"),
        ("SUNIONSTORE", "d", "ht"), ("OBJECT", "ENCODING", "d"),
        ("SUNIONSTORE", "d", "ht", "mixed"), ("OBJECT", "ENCODING", "d"),
        ("SDIFFSTORE", "d", "ht", "mixed"), ("OBJECT", "ENCODING", "d"),
        ("SADD", "big", *ints(0, 600)), ("SDIFFSTORE", "d", "big", "big2"),
        ("OBJECT", "ENCODING", "d"),
        ("COPY", "ht", "ht2"), ("OBJECT", "ENCODING", "ht2"),
        ("SMOVE", "mixed", "new", "01"), ("OBJECT", "ENCODING", "new"),
        ("SMOVE", "mixed", "new2", "1"), ("OBJECT", "ENCODING", "new2"),
    ])


def test_sdiffstore_that_subtracts_keeps_a_hashtable(targets):
    """When probing would cost more, Redis copies the first set and removes the
    others from the copy, which stays a hashtable even if only ints remain."""
    letters = "abcdefghij"
    compare(targets, [
        ("SADD", "first", *letters, "1", "2", "3"), ("SADD", "l1", *letters[:5]),
        ("SADD", "l2", *letters[5:]), ("SADD", "l3", "zz"),
        ("SDIFFSTORE", "probe", "first", "l1", "l2"), ("OBJECT", "ENCODING", "probe"),
        ("SDIFFSTORE", "sub", "first", "l1", "l2", "l3"), ("OBJECT", "ENCODING", "sub"),
        (("SMEMBERS", "sub"), S),
        ("SDIFFSTORE", "sub", "first", "l1", "l2", "l3", "nope"), ("OBJECT", "ENCODING", "sub"),
    ])


def test_spop_rebuild_reencodes(targets):
    """Popping most of a set rebuilds it from the members it keeps."""
    compare(targets, [
        ("SADD", "s", "a", *ints(1, 10)), ("SREM", "s", "a"), ("EXPIRE", "s", "100"),
        ("OBJECT", "ENCODING", "s"), (("SPOP", "s", "8"), blank_bulks), ("OBJECT", "ENCODING", "s"),
        ("TTL", "s"), ("SCARD", "s"),
        ("SADD", "t", "a", *ints(1, 10)), ("SREM", "t", "a"), (("SPOP", "t", "2"), blank_bulks),
        ("OBJECT", "ENCODING", "t"), (("SPOP", "t"), blank_bulks), ("OBJECT", "ENCODING", "t"),
    ])


# -- SPOP and SRANDMEMBER ------------------------------------------------------------

def test_spop_arguments(targets):
    compare(targets, [
        ("SADD", "s", "a", "b", "c"),
        ("SPOP", "nope"), ("SPOP", "nope", "0"), ("SPOP", "nope", "3"), ("SPOP", "s", "0"),
        ("SPOP", "s", "-1"), ("SPOP", "s", "x"), ("SPOP", "nope", "-1"),
        ("SPOP", "s", "9223372036854775808"), ("SPOP", "s", " 1"), ("SCARD", "s"),
        (("SPOP", "s", "9223372036854775807"), S), ("EXISTS", "s"),
        ("SADD", "one", "x"), ("SPOP", "one"), ("EXISTS", "one"), ("SPOP", "one"),
        ("SADD", "one", "x"), ("SPOP", "one", "1"), ("EXISTS", "one"),
        ("SADD", "i", "3", "1", "2"), (("SPOP", "i", "3"), S), ("EXISTS", "i"),
    ])


@pytest.mark.parametrize("size,count", [(20, 1), (20, 3), (20, 16), (20, 19), (200, 30),
                                        (200, 190), (600, 5), (600, 599)])
def test_spop_count_pops_distinct_members(targets, size, count):
    values = ["m%d" % i for i in range(size)] if size % 3 else ints(0, size)
    compare(targets, [("SADD", "s", *values), (("SPOP", "s", str(count)), blank_bulks),
                      ("SCARD", "s"), ("EXISTS", "s")])
    engine = targets[1]
    left = members(engine, "s")
    assert len(left) == size - count and left <= {v.encode() for v in values}


def test_spop_one_at_a_time_empties_the_set(targets):
    values = ["m%d" % i for i in range(100)]
    script = [("SADD", "s", *values)] + [(("SPOP", "s"), blank_bulks)] * 100 + [("EXISTS", "s")]
    compare(targets, script)


def test_srandmember_arguments(targets):
    compare(targets, [
        ("SADD", "s", "a", "b", "c"), ("SADD", "one", "x"),
        ("SRANDMEMBER", "nope"), ("SRANDMEMBER", "nope", "3"), ("SRANDMEMBER", "nope", "-3"),
        ("SRANDMEMBER", "nope", "0"), ("SRANDMEMBER", "s", "0"), ("SRANDMEMBER", "s", "x"),
        ("SRANDMEMBER", "s", "-9223372036854775808"), ("SRANDMEMBER", "nope", "-9223372036854775808"),
        ("SRANDMEMBER", "s", "9223372036854775808"),
        (("SRANDMEMBER", "s", "9223372036854775807"), S), (("SRANDMEMBER", "s", "3"), S),
        ("SRANDMEMBER", "one"), ("SRANDMEMBER", "one", "1"), ("SRANDMEMBER", "one", "-4"),
        ("SCARD", "s"),
    ])


@pytest.mark.parametrize("size", [5, 100, 1000])
@pytest.mark.parametrize("count", [1, 4, 60, 999, -1, -7, -1500])
def test_srandmember_picks_members(targets, size, count):
    values = ["m%d" % i for i in range(size)]
    compare(targets, [("SADD", "s", *values), (("SRANDMEMBER", "s", str(count)), blank_bulks),
                      ("SCARD", "s")])
    picked = parse(targets[1].call("SRANDMEMBER", "s", str(count)))
    assert set(picked) <= {v.encode() for v in values}
    if count > 0:
        assert len(picked) == len(set(picked)) == min(count, size)
    else:
        assert len(picked) == -count


# -- SMOVE --------------------------------------------------------------------------

def test_smove(targets):
    compare(targets, [
        ("SADD", "a", "1", "2", "3"), ("SADD", "b", "2", "x"),
        ("SMOVE", "a", "b", "1"), ("SMOVE", "a", "b", "2"), ("SMOVE", "a", "b", "9"),
        ("SMOVE", "a", "a", "3"), ("SMOVE", "a", "a", "9"), ("SMOVE", "nope", "b", "2"),
        ("SMOVE", "nope", "nope", "2"), (("SMEMBERS", "a"), S), (("SMEMBERS", "b"), S),
        ("SMOVE", "a", "c", "3"), ("EXISTS", "a"), (("SMEMBERS", "c"), S),
        ("OBJECT", "ENCODING", "c"), ("EXPIRE", "b", "100"), ("SMOVE", "c", "b", "3"),
        ("TTL", "b"), ("EXISTS", "c"),
    ])


# -- set algebra ----------------------------------------------------------------------

def test_inter_union_diff(targets):
    compare(targets, [
        ("SADD", "a", "1", "2", "3", "x"), ("SADD", "b", "2", "3", "4", "y"),
        ("SADD", "c", "3", "x", "y", "z"),
        *[((cmd, *keys), S) for cmd in ("SINTER", "SUNION", "SDIFF") for keys in (
            ("a",), ("a", "b"), ("a", "b", "c"), ("c", "b", "a"), ("a", "nope"), ("nope", "a"),
            ("a", "a"), ("a", "nope", "b"), ("nope",), ("nope", "nope2"), ("b", "a", "a"))],
        ("SINTERCARD", "1", "a"), ("SINTERCARD", "2", "a", "b"), ("SINTERCARD", "3", "a", "b", "c"),
        ("SINTERCARD", "2", "a", "nope"), ("SINTERCARD", "1", "nope"),
        ("SINTERCARD", "2", "a", "a", "LIMIT", "0"), ("SINTERCARD", "2", "a", "a", "LIMIT", "2"),
        ("SINTERCARD", "2", "a", "a", "limit", "10"), ("SINTERCARD", "1", "a", "LIMIT", "1", "LIMIT", "3"),
    ])


def test_stores(targets):
    compare(targets, [
        ("SADD", "a", "1", "2", "3", "x"), ("SADD", "b", "2", "3", "4", "y"),
        ("SINTERSTORE", "d", "a", "b"), (("SMEMBERS", "d"), S),
        ("SUNIONSTORE", "d", "a", "b"), (("SMEMBERS", "d"), S),
        ("SDIFFSTORE", "d", "a", "b"), (("SMEMBERS", "d"), S),
        ("SDIFFSTORE", "d", "a", "a"), ("EXISTS", "d"), ("SDIFFSTORE", "d", "a", "a"),
        ("SINTERSTORE", "d", "a", "nope"), ("SUNIONSTORE", "d", "nope"), ("EXISTS", "d"),
        ("SET", "str", "v"), ("EXPIRE", "str", "100"), ("SINTERSTORE", "str", "a", "a"),
        ("TYPE", "str"), ("TTL", "str"), ("SET", "str", "v"), ("SDIFFSTORE", "str", "nope"),
        ("EXISTS", "str"), ("SUNIONSTORE", "a", "a", "b"), (("SMEMBERS", "a"), S),
        ("SINTERSTORE", "b", "b", "a"), (("SMEMBERS", "b"), S),
        ("SDIFFSTORE", "a", "a", "b"), (("SMEMBERS", "a"), S), ("SINTERSTORE", "b", "b"),
    ])


def test_sintercard_arguments(targets):
    compare(targets, [
        ("SADD", "a", "1", "2", "3"), ("SADD", "b", "2", "3", "4"),
        ("SINTERCARD", "0", "a"), ("SINTERCARD", "-1", "a"), ("SINTERCARD", "x", "a"),
        ("SINTERCARD", "9223372036854775808", "a"), ("SINTERCARD", "3", "a", "b"),
        ("SINTERCARD", "1", "a", "LIMIT"), ("SINTERCARD", "1", "a", "LIMIT", "-1"),
        ("SINTERCARD", "1", "a", "LIMIT", "x"), ("SINTERCARD", "1", "a", "FOO", "1"),
        ("SINTERCARD", "1", "a", "b"), ("SINTERCARD", "2", "a", "b", "LIMIT", "1"),
        ("SINTERCARD", "2", "a", "b", "LIMIT", "9223372036854775807"),
        ("SINTERCARD", "1", "a", "LIMIT", "1", "FOO"),
    ])


def test_big_sets(targets):
    evens, threes = [str(i) for i in range(0, 3000, 2)], [str(i) for i in range(0, 3000, 3)]
    compare(targets, [
        ("SADD", "e", *evens), ("SADD", "t", *threes), ("SINTERCARD", "2", "e", "t"),
        ("SINTERCARD", "2", "e", "t", "LIMIT", "7"), ("SINTERSTORE", "d", "e", "t"),
        ("OBJECT", "ENCODING", "d"), ("SUNIONSTORE", "d", "e", "t"), ("SDIFFSTORE", "d", "e", "t"),
        (("SDIFF", "t", "e"), S), (("SINTER", "t", "e"), S), ("SCARD", "d"),
    ])


# -- SSCAN ----------------------------------------------------------------------------

def test_sscan_small(targets):
    compare(targets, [
        ("SADD", "i", "5", "3", "10", "1"), ("SADD", "h", "a", "b", "ab", "c"),
        ("SSCAN", "nope", "0"), ("SSCAN", "nope", "x"), ("SSCAN", "nope", "0", "COUNT", "x"),
        (("SSCAN", "i", "0"), sorted_scan), (("SSCAN", "i", "12345"), sorted_scan),
        (("SSCAN", "i", "0", "COUNT", "1"), sorted_scan),
        (("SSCAN", "i", "0", "MATCH", "1*"), sorted_scan), (("SSCAN", "h", "0"), sorted_scan),
        (("SSCAN", "h", "0", "MATCH", "a*", "COUNT", "100"), sorted_scan),
        ("SSCAN", "h", "0", "COUNT", "x"), ("SSCAN", "h", "0", "COUNT", "0"),
        ("SSCAN", "h", "0", "TYPE", "set"), ("SSCAN", "h", "0", "MATCH"),
        ("SSCAN", "h", "0", "FOO", "1"), ("SSCAN", "h", "-1x"),
    ])


def _full_scan(target, key, *options):
    cursor, seen = b"0", []
    while True:
        cursor, found = parse(target.call("SSCAN", key, cursor, *options))
        seen.extend(found)
        if cursor == b"0":
            return seen


@pytest.mark.parametrize("options", [(), ("COUNT", "7"), ("MATCH", "*7*", "COUNT", "50")])
def test_sscan_hashtable_full_iteration(targets, options):
    values = ["m%d" % i for i in range(700)]
    compare(targets, [("SADD", "s", *values), ("OBJECT", "ENCODING", "s")])
    scans = [_full_scan(t, "s", *options) for t in targets]
    assert set(scans[0]) == set(scans[1])
    assert len(scans[1]) == len(set(scans[1]))


# -- bookkeeping: dirty counter, hits and misses ------------------------------------------

def _redis_counters(client):
    info = client.call("INFO").decode()
    return tuple(int(re.search(name + r":(\d+)", info).group(1)) for name in
                 ("rdb_changes_since_last_save", "keyspace_hits", "keyspace_misses"))


def _engine_counters(target):
    ks = target.ctx.ks
    return ks.dirty, ks.hits, ks.misses


def test_dirty_hits_and_misses_match_redis(targets):
    redis_raw, engine = targets
    script = [
        ("SADD", "s", "a", "b", "a", "c"), ("SADD", "s", "a"), ("SREM", "s", "a", "x"),
        ("SREM", "nope", "a"), ("SREM", "s", "b", "c", "d"), ("SADD", "s", *"abcdefghijkl"),
        ("SPOP", "s"), ("SPOP", "s", "2"), ("SPOP", "s", "8"), ("SPOP", "s", "10"),
        ("SPOP", "s", "10"), ("SADD", "s", "1", "2", "3"), ("SPOP", "s", "10"),
        ("SADD", "s", "x"), ("SPOP", "s"), ("SPOP", "s"),
        ("SADD", "a", "1", "2", "3"), ("SADD", "b", "2", "3", "4"),
        ("SMOVE", "a", "b", "1"), ("SMOVE", "a", "b", "2"), ("SMOVE", "a", "b", "9"),
        ("SMOVE", "a", "a", "3"), ("SMOVE", "a", "c", "3"), ("SMOVE", "nope", "c", "3"),
        ("SINTERSTORE", "d", "a", "b"), ("SINTERSTORE", "d", "b", "c"),
        ("SINTERSTORE", "d", "b", "nope"), ("SINTERSTORE", "d", "b", "nope"),
        ("SUNIONSTORE", "d", "b", "c"), ("SUNIONSTORE", "d", "x", "y"),
        ("SUNIONSTORE", "d", "x", "y"), ("SDIFFSTORE", "d", "b", "c"),
        ("SDIFFSTORE", "d", "b", "b"), ("SDIFFSTORE", "d", "b", "b"),
        ("SINTER", "b", "nope", "c"), ("SUNION", "b", "nope"), ("SDIFF", "nope", "b"),
        ("SINTERCARD", "2", "b", "nope"), ("SISMEMBER", "b", "2"), ("SISMEMBER", "nope", "2"),
        ("SMISMEMBER", "b", "2", "3"), ("SMISMEMBER", "nope", "2"), ("SCARD", "b"),
        ("SMEMBERS", "b"), ("SMEMBERS", "nope"), ("SRANDMEMBER", "b"), ("SRANDMEMBER", "b", "2"),
        ("SRANDMEMBER", "nope", "2"), ("SRANDMEMBER", "b", "x"), ("SSCAN", "b", "0"),
        ("SSCAN", "b", "x"), ("SSCAN", "nope", "0"), ("SPOP", "b", "0"), ("SPOP", "nope", "0"),
        ("SET", "str", "v"), ("SINTER", "nope", "str"), ("SMOVE", "b", "str", "2"),
        ("SDIFFSTORE", "str", "nope"),
    ]
    redis_raw.call("CONFIG", "RESETSTAT")
    for command in script:
        before = _redis_counters(redis_raw), _engine_counters(engine)
        redis_raw.call(*command)
        engine.call(*command)
        after = _redis_counters(redis_raw), _engine_counters(engine)
        deltas = [tuple(x - y for x, y in zip(a, b)) for a, b in zip(after, before)]
        assert deltas[0] == deltas[1], "%r: redis %r, fastcache %r" % (command, *deltas)


# -- a random script ------------------------------------------------------------------------

def test_random_script(targets):
    rng = random.Random(7)
    keys = ["k1", "k2", "k3", "k4"]
    pool = ["1", "2", "3", "10", "-5", "a", "b", "c", "01", ""]

    def pick(n):
        return rng.sample(pool, n)

    script = []
    for _ in range(300):
        key, other = rng.choice(keys), rng.choice(keys)
        script.append(rng.choice([
            ("SADD", key, *pick(rng.randint(1, 4))), ("SREM", key, *pick(rng.randint(1, 3))),
            ("SMOVE", key, other, rng.choice(pool)), ("SCARD", key),
            ("SISMEMBER", key, rng.choice(pool)), ("SMISMEMBER", key, *pick(3)),
            (("SMEMBERS", key), S), (("SINTER", key, other), S), (("SUNION", key, other), S),
            (("SDIFF", key, other), S), ("SINTERSTORE", key, other, rng.choice(keys)),
            ("SUNIONSTORE", key, other, rng.choice(keys)),
            ("SDIFFSTORE", key, other, rng.choice(keys)), ("SINTERCARD", "2", key, other),
            ("OBJECT", "ENCODING", key), ("EXISTS", key),
        ]))
    compare(targets, script)
