"""Engine-level tests of the generic key commands, the scan cursors and the
type registry, plus a model-based test of expiry, deletion and renaming."""
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fastcache.engine import keys as keys_mod, keyspace as keyspace_mod
from fastcache.engine.context import Context
from fastcache.engine.dispatch import execute
from fastcache.engine.errors import CommandError
from fastcache.engine.keyspace import Keyspace, now_ms
from fastcache.engine.registry import ALL, lookup
from fastcache.engine.scan import ScanCursors, cursors_of, parse_cursor
from fastcache.engine.types import copy_value, register_type, TYPE_NAMES, ENCODINGS, COPIERS
from fastcache.protocol.replies import Error, OK, Simple

SYNTAX = Error("ERR syntax error")
NOT_INT = Error("ERR value is not an integer or out of range")


@pytest.fixture
def ctx():
    return Context(Keyspace())


def run(ctx, *args):
    return execute(ctx, [a if isinstance(a, bytes) else str(a).encode() for a in args])


def put(ctx, key, value=b"v", db=None):
    ctx.ks.set(db or ctx.db, key, value)


def scan_all(ctx, *options, start=0):
    """Every key a full SCAN iteration returns, with repeats."""
    seen, cursor, calls = [], start, 0
    while True:
        cursor, batch = run(ctx, "SCAN", cursor, *options)
        seen.extend(batch)
        calls += 1
        if cursor == b"0":
            return seen, calls


# -- existence and deletion ------------------------------------------------------

def test_del_unlink_exists_touch(ctx):
    for k in (b"a", b"b", b"c"):
        put(ctx, k)
    assert run(ctx, "EXISTS", "a", "a", "x") == 2
    assert run(ctx, "TOUCH", "a", "x", "b") == 2
    assert run(ctx, "DEL", "a", "a", "x") == 1
    assert run(ctx, "UNLINK", "b") == 1
    assert run(ctx, "DEL", "b") == 0
    assert run(ctx, "EXISTS", "c") == 1
    assert run(ctx, "DEL") == Error("ERR wrong number of arguments for 'del' command")
    assert type(run(ctx, "DEL", "c")) is int  # not bool: RESP3 would encode #t


def test_exists_counts_hits_and_misses(ctx):
    put(ctx, b"a")
    run(ctx, "EXISTS", "a", "b", "c")
    assert (ctx.ks.hits, ctx.ks.misses) == (1, 2)


def test_expired_keys_are_gone(ctx):
    put(ctx, b"a")
    ctx.db.expires[b"a"] = now_ms() - 1
    assert run(ctx, "EXISTS", "a") == 0
    assert b"a" not in ctx.db.data


def test_type(ctx):
    put(ctx, b"s")
    assert run(ctx, "TYPE", "s") == Simple("string")
    assert run(ctx, "TYPE", "nope") == Simple("none")


# -- type registry -------------------------------------------------------------------

class FakeList(list):
    pass


@pytest.fixture
def fake_type():
    register_type(FakeList, "list", encoding=lambda v: "quicklist", copy=FakeList)
    yield FakeList
    for table in (TYPE_NAMES, ENCODINGS, COPIERS):
        table.pop(FakeList, None)


def test_registered_types(ctx, fake_type):
    put(ctx, b"l", fake_type([b"x"]))
    assert run(ctx, "TYPE", "l") == Simple("list")
    assert run(ctx, "OBJECT", "ENCODING", "l") == b"quicklist"
    assert run(ctx, "SCAN", "0", "TYPE", "LIST") == [b"0", [b"l"]]
    assert run(ctx, "SCAN", "0", "TYPE", "string") == [b"0", []]
    assert run(ctx, "COPY", "l", "m") == 1
    ctx.db.data[b"m"].append(b"y")
    assert ctx.db.data[b"l"] == [b"x"]


def test_copy_value_defaults_to_deep_copy():
    value = {b"f": [b"x"]}
    dup = copy_value(value)
    assert dup == value and dup is not value and dup[b"f"] is not value[b"f"]


