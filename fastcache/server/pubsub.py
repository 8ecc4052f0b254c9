"""Pub/sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.

Each worker keeps the subscriptions of its own clients. PUBLISH fans out to
every worker; each delivers to its local subscribers and the counts add up.
A subscriber whose unsent output passes the pubsub client-output-buffer-limit
is disconnected, as in Redis, instead of growing memory without bound.
"""
import time

from fastcache import log
from fastcache.engine.errors import CommandError, shown
from fastcache.engine.glob import compile_glob
from fastcache.engine.keys import help_reply
from fastcache.engine.registry import ALL, command, container
from fastcache.protocol.encoder import ENCODERS
from fastcache.protocol.replies import Push, Replies

PUBSUB = "pubsub"
# What a RESP2 client in subscribed mode may still run.
ALLOWED_SUBSCRIBED = frozenset(("subscribe", "unsubscribe", "psubscribe", "punsubscribe",
                                "ssubscribe", "sunsubscribe", "ping", "quit", "reset"))


def not_allowed(cmd):
    return ("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
            "RESET are allowed in this context" % cmd.fullname)


class Registry:
    """One worker's subscriptions: channel or pattern -> subscribed connections."""

    def __init__(self):
        self.channels = {}
        self.patterns = {}
        self._matchers = {}

    def matcher(self, pattern):
        match = self._matchers.get(pattern)
        if match is None:
            match = self._matchers[pattern] = compile_glob(pattern)
        return match

    def add(self, table, name, conn):
        table.setdefault(name, set()).add(conn)

    def remove(self, table, name, conn):
        conns = table.get(name)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del table[name]
                if table is self.patterns:
                    self._matchers.pop(name, None)


def _subscribe(ctx, argv, pattern):
    client = ctx.client
    registry = client.worker.pubsub
    mine, table, kind = ((client.patterns, registry.patterns, b"psubscribe") if pattern
                         else (client.channels, registry.channels, b"subscribe"))
    confirmations = Replies()
    for name in argv[1:]:
        if name not in mine:
            mine.add(name)
            registry.add(table, name, client)
        confirmations.append(Push([kind, name, client.subscriptions()]))
    return confirmations


def _unsubscribe(ctx, argv, pattern):
    client = ctx.client
    registry = client.worker.pubsub
    mine, table, kind = ((client.patterns, registry.patterns, b"punsubscribe") if pattern
                         else (client.channels, registry.channels, b"unsubscribe"))
    names = argv[1:] or sorted(mine)
    if not names:
        return Replies([Push([kind, None, client.subscriptions()])])
    confirmations = Replies()
    for name in names:
        if name in mine:
            mine.discard(name)
            registry.remove(table, name, client)
        confirmations.append(Push([kind, name, client.subscriptions()]))
    return confirmations


def drop_all(client):
    """Forget every subscription of a closing or RESET connection."""
    registry = client.worker.pubsub
    for name in client.channels:
        registry.remove(registry.channels, name, client)
    for name in client.patterns:
        registry.remove(registry.patterns, name, client)
    client.channels = set()
    client.patterns = set()


@command("subscribe", -2, "pubsub noscript loading stale", group=PUBSUB, since="2.0.0",
         summary="Listen for messages published to the given channels")
def subscribe(ctx, argv):
    return _subscribe(ctx, argv, pattern=False)


@command("psubscribe", -2, "pubsub noscript loading stale", group=PUBSUB, since="2.0.0",
         summary="Listen for messages published to channels matching the given patterns")
def psubscribe(ctx, argv):
    return _subscribe(ctx, argv, pattern=True)


@command("unsubscribe", -1, "pubsub noscript loading stale", group=PUBSUB, since="2.0.0",
         summary="Stop listening for messages posted to the given channels")
def unsubscribe(ctx, argv):
    return _unsubscribe(ctx, argv, pattern=False)


@command("punsubscribe", -1, "pubsub noscript loading stale", group=PUBSUB, since="2.0.0",
         summary="Stop listening for messages posted to channels matching the given patterns")
def punsubscribe(ctx, argv):
    return _unsubscribe(ctx, argv, pattern=True)


