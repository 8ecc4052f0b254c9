"""The command fast path (run_batch), C and Python twins.

Both are checked against the normal path (dispatch.execute + encoder, command by command, each
on the shard owning its keys): same reply bytes, same dicts (order included), same containers
(contents, order and internal state: List type, Set/Hash/ZSet encoding flags, Set's random-pick
index, the SortedList of a ZSet down to its sublists and positional index), same Keyspace
counters; and against each other for where each call stops and what it forwards. SPOP draws
from the random module's generator like the normal path, so each side is seeded alike and
runs the commands in the same order.
"""
import copy
import gc
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastcache.engine import fastpath
from fastcache.engine.context import Context
from fastcache.engine.dispatch import execute
from fastcache.engine.fastpath import native_run_batch, py_run_batch
from fastcache.engine.hashes import Hash
from fastcache.engine.keyspace import Keyspace, now_ms
from fastcache.engine.lists import List
from fastcache.engine.sets import Set
from fastcache.engine.errors import CommandError
from fastcache.engine.zset_type import _PLAIN as plain_decimal
from fastcache.engine.zset_type import ZSet, parse_score
from sortedcontainers import SortedList
from fastcache.protocol.encoder import encode
from fastcache.server import connection_commands  # noqa: F401  (registers PING and ECHO)
from fastcache.engine.slots import key_slot, slot_table

IMPLEMENTATIONS = [py_run_batch]
if native_run_batch is not None:
    IMPLEMENTATIONS.append(native_run_batch)

CLOCK = 4242        # a ks.clock no real access time would have
PAST = 1            # an expiry long gone
FUTURE = 1 << 50    # an expiry far ahead
OWNERS = slot_table(2)


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda fn: fn.__module__)
def run_batch(request):
    return request.param


def test_best_implementation_is_exported():
    assert fastpath.run_batch is (native_run_batch or py_run_batch)


# -- helpers -----------------------------------------------------------------------------

def b(*args):
    return [a if isinstance(a, bytes) else str(a).encode() for a in args]


def fresh(value):
    """A new copy of an entry's value; a function makes it (so that a Set's index, which
    copies drop, can be built the same way for every context)."""
    return value() if callable(value) else copy.deepcopy(value)


def new_ctx(proto=2, entries=()):
    """A fresh context whose db 0 holds entries: (key, value, expiry or None)."""
    ks = Keyspace()
    ks.clock = CLOCK
    ctx = Context(ks, proto=proto)
    for key, value, expiry in entries:
        ctx.db.data[key] = fresh(value)
        if expiry is not None:
            ctx.db.expires[key] = expiry
        ctx.db.atime[key] = 7
    return ctx


def exact(value):
    """value with its floats written out in hex, so that -0.0 and 0.0 differ."""
    if type(value) is float:
        return value.hex()
    if type(value) in (tuple, list):
        return type(value)(exact(item) for item in value)
    return value


def describe(value):
    """A value with whatever of its internal state the fast path must keep as Python does."""
    if type(value) is List:
        return ("List", list(value))
    if type(value) is Set:
        gone = None if value._gone is None else sorted(value._gone)
        return ("Set", list(value), value.hashtable, value._pool, gone)
    if type(value) is Hash:
        return ("Hash", list(value.items()), value.hashtable)
    if type(value) is ZSet:
        order = value.order
        return ("ZSet", exact(list(value.items())), value.big, exact(order._lists),
                exact(order._maxes), order._index, order._len, order._load, order._offset)
    return value


def state(ctx):
    db, ks = ctx.db, ctx.ks
    return ([(key, describe(value)) for key, value in db.data.items()],
            list(db.expires.items()), list(db.atime.items()),
            ks.hits, ks.misses, ks.dirty, ks.expired_keys)


def reference(ctx, commands):
    return [encode(execute(ctx, argv), ctx.proto) for argv in commands]


def keys_of(argv):
    name = argv[0].lower()
    if name in (b"ping", b"echo"):
        return []
    if name == b"mset":
        return argv[1::2]
    return argv[1:] if name in (b"mget", b"exists", b"del") else argv[1:2]


def owner_of(argv, owners, shard):
    """The shard that runs argv: its keys' owner, shard when keyless, None when spread."""
    owned = {owners[key_slot(k)] for k in keys_of(argv)} if owners is not None else ()
    return shard if not owned else owned.pop() if len(owned) == 1 else None


def key_on(owners, shard, skip=()):
    return next(k for k in (b"k%d" % i for i in range(1000))
                if owners[key_slot(k)] == shard and k not in skip)


def shard_contexts(proto, entries, shards):
    """One context per shard (one in all when shards is None), each holding its entries."""
    owners = None if shards is None else slot_table(shards)
    ctxs = [new_ctx(proto) for _ in range(shards or 1)]
    for key, value, expiry in entries:
        db = ctxs[owner_of([b"get", key], owners, 0)].db
        db.data[key] = fresh(value)
        if expiry is not None:
            db.expires[key] = expiry
        db.atime[key] = 7
    return ctxs, owners


def sharded_reference(ctxs, commands, owners, shard, order=None):
    """The normal path, each command on its owner (in the order given by the indexes order,
    if any: where drive ran them); spread ones are the caller's to split."""
    replies = [None] * len(commands)
    for k in range(len(commands)) if order is None else order:
        argv = commands[k]
        owner = owner_of(argv, owners, shard)
        replies[k] = (b"SPREAD" if owner is None else
                      encode(execute(ctxs[owner], argv), ctxs[owner].proto))
    return replies


def drive(run_batch, ctxs, commands, owners=None, shard=0, forwarding=False):
    """The caller's loop: fast path, then the forwarded commands on their shards, then the
    normal path for the command it stopped at (on its owner), repeat.

    Checks each call's results against the contract; returns (replies, calls, order), where
    calls records each call's (start, next_index, executed, forwarded, its raw replies with
    the placeholders, the indexes in commands of what it queued for each shard) and order the
    indexes in commands in the order they ran."""
    ctx = ctxs[shard]
    index = {id(argv): k for k, argv in enumerate(commands)}
    out, calls, order = [], [], []
    i = 0
    while True:
        start, mark = i, len(out)
        fwd = [[] for _ in ctxs] if forwarding else None
        i, executed, forwarded = run_batch(commands, i, out, ctx.db, ctx.ks, ctx.proto,
                                           owners, shard, fwd)
        raw = out[mark:]
        queued = [[index[id(argv)] for argv in queue] for queue in fwd or ()]
        calls.append((start, i, executed, forwarded, raw, queued))
        assert len(raw) == i - start == executed + forwarded
        taken = [0] * len(fwd or ())
        for k, reply in zip(range(start, i), raw):
            owner = owner_of(commands[k], owners, shard)
            if type(reply) is int:          # a placeholder: commands[k] went to fwd[reply]
                assert owner == reply != shard
                assert fwd[reply][taken[reply]] is commands[k]
                taken[reply] += 1
            else:
                assert owner == shard, commands[k]
        assert taken == [len(queue) for queue in fwd or ()] and sum(taken) == forwarded
        order.extend(k for k, reply in zip(range(start, i), raw) if type(reply) is not int)
        for target, queue in enumerate(fwd or ()):
            order.extend(index[id(argv)] for argv in queue)
            replies = iter([encode(execute(ctxs[target], argv), ctx.proto) for argv in queue])
            for j in range(mark, len(out)):
                if out[j] == target and type(out[j]) is int:
                    out[j] = next(replies)
        if i == len(commands):
            return out, calls, order
        order.append(i)
        out.extend(sharded_reference(ctxs, [commands[i]], owners, shard))
        i += 1


def matches_normal_path(run_batch, script, entries=(), proto=2, seed=0):
    """Run script at once on a fresh context, and command by command through the normal path
    on another, each from the same random state: it must all be handled, with the same
    replies and state. The fast context."""
    fast, want = new_ctx(proto, entries), new_ctx(proto, entries)
    out = []
    random.seed(seed)
    assert run_batch(script, 0, out, fast.db, fast.ks, proto, None, 0) == (len(script),
                                                                            len(script), 0)
    random.seed(seed)
    assert out == reference(want, script)
    assert state(fast) == state(want)
    return fast


def run_one(run_batch, ctx, *args):
    """(reply or None if the command was left to Python, executed)."""
    out = []
    _, executed, forwarded = run_batch([b(*args)], 0, out, ctx.db, ctx.ks, ctx.proto, None, 0)
    assert forwarded == 0
    return (out[0] if out else None), executed


# -- replies and effects, command by command -------------------------------------------------

@pytest.mark.parametrize("proto", [2, 3])
def test_handled_commands_match_the_normal_path(run_batch, proto):
    entries = [(b"s", b"hello", None), (b"n", b"41", None), (b"old", b"x", PAST),
               (b"ttl", b"5", FUTURE), (b"h", {b"f": b"v"}, None), (b"big", b"9" * 18, None)]
    script = [b(*c) for c in [
        ("GET", "s"), ("get", "missing"), ("GET", "old"), ("GeT", "ttl"), ("SET", "s", "v2"),
        ("set", "ttl", "7"), ("INCR", "n"), ("DECR", "n"), ("incrby", "n", "-100"),
        ("DECRBY", "n", "9223372036854775000"), ("INCR", "new"), ("DECR", "old"),
        ("INCRBY", "big", "1"), ("MGET", "s", "missing", "h", "old", "n"),
        ("MSET", "a", "1", "b", "2", "a", "3"), ("mget", "a", "b"), ("EXISTS", "a"),
        ("exists", "nope"), ("EXISTS", "h"), ("DEL", "a"), ("DEL", "a"), ("del", "h"),
        ("PING",), ("ECHO", ""), ("echo", "x\r\ny"), ("GET", ""), ("SET", "", ""),
        ("INCRBY", "c", "-9223372036854775808"), ("MGET", "c"),
    ]]
    matches_normal_path(run_batch, script, entries, proto)


