"""CLIENT: the calling connection's own settings, and the listing and killing
of connections on every shard worker (CLIENT LIST and KILL fan out)."""
import time

from fastcache.engine import errors
from fastcache.engine.args import parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.registry import ALL, command, container, lookup
from fastcache.protocol.replies import OK, Verbatim
from fastcache.server.admin import help_subcommand, server_of

CONN = "connection"
FLAGS = "noscript loading stale"
ADMIN_FLAGS = "admin noscript loading stale"
ADMIN_ACL = "@admin @slow @dangerous @connection"
BAD_NAME = "ERR Client names cannot contain spaces, newlines or special characters."
NO_SUCH_CLIENT = "ERR No such client"
BAD_ID = "ERR client-id should be greater than 0"
LONG_MAX = (1 << 63) - 1

# CLIENT LIST/KILL TYPE names -> the type they select.
CLIENT_TYPES = {b"normal": "normal", b"master": "master", b"replica": "replica",
                b"slave": "replica", b"pubsub": "pubsub"}


def validate_name(name):
    """Raise Redis's error unless name is printable ASCII without spaces ('' is fine)."""
    if not _printable(name):
        raise CommandError(BAD_NAME)


def _printable(value):
    for byte in value:
        if byte < 33 or byte > 126:
            return False
    return True


def _caller(ctx):
    server_of(ctx, "CLIENT")
    return ctx.client


def client_type(conn):
    """replica (a replication stream), pubsub or normal."""
    if conn.replica_stream is not None:
        return "replica"
    return "pubsub" if conn.channels or conn.patterns else "normal"


def _flags(conn):
    """CLIENT LIST's flags letters: P pub/sub, x in MULTI, b blocked; N for none."""
    flags = ("P" if conn.channels or conn.patterns else "") + \
        ("x" if conn.multi is not None else "") + ("b" if conn.blocked_on else "")
    return flags or "N"


def _parse_type(raw):
    kind = CLIENT_TYPES.get(raw.lower())
    if kind is None:
        raise CommandError("ERR Unknown client type '%s'" % errors.shown(raw))
    return kind


def command_name(argv):
    """The name CLIENT LIST shows in cmd=: 'get', 'client|list', ..."""
    cmd = lookup(argv)
    if cmd is None:
        return argv[0].decode("utf-8", "replace").lower()
    if cmd.subcommands is not None and len(argv) > 1:
        sub = cmd.subcommands.get(argv[1].lower())
        if sub is not None:
            return sub.fullname.lower()
    return cmd.name


def describe(conn, now, running=None):
    """A CLIENT LIST line. `running` is the argv conn is executing right now
    (the caller's own CLIENT LIST / INFO). Buffer figures are approximations."""
    qbuf = getattr(conn.parser, "buffered", 0)
    argv_mem = sum(map(len, running)) if running else 0
    transport = conn.transport
    omem, fd = 0, -1
    if transport is not None:
        omem = transport.get_write_buffer_size()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            fd = sock.fileno()
    if running:
        cmd = command_name(running)
    elif conn.last_command == b"NULL":
        cmd = "NULL"
    else:
        cmd = command_name([conn.last_command])
    return ("id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=%d sub=%d psub=%d "
            "ssub=0 multi=%d qbuf=%d qbuf-free=0 argv-mem=%d multi-mem=0 rbs=1024 rbp=0 obl=0 "
            "oll=0 omem=%d tot-mem=%d events=%s cmd=%s user=default redir=-1 resp=%d" % (
                conn.id, conn.addr, conn.laddr, fd, conn.name.decode("latin-1"),
                now - conn.created, now - conn.last_interaction, _flags(conn), conn.ctx.db.id,
                len(conn.channels), len(conn.patterns),
                -1 if conn.multi is None else len(conn.multi), qbuf, argv_mem,
                omem, qbuf + argv_mem + omem + 1024, "rw" if omem else "r", cmd,
                conn.ctx.proto))


container("client", -2, group=CONN, since="2.4.0",
          summary="A container for client connection commands")


@command("id", 2, FLAGS, parent="client", group=CONN, since="5.0.0",
         summary="Returns the client ID for the current connection")
def client_id(ctx, argv):
    return _caller(ctx).id


@command("setname", 3, FLAGS, parent="client", group=CONN, since="2.6.9",
         summary="Set the current connection name")
def client_setname(ctx, argv):
    validate_name(argv[2])
    _caller(ctx).name = argv[2]
    return OK


@command("getname", 2, FLAGS, parent="client", group=CONN, since="2.6.9",
         summary="Get the current connection name")
def client_getname(ctx, argv):
    return _caller(ctx).name or None


@command("setinfo", 4, FLAGS, parent="client", group=CONN, since="7.2.0",
         summary="Set client or connection specific info",
         tips="request_policy:all_nodes response_policy:all_succeeded")
