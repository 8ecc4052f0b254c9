"""Connection affinity: a client whose commands keep going to one other shard
moves to that shard's worker, which then serves it with no forwarding.

Every worker binds a datagram socket next to its peer socket. A connection
that qualifies is handed over while idle: reading is paused (later bytes stay
in the kernel for the new owner), a dup of its socket travels with a small
state record (SCM_RIGHTS), and the local transport is dropped. Closing one of
two descriptors of a socket sends nothing, so the client sees no change: same
socket, same CLIENT ID, name, db, protocol and AUTH state.

When: the connection counts the commands it parsed (`routed`) and, at the end
of each pass, the forwards of that pass per owner. After `window` commands it
judges: at least SHARE of them went to one other shard -> move there once
idle. Each move doubles the window the next verdict needs, so a client whose
traffic drifts between shards settles instead of ping-ponging; random keys
spread over the shards and never reach the share.

Only a client that mostly waits for each reply moves (at most SHALLOW forwards
in most of its passes): it pays a peer-link round trip per command, which the
move removes (at -P 1, 1.0 of redis-server's throughput on a hot key instead of
0.7). A client that pipelines deeply stays: two workers then share its work,
one reading and replying, the owner running the commands, and that beats one
worker doing both (at -P 16, 0.8-0.9 of redis-server instead of 0.6-0.7, on
the project's 2-CPU machine).
"""
import array
import asyncio
import json
import os
import socket

from fastcache import log
from fastcache.server.peers import UCRED

WINDOW = 64          # commands per verdict, doubled by each move the connection made
MAX_DOUBLINGS = 5
SHARE = 0.9          # of the window's commands forwarded to one shard
SHALLOW = 4          # forwards in a pass of a client that waits for its replies
_STATE_MAX = 4096    # bytes of a state record (names are short printable text)
_ANCILLARY = socket.CMSG_SPACE(4 * array.array("i").itemsize) + socket.CMSG_SPACE(UCRED.size)


def address(instance, shard):
    """Abstract-namespace name of a worker's handoff socket (beside peers.peer_address)."""
    return "\0fastcache-%s-%d-handoff" % (instance, shard)


def tracker(worker):
    """Per-connection bookkeeping, or None where there is nowhere to move."""
    return Affinity(worker.nshards) if worker.nshards > 1 else None


class Affinity:
    """Where one connection's commands went since its last verdict."""
    __slots__ = ("sent", "moves", "window", "scheduled", "passes", "deep")

    def __init__(self, nshards, moves=0):
        self.sent = [0] * nshards
        self.moves = moves
        self.window = WINDOW << min(moves, MAX_DOUBLINGS)
        self.scheduled = False
        self.passes = 0     # passes with forwards since the last verdict
        self.deep = 0       # of them, those with more than SHALLOW forwards

    def after_pass(self, conn):
        """End of a pass over the input: tally its forwards (still queued per
        owner until the flush that follows) and judge every window."""
        replies = conn.replies
        if replies.nfwd:
            self.passes += 1
            if replies.nfwd > SHALLOW:
                self.deep += 1
            sent = self.sent
            for shard, argvs in enumerate(replies.fwd):
                if argvs:
                    sent[shard] += len(argvs)
        if conn.routed >= self.window:
            self._judge(conn)

    def _judge(self, conn):
        sent, seen = self.sent, conn.routed
        conn.routed = 0
        best = max(range(len(sent)), key=sent.__getitem__)
        worker = conn.worker
        if (sent[best] >= SHARE * seen and 2 * self.deep < self.passes
                and worker.handoff is not None and worker.config["client-handoff"]):
            conn.move_to = best
        else:
            conn.move_to = None
        self.sent = [0] * len(sent)
        self.passes = self.deep = 0

    def schedule(self, conn):
        """The connection owes nothing and wants to move: try from a fresh
        loop pass, outside whatever call delivered its last reply."""
        if not self.scheduled:
            self.scheduled = True
            conn.worker.loop.call_soon(_attempt, conn)


def _attempt(conn):
    conn.affinity.scheduled = False
    target = conn.move_to
    if target is not None and conn.worker.config["client-handoff"] and movable(conn):
        conn.worker.handoff.send(conn, target)


def movable(conn):
    """Idle in every sense that has state a move could lose or reorder."""
    transport = conn.transport
    return (transport is not None and not (conn.closing or conn.quitting or conn.close_after_flush)
            and conn.parked is None and not conn.barrier and conn.replies.idle()
            and conn.multi is None and not conn.watching and not conn.in_exec
            and not (conn.channels or conn.patterns) and not conn.blocked_on
            and conn.replica_stream is None and not conn.repl_port
            and conn.held is None and conn.authenticated and conn.pending_error is None
            and transport.is_reading() and not transport.get_write_buffer_size()
            and conn not in conn.worker.paused and input_complete(conn))


