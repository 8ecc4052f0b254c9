"""Sorted-set commands (ZADD, ZRANGE, ZUNIONSTORE, ...). Values are ZSets
(see zset_type.py).

Error texts, reply shapes and the order in which arguments are checked follow
Redis 7.0. Scores are replied as doubles: bulk strings in RESP2, RESP3
doubles, both printed with %.17g. Where RESP3 pairs a member with its score
(ZRANGE WITHSCORES, ZPOPMIN with a count, ...) each pair is a nested array.

For the blocking pops (BZPOPMIN, BZPOPMAX, BZMPOP) the server can reuse
`pop`, `pop_reply` and `mpop_reply` below.
"""
import random

from fastcache.engine import errors
from fastcache.engine.args import parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.lists import _span as rank_span  # LRANGE's clamping is ZRANGE's
from fastcache.engine.notify import GENERIC, ZSET
from fastcache.engine.registry import command
from fastcache.engine.scan import parse_cursor, step_container
from fastcache.engine.types import type_name
from fastcache.engine.zset_type import (
    LexRange, ZSet, parse_score, parse_score_range, score_text,
)
from fastcache.protocol.replies import NULL_ARRAY

LONG_MAX = (1 << 63) - 1

NAN_SCORE = "ERR resulting score is not a number (NaN)"
NX_XX = "ERR XX and NX options at the same time are not compatible"
GT_LT_NX = "ERR GT, LT, and/or NX options at the same time are not compatible"
INCR_PAIRS = "ERR INCR option supports a single increment-element pair"
LIMIT_NEEDS_RANGE = ("ERR syntax error, LIMIT is only supported in combination with either "
                     "BYSCORE or BYLEX")
LEX_NO_SCORES = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
NOT_POSITIVE = "ERR value is out of range, must be positive"
OUT_OF_RANGE = "ERR value is out of range"
LONG_RANGE = ("ERR value is out of range, value must between %d and %d"
              % (-LONG_MAX, LONG_MAX))
WEIGHT_NOT_FLOAT = "ERR weight value is not a float"
NEED_ONE_KEY = "ERR at least 1 input key is needed for '%s' command"
NUMKEYS_POSITIVE = "ERR numkeys should be greater than 0"
COUNT_POSITIVE = "ERR count should be greater than 0"
NEGATIVE_LIMIT = "ERR LIMIT can't be negative"


# -- lookups and key lifetime ---------------------------------------------------

def _read(ctx, key):
    """The ZSet at key for a read (counts a hit or miss), None if missing."""
    return ctx.ks.get_typed(ctx.db, key, ZSet)


def _write(ctx, key):
    """The ZSet at key for a write (no stats), None if missing."""
    return ctx.ks.get_for_write(ctx.db, key, ZSet)


def _create(ks, db, key, zs):
    ks.set(db, key, zs)
    ks.dirty -= 1  # like Redis, count the elements written, not the new key


def _changed(ks, db, key, zs, event):
    """After removing members from zs: the event, then the key's deletion
    once zs is empty (Redis never keeps an empty sorted set)."""
    ks.notify(ZSET, event, db, key)
    if not zs:
        ks.delete(db, key)
        ks.dirty -= 1  # like Redis, count the elements removed, not the key
        ks.notify(GENERIC, "del", db, key)


def _store(ks, db, key, zs, event):
    """Write a computed result to key (replacing anything), or delete key if
    the result is empty; the reply is the result's size."""
    if zs:
        ks.set(db, key, zs)
        ks.notify(ZSET, event, db, key)
        return len(zs)
    if ks.delete(db, key):
        ks.notify(GENERIC, "del", db, key)
    return 0


# -- replies ----------------------------------------------------------------------

def _members(items):
    return [member for _, member in items]


def _flat(items, proto):
    """(score, member) pairs as [member, score, member, score, ...]."""
    out = []
    append = out.append
    for score, member in items:
        append(member)
        append(score)
    return out


def _pairs(items, proto):
    """(score, member) pairs as [[member, score], ...]."""
    return [[member, score] for score, member in items]


def _with_scores(items, proto):
    """WITHSCORES replies: flat in RESP2, [member, score] pairs in RESP3."""
    return _flat(items, 2) if proto == 2 else _pairs(items, 3)


