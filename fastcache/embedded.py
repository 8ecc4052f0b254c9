"""fastcache.Cache: the fastcache engine inside your process, with redis-py's API.

    from fastcache import Cache
    cache = Cache()                    # or Cache(databases=4, db=1, decode_responses=True)
    cache.set("k", "v", ex=60)
    cache.get("k")                     # b'v', as redis.Redis would return it

The command methods are redis-py's own (redis.commands.core.CoreCommands):
they build the argv and call execute_command, which runs it through the same
engine and server handlers as fastcache-server, turns the reply into what
redis-py's parser would have read, and applies redis-py's response callbacks,
so return values and exceptions are redis.Redis's. get, set, incr(by),
decr(by), delete and exists have a direct path on the keyspace dicts with the
same results. One lock serialises engine access: a Cache may be shared by
threads.

With Cache(path="data/") the data lives on in that directory, in the server's
format (WAL and snapshots per shard): a fastcache-server --dir data/ started
later sees it, and the other way round. appendonly, appendfsync and save
rules are config keys as for the server; close() flushes and saves.
"""
import os
import time
import weakref

from redis.client import EMPTY_RESPONSE, NEVER_DECODE, CaseInsensitiveDict
from redis.client import Pipeline as _RedisPipeline, Redis as _Redis
from redis._parsers.encoders import Encoder
from redis._parsers.response_callbacks import get_response_callbacks
from redis.commands.core import CoreCommands
from redis.exceptions import ExecAbortError, ResponseError, WatchError

from fastcache.config import Config, ConfigError
from fastcache.embedded_engine import Engine, Session
from fastcache.embedded_replies import ReplyReader, encode_arg, encode_command, raise_if_failed
from fastcache.engine.args import INT64_MAX, INT64_MIN
from fastcache.protocol.parser import string2ll

_time = time.time
_time_ns = time.time_ns
# Relative TTLs the direct SET path takes; anything else goes through the handler.
_FAST_TTL_LIMIT = 1 << 40
# Commands with a direct path: a custom response callback for one turns it off.
_FAST_METHODS = {"GET": ("get",), "SET": ("set",), "INCRBY": ("incrby", "incr"),
                 "DECRBY": ("decrby", "decr"), "DEL": ("delete",), "EXISTS": ("exists",)}


def build_config(options, persistent=False):
    """Server config keys given as keyword arguments (databases=4, hz=20, ...).
    With a path the server's defaults apply (save rules, appendonly as given);
    without one nothing is saved."""
    config = Config()
    config.set("shards", 1)
    config.set("port", 0)  # until serve() listens somewhere
    config.set("loglevel", "warning")  # a library keeps quiet unless something is wrong
    if not persistent:
        config.set("save", "")
    for key, value in options.items():
        name = key.replace("_", "-")
        if name == "shards" and str(value).strip() != "1":
            raise ConfigError("shards", "an embedded Cache is one shard (got %r)" % (value,))
        config.set(name, value)
    return config


