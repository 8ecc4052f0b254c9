"""Engine-level tests of the sorted-set family: the ZSet container, score
parsing, key positions, dirty counting, the pop primitives, and a
model-based test of the commands against a plain dict."""
import math
import pickle

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fastcache.engine import zsets
from fastcache.engine.context import Context
from fastcache.engine.dispatch import execute
from fastcache.engine.errors import CommandError
from fastcache.engine.keyspace import Keyspace
from fastcache.engine.registry import lookup
from fastcache.engine.types import copy_value, encoding_of, type_name
from fastcache.engine.zset_type import (
    LexRange, ZSet, parse_score, parse_score_range, score_text, strtod,
)
from fastcache.protocol.encoder import encode
from fastcache.protocol.replies import Error, NULL_ARRAY


@pytest.fixture
def ctx():
    return Context(Keyspace())


def run(ctx, *args):
    return execute(ctx, [a if isinstance(a, bytes) else str(a).encode() for a in args])


def zset_of(**scores):
    zs = ZSet()
    for member, score in scores.items():
        zs.insert(member.encode(), float(score))
    return zs


# -- the container ------------------------------------------------------------------

def test_pickle_round_trip_keeps_content_order_and_encoding():
    zs = zset_of(a=1, b=2, c=0)
    zs.insert(b"x" * 100, -1.0)
    back = pickle.loads(pickle.dumps(zs))
    assert type(back) is ZSet and back == zs and back.big
    assert list(back.order) == list(zs.order)
    assert back.rank(b"a") == zs.rank(b"a") == 2


def test_equality_is_by_content_and_encoding():
    a, b = zset_of(a=1, b=2), zset_of(b=2, a=1)
    assert a == b and not a != b
    b.rescore(b"a", 1.0, 5.0)
    assert a != b
    c = zset_of(a=1, b=2)
    c.big = True
    assert a != c
    assert a != {b"a": 1.0, b"b": 2.0}  # a plain dict is not a zset


def test_copy_is_independent():
    zs = zset_of(a=1, b=2)
    dup = copy_value(zs)
    dup.insert(b"c", 3.0)
    dup.discard(b"a")
    assert list(zs.order) == [(1.0, b"a"), (2.0, b"b")]
    assert list(dup.order) == [(2.0, b"b"), (3.0, b"c")]
    assert type_name(dup) == "zset"


def test_encoding_thresholds_are_sticky():
    zs = ZSet()
    for i in range(128):
        zs.insert(b"m%d" % i, float(i))
    assert encoding_of(zs) == "listpack"
    zs.insert(b"one-more", 0.0)
    assert encoding_of(zs) == "skiplist"
    zs.delete_slice(0, 100)
    assert encoding_of(zs) == "skiplist"
    small = zset_of(a=1)
    small.insert(b"x" * 64, 1.0)
    assert encoding_of(small) == "listpack"
    small.insert(b"x" * 65, 1.0)
    assert encoding_of(small) == "skiplist"


def test_listpack_turns_negative_zero_into_zero():
    small, big = ZSet(), ZSet()
    big.big = True
    small.insert(b"a", -0.0)
    big.insert(b"a", -0.0)
    assert math.copysign(1, small[b"a"]) == 1
    assert math.copysign(1, big[b"a"]) == -1
    assert ZSet.from_scores({b"a": -0.0})[b"a"] == 0.0
    assert math.copysign(1, ZSet.from_scores({b"a": -0.0})[b"a"]) == 1


def test_pop_end_and_ranks():
    zs = zset_of(a=1, b=2, c=3, d=3)
    assert zs.rank(b"d") == 3 and zs.rank(b"d", reverse=True) == 0 and zs.rank(b"x") is None
    assert zs.pop_end(2, True) == [(3.0, b"d"), (3.0, b"c")]
    assert zs.pop_end(5, False) == [(1.0, b"a"), (2.0, b"b")]
    assert not zs and not zs.order


def test_score_bounds_and_windows():
    zs = zset_of(a=1, b=2, c=2, d=3, e=math.inf)
    assert zs.score_bounds(parse_score_range(b"(1", b"3")) == (1, 4)
    assert zs.score_bounds(parse_score_range(b"(3", b"+inf")) == (4, 5)
    assert zs.score_bounds(parse_score_range(b"(inf", b"+inf")) == (0, 0)
    assert zs.score_bounds(parse_score_range(b"3", b"2")) == (0, 0)
    assert zs.window(1, 4, True, 1, 1) == [(2.0, b"c")]
    assert zs.window(1, 4, False, -1, 1) == []


