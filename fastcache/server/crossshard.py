"""Commands whose keys span shards and that cannot simply be split
(RENAME, COPY, MSETNX, LCS, ...).

The coordinating worker locks the shards involved in ascending order (so two
coordinators can never deadlock), copies the involved keys into a scratch
keyspace, runs the ordinary handler there, writes back what changed, and
unlocks. A locked shard defers all other work, so the command is atomic and
isolated. The client's later commands wait behind it (a barrier), keeping
per-connection order.
"""
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


def start_parts(conn, targets, merge):
    """Run (shard, argv) parts with their shards locked, so the command is
    isolated from transactions and other multi-shard commands; reply merged."""
    conn.run_async(_locked_parts(conn, targets, merge))


async def _locked_parts(conn, targets, merge):
    """Each part in ascending shard order: take that shard's lock and run the
    part in one exchange (the lock stays held until every part has run), so a
    split command holds its locks for about one round trip per remote shard."""
    from fastcache.server.fanout import merged
    worker = conn.worker
    txn = new_txn(worker)
    results = [None] * len(targets)
    locked = []
    dbnum = conn.ctx.db.id
    try:
        for i, (shard, sub) in sorted(enumerate(targets), key=lambda item: item[1][0]):
            if shard == worker.index:
                await worker.lock_local(txn)
                locked.append(shard)
                results[i] = worker.execute(conn.ctx, sub, part=True)
            else:
                locked.append(shard)  # held once the reply arrives; unlocking a free shard is harmless
                results[i] = await worker.peers[shard].call("lockcall", (dbnum, sub), txn)
    finally:
        unlock_shards(worker, locked, txn)
    return merged(results, merge)


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
