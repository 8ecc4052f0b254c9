"""fastcache: an in-memory data store that speaks the Redis protocol.

`fastcache.Cache` (and `fastcache.AsyncCache`) run the same engine inside a
Python process with redis-py's API; `fastcache-server` serves it over RESP.
"""

__version__ = "0.1.0"
# Reported as redis_version so clients that gate features on it treat us as Redis 7.
REDIS_VERSION = "7.0.15"

__all__ = ["Cache", "AsyncCache"]


def __getattr__(name):
    # Imported on first use: the server processes never pay for redis-py.
    if name == "Cache":
        from fastcache.embedded import Cache
        return Cache
    if name == "AsyncCache":
        from fastcache.embedded_async import AsyncCache
        return AsyncCache
    raise AttributeError("module 'fastcache' has no attribute %r" % name)
