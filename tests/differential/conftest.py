import pytest

from tests.support.differential import EngineTarget


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def targets(request, redis_raw):
    """The reference redis-server and the in-process engine, in RESP2 and RESP3."""
    if request.param == 3:
        redis_raw.call("HELLO", "3")
    return [redis_raw, EngineTarget(proto=request.param)]
