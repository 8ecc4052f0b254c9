"""Core benchmark: fastcache-server against redis-server in the same run.

Throughput: redis-benchmark -t set,get,incr,mset -c 50 -d 64 -r 100000 at -P 1 and -P 16,
alternating the servers over several rounds and keeping each figure's median.
Each test also reports the servers' CPU time per request, steadier than ops/s when the client
competes for the same cores. Memory: N keys with 64-byte values loaded exactly; fastcache's
workers' RSS against redis's used_memory_rss.

    python bench/core_bench.py                 # full run (a few minutes)
    python bench/core_bench.py --quick         # < 1 minute
"""
import argparse
import contextlib
import os
import shlex
import sys
import time

from common import (BenchError, child_pids, dbsize, fastcache_rss, fmt_int, fmt_ratio, launch_fastcache,
                    launch_redis, load_strings, print_header, markdown_table, median,
                    redis_info_field, run_benchmark, benchmark_argv, server_cpu_seconds)

DEFAULTS = dict(requests=200000, rounds=3, memory_keys=1000000)
QUICK = dict(requests=20000, rounds=1, memory_keys=100000)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--requests", type=int, help="requests per redis-benchmark run "
                   "(default %(requests)d, quick %(q)d)" % dict(DEFAULTS, q=QUICK["requests"]))
    p.add_argument("--rounds", type=int, help="rounds per server; the median is reported "
                   "(default %d)" % DEFAULTS["rounds"])
    p.add_argument("--tests", default="set,get,incr,mset", help="redis-benchmark -t list")
    p.add_argument("--pipelines", default="1,16", help="pipeline depths (-P), comma-separated")
    p.add_argument("-c", "--clients", type=int, default=50)
    p.add_argument("-d", "--data-size", type=int, default=64)
    p.add_argument("-r", "--keyspace", type=int, default=100000)
    p.add_argument("--shards", type=int, help="fastcache shard count (default: its own, the "
                   "CPU count)")
    p.add_argument("--memory-keys", type=int, help="keys loaded for the memory comparison; 0 "
                   "skips it (default %d)" % DEFAULTS["memory_keys"])
    p.add_argument("--timeout", type=float, default=300, help="seconds allowed per "
                   "redis-benchmark run and per key load")
    p.add_argument("--quick", action="store_true", help="defaults for a run under a minute: "
                   "-n %(requests)d --rounds %(rounds)d --memory-keys %(memory_keys)d" % QUICK)
    args = p.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.test_list = [t.strip().lower() for t in args.tests.split(",") if t.strip()]
    args.pipeline_list = [int(x) for x in args.pipelines.split(",") if x.strip()]
    return args


def reproduce_command(args):
    argv = ["python", "bench/core_bench.py", "-n", str(args.requests), "--rounds",
            str(args.rounds), "--tests", ",".join(args.test_list), "--pipelines",
            ",".join(map(str, args.pipeline_list)), "-c", str(args.clients), "-d",
            str(args.data_size), "-r", str(args.keyspace), "--memory-keys", str(args.memory_keys)]
    if args.shards is not None:
        argv += ["--shards", str(args.shards)]
    return shlex.join(argv)


# -- throughput ------------------------------------------------------------------

def measure_throughput(args, servers):
    """{(server name, pipeline): {test: [(ops/s, server CPU µs per request) per round]}}.

    One redis-benchmark run per test, so each test's server CPU time is known: on a machine
    where the client competes for the cores, CPU per request is the steadier figure.
    """
    samples = {(s.name, p): {t: [] for t in args.test_list}
               for s in servers for p in args.pipeline_list}
    for round_no in range(args.rounds):
        # Alternate who goes first so drift (thermal, noisy neighbours) hits both alike.
        order = servers if round_no % 2 == 0 else servers[::-1]
        for pipeline in args.pipeline_list:
            for server in order:
                line = []
                for test in args.test_list:
                    cpu_before = server_cpu_seconds(server)
                    rps = run_benchmark(server.port, [test], args.requests, timeout=args.timeout,
                                        clients=args.clients, data_size=args.data_size,
                                        keyspace=args.keyspace, pipeline=pipeline)[test]
                    cpu_us = (server_cpu_seconds(server) - cpu_before) * 1e6 / args.requests
                    samples[(server.name, pipeline)][test].append((rps, cpu_us))
                    line.append("%s=%s (%.2f us)" % (test, fmt_int(rps), cpu_us))
                print("  round %d  -P %-3d %-9s %s" % (round_no + 1, pipeline, server.name,
                                                      "  ".join(line)),
                      file=sys.stderr, flush=True)
    return samples


