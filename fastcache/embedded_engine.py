"""The machinery behind fastcache.Cache: one shard engine in this process.

- Engine: the keyspace and its one-shard server Worker (config, INFO stats,
  slowlog, pub/sub registry, blocked clients), the lock around all of it, the
  active-expiry thread and, after serve(), the thread serving it over RESP.
- Session: what the server's command handlers see as the client connection
  (ctx.client): db, MULTI queue, WATCHed keys, name. Commands run through the
  same handlers and Worker.run_command as in fastcache-server, so replies,
  errors, statistics and WATCH invalidation are the server's.
- Serving: an asyncio loop in a background thread runs the server's
  ClientConnection on the Engine's Worker. Its selector releases the Engine
  lock only while it waits for I/O, so every served command, and every timer
  or callback the loop runs, holds the lock like an in-process call does.
"""
import asyncio
import os
import selectors
import socket
import threading
import time

from fastcache.engine import dispatch  # noqa: F401 (registers the engine's command families)
from fastcache.engine.context import Context
from fastcache.engine.errors import CommandError
from fastcache.engine.registry import ALL, resolve
from fastcache.persistence import datadir
from fastcache.protocol.replies import QUEUED, Error, NullArray
from fastcache.server import blocking
from fastcache.server.fanout import merged, plan_all
from fastcache.server.transactions import IMMEDIATE, unwatch_all
from fastcache.server.worker import Worker

_PIPELINE = "use cache.pipeline()"
_CONNECTION = "use cache.serve() and a Redis client"
# Commands a Session refuses: they need a socket (or, for a Cache shared by
# threads, connection state that threads would trample).
_NEEDS_CONNECTION = {
    "subscribe": _CONNECTION, "unsubscribe": _CONNECTION, "psubscribe": _CONNECTION,
    "punsubscribe": _CONNECTION, "client|info": _CONNECTION, "shutdown": "use cache.close()",
}
_TRANSACTION_STATE = {name: _PIPELINE for name in ("multi", "exec", "discard", "watch", "unwatch")}

# Where a blocking command's timeout is (default: last).
_TIMEOUT_ARG = {"blmpop": 1, "bzmpop": 1, "blmove": 5, "brpoplpush": 3}


def _refusal(name, hint):
    return Error("ERR %s needs a client connection, which an embedded Cache does not have: %s"
                 % (name.upper().replace("|", " "), hint))


class Session:
    """One caller's connection state, in the shape the server's handlers use."""

    addr = laddr = ""
    authenticated = True

    def __init__(self, engine, dbnum, proto, shared=False):
        worker = engine.worker
        self.engine = engine
        self.worker = worker
        self.id = worker.new_client_id()
        self.ctx = Context(worker.ks, dbnum, proto, self, worker)
        self.name = self.lib_name = self.lib_ver = b""
        self.multi = None
        self.multi_error = False
        self.watching = {}
        self.in_exec = False
        self.channels = self.patterns = frozenset()
        self.refused = dict(_NEEDS_CONNECTION, **_TRANSACTION_STATE) if shared else _NEEDS_CONNECTION

    # The handlers call these on connections; in-process there is nothing to do:
    # the protocol is fixed by the Cache and there is no socket to close.
    def quit(self):
        pass

    def set_protocol(self, proto):
        pass

    def set_authenticated(self, value):
        pass

    def call(self, argv):
        """argv's reply, as the server would send it (the Engine lock held)."""
        try:
            cmd = resolve(argv)
        except CommandError as exc:
            if self.multi is not None:
                self.multi_error = True
            return Error(exc.message)
        name = cmd.fullname
        hint = self.refused.get(name)
        if hint is not None:
            if self.multi is not None:
                self.multi_error = True
            return _refusal(name, hint)
        if self.multi is not None and name not in IMMEDIATE:
            self.multi.append((cmd, argv))
            return QUEUED
        return self.engine.run(self, cmd, argv)


