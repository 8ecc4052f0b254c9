"""Embedded benchmark: fastcache.Cache against in-process caches and redis-py, one run.

Single thread, 100k keys, 64-byte values: GET hit, GET miss, SET with a TTL and
INCR in ops/s for fastcache.Cache, cachetools.TTLCache, cachebox.TTLCache,
fakeredis.FakeRedis, redis-py against a local redis-server, and a plain dict
(no TTL: the floor any cache pays on top of). Then memory per key for 1M keys
(Cache, dict, cachetools), each measured in a fresh process as RSS growth.

    python bench/embedded_bench.py            # a few minutes
    python bench/embedded_bench.py --quick    # well under a minute

cachetools, cachebox and fakeredis are only needed here:
    pip install cachetools cachebox fakeredis
"""
import argparse
import gc
import os
import subprocess
import sys
import time

from common import (BenchError, fmt_int, fmt_ratio, launch_redis, machine_summary,
                    markdown_table, vm_rss)

TTL = 3600
VALUE = b"v" * 64
OPS = ("GET hit", "GET miss", "SET with TTL", "INCR")


# -- contestants: name -> (make, ops) where ops maps an op to fn(store, key) --------

def _cache():
    from fastcache import Cache
    return Cache()


def _cachetools():
    import cachetools
    return cachetools.TTLCache(maxsize=10 ** 7, ttl=TTL)


def _cachebox():
    import cachebox
    return cachebox.TTLCache(0, TTL)


def _fakeredis():
    import fakeredis
    return fakeredis.FakeRedis()


def _dict_incr(store, key):
    store[key] = store.get(key, 0) + 1


def _mapping_set(store, key):
    store[key] = VALUE


REDIS_LIKE = {
    "GET hit": lambda s, k: s.get(k),
    "GET miss": lambda s, k: s.get(k),
    "SET with TTL": lambda s, k: s.set(k, VALUE, ex=TTL),
    "INCR": lambda s, k: s.incr(k),
}
# The mapping caches have one TTL for every entry, set at construction.
MAPPING = {
    "GET hit": lambda s, k: s.get(k),
    "GET miss": lambda s, k: s.get(k),
    "SET with TTL": _mapping_set,
    "INCR": _dict_incr,
}


def contestants(redis_port):
    found = [("fastcache.Cache", _cache, REDIS_LIKE)]
    for name, make, ops in (("cachetools.TTLCache", _cachetools, MAPPING),
                            ("cachebox.TTLCache", _cachebox, MAPPING),
                            ("fakeredis.FakeRedis", _fakeredis, REDIS_LIKE)):
        try:
            make()
        except ImportError:
            print("(%s not installed: skipped)" % name)
            continue
        found.append((name, make, ops))
    if redis_port is not None:
        import redis
        found.append(("redis-py + redis-server",
                      lambda: redis.Redis(port=redis_port, single_connection_client=True),
                      REDIS_LIKE))
    found.append(("dict (no TTL)", dict, MAPPING))
    return found


# -- throughput ------------------------------------------------------------------------

def _run(fn, store, keys):
    gc.collect()
    start = time.perf_counter()
    for key in keys:
        fn(store, key)
    return len(keys) / (time.perf_counter() - start)


class Contestant:
    """A store with its op functions and key sets (fewer keys over the network)."""

    def __init__(self, name, make, ops, nkeys):
        self.name, self.ops = name, ops
        self.remote = name.startswith("redis-py")
        n = min(nkeys, 20000) if self.remote else nkeys  # a network round trip per op
        self.keys = {
            "GET hit": [b"key:%d" % i for i in range(n)],
            "GET miss": [b"miss:%d" % i for i in range(n)],
            "SET with TTL": [b"key:%d" % i for i in range(n)],
            "INCR": [b"counter:%d" % (i % 1000) for i in range(n)],
        }
        self.store = make()
        if self.remote:
            self.store.flushall()
        for key in self.keys["GET hit"]:
            ops["SET with TTL"](self.store, key)
        self.best = dict.fromkeys(OPS, 0.0)

    def measure(self, op):
        self.best[op] = max(self.best[op], _run(self.ops[op], self.store, self.keys[op]))

    def close(self):
        if self.remote:
            self.store.flushall()
        if hasattr(self.store, "close"):
            self.store.close()


