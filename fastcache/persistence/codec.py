"""Values <-> bytes, for the WAL's "store this value" records and for snapshots.

On-disk format (version 1). Every value becomes a tree of plain builtins,
pickled with protocol 5, so loading never needs a class: the unpickler here
refuses every global, and a crafted file cannot make it run code.

A value's plain form:

    string   the bytes themselves
    list     (1, [element, ...])                      head to tail
    set      (2, [member, ...], hashtable)            hashtable: bool, else intset
    hash     (3, {field: value, ...}, hashtable)      insertion order kept; else listpack
    zset     (4, [member, ...], [score, ...], big)    insertion order (ZSCAN's); big: skiplist,
                                                      else listpack

The flags carry the encoding OBJECT ENCODING reports, since Redis never
converts a value back to its compact encoding and neither do the types here.

A database travels as a run of chunks, each a tuple

    (db id, {key: string bytes}, {key: container plain form}, {key: expire-at ms})

where any of the three dicts may be empty. Strings get their own dict so a
shard full of strings pickles and unpickles at C speed; only containers are
converted one by one. Expiries are absolute Unix times in milliseconds and
may arrive in a later chunk than their keys.
"""
import io
import pickle
from itertools import islice

from sortedcontainers import SortedList

from fastcache.engine.hashes import Hash
from fastcache.engine.lists import List
from fastcache.engine.sets import Set
from fastcache.engine.zset_type import ZSet

PROTOCOL = 5
# Keys per chunk; for containers the budget counts their elements, so a
# chunk stays a few MB however the data is shaped.
CHUNK_KEYS = 65536

LIST, SET, HASH, ZSET = 1, 2, 3, 4


class _PlainUnpickler(pickle.Unpickler):
    """Loads builtins only: every lookup of a class or function is refused."""

    def find_class(self, module, name):
        raise ValueError("refusing to load %s.%s: encoded values hold plain builtins only"
                         % (module, name))


def pack(plain):
    """Pickle a plain structure."""
    return pickle.dumps(plain, PROTOCOL)


def unpack(data):
    """The plain structure pickled in data; ValueError for anything else."""
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except ValueError:
        raise
    except Exception as exc:  # truncated or garbled input fails in many ways
        raise ValueError("not an encoded value: %s" % exc) from None


# -- one value ------------------------------------------------------------------

def _encode_list(value):
    return (LIST, list(value))


def _encode_set(value):
    return (SET, list(value), value.hashtable)


def _encode_hash(value):
    return (HASH, dict(value), value.hashtable)


def _encode_zset(value):
    return (ZSET, list(value), list(value.values()), value.big)


_ENCODERS = {List: _encode_list, Set: _encode_set, Hash: _encode_hash, ZSet: _encode_zset}


def encode_value(value):
    """The plain form of a keyspace value."""
    if type(value) is bytes:
        return value
    encoder = _ENCODERS.get(type(value))
    if encoder is None:
        raise TypeError("cannot encode a value of type %s" % type(value).__name__)
    return encoder(value)


def _check(ok, tag):
    if not ok:
        raise ValueError("malformed value with tag %d" % tag)


def _decode_list(items):
    _check(type(items) is list, LIST)
    return List(items)


def _decode_set(members, hashtable):
    _check(type(members) is list and type(hashtable) is bool, SET)
    return Set(members, hashtable)


def _decode_hash(fields, hashtable):
    _check(type(fields) is dict and type(hashtable) is bool, HASH)
    value = Hash(fields)
    value.hashtable = hashtable
    return value


def _decode_zset(members, scores, big):
    _check(type(members) is list and type(scores) is list and type(big) is bool
           and len(members) == len(scores), ZSET)
    value = ZSet()
    dict.update(value, zip(members, scores))
    _check(len(value) == len(members), ZSET)  # no repeated member
    value.order = SortedList(zip(scores, members))
    value.big = big
    return value


