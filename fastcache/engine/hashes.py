"""Hash commands (HSET, HGET, HINCRBYFLOAT, HRANDFIELD, HSCAN, ...).

A hash is a `Hash`: a dict of field bytes -> value bytes. Python dicts keep
insertion order and keep a field's place when its value is replaced, which is
exactly how a listpack behaves, so small hashes reply in Redis's order.

Error texts, reply shapes and the order in which arguments are checked follow
Redis 7.0, since clients can observe which error wins.
"""
import random
from itertools import islice

from fastcache.engine import errors, longdouble
from fastcache.engine.args import INT64_MAX, INT64_MIN, parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.notify import GENERIC, HASH
from fastcache.engine.registry import command
from fastcache.engine.scan import parse_cursor, step_container
from fastcache.engine.strings import float_sum
from fastcache.engine.types import register_type
from fastcache.protocol.replies import OK

# Redis 7.0's defaults (redis.conf) for hash-max-listpack-entries / hash-max-listpack-value.
MAX_LISTPACK_ENTRIES = 512
MAX_LISTPACK_VALUE = 64

NOT_INT_VALUE = "ERR hash value is not an integer"
NOT_FLOAT_VALUE = "ERR hash value is not a float"
NAN_OR_INF_INCREMENT = "ERR value is NaN or Infinity"
OUT_OF_RANGE = "ERR value is out of range"
# HRANDFIELD's count is a C long that must stay negatable.
COUNT_RANGE = ("ERR value is out of range, value must between %d and %d"
               % (-INT64_MAX, INT64_MAX))
# With WITHVALUES the reply holds 2 * count items, which must not overflow.
HALF_LONG = INT64_MAX // 2


class Hash(dict):
    """A hash value; `hashtable` records that it outgrew the listpack
    encoding (Redis never converts back, so neither does this flag)."""
    __slots__ = ("hashtable",)

    def __init__(self, *args):
        super().__init__(*args)
        self.hashtable = False

    def copy(self):
        twin = Hash(self)
        twin.hashtable = self.hashtable
        return twin

    def __reduce__(self):
        return (_rebuild, (dict(self), self.hashtable))


def _rebuild(items, hashtable):
    value = Hash(items)
    value.hashtable = hashtable
    return value


def _encoding(value):
    return "hashtable" if value.hashtable else "listpack"


register_type(Hash, "hash", encoding=_encoding, copy=Hash.copy)


# -- lookups and encoding upkeep --------------------------------------------------

def _create(ks, db, key):
    value = Hash()
    ks.set(db, key, value)
    ks.dirty -= 1  # creating the key is not a change by itself; callers count fields
    return value


def _outgrows_listpack(strings):
    for s in strings:
        if len(s) > MAX_LISTPACK_VALUE:
            return True
    return False


def _store(h, field, value):
    """Set one field, converting to hashtable where Redis's hashTypeSet would."""
    if not h.hashtable and (len(field) > MAX_LISTPACK_VALUE or len(value) > MAX_LISTPACK_VALUE):
        h.hashtable = True
    h[field] = value
    if len(h) > MAX_LISTPACK_ENTRIES:
        h.hashtable = True


# -- setting fields ---------------------------------------------------------------

def _set_pairs(ctx, argv, name):
    """HSET/HMSET: store every pair; the number of new fields."""
    if len(argv) & 1:
        raise CommandError(errors.wrong_arity(name))
    ks, db, key = ctx.ks, ctx.db, argv[1]
    h = ks.get_for_write(db, key, Hash)
    if h is None:
        h = _create(ks, db, key)
    if not h.hashtable and _outgrows_listpack(argv[2:]):
        h.hashtable = True  # Redis converts before inserting anything
    before = len(h)
    for i in range(2, len(argv), 2):
        h[argv[i]] = argv[i + 1]
    if len(h) > MAX_LISTPACK_ENTRIES:
        h.hashtable = True
    ks.dirty += (len(argv) - 2) >> 1
    ks.notify(HASH, "hset", db, key)
    return len(h) - before


@command("hset", -4, "write denyoom fast", (1, 1, 1), group="hash", since="2.0.0",
         summary="Set the string value of a hash field")
def hset(ctx, argv):
    return _set_pairs(ctx, argv, "hset")


