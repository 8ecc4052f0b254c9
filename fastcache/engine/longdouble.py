"""Exact emulation of the x87 80-bit `long double` arithmetic INCRBYFLOAT uses.

Redis parses both operands with strtold, adds them in long double and prints
the sum with "%.17Lf" minus trailing zeros. Python floats round to 53 bits and
print differently, so values are kept as exact Fractions and rounded to a
64-bit significand (round-half-even) after every operation, as the FPU does.
"""
import re
from fractions import Fraction

MANTISSA_BITS = 64
# Smallest exponent of the last significand bit (subnormals share it):
# normal numbers reach down to 2**-16382 with 63 more bits below the leading one.
MIN_EXP = -16382 - (MANTISSA_BITS - 1)
# A rounded value at or above 2**16384 is infinite.
OVERFLOW_BITS = 16384
# string2ld refuses inputs this long or longer.
MAX_CHARS = 5 * 1024

_DECIMAL = re.compile(rb"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\Z")
_HEX = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?\d+))?\Z")
_INFINITY = re.compile(rb"[+-]?inf(?:inity)?\Z", re.IGNORECASE)

# Python refuses int<->decimal-string conversions past this many digits.
_CHUNK = 4000
_CHUNK_POW = 10 ** _CHUNK


class Infinite(Exception):
    """A result too large for a long double."""


INFINITY = float("inf")  # what parse() returns for a literal infinity (sign is moot)
# A stand-in for inputs far below half the smallest subnormal: it rounds to
# zero, which parse() then refuses as strtold's underflow.
_NEGLIGIBLE = Fraction(1, 1 << (-MIN_EXP + 16))


def _int_from_digits(digits):
    if len(digits) <= _CHUNK:
        return int(digits)
    value = 0
    for pos in range(0, len(digits), _CHUNK):
        part = digits[pos:pos + _CHUNK]
        value = value * 10 ** len(part) + int(part)
    return value


def _digits_of(n):
    """Decimal digits of a non-negative int of any size."""
    if n < _CHUNK_POW:
        return b"%d" % n
    high, low = divmod(n, _CHUNK_POW)
    return _digits_of(high) + (b"%d" % low).rjust(_CHUNK, b"0")


def _floor_log2(num, den):
    k = num.bit_length() - den.bit_length()
    if k >= 0:
        below = num < (den << k)
    else:
        below = (num << -k) < den
    return k - 1 if below else k


def _div_round_even(num, den):
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q & 1):
        q += 1
    return q


def round_ld(value):
    """The long double nearest to the exact rational value; Infinite on overflow."""
    if not value:
        return Fraction(0)
    num, den = abs(value.numerator), value.denominator
    exp = max(_floor_log2(num, den) - (MANTISSA_BITS - 1), MIN_EXP)
    if exp < 0:
        mant = _div_round_even(num << -exp, den)
    else:
        mant = _div_round_even(num, den << exp)
    if mant.bit_length() + exp > OVERFLOW_BITS:
        raise Infinite()
    result = Fraction(mant << exp) if exp >= 0 else Fraction(mant, 1 << -exp)
    return -result if value < 0 else result


def _exponent(raw):
    """An exponent's digits as an int, capped so absurd exponents stay cheap."""
    if not raw:
        return 0
    sign = -1 if raw[:1] == b"-" else 1
    digits = raw.lstrip(b"+-").lstrip(b"0") or b"0"
    if len(digits) > 12:
        return sign * 10 ** 12
    return sign * int(digits)


def _decimal_value(match):
    sign, whole, frac, exp = match.groups()
    frac = frac or b""
    if not whole and not frac:
        return None
    digits = (whole + frac).lstrip(b"0")
    if not digits:
        return Fraction(0)
    exp10 = _exponent(exp) - len(frac)
    magnitude = exp10 + len(digits) - 1  # the value is about 10**magnitude
    if magnitude > 4940:
        raise Infinite()
    if magnitude < -4960:
        return _NEGLIGIBLE
    mant = _int_from_digits(digits)
    value = Fraction(mant * 10 ** exp10) if exp10 >= 0 else Fraction(mant, 10 ** -exp10)
    return -value if sign == b"-" else value


def _hex_value(match):
    sign, whole, frac, exp = match.groups()
    frac = frac or b""
    if not whole and not frac:
        return None
    mant = int(whole + frac or b"0", 16)
    if not mant:
        return Fraction(0)
    exp2 = _exponent(exp) - 4 * len(frac)
    magnitude = exp2 + mant.bit_length()
    if magnitude > OVERFLOW_BITS + 2:
        raise Infinite()
    if magnitude < MIN_EXP - 2:
        return _NEGLIGIBLE
    value = Fraction(mant << exp2) if exp2 >= 0 else Fraction(mant, 1 << -exp2)
    return -value if sign == b"-" else value


def parse(raw):
    """The value strtold gives for the whole of raw, as Redis's string2ld accepts it.

    Returns an exact Fraction; INFINITY for a literal infinity (it parses, but
    no sum with it is finite); None where Redis says "not a valid float":
    bad syntax, NaN, overflow, or underflow to zero."""
    if not raw or len(raw) >= MAX_CHARS:
        return None
    match = _HEX.match(raw)
    if match is not None:
        convert = _hex_value
    else:
        match = _DECIMAL.match(raw)
        if match is None:
            return INFINITY if _INFINITY.match(raw) else None
        convert = _decimal_value
    try:
        exact = convert(match)
        if exact is None:
            return None
        rounded = round_ld(exact)
    except Infinite:
        return None
    if exact and not rounded:
        return None
    return rounded


def add(a, b):
    """a + b in long double; Infinite on overflow."""
    return round_ld(a + b)


def format_human(value):
    """printf("%.17Lf") with trailing zeros (and a bare '.') removed; -0 prints as 0."""
    scaled = _div_round_even(abs(value.numerator) * 10 ** 17, value.denominator)
    if not scaled:
        return b"0"
    digits = _digits_of(scaled).rjust(18, b"0")
    whole, frac = digits[:-17], digits[-17:].rstrip(b"0")
    text = whole + b"." + frac if frac else whole
    return b"-" + text if value < 0 else text
