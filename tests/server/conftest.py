"""Servers for the server-command tests: one fastcache per shard count per
module (module scope keeps files fast), the reference redis-server from
tests/conftest.py, and helpers to talk to both."""
import os

import pytest
import redis

from tests.support.resp import RawClient
from tests.support.servers import ROOT, start_fastcache

# The servers run `python -m fastcache` from a temp directory: let them import this checkout.
if ROOT not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)


@pytest.fixture(scope="module", params=[1, 2], ids=["shards1", "shards2"])
def fc(request):
    """fastcache with --shards 1 and --shards 2 (one server each per module)."""
    server = start_fastcache(shards=request.param)
    server.shards = request.param
    yield server
    server.stop()


def client(port, protocol=2):
    return redis.Redis(port=port, protocol=protocol, decode_responses=True,
                       single_connection_client=True, socket_timeout=10)


def raw(port, protocol=2):
    """A RawClient, switched to RESP3 with HELLO 3 if asked."""
    c = RawClient(port)
    if protocol == 3:
        c.call("HELLO", "3")
    return c


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request):
    return request.param


@pytest.fixture
def pair(fc, redis_ref, protocol):
    """(fastcache, redis-server) raw connections speaking the same protocol."""
    ours, theirs = raw(fc.port, protocol), raw(redis_ref.port, protocol)
    yield ours, theirs
    ours.close()
    theirs.close()

