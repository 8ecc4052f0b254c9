"""Engine-level tests of the set commands and of `Set` (encoding flag,
random-access index, pickling), plus a model-based test against Python sets."""
import pickle
import random
from collections import Counter

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fastcache.engine import sets as sets_mod
from fastcache.engine.context import Context
from fastcache.engine.dispatch import execute
from fastcache.engine.keyspace import Keyspace
from fastcache.engine.registry import lookup
from fastcache.engine.sets import MAX_INTSET_ENTRIES, SMALL_SET, Set
from fastcache.engine.types import copy_value, encoding_of, type_name
from fastcache.protocol.replies import Error


@pytest.fixture
def ctx():
    return Context(Keyspace())


def run(ctx, *args):
    return execute(ctx, [a if isinstance(a, bytes) else str(a).encode() for a in args])


def members(n, prefix=b"m"):
    return [prefix + b"%d" % i for i in range(n)]


def check_index(value):
    """The random-pick index, when built, lists every member once, plus once each member
    removed since (its stale entry)."""
    if value._pool is None:
        assert value._gone is None
        return
    gone = value._gone
    assert type(gone) is set and not gone & value
    assert sorted(value._pool) == sorted(list(value) + list(gone))


# -- the Set type -------------------------------------------------------------------

def test_type_registration_and_copy(ctx):
    run(ctx, "SADD", "s", "1", "2")
    value = ctx.db.data[b"s"]
    assert type(value) is Set and type_name(value) == "set"
    assert encoding_of(value) == "intset"
    twin = copy_value(value)
    assert twin == value and twin is not value and type(twin) is Set
    twin.add_members([b"x"])
    assert b"x" not in value and encoding_of(twin) == "hashtable"
    assert encoding_of(value) == "intset"


def test_pickle_keeps_members_and_encoding():
    value = Set([b"1", b"a"])
    value.remove_members([b"a"])
    assert value.hashtable  # sticky
    value.population()
    back = pickle.loads(pickle.dumps(value))
    assert type(back) is Set and back == value and back.hashtable and back._pool is None
    assert pickle.loads(pickle.dumps(Set([b"1"]))).hashtable is False


def test_constructor_computes_the_encoding():
    assert not Set([b"1", b"-2"]).hashtable
    assert Set([b"01"]).hashtable
    assert not Set(members(MAX_INTSET_ENTRIES, b"")).hashtable
    assert Set(members(MAX_INTSET_ENTRIES + 1, b"")).hashtable


def test_small_sets_build_no_index():
    value = Set(members(SMALL_SET))
    assert isinstance(value.population(), tuple) and value._pool is None


def test_index_is_built_once_and_kept_in_step():
    value = Set(members(1000))
    pool = value.population()
    assert value.population() is pool
    value.add_members([b"new", b"m1"])
    value.remove_members([b"m2", b"absent"])
    value.discard_member(b"m3")
    assert value._gone == {b"m2", b"m3"} and len(pool) == 1001
    check_index(value)
    popped = [value.pop_random() for _ in range(500)]
    assert value._pool is pool and len(set(popped)) == 500
    assert not set(popped) & {b"m2", b"m3"}
    check_index(value)
    assert len(value) == 1000 + 1 - 2 - 500
    members_now = value.population()   # every member once: the stale entries go
    assert sorted(members_now) == sorted(value) and not value._gone


def test_srem_leaves_stale_entries_and_a_readd_revives_its_own():
    random.seed(1)
    value = Set(members(100))
    pool = value.population()
    value.remove_members(members(30))
    assert len(pool) == 100 and value._gone == set(members(30))
    value.add_members([b"m0", b"m1", b"new"])
    assert value._gone == set(members(30)) - {b"m0", b"m1"}
    assert len(pool) == 101 and pool.count(b"m0") == 1 and pool[-1] == b"new"
    check_index(value)
    popped = [value.pop_random() for _ in range(len(value))]
    assert sorted(popped) == sorted([b"m0", b"m1", b"new"] + members(100)[30:])
    assert not value and value._pool is pool and sorted(pool) == sorted(value._gone)


def test_index_dropped_once_stale_entries_outnumber_live_ones():
    value = Set(members(200))
    value.population()
    value.remove_members(members(100))
    assert value._pool is not None and len(value._gone) == len(value)
    check_index(value)
    value.discard_member(b"m100")
    assert value._pool is None and value._gone is None
    left = set(value)
    assert value.pop_random() in left                       # rebuilt for the pick
    assert len(value._pool) == len(value) == 98
    check_index(value)


