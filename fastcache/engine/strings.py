"""String commands (GET, SET, INCR, ...). Values are bytes.

Error texts, reply types and the order in which arguments are checked follow
Redis 7.0, since clients can observe which error wins.
"""
from fastcache.engine import errors, longdouble
from fastcache.engine.args import INT64_MAX, INT64_MIN, parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.keyspace import now_ms
from fastcache.engine.lcs import lcs, lcs_length
from fastcache.engine.notify import GENERIC, STRING
from fastcache.engine.registry import SPLIT_OK, SPLIT_ORDERED, command
from fastcache.protocol.replies import OK

# proto-max-bulk-len's default: no string may grow past it.
MAX_STRING = 512 * 1024 * 1024

TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
NAN_OR_INF = "ERR increment would produce NaN or Infinity"
OFFSET_RANGE = "ERR offset is out of range"


def _check_string(value):
    """value itself, for a write-side lookup (ks.peek) that must find a string."""
    if value is not None and type(value) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    return value


def _check_size(size):
    if size > MAX_STRING:
        raise CommandError(TOO_BIG)


def _notify_set(ks, db, key, expiring):
    """SET's keyspace events: "set", then "expire" when it gave key a TTL."""
    ks.notify(STRING, "set", db, key)
    if expiring:
        ks.notify(GENERIC, "expire", db, key)


# -- SET / GETEX options --------------------------------------------------------

NX, XX, GET, KEEPTTL, PERSIST, EX, PX, EXAT, PXAT = (1 << n for n in range(9))
# At most one of these may appear (each may repeat itself).
_TTL_OPTIONS = KEEPTTL | PERSIST | EX | PX | EXAT | PXAT
_TAKES_VALUE = EX | PX | EXAT | PXAT
_SET_OPTIONS = {b"NX": NX, b"XX": XX, b"GET": GET, b"KEEPTTL": KEEPTTL,
                b"EX": EX, b"PX": PX, b"EXAT": EXAT, b"PXAT": PXAT}
_GETEX_OPTIONS = {b"PERSIST": PERSIST, b"EX": EX, b"PX": PX, b"EXAT": EXAT, b"PXAT": PXAT}
_CONFLICTS = {NX: XX, XX: NX, GET: 0,
              **{flag: _TTL_OPTIONS & ~flag for flag in (KEEPTTL, PERSIST, EX, PX, EXAT, PXAT)}}


def _parse_options(argv, start, allowed):
    """(flags, raw expire argument or None); a syntax error on anything else."""
    flags = 0
    expire = None
    n = len(argv)
    i = start
    while i < n:
        flag = allowed.get(argv[i].upper())
        if flag is None or flags & _CONFLICTS[flag]:
            raise CommandError(errors.SYNTAX)
        if flag & _TAKES_VALUE:
            i += 1
            if i == n:
                raise CommandError(errors.SYNTAX)
            expire = argv[i]
        flags |= flag
        i += 1
    return flags, expire