def client_setinfo(ctx, argv):
    conn = _caller(ctx)
    attr, value = argv[2], argv[3]
    if attr.lower() not in (b"lib-name", b"lib-ver"):
        raise CommandError("ERR Unrecognized option '%s'" % errors.shown(attr))
    if not _printable(value):
        raise CommandError("ERR %s cannot contain spaces, newlines or special characters."
                           % errors.shown(attr))
    if attr.lower() == b"lib-name":
        conn.lib_name = value
    else:
        conn.lib_ver = value
    return OK


@command("info", 2, FLAGS, parent="client", group=CONN, since="6.2.0",
         summary="Returns information about the current client connection.",
         tips="nondeterministic_output")
def client_info(ctx, argv):
    return Verbatim(describe(_caller(ctx), time.monotonic(), argv) + "\n")


def _merge_listing(parts):
    """Each worker's [(order, line)] -> one listing in order."""
    rows = sorted(row for part in parts for row in part)
    return Verbatim("".join(line + "\n" for _, line in rows))


@command("list", -2, ADMIN_FLAGS, parent="client", route=ALL, merge=_merge_listing, group=CONN,
         since="2.4.0", summary="Get the list of client connections", acl=ADMIN_ACL,
         tips="nondeterministic_output")
def client_list(ctx, argv):
    clients = server_of(ctx, "CLIENT").clients
    now = time.monotonic()
    caller = ctx.client

    def line(conn):
        return describe(conn, now, argv if conn is caller else None)

    n = len(argv)
    option = argv[2].lower() if n > 2 else None
    if n > 3 and option == b"id":
        ids = [parse_int(raw, "ERR Invalid client ID") for raw in argv[3:]]
        rows = [(i, line(clients[cid])) for i, cid in enumerate(ids) if cid in clients]
    elif n == 2 or (n == 4 and option == b"type"):
        wanted = _parse_type(argv[3]) if n == 4 else None
        rows = [(conn.id, line(conn)) for conn in clients.values()
                if wanted is None or client_type(conn) == wanted]
    else:
        raise CommandError(errors.SYNTAX)
    return rows


def _merge_kill(parts):
    old_form = parts[0][0]
    killed = sum(part[1] for part in parts)
    if not old_form:
        return killed
    if not killed:
        raise CommandError(NO_SUCH_CLIENT)
    return OK


def _kill_filters(argv):
    """CLIENT KILL's options -> (filters, skipme)."""
    if len(argv) == 3:
        return {"addr": argv[2].decode("utf-8", "replace")}, False  # old form: may kill itself
    filters = {}
    skipme = True
    i = 2
    while i < len(argv):
        if i + 1 >= len(argv):
            raise CommandError(errors.SYNTAX)
        option, value = argv[i].lower(), argv[i + 1]
        if option == b"id":
            cid = parse_int(value, BAD_ID)
            if not 1 <= cid <= LONG_MAX:
                raise CommandError(BAD_ID)
            filters["id"] = cid
        elif option == b"type":
            filters["type"] = _parse_type(value)
        elif option in (b"addr", b"laddr"):
            filters[option.decode()] = value.decode("utf-8", "replace")
        elif option == b"user":
            if value != b"default":
                raise CommandError("ERR No such user '%s'" % errors.shown(value))
        elif option == b"skipme":
            if value.lower() not in (b"yes", b"no"):
                raise CommandError(errors.SYNTAX)
            skipme = value.lower() == b"yes"
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    return filters, skipme


def _matches(conn, filters):
    return ((filters.get("id") is None or conn.id == filters["id"])
            and (filters.get("addr") is None or conn.addr == filters["addr"])
            and (filters.get("laddr") is None or conn.laddr == filters["laddr"])
            and (filters.get("type") is None or client_type(conn) == filters["type"]))


@command("kill", -3, ADMIN_FLAGS, parent="client", route=ALL, merge=_merge_kill, group=CONN,
         since="2.4.0", summary="Kill the connection of a client", acl=ADMIN_ACL)
def client_kill(ctx, argv):
    worker = server_of(ctx, "CLIENT")
    filters, skipme = _kill_filters(argv)
    caller = ctx.client  # only set on the worker the caller is connected to
    killed = 0
    for conn in list(worker.clients.values()):
        if not _matches(conn, filters):
            continue
        if conn is caller:
            if skipme:
                continue
            conn.quit()  # closes after this reply, like Redis
        else:
            conn.close()
        killed += 1
    return [len(argv) == 3, killed]


@command("no-evict", 3, ADMIN_FLAGS, parent="client", group=CONN, since="7.0.0",
         summary="Set client eviction mode for the current connection", acl=ADMIN_ACL)
def client_no_evict(ctx, argv):
    # fastcache never evicts clients, so the mode has no effect.
    if argv[2].lower() not in (b"on", b"off"):
        raise CommandError(errors.SYNTAX)
    return OK


_HELP = (
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
)

help_subcommand("client", _HELP, since="5.0.0", group=CONN, acl="@slow @connection")
