"""Replication frames: encoding, incremental decoding, and refusing damaged streams."""
import os
import struct

import pytest
import zstandard
from hypothesis import given, settings, strategies as st
from xxhash import xxh3_64_intdigest

from fastcache.replication import frames as fr
from fastcache.replication.frames import (
    HEADER_SIZE, FLAG_ZSTD, HEARTBEAT, RECORDS, SNAPSHOT_CHUNK, SNAPSHOT_END, FrameDecoder,
    FrameEncoder, FrameError, encode_frame, header_seqs, pack_items)

SETS = [(0, [b"SET", b"key:%d" % i, b"v" * 64]) for i in range(20)]


def decode_all(data, **kw):
    return FrameDecoder(**kw).feed(data)


def forge(kind, flags, first, last, count, raw_len, wire, shard=0):
    """A frame with any header fields, its checksum made to match."""
    fields = fr._FIELDS.pack(fr.MAGIC, fr.VERSION, kind, flags, shard, first, last, count,
                             raw_len, len(wire))
    checksum = xxh3_64_intdigest(wire, xxh3_64_intdigest(fields))
    return fields + struct.pack("<Q", checksum) + wire


def stream():
    """A few frames of every kind, some compressed."""
    return b"".join([
        encode_frame(RECORDS, 2, 1, SETS[:3]),
        encode_frame(RECORDS, 2, 4, SETS, 1),
        encode_frame(HEARTBEAT, 2, 23, ()),
        encode_frame(SNAPSHOT_CHUNK, 2, 23, [b"chunk-a", b"", b"chunk-b" * 30], 3),
        encode_frame(SNAPSHOT_END, 2, 23, ()),
    ])


def summary(frames):
    return [(f.kind, f.shard, f.first_seq, f.last_seq, f.count, f.payload) for f in frames]


@pytest.mark.parametrize("level", [None, 1, 19])
def test_records_round_trip(level):
    records = [
        (0, [b"SET", b"k", b"v"]),
        (0, []),                                   # no arguments at all
        (15, [b"", b"", b""]),                     # empty arguments
        (65535, [bytes(range(256)) * 3, b"\0\r\n$*"]),
        (3, [b"SET", b"big", os.urandom(1 << 20)]),
    ]
    data = encode_frame(RECORDS, 7, 100, records, level)
    (frame,) = decode_all(data)
    assert (frame.kind, frame.shard, frame.first_seq, frame.last_seq, frame.count) == \
        (RECORDS, 7, 100, 104, 5)
    assert frame.wire_size == len(data)
    assert frame.records() == [(100 + i, db, argv) for i, (db, argv) in enumerate(records)]


def test_records_after_skips_a_watermark_inside_the_frame():
    (frame,) = decode_all(encode_frame(RECORDS, 0, 10, SETS[:5]))
    assert [seq for seq, _, _ in frame.records(after=12)] == [13, 14]
    assert frame.records(after=14) == []
    assert len(frame.records(after=3)) == 5


def test_compression_only_when_it_helps():
    compressible = encode_frame(RECORDS, 0, 1, SETS, 1)
    raw = encode_frame(RECORDS, 0, 1, SETS)
    assert len(compressible) < len(raw)
    assert decode_all(compressible)[0].compressed
    assert not decode_all(raw)[0].compressed
    noise = encode_frame(RECORDS, 0, 1, [(0, [os.urandom(4096)])], 1)
    assert not decode_all(noise)[0].compressed       # zstd could not shrink it
    assert noise[6] & FLAG_ZSTD == 0
    tiny = encode_frame(RECORDS, 0, 1, [(0, [b"x"])], 1)
    assert not decode_all(tiny)[0].compressed
    assert decode_all(compressible)[0].payload == decode_all(raw)[0].payload