def input_complete(conn):
    """The parser holds nothing of a next command: a move must not split one."""
    return conn.parser.idle


def _text(value):
    return value.decode("latin-1")


def state_of(conn):
    """What the new owner needs to go on as if nothing happened. The address
    pair belongs to the socket itself, so the new transport reports it."""
    return json.dumps({
        "id": conn.id, "name": _text(conn.name), "lib_name": _text(conn.lib_name),
        "lib_ver": _text(conn.lib_ver), "db": conn.ctx.db.id, "proto": conn.ctx.proto,
        "authenticated": conn.authenticated, "created": conn.created,
        "last_interaction": conn.last_interaction, "last_command": _text(conn.last_command),
        "moves": conn.affinity.moves + 1,
    }).encode()


def restore(conn, state):
    conn.moved_in = True
    conn.name = state["name"].encode("latin-1")
    conn.lib_name = state["lib_name"].encode("latin-1")
    conn.lib_ver = state["lib_ver"].encode("latin-1")
    conn.ctx.select(state["db"])
    conn.set_protocol(state["proto"])
    conn.set_authenticated(state["authenticated"])
    # CLOCK_MONOTONIC is system-wide, so times taken by another worker still hold.
    conn.created = state["created"]
    conn.last_interaction = state["last_interaction"]
    conn.last_command = state["last_command"].encode("latin-1")
    conn.affinity = Affinity(conn.worker.nshards, state["moves"])


def admit(conn):
    """connection_made of a connection handed over: no admission checks (it
    passed them where it arrived), counted as a handoff, not a connection."""
    conn.worker.add_client(conn, moved=True)


class Handoff:
    """A worker's handoff socket: sends its connections away, takes others'."""

    def __init__(self, worker):
        self.worker = worker
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # Every datagram then carries its sender's credentials: only our own
        # user may hand us a socket with an authenticated state.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.bind(address(worker.instance, worker.index))
        sock.setblocking(False)
        self.sock = sock
        worker.loop.add_reader(sock.fileno(), self._receive)

    def send(self, conn, target, state=None):
        """Hand conn to shard target's worker (with state, or its client
        state); on failure keep serving it."""
        worker = self.worker
        transport = conn.transport
        transport.pause_reading()
        fd = -1
        try:
            fd = os.dup(transport.get_extra_info("socket").fileno())
            # (socket.send_fds would drop the address)
            self.sock.sendmsg([state if state is not None else state_of(conn)],
                              [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))],
                              0, address(worker.instance, target))
        except OSError:   # its queue is full (a burst of moves) or it is gone: retry later
            transport.resume_reading()
            return False
        finally:
            if fd >= 0:
                os.close(fd)
        conn.closing = True
        conn.move_to = None
        worker.remove_client(conn)
        transport.close()
        return True

    def _receive(self):
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(_STATE_MAX, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            fds, uid = [], None
            for level, kind, payload in ancdata:
                if level != socket.SOL_SOCKET:
                    continue
                if kind == socket.SCM_RIGHTS:
                    fds.extend(array.array("i", payload[:len(payload) - len(payload) % 4]))
                elif kind == socket.SCM_CREDENTIALS:
                    uid = UCRED.unpack_from(payload)[1]
            self._adopt(data, fds, uid)

    def _adopt(self, data, fds, uid):
        worker = self.worker
        try:
            state = json.loads(data)
        except ValueError:
            state = None
        if (len(fds) != 1 or uid != os.getuid() or not isinstance(state, dict)
                or worker.orphaned or worker.stopping.done()):
            if state is None or uid != os.getuid():
                log.warning("Ignoring a malformed connection handoff")
            for fd in fds:
                os.close(fd)
            return
        from fastcache.server.connection import ClientConnection
        sock = socket.socket(fileno=fds[0])
        if "fcsync" in state:     # a replica's direct link (replication/direct.py)
            worker.replication.adopt(sock, state["fcsync"])
            return
        try:
            conn = ClientConnection(worker, client_id=state["id"])
            restore(conn, state)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            log.warning("Ignoring a malformed connection handoff: %r" % exc)
            sock.close()
            return
        sock.setblocking(False)
        asyncio.ensure_future(self._serve(sock, conn))

    async def _serve(self, sock, conn):
        try:
            await self.worker.loop.connect_accepted_socket(lambda: conn, sock)
        except OSError as exc:
            log.warning("Cannot take over connection id=%d: %s" % (conn.id, exc))
            sock.close()
