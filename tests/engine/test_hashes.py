"""Engine-level tests of the hash commands: stored values, encodings, stats,
HSCAN's guarantees, HRANDFIELD's picks, and a model-based state machine."""
import copy
import pickle

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fastcache.engine import hashes
from fastcache.engine.context import Context
from fastcache.engine.dispatch import execute
from fastcache.engine.hashes import MAX_LISTPACK_ENTRIES, MAX_LISTPACK_VALUE, Hash
from fastcache.engine.keyspace import Keyspace, now_ms
from fastcache.engine.types import copy_value, encoding_of, type_name
from fastcache.protocol.replies import Error, OK

WRONGTYPE = Error("WRONGTYPE Operation against a key holding the wrong kind of value")


@pytest.fixture
def ctx():
    return Context(Keyspace())


def run(ctx, *args):
    return execute(ctx, [a if isinstance(a, bytes) else str(a).encode() for a in args])


def fill(ctx, n, key="h"):
    args = ["HSET", key]
    for i in range(n):
        args += ["f%d" % i, "v%d" % i]
    return run(ctx, *args)


def stored(ctx, key=b"h"):
    return ctx.db.data.get(key)


# -- basics ----------------------------------------------------------------------

def test_set_get_and_reply_types(ctx):
    assert run(ctx, "HSET", "h", "a", "1", "b", "2", "a", "3") == 2
    assert run(ctx, "HMSET", "h", "c", "4") is OK
    assert run(ctx, "HSETNX", "h", "c", "x") == 0
    assert run(ctx, "HSETNX", "h", "d", "5") == 1
    assert stored(ctx) == {b"a": b"3", b"b": b"2", b"c": b"4", b"d": b"5"}
    assert type(stored(ctx)) is Hash
    reply = run(ctx, "HGETALL", "h")
    assert type(reply) is dict and list(reply) == [b"a", b"b", b"c", b"d"]
    assert run(ctx, "HKEYS", "h") == [b"a", b"b", b"c", b"d"]
    assert run(ctx, "HVALS", "h") == [b"3", b"2", b"4", b"5"]
    assert run(ctx, "HMGET", "h", "a", "x") == [b"3", None]
    assert run(ctx, "HMGET", "nope", "a", "x") == [None, None]
    assert run(ctx, "HGET", "h", "x") is None
    assert run(ctx, "HSTRLEN", "h", "a") == 1 and run(ctx, "HSTRLEN", "h", "x") == 0
    assert run(ctx, "HEXISTS", "h", "a") == 1 and run(ctx, "HEXISTS", "nope", "a") == 0
    assert run(ctx, "HLEN", "h") == 4 and run(ctx, "HLEN", "nope") == 0
    assert run(ctx, "HGETALL", "nope") == {} and run(ctx, "HKEYS", "nope") == []


def test_replacing_a_value_keeps_the_field_in_place(ctx):
    run(ctx, "HSET", "h", "a", "1", "b", "2", "c", "3")
    run(ctx, "HSET", "h", "a", "x")
    run(ctx, "HINCRBYFLOAT", "h", "b", "1.5")
    assert run(ctx, "HKEYS", "h") == [b"a", b"b", b"c"]


def test_arity_parity_error_names_the_command(ctx):
    assert run(ctx, "HSET", "h", "a", "1", "b") == Error(
        "ERR wrong number of arguments for 'hset' command")
    assert run(ctx, "HMSET", "h", "a", "1", "b") == Error(
        "ERR wrong number of arguments for 'hmset' command")
    assert stored(ctx) is None


def test_wrong_type_everywhere(ctx):
    ctx.ks.set(ctx.db, b"s", b"str")
    for args in (("HSET", "s", "a", "1"), ("HSETNX", "s", "a", "1"), ("HGET", "s", "a"),
                 ("HMGET", "s", "a"), ("HGETALL", "s"), ("HDEL", "s", "a"), ("HLEN", "s"),
                 ("HEXISTS", "s", "a"), ("HSTRLEN", "s", "a"), ("HKEYS", "s"), ("HVALS", "s"),
                 ("HINCRBY", "s", "a", "1"), ("HINCRBYFLOAT", "s", "a", "1"),
                 ("HRANDFIELD", "s"), ("HRANDFIELD", "s", "2"), ("HSCAN", "s", "0")):
        assert run(ctx, *args) == WRONGTYPE, args
    assert stored(ctx, b"s") == b"str"


