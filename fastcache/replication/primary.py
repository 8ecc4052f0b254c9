"""The primary side: each worker's ReplicationSource, and the replica links it accepts.

- ReplicationSource (one per worker): its shard's records, cut into frames by a
  Batcher, kept in a Backlog and sent to every subscribed link. A link
  subscribes with the replication ID and the watermark it holds; the source
  answers "partial" (then the backlog frames after the watermark) or "full"
  (then its whole keyspace as SNAPSHOT_CHUNK frames at its current sequence and
  a SNAPSHOT_END), and from then on sends live frames.
- ReplicaStream (one per replica connection, on the worker that accepted it):
  subscribes to every shard, locally or over the peer link to its owner, and
  writes the frames to the replica's socket. A replica that does not read fast
  enough is dropped once its output passes the replica client-output-buffer-limit,
  so the primary never waits for it nor holds more than that for it.
"""
import time

from fastcache import log
from fastcache.engine.keyspace import now_ms
from fastcache.persistence import codec
from fastcache.replication.backlog import Backlog
from fastcache.replication.batcher import Batcher
from fastcache.replication.frames import SNAPSHOT_END, FrameEncoder, header_kind, header_seqs

HEARTBEAT_SECONDS = 1.0
FULL = "full"
PARTIAL = "partial"


def zstd_level(config):
    return config["repl-zstd-level"] if config["repl-compression"] == "zstd" else None


def new_batcher(config, shard):
    return Batcher(shard, config["repl-batch-max-records"], config["repl-batch-max-bytes"],
                   config["repl-batch-max-delay-us"], zstd_level(config),
                   immediate=config["repl-send-policy"] == "immediate")


