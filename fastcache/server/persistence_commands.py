"""SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE and INFO's persistence section.

Every shard worker has its own Durability (WAL + snapshots), so these
commands fan out and each worker acts on its own shard; the merged reply
reads like one Redis. For fastcache a WAL "rewrite" is a snapshot followed by
dropping the WAL it covers, so BGREWRITEAOF is a background snapshot that
counts as a rewrite in INFO. Redis has two kinds of fork child (RDB and AOF
rewrite); Durability.child_kind keeps that distinction, which decides
Redis's "already in progress" versus "scheduled" answers.
"""
import time

from fastcache.engine import errors
from fastcache.engine.errors import CommandError
from fastcache.engine.registry import ALL, command
from fastcache.protocol.replies import OK, Simple
from fastcache.server.admin import ADMIN_ACL, SERVER, server_of

FLAGS = "admin noscript no_async_loading"
BGSAVE_RUNNING = "ERR Background save already in progress"
ANOTHER_CHILD = ("ERR Another child process is active (AOF?): can't BGSAVE right now. "
                 "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")
REWRITE_RUNNING = "ERR Background append only file rewriting already in progress"
REWRITE_FAILED = ("ERR Can't execute an AOF background rewriting. "
                  "Please check the server logs for more information.")
SAVE_FAILED = "ERR"     # Redis's bare error when a save or fork fails
BGSAVE_STARTED = Simple("Background saving started")
BGSAVE_SCHEDULED = Simple("Background saving scheduled")
REWRITE_STARTED = Simple("Background append only file rewriting started")
REWRITE_SCHEDULED = Simple("Background append only file rewriting scheduled")
NO_DIR = "ERR %s needs a data directory: persistence is off"


def durability_of(ctx, name):
    durability = server_of(ctx, name).durability
    if durability is None:  # an embedded Cache opened without a path
        raise CommandError(NO_DIR % name)
    durability.reap()
    return durability


def in_exec(ctx):
    """Inside EXEC Redis forks nothing and schedules instead. A worker runs
    another worker's EXEC only while that transaction holds its lock."""
    client = ctx.client
    return (client is not None and client.in_exec) or ctx.server.lock is not None


def scheduled_wins(results):
    """A shard that had to schedule means the server as a whole has not started yet."""
    for reply in results:
        if reply.endswith("scheduled"):
            return reply
    return results[0]


@command("save", 1, FLAGS + " no_multi", route=ALL, group=SERVER,
         summary="Synchronously save the dataset to disk", acl=ADMIN_ACL)
def save(ctx, argv):
    durability = durability_of(ctx, "SAVE")
    if durability.child_kind == "rdb":
        raise CommandError(BGSAVE_RUNNING)
    durability.reap(block=True)   # a rewrite: Redis saves alongside it, we save after it
    if not durability.save():
        raise CommandError(SAVE_FAILED)
    return OK


@command("bgsave", -1, FLAGS, route=ALL, merge=scheduled_wins, group=SERVER,
         summary="Asynchronously save the dataset to disk", acl=ADMIN_ACL)
