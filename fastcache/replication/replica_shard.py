"""What one replica shard does with its primary's stream.

Worker 0 runs the link and routes; every worker (worker 0 included) applies
the records and snapshot chunks routed to it, here:

- exactly once: record q of primary shard s runs only if q > mark[s], and
  moves the mark (persistence/marks.py has the details of how marks persist);
- through Worker.run_command, like a client's write (WATCH, statistics), with
  the READONLY refusal lifted, and journaled wrapped as [APPLIED, s, q, *argv]
  so the WAL brings back data and mark together;
- a full copy of s first removes every key this shard holds that s owns, then
  loads the chunks; the mark is void meanwhile, so a crash half way means a
  new full copy.

Keyless records (FLUSHALL, FLUSHDB, SWAPDB) come from one primary shard and
must only touch that shard's keys: they run as they are where this shard's
slots all belong to s, and are narrowed to s's keys otherwise.
"""
import time

from fastcache import log
from fastcache.engine.errors import CommandError
from fastcache.engine.fastpath import run_batch
from fastcache.engine.keyspace import now_ms
from fastcache.engine.records import PUT
from fastcache.engine.registry import resolve
from fastcache.persistence import codec
from fastcache.persistence.apply import put_record, put_value
from fastcache.persistence.marks import Marks, applied_record, origin_record
from fastcache.protocol.replies import Error
from fastcache.replication.frames import FrameError, decode_runs
from fastcache.replication.routing import Layout

_KEYLESS = frozenset((b"flushall", b"flushdb", b"swapdb"))
_ERROR_LOG_EVERY = 10.0


