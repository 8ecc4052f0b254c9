"""Helpers shared by the benchmark scripts.

Start redis-server and fastcache-server on free loopback ports, drive them with
redis-benchmark, measure their memory, and print Markdown tables with ratios.
Every external run is bounded by a request count and a timeout.
"""
import csv
import io
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
# Servers run with cwd in a temp dir: let them import fastcache from this checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)

from tests.support.resp import RawClient  # noqa: E402
from tests.support.servers import start_fastcache, start_redis  # noqa: E402

HOST = "127.0.0.1"


class BenchError(RuntimeError):
    pass


# -- servers -------------------------------------------------------------------

def call(port, *args, timeout=30):
    """One command on a fresh connection; the raw reply bytes."""
    client = RawClient(port, timeout=timeout)
    try:
        return client.call(*args)
    finally:
        client.close()


class BenchServer:
    """A running server under test: name, port, pid; stop() ends it."""

    def __init__(self, name, process):
        self.name = name
        self.process = process
        self.port = process.port
        self.pid = process.proc.pid

    def call(self, *args, timeout=30):
        return call(self.port, *args, timeout=timeout)

    def stop(self):
        self.process.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def launch_redis(extra=(), name="redis"):
    """redis-server in a temp dir; extra flags override the defaults (no persistence)."""
    if shutil.which("redis-server") is None:
        raise BenchError("redis-server is not installed")
    return BenchServer(name, start_redis(*extra))


def launch_fastcache(shards=None, extra=(), name="fastcache"):
    return BenchServer(name, start_fastcache(*extra, shards=shards))


def redis_version():
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                         timeout=10).stdout
    for word in out.split():
        if word.startswith("v="):
            return word[2:]
    return out.strip()


def machine_summary():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, Linux %s, Python %s, redis-server %s" % (
        model, os.cpu_count() or 1, platform.release(), platform.python_version(),
        redis_version())


# -- redis-benchmark -----------------------------------------------------------


def print_header(reproduce):
    """The lines a benchmark report opens with: the machine and the command that redoes it."""
    sys.stdout.reconfigure(line_buffering=True)  # keep order with the progress lines on stderr
    print("Machine: %s" % machine_summary())
    print("Reproduce: `%s`" % reproduce)

def benchmark_argv(port, tests, requests, clients=50, data_size=64, keyspace=100000,
                   pipeline=1):
    argv = ["redis-benchmark", "-h", HOST, "-p", str(port), "-t", ",".join(tests),
            "-c", str(clients), "-d", str(data_size), "-n", str(requests), "-P", str(pipeline),
            "--csv"]
    if keyspace:
        argv[-1:-1] = ["-r", str(keyspace)]
    return argv


def parse_benchmark_csv(text):
    """redis-benchmark --csv output -> {test name in -t spelling: requests per second}."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0][:2] != ["test", "rps"]:
        raise BenchError("unexpected redis-benchmark output: %r" % text[:200])
    # "MSET (10 keys)" is the test -t calls "mset".
    return {row[0].split()[0].lower(): float(row[1]) for row in rows[1:] if row}


def run_benchmark(port, tests, requests, timeout=300, **options):
    argv = benchmark_argv(port, tests, requests, **options)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("timed out after %ss: %s" % (timeout, " ".join(argv))) from None
    if done.returncode != 0:
        raise BenchError("%s failed (%d): %s" % (" ".join(argv), done.returncode,
                                                 done.stderr.strip()[-500:]))
    results = parse_benchmark_csv(done.stdout)
    missing = set(tests) - set(results)
    if missing:
        raise BenchError("no result for %s in: %s" % (", ".join(sorted(missing)), done.stdout))
    return results


def median(values):
    return statistics.median(values) if values else float("nan")


# -- loading data --------------------------------------------------------------

def load_strings(port, count, value_size, batch=10000, timeout=120, prefix=b"key:"):
    """SET <prefix><i> <value_size bytes> for i in range(count), pipelined over one socket.

    Exact, unlike redis-benchmark -r, which draws keys at random.
    """
    value = b"v" * value_size
    tail = b"\r\n$%d\r\n%s\r\n" % (value_size, value)
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        for start in range(0, count, batch):
            end = min(count, start + batch)
            sock.sendall(b"".join(
                b"*3\r\n$3\r\nSET\r\n$%d\r\n%s%d%s" % (len(prefix) + len(str(i)), prefix, i, tail)
                for i in range(start, end)))
            expected = b"+OK\r\n" * (end - start)
            got = bytearray()
            while len(got) < len(expected):
                if time.monotonic() > deadline:
                    raise BenchError("loading %d keys took over %ss" % (count, timeout))
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise BenchError("connection closed while loading keys")
                got += chunk
            if got != expected:
                raise BenchError("unexpected reply while loading: %r" % bytes(got[:200]))


def dbsize(server):
    reply = server.call("DBSIZE")
    if not reply.startswith(b":"):
        raise BenchError("DBSIZE failed on %s: %r" % (server.name, reply))
    return int(reply[1:])


# -- memory --------------------------------------------------------------------

def vm_rss(pid):
    """Resident set size of a process, in bytes (VmRSS of /proc/<pid>/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise BenchError("no VmRSS for pid %d" % pid)


def child_pids(pid):
    pids = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as f:
            pids.extend(int(p) for p in f.read().split())
    return pids


def cpu_seconds(pid):
    """CPU time all threads of a process have used so far, in ns precision (schedstat)."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
            total += int(f.read().split()[0])
    return total / 1e9


def server_cpu_seconds(server):
    """CPU time of a server's process and its children (fastcache's workers)."""
    return sum(cpu_seconds(pid) for pid in [server.pid] + child_pids(server.pid))


def fastcache_rss(server):
    """(sum of the workers' RSS, worker count); the supervisor is left out."""
    workers = child_pids(server.pid)
    return sum(vm_rss(p) for p in workers), len(workers)


def redis_info_field(server, field, section="memory"):
    info = server.call("INFO", section).decode()
    for line in info.split("\r\n"):
        if line.startswith(field + ":"):
            return int(line.split(":", 1)[1])
    raise BenchError("INFO %s has no %s" % (section, field))


# -- output --------------------------------------------------------------------

def fmt_int(value):
    return "{:,.0f}".format(value)


def fmt_ratio(numerator, denominator):
    if not denominator:
        return "n/a"
    return "%.2f" % (numerator / denominator)


def markdown_table(headers, rows):
    """A Markdown table; columns after the first are right-aligned (they hold numbers)."""
    cells = [list(map(str, headers))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "| " + " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        ) + " |"

    rule = "|" + "|".join(
        "-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])
