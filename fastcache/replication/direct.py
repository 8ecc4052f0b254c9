"""Direct links: a primary shard's frames go straight from the primary worker
that owns it to the replica worker that applies them, on a connection of their
own, so they never cross a peer link on either side.

- The replica's worker 0 asks with ``FCSYNC ... DIRECT <its shard count>``. The
  primary works out which of its shards map into one replica shard (routing.py)
  and answers ``+FCSTREAM <replid> <nshards> <session> <s>...``: its
  ReplicaStream (the "control" connection) streams the other shards as before,
  and stands for the replica in INFO, ROLE, WAIT, CLIENT KILL and the sync
  counters.
- For each direct shard s, the replica worker r that s maps into connects
  (ShardLink) with ``FCSYNC <replid> <nshards> <w...> SHARD s SESSION <session>``.
  Whichever primary worker accepts it hands the socket to worker s
  (server/handoff.py, SCM_RIGHTS), where a ShardStream answers +FCSTREAM and
  sends shard s's frames from the backlog or a full copy, then live ones.
- ShardStream reports its sync mode and the replica's ACKs to the control
  ReplicaStream (peer requests, a few a second); ShardLink applies each frame
  itself, ACKs on its own connection and reports how far it got to worker 0's
  LinkStream, which keeps answering INFO and ROLE.
- The session is one unit: when the control connection or any direct link
  closes, the others are closed too, and the replica reconnects as a whole.
"""
import asyncio
import json
import time

import hiredis

from fastcache import log
from fastcache.engine.errors import CommandError
from fastcache.engine.slots import slot_table
from fastcache.replication.frames import (HEARTBEAT, RECORDS, SNAPSHOT_CHUNK, SNAPSHOT_END,
                                          FrameDecoder, FrameError)
from fastcache.replication.primary import FrameSink
from fastcache.replication.replica import (ACK_INTERVAL, CONNECT_TIMEOUT, Acks, handshake,
                                           read_replies)
from fastcache.replication.routing import Layout


def session_name(key):
    """The control stream's key (worker, connection id) as the replica passes it back."""
    return b"%d.%d" % key


def parse_session(word):
    try:
        worker, conn = word.split(b".")
        return int(worker), int(conn)
    except ValueError:
        raise CommandError("ERR invalid FCSYNC session") from None


def direct_shards(worker, replica_shards):
    """The primary shards whose slots all fall in one shard of a replica with
    replica_shards shards: those go on direct links. None without a handoff
    socket to pass the links to their worker (one shard) or when not asked."""
    if not replica_shards or worker.handoff is None or replica_shards > 16384:
        return ()
    layout = Layout(worker.nshards, slot_table(replica_shards))
    return tuple(s for s in range(worker.nshards) if layout.single[s] is not None)


# -- the primary's side ------------------------------------------------------------------

def hand_over(conn, replid, watermarks, options):
    """FCSYNC ... SHARD s SESSION k, on whichever worker accepted it: the socket
    goes to shard s's worker, which streams from there (the AUTH and REPLCONF
    replies before it leave first)."""
    worker = conn.worker
    shard, session = options["shard"], options.get("session")
    if session is None or not 0 <= shard < worker.nshards or worker.handoff is None:
        raise CommandError("ERR invalid FCSYNC direct link")
    conn.flush()
    transport = conn.transport
    if transport is None or transport.get_write_buffer_size() or not conn.parser.idle:
        raise CommandError("ERR FCSYNC direct link not idle")
    state = json.dumps({"fcsync": [replid, watermarks[shard], shard, list(session)]}).encode()
    if not worker.handoff.send(conn, shard, state):
        raise CommandError("ERR FCSYNC direct link could not be handed over")


def adopt(worker, sock, args):
    """handoff.py's hook: a direct link's socket, handed to its shard's worker."""
    try:
        replid, watermark, shard, (owner, conn_id) = args
        session = (int(owner), int(conn_id))
    except (TypeError, ValueError):
        shard = None
    if shard != worker.index:
        log.warning("Ignoring a malformed direct link handoff")
        sock.close()
        return
    stream = ShardStream(worker, replid, watermark, session)

    async def serve():
        try:
            await worker.loop.connect_accepted_socket(lambda: stream, sock)
        except OSError as exc:
            log.warning("Cannot take over a replica's direct link: %s" % exc)
            sock.close()
    asyncio.ensure_future(serve())