# -- expiry -------------------------------------------------------------------------------

def test_expire_and_ttl(ctx):
    put(ctx, b"k")
    assert run(ctx, "TTL", "k") == -1
    assert run(ctx, "TTL", "nope") == -2
    assert run(ctx, "EXPIRE", "k", 100) == 1
    assert run(ctx, "TTL", "k") == 100
    assert 99000 < run(ctx, "PTTL", "k") <= 100000
    assert run(ctx, "PERSIST", "k") == 1
    assert run(ctx, "PERSIST", "k") == 0
    assert run(ctx, "EXPIRE", "nope", 100) == 0


def test_expire_options(ctx):
    put(ctx, b"k")
    assert run(ctx, "EXPIRE", "k", 100, "XX") == 0
    assert run(ctx, "EXPIRE", "k", 100, "GT") == 0     # no TTL is infinite
    assert run(ctx, "EXPIRE", "k", 100, "NX") == 1
    assert run(ctx, "EXPIRE", "k", 200, "NX") == 0
    assert run(ctx, "EXPIRE", "k", 50, "GT") == 0
    assert run(ctx, "EXPIRE", "k", 200, "gt") == 1
    assert run(ctx, "EXPIRE", "k", 300, "LT") == 0
    assert run(ctx, "EXPIRE", "k", 10, "lt", "xx") == 1
    assert run(ctx, "TTL", "k") == 10
    assert run(ctx, "EXPIRE", "k", 10, "nx", "gt") == Error(
        "ERR NX and XX, GT or LT options at the same time are not compatible")
    assert run(ctx, "EXPIRE", "k", 10, "gt", "lt") == Error(
        "ERR GT and LT options at the same time are not compatible")
    assert run(ctx, "EXPIRE", "k", 10, "bogus") == Error("ERR Unsupported option bogus")
    assert run(ctx, "EXPIRE", "k", "ten") == NOT_INT


def test_expire_in_the_past_deletes(ctx):
    for cmd, arg in (("EXPIRE", -1), ("PEXPIRE", 0), ("EXPIREAT", 1), ("PEXPIREAT", -5)):
        put(ctx, b"k")
        assert run(ctx, cmd, "k", arg) == 1
        assert b"k" not in ctx.db.data


def test_expire_overflow(ctx):
    put(ctx, b"k")
    big = 9223372036854775807
    for cmd in ("expire", "pexpire", "expireat"):
        assert run(ctx, cmd, "k", big) == Error("ERR invalid expire time in '%s' command" % cmd)
    assert run(ctx, "EXPIRE", "k", 9223372036854774) == Error(
        "ERR invalid expire time in 'expire' command")
    assert run(ctx, "EXPIREAT", "k", -9223372036854775808) == Error(
        "ERR invalid expire time in 'expireat' command")
    assert run(ctx, "PEXPIREAT", "k", big) == 1
    assert run(ctx, "PEXPIRETIME", "k") == big
    assert run(ctx, "EXPIRETIME", "k") == (big + 500) // 1000


def test_expiretime(ctx):
    put(ctx, b"k")
    assert run(ctx, "EXPIRETIME", "k") == -1
    assert run(ctx, "PEXPIRETIME", "nope") == -2
    at = now_ms() // 1000 + 1000
    assert run(ctx, "EXPIREAT", "k", at) == 1
    assert run(ctx, "EXPIRETIME", "k") == at
    assert run(ctx, "PEXPIRETIME", "k") == at * 1000


# -- KEYS / SCAN / RANDOMKEY / DBSIZE ------------------------------------------------

def test_keys(ctx):
    for k in (b"hello", b"hallo", b"hxllo", b"other", b""):
        put(ctx, k)
    assert sorted(run(ctx, "KEYS", "h[ae]llo")) == [b"hallo", b"hello"]
    assert sorted(run(ctx, "KEYS", "*")) == [b"", b"hallo", b"hello", b"hxllo", b"other"]
    assert b"" not in run(ctx, "KEYS", "**")
    ctx.db.expires[b"other"] = now_ms() - 1
    assert b"other" not in run(ctx, "KEYS", "*")