@command("publish", 3, "pubsub loading stale fast", route=ALL, merge=sum, group=PUBSUB,
         since="2.0.0", summary="Post a message to a channel")
def publish(ctx, argv):
    """This worker's part: deliver to its own subscribers, return how many."""
    return deliver(ctx.server, argv[1], argv[2])


def deliver(worker, channel, message):
    registry = worker.pubsub
    receivers = 0
    frames = {}
    for conn in registry.channels.get(channel, ()):
        _send(conn, frames, (b"message", channel, message))
        receivers += 1
    for pattern, conns in list(registry.patterns.items()):
        if registry.matcher(pattern)(channel):
            for conn in conns:
                _send(conn, frames, (b"pmessage", pattern, channel, message))
                receivers += 1
    return receivers


def _send(conn, frames, parts):
    proto = conn.ctx.proto
    data = frames.get((proto, parts[0], parts[1]))
    if data is None:
        data = frames[(proto, parts[0], parts[1])] = ENCODERS[proto].encode(Push(list(parts)))
    conn.push(data)
    conn.flush()
    _enforce_output_limit(conn)


def _enforce_output_limit(conn):
    """Redis's client-output-buffer-limit for the pubsub class: over the hard
    limit, or over the soft limit for longer than its seconds, and the client
    is disconnected."""
    transport = conn.transport
    if transport is None:
        return
    hard, soft, seconds = conn.worker.config["client-output-buffer-limit"]["pubsub"]
    pending = transport.get_write_buffer_size()
    now = time.monotonic()
    over_soft = soft and pending > soft
    if not over_soft:
        conn.soft_limit_since = None
    elif conn.soft_limit_since is None:
        conn.soft_limit_since = now
    if (hard and pending > hard) or (over_soft and now - conn.soft_limit_since >= seconds):
        log.warning("Client id=%d addr=%s closed for overcoming of output buffer limits."
                    % (conn.id, conn.addr))
        conn.transport.abort()


# -- PUBSUB ------------------------------------------------------------------

container("pubsub", -2, "", group=PUBSUB, since="2.8.0",
          summary="A container for Pub/Sub commands")


def _merge_channels(results):
    seen = {}
    for names in results:
        for name in names:
            seen[name] = None
    return list(seen)


@command("channels", -2, "pubsub loading stale", route=ALL, merge=_merge_channels,
         parent="pubsub", group=PUBSUB, since="2.8.0",
         summary="List active channels")
def pubsub_channels(ctx, argv):
    if len(argv) > 3:
        raise CommandError("ERR unknown subcommand or wrong number of arguments for '%s'. "
                           "Try PUBSUB HELP." % shown(argv[1]))
    names = ctx.server.pubsub.channels
    if len(argv) == 3:
        match = compile_glob(argv[2])
        return [name for name in names if match(name)]
    return list(names)


def _merge_numsub(results):
    out = list(results[0])
    for part in results[1:]:
        for i in range(1, len(out), 2):
            out[i] += part[i]
    return out


@command("numsub", -2, "pubsub loading stale", route=ALL, merge=_merge_numsub,
         parent="pubsub", group=PUBSUB, since="2.8.0",
         summary="Get the count of subscribers for channels")
def pubsub_numsub(ctx, argv):
    channels = ctx.server.pubsub.channels
    out = []
    for name in argv[2:]:
        out += [name, len(channels.get(name, ()))]
    return out


def _merge_numpat(results):
    return len(set().union(*results))


@command("numpat", 2, "pubsub loading stale", route=ALL, merge=_merge_numpat,
         parent="pubsub", group=PUBSUB, since="2.8.0",
         summary="Get the count of unique patterns pattern subscriptions")
def pubsub_numpat(ctx, argv):
    return list(ctx.server.pubsub.patterns)


HELP = [
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
]


@command("help", 2, "loading stale", parent="pubsub", group=PUBSUB, since="6.2.0",
         summary="Show helpful text about the different subcommands")
def pubsub_help(ctx, argv):
    return help_reply("PUBSUB", HELP)
