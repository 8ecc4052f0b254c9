"""Server commands that look at or act on the whole server (SHUTDOWN, ...)."""
from fastcache.engine.registry import command

SERVER = "server"

# Queries a worker answers about itself for a fan-out (name -> fn(worker, *args)).
LOCAL_QUERIES = {}


@command("shutdown", -1, "admin noscript loading stale no_multi allow_busy", group=SERVER,
         summary="Synchronously saves the database(s) to disk and shuts down the Redis server.")
def shutdown(ctx, argv):
    # The worker exits cleanly; the supervisor then stops the others.
    ctx.server.shutdown(0)
    ctx.client.closing = True
    ctx.client.close()
    return None
