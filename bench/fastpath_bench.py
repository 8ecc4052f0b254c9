"""Command fast path throughput: commands/second of run_batch against the normal path.

    python bench/fastpath_bench.py [--batches 20000] [--batch 16] [--keys 100000] [--rounds 5]
                                   [--scenarios GET,SET,...]

In-process, no sockets: pipelined batches of --batch commands as the request parser returns
them. Contenders: the native run_batch, its pure-Python twin py_run_batch, and the normal path
(dispatch.execute + the encoder, per command). Prints the best of --rounds for each.

Scenarios (every round of every contender starts from the same freshly loaded keyspace):

- GET / SET: random keys out of --keys (all present for GET), --value-size byte values.
- "GET 2 shards": shard 0 of a 2-shard server: about half the keys are shard 1's, and each
  contender queues those for forwarding (run_batch's fwd; the normal path routes in Python).
- LPUSH / RPUSH / LPOP: one element on one of CONTAINERS lists (LPOP's are long enough never
  to empty); SADD: a random member out of --keys into one of CONTAINERS sets; HSET: a random
  field out of --keys into one of CONTAINERS hashes (--value-size values); LRANGE 100:
  LRANGE l 0 99 of lists of 150 elements (a tenth of --batches: each reply is ~1 kB).
- SPOP: from one of BIG sets, each big enough never to empty (its first pop indexes it).
- ZADD: like redis-benchmark's (ZADD myzset <12-digit score> element:<12 digits>), a random
  score and member out of --keys into one of BIG sorted sets, each preloaded with --keys / BIG
  members: new members and rescored ones. ZINCRBY: a random increment of one of those
  members; ZSCORE: the score of one of them (or of a missing one, one time in ten).
"""
import argparse
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.common import fmt_int, fmt_ratio, markdown_table  # noqa: E402
from fastcache.engine.context import Context  # noqa: E402
from fastcache.engine.dispatch import execute  # noqa: E402
from fastcache.engine.fastpath import native_run_batch, py_run_batch  # noqa: E402
from fastcache.engine.keyspace import Keyspace  # noqa: E402
from fastcache.engine.lists import List  # noqa: E402
from fastcache.engine.sets import Set  # noqa: E402
from fastcache.engine.slots import key_slot, slot_table  # noqa: E402
from fastcache.engine.zset_type import ZSet  # noqa: E402
from fastcache.protocol.encoder import ENCODERS  # noqa: E402

SHARDS = 2
OWNERS = slot_table(SHARDS)


CONTAINERS = 1000          # lists, sets or hashes a container scenario spreads over
LRANGE_LENGTH = 150
BIG = 10                   # sets or sorted sets SPOP and the Z* scenarios spread over


def _container(rng, prefix):
    return b"%s:%04d" % (prefix, rng.randrange(CONTAINERS))


# scenario -> (function(rng, keys, value) -> one command, sharded, loader, batches divisor)
def _get(rng, keys, value):
    return [b"GET", b"key:%06d" % rng.randrange(keys)]


def _set(rng, keys, value):
    return [b"SET", b"key:%06d" % rng.randrange(keys), value]


def _push(name):
    return lambda rng, keys, value: [name, _container(rng, b"list"), value]


def _lpop(rng, keys, value):
    return [b"LPOP", _container(rng, b"list")]


def _sadd(rng, keys, value):
    return [b"SADD", _container(rng, b"set"), b"member:%06d" % rng.randrange(keys)]


def _hset(rng, keys, value):
    return [b"HSET", _container(rng, b"hash"), b"field:%06d" % rng.randrange(keys), value]


def _lrange(rng, keys, value):
    return [b"LRANGE", _container(rng, b"list"), b"0", b"99"]


def _big(rng, prefix):
    return b"%s:%d" % (prefix, rng.randrange(BIG))


def _element(rng, keys):
    return b"element:%012d" % rng.randrange(keys)


def _spop(rng, keys, value):
    return [b"SPOP", _big(rng, b"set")]


def _zadd(rng, keys, value):
    return [b"ZADD", _big(rng, b"zset"), b"%012d" % rng.randrange(keys), _element(rng, keys)]


def _zincrby(rng, keys, value):
    return [b"ZINCRBY", _big(rng, b"zset"), b"%d" % rng.randrange(-100, 100),
            _element(rng, keys)]


def _zscore(rng, keys, value):
    member = _element(rng, keys) if rng.randrange(10) else b"missing"
    return [b"ZSCORE", _big(rng, b"zset"), member]


def load_strings(ctx, keys, value, commands):
    for i in range(keys):
        ctx.db.data[b"key:%06d" % i] = value


