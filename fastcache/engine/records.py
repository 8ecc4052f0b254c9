"""Mutation records: every change to a shard's data, in deterministic form.

A record is (db, argv). Replaying a shard's records in order through the apply
path rebuilds its data exactly, so the WAL and replication both carry them.

- A write command whose run changed something (ks.dirty moved) is recorded as
  its own argv, unless REWRITES gives a deterministic form: relative TTLs become
  absolute, INCRBYFLOAT becomes SET ... KEEPTTL, SPOP becomes SREM, and so on.
- A command that changed nothing records nothing.
- Expiry (lazy or active) records DEL before the command that noticed it.
- Paths that change data without a write command (blocked pops served later,
  cross-shard stores, DEBUG POPULATE) call Journal.log themselves.

The engine only collects records; the server hands them to the WAL (and to
replicas) before any reply that depends on them leaves.
"""

PUT = b"FC.PUT"   # a whole value: [PUT, key, codec bytes, expire-at ms or b""]


class Journal:
    """A shard's records not yet handed on, and their sequence numbers.

    ``entries`` holds argv lists, with an int (a db number) wherever the db
    changes, so the native fast path can append argvs without building tuples.
    Only use_db and log append those ints, so they count them: the records
    are the other entries.
    """

    __slots__ = ("seq", "entries", "db", "switches", "generation")

    def __init__(self, seq=0):
        self.seq = seq        # the sequence of the last record taken
        self.entries = []
        self.db = -1
        self.switches = 0     # ints in entries
        self.generation = 0   # counts takes: output can say which records it follows

    @property
    def pending(self):
        """Records logged and not taken yet (db switches alone are none)."""
        return len(self.entries) - self.switches

    def use_db(self, dbid):
        if dbid != self.db:
            self.entries.append(dbid)
            self.db = dbid
            self.switches += 1

    def log(self, dbid, argv):
        if dbid != self.db:
            self.entries.append(dbid)
            self.db = dbid
            self.switches += 1
        self.entries.append(argv)

    def take_entries(self):
        """(first seq, entries) of the pending records, as logged (the records are
        numbered from first seq on); clears them."""
        entries = self.entries
        first = self.seq + 1
        self.seq += self.pending
        self.entries = []
        self.db = -1
        self.switches = 0
        self.generation += 1
        return first, entries

    def take(self):
        """[(seq, db, argv)] of the pending records, numbered; clears them."""
        return numbered(*self.take_entries())


def numbered(first, entries):
    """[(seq, db, argv)] of journal entries whose records start at seq first."""
    out = []
    seq = first - 1
    dbid = 0
    for item in entries:
        if type(item) is int:
            dbid = item
        else:
            seq += 1
            out.append((seq, dbid, item))
    return out


def record_command(journal, ks, db, cmd, argv, reply):
    """The records of a write command that changed db's data."""
    rewrite = REWRITES.get(cmd.name)
    if rewrite is None:
        journal.log(db.id, argv)
    else:
        for out in rewrite(ks, db, argv, reply):
            journal.log(db.id, out)


def _expiry_of(db, key):
    """PEXPIREAT or PERSIST for key's TTL now, or DEL once it is gone."""
    if key not in db.data:
        return [b"DEL", key]
    at = db.expires.get(key)
    return [b"PEXPIREAT", key, b"%d" % at] if at is not None else [b"PERSIST", key]


def _set_value(ks, db, argv, reply):
    key = argv[1]
    if key not in db.data:   # set with a deadline already past
        return [[b"DEL", key]]
    at = db.expires.get(key)
    value = db.data[key]
    if at is None:
        return [[b"SET", key, value]]
    return [[b"SET", key, value, b"PXAT", b"%d" % at]]


def _ttl_change(ks, db, argv, reply):
    return [_expiry_of(db, argv[1])]


def _incrbyfloat(ks, db, argv, reply):
    return [[b"SET", argv[1], reply, b"KEEPTTL"]]


def _hincrbyfloat(ks, db, argv, reply):
    return [[b"HSET", argv[1], argv[2], reply]]


def _spop(ks, db, argv, reply):
    members = [reply] if type(reply) is bytes else list(reply)   # one member, or an array/set
    return [[b"SREM", argv[1]] + members]


REWRITES = {
    "set": _set_value,
    "setex": _set_value,
    "psetex": _set_value,
    "getex": _ttl_change,
    "expire": _ttl_change,
    "pexpire": _ttl_change,
    "expireat": _ttl_change,
    "pexpireat": _ttl_change,
    "incrbyfloat": _incrbyfloat,
    "hincrbyfloat": _hincrbyfloat,
    "spop": _spop,
}
