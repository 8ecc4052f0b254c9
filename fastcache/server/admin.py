"""Server commands that act on the whole server: SHUTDOWN, TIME, SLOWLOG."""
import asyncio
import time

from fastcache import log
from fastcache.engine import errors
from fastcache.engine.args import parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.keys import help_reply
from fastcache.engine.registry import ALL, command, container
from fastcache.protocol.replies import OK, Error
from fastcache.server import crossshard, fanout

SERVER = "server"
ADMIN_ACL = "@admin @slow @dangerous"
_SHUTDOWN_FLAGS = {b"nosave", b"save", b"now", b"force"}
SHUTDOWN_FAILED = "ERR Errors trying to SHUTDOWN. Check logs."


def help_subcommand(parent, lines, since, group=SERVER, acl="@slow"):
    """Register <PARENT> HELP: lines in Redis's help layout."""
    def reply(ctx, argv):
        return help_reply(parent.upper(), lines)

    command("help", 2, "loading stale", parent=parent, group=group, since=since,
            summary="Show helpful text about the different subcommands", acl=acl)(reply)


def subcommand_syntax_error(sub, name):
    """Redis's error for a known command's unknown subcommand or wrong arguments."""
    return CommandError("ERR unknown subcommand or wrong number of arguments for '%s'. "
                        "Try %s HELP." % (errors.shown(sub[:128]), name))


def server_of(ctx, name):
    """The worker running ctx; these commands need fastcache-server (not the embedded Cache)."""
    if ctx.server is None:
        raise CommandError("ERR %s is only available in fastcache-server" % name)
    return ctx.server


def _shutdown_save(argv):
    """SHUTDOWN's save choice (True: SAVE, False: NOSAVE, None: as the save
    rules say) and whether FORCE was given. Raises Redis's errors for bad
    words, and for ABORT: a shutdown starts and ends within the command, so
    none is ever pending."""
    words = {a.lower() for a in argv[1:]}
    if not words <= _SHUTDOWN_FLAGS | {b"abort"}:
        raise CommandError(errors.SYNTAX)
    if (b"abort" in words and len(words) > 1) or {b"save", b"nosave"} <= words:
        raise CommandError(errors.SYNTAX)
    if b"abort" in words:
        raise CommandError("ERR No shutdown in progress.")
    save = True if b"save" in words else False if b"nosave" in words else None
    return save, b"force" in words


@command("shutdown", -1, "admin noscript loading stale no_multi allow_busy", route=ALL,
         group=SERVER,
         summary="Synchronously save the dataset to disk and then shut down the server",
         acl=ADMIN_ACL)
def shutdown(ctx, argv):
    """One shard's part: its final save, before anything stops, so a failure
    can still refuse the shutdown. _route_shutdown then stops the server."""
    save, force = _shutdown_save(argv)
    worker = server_of(ctx, "SHUTDOWN")
    durability = worker.durability
    if durability is not None and not durability.save_for_shutdown(save):
        if not force:
            log.warning("Error trying to save shard %d, can't exit." % worker.index)
            raise CommandError(SHUTDOWN_FAILED)
        log.warning("Error trying to save shard %d: exiting anyway (FORCE)." % worker.index)
    worker.save_on_shutdown = save   # for the save at exit (only if writes came in since)
    return OK


def _route_shutdown(conn, cmd, argv):
    try:
        _shutdown_save(argv)
    except CommandError as exc:
        conn.push(conn.encode(Error(exc.message)))
        return
    conn.run_async(_shutdown_everywhere(conn, argv))


async def _shutdown_everywhere(conn, argv):
    """Every shard saves; if all did, this worker exits cleanly and the
    supervisor stops the others. The client gets no reply, as from Redis."""
    worker = conn.worker
    replies = await asyncio.gather(*[crossshard.ask(conn, shard, argv, None)
                                     for shard in range(worker.nshards)])
    for reply in replies:
        if type(reply) is Error:
            return reply
    worker.shutdown(0)
    conn.closing = True
    conn.close()
    return None


fanout.ROUTERS["shutdown"] = _route_shutdown


@command("time", 1, "loading stale fast", group=SERVER, since="2.6.0",
         summary="Return the current server time", acl="@fast",
         tips="nondeterministic_output")
def time_(ctx, argv):
    micros = time.time_ns() // 1000
    return [b"%d" % (micros // 1000000), b"%d" % (micros % 1000000)]


# -- SLOWLOG -------------------------------------------------------------------------

container("slowlog", -2, group=SERVER, since="2.2.12", summary="A container for slow log commands")


def _newest_first(parts):
    entries = [entry for part in parts for entry in part[1]]
    entries.sort(key=lambda e: (e[1], e[0]), reverse=True)
    count = parts[0][0]
    return entries if count < 0 else entries[:count]


@command("get", -2, "admin loading stale", parent="slowlog", route=ALL, merge=_newest_first,
         group=SERVER, since="2.2.12", summary="Get the slow log's entries", acl=ADMIN_ACL,
         tips="request_policy:all_nodes nondeterministic_output")
def slowlog_get(ctx, argv):
    if len(argv) > 3:
        raise subcommand_syntax_error(argv[1], "SLOWLOG")
    count = 10
    if len(argv) == 3:
        count = parse_int(argv[2], "ERR count should be greater than or equal to -1")
        if count < -1:
            raise CommandError("ERR count should be greater than or equal to -1")
    worker = server_of(ctx, "SLOWLOG")
    entries = list(worker.slowlog.entries) if count < 0 else list(worker.slowlog.entries)[:count]
    # Ids are per worker; interleave them so they stay unique across workers.
    n, index = worker.nshards, worker.index
    return [count, [[e[0] * n + index] + list(e[1:]) for e in entries]]


@command("len", 2, "admin loading stale", parent="slowlog", route=ALL, merge=sum, group=SERVER,
         since="2.2.12", summary="Get the slow log's length", acl=ADMIN_ACL,
         tips="request_policy:all_nodes response_policy:agg_sum nondeterministic_output")
def slowlog_len(ctx, argv):
    return len(server_of(ctx, "SLOWLOG").slowlog.entries)


@command("reset", 2, "admin loading stale", parent="slowlog", route=ALL, group=SERVER,
         since="2.2.12", summary="Clear all entries from the slow log", acl=ADMIN_ACL,
         tips="request_policy:all_nodes response_policy:all_succeeded")
def slowlog_reset(ctx, argv):
    server_of(ctx, "SLOWLOG").slowlog.reset()
    return OK


_SLOWLOG_HELP = (
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
)

help_subcommand("slowlog", _SLOWLOG_HELP, since="6.2.0")
