"""The hot path: parsed commands -> executed -> encoded replies, without the command table.

    next_index, executed, forwarded = run_batch(commands, start, out, db, ks, proto,
                                                owners, shard, fwd=None, log=None)

runs consecutive commands from commands[start] (argv lists of bytes, as the request parser
returns them) straight on db's dicts, appends each encoded reply (bytes) to the list out, and
stops at the first command it does not fully handle, before touching anything for it. The
caller runs commands[next_index] through the normal path (dispatch + encoder), which produces
the error or the option handling, then calls run_batch again from next_index + 1.

Handled shapes (names in any case; any other command or argument count stops):

- strings: GET k, SET k v, INCR/DECR k, INCRBY/DECRBY k n, MGET k..., MSET k v..., EXISTS k,
  DEL k, and PING, ECHO x;
- lists: LPUSH/RPUSH k e..., LPOP/RPOP k (no count), LLEN k, LRANGE k start stop;
- sets: SADD k m..., SCARD k, SISMEMBER k m, SPOP k (no count);
- hashes: HSET k f v [f v ...], HGET k f;
- sorted sets: ZADD k score m [score m ...] (no options), ZINCRBY k incr m, ZSCORE k m,
  ZCARD k.

Where the keys live decides next, from ``owners`` (the worker's 16384-byte slot table, or None
when every key is local):

- all local (or no keys): executed on the happy path; anything else stops: WRONGTYPE, a
  stored value or an INCRBY/DECRBY/LRANGE argument that is not a canonical int64, overflow,
  a ZADD/ZINCRBY score that is not a plain decimal (zset_type._PLAIN: options, inf, hex,
  blanks... are parse_score's to read) or that parse_score refuses (out of range), a
  ZINCRBY whose sum is NaN, and a reply element that is not bytes (a popped or ranged list
  element, a hash field's value, a popped set member; the families never store one) or a
  score that is not a float. SPOP draws its member first (below), so such a stop comes
  after the draw.
- all on one other shard s: with ``fwd`` (a list holding one list per shard) the command is
  not executed nor checked further: its argv (the same list object) is appended to fwd[s]
  and the int s to out, in its reply's place; forwarded counts these. Without fwd it stops.
- spread over several shards (MGET, MSET): stops; the caller splits it.

executed counts the commands run here, so next_index - start == executed + forwarded.

Replies, dicts (insertion order included), containers and the Keyspace counters end up
exactly as the Python handlers and the encoder would leave them for the same commands: lazy
expiry removes expired keys and counts them, reads count hits and misses and store ks.clock
in db.atime like Keyspace.get, EXISTS/DEL/INCR look up like Keyspace.peek, the container
writes like Keyspace.get_for_write, writes add to ks.dirty what their handlers add. New keys
get the families' own containers (lists.List, sets.Set, hashes.Hash, zset_type.ZSet,
created as their _create does); a Set's or a Hash's `hashtable` flag and a ZSet's `big` flag
turn on at the same thresholds (sets.MAX_INTSET_ENTRIES, hashes.MAX_LISTPACK_ENTRIES /
MAX_LISTPACK_VALUE, zset_type.LISTPACK_ENTRIES / LISTPACK_VALUE, read once), a listpack
ZSet stores -0 as 0 like ZSet.insert/rescore, an emptied list's or set's key goes.

Containers are changed through their own methods in the Python twin and mirrored field for
field in the C one: a Set's random-pick index (_pool and _gone: SADD appends a new member to
a built pool, or revives its stale entry; SPOP builds the pool for a set over
sets.SMALL_SET members, or rebuilds one out of step, drops the stale entries its draws land
on and moves the last entry into the popped member's place) and a ZSet's SortedList (_lists,
_maxes, _index, _len) end up identical; the C one leaves ZADD and ZINCRBY to Python (it
stops) under a sortedcontainers release other than the one it mirrors (2.4.0). The C one
also keeps a copy of each sublist's scores in the ZSet's `native` slot, to bisect without
visiting the pairs; it checks each answer on the pairs, so the twin needs none. SPOP picks
like Set.pop_random (Set.draw, then Set.take): random.choice over the members (the pool, or
the set's iteration order for a small set without one), drawing through
random.getrandbits of the random module's shared generator, so both twins and the normal
path pop the same member from the same state and a seeded run can be compared exactly.

With ``log`` (a list), every executed command that changed data appends its mutation record
(engine/records.py): its own argv list, or for SPOP [b"SREM", key, member]; a key found
expired on the way appends [b"DEL", key] first.

Counters are added to ks once per call. "Now" is read once per call, at the first key with a
TTL. The caller does what the command table would (statistics, MULTI queueing, pub/sub mode,
authentication): run_batch is for a plain connection in its normal state. It sends no
keyspace events and bumps no WATCH versions, and a push does not serve clients blocked on
its key: the caller uses it only while notifications are off, no key is watched and no
client of this shard is blocked.

run_batch is the fastest implementation available: the C one from fastcache._native when it
is built, else py_run_batch. Both are exported so tests can run each; they agree on every
input within the contract above (the C one also refuses anything else without crashing).
"""
from fastcache.engine.args import INT64_MAX, INT64_MIN
from fastcache.engine.errors import CommandError
from fastcache.engine.hashes import MAX_LISTPACK_ENTRIES, Hash
from fastcache.engine.hashes import _outgrows_listpack as outgrows_listpack
from fastcache.engine.keyspace import now_ms
from fastcache.engine.lists import List
from fastcache.engine.lists import _slice as slice_of, _span as span_of
from fastcache.engine.sets import Set
from fastcache.engine.zset_type import ZSet, parse_score
from fastcache.engine.zset_type import _PLAIN as plain_decimal
from fastcache.protocol.encoder import NULL2, NULL3, format_double
from fastcache.protocol.parser import string2ll
from fastcache.engine.slots import key_slot

