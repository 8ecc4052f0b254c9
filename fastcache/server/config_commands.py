"""CONFIG GET / SET / REWRITE / HELP, with Redis's replies and error texts.

The keys are fastcache.config.SCHEMA's. CONFIG SET fans out so every worker
applies the change to its own copy of the config; each validates every pair
before applying any, so a rejected command changes nothing anywhere. The
connection and the worker read their settings from the config on use, so
most changes take effect at once; the few cached elsewhere are pushed by the
hooks in _APPLY. (CONFIG RESETSTAT lives with INFO, whose counters it resets.)
"""
import json
import os
import re
import tomllib

from fastcache import log
from fastcache.config import SCHEMA
from fastcache.engine import errors
from fastcache.engine.errors import CommandError
from fastcache.engine.glob import stringmatch
from fastcache.engine.registry import ALL, command, container
from fastcache.protocol.replies import OK
from fastcache.server.admin import help_subcommand, server_of

SERVER = "server"
FLAGS = "admin noscript loading stale"
CONFIG_ACL = "@admin @slow @dangerous"

# Redis settings fastcache has no switch for, with the value that describes
# how fastcache behaves; CONFIG SET accepts only that value.
COMPAT = {
    "maxmemory": "0",
    "maxmemory-policy": "noeviction",
    "cluster-enabled": "no",
}

# Where Redis words a rejection differently from fastcache.config's parsers.
_REDIS_PROBLEM = {
    "loglevel": "argument(s) must be one of the following: debug, verbose, notice, warning",
    "save": "Invalid save parameters",
}
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)\Z")
_MEMORY = re.compile(r"[0-9]+(b|k|kb|m|mb|g|gb)?\Z", re.I)
NOT_INTEGER = "argument couldn't be parsed into an integer"
NOT_MEMORY = "argument must be a memory value"
NO_FILE = "ERR The server is running without a config file"


def names():
    return list(SCHEMA) + [name for name in COMPAT if name not in SCHEMA]


def current_value(config, name):
    """CONFIG GET's text for a known key."""
    if name in SCHEMA:
        if name == "dir":
            return os.path.abspath(config["dir"])
        return config.render(name)
    return COMPAT[name]


def listening_port(worker):
    for sock in worker.listeners:
        return sock.getsockname()[1]
    return worker.config["port"]


container("config", -2, group=SERVER, since="2.0.0",
          summary="A container for server configuration commands")


@command("get", -3, FLAGS, parent="config", group=SERVER, since="2.0.0",
         summary="Get the values of configuration parameters", acl=CONFIG_ACL)
def config_get(ctx, argv):
    worker = server_of(ctx, "CONFIG")
    config = worker.config
    known = names()
    found = {}
    for raw in argv[2:]:
        if not any(c in raw for c in b"[*?"):
            name = raw.decode("utf-8", "replace").lower()
            if raw not in found and name in known:
                found[raw] = name
            continue
        pattern = raw.lower()
        taken = set(found.values())
        for name in known:
            if name not in taken and stringmatch(pattern, name.encode()):
                found[name.encode()] = name
    out = {}
    for shown, name in found.items():
        value = listening_port(worker) if name == "port" else current_value(config, name)
        out[shown] = str(value).encode()
    return out


# -- CONFIG SET --------------------------------------------------------------------

def _kind(opt):
    """Which fastcache.config parser factory built opt's parser ('integer', 'memory', ...)."""
    return getattr(opt.parse, "__qualname__", "").split(".")[0]


def parse_value(name, text):
    """The parsed value of text for key name; ValueError carries Redis's problem text."""
    if name not in SCHEMA:
        if text.lower() != COMPAT[name].lower():
            raise ValueError("fastcache supports only '%s'" % COMPAT[name])
        return None
    opt = SCHEMA[name]
    kind = _kind(opt)
    # Redis is stricter than the config file parsers: no spaces, signs or fractions.
    if kind == "integer" and not _INTEGER.match(text):
        raise ValueError(NOT_INTEGER)
    if kind == "memory" and not _MEMORY.match(text):
        raise ValueError(NOT_MEMORY)
    if kind in ("yes_no", "one_of") and text != text.strip():
        text = ""  # Redis does not trim: let the parser reject it with its own words
    try:
        return opt.parse(text)
    except ValueError as exc:
        raise ValueError(_REDIS_PROBLEM.get(name, str(exc))) from None


def _set_failed(name, problem):
    return CommandError("ERR CONFIG SET failed (possibly related to argument '%s') - %s"
                        % (name, problem))


