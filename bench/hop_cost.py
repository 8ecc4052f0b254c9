"""What a hop between worker processes costs here, and what -P 1 does with and without hops.

At -P 1 a client sends one command and waits. With random keys and 2 shards, half the
commands are owned by the worker that did not read them, so each of those crosses between
two processes once or twice. This script measures the two ends of that:

1. A Unix-socket ping-pong between two processes, pinned to one CPU and to two CPUs: the
   cost of one process waking another, before any Python or Redis logic.
2. GET at -P 1, 50 clients, against fastcache's default shards and redis-server: random keys
   (half the requests cross), and the same 50 clients as two redis-benchmark runs of 25, each
   on one key owned by a different shard (connection affinity moves each client to its key's
   worker, so no request crosses).

    python bench/hop_cost.py            # about a minute
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import time

from common import (BenchError, HOST, fmt_int, fmt_ratio, launch_fastcache, launch_redis,
                    markdown_table, print_header, redis_info_field, run_benchmark,
                    server_cpu_seconds)

from fastcache.engine.slots import key_slot, slot_table


def _cpu_us():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1e6


def ping_pong(cpus, trips):
    """(round trip us, parent CPU us per trip, child CPU us per trip): parent pinned to
    cpus[0], child to cpus[-1]."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            os.sched_setaffinity(0, {cpus[-1]})
            start = _cpu_us()
            for _ in range(trips):
                child.recv(1)
                child.send(b"y")
            child.sendall(b"%.0f" % (_cpu_us() - start))
        finally:
            os._exit(0)
    child.close()
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpus[0]})
    try:
        start, cpu = time.perf_counter(), _cpu_us()
        for _ in range(trips):
            parent.send(b"x")
            parent.recv(1)
        elapsed, cpu = time.perf_counter() - start, _cpu_us() - cpu
    finally:
        os.sched_setaffinity(0, before)
    theirs = float(parent.makefile("rb").read())
    os.waitpid(pid, 0)
    return elapsed / trips * 1e6, cpu / trips, theirs / trips


def hop_table(trips):
    cpus = sorted(os.sched_getaffinity(0))
    placements = [("one CPU", [cpus[0]])] + ([("two CPUs", cpus[:2])] if len(cpus) > 1 else [])
    return [[label] + ["%.1f" % v for v in ping_pong(chosen, trips)]
            for label, chosen in placements]


def shard_keys(shards):
    """One key per shard, owned by that shard under fastcache's slot table."""
    owner = slot_table(shards)
    found = {}
    n = 0
    while len(found) < shards:
        key = "hop:%d" % n
        found.setdefault(owner[key_slot(key.encode())], key)
        n += 1
    return [found[s] for s in range(shards)]


def split_load(port, keys, requests):
    """Total GET/s of one redis-benchmark per key, run at once, clients split evenly."""
    clients = max(1, 50 // len(keys))
    runs = [subprocess.Popen(["redis-benchmark", "-h", HOST, "-p", str(port), "-c", str(clients),
                              "-n", str(requests // len(keys)), "-P", "1", "--csv", "get", key],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for key in keys]
    start = time.perf_counter()
    for run in runs:
        out, _ = run.communicate(timeout=300)
        if run.returncode != 0 or not out.startswith('"test"'):
            raise BenchError("redis-benchmark failed on %s: %r" % (port, out[:200]))
    return requests / (time.perf_counter() - start)


def measure(server, load):
    cpu = server_cpu_seconds(server)
    rps, requests = load()
    return rps, (server_cpu_seconds(server) - cpu) / requests * 1e6


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--requests", type=int, default=300000, help="GETs per load")
    p.add_argument("--trips", type=int, default=20000, help="ping-pong round trips")
    args = p.parse_args(argv)
    print_header("python bench/hop_cost.py" + (" " + " ".join(argv) if argv else ""))
    print("## One process waking another (Unix socket ping-pong)\n")
    print(markdown_table(["placement", "round trip us", "CPU us/trip, parent", "CPU us/trip, child"],
                         hop_table(args.trips)))
    n = args.requests

    def run(server, keys):
        run_benchmark(server.port, ["set"], 100000, keyspace=100000, pipeline=16)
        for key in keys:
            subprocess.run(["redis-cli", "-h", HOST, "-p", str(server.port), "set", key, "v"],
                           check=True, capture_output=True)
        rand = measure(server, lambda: (run_benchmark(server.port, ["get"], n)["get"], n))
        split = measure(server, lambda: (split_load(server.port, keys, n), n))
        return rand, split

    with launch_fastcache() as server:
        keys = shard_keys(redis_info_field(server, "fastcache_shards", "server"))
        fc_rand, fc_split = run(server, keys)
    with launch_redis() as server:
        redis_rand, redis_split = run(server, keys)
    print("\n## GET at -P 1, 50 clients\n")
    print(markdown_table(
        ["load", "redis ops/s", "fastcache ops/s", "ratio", "redis CPU us/op",
         "fastcache CPU us/op"],
        [["random keys", fmt_int(redis_rand[0]), fmt_int(fc_rand[0]),
          fmt_ratio(fc_rand[0], redis_rand[0]), "%.2f" % redis_rand[1], "%.2f" % fc_rand[1]],
         ["one key per shard, 2 x 25 clients", fmt_int(redis_split[0]), fmt_int(fc_split[0]),
          fmt_ratio(fc_split[0], redis_split[0]), "%.2f" % redis_split[1],
          "%.2f" % fc_split[1]]]))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BenchError as exc:
        sys.exit("hop_cost: %s" % exc)
