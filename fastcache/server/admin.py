"""Server commands that act on the whole server: SHUTDOWN, TIME, LASTSAVE, SLOWLOG."""
import time

from fastcache.engine import errors
from fastcache.engine.args import parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.keys import help_reply
from fastcache.engine.registry import ALL, command, container
from fastcache.protocol.replies import OK

SERVER = "server"
ADMIN_ACL = "@admin @slow @dangerous"
_SHUTDOWN_FLAGS = {b"nosave", b"save", b"now", b"force"}


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


def _shutdown_flags(argv):
    """SHUTDOWN's options as a set of lowercase words; raises on Redis's syntax errors."""
    words = {a.lower() for a in argv[1:]}
    if not words <= _SHUTDOWN_FLAGS | {b"abort"}:
        raise CommandError(errors.SYNTAX)
    if (b"abort" in words and len(words) > 1) or {b"save", b"nosave"} <= words:
        raise CommandError(errors.SYNTAX)
    return words


@command("shutdown", -1, "admin noscript loading stale no_multi allow_busy", group=SERVER,
         summary="Synchronously save the dataset to disk and then shut down the server",
         acl=ADMIN_ACL)
def shutdown(ctx, argv):
    words = _shutdown_flags(argv)
    if b"abort" in words:
        # A shutdown starts and finishes within this command: none is ever pending.
        raise CommandError("ERR No shutdown in progress.")
    worker = server_of(ctx, "SHUTDOWN")
    # Nothing to save before stopping yet (no persistence). This worker exits
    # cleanly and the supervisor then stops the others; the client gets no reply.
    worker.shutdown(0)
    ctx.client.closing = True
    ctx.client.close()
    return None


@command("time", 1, "loading stale fast", group=SERVER, since="2.6.0",
         summary="Return the current server time", acl="@fast",
         tips="nondeterministic_output")
def time_(ctx, argv):
    micros = time.time_ns() // 1000
    return [b"%d" % (micros // 1000000), b"%d" % (micros % 1000000)]


@command("lastsave", 1, "loading stale fast", route=ALL, merge=min, group=SERVER,
         summary="Get the UNIX time stamp of the last successful save to disk",
         acl="@admin @fast @dangerous", tips="nondeterministic_output")
def lastsave(ctx, argv):
    # No persistence yet: like Redis without a save, the time the server started.
    return int(ctx.server.started) if ctx.server is not None else int(time.time())


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
