"""A replica's link to its primary, run by worker 0.

ReplicaLink reconnects forever (backoff from 100 ms doubling to 5 s). Each
connection is a LinkStream:

1. the watermarks: every replica shard's marks (fan-out); for primary shard s
   the watermark is the lowest mark among the replica shards s's slots map
   to, or -1 (a full copy) when one of them has none;
2. the handshake, pipelined: AUTH <masterauth> if set, REPLCONF listening-port,
   FCSYNC <replid or ?> <nshards> <w_0> ... ; the primary answers
   +FCSTREAM <replid> <nshards> and binary frames follow;
3. frames: each primary shard's records go to the replica shards that own
   their keys (routing.py), which apply them exactly once (replica_shard.py);
   a full copy is SNAPSHOT_CHUNKs then SNAPSHOT_END;
4. acknowledgements: REPLCONF ACK <s> <seq> once every replica shard involved
   has applied primary shard s up to seq: at most ACK_DELAY after it did, at
   once when a heartbeat (the primary's WAIT sends one) asked for it, and
   every 100 ms for all shards. One ACK write per frame would cost both
   sides a system call and a wake-up per frame.

Worker 0 reads no more from the socket while too many frames are being
applied, so a slow replica shard holds the primary's data in the primary's
buffers (which drop the link if they overflow), not in ours.
"""
import asyncio
import time
from collections import deque

from fastcache import log
from fastcache.replication.frames import (HEARTBEAT, RECORDS, SNAPSHOT_CHUNK, SNAPSHOT_END,
                                          FrameDecoder, FrameError)
from fastcache.replication.routing import Layout

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
ACK_INTERVAL = 0.1
ACK_DELAY = 0.01        # applied frames' ACKs wait this long to share one write
CONNECT_TIMEOUT = 5.0
PAUSE_ABOVE = 256       # frames handed to shards and not yet applied
RESUME_BELOW = 64


def handshake(config, listening_port, *fcsync):
    """(the pipelined handshake of a link to the primary, the replies it expects):
    AUTH <masterauth> if set, REPLCONF listening-port, FCSYNC <fcsync...>."""
    out, expect = [], []
    if config["masterauth"]:
        out.append(resp_command(b"AUTH", config["masterauth"]))
        expect.append("AUTH")
    out.append(resp_command(b"REPLCONF", b"listening-port", listening_port))
    expect.append("REPLCONF")
    out.append(resp_command(b"FCSYNC", *fcsync))
    expect.append("FCSYNC")
    return b"".join(out), expect


_REFUSED = {"AUTH": "Unable to AUTH to MASTER", "REPLCONF": "Master refused REPLCONF",
            "FCSYNC": "Master refused FCSYNC"}


def read_replies(buf, expect):
    """Take the handshake's replies from buf (a bytearray) as they complete:
    (why, None) when one refused or is not what it should be, (None, the words
    of +FCSTREAM ...) once the stream starts, (None, None) while more is due."""
    while True:
        end = buf.find(b"\r\n")
        if end < 0:
            return None, None
        line = bytes(buf[:end]).decode("utf-8", "replace")
        del buf[:end + 2]
        step = expect.pop(0)
        if line.startswith("-"):
            return "%s: %s" % (_REFUSED[step], line[1:]), None
        if step == "FCSYNC":
            words = line[1:].split()
            if not words or words[0] != "FCSTREAM":
                return "Unexpected reply to FCSYNC: %r" % line, None
            return None, words


