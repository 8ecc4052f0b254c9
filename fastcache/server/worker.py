"""A shard worker: one process, one event loop, one slice of the keyspace.

It accepts client connections on the shared port (SO_REUSEPORT), runs the
commands whose keys it owns, forwards the rest over peer links, and serves
its peers' forwarded requests.
"""
import asyncio
import os
import signal
import time
import traceback
from collections import deque

from fastcache import log
from fastcache.engine import notify, watch
from fastcache.engine.context import Context
from fastcache.engine.errors import CommandError
from fastcache.engine.fastpath import run_batch
from fastcache.persistence.recovery import RecoveryError
from fastcache.engine.keyspace import Keyspace
from fastcache.engine.records import record_command
from fastcache.engine.registry import resolve
from fastcache.engine.slots import key_slot, slot_table
from fastcache.protocol.encoder import ENCODERS
from fastcache.protocol.replies import Error
from fastcache.server import blocking, handoff, peers, pubsub, transactions
from fastcache.server.durability import Durability
from fastcache.server.forward_codec import pack_replies, unpack_commands
from fastcache.replication import node as replication
from fastcache.replication.node import Replication
from fastcache.server import commands as _families  # noqa: F401 (registers the server's commands)
from fastcache.server.slowlog import SlowLog
from fastcache.server.stats import Stats

_perf_ns = time.perf_counter_ns
UNTIMED_FLOOR_NS = 1_000_000


