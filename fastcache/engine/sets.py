"""Set commands (SADD, SINTER, SPOP, SRANDMEMBER, SSCAN, ...). Values are `Set`s.

A `Set` is a Python set of member bytes, so membership and the set algebra
run in C. Redis 7.0 encodes a set as an intset while every member is a
canonical int64 and there are at most set-max-intset-entries of them, and
as a hashtable otherwise; it never converts back, and neither does `Set`.

Python sets have no random access, so SPOP and SRANDMEMBER on a big set
build an index (a list of the members) the first time they need one and
keep it up to date from then on; later random picks cost O(count), not
O(n). Small sets draw from a fresh tuple instead. See `Set` for how the
index follows removals.

Replies that Redis sends as sets (SMEMBERS, SINTER, SPOP with a count, ...)
are Python sets: a set in RESP3, an array in RESP2, in no particular order
(Redis lists an intset in ascending order). Error texts, reply shapes, the
order in which arguments and keys are checked and the ks.dirty / hit and
miss counts follow Redis 7.0.
"""
import random
from random import choice, randrange

from fastcache.engine import errors
from fastcache.engine.args import INT64_MIN, parse_int
from fastcache.engine.errors import CommandError
from fastcache.engine.hashes import COUNT_RANGE
from fastcache.engine.lists import NOT_POSITIVE, NUMKEYS, numkeys_keys
from fastcache.engine.notify import GENERIC, SET
from fastcache.engine.registry import command
from fastcache.engine.scan import parse_cursor, step_container
from fastcache.engine.types import register_type, string_as_int

# Redis's default set-max-intset-entries.
MAX_INTSET_ENTRIES = 512
# Up to this size a random pick copies the members rather than index them.
SMALL_SET = 64
# SPOP with a count rebuilds the set from the members it keeps once it pops
# more than this many times as many members as it keeps (Redis's
# SPOP_MOVE_STRATEGY_MUL); the rebuilt set may go back to an intset.
SPOP_REBUILD_RATIO = 5

TOO_MANY_KEYS = "ERR Number of keys can't be greater than number of args"
LIMIT_NEGATIVE = "ERR LIMIT can't be negative"

EMPTY = frozenset()

_set_add = set.add
_set_discard = set.discard
_set_update = set.update


def fits_intset(members):
    """Whether Redis would keep these members in an intset."""
    if len(members) > MAX_INTSET_ENTRIES:
        return False
    for member in members:
        if string_as_int(member) is None:
            return False
    return True