def pop(ks, db, key, zs, count, from_max):
    """Remove up to count members from the low end (or the high end) of the
    non-empty ZSet zs stored at key: [(score, member)] in pop order. Deletes
    the key once empty. The primitive of ZPOPMIN/ZPOPMAX/ZMPOP and of the
    blocking BZPOPMIN/BZPOPMAX/BZMPOP."""
    taken = zs.pop_end(count, from_max)
    ks.dirty += len(taken)
    _changed(ks, db, key, zs, "zpopmax" if from_max else "zpopmin")
    return taken


def pop_reply(taken, proto, nested):
    """ZPOPMIN/ZPOPMAX's reply: flat [member, score, ...], or (RESP3 with a
    count) [[member, score], ...]."""
    return _pairs(taken, proto) if nested else _flat(taken, proto)


def mpop_reply(key, taken, proto):
    """ZMPOP/BZMPOP's reply: [key, [[member, score], ...]] in both protocols."""
    return [key, _pairs(taken, proto)]


# -- ZADD / ZINCRBY ---------------------------------------------------------------

NX, XX, CH, INCR, GT, LT = (1 << n for n in range(6))
_ZADD_OPTIONS = {b"NX": NX, b"XX": XX, b"CH": CH, b"INCR": INCR, b"GT": GT, b"LT": LT}


def _zadd(ctx, argv, flags):
    n = len(argv)
    i = 2
    while i < n:
        flag = _ZADD_OPTIONS.get(argv[i].upper())
        if flag is None:
            break
        flags |= flag
        i += 1
    pairs = n - i
    if pairs & 1 or not pairs:
        raise CommandError(errors.SYNTAX)
    if flags & NX and flags & XX:
        raise CommandError(NX_XX)
    if flags & (GT | LT) and flags & (NX | GT | LT) not in (GT, LT):
        raise CommandError(GT_LT_NX)
    incr = flags & INCR
    if incr and pairs > 2:
        raise CommandError(INCR_PAIRS)
    scores = [parse_score(argv[j]) for j in range(i, n, 2)]
    ks, db, key = ctx.ks, ctx.db, argv[1]
    zs = _write(ctx, key)
    created = zs is None
    if created:
        if flags & XX:
            return None if incr else 0
        zs = ZSet()
    nx, xx, gt, lt = flags & NX, flags & XX, flags & GT, flags & LT
    added = updated = 0
    result = None
    get = zs.get
    for score, member in zip(scores, argv[i + 1::2]):
        old = get(member)
        if old is None:
            if xx:
                continue
            zs.insert(member, score)
            added += 1
        else:
            if nx:
                continue
            if incr:
                score += old
                if score != score:
                    raise CommandError(NAN_SCORE)
            if (lt and score >= old) or (gt and score <= old):
                continue
            if score != old:
                zs.rescore(member, old, score)
                updated += 1
        result = score
    if created:
        _create(ks, db, key, zs)
    if added or updated:
        ks.dirty += added + updated
        ks.notify(ZSET, "zincr" if incr else "zadd", db, key)
    if incr:
        return result
    return added + updated if flags & CH else added


@command("zadd", -4, "write denyoom fast", (1, 1, 1), group="sorted-set", since="1.2.0",
         summary="Add one or more members to a sorted set, or update its score if it already exists")
def zadd(ctx, argv):
    return _zadd(ctx, argv, 0)


@command("zincrby", 4, "write denyoom fast", (1, 1, 1), group="sorted-set", since="1.2.0",
         summary="Increment the score of a member in a sorted set")
def zincrby(ctx, argv):
    return _zadd(ctx, argv, INCR)


# -- single-member reads and removal -------------------------------------------

@command("zrem", -3, "write fast", (1, 1, 1), group="sorted-set", since="1.2.0",
         summary="Remove one or more members from a sorted set")
