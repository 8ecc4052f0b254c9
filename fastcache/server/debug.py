"""DEBUG: the subcommands test suites and tools rely on.

Redis 7 refuses DEBUG unless enable-debug-command is set; fastcache has no
such setting and always allows it. DEBUG fans out: subcommands that change
every shard (POPULATE, SET-ACTIVE-EXPIRE) run on every worker, the others
only on the worker the client is connected to (so DEBUG SLEEP blocks that
worker, as it blocks the whole of Redis); the reply is that worker's.
DEBUG DIGEST is computed by every worker for its shard and combined.
"""
import hashlib
import re
import time

from fastcache import log
from fastcache.engine import errors
from fastcache.engine.args import parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.keyspace import now_ms
from fastcache.engine.keys import help_reply
from fastcache.engine.lists import List
from fastcache.engine.registry import ALL, command
from fastcache.protocol.encoder import ENCODERS
from fastcache.protocol.replies import OK, BigNumber, Error, Push, Raw, Simple, Verbatim
from fastcache.server.admin import subcommand_syntax_error

_NUMBER_PREFIX = re.compile(rb"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_INT_PREFIX = re.compile(rb"\s*[-+]?\d+")
NOT_POSITIVE = "ERR value is out of range, must be positive"
MAX_SLEEP = 2 ** 31


def _prefix_number(raw, pattern, kind):
    """What C's strtod/atoi make of raw: the leading number, or 0."""
    found = pattern.match(raw)
    return kind(found.group()) if found else kind(0)


def debug_sleep(ctx, argv):
    seconds = _prefix_number(argv[2], _NUMBER_PREFIX, float)
    if seconds > 0:
        time.sleep(min(seconds, MAX_SLEEP))
    return OK


def debug_error(ctx, argv):
    return Error(errors.shown(argv[2]))


def debug_log(ctx, argv):
    log.warning("DEBUG LOG: %s" % argv[2].decode("utf-8", "replace"))
    return OK


def _positive(raw):
    value = parse_int(raw, NOT_POSITIVE)
    if value < 0:
        raise CommandError(NOT_POSITIVE)
    return value


def debug_populate(ctx, argv):
    """Create <count> keys '<prefix>:<n>' = 'value:<n>' (padded or cut to <size>),
    skipping existing ones; each worker creates the keys it owns."""
    count = _positive(argv[2])
    prefix = argv[3] if len(argv) > 3 else b"key"
    size = _positive(argv[4]) if len(argv) > 4 else 0
    ks, db, worker = ctx.ks, ctx.db, ctx.server
    mine = None
    if worker is not None and worker.nshards > 1:
        owner, index = worker.owner_of, worker.index
        mine = lambda key: owner(key) == index  # noqa: E731
    for n in range(count):
        key = b"%s:%d" % (prefix, n)
        if mine is not None and not mine(key):
            continue
        if ks.peek(db, key) is not None:
            continue
        value = b"value:%d" % n
        if size:
            value = value[:size].ljust(size, b"\0")
        ks.set(db, key, value)
        if ks.journal is not None:   # DEBUG is no write command: record its keys here
            ks.journal.log(db.id, [b"SET", key, value])
    return OK


def _no_active_expiry(*args, **kwargs):
    return 0


def debug_set_active_expire(ctx, argv):
    ks = ctx.ks
    if _prefix_number(argv[2], _INT_PREFIX, int):
        vars(ks).pop("active_expire", None)
    else:
        ks.active_expire = _no_active_expiry  # the worker's cycle then removes nothing
    return OK


_ATTRIBUTE = b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n"
_PROTOCOL_TYPES = ("string", "integer", "double", "bignum", "null", "array", "set", "map",
                   "attrib", "push", "verbatim", "true", "false")


def debug_protocol(ctx, argv):
    kind = argv[2].decode("utf-8", "replace").lower()
    proto = ctx.proto
    if kind == "attrib":
        reply = b"Some real reply following the attribute"
        return Raw(_ATTRIBUTE + ENCODERS[3].encode(reply)) if proto == 3 else reply
    if kind == "push":
        if proto < 3:
            raise CommandError("ERR RESP2 is not supported by this command")
        encode = ENCODERS[3].encode
        return Raw(encode(Push([b"server-cpu-usage", 42]))
                   + encode(b"Some real reply following the push reply"))
    replies = {
        "string": b"Hello World", "integer": 12345, "double": 3.141,
        "bignum": BigNumber(1234567999999999999999999999999999999), "null": None,
        "array": [0, 1, 2], "set": {0, 1, 2}, "map": {0: False, 1: True, 2: False},
        "verbatim": Verbatim("This is a verbatim\nstring"), "true": True, "false": False,
    }
    if kind not in replies:
        raise CommandError("ERR Wrong protocol type name. Please use one of the following: "
                           + "|".join(_PROTOCOL_TYPES))
    return replies[kind]


_HELP = (
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
)


class Digest(int):
    """One shard's DEBUG DIGEST, combined with the others' by XOR."""
    __slots__ = ()


def _value_form(value):
    """A value as bytes, the same for equal values whatever their history:
    unordered types are sorted, encodings left out."""
    if type(value) is bytes:
        return b"s" + value
    if type(value) is List:
        return b"l" + repr(list(value)).encode()
    if isinstance(value, dict):  # Hash: field -> value; ZSet: member -> score
        return b"h" + repr(sorted(value.items())).encode()
    return b"t" + repr(sorted(value)).encode()


def dataset_digest(ks):
    """XOR of a SHA-1 per live key (db, key, value, expiry): order-free, so
    shards combine by XOR, and equal datasets digest equally."""
    acc = 0
    now = now_ms()
    for db in ks.dbs:
        expires = db.expires
        for key, value in db.data.items():
            at = expires.get(key)
            if at is not None and at <= now:
                continue
            h = hashlib.sha1(b"%d\0%d\0%s\0%s" % (db.id, len(key), key, b"%d" % at
                                                      if at is not None else b"-"))
            h.update(_value_form(value))
            acc ^= int.from_bytes(h.digest(), "big")
    return Digest(acc)


def debug_digest(ctx, argv):
    return dataset_digest(ctx.ks)


def debug_help(ctx, argv):
    return help_reply("DEBUG", _HELP)


# name -> (handler, min argc, max argc, runs on every worker)
SUBCOMMANDS = {
    b"help": (debug_help, 2, 2, False),
    b"digest": (debug_digest, 2, 2, True),
    b"sleep": (debug_sleep, 3, 3, False),
    b"error": (debug_error, 3, 3, False),
    b"log": (debug_log, 3, 3, False),
    b"populate": (debug_populate, 3, 5, True),
    b"protocol": (debug_protocol, 3, 3, False),
    b"set-active-expire": (debug_set_active_expire, 3, 3, True),
}


def _merge(parts):
    """The reply of the worker the client talks to (the one part that is a list),
    or every shard's digest combined."""
    digests = [part for part in parts if type(part) is Digest]
    if digests:
        acc = 0
        for part in digests:
            acc ^= part
        return Simple("%040x" % acc)
    for part in parts:
        if part is not None:
            return part[0]
    return None


@command("debug", -2, "admin noscript loading stale", route=ALL, merge=_merge, group="server",
         summary="A container for debugging commands", acl="@admin @slow @dangerous")
def debug(ctx, argv):
    entry = SUBCOMMANDS.get(argv[1].lower())
    if entry is None or not entry[1] <= len(argv) <= entry[2]:
        raise subcommand_syntax_error(argv[1], "DEBUG")
    handler, _, _, everywhere = entry
    if ctx.server is None:  # embedded: no fan-out, no merge
        reply = handler(ctx, argv)
        return _merge([reply]) if type(reply) is Digest else reply
    if handler is debug_digest:
        return handler(ctx, argv)
    caller_here = ctx.client is not None
    if not (caller_here or everywhere):
        return None
    reply = handler(ctx, argv)
    return [reply] if caller_here else None
