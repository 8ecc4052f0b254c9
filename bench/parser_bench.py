"""Request parser throughput: commands/second for a pipeline split into realistic reads.

    python bench/parser_bench.py [--commands 10000] [--read 16384] [--rounds 7]

Parses a pipeline of SET/GET commands (alternating, 10-byte keys, short values) fed in
--read sized chunks, with PyRequestParser, the native RequestParser and hiredis.Reader (which
parses replies, not requests, and has no inline/limit handling: a yardstick, not a twin).
Prints the best of --rounds for each.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from fastcache.protocol.parser import NativeRequestParser, PyRequestParser  # noqa: E402
from tests.support.resp import encode_command  # noqa: E402


def pipeline(count, value_size):
    value = b"v" * value_size
    return b"".join(
        encode_command([b"SET", b"key:%06d" % i, value]) if i % 2 == 0
        else encode_command([b"GET", b"key:%06d" % i])
        for i in range(count))


def run_parser(factory, chunks):
    parser = factory()
    parse = parser.parse
    n = 0
    for chunk in chunks:
        n += len(parse(chunk))
    return n


def run_hiredis(chunks):
    import hiredis
    reader = hiredis.Reader()
    n = 0
    for chunk in chunks:
        reader.feed(chunk)
        while reader.gets() is not False:
            n += 1
    return n


def best_rate(fn, chunks, rounds, expected):
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        n = fn(chunks)
        elapsed = time.perf_counter() - start
        if n != expected:
            raise SystemExit("parsed %d commands, expected %d" % (n, expected))
        best = max(best, n / elapsed)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=10000)
    ap.add_argument("--read", type=int, default=16384, help="bytes per read")
    ap.add_argument("--value-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    data = pipeline(args.commands, args.value_size)
    chunks = [data[i:i + args.read] for i in range(0, len(data), args.read)]
    contenders = [("PyRequestParser", lambda c: run_parser(PyRequestParser, c))]
    if NativeRequestParser is not None:
        contenders.append(("RequestParser (native)", lambda c: run_parser(NativeRequestParser, c)))
    try:
        import hiredis  # noqa: F401
        contenders.append(("hiredis.Reader", run_hiredis))
    except ImportError:
        pass

    print("# %s" % " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]))
    print("%d commands, %d bytes, %d reads of %d bytes, best of %d\n"
          % (args.commands, len(data), len(chunks), args.read, args.rounds))
    print("| parser | commands/s |")
    print("|---|---:|")
    for name, fn in contenders:
        rate = best_rate(fn, chunks, args.rounds, args.commands)
        print("| %s | %s |" % (name, format(int(rate), ",")))


if __name__ == "__main__":
    main()
