"""A worker's replication state: its role, its source, its links, its peer requests.

Every worker has one Replication. As a primary, its ReplicationSource serves
its shard to every replica, and it holds the ReplicaStreams of the replica
connections it accepted. As a replica, worker 0 runs the ReplicaLink and
every worker applies what the link routes to it (ReplicaShard). Role changes
(REPLICAOF) reach every worker through the "repl" peer request.
"""
import asyncio
import os

from fastcache import log
from fastcache.engine.context import Context
from fastcache.engine.registry import resolve
from fastcache.protocol.replies import Error
from fastcache.replication import direct
from fastcache.replication.primary import ReplicationSource
from fastcache.replication.replica import ReplicaLink
from fastcache.replication.replica_shard import ReplicaShard

READONLY = Error("READONLY You can't write against a read only replica.")
_REPL_KEYS = ("repl-compression", "repl-zstd-level", "repl-send-policy",
              "repl-batch-max-records", "repl-batch-max-bytes", "repl-batch-max-delay-us",
              "repl-backlog-size")


def new_replid():
    """40 hex characters, like Redis's replication IDs."""
    return os.urandom(20).hex()


def parse_replicaof(value):
    """(host, port) from the replicaof setting, or None."""
    if not value:
        return None
    host, port = value.split()
    return host, int(port)


class Replication:
    def __init__(self, worker):
        self.worker = worker
        self.config = config = worker.config
        self.replid = getattr(config, "replid", None) or new_replid()
        self.source = ReplicationSource(worker, self.replid)
        self.shard = ReplicaShard(worker)
        self.streams = {}           # key -> ReplicaStream accepted on this worker
        self.direct = {}            # key -> direct.ShardStream sending this shard
        self.shard_links = {}       # (session, shard) -> direct.ShardLink applying here
        self.master = parse_replicaof(config["replicaof"])
        self.link = None
        self.sync_full = 0
        self.sync_partial_ok = 0
        self.sync_partial_err = 0
        self.dropped_slow = 0
        self.out_bytes = 0
        self._settings = self._repl_settings()

    # -- role ----------------------------------------------------------------------------

    def refusal(self):
        """The error client writes get from this role (None: they run)."""
        if self.master is not None and self.config["replica-read-only"]:
            return READONLY
        return None

    def start(self):
        """The worker's loop runs: worker 0 of a replica connects."""
        if self.master is not None and self.worker.index == 0:
            self._start_link()

    def _start_link(self):
        host, port = self.master
        log.info("Connecting to MASTER %s:%d" % (host, port))
        self.link = ReplicaLink(self, host, port)
        self.link.start()

    def stop(self):
        if self.link is not None:
            self.link.stop()
            self.link = None
        for stream in list(self.streams.values()):
            stream.conn.close()
        self._close_direct()

    def _close_direct(self):
        for stream in list(self.direct.values()):
            stream.close()
        for link in list(self.shard_links.values()):
            link.close()
        self.shard_links.clear()

    def follow(self, host, port):
        """REPLICAOF host port, on this worker."""
        for stream in list(self.streams.values()):
            stream.close()
            stream.conn.close()
        self.source.stop()
        if self.link is not None:
            self.link.stop()
            self.link = None
        self._close_direct()
        self.master = (host, port)
        self.config.set("replicaof", "%s %d" % (host, port))
        self._refresh_refusal()
        if self.worker.index == 0:
            log.info("REPLICAOF %s:%d enabled (user request)" % (host, port))
            self._start_link()

    def promote(self, replid):
        """REPLICAOF NO ONE, on this worker: keep the data, start a new history."""
        if self.link is not None:
            self.link.stop()
            self.link = None
        self._close_direct()
        self.master = None
        self.config.set("replicaof", "")
        self.replid = replid
        self.source.restart(replid)
        self.shard.forget()
        self._refresh_refusal()
        if self.worker.index == 0:
            log.info("MASTER MODE enabled (user request); replication ID %s" % replid)

    def _refresh_refusal(self):
        durability = self.worker.durability
        if durability is not None:
            durability.refresh_refusal()
        else:
            self.worker.refuse_writes = self.refusal()
            self.worker.apply_config()

    def _repl_settings(self):
        return tuple(self.config[name] for name in _REPL_KEYS) + (self.config["replica-read-only"],)

    def apply_config(self):
        """After CONFIG SET: the source's batching, and READONLY."""
        settings = self._repl_settings()
        if settings == self._settings:
            return
        read_only_changed = settings[-1] != self._settings[-1]
        self._settings = settings
        self.source.reconfigure()
        if read_only_changed:
            self._refresh_refusal()

    def tick(self):
        self.source.tick()
        if self.streams:
            timeout = self.config["repl-timeout"]
            for stream in list(self.streams.values()):
                if stream.silent_for() > timeout:
                    log.warning("Disconnecting timedout replica (streaming sync) %s"
                                % stream.conn.addr)
                    stream.close()
                    stream.conn.close()

    def listening_port(self):
        for sock in self.worker.listeners:
            return sock.getsockname()[1]
        return self.config["port"]

    # -- across workers --------------------------------------------------------------------

    def call_shard(self, shard, payload, callback):
        """Run a "repl" request on shard (inline when it is this worker, after
        any cross-shard lock is released, as a peer's request would be)."""
        worker = self.worker
        if shard != worker.index:
            worker.peers[shard].request("repl", payload, callback)
        elif worker.lock is None:
            callback(self.peer_request(payload))
        else:
            worker.deferred.append(lambda: callback(self.peer_request(payload)))

    def gather(self, payload):
        """A future of every worker's answer to payload, in shard order."""
        loop = self.worker.loop
        n = self.worker.nshards
        futures = [loop.create_future() for _ in range(n)]
        for shard in range(n):
            self.call_shard(shard, payload, futures[shard].set_result)
        return asyncio.gather(*futures)

    def broadcast(self, payload):
        for shard in range(self.worker.nshards):
            self.call_shard(shard, payload, _ignore)

    async def run_across(self, dbid, argv, keys):
        """A record whose keys span replica shards: run on copies, under their locks."""
        from fastcache.server import crossshard
        await crossshard.locked_run(_Applying(self.worker, dbid), resolve(argv), argv, keys)

    def peer_request(self, payload):
        part, method = _OPS[payload[0]]
        try:
            return getattr(self if part is None else getattr(self, part), method)(*payload[1:])
        except Exception as exc:  # a bug must cost one request, not the worker
            log.warning("Replication request %r failed: %s" % (payload[0], exc))
            return None

    # -- direct links (direct.py) -------------------------------------------------------

    def adopt(self, sock, args):
        """A direct link's socket, handed over by the worker that accepted it."""
        direct.adopt(self.worker, sock, args)

    def direct_news(self, what, session, *args):
        """From a ShardStream to the control stream of its session: "join" (is it
        still there?), "settled" (shard, mode), "ack" (shard, seq), "gone"."""
        stream = self.streams.get(session)
        if stream is None or stream.closed:
            return False
        if what == "settled":
            stream._settled(*args)
        elif what == "ack":
            stream.ack(*args)
        elif what == "gone":
            stream.close()
            stream.conn.close()
        return True

    def unsubscribe(self, key):
        """A control stream closed: this shard stops sending to it, on it or
        on its direct link."""
        self.source.unsubscribe(key)
        for stream in list(self.direct.values()):
            if stream.session == key:
                stream.close()

    def attach(self, session, shard, replid, nshards, watermark):
        """Worker 0's link asks this worker to open the direct link of shard."""
        if self.master is None:
            return
        link = direct.ShardLink(self, session, shard, replid, nshards, watermark)
        old = self.shard_links.pop((session, shard), None)
        if old is not None:
            old.close()
        self.shard_links[(session, shard)] = link
        asyncio.ensure_future(link.connect(*self.master))

    def detach(self, session):
        for key in [key for key in self.shard_links if key[0] == session]:
            self.shard_links.pop(key).close()

    def _session_stream(self, session):
        link = self.link
        stream = link.stream if link is not None else None
        if stream is None or stream.closed or stream.session != session:
            return None
        return stream

    def progress(self, session, shard, applied, primary_seq, syncing):
        stream = self._session_stream(session)
        if stream is not None:
            stream.progress(shard, applied, primary_seq, syncing)

    def link_lost(self, session, why):
        stream = self._session_stream(session)
        if stream is not None:
            self.link.failed(why)
            stream.close()

    def acks(self):
        """What each online replica accepted here has acknowledged, per primary shard."""
        return [stream.acked for stream in self.streams.values() if stream.online]

    # -- INFO -----------------------------------------------------------------------------

    def info(self):
        """This worker's share of INFO replication (plain data)."""
        return {
            "master": self.master, "replid": self.replid, "shard": self.worker.index,
            "read_only": self.config["replica-read-only"],
            "source": self.source.info(), "streams": [s.info() for s in self.streams.values()],
            "link": self.link.info() if self.link is not None else None,
            "sync_full": self.sync_full, "sync_partial_ok": self.sync_partial_ok,
            "sync_partial_err": self.sync_partial_err, "dropped_slow": self.dropped_slow,
            "out_bytes": self.out_bytes, "apply_errors": self.shard.errors,
            "marks": self.shard.state(),
        }


