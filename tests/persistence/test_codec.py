"""The value codec: every type round-trips with its contents and its OBJECT
ENCODING, and loading refuses anything but plain builtins."""
import copyreg
import pickle

import pytest
from hypothesis import given, settings, strategies as st

from fastcache.engine.context import Context
from fastcache.engine.dispatch import execute
from fastcache.engine.hashes import Hash
from fastcache.engine.keyspace import Keyspace
from fastcache.engine.lists import List
from fastcache.engine.sets import Set
from fastcache.engine.zset_type import ZSet
from fastcache.persistence import codec
from fastcache.protocol.encoder import encode

FAR = 4102444800000  # 2100-01-01 in ms: an expiry that never passes in a test


def run(ctx, *args):
    return execute(ctx, [a if isinstance(a, bytes) else str(a).encode() for a in args])


_CONTENTS = {
    b"string": [("GET",)],
    b"list": [("LRANGE", 0, -1)],
    b"set": [("SMEMBERS",), ("SCARD",)],
    b"hash": [("HGETALL",)],
    b"zset": [("ZRANGE", 0, -1, "WITHSCORES"), ("ZSCAN", 0, "COUNT", 100000)],
}


def _shown(reply):
    if isinstance(reply, set):  # sets reply in no particular order
        return sorted(reply)
    return encode(reply, 3)


def observe(ks, dbnum, key):
    """What clients can see of key: type, encoding, contents, expiry."""
    ctx = Context(ks, dbnum, 3)
    kind = encode(run(ctx, "TYPE", key), 3)[1:-2]
    seen = [kind, _shown(run(ctx, "OBJECT", "ENCODING", key)), _shown(run(ctx, "PEXPIRETIME", key))]
    for cmd in _CONTENTS.get(kind, ()):
        seen.append(_shown(run(ctx, cmd[0], key, *cmd[1:])))
    return seen


def observe_all(ks):
    """observe() of every key of every db, plus each db's size."""
    out = []
    for db in ks.dbs:
        out.append(("dbsize", db.id, len(db.data)))
        for key in sorted(db.data):
            out.append((db.id, key, observe(ks, db.id, key)))
    return out


def build_samples(ctx):
    """One key per interesting type/encoding, made by commands. Returns their names."""
    run(ctx, "SET", "str:int", "12345")
    run(ctx, "SET", "str:embstr", "hello")
    run(ctx, "SET", "str:raw", "x" * 100)
    run(ctx, "SET", "str:empty", "")
    run(ctx, "RPUSH", "list", "a", "b", "", "c" * 200)
    run(ctx, "SADD", "set:intset", 3, 1, 2, -7)
    run(ctx, "SADD", "set:hashtable", "a", "b", 3)
    run(ctx, "SADD", "set:sticky", *range(600))  # outgrew the intset...
    run(ctx, "SREM", "set:sticky", *range(10, 600))  # ...and stays a hashtable
    run(ctx, "HSET", "hash:listpack", "f2", "v2", "f1", "v1", "f3", "v3")
    run(ctx, "HSET", "hash:longvalue", "f", "v" * 65)
    run(ctx, "HSET", "hash:many", *[b"%d" % i for i in range(1100)])
    run(ctx, "HDEL", "hash:many", *[b"%d" % i for i in range(0, 1100, 4)])
    run(ctx, "ZADD", "zset:listpack", 2, "b", 1, "a", "-0", "z", 1, "c")
    run(ctx, "ZADD", "zset:longmember", 1.5, "m" * 65, "-0", "neg0", "inf", "top")
    run(ctx, "ZADD", "zset:many", *[x for i in range(200) for x in (b"%d" % (i % 7), b"m%d" % i)])
    run(ctx, "ZREM", "zset:many", *[b"m%d" % i for i in range(150)])
    run(ctx, "PEXPIREAT", "hash:listpack", FAR)
    return sorted(ctx.db.data)