def test_deleting_the_last_field_deletes_the_key(ctx):
    run(ctx, "HSET", "h", "a", "1", "b", "2")
    assert run(ctx, "HDEL", "h", "a", "zz", "a") == 1
    assert run(ctx, "HDEL", "h", "b", "a") == 1
    assert b"h" not in ctx.db.data and run(ctx, "EXISTS", "h") == 0
    assert run(ctx, "HDEL", "h", "b") == 0


def test_expired_hash_reads_as_missing_and_is_recreated_without_ttl(ctx):
    run(ctx, "HSET", "h", "a", "1")
    ctx.db.expires[b"h"] = now_ms() - 1
    assert run(ctx, "HGET", "h", "a") is None
    ctx.ks.set(ctx.db, b"h", Hash({b"a": b"1"}), now_ms() - 1)
    assert run(ctx, "HSET", "h", "b", "2") == 1
    assert stored(ctx) == {b"b": b"2"} and b"h" not in ctx.db.expires


def test_write_keeps_the_ttl(ctx):
    run(ctx, "HSET", "h", "a", "1")
    run(ctx, "EXPIRE", "h", "100")
    run(ctx, "HSET", "h", "b", "2")
    run(ctx, "HINCRBY", "h", "c", "1")
    run(ctx, "HDEL", "h", "a")
    assert 0 < run(ctx, "TTL", "h") <= 100


# -- counters --------------------------------------------------------------------

def test_hincrby(ctx):
    assert run(ctx, "HINCRBY", "h", "n", "5") == 5
    assert run(ctx, "HINCRBY", "h", "n", "-7") == -2
    assert stored(ctx)[b"n"] == b"-2"
    run(ctx, "HSET", "h", "big", str(2 ** 63 - 1), "f", "1.5")
    assert run(ctx, "HINCRBY", "h", "big", "1") == Error(
        "ERR increment or decrement would overflow")
    assert run(ctx, "HINCRBY", "h", "f", "1") == Error("ERR hash value is not an integer")
    assert run(ctx, "HINCRBY", "h", "n", "1x") == Error(
        "ERR value is not an integer or out of range")
    assert run(ctx, "HINCRBY", "nokey", "n", "x") == Error(
        "ERR value is not an integer or out of range")
    assert b"nokey" not in ctx.db.data


def test_hincrbyfloat(ctx):
    assert run(ctx, "HINCRBYFLOAT", "h", "f", "0.1") == b"0.1"
    assert run(ctx, "HINCRBYFLOAT", "h", "f", "0.2") == b"0.3"
    assert run(ctx, "HINCRBYFLOAT", "h", "f", "-0.3") == b"0"
    assert run(ctx, "HINCRBYFLOAT", "h", "f", "inf") == Error("ERR value is NaN or Infinity")
    assert run(ctx, "HINCRBYFLOAT", "h", "f", "nan") == Error("ERR value is not a valid float")
    run(ctx, "HSET", "h", "g", "inf", "s", "abc")
    assert run(ctx, "HINCRBYFLOAT", "h", "g", "1") == Error(
        "ERR increment would produce NaN or Infinity")
    assert run(ctx, "HINCRBYFLOAT", "h", "s", "1") == Error("ERR hash value is not a float")
    assert run(ctx, "HINCRBYFLOAT", "nokey", "f", "x") == Error("ERR value is not a valid float")
    assert b"nokey" not in ctx.db.data


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-10 ** 20, 10 ** 20).map(str),
    st.sampled_from(["0.1", "1e300", "-1e-300", "0x1p-3", "3.0e2"])), min_size=1, max_size=6))
