"""fastcache-server [config.toml] [--key value ...]: redis-server's command line."""
import sys

from fastcache import REDIS_VERSION, __version__
from fastcache.config import ConfigError, load

USAGE = """Usage: fastcache-server [/path/to/fastcache.toml] [options]
       fastcache-server -v or --version
       fastcache-server -h or --help

Any config key can be given as --<key> <value>, e.g.
       fastcache-server --port 7000 --shards 4 --requirepass s3cret
       fastcache-server config/fastcache.toml --save 3600 1 300 100
Precedence: flags, then FASTCACHE_* environment variables, then the file, then defaults.
"""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-v"], ["--version"]):
        print("fastcache-server v=%s (redis_version=%s)" % (__version__, REDIS_VERSION))
        return 0
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE, end="")
        return 0
    try:
        config = load(argv)
    except ConfigError as exc:
        print("fastcache-server: config error: %s" % exc, file=sys.stderr)
        return 1
    from fastcache.server.supervisor import Supervisor
    return Supervisor(config).run()


if __name__ == "__main__":
    sys.exit(main())
