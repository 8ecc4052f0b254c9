"""String commands (GET, SET, ...). Values are bytes."""
from fastcache.engine.registry import command
from fastcache.protocol.replies import OK


@command("get", 2, "readonly fast", (1, 1, 1), group="string", summary="Returns the string value of a key.")
def get(ctx, argv):
    value = ctx.ks.get(ctx.db, argv[1])
    if value is not None and type(value) is not bytes:
        from fastcache.engine.errors import CommandError, WRONGTYPE
        raise CommandError(WRONGTYPE)
    return value


@command("set", -3, "write denyoom", (1, 1, 1), group="string", summary="Sets the string value of a key.")
def set_(ctx, argv):
    # Placeholder until the strings family lands: plain SET only.
    ctx.ks.set(ctx.db, argv[1], argv[2])
    return OK
