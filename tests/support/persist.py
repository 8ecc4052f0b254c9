"""Durability test helpers: a fastcache-server that can be killed -9 and restarted
on the same data directory and port, WAL/snapshot file surgery, and full dumps.

The server runs in its own session, so a kill reaches the supervisor, its
workers and any snapshot child at once (os.killpg)."""
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.procs import child_pids
from tests.support.servers import checkout_env, free_port, wait_ready


class DurableServer:
    """fastcache-server over one data directory that outlives its processes.

    start() / kill9() / stop() / restart() may be called any number of times;
    each start logs to its own file (server-<n>.log) so readiness and
    messages are judged per run. cleanup() removes the directory."""

    def __init__(self, *flags, shards=2, workdir=None):
        self.flags = list(flags)
        self.shards = shards
        self.port = free_port()
        self.dir = workdir or tempfile.mkdtemp(prefix="fastcache-durable-")
        self.proc = None
        self.runs = 0

    # -- processes ---------------------------------------------------------------

    def argv(self, *extra):
        return [sys.executable, "-m", "fastcache", "--port", str(self.port), "--dir", self.dir,
                "--shards", str(self.shards), *self.flags, *extra]

    def log_path(self, run=None):
        return os.path.join(self.dir, "server-%d.log" % (self.runs if run is None else run))

    def _spawn(self, extra):
        self.runs += 1
        log = open(self.log_path(), "wb")
        try:
            self.proc = subprocess.Popen(self.argv(*extra), cwd=self.dir, stdout=log,
                                         stderr=subprocess.STDOUT, env=checkout_env(),
                                         start_new_session=True)
        finally:
            log.close()

    def start(self, *extra, timeout=30.0):
        """Start and wait until every worker is ready; returns self."""
        self._spawn(extra)
        try:
            wait_ready(self.port, self.proc, timeout=timeout, log_path=self.log_path())
        except Exception:
            self.kill9()
            raise
        return self

    def start_failing(self, *extra, timeout=10.0):
        """Start expecting start-up to fail: (exit code, log text)."""
        self._spawn(extra)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError("server started although it should have failed:\n"
                                 + self.output())
        return code, self.output()

    def restart(self, *extra):
        self.kill9()
        return self.start(*extra)

    def workers(self):
        """The worker pids (the supervisor's live children)."""
        return child_pids(self.proc.pid)

    def kill9(self):
        """SIGKILL the supervisor, its workers and any snapshot child at once."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        _wait_group_gone(self.proc.pid)
        self.proc = None

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """A clean stop (SIGTERM saves when save rules exist); the exit code."""
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise
        _wait_group_gone(self.proc.pid)
        self.proc = None
        return code

    def cleanup(self):
        self.kill9()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- clients and files -------------------------------------------------------

    def client(self, db=0, **kw):
        """A redis-py client that never retries: redis-py 8 resends a command after
        a lost connection by default, which would run a write twice."""
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("retry", Retry(NoBackoff(), 0))
        return redis.Redis(port=self.port, db=db, **kw)

    def output(self, run=None):
        with open(self.log_path(run), "rb") as f:
            return f.read().decode(errors="replace")

    def shard_dir(self, index):
        return os.path.join(self.dir, "shard-%d" % index)

    def segments(self, index):
        return sorted(glob.glob(os.path.join(self.shard_dir(index), "wal-*.log")))

    def snapshots(self, index):
        return sorted(glob.glob(os.path.join(self.shard_dir(index), "snap-*.fcs")))

    def disk_bytes(self):
        total = 0
        for i in range(self.shards):
            for path in glob.glob(os.path.join(self.shard_dir(i), "*")):
                try:
                    total += os.path.getsize(path)
                except OSError:
                    pass
        return total


def _wait_group_gone(pgid, timeout=10.0):
    """Until every process of the group has exited (zombies left for init to
    reap count as gone: they hold no files or sockets)."""
    deadline = time.monotonic() + timeout
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_alive(pgid):
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2:].split()   # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


# -- file surgery -----------------------------------------------------------------

def patch(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def flip(path, offset):
    """Invert every bit of the byte at offset."""
    with open(path, "rb") as f:
        f.seek(offset)
        byte = f.read(1)[0]
    patch(path, offset, bytes([byte ^ 0xFF]))


def cut(path, size):
    with open(path, "r+b") as f:
        f.truncate(size)


# -- dumps ------------------------------------------------------------------------

def dump(port, dbs=range(16)):
    """{(db, key): (type, value, ttl ms or -1)} of every key in the given dbs.

    Pipelined per db (TYPE for all keys, then value and PTTL), so a dump of
    tens of thousands of keys takes a fraction of a second."""
    out = {}
    for dbid in dbs:
        with redis.Redis(port=port, db=dbid, socket_timeout=30) as c:
            out.update(_dump_db(c, dbid))
    return out


def _dump_db(c, dbid):
    out = {}
    keys = list(c.scan_iter(count=1000))
    if keys:
        pipe = c.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds = [k.decode() for k in pipe.execute()]
        for key, kind in zip(keys, kinds):
            getattr(pipe, _READERS[kind][0])(key, *_READERS[kind][1])
            pipe.pttl(key)
        replies = pipe.execute()
        for i, (key, kind) in enumerate(zip(keys, kinds)):
            value, ttl = replies[2 * i], replies[2 * i + 1]
            if kind == "set":
                value = frozenset(value)
            if kind != "none":
                out[(dbid, key)] = (kind, value, ttl)
    return out


_READERS = {"string": ("get", ()), "list": ("lrange", (0, -1)), "hash": ("hgetall", ()),
            "set": ("smembers", ()), "zset": ("zrange", (0, -1, False, True)),
            "none": ("get", ())}     # expired between SCAN and TYPE


def same_dump(before, after, ttl_slack_ms=5000):
    """Assert two dumps hold the same keys, types and values, and TTLs that
    agree within ttl_slack_ms (time passes between the two)."""
    assert sorted(before) == sorted(after), (
        "missing %s, extra %s" % (sorted(set(before) - set(after))[:10],
                                  sorted(set(after) - set(before))[:10]))
    for name, (kind, value, ttl) in before.items():
        kind2, value2, ttl2 = after[name]
        assert (kind, value) == (kind2, value2), name
        if ttl < 0:
            assert ttl2 == ttl, (name, ttl, ttl2)
        else:
            assert 0 < ttl2 <= ttl and ttl - ttl2 <= ttl_slack_ms, (name, ttl, ttl2)