def test_hincrbyfloat_rounds_like_incrbyfloat(deltas):
    ctx = Context(Keyspace())
    for delta in deltas:
        expected = run(ctx, "INCRBYFLOAT", "s", delta)
        assert run(ctx, "HINCRBYFLOAT", "h", "f", delta) == expected


# -- encodings -------------------------------------------------------------------

def test_encoding_follows_redis_thresholds_and_never_goes_back(ctx):
    fill(ctx, MAX_LISTPACK_ENTRIES)
    assert encoding_of(stored(ctx)) == "listpack"
    run(ctx, "HSETNX", "h", "extra", "x")
    assert encoding_of(stored(ctx)) == "hashtable"
    run(ctx, "HDEL", "h", *["f%d" % i for i in range(MAX_LISTPACK_ENTRIES)])
    assert len(stored(ctx)) == 1 and encoding_of(stored(ctx)) == "hashtable"


@pytest.mark.parametrize("args", [
    ("HSET", "h", "L", "v"), ("HSET", "h", "a", "L"), ("HSETNX", "h", "L", "1"),
    ("HINCRBY", "h", "L", "1"), ("HINCRBYFLOAT", "h", "L", "1"), ("HINCRBYFLOAT", "h", "x", "1e70"),
])
def test_long_strings_convert(ctx, args):
    long = "x" * (MAX_LISTPACK_VALUE + 1)
    run(ctx, "HSET", "h", "a", "1", "g" * MAX_LISTPACK_VALUE, "v" * MAX_LISTPACK_VALUE)
    assert encoding_of(stored(ctx)) == "listpack"
    run(ctx, *[long if a == "L" else a for a in args])
    assert encoding_of(stored(ctx)) == "hashtable"


def test_hsetnx_on_an_existing_field_does_not_convert(ctx):
    run(ctx, "HSET", "h", "a", "1")
    run(ctx, "HSETNX", "h", "a", "x" * 100)
    assert encoding_of(stored(ctx)) == "listpack"


def test_type_copy_and_pickle(ctx):
    run(ctx, "HSET", "h", "a", "1", "L", "x" * 100)
    h = stored(ctx)
    assert type_name(h) == "hash" and run(ctx, "TYPE", "h") == "hash"
    for twin in (copy_value(h), pickle.loads(pickle.dumps(h)), copy.deepcopy(h), h.copy()):
        assert type(twin) is Hash and twin == h and twin is not h
        assert encoding_of(twin) == "hashtable"
    assert run(ctx, "COPY", "h", "h2") == 1
    run(ctx, "HSET", "h2", "new", "1")
    assert b"new" not in h and encoding_of(stored(ctx, b"h2")) == "hashtable"


# -- stats -----------------------------------------------------------------------

def test_dirty_counts_like_redis(ctx):
    ks = ctx.ks

    def changes(*args):
        before = ks.dirty
        run(ctx, *args)
        return ks.dirty - before

    assert changes("HSET", "h", "a", "1", "b", "2") == 2
    assert changes("HSET", "h", "a", "1") == 1  # Redis counts every pair written
    assert changes("HMSET", "h", "c", "3") == 1
    assert changes("HSETNX", "h", "a", "x") == 0
    assert changes("HSETNX", "h", "d", "4") == 1
    assert changes("HINCRBY", "h", "n", "1") == 1
    assert changes("HINCRBYFLOAT", "h", "n", "1") == 1
    assert changes("HINCRBY", "h", "a", "x") == 0
    assert changes("HDEL", "h", "zz") == 0
    assert changes("HDEL", "h", "a", "b", "zz") == 2
    assert changes("HDEL", "h", "c", "d", "n") == 3
    assert changes("HGET", "h", "a") == 0


def test_reads_count_hits_and_misses_writes_do_not(ctx):
    ks = ctx.ks
    run(ctx, "HSET", "h", "a", "1")
    run(ctx, "HDEL", "nokey", "a")
    assert (ks.hits, ks.misses) == (0, 0)
    run(ctx, "HGET", "h", "a")
    run(ctx, "HLEN", "nokey")
    assert (ks.hits, ks.misses) == (1, 1)


