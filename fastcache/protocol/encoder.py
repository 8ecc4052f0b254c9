"""Reply values -> RESP bytes, for protocol 2 or 3."""
from fastcache.protocol.replies import (
    BigNumber, Error, NullArray, Push, Raw, Replies, Simple, Verbatim,
)

_CONST = {
    "OK": b"+OK\r\n",
    "QUEUED": b"+QUEUED\r\n",
    "PONG": b"+PONG\r\n",
}
NULL2 = b"$-1\r\n"
NULL3 = b"_\r\n"
_SMALL_INTS = [b":%d\r\n" % i for i in range(-1, 1025)]


def format_double(value):
    """Redis's textual form of a double (%.17g, inf/-inf/nan)."""
    if value != value:
        return b"nan"
    if value == float("inf"):
        return b"inf"
    if value == float("-inf"):
        return b"-inf"
    return b"%.17g" % value  # keeps -0, as Redis prints it


def _bulk(v):
    return b"$%d\r\n%s\r\n" % (len(v), v)


def _int(v):
    if -1 <= v <= 1024:
        return _SMALL_INTS[v + 1]
    return b":%d\r\n" % v


def _simple(v):
    c = _CONST.get(v)
    return c if c is not None else b"+%s\r\n" % v.encode()


def _error(v):
    # Error texts carry user bytes as latin-1 (errors.shown); CR/LF would break framing.
    return b"-%s\r\n" % v.encode("latin-1", "replace").replace(b"\r", b" ").replace(b"\n", b" ")


def _str(v):
    return _bulk(v.encode())


def _raw(v):
    return v


class Encoder2:
    """RESP2."""

    def __init__(self):
        self._table = {
            bytes: _bulk, int: _int, Simple: _simple, Error: _error, str: _str,
            Raw: _raw, bool: lambda v: _int(int(v)),
            float: lambda v: _bulk(format_double(v)),
            Verbatim: _str, BigNumber: lambda v: _bulk(b"%d" % v),
            type(None): lambda v: NULL2, NullArray: lambda v: b"*-1\r\n",
            list: self._array, tuple: self._array, Push: self._array,
            set: self._array, frozenset: self._array,
            dict: self._map,
            Replies: self._replies,
        }

    def encode(self, value):
        return self._table[type(value)](value)

    def _array(self, items):
        table = self._table
        parts = [b"*%d\r\n" % len(items)]
        for v in items:
            parts.append(table[type(v)](v))
        return b"".join(parts)

    def _replies(self, items):
        table = self._table
        return b"".join(table[type(v)](v) for v in items)

    def _map(self, mapping):
        table = self._table
        parts = [b"*%d\r\n" % (2 * len(mapping))]
        for k, v in mapping.items():
            parts.append(table[type(k)](k))
            parts.append(table[type(v)](v))
        return b"".join(parts)


class Encoder3(Encoder2):
    """RESP3: adds null, double, map, set, push, verbatim, big number, boolean."""

    def __init__(self):
        super().__init__()
        self._table.update({
            type(None): lambda v: NULL3, NullArray: lambda v: NULL3,
            float: lambda v: b",%s\r\n" % format_double(v),
            bool: lambda v: b"#t\r\n" if v else b"#f\r\n",
            BigNumber: lambda v: b"(%d\r\n" % v,
            Verbatim: self._verbatim,
            Push: lambda v: self._aggregate(b">", v),
            set: lambda v: self._aggregate(b"~", v),
            frozenset: lambda v: self._aggregate(b"~", v),
        })

    def _aggregate(self, marker, items):
        table = self._table
        parts = [b"%s%d\r\n" % (marker, len(items))]
        for v in items:
            parts.append(table[type(v)](v))
        return b"".join(parts)

    def _map(self, mapping):
        table = self._table
        parts = [b"%%%d\r\n" % len(mapping)]
        for k, v in mapping.items():
            parts.append(table[type(k)](k))
            parts.append(table[type(v)](v))
        return b"".join(parts)

    @staticmethod
    def _verbatim(v):
        data = b"txt:" + v.encode()
        return b"=%d\r\n%s\r\n" % (len(data), data)


ENCODERS = {2: Encoder2(), 3: Encoder3()}


def encode(value, proto=2):
    return ENCODERS[proto].encode(value)