def test_scan_small_db_in_one_call(ctx):
    for i in range(5):
        put(ctx, b"k%d" % i)
    cursor, found = run(ctx, "SCAN", "0")
    assert cursor == b"0" and sorted(found) == [b"k%d" % i for i in range(5)]
    assert len(cursors_of(ctx.ks)) == 0  # nothing kept for a one-call scan


def test_scan_full_iteration(ctx):
    for i in range(1000):
        put(ctx, b"k%d" % i)
    found, calls = scan_all(ctx, "COUNT", 7)
    assert sorted(found) == sorted(ctx.db.data) and len(found) == 1000
    assert calls == 143
    assert len(cursors_of(ctx.ks)) == 0


def test_scan_options(ctx, fake_type):
    for i in range(30):
        put(ctx, b"k%d" % i)
    put(ctx, b"l", fake_type())
    found, _ = scan_all(ctx, "MATCH", "k1*", "COUNT", 4)
    assert sorted(found) == sorted([b"k1"] + [b"k1%d" % i for i in range(10)])
    found, _ = scan_all(ctx, "TYPE", "list", "count", 3)
    assert found == [b"l"]
    assert run(ctx, "SCAN", "0", "COUNT", 0) == SYNTAX
    assert run(ctx, "SCAN", "0", "COUNT", "x") == NOT_INT
    assert run(ctx, "SCAN", "0", "MATCH") == SYNTAX
    assert run(ctx, "SCAN", "x", "COUNT", 0) == Error("ERR invalid cursor")


def test_scan_survives_mutation(ctx):
    for i in range(100):
        put(ctx, b"k%d" % i)
    cursor, seen = run(ctx, "SCAN", 0, "COUNT", 10)
    for i in range(0, 100, 3):
        run(ctx, "DEL", b"k%d" % i)
    for i in range(100, 200):
        put(ctx, b"k%d" % i)
    while cursor != b"0":
        cursor, batch = run(ctx, "SCAN", cursor, "COUNT", 10)
        seen += batch
    stayed = {b"k%d" % i for i in range(100) if i % 3}
    assert stayed <= set(seen)
    assert len(seen) == len(set(seen))


def test_scan_unknown_cursor_restarts(ctx):
    for i in range(50):
        put(ctx, b"k%d" % i)
    found, _ = scan_all(ctx, "COUNT", 10, start=(12345 << 32) | 3)
    assert sorted(found) == sorted(ctx.db.data)


def test_scan_route_all():
    for name in (b"keys", b"scan", b"dbsize", b"randomkey", b"flushdb", b"flushall", b"swapdb"):
        assert lookup([name]).route == ALL


def test_randomkey_and_dbsize(ctx):
    assert run(ctx, "RANDOMKEY") is None
    assert run(ctx, "DBSIZE") == 0
    for k in (b"a", b"b", b"c"):
        put(ctx, k)
    assert run(ctx, "DBSIZE") == 3
    assert {run(ctx, "RANDOMKEY") for _ in range(200)} == {b"a", b"b", b"c"}
    for k in (b"a", b"b"):
        ctx.db.expires[k] = now_ms() - 1
    assert run(ctx, "RANDOMKEY") == b"c"


# -- cursors ----------------------------------------------------------------------------

@pytest.mark.parametrize("raw,value", [
    (b"0", 0), (b"", 0), (b"+7", 7), (b"007", 7), (b"-1", 2 ** 64 - 1), (b"-0", 0),
    (b"18446744073709551615", 2 ** 64 - 1), (b"5\x00junk", 5),
])
def test_parse_cursor(raw, value):
    assert parse_cursor(raw) == value


