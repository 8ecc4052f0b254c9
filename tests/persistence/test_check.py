"""fastcache-check: verification, exit codes and --fix, in-process and as the console script."""
import io
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fastcache.engine.keyspace import Keyspace
from fastcache.persistence import snapshot, walfile
from fastcache.persistence.check import main
from fastcache.persistence.recovery import recover
from tests.support.persist import flip, patch

HEADER = walfile.FILE_HEADER.size
RECORD = walfile.RECORD_HEADER.size


def record(seq):
    return walfile.encode_record(seq, 0, [b"SET", b"key:%d" % seq, b"value %d" % seq])


def write_segment(shard_dir, shard, first, count, tail=b""):
    """A segment holding records first..first+count-1, then tail; its path."""
    os.makedirs(shard_dir, exist_ok=True)
    path = os.path.join(shard_dir, walfile.segment_name(first))
    with open(path, "wb") as f:
        f.write(walfile.file_header(shard))
        for seq in range(first, first + count):
            f.write(record(seq))
        f.write(tail)
    return path


def write_snapshot(shard_dir, shard, seq, keys=(b"a", b"b", b"c")):
    ks = Keyspace(16)
    for key in keys:
        ks.set(ks.dbs[0], key, b"x")
    return snapshot.write_snapshot(shard_dir, shard, seq, ks)


