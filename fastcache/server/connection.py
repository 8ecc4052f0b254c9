"""One client connection: parse, authenticate, route, and reply in order.

The hot path is data_received: every complete request in the read is parsed,
local commands run inline in one synchronous pass (the native fast path
first), and the replies go out in one write. Commands owned by another shard
are forwarded, one request per owner per pass; reply_order.ReplyOrder keeps
the replies in request order.
"""
import asyncio
import socket
import time

from fastcache import log
from fastcache.engine.context import Context
from fastcache.engine.errors import CommandError
from fastcache.engine.fastpath import run_batch
from fastcache.engine.registry import ALL, KEYS, LOCAL, resolve
from fastcache.engine.slots import key_slot
from fastcache.protocol.encoder import ENCODERS
from fastcache.protocol.parser import ProtocolError, QueryBufferLimitExceeded, RequestParser
from fastcache.protocol.replies import DEFERRED, Error
from fastcache.server import blocking, fanout, handoff, pubsub, security, transactions
from fastcache.server.disk_gate import DiskGate
from fastcache.server.forward_codec import pack_commands
from fastcache.server.reply_order import ReplyOrder

_monotonic = time.monotonic
NOAUTH = Error("NOAUTH Authentication required.")
QUEUED = b"+QUEUED\r\n"