def test_writes_refresh_the_access_time(ctx):
    run(ctx, "HSET", "h", "a", "1")
    ctx.db.atime[b"h"] = 0
    run(ctx, "HDEL", "h", "zz")
    assert ctx.db.atime[b"h"] == ctx.ks.clock


# -- HRANDFIELD ------------------------------------------------------------------

def test_hrandfield_counts(ctx):
    fill(ctx, 10)
    fields = set(stored(ctx))
    assert run(ctx, "HRANDFIELD", "h") in fields
    assert run(ctx, "HRANDFIELD", "h", "0") == []
    picked = run(ctx, "HRANDFIELD", "h", "4")
    assert len(picked) == 4 == len(set(picked)) and set(picked) <= fields
    assert picked == sorted(picked, key=list(stored(ctx)).index)  # listpack order
    assert run(ctx, "HRANDFIELD", "h", "50") == list(stored(ctx))
    repeated = run(ctx, "HRANDFIELD", "h", "-50")
    assert len(repeated) == 50 and set(repeated) <= fields
    assert run(ctx, "HRANDFIELD", "nokey") is None
    assert run(ctx, "HRANDFIELD", "nokey", "-3") == []


def test_hrandfield_withvalues_shapes(ctx):
    run(ctx, "HSET", "h", "a", "1", "b", "2")
    assert run(ctx, "HRANDFIELD", "h", "5", "WITHVALUES") == [b"a", b"1", b"b", b"2"]
    ctx.proto = 3
    assert run(ctx, "HRANDFIELD", "h", "5", "withvalues") == [[b"a", b"1"], [b"b", b"2"]]
    for pair in run(ctx, "HRANDFIELD", "h", "-4", "WITHVALUES"):
        assert pair in ([b"a", b"1"], [b"b", b"2"])


def test_hrandfield_argument_errors(ctx):
    assert run(ctx, "HRANDFIELD", "h", "-9223372036854775808") == Error(
        "ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807")
    assert run(ctx, "HRANDFIELD", "h", "4611686018427387904", "WITHVALUES") == Error(
        "ERR value is out of range")
    assert run(ctx, "HRANDFIELD", "h", "1", "WITH") == Error("ERR syntax error")


# -- HSCAN -----------------------------------------------------------------------

def scan_all(ctx, key, *options):
    """(field, value) pairs of a full HSCAN."""
    cursor, found = b"0", []
    while True:
        cursor, items = run(ctx, "HSCAN", key, cursor, *options)
        found += list(zip(items[::2], items[1::2]))
        if cursor == b"0":
            return found


def test_hscan_listpack_is_one_call(ctx):
    fill(ctx, 20)
    cursor, items = run(ctx, "HSCAN", "h", "77", "COUNT", "2")
    assert cursor == b"0" and len(items) == 40
    assert run(ctx, "HSCAN", "h", "0", "MATCH", "f1?") == [
        b"0", [x for i in range(10, 20) for x in (b"f%d" % i, b"v%d" % i)]]
    assert run(ctx, "HSCAN", "nokey", "0") == [b"0", []]


def test_hscan_hashtable_walks_in_steps(ctx):
    n = MAX_LISTPACK_ENTRIES + 100
    fill(ctx, n)
    found = scan_all(ctx, "h", "COUNT", "50")
    assert sorted(found) == sorted(stored(ctx).items())
    matched = scan_all(ctx, "h", "MATCH", "f1*")
    assert {f for f, _ in matched} == {f for f in stored(ctx) if f.startswith(b"f1")}


def test_hscan_during_changes_keeps_the_scan_contract(ctx):
    n = MAX_LISTPACK_ENTRIES + 100
    fill(ctx, n)
    doomed = {b"f%d" % i for i in range(0, n, 3)}
    deleted = set()

    def change(step):
        for field in sorted(doomed)[step * 10:step * 10 + 10]:
            run(ctx, "HDEL", "h", field)
            deleted.add(field)
        run(ctx, "HSET", "h", "new%d" % step, "x")

    seen = []
    cursor, step = b"0", 0
    while True:
        cursor, items = run(ctx, "HSCAN", "h", cursor, "COUNT", "20")
        batch = items[::2]
        assert not set(batch) & deleted  # nothing is returned after its deletion
        seen += batch
        change(step)
        step += 1
        if cursor == b"0":
            break
    kept = {b"f%d" % i for i in range(n)} - doomed
    assert kept <= set(seen)
    assert len(seen) == len(set(seen))


