"""Commands whose keys span the shards of a --shards 4 server.

Each script runs on the 4-shard fastcache and on the reference redis-server
(one keyspace), and the raw reply bytes must be identical; replies whose
order legitimately differs (KEYS, SCAN pages) are compared sorted."""
import threading

import hiredis
import pytest

from tests.support.differential import compare
from tests.support.resp import RawClient, encode_command
from tests.support.servers import start_fastcache
from tests.support.shardkeys import keys_by_shard, one_per_shard, round_robin, shard_of

K0, K1, K2, K3 = one_per_shard(4, "ms")


@pytest.fixture
def both(redis_raw, raw4):
    return [redis_raw, raw4]


def sorted_array(raw):
    """An array reply's elements, sorted (for replies in no defined order)."""
    items = []
    pos = raw.index(b"\r\n") + 2
    while pos < len(raw):
        head_end = raw.index(b"\r\n", pos)
        n = int(raw[pos + 1:head_end])
        items.append(raw[head_end + 2:head_end + 2 + n])
        pos = head_end + 2 + n + 2
    return sorted(items)


def test_keys_really_span_the_shards():
    assert [shard_of(k, 4) for k in (K0, K1, K2, K3)] == [0, 1, 2, 3]


def test_mget_mset_del_exists_touch_unlink(both):
    compare(both, [
        ("MSET", K0, "a", K1, "b", K2, "c", K3, "d"),
        ("MGET", K3, K2, K1, K0, "missing", K0),
        ("EXISTS", K0, K1, K2, K3, "missing", K0, K0),
        ("TOUCH", K0, K1, K2, "missing", K3, K3),
        ("DEL", K0, K2, "missing", K2),
        ("MGET", K0, K1, K2, K3),
        ("EXISTS", K0, K1, K2, K3),
        ("UNLINK", K1, K3, K1, "missing"),
        ("MGET", K0, K1, K2, K3),
        ("DBSIZE",),
        ("MSET", K0, "1", K1, "2", K2),
        ("EXISTS", K0, K1, K2),
        ("MGET",),
        ("DEL",),
        ("MSET", K0, "x", K0, "y", K1, "z"),
        ("MGET", K0, K1),
    ])


def test_msetnx_is_all_or_nothing(both):
    compare(both, [
        ("SET", K2, "taken"),
        ("MSETNX", K0, "a", K1, "b", K2, "c", K3, "d"),
        ("MGET", K0, K1, K2, K3),
        ("MSETNX", K0, "a", K1, "b", K3, "d"),
        ("MGET", K0, K1, K2, K3),
        ("MSETNX", K0, "a", K1),
        ("MSETNX", "n1", "1", "n1", "2"),
        ("GET", "n1"),
    ])


def test_rename_copy_lcs_across_shards(both):
    compare(both, [
        ("SET", K0, "ohmytext", "EX", "1000"),
        ("SET", K1, "mynewtext"),
        ("LCS", K0, K1),
        ("LCS", K0, K1, "LEN"),
        ("LCS", K0, K1, "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"),
        ("RENAME", K0, K2),
        ("EXISTS", K0),
        ("GET", K2),
        ("TTL", K2),
        ("RENAMENX", K2, K1),
        ("RENAMENX", K2, K3),
        ("GET", K3),
        ("RENAME", "missing", K0),
        ("RENAMENX", "missing", K0),
        ("RENAME", K3, K3),
        ("COPY", K3, K0),
        ("COPY", K3, K1),
        ("COPY", K3, K1, "REPLACE"),
        ("MGET", K0, K1, K2, K3),
        ("TTL", K1),
        ("COPY", K3, K2, "DB", "4"),
        ("SELECT", "4"),
        ("GET", K2),
        ("TTL", K2),
        ("SELECT", "0"),
        ("COPY", K3, K2, "DB", "99"),
        ("COPY", K3, K2, "BOGUS"),
        ("COPY", "missing", K2),
    ])


