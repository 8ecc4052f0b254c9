"""The sorted-set value, and how Redis reads and writes its scores.

A ZSet is a dict (member -> score) plus a SortedList of (score, member), the
order Redis keeps in its skiplist: by score, then by member bytes (memcmp).
The dict answers ZSCORE in O(1); the list answers ranks and ranges in
O(log n).

Redis keeps small sorted sets as a listpack and converts them for good to a
skiplist once they grow past 128 members or get a member longer than 64
bytes. The `big` flag records that conversion (OBJECT ENCODING reports it)
and one visible difference: a listpack stores scores as text in which -0
becomes 0, while a skiplist keeps -0.0.
"""
import math
import re

from sortedcontainers import SortedList

from fastcache.engine import errors
from fastcache.engine.errors import CommandError
from fastcache.engine.types import register_type

# zset-max-listpack-entries / zset-max-listpack-value defaults.
LISTPACK_ENTRIES = 128
LISTPACK_VALUE = 64

_INF = math.inf


class ZSet(dict):
    """member (bytes) -> score (float), plus the members in Redis's order."""

    # native: what the native fast path keeps beside order (a copy of its scores
    # that it checks before trusting), or None; never copied, pickled or compared.
    __slots__ = ("order", "big", "native")

    def __init__(self):
        super().__init__()
        self.order = SortedList()
        self.big = False  # converted to a skiplist (never converts back)
        self.native = None

    # -- pickling, equality and copies (values cross shards by pickle) ------

    def __reduce__(self):
        return _restore, (list(self.items()), self.big)

    def __eq__(self, other):
        return (type(other) is ZSet and self.big == other.big
                and dict.__eq__(self, other))

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = None

    def copy(self):
        dup = ZSet()
        dict.update(dup, self)
        dup.order = self.order.copy()
        dup.big = self.big
        return dup

    @classmethod
    def from_scores(cls, scores):
        """A ZSet holding the member -> score dict `scores`, encoded the way
        Redis encodes a computed result (ZUNIONSTORE and friends)."""
        zs = cls()
        big = len(scores) > LISTPACK_ENTRIES or any(len(m) > LISTPACK_VALUE for m in scores)
        if not big:
            scores = {m: s + 0.0 for m, s in scores.items()}  # listpack text: -0 -> 0
        dict.update(zs, scores)
        zs.order = SortedList((s, m) for m, s in scores.items())
        zs.big = big
        return zs

    # -- changes ------------------------------------------------------------

    def insert(self, member, score):
        """Add a member that is not there yet."""
        if not self.big:
            if len(self) >= LISTPACK_ENTRIES or len(member) > LISTPACK_VALUE:
                self.big = True
            else:
                score += 0.0
        self[member] = score
        self.order.add((score, member))

    def rescore(self, member, old, new):
        """Move an existing member from score old to score new."""
        if not self.big:
            new += 0.0
        self[member] = new
        order = self.order
        order.remove((old, member))
        order.add((new, member))

    def discard(self, member):
        """Remove member if present; True if it was."""
        score = self.pop(member, None)
        if score is None:
            return False
        self.order.remove((score, member))
        return True

    def delete_slice(self, lo, hi):
        """Remove the members at ranks lo..hi-1; how many went."""
        order = self.order
        for _, member in order.islice(lo, hi):
            del self[member]
        del order[lo:hi]
        return hi - lo

    def pop_end(self, count, from_max):
        """Remove up to count members from the low (or high) end:
        [(score, member)] in the order they leave."""
        order = self.order
        n = min(count, len(order))
        if from_max:
            taken = order[len(order) - n:]
            taken.reverse()
            del order[len(order) - n:]
        else:
            taken = order[:n]
            del order[:n]
        for _, member in taken:
            del self[member]
        return taken

    # -- ranks and ranges ---------------------------------------------------

    def rank(self, member, reverse=False):
        """0-based rank of member, or None."""
        score = self.get(member)
        if score is None:
            return None
        rank = self.order.index((score, member))
        return len(self) - 1 - rank if reverse else rank

    def score_bounds(self, rng):
        """(lo, hi): the ranks lo..hi-1 hold the scores inside rng."""
        low, low_ex, high, high_ex = rng
        if low > high or (low == high and (low_ex or high_ex)):
            return 0, 0
        order = self.order
        if low_ex:
            lo = len(order) if low == _INF else order.bisect_left((math.nextafter(low, _INF),))
        else:
            lo = order.bisect_left((low,))
        if high_ex:
            hi = order.bisect_left((high,))
        else:
            hi = len(order) if high == _INF else order.bisect_left((math.nextafter(high, _INF),))
        return lo, max(lo, hi)

    def window(self, lo, hi, reverse, offset=0, limit=-1):
        """The (score, member) pairs at ranks lo..hi-1 in reply order (low to
        high, or high to low), skipping offset of them and keeping at most
        limit (all if negative). A negative offset gives nothing: Redis's skip
        loop runs off the end."""
        if offset < 0 or lo >= hi:
            return []
        order = self.order
        if reverse:
            top = hi - offset
            bottom = lo if limit < 0 else max(lo, top - limit)
            return list(order.islice(bottom, top, reverse=True)) if top > bottom else []
        first = lo + offset
        last = hi if limit < 0 else min(hi, first + limit)
        return order[first:last] if last > first else []

    # Lex ranges assume one score for all members: then members are in byte
    # order and bisection finds the range. With mixed scores Redis walks from
    # one end (as through a listpack) and so do we, for the same answer.

    def lex_range(self, rng, reverse, offset=0, limit=-1):
        """The (score, member) pairs ZRANGEBYLEX replies, in reply order."""
        if rng.empty() or not self:
            return []
        order = self.order
        score = order[0][0]
        if score == order[-1][0]:
            lo, hi = _lex_bisect(order, rng, score)
            return self.window(lo, hi, reverse, offset, limit)
        i = _lex_start(order, rng, reverse)
        if i is None or offset < 0:
            return []
        step = -1 if reverse else 1
        inside = rng.above_min if reverse else rng.below_max
        i += step * offset
        out = []
        n = len(order)
        while 0 <= i < n and limit:
            item = order[i]
            if not inside(item[1]):
                break
            out.append(item)
            limit -= 1
            i += step
        return out

    def lex_bounds(self, rng):
        """(lo, hi): the ranks lo..hi-1 ZLEXCOUNT and ZREMRANGEBYLEX cover."""
        if rng.empty() or not self:
            return 0, 0
        order = self.order
        score = order[0][0]
        if score == order[-1][0]:
            return _lex_bisect(order, rng, score)
        i = _lex_start(order, rng, False)
        if i is None:
            return 0, 0
        j = i
        n = len(order)
        while j < n and rng.below_max(order[j][1]):
            j += 1
        return i, j