def throughput_table(args, samples):
    rows = []
    for pipeline in args.pipeline_list:
        for test in args.test_list:
            redis = samples[("redis", pipeline)][test]
            fast = samples[("fastcache", pipeline)][test]
            r_ops, f_ops = median([r for r, _ in redis]), median([r for r, _ in fast])
            r_cpu, f_cpu = median([c for _, c in redis]), median([c for _, c in fast])
            rows.append([test.upper(), pipeline, fmt_int(r_ops), fmt_int(f_ops),
                         fmt_ratio(f_ops, r_ops), "%.2f" % r_cpu, "%.2f" % f_cpu,
                         fmt_ratio(f_cpu, r_cpu)])
    return markdown_table(["test", "-P", "redis ops/s", "fastcache ops/s", "fastcache/redis",
                           "redis CPU µs/op", "fastcache CPU µs/op", "CPU fastcache/redis"],
                          rows)


# -- memory ----------------------------------------------------------------------

def measure_memory(args):
    """Fresh servers, empty then loaded: [(name, RSS empty, RSS loaded)], redis first."""
    results = []
    with launch_redis() as redis:
        empty = settled_redis_rss(redis)
        load_and_check(redis, args)
        results.append(("redis-server", empty, settled_redis_rss(redis)))
    with launch_fastcache(args.shards) as fast:
        time.sleep(1)  # PING answered by one worker; let the others finish starting
        empty, workers = fastcache_rss(fast)
        load_and_check(fast, args)
        results.append(("fastcache (%d workers)" % workers, empty, fastcache_rss(fast)[0]))
    return results


def settled_redis_rss(redis):
    time.sleep(0.5)  # redis refreshes used_memory_rss in its cron (every 100 ms)
    return redis_info_field(redis, "used_memory_rss")


def load_and_check(server, args):
    load_strings(server.port, args.memory_keys, args.data_size, timeout=args.timeout)
    size = dbsize(server)
    if size != args.memory_keys:
        raise BenchError("%s holds %d keys after loading %d" % (server.name, size,
                                                                 args.memory_keys))


def memory_table(args, results):
    n = args.memory_keys
    rows = [[name, fmt_int(empty / 2**20), fmt_int(loaded / 2**20), fmt_int(loaded / n),
             fmt_int((loaded - empty) / n)] for name, empty, loaded in results]
    (_, r_empty, r_loaded), (_, f_empty, f_loaded) = results
    rows.append(["fastcache/redis", fmt_ratio(f_empty, r_empty), fmt_ratio(f_loaded, r_loaded),
                 fmt_ratio(f_loaded, r_loaded), fmt_ratio(f_loaded - f_empty, r_loaded - r_empty)])
    return markdown_table(["server", "RSS empty (MiB)", "RSS loaded (MiB)", "bytes/key",
                           "bytes/key over empty"], rows)


# -- main ------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    print_header(reproduce_command(args))
    print("Each run: `%s`" % " ".join(benchmark_argv(
        "<port>", ["<test>"], args.requests, args.clients, args.data_size, args.keyspace,
        "<P>")))
    print()
    try:
        if args.pipeline_list and args.test_list:
            with contextlib.ExitStack() as stack:
                redis = stack.enter_context(launch_redis())
                fast = stack.enter_context(launch_fastcache(args.shards))
                workers = len(child_pids(fast.pid))
                samples = measure_throughput(args, [redis, fast])
            print("Throughput (median of %d round(s), -n %d per run, fastcache with %d "
                  "shard(s)):" % (args.rounds, args.requests, workers))
            print()
            print(throughput_table(args, samples))
            print()
            print("CPU µs/op: the server's CPU time over the run (all threads; fastcache: "
                  "supervisor and workers) per request.")
            print()
        if args.memory_keys > 0:
            results = measure_memory(args)
            print("Memory, %s keys with %d-byte values (key:<i>):" % (
                fmt_int(args.memory_keys), args.data_size))
            print()
            print(memory_table(args, results))
            print()
            print("fastcache RSS is the sum of its worker processes' VmRSS (pages shared "
                  "after fork count once per worker); redis is INFO used_memory_rss.")
    except BenchError as exc:
        print("core_bench: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