_OK = b"+OK\r\n"
_PONG = b"+PONG\r\n"
_ZERO = b":0\r\n"
_ONE = b":1\r\n"
_EMPTY = b"*0\r\n"

# The keyed commands come first (op <= MSET), the one-key ones first among them
# (op <= ZCARD), the string ones that look their key up first among those (op <= DECRBY),
# then SET, then the container ones, list writes (op <= RPOP) first.
(GET, EXISTS, DEL, INCR, DECR, INCRBY, DECRBY, SET,
 LPUSH, RPUSH, LPOP, RPOP, LLEN, LRANGE, SADD, SCARD, SISMEMBER, HSET, HGET,
 SPOP, ZADD, ZINCRBY, ZSCORE, ZCARD,
 MGET, MSET, PING, ECHO) = range(28)
# argc, or at least -arity when negative (MSET, HSET and ZADD also need whole pairs)
_ARITY = (2, 2, 2, 2, 2, 3, 3, 3,
          -3, -3, 2, 2, 2, 4, -3, 2, 3, -4, 3,
          2, -4, 4, 3, 2,
          -2, -3, 1, 2)
# the container type each container command works on, and how a write makes a new one
# (as the family's _create does)
_KIND = {op: List for op in range(LPUSH, LRANGE + 1)}
_KIND.update({SADD: Set, SCARD: Set, SISMEMBER: Set, SPOP: Set, HSET: Hash, HGET: Hash,
              ZADD: ZSet, ZINCRBY: ZSet, ZSCORE: ZSet, ZCARD: ZSet})
_NEW = {LPUSH: List, RPUSH: List, SADD: lambda: Set(hashtable=False), HSET: Hash, ZADD: ZSet,
        ZINCRBY: ZSet}
_NAMES = {b"get": GET, b"set": SET, b"incr": INCR, b"decr": DECR, b"incrby": INCRBY,
          b"decrby": DECRBY, b"mget": MGET, b"mset": MSET, b"exists": EXISTS, b"del": DEL,
          b"ping": PING, b"echo": ECHO, b"lpush": LPUSH, b"rpush": RPUSH, b"lpop": LPOP,
          b"rpop": RPOP, b"llen": LLEN, b"lrange": LRANGE, b"sadd": SADD, b"scard": SCARD,
          b"sismember": SISMEMBER, b"hset": HSET, b"hget": HGET, b"spop": SPOP,
          b"zadd": ZADD, b"zincrby": ZINCRBY, b"zscore": ZSCORE, b"zcard": ZCARD}
# Both usual spellings resolve in one lookup; mixed case goes through lower().
_OPS = {**_NAMES, **{name.upper(): op for name, op in _NAMES.items()}}


def _bulk(value):
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _int(value):
    return _ONE if value == 1 else _ZERO if value == 0 else b":%d\r\n" % value


def _double(value, proto):
    text = format_double(value)
    return b",%s\r\n" % text if proto == 3 else _bulk(text)


def _score(raw):
    """parse_score's value of raw if it is a plain decimal, else None (also for an error)."""
    if plain_decimal.fullmatch(raw) is None:
        return None
    try:
        return parse_score(raw)
    except CommandError:
        return None


def _scores(argv):
    """ZADD's scores, or None unless each is a plain decimal that parse_score takes."""
    scores = []
    for j in range(2, len(argv), 2):
        score = _score(argv[j])
        if score is None:
            return None
        scores.append(score)
    return scores


