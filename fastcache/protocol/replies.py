"""Reply value types shared by the engine and the encoder.

Handlers return plain Python values; the encoder picks the wire form for
the connection's protocol version. Plain types cover most replies:

    bytes -> bulk string     int -> integer      None -> null (bulk)
    list/tuple -> array      float -> double     dict -> map
    set/frozenset -> set

The classes below mark the cases plain types cannot express.
"""


class Simple(str):
    """A status reply: +OK."""
    __slots__ = ()


class Error(str):
    """An error reply; the text includes its prefix, e.g. 'ERR syntax error'."""
    __slots__ = ()


class Verbatim(str):
    """A RESP3 verbatim string (txt); a bulk string in RESP2."""
    __slots__ = ()


class Push(list):
    """A RESP3 out-of-band push; a plain array in RESP2."""
    __slots__ = ()


class Replies(list):
    """Several replies in a row from one command (SUBSCRIBE: one per channel).
    Inside an EXEC array they still count as one element, as in Redis."""
    __slots__ = ()


class Raw(bytes):
    """Reply bytes already encoded for the connection's protocol."""
    __slots__ = ()


class NullArray:
    """*-1 in RESP2, _ in RESP3 (e.g. a timed-out blocking pop)."""
    __slots__ = ()


class BigNumber(int):
    """A RESP3 big number; a bulk string in RESP2."""
    __slots__ = ()


# Returned by a handler whose reply will be delivered later (into a reserved slot).
DEFERRED = object()

OK = Simple("OK")
QUEUED = Simple("QUEUED")
PONG = Simple("PONG")
NULL_ARRAY = NullArray()
