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


def unknown_command(argv):
    args = " ".join("'%s'" % a.decode("utf-8", "replace")[:128] for a in argv[1:])
    name = argv[0].decode("utf-8", "replace")[:128]
    return "ERR unknown command '%s', with args beginning with: %s" % (name, args + " " if args else "")


def unknown_subcommand(sub, name):
    return ("ERR unknown subcommand '%s'. Try %s HELP."
            % (sub.decode("utf-8", "replace")[:128], name.upper()))
