"""Glob patterns with the semantics of Redis's stringmatchlen (case-sensitive).

    *      any run of bytes        ?      any one byte
    [abc]  one of a set            [^abc] one byte not in the set
    [a-z]  a range (ends may come in either order)
    \\x     x literally (also inside brackets)

Redis's matcher has quirks that clients can observe, and they are kept:

* A pattern is matched against a non-empty string only; the empty string is
  matched by the empty pattern alone (so "*" does not match the key "").
  KEYS * and SCAN MATCH * skip matching altogether and do include "".
* Bracket parsing is literal-minded: "[]" matches nothing, "[^]" matches any
  byte, an unclosed bracket runs to the end of the pattern, a "-" preceded by
  a byte and followed by at least one more makes a range even if that byte is
  "]", and range ends compare as signed chars (bytes >= 0x80 sort below 0).
* A trailing lone backslash is a literal backslash.
* Redis gives up (no match) once it recurses through more than 1000 "*"
  groups; a final "*" costs no recursion.

The pattern is compiled once (cached) into a regular expression whose
segments between stars are atomic, so no pattern can make matching
backtrack exponentially, the same guarantee Redis's matcher gives.
"""
import functools
import re

_STAR, _ANY, _BACKSLASH, _OPEN, _CLOSE, _CARET, _DASH = b"*?\\[]^-"
_ALL_BYTES = frozenset(range(256))
_MAX_NESTING = 1000


def _signed(byte):
    return byte - 256 if byte >= 128 else byte


def _parse_class(pattern, i):
    """Parse a bracket body starting after '['; returns (byte set, index of its last char)."""
    n = len(pattern)
    negate = i < n and pattern[i] == _CARET
    if negate:
        i += 1
    members = set()
    while True:
        if i < n - 1 and pattern[i] == _BACKSLASH:
            i += 1
            members.add(pattern[i])
        elif i < n and pattern[i] == _CLOSE:
            break
        elif i >= n:
            i = n - 1  # unclosed: the class ends with the pattern
            break
        elif n - i >= 3 and pattern[i + 1] == _DASH:
            lo, hi = _signed(pattern[i]), _signed(pattern[i + 2])
            if lo > hi:
                lo, hi = hi, lo
            members.update(b for b in range(256) if lo <= _signed(b) <= hi)
            i += 2
        else:
            members.add(pattern[i])
        i += 1
    return (_ALL_BYTES - members if negate else frozenset(members)), i


def parse(pattern):
    """The pattern as a list of tokens: None for a star group, else the set of
    bytes one position accepts."""
    tokens = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == _STAR:
            while i + 1 < n and pattern[i + 1] == _STAR:
                i += 1
            tokens.append(None)
        elif c == _ANY:
            tokens.append(_ALL_BYTES)
        elif c == _OPEN:
            accepted, i = _parse_class(pattern, i + 1)
            tokens.append(accepted)
        else:
            if c == _BACKSLASH and i + 1 < n:
                i += 1
            tokens.append(frozenset((pattern[i],)))
        i += 1
    return tokens


def _byte_class(accepted):
    """Regex source for one position accepting the given bytes."""
    if not accepted:
        return b"(?!)"
    if len(accepted) == 256:
        return b"."
    if len(accepted) == 1:
        return re.escape(bytes(accepted))
    parts = []
    run_start = prev = None
    for b in sorted(accepted):
        if prev is not None and b == prev + 1:
            prev = b
            continue
        if run_start is not None:
            parts.append(_class_range(run_start, prev))
        run_start = prev = b
    parts.append(_class_range(run_start, prev))
    return b"[" + b"".join(parts) + b"]"


def _class_range(lo, hi):
    if lo == hi:
        return b"\\x%02x" % lo
    return b"\\x%02x-\\x%02x" % (lo, hi)


def _regex(tokens):
    segments = [[]]
    for token in tokens:
        if token is None:
            segments.append([])
        else:
            segments[-1].append(_byte_class(token))
    src = [b"".join(segments[0])]
    if len(segments) == 1:
        src.append(b"\\Z")
    else:
        # Middle segments: leftmost placement is always best for fixed-width
        # segments, so commit to it (atomic group) instead of backtracking.
        for seg in segments[1:-1]:
            src.append(b"(?>.*?" + b"".join(seg) + b")")
        if segments[-1]:
            src.append(b".*" + b"".join(segments[-1]) + b"\\Z")
    return re.compile(b"".join(src), re.DOTALL).match


def _never(_string):
    return False


@functools.lru_cache(maxsize=512)
def compile_glob(pattern):
    """A predicate string -> truthy if pattern matches it (as Redis would)."""
    if not pattern:
        return b"".__eq__
    tokens = parse(pattern)
    stars = tokens.count(None)
    if stars == len(tokens):
        return bool  # only stars: anything but the empty string
    if stars - (tokens[-1] is None) > _MAX_NESTING:
        return _never
    if stars == 0 and all(len(t) == 1 for t in tokens):
        literal = bytes(next(iter(t)) for t in tokens)
        return literal.__eq__
    return _regex(tokens)


def stringmatch(pattern, string):
    return bool(compile_glob(pattern)(string))
