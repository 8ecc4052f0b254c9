"""redis-py (RESP2 and RESP3) against real fastcache servers with 1 and 4 shards.

Where a reply is deterministic the same calls also run on the reference
redis-server and must give the same result or the same error text."""
import time

from tests.integration.conftest import make_client
from tests.support.outcomes import same_outcome
from tests.support.resp import RawClient
from tests.support.shardkeys import one_per_shard, round_robin
from tests.support.workers import one_client_per_worker


def both(script, *clients):
    """Run each call of script on every client in turn; outcomes must agree."""
    return [same_outcome(fn, *clients) for fn in script]


def as_dict(reply):
    """A RESP3 map or a RESP2 flat array of field, value as a dict."""
    return reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2]))


# -- strings ---------------------------------------------------------------


def test_set_get_with_options(r, ref):
    both([
        lambda c: c.set("s", "v"),
        lambda c: c.get("s"),
        lambda c: c.set("s", "w", nx=True),
        lambda c: c.set("s", "w", xx=True),
        lambda c: c.set("absent", "x", xx=True),
        lambda c: c.exists("absent"),
        lambda c: c.set("s", "z", get=True),
        lambda c: c.set("s", "y", ex=100),
        lambda c: c.ttl("s"),
        lambda c: c.set("s", "q", keepttl=True),
        lambda c: c.ttl("s"),
        lambda c: c.set("s", "p"),
        lambda c: c.ttl("s"),
        lambda c: c.set("s", "p", px=100000, get=True),
        lambda c: c.set("e", "1", ex=0),
        lambda c: c.execute_command("SET", "s", "v", "EX", "10", "PX", "10"),
        lambda c: c.execute_command("SET", "s", "v", "NX", "XX"),
        lambda c: c.execute_command("SET", "s", "v", "EX", "ten"),
        lambda c: c.get("missing"),
        lambda c: c.setnx("s", "n"),
        lambda c: c.setnx("n", "n"),
        lambda c: c.execute_command("SETEX", "x", "50", "v"),
        lambda c: c.ttl("x"),
        lambda c: c.execute_command("PSETEX", "x", "50000", "v2"),
        lambda c: c.get("x"),
        lambda c: c.getset("x", "v3"),
        lambda c: c.set("n", "1", ex=-5),
    ], r, ref)


def test_set_with_absolute_expiry(r):
    at = int(time.time()) + 100
    assert r.set("a", "1", exat=at) is True
    assert 95 <= r.ttl("a") <= 100
    assert r.set("b", "1", pxat=at * 1000) is True
    assert 95000 <= r.pttl("b") <= 100000
    assert r.expiretime("a") == at


def test_counters(r, ref):
    both([
        lambda c: c.incr("n"),
        lambda c: c.incr("n", 10),
        lambda c: c.decr("n"),
        lambda c: c.decr("n", 5),
        lambda c: c.incrbyfloat("f", 1.5),
        lambda c: c.incrbyfloat("f", "2.25"),
        lambda c: c.incrbyfloat("n", 0.5),
        lambda c: c.get("n"),
        lambda c: c.set("big", str(2 ** 63 - 1)),
        lambda c: c.incr("big"),
        lambda c: c.set("word", "abc"),
        lambda c: c.incr("word"),
        lambda c: c.incrbyfloat("word", 1),
        lambda c: c.execute_command("INCRBY", "n", "1.5"),
        lambda c: c.get("big"),
    ], r, ref)


def test_mset_mget_across_shards(r, ref):
    keys = round_robin(4, 12, "m")
    mapping = {k: "v%d" % i for i, k in enumerate(keys)}
    both([
        lambda c: c.mset(mapping),
        lambda c: c.mget(keys + ["nope"] + keys[:3]),
        lambda c: c.msetnx({keys[0]: "x", "fresh": "y"}),
        lambda c: c.msetnx({"fresh": "y", "fresh2": "z"}),
        lambda c: c.mget(["fresh", "fresh2", keys[0]]),
        lambda c: c.execute_command("MSET", "a", "1", "b"),
        lambda c: c.dbsize(),
    ], r, ref)