@pytest.mark.parametrize("args", [
    ("GET", "h"),                           # WRONGTYPE
    ("INCR", "h"), ("INCR", "text"), ("INCR", "lead0"), ("INCR", "plus"), ("INCR", "max"),
    ("DECR", "min"), ("INCRBY", "max", "1"), ("INCRBY", "n", "1.5"), ("INCRBY", "n", "+1"),
    ("INCRBY", "n", "01"), ("INCRBY", "n", "-0"), ("INCRBY", "n", " 1"), ("INCRBY", "n", ""),
    ("INCRBY", "n", "9223372036854775808"), ("DECRBY", "n", "-9223372036854775808"),
    ("SET", "k", "v", "EX", "10"), ("SET", "k", "v", "NX"), ("SET", "k"), ("GET",),
    ("GET", "a", "b"),
    ("MSET", "a"), ("MSET", "a", "1", "b"), ("MGET",), ("EXISTS", "a", "b"), ("DEL", "a", "b"),
    ("DEL",), ("EXISTS",), ("PING", "hi"), ("ECHO",), ("ECHO", "a", "b"), ("INCR",),
    ("INCR", "n", "1"), ("DECRBY", "n"), ("STRLEN", "s"), ("GETS", "s"), ("G\xc9T", "s"),
    ("UNLINK", "s"), ("SETNX", "s", "v"), ("NOSUCH",),
])
def test_unhandled_commands_are_left_untouched(run_batch, args):
    entries = [(b"h", {b"f": b"v"}, None), (b"text", b"abc", FUTURE), (b"lead0", b"007", None),
               (b"plus", b"+1", None), (b"max", b"9223372036854775807", None),
               (b"min", b"-9223372036854775808", None), (b"n", b"1", None)]
    ctx = new_ctx(2, entries)
    before = state(ctx)
    assert run_one(run_batch, ctx, *args) == (None, 0)
    assert state(ctx) == before


def test_stops_at_the_first_unhandled_and_resumes(run_batch):
    ctx = new_ctx()
    commands = [b("SET", "a", "1"), b("GET", "a"), b("STRLEN", "a"), b("GET", "a"), b("PING")]
    out = []
    assert run_batch(commands, 0, out, ctx.db, ctx.ks, 2, None, 0) == (2, 2, 0)
    assert out == [b"+OK\r\n", b"$1\r\n1\r\n"]
    assert run_batch(commands, 3, out, ctx.db, ctx.ks, 2, None, 0, [[], []]) == (5, 2, 0)
    assert out[2:] == [b"$1\r\n1\r\n", b"+PONG\r\n"]
    assert run_batch(commands, 5, out, ctx.db, ctx.ks, 2, None, 0) == (5, 0, 0)
    assert run_batch(commands, 9, out, ctx.db, ctx.ks, 2, None, 0) == (9, 0, 0)
    assert len(out) == 4


def test_set_stores_the_argument_object_and_clears_the_ttl(run_batch):
    ctx = new_ctx(2, [(b"k", b"old", FUTURE), (b"other", b"x", FUTURE)])
    value = b"v" * 100
    run_batch([[b"SET", b"k", value]], 0, [], ctx.db, ctx.ks, 2, None, 0)
    assert ctx.db.data[b"k"] is value
    assert ctx.db.expires == {b"other": FUTURE}
    assert ctx.db.atime[b"k"] == CLOCK and ctx.ks.dirty == 1


def test_incr_keeps_the_ttl(run_batch):
    ctx = new_ctx(2, [(b"n", b"10", FUTURE)])
    assert run_one(run_batch, ctx, "INCRBY", "n", "5") == (b":15\r\n", 1)
    assert ctx.db.data[b"n"] == b"15" and ctx.db.expires[b"n"] == FUTURE
    assert run_one(run_batch, ctx, "DECRBY", "n", "9223372036854775807") == (
        b":-9223372036854775792\r\n", 1)


def test_expired_keys_count_once(run_batch):
    ctx = new_ctx(2, [(b"a", b"1", PAST), (b"b", b"2", PAST), (b"c", b"3", now_ms() + 10**9)])
    out = []
    run_batch([b("GET", "a"), b("EXISTS", "b"), b("GET", "b"), b("GET", "c")], 0, out,
              ctx.db, ctx.ks, 3, None, 0)
    assert out == [b"_\r\n", b":0\r\n", b"_\r\n", b"$1\r\n3\r\n"]
    assert (ctx.ks.expired_keys, ctx.ks.misses, ctx.ks.hits) == (2, 3, 1)
    assert list(ctx.db.data) == [b"c"] and list(ctx.db.expires) == [b"c"]


def test_other_shards_keys_stop_the_batch(run_batch):
    ctx = new_ctx()
    mine = [k for k in (b"k%d" % i for i in range(100)) if OWNERS[key_slot(k)] == 1][:2]
    theirs = [k for k in (b"k%d" % i for i in range(100)) if OWNERS[key_slot(k)] == 0][:1]
    tagged = b"{%s}x" % mine[0]             # a hash tag routes like its body
    ok = [[b"SET", mine[0], b"v"], [b"GET", tagged], [b"MGET", mine[0], mine[1], tagged],
          [b"MSET", mine[1], b"1", tagged, b"2"], [b"PING"], [b"ECHO", theirs[0]]]
    for bad in ([b"GET", theirs[0]], [b"MGET", mine[0], theirs[0]],
                [b"MSET", mine[0], b"1", theirs[0], b"2"], [b"DEL", theirs[0]],
                [b"INCRBY", theirs[0], b"1"], [b"SET", theirs[0], b"v"]):
        out = []
        assert run_batch(ok + [bad], 0, out, ctx.db, ctx.ks, 2, OWNERS, 1) == (len(ok),
                                                                               len(ok), 0)
        assert len(out) == len(ok)
        before = state(ctx)
        assert run_batch([bad], 0, out, ctx.db, ctx.ks, 2, OWNERS, 1) == (0, 0, 0)
        assert state(ctx) == before and theirs[0] not in ctx.db.data
        if keys_of(bad) == [theirs[0]]:      # its owner runs it
            assert run_batch([bad], 0, out, ctx.db, ctx.ks, 2, OWNERS, 0) == (1, 1, 0)
            ctx.db.data.pop(theirs[0], None)


def test_forwarding_example(run_batch):
    """Local GET, GET of shard 1's key, local SET with options (stops): the brief's example."""
    ctx = new_ctx(2, [(b"b", b"vb", None)])
    remote = key_on(OWNERS, 1)
    commands = [b("GET", "b"), [b"GET", remote], b("SET", "b", "v", "EX", "10")]
    out, fwd = [], [[], []]
    assert run_batch(commands, 0, out, ctx.db, ctx.ks, 2, OWNERS, 0, fwd) == (2, 1, 1)
    assert out == [b"$2\r\nvb\r\n", 1]
    assert fwd == [[], [[b"GET", remote]]] and fwd[1][0] is commands[1]
    assert ctx.db.data == {b"b": b"vb"} and (ctx.ks.hits, ctx.ks.misses) == (1, 0)


def test_forwarded_commands_are_queued_unchecked(run_batch):
    """Any handled shape with all keys on one other shard is forwarded as it is; the owner's
    normal path produces its errors. Spread keys and other shapes stop, as without fwd."""
    owners = slot_table(3)
    k0, k1, k2 = (key_on(owners, s) for s in range(3))
    k1b = key_on(owners, 1, skip=[k1])
    forwarded = [[b"INCRBY", k1, b"notanumber"], [b"get", k2], [b"SeT", k1, b"v"],
                 [b"DECRBY", k2, b"-9223372036854775808"], [b"MGET", k1, k1b, k1],
                 [b"MSET", k2, b"1", k2, b"2"], [b"DEL", k1], [b"EXISTS", k2], [b"INCR", k1],
                 [b"DECR", k2], [b"MGET", k2]]
    local = [[b"PING"], [b"ECHO", k1], [b"GET", k0]]
    ctx = new_ctx(2, [(k0, {b"f": b"v"}, None)])
    commands = [list(argv) for argv in forwarded + local]
    out, fwd = [], [[], [], []]
    assert run_batch(commands, 0, out, ctx.db, ctx.ks, 2, owners, 0, fwd) == (
        len(commands) - 1, 2, len(forwarded))      # GET k0: WRONGTYPE, left to Python
    assert out == [owner_of(argv, owners, 0) for argv in forwarded] + [
        b"+PONG\r\n", b"$%d\r\n%s\r\n" % (len(k1), k1)]
    assert [[id(argv) for argv in queue] for queue in fwd] == [
        [id(argv) for argv in commands[:len(forwarded)] if owner_of(argv, owners, 0) == s]
        for s in range(3)]
    assert [len(queue) for queue in fwd] == [0, 5, 6]
    assert ctx.ks.dirty == ctx.ks.hits == ctx.ks.misses == 0 and list(ctx.db.data) == [k0]
    for stop in ([b"SET", k1, b"v", b"NX"], [b"MGET", k1, k2], [b"MSET", k1, b"1", k0, b"2"],
                 [b"MSET", k1, b"1", k1], [b"DEL", k1, k1], [b"GET"], [b"STRLEN", k1],
                 [b"INCRBY", k2]):
        out, fwd = [], [[], [], []]
        assert run_batch([stop], 0, out, ctx.db, ctx.ks, 2, owners, 0, fwd) == (0, 0, 0)
        assert out == [] and fwd == [[], [], []]


def test_container_commands_forward_by_shape(run_batch):
    """Name and argument count decide, as for the string commands: a wrong type, a bad index
    or a missing pair's value is the owner's to report; a wrong argument count stops here."""
    owners = slot_table(3)
    k0, k1, k2 = (key_on(owners, s) for s in range(3))
    forwarded = [[b"LPUSH", k1, b"a", b"b"], [b"rpush", k2, b"a"], [b"LPOP", k1], [b"RPOP", k2],
                 [b"LLEN", k1], [b"LRANGE", k2, b"x", b"01"], [b"SADD", k1, b"m"],
                 [b"SCARD", k2], [b"SISMEMBER", k1, b"m"], [b"HSET", k2, b"f", b"v", b"g", b"w"],
                 [b"HGET", k1, b"f"]]
    ctx = new_ctx(2, [(k0, b"str", None)])
    out, fwd = [], [[], [], []]
    assert run_batch(forwarded + [[b"LLEN", k0]], 0, out, ctx.db, ctx.ks, 2, owners, 0,
                     fwd) == (len(forwarded), 0, len(forwarded))     # LLEN k0: WRONGTYPE
    assert out == [owner_of(argv, owners, 0) for argv in forwarded]
    assert fwd == [[], [a for a in forwarded if a[1] == k1], [a for a in forwarded if a[1] == k2]]
    assert all(x is y for x, y in zip(fwd[1] + fwd[2], [a for a in forwarded if a[1] == k1] +
                                      [a for a in forwarded if a[1] == k2]))
    assert state(ctx) == state(new_ctx(2, [(k0, b"str", None)]))
    for stop in ([b"LPUSH", k1], [b"LPOP", k1, b"2"], [b"LRANGE", k2, b"0"], [b"SADD", k1],
                 [b"SCARD", k2, k2], [b"HSET", k2, b"f", b"v", b"g"], [b"HGET", k1],
                 [b"HSET", k1, b"f"]):
        out, fwd = [], [[], [], []]
        assert run_batch([stop], 0, out, ctx.db, ctx.ks, 2, owners, 0, fwd) == (0, 0, 0)
        assert out == [] and fwd == [[], [], []]


