"""Plain redis-py calls, grouped by family, run against any redis.Redis-like client.

Each scenario is a list of steps, each a function of the client; the test runs
them on redis-py talking to fastcache-server and on the embedded Cache, and
requires the same outcome (value, or exception class and message) for every
step. Steps avoid nondeterministic replies (or reduce them to a stable fact).
"""
import datetime

import redis


def _sorted(value):
    return sorted(value, key=repr)


def _watch_then_change(c):
    """WATCH a key, change it from outside the pipeline, EXEC: WatchError."""
    with c.pipeline() as pipe:
        pipe.watch("w")
        before = pipe.get("w")
        c.set("w", "changed")
        pipe.multi()
        pipe.set("w", "mine")
        try:
            pipe.execute()
        except redis.WatchError as exc:
            return ("watch-error", before, str(exc))
        return ("no error", before)


def _watch_untouched(c):
    with c.pipeline() as pipe:
        pipe.watch("w2")
        value = pipe.get("w2")
        pipe.multi()
        pipe.set("w2", "next").get("w2")
        return value, pipe.execute()


def _transaction_helper(c):
    def bump(pipe):
        current = int(pipe.get("counter") or 0)
        pipe.multi()
        pipe.set("counter", current + 10)
    return c.transaction(bump, "counter"), c.get("counter")


STRINGS = [
    lambda c: c.set("s", "hello"),
    lambda c: c.get("s"),
    lambda c: c.get("missing"),
    lambda c: c["s"],
    lambda c: c.set("s", "x", nx=True),
    lambda c: c.set("s", "world", xx=True, get=True),
    lambda c: c.set("bin", b"\x00\xff\x01"),
    lambda c: c.get("bin") if not c.get_connection_kwargs().get("decode_responses") else "skip",
    lambda c: c.append("s", "!"),
    lambda c: c.strlen("s"),
    lambda c: c.getrange("s", 1, 3),
    lambda c: c.setrange("s", 0, "W"),
    lambda c: c.mset({"m1": "a", "m2": "b"}),
    lambda c: c.mget("m1", "m2", "nope"),
    lambda c: c.msetnx({"m1": "z", "m3": "c"}),
    lambda c: c.getset("m1", "new"),
    lambda c: c.getdel("m2"),
    lambda c: c.setnx("m2", 1),
    lambda c: c.incr("n"),
    lambda c: c.incr("n", 41),
    lambda c: c.incrby("n", -2),
    lambda c: c.decr("n"),
    lambda c: c.decrby("n", 10),
    lambda c: c.incrbyfloat("f", 1.5),
    lambda c: c.incrbyfloat("f", "2.25"),
    lambda c: c.incr("s"),
    lambda c: c.incr("n", 2 ** 63 - 1),
    lambda c: c.decrby("n", -(2 ** 63)),
    lambda c: c.incr("n", 1.5),
    lambda c: c.set("e", 1, ex=100),
    lambda c: c.ttl("e"),
    lambda c: 99000 < c.pttl("e") <= 100000,
    lambda c: c.set("e", 1, px=5000, keepttl=False),
    lambda c: c.set("e", 1, ex=0),
    lambda c: c.set("e", 1, ex=-5),
    lambda c: c.set("e", 1, ex=datetime.timedelta(seconds=30)),
    lambda c: c.ttl("e"),
    lambda c: c.set("e", 2, keepttl=True),
    lambda c: c.ttl("e"),
    lambda c: c.set("e", 3),
    lambda c: c.ttl("e"),
    lambda c: c.execute_command("SETEX", "se", 50, "v"),
    lambda c: c.psetex("pe", 50000, "v"),
    lambda c: c.ttl("se"),
    lambda c: c.getex("se", persist=True),
    lambda c: c.ttl("se"),
    lambda c: c.lcs("m1", "s"),
    lambda c: c.set("t", True),
    lambda c: c.set("t", None),
    lambda c: c.set("fl", 0.1),
    lambda c: c.get("fl"),
    lambda c: c.set("big", 10 ** 20),
    lambda c: c.get("big"),
    lambda c: c.set("uni", "h\u00e9llo"),
    lambda c: c.get("uni"),
    lambda c: c.delete("s", "m1", "nope"),
    lambda c: c.exists("s", "m2", "m2", "n"),
    lambda c: "s" in c,
]