def load_lists(ctx, keys, value, commands):
    # LPOP's lists outlast a round's pops
    elements = max(LRANGE_LENGTH, commands * 2 // CONTAINERS + 100)
    for i in range(CONTAINERS):
        ctx.db.data[b"list:%04d" % i] = List([value] * elements)


def load_sets(ctx, keys, value, commands):
    size = commands // BIG * 2 + 100
    for i in range(BIG):
        ctx.db.data[b"set:%d" % i] = Set(b"member:%012d:%d" % (m, i) for m in range(size))


def load_zsets(ctx, keys, value, commands):
    """Every member _element can draw, spread over the zsets (ZADD adds to them)."""
    rng = random.Random(2)
    zsets = [ZSet() for _ in range(BIG)]
    for m in range(keys):
        zsets[m % BIG].insert(b"element:%012d" % m, float(rng.randrange(keys)))
    for i, zs in enumerate(zsets):
        ctx.db.data[b"zset:%d" % i] = zs


def no_load(ctx, keys, value, commands):
    pass


SCENARIOS = {
    "GET": (_get, False, load_strings, 1),
    "SET": (_set, False, load_strings, 1),
    "GET 2 shards": (_get, True, load_strings, 1),
    "LPUSH": (_push(b"LPUSH"), False, no_load, 1),
    "RPUSH": (_push(b"RPUSH"), False, no_load, 1),
    "LPOP": (_lpop, False, load_lists, 1),
    "SADD": (_sadd, False, no_load, 1),
    "HSET": (_hset, False, no_load, 1),
    "LRANGE 100": (_lrange, False, load_lists, 10),
    "SPOP": (_spop, False, load_sets, 1),
    "ZADD": (_zadd, False, no_load, 1),
    "ZADD preloaded": (_zadd, False, load_zsets, 1),
    "ZINCRBY": (_zincrby, False, load_zsets, 1),
    "ZSCORE": (_zscore, False, load_zsets, 1),
}


def make_batches(make, count, size, keys, value, rng):
    return [[make(rng, keys, value) for _ in range(size)] for _ in range(count)]


def fast(run_batch, sharded):
    owners = OWNERS if sharded else None

    def run(ctx, batches):
        db, ks, proto = ctx.db, ctx.ks, ctx.proto
        replies = 0
        for batch in batches:
            out = []
            fwd = [[] for _ in range(SHARDS)] if sharded else None
            i, _, _ = run_batch(batch, 0, out, db, ks, proto, owners, 0, fwd)
            if i < len(batch):          # nothing here should fall back
                raise SystemExit("fast path stopped at %r" % batch[i])
            replies += len(out)
        return replies
    return run


def normal(sharded):
    def run(ctx, batches):
        encode = ENCODERS[ctx.proto].encode
        replies = 0
        for batch in batches:
            if sharded:
                out, fwd = [], [[] for _ in range(SHARDS)]
                for argv in batch:
                    owner = OWNERS[key_slot(argv[1])]
                    if owner:
                        fwd[owner].append(argv)
                        out.append(owner)
                    else:
                        out.append(encode(execute(ctx, argv)))
            else:
                out = [encode(execute(ctx, argv)) for argv in batch]
            replies += len(out)
        return replies
    return run


def best_rate(fn, fresh_context, batches, rounds, expected):
    best = 0.0
    for _ in range(rounds):
        ctx = fresh_context()
        start = time.perf_counter()
        n = fn(ctx, batches)
        elapsed = time.perf_counter() - start
        if n != expected:
            raise SystemExit("%d replies, expected %d" % (n, expected))
        best = max(best, n / elapsed)
    return best


def loaded_context(load, keys, value, commands):
    ctx = Context(Keyspace())
    load(ctx, keys, value, commands)
    return ctx


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=16, help="commands per batch")
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--value-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help="comma-separated, out of: %s" % ", ".join(SCENARIOS))
    args = ap.parse_args()
    scenarios = [name.strip() for name in args.scenarios.split(",")]
    unknown = [name for name in scenarios if name not in SCENARIOS]
    if unknown:
        ap.error("unknown scenario(s): %s" % ", ".join(unknown))

    contenders = [("normal path (execute + encode)", normal), ("py_run_batch", py_run_batch)]
    if native_run_batch is not None:
        contenders.append(("run_batch (native)", native_run_batch))
    rng = random.Random(1)
    value = b"v" * args.value_size

    print("# %s" % " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]))
    print("%d batches of %d commands, %d-byte values, %d keys, best of %d\n"
          % (args.batches, args.batch, args.value_size, args.keys, args.rounds))
    rows = []
    for scenario in scenarios:
        make, sharded, load, divisor = SCENARIOS[scenario]
        count = max(1, args.batches // divisor)
        batches = make_batches(make, count, args.batch, args.keys, value, rng)
        expected = count * args.batch
        base = None
        for name, impl in contenders:
            run = normal(sharded) if impl is normal else fast(impl, sharded)
            rate = best_rate(run, lambda: loaded_context(load, args.keys, value, expected),
                             batches, args.rounds, expected)
            base = base or rate
            rows.append(("%s: %s" % (scenario, name), fmt_int(rate), fmt_ratio(rate, base)))
    print(markdown_table(("batch: implementation", "commands/s", "x normal path"), rows))


if __name__ == "__main__":
    main()