def test_forwarding_needs_a_slot_table(run_batch):
    ctx = new_ctx()
    out, fwd = [], [[], []]
    assert run_batch([b("SET", "a", "1"), b("GET", "b")], 0, out, ctx.db, ctx.ks, 2, None, 0,
                     fwd) == (2, 2, 0)
    assert out == [b"+OK\r\n", b"$-1\r\n"] and fwd == [[], []]


def test_counters_add_to_existing_values(run_batch):
    ctx = new_ctx(2, [(b"a", b"1", None)])
    ks = ctx.ks
    ks.hits, ks.misses, ks.dirty, ks.expired_keys = 10, 20, 30, 40
    run_batch([b("GET", "a"), b("GET", "z"), b("SET", "a", "2")], 0, [], ctx.db, ks, 2, None, 0)
    assert (ks.hits, ks.misses, ks.dirty, ks.expired_keys) == (11, 21, 31, 40)


# -- lists, sets and hashes --------------------------------------------------------------------

def short_list():
    return List([b"x", b"1", b"y"])


def one_element():
    return List([b"only"])


def int_set():
    return Set([b"1", b"2", b"-3"])             # an intset


def text_set():
    return Set([b"a", b"b"])                    # a hashtable


def full_intset():
    return Set(b"%d" % i for i in range(511))  # an intset one member short of its limit


def indexed_set():
    """A set whose random-pick index is built (SPOP/SRANDMEMBER did it)."""
    value = Set(b"m%d" % i for i in range(70))
    value.population()
    assert value._pool is not None
    return value


def stale_set():
    """An indexed set ten of whose members were removed since (SREM): stale index entries."""
    value = indexed_set()
    value.remove_members([b"m%d" % i for i in range(10)])
    assert len(value._gone) == 10
    return value


def small_hash():
    return Hash({b"f": b"v", b"g": b"1"})


def full_hash():
    return Hash({b"f%d" % i: b"v" for i in range(511)})   # a listpack one field short


def odd_list():
    return List([1, b"x", 2])                   # ends that are not strings (never stored)


def odd_hash():
    return Hash({b"f": 5, b"g": b"v"})          # a field value that is not a string


def zset_of(scores, load=None, indexed=False):
    """A ZSet of member -> score built through ZSet.insert; its SortedList reset to sublists
    of load (so that a few members split and merge them), its positional index built."""
    value = ZSet()
    for member, score in scores.items():
        value.insert(member, score)
    if load is not None:
        value.order._reset(load)
    if indexed:
        value.order._build_index()              # as ZRANK, ZRANGE & co. may
        assert value.order._index
    return value


def small_zset():
    return zset_of({b"a": 1.0, b"b": 2.5, b"c": -3.0, b"z": -0.0})    # a listpack


def big_zset():
    """A skiplist (it got a long member) that keeps -0 as -0."""
    value = zset_of({b"a": 1.0, LONG: 2.0})
    value.insert(b"neg0", -0.0)
    value.insert(b"n", -0.0)
    return value


def full_zset():
    return zset_of({b"m%d" % i: float(i % 7) for i in range(128)})  # a listpack at its limit


