"""The C twins of record encoding and frame decoding agree with the Python ones."""
import pytest
from hypothesis import given, settings, strategies as st

from fastcache.persistence.walfile import py_encode_payload
from fastcache.replication.frames import pack_items, py_decode_records

native = pytest.importorskip("fastcache._native")

argvs = st.lists(st.binary(max_size=40), max_size=6)
records = st.lists(st.tuples(st.integers(0, 65535), argvs), max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 65535), argvs)
def test_encode_payload_twins(db, argv):
    assert native.encode_payload(db, argv) == py_encode_payload(db, argv)
    assert native.encode_payload(db, tuple(argv)) == py_encode_payload(db, argv)


def outcome(fn, *args):
    try:
        return fn(*args)
    except ValueError as exc:
        return ("error", str(exc).split(":")[0])


@settings(max_examples=200, deadline=None)
@given(records, st.integers(0, 2 ** 40), st.integers(-1, 20))
def test_decode_records_twins(recs, first, skip):
    raw = pack_items([py_encode_payload(db, argv) for db, argv in recs])
    after = first - 1 + skip if skip >= 0 else -1
    expected = [(first + i, db, argv) for i, (db, argv) in enumerate(recs)
                if first + i > after]
    assert py_decode_records(raw, len(recs), first, after) == expected
    assert native.decode_records(raw, len(recs), first, after) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.integers(0, 4), st.integers(-1, 3))
def test_decode_records_twins_on_garbage(raw, count, after):
    assert outcome(native.decode_records, raw, count, 1, after) == \
        outcome(py_decode_records, raw, count, 1, after)


@settings(max_examples=100, deadline=None)
@given(records.filter(bool), st.data())
def test_damaged_payloads_fail_alike(recs, data):
    raw = bytearray(pack_items([py_encode_payload(db, argv) for db, argv in recs]))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] = data.draw(st.integers(0, 255))
    cut = bytes(raw[:data.draw(st.integers(0, len(raw)))])
    for payload in (bytes(raw), cut):
        assert outcome(native.decode_records, payload, len(recs), 5, -1) == \
            outcome(py_decode_records, payload, len(recs), 5, -1)


def test_refuses_what_is_not_a_record():
    with pytest.raises(TypeError):
        native.encode_payload(0, [b"ok", "text"])
    with pytest.raises(OverflowError):
        native.encode_payload(70000, [])


@settings(max_examples=150, deadline=None)
@given(records, st.data())
def test_encode_items_twins(recs, data):
    from fastcache.replication.frames import py_encode_items
    listed = [(i + 1, db, argv) for i, (db, argv) in enumerate(recs)]
    start = data.draw(st.integers(0, len(listed)))
    stop = data.draw(st.integers(start, len(listed)))
    assert native.encode_items(listed, start, stop) == py_encode_items(listed, start, stop)
