"""Compare what a redis-py call did on two servers, errors included."""
import redis

# Raised when the server is unreachable: a test failure, never a reply to compare.
_TRANSPORT = (redis.ConnectionError, redis.TimeoutError)


def outcome(fn, client):
    """("ok", result) or (exception class name, message) of fn(client)."""
    try:
        return ("ok", fn(client))
    except _TRANSPORT:
        raise
    except redis.RedisError as exc:
        return (type(exc).__name__, str(exc))


def same_outcome(fn, *clients):
    """fn's outcome, asserting it is identical on every client."""
    results = [outcome(fn, c) for c in clients]
    for other in results[1:]:
        assert other == results[0], "%r != %r" % (results[0], other)
    return results[0]