def split_zset():
    """Sublists of 4 and a built index: adds split sublists, removes merge them."""
    return zset_of({b"m%d" % i: float(i // 3) for i in range(20)}, load=4, indexed=True)


def odd_zset():
    value = zset_of({b"a": 1.0})
    dict.__setitem__(value, b"i", 2)            # a score that is not a float (never stored)
    value.order.add((2, b"i"))
    return value


CONTAINERS = [short_list, one_element, int_set, text_set, full_intset, indexed_set, stale_set,
              small_hash, full_hash, small_zset, big_zset, full_zset, split_zset]
LONG = b"L" * 65                                # past hash-max-listpack-value


@pytest.mark.parametrize("proto", [2, 3])
def test_container_commands_match_the_normal_path(run_batch, proto):
    entries = [(b"l", short_list, None), (b"one", one_element, FUTURE), (b"old", short_list, PAST),
               (b"si", int_set, None), (b"st", text_set, FUTURE), (b"full", full_intset, None),
               (b"ix", indexed_set, None), (b"h", small_hash, None), (b"fh", full_hash, None),
               (b"oldh", small_hash, PAST), (b"s", b"str", None), (b"l2", short_list, None),
               (b"l3", short_list, None), (b"l4", short_list, None), (b"h2", small_hash, None),
               (b"h3", small_hash, None), (b"s2", text_set, None), (b"s3", int_set, None)]
    script = [b(*c) for c in [
        ("RPOP", "l2"), ("LRANGE", "l3", "1", "1"), ("LLEN", "l4"), ("HGET", "h2", "f"),
        ("HSET", "h3", "g", "2"), ("SCARD", "s2"), ("SISMEMBER", "s3", "1"),
        ("LPUSH", "l", "a"), ("rpush", "l", "b", "c"), ("LPUSH", "l", "d", "e", "f"),
        ("LRANGE", "l", "0", "-1"), ("LRANGE", "l", "-3", "2"), ("lrange", "l", "5", "100"),
        ("LRANGE", "l", "-100", "1"), ("LRANGE", "l", "3", "2"), ("LRANGE", "l", "9", "9"),
        ("LRANGE", "l", "-9223372036854775808", "9223372036854775807"), ("LLEN", "l"),
        ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "one"), ("LPOP", "one"), ("RPOP", "nolist"),
        ("LLEN", "nolist"), ("LRANGE", "nolist", "0", "-1"), ("LPOP", "old"), ("LLEN", "old"),
        ("RPUSH", "new", "1"), ("LPUSH", "new2", "1", "2", "3"), ("LRANGE", "new2", "1", "-1"),
        ("SADD", "si", "4"), ("SADD", "si", "4", "1"), ("SADD", "si", "x"), ("SCARD", "si"),
        ("SADD", "st", "c"), ("SADD", "full", "600", "601"), ("SADD", "ns", "1", "2", "1"),
        ("SADD", "ns2", "007"), ("SISMEMBER", "si", "x"), ("sismember", "si", "nope"),
        ("SISMEMBER", "nos", "x"), ("SCARD", "nos"), ("SCARD", "ix"), ("SISMEMBER", "ix", "m1"),
        ("HSET", "h", "f", "w"), ("HSET", "h", "new", "1", "f", "x", "new", "2"),
        ("HSET", "fh", "a", "1"), ("HSET", "fh", "b", "2"), ("HSET", "nh", "f", LONG),
        ("hset", "nh2", LONG, "v"), ("HSET", "nh3", "a", "1"), ("HGET", "h", "f"),
        ("HGET", "h", "nofield"), ("HGET", "noh", "f"), ("HGET", "oldh", "f"),
        ("LPOP", "l"), ("LPOP", "l"), ("LPOP", "l"), ("LPOP", "l"), ("LPOP", "l"), ("LPOP", "l"),
        ("LPOP", "l"), ("LLEN", "l"),
    ]]
    data = matches_normal_path(run_batch, script, entries, proto).db.data
    assert (data[b"full"].hashtable, data[b"si"].hashtable, data[b"ns"].hashtable) == (
        True, True, False)
    assert (data[b"fh"].hashtable, data[b"nh"].hashtable, data[b"nh3"].hashtable) == (
        True, True, False)
    assert b"l" not in data and b"one" not in data


def test_new_keys_get_the_families_containers(run_batch):
    ctx = new_ctx()
    script = [b("RPUSH", "l", "a"), b("SADD", "s", "1"), b("SADD", "t", "x"),
              b("HSET", "h", "f", "v")]
    assert run_batch(script, 0, [], ctx.db, ctx.ks, 2, None, 0)[0] == len(script)
    assert [type(v) for v in ctx.db.data.values()] == [List, Set, Set, Hash]
    assert reference(ctx, [b("TYPE", "l"), b("TYPE", "s"), b("TYPE", "h")]) == [
        b"+list\r\n", b"+set\r\n", b"+hash\r\n"]
    assert reference(ctx, [b("OBJECT", "ENCODING", key) for key in "lsth"]) == [
        encode(name, 2) for name in (b"quicklist", b"intset", b"hashtable", b"listpack")]


@pytest.mark.parametrize("args", [
    ("LPUSH", "s", "x"), ("RPUSH", "h", "x"), ("LPOP", "s"), ("RPOP", "si"), ("LLEN", "h"),
    ("LRANGE", "s", "0", "1"), ("SADD", "l", "x"), ("SCARD", "l"), ("SISMEMBER", "h", "f"),
    ("HSET", "l", "f", "v"), ("HGET", "si", "f"),                       # WRONGTYPE
    ("LPUSH", "l"), ("LPOP", "l", "1"), ("RPOP", "l", "0"), ("LPOP",), ("LLEN", "l", "x"),
    ("LRANGE", "l", "0"), ("LRANGE", "l", "0", "1", "2"), ("SADD", "si"), ("SCARD",),
    ("SISMEMBER", "si"), ("SISMEMBER", "si", "1", "2"), ("HSET", "h", "f"),
    ("HSET", "h", "f", "v", "g"), ("HGET", "h"), ("HGET", "h", "f", "g"),    # arity, options
    ("LRANGE", "l", "01", "1"), ("LRANGE", "l", "0", "+1"), ("LRANGE", "l", "-0", "1"),
    ("LRANGE", "l", "0", "1.0"), ("LRANGE", "l", "", "1"), ("LRANGE", "old", "x", "1"),
    ("LRANGE", "l", "0", "9223372036854775808"),                     # not a canonical int64
    ("LPOP", "odd"), ("RPOP", "odd"), ("LRANGE", "odd", "0", "0"), ("LRANGE", "odd", "1", "-1"),
    ("HGET", "oddh", "f"), ("ZSCORE", "oddz", "i"), ("ZINCRBY", "oddz", "1", "i"),
    ("SPOP", "odds"),                                   # values and scores of another type
    ("LPUSHX", "l", "x"), ("SREM", "si", "1"), ("HDEL", "h", "f"), ("HMSET", "h", "f", "v"),
    ("LINDEX", "l", "0"), ("HGETALL", "h"), ("SMEMBERS", "si"), ("SRANDMEMBER", "si"),
    ("ZRANK", "z", "a"), ("ZREM", "z", "a"), ("ZRANGE", "z", "0", "-1"), ("ZMSCORE", "z", "a"),
    ("SPOP", "l"), ("ZADD", "s", "1", "m"), ("ZADD", "si", "1", "m"), ("ZINCRBY", "h", "1", "m"),
    ("ZSCORE", "si", "m"), ("ZCARD", "l"),                                  # WRONGTYPE
    ("SPOP",), ("SPOP", "si", "1"), ("SPOP", "si", "1", "2"), ("ZADD", "z", "1"),
    ("ZADD", "z", "1", "m", "2"), ("ZADD", "z", "NX", "1", "m"), ("ZADD", "z", "XX", "1"),
    ("ZADD", "z", "CH", "1", "INCR", "m"), ("ZADD", "z", "gt", "1", "lt", "m"),
    ("ZINCRBY", "z", "1"), ("ZINCRBY", "z", "1", "m", "x"), ("ZSCORE", "z"), ("ZCARD",),
    ("ZCARD", "z", "z"),                                                    # arity, options
    ("ZADD", "z", "inf", "m"), ("ZADD", "z", "-inf", "m"), ("ZADD", "z", "+inf", "m"),
    ("ZADD", "z", "nan", "m"), ("ZADD", "z", " 1", "m"), ("ZADD", "z", "1 ", "m"),
    ("ZADD", "z", "1e400", "m"), ("ZADD", "z", "-1e400", "m"), ("ZADD", "z", "1e-400", "m"),
    ("ZADD", "z", "0.5e-400", "m"), ("ZADD", "z", "-.01e-330", "m"),
    ("ZADD", "z", "0x10", "m"), ("ZADD", "z", "1_0", "m"), ("ZADD", "z", "", "m"),
    ("ZADD", "z", ".", "m"), ("ZADD", "z", "1e", "m"), ("ZADD", "z", "1e+", "m"),
    ("ZADD", "z", "1\x00", "m"), ("ZADD", "z", "1", "m", "x", "n"), ("ZADD", "old", "x", "m"),
    ("ZINCRBY", "z", "inf", "m"), ("ZINCRBY", "z", "", "m"), ("ZINCRBY", "zinf", "-inf", "a"),
    ("ZINCRBY", "zinf", "inf", "b"),                     # scores for Python (or NaN sums)
])
def test_unhandled_container_commands_are_left_untouched(run_batch, args):
    entries = [(b"l", short_list, None), (b"si", int_set, None), (b"h", small_hash, None),
               (b"s", b"str", None), (b"ix", indexed_set, None), (b"odd", odd_list, None),
               (b"oddh", odd_hash, None), (b"old", short_list, PAST), (b"z", small_zset, None),
               (b"oddz", odd_zset, None), (b"odds", lambda: Set([1], hashtable=True), None),
               (b"zinf", lambda: zset_of({b"a": float("inf"), b"b": float("-inf")}), None)]
    ctx = new_ctx(2, entries)
    before = state(ctx)
    assert run_one(run_batch, ctx, *args) == (None, 0)
    assert state(ctx) == before


def test_odd_values_elsewhere_do_not_stop(run_batch):
    """Only what a command reads has to be a string."""
    entries = [(b"odd", odd_list, None), (b"oddh", odd_hash, None)]
    script = [b("LRANGE", "odd", "1", "1"), b("LLEN", "odd"), b("HGET", "oddh", "g"),
              b("HSET", "oddh", "x", "y"), b("LPUSH", "odd", "a"), b("LPOP", "odd")]
    matches_normal_path(run_batch, script, entries)


def test_hset_converts_before_inserting(run_batch):
    """A long field or value turns a listpack into a hashtable, a long value of a field that is
    replaced too; 513 fields do it once the pairs are in."""
    for script in ([b("HSET", "h", "a", "1", "b", LONG)], [b("HSET", "h", "a", LONG, "a", "1")],
                   [[b"HSET", b"h"] + [x for i in range(513) for x in (b"f%d" % i, b"v")],
                    [b"HSET", b"h", b"f0", b"w"]]):
        assert matches_normal_path(run_batch, script).db.data[b"h"].hashtable


def test_sadd_converts_past_the_intset_limit(run_batch):
    script = [b("SADD", "s", "1"), b("SADD", "s", "511"), b("SADD", "s", "512")]
    fast = matches_normal_path(run_batch, script, [(b"s", full_intset, None)])
    assert fast.db.data[b"s"].hashtable
    out = []
    big = [b"SADD", b"t"] + [b"%d" % i for i in range(513)]
    run_batch([big], 0, out, fast.db, fast.ks, 2, None, 0)
    assert fast.db.data[b"t"].hashtable
    run_batch([[b"SADD", b"u", b"1", b"1"] + [b"2"] * 511], 0, out, fast.db, fast.ks, 2, None, 0)
    assert fast.db.data[b"u"].hashtable          # Redis looks at the argument count


def test_push_and_pop_keep_the_ttl_and_drop_an_emptied_list(run_batch):
    ctx = new_ctx(2, [(b"l", one_element, FUTURE), (b"k", short_list, FUTURE)])
    out = []
    run_batch([b("RPUSH", "l", "a"), b("LPOP", "l"), b("RPOP", "l")], 0, out, ctx.db, ctx.ks, 2,
              None, 0)
    assert out == [b":2\r\n", b"$4\r\nonly\r\n", b"$1\r\na\r\n"]
    assert list(ctx.db.data) == list(ctx.db.expires) == list(ctx.db.atime) == [b"k"]
    assert ctx.ks.dirty == 3 and ctx.ks.hits == ctx.ks.misses == 0


def test_lrange_walks_from_the_nearer_end(run_batch):
    ctx = new_ctx(2, [(b"l", lambda: List(b"%d" % i for i in range(300)), None)])
    for first, last in ((0, 9), (290, 299), (-5, -1), (100, 200), (150, 299), (0, -1)):
        out = []
        run_batch([b("LRANGE", "l", first, last)], 0, out, ctx.db, ctx.ks, 2, None, 0)
        assert out == [encode(list(ctx.db.data[b"l"])[first:last % 300 + 1], 2)]


# -- model-based: random batches against the normal path and between the twins ---------------

KEYS = [b"a", b"b", b"c", b"d", b"n", b"{t}1", b"{t}2", b"", b"k\r\n"]     # on every shard of 2..4
NUMBERS = [b"0", b"1", b"-1", b"41", b"9223372036854775807", b"-9223372036854775808",
           b"9223372036854775808", b"-0", b"007", b"+3", b" 4", b"1.5", b""]
MEMBERS = [b"1", b"2", b"600", b"-7", b"007", b"x", b"m1", b"f", b"g", b"a", b"n", LONG]
# ZADD/ZINCRBY scores: plain decimals the fast path parses, and texts it leaves to Python
SCORES = [b"0", b"1", b"-1", b"2.5", b"-0", b"0.0", b"-0.0", b"000000012345", b"1e3", b".5",
          b"5.", b"+2", b"-3", b"1e-310", b"123456789012345678", b"0.1", b"inf", b"-inf",
          b"nan", b" 1", b"1 ", b"1e400", b"1e-400", b"0.1e-400", b"-.001e-330", b"0e-400",
          b"0x10", b"", b".", b"1e", b"1_0", b"NX",
          b"xx", b"CH", b"INCR", b"GT", b"lt"]
INDEXES = [b"0", b"1", b"-1", b"2", b"-2", b"5", b"-100", b"100", b"01", b"+1", b"x",
           b"9223372036854775807", b"-9223372036854775808"]
names = st.sampled_from(["get", "set", "incr", "decr", "incrby", "decrby", "mget", "mset",
                         "exists", "del", "ping", "echo", "strlen", "append", "getset",
                         "pexpireat", "persist", "setnx", "unknown", "lpush", "rpush", "lpop",
                         "rpop", "llen", "lrange", "sadd", "scard", "sismember", "hset", "hget",
                         "lpushx", "lindex", "srem", "hdel", "hlen", "hsetnx", "lpos",
                         "spop", "srandmember", "smembers", "zadd", "zincrby", "zscore",
                         "zcard", "zrank", "zrem", "zrange", "zpopmin"]).flatmap(
    lambda name: st.lists(st.booleans(), min_size=len(name), max_size=len(name)).map(
        lambda ups: "".join(c.upper() if u else c for c, u in zip(name, ups)).encode()))
keys = st.sampled_from(KEYS)
values = st.one_of(st.sampled_from(NUMBERS), st.binary(max_size=12))
members = st.one_of(st.sampled_from(MEMBERS), values)
scores = st.one_of(st.sampled_from(SCORES), st.from_regex(
    rb"[+-]?[0-9]{0,3}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,3})?", fullmatch=True))
args = st.one_of(keys, values, members, scores,
                 st.sampled_from([b"NX", b"XX", b"GET", b"KEEPTTL"]))
anything = st.builds(lambda name, rest: [name] + rest, names, st.lists(args, max_size=5))
pairs = st.lists(st.tuples(keys, values), min_size=1, max_size=3)
strings = st.one_of(
    st.builds(lambda name, key: [name, key], st.sampled_from(
        [b"GET", b"get", b"INCR", b"decr", b"EXISTS", b"DEL", b"ECHO"]), keys),
    st.builds(lambda name, key, arg: [name, key, arg],
              st.sampled_from([b"SET", b"incrby", b"DECRBY"]), keys, values),
    st.builds(lambda keys: [b"MGET"] + keys, st.lists(keys, min_size=1, max_size=3)),
    st.builds(lambda pairs: [b"MSET"] + [x for pair in pairs for x in pair], pairs),
    st.just([b"PING"]))
containers = st.one_of(
    st.builds(lambda name, key, items: [name, key] + items,
              st.sampled_from([b"LPUSH", b"rpush", b"SADD"]), keys,
              st.lists(members, min_size=1, max_size=3)),
    st.builds(lambda name, key: [name, key],
              st.sampled_from([b"LPOP", b"rpop", b"LLEN", b"SCARD"]), keys),
    st.builds(lambda name, key, member: [name, key, member],
              st.sampled_from([b"SISMEMBER", b"HGET"]), keys, members),
    st.builds(lambda key, first, last: [b"LRANGE", key, first, last], keys,
              st.sampled_from(INDEXES), st.sampled_from(INDEXES)),
    st.builds(lambda key, pairs: [b"HSET", key] + [x for pair in pairs for x in pair], keys,
              st.lists(st.tuples(members, members), min_size=1, max_size=3)))
zsets = st.one_of(
    st.builds(lambda name, key: [name, key], st.sampled_from([b"SPOP", b"zcard", b"Spop"]),
              keys),
    st.builds(lambda key, pairs: [b"ZADD", key] + [x for pair in pairs for x in pair], keys,
              st.lists(st.tuples(scores, members), min_size=1, max_size=3)),
    st.builds(lambda key, score, member: [b"ZINCRBY", key, score, member], keys, scores,
              members),
    st.builds(lambda key, member: [b"ZSCORE", key, member], keys, members))
handled = st.one_of(strings, containers, containers, zsets, zsets)
commands = st.one_of(handled, handled, handled, anything)       # mostly the fast shapes
stored = st.one_of(st.sampled_from(NUMBERS), st.binary(max_size=8),
                   st.just({b"f": b"v"}), st.just([b"x"]), st.sampled_from(CONTAINERS),
                   st.sampled_from(CONTAINERS), st.sampled_from(CONTAINERS))
expiries = st.sampled_from([None, None, PAST, FUTURE])
entries = st.lists(st.tuples(keys, stored, expiries), max_size=len(KEYS),
                   unique_by=lambda e: e[0])
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


# (shards or None for no slot table, the shard running the batch)
layouts = st.sampled_from([(None, 0), (1, 0)] + [(n, shard) for n in (2, 3, 4)
                                                 for shard in range(n)])
forwarding = st.sampled_from([True, True, False])
seeds = st.integers(0, 1 << 16)
SHARDED = settings(SETTINGS, max_examples=300)


@SHARDED
@given(entries, st.lists(commands, max_size=25), st.sampled_from([2, 3]), layouts, forwarding,
       seeds)
def test_random_batches_match_the_normal_path(run_batch, entries, script, proto, layout,
                                              forwarding, seed):
    (shards, shard), script = layout, [list(argv) for argv in script]
    fast, owners = shard_contexts(proto, entries, shards)
    want, _ = shard_contexts(proto, entries, shards)
    random.seed(seed)
    out, _, order = drive(run_batch, fast, script, owners, shard, forwarding)
    random.seed(seed)
    assert out == sharded_reference(want, script, owners, shard, order)
    assert [state(ctx) for ctx in fast] == [state(ctx) for ctx in want]


@pytest.mark.skipif(native_run_batch is None, reason="fastcache._native not built")
@SHARDED
@given(entries, st.lists(commands, max_size=25), st.sampled_from([2, 3]), layouts, forwarding,
       seeds)
def test_twins_stop_and_forward_alike(entries, script, proto, layout, forwarding, seed):
    (shards, shard), script = layout, [list(argv) for argv in script]
    results = []
    for impl in (py_run_batch, native_run_batch):
        ctxs, owners = shard_contexts(proto, entries, shards)
        random.seed(seed)
        results.append(drive(impl, ctxs, script, owners, shard, forwarding)
                       + ([state(ctx) for ctx in ctxs],))
    assert results[0] == results[1]


# -- sorted sets and SPOP ----------------------------------------------------------------------

def check_orders(ctx):
    """Every ZSet's SortedList passes its own consistency check."""
    for value in ctx.db.data.values():
        if type(value) is ZSet:
            value.order._check()


@pytest.mark.parametrize("proto", [2, 3])
def test_zset_commands_match_the_normal_path(run_batch, proto):
    entries = [(b"z", small_zset, None), (b"big", big_zset, None), (b"full", full_zset, None),
               (b"split", split_zset, None), (b"old", small_zset, PAST),
               (b"ttl", small_zset, FUTURE), (b"s", b"str", None), (b"z2", small_zset, None),
               (b"ix", split_zset, None), (b"odd", odd_zset, None), (b"ix2", split_zset, None)]
    script = [b(*c) for c in [
        ("ZSCORE", "z2", "b"), ("ZCARD", "z2"), ("ZADD", "ix", "2.5", "new", "100", "m0"),
        ("ZINCRBY", "ix", "-1", "m9"),                  # counted in the index, no split
        ("ZADD", "odd", "1.5", "b", "3", "c"), ("ZADD", "odd", "2", "i", "2", "j"),
        ("ZADD", "odd", "7", "i"), ("ZADD", "odd", "2", "k"),     # Python compares an int
        ("ZADD", "tail", "1", "a", "2", "b", "3", "c"), ("ZADD", "tail", "2.5", "c"),
        ("ZADD", "ix2", "0.5", "m3"),       # a sublist's last item moves below its old max
        ("ZADD", "z", "1", "a"), ("ZADD", "z", "5", "a"), ("ZADD", "z", "-0", "c"),
        ("ZADD", "z", "0", "z"), ("ZADD", "z", "1", "new", "2", "new"), ("ZSCORE", "z", "c"),
        ("zadd", "z", "3", LONG), ("ZADD", "z", "-0", "neg"), ("ZSCORE", "z", "neg"),
        ("ZSCORE", "z", "a"), ("zscore", "z", "nomember"), ("ZSCORE", "nokey", "m"),
        ("ZCARD", "z"), ("ZCARD", "nokey"), ("ZADD", "full", "1", "x"),
        ("ZADD", "big", "-0", "a"), ("ZSCORE", "big", "a"), ("ZADD", "big", "0", "a"),
        ("ZINCRBY", "big", "0", "n"), ("ZINCRBY", "big", "-0", "n"), ("ZSCORE", "big", "n"),
        ("ZINCRBY", "z", "2.5", "b"), ("ZINCRBY", "z", "-5", "b"), ("zincrby", "newz", "-0", "m"),
        ("ZSCORE", "newz", "m"), ("ZINCRBY", "z", "1e308", "q"), ("ZINCRBY", "z", "1e308", "q"),
        ("ZINCRBY", "z", "1", "q"), ("ZSCORE", "z", "q"), ("ZINCRBY", "z", "0.1", "t"),
        ("ZINCRBY", "z", "0.2", "t"), ("ZADD", "old", "1", "a"), ("ZCARD", "old"),
        ("ZADD", "ttl", "7", "a"), ("ZADD", "ttl", "7", "a"),
        ("ZADD", "z3", "000000012345", "element:1", "1e3", "x", ".5", "y", "5.", "w", "+2", "v",
         "123456789012345678", "u", "1e-310", "t", "-0.000", "s"),
        ("ZADD", "many") + tuple(x for i in range(40) for x in (str(i % 9), "m%d" % (i % 30))),
    ]]
    # moves through sublists of 4: splits, merges, an emptied sublist, the index kept up
    script += [b("ZADD", "split", (i * 7) % 11 - 3, "m%d" % i) for i in range(20)]
    script += [b("ZADD", "split", i, "n%d" % i, -i, "m%d" % (19 - i)) for i in range(12)]
    script += [b("ZINCRBY", "split", "0.5", "m%d" % i) for i in range(0, 20, 3)]
    script += [b("ZADD", "split", "100", "m%d" % i) for i in range(20)]
    script += [b("ZADD", "split", "-100", "m%d" % i) for i in range(0, 20, 2)]
    fast = matches_normal_path(run_batch, script, entries, proto)
    check_orders(fast)
    data = fast.db.data
    assert (data[b"z"].big, data[b"full"].big, data[b"newz"].big, data[b"z3"].big) == (
        True, True, False, False)
    assert data[b"ix"].order._index and len(data[b"ix"].order._lists) == 5


def test_zadd_creates_zsets_and_keeps_the_ttl(run_batch):
    ctx = new_ctx(2, [(b"ttl", small_zset, FUTURE)])
    script = [b("ZADD", "k", "1", "a"), b("ZINCRBY", "k2", "2", "b"), b("ZADD", "ttl", "9", "x")]
    assert run_batch(script, 0, [], ctx.db, ctx.ks, 2, None, 0)[0] == len(script)
    assert [type(v) for v in ctx.db.data.values()] == [ZSet, ZSet, ZSet]
    assert ctx.db.expires == {b"ttl": FUTURE} and ctx.ks.dirty == 3
    assert reference(ctx, [b("TYPE", "k"), b("OBJECT", "ENCODING", "k")]) == [
        b"+zset\r\n", encode(b"listpack", 2)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spop_matches_the_normal_path(run_batch, seed):
    def stale():
        value = indexed_set()
        set.add(value, b"extra")                # behind Set's back: the index no longer fits
        return value

    entries = [(b"si", int_set, None), (b"st", text_set, FUTURE), (b"full", full_intset, None),
               (b"ix", indexed_set, None), (b"stale", stale, None), (b"one", text_set, FUTURE),
               (b"old", int_set, PAST), (b"l", short_list, None), (b"gx", stale_set, None)]
    script = [b(*c) for c in [
        ("SPOP", "si"), ("spop", "si"), ("SPOP", "st"), ("SPOP", "full"), ("SPOP", "full"),
        ("SADD", "full", "x", "1000", "x"), ("SPOP", "full"), ("SPOP", "ix"), ("SPOP", "ix"),
        ("SADD", "ix", "m1", "m2", "new", "m3"), ("SPOP", "ix"), ("SCARD", "ix"),
        ("SPOP", "stale"), ("SPOP", "stale"), ("SPOP", "old"), ("SPOP", "nokey"),
        ("SPOP", "one"), ("SPOP", "one"), ("SPOP", "one"), ("SPOP", "si"), ("SPOP", "si"),
        ("SCARD", "si"), ("SADD", "si", "5"), ("SPOP", "gx"), ("SPOP", "gx"),
        ("SADD", "gx", "m0", "new", "m1", "m0", "m20"), ("SCARD", "gx"),
    ]] + [b("SPOP", "ix")] * 75 + [b("SPOP", "gx")] * 64
    fast = matches_normal_path(run_batch, script, entries, seed=seed)
    assert b"gx" not in fast.db.data
    assert b"one" not in fast.db.data
    assert b"ix" not in fast.db.data and b"one" not in fast.db.expires


def test_spop_pops_each_member_once(run_batch):
    members = {b"m%d" % i for i in range(200)}
    ctx = new_ctx(2, [(b"s", lambda: Set(members), None)])
    out = []
    run_batch([b("SPOP", "s")] * 201, 0, out, ctx.db, ctx.ks, 2, None, 0)
    assert sorted(out[:200]) == sorted(encode(m, 2) for m in members)
    assert out[200] == b"$-1\r\n" and not ctx.db.data and ctx.ks.dirty == 200


def test_spop_draws_like_random_choice(run_batch):
    """Same seed, same member as Set.pop_random: small sets by iteration order, big by index
    (redrawn past stale entries)."""
    def make(size, removed):
        value = Set(b"%d" % i for i in range(size))
        if removed:
            value.population()
            value.remove_members([b"%d" % i for i in range(removed)])
        return value

    for size, removed in ((1, 0), (2, 0), (3, 0), (64, 0), (65, 0), (300, 0), (300, 150),
                          (100, 40)):
        for seed in range(8):
            ctx = new_ctx(2, [(b"s", lambda: make(size, removed), None)])
            want = make(size, removed)
            random.seed(seed)
            picked = want.pop_random()
            random.seed(seed)
            assert run_one(run_batch, ctx, "SPOP", "s") == (encode(picked, 2), 1)
            assert describe(ctx.db.data.get(b"s")) == describe(want or None)


small_scores = st.sampled_from([b"%g" % (x / 4) for x in range(-4, 40)] + [b"-0", b"100"])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(4, 6), st.dictionaries(st.sampled_from([b"m%d" % i for i in range(40)]),
                                          st.sampled_from([x / 2 for x in range(-2, 18)]),
                                          min_size=1, max_size=40),
       st.booleans(),
       st.lists(st.tuples(st.sampled_from([b"ZADD", b"ZINCRBY"]), small_scores,
                          st.sampled_from([b"m%d" % i for i in range(45)])),
                min_size=1, max_size=40))
def test_rescores_keep_the_sorted_list_as_python_does(run_batch, load, scores, indexed, moves):
    """Small sublists (load) split, merge and empty as members move: the C side reuses the
    insertion point it found before the removal only when that is still right. (No _check:
    SortedList's own removal from a lone sublist leaves a built index behind its length.)"""
    script = [[name, b"k", score, member] for name, score, member in moves]
    matches_normal_path(run_batch, script, [(b"k", lambda: zset_of(scores, load, indexed), None)])


# Commands the fast path leaves to Python, each changing the order another way: a rescore
# in place (the C copy of the scores goes stale with the same sublist lengths), a removal,
# pops from either end, a range removal, a lookup that builds the positional index.
python_zset_writes = st.one_of(
    st.tuples(st.just(b"ZADD"), st.just(b"XX"), small_scores,
              st.sampled_from([b"m%d" % i for i in range(45)])),
    st.tuples(st.just(b"ZREM"), st.sampled_from([b"m%d" % i for i in range(45)])),
    st.tuples(st.sampled_from([b"ZPOPMIN", b"ZPOPMAX"])),
    st.tuples(st.just(b"ZREMRANGEBYRANK"), st.sampled_from([b"0", b"3", b"-2"]),
              st.sampled_from([b"0", b"1", b"-1"])),
    st.tuples(st.just(b"ZRANK"), st.sampled_from([b"m%d" % i for i in range(45)])))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(4, 6), st.dictionaries(st.sampled_from([b"m%d" % i for i in range(40)]),
                                          st.sampled_from([x / 2 for x in range(-2, 18)]),
                                          min_size=1, max_size=40),
       st.lists(st.one_of(st.tuples(st.sampled_from([b"ZADD", b"ZINCRBY"]), small_scores,
                                    st.sampled_from([b"m%d" % i for i in range(45)])),
                          python_zset_writes), min_size=1, max_size=60))
def test_writes_from_python_between_batches_never_mislead_the_fast_path(run_batch, load,
                                                                         scores, moves):
    """The native side bisects a copy of each sublist's scores kept beside the ZSet; Python
    changes the list behind its back (the copy may be stale at the same lengths). Run the
    script through the caller's loop (fast path, Python for what it stops at, repeat) and
    command by command through the normal path: the same replies and state."""
    script = [[move[0], b"k", *move[1:]] for move in moves]
    entries = [(b"k", lambda: zset_of(scores, load), None)]
    fast, want = new_ctx(2, entries), new_ctx(2, entries)
    out, _, _ = drive(run_batch, [fast], script)
    assert out == reference(want, script)
    assert state(fast) == state(want)


def test_a_stale_copy_of_the_scores_is_caught(run_batch):
    """Python moves b inside the one sublist (same length, so the native copy looks in step:
    it still reads 1 2 2.5 3 ...) and the next insertion's place differs from the copy's."""
    scores = {b"a": 1.0, b"b": 2.0, b"c": 3.0, b"d": 4.0, b"e": 5.0, b"f": 6.0}
    script = [b("ZADD", "k", "2.5", "x"), b("ZADD", "k", "XX", "3.7", "b"),
              b("ZADD", "k", "3.5", "y"), b("ZADD", "k", "XX", "0", "c"),
              b("ZINCRBY", "k", "0.5", "a"), b("ZADD", "k", "3.6", "z")]
    entries = [(b"k", lambda: zset_of(scores, 8), None)]
    fast, want = new_ctx(2, entries), new_ctx(2, entries)
    out, calls, _ = drive(run_batch, [fast], script)
    assert [call[:3] for call in calls] == [(0, 1, 1), (2, 3, 1), (4, 6, 2)]
    assert out == reference(want, script)
    assert state(fast) == state(want)


def test_the_native_copy_of_the_scores_stays_with_its_zset():
    """Kept in the ZSet's native slot by the native side only; copies and pickles of the
    ZSet start without it, and a new order leaves the old copy unused."""
    if native_run_batch is None:
        pytest.skip("no native extension")
    ctx = new_ctx(2, [(b"k", lambda: zset_of({b"m%d" % i: float(i) for i in range(30)}, 4),
                       None)])
    zs = ctx.db.data[b"k"]
    assert zs.native is None
    assert run_one(native_run_batch, ctx, "ZADD", "k", "2.5", "new") == (encode(1, 2), 1)
    assert zs.native is not None
    assert zs.copy().native is None and copy.deepcopy(zs).native is None
    zs.order = SortedList(zs.order)             # as the snapshot loader builds one
    assert run_one(native_run_batch, ctx, "ZADD", "k", "-1", "m7") == (encode(0, 2), 1)
    zs.order._check()
    assert list(zs.order)[:2] == [(-1.0, b"m7"), (0.0, b"m0")]


score_texts = st.one_of(scores, st.binary(max_size=6), st.from_regex(
    rb"[+-]?[0-9]{0,20}(\.[0-9]{0,20})?([eE][+-]?[0-9]{1,4})?", fullmatch=True))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(score_texts)
def test_scores_parse_like_parse_score(run_batch, text):
    """Every plain decimal parse_score takes is handled, with its value; the rest stops."""
    try:
        want = parse_score(text)
    except CommandError:
        want = None
    handled = want is not None and plain_decimal.fullmatch(text) is not None
    ctx = new_ctx(3)
    reply, executed = run_one(run_batch, ctx, "ZADD", "k", text, "m")
    assert executed == handled
    if handled:
        assert ctx.db.data[b"k"][b"m"].hex() == (want + 0.0).hex()
    assert run_one(run_batch, ctx, "ZINCRBY", "k2", text, "m") == (
        (encode(want, 3), 1) if handled else (None, 0))


@pytest.mark.parametrize("proto", [2, 3])
def test_zset_and_spop_replies_match_redis(run_batch, redis_raw, proto):
    if proto == 3:
        redis_raw.call("HELLO", "3")
    script = [b(*c) for c in [
        ("ZADD", "z", "1", "a", "2.5", "b", "-0", "c", "1", "a"), ("ZADD", "z", "3", "a"),
        ("ZSCORE", "z", "a"), ("ZSCORE", "z", "c"), ("ZSCORE", "z", "x"), ("ZSCORE", "no", "x"),
        ("ZCARD", "z"), ("ZCARD", "no"), ("ZINCRBY", "z", "1.5", "b"),
        ("ZINCRBY", "z", "-0", "new"), ("ZINCRBY", "z", "0.1", "t"), ("ZINCRBY", "z", "0.2", "t"),
        ("ZADD", "z", "000000012345", "element:000000012345", "1e3", "e"),
        ("ZADD", "z", "123456789012345678", "big"), ("ZSCORE", "z", "big"),
        ("ZADD", "z", "1e308", "huge"), ("ZINCRBY", "z", "1e308", "huge"),
        ("ZSCORE", "z", "huge"), ("ZADD", "long", "-0", "x" * 65), ("ZSCORE", "long", "x" * 65),
        ("SADD", "s", "only"), ("SPOP", "s"), ("SPOP", "s"), ("EXISTS", "s"),
    ]]
    ctx = new_ctx(proto)
    out = []
    assert run_batch(script, 0, out, ctx.db, ctx.ks, proto, None, 0)[0] == len(script)
    assert out == [redis_raw.call(*argv) for argv in script]
    for key in (b"z", b"long"):
        assert reference(ctx, [[b"OBJECT", b"ENCODING", key]]) == [
            redis_raw.call(b"OBJECT", b"ENCODING", key)]


# -- the C twin: reference counts, leaks, hostile input ----------------------------------------

native_only = pytest.mark.skipif(native_run_batch is None, reason="fastcache._native not built")


def _rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


def refcounts_stay(objects, round_, rounds=1000):
    """Whether rounds more calls of round_ leave the reference counts of objects as its first
    call left them."""
    round_()
    counts = [sys.getrefcount(o) for o in objects]
    for _ in range(rounds):
        round_()
    gc.collect()
    return [sys.getrefcount(o) for o in objects] == counts


@native_only
def test_native_reference_counts_are_balanced():
    ctx = new_ctx(2, [(b"h", {b"f": b"v"}, None)])
    key, value, other = b"refkey", b"refvalue" * 8, b"refother" * 8
    batch = [[b"SET", key, value], [b"GET", key], [b"MGET", key, b"h", b"nokey"],
             [b"MSET", key, other, b"n", b"1"], [b"INCR", b"n"], [b"EXISTS", key],
             [b"DEL", key], [b"ECHO", value], [b"PING"], [b"GET", b"h"]]
    objects = (key, value, other, ctx.db.data[b"h"], CLOCK)

    def round_():
        out = []
        ctx.db.expires[b"n"] = PAST         # an expiry removal every round
        native_run_batch(batch, 0, out, ctx.db, ctx.ks, 2, None, 0)
        assert len(out) == len(batch) - 1   # GET h stops: WRONGTYPE

    assert refcounts_stay(objects, round_)


@native_only
def test_native_container_reference_counts_are_balanced():
    ctx = new_ctx(2, [(b"ix", indexed_set, None), (b"s", b"str", None)])
    lkey, skey, hkey, zkey = b"list-key", b"set-key", b"hash-key", b"zset-key"
    e1, e2, member, field, value = b"e1" * 40, b"e2" * 40, b"m" * 70, b"f" * 70, b"v" * 70
    many = [b"member%d" % i for i in range(70)]     # SPOP indexes them
    batch = [[b"RPUSH", lkey, e1, e2], [b"LPUSH", lkey, e2], [b"LRANGE", lkey, b"0", b"-1"],
             [b"LRANGE", lkey, b"-2", b"-1"], [b"LLEN", lkey], [b"LPOP", lkey], [b"RPOP", lkey],
             [b"RPOP", lkey], [b"LPOP", lkey], [b"SADD", skey, member, b"1"],
             [b"SCARD", skey], [b"SISMEMBER", skey, member], [b"HSET", hkey, field, value],
             [b"HSET", hkey, field, e1, field, value], [b"HGET", hkey, field],
             [b"HGET", hkey, e1], [b"LRANGE", b"nolist", b"0", b"1"], [b"SADD", b"ix", member],
             [b"SPOP", skey], [b"SPOP", skey], [b"SPOP", skey], [b"SADD", b"big"] + many,
             [b"SADD", b"big", e1]] + [[b"SPOP", b"big"]] * 71 + [
             [b"ZADD", zkey, b"1.5", member, b"2", e1, b"-0", e2], [b"ZADD", zkey, b"3", member],
             [b"ZINCRBY", zkey, b"0.5", e1], [b"ZINCRBY", zkey, b"1", field],
             [b"ZSCORE", zkey, member], [b"ZSCORE", zkey, value], [b"ZCARD", zkey],
             [b"ZADD", zkey] + [x for i, m in enumerate(many) for x in (b"%d" % i, m)],
             [b"ZADD", zkey] + [x for i, m in enumerate(many) for x in (b"%d" % -i, m)],
             [b"ZADD", zkey, b"1", value], [b"SPOP", b"ix"],
             [b"ZADD", b"odd", b"1.5", member, b"2", e1, b"2", b"i"], [b"ZADD", b"odd", b"3", b"i"],
             [b"SADD", b"gx", member, many[0]]] + [[b"SPOP", b"gx"]] * 62
    objects = (lkey, skey, hkey, zkey, e1, e2, member, field, value, CLOCK, *many)

    def stale_set():        # many, indexed, ten of them removed since: stale entries
        value = Set(many)
        value.population()
        value.remove_members(many[:10])
        return value

    def round_():
        out = []
        native_run_batch(batch, 0, out, ctx.db, ctx.ks, 3, None, 0)
        assert len(out) == len(batch)
        ctx.db.data.pop(hkey)               # so that HSET and ZADD create them again
        ctx.db.data.pop(zkey)
        ctx.db.data[b"ix"] = indexed_set()   # whichever member SPOP took
        ctx.db.data[b"odd"] = odd_zset()
        assert b"gx" not in ctx.db.data
        ctx.db.data[b"gx"] = stale_set()

    ctx.db.data[b"gx"] = stale_set()
    assert refcounts_stay(objects, round_)


@native_only
def test_native_forwarding_holds_one_reference_per_queue_entry():
    ctx = new_ctx()
    k0, k1 = key_on(OWNERS, 0), key_on(OWNERS, 1)
    remote = [[b"GET", k1], [b"MSET", k1, b"v", k1, b"w"], [b"INCRBY", k1, b"x"]]
    batch = [[b"SET", k0, b"v"]] + remote + [[b"MGET", k0, k1]]
    objects = remote + [k1, k0]

    def round_():
        out, fwd = [], [[], []]
        assert native_run_batch(batch, 0, out, ctx.db, ctx.ks, 2, OWNERS, 0, fwd) == (4, 1, 3)
        assert out == [b"+OK\r\n", 1, 1, 1] and fwd[1] == remote
        return [sys.getrefcount(argv) for argv in remote]

    round_()                                # stores k0 in the dicts
    counts = [sys.getrefcount(o) for o in objects]
    queued = round_()                       # while fwd is alive: one more each
    assert queued == [n + 1 for n in counts[:len(remote)]]
    for _ in range(1000):
        round_()
    gc.collect()
    assert [sys.getrefcount(o) for o in objects] == counts


@native_only
def test_native_memory_is_stable_over_a_million_batches():
    ctx = new_ctx()
    batch = [[b"SET", b"k", b"v" * 64], [b"GET", b"k"], [b"MGET", b"k", b"{k}x", b"k"],
             [b"INCRBY", b"n", b"100"], [b"DEL", b"n"], [b"ECHO", b"e"], [b"GET", b"a"],
             [b"MSET", b"a", b"1"], [b"RPUSH", b"{k}l", b"x", b"y"],
             [b"LRANGE", b"{k}l", b"0", b"-1"], [b"LPOP", b"{k}l"], [b"RPOP", b"{k}l"],
             [b"SADD", b"{k}s", b"m"], [b"SCARD", b"{k}s"], [b"HSET", b"{k}h", b"f", b"v"],
             [b"HGET", b"{k}h", b"f"], [b"LLEN", b"{k}l"], [b"SADD", b"{k}p", b"a", b"b"],
             [b"SPOP", b"{k}p"], [b"SPOP", b"{k}p"], [b"ZADD", b"{k}z", b"1", b"m", b"2", b"n"],
             [b"ZINCRBY", b"{k}z", b"-1", b"m"], [b"ZSCORE", b"{k}z", b"m"], [b"ZCARD", b"{k}z"]]
    run = native_run_batch
    db, ks = ctx.db, ctx.ks
    fwd = [[], []]
    remote = fwd[1]
    assert run(batch, 0, [], db, ks, 2, OWNERS, 0, fwd) == (len(batch), len(batch) - 2, 2)
    for _ in range(50_000):
        run(batch, 0, [], db, ks, 2, None, 0)
    before = _rss_kb()
    for _ in range(1_000_000):
        run(batch, 0, [], db, ks, 2, OWNERS, 0, fwd)
        remote.clear()
    assert _rss_kb() - before < 2048


@native_only
@pytest.mark.parametrize("commands", [
    [None], [(b"GET", b"k")], [[]], [[b"GET", "k"]], [[b"GET", 1]], [["GET", b"k"]],
    [[bytearray(b"GET"), b"k"]], [[b"SET", b"k", memoryview(b"v")]], [b"GET k"],
])
def test_native_stops_on_input_outside_the_contract(commands):
    ctx = new_ctx()
    out = []
    fwd = [[], []]
    assert native_run_batch(commands, 0, out, ctx.db, ctx.ks, 2, OWNERS, 0, fwd) == (0, 0, 0)
    assert out == [] and fwd == [[], []] and state(ctx) == state(new_ctx())


@native_only
@pytest.mark.parametrize("call", [
    lambda db, ks: native_run_batch((), 0, [], db, ks, 2, None, 0),
    lambda db, ks: native_run_batch([], 0, (), db, ks, 2, None, 0),
    lambda db, ks: native_run_batch([], -1, [], db, ks, 2, None, 0),
    lambda db, ks: native_run_batch([], 0, [], db, ks, "2", None, 0),
    lambda db, ks: native_run_batch([[b"GET", b"k"]], 0, [], db, ks, 2, b"\0" * 10, 0),
    lambda db, ks: native_run_batch([[b"GET", b"k"]], 0, [], db, ks, 2, OWNERS, None),
    lambda db, ks: native_run_batch([[b"GET", b"k"]], 0, [], object(), ks, 2, None, 0),
    lambda db, ks: native_run_batch([[b"GET", b"k"]], 0, [], db, object(), 2, None, 0),
    lambda db, ks: native_run_batch([], 0, []),
    lambda db, ks: native_run_batch([], 0, [], db, ks, 2, OWNERS, 0, ([], [])),
    lambda db, ks: native_run_batch([[b"GET", b"a"]], 0, [], db, ks, 2, OWNERS, 0, [[]]),
    lambda db, ks: native_run_batch([[b"GET", b"a"]], 0, [], db, ks, 2, OWNERS, 0, [[], ()]),
    lambda db, ks: native_run_batch([], 0, [], db, ks, 2, OWNERS, 0, None, None, None),
    lambda db, ks: native_run_batch([], 0, [], db, ks, 2, OWNERS, 0, None, ()),
])
def test_native_rejects_bad_arguments(call):
    ctx = new_ctx()
    with pytest.raises((TypeError, ValueError, AttributeError, IndexError)):
        call(ctx.db, ctx.ks)


UNBOUND = """
import warnings
import fastcache.engine.hashes as hashes
from fastcache._native import run_batch
from fastcache.engine.keyspace import Keyspace

hashes.Hash = dict                  # not what the C side can mirror: it must not guess
ks = Keyspace()
db = ks.dbs[0]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    first = run_batch([[b"SET", b"k", b"v"], [b"LPUSH", b"l", b"x"]], 0, [], db, ks, 2, None, 0)
    again = run_batch([[b"GET", b"k"], [b"HGET", b"h", b"f"]], 0, [], db, ks, 2, None, 0)
print(first, again, len(caught), caught[0].category.__name__, list(db.data))
"""


@native_only
def test_native_leaves_containers_to_python_when_it_cannot_bind_them():
    done = subprocess.run([sys.executable, "-c", UNBOUND], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(1,", "1,", "0)", "(1,", "1,", "0)", "1", "RuntimeWarning",
                                   "[b'k']"]


def hostile_containers():
    """Sets and ZSets in states the families never leave them in."""
    def zset(**fields):
        value = small_zset()
        for name, field in fields.items():
            setattr(value, name, field)
        return value

    def order(**fields):
        value = small_zset()
        for name, field in fields.items():
            setattr(value.order, name, field)
        return value

    def indexed(pool, gone):
        value = indexed_set()
        value._pool, value._gone = pool, gone
        return value

    return [zset(order=[]), zset(big=None), zset(order=SortedList(key=len)),
            order(_lists=None), order(_maxes=()), order(_index=None), order(_load=0),
            order(_load=1.5), order(_len="2"), indexed("x", set()), indexed([b"m1"], None),
            indexed(None, set()), indexed([], frozenset()), indexed((), set())]


@native_only
@pytest.mark.parametrize("command", [["ZADD", "k", "1", "a"], ["ZADD", "k", "2", "new"],
                                     ["ZINCRBY", "k", "1", "a"], ["SPOP", "k"],
                                     ["SADD", "k", "new"]])
def test_native_stops_on_containers_it_does_not_mirror(command):
    for value in hostile_containers():
        ctx = new_ctx(2)
        ctx.db.data[b"k"] = value
        if command[0] in ("SPOP", "SADD") and type(value) is not Set:
            continue
        if command[0] not in ("SPOP", "SADD") and type(value) is not ZSet:
            continue
        before = snapshot(value), ctx.ks.dirty
        assert run_one(native_run_batch, ctx, *command) == (None, 0), value
        assert (snapshot(value), ctx.ks.dirty) == before


def snapshot(value):
    """A deep copy of a container's contents and fields, whatever they are."""
    fields = {name: getattr(value, name) for name in type(value).__slots__}
    order = fields.pop("order", None)       # a SortedList in pieces would not copy
    return copy.deepcopy((list(value.items()) if type(value) is ZSet else list(value), fields,
                          id(order), vars(order) if hasattr(order, "__dict__") else order))


UNKNOWN_SORTEDCONTAINERS = """
import sortedcontainers
from fastcache._native import run_batch
from fastcache.engine.keyspace import Keyspace

sortedcontainers.__version__ = "0.0.1"     # internals the C side was not checked against
ks = Keyspace()
db = ks.dbs[0]
print(run_batch([[b"ZADD", b"z", b"1", b"m"]], 0, [], db, ks, 2, None, 0),
      run_batch([[b"ZCARD", b"z"], [b"ZSCORE", b"z", b"m"], [b"ZINCRBY", b"z", b"1", b"m"]], 0,
                [], db, ks, 2, None, 0))
"""


@native_only
def test_native_leaves_zset_writes_to_python_with_another_sortedcontainers():
    done = subprocess.run([sys.executable, "-c", UNKNOWN_SORTEDCONTAINERS], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(0,", "0,", "0)", "(2,", "2,", "0)"]


@native_only
def test_native_rejects_a_non_int_expiry():
    ctx = new_ctx(2, [(b"k", b"v", None)])
    ctx.db.expires[b"k"] = 1.5
    with pytest.raises(TypeError):
        native_run_batch([[b"GET", b"k"]], 0, [], ctx.db, ctx.ks, 2, None, 0)


@native_only
@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(), st.binary(max_size=8), st.text(max_size=3),
                          st.lists(st.one_of(st.binary(max_size=8), st.integers(), st.none()),
                                   max_size=5)), max_size=8),
       st.booleans())
