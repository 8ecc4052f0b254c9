"""The one path that replays mutation records into a keyspace.

Recovery replays the WAL through it, and replicas apply the primary's records
through it. Records are already deterministic (engine/records.py), so they run
through the ordinary handlers, silently: no keyspace events, no rewriting.
A replica's WAL also holds its marks (persistence/marks.py): a wrapped record
runs its inner argv and moves the mark, so data and marks come back together.
"""
from fastcache.engine.context import Context
from fastcache.engine.errors import CommandError
from fastcache.engine.fastpath import run_batch
from fastcache.engine.records import PUT
from fastcache.persistence import marks
from fastcache.engine.registry import resolve
from fastcache.protocol.replies import Error


class RecordError(Exception):
    """A record the engine refuses: the log and the data disagree."""


class Applier:
    def __init__(self, ks):
        self.ks = ks
        self._ctx = [Context(ks, i) for i in range(len(ks.dbs))]

    def apply(self, dbid, argv):
        """Replay one record. A record that fails says the data has diverged from
        its log, so it raises rather than carrying on."""
        ks = self.ks
        self._check_db(dbid)
        if argv[0] in _MARKS:
            argv = marks.replay(ks, argv)
            if argv is None:
                return
        if argv[0] == PUT:
            put_value(ks, ks.dbs[dbid], argv)
            return
        ctx = self._ctx[dbid]
        ctx.db = ks.dbs[dbid]  # a replayed SWAPDB/FLUSHDB keeps the Db objects; be sure
        try:
            reply = resolve(argv).handler(ctx, argv)
        except CommandError as exc:
            reply = Error(exc.message)
        if type(reply) is Error:
            raise RecordError("%s: %s" % (_shown(argv), reply.message))

    def apply_all(self, records):
        """Replay [(seq, db, argv)] without keyspace events; the last seq or None.
        Runs of one db's records go through the native fast path first (what it
        handles it runs exactly as the handlers would, at C speed)."""
        ks = self.ks
        flags, ks.notify_flags = ks.notify_flags, 0
        journal, ks.journal = ks.journal, None
        last = None
        run, run_db = [], None
        try:
            for seq, dbid, argv in records:
                if dbid != run_db or len(run) >= _RUN:
                    if run:
                        self._apply_run(run_db, run)
                    run, run_db = [], dbid
                run.append(argv)
                last = seq
            if run:
                self._apply_run(run_db, run)
        finally:
            ks.notify_flags = flags
            ks.journal = journal
        return last

    def _check_db(self, dbid):
        n = len(self.ks.dbs)
        if not 0 <= dbid < n:
            raise RecordError("db %d out of range (databases is %d)" % (dbid, n))

    def _apply_run(self, dbid, argvs):
        ks = self.ks
        self._check_db(dbid)
        db = ks.dbs[dbid]
        out = []
        i, n = 0, len(argvs)
        while i < n:
            i = run_batch(argvs, i, out, db, ks, 2, None, 0)[0]
            out.clear()
            if i < n:
                self.apply(dbid, argvs[i])
                i += 1


_RUN = 4096  # records handed to the fast path at once


_MARKS = (marks.APPLIED, marks.ORIGIN)


def put_value(ks, db, argv):
    from fastcache.persistence.codec import load_value
    _, key, blob, at = argv
    ks.set(db, key, load_value(blob), int(at) if at else None)


def put_record(key, value, expire_at):
    """The record that stores value at key as it is (cross-shard commands' results)."""
    from fastcache.persistence.codec import dump_value
    return [PUT, key, dump_value(value), b"%d" % expire_at if expire_at is not None else b""]


def _shown(argv):
    text = b" ".join(argv[:4]).decode("utf-8", "replace")
    return text if len(argv) <= 4 else text + " ..."
