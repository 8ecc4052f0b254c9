"""List commands (LPUSH, LPOP, LRANGE, LMOVE, LMPOP, ...). Values are `List`s.

A deque gives O(1) pushes and pops at both ends; access by index walks from
the nearer end, which is what Redis's quicklist costs too. Error texts, reply
shapes and the order in which arguments and keys are checked follow Redis
7.0, since clients can observe which error wins.

Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) are served by
the server on top of the primitives below, which work on a keyspace and a
db rather than a client context:

    pop(ks, db, key, left, count=None)      LPOP/RPOP: an element, a list or None
    move(ks, db, source, destination, from_left, to_left)
                                            LMOVE: the moved element or None
    mpop(ks, db, keys, left, count)         LMPOP: [key, [elements]] or None

Each raises CommandError(WRONGTYPE) for a non-list key, deletes a list it
empties, counts the changes in ks.dirty and sends the keyspace events as
Redis does.
"""
import re
from collections import deque
from itertools import islice

from fastcache.engine import errors
from fastcache.engine.args import INT64_MAX, INT64_MIN, parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.notify import GENERIC, LIST
from fastcache.engine.registry import command
from fastcache.engine.types import register_type
from fastcache.protocol.replies import NULL_ARRAY, OK

NOT_POSITIVE = "ERR value is out of range, must be positive"
INDEX_RANGE = "ERR index out of range"
RANK_ZERO = ("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second "
             "... or use negative to start from the end of the list")
COUNT_NEGATIVE = "ERR COUNT can't be negative"
MAXLEN_NEGATIVE = "ERR MAXLEN can't be negative"
NUMKEYS = "ERR numkeys should be greater than 0"
COUNT_POSITIVE = "ERR count should be greater than 0"


class List(deque):
    """A Redis list."""
    __slots__ = ()


# Redis 7.0 stores every list as a quicklist, however short.
register_type(List, "list", encoding=lambda value: "quicklist", copy=List.copy)


# -- lookups and bookkeeping ------------------------------------------------------

def _read_list(ctx, key):
    return ctx.ks.get_typed(ctx.db, key, List)


def _create(ks, db, key, lst, changes):
    ks.set(db, key, lst)
    ks.dirty += changes - 1  # ks.set counted one change already


def _removed(ks, db, key, lst, changes, event):
    """Account for changes elements taken from lst and notify event; an
    emptied list's key goes next."""
    ks.notify(LIST, event, db, key)
    if lst:
        ks.dirty += changes
    else:
        ks.delete(db, key)  # counts one change
        ks.dirty += changes - 1
        ks.notify(GENERIC, "del", db, key)


def _pop_event(left):
    return "lpop" if left else "rpop"


def _push_event(left):
    return "lpush" if left else "rpush"


def _positive(raw, error):
    """A count argument in 0..INT64_MAX; error for anything else, non-numbers included."""
    value = parse_int(raw, error)
    if value < 0:
        raise CommandError(error)
    return value


def _at_least_one(raw, error):
    value = parse_int(raw, error)
    if value < 1:
        raise CommandError(error)
    return value


def parse_side(raw):
    """True for LEFT, False for RIGHT."""
    word = raw.upper()
    if word == b"LEFT":
        return True
    if word == b"RIGHT":
        return False
    raise CommandError(errors.SYNTAX)


