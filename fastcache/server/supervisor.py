"""The supervisor: binds the port, forks one worker per shard, waits.

Workers are forked after the listening sockets exist, so a busy port is
reported once, before anything starts. A worker that dies stops every
worker, so the server never serves a partial keyspace; with appendonly on
they are started again and recover from disk, otherwise the server exits
non-zero. A worker that exits cleanly (SHUTDOWN) stops the others cleanly.
"""
import errno
import os
import select
import signal
import socket
import time
import traceback
from multiprocessing.sharedctypes import RawArray

from fastcache import __version__, log
from fastcache.persistence import datadir
from fastcache.persistence.recovery import RecoveryError
from fastcache.replication.node import new_replid
from fastcache.server import worker as worker_module

# A crashed worker brings every worker back from disk (appendonly yes), but
# no more than MAX_RESTARTS times in RESTART_WINDOW seconds.
MAX_RESTARTS = 5
RESTART_WINDOW = 60


class StartupError(Exception):
    pass


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _listen(host, port, backlog, reuseport):
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


def bind_all(config):
    """One listening socket per (worker, address); returns ([[socks] per worker], port)."""
    shards, port, backlog = config["shards"], config["port"], config["tcp-backlog"]
    per_worker = [[] for _ in range(shards)]
    for spec in config["bind"]:
        optional = spec.startswith("-")
        host = spec.lstrip("-")
        host = {"*": "0.0.0.0", "::*": "::"}.get(host, host)
        try:
            # Probe without SO_REUSEPORT: fails if anyone (even another
            # fastcache) already listens here, which REUSEPORT would hide.
            probe = _listen(host, port, backlog, reuseport=False)
            if port == 0:
                port = probe.getsockname()[1]
            probe.close()
            for socks in per_worker:
                socks.append(_listen(host, port, backlog, reuseport=True))
        except OSError as exc:
            if optional and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                continue
            raise StartupError("Could not create server TCP listening socket %s:%d: bind: %s"
                               % (host, port, exc.strerror)) from None
    if not per_worker[0]:
        raise StartupError("Failed listening on port %d (tcp), aborting." % port)
    return per_worker, port


def _exit_with_parent(parent):
    """A worker gets SIGTERM when the supervisor dies, even by SIGKILL, instead of
    lingering with the port (Linux's PR_SET_PDEATHSIG; elsewhere nothing)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:   # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


PR_SET_PDEATHSIG = 1


class Supervisor:
    def __init__(self, config):
        self.config = config
        self.pid = os.getpid()
        self.children = {}
        self.stopping = False
        self.exit_code = 0
        self.lock = None
        self.generation = 0
        self.crashed = False
        self.restarts = []
        self.early = []     # workers reaped while waiting for start-up

    def run(self):
        config = self.config
        log.configure(config, role="M")
        try:
            os.makedirs(config["dir"], exist_ok=True)
            listeners, port = bind_all(config)
            self.lock = datadir.DirLock(config["dir"], "fastcache-server port %d" % port)
            datadir.prepare(config["dir"], config["shards"], config["databases"],
                            config["aof-load-truncated"])
        except (StartupError, OSError, datadir.DataDirError, RecoveryError) as exc:
            log.warning(str(exc))
            return 1
        shards = config["shards"]
        log.info("fastcache %s starting: port=%d shards=%d pid=%d"
                 % (__version__, port, shards, os.getpid()))
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # The supervisor keeps the listening sockets: connections queue while
        # workers restart.
        while self._run_workers(listeners, port) and self._may_restart():
            log.warning("Restarting every worker; each recovers its shard from disk")
            self.exit_code = 0
            self.stopping = False
        for socks in listeners:
            for sock in socks:
                sock.close()
        log.info("fastcache is now ready to exit, bye bye..." if self.exit_code == 0
                 else "fastcache stopped because a worker failed")
        return self.exit_code

    def _run_workers(self, listeners, port):
        """Fork the workers and wait for them all to exit; True if one crashed
        after start-up (a restart may bring the data back from disk)."""
        shards = self.config["shards"]
        shared = RawArray("l", shards)
        self.generation += 1
        # Every start is a new replication history: a primary back from disk may
        # have lost writes its replicas hold, so they must copy it afresh.
        self.config.replid = new_replid()
        instance = "%d-%d-%d" % (os.getpid(), port, self.generation)
        ready_r, ready_w = os.pipe()
        for index in range(shards):
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                os._exit(self._child(index, listeners[index], shared, instance, ready_w))
            self.children[pid] = index
        os.close(ready_w)
        started = self._wait_ready(ready_r, shards)
        if started:
            log.info("Ready to accept connections tcp")
        os.close(ready_r)
        self.crashed = False
        self._reap()
        return started and self.crashed

    def _may_restart(self):
        """Only a persistent server comes back by itself, and not in a crash loop."""
        if not self.config["appendonly"]:
            return False
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW] + [now]
        if len(self.restarts) > MAX_RESTARTS:
            log.warning("Workers crashed %d times in %d seconds; giving up"
                        % (len(self.restarts), RESTART_WINDOW))
            return False
        return True

    def _child(self, index, socks, shared, instance, ready_w):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _exit_with_parent(self.pid)
        try:
            return worker_module.run(index, self.config, socks, shared, instance, ready_w)
        except BaseException:
            traceback.print_exc()
            return 1

    def _wait_ready(self, fd, count, timeout=600.0):
        got = b""
        deadline = time.monotonic() + timeout
        while got.count(b"\n") < count and not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("Workers did not start in time")
                self._stop_all(1)
                return False
            readable, _, _ = select.select([fd], [], [], min(left, 0.1))
            if readable:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return False  # every worker closed the pipe: one died
                got += chunk
            elif self._early_exits():
                return False
        return not self.stopping

    def _early_exits(self):
        """A worker that exits before it is ready (say, its shard's files are
        damaged) stops the others at once, without waiting for their peer
        links to give up on it. Its status stays for _reap to judge."""
        exited = self._also_exited()
        if not exited:
            return False
        self.early = exited
        for pid, status in exited:
            log.warning("Shard %d (pid %d) exited during start-up with status %d"
                        % (self.children[pid], pid, os.waitstatus_to_exitcode(status)))
        self._stop_all(1)
        return True

    def _on_signal(self, signum, frame):
        if not self.stopping:
            log.info("Received %s, scheduling shutdown..." % signal.Signals(signum).name)
        self._stop_all(self.exit_code)

    def _stop_all(self, code):
        self.exit_code = code
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _reap(self):
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            exited = [(pid, status)] + self._also_exited()
            if self.early:
                exited, self.early = exited + self.early, []
            if self.stopping:
                for pid, _ in exited:
                    self.children.pop(pid, None)
                continue
            # Judge by every worker gone by now: a clean exit (SHUTDOWN) makes
            # the others lose their links and fail, whichever is reaped first.
            verdict = {pid: os.waitstatus_to_exitcode(status) for pid, status in exited}
            clean = [pid for pid, code in verdict.items() if code == 0]
            if clean:
                log.info("Shard %d requested shutdown; stopping the other workers"
                         % self.children[clean[0]])
                self._stop_all(0)
            else:
                pid, code = next(iter(verdict.items()))
                log.warning("Shard %d (pid %d) died with status %d; stopping the server so it "
                            "never serves a partial keyspace" % (self.children[pid], pid, code))
                self.crashed = True
                self._stop_all(1)
            for pid in verdict:
                self.children.pop(pid, None)

    def _also_exited(self):
        """Other children that have exited already, without waiting."""
        found = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return found
            if pid == 0:
                return found
            found.append((pid, status))