class Engine:
    """The keyspace, its one-shard Worker, the lock, and the background threads."""

    def __init__(self, config, path=None):
        self.lock = threading.Lock()
        self.dirlock = None
        if path is not None:
            config.set("dir", path)
            self.dirlock = datadir.DirLock(path, "fastcache.Cache")
            try:
                datadir.prepare(path, 1, config["databases"], config["aof-load-truncated"])
                worker = Worker(0, config, [], [0], "embedded-%d-%x" % (os.getpid(), id(self)))
                worker.durability.start()
            except BaseException:
                self.dirlock.release()
                raise
        else:
            worker = Worker(0, config, [], [0], "embedded-%d-%x" % (os.getpid(), id(self)),
                            persist=False)
        self.worker = worker
        self.ks = self.worker.ks
        self.wakeup = threading.Condition(self.lock)  # in-process callers blocked on keys
        self.blocked = 0
        self.loop = None      # the serving loop, while it serves
        self.server = None
        # Sessions of pipelines dropped while WATCHing: their watches go at the
        # next locked call (a finalizer must not wait for the lock).
        self.abandoned = []
        self.stopped = threading.Event()
        self.expirer = threading.Thread(target=_expire_cycle, args=(self,),
                                        name="fastcache-expire", daemon=True)
        self.expirer.start()

    def abandon(self, session):
        self.abandoned.append(session)

    def tidy(self):
        """Drop the watches of abandoned sessions (lock held)."""
        while self.abandoned:
            unwatch_all(self.abandoned.pop())

    def run(self, session, cmd, argv):
        """Run a resolved command for session (lock held)."""
        worker = self.worker
        ctx = session.ctx
        dirty = self.ks.dirty
        if self.abandoned:
            self.tidy()
        if "blocking" in cmd.flags:
            reply = self._run_blocking(session, cmd, argv)
        elif cmd.route is ALL:
            targets, merge = plan_all(cmd, argv, 1)
            reply = merged([worker.execute(ctx, sub, part=True) for _, sub in targets], merge)
        else:
            reply = worker.run_command(ctx, cmd, argv)
        if self.ks.dirty != dirty:
            worker.flush_records()
            if self.blocked:
                self.wakeup.notify_all()
        loop = self.loop
        if loop is not None and getattr(loop, "_ready", True):
            # The command scheduled work on the serving loop (a served client to
            # wake or close): that loop sleeps in select() until told.
            loop.call_soon_threadsafe(_nothing)
        return reply

    def _run_blocking(self, session, cmd, argv):
        """BLPOP & co: try; while nothing is there, wait for a change and try again.
        The handlers only try when they think they run inside EXEC."""
        worker = self.worker
        in_exec = session.in_exec
        session.in_exec = True
        try:
            reply = worker.run_command(session.ctx, cmd, argv)
        finally:
            session.in_exec = in_exec
        if in_exec or type(reply) is not NullArray:
            return reply
        timeout = blocking.parse_timeout(argv[_TIMEOUT_ARG.get(cmd.name, -1)])
        deadline = time.monotonic() + timeout if timeout else None
        self.blocked += 1
        try:
            while type(reply) is NullArray and not self.stopped.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self.wakeup.wait(remaining)
                session.in_exec = True
                try:
                    reply = worker.run_command(session.ctx, cmd, argv)
                finally:
                    session.in_exec = False
        finally:
            self.blocked -= 1
        return reply

    def before_loop_wait(self):
        """The serving loop is about to wait for I/O: callers blocked in-process
        retry in case its commands changed their keys."""
        if self.blocked:
            self.wakeup.notify_all()

    # -- serving ---------------------------------------------------------------

    def serve(self, host, port):
        if self.server is not None and self.server.thread.is_alive():
            raise RuntimeError("this Cache is already served on %s:%d" % self.server.address)
        self.server = LoopServer(self, host, port)
        return self.server.address

    def close(self):
        """Stop serving and the expiry thread (idempotent; data stays usable in-process)."""
        server = self.server
        if server is not None:
            server.stop()
        self.stopped.set()
        # Wake blocked callers so they give up. Bounded: a finalizer may run where
        # the lock is held, and then the expiry thread stops on its own.
        if self.lock.acquire(timeout=1):
            try:
                self.wakeup.notify_all()
            finally:
                self.lock.release()
            if self.expirer is not threading.current_thread():
                self.expirer.join(5)
        self._close_files()

    def _close_files(self):
        """Flush the WAL, save if the save rules say so, and free the directory."""
        durability = self.worker.durability
        if durability is None or self.dirlock is None:
            return
        with self.lock:
            durability.shutdown()
            self.worker.durability = None
        self.dirlock.release()
        self.dirlock = None


def _nothing():
    pass


def _expire_cycle(engine):
    """Redis's serverCron share that matters in-process: the seconds clock
    (OBJECT IDLETIME) and the adaptive active-expiry cycle, hz times a second."""
    ks, config = engine.ks, engine.worker.config
    while True:
        hz = max(1, config["hz"])
        if engine.stopped.wait(1.0 / hz):
            return
        with engine.lock:
            ks.clock = int(time.time())
            ks.active_expire(budget_s=0.25 / hz)
            engine.tidy()
            durability = engine.worker.durability
            if durability is not None:
                engine.worker.flush_records()
                durability.tick()


class _LockedSelector(selectors.DefaultSelector):
    """Holds the Engine lock for everything the loop does except waiting for I/O."""

    def __init__(self, engine):
        super().__init__()
        self._engine = engine

    def select(self, timeout=None):
        engine = self._engine
        engine.before_loop_wait()
        engine.lock.release()
        try:
            return super().select(timeout)
        finally:
            engine.lock.acquire()


class LoopServer:
    """A listening socket served by the server's ClientConnection from a thread."""

    def __init__(self, engine, host, port):
        from fastcache.server.connection import ClientConnection
        self.engine = engine
        worker = engine.worker
        self.sock = socket.create_server((host, port), backlog=worker.config["tcp-backlog"])
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()[:2]
        self.loop = asyncio.SelectorEventLoop(_LockedSelector(engine))
        self._factory = lambda: ClientConnection(worker)
        self._started = threading.Event()
        self._error = None
        self.thread = threading.Thread(target=self._run, name="fastcache-serve", daemon=True)
        self.thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _run(self):
        engine, loop = self.engine, self.loop
        worker = engine.worker
        engine.lock.acquire()
        try:
            asyncio.set_event_loop(loop)
            worker.loop = loop
            worker.stopping = loop.create_future()  # SHUTDOWN or close() resolve it
            worker.listeners.append(self.sock)
            try:
                server = loop.run_until_complete(loop.create_server(self._factory, sock=self.sock))
            except BaseException as exc:  # handed to serve()'s caller
                self._error = exc
                return
            finally:
                self._started.set()
            engine.loop = loop
            loop.run_until_complete(worker.stopping)
            engine.loop = None
            server.close()
            for conn in list(worker.clients.values()):
                conn.close()
            for _ in range(3):  # connection_lost callbacks unregister blocked clients
                loop.run_until_complete(asyncio.sleep(0))
        finally:
            engine.loop = None
            worker.loop = worker.stopping = None
            if self.sock in worker.listeners:
                worker.listeners.remove(self.sock)
            self.sock.close()
            loop.close()
            engine.lock.release()

    def stop(self):
        if self.thread.is_alive():
            try:
                self.loop.call_soon_threadsafe(self.engine.worker.shutdown, 0)
            except RuntimeError:  # the loop closed meanwhile
                pass
            if self.thread is not threading.current_thread():
                self.thread.join(10)