def test_native_survives_arbitrary_batches(batch, sharded):
    ctx = new_ctx(3, [(b"a", b"1", None), (b"b", [1], PAST)])
    out, fwd = [], [[], []]
    i, executed, forwarded = native_run_batch(batch, 0, out, ctx.db, ctx.ks, 3,
                                              OWNERS if sharded else None, 0, fwd)
    assert 0 <= i <= len(batch) and executed + forwarded == i == len(out)
    assert forwarded == len(fwd[1]) and not fwd[0]


# -- against a real redis-server ---------------------------------------------------------------

@pytest.mark.parametrize("proto", [2, 3])
def test_replies_match_redis(run_batch, redis_raw, proto):
    if proto == 3:
        redis_raw.call("HELLO", "3")
    script = [b(*c) for c in [
        ("SET", "k", "v"), ("GET", "k"), ("GET", "nokey"), ("INCR", "n"), ("INCRBY", "n", "41"),
        ("DECRBY", "n", "-9"), ("DECR", "n"), ("MSET", "a", "1", "b", ""),
        ("MGET", "a", "b", "nokey", "k"), ("EXISTS", "a"), ("EXISTS", "nokey"), ("DEL", "a"),
        ("DEL", "a"), ("PING",), ("ECHO", "hi"), ("INCRBY", "big", "9223372036854775807"),
        ("DECRBY", "neg", "9223372036854775807"), ("DECR", "neg"), ("MGET", "neg", "big"),
    ]]
    ctx = new_ctx(proto)
    out = []
    assert run_batch(script, 0, out, ctx.db, ctx.ks, proto, None, 0)[0] == len(script)
    assert out == [redis_raw.call(*argv) for argv in script]