def test_draws_are_uniform_over_the_members_despite_stale_entries():
    """Stale entries are redrawn, and a re-added member has one entry, not two."""
    random.seed(7)
    value = Set(members(100))
    value.population()
    value.remove_members(members(40))
    value.add_members(members(20))
    counts = Counter(value.random_member() for _ in range(16000))
    assert set(counts) == set(value)
    assert all(130 < n < 270 for n in counts.values())      # 200 expected each
    revived = sum(counts[m] for m in members(20))
    assert 3600 < revived < 4400                             # 20 of 80 members: 4000


def test_draws_match_random_choice():
    """A pick draws the numbers random.choice over the pool would (seeded runs repeat)."""
    value = Set(members(500))
    pool = list(value.population())
    random.seed(3)
    want = random.choice(pool)
    random.seed(3)
    assert value.draw() == (want, pool.index(want))


def test_index_rebuilt_after_a_foreign_change():
    value = Set(members(200))
    value.population()
    set.add(value, b"sneaky")  # bypasses the index
    assert b"sneaky" in value.population()
    check_index(value)


def test_keep_only_reencodes_and_drops_the_index():
    value = Set([b"a"] + members(100, b""))
    value.population()
    value.keep_only([b"1", b"2"])
    assert value == {b"1", b"2"} and not value.hashtable and value._pool is None


# -- commands -------------------------------------------------------------------------

def test_sadd_srem_delete_empty_set(ctx):
    assert run(ctx, "SADD", "s", "a", "b", "a") == 2
    assert run(ctx, "SREM", "s", "a", "b", "zz") == 2
    assert b"s" not in ctx.db.data
    assert run(ctx, "SREM", "s", "a") == 0


def test_spop_uses_the_index_for_big_sets(ctx):
    run(ctx, "SADD", "s", *members(5000))
    value = ctx.db.data[b"s"]
    first = run(ctx, "SPOP", "s")
    pool = value._pool
    assert pool is not None and first not in value
    popped = run(ctx, "SPOP", "s", "100")
    assert len(popped) == 100 and not popped & value and value._pool is pool
    assert len(run(ctx, "SRANDMEMBER", "s", "50")) == 50 and value._pool is pool
    check_index(value)
    assert len(value) == 5000 - 101


def test_spop_everything(ctx):
    run(ctx, "SADD", "s", *members(10))
    assert run(ctx, "SPOP", "s", "10") == set(members(10))
    assert b"s" not in ctx.db.data


def test_random_picks_cover_the_set(ctx):
    run(ctx, "SADD", "s", *members(300))
    seen = set()
    for _ in range(30):
        seen.update(run(ctx, "SRANDMEMBER", "s", "-100"))
    assert len(seen) > 250  # all 300 are reachable; 3000 draws miss few
    distinct = run(ctx, "SRANDMEMBER", "s", "299")
    assert len(set(distinct)) == 299


def test_smove_to_itself_and_wrongtype(ctx):
    run(ctx, "SADD", "s", "a")
    run(ctx, "SET", "str", "v")
    assert run(ctx, "SMOVE", "s", "s", "a") == 1
    assert run(ctx, "SMOVE", "s", "s", "b") == 0
    assert run(ctx, "SMOVE", "nope", "str", "a") == 0
    assert isinstance(run(ctx, "SMOVE", "s", "str", "a"), Error)
    assert run(ctx, "SMEMBERS", "s") == {b"a"}


def test_set_replies_are_plain_sets(ctx):
    run(ctx, "SADD", "a", "1", "2")
    run(ctx, "SADD", "b", "2", "3")
    for argv in (("SMEMBERS", "a"), ("SINTER", "a", "b"), ("SUNION", "a", "b"),
                 ("SDIFF", "a", "b"), ("SPOP", "a", "0"), ("SINTER", "a", "nope")):
        assert type(run(ctx, *argv)) in (set, frozenset), argv
    assert run(ctx, "SUNION", "a", "b") == {b"1", b"2", b"3"}
    stored = run(ctx, "SINTERSTORE", "d", "a", "b")
    assert stored == 1 and type(ctx.db.data[b"d"]) is Set


def test_sintercard_keys_and_limit(ctx):
    cmd = lookup([b"sintercard"])
    argv = [b"sintercard", b"2", b"a", b"b", b"LIMIT", b"1"]
    assert cmd.key_indexes(argv) == [2, 3]
    assert cmd.key_indexes([b"sintercard", b"5", b"a"]) == []
    run(ctx, "SADD", "a", *members(50))
    run(ctx, "SADD", "b", *members(30))
    assert run(ctx, "SINTERCARD", "2", "a", "b") == 30
    assert run(ctx, "SINTERCARD", "2", "a", "b", "LIMIT", "7") == 7
    assert run(ctx, "SINTERCARD", "2", "a", "b", "LIMIT", "0") == 30


