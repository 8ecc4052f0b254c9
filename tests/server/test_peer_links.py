"""Peer links carry pickles, so a worker talks to its own user only: another
local user can neither feed a worker frames through its abstract socket nor
stand in for a peer by binding a peer's name first (fastcache/server/peers.py).

The other user is `nobody`, reached with setuid in a forked child: these tests
need root, and skip without it."""
import asyncio
import os
import pickle
import socket
import struct
import tempfile
import time

import pytest
import redis

from fastcache.server import peers
from tests.support.procs import start_fastcache_argv

NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


class _Marker:
    """Unpickling this creates a file: proof that a worker ran the sender's code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def as_nobody(work):
    """Run work() in a child process as user nobody; its exit code (0: work returned)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            work()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def peer_names(server_pid, port):
    """The abstract names of a server's peer sockets, from /proc/net/unix."""
    prefix = "@fastcache-%d-%d-" % (server_pid, port)
    with open("/proc/net/unix") as f:
        names = {line.split()[-1] for line in f if len(line.split()) > 7}
    return sorted(n for n in names if n.startswith(prefix) and not n.endswith("-handoff"))


def test_a_worker_refuses_frames_from_another_user():
    server = start_fastcache_argv("--shards", "2", "--save", "")
    marker = os.path.join(tempfile.mkdtemp(), "ran")
    os.chmod(os.path.dirname(marker), 0o777)
    try:
        names = peer_names(server.proc.pid, server.port)
        assert len(names) == 2

        def attack():
            for name in names:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect("\0" + name[1:])
                body = pickle.dumps([(1, "call", (0, _Marker(marker)), None)])
                try:
                    sock.sendall(_frame(body))
                    sock.settimeout(5)
                    assert sock.recv(16) == b""     # closed, unanswered
                except (BrokenPipeError, ConnectionResetError):
                    pass                            # closed before or while we wrote
                sock.close()

        assert as_nobody(attack) == 0
        time.sleep(0.2)
        assert not os.path.exists(marker)
        # The server serves on, across both shards.
        client = redis.Redis(port=server.port, decode_responses=True)
        assert client.mset({"a{1}": "1", "b{2}": "2", "c{3}": "3"})
        assert client.mget("a{1}", "b{2}", "c{3}") == ["1", "2", "3"]
        client.close()
        assert "Refused a peer link from another user" in server.output()
    finally:
        server.stop()


def _frame(body):
    return struct.pack("<I", len(body)) + body


def test_a_worker_will_not_link_to_another_users_socket():
    address = "\0fastcache-test-squatter-%d" % os.getpid()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(address)
            listener.listen(1)
            os.write(ready_w, b"1")
            time.sleep(10)      # connections wait in the backlog; killed when done
        finally:
            os._exit(0)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"1"
    os.close(ready_r)

    async def link():
        loop = asyncio.get_running_loop()
        return await peers.connect(loop, address, 1, lambda shard: None, attempts=1)

    try:
        with pytest.raises(RuntimeError, match="belongs to another user"):
            asyncio.run(link())
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