# -- model-based -----------------------------------------------------------------

FIELDS = st.sampled_from([b"a", b"b", b"c", b"d", b"x" * (MAX_LISTPACK_VALUE + 1)])
VALUES = st.sampled_from([b"0", b"1", b"-7", b"2.5", b"v", b"", b"y" * (MAX_LISTPACK_VALUE + 1)])
KEYS = st.sampled_from([b"h1", b"h2"])


class HashMachine(RuleBasedStateMachine):
    """The engine against a dict of dicts plus a 'has outgrown listpack' flag."""

    def __init__(self):
        super().__init__()
        self.ctx = Context(Keyspace())
        self.model = {}
        self.big = set()

    def call(self, *args):
        return execute(self.ctx, list(args))

    def _wrote(self, key, field, value):
        self.model.setdefault(key, {})[field] = value
        if len(field) > MAX_LISTPACK_VALUE or len(value) > MAX_LISTPACK_VALUE:
            self.big.add(key)

    @rule(key=KEYS, pairs=st.lists(st.tuples(FIELDS, VALUES), min_size=1, max_size=3))
    def hset(self, key, pairs):
        before = set(self.model.get(key, ()))
        args = [b"HSET", key]
        for field, value in pairs:
            args += [field, value]
            self._wrote(key, field, value)
        assert self.call(*args) == len(set(self.model[key]) - before)

    @rule(key=KEYS, field=FIELDS, value=VALUES)
    def hsetnx(self, key, field, value):
        fresh = field not in self.model.get(key, {})
        assert self.call(b"HSETNX", key, field, value) == int(fresh)
        if fresh:
            self._wrote(key, field, value)

    @rule(key=KEYS, fields=st.lists(FIELDS, min_size=1, max_size=3))
    def hdel(self, key, fields):
        h = self.model.get(key, {})
        gone = {f for f in fields if f in h}
        assert self.call(b"HDEL", key, *fields) == len(gone)
        for f in gone:
            del h[f]
        if not h:
            self.model.pop(key, None)
            self.big.discard(key)

    @rule(key=KEYS, field=FIELDS, delta=st.integers(-5, 5))
    def hincrby(self, key, field, delta):
        old = self.model.get(key, {}).get(field, b"0")
        reply = self.call(b"HINCRBY", key, field, b"%d" % delta)
        if old.lstrip(b"-").isdigit():
            assert reply == int(old) + delta
            self._wrote(key, field, b"%d" % reply)
        else:
            assert reply == Error("ERR hash value is not an integer")

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def reads(self, data):
        key = data.draw(st.sampled_from(sorted(self.model)))
        field = data.draw(FIELDS)
        h = self.model[key]
        assert self.call(b"HGET", key, field) == h.get(field)
        assert self.call(b"HEXISTS", key, field) == int(field in h)
        assert self.call(b"HSTRLEN", key, field) == len(h.get(field, b""))
        assert self.call(b"HMGET", key, field, b"a") == [h.get(field), h.get(b"a")]
        assert self.call(b"HRANDFIELD", key) in h

    @invariant()
    def same_contents(self):
        for key in (b"h1", b"h2"):
            h = self.model.get(key)
            if h is None:
                assert self.call(b"EXISTS", key) == 0
                continue
            assert self.call(b"HGETALL", key) == h
            assert list(self.call(b"HGETALL", key)) == list(h)  # insertion order kept
            assert self.call(b"HLEN", key) == len(h)
            expected = "hashtable" if key in self.big else "listpack"
            assert encoding_of(self.ctx.db.data[key]) == expected


HashMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestHashMachine = HashMachine.TestCase


def test_module_constants_match_redis_defaults():
    assert hashes.MAX_LISTPACK_ENTRIES == 512 and hashes.MAX_LISTPACK_VALUE == 64
