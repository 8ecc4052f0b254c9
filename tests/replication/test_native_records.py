"""The C twins of record encoding and frame decoding agree with the Python ones."""
import pytest
from hypothesis import given, settings, strategies as st

from fastcache.persistence.walfile import py_encode_payload
from fastcache.replication.frames import pack_items, py_decode_records, py_decode_runs

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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), argvs), max_size=12), st.integers(0, 2 ** 40),
       st.integers(-1, 20))
def test_decode_runs_twins(recs, first, skip):
    raw = pack_items([py_encode_payload(db, argv) for db, argv in recs])
    after = first - 1 + skip if skip >= 0 else -1
    runs = py_decode_runs(raw, len(recs), first, after)
    assert native.decode_runs(raw, len(recs), first, after) == runs
    # The runs are the records past after, cut where the db changes.
    flat = [(seq + i, db, argv) for seq, db, argvs in runs for i, argv in enumerate(argvs)]
    assert flat == py_decode_records(raw, len(recs), first, after)
    assert all(a[1] != b[1] for a, b in zip(runs, runs[1:]))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.integers(0, 4), st.integers(-1, 3))
def test_decode_records_twins_on_garbage(raw, count, after):
    assert outcome(native.decode_records, raw, count, 1, after) == \
        outcome(py_decode_records, raw, count, 1, after)
    assert outcome(native.decode_runs, raw, count, 1, after) == \
        outcome(py_decode_runs, raw, count, 1, after)


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
        assert outcome(native.decode_runs, payload, len(recs), 5, -1) == \
            outcome(py_decode_runs, payload, len(recs), 5, -1)


def test_refuses_what_is_not_a_record():
    with pytest.raises(TypeError):
        native.encode_payload(0, [b"ok", "text"])
    with pytest.raises(OverflowError):
        native.encode_payload(70000, [])


def journal_entries(recs):
    """recs as a journal holds them: argvs, with an int where the db changes."""
    entries, db = [], None
    for dbid, argv in recs:
        if dbid != db:
            entries.append(dbid)
            db = dbid
        entries.append(argv)
    return entries


@settings(max_examples=300, deadline=None)
@given(records, st.integers(0, 65535), st.integers(0, 14), st.integers(0, 400), st.booleans(),
       st.data())
def test_encode_entries_twins(recs, db, max_count, max_bytes, force, data):
    from fastcache.replication.frames import py_encode_entries
    entries = journal_entries(recs)
    pos = data.draw(st.integers(0, len(entries)))
    args = (entries, pos, db, max_count, max_bytes, force)
    assert native.encode_entries(*args) == py_encode_entries(*args)


@settings(max_examples=150, deadline=None)
@given(records, st.integers(1, 5), st.integers(1, 300))
def test_encode_entries_in_steps_makes_the_items_of_every_record(recs, max_count, max_bytes):
    """Calls that go on where the last stopped cover the records once, in order,
    with their dbs; each call keeps to the limits unless forced to take one."""
    entries = journal_entries(recs)
    blobs, pos, db, taken = [], 0, 0, 0
    while pos < len(entries):
        blob, count, pos, db = native.encode_entries(entries, pos, db, max_count, max_bytes,
                                                     True)
        assert count <= max_count and (count <= 1 or len(blob) <= max_bytes)
        blobs.append(blob)
        taken += count
    assert taken == len(recs)
    assert b"".join(blobs) == pack_items([py_encode_payload(d, a) for d, a in recs])


def test_encode_entries_refuses_what_is_not_a_journal():
    with pytest.raises(TypeError):
        native.encode_entries([0, [b"ok", "text"]], 0, 0, 10, 100, True)
    with pytest.raises(OverflowError):
        native.encode_entries([70000, [b"SET", b"k", b"v"]], 0, 0, 10, 100, True)
    with pytest.raises(IndexError):
        native.encode_entries([], 1, 0, 10, 100, True)
