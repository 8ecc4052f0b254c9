"""The embedded Cache's two translations at the redis-py boundary.

- Arguments: redis-py method arguments -> the argv of bytes the server would
  receive, as redis-py's (hiredis) command packer would send them.
- Replies: engine reply values -> exactly what redis-py's hiredis parser
  would hand to the response callbacks after reading the encoder's bytes for
  them: bytes (or str with decode_responses), ints, lists, dicts (RESP3),
  floats (RESP3), None, and exception instances for errors.

Keeping these exact is what lets the Cache reuse redis-py's response
callbacks and give the same return values as redis.Redis.
"""
import hiredis
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError, DataError

from fastcache.protocol.encoder import format_double
from fastcache.protocol.replies import BigNumber, Error, NullArray, Push, Raw, Simple, Verbatim

# -- arguments -------------------------------------------------------------------

BAD_ARGUMENT = "A tuple item must be str, int, float or bytes."


def encode_arg(value):
    """One argument as bytes, like hiredis.pack_command: str as UTF-8, int as
    digits, float as repr; bool and other types are refused."""
    kind = type(value)
    if kind is bytes:
        return value
    if kind is str:
        return value.encode()
    if kind is int:
        return b"%d" % value
    if kind is float:
        return repr(value).encode()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return str.encode(value)
    if isinstance(value, bytes):
        return bytes(value)
    raise DataError(BAD_ARGUMENT)


def encode_command(args):
    """redis-py's execute_command arguments -> argv. A first argument with
    spaces ("CONFIG GET") is split into words, as redis-py does."""
    name = args[0]
    if type(name) is str:
        head = name.encode().split()
    else:
        name = encode_arg(name)
        head = name.split() if b" " in name else [name]
    head.extend(map(encode_arg, args[1:]))
    return head


# -- replies ---------------------------------------------------------------------

def error_text(message):
    """The text hiredis gives for an error reply the encoder wrote for message
    (user bytes travel as latin-1; CR/LF become spaces; UTF-8 with replace)."""
    raw = message.encode("latin-1", "replace").replace(b"\r", b" ").replace(b"\n", b" ")
    return raw.decode("utf-8", "replace")


def to_exception(error):
    """The exception redis-py builds for an Error reply (ResponseError, ...)."""
    return BaseParser.parse_error(error_text(error))


def raise_if_failed(value):
    """What redis-py's connection raises instead of returning: an error reply,
    or a connection error first in an array."""
    if isinstance(value, Exception):
        raise value
    if type(value) is list and value and isinstance(value[0], ConnectionError):
        raise value[0]
    return value


class ReplyReader:
    """Engine replies -> hiredis values for one protocol and decoding setting."""

    def __init__(self, proto, decode, encoding="utf-8", errors="strict"):
        self.proto = proto
        self.encoding = encoding if decode else None
        self.errors = errors
        string = self._string if decode else _same
        self._bulk = string
        table = {
            bytes: string, int: _same, type(None): _same, NullArray: _none,
            Simple: self._text, str: self._text, Verbatim: self._text,
            BigNumber: lambda v: string(b"%d" % v),
            Error: to_exception, Raw: self._raw,
            list: self._array, tuple: self._array, Push: self._array,
            set: self._array, frozenset: self._array,
        }
        if proto == 3:
            table.update({float: _same, bool: _same, dict: self._map})
        else:
            table.update({float: lambda v: string(format_double(v)), bool: int,
                          dict: self._flat_map})
        self._table = table

    def __call__(self, value):
        return self._table[type(value)](value)

    def _string(self, value):
        return value.decode(self.encoding, self.errors)

    def _text(self, value):
        return self._bulk(value.encode())

    def _array(self, items):
        table = self._table
        return [table[type(v)](v) for v in items]

    def _map(self, mapping):
        table = self._table
        return {table[type(k)](k): table[type(v)](v) for k, v in mapping.items()}

    def _flat_map(self, mapping):
        table = self._table
        out = []
        for k, v in mapping.items():
            out.append(table[type(k)](k))
            out.append(table[type(v)](v))
        return out

    def _raw(self, data):
        """Reply bytes already encoded (COMMAND, DEBUG PROTOCOL): parsed by hiredis
        itself, skipping push messages as redis-py does."""
        options = {"replyError": BaseParser.parse_error, "errors": self.errors}
        if self.encoding is not None:
            options["encoding"] = self.encoding
        reader = hiredis.Reader(**options)
        reader.feed(data)
        while True:
            value = reader.gets()
            if not isinstance(value, hiredis.PushNotification):
                return value


def _same(value):
    return value


def _none(value):
    return None
