"""The list commands against redis-server: identical reply bytes in RESP2 and
RESP3, error texts and argument-checking order included."""
import random

import fastcache.server.command_docs  # noqa: F401  (registers COMMAND for test_getkeys)
from tests.support.differential import EngineTarget, compare
from tests.support.normalize import sorted_scan

INT64_MIN, INT64_MAX = "-9223372036854775808", "9223372036854775807"


def test_push_and_length(targets):
    compare(targets, [
        ("LPUSH", "l", "a"), ("LPUSH", "l", "b", "c", "d"), ("RPUSH", "l", "e", "f"),
        ("LRANGE", "l", "0", "-1"), ("LLEN", "l"), ("LLEN", "nope"),
        ("LPUSHX", "nope", "a"), ("RPUSHX", "nope", "a", "b"), ("EXISTS", "nope"),
        ("LPUSHX", "l", "x", "y"), ("RPUSHX", "l", "z"), ("LRANGE", "l", "0", "-1"),
        ("RPUSH", "e", ""), ("LINDEX", "e", "0"), ("lpush", "l", "lower"), ("LLEN", "l"),
        ("LPUSH", "l"), ("RPUSH",), ("LPUSHX", "l"), ("RPUSHX", "l"), ("LLEN",), ("LLEN", "a", "b"),
    ])


def test_wrong_type(targets):
    compare(targets, [("SET", "s", "v")] + [
        (name, "s") + args for name, args in [
            ("LPUSH", ("a",)), ("RPUSH", ("a",)), ("LPUSHX", ("a",)), ("RPUSHX", ("a",)),
            ("LPOP", ()), ("RPOP", ()), ("LPOP", ("0",)), ("RPOP", ("2",)), ("LLEN", ()),
            ("LRANGE", ("0", "-1")), ("LINDEX", ("0",)), ("LINDEX", ("x",)), ("LSET", ("0", "v")),
            ("LSET", ("x", "v")), ("LINSERT", ("BEFORE", "a", "b")), ("LREM", ("0", "a")),
            ("LTRIM", ("0", "1")), ("LPOS", ("a",)), ("LPOS", ("a", "COUNT", "0")),
            ("LMOVE", ("x", "LEFT", "RIGHT")), ("RPOPLPUSH", ("x",)),
        ]
    ] + [
        ("RPUSH", "l", "a"), ("LMOVE", "l", "s", "LEFT", "LEFT"), ("RPOPLPUSH", "l", "s"),
        ("LRANGE", "l", "0", "-1"), ("LMOVE", "nope", "s", "LEFT", "LEFT"),
        ("LMPOP", "2", "nope", "s", "LEFT"), ("LMPOP", "2", "l", "s", "LEFT"), ("GET", "s"),
        ("LINSERT", "s", "middle", "a", "b"), ("LRANGE", "s", "x", "0"), ("LTRIM", "s", "0", "x"),
        ("LREM", "s", "x", "a"), ("LPOP", "s", "x"), ("LPOS", "s", "a", "RANK", "0"),
    ])


def test_pop_nulls_and_counts(targets):
    compare(targets, [
        ("LPOP", "nope"), ("RPOP", "nope"), ("LPOP", "nope", "0"), ("LPOP", "nope", "3"),
        ("RPOP", "nope", "1"), ("RPUSH", "l", "a", "b", "c", "d", "e"),
        ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "l", "0"), ("RPOP", "l", "0"),
        ("LPOP", "l", "1"), ("RPUSH", "l", "f", "g"), ("RPOP", "l", "2"), ("LLEN", "l"),
        ("LPOP", "l", "10"), ("EXISTS", "l"), ("RPUSH", "l", "a", "b", "c"), ("RPOP", "l", "5"),
        ("EXISTS", "l"), ("RPUSH", "l", "x"), ("LPOP", "l"), ("EXISTS", "l"),
        ("LPOP", "l", "-1"), ("LPOP", "l", "x"), ("LPOP", "l", "1.5"), ("LPOP", "l", INT64_MAX),
        ("RPOP", "l", "9223372036854775808"), ("LPOP", "l", "1", "2"), ("RPOP", "l", "1", "2"),
        ("LPOP",), ("rpop", "a", "b", "c"),
    ])