class _Applying:
    """What server/crossshard.py needs of a client connection, for applying a record."""

    def __init__(self, worker, dbid):
        self.worker = worker
        self.ctx = Context(worker.ks, dbid, 2, None, worker)


# The "repl" peer request: op -> (the part of Replication that answers, its method).
_OPS = {
    "marks": ("shard", "state"),
    "origin": ("shard", "origin"),
    "frame": ("shard", "apply_frame"),
    "apply": ("shard", "apply"),
    "begin": ("shard", "full_begin"),
    "chunk": ("shard", "full_chunk"),
    "end": ("shard", "full_end"),
    "flush": ("source", "flush"),
    "getack": ("source", "getack"),
    "unsubscribe": (None, "unsubscribe"),
    "direct": (None, "direct_news"),
    "attach": (None, "attach"),
    "detach": (None, "detach"),
    "progress": (None, "progress"),
    "link-lost": (None, "link_lost"),
    "acks": (None, "acks"),
    "follow": (None, "follow"),
    "promote": (None, "promote"),
}


def peer_subscribe(worker, payload, reply):
    """The "repl-subscribe" peer request: stream this shard to another worker's link."""
    key, replid, watermark = payload
    worker.replication.source.subscribe(key, replid, watermark, reply)


def peer_request(worker, payload, txn):
    return worker.replication.peer_request(payload)


def _ignore(result):
    pass