class Set(set):
    """A set value. `hashtable` records that it left the intset encoding.

    Mutate it through add_members / remove_members / discard_member /
    pop_random (or draw + take) / keep_only, which keep the random-pick
    index in step.

    The index, `_pool`, lists every member once. A pick draws a position in
    it; SPOP then moves the last entry into the popped member's place, so a
    pop costs one hash operation (the set's own discard). A member removed
    any other way (SREM, SMOVE) keeps its entry, which goes stale, and is
    noted in `_gone` (a set, present with the pool): finding its position
    would take a member -> position map, which costs memory and three more
    hash operations on every pop, to spare SREM a set insertion.

    A pick that lands on a stale entry drops it and draws again, and a
    member re-added while its entry is stale takes that entry back rather
    than get a second one, so picks stay exactly uniform over the current
    members. A redraw removes a stale entry for good: redraws cost no more
    in all than the removals that left those entries. A removal that leaves
    more stale entries than live ones drops the index, to be rebuilt when
    next needed, so the pool stays under twice the largest size the set had.
    """
    __slots__ = ("hashtable", "_pool", "_gone")

    def __init__(self, members=(), hashtable=None):
        set.__init__(self, members)
        self.hashtable = not fits_intset(self) if hashtable is None else hashtable
        self._pool = None  # the random-pick index: each member once, plus the stale entries
        self._gone = None  # members whose _pool entry is stale (None while _pool is)

    def copy(self):
        return Set(self, self.hashtable)

    def __reduce__(self):
        return (Set, (list(self), self.hashtable))

    # -- changes ----------------------------------------------------------------

    def add_members(self, members):
        """Add members; how many were new."""
        before = len(self)
        pool = self._pool
        if pool is None:
            _set_update(self, members)
        else:
            gone = self._gone
            for member in members:
                size = len(self)
                _set_add(self, member)
                if len(self) != size:
                    if gone and member in gone:
                        gone.discard(member)  # its stale entry is live again
                    else:
                        pool.append(member)
        added = len(self) - before
        if added and not self.hashtable and (
                len(self) > MAX_INTSET_ENTRIES or not fits_intset(members)):
            self.hashtable = True
        return added

    def remove_members(self, members):
        """Remove members; how many were there."""
        before = len(self)
        if self._pool is None:
            self.difference_update(members)
        else:
            for member in members:
                if member in self:
                    self.discard_member(member)
        return before - len(self)

    def discard_member(self, member):
        """Remove a member known to be present; its index entry goes stale."""
        _set_discard(self, member)
        gone = self._gone
        if gone is not None:
            gone.add(member)
            if len(gone) > len(self):
                self._pool = self._gone = None

    def keep_only(self, members):
        """Shrink to members (a subset); Redis re-encodes the rebuilt set."""
        self.intersection_update(members)
        self._pool = self._gone = None
        self.hashtable = not fits_intset(self)

    # -- random picks -------------------------------------------------------------

    def _index(self):
        """_pool, (re)built when missing or out of step with the set (changed
        behind Set's back)."""
        pool = self._pool
        if pool is None or len(pool) != len(self) + len(self._gone):
            pool = self._rebuild()
        return pool

    def _rebuild(self):
        self._pool = pool = list(self)
        self._gone = set()
        return pool

    def population(self):
        """A sequence of every member, each once, to draw from."""
        if self._pool is None and len(self) <= SMALL_SET:
            return tuple(self)
        pool = self._index()
        return self._rebuild() if self._gone else pool  # without stale entries

    def draw(self):
        """A random member (random.choice over the members) and its position in
        _pool, None when a small set without an index drew from its own order.
        Stale entries the draws land on are dropped."""
        if self._pool is None and len(self) <= SMALL_SET:
            return choice(tuple(self)), None
        pool = self._index()
        gone = self._gone
        while True:
            at = randrange(len(pool))
            member = pool[at]
            if not gone or member not in gone:
                return member, at
            gone.discard(member)
            self._drop(at)

    def _drop(self, at):
        """Remove _pool's entry at, the last one taking its place."""
        pool = self._pool
        last = pool.pop()
        if at < len(pool):
            pool[at] = last

    def take(self, member, at):
        """Remove member, which draw() returned with at."""
        _set_discard(self, member)
        if at is not None:
            self._drop(at)

    def random_member(self):
        return self.draw()[0]

    def sample(self, count):
        """count distinct random members (count <= len)."""
        return random.sample(self.population(), count)

    def pop_random(self):
        member, at = self.draw()
        self.take(member, at)
        return member


def _encoding(value):
    return "hashtable" if value.hashtable else "intset"


register_type(Set, "set", encoding=_encoding, copy=Set.copy)


# -- lookups and bookkeeping ------------------------------------------------------

def _read(ctx, key):
    return ctx.ks.get_typed(ctx.db, key, Set)


def _create(ks, db, key):
    value = Set(hashtable=False)
    ks.set(db, key, value)
    ks.dirty -= 1  # the key itself is no change; callers count members
    return value


def _removed(ks, db, key, value, event):
    """After members left value: notify event; an emptied set's key goes next."""
    ks.notify(SET, event, db, key)
    if not value:
        ks.delete(db, key)
        ks.dirty -= 1  # Redis counts the members removed, not the key
        ks.notify(GENERIC, "del", db, key)


def _read_all(ctx, keys):
    """The sets at keys (None where missing), looked up in order; a
    non-set raises WRONGTYPE once the keys before it were counted."""
    ks, db = ctx.ks, ctx.db
    return [ks.get_typed(db, key, Set) for key in keys]


def _store(ks, db, key, event, result, hashtable=None):
    """SINTERSTORE & co.: replace key by the result (a new Set), or delete it
    when the result is empty; the result's size."""
    if not result:
        if ks.delete(db, key):
            ks.notify(GENERIC, "del", db, key)
        return 0
    value = Set(result, hashtable)
    ks.set(db, key, value)
    ks.notify(SET, event, db, key)
    return len(value)


# -- adding and removing ----------------------------------------------------------

@command("sadd", -3, "write denyoom fast", (1, 1, 1), group="set",
         summary="Add one or more members to a set")
