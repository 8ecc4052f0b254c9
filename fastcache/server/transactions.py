"""MULTI, EXEC, DISCARD, WATCH and UNWATCH.

Queued commands run inline when every key they touch (and every watched key)
is on the client's own worker: one synchronous pass is atomic by itself.
Otherwise EXEC locks the shards involved in ascending order, checks the
watched keys' versions where they live, runs each command through its usual
route under the lock (other clients' work waits on a locked shard), and
unlocks: atomic and isolated across shards.
"""
from fastcache.engine.errors import CommandError
from fastcache.engine.registry import ALL, LOCAL, command
from fastcache.engine.slots import key_slot
from fastcache.protocol.replies import DEFERRED, NULL_ARRAY, OK
from fastcache.server import blocking, crossshard, fanout

TXN = "transactions"
# Commands that run at once even inside MULTI (the rest are queued).
IMMEDIATE = frozenset(("exec", "discard", "multi", "watch", "quit", "reset"))
EXECABORT = "EXECABORT Transaction discarded because of previous errors."


@command("multi", 1, "noscript loading stale fast allow_busy", group=TXN, since="1.2.0",
         summary="Mark the start of a transaction block")
def multi(ctx, argv):
    client = ctx.client
    if client.multi is not None:
        raise CommandError("ERR MULTI calls can not be nested")
    client.multi = []
    client.multi_error = False
    return OK


@command("discard", 1, "noscript loading stale fast allow_busy", group=TXN, since="2.0.0",
         summary="Discard all commands issued after MULTI")
def discard(ctx, argv):
    client = ctx.client
    if client.multi is None:
        raise CommandError("ERR DISCARD without MULTI")
    client.multi = None
    unwatch_all(client)
    return OK


@command("watch", -2, "noscript loading stale fast allow_busy", (1, -1, 1), route=LOCAL,
         group=TXN, since="2.2.0", summary="Watch the given keys to determine execution of the MULTI/EXEC block")
def watch(ctx, argv):
    client = ctx.client
    if client.multi is not None:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    worker = client.worker
    dbid = ctx.db.id
    remote = {}
    for key in argv[1:]:
        if (dbid, key) in client.watching:
            continue
        shard = worker.owner_of(key)
        if shard == worker.index:
            client.watching[(dbid, key)] = (shard, worker.ks.watch(dbid, key))
        else:
            remote.setdefault(shard, []).append(key)
    if not remote:
        return OK
    # Versions of remote keys come back over their links; later commands to
    # those shards travel behind the registration, so none is missed.
    slot = client.reserve()
    waiting = [len(remote)]

    def registered(shard, keys, versions):
        for key, version in zip(keys, versions):
            client.watching[(dbid, key)] = (shard, version)
        waiting[0] -= 1
        if not waiting[0]:
            client.fill(slot, client.encode(OK))

    for shard, keys in remote.items():
        worker.peers[shard].request("watch", (dbid, keys),
                                    lambda v, s=shard, k=keys: registered(s, k, v))
    return DEFERRED


@command("unwatch", 1, "noscript loading stale fast allow_busy", group=TXN, since="2.2.0",
         summary="Forget about all watched keys")
def unwatch(ctx, argv):
    unwatch_all(ctx.client)
    return OK


@command("exec", 1, "noscript loading stale skip_slowlog", group=TXN, since="1.2.0",
         summary="Execute all commands issued after MULTI")
def exec_(ctx, argv):
    client = ctx.client
    if client.multi is None:
        raise CommandError("ERR EXEC without MULTI")
    queued, failed = client.multi, client.multi_error
    client.multi = None
    if failed:
        unwatch_all(client)
        raise CommandError(EXECABORT)
    shards = involved_shards(client, queued)
    if shards <= {client.worker.index}:
        client.in_exec = True
        try:
            reply = _exec_here(client, queued)
        finally:
            client.in_exec = False
        unwatch_all(client)
        return reply
    client.run_async(_exec_across(client, queued, shards))
    return DEFERRED


