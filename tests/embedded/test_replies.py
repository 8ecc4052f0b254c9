"""ReplyReader gives exactly what hiredis (redis-py's parser) reads from the
bytes the encoder writes for the same reply, and encode_arg packs arguments
like hiredis.pack_command."""
import math

import hiredis
import pytest
from hypothesis import given, settings, strategies as st
from redis._parsers.base import BaseParser

from fastcache.embedded_replies import ReplyReader, encode_arg, encode_command
from fastcache.protocol.encoder import ENCODERS
from fastcache.protocol.replies import (BigNumber, Error, NULL_ARRAY, Raw, Simple, Verbatim)

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_latin1 = st.text(st.characters(max_codepoint=255), max_size=12)

scalars = st.one_of(
    st.binary(max_size=8), st.text(max_size=6).map(str.encode),
    st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1),
    st.integers(min_value=2 ** 64, max_value=2 ** 200).map(BigNumber),
    st.none(), st.just(NULL_ARRAY), st.booleans(),
    st.floats(allow_nan=True) | st.sampled_from([0.0, -0.0, 1.5, math.inf, -math.inf]),
    st.from_regex(r"[A-Za-z0-9 ]{0,10}", fullmatch=True).map(Simple),
    (st.sampled_from(["ERR", "WRONGTYPE", "EXECABORT", "NOSCRIPT", "LOADING", "OOM"])
     .flatmap(lambda code: _latin1.map(lambda rest: Error(code + " " + rest)))),
    _text, _text.map(Verbatim),
)
hashable = st.one_of(st.binary(max_size=6), st.integers(-1000, 1000))
replies = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.sets(hashable, max_size=4),
        st.dictionaries(hashable, inner, max_size=4),
    ),
    max_leaves=12,
)


def hiredis_value(value, proto, decode):
    options = {"replyError": BaseParser.parse_error}
    if decode:
        options["encoding"] = "utf-8"
    reader = hiredis.Reader(**options)
    reader.feed(ENCODERS[proto].encode(value))
    return reader.gets()


def comparable(value):
    if isinstance(value, Exception):
        return ("exception", type(value).__name__, value.args)
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, dict):
        return {comparable(k): comparable(v) for k, v in value.items()}
    return (type(value).__name__, value)


def outcome(fn):
    try:
        return comparable(fn())
    except UnicodeDecodeError:
        return ("undecodable",)


@settings(max_examples=300, deadline=None)
@given(value=replies, proto=st.sampled_from([2, 3]), decode=st.booleans())
def test_reader_matches_hiredis(value, proto, decode):
    reader = ReplyReader(proto, decode)
    assert outcome(lambda: reader(value)) == outcome(lambda: hiredis_value(value, proto, decode))


@pytest.mark.parametrize("proto", [2, 3])
def test_raw_replies_are_parsed_by_hiredis(proto):
    reader = ReplyReader(proto, True)
    encoded = ENCODERS[proto].encode([b"a", 1, {b"k": b"v"}])
    assert reader(Raw(encoded)) == hiredis_value([b"a", 1, {b"k": b"v"}], proto, True)


@given(st.lists(st.one_of(st.binary(max_size=5), _text,
                          st.integers(-2 ** 70, 2 ** 70), st.floats()), min_size=1, max_size=5))
def test_arguments_pack_like_hiredis(args):
    packed = hiredis.pack_command(tuple([b"CMD"] + args))
    argv = encode_command([b"CMD"] + args)
    assert packed == b"".join([b"*%d\r\n" % len(argv)] +
                              [b"$%d\r\n%s\r\n" % (len(a), a) for a in argv])


@pytest.mark.parametrize("bad", [True, None, [1], {"a": 1}, object()])
def test_arguments_hiredis_refuses_are_refused(bad):
    import redis
    with pytest.raises(TypeError):
        hiredis.pack_command((b"CMD", bad))
    with pytest.raises(redis.DataError):
        encode_arg(bad)


def test_command_names_with_spaces_split_like_redis_py():
    assert encode_command(("CONFIG GET", "hz")) == [b"CONFIG", b"GET", b"hz"]
    assert encode_command((b"OBJECT ENCODING", b"k")) == [b"OBJECT", b"ENCODING", b"k"]
    argv = encode_command((bytearray(b"GET"), memoryview(b"k")))
    assert argv == [b"GET", b"k"] and all(type(a) is bytes for a in argv)
