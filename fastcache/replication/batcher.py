"""Batching a shard's mutation records into RECORDS frames.

A batch flushes at ``max_records`` records, at ``max_bytes`` of raw payload,
or once its oldest record has waited ``max_delay_us``, whichever comes first.
A record that would take the batch past ``max_bytes`` first flushes what is
buffered, so a frame exceeds max_bytes only when one record alone does.
With ``immediate`` there is no waiting: due() flushes whatever is buffered,
so the worker ships one frame per loop pass (it calls due() or flush() once
it has run the pass's commands).

The batcher does no I/O and keeps no timer: the owner asks due(now) when its
loop wakes, and ``deadline_us`` says when it has to wake at the latest.
"""
import time

from fastcache.persistence.walfile import encode_payload
from fastcache.replication.frames import ITEM_LEN, RECORDS, FrameEncoder, encode_items

_NOTHING = ()


def monotonic_us():
    return time.monotonic_ns() // 1000


class Batcher:
    """Buffers (seq, db, argv) records of one shard and cuts them into frames.

    Counters, for INFO: ``frames`` and ``records`` emitted, ``raw_bytes``
    (payloads before compression) and ``wire_bytes`` (whole frames as sent,
    headers included)."""

    def __init__(self, shard, max_records, max_bytes, max_delay_us, level=None,
                 immediate=False, clock=monotonic_us):
        if max_records < 1 or max_bytes < 1 or max_delay_us < 0:
            raise ValueError("batch limits must be positive")
        self.shard = shard
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.max_delay_us = max_delay_us
        self.immediate = immediate
        self._clock = clock
        self._encoder = FrameEncoder(level)
        self._parts = []
        self._count = 0
        self._bytes = 0
        self._first_seq = 0
        self._next_seq = 0
        self._oldest_us = 0
        self.frames = 0
        self.records = 0
        self.raw_bytes = 0
        self.wire_bytes = 0

    @property
    def pending(self):
        """Records buffered, not yet in a frame."""
        return self._count

    @property
    def deadline_us(self):
        """When due() will flush the buffered records; None when nothing is buffered."""
        if not self._count:
            return None
        return self._oldest_us if self.immediate else self._oldest_us + self.max_delay_us

    @property
    def compression_ratio(self):
        """Raw payload bytes per wire byte sent so far (1.0 before any frame)."""
        return self.raw_bytes / self.wire_bytes if self.wire_bytes else 1.0

    def add(self, seq, db, argv):
        """Buffer one record; the frames (bytes) it made ready, usually none.

        A seq that does not follow the buffered ones starts a new frame, since
        a frame's sequences are implied consecutive."""
        payload = encode_payload(db, argv)
        size = len(payload) + 4
        ready = _NOTHING
        if self._count and (seq != self._next_seq or self._bytes + size > self.max_bytes):
            ready = [self._emit()]
        if not self._count:
            self._first_seq = seq
            self._oldest_us = self._clock()
        parts = self._parts
        parts.append(ITEM_LEN.pack(size - 4))
        parts.append(payload)
        self._count += 1
        self._bytes += size
        self._next_seq = seq + 1
        if self._count >= self.max_records or self._bytes >= self.max_bytes:
            if ready:
                ready.append(self._emit())
            else:
                ready = [self._emit()]
        return ready

    def add_many(self, records):
        """Buffer [(seq, db, argv)] (a list, as Journal.take hands them out); the
        frames they made ready. The same frames as add() one by one, but the
        records that fit the current frame are encoded in one call."""
        ready = []
        i, n = 0, len(records)
        while i < n:
            seq = records[i][0]
            if self._count and seq != self._next_seq:
                ready.append(self._emit())
            k = min(n - i, self.max_records - self._count)
            if records[i + k - 1][0] != seq + k - 1:    # not consecutive: one at a time
                ready.extend(self.add(*records[i]))
                i += 1
                continue
            blob = encode_items(records, i, i + k)
            if self._bytes + len(blob) > self.max_bytes:
                for record in records[i:i + k]:
                    ready.extend(self.add(*record))
                i += k
                continue
            if not self._count:
                self._first_seq = seq
                self._oldest_us = self._clock()
            self._parts.append(blob)
            self._count += k
            self._bytes += len(blob)
            self._next_seq = seq + k
            i += k
            if self._count >= self.max_records or self._bytes >= self.max_bytes:
                ready.append(self._emit())
        return ready

    def due(self, now_us):
        """The buffered records as one frame if their time has come, else None."""
        if self._count and (self.immediate or now_us - self._oldest_us >= self.max_delay_us):
            return self._emit()
        return None

    def flush(self):
        """The buffered records as one frame now; None when nothing is buffered."""
        return self._emit() if self._count else None

    def _emit(self):
        raw = b"".join(self._parts)
        count = self._count
        frame = self._encoder.encode(RECORDS, self.shard, self._first_seq,
                                     self._first_seq + count - 1, count, raw)
        self._parts = []
        self._count = 0
        self._bytes = 0
        self.frames += 1
        self.records += count
        self.raw_bytes += len(raw)
        self.wire_bytes += len(frame)
        return frame
