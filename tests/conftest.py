import pytest

from tests.support import servers
from tests.support.resp import RawClient


@pytest.fixture(scope="session")
def redis_ref():
    """A reference redis-server; tests needing it skip where it is not installed."""
    if not servers.redis_available():
        pytest.skip("redis-server not installed")
    proc = servers.start_redis()
    yield proc
    proc.stop()


@pytest.fixture
def redis_raw(redis_ref):
    """A raw connection to a freshly flushed reference redis-server."""
    c = RawClient(redis_ref.port)
    c.call("FLUSHALL")
    yield c
    c.close()