def test_sscan_walks_a_hashtable_in_steps(ctx):
    """Members present throughout are returned once; removing some meanwhile is fine."""
    run(ctx, "SADD", "s", *members(100))
    cursor, seen, removed, calls = b"0", [], set(), 0
    while True:
        cursor, batch = run(ctx, "SSCAN", "s", cursor, "COUNT", "10")
        seen.extend(batch)
        calls += 1
        if cursor == b"0":
            break
        victim = b"m%d" % (99 - calls)
        run(ctx, "SREM", "s", victim)
        removed.add(victim)
    assert calls > 5 and len(seen) == len(set(seen))
    assert set(members(100)) - removed <= set(seen)


# -- model-based test -------------------------------------------------------------------

KEYS = st.sampled_from([b"k1", b"k2", b"k3"])
MEMBER = st.sampled_from([b"1", b"2", b"-3", b"10", b"a", b"b", b"01", b""])
MEMBERS = st.lists(MEMBER, min_size=1, max_size=5)


class SetMachine(RuleBasedStateMachine):
    """Small sets, with every random pick going through the index so that
    its upkeep is exercised too."""

    def __init__(self):
        super().__init__()
        self.ctx = Context(Keyspace())
        self.model = {}
        self.saved_small_set, sets_mod.SMALL_SET = sets_mod.SMALL_SET, 0

    def teardown(self):
        sets_mod.SMALL_SET = self.saved_small_set

    def call(self, *args):
        return execute(self.ctx, list(args))

    def _after(self, key):
        if not self.model.get(key, True):
            del self.model[key]

    @rule(key=KEYS, items=MEMBERS)
    def sadd(self, key, items):
        current = self.model.setdefault(key, set())
        assert self.call(b"SADD", key, *items) == len(set(items) - current)
        current.update(items)

    @rule(key=KEYS, items=MEMBERS)
    def srem(self, key, items):
        current = self.model.get(key, set())
        assert self.call(b"SREM", key, *items) == len(set(items) & current)
        current.difference_update(items)
        self._after(key)

    @rule(src=KEYS, dst=KEYS, member=MEMBER)
    def smove(self, src, dst, member):
        source = self.model.get(src, set())
        expected = 1 if member in source else 0
        assert self.call(b"SMOVE", src, dst, member) == expected
        if expected and src != dst:
            source.discard(member)
            self.model.setdefault(dst, set()).add(member)
            self._after(src)

    @rule(key=KEYS, count=st.one_of(st.none(), st.integers(0, 6)))
    def spop(self, key, count):
        current = self.model.get(key, set())
        if count is None:
            popped = self.call(b"SPOP", key)
            assert (popped is None) == (not current)
            popped = set() if popped is None else {popped}
        else:
            popped = self.call(b"SPOP", key, b"%d" % count)
            assert len(popped) == min(count, len(current))
        assert popped <= current
        current -= popped
        self._after(key)

    @rule(key=KEYS, count=st.one_of(st.none(), st.integers(-6, 6)))
    def srandmember(self, key, count):
        current = self.model.get(key, set())
        if count is None:
            picked = self.call(b"SRANDMEMBER", key)
            assert (picked is None) == (not current) and (picked is None or picked in current)
            return
        picked = self.call(b"SRANDMEMBER", key, b"%d" % count)
        assert set(picked) <= current
        expected = -count if count < 0 and current else min(max(count, 0), len(current))
        assert len(picked) == expected

    @rule(op=st.sampled_from([b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"]),
          dst=KEYS, keys=st.lists(KEYS, min_size=1, max_size=3))
    def store(self, op, dst, keys):
        sets = [self.model.get(k, set()) for k in keys]
        if op == b"SINTERSTORE":
            result = set.intersection(*sets)
        elif op == b"SUNIONSTORE":
            result = set.union(*sets)
        else:
            result = set.difference(*sets)
        assert self.call(op, dst, *keys) == len(result)
        self.model[dst] = set(result)
        self._after(dst)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=3), limit=st.integers(0, 4))
    def reads(self, keys, limit):
        sets = [self.model.get(k, set()) for k in keys]
        common = set.intersection(*sets)
        assert self.call(b"SINTER", *keys) == common
        assert self.call(b"SUNION", *keys) == set.union(*sets)
        assert self.call(b"SDIFF", *keys) == set.difference(*sets)
        expected = min(len(common), limit) if limit else len(common)
        assert self.call(b"SINTERCARD", b"%d" % len(keys), *keys, b"LIMIT", b"%d" % limit) == expected

    @invariant()
    def matches_model(self):
        data = self.ctx.db.data
        assert {k: set(v) for k, v in data.items()} == self.model
        for value in data.values():
            assert type(value) is Set and value
            check_index(value)
            if not value.hashtable:
                assert len(value) <= MAX_INTSET_ENTRIES
                assert all(m.lstrip(b"-").isdigit() and m == b"%d" % int(m) for m in value)


TestSetMachine = SetMachine.TestCase
TestSetMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
