"""Generic key commands: DEL, EXISTS, EXPIRE and TTL families, KEYS, SCAN,
RENAME, COPY, MOVE, the database-wide commands and OBJECT.

KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHDB, FLUSHALL and SWAPDB run on every
shard (route=ALL): each handler here covers its own shard's keyspace and the
server merges the replies. RENAME, RENAMENX and COPY assume both keys live on
this shard.
"""
import random
from itertools import islice

from fastcache.engine import errors
from fastcache.engine.args import INT64_MAX, INT64_MIN, parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.glob import compile_glob
from fastcache.engine.keyspace import now_ms
from fastcache.engine.notify import GENERIC
from fastcache.engine.registry import ALL, SPLIT_SUM, command, container
from fastcache.engine.scan import cursors_of, parse_cursor, parse_options
from fastcache.engine.types import (
    copy_value, encoding_of, refcount_of, type_name, type_reply,
)
from fastcache.protocol.replies import OK, Simple

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
SAME_OBJECT = "ERR source and destination objects are the same"
UNSUPPORTED_OPTION = "ERR Unsupported option %s"
NX_CONFLICT = "ERR NX and XX, GT or LT options at the same time are not compatible"
GT_LT_CONFLICT = "ERR GT and LT options at the same time are not compatible"
LFU_NOT_SELECTED = ("ERR An LFU maxmemory policy is not selected, access frequency not "
                    "tracked. Please note that when switching between policies at runtime "
                    "LRU and LFU data will take some time to adjust.")


def parse_int32(raw, error=None):
    """A C int argument: Redis's range error unless the caller names its own."""
    value = parse_int(raw, error or errors.NOT_INT)
    if not INT32_MIN <= value <= INT32_MAX:
        raise CommandError(error or "ERR value is out of range, value must between %d and %d"
                           % (INT32_MIN, INT32_MAX))
    return value


def db_at(ctx, index):
    """The Db numbered index, or Redis's out-of-range error."""
    dbs = ctx.ks.dbs
    if not 0 <= index < len(dbs):
        raise CommandError(errors.DB_INDEX)
    return dbs[index]


def lookup_notouch(ks, db, key):
    """A read that counts a hit or miss but leaves the access time alone."""
    value = ks.peek(db, key)
    if value is None:
        ks.misses += 1
    else:
        ks.hits += 1
    return value


def help_reply(container_name, lines):
    """A HELP subcommand's reply in Redis's layout: header, lines, HELP entry."""
    reply = [Simple("%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
                    % container_name)]
    reply.extend(Simple(line) for line in lines)
    reply.append(Simple("HELP"))
    reply.append(Simple("    Prints this help."))
    return reply


# -- existence and deletion --------------------------------------------------

@command("del", -2, "write", (1, -1, 1), split=SPLIT_SUM, summary="Delete a key",
         acl="@keyspace @write @slow", tips="request_policy:multi_shard response_policy:agg_sum")
def del_(ctx, argv):
    ks, db = ctx.ks, ctx.db
    if len(argv) == 2 and not ks.notify_flags:
        return 1 if ks.delete(db, argv[1]) else 0
    removed = 0
    for key in argv[1:]:
        if ks.delete(db, key):
            removed += 1
            ks.notify(GENERIC, "del", db, key)
    return removed


command("unlink", -2, "write fast", (1, -1, 1), split=SPLIT_SUM, since="4.0.0",
        summary="Delete a key asynchronously in another thread. Otherwise it is just as DEL, "
                "but non blocking.",
        acl="@keyspace @write @fast",
        tips="request_policy:multi_shard response_policy:agg_sum")(del_)


@command("exists", -2, "readonly fast", (1, -1, 1), split=SPLIT_SUM, summary="Determine if a key exists",
         acl="@keyspace @read @fast", tips="request_policy:multi_shard response_policy:agg_sum")
def exists(ctx, argv):
    ks, db = ctx.ks, ctx.db
    if len(argv) == 2:
        if ks.peek(db, argv[1]) is None:
            ks.misses += 1
            return 0
        ks.hits += 1
        return 1
    found = 0
    for key in argv[1:]:
        if ks.peek(db, key) is not None:
            found += 1
    ks.hits += found
    ks.misses += len(argv) - 1 - found
    return found


@command("touch", -2, "readonly fast", (1, -1, 1), split=SPLIT_SUM, since="3.2.1",
         summary="Alters the last access time of a key(s). Returns the number of existing keys specified.",
         acl="@keyspace @read @fast", tips="request_policy:multi_shard response_policy:agg_sum")
def touch(ctx, argv):
    ks, db = ctx.ks, ctx.db
    touched = 0
    for key in argv[1:]:
        if ks.get(db, key) is not None:
            touched += 1
    return touched