def test_other_kinds():
    beat, chunk, end = decode_all(stream())[2:]
    assert (beat.kind, beat.first_seq, beat.last_seq, beat.payload) == (HEARTBEAT, 23, 23, b"")
    assert (chunk.kind, chunk.first_seq, chunk.last_seq) == (SNAPSHOT_CHUNK, 23, 23)
    assert chunk.items() == [b"chunk-a", b"", b"chunk-b" * 30]
    assert (end.kind, end.count, end.payload) == (SNAPSHOT_END, 0, b"")
    beat = decode_all(encode_frame(HEARTBEAT, 9, 12345, ()))[0]
    assert (beat.kind, beat.shard, beat.first_seq, beat.last_seq) == (HEARTBEAT, 9, 12345, 12345)
    with pytest.raises(FrameError):
        beat.records()


def test_encoder_methods_match_encode_frame():
    enc = FrameEncoder(1)
    assert enc.records(1, 5, SETS) == encode_frame(RECORDS, 1, 5, SETS, 1)
    assert enc.heartbeat(1, 5) == encode_frame(HEARTBEAT, 1, 5, ())
    assert enc.snapshot_end(1, 5) == encode_frame(SNAPSHOT_END, 1, 5, ())
    assert enc.snapshot_chunk(1, 5, [b"a"]) == encode_frame(SNAPSHOT_CHUNK, 1, 5, [b"a"], 1)


def test_encoder_refuses_nonsense():
    with pytest.raises(ValueError):
        encode_frame(RECORDS, 0, 1, [])
    with pytest.raises(ValueError):
        encode_frame(SNAPSHOT_CHUNK, 0, 1, [])
    with pytest.raises(ValueError):
        encode_frame(HEARTBEAT, 0, 1, [b"x"])
    with pytest.raises(ValueError):
        encode_frame(99, 0, 1, [])


def test_encoder_refuses_payloads_no_decoder_takes(monkeypatch):
    monkeypatch.setattr(fr, "MAX_PAYLOAD", 100)
    with pytest.raises(ValueError, match="limit"):
        encode_frame(SNAPSHOT_CHUNK, 0, 1, [b"x" * 200])


def test_header_seqs():
    assert header_seqs(encode_frame(RECORDS, 0, 41, SETS[:4], 1)) == (41, 44)
    assert header_seqs(encode_frame(HEARTBEAT, 0, 2**64 - 1, ())) == (2**64 - 1, 2**64 - 1)


def test_split_at_every_byte_boundary():
    data = stream()
    whole = summary(decode_all(data))
    assert len(whole) == 5
    for cut in range(len(data) + 1):
        dec = FrameDecoder()
        got = dec.feed(data[:cut]) + dec.feed(data[cut:])
        assert summary(got) == whole, cut
        assert dec.buffered == 0


def test_byte_at_a_time_and_buffer_types():
    data = stream()
    dec = FrameDecoder()
    got = []
    for i in range(len(data)):
        got += dec.feed(data[i:i + 1])
    assert summary(got) == summary(decode_all(data))
    dec = FrameDecoder()
    got = dec.feed(bytearray(data[:100])) + dec.feed(memoryview(data)[100:])
    assert summary(got) == summary(decode_all(data))


def test_partial_frame_is_held_back():
    data = encode_frame(RECORDS, 0, 1, SETS)
    dec = FrameDecoder()
    assert dec.feed(data[:-1]) == []
    assert dec.buffered == len(data) - 1
    assert len(dec.feed(data[-1:] + data[:10])) == 1
    assert dec.buffered == 10


@pytest.mark.parametrize("level", [None, 1])
def test_every_damaged_byte_is_refused(level):
    data = encode_frame(RECORDS, 1, 7, SETS[:4], level)
    wire_len_field = range(HEADER_SIZE - 12, HEADER_SIZE - 8)
    for pos in range(len(data)):
        for mask in (0x01, 0x80):
            bad = bytearray(data)
            bad[pos] ^= mask
            dec = FrameDecoder()
            try:
                got = dec.feed(bytes(bad) + data)
            except FrameError:
                continue
            # Only a wire length grown past what was fed can leave it waiting.
            assert pos in wire_len_field and got == [], (pos, mask)


def test_broken_decoder_stays_broken():
    dec = FrameDecoder()
    with pytest.raises(FrameError, match="magic"):
        dec.feed(b"X" * HEADER_SIZE)
    with pytest.raises(FrameError):
        dec.feed(encode_frame(HEARTBEAT, 0, 1, ()))