class Cache(CoreCommands):
    """An in-process fastcache with redis.Redis's methods and return values."""

    def __init__(self, path=None, *, db=0, decode_responses=False, encoding="utf-8",
                 encoding_errors="strict", protocol=None, legacy_responses=True, **config):
        if protocol not in (None, 2, 3, "2", "3"):
            raise ValueError("protocol must be 2 or 3")
        engine = Engine(build_config(config, persistent=path is not None),
                        None if path is None else os.fspath(path))
        dbs = len(engine.ks.dbs)
        if type(db) is not int or not 0 <= db < dbs:
            engine.close()
            raise ValueError("db must be an int from 0 to %d (databases=%d)" % (dbs - 1, dbs))
        # redis-py speaks RESP3 unless told otherwise and shapes replies like RESP2's.
        proto = 2 if protocol in (2, "2") else 3
        self._engine = engine
        self._lock = engine.lock
        self._ks = engine.ks
        self._session = Session(engine, db, proto, shared=True)
        self._ctx = self._session.ctx
        # What the direct paths use, in one attribute (see below).
        self._direct = (engine.lock, engine.ks, engine.worker, self._ctx, engine.worker.stats)
        self._proto = proto
        self._decode = bool(decode_responses)
        self._encoding, self._errors = encoding, encoding_errors
        self._reader = ReplyReader(proto, self._decode, encoding, encoding_errors)
        self._raw_reader = ReplyReader(proto, False, encoding, encoding_errors)
        self._encoder = Encoder(encoding, encoding_errors, self._decode)
        self._kwargs = {"db": db, "decode_responses": self._decode, "encoding": encoding,
                        "encoding_errors": encoding_errors, "protocol": protocol,
                        "legacy_responses": legacy_responses}
        self.response_callbacks = CaseInsensitiveDict(get_response_callbacks(
            user_protocol=protocol, legacy_responses=legacy_responses))
        self._finalizer = weakref.finalize(self, engine.close)

    def __repr__(self):
        return "<fastcache.Cache(db=%d, databases=%d)>" % (self._ctx.db.id, len(self._ks.dbs))

    # -- redis.Redis's plumbing -------------------------------------------------

    def execute_command(self, *args, **options):
        argv = encode_command(args)
        reader = self._raw_reader if NEVER_DECODE in options else self._reader
        lock = self._lock
        lock.acquire()
        try:
            value = reader(self._session.call(argv))
        finally:
            lock.release()
        return self.parse_reply(args[0], value, options)

    def parse_reply(self, command_name, value, options):
        """Redis.parse_response's work on an already read value."""
        options.pop(NEVER_DECODE, None)
        try:
            raise_if_failed(value)
        except ResponseError:
            if EMPTY_RESPONSE in options:
                return options[EMPTY_RESPONSE]
            raise
        options.pop(EMPTY_RESPONSE, None)
        options.pop("keys", None)
        if command_name in self.response_callbacks:
            return self.response_callbacks[command_name](value, **options)
        return value

    def set_response_callback(self, command, callback):
        self.response_callbacks[command] = callback
        for method in _FAST_METHODS.get(command.upper(), ()):
            # The direct path knows the default callback only.
            setattr(self, method, getattr(CoreCommands, method).__get__(self))

    def get_encoder(self):
        return self._encoder

    def get_connection_kwargs(self):
        return dict(self._kwargs)

    def pipeline(self, transaction=True, shard_hint=None):
        return Pipeline(self, transaction, shard_hint)

    transaction = _Redis.transaction

    def serve(self, host="127.0.0.1", port=6379):
        """Serve this cache's live data over RESP on (host, port) from a background
        thread until close(); port=0 picks a free port. Returns (host, port)."""
        return self._engine.serve(host, port)

    def pubsub(self, **kwargs):
        raise NotImplementedError("pub/sub needs a connection: serve() the Cache and "
                                  "subscribe with a Redis client")

    def close(self):
        """Stop serving and the background expiry; the data stays usable here."""
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _new_session(self):
        return Session(self._engine, self._ctx.db.id, self._proto)

    # -- direct paths ------------------------------------------------------------
    # Each does what the command's handler and Worker.run_command would do
    # (lazy expiry, hit/miss and command counters, access time, dirty count)
    # while the server's fast path would run it: no keyspace events, O(1)
    # commands untimed, no WATCHed keys to invalidate. Anything else (an
    # expired key, a wrong type, an error to report) takes the full path.
    # acquire/try/release: a `with` block costs twice as much here.

    def get(self, name):
        key = name if type(name) is bytes else encode_arg(name)
        lock, ks, worker, ctx, stats = self._direct
        lock.acquire()
        try:
            if worker.untimed_fast:
                db = ctx.db
                value = db.data.get(key)
                if value is None:
                    ks.misses += 1
                    stats.commands += 1
                    return None
                if type(value) is bytes:
                    at = db.expires.get(key)
                    # at > now_ms() without the rounding: at is a whole number of ms.
                    if at is None or at > _time() * 1000:
                        ks.hits += 1
                        db.atime[key] = ks.clock
                        stats.commands += 1
                        return value.decode(self._encoding, self._errors) if self._decode else value
        finally:
            lock.release()
        return self.execute_command("GET", name, keys=[name])

    def set(self, name, value, ex=None, px=None, nx=False, xx=False, keepttl=False, get=False,
            exat=None, pxat=None, ifeq=None, ifne=None, ifdeq=None, ifdne=None):
        if (nx or xx or keepttl or get or px is not None or exat is not None or pxat is not None
                or ifeq is not None or ifne is not None or ifdeq is not None or ifdne is not None
                or (ex is not None and (type(ex) is not int or not 0 < ex < _FAST_TTL_LIMIT))):
            conditions = {k: v for k, v in (("ifeq", ifeq), ("ifne", ifne), ("ifdeq", ifdeq),
                                            ("ifdne", ifdne)) if v is not None}
            return CoreCommands.set(self, name, value, ex, px, nx, xx, keepttl, get, exat, pxat,
                                    **conditions)
        key = name if type(name) is bytes else encode_arg(name)
        data = value if type(value) is bytes else encode_arg(value)
        lock, ks, worker, ctx, stats = self._direct
        lock.acquire()
        try:
            if worker.untimed_fast and not ks.watched and ks.journal is None:
                db = ctx.db
                expires = db.expires
                if ex is None:
                    if expires:
                        expires.pop(key, None)
                else:
                    now = _time_ns() // 1000000
                    # SET with options looks the key up first: an expired one goes, counted.
                    at = expires.get(key)
                    if at is not None and at <= now:
                        ks.expire_key(db, key)
                    expires[key] = now + ex * 1000
                db.data[key] = data
                db.atime[key] = ks.clock
                ks.dirty += 1
                stats.commands += 1
                return True
        finally:
            lock.release()
        return CoreCommands.set(self, name, value, ex)

    def incrby(self, name, amount=1):
        if type(amount) is int and INT64_MIN <= amount <= INT64_MAX:
            value = self._add(name, amount)
            if value is not None:
                return value
        return self.execute_command("INCRBY", name, amount)

    incr = incrby

    def decrby(self, name, amount=1):
        if type(amount) is int and INT64_MIN < amount <= INT64_MAX:
            value = self._add(name, -amount)
            if value is not None:
                return value
        return self.execute_command("DECRBY", name, amount)

    decr = decrby

    def _add(self, name, delta):
        """INCRBY's direct path: the new value, or None for the full path."""
        key = name if type(name) is bytes else encode_arg(name)
        lock, ks, worker, ctx, stats = self._direct
        lock.acquire()
        try:
            if not worker.untimed_fast or ks.watched or ks.journal is not None:
                return None
            db = ctx.db
            old = db.data.get(key)
            if old is not None and db.expires:
                at = db.expires.get(key)
                if at is not None and at <= _time() * 1000:
                    ks.expire_key(db, key)
                    old = None
            if old is not None:
                current = string2ll(old) if type(old) is bytes else None
                if current is None or not INT64_MIN <= current + delta <= INT64_MAX:
                    return None
                delta += current
            db.data[key] = b"%d" % delta
            db.atime[key] = ks.clock
            ks.dirty += 1
            stats.commands += 1
            return delta
        finally:
            lock.release()

    def delete(self, *names):
        if names:
            keys = [n if type(n) is bytes else encode_arg(n) for n in names]
            lock, ks, worker, ctx, stats = self._direct
            lock.acquire()
            try:
                if worker.untimed_fast and not ks.watched and ks.journal is None:
                    db = ctx.db
                    removed = 0
                    for key in keys:
                        if ks.delete(db, key):
                            removed += 1
                    stats.commands += 1
                    return removed
            finally:
                lock.release()
        return self.execute_command("DEL", *names)

    def exists(self, *names):
        if names:
            keys = [n if type(n) is bytes else encode_arg(n) for n in names]
            lock, ks, worker, ctx, stats = self._direct
            lock.acquire()
            try:
                if worker.untimed_fast:
                    db = ctx.db
                    found = 0
                    for key in keys:
                        if ks.peek(db, key) is not None:
                            found += 1
                    ks.hits += found
                    ks.misses += len(keys) - found
                    stats.commands += 1
                    return found
            finally:
                lock.release()
        return self.execute_command("EXISTS", *names, keys=names)

    __contains__ = exists