class ReplicationSource:
    """One shard's outgoing replication. Inactive (no journal cost) until the
    first replica subscribes; from then on every record of the shard comes here."""

    def __init__(self, worker, replid):
        self.worker = worker
        self.shard = worker.index
        self.replid = replid
        self.subscribers = {}     # link key -> send(message)
        self.batcher = None
        self.backlog = None
        self.encoder = None
        self.timer = None
        self.eager = False        # records taken before every reply, not by the timer
        self.last_heartbeat = 0.0
        self.full_syncs = 0
        self.partial_ok = 0
        self.partial_err = 0
        self.snapshot_wire_bytes = 0

    @property
    def active(self):
        return self.batcher is not None

    def _activate(self):
        durability = self.worker.durability
        durability.start_journal()
        durability.flush()        # records from before have no replica to go to
        durability.sink = self.on_records
        config = self.worker.config
        self.batcher = new_batcher(config, self.shard)
        self.encoder = FrameEncoder(zstd_level(config))
        self.backlog = Backlog(config["repl-backlog-size"], durability.current_seq())
        self._pace()

    def _pace(self):
        """How records reach the batcher. Taking them before every reply costs the
        hot path, so with batching a timer takes them every max-delay instead;
        immediate (or a zero delay) takes them before every reply.

        A tick that finds nothing to send parks the timer, so that an idle shard
        does not wake its loop every max-delay: records are then taken before the
        reply that follows them, go out at once, and start the timer again."""
        batcher = self.batcher
        self.eager = batcher.immediate or batcher.max_delay_us == 0
        self.worker.repl_eager = self.eager
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.eager:
            self._arm()

    def _arm(self):
        self.timer = self.worker.loop.call_later(self.batcher.max_delay_us / 1e6,
                                                 self._on_timer)

    def reconfigure(self):
        """Pick up CONFIG SET repl-*: the buffered records go out under the old settings."""
        if not self.active:
            return
        self.flush()
        config = self.worker.config
        old = self.batcher
        self.batcher = new_batcher(config, self.shard)
        for name in ("frames", "records", "raw_bytes", "wire_bytes"):
            setattr(self.batcher, name, getattr(old, name))
        self.encoder = FrameEncoder(zstd_level(config))
        self.backlog.max_bytes = config["repl-backlog-size"]
        self._pace()

    def restart(self, replid):
        """A new replication history (promotion): the backlog starts afresh."""
        self.replid = replid
        self.subscribers.clear()
        if self.active:
            self.flush()
            self.backlog.reset(self.seq())

    def stop(self):
        """This server became a replica: nothing goes out any more."""
        self.subscribers.clear()
        if self.active:
            self.flush()
            self.worker.durability.sink = None
            self.batcher = self.backlog = self.encoder = None
            self.worker.repl_eager = self.eager = False
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

    # -- records -> frames ----------------------------------------------------------

    def on_records(self, first_seq, entries):
        """Durability.flush's sink: the shard's newest records, as the journal holds them."""
        for frame in self.batcher.add_entries(first_seq, entries):
            self._publish(frame)
        if self.worker.repl_eager:
            self._ship()
            if not self.eager and self.timer is None:    # the first records after a lull
                self.worker.repl_eager = False
                self._arm()

    def _on_timer(self):
        """Every max-delay: the records since the last tick go out (they waited
        at most that long), in frames of at most max-records / max-bytes."""
        self.timer = None
        if self.batcher is None:
            return
        journal = self.worker.durability.journal
        if (journal is None or not journal.pending) and not self.batcher.pending:
            self.worker.repl_eager = True    # parked: see _pace
            return
        self.flush()
        self._arm()

    def _publish(self, frame):
        first, last = header_seqs(frame)
        self.backlog.append(frame, first, last)
        if self.subscribers:
            for send in list(self.subscribers.values()):
                send(frame)

    def _ship(self):
        frame = self.batcher.flush()
        if frame is not None:
            self._publish(frame)

    def flush(self):
        """Every record so far framed and sent (WAIT, a full sync); the shard's seq."""
        durability = self.worker.durability
        if durability is not None:
            durability.flush()
        if self.active:
            self._ship()
        return self.seq()

    def seq(self):
        """The shard's newest record (0 in an embedded server, which keeps none)."""
        durability = self.worker.durability
        return durability.current_seq() if durability is not None else 0

    # -- subscriptions ------------------------------------------------------------

    def subscribe(self, key, replid, watermark, send):
        """A link wants this shard's stream from after watermark (None: it has
        nothing usable). send(message) gets FULL or PARTIAL, then frames."""
        if not self.active:
            self._activate()
        frames = None
        if replid == self.replid and watermark is not None and watermark >= 0:
            frames = self.backlog.since(watermark)
        if frames is not None:
            self.partial_ok += 1
            send(PARTIAL)
            for frame in frames:
                send(frame)
        else:
            if replid != "?":
                self.partial_err += 1
            self.full_syncs += 1
            send(FULL)
            seq = self.flush()
            for frame in self._snapshot_frames(seq):
                self.snapshot_wire_bytes += len(frame)
                send(frame)
        self.subscribers[key] = send

    def unsubscribe(self, key):
        self.subscribers.pop(key, None)

    def _snapshot_frames(self, seq):
        """The whole shard at seq, as frames. Made in-process, so a large shard
        holds up this worker meanwhile (a forked producer is future work)."""
        now = now_ms()
        encoder = self.encoder
        for db in self.worker.ks.dbs:
            for chunk in codec.db_chunks(db, now):
                yield encoder.snapshot_chunk(self.shard, seq, [codec.pack(chunk)])
        yield encoder.snapshot_end(self.shard, seq)

    def tick(self):
        """From the worker's cron: a heartbeat now and then, so replicas see the
        shard's newest sequence (lag) and know the link is alive."""
        if not self.subscribers:
            return
        now = time.monotonic()
        if now - self.last_heartbeat >= HEARTBEAT_SECONDS:
            self._heartbeat(now)

    def getack(self):
        """WAIT: every record so far goes out, followed by a heartbeat, which a
        replica answers with an ACK as soon as it has applied what came before
        (otherwise replicas acknowledge at their own pace); the shard's seq."""
        seq = self.flush()
        if self.subscribers:
            self._heartbeat(time.monotonic())
        return seq

    def _heartbeat(self, now):
        self.last_heartbeat = now
        frame = self.encoder.heartbeat(self.shard, self.backlog.last_seq)
        for send in list(self.subscribers.values()):
            send(frame)

    def info(self):
        """This shard's figures for INFO (plain data)."""
        seq = self.seq()
        if not self.active:
            return {"seq": seq, "active": False}
        b, backlog = self.batcher, self.backlog
        return {"seq": seq, "active": True, "frames": b.frames, "records": b.records,
                "raw_bytes": b.raw_bytes, "wire_bytes": b.wire_bytes,
                "snapshot_bytes": self.snapshot_wire_bytes,
                "backlog_first": backlog.first_seq, "backlog_last": backlog.last_seq,
                "backlog_bytes": backlog.size, "backlog_max": backlog.max_bytes,
                "full": self.full_syncs, "partial_ok": self.partial_ok,
                "partial_err": self.partial_err}