_DECODERS = {LIST: _decode_list, SET: _decode_set, HASH: _decode_hash, ZSET: _decode_zset}


def decode_value(plain):
    """The keyspace value of a plain form; ValueError if it is not one."""
    if type(plain) is bytes:
        return plain
    if type(plain) is not tuple or not plain:
        raise ValueError("not an encoded value: %s" % type(plain).__name__)
    decoder = _DECODERS.get(plain[0])
    if decoder is None:
        raise ValueError("unknown value tag %r" % (plain[0],))
    try:
        return decoder(*plain[1:])
    except TypeError:  # a field too many or too few
        raise ValueError("malformed value with tag %d" % plain[0]) from None


def dump_value(value):
    """One value as bytes."""
    return pack(encode_value(value))


def load_value(data):
    """The value dump_value encoded; ValueError for anything else."""
    return decode_value(unpack(data))


# -- whole databases --------------------------------------------------------------

def db_chunks(db, now, chunk_keys=None):
    """Yield db's live keys (expiry after now) as chunks (see the module doc)
    of at most chunk_keys (default CHUNK_KEYS) keys each."""
    data, expires = db.data, db.expires
    if not data:
        return
    chunk_keys = chunk_keys or CHUNK_KEYS
    dbid = db.id
    live = {key: at for key, at in expires.items() if at > now and key in data}
    dead = expires.keys() - live.keys() if len(live) != len(expires) else ()
    if set(map(type, data.values())) == {bytes}:
        # Only strings: slice the dict at C speed.
        if dead:
            data = dict(data)
            for key in dead:
                data.pop(key, None)
        items = iter(data.items())
        strings = dict(islice(items, chunk_keys))
        while strings:
            yield (dbid, strings, {}, {})
            strings = dict(islice(items, chunk_keys))
    else:
        yield from _mixed_chunks(dbid, data, dead, chunk_keys)
    items = iter(live.items())
    expiries = dict(islice(items, chunk_keys))
    while expiries:
        yield (dbid, {}, {}, expiries)
        expiries = dict(islice(items, chunk_keys))


def _mixed_chunks(dbid, data, dead, chunk_keys):
    strings, containers, weight = {}, {}, 0
    for key, value in data.items():
        if key in dead:
            continue
        if type(value) is bytes:
            strings[key] = value
            if len(strings) >= chunk_keys:
                yield (dbid, strings, {}, {})
                strings = {}
        else:
            containers[key] = encode_value(value)
            weight += len(value) + 1
            if weight >= chunk_keys:
                yield (dbid, {}, containers, {})
                containers, weight = {}, 0
    if strings or containers:
        yield (dbid, strings, containers, {})


def chunk_db(chunk):
    """The db id a chunk names, after checking the chunk's shape."""
    if (type(chunk) is not tuple or len(chunk) != 4 or type(chunk[0]) is not int
            or any(type(part) is not dict for part in chunk[1:])):
        raise ValueError("malformed database chunk")
    return chunk[0]


def load_chunk(chunk, db):
    """Add a chunk's keys and expiries to db (call chunk_db first)."""
    _, strings, containers, expires = chunk
    data = db.data
    if strings:
        data.update(strings)
    for key, plain in containers.items():
        data[key] = decode_value(plain)
    if expires:
        db.expires.update(expires)


def drop_expired(db, now):
    """Remove the keys whose expiry is not after now (and any expiry without a key)."""
    data, expires = db.data, db.expires
    for key in [key for key, at in expires.items() if at <= now or key not in data]:
        del expires[key]
        data.pop(key, None)


def dump_db(db, now):
    """db's live keys as a list of chunks."""
    return list(db_chunks(db, now))


def load_db(chunks, db, now):
    """Fill db from chunks made by dump_db, skipping keys expired by now."""
    for chunk in chunks:
        if chunk_db(chunk) != db.id:
            raise ValueError("chunk of db %d loaded into db %d" % (chunk[0], db.id))
        load_chunk(chunk, db)
    drop_expired(db, now)