class ShardStream(FrameSink, asyncio.Protocol):
    """A direct link on the primary: this worker's shard out, ACKs in."""

    def __init__(self, worker, replid, watermark, session):
        self.worker = worker
        self.replid = replid
        self.watermark = watermark
        self.session = session
        self.key = ("direct",) + session
        self.conn = None
        self._transport = None
        self.reader = hiredis.Reader()
        self.live = False
        self.addr = "?"

    def transport(self):
        return self._transport

    def describe(self):
        return "addr=%s shard=%d session=%d.%d" % ((self.addr, self.worker.index) + self.session)

    def connection_made(self, transport):
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.addr = "%s:%d" % peer[:2]
        worker = self.worker
        repl = worker.replication
        if repl.master is not None:
            transport.abort()
            return
        repl.direct[self.key] = self
        transport.write(b"+FCSTREAM %s %d\r\n" % (repl.replid.encode(), worker.nshards))
        # The backlog or full copy that subscribe sends at once counts as bulk,
        # like a full copy on a ReplicaStream: only live frames meet the limits.
        repl.source.subscribe(self.key, self.replid, self.watermark, self._receive)
        self.live = True
        self._report(("join", self.session), self._joined)

    def _report(self, payload, callback=None):
        """A peer request to the worker holding the control stream."""
        self.worker.replication.call_shard(self.session[0], ("direct",) + payload,
                                           callback or _ignore)

    def _joined(self, known):
        if not known:     # the control connection is gone already
            self.close()

    def _receive(self, message):
        if type(message) is bytes:
            if self.live:
                self._write(message)
            else:
                self.live = self._bulk(message)
        else:
            self._report(("settled", self.session, self.worker.index, message))

    def data_received(self, data):
        reader = self.reader
        try:
            reader.feed(data)
            command = reader.gets()
            while command is not False:
                if (type(command) is list and len(command) == 4 and
                        command[0].lower() == b"replconf" and command[1].lower() == b"ack"):
                    self._report(("ack", self.session, int(command[2]), int(command[3])))
                command = reader.gets()
        except (hiredis.ProtocolError, ValueError, AttributeError):
            self.close()

    def connection_lost(self, exc):
        self._transport = None
        if not self.closed:
            self.close()
            self._report(("gone", self.session))

    def drop(self, which, size):
        super().drop(which, size)
        self._report(("gone", self.session))

    def close(self):
        """Stop sending (the control stream closed, or the replica went)."""
        if self.closed:
            return
        self.closed = True
        repl = self.worker.replication
        repl.direct.pop(self.key, None)
        repl.source.unsubscribe(self.key)
        if self._transport is not None:
            self._transport.abort()


# -- the replica's side ------------------------------------------------------------------