def test_hash_tags_share_a_shard(both):
    assert shard_of("{user}a", 4) == shard_of("{user}b", 4) == shard_of("user", 4)
    assert shard_of("{}a", 4) == shard_of(b"{}a", 4)
    compare(both, [
        ("MSET", "{user}a", "1", "{user}b", "2", "{}x", "3", "{user", "4"),
        ("MGET", "{user}a", "{user}b", "{}x", "{user"),
        ("RENAME", "{user}a", "{user}c"),
        ("LCS", "{user}b", "{user}c"),
        ("COPY", "{user}c", "{user}d"),
        ("EXISTS", "{user}a", "{user}b", "{user}c", "{user}d"),
        ("DEL", "{user}b", "{user}c", "{user}d"),
    ])


def test_select_is_honoured_on_every_shard(both):
    compare(both, [
        ("SELECT", "5"),
        ("MSET", K0, "five0", K1, "five1", K2, "five2", K3, "five3"),
        ("SET", K3, "five3b"),
        ("INCR", "n"),
        ("DBSIZE",),
        ("SELECT", "0"),
        ("MGET", K0, K1, K2, K3),
        ("DBSIZE",),
        ("MOVE", "n", "5"),
        ("SET", K2, "zero"),
        ("MOVE", K2, "5"),
        ("MOVE", K2, "6"),
        ("SELECT", "6"),
        ("GET", K2),
        ("SELECT", "5"),
        ("MGET", K0, K1, K2, K3, "n"),
    ])


def test_dbsize_flushdb_flushall(both):
    keys = round_robin(4, 40, "f")
    compare(both, [
        ("MSET", *[x for k in keys for x in (k, k)]),
        ("SELECT", "1"),
        ("MSET", *[x for k in keys[:10] for x in (k, k)]),
        ("DBSIZE",),
        ("SELECT", "0"),
        ("DBSIZE",),
        ("SELECT", "1"),
        ("FLUSHDB",),
        ("DBSIZE",),
        ("SELECT", "0"),
        ("DBSIZE",),
        ("FLUSHDB", "ASYNC"),
        ("DBSIZE",),
        ("MSET", K0, "1", K3, "1"),
        ("SELECT", "2"),
        ("MSET", K1, "1", K2, "1"),
        ("FLUSHALL", "SYNC"),
        ("DBSIZE",),
        ("SELECT", "0"),
        ("DBSIZE",),
        ("FLUSHALL", "BOGUS"),
        ("FLUSHDB", "ASYNC", "SYNC"),
    ])


def test_swapdb_swaps_every_shard(both):
    compare(both, [
        ("MSET", K0, "db0", K1, "db0", K2, "db0"),
        ("SELECT", "1"),
        ("MSET", K1, "db1", K3, "db1"),
        ("SWAPDB", "0", "1"),
        ("MGET", K0, K1, K2, K3),
        ("DBSIZE",),
        ("SELECT", "0"),
        ("MGET", K0, K1, K2, K3),
        ("SWAPDB", "0", "99"),
        ("SWAPDB", "0", "x"),
    ])


def test_keys_matches_every_shard(both):
    keys = round_robin(4, 60, "kk")
    compare(both, [
        ("MSET", *[x for k in keys for x in (k, "v")]),
        ("SET", "other", "v"),
        (("KEYS", "kk:*"), sorted_array),
        (("KEYS", "*"), sorted_array),
        (("KEYS", "kk:1?"), sorted_array),
        (("KEYS", "nomatch*"), sorted_array),
        ("KEYS", "nomatch*"),
    ])


def scan_all(client, *options):
    """Every key a full SCAN iteration returns, and the number of calls."""
    cursor = b"0"
    seen = []
    calls = 0
    while True:
        reply = client.call("SCAN", cursor, *options)
        calls += 1
        assert calls < 10_000, "SCAN does not terminate"
        head, _, rest = reply.partition(b"\r\n")
        assert head == b"*2"
        _, _, rest = rest.partition(b"\r\n")  # cursor length line
        cursor, _, rest = rest.partition(b"\r\n")
        seen += sorted_array(rest)
        if cursor == b"0":
            return seen, calls


