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
import traceback

import hiredis

from fastcache import log
from fastcache.engine.context import Context
from fastcache.engine.dispatch import run as run_command
from fastcache.engine.fastpath import run_batch
from fastcache.engine.keyspace import Keyspace
from fastcache.persistence.apply import put_record
from fastcache.protocol.replies import OK, Error

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
#
# A client's consecutive split commands (a pipeline of MSETs) join too, in
# request order: members run in order within a group, and groups one after
# another, so each still sees the ones before it.
#
# The cap bounds how long a group holds its locks. Measured (MSET -P 16, 50
# clients, 2 shards, server CPU per MSET): 64 members 31 us, 128 29, 256 28.
GROUP_MAX = 128

# A client's split commands in flight, at most: a long pipeline of them must not
# fill group after group while other clients' commands wait.
CLIENT_MAX = 4 * GROUP_MAX


class _Member:
    __slots__ = ("conn", "ctx", "dbnum", "targets", "merge", "slot")

    def __init__(self, conn, targets, merge):
        self.conn = conn
        self.ctx = conn.ctx            # the client's db cannot change: its barrier holds
        self.dbnum = conn.ctx.db.id    # later commands (SELECT included) until done
        self.targets = targets
        self.merge = merge
        self.slot = conn.start_split()


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
    The client's later commands wait behind it, except split commands, which
    may join it (connection.py): groups run in order, and members in order."""
    worker = conn.worker
    committer = worker.split_groups
    if committer is None:
        committer = worker.split_groups = _Committer(worker)
    committer.add(_Member(conn, targets, merge))


async def _run_group(worker, members):
    from fastcache.server.fanout import merged
    try:
        results = await _locked_parts(worker, members)
    except Exception as exc:  # a lost peer link: every member gets the error reply
        replies = [Error("ERR multi-shard command failed: %s" % exc)] * len(members)
    else:
        replies = [merged(r, member.merge) for r, member in zip(results, members)]
    # Last member first: a client's earlier slots still owe, so its replies
    # leave in one write when its first slot fills, not one write each.
    for m in range(len(members) - 1, -1, -1):
        members[m].conn.settle(members[m].slot, replies[m], split=True)
    resumed = set()
    for member in members:
        conn = member.conn
        if conn not in resumed:
            resumed.add(conn)
            try:
                conn.resume_if_free()
            except Exception:  # one client's failure must not strand the others
                log.warning("Resuming a client after a split command failed:\n%s"
                            % traceback.format_exc())


_OK_REPLY = b"+OK\r\n"
_reader = hiredis.Reader()


def run_parts(worker, parts):
    """Reply values for split commands' parts [(ctx, argv)], run here in order.
    The native fast path runs the plain ones (MSET, MGET, ...) as it runs
    forwarded commands (worker._peer_batch); its encoded replies are read back
    into values for the merge. The rest go through the command table."""
    ks = worker.ks
    if not worker.fast_path_open():
        return [worker.execute(ctx, argv, part=True) for ctx, argv in parts]
    journal = ks.journal
    records = None
    shard = worker.index
    out = []
    one = [None]
    results = []
    executed = 0
    for ctx, argv in parts:
        db = ctx.db
        if journal is not None:
            journal.use_db(db.id)
            records = journal.entries
        one[0] = argv
        if run_batch(one, 0, out, db, ks, 2, None, shard, None, records)[0]:
            executed += 1
            reply = out.pop()
            if reply == _OK_REPLY:
                results.append(OK)
            else:
                _reader.feed(reply)
                results.append(_reader.gets())
        else:
            results.append(worker.execute(ctx, argv, part=True))
    worker.stats.commands += executed
    return results


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
                replies = run_parts(worker, [(members[m].ctx, sub) for m, _, sub in parts])
            else:
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


def peer_lockcall(worker, parts, txn):
    """A peer's group: take the lock for txn and run its parts [(db, argv)] in order."""
    worker.lock = txn
    return run_parts(worker, [(worker.peer_context(dbnum, 2), argv) for dbnum, argv in parts])


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