@command("type", 2, "readonly fast", (1, 1, 1), summary="Determine the type stored at key",
         acl="@keyspace @read @fast")
def type_(ctx, argv):
    return type_reply(lookup_notouch(ctx.ks, ctx.db, argv[1]))


# -- expiry ------------------------------------------------------------------

_NX, _XX, _GT, _LT = 1, 2, 4, 8
_EXPIRE_FLAGS = {b"nx": _NX, b"xx": _XX, b"gt": _GT, b"lt": _LT}
_SECONDS_MAX, _SECONDS_MIN = INT64_MAX // 1000, -(-INT64_MIN // 1000)


def _expire_flags(argv):
    flags = 0
    for raw in argv[3:]:
        flag = _EXPIRE_FLAGS.get(raw.lower())
        if flag is None:
            raise CommandError(UNSUPPORTED_OPTION % errors.shown(raw))
        flags |= flag
    if flags & _NX and flags & (_XX | _GT | _LT):
        raise CommandError(NX_CONFLICT)
    if flags & _GT and flags & _LT:
        raise CommandError(GT_LT_CONFLICT)
    return flags


def _expire(ctx, argv, name, relative, seconds):
    """EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: set the absolute ms deadline."""
    flags = _expire_flags(argv) if len(argv) > 3 else 0
    when = parse_int(argv[2])
    if seconds:
        if not _SECONDS_MIN <= when <= _SECONDS_MAX:
            raise CommandError(errors.EXPIRE_TIME % name)
        when *= 1000
    now = now_ms()
    if relative:
        if when > INT64_MAX - now:
            raise CommandError(errors.EXPIRE_TIME % name)
        when += now
    ks, db, key = ctx.ks, ctx.db, argv[1]
    if ks.peek(db, key) is None:
        return 0
    if flags:
        current = db.expires.get(key)
        if flags & _NX and current is not None:
            return 0
        if flags & _XX and current is None:
            return 0
        # No TTL counts as an infinite one: GT never wins against it, LT always does.
        if flags & _GT and (current is None or when <= current):
            return 0
        if flags & _LT and current is not None and when >= current:
            return 0
    if when <= now:
        ks.delete(db, key)
        ks.notify(GENERIC, "del", db, key)
    else:
        db.expires[key] = when
        ks.dirty += 1
        ks.notify(GENERIC, "expire", db, key)
    return 1


def _expire_command(name, relative, seconds):
    def handler(ctx, argv):
        return _expire(ctx, argv, name, relative, seconds)
    return handler


for _name, _since, _summary, _relative, _seconds in (
        ("expire", "1.0.0", "Set a key's time to live in seconds", True, True),
        ("pexpire", "2.6.0", "Set a key's time to live in milliseconds", True, False),
        ("expireat", "1.2.0", "Set the expiration for a key as a UNIX timestamp", False, True),
        ("pexpireat", "2.6.0",
         "Set the expiration for a key as a UNIX timestamp specified in milliseconds", False, False)):
    command(_name, -3, "write fast", (1, 1, 1), since=_since, summary=_summary,
            acl="@keyspace @write @fast")(_expire_command(_name, _relative, _seconds))


def _ttl(ctx, key, in_ms, absolute):
    """TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 missing key, -1 no expiry."""
    db = ctx.db
    if lookup_notouch(ctx.ks, db, key) is None:
        return -2
    at = db.expires.get(key)
    if at is None:
        return -1
    left = at if absolute else at - now_ms()
    if left < 0:
        left = 0
    return left if in_ms else (left + 500) // 1000


def _ttl_command(in_ms, absolute):
    def handler(ctx, argv):
        return _ttl(ctx, argv[1], in_ms, absolute)
    return handler


for _name, _since, _summary, _tips, _in_ms, _absolute in (
        ("ttl", "1.0.0", "Get the time to live for a key in seconds", "nondeterministic_output",
         False, False),
        ("pttl", "2.6.0", "Get the time to live for a key in milliseconds", "nondeterministic_output",
         True, False),
        ("expiretime", "7.0.0", "Get the expiration Unix timestamp for a key", "", False, True),
        ("pexpiretime", "7.0.0", "Get the expiration Unix timestamp for a key in milliseconds", "",
         True, True)):
    command(_name, 2, "readonly fast", (1, 1, 1), since=_since, summary=_summary,
            acl="@keyspace @read @fast", tips=_tips)(_ttl_command(_in_ms, _absolute))


@command("persist", 2, "write fast", (1, 1, 1), since="2.2.0", summary="Remove the expiration from a key",
         acl="@keyspace @write @fast")