def test_scan_full_iteration_covers_every_shard(raw4):
    columns = keys_by_shard(4, 300, "sc")
    every = {k.encode() for column in columns for k in column}
    for column in columns:
        raw4.call("MSET", *[x for k in column for x in (k, "v")])
    raw4.call("SET", "other", "v")
    for options in [(), ("COUNT", "7"), ("COUNT", "1000"), ("MATCH", "sc:*"),
                    ("MATCH", "sc:*", "COUNT", "50", "TYPE", "string")]:
        seen, _ = scan_all(raw4, *options)
        expected = every if options[:1] == ("MATCH",) else every | {b"other"}
        assert set(seen) == expected, options
    seen, _ = scan_all(raw4, "TYPE", "list")
    assert seen == []


def test_scan_empty_and_errors(both):
    compare(both, [
        ("SCAN", "0"),
        ("SCAN", "abc"),
        ("SCAN", "-1"),
        ("SCAN", "0", "COUNT", "0"),
        ("SCAN", "0", "COUNT", "x"),
        ("SCAN", "0", "BOGUS", "1"),
        ("SCAN", "18446744073709551616"),
    ])


def test_scan_small_keyspace_in_one_call(both):
    """Like Redis, a keyspace smaller than COUNT comes back whole, with cursor 0."""
    compare(both, [
        ("MSET", K0, "1", K1, "1", K2, "1", K3, "1"),
        (("SCAN", "0", "COUNT", "100"), lambda raw: (raw.split(b"\r\n")[2], sorted_array(
            raw[raw.index(b"\r\n*") + 2:]))),
    ])


def test_randomkey_finds_keys_on_any_shard(raw4):
    assert raw4.call("RANDOMKEY") == b"$-1\r\n"
    for shard, key in enumerate(one_per_shard(4, "rk")):
        raw4.call("FLUSHALL")
        raw4.call("SET", key, "v")
        for _ in range(8):
            assert raw4.call("RANDOMKEY") == b"$%d\r\n%s\r\n" % (len(key), key.encode()), shard
    keys = {k.encode() for k in one_per_shard(4, "rk")}
    for key in keys:
        raw4.call("SET", key, "v")
    for _ in range(20):
        reply = raw4.call("RANDOMKEY")
        assert reply.split(b"\r\n")[1] in keys


def test_pipeline_mixing_local_and_forwarded_keeps_order(fc4):
    keys = round_robin(4, 200, "pl")
    client = RawClient(fc4.port)
    try:
        client.call("FLUSHALL")
        requests, expected = [], []
        for i, key in enumerate(keys):
            value = b"v%d" % i
            requests += [encode_command(("SET", key, value)), b"PING\r\n",
                         encode_command(("GET", key)), encode_command(("ECHO", str(i))),
                         encode_command(("INCR", "pl:count")),
                         encode_command(("EXISTS", key, keys[0], "missing"))]
            expected += [b"+OK\r\n", b"+PONG\r\n", b"$%d\r\n%s\r\n" % (len(value), value),
                         b"$%d\r\n%d\r\n" % (len(str(i)), i), b":%d\r\n" % (i + 1), b":2\r\n"]
            if i % 50 == 49:  # fan-out and split commands in the middle of the stream
                requests += [encode_command(("DBSIZE",)),
                             encode_command(("MGET", *keys[i - 3:i + 1]))]
                expected += [b":%d\r\n" % (i + 2),
                             b"*4\r\n" + b"".join(b"$%d\r\nv%d\r\n" % (len(str(j)) + 1, j)
                                                  for j in range(i - 3, i + 1))]
        client.send(b"".join(requests))
        assert [client.read_reply() for _ in expected] == expected
    finally:
        client.close()