class FrameSink:
    """What goes out to a replica's socket, bounded by the replica
    client-output-buffer-limit: ReplicaStream here, and direct.ShardStream."""

    bulk = 0                # bytes of full copies sent and maybe still buffered
    soft_since = None
    closed = False

    def transport(self):
        raise NotImplementedError

    def describe(self):
        """id=... addr=... for the log."""
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def _bulk(self, message):
        """A frame of a full copy (counted as bulk); whether it ended the copy."""
        self.bulk += len(message)
        self._write(message)
        return header_kind(message) == SNAPSHOT_END

    def _write(self, data):
        transport = self.transport()
        if transport is None or self.closed:
            return
        transport.write(data)
        self.worker.replication.out_bytes += len(data)
        self._check_limits(transport.get_write_buffer_size())

    def _check_limits(self, size):
        hard, soft, seconds = self.worker.config["client-output-buffer-limit"]["replica"]
        if self.bulk:
            # A full copy may exceed the limits by itself (Redis does not count the
            # RDB transfer either): the limits allow for it until the buffer drains.
            if size <= (soft or hard):
                self.bulk = 0
            else:
                size = max(0, size - self.bulk)
        if hard and size > hard:
            self.drop("hard", size)
        elif soft and size > soft:
            now = time.monotonic()
            if self.soft_since is None:
                self.soft_since = now
            elif now - self.soft_since > seconds:
                self.drop("soft", size)
        else:
            self.soft_since = None

    def drop(self, which, size):
        """Too slow a reader: cut it off (its frames are freed with the transport)."""
        log.warning("Client %s (replica) closed for overcoming its %s output buffer "
                    "limit (%d bytes)" % (self.describe(), which, size))
        self.worker.replication.dropped_slow += 1
        self.close()
        transport = self.transport()
        if transport is not None:
            transport.abort()


class ReplicaStream(FrameSink):
    """A replica's connection after FCSYNC: frames of every primary shard out
    (but those of the shards in `direct`, which direct.ShardStreams send on
    connections of their own and report here), REPLCONF ACKs in."""

    def __init__(self, conn, replid, watermarks, direct=()):
        self.conn = conn
        self.worker = worker = conn.worker
        self.key = (worker.index, conn.id)
        nshards = worker.nshards
        self.asked_replid = replid
        self.watermarks = watermarks
        self.direct = direct
        self.acked = [-1] * nshards
        self.modes = [None] * nshards
        self.live = [False] * nshards   # past a full copy's SNAPSHOT_END
        self.rids = {}             # remote shard -> subscription id on its peer link
        self.last_ack = time.monotonic()
        self.ip = conn.addr.rsplit(":", 1)[0]
        self.port = conn.repl_port

    def transport(self):
        return self.conn.transport

    def describe(self):
        return "id=%d addr=%s" % (self.conn.id, self.conn.addr)

    def start(self):
        worker = self.worker
        for shard in range(worker.nshards):
            if shard in self.direct:
                continue
            receive = self._receiver(shard)
            watermark = self.watermarks[shard] if shard < len(self.watermarks) else None
            if shard == worker.index:
                worker.replication.source.subscribe(self.key, self.asked_replid, watermark,
                                                    receive)
            else:
                self.rids[shard] = worker.peers[shard].subscribe(
                    "repl-subscribe", (self.key, self.asked_replid, watermark), receive)

    def _receiver(self, shard):
        def receive(message):
            if type(message) is bytes:
                if self.live[shard]:
                    self._write(message)
                else:
                    self.live[shard] = self._bulk(message)
            else:
                self.live[shard] = message == PARTIAL
                self._settled(shard, message)
        return receive

    def _settled(self, shard, mode):
        self.modes[shard] = mode
        if None in self.modes:
            return
        repl = self.worker.replication
        if all(m == PARTIAL for m in self.modes):
            repl.sync_partial_ok += 1
            log.info("Partial resynchronization accepted for replica %s" % self.conn.addr)
        else:
            repl.sync_full += 1
            if self.asked_replid != "?":
                repl.sync_partial_err += 1
            log.info("Full resynchronization of %d of %d shards for replica %s"
                     % (self.modes.count(FULL), len(self.modes), self.conn.addr))

    @property
    def online(self):
        return None not in self.modes

    def ack(self, shard, seq):
        if 0 <= shard < len(self.acked) and seq > self.acked[shard]:
            self.acked[shard] = seq
        self.last_ack = time.monotonic()

    def silent_for(self):
        """Seconds since the replica last acknowledged anything."""
        return time.monotonic() - self.last_ack

    def close(self):
        """The connection is gone: every owner stops sending."""
        if self.closed:
            return
        self.closed = True
        worker = self.worker
        repl = worker.replication
        repl.streams.pop(self.key, None)
        repl.source.unsubscribe(self.key)
        for shard, rid in self.rids.items():
            peer = worker.peers[shard]
            if peer is not None:
                peer.unsubscribe(rid)
                peer.request("repl", ("unsubscribe", self.key), _ignore)
        for shard in self.direct:
            repl.call_shard(shard, ("unsubscribe", self.key), _ignore)

    def info(self):
        """(ip, port, state, offset, lag, acked per shard) for INFO and ROLE."""
        return (self.ip, self.port, "online" if self.online else "wait_bgsave",
                sum(a for a in self.acked if a > 0), int(time.monotonic() - self.last_ack),
                list(self.acked))


def _ignore(result):
    pass
