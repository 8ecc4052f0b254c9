"""Which WATCHed keys a write command changed.

A command that changed anything (the keyspace's dirty counter moved) bumps
the versions of the watched keys among its arguments. Flushes and SWAPDB
change whole databases: like Redis, they invalidate the watched keys that
existed in them, found before the command runs.
"""
from fastcache.engine.args import parse_int
from fastcache.engine.errors import CommandError

# Commands whose keys may be in another db than the selected one.
_ANY_DB = frozenset(("move", "copy"))


def _db_ids(ctx, cmd, argv):
    """The dbs a whole-database write touches, or () for ordinary commands."""
    name = cmd.name
    if name == "flushdb":
        return (ctx.db.id,)
    if name == "flushall":
        return tuple(range(len(ctx.ks.dbs)))
    if name == "swapdb" and len(argv) == 3:
        try:
            return (parse_int(argv[1]), parse_int(argv[2]))
        except CommandError:
            return ()
    return ()


def doomed_by(ks, ctx, cmd, argv):
    dbids = _db_ids(ctx, cmd, argv)
    if not dbids or not all(0 <= d < len(ks.dbs) for d in dbids):
        return ()
    return ks.existing_watched(dbids)


def touch_changed(ks, ctx, cmd, argv, doomed):
    for dbid, key in doomed:
        ks.touch(dbid, key)
    dbids = range(len(ks.dbs)) if cmd.name in _ANY_DB else (ctx.db.id,)
    for i in cmd.key_indexes(argv):
        for dbid in dbids:
            ks.touch(dbid, argv[i])
