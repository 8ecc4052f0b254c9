"""The same redis-py calls on fastcache-server and on the embedded Cache give
the same results, for every protocol choice and with and without decoding."""
import pytest
import redis

from fastcache import Cache
from tests.embedded.scenarios import SCENARIOS


def outcome(step, client):
    """("ok", result) or (exception class, message). Some error replies map to
    ConnectionError subclasses, and redis-py's callbacks may fail on a reply:
    all must happen the same way on both."""
    try:
        return ("ok", step(client))
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def comparable(value):
    """value with exception instances (pipeline results) as (class, message)."""
    if isinstance(value, Exception):
        return (type(value).__name__, str(value))
    if isinstance(value, (list, tuple)):
        return type(value)(comparable(v) for v in value)
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    return value

SETTINGS = [(protocol, decode) for protocol in (None, 2, 3) for decode in (False, True)]


@pytest.mark.parametrize("protocol,decode", SETTINGS,
                         ids=["resp%s-%s" % (p or "default", "str" if d else "bytes")
                              for p, d in SETTINGS])
@pytest.mark.parametrize("family", sorted(SCENARIOS))
def test_same_results_as_the_server(fc_server, family, protocol, decode):
    remote = redis.Redis(port=fc_server.port, protocol=protocol, decode_responses=decode,
                         single_connection_client=True, socket_timeout=10)
    remote.flushall()
    local = Cache(protocol=protocol, decode_responses=decode)
    try:
        for i, step in enumerate(SCENARIOS[family]):
            expected = comparable(outcome(step, remote))
            got = comparable(outcome(step, local))
            assert got == expected, "step %d of %s: %r != %r" % (i, family, got, expected)
    finally:
        remote.close()
        local.close()
