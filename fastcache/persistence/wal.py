"""A shard's WAL writer: appends framed records to the current segment.

Redis's promises per appendfsync policy:
- always: the records are written and fsynced before the replies that depend
  on them leave (the server calls write() before sending any reply);
- everysec: written before the replies, fsynced by a background thread about
  once a second, so power loss costs at most about a second;
- no: written before the replies; the OS decides when they reach the disk.

A failed write (ENOSPC, EIO, ...) keeps the bytes in memory and cuts any half
written record off the file; the server then refuses writes (MISCONF) and
retries until the disk takes them again.
"""
import errno
import os
import threading

from fastcache import log
from fastcache.persistence import walfile
from fastcache.persistence.walfile import fsync_dir

SEGMENT_BYTES = 64 * 1024 * 1024


class Wal:
    def __init__(self, shard_dir, shard, policy, segment_bytes=SEGMENT_BYTES):
        self.dir = shard_dir
        self.shard = shard
        self.policy = policy
        self.segment_bytes = segment_bytes
        self.fd = -1
        self.path = None
        self.size = 0               # bytes of the current segment known to be on file
        self.unwritten = []         # framed records a failed write left in memory
        self.error = None           # strerror of the last failed write, while it lasts
        self.last_seq = 0           # the newest record handed to write()
        self.written_bytes = 0      # total, for INFO
        self._dirty = False         # written since the last fsync
        self._lock = threading.Lock()   # the fd, between the loop and the fsync thread
        self._stop = threading.Event()
        self._syncer = None

    # -- segments --------------------------------------------------------------

    def open(self, next_seq):
        """Start a new segment whose first record will be next_seq."""
        os.makedirs(self.dir, exist_ok=True)
        path = os.path.join(self.dir, walfile.segment_name(next_seq))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        header = walfile.file_header(self.shard)
        os.write(fd, header)
        os.fsync(fd)
        fsync_dir(self.dir)
        with self._lock:
            old = self.fd
            self.fd, self.path, self.size = fd, path, len(header)
        if old >= 0:
            os.fsync(old)
            os.close(old)
        if self.policy == "everysec" and self._syncer is None:
            self._start_syncer()

    def rotate(self, next_seq):
        """Seal the current segment (snapshots cover whole segments)."""
        self.flush_unwritten()
        self.open(next_seq)

    def drop_covered(self, seq):
        """Remove the segments whose records are all <= seq (a snapshot holds them)."""
        segments = walfile.list_segments(self.dir)
        for i, (first, path) in enumerate(segments):
            nxt = segments[i + 1][0] if i + 1 < len(segments) else None
            if path != self.path and nxt is not None and nxt - 1 <= seq:
                _remove(path)

    def disk_bytes(self):
        return sum(_size(path) for _, path in walfile.list_segments(self.dir))

    # -- writing ---------------------------------------------------------------

    def write(self, blob, last_seq):
        """Append blob (framed records up to last_seq). False if the disk refused it;
        the bytes then wait in memory for retry()."""
        self.last_seq = last_seq
        if self.unwritten:
            self.unwritten.append(blob)
            return self.flush_unwritten()
        if not self._append(blob):
            self.unwritten.append(blob)
            return False
        if self.policy == "always":
            return self.sync()
        return True

    def flush_unwritten(self):
        if not self.unwritten:
            return True
        blob = b"".join(self.unwritten)
        if not self._append(blob):
            self.unwritten = [blob]
            return False
        self.unwritten = []
        if self.policy == "always":
            return self.sync()
        return True

    retry = flush_unwritten

    def _append(self, blob):
        view = memoryview(blob)
        done = 0
        try:
            while done < len(view):
                done += os.write(self.fd, view[done:])
        except OSError as exc:
            if done:
                # Never leave half a record behind: cut back to the last whole one.
                try:
                    os.ftruncate(self.fd, self.size)
                except OSError:
                    pass
            self._failed(exc)
            return False
        self.size += done
        self.written_bytes += done
        self._dirty = True
        if self.error is not None:
            log.info("WAL writes to %s work again" % self.path)
            self.error = None
        if self.size >= self.segment_bytes:
            try:
                self.open(self.last_seq + 1)
            except OSError as exc:
                log.warning("Cannot start a new WAL segment: %s" % exc.strerror)
        return True

    def sync(self):
        with self._lock:
            if self.fd < 0 or not self._dirty:
                return True
            self._dirty = False
            try:
                os.fsync(self.fd)
            except OSError as exc:
                self._dirty = True
                self._failed(exc)
                return False
        return True

    def _failed(self, exc):
        first = self.error is None
        self.error = exc.strerror or errno.errorcode.get(exc.errno, str(exc))
        if first:
            log.warning("Error writing to the WAL %s: %s" % (self.path, self.error))

    def _start_syncer(self):
        self._stop = threading.Event()
        self._syncer = threading.Thread(target=self._sync_every_second,
                                        name="wal-fsync-%d" % self.shard, daemon=True)
        self._syncer.start()

    def _sync_every_second(self):
        while not self._stop.wait(1.0):
            self.sync()

    def set_policy(self, policy):
        """appendfsync changed at run time: keep the fsync thread only for everysec,
        and sync now what the new policy would already have synced."""
        self.policy = policy
        if policy == "everysec" and self._syncer is None and self.fd >= 0:
            self._start_syncer()
        elif policy != "everysec" and self._syncer is not None:
            self._stop.set()
            self._syncer.join()
            self._syncer = None
        if policy == "always":
            self.sync()

    def close(self):
        self.flush_unwritten()
        self._stop.set()
        with self._lock:
            if self.fd >= 0:
                try:
                    os.fsync(self.fd)
                except OSError:
                    pass
                os.close(self.fd)
                self.fd = -1


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
