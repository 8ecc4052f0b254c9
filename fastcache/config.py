"""One Config object: defaults < TOML file < FASTCACHE_* environment < flags.

Every key is declared once in SCHEMA with its parser, default and whether
CONFIG SET may change it at run time. Values are stored parsed (ints, bools,
lists); `render` gives the text CONFIG GET shows, as Redis prints it.
"""
import fnmatch
import os
import tomllib

from fastcache.engine import notify


class ConfigError(Exception):
    """A bad key or value; str() is the one-line message for the user."""

    def __init__(self, key, problem):
        super().__init__("%s: %s" % (key, problem))
        self.key = key
        self.problem = problem


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2,
          "g": 1000 ** 3, "gb": 1024 ** 3}


def _words(text):
    return text.split() if isinstance(text, str) else [str(w) for w in text]


class Option:
    """One config key: how to parse, validate and render it."""

    def __init__(self, name, default, parse, render=str, mutable=True):
        self.name = name
        self.parse = parse
        self.render = render
        self.mutable = mutable
        self.default = parse(default)


def integer(low, high):
    def parse(value):
        if isinstance(value, bool):
            raise ValueError("argument couldn't be parsed into an integer")
        try:
            n = int(str(value).strip())
        except ValueError:
            raise ValueError("argument couldn't be parsed into an integer") from None
        if not low <= n <= high:
            raise ValueError("argument must be between %d and %d inclusive" % (low, high))
        return n
    return parse


def memory(low, high):
    def parse(value):
        text = str(value).strip().lower()
        digits = text.rstrip("kmgb")
        unit = text[len(digits):]
        if unit not in _UNITS or not digits.lstrip("-").isdigit():
            raise ValueError("argument must be a memory value")
        n = int(digits) * _UNITS[unit]
        if not low <= n <= high:
            raise ValueError("argument must be between %d and %d inclusive" % (low, high))
        return n
    return parse


