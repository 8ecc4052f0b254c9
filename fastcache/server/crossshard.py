"""Commands whose keys span shards and that cannot simply be split
(RENAME, COPY, MSETNX, LCS, ...).

The coordinating worker locks the shards involved in ascending order (so two
coordinators can never deadlock), copies the involved keys into a scratch
keyspace, runs the ordinary handler there, writes back what changed, and
unlocks. A locked shard defers all other work, so the command is atomic and
isolated. The client's later commands wait behind it (a barrier), keeping
per-connection order.

Commands that do split by owner (MGET, MSET, DEL, ...) run their parts under
the same locks, many clients' commands at once: see "Group commit" below.
"""
import asyncio
import itertools
import pickle

from fastcache.engine.context import Context
from fastcache.engine.dispatch import run as run_command
from fastcache.engine.keyspace import Keyspace
from fastcache.persistence.apply import put_record

_txn_ids = itertools.count(1)


def fetch_keys(ks, keys):
    """Every db's live entry for keys, as a pickled copy: [(db, key, value, expire_at)]."""
    entries = []
    for db in ks.dbs:
        for key in keys:
            value = ks.peek(db, key)
            if value is not None:
                entries.append((db.id, key, value, db.expires.get(key)))
    return pickle.dumps(entries, 5)


def store_keys(worker, entries, events=()):
    """Apply final states [(db, key, value or None, expire_at)], then publish
    the keyspace events the command raised for these keys [(event, db, key)].
    The writes themselves are silent: the events already say what happened."""
    ks = worker.ks
    flags, ks.notify_flags = ks.notify_flags, 0
    try:
        for dbnum, key, value, expire_at in entries:
            db = ks.dbs[dbnum]
            if value is None:
                ks.delete(db, key)
            else:
                ks.set(db, key, value, expire_at)
            if ks.journal is not None:
                ks.journal.log(dbnum, [b"DEL", key] if value is None
                               else put_record(key, value, expire_at))
            if ks.watched:
                ks.touch(dbnum, key)
            worker.keys_changed(dbnum, [key])
    finally:
        ks.notify_flags = flags
    if events and ks.publish_event is not None:  # already filtered by class on the copies
        for event, dbnum, key in events:
            ks.publish_event(event, dbnum, key)


def start(conn, cmd, argv, groups):
    by_shard = {shard: {argv[i] for i in positions} for shard, positions in groups.items()}
    conn.run_async(locked_run(conn, cmd, argv, by_shard))


# Group commit. Split commands (MSET, MGET, DEL, ... across shards) from many
# clients run as groups: one txn locks the union of a group's shards once, runs
# every member's part on each shard in member order (a shard's parts in one
# request), and unlocks once. Members are concurrent, and each one's parts run
# at the same point of that order on every shard, so the group is a valid serial
# order: each command stays atomic and isolated, at one locking round trip per
# remote shard for the whole group rather than for each command.
#
# A worker runs one group at a time; the commands that arrive meanwhile form the
# next. Groups started as soon as their commands arrive would queue on each
# other's locks anyway, and so would shrink to a command or two each (measured:
# 1.5 members on average with 50 clients, against the whole client set here).
GROUP_MAX = 64


class _Member:
    __slots__ = ("ctx", "dbnum", "targets", "merge", "done")

    def __init__(self, conn, targets, merge, done):
        self.ctx = conn.ctx            # the client's db cannot change: its barrier holds
        self.dbnum = conn.ctx.db.id    # later commands (SELECT included) until done
        self.targets = targets
        self.merge = merge
        self.done = done


class _Committer:
    """A worker's split commands waiting for their group, and whether a group runs."""

    def __init__(self, worker):
        self.worker = worker
        self.waiting = []
        self.running = False

    def add(self, member):
        self.waiting.append(member)
        if not self.running:
            self.running = True
            # Its first step runs in the next loop pass, once this pass's commands joined.
            asyncio.ensure_future(self.run())

    async def run(self):
        try:
            while self.waiting:
                group = self.waiting[:GROUP_MAX]
                del self.waiting[:GROUP_MAX]
                await _run_group(self.worker, group)
                # One pass: the members resume, and their next split commands join
                # the next group rather than wait a whole group for the one after.
                await asyncio.sleep(0)
        finally:
            self.running = False


def start_parts(conn, targets, merge):
    """Run (shard, argv) parts with their shards locked, so the command is
    isolated from transactions and other multi-shard commands; reply merged.
    The client waits behind it like any run_async command."""
    worker = conn.worker
    done = worker.loop.create_future()
    conn.run_async(done)
    committer = worker.split_groups
    if committer is None:
        committer = worker.split_groups = _Committer(worker)
    committer.add(_Member(conn, targets, merge, done))


