"""Argument parsing with Redis's strictness and error texts."""
import math

from fastcache.engine import errors
from fastcache.engine.errors import CommandError

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def parse_int(raw, error=errors.NOT_INT):
    """A signed 64-bit integer in canonical form (no '+', spaces or leading zeros)."""
    try:
        value = int(raw)
    except ValueError:
        raise CommandError(error) from None
    if b"%d" % value != raw or not INT64_MIN <= value <= INT64_MAX:
        raise CommandError(error)
    return value


def parse_float(raw, error=errors.NOT_FLOAT):
    """A finite-or-infinite double as Redis's strtold accepts it; NaN is refused."""
    if not raw or raw[:1].isspace() or raw[-1:].isspace() or b"_" in raw:
        raise CommandError(error)
    try:
        value = float(raw)
    except ValueError:
        raise CommandError(error) from None
    if math.isnan(value):
        raise CommandError(error)
    return value