def sadd(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    value = ks.get_for_write(db, key, Set)
    if value is None:
        value = _create(ks, db, key)
    added = value.add_members(argv[2:])
    if added:
        ks.dirty += added
        ks.notify(SET, "sadd", db, key)
    return added


@command("srem", -3, "write fast", (1, 1, 1), group="set",
         summary="Remove one or more members from a set")
def srem(ctx, argv):
    ks, db, key = ctx.ks, ctx.db, argv[1]
    value = ks.get_for_write(db, key, Set)
    if value is None:
        return 0
    removed = value.remove_members(argv[2:])
    if removed:
        ks.dirty += removed
        _removed(ks, db, key, value, "srem")
    return removed


@command("smove", 4, "write fast", (1, 2, 1), group="set",
         summary="Move a member from one set to another")
def smove(ctx, argv):
    ks, db, member = ctx.ks, ctx.db, argv[3]
    source = ks.peek(db, argv[1])
    target = ks.peek(db, argv[2])
    for key, value in ((argv[1], source), (argv[2], target)):
        if value is not None:  # a write lookup refreshes the access time
            db.atime[key] = ks.clock
    if source is None:
        return 0
    if type(source) is not Set or (target is not None and type(target) is not Set):
        raise CommandError(errors.WRONGTYPE)
    if source is target:
        return 1 if member in source else 0
    if member not in source:
        return 0
    source.discard_member(member)
    ks.dirty += 1
    _removed(ks, db, argv[1], source, "srem")
    if target is None:
        target = _create(ks, db, argv[2])
    if target.add_members((member,)):
        ks.dirty += 1
        ks.notify(SET, "sadd", db, argv[2])
    return 1


# -- popping and sampling -----------------------------------------------------------

def _has_count(argv):
    """Whether SPOP/SRANDMEMBER got a count; more arguments are a syntax error."""
    if len(argv) > 3:
        raise CommandError(errors.SYNTAX)
    return len(argv) == 3


@command("spop", -2, "write fast", (1, 1, 1), group="set",
         summary="Remove and return one or multiple random members from a set",
         tips="nondeterministic_output")
def spop(ctx, argv):
    if _has_count(argv):
        return _spop_count(ctx, argv)
    ks, db, key = ctx.ks, ctx.db, argv[1]
    value = ks.get_for_write(db, key, Set)
    if value is None:
        return None
    member = value.pop_random()
    ks.dirty += 1
    _removed(ks, db, key, value, "spop")
    return member


def _spop_count(ctx, argv):
    count = parse_int(argv[2], NOT_POSITIVE)
    if count < 0:
        raise CommandError(NOT_POSITIVE)
    ks, db, key = ctx.ks, ctx.db, argv[1]
    value = ks.get_for_write(db, key, Set)
    if value is None or count == 0:
        return EMPTY
    size = len(value)
    if count >= size:
        ks.hits += 1  # Redis replies through a read lookup of the whole set
        ks.delete(db, key)
        ks.dirty += size - 1
        ks.notify(SET, "spop", db, key)
        ks.notify(GENERIC, "del", db, key)
        return set(value)
    kept = size - count
    if kept * SPOP_REBUILD_RATIO > count:
        popped = {value.pop_random() for _ in range(count)}
    else:
        keep = value.sample(kept)
        popped = value.difference(keep)
        value.keep_only(keep)
    ks.dirty += count
    ks.notify(SET, "spop", db, key)
    return popped


@command("srandmember", -2, "readonly", (1, 1, 1), group="set",
         summary="Get one or multiple random members from a set",
         tips="nondeterministic_output")
def srandmember(ctx, argv):
    if _has_count(argv):
        return _srandmember_count(ctx, argv)
    value = _read(ctx, argv[1])
    return None if value is None else value.random_member()


def _srandmember_count(ctx, argv):
    count = parse_int(argv[2])
    if count == INT64_MIN:  # Redis must be able to negate it
        raise CommandError(COUNT_RANGE)
    value = _read(ctx, argv[1])
    if value is None or count == 0:
        return []
    if count < 0:  # repeats allowed
        return random.choices(value.population(), k=-count)
    if count >= len(value):
        return list(value)
    return value.sample(count)


# -- reads --------------------------------------------------------------------------

@command("smembers", 2, "readonly", (1, 1, 1), group="set",
         summary="Get all the members in a set", tips="nondeterministic_output_order")
def smembers(ctx, argv):
    value = _read(ctx, argv[1])
    return EMPTY if value is None else set(value)


@command("sismember", 3, "readonly fast", (1, 1, 1), group="set",
         summary="Determine if a given value is a member of a set")
def sismember(ctx, argv):
    value = _read(ctx, argv[1])
    return 1 if value is not None and argv[2] in value else 0


@command("smismember", -3, "readonly fast", (1, 1, 1), group="set", since="6.2.0",
         summary="Returns the membership associated with the given elements for a set")
def smismember(ctx, argv):
    value = _read(ctx, argv[1])
    if value is None:
        return [0] * (len(argv) - 2)
    return [1 if member in value else 0 for member in argv[2:]]


@command("scard", 2, "readonly fast", (1, 1, 1), group="set",
         summary="Get the number of members in a set")
def scard(ctx, argv):
    value = _read(ctx, argv[1])
    return 0 if value is None else len(value)


# -- set algebra ----------------------------------------------------------------------

def _intersection(sets):
    """The members common to sets (None counts as empty), smallest set first."""
    if any(value is None for value in sets):
        return EMPTY
    sets = sorted(sets, key=len)
    return sets[0].intersection(*sets[1:])


def _union(sets):
    return set().union(*[value for value in sets if value is not None])


def _difference(sets):
    first = sets[0]
    if first is None:
        return EMPTY
    return first.difference(*[value for value in sets[1:] if value is not None])


def _difference_sticks_to_hashtable(sets):
    """Whether SDIFFSTORE's result comes out as a hashtable whatever it holds:
    when Redis expects subtracting to be cheaper than probing, it copies the
    whole first set into the result and removes the others from it, and a
    result that was once a hashtable stays one."""
    first = sets[0]
    present = [value for value in sets if value is not None]
    probing = len(first) * len(present) // 2
    subtracting = sum(len(value) for value in present)
    return probing > subtracting and not fits_intset(first)


@command("sinter", -2, "readonly", (1, -1, 1), group="set",
         summary="Intersect multiple sets", tips="nondeterministic_output_order")
def sinter(ctx, argv):
    return _intersection(_read_all(ctx, argv[1:]))


@command("sunion", -2, "readonly", (1, -1, 1), group="set",
         summary="Add multiple sets", tips="nondeterministic_output_order")
def sunion(ctx, argv):
    return _union(_read_all(ctx, argv[1:]))


@command("sdiff", -2, "readonly", (1, -1, 1), group="set",
         summary="Subtract multiple sets", tips="nondeterministic_output_order")
def sdiff(ctx, argv):
    return _difference(_read_all(ctx, argv[1:]))


@command("sinterstore", -3, "write denyoom", (1, -1, 1), group="set",
         summary="Intersect multiple sets and store the resulting set in a key")
def sinterstore(ctx, argv):
    result = _intersection(_read_all(ctx, argv[2:]))
    return _store(ctx.ks, ctx.db, argv[1], "sinterstore", result)


@command("sunionstore", -3, "write denyoom", (1, -1, 1), group="set",
         summary="Add multiple sets and store the resulting set in a key")
def sunionstore(ctx, argv):
    result = _union(_read_all(ctx, argv[2:]))
    return _store(ctx.ks, ctx.db, argv[1], "sunionstore", result)


@command("sdiffstore", -3, "write denyoom", (1, -1, 1), group="set",
         summary="Subtract multiple sets and store the resulting set in a key")
def sdiffstore(ctx, argv):
    sets = _read_all(ctx, argv[2:])
    result = _difference(sets)
    hashtable = True if result and _difference_sticks_to_hashtable(sets) else None
    return _store(ctx.ks, ctx.db, argv[1], "sdiffstore", result, hashtable)


@command("sintercard", -3, "readonly", get_keys=numkeys_keys, group="set", since="7.0.0",
         summary="Intersect multiple sets and return the cardinality of the result")
def sintercard(ctx, argv):
    numkeys = parse_int(argv[1], NUMKEYS)
    if numkeys < 1:
        raise CommandError(NUMKEYS)
    if numkeys > len(argv) - 2:
        raise CommandError(TOO_MANY_KEYS)
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].upper() != b"LIMIT" or i + 1 == len(argv):
            raise CommandError(errors.SYNTAX)
        limit = parse_int(argv[i + 1], LIMIT_NEGATIVE)
        if limit < 0:
            raise CommandError(LIMIT_NEGATIVE)
        i += 2
    sets = _read_all(ctx, argv[2:2 + numkeys])
    if any(value is None for value in sets):
        return 0
    if not limit:
        return len(_intersection(sets))
    sets.sort(key=len)
    first, others = sets[0], sets[1:]
    found = 0
    for member in first:
        if all(member in other for other in others):
            found += 1
            if found == limit:
                break
    return found


# -- SSCAN ----------------------------------------------------------------------------

@command("sscan", -3, "readonly", (1, 1, 1), group="set", since="2.8.0",
         summary="Incrementally iterate Set elements", tips="nondeterministic_output")
def sscan(ctx, argv):
    cursor = parse_cursor(argv[2])
    key = argv[1]
    value = _read(ctx, key)
    if value is None:
        return [b"0", []]
    cursor, members, match = step_container(ctx, argv, cursor, value, value.hashtable)
    found = [member for member in members
             if member in value and (match is None or match(member))]
    return [b"%d" % cursor, found]
