"""fastcache-check: verify a data directory, and repair a damaged WAL (like redis-check-aof).

    fastcache-check [--databases N] [--fix [--yes]] PATH

PATH is a data directory (holding ``shard-<i>/``), one shard directory, or one WAL
segment or snapshot file. A shard is sound when every snapshot loads, every segment's
records are intact, and the records after the newest valid snapshot (seq S) run on
from S+1 with no hole, which is what recovery needs to start.

--fix cuts each damaged segment back to its last intact record. When the records lost
in a cut leave a hole that recovery would stop at, the later segments are renamed to
``<name>.bad`` (kept, never deleted), as are snapshots that do not load. A segment
whose header cannot be read is left alone, and so is the rest of its shard:
truncating it would throw the whole file away.

Run it while the server is stopped: the server appends to the newest segment.

Exit status: 0 all sound (or all repaired), 1 problems found (or some left
unrepaired, or the repair declined), 2 usage error.
"""
import argparse
import os
import re
import sys

from fastcache.engine.keyspace import Keyspace
from fastcache.persistence import snapshot, walfile

_SHARD_DIR = re.compile(r"shard-(\d+)\Z")


class Unit:
    """Files checked together: a shard's whole directory, or one file on its own."""

    def __init__(self, shard_dir, shard, snapshots, segments, whole):
        self.dir = shard_dir
        self.shard = shard            # None when the directory name does not say
        self.snapshots = snapshots    # [(seq or None, path)]
        self.segments = segments      # [(first seq or None, path)], oldest first
        self.whole = whole            # sequence checks span files only for a whole shard
        self.repairs = []             # Cut and SetAside, in file order: what --fix would do
        self.blocked = []             # unreadable segment headers: leave the shard alone
        self.unrepairable = False     # a problem no repair here addresses


class Cut:
    """Truncate a segment after its last intact record."""

    def __init__(self, path, offset, dropped):
        self.path = path
        self.offset = offset
        self.dropped = dropped        # bytes
        self.lost = None              # records, None while (or when) not countable

    def plan(self):
        return "truncate %s at offset %d, dropping %d bytes (%s lost)" % (
            self.path, self.offset, self.dropped, _lost(self.lost))

    def apply(self):
        walfile.truncate(self.path, self.offset)
        return "%s: truncated at offset %d, %d bytes dropped, %s lost" % (
            self.path, self.offset, self.dropped, _lost(self.lost))


class SetAside:
    """Rename a file recovery must not read to a free <name>.bad[.N]."""

    def __init__(self, path, what, lost):
        self.path = path
        self.what = what
        self.lost = lost              # records it holds, None if unknown

    def plan(self):
        return "move %s aside to .bad (%s)" % (self.path, self.what)

    def apply(self):
        target = self.path + ".bad"
        n = 0
        while os.path.exists(target):
            n += 1
            target = "%s.bad.%d" % (self.path, n)
        os.rename(self.path, target)
        walfile.fsync_dir(os.path.dirname(target) or ".")   # the rename, durably
        return "%s: moved aside to %s (%s)" % (self.path, target, self.what)


class Tally:
    def __init__(self):
        self.snapshots = self.segments = self.records = self.problems = 0

    def problem(self, line):
        print(line)
        self.problems += 1


# -- finding the files -----------------------------------------------------------

def find_units(path):
    """The Units under path; None when it holds nothing to check."""
    if os.path.isfile(path):
        return [_file_unit(path)]
    shards = []
    for name in os.listdir(path):
        m = _SHARD_DIR.match(name)
        sub = os.path.join(path, name)
        if m is not None and os.path.isdir(sub):
            shards.append((int(m.group(1)), sub))
    if shards:
        return [_shard_unit(sub, n) for n, sub in sorted(shards)]
    unit = _shard_unit(path, _shard_number(path))
    if unit.shard is None and not unit.snapshots and not unit.segments:
        return None
    return [unit]


def _shard_number(shard_dir):
    m = _SHARD_DIR.match(os.path.basename(os.path.normpath(shard_dir)))
    return int(m.group(1)) if m is not None else None


def _shard_unit(shard_dir, shard):
    return Unit(shard_dir, shard, snapshot.list_snapshots(shard_dir),
                walfile.list_segments(shard_dir), True)


