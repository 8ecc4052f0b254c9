"""A worker's persistence: recovery at start, the WAL, and snapshots.

The worker calls flush() before any reply leaves (so appendfsync's promises
hold), tick() from its cron, and shutdown() on the way out. A background
snapshot forks the worker: the child writes the copy-on-write image of the
shard while the parent goes on serving.

The journal runs while the WAL is on or replication wants the records (a
``sink``, set by replication/primary.py once a replica attaches); flush()
hands each batch of records to both.
"""
import os
import signal
import time
import traceback

from fastcache import log
from fastcache.engine.records import Journal, numbered
from fastcache.persistence import snapshot, walfile
from fastcache.persistence.recovery import recover, shard_dir
from fastcache.persistence.wal import Wal
from fastcache.persistence.walfile import encode_records
from fastcache.protocol.replies import Error

BGSAVE_RETRY_DELAY = 5     # seconds before a failed background save is retried (Redis's)
MISCONF_AOF = "MISCONF Errors writing to the AOF file: %s"
MISCONF_RDB = ("MISCONF Redis is configured to save RDB snapshots, but it's currently unable "
               "to persist to disk. Commands that may modify the data set are disabled, because "
               "this instance is configured to report errors during writes if RDB snapshotting "
               "fails (stop-writes-on-bgsave-error option). Please check the Redis logs for "
               "details about the RDB error.")


