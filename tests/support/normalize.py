"""Normalizers for differential tests: raw reply bytes -> something comparable,
for replies whose order (hash order, random picks) may legitimately differ."""
import re

from tests.support.resp import ReplyScanner


def split(raw):
    """(header, [element replies]) of an aggregate reply; a map's keys and
    values are separate elements."""
    end = raw.index(b"\r\n") + 2
    count = int(raw[1:end - 2]) * (2 if raw[:1] in b"%|" else 1)
    items, pos = [], end
    for _ in range(count):
        nxt = ReplyScanner.end(raw, pos)
        items.append(raw[pos:nxt])
        pos = nxt
    return raw[:end], items


def sorted_array(raw):
    """An array or set reply with its elements in a canonical order."""
    if raw[:1] not in b"*~":
        return raw
    header, items = split(raw)
    return header + b"".join(sorted(items))


def sorted_pairs(raw):
    """A flat [a, b, a, b, ...] array or a map with its pairs sorted; RESP3
    [[a, b], ...] pair arrays with their pairs sorted too."""
    if raw[:1] not in b"*%":
        return raw
    header, items = split(raw)
    if items and items[0][:1] == b"*":
        return header + b"".join(sorted(items))
    pairs = sorted(zip(items[::2], items[1::2]))
    return header + b"".join(a + b for a, b in pairs)


def sorted_scan(raw):
    """A SCAN-style reply [cursor, [element, ...]] with its elements sorted."""
    if raw[:1] != b"*":
        return raw
    header, (cursor, found) = split(raw)
    return header + cursor + sorted_array(found)


def sorted_scan_pairs(raw):
    """An HSCAN/ZSCAN reply [cursor, [field, value, ...]] with its pairs sorted."""
    if raw[:1] != b"*":
        return raw
    header, (cursor, found) = split(raw)
    return header + cursor + sorted_pairs(found)


_BULK = re.compile(rb"\$\d+\r\n[^\r]*\r\n")


def blank_bulks(raw):
    """The reply with every bulk string blanked (random picks of known shape)."""
    return _BULK.sub(b"$\r\n", raw)
