"""The engine call: execute(ctx, argv) -> reply value.

The server worker and the embedded handle both come through here."""
from fastcache.engine.errors import CommandError
from fastcache.engine.registry import resolve
from fastcache.protocol.replies import Error

# Importing the families fills the command table.
from fastcache.engine import hashes, keys, lists, sets, strings, zsets  # noqa: F401


def execute(ctx, argv):
    try:
        return resolve(argv).handler(ctx, argv)
    except CommandError as exc:
        return Error(exc.message)


def run(ctx, cmd, argv):
    """Run an already resolved command."""
    try:
        return cmd.handler(ctx, argv)
    except CommandError as exc:
        return Error(exc.message)
