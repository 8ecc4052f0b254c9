"""Connection commands: PING, ECHO, QUIT, RESET, AUTH, HELLO, SELECT.

They act on the calling connection (ctx.client), so they always run on the
worker the client is connected to."""
import hmac

from fastcache import REDIS_VERSION
from fastcache.engine import errors
from fastcache.engine.args import parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.registry import command
from fastcache.protocol.replies import OK, PONG, Simple

CONN = "connection"
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NOPASS = ("ERR AUTH <password> called without any password configured for the default user. "
          "Are you sure your configuration is correct?")
HELLO_NOAUTH = ("NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
                "the RESP protocol version at the same time")


@command("ping", -1, "fast", group=CONN, summary="Ping the server",
         tips="request_policy:all_shards response_policy:all_succeeded")
def ping(ctx, argv):
    if len(argv) > 2:
        raise CommandError(errors.wrong_arity("ping"))
    client = ctx.client
    if client is not None and ctx.proto == 2 and (client.channels or client.patterns):
        return [b"pong", argv[1] if len(argv) == 2 else b""]  # RESP2 subscribed mode
    return argv[1] if len(argv) == 2 else PONG


@command("echo", 2, "loading stale fast", group=CONN, summary="Echo the given string")
def echo(ctx, argv):
    return argv[1]


@command("quit", -1, "noscript loading stale fast no_auth allow_busy", group=CONN,
         summary="Close the connection")
def quit_(ctx, argv):
    if ctx.client is not None:
        ctx.client.quit()
    return OK


@command("reset", 1, "noscript loading stale fast no_auth allow_busy", group=CONN, since="6.2.0",
         summary="Reset the connection")
def reset(ctx, argv):
    client = ctx.client
    ctx.select(0)
    if client is not None:
        from fastcache.server import pubsub, transactions
        client.multi = None
        transactions.unwatch_all(client)
        pubsub.drop_all(client)
        client.set_protocol(2)
        client.name = b""
        client.set_authenticated(not _password(ctx))
    return Simple("RESET")


def _password(ctx):
    return ctx.server.config["requirepass"] if ctx.server is not None else ""


def check_credentials(ctx, user, password):
    """Raise the right error unless user/password are valid for the default user."""
    required = _password(ctx)
    if user != b"default":
        raise CommandError(WRONGPASS)
    if required and not hmac.compare_digest(password, required.encode()):
        raise CommandError(WRONGPASS)


@command("auth", -2, "noscript loading stale fast no_auth allow_busy", group=CONN,
         summary="Authenticate to the server")
def auth(ctx, argv):
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    if len(argv) == 2:
        if not _password(ctx):
            raise CommandError(NOPASS)
        user, password = b"default", argv[1]
    else:
        user, password = argv[1], argv[2]
    check_credentials(ctx, user, password)
    if ctx.client is not None:
        ctx.client.set_authenticated(True)
    return OK


@command("hello", -1, "noscript loading stale fast no_auth allow_busy", group=CONN, since="6.0.0",
         summary="Handshake with Redis")
def hello(ctx, argv):
    client = ctx.client
    proto = None
    i = 1
    if len(argv) > 1:
        try:
            proto = parse_int(argv[1])
        except CommandError:
            raise CommandError("ERR Protocol version is not an integer or out of range") from None
        i = 2
        if proto not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
    credentials = name = None
    while i < len(argv):
        opt = argv[i].lower()
        left = len(argv) - i - 1
        if opt == b"auth" and left >= 2:
            credentials = (argv[i + 1], argv[i + 2])
            i += 3
        elif opt == b"setname" and left >= 1:
            name = argv[i + 1]
            i += 2
        else:
            raise CommandError("ERR Syntax error in HELLO option '%s'" % errors.shown(argv[i]))
    if credentials is not None:
        check_credentials(ctx, *credentials)
        if client is not None:
            client.set_authenticated(True)
    elif client is not None and not client.authenticated:
        raise CommandError(HELLO_NOAUTH)
    if name is not None:
        from fastcache.server.client_commands import validate_name
        validate_name(name)
        if client is not None:
            client.name = name
    if proto is not None and client is not None:
        client.set_protocol(proto)
    return {
        b"server": b"redis",
        b"version": REDIS_VERSION.encode(),
        b"proto": ctx.proto if client is None else client.ctx.proto,
        b"id": client.id if client is not None else 0,
        b"mode": b"standalone",
        b"role": b"replica" if ctx.server is not None and ctx.server.replication.master
        else b"master",
        b"modules": [],
    }


@command("select", 2, "loading stale fast", group=CONN, summary="Change the selected database for the current connection")
def select(ctx, argv):
    index = parse_int(argv[1])
    if not 0 <= index < len(ctx.ks.dbs):
        raise CommandError(errors.DB_INDEX)
    ctx.select(index)
    return OK