def test_lex_ranges():
    zs = ZSet()
    for m in (b"a", b"b", b"c", b"d"):
        zs.insert(m, 0.0)
    assert zs.lex_bounds(LexRange(b"(a", b"[c")) == (1, 3)
    assert zs.lex_bounds(LexRange(b"-", b"+")) == (0, 4)
    assert zs.lex_bounds(LexRange(b"+", b"-")) == (0, 0)
    assert zs.lex_range(LexRange(b"-", b"+"), True, 1, 2) == [(0.0, b"c"), (0.0, b"b")]
    for bad in (b"a", b"", b"+x", b"-x"):
        with pytest.raises(CommandError):
            LexRange(bad, b"+")


# -- numbers --------------------------------------------------------------------------

@pytest.mark.parametrize("raw, value", [
    (b"1", 1.0), (b"-2.5", -2.5), (b"0x10", 16.0), (b"-0x1.8p1", -3.0), (b".5", 0.5),
    (b"5.", 5.0), (b"inf", math.inf), (b"-Infinity", -math.inf), (b"+inf", math.inf),
    (b"5e-324", 5e-324), (b"0e-400", 0.0), (b"1E3", 1000.0),
])
def test_parse_score_accepts(raw, value):
    assert parse_score(raw) == value


@pytest.mark.parametrize("raw", [
    b"", b" 1", b"1 ", b"nan", b"-nan", b"1e400", b"1e-400", b"0x1p2000", b"0x1p-1100",
    b"1_0", b"1.5e", b"0x", b"infinit", b"1\x002", b"abc",
])
def test_parse_score_refuses(raw):
    with pytest.raises(CommandError):
        parse_score(raw)


def test_strtod_takes_the_longest_prefix():
    assert strtod(b"  12abc") == (12.0, 4, False)
    assert strtod(b"1e") == (1.0, 1, False)
    assert strtod(b"0x") == (0.0, 1, False)
    assert strtod(b"x") == (0.0, 0, False)
    assert strtod(b"1e999")[2] is True


def test_score_ranges_read_like_c_strings():
    assert parse_score_range(b"", b"(") == (0.0, False, 0.0, True)
    assert parse_score_range(b" 1", b"1\x00junk") == (1.0, False, 1.0, False)
    assert parse_score_range(b"1e999", b"-1e999") == (math.inf, False, -math.inf, False)
    for bad in (b"1 ", b"((1", b"nan", b"[1"):
        with pytest.raises(CommandError):
            parse_score_range(bad, b"1")


def test_scan_score_text():
    assert score_text(1e17, False) == b"100000000000000000"
    assert score_text(1e17, True) == b"1e+17"
    assert score_text(2.0 ** 62 + 1024, False) == b"4.6116860184273889e+18"
    assert score_text(0.1, False) == b"0.10000000000000001"
    assert score_text(-math.inf, False) == b"-inf"
    assert score_text(-0.0, True) == b"-0"


# -- commands through the engine ------------------------------------------------------

def test_negative_zero_replies(ctx):
    reply = run(ctx, "ZINCRBY", "z", "-0", "m")
    assert encode(reply, 2) == b"$2\r\n-0\r\n" and encode(reply, 3) == b",-0\r\n"
    assert run(ctx, "ZSCORE", "z", "m") == 0.0


def test_dirty_counts_elements_like_redis(ctx):
    ks = ctx.ks
    start = ks.dirty
    run(ctx, "ZADD", "z", "1", "a", "2", "b")
    assert ks.dirty - start == 2
    run(ctx, "ZADD", "z", "1", "a", "3", "b", "4", "c")  # one unchanged
    assert ks.dirty - start == 4
    run(ctx, "ZREM", "z", "a", "b", "c")  # removes the key too
    assert ks.dirty - start == 7 and not ks.exists(ctx.db, b"z")
    run(ctx, "ZADD", "z", "1", "a")
    run(ctx, "ZUNIONSTORE", "d", "1", "z")
    assert ks.dirty - start == 9
    run(ctx, "ZINTERSTORE", "d", "2", "z", "nokey")  # deletes d
    assert ks.dirty - start == 10
    run(ctx, "ZINTERSTORE", "d", "2", "z", "nokey")  # nothing to delete
    assert ks.dirty - start == 10