def throughput(found, nkeys, rounds):
    """Best ops/s per contestant and op; rounds alternate the contestants, so a
    burst of load on the machine does not land on one of them only."""
    contestants = [Contestant(name, make, ops, nkeys) for name, make, ops in found]
    try:
        for op in OPS:
            for _ in range(rounds):
                for contestant in contestants:
                    contestant.measure(op)
    finally:
        for contestant in contestants:
            contestant.close()
    return [(c.name, c.best) for c in contestants]


# -- memory: each in its own process ---------------------------------------------------

MEMORY = {
    "fastcache.Cache": "from fastcache import Cache\nstore = Cache()\nput = store.set",
    "dict": "store = {}\nput = store.__setitem__",
    "cachetools.TTLCache": ("import cachetools\nstore = cachetools.TTLCache(10 ** 7, %d)\n"
                            "put = store.__setitem__" % TTL),
}


def memory_child(name, count):
    """Print the RSS growth of storing count keys (their objects made beforehand)."""
    namespace = {}
    exec(MEMORY[name], namespace)
    keys = [b"key:%d" % i for i in range(count)]
    values = [b"%064d" % i for i in range(count)]
    gc.collect()
    before = vm_rss(os.getpid())
    put = namespace["put"]
    for key, value in zip(keys, values):
        put(key, value)
    gc.collect()
    print(vm_rss(os.getpid()) - before)


def memory_per_key(name, count):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", name,
                          str(count)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise BenchError("memory run for %s failed: %s" % (name, out.stderr.strip()))
    return int(out.stdout.split()[-1]) / count


# -- main --------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds and keys")
    p.add_argument("--keys", type=int, help="keys per op (default 100000)")
    p.add_argument("--memory-keys", type=int, help="keys for the memory figures (default 1M)")
    p.add_argument("--memory-child", nargs=2, metavar=("NAME", "COUNT"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return 0
    nkeys = args.keys or (20000 if args.quick else 100000)
    rounds = 1 if args.quick else 5
    memory_keys = args.memory_keys or (100000 if args.quick else 1000000)
    print("Machine:", machine_summary())
    print("Single thread, %s keys, %d-byte values, best of %d round(s)\n"
          % (fmt_int(nkeys), len(VALUE), rounds))
    server = None
    try:
        server = launch_redis()
    except BenchError as exc:
        print("(redis-py + redis-server skipped: %s)" % exc)
    try:
        results = throughput(contestants(server.port if server else None), nkeys, rounds)
    finally:
        if server is not None:
            server.stop()
    print(markdown_table(["ops/s"] + list(OPS),
                         [[name] + [fmt_int(rates[op]) for op in OPS] for name, rates in results]))
    base = dict(results).get("cachetools.TTLCache")
    if base:
        print("\nRatio to cachetools.TTLCache (higher is faster)\n")
        print(markdown_table(["× cachetools"] + list(OPS),
                             [[name] + [fmt_ratio(rates[op], base[op]) for op in OPS]
                              for name, rates in results]))
    print("\nMemory per key, %s keys with 64-byte values (RSS growth / keys; the key and "
          "value objects themselves are made beforehand and not counted)\n" % fmt_int(memory_keys))
    sizes = [(name, memory_per_key(name, memory_keys)) for name in MEMORY]
    plain = dict(sizes)["dict"]
    print(markdown_table(["store", "bytes/key", "× dict"],
                         [(name, "%.0f" % size, fmt_ratio(size, plain)) for name, size in sizes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
