"""The server's command families. Importing this module registers them in the
command table, next to the engine's families (engine/dispatch.py)."""
from fastcache.server import (  # noqa: F401
    admin, blocking, client_commands, command_docs, config_commands, connection_commands, debug,
    info, persistence_commands, pubsub, transactions,
)
from fastcache.replication import commands as _replication  # noqa: F401
