"""Real server processes for the integration tests.

fastcache servers with one and four shards live for the whole session; tests
get clients that flush everything first. Tests that need special options
(requirepass, maxclients, timeout, ...) start their own servers."""
import os
import sys

import pytest
import redis

from tests.support.procs import start_fastcache_argv, start_redis_argv
from tests.support.resp import RawClient
from tests.support.servers import ROOT, start_fastcache

# Servers run as `python -m fastcache` from their own temp directory: let them
# import this checkout even when the package is not pip-installed.
if ROOT not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)


def _server(shards):
    proc = start_fastcache(shards=shards)
    proc.shards = shards
    yield proc
    if proc.proc.poll() is not None:  # died during the session: show why
        sys.stderr.write("fastcache --shards %d exited with %s; its log:\n%s\n"
                         % (shards, proc.proc.returncode, proc.output()))
    proc.stop()


@pytest.fixture(scope="session")
def fc1():
    yield from _server(1)


@pytest.fixture(scope="session")
def fc4():
    yield from _server(4)


@pytest.fixture(scope="session", params=[1, 4], ids=["shards1", "shards4"])
def fc(request):
    """Each test using it runs against --shards 1 and --shards 4."""
    return request.getfixturevalue("fc%d" % request.param)


def make_client(port, protocol=2, **kw):
    return redis.Redis(port=port, protocol=protocol, decode_responses=True,
                       single_connection_client=True, socket_timeout=10, **kw)


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request):
    return request.param


def _flushed(port, protocol):
    client = make_client(port, protocol)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def r(fc, protocol):
    """redis-py on one connection, RESP2 or RESP3, everything flushed."""
    yield from _flushed(fc.port, protocol)


@pytest.fixture
def ref(redis_ref, protocol):
    """redis-py to the reference redis-server, same protocol, flushed."""
    yield from _flushed(redis_ref.port, protocol)


PASSWORD = "pass"


@pytest.fixture(scope="module")
def auth_pair():
    """(fastcache --shards 4, redis-server), both with --requirepass PASSWORD."""
    ours = start_fastcache_argv("--shards", "4", "--requirepass", PASSWORD, password=PASSWORD)
    theirs = start_redis_argv("--requirepass", PASSWORD, password=PASSWORD)
    yield ours, theirs
    ours.stop()
    theirs.stop()


@pytest.fixture
def raw4(fc4):
    """A raw RESP2 connection to the 4-shard server, everything flushed."""
    c = RawClient(fc4.port)
    assert c.call("FLUSHALL") == b"+OK\r\n"
    yield c
    c.close()