def _lex_bisect(order, rng, score):
    """(lo, hi) of a lex range when every member has the same score."""
    if rng.low is None:
        lo = 0
    elif rng.low_ex:
        lo = order.bisect_right((score, rng.low))
    else:
        lo = order.bisect_left((score, rng.low))
    if rng.high is None:
        hi = len(order)
    elif rng.high_ex:
        hi = order.bisect_left((score, rng.high))
    else:
        hi = order.bisect_right((score, rng.high))
    return lo, max(lo, hi)


def _lex_start(order, rng, reverse):
    """Where Redis's walk starts (first member in range from the head, or the
    last from the tail), or None."""
    n = len(order)
    if not rng.above_min(order[-1][1]) or not rng.below_max(order[0][1]):
        return None  # Redis's quick test of both ends
    if reverse:
        i = n - 1
        while i >= 0 and not rng.below_max(order[i][1]):
            i -= 1
        return i if i >= 0 and rng.above_min(order[i][1]) else None
    i = 0
    while i < n and not rng.above_min(order[i][1]):
        i += 1
    return i if i < n and rng.below_max(order[i][1]) else None


def _restore(items, big):
    zs = ZSet()
    dict.update(zs, items)
    zs.order = SortedList((s, m) for m, s in items)
    zs.big = big
    return zs


def _encoding(zs):
    return "skiplist" if zs.big else "listpack"


register_type(ZSet, "zset", encoding=_encoding, copy=ZSet.copy)


# -- numbers as C's strtod reads them ------------------------------------------