def _file_unit(path):
    shard_dir = os.path.dirname(path) or "."
    name = os.path.basename(path)
    unit = Unit(shard_dir, _shard_number(shard_dir), [], [], False)
    listed = [(seq, path) for seq, p in walfile.list_segments(shard_dir)
              if os.path.basename(p) == name]
    if listed:
        unit.segments = listed
    elif name.endswith(".fcs"):
        unit.snapshots = [(None, path)]
    else:
        unit.segments = [(None, path)]   # e.g. a segment set aside as .bad
    return unit


# -- checking --------------------------------------------------------------------

def check_snapshots(unit, tally, databases):
    """Load each snapshot into a scratch keyspace; the newest good one's seq (0 if none)."""
    base = 0
    for _, path in unit.snapshots:
        tally.snapshots += 1
        ks = Keyspace(databases)
        try:
            seq = snapshot.read_snapshot(path, ks)
            shard = snapshot.read_header(path)["shard"]
        except Exception as exc:   # noqa: BLE001 - a damaged file must be reported, whatever it trips
            reason = str(exc) if isinstance(exc, (snapshot.SnapshotError, OSError)) \
                else "cannot load: %s: %s" % (type(exc).__name__, exc)
            if reason.startswith(path + ": "):
                reason = reason[len(path) + 2:]
            tally.problem("%s: bad snapshot: %s" % (path, reason))
            unit.repairs.append(SetAside(path, "snapshot", 0))
            continue
        if unit.shard is not None and shard != unit.shard:
            tally.problem("%s: bad snapshot: written by shard %d" % (path, shard))
            unit.repairs.append(SetAside(path, "snapshot", 0))
            continue
        keys = sum(len(db.data) for db in ks.dbs)
        print("%s: ok, seq %d, %s" % (path, seq, _plural(keys, "key")))
        base = max(base, seq)
    return base


def check_wal(unit, tally, base, databases):
    """Check each segment in order and plan the repair. Records up to base are in
    the snapshot, so a hole or overlap matters only where it reaches past base."""
    due = base + 1 if unit.whole else None   # the next sequence the log must hold
    open_cut = None     # the latest cut, until the next segment shows what it lost
    set_aside = False   # everything from here on moves to .bad
    for first, path in unit.segments:
        tally.segments += 1
        try:
            seg = walfile.Segment(path, unit.shard)
        except (walfile.WalFormatError, OSError) as exc:
            tally.problem("%s: %s" % (path, _header_problem(path, exc)))
            if set_aside:
                unit.repairs.append(SetAside(path, "unreadable segment", None))
            else:
                unit.blocked.append(path)
            due = open_cut = None     # what the file held is unknown
            continue
        count = _report_segment(unit, tally, seg, first, databases)
        problem = seg.problem
        if (count or (problem and problem[0] == "corrupt")) and first is not None:
            if due is not None and first != due and max(first, due) - 1 > base and not set_aside:
                set_aside = True
                if open_cut is None:
                    tally.problem(_gap(unit, path, first, due, base))
            if open_cut is not None and due is not None:
                open_cut.lost = max(first - due, 0)
            open_cut = None
            due = seg.last_seq + 1 if count else first
        if set_aside:
            unit.repairs.append(SetAside(path, "segment, " + _plural(count, "record"), count))
        elif problem is not None:
            open_cut = Cut(path, seg.end, len(seg.data) - seg.end)
            if problem[0] == "torn":
                # Zeros are space never written; anything else is one half-written record.
                unwritten = seg.end == 0 or not seg.data[seg.end:].strip(b"\0")
                open_cut.lost = 0 if unwritten else 1
            unit.repairs.append(open_cut)


def _report_segment(unit, tally, seg, first, databases):
    """Read seg's records and print its line; how many are intact."""
    count = 0
    top_db = -1
    first_seq = None
    for seq, dbid, _ in seg.records(first):
        if first_seq is None:
            first_seq = seq
        if dbid > top_db:
            top_db = dbid
        count += 1
    tally.records += count
    line = "%s: %s, %s" % (seg.path, "ok" if seg.problem is None else _describe(seg.problem),
                           _plural(count, "record"))
    if count:
        line += ", seq %d..%d" % (first_seq, seg.last_seq)
    if seg.problem is None:
        print(line)
    else:
        tally.problem(line)
    if top_db >= databases:   # recovery would refuse these records
        tally.problem("%s: holds records for db %d, more than --databases %d allows"
                      % (seg.path, top_db, databases))
        unit.unrepairable = True
    return count