def validate(argv):
    """[(name, text)] for CONFIG SET's pairs, or CommandError as Redis reports it."""
    if len(argv) % 2:
        raise CommandError(errors.SYNTAX)
    known = set(names())
    unknown = problem = None
    pairs = []
    for i in range(2, len(argv), 2):
        typed = errors.shown(argv[i])
        name = typed.lower()
        if name not in known:
            if unknown is None:
                unknown = typed
            continue
        if unknown is not None or problem is not None:
            continue
        if name in SCHEMA and not SCHEMA[name].mutable:
            problem = (typed, "can't set immutable config")
        if any(name == seen for seen, _ in pairs):
            problem = (typed, "duplicate parameter")
        pairs.append((name, argv[i + 1].decode("utf-8", "replace")))
    if unknown is not None:
        raise CommandError("ERR Unknown option or number of arguments for CONFIG SET - '%s'"
                           % unknown)
    if problem is not None:
        raise _set_failed(*problem)
    for name, text in pairs:
        try:
            parse_value(name, text)
        except ValueError as exc:
            raise _set_failed(name, exc) from None
    return pairs


def _apply_hz(worker, config):
    # Like Redis, the stored value is clamped to what the server can run at.
    config.set("hz", str(min(max(config["hz"], 1), 500)))


def _apply_loglevel(worker, config):
    log.configure(config, role="S%d" % worker.index)


def _apply_limits(worker, config):
    for conn in worker.clients.values():
        conn.parser.max_bulk_len = config["proto-max-bulk-len"]
        conn.parser.max_query_buffer = config["client-query-buffer-limit"]


def _apply_persistence(worker, config):
    """appendonly, appendfsync and the save rules take effect at once, as in Redis."""
    durability = worker.durability
    if durability is None:
        return
    if config["appendonly"] and durability.wal is None:
        try:
            durability.enable_wal()
        except OSError as exc:
            config.set("appendonly", "no")
            raise _set_failed("appendonly", exc.strerror) from None
        # Redis rewrites the AOF at once: the snapshot plus the WAL after it
        # then hold everything. Until the snapshot is on disk, a crash replays
        # the WAL over the previous snapshot.
        if durability.child is not None or worker.lock is not None:
            durability.scheduled = "aof"
        else:
            durability.bgsave("aof")
    elif not config["appendonly"] and durability.wal is not None:
        durability.disable_wal()
    if durability.wal is not None:
        durability.wal.set_policy(config["appendfsync"])
    durability.refresh_refusal()


_APPLY = {
    "hz": _apply_hz,
    "appendonly": _apply_persistence,
    "appendfsync": _apply_persistence,
    "save": _apply_persistence,
    "stop-writes-on-bgsave-error": _apply_persistence,
    "loglevel": _apply_loglevel,
    "proto-max-bulk-len": _apply_limits,
    "client-query-buffer-limit": _apply_limits,
}


@command("set", -4, FLAGS, parent="config", route=ALL, group=SERVER, since="2.0.0",
         summary="Set configuration parameters to the given values", acl=CONFIG_ACL,
         tips="request_policy:all_nodes response_policy:all_succeeded")
def config_set(ctx, argv):
    worker = server_of(ctx, "CONFIG")
    config = worker.config
    pairs = validate(argv)
    for name, text in pairs:
        if name in SCHEMA:
            config.set(name, text)
    for hook in {_APPLY[name] for name, _ in pairs if name in _APPLY}:
        hook(worker, config)
    worker.apply_config()
    return OK


# -- CONFIG REWRITE ----------------------------------------------------------------

def _toml(config, name):
    value = config[name]
    if type(value) is int:
        return str(value)
    return json.dumps(config.render(name))  # a JSON string is a valid TOML basic string


def rewrite(path, config):
    """Write the running settings into the TOML file: lines of keys it sets are
    replaced in place, other non-default settings are appended; comments stay."""
    with open(path, "rb") as f:
        in_file = tomllib.load(f)
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    wanted = [name for name, opt in SCHEMA.items()
              if name in in_file or config[name] != opt.default]
    for name in wanted:
        line = "%s = %s" % (name, _toml(config, name))
        assignment = re.compile(r"\s*%s\s*=" % re.escape(name))
        for i, old in enumerate(lines):
            if assignment.match(old):
                lines[i] = line
                break
        else:
            lines.append(line)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


@command("rewrite", 2, FLAGS, parent="config", group=SERVER, since="2.8.0",
         summary="Rewrite the configuration file with the in memory configuration",
         acl=CONFIG_ACL)
def config_rewrite(ctx, argv):
    config = server_of(ctx, "CONFIG").config
    if config.source is None:
        raise CommandError(NO_FILE)
    try:
        rewrite(config.source, config)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problem = getattr(exc, "strerror", None) or exc
        raise CommandError("ERR Rewriting config file: %s" % problem) from None
    return OK


_HELP = (
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
)

help_subcommand("config", _HELP, since="5.0.0")
