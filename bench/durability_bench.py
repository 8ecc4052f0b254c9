"""Durability benchmark: fastcache-server against redis-server with the same persistence settings.

1. Write throughput with `appendonly yes, appendfsync everysec` and with no persistence
   (`appendonly no, save ""`): redis-benchmark -t set -c 50 -d 64 -r 100000 at -P 1 and -P 16,
   all four servers alternated over several rounds, medians; then each server's cost of
   everysec (persistent / non-persistent ops/s).
2. Restart time with --keys keys (64-byte values, SET through a pipelined socket, the same data
   for every server): from the WAL alone (fastcache WAL vs Redis 7 multipart AOF, automatic
   rewrites off on both, the process group killed with SIGKILL) and from a snapshot (save rules
   set, SIGTERM saves on the way out; fastcache snapshot vs RDB). Timed from spawning the server
   until it has logged "Ready to accept connections" and answers PING; every restart is checked
   with DBSIZE.

    python bench/durability_bench.py              # a few minutes on 2 cores
    python bench/durability_bench.py --quick      # about a minute
"""
import argparse
import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from common import (HOST, BenchError, benchmark_argv, call, dbsize, fmt_ratio, launch_fastcache,
                    launch_redis, load_strings, print_header, markdown_table, median)
from core_bench import measure_throughput, throughput_table
from tests.support.servers import checkout_env, free_port

CPUS = os.cpu_count() or 1
DEFAULTS = dict(requests=200000, rounds=3, keys=1000000)
QUICK = dict(requests=20000, rounds=1, keys=100000)

EVERYSEC = ("--appendonly", "yes", "--appendfsync", "everysec", "--save", "")
NO_PERSISTENCE = ("--appendonly", "no", "--save", "")
# "From the WAL alone": without this, a 1M-key fill crosses the 64 MB rewrite threshold and
# both servers would restart from a snapshot/RDB base plus a short log.
WAL_ONLY = EVERYSEC + ("--auto-aof-rewrite-percentage", "0")
SNAPSHOT_ONLY = ("--appendonly", "no", "--save", "3600 1")
# (name, flags, how the server goes down before each restart)
RESTART_MODES = (("WAL", WAL_ONLY, "crash"), ("snapshot", SNAPSHOT_ONLY, "stop"))
READY = b"Ready to accept connections"
# Each server's own account of the load, for the "load (log)" column.
LOAD_TIME = {"redis": re.compile(rb"DB loaded from (?:disk|append only file): ([\d.]+) seconds"),
             "fastcache": re.compile(rb"Shard \d+ loaded \d+ keys in ([\d.]+) seconds")}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--requests", type=int, help="requests per redis-benchmark run "
                   "(default %(requests)d, quick %(q)d)" % dict(DEFAULTS, q=QUICK["requests"]))
    p.add_argument("--rounds", type=int, help="rounds (throughput runs per server, restarts "
                   "per server and mode); the median is reported (default %d)" % DEFAULTS["rounds"])
    p.add_argument("--keys", type=int, help="keys loaded for the restart measurements; 0 skips "
                   "them (default %d)" % DEFAULTS["keys"])
    p.add_argument("--shards", default="%d,1" % CPUS if CPUS > 1 else "1",
                   help="fastcache shard counts, comma-separated; throughput uses the first, "
                   "restarts all of them (default %(default)s: the CPU count, then 1)")
    p.add_argument("--pipelines", default="1,16", help="pipeline depths (-P), comma-separated; "
                   "empty skips the throughput part")
    p.add_argument("-c", "--clients", type=int, default=50)
    p.add_argument("-r", "--keyspace", type=int, default=100000)
    p.add_argument("--timeout", type=float, default=300, help="seconds allowed per "
                   "redis-benchmark run, key load and restart")
    p.add_argument("--quick", action="store_true", help="-n %(requests)d --rounds %(rounds)d "
                   "--keys %(keys)d" % QUICK)
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.shard_list = [int(x) for x in args.shards.split(",") if x.strip()]
    args.pipeline_list = [int(x) for x in args.pipelines.split(",") if x.strip()]
    # what core_bench's throughput helpers read
    args.test_list = ["set"]
    args.data_size = 64
    return args


