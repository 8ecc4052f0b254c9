"""Batcher: when records become frames, and what the frames hold."""
import pytest
from hypothesis import given, settings, strategies as st

from fastcache.engine.records import Journal, numbered
from fastcache.persistence.walfile import encode_payload
from fastcache.replication.batcher import Batcher
from fastcache.replication.frames import FrameDecoder, header_seqs


class Clock:
    def __init__(self, now=1_000_000):
        self.now = now

    def __call__(self):
        return self.now


def rec(i, size=10):
    return (0, [b"SET", b"k%d" % i, b"v" * size])


def size_of(record):
    return len(encode_payload(*record)) + 4


def decode(frame):
    (f,) = FrameDecoder().feed(frame)
    return f


def make(clock=None, **kw):
    opts = dict(max_records=1000, max_bytes=1 << 20, max_delay_us=500)
    opts.update(kw)
    return Batcher(3, clock=clock or Clock(), **opts)


def test_max_records_flushes_at_once():
    b = make(max_records=4)
    for seq in range(1, 4):
        assert b.add(seq, *rec(seq)) == []
    assert b.pending == 3
    (frame,) = b.add(4, *rec(4))
    f = decode(frame)
    assert (f.shard, f.first_seq, f.last_seq) == (3, 1, 4)
    assert f.records() == [(seq,) + rec(seq) for seq in range(1, 5)]
    assert b.pending == 0 and b.flush() is None and b.deadline_us is None


def test_max_bytes_reached_exactly():
    one = size_of(rec(1))
    b = make(max_bytes=3 * one)
    assert b.add(1, *rec(1)) == [] and b.add(2, *rec(2)) == []
    (frame,) = b.add(3, *rec(3))
    assert header_seqs(frame) == (1, 3)


def test_a_record_that_would_overflow_flushes_the_batch_first():
    one = size_of(rec(1))
    b = make(max_bytes=2 * one + 5)
    b.add(1, *rec(1))
    b.add(2, *rec(2))                       # 2 * one < max_bytes: still buffered
    (frame,) = b.add(3, *rec(3))            # would not fit: the first two leave alone
    assert header_seqs(frame) == (1, 2)
    assert b.pending == 1
    big = rec(4, size=5000)
    old, alone = b.add(4, *big)             # too big even alone: two frames at once
    assert header_seqs(old) == (3, 3)
    assert decode(alone).records() == [(4,) + big]
    assert b.pending == 0


def test_delay_counts_from_the_oldest_record():
    clock = Clock()
    b = make(clock, max_delay_us=500)
    assert b.due(clock.now) is None
    b.add(1, *rec(1))
    start = clock.now
    assert b.deadline_us == start + 500
    clock.now += 400
    b.add(2, *rec(2))
    assert b.deadline_us == start + 500
    assert b.due(start + 499) is None
    frame = b.due(start + 500)
    assert header_seqs(frame) == (1, 2)
    assert b.due(start + 10_000) is None
    clock.now += 1000
    b.add(3, *rec(3))
    assert b.deadline_us == clock.now + 500


def test_immediate_flushes_whenever_asked():
    clock = Clock()
    b = make(clock, immediate=True, max_delay_us=10**9)
    assert b.due(clock.now) is None
    b.add(1, *rec(1))
    b.add(2, *rec(2))
    assert b.deadline_us == clock.now
    assert header_seqs(b.due(clock.now)) == (1, 2)
    b.add(3, *rec(3))
    assert header_seqs(b.flush()) == (3, 3)


def test_a_sequence_gap_starts_a_new_frame():
    b = make()
    b.add(1, *rec(1))
    b.add(2, *rec(2))
    (frame,) = b.add(10, *rec(10))
    assert header_seqs(frame) == (1, 2)
    b.add(11, *rec(11))
    assert [seq for seq, _, _ in decode(b.flush()).records()] == [10, 11]


def test_counters_and_compression_ratio():
    raw = make(max_records=10)
    zst = make(max_records=10, level=1)
    frames = {id(raw): [], id(zst): []}
    for b in (raw, zst):
        for seq in range(1, 101):
            frames[id(b)] += b.add(seq, 0, [b"SET", b"key:%d" % seq, b"x" * 64])
    for b in (raw, zst):
        assert (b.frames, b.records) == (10, 100)
        assert b.wire_bytes == sum(len(f) for f in frames[id(b)])
    assert raw.raw_bytes == zst.raw_bytes == sum(len(decode(f).payload) for f in frames[id(raw)])
    assert raw.compression_ratio < 1 < zst.compression_ratio   # headers vs zstd's gain
    assert make().compression_ratio == 1.0


def test_bad_limits():
    for kw in (dict(max_records=0), dict(max_bytes=0), dict(max_delay_us=-1)):
        with pytest.raises(ValueError):
            make(**kw)


ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 3), st.binary(max_size=200)),
    st.tuples(st.just("tick"), st.integers(0, 400)),
    st.tuples(st.just("due"),),
    st.tuples(st.just("flush"),),
), max_size=60)


@settings(max_examples=100, deadline=None)
@given(ops, st.integers(1, 8), st.integers(1, 600), st.sampled_from([None, 1]),
       st.booleans())
def test_frames_keep_every_record_in_order_within_limits(script, max_records, max_bytes,
                                                         level, immediate):
    clock = Clock()
    b = make(clock, max_records=max_records, max_bytes=max_bytes, max_delay_us=300,
             level=level, immediate=immediate)
    added, out = [], []
    seq = 0
    for op in script:
        if op[0] == "add":
            seq += 1
            record = (op[1], [b"SET", op[2]])
            added.append((seq,) + record)
            out += b.add(seq, *record)
        elif op[0] == "tick":
            clock.now += op[1]
        else:
            frame = b.due(clock.now) if op[0] == "due" else b.flush()
            if frame is not None:
                out.append(frame)
            # Nothing overdue is left behind.
            assert b.deadline_us is None or b.deadline_us > clock.now
        assert (b.deadline_us is None) == (b.pending == 0)
    last = b.flush()
    if last is not None:
        out.append(last)
    decoded = FrameDecoder().feed(b"".join(out))
    assert [r for f in decoded for r in f.records()] == added
    for f in decoded:
        assert f.count <= max_records
        assert f.count == 1 or len(f.payload) <= max_bytes
    assert (b.frames, b.records) == (len(decoded), len(added))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 60)),
                max_size=60),
       st.integers(1, 9), st.integers(20, 400))
def test_add_entries_makes_the_frames_add_makes(shape, max_records, max_bytes):
    """Journal takes (with gaps in the sequence between them) through add_entries,
    and their records one by one through add."""
    clock = Clock()
    one = Batcher(0, max_records, max_bytes, 1000, None, clock=clock)
    many = Batcher(0, max_records, max_bytes, 1000, None, clock=clock)
    seq = 0
    for gap, count, size in shape:
        seq += gap
        journal = Journal(seq)
        for i in range(count):
            journal.log(i % 2, [b"SET", b"k%d" % i, b"v" * size])
        first, entries = journal.take_entries()
        seq = journal.seq
        expected = [f for record in numbered(first, entries) for f in one.add(*record)]
        assert many.add_entries(first, entries) == expected
    assert many.flush() == one.flush()