def test_getex_getdel_and_ranges(r, ref):
    both([
        lambda c: c.set("g", "hello"),
        lambda c: c.getex("g", ex=50),
        lambda c: c.ttl("g"),
        lambda c: c.getex("g", persist=True),
        lambda c: c.ttl("g"),
        lambda c: c.getex("g", px=70000),
        lambda c: c.getex("missing", ex=5),
        lambda c: c.execute_command("GETEX", "g", "EX", "0"),
        lambda c: c.append("g", " world"),
        lambda c: c.strlen("g"),
        lambda c: c.getrange("g", 0, 4),
        lambda c: c.getrange("g", -5, -1),
        lambda c: c.setrange("g", 6, "W"),
        lambda c: c.setrange("pad", 3, "x"),
        lambda c: c.get("pad"),
        lambda c: c.getdel("g"),
        lambda c: c.getdel("g"),
        lambda c: c.exists("g"),
    ], r, ref)


# -- keys ------------------------------------------------------------------


def test_expire_ttl_persist(r, ref):
    both([
        lambda c: c.set("k", "v"),
        lambda c: c.ttl("k"),
        lambda c: c.ttl("missing"),
        lambda c: c.pttl("missing"),
        lambda c: c.expire("k", 100),
        lambda c: c.ttl("k"),
        lambda c: c.expire("k", 200, nx=True),
        lambda c: c.expire("k", 200, xx=True),
        lambda c: c.expire("k", 50, gt=True),
        lambda c: c.expire("k", 50, lt=True),
        lambda c: c.ttl("k"),
        lambda c: c.persist("k"),
        lambda c: c.persist("k"),
        lambda c: c.ttl("k"),
        lambda c: c.expiretime("k"),
        lambda c: c.expire("missing", 10),
        lambda c: c.execute_command("EXPIRE", "k", "10", "NX", "XX"),
        lambda c: c.execute_command("EXPIRE", "k", "abc"),
        lambda c: c.expire("k", -1),
        lambda c: c.exists("k"),
    ], r, ref)
    r.set("p", "v")
    assert r.pexpire("p", 100000) is True
    assert 95000 <= r.pttl("p") <= 100000


def test_short_expiry_removes_the_key(r):
    r.set("short", "v", px=30)
    r.set("stays", "v")
    deadline = time.monotonic() + 5
    while r.exists("short") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert r.get("short") is None
    assert r.get("stays") == "v"


def test_scan_iter_keys_type_exists_delete(r, ref):
    wanted = set(round_robin(4, 300, "k"))
    for c in (r, ref):
        c.mset({k: "1" for k in wanted})
        c.mset({"other:%d" % i: "1" for i in range(20)})
    assert set(r.scan_iter(match="k:*", count=20)) == wanted
    assert set(r.scan_iter(match="k:*", count=1000, _type="string")) == wanted
    assert set(r.scan_iter(match="k:*", _type="list")) == set()
    assert set(r.scan_iter()) == wanted | {"other:%d" % i for i in range(20)}
    assert sorted(r.keys("k:1*")) == sorted(ref.keys("k:1*"))
    assert sorted(r.keys("other:?")) == ["other:%d" % i for i in range(10)]
    some = sorted(wanted)[:5]
    both([
        lambda c: c.type(some[0]),
        lambda c: c.type("missing"),
        lambda c: c.exists(some[0], some[0], "missing", some[1]),
        lambda c: c.delete(*some, "missing"),
        lambda c: c.exists(*some),
        lambda c: c.unlink("other:1", "other:2", "other:2"),
        lambda c: c.touch("other:3", "other:4", "missing"),
        lambda c: c.dbsize(),
    ], r, ref)