def test_samples_have_the_encodings_they_are_meant_to_test():
    ctx = Context(Keyspace())
    build_samples(ctx)
    enc = {k: run(ctx, "OBJECT", "ENCODING", k) for k in ctx.db.data}
    assert enc[b"set:sticky"] == b"hashtable" and enc[b"set:intset"] == b"intset"
    assert enc[b"hash:many"] == b"hashtable" and enc[b"hash:longvalue"] == b"hashtable"
    assert enc[b"zset:many"] == b"skiplist" and enc[b"zset:listpack"] == b"listpack"
    assert enc[b"str:raw"] == b"raw" and enc[b"str:int"] == b"int"


def test_every_type_round_trips_through_dump_value():
    ks = Keyspace()
    keys = build_samples(Context(ks))
    twin = Keyspace()
    for key in keys:
        loaded = codec.load_value(codec.dump_value(ks.dbs[0].data[key]))
        assert type(loaded) is type(ks.dbs[0].data[key])
        twin.dbs[0].data[key] = loaded
    twin.dbs[0].expires.update(ks.dbs[0].expires)
    assert observe_all(twin) == observe_all(ks)


def test_loaded_values_are_independent_and_usable():
    ks = Keyspace()
    ctx = Context(ks)
    run(ctx, "SADD", "s", *range(1000))
    run(ctx, "SPOP", "s", 10)  # builds the random-pick index
    twin = Keyspace()
    twin.dbs[0].data[b"s"] = codec.load_value(codec.dump_value(ks.dbs[0].data[b"s"]))
    tctx = Context(twin)
    popped = run(tctx, "SPOP", "s", 5)
    assert len(popped) == 5 and run(tctx, "SCARD", "s") == 985
    assert run(ctx, "SCARD", "s") == 990
    assert run(tctx, "SRANDMEMBER", "s") in twin.dbs[0].data[b"s"]


def test_zset_keeps_negative_zero_only_in_a_skiplist():
    ks = Keyspace()
    build_samples(Context(ks))
    data = ks.dbs[0].data
    for key, sign in ((b"zset:longmember", "-0"), (b"zset:listpack", "0")):
        loaded = codec.load_value(codec.dump_value(data[key]))
        score = loaded[b"neg0" if key == b"zset:longmember" else b"z"]
        assert ("%g" % score) == sign
        assert list(loaded.order) == list(data[key].order)


def test_unencodable_value_is_a_type_error():
    with pytest.raises(TypeError):
        codec.dump_value(["not", "a", "keyspace", "value"])


# -- refusing anything but plain builtins -------------------------------------------

@pytest.mark.parametrize("obj", [List([b"a"]), Set([b"1"]), ZSet(), pickle.Pickler])
def test_pickles_of_classes_are_refused(obj):
    with pytest.raises(ValueError, match="refusing to load"):
        codec.load_value(pickle.dumps(obj, 5))


def test_code_running_pickle_is_refused():
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    with pytest.raises(ValueError, match="refusing to load"):
        codec.load_value(pickle.dumps(Evil(), 2))
    with pytest.raises(ValueError, match="refusing to load .*system"):
        codec.unpack(b"cos\nsystem\n(S'echo pwned'\ntR.")


def test_extension_registry_lookups_are_refused_too():
    copyreg.add_extension("os", "system", 0xF0)
    try:
        with pytest.raises(ValueError, match="refusing to load"):
            codec.unpack(b"\x80\x05\x82\xf0.")  # EXT1 0xf0
    finally:
        copyreg.remove_extension("os", "system", 0xF0)


@pytest.mark.parametrize("data", [
    b"", b"garbage", pickle.dumps((1, [b"a"]), 5)[:-3],  # truncated
    pickle.dumps(42, 5), pickle.dumps((9, []), 5), pickle.dumps((1,), 5),
    pickle.dumps((2, [b"a"], 1), 5), pickle.dumps((3, [], False), 5),
    pickle.dumps((4, [b"a"], [], False), 5), pickle.dumps((4, [b"a", b"a"], [1.0, 2.0], False), 5),
])
def test_malformed_input_is_a_value_error(data):
    with pytest.raises(ValueError):
        codec.load_value(data)


# -- whole databases ----------------------------------------------------------------