def test_wrongtype_and_hits(ctx):
    run(ctx, "SET", "s", "v")
    assert run(ctx, "ZCARD", "s") == Error("WRONGTYPE Operation against a key holding the wrong kind of value")
    hits, misses = ctx.ks.hits, ctx.ks.misses
    run(ctx, "ZCARD", "nokey")
    assert ctx.ks.misses == misses + 1 and ctx.ks.hits == hits


def test_zadd_keeps_ttl_but_store_replaces_it(ctx):
    run(ctx, "ZADD", "z", "1", "a")
    run(ctx, "PEXPIRE", "z", "100000")
    run(ctx, "ZADD", "z", "2", "b")
    assert run(ctx, "TTL", "z") > 0
    run(ctx, "ZUNIONSTORE", "z", "1", "z")
    assert run(ctx, "TTL", "z") == -1


def test_pop_primitives(ctx):
    run(ctx, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    zs = ctx.ks.peek(ctx.db, b"z")
    taken = zsets.pop(ctx.ks, ctx.db, b"z", zs, 2, True)
    assert taken == [(3.0, b"c"), (2.0, b"b")]
    assert zsets.pop_reply(taken, 2, False) == [b"c", 3.0, b"b", 2.0]
    assert zsets.pop_reply(taken, 3, True) == [[b"c", 3.0], [b"b", 2.0]]
    assert zsets.mpop_reply(b"z", taken, 3) == [b"z", [[b"c", 3.0], [b"b", 2.0]]]
    zsets.pop(ctx.ks, ctx.db, b"z", zs, 5, False)
    assert not ctx.ks.exists(ctx.db, b"z")
    argv = [b"BZMPOP", b"0", b"2", b"a", b"b", b"MAX", b"COUNT", b"3"]
    assert zsets.parse_mpop(argv, 2) == ([b"a", b"b"], True, 3)
    assert run(ctx, "ZMPOP", "1", "nokey", "MIN") is NULL_ARRAY


def test_key_positions():
    def keys(*argv):
        args = [a.encode() for a in argv]
        return [args[i] for i in lookup(args).key_indexes(args)]
    assert keys("ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2") == [b"d", b"a", b"b"]
    assert keys("ZINTER", "2", "a", "b", "WITHSCORES") == [b"a", b"b"]
    assert keys("ZMPOP", "1", "a", "MIN") == [b"a"]
    assert keys("ZRANGESTORE", "d", "s", "0", "1") == [b"d", b"s"]
    assert keys("ZUNION", "5", "a") == [] and keys("ZDIFFSTORE", "d", "x", "a") == []


def test_zscan_walks_big_sets_fully(ctx):
    run(ctx, "ZADD", "z", *[x for i in range(300) for x in (str(i), "m%d" % i)])
    seen, cursor, calls = {}, b"0", 0
    while True:
        cursor, flat = run(ctx, "ZSCAN", "z", cursor, "COUNT", "25")
        seen.update(zip(flat[::2], flat[1::2]))
        calls += 1
        if cursor == b"0":
            break
    assert calls > 1 and len(seen) == 300 and seen[b"m7"] == b"7"


def test_setops_take_the_smallest_input_first_for_sums(ctx):
    # Float sums depend on order: Redis adds the inputs smallest first.
    run(ctx, "ZADD", "a", "0.1", "m", "1", "x", "2", "y")
    run(ctx, "ZADD", "b", "0.2", "m", "1", "x")
    run(ctx, "ZADD", "c", "0.3", "m")
    expected = (0.3 + 0.2) + 0.1
    assert run(ctx, "ZINTER", "3", "a", "b", "c", "WITHSCORES") == [b"m", expected]
    assert run(ctx, "ZSCORE", "a", "m") == 0.1


# -- model-based ----------------------------------------------------------------------

MEMBERS = st.sampled_from([b"a", b"b", b"c", b"d", b"ab", b""])
SCORES = st.sampled_from([0.0, 1.0, -1.0, 2.5, 1e3, -math.inf, math.inf, 0.1])


def _text(score):
    return repr(score).encode() if math.isfinite(score) else (b"inf" if score > 0 else b"-inf")


class ZSetModel(RuleBasedStateMachine):
    """The commands against a dict member -> score."""

    def __init__(self):
        super().__init__()
        self.ctx = Context(Keyspace())
        self.model = {}

    def call(self, *args):
        return execute(self.ctx, list(args))

    def ordered(self):
        return sorted((s, m) for m, s in self.model.items())

    @rule(pairs=st.lists(st.tuples(SCORES, MEMBERS), min_size=1, max_size=4),
          option=st.sampled_from([b"", b"NX", b"XX", b"GT", b"LT"]))
    def zadd(self, pairs, option):
        argv = [b"ZADD", b"z"] + ([option] if option else [])
        for score, member in pairs:
            argv += [_text(score), member]
        added = 0
        for score, member in pairs:
            old = self.model.get(member)
            if old is None:
                if option != b"XX":
                    self.model[member] = score
                    added += 1
            elif option not in (b"NX",) and not (option == b"GT" and score <= old) \
                    and not (option == b"LT" and score >= old):
                self.model[member] = score
        assert self.call(*argv) == added

    @rule(member=MEMBERS, by=SCORES)
    def zincrby(self, member, by):
        reply = self.call(b"ZINCRBY", b"z", _text(by), member)
        new = self.model.get(member, 0.0) + by
        if new != new:
            assert isinstance(reply, Error)
        else:
            self.model[member] = new
            assert reply == new

    @rule(members=st.lists(MEMBERS, min_size=1, max_size=3))
    def zrem(self, members):
        removed = sum(self.model.pop(m, None) is not None for m in members)
        assert self.call(b"ZREM", b"z", *members) == removed

    @rule(count=st.integers(0, 3), high=st.booleans())
    def zpop(self, count, high):
        reply = self.call(b"ZPOPMAX" if high else b"ZPOPMIN", b"z", b"%d" % count)
        order = self.ordered()
        taken = (order[::-1] if high else order)[:count]
        for _, m in taken:
            del self.model[m]
        assert reply == [x for s, m in taken for x in (m, s)]

    @rule(low=SCORES, high=SCORES)
    def zremrangebyscore(self, low, high):
        gone = [m for m, s in self.model.items() if low <= s <= high]
        for m in gone:
            del self.model[m]
        assert self.call(b"ZREMRANGEBYSCORE", b"z", _text(low), _text(high)) == len(gone)

    @rule(start=st.integers(-5, 5), stop=st.integers(-5, 5))
    def zrange(self, start, stop):
        order = [m for _, m in self.ordered()]
        n = len(order)
        lo, hi = start + n if start < 0 else start, stop + n if stop < 0 else stop
        expected = order[max(lo, 0):hi + 1] if hi >= 0 else []
        assert self.call(b"ZRANGE", b"z", b"%d" % start, b"%d" % stop) == expected

    @rule(member=MEMBERS)
    def zrank(self, member):
        order = [m for _, m in self.ordered()]
        expected = order.index(member) if member in self.model else None
        assert self.call(b"ZRANK", b"z", member) == expected

    @invariant()
    def matches_model(self):
        zs = self.ctx.ks.peek(self.ctx.db, b"z")
        if not self.model:
            assert zs is None  # empty zsets are deleted
            return
        assert dict(zs) == self.model
        assert list(zs.order) == self.ordered()
        assert self.call(b"ZCARD", b"z") == len(self.model)


ZSetModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_zset_model = ZSetModel.TestCase


def test_keyspace_events(ctx):
    from fastcache.engine import notify
    events = []
    ctx.ks.notify_flags = notify.ALL | notify.KEYEVENT
    ctx.ks.publish_event = lambda event, dbid, key: events.append((event, key))
    run(ctx, "ZADD", "z", "1", "a", "2", "b", "3", "c")
    run(ctx, "ZADD", "z", "1", "a")  # no change, no event
    run(ctx, "ZINCRBY", "z", "1", "a")
    run(ctx, "ZREM", "z", "nope")
    run(ctx, "ZREM", "z", "a")
    run(ctx, "ZREMRANGEBYSCORE", "z", "0", "2")
    run(ctx, "ZUNIONSTORE", "u", "1", "z")
    run(ctx, "ZPOPMAX", "z")
    run(ctx, "ZINTERSTORE", "u", "2", "u", "nokey")
    run(ctx, "ZRANGESTORE", "r", "nokey", "0", "-1")
    assert events == [
        ("zadd", b"z"), ("zincr", b"z"), ("zrem", b"z"), ("zremrangebyscore", b"z"),
        ("zunionstore", b"u"), ("zpopmax", b"z"), ("del", b"z"), ("del", b"u"),
    ]