KEYS = [
    lambda c: c.mset({"k1": "1", "k2": "2", "k3": "3"}),
    lambda c: c.lpush("kl", "a"),
    lambda c: c.type("k1"),
    lambda c: c.type("kl"),
    lambda c: c.type("none"),
    lambda c: c.expire("k1", 100),
    lambda c: c.expire("k1", 50, gt=True),
    lambda c: c.expire("k1", 50, lt=True),
    lambda c: c.ttl("k1"),
    lambda c: c.persist("k1"),
    lambda c: c.ttl("k1"),
    lambda c: c.pexpire("k2", 100000),
    lambda c: c.expireat("k3", datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)),
    lambda c: c.expiretime("k3"),
    lambda c: c.pexpireat("k3", 4102444800000),
    lambda c: c.pexpiretime("k3"),
    lambda c: c.expire("k2", 0),
    lambda c: c.exists("k2"),
    lambda c: c.rename("k1", "k4"),
    lambda c: c.rename("nope", "k5"),
    lambda c: c.renamenx("k4", "k3"),
    lambda c: c.copy("k4", "k6"),
    lambda c: c.copy("k4", "k6"),
    lambda c: c.copy("k4", "k6", replace=True),
    lambda c: c.object("encoding", "k4"),
    lambda c: c.object("encoding", "kl"),
    lambda c: c.object("refcount", "k4"),
    lambda c: c.touch("k4", "k6", "nope"),
    lambda c: c.unlink("k6", "nope"),
    lambda c: sorted(c.keys("*")),
    lambda c: sorted(c.keys("k[0-9]")),
    lambda c: c.dbsize(),
    lambda c: sorted(c.scan_iter()),
    lambda c: sorted(c.scan_iter(match="k*", count=1)),
    lambda c: sorted(c.scan_iter(_type="list")),
    lambda c: c.scan(0, count=100)[0],
    lambda c: c.randomkey() is not None,
    lambda c: c.move("k4", 1),
    lambda c: c.execute_command("SELECT", 1),
    lambda c: c.get("k4"),
    lambda c: c.execute_command("SELECT", 0),
    lambda c: c.get("k4"),
    lambda c: c.swapdb(0, 1),
    lambda c: c.dbsize(),
    lambda c: c.swapdb(0, 1),
    lambda c: c.flushdb(),
    lambda c: c.dbsize(),
    lambda c: c.execute_command("SELECT", 99),
]

HASHES = [
    lambda c: c.hset("h", "f1", "v1"),
    lambda c: c.hset("h", mapping={"f2": 2, "f3": 3.5}),
    lambda c: c.hset("h", items=["f4", "v4"]),
    lambda c: c.hget("h", "f2"),
    lambda c: c.hget("h", "nope"),
    lambda c: c.hgetall("h"),
    lambda c: c.hmget("h", ["f1", "nope", "f3"]),
    lambda c: c.hkeys("h"),
    lambda c: c.hvals("h"),
    lambda c: c.hlen("h"),
    lambda c: c.hexists("h", "f1"),
    lambda c: c.hstrlen("h", "f1"),
    lambda c: c.hsetnx("h", "f1", "x"),
    lambda c: c.hincrby("h", "f2", 5),
    lambda c: c.hincrbyfloat("h", "f3", 1.25),
    lambda c: c.hincrby("h", "f1", 1),
    lambda c: c.hdel("h", "f4", "nope"),
    lambda c: sorted(c.hscan_iter("h")),
    lambda c: sorted(c.hscan_iter("h", match="f[12]")),
    lambda c: c.hscan("h")[0],
    lambda c: c.hrandfield("h", 10, withvalues=True) is not None,
    lambda c: len(c.hrandfield("h", -5)),
    lambda c: c.hgetall("nope"),
    lambda c: c.set("str", "v"),
    lambda c: c.hget("str", "f"),
    lambda c: c.hset("h"),
]

