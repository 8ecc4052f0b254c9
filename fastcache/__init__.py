"""fastcache: an in-memory data store that speaks the Redis protocol."""

__version__ = "0.1.0"
# Reported as redis_version so clients that gate features on it treat us as Redis 7.
REDIS_VERSION = "7.0.15"
