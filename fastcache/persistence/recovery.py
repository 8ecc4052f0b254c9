"""Start-up: rebuild a shard from its newest valid snapshot plus the WAL after it."""
import os
import time

from fastcache import log
from fastcache.persistence import snapshot, walfile
from fastcache.persistence.apply import Applier, RecordError


class RecoveryError(Exception):
    """The shard's files cannot be loaded as they are; start-up must stop."""


class Loaded:
    """What recovery found: the last sequence and how it got there."""

    def __init__(self):
        self.seq = 0
        self.snapshot_seq = 0
        self.snapshot_path = None
        self.records = 0
        self.seconds = 0.0


def recover(ks, shard_dir, shard, load_truncated=True):
    """Fill ks from shard_dir; returns Loaded. Raises RecoveryError for corruption
    in the middle of the log, a torn tail when load_truncated is off, a file
    of another format version, or a gap in the sequence."""
    started = time.monotonic()
    loaded = Loaded()
    try:
        seq, path = snapshot.newest_valid(shard_dir, ks)
    except snapshot.SnapshotError as exc:
        raise RecoveryError(str(exc)) from None
    loaded.seq = loaded.snapshot_seq = seq
    loaded.snapshot_path = path
    applier = Applier(ks)
    segments = walfile.list_segments(shard_dir)
    _check_covered(shard_dir, loaded, segments)
    for i, (first, seg_path) in enumerate(segments):
        last_segment = i == len(segments) - 1
        if not last_segment and segments[i + 1][0] - 1 <= loaded.snapshot_seq:
            continue        # wholly covered by the snapshot
        try:
            segment = walfile.Segment(seg_path, shard)
        except walfile.WalFormatError as exc:
            raise RecoveryError(str(exc)) from None
        try:
            applier.apply_all(_after(segment.records(first), loaded))
        except RecordError as exc:
            raise RecoveryError("Cannot replay %s: %s" % (seg_path, exc)) from None
        if segment.problem is not None:
            _settle(segment, last_segment, load_truncated, shard_dir)
    loaded.seconds = time.monotonic() - started
    return loaded


def _check_covered(shard_dir, loaded, segments):
    """Refuse to start from less than the files once held: when the snapshot
    that should be the base was unreadable and the WAL does not reach back far
    enough to rebuild it, starting would silently drop data."""
    skipped = [path for seq, path in snapshot.list_snapshots(shard_dir) if seq > loaded.seq]
    if not skipped:
        return
    first = next((first for first, _ in segments), None)
    if first is None or first > loaded.seq + 1:
        raise RecoveryError("Snapshot %s is unreadable and the WAL in %s does not go back far "
                            "enough to rebuild it; move the bad snapshot aside to start from "
                            "what remains, or restore it from a backup" % (skipped[-1], shard_dir))


def _after(records, loaded):
    """The records past the snapshot, checking that they follow it without a gap."""
    for record in records:
        seq = record[0]
        if seq <= loaded.snapshot_seq:
            continue
        if seq != loaded.seq + 1:
            raise RecoveryError("WAL record %d follows %d: records are missing (snapshot at %d)"
                                % (seq, loaded.seq, loaded.snapshot_seq))
        loaded.seq = seq
        loaded.records += 1
        yield record


def _settle(segment, last_segment, load_truncated, shard_dir):
    kind, offset, detail = segment.problem
    path = segment.path
    if kind == "torn" and last_segment and load_truncated:
        walfile.truncate(path, segment.end)
        log.warning("WAL %s ends with an incomplete record: truncated at offset %d, "
                    "%d bytes dropped" % (path, segment.end, detail))
        return
    if kind == "torn":
        what = "an incomplete record at offset %d (%d bytes)" % (offset, detail)
        if last_segment:
            hint = "set aof-load-truncated yes, or run 'fastcache-check --fix %s'" % shard_dir
        else:
            hint = "run 'fastcache-check --fix %s'" % shard_dir
    else:
        what = "a bad record at offset %d (%s)" % (offset, detail)
        hint = "run 'fastcache-check --fix %s' to cut the log there" % shard_dir
    raise RecoveryError("WAL %s has %s; back it up, then %s" % (path, what, hint))


def shard_dir(config, index):
    return os.path.join(config["dir"], "shard-%d" % index)