def _describe(problem):
    kind, offset, detail = problem
    if kind == "torn":
        return "torn tail at offset %d (%d bytes)" % (offset, detail)
    return "corrupt at offset %d: %s" % (offset, detail)


def _header_problem(path, exc):
    if isinstance(exc, OSError):
        return "unreadable: %s" % (exc.strerror or exc)
    text = str(exc)
    if text.startswith(path + " "):
        text = text[len(path) + 1:]
    return "bad header, file " + text


def _gap(unit, path, first, due, base):
    name = os.path.basename(path)
    if first > due:
        what = "records %d..%d are missing before %s" % (due, first - 1, name)
    else:
        what = "%s repeats records %d..%d" % (name, first, due - 1)
    if base:
        what += " (newest valid snapshot at seq %d)" % base
    elif unit.snapshots:
        what += " (no valid snapshot)"
    return "%s: sequence gap: %s" % (unit.dir, what)


def _plural(n, noun):
    return "%d %s%s" % (n, noun, "" if n == 1 else "s")


# -- repairing -------------------------------------------------------------------

def repair(units):
    """Make the planned changes in file order; the records lost, as a phrase."""
    counts = []
    for unit in units:
        if not unit.blocked:
            for action in unit.repairs:
                print(action.apply())
                counts.append(action.lost)
    known = sum(n for n in counts if n is not None)
    if None not in counts:
        return _plural(known, "record")
    return "at least " + _plural(known, "record") if known else "an unknown number of records"


def _lost(lost):
    return "an unknown number of records" if lost is None else _plural(lost, "record")


def _confirm():
    sys.stdout.write("Continue? [y/N]: ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


# -- command line ----------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="fastcache-check",
        description="Verify a fastcache data directory's WAL segments and snapshots; "
                    "with --fix, cut a damaged WAL back to its last intact record.")
    parser.add_argument("path", help="data directory, shard directory, or one file")
    parser.add_argument("--fix", action="store_true", help="repair what can be repaired")
    parser.add_argument("--yes", "-y", action="store_true", help="repair without asking")
    parser.add_argument("--databases", type=int, default=16, metavar="N",
                        help="databases per shard, as the server is configured (default 16)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code
    if args.databases < 1:
        print("fastcache-check: --databases must be at least 1", file=sys.stderr)
        return 2
    if not os.path.exists(args.path):
        print("fastcache-check: no such file or directory: %s" % args.path, file=sys.stderr)
        return 2
    try:
        units = find_units(args.path)
    except OSError as exc:
        print("fastcache-check: %s: %s" % (args.path, exc.strerror or exc), file=sys.stderr)
        return 2
    if units is None:
        print("fastcache-check: %s holds no shard directories, WAL segments or snapshots"
              % args.path, file=sys.stderr)
        return 2

    tally = Tally()
    for unit in units:
        base = check_snapshots(unit, tally, args.databases)
        check_wal(unit, tally, base, args.databases)
    print("Checked %s: %s, %s, %s. %s." % (
        _plural(len(units), "shard" if units[0].whole else "file"),
        _plural(tally.snapshots, "snapshot"), _plural(tally.segments, "WAL segment"),
        _plural(tally.records, "record"),
        "No problems found" if not tally.problems else _plural(tally.problems, "problem") + " found"))
    if not tally.problems:
        return 0
    if not args.fix:
        return 1
    return fix(units, args.yes)


def fix(units, yes):
    for unit in units:
        for path in unit.blocked:
            print("%s: cannot be repaired by truncation; %s left unchanged" % (path, unit.dir))
    lines = ["  " + action.plan() for unit in units if not unit.blocked
             for action in unit.repairs]
    if not lines:
        print("Nothing --fix can repair.")
        return 1
    if not yes:
        print("The repair will:")
        print("\n".join(lines))
        if not _confirm():
            print("Aborted; nothing changed.")
            return 1
    print("Repaired; %s lost." % repair(units))
    return 1 if any(unit.blocked or unit.unrepairable for unit in units) else 0


if __name__ == "__main__":
    sys.exit(main())