@command("hmset", -4, "write denyoom fast", (1, 1, 1), group="hash", since="2.0.0",
         summary="Set multiple hash fields to multiple values")
def hmset(ctx, argv):
    _set_pairs(ctx, argv, "hmset")
    return OK


@command("hsetnx", 4, "write denyoom fast", (1, 1, 1), group="hash", since="2.0.0",
         summary="Set the value of a hash field, only if the field does not exist")
def hsetnx(ctx, argv):
    ks, db, key, field = ctx.ks, ctx.db, argv[1], argv[2]
    h = ks.get_for_write(db, key, Hash)
    if h is None:
        h = _create(ks, db, key)
    elif field in h:
        return 0
    _store(h, field, argv[3])
    ks.dirty += 1
    ks.notify(HASH, "hset", db, key)
    return 1


# -- counters ---------------------------------------------------------------------

@command("hincrby", 4, "write denyoom fast", (1, 1, 1), group="hash", since="2.0.0",
         summary="Increment the integer value of a hash field by the given number")
def hincrby(ctx, argv):
    delta = parse_int(argv[3])
    ks, db, key, field = ctx.ks, ctx.db, argv[1], argv[2]
    h = ks.get_for_write(db, key, Hash)
    old = None if h is None else h.get(field)
    if old is None:
        value = delta
    else:
        value = parse_int(old, NOT_INT_VALUE) + delta
        if not INT64_MIN <= value <= INT64_MAX:
            raise CommandError(errors.OVERFLOW)
    if h is None:
        h = _create(ks, db, key)
    _store(h, field, b"%d" % value)
    ks.dirty += 1
    ks.notify(HASH, "hincrby", db, key)
    return value


@command("hincrbyfloat", 4, "write denyoom fast", (1, 1, 1), group="hash", since="2.6.0",
         summary="Increment the float value of a hash field by the given amount")
def hincrbyfloat(ctx, argv):
    delta = longdouble.parse(argv[3])
    if delta is None:
        raise CommandError(errors.NOT_FLOAT)
    if delta == longdouble.INFINITY:
        raise CommandError(NAN_OR_INF_INCREMENT)
    ks, db, key, field = ctx.ks, ctx.db, argv[1], argv[2]
    h = ks.get_for_write(db, key, Hash)
    old = None if h is None else h.get(field)
    current = 0 if old is None else longdouble.parse(old)
    if current is None:
        raise CommandError(NOT_FLOAT_VALUE)
    text = float_sum(current, delta)
    if h is None:
        h = _create(ks, db, key)
    _store(h, field, text)
    ks.dirty += 1
    ks.notify(HASH, "hincrbyfloat", db, key)
    return text


# -- removing fields --------------------------------------------------------------

@command("hdel", -3, "write fast", (1, 1, 1), group="hash", since="2.0.0",
         summary="Delete one or more hash fields")