def test_dump_db_skips_expired_keys_and_load_db_restores_the_rest():
    ks = Keyspace()
    ctx = Context(ks, 3)
    build_samples(ctx)
    db = ks.dbs[3]
    db.expires[b"str:raw"] = 1000  # long past
    db.expires[b"list"] = 5000
    chunks = codec.dump_db(db, now=2000)
    assert all(chunk[0] == 3 for chunk in chunks)
    twin = Keyspace()
    codec.load_db(pickle.loads(codec.pack(chunks)), twin.dbs[3], now=2000)
    assert b"str:raw" not in twin.dbs[3].data
    assert twin.dbs[3].expires == {b"list": 5000, b"hash:listpack": FAR}
    del db.data[b"str:raw"], db.expires[b"str:raw"]
    assert observe_all(twin) == observe_all(ks)
    # Loading later drops what has expired since.
    again = Keyspace()
    codec.load_db(chunks, again.dbs[3], now=6000)
    assert b"list" not in again.dbs[3].data and b"list" not in again.dbs[3].expires


def test_string_only_db_is_chunked_and_skips_expired():
    ks = Keyspace()
    db = ks.dbs[0]
    for i in range(1000):
        db.data[b"k%d" % i] = b"v%d" % i
    db.expires.update({b"k1": 10, b"k2": 99999, b"gone": 99999})
    chunks = list(codec.db_chunks(db, 50, chunk_keys=300))
    assert len(chunks) == 5  # 999 strings in 4 chunks, then the expiries
    twin = Keyspace()
    codec.load_db(chunks, twin.dbs[0], now=50)
    assert len(twin.dbs[0].data) == 999 and b"k1" not in twin.dbs[0].data
    assert twin.dbs[0].expires == {b"k2": 99999}
    assert b"k1" in db.data  # the source is left alone


def test_load_db_refuses_a_chunk_of_another_db():
    ks = Keyspace()
    ks.dbs[1].data[b"k"] = b"v"
    with pytest.raises(ValueError):
        codec.load_db(codec.dump_db(ks.dbs[1], 0), Keyspace().dbs[2], 0)


# -- random values ------------------------------------------------------------------

_members = st.lists(st.one_of(st.binary(max_size=80), st.integers(-2**63, 2**63 - 1).map(
    lambda i: b"%d" % i)), min_size=1, max_size=160)
_scores = st.one_of(st.floats(allow_nan=False), st.integers(-10, 10).map(float))


@st.composite
def commands(draw):
    """A command sequence that leaves a value of some type at key 'k'."""
    kind = draw(st.sampled_from(["list", "set", "hash", "zset", "string"]))
    members = draw(_members)
    if kind == "string":
        return [["SET", "k", members[0]]]
    if kind == "list":
        return [["RPUSH", "k", *members]]
    if kind == "set":
        cmds = [["SADD", "k", *members]]
        drop = draw(st.lists(st.sampled_from(members), max_size=len(members) - 1, unique=True))
        return cmds + ([["SREM", "k", *drop]] if len(set(drop)) < len(set(members)) and drop else [])
    if kind == "hash":
        values = draw(st.lists(st.binary(max_size=70), min_size=len(members), max_size=len(members)))
        return [["HSET", "k", *[x for pair in zip(members, values) for x in pair]]]
    scores = draw(st.lists(_scores, min_size=len(members), max_size=len(members)))
    return [["ZADD", "k", *[x for pair in zip((b"%r" % s for s in scores), members) for x in pair]]]


@settings(max_examples=60, deadline=None)
@given(commands())
def test_random_values_round_trip(cmds):
    ks = Keyspace()
    ctx = Context(ks)
    for cmd in cmds:
        run(ctx, *cmd)
    value = ks.dbs[0].data[b"k"]
    loaded = codec.load_value(codec.dump_value(value))
    assert type(loaded) is type(value) and loaded == value
    if isinstance(value, ZSet):
        assert list(loaded.order) == list(value.order)
    twin = Keyspace()
    twin.dbs[0].data[b"k"] = loaded
    assert observe_all(twin) == observe_all(ks)


def test_hash_keeps_field_order_and_flag():
    h = Hash({b"b": b"1", b"a": b"2"})
    h.hashtable = True
    loaded = codec.load_value(codec.dump_value(h))
    assert list(loaded.items()) == [(b"b", b"1"), (b"a", b"2")] and loaded.hashtable
