"""Start real redis-server and fastcache-server processes on free loopback ports."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from tests.support.resp import RawClient

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=30.0, password=None, log_path=None):
    """Until the server answers PING and (if log_path) has logged that it is
    ready: a multi-worker server answers on one worker before all are up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        if log_path is not None:
            with open(log_path, "rb") as f:
                if b"Ready to accept connections" not in f.read():
                    time.sleep(0.05)
                    continue
        try:
            c = RawClient(port, timeout=2)
            try:
                if password:
                    c.call("AUTH", password)
                if c.call("PING") == b"+PONG\r\n":
                    return
            finally:
                c.close()
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server on port %d did not come up" % port)


class ServerProcess:
    """A server child process; stop() terminates it and removes its directory."""

    def __init__(self, argv, port, workdir, password=None, env=None):
        self.port = port
        self.dir = workdir
        self.log = open(os.path.join(workdir, "server.log"), "wb")
        self.proc = subprocess.Popen(argv, cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env)
        try:
            wait_ready(port, self.proc, password=password,
                       log_path=os.path.join(workdir, "server.log"))
        except Exception:
            self.stop()
            raise

    def output(self):
        with open(os.path.join(self.dir, "server.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=None):
        if self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_available():
    return shutil.which("redis-server") is not None


def start_redis(*extra):
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="redis-ref-")
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir, *extra]
    return ServerProcess(argv, port, workdir)


def start_fastcache(*extra, shards=None, password=None):
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="fastcache-")
    argv = [sys.executable, "-m", "fastcache", "--port", str(port), "--dir", workdir]
    if shards is not None:
        argv += ["--shards", str(shards)]
    argv += list(extra)
    return ServerProcess(argv, port, workdir, password=password, env=checkout_env())


def checkout_env():
    """The environment for a server child: it imports this checkout even when
    the package is not pip-installed (the server runs from a temp directory)."""
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if ROOT not in paths:
        env["PYTHONPATH"] = os.pathsep.join([ROOT] + paths)
    return env