@pytest.mark.parametrize("raw", [b" 1", b"1 ", b"x", b"+", b"-", b"18446744073709551616", b"0x10", b"1.5"])
def test_parse_cursor_rejects(raw):
    with pytest.raises(CommandError) as err:
        parse_cursor(raw)
    assert err.value.message == "ERR invalid cursor"


def test_cursors_stay_below_2_56():
    cursors = ScanCursors(capacity=4)
    cursors._last_id = (1 << 24) - 3
    data = list(range(100))
    for _ in range(10):
        cursor, _batch = cursors.step("c", data, 0, 10)
        assert 0 < cursor < 2 ** 56


def test_cursor_eviction_and_owner_mismatch():
    cursors = ScanCursors(capacity=2)
    data = list(range(20))
    first, _ = cursors.step("a", data, 0, 5)
    cursors.step("a", data, 0, 5)
    cursors.step("a", data, 0, 5)  # evicts the first scan
    assert len(cursors) == 2
    cursor, batch = cursors.step("a", data, first, 5)
    assert batch == data[:5]  # restarted from the beginning
    cursor, batch = cursors.step("b", data, cursor, 5)
    assert batch == data[:5]  # another container's cursor restarts too


@st.composite
def scan_scripts(draw):
    """Initial elements, then per SCAN call: (count, elements added, elements removed)."""
    initial = draw(st.sets(st.integers(0, 60), min_size=1))
    steps = draw(st.lists(st.tuples(st.integers(1, 8), st.sets(st.integers(0, 80), max_size=5),
                                    st.sets(st.integers(0, 80), max_size=5)), max_size=40))
    return initial, steps


@settings(max_examples=80, deadline=None)
@given(scan_scripts())
def test_scan_contract_model(script):
    initial, steps = script
    container = dict.fromkeys(initial)
    cursors = ScanCursors()
    always = set(initial)  # present for the whole scan: must be returned
    seen = []
    cursor, started = 0, False
    for count, added, removed in steps:
        cursor, batch = cursors.step("c", container, cursor, count)
        started = True
        seen += [k for k in batch if k in container]
        for k in added:
            container[k] = None
        for k in removed:
            container.pop(k, None)
        always -= removed
        if cursor == 0:
            break
    while cursor or not started:
        cursor, batch = cursors.step("c", container, cursor, 5)
        seen += [k for k in batch if k in container]
        started = True
    assert always <= set(seen)
    assert len(seen) == len(set(seen))


# -- RENAME / COPY / MOVE / SWAPDB / FLUSH ---------------------------------------------

def test_rename(ctx):
    put(ctx, b"a", b"1")
    put(ctx, b"b", b"2")
    ctx.db.expires[b"a"] = now_ms() + 100000
    assert run(ctx, "RENAME", "nope", "x") == Error("ERR no such key")
    assert run(ctx, "RENAME", "a", "a") == OK
    assert run(ctx, "RENAMENX", "a", "a") == 0
    assert run(ctx, "RENAMENX", "a", "b") == 0
    assert run(ctx, "RENAME", "a", "b") == OK
    assert ctx.db.data == {b"b": b"1"} and b"b" in ctx.db.expires
    put(ctx, b"c", b"3")
    assert run(ctx, "RENAMENX", "c", "d") == 1
    assert run(ctx, "RENAME", "d", "b") == OK
    assert b"b" not in ctx.db.expires  # the source had no TTL


def test_copy(ctx):
    put(ctx, b"a", b"1")
    ctx.db.expires[b"a"] = now_ms() + 100000
    assert run(ctx, "COPY", "a", "a") == Error("ERR source and destination objects are the same")
    assert run(ctx, "COPY", "a", "b") == 1
    assert run(ctx, "COPY", "a", "b") == 0
    assert run(ctx, "COPY", "a", "b", "REPLACE") == 1
    assert b"b" in ctx.db.expires
    assert run(ctx, "COPY", "a", "a", "DB", 1) == 1
    assert ctx.ks.dbs[1].data == {b"a": b"1"}
    assert run(ctx, "COPY", "a", "x", "DB", 16) == Error("ERR DB index is out of range")
    assert run(ctx, "COPY", "a", "x", "DB") == SYNTAX
    assert run(ctx, "COPY", "a", "x", "DB", 1 << 31) == Error(
        "ERR value is out of range, value must between -2147483648 and 2147483647")
    assert run(ctx, "COPY", "nope", "x") == 0