class Pipeline(CoreCommands):
    """redis-py's Pipeline on a Cache: commands are buffered and run in one go
    under the Cache lock; with transaction=True as MULTI ... EXEC, so
    atomically, with WATCH (and WatchError) as in redis-py."""

    UNWATCH_COMMANDS = _RedisPipeline.UNWATCH_COMMANDS

    def __init__(self, cache, transaction, shard_hint):
        self._cache = cache
        self.response_callbacks = cache.response_callbacks
        self.transaction = transaction
        self.shard_hint = shard_hint
        self.watching = False
        self.command_stack = []
        self.explicit_transaction = False
        self._session = None  # this pipeline's "connection", made on first use

    # The parts of redis-py's Pipeline that never touch a connection.
    __enter__ = _RedisPipeline.__enter__
    __exit__ = _RedisPipeline.__exit__
    __len__ = _RedisPipeline.__len__
    __bool__ = _RedisPipeline.__bool__
    multi = _RedisPipeline.multi
    execute_command = _RedisPipeline.execute_command
    pipeline_execute_command = _RedisPipeline.pipeline_execute_command
    raise_first_error = _RedisPipeline.raise_first_error
    annotate_exception = _RedisPipeline.annotate_exception
    discard = _RedisPipeline.discard
    watch = _RedisPipeline.watch
    unwatch = _RedisPipeline.unwatch

    def __del__(self):
        # Garbage collection may run this where the Cache lock is held: leave the
        # watches to the engine instead of taking the lock here.
        if self.watching and self._session is not None:
            self._cache._engine.abandon(self._session)

    def reset(self):
        self._reset()

    def close(self):
        self._reset()

    def _reset(self):
        self.command_stack = []
        if self.watching and self._session is not None:
            self._call([[b"UNWATCH"]], [self._cache._reader])
        self.watching = False
        self.explicit_transaction = False
        self._session = None

    def _call(self, argvs, readers):
        """Each argv's reply as redis-py's parser would read it, in one lock hold."""
        cache = self._cache
        with cache._lock:
            if self._session is None:
                self._session = cache._new_session()
            call = self._session.call
            return [read(call(argv)) for argv, read in zip(argvs, readers)]

    def _reader(self, options):
        cache = self._cache
        return cache._raw_reader if NEVER_DECODE in options else cache._reader

    def parse_reply(self, command_name, value, options):
        """Pipeline.parse_response on an already read value."""
        result = self._cache.parse_reply(command_name, value, options)
        if command_name in self.UNWATCH_COMMANDS:
            self.watching = False
        elif command_name == "WATCH":
            self.watching = True
        return result

    def immediate_execute_command(self, *args, **options):
        [value] = self._call([encode_command(args)], [self._reader(options)])
        return self.parse_reply(args[0], value, options)

    def execute(self, raise_on_error=True):
        stack = self.command_stack
        if not stack and not self.watching:
            return []
        try:
            if self.transaction or self.explicit_transaction:
                return self._execute_transaction(stack, raise_on_error)
            return self._execute_pipeline(stack, raise_on_error)
        finally:
            self._reset()

    def _execute_transaction(self, commands, raise_on_error):
        """redis-py's Pipeline._execute_transaction, reading replies from the engine."""
        sent = [encode_command(args) for args, options in commands
                if EMPTY_RESPONSE not in options]
        read = self._cache._reader
        values = iter(self._call([[b"MULTI"]] + sent + [[b"EXEC"]], [read] * (len(sent) + 2)))
        errors = []
        try:
            raise_if_failed(next(values))
        except ResponseError as e:
            errors.append((0, e))
        for i, command in enumerate(commands):
            if EMPTY_RESPONSE in command[1]:
                errors.append((i, command[1][EMPTY_RESPONSE]))
                continue
            try:
                raise_if_failed(next(values))
            except ResponseError as e:
                self.annotate_exception(e, i + 1, command[0])
                errors.append((i, e))
        try:
            response = raise_if_failed(next(values))
        except ExecAbortError:
            if errors:
                raise errors[0][1]
            raise
        self.watching = False
        if response is None:
            raise WatchError("Watched variable changed.")
        for i, e in errors:
            response.insert(i, e)
        if len(response) != len(commands):
            raise ResponseError("Wrong number of response items from pipeline execution")
        if raise_on_error:
            self.raise_first_error(commands, response)
        data = []
        for r, (args, options) in zip(response, commands):
            if not isinstance(r, Exception):
                options.pop("keys", None)
                if args[0] in self.response_callbacks:
                    r = self.response_callbacks[args[0]](r, **options)
            data.append(r)
        return data

    def _execute_pipeline(self, commands, raise_on_error):
        argvs = [encode_command(args) for args, _ in commands]
        values = self._call(argvs, [self._reader(options) for _, options in commands])
        responses = []
        for (args, options), value in zip(commands, values):
            try:
                responses.append(self.parse_reply(args[0], value, options))
            except ResponseError as e:
                responses.append(e)
        if raise_on_error:
            self.raise_first_error(commands, responses)
        return responses