def test_lrange_and_lindex(targets):
    values = [str(i) for i in range(9)]
    bounds = ["0", "1", "4", "8", "9", "100", "-1", "-2", "-9", "-10", "-100", INT64_MAX, INT64_MIN]
    script = [("RPUSH", "l", *values)]
    script += [("LRANGE", "l", a, b) for a in bounds for b in bounds]
    script += [("LINDEX", "l", i) for i in bounds]
    script += [("LRANGE", "nope", "0", "-1"), ("LINDEX", "nope", "0"), ("LINDEX", "nope", "x"),
               ("LRANGE", "l", "x", "1"), ("LRANGE", "l", "1", "x"), ("LRANGE", "nope", "x", "1"),
               ("LRANGE", "l", "01", "1"), ("LRANGE", "l", "+1", "1"), ("LRANGE", "l", " 1", "1"),
               ("LINDEX", "l", "-0"), ("LINDEX", "l", "9223372036854775808"),
               ("LRANGE", "l", "0"), ("LINDEX", "l"), ("LINDEX", "l", "0", "1")]
    compare(targets, script)


def test_lset_and_linsert(targets):
    compare(targets, [
        ("LSET", "nope", "0", "x"), ("LSET", "nope", "x", "x"), ("RPUSH", "l", "a", "b", "c"),
        ("LSET", "l", "0", "A"), ("LSET", "l", "-1", "C"), ("LSET", "l", "3", "x"),
        ("LSET", "l", "-4", "x"), ("LSET", "l", "x", "y"), ("LSET", "l", INT64_MIN, "y"),
        ("LRANGE", "l", "0", "-1"),
        ("LINSERT", "l", "BEFORE", "A", "0"), ("LINSERT", "l", "after", "C", "9"),
        ("LINSERT", "l", "After", "b", "b2"), ("LINSERT", "l", "before", "nope", "x"),
        ("LINSERT", "l", "over", "b", "x"), ("LINSERT", "nope", "before", "b", "x"),
        ("LINSERT", "nope", "over", "b", "x"), ("EXISTS", "nope"), ("LRANGE", "l", "0", "-1"),
        ("RPUSH", "d", "x", "y", "x"), ("LINSERT", "d", "AFTER", "x", "z"), ("LRANGE", "d", "0", "-1"),
        ("LSET", "l", "0"), ("LINSERT", "l", "BEFORE", "a"),
    ])


def test_lrem(targets):
    base = ("RPUSH", "l", "a", "b", "a", "c", "a", "b", "a")
    script = []
    for count in ["0", "1", "2", "4", "5", "-1", "-2", "-4", "-9", INT64_MIN, INT64_MAX]:
        for element in ["a", "b", "zz"]:
            script += [("DEL", "l"), base, ("LREM", "l", count, element), ("LRANGE", "l", "0", "-1")]
    compare(targets, script + [
        ("RPUSH", "x", "a", "a"), ("LREM", "x", "0", "a"), ("EXISTS", "x"),
        ("LREM", "nope", "0", "a"), ("LREM", "nope", "x", "a"), ("LREM", "l", "x", "a"),
        ("LREM", "l", "1"),
    ])


def test_ltrim(targets):
    bounds = ["0", "1", "3", "5", "6", "-1", "-3", "-6", "-7", INT64_MAX, INT64_MIN]
    script = []
    for a in bounds:
        for b in bounds:
            script += [("DEL", "l"), ("RPUSH", "l", "a", "b", "c", "d", "e", "f"),
                       ("LTRIM", "l", a, b), ("LRANGE", "l", "0", "-1"), ("EXISTS", "l")]
    compare(targets, script + [
        ("LTRIM", "nope", "0", "1"), ("LTRIM", "nope", "x", "1"), ("LTRIM", "l", "0", "x"),
        ("LTRIM", "l", "0"),
    ])