def test_move(ctx):
    put(ctx, b"a")
    put(ctx, b"b", db=ctx.ks.dbs[1])
    assert run(ctx, "MOVE", "a", 0) == Error("ERR source and destination objects are the same")
    assert run(ctx, "MOVE", "a", -1) == Error("ERR DB index is out of range")
    assert run(ctx, "MOVE", "nope", 1) == 0
    assert run(ctx, "MOVE", "a", 1) == 1
    assert b"a" in ctx.ks.dbs[1].data and b"a" not in ctx.db.data
    put(ctx, b"b")
    assert run(ctx, "MOVE", "b", 1) == 0


def test_swapdb_and_flush(ctx):
    put(ctx, b"a")
    assert run(ctx, "SWAPDB", 0, "x") == Error("ERR invalid second DB index")
    assert run(ctx, "SWAPDB", "x", 0) == Error("ERR invalid first DB index")
    assert run(ctx, "SWAPDB", 0, 16) == Error("ERR DB index is out of range")
    assert run(ctx, "SWAPDB", 0, 1) == OK
    assert run(ctx, "DBSIZE") == 0
    ctx.select(1)
    assert run(ctx, "DBSIZE") == 1
    assert run(ctx, "FLUSHDB", "async") == OK
    assert run(ctx, "DBSIZE") == 0
    put(ctx, b"x", db=ctx.ks.dbs[3])
    assert run(ctx, "FLUSHALL", "now") == SYNTAX
    assert run(ctx, "FLUSHALL", "SYNC") == OK
    assert ctx.ks.dbs[3].data == {}


# -- OBJECT -----------------------------------------------------------------------------

@pytest.mark.parametrize("value,encoding,refcount", [
    (b"123", b"int", 2147483647), (b"10000", b"int", 1), (b"-5", b"int", 1),
    (b"-0", b"embstr", 1), (b"007", b"embstr", 1), (b"9223372036854775808", b"embstr", 1),
    (b"x" * 44, b"embstr", 1), (b"x" * 45, b"raw", 1), (b"", b"embstr", 1),
])
def test_object_encoding_refcount(ctx, value, encoding, refcount):
    put(ctx, b"k", value)
    assert run(ctx, "OBJECT", "ENCODING", "k") == encoding
    assert run(ctx, "OBJECT", "REFCOUNT", "k") == refcount


def test_object_misc(ctx):
    put(ctx, b"k")
    assert run(ctx, "OBJECT", "ENCODING", "nope") is None
    assert run(ctx, "OBJECT", "FREQ", "nope") is None
    assert run(ctx, "OBJECT", "FREQ", "k").startswith("ERR An LFU maxmemory policy is not selected")
    ctx.ks.clock += 7
    assert run(ctx, "OBJECT", "IDLETIME", "k") == 7
    assert run(ctx, "OBJECT", "IDLETIME", "k") == 7  # OBJECT does not touch the key
    run(ctx, "TOUCH", "k")
    assert run(ctx, "OBJECT", "IDLETIME", "k") == 0
    assert len(run(ctx, "OBJECT", "HELP")) == 15
    assert run(ctx, "OBJECT", "nope") == Error("ERR unknown subcommand 'nope'. Try OBJECT HELP.")


# -- model-based: expiry, deletion, renaming ----------------------------------------------

KEY = st.sampled_from([b"a", b"b", b"c"])


