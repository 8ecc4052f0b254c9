"""fastcache.AsyncCache: the embedded Cache with redis.asyncio.Redis's API.

The engine is in memory and never waits, so the coroutines run the sync
Cache under its lock and return at once; only the blocking commands (BLPOP
& co) wait, in a worker thread, so they do not stall the event loop.
"""
import asyncio

from redis.asyncio.client import Pipeline as _AsyncRedisPipeline, Redis as _AsyncRedis
from redis.commands.core import AsyncCoreCommands

from fastcache.embedded import Cache, Pipeline
from fastcache.embedded_replies import encode_arg
from fastcache.engine.registry import lookup


def _blocks(name):
    cmd = lookup([encode_arg(name).split(b" ", 1)[0]])
    return cmd is not None and "blocking" in cmd.flags


class AsyncCache(AsyncCoreCommands):
    """An in-process fastcache with redis.asyncio.Redis's methods; takes Cache's arguments."""

    def __init__(self, path=None, **options):
        self.sync = Cache(path, **options)  # the same data, for synchronous code
        self.response_callbacks = self.sync.response_callbacks

    def __repr__(self):
        return "<fastcache.AsyncCache(%r)>" % self.sync

    async def execute_command(self, *args, **options):
        if _blocks(args[0]):
            return await asyncio.to_thread(self.sync.execute_command, *args, **options)
        return self.sync.execute_command(*args, **options)

    # The Cache's direct paths.
    async def get(self, name):
        return self.sync.get(name)

    async def set(self, *args, **kwargs):
        return self.sync.set(*args, **kwargs)

    async def incrby(self, name, amount=1):
        return self.sync.incrby(name, amount)

    incr = incrby

    async def decrby(self, name, amount=1):
        return self.sync.decrby(name, amount)

    decr = decrby

    async def delete(self, *names):
        return self.sync.delete(*names)

    async def exists(self, *names):
        return self.sync.exists(*names)

    def set_response_callback(self, command, callback):
        self.sync.set_response_callback(command, callback)

    def get_encoder(self):
        return self.sync.get_encoder()

    def get_connection_kwargs(self):
        return self.sync.get_connection_kwargs()

    def pipeline(self, transaction=True, shard_hint=None):
        return AsyncPipeline(self.sync, transaction, shard_hint)

    transaction = _AsyncRedis.transaction

    def serve(self, host="127.0.0.1", port=6379):
        return self.sync.serve(host, port)

    async def aclose(self):
        self.sync.close()

    close = aclose

    def __await__(self):
        return self._self().__await__()

    async def _self(self):
        return self

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()


class AsyncPipeline(AsyncCoreCommands):
    """redis.asyncio's Pipeline on a Cache: the sync Pipeline's machinery, awaitable."""

    UNWATCH_COMMANDS = Pipeline.UNWATCH_COMMANDS

    def __init__(self, cache, transaction, shard_hint):
        Pipeline.__init__(self, cache, transaction, shard_hint)
        self.is_transaction = transaction

    _call = Pipeline._call
    _reader = Pipeline._reader
    _reset = Pipeline._reset
    _execute_transaction = Pipeline._execute_transaction
    _execute_pipeline = Pipeline._execute_pipeline
    parse_reply = Pipeline.parse_reply
    raise_first_error = Pipeline.raise_first_error
    annotate_exception = Pipeline.annotate_exception
    pipeline_execute_command = Pipeline.pipeline_execute_command
    __len__ = Pipeline.__len__
    __bool__ = Pipeline.__bool__
    __del__ = Pipeline.__del__
    # redis.asyncio's own, which only await the methods above.
    multi = _AsyncRedisPipeline.multi
    execute_command = _AsyncRedisPipeline.execute_command
    discard = _AsyncRedisPipeline.discard
    watch = _AsyncRedisPipeline.watch
    unwatch = _AsyncRedisPipeline.unwatch
    __aenter__ = _AsyncRedisPipeline.__aenter__
    __aexit__ = _AsyncRedisPipeline.__aexit__
    __await__ = _AsyncRedisPipeline.__await__
    _async_self = _AsyncRedisPipeline._async_self

    async def immediate_execute_command(self, *args, **options):
        return Pipeline.immediate_execute_command(self, *args, **options)

    async def execute(self, raise_on_error=True):
        return Pipeline.execute(self, raise_on_error)

    async def reset(self):
        self._reset()

    aclose = reset