def reproduce_command(args):
    return shlex.join(["python", "bench/durability_bench.py", "-n", str(args.requests),
                       "--rounds", str(args.rounds), "--keys", str(args.keys), "--shards",
                       ",".join(map(str, args.shard_list)), "--pipelines",
                       ",".join(map(str, args.pipeline_list)), "-c", str(args.clients),
                       "-r", str(args.keyspace)])


# -- write throughput --------------------------------------------------------------

MODES = (("everysec", EVERYSEC), ("no persistence", NO_PERSISTENCE))


def measure_writes(args):
    """core_bench's samples for four servers, named '<server> <mode>'."""
    shards = args.shard_list[0]
    with contextlib.ExitStack() as stack:
        servers = []
        for mode, flags in MODES:
            servers.append(stack.enter_context(launch_redis(flags, "redis " + mode)))
            servers.append(stack.enter_context(launch_fastcache(shards, flags,
                                                                "fastcache " + mode)))
        return measure_throughput(args, servers)


def mode_samples(samples, mode):
    """The samples of one mode, keyed as core_bench's throughput_table expects."""
    return {(name.split()[0], p): tests for (name, p), tests in samples.items()
            if name.endswith(" " + mode)}


def persistence_cost_table(args, samples):
    def figure(server, mode, pipeline, which):
        return median([run[which] for run in samples[(server + " " + mode, pipeline)]["set"]])

    rows = []
    for pipeline in args.pipeline_list:
        row = [pipeline]
        for which in (0, 1):  # ops/s, then CPU µs/op
            for server in ("redis", "fastcache"):
                row.append(fmt_ratio(figure(server, "everysec", pipeline, which),
                                     figure(server, "no persistence", pipeline, which)))
        rows.append(row)
    return markdown_table(["-P", "redis ops/s", "fastcache ops/s", "redis CPU µs/op",
                           "fastcache CPU µs/op"], rows)


# -- restart -----------------------------------------------------------------------

