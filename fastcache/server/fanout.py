"""Commands that touch several shards: multi-key commands split by owner,
and whole-keyspace commands sent to every shard; replies are merged here."""
import random

from fastcache.engine.errors import CommandError
from fastcache.engine.registry import SPLIT_OK, SPLIT_ORDERED, SPLIT_SUM
from fastcache.protocol.replies import OK, Error
from fastcache.engine.scan import parse_cursor
from fastcache.server import crossshard


def _first_error(results):
    for r in results:
        if type(r) is Error:
            return r
    return None


def _gather(conn, targets, merge):
    """Run (shard, argv) pairs; when all have answered, reply merge(results)."""
    worker = conn.worker
    slot = conn.reserve()
    results = [None] * len(targets)
    remaining = [len(targets)]
    dbnum = conn.ctx.db.id

    def done(i, result):
        results[i] = result
        remaining[0] -= 1
        if remaining[0] == 0:
            err = _first_error(results)
            try:
                reply = err if err is not None else merge(results)
            except CommandError as exc:
                reply = Error(exc.message)
            conn.fill(slot, conn.encode(reply))

    for i, (shard, sub_argv) in enumerate(targets):
        if shard == worker.index:
            done(i, worker.execute(conn.ctx, sub_argv))
        else:
            worker.peers[shard].request("call", (dbnum, sub_argv), lambda r, i=i: done(i, r))


# -- multi-key commands split by owner -------------------------------------

def across_shards(conn, cmd, argv, groups):
    """argv's keys live on several shards; groups maps shard -> key positions."""
    if cmd.split is None:
        crossshard.start(conn, cmd, argv, groups)
        return
    step = cmd.step
    if (len(argv) - cmd.first_key) % step:
        conn.run_local(cmd, argv)  # malformed (MSET k v k): the handler says why, nothing runs
        return
    targets = []
    for shard, positions in groups.items():
        sub = [argv[0]]
        for p in positions:
            sub.extend(argv[p:p + step])
        targets.append((shard, sub))
    conn.worker.stats.commands -= len(targets) - 1  # one client command, however split
    if cmd.split == SPLIT_SUM:
        merge = sum
    elif cmd.split == SPLIT_OK:
        def merge(results):
            return OK
    elif cmd.split == SPLIT_ORDERED:
        first = cmd.first_key

        def merge(results):
            out = [None] * ((len(argv) - first) // step)
            for (shard, positions), values in zip(groups.items(), results):
                for p, v in zip(positions, values):
                    out[(p - first) // step] = v
            return out
    else:
        raise ValueError("unknown split kind %r" % cmd.split)
    _gather(conn, targets, merge)


# -- whole-keyspace commands ---------------------------------------------------

def _merge_ok(results):
    return results[0]


def _merge_random(results):
    found = [r for r in results if r is not None]
    return random.choice(found) if found else None


def _merge_keys(results):
    out = []
    for r in results:
        out.extend(r)
    return out


MERGES = {
    "dbsize": sum,
    "keys": _merge_keys,
    "randomkey": _merge_random,
}

# Commands that pick their own shards instead of asking all of them.
ROUTERS = {}


def to_all(conn, cmd, argv):
    router = ROUTERS.get(cmd.name)
    if router is not None:
        router(conn, cmd, argv)
        return
    merge = cmd.merge or MERGES.get(cmd.name, _merge_ok)
    shards = range(conn.worker.nshards)
    conn.worker.stats.commands -= len(shards) - 1
    _gather(conn, [(s, argv) for s in shards], merge)


def _ask(conn, shard, argv, callback):
    """Run argv on one shard (inline if it is ours); callback(result)."""
    worker = conn.worker
    if shard == worker.index:
        callback(worker.execute(conn.ctx, argv))
    else:
        worker.peers[shard].request("call", (conn.ctx.db.id, argv), callback)


def _scan_count(argv):
    for i in range(2, len(argv) - 1):
        if argv[i].lower() == b"count" and argv[i + 1].isdigit():
            return int(argv[i + 1])
    return 10


def _route_scan(conn, cmd, argv):
    """SCAN's cursor carries the shard in its low 8 bits. A call that finishes
    a shard with room left under COUNT goes on to the next one, so a small
    keyspace is scanned in one call and an empty one answers cursor 0, as in
    Redis. The client's next commands wait for it (a barrier), so later writes
    cannot reach a shard before the scan does."""
    worker = conn.worker
    try:
        cursor = parse_cursor(argv[1])
    except CommandError as exc:
        conn.push(conn.encode(Error(exc.message)))
        return
    shard, shard_cursor = cursor & 255, cursor >> 8
    if shard >= worker.nshards:
        shard, shard_cursor = 0, 0
    count = _scan_count(argv)
    found = []
    slot = conn.reserve()
    conn.barrier = True

    def finish(reply):
        conn.barrier = False
        conn.fill(slot, conn.encode(reply))
        if conn.parked is not None:
            conn.resume_after_lock()

    def step(shard, shard_cursor):
        sub = list(argv)
        sub[1] = b"%d" % shard_cursor

        def answered(reply):
            if type(reply) is Error:
                finish(reply)
                return
            found.extend(reply[1])
            next_cursor = int(reply[0])
            if next_cursor:
                finish([b"%d" % ((next_cursor << 8) | shard), found])
            elif shard + 1 < worker.nshards and len(found) < count:
                step(shard + 1, 0)
            else:
                finish([b"%d" % (shard + 1 if shard + 1 < worker.nshards else 0), found])

        _ask(conn, shard, sub, answered)

    step(shard, shard_cursor)


ROUTERS["scan"] = _route_scan