@pytest.mark.parametrize("proto", [2, 3])
def test_container_replies_match_redis(run_batch, redis_raw, proto):
    if proto == 3:
        redis_raw.call("HELLO", "3")
    script = [b(*c) for c in [
        ("RPUSH", "l", "a", "b", "c"), ("LPUSH", "l", "z", "y"), ("LRANGE", "l", "0", "-1"),
        ("LRANGE", "l", "-2", "100"), ("LRANGE", "l", "3", "1"), ("LRANGE", "none", "0", "-1"),
        ("LLEN", "l"), ("LLEN", "none"), ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "none"),
        ("SADD", "s", "1", "2", "1"), ("SADD", "s", "x"), ("SCARD", "s"), ("SCARD", "none"),
        ("SISMEMBER", "s", "x"), ("SISMEMBER", "s", "y"), ("SISMEMBER", "none", "x"),
        ("HSET", "h", "f", "v", "g", "w"), ("HSET", "h", "f", "v2"), ("HGET", "h", "f"),
        ("HGET", "h", "nofield"), ("HGET", "none", "f"), ("RPUSH", "one", "x"), ("RPOP", "one"),
        ("LLEN", "one"),
    ]]
    ctx = new_ctx(proto)
    out = []
    assert run_batch(script, 0, out, ctx.db, ctx.ks, proto, None, 0)[0] == len(script)
    assert out == [redis_raw.call(*argv) for argv in script]
    for key, encoding in ((b"l", b"quicklist"), (b"s", b"hashtable"), (b"h", b"listpack")):
        assert redis_raw.call(b"OBJECT", b"ENCODING", key) == encode(encoding, proto)