class Restartable:
    """A server that is stopped and started again on the same port and data directory."""

    def __init__(self, kind, shards, flags, timeout):
        self.kind = self.name = kind
        self.timeout = timeout
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="durability-bench-")
        self.log_path = os.path.join(self.dir, "server.log")
        if kind == "redis":
            self.argv = ["redis-server", "--port", str(self.port), "--bind", HOST,
                         "--dir", self.dir, *flags]
        else:
            self.argv = [sys.executable, "-m", "fastcache", "--port", str(self.port),
                         "--dir", self.dir, "--shards", str(shards), *flags]
        self.proc = None

    def start(self):
        """Spawn the server; (seconds until it is ready, its own load time or None)."""
        log_from = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as log:
            started = time.monotonic()
            # Own session: SIGKILL reaches fastcache's workers as well as its supervisor.
            self.proc = subprocess.Popen(self.argv, cwd=self.dir, stdout=log,
                                         stderr=subprocess.STDOUT, env=checkout_env(),
                                         start_new_session=True)
        while True:
            text = self._log_since(log_from)
            if READY in text and self._pong():
                seconds = time.monotonic() - started
                break
            if self.proc.poll() is not None:
                raise BenchError("%s exited while starting:\n%s" % (
                    self.kind, text.decode(errors="replace")[-2000:]))
            if time.monotonic() - started > self.timeout:
                raise BenchError("%s did not start in %ss" % (self.kind, self.timeout))
            time.sleep(0.005)
        loads = [float(m) for m in LOAD_TIME[self.kind].findall(self._log_since(log_from))]
        return seconds, (max(loads) if loads else None)

    def _log_since(self, offset):
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read()

    def call(self, *args):
        return call(self.port, *args, timeout=self.timeout)

    def _pong(self):
        try:
            return call(self.port, "PING", timeout=5) == b"+PONG\r\n"
        except OSError:
            return False

    def crash(self):
        """SIGKILL to the whole group: fastcache's workers outlive a killed supervisor."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(self.timeout)

    def stop(self):
        """SIGTERM and wait: with save rules both servers write a snapshot on the way out."""
        self.proc.terminate()
        self.proc.wait(self.timeout)

    def close(self):
        if self.proc is not None:
            self.crash()
        shutil.rmtree(self.dir, ignore_errors=True)


def measure_restart(args, kind, shards, flags, down):
    """[(seconds to ready, server's load seconds)] over args.rounds restarts of one fill."""
    server = Restartable(kind, shards, flags, args.timeout)
    try:
        server.start()
        load_strings(server.port, args.keys, args.data_size, timeout=args.timeout)
        time.sleep(2)  # everysec: let the last writes and their fsync land
        results = []
        for _ in range(args.rounds):
            getattr(server, down)()
            results.append(server.start())
            keys = dbsize(server)
            if keys != args.keys:
                raise BenchError("%s restarted with %d keys, not %d" % (kind, keys, args.keys))
        return results
    finally:
        server.close()


def restart_contestants(args):
    return [("redis-server", "redis", None)] + [
        ("fastcache --shards %d" % s, "fastcache", s) for s in args.shard_list]


def measure_restarts(args):
    """{(mode, label): [(seconds, load seconds)]}"""
    results = {}
    for mode, flags, down in RESTART_MODES:
        for label, kind, shards in restart_contestants(args):
            runs = measure_restart(args, kind, shards, flags, down)
            results[(mode, label)] = runs
            print("  restart from %-8s %-20s %s" % (mode, label, "  ".join(
                "%.3fs (load %s)" % (s, "%.3fs" % l if l is not None else "?") for s, l in runs)),
                file=sys.stderr, flush=True)
    return results


def restart_table(args, results):
    rows = []
    for mode, _, _ in RESTART_MODES:
        redis = median([s for s, _ in results[(mode, "redis-server")]])
        for label, _, _ in restart_contestants(args):
            runs = results[(mode, label)]
            seconds = median([s for s, _ in runs])
            loads = [l for _, l in runs if l is not None]
            rows.append([mode, label, "%.2f" % seconds,
                         "%.2f" % median(loads) if loads else "?",
                         "" if label == "redis-server" else fmt_ratio(seconds, redis)])
    return markdown_table(["from", "server", "restart s", "load s (its log)",
                           "fastcache/redis"], rows)


# -- main --------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print_header(reproduce_command(args))
    print()
    try:
        if args.pipeline_list:
            print("Each run: `%s`" % " ".join(benchmark_argv(
                "<port>", ["set"], args.requests, args.clients, args.data_size, args.keyspace,
                "<P>")))
            print()
            samples = measure_writes(args)
            for mode, flags in MODES:
                print("SET throughput, %s (`%s` on both; median of %d round(s), fastcache "
                      "with %d shard(s)):" % (mode, shlex.join(flags), args.rounds,
                                              args.shard_list[0]))
                print()
                print(throughput_table(args, mode_samples(samples, mode)))
                print()
            print("Cost of everysec, per server: everysec / no persistence (ops/s: lower is "
                  "costlier; CPU µs/op: higher is costlier):")
            print()
            print(persistence_cost_table(args, samples))
            print()
        if args.keys > 0:
            results = measure_restarts(args)
            print("Restart with %d keys (%d-byte values), median of %d restart(s); lower is "
                  "better:" % (args.keys, args.data_size, args.rounds))
            print()
            print(restart_table(args, results))
            print()
            print("WAL: `%s`, killed with SIGKILL. snapshot: `%s`, stopped with SIGTERM "
                  "(which saves). restart s: spawn until ready and answering PING; load s: "
                  "the server's own log (fastcache: slowest shard)." % (
                      shlex.join(WAL_ONLY), shlex.join(SNAPSHOT_ONLY)))
    except BenchError as exc:
        print("durability_bench: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
