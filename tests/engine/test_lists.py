"""Engine-level tests of the list commands, the primitives the blocking
commands build on, and a model-based test against plain Python lists."""
import pickle

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fastcache.engine import lists
from fastcache.engine.context import Context
from fastcache.engine.dispatch import execute
from fastcache.engine.errors import CommandError, WRONGTYPE
from fastcache.engine.keyspace import Keyspace, now_ms
from fastcache.engine.lists import List
from fastcache.engine.types import copy_value, encoding_of, type_name
from fastcache.protocol.replies import NULL_ARRAY, OK, Error


@pytest.fixture
def ctx():
    return Context(Keyspace())


def run(ctx, *args):
    return execute(ctx, [a if isinstance(a, bytes) else str(a).encode() for a in args])


def items(ctx, key):
    return run(ctx, "LRANGE", key, 0, -1)


# -- commands ----------------------------------------------------------------------

def test_push_order_and_lengths(ctx):
    assert run(ctx, "LPUSH", "l", "a", "b", "c") == 3
    assert run(ctx, "RPUSH", "l", "d", "e") == 5
    assert items(ctx, "l") == [b"c", b"b", b"a", b"d", b"e"]
    assert run(ctx, "LPUSHX", "nope", "x") == 0 and run(ctx, "RPUSHX", "nope", "x") == 0
    assert ctx.db.data.get(b"nope") is None
    assert run(ctx, "LPUSHX", "l", "x", "y") == 7
    assert items(ctx, "l")[:2] == [b"y", b"x"]
    assert type(ctx.db.data[b"l"]) is List


def test_pop_reply_shapes(ctx):
    assert run(ctx, "LPOP", "nope") is None
    assert run(ctx, "LPOP", "nope", 0) is NULL_ARRAY
    run(ctx, "RPUSH", "l", "a", "b", "c")
    assert run(ctx, "LPOP", "l", 0) == []
    assert run(ctx, "RPOP", "l", 2) == [b"c", b"b"]
    assert run(ctx, "LPOP", "l") == b"a"
    assert b"l" not in ctx.db.data
    assert run(ctx, "LPOP", "l", -1) == Error(lists.NOT_POSITIVE)
    assert run(ctx, "LPOP", "l", 1, 2) == Error("ERR wrong number of arguments for 'lpop' command")


def test_ranges_walk_from_either_end(ctx):
    run(ctx, "RPUSH", "l", *range(1000))
    assert run(ctx, "LRANGE", "l", 2, 4) == [b"2", b"3", b"4"]
    assert run(ctx, "LRANGE", "l", -3, -1) == [b"997", b"998", b"999"]
    assert run(ctx, "LRANGE", "l", 500, 501) == [b"500", b"501"]
    assert run(ctx, "LINDEX", "l", -1000) == b"0" and run(ctx, "LINDEX", "l", 1000) is None
    assert run(ctx, "LTRIM", "l", 10, -11) is OK
    assert run(ctx, "LLEN", "l") == 980 and run(ctx, "LINDEX", "l", 0) == b"10"
    assert run(ctx, "LTRIM", "l", -5, -2) is OK
    assert items(ctx, "l") == [b"985", b"986", b"987", b"988"]
    assert run(ctx, "LTRIM", "l", 3, 1) is OK and b"l" not in ctx.db.data


def test_lrem_directions(ctx):
    run(ctx, "RPUSH", "l", "a", "b", "a", "c", "a")
    assert run(ctx, "LREM", "l", -2, "a") == 2
    assert items(ctx, "l") == [b"a", b"b", b"c"]
    assert run(ctx, "LREM", "l", 1, "zz") == 0
    run(ctx, "RPUSH", "l", "a", "a")
    assert run(ctx, "LREM", "l", 2, "a") == 2 and items(ctx, "l") == [b"b", b"c", b"a"]
    assert run(ctx, "LREM", "l", 0, "a") == 1


def test_lpos(ctx):
    run(ctx, "RPUSH", "l", "a", "b", "a", "a")
    assert run(ctx, "LPOS", "l", "a") == 0
    assert run(ctx, "LPOS", "l", "a", "RANK", -1) == 3
    assert run(ctx, "LPOS", "l", "a", "RANK", 2, "COUNT", 0) == [2, 3]
    assert run(ctx, "LPOS", "l", "a", "MAXLEN", 2, "COUNT", 0) == [0]
    assert run(ctx, "LPOS", "l", "a", "RANK", lists.INT64_MIN, "COUNT", 1) == [3, 2, 0]
    assert run(ctx, "LPOS", "l", "a", "RANK", lists.INT64_MAX, "COUNT", lists.INT64_MAX) == []
    assert run(ctx, "LPOS", "l", "zz") is None and run(ctx, "LPOS", "nope", "a", "COUNT", 1) == []


