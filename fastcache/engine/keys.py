"""Generic key commands (DEL, EXPIRE, SCAN, ...)."""
from fastcache.engine.registry import command, SPLIT_SUM


@command("del", -2, "write", (1, -1, 1), split=SPLIT_SUM, group="generic", summary="Deletes one or more keys.")
def del_(ctx, argv):
    ks, db = ctx.ks, ctx.db
    return sum(1 for key in argv[1:] if ks.delete(db, key))
