import pytest

from tests.support.servers import start_fastcache


@pytest.fixture(scope="session")
def fc_server():
    """One fastcache-server (one shard, like the embedded Cache) for the session."""
    proc = start_fastcache(shards=1)
    yield proc
    proc.stop()