def test_many_clients_share_one_keyspace(fc4):
    """Whatever worker a connection lands on, it sees the same data."""
    clients = [RawClient(fc4.port) for _ in range(12)]
    try:
        clients[0].call("FLUSHALL")
        keys = round_robin(4, 24, "mc")
        for i, key in enumerate(keys):
            assert clients[i % 12].call("SET", key, str(i)) == b"+OK\r\n"
        for c in clients:
            assert c.call("MGET", *keys) == b"*24\r\n" + b"".join(
                b"$%d\r\n%d\r\n" % (len(str(i)), i) for i in range(24))
            assert c.call("DBSIZE") == b":24\r\n"
    finally:
        for c in clients:
            c.close()


@pytest.fixture(scope="module")
def fc2():
    proc = start_fastcache("--save", "", shards=2)
    yield proc
    proc.stop()


def _pipeline(client, commands):
    client.send(b"".join(encode_command(c) for c in commands))
    return [client.read_reply() for _ in commands]


def _bulk(value):
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _mget_values(reply):
    """The bulk strings of an MGET reply (None for a missing key)."""
    lines = reply.split(b"\r\n")
    values, i = [], 1
    while i < len(lines) - 1:
        if lines[i] == b"$-1":
            values.append(None)
            i += 1
        else:
            values.append(lines[i + 1])
            i += 2
    return values


def _decode(raw):
    reader = hiredis.Reader()
    reader.feed(raw)
    return reader.gets()


def _check_moving_key(reply, torn):
    """EXISTS then MGET of the two names a renamer moves one key between."""
    exists, values = reply
    if exists != 1 or sum(v is not None for v in values) != 1:
        torn.append(("rename", exists, values))


def _check_shared(values, db, torn):
    # Every MSET writes every shared key: a mix means one was seen half done.
    if len(set(values)) != 1 or not values[0].startswith(b"%d:" % db):
        torn.append(values)


def _hammer(port, shared, own, moving, db, writer, rounds, torn, failures):
    """Pipelines of cross-shard MSETs of every shared key to one value, back to
    back (so a client's splits share groups), MGETs of them, writes then reads
    of this client's own keys, and reads of a key a renamer moves (db 0)."""
    client = RawClient(port)
    try:
        if db:
            assert client.call("SELECT", str(db)) == b"+OK\r\n"
        for i in range(rounds):
            value = b"%d:%d:%d" % (db, writer, i)
            commands = [("MSET", *[x for k in shared for x in (k, value)]),
                        ("MGET", *shared),
                        ("MSET", *[x for k in own for x in (k, value)]),
                        ("MSET", *[x for k in shared for x in (k, value + b"b")]),
                        ("MGET", *shared),
                        ("EXISTS", *moving),
                        ("MGET", *moving),
                        ("ECHO", str(i)),
                        ("MGET", *own),
                        ("DEL", *own[:2]),
                        ("MGET", *shared)]
            replies = _pipeline(client, commands)
            expected_own = b"*%d\r\n" % len(own) + _bulk(value) * len(own)
            if (replies[0] != b"+OK\r\n" or replies[2] != b"+OK\r\n" or replies[3] != b"+OK\r\n"
                    or replies[7] != _bulk(str(i).encode()) or replies[8] != expected_own
                    or replies[9] != b":2\r\n"):
                failures.append((writer, i, replies))
                return
            for reply in (replies[1], replies[4], replies[10]):
                _check_shared(_mget_values(reply), db, torn)
            if db == 0:
                _check_moving_key((_decode(replies[5]), _decode(replies[6])), torn)
    except Exception as exc:  # reported by the test, not lost in the thread
        failures.append((writer, repr(exc)))
    finally:
        client.close()


def _renamer(port, moving, stop, failures):
    """Moves one key between two shards with RENAME, two at a time."""
    client = RawClient(port)
    try:
        while not stop.is_set():
            replies = _pipeline(client, [("RENAME", moving[0], moving[1]),
                                         ("RENAME", moving[1], moving[0])])
            if replies != [b"+OK\r\n"] * 2:
                failures.append(("renamer", replies))
                return
    except Exception as exc:
        failures.append(("renamer", repr(exc)))
    finally:
        client.close()


