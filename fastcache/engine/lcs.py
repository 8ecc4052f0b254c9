"""Longest common subsequence of two byte strings, as Redis's LCS reports it.

Redis fills an (len(a)+1) x (len(b)+1) table and walks it back from the end.
A Python table that size is far too slow, so each row is kept as a bit
vector (the bit-parallel method of Allison-Dix / Hyyro): bit j-1 of row i is
0 exactly where the LCS of a[:i] and b[:j] is one longer than that of a[:i]
and b[:j-1]. Those bits are all the walk-back needs to take the same path as
Redis, so the matches and ranges come out identical.
"""


_ALL_ZERO_DIGITS = b"0" * 256


def _match_masks(a, b):
    """For each byte value occurring in a, an int with bit j set where b[j] is that byte."""
    reversed_b = b[::-1]  # int(..., 2) reads the most significant bit first
    masks = {}
    for byte in set(a):
        table = bytearray(_ALL_ZERO_DIGITS)
        table[byte] = ord("1")
        masks[byte] = int(reversed_b.translate(table) or b"0", 2)
    return masks


def _rows(a, b, keep):
    """Bit-vector rows 0..len(a) (only the last one unless keep)."""
    full = (1 << len(b)) - 1
    row = full
    rows = [row] if keep else None
    masks = _match_masks(a, b)
    for byte in a:
        hits = row & masks[byte]
        row = ((row + hits) | (row - hits)) & full
        if keep:
            rows.append(row)
    return rows if keep else [row]


def _length(row, width):
    return width - row.bit_count()


def lcs_length(a, b):
    return _length(_rows(a, b, False)[-1], len(b))


def lcs(a, b, want_ranges, min_match_len=0, with_match_len=False):
    """(subsequence, length, ranges) with ranges as Redis's IDX lists them:
    [[a_start, a_end], [b_start, b_end]] (+ [length]), last match first."""
    rows = _rows(a, b, True)
    length = _length(rows[-1], len(b))
    out = bytearray(length)
    pos = length
    ranges = [] if want_ranges else None
    run = None  # [a_start, a_end, b_start, b_end] of the run being walked
    i, j = len(a), len(b)
    row_bits = None
    row_index = -1
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            pos -= 1
            out[pos] = a[i - 1]
            if run is None:
                run = [i - 1, i - 1, j - 1, j - 1]
            else:  # the walk only moves diagonally here, so the run continues
                run[0] -= 1
                run[2] -= 1
            if run[0] == 0 or run[2] == 0:
                emit = True
            i -= 1
            j -= 1
        else:
            if row_index != i:
                row_index = i
                row_bits = rows[i].to_bytes((len(b) + 7) // 8, "little")
            # Bit j-1 of row i clear: dropping b[j-1] loses a match, so drop a[i-1].
            if (row_bits[(j - 1) >> 3] >> ((j - 1) & 7)) & 1:
                j -= 1
            else:
                i -= 1
            emit = run is not None
        if emit:
            matched = run[1] - run[0] + 1
            if want_ranges and matched >= min_match_len:
                entry = [[run[0], run[1]], [run[2], run[3]]]
                if with_match_len:
                    entry.append(matched)
                ranges.append(entry)
            run = None
    return bytes(out), length, ranges
