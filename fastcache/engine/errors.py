"""Command errors and Redis's exact error texts."""


class CommandError(Exception):
    """Raised by a handler; the message is the full error text, prefix included."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


SYNTAX = "ERR syntax error"
NOT_INT = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NO_SUCH_KEY = "ERR no such key"
OVERFLOW = "ERR increment or decrement would overflow"
DB_INDEX = "ERR DB index is out of range"
EXPIRE_TIME = "ERR invalid expire time in '%s' command"
CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"


def wrong_arity(name):
    return "ERR wrong number of arguments for '%s' command" % name


def shown(raw):
    """User bytes inside an error text. Latin-1 maps each byte to one character
    and the encoder maps it back, so clients see exactly the bytes they sent."""
    return raw.decode("latin-1")


def _c_string(raw, limit):
    # Redis formats these with %.*s: C strings stop at a NUL byte.
    end = raw.find(b"\0")
    return raw[:limit if end < 0 else min(end, limit)]


def unknown_command(argv):
    args = b""
    for arg in argv[1:]:
        if len(args) >= 128:
            break
        args += b"'%s' " % _c_string(arg, 128 - len(args))
    return "ERR unknown command '%s', with args beginning with: %s" % (
        shown(_c_string(argv[0], 128)), shown(args))


def unknown_subcommand(sub, name):
    return "ERR unknown subcommand '%s'. Try %s HELP." % (shown(_c_string(sub, 128)), name.upper())
