"""Replication commands: REPLICAOF/SLAVEOF, ROLE, WAIT, REPLCONF, and FCSYNC
(fastcache's replica handshake, in place of Redis's PSYNC)."""
import asyncio
import time

from fastcache.engine import errors
from fastcache.engine.args import parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.registry import ALL, command
from fastcache.protocol.replies import DEFERRED, OK, Error, Simple
from fastcache.replication import direct
from fastcache.replication.node import new_replid
from fastcache.replication.primary import ReplicaStream
from fastcache.server import fanout
from fastcache.server.admin import server_of

REPL = "server"
ADMIN_ACL = "@admin @slow @dangerous"
WAIT_ON_REPLICA = ("ERR WAIT cannot be used with replica instances. Please also note that since "
                   "Redis 4.0 if a replica is configured to be writable (which is not the "
                   "default) writes to replicas are just local and are not propagated.")
WAIT_POLL = 0.002


# -- REPLICAOF / SLAVEOF -----------------------------------------------------------------

def _replicaof(ctx, argv):
    raise CommandError("ERR %s is only available in fastcache-server" % argv[0].decode().upper())


for _name in ("replicaof", "slaveof"):
    command(_name, 3, "admin noscript stale no_async_loading", route=ALL, group=REPL,
            since="5.0.0" if _name == "replicaof" else "1.0.0",
            summary="Make the server a replica of another instance, or promote it as master.",
            acl=ADMIN_ACL)(_replicaof)


def _route_replicaof(conn, cmd, argv):
    """Every worker takes the new role; a promotion's replication ID is made once, here."""
    repl = conn.worker.replication
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        if repl.master is None:
            conn.push(conn.encode(OK))
            return
        payload = ("promote", new_replid())
    else:
        try:
            port = parse_int(argv[2], "ERR Invalid master port")
        except CommandError as exc:
            conn.push(conn.encode(Error(exc.message)))
            return
        if not 0 <= port <= 65535:
            conn.push(conn.encode(Error("ERR Invalid master port")))
            return
        host = argv[1].decode("utf-8", "replace")
        if repl.master == (host, port):
            conn.push(conn.encode(Simple("OK Already connected to specified master")))
            return
        payload = ("follow", host, port)
    conn.run_async(_everywhere(repl, payload))


async def _everywhere(repl, payload):
    await repl.gather(payload)
    return OK


fanout.ROUTERS["replicaof"] = _route_replicaof
fanout.ROUTERS["slaveof"] = _route_replicaof


# -- ROLE -------------------------------------------------------------------------------

def _merge_role(parts):
    replica = [p for p in parts if p[0] == "slave"]
    if replica:
        _, host, port, state, offset = replica[0]
        return [b"slave", host.encode(), port, state.encode(), offset]
    offset = sum(p[1] for p in parts)
    replicas = [[ip.encode(), b"%d" % port, b"%d" % acked]
                for p in parts for ip, port, acked in p[2]]
    return [b"master", offset, replicas]


@command("role", 1, "noscript loading stale fast", route=ALL, merge=_merge_role, group=REPL,
         since="2.8.12", summary="Return the role of the instance in the context of replication",
         acl="@admin @fast @dangerous")
def role(ctx, argv):
    worker = ctx.server
    if worker is None:
        return [b"master", 0, []]
    repl = worker.replication
    if repl.master is not None:
        if repl.link is None:     # only worker 0 runs the link
            return ("master", 0, [])
        info = repl.link.info()
        offset = info["applied"] if info["up"] else -1
        return ("slave", info["host"], info["port"], info["state"], offset)
    streams = [(s[0], s[1], s[3]) for s in (st.info() for st in repl.streams.values())]
    return ("master", repl.source.info()["seq"], streams)


# -- WAIT -------------------------------------------------------------------------------

@command("wait", 3, "noscript", group="generic", since="3.0.0",
         summary="Wait for the synchronous replication of all the write commands sent in the "
                 "context of the current connection", acl="@slow @connection",
         tips="request_policy:all_shards response_policy:agg_min")