def _transactions(port, shared, moving, stop, torn, failures):
    """Cross-shard MULTI/EXEC reads, and WATCHed MSETs that run or abort whole."""
    client = RawClient(port)
    try:
        n = 0
        while not stop.is_set():
            n += 1
            replies = _pipeline(client, [
                ("MULTI",), ("MGET", *shared), ("EXISTS", *moving), ("MGET", *moving), ("EXEC",),
                ("WATCH", shared[0]), ("MGET", *shared), ("MULTI",),
                ("MSET", *[x for k in shared for x in (k, b"0:txn:%d" % n)]), ("EXEC",)])
            reads = _decode(replies[4])
            if reads is None or replies[9] not in (b"*1\r\n+OK\r\n", b"*-1\r\n"):
                failures.append(("transactions", replies))
                return
            _check_shared(reads[0], 0, torn)
            _check_moving_key(reads[1:], torn)
            _check_shared(_mget_values(replies[6]), 0, torn)
    except Exception as exc:
        failures.append(("transactions", repr(exc)))
    finally:
        client.close()


@pytest.mark.parametrize("nshards", [2, 4])
def test_concurrent_split_commands_are_atomic_and_ordered(nshards, request):
    """Many clients pipeline MSETs and MGETs of the same keys across every shard
    at once (so their commands run in shared lock groups, several of a client's
    in one group), beside a cross-shard RENAME loop and MULTI/EXEC and WATCH
    clients; each MGET sees all or none of each MSET, in any db, a moved key is
    always in exactly one place, and each client's replies come back in order."""
    server = request.getfixturevalue("fc%d" % nshards)
    check = RawClient(server.port)
    try:
        assert check.call("FLUSHALL") == b"+OK\r\n"
        shared = round_robin(nshards, 3 * nshards, "grp")
        moving = one_per_shard(nshards, "mv")[:2]
        assert check.call("SET", moving[0], "x") == b"+OK\r\n"
        check.call("MSET", *[x for k in shared for x in (k, "0:start")])
        torn, failures, threads = [], [], []
        stop = threading.Event()
        side = [threading.Thread(target=_renamer, args=(server.port, moving, stop, failures)),
                threading.Thread(target=_transactions,
                                 args=(server.port, shared, moving, stop, torn, failures))]
        for writer in range(16):
            own = round_robin(nshards, 2 * nshards, "own%d" % writer)
            db = 3 if writer % 4 == 3 else 0
            threads.append(threading.Thread(target=_hammer, args=(
                server.port, shared, own, moving, db, writer, 40, torn, failures)))
        for t in side + threads:
            t.start()
        for t in threads:
            t.join(120)
        stop.set()
        for t in side:
            t.join(30)
        assert not failures, failures[:3]
        assert not torn, torn[:3]
        for db in (0, 3):
            check.call("SELECT", str(db))
            values = _mget_values(check.call("MGET", *shared))
            assert len(set(values)) == 1 and values[0].startswith(b"%d:" % db), values
    finally:
        check.close()

