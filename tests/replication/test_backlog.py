"""Backlog: which frames a reconnecting replica gets, and what eviction leaves."""
import pytest
from hypothesis import given, settings, strategies as st

from fastcache.replication.backlog import Backlog
from fastcache.replication.batcher import Batcher
from fastcache.replication.frames import FrameDecoder, header_seqs


def fake(first, last, size=10):
    """Stand-in frame bytes: the backlog only looks at their length."""
    return (b"%d-%d:" % (first, last)).ljust(size, b".")


def filled(max_bytes=10**6, spans=((1, 3), (4, 6), (7, 10))):
    log = Backlog(max_bytes)
    frames = [fake(a, b) for a, b in spans]
    for frame, (a, b) in zip(frames, spans):
        log.append(frame, a, b)
    return log, frames


def test_empty_backlog():
    log = Backlog(100)
    assert (log.first_seq, log.last_seq, len(log), log.size) == (1, 0, 0, 0)
    assert log.since(0) == []
    assert log.since(1) is None                 # replica ahead of the primary
    started = Backlog(100, last_seq=50)         # e.g. after a restart from the WAL
    assert started.since(50) == []
    assert started.since(49) is None


def test_since():
    log, frames = filled()
    assert (log.first_seq, log.last_seq, len(log)) == (1, 10, 3)
    assert log.since(0) == frames
    assert log.since(3) == frames[1:]           # frame boundary
    assert log.since(4) == frames[1:]           # watermark inside a frame: served whole
    assert log.since(5) == frames[1:]
    assert log.since(6) == frames[2:]
    assert log.since(9) == frames[2:]
    assert log.since(10) == []
    assert log.since(11) is None


def test_eviction_keeps_the_newest_frames():
    log, frames = filled(max_bytes=25)
    assert len(log) == 2 and log.size == 20
    assert log.first_seq == 4
    assert log.since(2) is None
    assert log.since(3) == frames[1:]
    log.append(fake(11, 20, size=1000), 11, 20)     # alone over the limit: still kept
    assert len(log) == 1 and log.size == 1000
    assert (log.first_seq, log.last_seq) == (11, 20)
    assert log.since(10) == [fake(11, 20, size=1000)]
    assert log.since(9) is None


def test_append_checks_sequences():
    log, _ = filled()
    with pytest.raises(ValueError, match="overlaps"):
        log.append(fake(10, 12), 10, 12)
    with pytest.raises(ValueError, match="backwards"):
        log.append(fake(12, 11), 12, 11)
    log.append(fake(20, 22), 20, 22)            # a hole: nothing older can be served
    assert (log.first_seq, log.last_seq, len(log)) == (20, 22, 1)
    assert log.since(10) is None
    assert log.since(19) == [fake(20, 22)]


def test_reset():
    log, _ = filled()
    log.reset(100)
    assert (log.first_seq, log.last_seq, len(log), log.size) == (101, 100, 0, 0)
    assert log.since(100) == []
    log.append(fake(101, 101), 101, 101)
    assert log.since(100) == [fake(101, 101)]


def test_many_evictions_compact():
    log = Backlog(50)
    for seq in range(1, 1001):
        log.append(fake(seq, seq), seq, seq)
    assert len(log) == 5 and log.first_seq == 996
    assert len(log._frames) < 200               # evicted slots do not pile up
    assert log.since(995) == [fake(s, s) for s in range(996, 1001)]
    assert log.since(994) is None


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200), st.lists(st.tuples(st.integers(1, 5), st.integers(1, 80)),
                                     max_size=120))
def test_matches_a_simple_model(max_bytes, spans):
    log = Backlog(max_bytes)
    model = []                                  # (first, last, frame) kept, oldest first
    seq = 0
    for count, size in spans:
        frame = fake(seq + 1, seq + count, size)
        log.append(frame, seq + 1, seq + count)
        model.append((seq + 1, seq + count, frame))
        seq += count
        while len(model) > 1 and sum(len(f) for _, _, f in model) > max_bytes:
            model.pop(0)
    for watermark in range(seq + 2):
        if watermark == seq:
            expected = []
        elif model and model[0][0] - 1 <= watermark < seq:
            expected = [f for first, last, f in model if last > watermark]
        else:
            expected = None
        assert log.since(watermark) == expected, watermark


def test_replica_catches_up_from_inside_a_frame():
    batcher = Batcher(0, max_records=4, max_bytes=1 << 20, max_delay_us=0, level=1)
    log = Backlog(1 << 20)
    for seq in range(1, 11):
        for frame in batcher.add(seq, 0, [b"SET", b"k%d" % seq, b"v"]):
            log.append(frame, *header_seqs(frame))
    frame = batcher.flush()
    log.append(frame, *header_seqs(frame))
    watermark = 6                                 # inside the frame for 5..8
    decoder = FrameDecoder()
    frames = decoder.feed(b"".join(log.since(watermark)))
    assert frames[0].first_seq == 5
    applied = [seq for f in frames for seq, _, _ in f.records(after=watermark)]
    assert applied == [7, 8, 9, 10]
