"""Replication benchmark: a primary with one replica, fastcache against redis-server.

- Throughput: redis-benchmark -t set -P 16 against the primary while one replica follows,
  median of several rounds, with the primary's and the replica's CPU time per request.
- Lag: during that load, a probe writes a key to the primary and polls the replica until the
  key is there; p50 and p99 of the time from the primary's reply to visibility.
- Wire bytes per record, zstd against none: the primary's frame counters after a fixed load.

    python bench/replication_bench.py            # a few minutes
    python bench/replication_bench.py --quick    # < 1 minute
"""
import argparse
import os
import subprocess
import sys
import time

from common import (BenchError, benchmark_argv, fmt_int, fmt_ratio, machine_summary,
                    markdown_table, median, run_benchmark, server_cpu_seconds, BenchServer)
from tests.support.resp import RawClient
from tests.support.servers import start_fastcache, start_redis

DEFAULTS = dict(requests=300000, rounds=3, probes=300)
QUICK = dict(requests=50000, rounds=1, probes=100)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--requests", type=int, help="SETs per redis-benchmark run")
    p.add_argument("--rounds", type=int, help="rounds per server (the median is reported)")
    p.add_argument("--probes", type=int, help="lag samples per server")
    p.add_argument("--shards", type=int, help="fastcache shard count (default: the CPU count)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def info_fields(port, section="replication"):
    client = RawClient(port, timeout=30)
    try:
        text = client.call("INFO", section).decode()
    finally:
        client.close()
    fields = {}
    for line in text.split("\r\n"):
        if ":" in line and not line.startswith("#"):
            name, value = line.split(":", 1)
            fields[name] = value
    return fields


def wait_link_up(replica, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if info_fields(replica.port).get("master_link_status") == "up":
            return
        time.sleep(0.05)
    raise BenchError("replica on port %d never came up" % replica.port)


def start_pair(kind, shards, *primary_flags):
    if kind == "redis":
        primary = BenchServer("redis", start_redis("--repl-diskless-sync-delay", "0",
                                                   *primary_flags))
        replica = BenchServer("redis", start_redis("--replicaof", "127.0.0.1",
                                                   str(primary.port)))
    else:
        primary = BenchServer("fastcache", start_fastcache(*primary_flags, shards=shards))
        replica = BenchServer("fastcache", start_fastcache(
            "--replicaof", "127.0.0.1 %d" % primary.port, shards=shards))
    wait_link_up(replica)
    return primary, replica


def caught_up(primary, replica, timeout=120):
    """Wait until the replica's offset reaches the primary's."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        want = int(info_fields(primary.port)["master_repl_offset"])
        if int(info_fields(replica.port).get("slave_repl_offset", -1)) >= want:
            return
        time.sleep(0.05)
    raise BenchError("replica did not catch up")


def throughput(kind, args):
    """(ops/s, primary CPU µs/op, replica CPU µs/op) medians over the rounds."""
    ops, pcpu, rcpu = [], [], []
    for _ in range(args.rounds):
        primary, replica = start_pair(kind, args.shards)
        try:
            p0, r0 = server_cpu_seconds(primary), server_cpu_seconds(replica)
            result = run_benchmark(primary.port, ["set"], args.requests, pipeline=16)
            caught_up(primary, replica)
            p1, r1 = server_cpu_seconds(primary), server_cpu_seconds(replica)
            ops.append(result["set"])
            pcpu.append((p1 - p0) / args.requests * 1e6)
            rcpu.append((r1 - r0) / args.requests * 1e6)
        finally:
            replica.stop()
            primary.stop()
    return median(ops), median(pcpu), median(rcpu)


def lag(kind, args):
    """(p50, p99) in ms of primary reply -> visible on the replica, under SET -P 16 load."""
    primary, replica = start_pair(kind, args.shards)
    load = subprocess.Popen(benchmark_argv(primary.port, ["set"], args.requests * 10,
                                           pipeline=16), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    samples = []
    try:
        writer, reader = RawClient(primary.port, timeout=30), RawClient(replica.port, timeout=30)
        time.sleep(0.3)
        for i in range(args.probes):
            key = "lag-probe:%d" % i
            writer.call("SET", key, "1")
            sent = time.perf_counter()
            deadline = sent + 10
            while reader.call("EXISTS", key) != b":1\r\n":
                if time.perf_counter() > deadline:
                    raise BenchError("probe %s never reached the replica" % key)
            samples.append((time.perf_counter() - sent) * 1000)
            time.sleep(0.005)
        writer.close()
        reader.close()
    finally:
        load.kill()
        load.wait()
        replica.stop()
        primary.stop()
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def wire_bytes(compression, args):
    """(wire bytes per record, raw bytes per record) for a SET load."""
    primary, replica = start_pair("fastcache", args.shards, "--repl-compression", compression)
    try:
        run_benchmark(primary.port, ["set"], args.requests, pipeline=16)
        caught_up(primary, replica)
        fields = info_fields(primary.port)
        records = int(fields["fastcache_repl_records"]) or 1
        return (int(fields["fastcache_repl_wire_bytes"]) / records,
                int(fields["fastcache_repl_raw_bytes"]) / records)
    finally:
        replica.stop()
        primary.stop()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print("Machine: %s" % machine_summary())
    print("redis-benchmark -t set -P 16 -c 50 -d 64 -r 100000 -n %d; %d round(s); fastcache "
          "shards: %s\n" % (args.requests, args.rounds, args.shards or os.cpu_count()))
    rows = []
    found = {}
    for kind in ("redis", "fastcache"):
        found[kind] = throughput(kind, args) + lag(kind, args)
        ops, pcpu, rcpu, p50, p99 = found[kind]
        rows.append([kind, fmt_int(ops), "%.2f" % pcpu, "%.2f" % rcpu, "%.2f" % p50,
                     "%.2f" % p99])
    print(markdown_table(["server", "SET ops/s with a replica", "primary CPU µs/op",
                          "replica CPU µs/op", "lag p50 ms", "lag p99 ms"], rows))
    print("\nfastcache/redis throughput with one replica: %s\n"
          % fmt_ratio(found["fastcache"][0], found["redis"][0]))
    rows = []
    for compression in ("zstd", "none"):
        wire, raw = wire_bytes(compression, args)
        rows.append([compression, "%.1f" % wire, "%.1f" % raw])
    print(markdown_table(["repl-compression", "wire bytes/record", "raw bytes/record"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
