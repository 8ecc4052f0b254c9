"""Glob matching: quirks of Redis's matcher, and agreement with a real
redis-server's KEYS over a dense set of keys for many (weird) patterns."""
import itertools

import pytest
import redis
from hypothesis import HealthCheck, given, settings, strategies as st

from fastcache.engine.glob import compile_glob, parse, stringmatch

ALPHABET = b"ab-[]^\\*?\x80\xff"
# Every key of length <= 3 over an alphabet full of pattern syntax, plus a few
# longer ones; KEYS on this set shows nearly every matcher decision.
KEYS = [bytes(p) for n in range(1, 4) for p in itertools.product(ALPHABET, repeat=n)]
KEYS += [b"", b"hello", b"hallo", b"hxllo", b"heeeello", b"user:1000:name", b"a" * 40,
         b"ab" * 20, b"\x00a", b"a\x00"]


def m(pattern, string):
    return stringmatch(pattern, string)


@pytest.mark.parametrize("pattern,string,expected", [
    (b"h?llo", b"hello", True),
    (b"h*llo", b"heeeello", True),
    (b"h[ae]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hbllo", True),          # reversed range
    (b"\\*", b"*", True),
    (b"\\*", b"a", False),
    (b"a\\", b"a\\", True),                  # trailing backslash is literal
    (b"*", b"", False),                      # the empty string needs the empty pattern
    (b"", b"", True),
    (b"", b"a", False),
    (b"[]", b"]", False),
    (b"[^]", b"x", True),
    (b"[", b"[", False),
    (b"[^", b"x", True),
    (b"[a-]", b"_", True),                   # "-]" makes a range a..']'
    (b"[a-\xff]", b"\x80", False),           # signed chars: 0xff is -1
    (b"[a-\xff]", b"\xff", True),
    (b"[a-\xff]", b"\x00", True),
    (b"[\\]]", b"]", True),
    (b"a*b*c", b"aXbYc", True),
    (b"a*b*c", b"aXcYb", False),
    (b"**", b"x", True),
    (b"a?", b"a", False),
])
def test_quirks(pattern, string, expected):
    assert m(pattern, string) is expected


def test_nesting_limit():
    long_key = b"a" * 1200
    assert m(b"a*" * 1001, long_key)           # the 1001st star ends the pattern
    assert not m(b"a*" * 1002, long_key)
    assert m(b"*a" * 1000, long_key)
    assert not m(b"*a" * 1001, long_key)


def test_no_exponential_backtracking():
    # Would take ages with naive backtracking; must be immediate.
    assert not m(b"*a" * 30 + b"*b", b"a" * 5000)
    assert m(b"*a" * 30 + b"*b", b"a" * 5000 + b"b")


def test_parse_tokens():
    assert parse(b"a**b") == [frozenset(b"a"), None, frozenset(b"b")]
    assert parse(b"\\") == [frozenset(b"\\")]


def test_compiled_patterns_are_cached():
    assert compile_glob(b"foo*bar") is compile_glob(b"foo*bar")


# -- against redis-server -------------------------------------------------------

@pytest.fixture(scope="module")
def loaded_redis(redis_ref):
    client = redis.Redis(port=redis_ref.port)
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for key in KEYS:
        pipe.set(key, b"1")
    pipe.execute()
    yield client
    client.flushall()
    client.close()


def our_keys(pattern):
    if pattern == b"*":  # KEYS * does not consult the matcher
        return sorted(KEYS)
    match = compile_glob(pattern)
    return sorted(k for k in KEYS if match(k))


WEIRD = [
    b"*", b"**", b"?", b"??", b"???", b"*?", b"?*", b"*a", b"a*", b"*a*", b"a*b", b"*-*",
    b"[", b"]", b"[]", b"[]]", b"[]a]", b"[^]", b"[^]]", b"[^", b"[a", b"[a-", b"[a-]",
    b"[-a]", b"[a-b]", b"[b-a]", b"[--]", b"[]-a]", b"[a-]]", b"[\\]", b"[\\]]", b"[\\\\]",
    b"[\\", b"[^\\]", b"\\", b"\\\\", b"\\*", b"\\?", b"\\[", b"a\\", b"*\\", b"\\a",
    b"[*]", b"[?]", b"[a-\xff]", b"[\xff-a]", b"[\x80-\xff]", b"[\x00-\x7f]", b"[^a-b]",
    b"[a-b-]", b"[ab-]", b"[^-]", b"[^^]", b"[[]", b"[[-]]", b"*[", b"*]", b"[*", b"h*llo",
    b"h?llo", b"h[ae]llo", b"h[^e]llo", b"user:*", b"*:*:*", b"a" * 40, b"*b", b"[a-b]*[a-b]",
    b"*[^a]*", b"?[^*]?", b"", b"\x00a", b"*\x00*",
]


def test_weird_patterns_match_redis(loaded_redis):
    for pattern in WEIRD:
        assert sorted(loaded_redis.keys(pattern)) == our_keys(pattern), pattern


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=0, max_size=7).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b)))
def test_generated_patterns_match_redis(loaded_redis, pattern):
    assert sorted(loaded_redis.keys(pattern)) == our_keys(pattern)


def test_nesting_limit_matches_redis(loaded_redis):
    loaded_redis.set(b"a" * 1200, b"1")
    try:
        for n in (1000, 1001, 1002):
            for pattern in (b"a*" * n, b"*a" * n, (b"a*" * n)[:-1]):
                assert (loaded_redis.keys(pattern) != []) is m(pattern, b"a" * 1200), (n, pattern[:4])
    finally:
        loaded_redis.delete(b"a" * 1200)