async def _run_group(worker, members):
    try:
        results = await _locked_parts(worker, members)
    except Exception as exc:  # a lost peer link: every member gets the error reply
        for member in members:
            if not member.done.done():   # cancelled: the worker is stopping
                member.done.set_exception(exc)
        return
    from fastcache.server.fanout import merged
    for member, member_results in zip(members, results):
        if not member.done.done():
            member.done.set_result(merged(member_results, member.merge))


async def _locked_parts(worker, members):
    """Per member, its parts' results. Shards in ascending order: take the lock
    and run that shard's parts in one exchange (every lock stays held until all
    parts have run)."""
    by_shard = {}   # shard -> [(member, part index, argv)]
    for m, member in enumerate(members):
        for i, (shard, sub) in enumerate(member.targets):
            by_shard.setdefault(shard, []).append((m, i, sub))
    results = [[None] * len(member.targets) for member in members]
    txn = new_txn(worker)
    locked = []
    try:
        for shard in sorted(by_shard):
            parts = by_shard[shard]
            if shard == worker.index:
                await worker.lock_local(txn)
                locked.append(shard)
                for m, i, sub in parts:
                    results[m][i] = worker.execute(members[m].ctx, sub, part=True)
                continue
            locked.append(shard)  # held once the reply arrives; unlocking a free shard is harmless
            # One request, not one per part: a shard locked by another txn defers
            # requests, and only the first of several deferred ones would get the lock.
            replies = await worker.peers[shard].call(
                "lockcall", [(members[m].dbnum, sub) for m, _, sub in parts], txn)
            for (m, i, _), reply in zip(parts, replies):
                results[m][i] = reply
    finally:
        unlock_shards(worker, locked, txn)
    return results


async def ask(conn, shard, argv, txn):
    """argv's reply value from shard (inline when it is this worker's)."""
    worker = conn.worker
    if shard == worker.index:
        return worker.execute(conn.ctx, argv, part=True)
    return await worker.peers[shard].call("call", (conn.ctx.db.id, argv), txn)


def new_txn(worker):
    return (worker.index, next(_txn_ids))


async def lock_shards(worker, shards, txn):
    """Take each shard's lock for txn, in ascending order; the shards locked."""
    locked = []
    try:
        for shard in sorted(shards):
            if shard == worker.index:
                await worker.lock_local(txn)
            else:
                await worker.peers[shard].call("lock", None, txn)
            locked.append(shard)
    except BaseException:
        unlock_shards(worker, locked, txn)
        raise
    return locked


def unlock_shards(worker, shards, txn):
    for shard in reversed(shards):
        if shard == worker.index:
            worker.unlock(txn)
        else:
            worker.peers[shard].request("unlock", None, _ignore, txn)


async def locked_run(conn, cmd, argv, by_shard):
    worker = conn.worker
    txn = new_txn(worker)
    locked = await lock_shards(worker, by_shard, txn)
    try:
        return await run_on_copies(conn, cmd, argv, by_shard, txn)
    finally:
        unlock_shards(worker, locked, txn)


async def run_on_copies(conn, cmd, argv, by_shard, txn):
    """With by_shard's shards locked for txn: copy the keys in, run, write back."""
    worker = conn.worker
    shards = sorted(by_shard)
    before = {}
    for shard in shards:
        keys = sorted(by_shard[shard])
        if shard == worker.index:
            blob = fetch_keys(worker.ks, keys)
        else:
            blob = await worker.peers[shard].call("fetch", keys, txn)
        for dbnum, key, value, expire_at in pickle.loads(blob):
            before[(dbnum, key)] = (value, expire_at)
    scratch = Keyspace(len(worker.ks.dbs))
    events = []  # raised on the copies; each owner publishes its keys' share
    scratch.notify_flags = worker.ks.notify_flags
    scratch.publish_event = lambda event, dbid, key: events.append((event, dbid, key))
    for (dbnum, key), (value, expire_at) in pickle.loads(pickle.dumps(before, 5)).items():
        scratch.dbs[dbnum].data[key] = value
        if expire_at is not None:
            scratch.dbs[dbnum].expires[key] = expire_at
    ctx = Context(scratch, conn.ctx.db.id, conn.ctx.proto, conn, worker)
    reply = run_command(ctx, cmd, argv)
    worker.stats.commands += 1
    for shard in shards:
        changes = []
        for db in scratch.dbs:
            for key in by_shard[shard]:
                after = db.data.get(key)
                state = (after, db.expires.get(key)) if after is not None else None
                if state != before.get((db.id, key)):
                    changes.append((db.id, key, after, state[1] if state else None))
        own_events = [e for e in events if e[2] in by_shard[shard]]
        if not changes and not own_events:
            continue
        if shard == worker.index:
            store_keys(worker, changes, own_events)
        else:
            await worker.peers[shard].call("store", (changes, own_events), txn)
    return reply


def _ignore(result):
    pass
