"""Multi-key set, sorted-set, list and hash commands whose keys live on
different shards (--shards 4), compared with redis-server."""
import pytest

from tests.support.shardkeys import one_per_shard

A, B, C, D = one_per_shard(4, prefix="x")


def _norm(value):
    """Set-like replies come back in any order."""
    if isinstance(value, (list, set)) and all(isinstance(v, str) for v in value):
        return sorted(value)
    return value


SCRIPTS = [
    [("sadd", A, "1", "2", "3"), ("sadd", B, "2", "3", "4"), ("sadd", C, "3", "9"),
     ("sinter", A, B, C), ("sunion", A, B), ("sdiff", A, B, C), ("sinterstore", D, A, B),
     ("smembers", D), ("sunionstore", D, A, C), ("scard", D), ("sdiffstore", D, B, A),
     ("smembers", D), ("smove", A, C, "1"), ("smembers", C), ("sintercard", "3", A, B, C),
     ("smismember", C, "1", "2", "9")],
    [("zadd", A, "1", "a", "2", "b"), ("zadd", B, "3", "b", "4", "c"),
     ("zunionstore", D, "2", A, B, "WEIGHTS", "2", "1"), ("zrange", D, "0", "-1", "WITHSCORES"),
     ("zinterstore", D, "2", A, B, "AGGREGATE", "MAX"), ("zrange", D, "0", "-1", "WITHSCORES"),
     ("zdiffstore", D, "2", A, B), ("zrange", D, "0", "-1"), ("zunion", "2", A, B, "WITHSCORES"),
     ("zinter", "2", A, B), ("zintercard", "2", A, B), ("zrangestore", C, A, "0", "-1"),
     ("zrange", C, "0", "-1", "WITHSCORES"), ("zmpop", "2", D, A, "MIN", "COUNT", "5")],
    [("rpush", A, "1", "2", "3"), ("lmove", A, B, "LEFT", "RIGHT"), ("rpoplpush", A, C),
     ("lrange", A, "0", "-1"), ("lrange", B, "0", "-1"), ("lrange", C, "0", "-1"),
     ("lmpop", "3", D, A, B, "LEFT", "COUNT", "2")],
    [("hset", A, "f", "1"), ("set", B, "v"), ("rename", A, C), ("hgetall", C),
     ("copy", C, D), ("hgetall", D), ("renamenx", B, D), ("exists", A, B, C, D), ("type", C),
     ("sinterstore", D, B, C)],
]


@pytest.mark.parametrize("script", SCRIPTS, ids=["sets", "zsets", "lists", "mixed"])
def test_cross_shard_scripts_match_redis(fc4, redis_ref, script):
    import redis

    def run(port):
        r = redis.Redis(port=port, decode_responses=True)
        r.flushall()
        out = []
        for cmd in script:
            try:
                out.append(_norm(r.execute_command(*cmd)))
            except redis.ResponseError as exc:
                out.append("ERR:" + str(exc))
        r.close()
        return out

    assert run(fc4.port) == run(redis_ref.port)