def _set_score(zs, member, score, old):
    """Give member score in zs, its score being old (None if new) like zsets._zadd; 1 if
    that changed anything, else 0."""
    if old is None:
        zs.insert(member, score)
        return 1
    if score != old:
        zs.rescore(member, old, score)
        return 1
    return 0


def _owner(owners, keys):
    """The shard that owns every key, or None when they are spread."""
    owner = owners[key_slot(keys[0])]
    for key in keys[1:]:
        if owners[key_slot(key)] != owner:
            return None
    return owner


def py_run_batch(commands, start, out, db, ks, proto, owners, shard, fwd=None, log=None):
    """The pure-Python run_batch; see the module docstring."""
    data, expires, atime = db.data, db.expires, db.atime
    clock = ks.clock
    null = NULL3 if proto == 3 else NULL2
    append = out.append
    hits = misses = dirty = forwarded = 0
    now = None
    expired = 0

    def live(key, value):
        """value unless key has expired, in which case it is removed (Keyspace.peek)."""
        nonlocal now, expired
        at = expires.get(key)
        if at is None:
            return value
        if now is None:
            now = now_ms()
        if at > now:
            return value
        del data[key]
        del expires[key]
        atime.pop(key, None)
        expired += 1
        if log is not None:
            log.append([b"DEL", key])
        return None

    def for_write(key, value, op):
        """value, the live container at key, with its access time refreshed, or a new one
        for op stored at key like Keyspace.set (counting no change)."""
        if value is not None:
            atime[key] = clock
            return value
        value = data[key] = _NEW[op]()
        if expires:
            expires.pop(key, None)
        atime[key] = clock
        return value

    def remove(key):
        """Drop an emptied container's key like Keyspace._remove."""
        del data[key]
        expires.pop(key, None)
        atime.pop(key, None)

    n = len(commands)
    i = start
    while i < n:
        argv = commands[i]
        dirty_before = dirty
        op = _OPS.get(argv[0])
        if op is None:
            op = _OPS.get(argv[0].lower())
            if op is None:
                break
        argc = len(argv)
        arity = _ARITY[op]
        if arity > 0:
            if argc != arity:
                break
        elif argc < -arity or op == MSET and not argc & 1 or op in (HSET, ZADD) and argc & 1:
            break
        if owners is not None and op <= MSET:
            if op <= ZCARD:
                owner = owners[key_slot(argv[1])]
            else:
                owner = _owner(owners, argv[1:] if op == MGET else argv[1::2])
            if owner != shard:
                if owner is None or fwd is None:
                    break
                fwd[owner].append(argv)
                append(owner)
                forwarded += 1
                i += 1
                continue
        if op <= DECRBY:
            if op >= INCRBY:
                # checked before the lookup, which may expire the key
                delta = string2ll(argv[2])
                if delta is None:
                    break
                if op == DECRBY:
                    if delta == INT64_MIN:
                        break
                    delta = -delta
            key = argv[1]
            value = data.get(key)
            if value is not None and expires:
                value = live(key, value)
            if op == GET:
                if value is None:
                    misses += 1
                    append(null)
                elif type(value) is bytes:
                    hits += 1
                    atime[key] = clock
                    append(b"$%d\r\n%s\r\n" % (len(value), value))
                else:
                    break       # WRONGTYPE
            elif op == EXISTS:
                if value is None:
                    misses += 1
                    append(_ZERO)
                else:
                    hits += 1
                    append(_ONE)
            elif op == DEL:
                if value is None:
                    append(_ZERO)
                else:
                    del data[key]
                    if expires:
                        expires.pop(key, None)
                    atime.pop(key, None)
                    dirty += 1
                    append(_ONE)
            else:
                if op <= DECR:
                    delta = 1 if op == INCR else -1
                if value is not None:
                    if type(value) is not bytes:
                        break
                    value = string2ll(value)
                    if value is None:
                        break
                    delta += value
                    if not INT64_MIN <= delta <= INT64_MAX:
                        break
                data[key] = b"%d" % delta
                atime[key] = clock
                dirty += 1
                append(_int(delta))
        elif op == SET:
            key = argv[1]
            data[key] = argv[2]
            if expires:
                expires.pop(key, None)
            atime[key] = clock
            dirty += 1
            append(_OK)
        elif op <= ZCARD:
            key = argv[1]
            # arguments are parsed before the lookup, which may expire the key
            if op == LRANGE:
                first, last = string2ll(argv[2]), string2ll(argv[3])
                if first is None or last is None:
                    break
            elif op == ZADD:
                scores = _scores(argv)
                if scores is None:
                    break
            elif op == ZINCRBY:
                score = _score(argv[2])
                if score is None:
                    break
            value = data.get(key)
            if value is not None:
                if expires:
                    value = live(key, value)
                if value is not None and type(value) is not _KIND[op]:
                    break       # WRONGTYPE
            if op <= RPUSH:
                value = for_write(key, value, op)
                if argc == 3:
                    (value.appendleft if op == LPUSH else value.append)(argv[2])
                else:
                    (value.extendleft if op == LPUSH else value.extend)(argv[2:])
                dirty += argc - 2
                append(_int(len(value)))
            elif op <= RPOP or op == SPOP:
                if value is None:
                    append(null)
                else:
                    if not value:
                        break       # never stored empty
                    if op == SPOP:
                        item, at = value.draw()
                    else:
                        item = value[0 if op == LPOP else -1]
                    if type(item) is not bytes:
                        break
                    atime[key] = clock
                    if op == SPOP:
                        value.take(item, at)
                    elif op == LPOP:
                        value.popleft()
                    else:
                        value.pop()
                    dirty += 1
                    if not value:   # Redis drops an emptied list or set
                        remove(key)
                    append(_bulk(item))
                    if op == SPOP and log is not None:
                        log.append([b"SREM", key, item])
                        dirty_before = dirty    # recorded already
            elif op == SADD:
                value = for_write(key, value, op)
                added = value.add_members(argv[2:])
                dirty += added
                append(_int(added))
            elif op == ZADD:
                value = for_write(key, value, op)
                added = 0
                get = value.get
                for score, member in zip(scores, argv[3::2]):
                    old = get(member)
                    added += old is None
                    dirty += _set_score(value, member, score, old)
                append(_int(added))
            elif op == ZINCRBY:
                member = argv[3]
                old = None if value is None else value.get(member)
                if old is not None:
                    if type(old) is not float:
                        break
                    score += old
                    if score != score:
                        break   # NaN: the error is the normal path's
                value = for_write(key, value, op)
                dirty += _set_score(value, member, score, old)
                append(_double(score, proto))
            elif op == HSET:
                value = for_write(key, value, op)
                if not value.hashtable and outgrows_listpack(argv[2:]):
                    value.hashtable = True
                before = len(value)
                for j in range(2, argc, 2):
                    value[argv[j]] = argv[j + 1]
                if len(value) > MAX_LISTPACK_ENTRIES:
                    value.hashtable = True
                dirty += (argc - 2) >> 1
                append(_int(len(value) - before))
            elif value is None:             # the reads of a missing key
                misses += 1
                append(_EMPTY if op == LRANGE else null if op in (HGET, ZSCORE) else _ZERO)
            else:
                if op == LRANGE:
                    span = span_of(first, last, len(value))
                    items = [] if span is None else slice_of(value, *span)
                    if any(type(item) is not bytes for item in items):
                        break
                    reply = b"".join([b"*%d\r\n" % len(items)] + [_bulk(v) for v in items])
                elif op == HGET:
                    field = value.get(argv[2])
                    if field is not None and type(field) is not bytes:
                        break
                    reply = null if field is None else _bulk(field)
                elif op == SISMEMBER:
                    reply = _ONE if argv[2] in value else _ZERO
                elif op == ZSCORE:
                    score = value.get(argv[2])
                    if score is not None and type(score) is not float:
                        break
                    reply = null if score is None else _double(score, proto)
                else:                       # LLEN, SCARD, ZCARD
                    reply = _int(len(value))
                hits += 1
                atime[key] = clock
                append(reply)
        elif op == MGET:
            keys = argv[1:]
            parts = [b"*%d\r\n" % len(keys)]
            for key in keys:
                value = data.get(key)
                if value is not None and expires:
                    value = live(key, value)
                if value is None:
                    misses += 1
                    parts.append(null)
                else:
                    hits += 1
                    atime[key] = clock
                    parts.append(_bulk(value) if type(value) is bytes else null)
            append(b"".join(parts))
        elif op == MSET:
            for j in range(1, argc, 2):
                key = argv[j]
                data[key] = argv[j + 1]
                if expires:
                    expires.pop(key, None)
                atime[key] = clock
            dirty += argc >> 1
            append(_OK)
        elif op == PING:
            append(_PONG)
        else:       # ECHO
            append(_bulk(argv[1]))
        if log is not None and dirty != dirty_before:
            log.append(argv)
        i += 1
    if hits:
        ks.hits += hits
    if misses:
        ks.misses += misses
    if dirty:
        ks.dirty += dirty
    if expired:
        ks.expired_keys += expired
    return i, i - start - forwarded if i > start else 0, forwarded


try:
    from fastcache._native import run_batch as native_run_batch
except ImportError:         # no compiler at install time: the pure-Python twin serves
    native_run_batch = None

run_batch = native_run_batch or py_run_batch