def snapshot_of(root):
    """{relative path: bytes} of every file under root."""
    found = {}
    for here, _, names in os.walk(root):
        for name in names:
            path = os.path.join(here, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


def run(capsys, *argv, answer=None, monkeypatch=None):
    """main(argv) in-process: (exit code, stdout)."""
    if answer is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().out


@pytest.fixture
def data(tmp_path):
    """A sound two-shard data directory: shard 0 has a snapshot at 5 and segments
    1..5 (covered) and 6..8; shard 1 has segments 1..3 and 4..9."""
    root = tmp_path / "data"
    s0, s1 = str(root / "shard-0"), str(root / "shard-1")
    write_segment(s0, 0, 1, 5)
    write_snapshot(s0, 0, 5)
    write_segment(s0, 0, 6, 3)
    write_segment(s1, 1, 1, 3)
    write_segment(s1, 1, 4, 6)
    return root


def seg_path(root, shard, first):
    return os.path.join(str(root), "shard-%d" % shard, walfile.segment_name(first))


# -- checking ----------------------------------------------------------------------

def test_valid_directory(capsys, data):
    code, out = run(capsys, data)
    assert code == 0
    assert "%s: ok, 5 records, seq 1..5" % seg_path(data, 0, 1) in out
    assert "%s: ok, 3 records, seq 6..8" % seg_path(data, 0, 6) in out
    assert "snap-00000000000000000005.fcs: ok, seq 5, 3 keys" in out
    assert out.splitlines()[-1] == ("Checked 2 shards: 1 snapshot, 4 WAL segments, "
                                    "17 records. No problems found.")


def test_single_shard_dir_and_single_files(capsys, data):
    assert run(capsys, data / "shard-1")[0] == 0
    code, out = run(capsys, seg_path(data, 1, 4))
    assert code == 0 and "ok, 6 records, seq 4..9" in out
    assert out.splitlines()[-1].startswith("Checked 1 file: 0 snapshots, 1 WAL segment")
    code, out = run(capsys, data / "shard-0" / "snap-00000000000000000005.fcs")
    assert code == 0 and "ok, seq 5" in out


def test_usage_errors(capsys, tmp_path):
    assert main([str(tmp_path / "missing")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("hi")
    assert main([str(tmp_path)]) == 2
    assert main([]) == 2
    assert main(["--databases", "0", str(tmp_path)]) == 2


def test_torn_tail_mid_record(capsys, data):
    path = seg_path(data, 1, 4)
    size = os.path.getsize(path)
    last = size - len(record(9))
    with open(path, "r+b") as f:
        f.truncate(size - 7)
    code, out = run(capsys, data)
    assert code == 1
    assert "%s: torn tail at offset %d (%d bytes), 5 records, seq 4..8" % (
        path, last, size - 7 - last) in out
    assert "1 problem found" in out
    code, out = run(capsys, "--fix", "--yes", data)
    assert code == 0
    assert "%s: truncated at offset %d, %d bytes dropped, 1 record lost" % (
        path, last, size - 7 - last) in out
    assert os.path.getsize(path) == last
    assert run(capsys, data)[0] == 0


def test_zero_filled_tail(capsys, data):
    path = seg_path(data, 0, 6)
    end = os.path.getsize(path)
    with open(path, "ab") as f:
        f.write(bytes(4096))
    code, out = run(capsys, data)
    assert code == 1 and "torn tail at offset %d (4096 bytes), 3 records" % end in out
    code, out = run(capsys, "--fix", "--yes", data)
    assert code == 0 and "4096 bytes dropped, 0 records lost" in out
    assert os.path.getsize(path) == end
    assert run(capsys, data)[0] == 0


def test_corrupt_first_record_sets_later_segments_aside(capsys, tmp_path):
    shard = str(tmp_path / "shard-0")
    write_segment(shard, 0, 1, 3)
    bad = write_segment(shard, 0, 4, 4)
    later = [write_segment(shard, 0, 8, 2), write_segment(shard, 0, 10, 5)]
    flip(bad, HEADER + RECORD + 3)         # a payload byte of record 4
    code, out = run(capsys, tmp_path)
    assert code == 1
    assert "%s: corrupt at offset %d: checksum mismatch, 0 records" % (bad, HEADER) in out
    size = os.path.getsize(bad)
    code, out = run(capsys, "--fix", "--yes", tmp_path)
    assert code == 0
    assert "%s: truncated at offset %d, %d bytes dropped, 4 records lost" % (
        bad, HEADER, size - HEADER) in out
    for path, n in zip(later, (2, 5)):
        assert "%s: moved aside to %s.bad (segment, %d records)" % (path, path, n) in out
        assert os.path.exists(path + ".bad") and not os.path.exists(path)
    assert "Repaired; 11 records lost." in out
    assert os.path.getsize(bad) == HEADER
    code, out = run(capsys, tmp_path)
    assert code == 0 and "2 WAL segments, 3 records" in out


def test_damaged_length_field(capsys, data):
    path = seg_path(data, 1, 4)
    second = HEADER + len(record(4))
    patch(path, second, (1 << 30).to_bytes(4, "little"))
    code, out = run(capsys, data)
    assert code == 1
    assert "%s: corrupt at offset %d: bad record header, 1 record, seq 4..4" % (path, second) in out
    code, out = run(capsys, "--fix", "--yes", data)
    # Records 5..9 were in this segment and no later one follows: not countable.
    assert code == 0 and "an unknown number of records lost" in out
    assert "Repaired; an unknown number of records lost." in out
    assert run(capsys, data)[0] == 0


@pytest.mark.parametrize("offset,value,reason", [
    (0, b"NOTAWAL!", "bad header, file is not a fastcache WAL segment"),
    (8, (7).to_bytes(2, "little"),
     "bad header, file has WAL format version 7; this fastcache reads version 1"),
    (10, (3).to_bytes(2, "little"), "bad header, file belongs to shard 3, not 1"),
])
def test_unreadable_header_is_not_repaired(capsys, data, offset, value, reason):
    path = seg_path(data, 1, 1)
    patch(path, offset, value)
    torn = seg_path(data, 1, 4)
    with open(torn, "ab") as f:
        f.write(b"junk")
    code, out = run(capsys, data)
    assert code == 1 and "%s: %s" % (path, reason) in out
    before = snapshot_of(data)
    code, out = run(capsys, "--fix", "--yes", data)
    assert code == 1
    assert "%s: cannot be repaired by truncation" % path in out
    assert snapshot_of(data) == before


def test_gap_after_snapshot(capsys, tmp_path):
    shard = str(tmp_path / "shard-2")
    write_snapshot(shard, 2, 10)
    later = write_segment(shard, 2, 13, 4)
    code, out = run(capsys, shard)
    assert code == 1
    assert ("%s: sequence gap: records 11..12 are missing before %s (newest valid snapshot "
            "at seq 10)" % (shard, os.path.basename(later))) in out
    code, out = run(capsys, "--fix", "--yes", shard)
    assert code == 0 and "moved aside" in out and os.path.exists(later + ".bad")
    assert run(capsys, shard)[0] == 0


def test_gap_between_segments(capsys, tmp_path):
    shard = str(tmp_path / "shard-0")
    write_segment(shard, 0, 1, 3)
    write_segment(shard, 0, 6, 2)
    code, out = run(capsys, tmp_path)
    assert code == 1 and "records 4..5 are missing before wal-00000000000000000006.log" in out


def test_damage_covered_by_snapshot_keeps_later_segments(capsys, data):
    """Records up to the snapshot's seq are not replayed: cutting them loses nothing
    recovery needs, so the segments after stay."""
    covered = seg_path(data, 0, 1)
    flip(covered, HEADER + len(record(1)) + RECORD + 1)      # record 2
    code, out = run(capsys, data)
    assert code == 1 and "corrupt at offset %d: checksum mismatch, 1 record" % (
        HEADER + len(record(1))) in out
    code, out = run(capsys, "--fix", "--yes", data)
    assert code == 0 and "moved aside" not in out and "4 records lost" in out
    assert os.path.exists(seg_path(data, 0, 6))
    assert run(capsys, data)[0] == 0


def test_bad_snapshot_falls_back_and_is_set_aside(capsys, tmp_path):
    shard = str(tmp_path / "shard-0")
    write_snapshot(shard, 0, 3)
    newest = write_snapshot(shard, 0, 6)
    write_segment(shard, 0, 4, 5)
    flip(newest, os.path.getsize(newest) - 1)
    code, out = run(capsys, tmp_path)
    assert code == 1 and "%s: bad snapshot: payload checksum mismatch" % newest in out
    code, out = run(capsys, "--fix", "--yes", tmp_path)
    assert code == 0 and os.path.exists(newest + ".bad")
    assert run(capsys, tmp_path)[0] == 0


def test_fix_declined_changes_nothing(capsys, monkeypatch, data):
    path = seg_path(data, 1, 4)
    flip(path, HEADER + RECORD)
    before = snapshot_of(data)
    code, out = run(capsys, "--fix", data, answer="n\n", monkeypatch=monkeypatch)
    assert code == 1
    assert "  truncate %s at offset %d" % (path, HEADER) in out
    assert "Continue? [y/N]: Aborted; nothing changed." in out
    assert snapshot_of(data) == before
    code, out = run(capsys, "--fix", data, answer="", monkeypatch=monkeypatch)   # EOF
    assert code == 1 and snapshot_of(data) == before
    code, out = run(capsys, "--fix", data, answer="yes\n", monkeypatch=monkeypatch)
    assert code == 0 and "truncated at offset" in out
    assert run(capsys, data)[0] == 0


def test_fix_on_sound_directory_changes_nothing(capsys, data):
    before = snapshot_of(data)
    assert run(capsys, "--fix", data)[0] == 0
    assert snapshot_of(data) == before


def test_set_aside_never_overwrites(capsys, tmp_path):
    shard = str(tmp_path / "shard-0")
    write_segment(shard, 0, 1, 2)
    later = write_segment(shard, 0, 9, 1)
    with open(later + ".bad", "wb") as f:
        f.write(b"earlier")
    code, out = run(capsys, "--fix", "--yes", tmp_path)
    assert code == 0 and os.path.exists(later + ".bad.1")
    with open(later + ".bad", "rb") as f:
        assert f.read() == b"earlier"


# -- agreement with recovery -------------------------------------------------------

damage = st.tuples(st.sampled_from(["flip", "cut", "zeros"]), st.integers(0, 2),
                   st.floats(0, 1, exclude_max=True))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 4), min_size=1, max_size=3), hurt=damage,
       snap=st.integers(0, 12))
