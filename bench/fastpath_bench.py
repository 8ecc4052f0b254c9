"""Command fast path throughput: commands/second of run_batch against the normal path.

    python bench/fastpath_bench.py [--batches 20000] [--batch 16] [--keys 100000] [--rounds 5]

In-process, no sockets: pipelined batches of --batch GETs (or SETs) of --value-size byte
values on random keys out of --keys (all present for GET), as the request parser returns them.
Contenders: the native run_batch, its pure-Python twin py_run_batch, and the normal path
(dispatch.execute + the encoder, per command). Prints the best of --rounds for each.

"GET, 2 shards" is shard 0 of a 2-shard server: about half the keys are shard 1's, and each
contender queues those for forwarding (run_batch's fwd; the normal path routes in Python).
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
from fastcache.engine.slots import key_slot, slot_table  # noqa: E402
from fastcache.protocol.encoder import ENCODERS  # noqa: E402

SHARDS = 2
OWNERS = slot_table(SHARDS)


def make_batches(name, count, size, keys, value_size, rng):
    value = b"v" * value_size
    batches = []
    for _ in range(count):
        names = [b"key:%06d" % rng.randrange(keys) for _ in range(size)]
        if name == "SET":
            batches.append([[b"SET", k, value] for k in names])
        else:
            batches.append([[b"GET", k] for k in names])
    return batches


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


def best_rate(fn, ctx, batches, rounds, expected):
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        n = fn(ctx, batches)
        elapsed = time.perf_counter() - start
        if n != expected:
            raise SystemExit("%d replies, expected %d" % (n, expected))
        best = max(best, n / elapsed)
    return best


def loaded_context(keys, value_size):
    ctx = Context(Keyspace())
    value = b"v" * value_size
    for i in range(keys):
        ctx.db.data[b"key:%06d" % i] = value
    return ctx


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=16, help="commands per batch")
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--value-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    contenders = [("normal path (execute + encode)", normal), ("py_run_batch", py_run_batch)]
    if native_run_batch is not None:
        contenders.append(("run_batch (native)", native_run_batch))
    rng = random.Random(1)
    expected = args.batches * args.batch

    print("# %s" % " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]))
    print("%d batches of %d commands, %d-byte values, %d keys, best of %d\n"
          % (args.batches, args.batch, args.value_size, args.keys, args.rounds))
    rows = []
    for scenario, sharded in (("GET", False), ("SET", False), ("GET, 2 shards", True)):
        batches = make_batches(scenario, args.batches, args.batch, args.keys, args.value_size,
                               rng)
        base = None
        for name, impl in contenders:
            run = normal(sharded) if impl is normal else fast(impl, sharded)
            ctx = loaded_context(args.keys, args.value_size)
            rate = best_rate(run, ctx, batches, args.rounds, expected)
            base = base or rate
            rows.append(("%s: %s" % (scenario, name), fmt_int(rate), fmt_ratio(rate, base)))
    print(markdown_table(("batch: implementation", "commands/s", "x normal path"), rows))


if __name__ == "__main__":
    main()