LISTS = [
    lambda c: c.rpush("l", "a", "b", "c"),
    lambda c: c.lpush("l", "z"),
    lambda c: c.lrange("l", 0, -1),
    lambda c: c.llen("l"),
    lambda c: c.lindex("l", 1),
    lambda c: c.lset("l", 1, "A"),
    lambda c: c.lset("l", 99, "A"),
    lambda c: c.linsert("l", "before", "b", "B"),
    lambda c: c.lpos("l", "c"),
    lambda c: c.lrem("l", 0, "B"),
    lambda c: c.ltrim("l", 0, 2),
    lambda c: c.lpop("l"),
    lambda c: c.rpop("l", 5),
    lambda c: c.lpop("l"),
    lambda c: c.rpush("l", 1, 2, 3, 4),
    lambda c: c.lmove("l", "l2", "LEFT", "RIGHT"),
    lambda c: c.rpoplpush("l", "l2"),
    lambda c: c.lrange("l2", 0, -1),
    lambda c: c.lmpop(2, "nope", "l", direction="RIGHT", count=2),
    lambda c: c.lpushx("nope", 1),
    lambda c: c.rpushx("l2", 9),
    lambda c: c.blpop(["l2"], timeout=1),
    lambda c: c.brpop(["l2", "l"], timeout=1),
    lambda c: c.blpop(["empty"], timeout=0.1),
    lambda c: c.blmove("l2", "l3", 1, "RIGHT", "LEFT"),
    lambda c: c.brpoplpush("nope", "l3", 0.1),
    lambda c: c.blmpop(0.1, 1, "l3", direction="LEFT", count=5),
    lambda c: c.blpop(["l"], timeout=-1),
    lambda c: c.set("str", "v"),
    lambda c: c.lpush("str", 1),
    lambda c: c.blpop(["str"], timeout=1),
]

SETS = [
    lambda c: c.sadd("s1", "a", "b", "c", "d"),
    lambda c: c.sadd("s2", "c", "d", "e"),
    lambda c: c.sadd("s1", "a"),
    lambda c: c.smembers("s1"),
    lambda c: c.scard("s1"),
    lambda c: c.sismember("s1", "a"),
    lambda c: c.smismember("s1", ["a", "x"]),
    lambda c: c.sinter("s1", "s2"),
    lambda c: c.sunion("s1", "s2"),
    lambda c: c.sdiff("s1", "s2"),
    lambda c: c.sintercard(2, ["s1", "s2"]),
    lambda c: c.sinterstore("s3", ["s1", "s2"]),
    lambda c: c.sunionstore("s4", ["s1", "s2"]),
    lambda c: c.sdiffstore("s5", ["s1", "s2"]),
    lambda c: c.smembers("s5"),
    lambda c: c.smove("s1", "s2", "a"),
    lambda c: c.srem("s1", "b", "zz"),
    lambda c: _sorted(c.srandmember("s4", 10)),
    lambda c: len(c.srandmember("s4", -3)),
    lambda c: c.srandmember("nope"),
    lambda c: len(c.spop("s4", 2)),
    lambda c: c.scard("s4"),
    lambda c: sorted(c.sscan_iter("s2")),
    lambda c: c.smembers("nope"),
    lambda c: c.sadd("n", 1, 2, 3),
    lambda c: c.object("encoding", "n"),
    lambda c: c.sadd("s1"),
]

ZSETS = [
    lambda c: c.zadd("z", {"a": 1, "b": 2.5, "c": -3}),
    lambda c: c.zadd("z", {"a": 5}, nx=True),
    lambda c: c.zadd("z", {"a": 5}, xx=True, ch=True),
    lambda c: c.zadd("z", {"d": 1}, incr=True),
    lambda c: c.zscore("z", "b"),
    lambda c: c.zscore("z", "nope"),
    lambda c: c.zmscore("z", ["a", "nope"]),
    lambda c: c.zincrby("z", 0.5, "b"),
    lambda c: c.zrange("z", 0, -1),
    lambda c: c.zrange("z", 0, -1, withscores=True),
    lambda c: c.zrange("z", 0, -1, desc=True, withscores=True, score_cast_func=int),
    lambda c: c.zrangebyscore("z", 0, "+inf", withscores=True),
    lambda c: c.zrevrangebyscore("z", "+inf", "(1"),
    lambda c: c.zrangebylex("z", "-", "+"),
    lambda c: c.zrank("z", "b"),
    lambda c: c.zrevrank("z", "b"),
    lambda c: c.zcard("z"),
    lambda c: c.zcount("z", 0, 10),
    lambda c: c.zlexcount("z", "-", "+"),
    lambda c: c.zpopmin("z"),
    lambda c: c.zpopmax("z", 2),
    lambda c: c.zadd("z2", {"x": 1, "y": 2, "a": 3}),
    lambda c: c.zunionstore("z3", ["z", "z2"]),
    lambda c: c.zinterstore("z4", {"z": 2, "z2": 1}, aggregate="MAX"),
    lambda c: c.zrange("z3", 0, -1, withscores=True),
    lambda c: c.zunion(["z", "z2"], withscores=True),
    lambda c: c.zinter(["z", "z2"]),
    lambda c: c.zdiff(["z2", "z"], withscores=True),
    lambda c: c.zrangestore("z5", "z2", 0, 1),
    lambda c: c.zremrangebyrank("z2", 0, 0),
    lambda c: c.zremrangebyscore("z3", "-inf", 1),
    lambda c: c.zrem("z3", "y", "nope"),
    lambda c: sorted(c.zscan_iter("z3")),
    lambda c: c.zmpop(2, ["nope", "z3"], min=True, count=1),
    lambda c: c.bzpopmin(["z5"], timeout=1),
    lambda c: c.bzpopmax(["nope"], timeout=0.1),
    lambda c: c.bzmpop(0.1, 1, ["z5"], max=True),
    lambda c: c.zadd("z", {"inf": float("inf")}),
    lambda c: c.zscore("z", "inf"),
    lambda c: c.zadd("z", {"nan": float("nan")}),
    lambda c: c.zadd("z", {}),
    lambda c: len(c.zrandmember("z2", 5, withscores=True)),
]