def test_fix_leaves_what_recovery_loads(capsys, sizes, hurt, snap):
    """Whatever one act of damage did, --fix either refuses (unreadable header) and
    changes nothing, or leaves a log that recovery loads in full: a prefix of the
    records written, and a second check finds nothing."""
    kind, which, where = hurt
    with tempfile.TemporaryDirectory() as root:
        shard = os.path.join(root, "shard-0")
        paths, first = [], 1
        for n in sizes:
            paths.append(write_segment(shard, 0, first, n))
            first += n
        if 0 < snap < first:
            write_snapshot(shard, 0, snap, [b"key:%d" % seq for seq in range(1, snap + 1)])
        path = paths[which % len(paths)]
        size = os.path.getsize(path)
        offset = int(where * size)
        if kind == "flip":
            flip(path, offset)
        elif kind == "cut":
            with open(path, "r+b") as f:
                f.truncate(offset)
        else:
            patch(path, offset, bytes(size - offset))
        before = snapshot_of(root)
        code = main(["--fix", "--yes", root])
        out = capsys.readouterr().out
        if "cannot be repaired" in out:
            assert code == 1 and snapshot_of(root) == before
            return
        assert code == 0, out
        assert main([root]) == 0
        capsys.readouterr()
        ks = Keyspace(16)
        loaded = recover(ks, shard, 0, load_truncated=False)
        assert set(ks.dbs[0].data) == {b"key:%d" % seq for seq in range(1, loaded.seq + 1)}


# -- the console script ------------------------------------------------------------

def script(*argv, answer=""):
    exe = shutil.which("fastcache-check")
    cmd = [exe] if exe else [sys.executable, "-m", "fastcache.persistence.check"]
    return subprocess.run(cmd + [str(a) for a in argv], input=answer, capture_output=True,
                          text=True, timeout=30)


def test_console_script(data):
    assert script(data).returncode == 0
    path = seg_path(data, 0, 6)
    flip(path, os.path.getsize(path) - len(record(8)) - 2)   # inside record 7's payload
    done = script(data)
    assert done.returncode == 1 and "corrupt at offset" in done.stdout
    before = snapshot_of(data)
    done = script("--fix", data, answer="n\n")
    assert done.returncode == 1 and snapshot_of(data) == before
    done = script("--fix", "--yes", data)
    assert done.returncode == 0, done.stdout
    assert script(data).returncode == 0
    assert script(data / "nowhere").returncode == 2


def test_module_entry_point(data):
    done = subprocess.run([sys.executable, "-m", "fastcache.persistence.check", str(data)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "No problems found" in done.stdout