def yes_no(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("yes", "no"):
        raise ValueError("argument must be 'yes' or 'no'")
    return text == "yes"


def render_bool(value):
    return "yes" if value else "no"


def one_of(*choices):
    def parse(value):
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError("argument(s) must be one of the following: %s" % ", ".join(choices))
        return text
    return parse


def text(value):
    return str(value)


def addresses(value):
    words = _words(value)
    if not words:
        raise ValueError("at least one address is required")
    return words


def save_rules(value):
    """'3600 1 300 100' (or a TOML list) -> [(seconds, changes), ...]; '' disables."""
    words = _words(value)
    if len(words) % 2:
        raise ValueError("save rules come in <seconds> <changes> pairs")
    try:
        nums = [int(w) for w in words]
    except ValueError:
        raise ValueError("save rules must be integers") from None
    if any(n < 0 for n in nums):
        raise ValueError("save rules must not be negative")
    return list(zip(nums[::2], nums[1::2]))


def render_save(rules):
    return " ".join("%d %d" % pair for pair in rules)


_OUTPUT_CLASSES = {"normal": "normal", "slave": "replica", "replica": "replica",
                   "pubsub": "pubsub"}


def output_limits(value):
    """client-output-buffer-limit: '<class> <hard> <soft> <seconds>' groups,
    e.g. 'pubsub 32mb 8mb 60'. Classes not given keep their current limits."""
    words = _words(value)
    if len(words) % 4:
        raise ValueError("wrong number of arguments")
    limits = {}
    size = memory(0, LLONG_MAX)
    for i in range(0, len(words), 4):
        cls = _OUTPUT_CLASSES.get(words[i].lower())
        if cls is None:
            raise ValueError("invalid client class '%s'" % words[i])
        try:
            seconds = int(words[i + 3])
        except ValueError:
            raise ValueError("invalid soft limit seconds") from None
        limits[cls] = (size(words[i + 1]), size(words[i + 2]), seconds)
    return limits


def render_output_limits(limits):
    shown = {"normal": "normal", "replica": "slave", "pubsub": "pubsub"}
    return " ".join("%s %d %d %d" % ((shown[name],) + limits[name]) for name in shown)


def replica_of(value):
    """'<host> <port>' of the primary to replicate, or '' for none."""
    words = _words(value)
    if not words:
        return ""
    if len(words) != 2:
        raise ValueError("expected '<host> <port>'")
    integer(0, 65535)(words[1])
    return "%s %s" % (words[0], words[1])


def notify_flags(value):
    return notify.parse_flags(str(value))


def render_notify_flags(flags):
    return notify.render_flags(flags)


def cpu_count():
    return os.cpu_count() or 1


INT_MAX = 2 ** 31 - 1
LLONG_MAX = 2 ** 63 - 1

SCHEMA = {opt.name: opt for opt in [
    Option("bind", "127.0.0.1", addresses, " ".join, mutable=False),
    Option("port", 6379, integer(0, 65535), mutable=False),
    Option("shards", cpu_count(), integer(1, 256), mutable=False),
    Option("databases", 16, integer(1, INT_MAX), mutable=False),
    Option("requirepass", "", text),
    Option("protected-mode", "yes", yes_no, render_bool),
    Option("maxclients", 10000, integer(1, 2 ** 32 - 1)),
    Option("timeout", 0, integer(0, INT_MAX)),
    Option("proto-max-bulk-len", 512 * 1024 ** 2, memory(1024 ** 2, LLONG_MAX)),
    Option("client-query-buffer-limit", 1024 ** 3, memory(1024 ** 2, LLONG_MAX)),
    Option("dir", ".", text, mutable=False),
    Option("loglevel", "notice", one_of("debug", "verbose", "notice", "warning", "nothing")),
    Option("logfile", "", text, mutable=False),
    Option("hz", 10, integer(0, INT_MAX)),
    Option("tcp-backlog", 511, integer(0, INT_MAX), mutable=False),
    Option("tcp-keepalive", 300, integer(0, INT_MAX)),
    Option("client-handoff", "yes", yes_no, render_bool),
    Option("slowlog-log-slower-than", 10000, integer(-1, LLONG_MAX)),
    Option("slowlog-max-len", 128, integer(0, LLONG_MAX)),
    Option("save", "3600 1 300 100 60 10000", save_rules, render_save),
    Option("appendonly", "no", yes_no, render_bool),
    Option("appendfsync", "everysec", one_of("always", "everysec", "no")),
    Option("aof-load-truncated", "yes", yes_no, render_bool),
    Option("stop-writes-on-bgsave-error", "yes", yes_no, render_bool),
    Option("auto-aof-rewrite-percentage", 100, integer(0, INT_MAX)),
    Option("auto-aof-rewrite-min-size", 64 * 1024 ** 2, memory(0, LLONG_MAX)),
    Option("snapshot-zstd-level", 1, integer(1, 22)),
    Option("notify-keyspace-events", "", notify_flags, render_notify_flags),
    Option("client-output-buffer-limit",
           "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
           output_limits, render_output_limits),
    # Replication (fastcache/replication): a primary's frames and backlog, a replica's link.
    Option("replicaof", "", replica_of, mutable=False),
    Option("masterauth", "", text),
    Option("replica-read-only", "yes", yes_no, render_bool),
    Option("repl-timeout", 60, integer(1, INT_MAX)),
    Option("repl-compression", "zstd", one_of("zstd", "none")),
    Option("repl-zstd-level", 1, integer(1, 22)),
    Option("repl-send-policy", "batch", one_of("batch", "immediate")),
    Option("repl-batch-max-records", 1024, integer(1, INT_MAX)),
    Option("repl-batch-max-bytes", 256 * 1024, memory(1, 1024 ** 3)),
    Option("repl-batch-max-delay-us", 1000, integer(0, 10 ** 7)),
    Option("repl-backlog-size", 1024 ** 2, memory(16 * 1024, LLONG_MAX)),
    Option("repl-max-replicas", 64, integer(1, 100000)),
]}

# Keys whose new value is merged into the current one rather than replacing it.
MERGED = {"client-output-buffer-limit"}


class Config:
    """Parsed settings; read as config["port"]."""

    def __init__(self, values=None):
        self.values = {name: opt.default for name, opt in SCHEMA.items()}
        if values:
            self.values.update(values)
        self.source = None  # path of the config file, if any

    def __getitem__(self, name):
        return self.values[name]

    def set(self, name, raw):
        """Parse raw text for key name and store it; raises ConfigError."""
        opt = SCHEMA.get(name.lower())
        if opt is None:
            raise ConfigError(name, "unknown config key")
        try:
            value = opt.parse(raw)
            if opt.name in MERGED:
                value = {**self.values[opt.name], **value}
            self.values[opt.name] = value
        except ValueError as exc:
            raise ConfigError(opt.name, "%s (got %r)" % (exc, _shown(raw))) from None

    def render(self, name):
        return SCHEMA[name].render(self.values[name])

    def matching(self, pattern):
        """Keys matching a CONFIG GET glob pattern."""
        pattern = pattern.lower()
        return [name for name in SCHEMA if fnmatch.fnmatchcase(name, pattern)]

    def to_dict(self):
        return dict(self.values)


def _shown(raw):
    return raw if isinstance(raw, (str, int)) else " ".join(map(str, raw))


def parse_flags(argv):
    """redis-server's command line: [config-file] [--key value...]...

    Returns (path or None, [(key, raw value)]). A key's value is every word
    up to the next --key, so `--save 3600 1 300 100` works."""
    path = None
    pairs = []
    i = 0
    if argv and not argv[0].startswith("--"):
        path = argv[0]
        i = 1
    while i < len(argv):
        word = argv[i]
        if not word.startswith("--") or len(word) == 2:
            raise ConfigError(word, "expected --<key> <value>")
        key = word[2:].lower()
        i += 1
        values = []
        while i < len(argv) and not (argv[i].startswith("--") and len(argv[i]) > 2):
            values.append(argv[i])
            i += 1
        if not values and key not in ("save",):
            raise ConfigError(key, "missing value")
        pairs.append((key, " ".join(values)))
    return path, pairs


def load(argv=(), environ=None):
    """Build a Config from flags, environment and file; raises ConfigError."""
    environ = os.environ if environ is None else environ
    path, flag_pairs = parse_flags(list(argv))
    config = Config()
    if path is not None:
        config.source = os.path.abspath(path)
        try:
            with open(path, "rb") as f:
                table = tomllib.load(f)
        except OSError as exc:
            raise ConfigError("config-file", "cannot read %s: %s" % (path, exc.strerror)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config-file", "%s is not valid TOML: %s" % (path, exc)) from None
        for key, value in table.items():
            config.set(key, value)
    for env_key, value in environ.items():
        if env_key.startswith("FASTCACHE_"):
            config.set(env_key[len("FASTCACHE_"):].lower().replace("_", "-"), value)
    for key, value in flag_pairs:
        config.set(key, value)
    return config
