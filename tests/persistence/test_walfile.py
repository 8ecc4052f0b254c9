"""The WAL record codec: the native decoder and its Python twin agree."""
import struct

import pytest
from hypothesis import given, settings, strategies as st

from fastcache.persistence import walfile

native = pytest.mark.skipif(walfile.decode_record is walfile.py_decode_record,
                            reason="built without the native extension")


@native
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 65535), st.lists(st.binary(max_size=40), max_size=6), st.integers(0, 2**64 - 1))
def test_twins_decode_alike(db, argv, seq):
    payload = walfile.encode_payload(db, argv)
    assert walfile.decode_record(payload, seq) == walfile.py_decode_record(payload, seq) \
        == (seq, db, argv)


@native
@pytest.mark.parametrize("payload", [b"", b"\0\0\1\0\0\0", b"\0\0\1\0\0\0\5\0\0\0ab",
                                     b"\0\0\0\0\0\0extra"])
def test_twins_refuse_malformed_payloads(payload):
    for decode in (walfile.decode_record, walfile.py_decode_record):
        with pytest.raises((ValueError, struct.error)):
            decode(payload, 1)