def test_lpos(targets):
    options = [(), ("RANK", "1"), ("RANK", "2"), ("RANK", "-1"), ("RANK", "-3"), ("RANK", "9"),
               ("COUNT", "0"), ("COUNT", "2"), ("COUNT", "9"), ("MAXLEN", "3"), ("MAXLEN", "0"),
               ("RANK", "-2", "COUNT", "2"), ("RANK", "2", "COUNT", "0", "MAXLEN", "6"),
               ("RANK", "-1", "MAXLEN", "2"), ("COUNT", "1", "rank", "3", "count", "0"),
               ("RANK", INT64_MIN), ("RANK", INT64_MIN, "COUNT", "1"),
               ("RANK", INT64_MIN, "COUNT", "2", "MAXLEN", "4"), ("RANK", INT64_MAX, "COUNT", "1"),
               ("RANK", "-" + INT64_MAX, "COUNT", "1")]
    script = [("RPUSH", "l", "a", "b", "a", "c", "a", "b", "a")]
    for element in ("a", "b", "c", "zz"):
        script += [("LPOS", "l", element, *opts) for opts in options]
    compare(targets, script + [
        ("LPOS", "nope", "a"), ("LPOS", "nope", "a", "COUNT", "1"), ("LPOS", "nope", "a", "RANK", "0"),
        ("LPOS", "l", "a", "RANK", "0"), ("LPOS", "l", "a", "RANK", "x"), ("LPOS", "l", "a", "COUNT", "-1"),
        ("LPOS", "l", "a", "COUNT", "x"), ("LPOS", "l", "a", "MAXLEN", "-1"),
        ("LPOS", "l", "a", "MAXLEN", "x"), ("LPOS", "l", "a", "RANK"), ("LPOS", "l", "a", "COUNT"),
        ("LPOS", "l", "a", "FOO", "1"), ("LPOS", "l", "a", "RANK", "1", "FOO"),
        ("LPOS", "l", "a", "RANK", "0", "COUNT", "-1"), ("LPOS", "l", "a", "COUNT", "-1", "RANK", "0"),
        ("LPOS", "l"),
    ])


def test_lmove_and_rpoplpush(targets):
    script = []
    for src in ("LEFT", "RIGHT"):
        for dst in ("left", "right"):
            script += [("DEL", "a", "b"), ("RPUSH", "a", "1", "2", "3"), ("RPUSH", "b", "x"),
                       ("LMOVE", "a", "b", src, dst), ("LMOVE", "a", "fresh", src, dst),
                       ("LMOVE", "a", "a", src, dst), ("LRANGE", "a", "0", "-1"),
                       ("LRANGE", "b", "0", "-1"), ("LRANGE", "fresh", "0", "-1"), ("DEL", "fresh")]
    compare(targets, script + [
        ("DEL", "a", "b"), ("RPUSH", "a", "only"), ("LMOVE", "a", "a", "LEFT", "RIGHT"),
        ("LRANGE", "a", "0", "-1"), ("LMOVE", "a", "b", "LEFT", "RIGHT"), ("EXISTS", "a"),
        ("LMOVE", "nope", "b", "LEFT", "LEFT"), ("LMOVE", "b", "c", "UP", "LEFT"),
        ("LMOVE", "b", "c", "LEFT", "DOWN"), ("LMOVE", "nope", "c", "UP", "LEFT"),
        ("RPUSH", "r", "1", "2", "3"), ("RPOPLPUSH", "r", "r"), ("RPOPLPUSH", "r", "q"),
        ("LRANGE", "r", "0", "-1"), ("LRANGE", "q", "0", "-1"), ("RPOPLPUSH", "nope", "q"),
        ("RPOPLPUSH", "r", "q"), ("RPOPLPUSH", "r", "q"), ("EXISTS", "r"), ("LRANGE", "q", "0", "-1"),
        ("LMOVE", "a", "b", "LEFT"), ("RPOPLPUSH", "a"),
    ])