_STRTOD = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?)(?:"
    rb"0[xX](?P<hex>(?P<hexmant>[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)"
    rb"|(?P<dec>(?P<mant>[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    rb"|(?P<inf>[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    rb"|(?P<nan>[nN][aA][nN](?:\([0-9A-Za-z_]*\))?))")
# The usual score: a plain decimal with nothing around it.
_PLAIN = re.compile(rb"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NONZERO_DIGIT = re.compile(rb"[1-9a-fA-F]")


def _underflowed(value, mantissa):
    """strtod's ERANGE for a nonzero number that rounded to zero."""
    return not value and _NONZERO_DIGIT.search(mantissa) is not None


def strtod(raw):
    """(value, characters used, out of range) as glibc's strtod reports for raw:
    leading blanks skipped, hex and inf/nan accepted, the longest number
    prefix taken; (0.0, 0, False) when there is no number at all."""
    m = _STRTOD.match(raw)
    if m is None:
        return 0.0, 0, False
    negative = m.group(1) == b"-"
    if m.group("dec") is not None:
        value = float(m.group("dec"))
        erange = value == _INF or _underflowed(value, m.group("mant"))
    elif m.group("hex") is not None:
        try:
            value = float.fromhex(m.group("hex").decode())
            erange = _underflowed(value, m.group("hexmant"))
        except OverflowError:
            value, erange = _INF, True
    elif m.group("inf") is not None:
        value, erange = _INF, False
    else:
        value, erange = math.nan, False
    return (-value if negative else value), m.end(), erange


def parse_score(raw, error=errors.NOT_FLOAT):
    """A double argument as Redis's getDoubleFromObject takes it: the whole
    string, no leading blank, not NaN, no overflow, no underflow to zero."""
    m = _PLAIN.fullmatch(raw)
    if m is not None:  # the common case, without the general parser
        value = float(raw)
        if value in (_INF, -_INF) or _underflowed(value, m.group(1)):
            raise CommandError(error)
        return value
    if not raw or raw[0] in b" \t\n\v\f\r":
        raise CommandError(error)
    value, used, erange = strtod(raw)
    if used != len(raw) or value != value or (erange and (not value or value in (_INF, -_INF))):
        raise CommandError(error)
    return value


# -- ranges -------------------------------------------------------------------

SCORE_RANGE_ERROR = "ERR min or max is not a float"
LEX_RANGE_ERROR = "ERR min or max not valid string range item"


def _c_string(raw):
    end = raw.find(b"\0")
    return raw if end < 0 else raw[:end]


_INFINITIES = {b"inf": _INF, b"+inf": _INF, b"-inf": -_INF}


def _range_end(raw):
    """(value, exclusive) for one end of a score range: '(' marks exclusive;
    the rest is read as a C string by strtod, so blanks before the number and
    an empty string (zero) are accepted."""
    exclusive = raw[:1] == b"("
    text = raw[1:] if exclusive else raw
    if _PLAIN.fullmatch(text) is not None:  # the common cases first
        return float(text), exclusive
    value = _INFINITIES.get(text)
    if value is not None:
        return value, exclusive
    text = _c_string(raw)
    exclusive = text[:1] == b"("
    if exclusive:
        text = text[1:]
    value, used, _ = strtod(text)
    if used != len(text) or value != value:
        raise CommandError(SCORE_RANGE_ERROR)
    return value, exclusive


def parse_score_range(raw_min, raw_max):
    """(min, min exclusive, max, max exclusive) for ZRANGEBYSCORE and friends."""
    low, low_ex = _range_end(raw_min)
    high, high_ex = _range_end(raw_max)
    return low, low_ex, high, high_ex


class LexRange:
    """A ZRANGEBYLEX range; None stands for '-' (low) and '+' (high)."""

    __slots__ = ("low", "low_ex", "high", "high_ex", "_low_kind", "_high_kind")

    def __init__(self, raw_min, raw_max):
        self._low_kind, self.low, self.low_ex = _lex_end(raw_min)
        self._high_kind, self.high, self.high_ex = _lex_end(raw_max)

    def empty(self):
        cmp = _lex_cmp(self._low_kind, self.low, self._high_kind, self.high)
        return cmp > 0 or (cmp == 0 and (self.low_ex or self.high_ex))

    def above_min(self, member):
        kind = self._low_kind
        if kind:
            return kind < 0  # '-' is below everything, '+' above
        return member > self.low if self.low_ex else member >= self.low

    def below_max(self, member):
        kind = self._high_kind
        if kind:
            return kind > 0
        return member < self.high if self.high_ex else member <= self.high


def _lex_end(raw):
    """(kind, bytes, exclusive): kind -1 for '-', 1 for '+', 0 for a string."""
    first = raw[:1]
    if first in (b"+", b"-"):
        if len(raw) > 1 and raw[1] != 0:
            raise CommandError(LEX_RANGE_ERROR)
        return (1 if first == b"+" else -1), None, True
    if first == b"(":
        return 0, raw[1:], True
    if first == b"[":
        return 0, raw[1:], False
    raise CommandError(LEX_RANGE_ERROR)


def _lex_cmp(kind_a, a, kind_b, b):
    """Redis's sdscmplex with its min/max strings."""
    if kind_a or kind_b:
        if kind_a == kind_b:
            return 0
        if kind_a < 0 or kind_b > 0:
            return -1
        return 1
    return (a > b) - (a < b)


# -- scores as Redis writes them -----------------------------------------------

_HALF_LLONG = float(((1 << 63) - 1) // 2)


def score_text(score, big):
    """The score string ZSCAN shows: a listpack holds integers (up to 2**62)
    as integers and the rest as %.17g; a skiplist prints %.17g."""
    if not big and score == score // 1 and -_HALF_LLONG <= score <= _HALF_LLONG:
        return b"%d" % int(score)
    return b"%.17g" % score