def bgsave(ctx, argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
        raise CommandError(errors.SYNTAX)
    durability = durability_of(ctx, "BGSAVE")
    if durability.child_kind == "rdb":
        raise CommandError(BGSAVE_RUNNING)
    exec_ = in_exec(ctx)
    if durability.child is not None or exec_:
        if len(argv) == 1 and not exec_:
            raise CommandError(ANOTHER_CHILD)
        durability.scheduled = durability.scheduled or "rdb"
        return BGSAVE_SCHEDULED
    if not durability.bgsave("rdb"):
        raise CommandError(SAVE_FAILED)
    return BGSAVE_STARTED


@command("bgrewriteaof", 1, FLAGS, route=ALL, merge=scheduled_wins, group=SERVER,
         summary="Asynchronously rewrite the append-only file", acl=ADMIN_ACL)
def bgrewriteaof(ctx, argv):
    durability = durability_of(ctx, "BGREWRITEAOF")
    if durability.child_kind == "aof":
        raise CommandError(REWRITE_RUNNING)
    if durability.child is not None or in_exec(ctx):
        durability.scheduled = "aof"
        return REWRITE_SCHEDULED
    if not durability.bgsave("aof"):
        raise CommandError(REWRITE_FAILED)
    return REWRITE_STARTED


# The oldest shard's time: LASTSAVE moves once every shard has saved, so a
# client polling it after BGSAVE sees the change when the whole save is done.
@command("lastsave", 1, "loading stale fast", route=ALL, merge=min, group=SERVER,
         summary="Get the UNIX time stamp of the last successful save to disk",
         acl="@admin @fast @dangerous", tips="nondeterministic_output")
def lastsave(ctx, argv):
    worker = ctx.server
    if worker is None:
        return int(time.time())
    if worker.durability is None:
        return int(worker.started)
    return worker.durability.lastsave


# -- INFO persistence ---------------------------------------------------------------

def info_facts(ks, worker):
    """This shard's persistence state as plain data (it travels between workers)."""
    durability = worker.durability if worker is not None else None
    if durability is None:
        started = int(worker.started) if worker is not None else int(time.time())
        return dict(_NO_DURABILITY, lastsave=started, changes=ks.dirty)
    durability.reap()
    child, wal = durability.child, durability.wal
    return {
        "kind": durability.child_kind if child is not None else None,
        "child_seconds": int(time.monotonic() - child[3]) if child is not None else -1,
        "scheduled": durability.scheduled,
        "lastsave": durability.lastsave,
        "bgsave_ok": durability.last_bgsave_ok,
        "bgsave_seconds": durability.last_bgsave_seconds,
        "saves": durability.saves,
        "loaded": durability.loaded_keys,
        "rewrite_ok": durability.last_rewrite_ok,
        "rewrite_seconds": durability.last_rewrite_seconds,
        "rewrites": durability.rewrites,
        "rewrite_failures": durability.rewrite_failures,
        "aof": wal is not None,
        "write_ok": wal is None or wal.error is None,
        "snapshot_bytes": durability.snapshot_bytes,
        "wal_growth": wal.written_bytes - durability.wal_base if wal is not None else 0,
        "wal_disk": wal.disk_bytes() if wal is not None else 0,
        "buffered": sum(len(blob) for blob in wal.unwritten) if wal is not None else 0,
        "seq": durability.current_seq(),
        "changes": ks.dirty,
    }


_NO_DURABILITY = {
    "kind": None, "child_seconds": -1, "scheduled": None, "lastsave": 0, "bgsave_ok": True,
    "bgsave_seconds": -1, "saves": 0, "loaded": 0, "rewrite_ok": True, "rewrite_seconds": -1,
    "rewrites": 0, "rewrite_failures": 0, "aof": False, "write_ok": True, "snapshot_bytes": 0,
    "wal_growth": 0, "wal_disk": 0, "buffered": 0, "seq": 0, "changes": 0,
}


def _status(flags):
    return "ok" if all(flags) else "err"


def info_fields(shards):
    """INFO persistence's (field, value) pairs in Redis 7's order, over every
    shard's info_facts: counters summed, flags any-of, statuses worst-of,
    times of the slowest shard; then one fastcache line per shard."""
    def most(name):
        return max(f[name] for f in shards)

    def running(kind):
        return [f["child_seconds"] for f in shards if f["kind"] == kind]

    rdb_children, aof_children = running("rdb"), running("aof")
    rewrite_scheduled = int(any(f["scheduled"] == "aof" for f in shards))
    aof_on = any(f["aof"] for f in shards)
    fields = [
        ("loading", 0), ("async_loading", 0), ("current_cow_peak", 0), ("current_cow_size", 0),
        ("current_cow_size_age", 0), ("current_fork_perc", "0.00"),
        ("current_save_keys_processed", 0), ("current_save_keys_total", 0),
        ("rdb_changes_since_last_save", sum(f["changes"] for f in shards)),
        ("rdb_bgsave_in_progress", int(bool(rdb_children))),
        ("rdb_last_save_time", min(f["lastsave"] for f in shards)),
        ("rdb_last_bgsave_status", _status(f["bgsave_ok"] for f in shards)),
        ("rdb_last_bgsave_time_sec", most("bgsave_seconds")),
        ("rdb_current_bgsave_time_sec", max(rdb_children, default=-1)),
        ("rdb_saves", most("saves")), ("rdb_last_cow_size", 0),
        ("rdb_last_load_keys_expired", 0),
        ("rdb_last_load_keys_loaded", sum(f["loaded"] for f in shards)),
        ("aof_enabled", int(aof_on)), ("aof_rewrite_in_progress", int(bool(aof_children))),
        ("aof_rewrite_scheduled", rewrite_scheduled),
        ("aof_last_rewrite_time_sec", most("rewrite_seconds")),
        ("aof_current_rewrite_time_sec", max(aof_children, default=-1)),
        ("aof_last_bgrewrite_status", _status(f["rewrite_ok"] for f in shards)),
        ("aof_rewrites", most("rewrites")),
        ("aof_rewrites_consecutive_failures", most("rewrite_failures")),
        ("aof_last_write_status", _status(f["write_ok"] for f in shards)),
        ("aof_last_cow_size", 0), ("module_fork_in_progress", 0),
        ("module_fork_last_cow_size", 0),
    ]
    if aof_on:
        # Redis's AOF is base + increments; ours is the snapshot + the WAL since.
        base = sum(f["snapshot_bytes"] for f in shards)
        fields += [
            ("aof_current_size", base + sum(f["wal_growth"] for f in shards)),
            ("aof_base_size", base), ("aof_pending_rewrite", rewrite_scheduled),
            ("aof_buffer_length", sum(f["buffered"] for f in shards)),
            ("aof_pending_bio_fsync", 0), ("aof_delayed_fsync", 0),
        ]
    for i, f in enumerate(shards):
        fields.append(("fastcache_shard%d" % i,
                       "seq=%d,changes=%d,wal_bytes=%d,snapshot_bytes=%d,child=%s,"
                       "scheduled=%s,last_save=%d"
                       % (f["seq"], f["changes"], f["wal_disk"], f["snapshot_bytes"],
                          f["kind"] or "none", f["scheduled"] or "none", f["lastsave"])))
    return fields