def test_version_and_kind_and_flags():
    good = bytearray(encode_frame(HEARTBEAT, 0, 1, ()))
    for pos, value, message in [(4, 2, "version"), (5, 9, "kind"), (6, 0x02, "flags")]:
        bad = bytearray(good)
        bad[pos] = value
        with pytest.raises(FrameError, match=message):
            decode_all(bytes(bad))


def test_size_guard_fires_on_the_header_alone():
    huge = forge(RECORDS, 0, 1, 1, 1, 3 << 30, b"")[:HEADER_SIZE]
    huge = huge[:HEADER_SIZE - 12] + struct.pack("<I", 3 << 30) + huge[HEADER_SIZE - 8:]
    with pytest.raises(FrameError, match="limit"):
        decode_all(huge)
    frame = encode_frame(RECORDS, 0, 1, SETS)
    with pytest.raises(FrameError, match="limit"):
        decode_all(frame[:HEADER_SIZE], max_payload=100)
    assert len(decode_all(frame, max_payload=len(frame))) == 1


@pytest.mark.parametrize("header, wire, message", [
    ((RECORDS, 0, 1, 1, 1, 5), b"abcdef", "wire length"),              # raw, lengths differ
    ((RECORDS, 0, 5, 4, 0, 0), b"", "records"),                        # no records
    ((RECORDS, 0, 1, 3, 2, 0), b"", "records"),                        # count != seqs
    ((HEARTBEAT, 0, 1, 2, 0, 0), b"", "heartbeat"),                    # first != last
    ((HEARTBEAT, 0, 1, 1, 0, 3), b"abc", "payload"),
    ((SNAPSHOT_END, 0, 1, 1, 1, 0), b"", "payload"),
    ((SNAPSHOT_CHUNK, 0, 1, 1, 0, 0), b"", "without chunks"),
    ((RECORDS, FLAG_ZSTD, 1, 1, 1, 10), b"not zstd at all", "compressed"),
    ((RECORDS, FLAG_ZSTD, 1, 1, 1, 999),
     zstandard.ZstdCompressor().compress(b"x" * 100), "raw length"),  # declared size lies
])
def test_inconsistent_headers(header, wire, message):
    with pytest.raises(FrameError, match=message):
        decode_all(forge(*header, wire))


def test_bad_items_inside_a_valid_frame():
    two = pack_items([b"\0\0\0\0\0\0", b"\0\0\0\0\0\0"])        # two records: db 0, no args
    assert decode_all(forge(RECORDS, 0, 1, 2, 2, len(two), two))[0].records() == \
        [(1, 0, []), (2, 0, [])]
    for header, raw, message in [
        ((RECORDS, 0, 1, 3, 3), two, "inside an item length"),
        ((RECORDS, 0, 1, 1, 1), two, "after its 1 items"),
        ((RECORDS, 0, 1, 2, 2), two[:-1], "inside an item"),
        ((RECORDS, 0, 1, 1, 1), pack_items([b"\0\0\1\0\0\0"]), "bad record 1"),
    ]:
        (frame,) = decode_all(forge(*header, len(raw), raw))
        with pytest.raises(FrameError, match=message):
            frame.records()


argvs = st.lists(st.binary(max_size=80), max_size=6)
batches = st.lists(st.tuples(st.integers(0, 65535), argvs), min_size=1, max_size=30)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(batches, st.sampled_from([None, 1, 3])), min_size=1, max_size=4),
       st.integers(0, 2**40), st.lists(st.integers(0, 10_000), max_size=6))
def test_random_batches_survive_random_splits(batches_, first, cuts):
    data = b""
    expected = []
    seq = first
    for records, level in batches_:
        data += encode_frame(RECORDS, 3, seq, records, level)
        expected += [(seq + i, db, argv) for i, (db, argv) in enumerate(records)]
        seq += len(records)
    dec = FrameDecoder()
    got = []
    prev = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        got += dec.feed(data[prev:cut])
        prev = cut
    assert [rec for frame in got for rec in frame.records()] == expected
    assert dec.buffered == 0