def _split_pipeline(rng, keys, rounds):
    """A pipeline mixing split commands (several in a row, so they share
    groups), local and forwarded commands, SELECT, errors, MULTI/EXEC and WATCH."""
    def some(lo, hi):
        return [rng.choice(keys) for _ in range(rng.randint(lo, hi))]

    commands = []
    for i in range(rounds):
        value = "v%d" % i
        pick = rng.random()
        if pick < 0.35:  # a run of split commands back to back
            for _ in range(rng.randint(2, 6)):
                kind = rng.choice(["MSET", "MGET", "DEL", "EXISTS", "UNLINK", "TOUCH"])
                if kind == "MSET":
                    commands.append(("MSET", *[x for k in some(2, 5) for x in (k, value)]))
                else:
                    commands.append((kind, *some(1, 6)))
        elif pick < 0.45:
            commands.append(("SELECT", str(rng.randint(0, 2))))
        elif pick < 0.55:
            key = rng.choice(keys)
            commands += [("SET", key, value), ("GET", key), ("APPEND", key, "x")]
        elif pick < 0.62:
            key = rng.choice(keys)
            commands += [("INCR", key), ("LPUSH", key, value), ("GET", key)]  # errors by type
        elif pick < 0.68:
            commands += [("MSET", *some(3, 3)), ("MGET",), ("FLUSHALL", "BOGUS"),
                         ("ECHO", value), ("DBSIZE",), ("PING",)]
        elif pick < 0.76:
            commands += [("MULTI",), ("MSET", *[x for k in some(2, 4) for x in (k, value)]),
                         ("MGET", *some(2, 4)), ("DEL", *some(1, 3)), ("EXEC",)]
        elif pick < 0.80:  # cross-shard commands that are not split: the splits queue behind
            src, dst = rng.choice(keys), rng.choice(keys)
            commands += [("SET", src, value), ("RENAME", src, dst),
                         ("MSET", *[x for k in some(2, 4) for x in (k, value + "r")]),
                         ("COPY", dst, src), ("MGET", src, dst, *some(1, 3))]
        elif pick < 0.86:
            watched = rng.choice(keys)
            commands += [("WATCH", watched), ("MSET", *[x for k in some(1, 3) for x in (k, value)]),
                         ("MULTI",), ("GET", watched), ("MGET", *some(2, 3)), ("EXEC",)]
        else:
            commands += [("MGET", *some(2, 6)), ("EXISTS", *some(2, 6)), ("DBSIZE",)]
    return commands


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("nshards", [2, 4])
def test_pipelined_split_commands_match_redis(nshards, proto, redis_ref, request):
    """Pipelines of MSET/MGET/DEL/... across shards, back to back and between
    local commands, SELECT, errors, MULTI/EXEC and WATCH: every reply, in
    order, as redis-server gives it."""
    import random

    server = request.getfixturevalue("fc%d" % nshards)
    keys = round_robin(nshards, 3 * nshards, "sp") + ["{sp}a", "{sp}b"]
    rng = random.Random(nshards * 10 + proto)
    clients = [RawClient(redis_ref.port), RawClient(server.port)]
    try:
        for client in clients:
            assert client.call("FLUSHALL") == b"+OK\r\n"
            if proto == 3:
                client.call("HELLO", "3")
        for chunk in range(6):
            commands = _split_pipeline(rng, keys, 60)
            expected, got = (_pipeline(client, commands) for client in clients)
            for command, want, have in zip(commands, expected, got):
                assert have == want, (chunk, command, want, have)
            for client in clients:
                assert client.call("SELECT", "0") == b"+OK\r\n"
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("nshards", [2, 4])
def test_split_run_longer_than_a_group(nshards, request):
    """A client's split commands spread over several groups: the commands after
    them wait for the last group, not the first. Past CLIENT_MAX in flight, the
    next ones wait too."""
    from fastcache.server.crossshard import CLIENT_MAX, GROUP_MAX

    server = request.getfixturevalue("fc%d" % nshards)
    keys = one_per_shard(nshards, "run")
    client = RawClient(server.port)
    try:
        assert client.call("FLUSHALL") == b"+OK\r\n"
        n = CLIENT_MAX + GROUP_MAX // 2
        commands = [("MSET", *[x for k in keys for x in (k, "%d" % i)]) for i in range(n)]
        commands += [("GET", k) for k in keys] + [("INCR", keys[0]), ("MGET", *keys)]
        last = b"%d" % (n - 1)
        assert _pipeline(client, commands) == (
            [b"+OK\r\n"] * n + [_bulk(last)] * len(keys) + [b":%d\r\n" % n]
            + [b"*%d\r\n" % len(keys) + _bulk(b"%d" % n) + _bulk(last) * (len(keys) - 1)])
    finally:
        client.close()
