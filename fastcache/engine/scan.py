"""Cursors for SCAN, HSCAN, SSCAN and ZSCAN.

Python containers have no stable bucket order to walk the way Redis does,
so a scan that cannot finish in one call iterates a snapshot of the
container's keys taken when it starts (cursor 0). What this guarantees is
Redis's SCAN contract:

* every element present in the container for the whole scan is returned at
  least once (the snapshot holds it; the caller drops elements that have
  gone since, so deleted ones are not returned after their deletion);
* elements added during the scan may or may not be returned (they are not);
* an element is returned at most once per scan, unless the scan restarts;
* COUNT is a hint: each call walks `count` snapshot entries, so a call may
  return fewer elements (some were deleted, or filtered by the caller);
* a container small enough for one call is returned whole with cursor 0,
  and a scan ends when cursor 0 comes back.

Memory stays bounded: the snapshots live in a small per-keyspace LRU, and a
finished scan drops its snapshot. A cursor whose snapshot was evicted, that
belongs to another container, or that was never issued is not an error: the
scan restarts from the beginning, which repeats elements (allowed) but never
skips any.

A cursor is snapshot id << 32 | position, below 2**56 so that the server can
put a shard number in the low 8 bits of the cursor it hands to clients.
"""
import weakref
from collections import OrderedDict

from fastcache.engine import errors
from fastcache.engine.args import parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.glob import compile_glob

INVALID_CURSOR = "ERR invalid cursor"

POSITION_BITS = 32
_POSITION_MASK = (1 << POSITION_BITS) - 1
ID_LIMIT = 1 << 24  # snapshot ids: 1 .. ID_LIMIT - 1, so cursors stay below 2**56
_ULONG = 1 << 64
_SPACES = b" \t\n\v\f\r"


def parse_cursor(raw):
    """A cursor as Redis reads it (strtoul, base 10): a sign is allowed and
    '-n' wraps around, leading blanks, trailing junk and overflow are not."""
    if b"\0" in raw:  # C stops reading at NUL
        raw = raw[:raw.index(b"\0")]
    if not raw:
        return 0
    if raw[0] in _SPACES:
        raise CommandError(INVALID_CURSOR)
    digits = raw[1:] if raw[0] in b"+-" else raw
    if not digits.isdigit():
        raise CommandError(INVALID_CURSOR)
    value = int(digits)
    if value >= _ULONG:
        raise CommandError(INVALID_CURSOR)
    if raw[0] == 0x2D and value:  # '-'
        value = _ULONG - value
    return value


class ScanCursors:
    """The in-progress scans of one keyspace, least recently used evicted first."""

    def __init__(self, capacity=128):
        self.capacity = capacity
        self._snapshots = OrderedDict()  # id -> (owner, list of keys)
        self._last_id = 0

    def __len__(self):
        return len(self._snapshots)

    def step(self, owner, container, cursor, count):
        """One SCAN call over container: (next cursor, batch of keys).

        owner is any hashable naming the container (e.g. the db number, or
        (db number, key)); a cursor issued for another owner restarts. The
        batch may hold keys that have since left the container: the caller
        checks each one. Pass count >= len(container) to get everything in
        one call (what Redis does for its compact encodings)."""
        snapshots = self._snapshots
        entry = None
        if cursor:
            snap_id = cursor >> POSITION_BITS
            pos = cursor & _POSITION_MASK
            entry = snapshots.get(snap_id)
            if entry is not None and (entry[0] != owner or pos > len(entry[1])):
                entry = None
        if entry is None:
            if len(container) <= count:
                return 0, list(container)
            snap_id = self._new_id()
            entry = (owner, list(container))
            snapshots[snap_id] = entry
            pos = 0
            while len(snapshots) > self.capacity:
                snapshots.popitem(last=False)
        else:
            snapshots.move_to_end(snap_id)
        keys = entry[1]
        end = pos + count
        batch = keys[pos:end]
        if end >= len(keys):
            snapshots.pop(snap_id, None)
            return 0, batch
        return (snap_id << POSITION_BITS) | end, batch

    def _new_id(self):
        snap_id = self._last_id
        while True:
            snap_id = snap_id + 1 if snap_id + 1 < ID_LIMIT else 1
            if snap_id not in self._snapshots:
                self._last_id = snap_id
                return snap_id


_PER_KEYSPACE = weakref.WeakKeyDictionary()


def cursors_of(ks):
    """The ScanCursors of keyspace ks (created on first use, dropped with ks)."""
    cursors = _PER_KEYSPACE.get(ks)
    if cursors is None:
        cursors = _PER_KEYSPACE[ks] = ScanCursors()
    return cursors


def parse_options(argv, start, allow_type):
    """SCAN-family options from argv[start:]: (matcher or None, count, type name or None).

    The matcher is None when every key matches (no MATCH, or MATCH *)."""
    matcher = None
    count = 10
    typename = None
    i, n = start, len(argv)
    while i < n:
        option = argv[i].lower()
        if i + 1 >= n:
            raise CommandError(errors.SYNTAX)
        if option == b"count":
            count = parse_int(argv[i + 1])
            if count < 1:
                raise CommandError(errors.SYNTAX)
        elif option == b"match":
            pattern = argv[i + 1]
            matcher = None if pattern == b"*" else compile_glob(pattern)
        elif option == b"type" and allow_type:
            typename = argv[i + 1].lower().decode("latin-1")
        else:
            raise CommandError(errors.SYNTAX)
        i += 2
    return matcher, count, typename


def step_container(ctx, argv, cursor, value, big, whole=None):
    """The shared middle of HSCAN/SSCAN/ZSCAN once the key's value is found:
    its options, then (next cursor, batch, MATCH test). A compact encoding
    (listpack, intset) comes back whole in one call whatever the cursor, as in
    Redis: `whole` is what to return then (default: the value itself)."""
    match, count, _ = parse_options(argv, 3, False)
    if big:
        cursor, batch = cursors_of(ctx.ks).step((ctx.db.id, argv[1]), value, cursor, count)
        return cursor, batch, match
    return 0, value if whole is None else whole, match