def persist(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    if ks.peek(db, key) is None or db.expires.pop(key, None) is None:
        return 0
    ks.dirty += 1
    ks.notify(GENERIC, "persist", db, key)
    return 1


# -- whole keyspace ------------------------------------------------------------

def _live(db, key, now):
    at = db.expires.get(key)
    return at is None or at > now


@command("keys", 2, "readonly", route=ALL, summary="Find all keys matching the given pattern",
         acl="@keyspace @read @slow @dangerous", tips="request_policy:all_shards nondeterministic_output_order")
def keys(ctx, argv):
    db, pattern = ctx.db, argv[1]
    if pattern == b"*":
        found = list(db.data)
    else:
        match = compile_glob(pattern)
        found = [key for key in db.data if match(key)]
    if db.expires:  # Redis skips expired keys here without deleting them
        now = now_ms()
        found = [key for key in found if _live(db, key, now)]
    return found


@command("scan", -2, "readonly", route=ALL, since="2.8.0", summary="Incrementally iterate the keys space",
         acl="@keyspace @read @slow", tips="nondeterministic_output request_policy:special")
def scan(ctx, argv):
    """One shard's step: argv[1] is this shard's cursor (see scan.py)."""
    cursor = parse_cursor(argv[1])
    match, count, wanted_type = parse_options(argv, 2, True)
    ks, db = ctx.ks, ctx.db
    cursor, batch = cursors_of(ks).step(db.id, db.data, cursor, count)
    found = []
    for key in batch:
        if match is not None and not match(key):
            continue
        value = ks.peek(db, key)  # skips keys deleted or expired since the snapshot
        if value is None:
            continue
        if wanted_type is not None and type_name(value) != wanted_type:
            continue
        found.append(key)
    return [b"%d" % cursor, found]


@command("randomkey", 1, "readonly", route=ALL, summary="Return a random key from the keyspace",
         acl="@keyspace @read @slow", tips="request_policy:all_shards nondeterministic_output")
def randomkey(ctx, argv):
    ks, db = ctx.ks, ctx.db
    data = db.data
    while data:
        # Dicts have no random access; a C-level skip is the cheapest uniform pick.
        key = next(islice(data, random.randrange(len(data)), None))
        if ks.peek(db, key) is not None:
            return key
        data = db.data
    return None


@command("dbsize", 1, "readonly fast", route=ALL, group="server",
         summary="Return the number of keys in the selected database",
         acl="@keyspace @read @fast", tips="request_policy:all_shards response_policy:agg_sum")
def dbsize(ctx, argv):
    return len(ctx.db.data)


def _flush_mode(argv):
    """FLUSHDB/FLUSHALL take an optional ASYNC or SYNC; both free at once here."""
    if len(argv) == 1 or (len(argv) == 2 and argv[1].lower() in (b"async", b"sync")):
        return
    raise CommandError(errors.SYNTAX)


@command("flushdb", -1, "write", route=ALL, group="server", summary="Remove all keys from the current database",
         acl="@keyspace @write @slow @dangerous", tips="request_policy:all_shards response_policy:all_succeeded")
def flushdb(ctx, argv):
    _flush_mode(argv)
    ctx.ks.flush(ctx.db)
    return OK


@command("flushall", -1, "write", route=ALL, group="server", summary="Remove all keys from all databases",
         acl="@keyspace @write @slow @dangerous", tips="request_policy:all_shards response_policy:all_succeeded")
def flushall(ctx, argv):
    _flush_mode(argv)
    ctx.ks.flushall()
    return OK


@command("swapdb", 3, "write fast", route=ALL, group="server", since="4.0.0", summary="Swaps two Redis databases",
         acl="@keyspace @write @fast @dangerous")
def swapdb(ctx, argv):
    first = parse_int32(argv[1], "ERR invalid first DB index")
    second = parse_int32(argv[2], "ERR invalid second DB index")
    db_at(ctx, first)
    db_at(ctx, second)
    ctx.ks.swap(first, second)
    return OK


# -- renaming and copying -------------------------------------------------------

def _replace(ks, db, key, value, expire_at):
    """Store value at key as a new key: like Redis, an existing one is deleted
    first (no "del" event, no change counted), so the store is a "new" event."""
    if ks.delete(db, key):
        ks.dirty -= 1
    ks.set(db, key, value, expire_at)


def _relocate(ks, src_db, src, dst_db, dst, value, events):
    """Move a live value to dst as it is (same TTL, same idle time), then
    notify events: the source's, then the destination's."""
    atime = src_db.atime.get(src)
    _replace(ks, dst_db, dst, value, src_db.expires.get(src))
    if atime is not None:
        dst_db.atime[dst] = atime
    ks.delete(src_db, src)
    ks.notify(GENERIC, events[0], src_db, src)
    ks.notify(GENERIC, events[1], dst_db, dst)


def _rename(ctx, argv, nx):
    ks, db = ctx.ks, ctx.db
    src, dst = argv[1], argv[2]
    value = ks.peek(db, src)
    if value is None:
        raise CommandError(errors.NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else OK
    if nx and ks.peek(db, dst) is not None:
        return 0
    _relocate(ks, db, src, db, dst, value, ("rename_from", "rename_to"))
    return 1 if nx else OK


@command("rename", 3, "write", (1, 2, 1), summary="Rename a key", acl="@keyspace @write @slow")
def rename(ctx, argv):
    return _rename(ctx, argv, False)


@command("renamenx", 3, "write fast", (1, 2, 1), summary="Rename a key, only if the new key does not exist",
         acl="@keyspace @write @fast")
def renamenx(ctx, argv):
    return _rename(ctx, argv, True)


@command("copy", -3, "write denyoom", (1, 2, 1), since="6.2.0", summary="Copy a key",
         acl="@keyspace @write @slow")
def copy(ctx, argv):
    ks, src_db = ctx.ks, ctx.db
    dst_db = src_db
    replace = False
    i, n = 3, len(argv)
    while i < n:
        option = argv[i].lower()
        if option == b"replace":
            replace = True
        elif option == b"db" and i + 1 < n:
            dst_db = db_at(ctx, parse_int32(argv[i + 1]))
            i += 1
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    src, dst = argv[1], argv[2]
    if dst_db is src_db and src == dst:
        raise CommandError(SAME_OBJECT)
    value = ks.get(src_db, src)
    if value is None:
        return 0
    if not replace and ks.peek(dst_db, dst) is not None:
        return 0
    _replace(ks, dst_db, dst, copy_value(value), src_db.expires.get(src))
    ks.notify(GENERIC, "copy_to", dst_db, dst)
    return 1


@command("move", 3, "write fast", (1, 1, 1), summary="Move a key to another database",
         acl="@keyspace @write @fast")
def move(ctx, argv):
    ks, src_db, key = ctx.ks, ctx.db, argv[1]
    dst_db = db_at(ctx, parse_int32(argv[2]))
    if dst_db is src_db:
        raise CommandError(SAME_OBJECT)
    value = ks.peek(src_db, key)
    if value is None or ks.peek(dst_db, key) is not None:
        return 0
    _relocate(ks, src_db, key, dst_db, key, value, ("move_from", "move_to"))
    return 1


# -- OBJECT ------------------------------------------------------------------------

container("object", -2, "", since="2.2.3", summary="A container for object introspection commands")

_OBJECT_HELP = (
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
)


@command("help", 2, "loading stale", since="6.2.0", parent="object",
         summary="Show helpful text about the different subcommands", acl="@keyspace @slow")
def object_help(ctx, argv):
    return help_reply("OBJECT", _OBJECT_HELP)


@command("encoding", 3, "readonly", (2, 2, 1), since="2.2.3", parent="object",
         summary="Inspect the internal encoding of a Redis object",
         acl="@keyspace @read @slow", tips="nondeterministic_output")
def object_encoding(ctx, argv):
    value = lookup_notouch(ctx.ks, ctx.db, argv[2])
    return None if value is None else encoding_of(value).encode()


@command("refcount", 3, "readonly", (2, 2, 1), since="2.2.3", parent="object",
         summary="Get the number of references to the value of the key",
         acl="@keyspace @read @slow", tips="nondeterministic_output")
def object_refcount(ctx, argv):
    value = lookup_notouch(ctx.ks, ctx.db, argv[2])
    return None if value is None else refcount_of(value)


@command("idletime", 3, "readonly", (2, 2, 1), since="2.2.3", parent="object",
         summary="Get the time since a Redis object was last accessed",
         acl="@keyspace @read @slow", tips="nondeterministic_output")
def object_idletime(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[2]
    if lookup_notouch(ks, db, key) is None:
        return None
    return max(ks.clock - db.atime.get(key, ks.clock), 0)


@command("freq", 3, "readonly", (2, 2, 1), since="4.0.0", parent="object",
         summary="Get the logarithmic access frequency counter of a Redis object",
         acl="@keyspace @read @slow", tips="nondeterministic_output")
def object_freq(ctx, argv):
    # Access frequency is only tracked under an LFU eviction policy, which
    # fastcache does not have.
    if lookup_notouch(ctx.ks, ctx.db, argv[2]) is None:
        return None
    raise CommandError(LFU_NOT_SELECTED)