SERVER = [
    lambda c: c.ping(),
    lambda c: c.echo("hi"),
    lambda c: c.set("k", "v"),
    lambda c: c.dbsize(),
    lambda c: c.info("keyspace"),
    lambda c: sorted(c.info()),
    lambda c: c.info("server")["redis_version"],
    lambda c: c.config_get("databases"),
    lambda c: c.config_get("hz"),
    lambda c: c.config_set("hz", 20),
    lambda c: c.config_get("hz"),
    lambda c: c.config_set("hz", 10),
    lambda c: c.config_set("nope", 1),
    lambda c: c.config_get("notify-keyspace-events"),
    lambda c: len(c.time()),
    lambda c: c.lastsave() is not None,
    lambda c: c.execute_command("COMMAND INFO", "get"),
    lambda c: c.command_count(),
    lambda c: c.command_getkeys("MSET", "a", "1", "b", "2"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "string"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "integer"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "double"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "bignum"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "null"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "array"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "set"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "map"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "verbatim"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "true"),
    lambda c: c.execute_command("DEBUG", "PROTOCOL", "false"),
    lambda c: c.execute_command("DEBUG", "ERROR", "OOM out of memory"),
    lambda c: c.execute_command("DEBUG", "ERROR", "NOSCRIPT x"),
    lambda c: c.execute_command("DEBUG", "ERROR", "READONLY y"),
    lambda c: c.execute_command("DEBUG", "POPULATE", 5, "pop"),
    lambda c: c.dbsize(),
    lambda c: c.execute_command("NOSUCH", "a"),
    lambda c: c.execute_command("GET"),
    lambda c: c.execute_command("get", "k"),
    lambda c: c.execute_command("OBJECT ENCODING", "k"),
    lambda c: c.publish("chan", "msg"),
    lambda c: c.pubsub_channels(),
    lambda c: c.slowlog_len() >= 0,
    lambda c: c.flushall(),
    lambda c: c.dbsize(),
    lambda c: c.get(["list"]),
]

PIPELINES = [
    lambda c: c.pipeline().set("p", 1).incr("p").get("p").lpush("p", 1).execute(raise_on_error=False),
    lambda c: c.pipeline().set("p", 1).lpush("p", 1).incr("p").execute(),
    lambda c: c.pipeline(transaction=False).set("q", 1).incr("q").lpush("q", 1).get("q")
    .execute(raise_on_error=False),
    lambda c: c.pipeline(transaction=False).incr("q").lpush("q", 1).execute(),
    lambda c: c.pipeline().set("r", 1).execute_command("NOSUCH").get("r").execute(),
    lambda c: c.pipeline().set("r", 1).execute_command("GET").execute(raise_on_error=False),
    lambda c: c.get("r"),
    lambda c: c.pipeline().hset("ph", mapping={"a": 1}).hgetall("ph").zadd("pz", {"m": 2})
    .zrange("pz", 0, -1, withscores=True).smembers("nope").execute(),
    lambda c: c.pipeline().execute(),
    lambda c: len(c.pipeline().set("x", 1).get("x")),
    _watch_then_change,
    _watch_untouched,
    _transaction_helper,
    lambda c: c.pipeline().blpop(["nothing"], timeout=5).rpush("nothing", "x").blpop(["nothing"], 5)
    .execute(),
    lambda c: c.pipeline().set("e", 1, ex=100).ttl("e").persist("e").ttl("e").execute(),
]

SCENARIOS = {
    "strings": STRINGS, "keys": KEYS, "hashes": HASHES, "lists": LISTS, "sets": SETS,
    "zsets": ZSETS, "server": SERVER, "pipelines": PIPELINES,
}