def test_reads_count_stats_and_writes_do_not(ctx):
    ks = ctx.ks
    run(ctx, "RPUSH", "l", "a")
    run(ctx, "LPOP", "nope")
    assert (ks.hits, ks.misses) == (0, 0)
    run(ctx, "LLEN", "l"), run(ctx, "LLEN", "nope"), run(ctx, "LRANGE", "l", 0, 1)
    assert (ks.hits, ks.misses) == (2, 1)


def test_expired_list_is_missing(ctx):
    run(ctx, "RPUSH", "l", "a")
    ctx.db.expires[b"l"] = now_ms() - 1
    assert run(ctx, "LLEN", "l") == 0
    run(ctx, "RPUSH", "m", "a")
    ctx.db.expires[b"m"] = now_ms() - 1
    assert run(ctx, "RPUSHX", "m", "b") == 0 and run(ctx, "RPUSH", "m", "b") == 1
    assert b"m" not in ctx.db.expires


def test_writes_keep_the_ttl(ctx):
    run(ctx, "RPUSH", "l", "a", "b")
    run(ctx, "EXPIRE", "l", 100)
    run(ctx, "RPUSH", "l", "c"), run(ctx, "LSET", "l", 0, "z"), run(ctx, "LPOP", "l")
    assert b"l" in ctx.db.expires


def test_type_registration(ctx):
    run(ctx, "RPUSH", "l", "a", "b")
    value = ctx.db.data[b"l"]
    assert type_name(value) == "list" and encoding_of(value) == "quicklist"
    twin = copy_value(value)
    assert type(twin) is List and twin == value and twin is not value
    twin.append(b"c")
    assert len(value) == 2
    again = pickle.loads(pickle.dumps(value))
    assert type(again) is List and again == value


# -- primitives for the blocking commands ------------------------------------------------

def test_pop_primitive(ctx):
    ks, db = ctx.ks, ctx.db
    assert lists.pop(ks, db, b"l", True) is None
    run(ctx, "RPUSH", "l", "a", "b", "c")
    dirty = ks.dirty
    assert lists.pop(ks, db, b"l", False) == b"c"
    assert lists.pop(ks, db, b"l", True, 0) == []
    assert lists.pop(ks, db, b"l", True, 5) == [b"a", b"b"]
    assert b"l" not in db.data and ks.dirty == dirty + 3
    ks.set(db, b"s", b"v")
    with pytest.raises(CommandError) as err:
        lists.pop(ks, db, b"s", True)
    assert err.value.message == WRONGTYPE


def test_move_primitive(ctx):
    ks, db = ctx.ks, ctx.db
    assert lists.move(ks, db, b"src", b"dst", True, True) is None
    run(ctx, "RPUSH", "src", "a", "b")
    ks.set(db, b"s", b"v")
    with pytest.raises(CommandError):
        lists.move(ks, db, b"src", b"s", True, True)
    assert items(ctx, "src") == [b"a", b"b"]  # nothing popped on a type error
    assert lists.move(ks, db, b"src", b"dst", False, True) == b"b"
    assert lists.move(ks, db, b"src", b"dst", True, False) == b"a"
    assert b"src" not in db.data and items(ctx, "dst") == [b"b", b"a"]
    assert lists.move(ks, db, b"dst", b"dst", True, False) == b"b"
    assert items(ctx, "dst") == [b"a", b"b"]


def test_mpop_primitive_and_parsing(ctx):
    ks, db = ctx.ks, ctx.db
    assert lists.mpop(ks, db, [b"x", b"y"], True, 2) is None
    run(ctx, "RPUSH", "y", "1", "2", "3")
    assert lists.mpop(ks, db, [b"x", b"y"], False, 2) == [b"y", [b"3", b"2"]]
    # BLMPOP's shape: BLMPOP timeout numkeys key... LEFT|RIGHT [COUNT n]
    argv = [b"BLMPOP", b"0", b"2", b"x", b"y", b"left", b"COUNT", b"3"]
    assert lists.parse_mpop(argv, 2) == ([b"x", b"y"], True, 3)
    assert lists.numkeys_keys(argv, 2) == [3, 4]
    assert lists.numkeys_keys([b"LMPOP", b"3", b"a", b"LEFT"]) == []
    assert lists.numkeys_keys([b"LMPOP", b" 1z", b"a", b"LEFT"]) == [2]
    assert lists.numkeys_keys([b"LMPOP", b"4294967297", b"a", b"LEFT"]) == [2]  # C int truncation


# -- model-based -------------------------------------------------------------------------

KEYS = [b"k1", b"k2"]
ELEMENTS = st.sampled_from([b"a", b"b", b"c"])
SMALL = st.integers(-4, 4)