class ShardLink(asyncio.Protocol):
    """A direct link on the replica: one primary shard's frames, applied here."""

    def __init__(self, repl, session, shard, replid, nshards, watermark):
        self.repl = repl
        self.worker = repl.worker
        self.session = session
        self.shard = shard
        self.replid = replid
        self.nshards = nshards
        self.watermark = watermark
        self.transport = None
        self.closed = False
        self.buffer = bytearray()
        self.expect = []
        self.decoder = None
        self.applied = [-1] * nshards
        self.applied[shard] = watermark
        self.primary_seq = watermark
        self.syncing = False
        self.waiting = []          # frames held while a cross-shard lock is taken
        self.acks = Acks(self.worker.loop, self.applied, (shard,), self._write_acks)
        self.timer = None
        self.last_io = time.monotonic()

    async def connect(self, host, port):
        try:
            await asyncio.wait_for(
                self.worker.loop.create_connection(lambda: self, host, port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            self.failed("Error condition on the direct link for shard %d: %s"
                        % (self.shard, getattr(exc, "strerror", None) or exc or "timeout"))

    def connection_made(self, transport):
        if self.closed:
            transport.abort()
            return
        self.transport = transport
        watermarks = [-1] * self.nshards
        watermarks[self.shard] = self.watermark
        request, self.expect = handshake(
            self.worker.config, self.repl.listening_port(), self.replid, self.nshards,
            *watermarks, b"SHARD", self.shard, b"SESSION", self.session)
        transport.write(request)
        self.timer = self.worker.loop.call_later(ACK_INTERVAL, self._every_interval)

    def data_received(self, data):
        self.last_io = time.monotonic()
        if self.decoder is None:
            self.buffer += data
            why, words = read_replies(self.buffer, self.expect)
            if why is None and words is not None and words[1:] != [self.replid, str(self.nshards)]:
                why = "The master's history changed under a direct link"
            if why is not None:
                self.failed(why)
                return
            if words is None:
                return
            data, self.buffer = bytes(self.buffer), None
            self.decoder = FrameDecoder()
        try:
            frames = self.decoder.feed(data)
        except FrameError as exc:
            self.failed("Bad data from the master: %s; reconnecting" % exc)
            return
        if self.waiting or self.worker.lock is not None:
            self.waiting.extend(frames)
            if len(self.waiting) == len(frames):
                self.transport.pause_reading()
                self.worker.deferred.append(self._resume)
            return
        self._apply(frames)

    def _resume(self):
        frames, self.waiting = self.waiting, []
        if self.transport is not None:
            self.transport.resume_reading()
        self._apply(frames)

    def _apply(self, frames):
        shard, applied = self.shard, self.applied
        replica = self.repl.shard
        moved = False
        try:
            for frame in frames:
                if self.closed:
                    return
                if frame.shard != shard:
                    raise FrameError("frame for shard %d on the link of shard %d"
                                     % (frame.shard, shard))
                kind = frame.kind
                if frame.last_seq > self.primary_seq:
                    self.primary_seq = frame.last_seq
                if kind == RECORDS:
                    if frame.last_seq > applied[shard]:
                        applied[shard] = replica.apply_frame(
                            shard, frame.first_seq, frame.count, frame.payload, frame.last_seq)
                        moved = True
                elif kind == SNAPSHOT_CHUNK:
                    self._begin()
                    replica.full_chunk(frame.items())
                elif kind == SNAPSHOT_END:
                    self._begin()
                    applied[shard] = replica.full_end(shard, frame.last_seq)
                    self.syncing = False
                    log.info("Full copy of master shard %d done" % shard)
                    moved = True
                elif kind == HEARTBEAT:
                    self.acks.heartbeat(shard, frame.last_seq)
        except FrameError as exc:
            self.failed("Bad frame from the master: %s; reconnecting" % exc)
            return
        if moved:
            self.acks.moved(shard)

    def _begin(self):
        if not self.syncing:
            self.syncing = True
            self.applied[self.shard] = -1
            log.info("Full copy of master shard %d started" % self.shard)
            self.repl.shard.full_begin(self.shard)
            self._progress()

    def _write_acks(self, data):
        self._progress()
        if self.transport is not None:
            self.transport.write(data)

    def _progress(self):
        self.repl.call_shard(0, ("progress", self.session, self.shard, self.applied[self.shard],
                                 self.primary_seq, self.syncing), _ignore)

    def _every_interval(self):
        if self.closed or self.transport is None:
            return
        timeout = self.worker.config["repl-timeout"]
        if time.monotonic() - self.last_io > timeout:
            self.failed("MASTER timeout on the direct link for shard %d" % self.shard)
            return
        self.acks.send(every=True)
        self.timer = self.worker.loop.call_later(ACK_INTERVAL, self._every_interval)

    def failed(self, why):
        """Gone wrong: worker 0 drops the whole session and reconnects."""
        if self.closed:
            return
        self.close()
        self.repl.call_shard(0, ("link-lost", self.session, why), _ignore)

    def connection_lost(self, exc):
        self.transport = None
        self.failed("Direct link for shard %d lost" % self.shard)

    def close(self):
        self.closed = True
        self.acks.cancel()
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            self.transport.abort()


def _ignore(result):
    pass
