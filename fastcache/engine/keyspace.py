"""A shard's share of every database: values, expiries, access times, stats.

Values are plain Python objects: bytes for strings; the data-type modules
add their own containers. Expiries are absolute Unix times in milliseconds.
"""
import time

from fastcache.engine.errors import CommandError, WRONGTYPE
from fastcache.engine.notify import EXPIRED, NEW


def now_ms():
    return int(time.time() * 1000)


class Db:
    __slots__ = ("id", "data", "expires", "atime", "sweep")

    def __init__(self, index):
        self.id = index
        self.data = {}
        self.expires = {}
        # Last access in seconds, for OBJECT IDLETIME; a missing entry means
        # "not touched since it was written" and falls back to its write time.
        self.atime = {}
        self.sweep = None  # active-expiry position: [snapshot of volatile keys, index]


class Keyspace:
    """Every database of one shard plus the counters INFO reports."""

    def __init__(self, databases=16):
        self.dbs = [Db(i) for i in range(databases)]
        self.hits = 0
        self.misses = 0
        self.expired_keys = 0
        self.dirty = 0  # changes since the last save
        self.clock = int(time.time())  # coarse seconds clock, refreshed by the worker
        # WATCHed keys: (db id, key) -> [version, watchers]. A change to a
        # watched key bumps its version; EXEC compares versions.
        self.watched = {}
        # Keyspace notifications: the enabled classes, and where events go.
        self.notify_flags = 0
        self.publish_event = None  # fn(event, db id, key), set by the server
        # Mutation records (engine/records.Journal) while something keeps them.
        self.journal = None
        # On a replica: how far this shard applied each primary shard (persistence/marks.py).
        self.repl_marks = None

    # -- reads -------------------------------------------------------------

    def get(self, db, key):
        """The live value of key or None, counting a hit or a miss."""
        value = db.data.get(key)
        if value is None:
            self.misses += 1
            return None
        if db.expires and key in db.expires and db.expires[key] <= now_ms():
            self.expire_key(db, key)
            self.misses += 1
            return None
        self.hits += 1
        db.atime[key] = self.clock
        return value

    def get_typed(self, db, key, kind):
        """Like get, but raise WRONGTYPE unless the value is an instance of kind."""
        value = self.get(db, key)
        if value is not None and type(value) is not kind:
            raise CommandError(WRONGTYPE)
        return value

    def peek(self, db, key):
        """The live value without touching stats or access time (writes use this)."""
        value = db.data.get(key)
        if value is not None and db.expires and key in db.expires and db.expires[key] <= now_ms():
            self.expire_key(db, key)
            return None
        return value

    def get_for_write(self, db, key, kind):
        """The live value of key for a write, or None: WRONGTYPE unless it is a
        kind, no hit/miss stats, access time refreshed (Redis's lookupKeyWrite)."""
        value = self.peek(db, key)
        if value is not None:
            if type(value) is not kind:
                raise CommandError(WRONGTYPE)
            db.atime[key] = self.clock
        return value

    def exists(self, db, key):
        return self.peek(db, key) is not None

    # -- writes ------------------------------------------------------------

    def set(self, db, key, value, expire_at=None, keepttl=False):
        """Store value; a write without keepttl clears any old TTL."""
        if self.notify_flags and self.peek(db, key) is None:
            # Redis's dbAdd: every key creation is a "new" event (an expired
            # leftover goes first, with its "expired" event).
            self.notify(NEW, "new", db, key)
        db.data[key] = value
        if expire_at is not None:
            db.expires[key] = expire_at
        elif not keepttl and db.expires:
            db.expires.pop(key, None)
        db.atime[key] = self.clock
        self.dirty += 1

    def delete(self, db, key):
        """Remove key if present; True if it was there (and live)."""
        if self.peek(db, key) is None:
            return False
        self._remove(db, key)
        self.dirty += 1
        return True

    def _remove(self, db, key):
        del db.data[key]
        db.expires.pop(key, None)
        db.atime.pop(key, None)

    def notify(self, cls, event, db, key):
        """A key changed: event (e.g. "set") of class cls (notify.STRING, ...)."""
        if self.notify_flags & cls and self.publish_event is not None:
            self.publish_event(event, db.id, key)

    def expire_key(self, db, key):
        self._remove(db, key)
        self.expired_keys += 1
        if self.journal is not None:
            self.journal.log(db.id, [b"DEL", key])
        if self.notify_flags:
            self.notify(EXPIRED, "expired", db, key)
        if self.watched:
            self.touch(db.id, key)

    # -- WATCH ---------------------------------------------------------------

    def watch(self, dbid, key):
        """Register a watcher of key; the version EXEC must still see."""
        self.peek(self.dbs[dbid], key)  # an already expired key goes first
        entry = self.watched.get((dbid, key))
        if entry is None:
            entry = self.watched[(dbid, key)] = [0, 0]
        entry[1] += 1
        return entry[0]

    def unwatch(self, dbid, key):
        entry = self.watched.get((dbid, key))
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self.watched[(dbid, key)]

    def touch(self, dbid, key):
        entry = self.watched.get((dbid, key))
        if entry is not None:
            entry[0] += 1

    def existing_watched(self, dbids):
        """Watched keys of dbids that exist in any of them (what a flush or swap changes)."""
        return [(dbid, key) for dbid, key in self.watched
                if dbid in dbids and any(key in self.dbs[d].data for d in dbids)]

    def watches_intact(self, entries):
        """True unless a watched key changed (or expired) since its version was taken."""
        for dbid, key, version in entries:
            self.peek(self.dbs[dbid], key)
            entry = self.watched.get((dbid, key))
            if entry is None or entry[0] != version:
                return False
        return True

    def ttl_ms(self, db, key):
        """Remaining ms, -1 without TTL, -2 for a missing key."""
        if self.peek(db, key) is None:
            return -2
        at = db.expires.get(key)
        if at is None:
            return -1
        return max(at - now_ms(), 0)

    def flush(self, db):
        n = len(db.data)
        db.data = {}
        db.expires = {}
        db.atime = {}
        self.dirty += n
        return n

    def flushall(self):
        for db in self.dbs:
            self.flush(db)

    def swap(self, a, b):
        da, db_ = self.dbs[a], self.dbs[b]
        da.data, db_.data = db_.data, da.data
        da.expires, db_.expires = db_.expires, da.expires
        da.atime, db_.atime = db_.atime, da.atime
        self.dirty += 1

    # -- active expiry -----------------------------------------------------

    def active_expire(self, budget_s=0.025, sample=20):
        """Redis-style adaptive cycle: sample volatile keys, drop the expired
        ones, and keep going while more than a quarter of a sample had expired
        and the time budget lasts. Walks a snapshot of each db's volatile keys
        so successive cycles cover all of them."""
        deadline = time.monotonic() + budget_s
        removed = 0
        for db in self.dbs:
            if not db.expires:
                continue
            cursor = db.sweep
            while time.monotonic() < deadline:
                if cursor is None or cursor[1] >= len(cursor[0]):
                    cursor = [list(db.expires), 0]
                keys, pos = cursor
                batch = keys[pos:pos + sample]
                cursor[1] = pos + sample
                now = now_ms()
                hit = 0
                for key in batch:
                    at = db.expires.get(key)
                    if at is not None and at <= now:
                        self.expire_key(db, key)
                        hit += 1
                removed += hit
                if hit * 4 <= len(batch):
                    break
            db.sweep = cursor
        return removed