# -- dict warming (native/dictwarm.c): prefetches only, so it must never change an answer --

def test_dict_warming_reads_this_pythons_dict_layout():
    native = pytest.importorskip("fastcache._native")
    if sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11):
        assert native.dict_warming == 1     # a layout change must not go unnoticed
    else:
        assert native.dict_warming in (0, 1)


@pytest.mark.parametrize("nkeys", [3, 200, 10000, 70000])   # 1-, 2-, 2- and 4-byte indices
def test_warmed_batches_answer_like_unwarmed_ones(nkeys):
    if native_run_batch is None:
        pytest.skip("no C extension")
    ks = Keyspace(1)
    db = ks.dbs[0]
    for n in range(nkeys):
        ks.set(db, b"k%d" % n, b"v%d" % n)
    for n in range(0, nkeys, 7):
        del db.data[b"k%d" % n]     # holes in the entries, as deletions leave them
        db.atime.pop(b"k%d" % n, None)
    rnd = random.Random(nkeys)
    batch = []
    for _ in range(100):
        n = rnd.randrange(nkeys + 10)
        batch.append([b"GET", b"k%d" % n] if rnd.random() < 0.7 else [b"SET", b"k%d" % n, b"w"])
    expected = copy.deepcopy(db.data)
    want = []
    for argv in batch:
        if argv[0] == b"GET":
            value = expected.get(argv[1])
            want.append(b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value))
        else:
            expected[argv[1]] = b"w"
            want.append(b"+OK\r\n")
    out = []
    stop, _, _ = native_run_batch(batch, 0, out, db, ks, 2, None, 0)
    assert stop == len(batch)
    assert out == want
    assert db.data == expected


def test_routing_across_warm_windows_matches_the_python_twin():
    """Batches longer than one warm window (32 commands): each command's owner comes from the
    slot warm_batch kept for it, window after window."""
    if native_run_batch is None:
        pytest.skip("no C extension")
    owners = slot_table(2)
    rnd = random.Random(5)
    for _ in range(30):
        batch = [[b"SET", b"k%d" % rnd.randrange(500), b"v"] if rnd.random() < 0.5
                 else [b"GET", b"k%d" % rnd.randrange(500)] for _ in range(rnd.randrange(1, 150))]
        results = []
        for run_batch in (native_run_batch, py_run_batch):
            ks = Keyspace(1)
            db = ks.dbs[0]
            for n in range(0, 500, 3):
                ks.set(db, b"k%d" % n, b"x")
            out, fwd = [], [[], []]
            stop = run_batch([list(argv) for argv in batch], 0, out, db, ks, 2, owners, 0, fwd)
            results.append((stop, out, fwd, dict(db.data)))
        assert results[0] == results[1]
