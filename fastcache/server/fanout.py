"""Commands that touch several shards: multi-key commands split by owner,
and whole-keyspace commands sent to every shard; replies are merged here."""
import random

from fastcache.engine.errors import CommandError
from fastcache.engine.registry import KEYS, SPLIT_OK, SPLIT_ORDERED, SPLIT_SUM, resolve
from fastcache.protocol.replies import OK, Error
from fastcache.engine.scan import parse_cursor
from fastcache.engine.slots import key_slot
from fastcache.server import crossshard


def merged(results, merge):
    """The reply for a command's per-shard results: an error in any part, else merge."""
    for r in results:
        if type(r) is Error:
            return r
    try:
        return merge(results)
    except CommandError as exc:
        return Error(exc.message)


def _gather(conn, targets, merge):
    """Run (shard, argv) pairs; when all have answered, reply merged(results)."""
    worker = conn.worker
    slot = conn.reserve()
    results = [None] * len(targets)
    remaining = [len(targets)]
    dbnum = conn.ctx.db.id

    def done(i, result):
        results[i] = result
        remaining[0] -= 1
        if remaining[0] == 0:
            conn.fill(slot, conn.encode(merged(results, merge)))

    for i, (shard, sub_argv) in enumerate(targets):
        if shard == worker.index:
            done(i, worker.execute(conn.ctx, sub_argv, part=True))
        else:
            worker.peers[shard].request("call", (dbnum, sub_argv), lambda r, i=i: done(i, r))


# -- multi-key commands split by owner -------------------------------------

def group_keys(worker, cmd, argv):
    """shard -> positions of argv's keys it owns."""
    owner = worker.slot_owner
    groups = {}
    for i in cmd.key_indexes(argv):
        groups.setdefault(owner[key_slot(argv[i])], []).append(i)
    return groups


def well_formed_split(cmd, argv):
    """False for e.g. MSET k v k: the handler must say why, and nothing may run."""
    return not (len(argv) - cmd.first_key) % cmd.step


def plan_split(cmd, argv, groups):
    """(targets, merge) for a command of a split kind whose keys span shards."""
    step = cmd.step
    targets = []
    for shard, positions in groups.items():
        sub = [argv[0]]
        for p in positions:
            sub.extend(argv[p:p + step])
        targets.append((shard, sub))
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
    return targets, merge


def across_shards(conn, cmd, argv, groups):
    """argv's keys live on several shards; groups maps shard -> key positions."""
    if cmd.split is None:
        crossshard.start(conn, cmd, argv, groups)
        return
    if not well_formed_split(cmd, argv):
        conn.run_local(cmd, argv)
        return
    targets, merge = plan_split(cmd, argv, groups)
    conn.worker.stats.commands -= len(targets) - 1  # one client command, however split
    crossshard.start_parts(conn, targets, merge)


def join_split(conn, argv):
    """Run argv as across_shards would if it is a split command whose keys span
    shards, and say whether it did. Called while the client's earlier split
    commands are in flight: this one joins their queue rather than wait for
    them. Anything dispatch would treat specially is left to it."""
    if not conn.plain() or conn.splits >= crossshard.CLIENT_MAX:
        return False
    try:
        cmd = resolve(argv)
    except CommandError:
        return False
    if cmd.split is None or cmd.route is not KEYS or not well_formed_split(cmd, argv):
        return False
    groups = group_keys(conn.worker, cmd, argv)
    if len(groups) < 2:
        return False
    across_shards(conn, cmd, argv, groups)
    return True


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


# Fan-outs that read or write keys are isolated with shard locks; the rest
# (INFO, CONFIG, CLIENT, ...) only gather per-worker facts.
KEYSPACE_FLAGS = frozenset(("readonly", "write"))

MERGES = {
    "dbsize": sum,
    "keys": _merge_keys,
    "randomkey": _merge_random,
}

# Commands that pick their own shards instead of asking all of them.
ROUTERS = {}


def plan_all(cmd, argv, nshards):
    """(targets, merge) for a whole-keyspace command (SCAN: the one shard its cursor names)."""
    if cmd.name == "scan":
        return _scan_step(argv, nshards)
    return [(s, argv) for s in range(nshards)], cmd.merge or MERGES.get(cmd.name, _merge_ok)


def _scan_step(argv, nshards):
    try:
        cursor = parse_cursor(argv[1])
    except CommandError as exc:
        error = Error(exc.message)
        return [], lambda results: error
    shard, shard_cursor = cursor & 255, cursor >> 8
    if shard >= nshards:
        shard, shard_cursor = 0, 0
    sub = list(argv)
    sub[1] = b"%d" % shard_cursor

    def merge(results):
        reply = results[0]
        next_cursor = int(reply[0])
        if next_cursor:
            return [b"%d" % ((next_cursor << 8) | shard), reply[1]]
        return [b"%d" % (shard + 1 if shard + 1 < nshards else 0), reply[1]]

    return [(shard, sub)], merge


def to_all(conn, cmd, argv):
    router = ROUTERS.get(cmd.name)
    if router is not None:
        router(conn, cmd, argv)
        return
    targets, merge = plan_all(cmd, argv, conn.worker.nshards)
    conn.worker.stats.commands -= len(targets) - 1
    if len(targets) > 1 and cmd.flags & KEYSPACE_FLAGS:
        crossshard.start_parts(conn, targets, merge)  # isolated, like any multi-shard access
    else:
        _gather(conn, targets, merge)


def _scan_count(argv):
    for i in range(2, len(argv) - 1):
        if argv[i].lower() == b"count" and argv[i + 1].isdigit():
            return int(argv[i + 1])
    return 10


def _route_scan(conn, cmd, argv):
    """SCAN's cursor carries the shard in its low 8 bits. A call that finishes
    a shard with room left under COUNT goes on to the next one, so a small
    keyspace is scanned in one call and an empty one answers cursor 0, as in
    Redis. The client's next commands wait for it, so later writes cannot
    reach a shard before the scan does."""
    try:
        parse_cursor(argv[1])
    except CommandError as exc:
        conn.push(conn.encode(Error(exc.message)))
        return
    conn.run_async(_scan(conn, argv))


async def _scan(conn, argv):
    nshards = conn.worker.nshards
    count = _scan_count(argv)
    found = []
    while True:
        [(shard, sub)], merge = _scan_step(argv, nshards)
        reply = merged([await crossshard.ask(conn, shard, sub, None)], merge)
        if type(reply) is Error:
            return reply
        found.extend(reply[1])
        argv = [argv[0], reply[0]] + list(argv[2:])
        # Go on only from the end of one shard to the start of the next.
        if reply[0] == b"0" or (int(reply[0]) >> 8) or len(found) >= count:
            return [reply[0], found]


ROUTERS["scan"] = _route_scan