def zrem(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    zs = _write(ctx, key)
    if zs is None:
        return 0
    removed = 0
    for member in argv[2:]:
        if zs.discard(member):
            removed += 1
            if not zs:
                break
    if removed:
        ks.dirty += removed
        _changed(ks, db, key, zs, "zrem")
    return removed


@command("zcard", 2, "readonly fast", (1, 1, 1), group="sorted-set", since="1.2.0",
         summary="Get the number of members in a sorted set")
def zcard(ctx, argv):
    zs = _read(ctx, argv[1])
    return 0 if zs is None else len(zs)


@command("zscore", 3, "readonly fast", (1, 1, 1), group="sorted-set", since="1.2.0",
         summary="Get the score associated with the given member in a sorted set")
def zscore(ctx, argv):
    zs = _read(ctx, argv[1])
    if zs is None:
        return None
    score = zs.get(argv[2])
    if score is None:
        return None
    return score


@command("zmscore", -3, "readonly fast", (1, 1, 1), group="sorted-set", since="6.2.0",
         summary="Get the score associated with the given members in a sorted set")
def zmscore(ctx, argv):
    zs = _read(ctx, argv[1])
    if zs is None:
        return [None] * (len(argv) - 2)
    return [zs.get(member) for member in argv[2:]]


def _rank(ctx, argv, reverse):
    zs = _read(ctx, argv[1])
    if zs is None:
        return None
    return zs.rank(argv[2], reverse)


@command("zrank", 3, "readonly fast", (1, 1, 1), group="sorted-set", since="2.0.0",
         summary="Determine the index of a member in a sorted set")
def zrank(ctx, argv):
    return _rank(ctx, argv, False)


@command("zrevrank", 3, "readonly fast", (1, 1, 1), group="sorted-set", since="2.0.0",
         summary="Determine the index of a member in a sorted set, with scores ordered from "
                 "high to low")
def zrevrank(ctx, argv):
    return _rank(ctx, argv, True)


# -- counting ------------------------------------------------------------------------

@command("zcount", 4, "readonly fast", (1, 1, 1), group="sorted-set", since="2.0.0",
         summary="Count the members in a sorted set with scores within the given values")
def zcount(ctx, argv):
    rng = parse_score_range(argv[2], argv[3])
    zs = _read(ctx, argv[1])
    if zs is None:
        return 0
    lo, hi = zs.score_bounds(rng)
    return hi - lo


@command("zlexcount", 4, "readonly fast", (1, 1, 1), group="sorted-set", since="2.8.9",
         summary="Count the number of members in a sorted set between a given "
                 "lexicographical range")
def zlexcount(ctx, argv):
    rng = LexRange(argv[2], argv[3])
    zs = _read(ctx, argv[1])
    if zs is None:
        return 0
    lo, hi = zs.lex_bounds(rng)
    return hi - lo


# -- ZRANGE and its variants ------------------------------------------------------

BY_RANK, BY_SCORE, BY_LEX = 1, 2, 3


def _range_items(zs, kind, bounds, reverse, offset, limit):
    """The (score, member) pairs of the range, in reply order."""
    if kind == BY_RANK:
        n = len(zs)
        lo, hi = rank_span(*bounds, n) or (0, 0)
        return zs.window(n - hi, n - lo, True) if reverse else zs.window(lo, hi, False)
    if kind == BY_SCORE:
        lo, hi = zs.score_bounds(bounds)
        return zs.window(lo, hi, reverse, offset, limit)
    return zs.lex_range(bounds, reverse, offset, limit)


def _zrange(ctx, argv, src, store, kind, reverse):
    """ZRANGE, ZRANGESTORE and the older ZRANGEBYSCORE-style commands.

    kind and reverse are None where the command takes them as options."""
    withscores = False
    offset, limit = 0, -1
    n = len(argv)
    j = src + 3
    while j < n:
        option = argv[j].upper()
        if option == b"WITHSCORES" and not store:
            withscores = True
        elif option == b"LIMIT" and n - j - 1 >= 2:
            offset = parse_int(argv[j + 1])
            limit = parse_int(argv[j + 2])
            j += 2
        elif option == b"REV" and reverse is None:
            reverse = True
        elif option == b"BYLEX" and kind is None:
            kind = BY_LEX
        elif option == b"BYSCORE" and kind is None:
            kind = BY_SCORE
        else:
            raise CommandError(errors.SYNTAX)
        j += 1
    kind = kind or BY_RANK
    reverse = bool(reverse)
    if limit != -1 and kind == BY_RANK:
        # (LIMIT 0 -1 spelled out goes unnoticed, as in Redis)
        raise CommandError(LIMIT_NEEDS_RANGE)
    if withscores and kind == BY_LEX:
        raise CommandError(LEX_NO_SCORES)
    low, high = argv[src + 1], argv[src + 2]
    if reverse and kind != BY_RANK:
        low, high = high, low  # given as max, min
    if kind == BY_RANK:
        bounds = (parse_int(low), parse_int(high))
    elif kind == BY_SCORE:
        bounds = parse_score_range(low, high)
    else:
        bounds = LexRange(low, high)
    zs = _read(ctx, argv[src])
    if zs is None:
        items = []
    else:
        items = _range_items(zs, kind, bounds, reverse, offset, limit)
    if store:
        result = ZSet()
        for score, member in items:
            result.insert(member, score)
        return _store(ctx.ks, ctx.db, argv[1], result, "zrangestore")
    if withscores:
        return _with_scores(items, ctx.proto)
    return _members(items)


@command("zrange", -4, "readonly", (1, 1, 1), group="sorted-set", since="1.2.0",
         summary="Return a range of members in a sorted set")
def zrange(ctx, argv):
    return _zrange(ctx, argv, 1, False, None, None)


@command("zrangestore", -5, "write denyoom", (1, 2, 1), group="sorted-set", since="6.2.0",
         summary="Store a range of members from sorted set into another key")
def zrangestore(ctx, argv):
    return _zrange(ctx, argv, 2, True, None, None)


@command("zrevrange", -4, "readonly", (1, 1, 1), group="sorted-set", since="1.2.0",
         summary="Return a range of members in a sorted set, by index, with scores ordered "
                 "from high to low")
def zrevrange(ctx, argv):
    return _zrange(ctx, argv, 1, False, BY_RANK, True)


@command("zrangebyscore", -4, "readonly", (1, 1, 1), group="sorted-set", since="1.0.5",
         summary="Return a range of members in a sorted set, by score")
def zrangebyscore(ctx, argv):
    return _zrange(ctx, argv, 1, False, BY_SCORE, False)


@command("zrevrangebyscore", -4, "readonly", (1, 1, 1), group="sorted-set", since="2.2.0",
         summary="Return a range of members in a sorted set, by score, with scores ordered "
                 "from high to low")
def zrevrangebyscore(ctx, argv):
    return _zrange(ctx, argv, 1, False, BY_SCORE, True)


@command("zrangebylex", -4, "readonly", (1, 1, 1), group="sorted-set", since="2.8.9",
         summary="Return a range of members in a sorted set, by lexicographical range")
def zrangebylex(ctx, argv):
    return _zrange(ctx, argv, 1, False, BY_LEX, False)


@command("zrevrangebylex", -4, "readonly", (1, 1, 1), group="sorted-set", since="2.8.9",
         summary="Return a range of members in a sorted set, by lexicographical range, "
                 "ordered from higher to lower strings.")
def zrevrangebylex(ctx, argv):
    return _zrange(ctx, argv, 1, False, BY_LEX, True)


# -- range removal -------------------------------------------------------------------

_ZREMRANGE_EVENTS = {BY_RANK: "zremrangebyrank", BY_SCORE: "zremrangebyscore",
                     BY_LEX: "zremrangebylex"}


def _zremrange(ctx, argv, kind):
    if kind == BY_RANK:
        start, end = parse_int(argv[2]), parse_int(argv[3])
    elif kind == BY_SCORE:
        rng = parse_score_range(argv[2], argv[3])
    else:
        rng = LexRange(argv[2], argv[3])
    ks, db, key = ctx.ks, ctx.db, argv[1]
    zs = _write(ctx, key)
    if zs is None:
        return 0
    if kind == BY_RANK:
        lo, hi = rank_span(start, end, len(zs)) or (0, 0)
    elif kind == BY_SCORE:
        lo, hi = zs.score_bounds(rng)
    else:
        lo, hi = zs.lex_bounds(rng)
    if hi <= lo:
        return 0
    removed = zs.delete_slice(lo, hi)
    ks.dirty += removed
    _changed(ks, db, key, zs, _ZREMRANGE_EVENTS[kind])
    return removed


@command("zremrangebyrank", 4, "write", (1, 1, 1), group="sorted-set", since="2.0.0",
         summary="Remove all members in a sorted set within the given indexes")
def zremrangebyrank(ctx, argv):
    return _zremrange(ctx, argv, BY_RANK)


@command("zremrangebyscore", 4, "write", (1, 1, 1), group="sorted-set", since="1.2.0",
         summary="Remove all members in a sorted set within the given scores")
def zremrangebyscore(ctx, argv):
    return _zremrange(ctx, argv, BY_SCORE)


@command("zremrangebylex", 4, "write", (1, 1, 1), group="sorted-set", since="2.8.9",
         summary="Remove all members in a sorted set between the given lexicographical range")
def zremrangebylex(ctx, argv):
    return _zremrange(ctx, argv, BY_LEX)


# -- pops ------------------------------------------------------------------------------

def _zpop(ctx, argv, from_max):
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    count = None
    if len(argv) == 3:
        count = parse_int(argv[2], NOT_POSITIVE)
        if count < 0:
            raise CommandError(NOT_POSITIVE)
    ks, db, key = ctx.ks, ctx.db, argv[1]
    zs = _write(ctx, key)
    if zs is None or count == 0:
        return []
    taken = pop(ks, db, key, zs, 1 if count is None else count, from_max)
    return pop_reply(taken, ctx.proto, count is not None and ctx.proto == 3)


@command("zpopmin", -2, "write fast", (1, 1, 1), group="sorted-set", since="5.0.0",
         summary="Remove and return members with the lowest scores in a sorted set")
def zpopmin(ctx, argv):
    return _zpop(ctx, argv, False)


@command("zpopmax", -2, "write fast", (1, 1, 1), group="sorted-set", since="5.0.0",
         summary="Remove and return members with the highest scores in a sorted set")
def zpopmax(ctx, argv):
    return _zpop(ctx, argv, True)


def _numkeys_positions(at, leading=()):
    """get_keys for commands whose numkeys sits at argv[at], keys right after
    it; leading lists fixed key positions before (a destination). No keys
    when numkeys is unusable: the command will fail with its own error."""
    def get_keys(argv):
        try:
            n = int(argv[at])
        except ValueError:
            return []
        first = at + 1
        if n < 1 or n > len(argv) - first:
            return []
        return list(leading) + list(range(first, first + n))
    return get_keys


def parse_mpop(argv, numkeys_at):
    """(keys, from_max, count) of ZMPOP/BZMPOP, numkeys at argv[numkeys_at]."""
    numkeys = parse_int(argv[numkeys_at], NUMKEYS_POSITIVE)
    if numkeys < 1:
        raise CommandError(NUMKEYS_POSITIVE)
    where = numkeys_at + numkeys + 1
    n = len(argv)
    if where >= n:
        raise CommandError(errors.SYNTAX)
    side = argv[where].upper()
    if side not in (b"MIN", b"MAX"):
        raise CommandError(errors.SYNTAX)
    count = None
    j = where + 1
    while j < n:
        if count is None and argv[j].upper() == b"COUNT" and j + 1 < n:
            count = parse_int(argv[j + 1], COUNT_POSITIVE)
            if count < 1:
                raise CommandError(COUNT_POSITIVE)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    return argv[numkeys_at + 1:where], side == b"MAX", count or 1


@command("zmpop", -4, "write", get_keys=_numkeys_positions(1), group="sorted-set",
         since="7.0.0", summary="Remove and return members with scores in a sorted set")
def zmpop(ctx, argv):
    keys, from_max, count = parse_mpop(argv, 1)
    ks, db = ctx.ks, ctx.db
    for key in keys:
        zs = _write(ctx, key)
        if zs is not None:
            return mpop_reply(key, pop(ks, db, key, zs, count, from_max), ctx.proto)
    return NULL_ARRAY


# -- ZUNION / ZINTER / ZDIFF ---------------------------------------------------------

UNION, INTER, DIFF = 1, 2, 3


def _inputs(ctx, argv, numkeys_at, name):
    """The source values (ZSet, a set, or None) named after numkeys."""
    count = parse_int(argv[numkeys_at])
    if count < 1:
        raise CommandError(NEED_ONE_KEY % name)
    first = numkeys_at + 1
    if count > len(argv) - first:
        raise CommandError(errors.SYNTAX)
    ks, db = ctx.ks, ctx.db
    sources = []
    for key in argv[first:first + count]:
        value = ks.get(db, key)
        if value is not None and type(value) is not ZSet and type_name(value) != "set":
            raise CommandError(errors.WRONGTYPE)
        sources.append(value)
    return sources, first + count


def _scored(value):
    """(member, score) pairs of a source; plain sets score 1."""
    if value is None:
        return ()
    if type(value) is ZSet:
        return value.items()
    return ((member, 1.0) for member in value)


def _score_of(value, member):
    if type(value) is ZSet:
        return value.get(member)
    return 1.0 if member in value else None


def _aggregate(total, value, how):
    if how == b"SUM":
        total += value
        return 0.0 if total != total else total  # inf + -inf counts as 0
    if how == b"MIN":
        return value if value < total else total
    return value if value > total else total


def _combine(sources, weights, how, op):
    """member -> score of the union, intersection or difference."""
    if op == DIFF:
        first = sources[0]
        if not first:
            return {}
        rest = [s for s in sources[1:] if s]
        return {m: s for m, s in _scored(first)
                if not any(_score_of(other, m) is not None for other in rest)}
    # Redis visits the inputs smallest first; the order matters to float sums.
    ranked = sorted(zip(sources, weights), key=lambda sw: len(sw[0]) if sw[0] else 0)
    result = {}
    if op == UNION:
        for value, weight in ranked:
            for member, score in _scored(value):
                score *= weight
                if score != score:
                    score = 0.0  # inf * 0
                total = result.get(member)
                result[member] = score if total is None else _aggregate(total, score, how)
        return result
    first, weight0 = ranked[0]
    if not first:
        return result
    for member, score in _scored(first):
        total = score * weight0
        if total != total:
            total = 0.0
        for value, weight in ranked[1:]:
            other = _score_of(value, member)
            if other is None:
                break
            total = _aggregate(total, other * weight, how)
        else:
            result[member] = total
    return result


def _setop(ctx, argv, numkeys_at, op, name, store):
    sources, j = _inputs(ctx, argv, numkeys_at, name)
    weights = [1.0] * len(sources)
    how = b"SUM"
    withscores = False
    n = len(argv)
    while j < n:
        option = argv[j].upper()
        left = n - j
        if option == b"WEIGHTS" and op != DIFF and left > len(sources):
            weights = [parse_score(raw, WEIGHT_NOT_FLOAT) for raw in argv[j + 1:j + 1 + len(sources)]]
            j += 1 + len(sources)
        elif option == b"AGGREGATE" and op != DIFF and left >= 2:
            how = argv[j + 1].upper()
            if how not in (b"SUM", b"MIN", b"MAX"):
                raise CommandError(errors.SYNTAX)
            j += 2
        elif option == b"WITHSCORES" and not store:
            withscores = True
            j += 1
        else:
            raise CommandError(errors.SYNTAX)
    result = _combine(sources, weights, how, op)
    if store:
        return _store(ctx.ks, ctx.db, argv[1], ZSet.from_scores(result), name)
    items = sorted((s, m) for m, s in result.items())
    if withscores:
        return _with_scores(items, ctx.proto)
    return _members(items)


_KEYS_AT_1 = _numkeys_positions(1)
_DEST_AND_KEYS_AT_2 = _numkeys_positions(2, (1,))


@command("zunion", -3, "readonly", get_keys=_KEYS_AT_1, group="sorted-set", since="6.2.0",
         summary="Add multiple sorted sets")
def zunion(ctx, argv):
    return _setop(ctx, argv, 1, UNION, "zunion", False)


@command("zinter", -3, "readonly", get_keys=_KEYS_AT_1, group="sorted-set", since="6.2.0",
         summary="Intersect multiple sorted sets")
def zinter(ctx, argv):
    return _setop(ctx, argv, 1, INTER, "zinter", False)


@command("zdiff", -3, "readonly", get_keys=_KEYS_AT_1, group="sorted-set", since="6.2.0",
         summary="Subtract multiple sorted sets")
def zdiff(ctx, argv):
    return _setop(ctx, argv, 1, DIFF, "zdiff", False)


@command("zunionstore", -4, "write denyoom", (1, 1, 1), get_keys=_DEST_AND_KEYS_AT_2,
         group="sorted-set", since="2.0.0",
         summary="Add multiple sorted sets and store the resulting sorted set in a new key")
def zunionstore(ctx, argv):
    return _setop(ctx, argv, 2, UNION, "zunionstore", True)


@command("zinterstore", -4, "write denyoom", (1, 1, 1), get_keys=_DEST_AND_KEYS_AT_2,
         group="sorted-set", since="2.0.0",
         summary="Intersect multiple sorted sets and store the resulting sorted set in a new key")
def zinterstore(ctx, argv):
    return _setop(ctx, argv, 2, INTER, "zinterstore", True)


@command("zdiffstore", -4, "write denyoom", (1, 1, 1), get_keys=_DEST_AND_KEYS_AT_2,
         group="sorted-set", since="6.2.0",
         summary="Subtract multiple sorted sets and store the resulting sorted set in a new key")
def zdiffstore(ctx, argv):
    return _setop(ctx, argv, 2, DIFF, "zdiffstore", True)


@command("zintercard", -3, "readonly", get_keys=_KEYS_AT_1, group="sorted-set", since="7.0.0",
         summary="Intersect multiple sorted sets and return the cardinality of the result")
def zintercard(ctx, argv):
    sources, j = _inputs(ctx, argv, 1, "zintercard")
    limit = 0
    n = len(argv)
    while j < n:
        if argv[j].upper() == b"LIMIT" and n - j >= 2:
            limit = parse_int(argv[j + 1], NEGATIVE_LIMIT)
            if limit < 0:
                raise CommandError(NEGATIVE_LIMIT)
            j += 2
        else:
            raise CommandError(errors.SYNTAX)
    ranked = sorted((s for s in sources), key=lambda s: len(s) if s else 0)
    first = ranked[0]
    if not first:
        return 0
    rest = ranked[1:]
    found = 0
    for member in first:
        if all(_score_of(other, member) is not None for other in rest):
            found += 1
            if found == limit:
                break
    return found


# -- random members and scanning ------------------------------------------------------

def _random_items(zs, count):
    """ZRANDMEMBER with a count: (score, member) pairs in Redis's order."""
    if count < 0:  # repeats allowed, any order
        pool = list(zs.items())
        return [(s, m) for m, s in random.choices(pool, k=-count)]
    size = len(zs)
    if count >= size:  # the whole set, walked from the top as Redis does
        items = list(zs.order)
        items.reverse()
        return items
    if count * 3 > size or zs.big:  # Redis answers from a hash: no order
        picked = random.sample(list(zs.items()), count)
        return [(s, m) for m, s in picked]
    ranks = sorted(random.sample(range(size), count))  # a listpack sample keeps order
    order = zs.order
    return [order[r] for r in ranks]


@command("zrandmember", -2, "readonly", (1, 1, 1), group="sorted-set", since="6.2.0",
         summary="Get one or multiple random elements from a sorted set",
         tips="nondeterministic_output")
def zrandmember(ctx, argv):
    n = len(argv)
    if n == 2:
        zs = _read(ctx, argv[1])
        if zs is None:
            return None
        return zs.order[random.randrange(len(zs))][1]
    count = parse_int(argv[2])
    if count < -LONG_MAX:
        raise CommandError(LONG_RANGE)
    if n > 4 or (n == 4 and argv[3].upper() != b"WITHSCORES"):
        raise CommandError(errors.SYNTAX)
    withscores = n == 4
    if withscores and not -(LONG_MAX // 2) <= count <= LONG_MAX // 2:
        raise CommandError(OUT_OF_RANGE)
    zs = _read(ctx, argv[1])
    if zs is None or count == 0:
        return []
    items = _random_items(zs, count)
    if withscores:
        return _with_scores(items, ctx.proto)
    return _members(items)


@command("zscan", -3, "readonly", (1, 1, 1), group="sorted-set", since="2.8.0",
         summary="Incrementally iterate sorted sets elements and associated scores",
         tips="nondeterministic_output")
def zscan(ctx, argv):
    cursor = parse_cursor(argv[2])
    key = argv[1]
    zs = _read(ctx, key)
    if zs is None:
        return [b"0", []]
    big = zs.big
    cursor, batch, match = step_container(ctx, argv, cursor, zs, big, whole=zs.order)
    pairs = [(zs.get(m), m) for m in batch] if big else batch
    out = []
    for score, member in pairs:
        if score is None or (match is not None and not match(member)):
            continue
        out.append(member)
        out.append(score_text(score, big))
    return [b"%d" % cursor, out]