def _expire_at(raw, flags, name):
    """The absolute expiry in ms for an EX/PX/EXAT/PXAT argument."""
    when = parse_int(raw)
    seconds = flags & (EX | EXAT)
    if when <= 0 or (seconds and when > INT64_MAX // 1000):
        raise CommandError(errors.EXPIRE_TIME % name)
    if seconds:
        when *= 1000
    if flags & (EX | PX):
        when += now_ms()
        if when > INT64_MAX:  # Redis's signed sum would wrap
            raise CommandError(errors.EXPIRE_TIME % name)
    return when


# -- GET / SET ------------------------------------------------------------------

@command("get", 2, "readonly fast", (1, 1, 1), group="string", summary="Get the value of a key")
def get(ctx, argv):
    value = ctx.ks.get(ctx.db, argv[1])
    if value is not None and type(value) is not bytes:
        raise CommandError(errors.WRONGTYPE)
    return value


@command("set", -3, "write denyoom", (1, 1, 1), group="string",
         summary="Set the string value of a key")
def set_(ctx, argv):
    if len(argv) == 3:
        ks = ctx.ks
        ks.set(ctx.db, argv[1], argv[2])
        if ks.notify_flags:
            ks.notify(STRING, "set", ctx.db, argv[1])
        return OK
    flags, expire = _parse_options(argv, 3, _SET_OPTIONS)
    expire_at = _expire_at(expire, flags, "set") if expire is not None else None
    ks, db, key = ctx.ks, ctx.db, argv[1]
    if flags & GET:
        old = ks.get_typed(db, key, bytes)
        found = old is not None
    else:
        found = ks.peek(db, key) is not None
    if (flags & NX and found) or (flags & XX and not found):
        return old if flags & GET else None
    ks.set(db, key, argv[2], expire_at, flags & KEEPTTL)
    if ks.notify_flags:
        _notify_set(ks, db, key, expire_at is not None)
    return old if flags & GET else OK


@command("setnx", 3, "write denyoom fast", (1, 1, 1), group="string",
         summary="Set the value of a key, only if the key does not exist")
def setnx(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    if ks.peek(db, key) is not None:
        return 0
    ks.set(db, key, argv[2])
    ks.notify(STRING, "set", db, key)
    return 1


def _set_expiring(ctx, argv, flag, name):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    ks.set(db, key, argv[3], _expire_at(argv[2], flag, name))
    _notify_set(ks, db, key, True)
    return OK


@command("setex", 4, "write denyoom", (1, 1, 1), group="string", since="2.0.0",
         summary="Set the value and expiration of a key")
def setex(ctx, argv):
    return _set_expiring(ctx, argv, EX, "setex")


@command("psetex", 4, "write denyoom", (1, 1, 1), group="string", since="2.6.0",
         summary="Set the value and expiration in milliseconds of a key")
def psetex(ctx, argv):
    return _set_expiring(ctx, argv, PX, "psetex")


@command("getset", 3, "write denyoom fast", (1, 1, 1), group="string",
         summary="Set the string value of a key and return its old value")
def getset(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    old = ks.get_typed(db, key, bytes)
    ks.set(db, key, argv[2])
    ks.notify(STRING, "set", db, key)
    return old


@command("getdel", 2, "write fast", (1, 1, 1), group="string", since="6.2.0",
         summary="Get the value of a key and delete the key")
def getdel(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    old = ks.get_typed(db, key, bytes)
    if old is not None:
        ks.delete(db, key)
        ks.notify(GENERIC, "del", db, key)
    return old


@command("getex", -2, "write fast", (1, 1, 1), group="string", since="6.2.0",
         summary="Get the value of a key and optionally set its expiration")
def getex(ctx, argv):
    flags, expire = _parse_options(argv, 2, _GETEX_OPTIONS)
    ks, db, key = ctx.ks, ctx.db, argv[1]
    value = ks.get_typed(db, key, bytes)
    if value is None:
        return None  # a bad expire argument goes unnoticed, as in Redis
    if expire is not None:
        when = _expire_at(expire, flags, "getex")
        if flags & (EXAT | PXAT) and when <= now_ms():
            ks.delete(db, key)
            ks.notify(GENERIC, "del", db, key)
        else:
            ks.set(db, key, value, when)
            ks.notify(GENERIC, "expire", db, key)
    elif flags & PERSIST and key in db.expires:
        ks.set(db, key, value)
        ks.notify(GENERIC, "persist", db, key)
    return value


@command("mget", -2, "readonly fast", (1, -1, 1), split=SPLIT_ORDERED, group="string",
         summary="Get the values of all the given keys", tips="request_policy:multi_shard")
def mget(ctx, argv):
    get_, db = ctx.ks.get, ctx.db
    values = []
    append = values.append
    for key in argv[1:]:
        value = get_(db, key)
        append(value if type(value) is bytes else None)
    return values


def _check_pairs(argv, name):
    if not len(argv) & 1:
        raise CommandError(errors.wrong_arity(name))


@command("mset", -3, "write denyoom", (1, -1, 2), split=SPLIT_OK, group="string",
         since="1.0.1", summary="Set multiple keys to multiple values",
         tips="request_policy:multi_shard response_policy:all_succeeded")
def mset(ctx, argv):
    _check_pairs(argv, "mset")
    _set_all(ctx.ks, ctx.db, argv)
    return OK


def _set_all(ks, db, argv):
    """MSET/MSETNX's writes: each key of argv[1::2] to the value after it."""
    for i in range(1, len(argv), 2):
        ks.set(db, argv[i], argv[i + 1])
        if ks.notify_flags:
            ks.notify(STRING, "set", db, argv[i])


@command("msetnx", -3, "write denyoom", (1, -1, 2), group="string", since="1.0.1",
         summary="Set multiple keys to multiple values, only if none of the keys exist",
         tips="request_policy:multi_shard response_policy:agg_min")
def msetnx(ctx, argv):
    _check_pairs(argv, "msetnx")
    ks, db = ctx.ks, ctx.db
    for i in range(1, len(argv), 2):
        if ks.peek(db, argv[i]) is not None:
            return 0
    _set_all(ks, db, argv)
    return 1


# -- counters -------------------------------------------------------------------

def _stored_int(raw):
    # Most counters are short non-negative numbers: skip parse_int's round trip.
    if type(raw) is bytes and len(raw) <= 18 and raw.isdigit() and (raw[0] != 48 or len(raw) == 1):
        return int(raw)
    return parse_int(_check_string(raw))


def _incr_by(ctx, key, delta):
    ks, db = ctx.ks, ctx.db
    old = ks.peek(db, key)
    if old is None:
        value = delta
    else:
        value = _stored_int(old) + delta
        if not INT64_MIN <= value <= INT64_MAX:
            raise CommandError(errors.OVERFLOW)
    ks.set(db, key, b"%d" % value, None, True)
    if ks.notify_flags:
        ks.notify(STRING, "incrby", db, key)
    return value


@command("incr", 2, "write denyoom fast", (1, 1, 1), group="string",
         summary="Increment the integer value of a key by one")
def incr(ctx, argv):
    return _incr_by(ctx, argv[1], 1)


@command("decr", 2, "write denyoom fast", (1, 1, 1), group="string",
         summary="Decrement the integer value of a key by one")
def decr(ctx, argv):
    return _incr_by(ctx, argv[1], -1)


@command("incrby", 3, "write denyoom fast", (1, 1, 1), group="string",
         summary="Increment the integer value of a key by the given amount")
def incrby(ctx, argv):
    return _incr_by(ctx, argv[1], parse_int(argv[2]))


@command("decrby", 3, "write denyoom fast", (1, 1, 1), group="string",
         summary="Decrement the integer value of a key by the given number")
def decrby(ctx, argv):
    delta = parse_int(argv[2])
    if delta == INT64_MIN:
        raise CommandError("ERR decrement would overflow")
    return _incr_by(ctx, argv[1], -delta)


@command("incrbyfloat", 3, "write denyoom fast", (1, 1, 1), group="string", since="2.6.0",
         summary="Increment the float value of a key by the given amount")
def incrbyfloat(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    old = _check_string(ks.peek(db, key))
    current = longdouble.parse(old) if old is not None else 0
    delta = longdouble.parse(argv[2])
    if current is None or delta is None:
        raise CommandError(errors.NOT_FLOAT)
    text = float_sum(current, delta)
    ks.set(db, key, text, None, True)
    ks.notify(STRING, "incrbyfloat", db, key)
    return text


def float_sum(current, delta):
    """The text INCRBYFLOAT (and HINCRBYFLOAT) stores for current + delta,
    both parsed with longdouble.parse; NaN/Infinity refused."""
    if current == longdouble.INFINITY or delta == longdouble.INFINITY:
        raise CommandError(NAN_OR_INF)
    try:
        total = longdouble.add(current, delta)
    except longdouble.Infinite:
        raise CommandError(NAN_OR_INF) from None
    return longdouble.format_human(total)


# -- byte-level edits and reads -------------------------------------------------

@command("append", 3, "write denyoom fast", (1, 1, 1), group="string", since="2.0.0",
         summary="Append a value to a key")
def append(ctx, argv):
    ks, db, key, tail = ctx.ks, ctx.db, argv[1], argv[2]
    old = _check_string(ks.peek(db, key))
    if old is None:
        value = tail
        ks.set(db, key, value)
    else:
        _check_size(len(old) + len(tail))
        value = old + tail
        ks.set(db, key, value, None, True)
    ks.notify(STRING, "append", db, key)
    return len(value)


@command("strlen", 2, "readonly fast", (1, 1, 1), group="string", since="2.2.0",
         summary="Get the length of the value stored in a key")
def strlen(ctx, argv):
    value = ctx.ks.get_typed(ctx.db, argv[1], bytes)
    return 0 if value is None else len(value)


@command("setrange", 4, "write denyoom", (1, 1, 1), group="string", since="2.2.0",
         summary="Overwrite part of a string at key starting at the specified offset")
def setrange(ctx, argv):
    offset = parse_int(argv[2])
    if offset < 0:
        raise CommandError(OFFSET_RANGE)
    ks, db, key, patch = ctx.ks, ctx.db, argv[1], argv[3]
    old = _check_string(ks.peek(db, key))
    if not patch:
        return 0 if old is None else len(old)
    end = offset + len(patch)
    _check_size(end)
    if old is None:
        value = bytes(offset) + patch
        ks.set(db, key, value)
    else:
        if offset > len(old):
            value = old + bytes(offset - len(old)) + patch
        else:
            value = old[:offset] + patch + old[end:]
        ks.set(db, key, value, None, True)
    ks.notify(STRING, "setrange", db, key)
    return len(value)


def _substring(ctx, argv):
    start = parse_int(argv[2])
    end = parse_int(argv[3])
    value = ctx.ks.get_typed(ctx.db, argv[1], bytes)
    if not value or (start < 0 and end < 0 and start > end):
        return b""
    size = len(value)
    if start < 0:
        start = max(start + size, 0)
    if end < 0:
        end = max(end + size, 0)
    return value[start:end + 1]


@command("getrange", 4, "readonly", (1, 1, 1), group="string", since="2.4.0",
         summary="Get a substring of the string stored at a key")
def getrange(ctx, argv):
    return _substring(ctx, argv)


@command("substr", 4, "readonly", (1, 1, 1), group="string",
         summary="Get a substring of the string stored at a key")
def substr(ctx, argv):
    return _substring(ctx, argv)


@command("lcs", -3, "readonly", (1, 2, 1), group="string", since="7.0.0",
         summary="Find longest common substring")
def lcs_(ctx, argv):
    ks, db = ctx.ks, ctx.db
    a = ks.get(db, argv[1])
    b = ks.get(db, argv[2])
    if (a is not None and type(a) is not bytes) or (b is not None and type(b) is not bytes):
        raise CommandError("ERR The specified keys must contain string values")
    a = a or b""
    b = b or b""
    want_len = want_idx = with_match_len = False
    min_match_len = 0
    i, n = 3, len(argv)
    while i < n:
        opt = argv[i].upper()
        if opt == b"IDX":
            want_idx = True
        elif opt == b"LEN":
            want_len = True
        elif opt == b"WITHMATCHLEN":
            with_match_len = True
        elif opt == b"MINMATCHLEN" and i + 1 < n:
            i += 1
            min_match_len = max(parse_int(argv[i]), 0)
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    if want_len and want_idx:
        raise CommandError("ERR If you want both the length and indexes, please just use IDX.")
    # Redis refuses when its uint32 table would exceed proto-max-bulk-len.
    if (len(a) + 1) * (len(b) + 1) * 4 > MAX_STRING:
        raise CommandError("ERR Insufficient memory, transient memory for LCS exceeds "
                           "proto-max-bulk-len")
    if want_len:
        return lcs_length(a, b)
    common, length, ranges = lcs(a, b, want_idx, min_match_len, with_match_len)
    if want_idx:
        return {b"matches": ranges, b"len": length}
    return common
