"""The forwarding codec: C and Python twins agree, round trips are exact, and damaged
payloads raise instead of reading past their end."""
import pytest
from hypothesis import given, strategies as st

from fastcache.server import forward_codec as codec

try:
    from fastcache import _native
except ImportError:
    _native = None

argvs_st = st.lists(st.lists(st.binary(max_size=40), max_size=5), max_size=8)
TWINS = [(codec.py_pack_commands, codec.py_unpack_commands, codec.py_pack_replies,
          codec.py_assemble)]
if _native is not None and hasattr(_native, "assemble"):
    TWINS.append((_native.pack_commands, _native.unpack_commands, _native.pack_replies,
                  _native.assemble))


@pytest.mark.parametrize("pack, unpack, pack_replies, assemble", TWINS)
@given(argvs=argvs_st)
def test_commands_round_trip(pack, unpack, pack_replies, assemble, argvs):
    blob = pack(argvs)
    assert blob == codec.py_pack_commands(argvs)
    assert unpack(blob) == argvs


@pytest.mark.parametrize("pack, unpack, pack_replies, assemble", TWINS)
@given(data=st.data(), nshards=st.integers(1, 4))
def test_assemble_puts_replies_in_their_places(pack, unpack, pack_replies, assemble, data,
                                               nshards):
    kinds = data.draw(st.lists(st.integers(-1, nshards - 1), max_size=12))
    replies = [[] for _ in range(nshards)]
    out, expected = [], []
    for n, kind in enumerate(kinds):
        reply = b"<%d>" % n
        expected.append(reply)
        if kind < 0:
            out.append(reply)
        else:
            out.append(kind)
            replies[kind].append(reply)
    packs = [pack_replies(r) if r else None for r in replies]
    assert packs == [codec.py_pack_replies(r) if r else None for r in replies]
    assert assemble(out, packs) == b"".join(expected)


@pytest.mark.parametrize("pack, unpack, pack_replies, assemble", TWINS)
def test_damaged_payloads_raise(pack, unpack, pack_replies, assemble):
    blob = pack([[b"SET", b"key", b"value"]])
    for cut in range(1, len(blob)):
        with pytest.raises(ValueError):
            unpack(blob[:cut])
    packed = pack_replies([b"+OK\r\n"])
    with pytest.raises(ValueError):
        assemble([0, 0], [packed])
    with pytest.raises(ValueError):
        assemble([0], [packed[:-1]])
    with pytest.raises((TypeError, ValueError, IndexError)):   # no such shard
        assemble([1], [packed])
