"""Primary and replica fastcache servers on loopback, for the live replication tests.

A Node keeps its port and data directory across restarts, so a test can kill
it (SIGKILL to the supervisor and every worker) and start it again on its data.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import redis

from tests.support.procs import child_pids
from tests.support.servers import checkout_env, free_port, wait_ready


class Node:
    def __init__(self, *flags, shards=2, password=None):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="fastcache-repl-")
        self.data = os.path.join(self.dir, "data")
        self.shards = shards
        self.flags = list(flags)
        self.password = password
        self.proc = None
        self.log = None
        self.logs = []
        self.start()

    def start(self, *extra):
        """Start (again) on the same port and data directory; one log file per start."""
        argv = [sys.executable, "-m", "fastcache", "--port", str(self.port), "--dir", self.data,
                "--shards", str(self.shards), "--save", "", *self.flags, *extra]
        if self.password:
            argv += ["--requirepass", self.password]
        log_path = os.path.join(self.dir, "server-%d.log" % len(self.logs))
        self.logs.append(log_path)
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=checkout_env())
        wait_ready(self.port, self.proc, password=self.password, log_path=log_path)

    def wipe(self):
        """Lose the data directory (the node must be down)."""
        shutil.rmtree(self.data, ignore_errors=True)

    def client(self, **kwargs):
        return redis.Redis(port=self.port, socket_timeout=10, password=self.password, **kwargs)

    def workers(self):
        return child_pids(self.proc.pid)

    def signal_all(self, sig):
        for pid in [self.proc.pid] + self.workers():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill9(self):
        """SIGKILL the supervisor and its workers at once, as a crash would."""
        pids = [self.proc.pid] + self.workers()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self.log.close()

    def output(self):
        text = []
        for path in self.logs:
            with open(path, "rb") as f:
                text.append(f.read().decode(errors="replace"))
        return "".join(text)

    def stop(self, keep_dir=False):
        if self.proc is not None and self.proc.poll() is None:
            self.signal_all(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()
        if self.log is not None and not self.log.closed:
            self.log.close()
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_for(predicate, timeout=30.0, interval=0.05):
    """Poll predicate until it is true (connection errors count as false)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
            pass
        time.sleep(interval)
    return False


def info(node, section="replication"):
    return node.client().info(section)


def digest(node):
    return node.client().execute_command("DEBUG", "DIGEST")


def in_sync(primary, replica):
    """Same dataset digest (live keys only: DBSIZE may count expired ones) on both."""
    return digest(primary) == digest(replica)


def wait_in_sync(primary, replica, timeout=60.0):
    assert wait_for(lambda: in_sync(primary, replica), timeout), (
        "replica never caught up: primary %s, replica %s\n--- primary log\n%s\n--- replica log\n%s"
        % (primary.client().dbsize(), replica.client().dbsize(),
           primary.output()[-3000:], replica.output()[-3000:]))


def link_up(replica):
    return info(replica).get("master_link_status") == "up"


def started_pair(primary, replica, ready):
    """(primary, replica) once ready() holds; both stopped if it never does."""
    if not wait_for(ready):
        replica.stop()
        primary.stop()
        raise AssertionError("the replica never came up")
    return primary, replica
