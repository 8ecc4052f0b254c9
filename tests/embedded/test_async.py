"""fastcache.AsyncCache: redis.asyncio.Redis's API on the embedded engine."""
import asyncio

import pytest
import redis

from fastcache import AsyncCache


def run(coro):
    return asyncio.run(coro)


def test_commands_and_return_types():
    async def main():
        async with AsyncCache(decode_responses=True) as c:
            assert await c.set("k", "v", ex=100) is True
            assert await c.get("k") == "v"
            assert await c.ttl("k") == 100
            assert await c.incr("n") == 1
            assert await c.incrby("n", 4) == 5
            assert await c.decr("n") == 4
            assert await c.exists("k", "n", "nope") == 2
            assert await c.hset("h", mapping={"a": 1, "b": 2}) == 2
            assert await c.hgetall("h") == {"a": "1", "b": "2"}
            assert await c.rpush("l", 1, 2, 3) == 3
            assert await c.lrange("l", 0, -1) == ["1", "2", "3"]
            assert await c.sadd("s", "x", "y") == 2
            assert await c.smembers("s") == {"x", "y"}
            assert await c.zadd("z", {"a": 1, "b": 2}) == 2
            assert await c.zrange("z", 0, -1, withscores=True) == [("a", 1.0), ("b", 2.0)]
            assert sorted([k async for k in c.scan_iter()]) == ["h", "k", "l", "n", "s", "z"]
            assert await c.dbsize() == 6
            assert await c.delete("k", "nope") == 1
            assert (await c.info("keyspace"))["db0"]["keys"] == 5
            with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
                await c.lpush("h", 1)
            assert await c.execute_command("PING") is True
    run(main())


def test_pipelines_and_transactions():
    async def main():
        async with AsyncCache() as c:
            async with c.pipeline() as pipe:
                pipe.set("a", 1).incr("a").get("a")
                assert await pipe.execute() == [True, 2, b"2"]
            pipe = c.pipeline(transaction=False)
            pipe.set("b", 1)
            pipe.lpush("b", 1)
            result = await pipe.execute(raise_on_error=False)
            assert result[0] is True and isinstance(result[1], redis.ResponseError)

            async def bump(p):
                value = int(await p.get("a"))
                p.multi()
                p.set("a", value + 10)
            assert await c.transaction(bump, "a") == [True]
            assert await c.get("a") == b"12"

            async with c.pipeline() as pipe:
                await pipe.watch("a")
                await c.set("a", 0)
                pipe.multi()
                pipe.incr("a")
                with pytest.raises(redis.WatchError):
                    await pipe.execute()
    run(main())


def test_blocking_commands_do_not_stall_the_event_loop():
    async def main():
        async with AsyncCache() as c:
            waiter = asyncio.create_task(c.blpop(["jobs"], timeout=5))
            await asyncio.sleep(0.05)
            assert not waiter.done()
            await c.rpush("jobs", "job")
            assert await asyncio.wait_for(waiter, 5) == (b"jobs", b"job")
    run(main())


def test_shares_data_with_its_sync_cache():
    async def main():
        c = AsyncCache()
        c.sync.set("from-sync", "1")
        assert await c.get("from-sync") == b"1"
        await c.aclose()
    run(main())