def test_rename_and_copy(r, ref):
    a, b, c_, d = one_per_shard(4, "rn")
    both([
        lambda c: c.set(a, "va", ex=100),
        lambda c: c.rename(a, b),
        lambda c: c.get(b),
        lambda c: c.ttl(b),
        lambda c: c.exists(a),
        lambda c: c.rename("missing", a),
        lambda c: c.set(c_, "vc"),
        lambda c: c.renamenx(b, c_),
        lambda c: c.renamenx(b, d),
        lambda c: c.copy(d, a),
        lambda c: c.copy(d, a),
        lambda c: c.copy(c_, a, replace=True),
        lambda c: c.get(a),
        lambda c: c.ttl(d),
        lambda c: c.copy(d, d),
        lambda c: c.copy(d, "x", destination_db=3),
        lambda c: c.copy("missing", "x"),
        lambda c: c.execute_command("COPY", d, "y", "DB", "99"),
        lambda c: c.type(a),
    ], r, ref)
    db3 = make_client(r.connection_pool.connection_kwargs["port"], db=3)
    try:
        assert db3.get("x") == "va"
        assert 95 <= db3.ttl("x") <= 100
    finally:
        db3.close()


# -- connection --------------------------------------------------------------


def test_ping_echo_select(r, fc):
    assert r.ping() is True
    assert r.echo("hello world") == "hello world"
    assert r.echo("") == ""
    r.set("in0", "zero")
    assert r.select(5) is True
    assert r.get("in0") is None
    r.set("in5", "five")
    assert r.dbsize() == 1
    assert r.select(0) is True
    assert r.get("in0") == "zero"
    assert r.get("in5") is None
    db5 = make_client(fc.port, db=5)
    try:
        assert db5.get("in5") == "five"
    finally:
        db5.close()


def test_select_errors(r, ref):
    both([
        lambda c: c.execute_command("SELECT", "16"),
        lambda c: c.execute_command("SELECT", "-1"),
        lambda c: c.execute_command("SELECT", "x"),
    ], r, ref)


def test_client_name(r, ref):
    assert r.client_getname() is None
    assert r.client_setname("worker-7") is True
    assert r.client_getname() == "worker-7"
    both([lambda c: c.client_setname("has space")], r, ref)
    assert r.client_getname() == "worker-7"


def test_hello(r, protocol):
    reply = as_dict(r.execute_command("HELLO"))
    assert reply["server"] == "redis"
    assert reply["version"] == "7.0.15"
    assert reply["proto"] == protocol
    assert reply["id"] == r.client_id()
    assert reply["mode"] == "standalone"
    assert reply["role"] == "master"
    assert reply["modules"] == []


def test_hello_errors(r, ref, protocol):
    both([
        lambda c: c.execute_command("HELLO", "4"),
        lambda c: c.execute_command("HELLO", "x"),
        lambda c: c.execute_command("HELLO", str(protocol), "SETNAME"),
        lambda c: c.execute_command("HELLO", str(protocol), "AUTH", "default"),
        lambda c: c.execute_command("HELLO", str(protocol), "BOGUS"),
    ], r, ref)


# -- server ----------------------------------------------------------------


def test_info_fields(r, fc):
    info = r.info()
    assert info["redis_version"] == "7.0.15"
    assert info["redis_mode"] == "standalone"
    assert info["tcp_port"] == fc.port
    assert isinstance(info["connected_clients"], int) and info["connected_clients"] >= 1
    assert isinstance(info["uptime_in_seconds"], int)
    server = r.info("server")
    assert "redis_version" in server and "connected_clients" not in server
    clients = r.info("clients")
    assert "connected_clients" in clients and "redis_version" not in clients


def test_info_connected_clients_counts_every_worker(r):
    port = r.connection_pool.connection_kwargs["port"]
    deltas = []
    for _ in range(3):  # a connection closed by an earlier test may still be counted once
        before = r.info("clients")["connected_clients"]
        extra = [RawClient(port) for _ in range(6)]
        try:
            for c in extra:
                assert c.call("PING") == b"+PONG\r\n"
            deltas.append(r.info("clients")["connected_clients"] - before)
        finally:
            for c in extra:
                c.close()
        if deltas[-1] == 6:
            break
    assert deltas[-1] == 6, deltas
    deadline = time.monotonic() + 5
    while r.info("clients")["connected_clients"] > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert r.info("clients")["connected_clients"] <= before