def involved_shards(client, queued):
    worker = client.worker
    if worker.nshards == 1:
        return {worker.index}
    shards = {shard for shard, _ in client.watching.values()}
    for cmd, argv in queued:
        if cmd.route is ALL:
            return set(range(worker.nshards))
        if cmd.first_key or cmd.get_keys:  # routed by keys, or blocking (run here, keys elsewhere)
            shards.update(worker.slot_owner[key_slot(argv[i])] for i in cmd.key_indexes(argv))
    return shards or {worker.index}


def _watch_entries(client):
    by_shard = {}
    for (dbid, key), (shard, version) in client.watching.items():
        by_shard.setdefault(shard, []).append((dbid, key, version))
    return by_shard


def _exec_here(client, queued):
    worker = client.worker
    entries = _watch_entries(client).get(worker.index, ())
    if entries and not worker.ks.watches_intact(entries):
        return NULL_ARRAY
    return [_run_here(client, cmd, argv) for cmd, argv in queued]


def _run_here(client, cmd, argv):
    """A queued command whose every shard is this one."""
    worker = client.worker
    if cmd.route is ALL:
        targets, merge = fanout.plan_all(cmd, argv, worker.nshards)
        return fanout.merged([worker.execute(client.ctx, sub, part=True) for _, sub in targets], merge)
    return worker.run_command(client.ctx, cmd, argv)


async def _exec_across(client, queued, shards):
    worker = client.worker
    txn = crossshard.new_txn(worker)
    locked = await crossshard.lock_shards(worker, shards, txn)
    try:
        reply = NULL_ARRAY
        if await _watches_intact(client, txn):
            client.in_exec = True
            try:
                reply = [await _run_in_txn(client, cmd, argv, txn) for cmd, argv in queued]
            finally:
                client.in_exec = False
    finally:
        crossshard.unlock_shards(worker, locked, txn)
        unwatch_all(client)
    return reply


async def _watches_intact(client, txn):
    worker = client.worker
    for shard, entries in _watch_entries(client).items():
        if shard == worker.index:
            intact = worker.ks.watches_intact(entries)
        else:
            intact = await worker.peers[shard].call("watchcheck", entries, txn)
        if not intact:
            return False
    return True


async def _run_in_txn(client, cmd, argv, txn):
    """One queued command, through the route it would take outside MULTI."""
    worker = client.worker
    parse = blocking.PARSERS.get(cmd.name)
    if parse is not None and worker.nshards > 1:
        return await blocking.attempt_in_txn(client, parse, argv, txn)
    if cmd.route is LOCAL or worker.nshards == 1:
        return worker.run_command(client.ctx, cmd, argv)
    if cmd.route is ALL:
        targets, merge = fanout.plan_all(cmd, argv, worker.nshards)
    else:
        groups = fanout.group_keys(worker, cmd, argv)
        if len(groups) <= 1:
            return await crossshard.ask(client, next(iter(groups), worker.index), argv, txn)
        if cmd.split is None:
            by_shard = {s: {argv[i] for i in pos} for s, pos in groups.items()}
            return await crossshard.run_on_copies(client, cmd, argv, by_shard, txn)
        if not fanout.well_formed_split(cmd, argv):
            return worker.run_command(client.ctx, cmd, argv)
        targets, merge = fanout.plan_split(cmd, argv, groups)
    results = [await crossshard.ask(client, shard, sub, txn) for shard, sub in targets]
    return fanout.merged(results, merge)


def unwatch_all(client):
    """Drop every watch the client holds, here and on the shards that track them."""
    if not client.watching:
        return
    worker = client.worker
    remote = {}
    for (dbid, key), (shard, _) in client.watching.items():
        if shard == worker.index:
            worker.ks.unwatch(dbid, key)
        else:
            remote.setdefault(shard, []).append((dbid, key))
    client.watching = {}
    for shard, keys in remote.items():
        peer = worker.peers[shard]
        if peer is not None:
            peer.request("unwatch", keys, _ignore)


def _ignore(result):
    pass


# Requests a worker serves for WATCH on keys it owns.

def peer_watch(worker, payload, txn):
    dbid, keys = payload
    return [worker.ks.watch(dbid, key) for key in keys]


def peer_unwatch(worker, keys, txn):
    for dbid, key in keys:
        worker.ks.unwatch(dbid, key)
    return True


def peer_watchcheck(worker, entries, txn):
    return worker.ks.watches_intact(entries)
