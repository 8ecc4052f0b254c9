"""Peer links between shard workers.

Every worker listens on an abstract Unix socket and opens one link to each
other worker. A link carries request frames one way and reply frames back.
A frame is a 4-byte length and a pickled list of messages, so the forwards
to one peer in one loop pass cost one write and one read (a few, in a pass
that serves many clients: see FLUSH_MESSAGES).

    request: (request id, kind, payload, txn)   reply: (request id, result)

`txn` names the cross-shard lock a request belongs to (None for ordinary
requests); a locked worker defers other requests in arrival order.

Most requests get one reply. A subscription (PeerClient.subscribe) gets any
number, all with its request id, until the asker drops it: replication uses
one per primary shard to carry a replica's frames from their owner.

Frames are pickles, so only our own user may be on either end of a link: an
abstract socket has no file permissions, and any local user can connect to
one (or bind a name before we do). Both ends check the other's credentials.
"""
import asyncio
import os
import pickle
import socket
import struct

from fastcache import log

_LEN = struct.Struct("<I")
UCRED = struct.Struct("iII")   # struct ucred: pid, uid, gid
_DUMPS = pickle.dumps
_LOADS = pickle.loads

# An outbox goes out at the end of the loop pass, or as soon as it holds this many
# messages. A pass that serves many clients would otherwise leave the peer idle until
# the pass ends, and the peer's replies idle until its own pass ends: sending part of
# the pass early lets both workers run at once (measured: SET -P 16 from about 470k to
# 600k ops/s with 2 shards; fewer than 8 costs more CPU per frame than it saves).
FLUSH_MESSAGES = 16


def peer_address(instance, shard):
    """Abstract-namespace socket name: nothing on disk to clean up."""
    return "\0fastcache-%s-%d" % (instance, shard)


def same_user(sock):
    """Whether the process at the other end of Unix socket sock runs as our user."""
    _, uid, _ = UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, UCRED.size))
    return uid == os.getuid()


def encode_frame(messages):
    body = _DUMPS(messages, 5)
    return _LEN.pack(len(body)) + body


class FrameReader:
    """Splits a byte stream into decoded frames."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        buf = self.buf
        buf += data
        frames = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if end - pos - 4 < size:
                break
            frames.append(_LOADS(bytes(buf[pos + 4:pos + 4 + size])))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return frames


class _Batched(asyncio.Protocol):
    """Collects outgoing messages and writes them as one frame per loop pass."""

    def __init__(self):
        self.transport = None
        self.reader = FrameReader()
        self.outbox = []
        self.scheduled = False    # a flush waits for the end of this loop pass
        self.loop = asyncio.get_event_loop()

    def connection_made(self, transport):
        self.transport = transport

    def _post(self, message):
        outbox = self.outbox
        outbox.append(message)
        if len(outbox) >= FLUSH_MESSAGES:
            self._flush()
        elif not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._flush_soon)

    def _flush_soon(self):
        self.scheduled = False
        self._flush()

    def _flush(self):
        if self.outbox and self.transport is not None:
            self.transport.write(encode_frame(self.outbox))
        self.outbox = []


class PeerClient(_Batched):
    """Our link to the worker that owns shard `shard`: we ask, it answers."""

    def __init__(self, shard, on_lost):
        super().__init__()
        self.shard = shard
        self.on_lost = on_lost
        self.pending = {}
        self.streams = {}       # request id -> callback of a subscription
        self.next_id = 0

    def request(self, kind, payload, callback, txn=None):
        """Send a request; callback(result) runs when the reply arrives."""
        self.next_id += 1
        self.pending[self.next_id] = callback
        self._post((self.next_id, kind, payload, txn))

    def subscribe(self, kind, payload, callback):
        """Send a request answered many times; callback(result) runs for each
        reply until unsubscribe(the returned id)."""
        self.next_id += 1
        self.streams[self.next_id] = callback
        self._post((self.next_id, kind, payload, None))
        return self.next_id

    def unsubscribe(self, rid):
        """Ignore the subscription's later replies (the owner is told separately)."""
        self.streams.pop(rid, None)

    def call(self, kind, payload, txn=None):
        """Send a request and return a future for its result."""
        future = self.loop.create_future()
        self.request(kind, payload, future.set_result, txn)
        return future

    def data_received(self, data):
        pending = self.pending
        for frame in self.reader.feed(data):
            for rid, result in frame:
                callback = pending.pop(rid, None)
                if callback is None:
                    callback = self.streams.get(rid)
                    if callback is None:     # a dropped subscription's late reply
                        continue
                callback(result)

    def connection_lost(self, exc):
        self.transport = None
        self.on_lost(self.shard)


class PeerServer(_Batched):
    """An incoming link: run each request on this worker and send the reply.

    Replies are matched by request id, so one that must wait for the disk
    (appendfsync always, after a failed WAL write: see disk_gate.py) is held
    on its own while the others go."""

    def __init__(self, worker):
        super().__init__()
        self.worker = worker
        self.gens = []      # per outbox message: the journal generation it follows, or -1
        self.held = []

    def connection_made(self, transport):
        if not same_user(transport.get_extra_info("socket")):
            log.warning("Refused a peer link from another user")
            transport.abort()
            return
        super().connection_made(transport)

    def _post(self, message):
        journal = self.worker.ks.journal
        if journal is not None:
            self.gens.append(journal.generation if journal.entries else -1)
        super()._post(message)

    def _flush(self):
        worker = self.worker
        outbox, gens = self.outbox, self.gens
        self.outbox, self.gens = [], []
        if not outbox or self.transport is None:
            return
        if gens:
            worker.flush_records()  # a forwarded write's record is on file before its reply
        # (gens covers the outbox unless the journal started mid-pass: nothing to hold then)
        if len(gens) == len(outbox) and worker.must_hold(max(gens)):
            ready = []
            if not self.held:
                worker.hold(self)   # once: release_held sends everything held so far
            for gen, message in zip(gens, outbox):
                (self.held if worker.must_hold(gen) else ready).append(message)
            outbox = ready
        if outbox:
            self.transport.write(encode_frame(outbox))

    def release_held(self):
        held, self.held = self.held, []
        if held and self.transport is not None:
            self.transport.write(encode_frame(held))

    def data_received(self, data):
        worker = self.worker
        for frame in self.reader.feed(data):
            for rid, kind, payload, txn in frame:
                worker.peer_request(kind, payload, txn, rid, self._post)

    def connection_lost(self, exc):
        self.transport = None


def listen(address):
    """A listening socket for incoming links (uvloop takes it via sock=)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(64)
    sock.setblocking(False)
    return sock


async def connect(loop, address, shard, on_lost, attempts=400, delay=0.025):
    """Open a link, retrying while the peer is still starting."""
    for _ in range(attempts):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(address)
        except (ConnectionRefusedError, FileNotFoundError):
            sock.close()
            await asyncio.sleep(delay)
            continue
        if not same_user(sock):
            sock.close()
            raise RuntimeError("the peer socket of shard %d belongs to another user" % shard)
        sock.setblocking(False)
        _, protocol = await loop.create_unix_connection(
            lambda: PeerClient(shard, on_lost), sock=sock)
        return protocol
    raise RuntimeError("cannot reach shard %d" % shard)
