"""COMMAND and its subcommands, generated from the command table.

Everything here is derived from the registry entries (arity, flags, key
positions, group, since, summary, acl, tips), so a new command shows up in
COMMAND INFO / DOCS / LIST / GETKEYS without further work.

COMMAND itself runs without arguments (the full table), which a registry
container cannot do, so its subcommands live in a table of this module and
COMMAND dispatches them itself.
"""
from fastcache.engine import errors
from fastcache.engine.errors import CommandError
from fastcache.engine.glob import stringmatch
from fastcache.engine.keys import help_reply
from fastcache.engine.registry import Command, all_commands, command, lookup
from fastcache.protocol.encoder import ENCODERS
from fastcache.protocol.replies import Raw, Simple

# Redis lists command flags in this order; the flags it hides (may_replicate,
# sentinel, only_sentinel, protected) are not listed.
FLAG_ORDER = ("write", "readonly", "denyoom", "module", "admin", "pubsub", "noscript",
              "blocking", "loading", "stale", "skip_monitor", "skip_slowlog", "asking", "fast",
              "no_auth", "no_mandatory_keys", "no_async_loading", "no_multi", "movablekeys",
              "allow_busy")

# ACL categories in Redis's order (ACL CAT).
CATEGORIES = ("keyspace", "read", "write", "set", "sortedset", "list", "hash", "string", "bitmap",
              "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking",
              "dangerous", "connection", "transaction", "scripting")
_CATEGORY_RANK = {"@" + name: i for i, name in enumerate(CATEGORIES)}

# The category a command's group implies when its entry names none.
GROUP_CATEGORY = {
    "generic": "@keyspace", "string": "@string", "list": "@list", "set": "@set",
    "sorted-set": "@sortedset", "sorted_set": "@sortedset", "zset": "@sortedset",
    "hash": "@hash", "bitmap": "@bitmap", "hyperloglog": "@hyperloglog", "geo": "@geo",
    "stream": "@stream", "connection": "@connection", "transactions": "@transaction",
    "scripting": "@scripting",
}

NO_KEYS = "ERR The command has no key arguments"
BAD_ARGS = "ERR Invalid arguments specified for command"
BAD_ARG_COUNT = "ERR Invalid number of arguments specified for command"
BAD_COMMAND = "ERR Invalid command specified"


class _Set(list):
    """An ordered RESP3 set: Redis sends these lists as sets, in its own order."""
    __slots__ = ()


def _encode(value, proto):
    """The protocol encoder's output, plus _Set (array in RESP2, set in RESP3)."""
    kind = type(value)
    if kind is list or kind is _Set:
        marker = b"~" if kind is _Set and proto == 3 else b"*"
        return b"%s%d\r\n%s" % (marker, len(value), b"".join(_encode(v, proto) for v in value))
    if kind is dict:
        head = b"%%%d\r\n" % len(value) if proto == 3 else b"*%d\r\n" % (2 * len(value))
        return head + b"".join(_encode(k, proto) + _encode(v, proto) for k, v in value.items())
    return ENCODERS[proto].encode(value)


# -- what the table entries say, in Redis's terms --------------------------------

def subcommands(cmd):
    """cmd's subcommands, once each, in registration order."""
    table = _SUBCOMMANDS if cmd is _COMMAND else cmd.subcommands
    if not table:
        return []
    return list({sub.name: sub for sub in table.values()}.values())


def fullname(cmd):
    return cmd.fullname.lower()


def flags(cmd):
    shown = set(cmd.flags)
    if cmd.get_keys is not None:
        shown.add("movablekeys")
    return [f for f in FLAG_ORDER if f in shown]


def categories(cmd):
    """ACL categories: the entry's own, plus those Redis implies from the flags."""
    cats = set(cmd.acl.split())
    if not cats and cmd.subcommands is None:
        group_cat = GROUP_CATEGORY.get(cmd.group)
        if group_cat:
            cats.add(group_cat)
    f = cmd.flags
    if "write" in f:
        cats.add("@write")
    if "readonly" in f and "@scripting" not in cats:
        cats.add("@read")
    if "admin" in f:
        cats.update(("@admin", "@dangerous"))
    if "pubsub" in f:
        cats.add("@pubsub")
    if "fast" in f:
        cats.add("@fast")
    if "blocking" in f:
        cats.add("@blocking")
    if "@fast" not in cats:
        cats.add("@slow")
    return sorted(cats, key=lambda c: _CATEGORY_RANK.get(c, len(CATEGORIES)))


def has_keys(cmd):
    return bool(cmd.first_key) or cmd.get_keys is not None


def key_flags(cmd):
    """Access flags of the keys (an approximation of Redis's per-command key specs)."""
    if "write" in cmd.flags:
        return ["RW", "update"]
    if "readonly" in cmd.flags:
        return ["RO", "access"]
    return ["RO"]


def key_specs(cmd):
    if not cmd.first_key:
        return []
    last = cmd.last_key if cmd.last_key < 0 else cmd.last_key - cmd.first_key
    return [{
        b"flags": _Set(Simple(f) for f in key_flags(cmd)),
        b"begin_search": {b"type": b"index", b"spec": {b"index": cmd.first_key}},
        b"find_keys": {b"type": b"range",
                       b"spec": {b"lastkey": last, b"keystep": cmd.step, b"limit": 0}},
    }]


def info(cmd):
    """One COMMAND INFO entry."""
    return [
        fullname(cmd).encode(),
        cmd.arity,
        _Set(Simple(f) for f in flags(cmd)),
        cmd.first_key, cmd.last_key, cmd.step,
        _Set(Simple(c) for c in categories(cmd)),
        _Set(t.encode() for t in cmd.tips.split()),
        _Set(key_specs(cmd)),
        _Set(info(sub) for sub in subcommands(cmd)),
    ]