class ExpiryMachine(RuleBasedStateMachine):
    """The engine against a dict of key -> (value, deadline ms or None), on a fake clock."""

    @initialize()
    def setup(self):
        self.now = 1_700_000_000_000
        self.saved = (keyspace_mod.now_ms, keys_mod.now_ms)
        keyspace_mod.now_ms = keys_mod.now_ms = lambda: self.now
        self.ctx = Context(Keyspace())
        self.model = {}

    def teardown(self):
        if hasattr(self, "saved"):
            keyspace_mod.now_ms, keys_mod.now_ms = self.saved

    def live(self, key):
        entry = self.model.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= self.now:
            del self.model[key]
            return None
        return entry

    def run(self, *args):
        return run(self.ctx, *args)

    @rule(key=KEY, value=st.binary(min_size=1, max_size=3))
    def set(self, key, value):
        self.run("SET", key, value)
        self.model[key] = (value, None)

    @rule(ms=st.integers(0, 3000))
    def advance(self, ms):
        self.now += ms

    @rule(keys=st.lists(KEY, min_size=1, max_size=3))
    def delete(self, keys):
        expected = sum(1 for k in set(keys) if self.live(k) is not None)
        for k in keys:
            self.model.pop(k, None)
        assert self.run("DEL", *keys) == expected

    @rule(key=KEY, amount=st.integers(-2, 5), unit=st.sampled_from(["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"]),
          flag=st.sampled_from([None, "NX", "XX", "GT", "LT"]))
    def expire(self, key, amount, unit, flag):
        scale = 1000 if unit in ("EXPIRE", "EXPIREAT") else 1
        if unit == "EXPIRE":
            arg = amount
        elif unit == "PEXPIRE":
            arg = amount * 700
        elif unit == "EXPIREAT":
            arg = self.now // 1000 + amount
        else:
            arg = self.now + amount * 700
        when = arg * scale + (self.now if unit in ("EXPIRE", "PEXPIRE") else 0)
        entry = self.live(key)
        expected = 0
        if entry is not None:
            current = entry[1]
            ok = not ((flag == "NX" and current is not None) or (flag == "XX" and current is None)
                      or (flag == "GT" and (current is None or when <= current))
                      or (flag == "LT" and current is not None and when >= current))
            if ok:
                expected = 1
                if when <= self.now:
                    del self.model[key]
                else:
                    self.model[key] = (entry[0], when)
        args = [unit, key, arg] + ([flag] if flag else [])
        assert self.run(*args) == expected

    @rule(key=KEY)
    def persist(self, key):
        entry = self.live(key)
        expected = 1 if entry is not None and entry[1] is not None else 0
        if expected:
            self.model[key] = (entry[0], None)
        assert self.run("PERSIST", key) == expected

    @rule(src=KEY, dst=KEY, nx=st.booleans())
    def rename(self, src, dst, nx):
        entry = self.live(src)
        reply = self.run("RENAMENX" if nx else "RENAME", src, dst)
        if entry is None:
            assert reply == Error("ERR no such key")
        elif src == dst:
            assert reply == (0 if nx else OK)
        elif nx and self.live(dst) is not None:
            assert reply == 0
        else:
            assert reply == (1 if nx else OK)
            self.model[dst] = entry
            del self.model[src]

    @rule(key=KEY)
    def check_ttl(self, key):
        entry = self.live(key)
        if entry is None:
            expected = (-2, -2, -2, -2)
        elif entry[1] is None:
            expected = (-1, -1, -1, -1)
        else:
            left = entry[1] - self.now
            expected = ((left + 500) // 1000, left, (entry[1] + 500) // 1000, entry[1])
        got = tuple(self.run(c, key) for c in ("TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"))
        assert got == expected

    @invariant()
    def same_keys(self):
        if not hasattr(self, "ctx"):
            return
        live = sorted(k for k in list(self.model) if self.live(k) is not None)
        assert sorted(self.run("KEYS", "*")) == live
        values = {k: self.run("GET", k) for k in live}
        assert values == {k: self.model[k][0] for k in live}


ExpiryMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestExpiryModel = ExpiryMachine.TestCase
