"""The data directory as a whole: who holds it, and how many shards wrote it.

- ``fastcache.lock`` is held (flock) by the one process using the directory:
  a server's supervisor or an embedded Cache. A second one gets an error that
  names the holder.
- ``fastcache.meta`` records the shard count. Opened with another count (an
  embedded Cache's one shard read by a server with one per core, or a changed
  ``--shards``), the shards are rewritten first: every key moves to the shard
  that owns its slot under the new count, as a fresh snapshot.
"""
import fcntl
import json
import os
import shutil
import socket
import time

from fastcache import log
from fastcache.engine.keyspace import Keyspace
from fastcache.engine.slots import key_slot, slot_table
from fastcache.persistence import snapshot
from fastcache.persistence.recovery import recover
from fastcache.persistence.walfile import fsync_dir

LOCK = "fastcache.lock"
META = "fastcache.meta"
_RESHARD_NEW = "reshard.new"
_RESHARD_OLD = "reshard.old"


class DataDirError(Exception):
    pass


class DirLock:
    """An exclusive lock on a data directory, released by release() or at exit."""

    def __init__(self, path, role):
        os.makedirs(path, exist_ok=True)
        self.path = os.path.join(path, LOCK)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 512, 0).decode(errors="replace").strip() or "another process"
            os.close(self.fd)
            raise DataDirError("data directory %s is in use by %s" % (path, holder)) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, ("%s pid %d on %s\n" % (role, os.getpid(), socket.gethostname())).encode(), 0)

    def release(self):
        if self.fd >= 0:
            os.close(self.fd)   # closing drops the flock
            self.fd = -1


def shard_dirs(path):
    """{index: dir} of the shard directories present."""
    found = {}
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return found
    for name in names:
        if name.startswith("shard-") and name[6:].isdigit():
            found[int(name[6:])] = os.path.join(path, name)
    return found


def stored_shards(path):
    """The shard count the directory was written with, or None for a new one."""
    shards = stored_meta(path)
    if shards is None:
        dirs = shard_dirs(path)
        return max(dirs) + 1 if dirs else None
    return shards


def write_meta(path, shards):
    tmp = os.path.join(path, META + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"shards": shards, "format": 1}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(path, META))
    fsync_dir(path)


def prepare(path, shards, databases, load_truncated=True):
    """Make path ready for `shards` workers: finish or undo an interrupted
    reshard, reshard if the count changed, and record the count."""
    _settle_interrupted(path)
    old = stored_shards(path)
    if old is not None and old != shards:
        reshard(path, old, shards, databases, load_truncated)
    write_meta(path, shards)


def reshard(path, old, new, databases, load_truncated=True):
    started = time.monotonic()
    log.info("Data in %s was written by %d shards; redistributing it over %d" % (path, old, new))
    owners = slot_table(new)
    targets = [Keyspace(databases) for _ in range(new)]
    for index in range(old):
        source = Keyspace(databases)
        recover(source, os.path.join(path, "shard-%d" % index), index, load_truncated)
        for db in source.dbs:
            for key, value in db.data.items():
                dest = targets[owners[key_slot(key)]].dbs[db.id]
                dest.data[key] = value
                at = db.expires.get(key)
                if at is not None:
                    dest.expires[key] = at
    staging = os.path.join(path, _RESHARD_NEW)
    shutil.rmtree(staging, ignore_errors=True)
    for index, ks in enumerate(targets):
        snapshot.write_snapshot(os.path.join(staging, "shard-%d" % index), index, 0, ks)
    fsync_dir(staging)
    # Swap: old shards aside, new ones in; an interruption is settled at the next start.
    retired = os.path.join(path, _RESHARD_OLD)
    os.makedirs(retired, exist_ok=True)
    for index, shard_path in shard_dirs(path).items():
        os.rename(shard_path, os.path.join(retired, "shard-%d" % index))
    fsync_dir(path)
    for index in range(new):
        os.rename(os.path.join(staging, "shard-%d" % index), os.path.join(path, "shard-%d" % index))
    write_meta(path, new)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(retired, ignore_errors=True)
    keys = sum(len(db.data) for ks in targets for db in ks.dbs)
    log.info("Resharded %d keys in %.3f seconds" % (keys, time.monotonic() - started))


def _settle_interrupted(path):
    """A reshard stopped half way. The meta file changes last: while it still
    names the old count, the new shards may be incomplete, so the old ones go
    back and the reshard starts over."""
    retired = os.path.join(path, _RESHARD_OLD)
    staging = os.path.join(path, _RESHARD_NEW)
    old_dirs = shard_dirs(retired)
    if old_dirs and stored_meta(path) == len(old_dirs):
        log.warning("Undoing an interrupted reshard in %s" % path)
        for shard_path in shard_dirs(path).values():
            shutil.rmtree(shard_path)
        for index, shard_path in old_dirs.items():
            os.rename(shard_path, os.path.join(path, "shard-%d" % index))
        fsync_dir(path)
    shutil.rmtree(retired, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def stored_meta(path):
    try:
        with open(os.path.join(path, META)) as f:
            return int(json.load(f)["shards"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataDirError("%s is unreadable: %s" % (os.path.join(path, META), exc)) from None