class ClientConnection(DiskGate, asyncio.Protocol):
    moved_in = False     # handed over by another worker (handoff.py), not a new connection
    move_to = None       # the shard to hand this connection to once it is idle

    def __init__(self, worker, client_id=None):
        self.worker = worker
        self.id = client_id or worker.new_client_id()
        config = worker.config
        self.parser = RequestParser(config["proto-max-bulk-len"], config["client-query-buffer-limit"])
        self.ctx = Context(worker.ks, 0, 2, self, worker)
        self.encode = ENCODERS[2].encode
        self.authenticated = not config["requirepass"]
        self.parser.authenticated = self.authenticated
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.transport = None
        self.addr = self.laddr = "?:0"
        self.created = _monotonic()
        self.last_interaction = self.created
        self.last_command = b"NULL"
        self.replies = ReplyOrder(worker.nshards, self._deliver)
        self.parked = None         # (commands, index) held by a barrier or lock
        self.barrier = 0           # cross-shard commands in flight (later ones wait)
        self.splits = 0            # how many of them are split commands (crossshard groups)
        self.closing = False
        self.quitting = False      # QUIT or a protocol error: no more input is read
        self.close_after_flush = False
        self.pending_error = None  # a ProtocolError to report after the commands before it
        self.multi = None          # commands queued since MULTI
        self.multi_error = False   # a queued command was rejected: EXEC aborts
        self.watching = {}         # (db, key) -> (owning shard, version seen by WATCH)
        self.channels = set()      # SUBSCRIBEd channels
        self.patterns = set()      # PSUBSCRIBEd patterns
        self.soft_limit_since = None  # when the output went over the soft limit
        self.blocked_on = []       # (owner shard, token) of a blocking command's waiters
        self.in_exec = False       # running EXEC: blocking commands do not block
        self.repl_port = 0         # REPLCONF listening-port of a replica
        self.replica_stream = None # after FCSYNC: the replication stream on this connection
        self.routed = 0            # commands parsed since handoff's last look
        self.affinity = handoff.tracker(worker)

    # -- connection lifecycle -------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.addr = security.format_addr(peer)
        self.laddr = security.format_addr(local)
        worker = self.worker
        if self.moved_in:
            handoff.admit(self)   # already admitted and counted by the worker it came from
            return
        refusal = security.refuse_reason(worker, peer)
        if refusal is not None:
            worker.stats.rejected_connections += 1
            transport.write(refusal)
            transport.close()
            self.closing = True
            return
        worker.add_client(self)
        sock = transport.get_extra_info("socket")
        keepalive = worker.config["tcp-keepalive"]
        if sock is not None and keepalive and sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, keepalive)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, keepalive // 3))

    # A client that does not read its replies stops being read: output stays bounded.
    def pause_writing(self):
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self):
        if self.transport is not None:
            self.transport.resume_reading()

    def connection_lost(self, exc):
        self.closing = True
        self.transport = None
        transactions.unwatch_all(self)
        pubsub.drop_all(self)
        if self.blocked_on:
            blocking.unregister(self)
        if self.replica_stream is not None:
            self.replica_stream.close()
        self.worker.remove_client(self)

    def eof_received(self):
        # The client shut its sending side: finish the replies still owed
        # (forwarded ones may be in flight), then close. A blocked client is
        # gone at once, as in Redis: its waiters must not take data.
        if self.blocked_on:
            blocking.unregister(self)
            return False
        self.close_after_flush = True
        self.flush()
        return not self.closing

    def close(self):
        if self.transport is not None:
            self.transport.close()

    def exempt_from_timeout(self):
        return self.replica_stream is not None

    # -- input ----------------------------------------------------------------

    def data_received(self, data):
        self.worker.stats.net_input_bytes += len(data)
        self.last_interaction = _monotonic()
        try:
            self.parser.feed(data)
        except ProtocolError as exc:
            self.protocol_error(exc)
            return
        if self.parked is None and not self.quitting:
            self._process()

    def _process(self):
        """Run parsed commands until the input is drained or a barrier holds us."""
        worker = self.worker
        while not self.quitting:
            if self.parked is not None:
                commands, i = self.parked
                self.parked = None
                drained = False     # the parser may hold more than was parked
            else:
                # Once authenticated the parser hands over every complete command
                # at once, so after those there is nothing left to ask it for.
                drained = self.parser.authenticated
                try:
                    commands = self.parser.commands()
                except ProtocolError as exc:
                    # Redis runs what preceded the bad bytes, then errors and closes.
                    self.pending_error = exc
                    commands = exc.commands
                if not commands and self.pending_error is None:
                    break
                i = 0
                self.routed += len(commands)
            n = len(commands)
            fast = self.fast_path_ok()
            while i < n:
                if self.barrier or worker.lock is not None:
                    # A split command may queue behind the client's split commands in
                    # flight: its group runs after theirs, so order holds.
                    if self.barrier == self.splits and fanout.join_split(self, commands[i]):
                        i += 1
                        continue
                    self.parked = (commands, i)
                    if not self.barrier:
                        worker.paused.add(self)
                    self.flush()
                    return
                if fast:
                    i = self._run_fast(commands, i)
                    if i >= n:
                        break
                self.dispatch(commands[i])
                i += 1
                if self.quitting:
                    break
                fast = self.fast_path_ok()
            if self.pending_error is not None and not self.quitting:
                self.protocol_error(self.pending_error)
            if drained and self.parked is None:
                break
        affinity = self.affinity
        if affinity is not None and (self.replies.nfwd or self.routed >= affinity.window):
            affinity.after_pass(self)
        self.flush()

    def plain(self):
        """Authenticated, outside MULTI and pub/sub: its commands need none of
        dispatch's special cases."""
        return self.authenticated and self.multi is None and not (self.channels or self.patterns)

    def fast_path_ok(self):
        """Whether the native fast path may run this client's commands: only
        for a plain client, and while the worker allows it."""
        return self.plain() and self.worker.fast_path_open()

    def subscriptions(self):
        return len(self.channels) + len(self.patterns)

    def _run_fast(self, commands, i):
        """Run (or queue for their owners) the commands from i that the fast
        path handles; the index it stopped at."""
        worker = self.worker
        replies = self.replies
        journal = worker.ks.journal
        log = None
        if journal is not None:
            journal.use_db(self.ctx.db.id)
            log = journal.entries
        stop, executed, forwarded = run_batch(
            commands, i, replies.out, self.ctx.db, worker.ks, self.ctx.proto,
            worker.fast_owners, worker.index, replies.fwd, log)
        if forwarded:
            replies.nfwd += forwarded
        if stop > i:
            worker.stats.commands += executed
            self.last_command = commands[stop - 1][0]
        return stop

    def run_async(self, work):
        """Reply with what coroutine work returns; this client's later commands
        wait for it (a barrier), so they see its effects."""
        slot = self.reserve()
        self.barrier += 1
        asyncio.ensure_future(self._finish(work, slot))

    async def _finish(self, work, slot):
        try:
            reply = await work
        except Exception as exc:  # a lost peer link; the worker is stopping anyway
            reply = Error("ERR multi-shard command failed: %s" % exc)
        self.settle(slot, reply)
        self.resume_if_free()

    def start_split(self):
        """The reply slot of a split command about to join a group (crossshard.py);
        it holds the barrier until settled, with no task of its own."""
        slot = self.reserve()
        self.barrier += 1
        self.splits += 1
        return slot

    def settle(self, slot, reply, split=False):
        """A cross-shard command's reply; the caller then calls resume_if_free."""
        self.barrier -= 1
        if split:
            self.splits -= 1
        self.fill(slot, self.encode(reply))

    def resume_if_free(self):
        if not self.barrier and self.parked is not None:
            self.resume_after_lock()

    def resume_after_lock(self):
        if not self.closing:
            self._process()

    def protocol_error(self, exc):
        if isinstance(exc, QueryBufferLimitExceeded):
            log.warning("Closing client that reached max query buffer length: id=%d addr=%s"
                        % (self.id, self.addr))
        else:
            self.push(exc.reply)
        self.quit()
        self.flush()

    def quit(self):
        """Read nothing more; close once the queued replies are out."""
        self.quitting = True
        self.close_after_flush = True

    # -- dispatch -------------------------------------------------------------

    def dispatch(self, argv):
        worker = self.worker
        try:
            cmd = resolve(argv)
        except CommandError as exc:
            # Like Redis 7.0: unknown command and arity errors come before NOAUTH.
            self.reject(Error(exc.message))
            return
        if not self.authenticated and "no_auth" not in cmd.flags:
            self.reject(NOAUTH)
            return
        if (self.channels or self.patterns) and self.ctx.proto == 2 \
                and cmd.fullname not in pubsub.ALLOWED_SUBSCRIBED:
            self.reject(Error(pubsub.not_allowed(cmd)))
            return
        if self.multi is not None and cmd.fullname not in transactions.IMMEDIATE:
            self.multi.append((cmd, argv))
            self.push(QUEUED)
            return
        route = cmd.route
        if route is LOCAL and self.replies.nfwd:
            self.flush()  # SELECT/HELLO may change db or protocol: send earlier forwards first
        if route is ALL:
            fanout.to_all(self, cmd, argv)  # even with one shard: the merge shapes the reply
            return
        if route is KEYS and worker.nshards > 1:
            owner_of = worker.slot_owner
            first = cmd.first_key
            if first == cmd.last_key and cmd.get_keys is None:
                owner = owner_of[key_slot(argv[first])]
            else:
                groups = fanout.group_keys(worker, cmd, argv)
                if len(groups) > 1:
                    fanout.across_shards(self, cmd, argv, groups)
                    return
                owner = next(iter(groups), worker.index)
            if owner != worker.index:
                self.forward(owner, argv)
                return
        self.run_local(cmd, argv)

    def reject(self, error):
        """An error before the command runs; inside MULTI it dooms the EXEC."""
        if self.multi is not None:
            self.multi_error = True
        self.push(self.encode(error))

    def run_local(self, cmd, argv):
        reply = self.worker.run_command(self.ctx, cmd, argv)
        self.last_command = argv[0]
        if reply is not DEFERRED:
            self.push(self.encode(reply))

    def forward(self, owner, argv):
        self.replies.forward(owner, argv)

    # -- output ---------------------------------------------------------------

    def push(self, data):
        self.replies.out.append(data)

    def reserve(self):
        """A place in the reply order for a reply that arrives later. The pass
        is cut first, so the forwards before it reach their shards first."""
        self.flush()
        return self.replies.reserve()

    def fill(self, slot, data):
        self.note_records()
        self.replies.fill(slot, data)

    def flush(self):
        replies = self.replies
        out = replies.out
        if (out and not (replies.nfwd or replies.reserved or replies.pending)
                and self.worker.ks.journal is None and self.held is None
                and self.transport is not None and self.move_to is None
                and not self.close_after_flush):
            # The common pass, every reply made here and nothing recorded, owed or
            # held: straight out, as cut, gate and _deliver would send it.
            replies.out = []
            data = out[0] if len(out) == 1 else b"".join(out)
            self.worker.stats.net_output_bytes += len(data)
            self.transport.write(data)
            return
        self.note_records()
        replies.cut(self._send_forwards)
        self._maybe_close()

    def _send_forwards(self, owner, argvs, on_replies):
        ctx = self.ctx
        self.worker.peers[owner].request("batch", (ctx.db.id, ctx.proto, pack_commands(argvs)),
                                         on_replies)

    def _deliver(self, data):
        self._write(data)
        if self.move_to is not None and self.replies.idle():
            self.affinity.schedule(self)
        if self.close_after_flush and self.replies.idle():
            self._maybe_close()

    def _write(self, data):
        if self.transport is not None and self.gate(data):
            self.worker.stats.net_output_bytes += len(data)
            self.transport.write(data)

    def _maybe_close(self):
        if (self.close_after_flush and self.replies.idle()
                and self.parked is None and not self.barrier):
            self.closing = True
            self.close()

    # -- protocol state -------------------------------------------------------

    def set_protocol(self, proto):
        self.ctx.proto = proto
        self.encode = ENCODERS[proto].encode

    def set_authenticated(self, value):
        self.authenticated = value
        self.parser.authenticated = value