def _span(start, end, length):
    """Redis's inclusive range start..end (negatives from the tail) clamped to the
    list: (start, stop) for slicing, or None when it selects nothing."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    if start < 0:
        start = 0
    if start > end or start >= length:
        return None
    return start, min(end, length - 1) + 1


def _slice(lst, start, stop):
    """lst[start:stop] as a list (deques do not slice), walked from the nearer end."""
    n = len(lst)
    if start == 0 and stop == n:
        return list(lst)
    if start <= n - stop:
        return list(islice(lst, start, stop))
    out = list(islice(reversed(lst), n - stop, n - start))
    out.reverse()
    return out


# -- primitives (also used by the blocking commands) ------------------------------

def _take(ks, db, key, lst, left, count):
    """Pop up to count elements of lst from one end, in pop order."""
    n = len(lst)
    if count >= n:
        out = list(lst)
        if not left:
            out.reverse()
        lst.clear()
    else:
        take = lst.popleft if left else lst.pop
        out = [take() for _ in range(count)]
    _removed(ks, db, key, lst, len(out), _pop_event(left))
    return out


def pop(ks, db, key, left, count=None):
    """Pop from the head (left) or the tail of the list at key.

    count None: the element (bytes); otherwise a list of up to count elements
    in pop order (empty for count 0). None when the key is missing."""
    lst = ks.get_for_write(db, key, List)
    if lst is None:
        return None
    if count is None:
        value = lst.popleft() if left else lst.pop()
        _removed(ks, db, key, lst, 1, _pop_event(left))
        return value
    if not count:
        return []
    return _take(ks, db, key, lst, left, count)


def move(ks, db, source, destination, from_left, to_left):
    """Pop an element from source and push it onto destination (created if need
    be; may be source itself). The element, or None when source is missing.
    Both types are checked before anything changes."""
    src = ks.get_for_write(db, source, List)
    if src is None:
        return None
    dst = ks.get_for_write(db, destination, List)
    value = src.popleft() if from_left else src.pop()
    if dst is None:
        _create(ks, db, destination, List((value,)), 0)
    elif to_left:
        dst.appendleft(value)
    else:
        dst.append(value)
    ks.notify(LIST, _push_event(to_left), db, destination)
    _removed(ks, db, source, src, 1, _pop_event(from_left))
    return value


def mpop(ks, db, keys, left, count):
    """Pop up to count elements from the first non-empty list among keys:
    [key, [elements]], or None when every key is missing. A non-list key
    before the first list raises WRONGTYPE."""
    for key in keys:
        lst = ks.get_for_write(db, key, List)
        if lst is not None:
            return [key, _take(ks, db, key, lst, left, count)]
    return None


# -- push -------------------------------------------------------------------------

def _push(ctx, argv, left, only_existing):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    lst = ks.get_for_write(db, key, List)
    added = len(argv) - 2
    if lst is None:
        if only_existing:
            return 0
        lst = List()
        _create(ks, db, key, lst, added)
    else:
        ks.dirty += added
    if added == 1:
        if left:
            lst.appendleft(argv[2])
        else:
            lst.append(argv[2])
    elif left:
        lst.extendleft(islice(argv, 2, None))
    else:
        lst.extend(islice(argv, 2, None))
    ks.notify(LIST, _push_event(left), db, key)
    return len(lst)


@command("lpush", -3, "write denyoom fast", (1, 1, 1), group="list",
         summary="Prepend one or multiple elements to a list")
def lpush(ctx, argv):
    return _push(ctx, argv, True, False)


@command("rpush", -3, "write denyoom fast", (1, 1, 1), group="list",
         summary="Append one or multiple elements to a list")
def rpush(ctx, argv):
    return _push(ctx, argv, False, False)


@command("lpushx", -3, "write denyoom fast", (1, 1, 1), group="list", since="2.2.0",
         summary="Prepend an element to a list, only if the list exists")
def lpushx(ctx, argv):
    return _push(ctx, argv, True, True)


@command("rpushx", -3, "write denyoom fast", (1, 1, 1), group="list", since="2.2.0",
         summary="Append an element to a list, only if the list exists")
def rpushx(ctx, argv):
    return _push(ctx, argv, False, True)


# -- pop ----------------------------------------------------------------------------

def _pop_command(ctx, argv, left, name):
    if len(argv) > 3:
        raise CommandError(errors.wrong_arity(name))
    if len(argv) == 2:
        return pop(ctx.ks, ctx.db, argv[1], left)
    count = _positive(argv[2], NOT_POSITIVE)
    values = pop(ctx.ks, ctx.db, argv[1], left, count)
    return NULL_ARRAY if values is None else values


@command("lpop", -2, "write fast", (1, 1, 1), group="list",
         summary="Remove and get the first elements in a list")
def lpop(ctx, argv):
    return _pop_command(ctx, argv, True, "lpop")


@command("rpop", -2, "write fast", (1, 1, 1), group="list",
         summary="Remove and get the last elements in a list")
def rpop(ctx, argv):
    return _pop_command(ctx, argv, False, "rpop")


# -- reads --------------------------------------------------------------------------

@command("llen", 2, "readonly fast", (1, 1, 1), group="list", summary="Get the length of a list")
def llen(ctx, argv):
    lst = _read_list(ctx, argv[1])
    return 0 if lst is None else len(lst)


@command("lrange", 4, "readonly", (1, 1, 1), group="list",
         summary="Get a range of elements from a list")
def lrange(ctx, argv):
    start, end = parse_int(argv[2]), parse_int(argv[3])
    lst = _read_list(ctx, argv[1])
    if lst is None:
        return []
    span = _span(start, end, len(lst))
    return [] if span is None else _slice(lst, *span)


@command("lindex", 3, "readonly", (1, 1, 1), group="list",
         summary="Get an element from a list by its index")
def lindex(ctx, argv):
    lst = _read_list(ctx, argv[1])
    if lst is None:
        return None
    index = parse_int(argv[2])
    if -len(lst) <= index < len(lst):
        return lst[index]
    return None


def _lpos_options(argv):
    """(rank, count, maxlen) of LPOS; count None when the option is absent."""
    rank, count, maxlen = 1, None, 0
    n = len(argv)
    i = 3
    while i < n:
        option = argv[i].upper()
        if i + 1 == n:
            raise CommandError(errors.SYNTAX)
        i += 1
        if option == b"RANK":
            rank = parse_int(argv[i])
            if rank == 0:
                raise CommandError(RANK_ZERO)
        elif option == b"COUNT":
            count = _positive(argv[i], COUNT_NEGATIVE)
        elif option == b"MAXLEN":
            maxlen = _positive(argv[i], MAXLEN_NEGATIVE)
        else:
            raise CommandError(errors.SYNTAX)
        i += 1
    return rank, count, maxlen


def _positions(lst, element, from_tail, maxlen):
    """Indexes (from the head) of element, in scan order, among the first maxlen
    elements scanned (all when maxlen is 0)."""
    last = len(lst) - 1
    scan = reversed(lst) if from_tail else iter(lst)
    if maxlen:
        scan = islice(scan, maxlen)
    for i, value in enumerate(scan):
        if value == element:
            yield last - i if from_tail else i


@command("lpos", -3, "readonly", (1, 1, 1), group="list", since="6.0.6",
         summary="Return the index of matching elements on a list")
def lpos(ctx, argv):
    rank, count, maxlen = _lpos_options(argv)
    lst = _read_list(ctx, argv[1])
    if lst is None:
        return None if count is None else []
    if rank == INT64_MIN:
        # Redis negates the rank in a C long: this one stays negative, so every
        # match from the tail qualifies and its COUNT test never succeeds.
        rank, count = -1, (None if count is None else 0)
    skip = abs(rank) - 1
    found = _positions(lst, argv[2], rank < 0, maxlen)
    if count is None:
        return next(islice(found, skip, None), None)
    return list(islice(found, skip, min(skip + count, INT64_MAX) if count else None))


# -- in-place writes ------------------------------------------------------------------

@command("lset", 4, "write denyoom", (1, 1, 1), group="list",
         summary="Set the value of an element in a list by its index")
def lset(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    lst = ks.get_for_write(db, key, List)
    if lst is None:
        raise CommandError(errors.NO_SUCH_KEY)
    index = parse_int(argv[2])
    if not -len(lst) <= index < len(lst):
        raise CommandError(INDEX_RANGE)
    lst[index] = argv[3]
    ks.dirty += 1
    ks.notify(LIST, "lset", db, key)
    return OK


@command("linsert", 5, "write denyoom", (1, 1, 1), group="list", since="2.2.0",
         summary="Insert an element before or after another element in a list")
def linsert(ctx, argv):
    where = argv[2].upper()
    if where != b"BEFORE" and where != b"AFTER":
        raise CommandError(errors.SYNTAX)
    ks, db, key = ctx.ks, ctx.db, argv[1]
    lst = ks.get_for_write(db, key, List)
    if lst is None:
        return 0
    try:
        index = lst.index(argv[3])
    except ValueError:
        return -1
    lst.insert(index if where == b"BEFORE" else index + 1, argv[4])
    ks.dirty += 1
    ks.notify(LIST, "linsert", db, key)
    return len(lst)


@command("lrem", 4, "write", (1, 1, 1), group="list", summary="Remove elements from a list")
def lrem(ctx, argv):
    limit = parse_int(argv[2])
    ks, db, key = ctx.ks, ctx.db, argv[1]
    lst = ks.get_for_write(db, key, List)
    if lst is None:
        return 0
    element = argv[3]
    occurrences = lst.count(element)
    if not occurrences:
        return 0
    from_tail = limit < 0
    removed = min(abs(limit) or occurrences, occurrences)
    if removed == 1 and (occurrences == 1 or not from_tail):
        lst.remove(element)
    else:
        if removed == occurrences:
            kept = [value for value in lst if value != element]
        else:
            kept = _without(reversed(lst) if from_tail else lst, element, removed)
            if from_tail:
                kept.reverse()
        lst.clear()
        lst.extend(kept)
    _removed(ks, db, key, lst, removed, "lrem")
    return removed


def _without(values, element, limit):
    """values, in order, less the first limit occurrences of element."""
    kept = []
    for value in values:
        if limit and value == element:
            limit -= 1
        else:
            kept.append(value)
    return kept


@command("ltrim", 4, "write", (1, 1, 1), group="list", summary="Trim a list to the specified range")
def ltrim(ctx, argv):
    start, end = parse_int(argv[2]), parse_int(argv[3])
    ks, db, key = ctx.ks, ctx.db, argv[1]
    lst = ks.get_for_write(db, key, List)
    if lst is None:
        return OK
    n = len(lst)
    span = _span(start, end, n)
    if span is None:
        lst.clear()
        _removed(ks, db, key, lst, n, "ltrim")
        return OK
    start, stop = span
    trimmed = n - (stop - start)
    if trimmed > stop - start:
        kept = _slice(lst, start, stop)
        lst.clear()
        lst.extend(kept)
    else:
        for _ in range(start):
            lst.popleft()
        for _ in range(n - stop):
            lst.pop()
    _removed(ks, db, key, lst, trimmed, "ltrim")
    return OK


# -- moves between lists ----------------------------------------------------------------

@command("lmove", 5, "write denyoom", (1, 2, 1), group="list", since="6.2.0",
         summary="Pop an element from a list, push it to another list and return it")
def lmove(ctx, argv):
    from_left, to_left = parse_side(argv[3]), parse_side(argv[4])
    return move(ctx.ks, ctx.db, argv[1], argv[2], from_left, to_left)


@command("rpoplpush", 3, "write denyoom", (1, 2, 1), group="list", since="1.2.0",
         summary="Remove the last element in a list, prepend it to another list and return it")
def rpoplpush(ctx, argv):
    return move(ctx.ks, ctx.db, argv[1], argv[2], False, True)


_LEADING_INT = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def _c_atoi(raw):
    """C's atoi, as Redis reads numkeys when it locates keys: leading digits
    only, 0 without any, the long result truncated to an int."""
    match = _LEADING_INT.match(raw)
    if match is None:
        return 0
    value = max(INT64_MIN, min(INT64_MAX, int(match.group(1))))
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


def numkeys_keys(argv, numkeys_at=1):
    """Key positions of a 'numkeys key [key ...]' command (LMPOP, BLMPOP with
    numkeys_at=2); none when numkeys does not fit the arguments."""
    if len(argv) <= numkeys_at:
        return []
    first = numkeys_at + 1
    count = _c_atoi(argv[numkeys_at])
    if count < 1 or count > len(argv) - first:
        return []
    return list(range(first, first + count))


def parse_mpop(argv, numkeys_at=1):
    """(keys, left, count) of an LMPOP-style argv, checked in Redis's order."""
    numkeys = _at_least_one(argv[numkeys_at], NUMKEYS)
    where_at = numkeys_at + numkeys + 1
    if where_at >= len(argv):
        raise CommandError(errors.SYNTAX)
    left = parse_side(argv[where_at])
    count = None
    i = where_at + 1
    while i < len(argv):
        if count is not None or i + 1 == len(argv) or argv[i].upper() != b"COUNT":
            raise CommandError(errors.SYNTAX)
        count = _at_least_one(argv[i + 1], COUNT_POSITIVE)
        i += 2
    return argv[numkeys_at + 1:where_at], left, count or 1


@command("lmpop", -4, "write", get_keys=numkeys_keys, group="list", since="7.0.0",
         summary="Pop elements from a list")
def lmpop(ctx, argv):
    keys, left, count = parse_mpop(argv)
    popped = mpop(ctx.ks, ctx.db, keys, left, count)
    return NULL_ARRAY if popped is None else popped