def wait(ctx, argv):
    worker = ctx.server
    if worker is not None and worker.replication.master is not None:
        raise CommandError(WAIT_ON_REPLICA)
    timeout = parse_int(argv[2], "ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    wanted = parse_int(argv[1])
    conn = ctx.client
    if worker is None or conn is None:
        return 0
    if conn.in_exec or conn.multi is not None:
        # No waiting inside a transaction: the replicas attached now (their
        # acknowledgements live on other workers, out of a transaction's reach).
        return len(worker.replication.source.subscribers)
    conn.run_async(_wait(worker.replication, wanted, timeout))
    return DEFERRED


async def _wait(repl, wanted, timeout_ms):
    """Ship every shard's records, then count the replicas that acknowledged
    them all, until enough have or the timeout passes."""
    targets = await repl.gather(("getack",))
    deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
    while True:
        count = 0
        for part in await repl.gather(("acks",)):
            for acked in part:
                if all(a >= t for a, t in zip(acked, targets)):
                    count += 1
        if count >= wanted or (deadline is not None and time.monotonic() >= deadline):
            return count
        await asyncio.sleep(WAIT_POLL)


# -- the replica's side of the stream ---------------------------------------------------

@command("replconf", -1, "admin noscript loading stale allow_busy", group=REPL, since="3.0.0",
         summary="An internal command for configuring the replication stream", acl=ADMIN_ACL)
def replconf(ctx, argv):
    conn = ctx.client
    if len(argv) == 4 and argv[1].lower() == b"ack":
        stream = getattr(conn, "replica_stream", None)
        if stream is not None:
            stream.ack(parse_int(argv[2]), parse_int(argv[3]))
        return DEFERRED       # acknowledgements get no reply, as in Redis
    if len(argv) % 2 == 0:
        raise CommandError(errors.SYNTAX)
    for i in range(1, len(argv), 2):
        option = argv[i].lower()
        if option == b"listening-port":
            port = parse_int(argv[i + 1])
            if conn is not None:
                conn.repl_port = port
        elif option not in (b"ip-address", b"capa", b"getack", b"rdb-only", b"rdb-filter-only"):
            raise CommandError("ERR Unrecognized REPLCONF option: %s" % errors.shown(argv[i]))
    return OK


@command("fcsync", -3, "admin noscript no_multi", group=REPL, since="7.0.0",
         summary="fastcache: start a replication stream (replid nshards watermark... "
                 "[DIRECT replica-shards] [SHARD shard SESSION session])",
         acl=ADMIN_ACL)
def fcsync(ctx, argv):
    worker = server_of(ctx, "FCSYNC")
    conn = ctx.client
    repl = worker.replication
    if worker.durability is None:
        raise CommandError("ERR replication needs fastcache-server")
    if repl.master is not None:
        raise CommandError("ERR this fastcache server is a replica; replicas do not serve "
                           "replicas (no chained replication)")
    replid = argv[1].decode("utf-8", "replace")
    nshards = parse_int(argv[2])
    if not 0 <= nshards <= len(argv) - 3:
        raise CommandError("ERR FCSYNC wants one watermark per shard")
    watermarks = [parse_int(w) for w in argv[3:3 + nshards]]
    options = _fcsync_options(argv[3 + nshards:])
    if nshards != worker.nshards or replid != repl.replid:
        watermarks = [-1] * worker.nshards
    if "shard" in options:
        direct.hand_over(conn, replid, watermarks, options)
        return DEFERRED
    if len(repl.source.subscribers) >= worker.config["repl-max-replicas"]:
        raise CommandError("ERR max number of replicas reached (repl-max-replicas)")
    shards = direct.direct_shards(worker, options.get("direct"))
    stream = conn.replica_stream = ReplicaStream(conn, replid, watermarks, shards)
    reply = b"+FCSTREAM %s %d" % (repl.replid.encode(), worker.nshards)
    if "direct" in options:
        reply += b" " + b" ".join([direct.session_name(stream.key)] +
                                  [b"%d" % s for s in shards])
    conn.push(reply + b"\r\n")
    conn.flush()
    repl.streams[stream.key] = stream
    stream.start()
    return DEFERRED


def _fcsync_options(words):
    """FCSYNC's options after the watermarks: {name: int or session}."""
    if len(words) % 2:
        raise CommandError(errors.SYNTAX)
    options = {}
    for i in range(0, len(words), 2):
        name = words[i].lower()
        if name == b"direct":
            options["direct"] = parse_int(words[i + 1])
        elif name == b"shard":
            options["shard"] = parse_int(words[i + 1])
        elif name == b"session":
            options["session"] = direct.parse_session(words[i + 1])
        else:
            raise CommandError(errors.SYNTAX)
    return options