def docs(cmd):
    """One COMMAND DOCS entry (argument descriptions are not in the table)."""
    out = {}
    if cmd.summary:
        out[b"summary"] = cmd.summary.encode()
    out[b"since"] = cmd.since.encode()
    out[b"group"] = cmd.group.encode()
    subs = subcommands(cmd)
    if subs:
        out[b"subcommands"] = {fullname(sub).encode(): docs(sub) for sub in subs}
    return out


def find(name):
    """The command or subcommand called name ('get', 'config|set'), or None."""
    parts = name.lower().split(b"|")
    if len(parts) > 2:
        return None
    cmd = lookup(parts[:1])
    if cmd is None or len(parts) == 1:
        return cmd
    for sub in subcommands(cmd):
        if sub.name.encode() == parts[1]:
            return sub
    return None


def every_command():
    """Every command and subcommand."""
    out = []
    for cmd in all_commands():
        out.append(cmd)
        out.extend(subcommands(cmd))
    return out


# -- COMMAND -----------------------------------------------------------------------

@command("command", -1, "loading stale", group="server", since="2.8.13",
         summary="Get array of Redis command details", acl="@slow @connection",
         tips="nondeterministic_output_order")
def command_(ctx, argv):
    if len(argv) == 1:
        return Raw(_encode([info(cmd) for cmd in all_commands()], ctx.proto))
    sub = _SUBCOMMANDS.get(argv[1].lower())
    if sub is None:
        raise CommandError(errors.unknown_subcommand(argv[1], "command"))
    sub.check_arity(argv)
    return sub.handler(ctx, argv)


_COMMAND = lookup([b"command"])
_SUBCOMMANDS = {}


def _subcommand(name, arity, since, summary, tips=""):
    def register(handler):
        sub = Command(name, arity, "loading stale", 0, 0, 0, handler, None, None, None, None,
                      "server", since, summary, "@slow @connection", tips)
        sub.parent = _COMMAND
        _SUBCOMMANDS[name.encode()] = sub
        return handler
    return register


@_subcommand("count", 2, "2.8.13", "Get total number of Redis commands")
def command_count(ctx, argv):
    return len(all_commands())


@_subcommand("info", -2, "2.8.13",
             "Get array of specific Redis command details, or all when no argument is given.",
             tips="nondeterministic_output_order")
def command_info(ctx, argv):
    if len(argv) == 2:
        found = all_commands()
    else:
        found = [find(name) for name in argv[2:]]
    return Raw(_encode([None if cmd is None else info(cmd) for cmd in found], ctx.proto))


@_subcommand("docs", -2, "7.0.0", "Get array of specific Redis command documentation",
             tips="nondeterministic_output_order")
def command_docs(ctx, argv):
    if len(argv) == 2:
        found = all_commands()
    else:
        found = [cmd for cmd in map(find, argv[2:]) if cmd is not None]
    return {fullname(cmd).encode(): docs(cmd) for cmd in found}


@_subcommand("list", -2, "7.0.0", "Get an array of Redis command names",
             tips="nondeterministic_output_order")
def command_list(ctx, argv):
    if len(argv) == 2:
        keep = None
    elif len(argv) == 5 and argv[2].lower() == b"filterby":
        keep = _list_filter(argv[3].lower(), argv[4])
    else:
        raise CommandError(errors.SYNTAX)
    return [fullname(cmd).encode() for cmd in every_command() if keep is None or keep(cmd)]


def _list_filter(kind, value):
    if kind == b"module":
        return lambda cmd: False  # no modules
    if kind == b"aclcat":
        category = "@" + value.decode("utf-8", "replace").lower()
        return lambda cmd: category in categories(cmd)
    if kind == b"pattern":
        pattern = value.lower()
        return lambda cmd: stringmatch(pattern, fullname(cmd).encode())
    raise CommandError(errors.SYNTAX)


def _keys_of(argv):
    """(command, key positions in argv) for COMMAND GETKEYS[ANDFLAGS] <argv...>."""
    cmd = lookup(argv)
    if cmd is not None and len(argv) > 1 and subcommands(cmd):
        cmd = find(argv[0] + b"|" + argv[1])
    if cmd is None:
        raise CommandError(BAD_COMMAND)
    if not has_keys(cmd):
        raise CommandError(NO_KEYS)
    n = len(argv)
    if (cmd.arity > 0 and n != cmd.arity) or n < -cmd.arity:
        raise CommandError(BAD_ARG_COUNT)
    positions = [i for i in cmd.key_indexes(argv) if i < n]
    if not positions and "no_mandatory_keys" not in cmd.flags:
        raise CommandError(BAD_ARGS)
    return cmd, positions


@_subcommand("getkeys", -4, "2.8.13", "Extract keys given a full Redis command")
def command_getkeys(ctx, argv):
    args = argv[2:]
    cmd, positions = _keys_of(args)
    return [args[i] for i in positions]


@_subcommand("getkeysandflags", -4, "7.0.0",
             "Extract keys and access flags given a full Redis command")
def command_getkeysandflags(ctx, argv):
    args = argv[2:]
    cmd, positions = _keys_of(args)
    access = _Set(Simple(f) for f in key_flags(cmd))
    return Raw(_encode([[args[i], access] for i in positions], ctx.proto))


_HELP = (
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
)


@_subcommand("help", 2, "5.0.0", "Show helpful text about the different subcommands")
def command_help(ctx, argv):
    return help_reply("COMMAND", _HELP)