def resp_command(*args):
    """One command in RESP (the replica talks to its primary like a client)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if not isinstance(arg, bytes):
            arg = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class ReplicaLink:
    def __init__(self, repl, host, port):
        self.repl = repl
        self.worker = repl.worker
        self.host = host
        self.port = port
        self.task = None
        self.stream = None          # the current (or last) LinkStream
        self.state = "connect"      # ROLE's words: connect, connecting, handshake, sync, connected
        self.error = None           # why the last attempt failed
        self.down_since = time.monotonic()
        self.stopped = False

    def start(self):
        self.task = asyncio.ensure_future(self._run())

    def stop(self):
        self.stopped = True
        if self.task is not None:
            self.task.cancel()
        if self.stream is not None:
            self.stream.close()

    async def _run(self):
        delay = BACKOFF_FIRST
        loop = self.worker.loop
        while not self.stopped:
            self.state = "connecting"
            stream = None
            try:
                states = await self.repl.gather(("marks",))
                stream = LinkStream(self, states)
                await asyncio.wait_for(
                    loop.create_connection(lambda: stream, self.host, self.port),
                    CONNECT_TIMEOUT)
                self.stream = stream
                await stream.done
            except (OSError, asyncio.TimeoutError) as exc:
                self.failed("Error condition on socket for SYNC: %s"
                            % (getattr(exc, "strerror", None) or exc or "timeout"))
            if stream is not None and stream.streaming:
                delay = BACKOFF_FIRST
            self.state = "connect"
            if self.stopped:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def failed(self, why):
        if why != self.error:
            log.warning(why)
        self.error = why

    # -- INFO / ROLE -------------------------------------------------------------------

    def info(self):
        stream = self.stream
        up = stream is not None and stream.streaming and not stream.closed
        now = time.monotonic()
        part = {"host": self.host, "port": self.port, "state": self.state, "up": up,
                "error": self.error, "down_seconds": int(now - self.down_since),
                "last_io": -1, "syncing": 0, "read": 0, "applied": 0, "replid": "",
                "shards": []}
        if stream is not None and stream.layout is not None:
            part.update(
                last_io=int(now - stream.last_io) if up else -1,
                syncing=1 if (stream.syncing or not stream.streaming) and up else 0,
                read=sum(max(s, 0) for s in stream.dispatched),
                applied=sum(max(s, 0) for s in stream.applied),
                replid=stream.replid,
                shards=[(s, stream.applied[s], stream.primary_seq[s])
                        for s in range(len(stream.applied))])
        return part


class LinkStream(asyncio.Protocol):
    """One connection to the primary: handshake, then frames in, acks out."""

    def __init__(self, link, states):
        self.link = link
        self.repl = link.repl
        self.worker = link.worker
        self.transport = None
        self.done = self.worker.loop.create_future()
        self.closed = False
        self.streaming = False
        self.buffer = bytearray()
        self.expect = []
        self.decoder = None
        self.layout = None
        self.replid = ""
        self.last_io = time.monotonic()
        self.queue = deque()        # frames waiting their turn
        self.busy = False           # a record is running across shards
        self.syncing = set()        # primary shards in a full copy
        self.inflight = []          # per primary shard: deque of [seq, pending requests]
        self.pending_frames = 0
        self.paused = False
        self.acks = None            # Acks, once streaming
        self.session = None         # the primary's name for this link, for direct links
        self.direct = set()         # primary shards that come on direct links
        self.ack_timer = None
        self.dispatched = []        # per primary shard: last seq handed to the shards
        self.applied = []           # ... and applied by all of them
        self.primary_seq = []       # ... and the newest the primary reported
        self._plan(states)

    def _plan(self, states):
        """The replid and watermarks to ask with, from every replica shard's marks."""
        self.asked_replid, self.asked_shards, self.watermarks = "?", 0, []
        if any(state is None for state in states):
            return
        replids = {state["replid"] for state in states}
        counts = {state["nshards"] for state in states}
        if len(replids) != 1 or len(counts) != 1 or "" in replids:
            return
        n = counts.pop()
        layout = Layout(n, self.worker.slot_owner)
        marks = [{int(s): q for s, q in state["seqs"].items()} for state in states]
        watermarks = []
        for s in range(n):
            held = [marks[r].get(s) for r in layout.targets[s]]
            watermarks.append(-1 if None in held else min(held))
        self.asked_replid, self.asked_shards, self.watermarks = replids.pop(), n, watermarks

    # -- the connection ------------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        self.link.state = "handshake"
        request, self.expect = handshake(
            self.worker.config, self.repl.listening_port(), self.asked_replid,
            self.asked_shards, *self.watermarks, b"DIRECT", self.worker.nshards)
        transport.write(request)

    def connection_lost(self, exc):
        self.transport = None
        self._detach()
        if not self.closed:
            self.closed = True
            if self.streaming:
                log.warning("Connection with master lost.")
        if self.ack_timer is not None:
            self.ack_timer.cancel()
        if self.acks is not None:
            self.acks.cancel()
        self.link.down_since = time.monotonic()
        if not self.done.done():
            self.done.set_result(None)

    def close(self):
        self.closed = True
        self._detach()
        if self.transport is not None:
            self.transport.abort()

    def _detach(self):
        """The session is over: its direct links close too."""
        if self.direct:
            self.direct = set()
            self.repl.broadcast(("detach", self.session))

    def data_received(self, data):
        self.last_io = time.monotonic()
        if self.decoder is None:
            self.buffer += data
            if not self._handshake():
                return
            data, self.buffer = bytes(self.buffer), None
            if not data:
                return
        try:
            frames = self.decoder.feed(data)
        except FrameError as exc:
            self.link.failed("Bad data from the master: %s; reconnecting" % exc)
            self.close()
            return
        if frames:
            self.queue.extend(frames)
            self._pump()

    def _handshake(self):
        """Read the handshake's replies; True once the frames start."""
        why, words = read_replies(self.buffer, self.expect)
        if why is not None:
            self.link.failed(why)
            self.close()
        if words is None:
            return False
        if len(words) < 3 or not words[2].isdigit():
            self.link.failed("Unexpected reply to FCSYNC: %r" % " ".join(words))
            self.close()
            return False
        self._start(words[1], int(words[2]), words[3] if len(words) > 3 else None,
                    [int(w) for w in words[4:]])
        return True

    def _start(self, replid, nshards, session, direct):
        log.info("MASTER <-> REPLICA sync started: replication ID %s, %d shards%s"
                 % (replid, nshards, ", %d on direct links" % len(direct) if direct else ""))
        self.streaming = True
        self.link.error = None
        self.link.state = "connected"
        self.replid = replid
        self.layout = Layout(nshards, self.worker.slot_owner)
        if replid != self.asked_replid or nshards != self.asked_shards:
            self.repl.broadcast(("origin", replid, nshards))
            self.watermarks = [-1] * nshards
        self.dispatched = list(self.watermarks)
        self.applied = list(self.watermarks)
        self.primary_seq = list(self.watermarks)
        self.inflight = [deque() for _ in range(nshards)]
        self.decoder = FrameDecoder()
        self.acks = Acks(self.worker.loop, self.applied, range(nshards), self._write)
        self.ack_timer = self.worker.loop.call_later(ACK_INTERVAL, self._every_interval)
        self.session = session
        for s in direct:
            if not 0 <= s < nshards or self.layout.single[s] is None:
                self.link.failed("The master offered a direct link for shard %d" % s)
                self.close()
                return
        self.direct = set(direct)
        for s in direct:
            self.repl.call_shard(self.layout.single[s], ("attach", session, s, replid, nshards,
                                                         self.watermarks[s]), _ignore)

    def progress(self, s, applied, primary_seq, syncing):
        """A direct link's news (direct.py): how far it applied shard s."""
        if s not in self.direct:
            return
        self.last_io = time.monotonic()
        if applied > self.applied[s]:
            self.applied[s] = self.dispatched[s] = applied
        self.primary_seq[s] = max(self.primary_seq[s], primary_seq)
        if syncing:
            self.syncing.add(s)
            self.link.state = "sync"
        elif s in self.syncing:
            self.syncing.discard(s)
            if not self.syncing:
                self.link.state = "connected"

    def _write(self, data):
        if self.transport is not None:
            self.transport.write(data)

    # -- frames ------------------------------------------------------------------------

    def _pump(self):
        queue = self.queue
        try:
            while queue and not self.busy and not self.closed:
                self._handle(queue.popleft())
        except FrameError as exc:     # a record that does not decode: start over
            self.link.failed("Bad frame from the master: %s; reconnecting" % exc)
            self.close()
            return
        if not self.paused and (self.pending_frames > PAUSE_ABOVE or len(queue) > PAUSE_ABOVE):
            self.paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def _handle(self, frame):
        s = frame.shard
        if s >= len(self.dispatched):
            self.link.failed("Frame for shard %d from a %d-shard master" % (s, len(self.dispatched)))
            self.close()
            return
        kind = frame.kind
        if kind == RECORDS:
            self._records(frame)
        elif kind == SNAPSHOT_CHUNK:
            self._chunk(frame)
        elif kind == SNAPSHOT_END:
            self._end(frame)
        if frame.last_seq > self.primary_seq[s]:
            self.primary_seq[s] = frame.last_seq
        if kind == HEARTBEAT:
            self.acks.heartbeat(s, frame.last_seq)

    def _records(self, frame):
        s = frame.shard
        after = self.dispatched[s]
        if frame.last_seq <= after:
            return
        entry = self._entry(s, frame.last_seq)
        target = self.layout.single[s]
        if target is not None:
            self._send(target, ("frame", s, frame.first_seq, frame.count, frame.payload,
                                frame.last_seq), entry)
            self._release(s, entry)
        else:
            steps = self.layout.split_records(s, frame.records(after))
            if self._run_steps(s, steps, frame.last_seq, entry):
                self._release(s, entry)
        self.dispatched[s] = frame.last_seq

    def _run_steps(self, s, steps, end, entry):
        """Dispatch the steps of a spanning shard's records; False when one runs
        across shards (it carries on with the rest once done)."""
        targets = self.layout.targets[s]
        for i, (parts, span) in enumerate(steps):
            if span is not None:
                self.busy = True
                asyncio.ensure_future(self._span(s, span, steps[i + 1:], end, entry))
                return False
            last_step = i == len(steps) - 1
            for r in (targets if last_step else parts):
                upto = end if last_step else parts[r][-1][0]
                self._send(r, ("apply", s, parts.get(r, []), upto), entry)
        return True

    async def _span(self, s, span, rest, end, entry):
        seq, dbid, argv, keys = span
        try:
            await self.repl.run_across(dbid, argv, keys)
        except Exception as exc:  # the link goes on; the shard logs the divergence
            log.warning("Replica could not apply %r across shards: %s" % (argv[0], exc))
        for r in keys:
            self._send(r, ("apply", s, [], seq), entry)
        self.busy = False
        if self._run_steps(s, rest, end, entry):
            self._release(s, entry)
        self._pump()

    def _chunk(self, frame):
        s = frame.shard
        if s not in self.syncing:
            self._begin(s)
        target = self.layout.single[s]
        if target is not None:
            self._send(target, ("chunk", frame.items()), None)
            return
        for blob in frame.items():
            for r, piece in self.layout.split_chunk(blob).items():
                self._send(r, ("chunk", [piece]), None)

    def _begin(self, s):
        self.syncing.add(s)
        self.link.state = "sync"
        log.info("Full copy of master shard %d started" % s)
        for r in self.layout.targets[s]:
            self._send(r, ("begin", s), None)

    def _end(self, frame):
        s, seq = frame.shard, frame.last_seq
        if s not in self.syncing:
            self._begin(s)
        entry = self._entry(s, seq)
        for r in self.layout.targets[s]:
            self._send(r, ("end", s, seq), entry)
        self.syncing.discard(s)
        if not self.syncing:
            self.link.state = "connected"
        self.dispatched[s] = seq
        self._release(s, entry)

    # -- what the shards have applied ----------------------------------------------------

    def _entry(self, s, seq):
        """Track the requests that apply primary shard s up to seq (a guard
        count of 1 until every request is sent)."""
        entry = [seq, 1]
        self.inflight[s].append(entry)
        self.pending_frames += 1
        return entry

    def _send(self, shard, payload, entry):
        if entry is None:
            self.repl.call_shard(shard, payload, _ignore)
            return
        entry[1] += 1
        s = payload[1]
        self.repl.call_shard(shard, payload, lambda result: self._release(s, entry))

    def _release(self, s, entry):
        entry[1] -= 1
        if entry[1]:
            return
        queue = self.inflight[s]
        moved = False
        while queue and queue[0][1] == 0:
            self.applied[s] = queue.popleft()[0]
            self.pending_frames -= 1
            moved = True
        if moved:
            self.acks.moved(s)
            if self.paused and self.pending_frames < RESUME_BELOW and len(self.queue) < RESUME_BELOW:
                self.paused = False
                if self.transport is not None:
                    self.transport.resume_reading()
                self._pump()

    def _every_interval(self):
        if self.transport is None:
            return
        timeout = self.worker.config["repl-timeout"]
        if time.monotonic() - self.last_io > timeout:
            self.link.failed("MASTER timeout: no data nor PING received for %d seconds" % timeout)
            self.close()
            return
        self.acks.send(every=True)
        self.ack_timer = self.worker.loop.call_later(ACK_INTERVAL, self._every_interval)