def test_lmpop(targets):
    compare(targets, [
        ("LMPOP", "1", "nope", "LEFT"), ("LMPOP", "2", "nope", "nope2", "RIGHT", "COUNT", "3"),
        ("RPUSH", "b", "1", "2", "3", "4"), ("RPUSH", "c", "x"),
        ("LMPOP", "3", "a", "b", "c", "LEFT"), ("LMPOP", "3", "a", "b", "c", "right", "count", "2"),
        ("LMPOP", "2", "b", "c", "LEFT", "COUNT", "10"), ("EXISTS", "b"),
        ("LMPOP", "2", "b", "c", "RIGHT", "COUNT", "10"), ("EXISTS", "c"),
        ("RPUSH", "b", "1"), ("LMPOP", "0", "b", "LEFT"), ("LMPOP", "-1", "b", "LEFT"),
        ("LMPOP", "x", "b", "LEFT"), ("LMPOP", "1x", "b", "LEFT"), ("LMPOP", INT64_MAX, "b", "LEFT"),
        ("LMPOP", "9223372036854775808", "b", "LEFT"), ("LMPOP", "2", "b", "LEFT"),
        ("LMPOP", "1", "b", "MIDDLE"), ("LMPOP", "1", "b", "LEFT", "COUNT"),
        ("LMPOP", "1", "b", "LEFT", "COUNT", "0"), ("LMPOP", "1", "b", "LEFT", "COUNT", "-1"),
        ("LMPOP", "1", "b", "LEFT", "COUNT", "x"), ("LMPOP", "1", "b", "LEFT", "COUNT", "1", "COUNT", "1"),
        ("LMPOP", "1", "b", "LEFT", "FOO"), ("LMPOP", "1", "b", "LEFT", "COUNT", "1", "FOO"),
        ("LLEN", "b"), ("LMPOP", "1", "b"), ("LMPOP", "1"),
    ])


def test_getkeys(targets):
    compare(targets, [
        ("COMMAND", "GETKEYS", "LMPOP", "2", "a", "b", "LEFT"),
        ("COMMAND", "GETKEYS", "LMPOP", "1", "a", "LEFT", "COUNT", "2"),
        ("COMMAND", "GETKEYS", "LMPOP", "2", "a", "LEFT"),
        ("COMMAND", "GETKEYS", "LMPOP", "3", "a", "LEFT"),
        ("COMMAND", "GETKEYS", "LMPOP", "0", "a", "LEFT"),
        ("COMMAND", "GETKEYS", "LMPOP", "1x", "a", "LEFT"),
        ("COMMAND", "GETKEYS", "LMPOP", " +1", "a", "LEFT"),
        ("COMMAND", "GETKEYS", "LMPOP", "x", "a", "LEFT"),
        ("COMMAND", "GETKEYS", "LMOVE", "a", "b", "LEFT", "RIGHT"),
        ("COMMAND", "GETKEYS", "RPOPLPUSH", "a", "b"),
        ("COMMAND", "GETKEYS", "LPUSH", "a", "1", "2"),
    ])


def test_generic_commands_see_lists(targets):
    many = [str(i) for i in range(300)]
    compare(targets, [
        ("RPUSH", "l", "a", "b"), ("TYPE", "l"), ("OBJECT", "ENCODING", "l"),
        ("RPUSH", "big", *many), ("OBJECT", "ENCODING", "big"), ("RPUSH", "long", "x" * 100),
        ("OBJECT", "ENCODING", "long"), ("COPY", "l", "c"), ("RPUSH", "c", "more"),
        ("LRANGE", "l", "0", "-1"), ("LRANGE", "c", "0", "-1"), ("TYPE", "c"),
        (("SCAN", "0", "TYPE", "list", "COUNT", "100"), sorted_scan), ("EXPIRE", "l", "100"),
        ("RPUSH", "l", "c"), ("TTL", "l"), ("LPOP", "l", "3"), ("EXISTS", "l"), ("TTL", "l"),
        ("RENAME", "c", "d"), ("LRANGE", "d", "0", "-1"),
    ])