class Durability:
    def __init__(self, worker):
        self.worker = worker
        self.config = worker.config
        self.ks = worker.ks
        self.index = worker.index
        self.dir = shard_dir(self.config, worker.index)
        self.seq = 0                  # the last record's sequence when there is no journal
        self.journal = None
        self.wal = None
        # appendfsync always, after a failed WAL write: the first journal
        # generation whose records are not on disk yet (see must_hold).
        self.unsafe_from = None
        # fn(first seq, journal entries): replication's share of the records
        self.sink = None
        self.loading_seconds = 0.0
        # snapshots, with Redis's INFO names in mind
        self.lastsave = int(time.time())
        self.last_bgsave_ok = True
        self.last_bgsave_try = 0.0
        self.last_bgsave_seconds = -1
        self.bgsave_started = None
        self.child = None             # (pid, seq, dirty at fork)
        self.saves = 0
        self.snapshot_bytes = 0
        self.wal_base = 0             # wal.written_bytes where the last snapshot was taken
        self.wal_at_snapshot = 0      # wal.written_bytes where the running snapshot was taken
        self.loaded_keys = 0
        # Which of Redis's two child kinds the running snapshot stands for: "rdb"
        # (BGSAVE, save rules) or "aof" (BGREWRITEAOF, WAL growth, appendonly on),
        # and one asked for while a child ran (BGSAVE SCHEDULE, a rewrite in EXEC).
        self.child_kind = None
        self.scheduled = None
        self.rewrites = 0
        self.last_rewrite_ok = True
        self.last_rewrite_seconds = -1
        self.rewrite_failures = 0     # consecutive
        self.saved_for_shutdown = False

    # -- start -------------------------------------------------------------------

    def start(self):
        """Recover the shard, then start the WAL if appendonly is on. Raises
        RecoveryError when the files are not loadable."""
        loaded = recover(self.ks, self.dir, self.index, self.config["aof-load-truncated"])
        self.seq = loaded.seq
        self.loading_seconds = loaded.seconds
        self.ks.dirty = 0
        keys = self.loaded_keys = sum(len(db.data) for db in self.ks.dbs)
        if loaded.snapshot_path is not None or loaded.records:
            log.info("Shard %d loaded %d keys in %.3f seconds (snapshot at %d, %d WAL records)"
                     % (self.index, keys, loaded.seconds, loaded.snapshot_seq, loaded.records))
        if loaded.snapshot_path is not None:
            self.snapshot_bytes = os.path.getsize(loaded.snapshot_path)
        if self.config["appendonly"]:
            self.enable_wal()

    def start_journal(self):
        """Keep mutation records from now on (the WAL or replication needs them)."""
        if self.journal is None:
            self.journal = Journal(self.seq)
            self.ks.journal = self.journal

    def enable_wal(self):
        wal = Wal(self.dir, self.index, self.config["appendfsync"])
        wal.open(self.current_seq() + 1)  # first: if the disk refuses, nothing has changed
        self.start_journal()
        self.wal = wal
        self.wal_base = self.wal_at_snapshot = 0

    def disable_wal(self):
        self.flush()
        self.seq = self.journal.seq   # later snapshots are named after the last record
        self.wal.close()
        self.wal = None
        if self.sink is None:
            self.ks.journal = self.journal = None

    def current_seq(self):
        return self.journal.seq if self.journal is not None else self.seq

    # -- the WAL -----------------------------------------------------------------

    def flush(self):
        """Hand the pending records to the WAL (fsynced under appendfsync always)
        and to replication."""
        journal = self.journal
        if journal is None or not journal.entries:
            return
        if self.wal is None and not journal.pending:
            return      # db switches alone: kept, so the next batch in that db adds none
        first, entries = journal.take_entries()
        last = journal.seq
        if last < first:        # only db switches
            return
        if self.wal is not None:
            blob = encode_records(numbered(first, entries))
            if not self.wal.write(blob, last):
                if self.wal.policy == "always" and self.unsafe_from is None:
                    # Replies that depend on these records wait until they are on disk.
                    self.unsafe_from = journal.generation - 1
                self.refresh_refusal()
        if self.sink is not None:
            self.sink(first, entries)

    def must_hold(self, log_gen):
        """Whether output that follows records of journal generation log_gen must wait."""
        return self.unsafe_from is not None and log_gen >= self.unsafe_from

    def refresh_refusal(self):
        """Set or clear the error writes get: MISCONF after disk trouble or a
        failed save, READONLY on a replica, or none."""
        worker = self.worker
        if self.wal is not None and self.wal.error is not None:
            worker.refuse_writes = Error(MISCONF_AOF % self.wal.error)
        elif (not self.last_bgsave_ok and self.config["stop-writes-on-bgsave-error"]
              and self.config["save"]):
            worker.refuse_writes = Error(MISCONF_RDB)
        else:
            worker.refuse_writes = worker.replication.refusal()
        worker.apply_config()

    # -- cron --------------------------------------------------------------------

    def tick(self):
        if self.wal is not None and self.wal.error is not None:
            self.wal.retry()
            if self.wal.error is None:
                self.refresh_refusal()
                if self.unsafe_from is not None:
                    self.unsafe_from = None
                    self.worker.release_held()
        if self.child is not None:
            self._reap_child()
        # No fork while a cross-shard transaction holds this shard: the
        # snapshot would hold half of it.
        if self.child is None and self.worker.lock is None:
            if self.scheduled is not None:
                self.bgsave(self.scheduled)
            else:
                self._maybe_autosave()

    def _maybe_autosave(self):
        now = time.time()
        ks = self.ks
        retry_ok = self.last_bgsave_ok or now - self.last_bgsave_try > BGSAVE_RETRY_DELAY
        if not retry_ok:
            return
        for seconds, changes in self.config["save"]:
            if ks.dirty >= changes and now - self.lastsave > seconds:
                log.info("%d changes in %d seconds. Saving..." % (changes, seconds))
                self.bgsave()
                return
        wal = self.wal
        if wal is not None:
            growth = wal.written_bytes - self.wal_base
            pct = self.config["auto-aof-rewrite-percentage"]
            if pct and growth >= self.config["auto-aof-rewrite-min-size"] \
                    and growth >= self.snapshot_bytes * pct / 100:
                log.info("WAL grew by %d bytes since the last snapshot: saving" % growth)
                self.bgsave("aof")

    # -- snapshots ---------------------------------------------------------------

    def _prepare_snapshot(self):
        """Put every record so far on file and seal the segment; the seq to save at."""
        self.flush()
        seq = self.current_seq()
        if self.wal is not None:
            self.wal.rotate(seq + 1)
            # Growth counts from here: what is written while the snapshot is made
            # stays on disk after it, so it must count toward the next one.
            self.wal_at_snapshot = self.wal.written_bytes
        return seq

    def save(self):
        """SAVE: a snapshot written in the foreground. True on success."""
        if self.child is not None:
            return False
        seq = self._prepare_snapshot()
        started = time.monotonic()
        dirty = self.ks.dirty
        try:
            path = snapshot.write_snapshot(self.dir, self.index, seq, self.ks,
                                           self.config["snapshot-zstd-level"])
        except OSError as exc:
            log.warning("Failed saving shard %d: %s" % (self.index, exc))
            self._saved(False, seq, dirty, started)
            return False
        self._saved(True, seq, dirty, started, path)
        return True

    def bgsave(self, kind="rdb"):
        """BGSAVE (kind "rdb") or a WAL rewrite ("aof"): fork; False if a child
        is already running or the fork failed."""
        if self.child is not None:
            return False
        self.scheduled = None
        seq = self._prepare_snapshot()
        self.last_bgsave_try = time.time()
        try:
            pid = os.fork()
        except OSError as exc:
            log.warning("Can't save in background: fork: %s" % exc.strerror)
            self.last_bgsave_ok = False
            return False
        if pid == 0:
            os._exit(self._child_main(seq))
        log.info("Background saving started by pid %d" % pid)
        self.child = (pid, seq, self.ks.dirty, time.monotonic())
        self.child_kind = kind
        return True

    def _child_main(self, seq):
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            snapshot.write_snapshot(self.dir, self.index, seq, self.ks,
                                    self.config["snapshot-zstd-level"])
            return 0
        except BaseException:
            traceback.print_exc()
            return 1

    def _reap_child(self, block=False):
        pid, seq, dirty, started = self.child
        try:
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 1 << 8
        if done == 0:
            return
        self.child = None
        ok = os.waitstatus_to_exitcode(status) == 0
        log.info("Background saving %s" % ("terminated with success" if ok else "error"))
        path = os.path.join(self.dir, snapshot.snapshot_name(seq)) if ok else None
        self._saved(ok, seq, dirty, started, path)
        if self.child_kind == "aof":
            self._rewritten(ok)
        self.child_kind = None

    def _rewritten(self, ok):
        self.last_rewrite_ok = ok
        self.last_rewrite_seconds = self.last_bgsave_seconds
        if ok:
            self.rewrites += 1
            self.rewrite_failures = 0
        else:
            self.rewrite_failures += 1

    def reap(self, block=False):
        """Collect a finished background save now rather than at the next tick
        (block: wait for it, as SAVE does for a rewrite)."""
        if self.child is not None:
            self._reap_child(block)

    def _saved(self, ok, seq, dirty, started, path=None):
        self.last_bgsave_seconds = int(time.monotonic() - started)
        self.last_bgsave_ok = ok
        if ok:
            self.lastsave = int(time.time())
            self.ks.dirty -= dirty
            self.saves += 1
            self.snapshot_bytes = os.path.getsize(path) if path and os.path.exists(path) else 0
            snapshot.remove_older(self.dir, seq)
            self._drop_wal_upto(seq)
        self.refresh_refusal()

    def _drop_wal_upto(self, seq):
        if self.wal is not None:
            self.wal.drop_covered(seq)
            self.wal_base = self.wal_at_snapshot
            return
        for first, path in walfile.list_segments(self.dir):   # left from an appendonly run
            if first <= seq:
                os.remove(path)

    def kill_child(self):
        if self.child is not None:
            try:
                os.kill(self.child[0], signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap_child(block=True)

    # -- stop --------------------------------------------------------------------

    def save_for_shutdown(self, save=None):
        """SHUTDOWN's final save, made before the command answers so that a
        failure can refuse the shutdown, as Redis does. True if it worked (or
        none was wanted) and the WAL holds every record."""
        self.kill_child()
        self.scheduled = None
        if save is None:
            save = bool(self.config["save"])
        ok = self.save() if save else True
        self.flush()
        if self.wal is not None and self.wal.error is not None:
            ok = False
        self.saved_for_shutdown = ok and save
        return ok

    def shutdown(self, save=None):
        """Flush the WAL and, when save rules exist (or save is True), save a
        snapshot, unless SHUTDOWN saved already and nothing changed since."""
        self.kill_child()
        if save is None:
            save = bool(self.config["save"])
        if save and not (self.saved_for_shutdown and self.ks.dirty == 0):
            self.save()
        if self.wal is not None:
            self.flush()
            self.wal.close()