def test_info_keyspace_sums_shards(r):
    assert r.info("keyspace") == {}
    keys = round_robin(4, 20, "ks")
    r.mset({k: "1" for k in keys})
    for k in keys[:6]:
        r.expire(k, 1000)
    r.select(5)
    r.set("five", "1")
    r.select(0)
    space = r.info("keyspace")
    assert set(space) == {"db0", "db5"}
    assert space["db0"]["keys"] == 20 and space["db0"]["expires"] == 6
    assert space["db5"]["keys"] == 1 and space["db5"]["expires"] == 0
    assert isinstance(space["db0"]["avg_ttl"], int)
    assert r.info()["db0"]["keys"] == 20


def test_dbsize_counts_every_shard(r):
    keys = round_robin(4, 41, "d")
    r.mset({k: "x" for k in keys})
    assert r.dbsize() == 41
    r.select(2)
    assert r.dbsize() == 0
    r.select(0)
    r.delete(*keys[:10])
    assert r.dbsize() == 31


def test_config_get(r, ref):
    assert r.config_get("maxclients") == {"maxclients": "10000"}
    assert r.config_get("nosuchkey") == {}
    both([
        lambda c: c.config_get("slowlog-*"),
        lambda c: c.config_get("timeout"),
        lambda c: c.config_get("databases"),
        lambda c: as_dict(c.execute_command("CONFIG", "GET", "hz", "tcp-keepalive")),
        lambda c: c.config_get("proto-max-bulk-len"),
        lambda c: c.execute_command("CONFIG", "GET"),
    ], r, ref)


def test_config_set_reaches_every_worker(r, fc):
    assert r.config_set("slowlog-max-len", 77) is True
    try:
        assert r.config_get("slowlog-max-len") == {"slowlog-max-len": "77"}
        clients = one_client_per_worker(lambda: make_client(fc.port), fc.shards)
        try:
            assert len(clients) == fc.shards
            for client in clients.values():
                assert client.config_get("slowlog-max-len") == {"slowlog-max-len": "77"}
        finally:
            for client in clients.values():
                client.close()
    finally:
        r.config_set("slowlog-max-len", 128)
    assert r.config_get("slowlog-max-len") == {"slowlog-max-len": "128"}


def test_config_set_errors(r, ref):
    both([
        lambda c: c.config_set("nosuch", 1),
        lambda c: c.config_set("maxclients", "abc"),
        lambda c: c.config_set("slowlog-max-len", "-5"),
        lambda c: c.config_set("databases", "8"),
        lambda c: c.execute_command("CONFIG", "SET", "timeout"),
        lambda c: c.execute_command("CONFIG", "SET", "timeout", "0", "timeout", "0"),
        lambda c: c.execute_command("CONFIG", "SET", "hz", "10", "slowlog-max-len", "128"),
        lambda c: c.config_get("hz"),
    ], r, ref)


def test_time_and_command_count(r):
    seconds, micros = r.time()
    assert abs(seconds - time.time()) < 60
    assert 0 <= micros < 1_000_000
    count = r.command_count()
    assert isinstance(count, int) and count > 0


# -- pipelines -----------------------------------------------------------------


def test_pipeline_of_1000_commands_keeps_order(r):
    keys = round_robin(4, 250, "p")
    pipe = r.pipeline(transaction=False)
    expected = []
    for i, key in enumerate(keys):
        pipe.set(key, i)
        pipe.get(key)
        pipe.incr(key)
        pipe.exists(key, keys[(i + 1) % len(keys)])
        # the next key is not set yet, except keys[0] named by the last EXISTS
        expected += [True, str(i), i + 1, 1 if i < len(keys) - 1 else 2]
    results = pipe.execute()
    assert len(results) == 1000
    assert results == expected
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    pipe.mget(keys)
    pipe.dbsize()
    results = pipe.execute()
    values = [str(i + 1) for i in range(250)]
    assert results == values + [values, 250]
