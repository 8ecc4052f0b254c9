"""What each data type looks like to the generic key commands.

Values are plain Python objects, so TYPE, OBJECT ENCODING and COPY need to
know, per Python type, the Redis type name, the encoding Redis would report
and how to duplicate a value. Strings are registered here; every other
family registers its container with `register_type` when it is imported:

    register_type(MyList, "list", encoding=lambda v: "quicklist", copy=MyList.copy)
"""
import copy as _copy

from fastcache.protocol.replies import Simple

# Python type -> Redis type name ("string", "list", "set", "zset", "hash", "stream").
TYPE_NAMES = {}
# Python type -> function(value) -> encoding name, for OBJECT ENCODING.
ENCODINGS = {}
# Python type -> function(value) -> independent duplicate, for COPY.
COPIERS = {}

_REPLIES = {}  # type name -> reusable status reply

NONE = Simple("none")

# Integers Redis keeps as shared objects (OBJ_SHARED_INTEGERS) when no
# LRU/LFU eviction policy needs per-object access data.
SHARED_INTEGERS = 10000
SHARED_REFCOUNT = 2147483647

_INT_LEADING = frozenset(b"-0123456789")
EMBSTR_LIMIT = 44


def register_type(pytype, name, encoding=None, copy=None):
    """Teach TYPE/OBJECT ENCODING/COPY about values of pytype."""
    TYPE_NAMES[pytype] = name
    _REPLIES.setdefault(name, Simple(name))
    if encoding is not None:
        ENCODINGS[pytype] = encoding
    if copy is not None:
        COPIERS[pytype] = copy


def _registered(table, value):
    """table's entry for value's type, or for the nearest registered base class."""
    entry = table.get(type(value))
    if entry is None:
        for cls in type(value).__mro__[1:]:
            entry = table.get(cls)
            if entry is not None:
                break
    return entry


def type_name(value):
    """The Redis type name of value; 'none' for a missing key (None)."""
    if value is None:
        return "none"
    return _registered(TYPE_NAMES, value) or "unknown"


def type_reply(value):
    """TYPE's status reply for value."""
    if value is None:
        return NONE
    name = type_name(value)
    reply = _REPLIES.get(name)
    return reply if reply is not None else Simple(name)


def string_as_int(value):
    """The int64 value of a string Redis would store int-encoded, else None."""
    if not value or len(value) > 20 or value[0] not in _INT_LEADING:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    if b"%d" % number != value or not -(1 << 63) <= number < (1 << 63):
        return None
    return number


def string_encoding(value):
    if string_as_int(value) is not None:
        return "int"
    return "embstr" if len(value) <= EMBSTR_LIMIT else "raw"


def encoding_of(value):
    """OBJECT ENCODING's answer for value."""
    fn = _registered(ENCODINGS, value)
    if fn is None:
        return "raw"
    return fn(value)


def refcount_of(value):
    """OBJECT REFCOUNT: Redis shares the objects of small non-negative integers."""
    if type(value) is bytes:
        number = string_as_int(value)
        if number is not None and 0 <= number < SHARED_INTEGERS:
            return SHARED_REFCOUNT
    return 1


def copy_value(value):
    """An independent duplicate of value (COPY must not alias containers)."""
    fn = _registered(COPIERS, value)
    if fn is None:
        return _copy.deepcopy(value)
    return fn(value)


def _same(value):
    return value


register_type(bytes, "string", encoding=string_encoding, copy=_same)