class Acks:
    """When a link writes REPLCONF ACK <s> <applied[s]>: at most ACK_DELAY after
    applied[s] moved (so frames applied meanwhile share one write), at once when
    a heartbeat asked for seq and applied[s] reached it, and for every shard on
    send(every=True). applied is the link's own list, read when the ACKs go."""

    def __init__(self, loop, applied, shards, write):
        self.loop = loop
        self.applied = applied
        self.shards = shards
        self.write = write
        self.due = set()
        self.asked = {}             # shard -> seq a heartbeat wants acknowledged
        self.handle = None          # the pending write: a timer, or call_soon when urgent
        self.urgent = False

    def moved(self, s):
        self.due.add(s)
        wanted = self.asked.get(s)
        urgent = wanted is not None and self.applied[s] >= wanted
        if urgent:
            del self.asked[s]
        self._later(urgent)

    def heartbeat(self, s, seq):
        if self.applied[s] < 0:
            return
        if self.applied[s] >= seq:
            self.due.add(s)
            self._later(True)
        else:
            self.asked[s] = max(seq, self.asked.get(s, seq))

    def _later(self, urgent):
        handle = self.handle
        if handle is not None:
            if not urgent or self.urgent:
                return
            handle.cancel()
        self.urgent = urgent
        self.handle = (self.loop.call_soon(self._due) if urgent
                       else self.loop.call_later(ACK_DELAY, self._due))

    def _due(self):
        self.handle = None
        self.send()

    def send(self, every=False):
        applied = self.applied
        out = [resp_command(b"REPLCONF", b"ACK", b"%d" % s, b"%d" % applied[s])
               for s in (self.shards if every else self.due)
               if every or applied[s] >= 0]   # -1 still says "alive"
        self.due = set()
        if out:
            self.write(b"".join(out))

    def cancel(self):
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


def _ignore(result):
    pass
