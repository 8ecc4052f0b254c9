"""The sorted-set commands against redis-server: identical reply bytes in
RESP2 and RESP3, error texts included. Random and hash-ordered replies are
normalised before comparing."""
import pytest

from fastcache.engine.registry import lookup
from tests.support.differential import EngineTarget, compare
from tests.support.normalize import sorted_pairs, sorted_scan, sorted_scan_pairs, split


def shape(raw):
    """Only the reply's type and length (for random replies)."""
    if raw[:1] not in b"*~":
        return raw[:1]
    header, items = split(raw)
    return header + b"".join(shape(i) for i in items)


def make(key, n, fmt="m%d", score=lambda i: i):
    return ("ZADD", key) + tuple(x for i in range(n) for x in (str(score(i)), fmt % i))


S = sorted_pairs


def test_zadd_options_and_errors(targets):
    compare(targets, [
        ("ZADD", "z", "1", "a", "2", "b"), ("ZADD", "z", "1", "a", "3", "c"),
        ("ZADD", "z", "NX", "10", "a", "4", "d"), ("ZADD", "z", "XX", "10", "a", "5", "e"),
        ("ZADD", "z", "XX", "CH", "11", "a", "5", "e"), ("ZADD", "z", "CH", "11", "a", "3", "b"),
        ("ZADD", "z", "GT", "CH", "1", "a", "20", "b", "1", "new"),
        ("ZADD", "z", "LT", "CH", "100", "a", "0", "b"), ("ZADD", "z", "XX", "GT", "50", "a"),
        ("ZADD", "z", "XX", "LT", "CH", "1", "a", "1", "zz"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZADD", "z", "INCR", "5", "a"), ("ZADD", "z", "INCR", "NX", "5", "a"),
        ("ZADD", "z", "INCR", "XX", "5", "nope"), ("ZADD", "z", "INCR", "GT", "-1", "a"),
        ("ZADD", "z", "INCR", "LT", "-1", "a"), ("ZADD", "z", "INCR", "NX", "7", "fresh"),
        ("ZADD", "z", "XX", "NX", "1", "a"), ("ZADD", "z", "GT", "LT", "1", "a"),
        ("ZADD", "z", "NX", "GT", "1", "a"), ("ZADD", "z", "NX", "LT", "1", "a"),
        ("ZADD", "z", "INCR", "1", "a", "2", "b"), ("ZADD", "z", "1"), ("ZADD", "z", "NX"),
        ("ZADD", "z", "nx", "1"), ("ZADD", "z", "1", "a", "2"), ("ZADD", "z", "x", "a"),
        ("ZADD", "z", "1", "a", "x", "b"), ("ZADD", "z", "nan", "a"), ("ZADD", "z"),
        ("ZADD", "z", "XX", "NX", "x", "a"), ("ZADD", "z", "INCR", "x", "a", "1", "b"),
        ("ZADD", "nokey", "XX", "1", "a"), ("ZADD", "nokey", "XX", "INCR", "1", "a"),
        ("EXISTS", "nokey"), ("SET", "str", "v"), ("ZADD", "str", "1", "a"),
        ("ZADD", "str", "x", "a"), ("ZADD", "str", "XX", "NX", "1", "a"),
        ("ZCARD", "z"), ("zadd", "z", "ch", "xx", "gt", "99", "c"), ("ZSCORE", "z", "c"),
    ])


def test_score_parsing_and_formatting(targets):
    compare(targets, [
        ("ZADD", "f", "0.1", "a", "1e17", "b", "123456789012345678", "c", "1e-300", "d",
         "5e-324", "e", "1.7976931348623157e308", "f", "-inf", "g", "+inf", "h", "0x10", "i",
         "-0x1.8p1", "j", ".5", "k", "5.", "l", "1E3", "m", "-Infinity", "n", "3.0", "o",
         "1e16", "p", "-0", "q", "0e-400", "r", "4611686018427387904", "s",
         "4611686018427388928", "t", "1e19", "u", "2.5e-5", "v"),
        ("ZRANGE", "f", "0", "-1", "WITHSCORES"), ("ZSCAN", "f", "0"),
        ("ZSCORE", "f", "q"), ("ZMSCORE", "f", "a", "q", "nope", "g"),
        ("ZADD", "f", "1e309", "x"), ("ZADD", "f", "1e-400", "x"), ("ZADD", "f", " 1", "x"),
        ("ZADD", "f", "1 ", "x"), ("ZADD", "f", "", "x"), ("ZADD", "f", "1_0", "x"),
        ("ZADD", "f", "1.5e", "x"), ("ZADD", "f", "0x", "x"), ("ZADD", "f", "infinit", "x"),
        ("ZADD", "f", "-nan", "x"), ("ZADD", "f", "0x1p2000", "x"), ("ZADD", "f", "1\x002", "x"),
        ("ZINCRBY", "f", "1e309", "a"), ("ZINCRBY", "f", "x", "a"),
        ("ZINCRBY", "f", "inf", "a"), ("ZINCRBY", "f", "-inf", "h"), ("ZSCORE", "f", "h"),
        ("ZADD", "f", "INCR", "-inf", "h"), ("ZADD", "f", "INCR", "inf", "g"),
        ("ZINCRBY", "neg", "-0", "m"), ("ZSCORE", "neg", "m"),
    ])


def test_negative_zero_survives_only_in_skiplists(targets):
    compare(targets, [
        make("big", 130), ("OBJECT", "ENCODING", "big"),
        ("ZADD", "big", "-0", "neg"), ("ZSCORE", "big", "neg"), ("ZINCRBY", "big", "-0", "nz"),
        ("ZSCORE", "big", "nz"), ("ZRANGE", "big", "0", "2", "WITHSCORES"),
        (("ZSCAN", "big", "0", "MATCH", "n*", "COUNT", "1000"), sorted_scan_pairs),
        ("ZADD", "lp", "0", "a", "1", "b"), ("ZUNION", "1", "lp", "WEIGHTS", "-1", "WITHSCORES"),
        ("ZUNIONSTORE", "dst", "1", "lp", "WEIGHTS", "-1"), ("ZSCORE", "dst", "a"),
        ("ZRANGESTORE", "dst2", "big", "0", "2"), ("ZSCORE", "dst2", "neg"),
        ("ZPOPMIN", "big", "2"), ("ZMPOP", "1", "big", "MIN", "COUNT", "1"),
    ])


def test_zincrby(targets):
    compare(targets, [
        ("ZINCRBY", "z", "1.5", "a"), ("ZINCRBY", "z", "-3", "a"), ("ZINCRBY", "z", "0", "a"),
        ("ZINCRBY", "z", "nx", "a"), ("ZINCRBY", "z", "incr", "a"), ("ZINCRBY", "z", "1"),
        ("ZINCRBY", "z", "1", "a", "b"), ("SET", "s", "x"), ("ZINCRBY", "s", "1", "a"),
        ("ZINCRBY", "s", "x", "a"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
    ])


def test_zrem_zcard_zscore_zrank(targets):
    compare(targets, [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "3", "d"),
        ("ZREM", "z", "a", "x", "a"), ("ZCARD", "z"), ("ZCARD", "nokey"),
        ("ZSCORE", "z", "b"), ("ZSCORE", "z", "x"), ("ZSCORE", "nokey", "x"),
        ("ZMSCORE", "z", "b", "x", "d"), ("ZMSCORE", "nokey", "a", "b"),
        ("ZRANK", "z", "c"), ("ZRANK", "z", "d"), ("ZRANK", "z", "x"), ("ZRANK", "nokey", "x"),
        ("ZREVRANK", "z", "b"), ("ZREVRANK", "z", "d"), ("ZREVRANK", "z", "x"),
        ("ZREM", "z", "b", "c", "d", "e"), ("EXISTS", "z"), ("ZREM", "nokey", "a"),
        ("SET", "s", "v"), ("ZREM", "s", "a"), ("ZCARD", "s"), ("ZSCORE", "s", "a"),
        ("ZMSCORE", "s", "a"), ("ZRANK", "s", "a"), ("ZREVRANK", "s", "a"),
        ("ZREM", "z"), ("ZSCORE", "z"), ("ZRANK", "z", "a", "b"), ("ZMSCORE", "z"),
    ])


def test_zcount_zlexcount(targets):
    compare(targets, [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"),
        ("ZCOUNT", "z", "-inf", "+inf"), ("ZCOUNT", "z", "(1", "3"), ("ZCOUNT", "z", "2", "(4"),
        ("ZCOUNT", "z", "(2", "(2"), ("ZCOUNT", "z", "3", "2"), ("ZCOUNT", "z", "2", "2"),
        ("ZCOUNT", "z", "", "1"), ("ZCOUNT", "z", "(", "2"), ("ZCOUNT", "z", " 1", "0x3"),
        ("ZCOUNT", "z", "1 ", "3"), ("ZCOUNT", "z", "((1", "3"), ("ZCOUNT", "z", "[1", "3"),
        ("ZCOUNT", "z", "nan", "3"), ("ZCOUNT", "z", "(nan", "3"), ("ZCOUNT", "z", "1e400", "inf"),
        ("ZCOUNT", "z", "-1e400", "1e-400"), ("ZCOUNT", "z", "1\x00x", "3"),
        ("ZCOUNT", "nokey", "0", "1"), ("ZCOUNT", "nokey", "x", "1"),
        ("ZCOUNT", "z", "(inf", "inf"), ("ZCOUNT", "z", "-inf", "(-inf"),
        ("ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d"),
        ("ZLEXCOUNT", "l", "-", "+"), ("ZLEXCOUNT", "l", "[b", "(d"), ("ZLEXCOUNT", "l", "(a", "[c"),
        ("ZLEXCOUNT", "l", "+", "-"), ("ZLEXCOUNT", "l", "-", "-"), ("ZLEXCOUNT", "l", "+", "+"),
        ("ZLEXCOUNT", "l", "[c", "[b"), ("ZLEXCOUNT", "l", "(b", "(b"), ("ZLEXCOUNT", "l", "[b", "[b"),
        ("ZLEXCOUNT", "l", "a", "c"), ("ZLEXCOUNT", "l", "[a", "+x"), ("ZLEXCOUNT", "l", "-x", "+"),
        ("ZLEXCOUNT", "l", "", "+"), ("ZLEXCOUNT", "l", "[", "+"), ("ZLEXCOUNT", "l", "(", "+"),
        ("ZLEXCOUNT", "nokey", "-", "+"), ("ZLEXCOUNT", "nokey", "x", "+"),
        ("SET", "s", "v"), ("ZCOUNT", "s", "0", "1"), ("ZCOUNT", "s", "x", "1"),
        ("ZLEXCOUNT", "s", "-", "+"), ("ZLEXCOUNT", "s", "x", "+"),
        # mixed scores: Redis walks the listpack from one end
        ("ZADD", "m", "1", "c", "2", "a", "3", "b"), ("ZLEXCOUNT", "m", "[a", "[b"),
        ("ZLEXCOUNT", "m", "[c", "+"), ("ZRANGEBYLEX", "m", "[a", "[b"),
        ("ZREVRANGEBYLEX", "m", "[b", "[a"), ("ZRANGEBYLEX", "m", "-", "[b"),
    ])


def test_zrange_by_rank(targets):
    compare(targets, [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"),
        ("ZRANGE", "z", "0", "-1"), ("ZRANGE", "z", "1", "3", "WITHSCORES"),
        ("ZRANGE", "z", "-2", "-1", "withscores", "WITHSCORES"), ("ZRANGE", "z", "3", "1"),
        ("ZRANGE", "z", "-100", "100"), ("ZRANGE", "z", "5", "10"), ("ZRANGE", "z", "0", "-6"),
        ("ZRANGE", "z", "0", "-1", "REV"), ("ZRANGE", "z", "1", "2", "REV", "WITHSCORES"),
        ("ZREVRANGE", "z", "0", "1"), ("ZREVRANGE", "z", "-3", "-2", "WITHSCORES"),
        ("ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"), ("ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"),
        ("ZREVRANGE", "z", "0", "1", "LIMIT", "0", "1"), ("ZREVRANGE", "z", "0", "1", "REV"),
        ("ZRANGE", "z", "x", "1"), ("ZRANGE", "z", "0", "1.5"), ("ZRANGE", "z", "0", "1", "foo"),
        ("ZRANGE", "z", "0", "1", "REV", "REV"), ("ZRANGE", "z", "0", "1", "LIMIT", "0"),
        ("ZRANGE", "z", "0", "1", "LIMIT", "x", "1"), ("ZRANGE", "nokey", "0", "-1"),
        ("ZRANGE", "nokey", "x", "1"), ("SET", "s", "v"), ("ZRANGE", "s", "0", "1"),
        ("ZRANGE", "s", "x", "1"), ("ZRANGE", "z", "0"),
    ])


def test_zrange_by_score(targets):
    compare(targets, [
        ("ZADD", "z", "1", "a", "2", "b", "2", "bb", "3", "c", "4", "d", "5", "e"),
        ("ZRANGE", "z", "2", "4", "BYSCORE"), ("ZRANGE", "z", "(2", "+inf", "BYSCORE", "WITHSCORES"),
        ("ZRANGE", "z", "4", "2", "BYSCORE", "REV"), ("ZRANGE", "z", "+inf", "(2", "REV", "BYSCORE"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "-1", "WITHSCORES"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "0", "0"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "6", "2"),
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "5", "2"),
        ("ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "2", "3"),
        ("ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "-5", "WITHSCORES"),
        ("ZRANGE", "z", "3", "(3", "BYSCORE"), ("ZRANGE", "z", "x", "3", "BYSCORE"),
        ("ZRANGE", "z", "1", "3", "BYSCORE", "BYSCORE"), ("ZRANGE", "z", "1", "3", "BYSCORE", "BYLEX"),
        ("ZRANGEBYSCORE", "z", "2", "3"), ("ZRANGEBYSCORE", "z", "2", "3", "WITHSCORES", "LIMIT", "1", "5"),
        ("ZRANGEBYSCORE", "z", "2", "3", "REV"), ("ZRANGEBYSCORE", "z", "2", "3", "BYSCORE"),
        ("ZRANGEBYSCORE", "z", "2", "x"), ("ZRANGEBYSCORE", "z", "2", "3", "LIMIT", "1"),
        ("ZREVRANGEBYSCORE", "z", "3", "2"), ("ZREVRANGEBYSCORE", "z", "(5", "-inf", "WITHSCORES"),
        ("ZREVRANGEBYSCORE", "z", "+inf", "-inf", "LIMIT", "1", "2"),
        ("ZREVRANGEBYSCORE", "z", "2", "3"), ("ZRANGEBYSCORE", "nokey", "0", "1"),
        ("ZRANGEBYSCORE", "nokey", "x", "1"), ("SET", "s", "v"), ("ZRANGEBYSCORE", "s", "0", "1"),
        ("ZRANGEBYSCORE", "s", "x", "1"), ("ZRANGE", "s", "0", "1", "BYSCORE", "LIMIT", "x", "1"),
    ])


def test_zrange_by_lex(targets):
    compare(targets, [
        ("ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "ee"),
        ("ZRANGE", "l", "[b", "[d", "BYLEX"), ("ZRANGE", "l", "(b", "+", "BYLEX"),
        ("ZRANGE", "l", "+", "-", "BYLEX", "REV"), ("ZRANGE", "l", "[d", "(a", "BYLEX", "REV"),
        ("ZRANGE", "l", "-", "+", "BYLEX", "LIMIT", "2", "2"),
        ("ZRANGE", "l", "+", "-", "BYLEX", "REV", "LIMIT", "1", "3"),
        ("ZRANGE", "l", "-", "+", "BYLEX", "WITHSCORES"), ("ZRANGE", "l", "a", "+", "BYLEX"),
        ("ZRANGEBYLEX", "l", "[e", "+"), ("ZRANGEBYLEX", "l", "-", "(c", "LIMIT", "1", "1"),
        ("ZRANGEBYLEX", "l", "-", "+", "WITHSCORES"), ("ZRANGEBYLEX", "l", "-", "+", "BYLEX"),
        ("ZREVRANGEBYLEX", "l", "+", "[c"), ("ZREVRANGEBYLEX", "l", "(e", "-", "LIMIT", "0", "2"),
        ("ZREVRANGEBYLEX", "l", "[a", "[c"), ("ZRANGEBYLEX", "nokey", "-", "+"),
        ("ZRANGEBYLEX", "nokey", "x", "+"), ("SET", "s", "v"), ("ZRANGEBYLEX", "s", "-", "+"),
        ("ZRANGEBYLEX", "s", "x", "+"),
    ])


def test_zrangestore(targets):
    compare(targets, [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"),
        ("ZRANGESTORE", "d", "z", "1", "2"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "d", "z", "(1", "+inf", "BYSCORE", "LIMIT", "1", "5"),
        ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "d", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "0", "2"),
        ("ZRANGE", "d", "0", "-1", "WITHSCORES"), ("ZRANGESTORE", "d", "z", "-", "[b", "BYLEX"),
        ("ZRANGE", "d", "0", "-1", "WITHSCORES"), ("ZRANGESTORE", "d", "z", "5", "10"),
        ("EXISTS", "d"), ("ZRANGESTORE", "d", "z", "0", "-1", "WITHSCORES"),
        ("SET", "s", "v"), ("ZRANGESTORE", "s", "z", "0", "0"), ("TYPE", "s"),
        ("ZRANGESTORE", "d", "s", "0", "0"), ("ZRANGESTORE", "d", "nokey", "0", "-1"),
        ("ZRANGESTORE", "d", "z", "x", "1"), ("ZRANGESTORE", "d", "z", "0"),
        ("SET", "ttl", "v", "EX", "100"), ("ZRANGESTORE", "ttl", "z", "0", "0"), ("TTL", "ttl"),
    ])


def test_zremrange(targets):
    compare(targets, [
        make("z", 10), ("ZREMRANGEBYRANK", "z", "0", "1"), ("ZREMRANGEBYRANK", "z", "-2", "-1"),
        ("ZREMRANGEBYRANK", "z", "5", "1"), ("ZREMRANGEBYRANK", "z", "100", "200"),
        ("ZRANGE", "z", "0", "-1"), ("ZREMRANGEBYSCORE", "z", "(2", "4"),
        ("ZREMRANGEBYSCORE", "z", "100", "200"), ("ZRANGE", "z", "0", "-1"),
        ("ZREMRANGEBYRANK", "z", "0", "-1"), ("EXISTS", "z"),
        ("ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d"),
        ("ZREMRANGEBYLEX", "l", "(a", "[c"), ("ZRANGE", "l", "0", "-1"),
        ("ZREMRANGEBYLEX", "l", "-", "+"), ("EXISTS", "l"),
        ("ZREMRANGEBYRANK", "nokey", "0", "1"), ("ZREMRANGEBYRANK", "nokey", "x", "1"),
        ("ZREMRANGEBYSCORE", "nokey", "x", "1"), ("ZREMRANGEBYLEX", "nokey", "x", "+"),
        ("SET", "s", "v"), ("ZREMRANGEBYRANK", "s", "0", "1"), ("ZREMRANGEBYRANK", "s", "x", "1"),
        ("ZREMRANGEBYSCORE", "s", "0", "1"), ("ZREMRANGEBYSCORE", "s", "x", "1"),
        ("ZREMRANGEBYLEX", "s", "-", "+"), ("ZREMRANGEBYLEX", "s", "x", "+"),
        ("ZREMRANGEBYLEX", "s", "-", "+", "x"),
    ])


def test_pops(targets):
    compare(targets, [
        make("z", 6), ("ZPOPMIN", "z"), ("ZPOPMAX", "z"), ("ZPOPMIN", "z", "2"),
        ("ZPOPMAX", "z", "1"), ("ZPOPMIN", "z", "0"), ("ZPOPMIN", "z", "10"), ("EXISTS", "z"),
        ("ZPOPMIN", "z"), ("ZPOPMAX", "z", "3"), ("ZPOPMIN", "z", "-1"), ("ZPOPMIN", "z", "x"),
        ("ZPOPMIN", "z", "1", "2"), ("SET", "s", "v"), ("ZPOPMIN", "s"), ("ZPOPMAX", "s", "0"),
        ("ZPOPMIN", "s", "x"), ("ZPOPMIN",),
    ])


def test_zmpop(targets):
    compare(targets, [
        make("a", 3), make("b", 4),
        ("ZMPOP", "2", "nokey", "a", "MIN"), ("ZMPOP", "2", "a", "b", "max", "COUNT", "10"),
        ("ZMPOP", "2", "a", "b", "MIN", "count", "2"), ("ZMPOP", "1", "a", "MIN"),
        ("ZMPOP", "3", "a", "b", "c", "MAX", "COUNT", "1"),
        ("ZMPOP", "0", "a", "MIN"), ("ZMPOP", "x", "a", "MIN"), ("ZMPOP", "-1", "a", "MIN"),
        ("ZMPOP", "2", "a", "MIN"), ("ZMPOP", "1", "a", "FOO"), ("ZMPOP", "1", "a", "MIN", "COUNT"),
        ("ZMPOP", "1", "a", "MIN", "COUNT", "0"), ("ZMPOP", "1", "a", "MIN", "COUNT", "x"),
        ("ZMPOP", "1", "a", "MIN", "COUNT", "1", "COUNT", "1"), ("ZMPOP", "1", "a", "MIN", "x"),
        ("SET", "s", "v"), ("ZMPOP", "2", "nokey", "s", "MIN"), ("ZMPOP", "2", "b", "s", "MIN"),
        ("ZMPOP", "1", "a"),
    ])


def test_setops(targets):
    compare(targets, [
        ("ZADD", "a", "1", "x", "2", "y", "3", "z"), ("ZADD", "b", "10", "y", "20", "z", "30", "w"),
        ("ZADD", "c", "0.1", "z", "0.2", "y"),
        ("ZUNION", "2", "a", "b"), ("ZUNION", "2", "a", "b", "WITHSCORES"),
        ("ZUNION", "3", "a", "b", "c", "WEIGHTS", "1", "2", "3", "WITHSCORES"),
        ("ZUNION", "2", "a", "b", "AGGREGATE", "MIN", "WITHSCORES"),
        ("ZUNION", "2", "a", "b", "aggregate", "max", "withscores"),
        ("ZINTER", "2", "a", "b", "WITHSCORES"), ("ZINTER", "3", "a", "b", "c", "WITHSCORES"),
        ("ZINTER", "3", "c", "b", "a", "WEIGHTS", "0.1", "0.2", "0.3", "WITHSCORES"),
        ("ZINTER", "2", "a", "nokey"), ("ZUNION", "2", "nokey", "nokey2"),
        ("ZDIFF", "2", "a", "b"), ("ZDIFF", "2", "a", "b", "WITHSCORES"), ("ZDIFF", "1", "a"),
        ("ZDIFF", "2", "a", "a"), ("ZDIFF", "2", "nokey", "a"), ("ZDIFF", "3", "b", "a", "c"),
        ("ZUNION", "2", "a", "b", "WEIGHTS", "1"), ("ZUNION", "2", "a", "b", "WEIGHTS", "1", "x"),
        ("ZUNION", "2", "a", "b", "AGGREGATE", "AVG"), ("ZUNION", "2", "a", "b", "AGGREGATE"),
        ("ZUNION", "2", "a", "b", "FOO"), ("ZDIFF", "2", "a", "b", "WEIGHTS", "1", "2"),
        ("ZDIFF", "2", "a", "b", "AGGREGATE", "SUM"), ("ZUNION", "0", "a"), ("ZUNION", "-1", "a"),
        ("ZUNION", "x", "a"), ("ZUNION", "3", "a", "b"), ("ZINTER", "0", "a"), ("ZDIFF", "0", "a"),
        ("SET", "s", "v"), ("ZUNION", "2", "a", "s"), ("ZUNION", "2", "a", "s", "WEIGHTS", "x"),
        ("ZINTER", "2", "s", "a"), ("ZDIFF", "2", "a", "s"),
        ("ZUNION", "2", "a", "b", "WEIGHTS", "1", "2", "WEIGHTS", "3", "4", "WITHSCORES"),
    ])


def test_setops_special_scores(targets):
    compare(targets, [
        ("ZADD", "p", "inf", "x", "-inf", "y", "1", "z"), ("ZADD", "q", "-inf", "x", "inf", "y"),
        ("ZUNION", "2", "p", "q", "WITHSCORES"), ("ZINTER", "2", "p", "q", "WITHSCORES"),
        ("ZUNION", "2", "p", "q", "WEIGHTS", "0", "1", "WITHSCORES"),
        ("ZINTER", "2", "p", "q", "WEIGHTS", "0", "0", "AGGREGATE", "MIN", "WITHSCORES"),
        ("ZINTER", "2", "q", "p", "WEIGHTS", "1", "0", "AGGREGATE", "MAX", "WITHSCORES"),
        ("ZUNION", "1", "p", "WEIGHTS", "-inf", "WITHSCORES"),
        ("ZADD", "f1", "0.1", "m"), ("ZADD", "f2", "0.2", "m", "1", "n"),
        ("ZADD", "f3", "0.3", "m", "1", "n", "2", "o"),
        ("ZUNION", "3", "f3", "f1", "f2", "WITHSCORES"), ("ZINTER", "3", "f3", "f2", "f1", "WITHSCORES"),
    ])


def test_store_setops(targets):
    compare(targets, [
        ("ZADD", "a", "1", "x", "2", "y", "3", "z"), ("ZADD", "b", "10", "y", "20", "z", "30", "w"),
        ("ZUNIONSTORE", "d", "2", "a", "b"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZINTERSTORE", "d", "2", "a", "b", "WEIGHTS", "2", "3", "AGGREGATE", "MAX"),
        ("ZRANGE", "d", "0", "-1", "WITHSCORES"), ("ZDIFFSTORE", "d", "2", "b", "a"),
        ("ZRANGE", "d", "0", "-1", "WITHSCORES"), ("ZINTERSTORE", "d", "2", "a", "nokey"),
        ("EXISTS", "d"), ("ZINTERSTORE", "d", "2", "a", "nokey"), ("ZUNIONSTORE", "a", "2", "a", "b"),
        ("ZRANGE", "a", "0", "-1", "WITHSCORES"), ("ZUNIONSTORE", "d", "1", "a", "WITHSCORES"),
        ("ZUNIONSTORE", "d", "0", "a"), ("ZINTERSTORE", "d", "0", "a"), ("ZDIFFSTORE", "d", "0", "a"),
        ("ZDIFFSTORE", "d", "2", "a"), ("ZDIFFSTORE", "d", "1", "a", "WEIGHTS", "1"),
        ("SET", "s", "v"), ("ZUNIONSTORE", "s", "1", "a"), ("TYPE", "s"),
        ("ZUNIONSTORE", "d", "1", "s"), ("ZUNIONSTORE", "d", "x", "a"),
        ("OBJECT", "ENCODING", "s"), make("big", 129), ("ZUNIONSTORE", "d", "1", "big"),
        ("OBJECT", "ENCODING", "d"), ("ZINTERSTORE", "d", "2", "big", "a"), ("OBJECT", "ENCODING", "d"),
    ])


def test_zintercard(targets):
    compare(targets, [
        ("ZADD", "a", "1", "x", "2", "y", "3", "z"), ("ZADD", "b", "10", "y", "20", "z", "30", "w"),
        ("ZINTERCARD", "2", "a", "b"), ("ZINTERCARD", "2", "a", "b", "LIMIT", "1"),
        ("ZINTERCARD", "2", "a", "b", "LIMIT", "0"), ("ZINTERCARD", "1", "a", "LIMIT", "10"),
        ("ZINTERCARD", "2", "a", "nokey"), ("ZINTERCARD", "2", "a", "b", "LIMIT", "-1"),
        ("ZINTERCARD", "2", "a", "b", "LIMIT", "x"), ("ZINTERCARD", "2", "a", "b", "LIMIT"),
        ("ZINTERCARD", "2", "a", "b", "WITHSCORES"), ("ZINTERCARD", "0", "a"),
        ("ZINTERCARD", "3", "a", "b"), ("ZINTERCARD", "x", "a"), ("SET", "s", "v"),
        ("ZINTERCARD", "2", "a", "s"), ("ZINTERCARD", "1", "a", "WEIGHTS", "1"),
    ])


def test_setops_accept_plain_sets(targets):
    compare(targets, [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("SADD", "s", "b", "c", "d"),
        ("SADD", "i", "1", "2", "3"), ("ZADD", "zi", "5", "1", "6", "9"),
        ("ZUNION", "2", "z", "s", "WITHSCORES"), ("ZINTER", "2", "z", "s", "WITHSCORES"),
        ("ZDIFF", "2", "z", "s", "WITHSCORES"), ("ZINTER", "2", "i", "zi", "WITHSCORES"),
        ("ZUNION", "2", "s", "i", "WEIGHTS", "2", "3", "WITHSCORES"),
        ("ZINTERCARD", "2", "z", "s"), ("ZUNIONSTORE", "d", "2", "s", "z"),
        ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
    ])


def test_encodings_and_type(targets):
    long = "x" * 65
    compare(targets, [
        make("small", 128), ("OBJECT", "ENCODING", "small"), ("ZADD", "small", "1", "m1"),
        ("OBJECT", "ENCODING", "small"), ("ZADD", "small", "1", "extra"),
        ("OBJECT", "ENCODING", "small"), ("ZREMRANGEBYRANK", "small", "0", "100"),
        ("OBJECT", "ENCODING", "small"), ("ZADD", "longm", "1", long), ("OBJECT", "ENCODING", "longm"),
        ("ZADD", "l2", "1", "a"), ("ZADD", "l2", "XX", "1", long), ("OBJECT", "ENCODING", "l2"),
        ("ZADD", "l2", "1", "x" * 64), ("OBJECT", "ENCODING", "l2"), ("TYPE", "l2"),
        ("COPY", "small", "copy"), ("OBJECT", "ENCODING", "copy"), ("ZCARD", "copy"),
        ("ZRANGESTORE", "rs", "small", "0", "5"), ("OBJECT", "ENCODING", "rs"),
        ("ZRANGESTORE", "rs", "longm", "0", "5"), ("OBJECT", "ENCODING", "rs"),
        (("SCAN", "0", "TYPE", "zset", "COUNT", "100"), sorted_scan),
    ])


def test_big_sets_behave_the_same(targets):
    compare(targets, [
        make("b", 300, score=lambda i: i % 17), ("ZCARD", "b"), ("ZRANGE", "b", "100", "110", "WITHSCORES"),
        ("ZRANGE", "b", "(3", "5", "BYSCORE", "LIMIT", "3", "4"), ("ZCOUNT", "b", "3", "(9"),
        ("ZRANK", "b", "m200"), ("ZREVRANK", "b", "m200"), ("ZREMRANGEBYSCORE", "b", "(15", "+inf"),
        ("ZREMRANGEBYRANK", "b", "10", "20"), ("ZPOPMAX", "b", "3"),
        ("ZRANGE", "b", "-5", "-1", "REV", "WITHSCORES"), ("ZCARD", "b"),
        make("lex", 200, fmt="k%03d", score=lambda i: 0), ("ZRANGEBYLEX", "lex", "[k050", "(k060"),
        ("ZLEXCOUNT", "lex", "(k100", "+"), ("ZREMRANGEBYLEX", "lex", "-", "[k010"),
        ("ZREVRANGEBYLEX", "lex", "+", "-", "LIMIT", "5", "3"),
    ])


def test_zrandmember(targets):
    compare(targets, [
        make("z", 5), ("ZRANDMEMBER", "z", "10"), ("ZRANDMEMBER", "z", "5", "WITHSCORES"),
        (("ZRANDMEMBER", "z"), shape), (("ZRANDMEMBER", "z", "3"), shape),
        (("ZRANDMEMBER", "z", "-8", "WITHSCORES"), shape), (("ZRANDMEMBER", "z", "1"), shape),
        (("ZRANDMEMBER", "z", "2", "WITHSCORES"), shape), ("ZRANDMEMBER", "z", "0"),
        ("ZRANDMEMBER", "nokey"), ("ZRANDMEMBER", "nokey", "5"), ("ZRANDMEMBER", "nokey", "-5"),
        ("ZRANDMEMBER", "z", "x"), ("ZRANDMEMBER", "z", "1", "foo"),
        ("ZRANDMEMBER", "z", "1", "WITHSCORES", "x"), ("ZRANDMEMBER", "z", "-9223372036854775808"),
        ("ZRANDMEMBER", "nokey", "-4611686018427387904", "WITHSCORES"),
        ("ZRANDMEMBER", "nokey", "4611686018427387904", "WITHSCORES"),
        ("ZRANDMEMBER", "nokey", "4611686018427387903", "WITHSCORES"),
        ("SET", "s", "v"), ("ZRANDMEMBER", "s"), ("ZRANDMEMBER", "s", "1"),
        ("ZRANDMEMBER", "s", "x"), ("ZRANDMEMBER", "s", "1", "x"),
        make("big", 200), (("ZRANDMEMBER", "big", "300"), S), (("ZRANDMEMBER", "big", "10"), shape),
        (("ZRANDMEMBER", "big", "150", "WITHSCORES"), shape),
    ])


def test_zscan(targets):
    compare(targets, [
        ("ZADD", "z", "1", "a", "2.5", "b", "3", "c", "1e20", "d"), ("ZSCAN", "z", "0"),
        ("ZSCAN", "z", "0", "MATCH", "[ab]"), ("ZSCAN", "z", "0", "COUNT", "1"),
        ("ZSCAN", "z", "0", "COUNT", "0"), ("ZSCAN", "z", "0", "COUNT", "x"),
        ("ZSCAN", "z", "0", "MATCH"), ("ZSCAN", "z", "0", "TYPE", "zset"), ("ZSCAN", "z", "x"),
        ("ZSCAN", "z", "18446744073709551616"), ("ZSCAN", "nokey", "0", "COUNT", "0"),
        ("ZSCAN", "nokey", "x"), ("SET", "s", "v"), ("ZSCAN", "s", "0"), ("ZSCAN", "s", "x"),
        make("big", 200, score=lambda i: i / 4),
        (("ZSCAN", "big", "0", "COUNT", "1000"), sorted_scan_pairs),
        (("ZSCAN", "big", "0", "MATCH", "m1?", "COUNT", "1000"), sorted_scan_pairs),
    ])


def test_arity_errors(targets):
    compare(targets, [
        ("ZSCORE", "k"), ("ZCARD",), ("ZCOUNT", "k", "1"), ("ZRANGESTORE", "d", "s", "0"),
        ("ZREMRANGEBYSCORE", "k", "1"), ("ZUNION", "1"), ("ZUNIONSTORE", "d", "1"),
        ("ZINTERCARD", "1"), ("ZMPOP", "1", "k"), ("ZSCAN", "k"), ("ZRANDMEMBER",),
        ("ZMSCORE", "k"), ("ZREM", "k"), ("ZLEXCOUNT", "k", "-"), ("ZREVRANK", "k"),
    ])


def test_key_positions_match_command_getkeys(redis_raw):
    """Routing finds the keys Redis's COMMAND GETKEYS finds."""
    import hiredis
    for argv in [("ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"),
                 ("ZUNION", "2", "a", "b"), ("ZMPOP", "2", "a", "b", "MIN"),
                 ("ZINTERCARD", "1", "a"), ("ZDIFFSTORE", "d", "1", "a"),
                 ("ZINTERSTORE", "d", "3", "a", "b", "c"), ("ZRANGESTORE", "d", "s", "0", "1"),
                 ("ZADD", "k", "1", "a"), ("ZDIFF", "2", "x", "y", "WITHSCORES")]:
        reader = hiredis.Reader()
        reader.feed(redis_raw.call("COMMAND", "GETKEYS", *argv))
        expected = reader.gets()
        args = [a.encode() for a in argv]
        cmd = lookup(args)
        assert [args[i] for i in cmd.key_indexes(args)] == expected, argv
    for argv in [("ZUNION", "3", "a", "b"), ("ZUNIONSTORE", "d", "0", "a"),
                 ("ZMPOP", "x", "a", "MIN")]:
        args = [a.encode() for a in argv]
        assert lookup(args).key_indexes(args) == []


def _random_script(rng, steps):
    """Random commands over a few small keys: scores from a small pool (ties,
    infinities, fractions) and members from a small alphabet."""
    keys = ["k1", "k2", "k3"]
    members = ["a", "b", "c", "d", "e", "ab", "ba", ""]
    scores = ["0", "1", "-1", "2.5", "1e3", "-inf", "+inf", "0.1", "3"]
    bounds = scores + ["(1", "(2.5", "(-inf", "(+inf", "(0"]
    lex = ["-", "+", "[a", "(a", "[b", "(ab", "[c", "(e", "[", "("]
    key, member, score = (lambda: rng.choice(keys)), (lambda: rng.choice(members)), (lambda: rng.choice(scores))
    pick = [
        lambda: ("ZADD", key(), *rng.sample(["NX", "XX", "GT", "LT", "CH"], rng.randint(0, 2)),
                 *[x for _ in range(rng.randint(1, 3)) for x in (score(), member())]),
        lambda: ("ZADD", key(), "INCR", score(), member()),
        lambda: ("ZINCRBY", key(), score(), member()),
        lambda: ("ZREM", key(), member(), member()),
        lambda: ("ZRANGE", key(), str(rng.randint(-4, 4)), str(rng.randint(-4, 4)),
                 *rng.sample(["REV", "WITHSCORES"], rng.randint(0, 2))),
        lambda: ("ZRANGE", key(), rng.choice(bounds), rng.choice(bounds), "BYSCORE",
                 *rng.sample(["REV", "WITHSCORES"], rng.randint(0, 2)),
                 *(("LIMIT", str(rng.randint(-1, 3)), str(rng.randint(-1, 3))) if rng.random() < .5 else ())),
        lambda: ("ZRANGE", key(), rng.choice(lex), rng.choice(lex), "BYLEX",
                 *(("REV",) if rng.random() < .5 else ()),
                 *(("LIMIT", str(rng.randint(-1, 3)), str(rng.randint(-1, 3))) if rng.random() < .5 else ())),
        lambda: ("ZLEXCOUNT", key(), rng.choice(lex), rng.choice(lex)),
        lambda: ("ZCOUNT", key(), rng.choice(bounds), rng.choice(bounds)),
        lambda: ("ZRANK", key(), member()), lambda: ("ZREVRANK", key(), member()),
        lambda: ("ZREMRANGEBYSCORE", key(), rng.choice(bounds), rng.choice(bounds)),
        lambda: ("ZREMRANGEBYLEX", key(), rng.choice(lex), rng.choice(lex)),
        lambda: ("ZREMRANGEBYRANK", key(), str(rng.randint(-3, 3)), str(rng.randint(-3, 3))),
        lambda: (rng.choice(["ZPOPMIN", "ZPOPMAX"]), key(), *((str(rng.randint(0, 3)),) if rng.random() < .5 else ())),
        lambda: ("ZMPOP", "2", key(), key(), rng.choice(["MIN", "MAX"]), "COUNT", str(rng.randint(1, 3))),
        lambda: (rng.choice(["ZUNION", "ZINTER"]), "2", key(), key(), "WEIGHTS", score(), score(),
                 "AGGREGATE", rng.choice(["SUM", "MIN", "MAX"]), "WITHSCORES"),
        lambda: ("ZDIFF", "2", key(), key(), "WITHSCORES"),
        lambda: (rng.choice(["ZUNIONSTORE", "ZINTERSTORE"]), key(), "2", key(), key(),
                 "AGGREGATE", rng.choice(["SUM", "MIN", "MAX"])),
        lambda: ("ZRANGESTORE", key(), key(), rng.choice(bounds), rng.choice(bounds), "BYSCORE"),
        lambda: ("ZINTERCARD", "2", key(), key()),
        lambda: ("ZMSCORE", key(), member(), member()),
        lambda: ("ZCARD", key()),
    ]
    return [rng.choice(pick)() for _ in range(steps)]


@pytest.mark.parametrize("seed", range(6))
def test_random_scripts(redis_raw, seed):
    import random
    rng = random.Random(seed)
    proto = 2 + seed % 2
    if proto == 3:
        redis_raw.call("HELLO", "3")
    compare([redis_raw, EngineTarget(proto=proto)], _random_script(rng, 400))