class ReplicaShard:
    def __init__(self, worker):
        self.worker = worker
        self.ks = worker.ks
        self.errors = 0
        self._last_error_log = 0.0
        self._layout = None

    @property
    def marks(self):
        marks = self.ks.repl_marks
        if marks is None:
            marks = self.ks.repl_marks = Marks()
        return marks

    def layout(self):
        n = self.marks.nshards
        if self._layout is None or self._layout.primary_shards != n:
            self._layout = Layout(n, self.worker.slot_owner)
        return self._layout

    def state(self):
        """The marks as plain data, or None when this shard holds none."""
        marks = self.ks.repl_marks
        return marks.state() if marks is not None else None

    def _log(self, dbid, argv):
        journal = self.ks.journal
        if journal is not None:
            journal.log(dbid, argv)

    # -- the stream's origin -----------------------------------------------------------

    def origin(self, replid, nshards):
        """Marks now count the records of this primary history; all are void."""
        self.ks.repl_marks = Marks(replid, nshards)
        self._log(0, origin_record(replid, nshards))

    def forget(self):
        """Promoted: the marks mean nothing any more."""
        if self.ks.repl_marks is not None:
            self.ks.repl_marks = None
            self._log(0, origin_record("", 0))

    # -- records -----------------------------------------------------------------------

    def apply_frame(self, shard, first, count, payload, end):
        """A whole RECORDS frame's raw payload (the primary shard maps here alone)."""
        after = max(self.marks.seqs.get(shard, -1), first - 1)
        try:
            runs = decode_runs(payload, count, first, after)
        except ValueError as exc:
            raise FrameError(str(exc)) from None
        return self._apply_runs(shard, [(range(seq, seq + len(argvs)), dbid, argvs)
                                        for seq, dbid, argvs in runs], end)

    def apply(self, shard, records, end):
        """Run records [(seq, db, argv)] of primary shard `shard` that are past
        the mark, then move the mark to end; the mark."""
        mark = self.marks.seqs.get(shard, -1)
        runs = []
        for seq, dbid, argv in records:
            if seq <= mark:
                continue
            if runs and runs[-1][1] == dbid:
                runs[-1][0].append(seq)
                runs[-1][2].append(argv)
            else:
                runs.append(([seq], dbid, [argv]))
        return self._apply_runs(shard, runs, end)

    def _apply_runs(self, shard, runs, end):
        """Run [(seqs, db, argvs)], records past the mark a db at a time, then
        move the mark to end (or the last record's, if later); the mark."""
        marks = self.marks
        mark = marks.seqs.get(shard, -1)
        worker, ks = self.worker, self.ks
        journal = ks.journal
        refusal, worker.refuse_writes = worker.refuse_writes, None
        ks.journal = None      # the run's own records are replaced by the wrapped ones
        try:
            for seqs, dbid, argvs in runs:
                self._apply_run(shard, dbid, seqs, argvs, journal)
        finally:
            ks.journal = journal
            worker.refuse_writes = refusal
        if runs:
            mark = runs[-1][0][-1]
        if end > mark:
            mark = end
            self._log(0, applied_record(shard, end))
        marks.seqs[shard] = mark
        return mark

    def _apply_run(self, shard, dbid, seqs, argvs, journal):
        """Records of one db (argvs, seqs[i] the sequence of argvs[i]): the native
        fast path where it takes them (as the worker runs a client's batch), the
        command table for the rest."""
        worker, ks = self.worker, self.ks
        fast = (worker.quiet_fast and not ks.watched and not worker.waiters.by_key
                and 0 <= dbid < len(ks.dbs))
        i, n = 0, len(argvs)
        while i < n:
            if fast:
                log = [] if journal is not None else None
                stop, executed, _ = run_batch(argvs, i, [], ks.dbs[dbid], ks, 2, None,
                                              worker.index, None, log)
                worker.stats.commands += executed
                if log:
                    self._wrap(shard, dbid, seqs, argvs, i, stop, log, journal)
                i = stop
                if i >= n:
                    break
            done = self._run(shard, dbid, argvs[i], journal)
            if journal is not None:
                journal.log(dbid, applied_record(shard, seqs[i], done))
            i += 1

    @staticmethod
    def _wrap(shard, dbid, seqs, argvs, start, stop, log, journal):
        """Journal what the fast path logged: the records it ran, wrapped with
        their sequences; anything else (an expired key's DEL) as it is."""
        by_argv = {id(argvs[k]): seqs[k] for k in range(start, stop)}
        for argv in log:
            seq = by_argv.get(id(argv))
            journal.log(dbid, argv if seq is None else applied_record(shard, seq, argv))

    def _run(self, shard, dbid, argv, journal):
        """Apply one record; the argv to journal with its mark (() when its effects
        were journaled otherwise, or it failed)."""
        worker, ks = self.worker, self.ks
        if not 0 <= dbid < len(ks.dbs):
            return self._failed(argv, "db %d out of range" % dbid)
        if argv[0] == PUT:
            put_value(ks, ks.dbs[dbid], argv)
            if ks.watched:
                ks.touch(dbid, argv[1])
            return argv
        try:
            cmd = resolve(argv)
        except CommandError as exc:
            return self._failed(argv, exc.message)
        if argv[0].lower() in _KEYLESS and not self.layout().inside(worker.index, shard):
            self._narrowed(shard, dbid, argv, journal)
            return ()
        reply = worker.run_command(worker.peer_context(dbid, 2), cmd, argv, part=True)
        if type(reply) is Error:
            return self._failed(argv, reply)
        return argv

    def _failed(self, argv, why):
        """The data disagrees with the primary's: say so (not too often), go on."""
        self.errors += 1
        now = time.monotonic()
        if now - self._last_error_log >= _ERROR_LOG_EVERY:
            self._last_error_log = now
            shown = b" ".join(argv[:3]).decode("utf-8", "replace")
            log.warning("Replica shard %d could not apply '%s': %s (%d such errors)"
                        % (self.worker.index, shown, why, self.errors))
        return ()

    def _narrowed(self, shard, dbid, argv, journal):
        """FLUSHALL / FLUSHDB / SWAPDB limited to primary shard `shard`'s keys."""
        ks = self.ks
        owned = self.layout().owns(shard)
        name = argv[0].lower()
        if name == b"swapdb":
            a, b = ks.dbs[int(argv[1])], ks.dbs[int(argv[2])]
            moving = [(db, key, db.data[key], db.expires.get(key))
                      for db in (a, b) for key in list(db.data) if owned(key)]
            for db, key, _, _ in moving:
                self._drop(db, key, journal)
            for db, key, value, at in moving:
                other = b if db is a else a
                ks.set(other, key, value, at)
                if journal is not None:
                    journal.log(other.id, put_record(key, value, at))
            return
        dbs = ks.dbs if name == b"flushall" else [ks.dbs[dbid]]
        for db in dbs:
            for key in [key for key in db.data if owned(key)]:
                self._drop(db, key, journal)

    def _drop(self, db, key, journal):
        ks = self.ks
        del db.data[key]
        db.expires.pop(key, None)
        db.atime.pop(key, None)
        ks.dirty += 1
        if ks.watched:
            ks.touch(db.id, key)
        if journal is not None:
            journal.log(db.id, [b"DEL", key])

    # -- full copies -----------------------------------------------------------------

    def full_begin(self, shard):
        """A full copy of primary shard `shard` starts: its keys here go."""
        self.marks.note(shard, -1)
        self._log(0, applied_record(shard, -1))
        ks = self.ks
        if self.layout().inside(self.worker.index, shard):
            for db in ks.dbs:
                if db.data:
                    ks.flush(db)
            self._log(0, [b"FLUSHALL"])
            return
        owned = self.layout().owns(shard)
        journal = ks.journal
        for db in ks.dbs:
            for key in [key for key in db.data if owned(key)]:
                self._drop(db, key, journal)

    def full_chunk(self, blobs):
        """Load packed snapshot chunks (their keys all live here)."""
        ks = self.ks
        journal = ks.journal
        for blob in blobs:
            chunk = codec.unpack(blob)
            db = ks.dbs[codec.chunk_db(chunk)]
            codec.load_chunk(chunk, db)
            ks.dirty += len(chunk[1]) + len(chunk[2])
            if journal is not None:
                _journal_chunk(journal, db, chunk)

    def full_end(self, shard, seq):
        """The copy is complete at seq; live records follow."""
        now = now_ms()
        for db in self.ks.dbs:
            if db.expires:
                codec.drop_expired(db, now)
        self.marks.note(shard, seq)
        self._log(0, applied_record(shard, seq))
        return seq


def _journal_chunk(journal, db, chunk):
    _, strings, containers, expires = chunk
    dbid = db.id
    for key, value in strings.items():
        journal.log(dbid, [b"SET", key, value])
    for key in containers:
        journal.log(dbid, put_record(key, db.data[key], None))
    for key, at in expires.items():
        journal.log(dbid, [b"PEXPIREAT", key, b"%d" % at])