class ListMachine(RuleBasedStateMachine):
    """Random list commands against {key: python list}; empty lists vanish."""

    def __init__(self):
        super().__init__()
        self.ctx = Context(Keyspace())
        self.model = {}

    def run(self, *args):
        return run(self.ctx, *args)

    def store(self, key, values):
        if values:
            self.model[key] = values
        else:
            self.model.pop(key, None)

    @rule(key=st.sampled_from(KEYS), values=st.lists(ELEMENTS, min_size=1, max_size=4),
          left=st.booleans(), only_existing=st.booleans())
    def push(self, key, values, left, only_existing):
        name = ("L" if left else "R") + "PUSH" + ("X" if only_existing else "")
        reply = self.run(name, key, *values)
        current = self.model.get(key)
        if only_existing and current is None:
            assert reply == 0
            return
        current = current or []
        current = values[::-1] + current if left else current + values
        self.store(key, current)
        assert reply == len(current)

    @rule(key=st.sampled_from(KEYS), left=st.booleans(), count=st.none() | st.integers(0, 4))
    def pop(self, key, left, count):
        args = ("LPOP" if left else "RPOP", key) + (() if count is None else (count,))
        reply = self.run(*args)
        current = self.model.get(key, [])
        n = 1 if count is None else count
        taken = current[:n] if left else current[::-1][:n]
        rest = current[n:] if left else current[:len(current) - len(taken)]
        if key not in self.model:
            assert reply is (None if count is None else NULL_ARRAY)
        else:
            assert reply == (taken[0] if count is None else taken)
            self.store(key, rest)

    def span(self, key, start, end):
        """The model's elements start..end, Redis-style (inclusive, negatives from the tail)."""
        current = self.model.get(key, [])
        n = len(current)
        lo = max(start + n if start < 0 else start, 0)
        hi = end + n if end < 0 else end
        if hi < 0:
            return []  # a slice with a negative end would count from the tail again
        return current[lo:hi + 1]

    @rule(key=st.sampled_from(KEYS), start=SMALL, end=SMALL)
    def lrange(self, key, start, end):
        assert self.run("LRANGE", key, start, end) == self.span(key, start, end)

    @rule(key=st.sampled_from(KEYS), start=SMALL, end=SMALL)
    def ltrim(self, key, start, end):
        kept = self.span(key, start, end)
        assert self.run("LTRIM", key, start, end) is OK
        if key in self.model:
            self.store(key, kept)

    @rule(key=st.sampled_from(KEYS), index=SMALL, value=ELEMENTS)
    def lset_lindex(self, key, index, value):
        current = self.model.get(key)
        inside = current is not None and -len(current) <= index < len(current)
        assert self.run("LINDEX", key, index) == (current[index] if inside else None)
        reply = self.run("LSET", key, index, value)
        if inside:
            assert reply is OK
            current[index] = value
        else:
            assert isinstance(reply, Error)

    @rule(key=st.sampled_from(KEYS), count=SMALL, value=ELEMENTS)
    def lrem(self, key, count, value):
        current = self.model.get(key, [])
        order = current[::-1] if count < 0 else list(current)
        limit = abs(count) or len(current)
        kept, removed = [], 0
        for v in order:
            if v == value and removed < limit:
                removed += 1
            else:
                kept.append(v)
        assert self.run("LREM", key, count, value) == removed
        if key in self.model:
            self.store(key, kept[::-1] if count < 0 else kept)

    @rule(key=st.sampled_from(KEYS), before=st.booleans(), pivot=ELEMENTS, value=ELEMENTS)
    def linsert(self, key, before, pivot, value):
        reply = self.run("LINSERT", key, "BEFORE" if before else "AFTER", pivot, value)
        current = self.model.get(key)
        if current is None:
            assert reply == 0
        elif pivot not in current:
            assert reply == -1
        else:
            current.insert(current.index(pivot) + (0 if before else 1), value)
            assert reply == len(current)

    @rule(src=st.sampled_from(KEYS), dst=st.sampled_from(KEYS), from_left=st.booleans(),
          to_left=st.booleans())
    def lmove(self, src, dst, from_left, to_left):
        reply = self.run("LMOVE", src, dst, "LEFT" if from_left else "RIGHT",
                         "LEFT" if to_left else "RIGHT")
        source = self.model.get(src)
        if source is None:
            assert reply is None
            return
        value = source.pop(0 if from_left else -1)
        target = self.model.setdefault(dst, [])
        target.insert(0 if to_left else len(target), value)
        self.store(src, self.model.get(src, []))
        assert reply == value

    @rule(key=st.sampled_from(KEYS), value=ELEMENTS, rank=st.sampled_from([1, 2, -1, -2]),
          count=st.integers(0, 3), maxlen=st.integers(0, 5))
    def lpos(self, key, value, rank, count, maxlen):
        current = self.model.get(key, [])
        order = list(enumerate(current))
        if rank < 0:
            order.reverse()
        if maxlen:
            order = order[:maxlen]
        hits = [i for i, v in order if v == value][abs(rank) - 1:]
        expected = hits[:count] if count else hits
        assert self.run("LPOS", key, value, "RANK", rank, "COUNT", count, "MAXLEN", maxlen) == expected

    @invariant()
    def same_contents(self):
        data = self.ctx.db.data
        assert set(data) == set(self.model)
        for key, values in self.model.items():
            assert list(data[key]) == values


TestListMachine = ListMachine.TestCase
TestListMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
