"""Keyspace notifications: event classes and their flag letters.

A handler that changes a key calls ks.notify(CLASS, "event", db, key). It
costs one attribute test while notify-keyspace-events is empty; otherwise
the keyspace hands the event to its publisher (set by the server), which
sends __keyspace@<db>__:<key> and __keyevent@<db>__:<event> messages.
"""
KEYSPACE = 1 << 0   # K
KEYEVENT = 1 << 1   # E
GENERIC = 1 << 2    # g
STRING = 1 << 3     # $
LIST = 1 << 4       # l
SET = 1 << 5        # s
HASH = 1 << 6       # h
ZSET = 1 << 7       # z
EXPIRED = 1 << 8    # x
EVICTED = 1 << 9    # e
STREAM = 1 << 10    # t
KEY_MISS = 1 << 11  # m
MODULE = 1 << 13    # d
NEW = 1 << 14       # n
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE

# Letters in the order Redis prints them.
_TYPE_LETTERS = [("g", GENERIC), ("$", STRING), ("l", LIST), ("s", SET), ("h", HASH),
                 ("z", ZSET), ("x", EXPIRED), ("e", EVICTED), ("t", STREAM), ("d", MODULE),
                 ("n", NEW)]
_LETTERS = dict(_TYPE_LETTERS, A=ALL, K=KEYSPACE, E=KEYEVENT, m=KEY_MISS)
INVALID = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."


def parse_flags(text):
    flags = 0
    for ch in text:
        bit = _LETTERS.get(ch)
        if bit is None:
            raise ValueError(INVALID)
        flags |= bit
    return flags


def render_flags(flags):
    if flags & ALL == ALL:
        out = "A"
    else:
        out = "".join(ch for ch, bit in _TYPE_LETTERS if flags & bit)
    if flags & KEYSPACE:
        out += "K"
    if flags & KEYEVENT:
        out += "E"
    if flags & KEY_MISS:
        out += "m"
    return out