def hdel(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    h = ks.get_for_write(db, key, Hash)
    if h is None:
        return 0
    removed = 0
    for field in argv[2:]:
        if h.pop(field, None) is not None:
            removed += 1
            if not h:
                break
    if not removed:
        return 0
    ks.dirty += removed
    ks.notify(HASH, "hdel", db, key)
    if not h:  # Redis never keeps an empty hash
        ks.delete(db, key)
        ks.dirty -= 1  # dropping the emptied key is not a change of its own
        ks.notify(GENERIC, "del", db, key)
    return removed


# -- reads ------------------------------------------------------------------------

def _read(ctx, key):
    return ctx.ks.get_typed(ctx.db, key, Hash)


@command("hget", 3, "readonly fast", (1, 1, 1), group="hash", since="2.0.0",
         summary="Get the value of a hash field")
def hget(ctx, argv):
    h = ctx.ks.get_typed(ctx.db, argv[1], Hash)
    return None if h is None else h.get(argv[2])


@command("hmget", -3, "readonly fast", (1, 1, 1), group="hash", since="2.0.0",
         summary="Get the values of all the given hash fields")
def hmget(ctx, argv):
    h = _read(ctx, argv[1])
    if h is None:
        return [None] * (len(argv) - 2)
    get = h.get
    return [get(field) for field in argv[2:]]


@command("hexists", 3, "readonly fast", (1, 1, 1), group="hash", since="2.0.0",
         summary="Determine if a hash field exists")
def hexists(ctx, argv):
    h = _read(ctx, argv[1])
    return 1 if h is not None and argv[2] in h else 0


@command("hlen", 2, "readonly fast", (1, 1, 1), group="hash", since="2.0.0",
         summary="Get the number of fields in a hash")
def hlen(ctx, argv):
    h = _read(ctx, argv[1])
    return 0 if h is None else len(h)


@command("hstrlen", 3, "readonly fast", (1, 1, 1), group="hash", since="3.2.0",
         summary="Get the length of the value of a hash field")
def hstrlen(ctx, argv):
    h = _read(ctx, argv[1])
    value = None if h is None else h.get(argv[2])
    return 0 if value is None else len(value)


@command("hgetall", 2, "readonly", (1, 1, 1), group="hash", since="2.0.0",
         summary="Get all the fields and values in a hash",
         tips="nondeterministic_output_order")
def hgetall(ctx, argv):
    h = _read(ctx, argv[1])
    return {} if h is None else dict(h)  # a map in RESP3, a flat array in RESP2


@command("hkeys", 2, "readonly", (1, 1, 1), group="hash", since="2.0.0",
         summary="Get all the fields in a hash", tips="nondeterministic_output_order")
def hkeys(ctx, argv):
    h = _read(ctx, argv[1])
    return [] if h is None else list(h)


@command("hvals", 2, "readonly", (1, 1, 1), group="hash", since="2.0.0",
         summary="Get all the values in a hash", tips="nondeterministic_output_order")
def hvals(ctx, argv):
    h = _read(ctx, argv[1])
    return [] if h is None else list(h.values())


# -- HRANDFIELD -------------------------------------------------------------------

def _parse_count(argv):
    """(count, withvalues) from HRANDFIELD's optional arguments, checked in Redis's order."""
    count = parse_int(argv[2])
    if count < -INT64_MAX:
        raise CommandError(COUNT_RANGE)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].lower() != b"withvalues"):
        raise CommandError(errors.SYNTAX)
    withvalues = len(argv) == 4
    if withvalues and not -HALF_LONG <= count <= HALF_LONG:
        raise CommandError(OUT_OF_RANGE)
    return count, withvalues


def _random_fields(h, count):
    """count fields: distinct for count > 0, possibly repeated for count < 0."""
    fields = list(h)
    if count < 0:
        return random.choices(fields, k=-count)
    if count >= len(fields):
        return fields  # the whole hash, in its own order
    picks = random.sample(range(len(fields)), count)
    if not h.hashtable:
        picks.sort()  # Redis samples a listpack in its stored order
    return [fields[i] for i in picks]


def _with_values(h, fields, proto):
    if proto == 3:
        return [[field, h[field]] for field in fields]
    reply = []
    for field in fields:
        reply.append(field)
        reply.append(h[field])
    return reply


@command("hrandfield", -2, "readonly", (1, 1, 1), group="hash", since="6.2.0",
         summary="Get one or multiple random fields from a hash",
         tips="nondeterministic_output")
def hrandfield(ctx, argv):
    if len(argv) == 2:
        h = _read(ctx, argv[1])
        if h is None:
            return None
        return next(islice(h, random.randrange(len(h)), None))
    count, withvalues = _parse_count(argv)
    h = _read(ctx, argv[1])
    if h is None or count == 0:
        return []
    fields = _random_fields(h, count)
    return _with_values(h, fields, ctx.proto) if withvalues else fields


# -- HSCAN ------------------------------------------------------------------------

@command("hscan", -3, "readonly", (1, 1, 1), group="hash", since="2.8.0",
         summary="Incrementally iterate hash fields and associated values",
         tips="nondeterministic_output")
def hscan(ctx, argv):
    cursor = parse_cursor(argv[2])
    key = argv[1]
    h = _read(ctx, key)
    if h is None:
        return [b"0", []]
    cursor, fields, match = step_container(ctx, argv, cursor, h, h.hashtable)
    found = []
    for field in fields:
        value = h.get(field)  # skips fields deleted since the scan's snapshot
        if value is None or (match is not None and not match(field)):
            continue
        found.append(field)
        found.append(value)
    return [b"%d" % cursor, found]
