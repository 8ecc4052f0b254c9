"""The command table: one entry per command drives arity checks, routing,
COMMAND replies and dispatch. A new command is a handler plus a `@command`."""
from fastcache.engine import errors
from fastcache.engine.errors import CommandError

# Routing kinds.
KEYS = "keys"     # run where the keys live
LOCAL = "local"   # run on the worker the client is connected to
ALL = "all"       # fan out to every shard, merge the replies

# How a command whose keys span shards is split (see server/router.py).
SPLIT_SUM = "sum"          # DEL, EXISTS: add the integer replies
SPLIT_ORDERED = "ordered"  # MGET: put each shard's array back in key order
SPLIT_OK = "ok"            # MSET: OK once every part said OK


class Command:
    __slots__ = ("name", "arity", "flags", "first_key", "last_key", "step",
                 "handler", "get_keys", "route", "split", "merge", "group",
                 "since", "summary", "subcommands", "parent", "acl", "tips", "fast", "recorded")

    def __init__(self, name, arity, flags, first_key, last_key, step, handler,
                 get_keys, route, split, merge, group, since, summary, acl, tips):
        self.name = name
        self.arity = arity
        self.flags = frozenset(flags.split())
        self.fast = "fast" in self.flags
        # Its changes become mutation records (a blocking command's are those of
        # the non-blocking form it runs; see engine/records.py).
        self.recorded = "write" in self.flags and "blocking" not in self.flags
        self.first_key, self.last_key, self.step = first_key, last_key, step
        self.handler = handler
        self.get_keys = get_keys
        self.route = route or (KEYS if first_key or get_keys else LOCAL)
        self.split = split
        self.merge = merge
        self.group = group
        self.since = since
        self.summary = summary
        self.subcommands = None
        self.parent = None
        self.acl = acl
        self.tips = tips

    @property
    def fullname(self):
        return "%s|%s" % (self.parent.name, self.name) if self.parent else self.name

    def key_indexes(self, argv):
        """Positions of the keys in argv (for routing and COMMAND GETKEYS)."""
        if self.get_keys is not None:
            return self.get_keys(argv)
        if not self.first_key:
            return []
        last = self.last_key
        if last < 0:
            last = len(argv) + last
        return list(range(self.first_key, last + 1, self.step))

    def check_arity(self, argv):
        n = len(argv)
        a = self.arity
        if (a > 0 and n != a) or n < -a:
            raise CommandError(errors.wrong_arity(self.fullname))


TABLE = {}


def _register(table, cmd):
    table[cmd.name.encode()] = cmd
    table[cmd.name.upper().encode()] = cmd


def command(name, arity, flags="", keys=(0, 0, 0), *, get_keys=None, route=None,
            split=None, merge=None, group="generic", since="1.0.0", summary="",
            acl="", tips="", parent=None):
    """Register the decorated handler(ctx, argv) as a command (or subcommand)."""

    def decorate(handler):
        cmd = Command(name, arity, flags, keys[0], keys[1], keys[2], handler,
                      get_keys, route, split, merge, group, since, summary, acl, tips)
        if parent is None:
            _register(TABLE, cmd)
        else:
            owner = TABLE[parent.encode()]
            if owner.subcommands is None:
                owner.subcommands = {}
            cmd.parent = owner
            _register(owner.subcommands, cmd)
        return handler

    return decorate


def container(name, arity, flags="", group="generic", since="1.0.0", summary=""):
    """Register a command made of subcommands (CONFIG, CLIENT, OBJECT, ...)."""

    def dispatch(ctx, argv):
        sub = resolve(argv)
        return sub.handler(ctx, argv)

    command(name, arity, flags, group=group, since=since, summary=summary)(dispatch)


def lookup(argv):
    """The Command for argv, or None if unknown (subcommands not resolved)."""
    name = argv[0]
    cmd = TABLE.get(name)
    if cmd is None:
        cmd = TABLE.get(name.lower())
    return cmd


def resolve(argv):
    """The Command (or subcommand) that will run argv; arity checked.

    Raises CommandError with Redis's text for unknown commands and subcommands
    and for wrong arity."""
    cmd = lookup(argv)
    if cmd is None:
        raise CommandError(errors.unknown_command(argv))
    if cmd.subcommands is not None:
        if len(argv) < 2:
            raise CommandError(errors.wrong_arity(cmd.name))
        sub = cmd.subcommands.get(argv[1]) or cmd.subcommands.get(argv[1].lower())
        if sub is None:
            raise CommandError(errors.unknown_subcommand(argv[1], cmd.name))
        cmd = sub
    cmd.check_arity(argv)
    return cmd


def all_commands():
    """Every top-level command once."""
    seen = {}
    for cmd in TABLE.values():
        seen[cmd.name] = cmd
    return list(seen.values())