def _dirty(client):
    info = client.call("INFO", "persistence")
    start = info.index(b"rdb_changes_since_last_save:") + len(b"rdb_changes_since_last_save:")
    return int(info[start:info.index(b"\r\n", start)])


def test_changes_are_counted_like_redis(redis_raw):
    """Every command's contribution to the unsaved-changes counter."""
    engine = EngineTarget()
    script = [
        ("RPUSH", "l", "a", "b", "c", "a"), ("LPUSH", "l", "x", "y"), ("LPUSHX", "l", "z"),
        ("RPUSHX", "nope", "z"), ("LPOP", "l"), ("RPOP", "l", "2"), ("LPOP", "l", "0"),
        ("LSET", "l", "0", "q"), ("LINSERT", "l", "BEFORE", "q", "p"), ("LINSERT", "l", "AFTER", "no", "p"),
        ("RPUSH", "l", "a", "b", "a"), ("LREM", "l", "0", "a"), ("LREM", "l", "0", "zz"),
        ("LTRIM", "l", "1", "-2"), ("LTRIM", "l", "0", "-1"), ("LMOVE", "l", "m", "LEFT", "RIGHT"),
        ("RPOPLPUSH", "m", "m"), ("RPOPLPUSH", "m", "n"), ("LMPOP", "2", "x", "l", "LEFT", "COUNT", "9"),
        ("RPUSH", "t", "1", "2", "3"), ("LTRIM", "t", "5", "9"), ("RPUSH", "u", "1", "2"),
        ("LREM", "u", "0", "1"), ("LREM", "u", "0", "2"),
    ]
    for args in script:
        before = _dirty(redis_raw), engine.ctx.ks.dirty
        compare([redis_raw, engine], [args])
        assert _dirty(redis_raw) - before[0] == engine.ctx.ks.dirty - before[1], args


def test_random_scripts(targets):
    """Seeded random command mixes over a few short keys and a small alphabet."""
    rng = random.Random(7)
    keys = ["k1", "k2", "k3"]
    elements = ["a", "b", "c", "dd", ""]
    small = [str(i) for i in range(-5, 6)]

    def args():
        key, other = rng.choice(keys), rng.choice(keys)
        side = lambda: rng.choice(["LEFT", "RIGHT"])  # noqa: E731
        pushed = [rng.choice(elements) for _ in range(rng.randint(1, 4))]
        return rng.choice([
            ("LPUSH", key, *pushed), ("RPUSH", key, *pushed), ("LPUSHX", key, *pushed),
            ("RPUSHX", key, *pushed), ("LPOP", key), ("RPOP", key),
            ("LPOP", key, rng.choice(small[5:])), ("RPOP", key, rng.choice(small[5:])),
            ("LRANGE", key, rng.choice(small), rng.choice(small)), ("LINDEX", key, rng.choice(small)),
            ("LSET", key, rng.choice(small), rng.choice(elements)),
            ("LINSERT", key, rng.choice(["BEFORE", "AFTER"]), rng.choice(elements), rng.choice(elements)),
            ("LREM", key, rng.choice(small), rng.choice(elements)),
            ("LTRIM", key, rng.choice(small), rng.choice(small)), ("LLEN", key),
            ("LPOS", key, rng.choice(elements), "RANK", rng.choice(["1", "2", "-1", "-2"]),
             "COUNT", rng.choice(small[5:]), "MAXLEN", rng.choice(small[5:])),
            ("LMOVE", key, other, side(), side()), ("RPOPLPUSH", key, other),
            ("LMPOP", "2", key, other, side(), "COUNT", rng.choice(small[6:])),
        ])

    script = [args() for _ in range(600)]
    script += [("LRANGE", key, "0", "-1") for key in keys]
    compare(targets, script)