class Worker:
    def __init__(self, index, config, listeners, shared, instance, persist=True):
        self.index = index
        self.config = config
        self.nshards = config["shards"]
        self.listeners = listeners
        self.shared = shared          # cross-process counters (clients per worker)
        self.instance = instance      # names the peer sockets of this server
        self.ks = Keyspace(config["databases"])
        self.slot_owner = slot_table(self.nshards)
        self.fast_owners = self.slot_owner if self.nshards > 1 else None
        self.peers = [None] * self.nshards
        self.handoff = None           # takes and sends client connections (handoff.py)
        self.clients = {}
        self.stats = Stats()
        self.slowlog = SlowLog(config)
        self.pubsub = pubsub.Registry()
        self.waiters = blocking.Waiters()
        # An Error every write gets instead of running (MISCONF while the disk fails).
        self.refuse_writes = None
        self.holding = []   # connections and peer links whose output waits for the disk
        self.durability = Durability(self) if persist else None
        self.repl_eager = False    # replication takes records before every reply too
        self.replication = Replication(self)
        self.refuse_writes = self.replication.refusal()
        self.apply_config()
        self.started = time.time()
        self.next_client = 0
        # Cross-shard lock: the txn holding it, and work that arrived meanwhile.
        self.lock = None
        self.deferred = deque()
        self.split_groups = None    # split commands across shards, run in groups (crossshard.py)
        self.paused = set()
        self._peer_ctx = {}
        self.loop = None
        self.stopping = None
        self.servers = []
        self.orphaned = False
        self.save_on_shutdown = None    # SHUTDOWN SAVE/NOSAVE; None: as the save rules say

    # -- start-up ------------------------------------------------------------

    async def serve(self, on_ready=None):
        self.loop = asyncio.get_running_loop()
        self.stopping = self.loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.shutdown)
        if self.nshards > 1:
            server = await self.loop.create_unix_server(
                lambda: peers.PeerServer(self),
                sock=peers.listen(peers.peer_address(self.instance, self.index)))
            self.servers.append(server)
            self.handoff = handoff.Handoff(self)
            for shard in range(self.nshards):
                if shard != self.index:
                    link = asyncio.ensure_future(peers.connect(
                        self.loop, peers.peer_address(self.instance, shard), shard,
                        self._peer_lost))
                    # Told to stop meanwhile (a peer failed to start): stop now.
                    await asyncio.wait([link, self.stopping], return_when=asyncio.FIRST_COMPLETED)
                    if self.stopping.done():
                        link.cancel()
                        return self.stopping.result()
                    try:
                        self.peers[shard] = link.result()
                    except RuntimeError as exc:    # it never came up; the supervisor knows why
                        log.warning("%s; stopping" % exc)
                        return 1
        from fastcache.server.connection import ClientConnection
        for sock in self.listeners:
            self.servers.append(await self.loop.create_server(
                lambda: ClientConnection(self), sock=sock,
                backlog=self.config["tcp-backlog"]))
        self._tick()
        self.replication.start()
        if on_ready is not None:
            on_ready()
        return await self.stopping

    def _peer_lost(self, shard):
        """A peer is gone, so part of the keyspace is unreachable: stop serving
        at once, and leave the verdict (clean stop or failure) to the
        supervisor, which saw which worker exited first and how. Exit on our
        own only if the supervisor never signals."""
        if self.stopping.done() or self.orphaned:
            return
        self.orphaned = True
        log.verbose("Lost the link to shard %d; waiting for the supervisor" % shard)
        for server in self.servers:
            server.close()
        for conn in list(self.clients.values()):
            conn.close()
        self.loop.call_later(5.0, self.shutdown, 1)

    def shutdown(self, code=0):
        if self.stopping is not None and not self.stopping.done():
            self.stopping.set_result(code)

    def apply_config(self):
        """Refresh values cached off the config for the hot path (after CONFIG SET)."""
        threshold = self.config["slowlog-log-slower-than"]
        self.slow_ns = threshold * 1000 if threshold >= 0 else float("inf")
        # An O(1) command cannot take a millisecond: above that threshold such
        # commands go untimed, and the native fast path may run them.
        # Keyspace notifications need handlers to run, so they also rule it out.
        events = self.config["notify-keyspace-events"]
        self.ks.notify_flags = events if events & (notify.KEYSPACE | notify.KEYEVENT) else 0
        self.ks.publish_event = self.publish_event
        self.quiet_fast = self.slow_ns >= UNTIMED_FLOOR_NS and not self.ks.notify_flags
        self.untimed_fast = self.quiet_fast and self.refuse_writes is None
        self.replication.apply_config()

    def flush_records(self):
        """Put pending mutation records in the WAL: called before any reply leaves.
        Records kept for replicas alone wait for replication's own timer, unless it
        wants them at once (repl_eager)."""
        durability = self.durability
        if durability is not None and durability.journal is not None and durability.journal.entries \
                and (durability.wal is not None or self.repl_eager):
            durability.flush()

    def must_hold(self, log_gen):
        durability = self.durability
        return durability is not None and durability.must_hold(log_gen)

    def hold(self, sender):
        self.holding.append(sender)

    def release_held(self):
        """The disk took the records again: send the output that waited for them."""
        holding, self.holding = self.holding, []
        for sender in holding:
            sender.release_held()

    def publish_event(self, event, dbid, key):
        """A keyspace notification, published to the subscribers on every worker."""
        flags = self.ks.notify_flags
        name = event.encode()
        if flags & notify.KEYSPACE:
            self.broadcast(b"__keyspace@%d__:%s" % (dbid, key), name)
        if flags & notify.KEYEVENT:
            self.broadcast(b"__keyevent@%d__:%s" % (dbid, name), key)

    def broadcast(self, channel, message):
        pubsub.deliver(self, channel, message)
        for peer in self.peers:
            if peer is not None:
                peer.request("publish", (channel, message), _ignore)

    # -- periodic work (Redis's serverCron) ---------------------------------

    def _tick(self):
        hz = max(1, self.config["hz"])
        self.ks.clock = int(time.time())
        if self.lock is None:
            self.ks.active_expire(budget_s=0.25 / hz)
        if self.durability is not None:
            self.flush_records()
            self.durability.tick()
        self.replication.tick()
        timeout = self.config["timeout"]
        if timeout:
            idle_since = time.monotonic() - timeout
            for conn in list(self.clients.values()):
                if conn.last_interaction < idle_since and not conn.exempt_from_timeout():
                    conn.close()
        self.loop.call_later(1.0 / hz, self._tick)

    # -- clients -------------------------------------------------------------

    def new_client_id(self):
        # Interleaved so ids are unique across workers and grow over time.
        self.next_client += 1
        return self.next_client * self.nshards + self.index

    def client_count(self):
        return sum(self.shared)

    def add_client(self, conn, moved=False):
        self.clients[conn.id] = conn
        self.shared[self.index] = len(self.clients)
        if moved:   # handed over by another worker: not a new connection
            self.stats.client_handoffs += 1
        else:
            self.stats.connections_received += 1

    def remove_client(self, conn):
        if self.clients.pop(conn.id, None) is not None:
            self.shared[self.index] = len(self.clients)
        self.paused.discard(conn)

    # -- routing -------------------------------------------------------------

    def fast_path_open(self):
        """Whether the native fast path may run commands here at all: it skips the
        command table, so only while the slowlog does not time O(1) commands, no
        key is WATCHed and no client waits on this shard's keys (a push must serve it)."""
        return self.untimed_fast and not self.ks.watched and not self.waiters.by_key

    def owner_of(self, key):
        return self.slot_owner[key_slot(key)]

    # -- peer requests -------------------------------------------------------

    def peer_request(self, kind, payload, txn, rid, post):
        if self.lock is not None and txn != self.lock:
            self.deferred.append((kind, payload, txn, rid, post))
            return
        self._serve_peer(kind, payload, txn, rid, post)

    def _serve_peer(self, kind, payload, txn, rid, post):
        later = LATER_PEER_HANDLERS.get(kind)
        if later is not None:  # answered when ready, e.g. a blocked pop
            later(self, payload, lambda result: post((rid, result)))
            return
        try:
            result = PEER_HANDLERS[kind](self, payload, txn)
        except CommandError as exc:
            result = Error(exc.message)
        post((rid, result))

    def peer_context(self, dbnum, proto):
        ctx = self._peer_ctx.get((dbnum, proto))
        if ctx is None:
            ctx = self._peer_ctx[(dbnum, proto)] = Context(self.ks, dbnum, proto, None, self)
        return ctx

    def execute(self, ctx, argv, part=False):
        """Run a command here, whatever its keys (used for forwarded work).
        A part of a fan-out or split command is not timed: the slowlog holds
        whole client commands."""
        try:
            cmd = resolve(argv)
        except CommandError as exc:
            return Error(exc.message)
        return self.run_command(ctx, cmd, argv, part)

    def run_command(self, ctx, cmd, argv, part=False):
        """Run a resolved command on this shard: timing for the slowlog,
        statistics, and the versions of WATCHed keys it changed."""
        ks = self.ks
        if self.refuse_writes is not None and "write" in cmd.flags:
            return self.refuse_writes
        watched = bool(ks.watched)
        dirty_before = ks.dirty
        db = ctx.db
        if watched:
            doomed = watch.doomed_by(ks, ctx, cmd, argv)
        timed = not (part or (cmd.fast and self.untimed_fast))
        if timed:
            start = _perf_ns()
        try:
            reply = cmd.handler(ctx, argv)
        except CommandError as exc:
            reply = Error(exc.message)
        except Exception as exc:  # a bug must cost one reply, not the worker or the connection
            log.warning("Internal error running %r: %s\n%s"
                        % (argv[0], exc, traceback.format_exc()))
            reply = Error("ERR internal error: %s" % exc)
        if timed:
            elapsed = _perf_ns() - start
            if elapsed >= self.slow_ns:
                self.slowlog.observe(elapsed // 1000, argv, ctx.client)
        self.stats.commands += 1
        if ks.journal is not None and ks.dirty != dirty_before and cmd.recorded:
            record_command(ks.journal, ks, db, cmd, argv, reply)
        if watched and ks.dirty != dirty_before:
            watch.touch_changed(ks, ctx, cmd, argv, doomed)
        if self.waiters.by_key and ks.dirty != dirty_before:
            self.keys_changed(ctx.db.id, [argv[i] for i in cmd.key_indexes(argv)])
        return reply

    def keys_changed(self, dbid, keys):
        """Keys were written: blocked clients waiting on them may be served."""
        blocking.keys_changed(self, dbid, keys)

    # -- the cross-shard lock ------------------------------------------------

    def unlock(self, txn):
        if self.lock != txn:
            return
        self.lock = None
        # Clients held by the lock run first: with txns queued back to back, the
        # next one would take the lock at once, every time, and they would starve.
        for conn in list(self.paused):
            self.paused.discard(conn)
            conn.resume_after_lock()
        while self.deferred and self.lock is None:
            item = self.deferred.popleft()
            if callable(item):
                item()
            else:
                self._serve_peer(*item)
        if self.lock is None and self.waiters.ready:
            blocking.serve_ready(self)

    def lock_local(self, txn):
        """A future that resolves once this worker's lock is held by txn."""
        future = self.loop.create_future()

        def grant():
            self.lock = txn
            future.set_result(True)

        if self.lock is None:
            grant()
        else:
            self.deferred.append(grant)
        return future


def _peer_batch(worker, payload, txn):
    """Forwarded commands (forward_codec's packed form): run them like local
    ones, fast path first; their replies go back packed."""
    dbnum, proto, packed = payload
    argvs = unpack_commands(packed)
    ctx = worker.peer_context(dbnum, proto)
    encode = ENCODERS[proto].encode
    out = []
    i, n = 0, len(argvs)
    fast = worker.fast_path_open()
    journal = worker.ks.journal
    while i < n:
        if fast:
            log = None
            if journal is not None:
                journal.use_db(dbnum)
                log = journal.entries
            i, executed, _ = run_batch(argvs, i, out, ctx.db, worker.ks, proto, None, worker.index,
                                       None, log)
            worker.stats.commands += executed
            if i >= n:
                break
        out.append(encode(worker.execute(ctx, argvs[i])))
        i += 1
    return pack_replies(out)


def _peer_call(worker, payload, txn):
    dbnum, argv = payload
    return worker.execute(worker.peer_context(dbnum, 2), argv, part=True)


def _peer_lock(worker, payload, txn):
    # Only reached when the lock is free (a held lock defers the request).
    worker.lock = txn
    return True


def _peer_lockcall(worker, payload, txn):
    from fastcache.server.crossshard import peer_lockcall
    return peer_lockcall(worker, payload, txn)


def _peer_unlock(worker, payload, txn):
    worker.unlock(txn)
    return True


def _peer_fetch(worker, keys, txn):
    from fastcache.server.crossshard import fetch_keys
    return fetch_keys(worker.ks, keys)


def _peer_publish(worker, payload, txn):
    channel, message = payload
    return pubsub.deliver(worker, channel, message)


def _ignore(result):
    pass


def _peer_store(worker, payload, txn):
    from fastcache.server.crossshard import store_keys
    changes, events = payload
    store_keys(worker, changes, events)
    return True


# Requests answered later rather than at once: handler(worker, payload, reply).
LATER_PEER_HANDLERS = {
    "block": blocking.peer_block,
    "repl-subscribe": replication.peer_subscribe,   # answered once per frame, until dropped
}

PEER_HANDLERS = {
    "unblock": blocking.peer_cancel,
    "attempt": blocking.peer_attempt,
    "publish": _peer_publish,
    "watch": transactions.peer_watch,
    "unwatch": transactions.peer_unwatch,
    "watchcheck": transactions.peer_watchcheck,
    "batch": _peer_batch,
    "call": _peer_call,
    "lock": _peer_lock,
    "lockcall": _peer_lockcall,
    "unlock": _peer_unlock,
    "fetch": _peer_fetch,
    "store": _peer_store,
    "repl": replication.peer_request,
}


def run(index, config, listeners, shared, instance, ready_fd):
    """Entry point of a forked worker process; returns its exit code."""
    import uvloop
    log.configure(config, role="S%d" % index)
    worker = Worker(index, config, listeners, shared, instance)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)

    def ready():
        os.write(ready_fd, b"%d\n" % index)
        os.close(ready_fd)

    try:
        worker.durability.start()
    except RecoveryError as exc:
        log.warning("Shard %d cannot start: %s" % (index, exc))
        return 1
    try:
        return loop.run_until_complete(worker.serve(ready)) or 0
    finally:
        worker.replication.stop()
        for conn in list(worker.clients.values()):
            conn.close()
        worker.durability.shutdown(worker.save_on_shutdown)
        loop.close()
